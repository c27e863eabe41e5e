// SPDX-License-Identifier: MIT
/*
 * lib/symbolize.c: the names, source lines and call traces kslab's
 * reports print.  Static and global functions of this program (found only
 * in its .symtab: nothing here is exported), an offset inside a function,
 * this file and a line inside the function from the -g build's DWARF,
 * a return address described by its call, libc functions, a library
 * dlopen()ed after the first lookup, the "%p" fallback for addresses no
 * function holds, truncation into a short buffer, callers on several
 * threads at once, call traces innermost first, and lookups in a fork()
 * child, also when the parent was inside the symbolizer at the fork.
 * Exact glibc names are not asserted: printf may be named _IO_printf, or
 * a sanitizer's interceptor.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

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
#define NR_FORKS	20
/* as the Makefile names it: relative to the source tree */
#define THIS_FILE	__FILE__

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

/*
 * Functions whose source lines are known: each lies between its two
 * markers.  line_target() is looked up by its address, line_caller() by
 * the return address of the call it makes.
 */
enum { LINE_TARGET_FIRST = __LINE__ };
static noinline int line_target(int x)
{
	WRITE_ONCE(sink, x - 7);
	return x * 11 + READ_ONCE(sink);
}
enum { LINE_TARGET_LAST = __LINE__ };

static noinline const void *return_address(void)
{
	return __builtin_extract_return_addr(__builtin_return_address(0));
}

enum { LINE_CALLER_FIRST = __LINE__ };
static noinline const void *line_caller(void)
{
	const void *ret = return_address();

	WRITE_ONCE(sink, 1);
	return ret;
}
enum { LINE_CALLER_LAST = __LINE__ };

static char program_data[64];

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && !strcmp(s + n - m, suffix);
}

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

TEST(function_resolves_to_this_file_and_a_line_inside_it)
{
	struct kslab_symbol sym;

	ASSERT_EQ(0, kslab_symbol_lookup(CODE(line_target), KSLAB_SYM_SOURCE,
					 &sym));
	EXPECT_STREQ("line_target", sym.name);
	EXPECT_EQ(0, sym.offset);
	EXPECT_LT(0, sym.size);
	EXPECT_TRUE(ends_with(sym.file, THIS_FILE))
		TH_LOG("file \"%s\"", sym.file);
	EXPECT_LE(LINE_TARGET_FIRST, sym.line);
	EXPECT_GE(LINE_TARGET_LAST, sym.line);
	EXPECT_STREQ("symbolize_test", sym.module);
}

TEST(lookup_without_source_flag_leaves_file_and_line_empty)
{
	struct kslab_symbol sym;

	ASSERT_EQ(0, kslab_symbol_lookup(CODE(line_target), 0, &sym));
	EXPECT_STREQ("line_target", sym.name);
	EXPECT_STREQ("", sym.file);
	EXPECT_EQ(0, sym.line);
}

TEST(return_address_resolves_to_the_line_of_its_call)
{
	const void *ret = line_caller();
	struct kslab_symbol sym;

	ASSERT_EQ(0, kslab_symbol_lookup(ret, KSLAB_SYM_RETURN | KSLAB_SYM_SOURCE,
					 &sym));
	EXPECT_STREQ("line_caller", sym.name);
	/* the offset is that of the return address itself */
	EXPECT_EQ((uintptr_t)ret - (uintptr_t)CODE(line_caller), sym.offset);
	EXPECT_TRUE(ends_with(sym.file, THIS_FILE))
		TH_LOG("file \"%s\"", sym.file);
	EXPECT_LE(LINE_CALLER_FIRST, sym.line);
	EXPECT_GE(LINE_CALLER_LAST, sym.line);
}

