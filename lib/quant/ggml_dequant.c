/* ggml_dequant.c - the scalar reference dequantizers for GGUF tensors: GGML's Q8_0, Q4_0,
 * Q4_1, Q5_0, Q5_1, Q2_K, Q3_K and Q5_K blocks decoded here, Q4_K and Q6_K by aprfs' own
 * codecs (q4k.c, q6k.c), F32/F16/BF16 by half.c; one entry point over all of them.
 *
 * The block layouts and the arithmetic come from GGML (ggml-common.h's block_* structs and
 * ggml-quants.c's dequantize_row_*, MIT licence); the code is written afresh. What has to
 * hold for the output to be GGML's bit for bit:
 *  - the same float operations in the same order and operand order: a scale is formed
 *    once per (sub-)block as a float product (d * sc), each element is then one product
 *    and at most one addition or subtraction, every one rounded to float (the build has
 *    -ffp-contract=off, so nothing is fused);
 *  - integer codes are converted to float exactly (they are small ints) before the
 *    multiplication, as C's usual conversions do in GGML's expressions;
 *  - f16 scales are widened by aprfs_f16_to_f32, which is exact and quiets NaNs as GGML's
 *    conversions (F16C, or the bit-trick fallback) do.
 * Multi-byte fields are little-endian in the file and assembled byte by byte, so the code
 * does not depend on the host's byte order or on any alignment of the input.
 *
 * Block layouts (byte offsets):
 *   Q8_0  34 B / 32: [0,2) f16 d, [2,34) int8 q;            y = q*d
 *   Q4_0  18 B / 32: [0,2) d, [2,18) nibbles;               y = (q-8)*d
 *   Q4_1  20 B / 32: [0,2) d, [2,4) f16 m, [4,20) nibbles;  y = q*d + m
 *   Q5_0  22 B / 32: [0,2) d, [2,6) u32 qh, [6,22) nibbles; y = (q-16)*d
 *   Q5_1  24 B / 32: [0,2) d, [2,4) m, [4,8) qh, [8,24);    y = q*d + m
 *     (32-element blocks: byte j of the nibbles holds element j low, j+16 high; bit j of
 *     qh is the fifth bit of element j)
 *   Q2_K  84 B / 256: [0,16) scales (low nibble sc, high nibble m, one per 16 elements),
 *     [16,80) 2-bit q, [80,82) f16 d, [82,84) f16 dmin;     y = (d*sc)*q - (dmin*m)
 *   Q3_K 110 B / 256: [0,32) hmask, [32,96) 2-bit q, [96,108) sixteen packed 6-bit
 *     scales s, [108,110) f16 d;                            y = (d*(s-32)) * (q - 4*!h)
 *   Q5_K 176 B / 256: [0,2) d, [2,4) dmin, [4,16) 6-bit scales and mins packed as Q4_K's,
 *     [16,48) qh, [48,176) nibbles;                         y = (d*sc)*q - (dmin*m)
 * In Q2_K and Q3_K element e = 128h + 32k + l (l < 32) has its two low bits in byte
 * 32h + l of q at bit 2k and (Q3_K) its high bit h in bit e/32 of hmask byte e%32; its
 * scale is the one of its 16-element sub-block e/16. In Q5_K element e = 64c + l has its
 * low four bits in nibble byte 32c + l%32 (low half if l < 32) and its fifth bit in qh
 * byte l%32, bit 2c (l < 32) or 2c+1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"
#include "quant/ggml_dequant.h"

enum { QK = 32, QK_K = 256 };

static float f16_at(const uint8_t *p)
{
	return aprfs_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static uint32_t u32_at(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

void aprfs_ggml_dequant_q8_0(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 34, y += QK) {
		const float d = f16_at(in);
		const int8_t *q = (const int8_t *)(in + 2);
		for (int j = 0; j < QK; j++)
			y[j] = (float)q[j] * d;
	}
}

void aprfs_ggml_dequant_q4_0(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 18, y += QK) {
		const float d = f16_at(in);
		const uint8_t *q = in + 2;
		for (int j = 0; j < QK / 2; j++) {
			y[j] = (float)((q[j] & 15) - 8) * d;
			y[j + QK / 2] = (float)((q[j] >> 4) - 8) * d;
		}
	}
}

void aprfs_ggml_dequant_q4_1(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 20, y += QK) {
		const float d = f16_at(in), m = f16_at(in + 2);
		const uint8_t *q = in + 4;
		for (int j = 0; j < QK / 2; j++) {
			y[j] = (float)(q[j] & 15) * d + m;
			y[j + QK / 2] = (float)(q[j] >> 4) * d + m;
		}
	}
}

/* Fifth bits of elements j (bit j of qh) and j+16 (bit j+16), as 0 or 16. */
static int hi5(uint32_t qh, int bit)
{
	return (int)((qh >> bit) & 1) << 4;
}

