// SPDX-License-Identifier: MIT
/*
 * The finalizer queue: every object whose grace period passed with a
 * finalizer or cleanups waits on one FIFO and is finalized, one at a time,
 * by one work item on the ordered workqueue "kslab_finalizer", first in
 * first out, as Go's single finalizer goroutine does it.  The objects'
 * side (slots, the API, the free hook) is in mm/finalizer.c.
 *
 * The FIFO is a list of chunks, pages of pointers (lib/ptr_batch.h): a
 * collection arrives as chunks in the order its objects were freed
 * (fin_queue_collection()) and the worker takes a chunk at a time.
 *
 * Waiting: fin_queued counts objects put on the FIFO, fin_started and
 * fin_done those the worker began and finished (the worker alone writes
 * those two).  kmem_finalizers_flush() waits for fin_done to reach
 * fin_queued as read after a grace-period barrier; the worker wakes waiters
 * only when fin_done passes fin_wake_at, the smallest target a waiter asked
 * for, so a long drain costs one wake-up, not one per object.
 *
 * Watchdog: the workqueues' lockup watchdog (lib/workqueue.c) watches the
 * drain work with KSLAB_FINALIZER_WATCHDOG_MS and report_lockup(): the
 * drain touches its worker's progress counter after each object, so each
 * finalizer is timed alone and a stall is reported once.  The worker stamps
 * each finalizer's start with the cycle counter for the report and the
 * statistics (a clock_gettime() per object would cost more than the
 * finalizers we measure).  A queue that keeps growing is warned about once
 * (check_growth()).
 *
 * A finalizer that calls pthread_exit() kills the worker thread: the
 * workqueue's one recovery calls back finalizer_worker_exited() (its
 * kslab_wq_reports.exited), which finishes that object (its cleanups run,
 * its memory is freed), puts the rest of the chunk back at the head of the
 * FIFO and re-queues the drain work, which the workqueue runs on a new
 * worker; the workqueue's one pthread_exit() report names the finalizer.
 *
 * Locks: fin_lock (the FIFO, the waiters); its place
 * in the global order is in the list at the top of mm/lifecycle.c.  In a
 * fork() child a finalizer that was running goes back to the head of the
 * FIFO (the child's copy of the object was never finalized there) and the
 * workqueue starts a new worker on the next kick.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kslab/workqueue.h>

#include "lib/options.h"
#include "lib/symbolize.h"
#include "lib/time.h"
#include "lib/workqueue.h"
#include "mm/finalizer_internal.h"

/* the queue length from which steady growth is worth a warning */
#define FIN_BACKLOG_WARN	65536UL
#define FIN_GROWTH_SAMPLES	4

pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_done_cond = PTHREAD_COND_INITIALIZER;
static struct kslab_ptr_fifo fifo;		/* under fin_lock */
static unsigned long fin_queued;		/* under fin_lock */
/* written by the worker: a cache line of their own */
static unsigned long fin_started __aligned(CACHE_LINE_SIZE);
static unsigned long fin_done;
static unsigned long fin_wake_at = ~0UL;	/* under fin_lock */

bool fin_ready;				/* fin_init_once() ran */

/* the worker's current chunk, for pthread_exit() and fork() */
static struct kslab_ptr_batch *worker_chunk;
static unsigned long worker_index;
static void *running_obj;
static kmem_finalizer_t running_fn;
static uint64_t running_since;			/* cycle counter */

static struct workqueue_struct *fin_wq;
static struct work_struct fin_work;
/* the finalizer that called pthread_exit(), for the workqueue's report */
static kmem_finalizer_t exited_fn;
static __thread bool on_finalizer_thread;

struct kmem_finalizer_stats fin_stats;	/* counters: see the header */
static uint64_t longest_cycles;
static unsigned long gc_patience_ms, watchdog_ms, exit_wait_ms;
/* kmem_gc() waits for finalizers at most this many KSLAB_GC_PATIENCE_MS */
#define GC_PATIENCE_TOTAL	10

static pthread_once_t fin_once = PTHREAD_ONCE_INIT;

/* ---------------------------------------------------------------- time */

/*
 * The cycle counter stamps each finalizer's start; it is turned into
 * nanoseconds against CLOCK_MONOTONIC over the whole time since start-up,
 * so the rate is measured over a long interval and needs no calibration.
 */
static uint64_t cycles_base, ns_base;

static __always_inline uint64_t cycles(void)
{
#if defined(__x86_64__) || defined(__i386__)
	return __builtin_ia32_rdtsc();
#else
	return kslab_now_ns();
#endif
}

