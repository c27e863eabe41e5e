// SPDX-License-Identifier: MIT
/*
 * kfree_rcu(), work items and finalizers with readers of urcu-memb, the
 * default flavor.  Unlike the other flavor suites, no test here calls
 * kslab_set_rcu_flavor(): they check the default as a program that never
 * chooses sees it.  A memb reader registers with
 * urcu_memb_register_thread() and brackets reads with
 * urcu_memb_read_lock()/urcu_memb_read_unlock(); the grace period's side
 * uses membarrier() so that the readers' side needs no fence.
 *
 * Checked (the tests are in rcu_flavor_tests.h): a reader that saw an
 * object keeps it intact until it leaves its read-side section; kfree_rcu()
 * inside a section never blocks and the barrier there is reported; readers
 * walking a table while updaters replace and free its objects never see a
 * freed one; and a work item or a finalizer inside a read-side section
 * holds up synchronize_rcu() until it leaves, in a fork() child too.
 */
#include <kslab/slab.h>

#include <urcu/urcu-memb.h>

#define RCU_FLAVOR_NAME			"memb"
#define RCU_FLAVOR_OBJ_MAGIC		0x6d656d62666c6176ULL

/* The default: nothing to choose. */
static void flavor_use(void)
{
}

static void flavor_reader_register(void)
{
	urcu_memb_register_thread();
}

static void flavor_reader_unregister(void)
{
	urcu_memb_unregister_thread();
}

static void flavor_read_lock(void)
{
	urcu_memb_read_lock();
}

static void flavor_read_unlock(void)
{
	urcu_memb_read_unlock();
}

/* Leaving the read-side section is the quiescent state. */
static void flavor_quiescent_state(void)
{
}

static void flavor_synchronize(void)
{
	urcu_memb_synchronize_rcu();
}

static void flavor_enter_section(void)
{
	urcu_memb_register_thread();
	urcu_memb_read_lock();
}

static void flavor_exit_section(void)
{
	urcu_memb_read_unlock();
	urcu_memb_unregister_thread();
}

#include "rcu_flavor_tests.h"

TEST_HARNESS_MAIN
