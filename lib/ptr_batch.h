/* SPDX-License-Identifier: MIT */
/*
 * A page of pointers, and a FIFO of such pages: the one container behind
 * RCU reclaim's batches (mm/kfree_rcu.c) and the finalizer queue's chunks
 * (mm/finalizer.c).  A batch is one 4 KiB allocation holding a link, a
 * count and as many pointers as fit; whoever owns a batch decides who may
 * write it and how nr is published.  The FIFO keeps batches in the order
 * they were appended; it has no lock of its own.
 *
 * (Magazines, mm/slub.c, are stacks with their own size and depot life,
 * and stay apart.)
 */
#ifndef _KSLAB_LIB_PTR_BATCH_H
#define _KSLAB_LIB_PTR_BATCH_H

#include <stdbool.h>
#include <stddef.h>

#define KSLAB_PTR_BATCH_BYTES	4096

struct kslab_ptr_batch {
	struct kslab_ptr_batch *next;	/* in its FIFO */
	unsigned long nr;		/* pointers in objs[] */
	void *objs[];
};

#define KSLAB_PTR_BATCH_OBJS						\
	((KSLAB_PTR_BATCH_BYTES - sizeof(struct kslab_ptr_batch)) /	\
	 sizeof(void *))

struct kslab_ptr_fifo {
	struct kslab_ptr_batch *head, *tail;
};

static inline bool kslab_ptr_fifo_empty(const struct kslab_ptr_fifo *f)
{
	return !f->head;
}

/* Append @b, which belongs to no FIFO. */
static inline void kslab_ptr_fifo_push_tail(struct kslab_ptr_fifo *f,
					    struct kslab_ptr_batch *b)
{
	b->next = NULL;
	if (f->tail)
		f->tail->next = b;
	else
		f->head = b;
	f->tail = b;
}

/* Put @b first, to be taken next. */
static inline void kslab_ptr_fifo_push_head(struct kslab_ptr_fifo *f,
					    struct kslab_ptr_batch *b)
{
	b->next = f->head;
	f->head = b;
	if (!f->tail)
		f->tail = b;
}

/* Move every batch of @from, in order, behind those of @f. */
static inline void kslab_ptr_fifo_splice_tail(struct kslab_ptr_fifo *f,
					      struct kslab_ptr_fifo *from)
{
	if (!from->head)
		return;
	if (f->tail)
		f->tail->next = from->head;
	else
		f->head = from->head;
	f->tail = from->tail;
	from->head = from->tail = NULL;
}

/* Take the oldest batch, or NULL. */
static inline struct kslab_ptr_batch *
kslab_ptr_fifo_pop(struct kslab_ptr_fifo *f)
{
	struct kslab_ptr_batch *b = f->head;

	if (b) {
		f->head = b->next;
		if (!f->head)
			f->tail = NULL;
	}
	return b;
}

/*
 * Append @p behind the last pointer of @f, starting a batch from @alloc
 * (which returns NULL when out of memory) when the last one is full.
 * Return: false when no batch could be had.
 */
static inline bool kslab_ptr_fifo_add(struct kslab_ptr_fifo *f, void *p,
				      struct kslab_ptr_batch *(*alloc)(void))
{
	struct kslab_ptr_batch *b = f->tail;

	if (!b || b->nr == KSLAB_PTR_BATCH_OBJS) {
		b = alloc();
		if (!b)
			return false;
		b->nr = 0;
		kslab_ptr_fifo_push_tail(f, b);
	}
	b->objs[b->nr++] = p;
	return true;
}

#endif /* _KSLAB_LIB_PTR_BATCH_H */
