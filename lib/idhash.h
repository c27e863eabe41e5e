/* SPDX-License-Identifier: MIT */
/*
 * An intrusive hash table keyed by an unsigned long: chained buckets, a
 * power-of-two size, grown by the caller.  It allocates nothing itself:
 * the caller brings the bucket arrays (kslab's from its own metadata
 * caches) and decides when to grow, so the table can be used under any
 * lock.  Used for the finalizer's cleanup handles.
 */
#ifndef _KSLAB_LIB_IDHASH_H
#define _KSLAB_LIB_IDHASH_H

#include <stdbool.h>
#include <stddef.h>

struct kslab_idhash_node {
	struct kslab_idhash_node *next;	/* in its bucket */
	unsigned long key;
};

struct kslab_idhash {
	struct kslab_idhash_node **buckets;	/* size entries, or NULL */
	unsigned long size;			/* 0 or a power of two */
	unsigned long count;			/* nodes in the table */
};

/* Fibonacci hashing: sequential keys spread over the buckets. */
static inline unsigned long kslab_idhash_index(unsigned long key,
					       unsigned long size)
{
	return (key * 0x9e3779b97f4a7c15UL) >> (64 - __builtin_ctzl(size));
}

/* Whether the table wants more buckets before one more node is added. */
static inline bool kslab_idhash_full(const struct kslab_idhash *h)
{
	return h->count >= h->size;
}

/**
 * kslab_idhash_resize - move every node to @buckets
 * @h: the table
 * @buckets: @size zeroed bucket pointers
 * @size: a power of two, at least 2
 *
 * Return: the old bucket array, for the caller to free (NULL at first).
 */
static inline struct kslab_idhash_node **
kslab_idhash_resize(struct kslab_idhash *h, struct kslab_idhash_node **buckets,
		    unsigned long size)
{
	struct kslab_idhash_node **old = h->buckets;
	unsigned long i;

	for (i = 0; i < h->size; i++) {
		struct kslab_idhash_node *n = old[i], *next;

		for (; n; n = next) {
			struct kslab_idhash_node **b;

			next = n->next;
			b = &buckets[kslab_idhash_index(n->key, size)];
			n->next = *b;
			*b = n;
		}
	}
	h->buckets = buckets;
	h->size = size;
	return old;
}

/* Add @n with its key set; the table must not be full. */
static inline void kslab_idhash_add(struct kslab_idhash *h,
				    struct kslab_idhash_node *n)
{
	struct kslab_idhash_node **b =
		&h->buckets[kslab_idhash_index(n->key, h->size)];

	n->next = *b;
	*b = n;
	h->count++;
}

/* The node with @key, or NULL. */
static inline struct kslab_idhash_node *
kslab_idhash_find(const struct kslab_idhash *h, unsigned long key)
{
	struct kslab_idhash_node *n;

	if (!h->size)
		return NULL;
	for (n = h->buckets[kslab_idhash_index(key, h->size)]; n; n = n->next)
		if (n->key == key)
			return n;
	return NULL;
}

/* Take @n, which is in the table, out of it. */
static inline void kslab_idhash_del(struct kslab_idhash *h,
				    struct kslab_idhash_node *n)
{
	struct kslab_idhash_node **pp =
		&h->buckets[kslab_idhash_index(n->key, h->size)];

	while (*pp != n)
		pp = &(*pp)->next;
	*pp = n->next;
	h->count--;
}

#endif /* _KSLAB_LIB_IDHASH_H */
