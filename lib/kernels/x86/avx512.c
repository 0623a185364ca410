/* avx512.c - the AVX-512 kernel table: vec_tmpl.h's kernels compiled for AVX-512
 * F/BW/VL/DQ (one 512-bit register per 16-lane vector) with 512-bit F16C conversions.
 * Only this file is compiled for AVX-512 (the Makefile's per-file flags). */
#if defined(__x86_64__)
/* No FMA for GCC: see avx2.c (GCC's -mavx512f does not imply it). clang's -mavx512f
 * does, and -mno-fma would take AVX-512F away with it: there, vec_tmpl.h's
 * "#pragma clang fp contract(off)" (besides -ffp-contract=off) keeps every a*b+c two
 * roundings, and scripts/test-clang.sh checks the object holds no vfmadd. */
#if !defined(__AVX512F__) || !defined(__AVX512BW__) || !defined(__AVX512VL__) ||               \
    !defined(__AVX512DQ__) || !defined(__AVX2__) || !defined(__F16C__)
#error "compile avx512.c with -mavx512f -mavx512bw -mavx512vl -mavx512dq -mavx2 -mf16c"
#endif
#if defined(__FMA__) && !defined(__clang__)
#error "avx512.c must be compiled without FMA"
#endif
#include <immintrin.h>
#include <stdint.h>

static inline void kv_f16_widenw(const uint16_t *in, float *out)
{
	_mm512_storeu_ps(out, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)in)));
}

static inline void kv_f16_narroww(const float *in, uint8_t *out)
{
	_mm256_storeu_si256((__m256i *)out,
			    _mm512_cvtps_ph(_mm512_loadu_ps(in), _MM_FROUND_TO_NEAREST_INT));
}

/* The low byte of each of 16 int32 lanes: one vpmovdb (GCC does not always find it). */
typedef uint8_t kv_b16 __attribute__((vector_size(16)));
typedef int32_t kv_i16 __attribute__((vector_size(64)));
static inline kv_b16 kv_narrow_b(kv_i16 v)
{
	return (kv_b16)_mm512_cvtepi32_epi8((__m512i)v);
}
#define KV_HAVE_NARROW_B

/* kq_clamp in two instructions: maxps(lo, v) is "v < lo ? lo : v" and minps(hi, r) is
 * "r > hi ? hi : r" bit for bit, NaN and signed zeros included, with the constant first. */
typedef float kv_f16 __attribute__((vector_size(64)));
static inline kv_f16 kv_clamp(kv_f16 v, float lo, float hi)
{
	return (kv_f16)_mm512_min_ps(_mm512_set1_ps(hi),
				     _mm512_max_ps(_mm512_set1_ps(lo), (__m512)v));
}
#define KV_HAVE_CLAMP

/* vsqrtps is IEEE square root, correctly rounded: sqrtf's float in every lane. */
static inline kv_f16 kv_sqrt(kv_f16 v)
{
	return (kv_f16)_mm512_sqrt_ps((__m512)v);
}
#define KV_HAVE_SQRT

/* Sixteen int8 to int32 lanes in one vpmovsxbd. */
static inline kv_i16 kv_widen_s8(const int8_t *p)
{
	return (kv_i16)_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p));
}
#define KV_HAVE_WIDEN_S8

/* t[idx] for a 16-float table, idx in [0, 15]: one vpermps over the whole table. */
static inline kv_f16 kv_lut16(const float *t, kv_i16 idx)
{
	return (kv_f16)_mm512_permutexvar_ps((__m512i)idx, _mm512_loadu_ps(t));
}
#define KV_HAVE_LUT16

/* One f16 scale: vcvtph2ps on one lane, the instruction kv_f16_widenw uses. */
static inline float kv_f16_1(uint16_t h)
{
	return _cvtsh_ss(h);
}
#define KV_HAVE_F16_1

#define KV_W	16
#define KV_FILL aprfs_kernels_fill_avx512_impl
#include "kernels/vec_tmpl.h"

void aprfs_kernels_fill_avx512(aprfs_kernels *t)
{
	aprfs_kernels_fill_avx512_impl(t);
	t->isa = "avx512";
}
#endif
