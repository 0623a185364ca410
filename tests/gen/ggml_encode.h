/* ggml_encode.h - test-only encoders from f32 into every GGUF tensor type aprfs reads (F32,
 * F16, BF16 and GGML's Q8_0 ... Q6_K blocks), for gengguf and the unit tests. Header-only
 * (static functions) so it is not built as a program of its own; links lib/ (half, codecs).
 *
 * Q8_0, Q4_0, Q4_1, Q5_0 and Q5_1 follow GGML's reference quantizers (ggml-quants.c's
 * quantize_row_*_ref, MIT licence; written afresh): their bytes are GGML's on finite
 * input. Q2_K, Q3_K and Q5_K use a plain scheme (min/max or absolute-max per sub-block,
 * sub-block scales coded against the stored f16 super-block scales): valid GGML blocks that
 * decode close to the input, not GGML's search. Q4_K and Q6_K are aprfs' own codecs.
 * Inputs are finite (the generators' values are); nothing here is on aprfs' serving path. */
#ifndef APRFS_GGML_ENCODE_H
#define APRFS_GGML_ENCODE_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"

static inline void ge_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

/* Round to nearest (ties to even) by the float-magic trick, |v| < 2^22. */
static inline int ge_nearest(float v)
{
	float t = v + 12582912.0f;
	int32_t i;
	memcpy(&i, &t, 4);
	return (i & 0x007fffff) - 0x00400000;
}

static inline int ge_clamp(int v, int lo, int hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Code of v / d clamped to [lo, hi] (0 if d is 0): the quotient is clamped before rounding
 * so ge_nearest's range always holds. */
static inline int ge_code(float v, float d, int lo, int hi)
{
	if (d == 0.0f)
		return 0;
	float q = v / d;
	q = q < (float)lo ? (float)lo : q > (float)hi ? (float)hi : q;
	return ge_clamp(ge_nearest(q), lo, hi);
}

/* ---- 32-element blocks, as GGML's reference quantizers ---- */

static inline void ggml_encode_q8_0(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 32, out += 34) {
		float amax = 0.0f;
		for (int j = 0; j < 32; j++)
			amax = fabsf(x[j]) > amax ? fabsf(x[j]) : amax;
		const float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		ge_put16(out, aprfs_f32_to_f16(d));
		for (int j = 0; j < 32; j++)
			out[2 + j] = (uint8_t)(int8_t)roundf(x[j] * id);
	}
}

/* The signed value of largest magnitude (the first on ties). */
static inline float ge_signed_max(const float *x, int n)
{
	float amax = 0.0f, max = 0.0f;
	for (int j = 0; j < n; j++) {
		if (amax < fabsf(x[j])) {
			amax = fabsf(x[j]);
			max = x[j];
		}
	}
	return max;
}

static inline void ge_minmax(const float *x, int n, float *lo, float *hi)
{
	*lo = x[0];
	*hi = x[0];
	for (int j = 1; j < n; j++) {
		*lo = x[j] < *lo ? x[j] : *lo;
		*hi = x[j] > *hi ? x[j] : *hi;
	}
}

static inline void ggml_encode_q4_0(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 32, out += 18) {
		const float d = ge_signed_max(x, 32) / -8.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		ge_put16(out, aprfs_f32_to_f16(d));
		for (int j = 0; j < 16; j++) {
			int q0 = (int8_t)(x[j] * id + 8.5f),
			    q1 = (int8_t)(x[j + 16] * id + 8.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			out[2 + j] = (uint8_t)(q0 | q1 << 4);
		}
	}
}

static inline void ggml_encode_q4_1(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 32, out += 20) {
		float lo, hi;
		ge_minmax(x, 32, &lo, &hi);
		const float d = (hi - lo) / 15.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		ge_put16(out, aprfs_f32_to_f16(d));
		ge_put16(out + 2, aprfs_f32_to_f16(lo));
		for (int j = 0; j < 16; j++) {
			int q0 = (int8_t)((x[j] - lo) * id + 0.5f);
			int q1 = (int8_t)((x[j + 16] - lo) * id + 0.5f);
			q0 = q0 > 15 ? 15 : q0;
			q1 = q1 > 15 ? 15 : q1;
			out[4 + j] = (uint8_t)(q0 | q1 << 4);
		}
	}
}

/* Nibbles and fifth bits of 32 five-bit codes, Q5_0/Q5_1's packing. */
static inline void ge_pack5(const int *q, uint8_t *qh4, uint8_t *qs)
{
	uint32_t qh = 0;
	for (int j = 0; j < 16; j++) {
		qs[j] = (uint8_t)((q[j] & 15) | (q[j + 16] & 15) << 4);
		qh |= (uint32_t)(q[j] >> 4 & 1) << j | (uint32_t)(q[j + 16] >> 4 & 1)
							   << (j + 16);
	}
	for (int i = 0; i < 4; i++)
		qh4[i] = (uint8_t)(qh >> (8 * i));
}

