/* genmodel.c - deterministic synthetic checkpoints for the demo, tests and benchmarks:
 * llama-shaped safetensors (single file or sharded with an index) with config.json, or
 * with --hostile a directory of broken checkpoints, one per defect, plus EXPECTED. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "format/dtype.h"
#include "synth.h"

#define GEN_TOOL "genmodel"
#include "gen_util.h"

/* ---- growable string (headers, index, config) ---- */

typedef struct sbuf {
	char *p;
	size_t len, cap;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (b->len + (size_t)n + 1 > b->cap) {
		b->cap = (b->len + (size_t)n + 1) * 2;
		if (!(b->p = realloc(b->p, b->cap)))
			die("out of memory");
	}
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* ---- deterministic values (synth.h) ---- */

static uint32_t f32_bits(float f)
{
	uint32_t u;

	memcpy(&u, &f, 4);
	return u;
}

/* Round to nearest even; the values here are never NaN. */
static uint16_t to_bf16(float f)
{
	uint32_t u = f32_bits(f);

	return (uint16_t)((u + 0x7FFF + (u >> 16 & 1)) >> 16);
}

static uint16_t to_f16(float f)
{
	uint32_t u = f32_bits(f), sign = u >> 16 & 0x8000, mant;
	int exp = (int)(u >> 23 & 0xFF) - 127 + 15;

	u &= 0x7FFFFFFF;
	if (u >= 0x47800000) /* >= 65536 after rounding territory: inf (no NaNs here) */
		return (uint16_t)(sign | 0x7C00);
	if (exp <= 0) { /* subnormal or zero: shift the implicit bit in, round to even */
		int shift = 14 - exp;

		if (shift > 24)
			return (uint16_t)sign;
		mant = (u & 0x7FFFFF) | 0x800000;
		uint32_t half = mant >> shift, rem = mant & ((1u << shift) - 1),
			 mid = 1u << (shift - 1);
		half += rem > mid || (rem == mid && (half & 1));
		return (uint16_t)(sign | half);
	}
	mant = u & 0x7FFFFF;
	uint32_t h = (uint32_t)exp << 10 | mant >> 13, rem = mant & 0x1FFF;
	h += rem > 0x1000 || (rem == 0x1000 && (h & 1)); /* a carry rolls into the exponent */
	return (uint16_t)(sign | h);
}

/* ---- the model's tensor list ---- */

enum kind { K_WEIGHT, K_NORM, K_IOTA, K_SEQ, K_RANDBYTE, K_MASK };

typedef struct gtensor {
	char name[96];
	aprfs_src_dtype dtype;
	int ndim;
	uint64_t dims[2];
	enum kind kind;
	uint64_t nelem, nbytes;
	uint32_t shard;
	uint64_t begin; /* within its shard's data section */
	int outliers;	/* every 50th column 8x larger (--outliers) */
} gtensor;

typedef struct model {
	gtensor *t;
	size_t n, cap;
} model;

typedef struct opts {
	aprfs_src_dtype dtype;
	uint64_t layers, hidden, inter, vocab, heads, kv_heads, size_mb;
	unsigned shards;
	const char *stem, *outdir;
	int odd, config, hostile;
	uint64_t seed;
	uint64_t experts; /* extra small tensors, as a mixture of experts has by the 10^5 */
	int tied;	  /* no lm_head.weight: the embedding serves as output */
	int outliers;	  /* 2-D weights: every 50th column (2%) 8x larger */
} opts;

static void add(model *m, enum kind k, aprfs_src_dtype dt, int ndim, uint64_t d0, uint64_t d1,
		const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void add(model *m, enum kind k, aprfs_src_dtype dt, int ndim, uint64_t d0, uint64_t d1,
		const char *fmt, ...)
{
	gtensor *t;
	va_list ap;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		if (!(m->t = realloc(m->t, m->cap * sizeof(*m->t))))
			die("out of memory");
	}
	t = &m->t[m->n++];
	memset(t, 0, sizeof(*t));
	va_start(ap, fmt);
	vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	t->kind = k;
	t->dtype = dt;
	t->ndim = ndim;
	t->dims[0] = d0;
	t->dims[1] = d1;
	t->nelem = (ndim > 0 ? d0 : 1) * (ndim > 1 ? d1 : 1);
	t->nbytes = t->nelem * aprfs_src_dtype_size(dt);
}

static void add_layer(model *m, const opts *o, uint64_t i)
{
	uint64_t h = o->hidden, kv = o->kv_heads * o->hidden / o->heads;
	aprfs_src_dtype d = o->dtype;
	const char *p = "model.layers.";

	add(m, K_NORM, d, 1, h, 0, "%s%" PRIu64 ".input_layernorm.weight", p, i);
	add(m, K_WEIGHT, d, 2, h, h, "%s%" PRIu64 ".self_attn.q_proj.weight", p, i);
	add(m, K_WEIGHT, d, 2, kv, h, "%s%" PRIu64 ".self_attn.k_proj.weight", p, i);
	add(m, K_WEIGHT, d, 2, kv, h, "%s%" PRIu64 ".self_attn.v_proj.weight", p, i);
	add(m, K_WEIGHT, d, 2, h, h, "%s%" PRIu64 ".self_attn.o_proj.weight", p, i);
	add(m, K_NORM, d, 1, h, 0, "%s%" PRIu64 ".post_attention_layernorm.weight", p, i);
	add(m, K_WEIGHT, d, 2, o->inter, h, "%s%" PRIu64 ".mlp.gate_proj.weight", p, i);
	add(m, K_WEIGHT, d, 2, o->inter, h, "%s%" PRIu64 ".mlp.up_proj.weight", p, i);
	add(m, K_WEIGHT, d, 2, h, o->inter, "%s%" PRIu64 ".mlp.down_proj.weight", p, i);
}

/* Shapes the quantizers must handle at their edges (see doc/apr-format.md). */
static void add_odd(model *m, aprfs_src_dtype d)
{
	add(m, K_WEIGHT, d, 0, 0, 0, "odd.scalar");
	add(m, K_WEIGHT, d, 2, 0, 16, "odd.empty");
	add(m, K_WEIGHT, d, 1, 37, 0, "odd.vector_37");
	add(m, K_WEIGHT, d, 2, 33, 130, "odd.q4_short_block");
	add(m, K_WEIGHT, d, 2, 300, 300, "odd.square_300");
	add(m, K_WEIGHT, d, 2, 65, 70, "odd.rows_65x70");
	add(m, K_IOTA, APRFS_SRC_I64, 2, 1, 128, "odd.position_ids");
	add(m, K_SEQ, APRFS_SRC_I32, 2, 3, 7, "odd.int32");
	add(m, K_RANDBYTE, APRFS_SRC_I8, 1, 64, 0, "odd.int8");
	add(m, K_RANDBYTE, APRFS_SRC_U8, 2, 5, 5, "odd.uint8");
	add(m, K_MASK, APRFS_SRC_BOOL, 2, 16, 16, "odd.causal_mask");
	add(m, K_WEIGHT, APRFS_SRC_F64, 2, 4, 3, "odd.float64");
}

static void build_model(model *m, const opts *o)
{
	add(m, K_WEIGHT, o->dtype, 2, o->vocab, o->hidden, "model.embed_tokens.weight");
	for (uint64_t i = 0; i < o->layers; i++)
		add_layer(m, o, i);
	add(m, K_NORM, o->dtype, 1, o->hidden, 0, "model.norm.weight");
	if (!o->tied)
		add(m, K_WEIGHT, o->dtype, 2, o->vocab, o->hidden, "lm_head.weight");
	for (size_t i = 0; o->outliers && i < m->n; i++)
		m->t[i].outliers = m->t[i].kind == K_WEIGHT && m->t[i].ndim == 2;
	if (o->odd)
		add_odd(m, o->dtype);
	for (uint64_t e = 0; e < o->experts; e++)
		add(m, K_WEIGHT, o->dtype, 2, 4, 16,
		    "model.layers.%" PRIu64 ".mlp.experts.%" PRIu64 ".w%" PRIu64, e / 3000,
		    e / 3 % 1000, e % 3);
}

/* Contiguous runs of roughly total/K bytes, at least one tensor per shard. */
static void assign_shards(model *m, unsigned k)
{
	uint64_t total = 0, done = 0;
	unsigned s = 0;

	if (k > m->n)
		die("%u shards but only %zu tensors", k, m->n);
	for (size_t i = 0; i < m->n; i++)
		total += m->t[i].nbytes;
	for (size_t i = 0; i < m->n; i++) {
		int full = (double)done >= (double)total * (s + 1) / k;

		if (s + 1 < k && i > 0 && m->t[i - 1].shard == s &&
		    (full || m->n - i == k - s - 1))
			s++;
		m->t[i].shard = s;
		done += m->t[i].nbytes;
	}
}

/* ---- writing ---- */

typedef struct out {
	FILE *f;
	const char *path;
} out;

static void put(out *w, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, w->f) != n)
		die("%s: %s", w->path, strerror(errno));
}

