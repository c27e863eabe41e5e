// SPDX-License-Identifier: MIT
/*
 * rcutorture: hammer kfree_rcu() for as long as you like.
 *
 *   rcutorture [--duration SECONDS] [--readers N] [--updaters N]
 *              [--list-size N] [--reader-sleep MS] [--updater-lifetime N]
 *              [--busted]
 *
 * Readers walk an RCU-protected hash table of --list-size objects and
 * check each one; updaters replace objects and kfree_rcu() the old ones
 * (tools/rcutorture.h explains the checks and why they can only fail when
 * kslab reclaims an object before its grace period).  Every second a line
 * shows reader walks and objects checked per second, replacements per
 * second, grace periods per second (kslab_rcu_get_stats()), objects
 * reclaimed, objects waiting for a grace period now and at their peak,
 * how often a freeing thread was held back, and failures.  A summary
 * follows the run.
 *
 * --reader-sleep MS lets readers sleep up to MS milliseconds inside one
 * read-side section in eight, which stretches grace periods and lets
 * memory pile up; KSLAB_RCU_MAX_PENDING then shows the back-pressure.
 * --updater-lifetime N hands each updater's work to a fresh thread every
 * N replacements, so threads keep exiting with frees in their batches.
 * --busted frees with kfree() at once instead of kfree_rcu(), the bug
 * this tool exists to find: it must fail (or crash), which shows the
 * checks work.
 *
 * Exit status: 0 when nothing failed, 1 on any failure, 2 on bad usage.
 */
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "tools/rcutorture.h"

#define JOIN_TIMEOUT_MS		30000
#define BARRIER_TIMEOUT_MS	60000
/* Threads stop by themselves this long after the run should have ended. */
#define RUN_LIMIT_SLACK_MS	30000

static const struct option long_options[] = {
	{ "duration", required_argument, NULL, 'd' },
	{ "readers", required_argument, NULL, 'r' },
	{ "updaters", required_argument, NULL, 'u' },
	{ "list-size", required_argument, NULL, 'l' },
	{ "reader-sleep", required_argument, NULL, 's' },
	{ "updater-lifetime", required_argument, NULL, 't' },
	{ "busted", no_argument, NULL, 'b' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 }
};

static void print_usage(FILE *f)
{
	fprintf(f,
		"usage: rcutorture [--duration SECONDS] [--readers N] [--updaters N]\n"
		"                  [--list-size N] [--reader-sleep MS]\n"
		"                  [--updater-lifetime N] [--busted]\n"
		"  --duration          seconds to run (default 10)\n"
		"  --readers           reader threads (default 2)\n"
		"  --updaters          updater threads (default 2, at most --list-size)\n"
		"  --list-size         objects in the table (default 1000)\n"
		"  --reader-sleep      readers sleep up to MS ms inside one read-side\n"
		"                      section in 8 (default 0: never)\n"
		"  --updater-lifetime  replacements before an updater thread exits\n"
		"                      and a fresh one goes on (default 0: never)\n"
		"  --busted            kfree() at once instead of kfree_rcu(): must fail\n");
}

static bool parse_uint(const char *arg, unsigned int min, unsigned int max,
		       unsigned int *val)
{
	unsigned long v;
	char *end;

	errno = 0;
	v = strtoul(arg, &end, 10);
	if (errno || end == arg || *end || arg[0] == '-' || v < min || v > max)
		return false;
	*val = (unsigned int)v;
	return true;
}

static const char *option_name(int opt)
{
	const struct option *o;

	for (o = long_options; o->name; o++)
		if (o->val == opt)
			return o->name;
	return "?";
}

static const char *const signal_message[] = {
	[SIGSEGV] = "rcutorture: FAIL: SIGSEGV during the run (memory reclaimed under a reader?)\n",
	[SIGBUS] = "rcutorture: FAIL: SIGBUS during the run (memory reclaimed under a reader?)\n",
};

/* A reader that follows a reclaimed object's links may crash: say so. */
static void crash_handler(int sig)
{
	const char *msg = signal_message[sig];
	ssize_t ret;

	ret = write(STDERR_FILENO, msg, strlen(msg));
	(void)ret;
	raise(sig);	/* SA_RESETHAND: die of it, with the usual status */
}

static void catch_crashes(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = crash_handler;
	sa.sa_flags = SA_RESETHAND | SA_NODEFER;
	sigaction(SIGSEGV, &sa, NULL);
	sigaction(SIGBUS, &sa, NULL);
}

static double per_sec(unsigned long long n, unsigned long long ms)
{
	return ms ? n * 1000.0 / ms : 0.0;
}

