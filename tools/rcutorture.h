/* SPDX-License-Identifier: MIT */
/*
 * The RCU torture engine behind tools/rcutorture and
 * selftests/rcu_torture_test: reader threads walk an RCU-protected hash
 * table while updater threads replace its objects and free the old ones
 * with kfree_rcu() as fast as they can.  If kslab ever hands an object's
 * memory out again while a reader can still reach it, a reader notices.
 *
 * The structure.  A liburcu rculfhash table holds one object per key
 * 0 .. list_size - 1.  Updaters replace objects with
 * cds_lfht_add_replace(), which promises that a concurrent traversal
 * finds every key exactly once.  Each key belongs to one updater
 * (key % updaters), so its generations (1, 2, 3, ...) are published in
 * order and key_gen[key] says which generation is the newest one
 * announced.  Objects come from a dedicated cache (no constructor, never
 * merged) or, one in four, from kmalloc(); one free in sixteen is
 * kfree_rcu_mightsleep() instead of kfree_rcu().  Optionally each
 * updater's work passes from one short-lived thread to the next, so
 * threads exit with frees still in their kfree_rcu() batches.  In busted
 * mode (rcutorture --busted, and a selftest that expects the catch)
 * updaters kfree() at once instead: the bug the checks exist for, so
 * they can be seen to work.
 *
 * Why rculfhash rather than rculist: besides the exactly-once promise
 * and updaters that need no lock, its pointer updates all happen inside
 * liburcu-cds.  liburcu 0.13's rculist.h publishes with inline plain and
 * volatile stores (rcu_assign_pointer() is a compiler barrier and a
 * volatile store on x86), which ThreadSanitizer reports as races against
 * rcu_dereference(), inside liburcu's own headers.
 *
 * An object is immutable while it is published.  Its updater writes it
 * only between allocation and publication:
 *
 *   1. allocate; poison it (0x6b bytes, magic DEAD), all but the table
 *      node: liburcu rewrites that on publication, and until then its
 *      old links lead a stray reader to other objects, whose checks
 *      catch it, rather than into a crash on a poisoned pointer;
 *   2. write key, generation, payload and a checksum over them, then
 *      magic LIVE;
 *   3. announce the generation in key_gen[key]; publish with
 *      cds_lfht_add_replace(); kfree_rcu() the object it replaced.
 *
 * The updater must not poison the old object when it frees it: RCU lets
 * every reader that found it before the replacement keep using it until
 * that reader's critical section ends, so the object has to stay intact
 * until kslab reclaims it.  The poisoning therefore happens at the only
 * moment the memory is ours again: when kslab hands it out anew.
 *
 * Why a reader can only see damage if kslab reclaims too early.  A
 * reader reaches objects only inside rcu_read_lock(), through the table.
 * An object is removed from the table before it is passed to
 * kfree_rcu(), so a reader whose critical section begins after that call
 * cannot reach it; every reader that can reach it began earlier.
 * kfree_rcu() promises not to free the object until all of those have
 * unlocked, and only a free makes the memory available to
 * kmem_cache_alloc()/kmalloc(), hence to step 1.  So with a correct kslab
 * no reader ever observes steps 1-2 on an object it can reach, and every
 * check below holds.  With a kslab that reclaims before the grace period
 * ends, a reader still on the object sees, depending on when it looks:
 *
 *   - the poison (magic DEAD or 0x6b bytes) between steps 1 and 2;
 *   - a checksum that does not match, in the middle of step 2;
 *   - a generation newer than key_gen announces, between 2 and 3;
 *   - afterwards, a key seen twice in one walk, a key missing, or a
 *     generation older than the one announced when the walk began
 *     minus one (the table holds either the announced generation or the
 *     one before it, and a traversal never returns a removed object);
 *   - and, at the end of its critical section, every object it visited
 *     is checked again: anything that changed since it first looked
 *     (magic, key, generation, checksum word) was reused under it.
 *
 * The last check is deterministic for reuse during the walk (and during
 * the optional sleep inside the read-side section that stretches grace
 * periods); the others catch reuse that happened just before the reader
 * looked.  Updaters add two checks of their own: the node that
 * cds_lfht_add_replace() returns is the one they published last for
 * that key, and it is intact when they retire it.
 *
 * ThreadSanitizer.  liburcu is not instrumented: TSan cannot see that
 * rcu_assign_pointer() inside rculfhash orders an object's initialisation
 * before its publication, nor that synchronize_rcu() in kslab's reclaim
 * thread waits for readers.  Built with TSan, the engine states exactly
 * these two guarantees with TSan's own annotations and nothing more:
 *
 *   - publication: an updater releases the object's address before
 *     publishing it; whoever reaches it through the table acquires it;
 *   - grace period: every read-side critical section releases one
 *     shared address just before rcu_read_unlock(), and an updater
 *     acquires it right after allocating.  A section that began before
 *     the free has therefore released before the grace period ended,
 *     which is before the free, the reallocation and the acquire.  If
 *     kslab reclaimed early, the section has not released yet and TSan
 *     reports the race, as the checks above would.
 *
 * Everything else (kslab's batches, locks and reclaim thread, this
 * engine's counters) is left for TSan to check.
 *
 * The engine itself uses libc memory only (the table's buckets come
 * from liburcu), so a broken allocator cannot break its instruments.
 * Every wait is bounded: threads also stop on their own at a hard
 * deadline, joins and the final barrier have timeouts.
 */
