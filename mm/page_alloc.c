// SPDX-License-Identifier: MIT
/*
 * The page-level allocator: large blocks, for what no slab cache holds
 * (kmalloc() above KMALLOC_MAX_CACHE_SIZE, metadata above 4 KiB), and the
 * mappings slabs are carved from.
 *
 * A large block is an extent: a granule-aligned run of whole granules
 * (64 KiB), described by a struct slab with cache NULL.  Extents under
 * LARGE_CHUNK / 2 are cut from 64 MiB mappings; bigger ones get their
 * own.  Freed extents stay mapped and known to the address map, on the
 * free list of their size class, and the next request of that class
 * takes one: no mmap(), no munmap() and no lock but the class's own on
 * the common path.  A freed huge block is reused as a small one would be.
 *
 * Size classes: up to 256 KiB, every multiple of a granule; above that
 * four classes per doubling, 2^k + j * 2^(k-2), as the kmalloc classes.
 * A request is rounded up to its class, so a block is at most a quarter
 * larger than asked for, and pages it never touches cost no memory.
 * With its class empty, a request takes the first free extent of a larger
 * class and cuts it down (the tail is a free extent of its own); a freed
 * extent is merged with free extents right before and after it, as a
 * page heap splits and coalesces its spans.  An extent whose size is not
 * a class size is kept on the list of the largest class it covers: every
 * extent on a class's list is at least that class's size.
 *
 * The address map knows an extent by its first and last granule only
 * (map_bounds()), so splitting and merging cost a few map entries
 * whatever the size; kfree() and ksize() look a block up by its start.
 *
 * Memory goes back by decay, never by a munmap() per free.  An extent
 * free for KSLAB_SLAB_DECAY_MS is purged with MADV_DONTNEED (the mapping
 * stays; its pages read as zero again); one that stays free
 * PURGED_UNMAP_FACTOR times longer is unmapped.  Beyond DIRTY_MAX bytes
 * of free extents that may be resident, the oldest are purged at once,
 * the largest classes first.  The decay runs from the large allocation
 * and free paths and from the slab slow paths (page_alloc_decay(): one
 * load when nothing waits, one coarse clock read when something does),
 * and all at once from page_alloc_trim().
 *
 * krealloc() of a large block (__slab_realloc_large()) resizes the
 * extent: in place when its class still fits, when the free extent right
 * after it is big enough, or when the address space after it is free
 * (mremap() without moving); otherwise by mremap() into a free extent of
 * the new class or a new place, which moves the pages without copying
 * them.  A block shrunk to half or less gives its tail back.
 *
 * Descriptors come from a pool of this file's own, carved from 64 KiB
 * chunks and never unmapped, so a lock-free lookup of a stale pointer
 * always reads a descriptor, never unmapped memory.
 *
 * Locks: each class's lock guards its free list; pool_lock the pool;
 * decay_lock one decay walk, purge or merge (a neighbour changes size
 * only under it or off every list).  None is held while calling out, and they
 * nest below every lock of mm/slub.c and above pagemap_lock: the order
 * is written at the top of mm/lifecycle.c.
 */
#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

#include "lib/list.h"
#include "lib/options.h"
#include "lib/time.h"
#include "mm/slab.h"

#define LARGE_SMALL_CLASSES	4	/* 64, 128, 192, 256 KiB */
#define LARGE_SHIFT_SMALL	18	/* 256 KiB */
#define LARGE_SHIFT_MAX		46	/* KMALLOC_LARGE_MAX */
#define NR_LARGE_CLASSES	(LARGE_SMALL_CLASSES +			\
				 4 * (LARGE_SHIFT_MAX - LARGE_SHIFT_SMALL))
#define PURGED_UNMAP_FACTOR	20
/* small extents are cut from mappings of this size */
#define LARGE_CHUNK		(64UL << 20)
/* dirty free bytes beyond which a freed block is purged at once */
#define DIRTY_MAX		(128UL << 20)
#define POOL_CHUNK		SLAB_GRANULE_SIZE

