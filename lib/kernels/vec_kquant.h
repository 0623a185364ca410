/* vec_kquant.h - the Q4_K and Q6_K kernels of vec_tmpl.h (included from it, never alone):
 * the scale searches of lib/quant/q4k.c and q6k.c run one lane per sub-block, KV_W
 * sub-blocks per pass, each lane replaying the scalar search; the decoders follow GGML's.
 * Over 500 lines because both searches mirror q4k.c / q6k.c step for step, kept side by
 * side so a change to the scalar search is matched here in one place. */

/* sqrtf lane by lane: IEEE square root is correctly rounded, so the vector instruction
 * gives sqrtf's float; an ISA file may supply it. */
#ifndef KV_HAVE_SQRT
KV_INLINE vf kv_sqrt(vf v)
{
	for (int j = 0; j < KV_W; j++)
		v[j] = sqrtf(v[j]);
	return v;
}
#endif

KV_INLINE vf kv_round(vf v)
{
	return (v + 0x1.8p23f) - 0x1.8p23f;
} /* kq_round */

/* kq_fold8 / kq_sum16 / kq_sum32 on rows: the same adds, on KV_W lanes at once. */
KV_INLINE vf kv_fold8(const vf *b)
{
	const vf c0 = b[0] + b[4], c1 = b[1] + b[5], c2 = b[2] + b[6], c3 = b[3] + b[7];
	return (c0 + c2) + (c1 + c3);
}

KV_INLINE vf kv_sum16(const vf *a)
{
	vf b[8];
	for (int i = 0; i < 8; i++)
		b[i] = a[i] + a[i + 8];
	return kv_fold8(b);
}

KV_INLINE vf kv_sum32(const vf *a)
{
	vf b[16];
	for (int i = 0; i < 16; i++)
		b[i] = a[i] + a[i + 16];
	return kv_sum16(b);
}

/* kq_pow2 for p in [-149, 127]; the shift count is masked only so lanes that take the
 * other branch never shift by more than 31. */
KV_INLINE vf kv_pow2(vi p)
{
	vi normal = (p + 127) << 23;
	vi sub = ((vi){0} + 1) << ((p + 149) & 31);
	return (vf)seli(p >= -126, normal, sub);
}

KV_INLINE vi kv_norm_exponent(vf amax)
{
	return (vi)(((vu)amax >> 23) & 0xff) - 126;
}

KV_INLINE vf kv_unscale(vf v, vi e, float cap)
{
	const vi half = e / 2;
	return kv_clamp(v * kv_pow2(half) * kv_pow2(e - half), -cap, cap);
}

/* kq_sanitize, KV_W at a time (n a multiple of KV_W). */
static void kv_sanitize(const float *x, size_t n, float *out)
{
	for (size_t i = 0; i < n; i += KV_W)
		stf(out + i, kv_block_sanitize(ldf(x + i)));
}

/* One stage of an in-place KV_W x KV_W transpose (row i = m[i]): rows i and i+h (bit h of
 * i clear) swap their off-diagonal h x h blocks. Doing it for every h swaps each element's
 * row and column bits, i.e. transposes; shuffles only, so values pass through unchanged.
 * LO and HI name constant index lists (__builtin_shufflevector wants constants). */
#define KV_TSTAGE(m, h, LO, HI)                                                                \
	do {                                                                                   \
		for (int i_ = 0; i_ < KV_W; i_++) {                                            \
			if (!(i_ & (h))) {                                                     \
				const vf a_ = (m)[i_], b_ = (m)[i_ + (h)];                     \
				(m)[i_] = __builtin_shufflevector(a_, b_, LO);                 \
				(m)[i_ + (h)] = __builtin_shufflevector(a_, b_, HI);           \
			}                                                                      \
		}                                                                              \
	} while (0)

