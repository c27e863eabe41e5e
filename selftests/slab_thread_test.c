// SPDX-License-Identifier: MIT
/*
 * kslab under real pthreads: objects freed by threads other than the one
 * that allocated them, a producer/consumer hand-off, many short-lived
 * threads (whose per-thread caches must go back when they exit), objects
 * that outlive their allocating thread, concurrent kmalloc/kfree of mixed
 * sizes checked for double hand-out, concurrent cache creation and
 * destruction, and fork() while other threads allocate.
 *
 * After each test every cache must be exactly balanced: active_objs is 0,
 * kmem_cache_shrink() can release every slab, and kmem_cache_destroy()
 * prints nothing.  Worker threads never ASSERT (the harness unwinds with
 * longjmp, which only works on the test's own thread): they count errors
 * and the test thread asserts on the counts.  Every wait is bounded.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kslab/slab.h>

/*
 * The harness hands every test a variant argument it rarely uses, and its
 * EXPECT_*() macros compare a plain literal with the checked value's own
 * type; neither is worth a cast at every call site.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define OBJ_SIZE	64
/* Deadline for any hand-off between threads; far above a normal run. */
#define HANDOFF_TIMEOUT_MS	60000

static size_t active_objs(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	if (kmem_cache_get_info(s, &info))
		return (size_t)-1;
	return info.active_objs;
}

/*
 * An object records who it was handed to, so one handed out twice shows up
 * as a tag that changed under its owner.
 */
struct tagged {
	uint64_t owner;
	uint64_t seq;
	uint64_t check;
};

static void tag(void *obj, uint64_t owner, uint64_t seq)
{
	struct tagged *t = obj;

	t->owner = owner;
	t->seq = seq;
	t->check = ~(owner ^ seq);
}

static bool tag_ok(const void *obj, uint64_t owner, uint64_t seq)
{
	const struct tagged *t = obj;

	return t->owner == owner && t->seq == seq && t->check == ~(owner ^ seq);
}

/* Balanced cache: everything back, all slabs releasable, quiet destroy. */
#define EXPECT_CACHE_EMPTY_AND_DESTROY(s) do {				\
	struct stderr_capture __cap;					\
	EXPECT_EQ(0, active_objs(s));					\
	EXPECT_EQ(0, kmem_cache_shrink(s));				\
	stderr_capture_begin(&__cap);					\
	kmem_cache_destroy(s);						\
	EXPECT_TEXT_EMPTY(stderr_capture_end(&__cap));			\
	stderr_capture_release(&__cap);					\
} while (0)

/* A pthread barrier would wait forever if a thread died; this one can't. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned int parties;
	unsigned int arrived;
	unsigned long generation;
	bool broken;
};

static void gate_init(struct gate *g, unsigned int parties)
{
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
	g->parties = parties;
	g->arrived = 0;
	g->generation = 0;
	g->broken = false;
}

static void deadline_in(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/* Returns false when the gate broke (someone timed out). */
static bool gate_pass(struct gate *g)
{
	struct timespec deadline;
	unsigned long gen;
	bool ok = true;

	deadline_in(&deadline, HANDOFF_TIMEOUT_MS);
	pthread_mutex_lock(&g->lock);
	gen = g->generation;
	if (++g->arrived == g->parties) {
		g->arrived = 0;
		g->generation++;
		pthread_cond_broadcast(&g->cond);
	} else {
		while (gen == g->generation && !g->broken) {
			if (pthread_cond_timedwait(&g->cond, &g->lock,
						   &deadline) == ETIMEDOUT) {
				g->broken = true;
				pthread_cond_broadcast(&g->cond);
			}
		}
	}
	ok = !g->broken;
	pthread_mutex_unlock(&g->lock);
	return ok;
}

/* Joins @n threads; returns how many could not be joined. */
static unsigned int join_threads(pthread_t *tid, unsigned int n)
{
	unsigned int i, failed = 0;

	for (i = 0; i < n; i++)
		if (pthread_join(tid[i], NULL))
			failed++;
	return failed;
}

/* ---- cross-thread frees ------------------------------------------------ */

struct remote_free {
	struct kmem_cache *s;
	void **objs;
	size_t first, last;
	unsigned long errors;
};

static void *free_slice(void *arg)
{
	struct remote_free *rf = arg;
	size_t i;

	for (i = rf->first; i < rf->last; i++) {
		if (!tag_ok(rf->objs[i], 0xa11ca7ed, i))
			rf->errors++;
		kmem_cache_free(rf->s, rf->objs[i]);
	}
	return NULL;
}

