// SPDX-License-Identifier: MIT
/*
 * Object caches: kmem_cache_create() argument checking and SLAB_PANIC,
 * the name copy, allocation, zeroing, constructors (run once per object,
 * never on reuse), alignment (explicit and SLAB_HWCACHE_ALIGN), bulk
 * allocation and freeing, shrink, the numbers get_info() reports, and the
 * reports kslab prints for a free into the wrong cache and for destroying a
 * cache that still has live objects.
 *
 * Every test runs in its own process (the harness forks), so each starts
 * with an allocator that has no caches of its own.
 */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
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

#define CACHE_LINE	64

static size_t active_objs(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	if (kmem_cache_get_info(s, &info))
		return (size_t)-1;
	return info.active_objs;
}

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void * const *)a;
	uintptr_t y = (uintptr_t)*(void * const *)b;

	return x < y ? -1 : x > y;
}

/* Index of the first pair of objects that overlap, or -1 when none do. */
static long find_overlap(void **objs, size_t nr, size_t size)
{
	size_t i;

	qsort(objs, nr, sizeof(*objs), cmp_ptr);
	for (i = 1; i < nr; i++)
		if ((uintptr_t)objs[i - 1] + size > (uintptr_t)objs[i])
			return (long)i;
	return -1;
}

/* ---- creation and introspection ---------------------------------------- */

TEST(create_returns_cache_with_given_name)
{
	struct kmem_cache *s = kmem_cache_create("test_named", 40, 0, 0, NULL);

	ASSERT_NE(NULL, s);
	EXPECT_STREQ("test_named", kmem_cache_name(s));
	kmem_cache_destroy(s);
}

