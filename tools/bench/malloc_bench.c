// SPDX-License-Identifier: MIT
/*
 * malloc_bench: kslab's kmalloc family against malloc at general sizes.
 *
 * One process measures one allocator on one test and prints one line,
 *
 *	result test=<test> alloc=<kslab|malloc> impl=<name> <metric>=<value> ...
 *
 * as tools/bench/bench does, so that run.sh alternates the allocators
 * process by process and keeps the best figure of each.  "--alloc=kslab"
 * calls kmalloc(), krealloc(), ksize() and kfree(); "--alloc=malloc" calls
 * malloc(), realloc(), malloc_usable_size() and free() of whatever malloc
 * the process was started with: glibc, or a peer interposed with
 * LD_PRELOAD.  impl= names the allocator that really defines malloc, told
 * by the symbols of the object that holds it.
 *
 * Two families of tests:
 *
 *   large-<size>[-2t]  one block allocated, one byte written per 4 KiB
 *            page, freed; on one thread, or on two at once, each with its
 *            own loop.  ns per pair, per thread.  Timed repetitions, the
 *            best kept, as in bench.
 *   larson, prodcons, mixed-8t, realloc, huge
 *            whole workloads in the manner of the well-known allocator
 *            benchmarks, each run once per process: throughput or time per
 *            unit of work, and the peak resident memory of the process.
 *
 * Time is bounded, never the iteration count alone: today kslab maps and
 * unmaps every block above its largest kmalloc cache, some hundred times
 * slower than the peers, and a fixed count fit for them would take minutes
 * on it.  A large-* repetition runs until --iters pairs or --budget-ms
 * milliseconds, whichever comes first, and prints the pairs it did; a
 * workload runs until its --iters units or its --budget-ms cap and prints
 * capped=1 when the cap stopped it (its figure is then the rate of the
 * part done).  Loops look at the clock only every few units of work, so
 * that reading it costs well under a nanosecond per pair.
 *
 * Method: every loop is written once and inlined per allocator with the
 * allocator as a constant, so kslab and malloc run the same instructions
 * around the calls; each returned pointer goes through an empty asm
 * statement that takes it as an input and clobbers memory, so the compiler
 * can drop neither a call nor a write.  Random sizes and slots come from
 * one xorshift generator per thread, seeded from --seed and the thread's
 * index, so every allocator sees the same sequence of requests.  Harness
 * memory (slot tables, mailboxes) comes from mmap(), never from the
 * allocator under test.  Peak resident memory is getrusage()'s ru_maxrss:
 * the whole process, harness and libraries included.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>

#include <kslab/slab.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define KIB		1024UL
#define MIB		(1024UL * KIB)
#define NSEC_PER_SEC	1000000000L
#define NSEC_PER_MSEC	1000000L
#define NSEC_PER_USEC	1000L

#define PAGE_STRIDE	4096		/* one write per this many bytes */
#define MAX_THREADS	8

/* Units of work between two looks at the clock. */
#define LARGE_CLOCK_EVERY	32
#define WORK_CLOCK_EVERY	256

/* large-*: the untimed warm-up runs for this part of --budget-ms. */
#define WARMUP_DIVISOR		4

/*
 * larson: slots per thread; every HANDOFF_EVERY replacements a thread
 * passes HANDOFF objects to the next thread and takes what it was given.
 */
#define LARSON_SLOTS		1000
#define LARSON_HANDOFF_EVERY	1024
#define LARSON_HANDOFF		64

/* prodcons: objects per mailbox transfer. */
#define PRODCONS_BATCH		64

/* mixed-8t: live objects per thread. */
#define MIXED_SLOTS		256

/* realloc: buffers grown side by side, each from 16 B to REALLOC_MAX. */
#define REALLOC_BUFFERS		8
#define REALLOC_START		16
#define REALLOC_MAX		(4 * MIB)

/* huge: blocks live at once, and their sizes. */
#define HUGE_LIVE		4
#define HUGE_MIN		(5 * MIB)
#define HUGE_MAX		(25 * MIB)

/* A mailbox holds this many pointers. */
#define MAILBOX_SLOTS		1024

enum test_kind {
	KIND_LARGE,
	KIND_LARSON,
	KIND_PRODCONS,
	KIND_MIXED,
	KIND_REALLOC,
	KIND_HUGE,
};

struct test_desc {
	const char *name;
	enum test_kind kind;
	size_t size;		/* large: bytes per block */
	int threads;
	long iters;		/* default --iters: the unit is the test's */
	int budget_ms;		/* default --budget-ms */
};

