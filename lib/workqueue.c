// SPDX-License-Identifier: MIT
/*
 * Kernel-style workqueues on pthreads.
 *
 * Design.  One mutex, wq_lock, protects every workqueue, every queued or
 * running work item and the shared timer.  A workqueue holds a FIFO of
 * pending works (linked through work->__next/__prev, in increasing
 * sequence number) and up to max_active worker threads, started lazily
 * when work is queued and no idle worker can take it.  A worker takes
 * the oldest pending work that no other worker of the queue is running
 * (so a work never runs twice at once) and records it, with its
 * sequence number, in its struct worker while the function runs.  The
 * worker never touches the work_struct after the function returned, so
 * a work may free itself.
 *
 * flush_workqueue() waits for the sequence number current at the call:
 * until no pending or running work has a smaller or equal one, so work
 * queued after the call cannot livelock it.  flush_work() does the same
 * for one work, cancel_work_sync() takes the work off its queue (or the
 * timer) and waits until no worker runs it.
 *
 * Delayed works sit on one list sorted by expiry, served by one timer
 * thread shared by all workqueues that sleeps with
 * pthread_cond_timedwait() on CLOCK_MONOTONIC.
 *
 * fork(): the prepare handler takes wq_lock and both sides release it;
 * the child first re-creates the condition variables and marks every
 * worker and the timer thread as not started: they do not exist in the
 * child and start again on demand.  Pending works stay queued; a work
 * that was running in the parent is forgotten in the child.
 *
 * Workqueue structures come from calloc(), not from kslab, so the
 * workqueue depends on no allocator lock across fork().
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kslab/workqueue.h>

#include "lib/compiler.h"
#include "lib/list.h"

#pragma GCC visibility push(hidden)

#define WQ_NAME_LEN		32
#define WQ_DFL_ACTIVE		16
#define WQ_MAX_ACTIVE		512
#define TASK_COMM_LEN		16

#define WORK_PENDING		0x1u	/* queued or on the timer */
#define WORK_ON_TIMER		0x2u	/* on the timer list */

struct worker {
	struct workqueue_struct *wq;
	pthread_t thread;
	struct work_struct *current_work;	/* NULL when idle */
	unsigned long current_seq;
	bool started;
};

struct workqueue_struct {
	struct list_head node;			/* on all_workqueues */
	struct work_struct *head, *tail;	/* pending FIFO */
	unsigned long nr_pending;
	unsigned long seq;			/* last sequence handed out */
	unsigned int nr_timers;			/* delayed works armed */
	int max_active;
	int nr_workers;				/* started threads */
	int nr_idle;
	bool dying;
	pthread_cond_t more_work;		/* workers wait here */
	pthread_cond_t done;			/* waiters: flush, cancel */
	struct worker *workers;			/* max_active slots */
	char name[WQ_NAME_LEN];
};

static pthread_mutex_t wq_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(all_workqueues);

static struct delayed_work *timer_head;
static pthread_cond_t timer_cond;
static bool timer_started;

static __thread struct worker *current_worker __initial_exec;

#pragma GCC visibility pop

struct workqueue_struct *system_wq;
struct workqueue_struct *system_unbound_wq;

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void init_cond_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

/**
 * __init_work() - prepare a work item; what INIT_WORK() expands to
 * @work: the work item
 * @func: the function a worker calls with @work
 */
void __init_work(struct work_struct *work, work_func_t func)
{
	memset(work, 0, sizeof(*work));
	work->func = func;
}

/**
 * msecs_to_jiffies() - convert milliseconds to jiffies
 * @msecs: the duration
 *
 * Return: the duration in jiffies; with HZ 1000 the same number.
 */
unsigned long msecs_to_jiffies(unsigned int msecs)
{
	return (unsigned long)msecs * HZ / 1000;
}

/* ---- the pending FIFO, under wq_lock ---------------------------------- */

