// SPDX-License-Identifier: MIT
/*
 * Finalizers and cleanups: Go's runtime.SetFinalizer and runtime.AddCleanup
 * for kslab objects, run one at a time on one ordered workqueue.
 *
 * Where the state lives:
 *
 *   finalizer slots   a slab that ever had an object with a finalizer or a
 *                     cleanup gets an array of struct fin_slot, one per
 *                     object, hung on slab->meta (a large kmalloc gets one
 *                     slot).  A slot holds the finalizer, its argument, the
 *                     object's cleanups and its state: LIVE, DYING (freed,
 *                     waiting for a grace period) or QUEUED.  The array is
 *                     allocated on the first kmem_set_finalizer() in the
 *                     slab and freed with the slab, so objects of slabs
 *                     without finalizers cost nothing: the free paths test
 *                     one bit of slab->cache, which they load anyway
 *                     (slab_hooked()).
 *   cache finalizer   cache->finalizer, for every object freed from it; an
 *                     object's own finalizer wins.
 *   cleanups          a list per slot, and a hash from handle id to cleanup
 *                     for kmem_cleanup_stop(); under cleanup_lock.  A
 *                     handle is an id, never a pointer, so stopping a
 *                     cleanup that already ran finds nothing and is
 *                     harmless.
 *
 * The life of an object with a finalizer:
 *
 *   free              kfree(), kmem_cache_free() (and so the bulk free and
 *                     krealloc()) mark the slot DYING and queue the object
 *                     in the freeing thread's RCU batch (mm/kfree_rcu.c)
 *                     instead of freeing it: no lock, no allocation.
 *                     kfree_rcu() marks it and queues it as it always does.
 *                     A second free of a DYING object is reported.
 *   grace period      the RCU reclaim thread, after the grace period that
 *                     every collection waits for, hands each such object to
 *                     slab_free_after_gp(), which marks it QUEUED and
 *                     appends it to a private chunk list; the collection
 *                     goes onto the finalizer FIFO in one splice, in the
 *                     order the objects were freed.
 *   finalizer thread  one work item on the ordered workqueue
 *                     "kslab_finalizer" drains the FIFO: for each object it
 *                     runs the finalizer, then the cleanups that were not
 *                     stopped, clears the slot and frees the object for
 *                     real.  One object at a time, first in first out, as
 *                     Go's single finalizer goroutine does it.
 *
 * Waiting: fin_queued counts objects put on the FIFO, fin_started and
 * fin_done those the worker began and finished (the worker alone writes
 * those two).  kmem_finalizers_flush() waits for fin_done to reach
 * fin_queued as read after a grace-period barrier; the worker wakes waiters
 * only when fin_done passes fin_wake_at, the smallest target a waiter asked
 * for, so a long drain costs one wake-up, not one per object.
 *
 * Watchdog: a thread ("kslab-fin-wd") samples the running finalizer while
 * anything is pending and reports a finalizer running longer than
 * KSLAB_FINALIZER_WATCHDOG_MS, once per stall; it also warns once when the
 * queue keeps growing.  The worker stamps each finalizer's start with the
 * cycle counter (a clock_gettime() per object would cost more than the
 * finalizers we measure).
 *
 * A finalizer that calls pthread_exit() kills the worker thread: a cleanup
 * handler around the drain loop finishes that object (its cleanups run,
 * its memory is freed), puts the rest of the chunk back at the head of the
 * FIFO and re-queues the drain work, which the workqueue runs on a new
 * worker.
 *
 * Locks: fin_lock (the FIFO, the waiters, the watchdog's sleep) and
 * cleanup_lock (cleanup lists and the handle hash); their place in the
 * global order is in the list at the top of mm/lifecycle.c.  In a fork()
 * child a finalizer that was running goes back to the head of the FIFO
 * (the child's copy of the object was never finalized there) and the
 * workqueue starts a new worker on the next kick.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kslab/finalizer.h>
#include <kslab/workqueue.h>

#include "lib/idhash.h"
#include "lib/options.h"
#include "lib/ptr_batch.h"
#include "lib/symbolize.h"
#include "lib/time.h"
#include "lib/workqueue.h"
#include "mm/slab.h"

/* the queue length from which steady growth is worth a warning */
#define FIN_BACKLOG_WARN	65536UL
#define FIN_GROWTH_SAMPLES	4
#define FIN_WATCHDOG_TICK_MS	250
#define CLEANUP_HASH_MIN	64

