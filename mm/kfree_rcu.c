// SPDX-License-Identifier: MIT
/*
 * RCU-deferred frees: kfree_rcu(), kfree_rcu_mightsleep(),
 * kvfree_rcu_barrier(), and the grace period behind SLAB_TYPESAFE_BY_RCU
 * slab release.
 *
 * The naive way, one liburcu call_rcu() per object, costs a queue node
 * and a callback per object and wakes a callback thread every few
 * objects.  kslab instead collects pointers:
 *
 *   per-thread batch   a page of pointers (lib/ptr_batch.h, one 4 KiB
 *                      metadata object) that only the owning thread
 *                      writes.  kfree_rcu() checks the pointer, stores it
 *                      at objs[nr] and publishes nr with a release store:
 *                      no lock, no atomic read-modify-write, no
 *                      allocation.  The reclaim thread copies a partial
 *                      batch's unpublished tail [stolen, nr) out under
 *                      rcu_lock and advances stolen; the owner replaces a
 *                      full batch under rcu_lock, so the two never take
 *                      the same range.
 *   ready list         batches handed over, in hand-over order, under
 *                      rcu_lock.  A batch is handed over when it is full;
 *                      a partial batch is collected by the reclaim work
 *                      once it is RCU_BATCH_DELAY_MS old, so an idle
 *                      program's last frees are not stranded.
 *   reclaim work       delayed work on the ordered workqueue "kslab-rcu",
 *                      as the kernel's kfree_rcu_monitor(): takes the
 *                      whole ready list (and every due partial batch),
 *                      waits for ONE grace period with the flavor's
 *                      synchronize_rcu(), then frees every object of every
 *                      batch it took through slab_free_after_gp().  One
 *                      grace period per collection, whatever the number
 *                      of objects.
 *
 * If a batch cannot be allocated, kfree_rcu() links the object through
 * its rcu_head onto the global overflow chain instead (the rcu_head's
 * func field holds the head's offset, as the kernel does); it never
 * blocks for memory.  kfree_rcu_mightsleep() has no rcu_head: without a
 * batch it waits for a grace period itself and frees at once.
 *
 * Bounded memory: pending counts objects handed over and not yet freed.
 * A thread handing over a batch while pending exceeds KSLAB_RCU_MAX_PENDING
 * waits until the reclaim thread brings it under half the bound - unless
 * it is inside a read-side critical section, where waiting for a grace
 * period would deadlock.  So, while grace periods complete and frees are
 * made outside read-side sections, at most KSLAB_RCU_MAX_PENDING objects
 * plus two batches per thread (one handed over past the bound, one
 * filling) wait.  Frees made inside read-side sections are not held back.
 *
 * Locks: gp_mutex (held across every grace period kslab waits for, so
 * fork() never leaves liburcu's grace-period lock held in the child),
 * reclaim_mutex (held while a collection is freed, so fork() never splits
 * one between parent and child) and rcu_lock (lists, counters, every
 * thread's batch pointer and stolen index).  Where they nest among the
 * other locks: the one list at the top of mm/lifecycle.c.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>
#include <urcu/flavor.h>

#include <kslab/workqueue.h>

#include "lib/options.h"
#include "lib/ptr_batch.h"
#include "lib/time.h"
#include "lib/workqueue.h"
#include "mm/slab.h"

/* a full batch wakes a waiting reclaim thread once this many are ready */
#define RCU_WAKE_BATCHES	16
#define RCU_SPARE_BATCHES	32
#define RCU_BATCH_OBJS		KSLAB_PTR_BATCH_OBJS

static const struct rcu_flavor_struct *rcu_flavor = &urcu_memb_flavor;
static bool rcu_used;			/* an RCU free happened */