TEST(address_in_no_module_has_no_name_file_or_module)
{
	struct kslab_symbol sym;
	char on_stack[16] = "";

	EXPECT_EQ(-ENOENT, kslab_symbol_lookup(on_stack, KSLAB_SYM_SOURCE, &sym));
	EXPECT_EQ((const void *)on_stack, sym.addr);
	EXPECT_STREQ("", sym.name);
	EXPECT_STREQ("", sym.file);
	EXPECT_STREQ("", sym.module);
	EXPECT_EQ(0, sym.line);
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

/* Libraries this program does not load, and a function of each. */
static const struct {
	const char *lib;
	const char *fn;
} unloaded_libs[] = {
	{ "libm.so.6", "cbrt" },
	/* sanitizer runtimes load libm */
	{ "libresolv.so.2", "__fp_query" },
};

TEST(library_loaded_after_the_first_lookup_is_named)
{
	char buf[NAME_LEN];
	const void *fn;
	void *lib = NULL;
	size_t i;

	for (i = 0; i < ARRAY_SIZE(unloaded_libs); i++) {
		if (!dlopen(unloaded_libs[i].lib, RTLD_LAZY | RTLD_NOLOAD))
			break;
	}
	if (i == ARRAY_SIZE(unloaded_libs))
		SKIP(return, "every candidate library is loaded already");
	/* the session exists before the library is loaded */
	ASSERT_EQ(0, kslab_symbolize(CODE(static_target), buf, sizeof(buf)));
	lib = dlopen(unloaded_libs[i].lib, RTLD_NOW);
	ASSERT_NE(NULL, lib);
	fn = dlsym(lib, unloaded_libs[i].fn);
	ASSERT_NE(NULL, fn);
	EXPECT_EQ(0, kslab_symbolize(fn, buf, sizeof(buf)));
	/* an alias may be chosen: cbrt may be __cbrt */
	EXPECT_TEXT_CONTAINS(buf, unloaded_libs[i].fn);
	dlclose(lib);
}

/* ---- call traces -------------------------------------------------------- */

static unsigned int trace_skip;

/*
 * Three frames of known names.  Each does something after its call, so
 * that no call becomes a tail call and every frame stays on the stack.
 */
static noinline void trace_inner(void)
{
	kslab_dump_stack(READ_ONCE(trace_skip));
	WRITE_ONCE(sink, 1);
}

static noinline void trace_middle(void)
{
	trace_inner();
	WRITE_ONCE(sink, 2);
}

static noinline void trace_outer(void)
{
	trace_middle();
	WRITE_ONCE(sink, 3);
}

/* The call trace trace_outer() prints with @skip, or NULL. */
static const char *capture_trace(struct stderr_capture *cap, unsigned int skip)
{
	WRITE_ONCE(trace_skip, skip);
	if (stderr_capture_begin(cap))
		return NULL;
	trace_outer();
	return stderr_capture_end(cap);
}

/* The position of frame @name in @text, or -1. */
static long frame_at(const char *text, const char *name)
{
	char needle[NAME_LEN];
	const char *p;

	snprintf(needle, sizeof(needle), "] %s+0x", name);
	p = strstr(text, needle);
	return p ? p - text : -1;
}

TEST(call_trace_names_the_callers_innermost_first)
{
	struct stderr_capture cap;
	char line[256];
	const char *text;
	long inner, middle, outer;

	text = capture_trace(&cap, 0);
	ASSERT_NE(NULL, text);
	ASSERT_TEXT_CONTAINS(text, "Call trace:\n");
	text = strstr(text, "Call trace:\n") + strlen("Call trace:\n");
	/* the first frame is the function that asked for the trace */
	first_line(text, line, sizeof(line));
	EXPECT_EQ(0, strncmp(line, " [<", 3)) TH_LOG("%s", line);
	EXPECT_TEXT_CONTAINS(line, "] trace_inner+0x");
	EXPECT_TEXT_CONTAINS(line, "(" THIS_FILE ":");
	inner = frame_at(text, "trace_inner");
	middle = frame_at(text, "trace_middle");
	outer = frame_at(text, "trace_outer");
	EXPECT_LE(0, inner);
	EXPECT_LT(inner, middle) TH_LOG("%s", text);
	EXPECT_LT(middle, outer) TH_LOG("%s", text);
	stderr_capture_release(&cap);
}

TEST(call_trace_skip_leaves_out_the_innermost_callers)
{
	struct stderr_capture cap;
	char line[256];
	const char *text;

	text = capture_trace(&cap, 2);
	ASSERT_NE(NULL, text);
	ASSERT_TEXT_CONTAINS(text, "Call trace:\n");
	text = strstr(text, "Call trace:\n") + strlen("Call trace:\n");
	first_line(text, line, sizeof(line));
	EXPECT_TEXT_CONTAINS(line, "] trace_outer+0x");
	EXPECT_EQ(-1, frame_at(text, "trace_inner"));
	EXPECT_EQ(-1, frame_at(text, "trace_middle"));
	stderr_capture_release(&cap);
}

static noinline void free_a_stack_address(void)
{
	char on_stack[32] = "";

	kfree(on_stack);
	WRITE_ONCE(sink, 4);
}

TEST(slab_report_prints_the_call_trace_of_the_bad_free)
{
	struct stderr_capture cap;
	const char *text;

	ASSERT_EQ(0, stderr_capture_begin(&cap));
	free_a_stack_address();
	text = stderr_capture_end(&cap);
	EXPECT_TEXT_CONTAINS(text, "invalid pointer");
	EXPECT_TEXT_CONTAINS(text, "Call trace:\n");
	EXPECT_LE(0, frame_at(text, "free_a_stack_address"));
	EXPECT_TEXT_CONTAINS(text, "(" THIS_FILE ":");
	stderr_capture_release(&cap);
}

/* ---- fork --------------------------------------------------------------- */

/* In a fork child: exit 0 if this program's functions are still named. */
static _Noreturn void child_symbolizes(void)
{
	struct kslab_symbol sym;
	char buf[NAME_LEN];

	if (kslab_symbolize(CODE(static_target), buf, sizeof(buf)) ||
	    strcmp(buf, "static_target"))
		_exit(1);
	if (kslab_symbol_lookup(CODE(line_target), KSLAB_SYM_SOURCE, &sym) ||
	    !ends_with(sym.file, THIS_FILE))
		_exit(2);
	_exit(0);
}

TEST(forked_child_symbolizes)
{
	char buf[NAME_LEN];
	int status;
	pid_t pid;

	/* the parent's session exists before the fork */
	ASSERT_EQ(0, kslab_symbolize(CODE(static_target), buf, sizeof(buf)));
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid)
		child_symbolizes();
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

static int stop_looking;

static void *keep_looking_up(void *unused)
{
	struct kslab_symbol sym;

	(void)unused;
	while (!flag_get(&stop_looking))
		kslab_symbol_lookup(CODE(line_target), KSLAB_SYM_SOURCE, &sym);
	return NULL;
}

TEST(fork_while_another_thread_symbolizes_leaves_the_child_working)
{
	int i, status, failed = 0;
	pthread_t thread;
	pid_t pid;

	/*
	 * gcc 12's sanitizer runtimes do not hold their allocator locks
	 * across fork(): a child forked while the other thread is inside
	 * malloc() hangs in its first malloc(), before the symbolizer.
	 */
	if (KSLAB_TEST_SANITIZED)
		SKIP(return, "the sanitizer's allocator is not fork-safe");
	ASSERT_EQ(0, pthread_create(&thread, NULL, keep_looking_up, NULL));
	for (i = 0; i < NR_FORKS; i++) {
		pid = fork();
		if (pid < 0)
			break;
		if (!pid)
			child_symbolizes();
		if (wait_child(pid, TIMEOUT_MS, &status) ||
		    !WIFEXITED(status) || WEXITSTATUS(status)) {
			TH_LOG("child %d: status %#x", i, status);
			failed++;
		}
	}
	flag_set(&stop_looking, 1);
	ASSERT_EQ(0, join_thread_within(thread, TIMEOUT_MS));
	EXPECT_EQ(NR_FORKS, i);
	EXPECT_EQ(0, failed);
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
