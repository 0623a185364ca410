/* footer.c - the footer CRC of a file: the head's CRC joined with every chunk's (recorded
 * as chunks go by, read from disk entries, or computed on every core) and the padding's,
 * kept on the disk tier. */
#include <string.h>

#include "base/crc.h"
#include "base/parallel.h"
#include "file/aprfile_impl.h"
#include "format/aprfmt.h"

/* CRC of one chunk: recorded, read from its disk entry's header, or computed now (not
 * cached in memory: a cold footer read would otherwise flush the whole cache for data
 * nobody asked for; but offered to the disk tier, which has room). */
static int crc_of_chunk(aprfs_file *f, aprfs_cache *cache, const plan_chunk *c,
			const aprfs_cancel *cancel, uint32_t *crc, aprfs_err *err)
{
	aprfs_diskcache *dc = cache_disk(cache);
	_Atomic uint64_t *crcs = atomic_load(&f->chunk_crc);
	uint64_t v = atomic_load(&crcs[c->global]);
	aprfs_dc_key key;
	uint32_t known;

	if (!(v >> 32) && dc && !c->tensor->g.raw) {
		file_key_chunk(f, c, &key);
		if (aprfs_diskcache_get_crc(dc, &key, c->len, &known)) {
			file_record_crc_value(f, c->global, known);
			v = atomic_load(&crcs[c->global]);
		}
	}
	if (!(v >> 32)) {
		file_chunk_ref r = {.len = c->len};
		int rc = file_chunk_alone(f, cache, c, cancel, &r, err);
		if (rc)
			return rc;
		file_chunk_put(NULL, &r);
		v = atomic_load(&crcs[c->global]);
	}
	*crc = (uint32_t)v;
	return 0;
}

static int tensor_crc(aprfs_file *f, aprfs_cache *cache, const plan_tensor *t,
		      const aprfs_cancel *cancel, uint32_t *crc, aprfs_err *err)
{
	if (t->g.prefix) {
		uint8_t p[4];
		float v;
		int rc = file_tensor_stat(f, cache_disk(cache), t, cancel, &v, err);
		if (rc)
			return rc;
		memcpy(p, &v, 4);
		*crc = aprfs_crc32(*crc, p, 4);
	}
	for (uint64_t k = 0; k < t->g.nchunks; k++) {
		plan_chunk ch;
		uint32_t c;
		plan_chunk_get(t, k, &ch);
		int rc = crc_of_chunk(f, cache, &ch, cancel, &c, err);
		if (rc)
			return rc;
		*crc = aprfs_crc32_combine(*crc, c, ch.len);
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
	plan_tensor t;
	plan_chunk ch;

	if (atomic_load(&atomic_load(&p->f->chunk_crc)[c]) >> 32)
		return 0;
	plan_chunk_of(&p->f->L, p->d, c, &t, &ch);
	return crc_of_chunk(p->f, p->cache, &ch, p->cancel, &crc, err);
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
		plan_tensor t;
		plan_tensor_get(&f->L, d, i, &t);
		rc = tensor_crc(f, cache, &t, cancel, &crc, err);
	}
	*out = crc;
	return rc;
}

/* The footer: known, from the disk tier, or from the pass (and then offered to it). */
int file_footer_crc(aprfs_file *f, aprfs_cache *cache, const layout_detail *d,
		    const aprfs_cancel *cancel, uint32_t *out, aprfs_err *err)
{
	aprfs_diskcache *dc = cache_disk(cache);
	uint64_t v = atomic_load(&f->footer);
	aprfs_dc_key key;
	uint32_t crc;

	if (!(v >> 32)) {
		int keyed = dc && file_key_footer(f, &key) == 0, rc = 0;
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
