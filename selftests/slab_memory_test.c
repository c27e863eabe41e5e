// SPDX-License-Identifier: MIT
/*
 * Memory going back to the operating system and coming from it on demand:
 * resident memory (/proc/self/statm) drops after kmem_cache_shrink(), after
 * plain frees (kslab keeps only a small reserve of empty slabs), after
 * kmem_cache_destroy() and after kfree() of large and small kmalloc
 * objects; mincore() shows that no page of a shrunk or destroyed cache,
 * nor of a freed large allocation, stays resident; under an address-space
 * limit (RLIMIT_AS) allocations return NULL instead of crashing, bulk
 * allocation stays all-or-nothing, and the allocator is consistent again
 * once the limit is lifted.
 *
 * Sizes are fixed (64 MiB of objects) because the assertions are about
 * proportions of resident memory; nothing here measures time.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
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

#define KiB		(1UL << 10)
#define MiB		(1UL << 20)
#define OBJ_SIZE	64
#define NR_OBJS		(1UL << 20)	/* 64 MiB of 64-byte objects */

/*
 * An array for object pointers that lives outside kslab and is resident
 * before the first measurement, so it never shows up in a difference.
 */
static void **pointer_array(size_t nr, bool populate)
{
	void *p = mmap(NULL, nr * sizeof(void *), PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE |
		       (populate ? MAP_POPULATE : 0), -1, 0);

	if (p == MAP_FAILED)
		return NULL;
	if (populate)
		memset(p, 0, nr * sizeof(void *));
	return p;
}

static void free_pointer_array(void **a, size_t nr)
{
	munmap(a, nr * sizeof(void *));
}

static size_t active_objs(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	if (kmem_cache_get_info(s, &info))
		return (size_t)-1;
	return info.active_objs;
}

/* Allocates @nr objects and writes every byte, so they are resident. */
static bool fill_cache(struct kmem_cache *s, void **objs, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		if (!objs[i])
			return false;
		memset(objs[i], (int)(i | 1), OBJ_SIZE);
	}
	return true;
}

static void empty_cache(struct kmem_cache *s, void **objs, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		kmem_cache_free(s, objs[i]);
}

/* Resident memory before, at the peak and after, for one experiment. */
struct rss_sample {
	long before, peak, after;
};

static long rss_growth(const struct rss_sample *r)
{
	return r->peak - r->before;
}

static long rss_released(const struct rss_sample *r)
{
	return r->peak - r->after;
}

/* True when at least @percent of the growth went back; logs otherwise. */
static bool released_percent(const struct rss_sample *r, long percent)
{
	if (rss_released(r) * 100 >= rss_growth(r) * percent)
		return true;
	fprintf(stderr, "# resident KiB: before %ld, peak %ld, after %ld: released %ld%%, wanted %ld%%\n",
		r->before >> 10, r->peak >> 10, r->after >> 10,
		rss_growth(r) > 0 ? rss_released(r) * 100 / rss_growth(r) : 0,
		percent);
	return false;
}

/* The allocation must really have been resident for the test to mean much. */
static bool grew_by_at_least(const struct rss_sample *r, long bytes)
{
	if (rss_growth(r) >= bytes)
		return true;
	fprintf(stderr, "# resident memory only grew by %ld KiB\n",
		rss_growth(r) >> 10);
	return false;
}

/* ---- resident memory goes back --------------------------------------- */

TEST(shrink_returns_freed_slabs_to_the_os)
{
	struct rss_sample rss = { 0 };
	struct kmem_cache *s;
	void **objs;

	objs = pointer_array(NR_OBJS, true);
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_rss_shrink", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	rss.before = resident_bytes();
	ASSERT_TRUE(fill_cache(s, objs, NR_OBJS));
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 48 * MiB));

	empty_cache(s, objs, NR_OBJS);
	EXPECT_EQ(0, kmem_cache_shrink(s));
	rss.after = resident_bytes();
	EXPECT_TRUE(released_percent(&rss, 75));
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
	free_pointer_array(objs, NR_OBJS);
}

