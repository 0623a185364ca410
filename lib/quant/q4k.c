/* q4k.c - the Q4_K codec (APR dtype 12): GGML's block_q4_K, 256 elements in 144 bytes,
 * eight 32-element sub-blocks each decoded as d*sc*q - dmin*m with 6-bit sc, m and 4-bit q.
 * Owns the scalar reference encoder (a weighted least-squares scale/min search) and the
 * decoder, which repeats GGML's dequantize_row_q4_K arithmetic operation for operation.
 *
 * The block layout and the shape of the search come from GGML (ggml-quants.c, MIT
 * licence, quantize_row_q4_K_ref / make_qkx2_quants); the code is written afresh.
 *
 * Block bytes: [0,2) f16 d, [2,4) f16 dmin, [4,16) the packed 6-bit sub-block scales and
 * mins, [16,144) nibbles. Byte 32c+l of the nibbles holds element 64c+l in its low half
 * and element 64c+32+l in its high half (c = 0..3, l = 0..31).
 *
 * Encoder input rule (kquant_search.h, doc/apr-format.md): NaN is read as 0, +-inf and anything
 * beyond +-65504 as +-65504, per block and before any scale is chosen, so every decoded
 * value of the block is finite (|y| stays near 65504) and no other block is affected.
 * Scales and mins also saturate at 63 * 65504, a second guard that keeps d and dmin
 * finite f16 values whatever the search returns.
 *
 * Determinism: plain float arithmetic in a fixed order, no fused multiply-add (the build
 * has no -march, so GCC cannot contract; a build adding FMA targets must add
 * -ffp-contract=off), every sum over a sub-block done by kq_sum32's halving order. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"
#include "quant/kquant_search.h"

enum { QK = 256, SUB = 32, NSUB = QK / SUB, Q4K_BYTES = 144, NSTEP = 21 };

/* Largest sub-block scale (and min) whose super-block scale max/63 is a finite f16. */
#define Q4K_CAP (63.0f * 65504.0f)

/* One sub-block's fit: element i decodes to about scale * l_i - min (scale, min >= 0). */
typedef struct {
	float scale;
	float min;
} q4k_fit;

/* Weighted sums of one candidate quantization l (w the element weights). */
typedef struct {
	float sl, sll, slx; /* sum w*l, sum w*l*l, sum w*l*x */
} q4k_sums;

/* Quantize the shifted values dv = x - lo with inverse scale iscale to l in [0, 15] and
 * return the weighted sums; products are formed as wl = w*l, wl*l, wl*x. */
static q4k_sums q4k_candidate(const float *v, const float *dv, const float *w, float iscale)
{
	float wl[SUB], wll[SUB], wlx[SUB];
	for (int i = 0; i < SUB; i++) {
		float l = kq_clamp(kq_round(iscale * dv[i]), 0.0f, 15.0f);
		wl[i] = w[i] * l;
		wll[i] = wl[i] * l;
		wlx[i] = wl[i] * v[i];
	}
	q4k_sums s = {kq_sum32(wl), kq_sum32(wll), kq_sum32(wlx)};
	return s;
}

/* Best (scale, offset) for fixed l by weighted least squares, offset constrained <= 0
 * (Q4_K stores only a subtracted min). Returns the gain sum(w*x*x) - error, which is
 * s*slx + m*sx at the optimum, so candidates are compared without a second pass over the
 * data; a non-positive scale is unusable and gets gain -FLT_MAX. */
static float q4k_solve(q4k_sums c, float sw, float sx, float *scale, float *offset)
{
	float det = sw * c.sll - c.sl * c.sl;
	float s = 0.0f, m = 1.0f;
	/* All l equal makes det zero up to rounding; a relative floor keeps a rounding
	 * residue from passing for a real spread (genuine spreads are >= ~1e-4 here). */
	if (det > 1e-5f * sw * c.sll) {
		s = (sw * c.slx - sx * c.sl) / det;
		m = (c.sll * sx - c.sl * c.slx) / det;
	}
	if (m > 0.0f) {
		m = 0.0f;
		s = c.sll > 0.0f ? c.slx / c.sll : 0.0f;
	}
	if (!(s > 0.0f))
		return -FLT_MAX;
	*scale = s;
	*offset = m;
	return s * c.slx + m * sx;
}

/* The scale search on one normalised sub-block v (max |v| in [0.5, 1)) with element
 * weights w (q4k_default_weights, or an imatrix's). Candidate k puts the range [lo, max v]
 * on 14.0 + k/10 steps (k = 0..20, codes clamped to 15) and takes the exact least-squares
 * fit of those codes; the first best gain wins. lo starts at min(v, 0) and, as in GGML's
 * make_qkx2_quants, moves to the best fit's offset each time one improves, so later
 * candidates are laid on the refined grid: that refinement is worth ~0.5% RMSE. */
