/* SPDX-License-Identifier: MIT */
/*
 * Internal types of the slab allocator, with their invariants beside the
 * fields, and the inline fast paths shared by slub.c (caches) and
 * slab_common.c (kmalloc).  Nothing here is part of the public API.
 *
 * See the theory comment at the top of mm/slub.c for how the pieces fit.
 */
#ifndef _KSLAB_MM_SLAB_H
#define _KSLAB_MM_SLAB_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <kslab/finalizer.h>
#include <kslab/slab.h>

#include "lib/compiler.h"
#include "lib/list.h"
#include "mm/slab_names.h"

#pragma GCC visibility push(hidden)

#define PAGE_SIZE		4096UL
#define CACHE_LINE_SIZE		64U

/*
 * Slabs are naturally aligned runs of granules; the address map has one
 * entry per granule.  A slab is between one granule and SLAB_MAX_SIZE.
 */
#define SLAB_GRANULE_SHIFT	16
#define SLAB_GRANULE_SIZE	(1UL << SLAB_GRANULE_SHIFT)
#define SLAB_MAX_SIZE		(4UL << 20)
#define KSLAB_MAX_OBJECT_SIZE	(1U << 20)

/* All flags kmem_cache_create() accepts. */
#define SLAB_FLAGS_VALID	(SLAB_CONSISTENCY_CHECKS | SLAB_RED_ZONE |	\
				 SLAB_POISON | SLAB_HWCACHE_ALIGN |		\
				 SLAB_STORE_USER | SLAB_PANIC |			\
				 SLAB_TYPESAFE_BY_RCU | SLAB_NO_MERGE)

struct kmem_cache;

/*
 * struct slab - what kslab knows of a slab: kslab metadata beside a user
 * cache's slab (off the slab, out of reach of writes past an object), the
 * header at the start of a metadata cache's slab, and the descriptor of
 * every large block (cache == NULL; mm/page_alloc.c).
 *
 * Objects live at base + i * slot_size for i < objects.  Bit i of
 * free_map is set while object i is in the slab (free); clear while it is
 * out (handed to a user, or sitting in a magazine).  The allocator never
 * writes into a free object: a ctor's work survives, an RCU reader of a
 * SLAB_TYPESAFE_BY_RCU object reads what the last user left, and filling
 * or emptying a magazine touches two cache lines of bitmap per 1024
 * objects instead of every object.  Objects are taken lowest address
 * first, so a slab's untouched tail costs no resident memory.
 */
struct slab {
	struct kmem_cache *cache;	/* tagged: use slab_cache() */
	unsigned char *base;		/* first object; immutable */
	size_t size;			/* bytes mapped */
	unsigned int inuse;		/* objects out of the slab; under lock */
	unsigned short first_free;	/* no free bit in words below; under lock */
	bool offslab;			/* the mapping starts at base; immutable */
	bool dirty;			/* large, free: its pages may be resident */
	struct list_head slab_list;	/* partial/full/empty; under lock */
	void *meta;			/* features' state: slab_release_meta() */
	unsigned long empty_since;	/* ms, while on the empty list */
	unsigned long free_map[];	/* under lock */
};

/* The low bit of slab->cache: see slab_hooked(). */
#define SLAB_HOOKED		1UL

/* The cache of @slab, NULL for a large kmalloc. */
static __always_inline struct kmem_cache *slab_cache(const struct slab *slab)
{
	return (struct kmem_cache *)((uintptr_t)READ_ONCE(slab->cache) &
				     ~SLAB_HOOKED);
}

/*
 * A magazine is a stack of free object pointers (Bonwick 2001).  Full
 * and empty magazines are exchanged between threads through the cache's
 * depot, so a thread that frees what another allocated passes objects
 * back a magazine at a time, never one lock per object.
 */
struct magazine {
	struct magazine *next;		/* depot list link; under lock */
	unsigned int count;		/* valid only while in the depot */
	void *objs[];
};

