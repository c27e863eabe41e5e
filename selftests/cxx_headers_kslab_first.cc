// SPDX-License-Identifier: MIT
/*
 * The second unit of cxx_headers_test: every kslab header first, each of
 * them before anything that would pull in its prerequisites, then glibc's
 * <sys/param.h> (which defines HZ unless it is defined already) and
 * liburcu's <urcu.h>.  cxx_headers_test.cc has the opposite order.
 */
#include <kslab/workqueue.h>
#include <kslab/finalizer.h>
#include <kslab/slab.h>
#include <kslab/kslab.h>

#include <sys/param.h>
#include <urcu.h>

#include "cxx_headers_test.h"

static_assert(HZ == 1000, "<sys/param.h> after kslab keeps kslab's HZ");

unsigned long hz_with_kslab_first(void)
{
	return HZ;
}

void kfree_rcu_with_kslab_first(struct cxx_item *item)
{
	kfree_rcu(item, rcu);
}
