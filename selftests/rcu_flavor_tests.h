/* SPDX-License-Identifier: MIT */
/*
 * The tests shared by rcu_flavor_{memb,qsbr,mb,bp}_test.c: kfree_rcu()
 * with readers of one liburcu flavor, and kslab's own threads as such
 * readers: a work item or a finalizer inside a read-side section holds up
 * grace periods, in a fork() child too.  Each includes <kslab/slab.h> and
 * its flavor's header, then defines before including this one:
 *
 *   RCU_FLAVOR_NAME		cache name prefix, e.g. "mb"
 *   RCU_FLAVOR_OBJ_MAGIC	the objects' magic word
 *
 * and may define (defaults below, for flavors with read-side sections):
 *
 *   RCU_FLAVOR_SECTION_CACHE	the section test's cache name
 *   RCU_FLAVOR_TEST_HOLD, RCU_FLAVOR_TEST_SECTION, RCU_FLAVOR_TEST_READERS
 *				the names of the three tests below
 *   RCU_FLAVOR_BLOCKED_MSG	logged when the section test's thread blocked
 *
 * and the hooks flavor_use() (kslab_set_rcu_flavor() of the flavor),
 * flavor_reader_register()/_unregister(), flavor_read_lock()/_unlock(),
 * flavor_quiescent_state(), flavor_synchronize() (its synchronize_rcu()),
 * and flavor_enter_section()/_exit_section(),
 * which put the calling thread where kslab must treat it as inside a
 * read-side section and take it back out.  A flavor whose threads can go
 * offline also defines RCU_FLAVOR_HAS_OFFLINE and flavor_thread_offline()/
 * _online().  Flavor-only tests follow the include in the flavor's file.
 */
#ifndef _RCU_FLAVOR_TESTS_H
#define _RCU_FLAVOR_TESTS_H

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kslab/finalizer.h>
#include <kslab/slab.h>
#include <kslab/workqueue.h>

/*
 * The harness hands every test a variant argument it rarely uses, and its
 * EXPECT_*() macros compare a plain literal with the checked value's own
 * type; neither is worth a cast at every call site.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#ifndef RCU_FLAVOR_SECTION_CACHE
#define RCU_FLAVOR_SECTION_CACHE	RCU_FLAVOR_NAME "_inside"
#endif
#ifndef RCU_FLAVOR_TEST_HOLD
#define RCU_FLAVOR_TEST_HOLD	reader_keeps_the_object_until_it_leaves_its_read_section
#endif
#ifndef RCU_FLAVOR_TEST_SECTION
#define RCU_FLAVOR_TEST_SECTION	barrier_inside_a_read_section_is_reported_and_returns
#endif
#ifndef RCU_FLAVOR_TEST_READERS
#define RCU_FLAVOR_TEST_READERS	readers_never_see_a_freed_object
#endif
#ifndef RCU_FLAVOR_BLOCKED_MSG
#define RCU_FLAVOR_BLOCKED_MSG \
	"kfree_rcu() or the barrier blocked inside a read-side critical section"
#endif

#define RCU_BATCH_OBJS		509
#define HANDOFF_TIMEOUT_MS	10000
#define HOLD_MS			50
/* how long a grace period held up by a reader is watched */
#define GP_HELD_MS		150
/* bound for a grace period nothing holds up, on a loaded machine */
#define GP_PROMPT_MS		2000

#if KSLAB_TEST_TSAN
/*
 * The fork test starts kslab's threads in the child of a threaded parent,
 * which ThreadSanitizer refuses by default; kslab's fork handlers are
 * what make that safe.
 */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#endif

#define load_relaxed(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define store_relaxed(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/* As in rcu_reclaim_test.c: liburcu's pointer macros under ThreadSanitizer. */
#if KSLAB_TEST_TSAN
#define publish(slot, p)	__atomic_store_n(&(slot), (p), __ATOMIC_RELEASE)
#define deref(slot)		__atomic_load_n(&(slot), __ATOMIC_ACQUIRE)
#else
#define publish(slot, p)	rcu_assign_pointer(slot, p)
#define deref(slot)		rcu_dereference(slot)
#endif

/* ---- objects ----------------------------------------------------------- */

#define OBJ_MAGIC	RCU_FLAVOR_OBJ_MAGIC
#define OBJ_WORDS	4

struct rcu_obj {
	uint64_t magic;
	uint64_t seq;
	struct rcu_head rcu;
	uint64_t payload[OBJ_WORDS];
};

static uint64_t payload_word(uint64_t seq, unsigned int i)
{
	return ((seq + i) * 0x9e3779b97f4a7c15ULL) ^ OBJ_MAGIC;
}