static void put_value(uint8_t *p, const gtensor *t, rng *r, uint64_t i)
{
	float f = 0;

	switch (t->kind) {
	case K_WEIGHT:
		f = gauss(r, 0.02f);
		if (t->outliers && i % t->dims[1] % 50 == 7)
			f *= 8.0f;
		break;
	case K_NORM: f = 1.0f + gauss(r, 0.01f); break;
	case K_IOTA: {
		int64_t v = (int64_t)i;
		memcpy(p, &v, 8);
		return;
	}
	case K_SEQ: {
		int32_t v = (int32_t)(i * 7) - 50;
		memcpy(p, &v, 4);
		return;
	}
	case K_RANDBYTE: *p = (uint8_t)rng_next(r); return;
	case K_MASK: *p = i % t->dims[1] <= i / t->dims[1]; return;
	}
	switch (t->dtype) {
	case APRFS_SRC_F32: memcpy(p, &f, 4); break;
	case APRFS_SRC_F64: {
		double d = f;
		memcpy(p, &d, 8);
		break;
	}
	case APRFS_SRC_F16: {
		uint16_t h = to_f16(f);
		memcpy(p, &h, 2);
		break;
	}
	default: {
		uint16_t h = to_bf16(f);
		memcpy(p, &h, 2);
	}
	}
}

