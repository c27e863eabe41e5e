// SPDX-License-Identifier: MIT
/*
 * The generic slab layer: what every cache has in common, apart from how
 * objects are kept (mm/slub.c).
 *
 * Layers, and the way calls run between them (top down; the only calls
 * up are the hooks in mm/slab.h, which run a feature from the generic
 * layer; tools/testing/check-layers.sh checks the archive for any other):
 *
 *   mm/lifecycle.c      start-up, threads, fork(), exit, the lock order;
 *        |              it calls each layer's steps, and any layer may
 *        |              call it for kslab_init() and kslab_thread_register()
 *        v
 *   features            mm/finalizer.c + mm/finalizer_queue.c (finalizers:
 *        |              one feature in two files), above mm/kfree_rcu.c
 *        |    ^         (RCU deferral), which the finalizer uses
 *        |    |  slab_free_hook()          one call out, on a free
 *        |    |  slab_post_alloc_hook()    one call out, on an allocation
 *        |    |  slab_cache_destroy_hook(), slab_cache_pending_hook(),
 *        |    |  slab_retire_hook()        the cache-level side
 *        v    |
 *   generic layer       this file: the public entry points, the cache
 *        |              registry and the walks over it (decay, fork,
 *        |              thread exit), argument checks, kmalloc,
 *        |              kfree/ksize, the object-level reports;
 *        |              slab_lookup_obj() (mm/slab.h), the one "is this a
 *        |              live kslab object" check; slab_free_unhooked(),
 *        |              the one call back through which a feature returns
 *        |              an object it took, and slab_free_after_gp(), RCU
 *        |              reclaim's way in
 *        v
 *   implementation      mm/slub.c through __kmem_cache_*(), __slab_*()
 *        |              and kslab's metadata (slab_meta_alloc())
 *        v
 *   below               mm/pagemap.c (the address map), mm/report.c
 *                       (kernel-style messages), lib/ (workqueue, options,
 *                       symbolizer, time, batches)
 *
 * The hooks.  A feature marks the slabs whose frees it must see
 * (SLAB_HOOKED in slab->cache, which the free paths load anyway, so an
 * unhooked free pays nothing).  slab_free_hook() asks each feature in
 * turn; a feature may take the object and later hand it back through
 * slab_free_unhooked(), as KASAN's quarantine ends in ___cache_free().
 * slab_post_alloc_hook() runs on every allocation off the magazine fast
 * path (slab_alloc_slow()); a feature that must see every allocation of
 * a cache gives the cache no front ends.  RCU reclaim comes back through
 * slab_free_after_gp(): in bulk, in free order, each object through the
 * free hook only if its slab is hooked; kfree_rcu() of a hooked object
 * asks the hook through slab_free_hook_rcu(), so no feature runs
 * another's hook.  The cache-level side lets kmem_cache_destroy() and
 * kmem_cache_get_info() account for what the features hold, and hands
 * the SLAB_TYPESAFE_BY_RCU slabs the implementation retires (decay,
 * shrink, destroy) to a grace period before __slab_unmap_retired(), as
 * SLUB's go through call_rcu().  Documentation/mm/slab.rst ("Hooks") says
 * what each feature does in them.
 *
 * The implementation names nothing above it: it gets its metadata from
 * its own kslab-meta-<size> caches, returns the slabs it retires to its
 * caller on a list, reports through mm/report.c, and leaves every walk
 * over the cache registry (decay, fork, thread exit) to this file, which
 * owns the registry and slab_mutex.
 *
 * What lives here:
 *
 *  - the cache registry (slab_caches, cache ids, slab_mutex) and the
 *    walks over it,
 *  - argument checking for kmem_cache_create() and the kernel-style
 *    reports for bad frees and leaked objects,
 *  - the kmalloc size classes: caches named kmalloc-<size> from 8 to
 *    KMALLOC_MAX_CACHE_SIZE (256 KiB), including 96 and 192, and large blocks
 *    (__slab_alloc_large()) for anything larger,
 *  - the slow paths around the implementation's (the allocation hook,
 *    the decay of empty slabs), the free hook, its call back, and the
 *    after-grace-period free.
 *
 * A size is mapped to its class by a table for sizes up to 128 and, above
 * that, by the position of its highest bit and the two bits below it
 * (four classes per doubling, as jemalloc and mimalloc space theirs).
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "lib/options.h"
#include "lib/symbolize.h"
#include "lib/time.h"
#include "mm/slab.h"

pthread_mutex_t slab_mutex = PTHREAD_MUTEX_INITIALIZER;
LIST_HEAD(slab_caches);

/*
 * Cache ids index the per-thread tables; a destroyed cache's id is
 * reused.  Ids below NR_META_CACHES belong to the metadata caches.
 */
