/* parallel.h - running n independent jobs on every core: the cold-footer CRC pass and the
 * per-tensor statistic pass use it. Jobs are numbered 0..n-1 and taken in order from a
 * shared counter; the first failure stops the rest and is reported. */
#ifndef APRFS_PARALLEL_H
#define APRFS_PARALLEL_H

#include <stdint.h>

#include "base/err.h"

/* A job: 0 on success or -errno with err filled. */
typedef int (*aprfs_job_fn)(void *ctx, uint64_t i, aprfs_err *err);

/* Run fn(ctx, i) for i in [0, n) on up to one thread per online core (the calling
 * thread included, so it completes even if no thread can be started). */
int aprfs_parallel(uint64_t n, aprfs_job_fn fn, void *ctx, aprfs_err *err);

#endif
