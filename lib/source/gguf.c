/* gguf.c - the GGUF format (llama.cpp's model files), versions 2 and 3, little-endian:
 * header, key/value metadata (every value type, nested arrays), tensor infos and the
 * aligned data section; every count, length, shape and offset checked before it is used. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/utf8.h"
#include "source/gguf.h"
#include "source/source_impl.h"

enum {
	T_U8,
	T_I8,
	T_U16,
	T_I16,
	T_U32,
	T_I32,
	T_F32,
	T_BOOL,
	T_STRING,
	T_ARRAY,
	T_U64,
	T_I64,
	T_F64,
	T_COUNT
};

#define DEFAULT_ALIGNMENT 32
#define MAX_DIMS	  4 /* GGML_MAX_DIMS */
#define MAX_ARRAY_DEPTH	  8
#define MAX_KEY		  65535

/* ---- reading the header: a bounded cursor ----
 * Everything before the data section is read through this cursor, which refuses to go
 * past the end of the input: a length or count that lies is caught at its first use. */

typedef struct cur {
	const char *path;
	const aprfs_gguf_input *in;
	uint64_t pos;
	uint8_t buf[65536];
	uint64_t buf_off, buf_len; /* the input's bytes [buf_off, buf_off + buf_len) */
	aprfs_err *err;
} cur;

static int truncated(cur *c, const char *what)
{
	return aprfs_fail(c->err, EINVAL,
			  "%s: truncated: %s at byte %" PRIu64 " runs past the "
			  "end of the file (%" PRIu64 " bytes)",
			  c->path, what, c->pos, c->in->size);
}

static int get(cur *c, void *dst, uint64_t n, const char *what)
{
	uint8_t *d = dst;

	if (n > c->in->size || c->pos > c->in->size - n)
		return truncated(c, what);
	while (n) {
		if (c->pos < c->buf_off || c->pos >= c->buf_off + c->buf_len) {
			uint64_t len = c->in->size - c->pos;
			len = len < sizeof(c->buf) ? len : sizeof(c->buf);
			if (c->in->read(c->in->ctx, c->pos, c->buf, (size_t)len) != 0)
				return aprfs_fail(c->err, EIO,
						  "%s: read error at byte %" PRIu64, c->path,
						  c->pos);
			c->buf_off = c->pos;
			c->buf_len = len;
		}
		uint64_t k = c->buf_off + c->buf_len - c->pos;
		k = k < n ? k : n;
		memcpy(d, c->buf + (c->pos - c->buf_off), (size_t)k);
		d += k;
		c->pos += k;
		n -= k;
	}
	return 0;
}

static int skip(cur *c, uint64_t n, const char *what)
{
	if (n > c->in->size || c->pos > c->in->size - n)
		return truncated(c, what);
	c->pos += n;
	return 0;
}

static int get_u32(cur *c, uint32_t *v, const char *what)
{
	uint8_t b[4];
	int rc = get(c, b, 4, what);

	*v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
	return rc;
}

static int get_u64(cur *c, uint64_t *v, const char *what)
{
	uint32_t lo = 0, hi = 0;
	int rc = get_u32(c, &lo, what);

	if (rc == 0)
		rc = get_u32(c, &hi, what);
	*v = (uint64_t)hi << 32 | lo;
	return rc;
}

/* A string: u64 length, then bytes. Read into a malloc'd NUL-terminated buffer when out is
 * not NULL (and then limited to `limit` bytes, valid UTF-8 without NUL); skipped else. A
 * string over the limit is an error, or, with long_ok, skipped leaving *out NULL. */