static q4k_fit q4k_search(const float *v, const float *w)
{
	float lo = v[0], hi = v[0];
	for (int i = 1; i < SUB; i++) {
		lo = v[i] < lo ? v[i] : lo;
		hi = v[i] > hi ? v[i] : hi;
	}
	lo = lo > 0.0f ? 0.0f : lo;
	q4k_fit r = {0.0f, -lo};
	if (hi == lo) /* constant non-positive block: the min alone represents it */
		return r;

	float dv[SUB], a[SUB], b[SUB];
	for (int i = 0; i < SUB; i++) {
		dv[i] = v[i] - lo;
		a[i] = w[i];
		b[i] = w[i] * v[i];
	}
	const float sw = kq_sum32(a), sx = kq_sum32(b);
	if (!(sw > 0.0f)) /* no weight on any element: the plain min/max fit */
		return (q4k_fit){(hi - lo) / 15.0f, -lo};

	r.scale = (hi - lo) / 15.0f; /* plain min/max, should no candidate be solvable */
	float best = -FLT_MAX;
	for (int k = 0; k < NSTEP; k++) {
		const float iscale = ((float)(140 + k) / 10.0f) / (hi - lo);
		float s = 0.0f, m = 0.0f;
		float gain = q4k_solve(q4k_candidate(v, dv, w, iscale), sw, sx, &s, &m);
		if (gain > best) {
			best = gain;
			r.scale = s;
			r.min = -m;
			lo = m;
			for (int i = 0; i < SUB; i++)
				dv[i] = v[i] - lo;
		}
	}
	return r;
}

/* GGML's weights for the unweighted search: rms(v) + |v_i|, favouring large elements. */
static void q4k_default_weights(const float *v, float *w)
{
	float a[SUB];
	for (int i = 0; i < SUB; i++)
		a[i] = v[i] * v[i];
	const float av = sqrtf(kq_sum32(a) / (float)SUB);
	for (int i = 0; i < SUB; i++)
		w[i] = av + fabsf(v[i]);
}

/* Fit one sub-block of sanitised values in its own power-of-two frame, with normalised
 * importance weights qw or (NULL) the default ones. */
static q4k_fit q4k_fit_sub(const float *x, const float *qw)
{
	q4k_fit r = {0.0f, 0.0f};
	const float amax = kq_absmax(x, SUB);
	if (amax < KQ_TINY)
		return r;
	const int e = kq_norm_exponent(amax);
	const float f = kq_pow2(-e);
	float v[SUB], w[SUB];
	for (int i = 0; i < SUB; i++)
		v[i] = x[i] * f;
	if (qw)
		memcpy(w, qw, sizeof(w));
	else
		q4k_default_weights(v, w);
	r = q4k_search(v, w);
	r.scale = kq_unscale(r.scale, e, Q4K_CAP);
	r.min = kq_unscale(r.min, e, Q4K_CAP);
	return r;
}

/* 6-bit code of a sub-block scale against the stored f16 super-block scale d: rounding
 * against the value the decoder will use, not the unrounded max/63, absorbs d's f16
 * rounding error. */
static uint8_t q4k_code6(float v, float d)
{
	if (d == 0.0f)
		return 0;
	return (uint8_t)kq_round(kq_clamp(v / d, 0.0f, 63.0f));
}

/* GGML's 12-byte packing: bytes 0-3 hold the scales of sub-blocks 0-3 in their low 6 bits,
 * bytes 4-7 the mins of 0-3; bytes 8-11 hold the low nibbles of scale (low half) and min
 * (high half) of sub-blocks 4-7, whose top two bits sit in bits 6-7 of bytes 0-3 (scales)
 * and 4-7 (mins). */
