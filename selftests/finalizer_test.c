// SPDX-License-Identifier: MIT
/*
 * Go-style finalizers and cleanups (<kslab/finalizer.h>), one behaviour per
 * TEST: a finalizer runs once, a grace period after the free, on the
 * thread "kslab-finalizer", never inline, with the object intact; every
 * free function hands it over; finalizers run one at a time in free
 * order; a reader inside rcu_read_lock() keeps the object's finalizer
 * back; the error returns of the setters; cache finalizers; cleanups and
 * their handles; memory reused only after the finalizer and cleanups
 * returned; a stuck finalizer holds up the queue but not kmem_gc(); the
 * watchdog, pthread_exit() and exit reports; the hand-off to
 * system_unbound_wq; fork(); and Go's two classic finalizer examples
 * (tools/finalizer-demo/simple.c and blocking.c), byte for byte.
 *
 * How the tests are written:
 * - Finalizers and cleanups never ASSERT (the harness's asserts belong to
 *   the test thread): they count into records, the test asserts on those.
 * - Every wait is bounded.  Timing is only checked as a generous upper
 *   bound for calls that must return promptly, or as a lower bound that
 *   follows from a sleep.
 * - A stuck finalizer waits on a gate the test opens before it ends; the
 *   tests that leave one stuck on purpose do so in a child process.
 * - Options are read once at start-up, so the tests that need
 *   KSLAB_FINALIZER_WATCHDOG_MS or KSLAB_FINALIZE_AT_EXIT run this binary
 *   again with the variable set, and main() hands that run to child_main()
 *   instead of the harness.  The tests that watch a process exit fork (or
 *   re-run the binary) and read its stdout and stderr from files.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <urcu/urcu-memb.h>

#include <kslab/kslab.h>

#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#include "kselftest_harness.h"
#include "kslab_test_util.h"

/* Bound for anything that must finish: far above a normal run. */
#define TIMEOUT_MS		20000
/* A child's own bound: it fails by itself before its parent gives up. */
#define CHILD_TIMEOUT_MS	(TIMEOUT_MS / 2)
/* Bound for a call that must return promptly, on a loaded machine. */
#define PROMPT_MS		2000
/* How long the reader tests keep a freed object in view. */
#define HOLD_MS			100
/* The watchdog threshold the watchdog child runs with. */
#define WATCHDOG_MS		100

#define FINALIZER_THREAD	"kslab-finalizer"

/*
 * The children that fork() starts create kslab's threads again; without
 * die_after_fork=0 ThreadSanitizer kills a child that creates a thread
 * after a fork of a threaded process.  And every process here exits with
 * kslab's threads alive, where ThreadSanitizer would sleep a second
 * (atexit_sleep_ms) for them to finish first: once per TEST.
 */
#if KSLAB_TEST_TSAN
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0:atexit_sleep_ms=0";
}
#endif

/*
 * Forked children that are not re-executed end with _exit(), or with
 * exit() to show kslab's exit report; LeakSanitizer sits those out, as in
 * slab_thread_test.c: in a child of a threaded process it can neither
 * suspend the parent's other threads nor take ASan's allocator locks that
 * one of them held at fork() time.
 */
static bool in_forked_child;

#if KSLAB_TEST_ASAN
__attribute__((visibility("default"))) int __lsan_is_turned_off(void);
int __lsan_is_turned_off(void)
{
	return in_forked_child;
}
#endif

static pid_t fork_child(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0)
		in_forked_child = true;
	return pid;
}

#define load_acquire(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define inc_release(x)		__atomic_fetch_add(&(x), 1, __ATOMIC_RELEASE)

/* ---- objects and records ---------------------------------------------- */

/*
 * A test object: an id, then bytes derived from it up to the size it was
 * allocated with, so a finalizer can tell whether anything changed since
 * the free.  The rcu_head is only for kfree_rcu(), which may use it.
 */
struct tobj {
	unsigned long id;
	unsigned long len;		/* bytes in pattern[] */
	struct rcu_head rcu;
	unsigned char pattern[];
};

static unsigned char pattern_byte(unsigned long id, size_t i)
{
	return (unsigned char)(id * 131 + i * 7 + 1);
}

static void obj_fill(struct tobj *o, unsigned long id, size_t size)
{
	size_t i;

	o->id = id;
	o->len = size - sizeof(*o);
	for (i = 0; i < o->len; i++)
		o->pattern[i] = pattern_byte(id, i);
}

static bool obj_intact(const struct tobj *o)
{
	size_t i;

	for (i = 0; i < o->len; i++)
		if (o->pattern[i] != pattern_byte(o->id, i))
			return false;
	return true;
}

static struct tobj *kmalloc_obj(unsigned long id, size_t size)
{
	struct tobj *o = kmalloc(size, GFP_KERNEL);

	if (o)
		obj_fill(o, id, size);
	return o;
}

static struct tobj *cache_obj(struct kmem_cache *s, unsigned long id)
{
	struct tobj *o = kmem_cache_alloc(s, GFP_KERNEL);

	if (o)
		obj_fill(o, id, kmem_cache_size(s));
	return o;
}

static struct kmem_cache *obj_cache(const char *name, unsigned int size)
{
	return kmem_cache_create(name, size, 0, 0, NULL);
}

static size_t active_objs(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	kmem_cache_get_info(s, &info);
	return info.active_objs;
}

static struct kmem_finalizer_stats fin_stats(void)
{
	struct kmem_finalizer_stats st;

	memset(&st, 0, sizeof(st));
	kmem_finalizer_stats(&st);
	return st;
}

static bool on_finalizer_thread(void)
{
	char name[16] = "";

	pthread_getname_np(pthread_self(), name, sizeof(name));
	return !strcmp(name, FINALIZER_THREAD);
}

/* What a finalizer saw; its arg. */
struct fin_record {
	int runs;
	int off_thread;		/* runs not on the thread kslab-finalizer */
	int damaged;		/* runs that found the contents changed */
	void *obj;		/* the object the last run received */
};

static void record_finalizer(void *obj, void *arg)
{
	struct fin_record *r = arg;

	if (!on_finalizer_thread())
		inc_release(r->off_thread);
	if (!obj_intact(obj))
		inc_release(r->damaged);
	__atomic_store_n(&r->obj, obj, __ATOMIC_RELAXED);
	inc_release(r->runs);
}

/* A second finalizer, to tell which of two ran. */
static void other_finalizer(void *obj, void *arg)
{
	record_finalizer(obj, arg);
}

#define EXPECT_RAN_ONCE_ON(r, o) do {					\
	EXPECT_EQ(1, load_acquire((r)->runs));				\
	EXPECT_EQ((void *)(o), __atomic_load_n(&(r)->obj, __ATOMIC_RELAXED)); \
	EXPECT_EQ(0, load_acquire((r)->off_thread));			\
	EXPECT_EQ(0, load_acquire((r)->damaged));			\
} while (0)

/*
 * Everything freed so far finalized: kmem_gc() queues what passed its
 * grace period, then the queue drains.  False if it did not within the
 * deadline (a finalizer is stuck).
 */
static bool finalize_all(void)
{
	kmem_gc();
	return kmem_finalizers_wait(TIMEOUT_MS) == 0;
}

/* ---- a gate: a finalizer that blocks until the test opens it ---------- */

struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool open;
	int entered;		/* the finalizer is inside */
	int left;		/* and has returned */
};

#define GATE_INIT { .lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER }

static void gate_open(struct gate *g)
{
	pthread_mutex_lock(&g->lock);
	g->open = true;
	pthread_cond_broadcast(&g->cond);
	pthread_mutex_unlock(&g->lock);
}

static void gate_pass(struct gate *g)
{
	inc_release(g->entered);
	pthread_mutex_lock(&g->lock);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	inc_release(g->left);
}

/*
 * The finalizer that gets stuck, its arg a struct gate.  The watchdog's
 * report names it: a static function, found in the executable's .symtab.
 */
static void blocking_finalizer(void *obj, void *arg)
{
	gate_pass(arg);
}

/* ---- running a child and reading its output ---------------------------- */

struct child_run {
	int status;
	unsigned long long ms;	/* from fork to reaped */
	char *out;		/* its stdout and stderr, NUL-terminated */
	char *err;
};

/*
 * The environment of a re-executed child: ours first, since getenv()
 * takes the first match.
 */
#define CHILD_MODE_ENV		"KSLAB_TEST_FINALIZER_CHILD"

static char **child_env(const char *mode_var, const char *extra)
{
	size_t n = 0, i, k = 0;
	char **envp;

	while (environ[n])
		n++;
	envp = calloc(n + 3, sizeof(*envp));
	if (!envp)
		return NULL;
	envp[k++] = (char *)mode_var;
	if (extra)
		envp[k++] = (char *)extra;
	for (i = 0; i < n; i++)
		envp[k++] = environ[i];
	return envp;
}

/*
 * Runs @fn in a forked child, or with @mode this binary again with
 * CHILD_MODE_ENV=@mode and @extra_env ("NAME=value" or NULL), its stdout
 * and stderr going to temporary files (not pipes: nothing has to read
 * them while it runs).  A forked child ends with exit(), so kslab's exit
 * path runs.  Returns 0, or -1 when the child could not be started or did
 * not end within TIMEOUT_MS (it is then killed).
 */
static int run_child(int (*fn)(void), const char *mode, const char *extra_env,
		     struct child_run *run)
{
	char mode_var[128];
	char **envp = NULL;
	FILE *out, *err;
	unsigned long long start;
	int ret = -1;
	pid_t pid;

	memset(run, 0, sizeof(*run));
	out = tmpfile();
	err = tmpfile();
	if (!out || !err)
		goto close;
	if (mode) {
		snprintf(mode_var, sizeof(mode_var), "%s=%s", CHILD_MODE_ENV, mode);
		envp = child_env(mode_var, extra_env);
		if (!envp)
			goto close;
	}
	start = monotonic_ms();
	pid = fork_child();
	if (pid < 0)
		goto close;
	if (pid == 0) {
		if (dup2(fileno(out), STDOUT_FILENO) < 0 ||
		    dup2(fileno(err), STDERR_FILENO) < 0)
			_exit(126);
		if (mode) {
			execle("/proc/self/exe", "finalizer_test", (char *)NULL, envp);
			_exit(127);
		}
		exit(fn());
	}
	ret = wait_child(pid, TIMEOUT_MS, &run->status);
	run->ms = monotonic_ms() - start;
	run->out = file_text(out);
	run->err = file_text(err);
close:
	free(envp);
	if (out)
		fclose(out);
	if (err)
		fclose(err);
	return ret;
}