static void *alloc_all(void *arg)
{
	struct remote_free *rf = arg;
	size_t i;

	for (i = rf->first; i < rf->last; i++) {
		rf->objs[i] = kmem_cache_alloc(rf->s, GFP_KERNEL);
		if (!rf->objs[i]) {
			rf->errors++;
			rf->last = i;
			break;
		}
		tag(rf->objs[i], 0xa11ca7ed, i);
	}
	return NULL;
}

TEST(objects_allocated_in_one_thread_are_freed_by_three_others)
{
	enum { FREERS = 3 };
	const size_t nr = test_scaled(600000);
	struct remote_free alloc = { 0 }, rf[FREERS];
	struct kmem_cache *s;
	pthread_t tid[FREERS];
	unsigned int i;

	s = kmem_cache_create("test_remote", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	alloc.s = s;
	alloc.objs = calloc(nr, sizeof(void *));
	ASSERT_NE(NULL, alloc.objs);
	alloc.last = nr;
	ASSERT_EQ(0, pthread_create(&tid[0], NULL, alloc_all, &alloc));
	ASSERT_EQ(0, pthread_join(tid[0], NULL));
	ASSERT_EQ(0, alloc.errors);
	ASSERT_EQ(nr, active_objs(s));

	for (i = 0; i < FREERS; i++) {
		rf[i] = (struct remote_free){
			.s = s, .objs = alloc.objs,
			.first = nr * i / FREERS, .last = nr * (i + 1) / FREERS,
		};
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, free_slice, &rf[i]));
	}
	for (i = 0; i < FREERS; i++) {
		ASSERT_EQ(0, pthread_join(tid[i], NULL));
		EXPECT_EQ(0, rf[i].errors);
	}
	free(alloc.objs);
	EXPECT_CACHE_EMPTY_AND_DESTROY(s);
}

struct ring_worker {
	struct kmem_cache *s;
	struct gate *gate;
	void ***slots;		/* [thread][2] arrays of batch objects */
	unsigned int id, nr_threads, rounds;
	size_t batch;
	unsigned long errors;
};

/*
 * Round r: allocate a batch into my slot r % 2 while freeing the batch my
 * neighbour allocated in round r - 1, so allocation and remote frees of
 * the same cache overlap in time.
 */
static void *alloc_and_free_neighbour(void *arg)
{
	struct ring_worker *w = arg;
	unsigned int next = (w->id + 1) % w->nr_threads;
	unsigned int r;
	size_t i;

	for (r = 0; r <= w->rounds; r++) {
		void **mine = w->slots[w->id * 2 + r % 2];
		void **theirs = w->slots[next * 2 + (r + 1) % 2];

		for (i = 0; r < w->rounds && i < w->batch; i++) {
			mine[i] = kmem_cache_alloc(w->s, GFP_KERNEL);
			if (!mine[i]) {
				w->errors++;
				continue;
			}
			tag(mine[i], w->id, (uint64_t)r << 32 | i);
		}
		for (i = 0; r > 0 && i < w->batch; i++) {
			if (!theirs[i])
				continue;
			if (!tag_ok(theirs[i], next, (uint64_t)(r - 1) << 32 | i))
				w->errors++;
			kmem_cache_free(w->s, theirs[i]);
		}
		if (!gate_pass(w->gate)) {
			w->errors++;
			break;
		}
	}
	return NULL;
}

TEST(threads_free_each_others_objects_while_allocating)
{
	enum { THREADS = 4, ROUNDS = 4 };
	const size_t batch = test_scaled(50000);
	struct ring_worker w[THREADS];
	void **slots[THREADS * 2];
	pthread_t tid[THREADS];
	struct kmem_cache *s;
	struct gate gate;
	unsigned int i;

	s = kmem_cache_create("test_ring", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < THREADS * 2; i++) {
		slots[i] = calloc(batch, sizeof(void *));
		ASSERT_NE(NULL, slots[i]);
	}
	gate_init(&gate, THREADS);
	for (i = 0; i < THREADS; i++) {
		w[i] = (struct ring_worker){
			.s = s, .gate = &gate, .slots = slots, .id = i,
			.nr_threads = THREADS, .rounds = ROUNDS, .batch = batch,
		};
		ASSERT_EQ(0, pthread_create(&tid[i], NULL,
					    alloc_and_free_neighbour, &w[i]));
	}
	for (i = 0; i < THREADS; i++) {
		ASSERT_EQ(0, pthread_join(tid[i], NULL));
		EXPECT_EQ(0, w[i].errors) TH_LOG("thread %u", i);
	}
	for (i = 0; i < THREADS * 2; i++)
		free(slots[i]);
	EXPECT_CACHE_EMPTY_AND_DESTROY(s);
}

