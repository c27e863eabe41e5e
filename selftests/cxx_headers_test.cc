// SPDX-License-Identifier: MIT
/*
 * The public headers from C++ (ISO C++17, g++ or clang++): they compile,
 * their macros work, and the calls behind them behave as they do from C.
 * One behaviour per test: the kmalloc family, a cache made by
 * KMEM_CACHE(), kfree_rcu() and kvfree_rcu_barrier(), kfree_rcu() of a
 * class that is not standard-layout, an RCU reader of <urcu.h> holding a
 * kfree_rcu() back, a finalizer and a cleanup given as C++ lambdas, plain
 * and delayed work on a workqueue, and each macro evaluating its
 * arguments once.
 *
 * This unit includes glibc's <sys/param.h> and liburcu's <urcu.h> before
 * <kslab/kslab.h>; cxx_headers_kslab_first.cc, linked in, includes them
 * after every kslab header.  HZ must be kslab's 1000 in both.
 *
 * The kernel's kselftest_harness.h is C only, so the tests use the TAP
 * functions of kselftest.h: each test returns false at its first failed
 * CHECK(), after a line naming it, and the exit status is non-zero if any
 * test failed.
 */
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <new>

#include <sys/param.h>
#include <time.h>
#include <unistd.h>
#include <urcu.h>

#include <kslab/kslab.h>

#include "cxx_headers_test.h"
#include "kselftest.h"

static_assert(HZ == 1000, "<kslab/kslab.h> after <sys/param.h>: kslab's HZ");

/* Bound for anything that must finish: far above a normal run. */
#define TIMEOUT_MS	20000
/* How long a reader keeps a freed object in view. */
#define HOLD_MS		100
/* The whole binary, should a wait hang despite its own bound. */
#define ALARM_S		120

#define CHECK(cond) do {						\
	if (!(cond)) {							\
		ksft_print_msg("%s:%d: %s: check failed: %s\n",		\
			       __FILE__, __LINE__, __func__, #cond);	\
		return false;						\
	}								\
} while (0)

static void sleep_ms(unsigned int ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000 };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static size_t active_objs(struct kmem_cache *s)
{
	struct kmem_cache_info info;

	if (kmem_cache_get_info(s, &info))
		return SIZE_MAX;
	return info.active_objs;
}

/* ---- headers ------------------------------------------------------------ */

static bool hz_is_kslab_jiffy_in_both_include_orders(void)
{
	CHECK(HZ == 1000);
	CHECK(hz_with_kslab_first() == 1000);
	CHECK(msecs_to_jiffies(1500) == 1500);
	return true;
}

/* ---- kmalloc ------------------------------------------------------------ */

static bool kmalloc_family_works(void)
{
	char *p, *q, *s;
	unsigned char *z;
	size_t i;

	p = static_cast<char *>(kmalloc(100, GFP_KERNEL));
	CHECK(p != nullptr);
	CHECK(!ZERO_OR_NULL_PTR(p));
	CHECK(ksize(p) >= 100);
	memset(p, 'k', 100);
	q = static_cast<char *>(krealloc(p, 5000, GFP_KERNEL));
	CHECK(q != nullptr);
	for (i = 0; i < 100; i++)
		CHECK(q[i] == 'k');
	kfree(q);

	z = static_cast<unsigned char *>(kzalloc(300, GFP_KERNEL));
	CHECK(z != nullptr);
	for (i = 0; i < 300; i++)
		CHECK(z[i] == 0);
	kfree(z);

	s = kstrdup("kslab from C++", GFP_KERNEL);
	CHECK(s != nullptr);
	CHECK(strcmp(s, "kslab from C++") == 0);
	kfree(s);

	CHECK(kmalloc(0, GFP_KERNEL) == ZERO_SIZE_PTR);
	CHECK(ZERO_OR_NULL_PTR(ZERO_SIZE_PTR));
	CHECK(ZERO_OR_NULL_PTR(nullptr));
	CHECK(kcalloc(SIZE_MAX / 2, 4, GFP_KERNEL) == nullptr);
	CHECK(KMALLOC_MAX_CACHE_SIZE >= 8192);
	kfree(ZERO_SIZE_PTR);
	kfree(nullptr);
	return true;
}

/* ---- caches ------------------------------------------------------------- */

/* Over-aligned, so that KMEM_CACHE() must pass __alignof__ on. */
struct cxx_vector {
	alignas(32) double v[4];
	int tag;
};