static void q4k_pack_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s12)
{
	for (int j = 0; j < 4; j++) {
		s12[j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
		s12[j + 4] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
		s12[j + 8] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
	}
}

/* Inverse of q4k_pack_scales for sub-block j (GGML's get_scale_min_k4). */
static void q4k_unpack_scale(const uint8_t *s12, int j, uint8_t *sc, uint8_t *m)
{
	if (j < 4) {
		*sc = s12[j] & 63;
		*m = s12[j + 4] & 63;
	} else {
		*sc = (uint8_t)((s12[j + 4] & 15) | (s12[j - 4] >> 6) << 4);
		*m = (uint8_t)((s12[j + 4] >> 4) | (s12[j] >> 6) << 4);
	}
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

/* Final 4-bit codes of one sub-block with the stored scale dj and min mj, as the decoder
 * will apply them: (x + mj) times 1/dj, one division per sub-block (a non-zero dj is an f16
 * times 1..63, >= 2^-24, so 1/dj is finite). A zero scale leaves codes 0 (the decoder then
 * yields -mj whatever the code). The product is clamped before rounding so kq_round's
 * range always holds. */
static void q4k_codes(const float *x, float dj, float mj, uint8_t *L)
{
	const float idj = 1.0f / dj;
	for (int i = 0; i < SUB; i++)
		L[i] = dj == 0.0f ? 0
				  : (uint8_t)kq_round(kq_clamp((x[i] + mj) * idj, 0.0f, 15.0f));
}

/* Move a sub-block's 6-bit scale and min codes by at most one (kq_q4k_moves, in order)
 * where that lowers the sub-block's (weighted; w NULL: plain) squared error against the
 * stored d and dmin: the rounding of the fit to 6 bits, corrected by the error it actually
 * causes. vec_kquant.h repeats it with the terms formed lane by lane. */
static void q4k_refine(const float *x, const float *w, float d, float dmin, uint8_t *ls,
		       uint8_t *lm)
{
	float e[SUB];
	kq_q4k_err_terms(x, w, d * *ls, dmin * *lm, e);
	float best = kq_sum32(e);
	const int s0 = *ls, m0 = *lm;
	for (int k = 0; k < KQ_Q4K_NMOVES; k++) {
		const int s = s0 + kq_q4k_moves[k][0], m = m0 + kq_q4k_moves[k][1];
		if (s < 0 || s > 63 || m < 0 || m > 63)
			continue;
		kq_q4k_err_terms(x, w, d * (float)s, dmin * (float)m, e);
		const float err = kq_sum32(e);
		if (err < best) {
			best = err;
			*ls = (uint8_t)s;
			*lm = (uint8_t)m;
		}
	}
}

/* Encode one super-block of 256 sanitised values; qw: its 256 importance weights, or
 * NULL for the unweighted encoder. */
static void q4k_encode_block(const float *x, const float *qw, uint8_t *out)
{
	q4k_fit fit[NSUB];
	float max_scale = 0.0f, max_min = 0.0f, w[QK];
	int has_w[NSUB] = {0};
	for (int j = 0; j < NSUB; j++) {
		has_w[j] = qw && kq_norm_weights(qw + SUB * j, SUB, w + SUB * j);
		fit[j] = q4k_fit_sub(x + SUB * j, has_w[j] ? w + SUB * j : NULL);
		max_scale = fit[j].scale > max_scale ? fit[j].scale : max_scale;
		max_min = fit[j].min > max_min ? fit[j].min : max_min;
	}
	const uint16_t dh = aprfs_f32_to_f16(max_scale / 63.0f);
	const uint16_t mh = aprfs_f32_to_f16(max_min / 63.0f);
	const float d = aprfs_f16_to_f32(dh), dmin = aprfs_f16_to_f32(mh);

	uint8_t ls[NSUB], lm[NSUB], L[QK];
	for (int j = 0; j < NSUB; j++) {
		ls[j] = q4k_code6(fit[j].scale, d);
		lm[j] = q4k_code6(fit[j].min, dmin);
		q4k_refine(x + SUB * j, has_w[j] ? w + SUB * j : NULL, d, dmin, &ls[j], &lm[j]);
		q4k_codes(x + SUB * j, d * ls[j], dmin * lm[j], L + SUB * j);
	}
	put16(out, dh);
	put16(out + 2, mh);
	q4k_pack_scales(ls, lm, out + 4);
	uint8_t *qs = out + 16;
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++)
			qs[32 * c + l] = (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
}

/* GGML's dequantize_row_q4_K for one block: d1 = d*sc and m1 = dmin*m once per
 * sub-block, then y = d1*q - m1 (a product rounded to float, then the subtraction). */
static void q4k_decode_block(const uint8_t *in, float *y)
{
	const float d = aprfs_f16_to_f32(get16(in));
	const float dmin = aprfs_f16_to_f32(get16(in + 2));
	const uint8_t *s12 = in + 4, *q = in + 16;
	for (int c = 0; c < 4; c++) {
		uint8_t sc, m;
		q4k_unpack_scale(s12, 2 * c, &sc, &m);
		const float d1 = d * sc, m1 = dmin * m;
		q4k_unpack_scale(s12, 2 * c + 1, &sc, &m);
		const float d2 = d * sc, m2 = dmin * m;
		for (int l = 0; l < 32; l++)
			y[64 * c + l] = d1 * (q[32 * c + l] & 15) - m1;
		for (int l = 0; l < 32; l++)
			y[64 * c + 32 + l] = d2 * (q[32 * c + l] >> 4) - m2;
	}
}

static void q4k_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	kq_encode_blocks(x, n, p, out, Q4K_BYTES, q4k_encode_block);
}

static void q4k_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	kq_decode_blocks(in, n, y, Q4K_BYTES, q4k_decode_block);
}

const aprfs_codec aprfs_codec_q4k = {
    .name = "q4k",
    .dtype = APR_DT_Q4_K,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = QK,
    .block_bytes = Q4K_BYTES,
    .encode = q4k_encode,
    .decode = q4k_decode,
};
