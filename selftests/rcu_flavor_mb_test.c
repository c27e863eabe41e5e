// SPDX-License-Identifier: MIT
/*
 * kfree_rcu() with readers of the urcu-mb flavor, chosen with
 * kslab_set_rcu_flavor(&urcu_mb_flavor) before the first RCU free (each
 * test runs in a fresh process, so each sets it).  An mb reader registers
 * with urcu_mb_register_thread() and brackets reads with
 * urcu_mb_read_lock()/urcu_mb_read_unlock(), which carry full memory
 * barriers instead of relying on membarrier().
 *
 * Checked (the tests are in rcu_flavor_tests.h): a reader that saw an
 * object keeps it intact until it leaves its read-side section, however
 * long that takes; kfree_rcu() inside a section never blocks and the
 * barrier there is reported instead of waiting for the thread itself; and
 * readers walking a table while updaters replace and free its objects
 * never see a freed one.
 */
#include <kslab/slab.h>

/* After kslab's header, which the contract allows (the bp test: before). */
#include <urcu/urcu-mb.h>

#define RCU_FLAVOR_NAME			"mb"
#define RCU_FLAVOR_OBJ_MAGIC		0x6d62666c61766f72ULL

static void flavor_use(void)
{
	kslab_set_rcu_flavor(&urcu_mb_flavor);
}

static void flavor_reader_register(void)
{
	urcu_mb_register_thread();
}

static void flavor_reader_unregister(void)
{
	urcu_mb_unregister_thread();
}

static void flavor_read_lock(void)
{
	urcu_mb_read_lock();
}

static void flavor_read_unlock(void)
{
	urcu_mb_read_unlock();
}

/* Leaving the read-side section is the quiescent state. */
static void flavor_quiescent_state(void)
{
}

static void flavor_synchronize(void)
{
	urcu_mb_synchronize_rcu();
}

static void flavor_enter_section(void)
{
	urcu_mb_register_thread();
	urcu_mb_read_lock();
}

static void flavor_exit_section(void)
{
	urcu_mb_read_unlock();
	urcu_mb_unregister_thread();
}

#include "rcu_flavor_tests.h"

TEST_HARNESS_MAIN