static pthread_mutex_t rcu_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t rcu_done = PTHREAD_COND_INITIALIZER;
static pthread_mutex_t reclaim_mutex = PTHREAD_MUTEX_INITIALIZER;
/* held across every grace period kslab waits for; see rcu_atfork_prepare_outer() */
static pthread_mutex_t gp_mutex = PTHREAD_MUTEX_INITIALIZER;
static struct kslab_ptr_fifo ready;		/* batches handed over */
static struct kslab_ptr_batch *in_flight;
static struct rcu_head *ready_overflow, *in_flight_overflow;
static LIST_HEAD(rcu_slabs);		/* SLAB_TYPESAFE_BY_RCU slabs to unmap */
static LIST_HEAD(in_flight_slabs);
static struct workqueue_struct *rcu_wq;	/* "kslab-rcu", on first use */
static struct delayed_work rcu_reclaim_work;
static bool reclaimer_started, barrier_wanted;
static bool reclaimer_idle;		/* in a timed wait for a partial batch */
static bool reclaimer_asleep;		/* waiting with no deadline */
static unsigned int ready_batches;	/* batches on the ready list */
static struct kslab_ptr_batch *spare_batches;	/* emptied batches for reuse */
static unsigned int nr_spare_batches;
static unsigned long collect_seq, done_seq;
static size_t pending, peak_pending;
static struct kslab_rcu_stats rcu_stats;
static size_t max_pending;
static unsigned long batch_delay_ms;

static __cold void report_rcu(const char *what, const void *p)
{
	slab_warn("%s %p", what, p);
}

/* The caller's misuse: KSLAB_ABORT_ON_ERROR applies. */
static __cold void report_rcu_misuse(const char *what, const void *p)
{
	slab_misuse("%s %p", what, p);
}

static bool inside_read_section(void)
{
	return rcu_flavor->read_ongoing && rcu_flavor->read_ongoing();
}

/* ------------------------------------------------------- reclaim thread */

static void synchronize_flavor(void)
{
	pthread_mutex_lock(&gp_mutex);
	rcu_flavor->update_synchronize_rcu();
	pthread_mutex_unlock(&gp_mutex);
}

/* Append a detached batch and overflow chain (@n objects) to the ready lists. */
static void add_ready(struct kslab_ptr_batch *b, struct rcu_head *overflow,
		      unsigned long n)
{
	if (b) {
		b->next = NULL;
		kslab_ptr_fifo_push_tail(&ready, b);
		ready_batches++;
		rcu_stats.batches++;
	}
	if (overflow) {
		struct rcu_head *tail = overflow;

		while (tail->next.next)
			tail = (struct rcu_head *)tail->next.next;
		tail->next.next = (struct cds_wfcq_node *)ready_overflow;
		ready_overflow = overflow;
	}
	pending += n;
	if (pending > peak_pending)
		peak_pending = pending;
}

/* Objects waiting in @rt's batch.  Context: rcu_lock held. */
static unsigned long thread_waiting(struct rcu_thread *rt)
{
	struct kslab_ptr_batch *b = rt->batch;

	/* sequentially consistent: the reclaim thread's sleep check needs it */
	return b ? __atomic_load_n(&b->nr, __ATOMIC_SEQ_CST) - rt->stolen : 0;
}

static struct kslab_ptr_batch *get_spare_batch(void)
{
	struct kslab_ptr_batch *b = spare_batches;

	if (b) {
		spare_batches = b->next;
		nr_spare_batches--;
	} else {
		b = slab_meta_alloc(KSLAB_PTR_BATCH_BYTES);
	}
	if (b)
		b->nr = 0;
	return b;
}

/*
 * Copy what waits in @rt's batch onto the ready list.  The owner may be
 * appending meanwhile: it only writes beyond the nr read here.
 * Context: rcu_lock held.
 */
static void steal_thread_batch(struct rcu_thread *rt)
{
	struct kslab_ptr_batch *b = rt->batch, *copy;
	unsigned long nr, n;

	if (!b)
		return;
	/* pairs with the owner's release: objs[] below nr are written */
	nr = smp_load_acquire(&b->nr);
	n = nr - rt->stolen;
	if (!n)
		return;
	copy = get_spare_batch();
	if (!copy)
		return;		/* taken with the full batch, later */
	memcpy(copy->objs, &b->objs[rt->stolen], n * sizeof(void *));
	copy->nr = n;
	add_ready(copy, NULL, n);
	WRITE_ONCE(rt->stolen, nr);
}

/* Collect every thread batch that is due (all of them for a barrier). */
static void collect_partial_batches(bool all, unsigned long now,
				    unsigned long *next_due)
{
	struct kslab_thread *t;

	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t) {
		struct rcu_thread *rt = &t->rcu;
		unsigned long since = READ_ONCE(rt->since_ms);

		if (!thread_waiting(rt))
			continue;
		if (all || now - since >= batch_delay_ms)
			steal_thread_batch(rt);
		else if (since + batch_delay_ms < *next_due)
			*next_due = since + batch_delay_ms;
	}
	pthread_mutex_unlock(&kslab_threads_lock);
}