/*
 * struct thread_cache - one thread's front end for one cache.
 *
 * Owned by its thread: only the owner touches objs[] and the magazine
 * pointers without cache->lock.  count and prev_count are written with
 * WRITE_ONCE so kmem_cache_get_info() may read them under cache->lock.
 *
 * The fast paths do not compare cache: a table slot is the placeholder
 * (count == size == 0), a drained front end (cache NULL, count == size
 * == 0), or the live front end of the one cache that owns the id.  A
 * cache destroyed with objects remaining keeps its id for as long as its
 * descriptor exists, so no two caches ever share one.  When a cache is destroyed its
 * front ends are drained under cache->lock and slab_mutex; the owner
 * re-initialises one for whatever cache takes the id next.
 */
struct thread_cache {
	struct kmem_cache *cache;	/* the cache this front end serves */
	unsigned int count;		/* objects in loaded */
	unsigned int size;		/* capacity of a magazine */
	void **objs;			/* loaded->objs */
	struct magazine *loaded;	/* alloc pops and free pushes here */
	struct magazine *prev;		/* full or empty, swapped with loaded */
	unsigned int prev_count;
	struct list_head node;		/* on cache->thread_caches; under lock */
};

enum stat_item {
	ALLOC_FASTPATH,		/* served from the loaded magazine */
	ALLOC_SLOWPATH,		/* went below the loaded magazine */
	ALLOC_DEPOT,		/* got a full magazine from the depot */
	ALLOC_REFILL,		/* filled a magazine from slabs */
	FREE_FASTPATH,
	FREE_SLOWPATH,
	FREE_DEPOT,		/* gave a full magazine to the depot */
	FREE_FLUSH,		/* emptied a magazine into slabs */
	SLAB_NEW,
	SLAB_RELEASED,
	NR_SLAB_STAT_ITEMS
};

/*
 * struct kmem_cache - the descriptor of one cache.
 *
 * The first line is read-only after creation and read by every fast path.
 * Everything below lock is protected by it.
 */
struct kmem_cache {
	unsigned int id;		/* index in per-thread cache tables */
	unsigned int slot_size;		/* stride between objects */
	unsigned int objs_bytes;	/* objs_per_slab * slot_size */
	unsigned int map_words;		/* longs in a slab's free_map */
	uint64_t slot_reciprocal;	/* see obj_is_slot_start() */
	void (*ctor)(void *obj);
	slab_flags_t flags;
	kmem_finalizer_t finalizer;	/* kmem_cache_set_finalizer(), or NULL */
	unsigned int object_size;	/* what the user asked for */
	unsigned int usable_size;	/* object_size rounded to a word */
	unsigned int align;
	size_t slab_size;		/* bytes per slab, a power of two */
	unsigned int slab_header;	/* offset of the first object */
	unsigned int objs_per_slab;
	unsigned int magazine_size;
	char *name;			/* owned copy */
	bool kmalloc;			/* one of the kmalloc-<size> caches */
	bool internal;			/* kslab's own metadata: no front ends */
	bool finalizers_used;		/* an object or the cache had one */
	bool hook_all_slabs;		/* every slab joins hooked: slab_hooked() */
	void *finalizer_arg;

	pthread_mutex_t lock;
	struct list_head partial;	/* slabs with objects both out and free */
	struct list_head full;		/* slabs with no free object */
	struct list_head empty;		/* every object free; newest first */
	unsigned long nr_slabs;
	unsigned long nr_empty;
	unsigned long inuse;		/* sum of slab->inuse */
	struct magazine *depot_full;
	struct magazine *depot_empty;
	unsigned int depot_nr_full;
	unsigned int depot_nr_empty;
	unsigned long depot_objs;	/* objects in depot_full */
	struct list_head thread_caches;
	bool dead;			/* destroyed with objects remaining */

	struct list_head list;		/* on slab_caches; under slab_mutex */
#ifdef CONFIG_KSLAB_STATS
	unsigned long stat[NR_SLAB_STAT_ITEMS];
#endif
};

#ifdef CONFIG_KSLAB_STATS
#define stat(s, item)	__atomic_fetch_add(&(s)->stat[item], 1, __ATOMIC_RELAXED)
#else
#define stat(s, item)	((void)(s))
#endif

/* mm/pagemap.c: granule -> slab, lock-free lookups. */
int pagemap_register(struct slab *slab, const void *start, size_t size,
		     bool nowait);
void pagemap_unregister(const void *start, size_t size);
void pagemap_fork_prepare(void);
void pagemap_fork_parent(void);
void pagemap_fork_child(void);