static void fifo_append(struct workqueue_struct *wq, struct work_struct *work)
{
	work->__next = NULL;
	work->__prev = wq->tail;
	if (wq->tail)
		wq->tail->__next = work;
	else
		wq->head = work;
	wq->tail = work;
	wq->nr_pending++;
}

static void fifo_remove(struct workqueue_struct *wq, struct work_struct *work)
{
	if (work->__prev)
		work->__prev->__next = work->__next;
	else
		wq->head = work->__next;
	if (work->__next)
		work->__next->__prev = work->__prev;
	else
		wq->tail = work->__prev;
	work->__next = NULL;
	work->__prev = NULL;
	wq->nr_pending--;
}

static bool work_running_on(const struct workqueue_struct *wq,
			    const struct work_struct *work,
			    const struct worker *except)
{
	int i;

	for (i = 0; i < wq->max_active; i++) {
		struct worker *w = &wq->workers[i];

		if (w != except && w->current_work == work)
			return true;
	}
	return false;
}

/* ---- workers ---------------------------------------------------------- */

static struct work_struct *pick_work(struct worker *worker)
{
	struct workqueue_struct *wq = worker->wq;
	struct work_struct *work;

	for (work = wq->head; work; work = work->__next)
		if (!work_running_on(wq, work, worker))
			return work;
	return NULL;
}

static void *worker_thread(void *arg)
{
	struct worker *worker = arg;
	struct workqueue_struct *wq = worker->wq;
	char comm[TASK_COMM_LEN];

	/* the kernel's limit: 15 characters and the NUL */
	memcpy(comm, wq->name, sizeof(comm) - 1);
	comm[sizeof(comm) - 1] = '\0';
	pthread_setname_np(pthread_self(), comm);
	current_worker = worker;

	pthread_mutex_lock(&wq_lock);
	for (;;) {
		struct work_struct *work = pick_work(worker);
		work_func_t func;

		if (!work) {
			if (wq->dying)
				break;
			wq->nr_idle++;
			pthread_cond_wait(&wq->more_work, &wq_lock);
			wq->nr_idle--;
			continue;
		}
		fifo_remove(wq, work);
		work->__flags &= ~WORK_PENDING;
		worker->current_work = work;
		worker->current_seq = work->__seq;
		func = work->func;
		pthread_mutex_unlock(&wq_lock);

		func(work);

		pthread_mutex_lock(&wq_lock);
		worker->current_work = NULL;
		pthread_cond_broadcast(&wq->done);
	}
	pthread_mutex_unlock(&wq_lock);
	return NULL;
}

/* Start one more worker; a failure is reported, the queue keeps its work. */
static void start_worker(struct workqueue_struct *wq)
{
	struct worker *worker = NULL;
	int i, err;

	for (i = 0; i < wq->max_active; i++) {
		if (!wq->workers[i].started) {
			worker = &wq->workers[i];
			break;
		}
	}
	if (!worker)
		return;
	worker->wq = wq;
	worker->current_work = NULL;
	err = pthread_create(&worker->thread, NULL, worker_thread, worker);
	if (err) {
		fprintf(stderr, "kslab: workqueue %s: cannot start a worker: %s\n",
			wq->name, strerror(err));
		return;
	}
	worker->started = true;
	wq->nr_workers++;
}

/* Put a work that is already marked pending at the tail of @wq. */
static void insert_work(struct workqueue_struct *wq, struct work_struct *work)
{
	work->__wq = wq;
	work->__seq = ++wq->seq;
	fifo_append(wq, work);
	if (wq->nr_pending > (unsigned long)wq->nr_idle &&
	    wq->nr_workers < wq->max_active)
		start_worker(wq);
	if (wq->nr_idle)
		pthread_cond_signal(&wq->more_work);
}

/* ---- the timer -------------------------------------------------------- */

static void timer_remove(struct delayed_work *dwork)
{
	struct delayed_work **pp;

	for (pp = &timer_head; *pp; pp = &(*pp)->__timer_next) {
		if (*pp == dwork) {
			*pp = dwork->__timer_next;
			break;
		}
	}
	dwork->__timer_next = NULL;
	dwork->work.__flags &= ~WORK_ON_TIMER;
	dwork->__timer_wq->nr_timers--;
	pthread_cond_broadcast(&dwork->__timer_wq->done);
}