/* No shrink: the memory goes back by decay (Documentation/mm/slab.rst). */
TEST(freeing_everything_releases_most_memory_after_the_decay_period)
{
	struct rss_sample rss = { 0 };
	struct kmem_cache *s;
	void **objs;

	objs = pointer_array(NR_OBJS, true);
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_rss_free", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	rss.before = resident_bytes();
	ASSERT_TRUE(fill_cache(s, objs, NR_OBJS));
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 48 * MiB));

	empty_cache(s, objs, NR_OBJS);
	let_empty_slabs_decay();
	rss.after = resident_bytes();
	EXPECT_TRUE(released_percent(&rss, 50));
	kmem_cache_destroy(s);
	free_pointer_array(objs, NR_OBJS);
}

TEST(memory_freed_in_one_cache_is_reused_by_the_next_fill)
{
	struct rss_sample rss = { 0 };
	struct kmem_cache *s;
	void **objs;
	int round;

	objs = pointer_array(NR_OBJS / 2, true);
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_rss_reuse", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	rss.before = resident_bytes();
	ASSERT_TRUE(fill_cache(s, objs, NR_OBJS / 2));
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 24 * MiB));
	/* Fill and empty again and again: no growth beyond the first peak. */
	for (round = 0; round < 4; round++) {
		empty_cache(s, objs, NR_OBJS / 2);
		ASSERT_TRUE(fill_cache(s, objs, NR_OBJS / 2));
	}
	rss.after = resident_bytes();
	EXPECT_LE(rss.after - rss.before, rss_growth(&rss) * 5 / 4)
		TH_LOG("peak %ld KiB, after refills %ld KiB",
		       rss_growth(&rss) >> 10, (rss.after - rss.before) >> 10);
	empty_cache(s, objs, NR_OBJS / 2);
	kmem_cache_destroy(s);
	free_pointer_array(objs, NR_OBJS / 2);
}

TEST(destroy_returns_the_cache_memory_to_the_os)
{
	struct rss_sample rss = { 0 };
	struct kmem_cache *s;
	void **objs;

	objs = pointer_array(NR_OBJS, true);
	ASSERT_NE(NULL, objs);
	s = kmem_cache_create("test_rss_destroy", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	rss.before = resident_bytes();
	ASSERT_TRUE(fill_cache(s, objs, NR_OBJS));
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 48 * MiB));

	empty_cache(s, objs, NR_OBJS);
	kmem_cache_destroy(s);
	rss.after = resident_bytes();
	EXPECT_TRUE(released_percent(&rss, 75));
	free_pointer_array(objs, NR_OBJS);
}

/* A freed large block is kept for reuse, then purged by decay. */
#define TSAN_PURGE_SKIP \
	"TSan keeps the shadow of purged pages resident; mincore() checks them below"

TEST(large_kfree_returns_memory_to_the_os_after_the_decay_period)
{
	struct rss_sample rss = { 0 };
	void *p;

	if (KSLAB_TEST_TSAN)
		SKIP(return, TSAN_PURGE_SKIP);
	rss.before = resident_bytes();
	p = kmalloc(64 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	memset(p, 0x4c, 64 * MiB);
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 60 * MiB));
	kfree(p);
	let_empty_slabs_decay();
	rss.after = resident_bytes();
	EXPECT_TRUE(released_percent(&rss, 75));
}

/* Within the decay period the next block of the class reuses the pages. */
TEST(large_block_freed_is_reused_without_new_memory)
{
	struct rss_sample rss = { 0 };
	unsigned char *p, *q;

	p = kmalloc(8 * MiB, GFP_KERNEL);
	ASSERT_NE(NULL, p);
	memset(p, 0x3d, 8 * MiB);
	kfree(p);
	rss.before = resident_bytes();
	q = kmalloc(8 * MiB - 12345, GFP_KERNEL);
	ASSERT_NE(NULL, q);
	EXPECT_EQ(p, q);
	memset(q, 0x3e, 8 * MiB - 12345);
	rss.after = resident_bytes();
	EXPECT_LE(rss.after - rss.before, (long)(1 * MiB))
		TH_LOG("%ld KiB more resident", (rss.after - rss.before) >> 10);
	kfree(q);
}