/* ---- producer / consumer ---------------------------------------------- */

#define RING_SLOTS	1024

struct pc_ring {
	pthread_mutex_t lock;
	pthread_cond_t not_empty, not_full;
	void *slot[RING_SLOTS];
	size_t head, tail;	/* head: next to take, tail: next to fill */
	unsigned int producers_left;
	bool failed;		/* someone timed out: everybody leaves */
	struct kmem_cache *s;
	size_t per_producer;
	unsigned long errors;	/* under lock */
	size_t consumed;	/* under lock */
};

struct pc_item {
	struct tagged tag;
	bool from_kmalloc;
	size_t len;
};

static bool ring_put(struct pc_ring *r, void *obj)
{
	struct timespec deadline;
	bool ok;

	deadline_in(&deadline, HANDOFF_TIMEOUT_MS);
	pthread_mutex_lock(&r->lock);
	while (r->tail - r->head == RING_SLOTS && !r->failed)
		if (pthread_cond_timedwait(&r->not_full, &r->lock,
					   &deadline) == ETIMEDOUT)
			r->failed = true;
	ok = !r->failed;
	if (ok) {
		r->slot[r->tail++ % RING_SLOTS] = obj;
		pthread_cond_signal(&r->not_empty);
	} else {
		pthread_cond_broadcast(&r->not_empty);
		pthread_cond_broadcast(&r->not_full);
	}
	pthread_mutex_unlock(&r->lock);
	return ok;
}

/* NULL when the producers are done and the ring is drained, or on failure. */
static void *ring_take(struct pc_ring *r)
{
	struct timespec deadline;
	void *obj = NULL;

	deadline_in(&deadline, HANDOFF_TIMEOUT_MS);
	pthread_mutex_lock(&r->lock);
	while (r->head == r->tail && r->producers_left && !r->failed)
		if (pthread_cond_timedwait(&r->not_empty, &r->lock,
					   &deadline) == ETIMEDOUT)
			r->failed = true;
	if (r->head != r->tail && !r->failed) {
		obj = r->slot[r->head++ % RING_SLOTS];
		pthread_cond_signal(&r->not_full);
	}
	if (r->failed) {
		pthread_cond_broadcast(&r->not_empty);
		pthread_cond_broadcast(&r->not_full);
	}
	pthread_mutex_unlock(&r->lock);
	return obj;
}

struct producer {
	struct pc_ring *ring;
	unsigned int id;
};

static void *produce(void *arg)
{
	struct producer *p = arg;
	struct pc_ring *r = p->ring;
	unsigned long errors = 0;
	size_t i;

	for (i = 0; i < r->per_producer; i++) {
		struct pc_item *item;
		bool km = i % 3 == 0;
		size_t len = km ? sizeof(*item) + (i % 700) : OBJ_SIZE;

		item = km ? kmalloc(len, GFP_KERNEL) :
			    kmem_cache_alloc(r->s, GFP_KERNEL);
		if (!item) {
			errors++;
			continue;
		}
		tag(item, p->id, i);
		item->from_kmalloc = km;
		item->len = len;
		if (km)
			memset(item + 1, (int)(i & 0xff), len - sizeof(*item));
		if (!ring_put(r, item)) {
			kfree(item);
			break;
		}
	}
	pthread_mutex_lock(&r->lock);
	r->errors += errors;
	r->producers_left--;
	pthread_cond_broadcast(&r->not_empty);
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

static void *consume(void *arg)
{
	struct pc_ring *r = arg;
	unsigned long errors = 0;
	size_t consumed = 0;
	struct pc_item *item;

	while ((item = ring_take(r))) {
		const unsigned char *tail = (const unsigned char *)(item + 1);
		size_t extra = item->len - sizeof(*item);

		if (item->tag.check != ~(item->tag.owner ^ item->tag.seq))
			errors++;
		if (item->from_kmalloc) {
			size_t i;

			for (i = 0; i < extra; i++)
				if (tail[i] != (unsigned char)(item->tag.seq & 0xff))
					break;
			if (i != extra)
				errors++;
			kfree(item);
		} else {
			kmem_cache_free(r->s, item);
		}
		consumed++;
	}
	pthread_mutex_lock(&r->lock);
	r->errors += errors;
	r->consumed += consumed;
	pthread_mutex_unlock(&r->lock);
	return NULL;
}

TEST(producer_consumer_hand_off_frees_every_object)
{
	enum { PRODUCERS = 2, CONSUMERS = 2 };
	struct producer prod[PRODUCERS];
	pthread_t tid[PRODUCERS + CONSUMERS];
	struct pc_ring *r;
	unsigned int i;

	r = calloc(1, sizeof(*r));
	ASSERT_NE(NULL, r);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->not_empty, NULL);
	pthread_cond_init(&r->not_full, NULL);
	r->producers_left = PRODUCERS;
	r->per_producer = test_scaled(150000);
	r->s = kmem_cache_create("test_pc", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, r->s);

	for (i = 0; i < CONSUMERS; i++) {
		ASSERT_EQ(0, pthread_create(&tid[PRODUCERS + i], NULL,
					    consume, r));
	}
	for (i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct producer){ .ring = r, .id = i };
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, produce, &prod[i]));
	}
	ASSERT_EQ(0, join_threads(tid, PRODUCERS + CONSUMERS));

	EXPECT_FALSE(r->failed);
	EXPECT_EQ(0, r->errors);
	EXPECT_EQ(PRODUCERS * r->per_producer, r->consumed);
	EXPECT_CACHE_EMPTY_AND_DESTROY(r->s);
	free(r);
}