#define PAGEMAP_ADDR_BITS	47
#define PAGEMAP_LEAF_BITS	16
#define PAGEMAP_ROOT_BITS	(PAGEMAP_ADDR_BITS - SLAB_GRANULE_SHIFT -	\
				 PAGEMAP_LEAF_BITS)

extern struct slab **pagemap_root[1UL << PAGEMAP_ROOT_BITS];

/**
 * virt_to_slab - the slab (or large mapping) an address lies in
 * @p: any address
 *
 * Two dependent loads, no lock.  An address above the 47-bit user range
 * is folded into it rather than tested for: whatever slab it then meets,
 * the caller's range check against that slab rejects it.
 *
 * Return: NULL for most addresses kslab does not manage; callers check
 * that @p lies inside the slab returned.
 */
static __always_inline struct slab *virt_to_slab(const void *p)
{
	uintptr_t granule = ((uintptr_t)p >> SLAB_GRANULE_SHIFT) &
			    ((1UL << (PAGEMAP_ADDR_BITS - SLAB_GRANULE_SHIFT)) - 1);
	struct slab **leaf;

	/* pairs with the release stores in pagemap.c: a mapped slab is set up */
	leaf = smp_load_acquire(&pagemap_root[granule >> PAGEMAP_LEAF_BITS]);
	if (unlikely(!leaf))
		return NULL;
	/* as above, for the entry */
	return smp_load_acquire(&leaf[granule & ((1UL << PAGEMAP_LEAF_BITS) - 1)]);
}

/* Per-thread table of front ends, indexed by cache id. */
struct thread_cache_table {
	struct thread_cache **caches;	/* size entries, never NULL */
	unsigned int size;
};

struct kslab_ptr_batch;

/*
 * A thread's RCU batch (mm/kfree_rcu.c).  The owner writes batch->objs[]
 * and batch->nr without a lock; batch and stolen change only under
 * rcu_lock.  Objects [stolen, batch->nr) wait in the thread; those below
 * stolen were copied out by the reclaim thread.
 */
struct rcu_thread {
	struct kslab_ptr_batch *batch;	/* current batch, or NULL */
	unsigned long stolen;		/* see above; under rcu_lock */
	unsigned long since_ms;		/* when objs[stolen] was queued */
	bool registered;		/* has a batch; under rcu_lock */
};

/*
 * A thread's count of objects it marked DYING (mm/finalizer.c): no shared
 * cache line on the free path; see dying_objects().
 */
struct fin_thread {
	unsigned long marked;		/* written by the owner only */
	bool registered;		/* counted; under fin_lock */
};

/*
 * struct kslab_thread - everything kslab keeps per thread, in its TLS
 * (mm/lifecycle.c).  Each part belongs to the file named beside it.  A
 * thread is on the one registry, kslab_threads, from the first time any
 * part keeps state for it until its one exit key has handed the struct
 * to each part's exit; a fork() child hands the structs of the threads
 * it lacks to each part's reaper.  Walkers of the registry hold
 * kslab_threads_lock, which nests inside the parts' own locks.
 */
struct kslab_thread {
	struct thread_cache_table caches;	/* mm/slub.c; first: fast paths */
	struct rcu_thread rcu;			/* mm/kfree_rcu.c */
	struct fin_thread fin;			/* mm/finalizer.c */
	bool exiting;				/* its exit key ran */
	bool registered;			/* on kslab_threads */
	struct list_head node;			/* under kslab_threads_lock */
};

extern __thread struct kslab_thread kslab_self __initial_exec;

/* mm/lifecycle.c */
extern struct list_head kslab_threads;
extern pthread_mutex_t kslab_threads_lock;
void kslab_thread_register(void);

#define for_each_kslab_thread(t)					\
	list_for_each_entry(t, &kslab_threads, node)

/* This thread's front end for @s, or NULL; for the slow paths. */
static inline struct thread_cache *this_thread_cache(struct kmem_cache *s)
{
	struct thread_cache *tc;

	if (s->id >= kslab_self.caches.size)
		return NULL;
	tc = kslab_self.caches.caches[s->id];
	return READ_ONCE(tc->cache) == s ? tc : NULL;
}

