// SPDX-License-Identifier: MIT
/*
 * finalizer_bench: kslab's finalizers against Go's, 64-byte objects.
 *
 * The Go side is tools/bench/go/finalizer_bench.go (built as
 * finalizer_bench_go beside this program): p := new(T64) and
 * runtime.SetFinalizer(p, fin), the objects kept in a slice.  This side is
 * an object from a 64-byte kmem_cache and kmem_set_finalizer(obj, fn,
 * NULL).  Both finalizers do the same trivial thing: add one to an atomic
 * counter.  Both programs take the same options and print the same lines,
 *
 *	result test=fin-<test> alloc=<kslab|go> impl=<kslab|go> ns_per_obj=<f> iters=<N> reps=<R>
 *
 * so that run.sh can alternate the sides process by process, as it does
 * for bench.c.  Lines starting with "info" carry context for the record.
 *
 * Tests:
 *
 *   set    N times kmem_cache_alloc() + kmem_set_finalizer(), each pointer
 *          kept in an array; ns per object (Go: new + SetFinalizer, the
 *          collections the allocations start included).
 *   drain  N objects with finalizers (not timed), then from the first
 *          free to every finalizer having run: the N kmem_cache_free()
 *          calls, kmem_gc() (every grace period passed, every finalizer
 *          queued) and kmem_finalizers_flush() (every queued finalizer run,
 *          the memory back in the cache); ns per object.  Go: from
 *          dropping the slice, through runtime.GC(), to the last
 *          finalizer.  The info line splits the time into its three steps.
 *
 * Method, as in bench.c: CLOCK_MONOTONIC; each test runs once untimed
 * (finalizer thread started, slabs faulted in and recycled), then --reps
 * times, and the best repetition is reported.  Every repetition ends with
 * all objects finalized and back in the cache, and the counter checked, so
 * the next starts from the same state.  The pointer array comes from
 * mmap(), never from the allocator under test.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#include <kslab/finalizer.h>
#include <kslab/slab.h>

#define unlikely(x)	__builtin_expect(!!(x), 0)

#define OBJ_SIZE	64
#define CACHELINE	64
#define NSEC_PER_SEC	1000000000L

/* the object, as Go's T64: 64 bytes, one word written at allocation */
struct fin_obj {
	unsigned long payload[8];
};

_Static_assert(sizeof(struct fin_obj) == OBJ_SIZE,
	       "the benchmark object must be 64 bytes");

enum fin_test {
	TEST_SET,
	TEST_DRAIN,
	NR_TESTS,
};

static const char *const test_names[NR_TESTS] = {
	[TEST_SET]	= "set",
	[TEST_DRAIN]	= "drain",
};

struct fin_bench {
	enum fin_test test;
	struct kmem_cache *cache;
	void **objs;		/* harness memory, from mmap() */
	long iters;
	int reps;
};

/* One repetition, in ns: the figure, and for drain its three steps. */
struct fin_times {
	long total;
	long free;		/* the free loop */
	long gc;		/* kmem_gc() */
	long flush;		/* kmem_finalizers_flush() */
};

/*
 * Finalizers run in this repetition; only the finalizer thread adds.  On
 * a cache line of its own, so that it shares none with the library's data.
 */
static _Alignas(CACHELINE) atomic_long finalized;

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("finalizer_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void *map_harness(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", bytes, strerror(errno));
	memset(p, 0, bytes);
	return p;
}

/* The trivial finalizer, Go's fin: count. */
static void count_finalizer(void *obj, void *arg)
{
	(void)obj;
	(void)arg;
	atomic_fetch_add_explicit(&finalized, 1, memory_order_relaxed);
}

/* Allocate N objects, set a finalizer on each, keep them. */
static void fill(struct fin_bench *b)
{
	for (long i = 0; i < b->iters; i++) {
		struct fin_obj *o = kmem_cache_alloc(b->cache, GFP_KERNEL);
		int err;

		if (unlikely(!o))
			die("kmem_cache_alloc failed after %ld objects", i);
		o->payload[0] = i;
		err = kmem_set_finalizer(o, count_finalizer, NULL);
		if (unlikely(err))
			die("kmem_set_finalizer: %s", strerror(-err));
		b->objs[i] = o;
	}
}

static void free_all(struct fin_bench *b)
{
	for (long i = 0; i < b->iters; i++)
		kmem_cache_free(b->cache, b->objs[i]);
}

/* Every finalizer of the repetition has run, exactly once each. */
static void check_finalized(struct fin_bench *b)
{
	long n = atomic_load_explicit(&finalized, memory_order_relaxed);

	if (n != b->iters)
		die("%ld finalizers ran, %ld objects were freed", n, b->iters);
}