static inline void ggml_encode_q5_0(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 32, out += 22) {
		const float d = ge_signed_max(x, 32) / -16.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		int q[32];
		for (int j = 0; j < 32; j++) {
			q[j] = (int8_t)(x[j] * id + 16.5f);
			q[j] = q[j] > 31 ? 31 : q[j];
		}
		ge_put16(out, aprfs_f32_to_f16(d));
		ge_pack5(q, out + 2, out + 6);
	}
}

/* GGML's Q5_1 reference does not clamp the code; (hi - lo) * (1/d) can only round to
 * 31.000004, so the clamp here never changes a byte. */
static inline void ggml_encode_q5_1(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 32, out += 24) {
		float lo, hi;
		ge_minmax(x, 32, &lo, &hi);
		const float d = (hi - lo) / 31.0f, id = d != 0.0f ? 1.0f / d : 0.0f;
		int q[32];
		for (int j = 0; j < 32; j++) {
			q[j] = (uint8_t)((x[j] - lo) * id + 0.5f);
			q[j] = q[j] > 31 ? 31 : q[j];
		}
		ge_put16(out, aprfs_f32_to_f16(d));
		ge_put16(out + 2, aprfs_f32_to_f16(lo));
		ge_pack5(q, out + 4, out + 8);
	}
}

/* ---- k-quants, plain schemes ---- */

/* 2-bit low parts of 256 codes, Q2_K/Q3_K's packing: byte 32h + l holds elements
 * 128h + 32k + l at bits 2k. */
static inline void ge_pack2(const uint8_t *L, uint8_t *qs)
{
	for (int h = 0; h < 2; h++)
		for (int l = 0; l < 32; l++) {
			const uint8_t *p = L + 128 * h + l;
			qs[32 * h + l] = (uint8_t)((p[0] & 3) | (p[32] & 3) << 2 |
						   (p[64] & 3) << 4 | (p[96] & 3) << 6);
		}
}

/* Q2_K: per 16-element sub-block the range [min(x, 0), max x] on codes 0..3; scales and
 * mins coded in 4 bits against d = max scale / 15 and dmin = max min / 15. */
static inline void ggml_encode_q2_k(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 256, out += 84) {
		float scale[16], mn[16], max_scale = 0.0f, max_min = 0.0f;
		for (int j = 0; j < 16; j++) {
			float lo, hi;
			ge_minmax(x + 16 * j, 16, &lo, &hi);
			lo = lo > 0.0f ? 0.0f : lo;
			scale[j] = (hi - lo) / 3.0f;
			mn[j] = -lo;
			max_scale = scale[j] > max_scale ? scale[j] : max_scale;
			max_min = mn[j] > max_min ? mn[j] : max_min;
		}
		const uint16_t dh = aprfs_f32_to_f16(max_scale / 15.0f);
		const uint16_t mh = aprfs_f32_to_f16(max_min / 15.0f);
		const float d = aprfs_f16_to_f32(dh), dmin = aprfs_f16_to_f32(mh);
		uint8_t L[256];
		for (int j = 0; j < 16; j++) {
			const int sc = ge_code(scale[j], d, 0, 15),
				  m = ge_code(mn[j], dmin, 0, 15);
			const float dl = d * (float)sc, ml = dmin * (float)m;
			out[j] = (uint8_t)(sc | m << 4);
			for (int i = 0; i < 16; i++)
				L[16 * j + i] = (uint8_t)ge_code(x[16 * j + i] + ml, dl, 0, 3);
		}
		ge_pack2(L, out + 16);
		ge_put16(out + 80, dh);
		ge_put16(out + 82, mh);
	}
}

/* Q3_K: per 16-element sub-block its largest-magnitude value maps to -4 (codes -4..3);
 * the signed sub-block scales are coded in 6 bits (-32..31) against d = (the largest
 * magnitude one) / -32. */
static inline void ggml_encode_q3_k(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 256, out += 110) {
		float scale[16], max_scale = 0.0f;
		for (int j = 0; j < 16; j++) {
			scale[j] = ge_signed_max(x + 16 * j, 16) / -4.0f;
			if (fabsf(scale[j]) > fabsf(max_scale))
				max_scale = scale[j];
		}
		const uint16_t dh = aprfs_f32_to_f16(max_scale / -32.0f);
		const float d = aprfs_f16_to_f32(dh);
		uint8_t L[256], *hmask = out, *s12 = out + 96;
		memset(out, 0, 110);
		for (int j = 0; j < 16; j++) {
			const int sc = ge_code(scale[j], d, -32, 31), l = sc + 32;
			const float dl = d * (float)sc;
			s12[j % 8] |= (uint8_t)((l & 15) << (j < 8 ? 0 : 4));
			s12[8 + j % 4] |= (uint8_t)((l >> 4) << (2 * (j / 4)));
			for (int i = 0; i < 16; i++)
				L[16 * j + i] =
				    (uint8_t)(ge_code(x[16 * j + i], dl, -4, 3) + 4);
		}
		for (int e = 0; e < 256; e++)
			hmask[e % 32] |= (uint8_t)((L[e] >> 2) << (e / 32));
		ge_pack2(L, out + 32);
		ge_put16(out + 108, dh);
	}
}

