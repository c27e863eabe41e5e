// SPDX-License-Identifier: MIT
/*
 * Workqueues under real threads: ordering of an ordered workqueue (one
 * producer, and several producers at once), pending/queue semantics,
 * re-queueing a running work, flush_work(), cancel_work_sync() of pending
 * and running work, delayed work, flush_workqueue() against a
 * self-requeueing work, drain and destroy, the system workqueues,
 * current_work(), a work function that calls pthread_exit(), worker
 * thread names and lazy start, and fork() (also while another thread
 * queues).  Work functions never ASSERT (the harness unwinds with longjmp
 * on the test thread only): they record, the test asserts.  Every wait is
 * bounded; timing is only checked as "not before the delay", never speed.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <kslab/slab.h>
#include <kslab/workqueue.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define TIMEOUT_MS	60000
#define CHILD_TIMEOUT_MS 10000

#if KSLAB_TEST_TSAN
/*
 * The fork test starts workers in the child of a multi-threaded parent,
 * which ThreadSanitizer refuses by default; the workqueue's own fork
 * handlers are what make that safe, so let it run.
 */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#endif

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Polls @flag until it is set or the deadline passes. */
static bool wait_flag(int *flag, int value)
{
	uint64_t end = mono_ms() + TIMEOUT_MS;

	while (__atomic_load_n(flag, __ATOMIC_ACQUIRE) < value) {
		if (mono_ms() > end)
			return false;
		usleep(1000);
	}
	return true;
}

/* ---- ordering ---------------------------------------------------------- */

#define NR_ORDERED	2000

struct seq_work {
	struct work_struct work;
	int index;
};

static int order_log[NR_ORDERED];
static int order_len;
static int order_running;
static int order_overlap;

static void record_order(struct work_struct *work)
{
	struct seq_work *sw = container_of(work, struct seq_work, work);

	if (__atomic_fetch_add(&order_running, 1, __ATOMIC_RELAXED))
		__atomic_store_n(&order_overlap, 1, __ATOMIC_RELAXED);
	/* only one work runs at a time: the log needs no lock */
	order_log[order_len++] = sw->index;
	__atomic_fetch_sub(&order_running, 1, __ATOMIC_RELAXED);
}

static struct seq_work ordered_items[NR_ORDERED];

static void reset_order(void)
{
	order_len = 0;
	order_overlap = 0;
}

TEST(ordered_workqueue_runs_items_one_at_a_time_in_queueing_order)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("ordered-%d", 0, 1);
	int i;

	ASSERT_NE(NULL, wq);
	reset_order();
	for (i = 0; i < NR_ORDERED; i++) {
		ordered_items[i].index = i;
		INIT_WORK(&ordered_items[i].work, record_order);
		ASSERT_TRUE(queue_work(wq, &ordered_items[i].work));
	}
	flush_workqueue(wq);
	ASSERT_EQ(NR_ORDERED, order_len);
	EXPECT_EQ(0, order_overlap);
	for (i = 0; i < NR_ORDERED; i++)
		ASSERT_EQ(i, order_log[i]);
	destroy_workqueue(wq);
}

/*
 * Several producer threads queue onto one ordered workqueue at once, each
 * its own items in its own order.  Every item must run exactly once and
 * each producer's items in the order it queued them.
 */
#define MP_PRODUCERS	4
#define MP_ITEMS	100000

struct mp_item {
	struct work_struct work;
	int producer;
	int index;
	int runs;
};

struct mp_state {
	struct workqueue_struct *wq;
	struct mp_item *items[MP_PRODUCERS];
	int nr_items;
	pthread_barrier_t start;
	/* written by the one running work at a time */
	int next_index[MP_PRODUCERS];
	int out_of_order;
	int running;
	int overlap;
};

static struct mp_state mp;

static void mp_fn(struct work_struct *work)
{
	struct mp_item *it = container_of(work, struct mp_item, work);

	if (__atomic_fetch_add(&mp.running, 1, __ATOMIC_RELAXED))
		__atomic_store_n(&mp.overlap, 1, __ATOMIC_RELAXED);
	it->runs++;
	if (it->index != mp.next_index[it->producer])
		mp.out_of_order++;
	mp.next_index[it->producer] = it->index + 1;
	__atomic_fetch_sub(&mp.running, 1, __ATOMIC_RELAXED);
}

static void *mp_producer(void *arg)
{
	int p = (int)(intptr_t)arg, i;
	struct mp_item *items = mp.items[p];

	pthread_barrier_wait(&mp.start);
	for (i = 0; i < mp.nr_items; i++)
		queue_work(mp.wq, &items[i].work);
	return NULL;
}

