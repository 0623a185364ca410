/* prefs.c - the per-kernel ISA preferences: the measured exceptions to "widest ISA
 * first" (the benchmark table below, from `make bench`), which the default table is
 * assembled by. */
#include <stddef.h>

#include "kernels/kernels_impl.h"

/* The ISA order every kernel not listed below takes: the widest first. */
const int kernels_default_order[KERNELS_ORDER_LEN] = {ISA_AVX512, ISA_AVX2, ISA_NEON};

/* Kernels measured faster with another ISA than kernels_default_order's first one. Every ISA is
 * byte-identical, so only speed decides. Figures: `make bench`'s build/tools/bench_kernels
 * 64 (one thread, 64 MiB of Gaussian f32, MB/s of f32 input), median of 5 runs, on a
 * 2-core KVM guest of an AMD EPYC with AVX-512 F/BW/VL/DQ (512-bit operations there cost
 * about two 256-bit ones, so AVX-512 wins only where it saves other work), gcc 12 -O2:
 *
 *   kernel          scalar    avx2  avx512  taken from
 *   encode f16         680   28741   31362  avx512
 *   encode bf16       4174   25254   17066  avx2
 *   encode q8         1564   22305   23951  avx512
 *   encode q4          532    6181    7788  avx512
 *   encode q4k         165     713    1139  avx512
 *   encode q6k         185     980    1570  avx512
 *   encode nf4         649    5949    6400  avx512
 *   encode ternary     367   17496   13880  avx2
 *   decode f16        3232   28870   30081  avx512
 *   decode bf16       3977   27918   29211  avx512
 *   decode q8        12527   32575   34651  avx512
 *   decode q4         5493   29565   31202  avx512
 *   decode q4k        9768   29681   30757  avx512
 *   decode q6k        5606   29520   30208  avx512
 *   decode nf4        8255   30402   35117  avx512
 *   decode ternary     955    3292    5899  avx512
 *   widen bf16        4199   28994   29967  avx512
 *   widen f16         3351   28719   29017  avx512
 *   maxabs            8088   31013   26578  avx2
 *   sumabs            8253   27339   26131  avx2
 *
 * AVX2 is preferred where its slowest of the 5 runs beat AVX-512's fastest (encode bf16
 * 1.48x, encode ternary 1.26x, maxabs 1.17x, sumabs 1.05x); everything else keeps the
 * widest ISA. (Earlier figures had AVX2 ahead for encode f16 and nf4 as well; here
 * AVX-512 wins both, nf4 since its block absmax became an integer maximum.)
 *
 * The GGML dequantizers, MB/s of f32 output from Gaussian data encoded as each type,
 * median of 5 runs: at 64 MiB (bound by memory writes) and at 1 MiB (cache-resident, as
 * a conversion's 64K-element chunks are):
 *
 *                   ------- 64 MiB -------   -------- 1 MiB --------
 *   kernel          scalar    avx2  avx512   scalar    avx2  avx512  taken from
 *   dequant q8_0     11216   28283   28625    11443   91843   98310  avx512
 *   dequant q4_0      8081   29907   33180     8296   64871  103974  avx512
 *   dequant q4_1     10613   31121   31594    10982   50337   80604  avx512
 *   dequant q5_0      7091   30318   32272     7269   52692   76371  avx512
 *   dequant q5_1      7292   30061   32957     7539   41140   63685  avx512
 *   dequant q2_k      8854   26320   31703     9131   36918   56935  avx512
 *   dequant q3_k      4815   22532   26890     4968   24209   32009  avx512
 *   dequant q4_k      8672   28163   29909     8812   38466   49527  avx512
 *   dequant q5_k      5397   24284   25355     5460   36621   48140  avx512
 *   dequant q6_k      5405   29199   28893     5467   46453   46246  avx512
 *
 * AVX-512 is ahead or level for every one (q6_k is level: AVX2's slowest run is below
 * AVX-512's fastest at both sizes, 25969 < 29416 and 46144 < 47312), so none is listed
 * below. (The scalar column swings by a third between sessions on this shared VM.) */
static const struct {
	int kn;
	int order[3];
} prefs[] = {
    {APRFS_KN_ENCODE + APRFS_K_BF16, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_ENCODE + APRFS_K_TERNARY, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_MAXABS, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
    {APRFS_KN_SUMABS, {ISA_AVX2, ISA_AVX512, ISA_NEON}},
};

/* Kernel kn's ISA at rank r of its order (ISA_* or -1 past the end). */
int kernels_pref_isa(int kn, int r)
{
	const int *order = kernels_default_order;
	for (size_t i = 0; i < sizeof(prefs) / sizeof(prefs[0]); i++)
		if (prefs[i].kn == kn)
			order = prefs[i].order;
	return r >= 0 && r < 3 ? order[r] : -1;
}

const char *aprfs_kernels_preferred(int kn, int r)
{
	if (kn < 0 || kn >= APRFS_KN_COUNT)
		return NULL;
	int isa = kernels_pref_isa(kn, r);
	return isa < 0 ? NULL : aprfs_kernels_isa_names[isa];
}
