/* aprfile.c - the range API: bytes [off, off+len) of a planned APR file, produced by
 * copying header bytes, computing (or borrowing from the cache) the chunks that overlap,
 * and the footer CRC joined from per-chunk CRCs recorded as chunks go by. */
#include "aprfile.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "aprfmt.h"
#include "cache_impl.h"
#include "crc.h"
#include "layout.h"
#include "parallel.h"
#include "tensor_read.h"

struct aprfs_file {
	atomic_int refs;
	uint64_t id;
	layout L;
	const aprfs_kernels *k;
	/* Chunk CRCs: bit 32 set once known. They outlive evicted chunk data, which is
	 * what makes the footer free after one sequential pass. */
	_Atomic uint64_t *chunk_crc;
	_Atomic uint64_t footer; /* bit 32 set once known */
};

/* File ids only need to be unique within a process: a cache may hold chunks of a file that
 * was re-planned after its source changed, and the id keeps the two apart. */
static atomic_uint_fast64_t next_file_id = 1;

/* Elements per pass of the statistic. Fixed (not the chunk size) so the double sum of
 * the ternary alpha is the same whatever the variant's chunking. */
#define STAT_SPAN 65536

int aprfs_file_open(aprfs_source *s, const char *variant, const aprfs_opts *o, aprfs_file **out,
		    aprfs_err *err)
{
	int v = aprfs_variant_index(variant);
	aprfs_opts def;

	if (!o) {
		aprfs_opts_default(&def);
		o = &def;
	}
	if (v < 0)
		return aprfs_fail(err, EINVAL,
				  "unknown variant '%s' (one of f32 f16 bf16 q8 q4 "
				  "q4k q6k nf4 ternary)",
				  variant);
	if (o->nf4_block == 0 || o->nf4_block % 2 || o->nf4_block > (1u << 20))
		return aprfs_fail(err, EINVAL,
				  "nf4 block size %u must be even, from 2 to 1048576",
				  o->nf4_block);
	if (o->chunk_elems == 0)
		return aprfs_fail(err, EINVAL, "chunk size must be positive");
	aprfs_file *f = calloc(1, sizeof(*f));
	if (!f)
		return aprfs_fail(err, ENOMEM, "out of memory");
	int rc = layout_build(&f->L, s, v, o, err);
	if (rc) {
		free(f);
		return rc;
	}
	f->chunk_crc = calloc(f->L.nchunks ? f->L.nchunks : 1, sizeof(*f->chunk_crc));
	if (!f->chunk_crc) {
		layout_free(&f->L);
		free(f);
		return aprfs_fail(err, ENOMEM, "out of memory");
	}
	aprfs_source_ref(s);
	atomic_init(&f->refs, 1);
	f->id = atomic_fetch_add(&next_file_id, 1);
	f->k = aprfs_kernels_get();
	*out = f;
	return 0;
}

void aprfs_file_ref(aprfs_file *f)
{
	atomic_fetch_add(&f->refs, 1);
}

void aprfs_file_unref(aprfs_file *f)
{
	if (!f || atomic_fetch_sub(&f->refs, 1) != 1)
		return;
	aprfs_source *s = f->L.src;
	layout_free(&f->L);
	free((void *)f->chunk_crc);
	free(f);
	aprfs_source_unref(s);
}

uint64_t aprfs_file_size(const aprfs_file *f)
{
	return f->L.file_size;
}
const char *aprfs_file_variant(const aprfs_file *f)
{
	return aprfs_variant_names[f->L.variant];
}
int aprfs_file_variant_index(const aprfs_file *f)
{
	return f->L.variant;
}
aprfs_source *aprfs_file_source(const aprfs_file *f)
{
	return f->L.src;
}
uint64_t aprfs_file_id(const aprfs_file *f)
{
	return f->id;
}
uint64_t aprfs_file_chunk_count(const aprfs_file *f)
{
	return f->L.nchunks;
}
size_t aprfs_file_tensor_count(const aprfs_file *f)
{
	return f->L.ntensors;
}
uint64_t aprfs_file_data_offset(const aprfs_file *f)
{
	return f->L.data_offset;
}

void aprfs_file_tensor_info(const aprfs_file *f, size_t i, aprfs_file_tensor *out)
{
	const tensor_plan *t = &f->L.tensors[i];
	out->src = t->src;
	out->dtype = t->dtype;
	out->codec = t->codec ? t->codec->name : "raw";
	out->offset = t->offset;
	out->size = t->size;
}

/* ---- source elements ---------------------------------------------------------------- */

