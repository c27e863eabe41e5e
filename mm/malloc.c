// SPDX-License-Identifier: MIT
/*
 * The malloc replacement: the C library's allocation functions on top of
 * kmalloc, linked with the allocator's own objects into
 * libkslab-malloc.so (LD_PRELOAD=libkslab-malloc.so prog, or -lkslab-malloc),
 * never into libkslab.a.  Documentation/mm/malloc.rst is the user's view.
 *
 * Layer.  This file sits above everything in the picture at the top of
 * mm/slab_common.c: it calls the generic layer's entry points (kmalloc(),
 * kfree(), krealloc(), ksize(), kmalloc_aligned()) and kslab_init(), and
 * nothing of kslab calls it, except through the C library's malloc() as
 * any program would.  It keeps no lock and no state of its own but the
 * bootstrap arena below.
 *
 * The contract on top of kmalloc's.  Every result is aligned to
 * MALLOC_ALIGN (16), as glibc's is on x86-64: kmalloc-8 is only 8-byte
 * aligned, so requests below 16 bytes are served by kmalloc-16, and
 * malloc(0) gets such a unique, freeable object too (kmalloc(0) would
 * return ZERO_SIZE_PTR).  Sizes above PTRDIFF_MAX fail with ENOMEM before
 * kslab sees them, as glibc's do; both tests are one unsigned compare on
 * the fast path.  realloc(p, 0) frees @p and returns NULL, as glibc's.
 *
 * Start-up.  kslab_init() runs under pthread_once(); what it calls
 * (pthread_atfork(), atexit(), the C library behind them, liburcu) may
 * call malloc() again from the same thread, which must neither wait for
 * the pthread_once() it is inside of nor use the half-built caches.  So
 * the shim starts kslab itself, with malloc_initialising set in the
 * starting thread, and serves that thread's calls from a static
 * bootstrap arena until kslab_init() returns: a bump pointer, never
 * reused, whose blocks free() recognises by address and ignores, and
 * whose blocks realloc() copies out of.  Other threads wait in
 * kslab_init() as they would for kmalloc().  The shim's constructor runs
 * before kslab's own (a lower priority number), so every start of kslab
 * in this library goes through malloc_start(), whichever comes first:
 * a constructor of another library calling malloc(), or the constructor.
 *
 * Threads, fork() and exit need nothing here: kslab's thread-exit key
 * gives a thread's magazines back, and a free() after it (the C library
 * frees TLS and thread-specific data late) goes to the slabs directly;
 * kslab's fork handlers leave the child a working allocator.
 */
#include <errno.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mm/slab.h"

/* the C library's names: the only symbols libkslab-malloc.so exports */
#define __visible		__attribute__((__visibility__("default")))

#define MALLOC_ALIGN		16UL		/* glibc's MALLOC_ALIGNMENT */
#define MALLOC_MIN_SIZE		MALLOC_ALIGN
#define MALLOC_MAX_SIZE		((size_t)PTRDIFF_MAX)

/*
 * The bootstrap arena: the initialising thread's allocations while
 * kslab_init() runs.  Each block is preceded by a header holding its
 * size, for realloc() and malloc_usable_size().  It is bss: the pages
 * never touched cost nothing.
 */
#define BOOT_ARENA_SIZE		(256UL << 10)

struct boot_header {
	size_t size;
	size_t pad;			/* keeps blocks MALLOC_ALIGN aligned */
};

static unsigned char boot_arena[BOOT_ARENA_SIZE] __aligned(PAGE_SIZE);
static size_t boot_used;		/* bytes handed out; atomic */

static bool malloc_ready;		/* kslab_init() returned; relaxed */
static __thread bool malloc_initialising __initial_exec;

/* ------------------------------------------------------ bootstrap arena */

static bool boot_owns(const void *p)
{
	return (uintptr_t)p - (uintptr_t)boot_arena < BOOT_ARENA_SIZE;
}

static struct boot_header *boot_header(const void *p)
{
	return (struct boot_header *)p - 1;
}