static void *timer_thread(void *arg)
{
	pthread_setname_np(pthread_self(), "kslab-wq-timer");
	pthread_mutex_lock(&wq_lock);
	for (;;) {
		struct delayed_work *dwork = timer_head;
		struct workqueue_struct *wq;
		struct timespec ts;

		if (!dwork) {
			pthread_cond_wait(&timer_cond, &wq_lock);
			continue;
		}
		if (dwork->__expires_ns > now_ns()) {
			ts.tv_sec = (time_t)(dwork->__expires_ns / 1000000000ull);
			ts.tv_nsec = (long)(dwork->__expires_ns % 1000000000ull);
			pthread_cond_timedwait(&timer_cond, &wq_lock, &ts);
			continue;
		}
		wq = dwork->__timer_wq;
		timer_remove(dwork);
		insert_work(wq, &dwork->work);
	}
	return arg;
}

static void start_timer(void)
{
	pthread_attr_t attr;
	pthread_t thread;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!pthread_create(&thread, &attr, timer_thread, NULL))
		timer_started = true;
	else
		fprintf(stderr, "kslab: cannot start the workqueue timer\n");
	pthread_attr_destroy(&attr);
}

static void timer_add(struct workqueue_struct *wq, struct delayed_work *dwork,
		      unsigned long delay)
{
	struct delayed_work **pp;

	dwork->__timer_wq = wq;
	dwork->__expires_ns = now_ns() + (uint64_t)delay * (1000000000ull / HZ);
	dwork->work.__flags |= WORK_ON_TIMER;
	wq->nr_timers++;
	for (pp = &timer_head; *pp; pp = &(*pp)->__timer_next)
		if ((*pp)->__expires_ns > dwork->__expires_ns)
			break;
	dwork->__timer_next = *pp;
	*pp = dwork;

	if (!timer_started)
		start_timer();
	pthread_cond_signal(&timer_cond);
}

/*
 * After fork() the child has no workers and no timer thread: a wait for
 * work queued in the parent starts them first.
 */
static void kick_workqueue(struct workqueue_struct *wq)
{
	if (wq->nr_pending > (unsigned long)wq->nr_idle &&
	    wq->nr_workers < wq->max_active)
		start_worker(wq);
	if (timer_head && !timer_started)
		start_timer();
}

/* ---- queueing --------------------------------------------------------- */

/**
 * queue_work() - queue a work item
 * @wq: the workqueue
 * @work: the work item
 *
 * Context: any thread, including a work function.
 * Return: false if @work was already pending, true if it is now queued.
 */
bool queue_work(struct workqueue_struct *wq, struct work_struct *work)
{
	bool queued = false;

	pthread_mutex_lock(&wq_lock);
	if (!(work->__flags & WORK_PENDING)) {
		work->__flags |= WORK_PENDING;
		insert_work(wq, work);
		queued = true;
	}
	pthread_mutex_unlock(&wq_lock);
	return queued;
}

static void arm_delayed_work(struct workqueue_struct *wq,
			     struct delayed_work *dwork, unsigned long delay)
{
	dwork->work.__flags |= WORK_PENDING;
	if (!delay)
		insert_work(wq, &dwork->work);
	else
		timer_add(wq, dwork, delay);
}

/**
 * queue_delayed_work() - queue a work item after a delay
 * @wq: the workqueue
 * @dwork: the delayed work
 * @delay: jiffies to wait first; 0 queues at once
 *
 * Context: any thread, including a work function.
 * Return: false if @dwork was already pending, true if it is now armed.
 */
bool queue_delayed_work(struct workqueue_struct *wq,
			struct delayed_work *dwork, unsigned long delay)
{
	bool queued = false;

