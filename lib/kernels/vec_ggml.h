/* vec_ggml.h - the GGML block dequantizers of vec_tmpl.h (included from it, never alone):
 * GGUF's Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K and Q5_K blocks to f32, and the Q4_K /
 * Q6_K decoders of vec_kquant.h by block.
 *
 * Each is lib/quant/ggml_dequant.c's loop with the elements in lanes: the codes are
 * assembled as bytes (whole 16- or 32-byte rows, shifts and masks only), widened to int32
 * and converted to float exactly, then take the reference's float operations in its
 * order: the per-(sub-)block scale products d * sc and dmin * m formed once in scalar code
 * as the reference forms them, then one product per element and at most one addition or
 * subtraction, each rounded (no FMA: see vec_tmpl.h). A product of a finite code and a
 * scale has at most one NaN operand, and a subtraction keeps its operand order, so NaN
 * payloads come out as the reference's too. The one exception is Q4_1 / Q5_1's q*d + m
 * when both are NaN: which payload wins depends on the operand order the compiler gave
 * the reference's commutative addition, so a block whose d is not finite (the only way
 * q*d can be NaN) is handed to the reference function itself. */

/* An f16 scale at p (little-endian, any alignment) as float: aprfs_f16_to_f32, or an ISA
 * file's single-value conversion (exact, NaNs quieted alike: check_widen compares all
 * 65536 patterns of the vector form). */
#ifndef KV_HAVE_F16_1
KV_INLINE float kv_f16_1(uint16_t h)
{
	return aprfs_f16_to_f32(h);
}
#endif

KV_INLINE float kv_f16_at(const uint8_t *p)
{
	return kv_f16_1((uint16_t)(p[0] | p[1] << 8));
}

KV_INLINE vb16 kv_ld16(const uint8_t *p)
{
	vb16 v;
	memcpy(&v, p, sizeof(v));
	return v;
}

KV_INLINE vb32 kv_ld32(const uint8_t *p)
{
	vb32 v;
	memcpy(&v, p, sizeof(v));
	return v;
}

/* Two 16-byte rows as one 32-byte row, a first. */
KV_INLINE vb32 kv_cat16(vb16 a, vb16 b)
{
	return __builtin_shufflevector(a, b, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14,
				       15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28,
				       29, 30, 31);
}

/* y[0..m) = dv * codes[0..m) (m a multiple of KV_W), codes int8 in a byte row. */
KV_INLINE void kv_scale_row(const int8_t *codes, int m, float dv, float *y)
{
	const vf d = splat(dv);
	for (int g = 0; g < m; g += KV_W)
		stf(y + g, d * kv_s8_to_f(codes + g));
}

/* y[0..m) = dv * codes - mv, the product rounded first (the k-quants' d1*q - m1). */
KV_INLINE void kv_scale_sub_row(const int8_t *codes, int m, float dv, float mv, float *y)
{
	const vf d = splat(dv), mm = splat(mv);
	for (int g = 0; g < m; g += KV_W)
		stf(y + g, d * kv_s8_to_f(codes + g) - mm);
}

/* y[0..m) = codes * dv + mv (Q4_1 / Q5_1, for a finite dv only: see above). */
KV_INLINE void kv_scale_add_row(const int8_t *codes, int m, float dv, float mv, float *y)
{
	const vf d = splat(dv), mm = splat(mv);
	for (int g = 0; g < m; g += KV_W)
		stf(y + g, kv_s8_to_f(codes + g) * d + mm);
}

/* ---- 32-element blocks ------------------------------------------------------------------ */

static void dequant_q8_0_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 34, y += 32) {
		kv_prefetch(in, 34);
		kv_scale_row((const int8_t *)(in + 2), 32, kv_f16_at(in), y);
	}
}

/* 16 nibble bytes to the block's 32 codes in element order: byte j holds element j in its
 * low nibble and element j + 16 in its high one. */
KV_INLINE vb32 kv_nibbles32(const uint8_t *q)
{
	const vb16 b = kv_ld16(q);
	return kv_cat16(b & 15, b >> 4);
}

static void dequant_q4_0_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 18, y += 32) {
		const vb32 c = kv_nibbles32(in + 2) - 8;
		const int8_t *q = (const int8_t *)&c;
		kv_scale_row(q, 32, kv_f16_at(in), y);
	}
}

static void dequant_q4_1_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 20, y += 32) {
		const float d = kv_f16_at(in);
		if (!isfinite(d)) { /* q*d may be NaN: the reference's own addition */
			aprfs_ggml_dequant_q4_1(in, 1, y);
			continue;
		}
		const vb32 c = kv_nibbles32(in + 4);
		const int8_t *q = (const int8_t *)&c;
		kv_scale_add_row(q, 32, d, kv_f16_at(in + 2), y);
	}
}

/* Q5_0 / Q5_1's fifth bits as 0 or 16 per element: bit e of the little-endian qh. */
KV_INLINE vb32 kv_qh_bits16(const uint8_t *qh)
{
	vb16 w = {0};
	memcpy(&w, qh, 4);
	const vb32 rep =
	    __builtin_shufflevector(w, w, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2,
				    2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3);
	const vb32 bit = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128,
			  1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
	return (vb32)((rep & bit) != 0) & 16;
}

