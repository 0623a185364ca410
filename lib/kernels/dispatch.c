/* dispatch.c - choosing the kernel table: the scalar reference table, the CPU probe
 * (CPUID and XGETBV via <cpuid.h>, hwcaps on ARM), the per-kernel ISA preferences, the
 * APRFS_ISA override, the self-check every SIMD table passes before use, and tiled fused
 * encoding. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__aarch64__)
#include <asm/hwcap.h>
#include <sys/auxv.h>
#endif
#if defined(__x86_64__)
#include <cpuid.h>
#endif

#include "base/half.h"
#include "kernels/kernels.h"
#include "quant/ggml_dequant.h"

const char *const aprfs_kernels_isa_names[APRFS_ISA_COUNT] = {"scalar", "avx2", "avx512",
							      "neon"};
enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_NEON };

/* The 16-bit inputs may sit at any address (a GGUF or safetensors tensor need not be
 * 2-byte aligned in its file): every load is a memcpy. */
static void widen_f16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_f16_to_f32(h);
	}
}

static void widen_bf16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_bf16_to_f32(h);
	}
}

static const aprfs_codec *const slot_codecs[APRFS_K_COUNT] = {
    &aprfs_codec_f32, &aprfs_codec_f16, &aprfs_codec_bf16,
    &aprfs_codec_q8,  &aprfs_codec_q4,	&aprfs_codec_q4k,
    &aprfs_codec_q6k, &aprfs_codec_nf4, &aprfs_codec_ternary,
};

aprfs_kslot aprfs_kslot_of(const aprfs_codec *c)
{
	for (int i = 0; i < APRFS_K_COUNT; i++)
		if (slot_codecs[i] == c)
			return (aprfs_kslot)i;
	return APRFS_K_F32;
}

/* GGML's block geometry (ggml-common.h), kept here rather than asked of dtype.c so that
 * the kernels link without it (scripts/test-arm.sh). */
const aprfs_dq_type aprfs_dq_types[APRFS_DQ_COUNT] = {
    {APRFS_SRC_Q8_0, "Q8_0", 32, 34, 1, {0, 0}},
    {APRFS_SRC_Q4_0, "Q4_0", 32, 18, 1, {0, 0}},
    {APRFS_SRC_Q4_1, "Q4_1", 32, 20, 2, {0, 2}},
    {APRFS_SRC_Q5_0, "Q5_0", 32, 22, 1, {0, 0}},
    {APRFS_SRC_Q5_1, "Q5_1", 32, 24, 2, {0, 2}},
    {APRFS_SRC_Q2_K, "Q2_K", 256, 84, 2, {80, 82}},
    {APRFS_SRC_Q3_K, "Q3_K", 256, 110, 1, {108, 0}},
    {APRFS_SRC_Q4_K, "Q4_K", 256, 144, 2, {0, 2}},
    {APRFS_SRC_Q5_K, "Q5_K", 256, 176, 2, {0, 2}},
    {APRFS_SRC_Q6_K, "Q6_K", 256, 210, 1, {208, 0}},
};
_Static_assert(APRFS_SRC_Q6_K - APRFS_SRC_Q8_0 == APRFS_DQ_Q6_K - APRFS_DQ_Q8_0 &&
		   APRFS_SRC_Q2_K - APRFS_SRC_Q8_0 == APRFS_DQ_Q2_K,
	       "dequant slots follow aprfs_src_dtype's order");

int aprfs_dqslot_of(aprfs_src_dtype d)
{
	return d >= APRFS_SRC_Q8_0 && d <= APRFS_SRC_Q6_K ? (int)(d - APRFS_SRC_Q8_0) : -1;
}

/* The codecs' Q4_K and Q6_K decoders are GGML's dequantize_row_q4_K / _q6_K. */
static void dequant_q4_k_ref(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_codec_q4k.decode(in, nblocks * 256, NULL, y);
}

static void dequant_q6_k_ref(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_codec_q6k.decode(in, nblocks * 256, NULL, y);
}

static const aprfs_dequant_fn dequant_refs[APRFS_DQ_COUNT] = {
    aprfs_ggml_dequant_q8_0, aprfs_ggml_dequant_q4_0, aprfs_ggml_dequant_q4_1,
    aprfs_ggml_dequant_q5_0, aprfs_ggml_dequant_q5_1, aprfs_ggml_dequant_q2_k,
    aprfs_ggml_dequant_q3_k, dequant_q4_k_ref,	      aprfs_ggml_dequant_q5_k,
    dequant_q6_k_ref,
};

