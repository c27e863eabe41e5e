// SPDX-License-Identifier: MIT
/*
 * A short RCU torture run (the engine and its argument are in
 * tools/rcutorture.h; tools/rcutorture is the long-running version).
 *
 * Two readers walk an RCU-protected hash table and check every object
 * they reach while two updaters replace objects and free the old ones
 * with kfree_rcu() (sometimes kfree_rcu_mightsleep(), sometimes kmalloc
 * objects).  A reader can only find an object damaged if kslab handed its
 * memory out again before the reader unlocked.  Each run must end with
 * no failure, with objects actually reclaimed by kslab's grace periods
 * and their memory reused by the updaters (an allocation that still
 * holds a former object's LIVE magic), and with the cache holding
 * exactly the objects still in the table once kvfree_rcu_barrier() has
 * returned; destroying the cache right after kfree_rcu() of the rest
 * prints nothing.
 *
 * Variants let readers sleep inside their read-side sections (stretching
 * grace periods) and pass each updater's work from one short-lived
 * thread to the next (each exits with frees still in its batch).
 *
 * A last test runs the engine with the bug it is meant to find (kfree()
 * without a grace period) in a child process and expects it to be caught,
 * so a torture that silently checks nothing cannot pass.
 *
 * Runs are about three seconds each, a third of that under
 * ThreadSanitizer, which sees through liburcu's grace periods only via the
 * engine's annotations (see tools/rcutorture.h).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/rcutorture.h"

/*
 * The harness hands every test a variant argument it rarely uses, and its
 * EXPECT_*() macros compare a plain literal with the checked value's own
 * type; neither is worth a cast at every call site.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define RUN_MS			(KSLAB_TEST_TSAN ? 1000 : 3000)
#define LIST_SIZE		(KSLAB_TEST_TSAN ? 256 : 1000)
/* Deadlines far above a normal run; the harness allows 30 s per test. */
#define JOIN_TIMEOUT_MS		10000
#define BARRIER_TIMEOUT_MS	10000

static struct torture_config short_run(void)
{
	return (struct torture_config){
		.readers = 2,
		.updaters = 2,
		.list_size = LIST_SIZE,
		.reader_sleep_one_in = 8,
		.run_limit_ms = RUN_MS + JOIN_TIMEOUT_MS,
	};
}

static void log_failures(struct __test_metadata *_metadata,
			 const struct torture *t,
			 const struct torture_sample *s)
{
	unsigned int i;

	for (i = 0; i < NR_TORTURE_FAILURES; i++) {
		if (s->failures[i])
			TH_LOG("%s: %lu", torture_failure_names[i],
			       s->failures[i]);
	}
	if (t->first_failure[0])
		TH_LOG("first failure: %s", t->first_failure);
}

/*
 * Run @cfg for RUN_MS and check everything the file comment promises.
 * Returns the final sample in @out for test-specific checks.
 */
static void torture_and_check(struct __test_metadata *_metadata,
			      const struct torture_config *cfg,
			      struct torture_sample *out)
{
	static struct torture t;
	struct kmem_cache_info info;
	struct stderr_capture cap;
	struct torture_sample s;

	ASSERT_EQ(0, torture_setup(&t, cfg));
	ASSERT_EQ(0, torture_start(&t));
	sleep_ms(RUN_MS);
	ASSERT_EQ(0, torture_stop(&t, JOIN_TIMEOUT_MS))
		TH_LOG("%s", t.first_failure);
	ASSERT_EQ(0, torture_barrier(&t, BARRIER_TIMEOUT_MS));

	torture_sample(&t, &s);
	log_failures(_metadata, &t, &s);
	EXPECT_EQ(0, s.total_failures);
	EXPECT_LT(0, s.walks);
	EXPECT_LT(0, s.updates);
	/* kslab reclaimed through grace periods, and memory came back */
	EXPECT_LT(0, s.rcu.grace_periods);
	EXPECT_LT(0, s.rcu.objects);
	EXPECT_LT(0, s.reused);
	EXPECT_LT(0, s.kmalloc_objs);
	EXPECT_LT(0, s.mightsleep_frees);
	TH_LOG("%lu walks, %lu replacements (%lu into reused memory), %lu grace periods, %llu reclaimed, peak %zu waiting",
	       s.walks, s.updates, s.reused, s.rcu.grace_periods,
	       s.rcu.objects, s.rcu.peak_pending);

	/* after the barrier: exactly the table's objects, none waiting */
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(0, kmem_cache_get_info(t.cache, &info));
	EXPECT_EQ(torture_cache_objects(&t), info.active_objs);
	EXPECT_EQ(0, info.pending_rcu);

	/* kfree_rcu() the rest; destroy must wait for them, quietly */
	EXPECT_EQ(0, torture_empty_table(&t));
	stderr_capture_begin(&cap);
	kmem_cache_destroy(t.cache);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	EXPECT_EQ(0, torture_barrier(&t, BARRIER_TIMEOUT_MS));
	torture_cleanup(&t);
	*out = s;
}

TEST(readers_never_see_an_object_reclaimed_under_them)
{
	struct torture_config cfg = short_run();
	struct torture_sample s;

	torture_and_check(_metadata, &cfg, &s);
}

TEST(readers_sleeping_in_read_sections_stretch_grace_periods_safely)
{
	struct torture_config cfg = short_run();
	struct torture_sample s;

	cfg.reader_sleep_ms = 5;
	torture_and_check(_metadata, &cfg, &s);
	EXPECT_LT(0, s.sleeps);
}

TEST(updater_threads_exiting_with_pending_frees_hand_them_over)
{
	struct torture_config cfg = short_run();
	struct torture_sample s;

	cfg.updater_lifetime = KSLAB_TEST_TSAN ? 500 : 5000;
	torture_and_check(_metadata, &cfg, &s);
	EXPECT_LT(0, s.updater_exits);
}

/*
 * The child's verdict: 0 when the broken free went unnoticed, 1 when the
 * checks caught it.  A crash (a reader following a reused object's
 * links) is a catch too.
 */
static int busted_child(void)
{
	struct torture_config cfg = short_run();
	struct torture_sample s;
	static struct torture t;

	cfg.busted = true;
	if (torture_setup(&t, &cfg) || torture_start(&t))
		return 2;
	sleep_ms(RUN_MS);
	torture_stop(&t, JOIN_TIMEOUT_MS);
	torture_sample(&t, &s);
	return s.total_failures ? 1 : 0;
}

TEST(a_free_without_grace_period_is_caught)
{
	int status = 0;
	pid_t pid;

	/*
	 * Under TSan the broken free is a data race the runtime reports and
	 * halts on, which is a catch, but not one this test can read.
	 */
	if (KSLAB_TEST_TSAN)
		SKIP(return, "ThreadSanitizer halts on the race itself");
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(busted_child());
	ASSERT_EQ(0, wait_child(pid, RUN_MS + 2 * JOIN_TIMEOUT_MS, &status))
		TH_LOG("the busted run hung");
	if (WIFSIGNALED(status)) {
		TH_LOG("caught by signal %d", WTERMSIG(status));
		EXPECT_TRUE(WTERMSIG(status) == SIGSEGV ||
			    WTERMSIG(status) == SIGBUS);
	} else {
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(1, WEXITSTATUS(status))
			TH_LOG("a free without a grace period went unnoticed");
	}
}

TEST_HARNESS_MAIN
