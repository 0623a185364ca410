/* half.c - scalar f32 <-> IEEE binary16 and f32 <-> bfloat16 conversions.
 * Pure integer bit manipulation, so every platform gets the same bits; the SIMD widen
 * and narrow kernels (F16C, NEON) are checked against these. */
#include <string.h>

#include "base/half.h"

static uint32_t f32_bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static float f32_from_bits(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Round-to-nearest-even decision for dropping the low `shift` bits of m (1 <= shift < 32):
 * round up when the dropped part is above half, or exactly half and the kept part odd. */
static uint32_t shift_rne(uint32_t m, unsigned shift)
{
	uint32_t kept = m >> shift;
	uint32_t rest = m & ((1u << shift) - 1);
	uint32_t half = 1u << (shift - 1);
	if (rest > half || (rest == half && (kept & 1)))
		kept++;
	return kept;
}

uint16_t aprfs_f32_to_f16(float f)
{
	uint32_t u = f32_bits(f);
	uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
	uint32_t a = u & 0x7fffffff;

	if (a > 0x7f800000) /* NaN: quiet it and keep the top payload bits, as F16C does */
		return sign | 0x7e00 | (uint16_t)((a & 0x7fffff) >> 13);
	/* 65520 is the midpoint between 65504 (odd mantissa) and 65536: ties go up to inf. */
	if (a >= 0x477ff000)
		return sign | 0x7c00;
	if (a >= 0x38800000) /* f16 normal: rebias the exponent; the rounding carry may
				bump the exponent, which is exactly right */
		return sign | (uint16_t)shift_rne(a - 0x38000000, 13);
	/* 2^-25 is half the smallest subnormal: it and anything below rounds to zero. */
	if (a <= 0x33000000)
		return sign;
	/* f16 subnormal: value = m * 2^(e-150) in units of 2^-24, so shift by 126 - e
	 * (14..24). Rounding 0x3ff up gives 0x400, the smallest normal: also right. */
	uint32_t e = a >> 23;
	uint32_t m = (a & 0x7fffff) | 0x800000;
	return sign | (uint16_t)shift_rne(m, 126 - e);
}

float aprfs_f16_to_f32(uint16_t h)
{
	uint32_t sign = (uint32_t)(h & 0x8000) << 16;
	uint32_t e = (h >> 10) & 0x1f;
	uint32_t m = h & 0x3ff;

	if (e == 0x1f) /* inf, or NaN quieted the way F16C's vcvtph2ps does */
		return f32_from_bits(sign | 0x7f800000 | (m << 13) | (m ? 0x400000 : 0));
	if (e != 0)
		return f32_from_bits(sign | ((e + 112) << 23) | (m << 13));
	if (m == 0)
		return f32_from_bits(sign);
	/* Subnormal: normalise so the leading one becomes the implicit bit. */
	e = 113;
	while (!(m & 0x400)) {
		m <<= 1;
		e--;
	}
	return f32_from_bits(sign | (e << 23) | ((m & 0x3ff) << 13));
}

uint16_t aprfs_f32_to_bf16(float f)
{
	uint32_t u = f32_bits(f);
	if ((u & 0x7fffffff) > 0x7f800000)
		return (uint16_t)((u >> 16) | 0x0040);
	/* Adding 0x7fff plus the kept LSB rounds half to even; a carry out of the
	 * mantissa lands in the exponent (and the largest finite values reach inf). */
	return (uint16_t)((u + 0x7fff + ((u >> 16) & 1)) >> 16);
}

float aprfs_bf16_to_f32(uint16_t h)
{
	return f32_from_bits((uint32_t)h << 16);
}
