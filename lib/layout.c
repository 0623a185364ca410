/* layout.c - planning a virtual APR file from tensor shapes: the codec each tensor gets
 * (the contract's fallback rules), the sorted index, every offset, the chunk split and the
 * header bytes. Nothing here touches tensor data, so stat and readdir stay free. */
#include "layout.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "aprfmt.h"
#include "crc.h"

const char *const aprfs_variant_names[APRFS_VARIANT_COUNT] = {
    "f32", "f16", "bf16", "q8", "q4", "q4k", "q6k", "nf4", "ternary",
};

int aprfs_variant_index(const char *name)
{
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++)
		if (strcmp(name, aprfs_variant_names[i]) == 0)
			return i;
	return -1;
}

void aprfs_opts_default(aprfs_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->nf4_block = 64;
	o->chunk_elems = 65536;
}

/* The contract's "Which tensors a variant quantizes": the codec for a float tensor. */
static const aprfs_codec *codec_for(const aprfs_tensor *t, const aprfs_codec *variant,
				    uint32_t nf4_block)
{
	if (variant == &aprfs_codec_f32 || variant == &aprfs_codec_f16 ||
	    variant == &aprfs_codec_bf16)
		return variant; /* these convert every floating tensor */
	if (t->ndim < 2 || t->nelem < 4096)
		return &aprfs_codec_f32; /* norms, biases and small tensors stay exact */
	if ((variant == &aprfs_codec_q4k || variant == &aprfs_codec_q6k) &&
	    t->dims[t->ndim - 1] % 256 != 0)
		return &aprfs_codec_q8; /* k-quants work along rows of 256 */
	if (variant == &aprfs_codec_nf4 && t->nelem % nf4_block != 0)
		return &aprfs_codec_q8;
	return variant;
}

static void plan_geometry(tensor_plan *p, const aprfs_opts *o)
{
	const aprfs_tensor *t = p->src;
	aprfs_qparams q = {.scale = 1.0f, .nf4_block = o->nf4_block};

	if (!p->codec) { /* pass-through: one "block" per element */
		p->dtype = aprfs_src_dtype_passthrough_id(t->dtype);
		p->prefix = 0;
		p->block_elems = 1;
		p->block_bytes = aprfs_src_dtype_size(t->dtype);
	} else {
		p->dtype = p->codec->dtype;
		p->slot = aprfs_kslot_of(p->codec);
		p->prefix = p->codec->prefix_bytes;
		p->block_elems = aprfs_codec_block_elems(p->codec, &q);
		p->block_bytes = aprfs_codec_block_bytes(p->codec, &q);
	}
	p->nblocks = (t->nelem + p->block_elems - 1) / p->block_elems;
	p->size = p->prefix + p->nblocks * p->block_bytes;
	p->chunk_blocks = o->chunk_elems / p->block_elems;
	if (p->chunk_blocks == 0)
		p->chunk_blocks = 1;
	p->nchunks = (p->nblocks + p->chunk_blocks - 1) / p->chunk_blocks;
}

static int name_cmp(const void *a, const void *b)
{
	const tensor_plan *x = *(tensor_plan *const *)a, *y = *(tensor_plan *const *)b;
	size_t n = x->src->name_len < y->src->name_len ? x->src->name_len : y->src->name_len;
	int c = memcmp(x->src->name, y->src->name, n);

	if (c)
		return c;
	return (x->src->name_len > y->src->name_len) - (x->src->name_len < y->src->name_len);
}

static uint64_t index_entry_size(const tensor_plan *p)
{
	return 2 + p->src->name_len + 1 + 1 + 8ull * p->src->ndim + 8 + 8;
}

static uint8_t *put_index_entry(uint8_t *w, const tensor_plan *p, uint64_t data_offset)
{
	const aprfs_tensor *t = p->src;

	apr_put16(w, t->name_len);
	memcpy(w + 2, t->name, t->name_len);
	w += 2 + t->name_len;
	*w++ = p->dtype;
	*w++ = t->ndim;
	for (int d = 0; d < t->ndim; d++, w += 8)
		apr_put64(w, t->dims[d]);
	apr_put64(w, p->offset - data_offset);
	apr_put64(w + 8, p->size);
	return w + 16;
}

static int is_quantized_dtype(uint8_t d)
{
	return d == APR_DT_Q4_K || d == APR_DT_Q6_K || d == APR_DT_APR_Q4 ||
	       d == APR_DT_APR_Q8 || d == APR_DT_NF4 || d == APR_DT_TERNARY;
}

static void put_header(uint8_t *h, const layout *L, uint32_t meta_size, uint64_t index_offset)
{
	uint16_t flags = APR_FLAG_ROW_MAJOR;

	for (size_t i = 0; i < L->ntensors; i++)
		if (is_quantized_dtype(L->tensors[i].dtype))
			flags |= APR_FLAG_QUANTIZED;
	memset(h, 0, APR_HEADER_SIZE);
	memcpy(h, "APR\0", 4);
	h[4] = 2;
	h[5] = 0;
	apr_put16(h + APR_OFF_FLAGS, flags);
	apr_put32(h + APR_OFF_TENSOR_COUNT, (uint32_t)L->ntensors);
	apr_put64(h + APR_OFF_META_OFFSET, APR_HEADER_SIZE);
	apr_put32(h + APR_OFF_META_SIZE, meta_size);
	apr_put64(h + APR_OFF_INDEX_OFFSET, index_offset);
	apr_put64(h + APR_OFF_DATA_OFFSET, L->data_offset);
	apr_put32(h + APR_OFF_CHECKSUM, apr_header_checksum(h));
}