static void child_run_release(struct child_run *run)
{
	free(run->out);
	free(run->err);
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* A re-executed child has no harness: it says what failed, and exits. */
static int child_failed(int code, const char *what)
{
	fprintf(stderr, "# child: %s\n", what);
	return code;
}

/* ---- runs once, on the finalizer thread, never inline ------------------ */

TEST(finalizer_runs_once_with_its_arg_after_free_and_gc)
{
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	/* and never again */
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(r.runs));
}

/*
 * Freed inside the freeing thread's own read-side section, the finalizer
 * cannot have run when kfree() returns: its grace period has not begun
 * to end.  It then runs on the finalizer thread, not on this one.
 */
TEST(finalizer_runs_on_the_finalizer_thread_never_inline)
{
	struct fin_record r[8] = { 0 };
	struct tobj *o[8];
	int runs_in_free = 0;
	unsigned int i;

	for (i = 0; i < 8; i++) {
		o[i] = kmalloc_obj(i, 32 + 40 * i);
		ASSERT_NE(NULL, o[i]);
		ASSERT_EQ(0, kmem_set_finalizer(o[i], record_finalizer, &r[i]));
	}
	urcu_memb_register_thread();
	urcu_memb_read_lock();
	for (i = 0; i < 8; i++) {
		kfree(o[i]);
		runs_in_free += load_acquire(r[i].runs);
	}
	urcu_memb_read_unlock();
	urcu_memb_unregister_thread();
	EXPECT_EQ(0, runs_in_free);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < 8; i++)
		EXPECT_RAN_ONCE_ON(&r[i], o[i]);
}

TEST(finalizer_gets_the_object_intact)
{
	static const size_t sizes[] = { 32, 48, 100, 256, 1000, 4096, 8192 };
	const unsigned int nr = ARRAY_SIZE(sizes);
	struct fin_record r[ARRAY_SIZE(sizes) + 1] = { { 0 } };
	struct tobj *o[ARRAY_SIZE(sizes) + 1];
	struct kmem_cache *s = obj_cache("fin_intact", 200);
	unsigned int i;

	ASSERT_NE(NULL, s);
	for (i = 0; i < nr; i++) {
		o[i] = kmalloc_obj(i + 100, sizes[i]);
		ASSERT_NE(NULL, o[i]);
	}
	o[nr] = cache_obj(s, 7);
	ASSERT_NE(NULL, o[nr]);
	for (i = 0; i <= nr; i++)
		ASSERT_EQ(0, kmem_set_finalizer(o[i], record_finalizer, &r[i]));
	for (i = 0; i < nr; i++)
		kfree(o[i]);
	kmem_cache_free(s, o[nr]);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i <= nr; i++)
		EXPECT_RAN_ONCE_ON(&r[i], o[i]);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

/* Larger than any kmalloc cache: mapped on its own, still a kslab object. */
TEST(finalizer_works_on_large_kmalloc_objects)
{
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(3, 4 * KMALLOC_MAX_CACHE_SIZE + 100);

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
}

/* ---- every free function ----------------------------------------------- */

enum free_way {
	BY_KFREE,
	BY_CACHE_FREE,
	BY_BULK,
	BY_BULK_NULL,
	BY_KFREE_RCU,
	BY_KFREE_RCU_MIGHTSLEEP,
	BY_KREALLOC,
	BY_CACHE_KFREE,
	NR_FREE_WAYS
};

TEST(every_free_function_hands_the_object_to_its_finalizer)
{
	static const char *const way_name[NR_FREE_WAYS] = {
		"kfree", "kmem_cache_free", "kmem_cache_free_bulk",
		"kmem_cache_free_bulk(NULL)", "kfree_rcu", "kfree_rcu_mightsleep",
		"krealloc", "kfree of a cache object",
	};
	struct fin_record r[NR_FREE_WAYS] = { { 0 } };
	struct tobj *o[NR_FREE_WAYS];
	struct kmem_cache *s = obj_cache("fin_free_ways", 96);
	void *bulk[1], *moved;
	unsigned int i;

	ASSERT_NE(NULL, s);
	for (i = 0; i < NR_FREE_WAYS; i++) {
		bool from_cache = i == BY_CACHE_FREE || i == BY_BULK ||
				  i == BY_BULK_NULL || i == BY_CACHE_KFREE;

		o[i] = from_cache ? cache_obj(s, i) : kmalloc_obj(i, 64);
		ASSERT_NE(NULL, o[i]);
		ASSERT_EQ(0, kmem_set_finalizer(o[i], record_finalizer, &r[i]));
	}
	kfree(o[BY_KFREE]);
	kmem_cache_free(s, o[BY_CACHE_FREE]);
	bulk[0] = o[BY_BULK];
	kmem_cache_free_bulk(s, 1, bulk);
	bulk[0] = o[BY_BULK_NULL];
	kmem_cache_free_bulk(NULL, 1, bulk);
	kfree_rcu(o[BY_KFREE_RCU], rcu);
	kfree_rcu_mightsleep(o[BY_KFREE_RCU_MIGHTSLEEP]);
	/* from kmalloc-64 to a page-sized class: it has to move */
	moved = krealloc(o[BY_KREALLOC], 4000, GFP_KERNEL);
	ASSERT_NE(NULL, moved);
	ASSERT_NE((void *)o[BY_KREALLOC], moved);
	kfree(o[BY_CACHE_KFREE]);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < NR_FREE_WAYS; i++) {
		if (load_acquire(r[i].runs) != 1)
			TH_LOG("freed by %s: %d runs", way_name[i],
			       load_acquire(r[i].runs));
		EXPECT_RAN_ONCE_ON(&r[i], o[i]);
	}
	/* the copy keeps the contents, and is an ordinary object */
	EXPECT_EQ(BY_KREALLOC, ((struct tobj *)moved)->id);
	kfree(moved);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(r[BY_KREALLOC].runs));
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

/* ---- exactly once and in order, under real threads -------------------- */

#define NR_FREERS	4
#define PER_FREER	50000

struct freer {
	pthread_t tid;
	unsigned int index;
	size_t nr;
	struct kmem_cache *s;
	kmem_finalizer_t fn;
	void *arg;
	unsigned long failures;
};

/* Per-object run counts, and whether two finalizers ever overlapped. */
static int *object_runs;
static int finalizers_inside;
static int finalizers_overlapped;

static void count_finalizer(void *obj, void *arg)
{
	const struct tobj *o = obj;

	if (__atomic_fetch_add(&finalizers_inside, 1, __ATOMIC_ACQ_REL))
		inc_release(finalizers_overlapped);
	__atomic_fetch_add(&object_runs[o->id], 1, __ATOMIC_RELAXED);
	__atomic_fetch_sub(&finalizers_inside, 1, __ATOMIC_ACQ_REL);
}

/*
 * Alternates kmalloc objects of a few sizes and objects of a cache, and
 * every eighth goes through kfree_rcu(), so all the paths meet.
 */
static void *alloc_and_free(void *arg)
{
	struct freer *f = arg;
	size_t i;

	for (i = 0; i < f->nr; i++) {
		unsigned long id = f->index * f->nr + i;
		struct tobj *o = (i & 1) ? cache_obj(f->s, id) :
				 kmalloc_obj(id, 48 + (i % 5) * 40);

		if (!o || kmem_set_finalizer(o, f->fn, f->arg)) {
			f->failures++;
			kfree(o);
			continue;
		}
		if (i % 8 == 7)
			kfree_rcu(o, rcu);
		else if (i & 1)
			kmem_cache_free(f->s, o);
		else
			kfree(o);
	}
	return NULL;
}

static bool run_freers(struct freer *f, struct kmem_cache *s, size_t nr,
		       kmem_finalizer_t fn, void *arg)
{
	unsigned int i;
	bool ok = true;

	for (i = 0; i < NR_FREERS; i++) {
		f[i] = (struct freer){ .index = i, .nr = nr, .s = s, .fn = fn,
				       .arg = arg };
		if (pthread_create(&f[i].tid, NULL, alloc_and_free, &f[i]))
			return false;
	}
	for (i = 0; i < NR_FREERS; i++)
		if (join_thread_within(f[i].tid, TIMEOUT_MS))
			ok = false;
	return ok;
}

TEST(finalizer_runs_exactly_once_per_object_under_concurrent_frees)
{
	const size_t per = test_scaled(PER_FREER), total = NR_FREERS * per;
	struct kmem_finalizer_stats before = fin_stats(), after;
	struct kmem_cache *s = obj_cache("fin_once", 72);
	struct freer f[NR_FREERS];
	size_t i, lost = 0, twice = 0;
	unsigned int t;

	ASSERT_NE(NULL, s);
	object_runs = calloc(total, sizeof(*object_runs));
	ASSERT_NE(NULL, object_runs);
	ASSERT_TRUE(run_freers(f, s, per, count_finalizer, NULL));
	for (t = 0; t < NR_FREERS; t++)
		ASSERT_EQ(0, f[t].failures);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < total; i++) {
		int runs = __atomic_load_n(&object_runs[i], __ATOMIC_RELAXED);

		lost += runs == 0;
		twice += runs > 1;
	}
	EXPECT_EQ(0, lost);
	EXPECT_EQ(0, twice);
	EXPECT_EQ(0, load_acquire(finalizers_overlapped));
	after = fin_stats();
	EXPECT_EQ(total, after.finalizers_executed - before.finalizers_executed);
	EXPECT_EQ(0, after.pending);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
	free(object_runs);
}

/* The order finalizers ran in, as ids; runs past the end are counted only. */
static unsigned long *run_log;
static int run_log_cap;
static int run_log_len;

static void log_finalizer(void *obj, void *arg)
{
	const struct tobj *o = obj;
	int slot = __atomic_fetch_add(&run_log_len, 1, __ATOMIC_RELAXED);

	if (slot < run_log_cap)
		run_log[slot] = o->id;
}

#define NR_ORDERED	5000