static uint64_t cycles_to_ns(uint64_t c)
{
	uint64_t dc = cycles() - cycles_base, dn = kslab_now_ns() - ns_base;

	if (!dc || !dn)
		return c;
	return (uint64_t)((double)c * (double)dn / (double)dc);
}

/* Milliseconds since @then; 0 when another CPU's counter is a little behind. */
static uint64_t cycles_since_ms(uint64_t then)
{
	int64_t d = (int64_t)(cycles() - then);

	return d > 0 ? cycles_to_ns((uint64_t)d) / NSEC_PER_MSEC : 0;
}

/* --------------------------------------------------------- the worker */

static void run_cleanups(struct fin_slot *slot)
{
	struct cleanup *c = fin_take_cleanups(slot), *next;

	for (; c; c = next) {
		next = c->next;
		/* a stop that raced with take_cleanups() wins: it held the lock */
		if (!READ_ONCE(c->stopped)) {
			WRITE_ONCE(fin_stats.cleanups_queued,
				   fin_stats.cleanups_queued + 1);
			c->fn(c->arg);
			WRITE_ONCE(fin_stats.cleanups_executed,
				   fin_stats.cleanups_executed + 1);
		}
		slab_meta_free(c);
	}
}

static void wake_waiters(void)
{
	pthread_mutex_lock(&fin_lock);
	fin_wake_at = ~0UL;
	pthread_cond_broadcast(&fin_done_cond);
	pthread_mutex_unlock(&fin_lock);
}

/*
 * The worker finished an object: publish it, and wake waiters whose
 * target it reached.  A plain load of fin_wake_at here may miss a waiter
 * that is just arriving; object_done_fenced() at the end of every chunk
 * does not (store, fence, load, pairing with wait_for_done()), and the
 * waiter re-checks on a timeout meanwhile.  A fence per object would cost
 * more than a trivial finalizer.
 */
static void object_done(void)
{
	unsigned long done = fin_done + 1;

	WRITE_ONCE(fin_done, done);
	if (unlikely(READ_ONCE(fin_wake_at) <= done))
		wake_waiters();
}

static void object_done_fenced(void)
{
	unsigned long done = READ_ONCE(fin_done);

	/*
	 * A sequentially consistent store, then load: with the store, then
	 * load of wait_for_done(), one of the two sees the other's value.
	 */
	__atomic_store_n(&fin_done, done, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&fin_wake_at, __ATOMIC_SEQ_CST) <= done)
		wake_waiters();
}

/* After the finalizer: cleanups, then the memory goes back. */
static void finish_object(void *obj, struct fin_ref *r)
{
	if (r->slot) {
		if (READ_ONCE(r->slot->cleanups)) {
			run_cleanups(r->slot);
			WRITE_ONCE(running_since, cycles());
		}
		fin_slot_reset(r->slot);
	}
	slab_free_unhooked(&r->o, obj);
	object_done();
}

static void finalize_object(void *obj)
{
	kmem_finalizer_t fn;
	struct fin_ref r;
	void *arg;

	ref_of(&r, obj);
	fn = fin_ref_finalizer(&r, &arg);
	/* running_since was stamped when the previous object was done */
	WRITE_ONCE(running_obj, obj);
	WRITE_ONCE(running_fn, fn);
	/* publishes the above to the watchdog */
	smp_store_release(&fin_started, fin_started + 1);
	if (fn) {
		uint64_t now, took;

		fn(obj, arg);
		now = cycles();
		took = now - running_since;
		WRITE_ONCE(running_since, now);
		if (took > longest_cycles)
			WRITE_ONCE(longest_cycles, took);
		WRITE_ONCE(fin_stats.finalizers_executed,
			   fin_stats.finalizers_executed + 1);
	}
	WRITE_ONCE(running_fn, NULL);
	finish_object(obj, &r);
}

/* Put the objects from @from on of @c back at the head of the FIFO. */
static void requeue_chunk_tail(struct kslab_ptr_batch *c, unsigned long from)
{
	unsigned long n = c->nr - from;

	if (!n) {
		slab_meta_free(c);
		return;
	}
	memmove(c->objs, &c->objs[from], n * sizeof(void *));
	c->nr = n;
	pthread_mutex_lock(&fin_lock);
	kslab_ptr_fifo_push_head(&fifo, c);
	pthread_mutex_unlock(&fin_lock);
}

