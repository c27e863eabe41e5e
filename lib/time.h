/* SPDX-License-Identifier: MIT */
/*
 * Time for kslab's own use, written once: the monotonic clock in
 * nanoseconds and milliseconds, condition variables that count on it, and
 * a wait with an absolute deadline.  Deadlines are CLOCK_MONOTONIC
 * nanoseconds, so a change of the wall clock never shortens or stretches
 * a wait; 0 means "no deadline" wherever a deadline is optional.
 */
#ifndef _KSLAB_LIB_TIME_H
#define _KSLAB_LIB_TIME_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#define NSEC_PER_MSEC	1000000ULL
#define NSEC_PER_SEC	1000000000ULL

/* CLOCK_MONOTONIC in nanoseconds. */
static inline uint64_t kslab_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NSEC_PER_SEC + (uint64_t)ts.tv_nsec;
}

/* CLOCK_MONOTONIC in milliseconds. */
static inline unsigned long kslab_now_ms(void)
{
	return (unsigned long)(kslab_now_ns() / NSEC_PER_MSEC);
}

/*
 * CLOCK_MONOTONIC_COARSE in milliseconds: no system call on Linux, a
 * resolution of a few ms; for decay stamps on slow paths.
 */
static inline unsigned long kslab_now_ms_coarse(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (unsigned long)ts.tv_sec * 1000UL +
	       (unsigned long)ts.tv_nsec / NSEC_PER_MSEC;
}

/* Make @cond's timed waits count on CLOCK_MONOTONIC. */
static inline void kslab_cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

/**
 * kslab_cond_wait_until - wait on @cond until woken or @deadline_ns
 * @cond: a condition initialised by kslab_cond_init_monotonic()
 * @lock: held by the caller, as for pthread_cond_wait()
 * @deadline_ns: CLOCK_MONOTONIC nanoseconds; 0 waits without a deadline
 *
 * Return: false once the deadline has passed, true otherwise (woken, or
 * a spurious wake-up: callers re-check their condition either way).
 */
static inline bool kslab_cond_wait_until(pthread_cond_t *cond,
					 pthread_mutex_t *lock,
					 uint64_t deadline_ns)
{
	struct timespec ts = {
		.tv_sec = (time_t)(deadline_ns / NSEC_PER_SEC),
		.tv_nsec = (long)(deadline_ns % NSEC_PER_SEC),
	};

	if (!deadline_ns) {
		pthread_cond_wait(cond, lock);
		return true;
	}
	return pthread_cond_timedwait(cond, lock, &ts) != ETIMEDOUT;
}

#endif /* _KSLAB_LIB_TIME_H */