/* Lane j of stage h: lo[j] = j & h ? KV_W + j - h : j, hi[j] = j & h ? KV_W + j : j + h. */
#if KV_W == 4
#define KV_T1_LO 0, 4, 2, 6
#define KV_T1_HI 1, 5, 3, 7
#define KV_T2_LO 0, 1, 4, 5
#define KV_T2_HI 2, 3, 6, 7
#elif KV_W == 8
#define KV_T1_LO 0, 8, 2, 10, 4, 12, 6, 14
#define KV_T1_HI 1, 9, 3, 11, 5, 13, 7, 15
#define KV_T2_LO 0, 1, 8, 9, 4, 5, 12, 13
#define KV_T2_HI 2, 3, 10, 11, 6, 7, 14, 15
#define KV_T4_LO 0, 1, 2, 3, 8, 9, 10, 11
#define KV_T4_HI 4, 5, 6, 7, 12, 13, 14, 15
#else
#define KV_T1_LO 0, 16, 2, 18, 4, 20, 6, 22, 8, 24, 10, 26, 12, 28, 14, 30
#define KV_T1_HI 1, 17, 3, 19, 5, 21, 7, 23, 9, 25, 11, 27, 13, 29, 15, 31
#define KV_T2_LO 0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24, 25, 12, 13, 28, 29
#define KV_T2_HI 2, 3, 18, 19, 6, 7, 22, 23, 10, 11, 26, 27, 14, 15, 30, 31
#define KV_T4_LO 0, 1, 2, 3, 16, 17, 18, 19, 8, 9, 10, 11, 24, 25, 26, 27
#define KV_T4_HI 4, 5, 6, 7, 20, 21, 22, 23, 12, 13, 14, 15, 28, 29, 30, 31
#define KV_T8_LO 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23
#define KV_T8_HI 8, 9, 10, 11, 12, 13, 14, 15, 24, 25, 26, 27, 28, 29, 30, 31
#endif

KV_INLINE void kv_transpose_sq(vf *m)
{
	KV_TSTAGE(m, 1, KV_T1_LO, KV_T1_HI);
	KV_TSTAGE(m, 2, KV_T2_LO, KV_T2_HI);
#if KV_W >= 8
	KV_TSTAGE(m, 4, KV_T4_LO, KV_T4_HI);
#endif
#if KV_W == 16
	KV_TSTAGE(m, 8, KV_T8_LO, KV_T8_HI);
#endif
}

/* rows[r][j] = buf[sub * j + r]: element r of sub-block j (j < KV_W), one KV_W-square
 * tile of KV_W rows at a time. */
static void kv_transpose(const float *buf, int sub, vf *rows)
{
	for (int c = 0; c < sub; c += KV_W) {
		for (int j = 0; j < KV_W; j++)
			rows[c + j] = ldf(buf + sub * j + c);
		kv_transpose_sq(rows + c);
	}
}

KV_INLINE vf kv_absmax_rows(const vf *x, int sub)
{
	vf m = splat(0.0f);
	for (int i = 0; i < sub; i++)
		m = sel(vabs(x[i]) > m, vabs(x[i]), m);
	return m;
}

/* ---- Q4_K -------------------------------------------------------------------------------- */

enum { KQ4_SUB = 32, KQ4_STEPS = 21, KQ4_BYTES = 144 };
#define KQ4_CAP (63.0f * 65504.0f)

/* q4k_solve + the "gain > best" update of q4k_search, per lane. */
typedef struct {
	vf best, scale, min, lo;
} kv_q4k_state;

static void kv_q4k_step(kv_q4k_state *st, vf sl, vf sll, vf slx, vf sw, vf sx)
{
	const vf det = sw * sll - sl * sl;
	const vi ok = det > 1e-5f * sw * sll;
	vf s = sel(ok, (sw * slx - sx * sl) / det, splat(0.0f));
	vf m = sel(ok, (sll * sx - sl * slx) / det, splat(1.0f));
	const vi mpos = m > 0.0f;
	s = sel(mpos, sel(sll > 0.0f, slx / sll, splat(0.0f)), s);
	m = sel(mpos, splat(0.0f), m);
	const vf gain = sel(s > 0.0f, s * slx + m * sx, splat(-FLT_MAX));
	const vi upd = gain > st->best;
	st->best = sel(upd, gain, st->best);
	st->scale = sel(upd, s, st->scale);
	st->min = sel(upd, -m, st->min);
	st->lo = sel(upd, m, st->lo);
}

/* q4k_candidate's three sums for one candidate: rows i, i+4, ..., i+28 are made together
 * and folded at once in kq_sum32's tree (row i with i+16, then with i+8's pair, then with
 * i+4's), so no row is ever stored; dv = v - lo is formed on the fly, as the reference's
 * dv array always holds it. The same adds in the same order: the same floats. */
typedef struct {
	vf sl, sll, slx;
} kv_sums3;

KV_INLINE kv_sums3 kv_add3(kv_sums3 a, kv_sums3 b)
{
	return (kv_sums3){a.sl + b.sl, a.sll + b.sll, a.slx + b.slx};
}