/* ---- short-lived threads ---------------------------------------------- */

struct short_lived {
	struct kmem_cache *s;
	unsigned int id;
	void *kept[8];		/* handed back to the test thread */
	unsigned long errors;
};

/*
 * Four kinds of thread, by id: allocate and free a burst (leaving free
 * objects in the thread's cache), the same through kmalloc, allocate and
 * keep some for the test thread to free, or touch nothing at all.
 */
static void *live_briefly(void *arg)
{
	struct short_lived *t = arg;
	void *objs[200];
	unsigned int i, n = 50 + t->id % 150;

	switch (t->id % 4) {
	case 0:
		for (i = 0; i < n; i++) {
			objs[i] = kmem_cache_alloc(t->s, GFP_KERNEL);
			if (!objs[i])
				t->errors++;
		}
		for (i = 0; i < n; i++)
			kmem_cache_free(t->s, objs[i]);
		break;
	case 1:
		for (i = 0; i < n; i++) {
			objs[i] = kmalloc(8 + (i * 97) % 3000, GFP_KERNEL);
			if (!objs[i])
				t->errors++;
		}
		for (i = 0; i < n; i++)
			kfree(objs[i]);
		break;
	case 2:
		for (i = 0; i < n; i++) {
			objs[i] = kmem_cache_alloc(t->s, GFP_KERNEL);
			if (!objs[i])
				t->errors++;
			else
				tag(objs[i], t->id, i);
		}
		for (i = 0; i < ARRAY_SIZE(t->kept); i++)
			t->kept[i] = objs[i];
		for (; i < n; i++)
			kmem_cache_free(t->s, objs[i]);
		break;
	default:
		break;
	}
	return NULL;
}

TEST(short_lived_threads_leave_nothing_behind)
{
	enum { BATCH = 16 };
	const unsigned int nr = KSLAB_TEST_TSAN ? 300 : 1000;
	struct short_lived *t;
	struct kmem_cache *s;
	unsigned int i, j;

	t = calloc(nr, sizeof(*t));
	ASSERT_NE(NULL, t);
	s = kmem_cache_create("test_short_lived", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < nr; i += BATCH) {
		pthread_t tid[BATCH];
		unsigned int n = nr - i;

		if (n > BATCH)
			n = BATCH;
		for (j = 0; j < n; j++) {
			t[i + j].s = s;
			t[i + j].id = i + j;
			ASSERT_EQ(0, pthread_create(&tid[j], NULL, live_briefly,
						    &t[i + j]));
		}
		ASSERT_EQ(0, join_threads(tid, n));
	}
	for (i = 0; i < nr; i++) {
		EXPECT_EQ(0, t[i].errors) TH_LOG("thread %u", i);
		for (j = 0; j < ARRAY_SIZE(t[i].kept); j++) {
			if (!t[i].kept[j])
				continue;
			EXPECT_TRUE(tag_ok(t[i].kept[j], i, j))
				TH_LOG("object kept by thread %u damaged", i);
			kmem_cache_free(s, t[i].kept[j]);
		}
	}
	free(t);
	EXPECT_CACHE_EMPTY_AND_DESTROY(s);
}