static void fill_scalar(aprfs_kernels *t)
{
	memset(t, 0, sizeof(*t));
	t->isa = "scalar";
	t->widen_f16 = widen_f16_ref;
	t->widen_bf16 = widen_bf16_ref;
	t->maxabs = aprfs_stat_maxabs_ref;
	t->sumabs = aprfs_stat_sumabs_ref;
	for (int i = 0; i < APRFS_K_COUNT; i++) {
		t->encode[i] = slot_codecs[i]->encode;
		t->decode[i] = slot_codecs[i]->decode;
	}
	for (int i = 0; i < APRFS_DQ_COUNT; i++)
		t->dequant[i] = dequant_refs[i];
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++)
		t->kisa[kn] = "scalar";
}

/* ---- kernels by number ---------------------------------------------------------------- */

/* A kernel's function as a generic function pointer, only ever compared. */
typedef void (*kernel_ptr)(void);

static kernel_ptr kernel_fn(const aprfs_kernels *t, int kn)
{
	switch (kn) {
	case APRFS_KN_WIDEN_F16: return (kernel_ptr)t->widen_f16;
	case APRFS_KN_WIDEN_BF16: return (kernel_ptr)t->widen_bf16;
	case APRFS_KN_MAXABS: return (kernel_ptr)t->maxabs;
	case APRFS_KN_SUMABS: return (kernel_ptr)t->sumabs;
	default:
		return kn < APRFS_KN_DECODE    ? (kernel_ptr)t->encode[kn - APRFS_KN_ENCODE]
		       : kn < APRFS_KN_DEQUANT ? (kernel_ptr)t->decode[kn - APRFS_KN_DECODE]
					       : (kernel_ptr)t->dequant[kn - APRFS_KN_DEQUANT];
	}
}

/* dst takes kernel kn (and its ISA name) from src. */
static void copy_kernel(aprfs_kernels *dst, const aprfs_kernels *src, int kn)
{
	switch (kn) {
	case APRFS_KN_WIDEN_F16: dst->widen_f16 = src->widen_f16; break;
	case APRFS_KN_WIDEN_BF16: dst->widen_bf16 = src->widen_bf16; break;
	case APRFS_KN_MAXABS: dst->maxabs = src->maxabs; break;
	case APRFS_KN_SUMABS: dst->sumabs = src->sumabs; break;
	default:
		if (kn < APRFS_KN_DECODE)
			dst->encode[kn - APRFS_KN_ENCODE] = src->encode[kn - APRFS_KN_ENCODE];
		else if (kn < APRFS_KN_DEQUANT)
			dst->decode[kn - APRFS_KN_DECODE] = src->decode[kn - APRFS_KN_DECODE];
		else
			dst->dequant[kn - APRFS_KN_DEQUANT] =
			    src->dequant[kn - APRFS_KN_DEQUANT];
	}
	dst->kisa[kn] = src->kisa[kn];
}

int aprfs_kernels_same(const aprfs_kernels *a, const aprfs_kernels *b, int kn)
{
	return kn >= 0 && kn < APRFS_KN_COUNT && kernel_fn(a, kn) == kernel_fn(b, kn);
}

/* In kernel number order (aprfs_kslot, then aprfs_dqslot order). */
static const char *const kernel_names[] = {
    "widen f16",    "widen bf16",     "maxabs",		"sumabs",	"encode f32",
    "encode f16",   "encode bf16",    "encode q8",	"encode q4",	"encode q4k",
    "encode q6k",   "encode nf4",     "encode ternary", "decode f32",	"decode f16",
    "decode bf16",  "decode q8",      "decode q4",	"decode q4k",	"decode q6k",
    "decode nf4",   "decode ternary", "dequant q8_0",	"dequant q4_0", "dequant q4_1",
    "dequant q5_0", "dequant q5_1",   "dequant q2_k",	"dequant q3_k", "dequant q4_k",
    "dequant q5_k", "dequant q6_k"};
_Static_assert(sizeof(kernel_names) / sizeof(kernel_names[0]) == APRFS_KN_COUNT,
	       "one name per kernel");

const char *aprfs_kernel_name(int kn)
{
	return kn >= 0 && kn < APRFS_KN_COUNT ? kernel_names[kn] : NULL;
}

/* ---- the CPU probe -------------------------------------------------------------------- */

#if defined(__x86_64__)
/* CPUID bits (Intel SDM vol. 2A, CPUID): leaf 1 ECX, leaf 7 sub-leaf 0 EBX. */
enum {
	L1C_FMA = 1u << 12,
	L1C_OSXSAVE = 1u << 27,
	L1C_AVX = 1u << 28,
	L1C_F16C = 1u << 29,
	L7B_AVX2 = 1u << 5,
	L7B_AVX512F = 1u << 16,
	L7B_AVX512DQ = 1u << 17,
	L7B_AVX512BW = 1u << 30,
	L7B_AVX512VL = 1u << 31,
};
/* XCR0 state components the OS must save across context switches: SSE and AVX (YMM)
 * registers for AVX/AVX2/F16C, plus the opmask and both ZMM halves for AVX-512. */
