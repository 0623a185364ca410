/* chunk.h - the chunk descriptor: everything about one chunk a read needs (tensor, chunk
 * numbers, output byte range, source element or byte range, dtype, geometry), computed
 * once when the read is planned (plan_chunk) and passed down through the memory cache, the
 * disk-cache key and the compute step, which never derive chunk geometry themselves. */
#ifndef APRFS_CHUNK_H
#define APRFS_CHUNK_H

#include <stddef.h>
#include <stdint.h>

#include "plan/layout.h"

/* One tensor of a plan while it is being read (the detail must exist). */
typedef struct plan_tensor {
	size_t i;	       /* data order */
	const aprfs_tensor *t; /* the source tensor */
	tensor_geom g;	       /* codec, dtype and geometry in this variant */
	uint64_t offset;       /* absolute file offset of its payload */
	uint64_t first_chunk;  /* global number of its chunk 0 */
} plan_tensor;

/* One chunk of that tensor. Payload-relative offsets count from the tensor's payload
 * start, statistic prefix included. */
typedef struct plan_chunk {
	const plan_tensor *tensor;
	uint64_t local;	  /* chunk number within the tensor */
	uint64_t global;  /* chunk number within the file: cache keys, CRC slots */
	uint64_t out_off; /* payload-relative offset of its bytes */
	uint64_t len;	  /* its bytes */
	uint64_t elem0;	  /* first element it encodes */
	size_t nelem;	  /* elements it encodes */
	uint64_t src_off; /* raw chunks: offset of its bytes in the source tensor */
	uint8_t dtype;	  /* APR dtype of its bytes */
} plan_chunk;

/* Tensor i (data order) of plan L with detail d. */
void plan_tensor_get(const layout *L, const layout_detail *d, size_t i, plan_tensor *pt);
/* Local chunk k (< pt->g.nchunks) of pt. */
void plan_chunk_get(const plan_tensor *pt, uint64_t k, plan_chunk *c);
/* Global chunk c (< L->nchunks): its tensor into *pt, the chunk into *ch. */
void plan_chunk_of(const layout *L, const layout_detail *d, uint64_t c, plan_tensor *pt,
		   plan_chunk *ch);
/* Bytes of payload per whole chunk. */
uint64_t plan_chunk_span(const plan_tensor *pt);
/* The local chunk holding payload-relative offset rel (rel >= prefix, < size). */
uint64_t plan_chunk_at(const plan_tensor *pt, uint64_t rel);

#endif