TEST(repeated_large_kmalloc_does_not_accumulate)
{
	long before, after;
	int i;

	if (KSLAB_TEST_TSAN)
		SKIP(return, TSAN_PURGE_SKIP);
	before = resident_bytes();
	for (i = 0; i < 16; i++) {
		void *p = kmalloc(16 * MiB + (size_t)i * 4096, GFP_KERNEL);

		ASSERT_NE(NULL, p);
		memset(p, i, 16 * MiB);
		kfree(p);
	}
	after = resident_bytes();
	/*
	 * Freed blocks are kept for reuse until they decay: the sizes fall in
	 * two classes (16 MiB exactly, and just above), so 16 rounds keep at
	 * most those two blocks, not one per round.
	 */
	EXPECT_LE(after - before, (long)(2 * 16 * MiB + 2 * MiB))
		TH_LOG("%ld KiB left resident", (after - before) >> 10);
	let_empty_slabs_decay();
	after = resident_bytes();
	EXPECT_LE(after - before, (long)(2 * MiB))
		TH_LOG("%ld KiB left resident after the decay period",
		       (after - before) >> 10);
}

TEST(small_kmalloc_memory_is_mostly_returned_after_kfree)
{
	struct rss_sample rss = { 0 };
	void **objs;
	size_t i;

	objs = pointer_array(NR_OBJS, true);
	ASSERT_NE(NULL, objs);
	rss.before = resident_bytes();
	for (i = 0; i < NR_OBJS; i++) {
		objs[i] = kmalloc(OBJ_SIZE, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
		memset(objs[i], 0x3a, OBJ_SIZE);
	}
	rss.peak = resident_bytes();
	ASSERT_TRUE(grew_by_at_least(&rss, 48 * MiB));
	for (i = 0; i < NR_OBJS; i++)
		kfree(objs[i]);
	let_empty_slabs_decay();
	rss.after = resident_bytes();
	EXPECT_TRUE(released_percent(&rss, 50));
	free_pointer_array(objs, NR_OBJS);
}

/*
 * Regression: the decay pass once ran from a metadata allocation made
 * under a cache lock and took that lock again.  Make decay due, then
 * overflow magazines of another cache: it must simply finish.
 */
TEST(decay_due_while_magazines_overflow_does_not_deadlock)
{
	enum { NR = 20000, NR_B = 300 };
	struct kmem_cache *a, *b;
	void **objs, **objs_b;
	unsigned int i;

	objs = pointer_array(NR, false);
	objs_b = pointer_array(NR_B, false);
	ASSERT_NE(NULL, objs);
	ASSERT_NE(NULL, objs_b);
	a = kmem_cache_create("test_decay_a", 64, 0, 0, NULL);
	b = kmem_cache_create("test_decay_b", 64, 0, 0, NULL);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	for (i = 0; i < NR_B; i++) {
		objs_b[i] = kmem_cache_alloc(b, GFP_KERNEL);
		ASSERT_NE(NULL, objs_b[i]);
	}
	for (i = 0; i < NR; i++) {
		objs[i] = kmem_cache_alloc(a, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	for (i = 0; i < NR / 2; i++)
		kmem_cache_free(a, objs[i]);
	sleep_ms(700);
	for (i = 0; i < NR_B; i++)
		kmem_cache_free(b, objs_b[i]);
	for (i = NR / 2; i < NR; i++)
		kmem_cache_free(a, objs[i]);
	EXPECT_EQ(0, kmem_cache_shrink(a));
	EXPECT_EQ(0, kmem_cache_shrink(b));
	kmem_cache_destroy(a);
	kmem_cache_destroy(b);
	free_pointer_array(objs, NR);
	free_pointer_array(objs_b, NR_B);
}

/* ---- the pages themselves go back --------------------------------------- */

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t)*(void * const *)a;
	uintptr_t y = (uintptr_t)*(void * const *)b;

	return x < y ? -1 : x > y;
}

/*
 * Fills @pages with the distinct pages the objects lie on (sorted); returns
 * how many.  Each object is OBJ_SIZE bytes, so it may end on a second page.
 * Call it while the objects are live: qsort() may malloc(), and once slabs
 * go back, that memory can land on the very pages being checked.
 */
static size_t pages_of(void **objs, size_t nr, void **pages)
{
	uintptr_t mask = ~((uintptr_t)sysconf(_SC_PAGESIZE) - 1);
	size_t i, n = 0;

	for (i = 0; i < nr; i++) {
		pages[n++] = (void *)((uintptr_t)objs[i] & mask);
		pages[n++] = (void *)(((uintptr_t)objs[i] + OBJ_SIZE - 1) & mask);
	}
	qsort(pages, n, sizeof(*pages), cmp_ptr);
	for (i = 0, nr = 0; i < n; i++)
		if (!nr || pages[nr - 1] != pages[i])
			pages[nr++] = pages[i];
	return nr;
}

/* How many of @pages are resident; an unmapped page is not. */
static size_t resident_pages(void **pages, size_t nr)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t i, resident = 0;
	unsigned char vec;

	for (i = 0; i < nr; i++)
		if (!mincore(pages[i], page, &vec) && (vec & 1))
			resident++;
	return resident;
}