static void dequant_q5_0_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 22, y += 32) {
		const vb32 c = (kv_nibbles32(in + 6) | kv_qh_bits16(in + 2)) - 16;
		const int8_t *q = (const int8_t *)&c;
		kv_scale_row(q, 32, kv_f16_at(in), y);
	}
}

static void dequant_q5_1_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 24, y += 32) {
		const float d = kv_f16_at(in);
		if (!isfinite(d)) {
			aprfs_ggml_dequant_q5_1(in, 1, y);
			continue;
		}
		const vb32 c = kv_nibbles32(in + 8) | kv_qh_bits16(in + 4);
		const int8_t *q = (const int8_t *)&c;
		kv_scale_add_row(q, 32, d, kv_f16_at(in + 2), y);
	}
}

/* ---- 256-element super-blocks ----------------------------------------------------------- */

/* Q2_K: element 128h + 32k + l has bits 2k of q byte 32h + l; sub-block s = 8h + 2k + half
 * of 16 takes scale byte s (low nibble sc, high nibble m). */
static void dequant_q2_k_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 84) {
		kv_prefetch(in, 84);
		const float d = kv_f16_at(in + 80), dmin = kv_f16_at(in + 82);
		const uint8_t *sc = in;
		for (int h = 0; h < 2; h++) {
			const vb32 row = kv_ld32(in + 16 + 32 * h);
			for (int k = 0; k < 4; k++, y += 32, sc += 2) {
				const vb32 c = (row >> (2 * k)) & 3;
				const int8_t *q = (const int8_t *)&c;
				for (int half = 0; half < 2; half++) {
					const float dl = d * (float)(sc[half] & 15);
					const float ml = dmin * (float)(sc[half] >> 4);
					kv_scale_sub_row(q + 16 * half, 16, dl, ml,
							 y + 16 * half);
				}
			}
		}
	}
}

/* ggml_dequant.c's q3k_scales: sixteen 6-bit scales from 12 bytes, minus 32. */
KV_INLINE void kv_q3k_scales(const uint8_t *s12, int sc[16])
{
	for (int j = 0; j < 16; j++) {
		const int lo = j < 8 ? s12[j] & 15 : s12[j - 8] >> 4;
		const int hi = (s12[8 + j % 4] >> (2 * (j / 4))) & 3;
		sc[j] = (lo | hi << 4) - 32;
	}
}

/* Q3_K: Q2_K's low bits, plus a high bit h (bit 4h' + k of hmask byte l for element
 * 128h' + 32k + l): the code is low - 4 * !h = (low | h << 2) - 4. */
static void dequant_q3_k_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 110) {
		kv_prefetch(in, 110);
		const float d = kv_f16_at(in + 108);
		int sc[16];
		kv_q3k_scales(in + 96, sc);
		const vb32 hm = kv_ld32(in);
		int s = 0;
		for (int h = 0; h < 2; h++) {
			const vb32 row = kv_ld32(in + 32 + 32 * h);
			for (int k = 0; k < 4; k++, y += 32) {
				const int bit = 4 * h + k;
				const vb32 c =
				    (((row >> (2 * k)) & 3) | ((hm >> bit) & 1) << 2) - 4;
				const int8_t *q = (const int8_t *)&c;
				for (int half = 0; half < 2; half++, s++)
					kv_scale_row(q + 16 * half, 16, d * (float)sc[s],
						     y + 16 * half);
			}
		}
	}
}

/* Q5_K: Q4_K's scales and nibbles plus fifth bits: element 64c + l (l < 32) has bit 2c of
 * qh byte l, element 64c + 32 + l bit 2c + 1. */
static void dequant_q5_k_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += 176) {
		kv_prefetch(in, 176);
		const float d = kv_f16_at(in), dmin = kv_f16_at(in + 2);
		const uint8_t *s12 = in + 4;
		const vb32 qh = kv_ld32(in + 16);
		for (int c = 0; c < 4; c++, y += 64) {
			const vb32 ql = kv_ld32(in + 48 + 32 * c);
			const vb32 lo = (ql & 15) | ((qh >> (2 * c)) & 1) << 4;
			const vb32 hi = (ql >> 4) | ((qh >> (2 * c + 1)) & 1) << 4;
			const int8_t *q[2] = {(const int8_t *)&lo, (const int8_t *)&hi};
			for (int j = 0; j < 2; j++) {
				const int sb = 2 * c + j;
				int sc, m;
				if (sb < 4) {
					sc = s12[sb] & 63;
					m = s12[sb + 4] & 63;
				} else {
					sc = (s12[sb + 4] & 15) | (s12[sb - 4] >> 6) << 4;
					m = (s12[sb + 4] >> 4) | (s12[sb] >> 6) << 4;
				}
				kv_scale_sub_row(q[j], 32, d * (float)sc, dmin * (float)m,
						 y + 32 * j);
			}
		}
	}
}

static void dequant_q4_k_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += KQ4_BYTES, y += 256)
		kv_q4k_decode_block(in, y);
}

static void dequant_q6_k_v(const uint8_t *in, size_t nblocks, float *y)
{
	for (size_t b = 0; b < nblocks; b++, in += KQ6_BYTES, y += 256)
		kv_q6k_decode_block(in, y);
}
