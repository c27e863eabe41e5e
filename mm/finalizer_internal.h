/* SPDX-License-Identifier: MIT */
/*
 * What the two halves of the finalizer machinery share:
 *
 *   mm/finalizer.c        the objects: finalizer slots, cleanups and their
 *                         handles, the API that sets them, the free hook
 *                         (DYING, then QUEUED after the grace period) and
 *                         the count of objects waiting for their grace
 *                         period;
 *   mm/finalizer_queue.c  the queue: the FIFO and its one worker, the
 *                         watchdog, waiting (kmem_gc(), flush, wait),
 *                         statistics, the exit report and fork().
 *
 * The objects half hands each collection to the queue with
 * fin_queue_collection(); the queue asks the objects half for an object's
 * finalizer, its cleanups and to reset its slot once it ran.
 */
#ifndef _KSLAB_MM_FINALIZER_INTERNAL_H
#define _KSLAB_MM_FINALIZER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include <kslab/finalizer.h>

#include "lib/idhash.h"
#include "lib/ptr_batch.h"
#include "mm/slab.h"

#pragma GCC visibility push(hidden)

/* kmem_set_finalizer() owns the slot while fn holds this */
#define FIN_SETTING		((kmem_finalizer_t)1)

enum fin_state {
	FIN_LIVE,		/* allocated */
	FIN_DYING,		/* freed, waiting for a grace period */
	FIN_QUEUED,		/* on the FIFO or running */
};

struct fin_slot {
	kmem_finalizer_t fn;		/* NULL, FIN_SETTING or the finalizer */
	void *arg;
	struct cleanup *cleanups;	/* newest first; under cleanup_lock */
	unsigned long state;		/* enum fin_state */
};

struct cleanup {
	struct cleanup *next;		/* on the slot's list */
	/* key: the handle, 0 when none was asked for; in cleanup_hash then */
	struct kslab_idhash_node handle;
	void (*fn)(void *arg);
	void *arg;
	bool stopped;
};

/* An object and the slot that describes it (slot NULL: none yet). */
struct fin_ref {
	struct slab_obj o;		/* the object's lookup */
	struct fin_slot *slot;
};

static inline struct fin_slot *slot_of(struct slab *slab, unsigned int index)
{
	/* pairs with the release in alloc_slots(): the array is zeroed */
	struct fin_slot *slots = smp_load_acquire((struct fin_slot **)&slab->meta);

	return slots ? &slots[index] : NULL;
}

static __always_inline void ref_init(struct fin_ref *r,
				     const struct slab_obj *o)
{
	r->o = *o;
	r->slot = slot_of(o->slab, o->index);
}

/* The ref of @obj, an object kslab holds for its finalizer. */
static __always_inline void ref_of(struct fin_ref *r, const void *obj)
{
	struct slab_obj o;

	slab_obj_known(obj, &o);
	ref_init(r, &o);
}

/* mm/finalizer_queue.c */
extern pthread_mutex_t fin_lock;
extern bool fin_ready;
extern struct kmem_finalizer_stats fin_stats;	/* counters: see the header */
void fin_queue_collection(struct kslab_ptr_fifo *chunks, unsigned long nr,
			  unsigned long finalizers);

/*
 * The finalizer machinery is set up on first use, when a cache or an
 * object gets its first finalizer: a program that never uses finalizers
 * has no workqueue for them.
 */
static __always_inline void fin_init(void)
{
	/* pairs with the release at the end of fin_init_once() */
	if (unlikely(!smp_load_acquire(&fin_ready)))
		finalizer_init();
}

/* mm/finalizer.c */
kmem_finalizer_t fin_ref_finalizer(const struct fin_ref *r, void **arg);
struct cleanup *fin_take_cleanups(struct fin_slot *slot);
void fin_slot_reset(struct fin_slot *slot);
unsigned long fin_dying_objects(void);

#pragma GCC visibility pop

#endif /* _KSLAB_MM_FINALIZER_INTERNAL_H */
