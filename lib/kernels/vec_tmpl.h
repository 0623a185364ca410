/* vec_tmpl.h - the SIMD kernels, written once in the vector extensions GCC and clang share
 * (vector_size types, __builtin_shufflevector with constant indices,
 * __builtin_convertvector) and compiled per ISA by x86/avx2.c, x86/avx512.c and
 * arm/neon.c (each is compiled for its target by the Makefile's per-file flags, sets
 * KV_FILL, the lane count KV_W and the half-precision hooks kv_f16_widenw /
 * kv_f16_narroww, may supply faster hooks (KV_HAVE_*), then includes this file).
 *
 * Byte identity with the scalar reference is the design rule, and it holds because every
 * floating operation here is the reference's own operation on the same operands in the
 * same order: elementwise kernels run lanes = elements; the k-quant searches run lanes =
 * sub-blocks, so each lane replays the scalar search step for step (branches become
 * selects), and their fixed-order sums (kquant_search.h) become adds of whole rows. No
 * operation is contracted into an FMA (the build's -ffp-contract=off, and for clang the
 * pragma below too; the x86 files are compiled without FMA at all), none is reassociated.
 * Tails shorter than a vector go to the scalar reference codec itself. vec_kquant.h holds
 * the Q4_K / Q6_K kernels, vec_ggml.h the dequantizers of GGUF's block types. */
#if !defined(KV_FILL) || !defined(KV_W)
#error "include vec_tmpl.h from an ISA file that defines KV_FILL and KV_W"
#endif

#if defined(__clang__)
#pragma clang fp contract(off)
#else
/* GCC notes that 64-byte vector arguments change the ABI on targets without AVX-512
 * (NEON's 16-lane vectors): these functions are all static, so no ABI is crossed. */
#pragma GCC diagnostic ignored "-Wpsabi"
#endif

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "base/half.h"
#include "kernels/kernels.h"
#include "quant/codec.h"
#include "quant/ggml_dequant.h"
#include "quant/kquant_search.h"

#define KV_INLINE static inline __attribute__((always_inline))

/* KV_W lanes of 32 bits fill one native register (AVX2 8, AVX-512 16, NEON 4): GCC
 * lowers wider generic vectors lane by lane for compares, which would undo the point. */
#define KV_VEC(t, lanes) t __attribute__((vector_size((lanes) * sizeof(t))))
typedef KV_VEC(float, KV_W) vf;	     /* KV_W floats */
typedef KV_VEC(int32_t, KV_W) vi;    /* KV_W int32 (masks: 0 / -1) */
typedef KV_VEC(uint32_t, KV_W) vu;   /* KV_W uint32 */
typedef KV_VEC(uint16_t, KV_W) vh;   /* KV_W uint16 */
typedef KV_VEC(int8_t, KV_W) vs8;    /* KV_W int8 */
typedef KV_VEC(uint8_t, KV_W) vb;    /* KV_W uint8 */
typedef KV_VEC(float, KV_W / 2) vfh; /* half a vf, widened to ... */
typedef KV_VEC(double, KV_W / 2) vd; /* ... one native register of doubles */
typedef KV_VEC(uint8_t, 16) vb16;    /* byte rows of the block codecs */
typedef KV_VEC(uint8_t, 32) vb32;

/* __builtin_shufflevector indices picking the even / odd lanes of two vi. */
#if KV_W == 16
#define KV_EVEN 0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30
#define KV_ODD	1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31
#elif KV_W == 8
#define KV_EVEN 0, 2, 4, 6, 8, 10, 12, 14
#define KV_ODD	1, 3, 5, 7, 9, 11, 13, 15
#elif KV_W == 4
#define KV_EVEN 0, 2, 4, 6
#define KV_ODD	1, 3, 5, 7
#else
#error "KV_W must be 4, 8 or 16"
#endif

KV_INLINE vf ldf(const float *p)
{
	vf v;
	memcpy(&v, p, sizeof(v));
	return v;
}

KV_INLINE void stf(float *p, vf v)
{
	memcpy(p, &v, sizeof(v));
}

/* A broadcast of f's bits: (vf){0} + f would turn -0.0 into +0.0. */
KV_INLINE vf splat(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return (vf)((vu){0} + u);
}

