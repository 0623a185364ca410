/* readahead.h - warming the chunk cache ahead of sequential readers: a fixed pool of
 * worker threads draining a bounded queue of (file, chunk) jobs through aprfs_file_warm,
 * and a per-handle detector that decides which chunks to queue. */
#ifndef APRFS_READAHEAD_H
#define APRFS_READAHEAD_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "base/cancel.h"
#include "cache/cache.h"
#include "file/aprfile.h"

typedef struct aprfs_ra aprfs_ra;

typedef struct aprfs_ra_stats {
	uint64_t queued;  /* jobs accepted */
	uint64_t warmed;  /* jobs run to success */
	uint64_t failed;  /* jobs whose warm failed (e.g. the source changed) */
	uint64_t dropped; /* jobs refused because the queue was full, or cancelled */
	uint64_t pending; /* jobs waiting now */
} aprfs_ra_stats;

/* threads workers (>= 1) and room for queue_cap waiting jobs. pool_cancel (may be NULL,
 * must outlive the pool) abandons every job, e.g. once the mount is ending. A job is also
 * abandoned when its owner is cancelled and when the reader that queued it is gone.
 * Returns NULL on failure. */
aprfs_ra *aprfs_ra_new(unsigned threads, size_t queue_cap, aprfs_cache *cache,
		       const aprfs_cancel *pool_cancel);
/* Stop the workers (a running job gives up at its next check), drop the jobs still
 * queued, join and free. NULL is allowed. */
void aprfs_ra_free(aprfs_ra *ra);
void aprfs_ra_get_stats(aprfs_ra *ra, aprfs_ra_stats *out);
/* Block until no job is queued or running (tests). */
void aprfs_ra_drain(aprfs_ra *ra);

/* Queue chunk c of f on behalf of owner, for reader pid (0: none), taking a reference on f
 * for the job's life. 0, or -EAGAIN when the queue is full. */
int aprfs_ra_queue(aprfs_ra *ra, aprfs_file *f, uint64_t c, const void *owner, pid_t pid);
/* Drop the queued jobs of owner and make its running ones give up, e.g. when its handle
 * closes. */
void aprfs_ra_cancel(aprfs_ra *ra, const void *owner);

/* The sequential-read detector of one open handle. */
typedef struct aprfs_ra_stream {
	pthread_mutex_t lock;
	uint64_t next_off;  /* where a sequential reader continues */
	uint64_t warm_next; /* first chunk not yet queued */
	unsigned seq_reads; /* consecutive sequential reads */
} aprfs_ra_stream;

void aprfs_ra_stream_init(aprfs_ra_stream *s);
void aprfs_ra_stream_destroy(aprfs_ra_stream *s);
/* Record a read of [off, off+len) on f by reader pid. Once the handle reads sequentially,
 * queue the chunks covering the next window bytes after it (each chunk at most once).
 * Returns the number of jobs queued. ra NULL or window 0 does nothing. */
unsigned aprfs_ra_note_read(aprfs_ra *ra, aprfs_ra_stream *s, aprfs_file *f, uint64_t off,
			    size_t len, uint64_t window, pid_t pid);

#endif