static int get_string_opt(cur *c, char **out, uint64_t limit, int long_ok, const char *what)
{
	uint64_t len;
	size_t bad;
	int rc;

	if (out) /* first: whatever happens, *out is never left pointing at freed memory */
		*out = NULL;
	if ((rc = get_u64(c, &len, what)) || !out)
		return rc ? rc : skip(c, len, what);
	if (len > c->in->size - c->pos)
		return truncated(c, what);
	if (len > limit && long_ok)
		return skip(c, len, what);
	if (len > limit)
		return aprfs_fail(c->err, EINVAL,
				  "%s: %s of %" PRIu64 " bytes (at most %" PRIu64 ")", c->path,
				  what, len, limit);
	if (!(*out = malloc((size_t)len + 1)))
		return aprfs_fail(c->err, ENOMEM, "%s: out of memory", c->path);
	if ((rc = get(c, *out, len, what)) == 0) {
		(*out)[len] = '\0';
		if (memchr(*out, 0, (size_t)len) || !aprfs_utf8_valid(*out, (size_t)len, &bad))
			rc = aprfs_fail(c->err, EINVAL, "%s: %s is not valid UTF-8 text",
					c->path, what);
	}
	if (rc) {
		free(*out);
		*out = NULL;
	}
	return rc;
}

static int get_string(cur *c, char **out, uint64_t limit, const char *what)
{
	return get_string_opt(c, out, limit, 0, what);
}

/* ---- key/value metadata ---- */

static const uint8_t scalar_size[T_COUNT] = {
    [T_U8] = 1,	 [T_I8] = 1,   [T_U16] = 2, [T_I16] = 2, [T_U32] = 4, [T_I32] = 4,
    [T_F32] = 4, [T_BOOL] = 1, [T_U64] = 8, [T_I64] = 8, [T_F64] = 8,
};

/* A scalar as the facts want it: an integer (when whole and non-negative) and a real. */
typedef struct scalar {
	int is_int, is_real;
	uint64_t u;
	double d;
} scalar;

static int read_scalar(cur *c, uint32_t type, scalar *v, const char *what)
{
	uint8_t b[8] = {0};
	int rc = get(c, b, scalar_size[type], what);
	uint64_t raw = 0;

	for (int i = 7; i >= 0; i--)
		raw = raw << 8 | b[i];
	memset(v, 0, sizeof(*v));
	switch (type) {
	case T_U8:
	case T_U16:
	case T_U32:
	case T_U64: v->is_int = 1, v->u = raw, v->d = (double)raw; break;
	case T_I8: v->u = (uint64_t)(int64_t)(int8_t)raw; goto sign;
	case T_I16: v->u = (uint64_t)(int64_t)(int16_t)raw; goto sign;
	case T_I32: v->u = (uint64_t)(int64_t)(int32_t)raw; goto sign;
	case T_I64:
		v->u = raw;
	sign:
		v->is_int = (int64_t)v->u >= 0;
		v->d = (double)(int64_t)v->u;
		break;
	case T_F32: {
		float f;
		uint32_t u32 = (uint32_t)raw;
		memcpy(&f, &u32, 4);
		v->is_real = 1, v->d = f;
		break;
	}
	case T_F64:
		memcpy(&v->d, &raw, 8);
		v->is_real = 1;
		break;
	default: break; /* bool: neither */
	}
	return rc;
}

/* The facts a key feeds, recognised by name: general.* directly, <arch>.* once the
 * architecture is known (it may come after them, so they are kept by suffix). */
enum {
	F_HIDDEN,
	F_LAYERS,
	F_HEADS,
	F_KV_HEADS,
	F_MAXPOS,
	F_INTER,
	F_ROPE,
	F_EPS,
	F_VOCAB,
	F_NFACTS
};