/*
 * pthread_exit() inside a finalizer: the worker thread is going away, and
 * the workqueue's recovery calls this (kslab_wq_reports.exited).  Finish
 * that object, give back the rest of the chunk and re-queue the drain,
 * which the workqueue runs on a new worker; its one pthread_exit() report
 * names the finalizer.
 */
static void finalizer_worker_exited(void)
{
	struct kslab_ptr_batch *c = worker_chunk;
	void *obj = running_obj;
	struct fin_ref r;

	/* the workqueue reports it, naming this finalizer: running_finalizer() */
	WRITE_ONCE(exited_fn, running_fn);
	WRITE_ONCE(fin_stats.worker_restarts, fin_stats.worker_restarts + 1);
	WRITE_ONCE(fin_stats.finalizers_executed,
		   fin_stats.finalizers_executed + 1);
	WRITE_ONCE(running_fn, NULL);
	ref_of(&r, obj);
	finish_object(obj, &r);
	object_done_fenced();
	worker_chunk = NULL;
	on_finalizer_thread = false;
	if (c)
		requeue_chunk_tail(c, worker_index + 1);
	queue_work(fin_wq, &fin_work);
}

static struct kslab_ptr_batch *fifo_pop(void)
{
	struct kslab_ptr_batch *c;

	pthread_mutex_lock(&fin_lock);
	c = kslab_ptr_fifo_pop(&fifo);
	worker_chunk = c;
	worker_index = 0;
	pthread_mutex_unlock(&fin_lock);
	return c;
}

static void finalizer_drain(struct work_struct *work)
{
	/* urcu-qsbr: a quiescent state between two finalizers */
	bool report_qs = kslab_wq_worker_reports_qs();
	/* the watchdog times each finalizer, not the whole drain */
	unsigned long *touch = kslab_wq_touch_counter();
	static __thread bool named;
	struct kslab_ptr_batch *c;

	(void)work;
	if (!named) {
		pthread_setname_np(pthread_self(), "kslab-finalizer");
		named = true;
	}
	on_finalizer_thread = true;
	while ((c = fifo_pop())) {
		unsigned long i;

		/*
		 * One cycle-counter read per object: a finalizer's run ends
		 * where the next one's starts (the time between is the
		 * worker's few instructions).
		 */
		WRITE_ONCE(running_since, cycles());
		for (i = 0; i < c->nr; i++) {
			WRITE_ONCE(worker_index, i);
			finalize_object(c->objs[i]);
			WRITE_ONCE(*touch, *touch + 1);
			if (unlikely(report_qs))
				kslab_wq_worker_qs();
		}
		pthread_mutex_lock(&fin_lock);
		worker_chunk = NULL;
		pthread_mutex_unlock(&fin_lock);
		object_done_fenced();
		slab_meta_free(c);
	}
	on_finalizer_thread = false;
}

/* ------------------------------------------------------------ watchdog */

/*
 * The workqueue's lockup watchdog watches the drain work; the drain
 * touches the worker's progress counter after each object, so each
 * finalizer (with its cleanups) is timed alone against
 * KSLAB_FINALIZER_WATCHDOG_MS, and a stall is reported here, once.
 */
static void report_lockup(unsigned long wq_ms)
{
	kmem_finalizer_t fn = READ_ONCE(running_fn);
	void *obj = READ_ONCE(running_obj);
	struct slab *slab = obj ? virt_to_slab(obj) : NULL;
	const char *cache = "kmalloc-large";
	char name[KSLAB_SYM_NAME_LEN] = "(a cleanup of the object)";
	/* pairs with the release in finalize_object() */
	unsigned long started = smp_load_acquire(&fin_started);
	uint64_t ms = cycles_since_ms(READ_ONCE(running_since));

	if (ms < wq_ms)
		ms = wq_ms;
	if (slab && slab_cache(slab))
		cache = slab_cache(slab)->name;
	if (fn)
		kslab_symbolize((const void *)fn, name, sizeof(name));
	fprintf(stderr,
		"kslab: BUG: finalizer lockup: %s() running for %llu ms on object %p (cache %s), %lu queued behind it\n",
		name, (unsigned long long)ms, obj, cache,
		READ_ONCE(fin_queued) - started);
	fprintf(stderr,
		"kslab: a finalizer holds up every finalizer behind it; hand long work to queue_work(system_unbound_wq, ...)\n");
	WRITE_ONCE(fin_stats.lockups, fin_stats.lockups + 1);
}

/* What ran when the drain's worker called pthread_exit(): the finalizer. */
static const void *running_finalizer(void)
{
	return (const void *)exited_fn;
}