static void print_header(const struct torture *t, unsigned int duration)
{
	struct kslab_rcu_stats st;

	kslab_rcu_get_stats(&st);
	printf("rcutorture: %u readers, %u updaters, %u objects of %zu bytes, %u s%s\n",
	       t->cfg.readers, t->cfg.updaters, t->cfg.list_size,
	       sizeof(struct torture_obj), duration,
	       t->cfg.busted ? ", BUSTED (kfree without a grace period)" : "");
	if (t->cfg.reader_sleep_ms)
		printf("rcutorture: readers sleep up to %u ms in 1 of %u read-side sections\n",
		       t->cfg.reader_sleep_ms, t->cfg.reader_sleep_one_in);
	if (t->cfg.updater_lifetime)
		printf("rcutorture: a new updater thread every %u replacements\n",
		       t->cfg.updater_lifetime);
	printf("rcutorture: kslab holds freeing threads back above %zu waiting objects\n",
	       st.max_pending);
	printf("%6s %9s %11s %10s %7s %11s %8s %8s %8s %9s %8s\n", "time",
	       "walks/s", "checked/s", "updates/s", "gps/s", "reclaimed/s",
	       "waiting", "peak", "peak-MiB", "throttled", "failures");
	fflush(stdout);
}

static double mib(size_t objects, size_t obj_bytes)
{
	return (double)objects * obj_bytes / (1 << 20);
}

static void print_second(const struct torture_sample *now,
			 const struct torture_sample *prev, size_t obj_bytes)
{
	unsigned long long ms = now->ms - prev->ms;

	printf("%5.0fs %9.0f %11.0f %10.0f %7.0f %11.0f %8zu %8zu %8.1f %9lu %8lu\n",
	       now->ms / 1000.0, per_sec(now->walks - prev->walks, ms),
	       per_sec(now->checked - prev->checked, ms),
	       per_sec(now->updates - prev->updates, ms),
	       per_sec(now->rcu.grace_periods - prev->rcu.grace_periods, ms),
	       per_sec(now->rcu.objects - prev->rcu.objects, ms),
	       now->rcu.pending, now->rcu.peak_pending,
	       mib(now->rcu.peak_pending, obj_bytes), now->rcu.throttled,
	       now->total_failures);
	fflush(stdout);
}

static double percent(unsigned long part, unsigned long whole)
{
	return whole ? 100.0 * part / whole : 0.0;
}

static void print_summary(const struct torture *t,
			  const struct torture_sample *s, size_t obj_bytes)
{
	unsigned int i;

	printf("rcutorture: summary over %.2f s\n", s->ms / 1000.0);
	printf("  readers         %u: %lu walks (%.0f/s), %lu objects checked (%.0f/s), %lu sleeps in a section\n",
	       t->cfg.readers, s->walks, per_sec(s->walks, s->ms), s->checked,
	       per_sec(s->checked, s->ms), s->sleeps);
	printf("  updaters        %u: %lu replacements (%.0f/s); %.1f%% kmalloc, %.1f%% kfree_rcu_mightsleep, %.1f%% into reused memory\n",
	       t->cfg.updaters, s->updates, per_sec(s->updates, s->ms),
	       percent(s->kmalloc_objs, s->updates),
	       percent(s->mightsleep_frees, s->updates),
	       percent(s->reused, s->updates));
	if (t->cfg.updater_lifetime)
		printf("  updater threads %lu exited, each with its kfree_rcu() batch\n",
		       s->updater_exits);
	printf("  grace periods   %lu (%.0f/s), %lu batches handed over\n",
	       s->rcu.grace_periods, per_sec(s->rcu.grace_periods, s->ms),
	       s->rcu.batches);
	printf("  reclaimed       %llu objects\n", s->rcu.objects);
	printf("  peak waiting    %zu objects, %.1f MiB (bound %zu objects)\n",
	       s->rcu.peak_pending, mib(s->rcu.peak_pending, obj_bytes),
	       s->rcu.max_pending);
	printf("  throttled       %lu\n", s->rcu.throttled);
	printf("  failures        %lu\n", s->total_failures);
	for (i = 0; i < NR_TORTURE_FAILURES; i++) {
		if (s->failures[i])
			printf("    %-26s %lu\n", torture_failure_names[i],
			       s->failures[i]);
	}
	if (t->first_failure[0])
		printf("  first failure   %s\n", t->first_failure);
}

/*
 * After the barrier every retired object is back: the cache holds exactly
 * the objects still in the table.
 */
static bool cache_matches_table(const struct torture *t)
{
	struct kmem_cache_info info;
	size_t in_table = torture_cache_objects(t);

	memset(&info, 0, sizeof(info));
	kmem_cache_get_info(t->cache, &info);
	if (info.active_objs == in_table && !info.pending_rcu)
		return true;
	printf("rcutorture: FAIL: after kvfree_rcu_barrier() the cache has %zu objects (%zu waiting), the table %zu\n",
	       info.active_objs, info.pending_rcu, in_table);
	return false;
}

