// SPDX-License-Identifier: MIT
/*
 * The fix for blocking.c that Go's documentation recommends: "If a
 * finalizer must run for a long time, it should do so by starting a new
 * goroutine."  In kslab the goroutine is a work item on
 * system_unbound_wq.
 *
 * A, B and C are freed C, B, A as in blocking.c, and B still has slow
 * work to do that waits on a semaphore.  But B's finalizer only copies
 * what that work needs into a work item of its own (the object's memory
 * is reused as soon as the finalizer returns, so the work must not point
 * into it) and queues it with queue_work(system_unbound_wq, ...).  The
 * finalizer returns at once, and A's runs:
 *
 *	=== start ===
 *	=== ... ===
 *	gc Finalizer C
 *	gc Finalizer B: slow work handed off
 *	gc Finalizer A
 *	=== releasing B's slow work ===
 *	B's slow work done (n1)
 *	=== end ===
 *
 * Before it ends the program lets the slow work finish and waits for it
 * with flush_workqueue(), so every finalizer ran and kslab has nothing
 * to report at exit.
 */
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include <kslab/kslab.h>

struct named {
	char name[16];
};

/* B's slow part: its own allocation, with a copy of what it needs. */
struct slow_work {
	struct work_struct work;
	char name[16];
};

static sem_t done;

static void slow_work_fn(struct work_struct *work)
{
	struct slow_work *sw = container_of(work, struct slow_work, work);

	while (sem_wait(&done))
		;
	printf("B's slow work done (%s)\n", sw->name);
	kfree(sw);
}

static void finalizer_a(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	printf("gc Finalizer A\n");
}

static void finalizer_b(void *obj, void *arg)
{
	const struct named *b = obj;
	struct slow_work *sw = kmalloc(sizeof(*sw), GFP_KERNEL);

	(void)arg;
	if (!sw) {
		printf("gc Finalizer B: out of memory, slow work skipped\n");
		return;
	}
	INIT_WORK(&sw->work, slow_work_fn);
	memcpy(sw->name, b->name, sizeof(sw->name));
	queue_work(system_unbound_wq, &sw->work);
	printf("gc Finalizer B: slow work handed off\n");
}

static void finalizer_c(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	printf("gc Finalizer C\n");
}

static struct named *new_named(kmem_finalizer_t fn)
{
	struct named *v = kmalloc(sizeof(*v), GFP_KERNEL);

	if (!v)
		return NULL;
	strcpy(v->name, "n1");
	if (kmem_set_finalizer(v, fn, NULL)) {
		kfree(v);
		return NULL;
	}
	return v;
}

int main(void)
{
	struct named *a, *b, *c;
	int i;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sem_init(&done, 0, 0);
	a = new_named(finalizer_a);
	b = new_named(finalizer_b);
	c = new_named(finalizer_c);
	if (!a || !b || !c) {
		perror("new_named");
		return 1;
	}
	printf("=== start ===\n");
	printf("=== ... ===\n");
	kfree(c);
	kfree(b);
	kfree(a);
	for (i = 0; i < 10; i++)
		kmem_gc();
	/* kmem_gc() gives them a moment; this is the guarantee */
	kmem_finalizers_flush();
	printf("=== releasing B's slow work ===\n");
	sem_post(&done);
	flush_workqueue(system_unbound_wq);
	printf("=== end ===\n");
	return 0;
}
