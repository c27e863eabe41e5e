/* SPDX-License-Identifier: MIT */
/*
 * kslab: slab caches and the kmalloc family.
 *
 * This header is the contract; Documentation/mm/slab.rst explains the
 * design behind it.  Every call is thread-safe.  Memory comes from the
 * operating system as it is needed, so an address-space limit surfaces as
 * NULL from the allocation calls.
 */
#ifndef _KSLAB_SLAB_H
#define _KSLAB_SLAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * struct rcu_head comes from the flavor-neutral <urcu/call-rcu.h>.  The
 * flavor struct is only declared, so that a flavor header (<urcu.h>,
 * <urcu/urcu-qsbr.h>, ...) may come before or after this one.
 */
#include <urcu/call-rcu.h>

struct rcu_flavor_struct;

#ifdef __cplusplus
extern "C" {
#endif

/* The library is built with hidden visibility; these names are its API. */
#pragma GCC visibility push(default)

/* Allocation context flags. */
typedef unsigned int gfp_t;

#define __GFP_NOWAIT_BIT	0x01u	/* never block on another thread */
#define __GFP_HIGH		0x02u	/* may use emergency reserves */
#define __GFP_ZERO		0x04u	/* return the object zeroed */
#define __GFP_NOFAIL		0x08u	/* retry until the allocation succeeds */
#define __GFP_NOWARN		0x10u	/* no report on failure */
#define __GFP_DIRECT_RECLAIM	0x20u	/* may sleep: waits and reclaim allowed */

#define GFP_KERNEL	(__GFP_DIRECT_RECLAIM)
#define GFP_NOWAIT	(__GFP_NOWAIT_BIT)
#define GFP_ATOMIC	(__GFP_NOWAIT_BIT | __GFP_HIGH)

/* Cache creation flags. */
typedef unsigned int slab_flags_t;

#define SLAB_CONSISTENCY_CHECKS	0x00000100u	/* check metadata on free (later issue) */
#define SLAB_RED_ZONE		0x00000400u	/* red zones around objects (later issue) */
#define SLAB_POISON		0x00000800u	/* poison free objects (later issue) */
#define SLAB_HWCACHE_ALIGN	0x00002000u	/* objects never straddle a cache line */
#define SLAB_STORE_USER		0x00010000u	/* record the last user (later issue) */
#define SLAB_PANIC		0x00040000u	/* abort instead of failing creation */
#define SLAB_TYPESAFE_BY_RCU	0x00080000u	/* memory type-stable for a grace period */
#define SLAB_NO_MERGE		0x01000000u	/* never share with a compatible cache */

/*
 * kmalloc(0) returns ZERO_SIZE_PTR: unique, non-NULL, and faults when
 * dereferenced (the first page is never mapped).
 */
#define ZERO_SIZE_PTR		((void *)16)
#define ZERO_OR_NULL_PTR(x)	((uintptr_t)(x) <= (uintptr_t)ZERO_SIZE_PTR)

/* The largest size served from a kmalloc-<size> cache (256 KiB). */
#define KMALLOC_SHIFT_HIGH	18
#define KMALLOC_MAX_CACHE_SIZE	(1UL << KMALLOC_SHIFT_HIGH)

struct kmem_cache;

struct kmem_cache_info {
	const char *name;
	size_t object_size;	/* usable bytes per object */
	size_t slot_size;	/* bytes an object takes in its slab */
	size_t align;
	size_t active_objs;	/* handed out and not yet back in the cache */
	size_t total_objs;	/* capacity of every slab the cache holds */
	size_t slabs;
	size_t slab_size;	/* bytes per slab */
	size_t objs_per_slab;
	size_t pending_rcu;	/* waiting for a grace period */
	size_t cached_objs;	/* free objects held in per-thread caches and the depot */
	unsigned long flags;
};

struct kmem_cache *kmem_cache_create(const char *name, unsigned int size,
				     unsigned int align, slab_flags_t flags,
				     void (*ctor)(void *));
void kmem_cache_destroy(struct kmem_cache *s);
void *kmem_cache_alloc(struct kmem_cache *s, gfp_t gfp);
void *kmem_cache_zalloc(struct kmem_cache *s, gfp_t gfp);
void kmem_cache_free(struct kmem_cache *s, void *obj);
int kmem_cache_alloc_bulk(struct kmem_cache *s, gfp_t gfp, size_t nr,
			  void **p);
void kmem_cache_free_bulk(struct kmem_cache *s, size_t nr, void **p);
int kmem_cache_shrink(struct kmem_cache *s);
unsigned int kmem_cache_size(struct kmem_cache *s);
const char *kmem_cache_name(struct kmem_cache *s);
int kmem_cache_get_info(struct kmem_cache *s, struct kmem_cache_info *info);

#define KMEM_CACHE(__struct, __flags)					\
	kmem_cache_create(#__struct, sizeof(struct __struct),		\
			  __alignof__(struct __struct), (__flags), NULL)

void *kmalloc(size_t size, gfp_t gfp);
void *kzalloc(size_t size, gfp_t gfp);
void *kcalloc(size_t n, size_t size, gfp_t gfp);
void *kmalloc_array(size_t n, size_t size, gfp_t gfp);
void *krealloc(const void *p, size_t new_size, gfp_t gfp);
void kfree(const void *p);
size_t ksize(const void *p);
char *kstrdup(const char *s, gfp_t gfp);
void *kmemdup(const void *p, size_t len, gfp_t gfp);

/*
 * RCU-deferred frees (Documentation/mm/rcu-reclaim.rst).  The object is
 * freed once every RCU read-side critical section that began before the
 * call has ended.  The default flavor is urcu-memb; a program whose
 * readers use another flavor says so first with kslab_set_rcu_flavor().
 */
void kslab_set_rcu_flavor(const struct rcu_flavor_struct *flavor);
void __kslab_kfree_rcu(void *ptr, size_t head_offset);
void __kslab_kfree_rcu_mightsleep(void *ptr);
void kvfree_rcu_barrier(void);

/**
 * kfree_rcu - free @ptr after a grace period, without blocking
 * @ptr: a kslab object (kmalloc or any cache), or NULL; may point to const,
 *	as kfree()'s argument may
 * @field: the name of a struct rcu_head member of *@ptr
 *
 * @ptr is evaluated once.  Works from any thread, registered with liburcu
 * or not, and inside a read-side critical section.
 */
#define kfree_rcu(ptr, field)	__kslab_kfree_rcu_field(ptr, field)

/*
 * Both forms refuse at compile time a @field that is not a struct
 * rcu_head, and evaluate @ptr once.  C finds the offset with offsetof().
 * C++ has no __builtin_choose_expr(), and its offsetof() is meant for
 * standard-layout types only, which many classes are not (a base class,
 * virtual functions, mixed access): there the offset is taken from the
 * object itself, and initialising a pointer to struct rcu_head is the
 * type check.
 */
#ifdef __cplusplus
#define __kslab_kfree_rcu_field(ptr, field) (__extension__ ({		\
	__typeof__(ptr) __kslab_ptr = (ptr);				\
	const struct rcu_head *__kslab_head =				\
		__kslab_ptr ? &__kslab_ptr->field : nullptr;		\
									\
	__kslab_kfree_rcu((void *)__kslab_ptr,				\
			  (size_t)((const char *)__kslab_head -		\
				   (const char *)__kslab_ptr));		\
}))
#else
#define __kslab_kfree_rcu_field(ptr, field)				\
	__kslab_kfree_rcu((void *)(ptr), __kslab_rcu_head_offset(ptr, field))

