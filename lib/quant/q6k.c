/* q6k.c - the Q6_K codec (APR dtype 14): GGML's block_q6_K, 256 elements in 210 bytes,
 * sixteen 16-element sub-blocks each decoded as d*sc*(q - 32) with int8 sc and 6-bit q.
 * Owns the scalar reference encoder (a weighted least-squares scale search) and the
 * decoder, which repeats GGML's dequantize_row_q6_K arithmetic operation for operation.
 *
 * The block layout and the shape of the search come from GGML (ggml-quants.c, MIT
 * licence, quantize_row_q6_K_ref / make_qx_quants); the code is written afresh.
 *
 * Block bytes: [0,128) ql low nibbles, [128,192) qh 2-bit high parts, [192,208) int8
 * sub-block scales, [208,210) f16 d. Within each half h (128 elements, 64 ql and 32 qh
 * bytes), for l = 0..31: ql[l] holds elements l (low) and l+64 (high nibble), ql[l+32]
 * holds l+32 and l+96, qh[l] holds the top two bits of l, l+32, l+64, l+96 at bits 0, 2,
 * 4, 6.
 *
 * Encoder input rule (kquant_search.h, doc/apr-format.md): NaN is read as 0, +-inf and anything
 * beyond +-65504 as +-65504, per block and before any scale is chosen, so every decoded
 * value of the block is finite; sub-block scales also saturate at 128 * 65504 (a second
 * guard) so d is always a finite f16.
 *
 * Determinism: plain float arithmetic in a fixed order, no fused multiply-add, every sum
 * over a sub-block done by kq_sum16's halving order. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"
#include "quant/kquant_search.h"

enum { QK = 256, SUB = 16, NSUB = QK / SUB, Q6K_BYTES = 210, NSTEP = 9 };

/* Largest |sub-block scale| whose super-block scale max/128 is a finite f16. */
#define Q6K_CAP (128.0f * 65504.0f)

/* Gain sum(w*x*l)^2 / sum(w*l*l) of the codes l = clamp(round(iscale*v), -32, 31) and
 * their least-squares scale; a larger gain is a smaller weighted error. Products are
 * formed as wl = w*l, wl*l, wl*v. */
static float q6k_candidate(const float *v, const float *w, float iscale, float *scale)
{
	float wll[SUB], wlx[SUB];
	for (int i = 0; i < SUB; i++) {
		float l = kq_clamp(kq_round(iscale * v[i]), -32.0f, 31.0f);
		float wl = w[i] * l;
		wll[i] = wl * l;
		wlx[i] = wl * v[i];
	}
	const float sll = kq_sum16(wll), slx = kq_sum16(wlx);
	if (!(sll > 0.0f))
		return -FLT_MAX;
	*scale = slx / sll;
	return *scale * slx;
}

/* The scale search on one normalised sub-block v (max |v| in [0.5, 1)) with element
 * weights w: v*v as GGML's make_qx_quants uses for Q6_K, or an imatrix's. The element of
 * largest magnitude (the first, on ties) fixes the sign: it maps to -32, the end of the
 * asymmetric range [-32, 31] that has room for it. Candidates scale it to -(32 + k/10)
 * for k = -9..9 in that order; the first best gain wins. */
static float q6k_search(const float *v, const float *w)
{
	float amax = 0.0f, vmax = 0.0f;
	for (int i = 0; i < SUB; i++) {
		if (fabsf(v[i]) > amax) {
			amax = fabsf(v[i]);
			vmax = v[i];
		}
	}

	float best = -FLT_MAX, scale = -vmax / 32.0f;
	for (int k = -NSTEP; k <= NSTEP; k++) {
		const float iscale = -((float)(320 + k) / 10.0f) / vmax;
		float s = 0.0f;
		float gain = q6k_candidate(v, w, iscale, &s);
		if (gain > best) {
			best = gain;
			scale = s;
		}
	}
	return scale;
}

/* Signed scale of one sub-block of sanitised values, searched in its own power-of-two
 * frame with weights qw (normalised, or NULL: v*v); 0 for a (near) zero sub-block. */