static struct kmem_cache **cache_by_id;
static unsigned int nr_cache_ids;

/*
 * The kmalloc size classes.  Up to 128 bytes: 8, then every multiple of
 * 16 (so 96 is one).  Above: four classes per doubling, 2^k + j * 2^(k-2)
 * for j = 1..4 (so 192 is one), up to KMALLOC_MAX_CACHE_SIZE: a request
 * gets at most 25% more than it asked for.  Every class of 16 bytes or
 * more is a multiple of 16, and a cache aligns its objects to the largest
 * power of two dividing its size, so every object of 16 bytes or more is
 * 16-byte aligned and power-of-two sizes are naturally aligned.
 */
#define KMALLOC_SMALL_MAX	128
#define KMALLOC_SMALL_CLASSES	9	/* 8, 16, 32, 48, ..., 128 */
#define KMALLOC_SHIFT_SMALL	7	/* 2^7 = KMALLOC_SMALL_MAX */
#define NR_KMALLOC_CACHES	(KMALLOC_SMALL_CLASSES +		\
				 4 * (KMALLOC_SHIFT_HIGH - KMALLOC_SHIFT_SMALL))

static struct kmem_cache *kmalloc_caches[NR_KMALLOC_CACHES];

/* the class of sizes up to 128, by (size - 1) / 8 */
static const unsigned char size_index[KMALLOC_SMALL_MAX / 8] = {
	0,	/* 8 */
	1,	/* 16 */
	2, 2,	/* 32 */
	3, 3,	/* 48 */
	4, 4,	/* 64 */
	5, 5,	/* 80 */
	6, 6,	/* 96 */
	7, 7,	/* 112 */
	8, 8,	/* 128 */
};

_Static_assert(KMALLOC_MAX_CACHE_SIZE == 1UL << KMALLOC_SHIFT_HIGH,
	       "the classes end at KMALLOC_MAX_CACHE_SIZE");

/* ------------------------------------------------------------- reports */

static noinline __cold void report_invalid_free(const char *caller,
						 const void *p)
{
	slab_misuse("%s: invalid pointer %p: not an object kslab handed out; ignored",
		    caller, p);
}

static __cold void report_cache_free_mismatch(struct kmem_cache *s,
					      const void *obj,
					      const struct slab_obj *o)
{
	if (!o->s) {
		report_invalid_free("kmem_cache_free", obj);
		return;
	}
	slab_misuse("kmem_cache_free(%s): object %p belongs to different cache %s; ignored",
		    s ? s->name : "(null)", obj, o->s->name);
}

/* -------------------------------------------------------------- caches */

static int assign_cache_id(struct kmem_cache *s)
{
	unsigned int id;

	for (id = NR_META_CACHES; id < nr_cache_ids; id++)
		if (!cache_by_id[id])
			break;
	if (id >= nr_cache_ids) {
		unsigned int n = nr_cache_ids ? nr_cache_ids * 2 : 64;
		struct kmem_cache **t = slab_meta_alloc(n * sizeof(*t));

		if (!t)
			return -ENOMEM;
		memset(t, 0, n * sizeof(*t));
		if (nr_cache_ids)
			memcpy(t, cache_by_id, nr_cache_ids * sizeof(*t));
		slab_meta_free(cache_by_id);
		cache_by_id = t;
		nr_cache_ids = n;
		id = id < NR_META_CACHES ? NR_META_CACHES : id;
	}
	cache_by_id[id] = s;
	s->id = id;
	return 0;
}

static bool cache_args_valid(const char *name, unsigned int size,
			     unsigned int align, slab_flags_t flags)
{
	if (!name || !*name || !size || size > KSLAB_MAX_OBJECT_SIZE)
		return false;
	if (align & (align - 1))
		return false;
	if (align > SLAB_MAX_SIZE / 4)
		return false;
	return !(flags & ~SLAB_FLAGS_VALID);
}

