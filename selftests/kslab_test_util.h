/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the kslab selftests.
 *
 * - stderr capture: kslab reports misuse (a free into the wrong cache, an
 *   invalid kfree, a cache destroyed with live objects) on stderr, so the
 *   tests redirect file descriptor 2 into an unlinked temporary file around
 *   the call under test and then assert on the text.  A temporary file
 *   rather than a pipe, so a long report can never block the writer.
 * - /proc/self/statm readers for resident and virtual size in bytes.
 * - sanitizer detection, so loop counts can be scaled down under
 *   ThreadSanitizer and tests that fight the sanitizers' shadow memory can
 *   be skipped.
 * - a bounded waitpid() and pthread_join(), so a child or a thread that
 *   hangs fails its test instead of the whole run.
 * - flags that a test thread and its workers set and poll with a deadline.
 *
 * Everything here uses libc only (never kslab), so a broken allocator cannot
 * break the instruments used to observe it.
 *
 * A trap when writing tests: the harness's ASSERT_*() and EXPECT_*() expand
 * to two statements (the check, then a loop that runs an optional TH_LOG()
 * and bails out), so as the body of an if or for they need braces.
 */
#ifndef _KSLAB_TEST_UTIL_H
#define _KSLAB_TEST_UTIL_H

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Sanitizer detection: gcc defines macros, clang answers __has_feature. */
#if defined(__SANITIZE_ADDRESS__)
#define KSLAB_TEST_ASAN 1
#endif
#if defined(__SANITIZE_THREAD__)
#define KSLAB_TEST_TSAN 1
#endif
#if defined(__has_feature)
#if __has_feature(address_sanitizer) && !defined(KSLAB_TEST_ASAN)
#define KSLAB_TEST_ASAN 1
#endif
#if __has_feature(thread_sanitizer) && !defined(KSLAB_TEST_TSAN)
#define KSLAB_TEST_TSAN 1
#endif
#endif

#ifndef KSLAB_TEST_ASAN
#define KSLAB_TEST_ASAN 0
#endif
#ifndef KSLAB_TEST_TSAN
#define KSLAB_TEST_TSAN 0
#endif

#define KSLAB_TEST_SANITIZED	(KSLAB_TEST_ASAN || KSLAB_TEST_TSAN)

/*
 * Loop counts are written for an optimised build; ThreadSanitizer runs
 * such loops five to fifteen times slower, so they shrink by this factor.
 */
#define KSLAB_TEST_TSAN_DIVISOR	10

static inline size_t test_scaled(size_t n)
{
	if (KSLAB_TEST_TSAN) {
		n /= KSLAB_TEST_TSAN_DIVISOR;
		return n ? n : 1;
	}
	return n;
}

/* ---- stderr capture ---------------------------------------------------- */

struct stderr_capture {
	int saved_fd;	/* the real stderr while capturing, else -1 */
	FILE *file;	/* unlinked temporary file holding the text */
	char *text;	/* NUL-terminated capture after stderr_capture_end() */
	size_t len;
};

/*
 * A sanitizer that halts on a report during a capture would write the
 * report into the capture and exit before the test could show it, so
 * while stderr is captured its reports go to the real stderr.
 */
#if KSLAB_TEST_SANITIZED
void __sanitizer_set_report_fd(void *fd);

static inline void sanitizer_reports_to(int fd)
{
	__sanitizer_set_report_fd((void *)(long)fd);
}
#else
static inline void sanitizer_reports_to(int fd)
{
	(void)fd;
}
#endif

/*
 * stderr_capture_begin() - send everything written to fd 2 into a buffer.
 *
 * Do not use ASSERT_*() or EXPECT_*() between begin and end: their messages
 * would land in the capture.  Returns 0, or -1 when the redirection could
 * not be set up (stderr then stays as it was).
 */