KV_INLINE kv_sums3 kv_q4k_row(vf v, vf w, vf lo, vf iscale)
{
	const vf l = kv_clamp(kv_round(iscale * (v - lo)), 0.0f, 15.0f);
	const vf wl = w * l;
	return (kv_sums3){wl, wl * l, wl * v};
}

KV_INLINE kv_sums3 kv_q4k_pair(const vf *v, const vf *w, vf lo, vf is, int i)
{
	return kv_add3(kv_q4k_row(v[i], w[i], lo, is),
		       kv_q4k_row(v[i + 16], w[i + 16], lo, is));
}

static kv_sums3 kv_q4k_candidate(const vf *v, const vf *w, vf lo, vf is)
{
	kv_sums3 d[4];
	for (int i = 0; i < 4; i++) {
		const kv_sums3 c0 =
		    kv_add3(kv_q4k_pair(v, w, lo, is, i), kv_q4k_pair(v, w, lo, is, i + 8));
		const kv_sums3 c4 = kv_add3(kv_q4k_pair(v, w, lo, is, i + 4),
					    kv_q4k_pair(v, w, lo, is, i + 12));
		d[i] = kv_add3(c0, c4);
	}
	return kv_add3(kv_add3(d[0], d[2]), kv_add3(d[1], d[3]));
}

/* q4k_search on KV_W normalised sub-blocks (v: 32 rows); lanes in usew take the
 * importance weights of wr (32 rows), the others q4k_default_weights. */
static void kv_q4k_search(const vf *v, const vf *wr, vi usew, vf *scale, vf *min)
{
	vf lo = v[0], hi = v[0];
	for (int i = 1; i < KQ4_SUB; i++) {
		lo = sel(v[i] < lo, v[i], lo);
		hi = sel(v[i] > hi, v[i], hi);
	}
	lo = sel(lo > 0.0f, splat(0.0f), lo);
	const vf flat_min = -lo;
	const vi flat = hi == lo;

	vf w[KQ4_SUB], a[KQ4_SUB], b[KQ4_SUB];
	for (int i = 0; i < KQ4_SUB; i++)
		a[i] = v[i] * v[i];
	const vf av = kv_sqrt(kv_sum32(a) / (float)KQ4_SUB);
	for (int i = 0; i < KQ4_SUB; i++) {
		w[i] = wr ? sel(usew, wr[i], av + vabs(v[i])) : av + vabs(v[i]);
		b[i] = w[i] * v[i];
	}
	const vf sw = kv_sum32(w), sx = kv_sum32(b);

	kv_q4k_state st = {splat(-FLT_MAX), (hi - lo) / 15.0f, flat_min, lo};
	for (int k = 0; k < KQ4_STEPS; k++) {
		const vf iscale = ((float)(140 + k) / 10.0f) / (hi - st.lo);
		const kv_sums3 c = kv_q4k_candidate(v, w, st.lo, iscale);
		kv_q4k_step(&st, c.sl, c.sll, c.slx, sw, sx);
	}
	*scale = sel(flat, splat(0.0f), st.scale);
	*min = sel(flat, flat_min, st.min);
}

/* q4k_fit_sub on KV_W sub-blocks of sanitised values (32 rows), weights as for
 * kv_q4k_search. */
static void kv_q4k_fit(const vf *x, const vf *wr, vi usew, vf *scale, vf *min)
{
	const vf amax = kv_absmax_rows(x, KQ4_SUB);
	const vi tiny = amax < KQ_TINY;
	const vi e = kv_norm_exponent(amax);
	const vf f = kv_pow2(-e);
	vf v[KQ4_SUB], s, m;
	for (int i = 0; i < KQ4_SUB; i++)
		v[i] = x[i] * f;
	kv_q4k_search(v, wr, usew, &s, &m);
	*scale = sel(tiny, splat(0.0f), kv_unscale(s, e, KQ4_CAP));
	*min = sel(tiny, splat(0.0f), kv_unscale(m, e, KQ4_CAP));
}

static uint8_t kv_code6(float v, float d)
{
	if (d == 0.0f)
		return 0;
	return (uint8_t)kq_round(kq_clamp(v / d, 0.0f, 63.0f));
}

