// SPDX-License-Identifier: MIT
/*
 * Finalizers and cleanups: Go's runtime.SetFinalizer and runtime.AddCleanup
 * for kslab objects.  This file keeps the objects' side: their finalizer
 * slots and cleanups, the API that sets them, and the free hook that
 * turns a free into a finalization.  The queue they run on, the watchdog,
 * waiting and the exit report are in mm/finalizer_queue.c;
 * mm/finalizer_internal.h is what the two share.
 *
 * Where the state lives:
 *
 *   finalizer slots   a slab that ever had an object with a finalizer or a
 *                     cleanup gets an array of struct fin_slot, one per
 *                     object, hung on slab->meta (a large kmalloc gets one
 *                     slot).  A slot holds the finalizer, its argument, the
 *                     object's cleanups and its state: LIVE, DYING (freed,
 *                     waiting for a grace period) or QUEUED.  The array is
 *                     allocated on the first kmem_set_finalizer() in the
 *                     slab and freed with the slab, so objects of slabs
 *                     without finalizers cost nothing: the free paths test
 *                     one bit of slab->cache, which they load anyway
 *                     (slab_hooked()).
 *   cache finalizer   cache->finalizer, for every object freed from it; an
 *                     object's own finalizer wins.
 *   cleanups          a list per slot, and a hash from handle id to cleanup
 *                     for kmem_cleanup_stop() (lib/idhash.h); under
 *                     cleanup_lock.  A handle is an id, never a pointer, so
 *                     stopping a cleanup that already ran finds nothing and
 *                     is harmless.
 *
 * The life of an object with a finalizer:
 *
 *   free              kfree(), kmem_cache_free() (and so the bulk free and
 *                     krealloc()) reach finalizer_free_hook() through
 *                     slab_free_hook(): it marks the slot DYING and defers
 *                     the object through the freeing thread's RCU batch
 *                     (mm/kfree_rcu.c): no lock, no allocation.
 *                     kfree_rcu() marks it and queues it as it always does.
 *                     A second free of a DYING object is reported.
 *   grace period      RCU reclaim frees the collection through
 *                     slab_free_after_gp(), whose free hook marks each such
 *                     object QUEUED and appends it to this thread's
 *                     collection; finalizer_free_flush() hands the
 *                     collection to the queue in one splice, in the order
 *                     the objects were freed.
 *   finalizer         the queue's worker runs the finalizer, then the
 *                     cleanups that were not stopped, resets the slot and
 *                     gives the object back with slab_free_unhooked().
 *
 * Objects marked DYING and not yet queued are counted per freeing thread
 * (struct fin_thread in struct kslab_thread, no shared cache line on the
 * free path) and, for those that left DYING, by the RCU reclaim side
 * (under its reclaim_mutex): see fin_fin_dying_objects().
 *
 * Locks: cleanup_lock (cleanup lists and the handle hash) and the queue's
 * fin_lock; their place in the global order is in the list at the top of
 * mm/lifecycle.c.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>

#include <kslab/finalizer.h>

#include "mm/finalizer_internal.h"

#define CLEANUP_HASH_MIN	64

/* What one RCU collection hands to the FIFO: chunks of lib/ptr_batch.h. */
struct fin_collect {
	struct kslab_ptr_fifo chunks;
	unsigned long nr;		/* objects */
	unsigned long finalizers;	/* of them, with a finalizer */
};

/* what the RCU reclaim collects; handed over by finalizer_free_flush() */
static __thread struct fin_collect collect __initial_exec;

static unsigned long marked_by_gone_threads;	/* under fin_lock */
static unsigned long unmarked;			/* under reclaim_mutex */

static pthread_mutex_t cleanup_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kslab_idhash cleanup_hash;	/* under cleanup_lock */
static unsigned long cleanup_next_id;		/* under cleanup_lock */

/* ------------------------------------------------------------- slots */

static unsigned int slab_nr_slots(const struct slab *slab)
{
	struct kmem_cache *s = slab_cache(slab);

	return s ? s->objs_per_slab : 1;
}

/*
 * Whether @obj is the start of a kslab object that is not free in its
 * slab.  Objects in a thread's magazine look allocated: the check catches
 * interior pointers, foreign pointers and most stale ones, not all.
 */
