// SPDX-License-Identifier: MIT
/*
 * kslab_symbolize(): the names the finalizer watchdog prints.  Static and
 * global functions of this program (found only in its .symtab: nothing
 * here is exported), an offset inside a function, libc functions (from
 * libc's .dynsym), the "%p" fallback for addresses no function holds,
 * truncation into a short buffer, and callers on several threads at once.
 * Exact glibc names are not asserted: printf may be named _IO_printf, or
 * a sanitizer's interceptor.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <kslab/slab.h>

/* before the harness, whose ARRAY_SIZE() gives way to the kernel's */
#include "lib/compiler.h"
#include "lib/symbolize.h"

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

#define NAME_LEN	128
#define NR_THREADS	4
#define NR_CALLS	200
#define TIMEOUT_MS	60000

/* A function pointer as the code address the watchdog would pass. */
#define CODE(fn)	((const void *)(uintptr_t)(fn))

/*
 * The functions to name.  Their bodies differ, so that identical code
 * folding cannot merge them, and they are only ever called through a
 * pointer, so that no clone (.constprop, .isra) stands in for them.
 */
static int sink;

static noinline int static_target(int x)
{
	WRITE_ONCE(sink, x);
	return x * 3 + READ_ONCE(sink);
}

int symbolize_global_target(int x);

noinline int symbolize_global_target(int x)
{
	WRITE_ONCE(sink, x + 1);
	return x * 5 - READ_ONCE(sink);
}

static char program_data[64];

/* printf as libc defines it, whatever this program or a sanitizer binds. */
static const void *libc_printf(void **handle)
{
	*handle = dlopen("libc.so.6", RTLD_LAZY | RTLD_NOLOAD);
	return *handle ? dlsym(*handle, "printf") : NULL;
}

TEST(static_function_is_named)
{
	char buf[NAME_LEN];

	ASSERT_EQ(0, kslab_symbolize(CODE(static_target), buf, sizeof(buf)));
	EXPECT_STREQ("static_target", buf);
}

TEST(global_function_is_named)
{
	char buf[NAME_LEN];

	ASSERT_EQ(0, kslab_symbolize(CODE(symbolize_global_target), buf,
				     sizeof(buf)));
	EXPECT_STREQ("symbolize_global_target", buf);
}

TEST(address_inside_function_gets_offset)
{
	const char *addr = (const char *)CODE(static_target) + 3;
	char buf[NAME_LEN];

	ASSERT_EQ(0, kslab_symbolize(addr, buf, sizeof(buf)));
	EXPECT_STREQ("static_target+0x3", buf);
}

TEST(libc_function_is_named)
{
	char buf[NAME_LEN];
	const void *fn;
	void *libc;

	fn = libc_printf(&libc);
	ASSERT_NE(NULL, fn);
	EXPECT_EQ(0, kslab_symbolize(fn, buf, sizeof(buf)));
	EXPECT_TEXT_CONTAINS(buf, "printf");
	EXPECT_EQ(NULL, strchr(buf, '+'));
	dlclose(libc);
}

TEST(address_inside_libc_function_gets_offset)
{
	char buf[NAME_LEN];
	const void *fn;
	void *libc;

	fn = libc_printf(&libc);
	ASSERT_NE(NULL, fn);
	EXPECT_EQ(0, kslab_symbolize((const char *)fn + 1, buf, sizeof(buf)));
	EXPECT_TEXT_CONTAINS(buf, "printf+0x1");
	dlclose(libc);
}

TEST(null_address_falls_back_to_pointer_text)
{
	char buf[NAME_LEN], want[NAME_LEN];

	snprintf(want, sizeof(want), "%p", NULL);
	EXPECT_EQ(-ENOENT, kslab_symbolize(NULL, buf, sizeof(buf)));
	EXPECT_STREQ(want, buf);
}

TEST(address_outside_any_object_falls_back_to_pointer_text)
{
	char buf[NAME_LEN], want[NAME_LEN];

	/* buf is on the stack: no loaded object holds it */
	snprintf(want, sizeof(want), "%p", (void *)buf);
	EXPECT_EQ(-ENOENT, kslab_symbolize(buf, buf, sizeof(buf)));
	EXPECT_STREQ(want, buf);
}

TEST(data_address_in_program_falls_back_to_pointer_text)
{
	char buf[NAME_LEN], want[NAME_LEN];
	const char *addr = program_data + 8;

	snprintf(want, sizeof(want), "%p", (const void *)addr);
	EXPECT_EQ(-ENOENT, kslab_symbolize(addr, buf, sizeof(buf)));
	EXPECT_STREQ(want, buf);
}

TEST(short_buffer_truncates_name)
{
	char buf[16];

	memset(buf, 'X', sizeof(buf));
	EXPECT_EQ(0, kslab_symbolize(CODE(static_target), buf, 7));
	EXPECT_STREQ("static", buf);
	EXPECT_EQ('X', buf[7]);
}

TEST(short_buffer_truncates_pointer_text)
{
	char buf[16], want[4];

	snprintf(want, sizeof(want), "%p", NULL);
	memset(buf, 'X', sizeof(buf));
	EXPECT_EQ(-ENOENT, kslab_symbolize(NULL, buf, sizeof(want)));
	EXPECT_STREQ(want, buf);
	EXPECT_EQ('X', buf[sizeof(want)]);
}

TEST(zero_length_buffer_is_left_untouched)
{
	char buf[4] = "XXX";

	EXPECT_EQ(-EINVAL, kslab_symbolize(CODE(static_target), buf, 0));
	EXPECT_STREQ("XXX", buf);
}

/* ---- threads ------------------------------------------------------------ */

struct symbolize_worker {
	pthread_t thread;
	const void *libc_fn;
	int mismatches;
};

static void *symbolize_worker(void *arg)
{
	struct symbolize_worker *w = arg;
	const char *inside = (const char *)CODE(static_target) + 3;
	char buf[NAME_LEN];
	size_t i;

	/* no ASSERT here: only the test thread may bail out */
	for (i = 0; i < test_scaled(NR_CALLS); i++) {
		if (kslab_symbolize(inside, buf, sizeof(buf)) ||
		    strcmp(buf, "static_target+0x3"))
			w->mismatches++;
		if (kslab_symbolize(w->libc_fn, buf, sizeof(buf)) ||
		    !strstr(buf, "printf"))
			w->mismatches++;
	}
	return NULL;
}

TEST(concurrent_callers_all_get_the_name)
{
	struct symbolize_worker w[NR_THREADS];
	const void *fn;
	void *libc;
	int i;

	fn = libc_printf(&libc);
	ASSERT_NE(NULL, fn);
	for (i = 0; i < NR_THREADS; i++) {
		w[i].libc_fn = fn;
		w[i].mismatches = 0;
		ASSERT_EQ(0, pthread_create(&w[i].thread, NULL,
					    symbolize_worker, &w[i]));
	}
	for (i = 0; i < NR_THREADS; i++) {
		ASSERT_EQ(0, join_thread_within(w[i].thread, TIMEOUT_MS));
		EXPECT_EQ(0, w[i].mismatches);
	}
	dlclose(libc);
}

TEST_HARNESS_MAIN