static float q6k_fit_sub(const float *x, const float *qw)
{
	const float amax = kq_absmax(x, SUB);
	if (amax < KQ_TINY)
		return 0.0f;
	const int e = kq_norm_exponent(amax);
	const float f = kq_pow2(-e);
	float v[SUB], w[SUB];
	for (int i = 0; i < SUB; i++) {
		v[i] = x[i] * f;
		w[i] = qw ? qw[i] : v[i] * v[i];
	}
	return kq_unscale(q6k_search(v, w), e, Q6K_CAP);
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

/* Final 6-bit codes (q + 32) of one sub-block with the stored scale dj. A zero scale
 * gives code 32, which decodes to +0. The quotient is clamped before rounding so
 * kq_round's range always holds. */
static void q6k_codes(const float *x, float dj, uint8_t *L)
{
	for (int i = 0; i < SUB; i++) {
		float q = dj == 0.0f ? 0.0f : kq_round(kq_clamp(x[i] / dj, -32.0f, 31.0f));
		L[i] = (uint8_t)(int)(q + 32.0f);
	}
}

/* Pack 256 codes (0..63) into ql/qh in GGML's element order. */
static void q6k_pack(const uint8_t *L, uint8_t *ql, uint8_t *qh)
{
	for (int h = 0; h < 2; h++, L += 128, ql += 64, qh += 32) {
		for (int l = 0; l < 32; l++) {
			ql[l] = (uint8_t)((L[l] & 15) | (L[l + 64] & 15) << 4);
			ql[l + 32] = (uint8_t)((L[l + 32] & 15) | (L[l + 96] & 15) << 4);
			qh[l] = (uint8_t)(L[l] >> 4 | (L[l + 32] >> 4) << 2 |
					  (L[l + 64] >> 4) << 4 | (L[l + 96] >> 4) << 6);
		}
	}
}

/* The super-block scale maps the largest-magnitude sub-block scale (first on ties) to
 * -128, the int8 end with room for it; sub-block scales are coded against the stored f16
 * d, the value the decoder uses, then moved by one where that lowers the sub-block's
 * (weighted) error (kq_q6k_refine). A d that rounds to 0 in f16 makes the whole block 0.
 * qw: the block's 256 importance weights, or NULL. */
static void q6k_encode_block(const float *x, const float *qw, uint8_t *out)
{
	float scale[NSUB], max_scale = 0.0f, w[QK];
	int has_w[NSUB] = {0};
	for (int j = 0; j < NSUB; j++) {
		has_w[j] = qw && kq_norm_weights(qw + SUB * j, SUB, w + SUB * j);
		scale[j] = q6k_fit_sub(x + SUB * j, has_w[j] ? w + SUB * j : NULL);
		if (fabsf(scale[j]) > fabsf(max_scale))
			max_scale = scale[j];
	}
	const uint16_t dh = aprfs_f32_to_f16(max_scale / -128.0f);
	const float d = aprfs_f16_to_f32(dh);
	int8_t *sc = (int8_t *)(out + 192);
	uint8_t L[QK];
	for (int j = 0; j < NSUB; j++) {
		float c = d == 0.0f ? 0.0f : kq_round(kq_clamp(scale[j] / d, -128.0f, 127.0f));
		sc[j] = (int8_t)kq_q6k_refine(x + SUB * j, has_w[j] ? w + SUB * j : NULL, d,
					      (int)c);
		q6k_codes(x + SUB * j, d * sc[j], L + SUB * j);
	}
	q6k_pack(L, out, out + 128);
	put16(out + 208, d == 0.0f ? 0 : dh);
}

/* GGML's dequantize_row_q6_K for one block: y = d * sc * q evaluated left to right, i.e.
 * (d*sc) rounded to float, then times q. */
static void q6k_decode_block(const uint8_t *in, float *y)
{
	const uint8_t *ql = in, *qh = in + 128;
	const int8_t *sc = (const int8_t *)(in + 192);
	const float d = aprfs_f16_to_f32(get16(in + 208));
	for (int h = 0; h < 2; h++, y += 128, ql += 64, qh += 32, sc += 8) {
		for (int l = 0; l < 32; l++) {
			const int is = l / 16;
			const int q1 = ((ql[l] & 15) | ((qh[l] >> 0) & 3) << 4) - 32;
			const int q2 = ((ql[l + 32] & 15) | ((qh[l] >> 2) & 3) << 4) - 32;
			const int q3 = ((ql[l] >> 4) | ((qh[l] >> 4) & 3) << 4) - 32;
			const int q4 = ((ql[l + 32] >> 4) | ((qh[l] >> 6) & 3) << 4) - 32;
			y[l] = d * sc[is] * q1;
			y[l + 32] = d * sc[is + 2] * q2;
			y[l + 64] = d * sc[is + 4] * q3;
			y[l + 96] = d * sc[is + 6] * q4;
		}
	}
}

static void q6k_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	kq_encode_blocks(x, n, p, out, Q6K_BYTES, q6k_encode_block);
}

static void q6k_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	kq_decode_blocks(in, n, y, Q6K_BYTES, q6k_decode_block);
}

const aprfs_codec aprfs_codec_q6k = {
    .name = "q6k",
    .dtype = APR_DT_Q6_K,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = QK,
    .block_bytes = Q6K_BYTES,
    .encode = q6k_encode,
    .decode = q6k_decode,
};
