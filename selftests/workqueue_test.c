// SPDX-License-Identifier: MIT
/*
 * Workqueues under real threads: ordering of an ordered workqueue,
 * pending/queue semantics, flush_work(), cancel_work_sync() of pending and
 * running work, delayed work, flush_workqueue() against a self-requeueing
 * work, drain and destroy, the system workqueues, worker thread names,
 * and fork().  Work functions never ASSERT (the harness unwinds with
 * longjmp on the test thread only): they record, the test asserts.  Every
 * wait is bounded; timing is only checked as "not before the delay".
 */
#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
#define NR_PRODUCERS	4

struct seq_work {
	struct work_struct work;
	int producer;
	int index;
};

static int order_log[NR_PRODUCERS * NR_ORDERED];
static int order_len;
static int order_running;
static int order_overlap;

static void record_order(struct work_struct *work)
{
	struct seq_work *sw = container_of(work, struct seq_work, work);

	if (__atomic_fetch_add(&order_running, 1, __ATOMIC_RELAXED))
		__atomic_store_n(&order_overlap, 1, __ATOMIC_RELAXED);
	/* only one work runs at a time: the log needs no lock */
	order_log[order_len++] = sw->producer * NR_ORDERED + sw->index;
	__atomic_fetch_sub(&order_running, 1, __ATOMIC_RELAXED);
}

static struct seq_work ordered_items[NR_PRODUCERS][NR_ORDERED];

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
		ordered_items[0][i].producer = 0;
		ordered_items[0][i].index = i;
		INIT_WORK(&ordered_items[0][i].work, record_order);
		ASSERT_TRUE(queue_work(wq, &ordered_items[0][i].work));
	}
	flush_workqueue(wq);
	ASSERT_EQ(NR_ORDERED, order_len);
	EXPECT_EQ(0, order_overlap);
	for (i = 0; i < NR_ORDERED; i++)
		ASSERT_EQ(i, order_log[i]);
	destroy_workqueue(wq);
}

static struct workqueue_struct *producer_wq;

static void *ordered_producer(void *arg)
{
	int p = (int)(intptr_t)arg, i;

	for (i = 0; i < NR_ORDERED; i++) {
		ordered_items[p][i].producer = p;
		ordered_items[p][i].index = i;
		INIT_WORK(&ordered_items[p][i].work, record_order);
		queue_work(producer_wq, &ordered_items[p][i].work);
	}
	return NULL;
}

TEST(ordered_workqueue_keeps_each_producers_order)
{
	pthread_t threads[NR_PRODUCERS];
	int last[NR_PRODUCERS];
	int i;

	producer_wq = alloc_ordered_workqueue("ordered-mt", 0);
	ASSERT_NE(NULL, producer_wq);
	reset_order();
	for (i = 0; i < NR_PRODUCERS; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, ordered_producer,
					    (void *)(intptr_t)i));
	for (i = 0; i < NR_PRODUCERS; i++)
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
	flush_workqueue(producer_wq);
	ASSERT_EQ(NR_PRODUCERS * NR_ORDERED, order_len);
	EXPECT_EQ(0, order_overlap);
	for (i = 0; i < NR_PRODUCERS; i++)
		last[i] = -1;
	for (i = 0; i < order_len; i++) {
		int p = order_log[i] / NR_ORDERED, idx = order_log[i] % NR_ORDERED;

		ASSERT_EQ(last[p] + 1, idx);
		last[p] = idx;
	}
	destroy_workqueue(producer_wq);
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
	EXPECT_TRUE(mod_delayed_work(system_wq, &t.dwork, 300));
	ASSERT_TRUE(wait_flag(&t.runs, 1));
	EXPECT_GE(__atomic_load_n(&t.ran_at, __ATOMIC_RELAXED) - start, 300);
	EXPECT_EQ(1, __atomic_load_n(&t.runs, __ATOMIC_ACQUIRE));
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

TEST_HARNESS_MAIN