#ifndef _KSLAB_TOOLS_RCUTORTURE_H
#define _KSLAB_TOOLS_RCUTORTURE_H

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <urcu.h>
#include <urcu/rculfhash.h>

#include <kslab/slab.h>

#include "lib/compiler.h"

/* gcc defines a macro for ThreadSanitizer, clang answers __has_feature. */
#if defined(__SANITIZE_THREAD__)
#define TORTURE_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TORTURE_TSAN 1
#endif
#endif

#ifdef TORTURE_TSAN
#include <sanitizer/tsan_interface.h>
#define torture_hb_release(addr)	__tsan_release((void *)(addr))
#define torture_hb_acquire(addr)	__tsan_acquire((void *)(addr))
#else
#define torture_hb_release(addr)	((void)(addr))
#define torture_hb_acquire(addr)	((void)(addr))
#endif

#define TORTURE_LIVE		0x4c4956454f424a21ULL	/* "LIVEOBJ!" */
#define TORTURE_DEAD		0xdeaddeaddeaddeadULL
#define TORTURE_POISON		0x6b
#define TORTURE_POISON_WORD	0x6b6b6b6b6b6b6b6bULL
#define TORTURE_PAYLOAD_WORDS	8

#define TORTURE_FROM_CACHE	1
#define TORTURE_FROM_KMALLOC	2

struct torture_obj {
	struct cds_lfht_node node;	/* written by liburcu on publication */
	struct rcu_head rcu;		/* kfree_rcu() may use it once removed */
	uint64_t magic;			/* TORTURE_LIVE while published */
	uint32_t key;
	uint32_t from;			/* TORTURE_FROM_CACHE or _KMALLOC */
	uint64_t gen;			/* generation of @key */
	uint64_t payload[TORTURE_PAYLOAD_WORDS];
	uint64_t csum;			/* over key, from, gen and payload */
};

_Static_assert(sizeof(struct torture_obj) == 128,
	       "torture objects fill one kmalloc-128 slot exactly");

enum torture_failure {
	TORTURE_FAIL_POISON,	/* reached memory being reallocated */
	TORTURE_FAIL_MAGIC,	/* reached something that is no object */
	TORTURE_FAIL_KEY,	/* key out of range */
	TORTURE_FAIL_CHECKSUM,	/* contents torn */
	TORTURE_FAIL_GEN_NEWER,	/* a generation not announced yet */
	TORTURE_FAIL_GEN_OLDER,	/* removed before the walk began */
	TORTURE_FAIL_DUPLICATE,	/* a key twice in one walk */
	TORTURE_FAIL_MISSING,	/* a walk found fewer keys than exist */
	TORTURE_FAIL_CHANGED,	/* changed inside one read-side section */
	TORTURE_FAIL_REPLACED,	/* add_replace() returned another node */
	TORTURE_FAIL_RETIRED,	/* damaged while its updater owned it */
	TORTURE_FAIL_ALLOC,	/* allocation failed */
	TORTURE_FAIL_STUCK,	/* a thread or barrier missed its deadline */
	NR_TORTURE_FAILURES
};

static const char *const torture_failure_names[NR_TORTURE_FAILURES] = {
	[TORTURE_FAIL_POISON]	 = "poisoned object",
	[TORTURE_FAIL_MAGIC]	 = "bad magic",
	[TORTURE_FAIL_KEY]	 = "bad key",
	[TORTURE_FAIL_CHECKSUM]	 = "bad checksum",
	[TORTURE_FAIL_GEN_NEWER] = "unpublished generation",
	[TORTURE_FAIL_GEN_OLDER] = "stale generation",
	[TORTURE_FAIL_DUPLICATE] = "key seen twice",
	[TORTURE_FAIL_MISSING]	 = "key missing",
	[TORTURE_FAIL_CHANGED]	 = "changed under reader",
	[TORTURE_FAIL_REPLACED]	 = "wrong node replaced",
	[TORTURE_FAIL_RETIRED]	 = "damaged before retirement",
	[TORTURE_FAIL_ALLOC]	 = "allocation failed",
	[TORTURE_FAIL_STUCK]	 = "missed a deadline",
};

