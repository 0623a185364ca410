/* kquant_search.h - arithmetic shared by the Q4_K and Q6_K reference encoders: input
 * sanitising, power-of-two normalisation of a sub-block, round-half-even and the
 * fixed-order sums a SIMD encoder must reproduce bit for bit. */
#ifndef APRFS_KQUANT_SEARCH_H
#define APRFS_KQUANT_SEARCH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "quant/codec.h"

/* A sub-block whose largest |x| is below this is encoded as exact zeros: no f16 scale
 * (smallest subnormal 2^-24) could bring it closer, and skipping it keeps the power-of-two
 * normaliser below within float range. */
#define KQ_TINY 0x1p-64f

/* Round to nearest, ties to even, for |v| <= 2^22. Adding 1.5 * 2^23 pushes the fraction
 * bits out of the mantissa, so the FPU's own round-to-nearest-even does the work; the
 * subtraction is exact. This is GGML's nearest_int trick kept in float, where it maps to
 * one vector add and one subtract (or a single cvtps2dq/vrndn). The compiler may not fold
 * the two operations away: that needs -fassociative-math, which this project never uses. */
static inline float kq_round(float v)
{
	const float magic = 0x1.8p23f;
	return (v + magic) - magic;
}

static inline float kq_clamp(float v, float lo, float hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Sums of 16 and 32 floats in one documented order: fold the upper half onto the lower
 * half (a[i] + a[i + half]) until one value is left, i.e. for 16 values
 * b[i] = a[i] + a[i+8], c[i] = b[i] + b[i+4], then (c0 + c2) + (c1 + c3); 32 values first
 * fold 16. That is the natural reduction of vector registers (add the high register or
 * lane-half to the low one), so an AVX2, AVX-512 or NEON encoder gets the identical
 * float. Written out so the compiler keeps it in registers. */
static inline float kq_fold8(const float *b)
{
	const float c0 = b[0] + b[4], c1 = b[1] + b[5], c2 = b[2] + b[6], c3 = b[3] + b[7];
	return (c0 + c2) + (c1 + c3);
}

static inline float kq_sum16(const float *a)
{
	float b[8];
	for (int i = 0; i < 8; i++)
		b[i] = a[i] + a[i + 8];
	return kq_fold8(b);
}

static inline float kq_sum32(const float *a)
{
	float b[16];
	for (int i = 0; i < 16; i++)
		b[i] = a[i] + a[i + 16];
	return kq_sum16(b);
}

/* The input rule of both k-quant encoders (codec.h's aprfs_block_sanitize): NaN reads as
 * 0, +-inf and anything beyond +-65504 as +-65504, so the search only ever sees values a
 * finite f16 scale can represent. Copies n values from x into out. */
void kq_sanitize(const float *x, size_t n, float *out);

/* The block loops of both k-quant codecs (256 elements a block). Encoding sanitises each
 * block into a local copy, zero-padding a short tail (the planner falls back to Q8 when n
 * is not a multiple of 256, so none should come; nothing past n is ever read), and passes
 * the block's importance weights (none for a padded block). Decoding writes whole blocks
 * in place and a short tail through a local block. */
typedef void (*kq_encode_block_fn)(const float *x, const float *weights, uint8_t *out);
typedef void (*kq_decode_block_fn)(const uint8_t *in, float *y);
void kq_encode_blocks(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out,
		      size_t block_bytes, kq_encode_block_fn encode_block);
void kq_decode_blocks(const uint8_t *in, size_t n, float *y, size_t block_bytes,
		      kq_decode_block_fn decode_block);

/* Largest |x| over n sanitised values (order-free, so no ordering rule is needed). */
float kq_absmax(const float *x, int n);

/* 2^p as a float for p in [-149, 127], built from its bits (exact; no libm call on the
 * hot path). Below -126 it is a subnormal. */
static inline float kq_pow2(int p)
{
	uint32_t u = p >= -126 ? (uint32_t)(p + 127) << 23 : 1u << (p + 149);
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* For a normal amax (>= KQ_TINY): the exponent e with amax * 2^-e in [0.5, 1), what
 * frexpf returns. Multiplying a sub-block by kq_pow2(-e) is exact (barring underflow of
 * values far below amax, which quantize to nothing anyway), so the scale search runs on
 * values of order one whatever the input magnitude (denormals to 1e38), and its result
 * is scaled back with kq_unscale. */
static inline int kq_norm_exponent(float amax)
{
	uint32_t u;
	memcpy(&u, &amax, sizeof(u));
	return (int)((u >> 23) & 0xff) - 126;
}

/* v * 2^e for e in [-126, 128], saturated to [-cap, cap] (the caps keep the super-block
 * f16 scale finite). Two power-of-two steps because 2^128 is not a float; each step is
 * exact unless it overflows to inf, which the clamp turns into the cap. */
static inline float kq_unscale(float v, int e, float cap)
{
	const int half = e / 2;
	return kq_clamp(v * kq_pow2(half) * kq_pow2(e - half), -cap, cap);
}

/* The 256 importance weights of the block at element `at` of an encode call, or NULL when
 * the call is unweighted (or its geometry is not whole 256-column blocks). */
static inline const float *kq_block_weights(const aprfs_qparams *p, size_t at)
{
	if (!p || !p->qw || !p->qw_cols || p->qw_cols % 256 || p->qw_col0 % 256)
		return NULL;
	return p->qw + (p->qw_col0 + at) % p->qw_cols;
}

/* Importance weights of one sub-block (n values, finite, >= 0) brought by a power of two
 * (exact) to a largest weight in [0.5, 1), so the weighted sums stay within float range
 * whatever the imatrix's scale. 0 when no weight is positive (or the largest is below
 * KQ_TINY): the sub-block then takes the unweighted search. */
static inline int kq_norm_weights(const float *qw, int n, float *w)
{
	float m = 0.0f;
	for (int i = 0; i < n; i++)
		m = qw[i] > m ? qw[i] : m;
	if (!(m >= KQ_TINY) || m > 0x1p120f)
		return 0;
	const float f = kq_pow2(-kq_norm_exponent(m));
	for (int i = 0; i < n; i++)
		w[i] = qw[i] > 0.0f ? qw[i] * f : 0.0f;
	return 1;
}

/* Q4_K's element errors of one 32-element sub-block decoded with scale dj and min mj,
 * codes chosen as q4k_codes does (times the reciprocal of dj: no division per element)
 * and values as the decoder computes them (dj*q - mj):
 * e_i = w_i * r_i^2 (w NULL: weight 1). A SIMD encoder forms the same terms lane by lane
 * and sums them with kq_sum32, so it gets the same float. */
static inline void kq_q4k_err_terms(const float *x, const float *w, float dj, float mj,
				    float *e)
{
	const float idj = 1.0f / dj;
	for (int i = 0; i < 32; i++) {
		const float q =
		    dj == 0.0f ? 0.0f : kq_round(kq_clamp((x[i] + mj) * idj, 0.0f, 15.0f));
		const float r = (dj * q - mj) - x[i];
		e[i] = (w ? w[i] : 1.0f) * (r * r);
	}
}

/* The order in which the Q4_K refinement tries (scale, min) code moves after (0, 0):
 * the first strictly better one at each step is kept. */
static const signed char kq_q4k_moves[][2] = {{-1, 0},	{1, 0}, {0, -1}, {0, 1},
					      {-1, -1}, {1, 1}, {-1, 1}, {1, -1}};
#define KQ_Q4K_NMOVES ((int)(sizeof(kq_q4k_moves) / sizeof(kq_q4k_moves[0])))

/* Q6_K's error of one 16-element sub-block decoded with scale dj = d * sc (the decoder's
 * (d*sc)*q), codes chosen as q6k_codes does: the sum of w_i * (y_i - x_i)^2 in element
 * order (w NULL: weight 1). */
static inline float kq_q6k_err(const float *x, const float *w, float dj)
{
	float e = 0.0f;
	for (int i = 0; i < 16; i++) {
		const float q =
		    dj == 0.0f ? 0.0f : kq_round(kq_clamp(x[i] / dj, -32.0f, 31.0f));
		const float r = dj * q - x[i];
		e += (w ? w[i] : 1.0f) * (r * r);
	}
	return e;
}

/* The int8 sub-block scale among sc, sc - 1, sc + 1 (in that order, a later one only if
 * strictly better) whose codes give the smallest kq_q6k_err against the stored d: the
 * rounding of the scale to 8 bits is corrected by the error it actually causes. Shared by
 * the scalar and SIMD encoders, so both pick the same byte. */
static inline int kq_q6k_refine(const float *x, const float *w, float d, int sc)
{
	if (d == 0.0f)
		return sc;
	float best = kq_q6k_err(x, w, d * (float)sc);
	int pick = sc;
	for (int t = sc - 1; t <= sc + 1; t += 2) {
		if (t < -128 || t > 127)
			continue;
		const float e = kq_q6k_err(x, w, d * (float)t);
		if (e < best) {
			best = e;
			pick = t;
		}
	}
	return pick;
}

#endif
