/* cache_impl.h - internal: how aprfile.c borrows chunks from the cache. acquire() either
 * returns a ready chunk (pinned until release) or makes the caller the one thread that
 * computes it; everyone else asking meanwhile waits for that publish (single flight). */
#ifndef APRFS_CACHE_IMPL_H
#define APRFS_CACHE_IMPL_H

#include "base/err.h"
#include "cache/cache.h"

typedef struct cache_entry cache_entry;

/* Returns a pinned entry. *must_compute = 1: the caller computes it and must call
 * cache_publish(); 0: the data is ready (cache_entry_data). NULL: an earlier computation
 * of this chunk failed while we waited (err filled). */
cache_entry *cache_acquire(aprfs_cache *c, uint64_t file_id, uint64_t chunk, int variant,
			   int *must_compute, aprfs_err *err);
/* The chunk when it is ready in the cache (counted as a hit, pinned until cache_release),
 * else NULL at once: not there, being computed, or failed (nothing is inserted). */
cache_entry *cache_find_ready(aprfs_cache *c, uint64_t file_id, uint64_t chunk, int variant);
/* Hand over the data (malloc'd; the cache owns it now), or rc < 0 on failure. computed = 0:
 * it was loaded from the disk tier, not quantized (not counted in chunks_computed);
 * otherwise seconds is how long computing it took (the latency histogram). */
void cache_publish(aprfs_cache *c, cache_entry *e, uint8_t *data, size_t len, int rc,
		   const aprfs_err *err, int computed, double seconds);
const uint8_t *cache_entry_data(const cache_entry *e, size_t *len);
void cache_release(aprfs_cache *c, cache_entry *e);
/* A chunk computed outside the cache (for a footer's CRC): counted as computed all the
 * same, since it cost the same quantization. c may be NULL. */
void cache_count_computed(aprfs_cache *c, int variant, size_t len, double seconds);
void cache_count_served(aprfs_cache *c, int variant, uint64_t bytes);
/* The disk tier under c, or NULL (also for c NULL). */
aprfs_diskcache *cache_disk(aprfs_cache *c);

#endif