enum { XCR0_AVX = 0x6, XCR0_AVX512 = 0xe6 };

/* XGETBV with ECX = 0 (valid only when CPUID reports OSXSAVE). */
static uint64_t xgetbv0(void)
{
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (uint64_t)hi << 32 | lo;
}

/* What a table needs: the instructions (CPUID) and their registers saved by the OS
 * (XGETBV), without which a feature counts as absent. The same answer with GCC and
 * clang, unlike __builtin_cpu_supports, whose feature names differ between them. AVX2
 * comes with F16C and FMA on every CPU that has it, but checking costs nothing. */
static int x86_has(int isa)
{
	unsigned a = 0, b = 0, c = 0, d = 0, b7 = 0;
	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	const unsigned need1 = L1C_OSXSAVE | L1C_AVX | L1C_F16C | L1C_FMA;
	if ((c & need1) != need1)
		return 0;
	if (__get_cpuid_max(0, NULL) < 7 || !__get_cpuid_count(7, 0, &a, &b7, &c, &d))
		return 0;
	const uint64_t xcr0 = xgetbv0();
	const int avx2 = (b7 & L7B_AVX2) && (xcr0 & XCR0_AVX) == XCR0_AVX;
	if (isa == ISA_AVX2)
		return avx2;
	const unsigned need7 = L7B_AVX512F | L7B_AVX512DQ | L7B_AVX512BW | L7B_AVX512VL;
	return avx2 && (b7 & need7) == need7 && (xcr0 & XCR0_AVX512) == XCR0_AVX512;
}
#endif

static int isa_supported(int isa)
{
	switch (isa) {
	case ISA_SCALAR: return 1;
#if defined(__x86_64__)
	case ISA_AVX2:
	case ISA_AVX512: return x86_has(isa);
#endif
#if defined(__aarch64__)
	case ISA_NEON:
		return (getauxval(AT_HWCAP) & (HWCAP_ASIMD | HWCAP_FP)) ==
		       (HWCAP_ASIMD | HWCAP_FP);
#endif
	default: return 0;
	}
}

static int isa_index(const char *name)
{
	for (int i = 0; i < APRFS_ISA_COUNT; i++)
		if (strcmp(aprfs_kernels_isa_names[i], name) == 0)
			return i;
	return -1;
}

/* ---- the tables ----------------------------------------------------------------------- */

/* Built once each under the lock, then read-only: a resolved function-pointer table. */
static aprfs_kernels tables[APRFS_ISA_COUNT];
static atomic_int table_ready[APRFS_ISA_COUNT];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void fill_isa(int isa, aprfs_kernels *t)
{
	fill_scalar(t);
#if defined(__x86_64__)
	if (isa == ISA_AVX2)
		aprfs_kernels_fill_avx2(t);
	if (isa == ISA_AVX512)
		aprfs_kernels_fill_avx512(t);
#endif
#if defined(__aarch64__)
	if (isa == ISA_NEON)
		aprfs_kernels_fill_neon(t);
#endif
	aprfs_kernels ref;
	fill_scalar(&ref);
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++)
		t->kisa[kn] = kernel_fn(t, kn) == kernel_fn(&ref, kn) ? "scalar" : t->isa;
}

static const aprfs_kernels *table_of(int isa)
{
	if (!atomic_load(&table_ready[isa])) {
		pthread_mutex_lock(&table_lock);
		if (!atomic_load(&table_ready[isa])) {
			fill_isa(isa, &tables[isa]);
			atomic_store(&table_ready[isa], 1);
		}
		pthread_mutex_unlock(&table_lock);
	}
	return &tables[isa];
}

const aprfs_kernels *aprfs_kernels_scalar(void)
{
	return table_of(ISA_SCALAR);
}

const aprfs_kernels *aprfs_kernels_for_isa(const char *isa)
{
	int i = isa ? isa_index(isa) : -1;
	if (i < 0 || !isa_supported(i))
		return NULL;
	return table_of(i);
}

/* ---- the self-check ------------------------------------------------------------------- */

enum { PROBE_N = 1024 + 37 }; /* odd tails for every vector width and block size */