/*
 * Free every object of a collection through the generic layer, in the
 * order they were freed (objects with finalizers are queued for them
 * there, in that order).  The batches stay untouched: they are still on
 * the in-flight list, which kmem_cache_get_info() may walk.
 * Context: reclaim_mutex held, not rcu_lock.
 */
static size_t free_batches(const struct kslab_ptr_batch *b, struct rcu_head *head)
{
	size_t n = 0;

	for (; b; b = b->next) {
		slab_free_after_gp(b->objs, b->nr);
		n += b->nr;
	}
	while (head) {
		struct rcu_head *next = (struct rcu_head *)head->next.next;
		void *obj = (char *)head - (size_t)(uintptr_t)head->func;

		slab_free_after_gp(&obj, 1);
		head = next;
		n++;
	}
	return n;
}

/* Context: rcu_lock held. */
static bool partial_batch_exists(void)
{
	struct kslab_thread *t;
	bool found = false;

	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t) {
		if (thread_waiting(&t->rcu)) {
			found = true;
			break;
		}
	}
	pthread_mutex_unlock(&kslab_threads_lock);
	return found;
}

/*
 * The reclaim work: collect, wait for one grace period, free; again while
 * anything is ready.  With nothing ready it ends: with a partial batch
 * waiting it re-arms itself for when that batch is due (reclaimer_idle);
 * with nothing at all it is "asleep" until a free or a barrier queues it.
 */
static void rcu_reclaim_fn(struct work_struct *work)
{
	(void)work;
	pthread_mutex_lock(&rcu_lock);
	reclaimer_idle = false;
	for (;;) {
		unsigned long now = kslab_now_ms(), next_due = ~0UL;
		struct kslab_ptr_batch *batches;
		struct rcu_head *overflow;
		LIST_HEAD(slabs);
		unsigned long seq;
		size_t freed;

		collect_partial_batches(barrier_wanted, now, &next_due);
		barrier_wanted = false;
		if (kslab_ptr_fifo_empty(&ready) && !ready_overflow &&
		    list_empty(&rcu_slabs)) {
			if (next_due == ~0UL) {
				/*
				 * Pairs with queue_rcu_free(): both sides store
				 * then load, sequentially consistent, so either
				 * the thread starting a batch sees us asleep
				 * and wakes us, or the recheck sees its batch.
				 */
				__atomic_store_n(&reclaimer_asleep, true,
						 __ATOMIC_SEQ_CST);
				if (partial_batch_exists()) {
					WRITE_ONCE(reclaimer_asleep, false);
					continue;
				}
			} else {
				unsigned long wait_ms = next_due > now ? next_due - now : 1;

				reclaimer_idle = true;
				queue_delayed_work(rcu_wq, &rcu_reclaim_work,
						   msecs_to_jiffies(wait_ms));
			}
			break;
		}
		batches = ready.head;
		ready.head = ready.tail = NULL;
		ready_batches = 0;
		in_flight = batches;
		in_flight_overflow = ready_overflow;
		ready_overflow = NULL;
		list_splice_init(&rcu_slabs, &in_flight_slabs);
		seq = ++collect_seq;
		pthread_mutex_unlock(&rcu_lock);

		synchronize_flavor();

		pthread_mutex_lock(&reclaim_mutex);
		/* objects on the chain are freed next: stop counting them */
		pthread_mutex_lock(&rcu_lock);
		overflow = in_flight_overflow;
		in_flight_overflow = NULL;
		pthread_mutex_unlock(&rcu_lock);
		freed = free_batches(batches, overflow);
		pthread_mutex_lock(&rcu_lock);
		list_splice_init(&in_flight_slabs, &slabs);
		pthread_mutex_unlock(&rcu_lock);
		__slab_unmap_retired(&slabs);
		pthread_mutex_lock(&rcu_lock);
		pthread_mutex_unlock(&reclaim_mutex);
		in_flight = NULL;
		while (batches) {
			struct kslab_ptr_batch *b = batches;

			batches = b->next;
			b->nr = 0;
			if (nr_spare_batches < RCU_SPARE_BATCHES) {
				b->next = spare_batches;
				spare_batches = b;
				nr_spare_batches++;
			} else {
				slab_meta_free(b);
			}
		}
		pending -= freed;
		done_seq = seq;
		rcu_stats.grace_periods++;
		rcu_stats.objects += freed;
		pthread_cond_broadcast(&rcu_done);
	}
	pthread_mutex_unlock(&rcu_lock);
}

