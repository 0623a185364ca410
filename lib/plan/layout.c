/* layout.c - planning a virtual APR file from tensor shapes: the codec each tensor gets
 * (the variant's rule, plan/variant.c), sizes, header and metadata at open; offsets, chunk
 * numbers and index positions on first read; index bytes written on demand. */
#include "plan/layout.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "base/crc.h"
#include "format/aprfmt.h"
#include "plan/kmix.h"
#include "plan/view.h"
#include "source/imatrix.h"

void aprfs_opts_default(aprfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nf4_block = 64;
	o->chunk_elems = 65536;
}

/* The codec of a float tensor t: a named view's first matching rule's variant (its row's
 * rule, fallbacks included), else the plan's variant's rule. */
static const aprfs_codec *codec_for(const layout *L, const aprfs_tensor *t)
{
	if (L->opts.view) {
		int rule = -1;
		const int v = aprfs_view_variant(L->opts.view, t->name, &rule);
		if (rule >= 0 && v >= 0 && v < APRFS_VARIANT_COUNT) {
			const aprfs_variant *rv = &aprfs_variants[v];
			return rv->codec_for(rv, t, &L->ctx);
		}
	}
	return L->var->codec_for(L->var, t, &L->ctx);
}

/* A view's rule may not put a 1-D float tensor in a block codec (its rows have no blocks):
 * a configuration error, naming the key; the view is then not served for this source. */
static int view_check(const layout *L, aprfs_err *err)
{
	for (size_t i = 0; i < L->ntensors; i++) {
		const aprfs_tensor *t = aprfs_source_tensor(L->src, i);
		int rule = -1;
		const int v = aprfs_view_variant(L->opts.view, t->name, &rule);
		if (rule < 0 || v < 0 || v >= APRFS_VARIANT_COUNT)
			continue;
		const aprfs_codec *c = aprfs_variants[v].codec;
		if (t->ndim < 2 && aprfs_src_dtype_is_float(t->dtype) &&
		    (c == &aprfs_codec_q4 || c == &aprfs_codec_q4k || c == &aprfs_codec_q6k ||
		     c == &aprfs_codec_nf4))
			return aprfs_fail(
			    err, EINVAL,
			    "view.%s: a rule puts the 1-D tensor '%s' of %s in the "
			    "block codec %s",
			    L->opts.view->name, t->name, aprfs_source_path(L->src), c->name);
	}
	return 0;
}

/* The checkpoint facts a layer-aware rule (q4km's mix) reads: the layer count (the
 * config's or GGUF's, else 1 + the largest layer number in a name) and whether an output
 * matrix exists (without one the token embedding is tied). */
static void layer_facts(layout *L)
{
	const aprfs_model_config *cfg = aprfs_source_config(L->src);
	uint64_t from_names = 0;
	int has_output = 0;
	for (size_t i = 0; i < L->ntensors; i++) {
		long layer;
		const aprfs_tensor *t = aprfs_source_tensor(L->src, i);
		if (aprfs_tensor_role_of(t->name, &layer) == APRFS_ROLE_OUTPUT)
			has_output = 1;
		if (layer >= 0 && (uint64_t)layer + 1 > from_names)
			from_names = (uint64_t)layer + 1;
	}
	L->ctx.tied_embedding = !has_output;
	L->ctx.nlayers = cfg && (cfg->has & APRFS_CFG_LAYERS) && cfg->num_layers
			     ? cfg->num_layers
			     : from_names;
}

/* A GGUF tensor already in the variant's k-quant dtype is copied block for block: the
 * bytes GGML wrote are what a reader decodes, with no error added. */
static int passes_through(const aprfs_tensor *t, const aprfs_codec *c)
{
	return (c == &aprfs_codec_q4k || c == &aprfs_codec_q6k) &&
	       aprfs_src_dtype_passthrough_id(t->dtype) == c->dtype;
}

