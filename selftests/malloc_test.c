// SPDX-License-Identifier: MIT
/*
 * libkslab-malloc.so (mm/malloc.c, Documentation/mm/malloc.rst): the C
 * library's allocation contract as a program sees it with the library
 * preloaded, one behaviour per TEST.
 *
 * main() runs this binary again under LD_PRELOAD of the built library
 * (found beside the selftests directory, or named by
 * KSLAB_TEST_MALLOC_LIB), so every test below, and the harness around
 * it, allocates from kslab.  The binary links no kslab code of its own
 * (it calls nothing of kslab's, so nothing is taken from libkslab.a):
 * the only kslab in the process is the preloaded one.  The first test
 * checks that malloc() really is the library's.
 *
 * Then, in order: C11 and POSIX contracts of each function with their
 * edge cases and errno values; alignments from 1 byte to 64 KiB and page
 * multiples; huge sizes failing cleanly; threads freeing each other's
 * memory, fork() in a threaded program, thread exit with late frees;
 * kslab's options and misuse reports (KSLAB_ABORT_ON_ERROR) in a
 * re-executed child; and real Debian programs (python3, sort, tar with
 * xz, sqlite3, git) whose output under the library must equal a plain
 * run's, with kslab's KSLAB_VERBOSE=1 lines on their stderr to show they
 * ran on it.
 *
 * Under a sanitizer the whole suite is skipped, with the reason: the
 * sanitizer's runtime replaces malloc() itself and must be first in the
 * process, which an LD_PRELOAD malloc replacement contradicts.
 */
#include <dlfcn.h>
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <kslab/kslab.h>	/* declarations for kslab_test_util.h only */

#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define LIB_ENV			"KSLAB_TEST_MALLOC_LIB"
#define PRELOADED_ENV		"KSLAB_TEST_MALLOC_PRELOADED"
#define CHILD_ENV		"KSLAB_TEST_MALLOC_CHILD"
#define LIB_NAME		"libkslab-malloc.so"
#define CHILD_TIMEOUT_MS	25000
#define VERBOSE_LINE		"kslab: option KSLAB_VERBOSE=1 (environment)"

/* The library this process runs on, "" when not preloaded. */
static char preloaded_lib[4096];

#define SANITIZER_SKIP	"built with a sanitizer, whose own malloc() must come first in the process: an LD_PRELOAD malloc replacement cannot run here"

/*
 * A value the compiler must not see through: where a test checks what
 * the compiler believes it knows (a block is gone after realloc(), which
 * a failed one leaves alone; a malloc(SIZE_MAX) warns; clang folds the
 * errno of an allocation it knows fails, or a double free warns), the
 * size, pointer or function goes through an empty asm first.
 */
#define opaque(x) ({ __typeof__(x) __v = (x); __asm__("" : "+r"(__v)); __v; })
#define opaque_size(n)		opaque((size_t)(n))
#define opaque_ptr(p)		opaque((void *)(p))
#define malloc_fn		opaque(&malloc)
#define calloc_fn		opaque(&calloc)
#define realloc_fn		opaque(&realloc)
#define reallocarray_fn		opaque(&reallocarray)
#define aligned_alloc_fn	opaque(&aligned_alloc)
#define memalign_fn		opaque(&memalign)
#define pvalloc_fn		opaque(&pvalloc)
#define posix_memalign_fn	opaque(&posix_memalign)

static bool aligned_to(const void *p, size_t align)
{
	return ((uintptr_t)p & (align - 1)) == 0;
}

static void fill(unsigned char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		p[i] = (unsigned char)(i * 31 + seed);
}

static bool filled(const unsigned char *p, size_t n, unsigned int seed)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i] != (unsigned char)(i * 31 + seed))
			return false;
	return true;
}

