// SPDX-License-Identifier: MIT
/*
 * The blocking example again (blocking.c), this time with kslab's
 * finalizer watchdog watching.
 *
 * Go gives no sign that its finalizer goroutine is stuck: finalizers
 * simply stop running.  kslab's watchdog reports a finalizer that has run
 * longer than KSLAB_FINALIZER_WATCHDOG_MS (default 10000 ms), once per
 * stall, on stderr:
 *
 *	kslab: BUG: finalizer lockup: finalizer_b() running for 100 ms on
 *	object 0x... (cache kmalloc-16), 1 queued behind it
 *
 * (one line; the symbol comes from the executable's symbol table).  Options are read once when the
 * library starts, before main(), so set the threshold on the command
 * line; `make run` does:
 *
 *	KSLAB_FINALIZER_WATCHDOG_MS=100 tools/finalizer-demo/watchdog
 *
 * A, B and C are freed C, B, A as in blocking.c, and B's finalizer waits
 * on a semaphore.  Unlike blocking.c, the program posts it once the
 * watchdog has spoken, as when a slow server finally answers, and the
 * queue drains: B's and A's finalizers run and nothing is left at exit.
 */
#include <semaphore.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kslab/kslab.h>

/* How long to wait for the report, whatever the threshold. */
#define REPORT_TIMEOUT_S	60

struct named {
	char name[16];
};

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

/* Polls the watchdog's report count; false if it said nothing in time. */
static bool wait_for_lockup_report(void)
{
	struct timespec tick = { .tv_nsec = 10 * 1000 * 1000 };
	struct kmem_finalizer_stats st;
	time_t deadline = time(NULL) + REPORT_TIMEOUT_S;

	do {
		kmem_finalizer_stats(&st);
		if (st.lockups)
			return true;
		nanosleep(&tick, NULL);
	} while (time(NULL) < deadline);
	return false;
}

int main(void)
{
	const char *threshold = getenv("KSLAB_FINALIZER_WATCHDOG_MS");
	struct named *a, *b, *c;
	bool reported;
	int i;

	/* line by line, so stdout and the report on stderr interleave in order */
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
	printf("--- B's finalizer is stuck; the watchdog reports it after %s ms ---\n",
	       threshold ? threshold : "10000 (KSLAB_FINALIZER_WATCHDOG_MS)");
	reported = wait_for_lockup_report();
	printf("--- %s; letting B's finalizer go ---\n",
	       reported ? "reported" : "no report came");
	sem_post(&done);
	kmem_finalizers_flush();
	printf("=== end ===\n");
	return reported ? 0 : 1;
}
