/* vec_kquant.h - the Q4_K and Q6_K encoders of vec_tmpl.h (included from it, never on its
 * own): the scale searches of lib/quant/q4k.c and q6k.c run with one lane per sub-block,
 * KV_W sub-blocks per pass, each lane replaying the scalar search. */

/* kq_clamp: v < lo ? lo : v > hi ? hi : v (NaN stays NaN). An ISA file may supply it as
 * max-then-min when its instructions have exactly these semantics, operand order included
 * (x86 maxps(lo, v) returns v for NaN and for equal zeros). */
#ifndef KV_HAVE_CLAMP
KV_INLINE vf kv_clamp(vf v, float lo, float hi)
{
	vf r = sel(v > hi, splat(hi), v);
	return sel(v < lo, splat(lo), r);
}
#endif

KV_INLINE vf kv_round(vf v)
{
	return (v + 0x1.8p23f) - 0x1.8p23f;
} /* kq_round */

typedef KV_VEC(uint8_t, 16) vb16;
typedef KV_VEC(uint8_t, 32) vb32;

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
	for (size_t i = 0; i < n; i += KV_W) {
		vf v = ldf(x + i);
		v = sel(isnan_v(v), splat(0.0f), v);
		stf(out + i, kv_clamp(v, -FLT_MAX, FLT_MAX));
	}
}