static bool all_zero(const unsigned char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

/* ---- running programs ------------------------------------------------ */

struct run {
	int status;
	char *out;		/* stdout, NUL-terminated; free() it */
	char *err;		/* stderr */
};

/*
 * run_shell() - run @cmd with /bin/sh, under the library or not
 * @cmd: the command line
 * @preload: under LD_PRELOAD of the library with KSLAB_VERBOSE=1, or
 *	with no LD_PRELOAD at all
 * @vars: more "NAME=value" settings, NULL-terminated, or NULL
 * @r: filled in
 *
 * Return: 0, or -1 when it could not be run or did not end in time.
 */
static int run_shell(const char *cmd, bool preload, const char *const *vars,
		     struct run *r)
{
	FILE *out = tmpfile(), *err = tmpfile();
	int ret = -1;
	pid_t pid;

	memset(r, 0, sizeof(*r));
	if (!out || !err)
		goto close;
	pid = fork();
	if (pid < 0)
		goto close;
	if (pid == 0) {
		if (preload) {
			setenv("LD_PRELOAD", preloaded_lib, 1);
			setenv("KSLAB_VERBOSE", "1", 1);
		} else {
			unsetenv("LD_PRELOAD");
			unsetenv("KSLAB_VERBOSE");
		}
		unsetenv(PRELOADED_ENV);
		for (; vars && *vars; vars++)
			putenv((char *)*vars);
		if (dup2(fileno(out), STDOUT_FILENO) < 0 ||
		    dup2(fileno(err), STDERR_FILENO) < 0)
			_exit(126);
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	if (wait_child(pid, CHILD_TIMEOUT_MS, &r->status))
		goto close;
	r->out = file_text(out);
	r->err = file_text(err);
	ret = r->out && r->err ? 0 : -1;
close:
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	return ret;
}

static void run_release(struct run *r)
{
	free(r->out);
	free(r->err);
}

/* This binary again, in child mode @mode, under the library, with @var. */
static int run_child_mode(const char *mode, const char *var, struct run *r)
{
	char mode_var[64], cmd[64];
	const char *vars[3];

	snprintf(mode_var, sizeof(mode_var), "%s=%s", CHILD_ENV, mode);
	vars[0] = mode_var;
	vars[1] = var;
	vars[2] = NULL;
	snprintf(cmd, sizeof(cmd), "exec /proc/%d/exe", (int)getpid());
	return run_shell(cmd, true, vars, r);
}

static bool have_program(const char *path)
{
	return access(path, X_OK) == 0;
}

/* A fresh directory for one run of a program; "" when none. */
static void make_dir(char *dir, size_t size)
{
	snprintf(dir, size, "%s/kslab-malloc-test.XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(dir))
		dir[0] = '\0';
}

static void remove_dir(const char *dir)
{
	char cmd[4200];
	struct run r;

	if (!dir[0])
		return;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (!run_shell(cmd, false, NULL, &r))
		run_release(&r);
}

/* @lines joined with newlines, in one allocation; free() it. */
static char *join_lines(const char *const *lines)
{
	size_t len = 1, i;
	char *text;

	for (i = 0; lines[i]; i++)
		len += strlen(lines[i]) + 1;
	text = malloc(len);
	if (!text)
		return NULL;
	text[0] = '\0';
	for (i = 0; lines[i]; i++) {
		strcat(text, lines[i]);
		strcat(text, "\n");
	}
	return text;
}

/*
 * compare_runs() - run @script (lines of a shell script, which finds the
 * directory of its run in $KSLAB_TEST_MALLOC_DIR) plainly and under the
 * library, each in a directory of its own: both must exit 0, their
 * stdout must be equal and not empty, and the preloaded run's stderr
 * must show kslab's start-up and no report.
 */
static void compare_runs(struct __test_metadata *_metadata,
			 const char *const *script)
{
	char dir[4096], dir_var[4200];
	char *cmd = join_lines(script);
	const char *vars[2];
	struct run r[2];
	int i;

	ASSERT_NE(NULL, cmd);
	vars[0] = dir_var;
	vars[1] = NULL;
	for (i = 0; i < 2; i++) {
		make_dir(dir, sizeof(dir));
		ASSERT_NE('\0', dir[0]);
		snprintf(dir_var, sizeof(dir_var), "KSLAB_TEST_MALLOC_DIR=%s", dir);
		ASSERT_EQ(0, run_shell(cmd, i == 1, vars, &r[i]));
		remove_dir(dir);
		if (!child_exited_cleanly(r[i].status))
			TH_LOG("%s run failed (status %#x):\n%s",
			       i ? "preloaded" : "plain", r[i].status, r[i].err);
		ASSERT_TRUE(child_exited_cleanly(r[i].status));
	}
	free(cmd);
	EXPECT_NE('\0', r[0].out[0]);
	if (strcmp(r[0].out, r[1].out))
		TH_LOG("plain:\n%s\npreloaded:\n%s", r[0].out, r[1].out);
	EXPECT_STREQ(r[0].out, r[1].out);
	EXPECT_TEXT_CONTAINS(r[1].err, VERBOSE_LINE);
	EXPECT_EQ(0, text_count(r[1].err, "BUG "));
	EXPECT_EQ(0, text_count(r[1].err, "; ignored"));
	run_release(&r[0]);
	run_release(&r[1]);
}

/* ---- the process runs on kslab ---------------------------------------- */

static bool defined_in_library(void *fn)
{
	Dl_info info;

	return dladdr(fn, &info) && info.dli_fname &&
	       strstr(info.dli_fname, "libkslab-malloc.so");
}

TEST(malloc_family_comes_from_the_library)
{
	void (*fns[])(void) = {
		(void (*)(void))malloc, (void (*)(void))free,
		(void (*)(void))calloc, (void (*)(void))realloc,
		(void (*)(void))reallocarray, (void (*)(void))posix_memalign,
		(void (*)(void))aligned_alloc, (void (*)(void))memalign,
		(void (*)(void))valloc, (void (*)(void))pvalloc,
		(void (*)(void))malloc_usable_size,
	};
	size_t i;

	for (i = 0; i < ARRAY_SIZE(fns); i++)
		EXPECT_TRUE(defined_in_library((void *)fns[i]));
}

/* kslab's size classes show through: glibc would say 24 and 104 */
TEST(usable_sizes_are_kslab_size_classes)
{
	void *small = malloc(1), *mid = malloc(100), *page = malloc(4096);

	ASSERT_NE(NULL, small);
	ASSERT_NE(NULL, mid);
	ASSERT_NE(NULL, page);
	EXPECT_EQ(16, malloc_usable_size(small));
	EXPECT_EQ(112, malloc_usable_size(mid));
	/* kmalloc's power-of-two sizes are naturally aligned */
	EXPECT_TRUE(aligned_to(page, 4096));
	free(small);
	free(mid);
	free(page);
}

/* ---- malloc, free ----------------------------------------------------- */

TEST(malloc_zero_returns_unique_freeable_pointers)
{
	void *a = malloc(0), *b = malloc(0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_NE(a, b);
	EXPECT_TRUE(aligned_to(a, 16));
	free(a);
	free(b);
}

TEST(every_result_is_16_byte_aligned_and_big_enough)
{
	size_t n;

	for (n = 1; n <= 2 << 20; n += n < 512 ? 1 : n / 7) {
		unsigned char *p = malloc(n);
		size_t usable = malloc_usable_size(p);

		ASSERT_NE(NULL, p);
		ASSERT_TRUE(aligned_to(p, 16));
		ASSERT_LE(n, usable);
		/* every usable byte is the program's */
		fill(p, usable, (unsigned int)n);
		ASSERT_TRUE(filled(p, usable, (unsigned int)n));
		free(p);
	}
}

TEST(free_null_does_nothing)
{
	errno = 0;
	free(NULL);
	EXPECT_EQ(0, errno);
	EXPECT_EQ(0, malloc_usable_size(NULL));
}

/* ---- calloc ----------------------------------------------------------- */

TEST(calloc_zeroes_memory_that_was_used_before)
{
	static const size_t sizes[] = { 1, 24, 4000, 5000, 300 << 10, 4 << 20 };
	size_t i, round;

	for (round = 0; round < 4; round++) {
		for (i = 0; i < ARRAY_SIZE(sizes); i++) {
			unsigned char *p = malloc(sizes[i]), *z;

			ASSERT_NE(NULL, p);
			memset(p, 0xa5, malloc_usable_size(p));
			free(p);
			z = calloc(1, sizes[i]);
			ASSERT_NE(NULL, z);
			ASSERT_TRUE(all_zero(z, sizes[i]));
			free(z);
		}
	}
}

TEST(calloc_overflow_fails_with_enomem)
{
	errno = 0;
	EXPECT_EQ(NULL, calloc_fn(opaque_size(SIZE_MAX / 2), 3));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, calloc_fn(opaque_size((size_t)1 << 33), (size_t)1 << 33));
	EXPECT_EQ(ENOMEM, errno);
}

TEST(calloc_zero_elements_is_a_unique_pointer)
{
	void *a = calloc(0, 16), *b = calloc(16, 0);

	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	EXPECT_NE(a, b);
	free(a);
	free(b);
}

/* ---- realloc, reallocarray -------------------------------------------- */

TEST(realloc_of_null_is_malloc)
{
	unsigned char *p = realloc(NULL, 100);

	ASSERT_NE(NULL, p);
	EXPECT_LE(100, malloc_usable_size(p));
	EXPECT_TRUE(aligned_to(p, 16));
	free(p);
}

/* glibc's choice (C23 leaves it undefined): the block is freed */
TEST(realloc_to_zero_frees_and_returns_null)
{
	void *p = malloc(100);

	ASSERT_NE(NULL, p);
	errno = 0;
	EXPECT_EQ(NULL, realloc(p, 0));
	EXPECT_EQ(0, errno);
}

TEST(realloc_keeps_contents_growing_and_shrinking)
{
	size_t n = 1, kept = 1;
	unsigned char *p = malloc(1);

	ASSERT_NE(NULL, p);
	fill(p, 1, 7);
	/* up through the classes and into large blocks, then down again */
	while (n < 8 << 20) {
		n = n * 3 + 1;
		p = realloc(p, n);
		ASSERT_NE(NULL, p);
		ASSERT_TRUE(aligned_to(p, 16));
		ASSERT_TRUE(filled(p, kept, 7));
		fill(p, n, 7);
		kept = n;
	}
	while (n > 1) {
		n /= 5;
		n = n ? n : 1;
		p = realloc(p, n);
		ASSERT_NE(NULL, p);
		ASSERT_LE(n, malloc_usable_size(p));
		ASSERT_TRUE(filled(p, n, 7));
	}
	free(p);
}

TEST(failed_realloc_leaves_the_block_alone)
{
	unsigned char *p = malloc(1000);

	ASSERT_NE(NULL, p);
	fill(p, 1000, 3);
	errno = 0;
	EXPECT_EQ(NULL, realloc_fn(p, opaque_size(SIZE_MAX - 4096)));
	EXPECT_EQ(ENOMEM, errno);
	errno = 0;
	EXPECT_EQ(NULL, realloc_fn(p, opaque_size((size_t)PTRDIFF_MAX)));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(filled(p, 1000, 3));
	free(p);
}

TEST(reallocarray_overflow_fails_and_keeps_the_block)
{
	unsigned char *p = malloc(64), *q;

	ASSERT_NE(NULL, p);
	fill(p, 64, 5);
	errno = 0;
	EXPECT_EQ(NULL, reallocarray_fn(p, opaque_size(SIZE_MAX / 4), 8));
	EXPECT_EQ(ENOMEM, errno);
	EXPECT_TRUE(filled(p, 64, 5));
	q = reallocarray_fn(p, 100, 40);
	ASSERT_NE(NULL, q);
	EXPECT_LE(4000, malloc_usable_size(q));
	EXPECT_TRUE(filled(q, 64, 5));
	free(q);
}

/* ---- the aligned family ----------------------------------------------- */

/* 8 bytes to 64 KiB, then page multiples to 4 MiB; sizes around each */
static bool check_aligned(void *(*alloc)(size_t align, size_t size),
			  size_t min_align)
{
	size_t align, k;

	for (align = min_align; align <= 4 << 20; align *= 2) {
		size_t sizes[] = { 0, 1, align - 1, align, align + 1, 3 * align + 5 };

		for (k = 0; k < ARRAY_SIZE(sizes); k++) {
			unsigned char *p = alloc(align, sizes[k]);

			if (!p || !aligned_to(p, align) || !aligned_to(p, 16) ||
			    malloc_usable_size(p) < sizes[k])
				return false;
			fill(p, sizes[k], 9);
			free(p);
		}
	}
	return true;
}

static void *via_posix_memalign(size_t align, size_t size)
{
	void *p = NULL;

	return posix_memalign(&p, align, size) ? NULL : p;
}

TEST(posix_memalign_honours_every_alignment)
{
	EXPECT_TRUE(check_aligned(via_posix_memalign, sizeof(void *)));
}

TEST(aligned_alloc_honours_every_alignment)
{
	EXPECT_TRUE(check_aligned(aligned_alloc, 1));
}

TEST(memalign_honours_every_alignment)
{
	EXPECT_TRUE(check_aligned(memalign, 1));
}

TEST(posix_memalign_rejects_bad_alignments_and_leaves_errno)
{
	static const size_t bad[] = { 0, 1, 2, 4, 12, 24, 48, 4097, SIZE_MAX };
	void *p = &p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(bad); i++) {
		errno = 1234;
		EXPECT_EQ(EINVAL, posix_memalign_fn(&p, bad[i], 16));
		EXPECT_EQ(1234, errno);
		EXPECT_EQ((void *)&p, p);
	}
}

TEST(posix_memalign_reports_enomem_and_leaves_errno)
{
	void *p = &p;

	errno = 1234;
	EXPECT_EQ(ENOMEM, posix_memalign_fn(&p, 64, opaque_size(SIZE_MAX - 64)));
	EXPECT_EQ(1234, errno);
	EXPECT_EQ((void *)&p, p);
	errno = 1234;
	ASSERT_EQ(0, posix_memalign(&p, 64, 0));
	EXPECT_EQ(1234, errno);
	EXPECT_TRUE(aligned_to(p, 64));
	free(p);
}

TEST(aligned_alloc_rejects_non_power_of_two_alignments)
{
	errno = 0;
	EXPECT_EQ(NULL, aligned_alloc_fn(opaque_size(0), 16));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(NULL, aligned_alloc_fn(opaque_size(24), 48));
	EXPECT_EQ(EINVAL, errno);
}

/* glibc: rounded up to the next power of two; beyond half the space, EINVAL */
TEST(memalign_rounds_alignment_up_to_a_power_of_two)
{
	void *p = memalign(opaque_size(48), 100), *q = memalign(opaque_size(0), 10);

	ASSERT_NE(NULL, p);
	EXPECT_TRUE(aligned_to(p, 64));
	ASSERT_NE(NULL, q);
	EXPECT_TRUE(aligned_to(q, 16));
	free(p);
	free(q);
	errno = 0;
	EXPECT_EQ(NULL, memalign_fn(opaque_size(SIZE_MAX / 2 + 2), 16));
	EXPECT_EQ(EINVAL, errno);
}

TEST(valloc_returns_page_aligned_memory)
{
	size_t page = (size_t)getpagesize(), n;

	for (n = 0; n <= 5 * page; n += page / 3) {
		void *p = valloc(n);

		ASSERT_NE(NULL, p);
		EXPECT_TRUE(aligned_to(p, page));
		EXPECT_LE(n, malloc_usable_size(p));
		free(p);
	}
}

TEST(pvalloc_rounds_the_size_up_to_whole_pages)
{
	size_t page = (size_t)getpagesize(), n;

	for (n = 0; n <= 5 * page; n += page / 3) {
		size_t pages = n ? (n + page - 1) / page * page : page;
		unsigned char *p = pvalloc(n);

		ASSERT_NE(NULL, p);
		EXPECT_TRUE(aligned_to(p, page));
		EXPECT_LE(pages, malloc_usable_size(p));
		fill(p, pages, 1);
		free(p);
	}
	errno = 0;
	EXPECT_EQ(NULL, pvalloc_fn(opaque_size(SIZE_MAX - 10)));
	EXPECT_EQ(ENOMEM, errno);
}

/* ---- huge sizes ------------------------------------------------------- */

TEST(huge_sizes_fail_cleanly_with_enomem)
{
	static const size_t huge[] = {
		SIZE_MAX, SIZE_MAX - 15, (size_t)PTRDIFF_MAX + 1,
		(size_t)PTRDIFF_MAX, (size_t)1 << 47,
	};
	void *p;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(huge); i++) {
		size_t n = opaque_size(huge[i]);

		errno = 0;
		EXPECT_EQ(NULL, malloc_fn(n));
		EXPECT_EQ(ENOMEM, errno);
		errno = 0;
		EXPECT_EQ(NULL, calloc_fn(1, n));
		EXPECT_EQ(ENOMEM, errno);
		errno = 0;
		EXPECT_EQ(NULL, aligned_alloc_fn(4096, n));
		EXPECT_EQ(ENOMEM, errno);
		errno = 0;
		EXPECT_EQ(NULL, memalign_fn((size_t)1 << 20, n));
		EXPECT_EQ(ENOMEM, errno);
		EXPECT_EQ(ENOMEM, posix_memalign_fn(&p, 64, n));
	}
	/* and the allocator goes on */
	p = malloc(100);
	ASSERT_NE(NULL, p);
	free(p);
}

/* ---- threads ---------------------------------------------------------- */

#define RING_SLOTS	256
#define RING_ROUNDS	200000

struct ring {
	void *slot[RING_SLOTS];
	int done;
};

/* Takes what the producer left in each slot and frees it. */
static void *consumer(void *arg)
{
	struct ring *ring = arg;
	unsigned long freed = 0;
	size_t i = 0;

	for (;;) {
		void *p = __atomic_exchange_n(&ring->slot[i], NULL, __ATOMIC_ACQUIRE);

		if (p) {
			/* the producer wrote its size into the first word */
			if (malloc_usable_size(p) < *(size_t *)p)
				return (void *)1;
			free(p);
			freed++;
		} else if (flag_get(&ring->done)) {
			break;
		} else if (!i) {
			sched_yield();	/* a lap with nothing to free */
		}
		i = (i + 1) % RING_SLOTS;
	}
	return NULL;
}

static void *producer(void *arg)
{
	struct ring *ring = arg;
	size_t i;

	for (i = 0; i < test_scaled(RING_ROUNDS); i++) {
		size_t n = 8 + (i * 2654435761u) % 3000;
		void *p, *old;

		if (i % 997 == 0)
			n = 300 << 10;	/* now and then a large block */
		p = malloc(n);
		if (!p)
			return (void *)1;
		*(size_t *)p = n;
		old = __atomic_exchange_n(&ring->slot[i % RING_SLOTS], p, __ATOMIC_RELEASE);
		free(old);	/* the consumer did not get to it: ours again */
	}
	flag_set(&ring->done, 1);
	return NULL;
}

TEST(threads_free_what_other_threads_allocated)
{
	struct ring rings[2];
	pthread_t prod[2], cons[2];
	void *ret;
	int i;

	memset(rings, 0, sizeof(rings));
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_create(&cons[i], NULL, consumer, &rings[i]));
		ASSERT_EQ(0, pthread_create(&prod[i], NULL, producer, &rings[i]));
	}
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, pthread_join(prod[i], &ret));
		EXPECT_EQ(NULL, ret);
		ASSERT_EQ(0, pthread_join(cons[i], &ret));
		EXPECT_EQ(NULL, ret);
	}
}

