/* aprread.c - parse and verify an APR v2 file (see aprread.h). Checks run in file order:
 * header, metadata, index, tensor extents and sizes, padding, footer CRC; the first
 * failure stops the run with a message that says where. */
#include "format/aprread.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/crc.h"
#include "base/utf8.h"
#include "format/aprfmt.h"
#include "format/dtype.h"

#define BAD(...) aprfs_fail(err, EINVAL, __VA_ARGS__)

uint64_t apr_dtype_payload(uint8_t dtype, uint64_t n, uint64_t nf4_block)
{
	switch (dtype) {
	case APR_DT_F32:
	case APR_DT_I32: return 4 * n;
	case APR_DT_F16:
	case APR_DT_BF16: return 2 * n;
	case APR_DT_F64:
	case APR_DT_I64: return 8 * n;
	case APR_DT_I8:
	case APR_DT_U8: return n;
	case APR_DT_APR_Q8:
	case 9: return n ? 4 + n : 0;
	case APR_DT_APR_Q4:
	case 8: return 18 * ((n + 31) / 32);
	case APR_DT_Q4_K: return n % 256 ? UINT64_MAX : 144 * (n / 256);
	case APR_DT_Q6_K: return n % 256 ? UINT64_MAX : 210 * (n / 256);
	case APR_DT_NF4:
		if (!nf4_block || nf4_block % 2 || n % nf4_block)
			return UINT64_MAX;
		return (4 + nf4_block / 2) * (n / nf4_block);
	case APR_DT_TERNARY: return n ? 4 + (n + 3) / 4 : 0;
	default: return UINT64_MAX;
	}
}