/*
 * --iters counts: large, pairs per thread and repetition; larson and
 * mixed-8t, replacements per thread; prodcons, objects per producer;
 * realloc, buffers grown; huge, blocks.
 */
static const struct test_desc tests[] = {
	{ "large-16k",		KIND_LARGE, 16 * KIB,  1, 2000000, 100 },
	{ "large-64k",		KIND_LARGE, 64 * KIB,  1, 2000000, 100 },
	{ "large-256k",		KIND_LARGE, 256 * KIB, 1, 2000000, 100 },
	{ "large-1m",		KIND_LARGE, MIB,       1, 2000000, 100 },
	{ "large-16k-2t",	KIND_LARGE, 16 * KIB,  2, 2000000, 100 },
	{ "large-64k-2t",	KIND_LARGE, 64 * KIB,  2, 2000000, 100 },
	{ "large-256k-2t",	KIND_LARGE, 256 * KIB, 2, 2000000, 100 },
	{ "large-1m-2t",	KIND_LARGE, MIB,       2, 2000000, 100 },
	{ "larson",		KIND_LARSON,   0, 4, 1500000, 2000 },
	{ "prodcons",		KIND_PRODCONS, 0, 4, 2000000, 2000 },
	{ "mixed-8t",		KIND_MIXED,    0, 8, 500000,  2000 },
	{ "realloc",		KIND_REALLOC,  0, 1, 496,     2000 },
	{ "huge",		KIND_HUGE,     0, 1, 200,     2000 },
};

/* Request sizes: a band is drawn by weight, then a size in it uniformly. */
struct size_band {
	unsigned int weight;
	size_t min, max;
};

/* larson: mostly 16 B..4 KiB, one in sixteen up to 64 KiB. */
static const struct size_band larson_sizes[] = {
	{ 15, 16, 4 * KIB },
	{ 1, 4 * KIB + 1, 64 * KIB },
};

/* prodcons and mixed-8t: 8 B..256 KiB, most requests small. */
static const struct size_band skewed_sizes[] = {
	{ 700, 8, 128 },
	{ 200, 129, KIB },
	{ 70, KIB + 1, 8 * KIB },
	{ 25, 8 * KIB + 1, 64 * KIB },
	{ 5, 64 * KIB + 1, 256 * KIB },
};