static int churn_stop;

static void *churn(void *arg)
{
	void *keep[64] = { NULL };
	unsigned int i = 0;

	(void)arg;
	while (!flag_get(&churn_stop)) {
		free(keep[i % 64]);
		keep[i % 64] = malloc(16 + (i * 7919) % 9000);
		i++;
	}
	for (i = 0; i < 64; i++)
		free(keep[i]);
	return NULL;
}

static void *child_thread(void *arg)
{
	char *s = strdup(arg);

	if (s)
		free(s);
	return s ? NULL : (void *)1;
}

/* In the fork child: everything still works, threads included. */
static int child_uses_malloc(void)
{
	void *p[512];
	pthread_t t;
	void *ret;
	int i;

	for (i = 0; i < 512; i++) {
		p[i] = malloc((size_t)(i * 61) % 5000 + (i % 100 == 0 ? 1 << 20 : 1));
		if (!p[i])
			return 1;
	}
	for (i = 0; i < 512; i++)
		free(p[i]);
	if (pthread_create(&t, NULL, child_thread, "in the child"))
		return 2;
	if (pthread_join(t, &ret) || ret)
		return 3;
	return 0;
}

TEST(fork_in_a_threaded_program_leaves_malloc_working_in_the_child)
{
	pthread_t threads[3];
	int i, status, forks = (int)test_scaled(40);

	flag_set(&churn_stop, 0);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_create(&threads[i], NULL, churn, NULL));
	for (i = 0; i < forks; i++) {
		pid_t pid = fork();

		ASSERT_LE(0, pid);
		if (pid == 0)
			_exit(child_uses_malloc());
		ASSERT_EQ(0, wait_child(pid, CHILD_TIMEOUT_MS, &status));
		EXPECT_TRUE(child_exited_cleanly(status));
	}
	flag_set(&churn_stop, 1);
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, pthread_join(threads[i], NULL));
}