/*
 * RSS says how much came back; mincore() says which pages.  After a shrink
 * that reports every slab released, no page that held an object may still
 * be resident.  Nothing between the frees and mincore() may allocate.
 */
TEST(shrink_leaves_no_page_of_the_cache_resident)
{
	const size_t nr = 100000;
	size_t nr_pages, left;
	struct kmem_cache *s;
	void **objs, **pages;

	objs = pointer_array(nr, true);
	pages = pointer_array(2 * nr, true);
	ASSERT_NE(NULL, objs);
	ASSERT_NE(NULL, pages);
	s = kmem_cache_create("test_pages_shrink", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	ASSERT_TRUE(fill_cache(s, objs, nr));
	nr_pages = pages_of(objs, nr, pages);
	empty_cache(s, objs, nr);
	ASSERT_EQ(0, kmem_cache_shrink(s));
	left = resident_pages(pages, nr_pages);
	EXPECT_EQ(0, left) TH_LOG("%zu of %zu pages still resident",
				  left, nr_pages);
	kmem_cache_destroy(s);
	free_pointer_array(objs, nr);
	free_pointer_array(pages, 2 * nr);
}

TEST(destroy_leaves_no_page_of_the_cache_resident)
{
	const size_t nr = 100000;
	size_t nr_pages, left;
	struct kmem_cache *s;
	void **objs, **pages;

	objs = pointer_array(nr, true);
	pages = pointer_array(2 * nr, true);
	ASSERT_NE(NULL, objs);
	ASSERT_NE(NULL, pages);
	s = kmem_cache_create("test_pages_destroy", OBJ_SIZE, 0, 0, NULL);
	ASSERT_NE(NULL, s);
	ASSERT_TRUE(fill_cache(s, objs, nr));
	nr_pages = pages_of(objs, nr, pages);
	empty_cache(s, objs, nr);
	kmem_cache_destroy(s);
	left = resident_pages(pages, nr_pages);
	EXPECT_EQ(0, left) TH_LOG("%zu of %zu pages still resident",
				  left, nr_pages);
	free_pointer_array(objs, nr);
	free_pointer_array(pages, 2 * nr);
}

TEST(large_kfree_leaves_no_page_resident_after_the_decay_period)
{
	const size_t size = 16 * MiB;
	size_t page = (size_t)sysconf(_SC_PAGESIZE);
	size_t nr_pages = size / page, i, left;
	unsigned char *p = kmalloc(size, GFP_KERNEL);
	void **pages;

	ASSERT_NE(NULL, p);
	pages = pointer_array(nr_pages, true);
	ASSERT_NE(NULL, pages);
	memset(p, 0x6f, size);
	for (i = 0; i < nr_pages; i++)
		pages[i] = (void *)(((uintptr_t)p & ~(uintptr_t)(page - 1)) +
				    i * page);
	ASSERT_EQ(nr_pages, resident_pages(pages, nr_pages));
	kfree(p);
	let_empty_slabs_decay();
	left = resident_pages(pages, nr_pages);
	EXPECT_EQ(0, left) TH_LOG("%zu of %zu pages still resident",
				  left, nr_pages);
	free_pointer_array(pages, nr_pages);
}

/* ---- address-space limit ---------------------------------------------- */

#define AS_HEADROOM	(32 * MiB)
#define CAP_SMALL	(4UL << 20)	/* far more than fits in the headroom */
#define CAP_MEDIUM	(64UL << 10)
#define CAP_LARGE	4096UL

/* Lower the soft RLIMIT_AS to the current size plus @headroom. */
static int limit_address_space(struct rlimit *saved, unsigned long headroom)
{
	struct rlimit lim;
	long vm = vm_size_bytes();

	if (vm < 0 || getrlimit(RLIMIT_AS, saved))
		return -1;
	lim = *saved;
	lim.rlim_cur = (rlim_t)vm + headroom;
	if (saved->rlim_max != RLIM_INFINITY && lim.rlim_cur > saved->rlim_max)
		return -1;
	return setrlimit(RLIMIT_AS, &lim);
}

/* Touch kslab once per kind so lazy set-up happens before the limit. */
static void warm_up(struct kmem_cache *s)
{
	kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL));
	kfree(kmalloc(8 * KiB, GFP_KERNEL));
	kfree(kmalloc(1 * MiB, GFP_KERNEL));
}