static const struct {
	const char *suffix;
	uint32_t bit;
} fact_keys[F_NFACTS] = {
    [F_HIDDEN] = {".embedding_length", APRFS_CFG_HIDDEN},
    [F_LAYERS] = {".block_count", APRFS_CFG_LAYERS},
    [F_HEADS] = {".attention.head_count", APRFS_CFG_HEADS},
    [F_KV_HEADS] = {".attention.head_count_kv", APRFS_CFG_KV_HEADS},
    [F_MAXPOS] = {".context_length", APRFS_CFG_MAXPOS},
    [F_INTER] = {".feed_forward_length", APRFS_CFG_INTER},
    [F_ROPE] = {".rope.freq_base", APRFS_CFG_ROPE_THETA},
    [F_EPS] = {".attention.layer_norm_rms_epsilon", APRFS_CFG_RMS_EPS},
    [F_VOCAB] = {".vocab_size", APRFS_CFG_VOCAB},
};

typedef struct fact {
	char *prefix; /* the key before the suffix: the architecture it belongs to */
	uint32_t type;
	scalar v;
} fact;

typedef struct kv_state {
	char *arch, *name;
	fact facts[F_NFACTS][4]; /* a few architectures' worth: extra ones are ignored */
	int nfacts[F_NFACTS];
	int have_tokens;
	uint64_t ntokens;
	uint32_t alignment;
	int have_alignment;
	char **keys; /* every key, for the duplicate check */
	uint64_t nkeys;
} kv_state;

static void kv_free(kv_state *k)
{
	free(k->arch);
	free(k->name);
	for (int f = 0; f < F_NFACTS; f++)
		for (int i = 0; i < k->nfacts[f]; i++)
			free(k->facts[f][i].prefix);
	for (uint64_t i = 0; i < k->nkeys; i++)
		free(k->keys[i]);
	free(k->keys);
}

static int skip_value(cur *c, uint32_t type, int depth, const char *key);

/* An array: element type, count, elements (arrays of arrays included, to a depth). */
static int skip_array(cur *c, int depth, const char *key, uint64_t *count)
{
	uint32_t et;
	uint64_t n;
	int rc = get_u32(c, &et, "array type");

	if (rc == 0)
		rc = get_u64(c, &n, "array length");
	if (rc)
		return rc;
	*count = n;
	if (et >= T_COUNT)
		return aprfs_fail(c->err, EINVAL, "%s: key '%s': unknown array element type %u",
				  c->path, key, et);
	if (depth >= MAX_ARRAY_DEPTH)
		return aprfs_fail(c->err, EINVAL, "%s: key '%s': arrays nested deeper than %d",
				  c->path, key, MAX_ARRAY_DEPTH);
	/* Each element takes at least its size (8 bytes for a string or array header). */
	uint64_t least = et == T_STRING || et == T_ARRAY ? 8 : scalar_size[et];
	if (n > (c->in->size - c->pos) / least)
		return aprfs_fail(c->err, EINVAL,
				  "%s: key '%s': array of %" PRIu64 " elements does not fit "
				  "in the file",
				  c->path, key, n);
	if (et != T_STRING && et != T_ARRAY)
		return skip(c, n * least, "array");
	for (uint64_t i = 0; i < n && rc == 0; i++)
		rc = skip_value(c, et, depth + 1, key);
	return rc;
}

static int skip_value(cur *c, uint32_t type, int depth, const char *key)
{
	uint64_t n;

	if (type == T_STRING)
		return get_string(c, NULL, 0, "string");
	if (type == T_ARRAY)
		return skip_array(c, depth, key, &n);
	return skip(c, scalar_size[type], "value");
}

static const char *match_suffix(const char *key, int *f)
{
	size_t n = strlen(key);

	for (int i = 0; i < F_NFACTS; i++) {
		size_t m = strlen(fact_keys[i].suffix);
		if (n > m && strcmp(key + n - m, fact_keys[i].suffix) == 0) {
			*f = i;
			return key + n - m;
		}
	}
	return NULL;
}

static void warn_fact(const char *path, const char *key, const char *why)
{
	char msg[600];

	snprintf(msg, sizeof(msg), "%s: %s", path, key);
	aprfs_log_once(APRFS_LOG_WARN, msg, "%s: %s %s; left out of the metadata", path, key,
		       why);
}

