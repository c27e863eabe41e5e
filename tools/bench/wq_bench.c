// SPDX-License-Identifier: MIT
/*
 * wq_bench: throughput of an ordered workqueue, kslab against a naive one.
 *
 *	wq_bench --impl=kslab|naive [--iters N] [--reps R]
 *
 * One producer thread queues N distinct work items (an array of N struct
 * work_struct, 2M by default) as fast as it can onto one ordered queue,
 * whose single consumer runs each item's function: it adds one to a
 * counter and, at the last item, reads the clock.  The figure is the time
 * from the first queueing to the last item executed, as items per second
 * and ns per item; the best of --reps repetitions (3) is printed as
 *
 *	result test=wq-ordered alloc=<impl> impl=<impl> items_per_s=<float> ns_per_item=<float> iters=<N> reps=<R>
 *
 * and run.sh alternates the two sides process by process, as for the other
 * benches.  Lines starting with "info" carry context.
 *
 *   kslab  alloc_ordered_workqueue() and queue_work() of <kslab/workqueue.h>;
 *          the run ends with flush_workqueue().
 *   naive  what one writes first: a FIFO under one pthread mutex, a
 *          condition variable the consumer thread sleeps on while the FIFO
 *          is empty, pthread_cond_signal() after every append.  Its items
 *          are padded to the size of a struct work_struct, so both sides
 *          move the same bytes.
 *
 * Method: CLOCK_MONOTONIC.  The producer (the main thread) and the consumer
 * are pinned to two different CPUs when there are two (the kslab worker
 * pins itself from a work item queued for that purpose): left to the
 * scheduler they sometimes share one and no item crosses cores.  One
 * untimed repetition comes first (consumer started, items faulted in),
 * then the timed ones.  Item arrays come from mmap(), not from kslab.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <kslab/workqueue.h>

#define NSEC_PER_SEC	1000000000L
#define DEFAULT_ITERS	2000000L
#define DEFAULT_REPS	3

enum wq_impl {
	IMPL_KSLAB,
	IMPL_NAIVE,
};

static const char *const impl_names[] = {
	[IMPL_KSLAB]	= "kslab",
	[IMPL_NAIVE]	= "naive",
};

struct wq_bench {
	enum wq_impl impl;
	long iters;
	int reps;
	int producer_cpu, consumer_cpu;	/* -1: not pinned */
};

/*
 * Written by the consumer only (relaxed stores: plain moves); the producer
 * reads them once "finished" says the last item ran.
 */
static unsigned long executed;
static unsigned long target;
static long end_ns;
static int finished;

static _Noreturn void die(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fputs("wq_bench: ", stderr);
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

static void *map_items(size_t bytes)
{
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED)
		die("mmap %zu bytes: %s", bytes, strerror(errno));
	memset(p, 0, bytes);
	return p;
}

/* The same body for both sides: count, and read the clock at the last. */
static inline void run_item(void)
{
	unsigned long n = __atomic_load_n(&executed, __ATOMIC_RELAXED) + 1;

	__atomic_store_n(&executed, n, __ATOMIC_RELAXED);
	if (n == target) {
		end_ns = now_ns();
		__atomic_store_n(&finished, 1, __ATOMIC_RELEASE);
	}
}

static void start_run(long n)
{
	__atomic_store_n(&executed, 0, __ATOMIC_RELAXED);
	__atomic_store_n(&finished, 0, __ATOMIC_RELAXED);
	target = (unsigned long)n;
}