static bool kmem_cache_made_by_kmem_cache_macro(void)
{
	struct kmem_cache *s;
	struct cxx_vector *vec;
	void *objs[16];
	size_t i;

	s = KMEM_CACHE(cxx_vector, SLAB_HWCACHE_ALIGN);
	CHECK(s != nullptr);
	CHECK(strcmp(kmem_cache_name(s), "cxx_vector") == 0);
	CHECK(kmem_cache_size(s) >= sizeof(struct cxx_vector));

	vec = static_cast<struct cxx_vector *>(kmem_cache_zalloc(s, GFP_KERNEL));
	CHECK(vec != nullptr);
	CHECK((uintptr_t)vec % alignof(struct cxx_vector) == 0);
	CHECK(vec->tag == 0 && vec->v[3] == 0.0);
	vec->tag = 42;
	CHECK(active_objs(s) == 1);
	kmem_cache_free(s, vec);
	CHECK(active_objs(s) == 0);

	CHECK(kmem_cache_alloc_bulk(s, GFP_KERNEL, 16, objs) == 16);
	for (i = 0; i < 16; i++)
		CHECK((uintptr_t)objs[i] % alignof(struct cxx_vector) == 0);
	CHECK(active_objs(s) == 16);
	kmem_cache_free_bulk(s, 16, objs);
	CHECK(active_objs(s) == 0);
	kmem_cache_destroy(s);
	return true;
}

/* ---- RCU ---------------------------------------------------------------- */

/* The rcu_head inside a member: kfree_rcu() takes a member designator. */
struct cxx_node {
	int value;
	struct {
		void *owner;
		struct rcu_head rcu;
	} link;
};

static bool kfree_rcu_objects_are_back_after_the_barrier(void)
{
	enum { NR = 64 };
	struct cxx_item *items[NR], *none = nullptr;
	const struct cxx_item *frozen;
	struct kmem_cache *s;
	struct cxx_node *node;
	int i;

	s = KMEM_CACHE(cxx_item, 0);
	CHECK(s != nullptr);
	for (i = 0; i < NR; i++) {
		items[i] = static_cast<struct cxx_item *>(
			kmem_cache_alloc(s, GFP_KERNEL));
		CHECK(items[i] != nullptr);
		items[i]->key = i;
	}
	/* half here, half in the unit that included kslab first */
	for (i = 0; i < NR / 2; i++)
		kfree_rcu(items[i], rcu);
	for (; i < NR - 1; i++)
		kfree_rcu_with_kslab_first(items[i]);
	/* a pointer to const, as kfree() takes */
	frozen = items[i];
	kfree_rcu(frozen, rcu);
	kfree_rcu(none, rcu);
	kvfree_rcu_barrier();
	CHECK(active_objs(s) == 0);
	kmem_cache_destroy(s);

	node = static_cast<struct cxx_node *>(kmalloc(sizeof(*node), GFP_KERNEL));
	CHECK(node != nullptr);
	kfree_rcu(node, link.rcu);
	node = static_cast<struct cxx_node *>(kmalloc(sizeof(*node), GFP_KERNEL));
	CHECK(node != nullptr);
	kfree_rcu_mightsleep(node);
	kvfree_rcu_barrier();
	return true;
}

/*
 * Not standard-layout (data in a base and in the class, virtual
 * functions), so offsetof() would not do: kfree_rcu() must still find the
 * rcu_head, and leave the rest of the object, vtable pointer included,
 * intact for the finalizer.
 */
struct cxx_shape {
	long id;
	virtual ~cxx_shape() {}
	virtual long area() const { return 0; }
};

struct cxx_square : cxx_shape {
	long side;
	struct rcu_head rcu;
	long tail;
	std::atomic<int> *destroyed;

	long area() const override { return side * side; }
	~cxx_square() override { (*destroyed)++; }
};

struct shape_record {
	std::atomic<long> id;
	std::atomic<long> area;
	std::atomic<long> tail;
	std::atomic<int> destroyed;
};