/* q4k_codes for one 32-element sub-block. */
static void kv_q4k_codes(const float *x, float dj, float mj, uint8_t *L)
{
	const float idj = 1.0f / dj;
	for (int h = 0; h < 32 / KV_W; h++) {
		vi q = {0};
		if (dj != 0.0f)
			q = __builtin_convertvector(
			    kv_round(kv_clamp((ldf(x + KV_W * h) + mj) * idj, 0.0f, 15.0f)),
			    vi);
		vb b = kv_narrow_b(q);
		memcpy(L + KV_W * h, &b, sizeof(b));
	}
}

/* kq_q4k_err_terms for KV_W sub-blocks at once (x, wt: 32 rows; lane j has its own dj and
 * mj), summed by kv_sum32: each lane gets the float the scalar reference's kq_sum32 gets. */
static vf kv_q4k_rows_err(const vf *x, const vf *wt, vf dj, vf mj)
{
	vf e[KQ4_SUB];
	const vi zero = dj == 0.0f;
	const vf idj = splat(1.0f) / dj;
	for (int i = 0; i < KQ4_SUB; i++) {
		const vf q =
		    sel(zero, splat(0.0f), kv_round(kv_clamp((x[i] + mj) * idj, 0.0f, 15.0f)));
		const vf r = (dj * q - mj) - x[i];
		e[i] = wt[i] * (r * r);
	}
	return kv_sum32(e);
}

/* q4k.c's q4k_refine on KV_W sub-blocks: ls, lm are the lanes' codes (as floats), d and
 * dmin their blocks' stored scales. */
static void kv_q4k_refine(const vf *x, const vf *wt, vf d, vf dmin, vf *ls, vf *lm)
{
	vf best = kv_q4k_rows_err(x, wt, d * *ls, dmin * *lm);
	const vf s0 = *ls, m0 = *lm;
	for (int k = 0; k < KQ_Q4K_NMOVES; k++) {
		const vf s = s0 + (float)kq_q4k_moves[k][0], m = m0 + (float)kq_q4k_moves[k][1];
		const vi ok = (s >= 0.0f) & (s <= 63.0f) & (m >= 0.0f) & (m <= 63.0f);
		const vf err = kv_q4k_rows_err(x, wt, d * s, dmin * m);
		const vi upd = ok & (err < best);
		best = sel(upd, err, best);
		*ls = sel(upd, s, *ls);
		*lm = sel(upd, m, *lm);
	}
}

/* q4k_encode_block's middle: the stored d and dmin of a block from its eight fits, and the
 * 6-bit codes before refinement. */
static void kv_q4k_scales(const float *fs, const float *fm, uint16_t *dh, uint16_t *mh,
			  float *d, float *dmin, float *ls, float *lm)
{
	float max_scale = 0.0f, max_min = 0.0f;
	for (int j = 0; j < 8; j++) {
		max_scale = fs[j] > max_scale ? fs[j] : max_scale;
		max_min = fm[j] > max_min ? fm[j] : max_min;
	}
	*dh = aprfs_f32_to_f16(max_scale / 63.0f);
	*mh = aprfs_f32_to_f16(max_min / 63.0f);
	const float dd = aprfs_f16_to_f32(*dh), dm = aprfs_f16_to_f32(*mh);
	for (int j = 0; j < 8; j++) {
		d[j] = dd;
		dmin[j] = dm;
		ls[j] = kv_code6(fs[j], dd);
		lm[j] = kv_code6(fm[j], dm);
	}
}

/* q4k_encode_block's end: codes and bytes from the refined 6-bit codes. */
static void kv_q4k_pack(const float *x, uint16_t dh, uint16_t mh, const float *fls,
			const float *flm, uint8_t *out)
{
	const float d = aprfs_f16_to_f32(dh), dmin = aprfs_f16_to_f32(mh);
	uint8_t ls[8], lm[8], L[256];
	for (int j = 0; j < 8; j++) {
		ls[j] = (uint8_t)fls[j];
		lm[j] = (uint8_t)flm[j];
		kv_q4k_codes(x + 32 * j, d * ls[j], dmin * lm[j], L + 32 * j);
	}
	out[0] = (uint8_t)dh;
	out[1] = (uint8_t)(dh >> 8);
	out[2] = (uint8_t)mh;
	out[3] = (uint8_t)(mh >> 8);
	for (int j = 0; j < 4; j++) {
		out[4 + j] = (uint8_t)(ls[j] | (ls[j + 4] >> 4) << 6);
		out[8 + j] = (uint8_t)(lm[j] | (lm[j + 4] >> 4) << 6);
		out[12 + j] = (uint8_t)((ls[j + 4] & 15) | (lm[j + 4] & 15) << 4);
	}
	for (int c = 0; c < 4; c++) {
		vb16 lo0, lo1, hi0, hi1;
		memcpy(&lo0, L + 64 * c, 16);
		memcpy(&lo1, L + 64 * c + 16, 16);
		memcpy(&hi0, L + 64 * c + 32, 16);
		memcpy(&hi1, L + 64 * c + 48, 16);
		vb16 q0 = lo0 | hi0 << 4, q1 = lo1 | hi1 << 4;
		memcpy(out + 16 + 32 * c, &q0, 16);
		memcpy(out + 16 + 32 * c + 16, &q1, 16);
	}
}