static uint32_t probe_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static float f32_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Values that have tripped SIMD code before: NaNs of both signs with payloads, infinities,
 * denormals, signed zeros, exact .5 ties against the probe scales (0.5 and, for q4, the
 * block scale 1 of a block whose maximum is 7), an all-zero q4/q4k block, huge values
 * (+-1e30, the f16 limit 65504 and the floats just beyond it, which the block codecs
 * clamp), an inf, a 1e30 and a NaN inside an otherwise ordinary q4k/q6k super-block,
 * then random magnitudes over the whole exponent range. */
static void probe_fill(float *x, size_t n)
{
	static const uint32_t special[] = {
	    0x7fc00000, 0xffc00001, 0x7f800001, 0xff800000, 0x7f800000, 0x00000001,
	    0x80000001, 0x007fffff, 0x00800000, 0x80000000, 0x00000000, 0x7f7fffff,
	    0xff7fffff, 0x3e800000, 0xbe800000, 0x3f400000, 0xbf400000, 0x3ec00000,
	    0x477ff000, 0x477fefff, 0x33000000, 0x33000001, 0x387fc000, 0x38800000,
	    0x477fe000, 0x477fe001, 0xc77fe001, 0x7149f2ca, 0xf149f2ca};
	uint32_t s = 0x12345678u;
	for (size_t i = 0; i < n; i++)
		x[i] = f32_of(probe_rand(&s)); /* random bits: every exponent, some NaNs */
	for (size_t i = 0; i < n / 3; i++)     /* a third of ordinary-sized values */
		x[i] = (float)((int)(probe_rand(&s) % 2001) - 1000) / 256.0f;
	memcpy(x + 64, special, sizeof(special));
	for (int i = 0; i < 32; i++) { /* q4 block 4: max 7, ties k + 0.5 */
		x[128 + i] = (float)(i % 15 - 7) + (i & 1 ? 0.5f : 0.0f);
		x[160 + i] = 0.0f; /* q4 block 5 all zero */
	}
	x[128] = 7.0f;
	memset(x + 256, 0, 256 * sizeof(float)); /* an all-zero q4k/q6k super-block */
	for (int i = 0; i < 16; i++)
		x[256 + 40 + i] = (float)i * 1e-30f; /* a nearly-zero q4k sub-block */
	x[230] = f32_of(0x7f800000); /* specials in the ordinary super-block 0 */
	x[231] = f32_of(0xf149f2ca);
	x[240] = f32_of(0xffc00000);
}

static int differ(const void *a, const void *b, size_t len, const char *what, char *why,
		  size_t whylen)
{
	const uint8_t *p = a, *q = b;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != q[i]) {
			snprintf(why, whylen, "%s differs from scalar at byte %zu", what, i);
			return -1;
		}
	}
	return 0;
}

static int check_widen(const aprfs_kernels *k, const aprfs_kernels *r, char *why, size_t wl)
{
	enum { N = 65536 };
	uint16_t *h = malloc(N * sizeof(*h));
	float *a = malloc(N * sizeof(*a)), *b = malloc(N * sizeof(*b));
	int rc = h && a && b ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	for (int i = 0; !rc && i < N; i++)
		h[i] = (uint16_t)i;
	if (!rc) { /* every 16-bit pattern, at an odd offset and length */
		k->widen_f16(h + 1, N - 1, a);
		r->widen_f16(h + 1, N - 1, b);
		rc = differ(a, b, (N - 1) * sizeof(float), "widen_f16", why, wl);
	}
	if (!rc) {
		k->widen_bf16(h + 1, N - 1, a);
		r->widen_bf16(h + 1, N - 1, b);
		rc = differ(a, b, (N - 1) * sizeof(float), "widen_bf16", why, wl);
	}
	free(h);
	free(a);
	free(b);
	return rc;
}

static int check_stats(const aprfs_kernels *k, const aprfs_kernels *r, const float *x,
		       char *why, size_t wl)
{
	static const size_t lens[] = {0, 1, 15, 17, 100, PROBE_N - 1, PROBE_N};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		float ma =
		    k->maxabs(x + 200, lens[i] > PROBE_N - 200 ? PROBE_N - 200 : lens[i]);
		float mb =
		    r->maxabs(x + 200, lens[i] > PROBE_N - 200 ? PROBE_N - 200 : lens[i]);
		uint64_t ca = 1, cb = 1; /* sumabs adds to the count */
		double sa = k->sumabs(x + 1, lens[i] - (lens[i] == PROBE_N), &ca);
		double sb = r->sumabs(x + 1, lens[i] - (lens[i] == PROBE_N), &cb);
		if (differ(&ma, &mb, sizeof(ma), "maxabs", why, wl) ||
		    differ(&sa, &sb, sizeof(sa), "sumabs", why, wl) ||
		    differ(&ca, &cb, sizeof(ca), "sumabs count", why, wl))
			return -1;
	}
	return 0;
}