static struct kmem_cache *create_cache(const char *name, unsigned int size,
				       unsigned int align, slab_flags_t flags,
				       void (*ctor)(void *))
{
	struct kmem_cache *s;
	int err;

	/* metadata caches are power-of-two sized, hence cache-line aligned */
	s = slab_meta_alloc(sizeof(*s));
	if (!s)
		return NULL;
	memset(s, 0, sizeof(*s));
	s->name = slab_meta_alloc(strlen(name) + 1);
	if (s->name)
		strcpy(s->name, name);
	s->object_size = size;
	s->align = align;
	s->flags = flags;
	s->ctor = ctor;
	err = s->name ? __kmem_cache_create(s) : -ENOMEM;
	if (err)
		goto fail;
	pthread_mutex_lock(&slab_mutex);
	err = assign_cache_id(s);
	if (!err)
		list_add_tail(&s->list, &slab_caches);
	pthread_mutex_unlock(&slab_mutex);
	if (err)
		goto fail;
	return s;
fail:
	slab_meta_free(s->name);
	slab_meta_free(s);
	errno = -err;
	return NULL;
}

/**
 * kmem_cache_create - create a cache of same-sized objects
 * @name: shown in reports and kmem_cache_get_info(); copied
 * @size: object size in bytes, at most 1 MiB
 * @align: 0 or a power of two
 * @flags: SLAB_* flags
 * @ctor: run once on each object when it is first carved from a slab
 *
 * Context: any thread.  @ctor must not allocate from the cache it
 * constructs.
 * Return: the cache, or NULL with errno EINVAL for bad arguments (with
 * SLAB_PANIC: a message and abort()) or ENOMEM.
 */
struct kmem_cache *kmem_cache_create(const char *name, unsigned int size,
				     unsigned int align, slab_flags_t flags,
				     void (*ctor)(void *))
{
	struct kmem_cache *s;

	kslab_init();
	if (!cache_args_valid(name, size, align, flags)) {
		if (flags & SLAB_PANIC) {
			slab_warn("%s(%s, size %u, align %u, flags %#x): invalid arguments; panic",
				  __func__, name ? name : "(null)", size, align,
				  flags);
			abort();
		}
		errno = EINVAL;
		return NULL;
	}
	s = create_cache(name, size, align, flags, ctor);
	if (!s && (flags & SLAB_PANIC)) {
		slab_warn("%s(%s): out of memory; panic", __func__, name);
		abort();
	}
	return s;
}

/**
 * kmem_cache_destroy - destroy a cache
 * @s: the cache, or NULL
 *
 * Every thread's cached objects of @s come back first.  If objects are
 * still allocated the cache is reported ("BUG <name>: Objects
 * remaining") and left in place, so those objects stay valid and may
 * still be freed.
 *
 * Context: any thread; no other thread may use @s during or after the
 * call.
 */
void kmem_cache_destroy(struct kmem_cache *s)
{
	struct kmem_cache_info info;
	LIST_HEAD(retired);
	bool empty;

	if (!s)
		return;
	if (s->kmalloc) {
		slab_warn("%s(%s): a kmalloc cache cannot be destroyed",
			  __func__, s->name);
		return;
	}
	/* what the features hold of @s must come back before it goes */
	slab_cache_destroy_hook(s);
	pthread_mutex_lock(&slab_mutex);
	empty = __kmem_cache_shutdown(s, &retired);
	if (empty) {
		list_del_init(&s->list);
		cache_by_id[s->id] = NULL;
	}
	pthread_mutex_unlock(&slab_mutex);
	slab_retire_hook(&retired);
	if (empty) {
		__kmem_cache_release(s);
		slab_meta_free(s->name);
		slab_meta_free(s);
		return;
	}
	__kmem_cache_get_info(s, &info);
	slab_bug(s->name,
		 "Objects remaining on %s(): %zu objects in %zu slabs still allocated; cache left in place",
		 __func__, info.active_objs, info.slabs);
}

/**
 * kmem_cache_alloc - allocate an object
 * @s: the cache
 * @gfp: GFP_KERNEL, GFP_NOWAIT, GFP_ATOMIC, with __GFP_ZERO/__GFP_NOFAIL
 *
 * Context: any thread.  GFP_NOWAIT and GFP_ATOMIC never wait for a lock
 * another thread holds; they fail instead.
 * Return: the object, or NULL with errno ENOMEM.
 */
