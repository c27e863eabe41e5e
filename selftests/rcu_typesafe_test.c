// SPDX-License-Identifier: MIT
/*
 * SLAB_TYPESAFE_BY_RCU caches (<kslab/slab.h>): kmem_cache_free() may
 * hand an object out again at once, to the same cache, but the memory
 * stays type-stable: it is neither returned to the operating system nor
 * given to another cache until a grace period after its slab became
 * empty.  So a reader inside rcu_read_lock() may still dereference a
 * pointer to an object freed after it entered; it finds an object of the
 * same cache, perhaps a different one, never a fault.
 *
 * Users make that safe with the lookup-then-revalidate pattern: find the
 * object under rcu_read_lock(), take a reference only if its count is not
 * zero, then check that it is still the object looked for (its key) and
 * drop it otherwise.  The concurrent test runs exactly that against
 * updaters that free and reallocate objects as fast as they can.
 *
 * Destroying a typesafe cache hands its slabs to the RCU machinery too, so
 * a fork() meanwhile must not deadlock between the two.
 *
 * Every object carries a tag written by the cache's constructor and never
 * again: a reader that finds the tag changed saw memory that left the
 * cache.  Objects are touched with relaxed atomics: readers read memory
 * that other threads are reusing, by design, and ThreadSanitizer cannot
 * see the grace periods that make it safe (liburcu is not instrumented).
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
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

#define MiB			(1UL << 20)
#define HANDOFF_TIMEOUT_MS	10000
#define RELEASE_TIMEOUT_MS	5000
#define HOLD_MS			50

#define load_relaxed(x)		__atomic_load_n(&(x), __ATOMIC_RELAXED)
#define store_relaxed(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELAXED)

/*
 * Without _LGPL_SOURCE, liburcu 0.13's rcu_dereference() is a plain load
 * handed to a function, which ThreadSanitizer takes for a plain access
 * racing with the updaters' atomic exchange; under it, an acquire load.
 */
#if KSLAB_TEST_TSAN
#define deref(slot)		__atomic_load_n(&(slot), __ATOMIC_ACQUIRE)
#else
#define deref(slot)		rcu_dereference(slot)
#endif

/* ---- objects ----------------------------------------------------------- */

#define CACHE_TAG	0x7479706573616665ULL
#define PAYLOAD_WORDS	5

struct entry {
	uint64_t cache_tag;	/* written by the constructor only */
	int refcount;		/* 0 while free; the table holds one */
	uint64_t key;		/* unique per incarnation */
	uint64_t payload[PAYLOAD_WORDS];	/* derived from key */
};

static void entry_ctor(void *obj)
{
	struct entry *e = obj;

	store_relaxed(e->cache_tag, CACHE_TAG);
	store_relaxed(e->refcount, 0);
}

static struct kmem_cache *entry_cache(const char *name)
{
	return kmem_cache_create(name, sizeof(struct entry), 0,
				 SLAB_TYPESAFE_BY_RCU, entry_ctor);
}

static uint64_t payload_word(uint64_t key, unsigned int i)
{
	return (key + i) * 0x9e3779b97f4a7c15ULL;
}

static void entry_init(struct entry *e, uint64_t key)
{
	unsigned int i;

	store_relaxed(e->key, key);
	for (i = 0; i < PAYLOAD_WORDS; i++)
		store_relaxed(e->payload[i], payload_word(key, i));
}

static bool payload_matches(const struct entry *e, uint64_t key)
{
	unsigned int i;

	for (i = 0; i < PAYLOAD_WORDS; i++)
		if (load_relaxed(e->payload[i]) != payload_word(key, i))
			return false;
	return true;
}

static bool entry_is_of_cache(const struct entry *e)
{
	return load_relaxed(e->cache_tag) == CACHE_TAG;
}