/* Free everything, wait for every finalizer: the drain test's steps. */
static void drain(struct fin_bench *b, struct fin_times *t)
{
	long t0 = now_ns(), t1, t2, t3;

	free_all(b);
	t1 = now_ns();
	kmem_gc();
	t2 = now_ns();
	kmem_finalizers_flush();
	t3 = now_ns();
	check_finalized(b);
	t->free = t1 - t0;
	t->gc = t2 - t1;
	t->flush = t3 - t2;
	t->total = t3 - t0;
}

static struct fin_times set_pass(struct fin_bench *b)
{
	struct fin_times t = { 0 }, untimed;
	long t0;

	atomic_store(&finalized, 0);
	t0 = now_ns();
	fill(b);
	t.total = now_ns() - t0;
	drain(b, &untimed);
	return t;
}

static struct fin_times drain_pass(struct fin_bench *b)
{
	struct fin_times t;

	atomic_store(&finalized, 0);
	fill(b);
	drain(b, &t);
	return t;
}

static void run(struct fin_bench *b)
{
	struct fin_times (*pass)(struct fin_bench *b) =
		b->test == TEST_SET ? set_pass : drain_pass;
	struct kmem_finalizer_stats st0, st1;
	struct kslab_rcu_stats rs0, rs1;
	struct fin_times best = { 0 };
	double n = b->iters;

	pass(b);
	kmem_finalizer_stats(&st0);
	kslab_rcu_get_stats(&rs0);
	for (int r = 0; r < b->reps; r++) {
		struct fin_times t = pass(b);

		if (r == 0 || t.total < best.total)
			best = t;
	}
	kmem_finalizer_stats(&st1);
	kslab_rcu_get_stats(&rs1);

	printf("result test=fin-%s alloc=kslab impl=kslab ns_per_obj=%.2f iters=%ld reps=%d\n",
	       test_names[b->test], best.total / n, b->iters, b->reps);
	printf("info test=fin-%s alloc=kslab", test_names[b->test]);
	if (b->test == TEST_DRAIN)
		printf(" free_ns=%.2f gc_ns=%.2f flush_ns=%.2f",
		       best.free / n, best.gc / n, best.flush / n);
	printf(" per_rep_executed=%.0f longest_finalizer_ns=%llu pending=%llu worker_restarts=%llu",
	       (double)(st1.finalizers_executed - st0.finalizers_executed) /
	       b->reps, (unsigned long long)st1.longest_ns,
	       (unsigned long long)st1.pending,
	       (unsigned long long)st1.worker_restarts);
	printf(" per_rep_grace_periods=%.1f per_rep_batches=%.1f throttled=%lu rcu_peak_pending=%zu rcu_max_pending=%zu\n",
	       (double)(rs1.grace_periods - rs0.grace_periods) / b->reps,
	       (double)(rs1.batches - rs0.batches) / b->reps,
	       rs1.throttled - rs0.throttled, rs1.peak_pending,
	       rs1.max_pending);
}

/* ---- driver ---- */

static void print_help(FILE *f)
{
	fputs("usage: finalizer_bench --test=set|drain [--iters N] [--reps N]\n"
	      "  --test   set: kmem_cache_alloc() + kmem_set_finalizer();\n"
	      "           drain: free all, kmem_gc(), kmem_finalizers_flush()\n"
	      "  --iters  objects per repetition (default 1000000)\n"
	      "  --reps   timed repetitions (default 5); the best is reported\n",
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

static void parse_args(struct fin_bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "test", required_argument, NULL, 't' },
		{ "iters", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *test = NULL;
	int c;

	b->iters = 1000000L;
	b->reps = 5;
	while ((c = getopt_long(argc, argv, "t:n:r:h", opts, NULL)) != -1) {
		switch (c) {
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
	if (!test || optind != argc) {
		print_help(stderr);
		exit(2);
	}
	for (b->test = 0; b->test < NR_TESTS; b->test++)
		if (!strcmp(test, test_names[b->test]))
			break;
	if (b->test == NR_TESTS)
		die("unknown --test '%s' (set or drain)", test);
}

int main(int argc, char **argv)
{
	struct fin_bench b = { 0 };

	parse_args(&b, argc, argv);
	b.cache = kmem_cache_create("fin-bench-64", OBJ_SIZE, 0, 0, NULL);
	if (!b.cache)
		die("kmem_cache_create: %s", strerror(errno));
	b.objs = map_harness(b.iters * sizeof(void *));
	run(&b);
	fflush(stdout);
	munmap(b.objs, b.iters * sizeof(void *));
	kmem_cache_destroy(b.cache);
	return 0;
}
