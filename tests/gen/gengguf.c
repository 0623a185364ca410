/* gengguf.c - deterministic synthetic llama-shaped GGUF files for the tests and benchmarks:
 * llama.cpp's keys and tensor names, 2-D weights in any GGML type aprfs reads (or all of
 * them at once), optional edge-case tensors and a key of every GGUF value type. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "base/err.h"
#include "base/parallel.h"
#include "format/dtype.h"
#include "ggml_encode.h"
#include "kernels/kernels.h"
#include "synth.h"

#define GEN_TOOL "gengguf"
#include "gen_util.h"

/* ---- little-endian byte buffer (header, metadata, tensor infos) ---- */

typedef struct buf {
	uint8_t *p;
	size_t len, cap;
	int version; /* GGUF v1 wrote counts and lengths as u32, v2 and v3 as u64 */
} buf;

static void b_put(buf *b, const void *p, size_t n)
{
	if (b->len + n > b->cap) {
		b->cap = (b->len + n) * 2 + 256;
		if (!(b->p = realloc(b->p, b->cap)))
			die("out of memory");
	}
	memcpy(b->p + b->len, p, n);
	b->len += n;
}

static void b_le(buf *b, uint64_t v, int n)
{
	uint8_t t[8];
	for (int i = 0; i < n; i++)
		t[i] = (uint8_t)(v >> (8 * i));
	b_put(b, t, (size_t)n);
}

static void b_f32(buf *b, float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	b_le(b, u, 4);
}

static void b_f64(buf *b, double f)
{
	uint64_t u;
	memcpy(&u, &f, 8);
	b_le(b, u, 8);
}

/* A count or length: u64 (u32 in GGUF v1). */
static void b_size(buf *b, uint64_t v)
{
	b_le(b, v, b->version == 1 ? 4 : 8);
}

static void b_str(buf *b, const char *s)
{
	b_size(b, strlen(s));
	b_put(b, s, strlen(s));
}

/* ---- metadata ---- */

enum {
	T_U8,
	T_I8,
	T_U16,
	T_I16,
	T_U32,
	T_I32,
	T_F32,
	T_BOOL,
	T_STR,
	T_ARR,
	T_U64,
	T_I64,
	T_F64
};

typedef struct kvs {
	buf b;
	uint64_t n;
} kvs;

static void key(kvs *k, const char *name, uint32_t type)
{
	k->n++;
	b_str(&k->b, name);
	b_le(&k->b, type, 4);
}

static void kv_u32(kvs *k, const char *name, uint32_t v)
{
	key(k, name, T_U32);
	b_le(&k->b, v, 4);
}

static void kv_f32(kvs *k, const char *name, float v)
{
	key(k, name, T_F32);
	b_f32(&k->b, v);
}

static void kv_str(kvs *k, const char *name, const char *v)
{
	key(k, name, T_STR);
	b_str(&k->b, v);
}

/* An array header: element type and count. */
static void arr(buf *b, uint32_t type, uint64_t n)
{
	b_le(b, type, 4);
	b_size(b, n);
}

static void kv_arr(kvs *k, const char *name, uint32_t type, uint64_t n)
{
	key(k, name, T_ARR);
	arr(&k->b, type, n);
}

/* ---- options and the tensor list ---- */

enum kind { K_WEIGHT, K_NORM, K_SEQ, K_RANDOM };

typedef struct gt {
	char name[64]; /* GGML_MAX_NAME: llama.cpp refuses names of 64 bytes or more */
	aprfs_src_dtype type;
	enum kind kind;
	uint32_t ndim;
	uint64_t ne[4];
	uint64_t nelem, nbytes, offset;
} gt;

typedef struct model {
	gt *t;
	size_t n, cap;
	size_t nweights; /* 2-D weights added so far (for --mixed) */
} model;

typedef struct opts {
	aprfs_src_dtype type;
	int mixed, odd, all_kv, vocab_key, write_alignment, tied;
	uint64_t layers, hidden, inter, vocab, heads, kv_heads, size_mb, seed;
	uint32_t version, alignment;
	const char *stem, *outdir;
} opts;