struct outliver {
	struct kmem_cache *s;
	size_t nr;
	void **objs;
	void **kobjs;
	unsigned long errors;
};

static void *allocate_and_exit(void *arg)
{
	struct outliver *o = arg;
	size_t i;

	for (i = 0; i < o->nr; i++) {
		o->objs[i] = kmem_cache_alloc(o->s, GFP_KERNEL);
		o->kobjs[i] = kmalloc(1 + i % 5000, GFP_KERNEL);
		if (!o->objs[i] || !o->kobjs[i]) {
			o->errors++;
			continue;
		}
		tag(o->objs[i], 0x0b1d, i);
		memset(o->kobjs[i], (int)(i & 0xff), 1 + i % 5000);
	}
	/* Churn too, so this thread exits with a cache full of free objects. */
	for (i = 0; i < 1000; i++)
		kmem_cache_free(o->s, kmem_cache_alloc(o->s, GFP_KERNEL));
	return NULL;
}

TEST(objects_outlive_the_thread_that_allocated_them)
{
	struct outliver o = { .nr = test_scaled(20000) };
	pthread_t tid;
	size_t i, j;

	o.s = kmem_cache_create("test_outlive", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, o.s);
	o.objs = calloc(o.nr, sizeof(void *));
	o.kobjs = calloc(o.nr, sizeof(void *));
	ASSERT_NE(NULL, o.objs);
	ASSERT_NE(NULL, o.kobjs);
	ASSERT_EQ(0, pthread_create(&tid, NULL, allocate_and_exit, &o));
	ASSERT_EQ(0, pthread_join(tid, NULL));
	ASSERT_EQ(0, o.errors);
	EXPECT_EQ(o.nr, active_objs(o.s));

	/* The thread is gone; its objects are still ours to use and free. */
	for (i = 0; i < o.nr; i++) {
		const unsigned char *k = o.kobjs[i];

		EXPECT_TRUE(tag_ok(o.objs[i], 0x0b1d, i));
		for (j = 0; j < 1 + i % 5000; j++)
			if (k[j] != (unsigned char)(i & 0xff))
				break;
		EXPECT_EQ(1 + i % 5000, j) TH_LOG("kmalloc object %zu", i);
		kmem_cache_free(o.s, o.objs[i]);
		kfree(o.kobjs[i]);
	}
	free(o.objs);
	free(o.kobjs);
	EXPECT_CACHE_EMPTY_AND_DESTROY(o.s);
}

/* ---- concurrent kmalloc ----------------------------------------------- */

struct mixer {
	unsigned int id;
	size_t iterations;
	unsigned long errors;
};

#define MIX_WINDOW	512

static size_t mix_size(uint64_t x)
{
	/* Mostly small, sometimes up to 8 KiB, now and then large. */
	if (x % 256 == 0)
		return KMALLOC_MAX_CACHE_SIZE + 1 + x % 60000;
	if (x % 8 == 1)
		return 1 + x % KMALLOC_MAX_CACHE_SIZE;
	return 1 + x % 512;
}

static uint64_t next_rand(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

static void *mix_kmalloc(void *arg)
{
	struct mixer *m = arg;
	unsigned char *obj[MIX_WINDOW] = { NULL };
	size_t len[MIX_WINDOW] = { 0 };
	unsigned char pat[MIX_WINDOW] = { 0 };
	uint64_t rnd = 0x9e3779b97f4a7c15ULL * (m->id + 1);
	size_t it, i;

	for (it = 0; it < m->iterations; it++) {
		unsigned int slot = next_rand(&rnd) % MIX_WINDOW;

		if (obj[slot]) {
			for (i = 0; i < len[slot]; i++)
				if (obj[slot][i] != pat[slot])
					break;
			if (i != len[slot])
				m->errors++;
			kfree(obj[slot]);
		}
		len[slot] = mix_size(next_rand(&rnd));
		/* The pattern names the thread and varies per object. */
		pat[slot] = (unsigned char)(m->id << 6 | (it & 0x3f));
		obj[slot] = kmalloc(len[slot], GFP_KERNEL);
		if (!obj[slot]) {
			m->errors++;
			continue;
		}
		memset(obj[slot], pat[slot], len[slot]);
	}
	for (i = 0; i < MIX_WINDOW; i++) {
		size_t j;

		if (!obj[i])
			continue;
		for (j = 0; j < len[i]; j++)
			if (obj[i][j] != pat[i])
				break;
		if (j != len[i])
			m->errors++;
		kfree(obj[i]);
	}
	return NULL;
}

TEST(concurrent_kmalloc_never_hands_out_an_object_twice)
{
	enum { THREADS = 4 };
	struct mixer m[THREADS];
	pthread_t tid[THREADS];
	unsigned int i;

	for (i = 0; i < THREADS; i++) {
		m[i] = (struct mixer){
			.id = i, .iterations = test_scaled(150000),
		};
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, mix_kmalloc, &m[i]));
	}
	for (i = 0; i < THREADS; i++) {
		ASSERT_EQ(0, pthread_join(tid[i], NULL));
		EXPECT_EQ(0, m[i].errors) TH_LOG("thread %u", i);
	}
}

