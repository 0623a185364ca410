/* chunk_get.c - producing one chunk, tier by tier: the memory cache (single flight),
 * the disk tier, then the compute step (a codec over the source's elements, or the
 * source's own bytes for pass-through), recording each chunk's CRC for the footer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/crc.h"
#include "file/aprfile_impl.h"
#include "plan/tensor_read.h"

void file_record_crc_value(aprfs_file *f, uint64_t c, uint32_t value)
{
	_Atomic uint64_t *crc = atomic_load(&f->chunk_crc);

	if (!(atomic_load(&crc[c]) >> 32))
		atomic_store(&crc[c], (1ull << 32) | value);
}

void file_record_crc(aprfs_file *f, uint64_t c, const uint8_t *data, size_t len)
{
	if (!(atomic_load(&atomic_load(&f->chunk_crc)[c]) >> 32))
		file_record_crc_value(f, c, aprfs_crc32(0, data, len));
}

/* Compute chunk c into out (c->len bytes). */
static int compute_chunk(aprfs_file *f, aprfs_diskcache *dc, const plan_chunk *c,
			 const aprfs_cancel *cancel, uint8_t *out, aprfs_err *err)
{
	const plan_tensor *r = c->tensor;
	const tensor_geom *g = &r->g;
	int rc;

	if (aprfs_cancelled(cancel)) {
		rc = aprfs_fail_cancelled(err);
	} else if (g->raw) {
		rc = aprfs_source_read(f->L.src, r->t, c->src_off, c->len, out, err);
	} else {
		aprfs_qparams q = {.scale = 1.0f, .nf4_block = f->L.opts.nf4_block};
		if ((q.qw = layout_weights(&f->L, r->t, g))) {
			q.qw_cols = r->t->dims[r->t->ndim - 1];
			q.qw_col0 = c->elem0 % q.qw_cols;
		}
		rc = g->codec->stat != APRFS_STAT_NONE
			 ? file_tensor_stat(f, dc, r, cancel, &q.scale, err)
			 : 0;
		if (rc == 0) /* fused: bf16/f16 are widened tile by tile, never as a chunk */
			rc = aprfs_tensor_encode(f->L.src, f->k, r->t, c->elem0, c->nelem,
						 g->slot, &q, out, err);
	}
	if (rc == 0)
		file_record_crc(f, c->global, out, c->len);
	return rc;
}

/* Chunk c into out: loaded from the disk tier when it holds it (*computed = 0), else
 * computed and offered to it (dc may be NULL). */
static int chunk_produce(aprfs_file *f, aprfs_diskcache *dc, const plan_chunk *c,
			 const aprfs_cancel *cancel, uint8_t *out, int *computed,
			 aprfs_err *err)
{
	aprfs_dc_key key;
	uint32_t crc;
	int claimed = 0, rc;

	*computed = 1;
	if (!dc || c->tensor->g.raw)
		return compute_chunk(f, dc, c, cancel, out, err);
	file_key_chunk(f, c, &key);
	if (aprfs_diskcache_get(dc, &key, out, c->len, &crc, cancel, &claimed)) {
		file_record_crc_value(f, c->global, crc);
		*computed = 0;
		return 0;
	}
	rc = compute_chunk(f, dc, c, cancel, out, err);
	if (rc == 0)
		aprfs_diskcache_put(
		    dc, &key, out, c->len,
		    (uint32_t)atomic_load(&atomic_load(&f->chunk_crc)[c->global]), claimed);
	else
		aprfs_diskcache_drop(dc, &key, claimed);
	return rc;
}

void file_chunk_put(aprfs_cache *cache, file_chunk_ref *r)
{
	if (r->entry)
		cache_release(cache, r->entry);
	free(r->owned);
	memset(r, 0, sizeof(*r));
}

int file_chunk_direct(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c, uint8_t *dst)
{
	aprfs_diskcache *dc = cache_disk(cache);
	cache_entry *e = cache ? cache_find_ready(cache, f->id, c->global, f->L.variant) : NULL;
	aprfs_dc_key key;
	uint32_t crc;

	if (e) {
		size_t len;
		const uint8_t *p = cache_entry_data(e, &len);
		memcpy(dst, p, len < c->len ? len : c->len);
		cache_release(cache, e);
		return len == c->len;
	}
	if (!dc || c->tensor->g.raw)
		return 0;
	file_key_chunk(f, c, &key);
	if (!aprfs_diskcache_read(dc, &key, dst, c->len, &crc))
		return 0;
	file_record_crc_value(f, c->global, crc);
	return 1;
}

int file_chunk_prefetch(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c)
{
	aprfs_diskcache *dc = cache_disk(cache);
	cache_entry *e = cache ? cache_find_ready(cache, f->id, c->global, f->L.variant) : NULL;
	aprfs_dc_key key;

	if (e) {
		cache_release(cache, e);
		return 1;
	}
	if (!dc || c->tensor->g.raw)
		return 0;
	file_key_chunk(f, c, &key);
	return aprfs_diskcache_prefetch(dc, &key, c->len);
}

/* Without a cache: loaded or computed into a buffer the ref owns (freed by chunk_put, or
 * here on failure). A computation is counted in counter's statistics (NULL: nowhere). */
int file_chunk_alone(aprfs_file *f, aprfs_cache *counter, const plan_chunk *c,
		     const aprfs_cancel *cancel, file_chunk_ref *r, aprfs_err *err)
{
	uint8_t *buf = malloc(r->len ? r->len : 1);
	double t0 = aprfs_now_s();
	int computed;
	int rc = buf ? chunk_produce(f, cache_disk(counter), c, cancel, buf, &computed, err)
		     : aprfs_fail(err, ENOMEM, "out of memory");

	if (rc == 0 && computed &&
	    !c->tensor->g.raw) /* a raw chunk is a copy, not a computation */
		cache_count_computed(counter, f->L.variant, r->len, aprfs_now_s() - t0);

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
int file_chunk_get(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c,
		   const aprfs_cancel *cancel, file_chunk_ref *r, aprfs_err *err)
{
	int computed = 1;

	memset(r, 0, sizeof(*r));
	r->len = c->len;
	if (!cache)
		return file_chunk_alone(f, NULL, c, cancel, r, err);
	for (;;) {
		int must = 1;
		r->entry = cache_acquire(cache, f->id, c->global, f->L.variant, &must, err);
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
	double t0 = aprfs_now_s();
	int rc = buf ? chunk_produce(f, cache_disk(cache), c, cancel, buf, &computed, err)
		     : aprfs_fail(err, ENOMEM, "out of memory");
	cache_publish(cache, r->entry, rc ? NULL : buf, r->len, rc, err, computed,
		      aprfs_now_s() - t0);
	if (rc) {
		free(buf);
		cache_release(cache, r->entry);
		r->entry = NULL;
		return rc;
	}
	r->data = buf;
	return 0;
}