_Static_assert(KMALLOC_LARGE_MAX == 1UL << LARGE_SHIFT_MAX,
	       "the large classes end at KMALLOC_LARGE_MAX");

struct large_class {
	pthread_mutex_t lock;
	struct list_head free;		/* most recently freed first */
	unsigned long nr_free;
} __aligned(CACHE_LINE_SIZE);

static struct large_class large_classes[NR_LARGE_CLASSES];
static unsigned long large_decay_ms;
static unsigned long next_large_decay_ms = ~0UL;
static pthread_mutex_t decay_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long free_bytes;	/* atomic: bytes on the free lists */
static unsigned long dirty_bytes;	/* atomic: of them, maybe resident */

static pthread_mutex_t pool_lock = PTHREAD_MUTEX_INITIALIZER;
static struct slab *pool_free;		/* linked through ->base */
static unsigned char *pool_next, *pool_end;

/* ---------------------------------------------------------- mappings */

/**
 * slab_map - map @size bytes aligned to @align
 * @size: a multiple of the page size
 * @align: a power of two; below a granule, a granule
 *
 * Context: any thread, no lock needed.
 * Return: the mapping, or NULL with errno ENOMEM.
 */
void *slab_map(size_t size, size_t align)
{
	uintptr_t start, aligned;
	size_t extra;
	void *p;

	if (align < SLAB_GRANULE_SIZE)
		align = SLAB_GRANULE_SIZE;
	extra = align - PAGE_SIZE;
	p = mmap(NULL, size + extra, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED) {
		errno = ENOMEM;
		return NULL;
	}
	start = (uintptr_t)p;
	aligned = (start + align - 1) & ~(align - 1);
	if (aligned > start)
		munmap(p, aligned - start);
	if (start + extra > aligned)
		munmap((void *)(aligned + size), start + extra - aligned);
	return (void *)aligned;
}

void slab_unmap(void *p, size_t size)
{
	munmap(p, size);
}

/* -------------------------------------------------------- descriptors */

static struct slab *desc_alloc(void)
{
	struct slab *d;

	pthread_mutex_lock(&pool_lock);
	d = pool_free;
	if (d) {
		pool_free = (struct slab *)d->base;
	} else {
		if (pool_next == pool_end) {
			unsigned char *chunk = mmap(NULL, POOL_CHUNK,
						    PROT_READ | PROT_WRITE,
						    MAP_PRIVATE | MAP_ANONYMOUS,
						    -1, 0);

			if (chunk == MAP_FAILED) {
				pthread_mutex_unlock(&pool_lock);
				return NULL;
			}
			pool_next = chunk;
			pool_end = chunk + POOL_CHUNK;
		}
		d = (struct slab *)pool_next;
		pool_next += sizeof(*d);
	}
	pthread_mutex_unlock(&pool_lock);
	memset(d, 0, sizeof(*d));
	return d;
}

static void desc_free(struct slab *d)
{
	pthread_mutex_lock(&pool_lock);
	d->base = (unsigned char *)pool_free;
	pool_free = d;
	pthread_mutex_unlock(&pool_lock);
}

/*
 * The address map knows an extent by its first and last granule, as
 * jemalloc's radix tree knows a large extent by its boundary pages: a
 * block is only ever looked up by its start (kfree(), ksize()), and
 * merge_free() finds a neighbour by the granule right before or after.
 * So splitting and merging cost a few map entries, whatever the size.
 */
#define G	SLAB_GRANULE_SIZE

static int map_range_bounds(struct slab *e, unsigned char *base,
			    size_t size, bool nowait)
{
	if (pagemap_register(e, base, G, nowait))
		return -ENOMEM;
	if (size > G && pagemap_register(e, base + size - G, G, nowait)) {
		pagemap_unregister(base, G);
		return -ENOMEM;
	}
	return 0;
}

static int map_bounds(struct slab *e, bool nowait)
{
	return map_range_bounds(e, e->base, e->size, nowait);
}

static void unmap_bounds(unsigned char *base, size_t size)
{
	pagemap_unregister(base, G);
	if (size > G)
		pagemap_unregister(base + size - G, G);
}

