/* avx2.c - the AVX2 kernel table: vec_tmpl.h's kernels compiled for AVX2 (256-bit
 * registers) with F16C supplying the half-precision conversions. Only this file is
 * compiled for AVX2 (the Makefile's per-file -mavx2 -mf16c), and its table is filled only
 * on a CPU that has both, so the rest of the binary still runs on any x86-64. */
#if defined(__x86_64__)
/* No FMA in the target on purpose: the kernels must never contract a*b+c (the scalar
 * reference does not), and leaving FMA out makes that impossible, not just switched off. */
#if !defined(__AVX2__) || !defined(__F16C__)
#error "compile avx2.c with -mavx2 -mf16c (the Makefile does)"
#endif
#if defined(__FMA__)
#error "avx2.c must be compiled without FMA"
#endif
#include <immintrin.h>
#include <stdint.h>
#include <string.h>

/* vcvtph2ps is exact and quiets NaNs the way half.c's aprfs_f16_to_f32 does. */
static inline void kv_f16_widenw(const uint16_t *in, float *out)
{
	_mm256_storeu_ps(out, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
}

/* vcvtps2ph with an explicit round-to-nearest-even (not MXCSR's mode): half.c's rule,
 * including overflow to inf at 65520 and quiet NaNs keeping their top payload bits. */
static inline void kv_f16_narroww(const float *in, uint8_t *out)
{
	_mm_storeu_si128((__m128i *)out,
			 _mm256_cvtps_ph(_mm256_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT));
}

/* The low byte of each of 8 int32 lanes: vpshufb gathers four per 128-bit half, then the
 * halves are joined (AVX2 has no vpmovdb). */
typedef uint8_t kv_b8 __attribute__((vector_size(8)));
typedef int32_t kv_i8 __attribute__((vector_size(32)));
static inline kv_b8 kv_narrow_b(kv_i8 v)
{
	const __m256i pick =
	    _mm256_setr_epi8(0, 4, 8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, 0, 4,
			     8, 12, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1);
	__m256i t = _mm256_shuffle_epi8((__m256i)v, pick);
	__m128i j =
	    _mm_unpacklo_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
	kv_b8 r;
	memcpy(&r, &j, sizeof(r));
	return r;
}
#define KV_HAVE_NARROW_B

/* kq_clamp in two instructions: maxps(lo, v) is "v < lo ? lo : v" and minps(hi, r) is
 * "r > hi ? hi : r" bit for bit, NaN and signed zeros included, with the constant first. */
typedef float kv_f8 __attribute__((vector_size(32)));
static inline kv_f8 kv_clamp(kv_f8 v, float lo, float hi)
{
	return (kv_f8)_mm256_min_ps(_mm256_set1_ps(hi),
				    _mm256_max_ps(_mm256_set1_ps(lo), (__m256)v));
}
#define KV_HAVE_CLAMP

/* vsqrtps is IEEE square root, correctly rounded: sqrtf's float in every lane. */
static inline kv_f8 kv_sqrt(kv_f8 v)
{
	return (kv_f8)_mm256_sqrt_ps((__m256)v);
}
#define KV_HAVE_SQRT

/* Four vectors of int32 in [-128, 127] to 32 bytes: the saturating packs are exact in
 * range but work within 128-bit halves, so vpermd puts the dwords back in order. */
static inline void kv_store4_s8(uint8_t *out, kv_i8 a, kv_i8 b, kv_i8 c, kv_i8 d)
{
	__m256i ab = _mm256_packs_epi32((__m256i)a, (__m256i)b);
	__m256i cd = _mm256_packs_epi32((__m256i)c, (__m256i)d);
	__m256i r = _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd),
						_mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
	_mm256_storeu_si256((__m256i *)out, r);
}
#define KV_HAVE_STORE4_S8

/* Eight int8 to int32 lanes in one vpmovsxbd (GCC scalarises the generic conversion). */
static inline kv_i8 kv_widen_s8(const int8_t *p)
{
	return (kv_i8)_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p));
}
#define KV_HAVE_WIDEN_S8

/* t[idx] for a 16-float table, idx in [0, 15]: vpermps looks up both 8-float halves with
 * the low three bits, a blend by idx > 7 picks the half. */
static inline kv_f8 kv_lut16(const float *t, kv_i8 idx)
{
	const __m256 lo = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t), (__m256i)idx);
	const __m256 hi = _mm256_permutevar8x32_ps(_mm256_loadu_ps(t + 8), (__m256i)idx);
	const __m256i up = _mm256_cmpgt_epi32((__m256i)idx, _mm256_set1_epi32(7));
	return (kv_f8)_mm256_blendv_ps(lo, hi, _mm256_castsi256_ps(up));
}
#define KV_HAVE_LUT16

/* One f16 scale: vcvtph2ps on one lane, the instruction kv_f16_widenw uses. */
static inline float kv_f16_1(uint16_t h)
{
	return _cvtsh_ss(h);
}
#define KV_HAVE_F16_1

#define KV_W	8
#define KV_FILL aprfs_kernels_fill_avx2_impl
#include "kernels/vec_tmpl.h"

void aprfs_kernels_fill_avx2(aprfs_kernels *t)
{
	aprfs_kernels_fill_avx2_impl(t);
	t->isa = "avx2";
}
#endif