static void obj_fill(struct rcu_obj *o, uint64_t seq)
{
	unsigned int i;

	store_relaxed(o->seq, seq);
	for (i = 0; i < OBJ_WORDS; i++)
		store_relaxed(o->payload[i], payload_word(seq, i));
	store_relaxed(o->magic, OBJ_MAGIC);
}

static bool obj_intact(const struct rcu_obj *o, uint64_t seq)
{
	unsigned int i;

	if (load_relaxed(o->magic) != OBJ_MAGIC || load_relaxed(o->seq) != seq)
		return false;
	for (i = 0; i < OBJ_WORDS; i++)
		if (load_relaxed(o->payload[i]) != payload_word(seq, i))
			return false;
	return true;
}

static struct kmem_cache *obj_cache(const char *name)
{
	return kmem_cache_create(name, sizeof(struct rcu_obj), 0, 0, NULL);
}

static struct kmem_cache_info cache_info(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	if (kmem_cache_get_info(s, &info))
		info.active_objs = info.pending_rcu = (size_t)-1;
	return info;
}

static size_t rcu_objects_freed(void)
{
	struct kslab_rcu_stats st;

	memset(&st, 0, sizeof(st));
	kslab_rcu_get_stats(&st);
	return st.objects;
}

#define EXPECT_RECLAIMED_AND_DESTROY(s) do {				\
	struct stderr_capture __cap;					\
	EXPECT_EQ(0, cache_info(s).pending_rcu);			\
	EXPECT_EQ(0, cache_info(s).active_objs);			\
	stderr_capture_begin(&__cap);					\
	kmem_cache_destroy(s);						\
	EXPECT_TEXT_EMPTY(stderr_capture_end(&__cap));			\
	stderr_capture_release(&__cap);					\
} while (0)

/* Allocates and frees objects of @s so an early free would be reused. */
static bool churn_cache(struct kmem_cache *s, size_t nr)
{
	struct rcu_obj **objs = calloc(nr, sizeof(*objs));
	size_t i;

	if (!objs)
		return false;
	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i])
			break;
		obj_fill(objs[i], 1000000 + i);
	}
	nr = i;
	for (i = 0; i < nr; i++)
		kmem_cache_free(s, objs[i]);
	free(objs);
	return nr;
}

static struct rcu_obj **alloc_objs(struct kmem_cache *s, size_t nr)
{
	struct rcu_obj **objs = calloc(nr, sizeof(*objs));
	size_t i;

	if (!objs)
		return NULL;
	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i])
			return NULL;
		obj_fill(objs[i], i);
	}
	return objs;
}

/* ---- a reader that holds on to what it saw ----------------------------- */

struct holder {
	struct rcu_obj **slot;
	uint64_t seq;
	int inside;
	int release;
	unsigned long checks;
	unsigned long errors;
	pthread_t tid;
};

/*
 * Registers, enters a read-side section, reads the object and then checks
 * it every millisecond, with no quiescent state, until released (or after
 * HANDOFF_TIMEOUT_MS, counting an error); then leaves, passes a quiescent
 * state and unregisters.
 */
static void *hold_read_section(void *arg)
{
	struct holder *h = arg;
	unsigned long long deadline = monotonic_ms() + HANDOFF_TIMEOUT_MS;
	struct rcu_obj *obj;

	flavor_reader_register();
	flavor_read_lock();
	obj = deref(*h->slot);
	if (!obj)
		h->errors++;
	flag_set(&h->inside, 1);
	for (;;) {
		bool last = flag_get(&h->release);

		if (obj && !obj_intact(obj, h->seq))
			h->errors++;
		h->checks++;
		if (last)
			break;
		if (monotonic_ms() >= deadline) {
			h->errors++;
			break;
		}
		sleep_ms(1);
	}
	flavor_read_unlock();
	flavor_quiescent_state();
	flavor_reader_unregister();
	return NULL;
}

