// SPDX-License-Identifier: MIT
/*
 * rcu_bench: kslab's kfree_rcu() against the naive liburcu way, 64-byte
 * objects.
 *
 * The naive way is one call_rcu() per object with a callback that free()s
 * it: malloc(64) + call_rcu(&obj->rh, cb), rcu_barrier() to wait for all.
 * kslab's way is an object from a 64-byte kmem_cache (or kmalloc(64)) and
 * kfree_rcu(obj, rh), kvfree_rcu_barrier() to wait for all.  Both use
 * liburcu's default flavor, urcu-memb, and every thread that frees or
 * reads is registered with it (call_rcu() asks for that; kfree_rcu() does
 * not, but the two sides should run alike).
 *
 * One process measures one side on one test and prints one line,
 *
 *	result test=rcu-<test> alloc=<kslab|urcu> impl=<kslab|urcu> <metric>=<value> ...
 *
 * so that run.sh can alternate the sides process by process, as it does
 * for bench.c.  Lines starting with "info" carry context for the record.
 *
 * Tests:
 *
 *   e2e   N objects are allocated and written (not timed), then freed one
 *         RCU free each, then the barrier waits until the last is
 *         reclaimed.  ns_per_obj is the time from the first free to the
 *         barrier's return over N; call_ns is the loop of N free calls
 *         alone over N (the reclaim work runs meanwhile on the other CPU
 *         and is not in it).
 *   gp    grace-period latency in an otherwise idle program: one object
 *         is RCU-freed and the test polls until it is reclaimed (kslab:
 *         kslab_rcu_get_stats().objects moves; urcu: the callback has
 *         run).  first_ms is the very first RCU free of the process (it
 *         starts the reclaim or call_rcu thread); then --iters samples,
 *         20 ms apart, give median_ms and max_ms.  A sample not reclaimed
 *         within 1 s counts as stuck (and as 1000 ms); a barrier then
 *         flushes it.  The urcu process also times bare synchronize_rcu()
 *         calls: one grace period of this program.
 *   load  updater threads (--updaters, 2) replace objects in RCU-protected
 *         slots as fast as they can (kmalloc(64) or malloc(64), write,
 *         publish, RCU-free the old one) for --duration seconds (2) while
 *         a reader thread walks all slots under rcu_read_lock(), in and
 *         out of read-side sections, checking every object it reaches
 *         (bad_reads counts objects found overwritten: freed too early).
 *         Reports updates per second and the peak of objects waiting for
 *         a grace period: kslab's own peak_pending (with max_pending,
 *         throttled, grace_periods), and for both sides the waiting count
 *         sampled every millisecond (kslab: kslab_rcu_get_stats().pending;
 *         urcu: frees queued minus callbacks run) and the peak resident
 *         memory over the start, sampled alike.  MiB figures are objects
 *         times 64 bytes.
 *
 * Method, as in bench.c: CLOCK_MONOTONIC; e2e runs once untimed (reclaim
 * thread or call_rcu thread started, memory faulted in and recycled), then
 * --reps times, and the best repetition of each figure is reported.  The
 * free loops are written once and inlined per side with the side as a
 * constant, so both run the same instructions around the call.  Harness
 * memory comes from mmap(), never from the allocators under test.  The
 * polling thread of the gp test sleeps with a 1 us timer slack so the
 * poll itself adds little to the latency measured.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include <urcu.h>		/* the default flavor: urcu-memb */

#include <kslab/slab.h>

#define likely(x)	__builtin_expect(!!(x), 1)
#define unlikely(x)	__builtin_expect(!!(x), 0)

#define OBJ_SIZE	64
#define CACHELINE	64
#define NSEC_PER_SEC	1000000000L
#define NSEC_PER_MSEC	1000000L
#define NSEC_PER_USEC	1000L
#define MIB		(1024.0 * 1024.0)

/* gp: time between samples, so that each starts from an idle program */
#define GP_IDLE_NS	(20 * NSEC_PER_MSEC)
/* gp: sleep between two looks at the reclaim counters */
#define GP_POLL_NS	(20 * NSEC_PER_USEC)
/* gp: a sample not reclaimed by then counts as stuck (50x the promise) */
#define GP_GIVE_UP_NS	NSEC_PER_SEC
#define GP_MAX_SAMPLES	1000