/* One slot: encode the probe with both tables, then decode the scalar bytes and some
 * arbitrary bytes with both. */
static int check_slot(const aprfs_kernels *k, const aprfs_kernels *r, int slot,
		      const aprfs_qparams *p, const float *x, char *why, size_t wl)
{
	const aprfs_codec *c = slot_codecs[slot];
	size_t bytes = (size_t)aprfs_codec_payload_size(c, PROBE_N, p) + 64;
	uint8_t *ea = calloc(1, bytes), *eb = calloc(1, bytes);
	float *da = calloc(PROBE_N, sizeof(float)), *db = calloc(PROBE_N, sizeof(float));
	char what[64];
	int rc = ea && eb && da && db ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	if (!rc) {
		k->encode[slot](x, PROBE_N, p, ea);
		r->encode[slot](x, PROBE_N, p, eb);
		snprintf(what, sizeof(what), "%s encode", c->name);
		rc = differ(ea, eb, bytes, what, why, wl);
	}
	for (int pass = 0; !rc && pass < 2; pass++) {
		if (pass == 1) { /* arbitrary bytes: NaN scales, odd codes */
			uint32_t s = 0x9e3779b9u;
			for (size_t i = 0; i < bytes; i++)
				eb[i] = (uint8_t)probe_rand(&s);
		}
		k->decode[slot](eb, PROBE_N, p, da);
		r->decode[slot](eb, PROBE_N, p, db);
		snprintf(what, sizeof(what), "%s decode", c->name);
		rc = differ(da, db, PROBE_N * sizeof(float), what, why, wl);
	}
	free(ea);
	free(eb);
	free(da);
	free(db);
	return rc;
}

/* f16 scale bits a dequantizer must treat exactly as the reference does: NaNs of both
 * signs, quiet and signalling, with payloads; infinities; signed zeros; subnormals; the
 * largest finite values; ordinary ones. */
static const uint16_t probe_f16[] = {0x7e00, 0xfe00, 0x7c01, 0xfd55, 0x7fff, 0xffff, 0x7c00,
				     0xfc00, 0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff,
				     0x0400, 0x7bff, 0xfbff, 0x3c00, 0xb555, 0x2e66};
enum { PROBE_NF16 = sizeof(probe_f16) / sizeof(probe_f16[0]) };

