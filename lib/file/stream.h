/* stream.h - a whole virtual file produced front to back by several threads through the
 * range API and handed to a sink strictly in order, with memory bounded by a window of
 * pieces (not the model): what `aprfs convert --threads N` writes. */
#ifndef APRFS_STREAM_H
#define APRFS_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "cache/cache.h"
#include "file/aprfile.h"

/* Bytes [off, off+len) of the file, in order; 0 to go on, -errno to stop (err filled). */
typedef int (*aprfs_sink_fn)(void *ctx, const uint8_t *data, size_t len, uint64_t off,
			     aprfs_err *err);

#define APRFS_STREAM_PIECE (4u << 20) /* bytes one thread produces at a time */

/* Read all of f on `threads` threads (>= 1, the caller included), pieces of
 * APRFS_STREAM_PIECE bytes, at most 2 * threads pieces in memory; call sink for each piece
 * in file order, from one thread at a time (any of them). The bytes are the
 * range API's, so the output is identical whatever the thread count. 0 or the first
 * error (a worker's or the sink's), after which every worker stops. */
int aprfs_file_stream(aprfs_file *f, aprfs_cache *cache, unsigned threads, aprfs_sink_fn sink,
		      void *ctx, aprfs_err *err);

#endif