/* rows[r][j] = buf[sub * j + r]: element r of sub-block j (j < KV_W). */
static void kv_transpose(const float *buf, int sub, vf *rows)
{
	float t[32][KV_W];
	for (int j = 0; j < KV_W; j++)
		for (int r = 0; r < sub; r++)
			t[r][j] = buf[sub * j + r];
	for (int r = 0; r < sub; r++)
		rows[r] = ldf(t[r]);
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

/* q4k_search on KV_W normalised sub-blocks (v: 32 rows). */
static void kv_q4k_search(const vf *v, vf *scale, vf *min)
{
	vf lo = v[0], hi = v[0];
	for (int i = 1; i < KQ4_SUB; i++) {
		lo = sel(v[i] < lo, v[i], lo);
		hi = sel(v[i] > hi, v[i], hi);
	}
	lo = sel(lo > 0.0f, splat(0.0f), lo);
	const vf flat_min = -lo;
	const vi flat = hi == lo;

	vf w[KQ4_SUB], dv[KQ4_SUB], a[KQ4_SUB], b[KQ4_SUB];
	for (int i = 0; i < KQ4_SUB; i++)
		a[i] = v[i] * v[i];
	const vf ms = kv_sum32(a) / (float)KQ4_SUB;
	vf av = {0};
	for (int j = 0; j < KV_W; j++)
		av[j] = sqrtf(ms[j]);
	for (int i = 0; i < KQ4_SUB; i++) {
		w[i] = av + vabs(v[i]);
		dv[i] = v[i] - lo;
		b[i] = w[i] * v[i];
	}
	const vf sw = kv_sum32(w), sx = kv_sum32(b);

	kv_q4k_state st = {splat(-FLT_MAX), (hi - lo) / 15.0f, flat_min, lo};
	for (int k = 0; k < KQ4_STEPS; k++) {
		const vf iscale = ((float)(140 + k) / 10.0f) / (hi - st.lo);
		vf wl[KQ4_SUB], wll[KQ4_SUB], wlx[KQ4_SUB];
		for (int i = 0; i < KQ4_SUB; i++) {
			vf l = kv_clamp(kv_round(iscale * dv[i]), 0.0f, 15.0f);
			wl[i] = w[i] * l;
			wll[i] = wl[i] * l;
			wlx[i] = wl[i] * v[i];
		}
		kv_q4k_step(&st, kv_sum32(wl), kv_sum32(wll), kv_sum32(wlx), sw, sx);
		for (int i = 0; i < KQ4_SUB; i++)
			dv[i] = v[i] - st.lo;
	}
	*scale = sel(flat, splat(0.0f), st.scale);
	*min = sel(flat, flat_min, st.min);
}

/* q4k_fit_sub on KV_W sub-blocks of sanitised values (32 rows). */
static void kv_q4k_fit(const vf *x, vf *scale, vf *min)
{
	const vf amax = kv_absmax_rows(x, KQ4_SUB);
	const vi tiny = amax < KQ_TINY;
	const vi e = kv_norm_exponent(amax);
	const vf f = kv_pow2(-e);
	vf v[KQ4_SUB], s, m;
	for (int i = 0; i < KQ4_SUB; i++)
		v[i] = x[i] * f;
	kv_q4k_search(v, &s, &m);
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
	for (int h = 0; h < 32 / KV_W; h++) {
		vi q = {0};
		if (dj != 0.0f)
			q = __builtin_convertvector(
			    kv_round(kv_clamp((ldf(x + KV_W * h) + mj) / dj, 0.0f, 15.0f)), vi);
		vb b = kv_narrow_b(q);
		memcpy(L + KV_W * h, &b, sizeof(b));
	}
}

/* q4k_encode_block's second half: from the eight fits to the bytes. */
static void kv_q4k_finish(const float *x, const float *fs, const float *fm, uint8_t *out)
{
	float max_scale = 0.0f, max_min = 0.0f;
	for (int j = 0; j < 8; j++) {
		max_scale = fs[j] > max_scale ? fs[j] : max_scale;
		max_min = fm[j] > max_min ? fm[j] : max_min;
	}
	const uint16_t dh = aprfs_f32_to_f16(max_scale / 63.0f);
	const uint16_t mh = aprfs_f32_to_f16(max_min / 63.0f);
	const float d = aprfs_f16_to_f32(dh), dmin = aprfs_f16_to_f32(mh);
	uint8_t ls[8], lm[8], L[256];
	for (int j = 0; j < 8; j++) {
		ls[j] = kv_code6(fs[j], d);
		lm[j] = kv_code6(fm[j], dmin);
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

static void encode_q4k_v(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	float buf[256 * KQ4_BATCH], fs[8 * KQ4_BATCH], fm[8 * KQ4_BATCH];
	vf rows[KQ4_SUB], s, m;
	size_t at = 0;
	while (at + 256 <= n) {
		int nb = 0;
		for (; nb < KQ4_BATCH && at + 256 * (nb + 1) <= n; nb++)
			kv_sanitize(x + at + 256 * nb, 256, buf + 256 * nb);
		for (int b = nb; b < KQ4_BATCH; b++)
			memmove(buf + 256 * b, buf, 256 * sizeof(float));
		for (int g = 0; g < 8 * KQ4_BATCH; g += KV_W) {
			kv_transpose(buf + KQ4_SUB * g, KQ4_SUB, rows);
			kv_q4k_fit(rows, &s, &m);
			memcpy(fs + g, &s, sizeof(s));
			memcpy(fm + g, &m, sizeof(m));
		}
		for (int b = 0; b < nb; b++, out += KQ4_BYTES)
			kv_q4k_finish(buf + 256 * b, fs + 8 * b, fm + 8 * b, out);
		at += 256 * (size_t)nb;
	}
	if (at < n)
		aprfs_codec_q4k.encode(x + at, n - at, p, out);
}

/* ---- Q6_K -------------------------------------------------------------------------------- */

enum { KQ6_SUB = 16, KQ6_STEPS = 9, KQ6_BYTES = 210 };
#define KQ6_CAP (128.0f * 65504.0f)

/* q6k_search on KV_W normalised sub-blocks (v: 16 rows). */
static vf kv_q6k_search(const vf *v)
{
	vf amax = splat(0.0f), vmax = splat(0.0f), w[KQ6_SUB];
	for (int i = 0; i < KQ6_SUB; i++) {
		const vi gt = vabs(v[i]) > amax;
		amax = sel(gt, vabs(v[i]), amax);
		vmax = sel(gt, v[i], vmax);
	}
	for (int i = 0; i < KQ6_SUB; i++)
		w[i] = v[i] * v[i];
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

static vf kv_q6k_fit(const vf *x)
{
	const vf amax = kv_absmax_rows(x, KQ6_SUB);
	const vi tiny = amax < KQ_TINY;
	const vi e = kv_norm_exponent(amax);
	const vf f = kv_pow2(-e);
	vf v[KQ6_SUB];
	for (int i = 0; i < KQ6_SUB; i++)
		v[i] = x[i] * f;
	return sel(tiny, splat(0.0f), kv_unscale(kv_q6k_search(v), e, KQ6_CAP));
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

/* q6k_encode_block's second half: from the sixteen signed scales to the bytes. */
static void kv_q6k_finish(const float *x, const float *scale, uint8_t *out)
{
	float max_scale = 0.0f;
	for (int j = 0; j < 16; j++)
		if (fabsf(scale[j]) > fabsf(max_scale))
			max_scale = scale[j];
	const uint16_t dh = aprfs_f32_to_f16(max_scale / -128.0f);
	const float d = aprfs_f16_to_f32(dh);
	int8_t *sc = (int8_t *)(out + 192);
	uint8_t L[256];
	for (int j = 0; j < 16; j++) {
		float c = d == 0.0f ? 0.0f : kq_round(kq_clamp(scale[j] / d, -128.0f, 127.0f));
		sc[j] = (int8_t)c;
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
	float buf[256];
	vf rows[KQ6_SUB];
	size_t at = 0;
	for (; at + 256 <= n; at += 256, out += KQ6_BYTES) {
		float fs[16];
		kv_sanitize(x + at, 256, buf);
		for (int g = 0; g < 16; g += KV_W) {
			kv_transpose(buf + KQ6_SUB * g, KQ6_SUB, rows);
			vf s = kv_q6k_fit(rows);
			memcpy(fs + g, &s, sizeof(s));
		}
		kv_q6k_finish(buf, fs, out);
	}
	if (at < n)
		aprfs_codec_q6k.encode(x + at, n - at, p, out);
}