static bool kfree_rcu_takes_any_class(void)
{
	struct shape_record rec = {};
	struct kmem_cache *s;
	struct cxx_square *sq;
	void *mem;

	s = KMEM_CACHE(cxx_square, 0);
	CHECK(s != nullptr);
	mem = kmem_cache_alloc(s, GFP_KERNEL);
	CHECK(mem != nullptr);
	sq = new (mem) cxx_square();
	sq->id = 3;
	sq->side = 12;
	sq->tail = -1;
	sq->destroyed = &rec.destroyed;
	/* the finalizer reads the object through its vtable, then ends it */
	CHECK(kmem_set_finalizer(sq, [](void *obj, void *arg) {
		struct cxx_shape *shape = static_cast<struct cxx_shape *>(obj);
		struct cxx_square *square = static_cast<struct cxx_square *>(shape);
		struct shape_record *r = static_cast<struct shape_record *>(arg);

		r->id = shape->id;
		r->area = shape->area();
		r->tail = square->tail;
		shape->~cxx_shape();
	}, &rec) == 0);
	kfree_rcu(sq, rcu);
	kmem_gc();
	CHECK(kmem_finalizers_wait(TIMEOUT_MS) == 0);
	CHECK(rec.id == 3);
	CHECK(rec.area == 144);
	CHECK(rec.tail == -1);
	CHECK(rec.destroyed == 1);
	CHECK(active_objs(s) == 0);
	kmem_cache_destroy(s);
	return true;
}

struct finalizer_record {
	std::atomic<int> runs;
	std::atomic<long> key_seen;
	std::atomic<int> cleanups;
	std::atomic<int> cleanup_after_finalizer;
};

static void count_finalizer(void *obj, void *arg)
{
	struct finalizer_record *rec = static_cast<struct finalizer_record *>(arg);

	rec->key_seen = static_cast<struct cxx_item *>(obj)->key;
	rec->runs++;
}

static bool rcu_reader_holds_kfree_rcu_back(void)
{
	struct finalizer_record rec = {};
	struct cxx_item *item;
	bool held_back;

	item = static_cast<struct cxx_item *>(kmalloc(sizeof(*item), GFP_KERNEL));
	CHECK(item != nullptr);
	item->key = 1234;
	CHECK(kmem_set_finalizer(item, count_finalizer, &rec) == 0);

	rcu_register_thread();
	rcu_read_lock();
	kfree_rcu(item, rcu);
	/* the grace period cannot end while this reader is inside */
	sleep_ms(HOLD_MS);
	held_back = rec.runs == 0;
	rcu_read_unlock();
	rcu_unregister_thread();
	CHECK(held_back);
	kmem_gc();
	CHECK(kmem_finalizers_wait(TIMEOUT_MS) == 0);
	CHECK(rec.runs == 1);
	CHECK(rec.key_seen == 1234);
	return true;
}

/* ---- finalizers --------------------------------------------------------- */

static bool finalizer_and_cleanup_run_as_lambdas(void)
{
	struct finalizer_record rec = {};
	struct kmem_finalizer_stats before, after;
	struct cxx_item *item;

	kmem_finalizer_stats(&before);
	item = static_cast<struct cxx_item *>(kmalloc(sizeof(*item), GFP_KERNEL));
	CHECK(item != nullptr);
	item->key = 77;
	CHECK(kmem_set_finalizer(item, [](void *obj, void *arg) {
		count_finalizer(obj, arg);
	}, &rec) == 0);
	CHECK(kmem_set_finalizer(item, count_finalizer, &rec) == -EBUSY);
	CHECK(kmem_add_cleanup(item, [](void *arg) {
		struct finalizer_record *r =
			static_cast<struct finalizer_record *>(arg);

		r->cleanup_after_finalizer = r->runs.load();
		r->cleanups++;
	}, &rec, nullptr) == 0);
	kfree(item);
	kmem_gc();
	CHECK(kmem_finalizers_wait(TIMEOUT_MS) == 0);
	CHECK(rec.runs == 1);
	CHECK(rec.key_seen == 77);
	CHECK(rec.cleanups == 1);
	CHECK(rec.cleanup_after_finalizer == 1);
	kmem_finalizer_stats(&after);
	CHECK(after.finalizers_executed >= before.finalizers_executed + 1);
	CHECK(after.cleanups_executed >= before.cleanups_executed + 1);
	return true;
}

/* ---- workqueues --------------------------------------------------------- */

struct cxx_job {
	int value;
	struct work_struct work;
	struct delayed_work dwork;
	std::atomic<int> runs;
	std::atomic<int> value_seen;
	std::atomic<bool> was_current;
};

static void job_fn(struct work_struct *work)
{
	struct cxx_job *job = container_of(work, struct cxx_job, work);

	job->value_seen = job->value;
	job->was_current = current_work() == work;
	job->runs++;
}

static void delayed_job_fn(struct work_struct *work)
{
	struct delayed_work *dwork = to_delayed_work(work);
	struct cxx_job *job = container_of(dwork, struct cxx_job, dwork);

	job->value_seen = job->value;
	job->runs++;
}