/* KV_W sub-blocks per search pass: a batch is the super-blocks whose fits one or more
 * passes fill (AVX-512: two per pass; NEON: one in two passes). A lone last super-block
 * of a two-block batch is searched twice and its copy's fits are ignored. */
enum { KQ4_BATCH = KV_W >= 8 ? KV_W / 8 : 1 };

/* The normalised importance weights of nb blocks starting at element `at` of a weighted
 * call (kq_norm_weights per sub-block; has_w 0 where a sub-block has none). */
static void kv_block_weights(const aprfs_qparams *p, size_t at, int nb, int sub, float *w,
			     int *has_w)
{
	for (int b = 0; b < nb; b++) {
		const float *qw = kq_block_weights(p, at + 256 * (size_t)b);
		for (int j = 0; j < 256 / sub; j++) {
			const int k = b * (256 / sub) + j;
			has_w[k] = qw && kq_norm_weights(qw + sub * j, sub, w + sub * k);
		}
	}
}

/* Lanes j of a pass over sub-blocks g .. g+KV_W-1 whose weights are used. */
KV_INLINE vi kv_lanes(const int *has_w, int g)
{
	vi m = {0};
	for (int j = 0; j < KV_W; j++)
		m[j] = has_w[g + j] ? -1 : 0;
	return m;
}

/* The weight rows of one pass: the lanes' importance weights where usew, else 1. */
static void kv_weight_rows(const float *w, int sub, int weighted, vi usew, vf *wt)
{
	if (weighted)
		kv_transpose(w, sub, wt);
	for (int i = 0; i < sub; i++)
		wt[i] = weighted ? sel(usew, wt[i], splat(1.0f)) : splat(1.0f);
}

/* One batch of fits: the search passes, then the scales, the refinement passes and the
 * bytes of its nb real blocks. */
static void kv_q4k_batch(const float *buf, const float *w, const int *has_w, int weighted,
			 int nb, uint8_t *out)
{
	enum { NS = 8 * KQ4_BATCH };
	float fs[NS], fm[NS], d[NS], dmin[NS], ls[NS], lm[NS];
	uint16_t dh[KQ4_BATCH], mh[KQ4_BATCH];
	vf rows[KQ4_SUB], wt[KQ4_SUB], s, m;
	for (int g = 0; g < NS; g += KV_W) {
		kv_transpose(buf + KQ4_SUB * g, KQ4_SUB, rows);
		if (weighted)
			kv_transpose(w + KQ4_SUB * g, KQ4_SUB, wt);
		kv_q4k_fit(rows, weighted ? wt : NULL, kv_lanes(has_w, g), &s, &m);
		memcpy(fs + g, &s, sizeof(s));
		memcpy(fm + g, &m, sizeof(m));
	}
	for (int b = 0; b < KQ4_BATCH; b++)
		kv_q4k_scales(fs + 8 * b, fm + 8 * b, &dh[b], &mh[b], d + 8 * b, dmin + 8 * b,
			      ls + 8 * b, lm + 8 * b);
	for (int g = 0; g < NS; g += KV_W) {
		vf vsd, vm, vls, vlm;
		kv_transpose(buf + KQ4_SUB * g, KQ4_SUB, rows);
		kv_weight_rows(w + KQ4_SUB * g, KQ4_SUB, weighted, kv_lanes(has_w, g), wt);
		memcpy(&vsd, d + g, sizeof(vsd));
		memcpy(&vm, dmin + g, sizeof(vm));
		memcpy(&vls, ls + g, sizeof(vls));
		memcpy(&vlm, lm + g, sizeof(vlm));
		kv_q4k_refine(rows, wt, vsd, vm, &vls, &vlm);
		memcpy(ls + g, &vls, sizeof(vls));
		memcpy(lm + g, &vlm, sizeof(vlm));
	}
	for (int b = 0; b < nb; b++)
		kv_q4k_pack(buf + 256 * b, dh[b], mh[b], ls + 8 * b, lm + 8 * b,
			    out + KQ4_BYTES * b);
}

