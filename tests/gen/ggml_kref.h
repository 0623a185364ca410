/* ggml_kref.h - test-only model of GGML's own Q4_K and Q6_K quantizers (ggml-quants.c, MIT
 * licence: quantize_row_q4_K_ref / _impl, quantize_row_q6_K_ref / _impl and their
 * make_qkx2/qkx3/qp/qx searches; written afresh from their description), so the tests and
 * `make bench` can set aprfs' error beside llama-quantize's on the same weights. */
#ifndef APRFS_GGML_KREF_H
#define APRFS_GGML_KREF_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "ggml_encode.h"

#define GK_EPS 1e-15f

static inline int gk_imin(int a, int b)
{
	return a < b ? a : b;
}

/* Weighted least-squares (scale, min) of n values on nmax+1 levels, GGML's asymmetric
 * search: start from min/max, then nstep+1 candidate grids (rmin + rdelta*is + nmax
 * steps over the range), each fitted exactly; weights NULL means x*x (qkx3 only).
 * Each grid is laid on the best fit's min so far; qkx3 (clamp_first != 0) clamps the
 * scaled value before rounding, qkx2 the rounded code. Returns the scale; *neg_min =
 * -min. */
static inline float gk_make_qkx(int n, int nmax, const float *x, const float *weights,
				uint8_t *L, float *neg_min, float rmin, float rdelta, int nstep,
				int clamp_first)
{
	float min = x[0], max = x[0];
	float sum_w = weights ? weights[0] : x[0] * x[0];
	float sum_x = sum_w * x[0];
	for (int i = 1; i < n; i++) {
		min = x[i] < min ? x[i] : min;
		max = x[i] > max ? x[i] : max;
		float w = weights ? weights[i] : x[i] * x[i];
		sum_w += w;
		sum_x += w * x[i];
	}
	if (min > 0)
		min = 0;
	if (max <= min) {
		memset(L, 0, (size_t)n);
		*neg_min = -min;
		return 0.0f;
	}
	float iscale = nmax / (max - min), scale = 1 / iscale, best = 0;
	for (int i = 0; i < n; i++) {
		int l = ge_nearest(iscale * (x[i] - min));
		L[i] = (uint8_t)(l < 0 ? 0 : l > nmax ? nmax : l);
		float diff = scale * L[i] + min - x[i];
		best += (weights ? weights[i] : x[i] * x[i]) * diff * diff;
	}
	uint8_t aux[32];
	for (int is = 0; is <= nstep; is++) {
		iscale = (rmin + rdelta * is + nmax) / (max - min);
		float sl = 0, sl2 = 0, sxl = 0;
		for (int i = 0; i < n; i++) {
			const float v = iscale * (x[i] - min);
			int l;
			if (clamp_first)
				l = v > 0 ? ge_nearest(v < nmax ? v : (float)nmax) : 0;
			else
				l = ge_nearest(v), l = l < 0 ? 0 : l > nmax ? nmax : l;
			aux[i] = (uint8_t)l;
			float w = weights ? weights[i] : x[i] * x[i];
			sl += w * l;
			sl2 += w * l * l;
			sxl += w * l * x[i];
		}
		float D = sum_w * sl2 - sl * sl;
		if (D > 0) {
			float s = (sum_w * sxl - sum_x * sl) / D,
			      m = (sl2 * sum_x - sl * sxl) / D;
			if (m > 0) {
				m = 0;
				s = sxl / sl2;
			}
			float err = 0;
			for (int i = 0; i < n; i++) {
				float diff = s * aux[i] + m - x[i];
				err += (weights ? weights[i] : x[i] * x[i]) * diff * diff;
			}
			if (err < best) {
				memcpy(L, aux, (size_t)n);
				best = err;
				scale = s;
				min = m;
			}
		}
	}
	*neg_min = -min;
	return scale;
}

/* GGML's make_qp_quants: a positive scale for n non-negative values on 0..nmax, weighted
 * by qw, with a coordinate-descent polish of the codes. */