TEST(ordered_workqueue_runs_concurrent_producers_items_once_in_each_producers_order)
{
	pthread_t threads[MP_PRODUCERS];
	int p, i, bad_runs = 0;

	memset(&mp, 0, sizeof(mp));
	mp.nr_items = (int)test_scaled(MP_ITEMS);
	mp.wq = alloc_ordered_workqueue("ordered-mp", 0);
	ASSERT_NE(NULL, mp.wq);
	for (p = 0; p < MP_PRODUCERS; p++) {
		mp.items[p] = calloc((size_t)mp.nr_items, sizeof(struct mp_item));
		ASSERT_NE(NULL, mp.items[p]);
		for (i = 0; i < mp.nr_items; i++) {
			INIT_WORK(&mp.items[p][i].work, mp_fn);
			mp.items[p][i].producer = p;
			mp.items[p][i].index = i;
		}
	}
	ASSERT_EQ(0, pthread_barrier_init(&mp.start, NULL, MP_PRODUCERS));
	for (p = 0; p < MP_PRODUCERS; p++)
		ASSERT_EQ(0, pthread_create(&threads[p], NULL, mp_producer,
					    (void *)(intptr_t)p));
	for (p = 0; p < MP_PRODUCERS; p++)
		ASSERT_EQ(0, join_thread_within(threads[p], TIMEOUT_MS));
	flush_workqueue(mp.wq);

	for (p = 0; p < MP_PRODUCERS; p++) {
		for (i = 0; i < mp.nr_items; i++)
			bad_runs += mp.items[p][i].runs != 1;
		EXPECT_EQ(mp.nr_items, mp.next_index[p]);
	}
	EXPECT_EQ(0, bad_runs);
	EXPECT_EQ(0, mp.out_of_order);
	EXPECT_EQ(0, mp.overlap);
	destroy_workqueue(mp.wq);
	pthread_barrier_destroy(&mp.start);
	for (p = 0; p < MP_PRODUCERS; p++)
		free(mp.items[p]);
}

/* ---- a gate: a work that blocks until the test opens it -------------- */

struct gate_work {
	struct work_struct work;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int started;
	int runs;
};

static void gate_fn(struct work_struct *work)
{
	struct gate_work *g = container_of(work, struct gate_work, work);

	__atomic_fetch_add(&g->started, 1, __ATOMIC_RELEASE);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	__atomic_fetch_add(&g->runs, 1, __ATOMIC_RELEASE);
}

static void gate_init(struct gate_work *g)
{
	memset(g, 0, sizeof(*g));
	INIT_WORK(&g->work, gate_fn);
	pthread_mutex_init(&g->lock, NULL);
	pthread_cond_init(&g->cond, NULL);
}

static void gate_open(struct gate_work *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void *open_later(void *arg)
{
	usleep(50000);
	gate_open(arg);
	return NULL;
}

static int simple_runs;

static void count_fn(struct work_struct *work)
{
	__atomic_fetch_add(&simple_runs, 1, __ATOMIC_RELEASE);
}

TEST(queue_work_returns_false_while_pending_and_runs_once)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("pending", 0);
	struct gate_work blocker;
	struct work_struct w;

	ASSERT_NE(NULL, wq);
	gate_init(&blocker);
	INIT_WORK(&w, count_fn);
	simple_runs = 0;
	ASSERT_TRUE(queue_work(wq, &blocker.work));
	ASSERT_TRUE(queue_work(wq, &w));
	EXPECT_FALSE(queue_work(wq, &w));
	EXPECT_FALSE(queue_work(wq, &w));
	gate_open(&blocker);
	flush_workqueue(wq);
	EXPECT_EQ(1, simple_runs);
	destroy_workqueue(wq);
}

TEST(flush_work_waits_and_reports_whether_it_waited)
{
	struct workqueue_struct *wq = alloc_workqueue("flushw", 0, 0);
	struct gate_work g;
	pthread_t opener;

	ASSERT_NE(NULL, wq);
	gate_init(&g);
	EXPECT_FALSE(flush_work(&g.work));
	ASSERT_TRUE(queue_work(wq, &g.work));
	ASSERT_EQ(0, pthread_create(&opener, NULL, open_later, &g));
	EXPECT_TRUE(flush_work(&g.work));
	EXPECT_EQ(1, __atomic_load_n(&g.runs, __ATOMIC_ACQUIRE));
	EXPECT_FALSE(flush_work(&g.work));
	ASSERT_EQ(0, pthread_join(opener, NULL));
	destroy_workqueue(wq);
}

TEST(cancel_work_sync_of_pending_work_never_runs_it)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("cancelp", 0);
	struct gate_work blocker;
	struct work_struct w;

	ASSERT_NE(NULL, wq);
	gate_init(&blocker);
	INIT_WORK(&w, count_fn);
	simple_runs = 0;
	ASSERT_TRUE(queue_work(wq, &blocker.work));
	ASSERT_TRUE(queue_work(wq, &w));
	EXPECT_TRUE(cancel_work_sync(&w));
	EXPECT_FALSE(cancel_work_sync(&w));
	gate_open(&blocker);
	flush_workqueue(wq);
	EXPECT_EQ(0, simple_runs);
	destroy_workqueue(wq);
}

TEST(cancel_work_sync_waits_for_running_work)
{
	struct workqueue_struct *wq = alloc_workqueue("cancelr", 0, 2);
	struct gate_work g;
	pthread_t opener;

	ASSERT_NE(NULL, wq);
	gate_init(&g);
	ASSERT_TRUE(queue_work(wq, &g.work));
	ASSERT_TRUE(wait_flag(&g.started, 1));
	ASSERT_EQ(0, pthread_create(&opener, NULL, open_later, &g));
	EXPECT_FALSE(cancel_work_sync(&g.work));
	EXPECT_EQ(1, __atomic_load_n(&g.runs, __ATOMIC_ACQUIRE));
	ASSERT_EQ(0, pthread_join(opener, NULL));
	destroy_workqueue(wq);
}

/* ---- delayed work ------------------------------------------------------ */

