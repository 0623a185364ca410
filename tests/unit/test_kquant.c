/* test_kquant.c - the Q4_K and Q6_K codecs: sizes, GGML byte layout on hand-built blocks,
 * round-trip error on Gaussian data (against a naive quantizer too), hostile inputs,
 * determinism, bounds (a guard page after the input), and encode throughput. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/half.h"
#include "check.h"
#include "format/dtype.h"
#include "quant/codec.h"

enum { QK = 256, Q4K_BYTES = 144, Q6K_BYTES = 210, BIG = 1 << 20 };

/* xorshift64 + Box-Muller: the same Gaussian stream on every run and platform libm
 * aside (only the data, not any expected value, depends on it). */
static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static double rng_unit(uint64_t *s)
{
	return ((rng_next(s) >> 11) + 0.5) / 9007199254740992.0;
}

static void gaussian(float *x, size_t n, uint64_t seed)
{
	uint64_t s = seed;
	for (size_t i = 0; i + 1 < n; i += 2) {
		double r = sqrt(-2.0 * log(rng_unit(&s))), t = 6.283185307179586 * rng_unit(&s);
		x[i] = (float)(r * cos(t));
		x[i + 1] = (float)(r * sin(t));
	}
}

static double rel_rmse(const float *x, const float *y, size_t n)
{
	double e = 0.0, s = 0.0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)y[i] - x[i];
		e += d * d;
		s += (double)x[i] * x[i];
	}
	return sqrt(e / s);
}

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec * 1e-9;
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static float get_f16(const uint8_t *p)
{
	return aprfs_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static int all_finite(const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(y[i]))
			return 0;
	return 1;
}

/* --- Q4_K layout, stated per element so it cross-checks the codec's loops ----------- */

/* GGML packing of eight 6-bit scales and mins into 12 bytes. */
static void q4k_set_scales(uint8_t *blk, const uint8_t *sc, const uint8_t *mn)
{
	uint8_t *s = blk + 4;
	memset(s, 0, 12);
	for (int j = 0; j < 8; j++) {
		if (j < 4) {
			s[j] |= sc[j];
			s[j + 4] |= mn[j];
		} else {
			s[j + 4] = (uint8_t)((sc[j] & 15) | (mn[j] & 15) << 4);
			s[j - 4] |= (uint8_t)((sc[j] >> 4) << 6);
			s[j] |= (uint8_t)((mn[j] >> 4) << 6);
		}
	}
}

/* Element i's nibble lives in byte 16 + 32*(i/64) + i%32, high half when (i/32) is odd. */
static void q4k_set_nibble(uint8_t *blk, int i, int q)
{
	uint8_t *b = blk + 16 + 32 * (i / 64) + i % 32;
	int shift = (i / 32) % 2 ? 4 : 0;
	*b = (uint8_t)((*b & ~(15 << shift)) | q << shift);
}

static int q4k_get_nibble(const uint8_t *blk, int i)
{
	return (blk[16 + 32 * (i / 64) + i % 32] >> ((i / 32) % 2 ? 4 : 0)) & 15;
}

/* Element i's 6-bit code: low nibble in ql byte 64*h + l + 32*(k&1) (high half when k >= 2)
 * and 2 bits in qh byte 32*h + l at bit 2k, with h = i/128, k = (i%128)/32, l = i%32. */
static void q6k_set_code(uint8_t *blk, int i, int q)
{
	int h = i / 128, k = (i % 128) / 32, l = i % 32;
	uint8_t *lo = blk + 64 * h + l + 32 * (k & 1), *hi = blk + 128 + 32 * h + l;
	int ls = k >= 2 ? 4 : 0;
	*lo = (uint8_t)((*lo & ~(15 << ls)) | (q & 15) << ls);
	*hi = (uint8_t)((*hi & ~(3 << 2 * k)) | (q >> 4) << 2 * k);
}

