// SPDX-License-Identifier: MIT
/*
 * The life of a kslab process: start-up, its threads, fork() and exit.
 * Everything that happens once per process or once per thread is started
 * from here, in one order; the files that own the state only provide the
 * steps.
 *
 * Start-up (kslab_init(), run by a constructor before main() and by the
 * first allocation if a constructor of another library comes first):
 *
 *   1. options          lib/options.c reads every KSLAB_* variable once
 *   2. page allocator   mm/page_alloc.c's free lists and decay interval
 *   3. slab layer       mm/slub.c's tunables and its metadata caches
 *   4. caches           the kmalloc caches (mm/slab_common.c)
 *   5. RCU reclaim      its tunables; the reclaim thread starts on the
 *                       first RCU free
 *   6. thread exit key  one pthread key for struct kslab_thread
 *   7. fork handlers    one pthread_atfork() for the table below
 *   8. exit handler     one atexit(): the finalizer exit report
 *
 * The finalizer machinery (its options, its workqueue) is set up on first
 * use by finalizer_init(), which runs kslab_init() first.
 *
 * Threads.  Each thread's state is one struct kslab_thread in its TLS
 * (mm/slab.h), on one registry, kslab_threads.  The first time a part of
 * kslab keeps state for a thread it calls kslab_thread_register(), which
 * puts the thread on the registry and sets the one exit key; at thread
 * exit kslab_thread_exit() hands the struct to each part: RCU first (its
 * batch goes to the reclaim thread), then the finalizer count, then the
 * magazines, which go back to their caches last because the earlier
 * steps may still free memory into them.  A fork() child has only the
 * forking thread: once every lock is released, kslab_reap_threads() hands
 * each other thread's struct to each part's reaper, in the same order.
 * Only then does the workqueue start the child's workers and timer
 * (kslab_wq_fork_child_restart()): the C library gives a new thread the
 * stack, and with it the TLS, of a thread the child lacks.
 *
 * Locks, and the order they nest in.  This is the one list; every other
 * file and document points here.  A lock is only ever taken while holding
 * locks above it, never below it:
 *
 *   gp_mutex          kfree_rcu.c   held across every grace period kslab
 *                                   waits for
 *   reclaim_mutex     kfree_rcu.c   one RCU collection being freed
 *   fin_lock          finalizer_queue.c  the finalizer FIFO, waiters,
 *                                   the watchdog's sleep
 *   cleanup_lock      finalizer.c   cleanup lists and the handle hash
 *   slab_mutex        slab_common.c the cache list and ids, thread tables,
 *                                   cache destruction
 *   cache->lock       slub.c        one user cache: slabs, depot, counters
 *                                   and its thread caches (never two at
 *                                   once)
 *   rcu_lock          kfree_rcu.c   RCU batches and lists, retired
 *                                   SLAB_TYPESAFE_BY_RCU slabs
 *   kslab_threads_lock  lifecycle.c the thread registry; taken alone, or
 *                                   to walk it under fin_lock or rcu_lock
 *   meta cache->lock  slub.c        kslab's own metadata caches (a depot
 *                                   may allocate a magazine under its
 *                                   cache's lock; batches are allocated
 *                                   under rcu_lock)
 *   large class locks, decay_lock, pool_lock
 *                     page_alloc.c  the free lists of large blocks, one
 *                                   decay walk, the descriptor pool
 *   pagemap_lock      pagemap.c     writers of the address map
 *   wq_list_lock, timer_lock, wq->lock
 *                     lib/workqueue.c  the workqueues; they take no kslab
 *                                   lock, so queue_work() may be called
 *                                   under any lock above
 *
 * fork() takes them all in this order (fork_steps[], prepare top down),
 * so the child sees every structure consistent; the parent and the child
 * release them bottom up, and each child step repairs what the threads
 * that do not exist in the child left behind.
 */
#include <pthread.h>
#include <stdlib.h>

#include "lib/options.h"
#include "lib/workqueue.h"
#include "mm/slab.h"

__thread struct kslab_thread kslab_self __initial_exec;
LIST_HEAD(kslab_threads);
pthread_mutex_t kslab_threads_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_once_t kslab_once = PTHREAD_ONCE_INIT;
static pthread_key_t kslab_thread_key;

/* ---------------------------------------------------------------- fork */

static void threads_fork_prepare(void)
{
	pthread_mutex_lock(&kslab_threads_lock);
}

static void threads_fork_release(void)
{
	pthread_mutex_unlock(&kslab_threads_lock);
}

/*
 * In a fork() child, after every lock is released: the threads that do
 * not exist here leave the registry, their state handed to each part.
 */