struct timed_work {
	struct delayed_work dwork;
	uint64_t ran_at;
	int runs;
};

static void timed_fn(struct work_struct *work)
{
	struct timed_work *t = container_of(to_delayed_work(work),
					    struct timed_work, dwork);

	__atomic_store_n(&t->ran_at, mono_ms(), __ATOMIC_RELAXED);
	__atomic_fetch_add(&t->runs, 1, __ATOMIC_RELEASE);
}

TEST(delayed_work_runs_after_its_delay)
{
	struct timed_work t = { 0 };
	uint64_t start;

	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	start = mono_ms();
	ASSERT_TRUE(queue_delayed_work(system_wq, &t.dwork,
				       msecs_to_jiffies(100)));
	EXPECT_FALSE(queue_delayed_work(system_wq, &t.dwork, 1));
	ASSERT_TRUE(wait_flag(&t.runs, 1));
	EXPECT_GE(__atomic_load_n(&t.ran_at, __ATOMIC_RELAXED) - start, 100);
	EXPECT_FALSE(cancel_delayed_work_sync(&t.dwork));
}

TEST(mod_delayed_work_rearms_pending_work)
{
	struct timed_work t = { 0 };
	uint64_t start;

	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	ASSERT_TRUE(queue_delayed_work(system_wq, &t.dwork, 50));
	start = mono_ms();
	/* the kernel's answer: true, it was pending and has been re-armed */
	EXPECT_TRUE(mod_delayed_work(system_wq, &t.dwork, 300));
	ASSERT_TRUE(wait_flag(&t.runs, 1));
	EXPECT_GE(__atomic_load_n(&t.ran_at, __ATOMIC_RELAXED) - start, 300);
	EXPECT_EQ(1, __atomic_load_n(&t.runs, __ATOMIC_ACQUIRE));
	/* and false when it was idle and is now queued */
	EXPECT_FALSE(mod_delayed_work(system_wq, &t.dwork, 0));
	ASSERT_TRUE(wait_flag(&t.runs, 2));
	cancel_delayed_work_sync(&t.dwork);
}

TEST(cancel_delayed_work_sync_stops_an_armed_timer)
{
	struct timed_work t = { 0 };

	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	ASSERT_TRUE(queue_delayed_work(system_wq, &t.dwork, 100));
	EXPECT_TRUE(cancel_delayed_work_sync(&t.dwork));
	usleep(200000);
	EXPECT_EQ(0, __atomic_load_n(&t.runs, __ATOMIC_ACQUIRE));
	EXPECT_FALSE(cancel_delayed_work_sync(&t.dwork));
}

TEST(flush_delayed_work_runs_it_at_once)
{
	struct timed_work t = { 0 };
	uint64_t start;

	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	start = mono_ms();
	ASSERT_TRUE(queue_delayed_work(system_unbound_wq, &t.dwork,
				       msecs_to_jiffies(3600 * 1000)));
	EXPECT_TRUE(flush_delayed_work(&t.dwork));
	EXPECT_EQ(1, __atomic_load_n(&t.runs, __ATOMIC_ACQUIRE));
	EXPECT_LT(mono_ms() - start, TIMEOUT_MS);
}

TEST(init_delayed_work_makes_a_reused_delayed_work_idle)
{
	struct timed_work t;

	memset(&t, 0xa5, sizeof(t));
	t.runs = 0;
	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	EXPECT_FALSE(cancel_delayed_work_sync(&t.dwork));
	EXPECT_FALSE(flush_delayed_work(&t.dwork));
	ASSERT_TRUE(queue_delayed_work(system_wq, &t.dwork, 1));
	ASSERT_TRUE(wait_flag(&t.runs, 1));
	EXPECT_FALSE(cancel_delayed_work_sync(&t.dwork));
}

/* ---- flush, drain, destroy -------------------------------------------- */

static struct workqueue_struct *requeue_wq;
static int requeue_runs;

static void requeue_fn(struct work_struct *work)
{
	__atomic_fetch_add(&requeue_runs, 1, __ATOMIC_RELEASE);
	usleep(100);
	queue_work(requeue_wq, work);
}

TEST(flush_workqueue_is_not_livelocked_by_self_requeueing_work)
{
	struct work_struct w;
	int before;

	requeue_wq = alloc_workqueue("requeue", 0, 0);
	ASSERT_NE(NULL, requeue_wq);
	requeue_runs = 0;
	INIT_WORK(&w, requeue_fn);
	ASSERT_TRUE(queue_work(requeue_wq, &w));
	ASSERT_TRUE(wait_flag(&requeue_runs, 3));
	flush_workqueue(requeue_wq);
	before = __atomic_load_n(&requeue_runs, __ATOMIC_ACQUIRE);
	/* it keeps going after the flush returned */
	ASSERT_TRUE(wait_flag(&requeue_runs, before + 3));
	cancel_work_sync(&w);
	before = __atomic_load_n(&requeue_runs, __ATOMIC_ACQUIRE);
	usleep(20000);
	EXPECT_EQ(before, __atomic_load_n(&requeue_runs, __ATOMIC_ACQUIRE));
	destroy_workqueue(requeue_wq);
}

#define CHAIN_LEN	100

struct chain_work {
	struct work_struct work;
	struct workqueue_struct *wq;
	int left;
	int runs;
};

