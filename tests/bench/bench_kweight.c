/* bench_kweight.c - `make bench`'s importance-matrix figures: on a 16-layer llama-shaped
 * set of matrices with 2% outlier columns and an imatrix-like weight per column, the
 * squared error totals of aprfs' Q4_K and Q6_K beside GGML's quantizers (plain: the _ref
 * ones; weighted: quantize_row_q*_K_impl with the same weights), and one-core speed of the
 * weighted Q4_K encoders. Prints figures; asserts nothing. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../gen/ggml_kref.h"
#include "../gen/synth.h"
#include "kernels/kernels.h"
#include "quant/codec.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* One matrix: rows x cols Gaussian (std 0.02), every 50th column 8x larger; the column
 * weights span two decades, the outlier columns' 30x larger. */
typedef struct mat {
	size_t rows, cols;
	float *x, *qw;
} mat;

static mat make(const char *name, size_t rows, size_t cols)
{
	mat m = {rows, cols, malloc(rows * cols * sizeof(float)), malloc(cols * sizeof(float))};
	rng r;
	rng_seed(&r, 19, name);
	for (size_t c = 0; c < cols; c++) {
		float u = (float)(rng_next(&r) >> 40) / 16777216.0f;
		m.qw[c] = powf(10.0f, 2.0f * u - 1.0f) * (c % 50 == 7 ? 30.0f : 1.0f);
	}
	for (size_t i = 0; i < rows * cols; i++)
		m.x[i] = gauss(&r, 0.02f) * (i % cols % 50 == 7 ? 8.0f : 1.0f);
	return m;
}

typedef void (*ref_block)(const float *x, const float *qw, uint8_t *out);

static void ggml_encode_rows(ref_block ref, const mat *m, int weighted, size_t bb, uint8_t *out)
{
	for (size_t b = 0; b < m->rows * m->cols / 256; b++)
		ref(m->x + 256 * b, weighted ? m->qw + (256 * b) % m->cols : NULL,
		    out + b * bb);
}

static double sq_err(const mat *m, const float *y, int weighted)
{
	double e = 0;
	for (size_t i = 0; i < m->rows * m->cols; i++) {
		double d = (double)y[i] - m->x[i];
		e += (weighted ? m->qw[i % m->cols] : 1.0) * d * d;
	}
	return e;
}

/* Error totals over the matrices: [aprfs, ggml, aprfs unweighted by the weighted metric]. */
static void totals(const aprfs_codec *c, ref_block ref, const mat *ms, int n, int weighted,
		   double *out)
{
	out[0] = out[1] = out[2] = 0;
	int worse = 0;
	for (int k = 0; k < n; k++) {
		const mat *m = &ms[k];
		const size_t ne = m->rows * m->cols, bb = c->block_bytes;
		uint8_t *q = malloc(ne / 256 * bb);
		float *y = malloc(ne * sizeof(float));
		aprfs_qparams p = {
		    .scale = 1.0f, .qw = weighted ? m->qw : NULL, .qw_cols = m->cols};
		aprfs_kernels_get()->encode[aprfs_kslot_of(c)](m->x, ne, &p, q);
		c->decode(q, ne, &p, y);
		double a = sq_err(m, y, weighted);
		ggml_encode_rows(ref, m, weighted, bb, q);
		c->decode(q, ne, &p, y);
		double g = sq_err(m, y, weighted);
		if (weighted) { /* the same metric on aprfs' unweighted run */
			aprfs_qparams u = {.scale = 1.0f};
			aprfs_kernels_get()->encode[aprfs_kslot_of(c)](m->x, ne, &u, q);
			c->decode(q, ne, &u, y);
			out[2] += sq_err(m, y, 1);
		}
		worse += a > g;
		out[0] += a;
		out[1] += g;
		free(q);
		free(y);
	}
	printf("%s %-8s squared error total: aprfs %.6e  llama.cpp/GGML %.6e  ratio %.4f  "
	       "(tensors worse: %d of %d)\n",
	       c->name, weighted ? "weighted" : "plain", out[0], out[1], out[0] / out[1], worse,
	       n);
	if (weighted)
		printf("%s weighted error of the weighted run / of the unweighted run: %.3f\n",
		       c->name, out[0] / out[2]);
}

/* Best of three, seconds. */
static double timed_aprfs(const mat *m)
{
	const size_t ne = m->rows * m->cols;
	uint8_t *q = malloc(ne / 256 * 144);
	aprfs_qparams p = {.scale = 1.0f, .qw = m->qw, .qw_cols = m->cols};
	double best = 1e30;
	for (int r = 0; r < 3; r++) {
		double t = now();
		aprfs_kernels_get()->encode[APRFS_K_Q4K](m->x, ne, &p, q);
		t = now() - t;
		best = t < best ? t : best;
	}
	free(q);
	return best;
}

static double timed_ggml(const mat *m)
{
	uint8_t *q = malloc(m->rows * m->cols / 256 * 144);
	double best = 1e30;
	for (int r = 0; r < 3; r++) {
		double t = now();
		ggml_encode_rows(ggml_ref_q4k_block, m, 1, 144, q);
		t = now() - t;
		best = t < best ? t : best;
	}
	free(q);
	return best;
}

int main(void)
{
	/* a 16-layer model's matrices at 1/8 scale: per layer q, k, v, o, gate, up, down */
	enum { LAYERS = 16, H = 512, KV = 128, I = 1536 };
	mat ms[LAYERS * 7 + 1];
	int n = 0;
	for (int l = 0; l < LAYERS; l++) {
		char name[64];
		static const char *const t[] = {"q", "k", "v", "o", "gate", "up", "down"};
		static const size_t shape[][2] = {{H, H}, {KV, H}, {KV, H}, {H, H},
						  {I, H}, {I, H},  {H, I}};
		for (int j = 0; j < 7; j++) {
			snprintf(name, sizeof(name), "blk.%d.%s", l, t[j]);
			ms[n++] = make(name, shape[j][0], shape[j][1]);
		}
	}
	double t[3];
	printf("%d matrices of a 16-layer llama shape, 2%% outlier columns, imatrix weights\n",
	       n);
	totals(&aprfs_codec_q4k, ggml_ref_q4k_block, ms, n, 0, t);
	totals(&aprfs_codec_q6k, ggml_ref_q6k_block, ms, n, 0, t);
	totals(&aprfs_codec_q4k, ggml_ref_q4k_block, ms, n, 1, t);
	totals(&aprfs_codec_q6k, ggml_ref_q6k_block, ms, n, 1, t);
	const mat big = make("speed", 1024, 4096);
	const double ta = timed_aprfs(&big), tg = timed_ggml(&big);
	const double mb = 1024.0 * 4096 * 4 / 1e6;
	printf("weighted q4k encode, one core: aprfs %.1f MB/s, GGML quantize_row_q4_K_impl "
	       "model %.1f MB/s: %.2fx\n",
	       mb / ta, mb / tg, tg / ta);
	for (int k = 0; k < n; k++) {
		free(ms[k].x);
		free(ms[k].qw);
	}
	free(big.x);
	free(big.qw);
	return 0;
}