KV_INLINE vf sel(vi m, vf a, vf b)
{
	return (vf)(((vi)a & m) | ((vi)b & ~m));
}

KV_INLINE vi seli(vi m, vi a, vi b)
{
	return (a & m) | (b & ~m);
}

KV_INLINE vf vabs(vf v)
{
	return (vf)((vu)v & 0x7fffffffu);
}

KV_INLINE vi isnan_v(vf v)
{
	return (vi)((vu)v & 0x7fffffffu) > 0x7f800000;
}

/* The low byte of each lane. GCC scalarises a narrowing __builtin_convertvector where the
 * ISA has no single instruction for it (AVX2), so an ISA file may supply kv_narrow_b. */
#ifndef KV_HAVE_NARROW_B
KV_INLINE vb kv_narrow_b(vi v)
{
	return __builtin_convertvector(v, vb);
}
#endif

/* ---- widening and narrowing ----------------------------------------------------------- */

KV_INLINE vf bf16_widenw(const uint16_t *p)
{
	vh h;
	memcpy(&h, p, sizeof(h));
	return (vf)(__builtin_convertvector(h, vu) << 16);
}

static void widen_bf16_v(const uint16_t *in, size_t n, float *out)
{
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W)
		stf(out + i, bf16_widenw(in + i));
	for (; i < n; i++) { /* memcpy: the input may be unaligned */
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_bf16_to_f32(h);
	}
}

static void widen_f16_v(const uint16_t *in, size_t n, float *out)
{
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W)
		kv_f16_widenw(in + i, out + i);
	for (; i < n; i++) {
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_f16_to_f32(h);
	}
}

/* half.c's aprfs_f32_to_bf16, lane by lane: the carry trick rounds half to even. */
static void encode_bf16_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W) {
		vu u = (vu)ldf(x + i);
		vu r = (u + 0x7fff + ((u >> 16) & 1)) >> 16;
		vu q = (u >> 16) | 0x0040;
		vi nan = (vi)(u & 0x7fffffffu) > 0x7f800000;
		vh h = __builtin_convertvector((vu)seli(nan, (vi)q, (vi)r), vh);
		memcpy(out + 2 * i, &h, sizeof(h));
	}
	if (i < n)
		aprfs_codec_bf16.encode(x + i, n - i, p, out + 2 * i);
}

static void encode_f16_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W)
		kv_f16_narroww(x + i, out + 2 * i);
	if (i < n)
		aprfs_codec_f16.encode(x + i, n - i, p, out + 2 * i);
}

static void decode_f16_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	size_t i = 0;
	uint16_t h[KV_W];
	for (; i + KV_W <= n; i += KV_W) {
		memcpy(h, in + 2 * i, sizeof(h));
		kv_f16_widenw(h, y + i);
	}
	if (i < n)
		aprfs_codec_f16.decode(in + 2 * i, n - i, p, y + i);
}

static void decode_bf16_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	size_t i = 0;
	uint16_t h[KV_W];
	for (; i + KV_W <= n; i += KV_W) {
		memcpy(h, in + 2 * i, sizeof(h));
		stf(y + i, bf16_widenw(h));
	}
	if (i < n)
		aprfs_codec_bf16.decode(in + 2 * i, n - i, p, y + i);
}

/* ---- statistics ----------------------------------------------------------------------- */

/* Maximum is order-free on non-negative non-NaN values, so any lane split gives the
 * reference's float; "a > m" is false for NaN, which is how NaN is skipped. */
KV_INLINE float hmax(vf m, float r)
{
	for (int j = 0; j < KV_W; j++)
		r = m[j] > r ? m[j] : r;
	return r;
}

/* |x| with the non-finite lanes (NaN, +-inf) as +0.0, as bits: a non-negative float's bit
 * pattern orders like its value, and every non-finite one is >= 0x7f800000. */
KV_INLINE vi abs_finite_bits(vf v)
{
	const vi a = (vi)vabs(v);
	return a & (a < 0x7f800000);
}

/* Finite values only (codec.c): a non-finite lane counts as +0.0, which never beats the
 * running maximum (itself >= +0.0). */