#define __kslab_rcu_head_offset(ptr, field)				\
	(__builtin_choose_expr(						\
		__builtin_types_compatible_p(				\
			__typeof__(((__typeof__(*(ptr)) *)0)->field),	\
			struct rcu_head),				\
		offsetof(__typeof__(*(ptr)), field),			\
		(void)"kfree_rcu: the field must be a struct rcu_head"))
#endif

/**
 * kfree_rcu_mightsleep - free @ptr after a grace period; no rcu_head needed
 * @ptr: a kslab object, or NULL
 *
 * May wait for a grace period when it cannot batch; must not be called
 * inside a read-side critical section.
 */
#define kfree_rcu_mightsleep(ptr)	__kslab_kfree_rcu_mightsleep(ptr)

/* Counters of the RCU reclaim machinery (an addition to the contract). */
struct kslab_rcu_stats {
	unsigned long grace_periods;	/* waited for by the reclaim thread */
	unsigned long batches;		/* handed over for a grace period */
	unsigned long long objects;	/* RCU frees carried out */
	size_t pending;			/* objects waiting now */
	size_t peak_pending;		/* most objects ever waiting at once */
	size_t max_pending;		/* the back-pressure bound */
	unsigned long throttled;	/* times a freeing thread was held back */
};
void kslab_rcu_get_stats(struct kslab_rcu_stats *st);

#pragma GCC visibility pop

#ifdef __cplusplus
}
#endif

#endif /* _KSLAB_SLAB_H */