/*
 * Make the reclaim work run now, unless it is running and so will see
 * what is ready by itself.  The workqueue "kslab-rcu" is created on first
 * use.  Context: rcu_lock held (the workqueue's locks nest inside every
 * kslab lock).
 */
static void wake_reclaimer(void)
{
	if (unlikely(!rcu_wq)) {
		rcu_wq = alloc_ordered_workqueue("kslab-rcu", WQ_MEM_RECLAIM);
		if (!rcu_wq) {
			slab_warn("cannot create the kslab-rcu workqueue; RCU frees wait");
			return;
		}
		INIT_DELAYED_WORK(&rcu_reclaim_work, rcu_reclaim_fn);
	}
	if (reclaimer_started && !reclaimer_idle && !reclaimer_asleep)
		return;
	WRITE_ONCE(reclaimer_started, true);
	reclaimer_idle = false;
	WRITE_ONCE(reclaimer_asleep, false);
	mod_delayed_work(rcu_wq, &rcu_reclaim_work, 0);
}

/* ------------------------------------------------------ thread batches */

/**
 * rcu_thread_exit - hand an exiting thread's batch over
 * @t: the thread's state
 */
void rcu_thread_exit(struct kslab_thread *t)
{
	struct rcu_thread *rt = &t->rcu;

	if (!rt->registered)
		return;

	pthread_mutex_lock(&rcu_lock);
	steal_thread_batch(rt);
	if (!thread_waiting(rt)) {
		slab_meta_free(rt->batch);
	} else {
		/* no memory to copy into: hand the batch itself over */
		memmove(rt->batch->objs, &rt->batch->objs[rt->stolen],
			thread_waiting(rt) * sizeof(void *));
		rt->batch->nr -= rt->stolen;
		add_ready(rt->batch, NULL, rt->batch->nr);
	}
	rt->batch = NULL;
	rt->stolen = 0;
	rt->registered = false;
	if (!kslab_ptr_fifo_empty(&ready))
		wake_reclaimer();
	pthread_mutex_unlock(&rcu_lock);
}

/* rcu_done's timed waits count on the monotonic clock */
static void init_work_cond(void)
{
	kslab_cond_init_monotonic(&rcu_done);
}

/**
 * rcu_init - read RCU reclaim's options
 *
 * Context: kslab_init().  The reclaim thread starts on the first RCU free.
 */
void rcu_init(void)
{
	init_work_cond();
	max_pending = kslab_option(OPT_RCU_MAX_PENDING);
	batch_delay_ms = kslab_option(OPT_RCU_BATCH_DELAY_MS);
	rcu_stats.max_pending = max_pending;
	/* work items and finalizers are readers of the same flavor */
	kslab_wq_set_rcu_flavor(rcu_flavor);
}

static void register_rcu_thread(struct rcu_thread *rt)
{
	kslab_thread_register();
	pthread_mutex_lock(&rcu_lock);
	WRITE_ONCE(rcu_used, true);
	rt->batch = get_spare_batch();
	rt->stolen = 0;
	rt->registered = true;
	pthread_mutex_unlock(&rcu_lock);
}

/*
 * The batch is full (or missing): hand what waits in it over, put a fresh
 * batch in its place and queue @p there, or through its rcu_head when no
 * batch memory is left.  When too much is waiting already, hold the
 * caller back until the reclaim thread catches up - never inside a
 * read-side critical section, where that would wait on itself.
 * Return: false when @p could not be queued (no memory, no rcu_head).
 */