/*
 * Large blocks from several threads at once: allocated, grown and shrunk
 * with krealloc() and freed, so that the page allocator splits, merges
 * and grows free extents in place while the others do the same.  Every
 * block keeps its pattern: no two owners, no lost bytes.
 */
#define LARGE_WINDOW	24

static size_t large_mix_size(uint64_t x)
{
	return KMALLOC_MAX_CACHE_SIZE + 1 + x % (6UL << 20);
}

/* First and last byte of each page: enough to catch a shared page. */
static void large_mark(unsigned char *p, size_t len, unsigned char pat)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		p[i] = pat;
	p[len - 1] = pat;
}

static bool large_marked(const unsigned char *p, size_t len,
			 unsigned char pat)
{
	size_t i;

	for (i = 0; i < len; i += 4096)
		if (p[i] != pat)
			return false;
	return p[len - 1] == pat;
}

static void *mix_large(void *arg)
{
	struct mixer *m = arg;
	unsigned char *obj[LARGE_WINDOW] = { NULL };
	size_t len[LARGE_WINDOW] = { 0 };
	unsigned char pat[LARGE_WINDOW] = { 0 };
	uint64_t rnd = 0x2545f4914f6cdd1dULL * (m->id + 1);
	size_t it, i;

	for (it = 0; it < m->iterations; it++) {
		unsigned int slot = next_rand(&rnd) % LARGE_WINDOW;
		size_t want = large_mix_size(next_rand(&rnd));

		if (obj[slot] && !large_marked(obj[slot], len[slot], pat[slot]))
			m->errors++;
		if (obj[slot] && it % 3) {
			/* resize: the kept part must survive the move */
			unsigned char *n = krealloc(obj[slot], want, GFP_KERNEL);
			size_t keep = want < len[slot] ? want : len[slot];

			if (!n) {
				m->errors++;
				continue;
			}
			for (i = 0; i < keep; i += 4096)
				if (n[i] != pat[slot])
					m->errors++;
			obj[slot] = n;
		} else {
			kfree(obj[slot]);
			obj[slot] = kmalloc(want, GFP_KERNEL);
			if (!obj[slot]) {
				m->errors++;
				continue;
			}
		}
		len[slot] = want;
		pat[slot] = (unsigned char)(m->id << 6 | (it & 0x3f));
		large_mark(obj[slot], len[slot], pat[slot]);
	}
	for (i = 0; i < LARGE_WINDOW; i++) {
		if (obj[i] && !large_marked(obj[i], len[i], pat[i]))
			m->errors++;
		kfree(obj[i]);
	}
	return NULL;
}

TEST(concurrent_large_blocks_and_krealloc_keep_their_contents)
{
	enum { THREADS = 4 };
	struct mixer m[THREADS];
	pthread_t tid[THREADS];
	unsigned int i;

	for (i = 0; i < THREADS; i++) {
		m[i] = (struct mixer){
			.id = i, .iterations = test_scaled(3000),
		};
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, mix_large, &m[i]));
	}
	for (i = 0; i < THREADS; i++) {
		ASSERT_EQ(0, pthread_join(tid[i], NULL));
		EXPECT_EQ(0, m[i].errors) TH_LOG("thread %u", i);
	}
}

/* ---- concurrent cache lifecycle ---------------------------------------- */

struct lifecycle {
	unsigned int id;
	unsigned int rounds;
	unsigned long errors;
};