/*
 * A key created after kslab's runs its destructor after kslab has given
 * the thread's magazines back; it frees and allocates still, as C++
 * thread_local destructors and the C library's own TLS teardown do.
 */
static pthread_key_t late_key;

static void late_destructor(void *p)
{
	char *q = malloc(200);

	free(p);
	if (q)
		memset(q, 1, 200);
	free(q);
}

static void *short_lived(void *arg)
{
	void **out = arg;
	int i;

	pthread_setspecific(late_key, malloc(333));
	for (i = 0; i < 100; i++)
		free(malloc((size_t)(i * 37) + 1));
	*out = malloc(1000);	/* freed by main after the thread is gone */
	if (*out)
		memset(*out, 0x5a, 1000);
	return NULL;
}

TEST(memory_outlives_its_thread_and_late_frees_work)
{
	void *left[64];
	pthread_t t;
	int i;

	ASSERT_EQ(0, pthread_key_create(&late_key, late_destructor));
	for (i = 0; i < 64; i++) {
		left[i] = NULL;
		ASSERT_EQ(0, pthread_create(&t, NULL, short_lived, &left[i]));
		ASSERT_EQ(0, join_thread_within(t, CHILD_TIMEOUT_MS));
		ASSERT_NE(NULL, left[i]);
		ASSERT_EQ(0x5a, ((unsigned char *)left[i])[999]);
	}
	for (i = 0; i < 64; i++)
		free(left[i]);
	pthread_key_delete(late_key);
}