static void encode_q4k_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	float buf[256 * KQ4_BATCH], w[256 * KQ4_BATCH] = {0};
	int has_w[8 * KQ4_BATCH] = {0};
	const int weighted = kq_block_weights(p, 0) != NULL;
	size_t at = 0;
	while (at + 256 <= n) {
		int nb = 0;
		for (; nb < KQ4_BATCH && at + 256 * (nb + 1) <= n; nb++)
			kv_sanitize(x + at + 256 * nb, 256, buf + 256 * nb);
		for (int b = nb; b < KQ4_BATCH; b++)
			memmove(buf + 256 * b, buf, 256 * sizeof(float));
		if (weighted) {
			kv_block_weights(p, at, nb, KQ4_SUB, w, has_w);
			memset(has_w + 8 * nb, 0, sizeof(int) * 8 * (size_t)(KQ4_BATCH - nb));
		}
		kv_q4k_batch(buf, w, has_w, weighted, nb, out);
		out += KQ4_BYTES * (size_t)nb;
		at += 256 * (size_t)nb;
	}
	if (at < n)
		aprfs_codec_q4k.encode(x + at, n - at, p, out);
}

/* q4k.c's q4k_decode_block (GGML's dequantize_row_q4_K): d1 = d*sc and m1 = dmin*m per
 * sub-block, then d1*q - m1 per element, the product rounded before the subtraction. */
static void kv_q4k_decode_block(const uint8_t *in, float *y)
{
	const float d = aprfs_f16_to_f32((uint16_t)(in[0] | in[1] << 8));
	const float dmin = aprfs_f16_to_f32((uint16_t)(in[2] | in[3] << 8));
	const uint8_t *s12 = in + 4;
	float d1[8], m1[8];
	for (int j = 0; j < 4; j++) {
		d1[j] = d * (s12[j] & 63);
		m1[j] = dmin * (s12[j + 4] & 63);
		d1[j + 4] = d * ((s12[j + 8] & 15) | (s12[j] >> 6) << 4);
		m1[j + 4] = dmin * ((s12[j + 8] >> 4) | (s12[j + 4] >> 6) << 4);
	}
	for (int c = 0; c < 4; c++) {
		vb32 b;
		memcpy(&b, in + 16 + 32 * c, sizeof(b));
		const vb32 lo = b & 15, hi = b >> 4;
		int8_t q[64];
		memcpy(q, &lo, sizeof(lo));
		memcpy(q + 32, &hi, sizeof(hi));
		for (int g = 0; g < 64; g += KV_W) {
			const int j = 2 * c + g / 32;
			stf(y + 64 * c + g, splat(d1[j]) * kv_s8_to_f(q + g) - splat(m1[j]));
		}
	}
}

static void decode_q4k_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	size_t at = 0;
	for (; at + 256 <= n; at += 256, in += KQ4_BYTES)
		kv_q4k_decode_block(in, y + at);
	if (at < n)
		aprfs_codec_q4k.decode(in, n - at, p, y + at);
}

/* ---- Q6_K -------------------------------------------------------------------------------- */

enum { KQ6_SUB = 16, KQ6_STEPS = 9, KQ6_BYTES = 210 };
#define KQ6_CAP (128.0f * 65504.0f)

/* q6k_search on KV_W normalised sub-blocks (v: 16 rows); lanes in usew take the weights
 * of wr (16 rows), the others v*v. */
