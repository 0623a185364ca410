/* aprfile.c - the range API: bytes [off, off+len) of a planned APR file, produced by
 * writing head bytes from the plan, computing (or borrowing from the cache, or loading from
 * the disk tier under it) the chunks that overlap, and the footer CRC joined from per-chunk
 * CRCs recorded as chunks go by. */
#include "file/aprfile.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "base/crc.h"
#include "base/parallel.h"
#include "cache/cache_impl.h"
#include "cache/diskcache.h"
#include "format/aprfmt.h"
#include "plan/layout.h"
#include "plan/tensor_read.h"

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
	free((void *)atomic_load(&f->chunk_crc));
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

/* The per-tensor arrays and the chunk CRCs, built by the first reader. */
static const layout_detail *detail(aprfs_file *f, aprfs_err *err)
{
	const layout_detail *d = layout_detail_get(&f->L, err);

	if (d && !atomic_load_explicit(&f->chunk_crc, memory_order_acquire)) {
		_Atomic uint64_t *crc = calloc(f->L.nchunks + 1, sizeof(*crc)), *none = NULL;
		if (!crc) {
			aprfs_fail(err, ENOMEM, "out of memory");
			return NULL;
		}
		if (!atomic_compare_exchange_strong(&f->chunk_crc, &none, crc))
			free((void *)crc); /* another reader was first */
	}
	return d;
}

int aprfs_file_tensor_info(aprfs_file *f, size_t i, aprfs_file_tensor *out, aprfs_err *err)
{
	const layout_detail *d = detail(f, err);
	const aprfs_tensor *t = aprfs_source_tensor(f->L.src, i);
	tensor_geom g;

	if (!d)
		return -ENOMEM;
	layout_geom(&f->L, t, &g);
	out->src = t;
	out->dtype = g.dtype;
	out->codec = g.codec ? g.codec->name : "raw";
	out->copied = g.raw;
	out->offset = d->offset[i];
	out->size = g.size;
	return 0;
}

/* One tensor while it is being read: its number, geometry and the plan's arrays. */
typedef struct tref {
	size_t i;
	const aprfs_tensor *t;
	tensor_geom g;
	const layout_detail *d;
} tref;

static void tref_of(aprfs_file *f, const layout_detail *d, size_t i, tref *r)
{
	r->i = i;
	r->t = aprfs_source_tensor(f->L.src, i);
	r->d = d;
	layout_geom(&f->L, r->t, &r->g);
}

/* ---- the disk tier ------------------------------------------------------------------
 * What was computed once is kept by the disk cache under the memory cache (diskcache.h):
 * chunks, statistics and footers, keyed by everything that determines their bytes: the
 * source's fingerprint, the variant and its parameters, which chunk or tensor (and the codec
 * format version, which diskcache adds). Raw chunks (the source's own bytes, copied) are
 * not kept: reading them from the source again costs what reading an entry would. */

static void key_base(const aprfs_file *f, aprfs_dc_kind kind, aprfs_dc_key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = (uint8_t)kind;
	memcpy(k->source, aprfs_source_fingerprint(f->L.src), sizeof(k->source));
}

static void key_chunk(const aprfs_file *f, uint64_t c, aprfs_dc_key *k)
{
	key_base(f, APRFS_DC_CHUNK, k);
	k->variant = (uint8_t)f->L.variant;
	k->nf4_block = f->L.opts.nf4_block;
	k->chunk_elems = f->L.opts.chunk_elems;
	k->index = c;
}

/* A statistic depends on the tensor and its kind only: q8's scale is the same in the q8
 * view and wherever another view falls back to q8, so they share one entry. */
static void key_stat(const aprfs_file *f, const tref *r, aprfs_dc_key *k)
{
	key_base(f, APRFS_DC_STAT, k);
	k->variant = (uint8_t)r->g.codec->stat;
	k->index = r->i;
}

/* The footer covers the head too, and the metadata there names the source's path under
 * the root and config values, which the fingerprint does not cover: hash them in. 0, or
 * -1 without memory (then no footer entry). */