static inline int stderr_capture_begin(struct stderr_capture *cap)
{
	cap->saved_fd = -1;
	cap->text = NULL;
	cap->len = 0;
	cap->file = tmpfile();
	if (!cap->file)
		return -1;
	fflush(stderr);
	cap->saved_fd = dup(STDERR_FILENO);
	if (cap->saved_fd < 0)
		goto err_close;
	sanitizer_reports_to(cap->saved_fd);
	if (dup2(fileno(cap->file), STDERR_FILENO) < 0)
		goto err_saved;
	return 0;

err_saved:
	sanitizer_reports_to(STDERR_FILENO);
	close(cap->saved_fd);
	cap->saved_fd = -1;
err_close:
	fclose(cap->file);
	cap->file = NULL;
	return -1;
}

/*
 * stderr_capture_end() - restore stderr and return what was written.
 *
 * The text stays valid until stderr_capture_release().  Never returns NULL:
 * when nothing could be read the text is empty.
 */
static inline const char *stderr_capture_end(struct stderr_capture *cap)
{
	static char empty[1];

	if (cap->saved_fd < 0 || !cap->file)
		return cap->text ? cap->text : empty;

	fflush(stderr);
	dup2(cap->saved_fd, STDERR_FILENO);
	sanitizer_reports_to(STDERR_FILENO);
	close(cap->saved_fd);
	cap->saved_fd = -1;

	if (fseek(cap->file, 0, SEEK_END) == 0) {
		long size = ftell(cap->file);

		if (size < 0)
			size = 0;
		rewind(cap->file);
		cap->text = malloc((size_t)size + 1);
		if (cap->text) {
			cap->len = fread(cap->text, 1, (size_t)size, cap->file);
			cap->text[cap->len] = '\0';
		}
	}
	fclose(cap->file);
	cap->file = NULL;
	return cap->text ? cap->text : empty;
}

static inline void stderr_capture_release(struct stderr_capture *cap)
{
	free(cap->text);
	cap->text = NULL;
	cap->len = 0;
}

/* The first line of @text copied into @line (at most @size bytes with NUL). */
static inline const char *first_line(const char *text, char *line, size_t size)
{
	size_t n = strcspn(text, "\n");

	if (n >= size)
		n = size - 1;
	memcpy(line, text, n);
	line[n] = '\0';
	return line;
}

/*
 * Assertions on captured text; usable only inside a TEST() body.  On
 * failure the whole capture is logged, so the report is not lost.
 */
/* Everything written to @f, NUL-terminated, from its start; free() it. */
static inline char *file_text(FILE *f)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	ssize_t n;

	if (!buf)
		return NULL;
	fflush(f);
	if (lseek(fileno(f), 0, SEEK_SET) < 0) {
		buf[0] = '\0';
		return buf;
	}
	while ((n = read(fileno(f), buf + len, cap - len - 1)) > 0) {
		len += (size_t)n;
		if (len + 1 == cap) {
			char *bigger = realloc(buf, cap * 2);

			if (!bigger)
				break;
			buf = bigger;
			cap *= 2;
		}
	}
	buf[len] = '\0';
	return buf;
}

/* How many times @needle stands in @text (NULL: none). */
static inline unsigned int text_count(const char *text, const char *needle)
{
	unsigned int n = 0;

	while (text && (text = strstr(text, needle))) {
		n++;
		text += strlen(needle);
	}
	return n;
}

#define EXPECT_TEXT_CONTAINS(text, needle) do {				\
	const char *__t = (text);					\
	if (!strstr(__t, (needle)))					\
		TH_LOG("expected \"%s\" in:\n%s", (needle), __t);	\
	EXPECT_TRUE(strstr(__t, (needle)) != NULL);			\
} while (0)

#define ASSERT_TEXT_CONTAINS(text, needle) do {				\
	const char *__t = (text);					\
	if (!strstr(__t, (needle)))					\
		TH_LOG("expected \"%s\" in:\n%s", (needle), __t);	\
	ASSERT_TRUE(strstr(__t, (needle)) != NULL);			\
} while (0)

#define EXPECT_TEXT_EMPTY(text) do {					\
	const char *__t = (text);					\
	if (__t[0])							\
		TH_LOG("expected no output, got:\n%s", __t);		\
	EXPECT_EQ('\0', __t[0]);					\
} while (0)