/* --mixed: the 2-D weights take these in turn, so a model of >= 13 weights holds all. */
static const aprfs_src_dtype mixed_types[] = {
    APRFS_SRC_F32,  APRFS_SRC_F16,  APRFS_SRC_BF16, APRFS_SRC_Q8_0, APRFS_SRC_Q4_0,
    APRFS_SRC_Q4_1, APRFS_SRC_Q5_0, APRFS_SRC_Q5_1, APRFS_SRC_Q2_K, APRFS_SRC_Q3_K,
    APRFS_SRC_Q4_K, APRFS_SRC_Q5_K, APRFS_SRC_Q6_K};
enum { NMIXED = sizeof(mixed_types) / sizeof(mixed_types[0]) };

static gt *add(model *m, enum kind k, aprfs_src_dtype type, uint32_t ndim, const uint64_t *ne,
	       const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static gt *add(model *m, enum kind k, aprfs_src_dtype type, uint32_t ndim, const uint64_t *ne,
	       const char *fmt, ...)
{
	va_list ap;

	if (m->n == m->cap) {
		m->cap = m->cap ? m->cap * 2 : 64;
		if (!(m->t = realloc(m->t, m->cap * sizeof(*m->t))))
			die("out of memory");
	}
	gt *t = &m->t[m->n++];
	memset(t, 0, sizeof(*t));
	va_start(ap, fmt);
	int len = vsnprintf(t->name, sizeof(t->name), fmt, ap);
	va_end(ap);
	if (len >= (int)sizeof(t->name))
		die("tensor name too long");
	t->kind = k;
	t->ndim = ndim;
	t->nelem = 1;
	for (uint32_t d = 0; d < ndim; d++) {
		t->ne[d] = ne[d];
		t->nelem *= ne[d];
	}
	t->type = type;
	t->nbytes =
	    t->nelem / aprfs_src_dtype_block_elems(type) * aprfs_src_dtype_block_bytes(type);
	return t;
}

/* A 2-D weight, HF [out, in] = GGUF ne [in, out]: the requested type (or the next mixed
 * one) when rows are whole blocks of it, else F16 as llama.cpp's quantizer falls back. */
static void weight(model *m, const opts *o, uint64_t in, uint64_t out, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static void weight(model *m, const opts *o, uint64_t in, uint64_t out, const char *fmt, ...)
{
	char name[64];
	va_list ap;
	uint64_t ne[2] = {in, out};
	aprfs_src_dtype t = o->mixed ? mixed_types[m->nweights % NMIXED] : o->type;

	m->nweights++;
	if (in % aprfs_src_dtype_block_elems(t))
		t = APRFS_SRC_F16;
	va_start(ap, fmt);
	vsnprintf(name, sizeof(name), fmt, ap);
	va_end(ap);
	add(m, K_WEIGHT, t, 2, ne, "%s", name);
}

static void norm(model *m, uint64_t n, const char *name)
{
	add(m, K_NORM, APRFS_SRC_F32, 1, &n, "%s", name);
}

/* Edge shapes a reader must place and decode right: 3-D and 4-D tensors, a trailing
 * dimension of 1 written as such, one element, rows that are not whole K-quant blocks,
 * non-float types; and per float type a tensor of random bytes (any bytes are valid
 * blocks: NaN, inf and subnormal scales, every code), which no encoder would write. */
static void add_odd(model *m)
{
	static const uint64_t d3[] = {64, 3, 2}, d4[] = {8, 4, 3, 2}, d2[] = {32, 1},
			      d1[] = {1}, r[] = {320, 2}, s[] = {5}, f[] = {3},
			      rnd[] = {256, 16};
	add(m, K_WEIGHT, APRFS_SRC_Q4_0, 3, d3, "odd.q4_0_3d");
	add(m, K_WEIGHT, APRFS_SRC_F16, 4, d4, "odd.f16_4d");
	add(m, K_WEIGHT, APRFS_SRC_Q8_0, 2, d2, "odd.q8_0_trailing_1");
	add(m, K_WEIGHT, APRFS_SRC_F32, 1, d1, "odd.f32_one");
	add(m, K_WEIGHT, APRFS_SRC_Q5_1, 2, r, "odd.q5_1_rows_320");
	add(m, K_SEQ, APRFS_SRC_I32, 1, s, "odd.i32");
	add(m, K_SEQ, APRFS_SRC_F64, 1, f, "odd.f64");
	for (size_t i = 0; i < NMIXED; i++)
		add(m, K_RANDOM, mixed_types[i], 2, rnd, "odd.random_%s",
		    aprfs_src_dtype_name(mixed_types[i]));
}

static void build_model(model *m, const opts *o)
{
	uint64_t h = o->hidden, kv = o->kv_heads * o->hidden / o->heads;
	char name[64];

	weight(m, o, h, o->vocab, "token_embd.weight");
	for (uint64_t i = 0; i < o->layers; i++) {
		snprintf(name, sizeof(name), "blk.%" PRIu64 ".attn_norm.weight", i);
		norm(m, h, name);
		weight(m, o, h, h, "blk.%" PRIu64 ".attn_q.weight", i);
		weight(m, o, h, kv, "blk.%" PRIu64 ".attn_k.weight", i);
		weight(m, o, h, kv, "blk.%" PRIu64 ".attn_v.weight", i);
		weight(m, o, h, h, "blk.%" PRIu64 ".attn_output.weight", i);
		snprintf(name, sizeof(name), "blk.%" PRIu64 ".ffn_norm.weight", i);
		norm(m, h, name);
		weight(m, o, h, o->inter, "blk.%" PRIu64 ".ffn_gate.weight", i);
		weight(m, o, h, o->inter, "blk.%" PRIu64 ".ffn_up.weight", i);
		weight(m, o, o->inter, h, "blk.%" PRIu64 ".ffn_down.weight", i);
	}
	norm(m, h, "output_norm.weight");
	if (!o->tied)
		weight(m, o, h, o->vocab, "output.weight");
	if (o->odd)
		add_odd(m);
}

static uint64_t pad_to(uint64_t n, uint64_t a)
{
	return (n + a - 1) / a * a;
}

/* Offsets relative to the data section: each tensor starts aligned, in list order. */
static uint64_t place(model *m, uint32_t alignment)
{
	uint64_t at = 0;
	for (size_t i = 0; i < m->n; i++) {
		m->t[i].offset = at;
		at += pad_to(m->t[i].nbytes, alignment);
	}
	return at;
}

/* ---- metadata ---- */

/* llama.cpp's LLAMA_FTYPE of a model whose weights are mostly of type t (K-quants: the
 * _M mixes); -1 for none. */
static int file_type(aprfs_src_dtype t)
{
	switch (t) {
	case APRFS_SRC_F32: return 0;
	case APRFS_SRC_F16: return 1;
	case APRFS_SRC_Q4_0: return 2;
	case APRFS_SRC_Q4_1: return 3;
	case APRFS_SRC_Q8_0: return 7;
	case APRFS_SRC_Q5_0: return 8;
	case APRFS_SRC_Q5_1: return 9;
	case APRFS_SRC_Q2_K: return 10;
	case APRFS_SRC_Q3_K: return 12;
	case APRFS_SRC_Q4_K: return 15;
	case APRFS_SRC_Q5_K: return 17;
	case APRFS_SRC_Q6_K: return 18;
	case APRFS_SRC_BF16: return 32;
	default: return -1;
	}
}

static int is_quantized(aprfs_src_dtype t)
{
	return aprfs_src_dtype_block_elems(t) > 1;
}

/* The vocabulary: <unk>, <s>, </s>, the 256 byte tokens, then "▁t<i>" (UTF-8 U+2581). */
static void vocab_kvs(kvs *k, const opts *o)
{
	char tok[32];

	kv_str(k, "tokenizer.ggml.model", "llama");
	kv_arr(k, "tokenizer.ggml.tokens", T_STR, o->vocab);
	for (uint64_t i = 0; i < o->vocab; i++) {
		if (i < 3)
			b_str(&k->b, i == 0 ? "<unk>" : i == 1 ? "<s>" : "</s>");
		else if (i < 259)
			snprintf(tok, sizeof(tok), "<0x%02X>", (unsigned)(i - 3));
		else
			snprintf(tok, sizeof(tok), "\xe2\x96\x81t%" PRIu64, i);
		if (i >= 3)
			b_str(&k->b, tok);
	}
	kv_arr(k, "tokenizer.ggml.scores", T_F32, o->vocab);
	for (uint64_t i = 0; i < o->vocab; i++)
		b_f32(&k->b, i < 259 ? 0.0f : -(float)(i - 259));
	kv_arr(k, "tokenizer.ggml.token_type", T_I32, o->vocab);
	for (uint64_t i = 0; i < o->vocab; i++)
		b_le(&k->b, i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1, 4);
	kv_u32(k, "tokenizer.ggml.bos_token_id", 1);
	kv_u32(k, "tokenizer.ggml.eos_token_id", 2);
	kv_u32(k, "tokenizer.ggml.unknown_token_id", 0);
}

/* --all-kv-types: one key of every value type, an array of each, an empty array and
 * string, and an array of arrays (of different element types, one nested twice). */
static void all_kv_types(kvs *k)
{
	buf *b = &k->b;

	key(k, "aprfs.test.u8", T_U8);
	b_le(b, 200, 1);
	key(k, "aprfs.test.i8", T_I8);
	b_le(b, (uint8_t)-100, 1);
	key(k, "aprfs.test.u16", T_U16);
	b_le(b, 60000, 2);
	key(k, "aprfs.test.i16", T_I16);
	b_le(b, (uint16_t)-30000, 2);
	key(k, "aprfs.test.u32", T_U32);
	b_le(b, 4000000000u, 4);
	key(k, "aprfs.test.i32", T_I32);
	b_le(b, (uint32_t)-2000000000, 4);
	kv_f32(k, "aprfs.test.f32", -1.5f);
	key(k, "aprfs.test.bool", T_BOOL);
	b_le(b, 1, 1);
	kv_str(k, "aprfs.test.str", "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93");
	key(k, "aprfs.test.u64", T_U64);
	b_le(b, UINT64_MAX, 8);
	key(k, "aprfs.test.i64", T_I64);
	b_le(b, (uint64_t)INT64_MIN, 8);
	key(k, "aprfs.test.f64", T_F64);
	b_f64(b, 3.141592653589793);
	kv_str(k, "aprfs.test.empty_str", "");

	kv_arr(k, "aprfs.test.arr_u8", T_U8, 3);
	b_put(b, "\x00\x01\xff", 3);
	kv_arr(k, "aprfs.test.arr_i8", T_I8, 3);
	b_put(b, "\x80\x00\x7f", 3);
	kv_arr(k, "aprfs.test.arr_u16", T_U16, 2);
	b_le(b, 0, 2);
	b_le(b, 65535, 2);
	kv_arr(k, "aprfs.test.arr_i16", T_I16, 2);
	b_le(b, 0x8000, 2);
	b_le(b, 0x7fff, 2);
	kv_arr(k, "aprfs.test.arr_u32", T_U32, 2);
	b_le(b, 0, 4);
	b_le(b, UINT32_MAX, 4);
	kv_arr(k, "aprfs.test.arr_i32", T_I32, 2);
	b_le(b, 0x80000000u, 4);
	b_le(b, 0x7fffffff, 4);
	kv_arr(k, "aprfs.test.arr_f32", T_F32, 3);
	b_f32(b, 0.5f);
	b_f32(b, -2.0f);
	b_f32(b, 3.25f);
	kv_arr(k, "aprfs.test.arr_bool", T_BOOL, 3);
	b_put(b, "\x01\x00\x01", 3);
	kv_arr(k, "aprfs.test.arr_str", T_STR, 3);
	b_str(b, "a");
	b_str(b, "");
	b_str(b, "\xc3\xbc");
	kv_arr(k, "aprfs.test.arr_u64", T_U64, 2);
	b_le(b, 0, 8);
	b_le(b, UINT64_MAX, 8);
	kv_arr(k, "aprfs.test.arr_i64", T_I64, 2);
	b_le(b, (uint64_t)INT64_MIN, 8);
	b_le(b, INT64_MAX, 8);
	kv_arr(k, "aprfs.test.arr_f64", T_F64, 2);
	b_f64(b, 1e300);
	b_f64(b, -2.5);
	kv_arr(k, "aprfs.test.arr_empty", T_U32, 0);

	/* [[1, 2, 3] (i32), ["x", "y"] (str), [] (u8), [[true]] (array of array of bool)] */
	kv_arr(k, "aprfs.test.arr_arr", T_ARR, 4);
	arr(b, T_I32, 3);
	for (int i = 1; i <= 3; i++)
		b_le(b, (uint64_t)i, 4);
	arr(b, T_STR, 2);
	b_str(b, "x");
	b_str(b, "y");
	arr(b, T_U8, 0);
	arr(b, T_ARR, 1);
	arr(b, T_BOOL, 1);
	b_le(b, 1, 1);
}

static void metadata(kvs *k, const opts *o, const model *m)
{
	int quantized = 0;
	for (size_t i = 0; i < m->n; i++)
		quantized |= is_quantized(m->t[i].type);

	kv_str(k, "general.architecture", "llama");
	kv_str(k, "general.name", o->stem);
	if (o->alignment != 32 || o->write_alignment)
		kv_u32(k, "general.alignment", o->alignment);
	kv_u32(k, "llama.context_length", 2048);
	kv_u32(k, "llama.embedding_length", (uint32_t)o->hidden);
	kv_u32(k, "llama.block_count", (uint32_t)o->layers);
	kv_u32(k, "llama.feed_forward_length", (uint32_t)o->inter);
	kv_u32(k, "llama.rope.dimension_count", (uint32_t)(o->hidden / o->heads));
	kv_u32(k, "llama.attention.head_count", (uint32_t)o->heads);
	kv_u32(k, "llama.attention.head_count_kv", (uint32_t)o->kv_heads);
	kv_f32(k, "llama.rope.freq_base", 10000.0f);
	kv_f32(k, "llama.attention.layer_norm_rms_epsilon", 1e-5f);
	if (o->vocab_key)
		kv_u32(k, "llama.vocab_size", (uint32_t)o->vocab);
	if (!o->mixed && file_type(o->type) >= 0)
		kv_u32(k, "general.file_type", (uint32_t)file_type(o->type));
	if (quantized)
		kv_u32(k, "general.quantization_version", 2);
	vocab_kvs(k, o);
	if (o->all_kv)
		all_kv_types(k);
}

/* ---- tensor data: generated and encoded in parallel, written in order ---- */

/* Elements per generation chunk: whole blocks of every type; each chunk's values come
 * from its own stream (seed, tensor name, chunk index), so the bytes do not depend on
 * the number of threads. */
enum { CHUNK = 1 << 16, BATCH = 64 };

typedef struct batch {
	const gt *t;
	uint64_t seed, first; /* first chunk index of this batch */
	size_t nchunks;
	float *x;	/* BATCH * CHUNK floats */
	uint8_t *out;	/* BATCH * CHUNK * 4 bytes */
	size_t out_len; /* bytes of out in use */
} batch;

static float value(const gt *t, rng *r)
{
	return t->kind == K_NORM ? 1.0f + gauss(r, 0.01f) : gauss(r, 0.02f);
}

static void encode_chunk(aprfs_src_dtype type, const float *x, size_t n, uint8_t *out)
{
	const aprfs_kernels *k = aprfs_kernels_get();
	const aprfs_qparams p = {0};

	/* The kernel table's F16/BF16/Q4_K/Q6_K encoders are byte-identical to the scalar
	 * references ggml_encode uses, only faster. */
	switch (type) {
	case APRFS_SRC_F16: k->encode[APRFS_K_F16](x, n, &p, out); break;
	case APRFS_SRC_BF16: k->encode[APRFS_K_BF16](x, n, &p, out); break;
	case APRFS_SRC_Q4_K: k->encode[APRFS_K_Q4K](x, n, &p, out); break;
	case APRFS_SRC_Q6_K: k->encode[APRFS_K_Q6K](x, n, &p, out); break;
	default:
		if (ggml_encode(type, x, n / aprfs_src_dtype_block_elems(type), out) != 0)
			die("cannot encode %s", aprfs_src_dtype_name(type));
	}
}

static int chunk_job(void *ctx, uint64_t i, aprfs_err *err)
{
	batch *b = ctx;
	const gt *t = b->t;
	uint64_t c = b->first + i, at = c * CHUNK;
	size_t n = t->nelem - at < CHUNK ? (size_t)(t->nelem - at) : CHUNK;
	size_t per = aprfs_src_dtype_block_bytes(t->type),
	       be = aprfs_src_dtype_block_elems(t->type);
	float *x = b->x + i * CHUNK;
	rng r;

	(void)err;
	rng_seed(&r, b->seed * 1000003u + c, t->name);
	for (size_t k = 0; k < n; k++)
		x[k] = value(t, &r);
	encode_chunk(t->type, x, n, b->out + i * (CHUNK / be) * per);
	return 0;
}

typedef struct out {
	FILE *f;
	const char *path;
	uint64_t written;
} out;

static void put(out *w, const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, w->f) != n)
		die("%s: %s", w->path, strerror(errno));
	w->written += n;
}

