/* aprfile_impl.h - internal to lib/file/: the aprfs_file behind the range API and the
 * functions its parts share: the range API (aprfile.c), chunk production through the
 * memory cache, disk tier and compute step (chunk_get.c), per-tensor statistics
 * (tensor_stat.c), the footer CRC (footer.c) and disk-cache keys (dckey.c). */
#ifndef APRFS_APRFILE_IMPL_H
#define APRFS_APRFILE_IMPL_H

#include <stdatomic.h>

#include "cache/cache_impl.h"
#include "cache/diskcache.h"
#include "file/aprfile.h"
#include "plan/chunk.h"

struct aprfs_file {
	atomic_int refs;
	uint64_t id;
	layout L;
	const aprfs_kernels *k;
	/* Chunk CRCs: bit 32 set once known. They outlive evicted chunk data, which is
	 * what makes the footer free after one sequential pass. Allocated with the detail
	 * (first read), like every other per-chunk or per-tensor array. */
	_Atomic uint64_t *_Atomic chunk_crc;
	_Atomic uint64_t footer; /* bit 32 set once known */
};

/* A chunk borrowed for copying out: from the cache (pinned) or computed for this call. */
typedef struct file_chunk_ref {
	const uint8_t *data;
	size_t len;
	cache_entry *entry;
	uint8_t *owned;
} file_chunk_ref;

/* The per-tensor arrays and the chunk CRCs, built by the first reader; NULL on ENOMEM. */
const layout_detail *file_detail(aprfs_file *f, aprfs_err *err);

/* Disk-cache keys of a chunk, a tensor's statistic, the footer (0, or -1 without memory). */
void file_key_chunk(const aprfs_file *f, const plan_chunk *c, aprfs_dc_key *k);
void file_key_stat(const aprfs_file *f, const plan_tensor *r, aprfs_dc_key *k);
int file_key_footer(const aprfs_file *f, aprfs_dc_key *k);

/* Tensor r's statistic (q8 scale / ternary alpha), computed once (dc may be NULL). */
int file_tensor_stat(aprfs_file *f, aprfs_diskcache *dc, const plan_tensor *r,
		     const aprfs_cancel *cancel, float *out, aprfs_err *err);

/* Chunk CRCs for the footer: a known value, or the CRC of the chunk's bytes. */
void file_record_crc_value(aprfs_file *f, uint64_t c, uint32_t value);
void file_record_crc(aprfs_file *f, uint64_t c, const uint8_t *data, size_t len);

/* Chunk c into r: from the memory cache (pinned until file_chunk_put), else the disk tier,
 * else computed (cache may be NULL). file_chunk_alone bypasses the memory cache (r->len
 * set by the caller); counter's statistics count a computation (NULL: nowhere). */
int file_chunk_get(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c,
		   const aprfs_cancel *cancel, file_chunk_ref *r, aprfs_err *err);
int file_chunk_alone(aprfs_file *f, aprfs_cache *counter, const plan_chunk *c,
		     const aprfs_cancel *cancel, file_chunk_ref *r, aprfs_err *err);
void file_chunk_put(aprfs_cache *cache, file_chunk_ref *r);
/* Chunk c whole into dst (c->len bytes) when that costs no computation: copied from the
 * memory cache when ready there, else read from the disk tier straight into dst (not kept in
 * the memory cache: the kernel's page cache keeps the served bytes, the disk tier's packs
 * stay in it too). 1 done; 0 neither holds it (or cannot now): use file_chunk_get. */
int file_chunk_direct(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c, uint8_t *dst);
/* For a reader coming soon (read-ahead): 1 when chunk c costs no computation (in the memory
 * cache, or held by the disk tier, which is asked to read it ahead), else 0 (compute it). */
int file_chunk_prefetch(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c);

/* The footer CRC: known, from the disk tier, or one pass over every chunk. */
int file_footer_crc(aprfs_file *f, aprfs_cache *cache, const layout_detail *d,
		    const aprfs_cancel *cancel, uint32_t *out, aprfs_err *err);

#endif