static struct kslab_wq_reports fin_reports = {
	.lockup = report_lockup,
	.what = "finalizer",
	.running = running_finalizer,
	.exited = finalizer_worker_exited,
};

/*
 * Warn once when the queue keeps growing: FIN_GROWTH_SAMPLES collections
 * in a row that leave it longer than before, beyond FIN_BACKLOG_WARN.
 * Context: fin_lock held.
 */
static void check_growth(unsigned long len)
{
	static unsigned long last_len;
	static unsigned int rising;
	static bool warned;

	if (len >= FIN_BACKLOG_WARN && len > last_len)
		rising++;
	else
		rising = 0;
	last_len = len;
	if (rising < FIN_GROWTH_SAMPLES || warned)
		return;
	warned = true;
	fprintf(stderr,
		"kslab: WARNING: finalizers are queued faster than they run: %lu queued and rising for %u collections; objects with finalizers wait in memory until theirs has run\n",
		len, rising);
}

/* ------------------------------------------------------------ set-up */


static void fin_init_once(void)
{
	cycles_base = cycles();
	ns_base = kslab_now_ns();
	gc_patience_ms = kslab_option(OPT_GC_PATIENCE_MS);
	watchdog_ms = kslab_option(OPT_FINALIZER_WATCHDOG_MS);
	exit_wait_ms = kslab_option(OPT_FINALIZE_AT_EXIT);
	kslab_cond_init_monotonic(&fin_done_cond);
	INIT_WORK(&fin_work, finalizer_drain);
	fin_wq = alloc_ordered_workqueue("kslab_finalizer", 0);
	if (fin_wq) {
		fin_reports.watchdog_ms = watchdog_ms;
		kslab_wq_set_reports(fin_wq, &fin_reports);
	} else {
		slab_warn("cannot create the kslab_finalizer workqueue; finalizers will not run");
	}
	/* publishes the above to fin_init() without pthread_once() */
	smp_store_release(&fin_ready, true);
}

/**
 * finalizer_init - set the finalizer machinery up
 *
 * Context: any thread; later calls return at once.
 */
void finalizer_init(void)
{
	kslab_init();
	pthread_once(&fin_once, fin_init_once);
}

/*
 * finalizer_kick - make sure the finalizer worker runs what is queued
 *
 * Context: no kslab lock but reclaim_mutex held (workqueue locks come
 * after every kslab lock).
 */
static void finalizer_kick(void)
{
	bool work;

	pthread_mutex_lock(&fin_lock);
	work = !kslab_ptr_fifo_empty(&fifo);
	pthread_mutex_unlock(&fin_lock);
	if (work && fin_wq)
		queue_work(fin_wq, &fin_work);
}

/**
 * fin_queue_collection - put a collection of objects on the FIFO
 * @chunks: the objects, in the order they were freed; taken
 * @nr: how many
 * @finalizers: of them, with a finalizer (the others have cleanups only)
 *
 * Context: the RCU reclaim (reclaim_mutex held, so fork() never splits a
 * collection).
 */
void fin_queue_collection(struct kslab_ptr_fifo *chunks, unsigned long nr,
			  unsigned long finalizers)
{
	pthread_mutex_lock(&fin_lock);
	kslab_ptr_fifo_splice_tail(&fifo, chunks);
	fin_queued += nr;
	/* pairs with the release in finalize_object() */
	check_growth(fin_queued - smp_load_acquire(&fin_started));
	fin_stats.finalizers_queued += finalizers;
	pthread_mutex_unlock(&fin_lock);
	finalizer_kick();
}

/*
 * Wait until fin_done reaches @target.  @deadline_ns 0: no deadline.
 * @patient: give up once the running finalizer has run gc_patience_ms.
 * Return: 0 when reached, -ETIMEDOUT when the deadline passed, -EAGAIN
 * when patience ran out.
 */
/* A finalizer is running, and has been for @ms or longer. */
static bool finalizer_stuck(unsigned long ms)
{
	if (!READ_ONCE(running_fn))
		return false;
	/* pairs with the release in finalize_object() */
	if (smp_load_acquire(&fin_started) <= READ_ONCE(fin_done))
		return false;
	return cycles_since_ms(READ_ONCE(running_since)) >= ms;
}