/* Q5_K: per 32-element sub-block the range [min(x, 0), max x] on codes 0..31; scales
 * and mins coded in 6 bits against d = max scale / 63 and dmin = max min / 63, packed as
 * Q4_K's. */
static inline void ggml_encode_q5_k(const float *x, size_t nblocks, uint8_t *out)
{
	for (size_t b = 0; b < nblocks; b++, x += 256, out += 176) {
		float scale[8], mn[8], max_scale = 0.0f, max_min = 0.0f;
		for (int j = 0; j < 8; j++) {
			float lo, hi;
			ge_minmax(x + 32 * j, 32, &lo, &hi);
			lo = lo > 0.0f ? 0.0f : lo;
			scale[j] = (hi - lo) / 31.0f;
			mn[j] = -lo;
			max_scale = scale[j] > max_scale ? scale[j] : max_scale;
			max_min = mn[j] > max_min ? mn[j] : max_min;
		}
		const uint16_t dh = aprfs_f32_to_f16(max_scale / 63.0f);
		const uint16_t mh = aprfs_f32_to_f16(max_min / 63.0f);
		const float d = aprfs_f16_to_f32(dh), dmin = aprfs_f16_to_f32(mh);
		uint8_t L[256], ls[8], lm[8], *s12 = out + 4, *qh = out + 16, *ql = out + 48;
		for (int j = 0; j < 8; j++) {
			ls[j] = (uint8_t)ge_code(scale[j], d, 0, 63);
			lm[j] = (uint8_t)ge_code(mn[j], dmin, 0, 63);
			const float dl = d * (float)ls[j], ml = dmin * (float)lm[j];
			for (int i = 0; i < 32; i++)
				L[32 * j + i] = (uint8_t)ge_code(x[32 * j + i] + ml, dl, 0, 31);
		}
		for (int j = 0; j < 4; j++) {
			s12[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
			s12[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
			s12[j + 8] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
		}
		memset(qh, 0, 32);
		for (int c = 0; c < 4; c++)
			for (int l = 0; l < 32; l++) {
				const uint8_t a = L[64 * c + l], h = L[64 * c + 32 + l];
				ql[32 * c + l] = (uint8_t)((a & 15) | (h & 15) << 4);
				qh[l] |=
				    (uint8_t)((a >> 4) << (2 * c) | (h >> 4) << (2 * c + 1));
			}
		ge_put16(out, dh);
		ge_put16(out + 2, mh);
	}
}

/* ---- every type ---- */

/* Encode nblocks blocks of type d (a block is one element for F32/F16/BF16) from
 * nblocks * aprfs_src_dtype_block_elems(d) floats; 0, or -1 for a non-float type. */
static inline int ggml_encode(aprfs_src_dtype d, const float *x, size_t nblocks, uint8_t *out)
{
	switch (d) {
	case APRFS_SRC_F32:
		for (size_t i = 0; i < nblocks; i++) {
			uint32_t u;
			memcpy(&u, x + i, 4);
			for (int k = 0; k < 4; k++)
				out[4 * i + k] = (uint8_t)(u >> (8 * k));
		}
		return 0;
	case APRFS_SRC_F16:
		for (size_t i = 0; i < nblocks; i++)
			ge_put16(out + 2 * i, aprfs_f32_to_f16(x[i]));
		return 0;
	case APRFS_SRC_BF16:
		for (size_t i = 0; i < nblocks; i++)
			ge_put16(out + 2 * i, aprfs_f32_to_bf16(x[i]));
		return 0;
	case APRFS_SRC_Q8_0: ggml_encode_q8_0(x, nblocks, out); return 0;
	case APRFS_SRC_Q4_0: ggml_encode_q4_0(x, nblocks, out); return 0;
	case APRFS_SRC_Q4_1: ggml_encode_q4_1(x, nblocks, out); return 0;
	case APRFS_SRC_Q5_0: ggml_encode_q5_0(x, nblocks, out); return 0;
	case APRFS_SRC_Q5_1: ggml_encode_q5_1(x, nblocks, out); return 0;
	case APRFS_SRC_Q2_K: ggml_encode_q2_k(x, nblocks, out); return 0;
	case APRFS_SRC_Q3_K: ggml_encode_q3_k(x, nblocks, out); return 0;
	case APRFS_SRC_Q4_K: aprfs_codec_q4k.encode(x, nblocks * 256, NULL, out); return 0;
	case APRFS_SRC_Q5_K: ggml_encode_q5_k(x, nblocks, out); return 0;
	case APRFS_SRC_Q6_K: aprfs_codec_q6k.encode(x, nblocks * 256, NULL, out); return 0;
	default: return -1;
	}
}

#endif