/* ---- memory usage ------------------------------------------------------ */

/* Field @index of /proc/self/statm in bytes, or -1. 0: size, 1: resident. */
static inline long statm_bytes(int index)
{
	unsigned long fields[7] = { 0 };
	FILE *f = fopen("/proc/self/statm", "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%lu %lu %lu %lu %lu %lu %lu", &fields[0], &fields[1],
		   &fields[2], &fields[3], &fields[4], &fields[5], &fields[6]);
	fclose(f);
	if (index < 0 || index >= n)
		return -1;
	return (long)(fields[index] * (unsigned long)sysconf(_SC_PAGESIZE));
}

static inline long resident_bytes(void)
{
	return statm_bytes(1);
}

static inline long vm_size_bytes(void)
{
	return statm_bytes(0);
}

/* ---- time and children -------------------------------------------------- */

static inline unsigned long long monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline void sleep_ms(unsigned int ms)
{
	struct timespec ts = {
		.tv_sec = ms / 1000,
		.tv_nsec = (long)(ms % 1000) * 1000000,
	};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/*
 * Empty slabs beyond a cache's small reserve go back to the OS once they
 * have stayed empty for KSLAB_SLAB_DECAY_MS (default 500), on the next
 * slow-path operation of any cache.  Wait that long, then cause one.
 */
static inline void let_empty_slabs_decay(void)
{
	const char *env = getenv("KSLAB_SLAB_DECAY_MS");
	unsigned int ms = env ? (unsigned int)atoi(env) : 500;
	struct kmem_cache *s;

	sleep_ms(ms + 100);
	s = kmem_cache_create("decay_trigger", 64, 0, 0, NULL);
	if (s) {
		kmem_cache_free(s, kmem_cache_alloc(s, GFP_KERNEL));
		kmem_cache_destroy(s);
	}
}

/*
 * wait_child() - waitpid() with a deadline.
 *
 * Returns 0 with the child's status in @status, or -1 when it did not end
 * within @timeout_ms: it is then killed with SIGKILL and reaped.
 */
static inline int wait_child(pid_t pid, unsigned int timeout_ms, int *status)
{
	unsigned long long deadline = monotonic_ms() + timeout_ms;
	pid_t r;

	for (;;) {
		r = waitpid(pid, status, WNOHANG);
		if (r == pid)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
		if (monotonic_ms() >= deadline)
			break;
		sleep_ms(2);
	}
	kill(pid, SIGKILL);
	while (waitpid(pid, status, 0) < 0 && errno == EINTR)
		;
	return -1;
}

/*
 * join_thread_within() - pthread_join() with a deadline.
 *
 * Returns 0 once @tid was joined, or -1 when it was still running after
 * @timeout_ms; it is then left running (its test fails and the test's
 * process exits, which ends it).
 */
static inline int join_thread_within(pthread_t tid, unsigned int timeout_ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	return pthread_timedjoin_np(tid, NULL, &ts) ? -1 : 0;
}

/*
 * Flags between a test thread and its workers: an int written with
 * flag_set() (release) and read with flag_get() (acquire), so whatever
 * was written before setting it is visible to the thread that sees it.
 */
static inline void flag_set(int *flag, int value)
{
	__atomic_store_n(flag, value, __ATOMIC_RELEASE);
}

static inline int flag_get(const int *flag)
{
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

/* Polls until *@flag is at least @value; false when @timeout_ms passed. */
static inline bool flag_wait(const int *flag, int value,
			     unsigned int timeout_ms)
{
	unsigned long long deadline = monotonic_ms() + timeout_ms;

	while (flag_get(flag) < value) {
		if (monotonic_ms() >= deadline)
			return false;
		sleep_ms(1);
	}
	return true;
}

/* True when @status says the child called exit(0). */
static inline bool child_exited_cleanly(int status)
{
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

#endif /* _KSLAB_TEST_UTIL_H */