/* Takes a reference unless the count is zero (the entry is free). */
static bool get_ref_not_zero(struct entry *e)
{
	int old = __atomic_load_n(&e->refcount, __ATOMIC_RELAXED);

	do {
		if (!old)
			return false;
	} while (!__atomic_compare_exchange_n(&e->refcount, &old, old + 1, true,
					      __ATOMIC_ACQUIRE,
					      __ATOMIC_RELAXED));
	return true;
}

/* The last reference frees the entry, whoever drops it. */
static void put_ref(struct kmem_cache *s, struct entry *e)
{
	if (__atomic_sub_fetch(&e->refcount, 1, __ATOMIC_ACQ_REL) == 0)
		kmem_cache_free(s, e);
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

#define EXPECT_EMPTY_AND_DESTROY(s) do {				\
	struct stderr_capture __cap;					\
	EXPECT_EQ(0, active_objs(s));					\
	EXPECT_EQ(0, cache_info(s).pending_rcu);			\
	stderr_capture_begin(&__cap);					\
	kmem_cache_destroy(s);						\
	EXPECT_TEXT_EMPTY(stderr_capture_end(&__cap));			\
	stderr_capture_release(&__cap);					\
} while (0)

/* @nr entries with keys @first..; NULL if any allocation failed. */
static struct entry **alloc_entries(struct kmem_cache *s, size_t nr,
				    uint64_t first)
{
	struct entry **e = calloc(nr, sizeof(*e));
	size_t i;

	if (!e)
		return NULL;
	for (i = 0; i < nr; i++) {
		e[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!e[i]) {
			while (i--)
				kmem_cache_free(s, e[i]);
			free(e);
			return NULL;
		}
		entry_init(e[i], first + i);
	}
	return e;
}

static void free_entries(struct kmem_cache *s, struct entry **e, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		kmem_cache_free(s, e[i]);
}

/* mincore(): 1 resident, 0 mapped but not resident, -1 not mapped. */
static int page_state(const void *addr)
{
	long page = sysconf(_SC_PAGESIZE);
	void *start = (void *)((uintptr_t)addr & ~((uintptr_t)page - 1));
	unsigned char vec = 0;

	if (mincore(start, (size_t)page, &vec))
		return errno == ENOMEM ? -1 : -2;
	return vec & 1;
}

/*
 * let_empty_slabs_decay() without its kmem_cache_destroy(), which waits
 * for a grace period and so could not return while our reader holds one:
 * wait out KSLAB_SLAB_DECAY_MS, then take a slow path in @trigger, a
 * cache that has never allocated.
 */
static void decay_empty_slabs(struct kmem_cache *trigger)
{
	const char *env = getenv("KSLAB_SLAB_DECAY_MS");
	unsigned int ms = env ? (unsigned int)atoi(env) : 500;

	sleep_ms(ms + 100);
	kmem_cache_free(trigger, kmem_cache_alloc(trigger, GFP_KERNEL));
}

/* ---- a reader holding pointers to entries ------------------------------ */

/*
 * Enters a read-side critical section with pointers to @nr entries that
 * the test thread will free, checks one of them every millisecond while
 * inside, and, when asked, every one of them.  Leaves when released (or
 * after HANDOFF_TIMEOUT_MS, counting an error).
 */
struct holder {
	struct entry **entries;
	size_t nr;
	int inside;
	int scan;		/* test thread: check them all now */
	int scanned;
	int release;
	unsigned long checks;
	unsigned long errors;
	pthread_t tid;
};