static float maxabs_v(const float *x, size_t n)
{
	vi m = {0};
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W) {
		const vi a = abs_finite_bits(ldf(x + i));
		m = seli(a > m, a, m);
	}
	float r = hmax((vf)m, 0.0f);
	for (; i < n; i++) {
		const float a = fabsf(x[i]);
		r = a > r && a <= FLT_MAX ? a : r;
	}
	return r;
}

/* The reference's 16 double lanes are 32 / KV_W native double registers: lane j takes
 * elements j, j+16, ... Adding +0.0 for a non-finite element equals skipping it (a lane
 * sum is never -0.0). The finite elements are counted per lane in int32, flushed to the
 * 64-bit total every KV_CNT_SPAN elements so no lane count can wrap. */
enum { KV_DREGS = 32 / KV_W };
#define KV_CNT_SPAN ((size_t)1 << 28)

static double sumabs_v(const float *x, size_t n, uint64_t *nfinite)
{
	vd acc[KV_DREGS] = {{0}};
	uint64_t fin = 0;
	size_t i = 0;
	while (i + 16 <= n) {
		const size_t end = n - i > KV_CNT_SPAN ? i + KV_CNT_SPAN : n;
		vi cnt = {0};
		for (; i + 16 <= end; i += 16) {
			for (int g = 0; g < 16 / KV_W; g++) {
				const vi ab = (vi)vabs(ldf(x + i + g * KV_W));
				const vi finite = ab < 0x7f800000; /* -1 where finite */
				const vf a = (vf)(ab & finite);
				cnt += finite;
				vfh lo, hi;
				memcpy(&lo, &a, sizeof(lo));
				memcpy(&hi, (const char *)&a + sizeof(lo), sizeof(hi));
				acc[2 * g] += __builtin_convertvector(lo, vd);
				acc[2 * g + 1] += __builtin_convertvector(hi, vd);
			}
		}
		for (int j = 0; j < KV_W; j++)
			fin += (uint32_t)-cnt[j];
	}
	double l[16];
	/* cppcheck-suppress bufferAccessOutOfBounds ; acc is 16 doubles, cppcheck counts 2 */
	memcpy(l, acc, sizeof(l));
	for (size_t j = 0; i < n; i++, j++) {
		float a = fabsf(x[i]);
		if (a <= FLT_MAX) {
			l[j] += (double)a;
			fin++;
		}
	}
	for (int w = 8; w >= 1; w /= 2)
		for (int j = 0; j < w; j++)
			l[j] += l[j + w];
	*nfinite += fin;
	return l[0];
}

/* ---- q8, q4, ternary, nf4 --------------------------------------------------------------- */

/* kq_clamp: v < lo ? lo : v > hi ? hi : v (NaN stays NaN). An ISA file may supply it as
 * max-then-min when its instructions have exactly these semantics, operand order included
 * (x86 maxps(lo, v) returns v for NaN and for equal zeros). */
#ifndef KV_HAVE_CLAMP
KV_INLINE vf kv_clamp(vf v, float lo, float hi)
{
	vf r = sel(v > hi, splat(hi), v);
	return sel(v < lo, splat(lo), r);
}
#endif

/* codec.h's aprfs_block_sanitize lane by lane: NaN as +0.0, then clamped to +-65504
 * (-0.0 stays -0.0). The input rule of q4, nf4, Q4_K and Q6_K. */
KV_INLINE vf kv_block_sanitize(vf v)
{
	v = sel(isnan_v(v), splat(0.0f), v);
	return kv_clamp(v, -APRFS_BLOCK_LIMIT, APRFS_BLOCK_LIMIT);
}

/* roundf(y) (half away from zero) clamped to the integers [lo, hi], NaN as 0, as int32.
 * Rounding is monotone and keeps integers, so clamping first gives the same value and
 * leaves |y| small enough to convert. Then trunc(y + copysign(0.5 - 2^-25, y)) is roundf:
 * checked for every non-NaN float against roundf for [-127, 127] and [-8, 7] (an exact
 * .5 lands on the next integer by the add's round-to-even, anything below .5 cannot). */
KV_INLINE vi round_away(vf y, float lo, float hi)
{
	const vf c = (vf)((vi)kv_clamp(y, lo, hi) & (vi)(y == y));
	const vf h = (vf)(((vu)c & 0x80000000u) | 0x3effffffu);
	return __builtin_convertvector(c + h, vi);
}