static void test_sizes(void)
{
	CHECK(aprfs_codec_q4k.dtype == APR_DT_Q4_K && aprfs_codec_q4k.block_elems == 256 &&
		  aprfs_codec_q4k.block_bytes == 144 && aprfs_codec_q4k.prefix_bytes == 0 &&
		  aprfs_codec_q4k.stat == APRFS_STAT_NONE,
	      "q4k descriptor");
	CHECK(aprfs_codec_q6k.dtype == APR_DT_Q6_K && aprfs_codec_q6k.block_elems == 256 &&
		  aprfs_codec_q6k.block_bytes == 210 && aprfs_codec_q6k.prefix_bytes == 0 &&
		  aprfs_codec_q6k.stat == APRFS_STAT_NONE,
	      "q6k descriptor");
	CHECK(strcmp(aprfs_codec_q4k.name, "q4k") == 0 &&
		  strcmp(aprfs_codec_q6k.name, "q6k") == 0,
	      "names");
	CHECK(aprfs_codec_find("q4k") == &aprfs_codec_q4k, "find q4k");
	CHECK(aprfs_codec_find("q6k") == &aprfs_codec_q6k, "find q6k");
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q4k, 4096, NULL) == 16 * 144,
	      "q4k payload");
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q6k, 4096, NULL) == 16 * 210,
	      "q6k payload");
}

/* d = 1, dmin = 0, every sub-block scale 1: each element decodes to its nibble. */
static void test_q4k_unit_block(void)
{
	uint8_t blk[Q4K_BYTES] = {0}, sc[8], mn[8];
	float y[QK];
	put16(blk, aprfs_f32_to_f16(1.0f));
	put16(blk + 2, aprfs_f32_to_f16(0.0f));
	for (int j = 0; j < 8; j++) {
		sc[j] = 1;
		mn[j] = 0;
	}
	q4k_set_scales(blk, sc, mn);
	for (int i = 0; i < QK; i++)
		q4k_set_nibble(blk, i, (i * 7 + i / 32) % 16);
	aprfs_codec_q4k.decode(blk, QK, NULL, y);
	int bad = 0;
	for (int i = 0; i < QK; i++)
		bad += y[i] != (float)((i * 7 + i / 32) % 16);
	CHECK(bad == 0, "q4k unit block: %d elements differ", bad);
}

/* Distinct 6-bit scales and mins per sub-block, sub-blocks 4..7 needing their high bits
 * (values >= 16): all values are small integers times powers of two, so exact. */
static void test_q4k_scale_packing(void)
{
	uint8_t blk[Q4K_BYTES] = {0};
	const uint8_t sc[8] = {5, 17, 33, 63, 50, 16, 47, 61};
	const uint8_t mn[8] = {9, 2, 40, 0, 37, 63, 20, 33};
	float y[QK];
	put16(blk, aprfs_f32_to_f16(0.5f));
	put16(blk + 2, aprfs_f32_to_f16(0.25f));
	q4k_set_scales(blk, sc, mn);
	for (int i = 0; i < QK; i++)
		q4k_set_nibble(blk, i, (i * 5 + 3) % 16);
	aprfs_codec_q4k.decode(blk, QK, NULL, y);
	int bad = 0;
	for (int i = 0; i < QK; i++) {
		int j = i / 32;
		float want = 0.5f * sc[j] * ((i * 5 + 3) % 16) - 0.25f * mn[j];
		bad += y[i] != want;
	}
	CHECK(bad == 0, "q4k scale packing: %d elements differ", bad);
}

