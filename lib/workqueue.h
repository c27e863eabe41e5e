/* SPDX-License-Identifier: MIT */
/*
 * The workqueue's fork handlers, for the one fork table in
 * mm/lifecycle.c, which runs them after every allocator lock: workqueue
 * locks are the innermost of the process (see the lock order there).
 */
#ifndef _KSLAB_LIB_WORKQUEUE_H
#define _KSLAB_LIB_WORKQUEUE_H

#pragma GCC visibility push(hidden)

/* mm/lifecycle.c: the workqueue's constructor starts the process lifecycle */
void kslab_init(void);

void kslab_wq_fork_prepare(void);
void kslab_wq_fork_parent(void);
void kslab_wq_fork_child(void);

#pragma GCC visibility pop

#endif /* _KSLAB_LIB_WORKQUEUE_H */