struct torture_config {
	unsigned int readers;
	unsigned int updaters;
	unsigned int list_size;		/* keys, hence objects in the table */
	unsigned int reader_sleep_ms;	/* 0: readers never sleep in a section */
	unsigned int reader_sleep_one_in; /* walks per sleep, on average */
	unsigned int run_limit_ms;	/* threads stop by themselves after this */
	unsigned int updater_lifetime;	/* replacements per updater thread; 0: all */
	bool busted;			/* kfree() at once: must be caught */
};

/* Counters each thread writes alone; others read them with atomics. */
struct torture_counters {
	unsigned long ops;		/* walks or replacements */
	unsigned long checked;		/* objects checked by a reader */
	unsigned long sleeps;		/* reader sleeps inside a section */
	unsigned long kmalloc_objs;	/* objects from kmalloc() */
	unsigned long mightsleep_frees;	/* kfree_rcu_mightsleep() calls */
	unsigned long reused;		/* allocations of a former object */
	unsigned long exits;		/* short-lived updater threads ended */
	unsigned long failures[NR_TORTURE_FAILURES];
};

/* What a reader remembers of an object until its section ends. */
struct torture_visit {
	const struct torture_obj *obj;
	uint64_t magic, gen, csum;
	uint32_t key;
};

struct torture;

struct torture_thread {
	_Alignas(64) struct torture *t;	/* no cache line shared with another */
	pthread_t tid;
	unsigned int id;
	bool started;
	uint64_t rnd;
	struct torture_counters c;
	/* readers */
	uint64_t *start_gen;		/* key_gen when the walk began */
	unsigned long *seen;		/* walk number that last saw a key */
	struct torture_visit *visited;
};

struct torture {
	struct torture_config cfg;
	struct kmem_cache *cache;
	struct cds_lfht *table;
	struct torture_obj **cur;	/* per key; owned by its updater */
	uint64_t *key_gen;		/* newest generation announced */
	struct torture_thread *threads;	/* readers first, then updaters */
	struct torture_thread *readers;
	struct torture_thread *updaters;
	unsigned int nr_threads;
	unsigned long long start_ms, deadline_ms;
	bool stop;
	bool registered;
	unsigned long stuck;		/* joins and barriers that timed out */
	pthread_mutex_t lock;		/* first_failure */
	char first_failure[256];
	struct kslab_rcu_stats rcu_start;
};

/* A consistent-enough sum of every thread's counters and kslab's. */
struct torture_sample {
	unsigned long long ms;		/* since torture_start() */
	unsigned long walks, checked, sleeps;
	unsigned long updates, kmalloc_objs, mightsleep_frees, reused;
	unsigned long updater_exits;
	unsigned long failures[NR_TORTURE_FAILURES];
	unsigned long total_failures;
	struct kslab_rcu_stats rcu;	/* since torture_setup() */
};

/* Every reader section ends here, see "grace period" above. */
static int torture_gp_sync;