/* Q6_K: d = 1, scales 1 gives q - 32; then signed per-sub-block scales. */
static void test_q6k_blocks(void)
{
	uint8_t blk[Q6K_BYTES] = {0};
	float y[QK];
	int8_t *sc = (int8_t *)(blk + 192);
	put16(blk + 208, aprfs_f32_to_f16(1.0f));
	for (int j = 0; j < 16; j++)
		sc[j] = 1;
	for (int i = 0; i < QK; i++)
		q6k_set_code(blk, i, (i * 13 + i / 64) % 64);
	aprfs_codec_q6k.decode(blk, QK, NULL, y);
	int bad = 0;
	for (int i = 0; i < QK; i++)
		bad += y[i] != (float)((i * 13 + i / 64) % 64 - 32);
	CHECK(bad == 0, "q6k unit block: %d elements differ", bad);

	put16(blk + 208, aprfs_f32_to_f16(0.125f));
	for (int j = 0; j < 16; j++)
		sc[j] = (int8_t)(j * 17 - 128);
	aprfs_codec_q6k.decode(blk, QK, NULL, y);
	bad = 0;
	for (int i = 0; i < QK; i++)
		bad += y[i] != 0.125f * sc[i / 16] * ((i * 13 + i / 64) % 64 - 32);
	CHECK(bad == 0, "q6k signed scales: %d elements differ", bad);
}

/* Random block bytes (finite d): the decoder's loops against the per-element layout
 * above, with GGML's arithmetic order (d*sc first). Must be bit-identical. */
static void test_random_bytes(void)
{
	uint64_t s = 12345;
	uint8_t b4[Q4K_BYTES], b6[Q6K_BYTES];
	float y[QK];
	int bad4 = 0, bad6 = 0;
	for (int rep = 0; rep < 64; rep++) {
		for (int i = 0; i < Q4K_BYTES; i++)
			b4[i] = (uint8_t)rng_next(&s);
		for (int i = 0; i < Q6K_BYTES; i++)
			b6[i] = (uint8_t)rng_next(&s);
		put16(b4, (uint16_t)(rng_next(&s) & 0x3bff)); /* finite, up to ~0.9 */
		put16(b4 + 2, (uint16_t)(rng_next(&s) & 0x3bff));
		put16(b6 + 208, (uint16_t)(rng_next(&s) & 0xbbff));
		aprfs_codec_q4k.decode(b4, QK, NULL, y);
		const float d = get_f16(b4), dmin = get_f16(b4 + 2);
		const uint8_t *p = b4 + 4;
		for (int i = 0; i < QK; i++) {
			int j = i / 32, sc, m;
			if (j < 4) {
				sc = p[j] & 63;
				m = p[j + 4] & 63;
			} else {
				sc = (p[j + 4] & 15) | (p[j - 4] >> 6) << 4;
				m = (p[j + 4] >> 4) | (p[j] >> 6) << 4;
			}
			float d1 = d * sc, m1 = dmin * m;
			bad4 +=
			    memcmp(&y[i], &(float){d1 * q4k_get_nibble(b4, i) - m1}, 4) != 0;
		}
		aprfs_codec_q6k.decode(b6, QK, NULL, y);
		const float d6 = get_f16(b6 + 208);
		for (int i = 0; i < QK; i++) {
			int h = i / 128, k = (i % 128) / 32, l = i % 32;
			int lo = (b6[64 * h + l + 32 * (k & 1)] >> (k >= 2 ? 4 : 0)) & 15;
			int hi = (b6[128 + 32 * h + l] >> 2 * k) & 3;
			float want = d6 * (int8_t)b6[192 + i / 16] * ((lo | hi << 4) - 32);
			bad6 += memcmp(&y[i], &want, 4) != 0;
		}
	}
	CHECK(bad4 == 0, "q4k random bytes: %d elements differ", bad4);
	CHECK(bad6 == 0, "q6k random bytes: %d elements differ", bad6);
}

/* The baseline a real search must beat: per sub-block min/max (min clipped at 0),
 * scale = range/15, 6-bit codes against the block maxima, round to nearest. */