static int all_zero(const uint8_t *p, uint64_t n)
{
	for (uint64_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

static int check_header(apr_file *f, aprfs_err *err)
{
	const uint8_t *h = f->map;
	if (f->size < APR_HEADER_SIZE + APR_FOOTER_SIZE)
		return BAD("%s: %llu bytes is too short for an APR file", f->path,
			   (unsigned long long)f->size);
	if (memcmp(h, "APR\0", 4) != 0)
		return BAD("%s: bad magic (not an APR v2 file)", f->path);
	f->version_major = h[4];
	f->version_minor = h[5];
	f->flags = apr_get16(h + APR_OFF_FLAGS);
	f->tensor_count = apr_get32(h + APR_OFF_TENSOR_COUNT);
	f->meta_offset = apr_get64(h + APR_OFF_META_OFFSET);
	f->meta_size = apr_get32(h + APR_OFF_META_SIZE);
	f->index_offset = apr_get64(h + APR_OFF_INDEX_OFFSET);
	f->data_offset = apr_get64(h + APR_OFF_DATA_OFFSET);
	f->header_crc = apr_get32(h + APR_OFF_CHECKSUM);
	f->footer_crc = apr_get32(f->map + f->size - APR_FOOTER_SIZE);
	if (f->header_crc != apr_header_checksum(h))
		return BAD("%s: header checksum 0x%08x does not match the header (0x%08x)",
			   f->path, f->header_crc, apr_header_checksum(h));
	if (f->version_major != 2 || f->version_minor != 0)
		return BAD("%s: version %u.%u, expected 2.0", f->path, h[4], h[5]);
	if (f->flags & APR_FLAG_COLUMN_MAJOR)
		return BAD("%s: LAYOUT_COLUMN_MAJOR flag set (readers reject it)", f->path);
	if (f->flags & (APR_FLAG_LZ4 | APR_FLAG_ZSTD | APR_FLAG_ENCRYPTED))
		return BAD(
		    "%s: flags 0x%04x: compressed or encrypted payloads cannot be verified "
		    "(and upstream readers do not decode them)",
		    f->path, f->flags);
	if (f->flags & ~0x0fffu)
		return BAD("%s: unknown flag bits 0x%04x", f->path, f->flags & ~0x0fffu);
	if (!all_zero(h + 44, 20))
		return BAD("%s: reserved header bytes 44..64 are not zero", f->path);
	if (f->meta_offset != APR_HEADER_SIZE)
		return BAD("%s: metadata_offset %llu, expected 64", f->path,
			   (unsigned long long)f->meta_offset);
	if (f->index_offset != APR_HEADER_SIZE + apr_align64(f->meta_size))
		return BAD("%s: tensor_index_offset %llu does not follow the padded metadata",
			   f->path, (unsigned long long)f->index_offset);
	if (f->data_offset < f->index_offset || f->data_offset % APR_ALIGN ||
	    f->data_offset > f->size - APR_FOOTER_SIZE)
		return BAD("%s: data_offset %llu is not a 64-aligned offset inside the file",
			   f->path, (unsigned long long)f->data_offset);
	return 0;
}

static int check_meta_types(apr_file *f, aprfs_err *err);

static int check_metadata(apr_file *f, aprfs_err *err)
{
	const char *json = (const char *)f->map + APR_HEADER_SIZE;
	if (f->meta_size == 0 || f->meta_offset + f->meta_size > f->index_offset)
		return BAD("%s: metadata size %u does not fit before the index", f->path,
			   f->meta_size);
	const char *end = NULL;
	size_t bad;
	if (!aprfs_utf8_valid(json, f->meta_size, &bad))
		return BAD("%s: metadata is not valid UTF-8 (byte %zu)", f->path, bad);
	f->meta = cJSON_ParseWithLengthOpts(json, f->meta_size, &end, 0);
	if (!f->meta || !cJSON_IsObject(f->meta))
		return BAD("%s: metadata is not a JSON object", f->path);
	if (end != json + f->meta_size)
		return BAD("%s: metadata has %td bytes after the JSON object", f->path,
			   json + f->meta_size - end);
	if (!all_zero(f->map + APR_HEADER_SIZE + f->meta_size,
		      f->index_offset - APR_HEADER_SIZE - f->meta_size))
		return BAD("%s: metadata padding is not zero", f->path);
	return check_meta_types(f, err);
}

/* The JSON types upstream readers demand for the keys they know. */
/* A JSON number that is a whole number in [0, limit). Compared as doubles, never cast
 * first: converting a double at or past 2^64 to an integer is undefined. */
static int json_uint_below(const cJSON *v, double limit)
{
	if (!cJSON_IsNumber(v))
		return 0;
	double d = v->valuedouble;
	return d >= 0 && d < limit && d == floor(d);
}

static int is_u64(const cJSON *v)
{
	return json_uint_below(v, 18446744073709551616.0); /* 2^64 */
}

static int meta_key_ok(const cJSON *v, const char *k)
{
	static const char *strs[] = {
	    "model_type",    "name",	    "original_format", "source",
	    "description",   "author",	    "version",	       "created_at",
	    "chat_template", "chat_format", "hf_architecture", "hf_model_type",
	    "architecture"};
	static const char *u64s[] = {"total_size",
				     "param_count",
				     "rope_type",
				     "head_dim",
				     "num_experts",
				     "num_experts_per_tok",
				     "moe_intermediate_size",
				     "hidden_size",
				     "num_layers",
				     "num_heads",
				     "num_kv_heads",
				     "vocab_size",
				     "intermediate_size",
				     "max_position_embeddings"};
	static const char *nullable_strs[] = {"license", "data_source", "data_license"};
	for (size_t i = 0; i < sizeof(strs) / sizeof(*strs); i++)
		if (!strcmp(k, strs[i]))
			return cJSON_IsString(v);
	for (size_t i = 0; i < sizeof(u64s) / sizeof(*u64s); i++)
		if (!strcmp(k, u64s[i]))
			return is_u64(v);
	for (size_t i = 0; i < sizeof(nullable_strs) / sizeof(*nullable_strs); i++)
		if (!strcmp(k, nullable_strs[i]))
			return cJSON_IsString(v) || cJSON_IsNull(v);
	if (!strcmp(k, "rope_theta") || !strcmp(k, "rms_norm_eps"))
		return cJSON_IsNumber(v) && aprfs_config_f32_ok(v->valuedouble);
	if (!strcmp(k, "special_tokens") || !strcmp(k, "sharding") ||
	    !strcmp(k, "quantization"))
		return cJSON_IsObject(v);
	return 1;
}

static int check_quantization(apr_file *f, const cJSON *q, aprfs_err *err)
{
	const cJSON *bs = cJSON_GetObjectItemCaseSensitive(q, "block_size");
	const cJSON *qt = cJSON_GetObjectItemCaseSensitive(q, "quant_type");
	const cJSON *bits = cJSON_GetObjectItemCaseSensitive(q, "bits");
	const cJSON *sym = cJSON_GetObjectItemCaseSensitive(q, "symmetric");
	if (!cJSON_IsString(qt) || !json_uint_below(bits, 256.0) || !cJSON_IsBool(sym))
		return BAD("%s: metadata quantization needs quant_type (string), bits (u8), "
			   "symmetric (bool)",
			   f->path);
	if (bs && !cJSON_IsNull(bs) && !is_u64(bs))
		return BAD(
		    "%s: metadata quantization.block_size must be a non-negative integer or "
		    "null",
		    f->path);
	return 0;
}

/* Upstream maps these Hugging Face spellings onto the canonical keys; both at once is a
 * "duplicate field" error for such readers. */
static int check_aliases(apr_file *f, aprfs_err *err)
{
	static const char *pairs[][2] = {
	    {"num_hidden_layers", "num_layers"},
	    {"num_attention_heads", "num_heads"},
	    {"num_key_value_heads", "num_kv_heads"},
	    {"layer_norm_eps", "rms_norm_eps"},
	    {"n_embd", "hidden_size"},
	    {"n_layer", "num_layers"},
	};
	for (size_t i = 0; i < sizeof(pairs) / sizeof(*pairs); i++)
		if (cJSON_GetObjectItemCaseSensitive(f->meta, pairs[i][0]) &&
		    cJSON_GetObjectItemCaseSensitive(f->meta, pairs[i][1]))
			return BAD("%s: metadata has both '%s' and its alias '%s'", f->path,
				   pairs[i][1], pairs[i][0]);
	return 0;
}

static int check_sharding(apr_file *f, aprfs_err *err)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(f->meta, "sharding");
	static const char *required[] = {"shard_count", "shard_index", "total_size"};
	for (size_t i = 0; s && i < 3; i++)
		if (!is_u64(cJSON_GetObjectItemCaseSensitive(s, required[i])))
			return BAD(
			    "%s: metadata sharding.%s is missing or not an unsigned integer",
			    f->path, required[i]);
	return 0;
}

static int check_meta_types(apr_file *f, aprfs_err *err)
{
	for (const cJSON *v = f->meta->child; v; v = v->next) {
		for (const cJSON *w = v->next; w; w = w->next)
			if (!strcmp(v->string, w->string))
				return BAD("%s: metadata key '%s' appears twice", f->path,
					   v->string);
		if (!meta_key_ok(v, v->string))
			return BAD("%s: metadata key '%s' has the wrong JSON type", f->path,
				   v->string);
	}
	int rc = check_aliases(f, err);
	if (!rc)
		rc = check_sharding(f, err);
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(f->meta, "quantization");
	return !rc && q ? check_quantization(f, q, err) : rc;
}

static uint64_t meta_nf4_block(const apr_file *f)
{
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(f->meta, "quantization");
	const cJSON *bs = q ? cJSON_GetObjectItemCaseSensitive(q, "block_size") : NULL;
	return cJSON_IsNumber(bs) ? (uint64_t)bs->valuedouble : 64;
}

/* One index entry at *pos (advanced). */
static int parse_entry(apr_file *f, uint64_t *pos, uint64_t end, apr_entry *e, aprfs_err *err)
{
	const uint8_t *p = f->map;
	uint64_t at = *pos;
	if (end - at < 2)
		return BAD("%s: index entry at %llu is truncated", f->path,
			   (unsigned long long)at);
	e->name_len = apr_get16(p + at);
	if (e->name_len == 0 || e->name_len > APR_MAX_NAME || end - at - 2 < e->name_len + 2u)
		return BAD("%s: index entry at %llu has a bad name length %u", f->path,
			   (unsigned long long)at, e->name_len);
	memcpy(e->name, p + at + 2, e->name_len);
	e->name[e->name_len] = '\0';
	size_t bad;
	if (!aprfs_utf8_valid(e->name, e->name_len, &bad) || memchr(e->name, 0, e->name_len))
		return BAD("%s: index entry at %llu: name is not valid UTF-8", f->path,
			   (unsigned long long)at);
	at += 2 + e->name_len;
	e->dtype = p[at];
	e->ndim = p[at + 1];
	at += 2;
	if (e->ndim > APR_MAX_NDIM || end - at < 8ull * e->ndim + 16)
		return BAD("%s: tensor '%s': bad ndim %u or truncated entry", f->path, e->name,
			   e->ndim);
	e->nelem = 1;
	for (int d = 0; d < e->ndim; d++, at += 8) {
		e->dims[d] = apr_get64(p + at);
		if (e->dims[d] && e->nelem > UINT64_MAX / e->dims[d])
			return BAD("%s: tensor '%s': shape overflows", f->path, e->name);
		e->nelem *= e->dims[d];
	}
	e->offset = apr_get64(p + at);
	e->size = apr_get64(p + at + 8);
	*pos = at + 16;
	if (!aprfs_apr_dtype_name(e->dtype) && e->dtype != 8 && e->dtype != 9)
		return BAD("%s: tensor '%s': unknown dtype id %u", f->path, e->name, e->dtype);
	return 0;
}

static int name_order(const apr_entry *a, const apr_entry *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (int)a->name_len - (int)b->name_len;
}

static int check_index(apr_file *f, aprfs_err *err)
{
	uint64_t pos = f->index_offset, end = f->data_offset;
	if (f->tensor_count > (end - pos) / 20)
		return BAD("%s: tensor_count %u cannot fit in a %llu-byte index", f->path,
			   f->tensor_count, (unsigned long long)(end - pos));
	f->entries = calloc(f->tensor_count ? f->tensor_count : 1, sizeof(*f->entries));
	if (!f->entries)
		return aprfs_fail(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < f->tensor_count; i++) {
		int rc = parse_entry(f, &pos, end, &f->entries[i], err);
		if (rc)
			return rc;
		f->nentries = i + 1;
		if (i > 0 && name_order(&f->entries[i - 1], &f->entries[i]) >= 0)
			return BAD("%s: index not sorted or names not unique at '%s'", f->path,
				   f->entries[i].name);
	}
	if (apr_align64(pos) != end || !all_zero(f->map + pos, end - pos))
		return BAD(
		    "%s: index padding is not zero or data_offset does not follow the index",
		    f->path);
	return 0;
}

static int by_offset(const void *a, const void *b)
{
	const apr_entry *x = *(apr_entry *const *)a, *y = *(apr_entry *const *)b;
	if (x->offset != y->offset)
		return (x->offset > y->offset) - (x->offset < y->offset);
	return (x->size > y->size) - (x->size < y->size); /* empty ones first at a tie */
}

/* One tensor in offset order, given where the previous one ended (pos): it must start at
 * the next 64-byte boundary (tensors are packed, so the size is data_offset +
 * sum(align64(size)) + 4), fit in the data section, have the size its dtype and shape
 * demand, and only zeros may stand between. */
static int check_extent(const apr_file *f, const apr_entry *e, uint64_t pos, uint64_t data_len,
			uint64_t nf4, aprfs_err *err)
{
	const char *dn = aprfs_apr_dtype_name(e->dtype);
	if (e->offset != apr_align64(pos))
		return BAD(
		    "%s: tensor '%s': offset %llu, expected %llu (64-aligned, right after "
		    "the previous tensor)",
		    f->path, e->name, (unsigned long long)e->offset,
		    (unsigned long long)apr_align64(pos));
	if (e->offset > data_len || e->size > data_len - e->offset)
		return BAD("%s: tensor '%s': extent beyond the data section", f->path, e->name);
	if (apr_dtype_payload(e->dtype, e->nelem, nf4) != e->size)
		return BAD("%s: tensor '%s': size %llu does not match %s of %llu elements",
			   f->path, e->name, (unsigned long long)e->size, dn ? dn : "?",
			   (unsigned long long)e->nelem);
	if (!all_zero(f->map + f->data_offset + pos, e->offset - pos))
		return BAD("%s: non-zero padding before tensor '%s'", f->path, e->name);
	return 0;
}

static int check_data(apr_file *f, aprfs_err *err)
{
	uint64_t data_len = f->size - APR_FOOTER_SIZE - f->data_offset;
	uint64_t nf4 = meta_nf4_block(f), pos = 0;
	apr_entry **order = malloc(sizeof(*order) * (f->nentries + 1));
	int rc = 0;

	if (!order)
		return aprfs_fail(err, ENOMEM, "out of memory");
	for (uint32_t i = 0; i < f->nentries; i++)
		order[i] = &f->entries[i];
	qsort(order, f->nentries, sizeof(*order), by_offset);
	for (uint32_t i = 0; i < f->nentries && !rc; i++) {
		rc = check_extent(f, order[i], pos, data_len, nf4, err);
		pos = order[i]->offset + order[i]->size;
	}
	free(order);
	if (rc)
		return rc;
	if (apr_align64(pos) > data_len)
		return BAD(
		    "%s: %llu bytes short: the last tensor's padding runs into the footer "
		    "(truncated?)",
		    f->path, (unsigned long long)(apr_align64(pos) - data_len));
	if (!all_zero(f->map + f->data_offset + pos, apr_align64(pos) - pos))
		return BAD("%s: non-zero padding after the last tensor", f->path);
	if (apr_align64(pos) < data_len)
		return BAD(
		    "%s: %llu unexpected bytes between the last tensor's padding and the "
		    "footer",
		    f->path, (unsigned long long)(data_len - apr_align64(pos)));
	return 0;
}

static int check_footer(apr_file *f, aprfs_err *err)
{
	uint32_t crc = aprfs_crc32(0, f->map, f->size - APR_FOOTER_SIZE);
	if (crc != f->footer_crc)
		return BAD("%s: footer CRC 0x%08x does not match the contents (0x%08x)",
			   f->path, f->footer_crc, crc);
	return 0;
}

/* The checks, in file order, on f->map[0..f->size). */
static int verify(apr_file *f, aprfs_err *err)
{
	if (f->size == 0)
		return BAD("%s: empty file", f->path);
	int rc = check_header(f, err);
	if (!rc)
		rc = check_metadata(f, err);
	if (!rc)
		rc = check_index(f, err);
	if (!rc)
		rc = check_data(f, err);
	if (!rc)
		rc = check_footer(f, err);
	return rc;
}

int apr_verify_buffer(const char *path, const uint8_t *buf, uint64_t size, apr_file *f,
		      aprfs_err *err)
{
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->path = path;
	f->map = size ? buf : NULL;
	f->size = size;
	return verify(f, err);
}

int apr_open_verify(const char *path, apr_file *f, aprfs_err *err)
{
	struct stat st;
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	f->path = path;
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0)
		return aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(f->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return aprfs_fail(err, EINVAL, "%s: not a regular file", path);
	f->size = (uint64_t)st.st_size;
	if (f->size == 0)
		return verify(f, err);
	void *m = mmap(NULL, f->size, PROT_READ, MAP_PRIVATE, f->fd, 0);
	if (m == MAP_FAILED)
		return aprfs_fail(err, errno, "%s: mmap: %s", path, strerror(errno));
	f->map = m;
	f->mapped = 1;
	return verify(f, err);
}

void apr_close(apr_file *f)
{
	if (f->mapped)
		munmap((void *)f->map, f->size);
	if (f->fd >= 0)
		close(f->fd);
	cJSON_Delete(f->meta);
	free(f->entries);
	memset(f, 0, sizeof(*f));
}