/*
 * Bytes an object holds while it waits: every RCU free in this process is
 * a torture object, of the dedicated cache or kmalloc-128, both 128-byte
 * slots unless the cache pads them.
 */
static size_t object_footprint(const struct torture *t)
{
	struct kmem_cache_info info;

	memset(&info, 0, sizeof(info));
	kmem_cache_get_info(t->cache, &info);
	return info.slot_size > sizeof(struct torture_obj) ?
		info.slot_size : sizeof(struct torture_obj);
}

static int run(struct torture *t, unsigned int duration)
{
	size_t obj_bytes = object_footprint(t);
	struct torture_sample prev, now;
	unsigned long long run_ms;
	bool ok = true;
	unsigned int sec;
	int err;

	print_header(t, duration);
	err = torture_start(t);
	if (err) {
		fprintf(stderr, "rcutorture: cannot start threads: %s\n",
			strerror(err));
		ok = false;
		duration = 0;
	}
	torture_sample(t, &prev);
	for (sec = 1; sec <= duration; sec++) {
		unsigned long long due = t->start_ms + sec * 1000ULL;
		unsigned long long ms = torture_now_ms();

		if (due > ms)
			torture_sleep_ms((unsigned int)(due - ms));
		torture_sample(t, &now);
		print_second(&now, &prev, obj_bytes);
		prev = now;
	}
	if (torture_stop(t, JOIN_TIMEOUT_MS)) {
		/* threads still run on this state: report and get out */
		pthread_mutex_lock(&t->lock);
		printf("rcutorture: FAIL: %s\n", t->first_failure);
		pthread_mutex_unlock(&t->lock);
		fflush(stdout);
		_exit(1);
	}
	torture_sample(t, &now);
	run_ms = now.ms;
	torture_barrier(t, BARRIER_TIMEOUT_MS);
	if (!t->stuck && !t->cfg.busted)
		ok &= cache_matches_table(t);
	/* the threads' counters are final; kslab's now include the barrier */
	torture_sample(t, &now);
	now.ms = run_ms;
	print_summary(t, &now, obj_bytes);
	ok &= !now.total_failures;
	return ok ? 0 : 1;
}

int main(int argc, char **argv)
{
	struct torture_config cfg = {
		.readers = 2,
		.updaters = 2,
		.list_size = 1000,
		.reader_sleep_one_in = 8,
	};
	unsigned int duration = 10;
	static struct torture t;
	int opt, ret, err;

	while ((opt = getopt_long(argc, argv, "d:r:u:l:s:t:bh", long_options,
				  NULL)) != -1) {
		bool ok = true;

		switch (opt) {
		case 'd':
			ok = parse_uint(optarg, 1, 7 * 24 * 3600, &duration);
			break;
		case 'r':
			ok = parse_uint(optarg, 0, 1024, &cfg.readers);
			break;
		case 'u':
			ok = parse_uint(optarg, 1, 1024, &cfg.updaters);
			break;
		case 'l':
			ok = parse_uint(optarg, 1, 1U << 22, &cfg.list_size);
			break;
		case 's':
			ok = parse_uint(optarg, 0, 10000, &cfg.reader_sleep_ms);
			break;
		case 't':
			ok = parse_uint(optarg, 0, UINT_MAX,
					&cfg.updater_lifetime);
			break;
		case 'b':
			cfg.busted = true;
			break;
		case 'h':
			print_usage(stdout);
			return 0;
		default:
			print_usage(stderr);
			return 2;
		}
		if (!ok) {
			fprintf(stderr, "rcutorture: bad value for --%s: %s\n",
				option_name(opt), optarg);
			return 2;
		}
	}
	if (optind < argc) {
		print_usage(stderr);
		return 2;
	}
	if (cfg.updaters > cfg.list_size) {
		fprintf(stderr, "rcutorture: each updater needs a key of its own: --updaters %u > --list-size %u\n",
			cfg.updaters, cfg.list_size);
		return 2;
	}
	cfg.run_limit_ms = duration * 1000U + RUN_LIMIT_SLACK_MS;

	catch_crashes();
	err = torture_setup(&t, &cfg);
	if (err) {
		fprintf(stderr, "rcutorture: setup failed: %s\n", strerror(-err));
		return 1;
	}
	ret = run(&t, duration);
	if (torture_empty_table(&t))
		ret = 1;
	kmem_cache_destroy(t.cache);	/* waits for the last kfree_rcu()s */
	if (torture_barrier(&t, BARRIER_TIMEOUT_MS))
		ret = 1;
	torture_cleanup(&t);
	printf("rcutorture: %s\n", ret ? "FAIL" : "PASS");
	return ret;
}