static int read_f32(aprfs_file *f, const aprfs_tensor *t, uint64_t e0, size_t n, float *x,
		    aprfs_err *err)
{
	return aprfs_tensor_read_f32(f->L.src, f->k, t, e0, n, x, err);
}

/* ---- per-tensor statistic ------------------------------------------------------------ */

/* One pass over the tensor in STAT_SPAN spans. (Splitting the spans over cores was tried:
 * the pass is bound by faulting the source pages in, and two cores gained nothing.) */
static int compute_stat(aprfs_file *f, tensor_plan *t, aprfs_err *err)
{
	const aprfs_tensor *s = t->src;
	float *x = malloc(STAT_SPAN * sizeof(float));
	float maxabs = 0;
	double sum = 0;
	uint64_t nfinite = 0;
	int rc = x ? 0 : aprfs_fail(err, ENOMEM, "out of memory");

	for (uint64_t e = 0; rc == 0 && e < s->nelem; e += STAT_SPAN) {
		size_t n = s->nelem - e < STAT_SPAN ? (size_t)(s->nelem - e) : STAT_SPAN;
		rc = read_f32(f, s, e, n, x, err);
		if (rc == 0 && t->codec->stat == APRFS_STAT_MAXABS) {
			float m = f->k->maxabs(x, n);
			maxabs = m > maxabs ? m : maxabs;
		} else if (rc == 0) {
			sum += f->k->sumabs(x, n, &nfinite);
		}
	}
	free(x);
	if (rc == 0)
		t->stat_value = t->codec->stat == APRFS_STAT_MAXABS
				    ? aprfs_q8_scale_from_maxabs(maxabs)
				    : aprfs_ternary_alpha_from_sum(sum, nfinite);
	return rc;
}

/* The tensor's statistic (q8 scale / ternary alpha), computed once, by one thread. */
static int tensor_stat(aprfs_file *f, tensor_plan *t, float *out, aprfs_err *err)
{
	int rc = 0;
	if (!atomic_load(&t->stat_ready)) {
		pthread_mutex_lock(&t->stat_lock);
		if (!atomic_load(&t->stat_ready)) {
			rc = compute_stat(f, t, err);
			if (rc == 0)
				atomic_store(&t->stat_ready, 1);
		}
		pthread_mutex_unlock(&t->stat_lock);
	}
	*out = t->stat_value;
	return rc;
}

/* ---- chunks ------------------------------------------------------------------------- */

static void record_crc(aprfs_file *f, uint64_t c, const uint8_t *data, size_t len)
{
	if (!(atomic_load(&f->chunk_crc[c]) >> 32))
		atomic_store(&f->chunk_crc[c], (1ull << 32) | aprfs_crc32(0, data, len));
}

/* Compute local chunk k of tensor t into out (layout_chunk_bytes(t, k) bytes). */
static int compute_chunk(aprfs_file *f, tensor_plan *t, uint64_t k, uint8_t *out,
			 aprfs_err *err)
{
	uint64_t len = layout_chunk_bytes(t, k);
	uint64_t e0 = k * t->chunk_blocks * t->block_elems;
	int rc;

	if (!t->codec) {
		rc = aprfs_source_read(f->L.src, t->src, e0 * t->block_bytes, len, out, err);
	} else {
		uint64_t e1 = e0 + t->chunk_blocks * t->block_elems;
		size_t n = (size_t)((e1 < t->src->nelem ? e1 : t->src->nelem) - e0);
		aprfs_qparams q = {.scale = 1.0f, .nf4_block = f->L.opts.nf4_block};
		rc = t->codec->stat != APRFS_STAT_NONE ? tensor_stat(f, t, &q.scale, err) : 0;
		if (rc == 0) /* fused: bf16/f16 are widened tile by tile, never as a chunk */
			rc = aprfs_tensor_encode(f->L.src, f->k, t->src, e0, n, t->slot, &q,
						 out, err);
	}
	if (rc == 0)
		record_crc(f, t->first_chunk + k, out, len);
	return rc;
}

/* A chunk borrowed for copying out: from the cache (pinned) or computed for this call. */
typedef struct chunk_ref {
	const uint8_t *data;
	size_t len;
	cache_entry *entry;
	uint8_t *owned;
} chunk_ref;