/* ------------------------------------------------------------ classes */

/* The class of a block of @size bytes, 1 <= @size <= KMALLOC_LARGE_MAX. */
static unsigned int large_index(size_t size)
{
	size_t n = size - 1;
	unsigned int shift;

	if (size <= (1UL << LARGE_SHIFT_SMALL))
		return n >> SLAB_GRANULE_SHIFT;
	shift = 63 - __builtin_clzl(n);
	return LARGE_SMALL_CLASSES + (shift - LARGE_SHIFT_SMALL) * 4 +
	       ((n >> (shift - 2)) & 3);
}

static size_t large_class_size(unsigned int i)
{
	unsigned int shift;

	if (i < LARGE_SMALL_CLASSES)
		return (size_t)(i + 1) << SLAB_GRANULE_SHIFT;
	i -= LARGE_SMALL_CLASSES;
	shift = LARGE_SHIFT_SMALL + i / 4;
	return (1UL << shift) + (i % 4 + 1) * (1UL << (shift - 2));
}

/* The largest class an extent of @size bytes (a granule multiple) covers. */
static unsigned int large_floor_index(size_t size)
{
	unsigned int i = large_index(size);

	return large_class_size(i) > size ? i - 1 : i;
}

/* ---------------------------------------------------------------- decay */

static void large_decay(unsigned long now, bool all);
static struct slab *map_extent(size_t size, size_t align, gfp_t gfp);

/**
 * page_alloc_decay - run the decay of free large blocks if it is due
 *
 * From the large paths and from the slab layer's slow paths (the generic
 * layer's slab_decay()): one load when nothing is waiting.
 * Context: no lock held.
 */
void page_alloc_decay(void)
{
	unsigned long now;

	if (likely(READ_ONCE(next_large_decay_ms) == ~0UL))
		return;
	now = kslab_now_ms_coarse();
	if (now >= READ_ONCE(next_large_decay_ms))
		large_decay(now, false);
}

static void note_decay_due(unsigned long when)
{
	if (when < READ_ONCE(next_large_decay_ms))
		WRITE_ONCE(next_large_decay_ms, when);
}

static void unmap_extent(struct slab *e)
{
	unmap_bounds(e->base, e->size);
	slab_unmap(e->base, e->size);
	desc_free(e);
}

/*
 * Purge the extents of @c free since before @purge_cutoff, unmap the
 * purged ones free since before @unmap_cutoff (@all: every one).
 * Return: when the next of them is due, or ~0UL.
 */
static unsigned long decay_class(struct large_class *c, unsigned long now,
				 bool all)
{
	unsigned long purge_cutoff = now - large_decay_ms;
	unsigned long unmap_cutoff = now - large_decay_ms * PURGED_UNMAP_FACTOR;
	unsigned long next = ~0UL;
	struct slab *e, *tmp;
	LIST_HEAD(purge);
	LIST_HEAD(unmap);

	pthread_mutex_lock(&c->lock);
	list_for_each_entry_safe(e, tmp, &c->free, slab_list) {
		if (e->dirty && (all || e->empty_since <= purge_cutoff)) {
			list_move(&e->slab_list, &purge);
			WRITE_ONCE(c->nr_free, c->nr_free - 1);
		} else if (!e->dirty && (all || e->empty_since <= unmap_cutoff)) {
			list_move(&e->slab_list, &unmap);
			WRITE_ONCE(c->nr_free, c->nr_free - 1);
		} else {
			unsigned long due = e->dirty ?
				e->empty_since + large_decay_ms :
				e->empty_since + large_decay_ms * PURGED_UNMAP_FACTOR;

			if (due < next)
				next = due;
		}
	}
	pthread_mutex_unlock(&c->lock);

	list_for_each_entry_safe(e, tmp, &unmap, slab_list) {
		__atomic_fetch_sub(&free_bytes, e->size, __ATOMIC_RELAXED);
		unmap_extent(e);	/* purged: not dirty */
	}
	if (list_empty(&purge))
		return next;
	list_for_each_entry(e, &purge, slab_list) {
		madvise(e->base, e->size, MADV_DONTNEED);
		__atomic_fetch_sub(&dirty_bytes, e->size, __ATOMIC_RELAXED);
		e->dirty = false;
		/* purged now: unmapped after the longer wait */
		e->empty_since = now;
	}
	if (!all && now + large_decay_ms * PURGED_UNMAP_FACTOR < next)
		next = now + large_decay_ms * PURGED_UNMAP_FACTOR;
	pthread_mutex_lock(&c->lock);
	list_for_each_entry_safe(e, tmp, &purge, slab_list) {
		list_move_tail(&e->slab_list, &c->free);
		WRITE_ONCE(c->nr_free, c->nr_free + 1);
	}
	pthread_mutex_unlock(&c->lock);
	return next;
}