/* Allocates until NULL; returns how many, or -1 when @cap came first. */
static long allocate_until_null(void **objs, size_t cap, size_t size,
				struct kmem_cache *s)
{
	size_t i;

	for (i = 0; i < cap; i++) {
		objs[i] = s ? kmem_cache_alloc(s, GFP_KERNEL | __GFP_NOWARN) :
			      kmalloc(size, GFP_KERNEL | __GFP_NOWARN);
		if (!objs[i])
			return (long)i;
		/* Touch one byte per page, and the ends of small objects. */
		memset(objs[i], 0x5e, size < 4096 ? size : 1);
		((char *)objs[i])[size - 1] = 0x5e;
	}
	return -1;
}

static bool destroy_quietly(struct kmem_cache *s)
{
	struct stderr_capture cap;
	const char *out;
	bool quiet;

	stderr_capture_begin(&cap);
	kmem_cache_destroy(s);
	out = stderr_capture_end(&cap);
	quiet = out[0] == '\0';
	if (!quiet)
		fprintf(stderr, "# destroy said:\n%s", out);
	stderr_capture_release(&cap);
	return quiet;
}

/*
 * The body of the RLIMIT_AS test, run in a child so the limit dies with
 * it.  Returns 0 or the number of the step that went wrong.
 */