static unsigned long long torture_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void torture_sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static uint64_t torture_random(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* Single-writer counters: a plain increment, published atomically. */
static void torture_count_n(unsigned long *counter, unsigned long n)
{
	WRITE_ONCE(*counter, *counter + n);
}

static void torture_count(unsigned long *counter)
{
	torture_count_n(counter, 1);
}

static bool torture_should_stop(struct torture *t)
{
	return READ_ONCE(t->stop);
}

static bool torture_past_deadline(struct torture *t)
{
	return torture_now_ms() >= t->deadline_ms;
}

/* Keep the first failure's description for the report. */
static void torture_describe(struct torture *t, enum torture_failure why,
			     const char *fmt, va_list ap)
{
	pthread_mutex_lock(&t->lock);
	if (!t->first_failure[0]) {
		int n = snprintf(t->first_failure, sizeof(t->first_failure),
				 "%s: ", torture_failure_names[why]);

		vsnprintf(t->first_failure + n, sizeof(t->first_failure) - n,
			  fmt, ap);
	}
	pthread_mutex_unlock(&t->lock);
}

static __printf(3, 4)
void torture_fail(struct torture_thread *th, enum torture_failure why,
		  const char *fmt, ...)
{
	va_list ap;

	torture_count(&th->c.failures[why]);
	va_start(ap, fmt);
	torture_describe(th->t, why, fmt, ap);
	va_end(ap);
}

/* For the controlling thread, which owns no counters of its own. */
static __printf(2, 3)
void torture_stuck(struct torture *t, const char *fmt, ...)
{
	va_list ap;

	__atomic_fetch_add(&t->stuck, 1, __ATOMIC_RELAXED);	/* any thread */
	va_start(ap, fmt);
	torture_describe(t, TORTURE_FAIL_STUCK, fmt, ap);
	va_end(ap);
}

/* ---- objects ------------------------------------------------------------ */

static unsigned long torture_hash(uint32_t key)
{
	return (unsigned long)key * 0x9e3779b97f4a7c15UL;
}

static uint64_t torture_checksum(const struct torture_obj *obj, uint32_t key,
				 uint32_t from, uint64_t gen)
{
	uint64_t h = 0xcbf29ce484222325ULL ^ key ^ (uint64_t)from << 32;
	unsigned int i;

	h = (h ^ gen) * 0x100000001b3ULL;
	for (i = 0; i < TORTURE_PAYLOAD_WORDS; i++) {
		uint64_t w = READ_ONCE(obj->payload[i]);

		h = (h ^ w) * 0x100000001b3ULL;
		h ^= h >> 29;
	}
	return h;
}

/* liburcu calls this on objects it passes, published or not. */
static int torture_match(struct cds_lfht_node *node, const void *key)
{
	struct torture_obj *obj = caa_container_of(node, struct torture_obj,
						   node);

	torture_hb_acquire(obj);
	return READ_ONCE(obj->key) == *(const uint32_t *)key;
}

/*
 * torture_new_object() - steps 1 and 2: allocate, poison, fill.
 *
 * Return: the object, magic LIVE but not yet published, or NULL.
 */
static struct torture_obj *torture_new_object(struct torture_thread *th,
					      uint32_t key, uint64_t gen)
{
	struct torture *t = th->t;
	uint64_t r = torture_random(&th->rnd);
	uint32_t from = (r & 3) ? TORTURE_FROM_CACHE : TORTURE_FROM_KMALLOC;
	struct torture_obj *obj;
	unsigned int i;

	if (from == TORTURE_FROM_CACHE)
		obj = kmem_cache_alloc(t->cache, GFP_KERNEL);
	else
		obj = kmalloc(sizeof(*obj), GFP_KERNEL);
	if (!obj) {
		torture_fail(th, TORTURE_FAIL_ALLOC, "key %u generation %llu",
			     key, (unsigned long long)gen);
		return NULL;
	}
	/* Whatever a reader did with this memory before is over. */
	torture_hb_acquire(&torture_gp_sync);
	if (obj->magic == TORTURE_LIVE)
		torture_count(&th->c.reused);
	if (from == TORTURE_FROM_KMALLOC)
		torture_count(&th->c.kmalloc_objs);

	memset(&obj->rcu, TORTURE_POISON,
	       sizeof(*obj) - offsetof(struct torture_obj, rcu));
	WRITE_ONCE(obj->magic, TORTURE_DEAD);
	cmm_smp_wmb();	/* the poison lands before the new contents */
	/*
	 * Now and then hold the poison up where a stray reader would see
	 * it: a spin, since a yield would hand the CPU to a reader for a
	 * whole time slice.
	 */
	if (!((r >> 8) & 63)) {
		for (i = 0; i < 256; i++)
			caa_cpu_relax();
	}

	obj->key = key;
	obj->from = from;
	obj->gen = gen;
	for (i = 0; i < TORTURE_PAYLOAD_WORDS; i++)
		obj->payload[i] = torture_random(&th->rnd);
	obj->csum = torture_checksum(obj, key, from, gen);
	/* release: whoever sees LIVE sees the contents it vouches for */
	smp_store_release(&obj->magic, TORTURE_LIVE);
	return obj;
}

/*
 * torture_read_object() - snapshot @obj into @v and check it.
 *
 * Return: true when it is an intact torture object with a key in range;
 * otherwise *@why says what is wrong.
 */
static bool torture_read_object(const struct torture_obj *obj,
				unsigned int nr_keys, struct torture_visit *v,
				enum torture_failure *why)
{
	v->obj = obj;
	v->magic = READ_ONCE(obj->magic);
	v->key = READ_ONCE(obj->key);
	/* acquire: a later look at key_gen[] is not older than this */
	v->gen = smp_load_acquire(&obj->gen);
	v->csum = READ_ONCE(obj->csum);

	if (v->magic == TORTURE_DEAD || v->magic == TORTURE_POISON_WORD)
		*why = TORTURE_FAIL_POISON;
	else if (v->magic != TORTURE_LIVE)
		*why = TORTURE_FAIL_MAGIC;
	else if (v->key >= nr_keys)
		*why = TORTURE_FAIL_KEY;
	else if (v->csum != torture_checksum(obj, v->key,
					     READ_ONCE(obj->from),
					     v->gen))
		*why = TORTURE_FAIL_CHECKSUM;
	else
		return true;
	return false;
}

/* ---- readers ------------------------------------------------------------ */

static void torture_read_unlock(void)
{
	torture_hb_release(&torture_gp_sync);
	rcu_read_unlock();
}

/* Same snapshot as when first visited, or the memory was reused. */
static void torture_recheck(struct torture_thread *th, unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		const struct torture_visit *v = &th->visited[i];
		const struct torture_obj *obj = v->obj;

		if (READ_ONCE(obj->magic) != v->magic ||
		    READ_ONCE(obj->key) != v->key ||
		    READ_ONCE(obj->gen) != v->gen ||
		    READ_ONCE(obj->csum) != v->csum) {
			torture_fail(th, TORTURE_FAIL_CHANGED,
				     "object %p was key %u generation %llu when first seen in this read-side section",
				     (void *)obj, v->key,
				     (unsigned long long)v->gen);
			return;
		}
	}
}