static void naive_q4k_block(const float *x, uint8_t *blk)
{
	float scale[8], min[8], ms = 0.0f, mm = 0.0f;
	uint8_t sc[8], mn[8];
	for (int j = 0; j < 8; j++) {
		float lo = 0.0f, hi = x[32 * j];
		for (int i = 0; i < 32; i++) {
			lo = fminf(lo, x[32 * j + i]);
			hi = fmaxf(hi, x[32 * j + i]);
		}
		scale[j] = (hi - lo) / 15.0f;
		min[j] = -lo;
		ms = fmaxf(ms, scale[j]);
		mm = fmaxf(mm, min[j]);
	}
	memset(blk, 0, Q4K_BYTES);
	put16(blk, aprfs_f32_to_f16(ms / 63.0f));
	put16(blk + 2, aprfs_f32_to_f16(mm / 63.0f));
	for (int j = 0; j < 8; j++) {
		sc[j] = (uint8_t)lroundf(ms > 0 ? scale[j] / ms * 63.0f : 0.0f);
		mn[j] = (uint8_t)lroundf(mm > 0 ? min[j] / mm * 63.0f : 0.0f);
	}
	q4k_set_scales(blk, sc, mn);
	for (int i = 0; i < QK; i++) {
		float d = get_f16(blk) * sc[i / 32], m = get_f16(blk + 2) * mn[i / 32];
		long q = d > 0 ? lroundf((x[i] + m) / d) : 0;
		q4k_set_nibble(blk, i, (int)(q < 0 ? 0 : q > 15 ? 15 : q));
	}
}

static void test_roundtrip(const aprfs_codec *c, double limit, double *rmse_out)
{
	float *x = malloc(BIG * sizeof(float)), *y = malloc(BIG * sizeof(float));
	uint8_t *q = malloc((size_t)BIG / QK * c->block_bytes);
	uint8_t *q2 = malloc((size_t)BIG / QK * c->block_bytes);
	gaussian(x, BIG, 0x9e3779b97f4a7c15ull);
	double t0 = now();
	c->encode(x, BIG, NULL, q);
	double t1 = now();
	c->decode(q, BIG, NULL, y);
	double t2 = now();
	double r = rel_rmse(x, y, BIG);
	printf("%s: relative RMSE %.5f on 1M Gaussian values; encode %.1f MB/s, decode %.1f "
	       "MB/s (f32 bytes, one core)\n",
	       c->name, r, BIG * 4.0 / 1e6 / (t1 - t0), BIG * 4.0 / 1e6 / (t2 - t1));
	CHECK(r < limit, "%s RMSE %.5f >= %.3f", c->name, r, limit);
	CHECK(all_finite(y, BIG), "%s decoded non-finite", c->name);

	c->encode(x, BIG, NULL, q2);
	CHECK(memcmp(q, q2, (size_t)BIG / QK * c->block_bytes) == 0, "%s not deterministic",
	      c->name);
	/* Same values at another address (misaligned by one float): same bytes. */
	memmove(x + 1, x, (BIG - 1) * sizeof(float));
	c->encode(x + 1, BIG - QK, NULL, q2);
	CHECK(memcmp(q, q2, (size_t)(BIG - QK) / QK * c->block_bytes) == 0,
	      "%s depends on alignment", c->name);
	*rmse_out = r;
	free(x);
	free(y);
	free(q);
	free(q2);
}

static void test_beats_naive(double q4k_rmse)
{
	float *x = malloc(BIG * sizeof(float)), *y = malloc(BIG * sizeof(float));
	uint8_t *q = malloc((size_t)BIG / QK * Q4K_BYTES);
	gaussian(x, BIG, 0x9e3779b97f4a7c15ull);
	for (size_t b = 0; b < BIG / QK; b++)
		naive_q4k_block(x + b * QK, q + b * Q4K_BYTES);
	aprfs_codec_q4k.decode(q, BIG, NULL, y);
	double naive = rel_rmse(x, y, BIG);
	printf("q4k: naive min/max quantizer RMSE %.5f, search %.5f\n", naive, q4k_rmse);
	CHECK(q4k_rmse < naive * 0.97, "search %.5f not clearly below naive %.5f", q4k_rmse,
	      naive);
	free(x);
	free(y);
	free(q);
}