/* load: RCU-protected slots per updater thread, and the sampling period */
#define LOAD_SLOTS	64
#define LOAD_MAX_UPDATERS 16
#define LOAD_SAMPLE_NS	NSEC_PER_MSEC
/* load: updates between two looks at the stop flag */
#define LOAD_STOP_CHECK	64

/*
 * The object both sides free: 64 bytes, the rcu_head at the end.  key and
 * check sit where glibc's free() writes its tcache link, so a reader that
 * reached a freed object sees check != ~key on either side.
 */
struct rcu_obj {
	unsigned long key;
	unsigned long check;		/* ~key while the object is live */
	unsigned long payload[4];
	struct rcu_head rh;
};

_Static_assert(sizeof(struct rcu_obj) == OBJ_SIZE,
	       "the benchmark object must be 64 bytes");

enum rcu_side {
	SIDE_KSLAB,		/* kmem_cache_alloc/kmalloc + kfree_rcu */
	SIDE_URCU,		/* malloc + call_rcu(cb: free) */
};

static const char *const side_names[] = {
	[SIDE_KSLAB]	= "kslab",
	[SIDE_URCU]	= "urcu",
};

enum rcu_test {
	TEST_E2E,
	TEST_GP,
	TEST_LOAD,
	NR_TESTS,
};

struct test_desc {
	const char *name;
	long iters;		/* e2e: objects per repetition; gp: samples */
	int reps;		/* e2e: timed repetitions */
};

static const struct test_desc tests[NR_TESTS] = {
	[TEST_E2E]	= { "e2e",	1000000L,	3 },
	[TEST_GP]	= { "gp",	15,		1 },
	[TEST_LOAD]	= { "load",	0,		1 },
};

struct rcu_bench {
	enum rcu_test test;
	enum rcu_side side;
	struct kmem_cache *cache;	/* kslab's 64-byte cache (e2e, gp) */
	long iters;
	int reps;
	double duration_s;		/* load */
	int updaters;			/* load */
};

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("rcu_bench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(1);
}

static __always_inline void escape(void *p)
{
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

static long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * NSEC_PER_SEC + ts.tv_nsec;
}