/* Touch the cache lines `ahead` bytes past p..p+bytes: streaming kernels go faster than a
 * missing or weak hardware prefetcher fetches (4x on the benchmark VM for q8 at 64 MiB).
 * A hint only: no byte of output depends on it. */
enum { KV_PF_AHEAD = 2048 };
KV_INLINE void kv_prefetch(const void *p, size_t bytes)
{
	for (size_t o = 0; o < bytes; o += 64)
		__builtin_prefetch((const char *)p + KV_PF_AHEAD + o);
}

/* Four vectors of int32 in [-128, 127] to 4 KV_W bytes, in lane order. An ISA file may
 * supply it with saturating packs (exact for in-range values). */
#ifndef KV_HAVE_STORE4_S8
KV_INLINE void kv_store4_s8(uint8_t *out, vi a, vi b, vi c, vi d)
{
	const vb r[4] = {kv_narrow_b(a), kv_narrow_b(b), kv_narrow_b(c), kv_narrow_b(d)};
	memcpy(out, r, sizeof(r));
}
#endif

/* KV_W int8 at p as int32 lanes. GCC scalarises this conversion on some ISAs, so an ISA
 * file may supply it as one sign-extending load. */
#ifndef KV_HAVE_WIDEN_S8
KV_INLINE vi kv_widen_s8(const int8_t *p)
{
	vs8 b;
	memcpy(&b, p, sizeof(b));
	return __builtin_convertvector(b, vi);
}
#endif

static void encode_q8_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	const float s = p->scale;
	size_t i = 0;
	for (; i + 4 * KV_W <= n; i += 4 * KV_W) {
		kv_prefetch(x + i, 4 * KV_W * sizeof(float));
		vi q[4];
		for (int g = 0; g < 4; g++)
			q[g] = round_away(ldf(x + i + g * KV_W) / s, -127.0f, 127.0f);
		kv_store4_s8(out + i, q[0], q[1], q[2], q[3]);
	}
	if (i < n)
		aprfs_codec_q8.encode(x + i, n - i, p, out + i);
}

static void decode_q8_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	const vf s = splat(p->scale);
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W)
		stf(y + i,
		    s * __builtin_convertvector(kv_widen_s8((const int8_t *)in + i), vf));
	if (i < n)
		aprfs_codec_q8.decode(in + i, n - i, p, y + i);
}

/* Two vectors of codes (2 KV_W elements) to KV_W bytes, element 2k in the low nibble. */
KV_INLINE void pack_nibbles(vi c0, vi c1, uint8_t *out)
{
	vi even = __builtin_shufflevector(c0, c1, KV_EVEN);
	vi odd = __builtin_shufflevector(c0, c1, KV_ODD);
	vb b = kv_narrow_b(even | odd << 4);
	memcpy(out, &b, sizeof(b));
}

KV_INLINE vi q4_codes(vf x, float s)
{
	return round_away(x / s, -8.0f, 7.0f) + 8;
}

/* The bits of the largest |x| of a block as a signed-integer maximum of the abs bits:
 * for non-NaN values the same order as the floats (+0.0 is the smallest), and every NaN,
 * inf and |x| > 65504 is above KV_LIMIT_BITS, so one compare of the result tells whether
 * the block needs aprfs_block_sanitize at all. Clean blocks (nearly all) skip it: it is
 * the identity on them, so the bytes are the same either way. */
#define KV_LIMIT_BITS 0x477fe000 /* 65504.0f */

KV_INLINE vi kv_max_abs_bits(vi m, vf v)
{
	const vi a = (vi)vabs(v);
	return seli(a > m, a, m);
}

KV_INLINE uint32_t kv_hmax_bits(vi m)
{
	int32_t r = 0;
	for (int j = 0; j < KV_W; j++)
		r = m[j] > r ? m[j] : r;
	return (uint32_t)r;
}

