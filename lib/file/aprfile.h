/* aprfile.h - THE RANGE API. An aprfs_file is one virtual APR v2 file: a checkpoint
 * (aprfs_source) seen through one variant. Opening it plans the whole layout from shapes
 * alone (no quantization); aprfs_file_read() then produces any byte range [off, off+len)
 * by quantizing only the tensor chunks that overlap it. `aprfs convert` and the FUSE
 * daemon both read files through this API and nothing else.
 *
 * lib/file/ (above cache/): this range API, read-ahead (readahead.h), streaming a whole
 * file out (stream.h). */
#ifndef APRFS_APRFILE_H
#define APRFS_APRFILE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/cancel.h"
#include "base/err.h"
#include "plan/opts.h"
#include "plan/variant.h"
#include "source/source.h"

/* The chunk cache (cache/cache.h declares it too; aprfile.h does not need the rest). */
typedef struct aprfs_cache aprfs_cache;

typedef struct aprfs_file aprfs_file;

/* Plan variant `variant` of source s (takes its own reference on s). Cheap: parses
 * nothing, quantizes nothing. -EINVAL with a message for an unknown variant or bad opts. */
int aprfs_file_open(aprfs_source *s, const char *variant, const aprfs_opts *o, aprfs_file **out,
		    aprfs_err *err);
void aprfs_file_ref(aprfs_file *f);
void aprfs_file_unref(aprfs_file *f);

uint64_t aprfs_file_size(const aprfs_file *f);
const char *aprfs_file_variant(const aprfs_file *f);
aprfs_source *aprfs_file_source(const aprfs_file *f);
uint64_t aprfs_file_id(const aprfs_file *f); /* unique per open, the cache key's half */

/* Read bytes [off, off+len) (clipped at the end of file) into buf. Returns the number of
 * bytes produced, or -errno with err filled (e.g. -EIO when the source changed or could
 * not be read, -ECANCELED when cancel said stop: checked between chunks and inside long
 * passes). cache may be NULL (chunks are then computed for this call only), cancel too.
 * Thread-safe: any number of threads may read one file at once. */
ssize_t aprfs_file_read(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			uint64_t off, size_t len, void *buf, aprfs_err *err);

/* Chunks: the unit of quantization. Global chunk numbers run over all tensors in data
 * order. These let a read-ahead worker warm the cache ahead of a sequential reader. */
uint64_t aprfs_file_chunk_count(const aprfs_file *f);
/* The chunks overlapping [off, off+len): sets *first and *count (count 0 if none). */
void aprfs_file_chunks_in(aprfs_file *f, uint64_t off, uint64_t len, uint64_t *first,
			  uint64_t *count);
/* 1 when chunk c is computed (quantized) and so worth warming; 0 when its bytes are
 * copied from the source as they are (nothing to warm) or c is out of range. */
int aprfs_file_chunk_computed(aprfs_file *f, uint64_t c);
/* 1 when a reader of chunk c will compute nothing: its bytes are copied from the source,
 * or the memory cache has it, or the disk tier holds it (and is then asked to read it
 * ahead, asynchronously); 0 when it is to be computed (worth warming) or out of range. */
int aprfs_file_chunk_held(aprfs_file *f, aprfs_cache *cache, uint64_t c);
/* Make sure chunk c is in the cache (computing it if needed). 0 or -errno. */
int aprfs_file_warm(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel, uint64_t c,
		    aprfs_err *err);

/* The file's layout, for inspect/stats/tests. Tensor i is in data order. */
typedef struct aprfs_file_tensor {
	const aprfs_tensor *src;
	uint8_t dtype;	   /* APR dtype written */
	const char *codec; /* codec used ("q8" for a fallback), or "raw" for non-float data */
	int copied;	   /* the payload is the source's bytes unchanged (non-float data, or
			    * GGUF Q4_K/Q6_K blocks in the q4k/q6k views) */
	uint64_t offset;   /* absolute file offset of its payload */
	uint64_t size;	   /* unpadded payload bytes */
} aprfs_file_tensor;
size_t aprfs_file_tensor_count(const aprfs_file *f);
/* 0, or -ENOMEM when the per-tensor plan cannot be built. */
int aprfs_file_tensor_info(aprfs_file *f, size_t i, aprfs_file_tensor *out, aprfs_err *err);
uint64_t aprfs_file_data_offset(const aprfs_file *f);

#endif
