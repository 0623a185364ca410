/* cache.h - the chunk cache: quantized chunks of any number of aprfs_files under one
 * byte budget, least recently used evicted first. Concurrent requests for a chunk that
 * is being computed wait for that one computation (single flight). Also the statistics
 * counters the daemon exposes, and the disk tier below it (diskcache.h), if any.
 *
 * lib/cache/ (above plan/): the in-memory chunk cache (this) and the disk tier (diskcache.h).
 */
#ifndef APRFS_CACHE_H
#define APRFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "cache/diskcache.h"
#include "plan/variant.h"

typedef struct aprfs_cache aprfs_cache;

/* The chunk compute latency histogram's upper bounds in seconds (Prometheus "le"), the
 * last bucket being everything above them. */
#define APRFS_COMPUTE_BUCKETS 12
extern const double aprfs_compute_bucket_le[APRFS_COMPUTE_BUCKETS];

typedef struct aprfs_cache_stats {
	uint64_t chunks_computed[APRFS_VARIANT_COUNT];
	uint64_t cache_hits[APRFS_VARIANT_COUNT];
	uint64_t bytes_quantized[APRFS_VARIANT_COUNT]; /* output bytes of computed chunks */
	uint64_t bytes_served[APRFS_VARIANT_COUNT];    /* bytes returned by reads */
	/* Chunks computed, by how long they took: [b] counts those in bucket b (not
	 * cumulative), [APRFS_COMPUTE_BUCKETS] those above every bound. */
	uint64_t compute_bucket[APRFS_VARIANT_COUNT][APRFS_COMPUTE_BUCKETS + 1];
	double compute_seconds[APRFS_VARIANT_COUNT];
	uint64_t evictions;
	uint64_t bytes_cached; /* now */
	uint64_t budget;
	int has_disk;		    /* a disk tier hangs under the cache: */
	aprfs_diskcache_stats disk; /* its counters */
} aprfs_cache_stats;

aprfs_cache *aprfs_cache_new(size_t budget_bytes);
void aprfs_cache_free(aprfs_cache *c);
void aprfs_cache_get_stats(aprfs_cache *c, aprfs_cache_stats *out);
/* Hang a disk tier under the cache (NULL: none), consulted before anything is computed and
 * filled with what is (aprfile.c). The cache does not own it: set it before the first read,
 * and set NULL again once reading has stopped, before aprfs_diskcache_close(). */
void aprfs_cache_set_disk(aprfs_cache *c, aprfs_diskcache *disk);
/* Drop every chunk of file id (called when a file is closed for good). */
void aprfs_cache_forget_file(aprfs_cache *c, uint64_t file_id);

#endif