/* Streams a tensor through a fixed buffer: memory use does not depend on model size. */
static void write_tensor(out *w, const gtensor *t, uint64_t seed, uint8_t *buf, size_t cap)
{
	size_t es = aprfs_src_dtype_size(t->dtype), per = cap / es;
	rng r;

	rng_seed(&r, seed, t->name);
	for (uint64_t i = 0; i < t->nelem;) {
		size_t n = t->nelem - i < per ? (size_t)(t->nelem - i) : per;

		for (size_t k = 0; k < n; k++)
			put_value(buf + k * es, t, &r, i + k);
		put(w, buf, n * es);
		i += n;
	}
}

static void shard_header(sbuf *h, model *m, unsigned s)
{
	uint64_t at = 0;

	sb_printf(h, "{\"__metadata__\":{\"format\":\"pt\",\"generator\":\"aprfs genmodel\"}");
	for (size_t i = 0; i < m->n; i++) {
		gtensor *t = &m->t[i];

		if (t->shard != s)
			continue;
		t->begin = at;
		at += t->nbytes;
		sb_printf(h, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t->name,
			  aprfs_src_dtype_name(t->dtype));
		for (int d = 0; d < t->ndim; d++)
			sb_printf(h, "%s%" PRIu64, d ? "," : "", t->dims[d]);
		sb_printf(h, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]}", t->begin, at);
	}
	sb_printf(h, "}");
	while (h->len % 8) /* align the data section, as the reference writer does */
		sb_printf(h, " ");
}