static void kslab_reap_threads(void)
{
	struct kslab_thread *t, *next;
	LIST_HEAD(gone);

	pthread_mutex_lock(&kslab_threads_lock);
	list_for_each_entry_safe(t, next, &kslab_threads, node) {
		if (t != &kslab_self)
			list_move(&t->node, &gone);
	}
	pthread_mutex_unlock(&kslab_threads_lock);
	list_for_each_entry_safe(t, next, &gone, node) {
		rcu_thread_gone(t);
		finalizer_thread_gone(t);
		slab_thread_gone(t);
		list_del_init(&t->node);
		t->registered = false;
	}
}

struct fork_step {
	void (*prepare)(void);
	void (*parent)(void);
	void (*child)(void);
};

/* In the global lock order: see the top of this file. */
static const struct fork_step fork_steps[] = {
	/* gp_mutex, reclaim_mutex */
	{ rcu_atfork_prepare_outer, rcu_atfork_parent_outer,
	  rcu_atfork_child_outer },
	/* fin_lock */
	{ finalizer_atfork_prepare, finalizer_atfork_parent,
	  finalizer_atfork_child },
	/* cleanup_lock */
	{ fin_objects_fork_prepare, fin_objects_fork_parent,
	  fin_objects_fork_child },
	/* slab_mutex, every cache->lock */
	{ slab_fork_prepare, slab_fork_parent, slab_fork_child },
	/* rcu_lock */
	{ rcu_atfork_prepare_inner, rcu_atfork_parent_inner,
	  rcu_atfork_child_inner },
	/* kslab_threads_lock */
	{ threads_fork_prepare, threads_fork_release, threads_fork_release },
	/* every meta cache->lock */
	{ slab_meta_fork_prepare, slab_meta_fork_parent, slab_meta_fork_child },
	/* the large classes' locks, decay_lock, pool_lock */
	{ page_alloc_fork_prepare, page_alloc_fork_parent,
	  page_alloc_fork_child },
	/* pagemap_lock */
	{ pagemap_fork_prepare, pagemap_fork_parent, pagemap_fork_child },
	/* wq_list_lock, timer_lock, every wq->lock */
	{ kslab_wq_fork_prepare, kslab_wq_fork_parent, kslab_wq_fork_child },
};

static void kslab_fork_prepare(void)
{
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fork_steps); i++)
		fork_steps[i].prepare();
}

static void kslab_fork_parent(void)
{
	size_t i = ARRAY_SIZE(fork_steps);

	while (i-- > 0)
		fork_steps[i].parent();
}

static void kslab_fork_child(void)
{
	size_t i = ARRAY_SIZE(fork_steps);

	while (i-- > 0)
		fork_steps[i].child();
	kslab_reap_threads();
	/* only now may threads start: they get the dead threads' stacks */
	kslab_wq_fork_child_restart();
}

/* ------------------------------------------------------------- threads */

static void kslab_thread_exit(void *arg)
{
	struct kslab_thread *t = arg;

	t->exiting = true;
	rcu_thread_exit(t);
	finalizer_thread_exit(t);
	slab_thread_exit(t);
	pthread_mutex_lock(&kslab_threads_lock);
	list_del_init(&t->node);
	t->registered = false;
	pthread_mutex_unlock(&kslab_threads_lock);
}

/**
 * kslab_thread_register - make sure this thread's state is given back
 *
 * Called by each part of kslab the first time it keeps state for the
 * calling thread.  Context: any thread, no lock needed.
 */
void kslab_thread_register(void)
{
	struct kslab_thread *t = &kslab_self;

	if (t->registered)
		return;
	kslab_init();
	pthread_mutex_lock(&kslab_threads_lock);
	list_add(&t->node, &kslab_threads);
	t->registered = true;
	pthread_mutex_unlock(&kslab_threads_lock);
	pthread_setspecific(kslab_thread_key, t);
}

/* ---------------------------------------------------------------- exit */

static void kslab_exit(void)
{
	finalizer_exit();
}

/* ------------------------------------------------------------ start-up */

static void kslab_init_once(void)
{
	kslab_options_init();
	page_alloc_init();
	slab_init();
	slab_caches_init();
	rcu_init();
	pthread_key_create(&kslab_thread_key, kslab_thread_exit);
	pthread_atfork(kslab_fork_prepare, kslab_fork_parent,
		       kslab_fork_child);
	atexit(kslab_exit);
}

/**
 * kslab_init - set kslab up; runs before main() and on first use
 *
 * Context: any thread; later calls return at once.
 */
void kslab_init(void)
{
	pthread_once(&kslab_once, kslab_init_once);
}

static void __constructor kslab_constructor(void)
{
	kslab_init();
}