static int key_footer(const aprfs_file *f, aprfs_dc_key *k)
{
	XXH3_state_t *h = XXH3_createState();

	if (!h)
		return -1;
	key_base(f, APRFS_DC_FOOTER, k);
	k->variant = (uint8_t)f->L.variant;
	k->nf4_block = f->L.opts.nf4_block;
	XXH3_128bits_reset(h);
	XXH3_128bits_update(h, f->L.header, sizeof(f->L.header));
	XXH3_128bits_update(h, f->L.meta, f->L.meta_size);
	XXH128_canonicalFromHash((XXH128_canonical_t *)k->extra, XXH3_128bits_digest(h));
	XXH3_freeState(h);
	return 0;
}

/* ---- per-tensor statistic ------------------------------------------------------------ */

/* One pass over the tensor in STAT_SPAN spans, giving up between spans when cancelled.
 * (Splitting the spans over cores was tried: the pass is bound by faulting the source
 * pages in, and two cores gained nothing.) */
static int compute_stat(aprfs_file *f, const tref *r, const aprfs_cancel *cancel, float *out,
			aprfs_err *err)
{
	const aprfs_tensor *s = r->t;
	float *x = malloc(STAT_SPAN * sizeof(float));
	float maxabs = 0;
	double sum = 0;
	uint64_t nfinite = 0;
	int rc = x ? 0 : aprfs_fail(err, ENOMEM, "out of memory");

	for (uint64_t e = 0; rc == 0 && e < s->nelem; e += STAT_SPAN) {
		size_t n = s->nelem - e < STAT_SPAN ? (size_t)(s->nelem - e) : STAT_SPAN;
		if (aprfs_cancelled(cancel))
			rc = aprfs_fail_cancelled(err);
		else
			rc = aprfs_source_read_f32(f->L.src, s, e, n, x, err);
		if (rc == 0 && r->g.codec->stat == APRFS_STAT_MAXABS) {
			float m = f->k->maxabs(x, n);
			maxabs = m > maxabs ? m : maxabs;
		} else if (rc == 0) {
			sum += f->k->sumabs(x, n, &nfinite);
		}
	}
	free(x);
	if (rc == 0)
		*out = r->g.codec->stat == APRFS_STAT_MAXABS
			   ? aprfs_q8_scale_from_maxabs(maxabs)
			   : aprfs_ternary_alpha_from_sum(sum, nfinite);
	return rc;
}

/* The statistic from the disk tier (dc may be NULL), or computed and offered to it. */
static int stat_produce(aprfs_file *f, aprfs_diskcache *dc, const tref *r,
			const aprfs_cancel *cancel, float *out, aprfs_err *err)
{
	aprfs_dc_key key;
	int claimed = 0, rc;

	if (!dc)
		return compute_stat(f, r, cancel, out, err);
	key_stat(f, r, &key);
	if (aprfs_diskcache_get(dc, &key, out, sizeof(*out), NULL, cancel, &claimed))
		return 0;
	rc = compute_stat(f, r, cancel, out, err);
	if (rc == 0)
		aprfs_diskcache_put(dc, &key, out, sizeof(*out),
				    aprfs_crc32(0, out, sizeof(*out)), claimed);
	else
		aprfs_diskcache_drop(dc, &key, claimed);
	return rc;
}

/* The tensor's statistic (q8 scale / ternary alpha), computed once, by one thread; a pass
 * that was cancelled leaves it unknown for the next reader to compute. */
static int tensor_stat(aprfs_file *f, aprfs_diskcache *dc, const tref *r,
		       const aprfs_cancel *cancel, float *out, aprfs_err *err)
{
	layout_detail *d = (layout_detail *)r->d;
	int rc = 0;

	if (!atomic_load_explicit(&d->stat_done[r->i], memory_order_acquire)) {
		pthread_mutex_t *lock = &f->L.stat_lock[r->i % LAYOUT_STAT_LOCKS];
		pthread_mutex_lock(lock);
		if (!atomic_load(&d->stat_done[r->i])) {
			rc = stat_produce(f, dc, r, cancel, &d->stat[r->i], err);
			if (rc == 0)
				atomic_store_explicit(&d->stat_done[r->i], 1,
						      memory_order_release);
		}
		pthread_mutex_unlock(lock);
	}
	*out = d->stat[r->i];
	return rc;
}

