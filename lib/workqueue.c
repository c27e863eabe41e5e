// SPDX-License-Identifier: MIT
/*
 * Kernel-style workqueues on pthreads.
 *
 * Documentation/core-api/workqueue.rst tells the whole story; this is the
 * model in brief.
 *
 * Queueing.  A work's pending bit lives in work->__data and is taken with
 * one compare-and-swap: whoever sets it owns the work until a worker (or
 * a cancel) clears it, and queue_work() of a pending work returns false.
 * The owner pushes the work onto the workqueue's inbox, a lock-free
 * stack (the kernel's llist: one compare-and-swap per push, taken whole
 * with one exchange), then reads nr_idle and nr_workers, which sit on a
 * cache line that only changes when a worker starts or goes to sleep.
 * Only when a worker is asleep, or fewer than max_active run, does
 * queue_work() take the workqueue's lock, to wake or start one.  So the
 * common case takes no lock and makes no system call, and two threads
 * that queue to different workqueues share no cache line.
 *
 * Workers.  The consumers' side is under wq->lock: a worker moves the
 * whole inbox onto the worklist (reversed into queueing order in one
 * pass, all of it numbered ++wq->seq), unlinks the oldest work that no
 * other worker of the queue is running, records it in its struct worker,
 * clears the pending bit, drops the lock and calls the function.  The
 * worklist is doubly linked so that a cancel can take any work off it.
 * A worker never touches a work_struct after its function returned: the
 * work may have freed itself.  An ordered workqueue is one with
 * max_active 1: one worker, FIFO, hence one at a time in queueing order.
 *
 * Sleeping.  A worker that finds nothing spins briefly on the inbox, then
 * puts itself on wq->idle_workers, increments nr_idle and looks at the
 * inbox once more before it sleeps on a futex.  queue_work() pushes and
 * then reads nr_idle, both sequentially consistent: one of the two sees
 * the other, so a wake-up is never lost, and a busy worker is never sent
 * one.  The waker takes the worker off the idle list, so one sleeping
 * worker costs one wake-up, however many works arrive meanwhile.
 *
 * Flushing.  flush_workqueue() moves the inbox onto the worklist and
 * waits until no work numbered up to the last number handed out is on the
 * worklist or running; works queued after the call get higher numbers and
 * cannot livelock it.  flush_work() waits the same way for one work,
 * cancel_work_sync() takes the pending bit (stealing it from the timer or
 * the worklist, or setting it on an idle work), waits until no worker
 * runs the work, and clears the bit again; while it waits, queueing the
 * work fails, as in the kernel.  Each waiter puts its condition on
 * wq->waiters; a worker re-checks them after a work only when there are
 * any, and wakes exactly those whose wait is over.
 *
 * Delayed works sit on one list sorted by expiry, under timer_lock,
 * served by one timer thread for all workqueues; an expired work is
 * pushed onto its workqueue like any other.
 *
 * Lockups: one watchdog for every workqueue, itself delayed work on
 * "kslab-wq-wd", armed while any work runs; it reports a work that has
 * not moved for KSLAB_WQ_WATCHDOG_MS (or the workqueue's own threshold
 * and report: kslab_wq_set_reports()).  See wd_fn().
 *
 * A work function that calls pthread_exit() ends its worker thread: a
 * thread-specific-data destructor (nothing to set up per work, unlike
 * pthread_cleanup_push()) finishes the work as if it had returned, says
 * so on stderr and starts a new worker in the same slot, which joins the
 * dead one and goes on with the queue.
 *
 * RCU.  Work functions may be readers of the liburcu flavor that
 * kslab_wq_set_rcu_flavor() names (mm/kfree_rcu.c passes kslab's): a
 * worker registers with it as it starts and unregisters as it ends.
 * Under urcu-qsbr, where a registered online thread is a reader even
 * outside rcu_read_lock(), a worker goes offline whenever it finds no
 * work, comes online before the next work, and reports a quiescent state
 * between two works it runs back to back.  The per-work cost for the
 * other flavors is one test of worker->rcu_check.  Workers run on stacks
 * mapped here, because liburcu keeps a registered thread's record in the
 * thread's TLS: see map_worker_stack() for what fork() would do to it.
 *
 * fork(): kslab's one fork table (mm/lifecycle.c) calls these handlers
 * last, after every allocator lock: the prepare handler takes
 * wq_list_lock, timer_lock and every wq->lock.  Those freeze everything but the lock-free pushes, which are
 * atomic: a stack is never half-linked.  A work whose pending bit was set
 * by a thread that did not get to push it before the fork would stay
 * pending forever in the child, so the pending bit counts only with the
 * current fork generation, which the child increments: the child handler
 * restamps every work on an inbox, a worklist or the timer, forgets the
 * parent's workers, leaving their stacks mapped (new ones start when
 * work is queued or waited for, and register), and starts a timer thread
 * if a delayed work is armed.
 *
 * Locks, in order: wq_list_lock, timer_lock, wq->lock.  Workqueue
 * structures come from the C library, not from kslab, so the workqueue
 * depends on no allocator lock across fork().
 */
#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <urcu/flavor.h>

#include <kslab/workqueue.h>

#include "lib/compiler.h"
#include "lib/list.h"
#include "lib/options.h"
#include "lib/symbolize.h"
#include "lib/time.h"
#include "lib/workqueue.h"

#pragma GCC visibility push(hidden)

#define WQ_NAME_LEN		32
#define WQ_DFL_ACTIVE		16
#define WQ_MAX_ACTIVE		512
#define TASK_COMM_LEN		16
#define CACHELINE		64

/* Polls of the inbox before an idle worker goes to sleep (0 on one CPU). */
#define WQ_IDLE_SPINS		500

/* The smallest worker stack, whatever the default thread stack size. */
#define WQ_MIN_STACK		(256ul << 10)

/* work->__data: the pending bit, and the fork generation above it. */
#define WORK_STRUCT_PENDING	1ul
#define WORK_GEN_STEP		2ul

/*
 * One slot of a workqueue's max_active.  L: wq->lock.  T: the worker
 * thread itself (and the fork child handler, alone in the child).
 * S: set under wq->lock before the thread starts, read by it.
 */
struct worker {
	struct workqueue_struct *wq;		/* S */
	struct work_struct *current_work;	/* L; NULL when idle */
	work_func_t current_func;		/* L */
	unsigned long current_seq;		/* L */
	struct worker *idle_next;		/* L; on wq->idle_workers */
	int sleeping;				/* futex word: on the idle list */
	int up;					/* futex word: the thread runs */
	bool started;				/* L */
	bool rcu_check;				/* T: worker_rcu_busy() first */
	bool rcu_idle;				/* T: found no work since */
	bool rcu_qs;				/* T: online only while busy */
	const struct rcu_flavor_struct *rcu;	/* T: registered with, or NULL */
	pthread_t thread;			/* L */
	void *stack;				/* L; see map_worker_stack() */
	pthread_t reap;				/* S, then T: see reap_predecessor() */
	void *reap_stack;			/* S, then T: NULL when none */
	unsigned long touched;			/* T: kslab_wq_touch_counter() */
	/* W: the watchdog's last look at this worker */
	struct work_struct *wd_work;
	unsigned long wd_seq, wd_touched;
	uint64_t wd_since_ns;			/* since then, nothing moved */
	bool wd_reported;			/* this stall was reported */
};