/* kmem_set_finalizer() owns the slot while fn holds this */
#define FIN_SETTING		((kmem_finalizer_t)1)

enum fin_state {
	FIN_LIVE,		/* allocated */
	FIN_DYING,		/* freed, waiting for a grace period */
	FIN_QUEUED,		/* on the FIFO or running */
};

struct fin_slot {
	kmem_finalizer_t fn;		/* NULL, FIN_SETTING or the finalizer */
	void *arg;
	struct cleanup *cleanups;	/* newest first; under cleanup_lock */
	unsigned long state;		/* enum fin_state */
};

struct cleanup {
	struct cleanup *next;		/* on the slot's list */
	/* key: the handle, 0 when none was asked for; in cleanup_hash then */
	struct kslab_idhash_node handle;
	void (*fn)(void *arg);
	void *arg;
	bool stopped;
};

/* What one RCU collection hands to the FIFO: chunks of lib/ptr_batch.h. */
struct fin_collect {
	struct kslab_ptr_fifo chunks;
	unsigned long nr;		/* objects */
	unsigned long finalizers;	/* of them, with a finalizer */
};

static pthread_mutex_t fin_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fin_done_cond = PTHREAD_COND_INITIALIZER;
static pthread_cond_t fin_wd_cond = PTHREAD_COND_INITIALIZER;
static struct kslab_ptr_fifo fifo;		/* under fin_lock */
/* what the RCU reclaim collects; published by finalizer_free_flush() */
static __thread struct fin_collect collect __initial_exec;
static unsigned long fin_queued;		/* under fin_lock */
/* written by the worker: a cache line of their own */
static unsigned long fin_started __aligned(CACHE_LINE_SIZE);
static unsigned long fin_done;
static unsigned long fin_wake_at = ~0UL;	/* under fin_lock */

/*
 * Objects marked DYING and not yet queued: each freeing thread counts its
 * marks in its own struct fin_thread (mm/slab.h); the RCU reclaim side
 * counts the objects that left DYING (under its reclaim_mutex).  See
 * dying_objects().
 */
static unsigned long marked_by_gone_threads;	/* under fin_lock */
static unsigned long unmarked;			/* under reclaim_mutex */
static bool fin_ready;

/* the worker's current chunk, for pthread_exit() and fork() */
static struct kslab_ptr_batch *worker_chunk;
static unsigned long worker_index;
static void *running_obj;
static kmem_finalizer_t running_fn;
static uint64_t running_since;			/* cycle counter */

static struct workqueue_struct *fin_wq;
static struct work_struct fin_work;
static bool watchdog_started;
static bool watchdog_asleep;
static __thread bool on_finalizer_thread;

static struct kmem_finalizer_stats fin_stats;	/* counters: see the header */
static uint64_t longest_cycles;
static unsigned long gc_patience_ms, watchdog_ms, exit_wait_ms;
/* kmem_gc() waits for finalizers at most this many KSLAB_GC_PATIENCE_MS */
#define GC_PATIENCE_TOTAL	10

static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kslab_idhash cleanup_hash;	/* under cleanup_lock */
static unsigned long cleanup_next_id;		/* under cleanup_lock */

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

/* ------------------------------------------------------------- slots */

/* An object and the slot that describes it (slot NULL: none yet). */
struct fin_ref {
	struct slab_obj o;		/* the object's lookup */
	struct fin_slot *slot;
};

static unsigned int slab_nr_slots(const struct slab *slab)
{
	struct kmem_cache *s = slab_cache(slab);

	return s ? s->objs_per_slab : 1;
}

static struct fin_slot *slot_of(struct slab *slab, unsigned int index)
{
	/* pairs with the release in alloc_slots(): the array is zeroed */
	struct fin_slot *slots = smp_load_acquire((struct fin_slot **)&slab->meta);