void aprfs_ggml_dequant_q5_0(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 22, y += QK) {
		const float d = f16_at(in);
		const uint32_t qh = u32_at(in + 2);
		const uint8_t *q = in + 6;
		for (int j = 0; j < QK / 2; j++) {
			y[j] = (float)(((q[j] & 15) | hi5(qh, j)) - 16) * d;
			y[j + QK / 2] = (float)(((q[j] >> 4) | hi5(qh, j + 16)) - 16) * d;
		}
	}
}

void aprfs_ggml_dequant_q5_1(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 24, y += QK) {
		const float d = f16_at(in), m = f16_at(in + 2);
		const uint32_t qh = u32_at(in + 4);
		const uint8_t *q = in + 8;
		for (int j = 0; j < QK / 2; j++) {
			y[j] = (float)((q[j] & 15) | hi5(qh, j)) * d + m;
			y[j + QK / 2] = (float)((q[j] >> 4) | hi5(qh, j + 16)) * d + m;
		}
	}
}

void aprfs_ggml_dequant_q2_k(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 84) {
		const uint8_t *sc = in, *q = in + 16;
		const float d = f16_at(in + 80), dmin = f16_at(in + 82);
		for (int h = 0; h < 2; h++, q += 32) {
			for (int k = 0; k < 4; k++) {
				for (int half = 0; half < 2; half++, sc++) {
					const float dl = d * (float)(*sc & 15);
					const float ml = dmin * (float)(*sc >> 4);
					const uint8_t *qq = q + 16 * half;
					for (int l = 0; l < 16; l++)
						*y++ =
						    dl * (float)((qq[l] >> (2 * k)) & 3) - ml;
				}
			}
		}
	}
}

/* Q3_K's sixteen 6-bit scales from their 12 bytes: scale j has its low nibble in byte j
 * (j < 8, low half) or j-8 (high half) and its top two bits in byte 8 + j%4 at bit
 * 2*(j/4). Returned as the signed s - 32. */
static void q3k_scales(const uint8_t *s12, int sc[16])
{
	for (int j = 0; j < 16; j++) {
		const int lo = j < 8 ? s12[j] & 15 : s12[j - 8] >> 4;
		const int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
		sc[j] = (lo | hi << 4) - 32;
	}
}

void aprfs_ggml_dequant_q3_k(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 110) {
		const uint8_t *hm = in, *q = in + 32;
		const float d = f16_at(in + 108);
		int sc[16];
		q3k_scales(in + 96, sc);
		int s = 0, bit = 0;
		for (int h = 0; h < 2; h++, q += 32) {
			for (int k = 0; k < 4; k++, bit++) {
				for (int half = 0; half < 2; half++, s++) {
					const float dl = d * (float)sc[s];
					const int o = 16 * half;
					for (int l = o; l < o + 16; l++) {
						const int v = ((q[l] >> (2 * k)) & 3) -
							      ((hm[l] >> bit) & 1 ? 0 : 4);
						*y++ = dl * (float)v;
					}
				}
			}
		}
	}
}

/* Scale and min of Q5_K (and Q4_K) sub-block j from the 12 packed bytes. */
static void k4_scale_min(const uint8_t *s12, int j, int *sc, int *m)
{
	if (j < 4) {
		*sc = s12[j] & 63;
		*m = s12[j + 4] & 63;
	} else {
		*sc = (s12[j + 4] & 15) | (s12[j - 4] >> 6) << 4;
		*m = (s12[j + 4] >> 4) | (s12[j] >> 6) << 4;
	}
}