/*
 * Someone waiting for the workqueue: flush_work(), cancel_work_sync(),
 * flush_workqueue(), drain_workqueue().  A waiter sits on wq->waiters
 * with its own condition variable; whatever can end a wait (a worker
 * after each work, a cancel, the timer) calls wake_waiters(), which
 * signals exactly the waiters whose condition is over.  With nobody
 * waiting, a worker pays one test per work.
 */
enum wq_wait_for {
	WAIT_WORK_UPTO,		/* @work queued or running, numbered <= @seq */
	WAIT_WORK_RUNNING,	/* @work running */
	WAIT_QUEUE_UPTO,	/* any work queued or running, numbered <= @seq */
	WAIT_QUEUE_EMPTY,	/* any work queued, armed or running */
};

struct wq_waiter {
	struct wq_waiter *next;
	enum wq_wait_for what;
	struct work_struct *work;
	unsigned long seq;
	struct worker *self;		/* the waiter's own worker: not waited for */
	bool done;
	pthread_cond_t cond;
};

/*
 * Allocated on a cache-line boundary; the padding (not an alignment
 * attribute, which list_for_each_entry()'s sentinel would violate) puts
 * the producers' line, the line they only read, and the consumers' side
 * on lines of their own.
 */
struct workqueue_struct {
	/* Written by every queue_work(). */
	struct work_struct *inbox;		/* newest first */
	/* cppcheck-suppress unusedStructMember ; padding */
	char __pad_inbox[CACHELINE - sizeof(struct work_struct *)];

	/* Read by every queue_work(); written when workers sleep or start. */
	int nr_idle;				/* on idle_workers */
	int nr_workers;				/* started threads */
	int max_active;
	/* cppcheck-suppress unusedStructMember ; padding */
	char __pad_hint[CACHELINE - 3 * sizeof(int)];

	/* The consumers' side: everything below is under lock. */
	pthread_mutex_t lock;
	struct work_struct worklist;		/* sentinel; in queueing order */
	unsigned long seq;			/* last batch number */
	struct wq_waiter *waiters;		/* flush, cancel, drain */
	int nr_timers;				/* armed; also under timer_lock */
	bool dying;
	bool start_failed;			/* reported once */
	struct worker *idle_workers;
	struct worker *workers;			/* max_active slots */
	struct list_head node;			/* all_workqueues, wq_list_lock */
	/* set once, before the first work: kslab_wq_set_reports() */
	const struct kslab_wq_reports *reports;
	char name[WQ_NAME_LEN];
};

static pthread_mutex_t wq_list_lock = PTHREAD_MUTEX_INITIALIZER;
static LIST_HEAD(all_workqueues);

static pthread_mutex_t timer_lock = PTHREAD_MUTEX_INITIALIZER;
static struct delayed_work *timer_head;
static pthread_cond_t timer_cond;
static bool timer_started;
static int timer_running;		/* futex word: the timer thread runs */

/* Read by every queue_work(); changed only in a fork child. */
static unsigned long work_gen;
static int idle_spins;

static pthread_once_t worker_once = PTHREAD_ONCE_INIT;
static pthread_key_t worker_key;
static bool worker_key_ok;
static size_t worker_stack_size, worker_guard_size;

/* Work functions may be readers of this flavor: kslab_wq_set_rcu_flavor(). */
static const struct rcu_flavor_struct *wq_rcu_flavor;

static __thread struct worker *current_worker __initial_exec;

#pragma GCC visibility pop

struct workqueue_struct *system_wq;
struct workqueue_struct *system_unbound_wq;

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" : : : "memory");
#endif
}

