// SPDX-License-Identifier: MIT
/*
 * bench: kslab against malloc, 64-byte objects.
 *
 * One process measures one allocator on one test and prints one line,
 *
 *	result test=<test> alloc=<kslab|malloc> impl=<name> <metric>=<value>
 *
 * so that run.sh can alternate allocators process by process and keep the
 * best figure of each.  "--alloc=kslab" uses a 64-byte kmem_cache (or
 * kmalloc(64) for the kmalloc test); "--alloc=malloc" uses malloc(64) and
 * free() of whatever malloc the process was started with: glibc, or a peer
 * allocator interposed with LD_PRELOAD.  impl= names the allocator that
 * really defines malloc, told by the symbols of the object that holds it,
 * so a preload that did not take is visible.
 *
 * Tests:
 *
 *   hot      alloc+free of one object in a loop; ns per pair.
 *   kmalloc  the same through kmalloc()/kfree() (peers: malloc/free).
 *   batch    N allocations (each object written once), then the N frees
 *            in allocation order; ns per object (its alloc plus its free).
 *   xthread  a producer thread allocates and writes objects and hands them
 *            through a single-producer single-consumer ring to a consumer
 *            thread that frees them; objects per second.  The two threads
 *            are pinned to two different CPUs: left to the scheduler they
 *            sometimes share one, and no object then crosses cores.
 *   memory   N live objects: resident memory growth over the ideal N * 64
 *            bytes, in percent; then everything is freed, the allocator is
 *            asked to give memory back (kmem_cache_shrink(), malloc_trim(0),
 *            or the peer's own purge call found with dlsym()), and the
 *            resident memory left above the starting point is reported.
 *
 * Method: timings use CLOCK_MONOTONIC.  Every timed test first runs
 * untimed (warm caches, faulted-in memory, populated per-thread caches),
 * then runs --reps times and reports the best repetition, which filters out
 * interference from the rest of the machine.  Every allocation loop is
 * written once and inlined per allocator with the allocator as a constant,
 * so kslab and malloc run the same instructions around the call; each
 * returned pointer goes through an empty asm statement that takes it as an
 * input and clobbers memory, so the compiler can neither drop an
 * alloc/free pair nor the write to an object.  Harness memory (pointer
 * arrays, the ring) comes from mmap(), never from the allocator under test,
 * and is faulted in before any measurement.
 *
 * Resident memory is the second field of /proc/self/statm.  The peers'
 * purge calls are looked up at run time so that the binary needs no peer
 * library to link or to run.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <dlfcn.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <kslab/slab.h>

#define ARRAY_SIZE(a)	(sizeof(a) / sizeof((a)[0]))
#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define OBJ_SIZE	64
#define CACHELINE	64
#define NSEC_PER_SEC	1000000000L
#define MIB		(1024.0 * 1024.0)

/* The ring holds pointers; producer and consumer move them in batches. */
#define RING_SLOTS	1024		/* a power of two */
#define XFER_BATCH	32
#define SPINS_BEFORE_YIELD 256

/* jemalloc's arena index meaning "every arena" (MALLCTL_ARENAS_ALL). */
#define JEMALLOC_ALL_ARENAS "4096"

enum alloc_kind {
	ALLOC_CACHE,		/* kmem_cache_alloc() on a 64-byte cache */
	ALLOC_KMALLOC,		/* kmalloc(64, GFP_KERNEL) */
	ALLOC_MALLOC,		/* malloc(64) of the loaded malloc */
};

enum bench_test {
	TEST_HOT,
	TEST_BATCH,
	TEST_KMALLOC,
	TEST_XTHREAD,
	TEST_MEMORY,
	NR_TESTS,
};

struct test_desc {
	const char *name;
	long iters;		/* default objects or pairs, all repetitions */
	int reps;		/* default timed repetitions */
};

static const struct test_desc tests[NR_TESTS] = {
	[TEST_HOT]	= { "hot",	50000000L,	5 },
	[TEST_BATCH]	= { "batch",	1000000L,	5 },
	[TEST_KMALLOC]	= { "kmalloc",	50000000L,	5 },
	[TEST_XTHREAD]	= { "xthread",	5000000L,	5 },
	[TEST_MEMORY]	= { "memory",	10000000L,	1 },
};