	return slots ? &slots[index] : NULL;
}

static __always_inline void ref_init(struct fin_ref *r,
				     const struct slab_obj *o)
{
	r->o = *o;
	r->slot = slot_of(o->slab, o->index);
}

/* The ref of @obj, an object kslab holds for its finalizer. */
static __always_inline void ref_of(struct fin_ref *r, const void *obj)
{
	struct slab_obj o;

	slab_obj_known(obj, &o);
	ref_init(r, &o);
}

/*
 * Whether @obj is the start of a kslab object that is not free in its
 * slab.  Objects in a thread's magazine look allocated: the check catches
 * interior pointers, foreign pointers and most stale ones, not all.
 */
static bool ref_get_live(const void *obj, struct fin_ref *r)
{
	struct slab_obj o;

	if (!obj || !slab_lookup_obj(obj, &o) || slab_obj_in_slab(&o))
		return false;
	ref_init(r, &o);
	return true;
}

/* Zeroed memory for @size bytes of kslab bookkeeping. */
static void *zalloc_meta(size_t size)
{
	void *p;

	if (size > (META_MIN_SIZE << (NR_META_CACHES - 1)))
		return kzalloc(size, GFP_KERNEL);
	p = slab_meta_alloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

/* The slot of @r, allocating the slab's slot array on first use. */
static struct fin_slot *alloc_slots(struct fin_ref *r)
{
	struct fin_slot *slots, *old = NULL;

	if (r->slot)
		return r->slot;
	slots = zalloc_meta(slab_nr_slots(r->o.slab) * sizeof(*slots));
	if (!slots)
		return NULL;
	if (!__atomic_compare_exchange_n((struct fin_slot **)&r->o.slab->meta,
					 &old, slots, false, __ATOMIC_RELEASE,
					 __ATOMIC_ACQUIRE)) {
		kfree(slots);
		slots = old;
	}
	/* after the slots: a free that sees the bit finds them */
	if (!slab_hooked(r->o.slab))
		slab_mark_hooked(r->o.slab);
	if (r->o.s && !READ_ONCE(r->o.s->finalizers_used))
		WRITE_ONCE(r->o.s->finalizers_used, true);
	r->slot = &slots[r->o.index];
	return r->slot;
}

/* The finalizer in @slot once no kmem_set_finalizer() is half done. */
static kmem_finalizer_t slot_fn(struct fin_slot *slot, void **arg)
{
	kmem_finalizer_t fn;

	/* pairs with the release in kmem_set_finalizer(): arg is written */
	while ((fn = smp_load_acquire(&slot->fn)) == FIN_SETTING)
		sched_yield();
	*arg = fn ? READ_ONCE(slot->arg) : NULL;
	return fn;
}

static bool ref_needs_finalizing(const struct fin_ref *r)
{
	if (r->o.s && READ_ONCE(r->o.s->finalizer))
		return true;
	return r->slot && (READ_ONCE(r->slot->fn) || READ_ONCE(r->slot->cleanups));
}

/* --------------------------------------------------------- the worker */

static void report_double_free(const void *obj, const char *caller,
			       const struct fin_ref *r)
{
	slab_bug(r->o.s ? r->o.s->name : "kmalloc-large",
		 "double free in %s(): object %p is already waiting for its finalizer; ignored",
		 caller, obj);
}

/* Detach @slot's cleanups, oldest first, and forget their handles. */
static struct cleanup *take_cleanups(struct fin_slot *slot)
{
	struct cleanup *c, *list = NULL, *next;

	pthread_mutex_lock(&cleanup_lock);
	c = slot->cleanups;
	slot->cleanups = NULL;
	for (; c; c = next) {
		next = c->next;
		if (c->handle.key)
			kslab_idhash_del(&cleanup_hash, &c->handle);
		c->next = list;
		list = c;
	}
	pthread_mutex_unlock(&cleanup_lock);
	return list;
}

static void run_cleanups(struct fin_slot *slot)
{
	struct cleanup *c = take_cleanups(slot), *next;

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
		kfree(c);
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
		WRITE_ONCE(r->slot->fn, NULL);
		r->slot->arg = NULL;
		/* the slot is clean before the object can be allocated again */
		__atomic_store_n(&r->slot->state, FIN_LIVE, __ATOMIC_RELEASE);
	}
	slab_free_unhooked(&r->o, obj);
	object_done();
}