KV_INLINE float f32_of_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static void encode_q4_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	size_t off = 0;
	for (; off + 32 <= n; off += 32, out += 18) {
		vf v[32 / KV_W];
		vi mb = {0};
		for (int g = 0; g < 32 / KV_W; g++) {
			v[g] = ldf(x + off + g * KV_W);
			mb = kv_max_abs_bits(mb, v[g]);
		}
		uint32_t bits = kv_hmax_bits(mb);
		if (bits > KV_LIMIT_BITS) { /* NaN, inf or beyond 65504: sanitise the block */
			mb = (vi){0};
			for (int g = 0; g < 32 / KV_W; g++) {
				v[g] = kv_block_sanitize(v[g]);
				mb = kv_max_abs_bits(mb, v[g]);
			}
			bits = kv_hmax_bits(mb);
		}
		const float mx = f32_of_bits(bits);
		float s = mx == 0.0f ? 1.0f : mx / 7.0f;
		uint16_t h = aprfs_f32_to_f16(s);
		out[0] = (uint8_t)h;
		out[1] = (uint8_t)(h >> 8);
		for (int g = 0; g < 32 / KV_W; g += 2)
			pack_nibbles(q4_codes(v[g], s), q4_codes(v[g + 1], s),
				     out + 2 + g * KV_W / 2);
	}
	if (off < n)
		aprfs_codec_q4.encode(x + off, n - off, p, out);
}

/* 16 bytes of nibbles to 32 int8 codes minus bias, in element order: element 2k is the
 * low nibble of byte k (q4's and nf4's layout). */
KV_INLINE void kv_unpack_nibbles(const uint8_t *in, uint8_t bias, int8_t *codes)
{
	vb16 b;
	memcpy(&b, in, sizeof(b));
	const vb16 lo = b & 15, hi = b >> 4;
	const vb16 c0 = __builtin_shufflevector(lo, hi, 0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5,
						21, 6, 22, 7, 23) -
			bias;
	const vb16 c1 = __builtin_shufflevector(lo, hi, 8, 24, 9, 25, 10, 26, 11, 27, 12, 28,
						13, 29, 14, 30, 15, 31) -
			bias;
	memcpy(codes, &c0, sizeof(c0));
	memcpy(codes + 16, &c1, sizeof(c1));
}

KV_INLINE vf kv_s8_to_f(const int8_t *p)
{
	return __builtin_convertvector(kv_widen_s8(p), vf);
}

/* q4.c's q4_usable_scale: a NaN, infinite or below-6.1e-5 scale zeroes the block. */
static float kv_q4_scale(const uint8_t *in)
{
	const float s = aprfs_f16_to_f32((uint16_t)(in[0] | in[1] << 8));
	return isinf(s) || !(s >= 6.1e-5f) ? 0.0f : s;
}

static void decode_q4_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	size_t off = 0;
	for (; off + 32 <= n; off += 32, in += 18) {
		const float s = kv_q4_scale(in);
		if (s == 0.0f) { /* +0.0 whatever the code, as the reference writes */
			memset(y + off, 0, 32 * sizeof(float));
			continue;
		}
		int8_t c[32];
		kv_unpack_nibbles(in + 2, 8, c);
		for (int g = 0; g < 32; g += KV_W)
			stf(y + off + g, splat(s) * kv_s8_to_f(c + g));
	}
	if (off < n)
		aprfs_codec_q4.decode(in, n - off, p, y + off);
}

/* t[idx] for a 16-float table t (idx in [0, 15], a run-time vector: no
 * __builtin_shufflevector). Every ISA file supplies it as a permute (vpermps, vpermd,
 * tbl); this lane-by-lane version is the portable fallback. */
#ifndef KV_HAVE_LUT16
KV_INLINE vf kv_lut16(const float *t, vi idx)
{
	vf r;
	for (int j = 0; j < KV_W; j++)
		r[j] = t[idx[j] & 15];
	return r;
}
#endif

static void decode_nf4_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	if (!p || !p->nf4_block || (p->nf4_block & 1))
		return;
	const size_t b = p->nf4_block;
	size_t off = 0;
	for (; off + b <= n; off += b, in += 4 + b / 2) {
		float m; /* little-endian f32, as on every ISA built here */
		memcpy(&m, in, sizeof(m));
		const vf mv = splat(m);
		size_t i = 0;
		for (; i + 32 <= b; i += 32) {
			int8_t c[32];
			kv_unpack_nibbles(in + 4 + i / 2, 0, c);
			for (int g = 0; g < 32; g += KV_W)
				stf(y + off + i + g,
				    kv_lut16(aprfs_nf4_levels, kv_widen_s8(c + g)) * mv);
		}
		for (; i < b; i++)
			y[off + i] =
			    aprfs_nf4_levels[(in[4 + i / 2] >> (4 * (i & 1))) & 15] * m;
	}
	if (off < n)
		aprfs_codec_nf4.decode(in, n - off, p, y + off);
}