static int chunk_get(aprfs_file *f, aprfs_cache *cache, tensor_plan *t, uint64_t k,
		     chunk_ref *r, aprfs_err *err)
{
	memset(r, 0, sizeof(*r));
	r->len = layout_chunk_bytes(t, k);
	int must = 1;
	if (cache) {
		r->entry =
		    cache_acquire(cache, f->id, t->first_chunk + k, f->L.variant, &must, err);
		if (!r->entry)
			return -(err ? err->code : EIO);
		if (!must) {
			r->data = cache_entry_data(r->entry, &r->len);
			return 0;
		}
	}
	uint8_t *buf = malloc(r->len ? r->len : 1);
	int rc =
	    buf ? compute_chunk(f, t, k, buf, err) : aprfs_fail(err, ENOMEM, "out of memory");
	if (cache) {
		cache_publish(cache, r->entry, rc ? NULL : buf, r->len, rc, err);
		if (rc) {
			free(buf);
			cache_release(cache, r->entry);
			r->entry = NULL;
		}
	} else {
		r->owned = buf;
	}
	r->data = buf;
	return rc;
}

static void chunk_put(aprfs_cache *cache, chunk_ref *r)
{
	if (r->entry)
		cache_release(cache, r->entry);
	free(r->owned);
}

void aprfs_file_chunks_in(const aprfs_file *f, uint64_t off, uint64_t len, uint64_t *first,
			  uint64_t *count)
{
	const layout *L = &f->L;
	uint64_t end = off + len < off || off + len > L->file_size ? L->file_size : off + len;

	*first = *count = 0;
	if (off < L->data_offset)
		off = L->data_offset;
	if (end > L->file_size - APR_FOOTER_SIZE)
		end = L->file_size - APR_FOOTER_SIZE;
	if (off >= end || L->nchunks == 0)
		return;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (tensor_plan *t = layout_tensor_at(L, off); t < L->tensors + L->ntensors; t++) {
		if (t->offset >= end)
			break;
		if (t->nchunks == 0)
			continue;
		uint64_t span = t->chunk_blocks * t->block_bytes;
		uint64_t a = off > t->offset + t->prefix ? off - t->offset - t->prefix : 0;
		uint64_t b = end - t->offset > t->prefix ? end - t->offset - t->prefix : 0;
		if (b == 0 || a >= t->size - t->prefix)
			continue;
		uint64_t k0 = a / span, k1 = (b - 1) / span;
		k1 = k1 >= t->nchunks ? t->nchunks - 1 : k1;
		lo = lo < t->first_chunk + k0 ? lo : t->first_chunk + k0;
		hi = t->first_chunk + k1 + 1;
	}
	if (lo != UINT64_MAX) {
		*first = lo;
		*count = hi - lo;
	}
}

int aprfs_file_warm(aprfs_file *f, aprfs_cache *cache, uint64_t c, aprfs_err *err)
{
	if (c >= f->L.nchunks)
		return aprfs_fail(err, EINVAL, "chunk %llu out of range",
				  (unsigned long long)c);
	tensor_plan *t = layout_tensor_of_chunk(&f->L, c);
	chunk_ref r;
	int rc = chunk_get(f, cache, t, c - t->first_chunk, &r, err);
	if (rc == 0)
		chunk_put(cache, &r);
	return rc;
}

/* ---- footer ------------------------------------------------------------------------- */

/* CRC of one chunk: recorded, or computed now (not cached: a cold footer read would
 * otherwise flush the whole cache for data nobody asked for). */
static int chunk_crc(aprfs_file *f, tensor_plan *t, uint64_t k, uint32_t *crc, aprfs_err *err)
{
	uint64_t v = atomic_load(&f->chunk_crc[t->first_chunk + k]);
	if (!(v >> 32)) {
		size_t len = layout_chunk_bytes(t, k);
		uint8_t *buf = malloc(len ? len : 1);
		int rc = buf ? compute_chunk(f, t, k, buf, err)
			     : aprfs_fail(err, ENOMEM, "out of memory");
		free(buf);
		if (rc)
			return rc;
		v = atomic_load(&f->chunk_crc[t->first_chunk + k]);
	}
	*crc = (uint32_t)v;
	return 0;
}

static int tensor_crc(aprfs_file *f, tensor_plan *t, uint32_t *crc, aprfs_err *err)
{
	if (t->prefix) {
		uint8_t p[4];
		float v;
		int rc = tensor_stat(f, t, &v, err);
		if (rc)
			return rc;
		memcpy(p, &v, 4);
		*crc = aprfs_crc32(*crc, p, 4);
	}
	for (uint64_t k = 0; k < t->nchunks; k++) {
		uint32_t c;
		int rc = chunk_crc(f, t, k, &c, err);
		if (rc)
			return rc;
		*crc = aprfs_crc32_combine(*crc, c, layout_chunk_bytes(t, k));
	}
	uint64_t pad = apr_align64(t->size) - t->size;
	*crc = aprfs_crc32_combine(*crc, aprfs_crc32_zeros(pad), pad);
	return 0;
}

