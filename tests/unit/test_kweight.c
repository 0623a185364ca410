/* test_kweight.c - importance-weighted Q4_K and Q6_K against GGML's quantizers on a matrix
 * with outlier columns: weighted squared error no worse than quantize_row_q*_K_impl's with
 * the same weights, plain error no worse than the _ref quantizers', every ISA's bytes the
 * scalar reference's, and hostile weights (zero, NaN, inf, huge) still decode finite. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gen/ggml_kref.h"
#include "../gen/synth.h"
#include "check.h"
#include "kernels/kernels.h"
#include "quant/codec.h"

enum { ROWS = 48, COLS = 2048 };

/* A weight matrix whose columns are Gaussian, 2% of them (every 50th) `boost` times
 * larger, and an imatrix-like weight per column: spread over two decades, the outlier
 * columns' activations 30x stronger. */
static void make_case(uint64_t seed, float boost, float *x, float *qw)
{
	rng r;
	rng_seed(&r, seed, "kweight");
	for (int c = 0; c < COLS; c++) {
		float u = (float)(rng_next(&r) >> 40) / 16777216.0f;
		qw[c] = powf(10.0f, 2.0f * u - 1.0f) * (c % 50 == 7 ? 30.0f : 1.0f);
	}
	for (int i = 0; i < ROWS; i++)
		for (int c = 0; c < COLS; c++)
			x[(size_t)i * COLS + c] =
			    gauss(&r, 0.02f) * (c % 50 == 7 ? boost : 1.0f);
}

/* Sum over the matrix of w(col) * (y - x)^2 (w NULL: plain), in double. */
static double sq_err(const float *x, const float *y, const float *qw)
{
	double e = 0;
	for (size_t i = 0; i < (size_t)ROWS * COLS; i++) {
		double d = (double)y[i] - x[i];
		e += (qw ? qw[i % COLS] : 1.0) * d * d;
	}
	return e;
}

typedef void (*ref_block)(const float *x, const float *qw, uint8_t *out);

/* aprfs' error and GGML's on one case, for one codec, weighted or not. */
static void compare(const aprfs_codec *c, ref_block ref, const float *x, const float *qw,
		    int weighted, const char *what)
{
	const size_t nb = (size_t)ROWS * COLS / 256, bb = c->block_bytes;
	uint8_t *a = malloc(nb * bb), *g = malloc(nb * bb);
	float *y = malloc(sizeof(float) * ROWS * COLS);
	aprfs_qparams p = {.scale = 1.0f};
	if (weighted) {
		p.qw = qw;
		p.qw_cols = COLS;
	}
	c->encode(x, (size_t)ROWS * COLS, &p, a);
	for (size_t b = 0; b < nb; b++)
		ref(x + 256 * b, weighted ? qw + (256 * b) % COLS : NULL, g + b * bb);
	c->decode(a, (size_t)ROWS * COLS, &p, y);
	const double ea = sq_err(x, y, weighted ? qw : NULL);
	c->decode(g, (size_t)ROWS * COLS, &p, y);
	const double eg = sq_err(x, y, weighted ? qw : NULL);
	printf("%s %s %s: aprfs %.6e  ggml %.6e  (%.3f%%)\n", c->name,
	       weighted ? "weighted" : "plain", what, ea, eg, 100.0 * (ea / eg - 1.0));
	CHECK(ea <= eg, "%s %s: %.6e > %.6e", c->name, what, ea, eg);
	free(a);
	free(g);
	free(y);
}

/* Every ISA's weighted encode is the scalar reference's, byte for byte, also when a call
 * starts mid-row (qw_col0) as the tile loop of aprfs_encode_src makes it. */
static void test_isas(const float *x, const float *qw)
{
	const size_t n = 4 * COLS;
	uint8_t *want = malloc(n), *got = malloc(n);
	for (int slot = APRFS_K_Q4K; slot <= APRFS_K_Q6K; slot++) {
		aprfs_qparams p = {.scale = 1.0f, .qw = qw, .qw_cols = COLS, .qw_col0 = 512};
		const aprfs_kernels *s = aprfs_kernels_scalar();
		s->encode[slot](x + 512, n - 512, &p, want);
		for (int i = 0; i < APRFS_ISA_COUNT; i++) {
			const aprfs_kernels *k =
			    aprfs_kernels_for_isa(aprfs_kernels_isa_names[i]);
			if (!k)
				continue;
			memset(got, 0, n);
			k->encode[slot](x + 512, n - 512, &p, got);
			CHECK(memcmp(want, got,
				     (n - 512) / 256 * (slot == APRFS_K_Q4K ? 144 : 210)) == 0,
			      "%s slot %d", aprfs_kernels_isa_names[i], slot);
		}
	}
	free(want);
	free(got);
}

/* Zero, NaN, inf and huge weights: finite output, and an all-zero weight vector gives the
 * unweighted bytes. */
static void test_hostile(const float *x)
{
	float qw[256];
	uint8_t a[210], b[210];
	float y[256];
	const aprfs_codec *cs[2] = {&aprfs_codec_q4k, &aprfs_codec_q6k};
	for (int k = 0; k < 2; k++) {
		aprfs_qparams p = {.scale = 1.0f, .qw = qw, .qw_cols = 256};
		memset(qw, 0, sizeof(qw));
		cs[k]->encode(x, 256, &p, a);
		cs[k]->encode(x, 256, NULL, b);
		CHECK(memcmp(a, b, cs[k]->block_bytes) == 0, "%s zero weights", cs[k]->name);
		for (int i = 0; i < 256; i++)
			qw[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? INFINITY : 1e38f;
		cs[k]->encode(x, 256, &p, a);
		cs[k]->decode(a, 256, &p, y);
		int finite = 1;
		for (int i = 0; i < 256; i++)
			finite &= isfinite(y[i]);
		CHECK(finite, "%s hostile weights", cs[k]->name);
	}
}

int main(void)
{
	float *x = malloc(sizeof(float) * ROWS * COLS), qw[COLS];
	static const struct {
		uint64_t seed;
		float boost;
	} cases[] = {{1, 8.0f}, {2, 20.0f}, {3, 1.0f}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[32];
		snprintf(what, sizeof(what), "seed %llu x%g", (unsigned long long)cases[i].seed,
			 cases[i].boost);
		make_case(cases[i].seed, cases[i].boost, x, qw);
		compare(&aprfs_codec_q4k, ggml_ref_q4k_block, x, qw, 0, what);
		compare(&aprfs_codec_q6k, ggml_ref_q6k_block, x, qw, 0, what);
		compare(&aprfs_codec_q4k, ggml_ref_q4k_block, x, qw, 1, what);
		compare(&aprfs_codec_q6k, ggml_ref_q6k_block, x, qw, 1, what);
	}
	test_isas(x, qw);
	test_hostile(x);
	free(x);
	return check_done("kweight");
}