TEST(finalizers_run_in_free_order)
{
	struct kmem_cache *s = obj_cache("fin_order", 120);
	struct tobj **o;
	unsigned int i, out_of_order = 0;

	ASSERT_NE(NULL, s);
	o = calloc(NR_ORDERED, sizeof(*o));
	run_log = calloc(NR_ORDERED, sizeof(*run_log));
	run_log_cap = NR_ORDERED;
	ASSERT_NE(NULL, o);
	ASSERT_NE(NULL, run_log);
	/* allocated in one order, freed in another, from three caches */
	for (i = 0; i < NR_ORDERED; i++) {
		unsigned long id = NR_ORDERED - 1 - i;

		o[id] = i % 3 == 0 ? cache_obj(s, id) :
			kmalloc_obj(id, i % 3 == 1 ? 64 : 512);
		ASSERT_NE(NULL, o[id]);
		ASSERT_EQ(0, kmem_set_finalizer(o[id], log_finalizer, NULL));
	}
	for (i = 0; i < NR_ORDERED; i++)
		kfree(o[i]);
	ASSERT_TRUE(finalize_all());
	ASSERT_EQ(NR_ORDERED, load_acquire(run_log_len));
	for (i = 0; i < NR_ORDERED; i++)
		out_of_order += run_log[i] != i;
	EXPECT_EQ(0, out_of_order);
	if (out_of_order)
		TH_LOG("first ids run: %lu %lu %lu %lu", run_log[0], run_log[1],
		       run_log[2], run_log[3]);
	free(o);
	free(run_log);
	kmem_cache_destroy(s);
}

static void *free_in_order(void *arg)
{
	struct freer *f = arg;
	size_t i;

	for (i = 0; i < f->nr; i++) {
		struct tobj *o = kmalloc_obj(f->index * f->nr + i, 40 + (i % 3) * 64);

		if (!o || kmem_set_finalizer(o, log_finalizer, NULL)) {
			f->failures++;
			kfree(o);
			continue;
		}
		kfree(o);
	}
	return NULL;
}

TEST(finalizers_keep_each_freeing_threads_order)
{
	const size_t per = test_scaled(20000);
	struct freer f[NR_FREERS];
	unsigned long last[NR_FREERS];
	unsigned int t, out_of_order = 0;
	int i;

	run_log = calloc(NR_FREERS * per, sizeof(*run_log));
	run_log_cap = NR_FREERS * per;
	ASSERT_NE(NULL, run_log);
	for (t = 0; t < NR_FREERS; t++) {
		f[t] = (struct freer){ .index = t, .nr = per };
		ASSERT_EQ(0, pthread_create(&f[t].tid, NULL, free_in_order, &f[t]));
	}
	for (t = 0; t < NR_FREERS; t++) {
		ASSERT_EQ(0, join_thread_within(f[t].tid, TIMEOUT_MS));
		ASSERT_EQ(0, f[t].failures);
		last[t] = t * per - 1;	/* wraps for thread 0: first id is 0 */
	}
	ASSERT_TRUE(finalize_all());
	ASSERT_EQ(NR_FREERS * per, load_acquire(run_log_len));
	for (i = 0; i < run_log_len; i++) {
		t = run_log[i] / per;
		out_of_order += run_log[i] != last[t] + 1;
		last[t] = run_log[i];
	}
	EXPECT_EQ(0, out_of_order);
	free(run_log);
}

/* ---- grace period: a reader keeps the finalizer back ------------------ */

struct reader {
	pthread_t tid;
	struct tobj *obj;	/* what the reader holds */
	int inside;		/* it is inside rcu_read_lock() */
	int release;		/* the test lets it go */
	int unlocking;		/* set just before rcu_read_unlock() */
	int damaged;
};

static void *hold_in_read_section(void *arg)
{
	struct reader *rd = arg;

	urcu_memb_register_thread();
	urcu_memb_read_lock();
	flag_set(&rd->inside, 1);
	flag_wait(&rd->release, 1, TIMEOUT_MS);
	/* freed meanwhile: still the same object, untouched */
	if (!obj_intact(rd->obj))
		rd->damaged = 1;
	flag_set(&rd->unlocking, 1);
	urcu_memb_read_unlock();
	urcu_memb_unregister_thread();
	return NULL;
}

struct gc_freer {
	pthread_t tid;
	struct tobj *obj;
	int freed;
	int gc_returned;
};

static void *free_and_gc(void *arg)
{
	struct gc_freer *g = arg;

	kfree(g->obj);
	flag_set(&g->freed, 1);
	kmem_gc();
	flag_set(&g->gc_returned, 1);
	return NULL;
}

static struct reader *watched_reader;
static int finalizer_saw_reader_inside;

static void after_reader_finalizer(void *obj, void *arg)
{
	if (!flag_get(&watched_reader->unlocking))
		inc_release(finalizer_saw_reader_inside);
	record_finalizer(obj, arg);
}

TEST(finalizer_runs_after_reader_unlocks)
{
	struct reader rd = { 0 };
	struct gc_freer g = { 0 };
	struct fin_record r = { 0 };

	rd.obj = kmalloc_obj(11, 200);
	ASSERT_NE(NULL, rd.obj);
	ASSERT_EQ(0, kmem_set_finalizer(rd.obj, after_reader_finalizer, &r));
	watched_reader = &rd;
	ASSERT_EQ(0, pthread_create(&rd.tid, NULL, hold_in_read_section, &rd));
	ASSERT_TRUE(flag_wait(&rd.inside, 1, TIMEOUT_MS));

	/* another thread frees it and asks for a collection */
	g.obj = rd.obj;
	ASSERT_EQ(0, pthread_create(&g.tid, NULL, free_and_gc, &g));
	ASSERT_TRUE(flag_wait(&g.freed, 1, TIMEOUT_MS));
	sleep_ms(HOLD_MS);
	/* the reader began before the free: no grace period has ended */
	EXPECT_EQ(0, load_acquire(r.runs));
	EXPECT_EQ(0, flag_get(&g.gc_returned));

	flag_set(&rd.release, 1);
	ASSERT_EQ(0, join_thread_within(rd.tid, TIMEOUT_MS));
	ASSERT_EQ(0, join_thread_within(g.tid, TIMEOUT_MS));
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&r, g.obj);
	EXPECT_EQ(0, rd.damaged);
	EXPECT_EQ(0, load_acquire(finalizer_saw_reader_inside));
}

/*
 * kmem_finalizers_wait() keeps its deadline even when the grace period
 * before the finalizer cannot end: a reader stays inside its section
 * until the wait has returned.
 */
TEST(finalizers_wait_times_out_while_a_reader_holds_the_grace_period)
{
	struct reader rd = { 0 };
	struct fin_record r = { 0 };
	unsigned long long t0, waited;
	struct tobj *o;

	o = kmalloc_obj(12, 64);
	ASSERT_NE(NULL, o);
	rd.obj = kmalloc_obj(13, 64);
	ASSERT_NE(NULL, rd.obj);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	ASSERT_EQ(0, pthread_create(&rd.tid, NULL, hold_in_read_section, &rd));
	ASSERT_TRUE(flag_wait(&rd.inside, 1, TIMEOUT_MS));
	kfree(o);
	t0 = monotonic_ms();
	EXPECT_EQ(-ETIMEDOUT, kmem_finalizers_wait(50));
	waited = monotonic_ms() - t0;
	EXPECT_EQ(0, load_acquire(r.runs));
	/* the reader lets go only now: a wait that ignored its deadline hangs */
	flag_set(&rd.release, 1);
	ASSERT_EQ(0, join_thread_within(rd.tid, TIMEOUT_MS));
	EXPECT_GE(waited, 50);
	EXPECT_LT(waited, PROMPT_MS);
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&r, o);
	kfree(rd.obj);
}

/*
 * Inside the caller's own read-side section no grace period can end, so
 * the waits do not wait for one: each says so, naming the function the
 * program called (not the barrier inside kslab it shares), and returns.
 */
TEST(waits_inside_a_read_section_are_reported_by_their_own_name)
{
	struct fin_record r = { 0 };
	struct stderr_capture cap;
	const char *text;
	struct tobj *o;

	o = kmalloc_obj(14, 64);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	/* one object waiting for its grace period: there is something to wait for */
	kfree(o);

	urcu_memb_register_thread();
	urcu_memb_read_lock();
	stderr_capture_begin(&cap);
	kmem_gc();
	kmem_finalizers_wait(50);
	kmem_finalizers_flush();
	text = stderr_capture_end(&cap);
	urcu_memb_read_unlock();
	urcu_memb_unregister_thread();

	EXPECT_TEXT_CONTAINS(text, "kmem_gc() called inside an RCU read-side critical section");
	EXPECT_TEXT_CONTAINS(text, "kmem_finalizers_wait() called inside an RCU read-side critical section");
	EXPECT_TEXT_CONTAINS(text, "kmem_finalizers_flush() called inside an RCU read-side critical section");
	EXPECT_EQ(NULL, strstr(text, "_until"));
	stderr_capture_release(&cap);
	EXPECT_EQ(0, load_acquire(r.runs));
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&r, o);
}

/* ---- setting and clearing --------------------------------------------- */