static void chain_fn(struct work_struct *work)
{
	struct chain_work *c = container_of(work, struct chain_work, work);

	c->runs++;
	if (--c->left > 0)
		queue_work(c->wq, work);
}

TEST(drain_workqueue_waits_for_chained_work)
{
	struct chain_work c;

	c.wq = alloc_workqueue("drain", 0, 4);
	ASSERT_NE(NULL, c.wq);
	c.left = CHAIN_LEN;
	c.runs = 0;
	INIT_WORK(&c.work, chain_fn);
	ASSERT_TRUE(queue_work(c.wq, &c.work));
	drain_workqueue(c.wq);
	EXPECT_EQ(CHAIN_LEN, c.runs);
	EXPECT_EQ(0, c.left);
	destroy_workqueue(c.wq);
}

TEST(destroy_workqueue_drains_first)
{
	struct workqueue_struct *wq = alloc_workqueue("destroy", 0, 3);
	struct work_struct works[64];
	struct chain_work c;
	int i;

	ASSERT_NE(NULL, wq);
	simple_runs = 0;
	for (i = 0; i < 64; i++) {
		INIT_WORK(&works[i], count_fn);
		ASSERT_TRUE(queue_work(wq, &works[i]));
	}
	c.wq = wq;
	c.left = CHAIN_LEN;
	c.runs = 0;
	INIT_WORK(&c.work, chain_fn);
	ASSERT_TRUE(queue_work(wq, &c.work));
	destroy_workqueue(wq);
	EXPECT_EQ(64, simple_runs);
	EXPECT_EQ(CHAIN_LEN, c.runs);
	destroy_workqueue(NULL);
}

TEST(system_workqueues_run_work)
{
	struct work_struct a, b;

	ASSERT_NE(NULL, system_wq);
	ASSERT_NE(NULL, system_unbound_wq);
	simple_runs = 0;
	INIT_WORK(&a, count_fn);
	INIT_WORK(&b, count_fn);
	ASSERT_TRUE(queue_work(system_wq, &a));
	ASSERT_TRUE(queue_work(system_unbound_wq, &b));
	flush_work(&a);
	flush_workqueue(system_unbound_wq);
	EXPECT_EQ(2, __atomic_load_n(&simple_runs, __ATOMIC_ACQUIRE));
}

/* ---- re-queueing a running work ----------------------------------------- */

/*
 * A work that blocks on its first run until the test lets it go, and logs
 * every run (and the runs of a second work) in order.
 */
struct rerun_work {
	struct work_struct work;
	struct gate_work *gate;		/* the first run waits for it */
	int runs;
	int running;
	int overlap;
};

static int rerun_log[8];
static int rerun_len;

static void rerun_fn(struct work_struct *work)
{
	struct rerun_work *r = container_of(work, struct rerun_work, work);

	if (__atomic_fetch_add(&r->running, 1, __ATOMIC_ACQ_REL))
		__atomic_store_n(&r->overlap, 1, __ATOMIC_RELAXED);
	if (__atomic_fetch_add(&r->runs, 1, __ATOMIC_ACQ_REL) == 0)
		gate_fn(&r->gate->work);
	if (rerun_len < 8)
		rerun_log[rerun_len++] = 1;
	__atomic_fetch_sub(&r->running, 1, __ATOMIC_ACQ_REL);
}

static void rerun_other_fn(struct work_struct *work)
{
	if (rerun_len < 8)
		rerun_log[rerun_len++] = 2;
}

TEST(queue_work_on_a_running_work_runs_it_again_after_the_current_run)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("requeue-run", 0);
	struct rerun_work r = { 0 };
	struct work_struct other;
	struct gate_work gate;

	ASSERT_NE(NULL, wq);
	gate_init(&gate);
	r.gate = &gate;
	rerun_len = 0;
	INIT_WORK(&r.work, rerun_fn);
	INIT_WORK(&other, rerun_other_fn);
	ASSERT_TRUE(queue_work(wq, &r.work));
	ASSERT_TRUE(wait_flag(&gate.started, 1));
	/* running, not pending: queued again; then pending */
	EXPECT_TRUE(queue_work(wq, &r.work));
	EXPECT_FALSE(queue_work(wq, &r.work));
	ASSERT_TRUE(queue_work(wq, &other));
	gate_open(&gate);
	flush_workqueue(wq);
	EXPECT_EQ(2, __atomic_load_n(&r.runs, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, r.overlap);
	ASSERT_EQ(3, rerun_len);
	EXPECT_EQ(1, rerun_log[0]);
	EXPECT_EQ(1, rerun_log[1]);
	EXPECT_EQ(2, rerun_log[2]);
	destroy_workqueue(wq);
}

TEST(running_work_queued_again_never_runs_on_two_workers_at_once)
{
	struct workqueue_struct *wq = alloc_workqueue("requeue-multi", 0, 4);
	struct rerun_work r = { 0 };
	struct gate_work gate;
	int i;

	ASSERT_NE(NULL, wq);
	gate_init(&gate);
	r.gate = &gate;
	rerun_len = 0;
	INIT_WORK(&r.work, rerun_fn);
	ASSERT_TRUE(queue_work(wq, &r.work));
	ASSERT_TRUE(wait_flag(&gate.started, 1));
	EXPECT_TRUE(queue_work(wq, &r.work));
	/* three idle-able workers could take it: none may while it runs */
	for (i = 0; i < 20; i++) {
		usleep(1000);
		EXPECT_EQ(1, __atomic_load_n(&r.runs, __ATOMIC_ACQUIRE));
	}
	gate_open(&gate);
	flush_work(&r.work);
	EXPECT_EQ(2, __atomic_load_n(&r.runs, __ATOMIC_ACQUIRE));
	EXPECT_EQ(0, r.overlap);
	destroy_workqueue(wq);
}