static noinline bool queue_rcu_free_slow(struct rcu_thread *rt, void *p,
					 size_t head_off)
{
	struct kslab_ptr_batch *b;
	bool queued = true;

	pthread_mutex_lock(&rcu_lock);
	b = rt->batch;
	if (b && b->nr - rt->stolen) {
		unsigned long n = b->nr - rt->stolen;

		memmove(b->objs, &b->objs[rt->stolen], n * sizeof(void *));
		b->nr = n;
		add_ready(b, NULL, n);
		b = NULL;
	}
	if (!b)
		b = get_spare_batch();
	rt->batch = b;
	rt->stolen = 0;
	if (b) {
		b->objs[0] = p;
		WRITE_ONCE(rt->since_ms, kslab_now_ms());
		/* publishes objs[0] to the reclaim thread */
		smp_store_release(&b->nr, 1);
	} else if (head_off != (size_t)-1) {
		struct rcu_head *head = (struct rcu_head *)((char *)p + head_off);

		head->func = (void (*)(struct rcu_head *))(uintptr_t)head_off;
		head->next.next = NULL;
		add_ready(NULL, head, 1);
	} else {
		queued = false;
	}
	/* a reclaim thread in a timed wait comes soon enough by itself */
	if (!reclaimer_started || reclaimer_asleep ||
	    ready_batches >= RCU_WAKE_BATCHES)
		wake_reclaimer();
	if (pending > max_pending && !inside_read_section()) {
		rcu_stats.throttled++;
		wake_reclaimer();
		while (pending > max_pending / 2)
			pthread_cond_wait(&rcu_done, &rcu_lock);
	}
	pthread_mutex_unlock(&rcu_lock);
	return queued;
}


/*
 * Whether @p may be queued: the start of an object kslab handed out, and
 * not refused by the free hook (which marks an object with a finalizer as
 * freed, and reports a second free of one).  *@bad tells a pointer kslab
 * never handed out from a refused free.
 */
static bool rcu_free_allowed(const void *p, const char *caller, bool *bad)
{
	struct slab_obj o;

	*bad = !slab_lookup_obj(p, &o);
	if (unlikely(*bad))
		return false;
	return likely(!slab_hooked(o.slab)) ||
	       !slab_free_hook_rcu(&o, (void *)p, caller);
}

/*
 * Queue @p in this thread's batch.  @head_off is the offset of its
 * rcu_head, or (size_t)-1 without one.
 * Return: false when neither a batch nor the rcu_head could take it.
 */
static __always_inline bool queue_rcu_free(void *p, size_t head_off)
{
	struct rcu_thread *rt = &kslab_self.rcu;
	struct kslab_ptr_batch *b;
	unsigned long n;

	if (unlikely(!rt->registered))
		register_rcu_thread(rt);
	b = rt->batch;
	if (unlikely(!b || b->nr == RCU_BATCH_OBJS))
		return queue_rcu_free_slow(rt, p, head_off);
	n = b->nr;
	b->objs[n] = p;
	if (unlikely(n == READ_ONCE(rt->stolen))) {
		/* the first waiting object: stamp it, publish, wake if asleep */
		WRITE_ONCE(rt->since_ms, kslab_now_ms());
		/* store then load, as the reclaim thread does before sleeping */
		__atomic_store_n(&b->nr, n + 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&reclaimer_asleep, __ATOMIC_SEQ_CST) ||
		    !READ_ONCE(reclaimer_started)) {
			pthread_mutex_lock(&rcu_lock);
			wake_reclaimer();
			pthread_mutex_unlock(&rcu_lock);
		}
		return true;
	}
	/* publishes objs[n] to the reclaim thread, which reads nr first */
	smp_store_release(&b->nr, n + 1);
	return true;
}

/* @p's grace period has passed: free it, or queue its finalizer, now. */
static void free_after_own_gp(void *p)
{
	pthread_mutex_lock(&reclaim_mutex);
	slab_free_after_gp(&p, 1);
	pthread_mutex_unlock(&reclaim_mutex);
}

/**
 * __kslab_kfree_rcu - free @p after a grace period (behind kfree_rcu())
 * @p: a kslab object, or NULL
 * @head_off: offset of the object's struct rcu_head
 *
 * Context: any thread, inside a read-side critical section too.  Never
 * waits for a grace period; outside a read-side section it may wait for
 * the reclaim thread when KSLAB_RCU_MAX_PENDING objects already wait.
 */
