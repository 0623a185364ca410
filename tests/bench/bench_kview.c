/* bench_kview.c - `make bench`'s check of a whole weighted view: for every Q4_K and Q6_K
 * tensor of FILE.apr, its importance-weighted squared error against SOURCE beside the
 * error of GGML's quantize_row_q*_K_impl with the same matrix (the one found beside
 * SOURCE, as the view found it), and the totals side by side. Prints figures only.
 * usage: bench_kview FILE.apr SOURCE */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../gen/ggml_kref.h"
#include "format/aprread.h"
#include "quant/codec.h"
#include "source/imatrix.h"
#include "source/source.h"

static const aprfs_tensor *find(aprfs_source *s, const char *name)
{
	for (size_t i = 0; i < aprfs_source_count(s); i++)
		if (strcmp(aprfs_source_tensor(s, i)->name, name) == 0)
			return aprfs_source_tensor(s, i);
	return NULL;
}

static double wse(const float *x, const float *y, const float *qw, uint64_t n, uint64_t cols)
{
	double e = 0;
	for (uint64_t i = 0; i < n; i++) {
		double d = (double)y[i] - x[i];
		e += qw[i % cols] * d * d;
	}
	return e;
}

/* GGML's weighted blocks of x (n elements, rows of cols), decoded into y. */
static void ggml_weighted(const aprfs_codec *c, const float *x, const float *qw, uint64_t n,
			  uint64_t cols, float *y)
{
	uint8_t blk[210];
	for (uint64_t b = 0; b < n / 256; b++) {
		if (c == &aprfs_codec_q4k)
			ggml_ref_q4k_block(x + 256 * b, qw + (256 * b) % cols, blk);
		else
			ggml_ref_q6k_block(x + 256 * b, qw + (256 * b) % cols, blk);
		c->decode(blk, 256, NULL, y + 256 * b);
	}
}

int main(int argc, char **argv)
{
	apr_file f;
	aprfs_source *s;
	aprfs_err err = {0};
	if (argc != 3) {
		fprintf(stderr, "usage: bench_kview FILE.apr SOURCE\n");
		return 2;
	}
	if (apr_open_verify(argv[1], &f, &err) || aprfs_source_open(argv[2], NULL, &s, &err)) {
		fprintf(stderr, "bench_kview: %s\n", err.msg);
		return 1;
	}
	const aprfs_imatrix *m = aprfs_source_imatrix(s);
	double tot[2][2] = {{0}}; /* [q4k, q6k][aprfs, ggml] */
	int worse[2] = {0}, count[2] = {0};
	for (uint32_t i = 0; m && i < f.nentries; i++) {
		const apr_entry *e = &f.entries[i];
		const int k = e->dtype == 12 ? 0 : e->dtype == 14 ? 1 : -1;
		const aprfs_tensor *t = find(s, e->name);
		const float *qw;
		if (k < 0 || !t ||
		    !(qw = aprfs_imatrix_weights(m, t->name, t->dims[t->ndim - 1])))
			continue;
		const aprfs_codec *c = k ? &aprfs_codec_q6k : &aprfs_codec_q4k;
		const uint64_t n = t->nelem, cols = t->dims[t->ndim - 1];
		float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
		if (!x || !y || aprfs_source_read_f32(s, t, 0, n, x, &err)) {
			fprintf(stderr, "bench_kview: %s\n", err.msg);
			return 1;
		}
		c->decode(f.map + f.data_offset + e->offset, n, NULL, y);
		const double a = wse(x, y, qw, n, cols);
		ggml_weighted(c, x, qw, n, cols, y);
		const double g = wse(x, y, qw, n, cols);
		tot[k][0] += a;
		tot[k][1] += g;
		worse[k] += a > g;
		count[k]++;
		free(x);
		free(y);
	}
	for (int k = 0; k < 2; k++)
		printf("view %s weighted squared error, %d tensors: aprfs %.6e  llama.cpp/GGML "
		       "%.6e  ratio %.4f  (tensors worse: %d)\n",
		       k ? "Q6_K" : "Q4_K", count[k], tot[k][0], tot[k][1],
		       count[k] ? tot[k][0] / tot[k][1] : 0.0, worse[k]);
	apr_close(&f);
	aprfs_source_unref(s);
	return 0;
}