static void put_zeros(out *w, uint64_t n)
{
	static const uint8_t z[256];
	while (n) {
		size_t k = n < sizeof(z) ? (size_t)n : sizeof(z);
		put(w, z, k);
		n -= k;
	}
}

/* Non-float tensors (--odd): small, written element by element. */
static void write_seq(out *w, const gt *t)
{
	for (uint64_t i = 0; i < t->nelem; i++) {
		buf b = {0};
		if (t->type == APRFS_SRC_I32)
			b_le(&b, (uint32_t)(int32_t)(7 * i - 10), 4);
		else
			b_f64(&b, (double)i / 3.0 - 1.0);
		put(w, b.p, b.len);
		free(b.p);
	}
}

/* --odd's random tensors: bytes straight from the tensor's stream. */
static void write_random(out *w, const gt *t, uint64_t seed)
{
	rng r;
	rng_seed(&r, seed, t->name);
	for (uint64_t i = 0; i < t->nbytes; i++) {
		uint8_t v = (uint8_t)(rng_next(&r) >> 56);
		put(w, &v, 1);
	}
}

static void write_tensor(out *w, const gt *t, batch *b)
{
	if (t->kind == K_RANDOM) {
		write_random(w, t, b->seed);
		return;
	}
	if (!aprfs_src_dtype_is_float(t->type)) {
		write_seq(w, t);
		return;
	}
	uint64_t nchunks = (t->nelem + CHUNK - 1) / CHUNK;
	size_t per = aprfs_src_dtype_block_bytes(t->type),
	       be = aprfs_src_dtype_block_elems(t->type);
	b->t = t;
	for (uint64_t c = 0; c < nchunks; c += BATCH) {
		aprfs_err err = {0};
		b->first = c;
		b->nchunks = nchunks - c < BATCH ? (size_t)(nchunks - c) : BATCH;
		if (aprfs_parallel(b->nchunks, chunk_job, b, &err) != 0)
			die("%s", err.msg);
		uint64_t elems = t->nelem - c * CHUNK;
		if (elems > (uint64_t)b->nchunks * CHUNK)
			elems = (uint64_t)b->nchunks * CHUNK;
		put(w, b->out, (size_t)(elems / be * per));
	}
}