void __kslab_kfree_rcu(void *p, size_t head_off)
{
	bool bad;

	if (!p)
		return;
	if (unlikely(!rcu_free_allowed(p, "kfree_rcu", &bad))) {
		if (bad)
			report_rcu_misuse("kfree_rcu: invalid pointer (not an object kslab handed out); ignored:",
				   p);
		return;
	}
	queue_rcu_free(p, head_off);
}

/**
 * __kslab_kfree_rcu_mightsleep - free @p after a grace period, no rcu_head
 * @p: a kslab object, or NULL
 *
 * Context: outside any read-side critical section (reported otherwise);
 * may wait for a grace period when no batch memory is left.
 */
void __kslab_kfree_rcu_mightsleep(void *p)
{
	bool bad;

	if (!p)
		return;
	if (unlikely(!rcu_free_allowed(p, "kfree_rcu_mightsleep", &bad))) {
		if (bad)
			report_rcu_misuse("kfree_rcu_mightsleep: invalid pointer (not an object kslab handed out); ignored:",
				   p);
		return;
	}
	if (unlikely(inside_read_section()))
		report_rcu_misuse("kfree_rcu_mightsleep() called inside an RCU read-side critical section; object",
			   p);
	if (queue_rcu_free(p, (size_t)-1))
		return;
	if (inside_read_section()) {
		report_rcu("kfree_rcu_mightsleep: no memory and inside a read-side critical section; leaking",
			   p);
		return;
	}
	synchronize_flavor();
	free_after_own_gp(p);
}

/**
 * slab_free_deferred - free @obj after a grace period, finalizer first
 * @obj: an object with a finalizer, marked dying
 *
 * Context: a free path; inside a read-side section too.
 */
void slab_free_deferred(void *obj)
{
	if (likely(queue_rcu_free(obj, (size_t)-1)))
		return;
	if (inside_read_section()) {
		report_rcu("no memory to defer the finalizer inside a read-side critical section; leaking",
			   obj);
		return;
	}
	synchronize_flavor();
	free_after_own_gp(obj);
}

/* Whether the calling thread is inside a read-side critical section. */
bool rcu_inside_read_section(void)
{
	return READ_ONCE(rcu_used) && inside_read_section();
}

/**
 * kvfree_rcu_barrier - wait until every RCU free issued so far is done
 *
 * On return every object queued by kfree_rcu() or kfree_rcu_mightsleep()
 * before the call is back in its cache (and its finalizer queued).
 * Context: outside any read-side critical section; inside one it reports
 * and returns at once instead of deadlocking.
 */
void kvfree_rcu_barrier(void)
{
	kvfree_rcu_barrier_until(0, __func__);
}

/**
 * kvfree_rcu_barrier_until - kvfree_rcu_barrier() with a deadline
 * @deadline_ns: CLOCK_MONOTONIC nanoseconds, 0 for none
 * @caller: the public function the user called, for the report inside a
 *	read-side section (NULL: the caller has reported it)
 *
 * For kmem_finalizers_wait(): a reader that stays in its read-side
 * section must not hold a wait with a timeout past it.
 * Context: as kvfree_rcu_barrier().
 * Return: false if the deadline passed first; the frees go on.
 */
bool kvfree_rcu_barrier_until(uint64_t deadline_ns, const char *caller)
{
	bool now_ready, done = true;

	if (!READ_ONCE(rcu_used))
		return true;
	if (inside_read_section()) {
		if (caller)
			slab_warn("%s() called inside an RCU read-side critical section; not waiting",
				  caller);
		return true;
	}
	pthread_mutex_lock(&rcu_lock);
	collect_partial_batches(true, 0, &(unsigned long){ ~0UL });
	now_ready = !kslab_ptr_fifo_empty(&ready) || ready_overflow ||
		    !list_empty(&rcu_slabs);
	if (now_ready || in_flight || in_flight_overflow ||
	    !list_empty(&in_flight_slabs)) {
		/* what is ready now goes in the next collection */
		unsigned long target = collect_seq + (now_ready ? 1 : 0);

		barrier_wanted = true;
		wake_reclaimer();
		while (done_seq < target) {
			if (!kslab_cond_wait_until(&rcu_done, &rcu_lock,
						   deadline_ns)) {
				done = done_seq >= target;
				break;
			}
		}
	}
	pthread_mutex_unlock(&rcu_lock);
	return done;
}