/* ---- current_work() ------------------------------------------------------ */

struct current_probe {
	struct work_struct work;
	struct work_struct *seen;
	int done;
};

static void current_probe_fn(struct work_struct *work)
{
	struct current_probe *c = container_of(work, struct current_probe, work);

	c->seen = current_work();
	__atomic_store_n(&c->done, 1, __ATOMIC_RELEASE);
}

static void empty_fn(struct work_struct *work)
{
}

TEST(current_work_is_the_running_work_and_null_outside_work)
{
	struct current_probe a = { .seen = NULL }, b = { .seen = NULL };
	struct work_struct idle;

	EXPECT_EQ(NULL, current_work());
	INIT_WORK(&a.work, current_probe_fn);
	INIT_WORK(&b.work, current_probe_fn);
	INIT_WORK(&idle, empty_fn);
	ASSERT_TRUE(queue_work(system_wq, &a.work));
	ASSERT_TRUE(queue_work(system_unbound_wq, &b.work));
	flush_work(&a.work);
	flush_work(&b.work);
	ASSERT_EQ(1, __atomic_load_n(&a.done, __ATOMIC_ACQUIRE));
	ASSERT_EQ(1, __atomic_load_n(&b.done, __ATOMIC_ACQUIRE));
	EXPECT_EQ(&a.work, a.seen);
	EXPECT_EQ(&b.work, b.seen);
	EXPECT_EQ(NULL, current_work());
}

/* ---- a work function that calls pthread_exit() -------------------------- */

#define EXIT_LOG_LEN	16

struct exit_state {
	struct workqueue_struct *wq;
	int log[EXIT_LOG_LEN];
	int len;			/* released after each entry */
	pid_t tid[EXIT_LOG_LEN];
};

static struct exit_state ex;

struct exit_item {
	struct work_struct work;
	int index;
};

static void exit_log(int index)
{
	int n = ex.len;

	if (n < EXIT_LOG_LEN) {
		ex.tid[n] = (pid_t)syscall(SYS_gettid);
		ex.log[n] = index;
		__atomic_store_n(&ex.len, n + 1, __ATOMIC_RELEASE);
	}
}

static void exit_log_fn(struct work_struct *work)
{
	exit_log(container_of(work, struct exit_item, work)->index);
}

static void wq_test_exit_fn(struct work_struct *work)
{
	exit_log(container_of(work, struct exit_item, work)->index);
	pthread_exit(NULL);
}

TEST(work_calling_pthread_exit_is_reported_and_the_queue_goes_on_in_order)
{
	struct exit_item items[6];
	struct stderr_capture cap;
	const char *text;
	int i, captured;

	memset(&ex, 0, sizeof(ex));
	ex.wq = alloc_ordered_workqueue("exit-order", 0);
	ASSERT_NE(NULL, ex.wq);
	for (i = 0; i < 6; i++) {
		items[i].index = i;
		INIT_WORK(&items[i].work, i == 2 ? wq_test_exit_fn : exit_log_fn);
	}
	captured = stderr_capture_begin(&cap);
	for (i = 0; i < 6; i++)
		queue_work(ex.wq, &items[i].work);
	/* no flush: a new worker must take over by itself */
	wait_flag(&ex.len, 6);
	text = stderr_capture_end(&cap);
	ASSERT_EQ(0, captured);

	ASSERT_EQ(6, __atomic_load_n(&ex.len, __ATOMIC_ACQUIRE));
	for (i = 0; i < 6; i++)
		EXPECT_EQ(i, ex.log[i]);
	/* the items after the exit ran on another thread */
	EXPECT_EQ(ex.tid[0], ex.tid[2]);
	EXPECT_NE(ex.tid[2], ex.tid[3]);
	EXPECT_TEXT_CONTAINS(text, "kslab: workqueue exit-order: work function ");
	EXPECT_TEXT_CONTAINS(text, "() called pthread_exit(); worker replaced\n");
	/* a static function: named from the program's .symtab */
	EXPECT_TEXT_CONTAINS(text, "work function wq_test_exit_fn() called");
	/* one line, once */
	EXPECT_EQ(NULL, strstr(strstr(text, "pthread_exit") + 1, "pthread_exit"));
	stderr_capture_release(&cap);
	/* it is finished: nothing to wait for, and it can be queued again */
	EXPECT_FALSE(flush_work(&items[2].work));
	INIT_WORK(&items[2].work, exit_log_fn);
	EXPECT_TRUE(queue_work(ex.wq, &items[2].work));
	flush_workqueue(ex.wq);
	EXPECT_EQ(7, __atomic_load_n(&ex.len, __ATOMIC_ACQUIRE));
	destroy_workqueue(ex.wq);
}

/*
 * The finalizer's pattern: the work function pushes a cleanup handler
 * that re-queues the work while it is still running, then exits.  The
 * re-queued work must run again, on the new worker.
 */
