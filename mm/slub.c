// SPDX-License-Identifier: MIT
/*
 * kslab's slab implementation: slabs, per-thread magazines, the depot.
 *
 * Layers, from the caller down:
 *
 *   thread_cache   one per (thread, cache): a loaded magazine and a
 *                  previous one (Bonwick's magazines).  alloc pops from
 *                  loaded, free pushes onto it; when loaded runs empty or
 *                  full the two are swapped; only when both are spent
 *                  does the thread go below.  No lock, no atomic
 *                  read-modify-write: the thread owns the structure.
 *   depot          per cache, under cache->lock: a bounded stack of full
 *                  magazines and one of empty magazines.  A thread that
 *                  frees what others allocated hands a full magazine to
 *                  the depot; an allocating thread takes it.  One lock
 *                  round trip moves a whole magazine (up to 128 objects).
 *   slabs          per cache, under cache->lock: partial, full and empty
 *                  lists.  A slab is a granule-aligned mmap() of
 *                  slab_size bytes: a struct slab header with a bitmap of
 *                  free objects, then the objects.  The allocator never
 *                  writes into a free object (no in-object freelist), and
 *                  hands out the lowest free address first, so untouched
 *                  tails cost no resident memory.  Caches with a ctor
 *                  construct every object of a new slab when it is
 *                  created, outside any lock: once per object, never on
 *                  reuse.
 *   address map    mm/pagemap.c: granule -> struct slab, lock-free.  Any
 *                  pointer leads to its slab and cache in two loads, which
 *                  is how kfree() works without a size and how bad frees
 *                  are caught.
 *
 * This file calls nothing above it (the picture is at the top of
 * mm/slab_common.c): the generic layer drives it through the
 * __kmem_cache_*() and __slab_*() calls of mm/slab.h, walks the caches
 * for it (decay, fork, thread exit) and hands the SLAB_TYPESAFE_BY_RCU
 * slabs it retires to a grace period; its own bookkeeping comes from its
 * metadata caches (slab_meta_alloc()), its reports go to mm/report.c.
 *
 * Locks: cache->lock guards a cache's slab lists, depot, counters and
 * its list of thread caches; slab_mutex (slab_common.c, held by the
 * generic layer around the calls that need it) the cache list, ids and
 * thread tables.  The order they nest in with every other lock of
 * kslab is written once, at the top of mm/lifecycle.c.  A user cache's
 * slabs are mapped and unmapped with no cache lock held (slabs to release
 * are collected on a private list under the lock); a metadata cache may
 * map a slab while another cache's lock is held, when a depot needs a
 * magazine.
 *
 * Why magazines and not SLUB's per-CPU slab with a cmpxchg freelist:
 * userspace has no cheap way to stay on one CPU, and SLUB's lockless
 * freelist needs a double-word compare-and-exchange on every operation.
 * A per-thread magazine needs neither, batches cross-thread frees
 * naturally (the freeing thread fills a magazine, the allocating thread
 * takes it), and bounds what each thread can hoard.  Frees of objects
 * from many slabs cost nothing until a magazine overflows, then one lock
 * for the whole magazine.
 *
 * Memory goes back to the OS by decay, as jemalloc does it: a cache keeps
 * KSLAB_EMPTY_SLABS empty slabs for good; every other empty slab is
 * unmapped once it has stayed empty for KSLAB_SLAB_DECAY_MS.  The decay
 * runs from the slow paths of any user cache (slab_decay() in the
 * generic layer, a clock read once per magazine),
 * so a burst of frees followed by a burst of allocations reuses the
 * memory instead of unmapping and faulting it in again, which costs tens
 * of microseconds per slab on a virtual machine.  kmem_cache_shrink()
 * unmaps every empty slab at once.  Depots are bounded
 * (KSLAB_DEPOT_MAGAZINES); overflowing magazines are emptied into their
 * slabs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "lib/options.h"
#include "lib/time.h"
#include "mm/slab.h"

/* Placeholder in unused table slots: matches no cache. */
static struct thread_cache no_thread_cache;

static unsigned int empty_slab_reserve;
static unsigned long slab_decay_ms;
/*
 * The earliest time (ms) an empty slab beyond a reserve may be unmapped;
 * the generic layer's slab_decay() reads it on its slow paths.
 */
unsigned long slab_next_decay_ms = ~0UL;
static unsigned int depot_limit;

static bool cache_lock(struct kmem_cache *s, gfp_t gfp)
{
	if (gfp & __GFP_NOWAIT_BIT)
		return pthread_mutex_trylock(&s->lock) == 0;
	pthread_mutex_lock(&s->lock);
	return true;
}