TEST(set_finalizer_twice_returns_ebusy)
{
	struct fin_record r = { 0 }, r2 = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	EXPECT_EQ(-EBUSY, kmem_set_finalizer(o, other_finalizer, &r2));
	EXPECT_EQ(-EBUSY, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	/* the first one stays */
	EXPECT_RAN_ONCE_ON(&r, o);
	EXPECT_EQ(0, load_acquire(r2.runs));
}

TEST(set_finalizer_null_clears_it)
{
	struct fin_record r = { 0 }, r2 = { 0 };
	struct kmem_finalizer_stats before = fin_stats();
	struct tobj *o = kmalloc_obj(1, 64), *o2 = kmalloc_obj(2, 64);

	ASSERT_NE(NULL, o);
	ASSERT_NE(NULL, o2);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	EXPECT_EQ(0, kmem_set_finalizer(o, NULL, NULL));
	/* clearing one that has none is fine too */
	EXPECT_EQ(0, kmem_set_finalizer(o, NULL, NULL));
	/* cleared, it can be set again, and cleared again */
	ASSERT_EQ(0, kmem_set_finalizer(o2, record_finalizer, &r2));
	ASSERT_EQ(0, kmem_set_finalizer(o2, NULL, NULL));
	ASSERT_EQ(0, kmem_set_finalizer(o2, other_finalizer, &r2));
	kfree(o);
	kfree(o2);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(0, load_acquire(r.runs));
	EXPECT_RAN_ONCE_ON(&r2, o2);
	EXPECT_EQ(1, fin_stats().finalizers_executed - before.finalizers_executed);
}

TEST(set_finalizer_rejects_pointers_that_are_not_kslab_objects)
{
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 256);
	struct kmem_cache *s = obj_cache("fin_interior", 128);
	struct tobj *c;
	void *heap = malloc(64);
	long on_stack[4];

	ASSERT_NE(NULL, o);
	ASSERT_NE(NULL, s);
	ASSERT_NE(NULL, heap);
	c = cache_obj(s, 2);
	ASSERT_NE(NULL, c);
	EXPECT_EQ(-EINVAL, kmem_set_finalizer(NULL, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer((char *)o + 8, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer((char *)o + 100, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer((char *)c + 16, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer(heap, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer(on_stack, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_set_finalizer(ZERO_SIZE_PTR, record_finalizer, &r));
	EXPECT_EQ(-EINVAL, kmem_add_cleanup((char *)o + 8, free, NULL, NULL));
	EXPECT_EQ(-EINVAL, kmem_add_cleanup(heap, free, NULL, NULL));
	EXPECT_EQ(-EINVAL, kmem_add_cleanup(on_stack, free, NULL, NULL));
	/* the rejected calls left the objects alone */
	kfree(o);
	kmem_cache_free(s, c);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(0, load_acquire(r.runs));
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
	free(heap);
}

/* ---- cache finalizers -------------------------------------------------- */

#define NR_CACHE_OBJS	120

TEST(cache_finalizer_runs_for_every_object_of_the_cache)
{
	struct kmem_cache *s = obj_cache("fin_cache", 64);
	struct kmem_cache *other = obj_cache("fin_cache_other", 64);
	struct tobj *o[NR_CACHE_OBJS], *x[20];
	unsigned int i, wrong = 0;

	ASSERT_NE(NULL, s);
	ASSERT_NE(NULL, other);
	object_runs = calloc(NR_CACHE_OBJS + 20, sizeof(*object_runs));
	ASSERT_NE(NULL, object_runs);
	ASSERT_EQ(0, kmem_cache_set_finalizer(s, count_finalizer, NULL));
	for (i = 0; i < NR_CACHE_OBJS; i++) {
		o[i] = cache_obj(s, i);
		ASSERT_NE(NULL, o[i]);
	}
	for (i = 0; i < 20; i++) {
		x[i] = cache_obj(other, NR_CACHE_OBJS + i);
		ASSERT_NE(NULL, x[i]);
	}
	/* a third each by kmem_cache_free, kfree and the bulk free */
	for (i = 0; i < NR_CACHE_OBJS / 3; i++)
		kmem_cache_free(s, o[i]);
	for (; i < 2 * NR_CACHE_OBJS / 3; i++)
		kfree(o[i]);
	kmem_cache_free_bulk(s, NR_CACHE_OBJS - i, (void **)&o[i]);
	kmem_cache_free_bulk(other, 20, (void **)x);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < NR_CACHE_OBJS; i++)
		wrong += object_runs[i] != 1;
	for (i = NR_CACHE_OBJS; i < NR_CACHE_OBJS + 20; i++)
		wrong += object_runs[i] != 0;
	EXPECT_EQ(0, wrong);
	EXPECT_EQ(0, active_objs(s));
	EXPECT_EQ(0, active_objs(other));
	kmem_cache_destroy(s);
	kmem_cache_destroy(other);
	free(object_runs);
}

/*
 * Slabs that existed before kmem_cache_set_finalizer() are covered too:
 * objects allocated before the call, some of them freed and allocated
 * again (so they sit in the thread's magazine), and objects allocated
 * after it from new slabs, freed by every free function.
 */
#define NR_EARLY_OBJS	600

TEST(cache_finalizer_covers_objects_allocated_before_it_was_set)
{
	struct kmem_cache *s = obj_cache("fin_cache_late", 64);
	struct tobj *o[2 * NR_EARLY_OBJS];
	unsigned int i, wrong = 0;

	ASSERT_NE(NULL, s);
	object_runs = calloc(2 * NR_EARLY_OBJS, sizeof(*object_runs));
	ASSERT_NE(NULL, object_runs);
	for (i = 0; i < NR_EARLY_OBJS; i++) {
		o[i] = cache_obj(s, i);
		ASSERT_NE(NULL, o[i]);
	}
	for (i = 0; i < NR_EARLY_OBJS; i += 2)
		kmem_cache_free(s, o[i]);
	for (i = 0; i < NR_EARLY_OBJS; i += 2) {
		o[i] = cache_obj(s, i);
		ASSERT_NE(NULL, o[i]);
	}
	ASSERT_EQ(0, kmem_cache_set_finalizer(s, count_finalizer, NULL));
	for (i = NR_EARLY_OBJS; i < 2 * NR_EARLY_OBJS; i++) {
		o[i] = cache_obj(s, i);
		ASSERT_NE(NULL, o[i]);
	}
	for (i = 0; i < 2 * NR_EARLY_OBJS; i += 3) {
		kmem_cache_free(s, o[i]);
		kfree(o[i + 1]);
		kfree_rcu_mightsleep(o[i + 2]);
	}
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < 2 * NR_EARLY_OBJS; i++)
		wrong += object_runs[i] != 1;
	EXPECT_EQ(0, wrong);
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
	free(object_runs);
}

TEST(object_finalizer_wins_over_the_cache_finalizer)
{
	struct fin_record by_cache = { 0 }, own = { 0 };
	struct kmem_cache *s = obj_cache("fin_wins", 64);
	struct tobj *plain, *special;

	ASSERT_NE(NULL, s);
	ASSERT_EQ(0, kmem_cache_set_finalizer(s, record_finalizer, &by_cache));
	plain = cache_obj(s, 1);
	special = cache_obj(s, 2);
	ASSERT_NE(NULL, plain);
	ASSERT_NE(NULL, special);
	ASSERT_EQ(0, kmem_set_finalizer(special, other_finalizer, &own));
	kmem_cache_free(s, special);
	kmem_cache_free(s, plain);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&by_cache, plain);
	EXPECT_RAN_ONCE_ON(&own, special);
	kmem_cache_destroy(s);
}

TEST(cache_set_finalizer_checks_and_clears)
{
	struct fin_record r = { 0 }, r2 = { 0 };
	struct kmem_cache *s = obj_cache("fin_cache_set", 64);
	struct tobj *o;

	ASSERT_NE(NULL, s);
	EXPECT_EQ(-EINVAL, kmem_cache_set_finalizer(NULL, record_finalizer, &r));
	ASSERT_EQ(0, kmem_cache_set_finalizer(s, record_finalizer, &r));
	EXPECT_EQ(-EBUSY, kmem_cache_set_finalizer(s, other_finalizer, &r2));
	EXPECT_EQ(0, kmem_cache_set_finalizer(s, NULL, NULL));
	EXPECT_EQ(0, kmem_cache_set_finalizer(s, NULL, NULL));
	/* cleared: objects freed now are not finalized */
	o = cache_obj(s, 1);
	ASSERT_NE(NULL, o);
	kmem_cache_free(s, o);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(0, load_acquire(r.runs));
	EXPECT_EQ(0, load_acquire(r2.runs));
	/* and another can be set */
	ASSERT_EQ(0, kmem_cache_set_finalizer(s, other_finalizer, &r2));
	o = cache_obj(s, 2);
	ASSERT_NE(NULL, o);
	kmem_cache_free(s, o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r2, o);
	EXPECT_EQ(0, load_acquire(r.runs));
	kmem_cache_destroy(s);
}

/* ---- cleanups ---------------------------------------------------------- */

struct cleanup_record {
	int runs;
	int before_finalizer;	/* runs that found the finalizer not done */
	struct fin_record *fin;	/* the object's finalizer, or NULL */
};

static void record_cleanup(void *arg)
{
	struct cleanup_record *c = arg;

	if (c->fin && !load_acquire(c->fin->runs))
		inc_release(c->before_finalizer);
	inc_release(c->runs);
}

#define NR_CLEANUPS	4

TEST(cleanups_run_once_each_after_the_finalizer)
{
	struct fin_record r = { 0 };
	struct cleanup_record c[NR_CLEANUPS];
	struct kmem_cleanup *h[NR_CLEANUPS];
	struct tobj *o = kmalloc_obj(1, 64);
	unsigned int i;

	ASSERT_NE(NULL, o);
	/* cleanups added before and after the finalizer was set */
	for (i = 0; i < NR_CLEANUPS; i++) {
		c[i] = (struct cleanup_record){ .fin = &r };
		if (i == NR_CLEANUPS / 2)
			ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
		h[i] = NULL;
		ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c[i],
					      i ? &h[i] : NULL));
		if (i)
			EXPECT_NE(NULL, h[i]);
	}
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	for (i = 0; i < NR_CLEANUPS; i++) {
		EXPECT_EQ(1, load_acquire(c[i].runs));
		EXPECT_EQ(0, load_acquire(c[i].before_finalizer));
	}
}

TEST(stopped_cleanup_never_runs)
{
	struct cleanup_record kept = { 0 }, stopped = { 0 }, stopped2 = { 0 };
	struct kmem_cleanup *h_stopped, *h_stopped2, *h_kept;
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &stopped, &h_stopped));
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &kept, &h_kept));
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &stopped2, &h_stopped2));
	kmem_cleanup_stop(h_stopped);
	kmem_cleanup_stop(h_stopped2);
	/* twice is harmless */
	kmem_cleanup_stop(h_stopped);
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	EXPECT_EQ(1, load_acquire(kept.runs));
	EXPECT_EQ(0, load_acquire(stopped.runs));
	EXPECT_EQ(0, load_acquire(stopped2.runs));
}

/* Enough handles that the handle table grows several times. */
#define NR_HANDLED	1000

TEST(stopping_one_of_many_handles_stops_exactly_that_cleanup)
{
	static struct cleanup_record c[NR_HANDLED];
	static struct kmem_cleanup *h[NR_HANDLED];
	static struct tobj *o[NR_HANDLED];
	unsigned int i;

	memset(c, 0, sizeof(c));
	for (i = 0; i < NR_HANDLED; i++) {
		o[i] = kmalloc_obj(i, 64);
		ASSERT_NE(NULL, o[i]);
		ASSERT_EQ(0, kmem_add_cleanup(o[i], record_cleanup, &c[i], &h[i]));
	}
	for (i = 0; i < NR_HANDLED; i += 3)
		kmem_cleanup_stop(h[i]);
	for (i = 0; i < NR_HANDLED; i++)
		kfree(o[i]);
	ASSERT_TRUE(finalize_all());
	for (i = 0; i < NR_HANDLED; i++)
		EXPECT_EQ(i % 3 ? 1 : 0, load_acquire(c[i].runs));
	/* every handle is gone with its cleanup: stopping them finds nothing */
	for (i = 0; i < NR_HANDLED; i++)
		kmem_cleanup_stop(h[i]);
}

TEST(cleanup_stop_after_it_ran_is_harmless)
{
	struct cleanup_record c = { 0 }, later = { 0 };
	struct kmem_cleanup *h, *h_later;
	struct tobj *o = kmalloc_obj(1, 64), *o2;

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c, &h));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(c.runs));
	kmem_cleanup_stop(h);
	kmem_cleanup_stop(h);
	/* the memory went back to kmalloc-64; its next user is not affected */
	o2 = kmalloc_obj(2, 64);
	ASSERT_NE(NULL, o2);
	ASSERT_EQ(0, kmem_add_cleanup(o2, record_cleanup, &later, &h_later));
	kmem_cleanup_stop(h);
	kfree(o2);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(c.runs));
	EXPECT_EQ(1, load_acquire(later.runs));
}