void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp)
{
	return slab_alloc(s, gfp);
}

/**
 * kmem_cache_zalloc - allocate a zeroed object
 * @s: the cache
 * @gfp: as for kmem_cache_alloc()
 *
 * Return: the object, or NULL with errno ENOMEM.
 */
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp)
{
	return kmem_cache_alloc(s, gfp | __GFP_ZERO);
}

static void slab_decay(void);

/**
 * slab_alloc_slow - an allocation the magazine fast path did not serve
 * @s: the cache
 * @gfp: the allocation's flags
 *
 * The implementation's slow path, then what the generic layer adds to
 * it: the one allocation hook, and the decay of empty slabs (a clock
 * read; never for metadata, which may be allocated under a cache lock,
 * nor for GFP_NOWAIT).
 * Return: the object, or NULL with errno ENOMEM.
 */
noinline void *slab_alloc_slow(struct kmem_cache *s, gfp_t gfp)
{
	void *obj = __slab_alloc(s, gfp);

	if (unlikely(!obj))
		return NULL;
	if (!(gfp & __GFP_NOWAIT_BIT))
		slab_decay();
	return slab_post_alloc_hook(s, obj, gfp);
}

/**
 * slab_free_slow - a free the loaded magazine had no room for
 * @s: the cache
 * @obj: a checked object of @s
 */
noinline void slab_free_slow(struct kmem_cache *s, void *obj)
{
	if (__slab_free(s, obj))
		slab_decay();
}

/**
 * slab_decay - give back empty slabs that stayed empty long enough
 *
 * Runs from the slow paths of user caches with no lock held and costs
 * one clock read when nothing is due; walks every cache, then the
 * metadata caches, when something is.  A thread that finds another one
 * decaying goes on.  SLAB_TYPESAFE_BY_RCU slabs wait for a grace period
 * (slab_retire_hook()).
 */
static void slab_decay(void)
{
	unsigned long now = kslab_now_ms_coarse(), next = ~0UL, cutoff, due;
	struct kmem_cache *s;
	LIST_HEAD(retired);

	page_alloc_decay();
	if (now < READ_ONCE(slab_next_decay_ms))
		return;
	if (pthread_mutex_trylock(&slab_mutex))
		return;
	WRITE_ONCE(slab_next_decay_ms, ~0UL);
	cutoff = now - __slab_decay_ms();
	list_for_each_entry(s, &slab_caches, list) {
		due = __kmem_cache_decay(s, cutoff, &retired);
		if (due < next)
			next = due;
	}
	/* last: the slabs above may have freed metadata */
	due = __slab_meta_decay(cutoff);
	if (due < next)
		next = due;
	if (next < READ_ONCE(slab_next_decay_ms))
		WRITE_ONCE(slab_next_decay_ms, next);
	pthread_mutex_unlock(&slab_mutex);
	slab_retire_hook(&retired);
}

/**
 * slab_free_unhooked - the one call back: free an object for real
 * @o: the object's lookup
 * @obj: the object, which no feature holds any more
 *
 * What a feature that took an object in slab_free_hook() calls when it
 * is done with it (the finalizer worker, after the finalizer ran); the
 * free paths' own end.  Runs no hook again.
 */
void slab_free_unhooked(const struct slab_obj *o, void *obj)
{
	if (likely(o->s)) {
		slab_free(o->s, obj);
	} else {
		slab_release_meta(o->slab);
		__slab_free_large(o->slab);
	}
}

/* Free @obj of @o through the hook, if its slab has one. */
static __always_inline void slab_free_checked(const struct slab_obj *o, void *obj,
			      const char *caller)
{
	if (unlikely(slab_hooked(o->slab)) &&
	    slab_free_hook(o, obj, caller, SLAB_FREE_NOW))
		return;
	slab_free_unhooked(o, obj);
}

/**
 * slab_free_after_gp - free objects whose grace period has passed
 * @objs: the objects, in the order they were freed
 * @nr: how many
 *
 * RCU reclaim's way back into the allocator: each object goes through the
 * free hook (SLAB_FREE_AFTER_GP: a finalizer's object is queued for its
 * finalizer, in this order), then back to its cache.
 *
 * Context: the RCU reclaim (one collection at a time), no cache lock held.
 */
