/* bench_kernels.c - `make bench`'s kernel figures: one thread, a fixed 64 MiB Gaussian f32
 * tensor, MB/s of f32 input per kernel per ISA this CPU runs (for decoders and the GGML
 * dequantizers: of f32 output, the same tensor), single-thread memcpy of the same buffer
 * beside them, which ISA the default (per-kernel) table picked for each kernel and which
 * one measured fastest here, each encoder's relative RMSE and whether every ISA's bytes
 * match. The figures justify kernels/prefs.c's preference table. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../gen/ggml_encode.h"
#include "base/half.h"
#include "kernels/kernels.h"
#include "quant/codec.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rng = 1;

static double unit(void)
{
	uint64_t z = (rng += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return ((double)((z ^ (z >> 31)) >> 11) + 1.0) * 0x1p-53;
}

/* Best of `reps` runs, in MB/s of `bytes`; at least one run, more while under 0.3 s. */
#define TIMED(bytes, stmt)                                                                     \
	({                                                                                     \
		double best_ = 1e30;                                                           \
		for (int r_ = 0; r_ < 5; r_++) {                                               \
			double t0_ = now();                                                    \
			stmt;                                                                  \
			double dt_ = now() - t0_;                                              \
			best_ = dt_ < best_ ? dt_ : best_;                                     \
			if (r_ >= 1 && dt_ * (r_ + 1) > 0.6)                                   \
				break;                                                         \
			if (dt_ > 1.0)                                                         \
				break;                                                         \
		}                                                                              \
		(double)(bytes) / best_ / 1e6;                                                 \
	})

/* The "picked" and "fastest" columns: the ISA the default table takes kernel kn from, and
 * the ISA measured fastest here (kn < 0: a composite row). */
static void print_choice(int kn, const aprfs_kernels *const *tabs, const double *mbs, int nt)
{
	if (kn < 0) {
		printf(" %8s %8s", "-", "-");
		return;
	}
	int f = 0;
	for (int t = 1; t < nt; t++)
		f = mbs[t] > mbs[f] ? t : f;
	printf(" %8s %8s", aprfs_kernels_get()->kisa[kn], tabs[f]->isa);
}