static bool ref_get_live(const void *obj, struct fin_ref *r)
{
	struct slab_obj o;

	if (!obj || !slab_lookup_obj(obj, &o) || slab_obj_in_slab(&o))
		return false;
	ref_init(r, &o);
	return true;
}

/* The slot of @r, allocating the slab's slot array on first use. */
static struct fin_slot *alloc_slots(struct fin_ref *r)
{
	struct fin_slot *slots, *old = NULL;

	if (r->slot)
		return r->slot;
	slots = slab_meta_zalloc(slab_nr_slots(r->o.slab) * sizeof(*slots));
	if (!slots)
		return NULL;
	if (!__atomic_compare_exchange_n((struct fin_slot **)&r->o.slab->meta,
					 &old, slots, false, __ATOMIC_RELEASE,
					 __ATOMIC_ACQUIRE)) {
		slab_meta_free(slots);
		slots = old;
	}
	/* after the slots: a free that sees the bit finds them */
	if (!slab_hooked(r->o.slab))
		slab_mark_hooked(r->o.slab);
	if (r->o.s && !READ_ONCE(r->o.s->finalizers_used))
		WRITE_ONCE(r->o.s->finalizers_used, true);
	r->slot = &slots[r->o.index];
	return r->slot;
}

/* The finalizer in @slot once no kmem_set_finalizer() is half done. */
static kmem_finalizer_t slot_fn(struct fin_slot *slot, void **arg)
{
	kmem_finalizer_t fn;

	/* pairs with the release in kmem_set_finalizer(): arg is written */
	while ((fn = smp_load_acquire(&slot->fn)) == FIN_SETTING)
		sched_yield();
	*arg = fn ? READ_ONCE(slot->arg) : NULL;
	return fn;
}

static bool ref_needs_finalizing(const struct fin_ref *r)
{
	if (r->o.s && READ_ONCE(r->o.s->finalizer))
		return true;
	return r->slot && (READ_ONCE(r->slot->fn) || READ_ONCE(r->slot->cleanups));
}

/**
 * fin_ref_finalizer - the finalizer an object is finalized with
 * @r: the object
 * @arg: receives the finalizer's argument
 *
 * Its own finalizer, else its cache's, else NULL (cleanups only).
 */
kmem_finalizer_t fin_ref_finalizer(const struct fin_ref *r, void **arg)
{
	kmem_finalizer_t fn = NULL;

	*arg = NULL;
	if (r->slot)
		fn = slot_fn(r->slot, arg);
	if (!fn && r->o.s) {
		/* pairs with the release in kmem_cache_set_finalizer() */
		fn = smp_load_acquire(&r->o.s->finalizer);
		*arg = READ_ONCE(r->o.s->finalizer_arg);
	}
	return fn;
}

/**
 * fin_slot_reset - an object's finalizer and cleanups ran: LIVE again
 * @slot: its slot
 *
 * The slot is clean before the object can be allocated again.
 */
void fin_slot_reset(struct fin_slot *slot)
{
	WRITE_ONCE(slot->fn, NULL);
	slot->arg = NULL;
	__atomic_store_n(&slot->state, FIN_LIVE, __ATOMIC_RELEASE);
}

/* ------------------------------------------------- reports, cleanups */

static void report_double_free(const void *obj, const char *caller,
			       const struct fin_ref *r)
{
	slab_bug(r->o.s ? r->o.s->name : "kmalloc-large",
		 "double free in %s(): object %p is already waiting for its finalizer; ignored",
		 caller, obj);
}

/* Detach @slot's cleanups, oldest first, and forget their handles. */
struct cleanup *fin_take_cleanups(struct fin_slot *slot)
{
	struct cleanup *c, *list = NULL, *next;

	pthread_mutex_lock(&cleanup_lock);
	c = slot->cleanups;
	slot->cleanups = NULL;
	for (; c; c = next) {
		next = c->next;
		if (c->handle.key)
			kslab_idhash_del(&cleanup_hash, &c->handle);
		c->next = list;
		list = c;
	}
	pthread_mutex_unlock(&cleanup_lock);
	return list;
}

/* ----------------------------------------------------- DYING objects */