	pthread_mutex_lock(&wq_lock);
	if (!(dwork->work.__flags & WORK_PENDING)) {
		arm_delayed_work(wq, dwork, delay);
		queued = true;
	}
	pthread_mutex_unlock(&wq_lock);
	return queued;
}

/* Take a pending work off its queue or the timer; under wq_lock. */
static bool grab_pending(struct work_struct *work)
{
	if (!(work->__flags & WORK_PENDING))
		return false;
	if (work->__flags & WORK_ON_TIMER)
		timer_remove(to_delayed_work(work));
	else
		fifo_remove(work->__wq, work);
	work->__flags &= ~WORK_PENDING;
	return true;
}

/**
 * mod_delayed_work() - queue a delayed work, or change its delay
 * @wq: the workqueue
 * @dwork: the delayed work
 * @delay: jiffies from now; 0 queues at once
 *
 * Unlike queue_delayed_work(), re-arms @dwork if it is already pending.
 *
 * Context: any thread, including a work function.
 * Return: true if @dwork was pending and has been re-armed, false if it
 * was idle and is now armed.
 */
bool mod_delayed_work(struct workqueue_struct *wq,
		      struct delayed_work *dwork, unsigned long delay)
{
	bool was_pending;

	pthread_mutex_lock(&wq_lock);
	was_pending = grab_pending(&dwork->work);
	arm_delayed_work(wq, dwork, delay);
	pthread_mutex_unlock(&wq_lock);
	return was_pending;
}

/* ---- flushing and cancelling ----------------------------------------- */

/* Is @work, queued or running with a sequence up to @seq, unfinished? */
static bool work_busy_upto(struct work_struct *work, unsigned long seq)
{
	struct workqueue_struct *wq = work->__wq;
	int i;

	if ((work->__flags & WORK_PENDING) && !(work->__flags & WORK_ON_TIMER) &&
	    work->__seq <= seq)
		return true;
	for (i = 0; i < wq->max_active; i++) {
		struct worker *w = &wq->workers[i];

		if (w != current_worker && w->current_work == work &&
		    w->current_seq <= seq)
			return true;
	}
	return false;
}

static bool __flush_work(struct work_struct *work)
{
	struct workqueue_struct *wq = work->__wq;
	bool waited = false;
	unsigned long seq;

	if (!wq)
		return false;
	seq = wq->seq;
	kick_workqueue(wq);
	while (work_busy_upto(work, seq)) {
		waited = true;
		pthread_cond_wait(&wq->done, &wq_lock);
	}
	return waited;
}

/**
 * flush_work() - wait for the last queueing of a work to finish
 * @work: the work item
 *
 * Context: any thread but @work's own worker.
 * Return: true if it had to wait, false if @work was idle.
 */
bool flush_work(struct work_struct *work)
{
	bool waited;

	pthread_mutex_lock(&wq_lock);
	waited = __flush_work(work);
	pthread_mutex_unlock(&wq_lock);
	return waited;
}

/**
 * flush_delayed_work() - run a delayed work now and wait for it
 * @dwork: the delayed work
 *
 * A work still waiting for its timer is queued at once.
 *
 * Context: any thread but @dwork's own worker.
 * Return: true if it had to wait, false if @dwork was idle.
 */
bool flush_delayed_work(struct delayed_work *dwork)
{
	struct work_struct *work = &dwork->work;
	bool waited;

	pthread_mutex_lock(&wq_lock);
	if (work->__flags & WORK_ON_TIMER) {
		struct workqueue_struct *wq = dwork->__timer_wq;

		timer_remove(dwork);
		insert_work(wq, work);
	}
	waited = __flush_work(work);
	pthread_mutex_unlock(&wq_lock);
	return waited;
}

/**
 * cancel_work_sync() - cancel a work and wait for it to stop running
 * @work: the work item
 *
 * On return @work is neither pending nor running (unless it is queued
 * again concurrently by another thread).  A work that re-queues itself
 * is caught: the loop takes each new queueing off again.  Called from
 * @work's own function it only takes a pending instance off the queue.
 *
 * Context: any thread; must not be called from another work of the
 * same workqueue if that could wait for the caller (as in the kernel).
 * Return: true if @work was pending.
 */
