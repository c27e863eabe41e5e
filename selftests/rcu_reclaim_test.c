// SPDX-License-Identifier: MIT
/*
 * RCU-deferred frees with the default flavor, urcu-memb: kfree_rcu(),
 * kfree_rcu_mightsleep() and kvfree_rcu_barrier() (<kslab/slab.h>).
 *
 * The central promise: an object freed with kfree_rcu() stays intact for
 * every reader that was inside rcu_read_lock() when it was freed, and goes
 * back to its cache once those readers have left.  A reader thread holds a
 * read-side critical section on an object while another thread frees it
 * and allocates from the same cache; the reader keeps checking the
 * object's pattern and kmem_cache_get_info() must keep counting it as
 * pending.  Around that: frees from threads that exit or never registered
 * with liburcu, frees inside read-side sections (which must never block),
 * the reports for misuse (pointers kslab never returned, a barrier or
 * kfree_rcu_mightsleep() inside a read-side section), kmem_cache_destroy()
 * completing a cache's pending frees, fork() with frees pending, the bound
 * on memory waiting for grace periods, and many threads freeing while
 * readers traverse.
 *
 * "Freed exactly once" is checked three ways: the cache's active_objs
 * drops to 0 (nothing leaked), kslab_rcu_get_stats().objects equals the
 * number of RCU frees issued (nothing freed twice; the harness runs each
 * test in a fresh process, so the counters start at zero), and
 * kmem_cache_destroy() prints nothing.
 *
 * Every wait has a deadline; nothing asserts on how long a grace period
 * takes.  Worker threads count errors and the test thread asserts.
 * ThreadSanitizer cannot see liburcu's grace periods (liburcu is not
 * instrumented), so object fields that a reader may read while the memory
 * is reused elsewhere are accessed with relaxed atomics, which compile to
 * the same plain loads and stores on x86.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kslab/slab.h>

/* Readers use the default flavor, urcu-memb, under its usual names. */
#include <urcu.h>

/*
 * The harness hands every test a variant argument it rarely uses, and its
 * EXPECT_*() macros compare a plain literal with the checked value's own
 * type; neither is worth a cast at every call site.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

/* Pointers per per-thread batch (Documentation/mm/rcu-reclaim.rst). */
#define RCU_BATCH_OBJS		509
#define DEFAULT_MAX_PENDING	1048576UL

/* Deadline for a hand-off between threads; far above a normal run. */
#define HANDOFF_TIMEOUT_MS	10000
/* How long an idle program may take to reclaim, generously. */
#define IDLE_RECLAIM_TIMEOUT_MS	5000
/* How long a reader keeps a freed object in view before letting go. */
#define HOLD_MS			50

/*
 * kslab's reclaim thread has to start in the forked children; without
 * this ThreadSanitizer kills a child that creates a thread after a fork
 * of a threaded process.
 */
#if KSLAB_TEST_TSAN
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#endif

#define load_relaxed(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define store_relaxed(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/*
 * liburcu 0.13's rcu_assign_pointer() is a volatile store and, without
 * _LGPL_SOURCE, rcu_dereference() a plain load handed to a function;
 * ThreadSanitizer takes both for plain accesses racing with each other.
 * Under it, C11 atomics with the same orderings stand in for them.
 */
#if KSLAB_TEST_TSAN
#define publish(slot, p)	__atomic_store_n(&(slot), (p), __ATOMIC_RELEASE)
#define deref(slot)		__atomic_load_n(&(slot), __ATOMIC_ACQUIRE)
#else
#define publish(slot, p)	rcu_assign_pointer(slot, p)
#define deref(slot)		rcu_dereference(slot)
#endif

/* ---- objects ----------------------------------------------------------- */

#define OBJ_MAGIC	0x6b736c6162726375ULL
#define OBJ_WORDS	6

/* seq names the incarnation; magic and payload are derived from it. */
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

/* True when @o still holds what obj_fill(@o, @seq) wrote. */
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

/* @nr objects of @s filled with seq @first..; NULL if any failed. */
static struct rcu_obj **alloc_objs(struct kmem_cache *s, size_t nr,
				   uint64_t first)
{
	struct rcu_obj **objs = calloc(nr ? nr : 1, sizeof(*objs));
	size_t i;

	if (!objs)
		return NULL;
	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i]) {
			while (i--)
				kmem_cache_free(s, objs[i]);
			free(objs);
			return NULL;
		}
		obj_fill(objs[i], first + i);
	}
	return objs;
}

static void kfree_rcu_all(struct rcu_obj **objs, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		kfree_rcu(objs[i], rcu);
}

static struct kmem_cache_info cache_info(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	if (kmem_cache_get_info(s, &info))
		info.active_objs = info.pending_rcu = (size_t)-1;
	return info;
}

static size_t active_objs(struct kmem_cache *s)
{
	return cache_info(s).active_objs;
}

static size_t pending_rcu(struct kmem_cache *s)
{
	return cache_info(s).pending_rcu;
}

static struct kslab_rcu_stats rcu_stats(void)
{
	struct kslab_rcu_stats st;

	memset(&st, 0, sizeof(st));
	kslab_rcu_get_stats(&st);
	return st;
}

/* Polls until @s has nothing pending and @active live objects. */
static bool wait_for_reclaim(struct kmem_cache *s, size_t active,
			     unsigned int timeout_ms)
{
	unsigned long long deadline = monotonic_ms() + timeout_ms;

	for (;;) {
		struct kmem_cache_info info = cache_info(s);

		if (!info.pending_rcu && info.active_objs == active)
			return true;
		if (monotonic_ms() >= deadline)
			return false;
		sleep_ms(1);
	}
}

/* Everything reclaimed: nothing pending, nothing live, a quiet destroy. */
#define EXPECT_RECLAIMED_AND_DESTROY(s) do {				\
	struct stderr_capture __cap;					\
	EXPECT_EQ(0, pending_rcu(s));					\
	EXPECT_EQ(0, active_objs(s));					\
	stderr_capture_begin(&__cap);					\
	kmem_cache_destroy(s);						\
	EXPECT_TEXT_EMPTY(stderr_capture_end(&__cap));			\
	stderr_capture_release(&__cap);					\
} while (0)

/*
 * Allocates, fills and frees @rounds x @nr objects of @s, so an object
 * handed back to the cache too early would be overwritten.
 */
static bool churn_cache(struct kmem_cache *s, size_t nr, unsigned int rounds)
{
	unsigned int r;
	size_t i;

	for (r = 0; r < rounds; r++) {
		struct rcu_obj **objs = alloc_objs(s, nr, 1000000 * (r + 1));

		if (!objs)
			return false;
		for (i = 0; i < nr; i++)
			kmem_cache_free(s, objs[i]);
		free(objs);
		sleep_ms(HOLD_MS / rounds + 1);
	}
	return true;
}

/* ---- a reader that holds a read-side critical section ------------------ */

/*
 * Enters a read-side critical section, picks up the object published in
 * *slot (if slot is set), and stays inside until released, checking the
 * object every millisecond.  Leaves by itself after HANDOFF_TIMEOUT_MS,
 * counting an error, so a test that fails cannot strand it.
 */
struct holder {
	struct rcu_obj **slot;
	uint64_t seq;
	int inside;
	int release;
	unsigned long checks;
	unsigned long errors;
	pthread_t tid;
};