static void *hold_entries(void *arg)
{
	struct holder *h = arg;
	unsigned long long deadline = monotonic_ms() + HANDOFF_TIMEOUT_MS;
	const struct entry *watched;
	size_t i;

	rcu_register_thread();
	rcu_read_lock();
	watched = h->entries[h->nr / 2];
	flag_set(&h->inside, 1);
	for (;;) {
		bool last = flag_get(&h->release);

		if (!entry_is_of_cache(watched))
			h->errors++;
		h->checks++;
		if (flag_get(&h->scan) && !flag_get(&h->scanned)) {
			for (i = 0; i < h->nr; i++)
				if (!entry_is_of_cache(h->entries[i]))
					h->errors++;
			flag_set(&h->scanned, 1);
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
	if (pthread_create(&h->tid, NULL, hold_entries, h))
		return false;
	return flag_wait(&h->inside, 1, HANDOFF_TIMEOUT_MS);
}

static bool holder_stop(struct holder *h)
{
	flag_set(&h->release, 1);
	return join_thread_within(h->tid, HANDOFF_TIMEOUT_MS) == 0;
}

/* ---- immediate reuse, type-stable memory ------------------------------ */

TEST(freed_object_is_back_in_its_cache_at_once)
{
	struct entry *e, *again;
	struct kmem_cache *s;

	s = entry_cache("typesafe_reuse");
	ASSERT_NE(NULL, s);
	e = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, e);
	entry_init(e, 1);
	kmem_cache_free(s, e);
	/* No grace period between a free and the next allocation. */
	EXPECT_EQ(0, active_objs(s));
	EXPECT_EQ(0, cache_info(s).pending_rcu);
	again = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, again);
	/* The constructor's state survives reuse: it ran once, at carving. */
	EXPECT_TRUE(entry_is_of_cache(again));
	EXPECT_EQ(0, again->refcount);
	kmem_cache_free(s, again);
	EXPECT_EMPTY_AND_DESTROY(s);
}

/*
 * A reader holds pointers into a typesafe cache while every object is
 * freed, the cache is shrunk, and another cache of the same object size
 * allocates and scribbles on a lot of memory.  The reader's objects must
 * stay readable and stay objects of their own cache.
 */
TEST(reader_can_still_read_objects_freed_after_it_entered)
{
	const size_t nr = 4096, nr_other = 64 * 1024;
	struct holder h = { .nr = nr };
	struct kmem_cache *s, *other;
	struct entry **entries;
	void **scribble;
	size_t i;

	s = entry_cache("typesafe_reader");
	ASSERT_NE(NULL, s);
	other = kmem_cache_create("typesafe_other", sizeof(struct entry), 0,
				  SLAB_NO_MERGE, NULL);
	ASSERT_NE(NULL, other);
	entries = alloc_entries(s, nr, 0);
	ASSERT_NE(NULL, entries);
	scribble = calloc(nr_other, sizeof(*scribble));
	ASSERT_NE(NULL, scribble);
	h.entries = entries;
	ASSERT_TRUE(holder_start(&h));

	free_entries(s, entries, nr);
	kmem_cache_shrink(s);
	for (i = 0; i < nr_other; i++) {
		scribble[i] = kmem_cache_alloc(other, GFP_KERNEL);
		ASSERT_NE(NULL, scribble[i]);
		memset(scribble[i], 0xa5, sizeof(struct entry));
	}
	for (i = 0; i < nr_other; i++) {
		void *k = kmalloc(sizeof(struct entry), GFP_KERNEL);

		ASSERT_NE(NULL, k);
		memset(k, 0x5a, sizeof(struct entry));
		kfree(k);
	}
	sleep_ms(HOLD_MS);
	flag_set(&h.scan, 1);
	EXPECT_TRUE(flag_wait(&h.scanned, 1, HANDOFF_TIMEOUT_MS));

	ASSERT_TRUE(holder_stop(&h));
	EXPECT_EQ(0, h.errors);
	EXPECT_LT(0, h.checks);
	for (i = 0; i < nr_other; i++)
		kmem_cache_free(other, scribble[i]);
	free(scribble);
	free(entries);
	kvfree_rcu_barrier();
	EXPECT_EMPTY_AND_DESTROY(s);
	EXPECT_EMPTY_AND_DESTROY(other);
}

/*
 * 16 MiB of entries, all freed and the cache shrunk while a reader holds
 * pointers into every slab: all of it stays mapped and intact until the
 * reader leaves; a grace period later the memory goes back to the OS.
 * Waits for the slab decay period too, so neither shrink nor decay may
 * release a slab early.
 */