/* Zeroed memory (bss, never reused), aligned to @align. */
static void *boot_alloc(size_t size, size_t align)
{
	size_t used = __atomic_load_n(&boot_used, __ATOMIC_RELAXED);
	size_t start, end;

	if (size > BOOT_ARENA_SIZE || align > BOOT_ARENA_SIZE)
		goto nomem;
	if (align < MALLOC_ALIGN)
		align = MALLOC_ALIGN;
	do {
		start = (used + sizeof(struct boot_header) + align - 1) & ~(align - 1);
		end = start + ((size + MALLOC_ALIGN - 1) & ~(MALLOC_ALIGN - 1));
		if (end > BOOT_ARENA_SIZE)
			goto nomem;
	} while (!__atomic_compare_exchange_n(&boot_used, &used, end, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	boot_header(boot_arena + start)->size = size;
	return boot_arena + start;
nomem:
	errno = ENOMEM;
	return NULL;
}

/* ------------------------------------------------------------ start-up */

/*
 * Start kslab, or wait for the thread that does.  Return: true when the
 * caller may use kslab, false when it is the initialising thread calling
 * again from inside kslab_init() (the bootstrap arena serves it).
 */
static noinline bool malloc_start(void)
{
	if (malloc_initialising)
		return false;
	malloc_initialising = true;
	kslab_init();
	malloc_initialising = false;
	WRITE_ONCE(malloc_ready, true);
	return true;
}

/* Before kslab's constructor: see the top of this file. */
static __attribute__((__constructor__(101))) void malloc_constructor(void)
{
	malloc_start();
}

/* ------------------------------------------------------------ the paths */

static __always_inline bool malloc_size_fast(size_t size)
{
	/* 16 <= size <= PTRDIFF_MAX in one compare */
	return size - MALLOC_MIN_SIZE <= MALLOC_MAX_SIZE - MALLOC_MIN_SIZE;
}

/*
 * Any size at any power-of-two alignment: the slow path of every
 * allocation function.  Return: NULL with errno ENOMEM on failure.
 */
static noinline void *malloc_slow(size_t size, size_t align, bool zero)
{
	void *p;

	if (size > MALLOC_MAX_SIZE || align > MALLOC_MAX_SIZE / 2 + 1) {
		errno = ENOMEM;
		return NULL;
	}
	if (!READ_ONCE(malloc_ready) && !malloc_start())
		return boot_alloc(size, align);
	if (size < MALLOC_MIN_SIZE)
		size = MALLOC_MIN_SIZE;
	if (align > MALLOC_ALIGN)
		p = kmalloc_aligned(size, align, zero ? GFP_KERNEL | __GFP_ZERO : GFP_KERNEL);
	else
		p = kmalloc(size, zero ? GFP_KERNEL | __GFP_ZERO : GFP_KERNEL);
	if (unlikely(!p))
		errno = ENOMEM;
	return p;
}

static __always_inline void *malloc_aligned(size_t size, size_t align)
{
	if (align <= MALLOC_ALIGN)
		return malloc(size);
	return malloc_slow(size, align, false);
}

/* realloc() of a bootstrap block: copied out, never freed. */
static noinline void *boot_realloc(void *p, size_t size)
{
	size_t old = boot_header(p)->size;
	void *n = malloc(size);

	if (n)
		memcpy(n, p, old < size ? old : size);
	return n;
}

/* --------------------------------------------------- the C library's API */

/**
 * malloc - allocate @size bytes (C11 7.22.3.4)
 * @size: bytes; 0 gives a unique pointer that free() takes
 *
 * Context: any thread, including from inside kslab's own start-up.
 * Return: 16-byte aligned memory, or NULL with errno ENOMEM.
 */
__visible void *malloc(size_t size)
{
	if (likely(malloc_size_fast(size)) && likely(READ_ONCE(malloc_ready)))
		return kmalloc(size, GFP_KERNEL);
	return malloc_slow(size, MALLOC_ALIGN, false);
}

/**
 * free - give back memory from any function of this file (C11 7.22.3.3)
 * @p: the memory, or NULL
 *
 * A pointer this allocator never returned, or one freed twice, is
 * reported on stderr and ignored (KSLAB_ABORT_ON_ERROR=1: abort after
 * the report).  Bootstrap blocks are ignored silently.
 */
__visible void free(void *p)
{
	if (unlikely(boot_owns(p)))
		return;
	kfree(p);
}

/**
 * calloc - allocate a zeroed array (C11 7.22.3.2)
 * @n: elements
 * @size: bytes each
 *
 * Return: zeroed memory, or NULL with errno ENOMEM, also when @n * @size
 * overflows.
 */
__visible void *calloc(size_t n, size_t size)
{
	size_t bytes;

	if (unlikely(__builtin_mul_overflow(n, size, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	/* small: the magazine fast path and a memset beat __GFP_ZERO's slow path */
	if (likely(malloc_size_fast(bytes)) && bytes <= PAGE_SIZE &&
	    likely(READ_ONCE(malloc_ready))) {
		void *p = kmalloc(bytes, GFP_KERNEL);

		if (likely(p))
			return memset(p, 0, bytes);
	}
	return malloc_slow(bytes, MALLOC_ALIGN, true);
}

/**
 * realloc - resize memory, keeping its contents (C11 7.22.3.5)
 * @p: the memory, or NULL (then it is malloc())
 * @size: bytes; 0 frees @p and returns NULL, as glibc does
 *
 * Return: the memory (perhaps @p itself), or NULL with errno ENOMEM and
 * @p untouched.
 */
__visible void *realloc(void *p, size_t size)
{
	void *n;

	if (unlikely(!p))
		return malloc(size);
	if (unlikely(!size)) {
		free(p);
		return NULL;
	}
	if (unlikely(boot_owns(p)))
		return boot_realloc(p, size);
	if (unlikely(size > MALLOC_MAX_SIZE)) {
		errno = ENOMEM;
		return NULL;
	}
	if (size < MALLOC_MIN_SIZE)
		size = MALLOC_MIN_SIZE;
	n = krealloc(p, size, GFP_KERNEL);
	if (unlikely(!n))
		errno = ENOMEM;
	return n;
}

/**
 * reallocarray - realloc() of an array, with an overflow check (glibc)
 * @p: the memory, or NULL
 * @n: elements
 * @size: bytes each
 *
 * Return: as realloc(); NULL with errno ENOMEM and @p untouched when
 * @n * @size overflows.
 */
__visible void *reallocarray(void *p, size_t n, size_t size)
{
	size_t bytes;

	if (unlikely(__builtin_mul_overflow(n, size, &bytes))) {
		errno = ENOMEM;
		return NULL;
	}
	return realloc(p, bytes);
}

/**
 * posix_memalign - allocate at a multiple of @align (POSIX)
 * @memptr: where the memory goes
 * @align: a power of two, a multiple of sizeof(void *)
 * @size: bytes; 0 gives a unique pointer
 *
 * errno is left as it was, whatever happens.
 * Return: 0; EINVAL for a bad @align, ENOMEM when out of memory (then
 * *@memptr is untouched).
 */
__visible int posix_memalign(void **memptr, size_t align, size_t size)
{
	int saved = errno, err = EINVAL;	/* POSIX: positive, not errno */
	void *p;

	if (align < sizeof(void *) || (align & (align - 1)))
		return err;
	p = malloc_aligned(size, align);
	errno = saved;
	err = p ? 0 : ENOMEM;
	if (p)
		*memptr = p;
	return err;
}

/**
 * aligned_alloc - allocate at a multiple of @align (C11 7.22.3.1)
 * @align: a power of two
 * @size: bytes; as with C17 and glibc, need not be a multiple of @align
 *
 * Return: the memory, or NULL with errno EINVAL (@align not a power of
 * two) or ENOMEM.
 */
__visible void *aligned_alloc(size_t align, size_t size)
{
	if (!align || (align & (align - 1))) {
		errno = EINVAL;
		return NULL;
	}
	return malloc_aligned(size, align);
}

/**
 * memalign - allocate at a multiple of @align (obsolete, glibc)
 * @align: rounded up to a power of two, as glibc does
 * @size: bytes
 *
 * Return: the memory, or NULL with errno EINVAL (@align above
 * SIZE_MAX / 2 + 1) or ENOMEM.
 */
__visible void *memalign(size_t align, size_t size)
{
	if (align > SIZE_MAX / 2 + 1) {
		errno = EINVAL;
		return NULL;
	}
	if (align & (align - 1))
		align = 1UL << (64 - __builtin_clzl(align));
	return malloc_aligned(size, align);
}

/**
 * valloc - allocate at a page boundary (obsolete, glibc)
 * @size: bytes
 */
__visible void *valloc(size_t size)
{
	return malloc_aligned(size, (size_t)getpagesize());
}

/**
 * pvalloc - allocate whole pages at a page boundary (obsolete, glibc)
 * @size: bytes, rounded up to a page multiple; 0 gives one page
 *
 * Return: the memory, or NULL with errno ENOMEM (also when rounding up
 * overflows).
 */
__visible void *pvalloc(size_t size)
{
	size_t page = (size_t)getpagesize();
	size_t pages;

	if (unlikely(size > SIZE_MAX - page)) {
		errno = ENOMEM;
		return NULL;
	}
	pages = size ? (size + page - 1) & ~(page - 1) : page;
	return malloc_aligned(pages, page);
}

/**
 * malloc_usable_size - bytes usable at @p (glibc)
 * @p: memory from this allocator, or NULL
 *
 * Return: at least the size that was asked for; 0 for NULL and, with a
 * report, a pointer this allocator never returned.
 */
__visible size_t malloc_usable_size(void *p)
{
	if (unlikely(!p))
		return 0;
	if (unlikely(boot_owns(p)))
		return boot_header(p)->size;
	return ksize(p);
}