void slab_free_after_gp(void *const *objs, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		struct slab_obj o;

		/* checked by slab_lookup_obj() when it was queued */
		slab_obj_known(objs[i], &o);
		if (unlikely(slab_hooked(o.slab)) &&
		    slab_free_hook(&o, objs[i], "kfree_rcu", SLAB_FREE_AFTER_GP))
			continue;
		slab_free_unhooked(&o, objs[i]);
	}
	finalizer_free_flush();
}

/**
 * slab_free_hook_rcu - the free hook of a free that the caller defers
 * @o: the object's lookup; its slab is hooked
 * @obj: the object
 * @caller: the public function, for reports
 *
 * kfree_rcu() of a hooked object asks the features here, so that one
 * feature never runs another's hook.
 * Return: true when the free was refused (or the object taken).
 */
bool slab_free_hook_rcu(const struct slab_obj *o, void *obj,
			const char *caller)
{
	return slab_free_hook(o, obj, caller, SLAB_FREE_RCU);
}

/* kmem_cache_free() of a hooked object, or of a wrong one. */
static noinline void kmem_cache_free_slow(struct kmem_cache *s,
					  struct slab *slab, void *obj)
{
	struct slab_obj o;

	if (!slab || !slab_obj_at(slab, obj, &o))
		report_invalid_free("kmem_cache_free", obj);
	else if (o.s != s)
		report_cache_free_mismatch(s, obj, &o);
	else
		slab_free_checked(&o, obj, "kmem_cache_free");
}

/**
 * kmem_cache_free - free an object into its cache
 * @s: the cache the object came from
 * @obj: the object, or NULL
 *
 * An object of another cache, or a pointer kslab never returned, is
 * reported on stderr and left alone.
 *
 * Context: any thread, whichever thread allocated @obj.
 */
void kmem_cache_free(struct kmem_cache *s, void *obj)
{
	struct slab *slab;

	if (unlikely(!obj))
		return;
	slab = virt_to_slab(obj);
	/* a hooked slab->cache differs from s: see slab_hooked() */
	if (unlikely(!slab || READ_ONCE(slab->cache) != s ||
		     !obj_is_slot_start(s, slab, obj))) {
		kmem_cache_free_slow(s, slab, obj);
		return;
	}
	slab_free(s, obj);
}

/**
 * kmem_cache_alloc_bulk - allocate @nr objects, all or none
 * @s: the cache
 * @gfp: as for kmem_cache_alloc()
 * @nr: how many
 * @p: receives the objects
 *
 * As the kernel's: all @nr objects or none.  An @nr above INT_MAX could
 * not be returned, so it fails at once.
 *
 * Return: @nr with @nr objects in @p, or 0 with none allocated.
 */
int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr,
			  void **p)
{
	size_t i;

	if (unlikely(nr > INT_MAX))
		return 0;
	for (i = 0; i < nr; i++) {
		p[i] = kmem_cache_alloc(s, gfp);
		if (unlikely(!p[i]))
			goto undo;
	}
	return (int)nr;
undo:
	while (i-- > 0)
		slab_free(s, p[i]);
	return 0;
}

/**
 * kmem_cache_free_bulk - free @nr objects
 * @s: their cache, or NULL to use each object's own cache
 * @nr: how many
 * @p: the objects
 */
void kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		if (s)
			kmem_cache_free(s, p[i]);
		else
			kfree(p[i]);
	}
}

/**
 * kmem_cache_shrink - give a cache's empty slabs back to the OS
 * @s: the cache
 *
 * Never waits for a grace period.
 * Return: 0 when the cache holds no slab any more, else the number of
 * slabs that still hold objects.
 */
int kmem_cache_shrink(struct kmem_cache *s)
{
	LIST_HEAD(retired);
	int left;

	if (!s)
		return -EINVAL;
	left = __kmem_cache_shrink(s, &retired);
	slab_retire_hook(&retired);
	/* the slabs that went freed their headers */
	__slab_meta_shrink();
	return left;
}

/**
 * kmem_cache_size - usable size of the cache's objects
 * @s: the cache
 */
