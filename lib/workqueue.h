/* SPDX-License-Identifier: MIT */
/*
 * What the workqueue and the rest of kslab tell each other, beyond the
 * public API in <kslab/workqueue.h>: the fork handlers, for the one fork
 * table in mm/lifecycle.c, which runs them after every allocator lock
 * (workqueue locks are the innermost of the process: see the lock order
 * there); and the RCU flavor whose readers work functions may be, which
 * mm/kfree_rcu.c sets whenever kslab's flavor is chosen.
 */
#ifndef _KSLAB_LIB_WORKQUEUE_H
#define _KSLAB_LIB_WORKQUEUE_H

#include <stdbool.h>

#pragma GCC visibility push(hidden)

struct rcu_flavor_struct;

/* mm/lifecycle.c: the workqueue's constructor starts the process lifecycle */
void kslab_init(void);

void kslab_wq_fork_prepare(void);
void kslab_wq_fork_parent(void);
void kslab_wq_fork_child(void);
void kslab_wq_fork_child_restart(void);

struct workqueue_struct;

/*
 * kslab_wq_set_reports(): for a workqueue whose one work runs many items
 * of its own (the finalizer queue), how its lockups and a pthread_exit()
 * inside it are reported.
 */
struct kslab_wq_reports {
	unsigned long watchdog_ms;	/* 0: KSLAB_WQ_WATCHDOG_MS */
	void (*lockup)(unsigned long ms);	/* NULL: the default report */
	const char *what;		/* what running() returns: "finalizer" */
	const void *(*running)(void);	/* the function that ran, or NULL */
	/*
	 * The work function called pthread_exit(): finish the item it was
	 * running and put the rest back.  Called in the exiting thread,
	 * before the report and before a new worker takes over the queue.
	 */
	void (*exited)(void);
};

void kslab_wq_set_reports(struct workqueue_struct *wq,
			  const struct kslab_wq_reports *reports);
unsigned long *kslab_wq_touch_counter(void);

void kslab_wq_set_rcu_flavor(const struct rcu_flavor_struct *flavor);
bool kslab_wq_worker_reports_qs(void);
void kslab_wq_worker_qs(void);

#pragma GCC visibility pop

#endif /* _KSLAB_LIB_WORKQUEUE_H */