TEST(empty_slabs_go_back_only_a_grace_period_after_the_reader_leaves)
{
	const size_t nr = 16 * MiB / sizeof(struct entry);
	struct holder h = { .nr = nr };
	long before, peak, during, after = 0;
	struct kmem_cache *s, *trigger;
	struct entry **entries;
	const void *watched;
	unsigned long long deadline;
	size_t i, unmapped = 0;

	s = entry_cache("typesafe_rss");
	ASSERT_NE(NULL, s);
	trigger = kmem_cache_create("typesafe_decay_trigger", 32, 0, 0, NULL);
	ASSERT_NE(NULL, trigger);
	before = resident_bytes();
	entries = alloc_entries(s, nr, 0);
	ASSERT_NE(NULL, entries);
	peak = resident_bytes();
	ASSERT_LT(8 * MiB, peak - before);
	watched = entries[nr / 2];
	h.entries = entries;
	ASSERT_TRUE(holder_start(&h));

	free_entries(s, entries, nr);
	kmem_cache_shrink(s);
	decay_empty_slabs(trigger);
	kmem_cache_shrink(s);
	for (i = 0; i < nr; i += 64)
		if (page_state(entries[i]) < 0)
			unmapped++;
	EXPECT_EQ(0, unmapped) TH_LOG("pages unmapped under a reader");
	flag_set(&h.scan, 1);
	EXPECT_TRUE(flag_wait(&h.scanned, 1, HANDOFF_TIMEOUT_MS));
	during = resident_bytes();
	EXPECT_GE(during, before + (peak - before) / 2)
		TH_LOG("resident KiB: before %ld, peak %ld, under the reader %ld",
		       before >> 10, peak >> 10, during >> 10);

	ASSERT_TRUE(holder_stop(&h));
	EXPECT_EQ(0, h.errors);
	kvfree_rcu_barrier();
	deadline = monotonic_ms() + RELEASE_TIMEOUT_MS;
	for (;;) {
		after = resident_bytes();
		if (page_state(watched) <= 0 &&
		    peak - after >= (peak - before) / 2)
			break;
		if (monotonic_ms() >= deadline)
			break;
		sleep_ms(5);
	}
	EXPECT_GE(0, page_state(watched));
	EXPECT_LE((peak - before) / 2, peak - after)
		TH_LOG("resident KiB: before %ld, peak %ld, after %ld",
		       before >> 10, peak >> 10, after >> 10);
	free(entries);
	EXPECT_EMPTY_AND_DESTROY(s);
	EXPECT_EMPTY_AND_DESTROY(trigger);
}

/* ---- lookup, then revalidate ------------------------------------------- */

#define NR_SLOTS	16

/*
 * A table of entries, each published in a slot.  The key an entry was
 * published under is also kept beside the slot as a hint: a reader
 * looks the hinted key up and must revalidate, because by then the slot
 * may hold another entry or its entry may have been freed and reused.
 */
struct table {
	struct entry *slot[NR_SLOTS];
	uint64_t key_hint[NR_SLOTS];
	struct kmem_cache *s;
	uint64_t next_key;
	int stop;
};

struct lookup {
	struct table *t;
	unsigned int id;
	unsigned long hits;		/* reference taken, key matched */
	unsigned long recycled;		/* reference taken, another key */
	unsigned long free_seen;	/* count was zero: the entry was free */
	unsigned long errors;
	pthread_t tid;
};

struct replacer {
	struct table *t;
	unsigned int id;
	unsigned long replaced;
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

/* The entry for @key, with a reference held, or NULL. */
static struct entry *lookup_key(struct lookup *r, unsigned int i, uint64_t key)
{
	struct table *t = r->t;
	struct entry *e;