static void put_f16(uint8_t *p, uint16_t h)
{
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

/* nb blocks of type t: block b < 256 has every byte b (so every element takes every code,
 * every packed scale every value) under finite normal f16 scales; the blocks after it are
 * random bytes whose scales cycle through probe_f16 (d and the second scale
 * independently, so both are NaN at once in some). */
static void probe_dq_fill(const aprfs_dq_type *t, uint8_t *p, size_t nb)
{
	uint32_t s = 0x2545f491u;
	for (size_t b = 0; b < nb; b++, p += t->bytes) {
		for (size_t i = 0; i < t->bytes; i++)
			p[i] = b < 256 ? (uint8_t)b : (uint8_t)probe_rand(&s);
		for (int f = 0; f < t->nscale; f++) {
			const size_t j = f ? b * 7 + 3 : b;
			const uint16_t ordinary =
			    (uint16_t)(0x0400 + j * 0x1d3 % 0x7800) | (j & 2 ? 0x8000 : 0);
			put_f16(p + t->scale_off[f],
				b < 256 ? ordinary
					: probe_f16[(f ? b * 5 + 2 : b) % PROBE_NF16]);
		}
	}
}

/* Every dequantizer on the probe blocks, whole and in odd counts from an unaligned
 * address; nothing may be written past the last block. */
static int check_dequant(const aprfs_kernels *k, const aprfs_kernels *r, char *why, size_t wl)
{
	enum { NB = 256 + 3 * PROBE_NF16 + 1, MAXBB = 210, SLACK = 16 };
	static const size_t counts[] = {0, 1, 2, 3, 5, 17, NB};
	uint8_t *in = malloc(NB * MAXBB + 1);
	float *a = malloc((NB * 256 + SLACK) * sizeof(float));
	float *b = malloc((NB * 256 + SLACK) * sizeof(float));
	int rc = in && a && b ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	for (int s = 0; !rc && s < APRFS_DQ_COUNT; s++) {
		const aprfs_dq_type *t = &aprfs_dq_types[s];
		probe_dq_fill(t, in + 1, NB);
		for (size_t c = 0; !rc && c < sizeof(counts) / sizeof(counts[0]); c++) {
			const size_t nb = counts[c],
				     len = (nb * t->elems + SLACK) * sizeof(float);
			const uint8_t *p = in + 1 + (NB - nb) * t->bytes; /* the last nb */
			memset(a, 0x5a, len);
			memset(b, 0x5a, len);
			k->dequant[s](p, nb, a);
			r->dequant[s](p, nb, b);
			rc =
			    differ(a, b, len, aprfs_kernel_name(APRFS_KN_DEQUANT + s), why, wl);
		}
	}
	free(in);
	free(a);
	free(b);
	return rc;
}

int aprfs_kernels_selfcheck(const aprfs_kernels *k, char *why, size_t whylen)
{
	const aprfs_kernels *r = aprfs_kernels_scalar();
	static const aprfs_qparams params[] = {{0.5f, 64}, {0.0f, 6}, {3.0e-3f, 32}};
	float *x = malloc(PROBE_N * sizeof(float));
	int rc = x ? 0 : -1;
	if (rc)
		snprintf(why, whylen, "out of memory");
	if (!rc) {
		probe_fill(x, PROBE_N);
		rc = check_widen(k, r, why, whylen);
	}
	if (!rc)
		rc = check_stats(k, r, x, why, whylen);
	for (int s = 0; !rc && s < APRFS_K_COUNT; s++)
		for (size_t i = 0; !rc && i < sizeof(params) / sizeof(params[0]); i++)
			rc = check_slot(k, r, s, &params[i], x, why, whylen);
	if (!rc)
		rc = check_dequant(k, r, why, whylen);
	free(x);
	return rc;
}

/* ---- per-kernel preferences ----------------------------------------------------------- */

/* The ISA order every kernel not listed below takes: the widest first. */
static const int default_order[] = {ISA_AVX512, ISA_AVX2, ISA_NEON};

/* Kernels measured faster with another ISA than default_order's first one. Every ISA is
 * byte-identical, so only speed decides. Figures: `make bench`'s build/tools/bench_kernels
 * 64 (one thread, 64 MiB of Gaussian f32, MB/s of f32 input), median of 5 runs, on a
 * 2-core KVM guest of an AMD EPYC with AVX-512 F/BW/VL/DQ (512-bit operations there cost
 * about two 256-bit ones, so AVX-512 wins only where it saves other work), gcc 12 -O2:
 *
 *   kernel          scalar    avx2  avx512  taken from
 *   encode f16         680   28741   31362  avx512
 *   encode bf16       4174   25254   17066  avx2
 *   encode q8         1564   22305   23951  avx512
 *   encode q4          532    6181    7788  avx512
 *   encode q4k         165     713    1139  avx512
 *   encode q6k         185     980    1570  avx512
 *   encode nf4         649    5949    6400  avx512
 *   encode ternary     367   17496   13880  avx2
 *   decode f16        3232   28870   30081  avx512
 *   decode bf16       3977   27918   29211  avx512
 *   decode q8        12527   32575   34651  avx512
 *   decode q4         5493   29565   31202  avx512
 *   decode q4k        9768   29681   30757  avx512
 *   decode q6k        5606   29520   30208  avx512
 *   decode nf4        8255   30402   35117  avx512
 *   decode ternary     955    3292    5899  avx512
 *   widen bf16        4199   28994   29967  avx512
 *   widen f16         3351   28719   29017  avx512
 *   maxabs            8088   31013   26578  avx2
 *   sumabs            8253   27339   26131  avx2
 *
 * AVX2 is preferred where its slowest of the 5 runs beat AVX-512's fastest (encode bf16
 * 1.48x, encode ternary 1.26x, maxabs 1.17x, sumabs 1.05x); everything else keeps the
 * widest ISA. (Earlier figures had AVX2 ahead for encode f16 and nf4 as well; here
 * AVX-512 wins both, nf4 since its block absmax became an integer maximum.)
 *
 * The GGML dequantizers, MB/s of f32 output from Gaussian data encoded as each type,
 * median of 5 runs: at 64 MiB (bound by memory writes) and at 1 MiB (cache-resident, as
 * a conversion's 64K-element chunks are):
 *
 *                   ------- 64 MiB -------   -------- 1 MiB --------
 *   kernel          scalar    avx2  avx512   scalar    avx2  avx512  taken from
 *   dequant q8_0     11216   28283   28625    11443   91843   98310  avx512
 *   dequant q4_0      8081   29907   33180     8296   64871  103974  avx512
 *   dequant q4_1     10613   31121   31594    10982   50337   80604  avx512
 *   dequant q5_0      7091   30318   32272     7269   52692   76371  avx512
 *   dequant q5_1      7292   30061   32957     7539   41140   63685  avx512
 *   dequant q2_k      8854   26320   31703     9131   36918   56935  avx512
 *   dequant q3_k      4815   22532   26890     4968   24209   32009  avx512
 *   dequant q4_k      8672   28163   29909     8812   38466   49527  avx512
 *   dequant q5_k      5397   24284   25355     5460   36621   48140  avx512
 *   dequant q6_k      5405   29199   28893     5467   46453   46246  avx512
 *
 * AVX-512 is ahead or level for every one (q6_k is level: AVX2's slowest run is below
 * AVX-512's fastest at both sizes, 25969 < 29416 and 46144 < 47312), so none is listed
 * below. (The scalar column swings by a third between sessions on this shared VM.) */
static const struct {
	int kn;
	int order[3];
} prefs[] = {
    {APRFS_KN_ENCODE + APRFS_K_BF16, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_ENCODE + APRFS_K_TERNARY, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_MAXABS, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_SUMABS, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
};

/* Kernel kn's ISA at rank r of its order (ISA_* or -1 past the end). */
static int pref_isa(int kn, int r)
{
	const int *order = default_order;
	for (size_t i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++)
		if (prefs[i].kn == kn)
			order = prefs[i].order;
	return r >= 0 && r < 3 ? order[r] : -1;
}

const char *aprfs_kernels_preferred(int kn, int r)
{
	if (kn < 0 || kn >= APRFS_KN_COUNT)
		return NULL;
	int isa = pref_isa(kn, r);
	return isa < 0 ? NULL : aprfs_kernels_isa_names[isa];
}

/* ---- resolution ----------------------------------------------------------------------- */

static const aprfs_kernels *_Atomic chosen;
static pthread_mutex_t chosen_lock = PTHREAD_MUTEX_INITIALIZER;

static void refuse(const char *fmt, const char *isa, const char *why)
{
	fprintf(stderr, "aprfs: APRFS_ISA=%s: ", isa);
	fprintf(stderr, fmt, why);
	fputc('\n', stderr);
	exit(2);
}

static const aprfs_kernels *resolve_forced(const char *env)
{
	char why[160];
	int i = isa_index(env);
	if (i < 0)
		refuse("unknown ISA%s (one of scalar, avx2, avx512, neon)", env, "");
	if (!isa_supported(i))
		refuse("this CPU or build cannot run %s kernels", env, env);
	const aprfs_kernels *t = table_of(i);
	if (i != ISA_SCALAR && aprfs_kernels_selfcheck(t, why, sizeof(why)))
		refuse("kernels failed their self-check: %s", env, why);
	return t;
}

/* snprintf at *len into buf, never past cap (a long name is cut, not overrun). */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (*len < cap) {
		int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
		*len = n < 0 ? cap : *len + (size_t)n;
	}
	va_end(ap);
}

/* The default table, assembled once (it depends on the CPU only): every kernel from the
 * first ISA of its preference order that the CPU has and whose whole table agrees with
 * the scalar reference, else the scalar one. Named after the main ISA (the first usable
 * one of default_order) and its exceptions. If no kernel differs from the main ISA's,
 * that whole table is used; if the assembled one failed its own self-check (it cannot,
 * being made of checked kernels, but it is checked like every table used), too. */
static aprfs_kernels mixed;
static char mixed_name[512];

static const aprfs_kernels *assemble(void)
{
	char why[160];
	int ok[APRFS_ISA_COUNT] = {0}, main_isa = ISA_SCALAR;
	ok[ISA_SCALAR] = 1;
	for (size_t i = 0; i < sizeof(default_order) / sizeof(default_order[0]); i++) {
		int isa = default_order[i];
		if (!isa_supported(isa))
			continue;
		const aprfs_kernels *t = table_of(isa);
		if (aprfs_kernels_selfcheck(t, why, sizeof(why)) == 0) {
			ok[isa] = 1;
			main_isa = main_isa == ISA_SCALAR ? isa : main_isa;
		} else {
			fprintf(stderr, "aprfs: %s kernels disabled, self-check failed: %s\n",
				t->isa, why);
		}
	}
	const aprfs_kernels *base = table_of(main_isa);
	fill_scalar(&mixed);
	int exceptions = 0;
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
		int r = 0, isa;
		while ((isa = pref_isa(kn, r)) >= 0 && !ok[isa])
			r++;
		copy_kernel(&mixed, isa >= 0 ? table_of(isa) : aprfs_kernels_scalar(), kn);
		exceptions += !aprfs_kernels_same(&mixed, base, kn);
	}
	if (!exceptions)
		return base;

	/* "avx512 (avx2 for encode bf16, maxabs; neon for ...)" */
	size_t len = 0;
	append(mixed_name, sizeof(mixed_name), &len, "%s (", base->isa);
	int groups = 0;
	for (int isa = 0; isa < APRFS_ISA_COUNT; isa++) {
		const char *name = aprfs_kernels_isa_names[isa];
		int in_group = 0;
		for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
			if (aprfs_kernels_same(&mixed, base, kn) ||
			    strcmp(mixed.kisa[kn], name))
				continue;
			if (in_group)
				append(mixed_name, sizeof(mixed_name), &len, ", %s",
				       aprfs_kernel_name(kn));
			else
				append(mixed_name, sizeof(mixed_name), &len, "%s%s for %s",
				       groups++ ? "; " : "", name, aprfs_kernel_name(kn));
			in_group = 1;
		}
	}
	append(mixed_name, sizeof(mixed_name), &len, ")");
	mixed.isa = mixed_name;
	if (aprfs_kernels_selfcheck(&mixed, why, sizeof(why))) {
		fprintf(stderr, "aprfs: per-kernel table disabled, self-check failed: %s\n",
			why);
		return base;
	}
	return &mixed;
}