static void write_shard(const opts *o, model *m, unsigned s, const char *file)
{
	char *path = join(o->outdir, file);
	sbuf h = {0};
	uint8_t len[8];
	size_t cap = 1 << 20;
	uint8_t *buf = malloc(cap);
	out w = {fopen(path, "wb"), path};

	if (!w.f || !buf)
		die("%s: %s", path, strerror(errno));
	shard_header(&h, m, s);
	for (int i = 0; i < 8; i++)
		len[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
	put(&w, len, 8);
	put(&w, h.p, h.len);
	for (size_t i = 0; i < m->n; i++)
		if (m->t[i].shard == s)
			write_tensor(&w, &m->t[i], o->seed, buf, cap);
	if (fclose(w.f) != 0)
		die("%s: %s", path, strerror(errno));
	free(buf);
	free(h.p);
	free(path);
}

static void write_text(const char *dir, const char *name, const char *text)
{
	char *path = join(dir, name);
	FILE *f = fopen(path, "wb");

	if (!f || fputs(text, f) < 0 || fclose(f) != 0)
		die("%s: %s", path, strerror(errno));
	free(path);
}

static int cmp_tensor_name(const void *a, const void *b)
{
	return strcmp(((const gtensor *)a)->name, ((const gtensor *)b)->name);
}

static void shard_file(char *buf, size_t cap, const opts *o, unsigned s)
{
	snprintf(buf, cap, "%s-%05u-of-%05u.safetensors", o->stem, s + 1, o->shards);
}

static void write_index(const opts *o, const model *m)
{
	gtensor *sorted = malloc(m->n * sizeof(*sorted));
	uint64_t total = 0;
	char file[300];
	sbuf b = {0};

	if (!sorted)
		die("out of memory");
	memcpy(sorted, m->t, m->n * sizeof(*sorted));
	qsort(sorted, m->n, sizeof(*sorted), cmp_tensor_name);
	for (size_t i = 0; i < m->n; i++)
		total += m->t[i].nbytes;
	sb_printf(&b, "{\n  \"metadata\": {\n    \"total_size\": %" PRIu64 "\n  },\n", total);
	sb_printf(&b, "  \"weight_map\": {");
	for (size_t i = 0; i < m->n; i++) {
		shard_file(file, sizeof(file), o, sorted[i].shard);
		sb_printf(&b, "%s\n    \"%s\": \"%s\"", i ? "," : "", sorted[i].name, file);
	}
	sb_printf(&b, "\n  }\n}\n");
	snprintf(file, sizeof(file), "%s.safetensors.index.json", o->stem);
	write_text(o->outdir, file, b.p);
	free(b.p);
	free(sorted);
}

static const char *torch_dtype(aprfs_src_dtype d)
{
	return d == APRFS_SRC_F32 ? "float32" : d == APRFS_SRC_F16 ? "float16" : "bfloat16";
}

static void write_config(const opts *o)
{
	sbuf b = {0};

	sb_printf(&b, "{\n  \"architectures\": [\n    \"LlamaForCausalLM\"\n  ],\n");
	sb_printf(&b, "  \"bos_token_id\": 1,\n  \"eos_token_id\": 2,\n");
	sb_printf(&b, "  \"hidden_act\": \"silu\",\n  \"hidden_size\": %" PRIu64 ",\n",
		  o->hidden);
	sb_printf(&b, "  \"intermediate_size\": %" PRIu64 ",\n", o->inter);
	sb_printf(&b, "  \"max_position_embeddings\": 2048,\n  \"model_type\": \"llama\",\n");
	sb_printf(&b, "  \"num_attention_heads\": %" PRIu64 ",\n", o->heads);
	sb_printf(&b, "  \"num_hidden_layers\": %" PRIu64 ",\n", o->layers);
	sb_printf(&b, "  \"num_key_value_heads\": %" PRIu64 ",\n", o->kv_heads);
	sb_printf(&b, "  \"rms_norm_eps\": 1e-05,\n  \"rope_theta\": 10000.0,\n");
	sb_printf(&b, "  \"tie_word_embeddings\": %s,\n  \"torch_dtype\": \"%s\",\n",
		  o->tied ? "true" : "false", torch_dtype(o->dtype));
	sb_printf(&b, "  \"transformers_version\": \"4.40.0\",\n");
	sb_printf(&b, "  \"vocab_size\": %" PRIu64 "\n}\n", o->vocab);
	write_text(o->outdir, "config.json", b.p);
	free(b.p);
}

static void write_model(const opts *o)
{
	model m = {0};
	char file[300];

	build_model(&m, o);
	assign_shards(&m, o->shards ? o->shards : 1);
	if (o->shards == 0) {
		snprintf(file, sizeof(file), "%s.safetensors", o->stem);
		write_shard(o, &m, 0, file);
	} else {
		for (unsigned s = 0; s < o->shards; s++) {
			shard_file(file, sizeof(file), o, s);
			write_shard(o, &m, s, file);
		}
		write_index(o, &m);
	}
	if (o->config)
		write_config(o);
	write_text(
	    o->outdir, "README.md",
	    "Synthetic llama-shaped checkpoint written by aprfs genmodel (random weights).\n");
	write_text(o->outdir, "tokenizer.json",
		   "{\"version\":\"1.0\",\"model\":{\"type\":\"BPE\",\"vocab\":"
		   "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"a\":3},\"merges\":[]}}\n");
	free(m.t);
}

/* ---- --hostile: one broken checkpoint per defect ---- */

typedef struct hostile {
	const char *file, *header, *expect;
	uint64_t data_len; /* zero bytes after the header */
	int64_t claimed;   /* header length to write; -1: the real one, -2: empty file */
} hostile;

#define F32x4 "{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":"
static const hostile hostiles[] = {
    {"zero-length-file", "", "too short", 0, -2},
    {"truncated-header", "{\"a\":{\"dtype\":\"F32\",", "exceeds file size", 0, 200},
    {"header-len-huge", "{}", "too large", 0, (int64_t)1 << 40},
    {"header-not-json", "{\"a\": {\"dtype\": \"F32\", oops}", "not valid JSON", 16, -1},
    {"header-not-object", "[1, 2, 3]", "not a JSON object", 0, -1},
    {"entry-not-object", "{\"a\":[1,2]}", "entry is not an object", 0, -1},
    {"offsets-overlap", "{\"a\":" F32x4 "[0,16]},\"b\":" F32x4 "[8,24]}}", "overlaps", 24, -1},
    {"offsets-beyond-data", "{\"a\":" F32x4 "[0,16]}}", "beyond data section", 8, -1},
    {"offsets-reversed", "{\"a\":" F32x4 "[16,0]}}", "begin 16 > end 0", 16, -1},
    {"size-mismatch", "{\"a\":" F32x4 "[0,12]}}", "size mismatch", 16, -1},
    {"shape-negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1,4],\"data_offsets\":[0,0]}}",
     "is negative", 0, -1},
    {"shape-overflow",
     "{\"a\":{\"dtype\":\"U8\",\"shape\":[4294967296,4294967296,4294967296],"
     "\"data_offsets\":[0,0]}}",
     "overflows", 0, -1},
    {"shape-float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2.5,4],\"data_offsets\":[0,40]}}",
     "is not an integer", 40, -1},
    {"shape-huge", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e300],\"data_offsets\":[0,4]}}",
     "exceeds 2^53", 4, -1},
    {"too-many-dims",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
     "dimensions (at most 8)", 4, -1},
    {"unknown-dtype", "{\"a\":{\"dtype\":\"I16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
     "unsupported dtype 'I16'", 8, -1},
    {"bad-utf8-name", "{\"a\xC0\xAF\":" F32x4 "[0,16]}}", "not valid UTF-8", 16, -1},
    {"surrogate-name", "{\"a\xED\xA0\x80\":" F32x4 "[0,16]}}", "not valid UTF-8", 16, -1},
    {"nul-in-name", "{\"a\\u0000b\":" F32x4 "[0,16]}}", "\\u0000", 16, -1},
    {"empty-name", "{\"\":" F32x4 "[0,16]}}", "empty tensor name", 16, -1},
    {"duplicate-name", "{\"a\":" F32x4 "[0,16]},\"a\":" F32x4 "[16,32]}}",
     "duplicate tensor name", 32, -1},
    {"metadata-not-strings", "{\"__metadata__\":{\"n\":1},\"a\":" F32x4 "[0,16]}}",
     "__metadata__", 16, -1},
    {"data-truncated", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":[0,4096]}}",
     "beyond data section", 100, -1},
};