/* ---- options and misuse reports, in a child --------------------------- */

/* The child modes, run by main() in a re-executed binary. */
static int child_double_free(void)
{
	void *p = malloc(40), *again = opaque_ptr(p);

	free(p);
	free(again);
	printf("still running\n");
	return 0;
}

static int child_invalid_free(void)
{
	static char not_heap[64];

	free(opaque_ptr(not_heap + 16));
	printf("still running\n");
	return 0;
}

TEST(double_free_is_reported_and_the_program_goes_on)
{
	struct run r;

	ASSERT_EQ(0, run_child_mode("double_free", NULL, &r));
	EXPECT_TRUE(child_exited_cleanly(r.status));
	EXPECT_TEXT_CONTAINS(r.err, "double free of object");
	EXPECT_TEXT_CONTAINS(r.out, "still running");
	run_release(&r);
}

TEST(abort_on_error_makes_a_double_free_abort)
{
	struct run r;

	ASSERT_EQ(0, run_child_mode("double_free", "KSLAB_ABORT_ON_ERROR=1", &r));
	/* sh execs the binary: the signal is its */
	EXPECT_TRUE(WIFSIGNALED(r.status));
	EXPECT_EQ(SIGABRT, WTERMSIG(r.status));
	EXPECT_TEXT_CONTAINS(r.err, "double free of object");
	EXPECT_TEXT_CONTAINS(r.err, "KSLAB_ABORT_ON_ERROR=1");
	EXPECT_EQ(0, text_count(r.out, "still running"));
	run_release(&r);
}