/* Encode one 256-value block, decode it, and check the output is finite with finite f16
 * scales; returns the decoded block in y. */
static void edge_block(const aprfs_codec *c, const float *x, float *y, const char *what)
{
	uint8_t blk[Q6K_BYTES];
	c->encode(x, QK, NULL, blk);
	c->decode(blk, QK, NULL, y);
	int finite_scales = c == &aprfs_codec_q4k
				? isfinite(get_f16(blk)) && isfinite(get_f16(blk + 2))
				: isfinite(get_f16(blk + 208));
	CHECK(finite_scales, "%s %s: non-finite f16 scale", c->name, what);
	CHECK(all_finite(y, QK), "%s %s: non-finite output", c->name, what);
}

static float max_abs(const float *y)
{
	float m = 0.0f;
	for (int i = 0; i < QK; i++)
		m = fmaxf(m, fabsf(y[i]));
	return m;
}

static float max_abs_diff(const float *x, const float *y)
{
	float m = 0.0f;
	for (int i = 0; i < QK; i++)
		m = fmaxf(m, fabsf(x[i] - y[i]));
	return m;
}

static void test_edges(const aprfs_codec *c)
{
	float x[QK], y[QK];

	memset(x, 0, sizeof(x));
	edge_block(c, x, y, "zeros");
	CHECK(max_abs_diff(x, y) == 0.0f, "%s zeros decode to non-zero", c->name);

	for (int i = 0; i < QK; i++)
		x[i] = 0.75f;
	edge_block(c, x, y, "constant");
	CHECK(max_abs_diff(x, y) < 0.75f * 0.01f, "%s constant off by %g", c->name,
	      max_abs_diff(x, y));
	for (int i = 0; i < QK; i++)
		x[i] = -3.5f;
	edge_block(c, x, y, "negative constant");
	CHECK(max_abs_diff(x, y) < 3.5f * 0.01f, "%s negative constant off by %g", c->name,
	      max_abs_diff(x, y));

	gaussian(x, QK, 7);
	x[3] = NAN;
	x[100] = -NAN;
	edge_block(c, x, y, "some NaN");
	CHECK(fabsf(y[3]) < 0.5f && fabsf(y[100]) < 0.5f, "%s NaN not read as 0: %g %g",
	      c->name, y[3], y[100]);
	for (int i = 0; i < QK; i++)
		x[i] = NAN;
	edge_block(c, x, y, "all NaN");
	CHECK(max_abs_diff(y, (float[QK]){0}) == 0.0f, "%s all-NaN block not zero", c->name);

	/* +-inf read as +-65504 (doc/apr-format.md): they decode near it, never beyond ~1%. */
	gaussian(x, QK, 8);
	x[10] = INFINITY;
	x[200] = -INFINITY;
	edge_block(c, x, y, "inf");
	CHECK(fabsf(y[10] - 65504.0f) < 655.0f && fabsf(y[200] + 65504.0f) < 655.0f,
	      "%s inf not read as 65504: %g %g", c->name, y[10], y[200]);

	for (int i = 0; i < QK; i++)
		x[i] = (i % 3 ? 1e38f : -1e38f) * (float)(i % 7 + 1) / 7.0f;
	edge_block(c, x, y, "huge");
	CHECK(max_abs(y) < 65504.0f * 1.01f, "%s huge block decodes to %g", c->name,
	      max_abs(y));
	for (int i = 0; i < QK; i++)
		x[i] = (i % 2 ? FLT_MAX : -FLT_MAX);
	edge_block(c, x, y, "FLT_MAX");
	CHECK(y[1] > 60000.0f && y[0] < -60000.0f && max_abs(y) < 65504.0f * 1.01f,
	      "%s FLT_MAX block decodes to %g %g", c->name, y[0], y[1]);

	gaussian(x, QK, 9);
	for (int i = 0; i < QK; i++)
		x[i] *= 1e-39f; /* subnormal */
	edge_block(c, x, y, "denormal");
	CHECK(max_abs_diff(x, y) < 1e-30f, "%s denormal block off by %g", c->name,
	      max_abs_diff(x, y));

	gaussian(x, QK, 10);
	for (int i = 0; i < QK; i++)
		x[i] *= i < 128 ? 1e-6f : 1e4f; /* scales of very different size in one block */
	edge_block(c, x, y, "mixed magnitudes");
}