static void write_gguf(const opts *o, model *m)
{
	char file[300];
	uint64_t data_size = place(m, o->alignment);
	kvs k = {{0}, 0};
	buf h = {0};

	k.b.version = h.version = (int)o->version;
	metadata(&k, o, m);
	b_put(&h, "GGUF", 4);
	b_le(&h, o->version, 4);
	b_size(&h, m->n);
	b_size(&h, k.n);
	b_put(&h, k.b.p, k.b.len);
	for (size_t i = 0; i < m->n; i++) {
		const gt *t = &m->t[i];
		b_str(&h, t->name);
		b_le(&h, t->ndim, 4);
		for (uint32_t d = 0; d < t->ndim; d++)
			b_size(&h, t->ne[d]);
		b_le(&h, (uint64_t)aprfs_src_dtype_ggml_id(t->type), 4);
		b_le(&h, t->offset, 8);
	}

	snprintf(file, sizeof(file), "%s.gguf", o->stem);
	char *path = join(o->outdir, file);
	out w = {fopen(path, "wb"), path, 0};
	batch b = {.seed = o->seed,
		   .x = malloc(sizeof(float) * BATCH * CHUNK),
		   .out = malloc((size_t)4 * BATCH * CHUNK)};
	if (!w.f)
		die("%s: %s", path, strerror(errno));
	if (!b.x || !b.out)
		die("out of memory");
	put(&w, h.p, h.len);
	put_zeros(&w, pad_to(h.len, o->alignment) - h.len);
	const uint64_t data_start = w.written;
	for (size_t i = 0; i < m->n; i++) {
		write_tensor(&w, &m->t[i], &b);
		put_zeros(&w, pad_to(m->t[i].nbytes, o->alignment) - m->t[i].nbytes);
	}
	if (w.written - data_start != data_size)
		die("internal error: wrote %" PRIu64 " data bytes, planned %" PRIu64,
		    w.written - data_start, data_size);
	if (fclose(w.f) != 0)
		die("%s: %s", path, strerror(errno));
	free(b.x);
	free(b.out);
	free(h.p);
	free(k.b.p);
	free(path);
}