struct bench {
	enum bench_test test;
	bool kslab;
	enum alloc_kind kind;
	struct kmem_cache *cache;
	const char *impl;
	long iters;
	int reps;
	int cpu[2];		/* xthread: producer's and consumer's CPU */
};

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

/*
 * The compiler must treat @p as used and any memory as read or written
 * here, so neither the allocation nor stores into the object go away.
 */
static __always_inline void escape(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static __always_inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" : : : "memory");
#else
	__asm__ __volatile__("" : : : "memory");
#endif
}

/* Spin briefly, then let the other thread run if it shares our CPU. */
static void spin_wait(unsigned int *spins)
{
	if (++*spins < SPINS_BEFORE_YIELD) {
		cpu_relax();
		return;
	}
	*spins = 0;
	sched_yield();
}

static __always_inline void *obj_alloc(enum alloc_kind kind,
				       struct kmem_cache *s)
{
	switch (kind) {
	case ALLOC_CACHE:
		return kmem_cache_alloc(s, GFP_KERNEL);
	case ALLOC_KMALLOC:
		return kmalloc(OBJ_SIZE, GFP_KERNEL);
	default:
		return malloc(OBJ_SIZE);
	}
}

static __always_inline void obj_free(enum alloc_kind kind,
				     struct kmem_cache *s, void *p)
{
	switch (kind) {
	case ALLOC_CACHE:
		kmem_cache_free(s, p);
		break;
	case ALLOC_KMALLOC:
		kfree(p);
		break;
	default:
		free(p);
		break;
	}
}

static __always_inline void *obj_alloc_checked(enum alloc_kind kind,
					       struct kmem_cache *s)
{
	void *p = obj_alloc(kind, s);

	if (unlikely(!p))
		die("allocation failed");
	escape(p);
	return p;
}