unsigned int kmem_cache_size(struct kmem_cache *s)
{
	return s->object_size;
}

/**
 * kmem_cache_name - the cache's name (kslab's copy)
 * @s: the cache
 */
const char *kmem_cache_name(struct kmem_cache *s)
{
	return s->name;
}

/**
 * kmem_cache_get_info - a snapshot of a cache's counters
 * @s: the cache
 * @info: filled in
 *
 * active_objs counts objects handed out and not yet back in the cache;
 * exact whenever no other thread allocates or frees meanwhile.
 * Return: 0, or -EINVAL for a NULL argument.
 */
int kmem_cache_get_info(struct kmem_cache *s, struct kmem_cache_info *info)
{
	size_t pending;

	if (!s || !info)
		return -EINVAL;
	pending = slab_cache_pending_hook(s);
	__kmem_cache_get_info(s, info);
	info->pending_rcu = pending;
	return 0;
}

/* ------------------------------------------------------------- kmalloc */

/* The class of @size, 1 <= @size <= KMALLOC_MAX_CACHE_SIZE. */
static __always_inline unsigned int kmalloc_index(size_t size)
{
	size_t n = size - 1;
	unsigned int shift;

	if (size <= KMALLOC_SMALL_MAX)
		return size_index[n / 8];
	/* 2^shift < size <= 2^(shift + 1); the quarter of that doubling */
	shift = 63 - __builtin_clzl(n);
	return KMALLOC_SMALL_CLASSES + (shift - KMALLOC_SHIFT_SMALL) * 4 +
	       ((n >> (shift - 2)) & 3);
}

/* The size of class @i. */
static unsigned int kmalloc_class_size(unsigned int i)
{
	unsigned int shift;

	if (i < KMALLOC_SMALL_CLASSES)
		return i ? 16 * i : 8;
	i -= KMALLOC_SMALL_CLASSES;
	shift = KMALLOC_SHIFT_SMALL + i / 4;
	return (1U << shift) + (i % 4 + 1) * (1U << (shift - 2));
}

static noinline void *kmalloc_large(size_t size, gfp_t gfp)
{
	kslab_init();
	/* fresh anonymous memory is already zero: __GFP_ZERO costs nothing */
	return __slab_alloc_large(size, 0, gfp);
}

static noinline void *kmalloc_aligned_large(size_t size, size_t align,
					    gfp_t gfp)
{
	kslab_init();
	return __slab_alloc_large(size, align, gfp);
}

/* kmalloc() of size 0, of a large size, or before kslab_init() ran */
static noinline void *__kmalloc_slow(size_t size, gfp_t gfp)
{
	if (!size)
		return ZERO_SIZE_PTR;
	if (size > KMALLOC_MAX_CACHE_SIZE)
		return kmalloc_large(size, gfp);
	kslab_init();
	return slab_alloc(kmalloc_caches[kmalloc_index(size)], gfp);
}

/**
 * kmalloc - allocate @size bytes
 * @size: bytes; 0 gives ZERO_SIZE_PTR
 * @gfp: as for kmem_cache_alloc()
 *
 * Up to KMALLOC_MAX_CACHE_SIZE the object comes from kmalloc-<size>;
 * larger requests are mapped directly.
 * Return: the memory, ZERO_SIZE_PTR, or NULL with errno ENOMEM.
 */
void *kmalloc(size_t size, gfp_t gfp)
{
	if (likely(size - 1 < KMALLOC_MAX_CACHE_SIZE)) {
		struct kmem_cache *s = kmalloc_caches[kmalloc_index(size)];

		if (likely(s))
			return slab_alloc(s, gfp);
	}
	return __kmalloc_slow(size, gfp);
}

/**
 * kmalloc_aligned - allocate @size bytes at a multiple of @align
 * @size: bytes; 0 is taken as 1 (a unique pointer, as malloc() gives)
 * @align: a power of two
 * @gfp: as for kmem_cache_alloc()
 *
 * A class serves it when its objects are aligned enough (each class is
 * aligned to the largest power of two dividing its size, so at the
 * latest the next power of two does); else a large block aligned to
 * @align.  The result is an ordinary kmalloc object for kfree(), ksize()
 * and krealloc().
 * Return: the memory, or NULL with errno EINVAL (@align not a power of
 * two) or ENOMEM.
 */