/* ---- chunks ------------------------------------------------------------------------- */

static void record_crc_value(aprfs_file *f, uint64_t c, uint32_t value)
{
	_Atomic uint64_t *crc = atomic_load(&f->chunk_crc);

	if (!(atomic_load(&crc[c]) >> 32))
		atomic_store(&crc[c], (1ull << 32) | value);
}

static void record_crc(aprfs_file *f, uint64_t c, const uint8_t *data, size_t len)
{
	if (!(atomic_load(&atomic_load(&f->chunk_crc)[c]) >> 32))
		record_crc_value(f, c, aprfs_crc32(0, data, len));
}

/* Compute local chunk k of tensor r into out (layout_chunk_bytes(&r->g, k) bytes). */
static int compute_chunk(aprfs_file *f, aprfs_diskcache *dc, const tref *r, uint64_t k,
			 const aprfs_cancel *cancel, uint8_t *out, aprfs_err *err)
{
	const tensor_geom *g = &r->g;
	uint64_t len = layout_chunk_bytes(g, k);
	uint64_t b0 = k * g->chunk_blocks, e0 = b0 * g->block_elems;
	int rc;

	if (aprfs_cancelled(cancel)) {
		rc = aprfs_fail_cancelled(err);
	} else if (g->raw) {
		rc = aprfs_source_read(f->L.src, r->t, b0 * g->block_bytes, len, out, err);
	} else {
		uint64_t e1 = e0 + g->chunk_blocks * g->block_elems;
		size_t n = (size_t)((e1 < r->t->nelem ? e1 : r->t->nelem) - e0);
		aprfs_qparams q = {.scale = 1.0f, .nf4_block = f->L.opts.nf4_block};
		rc = g->codec->stat != APRFS_STAT_NONE
			 ? tensor_stat(f, dc, r, cancel, &q.scale, err)
			 : 0;
		if (rc == 0) /* fused: bf16/f16 are widened tile by tile, never as a chunk */
			rc = aprfs_tensor_encode(f->L.src, f->k, r->t, e0, n, g->slot, &q, out,
						 err);
	}
	if (rc == 0)
		record_crc(f, r->d->first_chunk[r->i] + k, out, len);
	return rc;
}

/* Local chunk k of tensor r into out: loaded from the disk tier when it holds it
 * (*computed = 0), else computed and offered to it (dc may be NULL). */
static int chunk_produce(aprfs_file *f, aprfs_diskcache *dc, const tref *r, uint64_t k,
			 const aprfs_cancel *cancel, uint8_t *out, int *computed,
			 aprfs_err *err)
{
	uint64_t c = r->d->first_chunk[r->i] + k;
	size_t len = layout_chunk_bytes(&r->g, k);
	aprfs_dc_key key;
	uint32_t crc;
	int claimed = 0, rc;

	*computed = 1;
	if (!dc || r->g.raw)
		return compute_chunk(f, dc, r, k, cancel, out, err);
	key_chunk(f, c, &key);
	if (aprfs_diskcache_get(dc, &key, out, len, &crc, cancel, &claimed)) {
		record_crc_value(f, c, crc);
		*computed = 0;
		return 0;
	}
	rc = compute_chunk(f, dc, r, k, cancel, out, err);
	if (rc == 0)
		aprfs_diskcache_put(dc, &key, out, len,
				    (uint32_t)atomic_load(&atomic_load(&f->chunk_crc)[c]),
				    claimed);
	else
		aprfs_diskcache_drop(dc, &key, claimed);
	return rc;
}