static vf kv_q6k_search(const vf *v, const vf *wr, vi usew)
{
	vf amax = splat(0.0f), vmax = splat(0.0f), w[KQ6_SUB];
	for (int i = 0; i < KQ6_SUB; i++) {
		const vi gt = vabs(v[i]) > amax;
		amax = sel(gt, vabs(v[i]), amax);
		vmax = sel(gt, v[i], vmax);
	}
	for (int i = 0; i < KQ6_SUB; i++)
		w[i] = wr ? sel(usew, wr[i], v[i] * v[i]) : v[i] * v[i];
	vf best = splat(-FLT_MAX), scale = -vmax / 32.0f;
	for (int k = -KQ6_STEPS; k <= KQ6_STEPS; k++) {
		const vf iscale = -((float)(320 + k) / 10.0f) / vmax;
		vf wll[KQ6_SUB], wlx[KQ6_SUB];
		for (int i = 0; i < KQ6_SUB; i++) {
			vf l = kv_clamp(kv_round(iscale * v[i]), -32.0f, 31.0f);
			vf wl = w[i] * l;
			wll[i] = wl * l;
			wlx[i] = wl * v[i];
		}
		const vf sll = kv_sum16(wll), slx = kv_sum16(wlx);
		const vf s = slx / sll;
		const vf gain = sel(sll > 0.0f, s * slx, splat(-FLT_MAX));
		const vi upd = gain > best;
		best = sel(upd, gain, best);
		scale = sel(upd, s, scale);
	}
	return scale;
}

static vf kv_q6k_fit(const vf *x, const vf *wr, vi usew)
{
	const vf amax = kv_absmax_rows(x, KQ6_SUB);
	const vi tiny = amax < KQ_TINY;
	const vi e = kv_norm_exponent(amax);
	const vf f = kv_pow2(-e);
	vf v[KQ6_SUB];
	for (int i = 0; i < KQ6_SUB; i++)
		v[i] = x[i] * f;
	return sel(tiny, splat(0.0f), kv_unscale(kv_q6k_search(v, wr, usew), e, KQ6_CAP));
}

static void kv_q6k_pack(const uint8_t *L, uint8_t *ql, uint8_t *qh)
{
	for (int h = 0; h < 2; h++, L += 128, ql += 64, qh += 32) {
		vb32 a, b, c, d;
		/* cppcheck-suppress uninitvar ; kv_q6k_finish writes all 256 codes first */
		memcpy(&a, L, 32);
		memcpy(&b, L + 32, 32);
		memcpy(&c, L + 64, 32);
		memcpy(&d, L + 96, 32);
		vb32 l0 = (a & 15) | (c & 15) << 4, l1 = (b & 15) | (d & 15) << 4;
		vb32 hh = a >> 4 | (b >> 4) << 2 | (c >> 4) << 4 | (d >> 4) << 6;
		memcpy(ql, &l0, 32);
		memcpy(ql + 32, &l1, 32);
		memcpy(qh, &hh, 32);
	}
}

/* kq_q6k_err for KV_W sub-blocks at once (x, wt: 16 rows; lane j's scale dj), the
 * scalar reference's element-order sum in each lane. */
static vf kv_q6k_rows_err(const vf *x, const vf *wt, vf dj)
{
	vf e = splat(0.0f);
	const vi zero = dj == 0.0f;
	for (int i = 0; i < KQ6_SUB; i++) {
		const vf q =
		    sel(zero, splat(0.0f), kv_round(kv_clamp(x[i] / dj, -32.0f, 31.0f)));
		const vf r = dj * q - x[i];
		e += wt[i] * (r * r);
	}
	return e;
}

/* kq_q6k_refine on KV_W sub-blocks of one block (stored scale d != 0): sc holds the
 * lanes' int8 codes as floats. */
static vf kv_q6k_refine(const vf *x, const vf *wt, float d, vf sc)
{
	vf best = kv_q6k_rows_err(x, wt, d * sc), pick = sc;
	for (int k = -1; k <= 1; k += 2) {
		const vf t = sc + (float)k;
		const vf err = kv_q6k_rows_err(x, wt, d * t);
		const vi upd = (t >= -128.0f) & (t <= 127.0f) & (err < best);
		best = sel(upd, err, best);
		pick = sel(upd, t, pick);
	}
	return pick;
}

/* q6k_encode_block's second half: from the sixteen signed scales to the bytes (w, has_w:
 * the block's normalised weights, as kv_block_weights gives them). */