/*
 * slot_reciprocal is ceil(2^SLOT_RECIPROCAL_SHIFT / slot_size).  With
 * offsets below SLAB_MAX_SIZE (2^22) and slots below 2^21, the product
 * fits in 64 bits and off * reciprocal >> SHIFT is exactly off / slot.
 */
#define SLOT_RECIPROCAL_SHIFT	44

/*
 * obj_is_slot_start - whether @obj is the start of an object slot of @slab.
 * Multiplying by the precomputed reciprocal avoids a division.
 */
static __always_inline bool obj_is_slot_start(const struct kmem_cache *s,
					      const struct slab *slab,
					      const void *obj)
{
	uintptr_t off = (uintptr_t)obj - (uintptr_t)slab->base;
	uintptr_t idx = (uintptr_t)((off * s->slot_reciprocal) >>
				    SLOT_RECIPROCAL_SHIFT);

	return off < s->objs_bytes && idx * s->slot_size == off;
}

/* The index of the object at @obj, which lies in @slab's object area. */
static __always_inline unsigned int obj_to_index(const struct kmem_cache *s,
						 const struct slab *slab,
						 const void *obj)
{
	uintptr_t off = (uintptr_t)obj - (uintptr_t)slab->base;

	return (unsigned int)((off * s->slot_reciprocal) >>
			      SLOT_RECIPROCAL_SHIFT);
}

/*
 * mm/slub.c: the implementation's interface.  The generic layer calls it;
 * it calls nothing above it (mm/report.c and mm/pagemap.c are below).
 */
void *__slab_alloc(struct kmem_cache *s, gfp_t gfp);
bool __slab_free(struct kmem_cache *s, void *obj);
int __kmem_cache_create(struct kmem_cache *s);
bool __kmem_cache_shutdown(struct kmem_cache *s, struct list_head *retired);
void __kmem_cache_release(struct kmem_cache *s);
int __kmem_cache_shrink(struct kmem_cache *s, struct list_head *retired);
void __kmem_cache_get_info(struct kmem_cache *s, struct kmem_cache_info *info);
unsigned long __kmem_cache_decay(struct kmem_cache *s, unsigned long cutoff,
				 struct list_head *retired);
unsigned long __slab_meta_decay(unsigned long cutoff);
void __slab_meta_shrink(void);
unsigned long __slab_decay_ms(void);
extern unsigned long slab_next_decay_ms;
void __slab_unmap_retired(struct list_head *list);
void __kmem_cache_fork_lock(struct kmem_cache *s);
void __kmem_cache_fork_unlock(struct kmem_cache *s);
void __slab_thread_release(struct kslab_thread *t, bool retire);
void slab_init(void);
void slab_meta_fork_prepare(void);
void slab_meta_fork_parent(void);
void slab_meta_fork_child(void);

/*
 * kslab's own metadata (magazines, tables, descriptors, batches), from
 * the implementation's kslab-meta-<size> caches or, above 4 KiB, a large
 * block; never from malloc(), so a fork() child can allocate even when
 * another allocator's lock was held at the fork.
 */
#define META_MIN_SIZE		32U
#define NR_META_CACHES		15	/* 32 bytes to 4 KiB, two per doubling */
extern struct kmem_cache slab_meta_caches[NR_META_CACHES];
void *slab_meta_alloc(size_t size);
void *slab_meta_zalloc(size_t size);
void slab_meta_free(const void *p);

/*
 * mm/page_alloc.c: the page-level allocator below the slab layer.  A
 * large block starts its extent, so it is granule aligned, and its
 * struct slab (cache NULL, inuse 1 while allocated) lies off the extent.
 */
#define KMALLOC_LARGE_MAX	(1UL << 46)
void *__slab_alloc_large(size_t size, size_t align, gfp_t gfp);
void __slab_free_large(struct slab *slab);
void *__slab_realloc_large(struct slab *slab, size_t new_size);
size_t page_alloc_free_bytes(void);
void page_alloc_trim(void);
void page_alloc_decay(void);
void page_alloc_init(void);
void page_alloc_fork_prepare(void);
void page_alloc_fork_parent(void);
void page_alloc_fork_child(void);
void *slab_map(size_t size, size_t align);
void slab_unmap(void *p, size_t size);

/*
 * kmalloc_aligned - kmalloc() of @size bytes aligned to @align (a power
 * of two), for the malloc replacement's memalign family (mm/malloc.c);
 * freed with kfree(), measured with ksize().
 */
