// SPDX-License-Identifier: MIT
/*
 * kfree_rcu() with readers of the urcu-qsbr flavor, chosen with
 * kslab_set_rcu_flavor(&urcu_qsbr_flavor) before the first RCU free (each
 * test runs in a fresh process, so each sets it).
 *
 * A qsbr reader is registered and online; rcu_read_lock()/unlock() mark
 * its read-side sections for the reader's own benefit only, and a grace
 * period ends when every online reader has announced a quiescent state
 * with rcu_quiescent_state() or gone offline.  So an online thread is, as
 * far as kslab can tell, always inside a read-side section: it must not
 * wait in kvfree_rcu_barrier() (kslab reports it and returns) and must go
 * offline with rcu_thread_offline() first.
 *
 * Checked: a reader that saw an object keeps it intact until its next
 * quiescent state, however long that takes; kfree_rcu() from an online
 * thread never blocks; the barrier from an online thread is reported,
 * from an offline one it frees; readers that pass quiescent states
 * while updaters replace and free objects never see a freed one; and a
 * work item or a finalizer holds up grace periods while it runs, in a
 * fork() child too.  The shared tests are in rcu_flavor_tests.h; here are
 * the offline one and those of kslab's workers under qsbr: online only
 * while they have work, with a quiescent state between two works or two
 * finalizers, so that an idle or a busy worker holds up no grace period
 * for long, and registered afresh when the flavor is chosen after they
 * started.
 */
#include <kslab/slab.h>

/* After kslab's header, which the contract allows (the bp test: before). */
#include <urcu/urcu-qsbr.h>

#define RCU_FLAVOR_NAME			"qsbr"
#define RCU_FLAVOR_SECTION_CACHE	"qsbr_online"
#define RCU_FLAVOR_OBJ_MAGIC		0x71736272666c6176ULL
#define RCU_FLAVOR_TEST_HOLD	reader_keeps_the_object_until_its_next_quiescent_state
#define RCU_FLAVOR_TEST_SECTION	barrier_from_an_online_thread_is_reported_and_returns
#define RCU_FLAVOR_TEST_READERS	readers_passing_quiescent_states_never_see_a_freed_object
#define RCU_FLAVOR_BLOCKED_MSG \
	"kfree_rcu() or the barrier blocked in an online qsbr thread"
#define RCU_FLAVOR_HAS_OFFLINE

static void flavor_use(void)
{
	kslab_set_rcu_flavor(&urcu_qsbr_flavor);
}

/* Registering makes a thread online; unregistering takes it offline. */
static void flavor_reader_register(void)
{
	urcu_qsbr_register_thread();
}

static void flavor_reader_unregister(void)
{
	urcu_qsbr_unregister_thread();
}

static void flavor_read_lock(void)
{
	urcu_qsbr_read_lock();
}

static void flavor_read_unlock(void)
{
	urcu_qsbr_read_unlock();
}

static void flavor_quiescent_state(void)
{
	urcu_qsbr_quiescent_state();
}

static void flavor_synchronize(void)
{
	urcu_qsbr_synchronize_rcu();
}

/* Online is inside a section, as far as kslab can tell. */
static void flavor_enter_section(void)
{
	urcu_qsbr_register_thread();
}

static void flavor_exit_section(void)
{
	urcu_qsbr_unregister_thread();
}

static void flavor_thread_offline(void)
{
	urcu_qsbr_thread_offline();
}

static void flavor_thread_online(void)
{
	urcu_qsbr_thread_online();
}

#include "rcu_flavor_tests.h"

TEST(barrier_from_an_offline_thread_frees_what_it_freed)
{
	struct section_freer f = { .nr = 2 * RCU_BATCH_OBJS + 1, .offline = true };
	struct stderr_capture cap;
	struct kmem_cache *s;
	const char *text;
	bool returned;

	flavor_use();
	s = obj_cache("qsbr_offline");
	ASSERT_NE(NULL, s);
	f.objs = alloc_objs(s, f.nr);
	ASSERT_NE(NULL, f.objs);

	ASSERT_EQ(0, start_section_freer(&f, &cap));
	returned = wait_section_freer(&f, &cap, &text);
	EXPECT_TRUE(returned);
	EXPECT_TEXT_EMPTY(text);
	stderr_capture_release(&cap);
	/* The barrier returned in that thread: everything is back. */
	EXPECT_EQ(f.nr, rcu_objects_freed());
	EXPECT_EQ(0, cache_info(s).active_objs);

	flag_set(&f.release, 1);
	ASSERT_EQ(0, join_thread_within(f.tid, HANDOFF_TIMEOUT_MS));
	EXPECT_EQ(0, f.errors);
	free(f.objs);
	EXPECT_RECLAIMED_AND_DESTROY(s);
}

/*
 * kslab's workers under qsbr: registered, online only while they have
 * work, a quiescent state reported between two works and between two
 * finalizers, offline while idle.
 */