static void write_bytes(const char *path, const void *p, size_t n)
{
	out w = {fopen(path, "wb"), path};

	if (!w.f)
		die("%s: %s", path, strerror(errno));
	put(&w, p, n);
	if (fclose(w.f) != 0)
		die("%s: %s", path, strerror(errno));
}

static void write_hostile_file(const char *dir, const hostile *h)
{
	char name[128];
	size_t hl = strlen(h->header);
	uint64_t claim = h->claimed < 0 ? hl : (uint64_t)h->claimed;
	size_t n = h->claimed == -2 ? 0 : 8 + hl + h->data_len;
	uint8_t *b = calloc(1, n + 1);
	char *path;

	if (!b)
		die("out of memory");
	for (int i = 0; i < 8 && n; i++)
		b[i] = (uint8_t)(claim >> (8 * i));
	if (n)
		memcpy(b + 8, h->header, hl);
	snprintf(name, sizeof(name), "%s.safetensors", h->file);
	path = join(dir, name);
	write_bytes(path, b, n);
	free(path);
	free(b);
}

/* A valid safetensors file holding F32 [4] tensors with the given names. */
static void write_small(const char *dir, const char *file, const char *const *names, int n)
{
	sbuf h = {0};
	char *path = join(dir, file);
	uint8_t *b;

	sb_printf(&h, "{");
	for (int i = 0; i < n; i++)
		sb_printf(&h, "%s\"%s\":" F32x4 "[%d,%d]}", i ? "," : "", names[i], 16 * i,
			  16 * i + 16);
	sb_printf(&h, "}");
	if (!(b = calloc(1, 8 + h.len + 16 * (size_t)n)))
		die("out of memory");
	b[0] = (uint8_t)h.len;
	b[1] = (uint8_t)(h.len >> 8);
	memcpy(b + 8, h.p, h.len);
	write_bytes(path, b, 8 + h.len + 16 * (size_t)n);
	free(b);
	free(h.p);
	free(path);
}