/* Built once: the CPU does not change, and a table handed out stays valid. */
static const aprfs_kernels *assembled;

static const aprfs_kernels *default_table(void)
{
	if (!assembled)
		assembled = assemble();
	return assembled;
}

static const aprfs_kernels *resolve(void)
{
	const char *env = getenv("APRFS_ISA");
	if (env && *env)
		return resolve_forced(env);
	return default_table();
}

const aprfs_kernels *aprfs_kernels_get(void)
{
	const aprfs_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
	if (k)
		return k;
	pthread_mutex_lock(&chosen_lock);
	k = atomic_load(&chosen);
	if (!k) {
		k = resolve();
		atomic_store_explicit(&chosen, k, memory_order_release);
	}
	pthread_mutex_unlock(&chosen_lock);
	return k;
}

const char *aprfs_kernels_isa(void)
{
	return aprfs_kernels_get()->isa;
}

void aprfs_kernels_reset(void)
{
	pthread_mutex_lock(&chosen_lock);
	atomic_store(&chosen, NULL);
	pthread_mutex_unlock(&chosen_lock);
}

/* ---- widening and fused encoding ------------------------------------------------------ */

void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
		 float *out)
{
	if (d == APRFS_SRC_F16)
		k->widen_f16(raw, n, out);
	else if (d == APRFS_SRC_BF16)
		k->widen_bf16(raw, n, out);
	else if (n)
		memcpy(out, raw, n * sizeof(float));
}