/* Check one object reached in walk @walk; false stops the walk. */
static bool torture_visit(struct torture_thread *th, unsigned long walk,
			  const struct torture_obj *obj, unsigned int nr)
{
	struct torture *t = th->t;
	struct torture_visit *v = &th->visited[nr];
	enum torture_failure why;
	uint64_t newest;

	torture_hb_acquire(obj);
	if (nr == t->cfg.list_size) {
		torture_fail(th, TORTURE_FAIL_DUPLICATE,
			     "more than %u objects in one walk",
			     t->cfg.list_size);
		return false;
	}
	if (!torture_read_object(obj, t->cfg.list_size, v, &why)) {
		torture_fail(th, why,
			     "object %p: magic %#llx key %u generation %llu",
			     (void *)obj, (unsigned long long)v->magic, v->key,
			     (unsigned long long)v->gen);
		return false;
	}
	if (th->seen[v->key] == walk) {
		torture_fail(th, TORTURE_FAIL_DUPLICATE,
			     "key %u twice in one walk (object %p, generation %llu)",
			     v->key, (void *)obj, (unsigned long long)v->gen);
		return false;
	}
	th->seen[v->key] = walk;

	/* read after the generation (acquire), so never older than it */
	newest = READ_ONCE(t->key_gen[v->key]);
	if (v->gen > newest) {
		torture_fail(th, TORTURE_FAIL_GEN_NEWER,
			     "key %u generation %llu, newest announced %llu",
			     v->key, (unsigned long long)v->gen,
			     (unsigned long long)newest);
		return false;
	}
	if (v->gen + 1 < th->start_gen[v->key]) {
		torture_fail(th, TORTURE_FAIL_GEN_OLDER,
			     "key %u generation %llu, %llu announced before the walk",
			     v->key, (unsigned long long)v->gen,
			     (unsigned long long)th->start_gen[v->key]);
		return false;
	}
	return true;
}

/* One read-side critical section: walk, maybe sleep, recheck. */
static void torture_walk(struct torture_thread *th, unsigned long walk)
{
	struct torture *t = th->t;
	const unsigned int nr_keys = t->cfg.list_size;
	struct torture_obj *obj;
	struct cds_lfht_iter iter;
	unsigned int nr = 0, k;
	bool complete = true;

	rcu_read_lock();
	for (k = 0; k < nr_keys; k++) {
		/* acquire: the removals it announces are visible to the walk */
		th->start_gen[k] = smp_load_acquire(&t->key_gen[k]);
	}
	cds_lfht_for_each_entry(t->table, &iter, obj, node) {
		/* cppcheck-suppress uninitvar ; the iterator sets obj */
		if (!torture_visit(th, walk, obj, nr)) {
			/* never follow a damaged object's links */
			complete = false;
			break;
		}
		nr++;
	}
	if (complete && nr != nr_keys)
		torture_fail(th, TORTURE_FAIL_MISSING,
			     "one walk found %u of %u keys", nr, nr_keys);
	if (t->cfg.reader_sleep_ms && t->cfg.reader_sleep_one_in &&
	    !(torture_random(&th->rnd) % t->cfg.reader_sleep_one_in)) {
		torture_sleep_ms(1 + torture_random(&th->rnd) %
				 t->cfg.reader_sleep_ms);
		torture_count(&th->c.sleeps);
	}
	torture_recheck(th, nr);
	torture_read_unlock();
	torture_count(&th->c.ops);
	torture_count_n(&th->c.checked, nr);
}

static void *torture_reader(void *arg)
{
	struct torture_thread *th = arg;
	struct torture *t = th->t;
	unsigned long walk = 0;

	rcu_register_thread();
	while (!torture_should_stop(t)) {
		/* seen[] holds walk numbers, from 1: 0 means never */
		torture_walk(th, ++walk);
		if (torture_past_deadline(t))
			break;
	}
	rcu_unregister_thread();
	return NULL;
}

/* ---- updaters ----------------------------------------------------------- */