struct bench {
	const struct test_desc *test;
	bool kslab;
	const char *impl;
	long iters;
	int reps;
	long budget_ns;
	uint64_t seed;
};

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("malloc_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/* Keep @p, and every write before this point, from being optimised away. */
static __always_inline void escape(const void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

/* Harness memory: from the kernel, faulted in, never from the allocators. */
static void *map_harness(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", bytes, strerror(errno));
	memset(p, 0, bytes);
	return p;
}

static double peak_rss_mib(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		die("getrusage: %s", strerror(errno));
	return ru.ru_maxrss / 1024.0;	/* ru_maxrss is in KiB */
}

/* ---- the allocator under test ---- */

static __always_inline void *gp_alloc(bool kslab, size_t size)
{
	void *p = kslab ? kmalloc(size, GFP_KERNEL) : malloc(size);

	if (unlikely(!p))
		die("allocating %zu bytes failed", size);
	escape(p);
	return p;
}

static __always_inline void *gp_realloc(bool kslab, void *p, size_t size)
{
	void *n = kslab ? krealloc(p, size, GFP_KERNEL) : realloc(p, size);

	if (unlikely(!n))
		die("growing a buffer to %zu bytes failed", size);
	escape(n);
	return n;
}

static __always_inline void gp_free(bool kslab, void *p)
{
	if (kslab)
		kfree(p);
	else
		free(p);
}

static __always_inline size_t gp_usable_size(bool kslab, void *p)
{
	return kslab ? ksize(p) : malloc_usable_size(p);
}

/* One byte written per page of [from, to), counted from the block's start. */
static __always_inline void touch_pages(char *p, size_t from, size_t to,
					char value)
{
	for (size_t off = from; off < to; off += PAGE_STRIDE)
		p[off] = value;
	escape(p);
}

/* A new object with its first and last byte written. */
static __always_inline void *new_object(bool kslab, size_t size, char tag)
{
	char *p = gp_alloc(kslab, size);

	p[0] = tag;
	p[size - 1] = tag;
	escape(p);
	return p;
}

/* ---- deterministic randomness ---- */

/* xorshift64*: fast, and plenty for picking sizes and slots. */
static inline uint64_t random_next(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* A non-zero state for thread @index, well apart from its neighbours'. */
static uint64_t random_seed(uint64_t seed, int index)
{
	uint64_t z = seed + (uint64_t)(index + 1) * 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	return z ? z : 1;
}

static inline size_t random_below(uint64_t *state, size_t n)
{
	return random_next(state) % n;
}

static inline size_t random_size(uint64_t *state,
				 const struct size_band *band, size_t bands)
{
	unsigned int total = 0, pick;
	size_t i;

	for (i = 0; i < bands; i++)
		total += band[i].weight;
	pick = random_below(state, total);
	for (i = 0; pick >= band[i].weight; i++)
		pick -= band[i].weight;
	return band[i].min + random_below(state, band[i].max - band[i].min + 1);
}

/* ---- threads ---- */

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(t, NULL, fn, arg);

	if (err)
		die("pthread_create: %s", strerror(err));
}

/*
 * A bounded queue of object pointers between threads, under one mutex.
 * Transfers move many pointers at a time, so the lock is not what is
 * measured.  Fields after @lock are guarded by it.
 */
struct mailbox {
	pthread_mutex_t lock;
	pthread_cond_t not_empty;
	pthread_cond_t not_full;
	size_t head;		/* oldest pointer */
	size_t count;
	bool closed;		/* the sender is done */
	void *slot[MAILBOX_SLOTS];
};

static void mailbox_init(struct mailbox *mb)
{
	pthread_mutex_init(&mb->lock, NULL);
	pthread_cond_init(&mb->not_empty, NULL);
	pthread_cond_init(&mb->not_full, NULL);
	mb->head = 0;
	mb->count = 0;
	mb->closed = false;
}

static void mailbox_destroy(struct mailbox *mb)
{
	pthread_cond_destroy(&mb->not_full);
	pthread_cond_destroy(&mb->not_empty);
	pthread_mutex_destroy(&mb->lock);
}

/*
 * Queue all @n pointers, waiting for room when @wait.  Returns false, with
 * nothing queued, when there is no room and no waiting.
 */
static bool mailbox_put(struct mailbox *mb, void *const *ptrs, size_t n,
			bool wait)
{
	pthread_mutex_lock(&mb->lock);
	while (MAILBOX_SLOTS - mb->count < n) {
		if (!wait) {
			pthread_mutex_unlock(&mb->lock);
			return false;
		}
		pthread_cond_wait(&mb->not_full, &mb->lock);
	}
	for (size_t i = 0; i < n; i++)
		mb->slot[(mb->head + mb->count + i) % MAILBOX_SLOTS] = ptrs[i];
	mb->count += n;
	pthread_cond_signal(&mb->not_empty);
	pthread_mutex_unlock(&mb->lock);
	return true;
}

/*
 * Take up to @max pointers, waiting for some when @wait until the sender
 * closes the mailbox.  Returns how many were taken; 0 when waiting means
 * closed and empty.
 */
static size_t mailbox_get(struct mailbox *mb, void **ptrs, size_t max,
			  bool wait)
{
	size_t n;

	pthread_mutex_lock(&mb->lock);
	while (wait && !mb->count && !mb->closed)
		pthread_cond_wait(&mb->not_empty, &mb->lock);
	n = mb->count < max ? mb->count : max;
	for (size_t i = 0; i < n; i++)
		ptrs[i] = mb->slot[(mb->head + i) % MAILBOX_SLOTS];
	mb->head = (mb->head + n) % MAILBOX_SLOTS;
	mb->count -= n;
	if (n)
		pthread_cond_signal(&mb->not_full);
	pthread_mutex_unlock(&mb->lock);
	return n;
}

static void mailbox_close(struct mailbox *mb)
{
	pthread_mutex_lock(&mb->lock);
	mb->closed = true;
	pthread_cond_broadcast(&mb->not_empty);
	pthread_mutex_unlock(&mb->lock);
}

/* Free whatever is still queued (after every thread has stopped). */
static void mailbox_drain(struct mailbox *mb, bool kslab)
{
	void *ptrs[LARSON_HANDOFF];
	size_t n;

	while ((n = mailbox_get(mb, ptrs, ARRAY_SIZE(ptrs), false)))
		for (size_t i = 0; i < n; i++)
			gp_free(kslab, ptrs[i]);
}

/*
 * What every workload thread shares: the parameters, and the barrier
 * where the threads and the timing main thread meet before the timed part.
 */
struct workload {
	const struct bench *b;
	pthread_barrier_t start;
	struct mailbox *mailbox;	/* larson, prodcons: one per thread */
};

/* What one workload thread reports. */
struct worker {
	struct workload *w;
	int index;
	pthread_t thread;
	uint64_t random;
	void **slots;		/* larson, mixed-8t: harness memory */
	long ops;
	bool capped;		/* stopped by the time cap */
};

/*
 * Run @fn on @nr workers; returns the ns from the start barrier to the
 * last worker's end.  The workers pass the barrier once they are set up.
 */
static long run_workers(struct workload *w, struct worker *wk, int nr,
			void *(*fn)(void *))
{
	long t0;

	pthread_barrier_init(&w->start, NULL, nr + 1);
	for (int i = 0; i < nr; i++) {
		wk[i].w = w;
		wk[i].index = i;
		wk[i].random = random_seed(w->b->seed, i);
		start_thread(&wk[i].thread, fn, &wk[i]);
	}
	pthread_barrier_wait(&w->start);
	t0 = now_ns();
	for (int i = 0; i < nr; i++)
		pthread_join(wk[i].thread, NULL);
	t0 = now_ns() - t0;
	pthread_barrier_destroy(&w->start);
	return t0;
}

static long total_ops(const struct worker *wk, int nr, bool *capped)
{
	long ops = 0;

	*capped = false;
	for (int i = 0; i < nr; i++) {
		ops += wk[i].ops;
		*capped |= wk[i].capped;
	}
	return ops;
}

static const char *alloc_name(const struct bench *b)
{
	return b->kslab ? "kslab" : "malloc";
}

/* The result line of a workload: its figure, then what it is made of. */
static void report_workload(const struct bench *b, const char *metric,
			    double value, long units, long ns, bool capped)
{
	printf("result test=%s alloc=%s impl=%s %s=%.3f peak_rss_mib=%.1f units=%ld threads=%d elapsed_ms=%.1f capped=%d budget_ms=%ld seed=%llu\n",
	       b->test->name, alloc_name(b), b->impl, metric, value,
	       peak_rss_mib(), units, b->test->threads,
	       (double)ns / NSEC_PER_MSEC, capped,
	       b->budget_ns / NSEC_PER_MSEC, (unsigned long long)b->seed);
}

/* ---- large-*: one block allocated, touched and freed, in a loop ---- */

struct large_thread {
	const struct bench *b;
	pthread_barrier_t *rep_start;
	pthread_t thread;
	double ns;		/* per pair, in the last repetition */
	long pairs;
};

/* Pairs until @max or @deadline; returns how many. */
static __always_inline long large_loop(bool kslab, size_t size, long max,
				       long deadline)
{
	long n = 0;

	while (n < max) {
		char *p = gp_alloc(kslab, size);

		touch_pages(p, 0, size, (char)n);
		gp_free(kslab, p);
		if (++n % LARGE_CLOCK_EVERY == 0 && now_ns() >= deadline)
			break;
	}
	return n;
}

/* One repetition of this thread, begun with the others at the barrier. */
static void large_rep(struct large_thread *t, long budget)
{
	const struct bench *b = t->b;
	long t0, pairs;

	pthread_barrier_wait(t->rep_start);
	t0 = now_ns();
	if (b->kslab)
		pairs = large_loop(true, b->test->size, b->iters, t0 + budget);
	else
		pairs = large_loop(false, b->test->size, b->iters, t0 + budget);
	t->ns = (double)(now_ns() - t0) / pairs;
	t->pairs = pairs;
}

static void *large_thread_fn(void *arg)
{
	struct large_thread *t = arg;

	large_rep(t, t->b->budget_ns / WARMUP_DIVISOR);
	for (int r = 0; r < t->b->reps; r++) {
		large_rep(t, t->b->budget_ns);
		/* the main thread reads ns and pairs between the repetitions */
		pthread_barrier_wait(t->rep_start);
	}
	return NULL;
}

/*
 * Every thread runs the warm-up and then --reps repetitions, all threads
 * starting each together; a repetition's figure is the mean of the
 * threads' ns per pair, and the best repetition is reported.
 */
static void bench_large(const struct bench *b)
{
	struct large_thread t[MAX_THREADS] = { 0 };
	int nr = b->test->threads;
	pthread_barrier_t rep_start;
	double best = 0, slowest = 0;
	long pairs = 0;

	pthread_barrier_init(&rep_start, NULL, nr + 1);
	for (int i = 0; i < nr; i++) {
		t[i].b = b;
		t[i].rep_start = &rep_start;
		start_thread(&t[i].thread, large_thread_fn, &t[i]);
	}
	pthread_barrier_wait(&rep_start);		/* the warm-up */
	for (int r = 0; r < b->reps; r++) {
		double mean = 0, worst = 0;
		long fewest = 0;

		pthread_barrier_wait(&rep_start);	/* this repetition */
		pthread_barrier_wait(&rep_start);	/* ... is over */
		for (int i = 0; i < nr; i++) {
			mean += t[i].ns / nr;
			if (t[i].ns > worst)
				worst = t[i].ns;
			if (!i || t[i].pairs < fewest)
				fewest = t[i].pairs;
		}
		if (!r || mean < best) {
			best = mean;
			slowest = worst;
			pairs = fewest;
		}
	}
	for (int i = 0; i < nr; i++)
		pthread_join(t[i].thread, NULL);
	pthread_barrier_destroy(&rep_start);

	printf("result test=%s alloc=%s impl=%s ns_per_op=%.2f iters=%ld reps=%d threads=%d size=%zu budget_ms=%ld slowest_thread_ns=%.2f\n",
	       b->test->name, alloc_name(b), b->impl, best, pairs, b->reps,
	       nr, b->test->size, b->budget_ns / NSEC_PER_MSEC, slowest);
}

/* ---- larson: a server's threads replacing objects, some handed over ---- */

/*
 * Pass LARSON_HANDOFF objects, from a random run of slots, to the next
 * thread (freed here if its mailbox is full), and refill those slots with
 * what this thread was handed, then with new objects.  The objects handed
 * over are freed later by a thread that did not allocate them.
 */
static __always_inline void larson_handoff(bool kslab, struct worker *t)
{
	const struct workload *w = t->w;
	struct mailbox *out = &w->mailbox[(t->index + 1) % w->b->test->threads];
	size_t first = random_below(&t->random, LARSON_SLOTS);
	void *batch[LARSON_HANDOFF];
	size_t got;

	for (size_t i = 0; i < LARSON_HANDOFF; i++)
		batch[i] = t->slots[(first + i) % LARSON_SLOTS];
	if (!mailbox_put(out, batch, LARSON_HANDOFF, false))
		for (size_t i = 0; i < LARSON_HANDOFF; i++)
			gp_free(kslab, batch[i]);

	got = mailbox_get(&w->mailbox[t->index], batch, LARSON_HANDOFF, false);
	for (size_t i = 0; i < LARSON_HANDOFF; i++) {
		size_t size = random_size(&t->random, larson_sizes,
					  ARRAY_SIZE(larson_sizes));

		t->slots[(first + i) % LARSON_SLOTS] = i < got ? batch[i] :
			new_object(kslab, size, (char)i);
	}
}

static __always_inline void larson_loop(bool kslab, struct worker *t)
{
	const struct bench *b = t->w->b;
	long deadline;

	for (size_t i = 0; i < LARSON_SLOTS; i++)
		t->slots[i] = new_object(kslab, random_size(&t->random,
				larson_sizes, ARRAY_SIZE(larson_sizes)), 1);
	pthread_barrier_wait(&t->w->start);
	deadline = now_ns() + b->budget_ns;

	while (t->ops < b->iters) {
		size_t slot = random_below(&t->random, LARSON_SLOTS);
		size_t size = random_size(&t->random, larson_sizes,
					  ARRAY_SIZE(larson_sizes));

		gp_free(kslab, t->slots[slot]);
		t->slots[slot] = new_object(kslab, size, (char)t->ops);
		if (++t->ops % LARSON_HANDOFF_EVERY)
			continue;
		larson_handoff(kslab, t);
		if (now_ns() >= deadline) {
			t->capped = true;
			break;
		}
	}
}

static void *larson_thread(void *arg)
{
	struct worker *t = arg;

	if (t->w->b->kslab)
		larson_loop(true, t);
	else
		larson_loop(false, t);
	return NULL;
}

/*
 * Each thread owns LARSON_SLOTS objects and replaces a random one at a
 * time: free, then allocate a new random size.  Throughput counts
 * replacements of all threads per second of the whole run.
 */
static void bench_larson(const struct bench *b)
{
	int nr = b->test->threads;
	struct workload w = { .b = b };
	struct worker t[MAX_THREADS] = { 0 };
	size_t table = LARSON_SLOTS * sizeof(void *);
	long ns, ops;
	bool capped;

	w.mailbox = map_harness(nr * sizeof(*w.mailbox));
	for (int i = 0; i < nr; i++) {
		mailbox_init(&w.mailbox[i]);
		t[i].slots = map_harness(table);
	}
	ns = run_workers(&w, t, nr, larson_thread);
	ops = total_ops(t, nr, &capped);
	report_workload(b, "ops_per_sec", (double)ops * NSEC_PER_SEC / ns,
			ops, ns, capped);

	for (int i = 0; i < nr; i++) {
		for (size_t s = 0; s < LARSON_SLOTS; s++)
			gp_free(b->kslab, t[i].slots[s]);
		mailbox_drain(&w.mailbox[i], b->kslab);
		mailbox_destroy(&w.mailbox[i]);
		munmap(t[i].slots, table);
	}
	munmap(w.mailbox, nr * sizeof(*w.mailbox));
}

/* ---- prodcons: allocated on one thread, freed on another ---- */

static __always_inline void produce(bool kslab, struct worker *t)
{
	struct mailbox *out = &t->w->mailbox[t->index / 2];
	const struct bench *b = t->w->b;
	void *batch[PRODCONS_BATCH];
	long deadline;
	size_t n = 0;

	pthread_barrier_wait(&t->w->start);
	deadline = now_ns() + b->budget_ns;
	while (t->ops < b->iters) {
		size_t size = random_size(&t->random, skewed_sizes,
					  ARRAY_SIZE(skewed_sizes));

		batch[n++] = new_object(kslab, size, (char)t->ops);
		t->ops++;
		if (n < PRODCONS_BATCH)
			continue;
		mailbox_put(out, batch, n, true);
		n = 0;
		if (now_ns() >= deadline) {
			t->capped = true;
			break;
		}
	}
	mailbox_put(out, batch, n, true);
	mailbox_close(out);
}

static __always_inline void consume(bool kslab, struct worker *t)
{
	struct mailbox *in = &t->w->mailbox[t->index / 2];
	void *batch[PRODCONS_BATCH];
	size_t n;

	pthread_barrier_wait(&t->w->start);
	while ((n = mailbox_get(in, batch, PRODCONS_BATCH, true)))
		for (size_t i = 0; i < n; i++)
			gp_free(kslab, batch[i]);
}

/* Even workers produce, each odd one consumes what its neighbour made. */
static void *prodcons_thread(void *arg)
{
	struct worker *t = arg;
	bool kslab = t->w->b->kslab;

	if (t->index % 2 && kslab)
		consume(true, t);
	else if (t->index % 2)
		consume(false, t);
	else if (kslab)
		produce(true, t);
	else
		produce(false, t);
	return NULL;
}

static void bench_prodcons(const struct bench *b)
{
	int nr = b->test->threads;
	struct workload w = { .b = b };
	struct worker t[MAX_THREADS] = { 0 };
	size_t boxes = nr / 2 * sizeof(*w.mailbox);
	long ns, objs;
	bool capped;

	w.mailbox = map_harness(boxes);
	for (int i = 0; i < nr / 2; i++)
		mailbox_init(&w.mailbox[i]);
	ns = run_workers(&w, t, nr, prodcons_thread);
	objs = total_ops(t, nr, &capped);
	report_workload(b, "objs_per_sec", (double)objs * NSEC_PER_SEC / ns,
			objs, ns, capped);
	for (int i = 0; i < nr / 2; i++)
		mailbox_destroy(&w.mailbox[i]);
	munmap(w.mailbox, boxes);
}

/* ---- mixed-8t: many threads, sizes from 8 B to 256 KiB ---- */

static __always_inline void mixed_loop(bool kslab, struct worker *t)
{
	const struct bench *b = t->w->b;
	long deadline;

	pthread_barrier_wait(&t->w->start);
	deadline = now_ns() + b->budget_ns;
	while (t->ops < b->iters) {
		size_t slot = random_below(&t->random, MIXED_SLOTS);
		size_t size = random_size(&t->random, skewed_sizes,
					  ARRAY_SIZE(skewed_sizes));
		char *p;

		gp_free(kslab, t->slots[slot]);
		p = gp_alloc(kslab, size);
		touch_pages(p, 0, size, (char)t->ops);
		t->slots[slot] = p;
		if (++t->ops % WORK_CLOCK_EVERY == 0 && now_ns() >= deadline) {
			t->capped = true;
			break;
		}
	}
	for (size_t i = 0; i < MIXED_SLOTS; i++)
		gp_free(kslab, t->slots[i]);
}

static void *mixed_thread(void *arg)
{
	struct worker *t = arg;

	if (t->w->b->kslab)
		mixed_loop(true, t);
	else
		mixed_loop(false, t);
	return NULL;
}

/*
 * Every thread keeps MIXED_SLOTS objects (empty at first) and replaces a
 * random one at a time, writing one byte per page of the new one; the
 * frees of the last ones are part of the run.
 */
static void bench_mixed(const struct bench *b)
{
	int nr = b->test->threads;
	struct workload w = { .b = b };
	struct worker t[MAX_THREADS] = { 0 };
	size_t table = MIXED_SLOTS * sizeof(void *);
	long ns, ops;
	bool capped;

	for (int i = 0; i < nr; i++)
		t[i].slots = map_harness(table);
	ns = run_workers(&w, t, nr, mixed_thread);
	ops = total_ops(t, nr, &capped);
	report_workload(b, "ops_per_sec", (double)ops * NSEC_PER_SEC / ns,
			ops, ns, capped);
	for (int i = 0; i < nr; i++)
		munmap(t[i].slots, table);
}

/* ---- realloc: buffers grown by half again, step by step ---- */

/*
 * Grow one buffer from @old to @size bytes, checking that the contents
 * came along (its first and last byte so far) and that the usable size
 * covers the request, then write the new tail.
 */
static __always_inline char *grow(bool kslab, char *p, size_t old,
				  size_t size, char tag)
{
	p = gp_realloc(kslab, p, size);
	if (unlikely(p[0] != tag || p[old - 1] != tag))
		die("contents lost growing a buffer from %zu to %zu bytes",
		    old, size);
	if (unlikely(gp_usable_size(kslab, p) < size))
		die("usable size %zu under the %zu bytes asked for",
		    gp_usable_size(kslab, p), size);
	touch_pages(p, old, size, tag);
	p[size - 1] = tag;
	return p;
}

/* Buffers grown, by the REALLOC_BUFFERS, until @max or @deadline. */
static __always_inline long realloc_loop(bool kslab, long max, long deadline,
					 bool *capped)
{
	char *buf[REALLOC_BUFFERS];
	long done = 0;

	while (done < max) {
		size_t size = REALLOC_START;

		for (int i = 0; i < REALLOC_BUFFERS; i++)
			buf[i] = new_object(kslab, size, (char)i);
		/* side by side: a neighbour is often in the way */
		while (size < REALLOC_MAX) {
			size_t next = size + size / 2;

			if (next > REALLOC_MAX)
				next = REALLOC_MAX;
			for (int i = 0; i < REALLOC_BUFFERS; i++)
				buf[i] = grow(kslab, buf[i], size, next, (char)i);
			size = next;
		}
		for (int i = 0; i < REALLOC_BUFFERS; i++)
			gp_free(kslab, buf[i]);
		done += REALLOC_BUFFERS;
		if (now_ns() >= deadline) {
			*capped = done < max;
			break;
		}
	}
	return done;
}

static void bench_realloc(const struct bench *b)
{
	long t0 = now_ns(), ns, bufs;
	bool capped = false;

	if (b->kslab)
		bufs = realloc_loop(true, b->iters, t0 + b->budget_ns, &capped);
	else
		bufs = realloc_loop(false, b->iters, t0 + b->budget_ns, &capped);
	ns = now_ns() - t0;
	report_workload(b, "us_per_buf", (double)ns / NSEC_PER_USEC / bufs,
			bufs, ns, capped);
}

/* ---- huge: blocks of 5 to 25 MiB ---- */

static __always_inline long huge_loop(bool kslab, uint64_t *random, long max,
				      long deadline, bool *capped)
{
	char *live[HUGE_LIVE] = { NULL };
	long done = 0;

	while (done < max) {
		size_t slot = random_below(random, HUGE_LIVE);
		size_t size = HUGE_MIN + random_below(random,
						      HUGE_MAX - HUGE_MIN + 1);

		gp_free(kslab, live[slot]);
		live[slot] = gp_alloc(kslab, size);
		touch_pages(live[slot], 0, size, (char)done);
		if (++done < max && now_ns() >= deadline) {
			*capped = true;
			break;
		}
	}
	for (int i = 0; i < HUGE_LIVE; i++)
		gp_free(kslab, live[i]);
	return done;
}

/*
 * HUGE_LIVE blocks live at once; each step frees a random one and
 * allocates a new one of a random size, writing one byte per page.
 */
static void bench_huge(const struct bench *b)
{
	uint64_t random = random_seed(b->seed, 0);
	long t0 = now_ns(), ns, blocks;
	bool capped = false;

	if (b->kslab)
		blocks = huge_loop(true, &random, b->iters,
				   t0 + b->budget_ns, &capped);
	else
		blocks = huge_loop(false, &random, b->iters,
				   t0 + b->budget_ns, &capped);
	ns = now_ns() - t0;
	report_workload(b, "us_per_block", (double)ns / NSEC_PER_USEC / blocks,
			blocks, ns, capped);
}

/* ---- driver ---- */

/* Is @symbol defined in the object loaded at @base? */
static bool defined_in(const void *base, const char *symbol)
{
	void *addr = dlsym(RTLD_DEFAULT, symbol);
	Dl_info where;

	return addr && dladdr(addr, &where) && where.dli_fbase == base;
}

/*
 * The allocator behind malloc() in this process, named from a symbol only
 * it defines in the object that defines malloc, so that a preload that did
 * not take is caught.
 */
static const char *malloc_impl(void)
{
	static const char *const names[][2] = {
		{ "jemalloc", "mallctl" },
		{ "mimalloc", "mi_collect" },
		{ "tcmalloc", "MallocExtension_ReleaseFreeMemory" },
		{ "glibc", "gnu_get_libc_version" },
	};
	void *addr = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info where;

	if (!addr || !dladdr(addr, &where))
		return "unknown";
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (defined_in(where.dli_fbase, names[i][1]))
			return names[i][0];
	return "unknown";
}

static void print_tests(FILE *f, const char *sep)
{
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
		fprintf(f, "%s%s", i ? sep : "", tests[i].name);
	fputc('\n', f);
}

static void print_help(FILE *f)
{
	fputs("usage: malloc_bench --alloc=kslab|malloc --test=NAME [--iters N] [--reps N]\n"
	      "                    [--budget-ms MS] [--seed S]\n"
	      "       malloc_bench --list\n"
	      "  --iters      large-*: pairs per thread and repetition at most;\n"
	      "               larson, mixed-8t: replacements per thread; prodcons:\n"
	      "               objects per producer; realloc: buffers; huge: blocks\n"
	      "  --reps       large-*: timed repetitions, the best one is reported\n"
	      "  --budget-ms  large-*: time per repetition; the others: the time cap\n"
	      "  --seed       seed of the random sizes and slots (default 1)\n"
	      "Run the malloc side under LD_PRELOAD=<peer .so> to measure a peer.\n"
	      "tests: ", f);
	print_tests(f, " ");
}

static long parse_count(const char *arg, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 0);
	if (errno || end == arg || *end || v <= 0)
		die("bad %s '%s'", what, arg);
	return v;
}

static const struct test_desc *find_test(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(tests); i++)
		if (!strcmp(name, tests[i].name))
			return &tests[i];
	fprintf(stderr, "malloc_bench: unknown --test '%s'; the tests are: ",
		name);
	print_tests(stderr, " ");
	exit(2);
}