	rcu_read_lock();
	e = deref(t->slot[i]);
	if (!e) {
		rcu_read_unlock();
		return NULL;
	}
	/* Whatever it is by now, it is an entry of this cache. */
	if (!entry_is_of_cache(e))
		r->errors++;
	if (!get_ref_not_zero(e)) {
		rcu_read_unlock();
		r->free_seen++;
		return NULL;
	}
	rcu_read_unlock();
	/* Our reference pins the entry; is it still the one we wanted? */
	if (load_relaxed(e->key) != key) {
		put_ref(t->s, e);
		r->recycled++;
		return NULL;
	}
	return e;
}

static void *lookup_loop(void *arg)
{
	struct lookup *r = arg;
	struct table *t = r->t;
	uint64_t rnd = 0x2545f4914f6cdd1dULL * (r->id + 1);

	rcu_register_thread();
	while (!flag_get(&t->stop)) {
		unsigned int i = next_rand(&rnd) % NR_SLOTS;
		uint64_t key = __atomic_load_n(&t->key_hint[i], __ATOMIC_ACQUIRE);
		struct entry *e = lookup_key(r, i, key);

		if (!e)
			continue;
		if (!payload_matches(e, key))
			r->errors++;
		put_ref(t->s, e);
		r->hits++;
	}
	rcu_unregister_thread();
	return NULL;
}

static void *replace_loop(void *arg)
{
	struct replacer *u = arg;
	struct table *t = u->t;
	uint64_t rnd = 0x9e3779b97f4a7c15ULL * (u->id + 1);

	while (!flag_get(&t->stop)) {
		unsigned int i = next_rand(&rnd) % NR_SLOTS;
		struct entry *e, *old;
		uint64_t key;

		e = kmem_cache_alloc(t->s, GFP_KERNEL);
		if (!e) {
			u->errors++;
			continue;
		}
		/* Reused or new, a free entry is as its last owner left it. */
		if (!entry_is_of_cache(e) ||
		    __atomic_load_n(&e->refcount, __ATOMIC_RELAXED))
			u->errors++;
		key = __atomic_add_fetch(&t->next_key, 1, __ATOMIC_RELAXED);
		entry_init(e, key);
		/* Publishes key and payload to whoever takes a reference. */
		__atomic_store_n(&e->refcount, 1, __ATOMIC_RELEASE);
		old = __atomic_exchange_n(&t->slot[i], e, __ATOMIC_ACQ_REL);
		__atomic_store_n(&t->key_hint[i], key, __ATOMIC_RELEASE);
		if (old)
			put_ref(t->s, old);
		u->replaced++;
	}
	return NULL;
}

TEST(lookup_then_revalidate_survives_concurrent_reuse)
{
	enum { READERS = 3, REPLACERS = 2 };
	const unsigned int run_ms = KSLAB_TEST_TSAN ? 1000 : 1500;
	struct replacer u[REPLACERS];
	struct lookup r[READERS];
	unsigned long hits = 0, recycled = 0, free_seen = 0, replaced = 0;
	struct table *t;
	unsigned int i;

	t = calloc(1, sizeof(*t));
	ASSERT_NE(NULL, t);
	t->s = entry_cache("typesafe_lookup");
	ASSERT_NE(NULL, t->s);
	for (i = 0; i < REPLACERS; i++) {
		u[i] = (struct replacer){ .t = t, .id = i };
		ASSERT_EQ(0, pthread_create(&u[i].tid, NULL, replace_loop, &u[i]));
	}
	for (i = 0; i < READERS; i++) {
		r[i] = (struct lookup){ .t = t, .id = i };
		ASSERT_EQ(0, pthread_create(&r[i].tid, NULL, lookup_loop, &r[i]));
	}
	sleep_ms(run_ms);
	flag_set(&t->stop, 1);
	for (i = 0; i < REPLACERS; i++) {
		ASSERT_EQ(0, join_thread_within(u[i].tid, HANDOFF_TIMEOUT_MS));
		EXPECT_EQ(0, u[i].errors) TH_LOG("replacer %u", i);
		replaced += u[i].replaced;
	}
	for (i = 0; i < READERS; i++) {
		ASSERT_EQ(0, join_thread_within(r[i].tid, HANDOFF_TIMEOUT_MS));
		EXPECT_EQ(0, r[i].errors) TH_LOG("reader %u", i);
		hits += r[i].hits;
		recycled += r[i].recycled;
		free_seen += r[i].free_seen;
	}
	TH_LOG("%lu replacements; lookups: %lu hits, %lu found another key, %lu found a free entry",
	       replaced, hits, recycled, free_seen);
	EXPECT_LT(0, replaced);
	EXPECT_LT(0, hits);

	/* Drop the table's references: every entry goes back. */
	for (i = 0; i < NR_SLOTS; i++)
		if (t->slot[i])
			put_ref(t->s, t->slot[i]);
	EXPECT_EQ(0, active_objs(t->s));
	kvfree_rcu_barrier();
	EXPECT_EMPTY_AND_DESTROY(t->s);
	free(t);
}

/* ---- fork ------------------------------------------------------------- */

/* Creates a typesafe cache, uses one object and destroys it, in a loop. */
struct destroyer {
	int stop;
	unsigned long rounds;
	unsigned long errors;
	pthread_t tid;
};

static void *create_and_destroy(void *arg)
{
	struct destroyer *d = arg;

	while (!flag_get(&d->stop)) {
		struct kmem_cache *s = entry_cache("typesafe_fork");
		struct entry *e;

		if (!s) {
			d->errors++;
			break;
		}
		e = kmem_cache_alloc(s, GFP_KERNEL);
		if (e)
			kmem_cache_free(s, e);
		else
			d->errors++;
		/* Its empty slab goes back after a grace period. */
		kmem_cache_destroy(s);
		__atomic_add_fetch(&d->rounds, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

/*
 * Forks from a thread of its own, so that a fork() that never returns
 * fails the test at a deadline instead of hanging it.
 */
struct forker {
	unsigned int forks;
	unsigned int done;
	unsigned long failed;	/* children that did not exit(0) in time */
	int finished;
	pthread_t tid;
};

static void *fork_repeatedly(void *arg)
{
	struct forker *f = arg;
	unsigned int i;

	for (i = 0; i < f->forks; i++) {
		int status = 0;
		pid_t pid;

		fflush(stdout);
		fflush(stderr);
		pid = fork();
		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			f->failed++;
			break;
		}
		if (wait_child(pid, HANDOFF_TIMEOUT_MS, &status) ||
		    !child_exited_cleanly(status))
			f->failed++;
		__atomic_add_fetch(&f->done, 1, __ATOMIC_RELAXED);
	}
	flag_set(&f->finished, 1);
	return NULL;
}

TEST(fork_while_typesafe_caches_are_destroyed_does_not_deadlock)
{
	struct forker f = { .forks = KSLAB_TEST_TSAN ? 50 : 500 };
	struct destroyer d = { 0 };
	bool finished;

	ASSERT_EQ(0, pthread_create(&d.tid, NULL, create_and_destroy, &d));
	ASSERT_EQ(0, pthread_create(&f.tid, NULL, fork_repeatedly, &f));
	finished = flag_wait(&f.finished, 1, 15000);
	flag_set(&d.stop, 1);
	ASSERT_TRUE(finished)
		TH_LOG("fork() hung after %u forks and %lu cache destroys",
		       __atomic_load_n(&f.done, __ATOMIC_RELAXED),
		       __atomic_load_n(&d.rounds, __ATOMIC_RELAXED));
	ASSERT_EQ(0, join_thread_within(d.tid, HANDOFF_TIMEOUT_MS))
		TH_LOG("kmem_cache_destroy() hung");
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.failed);
	EXPECT_EQ(0, d.errors);
	EXPECT_LT(0, d.rounds);
}

TEST_HARNESS_MAIN