static inline float gk_make_qp(int n, int nmax, const float *x, uint8_t *L, const float *qw)
{
	float max = 0;
	for (int i = 0; i < n; i++)
		max = x[i] > max ? x[i] : max;
	if (max < GK_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	float iscale = nmax / max, best = 0;
	for (int i = 0; i < n; i++) {
		L[i] = (uint8_t)ge_nearest(iscale * x[i]);
		float diff = x[i] - L[i] / iscale;
		best += qw[i] * diff * diff;
	}
	for (int is = -4; is <= 4; is++) {
		if (is == 0)
			continue;
		float isc = (0.1f * is + nmax) / max, sc = 1 / isc, mse = 0;
		for (int i = 0; i < n; i++) {
			int l = gk_imin(nmax, ge_nearest(isc * x[i]));
			float diff = x[i] - sc * l;
			mse += qw[i] * diff * diff;
		}
		if (mse < best) {
			best = mse;
			iscale = isc;
		}
	}
	float sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = gk_imin(nmax, ge_nearest(iscale * x[i]));
		L[i] = (uint8_t)l;
		sumlx += qw[i] * x[i] * l;
		suml2 += qw[i] * l * l;
	}
	for (int itry = 0; itry < 5; itry++) {
		int changed = 0;
		for (int i = 0; i < n; i++) {
			float slx = sumlx - qw[i] * x[i] * L[i],
			      sl2 = suml2 - qw[i] * L[i] * L[i];
			if (slx > 0 && sl2 > 0) {
				int nl = gk_imin(nmax, ge_nearest(x[i] * sl2 / slx));
				if (nl != L[i]) {
					slx += qw[i] * x[i] * nl;
					sl2 += qw[i] * nl * nl;
					if (slx * slx * suml2 > sumlx * sumlx * sl2) {
						L[i] = (uint8_t)nl;
						sumlx = slx;
						suml2 = sl2;
						changed++;
					}
				}
			}
		}
		if (!changed)
			break;
	}
	return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

/* GGML's make_qx_quants with rmse_type 1: a signed scale for n values on -nmax..nmax-1,
 * weights qw or (NULL) x*x, 19 candidate inverse scales around -nmax/max. */
static inline float gk_make_qx(int n, int nmax, const float *x, int8_t *L, const float *qw)
{
	float max = 0, amax = 0;
	for (int i = 0; i < n; i++)
		if (fabsf(x[i]) > amax) {
			amax = fabsf(x[i]);
			max = x[i];
		}
	if (amax < GK_EPS) {
		memset(L, 0, (size_t)n);
		return 0.0f;
	}
	float iscale = -nmax / max, sumlx = 0, suml2 = 0;
	for (int i = 0; i < n; i++) {
		int l = ge_clamp(ge_nearest(iscale * x[i]), -nmax, nmax - 1);
		L[i] = (int8_t)(l + nmax);
		float w = qw ? qw[i] : x[i] * x[i];
		sumlx += w * x[i] * l;
		suml2 += w * l * l;
	}
	float scale = suml2 ? sumlx / suml2 : 0.0f, best = scale * sumlx;
	for (int is = -9; is <= 9; is++) {
		if (is == 0)
			continue;
		iscale = -(nmax + 0.1f * is) / max;
		sumlx = suml2 = 0;
		for (int i = 0; i < n; i++) {
			int l = ge_clamp(ge_nearest(iscale * x[i]), -nmax, nmax - 1);
			float w = qw ? qw[i] : x[i] * x[i];
			sumlx += w * x[i] * l;
			suml2 += w * l * l;
		}
		if (suml2 > 0 && sumlx * sumlx > best * suml2) {
			scale = sumlx / suml2;
			best = scale * sumlx;
		}
	}
	return scale;
}

/* The 12-byte Q4_K scale packing (GGML's layout, as q4k.c). */
static inline void gk_pack_q4k_scales(const uint8_t *ls, const uint8_t *lm, uint8_t *s12)
{
	memset(s12, 0, 12);
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			s12[j] = ls[j];
			s12[j + 4] = lm[j];
		} else {
			s12[j + 4] = (uint8_t)((ls[j] & 0xF) | (lm[j] & 0xF) << 4);
			s12[j - 4] |= (uint8_t)((ls[j] >> 4) << 6);
			s12[j] |= (uint8_t)((lm[j] >> 4) << 6);
		}
	}
}

/* Codes of a Q4_K block from its packed scales, then the nibbles (GGML's last pass). */
static inline void gk_q4k_finish(const float *x, const uint8_t *ls, const uint8_t *lm, float d,
				 float dmin, uint8_t *L, uint8_t *out)
{
	for (int j = 0; j < 8; j++) {
		const float dj = d * ls[j], mj = dmin * lm[j];
		if (dj == 0.0f)
			continue;
		for (int i = 0; i < 32; i++)
			L[32 * j + i] =
			    (uint8_t)ge_clamp(ge_nearest((x[32 * j + i] + mj) / dj), 0, 15);
	}
	for (int c = 0; c < 4; c++)
		for (int l = 0; l < 32; l++)
			out[16 + 32 * c + l] =
			    (uint8_t)(L[64 * c + l] | L[64 * c + 32 + l] << 4);
}

/* One Q4_K block the way GGML writes it: quantize_row_q4_K_ref when qw is NULL, else
 * quantize_row_q4_K_impl with the block's 256 importance weights. */