static void nap_ns(long ns)
{
	struct timespec ts = { ns / NSEC_PER_SEC, ns % NSEC_PER_SEC };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
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

/* ---- the two ways to allocate and RCU-free ---- */

static void urcu_free_obj(struct rcu_head *head)
{
	free(caa_container_of(head, struct rcu_obj, rh));
}

static __always_inline struct rcu_obj *obj_alloc(enum rcu_side side,
						 struct kmem_cache *s)
{
	struct rcu_obj *o;

	if (side == SIDE_KSLAB)
		o = s ? kmem_cache_alloc(s, GFP_KERNEL) :
			kmalloc(sizeof(*o), GFP_KERNEL);
	else
		o = malloc(sizeof(*o));
	if (unlikely(!o))
		die("allocation failed");
	escape(o);
	return o;
}

static __always_inline void obj_init(struct rcu_obj *o, unsigned long key)
{
	o->key = key;
	o->check = ~key;
	escape(o);
}

static __always_inline void obj_free_rcu(enum rcu_side side,
					 struct rcu_obj *o,
					 void (*cb)(struct rcu_head *))
{
	if (side == SIDE_KSLAB)
		kfree_rcu(o, rh);
	else
		call_rcu(&o->rh, cb);
}

static void rcu_free_barrier(enum rcu_side side)
{
	if (side == SIDE_KSLAB)
		kvfree_rcu_barrier();
	else
		rcu_barrier();
}

/* ---- e2e: N RCU frees, first free to last reclaim ---- */

static __always_inline void free_all(enum rcu_side side, void **objs, long n)
{
	for (long i = 0; i < n; i++)
		obj_free_rcu(side, objs[i], urcu_free_obj);
}

static void fill(struct rcu_bench *b, void **objs, long n)
{
	for (long i = 0; i < n; i++) {
		struct rcu_obj *o;

		if (b->side == SIDE_KSLAB)
			o = obj_alloc(SIDE_KSLAB, b->cache);
		else
			o = obj_alloc(SIDE_URCU, NULL);
		obj_init(o, i);
		objs[i] = o;
	}
}

struct e2e_times {
	long call_ns;		/* the loop of free calls */
	long total_ns;		/* first free to the barrier's return */
};

static struct e2e_times e2e_pass(struct rcu_bench *b, void **objs, long n)
{
	struct e2e_times t;
	long t0, t1;

	fill(b, objs, n);
	t0 = now_ns();
	if (b->side == SIDE_KSLAB)
		free_all(SIDE_KSLAB, objs, n);
	else
		free_all(SIDE_URCU, objs, n);
	t1 = now_ns();
	rcu_free_barrier(b->side);
	t.call_ns = t1 - t0;
	t.total_ns = now_ns() - t0;
	return t;
}

static void bench_e2e(struct rcu_bench *b)
{
	void **objs = map_harness(b->iters * sizeof(void *));
	struct kslab_rcu_stats st0 = { 0 }, st1 = { 0 };
	double best_total = 0, best_call = 0;

	e2e_pass(b, objs, b->iters);
	if (b->side == SIDE_KSLAB)
		kslab_rcu_get_stats(&st0);
	for (int r = 0; r < b->reps; r++) {
		struct e2e_times t = e2e_pass(b, objs, b->iters);
		double total = (double)t.total_ns / b->iters;
		double call = (double)t.call_ns / b->iters;

		if (r == 0 || total < best_total)
			best_total = total;
		if (r == 0 || call < best_call)
			best_call = call;
	}
	printf("result test=rcu-e2e alloc=%s impl=%s ns_per_obj=%.2f call_ns=%.2f iters=%ld reps=%d\n",
	       side_names[b->side], side_names[b->side], best_total,
	       best_call, b->iters, b->reps);
	if (b->side == SIDE_KSLAB) {
		kslab_rcu_get_stats(&st1);
		printf("info test=rcu-e2e alloc=kslab per_rep_grace_periods=%.1f per_rep_batches=%.1f throttled=%lu peak_pending=%zu max_pending=%zu\n",
		       (double)(st1.grace_periods - st0.grace_periods) / b->reps,
		       (double)(st1.batches - st0.batches) / b->reps,
		       st1.throttled - st0.throttled, st1.peak_pending,
		       st1.max_pending);
	}
	munmap(objs, b->iters * sizeof(void *));
}

/* ---- gp: one object in an idle program, RCU free to reclaim ---- */

static atomic_bool gp_reclaimed;

static void urcu_free_obj_flag(struct rcu_head *head)
{
	free(caa_container_of(head, struct rcu_obj, rh));
	atomic_store_explicit(&gp_reclaimed, true, memory_order_release);
}

static unsigned long long kslab_reclaimed(void)
{
	struct kslab_rcu_stats st;

	kslab_rcu_get_stats(&st);
	return st.objects;
}

/*
 * Nanoseconds from the RCU free of one object to seeing it reclaimed.  One
 * not reclaimed within GP_GIVE_UP_NS counts in *@stuck, as GP_GIVE_UP_NS,
 * and a barrier flushes it so that the next sample starts clean.
 */
static long gp_sample(struct rcu_bench *b, int *stuck)
{
	struct rcu_obj *o;
	unsigned long long before = 0;
	long t0;

	if (b->side == SIDE_KSLAB) {
		o = obj_alloc(SIDE_KSLAB, b->cache);
		obj_init(o, 1);
		before = kslab_reclaimed();
		t0 = now_ns();
		obj_free_rcu(SIDE_KSLAB, o, NULL);
	} else {
		o = obj_alloc(SIDE_URCU, NULL);
		obj_init(o, 1);
		atomic_store(&gp_reclaimed, false);
		t0 = now_ns();
		obj_free_rcu(SIDE_URCU, o, urcu_free_obj_flag);
	}
	for (;;) {
		bool done;
		long t;

		if (b->side == SIDE_KSLAB)
			done = kslab_reclaimed() != before;
		else
			done = atomic_load_explicit(&gp_reclaimed,
						    memory_order_acquire);
		t = now_ns() - t0;
		if (done)
			return t;
		if (t >= GP_GIVE_UP_NS)
			break;
		nap_ns(GP_POLL_NS);
	}
	rcu_free_barrier(b->side);
	++*stuck;
	return GP_GIVE_UP_NS;
}

static long sync_sample(void)
{
	long t0 = now_ns();

	synchronize_rcu();
	return now_ns() - t0;
}

static int cmp_long(const void *a, const void *b)
{
	long x = *(const long *)a, y = *(const long *)b;

	return (x > y) - (x < y);
}

struct latency {
	double median_ms;
	double max_ms;
	double min_ms;
};

static struct latency summarize(long *ns, int n)
{
	struct latency l;

	qsort(ns, n, sizeof(*ns), cmp_long);
	l.median_ms = (n % 2 ? ns[n / 2] : (ns[n / 2 - 1] + ns[n / 2]) / 2.0) /
		      NSEC_PER_MSEC;
	l.min_ms = (double)ns[0] / NSEC_PER_MSEC;
	l.max_ms = (double)ns[n - 1] / NSEC_PER_MSEC;
	return l;
}

/* Bare synchronize_rcu() calls, as many and as far apart as the samples. */
static void print_sync_latency(int n)
{
	long ns[GP_MAX_SAMPLES] = { 0 };
	struct latency s;

	for (int i = 0; i < n; i++) {
		nap_ns(GP_IDLE_NS);
		ns[i] = sync_sample();
	}
	s = summarize(ns, n);
	printf(" sync_median_ms=%.3f sync_max_ms=%.3f", s.median_ms, s.max_ms);
}

static void bench_gp(struct rcu_bench *b)
{
	int n = (int)b->iters, stuck = 0;
	long lat[GP_MAX_SAMPLES] = { 0 };
	struct latency l;
	double first_ms;

	if (n > GP_MAX_SAMPLES)
		die("gp: at most %d samples", GP_MAX_SAMPLES);
	/* only this thread's sleeps; threads it starts keep the default */
	prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0);

	/* the very first RCU free of the process, reported on its own */
	first_ms = (double)gp_sample(b, &stuck) / NSEC_PER_MSEC;
	for (int i = 0; i < n; i++) {
		nap_ns(GP_IDLE_NS);
		lat[i] = gp_sample(b, &stuck);
	}
	l = summarize(lat, n);
	printf("result test=rcu-gp alloc=%s impl=%s first_ms=%.3f median_ms=%.3f max_ms=%.3f min_ms=%.3f stuck=%d samples=%d",
	       side_names[b->side], side_names[b->side], first_ms,
	       l.median_ms, l.max_ms, l.min_ms, stuck, n);
	if (b->side == SIDE_URCU)
		print_sync_latency(n);
	putchar('\n');
}

