/* aprfile.c - the range API: opening a plan, its accessors, and bytes [off, off+len) of
 * a planned APR file: head bytes written from the plan, chunk bytes from chunk_get.c (each
 * chunk described once, plan/chunk.h), pass-through bytes straight from the source, the
 * footer from footer.c. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "file/aprfile_impl.h"
#include "format/aprfmt.h"

/* File ids only need to be unique within a process: a cache may hold chunks of a file that
 * was re-planned after its source changed, and the id keeps the two apart. */
static atomic_uint_fast64_t next_file_id = 1;

int aprfs_file_open(aprfs_source *s, const char *variant, const aprfs_opts *o, aprfs_file **out,
		    aprfs_err *err)
{
	int v = aprfs_variant_index(variant);
	aprfs_opts def;

	if (!o) {
		aprfs_opts_default(&def);
		o = &def;
	}
	if (v < 0) {
		char known[256];
		aprfs_variant_list(known, sizeof(known), " ");
		return aprfs_fail(err, EINVAL, "unknown variant '%s' (one of %s)", variant,
				  known);
	}
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
	return aprfs_variant_name(f->L.variant);
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
const layout_detail *file_detail(aprfs_file *f, aprfs_err *err)
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
	const layout_detail *d = file_detail(f, err);
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

void aprfs_file_chunks_in(aprfs_file *f, uint64_t off, uint64_t len, uint64_t *first,
			  uint64_t *count)
{
	const layout *L = &f->L;
	const layout_detail *d = file_detail(f, NULL);
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
		plan_tensor t;
		if (d->offset[i] >= end)
			break;
		plan_tensor_get(L, d, i, &t);
		const tensor_geom *g = &t.g;
		if (g->nchunks == 0)
			continue;
		uint64_t a = off > t.offset + g->prefix ? off - t.offset : g->prefix;
		uint64_t b = end - t.offset;
		if (b <= g->prefix || a >= g->size)
			continue;
		uint64_t k0 = plan_chunk_at(&t, a), k1 = plan_chunk_at(&t, b - 1);
		k1 = k1 >= g->nchunks ? g->nchunks - 1 : k1;
		lo = lo < t.first_chunk + k0 ? lo : t.first_chunk + k0;
		hi = t.first_chunk + k1 + 1;
	}
	if (lo != UINT64_MAX) {
		*first = lo;
		*count = hi - lo;
	}
}

int aprfs_file_chunk_computed(aprfs_file *f, uint64_t c)
{
	const layout_detail *d = file_detail(f, NULL);
	plan_tensor t;

	if (!d || c >= f->L.nchunks)
		return 0;
	plan_tensor_get(&f->L, d, layout_tensor_of_chunk(&f->L, d, c), &t);
	return !t.g.raw;
}

int aprfs_file_chunk_held(aprfs_file *f, aprfs_cache *cache, uint64_t c)
{
	const layout_detail *d = file_detail(f, NULL);
	plan_tensor t;
	plan_chunk ch;

	if (!d || c >= f->L.nchunks)
		return 0;
	plan_chunk_of(&f->L, d, c, &t, &ch);
	return t.g.raw || file_chunk_prefetch(f, cache, &ch);
}

int aprfs_file_warm(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel, uint64_t c,
		    aprfs_err *err)
{
	const layout_detail *d = file_detail(f, err);
	file_chunk_ref r;
	plan_tensor t;
	plan_chunk ch;

	if (!d)
		return -ENOMEM;
	if (c >= f->L.nchunks)
		return aprfs_fail(err, EINVAL, "chunk %llu out of range",
				  (unsigned long long)c);
	plan_chunk_of(&f->L, d, c, &t, &ch);
	if (t.g.raw) /* read straight from the source when asked for: nothing to warm */
		return 0;
	/* Held already (a disk tier's record is read ahead into the page cache, and the
	 * reader reads it straight into its buffer: no copy kept in memory). */
	if (file_chunk_prefetch(f, cache, &ch))
		return 0;
	int rc = file_chunk_get(f, cache, &ch, cancel, &r, err);
	if (rc == 0)
		file_chunk_put(cache, &r);
	return rc;
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
static ssize_t read_raw(aprfs_file *f, const plan_tensor *t, const aprfs_cancel *cancel,
			uint64_t rel, uint64_t want, uint8_t *dst, aprfs_err *err)
{
	const tensor_geom *g = &t->g;
	uint64_t span = plan_chunk_span(t);
	uint64_t n = g->size - rel < want ? g->size - rel : want;
	int rc = aprfs_cancelled(cancel)
		     ? aprfs_fail_cancelled(err)
		     : aprfs_source_read(f->L.src, t->t, rel, (size_t)n, dst, err);

	if (rc)
		return rc;
	for (uint64_t k = (rel + span - 1) / span; k * span < rel + n; k++) {
		plan_chunk ch;
		plan_chunk_get(t, k, &ch);
		if (ch.out_off + ch.len > rel + n)
			break;
		file_record_crc(f, ch.global, dst + (ch.out_off - rel), (size_t)ch.len);
	}
	return (ssize_t)n;
}

/* Bytes of tensor t's payload + padding starting at relative offset rel. */
static ssize_t read_tensor(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			   const plan_tensor *t, uint64_t rel, uint64_t want, uint8_t *dst,
			   aprfs_err *err)
{
	const tensor_geom *g = &t->g;

	if (rel < g->prefix) {
		float v;
		uint8_t p[4];
		int rc = file_tensor_stat(f, cache_disk(cache), t, cancel, &v, err);
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
	plan_chunk ch;
	file_chunk_ref r;
	plan_chunk_get(t, plan_chunk_at(t, rel), &ch);
	/* A chunk the read covers whole goes straight into the reader's buffer when nothing
	 * needs computing (the disk tier's hits: no chunk buffer, no extra copy). */
	if (rel == ch.out_off && want >= ch.len && file_chunk_direct(f, cache, &ch, dst))
		return (ssize_t)ch.len;
	int rc = file_chunk_get(f, cache, &ch, cancel, &r, err);
	if (rc)
		return rc;
	ssize_t n = copy_part(dst, r.data, r.len, rel - ch.out_off, want);
	file_chunk_put(cache, &r);
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
		int rc = file_footer_crc(f, cache, d, cancel, &crc, err);
		if (rc)
			return rc;
		apr_put32(b, crc);
		return copy_part(dst, b, 4, pos - footer_at, want);
	}
	plan_tensor t;
	plan_tensor_get(L, d, layout_tensor_at(L, d, pos), &t);
	return read_tensor(f, cache, cancel, &t, pos - t.offset, want, dst, err);
}

ssize_t aprfs_file_read(aprfs_file *f, aprfs_cache *cache, const aprfs_cancel *cancel,
			uint64_t off, size_t len, void *buf, aprfs_err *err)
{
	uint64_t size = f->L.file_size;
	uint64_t end = (off >= size || len >= size - off) ? size : off + len;
	const layout_detail *d = end > off ? file_detail(f, err) : NULL;
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