static inline void ggml_ref_q4k_block(const float *x, const float *qw, uint8_t *out)
{
	float scales[8], mins[8], w[32], sw[8];
	uint8_t L[256] = {0}, ls[8], lm[8];
	float d, dmin;
	if (qw) {
		float sx2 = 0;
		for (int l = 0; l < 256; l++)
			sx2 += x[l] * x[l];
		const float sigma2 = 2 * sx2 / 256;
		for (int j = 0; j < 8; j++) {
			sw[j] = 0;
			for (int l = 0; l < 32; l++) {
				w[l] = qw[32 * j + l] *
				       sqrtf(sigma2 + x[32 * j + l] * x[32 * j + l]);
				sw[j] += w[l];
			}
			scales[j] = gk_make_qkx(32, 15, x + 32 * j, w, L + 32 * j, &mins[j],
						-0.9f, 0.05f, 36, 1);
		}
		d = gk_make_qp(8, 63, scales, ls, sw);
		dmin = gk_make_qp(8, 63, mins, lm, sw);
	} else {
		float max_scale = 0, max_min = 0;
		for (int j = 0; j < 8; j++) {
			float sx2 = 0;
			for (int l = 0; l < 32; l++)
				sx2 += x[32 * j + l] * x[32 * j + l];
			const float av = sqrtf(sx2 / 32);
			for (int l = 0; l < 32; l++)
				w[l] = av + fabsf(x[32 * j + l]);
			scales[j] = gk_make_qkx(32, 15, x + 32 * j, w, L + 32 * j, &mins[j],
						-1.0f, 0.1f, 20, 0);
			max_scale = scales[j] > max_scale ? scales[j] : max_scale;
			max_min = mins[j] > max_min ? mins[j] : max_min;
		}
		const float is = max_scale > 0 ? 63.f / max_scale : 0.f;
		const float im = max_min > 0 ? 63.f / max_min : 0.f;
		for (int j = 0; j < 8; j++) {
			ls[j] = (uint8_t)gk_imin(63, (uint8_t)ge_nearest(is * scales[j]));
			lm[j] = (uint8_t)gk_imin(63, (uint8_t)ge_nearest(im * mins[j]));
		}
		d = max_scale / 63.f;
		dmin = max_min / 63.f;
	}
	const uint16_t dh = aprfs_f32_to_f16(d), mh = aprfs_f32_to_f16(dmin);
	ge_put16(out, dh);
	ge_put16(out + 2, mh);
	gk_pack_q4k_scales(ls, lm, out + 4);
	gk_q4k_finish(x, ls, lm, aprfs_f16_to_f32(dh), aprfs_f16_to_f32(mh), L, out);
}

/* One Q6_K block the way GGML writes it (quantize_row_q6_K_ref / _impl: the same code,
 * make_qx_quants weighted by the imatrix or by x*x). */
static inline void ggml_ref_q6k_block(const float *x, const float *qw, uint8_t *out)
{
	float scales[16], max_scale = 0, max_abs = 0;
	int8_t L8[256];
	uint8_t L[256];
	for (int ib = 0; ib < 16; ib++) {
		scales[ib] =
		    gk_make_qx(16, 32, x + 16 * ib, L8 + 16 * ib, qw ? qw + 16 * ib : NULL);
		if (fabsf(scales[ib]) > max_abs) {
			max_abs = fabsf(scales[ib]);
			max_scale = scales[ib];
		}
	}
	memset(out, 0, 210);
	if (max_abs < GK_EPS)
		return;
	const float iscale = -128.f / max_scale;
	const uint16_t dh = aprfs_f32_to_f16(1 / iscale);
	const float d = aprfs_f16_to_f32(dh);
	int8_t *sc = (int8_t *)(out + 192);
	for (int ib = 0; ib < 16; ib++)
		sc[ib] = (int8_t)gk_imin(127, ge_nearest(iscale * scales[ib]));
	for (int j = 0; j < 16; j++) {
		const float dj = d * sc[j];
		for (int i = 0; i < 16; i++)
			L[16 * j + i] =
			    (uint8_t)(dj == 0.0f
					  ? 32
					  : ge_clamp(ge_nearest(x[16 * j + i] / dj), -32, 31) +
						32);
	}
	for (int h = 0; h < 2; h++) {
		const uint8_t *Lh = L + 128 * h;
		uint8_t *ql = out + 64 * h, *qh = out + 128 + 32 * h;
		for (int l = 0; l < 32; l++) {
			ql[l] = (uint8_t)((Lh[l] & 15) | (Lh[l + 64] & 15) << 4);
			ql[l + 32] = (uint8_t)((Lh[l + 32] & 15) | (Lh[l + 96] & 15) << 4);
			qh[l] = (uint8_t)(Lh[l] >> 4 | (Lh[l + 32] >> 4) << 2 |
					  (Lh[l + 64] >> 4) << 4 | (Lh[l + 96] >> 4) << 6);
		}
	}
	ge_put16(out + 208, dh);
}

#endif