static void cache_unlock(struct kmem_cache *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* ---------------------------------------------------------------- slabs */

/* -------------------------------------------------------------- metadata */

/*
 * Metadata caches, 32 to 4096 bytes, have no per-thread front ends: every
 * allocation takes the cache lock, which is fine for what they hold.  They
 * are not on slab_caches, and their locks come after every other cache's
 * lock (a cache's depot may allocate a magazine under its lock).  Larger
 * metadata is a large block.  The implementation owns them so that it
 * never calls up for its own bookkeeping; the layers above allocate
 * theirs here too.
 */
struct kmem_cache slab_meta_caches[NR_META_CACHES];

/* Two metadata classes per doubling: 32, 48, 64, 96, ..., 3072, 4096. */
static unsigned int meta_size(unsigned int i)
{
	return (i % 2 ? 3 * META_MIN_SIZE / 2 : META_MIN_SIZE) << (i / 2);
}

static void *alloc_single(struct kmem_cache *s, gfp_t gfp);
static void free_single(struct kmem_cache *s, void *obj);
static void release_all_empty(struct kmem_cache *s, struct list_head *release);

/**
 * slab_meta_alloc - memory for kslab's own bookkeeping
 * @size: bytes
 *
 * Freed with slab_meta_free().  Context: any thread, any cache lock held.
 * Return: the memory, not zeroed, or NULL with errno ENOMEM.
 */
void *slab_meta_alloc(size_t size)
{
	unsigned int i;
	void *p;

	for (i = 0; i < NR_META_CACHES; i++) {
		if (size <= meta_size(i)) {
			p = alloc_single(&slab_meta_caches[i], GFP_KERNEL);
			if (!p)
				errno = ENOMEM;
			return p;
		}
	}
	return __slab_alloc_large(size, 0, GFP_KERNEL);
}

/**
 * slab_meta_zalloc - slab_meta_alloc(), zeroed
 * @size: bytes
 *
 * A large block is fresh memory and needs no clearing.
 */
void *slab_meta_zalloc(size_t size)
{
	void *p;

	if (size > meta_size(NR_META_CACHES - 1))
		return __slab_alloc_large(size, 0, GFP_KERNEL);
	p = slab_meta_alloc(size);
	if (p)
		memset(p, 0, size);
	return p;
}

/**
 * slab_meta_free - free memory from slab_meta_alloc()
 * @p: the memory, or NULL
 */
void slab_meta_free(const void *p)
{
	struct slab *slab;
	struct kmem_cache *s;

	if (!p)
		return;
	slab = virt_to_slab(p);
	s = slab ? READ_ONCE(slab->cache) : NULL;
	if (unlikely(!slab || (s && !s->internal) ||
		     (!s && p != slab->base))) {
		slab_bug("kslab-meta", "slab_meta_free() of %p, which is not kslab metadata",
			 p);
		return;
	}
	if (s)
		free_single(s, (void *)p);
	else
		__slab_free_large(slab);
}

static void create_meta_caches(void)
{
	static char names[NR_META_CACHES][24];
	unsigned int i;

	for (i = 0; i < NR_META_CACHES; i++) {
		struct kmem_cache *s = &slab_meta_caches[i];

		s->object_size = meta_size(i);
		/* the largest power of two dividing the size, up to a line */
		s->align = s->object_size & -s->object_size;
		if (s->align > CACHE_LINE_SIZE)
			s->align = CACHE_LINE_SIZE;
		snprintf(names[i], sizeof(names[i]), "kslab-meta-%u",
			 s->object_size);
		s->name = names[i];
		s->internal = true;
		s->id = i;
		if (__kmem_cache_create(s))
			abort();
	}
}

#define BITS_PER_LONG	64
#define MAGAZINE_MAX_AUTO	((long)((1024 - sizeof(struct magazine)) / sizeof(void *)))

static void setup_slab_header(struct kmem_cache *s, struct slab *slab,
			      unsigned char *mem)
{
	unsigned int i, tail = s->objs_per_slab % BITS_PER_LONG;

	slab->cache = s;
	slab->offslab = (void *)slab != (void *)mem;
	slab->base = mem + s->slab_header;
	slab->size = s->slab_size;
	slab->inuse = 0;
	slab->first_free = 0;
	slab->meta = NULL;
	INIT_LIST_HEAD(&slab->slab_list);
	for (i = 0; i < s->map_words; i++)
		WRITE_ONCE(slab->free_map[i], ~0UL);
	if (tail)
		WRITE_ONCE(slab->free_map[s->map_words - 1], (1UL << tail) - 1);
}

/*
 * A user cache's struct slab is kslab metadata, off the slab: no write
 * past an object reaches it, and the objects start at the mapping, which
 * is aligned to the cache's alignment.  A metadata cache's header sits at
 * the start of its slab, since its header cannot come from itself.
 */
_Static_assert(SLAB_MAX_SIZE / sizeof(void *) / BITS_PER_LONG <= 0xffff,
	       "slab->first_free holds any bitmap word index");

static unsigned char *slab_mem(const struct slab *slab)
{
	return slab->offslab ? slab->base : (unsigned char *)slab;
}

/* Unmap a slab that has left its cache and the address map. */
static void unmap_slab(struct slab *slab)
{
	unsigned char *mem = slab_mem(slab);
	size_t size = slab->size;

	if (slab->offslab)
		slab_meta_free(slab);
	slab_unmap(mem, size);
}

/*
 * A cache with a ctor constructs every object of a new slab at once,
 * before the slab is visible to anyone: the ctor runs exactly once per
 * object, outside any lock, so it may itself allocate from other caches.
 */
static void construct_slab(struct kmem_cache *s, struct slab *slab)
{
	unsigned int i;

	for (i = 0; i < s->objs_per_slab; i++)
		s->ctor(slab->base + (size_t)i * s->slot_size);
}

static struct slab *new_slab(struct kmem_cache *s, gfp_t gfp)
{
	unsigned char *mem = slab_map(s->slab_size, s->align);
	struct slab *slab;

	if (!mem)
		return NULL;
	if (s->internal) {
		slab = (struct slab *)mem;
	} else {
		slab = slab_meta_alloc(sizeof(*slab) +
				       s->map_words * sizeof(long));
		if (!slab) {
			slab_unmap(mem, s->slab_size);
			return NULL;
		}
	}
	setup_slab_header(s, slab, mem);
	if (s->ctor)
		construct_slab(s, slab);
	if (pagemap_register(slab, mem, s->slab_size,
			     gfp & __GFP_NOWAIT_BIT)) {
		unmap_slab(slab);
		errno = ENOMEM;
		return NULL;
	}
	stat(s, SLAB_NEW);
	return slab;
}

/*
 * Unmap a list of slabs taken off @s.  A SLAB_TYPESAFE_BY_RCU cache's
 * slabs leave the address map now but stay mapped until a grace period
 * has passed, since a reader may still hold a pointer into them: they
 * move to @retired, which the caller hands to a grace period (the
 * generic layer's slab_retire_hook()) and which ends in
 * __slab_unmap_retired().
 * Context: no lock held; never waits.
 */
static void release_slabs(struct kmem_cache *s, struct list_head *list,
			  struct list_head *retired)
{
	struct slab *slab, *next;

	list_for_each_entry_safe(slab, next, list, slab_list) {
		slab_release_meta(slab);
		pagemap_unregister(slab_mem(slab), s->slab_size);
		stat(s, SLAB_RELEASED);
		if (s->flags & SLAB_TYPESAFE_BY_RCU)
			list_move_tail(&slab->slab_list, retired);
		else
			unmap_slab(slab);
	}
}

/**
 * __slab_unmap_retired - unmap SLAB_TYPESAFE_BY_RCU slabs after their
 * grace period
 * @list: slabs release_slabs() retired, off every cache and the address map
 *
 * Context: any thread, no lock needed.
 */
void __slab_unmap_retired(struct list_head *list)
{
	struct slab *slab, *next;

	list_for_each_entry_safe(slab, next, list, slab_list) {
		list_del_init(&slab->slab_list);
		unmap_slab(slab);
	}
}

/*
 * A slab that became empty goes to the head of the empty list, stamped;
 * beyond the reserve it will decay (see slab_decay()).
 */
static void slab_became_empty(struct kmem_cache *s, struct slab *slab)
{
	list_move(&slab->slab_list, &s->empty);
	s->nr_empty++;
	if (s->nr_empty > empty_slab_reserve) {
		unsigned long deadline = kslab_now_ms_coarse() + slab_decay_ms;

		slab->empty_since = deadline - slab_decay_ms;
		if (deadline < READ_ONCE(slab_next_decay_ms))
			WRITE_ONCE(slab_next_decay_ms, deadline);
	}
}

/**
 * __kmem_cache_decay - unmap the empty slabs of @s that stayed empty long
 * enough
 * @s: the cache
 * @cutoff: slabs empty since before this time (ms) go, oldest first
 * @retired: receives SLAB_TYPESAFE_BY_RCU slabs (see release_slabs())
 *
 * Only slabs beyond the cache's reserve go.  Context: no lock held.
 * Return: when the next of its slabs will be due, or ~0UL.
 */
unsigned long __kmem_cache_decay(struct kmem_cache *s, unsigned long cutoff,
				 struct list_head *retired)
{
	unsigned long next = ~0UL;
	LIST_HEAD(release);

	pthread_mutex_lock(&s->lock);
	while (s->nr_empty > empty_slab_reserve) {
		struct slab *slab = list_entry(s->empty.prev, struct slab,
					       slab_list);

		if (slab->empty_since > cutoff) {
			next = slab->empty_since + slab_decay_ms;
			break;
		}
		list_move(&slab->slab_list, &release);
		s->nr_empty--;
		s->nr_slabs--;
	}
	pthread_mutex_unlock(&s->lock);
	release_slabs(s, &release, retired);
	return next;
}

/**
 * __slab_meta_decay - __kmem_cache_decay() for the metadata caches
 * @cutoff: as for __kmem_cache_decay()
 *
 * Return: when the next of their slabs will be due, or ~0UL.
 */
unsigned long __slab_meta_decay(unsigned long cutoff)
{
	unsigned long next = ~0UL;
	unsigned int i;
	LIST_HEAD(none);	/* metadata caches are never TYPESAFE_BY_RCU */

	for (i = 0; i < NR_META_CACHES; i++) {
		unsigned long due = __kmem_cache_decay(&slab_meta_caches[i],
						       cutoff, &none);

		if (due < next)
			next = due;
	}
	return next;
}

/**
 * __slab_meta_shrink - give every empty slab of the metadata caches back
 *
 * After kmem_cache_shrink(): the slabs it unmapped freed their headers.
 */
void __slab_meta_shrink(void)
{
	unsigned int i;

	for (i = 0; i < NR_META_CACHES; i++) {
		struct kmem_cache *s = &slab_meta_caches[i];
		LIST_HEAD(release);
		LIST_HEAD(none);

		pthread_mutex_lock(&s->lock);
		release_all_empty(s, &release);
		pthread_mutex_unlock(&s->lock);
		release_slabs(s, &release, &none);
	}
}

/* The decay interval, for the generic layer's slab_decay(). */
unsigned long __slab_decay_ms(void)
{
	return slab_decay_ms;
}

/**
 * slab_mark_cache_hooked - route every free from @s through slab_free_hook()
 * @s: a cache a feature wants to see every free of
 *
 * Hooks every slab of @s (see slab_hooked()).  A slab added later is
 * hooked when it joins the cache, under the same lock: no slab is missed.
 * The mark stays for the life of the cache.
 *
 * Context: no cache lock held.
 */
void slab_mark_cache_hooked(struct kmem_cache *s)
{
	struct list_head *lists[] = { &s->partial, &s->full, &s->empty };
	struct slab *slab;
	unsigned int i;

	pthread_mutex_lock(&s->lock);
	WRITE_ONCE(s->hook_all_slabs, true);
	for (i = 0; i < ARRAY_SIZE(lists); i++)
		list_for_each_entry(slab, lists[i], slab_list)
			slab_mark_hooked(slab);
	pthread_mutex_unlock(&s->lock);
}

/* Move @slab to the list its new inuse count calls for. */
static void relist_slab(struct kmem_cache *s, struct slab *slab,
			unsigned int old_inuse)
{
	unsigned int n = slab->inuse;

	if (n == old_inuse)
		return;
	if (n == 0) {
		slab_became_empty(s, slab);
		return;
	}
	if (old_inuse == 0)
		s->nr_empty--;
	if (n == s->objs_per_slab)
		list_move(&slab->slab_list, &s->full);
	else if (old_inuse == 0 || old_inuse == s->objs_per_slab)
		list_move(&slab->slab_list, &s->partial);
}

/*
 * take_objects - pop up to @want objects off the cache's slabs into
 * @objs: partial slabs first (the one that most recently became partial
 * leads), then empty slabs, newest first.
 * Context: cache->lock held.
 */
static unsigned int take_objects(struct kmem_cache *s, void **objs,
				 unsigned int want)
{
	unsigned int got = 0;

	while (got < want) {
		struct list_head *head;
		struct slab *slab;
		unsigned int old, w;

		if (!list_empty(&s->partial))
			head = &s->partial;
		else if (!list_empty(&s->empty))
			head = &s->empty;
		else
			break;
		slab = list_first_entry(head, struct slab, slab_list);
		old = slab->inuse;
		w = slab->first_free;
		while (got < want && w < s->map_words) {
			unsigned long bits = slab->free_map[w];

			while (bits && got < want) {
				unsigned int b = __builtin_ctzl(bits);

				bits &= bits - 1;
				objs[got++] = slab->base + (size_t)(w * BITS_PER_LONG + b) *
						      s->slot_size;
				slab->inuse++;
			}
			WRITE_ONCE(slab->free_map[w], bits);
			if (!bits)
				w++;
		}
		slab->first_free = w;
		s->inuse += slab->inuse - old;
		relist_slab(s, slab, old);
	}
	return got;
}

/*
 * put_objects - return @n objects to their slabs.  A magazine's objects
 * mostly come in runs from one slab: each run costs one map lookup and
 * one relist.  An object whose free bit is already set was freed twice:
 * it is reported and skipped.
 * Context: cache->lock held.
 */
/*
 * A double free found when a magazine goes back, under the cache lock:
 * the call trace would be this flush's, not the free's, and naming it
 * reads files, so none is printed.
 */
static noinline __cold void report_flushed_double_free(struct kmem_cache *s,
							const void *obj)
{
	slab_misuse("%s: double free of object %p found when its magazine went back to the slabs; ignored",
		    s->name, obj);
}

static void put_objects(struct kmem_cache *s, void **objs, unsigned int n)
{
	unsigned int i = 0;

	while (i < n) {
		struct slab *slab = virt_to_slab(objs[i]);
		uintptr_t base = (uintptr_t)slab->base;
		unsigned int old = slab->inuse, freed = 0;

		do {
			unsigned int idx = obj_to_index(s, slab, objs[i]);
			unsigned int w = idx / BITS_PER_LONG;
			unsigned long bit = 1UL << (idx % BITS_PER_LONG);

			if (unlikely(slab->free_map[w] & bit)) {
				report_flushed_double_free(s, objs[i]);
			} else {
				WRITE_ONCE(slab->free_map[w], slab->free_map[w] | bit);
				if (w < slab->first_free)
					slab->first_free = w;
				freed++;
			}
			i++;
		} while (i < n && (uintptr_t)objs[i] - base < s->objs_bytes);
		slab->inuse = old - freed;
		s->inuse -= freed;
		relist_slab(s, slab, old);
	}
}

/*
 * refill_objects - fill @objs with up to @want objects from the slabs,
 * mapping a new slab when none has a free object.
 * Context: called with cache->lock held; returns with it released.
 * Return: how many objects were taken, 0 when memory ran out.
 */
static unsigned int refill_objects(struct kmem_cache *s, gfp_t gfp,
				   void **objs, unsigned int want)
{
	unsigned int got = take_objects(s, objs, want);

	while (!got) {
		struct slab *slab;

		cache_unlock(s);
		slab = new_slab(s, gfp);
		if (!slab)
			return 0;
		if (!cache_lock(s, gfp)) {
			/* no object of it was handed out: no reader, no grace period */
			pagemap_unregister(slab_mem(slab), s->slab_size);
			unmap_slab(slab);
			return 0;
		}
		/* under the lock: see slab_mark_cache_hooked() */
		if (s->hook_all_slabs)
			slab_mark_hooked(slab);
		list_add(&slab->slab_list, &s->empty);
		s->nr_slabs++;
		s->nr_empty++;
		got = take_objects(s, objs, want);
	}
	stat(s, ALLOC_REFILL);
	cache_unlock(s);
	return got;
}

/* -------------------------------------------------------------- depot */

static struct magazine *magazine_new(struct kmem_cache *s)
{
	struct magazine *mag = slab_meta_alloc(sizeof(*mag) +
					       s->magazine_size * sizeof(void *));

	if (mag) {
		mag->next = NULL;
		mag->count = 0;
	}
	return mag;
}

/* Context: cache->lock held. */
static struct magazine *depot_get_empty(struct kmem_cache *s)
{
	struct magazine *mag = s->depot_empty;

	if (!mag)
		return magazine_new(s);
	s->depot_empty = mag->next;
	s->depot_nr_empty--;
	return mag;
}

/*
 * Context: cache->lock held.  Freeing a surplus magazine takes a metadata
 * cache's lock; with @may_free false (GFP_NOWAIT) the depot keeps it.
 */
static void depot_put_empty(struct kmem_cache *s, struct magazine *mag,
			    bool may_free)
{
	if (s->depot_nr_empty >= depot_limit && may_free) {
		slab_meta_free(mag);
		return;
	}
	mag->count = 0;
	mag->next = s->depot_empty;
	s->depot_empty = mag;
	s->depot_nr_empty++;
}

/*
 * depot_put_full - park a full (or partly full) magazine in the depot;
 * when the depot is at its bound, empty the magazine into its slabs
 * instead and keep it as an empty one.
 * Context: cache->lock held.
 */
static void depot_put_full(struct kmem_cache *s, struct magazine *mag,
			   unsigned int count)
{
	if (s->depot_nr_full >= depot_limit || !count) {
		put_objects(s, mag->objs, count);
		stat(s, FREE_FLUSH);
		depot_put_empty(s, mag, true);
		return;
	}
	mag->count = count;
	mag->next = s->depot_full;
	s->depot_full = mag;
	s->depot_nr_full++;
	s->depot_objs += count;
	stat(s, FREE_DEPOT);
}

/* Context: cache->lock held. */
static struct magazine *depot_get_full(struct kmem_cache *s)
{
	struct magazine *mag = s->depot_full;

	if (mag) {
		s->depot_full = mag->next;
		s->depot_nr_full--;
		s->depot_objs -= mag->count;
	}
	return mag;
}

/* Empty the whole depot into the slabs.  Context: cache->lock held. */
static void depot_flush(struct kmem_cache *s)
{
	struct magazine *mag;

	while ((mag = depot_get_full(s))) {
		put_objects(s, mag->objs, mag->count);
		slab_meta_free(mag);
	}
	while ((mag = s->depot_empty)) {
		s->depot_empty = mag->next;
		slab_meta_free(mag);
	}
	s->depot_nr_empty = 0;
}

/* ------------------------------------------------------- thread caches */

static void load_magazine(struct thread_cache *tc, struct magazine *mag,
			  unsigned int count)
{
	tc->loaded = mag;
	tc->objs = mag->objs;
	WRITE_ONCE(tc->count, count);
}

static void swap_magazines(struct thread_cache *tc)
{
	struct magazine *prev = tc->prev;
	unsigned int prev_count = tc->prev_count;

	tc->prev = tc->loaded;
	WRITE_ONCE(tc->prev_count, tc->count);
	load_magazine(tc, prev, prev_count);
}

/*
 * Give everything @tc holds back to its cache: objects into the slabs,
 * magazines freed.  Context: cache->lock held, and either the caller owns
 * @tc or its owner cannot run (cache destruction, fork child).
 */
static void thread_cache_drain(struct kmem_cache *s, struct thread_cache *tc)
{
	if (tc->loaded) {
		put_objects(s, tc->objs, tc->count);
		slab_meta_free(tc->loaded);
	}
	/*
	 * A fork() child may catch its owner inside swap_magazines(), with
	 * both pointers on one magazine: give that one back only once (the
	 * other magazine and its objects are lost to the child).
	 */
	if (tc->prev && tc->prev != tc->loaded) {
		put_objects(s, tc->prev->objs, tc->prev_count);
		slab_meta_free(tc->prev);
	}
	tc->loaded = NULL;
	tc->prev = NULL;
	tc->objs = NULL;
	tc->size = 0;
	WRITE_ONCE(tc->count, 0);
	WRITE_ONCE(tc->prev_count, 0);
	WRITE_ONCE(tc->cache, NULL);
	list_del_init(&tc->node);
}

/*
 * Thread exit: park the thread's magazines in the depots (bounded, the
 * rest goes to the slabs) so the next thread starts warm and nothing is
 * left behind.
 */
static void thread_cache_retire(struct kmem_cache *s, struct thread_cache *tc)
{
	if (tc->loaded)
		depot_put_full(s, tc->loaded, tc->count);
	if (tc->prev)
		depot_put_full(s, tc->prev, tc->prev_count);
	tc->loaded = NULL;
	tc->prev = NULL;
	tc->objs = NULL;
	tc->size = 0;
	WRITE_ONCE(tc->count, 0);
	WRITE_ONCE(tc->prev_count, 0);
	WRITE_ONCE(tc->cache, NULL);
	list_del_init(&tc->node);
}

/*
 * Give back every front end of @table and free it.  Context: slab_mutex
 * held; @table belongs to the calling thread, or (fork child) to a thread
 * that does not exist any more.
 */
static void thread_table_release(struct thread_cache_table *table, bool retire)
{
	unsigned int i;

	for (i = 0; i < table->size; i++) {
		struct thread_cache *tc = table->caches[i];
		struct kmem_cache *s = tc->cache;

		if (tc == &no_thread_cache)
			continue;
		if (s) {
			pthread_mutex_lock(&s->lock);
			if (retire)
				thread_cache_retire(s, tc);
			else
				thread_cache_drain(s, tc);
			pthread_mutex_unlock(&s->lock);
		}
		slab_meta_free(tc);
	}
	slab_meta_free(table->caches);
	table->caches = NULL;
	table->size = 0;
}

/**
 * __slab_thread_release - give back every front end of a thread
 * @t: the thread's state: the calling thread's, t->exiting set so none
 *     is set up again (@retire: its magazines go to the depots), or, in a
 *     fork() child, a thread that does not exist there (drained)
 * @retire: park the magazines in the depots instead of draining them
 *
 * Context: slab_mutex held (no cache goes meanwhile).
 */
void __slab_thread_release(struct kslab_thread *t, bool retire)
{
	if (t->caches.size)
		thread_table_release(&t->caches, retire);
}

static bool grow_thread_table(unsigned int id)
{
	unsigned int size = kslab_self.caches.size ? kslab_self.caches.size : 16;
	struct thread_cache **table, **old;
	unsigned int i;

	while (size <= id)
		size *= 2;
	table = slab_meta_alloc(size * sizeof(*table));
	if (!table)
		return false;
	for (i = 0; i < kslab_self.caches.size; i++)
		table[i] = kslab_self.caches.caches[i];
	for (i = kslab_self.caches.size; i < size; i++)
		table[i] = &no_thread_cache;
	if (!kslab_self.caches.size)
		kslab_thread_register();
	old = kslab_self.caches.caches;
	/* a fork() child must never see a freed table: publish, then free */
	kslab_self.caches.caches = table;
	kslab_self.caches.size = size;
	slab_meta_free(old);
	return true;
}

/*
 * thread_cache_create - set up this thread's front end for @s.
 * Return: NULL when the thread is exiting, the cache is dead, or memory
 * ran out; the caller then goes straight to the slabs.
 */
static noinline struct thread_cache *thread_cache_create(struct kmem_cache *s)
{
	struct thread_cache *tc;
	struct magazine *mag;

	if (kslab_self.exiting || s->internal || READ_ONCE(s->dead))
		return NULL;
	if (s->id >= kslab_self.caches.size && !grow_thread_table(s->id))
		return NULL;
	tc = kslab_self.caches.caches[s->id];
	if (tc == &no_thread_cache) {
		tc = slab_meta_alloc(sizeof(*tc));
		if (!tc)
			return NULL;
		memset(tc, 0, sizeof(*tc));
		INIT_LIST_HEAD(&tc->node);
		kslab_self.caches.caches[s->id] = tc;
	}
	mag = magazine_new(s);
	if (!mag)
		return NULL;
	kslab_thread_register();

	pthread_mutex_lock(&s->lock);
	tc->size = s->magazine_size;
	tc->prev = NULL;
	WRITE_ONCE(tc->prev_count, 0);
	load_magazine(tc, mag, 0);
	list_add(&tc->node, &s->thread_caches);
	WRITE_ONCE(tc->cache, s);
	pthread_mutex_unlock(&s->lock);
	return tc;
}

/* ------------------------------------------------------------ slow paths */

/* Allocation with no front end: one object straight from the slabs. */
static void *alloc_single(struct kmem_cache *s, gfp_t gfp)
{
	void *obj;

	if (!cache_lock(s, gfp))
		return NULL;
	if (!refill_objects(s, gfp, &obj, 1))
		return NULL;
	return obj;
}

static void free_single(struct kmem_cache *s, void *obj)
{
	pthread_mutex_lock(&s->lock);
	put_objects(s, &obj, 1);
	pthread_mutex_unlock(&s->lock);
}

/*
 * refill_thread_cache - allocation when the loaded magazine is empty:
 * swap in the previous magazine if it has objects, else trade the empty
 * one for a full magazine from the depot, else fill it from the slabs.
 */
static void *refill_thread_cache(struct kmem_cache *s, gfp_t gfp)
{
	struct thread_cache *tc = this_thread_cache(s);
	struct magazine *mag;
	unsigned int n;

	/* setting a front end up waits for locks: not for GFP_NOWAIT */
	if (!tc && !(gfp & __GFP_NOWAIT_BIT))
		tc = thread_cache_create(s);
	if (!tc)
		return alloc_single(s, gfp);
	stat(s, ALLOC_SLOWPATH);
	if (tc->count)
		goto pop;
	if (tc->prev_count) {
		swap_magazines(tc);
		goto pop;
	}
	if (!cache_lock(s, gfp))
		return NULL;
	mag = depot_get_full(s);
	if (mag) {
		/* keep the empty loaded one as prev, drop the empty prev */
		if (tc->prev)
			depot_put_empty(s, tc->prev, !(gfp & __GFP_NOWAIT_BIT));
		tc->prev = tc->loaded;
		WRITE_ONCE(tc->prev_count, 0);
		load_magazine(tc, mag, mag->count);
		stat(s, ALLOC_DEPOT);
		cache_unlock(s);
		goto pop;
	}
	n = refill_objects(s, gfp, tc->objs, tc->size);
	if (!n)
		return NULL;
	WRITE_ONCE(tc->count, n);
pop:
	n = tc->count - 1;
	WRITE_ONCE(tc->count, n);
	return tc->objs[n];
}

/**
 * __slab_alloc - the allocation slow path
 * @s: the cache
 * @gfp: allocation context
 *
 * Everything the fast path leaves out: refilling the thread's magazines,
 * __GFP_NOFAIL retries and errno.  The generic layer runs the
 * allocation hook and the decay around it (slab_alloc_slow()).
 *
 * Return: an object, or NULL with errno ENOMEM.
 */
void *__slab_alloc(struct kmem_cache *s, gfp_t gfp)
{
	struct timespec backoff = { 0, 1000000 };
	void *obj = alloc_from_thread_cache(s);

	if (!obj)
		obj = refill_thread_cache(s, gfp);
	while (unlikely(!obj) && (gfp & __GFP_NOFAIL)) {
		nanosleep(&backoff, NULL);
		obj = refill_thread_cache(s, gfp & ~__GFP_NOWAIT_BIT);
	}
	if (unlikely(!obj))
		errno = ENOMEM;
	return obj;
}

/**
 * __slab_free - free when the loaded magazine is full
 * @s: the cache
 * @obj: a checked object of @s
 *
 * Swap in the previous magazine if it is empty; else hand the previous
 * (full) magazine to the depot and load an empty one.
 *
 * Return: true when the free went below the thread's magazines (the
 * generic layer then lets slabs decay).
 */
bool __slab_free(struct kmem_cache *s, void *obj)
{
	struct thread_cache *tc = this_thread_cache(s);
	struct magazine *empty;
	bool below = false;

	if (!tc)
		tc = thread_cache_create(s);
	if (!tc) {
		/* an exiting thread or a metadata cache: no decay from here */
		free_single(s, obj);
		return false;
	}
	stat(s, FREE_SLOWPATH);
	if (tc->count && tc->objs[tc->count - 1] == obj) {
		slab_report_bad_free(s, obj, "double free");
		return false;
	}
	if (tc->count < tc->size)
		goto push;
	if (tc->prev && !tc->prev_count) {
		swap_magazines(tc);
		goto push;
	}
	pthread_mutex_lock(&s->lock);
	if (tc->prev) {
		depot_put_full(s, tc->prev, tc->prev_count);
		tc->prev = NULL;
		WRITE_ONCE(tc->prev_count, 0);
	}
	empty = depot_get_empty(s);
	if (empty) {
		tc->prev = tc->loaded;
		WRITE_ONCE(tc->prev_count, tc->count);
		load_magazine(tc, empty, 0);
	} else {
		/* no memory for a magazine: give the loaded one's objects back */
		put_objects(s, tc->objs, tc->count);
		WRITE_ONCE(tc->count, 0);
	}
	pthread_mutex_unlock(&s->lock);
	below = true;
push:
	tc->objs[tc->count] = obj;
	WRITE_ONCE(tc->count, tc->count + 1);
	return below;
}

/* --------------------------------------------------------- cache setup */

static unsigned int round_up_uint(unsigned int x, unsigned int a)
{
	return (x + a - 1) & ~(a - 1);
}

/* Header bytes for a slab of @n objects: struct slab and its bitmap. */
static size_t slab_header_size(struct kmem_cache *s, size_t n)
{
	size_t words = (n + BITS_PER_LONG - 1) / BITS_PER_LONG;

	if (!s->internal)
		return 0;	/* off the slab: see setup_slab_header() */
	return round_up_uint(sizeof(struct slab) + words * sizeof(long),
			     s->align);
}

/* Objects that fit a slab of @size bytes, header included. */
static size_t objects_per_slab(struct kmem_cache *s, size_t size)
{
	size_t n = size / s->slot_size;

	while (n && slab_header_size(s, n) + n * s->slot_size > size)
		n--;
	return n;
}

/*
 * Pick the smallest slab size (a power of two, at least a granule) that
 * holds at least 8 objects and wastes at most 1/16 of itself; failing
 * that, the size with the least waste.
 */
static bool calculate_slab_size(struct kmem_cache *s)
{
	size_t best = 0, best_waste_ppm = ~0UL, size;

	for (size = SLAB_GRANULE_SIZE; size <= SLAB_MAX_SIZE; size <<= 1) {
		size_t n = objects_per_slab(s, size), waste;

		if (!n)
			continue;
		waste = size - slab_header_size(s, n) - n * s->slot_size;
		if (n >= 8 && waste * 16 <= size) {
			best = size;
			break;
		}
		if (waste * 1000000 / size < best_waste_ppm) {
			best_waste_ppm = waste * 1000000 / size;
			best = size;
		}
	}
	if (!best)
		return false;
	s->slab_size = best;
	s->objs_per_slab = objects_per_slab(s, best);
	s->slab_header = slab_header_size(s, s->objs_per_slab);
	s->map_words = (s->objs_per_slab + BITS_PER_LONG - 1) / BITS_PER_LONG;
	s->objs_bytes = s->objs_per_slab * s->slot_size;
	return true;
}

/**
 * __kmem_cache_create - lay out a cache whose arguments were checked
 * @s: object_size, align, flags and ctor filled in
 *
 * Return: 0, or -EINVAL when the object cannot fit a slab.
 */
int __kmem_cache_create(struct kmem_cache *s)
{
	unsigned int align = s->align;
	unsigned int size = s->object_size;
	long mag;

	if (align < sizeof(void *))
		align = sizeof(void *);
	if (s->flags & SLAB_HWCACHE_ALIGN) {
		unsigned int ralign = CACHE_LINE_SIZE;

		while (size <= ralign / 2)
			ralign /= 2;
		if (ralign > align)
			align = ralign;
	}
	s->align = align;
	s->usable_size = round_up_uint(size, sizeof(void *));
	s->slot_size = round_up_uint(s->usable_size, align);
	if (!calculate_slab_size(s))
		return -EINVAL;
	s->slot_reciprocal = ((1ULL << SLOT_RECIPROCAL_SHIFT) + s->slot_size - 1) /
			     s->slot_size;

	/* 126 pointers and the header fill a 1 KiB metadata object */
	mag = kslab_option(OPT_MAGAZINE_OBJECTS);
	if (!mag) {
		/*
		 * 32 KiB of objects per magazine, 4 to 126 of them; above
		 * 64 KiB objects, at most 256 KiB per magazine, so a thread
		 * holds no more than 512 KiB of one big class.
		 */
		mag = (32 * 1024) / s->slot_size;
		if (mag > MAGAZINE_MAX_AUTO)
			mag = MAGAZINE_MAX_AUTO;
		if (mag < 4)
			mag = 4;
		if (mag * s->slot_size > 256 * 1024)
			mag = (256 * 1024) / s->slot_size;
		if (!mag)
			mag = 1;
	}
	s->magazine_size = mag;

	pthread_mutex_init(&s->lock, NULL);
	INIT_LIST_HEAD(&s->partial);
	INIT_LIST_HEAD(&s->full);
	INIT_LIST_HEAD(&s->empty);
	INIT_LIST_HEAD(&s->thread_caches);
	return 0;
}

static void release_all_empty(struct kmem_cache *s, struct list_head *release)
{
	struct slab *slab, *next;

	list_for_each_entry_safe(slab, next, &s->empty, slab_list) {
		list_move(&slab->slab_list, release);
		s->nr_slabs--;
	}
	s->nr_empty = 0;
}

/**
 * __kmem_cache_shutdown - take every free object back from every thread
 * and the depot and unmap every empty slab
 * @s: the cache being destroyed
 * @retired: receives SLAB_TYPESAFE_BY_RCU slabs (see release_slabs())
 *
 * Context: slab_mutex held, so no thread is exiting and no fork is in
 * progress; the caller guarantees no other thread uses @s any more.
 * Return: true when no object of @s remains allocated.
 */
bool __kmem_cache_shutdown(struct kmem_cache *s, struct list_head *retired)
{
	struct thread_cache *tc, *next;
	LIST_HEAD(release);
	bool empty;

	pthread_mutex_lock(&s->lock);
	list_for_each_entry_safe(tc, next, &s->thread_caches, node)
		thread_cache_drain(s, tc);
	depot_flush(s);
	release_all_empty(s, &release);
	empty = s->inuse == 0;
	if (!empty)
		WRITE_ONCE(s->dead, true);
	pthread_mutex_unlock(&s->lock);
	release_slabs(s, &release, retired);
	return empty;
}

/**
 * __kmem_cache_release - the last of a cache with no slabs
 * @s: the cache, whose descriptor its creator then frees
 */
void __kmem_cache_release(struct kmem_cache *s)
{
	pthread_mutex_destroy(&s->lock);
}

/**
 * __kmem_cache_shrink - give every empty slab back to the OS
 * @s: the cache
 * @retired: receives SLAB_TYPESAFE_BY_RCU slabs (see release_slabs())
 *
 * Empties the depot and the calling thread's own magazines into the
 * slabs first.  Other threads' magazines are theirs (they hold at most
 * two magazines each and give them back when they exit).
 *
 * Return: 0 when the cache holds no slab any more, else the number of
 * slabs that still hold live objects.
 */
int __kmem_cache_shrink(struct kmem_cache *s, struct list_head *retired)
{
	struct thread_cache *tc = this_thread_cache(s);
	LIST_HEAD(release);
	unsigned long left;

	pthread_mutex_lock(&s->lock);
	if (tc) {
		put_objects(s, tc->objs, tc->count);
		WRITE_ONCE(tc->count, 0);
		if (tc->prev) {
			put_objects(s, tc->prev->objs, tc->prev_count);
			WRITE_ONCE(tc->prev_count, 0);
		}
	}
	depot_flush(s);
	release_all_empty(s, &release);
	left = s->nr_slabs;
	pthread_mutex_unlock(&s->lock);
	release_slabs(s, &release, retired);
	return left > (unsigned long)__INT_MAX__ ? __INT_MAX__ : (int)left;
}

/**
 * __kmem_cache_get_info - fill @info under the cache lock
 * @s: the cache
 * @info: filled in
 */
void __kmem_cache_get_info(struct kmem_cache *s, struct kmem_cache_info *info)
{
	struct thread_cache *tc;
	size_t cached;

	memset(info, 0, sizeof(*info));
	pthread_mutex_lock(&s->lock);
	cached = s->depot_objs;
	list_for_each_entry(tc, &s->thread_caches, node)
		cached += READ_ONCE(tc->count) + READ_ONCE(tc->prev_count);
	info->active_objs = s->inuse > cached ? s->inuse - cached : 0;
	info->cached_objs = cached;
	info->slabs = s->nr_slabs;
	info->total_objs = s->nr_slabs * s->objs_per_slab;
	pthread_mutex_unlock(&s->lock);

	info->name = s->name;
	info->object_size = s->object_size;
	info->slot_size = s->slot_size;
	info->align = s->align;
	info->slab_size = s->slab_size;
	info->objs_per_slab = s->objs_per_slab;
	info->flags = s->flags;
}

/* ---------------------------------------------------- threads and fork */

/**
 * slab_init - read the slab layer's options, create the metadata caches
 *
 * Context: kslab_init(), before any other cache exists.
 */
void slab_init(void)
{
	empty_slab_reserve = kslab_option(OPT_EMPTY_SLABS);
	slab_decay_ms = kslab_option(OPT_SLAB_DECAY_MS);
	depot_limit = kslab_option(OPT_DEPOT_MAGAZINES);
	create_meta_caches();
}

/*
 * fork() in a threaded program: the lock order and the table of handlers
 * are in mm/lifecycle.c; the generic layer walks the caches.
 */
void __kmem_cache_fork_lock(struct kmem_cache *s)
{
	pthread_mutex_lock(&s->lock);
}

void __kmem_cache_fork_unlock(struct kmem_cache *s)
{
	pthread_mutex_unlock(&s->lock);
}

/* The metadata caches' locks, innermost of the allocator's. */
void slab_meta_fork_prepare(void)
{
	unsigned int i;

	for (i = 0; i < NR_META_CACHES; i++)
		pthread_mutex_lock(&slab_meta_caches[i].lock);
}

void slab_meta_fork_parent(void)
{
	unsigned int i;

	for (i = 0; i < NR_META_CACHES; i++)
		pthread_mutex_unlock(&slab_meta_caches[i].lock);
}

void slab_meta_fork_child(void)
{
	slab_meta_fork_parent();
}