static double now_seconds(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A chunk borrowed for copying out: from the cache (pinned) or computed for this call. */
typedef struct chunk_ref {
	const uint8_t *data;
	size_t len;
	cache_entry *entry;
	uint8_t *owned;
} chunk_ref;

static void chunk_put(aprfs_cache *cache, chunk_ref *r)
{
	if (r->entry)
		cache_release(cache, r->entry);
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

/* Without a cache: loaded or computed into a buffer the ref owns (freed by chunk_put, or
 * here on failure). A computation is counted in counter's statistics (NULL: nowhere). */
static int chunk_compute_alone(aprfs_file *f, aprfs_cache *counter, const tref *t, uint64_t k,
			       const aprfs_cancel *cancel, chunk_ref *r, aprfs_err *err)
{
	uint8_t *buf = malloc(r->len ? r->len : 1);
	double t0 = now_seconds();
	int computed;
	int rc = buf ? chunk_produce(f, cache_disk(counter), t, k, cancel, buf, &computed, err)
		     : aprfs_fail(err, ENOMEM, "out of memory");

	if (rc == 0 && computed && !t->g.raw) /* a raw chunk is a copy, not a computation */
		cache_count_computed(counter, f->L.variant, r->len, now_seconds() - t0);

	if (rc) {
		free(buf);
		return rc;
	}
	r->data = r->owned = buf;
	return 0;
}

/* Through the cache, single flight: either the chunk is there (or being computed by
 * someone we wait for), or we compute and publish it. A computation another reader gave
 * up on (cancelled) is no failure of ours: we try again, unless we are cancelled too. */
static int chunk_get(aprfs_file *f, aprfs_cache *cache, const tref *t, uint64_t k,
		     const aprfs_cancel *cancel, chunk_ref *r, aprfs_err *err)
{
	uint64_t c = t->d->first_chunk[t->i] + k;
	int computed = 1;

	memset(r, 0, sizeof(*r));
	r->len = layout_chunk_bytes(&t->g, k);
	if (!cache)
		return chunk_compute_alone(f, NULL, t, k, cancel, r, err);
	for (;;) {
		int must = 1;
		r->entry = cache_acquire(cache, f->id, c, f->L.variant, &must, err);
		if (!r->entry) {
			if (err && err->code == ECANCELED && !aprfs_cancelled(cancel))
				continue;
			return -(err ? err->code : EIO);
		}
		if (!must) {
			r->data = cache_entry_data(r->entry, &r->len);
			return 0;
		}
		break;
	}
	uint8_t *buf = malloc(r->len ? r->len : 1);
	double t0 = now_seconds();
	int rc = buf ? chunk_produce(f, cache_disk(cache), t, k, cancel, buf, &computed, err)
		     : aprfs_fail(err, ENOMEM, "out of memory");
	cache_publish(cache, r->entry, rc ? NULL : buf, r->len, rc, err, computed,
		      now_seconds() - t0);
	if (rc) {
		free(buf);
		cache_release(cache, r->entry);
		r->entry = NULL;
		return rc;
	}
	r->data = buf;
	return 0;
}

void aprfs_file_chunks_in(aprfs_file *f, uint64_t off, uint64_t len, uint64_t *first,
			  uint64_t *count)
{
	const layout *L = &f->L;
	const layout_detail *d = detail(f, NULL);
	uint64_t end = off + len < off || off + len > L->file_size ? L->file_size : off + len;

	*first = *count = 0;
	if (off < L->data_offset)
		off = L->data_offset;
	if (end > L->file_size - APR_FOOTER_SIZE)
		end = L->file_size - APR_FOOTER_SIZE;
	if (!d || off >= end || L->nchunks == 0)
		return;
	uint64_t lo = UINT64_MAX, hi = 0;
	for (size_t i = layout_tensor_at(L, d, off); i < L->ntensors; i++) {
		tensor_geom g;
		if (d->offset[i] >= end)
			break;
		layout_geom(L, aprfs_source_tensor(L->src, i), &g);
		if (g.nchunks == 0)
			continue;
		uint64_t span = g.chunk_blocks * g.block_bytes;
		uint64_t a = off > d->offset[i] + g.prefix ? off - d->offset[i] - g.prefix : 0;
		uint64_t b = end - d->offset[i] > g.prefix ? end - d->offset[i] - g.prefix : 0;
		if (b == 0 || a >= g.size - g.prefix)
			continue;
		uint64_t k0 = a / span, k1 = (b - 1) / span;
		k1 = k1 >= g.nchunks ? g.nchunks - 1 : k1;
		lo = lo < d->first_chunk[i] + k0 ? lo : d->first_chunk[i] + k0;
		hi = d->first_chunk[i] + k1 + 1;
	}
	if (lo != UINT64_MAX) {
		*first = lo;
		*count = hi - lo;
	}
}

int aprfs_file_chunk_computed(aprfs_file *f, uint64_t c)
{
	const layout_detail *d = detail(f, NULL);
	tensor_geom g;

	if (!d || c >= f->L.nchunks)
		return 0;
	layout_geom(&f->L, aprfs_source_tensor(f->L.src, layout_tensor_of_chunk(&f->L, d, c)),
		    &g);
	return !g.raw;
}

int aprfs_file_warm(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel, uint64_t c,
		    aprfs_err *err)
{
	const layout_detail *d = detail(f, err);
	chunk_ref r;
	tref t;

	if (!d)
		return -ENOMEM;
	if (c >= f->L.nchunks)
		return aprfs_fail(err, EINVAL, "chunk %llu out of range",
				  (unsigned long long)c);
	tref_of(f, d, layout_tensor_of_chunk(&f->L, d, c), &t);
	if (t.g.raw) /* read straight from the source when asked for: nothing to warm */
		return 0;
	int rc = chunk_get(f, cache, &t, c - d->first_chunk[t.i], cancel, &r, err);
	if (rc == 0)
		chunk_put(cache, &r);
	return rc;
}

/* ---- footer ------------------------------------------------------------------------- */

/* CRC of one chunk: recorded, read from its disk entry's header, or computed now (not
 * cached in memory: a cold footer read would otherwise flush the whole cache for data
 * nobody asked for; but offered to the disk tier, which has room). */
static int chunk_crc(aprfs_file *f, aprfs_cache *cache, const tref *t, uint64_t k,
		     const aprfs_cancel *cancel, uint32_t *crc, aprfs_err *err)
{
	aprfs_diskcache *dc = cache_disk(cache);
	_Atomic uint64_t *crcs = atomic_load(&f->chunk_crc);
	uint64_t c = t->d->first_chunk[t->i] + k, v = atomic_load(&crcs[c]);
	aprfs_dc_key key;
	uint32_t known;

	if (!(v >> 32) && dc && !t->g.raw) {
		key_chunk(f, c, &key);
		if (aprfs_diskcache_get_crc(dc, &key, layout_chunk_bytes(&t->g, k), &known)) {
			record_crc_value(f, c, known);
			v = atomic_load(&crcs[c]);
		}
	}
	if (!(v >> 32)) {
		chunk_ref r = {.len = layout_chunk_bytes(&t->g, k)};
		int rc = chunk_compute_alone(f, cache, t, k, cancel, &r, err);
		if (rc)
			return rc;
		chunk_put(NULL, &r);
		v = atomic_load(&crcs[c]);
	}
	*crc = (uint32_t)v;
	return 0;
}

static int tensor_crc(aprfs_file *f, aprfs_cache *cache, const tref *t,
		      const aprfs_cancel *cancel, uint32_t *crc, aprfs_err *err)
{
	if (t->g.prefix) {
		uint8_t p[4];
		float v;
		int rc = tensor_stat(f, cache_disk(cache), t, cancel, &v, err);
		if (rc)
			return rc;
		memcpy(p, &v, 4);
		*crc = aprfs_crc32(*crc, p, 4);
	}
	for (uint64_t k = 0; k < t->g.nchunks; k++) {
		uint32_t c;
		int rc = chunk_crc(f, cache, t, k, cancel, &c, err);
		if (rc)
			return rc;
		*crc = aprfs_crc32_combine(*crc, c, layout_chunk_bytes(&t->g, k));
	}
	uint64_t pad = apr_align64(t->g.size) - t->g.size;
	*crc = aprfs_crc32_combine(*crc, aprfs_crc32_zeros(pad), pad);
	return 0;
}

/* A cold footer needs every chunk's CRC. The chunks are independent, so the missing ones
 * are computed on every core; the fold into the footer below stays sequential (and cheap:
 * crc32_combine per chunk). */
typedef struct crc_pass {
	aprfs_file *f;
	aprfs_cache *cache;
	const layout_detail *d;
	const aprfs_cancel *cancel;
} crc_pass;

static int crc_job(void *ctx, uint64_t c, aprfs_err *err)
{
	crc_pass *p = ctx;
	uint32_t crc;
	tref t;

	if (atomic_load(&atomic_load(&p->f->chunk_crc)[c]) >> 32)
		return 0;
	tref_of(p->f, p->d, layout_tensor_of_chunk(&p->f->L, p->d, c), &t);
	return chunk_crc(p->f, p->cache, &t, c - p->d->first_chunk[t.i], p->cancel, &crc, err);
}

/* CRC of the head, written from the plan a piece at a time. */
static uint32_t head_crc(const aprfs_file *f, const layout_detail *d)
{
	uint8_t buf[16384];
	uint32_t crc = 0;

	for (uint64_t off = 0; off < f->L.data_offset; off += sizeof(buf)) {
		size_t n = f->L.data_offset - off < sizeof(buf)
			       ? (size_t)(f->L.data_offset - off)
			       : sizeof(buf);
		layout_head_read(&f->L, d, off, n, buf);
		crc = aprfs_crc32(crc, buf, n);
	}
	return crc;
}

/* Every chunk's CRC (in parallel), joined with the head's and the padding's. */
static int footer_pass(aprfs_file *f, aprfs_cache *cache, const layout_detail *d,
		       const aprfs_cancel *cancel, uint32_t *out, aprfs_err *err)
{
	crc_pass p = {f, cache, d, cancel};
	int rc = aprfs_parallel(f->L.nchunks, crc_job, &p, err);
	uint32_t crc = rc ? 0 : head_crc(f, d);

	for (size_t i = 0; i < f->L.ntensors && !rc; i++) {
		tref t;
		tref_of(f, d, i, &t);
		rc = tensor_crc(f, cache, &t, cancel, &crc, err);
	}
	*out = crc;
	return rc;
}

/* The footer: known, from the disk tier, or from the pass (and then offered to it). */
static int footer_crc(aprfs_file *f, aprfs_cache *cache, const layout_detail *d,
		      const aprfs_cancel *cancel, uint32_t *out, aprfs_err *err)
{
	aprfs_diskcache *dc = cache_disk(cache);
	uint64_t v = atomic_load(&f->footer);
	aprfs_dc_key key;
	uint32_t crc;

	if (!(v >> 32)) {
		int keyed = dc && key_footer(f, &key) == 0, rc = 0;
		if (!keyed ||
		    !aprfs_diskcache_get(dc, &key, &crc, sizeof(crc), NULL, cancel, NULL)) {
			rc = footer_pass(f, cache, d, cancel, &crc, err);
			if (rc == 0 && keyed)
				aprfs_diskcache_put(dc, &key, &crc, sizeof(crc),
						    aprfs_crc32(0, &crc, sizeof(crc)), 0);
		}
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

/* Bytes the source holds as they are (non-float data, GGUF blocks in their own dtype's
 * view) go straight from the source into the reader's buffer: no chunk buffer, no cache,
 * so a pass-through costs one copy and a CRC. The payload is contiguous in the source, so
 * the whole part of the request inside it is one source read (a 1 MiB kernel request
 * would otherwise be ~30 chunk-sized reads, each with its own system calls). rel is
 * payload-relative, which for these is the source tensor's own byte offset. The CRC of
 * every chunk the read covers whole is recorded for the footer. */
static ssize_t read_raw(aprfs_file *f, const tref *t, const aprfs_cancel *cancel, uint64_t rel,
			uint64_t want, uint8_t *dst, aprfs_err *err)
{
	const tensor_geom *g = &t->g;
	uint64_t span = g->chunk_blocks * g->block_bytes;
	uint64_t n = g->size - rel < want ? g->size - rel : want;
	int rc = aprfs_cancelled(cancel)
		     ? aprfs_fail_cancelled(err)
		     : aprfs_source_read(f->L.src, t->t, rel, (size_t)n, dst, err);

	if (rc)
		return rc;
	for (uint64_t k = (rel + span - 1) / span; k * span < rel + n; k++) {
		uint64_t len = layout_chunk_bytes(g, k);
		if (k * span + len > rel + n)
			break;
		record_crc(f, t->d->first_chunk[t->i] + k, dst + (k * span - rel), (size_t)len);
	}
	return (ssize_t)n;
}

/* Bytes of tensor t's payload + padding starting at relative offset rel. */
static ssize_t read_tensor(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			   const tref *t, uint64_t rel, uint64_t want, uint8_t *dst,
			   aprfs_err *err)
{
	const tensor_geom *g = &t->g;

	if (rel < g->prefix) {
		float v;
		uint8_t p[4];
		int rc = tensor_stat(f, cache_disk(cache), t, cancel, &v, err);
		if (rc)
			return rc;
		memcpy(p, &v, 4); /* f32 little-endian: x86-64 and aarch64 are LE hosts */
		return copy_part(dst, p, g->prefix, rel, want);
	}
	if (rel >= g->size) {
		uint64_t n =
		    apr_align64(g->size) - rel < want ? apr_align64(g->size) - rel : want;
		memset(dst, 0, n);
		return (ssize_t)n;
	}
	if (g->raw)
		return read_raw(f, t, cancel, rel, want, dst, err);
	uint64_t span = g->chunk_blocks * g->block_bytes;
	uint64_t k = (rel - g->prefix) / span;
	chunk_ref r;
	int rc = chunk_get(f, cache, t, k, cancel, &r, err);
	if (rc)
		return rc;
	ssize_t n = copy_part(dst, r.data, r.len, rel - layout_chunk_offset(g, k), want);
	chunk_put(cache, &r);
	return n;
}

static ssize_t read_piece(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			  const layout_detail *d, uint64_t pos, uint64_t want, uint8_t *dst,
			  aprfs_err *err)
{
	const layout *L = &f->L;
	uint64_t footer_at = L->file_size - APR_FOOTER_SIZE;

	if (pos < L->data_offset) {
		size_t n = (size_t)(L->data_offset - pos < want ? L->data_offset - pos : want);
		layout_head_read(L, d, pos, n, dst);
		return (ssize_t)n;
	}
	if (pos >= footer_at) {
		uint32_t crc;
		uint8_t b[4];
		int rc = footer_crc(f, cache, d, cancel, &crc, err);
		if (rc)
			return rc;
		apr_put32(b, crc);
		return copy_part(dst, b, 4, pos - footer_at, want);
	}
	tref t;
	tref_of(f, d, layout_tensor_at(L, d, pos), &t);
	return read_tensor(f, cache, cancel, &t, pos - d->offset[t.i], want, dst, err);
}

ssize_t aprfs_file_read(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			uint64_t off, size_t len, void *buf, aprfs_err *err)
{
	uint64_t size = f->L.file_size;
	uint64_t end = (off >= size || len >= size - off) ? size : off + len;
	const layout_detail *d = end > off ? detail(f, err) : NULL;
	uint8_t *dst = buf;

	if (end > off && !d)
		return -ENOMEM;
	for (uint64_t pos = off; pos < end;) {
		ssize_t n =
		    read_piece(f, cache, cancel, d, pos, end - pos, dst + (pos - off), err);
		if (n < 0)
			return n; /* err already names the file */
		pos += (uint64_t)n;
	}
	if (cache && end > off)
		cache_count_served(cache, f->L.variant, end - off);
	return off < end ? (ssize_t)(end - off) : 0;
}