TEST(free_of_a_pointer_never_allocated_is_reported_and_ignored)
{
	struct run r;

	ASSERT_EQ(0, run_child_mode("invalid_free", NULL, &r));
	EXPECT_TRUE(child_exited_cleanly(r.status));
	EXPECT_TEXT_CONTAINS(r.err, "invalid pointer");
	EXPECT_TEXT_CONTAINS(r.out, "still running");
	run_release(&r);
}

TEST(kslab_options_apply_to_a_preloaded_program)
{
	static const char *const vars[] = {
		"KSLAB_EMPTY_SLABS=7", "KSLAB_SLAB_DECAY_MS=soon", NULL
	};
	struct run r;

	ASSERT_EQ(0, run_shell("exec /bin/true", true, vars, &r));
	EXPECT_TRUE(child_exited_cleanly(r.status));
	EXPECT_TEXT_CONTAINS(r.err, "kslab: option KSLAB_EMPTY_SLABS=7 (environment)");
	EXPECT_TEXT_CONTAINS(r.err, "kslab: ignoring KSLAB_SLAB_DECAY_MS=soon");
	/* once by sh, once by true: each process image reads its environment */
	EXPECT_EQ(2, text_count(r.err, VERBOSE_LINE));
	run_release(&r);
}

/* ---- real programs ---------------------------------------------------- */