static void *create_use_destroy(void *arg)
{
	struct lifecycle *l = arg;
	unsigned int r, i;

	for (r = 0; r < l->rounds; r++) {
		unsigned int size = 24 + 8 * ((l->id * 7 + r) % 60);
		struct kmem_cache_info info;
		struct kmem_cache *s;
		char name[48];
		void *objs[64];

		snprintf(name, sizeof(name), "thr%u-round%u", l->id, r);
		s = kmem_cache_create(name, size, 0, 0, NULL);
		if (!s) {
			l->errors++;
			continue;
		}
		if (strcmp(kmem_cache_name(s), name))
			l->errors++;
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			if (!objs[i])
				l->errors++;
			else
				tag(objs[i], l->id, (uint64_t)r << 32 | i);
		}
		if (kmem_cache_get_info(s, &info) ||
		    info.active_objs != ARRAY_SIZE(objs))
			l->errors++;
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			if (!objs[i])
				continue;
			if (!tag_ok(objs[i], l->id, (uint64_t)r << 32 | i))
				l->errors++;
			kmem_cache_free(s, objs[i]);
		}
		kmem_cache_destroy(s);
	}
	return NULL;
}

TEST(concurrent_create_and_destroy_of_distinct_caches)
{
	enum { THREADS = 4 };
	struct lifecycle l[THREADS];
	struct stderr_capture cap;
	pthread_t tid[THREADS];
	unsigned int i, started = 0;
	unsigned long errors = 0;
	int err = 0;

	stderr_capture_begin(&cap);
	for (i = 0; i < THREADS; i++) {
		l[i] = (struct lifecycle){
			.id = i, .rounds = KSLAB_TEST_TSAN ? 60 : 400,
		};
		err = pthread_create(&tid[i], NULL, create_use_destroy, &l[i]);
		if (err)
			break;
		started++;
	}
	for (i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	ASSERT_EQ(0, err);
	for (i = 0; i < THREADS; i++) {
		if (l[i].errors)
			TH_LOG("thread %u: %lu errors", i, l[i].errors);
		errors += l[i].errors;
	}
	EXPECT_EQ(0, errors);
}

/* ---- fork ------------------------------------------------------------- */

/*
 * Forked children end with exit(), so kslab's exit path runs in them too.
 * LeakSanitizer must sit that out: in a child of a threaded process it can
 * neither suspend the parent's other threads (it warns that false leaks are
 * possible) nor take ASan's allocator locks that one of them held at fork()
 * time (gcc 12's runtime has no fork handler for them), so it would hang.
 */
static bool in_forked_child;

#if KSLAB_TEST_ASAN
/* The runtime looks the hook up dynamically: keep it visible. */
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

struct churn {
	struct kmem_cache *s;
	pthread_mutex_t lock;
	bool stopped;
	unsigned long errors;
};

static bool churn_should_stop(struct churn *c)
{
	bool stop;

	pthread_mutex_lock(&c->lock);
	stop = c->stopped;
	pthread_mutex_unlock(&c->lock);
	return stop;
}

/* Allocates and frees in a loop so fork() lands at random points. */
static void *churn(void *arg)
{
	struct churn *c = arg;
	void *objs[64] = { NULL };
	unsigned long it;

	for (it = 0; (it & 1023) || !churn_should_stop(c); it++) {
		unsigned int slot = it % ARRAY_SIZE(objs);

		/* Odd slots hold cache objects, even slots kmalloc ones. */
		if (it & 1) {
			kmem_cache_free(c->s, objs[slot]);
			objs[slot] = kmem_cache_alloc(c->s, GFP_KERNEL);
		} else {
			kfree(objs[slot]);
			objs[slot] = kmalloc(1 + it % 9000, GFP_KERNEL);
		}
		if (!objs[slot])
			__atomic_fetch_add(&c->errors, 1, __ATOMIC_RELAXED);
	}
	/* kfree() takes objects of any cache. */
	for (it = 0; it < ARRAY_SIZE(objs); it++)
		kfree(objs[it]);
	return NULL;
}

static void churn_stop(struct churn *c)
{
	pthread_mutex_lock(&c->lock);
	c->stopped = true;
	pthread_mutex_unlock(&c->lock);
}

/* What a forked child does; returns its exit code (0: all good). */
static int child_allocates(struct kmem_cache *parent_cache)
{
	struct kmem_cache *s;
	struct kmem_cache_info info;
	void *objs[256];
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmalloc(1 + i * 61, GFP_KERNEL);
		if (!objs[i])
			return 10;
		memset(objs[i], 0x6b, 1 + i * 61);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kfree(objs[i]);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(parent_cache, GFP_KERNEL);
		if (!objs[i])
			return 11;
		memset(objs[i], 0x6c, OBJ_SIZE);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(parent_cache, objs[i]);

	s = kmem_cache_create("child_cache", 100, 0, 0, NULL);
	if (!s)
		return 12;
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i])
			return 13;
		memset(objs[i], 0x6d, 100);
	}
	if (kmem_cache_get_info(s, &info) || info.active_objs != ARRAY_SIZE(objs))
		return 14;
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
	return 0;
}