/* ---- non-finite and out-of-range values never spread (doc/apr-format.md)
 * --------------------- */

/* The contract's rule, written out independently of the codec: NaN reads as 0, +-inf and
 * anything beyond +-65504 as +-65504, before the block's scales are chosen. */
static float contract_sanitize(float v)
{
	if (isnan(v))
		return 0.0f;
	return v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v;
}

enum { SP_KINDS = 8, NB = 5 };
static const char *const sp_names[SP_KINDS] = {"NaN",	 "+inf",    "-inf",    "+-1e30",
					       ">65504", "all NaN", "all inf", "mixed"};

static void sp_inject(float *b, int kind, int sub)
{
	const float above = nextafterf(65504.0f, INFINITY);
	float *s = b + 32 * sub; /* the specials go into one sub-block ... */
	switch (kind) {
	case 0:
		s[1] = NAN;
		s[17] = -NAN;
		break;
	case 1: s[5] = INFINITY; break;
	case 2: s[0] = -INFINITY; break;
	case 3:
		s[2] = 1e30f;
		s[19] = -1e30f;
		break;
	case 4:
		s[0] = above;
		s[1] = -above;
		s[31] = 65520.0f;
		break;
	case 5:
		for (int i = 0; i < QK; i++) /* ... or fill the whole super-block */
			b[i] = i & 1 ? -NAN : NAN;
		break;
	case 6:
		for (int i = 0; i < QK; i++)
			b[i] = i & 1 ? -INFINITY : INFINITY;
		break;
	default:
		s[0] = NAN;
		s[1] = INFINITY;
		s[2] = -1e30f;
		s[3] = -65505.0f;
		s[31] = -FLT_MAX;
		b[255] = -INFINITY;
		break;
	}
}

/* NB super-blocks of Gaussian data, clean and with specials in super-block sb (sub-block
 * sub): the special tensor decodes to finite values bounded by about 65504, equals its
 * sanitised copy byte for byte, and every other super-block's bytes and decoded values
 * are exactly the clean tensor's. */
