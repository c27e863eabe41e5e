// SPDX-License-Identifier: MIT
/*
 * The kmalloc family: the size classes from 8 to KMALLOC_MAX_CACHE_SIZE
 * (including the 96 and 192 byte ones), their alignment, ZERO_SIZE_PTR, large allocations mapped directly, sizes
 * that cannot be served, zeroing (kzalloc, kcalloc), multiplication
 * overflow (kcalloc, kmalloc_array), krealloc in every direction and on
 * failure, kstrdup/kmemdup, kfree of objects from named caches, and the
 * report kfree() prints for a pointer kslab never handed out.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <kslab/slab.h>

/*
 * The harness hands every test a variant argument it rarely uses, and its
 * EXPECT_*() macros compare a plain literal with the checked value's own
 * type; neither is worth a cast at every call site.
 */
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define KiB	(1UL << 10)
#define MiB	(1UL << 20)

/*
 * kslab's size classes: 8, then multiples of 16 up to 128; above that
 * four per doubling, so a size in (2^k, 2^(k+1)] rounds up to a multiple
 * of 2^(k-2).
 */
static size_t expected_class(size_t size)
{
	size_t pow = 128, step;

	if (size <= 8)
		return 8;
	if (size <= 128)
		return (size + 15) & ~(size_t)15;
	while (pow * 2 < size)
		pow <<= 1;
	step = pow / 4;
	return (size + step - 1) / step * step;
}

/* Sizes to try: each one up to 8192, then both sides of every class edge. */
static size_t next_size(size_t size)
{
	size_t c;

	if (size < 8192)
		return size + 1;
	c = expected_class(size);
	return size == c ? c + 1 : c;
}

static void fill(void *p, size_t len, unsigned int seed)
{
	unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = (unsigned char)(seed + i * 31);
}

/* Offset of the first byte that differs from fill(), or @len. */
static size_t check_fill(const void *p, size_t len, unsigned int seed)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != (unsigned char)(seed + i * 31))
			break;
	return i;
}

/* Offset of the first non-zero byte, or @len. */
static size_t first_nonzero(const void *p, size_t len)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			break;
	return i;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void * const *)a;
	uintptr_t y = (uintptr_t)*(void * const *)b;

	return x < y ? -1 : x > y;
}

/* ---- size classes ----------------------------------------------------- */

TEST(kmalloc_serves_every_class_with_writable_ksize)
{
	size_t size;

	for (size = 1; size <= KMALLOC_MAX_CACHE_SIZE; size = next_size(size)) {
		void *p = kmalloc(size, GFP_KERNEL);
		size_t ks;

		ASSERT_NE(NULL, p) TH_LOG("kmalloc(%zu)", size);
		ks = ksize(p);
		ASSERT_GE(ks, size);
		ASSERT_LE(ks, KMALLOC_MAX_CACHE_SIZE) TH_LOG("size %zu", size);
		fill(p, ks, (unsigned int)size);
		ASSERT_EQ(ks, check_fill(p, ks, (unsigned int)size));
		kfree(p);
	}
}

TEST(kmalloc_rounds_up_to_the_size_classes)
{
	size_t size;

	for (size = 1; size <= KMALLOC_MAX_CACHE_SIZE; size = next_size(size)) {
		void *p = kmalloc(size, GFP_KERNEL);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(expected_class(size), ksize(p))
			TH_LOG("kmalloc(%zu)", size);
		kfree(p);
	}
}

TEST(kmalloc_has_96_and_192_byte_classes)
{
	void *a = kmalloc(90, GFP_KERNEL);
	void *b = kmalloc(180, GFP_KERNEL);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_EQ(96, ksize(a));
	EXPECT_EQ(192, ksize(b));
	kfree(a);
	kfree(b);
}

TEST(kmalloc_wastes_at_most_a_quarter_from_256_bytes)
{
	size_t size;

	for (size = 256; size <= KMALLOC_MAX_CACHE_SIZE; size = next_size(size)) {
		void *p = kmalloc(size, GFP_KERNEL);

		ASSERT_NE(NULL, p);
		EXPECT_LE(ksize(p) * 4, size * 5) TH_LOG("kmalloc(%zu)", size);
		kfree(p);
	}
}