void layout_geom(const layout *L, const aprfs_tensor *t, tensor_geom *g)
{
	aprfs_qparams q = {.scale = 1.0f, .nf4_block = L->opts.nf4_block};

	memset(g, 0, sizeof(*g));
	if (!aprfs_src_dtype_is_float(t->dtype)) {
		g->raw = 1;
		g->dtype = aprfs_src_dtype_passthrough_id(t->dtype);
		g->block_elems = 1;
		g->block_bytes = aprfs_src_dtype_size(t->dtype);
	} else {
		g->codec = codec_for(L, t);
		g->raw = passes_through(t, g->codec);
		g->dtype = g->codec->dtype;
		g->slot = aprfs_kslot_of(g->codec);
		g->prefix = g->codec->prefix_bytes;
		g->block_elems = aprfs_codec_block_elems(g->codec, &q);
		g->block_bytes = aprfs_codec_block_bytes(g->codec, &q);
	}
	g->nblocks = (t->nelem + g->block_elems - 1) / g->block_elems;
	g->size = g->prefix + g->nblocks * g->block_bytes;
	g->chunk_blocks = L->opts.chunk_elems / g->block_elems;
	if (g->chunk_blocks == 0)
		g->chunk_blocks = 1;
	g->nchunks = (g->nblocks + g->chunk_blocks - 1) / g->chunk_blocks;
}

const float *layout_weights(const layout *L, const aprfs_tensor *t, const tensor_geom *g)
{
	if (!L->imatrix || g->raw || t->ndim < 1 ||
	    (g->codec != &aprfs_codec_q4k && g->codec != &aprfs_codec_q6k))
		return NULL;
	return aprfs_imatrix_weights(L->imatrix, t->name, t->dims[t->ndim - 1]);
}

/* A k-quant view of a source with an importance matrix is weighted where the matrix has
 * an entry for an encoded tensor; with no entry used it stays unweighted (and says so by
 * carrying no imatrix in its metadata). */
static void plan_imatrix(layout *L)
{
	const aprfs_imatrix *m = aprfs_source_imatrix(L->src);
	if (!m || (L->var->codec != &aprfs_codec_q4k && L->var->codec != &aprfs_codec_q6k))
		return;
	L->imatrix = m;
	for (size_t i = 0; i < L->ntensors; i++) {
		const aprfs_tensor *t = aprfs_source_tensor(L->src, i);
		tensor_geom g;
		layout_geom(L, t, &g);
		if (layout_weights(L, t, &g))
			L->imatrix_used++;
		else if (!g.raw && (g.codec == &aprfs_codec_q4k || g.codec == &aprfs_codec_q6k))
			aprfs_imatrix_note_missing(m, t->name);
	}
	if (!L->imatrix_used)
		L->imatrix = NULL;
}

static uint64_t entry_size(const aprfs_tensor *t)
{
	return 2 + t->name_len + 1 + 1 + 8ull * t->ndim + 8 + 8;
}

static int is_quantized_dtype(uint8_t d)
{
	return d == APR_DT_Q4_K || d == APR_DT_Q6_K || d == APR_DT_APR_Q4 ||
	       d == APR_DT_APR_Q8 || d == APR_DT_NF4 || d == APR_DT_TERNARY;
}

static void put_header(layout *L, uint16_t flags)
{
	uint8_t *h = L->header;

	memset(h, 0, APR_HEADER_SIZE);
	memcpy(h, "APR\0", 4);
	h[4] = 2;
	h[5] = 0;
	apr_put16(h + APR_OFF_FLAGS, flags);
	apr_put32(h + APR_OFF_TENSOR_COUNT, (uint32_t)L->ntensors);
	apr_put64(h + APR_OFF_META_OFFSET, APR_HEADER_SIZE);
	apr_put32(h + APR_OFF_META_SIZE, L->meta_size);
	apr_put64(h + APR_OFF_INDEX_OFFSET, L->index_offset);
	apr_put64(h + APR_OFF_DATA_OFFSET, L->data_offset);
	apr_put32(h + APR_OFF_CHECKSUM, apr_header_checksum(h));
}

