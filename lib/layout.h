/* layout.h - internal: the plan of one virtual APR file (which codec each tensor gets,
 * where every byte goes, how tensors split into chunks), built from shapes alone.
 * aprfile.c reads through it; layout.c and metadata.c build it. */
#ifndef APRFS_LAYOUT_H
#define APRFS_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "aprfile.h"
#include "codec.h"
#include "kernels/kernels.h"

typedef struct tensor_plan {
	const aprfs_tensor *src;
	const aprfs_codec *codec; /* NULL: non-float bytes passed through unchanged */
	aprfs_kslot slot;
	uint8_t dtype;	 /* APR dtype id written in the index */
	uint64_t offset; /* absolute file offset of the payload (multiple of 64) */
	uint64_t size;	 /* unpadded payload bytes */
	uint64_t prefix; /* statistic bytes before the first block (q8, ternary) */
	uint64_t block_elems, block_bytes, nblocks;
	uint64_t chunk_blocks; /* blocks per chunk (the last chunk may be shorter) */
	uint64_t first_chunk;  /* global number of this tensor's chunk 0 */
	uint64_t nchunks;
	/* The per-tensor statistic (q8 scale, ternary alpha), computed on first need. */
	pthread_mutex_t stat_lock;
	atomic_int stat_ready;
	float stat_value;
	uint64_t stat_zero_trits; /* unused by the writer; kept for symmetry with inspect */
} tensor_plan;

typedef struct layout {
	aprfs_source *src;
	int variant; /* index into aprfs_variant_names */
	aprfs_opts opts;
	size_t ntensors;
	tensor_plan *tensors; /* data order */
	uint8_t *head;	      /* header + metadata + index, padded: data_offset bytes */
	uint64_t data_offset;
	uint64_t file_size;
	uint64_t nchunks;
} layout;

/* Plan s as `variant`: fills L (caller frees with layout_free). */
int layout_build(layout *L, aprfs_source *s, int variant, const aprfs_opts *o, aprfs_err *err);
void layout_free(layout *L);

/* Metadata JSON for the plan (malloc'd, NUL-terminated, compact). */
char *layout_metadata_json(const layout *L, aprfs_err *err);

/* Chunk geometry. */
uint64_t layout_chunk_bytes(const tensor_plan *t, uint64_t k);	/* bytes of local chunk k */
uint64_t layout_chunk_offset(const tensor_plan *t, uint64_t k); /* payload-relative */
tensor_plan *layout_tensor_of_chunk(const layout *L, uint64_t c);
tensor_plan *layout_tensor_at(const layout *L, uint64_t off); /* whose padded span holds off */

#endif