TEST(kmalloc_objects_of_16_bytes_or_more_are_16_byte_aligned)
{
	size_t size;

	for (size = 9; size <= KMALLOC_MAX_CACHE_SIZE; size = next_size(size)) {
		void *objs[8];
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmalloc(size, GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			if (ksize(objs[i]) >= 16)
				EXPECT_EQ(0, (uintptr_t)objs[i] % 16)
					TH_LOG("kmalloc(%zu) = %p", size, objs[i]);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kfree(objs[i]);
	}
}

TEST(kmalloc_power_of_two_sizes_are_naturally_aligned)
{
	size_t size;

	for (size = 8; size <= KMALLOC_MAX_CACHE_SIZE; size <<= 1) {
		void *objs[64];
		unsigned int i;

		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmalloc(size, GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			EXPECT_EQ(0, (uintptr_t)objs[i] % size)
				TH_LOG("kmalloc(%zu) = %p", size, objs[i]);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kfree(objs[i]);
	}
}

TEST(kmalloc_objects_of_mixed_sizes_never_overlap)
{
	enum { NR = 6000 };
	void **objs = calloc(NR, sizeof(*objs));
	size_t i;

	ASSERT_NE(NULL, objs);
	for (i = 0; i < NR; i++) {
		size_t size = 1 + (i * 7919) % 9000;

		objs[i] = kmalloc(size, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		fill(objs[i], size, (unsigned int)i);
	}
	for (i = 0; i < NR; i++) {
		size_t size = 1 + (i * 7919) % 9000;

		ASSERT_EQ(size, check_fill(objs[i], size, (unsigned int)i))
			TH_LOG("object %zu of %zu bytes overwritten", i, size);
	}
	qsort(objs, NR, sizeof(*objs), cmp_ptr);
	for (i = 1; i < NR; i++) {
		ASSERT_LE((uintptr_t)objs[i - 1] + ksize(objs[i - 1]),
			  (uintptr_t)objs[i]);
	}
	for (i = 0; i < NR; i++)
		kfree(objs[i]);
	free(objs);
}

/* ---- ZERO_SIZE_PTR and NULL ------------------------------------------- */

TEST(kmalloc_zero_returns_zero_size_ptr)
{
	void *p = kmalloc(0, GFP_KERNEL);

	EXPECT_EQ(ZERO_SIZE_PTR, p);
	EXPECT_TRUE(ZERO_OR_NULL_PTR(p));
	/* cppcheck-suppress unsignedPositive */
	EXPECT_TRUE(ZERO_OR_NULL_PTR(NULL));
	EXPECT_EQ(0, ksize(p));
	kfree(p);
}

TEST(zero_or_null_ptr_is_false_for_real_objects)
{
	void *p = kmalloc(8, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	EXPECT_FALSE(ZERO_OR_NULL_PTR(p));
	kfree(p);
}

TEST(kfree_of_null_and_zero_size_ptr_are_silent_noops)
{
	struct stderr_capture cap;

	stderr_capture_begin(&cap);
	kfree(NULL);
	kfree(ZERO_SIZE_PTR);
	kfree(kmalloc(0, GFP_KERNEL));
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
}

/* ---- large allocations ------------------------------------------------ */

TEST(large_kmalloc_is_writable_over_ksize)
{
	static const size_t sizes[] = {
		KMALLOC_MAX_CACHE_SIZE + 1, 16 * KiB, 100000, 1 * MiB,
		64 * MiB,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		unsigned char *p = kmalloc(sizes[i], GFP_KERNEL);
		size_t ks;

		ASSERT_NE(NULL, p) TH_LOG("kmalloc(%zu)", sizes[i]);
		ks = ksize(p);
		EXPECT_GE(ks, sizes[i]);
		memset(p, 0xab, ks);
		EXPECT_EQ(0xab, p[0]);
		EXPECT_EQ(0xab, p[ks - 1]);
		kfree(p);
	}
}

TEST(large_kmalloc_is_page_aligned)
{
	static const size_t sizes[] = { 16 * KiB, 1 * MiB, 64 * MiB };
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *p = kmalloc(sizes[i], GFP_KERNEL);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(0, (uintptr_t)p % page) TH_LOG("kmalloc(%zu) = %p",
							 sizes[i], p);
		kfree(p);
	}
}

TEST(large_kzalloc_is_zeroed)
{
	static const size_t sizes[] = { 16 * KiB, 1 * MiB, 64 * MiB };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *p = kmalloc(sizes[i], GFP_KERNEL);

		/* Dirty one first, in case the memory is recycled. */
		ASSERT_NE(NULL, p);
		memset(p, 0xff, sizes[i]);
		kfree(p);
		p = kzalloc(sizes[i], GFP_KERNEL);
		ASSERT_NE(NULL, p);
		EXPECT_EQ(sizes[i], first_nonzero(p, sizes[i]));
		kfree(p);
	}
}

TEST(kmalloc_too_large_fails_with_enomem)
{
	static const size_t sizes[] = {
		SIZE_MAX, SIZE_MAX / 2 + 1, (size_t)1 << 62,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *p;

		errno = 0;
		p = kmalloc(sizes[i], GFP_KERNEL | __GFP_NOWARN);
		EXPECT_EQ(NULL, p) TH_LOG("kmalloc(%#zx)", sizes[i]);
		EXPECT_EQ(ENOMEM, errno) TH_LOG("kmalloc(%#zx)", sizes[i]);
		errno = 0;
		p = kzalloc(sizes[i], GFP_KERNEL | __GFP_NOWARN);
		EXPECT_EQ(NULL, p) TH_LOG("kzalloc(%#zx)", sizes[i]);
		EXPECT_EQ(ENOMEM, errno) TH_LOG("kzalloc(%#zx)", sizes[i]);
	}
}

/* ---- zeroing ---------------------------------------------------------- */

TEST(kzalloc_returns_zeroed_memory_for_every_class)
{
	size_t size;

	for (size = 1; size <= 8192; size += 37) {
		void *p = kzalloc(size, GFP_KERNEL);

		ASSERT_NE(NULL, p);
		EXPECT_EQ(ksize(p), first_nonzero(p, ksize(p)))
			TH_LOG("kzalloc(%zu)", size);
		kfree(p);
	}
}

TEST(kzalloc_zeroes_a_reused_dirty_object)
{
	static const size_t sizes[] = { 8, 64, 96, 192, 1000, 4096, 8192 };
	unsigned int k, i;

	for (k = 0; k < ARRAY_SIZE(sizes); k++) {
		void *objs[32];

		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmalloc(sizes[k], GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			memset(objs[i], 0xee, ksize(objs[i]));
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kfree(objs[i]);
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kzalloc(sizes[k], GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			EXPECT_EQ(ksize(objs[i]),
				  first_nonzero(objs[i], ksize(objs[i])))
				TH_LOG("kzalloc(%zu) #%u", sizes[k], i);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kfree(objs[i]);
	}
}

TEST(gfp_zero_kmalloc_zeroes_a_reused_dirty_object)
{
	void *p = kmalloc(256, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	memset(p, 0xcd, 256);
	kfree(p);
	p = kmalloc(256, GFP_KERNEL | __GFP_ZERO);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(256, first_nonzero(p, 256));
	kfree(p);
}

TEST(kcalloc_returns_zeroed_array)
{
	void *p = kmalloc(40 * 50, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	memset(p, 0x5c, 40 * 50);
	kfree(p);
	p = kcalloc(40, 50, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	EXPECT_GE(ksize(p), 40 * 50);
	EXPECT_EQ(40 * 50, first_nonzero(p, 40 * 50));
	kfree(p);
	p = kcalloc(1000, 1000, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	EXPECT_EQ(1000 * 1000, first_nonzero(p, 1000 * 1000));
	kfree(p);
}

TEST(kmalloc_array_allocates_n_times_size)
{
	void *p = kmalloc_array(300, 12, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	EXPECT_GE(ksize(p), 300 * 12);
	memset(p, 1, 300 * 12);
	kfree(p);
}

TEST(kcalloc_and_kmalloc_array_overflow_return_null)
{
	EXPECT_EQ(NULL, kcalloc(SIZE_MAX / 2 + 1, 2, GFP_KERNEL | __GFP_NOWARN));
	EXPECT_EQ(NULL, kcalloc(2, SIZE_MAX / 2 + 1, GFP_KERNEL | __GFP_NOWARN));
	EXPECT_EQ(NULL, kcalloc(SIZE_MAX, SIZE_MAX, GFP_KERNEL | __GFP_NOWARN));
	EXPECT_EQ(NULL, kmalloc_array(SIZE_MAX / 2 + 1, 2,
				      GFP_KERNEL | __GFP_NOWARN));
	EXPECT_EQ(NULL, kmalloc_array((size_t)1 << 33, (size_t)1 << 31,
				      GFP_KERNEL | __GFP_NOWARN));
}

/* ---- krealloc --------------------------------------------------------- */

TEST(krealloc_grows_across_classes_keeping_contents)
{
	size_t size = 5, next;
	void *p = kmalloc(size, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	fill(p, size, 7);
	for (next = 8; next <= 2 * MiB; next = next * 2 + 3) {
		void *q = krealloc(p, next, GFP_KERNEL);

		ASSERT_NE(NULL, q) TH_LOG("krealloc to %zu", next);
		EXPECT_GE(ksize(q), next);
		ASSERT_EQ(size, check_fill(q, size, 7))
			TH_LOG("grown from %zu to %zu", size, next);
		p = q;
		size = next;
		fill(p, size, 7);
	}
	kfree(p);
}

TEST(krealloc_grows_into_large_sizes_keeping_contents)
{
	unsigned char *p = kmalloc(8192, GFP_KERNEL);
	unsigned char *q;

	ASSERT_NE(NULL, p);
	fill(p, 8192, 3);
	q = krealloc(p, 64 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(8192, check_fill(q, 8192, 3));
	memset(q + 8192, 0x11, 64 * MiB - 8192);
	kfree(q);
}

TEST(krealloc_shrinks_keeping_the_prefix)
{
	static const size_t sizes[] = {
		64 * MiB, 1 * MiB, 16 * KiB, 8192, 1000, 192, 100, 9, 1,
	};
	unsigned char *p = kmalloc(sizes[0], GFP_KERNEL);
	unsigned int i;

	ASSERT_NE(NULL, p);
	fill(p, sizes[0], 9);
	for (i = 1; i < ARRAY_SIZE(sizes); i++) {
		unsigned char *q = krealloc(p, sizes[i], GFP_KERNEL);

		ASSERT_NE(NULL, q) TH_LOG("krealloc to %zu", sizes[i]);
		EXPECT_GE(ksize(q), sizes[i]);
		ASSERT_EQ(sizes[i], check_fill(q, sizes[i], 9))
			TH_LOG("shrunk to %zu", sizes[i]);
		p = q;
	}
	kfree(p);
}

/* Large blocks grow and shrink by remapping, contents kept either way. */
TEST(krealloc_of_large_blocks_grows_and_shrinks_keeping_contents)
{
	static const size_t sizes[] = {
		300 * KiB, 1 * MiB, 1 * MiB + 1, 5 * MiB, 48 * MiB, 3 * MiB,
		700 * KiB, 2 * MiB, 260 * KiB,
	};
	size_t have = sizes[0];
	unsigned char *p = kmalloc(have, GFP_KERNEL);
	unsigned int i;

	ASSERT_NE(NULL, p);
	fill(p, have, 21);
	for (i = 1; i < ARRAY_SIZE(sizes); i++) {
		size_t keep = have < sizes[i] ? have : sizes[i];
		unsigned char *q = krealloc(p, sizes[i], GFP_KERNEL);

		ASSERT_NE(NULL, q) TH_LOG("krealloc to %zu", sizes[i]);
		ASSERT_GE(ksize(q), sizes[i]);
		ASSERT_EQ(keep, check_fill(q, keep, 21))
			TH_LOG("%zu -> %zu", have, sizes[i]);
		/* the whole of the new size is usable */
		fill(q, sizes[i], 21);
		have = sizes[i];
		p = q;
	}
	kfree(p);
}

/* Shrinking a large block far gives its memory back. */
TEST(krealloc_shrinking_a_large_block_gives_memory_back)
{
	unsigned char *big = kmalloc(64 * MiB, GFP_KERNEL), *p;
	long before, after;

	ASSERT_NE(NULL, big);
	memset(big, 0x5a, 64 * MiB);
	before = resident_bytes();
	p = krealloc(big, 2 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	after = resident_bytes();
	EXPECT_GE(before - after, (long)(56 * MiB))
		TH_LOG("resident KiB before %ld, after %ld", before >> 10,
		       after >> 10);
	EXPECT_LT(ksize(p), 4 * MiB);
	EXPECT_EQ(0x5a, p[2 * MiB - 1]);
	kfree(p);
}

/* kzalloc() of a reused large block is zero, all of ksize(). */
TEST(kzalloc_of_a_reused_large_block_is_zero)
{
	unsigned char *p = kmalloc(3 * MiB, GFP_KERNEL), *q;

	ASSERT_NE(NULL, p);
	memset(p, 0xee, ksize(p));
	kfree(p);
	q = kzalloc(3 * MiB - 100, GFP_KERNEL);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(p, q);
	EXPECT_EQ(ksize(q), first_nonzero(q, ksize(q)));
	kfree(q);
}

TEST(krealloc_within_ksize_keeps_contents)
{
	void *p = kmalloc(100, GFP_KERNEL);
	void *q;

	ASSERT_NE(NULL, p);
	fill(p, 100, 1);
	q = krealloc(p, ksize(p), GFP_KERNEL);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(100, check_fill(q, 100, 1));
	kfree(q);
}

TEST(krealloc_null_acts_as_kmalloc)
{
	void *p = krealloc(NULL, 300, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	EXPECT_GE(ksize(p), 300);
	memset(p, 0x12, 300);
	kfree(p);
	p = krealloc(NULL, 2 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	memset(p, 0x12, 2 * MiB);
	kfree(p);
}

TEST(krealloc_to_zero_frees_and_returns_zero_size_ptr)
{
	struct stderr_capture cap;
	void *small = kmalloc(64, GFP_KERNEL);
	void *large = kmalloc(1 * MiB, GFP_KERNEL);
	void *a, *b;

	ASSERT_NE(NULL, small);
	ASSERT_NE(NULL, large);
	stderr_capture_begin(&cap);
	a = krealloc(small, 0, GFP_KERNEL);
	b = krealloc(large, 0, GFP_KERNEL);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	EXPECT_EQ(ZERO_SIZE_PTR, a);
	EXPECT_EQ(ZERO_SIZE_PTR, b);
	kfree(a);
	kfree(b);
}

TEST(krealloc_failure_returns_null_and_keeps_original)
{
	static const size_t sizes[] = { 64, 8192, 1 * MiB };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		void *p = kmalloc(sizes[i], GFP_KERNEL);
		void *q;

		ASSERT_NE(NULL, p);
		fill(p, sizes[i], 5);
		q = krealloc(p, SIZE_MAX / 2, GFP_KERNEL | __GFP_NOWARN);
		EXPECT_EQ(NULL, q);
		EXPECT_EQ(sizes[i], check_fill(p, sizes[i], 5));
		EXPECT_GE(ksize(p), sizes[i]);
		/* Still a live object that frees normally. */
		kfree(p);
	}
}

/* ---- duplication ------------------------------------------------------ */

TEST(kstrdup_copies_the_string)
{
	char src[] = "the quick brown fox";
	char *dup = kstrdup(src, GFP_KERNEL);

	ASSERT_NE(NULL, dup);
	EXPECT_NE((char *)src, dup);
	EXPECT_STREQ(src, dup);
	EXPECT_GE(ksize(dup), sizeof(src));
	src[0] = 'T';
	EXPECT_STREQ("the quick brown fox", dup);
	kfree(dup);

	dup = kstrdup("", GFP_KERNEL);
	ASSERT_NE(NULL, dup);
	EXPECT_STREQ("", dup);
	kfree(dup);
}

TEST(kstrdup_of_null_returns_null)
{
	EXPECT_EQ(NULL, kstrdup(NULL, GFP_KERNEL));
}

TEST(kmemdup_copies_bytes_including_nul)
{
	static const size_t lens[] = { 1, 17, 4096, 100000, 3 * MiB };
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(lens); i++) {
		unsigned char *src = malloc(lens[i]);
		unsigned char *dup;

		ASSERT_NE(NULL, src);
		fill(src, lens[i], 11);
		src[0] = 0;
		dup = kmemdup(src, lens[i], GFP_KERNEL);
		ASSERT_NE(NULL, dup);
		EXPECT_GE(ksize(dup), lens[i]);
		EXPECT_EQ(0, memcmp(src, dup, lens[i]));
		kfree(dup);
		free(src);
	}
}

/* ---- kfree on everything ---------------------------------------------- */

TEST(kfree_frees_objects_of_named_caches)
{
	struct kmem_cache_info info;
	struct stderr_capture cap;
	struct kmem_cache *s;
	void *objs[100];
	unsigned int i;

	s = kmem_cache_create("kfree_target", 72, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	EXPECT_GE(ksize(objs[0]), 72);
	stderr_capture_begin(&cap);
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kfree(objs[i]);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	EXPECT_EQ(0, info.active_objs);
	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
}

/* Runs kfree(@p) and returns what kslab said about it. */
static const char *kfree_captured(const void *p, struct stderr_capture *cap)
{
	stderr_capture_begin(cap);
	kfree(p);
	return stderr_capture_end(cap);
}

/* True when @p is still a live 64-byte object: nobody is handed it. */
static bool still_allocated(const unsigned char *p, unsigned int seed)
{
	void *others[2000];
	bool ok = check_fill(p, 64, seed) == 64;
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(others); i++) {
		others[i] = kmalloc(64, GFP_KERNEL);
		if (!others[i] || others[i] == p)
			ok = false;
		else
			memset(others[i], 0, 64);
	}
	if (check_fill(p, 64, seed) != 64)
		ok = false;
	for (i = 0; i < ARRAY_SIZE(others); i++)
		kfree(others[i]);
	return ok;
}

TEST(kfree_of_stack_address_is_reported_invalid_and_ignored)
{
	struct stderr_capture cap;
	char on_stack[64];

	strcpy(on_stack, "still here");
	EXPECT_TEXT_CONTAINS(kfree_captured(on_stack, &cap), "invalid");
	stderr_capture_release(&cap);
	EXPECT_STREQ("still here", on_stack);
}

TEST(kfree_of_malloc_pointer_is_reported_invalid_and_ignored)
{
	struct stderr_capture cap;
	char *m = malloc(64);

	ASSERT_NE(NULL, m);
	strcpy(m, "libc owns this");
	EXPECT_TEXT_CONTAINS(kfree_captured(m, &cap), "invalid");
	stderr_capture_release(&cap);
	EXPECT_STREQ("libc owns this", m);
	free(m);
}

TEST(kfree_of_interior_pointer_is_reported_and_object_stays_allocated)
{
	struct stderr_capture cap;
	unsigned char *p = kmalloc(64, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	fill(p, 64, 21);
	EXPECT_TEXT_CONTAINS(kfree_captured(p + 8, &cap), "invalid");
	stderr_capture_release(&cap);
	EXPECT_TRUE(still_allocated(p, 21));
	EXPECT_TEXT_EMPTY(kfree_captured(p, &cap));
	stderr_capture_release(&cap);
}

/* A large block freed twice is reported the second time, not reused twice. */
TEST(large_block_freed_twice_is_reported_and_stays_free_once)
{
	struct stderr_capture cap;
	unsigned char *p = kmalloc(1 * MiB, GFP_KERNEL), *a, *b;

	ASSERT_NE(NULL, p);
	EXPECT_TEXT_EMPTY(kfree_captured(p, &cap));
	stderr_capture_release(&cap);
	EXPECT_TEXT_CONTAINS(kfree_captured(p, &cap), "invalid");
	stderr_capture_release(&cap);
	a = kmalloc(1 * MiB, GFP_KERNEL);
	b = kmalloc(1 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_NE(a, b);
	kfree(a);
	kfree(b);
}

TEST(kfree_of_interior_pointer_of_large_allocation_is_reported)
{
	struct stderr_capture cap;
	unsigned char *p = kmalloc(1 * MiB, GFP_KERNEL);

	ASSERT_NE(NULL, p);
	fill(p, 1 * MiB, 4);
	EXPECT_TEXT_CONTAINS(kfree_captured(p + 64 * KiB, &cap), "invalid");
	stderr_capture_release(&cap);
	EXPECT_EQ(1 * MiB, check_fill(p, 1 * MiB, 4));
	EXPECT_GE(ksize(p), 1 * MiB);
	EXPECT_TEXT_EMPTY(kfree_captured(p, &cap));
	stderr_capture_release(&cap);
}

TEST(program_carries_on_after_invalid_kfrees)
{
	struct stderr_capture cap;
	char on_stack[32];
	char *m = malloc(32);
	void *objs[1000];
	unsigned int i;

	ASSERT_NE(NULL, m);
	stderr_capture_begin(&cap);
	for (i = 0; i < 10; i++) {
		kfree(on_stack);
		kfree(m);
	}
	stderr_capture_end(&cap);
	stderr_capture_release(&cap);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmalloc(32, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		ASSERT_NE((void *)on_stack, objs[i]);
		ASSERT_NE((void *)m, objs[i]);
		fill(objs[i], 32, i);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		EXPECT_EQ(32, check_fill(objs[i], 32, i));
		kfree(objs[i]);
	}
	free(m);
}

TEST_HARNESS_MAIN