/**
 * kslab_set_rcu_flavor - the liburcu flavor whose readers kslab waits for
 * @flavor: e.g. &urcu_qsbr_flavor
 *
 * Context: before the first RCU free; later calls are reported and
 * ignored.
 */
void kslab_set_rcu_flavor(const struct rcu_flavor_struct *flavor)
{
	if (!flavor)
		return;
	if (READ_ONCE(rcu_used) && flavor != rcu_flavor) {
		slab_warn("%s() after RCU frees were queued; ignored", __func__);
		return;
	}
	rcu_flavor = flavor;
	kslab_wq_set_rcu_flavor(flavor);
}

/**
 * kslab_rcu_get_stats - counters of the RCU reclaim machinery
 * @st: filled in
 */
void kslab_rcu_get_stats(struct kslab_rcu_stats *st)
{
	struct kslab_thread *t;
	size_t partial = 0;

	kslab_init();
	pthread_mutex_lock(&rcu_lock);
	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t)
		partial += thread_waiting(&t->rcu);
	pthread_mutex_unlock(&kslab_threads_lock);
	*st = rcu_stats;
	st->pending = pending + partial;
	st->peak_pending = peak_pending;
	st->max_pending = max_pending;
	pthread_mutex_unlock(&rcu_lock);
}

/* ------------------------------------------------- slab-side services */

static size_t count_in_batch(const struct kmem_cache *s, struct kslab_ptr_batch *b,
			     unsigned long from, struct rcu_head *overflow)
{
	size_t n = 0;
	/* pairs with the owner's release, as in steal_thread_batch() */
	unsigned long i, nr = b ? smp_load_acquire(&b->nr) : 0;

	for (i = from; i < nr; i++) {
		struct slab *slab = virt_to_slab(b->objs[i]);

		n += slab && slab_cache(slab) == s;
	}
	for (; overflow; overflow = (struct rcu_head *)overflow->next.next) {
		void *obj = (char *)overflow - (size_t)(uintptr_t)overflow->func;
		struct slab *slab = virt_to_slab(obj);

		n += slab && slab_cache(slab) == s;
	}
	return n;
}

/**
 * slab_rcu_pending - objects of @s waiting for a grace period
 * @s: the cache
 *
 * Context: no cache lock held; walks every batch under rcu_lock.
 */
size_t slab_rcu_pending(struct kmem_cache *s)
{
	struct kslab_thread *t;
	struct kslab_ptr_batch *b;
	size_t n = 0;

	if (!READ_ONCE(rcu_used))
		return 0;
	pthread_mutex_lock(&rcu_lock);
	for (b = ready.head; b; b = b->next)
		n += count_in_batch(s, b, 0, NULL);
	for (b = in_flight; b; b = b->next)
		n += count_in_batch(s, b, 0, NULL);
	n += count_in_batch(s, NULL, 0, ready_overflow);
	n += count_in_batch(s, NULL, 0, in_flight_overflow);
	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t)
		n += count_in_batch(s, t->rcu.batch, t->rcu.stolen, NULL);
	pthread_mutex_unlock(&kslab_threads_lock);
	pthread_mutex_unlock(&rcu_lock);
	return n;
}

/**
 * slab_rcu_barrier - kvfree_rcu_barrier() for kmem_cache_destroy()
 *
 * Return: false when called inside a read-side critical section (the
 * pending frees could not be waited for).
 */
bool slab_rcu_barrier(void)
{
	if (!READ_ONCE(rcu_used))
		return true;
	if (inside_read_section())
		return false;
	kvfree_rcu_barrier();
	return true;
}

/**
 * rcu_retire_slabs - unmap SLAB_TYPESAFE_BY_RCU slabs only after a grace
 * period (the generic layer's slab_retire_hook())
 * @list: slabs already off their cache and out of the address map
 *
 * The reclaim work unmaps them with __slab_unmap_retired() after its
 * next grace period.  Context: no cache lock held.  Never waits.
 */
void rcu_retire_slabs(struct list_head *list)
{
	if (list_empty(list))
		return;
	kslab_init();
	pthread_mutex_lock(&rcu_lock);
	WRITE_ONCE(rcu_used, true);
	list_splice_init(list, &rcu_slabs);
	wake_reclaimer();
	pthread_mutex_unlock(&rcu_lock);
}

/* ------------------------------------------------------------------ fork */