struct requeue_on_exit {
	struct work_struct work;
	struct workqueue_struct *wq;
	int runs;			/* released after each run */
	int requeued;
	struct work_struct *current_in_handler;
	pid_t tid[2];
};

static void requeue_on_exit_handler(void *arg)
{
	struct requeue_on_exit *r = arg;

	r->current_in_handler = current_work();
	r->requeued = queue_work(r->wq, &r->work);
}

static void requeue_on_exit_fn(struct work_struct *work)
{
	struct requeue_on_exit *r = container_of(work, struct requeue_on_exit, work);
	int run = r->runs;

	r->tid[run < 2 ? run : 1] = (pid_t)syscall(SYS_gettid);
	__atomic_store_n(&r->runs, run + 1, __ATOMIC_RELEASE);
	if (run)
		return;
	pthread_cleanup_push(requeue_on_exit_handler, r);
	pthread_exit(NULL);
	pthread_cleanup_pop(0);
}

TEST(work_requeued_by_a_cleanup_handler_during_pthread_exit_runs_on_the_new_worker)
{
	struct requeue_on_exit r = { .runs = 0 };
	struct stderr_capture cap;
	const char *text;
	int captured;

	r.wq = alloc_ordered_workqueue("exit-requeue", 0);
	ASSERT_NE(NULL, r.wq);
	INIT_WORK(&r.work, requeue_on_exit_fn);
	captured = stderr_capture_begin(&cap);
	queue_work(r.wq, &r.work);
	/* no flush: a new worker must take over by itself */
	wait_flag(&r.runs, 2);
	flush_work(&r.work);
	text = stderr_capture_end(&cap);
	ASSERT_EQ(0, captured);
	EXPECT_TEXT_CONTAINS(text,
			     "kslab: workqueue exit-requeue: work function requeue_on_exit_fn() called pthread_exit()");
	stderr_capture_release(&cap);
	EXPECT_EQ(1, r.requeued);
	EXPECT_EQ(&r.work, r.current_in_handler);
	EXPECT_EQ(2, __atomic_load_n(&r.runs, __ATOMIC_ACQUIRE));
	EXPECT_NE(r.tid[0], r.tid[1]);
	destroy_workqueue(r.wq);
}

/* ---- thread names ------------------------------------------------------ */

static bool thread_named(const char *name)
{
	char path[300], comm[64];
	struct dirent *de;
	bool found = false;
	DIR *dir = opendir("/proc/self/task");

	if (!dir)
		return false;
	while (!found && (de = readdir(dir))) {
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/self/task/%s/comm", de->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f)) {
			comm[strcspn(comm, "\n")] = '\0';
			found = !strcmp(comm, name);
		}
		fclose(f);
	}
	closedir(dir);
	return found;
}

/* ---- lockup watchdog --------------------------------------------------- */

#define WQ_CHILD_ENV	"KSLAB_TEST_WQ_CHILD"

static void stuck_fn(struct work_struct *work)
{
	(void)work;
	usleep(700 * 1000);
}

/*
 * Re-executed with KSLAB_WQ_WATCHDOG_MS=100 (options are read once at
 * start-up): a work on a program's own workqueue that runs 700 ms.
 */
static void __attribute__((constructor)) wq_child_main(void)
{
	const char *mode = getenv(WQ_CHILD_ENV);
	struct workqueue_struct *wq;
	struct work_struct w;

	if (!mode)
		return;
	wq = alloc_workqueue("stuck-wq", 0, 0);
	if (!wq)
		_exit(2);
	INIT_WORK(&w, stuck_fn);
	queue_work(wq, &w);
	flush_work(&w);
	destroy_workqueue(wq);
	_exit(0);
}

TEST(watchdog_names_a_stuck_work_of_any_workqueue_once)
{
	const char *tsan = getenv("TSAN_OPTIONS");
	char *envp[4] = { NULL };
	FILE *err = tmpfile();
	char tsan_var[256];
	char *text;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, err);
	envp[0] = WQ_CHILD_ENV "=stuck";
	envp[1] = "KSLAB_WQ_WATCHDOG_MS=100";
	if (tsan) {
		snprintf(tsan_var, sizeof(tsan_var), "TSAN_OPTIONS=%s", tsan);
		envp[2] = tsan_var;
	}
	fflush(stderr);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		if (dup2(fileno(err), STDERR_FILENO) < 0)
			_exit(126);
		execle("/proc/self/exe", "workqueue_test", (char *)NULL, envp);
		_exit(127);
	}
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
	text = file_text(err);
	ASSERT_NE(NULL, text);
	EXPECT_TEXT_CONTAINS(text,
			     "kslab: BUG: workqueue lockup: stuck-wq: work function stuck_fn() running for ");
	EXPECT_EQ(1, text_count(text, "workqueue lockup"))
		TH_LOG("%s", text);
	free(text);
	fclose(err);
}

TEST(worker_threads_carry_the_workqueue_name)
{
	struct workqueue_struct *wq =
		alloc_workqueue("kslab-named-%s", 0, 1, "workqueue");
	struct work_struct w;

	ASSERT_NE(NULL, wq);
	INIT_WORK(&w, count_fn);
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);
	/* 15 characters: the kernel's TASK_COMM_LEN less the NUL */
	EXPECT_TRUE(thread_named("kslab-named-wor"));
	destroy_workqueue(wq);
}

static void exit_now_fn(struct work_struct *work)
{
	pthread_exit(NULL);
}