/* Objects freed and waiting for their grace period.  Context: fin_lock held. */
unsigned long fin_dying_objects(void)
{
	unsigned long marked = marked_by_gone_threads;
	struct kslab_thread *t;

	pthread_mutex_lock(&kslab_threads_lock);
	for_each_kslab_thread(t)
		marked += READ_ONCE(t->fin.marked);
	pthread_mutex_unlock(&kslab_threads_lock);
	return marked - READ_ONCE(unmarked);
}

/**
 * finalizer_thread_exit - keep an exiting thread's count of DYING objects
 * @t: the thread's state
 */
void finalizer_thread_exit(struct kslab_thread *t)
{
	struct fin_thread *ft = &t->fin;

	if (!ft->registered)
		return;
	pthread_mutex_lock(&fin_lock);
	marked_by_gone_threads += ft->marked;
	ft->marked = 0;
	ft->registered = false;
	pthread_mutex_unlock(&fin_lock);
}

/**
 * finalizer_thread_gone - keep the count of a thread a fork() child lacks
 * @t: that thread's state, in the child's copy of memory
 */
void finalizer_thread_gone(struct kslab_thread *t)
{
	finalizer_thread_exit(t);
}

static noinline void register_fin_thread(struct fin_thread *ft)
{
	kslab_thread_register();
	pthread_mutex_lock(&fin_lock);
	ft->registered = true;
	pthread_mutex_unlock(&fin_lock);
}

/* One more object of this thread's is DYING. */
static __always_inline void count_marked(void)
{
	struct fin_thread *ft = &kslab_self.fin;

	if (unlikely(!ft->registered))
		register_fin_thread(ft);
	WRITE_ONCE(ft->marked, ft->marked + 1);
}

/* ----------------------------------------------------- the free side */

/* A free of an object with a finalizer: mark it DYING. */
static bool mark_dying(const struct slab_obj *o, void *obj,
		       const char *caller, enum slab_free_how how)
{
	struct fin_ref r;

	ref_init(&r, o);
	if (r.slot && READ_ONCE(r.slot->state) != FIN_LIVE) {
		report_double_free(obj, caller, &r);
		return true;
	}
	if (!ref_needs_finalizing(&r))
		return false;
	fin_init();
	/*
	 * A cache finalizer's object gets a slot, for its state.  Two frees
	 * racing on one object may both get here: double frees are caught
	 * when they come one after the other, as everywhere in kslab.
	 */
	if (alloc_slots(&r)) {
		WRITE_ONCE(r.slot->state, FIN_DYING);
		count_marked();
	}
	if (how == SLAB_FREE_RCU)
		return false;	/* kfree_rcu() queues it itself */
	slab_free_deferred(obj);
	return true;
}

static struct kslab_ptr_batch *alloc_chunk(void)
{
	return slab_meta_alloc(KSLAB_PTR_BATCH_BYTES);
}

static bool collect_add(struct fin_collect *fc, void *obj)
{
	if (!kslab_ptr_fifo_add(&fc->chunks, obj, alloc_chunk))
		return false;
	fc->nr++;
	return true;
}

/*
 * The grace period of a freed object of a hooked slab has passed: one
 * with a finalizer or cleanups joins this thread's collection, in order.
 */
static bool collect_after_gp(const struct slab_obj *o, void *obj)
{
	struct fin_ref r;
	unsigned long old;

	ref_init(&r, o);
	old = r.slot ? READ_ONCE(r.slot->state) : FIN_LIVE;
	if (!ref_needs_finalizing(&r)) {
		/* the finalizer was cleared after the free */
		if (old == FIN_DYING) {
			WRITE_ONCE(r.slot->state, FIN_LIVE);
			WRITE_ONCE(unmarked, unmarked + 1);
		}
		return false;
	}
	if (old == FIN_QUEUED) {
		report_double_free(obj, "kfree_rcu", &r);
		return true;
	}
	if (r.slot)
		WRITE_ONCE(r.slot->state, FIN_QUEUED);
	if (old == FIN_DYING)
		WRITE_ONCE(unmarked, unmarked + 1);
	if (!collect_add(&collect, obj)) {
		slab_warn("no memory to queue the finalizer of %p; the object is leaked",
			  obj);
		return true;
	}
	if ((r.slot && READ_ONCE(r.slot->fn)) || (r.o.s && READ_ONCE(r.o.s->finalizer)))
		collect.finalizers++;
	return true;
}