TEST(cleanups_run_without_a_finalizer)
{
	struct kmem_cache *s = obj_cache("fin_cleanup_only", 64);
	struct cleanup_record c[3] = { { 0 } };
	struct tobj *o = kmalloc_obj(1, 64), *co;

	ASSERT_NE(NULL, o);
	ASSERT_NE(NULL, s);
	co = cache_obj(s, 2);
	ASSERT_NE(NULL, co);
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c[0], NULL));
	ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c[1], NULL));
	ASSERT_EQ(0, kmem_add_cleanup(co, record_cleanup, &c[2], NULL));
	kfree(o);
	kmem_cache_free(s, co);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(c[0].runs));
	EXPECT_EQ(1, load_acquire(c[1].runs));
	EXPECT_EQ(1, load_acquire(c[2].runs));
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

/* ---- memory is reused only after the finalizer and cleanups ----------- */

enum { REUSE_LIVE, REUSE_FINALIZING, REUSE_DONE };

struct reuse {
	struct kmem_cache *s;
	struct tobj *target;
	int state;		/* REUSE_* */
	int damaged;		/* the finalizer or cleanup saw it changed */
	int stop;
	int started;
	unsigned long early;	/* allocations that returned it too early */
	unsigned long later;	/* allocations that returned it once done */
	unsigned long failures;
};

/*
 * An allocation from the cache on the finalizer thread itself, which is
 * where the memory goes back when its finalization ends: if it went back
 * too early, the thread's own magazine would hand it out here first.
 */
static void allocate_on_finalizer_thread(struct reuse *ru)
{
	void *p = kmem_cache_alloc(ru->s, GFP_KERNEL);

	if (!p) {
		__atomic_fetch_add(&ru->failures, 1, __ATOMIC_RELAXED);
		return;
	}
	if (p == ru->target) {
		if (flag_get(&ru->state) != REUSE_DONE)
			__atomic_fetch_add(&ru->early, 1, __ATOMIC_RELAXED);
		else
			__atomic_fetch_add(&ru->later, 1, __ATOMIC_RELAXED);
	}
	kmem_cache_free(ru->s, p);
}

static void slow_reuse_finalizer(void *obj, void *arg)
{
	struct reuse *ru = arg;

	flag_set(&ru->state, REUSE_FINALIZING);
	allocate_on_finalizer_thread(ru);
	sleep_ms(30);
	if (!obj_intact(obj))
		inc_release(ru->damaged);
}

/* Runs after the finalizer; the last thing before the memory is freed. */
static void slow_reuse_cleanup(void *arg)
{
	struct reuse *ru = arg;

	allocate_on_finalizer_thread(ru);
	sleep_ms(30);
	if (!obj_intact(ru->target))
		inc_release(ru->damaged);
	flag_set(&ru->state, REUSE_DONE);
}

/* The finalizer of an object freed after the target: it may get it back. */
static void reuse_probe_finalizer(void *obj, void *arg)
{
	allocate_on_finalizer_thread(arg);
}

/*
 * Allocators keep what they allocate (up to REUSE_MAX each), so they go on
 * taking fresh objects from the cache's slabs, a few at a time, while the
 * object is being finalized and after.
 */
#define REUSE_STEP	16
#define REUSE_MAX	32768

static void *allocate_meanwhile(void *arg)
{
	struct reuse *ru = arg;
	void **objs = calloc(REUSE_MAX, sizeof(*objs));
	unsigned int n = 0, i;

	if (!objs) {
		__atomic_fetch_add(&ru->failures, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	inc_release(ru->started);
	while (!flag_get(&ru->stop)) {
		for (i = 0; i < REUSE_STEP && n < REUSE_MAX; i++, n++) {
			void *p = kmem_cache_alloc(ru->s, GFP_KERNEL);

			if (!p) {
				__atomic_fetch_add(&ru->failures, 1, __ATOMIC_RELAXED);
				break;
			}
			if (p == ru->target) {
				if (flag_get(&ru->state) != REUSE_DONE)
					__atomic_fetch_add(&ru->early, 1, __ATOMIC_RELAXED);
				else
					__atomic_fetch_add(&ru->later, 1, __ATOMIC_RELAXED);
			}
			memset(p, 0xa5, kmem_cache_size(ru->s));
			objs[n] = p;
		}
		if (n == REUSE_MAX) {
			kmem_cache_free_bulk(ru->s, n, objs);
			n = 0;
		}
		usleep(50);
	}
	kmem_cache_free_bulk(ru->s, n, objs);
	free(objs);
	return NULL;
}

TEST(memory_is_reused_only_after_finalizer_and_cleanups_returned)
{
	struct reuse ru = { 0 };
	struct tobj *probe;
	pthread_t tid[2];
	unsigned long long deadline;
	unsigned int i;

	ru.s = obj_cache("fin_reuse", 64);
	ASSERT_NE(NULL, ru.s);
	ru.target = cache_obj(ru.s, 5);
	ASSERT_NE(NULL, ru.target);
	ASSERT_EQ(0, kmem_set_finalizer(ru.target, slow_reuse_finalizer, &ru));
	ASSERT_EQ(0, kmem_add_cleanup(ru.target, slow_reuse_cleanup, &ru, NULL));
	probe = kmalloc_obj(6, 64);
	ASSERT_NE(NULL, probe);
	ASSERT_EQ(0, kmem_set_finalizer(probe, reuse_probe_finalizer, &ru));
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&tid[i], NULL, allocate_meanwhile, &ru));
	ASSERT_TRUE(flag_wait(&ru.started, 2, TIMEOUT_MS));
	kmem_cache_free(ru.s, ru.target);
	kfree(probe);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(REUSE_DONE, flag_get(&ru.state));
	/* give the memory a chance to be handed out again */
	deadline = monotonic_ms() + 300;
	while (!__atomic_load_n(&ru.later, __ATOMIC_RELAXED) &&
	       monotonic_ms() < deadline)
		sleep_ms(1);
	flag_set(&ru.stop, 1);
	for (i = 0; i < 2; i++)
		ASSERT_EQ(0, join_thread_within(tid[i], TIMEOUT_MS));
	EXPECT_EQ(0, ru.failures);
	EXPECT_EQ(0, ru.early);
	EXPECT_EQ(0, load_acquire(ru.damaged));
	/* not a requirement, but without it the test proves little */
	if (!ru.later)
		TH_LOG("the object was not handed out again after its cleanup");
	EXPECT_EQ(0, active_objs(ru.s));
	kmem_cache_destroy(ru.s);
}

TEST(finalizer_does_not_stick_to_reused_memory)
{
	struct kmem_finalizer_stats before = fin_stats();
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);
	void **again;
	unsigned int i;

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	/* the same size class again: its memory comes back to someone */
	again = calloc(4096, sizeof(*again));
	ASSERT_NE(NULL, again);
	for (i = 0; i < 4096; i++) {
		again[i] = kmalloc(64, GFP_KERNEL);
		ASSERT_NE(NULL, again[i]);
	}
	for (i = 0; i < 4096; i++)
		kfree(again[i]);
	free(again);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(1, load_acquire(r.runs));
	EXPECT_EQ(1, fin_stats().finalizers_executed - before.finalizers_executed);
}

TEST(objects_without_finalizers_are_not_held_back)
{
	struct kmem_cache *s = obj_cache("fin_unaffected", 64);
	struct gate gate = GATE_INIT;
	struct tobj *stuck, *o[100];
	unsigned int i;

	ASSERT_NE(NULL, s);
	stuck = cache_obj(s, 0);
	ASSERT_NE(NULL, stuck);
	ASSERT_EQ(0, kmem_set_finalizer(stuck, blocking_finalizer, &gate));
	for (i = 0; i < 100; i++) {
		o[i] = cache_obj(s, i + 1);
		ASSERT_NE(NULL, o[i]);
	}
	kmem_cache_free(s, stuck);
	for (i = 0; i < 100; i++)
		kmem_cache_free(s, o[i]);
	kmem_gc();
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	/* only the one being finalized is still out of the cache */
	EXPECT_EQ(1, active_objs(s));
	for (i = 0; i < 100; i++) {
		o[i] = cache_obj(s, i + 1);
		ASSERT_NE(NULL, o[i]);
		ASSERT_NE(stuck, o[i]);
	}
	kmem_cache_free_bulk(s, 100, (void **)o);
	gate_open(&gate);
	ASSERT_TRUE(finalize_all());
	EXPECT_EQ(0, active_objs(s));
	kmem_cache_destroy(s);
}

static int destroy_finalizer_done;

static void slow_destroy_finalizer(void *obj, void *arg)
{
	sleep_ms(50);
	flag_set(&destroy_finalizer_done, 1);
}

TEST(kmem_cache_destroy_waits_for_the_caches_finalizers)
{
	struct kmem_cache *s = obj_cache("fin_destroy", 64);
	struct stderr_capture cap;
	const char *text;
	struct tobj *o;

	ASSERT_NE(NULL, s);
	o = cache_obj(s, 1);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, slow_destroy_finalizer, NULL));
	ASSERT_EQ(0, stderr_capture_begin(&cap));
	kmem_cache_free(s, o);
	kmem_cache_destroy(s);
	text = stderr_capture_end(&cap);
	EXPECT_EQ(1, flag_get(&destroy_finalizer_done));
	EXPECT_TEXT_EMPTY(text);
	stderr_capture_release(&cap);
}

TEST(second_free_of_an_object_awaiting_finalization_is_reported_and_ignored)
{
	struct kmem_cache *s = obj_cache("fin_double", 64);
	struct stderr_capture cap;
	struct fin_record r = { 0 };
	const char *text;
	struct tobj *o;
	void *objs[256];
	unsigned int i, j, dup = 0;

	ASSERT_NE(NULL, s);
	o = cache_obj(s, 1);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	ASSERT_EQ(0, stderr_capture_begin(&cap));
	kmem_cache_free(s, o);
	kmem_cache_free(s, o);
	kfree(o);
	text = stderr_capture_end(&cap);
	EXPECT_TEXT_CONTAINS(text, "double free");
	stderr_capture_release(&cap);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	EXPECT_EQ(0, active_objs(s));
	/* freed once only: never handed out twice */
	for (i = 0; i < 256; i++) {
		objs[i] = kmem_cache_alloc(s, GFP_KERNEL);
		ASSERT_NE(NULL, objs[i]);
	}
	for (i = 0; i < 256; i++)
		for (j = i + 1; j < 256; j++)
			dup += objs[i] == objs[j];
	EXPECT_EQ(0, dup);
	kmem_cache_free_bulk(s, 256, objs);
	kmem_cache_destroy(s);
}