/* @old is the object this updater published last for its key. */
static void torture_retire(struct torture_thread *th, struct torture_obj *old,
			   uint64_t r)
{
	struct torture *t = th->t;

	if (t->cfg.busted) {
		/* the bug a torture test exists to find: no grace period */
		kfree(old);
	} else if (!((r >> 16) & 15)) {
		kfree_rcu_mightsleep(old);
		torture_count(&th->c.mightsleep_frees);
	} else {
		kfree_rcu(old, rcu);
	}
}

static void torture_replace(struct torture_thread *th, uint32_t key)
{
	struct torture *t = th->t;
	struct torture_obj *obj, *old = t->cur[key];
	struct cds_lfht_node *prev;
	enum torture_failure why;
	struct torture_visit v;
	uint64_t gen = t->key_gen[key] + 1;

	/* Still ours, still published: it must be exactly as we left it. */
	if (!torture_read_object(old, t->cfg.list_size, &v, &why) ||
	    v.key != key || v.gen != gen - 1) {
		torture_fail(th, TORTURE_FAIL_RETIRED,
			     "object %p of key %u generation %llu: magic %#llx key %u generation %llu",
			     (void *)old, key, (unsigned long long)(gen - 1),
			     (unsigned long long)v.magic, v.key,
			     (unsigned long long)v.gen);
	}
	obj = torture_new_object(th, key, gen);
	if (!obj)
		return;
	torture_hb_release(obj);
	/* announce before publishing: see TORTURE_FAIL_GEN_NEWER */
	smp_store_release(&t->key_gen[key], gen);

	rcu_read_lock();
	prev = cds_lfht_add_replace(t->table, torture_hash(key), torture_match,
				    &key, &obj->node);
	torture_read_unlock();

	t->cur[key] = obj;
	if (prev != &old->node) {
		torture_fail(th, TORTURE_FAIL_REPLACED,
			     "key %u: replaced %p, expected %p", key,
			     (void *)prev, (void *)&old->node);
		return;	/* do not free what we cannot account for */
	}
	torture_retire(th, old, torture_random(&th->rnd));
	torture_count(&th->c.ops);
}

/*
 * Replace random keys of this updater's until told to stop, or until
 * cfg.updater_lifetime replacements are done when that is set.
 */
static void *torture_update_keys(void *arg)
{
	struct torture_thread *th = arg;
	struct torture *t = th->t;
	const unsigned long budget = t->cfg.updater_lifetime;
	const unsigned int stride = t->cfg.updaters;
	const unsigned int owned = (t->cfg.list_size - th->id + stride - 1) /
				   stride;
	unsigned long i;

	rcu_register_thread();
	for (i = 0; !torture_should_stop(t) && (!budget || i < budget); i++) {
		uint32_t key = th->id + stride *
			       (uint32_t)(torture_random(&th->rnd) % owned);

		torture_replace(th, key);
		if (!(i & 255) && torture_past_deadline(t))
			break;
	}
	rcu_unregister_thread();
	return NULL;
}

/*
 * With a lifetime, the updater's work passes from one short-lived thread
 * to the next, each exiting with a partial kfree_rcu() batch that kslab
 * must hand over, neither leaked nor freed early.  One at a time, so the
 * thread state keeps a single writer.
 */
static void *torture_updater(void *arg)
{
	struct torture_thread *th = arg;
	struct torture *t = th->t;

	if (!t->cfg.updater_lifetime)
		return torture_update_keys(th);
	while (!torture_should_stop(t) && !torture_past_deadline(t)) {
		pthread_t worker;

		/* the worker ends by the deadline, so this join does too */
		if (pthread_create(&worker, NULL, torture_update_keys, th) ||
		    pthread_join(worker, NULL)) {
			torture_fail(th, TORTURE_FAIL_STUCK,
				     "updater %u cannot start a thread", th->id);
			break;
		}
		torture_count(&th->c.exits);
	}
	return NULL;
}

/* ---- setup and teardown ------------------------------------------------- */

static bool torture_is_reader(const struct torture_thread *th)
{
	return th < th->t->updaters;
}

/* Each thread's state on cache lines of its own. */
static int torture_alloc_threads(struct torture *t)
{
	const struct torture_config *cfg = &t->cfg;
	size_t size;
	unsigned int i;

	t->nr_threads = cfg->readers + cfg->updaters;
	size = t->nr_threads * sizeof(*t->threads);
	t->threads = aligned_alloc(_Alignof(struct torture_thread), size);
	if (!t->threads)
		return -ENOMEM;
	memset(t->threads, 0, size);
	t->readers = t->threads;
	t->updaters = t->threads + cfg->readers;

	for (i = 0; i < t->nr_threads; i++) {
		struct torture_thread *th = &t->threads[i];

		th->t = t;
		th->id = i < cfg->readers ? i : i - cfg->readers;
		th->rnd = 0x9e3779b97f4a7c15ULL * (i + 1);
		if (!torture_is_reader(th))
			continue;
		th->start_gen = calloc(cfg->list_size, sizeof(*th->start_gen));
		th->seen = calloc(cfg->list_size, sizeof(*th->seen));
		th->visited = calloc(cfg->list_size, sizeof(*th->visited));
		if (!th->start_gen || !th->seen || !th->visited)
			return -ENOMEM;
	}
	return 0;
}