bool cancel_work_sync(struct work_struct *work)
{
	bool was_pending = false;

	pthread_mutex_lock(&wq_lock);
	for (;;) {
		struct workqueue_struct *wq = work->__wq;

		if (grab_pending(work))
			was_pending = true;
		if (!wq || !work_running_on(wq, work, current_worker))
			break;
		pthread_cond_wait(&wq->done, &wq_lock);
	}
	pthread_mutex_unlock(&wq_lock);
	return was_pending;
}

/**
 * cancel_delayed_work_sync() - cancel a delayed work and wait for it
 * @dwork: the delayed work
 *
 * Takes @dwork off the timer or its queue and waits as cancel_work_sync().
 *
 * Context: as cancel_work_sync().
 * Return: true if @dwork was pending.
 */
bool cancel_delayed_work_sync(struct delayed_work *dwork)
{
	return cancel_work_sync(&dwork->work);
}

static bool wq_busy_upto(struct workqueue_struct *wq, unsigned long seq)
{
	int i;

	if (wq->head && wq->head->__seq <= seq)
		return true;
	for (i = 0; i < wq->max_active; i++) {
		struct worker *w = &wq->workers[i];

		if (w != current_worker && w->current_work &&
		    w->current_seq <= seq)
			return true;
	}
	return false;
}

/**
 * flush_workqueue() - wait for every work queued before the call
 * @wq: the workqueue
 *
 * Work queued after the call, by anyone, is not waited for, so a work
 * that keeps re-queueing itself cannot livelock the flush.
 *
 * Context: any thread but a worker of @wq.
 */
void flush_workqueue(struct workqueue_struct *wq)
{
	unsigned long seq;

	pthread_mutex_lock(&wq_lock);
	seq = wq->seq;
	kick_workqueue(wq);
	while (wq_busy_upto(wq, seq))
		pthread_cond_wait(&wq->done, &wq_lock);
	pthread_mutex_unlock(&wq_lock);
}

/* Under wq_lock: wait until nothing is queued, armed or running. */
static void __drain_workqueue(struct workqueue_struct *wq)
{
	kick_workqueue(wq);
	while (wq->nr_timers || wq_busy_upto(wq, ~0ul))
		pthread_cond_wait(&wq->done, &wq_lock);
}

/**
 * drain_workqueue() - wait until a workqueue is empty
 * @wq: the workqueue
 *
 * Waits for queued work, work queued by that work (chains), and delayed
 * work still on the timer for @wq.  Other threads should stop queueing
 * first, or the drain lasts as long as they go on.
 *
 * Context: any thread but a worker of @wq.
 */
void drain_workqueue(struct workqueue_struct *wq)
{
	pthread_mutex_lock(&wq_lock);
	__drain_workqueue(wq);
	pthread_mutex_unlock(&wq_lock);
}

/* ---- creation and destruction ---------------------------------------- */

static struct workqueue_struct *__alloc_workqueue(const char *fmt, va_list ap,
						  int max_active)
{
	struct workqueue_struct *wq;

	if (max_active <= 0)
		max_active = WQ_DFL_ACTIVE;
	if (max_active > WQ_MAX_ACTIVE)
		max_active = WQ_MAX_ACTIVE;

	wq = calloc(1, sizeof(*wq));
	if (!wq)
		return NULL;
	wq->workers = calloc((size_t)max_active, sizeof(*wq->workers));
	if (!wq->workers)
		goto free_wq;
	wq->max_active = max_active;
	vsnprintf(wq->name, sizeof(wq->name), fmt, ap);
	pthread_cond_init(&wq->more_work, NULL);
	pthread_cond_init(&wq->done, NULL);

	pthread_mutex_lock(&wq_lock);
	list_add_tail(&wq->node, &all_workqueues);
	pthread_mutex_unlock(&wq_lock);
	return wq;

free_wq:
	free(wq);
	return NULL;
}