int main(int argc, char **argv)
{
	size_t mib = argc > 1 ? (size_t)atoi(argv[1]) : 64;
	size_t n = mib << 18; /* floats */
	printf("default ISA: %s\n", aprfs_kernels_isa());
	if (n == 0)
		return 0;
	float *x = malloc(n * 4), *y = malloc(n * 4);
	uint8_t *ref = malloc(n * 4 + 64), *out = malloc(n * 4 + 64);
	uint16_t *h = malloc(n * 2);
	if (!x || !y || !ref || !out || !h)
		return 1;
	for (size_t i = 0; i < n; i += 2) {
		double r = sqrt(-2.0 * log(unit())), t = 2.0 * M_PI * unit();
		x[i] = (float)(r * cos(t));
		x[i + 1] = (float)(r * sin(t));
	}
	memset(y, 0, n * 4);
	memset(out, 0, n * 4);
	double mc = TIMED(n * 4, memcpy(y, x, n * 4));
	printf("bench_kernels: %zu MiB f32 Gaussian input, one thread, MB/s of f32 input\n",
	       mib);
	printf("memcpy (same buffer, one thread): %.0f MB/s; 50%% of it: %.0f MB/s\n", mc,
	       mc / 2);

	const aprfs_kernels *tabs[APRFS_ISA_COUNT];
	int nt = 0;
	for (int i = 0; i < APRFS_ISA_COUNT; i++) {
		tabs[nt] = aprfs_kernels_for_isa(aprfs_kernels_isa_names[i]);
		if (tabs[nt])
			nt++;
		else
			printf("ISA %s: not available on this CPU, not run\n",
			       aprfs_kernels_isa_names[i]);
	}
	printf("%-16s", "kernel");
	for (int t = 0; t < nt; t++)
		printf(" %10s", tabs[t]->isa);
	printf(" %8s %8s %9s %10s %s\n", "picked", "fastest", "best/sc", "rel.RMSE", "bytes");

	const aprfs_kernels *sc = tabs[0];
	aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(sc->maxabs(x, n)),
			   .nf4_block = 64};
	for (int s = APRFS_K_F16; s < APRFS_K_COUNT; s++) {
		aprfs_qparams q = p;
		if (s == APRFS_K_TERNARY) {
			uint64_t nf = 0;
			double sum = sc->sumabs(x, n, &nf);
			q.scale = aprfs_ternary_alpha_from_sum(sum, nf);
		}
		const aprfs_codec *c = aprfs_codecs[s];
		size_t bytes = (size_t)aprfs_codec_payload_size(c, n, &q);
		double mbs[APRFS_ISA_COUNT] = {0}, best = 0;
		int same = 1;
		printf("encode %-9s", aprfs_codecs[s]->name);
		for (int t = 0; t < nt; t++) {
			uint8_t *o = t ? out : ref;
			mbs[t] = TIMED(n * 4, tabs[t]->encode[s](x, n, &q, o));
			if (t)
				same &= memcmp(out, ref, bytes) == 0;
			best = mbs[t] > best ? mbs[t] : best;
			printf(" %10.0f", mbs[t]);
			fflush(stdout);
		}
		sc->decode[s](ref, n, &q, y);
		double se = 0, sx = 0;
		for (size_t i = 0; i < n; i++) {
			se += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
			sx += (double)x[i] * x[i];
		}
		print_choice(APRFS_KN_ENCODE + s, tabs, mbs, nt);
		printf(" %8.1fx %10.3g %s\n", best / mbs[0], sqrt(se / sx),
		       same ? "identical" : "DIFFER");
	}
	for (int s = APRFS_K_F16; s < APRFS_K_COUNT; s++) {
		aprfs_qparams q = p;
		sc->encode[s](x, n, &q, ref);
		printf("decode %-9s", aprfs_codecs[s]->name);
		double b0 = 0, best = 0, mbs[APRFS_ISA_COUNT] = {0};
		for (int t = 0; t < nt; t++) {
			double m = TIMED(n * 4, tabs[t]->decode[s](ref, n, &q, y));
			b0 = t ? b0 : m;
			best = m > best ? m : best;
			mbs[t] = m;
			printf(" %10.0f", m);
		}
		print_choice(APRFS_KN_DECODE + s, tabs, mbs, nt);
		printf(" %8.1fx\n", best / b0);
	}
	/* GGUF's block types, from the Gaussian tensor encoded as each (Q4_K/Q6_K by the
	 * fastest table's encoder, the same bytes as the scalar one). */
	for (int s = 0; s < APRFS_DQ_COUNT; s++) {
		const aprfs_dq_type *t = &aprfs_dq_types[s];
		size_t nb = n / t->elems, ne = nb * t->elems;
		if (s == APRFS_DQ_Q4_K || s == APRFS_DQ_Q6_K)
			tabs[nt - 1]->encode[s == APRFS_DQ_Q4_K ? APRFS_K_Q4K : APRFS_K_Q6K](
			    x, ne, NULL, ref);
		else
			ggml_encode(t->dtype, x, nb, ref);
		printf("%-16s", aprfs_kernel_name(APRFS_KN_DEQUANT + s));
		double b0 = 0, best = 0, mbs[APRFS_ISA_COUNT] = {0};
		int same = 1;
		for (int k = 0; k < nt; k++) {
			memset(y, 0, ne * 4);
			double m = TIMED(ne * 4, tabs[k]->dequant[s](ref, nb, y));
			if (k == 0)
				memcpy(out, y, ne * 4);
			else
				same &= memcmp(out, y, ne * 4) == 0;
			b0 = k ? b0 : m;
			best = m > best ? m : best;
			mbs[k] = m;
			printf(" %10.0f", m);
			fflush(stdout);
		}
		print_choice(APRFS_KN_DEQUANT + s, tabs, mbs, nt);
		printf(" %8.1fx %10s %s\n", best / b0, "", same ? "identical" : "DIFFER");
	}
	for (size_t i = 0; i < n; i++)
		h[i] = aprfs_f32_to_bf16(x[i]);
	const char *misc[] = {"widen bf16", "widen f16",      "maxabs",
			      "sumabs",	    "bf16->q4 fused", "bf16->q4k fused"};
	static const int misc_kn[] = {
	    APRFS_KN_WIDEN_BF16, APRFS_KN_WIDEN_F16, APRFS_KN_MAXABS, APRFS_KN_SUMABS, -1, -1};
	for (int m = 0; m < 6; m++) {
		printf("%-16s", misc[m]);
		double b0 = 0, best = 0, mbs[APRFS_ISA_COUNT] = {0};
		for (int t = 0; t < nt; t++) {
			const aprfs_kernels *k = tabs[t];
			volatile double sink = 0;
			uint64_t nf = 0;
			double v =
			    m == 0   ? TIMED(n * 4, k->widen_bf16(h, n, y))
			    : m == 1 ? TIMED(n * 4, k->widen_f16(h, n, y))
			    : m == 2 ? TIMED(n * 4, sink += k->maxabs(x, n))
			    : m == 3 ? TIMED(n * 4, sink += k->sumabs(x, n, &nf))
			    : m == 4
				? TIMED(n * 4, aprfs_encode_src(k, APRFS_K_Q4, APRFS_SRC_BF16,
								h, n, &p, out))
				: TIMED(n * 4, aprfs_encode_src(k, APRFS_K_Q4K, APRFS_SRC_BF16,
								h, n, &p, out));
			(void)sink;
			b0 = t ? b0 : v;
			best = v > best ? v : best;
			mbs[t] = v;
			printf(" %10.0f", v);
		}
		print_choice(misc_kn[m], tabs, mbs, nt);
		printf(" %8.1fx\n", best / b0);
	}
	printf("(decode and dequant rows: MB/s of f32 output; fused rows: MB/s of the f32 the\n"
	       " bf16 source widens to, with that column's widen bf16 and encoder)\n");
	free(x);
	free(y);
	free(ref);
	free(out);
	free(h);
	return 0;
}