/*
 * fork() takes kslab's locks in one global order (the list at the top of
 * mm/lifecycle.c): gp_mutex first, so no grace period of kslab's is in
 * flight (liburcu's own grace-period lock would stay held in the child,
 * and every grace period there would hang); reclaim_mutex before
 * slab_mutex (the reclaim work frees into caches); rcu_lock after the
 * user caches' locks and slab_mutex, before the metadata caches' (batches
 * are allocated under it).  Like liburcu itself, this asks that no thread sit
 * inside a read-side critical section across fork(): a grace period in
 * flight waits for it.
 */
static bool fork_holds_gp_mutex;

void rcu_atfork_prepare_outer(void)
{
	/*
	 * Inside a read-side section, waiting for a grace period in flight
	 * would wait on ourselves: report instead.
	 */
	fork_holds_gp_mutex = !(READ_ONCE(rcu_used) && inside_read_section());
	if (fork_holds_gp_mutex)
		pthread_mutex_lock(&gp_mutex);
	else
		slab_warn("fork() inside an RCU read-side critical section: grace periods may not complete in the child");
	pthread_mutex_lock(&reclaim_mutex);
}

void rcu_atfork_prepare_inner(void)
{
	pthread_mutex_lock(&rcu_lock);
}

void rcu_atfork_parent_inner(void)
{
	pthread_mutex_unlock(&rcu_lock);
}

void rcu_atfork_parent_outer(void)
{
	pthread_mutex_unlock(&reclaim_mutex);
	if (fork_holds_gp_mutex)
		pthread_mutex_unlock(&gp_mutex);
}

void rcu_atfork_child_outer(void)
{
	pthread_mutex_unlock(&reclaim_mutex);
	if (fork_holds_gp_mutex)
		pthread_mutex_unlock(&gp_mutex);
}

/*
 * The child has no reclaim thread and none of the other threads.  A
 * collection in flight was not freed (reclaim_mutex was ours), so it goes
 * back to the ready list; other threads' batches become ready too.  The
 * child frees them after a grace period of its own: each object once,
 * in the child's copy of the heap.
 */
void rcu_atfork_child_inner(void)
{
	if (in_flight) {
		struct kslab_ptr_fifo back = { in_flight, in_flight };

		/* the collection in flight was older than what is ready */
		while (back.tail->next)
			back.tail = back.tail->next;
		kslab_ptr_fifo_splice_tail(&back, &ready);
		ready = back;
		in_flight = NULL;
	}
	if (in_flight_overflow) {
		add_ready(NULL, in_flight_overflow, 0);
		in_flight_overflow = NULL;
	}
	list_splice_init(&in_flight_slabs, &rcu_slabs);
	/*
	 * No thread starts in the child for what the parent left: a child
	 * that only calls exec() never gets one.  The reclaim work armed in
	 * the parent is disarmed (nothing runs it here: the workqueue's
	 * locks are free again and its workers forgotten, so this does not
	 * wait), and the next RCU free or barrier queues it.
	 */
	if (rcu_wq)
		cancel_delayed_work_sync(&rcu_reclaim_work);
	WRITE_ONCE(reclaimer_started, false);
	reclaimer_idle = false;
	/* waiters in the parent's threads do not exist here */
	WRITE_ONCE(reclaimer_asleep, false);
	init_work_cond();
	pthread_mutex_unlock(&rcu_lock);
}

/**
 * rcu_thread_gone - what waited in the batch of a thread a fork() child
 * lacks is ready
 * @t: that thread's state, in the child's copy of memory
 *
 * The child frees those objects after a grace period of its own: each
 * object once, in the child's copy of the heap.
 */
void rcu_thread_gone(struct kslab_thread *t)
{
	struct rcu_thread *rt = &t->rcu;

	if (!rt->registered)
		return;
	pthread_mutex_lock(&rcu_lock);
	if (thread_waiting(rt)) {
		struct kslab_ptr_batch *b = rt->batch;
		unsigned long n = b->nr - rt->stolen;

		memmove(b->objs, &b->objs[rt->stolen], n * sizeof(void *));
		b->nr = n;
		add_ready(b, NULL, n);
	} else {
		slab_meta_free(rt->batch);
	}
	rt->batch = NULL;
	rt->registered = false;
	pthread_mutex_unlock(&rcu_lock);
}