static void write_hostile_indexes(const char *dir, FILE *expected)
{
	static const char *const ab[] = {"a", "b"}, *const a[] = {"a"};

	write_text(dir, "missing-shard.safetensors.index.json",
		   "{\"weight_map\":{\"a\":\"missing-shard-00001-of-00001.safetensors\"}}\n");
	fprintf(expected, "missing-shard.safetensors.index.json\tNo such file\n");
	write_text(dir, "evil-path.safetensors.index.json",
		   "{\"weight_map\":{\"a\":\"../x.safetensors\"}}\n");
	fprintf(expected, "evil-path.safetensors.index.json\tnot a plain file name\n");
	write_small(dir, "missing-tensor-00001-of-00001.safetensors", a, 1);
	write_text(dir, "missing-tensor.safetensors.index.json",
		   "{\"metadata\":{},\"weight_map\":{"
		   "\"a\":\"missing-tensor-00001-of-00001.safetensors\","
		   "\"b\":\"missing-tensor-00001-of-00001.safetensors\"}}\n");
	fprintf(expected, "missing-tensor.safetensors.index.json\tis not in shard\n");
	write_small(dir, "unlisted-tensor-00001-of-00001.safetensors", ab, 2);
	write_text(dir, "unlisted-tensor.safetensors.index.json",
		   "{\"weight_map\":{\"a\":\"unlisted-tensor-00001-of-00001.safetensors\"}}\n");
	fprintf(expected, "unlisted-tensor.safetensors.index.json\tdoes not list\n");
}