static void finalize_object(void *obj)
{
	kmem_finalizer_t fn = NULL;
	struct fin_ref r;
	void *arg = NULL;

	ref_of(&r, obj);
	if (r.slot)
		fn = slot_fn(r.slot, &arg);
	if (!fn && r.o.s) {
		/* pairs with the release in kmem_cache_set_finalizer() */
		fn = smp_load_acquire(&r.o.s->finalizer);
		arg = READ_ONCE(r.o.s->finalizer_arg);
	}
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
		kfree(c);
		return;
	}
	memmove(c->objs, &c->objs[from], n * sizeof(void *));
	c->nr = n;
	pthread_mutex_lock(&fin_lock);
	kslab_ptr_fifo_push_head(&fifo, c);
	pthread_mutex_unlock(&fin_lock);
}

static void symbol_name(const void *fn, char *buf, size_t len)
{
	kslab_symbolize(fn, buf, len);
}

/*
 * pthread_exit() inside a finalizer: the worker thread is going away.
 * Finish that object, give back the rest of the chunk and re-queue the
 * drain, which the workqueue runs on a new worker.
 */
static void finalizer_worker_exited(void *unused)
{
	struct kslab_ptr_batch *c = worker_chunk;
	void *obj = running_obj;
	char name[128];
	struct fin_ref r;

	(void)unused;
	symbol_name((const void *)running_fn, name, sizeof(name));
	fprintf(stderr,
		"kslab: finalizer %s() called pthread_exit() on object %p; a new kslab-finalizer worker takes over the queue\n",
		name, obj);
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
	static __thread bool named;
	struct kslab_ptr_batch *c;

	(void)work;
	if (!named) {
		pthread_setname_np(pthread_self(), "kslab-finalizer");
		named = true;
	}
	on_finalizer_thread = true;
	pthread_cleanup_push(finalizer_worker_exited, NULL);
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
			if (unlikely(report_qs))
				kslab_wq_worker_qs();
		}
		pthread_mutex_lock(&fin_lock);
		worker_chunk = NULL;
		pthread_mutex_unlock(&fin_lock);
		object_done_fenced();
		kfree(c);
	}
	pthread_cleanup_pop(0);
	on_finalizer_thread = false;
}

/* ------------------------------------------------------------ watchdog */

static void report_lockup(kmem_finalizer_t fn, void *obj, uint64_t ms,
			  unsigned long behind)
{
	struct slab *slab = virt_to_slab(obj);
	const char *cache = "kmalloc-large";
	char name[128] = "(a cleanup of the object)";

	if (slab && slab_cache(slab))
		cache = slab_cache(slab)->name;
	if (fn)
		symbol_name((const void *)fn, name, sizeof(name));
	fprintf(stderr,
		"kslab: BUG: finalizer lockup: %s() running for %llu ms on object %p (cache %s), %lu queued behind it\n",
		name, (unsigned long long)ms, obj, cache, behind);
	fprintf(stderr,
		"kslab: a finalizer holds up every finalizer behind it; hand long work to queue_work(system_unbound_wq, ...)\n");
	WRITE_ONCE(fin_stats.lockups, fin_stats.lockups + 1);
}

struct growth {
	unsigned long last_len;
	unsigned int rising;
	bool warned;
};

static void check_growth(struct growth *g, unsigned long len)
{
	if (len >= FIN_BACKLOG_WARN && len > g->last_len)
		g->rising++;
	else
		g->rising = 0;
	g->last_len = len;
	if (g->rising < FIN_GROWTH_SAMPLES || g->warned)
		return;
	g->warned = true;
	fprintf(stderr,
		"kslab: WARNING: finalizers are queued faster than they run: %lu queued and rising for %u samples; objects with finalizers wait in memory until theirs has run\n",
		len, g->rising);
}