void *kmalloc_aligned(size_t size, size_t align, gfp_t gfp);

/*
 * mm/slab_common.c: the generic layer's slow paths (never inlined into
 * the fast paths, which would then need a stack frame) and walks
 */
void *slab_alloc_slow(struct kmem_cache *s, gfp_t gfp);
void slab_free_slow(struct kmem_cache *s, void *obj);
void slab_thread_exit(struct kslab_thread *t);
void slab_thread_gone(struct kslab_thread *t);
void slab_fork_prepare(void);
void slab_fork_parent(void);
void slab_fork_child(void);

/* mm/report.c: kernel-style reports; every layer calls them */
__printf(2, 3) __cold
void slab_bug(const char *name, const char *fmt, ...);
__printf(1, 2) __cold
void slab_warn(const char *fmt, ...);
void slab_report_bad_free(struct kmem_cache *s, const void *obj,
			  const char *what);
__printf(1, 2) __cold
void slab_misuse(const char *fmt, ...);

/*
 * alloc_from_thread_cache / free_to_thread_cache - the fast paths: one
 * thread-local load, one load of the front end, and a pop or push on the
 * loaded magazine.  No lock, no atomic read-modify-write, no compare of
 * the cache (see struct thread_cache).  They return NULL/false when the
 * slow path must run.
 */
static __always_inline void *alloc_from_thread_cache(struct kmem_cache *s)
{
	unsigned int id = s->id, n;
	struct thread_cache *tc;
	void *obj;

	if (unlikely(id >= kslab_self.caches.size))
		return NULL;
	tc = kslab_self.caches.caches[id];
	n = tc->count;
	if (unlikely(!n))
		return NULL;
	obj = tc->objs[--n];
	WRITE_ONCE(tc->count, n);
	stat(s, ALLOC_FASTPATH);
	return obj;
}

static __always_inline bool free_to_thread_cache(struct kmem_cache *s,
						 void *obj)
{
	unsigned int id = s->id, n;
	struct thread_cache *tc;

	if (unlikely(id >= kslab_self.caches.size))
		return false;
	tc = kslab_self.caches.caches[id];
	n = tc->count;
	if (unlikely(n >= tc->size))
		return false;
	/* the cheapest double-free check: the object freed just before */
	if (unlikely(n && tc->objs[n - 1] == obj))
		return false;
	tc->objs[n] = obj;
	WRITE_ONCE(tc->count, n + 1);
	stat(s, FREE_FASTPATH);
	return true;
}

static __always_inline void *slab_alloc(struct kmem_cache *s, gfp_t gfp)
{
	unsigned int id = s->id, n;
	struct thread_cache *tc;
	void *obj;

	if (unlikely(gfp & __GFP_ZERO) || unlikely(id >= kslab_self.caches.size))
		goto slow;
	tc = kslab_self.caches.caches[id];
	n = tc->count;
	if (unlikely(!n))
		goto slow;
	obj = tc->objs[--n];
	WRITE_ONCE(tc->count, n);
	stat(s, ALLOC_FASTPATH);
	return obj;
slow:
	return slab_alloc_slow(s, gfp);
}

static __always_inline void slab_free(struct kmem_cache *s, void *obj)
{
	if (likely(free_to_thread_cache(s, obj)))
		return;
	slab_free_slow(s, obj);
}

/* ------------------------------------------------------ object lookup */

/*
 * struct slab_obj - what a pointer is to kslab, from slab_lookup_obj():
 * its slab, its cache (NULL for a large kmalloc) and its slot.  Every
 * check of "is this the start of a kslab object" is this one lookup.
 */
struct slab_obj {
	struct slab *slab;
	struct kmem_cache *s;		/* NULL for a large kmalloc */
	unsigned int index;		/* slot in the slab; 0 for large */
};

/**
 * slab_lookup_obj - whether @p is the start of an object kslab handed out
 * @p: any address except NULL and ZERO_SIZE_PTR
 * @o: filled in when the answer is yes
 *
 * Two loads for the slab, one multiply for the slot; no lock.  Whether
 * the object is out of its slab is slab_obj_in_slab()'s question.
 * Return: true when @p starts an object slot or a large kmalloc.
 */