static void test_specials(const aprfs_codec *c)
{
	enum { N = NB * QK };
	const size_t bb = c->block_bytes;
	float *clean = malloc(N * sizeof(float)), *x = malloc(N * sizeof(float));
	float *san = malloc(N * sizeof(float)), *yc = malloc(N * sizeof(float));
	float *yd = malloc(N * sizeof(float));
	uint8_t *ec = malloc(NB * bb), *ed = malloc(NB * bb), *es = malloc(NB * bb);
	gaussian(clean, N, 4711);
	c->encode(clean, N, NULL, ec);
	c->decode(ec, N, NULL, yc);
	const int sbs[] = {0, 2, NB - 1};
	for (int kind = 0; kind < SP_KINDS; kind++) {
		for (int k = 0; k < 3; k++) {
			const int sb = sbs[k], sub = (kind + k) % 8;
			memcpy(x, clean, N * sizeof(float));
			sp_inject(x + QK * sb, kind, sub);
			c->encode(x, N, NULL, ed);
			c->decode(ed, N, NULL, yd);
			int other = 0, othery = 0;
			for (int b = 0; b < NB; b++)
				other += b != sb && memcmp(ec + b * bb, ed + b * bb, bb) != 0;
			for (int i = 0; i < N; i++)
				othery += i / QK != sb && memcmp(&yc[i], &yd[i], 4) != 0;
			CHECK(other == 0 && othery == 0,
			      "%s %s in block %d changed %d other blocks, %d other values",
			      c->name, sp_names[kind], sb, other, othery);
			CHECK(all_finite(yd, N), "%s %s in block %d: non-finite decode",
			      c->name, sp_names[kind], sb);
			CHECK(max_abs(yd + QK * sb) < 65504.0f * 1.01f,
			      "%s %s in block %d decodes to %g", c->name, sp_names[kind], sb,
			      max_abs(yd + QK * sb));
			for (int i = 0; i < N; i++)
				san[i] = contract_sanitize(x[i]);
			c->encode(san, N, NULL, es);
			CHECK(memcmp(es, ed, NB * bb) == 0,
			      "%s %s in block %d: not encoded as its sanitised copy", c->name,
			      sp_names[kind], sb);
		}
	}
	/* An all-NaN super-block is the zero block; an all-inf one decodes to about +-65504
	 * in the right places. */
	for (int i = 0; i < QK; i++)
		x[i] = NAN;
	c->encode(x, QK, NULL, ed);
	c->decode(ed, QK, NULL, yd);
	CHECK(max_abs(yd) == 0.0f, "%s all-NaN block decodes to %g", c->name, max_abs(yd));
	for (int i = 0; i < QK; i++)
		x[i] = i & 1 ? -INFINITY : INFINITY;
	c->encode(x, QK, NULL, ed);
	c->decode(ed, QK, NULL, yd);
	int bad = 0;
	for (int i = 0; i < QK; i++)
		bad += fabsf(yd[i] - (i & 1 ? -65504.0f : 65504.0f)) > 655.0f;
	CHECK(bad == 0, "%s all-inf block: %d values not near +-65504 (%g %g)", c->name, bad,
	      yd[0], yd[1]);
	free(clean);
	free(x);
	free(san);
	free(yc);
	free(yd);
	free(ec);
	free(ed);
	free(es);
}

/* Input ending exactly at a PROT_NONE page: reading past n would fault. Also a short tail
 * (n not a multiple of 256) must stay in bounds on both sides. */
static void test_bounds(const aprfs_codec *c)
{
	long pg = sysconf(_SC_PAGESIZE);
	uint8_t *map =
	    mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (map == MAP_FAILED) {
		CHECK(0, "mmap failed");
		return;
	}
	float *guard = (float *)(map + pg);
	CHECK(mprotect(guard, pg, PROT_NONE) == 0, "guard page");
	for (size_t n = QK; n <= 2 * QK + 44; n += QK + 44) { /* 256, then 556 */
		float *x = guard - n;
		gaussian(x, n, 11);
		size_t nb = (n + QK - 1) / QK;
		uint8_t out[3 * Q6K_BYTES];
		float y[3 * QK];
		c->encode(x, n, NULL, out);
		for (size_t i = 0; i < 3 * QK; i++)
			y[i] = 12345.0f;
		c->decode(out, n, NULL, y);
		CHECK(y[n] == 12345.0f, "%s decode wrote past n=%zu", c->name, n);
		CHECK(rel_rmse(x, y, n) < 0.1, "%s n=%zu tail round trip %g", c->name, n,
		      rel_rmse(x, y, n));
		CHECK(nb * c->block_bytes <= sizeof(out), "buffer");
	}
	munmap(map, 2 * pg);
}

int main(void)
{
	double r4, r6;
	test_sizes();
	test_q4k_unit_block();
	test_q4k_scale_packing();
	test_q6k_blocks();
	test_random_bytes();
	test_roundtrip(&aprfs_codec_q4k, 0.075, &r4);
	test_roundtrip(&aprfs_codec_q6k, 0.02, &r6);
	test_beats_naive(r4);
	test_edges(&aprfs_codec_q4k);
	test_edges(&aprfs_codec_q6k);
	test_specials(&aprfs_codec_q4k);
	test_specials(&aprfs_codec_q6k);
	test_bounds(&aprfs_codec_q4k);
	test_bounds(&aprfs_codec_q6k);
	return check_done("kquant");
}
