/* avx2.c - the AVX2 kernel table: vec_tmpl.h's kernels compiled for AVX2 (256-bit
 * registers) with F16C supplying the half-precision conversions. Only the functions here
 * carry the target attribute, so the rest of the binary still runs on any x86-64. */
#if defined(__x86_64__)
/* No "fma" in the target on purpose: the kernels must never contract a*b+c (the scalar
 * reference does not), and leaving FMA out makes that impossible, not just switched off. */
#pragma GCC target("avx2,f16c")
#include <immintrin.h>
#include <stdint.h>

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

#define KV_W 8
#define KV_FILL aprfs_kernels_fill_avx2_impl
#include "../vec_tmpl.h"

void aprfs_kernels_fill_avx2(aprfs_kernels *t)
{
	aprfs_kernels_fill_avx2_impl(t);
	t->isa = "avx2";
}
#endif
