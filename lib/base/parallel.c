/* parallel.c - aprfs_parallel(): a fixed set of threads draining a job counter (see
 * parallel.h). Threads are started per call: the callers run long passes (hundreds of
 * milliseconds), so a pool would save nothing measurable and add state to reset. */
#include "base/parallel.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#define MAX_THREADS 16

typedef struct run {
	aprfs_job_fn fn;
	void *ctx;
	uint64_t n;
	atomic_uint_fast64_t next;
	atomic_int failed;
	pthread_mutex_t lock; /* guards err */
	aprfs_err err;
} run;

static void *worker(void *arg)
{
	run *r = arg;
	uint64_t i;

	while (!atomic_load(&r->failed) && (i = atomic_fetch_add(&r->next, 1)) < r->n) {
		aprfs_err e = {0};
		if (r->fn(r->ctx, i, &e) != 0) {
			pthread_mutex_lock(&r->lock);
			if (!atomic_exchange(&r->failed, 1))
				r->err = e;
			pthread_mutex_unlock(&r->lock);
		}
	}
	return NULL;
}

int aprfs_parallel(uint64_t n, aprfs_job_fn fn, void *ctx, aprfs_err *err)
{
	run r = {.fn = fn, .ctx = ctx, .n = n};
	long cores = sysconf(_SC_NPROCESSORS_ONLN);
	uint64_t want = cores < 1 ? 1 : cores > MAX_THREADS ? MAX_THREADS : (uint64_t)cores;
	pthread_t th[MAX_THREADS];
	int started = 0;

	if (want > n)
		want = n ? n : 1;
	pthread_mutex_init(&r.lock, NULL);
	for (uint64_t t = 1; t < want; t++)
		started += pthread_create(&th[started], NULL, worker, &r) == 0;
	worker(&r);
	for (int t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_mutex_destroy(&r.lock);
	if (atomic_load(&r.failed)) {
		if (err)
			*err = r.err;
		return -(r.err.code ? r.err.code : EIO);
	}
	return 0;
}