/**
 * finalizer_free_hook - the finalizer's part of slab_free_hook()
 * @o: the object's lookup
 * @obj: the object, in a hooked slab
 * @caller: the free function, for reports
 * @how: see enum slab_free_how
 *
 * A free (SLAB_FREE_NOW, SLAB_FREE_RCU) of an object with a finalizer or
 * cleanups marks it DYING and has it wait for a grace period; a second
 * free of a DYING object is reported.  After the grace period
 * (SLAB_FREE_AFTER_GP) it joins the collection that finalizer_free_flush()
 * puts on the FIFO.
 *
 * Return: true when the object was taken or the free refused.
 */
bool finalizer_free_hook(const struct slab_obj *o, void *obj,
			 const char *caller, enum slab_free_how how)
{
	if (how == SLAB_FREE_AFTER_GP)
		return collect_after_gp(o, obj);
	return mark_dying(o, obj, caller, how);
}

/**
 * finalizer_free_flush - hand this thread's collection to the queue
 *
 * Called by slab_free_after_gp() after each run of objects, so a
 * collection goes on the FIFO in one splice, in order, and the worker is
 * kicked (fin_queue_collection()).
 * Context: the RCU reclaim (reclaim_mutex held, so fork() never splits a
 * collection).
 */
void finalizer_free_flush(void)
{
	struct fin_collect *fc = &collect;

	if (likely(!fc->nr))
		return;
	fin_queue_collection(&fc->chunks, fc->nr, fc->finalizers);
	memset(fc, 0, sizeof(*fc));
}

/* ------------------------------------------------------------- the API */

/**
 * kmem_set_finalizer - run @fn(@obj, @arg) when @obj is freed
 * @obj: the start of a live kslab object (kmalloc or any cache)
 * @fn: the finalizer; NULL clears the object's finalizer
 * @arg: passed to @fn
 *
 * The finalizer runs a grace period after @obj is freed, by whichever
 * free function, on the kslab-finalizer thread, with the object's
 * contents as at the free; the memory is reused only after it returned.
 *
 * Context: any thread.
 * Return: 0; -EINVAL if @obj is not the start of a live kslab object;
 * -EBUSY if it already has a finalizer; -ENOMEM without memory for the
 * slab's finalizer slots.
 */
int kmem_set_finalizer(void *obj, kmem_finalizer_t fn, void *arg)
{
	kmem_finalizer_t none = NULL;
	struct fin_ref r;

	if (!ref_get_live(obj, &r))
		return -EINVAL;
	if (!fn) {
		void *unused;

		if (!r.slot)
			return 0;
		if (READ_ONCE(r.slot->state) != FIN_LIVE)
			return -EINVAL;
		slot_fn(r.slot, &unused);
		WRITE_ONCE(r.slot->fn, NULL);
		return 0;
	}
	fin_init();
	if (!alloc_slots(&r))
		return -ENOMEM;
	if (READ_ONCE(r.slot->state) != FIN_LIVE)
		return -EINVAL;
	if (!__atomic_compare_exchange_n(&r.slot->fn, &none, FIN_SETTING,
					 false, __ATOMIC_ACQUIRE,
					 __ATOMIC_RELAXED))
		return -EBUSY;
	WRITE_ONCE(r.slot->arg, arg);
	/* pairs with slot_fn(): arg is there before fn */
	smp_store_release(&r.slot->fn, fn);
	return 0;
}

/**
 * kmem_cache_set_finalizer - finalize every object freed from a cache
 * @s: the cache
 * @fn: the finalizer, NULL to clear
 * @arg: passed to @fn
 *
 * An object's own finalizer (kmem_set_finalizer()) wins over the cache's.
 * Objects already freed keep the finalizer they were freed with only if it
 * is still set when their grace period ends.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for a NULL cache; -EBUSY when the cache already has a
 * finalizer and @fn is not NULL.
 */
