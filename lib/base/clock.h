/* clock.h - the one clock helper: a clock's time as nanoseconds or seconds, for durations
 * (CLOCK_MONOTONIC) and ages of files (CLOCK_REALTIME). */
#ifndef APRFS_CLOCK_H
#define APRFS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Clock clock_id (CLOCK_MONOTONIC, CLOCK_REALTIME...) in nanoseconds. */
static inline int64_t aprfs_now_ns(clockid_t clock_id)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* CLOCK_MONOTONIC in seconds: for durations. */
static inline double aprfs_now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#endif