/* ---- a stuck finalizer ------------------------------------------------- */

TEST(blocked_finalizer_holds_up_the_finalizers_behind_it)
{
	struct fin_record before = { 0 }, behind = { 0 };
	struct gate gate = GATE_INIT;
	struct tobj *first = kmalloc_obj(1, 64), *stuck = kmalloc_obj(2, 64);
	struct tobj *last = kmalloc_obj(3, 64);

	ASSERT_NE(NULL, first);
	ASSERT_NE(NULL, stuck);
	ASSERT_NE(NULL, last);
	ASSERT_EQ(0, kmem_set_finalizer(first, record_finalizer, &before));
	ASSERT_EQ(0, kmem_set_finalizer(stuck, blocking_finalizer, &gate));
	ASSERT_EQ(0, kmem_set_finalizer(last, record_finalizer, &behind));
	kfree(first);
	kfree(stuck);
	kfree(last);
	kmem_gc();
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&before, first);
	sleep_ms(20);
	EXPECT_EQ(0, load_acquire(behind.runs));
	gate_open(&gate);
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&behind, last);
	EXPECT_EQ(1, load_acquire(gate.left));
}

TEST(kmem_gc_returns_while_a_finalizer_is_stuck)
{
	struct fin_record behind = { 0 };
	struct gate gate = GATE_INIT;
	struct tobj *stuck = kmalloc_obj(1, 64), *o;
	unsigned long long t0, first_ms, again_ms;
	unsigned int i;

	ASSERT_NE(NULL, stuck);
	ASSERT_EQ(0, kmem_set_finalizer(stuck, blocking_finalizer, &gate));
	kfree(stuck);
	t0 = monotonic_ms();
	kmem_gc();
	first_ms = monotonic_ms() - t0;
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	/* more behind it, and more collections */
	o = kmalloc_obj(2, 64);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &behind));
	kfree(o);
	t0 = monotonic_ms();
	for (i = 0; i < 10; i++)
		kmem_gc();
	again_ms = monotonic_ms() - t0;
	EXPECT_LT(first_ms, PROMPT_MS);
	EXPECT_LT(again_ms, PROMPT_MS);
	EXPECT_EQ(0, load_acquire(behind.runs));
	EXPECT_EQ(1, fin_stats().queue_length);
	gate_open(&gate);
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_RAN_ONCE_ON(&behind, o);
}

/*
 * A long line of finalizers, each slower than nothing but quicker than
 * KSLAB_GC_PATIENCE_MS (10 ms): kmem_gc() lets them run for a while, then
 * returns long before the last (200 x 5 ms of work against a cap of
 * 10 x 10 ms).
 */
#define NR_SLOW_FINALIZERS	200

static void slow_finalizer(void *obj, void *arg)
{
	int *runs = arg;

	(void)obj;
	sleep_ms(5);
	__atomic_fetch_add(runs, 1, __ATOMIC_RELEASE);
}

TEST(kmem_gc_returns_while_slow_finalizers_still_run)
{
	int runs = 0, i;

	for (i = 0; i < NR_SLOW_FINALIZERS; i++) {
		struct tobj *o = kmalloc_obj(i, 64);

		ASSERT_NE(NULL, o);
		ASSERT_EQ(0, kmem_set_finalizer(o, slow_finalizer, &runs));
		kfree(o);
	}
	kmem_gc();
	EXPECT_LT(__atomic_load_n(&runs, __ATOMIC_ACQUIRE), NR_SLOW_FINALIZERS);
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_EQ(NR_SLOW_FINALIZERS, __atomic_load_n(&runs, __ATOMIC_ACQUIRE));
}

TEST(finalizers_wait_times_out_on_a_stuck_finalizer)
{
	struct gate gate = GATE_INIT;
	struct tobj *stuck = kmalloc_obj(1, 64);
	unsigned long long t0, waited;
	int ret;

	ASSERT_NE(NULL, stuck);
	/* nothing queued: drained at once */
	EXPECT_EQ(0, kmem_finalizers_wait(PROMPT_MS));
	ASSERT_EQ(0, kmem_set_finalizer(stuck, blocking_finalizer, &gate));
	kfree(stuck);
	kmem_gc();
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	t0 = monotonic_ms();
	ret = kmem_finalizers_wait(50);
	waited = monotonic_ms() - t0;
	EXPECT_EQ(-ETIMEDOUT, ret);
	EXPECT_LT(waited, PROMPT_MS);
	gate_open(&gate);
	EXPECT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	EXPECT_EQ(1, load_acquire(gate.left));
}

/* ---- calls from inside a finalizer ------------------------------------- */

static int flush_returned;

static void flushing_finalizer(void *obj, void *arg)
{
	kmem_finalizers_flush();
	flag_set(&flush_returned, 1);
	record_finalizer(obj, arg);
}

TEST(flush_from_a_finalizer_returns_and_reports)
{
	struct fin_record r = { 0 }, behind = { 0 };
	struct tobj *o = kmalloc_obj(1, 64), *o2 = kmalloc_obj(2, 64);
	struct stderr_capture cap;
	const char *text;
	int waited;

	ASSERT_NE(NULL, o);
	ASSERT_NE(NULL, o2);
	ASSERT_EQ(0, kmem_set_finalizer(o, flushing_finalizer, &r));
	ASSERT_EQ(0, kmem_set_finalizer(o2, record_finalizer, &behind));
	ASSERT_EQ(0, stderr_capture_begin(&cap));
	kfree(o);
	kfree(o2);
	kmem_gc();
	waited = kmem_finalizers_wait(TIMEOUT_MS);
	text = stderr_capture_end(&cap);
	EXPECT_EQ(0, waited);
	EXPECT_EQ(1, flag_get(&flush_returned));
	EXPECT_RAN_ONCE_ON(&r, o);
	EXPECT_RAN_ONCE_ON(&behind, o2);
	EXPECT_TEXT_CONTAINS(text, "kmem_finalizers_flush() called from a finalizer");
	stderr_capture_release(&cap);
}

static struct fin_record inner_record;
static struct tobj *inner_obj;
static int inner_gc_returned;

/* Frees another object with a finalizer and collects, from a finalizer. */
static void collecting_finalizer(void *obj, void *arg)
{
	inner_obj = kmalloc_obj(9, 64);
	if (inner_obj && !kmem_set_finalizer(inner_obj, record_finalizer,
					     &inner_record)) {
		kfree(inner_obj);
		kmem_gc();
		flag_set(&inner_gc_returned, 1);
	}
	record_finalizer(obj, arg);
}

TEST(kmem_gc_from_a_finalizer_returns)
{
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);

	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, collecting_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
	EXPECT_EQ(1, flag_get(&inner_gc_returned));
	/* the object it freed is finalized in turn */
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&inner_record, inner_obj);
}

/* ---- statistics -------------------------------------------------------- */

static void sleeping_finalizer(void *obj, void *arg)
{
	sleep_ms(30);
	record_finalizer(obj, arg);
}

TEST(stats_count_finalizers_and_cleanups)
{
	struct kmem_finalizer_stats s0 = fin_stats(), s1;
	struct cleanup_record c = { 0 };
	struct fin_record r = { 0 };
	struct tobj *o;
	unsigned int i;

	/* ten finalized objects with two cleanups each, three with one only */
	for (i = 0; i < 13; i++) {
		o = kmalloc_obj(i, 64);
		ASSERT_NE(NULL, o);
		if (i < 10) {
			ASSERT_EQ(0, kmem_set_finalizer(o, i ? record_finalizer :
							sleeping_finalizer, &r));
			ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c, NULL));
		}
		ASSERT_EQ(0, kmem_add_cleanup(o, record_cleanup, &c, NULL));
		kfree(o);
	}
	ASSERT_TRUE(finalize_all());
	s1 = fin_stats();
	EXPECT_EQ(10, load_acquire(r.runs));
	EXPECT_EQ(23, load_acquire(c.runs));
	EXPECT_EQ(10, s1.finalizers_queued - s0.finalizers_queued);
	EXPECT_EQ(10, s1.finalizers_executed - s0.finalizers_executed);
	EXPECT_EQ(23, s1.cleanups_queued - s0.cleanups_queued);
	EXPECT_EQ(23, s1.cleanups_executed - s0.cleanups_executed);
	EXPECT_EQ(0, s1.pending);
	EXPECT_EQ(0, s1.queue_length);
	/*
	 * The sleeping finalizer ran 30 ms or more; the library may measure
	 * with a cycle counter, so only part of that is asked for.
	 */
	EXPECT_GE(s1.longest_ns, 20 * 1000000ULL);
	EXPECT_EQ(0, s1.worker_restarts);
	EXPECT_EQ(0, s1.lockups);
}

TEST(stats_show_pending_and_queued_behind_a_stuck_finalizer)
{
	struct kmem_finalizer_stats s0 = fin_stats(), s1, s2, s3;
	struct fin_record behind = { 0 };
	struct gate gate = GATE_INIT;
	struct tobj *stuck = kmalloc_obj(1, 64), *o[2];
	unsigned int i;

	ASSERT_NE(NULL, stuck);
	ASSERT_EQ(0, kmem_set_finalizer(stuck, blocking_finalizer, &gate));
	for (i = 0; i < 2; i++) {
		o[i] = kmalloc_obj(i + 2, 64);
		ASSERT_NE(NULL, o[i]);
		ASSERT_EQ(0, kmem_set_finalizer(o[i], record_finalizer, &behind));
	}
	kfree(stuck);
	kfree(o[0]);
	kfree(o[1]);
	/* freed, not finished, whatever stage they are at */
	s1 = fin_stats();
	EXPECT_EQ(3, s1.pending);
	kmem_gc();
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	s2 = fin_stats();
	EXPECT_EQ(3, s2.pending);
	EXPECT_EQ(2, s2.queue_length);
	EXPECT_EQ(3, s2.finalizers_queued - s0.finalizers_queued);
	EXPECT_EQ(0, s2.finalizers_executed - s0.finalizers_executed);
	gate_open(&gate);
	ASSERT_EQ(0, kmem_finalizers_wait(TIMEOUT_MS));
	s3 = fin_stats();
	EXPECT_EQ(0, s3.pending);
	EXPECT_EQ(0, s3.queue_length);
	EXPECT_EQ(3, s3.finalizers_executed - s0.finalizers_executed);
	EXPECT_EQ(2, load_acquire(behind.runs));
}

