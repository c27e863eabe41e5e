// SPDX-License-Identifier: MIT
/*
 * kfree_rcu() with readers of the urcu-bp ("bulletproof") flavor, chosen
 * with kslab_set_rcu_flavor(&urcu_bp_flavor) before the first RCU free
 * (each test runs in a fresh process, so each sets it).  A bp reader
 * never registers: its first urcu_bp_read_lock() does it, and its
 * registration goes away with the thread.  The readers here do exactly
 * that, and exit without unregistering.
 *
 * Checked (the tests are in rcu_flavor_tests.h): a reader that saw an
 * object keeps it intact until it leaves its read-side section, however
 * long that takes; kfree_rcu() inside a section never blocks and the
 * barrier there is reported instead of waiting for the thread itself; and
 * readers walking a table while updaters replace and free its objects
 * never see a freed one.
 */
/* Before kslab's header, which the contract allows (qsbr and mb: after). */
#include <urcu/urcu-bp.h>

#include <kslab/slab.h>

#define RCU_FLAVOR_NAME			"bp"
#define RCU_FLAVOR_OBJ_MAGIC		0x6270666c61766f72ULL

static void flavor_use(void)
{
	kslab_set_rcu_flavor(&urcu_bp_flavor);
}

/* The first read lock registers; the registration dies with the thread. */
static void flavor_reader_register(void)
{
}

static void flavor_reader_unregister(void)
{
}

static void flavor_read_lock(void)
{
	urcu_bp_read_lock();
}

static void flavor_read_unlock(void)
{
	urcu_bp_read_unlock();
}

/* Leaving the read-side section is the quiescent state. */
static void flavor_quiescent_state(void)
{
}

static void flavor_synchronize(void)
{
	urcu_bp_synchronize_rcu();
}

static void flavor_enter_section(void)
{
	urcu_bp_read_lock();
}

static void flavor_exit_section(void)
{
	urcu_bp_read_unlock();
}

#include "rcu_flavor_tests.h"

TEST_HARNESS_MAIN