void *kmalloc_aligned(size_t size, size_t align, gfp_t gfp)
{
	unsigned int i;

	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	if (!size)
		size = 1;
	if (size < align)
		size = align;
	if (size > KMALLOC_MAX_CACHE_SIZE)
		return kmalloc_aligned_large(size, align, gfp);
	kslab_init();
	for (i = kmalloc_index(size); i < NR_KMALLOC_CACHES; i++) {
		unsigned int class = kmalloc_class_size(i);

		if ((class & -class) >= align)
			return slab_alloc(kmalloc_caches[i], gfp);
	}
	return kmalloc_aligned_large(size, align, gfp);
}

/**
 * kzalloc - allocate @size zeroed bytes
 * @size: bytes
 * @gfp: as for kmem_cache_alloc()
 */
void *kzalloc(size_t size, gfp_t gfp)
{
	return kmalloc(size, gfp | __GFP_ZERO);
}

/**
 * kmalloc_array - allocate an array of @n elements of @size bytes
 * @n: elements
 * @size: bytes each
 * @gfp: as for kmem_cache_alloc()
 *
 * Return: NULL with errno ENOMEM if @n * @size overflows.
 */
void *kmalloc_array(size_t n, size_t size, gfp_t gfp)
{
	size_t bytes;

	if (__builtin_mul_overflow(n, size, &bytes)) {
		errno = ENOMEM;
		return NULL;
	}
	return kmalloc(bytes, gfp);
}

/**
 * kcalloc - allocate a zeroed array
 * @n: elements
 * @size: bytes each
 * @gfp: as for kmem_cache_alloc()
 */
void *kcalloc(size_t n, size_t size, gfp_t gfp)
{
	return kmalloc_array(n, size, gfp | __GFP_ZERO);
}

/**
 * ksize - usable size of a kslab object
 * @p: the object
 *
 * Return: at least the size that was asked for; 0 for NULL,
 * ZERO_SIZE_PTR and (with a report) pointers kslab never returned.
 */
size_t ksize(const void *p)
{
	struct slab_obj o;

	if (ZERO_OR_NULL_PTR(p))
		return 0;
	if (unlikely(!slab_lookup_obj(p, &o))) {
		report_invalid_free("ksize", p);
		return 0;
	}
	return o.s ? o.s->object_size : o.slab->size;
}

/* kfree() of a large or hooked object, or of a bad pointer. */
static noinline void kfree_slow(const void *p)
{
	struct slab_obj o;

	if (unlikely(!slab_lookup_obj(p, &o))) {
		report_invalid_free("kfree", p);
		return;
	}
	slab_free_checked(&o, (void *)p, "kfree");
}

/**
 * kfree - free memory from kmalloc() or any kslab cache
 * @p: the memory; NULL and ZERO_SIZE_PTR are ignored
 *
 * A pointer kslab never returned is reported on stderr and ignored.
 * Context: any thread.
 */
void kfree(const void *p)
{
	struct slab *slab;
	struct kmem_cache *s;

	if (unlikely(ZERO_OR_NULL_PTR(p)))
		return;
	slab = virt_to_slab(p);
	if (unlikely(!slab))
		goto slow;
	s = READ_ONCE(slab->cache);
	/* hooked or large: a register test, see slab_hooked() */
	if (unlikely(((uintptr_t)s & SLAB_HOOKED) || !s))
		goto slow;
	if (unlikely(!obj_is_slot_start(s, slab, p)))
		goto slow;
	slab_free(s, (void *)p);
	return;
slow:
	kfree_slow(p);
}

/**
 * krealloc - resize memory, keeping its contents
 * @p: memory from kmalloc(), or NULL
 * @new_size: bytes; 0 frees @p and returns ZERO_SIZE_PTR
 * @gfp: as for kmem_cache_alloc()
 *
 * A slab object is returned as it is when it is big enough, as the
 * kernel does.  A large block is resized without copying (in place, or
 * moved by mremap()), and one shrunk to half or less gives memory back.
 * Return: the memory, or NULL with @p untouched.
 */
