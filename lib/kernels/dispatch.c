/* dispatch.c - choosing the kernel table: the scalar reference table, the CPU probe
 * (CPUID and XGETBV via <cpuid.h>, hwcaps on ARM), the APRFS_ISA override, the self-check
 * every SIMD table passes before use, and tiled fused encoding. */
#include <errno.h>
#include <pthread.h>
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

#include "../half.h"
#include "kernels.h"

const char *const aprfs_kernels_isa_names[APRFS_ISA_COUNT] = {"scalar", "avx2", "avx512",
							      "neon"};
enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_NEON };

static void widen_f16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = aprfs_f16_to_f32(in[i]);
}

static void widen_bf16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = aprfs_bf16_to_f32(in[i]);
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
	free(x);
	return rc;
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

/* Best first; the first one the CPU has whose kernels agree with the scalar reference. */
static const aprfs_kernels *resolve(void)
{
	static const int order[] = {ISA_AVX512, ISA_AVX2, ISA_NEON};
	const char *env = getenv("APRFS_ISA");
	char why[160];
	if (env && *env)
		return resolve_forced(env);
	for (size_t i = 0; i < sizeof(order) / sizeof(order[0]); i++) {
		if (!isa_supported(order[i]))
			continue;
		const aprfs_kernels *t = table_of(order[i]);
		if (aprfs_kernels_selfcheck(t, why, sizeof(why)) == 0)
			return t;
		fprintf(stderr, "aprfs: %s kernels disabled, self-check failed: %s\n", t->isa,
			why);
	}
	return aprfs_kernels_scalar();
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