/* ---- pthread_exit() in a finalizer ------------------------------------- */

static void exiting_finalizer(void *obj, void *arg)
{
	inc_release(*(int *)arg);
	pthread_exit(NULL);
}

TEST(finalizer_calling_pthread_exit_is_reported_and_the_queue_continues)
{
	struct kmem_finalizer_stats s0 = fin_stats(), s1;
	struct fin_record behind[2] = { { 0 } };
	struct tobj *quitter = kmalloc_obj(1, 64), *o[2];
	struct stderr_capture cap;
	const char *text;
	int exited = 0, waited;
	unsigned int i;

	ASSERT_NE(NULL, quitter);
	ASSERT_EQ(0, kmem_set_finalizer(quitter, exiting_finalizer, &exited));
	for (i = 0; i < 2; i++) {
		o[i] = kmalloc_obj(i + 2, 64);
		ASSERT_NE(NULL, o[i]);
		ASSERT_EQ(0, kmem_set_finalizer(o[i], record_finalizer, &behind[i]));
	}
	ASSERT_EQ(0, stderr_capture_begin(&cap));
	kfree(quitter);
	kfree(o[0]);
	kfree(o[1]);
	kmem_gc();
	waited = kmem_finalizers_wait(TIMEOUT_MS);
	text = stderr_capture_end(&cap);
	EXPECT_EQ(0, waited);
	EXPECT_EQ(1, load_acquire(exited));
	for (i = 0; i < 2; i++)
		EXPECT_RAN_ONCE_ON(&behind[i], o[i]);
	EXPECT_TEXT_CONTAINS(text, "finalizer exiting_finalizer() called pthread_exit()");
	stderr_capture_release(&cap);
	s1 = fin_stats();
	EXPECT_EQ(1, s1.worker_restarts - s0.worker_restarts);
	EXPECT_EQ(0, s1.pending);
	/* and the new worker keeps serving */
	o[0] = kmalloc_obj(4, 64);
	ASSERT_NE(NULL, o[0]);
	behind[0].runs = 0;
	ASSERT_EQ(0, kmem_set_finalizer(o[0], record_finalizer, &behind[0]));
	kfree(o[0]);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&behind[0], o[0]);
}

/* ---- handing long work off to system_unbound_wq ----------------------- */

/* What B's finalizer hands off: its own allocation, not the object. */
struct slow_work {
	struct work_struct work;
	struct gate *gate;
	unsigned long id;	/* copied from the object */
};

static int slow_work_done;
static unsigned long slow_work_id;

static void do_slow_work(struct work_struct *work)
{
	struct slow_work *sw = container_of(work, struct slow_work, work);

	gate_pass(sw->gate);
	slow_work_id = sw->id;
	flag_set(&slow_work_done, 1);
	kfree(sw);
}

static void handing_off_finalizer(void *obj, void *arg)
{
	struct slow_work *sw = kmalloc(sizeof(*sw), GFP_KERNEL);

	if (!sw)
		return;
	INIT_WORK(&sw->work, do_slow_work);
	sw->gate = arg;
	sw->id = ((struct tobj *)obj)->id;
	queue_work(system_unbound_wq, &sw->work);
}

TEST(finalizer_hands_slow_work_to_system_unbound_wq)
{
	struct fin_record a = { 0 }, c = { 0 };
	struct gate gate = GATE_INIT;
	struct tobj *oa = kmalloc_obj(1, 64), *ob = kmalloc_obj(2, 64);
	struct tobj *oc = kmalloc_obj(3, 64);

	ASSERT_NE(NULL, oa);
	ASSERT_NE(NULL, ob);
	ASSERT_NE(NULL, oc);
	ASSERT_EQ(0, kmem_set_finalizer(oa, record_finalizer, &a));
	ASSERT_EQ(0, kmem_set_finalizer(ob, handing_off_finalizer, &gate));
	ASSERT_EQ(0, kmem_set_finalizer(oc, record_finalizer, &c));
	kfree(oc);
	kfree(ob);
	kfree(oa);
	/* B's slow part waits on the gate, off the finalizer thread */
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&c, oc);
	EXPECT_RAN_ONCE_ON(&a, oa);
	ASSERT_TRUE(flag_wait(&gate.entered, 1, TIMEOUT_MS));
	EXPECT_EQ(0, flag_get(&slow_work_done));
	gate_open(&gate);
	flush_workqueue(system_unbound_wq);
	EXPECT_EQ(1, flag_get(&slow_work_done));
	EXPECT_EQ(2, slow_work_id);
}

/* ---- fork -------------------------------------------------------------- */

static int child_finalizes(void)
{
	struct kmem_cache *s = obj_cache("fin_fork_child", 64);
	struct fin_record r = { 0 }, rc = { 0 };
	struct tobj *o = kmalloc_obj(1, 64), *co;

	if (!s || !o)
		return 2;
	co = cache_obj(s, 2);
	if (!co)
		return 2;
	if (kmem_set_finalizer(o, record_finalizer, &r) ||
	    kmem_set_finalizer(co, record_finalizer, &rc))
		return 3;
	kfree(o);
	kmem_cache_free(s, co);
	kmem_gc();
	if (kmem_finalizers_wait(CHILD_TIMEOUT_MS))
		return 4;
	kmem_finalizers_flush();
	if (load_acquire(r.runs) != 1 || load_acquire(rc.runs) != 1)
		return 5;
	if (r.off_thread || rc.off_thread || r.damaged || rc.damaged)
		return 6;
	if (active_objs(s))
		return 7;
	kmem_cache_destroy(s);
	return 0;
}

TEST(child_of_fork_can_set_free_and_flush_finalizers)
{
	struct fin_record r = { 0 };
	struct tobj *o = kmalloc_obj(1, 64);
	int status;
	pid_t pid;

	/* the finalizer thread exists in the parent before the fork */
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);

	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_finalizes());
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
	/* and the parent's finalizer thread still serves it */
	o = kmalloc_obj(2, 64);
	ASSERT_NE(NULL, o);
	r.runs = 0;
	ASSERT_EQ(0, kmem_set_finalizer(o, record_finalizer, &r));
	kfree(o);
	ASSERT_TRUE(finalize_all());
	EXPECT_RAN_ONCE_ON(&r, o);
}

#define NR_INHERITED	200

/* The gate that holds the parent's queue still across the fork. */
static struct gate fork_gate = GATE_INIT;

static int child_finishes_inherited(void)
{
	unsigned int i;

	/* the child's copy of the gate: whether or not its finalizer runs again */
	gate_open(&fork_gate);
	kmem_gc();
	if (kmem_finalizers_wait(CHILD_TIMEOUT_MS))
		return 2;
	for (i = 0; i < NR_INHERITED; i++)
		if (__atomic_load_n(&object_runs[i], __ATOMIC_RELAXED) != 1)
			return 3;
	return 0;
}

/*
 * Objects freed before fork() and not yet finalized are pending in both
 * processes: each process finalizes its own copy, once.  Some wait for a
 * grace period at the fork, some are queued behind a finalizer that is
 * stuck on a gate, so that none is half run when the fork happens.
 */
TEST(child_of_fork_finalizes_inherited_objects_once)
{
	unsigned int i, wrong = 0;
	struct tobj *o;
	int status;
	pid_t pid;

	object_runs = calloc(NR_INHERITED, sizeof(*object_runs));
	ASSERT_NE(NULL, object_runs);
	o = kmalloc_obj(NR_INHERITED, 64);
	ASSERT_NE(NULL, o);
	ASSERT_EQ(0, kmem_set_finalizer(o, blocking_finalizer, &fork_gate));
	kfree(o);
	for (i = 0; i < NR_INHERITED; i++) {
		o = kmalloc_obj(i, 64);
		ASSERT_NE(NULL, o);
		ASSERT_EQ(0, kmem_set_finalizer(o, count_finalizer, NULL));
		kfree(o);
		if (i == NR_INHERITED / 2) {
			kmem_gc();
			ASSERT_TRUE(flag_wait(&fork_gate.entered, 1, TIMEOUT_MS));
		}
	}
	pid = fork_child();
	ASSERT_GE(pid, 0);
	if (pid == 0)
		_exit(child_finishes_inherited());
	ASSERT_EQ(0, wait_child(pid, TIMEOUT_MS, &status));
	EXPECT_TRUE(child_exited_cleanly(status))
		TH_LOG("child status %#x", status);
	/* nothing ran in the parent meanwhile */
	for (i = 0; i < NR_INHERITED; i++)
		wrong += object_runs[i] != 0;
	EXPECT_EQ(0, wrong);
	gate_open(&fork_gate);
	ASSERT_TRUE(finalize_all());
	wrong = 0;
	for (i = 0; i < NR_INHERITED; i++)
		wrong += object_runs[i] != 1;
	EXPECT_EQ(0, wrong);
	free(object_runs);
}

/* ---- the watchdog ------------------------------------------------------ */

/* Polls the watchdog's report count; false after CHILD_TIMEOUT_MS. */
static bool lockups_reach(uint64_t n)
{
	unsigned long long deadline = monotonic_ms() + CHILD_TIMEOUT_MS;

	while (fin_stats().lockups < n) {
		if (monotonic_ms() >= deadline)
			return false;
		sleep_ms(5);
	}
	return true;
}

/*
 * In a child run with KSLAB_FINALIZER_WATCHDOG_MS=100: one stall with two
 * finalizers behind it, held for several thresholds (one report), then a
 * second stall (a second report).  Prints the stuck object's address.
 */
static int child_watchdog(void)
{
	struct kmem_cache *s = obj_cache("lockup_cache", 64);
	struct gate first = GATE_INIT, second = GATE_INIT;
	struct fin_record behind = { 0 };
	struct tobj *stuck, *o[2];
	unsigned int i;

	if (!s)
		return child_failed(2, "no cache");
	stuck = cache_obj(s, 1);
	o[0] = kmalloc_obj(2, 64);
	o[1] = kmalloc_obj(3, 64);
	if (!stuck || !o[0] || !o[1])
		return child_failed(2, "no objects");
	if (kmem_set_finalizer(stuck, blocking_finalizer, &first))
		return child_failed(3, "kmem_set_finalizer failed");
	for (i = 0; i < 2; i++)
		if (kmem_set_finalizer(o[i], record_finalizer, &behind))
			return child_failed(3, "kmem_set_finalizer failed");
	printf("%p\n", (void *)stuck);
	fflush(stdout);
	kmem_cache_free(s, stuck);
	kfree(o[0]);
	kfree(o[1]);
	kmem_gc();
	if (!flag_wait(&first.entered, 1, CHILD_TIMEOUT_MS))
		return child_failed(4, "the finalizer did not start");
	if (!lockups_reach(1))
		return child_failed(5, "no lockup report");
	/* still the same stall: no second report */
	sleep_ms(4 * WATCHDOG_MS);
	if (fin_stats().lockups != 1)
		return child_failed(6, "one stall reported more than once");
	gate_open(&first);
	if (kmem_finalizers_wait(CHILD_TIMEOUT_MS) || load_acquire(behind.runs) != 2)
		return child_failed(7, "the queue did not drain after the stall");

	stuck = cache_obj(s, 4);
	if (!stuck || kmem_set_finalizer(stuck, blocking_finalizer, &second))
		return child_failed(8, "second object");
	kmem_cache_free(s, stuck);
	kmem_gc();
	if (!lockups_reach(2)) {
		gate_open(&second);
		return child_failed(9, "the second stall was not reported");
	}
	gate_open(&second);
	if (kmem_finalizers_wait(CHILD_TIMEOUT_MS))
		return child_failed(10, "the queue did not drain after the second stall");
	kmem_cache_destroy(s);
	return 0;
}