static void kv_q6k_finish(const float *x, const float *scale, const float *w, const int *has_w,
			  int weighted, uint8_t *out)
{
	float max_scale = 0.0f, c[16];
	for (int j = 0; j < 16; j++)
		if (fabsf(scale[j]) > fabsf(max_scale))
			max_scale = scale[j];
	const uint16_t dh = aprfs_f32_to_f16(max_scale / -128.0f);
	const float d = aprfs_f16_to_f32(dh);
	for (int j = 0; j < 16; j++)
		c[j] = d == 0.0f ? 0.0f : kq_round(kq_clamp(scale[j] / d, -128.0f, 127.0f));
	for (int g = 0; d != 0.0f && g < 16; g += KV_W) {
		vf rows[KQ6_SUB], wt[KQ6_SUB], v;
		kv_transpose(x + KQ6_SUB * g, KQ6_SUB, rows);
		kv_weight_rows(w + KQ6_SUB * g, KQ6_SUB, weighted, kv_lanes(has_w, g), wt);
		memcpy(&v, c + g, sizeof(v));
		v = kv_q6k_refine(rows, wt, d, v);
		memcpy(c + g, &v, sizeof(v));
	}
	int8_t *sc = (int8_t *)(out + 192);
	uint8_t L[256];
	for (int j = 0; j < 16; j++) {
		sc[j] = (int8_t)c[j];
		const float dj = d * sc[j];
		for (int h = 0; h < 16; h += KV_W) {
			vf q = splat(0.0f);
			if (dj != 0.0f)
				q = kv_round(kv_clamp(ldf(x + 16 * j + h) / dj, -32.0f, 31.0f));
			vb b = kv_narrow_b(__builtin_convertvector(q + 32.0f, vi));
			memcpy(L + 16 * j + h, &b, sizeof(b));
		}
	}
	kv_q6k_pack(L, out, out + 128);
	const uint16_t dst = d == 0.0f ? 0 : dh;
	out[208] = (uint8_t)dst;
	out[209] = (uint8_t)(dst >> 8);
}

static void encode_q6k_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	float buf[256], w[256] = {0};
	int has_w[16] = {0};
	const int weighted = kq_block_weights(p, 0) != NULL;
	vf rows[KQ6_SUB], wrows[KQ6_SUB];
	size_t at = 0;
	for (; at + 256 <= n; at += 256, out += KQ6_BYTES) {
		float fs[16];
		kv_sanitize(x + at, 256, buf);
		if (weighted)
			kv_block_weights(p, at, 1, KQ6_SUB, w, has_w);
		for (int g = 0; g < 16; g += KV_W) {
			kv_transpose(buf + KQ6_SUB * g, KQ6_SUB, rows);
			if (weighted)
				kv_transpose(w + KQ6_SUB * g, KQ6_SUB, wrows);
			vf s = kv_q6k_fit(rows, weighted ? wrows : NULL, kv_lanes(has_w, g));
			memcpy(fs + g, &s, sizeof(s));
		}
		kv_q6k_finish(buf, fs, w, has_w, weighted, out);
	}
	if (at < n)
		aprfs_codec_q6k.encode(x + at, n - at, p, out);
}

/* q6k.c's q6k_decode_block (GGML's dequantize_row_q6_K): (d*sc) rounded to float, then
 * times q - 32. The 6-bit codes are assembled bytewise first, 32 at a time. */
static void kv_q6k_decode_block(const uint8_t *in, float *y)
{
	const float d = aprfs_f16_to_f32((uint16_t)(in[208] | in[209] << 8));
	const int8_t *sc = (const int8_t *)(in + 192);
	int8_t q[256];
	for (int h = 0; h < 2; h++) {
		vb32 a, b, hh;
		memcpy(&a, in + 64 * h, sizeof(a));
		memcpy(&b, in + 64 * h + 32, sizeof(b));
		memcpy(&hh, in + 128 + 32 * h, sizeof(hh));
		const vb32 r[4] = {
		    ((a & 15) | (hh & 3) << 4) - 32, ((b & 15) | ((hh >> 2) & 3) << 4) - 32,
		    ((a >> 4) | ((hh >> 4) & 3) << 4) - 32, ((b >> 4) | (hh >> 6) << 4) - 32};
		memcpy(q + 128 * h, r, sizeof(r));
	}
	for (int j = 0; j < 16; j++) {
		const vf f = splat(d * sc[j]);
		for (int g = 0; g < 16; g += KV_W)
			stf(y + 16 * j + g, f * kv_s8_to_f(q + 16 * j + g));
	}
}

static void decode_q6k_v(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	size_t at = 0;
	for (; at + 256 <= n; at += 256, in += KQ6_BYTES)
		kv_q6k_decode_block(in, y + at);
	if (at < n)
		aprfs_codec_q6k.decode(in, n - at, p, y + at);
}