TEST(idle_worker_holds_up_no_grace_period)
{
	struct workqueue_struct *wq;
	struct work_struct w;
	struct gp_waiter gp;

	flavor_use();
	wq = alloc_workqueue("qsbr-idle", 0, 1);
	ASSERT_NE(NULL, wq);
	INIT_WORK(&w, nop_work_fn);
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);
	/* the worker polls the queue for a moment after the work ... */
	ASSERT_EQ(0, start_grace_period(&gp));
	EXPECT_TRUE(grace_period_ends_within(&gp, GP_PROMPT_MS));
	/* ... and then sleeps */
	sleep_ms(HOLD_MS);
	ASSERT_EQ(0, start_grace_period(&gp));
	EXPECT_TRUE(grace_period_ends_within(&gp, GP_PROMPT_MS));
	destroy_workqueue(wq);
}

/*
 * Two works back to back on one worker: online is inside a read-side
 * section, so a grace period waits for the first work even outside its
 * rcu_read_lock(); the worker does not idle between the two, and the
 * quiescent state it reports before the second lets the grace period end
 * while the second still runs.
 */
TEST(worker_reports_a_quiescent_state_between_two_works)
{
	struct reader_work first = { 0 }, second = { 0 };
	struct workqueue_struct *wq;
	struct gp_waiter gp;

	flavor_use();
	wq = alloc_ordered_workqueue("qsbr-busy", 0);
	ASSERT_NE(NULL, wq);
	INIT_WORK(&first.work, reader_work_fn);
	INIT_WORK(&second.work, reader_work_fn);
	ASSERT_TRUE(queue_work(wq, &first.work));
	ASSERT_TRUE(flag_wait(&first.h.inside, 1, HANDOFF_TIMEOUT_MS));
	ASSERT_TRUE(queue_work(wq, &second.work));

	ASSERT_EQ(0, start_grace_period(&gp));
	sleep_ms(GP_HELD_MS);
	EXPECT_EQ(0, flag_get(&gp.done))
		TH_LOG("the grace period ended while the worker ran a work, online");
	flag_set(&first.h.release, 1);
	ASSERT_TRUE(flag_wait(&second.h.inside, 1, HANDOFF_TIMEOUT_MS));
	EXPECT_TRUE(grace_period_ends_within(&gp, GP_PROMPT_MS))
		TH_LOG("no quiescent state between two works");
	EXPECT_EQ(0, flag_get(&second.h.release));

	flag_set(&second.h.release, 1);
	flush_workqueue(wq);
	EXPECT_EQ(0, first.h.errors);
	EXPECT_EQ(0, second.h.errors);
	destroy_workqueue(wq);
}

/* The same for two finalizers, which the finalizer drain runs in one work. */
TEST(finalizer_drain_reports_a_quiescent_state_between_two_finalizers)
{
	struct section_holder first = { 0 }, second = { 0 };
	struct gp_waiter gp;
	void *a, *b;

	flavor_use();
	a = kmalloc(64, GFP_KERNEL);
	b = kmalloc(64, GFP_KERNEL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	ASSERT_EQ(0, kmem_set_finalizer(a, reader_finalizer, &first));
	ASSERT_EQ(0, kmem_set_finalizer(b, reader_finalizer, &second));
	/* one collection: both are queued together, a first */
	kfree(a);
	kfree(b);
	kmem_gc();
	ASSERT_TRUE(flag_wait(&first.inside, 1, HANDOFF_TIMEOUT_MS));

	ASSERT_EQ(0, start_grace_period(&gp));
	sleep_ms(GP_HELD_MS);
	EXPECT_EQ(0, flag_get(&gp.done))
		TH_LOG("the grace period ended while a finalizer ran, online");
	flag_set(&first.release, 1);
	ASSERT_TRUE(flag_wait(&second.inside, 1, HANDOFF_TIMEOUT_MS));
	EXPECT_TRUE(grace_period_ends_within(&gp, GP_PROMPT_MS))
		TH_LOG("no quiescent state between two finalizers");

	flag_set(&second.release, 1);
	kmem_finalizers_flush();
	EXPECT_EQ(0, first.errors);
	EXPECT_EQ(0, second.errors);
}

/*
 * kslab_set_rcu_flavor() after a worker started: that worker registered
 * with the default, urcu-memb, and registers with qsbr when it next finds
 * work after idling.
 */
TEST(worker_started_before_the_flavor_was_chosen_reads_under_it)
{
	struct reader_work rw = { 0 };
	struct workqueue_struct *wq;
	struct work_struct w;

	wq = alloc_workqueue("qsbr-late", 0, 1);
	ASSERT_NE(NULL, wq);
	INIT_WORK(&w, nop_work_fn);
	ASSERT_TRUE(queue_work(wq, &w));
	flush_work(&w);

	flavor_use();
	INIT_WORK(&rw.work, reader_work_fn);
	ASSERT_TRUE(queue_work(wq, &rw.work));
	EXPECT_EQ(GP_HELD_THEN_ENDED, watch_grace_period(&rw.h));
	flush_work(&rw.work);
	EXPECT_EQ(0, rw.h.errors);
	destroy_workqueue(wq);
}

TEST_HARNESS_MAIN