/* ---- options ---- */

static void usage(FILE *f)
{
	fputs(
	    "usage: gengguf [options] OUTDIR          writes OUTDIR/NAME.gguf\n"
	    "  --type T               2-D weights' type: F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 "
	    "Q5_1\n"
	    "                         Q2_K Q3_K Q4_K Q5_K Q6_K (default F16); rows that are "
	    "not\n"
	    "                         whole blocks of T fall back to F16; norms are F32\n"
	    "  --mixed                2-D weights take all 13 types in turn (needs >= 13)\n"
	    "  --layers N --hidden H --inter I --vocab V --heads A --kv-heads K\n"
	    "                         llama shape (default 2, 256, 512, 1000, 4, 2)\n"
	    "  --size-mb N            hidden 2048, inter 5632, vocab 32000, heads 32, kv 8,\n"
	    "                         and as many layers (>= 1) as make ~N MiB of tensor data\n"
	    "  --name NAME            file stem and general.name (default model)\n"
	    "  --seed S               PRNG seed (default 1)\n"
	    "  --gguf-version 1|2|3   format version (default 3; v1 has u32 counts/lengths)\n"
	    "  --alignment N          data alignment, a power of two (default 32)\n"
	    "  --write-alignment      write general.alignment even when it is 32\n"
	    "  --tied                 no output.weight (token_embd serves as output)\n"
	    "  --vocab-size-key       add llama.vocab_size\n"
	    "  --all-kv-types         add aprfs.test.* keys of every GGUF value type\n"
	    "  --odd                  add edge-case tensors (3-D, 4-D, ne [32,1], I32, F64, "
	    "and\n"
	    "                         one of random bytes per type)\n",
	    f);
}

