// SPDX-License-Identifier: MIT
/*
 * The address map: from any address to the slab that holds it, in O(1)
 * and without a lock.
 *
 * User addresses on x86-64 and arm64 fit in 47 bits.  The map splits the
 * granule number (address >> SLAB_GRANULE_SHIFT) into a root index and a
 * leaf index.  The root is a static array (untouched BSS costs nothing);
 * a leaf covers 4 GiB of address space and is mapped the first time a
 * slab lands in its range.  Leaves are never freed, so a lookup that
 * raced with an unregister reads either the old slab or NULL, never freed
 * memory.
 *
 * Writers serialize on pagemap_lock; readers use acquire loads paired
 * with the writers' release stores, so a reader that finds a slab also
 * sees the slab header written before it was registered.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#include "mm/slab.h"

#define PAGEMAP_LEAF_ENTRIES	(1UL << PAGEMAP_LEAF_BITS)

struct slab **pagemap_root[1UL << PAGEMAP_ROOT_BITS];
static pthread_mutex_t pagemap_lock = PTHREAD_MUTEX_INITIALIZER;

static struct slab **pagemap_leaf(uintptr_t granule)
{
	struct slab ***rootp = &pagemap_root[granule >> PAGEMAP_LEAF_BITS];
	struct slab **leaf = *rootp;
	void *p;

	if (leaf)
		return leaf;
	p = mmap(NULL, PAGEMAP_LEAF_ENTRIES * sizeof(*leaf),
		 PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	leaf = p;
	/* a reader that sees the leaf sees it zeroed (see virt_to_slab()) */
	smp_store_release(rootp, leaf);
	return leaf;
}

static void pagemap_set(const void *start, size_t size, struct slab *slab)
{
	uintptr_t first = (uintptr_t)start >> SLAB_GRANULE_SHIFT;
	uintptr_t last = ((uintptr_t)start + size - 1) >> SLAB_GRANULE_SHIFT;
	uintptr_t g;

	for (g = first; g <= last; g++) {
		struct slab **leaf = pagemap_root[g >> PAGEMAP_LEAF_BITS];

		/* publishes the slab header written before registration */
		smp_store_release(&leaf[g & (PAGEMAP_LEAF_ENTRIES - 1)], slab);
	}
}

/**
 * pagemap_register - make every granule of [start, start + size) map to
 * @slab
 * @slab: the header to find
 * @start: granule-aligned start of the mapping
 * @size: its length
 * @nowait: fail with -EAGAIN rather than wait for pagemap_lock
 *
 * Context: any thread; takes pagemap_lock.
 * Return: 0, or -ENOMEM when a leaf could not be mapped (nothing is
 * registered then).
 */
int pagemap_register(struct slab *slab, const void *start, size_t size,
		     bool nowait)
{
	uintptr_t first = (uintptr_t)start >> SLAB_GRANULE_SHIFT;
	uintptr_t last = ((uintptr_t)start + size - 1) >> SLAB_GRANULE_SHIFT;
	uintptr_t g;
	int ret = 0;

	if (((uintptr_t)start + size - 1) >> PAGEMAP_ADDR_BITS)
		return -ENOMEM;
	if (nowait) {
		if (pthread_mutex_trylock(&pagemap_lock))
			return -EAGAIN;
	} else {
		pthread_mutex_lock(&pagemap_lock);
	}
	for (g = first; g <= last; g++) {
		if (!pagemap_leaf(g)) {
			ret = -ENOMEM;
			goto out;
		}
	}
	pagemap_set(start, size, slab);
out:
	pthread_mutex_unlock(&pagemap_lock);
	return ret;
}

/**
 * pagemap_unregister - forget the mapping of [start, start + size)
 * @start: as given to pagemap_register()
 * @size: as given to pagemap_register()
 *
 * Context: any thread; takes pagemap_lock.  Call before unmapping.
 */
void pagemap_unregister(const void *start, size_t size)
{
	pthread_mutex_lock(&pagemap_lock);
	pagemap_set(start, size, NULL);
	pthread_mutex_unlock(&pagemap_lock);
}

/*
 * fork(): the forking thread holds pagemap_lock across the fork, so the
 * child never inherits it held by a thread it does not have.
 */
void pagemap_fork_prepare(void)
{
	pthread_mutex_lock(&pagemap_lock);
}

void pagemap_fork_parent(void)
{
	pthread_mutex_unlock(&pagemap_lock);
}

void pagemap_fork_child(void)
{
	pthread_mutex_unlock(&pagemap_lock);
}
