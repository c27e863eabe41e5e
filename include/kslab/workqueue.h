/* SPDX-License-Identifier: MIT */
/*
 * kslab: kernel-style workqueues for userspace threads.
 *
 * This header is the contract; Documentation/core-api/workqueue.rst
 * explains it.  Delays are in jiffies, with HZ 1000, so a jiffy is a
 * millisecond.  Every call is thread-safe, and
 * queue_work() takes no lock in the common case.  A work item runs in a
 * worker thread of the workqueue it was last queued on, never on two
 * workers at once; the work_struct may be freed by its own function.  A
 * work function that calls pthread_exit() ends only its worker: the work
 * counts as finished and a new worker goes on with the queue.  Waiting
 * calls (flush_*, cancel_*_sync, drain_workqueue, destroy_workqueue) must
 * not be made on a work or workqueue from inside that work or a work of
 * that workqueue, as in the kernel; cancel_work_sync() on the calling
 * work itself only removes a pending instance and does not wait for
 * itself.  Worker threads are registered readers of the liburcu flavor
 * kslab uses (kslab_set_rcu_flavor()), so a work function may take
 * rcu_read_lock() and grace periods wait for it; under urcu-qsbr a
 * worker is online only while it runs work.
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

/*
 * Jiffies are milliseconds.  glibc's <sys/param.h> defines HZ too (100,
 * through <asm-generic/param.h>), but only where HZ is not defined yet:
 * kslab's value replaces it, so HZ is 1000 in either include order.
 */
#undef HZ
#define HZ		1000

/* Accepted for source compatibility; all workers are plain threads. */
#define WQ_UNBOUND	(1u << 1)
#define WQ_HIGHPRI	(1u << 4)
#define WQ_MEM_RECLAIM	(1u << 3)

struct work_struct;
struct workqueue_struct;

typedef void (*work_func_t)(struct work_struct *work);

/*
 * struct work_struct - one unit of deferred work.  Only func is the
 * caller's.  __data holds the pending bit and changes atomically; the
 * other fields belong to whoever set the pending bit until the work is
 * pushed, then to the lock of the workqueue it is queued on (see
 * Documentation/core-api/workqueue.rst).
 */
struct work_struct {
	unsigned long __data;			/* pending bit, fork generation */
	struct work_struct *__next;		/* queue link */
	struct work_struct *__prev;		/* NULL unless on a worklist */
	work_func_t func;
	struct workqueue_struct *__wq;		/* last queued on */
	unsigned long __seq;			/* flush order on __wq */
};

/* struct delayed_work - a work item queued once its timer expires. */
struct delayed_work {
	struct work_struct work;
	struct delayed_work *__timer_next;	/* sorted by expiry */
	uint64_t __expires_ns;			/* CLOCK_MONOTONIC */
	bool __on_timer;			/* under the timer lock */
};

void __init_work(struct work_struct *work, work_func_t func);

static inline void __init_delayed_work(struct delayed_work *dwork,
				       work_func_t func)
{
	__init_work(&dwork->work, func);
	dwork->__timer_next = NULL;
	dwork->__expires_ns = 0;
	dwork->__on_timer = false;
}

#define INIT_WORK(_work, _func)		__init_work((_work), (_func))
#define INIT_DELAYED_WORK(_dwork, _func)				\
	__init_delayed_work((_dwork), (_func))

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

/* The work the calling worker thread is running, or NULL (the kernel's). */
struct work_struct *current_work(void);

extern struct workqueue_struct *system_wq;
extern struct workqueue_struct *system_unbound_wq;

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* _KSLAB_WORKQUEUE_H */