static void futex_wait(int *uaddr, int val)
{
	syscall(SYS_futex, uaddr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(int *uaddr)
{
	syscall(SYS_futex, uaddr, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}


/**
 * __init_work() - prepare a work item; what INIT_WORK() expands to
 * @work: the work item
 * @func: the function a worker calls with @work
 *
 * Context: any thread; @work must not be pending or running.
 */
void __init_work(struct work_struct *work, work_func_t func)
{
	memset(work, 0, sizeof(*work));
	work->func = func;
	work->__data = READ_ONCE(work_gen);
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

/**
 * current_work() - the work item the calling thread is running
 *
 * Context: any thread.  Also valid in a pthread cleanup handler that a
 * work function pushed, while pthread_exit() unwinds it.
 * Return: the work whose function the calling worker thread is executing,
 * or NULL outside a work function.
 */
struct work_struct *current_work(void)
{
	struct worker *worker = current_worker;

	return worker ? worker->current_work : NULL;
}

/* ---- the pending bit --------------------------------------------------- */

/*
 * Set @work's pending bit.  True if it was clear (or left over from
 * before a fork): the caller now owns the work and must queue it.  False
 * if it is pending; the compare-and-swap that writes the same value back
 * puts this call in the release sequence that the worker's clearing of
 * the bit reads from, so whatever the caller wrote before is seen by the
 * run that follows, as in the kernel.
 */
static __always_inline bool work_claim_pending(struct work_struct *work)
{
	unsigned long gen = READ_ONCE(work_gen);
	unsigned long old = gen;		/* the usual case: idle */

	for (;;) {
		unsigned long new = gen | WORK_STRUCT_PENDING;

		if (old == new) {
			if (__atomic_compare_exchange_n(&work->__data, &old, old,
							false, __ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED))
				return false;
			continue;
		}
		if (__atomic_compare_exchange_n(&work->__data, &old, new, false,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return true;
	}
}

static inline void work_clear_pending(struct work_struct *work)
{
	__atomic_fetch_and(&work->__data, ~WORK_STRUCT_PENDING,
			   __ATOMIC_ACQ_REL);
}

/* ---- the worklist, under wq->lock ------------------------------------ */

static inline bool worklist_empty(const struct workqueue_struct *wq)
{
	return wq->worklist.__next == &wq->worklist;
}

/* __prev is read without the lock by work_listed_on(): hence WRITE_ONCE. */
static inline void worklist_del(struct work_struct *work)
{
	struct work_struct *prev = work->__prev, *next = work->__next;

	prev->__next = next;
	WRITE_ONCE(next->__prev, prev);
	WRITE_ONCE(work->__prev, NULL);
	work->__next = NULL;
}

static inline bool work_listed_on(const struct workqueue_struct *wq,
				  struct work_struct *work)
{
	return READ_ONCE(work->__wq) == wq && READ_ONCE(work->__prev);
}

/*
 * Move everything pushed so far from the inbox to the tail of the
 * worklist, oldest first, in one pass that reverses the stack.  The
 * works of one take share a number: a flush waits for all of them.
 */
static void take_inbox(struct workqueue_struct *wq)
{
	struct work_struct *work, *older, *newer = &wq->worklist;
	struct work_struct *tail = wq->worklist.__prev;
	unsigned long seq;

	if (!READ_ONCE(wq->inbox))
		return;
	work = __atomic_exchange_n(&wq->inbox, NULL, __ATOMIC_ACQUIRE);
	seq = ++wq->seq;
	wq->worklist.__prev = work;
	for (; work; work = older) {
		older = work->__next;
		work->__next = newer;
		work->__seq = seq;
		WRITE_ONCE(work->__prev, older ? older : tail);
		newer = work;
	}
	tail->__next = newer;
}

static bool work_running_on(const struct workqueue_struct *wq,
			    const struct work_struct *work,
			    const struct worker *except)
{
	int i;

	for (i = 0; i < wq->max_active; i++) {
		const struct worker *w = &wq->workers[i];

		if (w != except && w->current_work == work)
			return true;
	}
	return false;
}

/* Does a worker but @self run @work (any if NULL), numbered <= @seq? */
static bool worker_busy_upto(const struct workqueue_struct *wq,
			     const struct work_struct *work, unsigned long seq,
			     const struct worker *self)
{
	int i;

	for (i = 0; i < wq->max_active; i++) {
		const struct worker *w = &wq->workers[i];

		if (w == self || !w->current_work)
			continue;
		if ((!work || w->current_work == work) && w->current_seq <= seq)
			return true;
	}
	return false;
}

/* Does what @w waits for still hold?  Under wq->lock. */
static bool still_busy(struct workqueue_struct *wq, const struct wq_waiter *w)
{
	switch (w->what) {
	case WAIT_WORK_UPTO:
		if (work_listed_on(wq, w->work) && w->work->__seq <= w->seq)
			return true;
		return worker_busy_upto(wq, w->work, w->seq, w->self);
	case WAIT_WORK_RUNNING:
		return worker_busy_upto(wq, w->work, ~0ul, w->self);
	case WAIT_QUEUE_UPTO:
		if (!worklist_empty(wq) && wq->worklist.__next->__seq <= w->seq)
			return true;
		return worker_busy_upto(wq, NULL, w->seq, w->self);
	case WAIT_QUEUE_EMPTY:
		if (wq->nr_timers || !worklist_empty(wq) || READ_ONCE(wq->inbox))
			return true;
		return worker_busy_upto(wq, NULL, ~0ul, w->self);
	}
	return false;
}

static void kick_if_stalled(struct workqueue_struct *wq);

/*
 * Wait until what @w describes is over; under wq->lock.
 * Return: true if it had to wait.
 */
static bool wq_wait(struct workqueue_struct *wq, struct wq_waiter *w)
{
	w->self = current_worker;
	if (!still_busy(wq, w))
		return false;
	kick_if_stalled(wq);
	pthread_cond_init(&w->cond, NULL);
	w->done = false;
	w->next = wq->waiters;
	wq->waiters = w;
	while (!w->done)
		pthread_cond_wait(&w->cond, &wq->lock);
	pthread_cond_destroy(&w->cond);
	return true;
}

/* Something finished or left the queue: signal whoever it concerns. */
static void wake_waiters(struct workqueue_struct *wq)
{
	struct wq_waiter **pp = &wq->waiters, *w;

	while ((w = *pp)) {
		if (still_busy(wq, w)) {
			pp = &w->next;
			continue;
		}
		*pp = w->next;
		w->done = true;
		pthread_cond_signal(&w->cond);
	}
}

/* ---- workers ----------------------------------------------------------- */

static void *worker_thread(void *arg);
static void worker_died(void *arg);

/* Workers' stacks are as large as the C library's default thread stacks. */
static void worker_init_once(void)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	pthread_attr_t attr;

	worker_key_ok = !pthread_key_create(&worker_key, worker_died);
	if (!pthread_getattr_default_np(&attr)) {
		pthread_attr_getstacksize(&attr, &worker_stack_size);
		pthread_attr_getguardsize(&attr, &worker_guard_size);
		pthread_attr_destroy(&attr);
	}
	if (worker_stack_size < WQ_MIN_STACK)
		worker_stack_size = WQ_MIN_STACK;
	worker_stack_size = (worker_stack_size + page - 1) & ~(page - 1);
	worker_guard_size = (worker_guard_size + page - 1) & ~(page - 1);
	if (!worker_guard_size)
		worker_guard_size = page;
}

/*
 * A worker's stack is mapped here, not by the C library.  liburcu keeps a
 * registered thread's record in the thread's TLS, which sits at the top of
 * its stack, until the thread unregisters.  The parent's workers never
 * unregister in a fork() child, where the C library would hand their
 * stacks to the child's new threads (wiping the TLS that liburcu still
 * lists) or unmap them; a stack it did not map it leaves alone, and so
 * does the child handler.  The guard page comes first.
 */
static void *map_worker_stack(void)
{
	size_t len = worker_guard_size + worker_stack_size;
	void *stack;

	stack = mmap(NULL, len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
	if (stack == MAP_FAILED)
		return NULL;
	if (mprotect(stack, worker_guard_size, PROT_NONE)) {
		munmap(stack, len);
		return NULL;
	}
	return stack;
}

static void unmap_worker_stack(void *stack)
{
	if (stack)
		munmap(stack, worker_guard_size + worker_stack_size);
}

/*
 * A worker that ended inside a work function left its slot to the worker
 * started in its place, which joins it here, before it takes any work,
 * and unmaps its stack.  destroy_workqueue() reaps one that got no
 * successor.
 */
static void reap_predecessor(struct worker *worker)
{
	void *stack = worker->reap_stack;

	if (!stack)
		return;
	worker->reap_stack = NULL;
	pthread_join(worker->reap, NULL);
	unmap_worker_stack(stack);
}

/* Return: 0 or, as pthread_create(), a positive error number. */
static int create_worker_thread(struct worker *worker)
{
	pthread_attr_t attr;
	int err = ENOMEM;

	worker->stack = map_worker_stack();
	if (worker->stack) {
		pthread_attr_init(&attr);
		err = pthread_attr_setstack(&attr, (char *)worker->stack + worker_guard_size,
					    worker_stack_size);
		if (!err)
			err = pthread_create(&worker->thread, &attr, worker_thread,
					     worker);
		pthread_attr_destroy(&attr);
	}
	if (err) {
		unmap_worker_stack(worker->stack);
		worker->stack = NULL;
	}
	return err;
}

/* Start a worker in slot @worker; a failure is reported once, the work stays. */
static void start_worker_in(struct workqueue_struct *wq, struct worker *worker)
{
	int err;

	worker->wq = wq;
	worker->current_work = NULL;
	worker->current_func = NULL;
	worker->sleeping = 0;
	worker->up = 0;
	err = create_worker_thread(worker);
	if (err) {
		if (!wq->start_failed)
			fprintf(stderr, "kslab: workqueue %s: cannot start a worker: %s\n",
				wq->name, strerror(err));
		wq->start_failed = true;
		return;
	}
	/*
	 * Wait, still holding wq->lock, until the thread runs: a thread still
	 * starting may hold the C library's or a sanitizer's allocator locks,
	 * or liburcu's registry lock, and fork(), whose prepare handler takes
	 * every wq->lock, then never meets one (gcc 12's ASan allocator lock
	 * is not taken around fork()).  The new thread takes no lock of ours
	 * before it says so.
	 */
	while (!__atomic_load_n(&worker->up, __ATOMIC_ACQUIRE))
		futex_wait(&worker->up, 0);
	worker->started = true;
	WRITE_ONCE(wq->nr_workers, wq->nr_workers + 1);
}

/* Start one more worker, in the first free slot. */
static void start_worker(struct workqueue_struct *wq)
{
	int i;

	for (i = 0; i < wq->max_active; i++) {
		if (!wq->workers[i].started) {
			start_worker_in(wq, &wq->workers[i]);
			return;
		}
	}
}

/* Take one worker off the idle list; the caller wakes it. */
static struct worker *unidle_worker(struct workqueue_struct *wq)
{
	struct worker *worker = wq->idle_workers;

	wq->idle_workers = worker->idle_next;
	worker->idle_next = NULL;
	__atomic_sub_fetch(&wq->nr_idle, 1, __ATOMIC_RELAXED);
	__atomic_store_n(&worker->sleeping, 0, __ATOMIC_RELEASE);
	return worker;
}

/*
 * The slow end of queue_work(): a worker sleeps, or fewer than max_active
 * have started.  Wake one, or start one.
 */
static noinline void kick_worker(struct workqueue_struct *wq)
{
	struct worker *woken = NULL;

	pthread_mutex_lock(&wq->lock);
	if (wq->idle_workers)
		woken = unidle_worker(wq);
	else if (wq->nr_workers < wq->max_active && !wq->dying)
		start_worker(wq);
	pthread_mutex_unlock(&wq->lock);
	/* workers live until destroy_workqueue(), which waits for queueing */
	if (woken)
		futex_wake(&woken->sleeping);
}

/*
 * A waiter found work on the worklist: make sure some worker will run it
 * (after fork() the child starts with none).  Under wq->lock.
 */
static void kick_if_stalled(struct workqueue_struct *wq)
{
	if (!wq->nr_workers && !worklist_empty(wq) && !wq->dying)
		start_worker(wq);
}

/*
 * The oldest work that no other worker of the queue runs, taken off the
 * worklist, or NULL.  Under wq->lock.
 */
static struct work_struct *pick_work(struct worker *worker)
{
	struct workqueue_struct *wq = worker->wq;
	struct work_struct *work = wq->worklist.__next;

	for (;;) {
		struct work_struct *tail;

		for (; work != &wq->worklist; work = work->__next) {
			if (wq->max_active == 1 ||
			    !work_running_on(wq, work, worker)) {
				worklist_del(work);
				return work;
			}
		}
		if (!READ_ONCE(wq->inbox))
			return NULL;
		tail = wq->worklist.__prev;
		take_inbox(wq);
		work = tail->__next;
	}
}

/* ---- workers as RCU readers ------------------------------------------ */

/*
 * Make the calling worker a reader of @flavor (none if NULL).  Under a
 * flavor in which a registered thread counts as a reader even outside
 * rcu_read_lock(), urcu-qsbr's, registering put the worker online, and
 * online is a read-side critical section as far as anyone can tell: such
 * a worker (rcu_qs) must be online only while it has work.
 */
static void worker_rcu_register(struct worker *worker,
				const struct rcu_flavor_struct *flavor)
{
	worker->rcu = flavor;
	worker->rcu_qs = false;
	if (!flavor)
		return;
	flavor->register_thread();
	worker->rcu_qs = flavor->read_ongoing && flavor->read_ongoing();
}

static void worker_rcu_unregister(struct worker *worker)
{
	if (worker->rcu)
		worker->rcu->unregister_thread();
	worker->rcu = NULL;
	worker->rcu_qs = false;
}

/*
 * The worker found no work: a qsbr worker goes offline while it polls or
 * sleeps, so that no grace period waits for it.  Under wq->lock (going
 * offline takes no lock).
 */
static inline void worker_rcu_idle(struct worker *worker)
{
	if (worker->rcu_idle)
		return;
	if (worker->rcu_qs)
		worker->rcu->thread_offline();
	worker->rcu_idle = true;
	worker->rcu_check = true;
}

/*
 * Before a work, when rcu_check says so.  After an idle spell: register
 * afresh if the flavor changed meanwhile (kslab_set_rcu_flavor() after
 * this worker started), or come back online under qsbr.  Between two
 * works without an idle spell (qsbr only): report a quiescent state, as
 * the worker holds nothing from the work before.  No lock held.
 */
static noinline void worker_rcu_busy(struct worker *worker)
{
	const struct rcu_flavor_struct *flavor = READ_ONCE(wq_rcu_flavor);

	if (!worker->rcu_idle) {
		worker->rcu->read_quiescent_state();
	} else if (flavor != worker->rcu) {
		worker_rcu_unregister(worker);
		worker_rcu_register(worker, flavor);
	} else if (worker->rcu_qs) {
		flavor->thread_online();
	}
	worker->rcu_idle = false;
	worker->rcu_check = worker->rcu_qs;
}

/**
 * kslab_wq_set_rcu_flavor() - the RCU flavor work functions read under
 * @flavor: a liburcu flavor, or NULL for none
 *
 * Every worker registers with @flavor as it starts and unregisters as it
 * ends, so a work function may take @flavor's rcu_read_lock() and grace
 * periods wait for it.  A worker already running switches to @flavor when
 * it next finds work after an idle spell.
 *
 * Context: any thread.
 */
void kslab_wq_set_rcu_flavor(const struct rcu_flavor_struct *flavor)
{
	WRITE_ONCE(wq_rcu_flavor, flavor);
}

/**
 * kslab_wq_worker_reports_qs() - whether kslab_wq_worker_qs() does anything
 *
 * Context: a work function; the answer holds until it returns.
 * Return: true in a worker of a quiescent-state-based flavor (urcu-qsbr).
 */
bool kslab_wq_worker_reports_qs(void)
{
	struct worker *worker = current_worker;

	return worker && worker->rcu_qs;
}

/**
 * kslab_wq_worker_qs() - report a quiescent state from a work function
 *
 * For a work function that runs many independent steps (the finalizer
 * drain runs every finalizer): between two of them it holds no RCU
 * reference, and says so, so a grace period need not wait for the whole
 * work.  The kernel's cond_resched() does the same in a long work.
 *
 * Context: a work function, outside any read-side critical section, only
 * where kslab_wq_worker_reports_qs() returned true.
 */
void kslab_wq_worker_qs(void)
{
	current_worker->rcu->read_quiescent_state();
}

/* Run @work; called and returns with wq->lock held. */
/* ---- the lockup watchdog ------------------------------------------------ */

/*
 * One watchdog for every workqueue, kslab's own included: delayed work on
 * its own ordered workqueue ("kslab-wq-wd"), armed while some work runs.
 * Each tick it looks at every busy worker: a worker whose work item
 * (work, batch number and the work's own kslab_wq_touch_counter()) has
 * not moved for the workqueue's threshold is reported, once per stall,
 * naming the work function, or through the workqueue's own report
 * (kslab_wq_set_reports()).  Workers pay one load per item; nothing runs
 * while every workqueue is idle.
 */
#define WQ_WD_TICK_MS		250
#define WQ_WD_MAX_REPORTS	8

static struct workqueue_struct *wd_wq;
static struct delayed_work wd_dwork;
static int wd_armed;			/* the watchdog work is queued or runs */
static unsigned long wd_first_tick_ms;	/* the shortest tick any queue asks */

static void wd_fn(struct work_struct *work);
static unsigned long wd_tick_ms(unsigned long threshold_ms);

static void wd_init(void)
{
	unsigned long tick = wd_tick_ms(kslab_option(OPT_WQ_WATCHDOG_MS));

	if (!wd_first_tick_ms || tick < wd_first_tick_ms)
		WRITE_ONCE(wd_first_tick_ms, tick);
	INIT_DELAYED_WORK(&wd_dwork, wd_fn);
	wd_wq = alloc_ordered_workqueue("kslab-wq-wd", 0);
}

static unsigned long wd_threshold_ms(const struct workqueue_struct *wq)
{
	if (wq->reports && wq->reports->watchdog_ms)
		return wq->reports->watchdog_ms;
	return (unsigned long)kslab_option(OPT_WQ_WATCHDOG_MS);
}

static unsigned long wd_tick_ms(unsigned long threshold_ms)
{
	unsigned long tick = threshold_ms / 4;

	if (tick > WQ_WD_TICK_MS)
		tick = WQ_WD_TICK_MS;
	return tick ? tick : 1;
}

/* From a worker about to run a work while the watchdog is idle. */
/* From a worker about to run a work while the watchdog is idle. */
static noinline void wd_arm(void)
{
	if (__atomic_exchange_n(&wd_armed, 1, __ATOMIC_SEQ_CST))
		return;
	if (wd_wq)
		queue_delayed_work(wd_wq, &wd_dwork,
				   msecs_to_jiffies(READ_ONCE(wd_first_tick_ms)));
}

struct wd_stall {
	struct workqueue_struct *wq;
	work_func_t fn;
	unsigned long ms;
};

/*
 * Look at @wq's workers; note the stalls to report in @st (up to @max).
 * Context: wq_list_lock held; takes wq->lock, which orders the look
 * against a worker starting a work (process_one_work()).
 * Return: whether a worker of @wq runs a work.
 */
static bool wd_look(struct workqueue_struct *wq, uint64_t now,
		    struct wd_stall *st, unsigned int *n, unsigned int max)
{
	uint64_t threshold_ns = wd_threshold_ms(wq) * NSEC_PER_MSEC;
	bool busy = false;
	int i;

	pthread_mutex_lock(&wq->lock);
	for (i = 0; i < wq->max_active; i++) {
		struct worker *w = &wq->workers[i];
		unsigned long touched = READ_ONCE(w->touched);

		if (!w->current_work || w == current_worker)
			continue;
		busy = true;
		if (w->current_work != w->wd_work ||
		    w->current_seq != w->wd_seq || touched != w->wd_touched) {
			w->wd_work = w->current_work;
			w->wd_seq = w->current_seq;
			w->wd_touched = touched;
			w->wd_since_ns = now;
			w->wd_reported = false;
			continue;
		}
		if (w->wd_reported || now - w->wd_since_ns < threshold_ns ||
		    *n == max)
			continue;
		w->wd_reported = true;
		st[*n].wq = wq;
		st[*n].fn = w->current_func;
		st[*n].ms = (unsigned long)((now - w->wd_since_ns) / NSEC_PER_MSEC);
		(*n)++;
	}
	pthread_mutex_unlock(&wq->lock);
	return busy;
}

static void wd_report(const struct wd_stall *st)
{
	char name[KSLAB_SYM_NAME_LEN];

	if (st->wq->reports && st->wq->reports->lockup) {
		st->wq->reports->lockup(st->ms);
		return;
	}
	kslab_symbolize((const void *)(uintptr_t)st->fn, name, sizeof(name));
	fprintf(stderr,
		"kslab: BUG: workqueue lockup: %s: work function %s() running for %lu ms\n",
		st->wq->name, name, st->ms);
}

/* The watchdog's tick; re-arms itself while some work runs. */
static void wd_fn(struct work_struct *work)
{
	struct wd_stall st[WQ_WD_MAX_REPORTS];
	unsigned long tick = wd_tick_ms(kslab_option(OPT_WQ_WATCHDOG_MS));
	uint64_t now = kslab_now_ns();
	struct workqueue_struct *wq;
	unsigned int n = 0, i;
	bool busy = false;

	(void)work;
	/* a worker that starts a work after our look at it arms us again */
	__atomic_store_n(&wd_armed, 0, __ATOMIC_SEQ_CST);
	pthread_mutex_lock(&wq_list_lock);
	list_for_each_entry(wq, &all_workqueues, node) {
		unsigned long t = wd_tick_ms(wd_threshold_ms(wq));

		busy |= wd_look(wq, now, st, &n, ARRAY_SIZE(st));
		if (t < tick)
			tick = t;
	}
	pthread_mutex_unlock(&wq_list_lock);
	/* symbolizing reads files: no lock held */
	for (i = 0; i < n; i++)
		wd_report(&st[i]);
	if (busy && !__atomic_exchange_n(&wd_armed, 1, __ATOMIC_SEQ_CST))
		queue_delayed_work(wd_wq, &wd_dwork, msecs_to_jiffies(tick));
}

/**
 * kslab_wq_set_reports - how a workqueue's lockups and exits are reported
 * @wq: the workqueue, before its first work
 * @reports: lives as long as @wq
 *
 * For a workqueue whose one work runs many items of its own (the
 * finalizer queue): its own watchdog threshold and lockup report, and the
 * name of what a work function that calls pthread_exit() was running.
 */
void kslab_wq_set_reports(struct workqueue_struct *wq,
			  const struct kslab_wq_reports *reports)
{
	unsigned long tick = wd_tick_ms(reports->watchdog_ms ?
					reports->watchdog_ms :
					(unsigned long)kslab_option(OPT_WQ_WATCHDOG_MS));

	pthread_mutex_lock(&wq->lock);
	wq->reports = reports;
	pthread_mutex_unlock(&wq->lock);
	pthread_mutex_lock(&wq_list_lock);
	if (!wd_first_tick_ms || tick < wd_first_tick_ms)
		WRITE_ONCE(wd_first_tick_ms, tick);
	pthread_mutex_unlock(&wq_list_lock);
}

/**
 * kslab_wq_touch_counter - the calling worker's progress counter
 *
 * A work function that runs many items of its own bumps it after each,
 * so that the watchdog times each item, not the whole work.  Owned by the
 * worker: bump it with WRITE_ONCE(), no atomic needed.
 * Return: the counter, or NULL outside a work function.
 */
unsigned long *kslab_wq_touch_counter(void)
{
	return current_worker ? &current_worker->touched : NULL;
}

static void process_one_work(struct worker *worker, struct work_struct *work)
{
	struct workqueue_struct *wq = worker->wq;
	work_func_t func = work->func;

	worker->current_work = work;
	worker->current_seq = work->__seq;
	worker->current_func = func;
	/* from here @work may be queued again, and freed by func */
	work_clear_pending(work);
	pthread_mutex_unlock(&wq->lock);

	if (unlikely(worker->rcu_check))
		worker_rcu_busy(worker);
	/* ordered by wq->lock against the watchdog's look: see wd_look() */
	if (unlikely(!__atomic_load_n(&wd_armed, __ATOMIC_RELAXED)))
		wd_arm();
	func(work);

	pthread_mutex_lock(&wq->lock);
	worker->current_work = NULL;
	worker->current_func = NULL;
	if (unlikely(wq->waiters))
		wake_waiters(wq);
}

/* Poll the inbox a while before sleeping: queueing often comes in bursts. */
static void spin_for_work(struct workqueue_struct *wq)
{
	int i;

	for (i = 0; i < idle_spins; i++) {
		if (READ_ONCE(wq->inbox))
			return;
		cpu_relax();
	}
}

/* Sleep until kick_worker() or destroy_workqueue(); under wq->lock. */
static void worker_sleep(struct worker *worker)
{
	struct workqueue_struct *wq = worker->wq;

	__atomic_store_n(&worker->sleeping, 1, __ATOMIC_RELAXED);
	worker->idle_next = wq->idle_workers;
	wq->idle_workers = worker;
	/* pairs with insert_work(): push, then read nr_idle */
	__atomic_add_fetch(&wq->nr_idle, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&wq->inbox, __ATOMIC_SEQ_CST)) {
		struct worker **pp;

		/* a push raced with us: stay up (we hold the lock wakers need) */
		for (pp = &wq->idle_workers; *pp != worker; pp = &(*pp)->idle_next)
			;
		*pp = worker->idle_next;
		worker->idle_next = NULL;
		__atomic_sub_fetch(&wq->nr_idle, 1, __ATOMIC_RELAXED);
		__atomic_store_n(&worker->sleeping, 0, __ATOMIC_RELAXED);
		return;
	}
	pthread_mutex_unlock(&wq->lock);
	while (__atomic_load_n(&worker->sleeping, __ATOMIC_ACQUIRE))
		futex_wait(&worker->sleeping, 1);
	pthread_mutex_lock(&wq->lock);
}

static void *worker_thread(void *arg)
{
	struct worker *worker = arg;
	struct workqueue_struct *wq = worker->wq;
	char comm[TASK_COMM_LEN];
	bool spun = false;

	/* the kernel's limit: 15 characters and the NUL */
	memcpy(comm, wq->name, sizeof(comm) - 1);
	comm[sizeof(comm) - 1] = '\0';
	pthread_setname_np(pthread_self(), comm);
	current_worker = worker;
	if (worker_key_ok)
		pthread_setspecific(worker_key, worker);
	worker_rcu_register(worker, READ_ONCE(wq_rcu_flavor));
	/* started: see start_worker_in(); then the predecessor, which waits */
	__atomic_store_n(&worker->up, 1, __ATOMIC_RELEASE);
	futex_wake(&worker->up);
	reap_predecessor(worker);
	worker->rcu_idle = false;
	worker->rcu_check = worker->rcu_qs;

	pthread_mutex_lock(&wq->lock);
	for (;;) {
		struct work_struct *work = pick_work(worker);

		if (work) {
			process_one_work(worker, work);
			spun = false;
			continue;
		}
		worker_rcu_idle(worker);
		if (wq->dying)
			break;
		if (!spun && idle_spins) {
			spun = true;
			pthread_mutex_unlock(&wq->lock);
			spin_for_work(wq);
			pthread_mutex_lock(&wq->lock);
			continue;
		}
		spun = false;
		worker_sleep(worker);
	}
	pthread_mutex_unlock(&wq->lock);
	if (worker_key_ok)
		pthread_setspecific(worker_key, NULL);
	worker_rcu_unregister(worker);
	current_worker = NULL;
	return NULL;
}

/*
 * The thread-specific-data destructor of a worker: it runs only when the
 * thread ends inside a work function (pthread_exit(), or cancellation),
 * after the cleanup handlers the function pushed.  Finish the work as if
 * it had returned and hand the queue to a new worker in the same slot,
 * which joins this thread and unmaps its stack.
 */
static void worker_died(void *arg)
{
	struct worker *worker = arg;
	struct workqueue_struct *wq = worker->wq;
	/* this worker alone sets it: no lock needed to read it */
	const void *fn = (const void *)(uintptr_t)worker->current_func;
	const char *what = "work function";
	char name[KSLAB_SYM_NAME_LEN];

	/* a work that runs items of its own finishes, then names, that item */
	if (fn && wq->reports && wq->reports->exited)
		wq->reports->exited();
	worker_rcu_unregister(worker);
	if (fn && wq->reports && wq->reports->running) {
		fn = wq->reports->running();
		what = wq->reports->what;
	}
	/* named before taking the lock: symbolizing reads files, mallocs */
	if (fn)
		kslab_symbolize(fn, name, sizeof(name));
	pthread_mutex_lock(&wq->lock);
	if (fn)
		fprintf(stderr,
			"kslab: workqueue %s: %s %s() called pthread_exit(); worker replaced\n",
			wq->name, what, name);
	worker->current_work = NULL;
	worker->current_func = NULL;
	wake_waiters(wq);
	worker->reap = pthread_self();
	worker->reap_stack = worker->stack;
	worker->stack = NULL;
	worker->started = false;
	WRITE_ONCE(wq->nr_workers, wq->nr_workers - 1);
	if (!wq->dying)
		start_worker_in(wq, worker);
	pthread_mutex_unlock(&wq->lock);
	current_worker = NULL;
}

/* ---- queueing ---------------------------------------------------------- */

/* Push @work, whose pending bit the caller owns, and see to a worker. */
static __always_inline void insert_work(struct workqueue_struct *wq,
					struct work_struct *work)
{
	struct work_struct *first = READ_ONCE(wq->inbox);

	WRITE_ONCE(work->__wq, wq);
	do {
		work->__next = first;
	} while (!__atomic_compare_exchange_n(&wq->inbox, &first, work, true,
					      __ATOMIC_SEQ_CST,
					      __ATOMIC_RELAXED));
	/* pairs with worker_sleep(): one of us sees the other */
	if (unlikely(__atomic_load_n(&wq->nr_idle, __ATOMIC_SEQ_CST) ||
		     READ_ONCE(wq->nr_workers) < wq->max_active))
		kick_worker(wq);
}

/**
 * queue_work() - queue a work item
 * @wq: the workqueue
 * @work: the work item
 *
 * A work that is running but not pending is queued again and runs once
 * more after the current run (on an ordered workqueue, after everything
 * queued before it).  If @work is already pending nothing changes, and
 * the pending run will see what the caller wrote before the call.
 *
 * Context: any thread, including a work function; takes no lock unless a
 * worker has to be woken or started.
 * Return: false if @work was already pending, true if it is now queued.
 */
bool queue_work(struct workqueue_struct *wq, struct work_struct *work)
{
	if (!work_claim_pending(work))
		return false;
	insert_work(wq, work);
	return true;
}

/* ---- the timer --------------------------------------------------------- */

/* nr_timers is written under timer_lock and wq->lock, read under either. */
static void timer_count(struct workqueue_struct *wq, int delta)
{
	pthread_mutex_lock(&wq->lock);
	wq->nr_timers += delta;
	if (delta < 0)
		wake_waiters(wq);
	pthread_mutex_unlock(&wq->lock);
}

/* Take @dwork off the timer list; under timer_lock.  It stays pending. */
static void timer_unlink(struct delayed_work *dwork)
{
	struct delayed_work **pp;

	for (pp = &timer_head; *pp; pp = &(*pp)->__timer_next) {
		if (*pp == dwork) {
			*pp = dwork->__timer_next;
			break;
		}
	}
	dwork->__timer_next = NULL;
	dwork->__on_timer = false;
}

/* Queue an armed @dwork on its workqueue now; under timer_lock. */
static void timer_fire(struct delayed_work *dwork)
{
	struct workqueue_struct *wq = dwork->work.__wq;

	timer_unlink(dwork);
	insert_work(wq, &dwork->work);
	/* only now: drain_workqueue() must not see it nowhere */
	timer_count(wq, -1);
}

static void *timer_thread(void *arg)
{
	pthread_setname_np(pthread_self(), "kslab-wq-timer");
	/* up and running: see start_timer(), which holds timer_lock */
	__atomic_store_n(&timer_running, 1, __ATOMIC_RELEASE);
	futex_wake(&timer_running);
	pthread_mutex_lock(&timer_lock);
	for (;;) {
		struct delayed_work *dwork = timer_head;

		if (!dwork) {
			pthread_cond_wait(&timer_cond, &timer_lock);
			continue;
		}
		if (dwork->__expires_ns > kslab_now_ns()) {
			kslab_cond_wait_until(&timer_cond, &timer_lock,
					      dwork->__expires_ns);
			continue;
		}
		timer_fire(dwork);
	}
	return arg;
}

/* Under timer_lock. */
/*
 * Under timer_lock.  Returns once the timer thread runs, still holding
 * the lock: a thread that is still starting may hold the C library's (or
 * a sanitizer's) allocator locks, and fork(), whose prepare handler takes
 * timer_lock, must not meet one (see start_worker_in()).
 */
static void start_timer(void)
{
	/* its own stack, as a worker's: see map_worker_stack() */
	void *stack = map_worker_stack();
	pthread_attr_t attr;
	pthread_t thread;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (stack)
		pthread_attr_setstack(&attr, (char *)stack + worker_guard_size,
				      worker_stack_size);
	timer_running = 0;
	if (!pthread_create(&thread, &attr, timer_thread, NULL)) {
		timer_started = true;
		while (!__atomic_load_n(&timer_running, __ATOMIC_ACQUIRE))
			futex_wait(&timer_running, 0);
	} else {
		unmap_worker_stack(stack);
		fprintf(stderr, "kslab: cannot start the workqueue timer\n");
	}
	pthread_attr_destroy(&attr);
}

/* After fork() the timer thread is gone: start it if something is armed. */
static void kick_timer(void)
{
	pthread_mutex_lock(&timer_lock);
	if (timer_head && !timer_started)
		start_timer();
	pthread_mutex_unlock(&timer_lock);
}

/* Arm @dwork, whose pending bit the caller owns; under timer_lock. */
static void timer_add(struct workqueue_struct *wq, struct delayed_work *dwork,
		      unsigned long delay)
{
	struct delayed_work **pp;

	WRITE_ONCE(dwork->work.__wq, wq);
	dwork->__expires_ns = kslab_now_ns() + (uint64_t)delay * (1000000000ull / HZ);
	dwork->__on_timer = true;
	timer_count(wq, 1);
	for (pp = &timer_head; *pp; pp = &(*pp)->__timer_next)
		if ((*pp)->__expires_ns > dwork->__expires_ns)
			break;
	dwork->__timer_next = *pp;
	*pp = dwork;

	if (!timer_started)
		start_timer();
	if (timer_head == dwork)
		pthread_cond_signal(&timer_cond);
}

/* Queue or arm @dwork, whose pending bit the caller owns. */
static void __queue_delayed_work(struct workqueue_struct *wq,
				 struct delayed_work *dwork,
				 unsigned long delay)
{
	if (!delay) {
		insert_work(wq, &dwork->work);
		return;
	}
	pthread_mutex_lock(&timer_lock);
	timer_add(wq, dwork, delay);
	pthread_mutex_unlock(&timer_lock);
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
	if (!work_claim_pending(&dwork->work))
		return false;
	__queue_delayed_work(wq, dwork, delay);
	return true;
}

/* ---- taking a pending work back -------------------------------------- */

static bool steal_from_timer(struct delayed_work *dwork)
{
	struct workqueue_struct *wq = NULL;

	pthread_mutex_lock(&timer_lock);
	if (dwork->__on_timer) {
		wq = dwork->work.__wq;
		timer_unlink(dwork);
		timer_count(wq, -1);
	}
	pthread_mutex_unlock(&timer_lock);
	return wq != NULL;
}

static bool steal_from_worklist(struct workqueue_struct *wq,
				struct work_struct *work)
{
	bool found;

	pthread_mutex_lock(&wq->lock);
	take_inbox(wq);
	found = work_listed_on(wq, work);
	if (found) {
		worklist_del(work);
		wake_waiters(wq);
	}
	pthread_mutex_unlock(&wq->lock);
	return found;
}

static void grab_backoff(unsigned int *tries)
{
	struct timespec ts = { 0, 1000000 };

	if (++*tries < 100)
		sched_yield();
	else
		nanosleep(&ts, NULL);
}

/*
 * Make the caller the owner of @work's pending bit: steal it from the
 * timer (@is_dwork) or a worklist if @work is pending, set it if not.
 * Until the caller clears it, queueing @work fails.
 *
 * Return: true if @work was pending.
 */
static bool grab_pending(struct work_struct *work, bool is_dwork)
{
	unsigned int tries = 0;

	for (;;) {
		struct workqueue_struct *wq;

		if (work_claim_pending(work))
			return false;
		if (is_dwork && steal_from_timer(to_delayed_work(work)))
			return true;
		wq = READ_ONCE(work->__wq);
		if (wq && steal_from_worklist(wq, work))
			return true;
		/*
		 * Pending on no list: another thread is between setting the
		 * bit and pushing, or a cancel holds it while it waits.
		 */
		grab_backoff(&tries);
	}
}

/**
 * mod_delayed_work() - queue a delayed work, or change its delay
 * @wq: the workqueue
 * @dwork: the delayed work
 * @delay: jiffies from now; 0 queues at once
 *
 * Unlike queue_delayed_work(), re-arms @dwork if it is already pending,
 * on the timer or queued.  Returns as the kernel's does.
 *
 * Context: any thread, including a work function.
 * Return: true if @dwork was pending and has been re-armed with @delay,
 * false if it was idle and is now armed.
 */
bool mod_delayed_work(struct workqueue_struct *wq,
		      struct delayed_work *dwork, unsigned long delay)
{
	bool was_pending = grab_pending(&dwork->work, true);

	__queue_delayed_work(wq, dwork, delay);
	return was_pending;
}

/* ---- flushing and cancelling ----------------------------------------- */

/**
 * flush_work() - wait for the last queueing of a work to finish
 * @work: the work item
 *
 * Context: any thread but @work's own worker.
 * Return: true if it had to wait, false if @work was idle.
 */
bool flush_work(struct work_struct *work)
{
	struct workqueue_struct *wq = READ_ONCE(work->__wq);
	struct wq_waiter w = { .what = WAIT_WORK_UPTO, .work = work };
	bool waited;

	if (!wq)
		return false;
	pthread_mutex_lock(&wq->lock);
	take_inbox(wq);
	w.seq = wq->seq;
	waited = wq_wait(wq, &w);
	pthread_mutex_unlock(&wq->lock);
	return waited;
}

/**
 * flush_delayed_work() - run a delayed work now and wait for it
 * @dwork: the delayed work
 *
 * A work still waiting for its timer is queued at once.
 *
 * Context: any thread but @dwork's own worker.
 * Return: true if it had to wait (or @dwork was armed), false if @dwork
 * was idle.
 */
bool flush_delayed_work(struct delayed_work *dwork)
{
	bool armed;

	pthread_mutex_lock(&timer_lock);
	armed = dwork->__on_timer;
	if (armed)
		timer_fire(dwork);
	pthread_mutex_unlock(&timer_lock);
	/* armed counts as waited even when a worker was quicker than us */
	return flush_work(&dwork->work) || armed;
}

static bool __cancel_work_sync(struct work_struct *work, bool is_dwork)
{
	bool was_pending = grab_pending(work, is_dwork);
	struct workqueue_struct *wq = READ_ONCE(work->__wq);
	struct wq_waiter w = { .what = WAIT_WORK_RUNNING, .work = work };

	if (wq) {
		pthread_mutex_lock(&wq->lock);
		wq_wait(wq, &w);
		pthread_mutex_unlock(&wq->lock);
	}
	__atomic_fetch_and(&work->__data, ~WORK_STRUCT_PENDING,
			   __ATOMIC_RELEASE);
	return was_pending;
}

/**
 * cancel_work_sync() - cancel a work and wait for it to stop running
 * @work: the work item
 *
 * On return @work is neither pending nor running.  While it waits for a
 * running instance, queueing @work fails (returns false), so a work that
 * re-queues itself is stopped too.  Called from @work's own function it
 * only takes a pending instance off its queue.
 *
 * Context: any thread; must not be called from another work of the
 * same workqueue if that could wait for the caller (as in the kernel).
 * Return: true if @work was pending.
 */
bool cancel_work_sync(struct work_struct *work)
{
	return __cancel_work_sync(work, false);
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
	return __cancel_work_sync(&dwork->work, true);
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
	struct wq_waiter w = { .what = WAIT_QUEUE_UPTO };

	pthread_mutex_lock(&wq->lock);
	take_inbox(wq);
	w.seq = wq->seq;
	wq_wait(wq, &w);
	pthread_mutex_unlock(&wq->lock);
}

/* Wait until nothing is queued, armed or running; under wq->lock. */
static void __drain_workqueue(struct workqueue_struct *wq)
{
	struct wq_waiter w = { .what = WAIT_QUEUE_EMPTY };

	do
		take_inbox(wq);
	while (wq_wait(wq, &w));
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
	kick_timer();
	pthread_mutex_lock(&wq->lock);
	__drain_workqueue(wq);
	pthread_mutex_unlock(&wq->lock);
}

/* ---- creation and destruction ---------------------------------------- */

static struct workqueue_struct *__alloc_workqueue(const char *fmt, va_list ap,
						  int max_active)
{
	struct workqueue_struct *wq;
	size_t size;

	if (max_active <= 0)
		max_active = WQ_DFL_ACTIVE;
	if (max_active > WQ_MAX_ACTIVE)
		max_active = WQ_MAX_ACTIVE;

	size = (sizeof(*wq) + CACHELINE - 1) & ~(size_t)(CACHELINE - 1);
	wq = aligned_alloc(CACHELINE, size);
	if (!wq)
		return NULL;
	memset(wq, 0, size);
	wq->workers = calloc((size_t)max_active, sizeof(*wq->workers));
	if (!wq->workers)
		goto free_wq;
	wq->max_active = max_active;
	wq->worklist.__next = &wq->worklist;
	wq->worklist.__prev = &wq->worklist;
	vsnprintf(wq->name, sizeof(wq->name), fmt, ap);
	pthread_mutex_init(&wq->lock, NULL);
	pthread_once(&worker_once, worker_init_once);

	pthread_mutex_lock(&wq_list_lock);
	list_add_tail(&wq->node, &all_workqueues);
	pthread_mutex_unlock(&wq_list_lock);
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
	struct worker *woken = NULL;
	int i;

	if (!wq)
		return;
	drain_workqueue(wq);
	pthread_mutex_lock(&wq_list_lock);
	list_del_init(&wq->node);
	pthread_mutex_unlock(&wq_list_lock);

	pthread_mutex_lock(&wq->lock);
	WRITE_ONCE(wq->dying, true);
	while (wq->idle_workers) {
		struct worker *worker = unidle_worker(wq);

		worker->idle_next = woken;
		woken = worker;
	}
	pthread_mutex_unlock(&wq->lock);
	for (; woken; woken = woken->idle_next)
		futex_wake(&woken->sleeping);

	for (i = 0; i < wq->max_active; i++) {
		struct worker *worker = &wq->workers[i];

		if (worker->started) {
			pthread_join(worker->thread, NULL);
			unmap_worker_stack(worker->stack);
		}
		reap_predecessor(worker);
	}
	pthread_mutex_destroy(&wq->lock);
	free(wq->workers);
	free(wq);
}

/* ---- fork and start-up ----------------------------------------------- */

void kslab_wq_fork_prepare(void)
{
	struct workqueue_struct *wq;

	pthread_mutex_lock(&wq_list_lock);
	pthread_mutex_lock(&timer_lock);
	list_for_each_entry(wq, &all_workqueues, node)
		pthread_mutex_lock(&wq->lock);
}

void kslab_wq_fork_parent(void)
{
	struct workqueue_struct *wq;

	list_for_each_entry(wq, &all_workqueues, node)
		pthread_mutex_unlock(&wq->lock);
	pthread_mutex_unlock(&timer_lock);
	pthread_mutex_unlock(&wq_list_lock);
}

static void restamp_pending(struct work_struct *work)
{
	WRITE_ONCE(work->__data, work_gen | WORK_STRUCT_PENDING);
}

/*
 * The child of fork(): only the forking thread exists.  It may be a
 * worker (a work function called fork()), which keeps its place.
 */
static void wq_atfork_child_wq(struct workqueue_struct *wq)
{
	struct work_struct *work;
	int i;

	take_inbox(wq);
	for (work = wq->worklist.__next; work != &wq->worklist;
	     work = work->__next)
		restamp_pending(work);
	wq->waiters = NULL;
	wq->idle_workers = NULL;
	wq->nr_idle = 0;
	wq->nr_workers = 0;
	for (i = 0; i < wq->max_active; i++) {
		struct worker *w = &wq->workers[i];

		w->idle_next = NULL;
		w->sleeping = 0;
		if (w == current_worker) {
			wq->nr_workers++;
			continue;
		}
		/* liburcu may still list its thread, in its TLS: leave it */
		w->stack = NULL;
		w->reap_stack = NULL;
		w->started = false;
		w->current_work = NULL;
		w->current_func = NULL;
	}
}

void kslab_wq_fork_child(void)
{
	struct workqueue_struct *wq;
	struct delayed_work *dwork;

	WRITE_ONCE(work_gen, work_gen + WORK_GEN_STEP);
	kslab_cond_init_monotonic(&timer_cond);
	timer_started = false;
	for (dwork = timer_head; dwork; dwork = dwork->__timer_next)
		restamp_pending(&dwork->work);
	list_for_each_entry(wq, &all_workqueues, node) {
		wq_atfork_child_wq(wq);
		pthread_mutex_unlock(&wq->lock);
	}
	pthread_mutex_unlock(&timer_lock);
	pthread_mutex_unlock(&wq_list_lock);
}

/**
 * kslab_wq_fork_child_restart - start the child's workers and timer
 *
 * The second half of the fork child's work, run by mm/lifecycle.c once
 * every part of kslab has read what the parent's threads left in their
 * TLS: the C library gives a new thread the stack, and so the TLS, of a
 * thread the child lacks, so no thread may start before that.  Work queued
 * before the fork then runs in the child as well, and armed delayed works
 * fire.
 */
void kslab_wq_fork_child_restart(void)
{
	struct workqueue_struct *wq;

	/* nothing runs here yet: the watchdog re-arms with the first work */
	if (wd_wq) {
		cancel_delayed_work_sync(&wd_dwork);
		__atomic_store_n(&wd_armed, 0, __ATOMIC_RELAXED);
	}
	pthread_mutex_lock(&wq_list_lock);
	list_for_each_entry(wq, &all_workqueues, node) {
		pthread_mutex_lock(&wq->lock);
		kick_if_stalled(wq);
		pthread_mutex_unlock(&wq->lock);
	}
	pthread_mutex_unlock(&wq_list_lock);
	kick_timer();
}

/*
 * Before the constructors of default priority, so that other parts of
 * the library may queue work from theirs.
 */
static __attribute__((__constructor__(110))) void workqueue_init(void)
{
	kslab_cond_init_monotonic(&timer_cond);
	if (sysconf(_SC_NPROCESSORS_ONLN) > 1)
		idle_spins = WQ_IDLE_SPINS;
	pthread_once(&worker_once, worker_init_once);
	/* links and starts the process lifecycle, which owns fork() */
	kslab_init();
	system_wq = alloc_workqueue("events", 0, 0);
	system_unbound_wq = alloc_workqueue("events_unbound", WQ_UNBOUND, 0);
	if (!system_wq || !system_unbound_wq)
		fprintf(stderr, "kslab: cannot create the system workqueues\n");
	/* ready before any work runs: arming it then only queues it */
	wd_init();
}