static void parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "alloc", required_argument, NULL, 'a' },
		{ "test", required_argument, NULL, 't' },
		{ "iters", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "budget-ms", required_argument, NULL, 'b' },
		{ "seed", required_argument, NULL, 's' },
		{ "list", no_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *alloc = NULL, *test = NULL;
	long budget_ms = 0;
	int c;

	b->seed = 1;
	while ((c = getopt_long(argc, argv, "a:t:n:r:b:s:lh", opts, NULL)) != -1) {
		switch (c) {
		case 'a':
			alloc = optarg;
			break;
		case 't':
			test = optarg;
			break;
		case 'n':
			b->iters = parse_count(optarg, "--iters");
			break;
		case 'r':
			b->reps = (int)parse_count(optarg, "--reps");
			break;
		case 'b':
			budget_ms = parse_count(optarg, "--budget-ms");
			break;
		case 's':
			b->seed = parse_count(optarg, "--seed");
			break;
		case 'l':
			print_tests(stdout, "\n");
			exit(0);
		case 'h':
			print_help(stdout);
			exit(0);
		default:
			print_help(stderr);
			exit(2);
		}
	}
	if (!alloc || !test || optind != argc) {
		print_help(stderr);
		exit(2);
	}

	if (!strcmp(alloc, "kslab"))
		b->kslab = true;
	else if (strcmp(alloc, "malloc"))
		die("unknown --alloc '%s' (kslab or malloc)", alloc);
	b->test = find_test(test);

	if (!b->iters)
		b->iters = b->test->iters;
	if (!b->reps)
		b->reps = 3;
	b->budget_ns = (budget_ms ? budget_ms : b->test->budget_ms) *
		       NSEC_PER_MSEC;
	b->impl = b->kslab ? "kslab" : malloc_impl();
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };

	parse_args(&b, argc, argv);
	switch (b.test->kind) {
	case KIND_LARGE:
		bench_large(&b);
		break;
	case KIND_LARSON:
		bench_larson(&b);
		break;
	case KIND_PRODCONS:
		bench_prodcons(&b);
		break;
	case KIND_MIXED:
		bench_mixed(&b);
		break;
	case KIND_REALLOC:
		bench_realloc(&b);
		break;
	case KIND_HUGE:
		bench_huge(&b);
		break;
	}
	fflush(stdout);
	return 0;
}