/* roundf(y) >= 1 exactly when y >= 0.5, and <= -1 exactly when y <= -0.5; NaN is
 * neither. Code 1 for +1, 2 for -1, four codes a byte, element 4k+j at bits 2j. */
KV_INLINE vu trit_shifts(void)
{
	vu sh = {0};
	for (int j = 0; j < KV_W; j++)
		sh[j] = 2 * (j % 4);
	return sh;
}

static void encode_ternary_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	const float alpha = p->scale;
	const vu sh = trit_shifts();
	size_t i = 0;
	if (alpha != 0.0f) {
		for (; i + KV_W <= n; i += KV_W) {
			vf y = ldf(x + i) / alpha;
			vu c = ((vu)(y >= 0.5f) & 1) | ((vu)(y <= -0.5f) & 2);
			vb b = kv_narrow_b((vi)(c << sh));
			uint32_t w[KV_W / 4];
			memcpy(w, &b, sizeof(w));
			for (int k = 0; k < KV_W / 4; k++)
				out[i / 4 + k] =
				    (uint8_t)(w[k] | w[k] >> 8 | w[k] >> 16 | w[k] >> 24);
		}
	}
	if (i < n)
		aprfs_codec_ternary.encode(x + i, n - i, p, out + i / 4);
}

static void decode_ternary_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	const float alpha = p->scale;
	const vu sh = trit_shifts();
	size_t i = 0;
	for (; i + KV_W <= n; i += KV_W) {
		const uint8_t *b = in + i / 4;
		vu w = {0};
		for (int j = 0; j < KV_W; j++)
			w[j] = b[j / 4];
		vu c = (w >> sh) & 3;
		vf t = sel((vi)(c == 1), splat(1.0f),
			   sel((vi)(c == 2), splat(-1.0f), splat(0.0f)));
		stf(y + i, alpha * t);
	}
	if (i < n)
		aprfs_codec_ternary.decode(in + i / 4, n - i, p, y + i);
}

/* Code = how many of the 15 f32 midpoints lie below v (nf4.c's rule); NaN is code 7. */
KV_INLINE vi nf4_codes(vf v, const float mid[15])
{
	vi c = {0};
	for (int k = 0; k < 15; k++)
		c -= (vi)(splat(mid[k]) < v);
	return seli(isnan_v(v), (vi){0} + 7, c);
}

KV_INLINE uint8_t nf4_code1(float v, const float mid[15])
{
	if (isnan(v))
		return 7;
	uint8_t c = 0;
	for (int k = 0; k < 15; k++)
		c += mid[k] < v;
	return c;
}

/* The codes of one nf4 block whose absmax m (> 0) is known; `dirty`: sanitise each value
 * first (a constant after inlining, so the clean path carries no sanitising). */
KV_INLINE void nf4_codes_block(const float *x, size_t b, float m, const float mid[15],
			       uint8_t *out, int dirty)
{
	size_t i = 0;
	for (; i + 2 * KV_W <= b; i += 2 * KV_W) {
		vf v0 = ldf(x + i), v1 = ldf(x + i + KV_W);
		if (dirty) {
			v0 = kv_block_sanitize(v0);
			v1 = kv_block_sanitize(v1);
		}
		pack_nibbles(nf4_codes(v0 / m, mid), nf4_codes(v1 / m, mid), out + i / 2);
	}
	for (; i < b; i += 2) {
		float a = x[i], c = x[i + 1];
		if (dirty) {
			a = aprfs_block_sanitize(a);
			c = aprfs_block_sanitize(c);
		}
		out[i / 2] = (uint8_t)(nf4_code1(a / m, mid) | nf4_code1(c / m, mid) << 4);
	}
}

/* One block: absmax by kv_max_abs_bits (see encode_q4_v), sanitising only a block that
 * holds NaN, inf or |x| > 65504. */