static __always_inline bool slab_obj_at(struct slab *slab, const void *p,
					struct slab_obj *o);

static __always_inline bool slab_lookup_obj(const void *p, struct slab_obj *o)
{
	struct slab *slab = virt_to_slab(p);

	if (unlikely(!slab))
		return false;
	return slab_obj_at(slab, p, o);
}

/* slab_lookup_obj() for a free path that already holds @p's slab. */
static __always_inline bool slab_obj_at(struct slab *slab, const void *p,
					struct slab_obj *o)
{
	struct kmem_cache *s = slab_cache(slab);

	o->slab = slab;
	o->s = s;
	if (unlikely(!s)) {
		o->index = 0;
		/* a large block, and not one kept free for reuse */
		return p == slab->base && READ_ONCE(slab->inuse);
	}
	o->index = obj_to_index(s, slab, p);
	return obj_is_slot_start(s, slab, p);
}

/*
 * The lookup of an object kslab itself holds (in an RCU batch, on the
 * finalizer queue), which slab_lookup_obj() accepted when it was freed.
 */
static __always_inline void slab_obj_known(const void *p, struct slab_obj *o)
{
	struct slab *slab = virt_to_slab(p);
	struct kmem_cache *s = slab_cache(slab);

	o->slab = slab;
	o->s = s;
	o->index = likely(s) ? obj_to_index(s, slab, p) : 0;
}

/*
 * Whether the object is free in its slab (not out to a user nor sitting
 * in a magazine).  A racy read: for reports and argument checks only.
 */
static inline bool slab_obj_in_slab(const struct slab_obj *o)
{
	if (!o->s)
		return false;
	return READ_ONCE(o->slab->free_map[o->index / 64]) &
	       (1UL << (o->index % 64));
}

/* ---------------------------------------------------------- the hooks */

/*
 * A feature that acts on objects on their way out sets SLAB_HOOKED, the
 * low bit of slab->cache, on the slabs whose objects it must see (one
 * slab at a time with slab_mark_hooked(), or every slab of a cache with
 * slab_mark_cache_hooked()).  The free paths load slab->cache anyway:
 * kmem_cache_free() then finds slab->cache != s and kfree() tests a
 * register, so a free from an unhooked slab costs nothing for any
 * feature.  The bit stays until the slab leaves its cache.
 */
static __always_inline bool slab_hooked(const struct slab *slab)
{
	return (uintptr_t)READ_ONCE(slab->cache) & SLAB_HOOKED;
}

static __always_inline void slab_mark_hooked(struct slab *slab)
{
	__atomic_fetch_or((uintptr_t *)&slab->cache, SLAB_HOOKED,
			  __ATOMIC_RELEASE);
}

void slab_mark_cache_hooked(struct kmem_cache *s);

/*
 * slab->meta is one kslab allocation a feature hangs on a hooked slab for
 * the state of its objects (the finalizer's slots); it lives as long as
 * the slab and is freed, as all kslab metadata is, with slab_meta_free() when the
 * slab leaves its cache, so the implementation calls no feature for it.
 */
static inline void slab_release_meta(struct slab *slab)
{
	slab_meta_free(slab->meta);
	slab->meta = NULL;
}

/* What a free of a hooked object is (slab_free_hook()'s @how). */
enum slab_free_how {
	SLAB_FREE_NOW,		/* kfree(), kmem_cache_free() */
	SLAB_FREE_RCU,		/* kfree_rcu(): the caller defers it */
	SLAB_FREE_AFTER_GP,	/* its grace period passed (RCU reclaim) */
};

/**
 * slab_post_alloc_hook - the one hook on an object's way in
 * @s: its cache
 * @obj: the object, just taken
 * @gfp: the allocation's flags
 *
 * Runs on every allocation that leaves the magazine fast path: those
 * with __GFP_ZERO, and every allocation from a cache without per-thread
 * front ends.  A feature that must see every object (debugging,
 * sanitizer annotations) gives its caches no front ends instead of
 * adding a test to the fast path.
 */
static __always_inline void *slab_post_alloc_hook(struct kmem_cache *s,
						  void *obj, gfp_t gfp)
{
	if (unlikely(gfp & __GFP_ZERO))
		memset(obj, 0, s->object_size);
	return obj;
}