/* One value: kept if it is a fact, read and dropped otherwise. */
static int read_value(cur *c, kv_state *k, const char *key, uint32_t type)
{
	int f;
	const char *suffix;

	if (type == T_STRING &&
	    (!strcmp(key, "general.architecture") || !strcmp(key, "general.name"))) {
		char **dst = !strcmp(key, "general.name") ? &k->name : &k->arch;
		free(*dst); /* a repeated key: refused as a duplicate once all are read */
		*dst = NULL;
		int rc = get_string_opt(c, dst, 255, 1, key);
		if (rc == 0 && !*dst)
			warn_fact(c->path, key, "is longer than 255 bytes");
		return rc;
	}
	if (!strcmp(key, "general.alignment")) {
		scalar v;
		if (type != T_U32)
			return aprfs_fail(c->err, EINVAL, "%s: general.alignment is not a u32",
					  c->path);
		int rc = read_scalar(c, type, &v, key);
		k->alignment = (uint32_t)v.u;
		k->have_alignment = 1;
		return rc;
	}
	if (!strcmp(key, "tokenizer.ggml.tokens") && type == T_ARRAY) {
		k->have_tokens = 1;
		return skip_array(c, 0, key, &k->ntokens);
	}
	if (type != T_STRING && type != T_ARRAY && (suffix = match_suffix(key, &f)) &&
	    k->nfacts[f] < 4) {
		fact *x = &k->facts[f][k->nfacts[f]];
		if (!(x->prefix = strndup(key, (size_t)(suffix - key))))
			return aprfs_fail(c->err, ENOMEM, "%s: out of memory", c->path);
		k->nfacts[f]++;
		x->type = type;
		return read_scalar(c, type, &x->v, key);
	}
	return skip_value(c, type, 0, key);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int read_kvs(cur *c, uint64_t nkv, kv_state *k)
{
	int rc = 0;

	/* A key/value pair takes at least 13 bytes (8 + a 1-byte key + 4 + an empty value). */
	if (nkv > (c->in->size - c->pos) / 13)
		return aprfs_fail(c->err, EINVAL,
				  "%s: %" PRIu64
				  " key/value pairs claimed: more than the file holds",
				  c->path, nkv);
	if (!(k->keys = calloc((size_t)nkv + 1, sizeof(*k->keys))))
		return aprfs_fail(c->err, ENOMEM, "%s: out of memory", c->path);
	for (uint64_t i = 0; i < nkv && rc == 0; i++) {
		char *key = NULL;
		uint32_t type = 0;

		rc = get_string(c, &key, MAX_KEY, "key");
		if (rc == 0 && !*key)
			rc = aprfs_fail(c->err, EINVAL, "%s: empty key", c->path);
		if (key)
			k->keys[k->nkeys++] = key;
		if (rc == 0)
			rc = get_u32(c, &type, "value type");
		if (rc == 0 && type >= T_COUNT)
			rc = aprfs_fail(c->err, EINVAL, "%s: key '%s': unknown value type %u",
					c->path, key, type);
		if (rc == 0)
			rc = read_value(c, k, key, type);
	}
	if (rc == 0) {
		qsort(k->keys, (size_t)k->nkeys, sizeof(*k->keys), cmp_str);
		for (uint64_t i = 1; i < k->nkeys && rc == 0; i++)
			if (!strcmp(k->keys[i - 1], k->keys[i]))
				rc = aprfs_fail(c->err, EINVAL, "%s: duplicate key '%s'",
						c->path, k->keys[i]);
	}
	return rc;
}

/* ---- facts for the metadata ---- */

/* The architecture's own facts into cfg: integers as non-negative whole numbers, reals
 * as numbers an f32 holds; anything else is left out with a warning. */
static void set_facts(const char *path, const kv_state *k, aprfs_model_config *cfg)
{
	for (int f = 0; f < F_NFACTS; f++) {
		for (int i = 0; i < k->nfacts[f]; i++) {
			const fact *x = &k->facts[f][i];
			char key[400];
			if (strcmp(x->prefix, k->arch) != 0)
				continue;
			snprintf(key, sizeof(key), "%s%s", x->prefix, fact_keys[f].suffix);
			uint64_t *iv = aprfs_config_int(cfg, fact_keys[f].bit);
			double *rv = aprfs_config_real(cfg, fact_keys[f].bit);
			if (iv && x->v.is_int)
				*iv = x->v.u;
			else if (rv && (x->v.is_real || x->v.is_int) &&
				 aprfs_config_f32_ok(x->v.d))
				*rv = x->v.d;
			else {
				warn_fact(path, key,
					  iv ? "is not a non-negative integer"
					     : "is not a number an f32 holds");
				continue;
			}
			cfg->has |= fact_keys[f].bit;
		}
	}
}

static void set_config(const char *path, const kv_state *k, aprfs_model_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	if (k->name && *k->name) {
		snprintf(cfg->name, sizeof(cfg->name), "%s", k->name);
		cfg->has |= APRFS_CFG_NAME;
	}
	if (!k->arch || !*k->arch || strlen(k->arch) >= sizeof(cfg->model_type))
		return;
	cfg->present = 1;
	snprintf(cfg->model_type, sizeof(cfg->model_type), "%s", k->arch);
	cfg->has |= APRFS_CFG_MODEL_TYPE | APRFS_CFG_ARCH;
	set_facts(path, k, cfg);
	if (!(cfg->has & APRFS_CFG_VOCAB) && k->have_tokens) {
		cfg->vocab_size = k->ntokens;
		cfg->has |= APRFS_CFG_VOCAB;
	}
}

/* ---- tensor infos ---- */

static int tensor_type(cur *c, aprfs_tensor *t, uint32_t type)
{
	const char *name = aprfs_ggml_type_name(type);

	t->dtype = aprfs_src_dtype_from_ggml(type);
	if (t->dtype == APRFS_SRC_COUNT && name)
		return aprfs_fail(
		    c->err, ENOTSUP,
		    "%s: tensor '%s': type %s is not supported (aprfs reads F32, F16, "
		    "BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1 and Q2_K..Q6_K)",
		    c->path, t->name, name);
	if (t->dtype == APRFS_SRC_COUNT)
		return aprfs_fail(c->err, EINVAL, "%s: tensor '%s': unknown type %u", c->path,
				  t->name, type);
	return 0;
}

/* GGML's ne[] lists the fastest dimension first; APR shapes are row-major, slowest first. */
static int tensor_shape(cur *c, aprfs_tensor *t, uint32_t ndim, const uint64_t *ne)
{
	uint64_t be = aprfs_src_dtype_block_elems(t->dtype);

	t->ndim = (uint8_t)ndim;
	for (uint32_t d = 0; d < ndim; d++) {
		if (ne[d] == 0 || ne[d] > INT64_MAX)
			return aprfs_fail(c->err, EINVAL,
					  "%s: tensor '%s': dimension %u is %" PRId64
					  " (must be positive)",
					  c->path, t->name, d, (int64_t)ne[d]);
		t->dims[ndim - 1 - d] = ne[d];
	}
	if (ne[0] % be)
		return aprfs_fail(c->err, EINVAL,
				  "%s: tensor '%s': rows of %" PRIu64
				  " are not whole %s blocks of %" PRIu64,
				  c->path, t->name, ne[0], aprfs_src_dtype_name(t->dtype), be);
	return src_set_size(c->path, t, c->err);
}

static int read_tensor_info(cur *c, aprfs_tensor *t, uint64_t *rel_off)
{
	char *name = NULL;
	uint32_t ndim = 0, type = 0;
	uint64_t ne[MAX_DIMS] = {0};
	int rc = get_string(c, &name, APRFS_MAX_NAME, "tensor name");

	if (rc)
		return rc;
	t->name = name;
	t->name_len = (uint16_t)strlen(name);
	if ((rc = src_check_name(c->path, name, t->name_len, c->err)) ||
	    (rc = get_u32(c, &ndim, "dimension count")))
		return rc;
	if (ndim == 0 || ndim > MAX_DIMS) /* before ne[] is filled */
		return aprfs_fail(c->err, EINVAL, "%s: tensor '%s': %u dimensions (1 to %d)",
				  c->path, name, ndim, MAX_DIMS);
	for (uint32_t d = 0; d < ndim && rc == 0; d++)
		rc = get_u64(c, &ne[d], "dimension");
	if (rc == 0)
		rc = get_u32(c, &type, "tensor type");
	if (rc == 0)
		rc = get_u64(c, rel_off, "tensor offset");
	if (rc == 0)
		rc = tensor_type(c, t, type);
	if (rc == 0)
		rc = tensor_shape(c, t, ndim, ne);
	return rc;
}

/* Offsets: aligned, inside the file, not overlapping. Tensors come back in data order. */
static int place_tensors(cur *c, aprfs_tensor *t, size_t n, const uint64_t *rel,
			 uint64_t data_start, uint32_t alignment)
{
	for (size_t i = 0; i < n; i++) {
		if (rel[i] % alignment)
			return aprfs_fail(c->err, EINVAL,
					  "%s: tensor '%s': offset %" PRIu64
					  " is not a multiple of the alignment %u",
					  c->path, t[i].name, rel[i], alignment);
		if (rel[i] > c->in->size - data_start ||
		    t[i].nbytes > c->in->size - data_start - rel[i])
			return aprfs_fail(c->err, EINVAL,
					  "%s: tensor '%s': %" PRIu64
					  " bytes at offset %" PRIu64
					  " run past the end of the file",
					  c->path, t[i].name, t[i].nbytes, rel[i]);
		t[i].file_off = data_start + rel[i];
	}
	return src_order_tensors(c->path, t, n, c->err);
}

static int read_tensors(cur *c, uint64_t nt, uint32_t alignment, aprfs_gguf_info *out)
{
	uint64_t *rel;
	int rc = 0;

	/* A tensor info takes at least 33 bytes (8 + a 1-byte name + 4 + one 8-byte dim + 4 +
	 * 8): a count the file cannot hold is refused before anything is allocated. */
	if (nt > (c->in->size - c->pos) / 33)
		return aprfs_fail(c->err, EINVAL,
				  "%s: %" PRIu64 " tensors claimed: more than the file holds",
				  c->path, nt);
	out->tensors = calloc((size_t)nt + 1, sizeof(*out->tensors));
	rel = calloc((size_t)nt + 1, sizeof(*rel));
	if (!out->tensors || !rel) {
		free(rel);
		return aprfs_fail(c->err, ENOMEM, "%s: out of memory", c->path);
	}
	for (uint64_t i = 0; i < nt && rc == 0; i++, out->count++)
		rc = read_tensor_info(c, &out->tensors[i], &rel[i]);
	if (rc == 0) {
		out->data_start = (c->pos + alignment - 1) / alignment * alignment;
		if (out->data_start > c->in->size)
			rc = aprfs_fail(c->err, EINVAL, "%s: truncated before the data section",
					c->path);
	}
	if (rc == 0)
		rc =
		    place_tensors(c, out->tensors, out->count, rel, out->data_start, alignment);
	free(rel);
	return rc;
}

/* ---- the whole header ---- */

static int read_preamble(cur *c, uint64_t *nt, uint64_t *nkv)
{
	uint8_t magic[4];
	uint32_t version;
	int rc = get(c, magic, 4, "magic");

	if (rc == 0 && memcmp(magic, "GGUF", 4) != 0)
		return aprfs_fail(c->err, EINVAL, "%s: not a GGUF file (bad magic)", c->path);
	if (rc == 0)
		rc = get_u32(c, &version, "version");
	if (rc)
		return rc;
	if (version == 1)
		return aprfs_fail(
		    c->err, EINVAL,
		    "%s: GGUF version 1 is not supported (convert it to version 3)", c->path);
	if (version != 2 && version != 3)
		return aprfs_fail(c->err, EINVAL,
				  "%s: GGUF version %u is not supported (2 and 3 are; a "
				  "big-endian file reads as a huge version)",
				  c->path, version);
	if ((rc = get_u64(c, nt, "tensor count")) == 0)
		rc = get_u64(c, nkv, "key/value count");
	return rc;
}

void aprfs_gguf_info_free(aprfs_gguf_info *g)
{
	aprfs_tensors_free(g->tensors, g->count);
	memset(g, 0, sizeof(*g));
}

int aprfs_gguf_parse(const char *path, const aprfs_gguf_input *in, aprfs_gguf_info *out,
		     aprfs_err *err)
{
	aprfs_err local = {0};
	cur *c = calloc(1, sizeof(*c));
	kv_state k = {0};
	uint64_t nt = 0, nkv = 0;
	int rc;

	memset(out, 0, sizeof(*out));
	if (!c)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	c->path = path;
	c->in = in;
	c->err = err ? err : &local;
	rc = read_preamble(c, &nt, &nkv);
	if (rc == 0)
		rc = read_kvs(c, nkv, &k);
	out->alignment = k.have_alignment ? k.alignment : DEFAULT_ALIGNMENT;
	if (rc == 0 && (out->alignment == 0 || (out->alignment & (out->alignment - 1))))
		rc =
		    aprfs_fail(c->err, EINVAL, "%s: general.alignment %u is not a power of two",
			       path, out->alignment);
	if (rc == 0)
		rc = read_tensors(c, nt, out->alignment, out);
	if (rc == 0)
		set_config(path, &k, &out->cfg);
	kv_free(&k);
	free(c);
	if (rc)
		aprfs_gguf_info_free(out);
	return rc;
}

/* ---- the format ---- */

static int read_fd(void *ctx, uint64_t off, void *dst, size_t n)
{
	return src_pread_full(*(int *)ctx, dst, n, off);
}

/* Everything before the data section (header, keys, tensor infos) into the fingerprint. */
static int fingerprint_header(aprfs_source *s, int fd, uint64_t len, aprfs_err *err)
{
	uint8_t buf[65536];

	for (uint64_t off = 0; off < len; off += sizeof(buf)) {
		size_t n = len - off < sizeof(buf) ? (size_t)(len - off) : sizeof(buf);
		int rc = src_pread_full(fd, buf, n, off);
		if (rc)
			return aprfs_fail(err, -rc, "%s: %s", s->path, strerror(-rc));
		src_fingerprint_add(s, buf, n);
	}
	return 0;
}

/* The header is read with pread, not through the mapping: a file truncated meanwhile then
 * fails here with an error instead of faulting. */
static int open_gguf(aprfs_source *s, aprfs_err *err)
{
	aprfs_gguf_info g;
	src_file *f;
	int rc = src_add_file(s, s->path, &f, err);

	if (rc)
		return rc;
	aprfs_gguf_input in = {read_fd, &f->fd, f->size};
	if ((rc = aprfs_gguf_parse(s->path, &in, &g, err)))
		return rc;
	if ((rc = fingerprint_header(s, f->fd, g.data_start, err))) {
		aprfs_gguf_info_free(&g);
		return rc;
	}
	s->tensors = g.tensors;
	s->count = g.count;
	s->cfg = g.cfg;
	return 0;
}

const src_format src_gguf = {
    .name = "gguf",
    .suffix = ".gguf",
    .kind = APRFS_CKPT_SINGLE,
    .open = open_gguf,
};