static aprfs_src_dtype parse_type(const char *s)
{
	for (size_t i = 0; i < NMIXED; i++)
		if (strcasecmp(s, aprfs_src_dtype_name(mixed_types[i])) == 0)
			return mixed_types[i];
	die("--type: '%s' is not one of F32 F16 BF16 Q8_0 Q4_0 Q4_1 Q5_0 Q5_1 Q2_K Q3_K Q4_K "
	    "Q5_K Q6_K",
	    s);
}

static uint64_t model_bytes(const opts *o)
{
	model m = {0};
	uint64_t total = 0;

	build_model(&m, o);
	for (size_t i = 0; i < m.n; i++)
		total += m.t[i].nbytes;
	free(m.t);
	return total;
}

/* --size-mb: a llama-7B-wide model with as many layers as come closest to N MiB. */
static void size_layers(opts *o)
{
	uint64_t want = o->size_mb << 20, prev = 0;

	o->hidden = 2048;
	o->inter = 5632;
	o->vocab = 32000;
	o->heads = 32;
	o->kv_heads = 8;
	for (o->layers = 1;; o->layers++) {
		uint64_t b = model_bytes(o);
		if (b >= want) {
			if (o->layers > 1 && want - prev < b - want)
				o->layers--;
			return;
		}
		prev = b;
	}
}