/* One write per object, kept by escape(). */
static __always_inline void obj_touch(void *p, long value)
{
	*(long *)p = value;
	escape(p);
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

static size_t rss_bytes(void)
{
	unsigned long size, resident;
	FILE *f = fopen("/proc/self/statm", "r");

	if (!f)
		die("/proc/self/statm: %s", strerror(errno));
	if (fscanf(f, "%lu %lu", &size, &resident) != 2)
		die("/proc/self/statm: unexpected format");
	fclose(f);
	return resident * (size_t)sysconf(_SC_PAGESIZE);
}

/* ---- hot and kmalloc: one object allocated and freed in a loop ---- */

static __always_inline void hot_loop(enum alloc_kind kind,
				     struct kmem_cache *s, long n)
{
	for (long i = 0; i < n; i++) {
		void *p = obj_alloc_checked(kind, s);

		obj_free(kind, s, p);
	}
}

static void hot_run(enum alloc_kind kind, struct kmem_cache *s, long n)
{
	switch (kind) {
	case ALLOC_CACHE:
		hot_loop(ALLOC_CACHE, s, n);
		break;
	case ALLOC_KMALLOC:
		hot_loop(ALLOC_KMALLOC, s, n);
		break;
	default:
		hot_loop(ALLOC_MALLOC, s, n);
		break;
	}
}

static double bench_hot(struct bench *b)
{
	long per_rep = b->iters / b->reps;
	double best = 0;

	hot_run(b->kind, b->cache, per_rep);
	for (int r = 0; r < b->reps; r++) {
		long t0 = now_ns();
		double ns;

		hot_run(b->kind, b->cache, per_rep);
		ns = (double)(now_ns() - t0) / per_rep;
		if (r == 0 || ns < best)
			best = ns;
	}
	return best;
}

/* ---- batch: N allocations, then N frees ---- */

static __always_inline void batch_loop(enum alloc_kind kind,
				       struct kmem_cache *s, void **objs,
				       long n)
{
	for (long i = 0; i < n; i++) {
		objs[i] = obj_alloc_checked(kind, s);
		obj_touch(objs[i], i);
	}
	for (long i = 0; i < n; i++)
		obj_free(kind, s, objs[i]);
}

static void batch_run(enum alloc_kind kind, struct kmem_cache *s,
		      void **objs, long n)
{
	switch (kind) {
	case ALLOC_CACHE:
		batch_loop(ALLOC_CACHE, s, objs, n);
		break;
	case ALLOC_KMALLOC:
		batch_loop(ALLOC_KMALLOC, s, objs, n);
		break;
	default:
		batch_loop(ALLOC_MALLOC, s, objs, n);
		break;
	}
}

static double bench_batch(struct bench *b)
{
	void **objs = map_harness(b->iters * sizeof(void *));
	double best = 0;

	batch_run(b->kind, b->cache, objs, b->iters);
	for (int r = 0; r < b->reps; r++) {
		long t0 = now_ns();
		double ns;

		batch_run(b->kind, b->cache, objs, b->iters);
		ns = (double)(now_ns() - t0) / b->iters;
		if (r == 0 || ns < best)
			best = ns;
	}
	munmap(objs, b->iters * sizeof(void *));
	return best;
}

/* ---- xthread: producer allocates, consumer frees ---- */

/*
 * Single-producer single-consumer ring of object pointers.  Each index is
 * written by one side only and sits on its own cache line; each side keeps
 * a private copy of the other's index and rereads the shared one only when
 * the copy says the ring is full (producer) or empty (consumer).  Moving a
 * batch costs one release store, which makes the slots visible.
 */
struct spsc_ring {
	_Alignas(CACHELINE) atomic_size_t head;	/* next slot to consume */
	_Alignas(CACHELINE) atomic_size_t tail;	/* next slot to fill */
	_Alignas(CACHELINE) void *slot[RING_SLOTS];
};

struct ring_end {
	size_t mine;		/* our index: tail (producer) or head */
	size_t theirs;		/* last value seen of the other index */
};

static void ring_push(struct spsc_ring *r, struct ring_end *e,
		      void **objs, size_t n)
{
	unsigned int spins = 0;

	while (RING_SLOTS - (e->mine - e->theirs) < n) {
		e->theirs = atomic_load_explicit(&r->head,
						 memory_order_acquire);
		if (RING_SLOTS - (e->mine - e->theirs) < n)
			spin_wait(&spins);
	}
	for (size_t i = 0; i < n; i++)
		r->slot[(e->mine + i) & (RING_SLOTS - 1)] = objs[i];
	e->mine += n;
	atomic_store_explicit(&r->tail, e->mine, memory_order_release);
}

static size_t ring_pop(struct spsc_ring *r, struct ring_end *e,
		       void **objs, size_t max)
{
	size_t n = e->theirs - e->mine;

	if (!n) {
		e->theirs = atomic_load_explicit(&r->tail,
						 memory_order_acquire);
		n = e->theirs - e->mine;
	}
	if (n > max)
		n = max;
	for (size_t i = 0; i < n; i++)
		objs[i] = r->slot[(e->mine + i) & (RING_SLOTS - 1)];
	e->mine += n;
	if (n)
		atomic_store_explicit(&r->head, e->mine, memory_order_release);
	return n;
}

struct xthread_run {
	struct spsc_ring *ring;
	enum alloc_kind kind;
	struct kmem_cache *cache;
	long n;
	pthread_barrier_t start;
	long t_start;		/* set by the producer */
	long t_end;		/* set by the consumer */
};

static __always_inline void produce(enum alloc_kind kind,
				    struct xthread_run *x)
{
	struct ring_end e = { 0, 0 };
	void *batch[XFER_BATCH];
	long sent = 0;

	while (sent < x->n) {
		size_t n = XFER_BATCH;

		if (x->n - sent < XFER_BATCH)
			n = x->n - sent;
		for (size_t i = 0; i < n; i++) {
			batch[i] = obj_alloc_checked(kind, x->cache);
			obj_touch(batch[i], sent);
		}
		ring_push(x->ring, &e, batch, n);
		sent += n;
	}
}

static __always_inline void consume(enum alloc_kind kind,
				    struct xthread_run *x)
{
	struct ring_end e = { 0, 0 };
	void *batch[XFER_BATCH];
	unsigned int spins = 0;
	long left = x->n;

	while (left > 0) {
		size_t n = ring_pop(x->ring, &e, batch, XFER_BATCH);

		if (!n) {
			spin_wait(&spins);
			continue;
		}
		for (size_t i = 0; i < n; i++)
			obj_free(kind, x->cache, batch[i]);
		left -= n;
	}
}

static void *producer_thread(void *arg)
{
	struct xthread_run *x = arg;

	pthread_barrier_wait(&x->start);
	x->t_start = now_ns();
	if (x->kind == ALLOC_CACHE)
		produce(ALLOC_CACHE, x);
	else
		produce(ALLOC_MALLOC, x);
	return NULL;
}

static void *consumer_thread(void *arg)
{
	struct xthread_run *x = arg;

	pthread_barrier_wait(&x->start);
	if (x->kind == ALLOC_CACHE)
		consume(ALLOC_CACHE, x);
	else
		consume(ALLOC_MALLOC, x);
	x->t_end = now_ns();
	return NULL;
}

/*
 * Pin producer and consumer to two different CPUs so that every object
 * crosses between cores.  Left to the scheduler, the two threads sometimes
 * share one CPU, which measures something else, and is far faster.
 */
static void pick_cpus(struct bench *b)
{
	cpu_set_t set;
	int found = 0;

	b->cpu[0] = -1;
	b->cpu[1] = -1;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (int c = 0; c < CPU_SETSIZE && found < 2; c++)
		if (CPU_ISSET(c, &set))
			b->cpu[found++] = c;
	if (found < 2) {
		b->cpu[0] = -1;
		b->cpu[1] = -1;
	}
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg,
			 int cpu)
{
	pthread_attr_t attr;
	cpu_set_t set;
	int err;

	pthread_attr_init(&attr);
	if (cpu >= 0) {
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
	}
	err = pthread_create(t, &attr, fn, arg);
	pthread_attr_destroy(&attr);
	if (err)
		die("pthread_create: %s", strerror(err));
}

/* Returns objects per second for one pass of @n objects. */
static double xthread_pass(struct bench *b, struct spsc_ring *ring, long n)
{
	struct xthread_run x = {
		.ring = ring, .kind = b->kind, .cache = b->cache, .n = n,
	};
	pthread_t prod, cons;

	atomic_store(&ring->head, 0);
	atomic_store(&ring->tail, 0);
	pthread_barrier_init(&x.start, NULL, 2);
	start_thread(&cons, consumer_thread, &x, b->cpu[1]);
	start_thread(&prod, producer_thread, &x, b->cpu[0]);
	pthread_join(prod, NULL);
	pthread_join(cons, NULL);
	pthread_barrier_destroy(&x.start);
	return (double)n * NSEC_PER_SEC / (x.t_end - x.t_start);
}

static double bench_xthread(struct bench *b)
{
	struct spsc_ring *ring = map_harness(sizeof(*ring));
	double best = 0;

	pick_cpus(b);
	xthread_pass(b, ring, b->iters / b->reps / 4 + 1);
	for (int r = 0; r < b->reps; r++) {
		double ops = xthread_pass(b, ring, b->iters / b->reps);

		if (ops > best)
			best = ops;
	}
	munmap(ring, sizeof(*ring));
	return best;
}

/* ---- memory: footprint of N live objects, and what is left after ---- */

typedef int (*mallctl_fn)(const char *, void *, size_t *, void *, size_t);

/*
 * Ask the loaded malloc to return free memory to the system.  Returns the
 * call used, for the record.
 */
static const char *malloc_release(const char *impl)
{
	void (*mi_collect)(bool force);
	void (*tc_release)(void);
	mallctl_fn mallctl;

	if (!strcmp(impl, "glibc")) {
		malloc_trim(0);
		return "malloc_trim";
	}
	mallctl = (mallctl_fn)dlsym(RTLD_DEFAULT, "mallctl");
	if (mallctl) {
		mallctl("thread.tcache.flush", NULL, NULL, NULL, 0);
		mallctl("arena." JEMALLOC_ALL_ARENAS ".purge",
			NULL, NULL, NULL, 0);
		return "mallctl-purge";
	}
	mi_collect = (void (*)(bool))dlsym(RTLD_DEFAULT, "mi_collect");
	if (mi_collect) {
		mi_collect(true);
		return "mi_collect";
	}
	tc_release = (void (*)(void))dlsym(RTLD_DEFAULT,
					   "MallocExtension_ReleaseFreeMemory");
	if (tc_release) {
		tc_release();
		return "ReleaseFreeMemory";
	}
	return "none";
}

static __always_inline void fill(enum alloc_kind kind, struct kmem_cache *s,
				 void **objs, long n)
{
	for (long i = 0; i < n; i++) {
		objs[i] = obj_alloc_checked(kind, s);
		obj_touch(objs[i], i);
	}
}

static __always_inline void drain(enum alloc_kind kind, struct kmem_cache *s,
				  void **objs, long n)
{
	for (long i = 0; i < n; i++)
		obj_free(kind, s, objs[i]);
}

/* For the record: what kslab still holds after the shrink. */
static void report_cache_state(struct kmem_cache *s, int shrunk)
{
	struct kmem_cache_info info;

	if (kmem_cache_get_info(s, &info))
		return;
	printf("info test=memory alloc=kslab shrink_ret=%d slabs=%zu total_objs=%zu active_objs=%zu cached_objs=%zu slab_size=%zu objs_per_slab=%zu slot_size=%zu\n",
	       shrunk, info.slabs, info.total_objs, info.active_objs,
	       info.cached_objs, info.slab_size, info.objs_per_slab,
	       info.slot_size);
}

static void bench_memory(struct bench *b)
{
	size_t ideal = (size_t)b->iters * OBJ_SIZE;
	void **objs = map_harness(b->iters * sizeof(void *));
	size_t start, live, after;
	long t0, t_fill, t_free;
	const char *release;
	int shrunk = 0;
	double over;

	/* Initialise the allocator (and its per-thread state) first. */
	obj_free(b->kind, b->cache, obj_alloc_checked(b->kind, b->cache));
	start = rss_bytes();

	t0 = now_ns();
	if (b->kind == ALLOC_CACHE)
		fill(ALLOC_CACHE, b->cache, objs, b->iters);
	else
		fill(ALLOC_MALLOC, NULL, objs, b->iters);
	t_fill = now_ns() - t0;
	live = rss_bytes();

	t0 = now_ns();
	if (b->kind == ALLOC_CACHE)
		drain(ALLOC_CACHE, b->cache, objs, b->iters);
	else
		drain(ALLOC_MALLOC, NULL, objs, b->iters);
	t_free = now_ns() - t0;
	if (b->kind == ALLOC_CACHE) {
		shrunk = kmem_cache_shrink(b->cache);
		release = "kmem_cache_shrink";
	} else {
		release = malloc_release(b->impl);
	}
	after = rss_bytes();

	over = ((double)live - start - ideal) * 100.0 / ideal;
	printf("result test=memory alloc=%s impl=%s overhead_pct=%.2f after_free_mib=%.1f live_mib=%.1f ideal_mib=%.1f objects=%ld release=%s fill_ns=%.1f free_ns=%.1f\n",
	       b->kslab ? "kslab" : "malloc", b->impl, over,
	       ((double)after - start) / MIB, ((double)live - start) / MIB,
	       ideal / MIB, b->iters, release,
	       (double)t_fill / b->iters, (double)t_free / b->iters);
	if (b->kind == ALLOC_CACHE)
		report_cache_state(b->cache, shrunk);
	munmap(objs, b->iters * sizeof(void *));
}

/* ---- driver ---- */

/* Is @symbol defined by the shared object loaded at @base? */
static bool object_defines(const void *base, const char *symbol)
{
	void *sym = dlsym(RTLD_DEFAULT, symbol);
	Dl_info info;

	return sym && dladdr(sym, &info) && info.dli_fbase == base;
}

/*
 * Name the allocator that really serves malloc() in this process, from the
 * symbols of the object defining malloc rather than from its file name, so
 * a preload that did not take or a misnamed file is caught.
 */
static const char *malloc_impl(void)
{
	static const struct {
		const char *name;
		const char *symbol;
	} known[] = {
		{ "jemalloc", "mallctl" },
		{ "mimalloc", "mi_collect" },
		{ "tcmalloc", "MallocExtension_ReleaseFreeMemory" },
		{ "glibc", "gnu_get_libc_version" },
	};
	void *sym = dlsym(RTLD_DEFAULT, "malloc");
	Dl_info info;

	if (!sym || !dladdr(sym, &info))
		return "unknown";
	for (size_t i = 0; i < ARRAY_SIZE(known); i++)
		if (object_defines(info.dli_fbase, known[i].symbol))
			return known[i].name;
	return "unknown";
}

static void print_help(FILE *f)
{
	fputs("usage: bench --alloc=kslab|malloc --test=hot|batch|kmalloc|xthread|memory\n"
	      "             [--iters N] [--reps N]\n"
	      "  --iters  pairs (hot, kmalloc), objects per round (batch),\n"
	      "           objects over all repetitions (xthread), live objects (memory)\n"
	      "  --reps   timed repetitions; the best one is reported\n"
	      "Run the malloc side under LD_PRELOAD=<peer .so> to measure a peer.\n",
	      f);
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

static void parse_args(struct bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "alloc", required_argument, NULL, 'a' },
		{ "test", required_argument, NULL, 't' },
		{ "iters", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *alloc = NULL, *test = NULL;
	int c;

	b->iters = 0;
	b->reps = 0;
	while ((c = getopt_long(argc, argv, "a:t:n:r:h", opts, NULL)) != -1) {
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
		die("unknown --alloc '%s'", alloc);

	for (b->test = 0; b->test < NR_TESTS; b->test++)
		if (!strcmp(test, tests[b->test].name))
			break;
	if (b->test == NR_TESTS)
		die("unknown --test '%s'", test);

	if (!b->iters)
		b->iters = tests[b->test].iters;
	if (!b->reps)
		b->reps = tests[b->test].reps;
	if (b->iters < b->reps)
		b->iters = b->reps;
}

static void setup_allocator(struct bench *b)
{
	if (!b->kslab) {
		b->kind = ALLOC_MALLOC;
		b->impl = malloc_impl();
		return;
	}
	b->impl = "kslab";
	if (b->test == TEST_KMALLOC) {
		b->kind = ALLOC_KMALLOC;
		return;
	}
	b->kind = ALLOC_CACHE;
	b->cache = kmem_cache_create("bench-64", OBJ_SIZE, 0, 0, NULL);
	if (!b->cache)
		die("kmem_cache_create: %s", strerror(errno));
}

static void report_time(struct bench *b, double ns)
{
	printf("result test=%s alloc=%s impl=%s ns_per_op=%.2f iters=%ld reps=%d\n",
	       tests[b->test].name, b->kslab ? "kslab" : "malloc", b->impl,
	       ns, b->iters, b->reps);
}

int main(int argc, char **argv)
{
	struct bench b = { 0 };
	double ops;

	parse_args(&b, argc, argv);
	setup_allocator(&b);

	switch (b.test) {
	case TEST_HOT:
	case TEST_KMALLOC:
		report_time(&b, bench_hot(&b));
		break;
	case TEST_BATCH:
		report_time(&b, bench_batch(&b));
		break;
	case TEST_XTHREAD:
		ops = bench_xthread(&b);
		printf("result test=xthread alloc=%s impl=%s ops_per_sec=%.0f iters=%ld reps=%d cpus=%d,%d\n",
		       b.kslab ? "kslab" : "malloc", b.impl, ops, b.iters,
		       b.reps, b.cpu[0], b.cpu[1]);
		break;
	default:
		bench_memory(&b);
		break;
	}
	fflush(stdout);
	return 0;
}