static void *hold_read_section(void *arg)
{
	struct holder *h = arg;
	unsigned long long deadline = monotonic_ms() + HANDOFF_TIMEOUT_MS;
	struct rcu_obj *obj = NULL;

	rcu_register_thread();
	rcu_read_lock();
	if (h->slot) {
		obj = deref(*h->slot);
		if (!obj)
			h->errors++;
	}
	flag_set(&h->inside, 1);
	for (;;) {
		bool last = flag_get(&h->release);

		if (obj) {
			if (!obj_intact(obj, h->seq))
				h->errors++;
			h->checks++;
		}
		if (last)
			break;
		if (monotonic_ms() >= deadline) {
			h->errors++;
			break;
		}
		sleep_ms(1);
	}
	rcu_read_unlock();
	rcu_unregister_thread();
	return NULL;
}

static bool holder_start(struct holder *h)
{
	if (pthread_create(&h->tid, NULL, hold_read_section, h))
		return false;
	return flag_wait(&h->inside, 1, HANDOFF_TIMEOUT_MS);
}

/* Lets the reader leave its read-side section; false if it did not end. */
static bool holder_stop(struct holder *h)
{
	flag_set(&h->release, 1);
	return join_thread_within(h->tid, HANDOFF_TIMEOUT_MS) == 0;
}

/* ---- bad input --------------------------------------------------------- */

TEST(kfree_rcu_of_null_is_a_no_op)
{
	struct rcu_obj *none = NULL;
	struct stderr_capture cap;
	struct kslab_rcu_stats st;

	stderr_capture_begin(&cap);
	/* cppcheck-suppress nullPointer ; only its type is looked at */
	kfree_rcu(none, rcu);
	kfree_rcu_mightsleep(none);
	kvfree_rcu_barrier();
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);

	st = rcu_stats();
	EXPECT_EQ(0, st.pending);
	EXPECT_EQ(0, st.objects);
}

/* kfree_rcu(@p) with stderr captured; the report must say "invalid". */
#define EXPECT_KFREE_RCU_REPORTED_INVALID(p) do {			\
	struct stderr_capture __cap;					\
	stderr_capture_begin(&__cap);					\
	kfree_rcu(p, rcu);						\
	EXPECT_TEXT_CONTAINS(stderr_capture_end(&__cap), "invalid");	\
	stderr_capture_release(&__cap);					\
} while (0)