/**
 * alloc_workqueue() - create a workqueue
 * @fmt: printf format of the name (worker threads carry its first 15
 *       characters)
 * @flags: WQ_UNBOUND, WQ_HIGHPRI, WQ_MEM_RECLAIM: accepted, no effect
 * @max_active: most works run at once (worker threads); 0 for the default
 *
 * Context: any thread.  The workers start when work is first queued.
 * Return: the workqueue, or NULL when out of memory.
 */
struct workqueue_struct *alloc_workqueue(const char *fmt, unsigned int flags,
					 int max_active, ...)
{
	struct workqueue_struct *wq;
	va_list ap;

	(void)flags;
	va_start(ap, max_active);
	wq = __alloc_workqueue(fmt, ap, max_active);
	va_end(ap);
	return wq;
}

/**
 * alloc_ordered_workqueue() - create a workqueue that runs one work at a time
 * @fmt: printf format of the name
 * @flags: as alloc_workqueue()
 *
 * Works run one at a time, in the order they were queued, on one thread.
 *
 * Context: any thread.
 * Return: the workqueue, or NULL when out of memory.
 */
struct workqueue_struct *alloc_ordered_workqueue(const char *fmt,
						 unsigned int flags, ...)
{
	struct workqueue_struct *wq;
	va_list ap;

	(void)flags;
	va_start(ap, flags);
	wq = __alloc_workqueue(fmt, ap, 1);
	va_end(ap);
	return wq;
}

/**
 * destroy_workqueue() - drain a workqueue, stop its workers and free it
 * @wq: the workqueue, or NULL
 *
 * Context: any thread but a worker of @wq.
 */
void destroy_workqueue(struct workqueue_struct *wq)
{
	int i;

	if (!wq)
		return;
	pthread_mutex_lock(&wq_lock);
	__drain_workqueue(wq);
	wq->dying = true;
	pthread_cond_broadcast(&wq->more_work);
	list_del_init(&wq->node);
	pthread_mutex_unlock(&wq_lock);

	for (i = 0; i < wq->max_active; i++)
		if (wq->workers[i].started)
			pthread_join(wq->workers[i].thread, NULL);
	pthread_cond_destroy(&wq->more_work);
	pthread_cond_destroy(&wq->done);
	free(wq->workers);
	free(wq);
}

/* ---- fork and start-up ----------------------------------------------- */

static void wq_atfork_prepare(void)
{
	pthread_mutex_lock(&wq_lock);
}

static void wq_atfork_parent(void)
{
	pthread_mutex_unlock(&wq_lock);
}

/*
 * Only the forking thread exists in the child: forget every worker and
 * the timer thread, and re-create the lock and the condition variables
 * that their waits may have left in any state.  wq_lock was taken by
 * the prepare handler on this very thread, so it is released, not
 * re-created.
 */
static void wq_atfork_child(void)
{
	struct workqueue_struct *wq;
	int i;

	init_cond_monotonic(&timer_cond);
	timer_started = false;
	list_for_each_entry(wq, &all_workqueues, node) {
		pthread_cond_init(&wq->more_work, NULL);
		pthread_cond_init(&wq->done, NULL);
		wq->nr_workers = 0;
		wq->nr_idle = 0;
		for (i = 0; i < wq->max_active; i++) {
			wq->workers[i].started = false;
			wq->workers[i].current_work = NULL;
		}
	}
	current_worker = NULL;
	pthread_mutex_unlock(&wq_lock);
}

static __constructor void workqueue_init(void)
{
	init_cond_monotonic(&timer_cond);
	pthread_atfork(wq_atfork_prepare, wq_atfork_parent, wq_atfork_child);
	system_wq = alloc_workqueue("events", 0, 0);
	system_unbound_wq = alloc_workqueue("events_unbound", WQ_UNBOUND, 0);
	if (!system_wq || !system_unbound_wq)
		fprintf(stderr, "kslab: cannot create the system workqueues\n");
}