TEST(replacement_worker_carries_the_workqueue_name)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("kslab-renamed", 0);
	struct stderr_capture cap;
	struct work_struct dies, after;
	int captured;

	ASSERT_NE(NULL, wq);
	INIT_WORK(&dies, exit_now_fn);
	INIT_WORK(&after, count_fn);
	captured = stderr_capture_begin(&cap);
	queue_work(wq, &dies);
	queue_work(wq, &after);
	flush_workqueue(wq);
	stderr_capture_end(&cap);
	stderr_capture_release(&cap);
	ASSERT_EQ(0, captured);
	EXPECT_TRUE(thread_named("kslab-renamed"));
	destroy_workqueue(wq);
}

TEST(workers_start_when_work_is_first_queued)
{
	struct workqueue_struct *wq = alloc_workqueue("kslab-lazy", 0, 4);
	struct work_struct w;

	ASSERT_NE(NULL, wq);
	EXPECT_FALSE(thread_named("kslab-lazy"));
	flush_workqueue(wq);
	EXPECT_FALSE(thread_named("kslab-lazy"));
	INIT_WORK(&w, count_fn);
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);
	EXPECT_TRUE(thread_named("kslab-lazy"));
	destroy_workqueue(wq);
	EXPECT_FALSE(thread_named("kslab-lazy"));
}

TEST(system_workqueue_workers_are_named_events)
{
	struct work_struct a, b;

	INIT_WORK(&a, count_fn);
	INIT_WORK(&b, count_fn);
	ASSERT_TRUE(queue_work(system_wq, &a));
	ASSERT_TRUE(queue_work(system_unbound_wq, &b));
	flush_work(&a);
	flush_work(&b);
	EXPECT_TRUE(thread_named("events"));
	EXPECT_TRUE(thread_named("events_unbound"));
}

/* ---- fork -------------------------------------------------------------- */

static int child_checks(struct workqueue_struct *old)
{
	struct workqueue_struct *wq;
	struct work_struct a, b;

	simple_runs = 0;
	INIT_WORK(&a, count_fn);
	INIT_WORK(&b, count_fn);
	if (!queue_work(old, &a))
		return 1;
	flush_workqueue(old);
	wq = alloc_workqueue("child", 0, 0);
	if (!wq)
		return 2;
	if (!queue_work(wq, &b))
		return 3;
	if (!flush_work(&b) && __atomic_load_n(&simple_runs, __ATOMIC_ACQUIRE) != 2)
		return 4;
	destroy_workqueue(wq);
	if (__atomic_load_n(&simple_runs, __ATOMIC_ACQUIRE) != 2)
		return 5;
	return 0;
}

TEST(child_of_fork_can_queue_and_flush_work)
{
	struct workqueue_struct *wq = alloc_workqueue("prefork", 0, 2);
	struct work_struct w;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, wq);
	INIT_WORK(&w, count_fn);
	/* the workers exist in the parent before the fork */
	ASSERT_TRUE(queue_work(wq, &w));
	flush_workqueue(wq);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_checks(wq));
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	/* and the parent's workers still serve it */
	ASSERT_TRUE(queue_work(wq, &w));
	flush_workqueue(wq);
	destroy_workqueue(wq);
}

TEST(child_of_fork_runs_delayed_work_armed_before_the_fork)
{
	struct workqueue_struct *wq = alloc_workqueue("fork-timer", 0, 0);
	struct timed_work t = { 0 };
	int status;
	pid_t pid;

	ASSERT_NE(NULL, wq);
	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	ASSERT_TRUE(queue_delayed_work(wq, &t.dwork, msecs_to_jiffies(100)));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(wait_flag(&t.runs, 1) ? 0 : 1);
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status));
	cancel_delayed_work_sync(&t.dwork);
	destroy_workqueue(wq);
}

/*
 * A thread that has kslab state (magazines of a cache) is alive at the
 * fork, and a delayed work is armed, so the child starts the workqueue's
 * timer thread.  The C library gives that new thread the stack of a thread
 * the child lacks, and with it the TLS where kslab kept that thread's
 * state: the child must have given that state back before any thread
 * starts, or it reads it wiped.
 */
struct holder {
	struct kmem_cache *s;
	void *objs[64];
	int ready;
	int stop;
};

static void *hold_magazines(void *arg)
{
	struct holder *h = arg;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(h->objs); i++)
		h->objs[i] = kmem_cache_alloc(h->s, GFP_KERNEL);
	/* half of them back into this thread's magazine */
	for (i = 0; i < ARRAY_SIZE(h->objs) / 2; i++)
		kmem_cache_free(h->s, h->objs[i]);
	__atomic_store_n(&h->ready, 1, __ATOMIC_RELEASE);
	wait_flag(&h->stop, 1);
	for (; i < ARRAY_SIZE(h->objs); i++)
		kmem_cache_free(h->s, h->objs[i]);
	return NULL;
}

static int child_after_holder_fork(struct holder *h, struct timed_work *t)
{
	unsigned int i;

	/* the timer thread started: the delayed work fires here too */
	if (!wait_flag(&t->runs, 1))
		return 1;
	/* the dead holder's magazine came back to the cache */
	for (i = ARRAY_SIZE(h->objs) / 2; i < ARRAY_SIZE(h->objs); i++)
		kmem_cache_free(h->s, h->objs[i]);
	kmem_cache_destroy(h->s);
	return 0;
}