#define PYTHON	"/usr/bin/python3"

static const char *const python_script[] = {
	"cd \"$KSLAB_TEST_MALLOC_DIR\" && " PYTHON " -c '",
	"import json, collections",
	"d = {str(i): [i, str(i) * (i % 7), {\"k\": i * i}] for i in range(60000)}",
	"s = json.dumps(d, sort_keys=True)",
	"e = json.loads(s)",
	"words = \" \".join(\"w%d\" % (i * 7919 % 1000) for i in range(200000)).split()",
	"c = collections.Counter(words)",
	"top = sorted(e.items(), key=lambda kv: -kv[1][0])[:5]",
	"print(len(s), len(e), c.most_common(3), top[0][0])",
	"print(\"\".join(reversed(\"kslab\" * 1000))[:20], sum(len(v[1]) for v in e.values()))",
	"'",
	NULL
};

TEST(python3_dicts_lists_and_strings_match_a_plain_run)
{
	if (!have_program(PYTHON))
		SKIP(return, PYTHON " is not installed");
	compare_runs(_metadata, python_script);
}

static const char *const sort_script[] = {
	"cd \"$KSLAB_TEST_MALLOC_DIR\"",
	"seq 1 300000 | sed 's/\\(.\\)\\(.*\\)/\\2\\1 line &/' > in",
	"sort in | cksum",
	"sort -n -r -k 3 in | head -n 5",
	"sort -u in | wc -l",
	NULL
};

TEST(sort_of_a_generated_file_matches_a_plain_run)
{
	if (!have_program("/usr/bin/sort") || !have_program("/usr/bin/seq"))
		SKIP(return, "sort or seq is not installed");
	compare_runs(_metadata, sort_script);
}

static const char *const tar_xz_script[] = {
	"set -e",
	"cd \"$KSLAB_TEST_MALLOC_DIR\"",
	"mkdir src out",
	"for i in 1 2 3 4 5 6 7 8; do seq $i 3 200000 > src/f$i; done",
	"tar -C src -cJf t.tar.xz .",
	"xz -t t.tar.xz",
	"tar -C out -xJf t.tar.xz",
	"cd out && cksum f1 f2 f3 f4 f5 f6 f7 f8",
	NULL
};