TEST(watchdog_reports_a_finalizer_lockup_once_per_stall)
{
	struct child_run run;
	const char *report, *running;
	char addr[64];
	long ms = -1;
	int parsed;

	ASSERT_EQ(0, run_child(NULL, "watchdog", "KSLAB_FINALIZER_WATCHDOG_MS=100", &run))
		TH_LOG("child hung; stderr:\n%s", or_empty(run.err));
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	first_line(or_empty(run.out), addr, sizeof(addr));
	EXPECT_EQ(2, text_count(run.err, "BUG: finalizer lockup"))
		TH_LOG("stderr:\n%s", or_empty(run.err));
	report = strstr(or_empty(run.err), "BUG: finalizer lockup");
	ASSERT_NE(NULL, report);
	EXPECT_TEXT_CONTAINS(report, "BUG: finalizer lockup: blocking_finalizer() running for ");
	EXPECT_TEXT_CONTAINS(report, "cache lockup_cache");
	EXPECT_TEXT_CONTAINS(report, "2 queued behind it");
	if (addr[0])
		EXPECT_TEXT_CONTAINS(report, addr);
	running = strstr(report, "running for ");
	ASSERT_NE(NULL, running);
	parsed = sscanf(running, "running for %ld ms", &ms);
	EXPECT_EQ(1, parsed);
	EXPECT_GE(ms, WATCHDOG_MS);
	child_run_release(&run);
}

/* ---- at exit ----------------------------------------------------------- */

/*
 * Go's second program, C and A around a B that never returns: C runs,
 * B is running, A queued when the process exits.
 */
static int child_exit_with_a_stuck_finalizer(void)
{
	static struct gate never = GATE_INIT;
	static struct fin_record ra, rc;
	struct tobj *a = kmalloc_obj(1, 64), *b = kmalloc_obj(2, 64);
	struct tobj *c = kmalloc_obj(3, 64);

	if (!a || !b || !c)
		return child_failed(2, "no objects");
	if (kmem_set_finalizer(a, record_finalizer, &ra) ||
	    kmem_set_finalizer(b, blocking_finalizer, &never) ||
	    kmem_set_finalizer(c, record_finalizer, &rc))
		return child_failed(3, "kmem_set_finalizer failed");
	kfree(c);
	kfree(b);
	kfree(a);
	kmem_gc();
	if (!flag_wait(&never.entered, 1, CHILD_TIMEOUT_MS))
		return child_failed(4, "B's finalizer did not start");
	if (load_acquire(rc.runs) != 1 || load_acquire(ra.runs))
		return child_failed(5, "C should have run, A not");
	return 0;
}

TEST(exit_reports_finalizers_that_did_not_run)
{
	struct child_run run;

	ASSERT_EQ(0, run_child(NULL, "exit-stuck", NULL, &run))
		TH_LOG("exit hung on a stuck finalizer; stderr:\n%s", or_empty(run.err));
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	EXPECT_LT(run.ms, 5000);
	EXPECT_EQ(1, text_count(run.err, "did not run before exit"))
		TH_LOG("stderr:\n%s", or_empty(run.err));
	EXPECT_TEXT_CONTAINS(or_empty(run.err),
			     "kslab: 2 finalizers did not run before exit (1 running, 1 queued)\n");
	child_run_release(&run);
}

/* Finalizers still at work when main() returns, both finishing. */
static void slow_exit_finalizer(void *obj, void *arg)
{
	static const char msg[] = "slow finalizer returned\n";

	sleep_ms(300);
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		return;
}

static void next_exit_finalizer(void *obj, void *arg)
{
	static const char msg[] = "next finalizer ran\n";

	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		return;
}

static int child_exit_with_slow_finalizers(void)
{
	struct tobj *slow = kmalloc_obj(1, 64), *next = kmalloc_obj(2, 64);

	if (!slow || !next)
		return child_failed(2, "no objects");
	if (kmem_set_finalizer(slow, slow_exit_finalizer, NULL) ||
	    kmem_set_finalizer(next, next_exit_finalizer, NULL))
		return child_failed(3, "kmem_set_finalizer failed");
	kfree(slow);
	kfree(next);
	kmem_gc();
	return 0;
}

TEST(finalize_at_exit_lets_slow_finalizers_finish)
{
	struct child_run run;

	ASSERT_EQ(0, run_child(NULL, "exit-slow", "KSLAB_FINALIZE_AT_EXIT=10000", &run))
		TH_LOG("stderr:\n%s", or_empty(run.err));
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	EXPECT_TEXT_CONTAINS(or_empty(run.err), "slow finalizer returned\n");
	EXPECT_TEXT_CONTAINS(or_empty(run.err), "next finalizer ran\n");
	EXPECT_EQ(0, text_count(run.err, "did not run before exit"))
		TH_LOG("stderr:\n%s", or_empty(run.err));
	child_run_release(&run);
}

TEST(finalize_at_exit_gives_up_on_a_stuck_finalizer)
{
	struct child_run run;

	ASSERT_EQ(0, run_child(NULL, "exit-stuck", "KSLAB_FINALIZE_AT_EXIT=200", &run))
		TH_LOG("exit hung on a stuck finalizer; stderr:\n%s", or_empty(run.err));
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	EXPECT_GE(run.ms, 200);
	EXPECT_LT(run.ms, 5000);
	EXPECT_EQ(1, text_count(run.err, "did not run before exit"))
		TH_LOG("stderr:\n%s", or_empty(run.err));
	EXPECT_TEXT_CONTAINS(or_empty(run.err),
			     "kslab: 2 finalizers did not run before exit (1 running, 1 queued)\n");
	child_run_release(&run);
}

/* ---- Go's two finalizer examples ---------------------------------------- */

/*
 * The same programs as tools/finalizer-demo/simple.c and blocking.c, run
 * in a forked child whose stdout and stderr go to files.  Go's collector
 * finds an unreachable object at runtime.GC(); a kslab object is handed
 * over at its free, so each is freed right before kmem_gc().
 */
struct test_struct {
	char name[16];
};

static void test_struct_finalizer(void *obj, void *arg)
{
	printf("gc Finalizer%s\n", (const char *)arg);
}

static struct test_struct *new_finalized(const char *suffix, kmem_finalizer_t fn)
{
	struct test_struct *v = kmalloc(sizeof(*v), GFP_KERNEL);

	if (!v)
		exit(2);
	strcpy(v->name, "n1");
	if (kmem_set_finalizer(v, fn, (void *)suffix))
		exit(3);
	return v;
}

static int go_simple(void)
{
	struct test_struct *t = new_finalized("", test_struct_finalizer);

	printf("=== start ===\n");
	printf("=== ... ===\n");
	kfree(t);
	kmem_gc();
	printf("=== end ===\n");
	return 0;
}

/* B's finalizer: a receive from a nil channel never returns. */
static void go_b_finalizer(void *obj, void *arg)
{
	static struct gate nil_channel = GATE_INIT;

	gate_pass(&nil_channel);
	printf("gc Finalizer B\n");
}

static int go_blocking(void)
{
	struct test_struct *a = new_finalized(" A", test_struct_finalizer);
	struct test_struct *b = new_finalized(" B", go_b_finalizer);
	struct test_struct *c = new_finalized(" C", test_struct_finalizer);
	int i;

	printf("=== start ===\n");
	printf("=== ... ===\n");
	kfree(c);
	kfree(b);
	kfree(a);
	for (i = 0; i < 10; i++)
		kmem_gc();
	printf("=== end ===\n");
	return 0;
}

TEST(go_simple_example_prints_its_output_exactly)
{
	struct child_run run;

	ASSERT_EQ(0, run_child(go_simple, NULL, NULL, &run));
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	EXPECT_STREQ("=== start ===\n=== ... ===\ngc Finalizer\n=== end ===\n",
		     or_empty(run.out));
	EXPECT_TEXT_EMPTY(or_empty(run.err));
	child_run_release(&run);
}

TEST(go_blocking_example_prints_only_c_and_reports_two_at_exit)
{
	struct child_run run;

	ASSERT_EQ(0, run_child(go_blocking, NULL, NULL, &run))
		TH_LOG("exit hung on B's finalizer");
	EXPECT_TRUE(child_exited_cleanly(run.status))
		TH_LOG("child status %#x, stderr:\n%s", run.status, or_empty(run.err));
	EXPECT_LT(run.ms, 5000);
	EXPECT_STREQ("=== start ===\n=== ... ===\ngc Finalizer C\n=== end ===\n",
		     or_empty(run.out));
	EXPECT_STREQ("kslab: 2 finalizers did not run before exit (1 running, 1 queued)\n",
		     or_empty(run.err));
	child_run_release(&run);
}

/* ---- main -------------------------------------------------------------- */

static const struct {
	const char *name;
	int (*fn)(void);
} child_modes[] = {
	{ "watchdog", child_watchdog },
	{ "exit-stuck", child_exit_with_a_stuck_finalizer },
	{ "exit-slow", child_exit_with_slow_finalizers },
};

static int child_main(const char *mode)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(child_modes); i++)
		if (!strcmp(mode, child_modes[i].name))
			return child_modes[i].fn();
	return child_failed(1, "unknown mode");
}

/*
 * TEST_HARNESS_MAIN under another name, so that a run of this binary
 * started by run_child() goes to child_main() instead.
 */
#define main harness_main
TEST_HARNESS_MAIN
#undef main

int main(int argc, char **argv)
{
	const char *mode = getenv(CHILD_MODE_ENV);

	if (mode)
		return child_main(mode);
	return harness_main(argc, argv);
}