/* Objects freed and waiting for their grace period.  Context: fin_lock held. */
static unsigned long dying_objects(void)
{
	unsigned long marked = marked_by_gone_threads;
	struct kslab_thread *t;

	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t)
		marked += READ_ONCE(t->fin.marked);
	pthread_mutex_unlock(&kslab_threads_lock);
	return marked - READ_ONCE(unmarked);
}

/* Context: fin_lock held. */
static bool nothing_pending(void)
{
	return fin_queued == READ_ONCE(fin_done) && !dying_objects();
}

/**
 * finalizer_thread_exit - keep an exiting thread's count of DYING objects
 * @t: the thread's state
 */
void finalizer_thread_exit(struct kslab_thread *t)
{
	struct fin_thread *ft = &t->fin;

	if (!ft->registered)
		return;
	pthread_mutex_lock(&fin_lock);
	marked_by_gone_threads += ft->marked;
	ft->marked = 0;
	ft->registered = false;
	pthread_mutex_unlock(&fin_lock);
}

/**
 * finalizer_thread_gone - keep the count of a thread a fork() child lacks
 * @t: that thread's state, in the child's copy of memory
 */
void finalizer_thread_gone(struct kslab_thread *t)
{
	finalizer_thread_exit(t);
}

static noinline void register_fin_thread(struct fin_thread *ft)
{
	kslab_thread_register();
	pthread_mutex_lock(&fin_lock);
	ft->registered = true;
	pthread_mutex_unlock(&fin_lock);
}

/* One more object of this thread's is DYING. */
static __always_inline void count_marked(void)
{
	struct fin_thread *ft = &kslab_self.fin;

	if (unlikely(!ft->registered))
		register_fin_thread(ft);
	WRITE_ONCE(ft->marked, ft->marked + 1);
}

static void *finalizer_watchdog(void *unused)
{
	unsigned long reported = 0;
	struct growth growth = { 0 };
	uint64_t tick_ms;

	(void)unused;
	pthread_setname_np(pthread_self(), "kslab-fin-wd");
	tick_ms = watchdog_ms / 4 ? watchdog_ms / 4 : 1;
	if (tick_ms > FIN_WATCHDOG_TICK_MS)
		tick_ms = FIN_WATCHDOG_TICK_MS;
	pthread_mutex_lock(&fin_lock);
	for (;;) {
		unsigned long started, done;
		kmem_finalizer_t fn;
		void *obj;
		uint64_t ms;

		if (nothing_pending()) {
			watchdog_asleep = true;
			pthread_cond_wait(&fin_wd_cond, &fin_lock);
			watchdog_asleep = false;
			continue;
		}
		kslab_cond_wait_until(&fin_wd_cond, &fin_lock,
				      kslab_now_ns() + tick_ms * NSEC_PER_MSEC);
		/* pairs with the release in finalize_object() */
		started = smp_load_acquire(&fin_started);
		done = READ_ONCE(fin_done);
		check_growth(&growth, fin_queued - started);
		if (started == done || started == reported)
			continue;
		fn = READ_ONCE(running_fn);
		obj = READ_ONCE(running_obj);
		ms = cycles_since_ms(READ_ONCE(running_since));
		if (ms < watchdog_ms)
			continue;
		/*
		 * All three belong to finalizer number started if it still
		 * runs; the acquire pairs with the release in finalize_object().
		 */
		if (smp_load_acquire(&fin_started) != started ||
		    READ_ONCE(fin_done) != done)
			continue;
		reported = started;
		report_lockup(fn, obj, ms, fin_queued - started);
	}
	return NULL;
}

/* Context: fin_lock held. */
static void start_watchdog(void)
{
	pthread_attr_t attr;
	pthread_t thread;

	if (watchdog_started)
		return;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	watchdog_started = !pthread_create(&thread, &attr, finalizer_watchdog,
					   NULL);
	pthread_attr_destroy(&attr);
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
	kslab_cond_init_monotonic(&fin_wd_cond);
	INIT_WORK(&fin_work, finalizer_drain);
	fin_wq = alloc_ordered_workqueue("kslab_finalizer", 0);
	if (!fin_wq)
		slab_warn("cannot create the kslab_finalizer workqueue; finalizers will not run");
	/* publishes the above to fin_init() without pthread_once() */
	smp_store_release(&fin_ready, true);
}