static void large_decay(unsigned long now, bool all)
{
	unsigned long next = ~0UL;
	unsigned int i;

	if (all)
		pthread_mutex_lock(&decay_lock);
	else if (pthread_mutex_trylock(&decay_lock))
		return;
	WRITE_ONCE(next_large_decay_ms, ~0UL);
	for (i = 0; i < NR_LARGE_CLASSES; i++) {
		unsigned long due;

		if (!READ_ONCE(large_classes[i].nr_free))
			continue;
		due = decay_class(&large_classes[i], now, all);
		if (due < next)
			next = due;
	}
	note_decay_due(next);
	pthread_mutex_unlock(&decay_lock);
}

/*
 * Purge the oldest dirty free extents, the largest classes first, until
 * no more than @target bytes of them stay resident: beyond DIRTY_MAX the
 * blocks freed last, likely the next ones taken, keep their pages.
 */
static void purge_dirty(unsigned long target)
{
	unsigned int i;

	if (pthread_mutex_trylock(&decay_lock))
		return;		/* another thread purges or decays */
	for (i = NR_LARGE_CLASSES; i-- > 0;) {
		struct large_class *c = &large_classes[i];
		struct slab *e, *prev;
		LIST_HEAD(purge);

		if (__atomic_load_n(&dirty_bytes, __ATOMIC_RELAXED) <= target)
			break;
		if (!READ_ONCE(c->nr_free))
			continue;
		pthread_mutex_lock(&c->lock);
		list_for_each_entry_safe_reverse(e, prev, &c->free, slab_list) {
			if (!e->dirty)
				continue;
			list_move(&e->slab_list, &purge);
			WRITE_ONCE(c->nr_free, c->nr_free - 1);
			if (__atomic_sub_fetch(&dirty_bytes, e->size,
					       __ATOMIC_RELAXED) <= target)
				break;
		}
		pthread_mutex_unlock(&c->lock);
		list_for_each_entry(e, &purge, slab_list) {
			madvise(e->base, e->size, MADV_DONTNEED);
			e->dirty = false;
		}
		pthread_mutex_lock(&c->lock);
		list_for_each_entry_safe(e, prev, &purge, slab_list) {
			list_move_tail(&e->slab_list, &c->free);
			WRITE_ONCE(c->nr_free, c->nr_free + 1);
		}
		pthread_mutex_unlock(&c->lock);
	}
	pthread_mutex_unlock(&decay_lock);
}

/**
 * page_alloc_trim - give every free large block back at once
 *
 * Unmaps every extent on the free lists, as malloc_trim() does.
 * Context: no lock held.
 */
void page_alloc_trim(void)
{
	large_decay(kslab_now_ms_coarse(), true);
	large_decay(kslab_now_ms_coarse(), true);
}

/* ----------------------------------------------------------- the API */

/* Take an extent of class @i (aligned to @align) off its free list. */
static struct slab *take_class(unsigned int i, size_t align, gfp_t gfp)
{
	struct large_class *c = &large_classes[i];
	struct slab *e;