void aprfs_ggml_dequant_q5_k(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 176) {
		const float d = f16_at(in), dmin = f16_at(in + 2);
		const uint8_t *s12 = in + 4, *qh = in + 16, *ql = in + 48;
		for (int c = 0; c < 4; c++, ql += 32) {
			int sc, m;
			k4_scale_min(s12, 2 * c, &sc, &m);
			const float d1 = d * (float)sc, m1 = dmin * (float)m;
			k4_scale_min(s12, 2 * c + 1, &sc, &m);
			const float d2 = d * (float)sc, m2 = dmin * (float)m;
			for (int l = 0; l < 32; l++)
				*y++ = d1 * (float)((ql[l] & 15) +
						    ((qh[l] >> (2 * c)) & 1 ? 16 : 0)) -
				       m1;
			for (int l = 0; l < 32; l++)
				*y++ = d2 * (float)((ql[l] >> 4) +
						    ((qh[l] >> (2 * c + 1)) & 1 ? 16 : 0)) -
				       m2;
		}
	}
}

/* The float types of dtype.h, listed here rather than asked of dtype.c so that the quant
 * files link on their own (scripts/test-arm.sh builds lib/quant/ without dtype.c). */
int aprfs_ggml_dequant_supported(aprfs_src_dtype d)
{
	switch (d) {
	case APRFS_SRC_F32:
	case APRFS_SRC_F16:
	case APRFS_SRC_BF16:
	case APRFS_SRC_Q8_0:
	case APRFS_SRC_Q4_0:
	case APRFS_SRC_Q4_1:
	case APRFS_SRC_Q5_0:
	case APRFS_SRC_Q5_1:
	case APRFS_SRC_Q2_K:
	case APRFS_SRC_Q3_K:
	case APRFS_SRC_Q4_K:
	case APRFS_SRC_Q5_K:
	case APRFS_SRC_Q6_K: return 1;
	default: return 0;
	}
}

void aprfs_ggml_dequant_ref(aprfs_src_dtype d, const void *blocks, size_t nblocks, float *out)
{
	const uint8_t *in = blocks;
	switch (d) {
	case APRFS_SRC_F32: memcpy(out, in, nblocks * sizeof(float)); return;
	case APRFS_SRC_F16:
		for (size_t i = 0; i < nblocks; i++)
			out[i] = f16_at(in + 2 * i);
		return;
	case APRFS_SRC_BF16:
		for (size_t i = 0; i < nblocks; i++)
			out[i] = aprfs_bf16_to_f32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
		return;
	case APRFS_SRC_Q8_0: aprfs_ggml_dequant_q8_0(in, nblocks, out); return;
	case APRFS_SRC_Q4_0: aprfs_ggml_dequant_q4_0(in, nblocks, out); return;
	case APRFS_SRC_Q4_1: aprfs_ggml_dequant_q4_1(in, nblocks, out); return;
	case APRFS_SRC_Q5_0: aprfs_ggml_dequant_q5_0(in, nblocks, out); return;
	case APRFS_SRC_Q5_1: aprfs_ggml_dequant_q5_1(in, nblocks, out); return;
	case APRFS_SRC_Q2_K: aprfs_ggml_dequant_q2_k(in, nblocks, out); return;
	case APRFS_SRC_Q3_K: aprfs_ggml_dequant_q3_k(in, nblocks, out); return;
	/* q4k.c and q6k.c repeat dequantize_row_q4_K / _q6_K; they take no parameters. */
	case APRFS_SRC_Q4_K: aprfs_codec_q4k.decode(in, nblocks * QK_K, NULL, out); return;
	case APRFS_SRC_Q5_K: aprfs_ggml_dequant_q5_k(in, nblocks, out); return;
	case APRFS_SRC_Q6_K: aprfs_codec_q6k.decode(in, nblocks * QK_K, NULL, out); return;
	default: break;
	}
	fprintf(stderr, "aprfs_ggml_dequant_ref: dtype %d is not a float type\n", (int)d);
	abort();
}