/* mm/finalizer.c: the finalizer's part of the free hook */
bool finalizer_free_hook(const struct slab_obj *o, void *obj,
			 const char *caller, enum slab_free_how how);
void finalizer_free_flush(void);

/**
 * slab_free_hook - the one call out of the free paths
 * @o: the object's lookup
 * @obj: the object
 * @caller: the public function that frees it, for reports
 * @how: what kind of free this is
 *
 * Reached only for objects of hooked slabs (slab_hooked()).  Each feature
 * may take the object (to hand it back later through
 * slab_free_unhooked()), or report a bad free and stop it.  With
 * SLAB_FREE_RCU the caller itself defers the object; "false" lets it go on.
 * The features are asked in order; today the finalizer is the only one.
 *
 * Context: the freeing thread, or the RCU reclaim after a grace period.
 * Return: true when the object was taken or the free refused.
 */
static __always_inline bool slab_free_hook(const struct slab_obj *o,
					   void *obj, const char *caller,
					   enum slab_free_how how)
{
	return finalizer_free_hook(o, obj, caller, how);
}

/* mm/slab_common.c: the one call back, and RCU reclaim's ways in */
void slab_free_unhooked(const struct slab_obj *o, void *obj);
void slab_free_after_gp(void *const *objs, size_t nr);
bool slab_free_hook_rcu(const struct slab_obj *o, void *obj,
			const char *caller);

/* mm/finalizer.c */
void finalizer_init(void);
void finalizer_thread_exit(struct kslab_thread *t);
void finalizer_thread_gone(struct kslab_thread *t);
void finalizer_exit(void);
void finalizer_atfork_prepare(void);
void finalizer_atfork_parent(void);
void finalizer_atfork_child(void);
void fin_objects_fork_prepare(void);
void fin_objects_fork_parent(void);
void fin_objects_fork_child(void);
bool finalizer_cache_destroy(struct kmem_cache *s);

/* mm/kfree_rcu.c */
void slab_free_deferred(void *obj);
bool kvfree_rcu_barrier_until(uint64_t deadline_ns, const char *caller);
bool rcu_inside_read_section(void);
size_t slab_rcu_pending(struct kmem_cache *s);
bool slab_rcu_barrier(void);
void rcu_retire_slabs(struct list_head *list);
void rcu_init(void);
void rcu_thread_exit(struct kslab_thread *t);
void rcu_thread_gone(struct kslab_thread *t);
void rcu_atfork_prepare_outer(void);
void rcu_atfork_prepare_inner(void);
void rcu_atfork_parent_inner(void);
void rcu_atfork_parent_outer(void);
void rcu_atfork_child_inner(void);
void rcu_atfork_child_outer(void);

/*
 * The cache-level side of the hooks.  Before a cache goes, every feature
 * gives back the objects of it that it holds (RCU frees land, finalizers
 * run); kmem_cache_get_info() asks them how many those are.  With the two
 * object hooks above, these are the only calls from the generic layer up
 * into the features, with slab_retire_hook() below.
 */
static inline void slab_cache_destroy_hook(struct kmem_cache *s)
{
	if (!slab_rcu_barrier())
		slab_warn("kmem_cache_destroy(%s) inside an RCU read-side critical section: pending RCU frees not waited for",
			  s->name);
	if (!finalizer_cache_destroy(s))
		slab_warn("kmem_cache_destroy(%s) called from a finalizer: its objects' finalizers not waited for",
			  s->name);
}

static inline size_t slab_cache_pending_hook(struct kmem_cache *s)
{
	return slab_rcu_pending(s);
}

/*
 * slab_retire_hook - SLAB_TYPESAFE_BY_RCU slabs the implementation took
 * off a cache (decay, shrink, destroy) wait for a grace period before
 * they are unmapped (__slab_unmap_retired()), as SLUB's go through
 * call_rcu().  Context: no cache lock held.
 */
static inline void slab_retire_hook(struct list_head *retired)
{
	if (!list_empty(retired))
		rcu_retire_slabs(retired);
}

/* mm/slab_common.c */
extern pthread_mutex_t slab_mutex;
extern struct list_head slab_caches;
void slab_caches_init(void);
void kslab_init(void);

#pragma GCC visibility pop

#endif /* _KSLAB_MM_SLAB_H */