int kmem_cache_set_finalizer(struct kmem_cache *s, kmem_finalizer_t fn,
			     void *arg)
{
	if (!s)
		return -EINVAL;
	if (!fn) {
		WRITE_ONCE(s->finalizer, NULL);
		return 0;
	}
	fin_init();
	/* setters exclude each other; readers load fn (acquire), then arg */
	pthread_mutex_lock(&fin_lock);
	if (s->finalizer) {
		pthread_mutex_unlock(&fin_lock);
		return -EBUSY;
	}
	WRITE_ONCE(s->finalizer_arg, arg);
	WRITE_ONCE(s->finalizers_used, true);
	/* the argument before the function: pairs with finalize_object() */
	smp_store_release(&s->finalizer, fn);
	slab_mark_cache_hooked(s);
	pthread_mutex_unlock(&fin_lock);
	return 0;
}

/* Context: cleanup_lock held. */
static bool cleanup_hash_grow(void)
{
	unsigned long size = cleanup_hash.size ? cleanup_hash.size * 2 :
						 CLEANUP_HASH_MIN;
	struct kslab_idhash_node **buckets = slab_meta_zalloc(size * sizeof(*buckets));

	if (!buckets)
		return false;
	slab_meta_free(kslab_idhash_resize(&cleanup_hash, buckets, size));
	return true;
}

/**
 * kmem_add_cleanup - run @fn(@arg) after @obj is finalized
 * @obj: the start of a live kslab object
 * @fn: the cleanup
 * @arg: its argument (must not be @obj: the object is gone by then)
 * @handle: receives a handle for kmem_cleanup_stop(), or NULL
 *
 * Any number of cleanups per object; each runs once, on the finalizer
 * thread, after the object's finalizer (if any), in the order added.
 *
 * Context: any thread.
 * Return: 0; -EINVAL for a bad @obj or a NULL @fn; -ENOMEM.
 */
int kmem_add_cleanup(void *obj, void (*fn)(void *arg), void *arg,
		     struct kmem_cleanup **handle)
{
	struct fin_ref r;
	struct cleanup *c;

	if (!fn || !ref_get_live(obj, &r))
		return -EINVAL;
	fin_init();
	if (!alloc_slots(&r))
		return -ENOMEM;
	c = slab_meta_alloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fn = fn;
	c->arg = arg;
	c->stopped = false;
	c->handle.key = 0;
	pthread_mutex_lock(&cleanup_lock);
	if (READ_ONCE(r.slot->state) != FIN_LIVE) {
		pthread_mutex_unlock(&cleanup_lock);
		slab_meta_free(c);
		return -EINVAL;
	}
	if (handle) {
		if (kslab_idhash_full(&cleanup_hash) && !cleanup_hash_grow()) {
			pthread_mutex_unlock(&cleanup_lock);
			slab_meta_free(c);
			return -ENOMEM;
		}
		c->handle.key = ++cleanup_next_id;
		kslab_idhash_add(&cleanup_hash, &c->handle);
		*handle = (struct kmem_cleanup *)(uintptr_t)c->handle.key;
	}
	c->next = r.slot->cleanups;
	WRITE_ONCE(r.slot->cleanups, c);
	pthread_mutex_unlock(&cleanup_lock);
	return 0;
}

/**
 * kmem_cleanup_stop - cancel a cleanup
 * @handle: from kmem_add_cleanup(), or NULL
 *
 * The cleanup will not run unless it has already started.  Harmless after
 * it ran, or when called twice.
 * Context: any thread.
 */
void kmem_cleanup_stop(struct kmem_cleanup *handle)
{
	unsigned long id = (uintptr_t)handle;
	struct kslab_idhash_node *n;

	if (!id)
		return;
	pthread_mutex_lock(&cleanup_lock);
	n = kslab_idhash_find(&cleanup_hash, id);
	if (n)
		WRITE_ONCE(container_of(n, struct cleanup, handle)->stopped,
			   true);
	pthread_mutex_unlock(&cleanup_lock);
}

/* ------------------------------------------------------------------ fork */

void fin_objects_fork_prepare(void)
{
	pthread_mutex_lock(&cleanup_lock);
}

void fin_objects_fork_parent(void)
{
	pthread_mutex_unlock(&cleanup_lock);
}

void fin_objects_fork_child(void)
{
	pthread_mutex_unlock(&cleanup_lock);
}