static bool work_runs_on_a_workqueue(void)
{
	struct workqueue_struct *wq;
	struct cxx_job job;

	wq = alloc_workqueue("cxx-%s", WQ_UNBOUND, 0, "test");
	CHECK(wq != nullptr);

	job.value = 5;
	job.runs = 0;
	job.value_seen = 0;
	job.was_current = false;
	INIT_WORK(&job.work, job_fn);
	CHECK(queue_work(wq, &job.work));
	flush_work(&job.work);
	CHECK(job.runs == 1);
	CHECK(job.value_seen == 5);
	CHECK(job.was_current);

	job.value = 6;
	CHECK(queue_work(system_wq, &job.work));
	flush_work(&job.work);
	CHECK(job.runs == 2);
	CHECK(job.value_seen == 6);

	job.runs = 0;
	job.value = 7;
	INIT_DELAYED_WORK(&job.dwork, delayed_job_fn);
	CHECK(queue_delayed_work(wq, &job.dwork, msecs_to_jiffies(TIMEOUT_MS)));
	CHECK(!queue_delayed_work(wq, &job.dwork, 0));
	/* pending on its timer: true, re-armed to run now */
	CHECK(mod_delayed_work(wq, &job.dwork, 0));
	flush_delayed_work(&job.dwork);
	CHECK(job.runs == 1);
	CHECK(job.value_seen == 7);
	/* idle: false, armed */
	CHECK(!mod_delayed_work(wq, &job.dwork, 60 * HZ));
	CHECK(cancel_delayed_work_sync(&job.dwork));
	CHECK(job.runs == 1);

	destroy_workqueue(wq);
	return true;
}

/* ---- macro arguments ---------------------------------------------------- */

static bool macros_evaluate_each_argument_once(void)
{
	struct cxx_item *items[2];
	struct cxx_job jobs[2];
	struct work_struct *works[2] = { &jobs[0].work, &jobs[1].work };
	struct kmem_cache *s;
	unsigned int flags_read = 0;
	int i;

	s = KMEM_CACHE(cxx_item, (flags_read++, 0u));
	CHECK(s != nullptr);
	CHECK(flags_read == 1);
	for (i = 0; i < 2; i++) {
		items[i] = static_cast<struct cxx_item *>(
			kmem_cache_alloc(s, GFP_KERNEL));
		CHECK(items[i] != nullptr);
	}
	i = 0;
	kfree_rcu(items[i++], rcu);
	CHECK(i == 1);
	kfree_rcu_mightsleep(items[i++]);
	CHECK(i == 2);
	kvfree_rcu_barrier();
	CHECK(active_objs(s) == 0);
	kmem_cache_destroy(s);

	i = 0;
	CHECK(!ZERO_OR_NULL_PTR(&jobs[i++]));
	CHECK(i == 1);

	i = 0;
	INIT_WORK(&jobs[i++].work, job_fn);
	CHECK(i == 1);
	INIT_DELAYED_WORK(&jobs[i++].dwork, delayed_job_fn);
	CHECK(i == 2);
	CHECK(jobs[0].work.func == job_fn);
	CHECK(jobs[1].dwork.work.func == delayed_job_fn);

	i = 0;
	CHECK(container_of(works[i++], struct cxx_job, work) == &jobs[0]);
	CHECK(i == 1);
	return true;
}

static const struct cxx_test {
	const char *name;
	bool (*run)(void);
} tests[] = {
#define CXX_TEST(fn)	{ #fn, fn }
	CXX_TEST(hz_is_kslab_jiffy_in_both_include_orders),
	CXX_TEST(kmalloc_family_works),
	CXX_TEST(kmem_cache_made_by_kmem_cache_macro),
	CXX_TEST(kfree_rcu_objects_are_back_after_the_barrier),
	CXX_TEST(kfree_rcu_takes_any_class),
	CXX_TEST(rcu_reader_holds_kfree_rcu_back),
	CXX_TEST(finalizer_and_cleanup_run_as_lambdas),
	CXX_TEST(work_runs_on_a_workqueue),
	CXX_TEST(macros_evaluate_each_argument_once),
#undef CXX_TEST
};

int main(void)
{
	size_t i;

	alarm(ALARM_S);
	ksft_print_header();
	ksft_set_plan(sizeof(tests) / sizeof(tests[0]));
	for (i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
		ksft_test_result(tests[i].run(), "%s\n", tests[i].name);
	ksft_finished();
}