static int wait_for_done(unsigned long target, uint64_t deadline_ns,
			 bool patient)
{
	int ret = 0;

	pthread_mutex_lock(&fin_lock);
	for (;;) {
		uint64_t now, until;

		if (target < fin_wake_at)
			__atomic_store_n(&fin_wake_at, target, __ATOMIC_SEQ_CST);
		/* store, then load: pairs with object_done() */
		if (__atomic_load_n(&fin_done, __ATOMIC_SEQ_CST) >= target)
			break;
		now = kslab_now_ns();
		if (deadline_ns && now >= deadline_ns) {
			ret = -ETIMEDOUT;
			break;
		}
		if (patient && finalizer_stuck(gc_patience_ms)) {
			ret = -EAGAIN;
			break;
		}
		until = now + (patient ? gc_patience_ms + 1 : 100) * NSEC_PER_MSEC;
		if (deadline_ns && until > deadline_ns)
			until = deadline_ns;
		kslab_cond_wait_until(&fin_done_cond, &fin_lock, until);
	}
	pthread_mutex_unlock(&fin_lock);
	return ret;
}

/*
 * Everything freed so far past its grace period and on the FIFO, unless
 * @deadline_ns (0: none) passes first; then *@late (if not NULL) is set.
 * @caller is the public function, for kvfree_rcu_barrier_until()'s report.
 * Return: the FIFO position to wait for, or 0 when there is nothing.
 */
static unsigned long queue_everything_freed(const char *caller,
					    uint64_t deadline_ns, bool *late)
{
	bool done = kvfree_rcu_barrier_until(deadline_ns, caller);
	unsigned long target;

	if (late)
		*late = !done;
	finalizer_kick();
	pthread_mutex_lock(&fin_lock);
	target = fin_queued;
	pthread_mutex_unlock(&fin_lock);
	return target;
}

/**
 * kmem_gc - runtime.GC(): put everything freed so far through its grace
 * period
 *
 * On return every object freed before the call has passed a grace period:
 * its finalizer is queued, and objects without one are back in their
 * caches.  Then, as Go's finalizer goroutine gets to run after a GC, it
 * gives the finalizer thread time to run what it queued, but only while
 * the thread makes progress: it returns as soon as one finalizer has been
 * running for KSLAB_GC_PATIENCE_MS, so a stuck finalizer cannot hold it,
 * and after GC_PATIENCE_TOTAL times that in all, so neither can a long
 * line of slow ones.
 *
 * Context: any thread, outside RCU read-side sections (inside one it
 * reports and does not wait for the grace period).
 */
void kmem_gc(void)
{
	unsigned long target;

	fin_init();
	target = queue_everything_freed(__func__, 0, NULL);
	if (on_finalizer_thread || !gc_patience_ms)
		return;
	wait_for_done(target, kslab_now_ns() + GC_PATIENCE_TOTAL * gc_patience_ms *
			      NSEC_PER_MSEC, true);
}

static bool flush_allowed(const char *caller)
{
	if (!on_finalizer_thread)
		return true;
	slab_warn("%s() called from a finalizer: it would wait for itself; not waiting",
		  caller);
	return false;
}

/**
 * kmem_finalizers_flush - wait for every finalizer queued so far
 *
 * Returns once every object freed before the call has been finalized, its
 * cleanups have run and its memory is back in its cache.  Waits as long
 * as that takes: behind a stuck finalizer, for ever (see
 * kmem_finalizers_wait()).
 *
 * Context: any thread outside RCU read-side sections.  From a finalizer
 * it reports and returns at once.
 */
void kmem_finalizers_flush(void)
{
	if (!flush_allowed(__func__))
		return;
	fin_init();
	wait_for_done(queue_everything_freed(__func__, 0, NULL), 0, false);
}

/**
 * kmem_finalizers_wait - kmem_finalizers_flush() with a deadline
 * @timeout_ms: how long to wait, the grace period before the finalizers
 *	included (a reader that stays in its section cannot hold it longer)
 *
 * Context: as kmem_finalizers_flush().
 * Return: 0 when everything freed before the call was finalized,
 * -ETIMEDOUT otherwise, -EDEADLK when called from a finalizer.
 */
int kmem_finalizers_wait(unsigned int timeout_ms)
{
	uint64_t deadline = kslab_now_ns() + timeout_ms * NSEC_PER_MSEC;
	unsigned long target;
	bool late;

	if (!flush_allowed(__func__))
		return -EDEADLK;

	fin_init();
	target = queue_everything_freed(__func__, deadline, &late);
	if (late)
		return -ETIMEDOUT;
	return wait_for_done(target, deadline, false);
}