static int pin_self(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

/* Two CPUs this process may run on, or -1 for both when there is one. */
static void choose_cpus(struct wq_bench *b)
{
	cpu_set_t set;
	int cpu, found = 0;

	b->producer_cpu = b->consumer_cpu = -1;
	if (sched_getaffinity(0, sizeof(set), &set))
		return;
	for (cpu = 0; cpu < CPU_SETSIZE && found < 2; cpu++) {
		if (!CPU_ISSET(cpu, &set))
			continue;
		if (!found++)
			b->producer_cpu = cpu;
		else
			b->consumer_cpu = cpu;
	}
	if (found < 2)
		b->producer_cpu = b->consumer_cpu = -1;
}

/* ---- kslab ------------------------------------------------------------ */

static void kslab_item_fn(struct work_struct *work)
{
	(void)work;
	run_item();
}

static int consumer_cpu;
static int pin_result;

static void kslab_pin_fn(struct work_struct *work)
{
	(void)work;
	pin_result = pin_self(consumer_cpu);
}

static long kslab_run(struct workqueue_struct *wq, struct work_struct *items,
		      long n)
{
	long start, i;

	start_run(n);
	start = now_ns();
	for (i = 0; i < n; i++)
		queue_work(wq, &items[i]);
	flush_workqueue(wq);
	if (!__atomic_load_n(&finished, __ATOMIC_ACQUIRE) ||
	    executed != (unsigned long)n)
		die("kslab: %lu of %ld items ran", executed, n);
	return end_ns - start;
}

static long kslab_bench(struct wq_bench *b)
{
	struct work_struct *items, pin;
	struct workqueue_struct *wq;
	long best = 0, i;
	int rep;

	wq = alloc_ordered_workqueue("wq_bench", 0);
	if (!wq)
		die("alloc_ordered_workqueue failed");
	items = map_items((size_t)b->iters * sizeof(*items));
	for (i = 0; i < b->iters; i++)
		INIT_WORK(&items[i], kslab_item_fn);

	consumer_cpu = b->consumer_cpu;
	INIT_WORK(&pin, kslab_pin_fn);
	queue_work(wq, &pin);
	flush_work(&pin);
	if (pin_result || pin_self(b->producer_cpu))
		die("cannot pin the threads: %s", strerror(errno));

	kslab_run(wq, items, b->iters);			/* untimed */
	for (rep = 0; rep < b->reps; rep++) {
		long t = kslab_run(wq, items, b->iters);

		if (!rep || t < best)
			best = t;
	}
	destroy_workqueue(wq);
	munmap(items, (size_t)b->iters * sizeof(*items));
	return best;
}

/* ---- naive ------------------------------------------------------------ */

struct naive_work {
	union {
		struct {
			struct naive_work *next;
			void (*func)(struct naive_work *work);
		};
		/* cppcheck-suppress unusedStructMember ; as many bytes as kslab's */
		struct work_struct same_size;
	};
};

struct naive_queue {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct naive_work *head, *tail;
	bool stop;
};

static void naive_queue_work(struct naive_queue *q, struct naive_work *work)
{
	work->next = NULL;
	pthread_mutex_lock(&q->lock);
	if (q->tail)
		q->tail->next = work;
	else
		q->head = work;
	q->tail = work;
	pthread_cond_signal(&q->more);
	pthread_mutex_unlock(&q->lock);
}

static void *naive_consumer(void *arg)
{
	struct naive_queue *q = arg;

	if (pin_self(consumer_cpu))
		die("cannot pin the consumer: %s", strerror(errno));
	pthread_mutex_lock(&q->lock);
	for (;;) {
		struct naive_work *work = q->head;

		if (!work) {
			if (q->stop)
				break;
			pthread_cond_wait(&q->more, &q->lock);
			continue;
		}
		q->head = work->next;
		if (!q->head)
			q->tail = NULL;
		pthread_mutex_unlock(&q->lock);
		work->func(work);
		pthread_mutex_lock(&q->lock);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

static void naive_item_fn(struct naive_work *work)
{
	(void)work;
	run_item();
}

static long naive_run(struct naive_queue *q, struct naive_work *items, long n)
{
	long start, i;

	start_run(n);
	start = now_ns();
	for (i = 0; i < n; i++)
		naive_queue_work(q, &items[i]);
	/* the end time is read at the last item: this wait is not timed */
	while (!__atomic_load_n(&finished, __ATOMIC_ACQUIRE))
		usleep(100);
	return end_ns - start;
}

static long naive_bench(struct wq_bench *b)
{
	struct naive_queue q = { .head = NULL };
	struct naive_work *items;
	pthread_t consumer;
	long best = 0, i;
	int rep;

	pthread_mutex_init(&q.lock, NULL);
	pthread_cond_init(&q.more, NULL);
	items = map_items((size_t)b->iters * sizeof(*items));
	for (i = 0; i < b->iters; i++)
		items[i].func = naive_item_fn;

	consumer_cpu = b->consumer_cpu;
	if (pthread_create(&consumer, NULL, naive_consumer, &q))
		die("cannot start the consumer");
	if (pin_self(b->producer_cpu))
		die("cannot pin the producer: %s", strerror(errno));

	naive_run(&q, items, b->iters);			/* untimed */
	for (rep = 0; rep < b->reps; rep++) {
		long t = naive_run(&q, items, b->iters);

		if (!rep || t < best)
			best = t;
	}
	pthread_mutex_lock(&q.lock);
	q.stop = true;
	pthread_cond_signal(&q.more);
	pthread_mutex_unlock(&q.lock);
	pthread_join(consumer, NULL);
	munmap(items, (size_t)b->iters * sizeof(*items));
	return best;
}

/* ---- command line ----------------------------------------------------- */

static void print_help(FILE *f)
{
	fputs("usage: wq_bench --impl=kslab|naive [--iters N] [--reps R]\n"
	      "  --impl   kslab: an ordered workqueue of <kslab/workqueue.h>;\n"
	      "           naive: a mutex + condition variable FIFO, one consumer\n"
	      "  --iters  work items per repetition (default 2000000)\n"
	      "  --reps   timed repetitions, the best is reported (default 3)\n",
	      f);
}

static long parse_count(const char *arg, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 0);
	if (errno || end == arg || *end || v <= 0 || v > (1L << 32))
		die("bad %s '%s'", what, arg);
	return v;
}

static void parse_args(struct wq_bench *b, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "impl", required_argument, NULL, 'i' },
		{ "iters", required_argument, NULL, 'n' },
		{ "reps", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *impl = NULL;
	int c;

	b->iters = DEFAULT_ITERS;
	b->reps = DEFAULT_REPS;
	while ((c = getopt_long(argc, argv, "i:n:r:h", opts, NULL)) != -1) {
		switch (c) {
		case 'i':
			impl = optarg;
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
	if (!impl || optind != argc) {
		print_help(stderr);
		exit(2);
	}
	if (!strcmp(impl, "kslab"))
		b->impl = IMPL_KSLAB;
	else if (!strcmp(impl, "naive"))
		b->impl = IMPL_NAIVE;
	else
		die("unknown --impl '%s'", impl);
}

int main(int argc, char **argv)
{
	struct wq_bench b;
	long best;

	parse_args(&b, argc, argv);
	choose_cpus(&b);
	if (b.impl == IMPL_KSLAB)
		best = kslab_bench(&b);
	else
		best = naive_bench(&b);

	printf("info test=wq-ordered alloc=%s item_bytes=%zu cpus=%d,%d\n",
	       impl_names[b.impl], sizeof(struct work_struct), b.producer_cpu,
	       b.consumer_cpu);
	printf("result test=wq-ordered alloc=%s impl=%s items_per_s=%.0f ns_per_item=%.2f iters=%ld reps=%d\n",
	       impl_names[b.impl], impl_names[b.impl],
	       (double)b.iters * NSEC_PER_SEC / best, (double)best / b.iters,
	       b.iters, b.reps);
	return 0;
}