/* ---- load: updaters replace objects while a reader walks them ---- */

struct updater_state {
	_Alignas(CACHELINE) atomic_ulong queued;	/* RCU frees issued */
	unsigned long ops;				/* at the end */
	struct load_run *run;
	int index;
};

struct load_run {
	_Alignas(CACHELINE) atomic_bool stop;
	_Alignas(CACHELINE) atomic_ulong freed;		/* urcu callbacks run */
	_Alignas(CACHELINE) struct rcu_obj *slot[LOAD_MAX_UPDATERS][LOAD_SLOTS];
	struct updater_state upd[LOAD_MAX_UPDATERS];
	enum rcu_side side;
	int updaters;
	pthread_barrier_t start;
	unsigned long reads;		/* read-side sections */
	unsigned long bad_reads;	/* objects found not intact */
};

static struct load_run *load_run;	/* for the urcu callback */

static void urcu_free_obj_count(struct rcu_head *head)
{
	free(caa_container_of(head, struct rcu_obj, rh));
	atomic_fetch_add_explicit(&load_run->freed, 1, memory_order_release);
}

/*
 * Replace the objects in this thread's slots round-robin: the new object
 * is written before it is published, the old one is RCU-freed.  Only this
 * thread writes its slots, so a plain load of the old pointer suffices.
 */
static __always_inline unsigned long update_loop(enum rcu_side side,
						 struct updater_state *u)
{
	struct load_run *x = u->run;
	struct rcu_obj **slot = x->slot[u->index];
	unsigned long key = (unsigned long)u->index << 48;
	unsigned long ops = 0, queued = 0;