TEST(RCU_FLAVOR_TEST_HOLD)
{
	struct holder h = { .seq = 11 };
	struct rcu_obj *slot = NULL, *obj;
	struct kmem_cache *s;

	flavor_use();
	s = obj_cache(RCU_FLAVOR_NAME "_hold");
	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	obj_fill(obj, h.seq);
	publish(slot, obj);
	h.slot = &slot;
	ASSERT_EQ(0, pthread_create(&h.tid, NULL, hold_read_section, &h));
	ASSERT_TRUE(flag_wait(&h.inside, 1, HANDOFF_TIMEOUT_MS));

	publish(slot, NULL);
	kfree_rcu(obj, rcu);
	EXPECT_TRUE(churn_cache(s, test_scaled(20000)));
	sleep_ms(HOLD_MS);
	EXPECT_EQ(1, cache_info(s).pending_rcu);
	EXPECT_EQ(1, cache_info(s).active_objs);

	flag_set(&h.release, 1);
	ASSERT_EQ(0, join_thread_within(h.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, h.errors);
	EXPECT_LT(0, h.checks);
	kvfree_rcu_barrier();
	EXPECT_EQ(1, rcu_objects_freed());
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- frees and the barrier inside a read-side section ------------------ */

/*
 * A thread inside a section frees @nr objects, then calls the barrier
 * (with RCU_FLAVOR_HAS_OFFLINE, after going offline if @offline).
 */
struct section_freer {
	struct rcu_obj **objs;
	size_t nr;
#ifdef RCU_FLAVOR_HAS_OFFLINE
	bool offline;
#endif
	int done;
	int release;
	unsigned long errors;
	pthread_t tid;
};

#ifdef RCU_FLAVOR_HAS_OFFLINE
static void freer_offline(const struct section_freer *f)
{
	if (f->offline)
		flavor_thread_offline();
}

static void freer_online(const struct section_freer *f)
{
	if (f->offline)
		flavor_thread_online();
}
#else
static void freer_offline(const struct section_freer *f) { }
static void freer_online(const struct section_freer *f) { }
#endif

static void *free_inside_read_section(void *arg)
{
	struct section_freer *f = arg;
	size_t i;

	flavor_enter_section();
	for (i = 0; i < f->nr; i++)
		kfree_rcu(f->objs[i], rcu);
	freer_offline(f);
	kvfree_rcu_barrier();
	flag_set(&f->done, 1);
	if (!flag_wait(&f->release, 1, HANDOFF_TIMEOUT_MS))
		f->errors++;
	freer_online(f);
	flavor_exit_section();
	return NULL;
}

/* Captures stderr and starts @f's thread; on failure, stops capturing. */
static int start_section_freer(struct section_freer *f,
			       struct stderr_capture *cap)
{
	int err;

	stderr_capture_begin(cap);
	err = pthread_create(&f->tid, NULL, free_inside_read_section, f);
	if (err) {
		stderr_capture_end(cap);
		stderr_capture_release(cap);
	}
	return err;
}

/* Waits for @f's thread to call the barrier, then stops capturing. */
static bool wait_section_freer(struct section_freer *f,
			       struct stderr_capture *cap, const char **text)
{
	bool returned = flag_wait(&f->done, 1, HANDOFF_TIMEOUT_MS);

	*text = stderr_capture_end(cap);
	return returned;
}

/*
 * kfree_rcu() inside the section never blocks; the barrier there is
 * reported and returns instead of waiting for the thread itself.
 */
TEST(RCU_FLAVOR_TEST_SECTION)
{
	struct section_freer f = { .nr = 4 * RCU_BATCH_OBJS + 3 };
	struct stderr_capture cap;
	struct kmem_cache *s;
	const char *text;
	bool returned;

	flavor_use();
	s = obj_cache(RCU_FLAVOR_SECTION_CACHE);
	ASSERT_NE(NULL, s);
	f.objs = alloc_objs(s, f.nr);
	ASSERT_NE(NULL, f.objs);

	ASSERT_EQ(0, start_section_freer(&f, &cap));
	returned = wait_section_freer(&f, &cap, &text);
	EXPECT_TRUE(returned) TH_LOG(RCU_FLAVOR_BLOCKED_MSG);
	EXPECT_TEXT_CONTAINS(text, "inside an RCU read-side critical section");
	stderr_capture_release(&cap);
	/* The thread is still inside: nothing could be reclaimed. */
	EXPECT_EQ(f.nr, cache_info(s).pending_rcu);
	EXPECT_EQ(f.nr, cache_info(s).active_objs);

	flag_set(&f.release, 1);
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);
	kvfree_rcu_barrier();
	EXPECT_EQ(f.nr, rcu_objects_freed());
	free(f.objs);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- readers and updaters ---------------------------------------------- */

#define NR_SLOTS	32

struct table {
	struct rcu_obj *slot[NR_SLOTS];
	struct kmem_cache *s;
	uint64_t next_seq;
	int stop;
};

struct worker {
	struct table *t;
	unsigned int id;
	size_t iterations;
	size_t freed;
	unsigned long passes;
	unsigned long errors;
	pthread_t tid;
};

static uint64_t next_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Unregistered updaters: kfree_rcu() needs no registration. */
static void *update_table(void *arg)
{
	struct worker *w = arg;
	struct table *t = w->t;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL * (w->id + 1);
	size_t it;

	for (it = 0; it < w->iterations; it++) {
		unsigned int i = next_rand(&rnd) % NR_SLOTS;
		uint64_t seq = __atomic_add_fetch(&t->next_seq, 1, __ATOMIC_RELAXED);
		struct rcu_obj *obj = kmem_cache_alloc(t->s, GFP_KERNEL), *old;

		if (!obj) {
			w->errors++;
			continue;
		}
		obj_fill(obj, seq);
		old = __atomic_exchange_n(&t->slot[i], obj, __ATOMIC_ACQ_REL);
		if (old) {
			kfree_rcu(old, rcu);
			w->freed++;
		}
	}
	return NULL;
}

/* Every pass: walk the table inside one section, recheck, then leave it. */
static void *read_table(void *arg)
{
	struct worker *w = arg;
	struct table *t = w->t;

	flavor_reader_register();
	while (!flag_get(&t->stop)) {
		struct rcu_obj *seen[NR_SLOTS];
		uint64_t seq[NR_SLOTS];
		unsigned int i;

		flavor_read_lock();
		for (i = 0; i < NR_SLOTS; i++) {
			seen[i] = deref(t->slot[i]);
			if (!seen[i])
				continue;
			seq[i] = load_relaxed(seen[i]->seq);
			if (!obj_intact(seen[i], seq[i]))
				w->errors++;
		}
		for (i = 0; i < NR_SLOTS; i++)
			if (seen[i] && !obj_intact(seen[i], seq[i]))
				w->errors++;
		flavor_read_unlock();
		flavor_quiescent_state();
		w->passes++;
	}
	flavor_reader_unregister();
	return NULL;
}

TEST(RCU_FLAVOR_TEST_READERS)
{
	enum { UPDATERS = 2, READERS = 2 };
	struct worker u[UPDATERS], r[READERS];
	size_t freed = 0;
	struct table *t;
	unsigned int i;

	flavor_use();
	t = calloc(1, sizeof(*t));
	ASSERT_NE(NULL, t);
	t->s = obj_cache(RCU_FLAVOR_NAME "_table");
	ASSERT_NE(NULL, t->s);
	for (i = 0; i < READERS; i++) {
		r[i] = (struct worker){ .t = t, .id = i };
		ASSERT_EQ(0, pthread_create(&r[i].tid, NULL, read_table, &r[i]));
	}
	for (i = 0; i < UPDATERS; i++) {
		u[i] = (struct worker){
			.t = t, .id = i, .iterations = test_scaled(200000),
		};
		ASSERT_EQ(0, pthread_create(&u[i].tid, NULL, update_table, &u[i]));
	}
	for (i = 0; i < UPDATERS; i++) {
		ASSERT_EQ(0, join_thread_within(u[i].tid, 20000));
		EXPECT_EQ(0, u[i].errors);
		freed += u[i].freed;
	}
	flag_set(&t->stop, 1);
	for (i = 0; i < READERS; i++) {
		ASSERT_EQ(0, join_thread_within(r[i].tid, HANDOFF_TIMEOUT_MS));
		EXPECT_EQ(0, r[i].errors) TH_LOG("reader %u", i);
		EXPECT_LT(0, r[i].passes);
	}
	for (i = 0; i < NR_SLOTS; i++) {
		if (t->slot[i]) {
			kfree_rcu(t->slot[i], rcu);
			freed++;
		}
	}
	kvfree_rcu_barrier();
	EXPECT_EQ(freed, rcu_objects_freed());
	EXPECT_RECLAIMED_AND_DESTROY(t->s);
	free(t);
}

/* ---- work items and finalizers as readers ------------------------------ */

/* A thread that waits for one grace period of the flavor. */
struct gp_waiter {
	int done;
	pthread_t tid;
};

static void *wait_for_grace_period(void *arg)
{
	struct gp_waiter *gp = arg;

	flavor_synchronize();
	flag_set(&gp->done, 1);
	return NULL;
}

static int start_grace_period(struct gp_waiter *gp)
{
	gp->done = 0;
	return pthread_create(&gp->tid, NULL, wait_for_grace_period, gp);
}

/* Whether @gp's grace period ended within @timeout_ms (it is then joined). */
static bool grace_period_ends_within(struct gp_waiter *gp,
				     unsigned int timeout_ms)
{
	return !join_thread_within(gp->tid, timeout_ms);
}

/*
 * What a work item or a finalizer does here: enter a read-side section,
 * say so, stay until released (or HANDOFF_TIMEOUT_MS, an error), leave.
 */
struct section_holder {
	int inside;
	int release;
	int errors;
};

static void hold_section(struct section_holder *h)
{
	flavor_read_lock();
	flag_set(&h->inside, 1);
	if (!flag_wait(&h->release, 1, HANDOFF_TIMEOUT_MS))
		__atomic_fetch_add(&h->errors, 1, __ATOMIC_RELAXED);
	flavor_read_unlock();
}

enum gp_outcome {
	GP_HELD_THEN_ENDED,	/* what a reader must cause */
	GP_ENDED_EARLY,		/* ended while the reader was inside */
	GP_NEVER_ENDED,		/* still waiting after the reader left */
	GP_NO_READER,		/* the reader never got inside */
	GP_NO_THREAD,
};

/*
 * With @h about to enter its section: a grace period started once it is
 * inside must still be waiting GP_HELD_MS later, and end once @h leaves.
 */
static enum gp_outcome watch_grace_period(struct section_holder *h)
{
	struct gp_waiter gp;
	bool ended_early;

	if (!flag_wait(&h->inside, 1, HANDOFF_TIMEOUT_MS))
		return GP_NO_READER;
	if (start_grace_period(&gp)) {
		flag_set(&h->release, 1);
		return GP_NO_THREAD;
	}
	sleep_ms(GP_HELD_MS);
	ended_early = flag_get(&gp.done);
	flag_set(&h->release, 1);
	if (!grace_period_ends_within(&gp, HANDOFF_TIMEOUT_MS))
		return GP_NEVER_ENDED;
	return ended_early ? GP_ENDED_EARLY : GP_HELD_THEN_ENDED;
}

struct reader_work {
	struct work_struct work;
	struct section_holder h;
};

static void reader_work_fn(struct work_struct *work)
{
	hold_section(&container_of(work, struct reader_work, work)->h);
}

static void nop_work_fn(struct work_struct *work)
{
}

TEST(work_item_in_a_read_section_holds_up_grace_periods)
{
	struct reader_work rw = { 0 };

	flavor_use();
	INIT_WORK(&rw.work, reader_work_fn);
	ASSERT_TRUE(queue_work(system_wq, &rw.work));
	EXPECT_EQ(GP_HELD_THEN_ENDED, watch_grace_period(&rw.h));
	flush_work(&rw.work);
	EXPECT_EQ(0, rw.h.errors);
}

static void reader_finalizer(void *obj, void *arg)
{
	hold_section(arg);
}

TEST(finalizer_in_a_read_section_holds_up_grace_periods)
{
	struct section_holder h = { 0 };
	void *obj;

	flavor_use();
	obj = kmalloc(64, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	ASSERT_EQ(0, kmem_set_finalizer(obj, reader_finalizer, &h));
	kfree(obj);
	kmem_gc();
	EXPECT_EQ(GP_HELD_THEN_ENDED, watch_grace_period(&h));
	kmem_finalizers_flush();
	EXPECT_EQ(0, h.errors);
}

/*
 * In a fork() child the parent's workers do not exist, yet liburcu still
 * lists them (they never unregistered): they must hold up no grace period
 * and their records must stay intact while the child starts threads.  The
 * child's own workers register as they start.  Returns an exit status.
 */
static int child_runs_readers(struct workqueue_struct *wq)
{
	struct reader_work rw = { 0 };
	struct gp_waiter gp;
	enum gp_outcome outcome;

	if (start_grace_period(&gp) || !grace_period_ends_within(&gp, GP_PROMPT_MS))
		return 1;
	INIT_WORK(&rw.work, reader_work_fn);
	if (!queue_work(wq, &rw.work))
		return 2;
	outcome = watch_grace_period(&rw.h);
	if (outcome != GP_HELD_THEN_ENDED)
		return 10 + outcome;
	flush_work(&rw.work);
	if (rw.h.errors)
		return 3;
	if (start_grace_period(&gp) || !grace_period_ends_within(&gp, GP_PROMPT_MS))
		return 4;
	return 0;
}

TEST(child_of_fork_runs_work_items_as_readers)
{
	struct workqueue_struct *wq;
	struct work_struct w;
	int status;
	pid_t pid;

	flavor_use();
	wq = alloc_workqueue(RCU_FLAVOR_NAME "-fork", 0, 2);
	ASSERT_NE(NULL, wq);
	/* a registered worker, idle, in the parent at the fork */
	INIT_WORK(&w, nop_work_fn);
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_runs_readers(wq));
	ASSERT_EQ(0, wait_child(pid, 3 * HANDOFF_TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
	/* and the parent's worker still serves it */
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);
	destroy_workqueue(wq);
}

#endif /* _RCU_FLAVOR_TESTS_H */