/* One pass over the tensors gives every size; nothing per tensor is kept. */
int layout_build(layout *L, aprfs_source *s, int variant, const aprfs_opts *o, aprfs_err *err)
{
	uint64_t payload = 0, total = 0, params = 0;
	uint16_t flags = APR_FLAG_ROW_MAJOR;

	memset(L, 0, sizeof(*L));
	L->src = s;
	L->variant = variant;
	L->var = &aprfs_variants[variant];
	L->opts = *o;
	L->ntensors = aprfs_source_count(s);
	L->ctx.nf4_block = o->nf4_block;
	L->ctx.src = s;
	if (L->var->flags & APRFS_VARIANT_MIX)
		layer_facts(L);
	if (o->view && view_check(L, err)) {
		memset(L, 0, sizeof(*L));
		return -err->code;
	}
	plan_imatrix(L);
	pthread_mutex_init(&L->detail_lock, NULL);
	for (int i = 0; i < LAYOUT_STAT_LOCKS; i++)
		pthread_mutex_init(&L->stat_lock[i], NULL);
	for (size_t i = 0; i < L->ntensors; i++) {
		const aprfs_tensor *t = aprfs_source_tensor(s, i);
		tensor_geom g;

		layout_geom(L, t, &g);
		L->index_size += entry_size(t);
		payload += apr_align64(g.size);
		total += g.size;
		params += t->nelem;
		L->nchunks += g.nchunks;
		if (is_quantized_dtype(g.dtype))
			flags |= APR_FLAG_QUANTIZED;
	}
	if (!(L->meta = layout_metadata_json(L, total, params, err))) {
		layout_free(L);
		return -err->code;
	}
	if (strlen(L->meta) > UINT32_MAX) {
		layout_free(L);
		return aprfs_fail(err, EFBIG, "%s: metadata too large", aprfs_source_path(s));
	}
	L->meta_size = (uint32_t)strlen(L->meta);
	L->index_offset = APR_HEADER_SIZE + apr_align64(L->meta_size);
	L->data_offset = L->index_offset + apr_align64(L->index_size);
	L->file_size = L->data_offset + payload + APR_FOOTER_SIZE;
	put_header(L, flags);
	return 0;
}

static void detail_free(layout_detail *d)
{
	if (!d)
		return;
	free(d->offset);
	free(d->first_chunk);
	free(d->entry_end);
	free(d->stat);
	free((void *)d->stat_done);
	free(d);
}

void layout_free(layout *L)
{
	detail_free(atomic_load(&L->detail));
	pthread_mutex_destroy(&L->detail_lock);
	for (int i = 0; i < LAYOUT_STAT_LOCKS; i++)
		pthread_mutex_destroy(&L->stat_lock[i]);
	free(L->meta);
	memset(L, 0, sizeof(*L));
}

static layout_detail *detail_build(layout *L)
{
	size_t n = L->ntensors;
	layout_detail *d = calloc(1, sizeof(*d));
	const uint32_t *order = aprfs_source_name_order(L->src);

	if (!d || !(d->offset = malloc((n + 1) * sizeof(uint64_t))) ||
	    !(d->first_chunk = malloc((n + 1) * sizeof(uint64_t))) ||
	    !(d->entry_end = malloc((n + 1) * sizeof(uint64_t))) ||
	    !(d->stat = calloc(n + 1, sizeof(float))) ||
	    !(d->stat_done = calloc(n + 1, sizeof(atomic_uchar)))) {
		detail_free(d);
		return NULL;
	}
	uint64_t pos = L->data_offset, chunk = 0, end = 0;
	for (size_t i = 0; i < n; i++) {
		tensor_geom g;
		layout_geom(L, aprfs_source_tensor(L->src, i), &g);
		d->offset[i] = pos;
		d->first_chunk[i] = chunk;
		pos += apr_align64(g.size);
		chunk += g.nchunks;
	}
	d->offset[n] = pos;
	d->first_chunk[n] = chunk;
	for (size_t j = 0; j < n; j++) {
		end += entry_size(aprfs_source_tensor(L->src, order[j]));
		d->entry_end[j] = end;
	}
	return d;
}