	while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
		for (int i = 0; i < LOAD_STOP_CHECK; i++) {
			struct rcu_obj *o = obj_alloc(side, NULL);
			struct rcu_obj *old = slot[ops % LOAD_SLOTS];

			obj_init(o, key + ops);
			rcu_assign_pointer(slot[ops % LOAD_SLOTS], o);
			ops++;
			if (old) {
				/* counted first: its callback may run at once */
				atomic_store_explicit(&u->queued, ++queued,
						      memory_order_release);
				obj_free_rcu(side, old, urcu_free_obj_count);
			}
		}
	}
	return ops;
}

static void *updater_thread(void *arg)
{
	struct updater_state *u = arg;

	rcu_register_thread();
	pthread_barrier_wait(&u->run->start);
	if (u->run->side == SIDE_KSLAB)
		u->ops = update_loop(SIDE_KSLAB, u);
	else
		u->ops = update_loop(SIDE_URCU, u);
	rcu_unregister_thread();
	return NULL;
}

static void *reader_thread(void *arg)
{
	struct load_run *x = arg;
	unsigned long reads = 0, bad = 0;

	rcu_register_thread();
	pthread_barrier_wait(&x->start);
	while (!atomic_load_explicit(&x->stop, memory_order_relaxed)) {
		rcu_read_lock();
		for (int t = 0; t < x->updaters; t++)
			for (int i = 0; i < LOAD_SLOTS; i++) {
				struct rcu_obj *o = rcu_dereference(x->slot[t][i]);

				if (o && CMM_LOAD_SHARED(o->check) !=
					 ~CMM_LOAD_SHARED(o->key))
					bad++;
			}
		rcu_read_unlock();
		reads++;
	}
	x->reads = reads;
	x->bad_reads = bad;
	rcu_unregister_thread();
	return NULL;
}

/*
 * Objects RCU-freed and not yet reclaimed, as seen from outside.  urcu:
 * callbacks run are read before frees queued, and each free is counted
 * before it is queued, so the difference cannot go below zero.
 */
static size_t load_waiting(struct load_run *x)
{
	struct kslab_rcu_stats st;
	unsigned long queued = 0, freed;

	if (x->side == SIDE_KSLAB) {
		kslab_rcu_get_stats(&st);
		return st.pending;
	}
	freed = atomic_load_explicit(&x->freed, memory_order_acquire);
	for (int t = 0; t < x->updaters; t++)
		queued += atomic_load_explicit(&x->upd[t].queued,
					       memory_order_acquire);
	return queued - freed;
}

static void start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
	int err = pthread_create(t, NULL, fn, arg);

	if (err)
		die("pthread_create: %s", strerror(err));
}