static void nf4_block_v(const float *x, size_t b, const float mid[15], uint8_t *out)
{
	vi mb = {0};
	size_t i = 0;
	for (; i + KV_W <= b; i += KV_W)
		mb = kv_max_abs_bits(mb, ldf(x + i));
	uint32_t bits = kv_hmax_bits(mb);
	for (; i < b; i++) {
		uint32_t a;
		const float f = fabsf(x[i]);
		memcpy(&a, &f, sizeof(a));
		bits = a > bits ? a : bits;
	}
	const int dirty = bits > KV_LIMIT_BITS;
	if (dirty) {
		mb = (vi){0};
		for (i = 0; i + KV_W <= b; i += KV_W)
			mb = kv_max_abs_bits(mb, kv_block_sanitize(ldf(x + i)));
		bits = kv_hmax_bits(mb);
		for (; i < b; i++) {
			uint32_t a;
			const float f = fabsf(aprfs_block_sanitize(x[i]));
			memcpy(&a, &f, sizeof(a));
			bits = a > bits ? a : bits;
		}
	}
	const float m = f32_of_bits(bits);
	memcpy(out, &m, 4);
	if (m == 0.0f) {
		memset(out + 4, 0x77, b / 2);
		return;
	}
	if (dirty)
		nf4_codes_block(x, b, m, mid, out + 4, 1);
	else
		nf4_codes_block(x, b, m, mid, out + 4, 0);
}

static void encode_nf4_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	if (!p || !p->nf4_block || (p->nf4_block & 1))
		return;
	const size_t b = p->nf4_block;
	float mid[15];
	aprfs_nf4_midpoints(mid);
	size_t off = 0;
	for (; off + b <= n; off += b, out += 4 + b / 2)
		nf4_block_v(x + off, b, mid, out);
	if (off < n)
		aprfs_codec_nf4.encode(x + off, n - off, p, out);
}

#include "kernels/vec_kquant.h"

/* After vec_kquant.h: its Q4_K / Q6_K block decoders are dequantizers too. */
#include "kernels/vec_ggml.h"

static void KV_FILL(aprfs_kernels *t)
{
	t->widen_f16 = widen_f16_v;
	t->widen_bf16 = widen_bf16_v;
	t->maxabs = maxabs_v;
	t->sumabs = sumabs_v;
	t->encode[APRFS_K_F16] = encode_f16_v;
	t->encode[APRFS_K_BF16] = encode_bf16_v;
	t->encode[APRFS_K_Q8] = encode_q8_v;
	t->encode[APRFS_K_Q4] = encode_q4_v;
	t->encode[APRFS_K_TERNARY] = encode_ternary_v;
	t->encode[APRFS_K_NF4] = encode_nf4_v;
	t->encode[APRFS_K_Q4K] = encode_q4k_v;
	t->encode[APRFS_K_Q6K] = encode_q6k_v;
	t->decode[APRFS_K_F16] = decode_f16_v;
	t->decode[APRFS_K_BF16] = decode_bf16_v;
	t->decode[APRFS_K_Q8] = decode_q8_v;
	t->decode[APRFS_K_Q4] = decode_q4_v;
	t->decode[APRFS_K_NF4] = decode_nf4_v;
	t->decode[APRFS_K_Q4K] = decode_q4k_v;
	t->decode[APRFS_K_Q6K] = decode_q6k_v;
	t->decode[APRFS_K_TERNARY] = decode_ternary_v;
	t->dequant[APRFS_DQ_Q8_0] = dequant_q8_0_v;
	t->dequant[APRFS_DQ_Q4_0] = dequant_q4_0_v;
	t->dequant[APRFS_DQ_Q4_1] = dequant_q4_1_v;
	t->dequant[APRFS_DQ_Q5_0] = dequant_q5_0_v;
	t->dequant[APRFS_DQ_Q5_1] = dequant_q5_1_v;
	t->dequant[APRFS_DQ_Q2_K] = dequant_q2_k_v;
	t->dequant[APRFS_DQ_Q3_K] = dequant_q3_k_v;
	t->dequant[APRFS_DQ_Q4_K] = dequant_q4_k_v;
	t->dequant[APRFS_DQ_Q5_K] = dequant_q5_k_v;
	t->dequant[APRFS_DQ_Q6_K] = dequant_q6_k_v;
}