void *krealloc(const void *p, size_t new_size, gfp_t gfp)
{
	struct slab_obj o;
	size_t old;
	void *n;

	if (!new_size) {
		kfree(p);
		return ZERO_SIZE_PTR;
	}
	if (ZERO_OR_NULL_PTR(p))
		return kmalloc(new_size, gfp);
	if (unlikely(!slab_lookup_obj(p, &o))) {
		report_invalid_free("krealloc", p);
		return NULL;
	}
	old = o.s ? o.s->object_size : o.slab->size;
	/* a large block resizes without a copy (mm/page_alloc.c) */
	if (!o.s && new_size > KMALLOC_MAX_CACHE_SIZE &&
	    !slab_hooked(o.slab) && !(gfp & __GFP_NOWAIT_BIT)) {
		n = __slab_realloc_large(o.slab, new_size);
		if (n)
			return n;
	}
	/*
	 * A slab object is kept when it fits, as the kernel's; a large block
	 * shrunk to half or less moves to a slab object.
	 */
	if (new_size <= old && (o.s || new_size > old / 2))
		return (void *)p;
	n = kmalloc(new_size, gfp);
	if (!n)
		return new_size <= old ? (void *)p : NULL;
	memcpy(n, p, new_size < old ? new_size : old);
	kfree(p);
	return n;
}

/**
 * kstrdup - copy a string into kmalloc() memory
 * @s: the string, or NULL
 * @gfp: as for kmem_cache_alloc()
 */
char *kstrdup(const char *s, gfp_t gfp)
{
	if (!s)
		return NULL;
	return kmemdup(s, strlen(s) + 1, gfp);
}

/**
 * kmemdup - copy @len bytes into kmalloc() memory
 * @p: the bytes
 * @len: how many
 * @gfp: as for kmem_cache_alloc()
 */
void *kmemdup(const void *p, size_t len, gfp_t gfp)
{
	void *n = kmalloc(len, gfp & ~__GFP_ZERO);

	if (n && !ZERO_OR_NULL_PTR(n))
		memcpy(n, p, len);
	return n;
}

/* ------------------------------------------------------------ start-up */

static void create_kmalloc_caches(void)
{
	unsigned int i;

	for (i = 0; i < NR_KMALLOC_CACHES; i++) {
		unsigned int size = kmalloc_class_size(i);
		/* the largest power of two dividing it: see the classes */
		unsigned int align = size & -size;
		char name[32];

		snprintf(name, sizeof(name), "kmalloc-%u", size);
		kmalloc_caches[i] = create_cache(name, size, align,
						 SLAB_NO_MERGE, NULL);
		if (!kmalloc_caches[i]) {
			slab_warn("cannot create %s", name);
			abort();
		}
		kmalloc_caches[i]->kmalloc = true;
	}
}

/**
 * slab_caches_init - create the kmalloc caches
 *
 * Context: kslab_init(), after slab_init().
 */
void slab_caches_init(void)
{
	create_kmalloc_caches();
}

/* ------------------------------------------------- threads and fork() */

static void thread_release(struct kslab_thread *t, bool retire)
{
	if (!t->caches.size)
		return;
	pthread_mutex_lock(&slab_mutex);
	__slab_thread_release(t, retire);
	pthread_mutex_unlock(&slab_mutex);
}

/**
 * slab_thread_exit - give back an exiting thread's front ends
 * @t: the thread's state; t->exiting is set, so none is set up again
 *
 * The magazines are parked in their caches' depots for the next thread.
 */
void slab_thread_exit(struct kslab_thread *t)
{
	thread_release(t, true);
}

/**
 * slab_thread_gone - give back the front ends of a thread a fork() child
 * lacks
 * @t: that thread's state, in the child's copy of memory
 */
void slab_thread_gone(struct kslab_thread *t)
{
	thread_release(t, false);
}

/*
 * fork() in a threaded program (the lock order and the table of handlers
 * are in mm/lifecycle.c): slab_mutex, then every user cache's lock.
 */
void slab_fork_prepare(void)
{
	struct kmem_cache *s;

	pthread_mutex_lock(&slab_mutex);
	list_for_each_entry(s, &slab_caches, list)
		__kmem_cache_fork_lock(s);
}

void slab_fork_parent(void)
{
	struct kmem_cache *s;

	list_for_each_entry(s, &slab_caches, list)
		__kmem_cache_fork_unlock(s);
	pthread_mutex_unlock(&slab_mutex);
}

void slab_fork_child(void)
{
	slab_fork_parent();
}