static int exhaust_address_space(void)
{
	void **small, **medium, **large;
	struct kmem_cache *s, *late;
	long n_small, n_medium, n_large, i;
	struct rlimit saved;
	void *late_obj = NULL;
	bool quiet;

	small = pointer_array(CAP_SMALL, false);
	medium = pointer_array(CAP_MEDIUM, false);
	large = pointer_array(CAP_LARGE, false);
	s = kmem_cache_create("test_rlimit", OBJ_SIZE, 0, 0, NULL);
	if (!small || !medium || !large || !s)
		return 1;
	warm_up(s);
	if (limit_address_space(&saved, AS_HEADROOM))
		return 2;

	n_small = allocate_until_null(small, CAP_SMALL, OBJ_SIZE, s);
	n_medium = allocate_until_null(medium, CAP_MEDIUM, 8 * KiB, NULL);
	n_large = allocate_until_null(large, CAP_LARGE, 1 * MiB, NULL);
	late = kmem_cache_create("test_rlimit_late", 200, 0, 0, NULL);
	if (late)
		late_obj = kmem_cache_alloc(late, GFP_KERNEL | __GFP_NOWARN);

	if (setrlimit(RLIMIT_AS, &saved))
		return 3;
	fprintf(stderr, "# under the limit: %ld small, %ld 8 KiB, %ld 1 MiB\n",
		n_small, n_medium, n_large);
	if (n_small < 0 || n_medium < 0 || n_large < 0)
		return 4;	/* the limit never surfaced as NULL */

	for (i = 0; i < n_small; i++)
		kmem_cache_free(s, small[i]);
	for (i = 0; i < n_medium; i++)
		kfree(medium[i]);
	for (i = 0; i < n_large; i++)
		kfree(large[i]);
	if (late) {
		kmem_cache_free(late, late_obj);
		if (!destroy_quietly(late))
			return 5;
	}
	if (active_objs(s) != 0)
		return 6;

	/* Everything works again with the limit gone. */
	if (allocate_until_null(small, 100000, OBJ_SIZE, s) != -1)
		return 7;
	if (allocate_until_null(medium, 1000, 8 * KiB, NULL) != -1)
		return 8;
	if (allocate_until_null(large, 100, 1 * MiB, NULL) != -1)
		return 9;
	if (active_objs(s) != 100000)
		return 10;
	for (i = 0; i < 100000; i++)
		kmem_cache_free(s, small[i]);
	for (i = 0; i < 1000; i++)
		kfree(medium[i]);
	for (i = 0; i < 100; i++)
		kfree(large[i]);
	if (active_objs(s) != 0)
		return 11;
	if (kmem_cache_shrink(s) != 0)
		return 12;
	quiet = destroy_quietly(s);
	return quiet ? 0 : 13;
}

/*
 * Bulk allocation that cannot be satisfied under the limit: 0, and no
 * object left allocated.  Returns 0 or the failing step.
 */
static int bulk_at_address_limit(void)
{
	const size_t nr = 2UL << 20;	/* 128 MiB: cannot fit */
	struct kmem_cache *s;
	struct rlimit saved;
	int got;
	void **objs;

	objs = pointer_array(nr, false);
	s = kmem_cache_create("test_rlimit_bulk", OBJ_SIZE, 0, 0, NULL);
	if (!objs || !s)
		return 1;
	warm_up(s);
	if (limit_address_space(&saved, AS_HEADROOM))
		return 2;
	got = kmem_cache_alloc_bulk(s, GFP_KERNEL | __GFP_NOWARN, nr, objs);
	if (setrlimit(RLIMIT_AS, &saved))
		return 3;
	if (got != 0)
		return 4;
	if (active_objs(s) != 0)
		return 5;	/* not all-or-nothing */
	if (kmem_cache_alloc_bulk(s, GFP_KERNEL, 1000, objs) != 1000)
		return 6;
	kmem_cache_free_bulk(s, 1000, objs);
	if (active_objs(s) != 0)
		return 7;
	return destroy_quietly(s) ? 0 : 8;
}

static int run_in_child(int (*fn)(void), int *status)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0)
		_exit(fn());
	return wait_child(pid, 25000, status);
}

TEST(address_space_limit_makes_allocations_fail_without_crashing)
{
	int status = 0;

	if (KSLAB_TEST_SANITIZED)
		SKIP(return, "sanitizer shadow memory defeats RLIMIT_AS");
	ASSERT_EQ(0, run_in_child(exhaust_address_space, &status))
		TH_LOG("child hung");
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("child died of signal %d",
					      WTERMSIG(status));
	if (WIFEXITED(status)) {
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("failed at step %d",
						       WEXITSTATUS(status));
	}
}

TEST(bulk_alloc_at_address_space_limit_is_all_or_nothing)
{
	int status = 0;

	if (KSLAB_TEST_SANITIZED)
		SKIP(return, "sanitizer shadow memory defeats RLIMIT_AS");
	ASSERT_EQ(0, run_in_child(bulk_at_address_limit, &status))
		TH_LOG("child hung");
	EXPECT_TRUE(WIFEXITED(status)) TH_LOG("child died of signal %d",
					      WTERMSIG(status));
	if (WIFEXITED(status)) {
		EXPECT_EQ(0, WEXITSTATUS(status)) TH_LOG("failed at step %d",
						       WEXITSTATUS(status));
	}
}

TEST_HARNESS_MAIN
