/* cache.h - the chunk cache: quantized chunks of any number of aprfs_files under one
 * byte budget, least recently used evicted first. Concurrent requests for a chunk that
 * is being computed wait for that one computation (single flight). Also the statistics
 * counters the daemon exposes. */
#ifndef APRFS_CACHE_H
#define APRFS_CACHE_H

#include <stddef.h>
#include <stdint.h>

#include "aprfile.h"

typedef struct aprfs_cache_stats {
	uint64_t chunks_computed[APRFS_VARIANT_COUNT];
	uint64_t cache_hits[APRFS_VARIANT_COUNT];
	uint64_t bytes_quantized[APRFS_VARIANT_COUNT]; /* output bytes of computed chunks */
	uint64_t bytes_served[APRFS_VARIANT_COUNT];    /* bytes returned by reads */
	uint64_t evictions;
	uint64_t bytes_cached; /* now */
	uint64_t budget;
} aprfs_cache_stats;

aprfs_cache *aprfs_cache_new(size_t budget_bytes);
void aprfs_cache_free(aprfs_cache *c);
void aprfs_cache_get_stats(aprfs_cache *c, aprfs_cache_stats *out);
/* Drop every chunk of file id (called when a file is closed for good). */
void aprfs_cache_forget_file(aprfs_cache *c, uint64_t file_id);

#endif