/* The table and its first generation, built by the calling thread. */
static int torture_populate(struct torture *t)
{
	struct torture_thread *builder = &t->updaters[0];
	unsigned long buckets = 1;
	uint32_t key;

	while (buckets < t->cfg.list_size)
		buckets <<= 1;
	t->table = cds_lfht_new(buckets, buckets, buckets, 0, NULL);
	if (!t->table)
		return -ENOMEM;
	for (key = 0; key < t->cfg.list_size; key++) {
		struct torture_obj *obj = torture_new_object(builder, key, 1);

		if (!obj)
			return -ENOMEM;
		torture_hb_release(obj);
		t->key_gen[key] = 1;
		t->cur[key] = obj;
		rcu_read_lock();
		cds_lfht_add_replace(t->table, torture_hash(key), torture_match,
				     &key, &obj->node);
		torture_read_unlock();
	}
	/* the builder's allocations are not part of the run */
	memset(&builder->c, 0, sizeof(builder->c));
	return 0;
}

/**
 * torture_setup() - create the cache, the table and the threads' state
 * @t: zeroed by the caller, or garbage: it is reset here
 * @cfg: the run; readers may be 0, updaters and list_size may not
 *
 * The calling thread is registered with urcu-memb until torture_cleanup().
 *
 * Return: 0, -EINVAL for a bad @cfg, -ENOMEM.  On error call
 * torture_cleanup() all the same.
 */
static int torture_setup(struct torture *t, const struct torture_config *cfg)
{
	int err;

	memset(t, 0, sizeof(*t));
	t->cfg = *cfg;
	pthread_mutex_init(&t->lock, NULL);
	if (!cfg->updaters || !cfg->list_size || cfg->updaters > cfg->list_size)
		return -EINVAL;
	rcu_register_thread();
	t->registered = true;
	kslab_rcu_get_stats(&t->rcu_start);

	t->cache = kmem_cache_create("rcu_torture", sizeof(struct torture_obj),
				     0, SLAB_NO_MERGE, NULL);
	if (!t->cache)
		return -errno;
	t->cur = calloc(cfg->list_size, sizeof(*t->cur));
	t->key_gen = calloc(cfg->list_size, sizeof(*t->key_gen));
	if (!t->cur || !t->key_gen)
		return -ENOMEM;
	err = torture_alloc_threads(t);
	if (err)
		return err;
	return torture_populate(t);
}

/**
 * torture_start() - start the readers and updaters
 * @t: set up
 *
 * Return: 0, or the pthread_create() error; started threads keep running
 * until torture_stop().
 */
static int torture_start(struct torture *t)
{
	unsigned int i;

	t->start_ms = torture_now_ms();
	t->deadline_ms = t->start_ms + t->cfg.run_limit_ms;
	for (i = 0; i < t->nr_threads; i++) {
		struct torture_thread *th = &t->threads[i];
		int err;

		err = pthread_create(&th->tid, NULL,
				     torture_is_reader(th) ? torture_reader :
							     torture_updater,
				     th);
		if (err)
			return err;
		th->started = true;
	}
	return 0;
}

static void torture_add_counters(struct torture_sample *s,
				 const struct torture_counters *c, bool reader)
{
	unsigned int i;

	if (reader) {
		s->walks += READ_ONCE(c->ops);
		s->checked += READ_ONCE(c->checked);
		s->sleeps += READ_ONCE(c->sleeps);
	} else {
		s->updates += READ_ONCE(c->ops);
		s->kmalloc_objs += READ_ONCE(c->kmalloc_objs);
		s->mightsleep_frees += READ_ONCE(c->mightsleep_frees);
		s->reused += READ_ONCE(c->reused);
		s->updater_exits += READ_ONCE(c->exits);
	}
	for (i = 0; i < NR_TORTURE_FAILURES; i++) {
		unsigned long n = READ_ONCE(c->failures[i]);

		s->failures[i] += n;
		s->total_failures += n;
	}
}

/* torture_sample() - the counters so far; any thread, any time. */
static void torture_sample(struct torture *t, struct torture_sample *s)
{
	unsigned long stuck = READ_ONCE(t->stuck);
	struct kslab_rcu_stats now;
	unsigned int i;

	memset(s, 0, sizeof(*s));
	s->ms = t->start_ms ? torture_now_ms() - t->start_ms : 0;
	for (i = 0; i < t->nr_threads; i++)
		torture_add_counters(s, &t->threads[i].c,
				     torture_is_reader(&t->threads[i]));

	s->failures[TORTURE_FAIL_STUCK] += stuck;
	s->total_failures += stuck;

	kslab_rcu_get_stats(&now);
	s->rcu = now;
	s->rcu.grace_periods -= t->rcu_start.grace_periods;
	s->rcu.batches -= t->rcu_start.batches;
	s->rcu.objects -= t->rcu_start.objects;
	s->rcu.throttled -= t->rcu_start.throttled;
}