static void write_hostile(const opts *o)
{
	char *path = join(o->outdir, "EXPECTED"), *sub;
	FILE *expected = fopen(path, "wb");
	static const char *const a[] = {"a"};

	if (!expected)
		die("%s: %s", path, strerror(errno));
	for (size_t i = 0; i < sizeof(hostiles) / sizeof(hostiles[0]); i++) {
		write_hostile_file(o->outdir, &hostiles[i]);
		fprintf(expected, "%s.safetensors\t%s\n", hostiles[i].file, hostiles[i].expect);
	}
	write_hostile_indexes(o->outdir, expected);
	sub = join(o->outdir, "bad-config");
	if (mkdir(sub, 0755) != 0 && errno != EEXIST)
		die("%s: %s", sub, strerror(errno));
	write_small(sub, "model.safetensors", a, 1);
	write_text(sub, "config.json",
		   "{\"hidden_size\": \"big\", \"num_hidden_layers\": 2}\n");
	fprintf(expected, "bad-config/model.safetensors\tconfig.json: hidden_size\n");
	if (fclose(expected) != 0)
		die("%s: %s", path, strerror(errno));
	free(sub);
	free(path);
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fputs(
	    "usage: genmodel [options] OUTDIR\n"
	    "  --dtype bf16|f16|f32   weights dtype (default bf16)\n"
	    "  --layers N --hidden H --inter I --vocab V --heads A --kv-heads K\n"
	    "                         llama shape (default 2, 256, 512, 1000, 4, 2)\n"
	    "  --size-mb N            hidden 2048, inter 5632, vocab 32000, heads 32, kv 8,\n"
	    "                         and as many layers (>= 1) as make ~N MiB\n"
	    "  --shards K             K shards NAME-0000i-of-0000K.safetensors + index\n"
	    "  --name STEM            file stem (default model)\n"
	    "  --odd                  add edge-case tensors (scalar, empty, odd shapes, ints)\n"
	    "  --experts N            add N small [4, 16] expert tensors (MoE-sized tables)\n"
	    "  --seed S               PRNG seed (default 1)\n"
	    "  --no-config            no config.json\n"
	    "  --tied                 no lm_head.weight (tie_word_embeddings true)\n"
	    "  --outliers             2-D weights: every 50th column (2%) 8x larger\n"
	    "  --hostile              write broken checkpoints and OUTDIR/EXPECTED instead\n",
	    f);
}

static void size_layers(opts *o)
{
	uint64_t es = aprfs_src_dtype_size(o->dtype), h = 2048, kv = 8 * h / 32;
	uint64_t fixed = (2 * 32000 * h + h) * es;
	uint64_t layer = (2 * h * h + 2 * kv * h + 3 * 5632 * h + 2 * h) * es;
	uint64_t want = o->size_mb << 20;

	o->hidden = h;
	o->inter = 5632;
	o->vocab = 32000;
	o->heads = 32;
	o->kv_heads = 8;
	o->layers = want > fixed ? (want - fixed + layer / 2) / layer : 0;
	if (o->layers < 1)
		o->layers = 1;
}