	if (!READ_ONCE(c->nr_free))
		return NULL;
	if (gfp & __GFP_NOWAIT_BIT) {
		if (pthread_mutex_trylock(&c->lock))
			return NULL;
	} else {
		pthread_mutex_lock(&c->lock);
	}
	list_for_each_entry(e, &c->free, slab_list) {
		if (!((uintptr_t)e->base & (align - 1))) {
			list_del_init(&e->slab_list);
			WRITE_ONCE(c->nr_free, c->nr_free - 1);
			pthread_mutex_unlock(&c->lock);
			__atomic_fetch_sub(&free_bytes, e->size, __ATOMIC_RELAXED);
			if (e->dirty)
				__atomic_fetch_sub(&dirty_bytes, e->size,
						   __ATOMIC_RELAXED);
			return e;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return NULL;
}

/* Put a free extent on the list of the largest class it covers. */
static void put_free(struct slab *e)
{
	struct large_class *c = &large_classes[large_floor_index(e->size)];

	__atomic_fetch_add(&free_bytes, e->size, __ATOMIC_RELAXED);
	if (e->dirty)
		__atomic_fetch_add(&dirty_bytes, e->size, __ATOMIC_RELAXED);
	pthread_mutex_lock(&c->lock);
	list_add(&e->slab_list, &c->free);
	WRITE_ONCE(c->nr_free, c->nr_free + 1);
	pthread_mutex_unlock(&c->lock);
}

/*
 * Cut an extent off every list down to @bytes: the tail becomes a free
 * extent of its own, with a descriptor of its own, which the caller puts
 * on a list.  Without a descriptor or a map leaf the extent stays whole.
 * Return: the tail, or NULL.
 */
static struct slab *split_extent(struct slab *e, size_t bytes, gfp_t gfp)
{
	struct slab *tail;

	if (e->size - bytes < G)
		return NULL;
	tail = desc_alloc();
	if (!tail)
		return NULL;
	tail->base = e->base + bytes;
	tail->size = e->size - bytes;
	tail->offslab = true;
	tail->dirty = e->dirty;
	tail->empty_since = e->empty_since;
	INIT_LIST_HEAD(&tail->slab_list);
	/* the tail's last granule was e's: it now leads to the tail */
	if (map_bounds(tail, gfp & __GFP_NOWAIT_BIT))
		goto fail;
	if (pagemap_register(e, e->base + bytes - G, G,
			     gfp & __GFP_NOWAIT_BIT)) {
		pagemap_register(e, tail->base + tail->size - G, G, false);
		if (tail->size > G)
			pagemap_unregister(tail->base, G);
		goto fail;
	}
	WRITE_ONCE(e->size, bytes);
	return tail;
fail:
	desc_free(tail);
	return NULL;
}

/*
 * Take @n, a neighbour of an extent being freed, off its free list if it
 * is a free extent on one, starting at @base or ending at @end (NULL: no
 * matter).  Context: decay_lock held, so no other merge
 * or decay moves it; its size changes only while it is off every list.
 */
static bool take_neighbour(struct slab *n, const unsigned char *base,
			   const unsigned char *end)
{
	struct large_class *c;
	bool taken = false;

	if (!n || READ_ONCE(n->cache) || !n->offslab || READ_ONCE(n->inuse))
		return false;
	c = &large_classes[large_floor_index(READ_ONCE(n->size))];
	pthread_mutex_lock(&c->lock);
	/* checked again under the lock: the descriptor may have been reused */
	if (!list_empty(&n->slab_list) && !n->inuse &&
	    (!base || n->base == base) && (!end || n->base + n->size == end) &&
	    &large_classes[large_floor_index(n->size)] == c) {
		list_del_init(&n->slab_list);
		WRITE_ONCE(c->nr_free, c->nr_free - 1);
		taken = true;
	}
	pthread_mutex_unlock(&c->lock);
	if (taken) {
		__atomic_fetch_sub(&free_bytes, n->size, __ATOMIC_RELAXED);
		if (n->dirty)
			__atomic_fetch_sub(&dirty_bytes, n->size,
					   __ATOMIC_RELAXED);
	}
	return taken;
}

/*
 * @to absorbs @from, the extent right after it; both off every list.
 * Return: false when it could not (the caller keeps both).
 */
static bool absorb(struct slab *to, struct slab *from)
{
	/* from's last granule is the merged extent's last */
	if (pagemap_register(to, from->base + from->size - G, G, false))
		return false;	/* no map leaf: both stay as they are */
	if (to->size > G)
		pagemap_unregister(to->base + to->size - G, G);
	if (from->size > G)
		pagemap_unregister(from->base, G);
	WRITE_ONCE(to->size, to->size + from->size);
	to->dirty = to->dirty || from->dirty;
	if (from->empty_since > to->empty_since)
		to->empty_since = from->empty_since;
	desc_free(from);
	return true;
}

/*
 * Merge a freed extent with free extents right before and after it, so
 * that splitting does not leave the address space in ever smaller pieces
 * (a page heap's coalescing).  Only when no decay runs: skipping a merge
 * costs nothing but the merge.
 * Return: the extent to put on a free list.
 */
static struct slab *merge_free(struct slab *e)
{
	struct slab *n;

	if (pthread_mutex_trylock(&decay_lock))
		return e;
	n = virt_to_slab(e->base + e->size);
	if (n && n != e && take_neighbour(n, e->base + e->size, NULL) &&
	    !absorb(e, n))
		put_free(n);
	n = virt_to_slab(e->base - 1);
	if (n && n != e && take_neighbour(n, NULL, e->base)) {
		if (absorb(n, e))
			e = n;
		else
			put_free(n);
	}
	pthread_mutex_unlock(&decay_lock);
	return e;
}

/*
 * A free extent for class @i: of that class, else the first one of a
 * larger class, cut down to the class size (best fit by class, as a page
 * heap splits its spans; merge_free() joins them again on free).
 */
static struct slab *take_free(unsigned int i, size_t align, gfp_t gfp)
{
	size_t bytes = large_class_size(i);
	unsigned int j;

	for (j = i; j < NR_LARGE_CLASSES; j++) {
		struct slab *e = take_class(j, align, gfp);

		if (e) {
			struct slab *tail = j != i ? split_extent(e, bytes, gfp) :
						     NULL;

			if (tail)
				put_free(tail);
			return e;
		}
	}
	return NULL;
}

/*
 * Map a new extent of @size bytes aligned to @align.  A small one is cut
 * from a fresh LARGE_CHUNK whose rest goes on the free lists: extents
 * that lie side by side can be merged again (merge_free()) and grown in
 * place (__slab_realloc_large()).
 */
static struct slab *new_extent(size_t size, size_t align, gfp_t gfp)
{
	struct slab *e;
	struct slab *tail;

	if (align > SLAB_GRANULE_SIZE || size > LARGE_CHUNK / 2)
		return map_extent(size, align, gfp);
	e = map_extent(LARGE_CHUNK, SLAB_GRANULE_SIZE, gfp);
	if (!e)
		return map_extent(size, align, gfp);
	tail = split_extent(e, size, gfp);
	if (tail)
		put_free(tail);
	return e;
}

/* Map an extent of exactly @size bytes aligned to @align. */
static struct slab *map_extent(size_t size, size_t align, gfp_t gfp)
{
	struct slab *e = desc_alloc();
	unsigned char *start;

	if (!e)
		return NULL;
	start = slab_map(size, align);
	if (!start) {
		desc_free(e);
		return NULL;
	}
	e->base = start;
	e->size = size;
	e->offslab = true;	/* the mapping starts at base */
	INIT_LIST_HEAD(&e->slab_list);
	if (map_bounds(e, gfp & __GFP_NOWAIT_BIT)) {
		slab_unmap(start, size);
		desc_free(e);
		return NULL;
	}
	return e;
}

/**
 * __slab_alloc_large - a large block
 * @size: bytes
 * @align: a power of two; the block is at least 64 KiB aligned anyway
 * @gfp: allocation context (__GFP_NOWAIT_BIT, __GFP_NOFAIL and
 *       __GFP_ZERO are honoured)
 *
 * A free extent of the class if there is one, else a new mapping.
 * Return: the block, or NULL with errno ENOMEM.
 */
void *__slab_alloc_large(size_t size, size_t align, gfp_t gfp)
{
	unsigned int i;
	size_t bytes;
	struct slab *e;

	if (!size || size > KMALLOC_LARGE_MAX) {
		errno = ENOMEM;
		return NULL;
	}
	if (align < SLAB_GRANULE_SIZE)
		align = SLAB_GRANULE_SIZE;
	i = large_index(size);
	bytes = large_class_size(i);
	page_alloc_decay();
	e = take_free(i, align, gfp);
	while (!e) {
		e = new_extent(bytes, align, gfp);
		if (e)
			break;
		if (!(gfp & __GFP_NOFAIL)) {
			errno = ENOMEM;
			return NULL;
		}
		usleep(1000);
	}
	/* all the caller may read (ksize()), unless the pages are fresh */
	if ((gfp & __GFP_ZERO) && e->dirty)
		memset(e->base, 0, e->size);
	WRITE_ONCE(e->inuse, 1);
	/* the descriptor is ready before anyone can find the block in use */
	smp_store_release(&e->cache, NULL);
	return e->base;
}

/**
 * __slab_free_large - free a block from __slab_alloc_large()
 * @slab: its descriptor; the caller released the features' slab->meta
 *
 * The extent goes on its class's free list, mapped, for the next request.
 */
void __slab_free_large(struct slab *slab)
{
	unsigned long now = kslab_now_ms_coarse();

	WRITE_ONCE(slab->cache, NULL);	/* drop SLAB_HOOKED */
	WRITE_ONCE(slab->inuse, 0);
	slab->empty_since = now;
	slab->dirty = true;
	put_free(merge_free(slab));
	if (__atomic_load_n(&dirty_bytes, __ATOMIC_RELAXED) > DIRTY_MAX)
		purge_dirty(DIRTY_MAX / 2);
	note_decay_due(now + large_decay_ms);
	page_alloc_decay();
}

/*
 * Grow @e, a block in use, to @bytes by taking the free extent right
 * after it (cut down to what is needed): no syscall, no copy.
 */
static bool grow_into_neighbour(struct slab *e, size_t bytes)
{
	struct slab *n;
	bool grown = false;

	if (pthread_mutex_trylock(&decay_lock))
		return false;	/* a decay runs: grow another way */
	n = virt_to_slab(e->base + e->size);
	if (n && n != e && e->size + READ_ONCE(n->size) >= bytes &&
	    take_neighbour(n, e->base + e->size, NULL)) {
		struct slab *tail = NULL;

		if (e->size + n->size < bytes) {
			put_free(n);	/* it changed meanwhile */
		} else {
			/* what is not cut off (under a granule) comes along */
			tail = split_extent(n, bytes - e->size, GFP_KERNEL);
			if (tail)
				put_free(tail);
			grown = absorb(e, n);
			if (!grown)
				put_free(n);
		}
	}
	pthread_mutex_unlock(&decay_lock);
	return grown;
}

/**
 * __slab_realloc_large - resize a large block without copying it
 * @slab: its descriptor; no feature holds slab->meta (not hooked)
 * @new_size: bytes wanted, above KMALLOC_MAX_CACHE_SIZE
 *
 * In place when the extent already fits and is not more than twice the
 * size, or when the address space right after it is free; else moved by
 * mremap() into a free extent of the new class (whose pages it drops) or
 * a new granule-aligned place: the pages move, no byte is copied.
 * Return: the block's (maybe new) address, or NULL when it could not be
 * resized (the caller copies instead; the block is unchanged).
 */
void *__slab_realloc_large(struct slab *slab, size_t new_size)
{
	size_t old = slab->size, bytes;
	unsigned char *start = slab->base, *to;
	struct slab *free_ext;

	if (!new_size || new_size > KMALLOC_LARGE_MAX)
		return NULL;
	bytes = large_class_size(large_index(new_size));
	if (bytes <= old && old / 2 < new_size)
		return start;		/* still fits, not worth shrinking */
	if (bytes < old) {
		/* the tail becomes a free extent, its memory given back */
		struct slab *tail = split_extent(slab, bytes, GFP_KERNEL);

		if (tail) {
			unsigned long now = kslab_now_ms_coarse();

			madvise(tail->base, tail->size, MADV_DONTNEED);
			tail->dirty = false;
			tail->empty_since = now;
			/* from here another thread may take it: no more reads */
			put_free(merge_free(tail));
			note_decay_due(now + large_decay_ms);
		}
		return start;
	}
	/* grow in place into a free extent right after it */
	if (grow_into_neighbour(slab, bytes))
		return start;
	/* or into free address space after it */
	to = mremap(start, old, bytes, 0);
	if (to != MAP_FAILED) {
		if (!pagemap_register(slab, start + bytes - G, G, false)) {
			if (old > G)
				pagemap_unregister(start + old - G, G);
			WRITE_ONCE(slab->size, bytes);
			return start;
		}
		mremap(start, bytes, old, 0);
		return NULL;
	}
	/*
	 * Else into a free extent of the class, or the head of a larger one
	 * (take_free() cuts it): its pages are dropped (they were free) and
	 * the block's move there, no byte copied, and no new address space
	 * grows while free extents wait; it keeps its descriptor, which the
	 * address map already has.
	 */
	free_ext = take_free(large_index(new_size), SLAB_GRANULE_SIZE,
			      GFP_KERNEL);
	if (free_ext) {
		to = mremap(start, old, bytes, MREMAP_MAYMOVE | MREMAP_FIXED,
			    free_ext->base);
		if (to != MAP_FAILED) {
			/* its tail past @bytes, if any, stays in the block */
			WRITE_ONCE(free_ext->inuse, 1);
			unmap_bounds(start, old);
			desc_free(slab);
			return to;
		}
		__slab_free_large(free_ext);
	}
	/* else a new granule-aligned place, the pages moved there */
	to = slab_map(bytes, SLAB_GRANULE_SIZE);
	if (!to)
		return NULL;
	if (map_range_bounds(slab, to, bytes, false)) {
		slab_unmap(to, bytes);
		return NULL;
	}
	if (mremap(start, old, bytes, MREMAP_MAYMOVE | MREMAP_FIXED, to) ==
	    MAP_FAILED) {
		unmap_bounds(to, bytes);
		slab_unmap(to, bytes);
		return NULL;
	}
	/* the old range is unmapped by the move: out of the map with it */
	unmap_bounds(start, old);
	slab->base = to;
	WRITE_ONCE(slab->size, bytes);
	return to;
}

/**
 * page_alloc_free_bytes - bytes of large blocks kept free for reuse
 */
size_t page_alloc_free_bytes(void)
{
	return __atomic_load_n(&free_bytes, __ATOMIC_RELAXED);
}

/* ------------------------------------------------------ start-up, fork */

/**
 * page_alloc_init - set up the free lists and read the decay interval
 *
 * Context: kslab_init(), before the slab layer.
 */
void page_alloc_init(void)
{
	unsigned int i;

	large_decay_ms = kslab_option(OPT_SLAB_DECAY_MS);
	for (i = 0; i < NR_LARGE_CLASSES; i++) {
		pthread_mutex_init(&large_classes[i].lock, NULL);
		INIT_LIST_HEAD(&large_classes[i].free);
	}
}

/*
 * fork(): every class lock, then the pool's, so the child finds the free
 * lists whole; their place in the order is in mm/lifecycle.c.
 */
void page_alloc_fork_prepare(void)
{
	unsigned int i;

	pthread_mutex_lock(&decay_lock);
	for (i = 0; i < NR_LARGE_CLASSES; i++)
		pthread_mutex_lock(&large_classes[i].lock);
	pthread_mutex_lock(&pool_lock);
}

void page_alloc_fork_parent(void)
{
	unsigned int i;

	pthread_mutex_unlock(&pool_lock);
	for (i = NR_LARGE_CLASSES; i-- > 0;)
		pthread_mutex_unlock(&large_classes[i].lock);
	pthread_mutex_unlock(&decay_lock);
}

void page_alloc_fork_child(void)
{
	page_alloc_fork_parent();
}