TEST(child_of_threaded_process_can_allocate_at_once)
{
	enum { CHURNERS = 2 };
	const unsigned int forks = KSLAB_TEST_TSAN ? 5 : 20;
	struct churn c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	pthread_t tid[CHURNERS];
	unsigned int i, clean = 0, hung = 0;
	int err = 0;

	c.s = kmem_cache_create("test_fork", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, c.s);
	for (i = 0; i < CHURNERS; i++)
		err |= pthread_create(&tid[i], NULL, churn, &c);
	ASSERT_EQ(0, err);

	for (i = 0; i < forks; i++) {
		int status = 0;
		pid_t pid;

		sleep_ms(1 + i % 3);
		pid = fork_child();
		if (pid == 0)
			exit(child_allocates(c.s));
		if (pid < 0)
			break;
		if (wait_child(pid, 20000, &status)) {
			hung++;
			continue;
		}
		if (child_exited_cleanly(status))
			clean++;
		else
			TH_LOG("child %u: status %#x", i, status);
	}
	churn_stop(&c);
	ASSERT_EQ(0, join_threads(tid, CHURNERS));
	EXPECT_EQ(0, hung);
	EXPECT_EQ(forks, clean);
	EXPECT_EQ(0, c.errors);
	EXPECT_CACHE_EMPTY_AND_DESTROY(c.s);
}

/* The child checks and frees what the parent allocated before fork(). */
static int child_frees_parent_objects(struct kmem_cache *s, void **objs,
				      void **kobjs, size_t nr)
{
	size_t i, j;

	for (i = 0; i < nr; i++) {
		const unsigned char *k = kobjs[i];

		if (!tag_ok(objs[i], 0xfa7e, i))
			return 20;
		for (j = 0; j < 1 + i % 3000; j++)
			if (k[j] != (unsigned char)i)
				return 21;
		kmem_cache_free(s, objs[i]);
		kfree(kobjs[i]);
	}
	if (active_objs(s) != 0)
		return 22;
	/* And the freed memory is usable again. */
	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i])
			return 23;
		tag(objs[i], 0xc41d, i);
	}
	for (i = 0; i < nr; i++)
		kmem_cache_free(s, objs[i]);
	return active_objs(s) == 0 ? 0 : 24;
}

TEST(child_can_free_objects_allocated_by_parent)
{
	const size_t nr = 2000;
	struct churn c = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct kmem_cache *s;
	void *objs[2000], *kobjs[2000];
	pthread_t tid;
	int status = 0;
	pid_t pid;
	size_t i;

	s = kmem_cache_create("test_fork_parent", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	c.s = kmem_cache_create("test_fork_churn", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, c.s);
	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		kobjs[i] = kmalloc(1 + i % 3000, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		ASSERT_NE(NULL, kobjs[i]);
		tag(objs[i], 0xfa7e, i);
		memset(kobjs[i], (int)(i & 0xff), 1 + i % 3000);
	}
	ASSERT_EQ(0, pthread_create(&tid, NULL, churn, &c));
	sleep_ms(5);
	pid = fork_child();
	if (pid == 0)
		exit(child_frees_parent_objects(s, objs, kobjs, nr));
	churn_stop(&c);
	ASSERT_EQ(0, pthread_join(tid, NULL));
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, wait_child(pid, 30000, &status)) TH_LOG("child hung");
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);

	/* The parent's copies are untouched by what the child did. */
	EXPECT_EQ(nr, active_objs(s));
	for (i = 0; i < nr; i++) {
		EXPECT_TRUE(tag_ok(objs[i], 0xfa7e, i));
		kmem_cache_free(s, objs[i]);
		kfree(kobjs[i]);
	}
	EXPECT_EQ(0, c.errors);
	EXPECT_CACHE_EMPTY_AND_DESTROY(s);
	EXPECT_CACHE_EMPTY_AND_DESTROY(c.s);
}

TEST_HARNESS_MAIN
