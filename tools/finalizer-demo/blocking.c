// SPDX-License-Identifier: MIT
/*
 * Go's blocking-finalizer example, on kslab: one stuck finalizer holds up
 * every finalizer behind it.
 *
 * The Go program, the companion of simple.c's, in short:
 *
 *	var done chan struct{}		// nil: a receive never returns
 *
 *	newA(): runtime.SetFinalizer(v, func(p *A) { fmt.Println("gc Finalizer A") })
 *	newB(): runtime.SetFinalizer(v, func(p *B) { <-done; fmt.Println("gc Finalizer B") })
 *	newC(): runtime.SetFinalizer(v, func(p *C) { fmt.Println("gc Finalizer C") })
 *
 *	func main() {
 *		a, b, c := newA(), newB(), newC()
 *		fmt.Println("=== start ===")
 *		_, _, _ = a, b, c
 *		fmt.Println("=== ... ===")
 *		for i := 0; i < 10; i++ {
 *			runtime.GC()
 *		}
 *		fmt.Println("=== end ===")
 *	}
 *
 * Go's single finalizer goroutine runs C's finalizer, then blocks in B's,
 * and A's never runs:
 *
 *	=== start ===
 *	=== ... ===
 *	gc Finalizer C
 *	=== end ===
 *
 * This program prints exactly that.  kslab has the same shape: one
 * ordered workqueue runs every finalizer, one at a time, in the order the
 * objects were freed.  The objects are freed C, B, A (the order that
 * explains Go's output), so C's finalizer runs, B's blocks on a semaphore
 * nobody posts (the nil channel), and A's waits behind it.
 *
 * Two things differ from Go, on purpose.  kmem_gc() never waits for a
 * finalizer that is stuck, so the ten calls return at once.  And nothing
 * is lost silently: the process exits at once with status 0 (exit never
 * waits for a stuck finalizer), and kslab says on stderr what did not run:
 *
 *	kslab: 2 finalizers did not run before exit (1 running, 1 queued)
 *
 * KSLAB_FINALIZE_AT_EXIT=<ms> would let the queue run that long at exit
 * first; it cannot help B.  See handoff.c for the fix Go's documentation
 * recommends, and watchdog.c for the report of a stall while it happens.
 */
#include <semaphore.h>
#include <stdio.h>
#include <string.h>

#include <kslab/kslab.h>

struct named {
	char name[16];
};

/* A receive from a nil channel: nothing ever posts this semaphore. */
static sem_t done;

static void finalizer_a(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	printf("gc Finalizer A\n");
}

static void finalizer_b(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	while (sem_wait(&done))
		;
	printf("gc Finalizer B\n");
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

	/*
	 * Line by line: a fully buffered stdout (a pipe) would be written out
	 * only after kslab's exit report.
	 */
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
	/* dropped right before the collections, as in simple.c */
	kfree(c);
	kfree(b);
	kfree(a);
	for (i = 0; i < 10; i++)
		kmem_gc();
	printf("=== end ===\n");
	return 0;
}
