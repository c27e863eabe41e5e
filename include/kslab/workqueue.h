/* SPDX-License-Identifier: MIT */
/*
 * kslab: kernel-style workqueues for userspace threads.
 *
 * This header is the contract (see shared API.md section 4).  Delays are
 * in jiffies, with HZ 1000, so a jiffy is a millisecond.  Every call is
 * thread-safe.  A work item runs in a worker thread of the workqueue it
 * was last queued on, never on two workers at once; the work_struct may
 * be freed by its own function.  Waiting calls (flush_*, cancel_*_sync,
 * drain_workqueue, destroy_workqueue) must not be made on a work or
 * workqueue from inside that work or a work of that workqueue, as in
 * the kernel; cancel_work_sync() on the calling work itself only removes
 * a pending instance and does not wait for itself.
 */
#ifndef _KSLAB_WORKQUEUE_H
#define _KSLAB_WORKQUEUE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; these names are its API. */
#pragma GCC visibility push(default)

#ifndef container_of
#define container_of(ptr, type, member)					\
	((type *)((char *)(ptr) - offsetof(type, member)))
#endif

#define HZ		1000

/* Accepted for source compatibility; all workers are plain threads. */
#define WQ_UNBOUND	(1u << 1)
#define WQ_HIGHPRI	(1u << 4)
#define WQ_MEM_RECLAIM	(1u << 3)

struct work_struct;
struct workqueue_struct;

typedef void (*work_func_t)(struct work_struct *work);

/*
 * struct work_struct - one unit of deferred work.  The fields other than
 * func belong to the workqueue and are protected by its lock.
 */
struct work_struct {
	work_func_t func;
	struct work_struct *__next, *__prev;	/* place in the queue */
	struct workqueue_struct *__wq;		/* last queued on */
	unsigned long __seq;			/* queueing sequence */
	unsigned int __flags;			/* pending, on the timer */
};

/* struct delayed_work - a work item queued once its timer expires. */
struct delayed_work {
	struct work_struct work;
	struct delayed_work *__timer_next;	/* sorted by expiry */
	struct workqueue_struct *__timer_wq;	/* queued there on expiry */
	uint64_t __expires_ns;			/* CLOCK_MONOTONIC */
};

void __init_work(struct work_struct *work, work_func_t func);

#define INIT_WORK(_work, _func)		__init_work((_work), (_func))
#define INIT_DELAYED_WORK(_dwork, _func)				\
	__init_work(&(_dwork)->work, (_func))

static inline struct delayed_work *to_delayed_work(struct work_struct *work)
{
	return container_of(work, struct delayed_work, work);
}

unsigned long msecs_to_jiffies(unsigned int msecs);

struct workqueue_struct *alloc_workqueue(const char *fmt, unsigned int flags,
					 int max_active, ...);
struct workqueue_struct *alloc_ordered_workqueue(const char *fmt,
						 unsigned int flags, ...);
void destroy_workqueue(struct workqueue_struct *wq);

bool queue_work(struct workqueue_struct *wq, struct work_struct *work);
bool queue_delayed_work(struct workqueue_struct *wq,
			struct delayed_work *dwork, unsigned long delay);
bool mod_delayed_work(struct workqueue_struct *wq,
		      struct delayed_work *dwork, unsigned long delay);

bool flush_work(struct work_struct *work);
bool flush_delayed_work(struct delayed_work *dwork);
bool cancel_work_sync(struct work_struct *work);
bool cancel_delayed_work_sync(struct delayed_work *dwork);

void flush_workqueue(struct workqueue_struct *wq);
void drain_workqueue(struct workqueue_struct *wq);

extern struct workqueue_struct *system_wq;
extern struct workqueue_struct *system_unbound_wq;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* _KSLAB_WORKQUEUE_H */