int aprfs_dequant(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t nblocks,
		  float *out)
{
	const int s = aprfs_dqslot_of(d);
	if (s >= 0) {
		k->dequant[s](raw, nblocks, out);
		return 0;
	}
	switch (d) {
	case APRFS_SRC_F32:
	case APRFS_SRC_F16:
	case APRFS_SRC_BF16: aprfs_widen(k, d, raw, nblocks, out); return 0;
	default: return -ENOTSUP;
	}
}

/* 16 KiB of f32: the tile stays in L1 between the widening store and the encoder's load,
 * so a bf16 chunk is read from memory once, at half the bytes of an f32 one. Every codec
 * with a fixed block size divides it (1, 4, 32, 256); nf4 uses the largest multiple of
 * its block that fits, or one heap block when a block alone is larger. */
#define TILE_ELEMS 4096

int aprfs_encode_src(const aprfs_kernels *k, aprfs_kslot slot, aprfs_src_dtype d,
		     const void *raw, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	const aprfs_codec *c = slot_codecs[slot];
	size_t be = (size_t)aprfs_codec_block_elems(c, p);
	size_t bb = (size_t)aprfs_codec_block_bytes(c, p);
	if (d != APRFS_SRC_F16 && d != APRFS_SRC_BF16) {
		k->encode[slot](raw, n, p, out);
		return 0;
	}
	if (be == 0)
		return 0; /* an nf4 without a block size encodes nothing */
	float stack_tile[TILE_ELEMS];
	size_t tile = be <= TILE_ELEMS ? TILE_ELEMS / be * be : be;
	float *x = tile <= TILE_ELEMS ? stack_tile : malloc(tile * sizeof(float));
	const uint16_t *h = raw;
	if (!x)
		return -ENOMEM;
	for (size_t at = 0; at < n; at += tile) {
		size_t len = n - at < tile ? n - at : tile;
		aprfs_widen(k, d, h + at, len, x);
		k->encode[slot](x, len, p, out + at / be * bb);
	}
	if (x != stack_tile)
		free(x);
	return 0;
}