static void parse_dtype(opts *o, const char *s)
{
	if (strcmp(s, "bf16") == 0)
		o->dtype = APRFS_SRC_BF16;
	else if (strcmp(s, "f16") == 0)
		o->dtype = APRFS_SRC_F16;
	else if (strcmp(s, "f32") == 0)
		o->dtype = APRFS_SRC_F32;
	else
		die("--dtype: '%s' is not bf16, f16 or f32", s);
}

static void check_shape(const opts *o)
{
	if (!o->hidden || !o->inter || !o->vocab || !o->heads || !o->kv_heads)
		die("dimensions must be positive");
	if (o->hidden % o->heads || o->heads % o->kv_heads)
		die("hidden must be a multiple of heads, heads a multiple of kv-heads");
}

static void parse_opts(opts *o, int argc, char **argv)
{
	static const struct option lo[] = {{"dtype", 1, 0, 'd'},
					   {"layers", 1, 0, 'L'},
					   {"hidden", 1, 0, 'H'},
					   {"inter", 1, 0, 'I'},
					   {"vocab", 1, 0, 'V'},
					   {"heads", 1, 0, 'A'},
					   {"kv-heads", 1, 0, 'K'},
					   {"size-mb", 1, 0, 'S'},
					   {"shards", 1, 0, 's'},
					   {"name", 1, 0, 'n'},
					   {"odd", 0, 0, 'o'},
					   {"seed", 1, 0, 'r'},
					   {"no-config", 0, 0, 'c'},
					   {"hostile", 0, 0, 'x'},
					   {"experts", 1, 0, 'E'},
					   {"tied", 0, 0, 't'},
					   {"outliers", 0, 0, 'O'},
					   {"help", 0, 0, 'h'},
					   {0, 0, 0, 0}};
	int c;

	*o = (opts){APRFS_SRC_BF16, 2,	  256, 512, 1000, 4, 2, 0, 0,
		    "model",	    NULL, 0,   1,   0,	  1, 0, 0, 0};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'd': parse_dtype(o, optarg); break;
		case 'L': o->layers = num(optarg, "--layers"); break;
		case 'H': o->hidden = num(optarg, "--hidden"); break;
		case 'I': o->inter = num(optarg, "--inter"); break;
		case 'V': o->vocab = num(optarg, "--vocab"); break;
		case 'A': o->heads = num(optarg, "--heads"); break;
		case 'K': o->kv_heads = num(optarg, "--kv-heads"); break;
		case 'S': o->size_mb = num(optarg, "--size-mb"); break;
		case 's': o->shards = (unsigned)num(optarg, "--shards"); break;
		case 'n': o->stem = optarg; break;
		case 'o': o->odd = 1; break;
		case 'r': o->seed = num(optarg, "--seed"); break;
		case 'c': o->config = 0; break;
		case 'x': o->hostile = 1; break;
		case 'E': o->experts = num(optarg, "--experts"); break;
		case 't': o->tied = 1; break;
		case 'O': o->outliers = 1; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); exit(2);
		}
	}
	if (optind != argc - 1) {
		usage(stderr);
		exit(2);
	}
	o->outdir = argv[optind];
	if (o->size_mb)
		size_layers(o);
	if (o->shards > 99999)
		die("--shards: at most 99999");
	if (!*o->stem || strchr(o->stem, '/') || strchr(o->stem, '"') || strchr(o->stem, '\\'))
		die("--name: '%s' is not a plain file stem", o->stem);
}

int main(int argc, char **argv)
{
	opts o;

	parse_opts(&o, argc, argv);
	if (mkdir(o.outdir, 0755) != 0 && errno != EEXIST)
		die("%s: %s", o.outdir, strerror(errno));
	if (o.hostile) {
		write_hostile(&o);
		return 0;
	}
	check_shape(&o);
	write_model(&o);
	return 0;
}