/*
 * The finalizer machinery is set up on first use, when a cache or an
 * object gets its first finalizer: a program that never uses finalizers
 * has no workqueue for them.
 */
static __always_inline void fin_init(void)
{
	/* pairs with the release at the end of fin_init_once() */
	if (unlikely(!smp_load_acquire(&fin_ready)))
		finalizer_init();
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
 * Context: no kslab lock but reclaim_mutex held.
 */
static void finalizer_kick(void)
{
	bool work;

	pthread_mutex_lock(&fin_lock);
	work = !kslab_ptr_fifo_empty(&fifo);
	if (!nothing_pending()) {
		start_watchdog();
		if (watchdog_asleep)
			pthread_cond_signal(&fin_wd_cond);
	}
	pthread_mutex_unlock(&fin_lock);
	if (work && fin_wq)
		queue_work(fin_wq, &fin_work);
}

/* ----------------------------------------------------- the free side */

/* A free of an object with a finalizer: mark it DYING. */
static bool mark_dying(const struct slab_obj *o, void *obj,
		       const char *caller, enum slab_free_how how)
{
	struct fin_ref r;

	ref_init(&r, o);
	if (r.slot && READ_ONCE(r.slot->state) != FIN_LIVE) {
		report_double_free(obj, caller, &r);
		return true;
	}
	if (!ref_needs_finalizing(&r))
		return false;
	fin_init();
	/*
	 * A cache finalizer's object gets a slot, for its state.  Two frees
	 * racing on one object may both get here: double frees are caught
	 * when they come one after the other, as everywhere in kslab.
	 */
	if (alloc_slots(&r)) {
		WRITE_ONCE(r.slot->state, FIN_DYING);
		count_marked();
	}
	if (how == SLAB_FREE_RCU)
		return false;	/* kfree_rcu() queues it itself */
	slab_free_deferred(obj);
	return true;
}

static struct kslab_ptr_batch *alloc_chunk(void)
{
	return slab_meta_alloc(KSLAB_PTR_BATCH_BYTES);
}

static bool collect_add(struct fin_collect *fc, void *obj)
{
	if (!kslab_ptr_fifo_add(&fc->chunks, obj, alloc_chunk))
		return false;
	fc->nr++;
	return true;
}

/*
 * The grace period of a freed object of a hooked slab has passed: one
 * with a finalizer or cleanups joins this thread's collection, in order.
 */
static bool collect_after_gp(const struct slab_obj *o, void *obj)
{
	struct fin_ref r;
	unsigned long old;

	ref_init(&r, o);
	old = r.slot ? READ_ONCE(r.slot->state) : FIN_LIVE;
	if (!ref_needs_finalizing(&r)) {
		/* the finalizer was cleared after the free */
		if (old == FIN_DYING) {
			WRITE_ONCE(r.slot->state, FIN_LIVE);
			WRITE_ONCE(unmarked, unmarked + 1);
		}
		return false;
	}
	if (old == FIN_QUEUED) {
		report_double_free(obj, "kfree_rcu", &r);
		return true;
	}
	if (r.slot)
		WRITE_ONCE(r.slot->state, FIN_QUEUED);
	if (old == FIN_DYING)
		WRITE_ONCE(unmarked, unmarked + 1);
	if (!collect_add(&collect, obj)) {
		slab_warn("no memory to queue the finalizer of %p; the object is leaked",
			  obj);
		return true;
	}
	if ((r.slot && READ_ONCE(r.slot->fn)) || (r.o.s && READ_ONCE(r.o.s->finalizer)))
		collect.finalizers++;
	return true;
}

/**
 * finalizer_free_hook - the finalizer's part of slab_free_hook()
 * @o: the object's lookup
 * @obj: the object, in a hooked slab
 * @caller: the free function, for reports
 * @how: see enum slab_free_how
 *
 * A free (SLAB_FREE_NOW, SLAB_FREE_RCU) of an object with a finalizer or
 * cleanups marks it DYING and has it wait for a grace period; a second
 * free of a DYING object is reported.  After the grace period
 * (SLAB_FREE_AFTER_GP) it joins the collection that finalizer_free_flush()
 * puts on the FIFO.
 *
 * Return: true when the object was taken or the free refused.
 */
bool finalizer_free_hook(const struct slab_obj *o, void *obj,
			 const char *caller, enum slab_free_how how)
{
	if (how == SLAB_FREE_AFTER_GP)
		return collect_after_gp(o, obj);
	return mark_dying(o, obj, caller, how);
}

/**
 * finalizer_free_flush - put this thread's collection on the FIFO
 *
 * Called by slab_free_after_gp() after each run of objects, so a
 * collection goes on the FIFO in one splice, in order, and the worker is
 * kicked.
 * Context: the RCU reclaim (reclaim_mutex held, so fork() never splits a
 * collection).  queue_work() takes only workqueue locks, which come after
 * every kslab lock.
 */
void finalizer_free_flush(void)
{
	struct fin_collect *fc = &collect;

	if (likely(!fc->nr))
		return;
	pthread_mutex_lock(&fin_lock);
	kslab_ptr_fifo_splice_tail(&fifo, &fc->chunks);
	fin_queued += fc->nr;
	fin_stats.finalizers_queued += fc->finalizers;
	pthread_mutex_unlock(&fin_lock);
	memset(fc, 0, sizeof(*fc));
	finalizer_kick();
}

/* ------------------------------------------------------------- the API */

/**
 * kmem_set_finalizer - run @fn(@obj, @arg) when @obj is freed
 * @obj: the start of a live kslab object (kmalloc or any cache)
 * @fn: the finalizer; NULL clears the object's finalizer
 * @arg: passed to @fn
 *
 * The finalizer runs a grace period after @obj is freed, by whichever
 * free function, on the kslab-finalizer thread, with the object's
 * contents as at the free; the memory is reused only after it returned.
 *
 * Context: any thread.
 * Return: 0; -EINVAL if @obj is not the start of a live kslab object;
 * -EBUSY if it already has a finalizer; -ENOMEM without memory for the
 * slab's finalizer slots.
 */
int kmem_set_finalizer(void *obj, kmem_finalizer_t fn, void *arg)
{
	kmem_finalizer_t none = NULL;
	struct fin_ref r;

	if (!ref_get_live(obj, &r))
		return -EINVAL;
	if (!fn) {
		void *unused;

		if (!r.slot)
			return 0;
		if (READ_ONCE(r.slot->state) != FIN_LIVE)
			return -EINVAL;
		slot_fn(r.slot, &unused);
		WRITE_ONCE(r.slot->fn, NULL);
		return 0;
	}
	fin_init();
	if (!alloc_slots(&r))
		return -ENOMEM;
	if (READ_ONCE(r.slot->state) != FIN_LIVE)
		return -EINVAL;
	if (!__atomic_compare_exchange_n(&r.slot->fn, &none, FIN_SETTING,
					 false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return -EBUSY;
	WRITE_ONCE(r.slot->arg, arg);
	/* pairs with slot_fn(): arg is there before fn */
	smp_store_release(&r.slot->fn, fn);
	return 0;
}

/**
 * kmem_cache_set_finalizer - finalize every object freed from a cache
 * @s: the cache
 * @fn: the finalizer, NULL to clear
 * @arg: passed to @fn
 *
 * An object's own finalizer (kmem_set_finalizer()) wins over the cache's.
 * Objects already freed keep the finalizer they were freed with only if it
 * is still set when their grace period ends.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for a NULL cache; -EBUSY when the cache already has a
 * finalizer and @fn is not NULL.
 */
int kmem_cache_set_finalizer(struct kmem_cache *s, kmem_finalizer_t fn,
			     void *arg)
{
	if (!s)
		return -EINVAL;
	if (!fn) {
		WRITE_ONCE(s->finalizer, NULL);
		return 0;
	}
	fin_init();
	/* setters exclude each other; readers load fn (acquire), then arg */
	pthread_mutex_lock(&fin_lock);
	if (s->finalizer) {
		pthread_mutex_unlock(&fin_lock);
		return -EBUSY;
	}
	WRITE_ONCE(s->finalizer_arg, arg);
	WRITE_ONCE(s->finalizers_used, true);
	/* the argument before the function: pairs with finalize_object() */
	smp_store_release(&s->finalizer, fn);
	slab_mark_cache_hooked(s);
	pthread_mutex_unlock(&fin_lock);
	return 0;
}

/* Context: cleanup_lock held. */
static bool cleanup_hash_grow(void)
{
	unsigned long size = cleanup_hash.size ? cleanup_hash.size * 2 :
						 CLEANUP_HASH_MIN;
	struct kslab_idhash_node **buckets = zalloc_meta(size * sizeof(*buckets));

	if (!buckets)
		return false;
	kfree(kslab_idhash_resize(&cleanup_hash, buckets, size));
	return true;
}

/**
 * kmem_add_cleanup - run @fn(@arg) after @obj is finalized
 * @obj: the start of a live kslab object
 * @fn: the cleanup
 * @arg: its argument (must not be @obj: the object is gone by then)
 * @handle: receives a handle for kmem_cleanup_stop(), or NULL
 *
 * Any number of cleanups per object; each runs once, on the finalizer
 * thread, after the object's finalizer (if any), in the order added.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for a bad @obj or a NULL @fn; -ENOMEM.
 */
int kmem_add_cleanup(void *obj, void (*fn)(void *arg), void *arg,
		     struct kmem_cleanup **handle)
{
	struct fin_ref r;
	struct cleanup *c;

	if (!fn || !ref_get_live(obj, &r))
		return -EINVAL;
	fin_init();
	if (!alloc_slots(&r))
		return -ENOMEM;
	c = slab_meta_alloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->stopped = false;
	c->handle.key = 0;
	pthread_mutex_lock(&cleanup_lock);
	if (READ_ONCE(r.slot->state) != FIN_LIVE) {
		pthread_mutex_unlock(&cleanup_lock);
		kfree(c);
		return -EINVAL;
	}
	if (handle) {
		if (kslab_idhash_full(&cleanup_hash) && !cleanup_hash_grow()) {
			pthread_mutex_unlock(&cleanup_lock);
			kfree(c);
			return -ENOMEM;
		}
		c->handle.key = ++cleanup_next_id;
		kslab_idhash_add(&cleanup_hash, &c->handle);
		*handle = (struct kmem_cleanup *)(uintptr_t)c->handle.key;
	}
	c->next = r.slot->cleanups;
	WRITE_ONCE(r.slot->cleanups, c);
	pthread_mutex_unlock(&cleanup_lock);
	return 0;
}

/**
 * kmem_cleanup_stop - cancel a cleanup
 * @handle: from kmem_add_cleanup(), or NULL
 *
 * The cleanup will not run unless it has already started.  Harmless after
 * it ran, or when called twice.
 * Context: any thread.
 */
void kmem_cleanup_stop(struct kmem_cleanup *handle)
{
	unsigned long id = (uintptr_t)handle;
	struct kslab_idhash_node *n;

	if (!id)
		return;
	pthread_mutex_lock(&cleanup_lock);
	n = kslab_idhash_find(&cleanup_hash, id);
	if (n)
		WRITE_ONCE(container_of(n, struct cleanup, handle)->stopped,
			   true);
	pthread_mutex_unlock(&cleanup_lock);
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

	if (!flush_allowed(__func__))
		return -EDEADLK;
	unsigned long target;
	bool late;

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
	st->pending = queued - done + dying_objects();
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
 * KSLAB_FINALIZE_AT_EXIT the queue first gets that long to drain.  Never waits on a stuck finalizer
 * beyond that deadline.
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
	dying = dying_objects();
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
	pthread_mutex_lock(&cleanup_lock);
}

void finalizer_atfork_parent(void)
{
	pthread_mutex_unlock(&cleanup_lock);
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
	watchdog_started = false;
	watchdog_asleep = false;
	on_finalizer_thread = false;
	kslab_cond_init_monotonic(&fin_done_cond);
	kslab_cond_init_monotonic(&fin_wd_cond);
	pthread_mutex_unlock(&cleanup_lock);
	pthread_mutex_unlock(&fin_lock);
}