/* A cold footer needs every chunk's CRC. The chunks are independent, so the missing ones
 * are computed on every core; the fold into
 * the footer below stays sequential (and cheap: crc32_combine per chunk). */
static int crc_job(void *ctx, uint64_t c, aprfs_err *err)
{
	aprfs_file *f = ctx;
	if (atomic_load(&f->chunk_crc[c]) >> 32)
		return 0;
	tensor_plan *t = layout_tensor_of_chunk(&f->L, c);
	uint32_t crc;
	return chunk_crc(f, t, c - t->first_chunk, &crc, err);
}

static int fill_missing_crcs(aprfs_file *f, aprfs_err *err)
{
	return aprfs_parallel(f->L.nchunks, crc_job, f, err);
}

static int footer_crc(aprfs_file *f, uint32_t *out, aprfs_err *err)
{
	uint64_t v = atomic_load(&f->footer);
	if (!(v >> 32)) {
		int rc = fill_missing_crcs(f, err);
		if (rc)
			return rc;
		uint32_t crc = aprfs_crc32(0, f->L.head, f->L.data_offset);
		for (size_t i = 0; i < f->L.ntensors && !rc; i++)
			rc = tensor_crc(f, &f->L.tensors[i], &crc, err);
		if (rc)
			return rc;
		v = (1ull << 32) | crc;
		atomic_store(&f->footer, v);
	}
	*out = (uint32_t)v;
	return 0;
}

/* ---- reading ------------------------------------------------------------------------ */

static ssize_t copy_part(uint8_t *dst, const uint8_t *src, uint64_t have, uint64_t from,
			 uint64_t want)
{
	uint64_t n = have - from < want ? have - from : want;
	memcpy(dst, src + from, n);
	return (ssize_t)n;
}

/* Bytes of tensor t's payload + padding starting at relative offset rel. */
static ssize_t read_tensor(aprfs_file *f, aprfs_cache *cache, tensor_plan *t, uint64_t rel,
			   uint64_t want, uint8_t *dst, aprfs_err *err)
{
	if (rel < t->prefix) {
		float v;
		uint8_t p[4];
		int rc = tensor_stat(f, t, &v, err);
		if (rc)
			return rc;
		memcpy(p, &v, 4); /* f32 little-endian: x86-64 and aarch64 are LE hosts */
		return copy_part(dst, p, t->prefix, rel, want);
	}
	if (rel >= t->size) {
		uint64_t n =
		    apr_align64(t->size) - rel < want ? apr_align64(t->size) - rel : want;
		memset(dst, 0, n);
		return (ssize_t)n;
	}
	uint64_t span = t->chunk_blocks * t->block_bytes;
	uint64_t k = (rel - t->prefix) / span;
	chunk_ref r;
	int rc = chunk_get(f, cache, t, k, &r, err);
	if (rc)
		return rc;
	ssize_t n = copy_part(dst, r.data, r.len, rel - layout_chunk_offset(t, k), want);
	chunk_put(cache, &r);
	return n;
}

static ssize_t read_piece(aprfs_file *f, aprfs_cache *cache, uint64_t pos, uint64_t want,
			  uint8_t *dst, aprfs_err *err)
{
	const layout *L = &f->L;
	uint64_t footer_at = L->file_size - APR_FOOTER_SIZE;

	if (pos < L->data_offset)
		return copy_part(dst, L->head, L->data_offset, pos, want);
	if (pos >= footer_at) {
		uint32_t crc;
		uint8_t b[4];
		int rc = footer_crc(f, &crc, err);
		if (rc)
			return rc;
		apr_put32(b, crc);
		return copy_part(dst, b, 4, pos - footer_at, want);
	}
	tensor_plan *t = layout_tensor_at(L, pos);
	return read_tensor(f, cache, t, pos - t->offset, want, dst, err);
}

ssize_t aprfs_file_read(aprfs_file *f, aprfs_cache *cache, uint64_t off, size_t len, void *buf,
			aprfs_err *err)
{
	uint64_t size = f->L.file_size;
	uint64_t end = (off >= size || len >= size - off) ? size : off + len;
	uint8_t *dst = buf;

	for (uint64_t pos = off; pos < end;) {
		ssize_t n = read_piece(f, cache, pos, end - pos, dst + (pos - off), err);
		if (n < 0)
			return n; /* err already names the file */
		pos += (uint64_t)n;
	}
	if (cache && end > off)
		cache_count_served(cache, f->L.variant, end - off);
	return off < end ? (ssize_t)(end - off) : 0;
}