static void torture_deadline(struct timespec *ts, unsigned int ms)
{
	clock_gettime(CLOCK_REALTIME, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (long)(ms % 1000) * 1000000;
	if (ts->tv_nsec >= 1000000000) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000;
	}
}

/**
 * torture_stop() - stop every thread and wait for it, with a deadline
 * @t: started
 * @timeout_ms: for all joins together
 *
 * Return: 0, or -ETIMEDOUT when a thread did not end in time (it is left
 * running; the state must then not be torn down).
 */
static int torture_stop(struct torture *t, unsigned int timeout_ms)
{
	struct timespec deadline;
	unsigned int i;
	int ret = 0;

	WRITE_ONCE(t->stop, true);
	torture_deadline(&deadline, timeout_ms);
	for (i = 0; i < t->nr_threads; i++) {
		struct torture_thread *th = &t->threads[i];

		if (!th->started)
			continue;
		if (pthread_timedjoin_np(th->tid, NULL, &deadline)) {
			torture_stuck(t, "%s %u did not stop within %u ms",
				      torture_is_reader(th) ? "reader" :
							      "updater",
				      th->id, timeout_ms);
			ret = -ETIMEDOUT;
			continue;
		}
		th->started = false;
	}
	return ret;
}

static void *torture_barrier_thread(void *unused)
{
	(void)unused;
	kvfree_rcu_barrier();
	return NULL;
}

/**
 * torture_barrier() - kvfree_rcu_barrier() with a deadline
 * @t: the run a stuck barrier is counted against
 * @timeout_ms: how long to wait
 *
 * The barrier runs in a helper thread, so a barrier that never returns
 * cannot hang the caller.
 *
 * Return: 0, -ETIMEDOUT, or a pthread_create() error.
 */
static int torture_barrier(struct torture *t, unsigned int timeout_ms)
{
	struct timespec deadline;
	pthread_t tid;
	int err;

	err = pthread_create(&tid, NULL, torture_barrier_thread, NULL);
	if (err)
		return -err;
	torture_deadline(&deadline, timeout_ms);
	err = pthread_timedjoin_np(tid, NULL, &deadline);
	if (err) {
		pthread_detach(tid);
		torture_stuck(t, "kvfree_rcu_barrier() still waiting after %u ms",
			      timeout_ms);
		return -ETIMEDOUT;
	}
	return 0;
}

/* Objects of the dedicated cache that are in the table; after stop. */
static size_t torture_cache_objects(const struct torture *t)
{
	size_t n = 0;
	uint32_t key;

	for (key = 0; key < t->cfg.list_size; key++)
		n += t->cur[key] && t->cur[key]->from == TORTURE_FROM_CACHE;
	return n;
}

/**
 * torture_empty_table() - unpublish and kfree_rcu() every object
 * @t: stopped
 *
 * Return: 0, or -EIO when liburcu refused a removal or the table.
 */
static int torture_empty_table(struct torture *t)
{
	int ret = 0;
	uint32_t key;

	if (!t->table)
		return 0;
	rcu_read_lock();
	for (key = 0; key < t->cfg.list_size; key++) {
		if (t->cur[key] && cds_lfht_del(t->table, &t->cur[key]->node))
			ret = -EIO;
	}
	torture_read_unlock();
	for (key = 0; key < t->cfg.list_size; key++) {
		kfree_rcu(t->cur[key], rcu);
		t->cur[key] = NULL;
	}
	if (cds_lfht_destroy(t->table, NULL))
		ret = -EIO;
	t->table = NULL;
	return ret;
}

/**
 * torture_cleanup() - free the engine's own memory
 * @t: stopped, its table emptied; its cache is the caller's to destroy
 */
static void torture_cleanup(struct torture *t)
{
	if (t->threads) {
		unsigned int i;

		for (i = 0; i < t->nr_threads; i++) {
			free(t->threads[i].start_gen);
			free(t->threads[i].seen);
			free(t->threads[i].visited);
		}
	}
	free(t->threads);
	free(t->cur);
	free(t->key_gen);
	t->threads = NULL;
	t->readers = NULL;
	t->updaters = NULL;
	t->cur = NULL;
	t->key_gen = NULL;
	if (t->registered)
		rcu_unregister_thread();
	t->registered = false;
	pthread_mutex_destroy(&t->lock);
}

#endif /* _KSLAB_TOOLS_RCUTORTURE_H */