const layout_detail *layout_detail_get(layout *L, aprfs_err *err)
{
	layout_detail *d = atomic_load_explicit(&L->detail, memory_order_acquire);

	if (d)
		return d;
	pthread_mutex_lock(&L->detail_lock);
	d = atomic_load(&L->detail);
	if (!d && (d = detail_build(L)))
		atomic_store_explicit(&L->detail, d, memory_order_release);
	pthread_mutex_unlock(&L->detail_lock);
	if (!d)
		aprfs_fail(err, ENOMEM, "%s: out of memory planning %zu tensors",
			   aprfs_source_path(L->src), L->ntensors);
	return d;
}

/* ---- the head, written on demand ---- */

enum { ENTRY_MAX = 2 + APRFS_MAX_NAME + 2 + 8 * APRFS_MAX_NDIM + 16 };

static size_t put_entry(const layout *L, const layout_detail *d, uint32_t i, uint8_t *w)
{
	const aprfs_tensor *t = aprfs_source_tensor(L->src, i);
	uint8_t *start = w;
	tensor_geom g;

	layout_geom(L, t, &g);
	apr_put16(w, t->name_len);
	memcpy(w + 2, t->name, t->name_len);
	w += 2 + t->name_len;
	*w++ = g.dtype;
	*w++ = t->ndim;
	for (int k = 0; k < t->ndim; k++, w += 8)
		apr_put64(w, t->dims[k]);
	apr_put64(w, d->offset[i] - L->data_offset);
	apr_put64(w + 8, g.size);
	return (size_t)(w + 16 - start);
}

/* The first index entry ending after rel (bytes from the index start). */
static size_t entry_at(const layout_detail *d, size_t n, uint64_t rel)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (d->entry_end[mid] <= rel)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t index_part(const layout *L, const layout_detail *d, uint64_t rel, size_t len,
			 uint8_t *dst)
{
	const uint32_t *order = aprfs_source_name_order(L->src);
	size_t j = entry_at(d, L->ntensors, rel), done = 0;

	while (done < len && j < L->ntensors) {
		uint8_t e[ENTRY_MAX];
		uint64_t start = j ? d->entry_end[j - 1] : 0;
		size_t elen = put_entry(L, d, order[j], e);
		size_t from = (size_t)(rel + done - start), n = elen - from;

		n = n < len - done ? n : len - done;
		memcpy(dst + done, e + from, n);
		done += n;
		j++;
	}
	return done;
}

void layout_head_read(const layout *L, const layout_detail *d, uint64_t off, size_t len,
		      uint8_t *dst)
{
	const uint64_t meta_end = APR_HEADER_SIZE + L->meta_size;
	const uint64_t index_end = L->index_offset + L->index_size;

	while (len) {
		size_t n;
		if (off < APR_HEADER_SIZE) {
			n = (size_t)(APR_HEADER_SIZE - off);
			n = n < len ? n : len;
			memcpy(dst, L->header + off, n);
		} else if (off < meta_end) {
			n = (size_t)(meta_end - off);
			n = n < len ? n : len;
			memcpy(dst, L->meta + (off - APR_HEADER_SIZE), n);
		} else if (off >= L->index_offset && off < index_end) {
			n = (size_t)(index_end - off);
			n = index_part(L, d, off - L->index_offset, n < len ? n : len, dst);
		} else { /* padding after the metadata or the index */
			uint64_t to = off < L->index_offset ? L->index_offset : L->data_offset;
			n = (size_t)(to - off);
			n = n < len ? n : len;
			memset(dst, 0, n);
		}
		off += n;
		dst += n;
		len -= n;
	}
}

/* ---- chunks ---- */

/* The last tensor whose key is <= x. Both keys used below (first_chunk, offset) ascend
 * in data order, and an empty tensor shares its key with the tensor after it, so the last
 * of such a run is always the one that owns x. */
static size_t last_at_or_below(const uint64_t *key, size_t n, uint64_t x)
{
	size_t lo = 0, hi = n;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		if (key[mid] <= x)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

size_t layout_tensor_of_chunk(const layout *L, const layout_detail *d, uint64_t c)
{
	return last_at_or_below(d->first_chunk, L->ntensors, c);
}

size_t layout_tensor_at(const layout *L, const layout_detail *d, uint64_t off)
{
	return last_at_or_below(d->offset, L->ntensors, off);
}