/**
 * kmem_finalizer_stats - counters of the finalizer machinery
 * @st: filled in
 *
 * Context: any thread.
 */
void kmem_finalizer_stats(struct kmem_finalizer_stats *st)
{
	unsigned long queued, started, done;

	fin_init();
	pthread_mutex_lock(&fin_lock);
	/* the worker updates its counters without the lock */
	st->finalizers_queued = fin_stats.finalizers_queued;
	st->finalizers_executed = READ_ONCE(fin_stats.finalizers_executed);
	st->cleanups_queued = READ_ONCE(fin_stats.cleanups_queued);
	st->cleanups_executed = READ_ONCE(fin_stats.cleanups_executed);
	st->worker_restarts = READ_ONCE(fin_stats.worker_restarts);
	st->lockups = READ_ONCE(fin_stats.lockups);
	queued = fin_queued;
	/* pairs with the release in finalize_object() */
	started = smp_load_acquire(&fin_started);
	done = READ_ONCE(fin_done);
	st->pending = queued - done + fin_dying_objects();
	st->queue_length = queued - started;
	pthread_mutex_unlock(&fin_lock);
	st->longest_ns = cycles_to_ns(READ_ONCE(longest_cycles));
}

/* -------------------------------------------------------- destroy, exit */

/**
 * finalizer_cache_destroy - finalize a dying cache's objects first
 * @s: the cache being destroyed
 *
 * Return: false when that could not be waited for (called from a
 * finalizer).
 */
bool finalizer_cache_destroy(struct kmem_cache *s)
{
	if (!READ_ONCE(s->finalizers_used))
		return true;
	WRITE_ONCE(s->finalizer, NULL);
	if (on_finalizer_thread)
		return false;
	/* kmem_cache_destroy() has said so if it is inside a read section */
	wait_for_done(queue_everything_freed(NULL, 0, NULL), 0, false);
	return true;
}

/*
 * At exit (mm/lifecycle.c): nothing is lost silently.  With
 * KSLAB_FINALIZE_AT_EXIT the queue first gets that long to drain.  Never
 * waits on a stuck finalizer beyond that deadline.
 */
void finalizer_exit(void)
{
	unsigned long queued, started, done, dying, running, waiting;

	/* pairs with the release at the end of fin_init_once() */
	if (!smp_load_acquire(&fin_ready))
		return;
	if (exit_wait_ms && !on_finalizer_thread && !rcu_inside_read_section())
		kmem_finalizers_wait(exit_wait_ms);
	pthread_mutex_lock(&fin_lock);
	queued = fin_queued;
	/* pairs with the release in finalize_object() */
	started = smp_load_acquire(&fin_started);
	done = READ_ONCE(fin_done);
	dying = fin_dying_objects();
	pthread_mutex_unlock(&fin_lock);
	running = started - done;
	waiting = queued - started + dying;
	if (running + waiting)
		fprintf(stderr,
			"kslab: %lu finalizers did not run before exit (%lu running, %lu queued)\n",
			running + waiting, running, waiting);
}

/* ------------------------------------------------------------------ fork */

void finalizer_atfork_prepare(void)
{
	pthread_mutex_lock(&fin_lock);
}

void finalizer_atfork_parent(void)
{
	pthread_mutex_unlock(&fin_lock);
}

/*
 * The child has no finalizer worker and no watchdog.  A chunk the worker
 * was in goes back to the head of the FIFO from the object that was
 * running: the child's copy of that object was never finalized here.
 */
void finalizer_atfork_child(void)
{
	struct kslab_ptr_batch *c = worker_chunk;
	unsigned long n = 0;

	if (c) {
		unsigned long from = worker_index;

		if (from < c->nr) {
			void *obj = c->objs[from];
			struct fin_ref r;

			/* finished: LIVE again (without a slot: lost) */
			ref_of(&r, obj);
			if (!r.slot || READ_ONCE(r.slot->state) != FIN_QUEUED)
				from++;
		}
		memmove(c->objs, &c->objs[from], (c->nr - from) * sizeof(void *));
		c->nr -= from;
		kslab_ptr_fifo_push_head(&fifo, c);
	}
	for (c = fifo.head; c; c = c->next)
		n += c->nr;
	worker_chunk = NULL;
	running_fn = NULL;
	fin_started = fin_done;
	fin_queued = fin_done + n;
	fin_wake_at = ~0UL;
	on_finalizer_thread = false;
	kslab_cond_init_monotonic(&fin_done_cond);
	pthread_mutex_unlock(&fin_lock);
}