TEST(child_of_fork_gives_back_dead_threads_state_before_starting_threads)
{
	struct holder h = { .s = kmem_cache_create("wq-fork-holder", 64, 0, 0,
						   NULL) };
	struct timed_work t = { 0 };
	pthread_t tid;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, h.s);
	ASSERT_EQ(0, pthread_create(&tid, NULL, hold_magazines, &h));
	ASSERT_TRUE(wait_flag(&h.ready, 1));
	INIT_DELAYED_WORK(&t.dwork, timed_fn);
	ASSERT_TRUE(queue_delayed_work(system_wq, &t.dwork, msecs_to_jiffies(50)));
	fflush(stderr);
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_after_holder_fork(&h, &t));
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
	cancel_delayed_work_sync(&t.dwork);
	__atomic_store_n(&h.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, pthread_join(tid, NULL));
	kmem_cache_destroy(h.s);
}

/*
 * A work queued behind a running one when the process forks: the running
 * one does not exist in the child, the queued one runs there without any
 * further call (the child handler starts a worker for it).
 */
TEST(child_of_fork_runs_work_queued_before_the_fork)
{
	struct workqueue_struct *wq = alloc_ordered_workqueue("fork-queued", 0);
	struct work_struct w;
	struct gate_work g;
	int status;
	pid_t pid;

	ASSERT_NE(NULL, wq);
	gate_init(&g);
	INIT_WORK(&w, count_fn);
	simple_runs = 0;
	ASSERT_TRUE(queue_work(wq, &g.work));
	ASSERT_TRUE(wait_flag(&g.started, 1));
	ASSERT_TRUE(queue_work(wq, &w));
	pid = fork();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(wait_flag(&simple_runs, 1) ? 0 : 1);
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status));
	/* in the parent it still waits behind the gate */
	EXPECT_EQ(0, __atomic_load_n(&simple_runs, __ATOMIC_ACQUIRE));
	gate_open(&g);
	flush_workqueue(wq);
	EXPECT_EQ(1, __atomic_load_n(&simple_runs, __ATOMIC_ACQUIRE));
	destroy_workqueue(wq);
}

/*
 * A thread queues and cancels one work as fast as it can while the test
 * forks: whatever state the fork caught the work in (being queued, on the
 * inbox, on the worklist, running, held by the cancel), the child must be
 * able to cancel it, queue it and see it run.
 */
struct fork_race {
	struct workqueue_struct *wq;
	struct work_struct work;
	int stop;
	int runs;
};

static struct fork_race fr;

static void fork_race_fn(struct work_struct *work)
{
	__atomic_fetch_add(&fr.runs, 1, __ATOMIC_RELAXED);
}

static void *fork_race_queuer(void *arg)
{
	while (!__atomic_load_n(&fr.stop, __ATOMIC_ACQUIRE)) {
		queue_work(fr.wq, &fr.work);
		if (!(__atomic_load_n(&fr.runs, __ATOMIC_RELAXED) & 7))
			cancel_work_sync(&fr.work);
	}
	return arg;
}

static int fork_race_child(void)
{
	cancel_work_sync(&fr.work);
	__atomic_store_n(&fr.runs, 0, __ATOMIC_RELAXED);
	if (!queue_work(fr.wq, &fr.work))
		return 1;
	flush_work(&fr.work);
	if (__atomic_load_n(&fr.runs, __ATOMIC_RELAXED) != 1)
		return 2;
	if (!queue_work(fr.wq, &fr.work))
		return 3;
	flush_workqueue(fr.wq);
	return __atomic_load_n(&fr.runs, __ATOMIC_RELAXED) == 2 ? 0 : 4;
}

TEST(child_of_fork_during_concurrent_queueing_can_use_the_same_work)
{
	int forks = KSLAB_TEST_SANITIZED ? 10 : 100, i, status, failed = 0;
	pthread_t queuer;

	memset(&fr, 0, sizeof(fr));
	fr.wq = alloc_ordered_workqueue("fork-race", 0);
	ASSERT_NE(NULL, fr.wq);
	INIT_WORK(&fr.work, fork_race_fn);
	ASSERT_EQ(0, pthread_create(&queuer, NULL, fork_race_queuer, NULL));
	/*
	 * Fork only once the queuer and the worker run: a thread that is
	 * still starting may hold the sanitizers' allocator lock, which
	 * gcc 12's libasan does not take around fork().
	 */
	ASSERT_TRUE(wait_flag(&fr.runs, 1));
	for (i = 0; i < forks; i++) {
		pid_t pid = fork();

		ASSERT_GE(pid, 0);
		if (pid == 0)
			_exit(fork_race_child());
		/* well within the harness's 30 s, so a stuck child is named */
		if (wait_child(pid, CHILD_TIMEOUT_MS, &status) ||
		    !child_exited_cleanly(status)) {
			TH_LOG("fork %d: child stuck or failed (status %#x)",
			       i, status);
			failed++;
			break;
		}
	}
	__atomic_store_n(&fr.stop, 1, __ATOMIC_RELEASE);
	ASSERT_EQ(0, join_thread_within(queuer, TIMEOUT_MS));
	EXPECT_EQ(0, failed);
	cancel_work_sync(&fr.work);
	destroy_workqueue(fr.wq);
}

TEST_HARNESS_MAIN