TEST(kfree_rcu_of_a_pointer_kslab_never_returned_is_reported_and_ignored)
{
	struct rcu_obj on_stack, *from_malloc, *obj, *kobj;
	struct kmem_cache *s;

	s = obj_cache("rcu_invalid");
	ASSERT_NE(NULL, s);
	from_malloc = malloc(sizeof(*from_malloc));
	ASSERT_NE(NULL, from_malloc);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	kobj = kmalloc(3 * sizeof(*kobj), GFP_KERNEL);
	ASSERT_NE(NULL, kobj);
	obj_fill(&on_stack, 1);
	obj_fill(from_malloc, 2);
	obj_fill(obj, 3);
	obj_fill(kobj, 4);

	EXPECT_KFREE_RCU_REPORTED_INVALID(&on_stack);
	EXPECT_KFREE_RCU_REPORTED_INVALID(from_malloc);
	/* Inside a live cache object, and inside a kmalloc object. */
	EXPECT_KFREE_RCU_REPORTED_INVALID((struct rcu_obj *)((char *)obj + 8));
	EXPECT_KFREE_RCU_REPORTED_INVALID(kobj + 1);

	/* Ignored means ignored: nothing was freed, nothing was written. */
	kvfree_rcu_barrier();
	EXPECT_EQ(0, rcu_stats().objects);
	EXPECT_EQ(1, active_objs(s));
	EXPECT_TRUE(obj_intact(&on_stack, 1));
	EXPECT_TRUE(obj_intact(from_malloc, 2));
	EXPECT_TRUE(obj_intact(obj, 3));
	EXPECT_TRUE(obj_intact(kobj, 4));
	free(from_malloc);
	kfree(kobj);
	kmem_cache_free(s, obj);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(kfree_rcu_mightsleep_of_a_pointer_kslab_never_returned_is_reported)
{
	uint64_t on_stack[8] = { 0x5a };
	struct stderr_capture cap;
	char *from_malloc, *kobj;

	from_malloc = malloc(64);
	ASSERT_NE(NULL, from_malloc);
	memset(from_malloc, 0x77, 64);
	kobj = kmalloc(256, GFP_KERNEL);
	ASSERT_NE(NULL, kobj);

	stderr_capture_begin(&cap);
	kfree_rcu_mightsleep(on_stack);
	EXPECT_TEXT_CONTAINS(stderr_capture_end(&cap), "invalid");
	stderr_capture_release(&cap);

	stderr_capture_begin(&cap);
	kfree_rcu_mightsleep(from_malloc);
	EXPECT_TEXT_CONTAINS(stderr_capture_end(&cap), "invalid");
	stderr_capture_release(&cap);

	stderr_capture_begin(&cap);
	kfree_rcu_mightsleep(kobj + 64);
	EXPECT_TEXT_CONTAINS(stderr_capture_end(&cap), "invalid");
	stderr_capture_release(&cap);

	kvfree_rcu_barrier();
	EXPECT_EQ(0, rcu_stats().objects);
	EXPECT_EQ(0x5a, on_stack[0]);
	EXPECT_EQ(0x77, (unsigned char)from_malloc[63]);
	free(from_malloc);
	kfree(kobj);
}

/* ---- a reader keeps what it saw ---------------------------------------- */

/*
 * The test thread frees the object (it never registered with liburcu,
 * which kfree_rcu() allows), then allocates and fills thousands of
 * objects of the same cache: had the object gone back early, it would be
 * counted as free and, likely, overwritten.
 */
TEST(object_stays_intact_while_a_reader_that_saw_it_is_inside)
{
	struct holder h = { .seq = 1 };
	struct rcu_obj *slot = NULL, *obj;
	struct kmem_cache *s;

	s = obj_cache("rcu_hold");
	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	obj_fill(obj, h.seq);
	publish(slot, obj);
	h.slot = &slot;
	ASSERT_TRUE(holder_start(&h));

	publish(slot, NULL);
	kfree_rcu(obj, rcu);
	EXPECT_TRUE(churn_cache(s, test_scaled(20000), 4));
	sleep_ms(HOLD_MS);
	EXPECT_EQ(1, pending_rcu(s));
	EXPECT_EQ(1, active_objs(s));
	EXPECT_EQ(0, rcu_stats().objects);

	ASSERT_TRUE(holder_stop(&h));
	EXPECT_EQ(0, h.errors);
	EXPECT_LT(0, h.checks);
	kvfree_rcu_barrier();
	EXPECT_EQ(1, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

struct barrier_call {
	int done;
	pthread_t tid;
};

static void *call_barrier(void *arg)
{
	struct barrier_call *bc = arg;

	kvfree_rcu_barrier();
	flag_set(&bc->done, 1);
	return NULL;
}

TEST(barrier_waits_for_a_reader_that_can_still_see_the_object)
{
	struct holder h = { .seq = 7 };
	struct rcu_obj *slot = NULL, *obj;
	struct barrier_call bc = { 0 };
	struct kmem_cache *s;
	bool early;

	s = obj_cache("rcu_barrier_wait");
	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	obj_fill(obj, h.seq);
	publish(slot, obj);
	h.slot = &slot;
	ASSERT_TRUE(holder_start(&h));

	publish(slot, NULL);
	kfree_rcu(obj, rcu);
	ASSERT_EQ(0, pthread_create(&bc.tid, NULL, call_barrier, &bc));
	sleep_ms(HOLD_MS);
	early = flag_get(&bc.done);
	EXPECT_FALSE(early) TH_LOG("the barrier returned while a reader could still see the object");
	EXPECT_EQ(1, pending_rcu(s));

	ASSERT_TRUE(holder_stop(&h));
	EXPECT_TRUE(flag_wait(&bc.done, 1, HANDOFF_TIMEOUT_MS));
	ASSERT_EQ(0, join_thread_within(bc.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, h.errors);
	/* The barrier returned: the object is back already, no polling. */
	EXPECT_EQ(0, active_objs(s));
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- barrier and reclaim ----------------------------------------------- */

TEST(barrier_frees_every_object_freed_before_it)
{
	const size_t nr = 3 * RCU_BATCH_OBJS + 17;
	const size_t nr_kmalloc = 1000, nr_large = 8;
	struct rcu_obj **objs, *p;
	struct kslab_rcu_stats st;
	struct kmem_cache *s;
	size_t i;

	s = obj_cache("rcu_barrier");
	ASSERT_NE(NULL, s);
	objs = alloc_objs(s, nr, 0);
	ASSERT_NE(NULL, objs);
	EXPECT_EQ(nr, active_objs(s));
	kfree_rcu_all(objs, nr);
	free(objs);

	/* kmalloc objects of every size class, and directly mapped ones. */
	for (i = 0; i < nr_kmalloc; i++) {
		p = kmalloc(sizeof(*p) + i * 7 % KMALLOC_MAX_CACHE_SIZE,
			    GFP_KERNEL);
		ASSERT_NE(NULL, p);
		obj_fill(p, i);
		kfree_rcu(p, rcu);
	}
	for (i = 0; i < nr_large; i++) {
		p = kmalloc(KMALLOC_MAX_CACHE_SIZE + 1 + i * 10000, GFP_KERNEL);
		ASSERT_NE(NULL, p);
		obj_fill(p, i);
		kfree_rcu(p, rcu);
	}

	kvfree_rcu_barrier();
	st = rcu_stats();
	EXPECT_EQ(nr + nr_kmalloc + nr_large, st.objects);
	EXPECT_EQ(0, st.pending);
	EXPECT_LE(1, st.grace_periods);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(kfree_rcu_mightsleep_frees_objects_without_an_rcu_head)
{
	const size_t nr = 2 * RCU_BATCH_OBJS + 5;
	struct kmem_cache *s;
	size_t i;

	s = kmem_cache_create("rcu_headless", 24, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < nr; i++) {
		uint64_t *p = kmem_cache_alloc(s, GFP_KERNEL);
		char *k = kmalloc(1 + i % 200, GFP_KERNEL);

		ASSERT_NE(NULL, p);
		ASSERT_NE(NULL, k);
		p[0] = i;
		kfree_rcu_mightsleep(p);
		kfree_rcu_mightsleep(k);
	}
	kvfree_rcu_barrier();
	EXPECT_EQ(2 * nr, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* As kfree() takes a const pointer, and as the kernel's kfree_rcu() does. */
TEST(kfree_rcu_takes_a_pointer_to_const)
{
	struct kmem_cache *s = obj_cache("rcu_const");
	const struct rcu_obj *obj;

	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	kfree_rcu(obj, rcu);
	kvfree_rcu_barrier();
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(idle_program_reclaims_a_lone_object_without_a_barrier)
{
	struct kmem_cache *s;
	struct rcu_obj *obj;

	s = obj_cache("rcu_idle");
	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	obj_fill(obj, 1);
	kfree_rcu(obj, rcu);
	EXPECT_TRUE(wait_for_reclaim(s, 0, IDLE_RECLAIM_TIMEOUT_MS))
		TH_LOG("still pending after %u ms: %zu", IDLE_RECLAIM_TIMEOUT_MS,
		       pending_rcu(s));
	EXPECT_EQ(1, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* True when a thread of this process is named @name. */
static bool thread_named(const char *name)
{
	DIR *dir = opendir("/proc/self/task");
	struct dirent *d;
	bool found = false;

	if (!dir)
		return false;
	while (!found && (d = readdir(dir))) {
		char path[300], comm[32] = "";
		FILE *f;

		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", d->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f))
			comm[strcspn(comm, "\n")] = '\0';
		fclose(f);
		found = !strcmp(comm, name);
	}
	closedir(dir);
	return found;
}

TEST(reclaim_thread_is_named_kslab_rcu)
{
	struct rcu_obj *obj = kmalloc(sizeof(*obj), GFP_KERNEL);

	ASSERT_NE(NULL, obj);
	kfree_rcu(obj, rcu);
	kvfree_rcu_barrier();
	EXPECT_TRUE(thread_named("kslab-rcu"));
}

TEST(rcu_frees_are_batched_not_one_grace_period_each)
{
	const size_t nr = test_scaled(200 * RCU_BATCH_OBJS);
	struct kslab_rcu_stats st;
	struct rcu_obj **objs;
	struct kmem_cache *s;

	s = obj_cache("rcu_batched");
	ASSERT_NE(NULL, s);
	objs = alloc_objs(s, nr, 0);
	ASSERT_NE(NULL, objs);
	kfree_rcu_all(objs, nr);
	free(objs);
	kvfree_rcu_barrier();

	st = rcu_stats();
	EXPECT_EQ(nr, st.objects);
	EXPECT_LE(1, st.batches);
	EXPECT_LE(1, st.grace_periods);
	/* Hundreds of objects share a grace period; allow a lot of slack. */
	EXPECT_GE(nr / 64, st.grace_periods)
		TH_LOG("%lu grace periods for %zu objects in %lu batches",
		       st.grace_periods, nr, st.batches);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- frees inside read-side critical sections -------------------------- */

struct inside_freer {
	struct rcu_obj **objs;
	size_t nr;
	bool barrier;		/* call kvfree_rcu_barrier() inside too */
	bool mightsleep;	/* free with kfree_rcu_mightsleep() */
	int done;		/* the calls returned, still inside */
	int release;
	unsigned long errors;
	pthread_t tid;
};

static void *free_inside_read_section(void *arg)
{
	struct inside_freer *f = arg;
	size_t i;

	rcu_register_thread();
	rcu_read_lock();
	for (i = 0; i < f->nr; i++) {
		if (f->mightsleep)
			kfree_rcu_mightsleep(f->objs[i]);
		else
			kfree_rcu(f->objs[i], rcu);
	}
	if (f->barrier)
		kvfree_rcu_barrier();
	if (!rcu_read_ongoing())
		f->errors++;
	flag_set(&f->done, 1);
	if (!flag_wait(&f->release, 1, HANDOFF_TIMEOUT_MS))
		f->errors++;
	rcu_read_unlock();
	rcu_unregister_thread();
	return NULL;
}

/*
 * The freeing thread's own read-side section began before its frees, so
 * none may complete until it leaves: a kfree_rcu() that waited for a grace
 * period, or held the thread back until others completed, would never
 * return.
 */
TEST(kfree_rcu_inside_a_read_section_never_blocks)
{
	struct inside_freer f = { .nr = 4 * RCU_BATCH_OBJS + 3 };
	struct kmem_cache *s;

	s = obj_cache("rcu_inside");
	ASSERT_NE(NULL, s);
	f.objs = alloc_objs(s, f.nr, 0);
	ASSERT_NE(NULL, f.objs);
	ASSERT_EQ(0, pthread_create(&f.tid, NULL, free_inside_read_section, &f));
	EXPECT_TRUE(flag_wait(&f.done, 1, HANDOFF_TIMEOUT_MS))
		TH_LOG("kfree_rcu() blocked inside a read-side critical section");
	sleep_ms(HOLD_MS);
	EXPECT_EQ(f.nr, pending_rcu(s));
	EXPECT_EQ(f.nr, active_objs(s));
	flag_set(&f.release, 1);
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);

	kvfree_rcu_barrier();
	EXPECT_EQ(f.nr, rcu_stats().objects);
	free(f.objs);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(barrier_inside_a_read_section_is_reported_and_returns)
{
	struct inside_freer f = { .nr = 1, .barrier = true };
	struct stderr_capture cap;
	struct kmem_cache *s;
	const char *text;
	bool returned;

	s = obj_cache("rcu_barrier_inside");
	ASSERT_NE(NULL, s);
	f.objs = alloc_objs(s, f.nr, 0);
	ASSERT_NE(NULL, f.objs);

	stderr_capture_begin(&cap);
	if (pthread_create(&f.tid, NULL, free_inside_read_section, &f)) {
		stderr_capture_end(&cap);
		stderr_capture_release(&cap);
		ASSERT_TRUE(false);
	}
	returned = flag_wait(&f.done, 1, HANDOFF_TIMEOUT_MS);
	text = stderr_capture_end(&cap);
	EXPECT_TRUE(returned) TH_LOG("kvfree_rcu_barrier() deadlocked inside a read-side critical section");
	/* the report names the function the program called */
	EXPECT_TEXT_CONTAINS(text, "kvfree_rcu_barrier() called inside an RCU read-side critical section");
	EXPECT_EQ(NULL, strstr(text, "_until"));
	stderr_capture_release(&cap);
	/* It returned without waiting: the object is still pending. */
	EXPECT_EQ(1, active_objs(s));

	flag_set(&f.release, 1);
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);
	kvfree_rcu_barrier();
	free(f.objs);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(kfree_rcu_mightsleep_inside_a_read_section_is_reported_and_still_frees)
{
	struct inside_freer f = { .nr = 1, .mightsleep = true };
	struct stderr_capture cap;
	struct kmem_cache *s;
	const char *text;
	bool returned;

	s = obj_cache("rcu_mightsleep_inside");
	ASSERT_NE(NULL, s);
	f.objs = alloc_objs(s, f.nr, 0);
	ASSERT_NE(NULL, f.objs);

	stderr_capture_begin(&cap);
	if (pthread_create(&f.tid, NULL, free_inside_read_section, &f)) {
		stderr_capture_end(&cap);
		stderr_capture_release(&cap);
		ASSERT_TRUE(false);
	}
	returned = flag_wait(&f.done, 1, HANDOFF_TIMEOUT_MS);
	text = stderr_capture_end(&cap);
	EXPECT_TRUE(returned) TH_LOG("kfree_rcu_mightsleep() deadlocked inside a read-side critical section");
	EXPECT_TEXT_CONTAINS(text, "inside an RCU read-side critical section");
	stderr_capture_release(&cap);

	flag_set(&f.release, 1);
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);
	/* Reported, not leaked: the object still goes back. */
	kvfree_rcu_barrier();
	EXPECT_EQ(1, rcu_stats().objects);
	free(f.objs);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- pending counts and threads ---------------------------------------- */

/*
 * Frees @nr objects of @s (allocated by itself) with kfree_rcu(), then
 * either exits at once or, with @linger, stays alive until released so
 * its partial batch stays its own.
 */
struct freer {
	struct kmem_cache *s;
	size_t nr;
	bool linger;
	int freed;
	int release;
	unsigned long errors;
	pthread_t tid;
};

static void *free_some(void *arg)
{
	struct freer *f = arg;
	size_t i;

	for (i = 0; i < f->nr; i++) {
		struct rcu_obj *o = kmem_cache_alloc(f->s, GFP_KERNEL);

		if (!o) {
			f->errors++;
			continue;
		}
		obj_fill(o, i);
		kfree_rcu(o, rcu);
	}
	flag_set(&f->freed, 1);
	if (f->linger && !flag_wait(&f->release, 1, HANDOFF_TIMEOUT_MS))
		f->errors++;
	return NULL;
}

static bool freer_start(struct freer *f)
{
	if (pthread_create(&f->tid, NULL, free_some, f))
		return false;
	return flag_wait(&f->freed, 1, HANDOFF_TIMEOUT_MS);
}

static bool freer_stop(struct freer *f)
{
	flag_set(&f->release, 1);
	return join_thread_within(f->tid, HANDOFF_TIMEOUT_MS) == 0;
}

TEST(pending_rcu_counts_objects_waiting_in_every_thread)
{
	struct freer other = { .nr = 10, .linger = true };
	struct rcu_obj **objs, **b_objs;
	struct kmem_cache *a, *b, *c;
	struct holder h = { 0 };
	struct rcu_obj *live;
	const size_t nr = 600;

	a = obj_cache("rcu_pending_a");
	b = obj_cache("rcu_pending_b");
	c = obj_cache("rcu_pending_c");
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_NE(NULL, c);
	live = kmem_cache_alloc(c, GFP_KERNEL);
	ASSERT_NE(NULL, live);
	objs = alloc_objs(a, nr, 0);
	b_objs = alloc_objs(b, 5, 0);
	ASSERT_NE(NULL, objs);
	ASSERT_NE(NULL, b_objs);

	/* Nothing can be reclaimed while this reader is inside. */
	ASSERT_TRUE(holder_start(&h));
	other.s = a;
	ASSERT_TRUE(freer_start(&other));
	kfree_rcu_all(objs, nr);
	kfree_rcu_all(b_objs, 5);

	EXPECT_EQ(nr + other.nr, pending_rcu(a));
	EXPECT_EQ(nr + other.nr, active_objs(a));
	EXPECT_EQ(5, pending_rcu(b));
	EXPECT_EQ(5, active_objs(b));
	EXPECT_EQ(0, pending_rcu(c));
	EXPECT_EQ(1, active_objs(c));
	EXPECT_EQ(nr + other.nr + 5, rcu_stats().pending);

	ASSERT_TRUE(holder_stop(&h));
	kvfree_rcu_barrier();
	EXPECT_EQ(0, rcu_stats().pending);
	EXPECT_EQ(nr + other.nr + 5, rcu_stats().objects);
	ASSERT_TRUE(freer_stop(&other));
	EXPECT_EQ(0, other.errors);
	free(objs);
	free(b_objs);
	kmem_cache_free(c, live);
	EXPECT_RECLAIMED_AND_DESTROY(a);
	EXPECT_RECLAIMED_AND_DESTROY(b);
	EXPECT_RECLAIMED_AND_DESTROY(c);
}

/*
 * One thread fills a batch and part of the next, another only part of
 * one; both exit while a reader holds the grace period open.  Nothing may
 * be freed before the reader leaves, and nothing may be lost after.
 */
TEST(exiting_thread_hands_over_its_pending_frees)
{
	struct freer f[2] = {
		{ .nr = RCU_BATCH_OBJS + 191 },
		{ .nr = 100 },
	};
	struct holder h = { 0 };
	struct kmem_cache *s;
	unsigned int i;

	s = obj_cache("rcu_thread_exit");
	ASSERT_NE(NULL, s);
	ASSERT_TRUE(holder_start(&h));
	for (i = 0; i < 2; i++) {
		f[i].s = s;
		ASSERT_TRUE(freer_start(&f[i]));
		ASSERT_EQ(0, join_thread_within(f[i].tid, HANDOFF_TIMEOUT_MS));
		EXPECT_EQ(0, f[i].errors);
	}
	EXPECT_EQ(f[0].nr + f[1].nr, pending_rcu(s));
	EXPECT_EQ(f[0].nr + f[1].nr, active_objs(s));

	ASSERT_TRUE(holder_stop(&h));
	kvfree_rcu_barrier();
	EXPECT_EQ(f[0].nr + f[1].nr, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(frees_of_an_exited_thread_are_reclaimed_without_a_barrier)
{
	struct freer f = { .nr = 100 };
	struct kmem_cache *s;

	s = obj_cache("rcu_exit_idle");
	ASSERT_NE(NULL, s);
	f.s = s;
	ASSERT_TRUE(freer_start(&f));
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);
	EXPECT_TRUE(wait_for_reclaim(s, 0, IDLE_RECLAIM_TIMEOUT_MS))
		TH_LOG("still pending after %u ms: %zu", IDLE_RECLAIM_TIMEOUT_MS,
		       pending_rcu(s));
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

TEST(many_short_lived_threads_leave_no_pending_frees)
{
	enum { BATCH = 16 };
	const unsigned int nr = KSLAB_TEST_TSAN ? 128 : 512;
	struct freer f[BATCH];
	struct kmem_cache *s;
	unsigned int i, j;
	unsigned long errors = 0, total = 0;

	s = obj_cache("rcu_short_lived");
	ASSERT_NE(NULL, s);
	for (i = 0; i < nr; i += BATCH) {
		for (j = 0; j < BATCH; j++) {
			f[j] = (struct freer){ .s = s, .nr = 1 + (i + j) % 40 };
			ASSERT_EQ(0, pthread_create(&f[j].tid, NULL, free_some,
						    &f[j]));
		}
		for (j = 0; j < BATCH; j++) {
			ASSERT_EQ(0, join_thread_within(f[j].tid,
							HANDOFF_TIMEOUT_MS));
			errors += f[j].errors;
			total += f[j].nr;
		}
	}
	EXPECT_EQ(0, errors);
	kvfree_rcu_barrier();
	EXPECT_EQ(total, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/* ---- kmem_cache_destroy ------------------------------------------------ */

TEST(destroy_right_after_kfree_rcu_is_quiet)
{
	const size_t nr = 3 * RCU_BATCH_OBJS;
	struct stderr_capture cap;
	struct kslab_rcu_stats st;
	struct rcu_obj **objs;
	struct kmem_cache *s;

	s = obj_cache("rcu_destroy");
	ASSERT_NE(NULL, s);
	objs = alloc_objs(s, nr, 0);
	ASSERT_NE(NULL, objs);
	kfree_rcu_all(objs, nr);
	free(objs);

	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	/* destroy completed the cache's frees before it went. */
	st = rcu_stats();
	EXPECT_EQ(nr, st.objects);
	EXPECT_EQ(0, st.pending);
}

TEST(destroy_completes_frees_waiting_in_another_threads_batch)
{
	struct freer f = { .nr = 100, .linger = true };
	struct stderr_capture cap;

	f.s = obj_cache("rcu_destroy_other");
	ASSERT_NE(NULL, f.s);
	ASSERT_TRUE(freer_start(&f));

	stderr_capture_begin(&cap);
	kmem_cache_destroy(f.s);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	EXPECT_EQ(f.nr, rcu_stats().objects);
	ASSERT_TRUE(freer_stop(&f));
	EXPECT_EQ(0, f.errors);
}

struct destroy_call {
	struct kmem_cache *s;
	int done;
	pthread_t tid;
};

static void *call_destroy(void *arg)
{
	struct destroy_call *dc = arg;

	kmem_cache_destroy(dc->s);
	flag_set(&dc->done, 1);
	return NULL;
}

/* The reader keeps checking the object: it must not vanish under it. */
TEST(destroy_waits_for_readers_before_freeing_pending_objects)
{
	struct holder h = { .seq = 3 };
	struct destroy_call dc = { 0 };
	struct rcu_obj *slot = NULL, *obj;
	struct stderr_capture cap;
	bool early, finished;
	const char *text;

	dc.s = obj_cache("rcu_destroy_reader");
	ASSERT_NE(NULL, dc.s);
	obj = kmem_cache_alloc(dc.s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	obj_fill(obj, h.seq);
	publish(slot, obj);
	h.slot = &slot;
	ASSERT_TRUE(holder_start(&h));
	publish(slot, NULL);
	kfree_rcu(obj, rcu);

	stderr_capture_begin(&cap);
	if (pthread_create(&dc.tid, NULL, call_destroy, &dc)) {
		stderr_capture_end(&cap);
		stderr_capture_release(&cap);
		ASSERT_TRUE(false);
	}
	sleep_ms(HOLD_MS);
	early = flag_get(&dc.done);
	flag_set(&h.release, 1);
	finished = flag_wait(&dc.done, 1, HANDOFF_TIMEOUT_MS);
	text = stderr_capture_end(&cap);

	EXPECT_TEXT_EMPTY(text);
	stderr_capture_release(&cap);
	EXPECT_FALSE(early) TH_LOG("destroy returned while a reader could still see a pending object");
	EXPECT_TRUE(finished);
	ASSERT_EQ(0, join_thread_within(h.tid, HANDOFF_TIMEOUT_MS));
	ASSERT_EQ(0, join_thread_within(dc.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, h.errors);
	EXPECT_EQ(1, rcu_stats().objects);
}

/* ---- fork -------------------------------------------------------------- */

/*
 * Forked children end with _exit(), so neither kslab's nor LeakSanitizer's
 * exit paths run in them; LeakSanitizer is turned off there anyway, as in
 * slab_thread_test.c: in a child of a threaded process it cannot suspend
 * the parent's other threads.
 */
static bool in_forked_child;

#if KSLAB_TEST_ASAN
__attribute__((visibility("default"))) int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_forked_child;
}
#endif

static pid_t fork_child(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		in_forked_child = true;
	return pid;
}

/*
 * In the child: RCU-free objects of its own, wait for them, and check
 * that the frees it inherited were completed too, each once: the cache
 * ends empty and a burst of allocations never returns one object twice
 * (the later fill would overwrite the earlier one).
 */
static int child_rcu_work(struct kmem_cache *s)
{
	const size_t nr = 2 * RCU_BATCH_OBJS;
	struct rcu_obj **objs;
	size_t i;

	objs = alloc_objs(s, 300, 5000000);
	if (!objs)
		return 2;
	kfree_rcu_all(objs, 300);
	free(objs);
	kvfree_rcu_barrier();
	if (pending_rcu(s))
		return 3;
	if (active_objs(s))
		return 4;

	objs = alloc_objs(s, nr, 6000000);
	if (!objs)
		return 5;
	for (i = 0; i < nr; i++)
		if (!obj_intact(objs[i], 6000000 + i))
			return 6;
	for (i = 0; i < nr; i++)
		kmem_cache_free(s, objs[i]);
	free(objs);
	if (active_objs(s))
		return 7;
	kmem_cache_destroy(s);
	return 0;
}

/* Exit code of the child: 0, or which check failed; 9: it printed. */
static int child_after_fork(struct kmem_cache *s)
{
	struct stderr_capture cap;
	const char *text;
	int rc;

	if (stderr_capture_begin(&cap))
		return 1;
	rc = child_rcu_work(s);
	text = stderr_capture_end(&cap);
	if (!rc && text[0])
		rc = 9;
	if (text[0])
		fprintf(stderr, "# child printed:\n%s", text);
	return rc;
}

TEST(fork_with_rcu_frees_pending_leaves_a_working_child)
{
	const size_t nr = 2 * RCU_BATCH_OBJS + 100;
	struct freer other = { .nr = 50, .linger = true };
	struct rcu_obj **objs;
	struct kmem_cache *s;
	int status = 0;
	pid_t pid;

	s = obj_cache("rcu_fork");
	ASSERT_NE(NULL, s);
	objs = alloc_objs(s, nr, 0);
	ASSERT_NE(NULL, objs);
	/* Full batches handed over, a partial one here, one in another thread. */
	kfree_rcu_all(objs, nr);
	free(objs);
	other.s = s;
	ASSERT_TRUE(freer_start(&other));

	pid = fork_child();
	if (pid == 0)
		_exit(child_after_fork(s));
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, wait_child(pid, HANDOFF_TIMEOUT_MS / 2, &status))
		TH_LOG("child hung");
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);

	ASSERT_TRUE(freer_stop(&other));
	EXPECT_EQ(0, other.errors);
	kvfree_rcu_barrier();
	/* Freed in the parent, and exactly once. */
	EXPECT_EQ(nr + other.nr, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/*
 * No variant with a reader inside its read-side section across fork():
 * liburcu keeps that reader registered in the child, where it never
 * leaves its section, so no grace period can end there.  liburcu asks
 * that no thread be inside a read-side section at fork() (urcu-bp aside),
 * and kslab's fork handler waits for a grace period in flight to end.
 * See Documentation/mm/rcu-reclaim.rst.
 *
 * Readers that are registered but outside their sections are fine, and
 * so must be a fork() while the reclaim thread waits for a grace period:
 * here a thread keeps kfree_rcu()ing so that one is nearly always in
 * flight, and every child must still complete RCU frees of its own.
 */
struct parked_reader {
	int parked;
	int release;
	unsigned long errors;
	pthread_t tid;
};

static void *register_and_park(void *arg)
{
	struct parked_reader *r = arg;

	rcu_register_thread();
	rcu_read_lock();
	rcu_read_unlock();
	flag_set(&r->parked, 1);
	if (!flag_wait(&r->release, 1, 2 * HANDOFF_TIMEOUT_MS))
		r->errors++;
	rcu_unregister_thread();
	return NULL;
}

struct rcu_churn {
	struct kmem_cache *s;
	int stop;
	size_t freed;
	unsigned long errors;
	pthread_t tid;
};

static void *churn_kfree_rcu(void *arg)
{
	struct rcu_churn *c = arg;
	size_t i;

	for (i = 0; (i & 1023) || !flag_get(&c->stop); i++) {
		struct rcu_obj *o = kmem_cache_alloc(c->s, GFP_KERNEL);

		if (!o) {
			c->errors++;
			continue;
		}
		obj_fill(o, i);
		kfree_rcu(o, rcu);
		c->freed++;
	}
	return NULL;
}

/* The child's own frees complete; what it inherited is not left waiting. */
static int child_during_grace_periods(struct kmem_cache *churned)
{
	struct kmem_cache *s = obj_cache("rcu_fork_gp_child");
	struct rcu_obj **objs;

	if (!s)
		return 2;
	objs = alloc_objs(s, 300, 0);
	if (!objs)
		return 3;
	kfree_rcu_all(objs, 300);
	free(objs);
	kvfree_rcu_barrier();
	if (pending_rcu(s) || active_objs(s))
		return 4;
	if (pending_rcu(churned))
		return 5;
	kmem_cache_destroy(s);
	return 0;
}

/* Polls until more than @base RCU frees have been carried out. */
static bool rcu_objects_exceed(unsigned long long base, unsigned int timeout_ms)
{
	unsigned int waited;

	for (waited = 0; rcu_stats().objects <= base; waited++) {
		if (waited >= timeout_ms)
			return false;
		sleep_ms(1);
	}
	return true;
}

TEST(fork_during_grace_periods_leaves_a_working_child)
{
	enum { READERS = 2 };
	const unsigned int forks = KSLAB_TEST_TSAN ? 5 : 30;
	struct parked_reader r[READERS] = { 0 };
	struct rcu_churn c = { 0 };
	unsigned int i, clean = 0, hung = 0;
	unsigned long long base;

	c.s = obj_cache("rcu_fork_gp");
	ASSERT_NE(NULL, c.s);
	for (i = 0; i < READERS; i++) {
		ASSERT_EQ(0, pthread_create(&r[i].tid, NULL, register_and_park,
					    &r[i]));
		ASSERT_TRUE(flag_wait(&r[i].parked, 1, HANDOFF_TIMEOUT_MS));
	}
	base = rcu_stats().objects;
	ASSERT_EQ(0, pthread_create(&c.tid, NULL, churn_kfree_rcu, &c));
	/*
	 * Fork only once the churn thread and the reclaim thread it starts
	 * run: a thread that is still starting may hold the sanitizers'
	 * allocator lock, which gcc 12's libasan does not take around fork(),
	 * and the child would hang on it.
	 */
	ASSERT_TRUE(rcu_objects_exceed(base, HANDOFF_TIMEOUT_MS));

	for (i = 0; i < forks; i++) {
		int status = 0;
		pid_t pid;

		sleep_ms(1 + i % 3);
		pid = fork_child();
		if (pid == 0)
			_exit(child_during_grace_periods(c.s));
		if (pid < 0)
			break;
		if (wait_child(pid, HANDOFF_TIMEOUT_MS / 2, &status)) {
			hung++;
			continue;
		}
		if (child_exited_cleanly(status))
			clean++;
		else
			TH_LOG("child %u: status %#x", i, status);
	}
	flag_set(&c.stop, 1);
	ASSERT_EQ(0, join_thread_within(c.tid, HANDOFF_TIMEOUT_MS));
	for (i = 0; i < READERS; i++) {
		flag_set(&r[i].release, 1);
		ASSERT_EQ(0, join_thread_within(r[i].tid, HANDOFF_TIMEOUT_MS));
		EXPECT_EQ(0, r[i].errors);
	}
	EXPECT_EQ(0, hung);
	EXPECT_EQ(forks, clean);
	EXPECT_EQ(0, c.errors);
	kvfree_rcu_barrier();
	EXPECT_EQ(c.freed, rcu_stats().objects);
	EXPECT_RECLAIMED_AND_DESTROY(c.s);
}

/* ---- bounded memory ---------------------------------------------------- */

struct stream_obj {
	struct rcu_head rcu;
	uint64_t seq;
};

/*
 * Threads that kmem_cache_alloc() and kfree_rcu() as fast as they can,
 * never inside a read-side section, while readers keep grace periods
 * slow with read-side sections of a few milliseconds.
 */
struct stream {
	struct kmem_cache *s;
	size_t per_thread;
	int finished;		/* freeing threads done */
	int stop;		/* readers leave */
	unsigned long failures;
};

struct stream_result {
	bool completed;		/* every thread ended before the deadline */
	size_t sampled_peak;	/* largest pending seen while streaming */
	struct kslab_rcu_stats st;	/* after the stream, before a barrier */
	unsigned long long after_barrier;	/* stats objects after it */
	size_t pending_after_barrier;
};

#define STREAM_THREADS		2
#define STREAM_READERS		2
#define STREAM_TIMEOUT_MS	25000

static void *free_stream(void *arg)
{
	struct stream *st = arg;
	size_t i;

	for (i = 0; i < st->per_thread; i++) {
		struct stream_obj *o = kmem_cache_alloc(st->s, GFP_KERNEL);

		if (!o) {
			__atomic_add_fetch(&st->failures, 1, __ATOMIC_RELAXED);
			continue;
		}
		o->seq = i;
		kfree_rcu(o, rcu);
	}
	__atomic_add_fetch(&st->finished, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void *slow_reader(void *arg)
{
	struct stream *st = arg;

	rcu_register_thread();
	while (!flag_get(&st->stop)) {
		rcu_read_lock();
		sleep_ms(2);
		rcu_read_unlock();
	}
	rcu_unregister_thread();
	return NULL;
}

/* Runs the stream; false when a thread could not be started or joined. */
static bool run_stream(struct stream *st, struct stream_result *res)
{
	pthread_t freers[STREAM_THREADS], readers[STREAM_READERS];
	unsigned long long deadline = monotonic_ms() + STREAM_TIMEOUT_MS;
	unsigned int i, nr_freers = 0, nr_readers = 0;
	bool ok = true;

	memset(res, 0, sizeof(*res));
	for (i = 0; i < STREAM_READERS; i++) {
		if (pthread_create(&readers[i], NULL, slow_reader, st))
			break;
		nr_readers++;
	}
	for (i = 0; i < STREAM_THREADS; i++) {
		if (pthread_create(&freers[i], NULL, free_stream, st))
			break;
		nr_freers++;
	}
	while (flag_get(&st->finished) < (int)nr_freers &&
	       monotonic_ms() < deadline) {
		struct kslab_rcu_stats now = rcu_stats();

		if (now.pending > res->sampled_peak)
			res->sampled_peak = now.pending;
		sleep_ms(1);
	}
	res->completed = flag_get(&st->finished) == STREAM_THREADS;
	res->st = rcu_stats();
	flag_set(&st->stop, 1);
	for (i = 0; i < nr_freers; i++)
		if (join_thread_within(freers[i], HANDOFF_TIMEOUT_MS))
			ok = false;
	for (i = 0; i < nr_readers; i++)
		if (join_thread_within(readers[i], HANDOFF_TIMEOUT_MS))
			ok = false;
	kvfree_rcu_barrier();
	res->after_barrier = rcu_stats().objects;
	res->pending_after_barrier = rcu_stats().pending;
	return ok && nr_freers == STREAM_THREADS && nr_readers == STREAM_READERS;
}

/*
 * What may wait beyond the bound: one batch per freeing thread handed
 * over past it, plus one partial batch per thread, and one for luck.
 */
static size_t stream_limit(size_t max_pending)
{
	return max_pending + 2 * (STREAM_THREADS + 1) * RCU_BATCH_OBJS;
}

TEST(memory_waiting_for_grace_periods_stays_bounded)
{
	struct stream st = { .per_thread = test_scaled(5000000) / STREAM_THREADS };
	const char *env = getenv("KSLAB_RCU_MAX_PENDING");
	struct stream_result res;
	size_t limit;

	st.s = kmem_cache_create("rcu_stream", sizeof(struct stream_obj), 0, 0,
				 NULL);
	ASSERT_NE(NULL, st.s);
	EXPECT_EQ(env ? strtoul(env, NULL, 10) : DEFAULT_MAX_PENDING,
		  rcu_stats().max_pending);
	limit = stream_limit(rcu_stats().max_pending);

	ASSERT_TRUE(run_stream(&st, &res));
	EXPECT_TRUE(res.completed);
	EXPECT_EQ(0, st.failures);
	EXPECT_GE(limit, res.st.peak_pending)
		TH_LOG("peak %zu, bound %zu", res.st.peak_pending, res.st.max_pending);
	EXPECT_GE(limit, res.sampled_peak);
	TH_LOG("%zu objects: peak pending %zu (sampled %zu), bound %zu, %lu grace periods, throttled %lu",
	       STREAM_THREADS * st.per_thread, res.st.peak_pending,
	       res.sampled_peak, res.st.max_pending, res.st.grace_periods,
	       res.st.throttled);
	EXPECT_EQ(STREAM_THREADS * st.per_thread, res.after_barrier);
	EXPECT_EQ(0, res.pending_after_barrier);
	EXPECT_RECLAIMED_AND_DESTROY(st.s);
}

/*
 * KSLAB_RCU_MAX_PENDING is read once, at start-up: the tests that need a
 * small bound run this binary again with it set, and main() sends that
 * run to child_main() instead of the harness.
 */
#define CHILD_MODE_ENV		"KSLAB_TEST_RCU_CHILD"
#define SMALL_MAX_PENDING	20000

static int run_self(const char *mode, unsigned long max_pending, int *status)
{
	char mode_var[64], bound_var[64];
	char **envp;
	size_t n = 0, i;
	pid_t pid;

	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return -1;
	snprintf(mode_var, sizeof(mode_var), "%s=%s", CHILD_MODE_ENV, mode);
	snprintf(bound_var, sizeof(bound_var), "KSLAB_RCU_MAX_PENDING=%lu",
		 max_pending);
	/* getenv() takes the first match: ours come first. */
	envp[0] = mode_var;
	envp[1] = bound_var;
	for (i = 0; i < n; i++)
		envp[i + 2] = environ[i];

	pid = fork_child();
	if (pid == 0) {
		execle("/proc/self/exe", "rcu_reclaim_test", (char *)NULL, envp);
		_exit(127);
	}
	free(envp);
	if (pid < 0)
		return -1;
	return wait_child(pid, STREAM_TIMEOUT_MS + 4000, status);
}

/* The re-executed child has no harness: it says what failed, and exits. */
static int child_failed(int code, const char *what)
{
	fprintf(stderr, "# child: %s\n", what);
	return code;
}

static int child_stream_within_small_bound(void)
{
	struct stream st = { .per_thread = test_scaled(1000000) / STREAM_THREADS };
	struct stream_result res;
	size_t limit = stream_limit(SMALL_MAX_PENDING);

	if (rcu_stats().max_pending != SMALL_MAX_PENDING)
		return child_failed(2, "KSLAB_RCU_MAX_PENDING was not taken");
	st.s = kmem_cache_create("rcu_stream_small", sizeof(struct stream_obj),
				 0, 0, NULL);
	if (!st.s)
		return child_failed(3, "no cache");
	if (!run_stream(&st, &res))
		return child_failed(4, "a thread could not be started or joined");
	fprintf(stderr, "# child: %zu objects: peak pending %zu (sampled %zu), bound %zu, %lu grace periods, throttled %lu\n",
		STREAM_THREADS * st.per_thread, res.st.peak_pending,
		res.sampled_peak, res.st.max_pending, res.st.grace_periods,
		res.st.throttled);
	if (!res.completed)
		return child_failed(5, "the stream did not complete in time");
	if (st.failures)
		return child_failed(6, "allocations failed");
	if (res.st.peak_pending > limit || res.sampled_peak > limit)
		return child_failed(7, "pending went past the bound");
	if (res.after_barrier != STREAM_THREADS * st.per_thread)
		return child_failed(8, "not every object was freed exactly once");
	if (res.pending_after_barrier || active_objs(st.s))
		return child_failed(9, "objects left after the barrier");
	kmem_cache_destroy(st.s);
	return 0;
}

/*
 * Past the bound, a freeing thread is held back until grace periods
 * complete, unless it is inside a read-side section, where that would
 * wait for itself.
 */
static int child_frees_past_the_bound_inside_a_read_section(void)
{
	struct inside_freer f = { .nr = 3 * SMALL_MAX_PENDING };
	struct kmem_cache *s;
	bool returned;

	if (rcu_stats().max_pending != SMALL_MAX_PENDING)
		return child_failed(2, "KSLAB_RCU_MAX_PENDING was not taken");
	s = obj_cache("rcu_inside_bound");
	if (!s)
		return child_failed(3, "no cache");
	f.objs = alloc_objs(s, f.nr, 0);
	if (!f.objs)
		return child_failed(4, "allocations failed");
	if (pthread_create(&f.tid, NULL, free_inside_read_section, &f))
		return child_failed(5, "no thread");
	returned = flag_wait(&f.done, 1, HANDOFF_TIMEOUT_MS);
	flag_set(&f.release, 1);
	if (!returned)
		return child_failed(6, "kfree_rcu() blocked inside a read-side critical section");
	if (join_thread_within(f.tid, HANDOFF_TIMEOUT_MS) || f.errors)
		return child_failed(7, "the freeing thread did not end cleanly");
	kvfree_rcu_barrier();
	if (rcu_stats().objects != f.nr || active_objs(s))
		return child_failed(8, "not every object was freed exactly once");
	kmem_cache_destroy(s);
	free(f.objs);
	return 0;
}

static int child_main(const char *mode)
{
	if (!strcmp(mode, "stream"))
		return child_stream_within_small_bound();
	if (!strcmp(mode, "inside"))
		return child_frees_past_the_bound_inside_a_read_section();
	fprintf(stderr, "# child: unknown mode %s\n", mode);
	return 1;
}

TEST(bound_from_the_environment_holds_back_freeing_threads)
{
	int status = 0;

	ASSERT_EQ(0, run_self("stream", SMALL_MAX_PENDING, &status))
		TH_LOG("child hung");
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
}

TEST(kfree_rcu_inside_a_read_section_past_the_bound_never_blocks)
{
	int status = 0;

	ASSERT_EQ(0, run_self("inside", SMALL_MAX_PENDING, &status))
		TH_LOG("child hung");
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
}

/* ---- concurrency ------------------------------------------------------- */

#define NR_SLOTS	64

/*
 * An RCU-protected table: updaters replace objects in random slots and
 * kfree_rcu() the old ones; readers walk all slots inside one read-side
 * section and check that every object they reached is intact both when
 * they reach it and at the end of the section.
 */
struct table {
	struct rcu_obj *slot[NR_SLOTS];
	struct kmem_cache *s;
	uint64_t next_seq;
	int stop;
};

struct updater {
	struct table *t;
	unsigned int id;
	size_t iterations;
	size_t freed;
	unsigned long errors;
	pthread_t tid;
};

struct reader {
	struct table *t;
	unsigned long passes;
	unsigned long seen;
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

static void *update_table(void *arg)
{
	struct updater *u = arg;
	struct table *t = u->t;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL * (u->id + 1);
	size_t it;

	for (it = 0; it < u->iterations; it++) {
		unsigned int i = next_rand(&rnd) % NR_SLOTS;
		uint64_t seq = __atomic_add_fetch(&t->next_seq, 1, __ATOMIC_RELAXED);
		/* A third come from kmalloc, so kfree_rcu() sees both kinds. */
		bool km = seq % 3 == 0;
		struct rcu_obj *obj, *old;

		obj = km ? kmalloc(sizeof(*obj) + seq % 200, GFP_KERNEL) :
			   kmem_cache_alloc(t->s, GFP_KERNEL);
		if (!obj) {
			u->errors++;
			continue;
		}
		obj_fill(obj, seq);
		old = __atomic_exchange_n(&t->slot[i], obj, __ATOMIC_ACQ_REL);
		if (old) {
			kfree_rcu(old, rcu);
			u->freed++;
		}
	}
	return NULL;
}

static void *read_table(void *arg)
{
	struct reader *r = arg;
	struct table *t = r->t;

	rcu_register_thread();
	while (!flag_get(&t->stop)) {
		struct rcu_obj *seen[NR_SLOTS];
		uint64_t seq[NR_SLOTS];
		unsigned int i;

		rcu_read_lock();
		for (i = 0; i < NR_SLOTS; i++) {
			seen[i] = deref(t->slot[i]);
			if (!seen[i])
				continue;
			seq[i] = load_relaxed(seen[i]->seq);
			if (!obj_intact(seen[i], seq[i]))
				r->errors++;
			r->seen++;
		}
		for (i = 0; i < NR_SLOTS; i++)
			if (seen[i] && !obj_intact(seen[i], seq[i]))
				r->errors++;
		rcu_read_unlock();
		r->passes++;
	}
	rcu_unregister_thread();
	return NULL;
}

TEST(concurrent_frees_and_readers_free_every_object_once)
{
	enum { UPDATERS = 3, READERS = 3 };
	struct updater u[UPDATERS];
	struct reader r[READERS];
	struct table *t;
	size_t freed = 0;
	unsigned int i;

	t = calloc(1, sizeof(*t));
	ASSERT_NE(NULL, t);
	t->s = obj_cache("rcu_table");
	ASSERT_NE(NULL, t->s);
	for (i = 0; i < READERS; i++) {
		r[i] = (struct reader){ .t = t };
		ASSERT_EQ(0, pthread_create(&r[i].tid, NULL, read_table, &r[i]));
	}
	for (i = 0; i < UPDATERS; i++) {
		u[i] = (struct updater){
			.t = t, .id = i, .iterations = test_scaled(300000),
		};
		ASSERT_EQ(0, pthread_create(&u[i].tid, NULL, update_table, &u[i]));
	}
	for (i = 0; i < UPDATERS; i++) {
		ASSERT_EQ(0, join_thread_within(u[i].tid, 20000));
		EXPECT_EQ(0, u[i].errors) TH_LOG("updater %u", i);
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
	EXPECT_EQ(freed, rcu_stats().objects);
	EXPECT_EQ(0, rcu_stats().pending);
	EXPECT_RECLAIMED_AND_DESTROY(t->s);
	free(t);
}

/*
 * TEST_HARNESS_MAIN under another name, so that a run of this binary
 * started by run_self() goes to child_main() instead.
 */
#define main harness_main
TEST_HARNESS_MAIN
#undef main

int main(int argc, char **argv)
{
	const char *mode = getenv(CHILD_MODE_ENV);

	if (mode)
		return child_main(mode);
	return harness_main(argc, argv);
}