TEST(create_copies_name_from_caller_buffer)
{
	char name[32] = "copied_name";
	struct kmem_cache_info info;
	struct kmem_cache *s;

	s = kmem_cache_create(name, 40, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	ASSERT_NE((const char *)name, kmem_cache_name(s));
	memset(name, 'X', sizeof(name) - 1);
	EXPECT_STREQ("copied_name", kmem_cache_name(s));
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	EXPECT_STREQ("copied_name", info.name);
	kmem_cache_destroy(s);
}

TEST(cache_size_is_at_least_requested_size)
{
	static const unsigned int sizes[] = {
		1, 7, 8, 13, 24, 40, 100, 250, 1000, 4000, 5000, 10000,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(sizes); i++) {
		struct kmem_cache *s;

		s = kmem_cache_create("test_size", sizes[i], 0, 0, NULL);
		ASSERT_NE(NULL, s);
		EXPECT_GE(kmem_cache_size(s), sizes[i]);
		kmem_cache_destroy(s);
	}
}

TEST(get_info_reports_name_and_object_size)
{
	struct kmem_cache_info info;
	struct kmem_cache *s;

	s = kmem_cache_create("test_info", 72, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	memset(&info, 0, sizeof(info));
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	ASSERT_NE(NULL, info.name);
	EXPECT_STREQ("test_info", info.name);
	EXPECT_GE(info.object_size, 72);
	EXPECT_EQ(kmem_cache_size(s), info.object_size);
	EXPECT_EQ(0, info.active_objs);
	EXPECT_EQ(0, info.pending_rcu);
	kmem_cache_destroy(s);
}

TEST(get_info_counts_active_objects_exactly)
{
	struct kmem_cache *s;
	void *objs[1000];
	size_t i;

	s = kmem_cache_create("test_active", 56, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	objs[0] = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, objs[0]);
	EXPECT_EQ(1, active_objs(s));
	for (i = 1; i < 10; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	EXPECT_EQ(10, active_objs(s));
	for (; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	EXPECT_EQ(ARRAY_SIZE(objs), active_objs(s));
	for (i = 0; i < 300; i++)
		kmem_cache_free(s, objs[i]);
	EXPECT_EQ(ARRAY_SIZE(objs) - 300, active_objs(s));
	for (i = 0; i < 300; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	EXPECT_EQ(ARRAY_SIZE(objs), active_objs(s));
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

TEST(get_info_reports_slabs_while_objects_live)
{
	struct kmem_cache_info info;
	struct kmem_cache *s;
	void *objs[2000];
	size_t i;

	s = kmem_cache_create("test_slabs", 48, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	EXPECT_EQ(ARRAY_SIZE(objs), info.active_objs);
	EXPECT_GT(info.slabs, 0);
	EXPECT_GE(info.total_objs, info.active_objs);
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

TEST(kmem_cache_macro_uses_struct_name_size_and_alignment)
{
	struct kslab_test_item {
		_Alignas(32) long key;
		char payload[40];
	};
	struct kmem_cache_info info;
	struct kmem_cache *s;
	void *objs[64];
	size_t i;

	s = KMEM_CACHE(kslab_test_item, 0);
	ASSERT_NE(NULL, s);
	EXPECT_STREQ("kslab_test_item", kmem_cache_name(s));
	EXPECT_GE(kmem_cache_size(s), sizeof(struct kslab_test_item));
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	EXPECT_STREQ("kslab_test_item", info.name);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		EXPECT_EQ(0, (uintptr_t)objs[i] % 32);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

TEST(slab_panic_with_valid_arguments_creates_cache)
{
	struct kmem_cache *s;

	s = kmem_cache_create("test_panic_ok", 64, 0, SLAB_PANIC, NULL);
	ASSERT_NE(NULL, s);
	kmem_cache_destroy(s);
}

TEST(every_documented_flag_is_accepted)
{
	static const slab_flags_t flags[] = {
		SLAB_HWCACHE_ALIGN, SLAB_TYPESAFE_BY_RCU, SLAB_POISON,
		SLAB_RED_ZONE, SLAB_STORE_USER, SLAB_CONSISTENCY_CHECKS,
		SLAB_PANIC, SLAB_NO_MERGE,
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(flags); i++) {
		struct kmem_cache *s;
		void *obj;

		s = kmem_cache_create("test_flag", 48, 0, flags[i], NULL);
		ASSERT_NE(NULL, s) TH_LOG("flag %#x rejected", flags[i]);
		obj = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, obj);
		memset(obj, 0x5a, 48);
		kmem_cache_free(s, obj);
		kmem_cache_destroy(s);
	}
}

/* ---- bad arguments ------------------------------------------------------ */

#define EXPECT_CREATE_EINVAL(name, size, align, flags) do {		\
	struct kmem_cache *__s;						\
	errno = 0;							\
	__s = kmem_cache_create((name), (size), (align), (flags), NULL);	\
	EXPECT_EQ(NULL, __s);						\
	EXPECT_EQ(EINVAL, errno);					\
} while (0)

TEST(create_rejects_null_name)
{
	EXPECT_CREATE_EINVAL(NULL, 64, 0, 0);
}

TEST(create_rejects_empty_name)
{
	EXPECT_CREATE_EINVAL("", 64, 0, 0);
}

TEST(create_rejects_zero_size)
{
	EXPECT_CREATE_EINVAL("test_zero", 0, 0, 0);
}

TEST(create_rejects_size_too_large_for_a_slab)
{
	EXPECT_CREATE_EINVAL("test_huge", 1U << 30, 0, 0);
	EXPECT_CREATE_EINVAL("test_huge", UINT32_MAX, 0, 0);
}

TEST(create_rejects_align_not_power_of_two)
{
	EXPECT_CREATE_EINVAL("test_align", 64, 3, 0);
	EXPECT_CREATE_EINVAL("test_align", 64, 24, 0);
}

TEST(create_rejects_unknown_flag_bits)
{
	EXPECT_CREATE_EINVAL("test_flags", 64, 0, 0x80000000u);
	EXPECT_CREATE_EINVAL("test_flags", 64, 0,
			     SLAB_HWCACHE_ALIGN | 0x80000000u);
}

struct bad_create {
	const char *what;
	const char *name;
	unsigned int size;
	unsigned int align;
	slab_flags_t flags;
};

/*
 * Runs one bad kmem_cache_create() with SLAB_PANIC in a child.  Returns the
 * child's wait status, or -1 when it had to be killed.
 */
static int create_in_child(const struct bad_create *bad, struct stderr_capture *cap)
{
	int status = 0;
	pid_t pid;

	fflush(stdout);
	stderr_capture_begin(cap);
	pid = fork();
	if (pid == 0) {
		struct kmem_cache *s;

		s = kmem_cache_create(bad->name, bad->size, bad->align,
				      bad->flags | SLAB_PANIC, NULL);
		/* Still here: SLAB_PANIC did not abort. */
		_exit(s ? 3 : 2);
	}
	if (pid < 0 || wait_child(pid, 20000, &status))
		status = -1;
	stderr_capture_end(cap);
	return status;
}

TEST(slab_panic_aborts_on_every_bad_argument)
{
	static const struct bad_create cases[] = {
		{ "NULL name", NULL, 64, 0, 0 },
		{ "empty name", "", 64, 0, 0 },
		{ "size 0", "test_panic", 0, 0, 0 },
		{ "size 1 GiB", "test_panic", 1U << 30, 0, 0 },
		{ "align 3", "test_panic", 64, 3, 0 },
		{ "unknown flag", "test_panic", 64, 0, 0x80000000u },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct stderr_capture cap;
		int status = create_in_child(&cases[i], &cap);

		EXPECT_NE(-1, status) TH_LOG("%s: child hung", cases[i].what);
		EXPECT_TRUE(WIFSIGNALED(status))
			TH_LOG("%s: child did not die of a signal (status %#x)",
			       cases[i].what, status);
		if (WIFSIGNALED(status)) {
			EXPECT_EQ(SIGABRT, WTERMSIG(status))
				TH_LOG("%s", cases[i].what);
		}
		/* "abort with a message": something was said first. */
		EXPECT_NE(0, cap.len) TH_LOG("%s: aborted silently", cases[i].what);
		stderr_capture_release(&cap);
	}
}

/* ---- allocation ------------------------------------------------------- */

TEST(alloc_returns_distinct_non_overlapping_writable_objects)
{
	enum { NR = 10000 };
	struct kmem_cache *s;
	unsigned int size;
	void **objs;
	size_t i, j;

	s = kmem_cache_create("test_distinct", 120, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	size = kmem_cache_size(s);
	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		ASSERT_EQ(0, (uintptr_t)objs[i] % sizeof(void *));
		memset(objs[i], (int)(i & 0xff), size);
	}
	for (i = 0; i < NR; i++) {
		unsigned char *p = objs[i];

		for (j = 0; j < size; j++)
			if (p[j] != (unsigned char)(i & 0xff))
				break;
		ASSERT_EQ(size, j) TH_LOG("object %zu overwritten", i);
	}
	EXPECT_EQ(-1, find_overlap(objs, NR, size));
	for (i = 0; i < NR; i++)
		kmem_cache_free(s, objs[i]);
	EXPECT_EQ(0, active_objs(s));
	free(objs);
	kmem_cache_destroy(s);
}

TEST(zalloc_returns_zeroed_object_even_on_reuse)
{
	struct kmem_cache *s;
	unsigned char *objs[256];
	unsigned int size, i, j;

	s = kmem_cache_create("test_zalloc", 200, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	size = kmem_cache_size(s);
	/* Dirty a batch of objects so the zeroed ones are likely reused. */
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], 0xa5, size);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_zalloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		for (j = 0; j < size; j++)
			if (objs[i][j])
				break;
		ASSERT_EQ(size, j) TH_LOG("object %u byte %u not zero", i, j);
		memset(objs[i], 0xa5, size);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

TEST(gfp_zero_returns_zeroed_object_even_on_reuse)
{
	struct kmem_cache *s;
	unsigned char *objs[256];
	unsigned int size, i, j;

	s = kmem_cache_create("test_gfp_zero", 100, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	size = kmem_cache_size(s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], 0xff, size);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL | __GFP_ZERO);
		ASSERT_NE(NULL, objs[i]);
		for (j = 0; j < size; j++)
			if (objs[i][j])
				break;
		ASSERT_EQ(size, j) TH_LOG("object %u byte %u not zero", i, j);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

TEST(nowait_and_atomic_allocations_succeed_when_memory_is_plentiful)
{
	struct kmem_cache *s;
	void *a, *b;

	s = kmem_cache_create("test_atomic", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	a = kmem_cache_alloc(s, GFP_NOWAIT);
	b = kmem_cache_alloc(s, GFP_ATOMIC);
	/* They may fail by contract, but not with nothing else going on. */
	EXPECT_NE(NULL, a);
	EXPECT_NE(NULL, b);
	EXPECT_NE(a, b);
	kmem_cache_free(s, a);
	kmem_cache_free(s, b);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

/* ---- constructors ------------------------------------------------------ */

#define CTOR_SIZE	96
#define CTOR_MAGIC	0xc7

static unsigned long ctor_calls;

static void counting_ctor(void *obj)
{
	__atomic_fetch_add(&ctor_calls, 1, __ATOMIC_RELAXED);
	memset(obj, CTOR_MAGIC, CTOR_SIZE);
}

static unsigned long ctor_count(void)
{
	return __atomic_load_n(&ctor_calls, __ATOMIC_RELAXED);
}

static bool has_ctor_pattern(const unsigned char *obj)
{
	unsigned int i;

	for (i = 0; i < CTOR_SIZE; i++)
		if (obj[i] != CTOR_MAGIC)
			return false;
	return true;
}

TEST(ctor_runs_once_per_object_not_on_reuse)
{
	enum { NR = 3000 };
	struct kmem_cache_info info;
	struct kmem_cache *s;
	unsigned long first;
	void **objs;
	size_t i;

	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_ctor", CTOR_SIZE, 0, 0, counting_ctor);
	ASSERT_NE(NULL, s);
	EXPECT_EQ(0, ctor_count());
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	first = ctor_count();
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	/* Each object carved so far was constructed, and only once. */
	EXPECT_GE(first, NR);
	EXPECT_LE(first, info.total_objs);

	for (i = 0; i < NR; i++)
		kmem_cache_free(s, objs[i]);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	EXPECT_EQ(first, ctor_count());
	for (i = 0; i < NR; i++)
		kmem_cache_free(s, objs[i]);
	free(objs);
	kmem_cache_destroy(s);
}

TEST(ctor_content_survives_free_and_alloc_round_trip)
{
	enum { NR = 2000 };
	struct kmem_cache *s;
	void **objs;
	size_t i;

	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_ctor_keep", CTOR_SIZE, 0, 0, counting_ctor);
	ASSERT_NE(NULL, s);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		ASSERT_TRUE(has_ctor_pattern(objs[i]))
			TH_LOG("fresh object %zu not constructed", i);
	}
	/* Free in a different order from allocation, then reuse. */
	for (i = 0; i < NR; i += 2)
		kmem_cache_free(s, objs[i]);
	for (i = 1; i < NR; i += 2)
		kmem_cache_free(s, objs[i]);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		ASSERT_TRUE(has_ctor_pattern(objs[i]))
			TH_LOG("reused object %zu lost its constructed state", i);
	}
	for (i = 0; i < NR; i++)
		kmem_cache_free(s, objs[i]);
	free(objs);
	kmem_cache_destroy(s);
}

/* ---- alignment -------------------------------------------------------- */

TEST(align_argument_is_honoured_for_every_power_of_two)
{
	unsigned int align;

	for (align = 1; align <= 4096; align <<= 1) {
		static const unsigned int sizes[] = { 8, 24, 100, 700 };
		unsigned int k;

		for (k = 0; k < ARRAY_SIZE(sizes); k++) {
			unsigned int want = align < sizeof(void *) ?
					    sizeof(void *) : align;
			struct kmem_cache *s;
			void *objs[40];
			unsigned int i;

			s = kmem_cache_create("test_align", sizes[k], align, 0,
					      NULL);
			ASSERT_NE(NULL, s) TH_LOG("align %u size %u",
						  align, sizes[k]);
			for (i = 0; i < ARRAY_SIZE(objs); i++) {
				objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
				ASSERT_NE(NULL, objs[i]);
				EXPECT_EQ(0, (uintptr_t)objs[i] % want)
					TH_LOG("align %u size %u: %p", align,
					       sizes[k], objs[i]);
				memset(objs[i], 0x11, sizes[k]);
			}
			for (i = 0; i < ARRAY_SIZE(objs); i++)
				kmem_cache_free(s, objs[i]);
			kmem_cache_destroy(s);
		}
	}
}

TEST(zero_align_gives_at_least_pointer_alignment)
{
	unsigned int size;

	for (size = 1; size <= 33; size++) {
		struct kmem_cache *s;
		void *objs[32];
		unsigned int i;

		s = kmem_cache_create("test_align0", size, 0, 0, NULL);
		ASSERT_NE(NULL, s);
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			EXPECT_EQ(0, (uintptr_t)objs[i] % sizeof(void *))
				TH_LOG("size %u: %p", size, objs[i]);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kmem_cache_free(s, objs[i]);
		kmem_cache_destroy(s);
	}
}

TEST(hwcache_align_puts_objects_over_half_a_line_on_line_boundary)
{
	static const unsigned int sizes[] = { 33, 40, 63, 64, 65, 100, 200, 1000 };
	unsigned int k;

	for (k = 0; k < ARRAY_SIZE(sizes); k++) {
		struct kmem_cache *s;
		void *objs[100];
		unsigned int i;

		s = kmem_cache_create("test_hwalign", sizes[k], 0,
				      SLAB_HWCACHE_ALIGN, NULL);
		ASSERT_NE(NULL, s);
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			EXPECT_EQ(0, (uintptr_t)objs[i] % CACHE_LINE)
				TH_LOG("size %u: %p", sizes[k], objs[i]);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kmem_cache_free(s, objs[i]);
		kmem_cache_destroy(s);
	}
}

TEST(hwcache_align_small_objects_never_straddle_a_line)
{
	unsigned int size;

	for (size = 1; size <= 32; size++) {
		struct kmem_cache *s;
		void *objs[200];
		unsigned int i;

		s = kmem_cache_create("test_hwsmall", size, 0,
				      SLAB_HWCACHE_ALIGN, NULL);
		ASSERT_NE(NULL, s);
		for (i = 0; i < ARRAY_SIZE(objs); i++) {
			uintptr_t off;

			objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
			ASSERT_NE(NULL, objs[i]);
			off = (uintptr_t)objs[i] % CACHE_LINE;
			EXPECT_LE(off + size, CACHE_LINE)
				TH_LOG("size %u straddles: %p", size, objs[i]);
		}
		for (i = 0; i < ARRAY_SIZE(objs); i++)
			kmem_cache_free(s, objs[i]);
		kmem_cache_destroy(s);
	}
}

/* ---- bulk ------------------------------------------------------------- */

TEST(alloc_bulk_returns_nr_distinct_usable_objects)
{
	enum { NR = 500 };
	struct kmem_cache *s;
	void *objs[NR];
	unsigned int size;
	size_t i, j;

	s = kmem_cache_create("test_bulk", 88, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	size = kmem_cache_size(s);
	memset(objs, 0, sizeof(objs));
	ASSERT_EQ(NR, kmem_cache_alloc_bulk(s, GFP_KERNEL, NR, objs));
	EXPECT_EQ(NR, active_objs(s));
	for (i = 0; i < NR; i++) {
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], (int)(i & 0xff), size);
	}
	for (i = 0; i < NR; i++) {
		unsigned char *p = objs[i];

		for (j = 0; j < size; j++)
			if (p[j] != (unsigned char)(i & 0xff))
				break;
		EXPECT_EQ(size, j) TH_LOG("bulk object %zu overwritten", i);
	}
	kmem_cache_free_bulk(s, NR, objs);
	EXPECT_EQ(0, active_objs(s));
	/* The array was sorted by the overlap check; reuse it. */
	ASSERT_EQ(NR, kmem_cache_alloc_bulk(s, GFP_KERNEL, NR, objs));
	EXPECT_EQ(-1, find_overlap(objs, NR, size));
	kmem_cache_free_bulk(s, NR, objs);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

TEST(alloc_bulk_beyond_int_max_fails_without_allocating)
{
	struct kmem_cache *s;
	void *objs[4] = { NULL };

	s = kmem_cache_create("test_bulk_huge", 32, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	/* nr cannot be returned as an int: 0 at once, @p untouched */
	EXPECT_EQ(0, kmem_cache_alloc_bulk(s, GFP_KERNEL, (size_t)INT_MAX + 1,
					   objs));
	EXPECT_EQ(NULL, objs[0]);
	EXPECT_EQ(0, active_objs(s));
	EXPECT_EQ(0, kmem_cache_alloc_bulk(s, GFP_KERNEL, 0, objs));
	kmem_cache_destroy(s);
}

TEST(free_bulk_returns_objects_to_their_cache)
{
	struct kmem_cache *s;
	void *objs[300];
	size_t i;

	s = kmem_cache_create("test_free_bulk", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	kmem_cache_free_bulk(s, 100, objs);
	EXPECT_EQ(200, active_objs(s));
	kmem_cache_free_bulk(s, 200, objs + 100);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

TEST(free_bulk_with_null_cache_handles_objects_of_two_caches)
{
	struct kmem_cache *a, *b;
	struct stderr_capture cap;
	void *objs[400];
	size_t i;

	a = kmem_cache_create("test_bulk_a", 40, 0, 0, NULL);
	b = kmem_cache_create("test_bulk_b", 300, 0, 0, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(i % 3 ? a : b, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	ASSERT_EQ(266, active_objs(a));
	ASSERT_EQ(134, active_objs(b));
	stderr_capture_begin(&cap);
	kmem_cache_free_bulk(NULL, ARRAY_SIZE(objs), objs);
	stderr_capture_end(&cap);
	EXPECT_TEXT_EMPTY(cap.text ? cap.text : "");
	stderr_capture_release(&cap);
	EXPECT_EQ(0, active_objs(a));
	EXPECT_EQ(0, active_objs(b));
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}

/* ---- shrink ---------------------------------------------------------- */

TEST(shrink_returns_zero_when_no_objects_live)
{
	enum { NR = 5000 };
	struct kmem_cache_info info;
	struct kmem_cache *s;
	void **objs;
	size_t i;

	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_shrink", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	for (i = 0; i < NR; i++)
		kmem_cache_free(s, objs[i]);
	EXPECT_EQ(0, kmem_cache_shrink(s));
	ASSERT_EQ(0, kmem_cache_get_info(s, &info));
	EXPECT_EQ(0, info.active_objs);
	EXPECT_EQ(0, info.slabs);
	/* The cache still works after giving everything back. */
	objs[0] = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, objs[0]);
	memset(objs[0], 1, 64);
	kmem_cache_free(s, objs[0]);
	free(objs);
	kmem_cache_destroy(s);
}

TEST(shrink_returns_nonzero_while_objects_live)
{
	enum { NR = 5000 };
	struct kmem_cache *s;
	void **objs;
	size_t i;

	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_shrink_live", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], 0x3c, 64);
	}
	/* Keep every 100th object: each slab that holds one stays. */
	for (i = 0; i < NR; i++)
		if (i % 100)
			kmem_cache_free(s, objs[i]);
	EXPECT_NE(0, kmem_cache_shrink(s));
	EXPECT_EQ(NR / 100, active_objs(s));
	for (i = 0; i < NR; i += 100) {
		unsigned char *p = objs[i];

		EXPECT_TRUE(p[0] == 0x3c && p[63] == 0x3c)
			TH_LOG("live object %zu damaged by shrink", i);
		kmem_cache_free(s, objs[i]);
	}
	EXPECT_EQ(0, kmem_cache_shrink(s));
	free(objs);
	kmem_cache_destroy(s);
}

/* ---- NULL handling ---------------------------------------------------- */

TEST(destroy_null_is_a_silent_noop)
{
	struct stderr_capture cap;

	stderr_capture_begin(&cap);
	kmem_cache_destroy(NULL);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
}

TEST(free_null_is_a_silent_noop)
{
	struct stderr_capture cap;
	struct kmem_cache *s;
	void *obj;

	s = kmem_cache_create("test_free_null", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	obj = kmem_cache_alloc(s, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	stderr_capture_begin(&cap);
	kmem_cache_free(s, NULL);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	EXPECT_EQ(1, active_objs(s));
	kmem_cache_free(s, obj);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

TEST(destroy_of_cache_without_live_objects_prints_nothing)
{
	struct stderr_capture cap;
	struct kmem_cache *s;
	void *objs[100];
	size_t i;

	s = kmem_cache_create("test_destroy_clean", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	for (i = 0; i < ARRAY_SIZE(objs); i++)
		kmem_cache_free(s, objs[i]);
	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
}

/* ---- misuse reports --------------------------------------------------- */

TEST(free_into_wrong_cache_is_reported)
{
	struct kmem_cache *a, *b;
	struct stderr_capture cap;
	void *obj;

	a = kmem_cache_create("test_owner", 40, 0, 0, NULL);
	b = kmem_cache_create("test_other", 200, 0, 0, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	obj = kmem_cache_alloc(a, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	stderr_capture_begin(&cap);
	kmem_cache_free(b, obj);
	EXPECT_TEXT_CONTAINS(stderr_capture_end(&cap),
			     "belongs to different cache");
	stderr_capture_release(&cap);
	kmem_cache_free(a, obj);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}

TEST(free_into_wrong_cache_leaves_object_live_in_its_own_cache)
{
	struct kmem_cache *a, *b;
	struct stderr_capture cap;
	unsigned char *obj;

	a = kmem_cache_create("test_owner", 40, 0, 0, NULL);
	b = kmem_cache_create("test_other", 200, 0, 0, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	obj = kmem_cache_alloc(a, GFP_KERNEL);
	ASSERT_NE(NULL, obj);
	memset(obj, 0x77, 40);
	stderr_capture_begin(&cap);
	kmem_cache_free(b, obj);
	stderr_capture_end(&cap);
	stderr_capture_release(&cap);
	EXPECT_EQ(1, active_objs(a));
	EXPECT_EQ(0, active_objs(b));
	EXPECT_TRUE(obj[0] == 0x77 && obj[39] == 0x77);

	/* Freed into the right cache afterwards, it goes back quietly. */
	stderr_capture_begin(&cap);
	kmem_cache_free(a, obj);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	EXPECT_EQ(0, active_objs(a));
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
}

TEST(free_into_wrong_cache_corrupts_neither_cache)
{
	enum { NR = 1000 };
	struct kmem_cache *a, *b;
	struct stderr_capture cap;
	void *stray, **objs;
	size_t i;

	objs = calloc(NR, sizeof(*objs));
	ASSERT_NE(NULL, objs);
	a = kmem_cache_create("test_owner", 40, 0, 0, NULL);
	b = kmem_cache_create("test_other", 200, 0, 0, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	stray = kmem_cache_alloc(a, GFP_KERNEL);
	ASSERT_NE(NULL, stray);
	memset(stray, 0x42, 40);
	stderr_capture_begin(&cap);
	kmem_cache_free(b, stray);
	stderr_capture_end(&cap);
	stderr_capture_release(&cap);

	/* Neither cache may hand the stray object out again. */
	for (i = 0; i < NR; i++) {
		struct kmem_cache *s = i % 2 ? a : b;
		size_t size = kmem_cache_size(s);
		uintptr_t p;

		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		p = (uintptr_t)objs[i];
		ASSERT_FALSE(p < (uintptr_t)stray + 40 &&
			     (uintptr_t)stray < p + size)
			TH_LOG("object %zu overlaps the stray object", i);
		memset(objs[i], 0x99, size);
	}
	EXPECT_TRUE(((unsigned char *)stray)[0] == 0x42 &&
		    ((unsigned char *)stray)[39] == 0x42);
	EXPECT_EQ(NR / 2 + 1, active_objs(a));
	EXPECT_EQ(NR / 2, active_objs(b));
	for (i = 0; i < NR; i++)
		kmem_cache_free(i % 2 ? a : b, objs[i]);
	kmem_cache_free(a, stray);
	EXPECT_EQ(0, active_objs(a));
	EXPECT_EQ(0, active_objs(b));
	stderr_capture_begin(&cap);
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
	EXPECT_TEXT_EMPTY(stderr_capture_end(&cap));
	stderr_capture_release(&cap);
	free(objs);
}

TEST(destroy_with_live_objects_reports_bug_with_cache_name)
{
	struct stderr_capture cap;
	struct kmem_cache *s;
	char line[512];
	void *objs[3];
	size_t i;

	s = kmem_cache_create("leaky_cache", 64, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < ARRAY_SIZE(objs); i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	first_line(stderr_capture_end(&cap), line, sizeof(line));
	EXPECT_TEXT_CONTAINS(line, "BUG leaky_cache");
	EXPECT_TEXT_CONTAINS(line, "Objects remaining");
	stderr_capture_release(&cap);
}

TEST(destroy_with_live_objects_leaves_them_usable)
{
	enum { NR = 500 };
	struct stderr_capture cap;
	struct kmem_cache *s;
	unsigned char *objs[NR];
	size_t i, j;

	s = kmem_cache_create("leaky_usable", 128, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], (int)(i & 0xff), 128);
	}
	/* Free some so the cache has partial slabs too. */
	for (i = 0; i < NR; i += 3)
		kmem_cache_free(s, objs[i]);
	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	stderr_capture_end(&cap);
	EXPECT_TEXT_CONTAINS(cap.text ? cap.text : "", "Objects remaining");
	stderr_capture_release(&cap);

	for (i = 0; i < NR; i++) {
		if (i % 3 == 0)
			continue;
		for (j = 0; j < 128; j++)
			if (objs[i][j] != (unsigned char)(i & 0xff))
				break;
		EXPECT_EQ(128, j) TH_LOG("live object %zu damaged", i);
		memset(objs[i], 0xee, 128);
	}
	/*
	 * The allocator keeps working, and memory under the leaked objects is
	 * not handed to anyone else.
	 */
	s = kmem_cache_create("after_leak", 128, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	for (i = 0; i < NR; i += 3) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], 0x00, 128);
	}
	for (i = 0; i < NR; i++) {
		if (i % 3 == 0)
			continue;
		for (j = 0; j < 128; j++)
			if (objs[i][j] != 0xee)
				break;
		EXPECT_EQ(128, j) TH_LOG("leaked object %zu reused", i);
	}
	for (i = 0; i < NR; i += 3)
		kmem_cache_free(s, objs[i]);
	kmem_cache_destroy(s);
}

TEST_HARNESS_MAIN