static void bench_load(struct rcu_bench *b)
{
	struct load_run *x = map_harness(sizeof(*x));
	pthread_t upd[LOAD_MAX_UPDATERS], reader;
	size_t rss_start, rss_peak, sampled_peak = 0;
	unsigned long ops = 0;
	struct kslab_rcu_stats st;
	long t0, t_end, elapsed;

	x->side = b->side;
	x->updaters = b->updaters;
	load_run = x;
	pthread_barrier_init(&x->start, NULL, b->updaters + 2);
	for (int t = 0; t < b->updaters; t++) {
		x->upd[t].run = x;
		x->upd[t].index = t;
		start_thread(&upd[t], updater_thread, &x->upd[t]);
	}
	start_thread(&reader, reader_thread, x);
	rss_start = rss_bytes();
	rss_peak = rss_start;

	pthread_barrier_wait(&x->start);
	t0 = now_ns();
	t_end = t0 + (long)(b->duration_s * NSEC_PER_SEC);
	while (now_ns() < t_end) {
		size_t waiting = load_waiting(x), rss = rss_bytes();

		if (waiting > sampled_peak)
			sampled_peak = waiting;
		if (rss > rss_peak)
			rss_peak = rss;
		nap_ns(LOAD_SAMPLE_NS);
	}
	atomic_store(&x->stop, true);
	for (int t = 0; t < b->updaters; t++) {
		pthread_join(upd[t], NULL);
		ops += x->upd[t].ops;
	}
	elapsed = now_ns() - t0;
	pthread_join(reader, NULL);

	printf("result test=rcu-load alloc=%s impl=%s ops_per_sec=%.0f sampled_peak=%zu sampled_peak_mib=%.1f rss_peak_mib=%.1f",
	       side_names[b->side], side_names[b->side],
	       (double)ops * NSEC_PER_SEC / elapsed, sampled_peak,
	       sampled_peak * (double)OBJ_SIZE / MIB,
	       (rss_peak - rss_start) / MIB);
	if (b->side == SIDE_KSLAB) {
		kslab_rcu_get_stats(&st);
		printf(" peak_pending=%zu peak_pending_mib=%.1f max_pending=%zu throttled=%lu grace_periods=%lu batches=%lu",
		       st.peak_pending, st.peak_pending * (double)OBJ_SIZE / MIB,
		       st.max_pending, st.throttled, st.grace_periods,
		       st.batches);
	}
	printf(" reads=%lu bad_reads=%lu updaters=%d duration_s=%.2f\n",
	       x->reads, x->bad_reads, b->updaters, (double)elapsed / NSEC_PER_SEC);

	/* the objects still published go too, then wait for every free */
	for (int t = 0; t < b->updaters; t++)
		for (int i = 0; i < LOAD_SLOTS; i++)
			if (x->slot[t][i])
				obj_free_rcu(b->side, x->slot[t][i],
					     urcu_free_obj_count);
	rcu_free_barrier(b->side);
	pthread_barrier_destroy(&x->start);
	load_run = NULL;
	munmap(x, sizeof(*x));
}

/* ---- driver ---- */

static void print_help(FILE *f)
{
	fputs("usage: rcu_bench --alloc=kslab|urcu --test=e2e|gp|load\n"
	      "                 [--iters N] [--reps N] [--duration S] [--updaters N]\n"
	      "  --alloc     kslab: kfree_rcu() of kslab objects;\n"
	      "              urcu: malloc() + call_rcu() with a callback that free()s\n"
	      "  --iters     objects per repetition (e2e), samples (gp)\n"
	      "  --reps      timed repetitions (e2e); the best one is reported\n"
	      "  --duration  seconds of load (load, default 2)\n"
	      "  --updaters  updater threads (load, default 2)\n",
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

static double parse_seconds(const char *arg)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(arg, &end);
	if (errno || end == arg || *end || !(v > 0) || v > 3600)
		die("bad --duration '%s'", arg);
	return v;
}

static void parse_args(struct rcu_bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "alloc", required_argument, NULL, 'a' },
		{ "test", required_argument, NULL, 't' },
		{ "iters", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "updaters", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *alloc = NULL, *test = NULL;
	int c;

	b->duration_s = 2.0;
	b->updaters = 2;
	while ((c = getopt_long(argc, argv, "a:t:n:r:d:u:h", opts, NULL)) != -1) {
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
		case 'd':
			b->duration_s = parse_seconds(optarg);
			break;
		case 'u':
			b->updaters = (int)parse_count(optarg, "--updaters");
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
		b->side = SIDE_KSLAB;
	else if (!strcmp(alloc, "urcu"))
		b->side = SIDE_URCU;
	else
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
	if (b->updaters > LOAD_MAX_UPDATERS)
		die("at most %d updaters", LOAD_MAX_UPDATERS);
}

int main(int argc, char **argv)
{
	struct rcu_bench b = { 0 };

	parse_args(&b, argc, argv);
	if (b.side == SIDE_KSLAB && b.test != TEST_LOAD) {
		b.cache = kmem_cache_create("rcu-bench-64", OBJ_SIZE, 0, 0,
					    NULL);
		if (!b.cache)
			die("kmem_cache_create: %s", strerror(errno));
	}
	/* call_rcu() wants a registered caller; kslab runs the same way */
	rcu_register_thread();

	switch (b.test) {
	case TEST_E2E:
		bench_e2e(&b);
		break;
	case TEST_GP:
		bench_gp(&b);
		break;
	default:
		bench_load(&b);
		break;
	}
	fflush(stdout);
	rcu_unregister_thread();
	return 0;
}
