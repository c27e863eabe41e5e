/* SPDX-License-Identifier: MIT */
/*
 * kslab: Go-style finalizers and cleanups for kslab objects.
 *
 * This header is the contract; Documentation/core-api/finalizers.rst
 * explains it.  An object with a finalizer or cleanups is not reused when
 * it is freed, by whichever free function: a grace period later its
 * finalizer is queued on the one ordered finalizer workqueue, which runs
 * finalizers one at a time, first in first out in free order, on the
 * thread "kslab-finalizer".  The finalizer gets the object intact; its
 * cleanups run after it; then the memory goes back to the object's cache.
 * Every call is thread-safe.
 */
#ifndef _KSLAB_FINALIZER_H
#define _KSLAB_FINALIZER_H

#include <stdint.h>

#include <kslab/slab.h>

#ifdef __cplusplus
extern "C" {
#endif

#pragma GCC visibility push(default)

typedef void (*kmem_finalizer_t)(void *obj, void *arg);

/* Opaque: what kmem_add_cleanup() hands back for kmem_cleanup_stop(). */
struct kmem_cleanup;

struct kmem_finalizer_stats {
	uint64_t finalizers_queued;	/* cumulative, put on the queue */
	uint64_t finalizers_executed;	/* cumulative, returned */
	uint64_t cleanups_queued;
	uint64_t cleanups_executed;
	uint64_t pending;		/* freed, not yet finished */
	uint64_t longest_ns;		/* longest single finalizer run */
	uint64_t queue_length;		/* queued now, not yet started */
	uint64_t worker_restarts;	/* finalizers that called pthread_exit() */
	uint64_t lockups;		/* watchdog reports */
};

int kmem_set_finalizer(void *obj, kmem_finalizer_t fn, void *arg);
int kmem_cache_set_finalizer(struct kmem_cache *s, kmem_finalizer_t fn,
			     void *arg);
int kmem_add_cleanup(void *obj, void (*fn)(void *arg), void *arg,
		     struct kmem_cleanup **handle);
void kmem_cleanup_stop(struct kmem_cleanup *handle);
void kmem_gc(void);
void kmem_finalizers_flush(void);
int kmem_finalizers_wait(unsigned int timeout_ms);
/*
 * The function has its struct's name, as stat() has: C++ code writes
 * "struct kmem_finalizer_stats" for the type, and g++'s -Wshadow need not
 * say that the function hides it.
 */
#ifdef __cplusplus
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
void kmem_finalizer_stats(struct kmem_finalizer_stats *st);
#ifdef __cplusplus
#pragma GCC diagnostic pop
#endif

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* _KSLAB_FINALIZER_H */