/* Header, metadata and index bytes; data_offset and the tensor offsets follow from them. */
static int build_head(layout *L, aprfs_err *err)
{
	char *meta = layout_metadata_json(L, err);
	if (!meta)
		return -err->code;
	uint64_t meta_size = strlen(meta), index_size = 0;
	tensor_plan **sorted = malloc(sizeof(*sorted) * (L->ntensors + 1));

	if (!sorted || meta_size > UINT32_MAX) {
		free(meta), free(sorted);
		return aprfs_fail(err, ENOMEM, "%s: metadata too large or out of memory",
				  aprfs_source_path(L->src));
	}
	for (size_t i = 0; i < L->ntensors; i++) {
		sorted[i] = &L->tensors[i];
		index_size += index_entry_size(&L->tensors[i]);
	}
	qsort(sorted, L->ntensors, sizeof(*sorted), name_cmp);
	uint64_t index_offset = APR_HEADER_SIZE + apr_align64(meta_size);
	L->data_offset = index_offset + apr_align64(index_size);

	uint64_t pos = L->data_offset;
	for (size_t i = 0; i < L->ntensors; i++) {
		L->tensors[i].offset = pos;
		pos += apr_align64(L->tensors[i].size);
	}
	L->file_size = pos + APR_FOOTER_SIZE;

	L->head = calloc(1, L->data_offset);
	if (!L->head) {
		free(meta), free(sorted);
		return aprfs_fail(err, ENOMEM, "out of memory");
	}
	memcpy(L->head + APR_HEADER_SIZE, meta, meta_size);
	uint8_t *w = L->head + index_offset;
	for (size_t i = 0; i < L->ntensors; i++)
		w = put_index_entry(w, sorted[i], L->data_offset);
	put_header(L->head, L, (uint32_t)meta_size, index_offset);
	free(meta);
	free(sorted);
	return 0;
}

int layout_build(layout *L, aprfs_source *s, int variant, const aprfs_opts *o, aprfs_err *err)
{
	const aprfs_codec *vc = aprfs_codec_find(aprfs_variant_names[variant]);
	size_t n = aprfs_source_count(s);

	memset(L, 0, sizeof(*L));
	L->src = s;
	L->variant = variant;
	L->opts = *o;
	L->tensors = calloc(n ? n : 1, sizeof(*L->tensors));
	if (!L->tensors)
		return aprfs_fail(err, ENOMEM, "out of memory");
	L->ntensors = n;
	for (size_t i = 0; i < n; i++) {
		tensor_plan *p = &L->tensors[i];
		p->src = aprfs_source_tensor(s, i);
		p->codec = aprfs_src_dtype_is_float(p->src->dtype)
			       ? codec_for(p->src, vc, o->nf4_block)
			       : NULL;
		plan_geometry(p, o);
		p->first_chunk = L->nchunks;
		L->nchunks += p->nchunks;
		pthread_mutex_init(&p->stat_lock, NULL);
	}
	int rc = build_head(L, err);
	if (rc)
		layout_free(L);
	return rc;
}

void layout_free(layout *L)
{
	for (size_t i = 0; i < L->ntensors; i++)
		pthread_mutex_destroy(&L->tensors[i].stat_lock);
	free(L->tensors);
	free(L->head);
	memset(L, 0, sizeof(*L));
}

uint64_t layout_chunk_offset(const tensor_plan *t, uint64_t k)
{
	return t->prefix + k * t->chunk_blocks * t->block_bytes;
}

uint64_t layout_chunk_bytes(const tensor_plan *t, uint64_t k)
{
	uint64_t first = k * t->chunk_blocks;
	uint64_t blocks =
	    t->nblocks - first < t->chunk_blocks ? t->nblocks - first : t->chunk_blocks;
	return blocks * t->block_bytes;
}

/* The last tensor whose u64 field at byte offset `field` is <= x. Both keys used below
 * (first_chunk, offset) ascend in data order, and an empty tensor shares its key with the
 * tensor after it, so the last of such a run is always the one that owns x. */
static tensor_plan *last_at_or_below(const layout *L, size_t field, uint64_t x)
{
	size_t lo = 0, hi = L->ntensors;

	while (hi - lo > 1) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t key;
		memcpy(&key, (const char *)&L->tensors[mid] + field, sizeof(key));
		if (key <= x)
			lo = mid;
		else
			hi = mid;
	}
	return &L->tensors[lo];
}

tensor_plan *layout_tensor_of_chunk(const layout *L, uint64_t c)
{
	return last_at_or_below(L, offsetof(tensor_plan, first_chunk), c);
}

tensor_plan *layout_tensor_at(const layout *L, uint64_t off)
{
	return last_at_or_below(L, offsetof(tensor_plan, offset), off);
}
