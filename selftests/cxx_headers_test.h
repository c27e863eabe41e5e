/* SPDX-License-Identifier: MIT */
/*
 * What the two C++ units of cxx_headers_test share.  Each includes the
 * kslab headers in one order with respect to <sys/param.h> and <urcu.h>;
 * a header guard lets a unit see only one order, hence two units.
 */
#ifndef _KSLAB_CXX_HEADERS_TEST_H
#define _KSLAB_CXX_HEADERS_TEST_H

#include <kslab/slab.h>

/* An object freed by kfree_rcu(), from a cache or from kmalloc. */
struct cxx_item {
	long key;
	struct rcu_head rcu;
};

/* cxx_headers_kslab_first.cc: kslab's headers first, then the others. */
unsigned long hz_with_kslab_first(void);
void kfree_rcu_with_kslab_first(struct cxx_item *item);

#endif /* _KSLAB_CXX_HEADERS_TEST_H */