static void check(const opts *o)
{
	if (!o->hidden || !o->inter || !o->vocab || !o->heads || !o->kv_heads || !o->layers)
		die("dimensions must be positive");
	if (o->hidden % o->heads || o->heads % o->kv_heads)
		die("hidden must be a multiple of heads, heads a multiple of kv-heads");
	if (o->hidden > UINT32_MAX || o->inter > UINT32_MAX || o->layers > UINT32_MAX ||
	    o->vocab > 1000000)
		die("dimensions too large");
	if (o->version < 1 || o->version > 3)
		die("--gguf-version: 1, 2 or 3");
	if (!o->alignment || (o->alignment & (o->alignment - 1)))
		die("--alignment: %u is not a power of two", o->alignment);
	if (o->mixed && 7 * o->layers + 2 < NMIXED)
		die("--mixed needs at least %d 2-D weights: --layers 2 or more", NMIXED);
	if (!*o->stem || strchr(o->stem, '/') || strlen(o->stem) > 200)
		die("--name: '%s' is not a plain file stem", o->stem);
}

static void parse_opts(opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
	    {"type", 1, 0, 't'},	 {"mixed", 0, 0, 'm'},
	    {"layers", 1, 0, 'L'},	 {"hidden", 1, 0, 'H'},
	    {"inter", 1, 0, 'I'},	 {"vocab", 1, 0, 'V'},
	    {"heads", 1, 0, 'A'},	 {"kv-heads", 1, 0, 'K'},
	    {"size-mb", 1, 0, 'S'},	 {"name", 1, 0, 'n'},
	    {"seed", 1, 0, 'r'},	 {"gguf-version", 1, 0, 'v'},
	    {"alignment", 1, 0, 'a'},	 {"write-alignment", 0, 0, 'w'},
	    {"tied", 0, 0, 'T'},	 {"vocab-size-key", 0, 0, 'k'},
	    {"all-kv-types", 0, 0, 'x'}, {"odd", 0, 0, 'o'},
	    {"help", 0, 0, 'h'},	 {0, 0, 0, 0}};
	int c;
	uint64_t v;

	*o = (opts){.type = APRFS_SRC_F16,
		    .layers = 2,
		    .hidden = 256,
		    .inter = 512,
		    .vocab = 1000,
		    .heads = 4,
		    .kv_heads = 2,
		    .seed = 1,
		    .version = 3,
		    .alignment = 32,
		    .stem = "model"};
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 't': o->type = parse_type(optarg); break;
		case 'm': o->mixed = 1; break;
		case 'L': o->layers = num(optarg, "--layers"); break;
		case 'H': o->hidden = num(optarg, "--hidden"); break;
		case 'I': o->inter = num(optarg, "--inter"); break;
		case 'V': o->vocab = num(optarg, "--vocab"); break;
		case 'A': o->heads = num(optarg, "--heads"); break;
		case 'K': o->kv_heads = num(optarg, "--kv-heads"); break;
		case 'S': o->size_mb = num(optarg, "--size-mb"); break;
		case 'n': o->stem = optarg; break;
		case 'r': o->seed = num(optarg, "--seed"); break;
		case 'v':
			if ((v = num(optarg, "--gguf-version")) > 3)
				die("--gguf-version: 1, 2 or 3");
			o->version = (uint32_t)v;
			break;
		case 'a':
			if ((v = num(optarg, "--alignment")) > (1u << 30))
				die("--alignment: %s is too large", optarg);
			o->alignment = (uint32_t)v;
			break;
		case 'w': o->write_alignment = 1; break;
		case 'T': o->tied = 1; break;
		case 'k': o->vocab_key = 1; break;
		case 'x': o->all_kv = 1; break;
		case 'o': o->odd = 1; break;
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
}

int main(int argc, char **argv)
{
	opts o;
	model m = {0};

	parse_opts(&o, argc, argv);
	check(&o);
	if (mkdir(o.outdir, 0755) != 0 && errno != EEXIST)
		die("%s: %s", o.outdir, strerror(errno));
	build_model(&m, &o);
	write_gguf(&o, &m);
	free(m.t);
	return 0;
}