TEST(tar_and_xz_round_trip_matches_a_plain_run)
{
	if (!have_program("/usr/bin/tar") || !have_program("/usr/bin/xz"))
		SKIP(return, "tar or xz is not installed");
	compare_runs(_metadata, tar_xz_script);
}

static const char *const sqlite3_script[] = {
	"cd \"$KSLAB_TEST_MALLOC_DIR\" && sqlite3 db <<'EOF'",
	"CREATE TABLE t(id INTEGER PRIMARY KEY, k TEXT, v INTEGER);",
	"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 50000)",
	"  INSERT INTO t(k, v) SELECT 'key' || (i * 7919 % 1000), i * i % 977 FROM n;",
	"CREATE INDEX tk ON t(k);",
	"SELECT count(*), sum(v), max(length(k)) FROM t;",
	"SELECT k, count(*), sum(v) FROM t GROUP BY k ORDER BY sum(v) DESC LIMIT 3;",
	"SELECT group_concat(id) FROM (SELECT id FROM t WHERE k = 'key7' ORDER BY v, id LIMIT 5);",
	"EOF",
	NULL
};

TEST(sqlite3_queries_match_a_plain_run)
{
	if (!have_program("/usr/bin/sqlite3"))
		SKIP(return, "sqlite3 is not installed (tools/kslab-deps.sh installs it)");
	compare_runs(_metadata, sqlite3_script);
}

static const char *const git_script[] = {
	"set -e",
	"cd \"$KSLAB_TEST_MALLOC_DIR\"",
	"export HOME=$PWD GIT_CONFIG_NOSYSTEM=1",
	"export GIT_AUTHOR_NAME=k GIT_AUTHOR_EMAIL=k@example.org",
	"export GIT_COMMITTER_NAME=k GIT_COMMITTER_EMAIL=k@example.org",
	"export GIT_AUTHOR_DATE=2024-01-01T00:00:00Z GIT_COMMITTER_DATE=2024-01-01T00:00:00Z",
	"git init -q -b main repo && cd repo",
	"for i in 1 2 3; do seq $i 5000 > f$i; git add f$i; git commit -q -m \"commit $i\"; done",
	"git log --format='%H %s'",
	"git cat-file -p 'HEAD^{tree}'",
	"git gc -q",
	"git fsck --no-progress",
	"git rev-list --count HEAD",
	NULL
};

TEST(git_init_add_commit_log_matches_a_plain_run)
{
	if (!have_program("/usr/bin/git"))
		SKIP(return, "git is not installed");
	compare_runs(_metadata, git_script);
}

/* ---- main ------------------------------------------------------------- */

/* Under the library already, or in child mode: the library's path. */
static int find_library(char *path, size_t size)
{
	const char *env = getenv(LIB_ENV);
	char exe[4096];
	ssize_t n;
	char *slash;

	if (env && *env) {
		snprintf(path, size, "%s", env);
		return access(path, R_OK);
	}
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n < 0)
		return -1;
	exe[n] = '\0';
	/* <out>/selftests/malloc_test -> <out>/libkslab-malloc.so */
	slash = strrchr(exe, '/');
	if (slash)
		*slash = '\0';
	if (snprintf(path, size, "%s/../%s", exe, LIB_NAME) >= (int)size)
		return -1;
	return access(path, R_OK);
}

int main(int argc, char **argv)
{
	const char *mode = getenv(CHILD_ENV);
	const char *preloaded = getenv(PRELOADED_ENV);

	if (mode) {
		if (!strcmp(mode, "double_free"))
			return child_double_free();
		if (!strcmp(mode, "invalid_free"))
			return child_invalid_free();
		fprintf(stderr, "malloc_test: unknown child mode %s\n", mode);
		return 2;
	}
	if (KSLAB_TEST_SANITIZED) {
		ksft_print_header();
		ksft_exit_skip("%s\n", SANITIZER_SKIP);
	}
	if (!preloaded) {
		char lib[4096];

		if (find_library(lib, sizeof(lib))) {
			fprintf(stderr, "malloc_test: %s not found (build it with make, or set %s)\n",
				lib, LIB_ENV);
			return 1;
		}
		setenv(PRELOADED_ENV, lib, 1);
		setenv("LD_PRELOAD", lib, 1);
		execv("/proc/self/exe", argv);
		perror("malloc_test: execv");
		return 1;
	}
	snprintf(preloaded_lib, sizeof(preloaded_lib), "%s", preloaded);
	/* the programs the tests start get the library, not the harness's setting */
	unsetenv("LD_PRELOAD");
	return test_harness_run(argc, argv);
}
