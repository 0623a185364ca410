/* table.c - the kernel tables: the scalar reference (the codecs' own encoders and
 * decoders, the GGML block decoders), each ISA's table built once, codec and GGML-type
 * slots, and kernels by number (their names, comparing and copying one kernel). */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "base/half.h"
#include "kernels/kernels_impl.h"
#include "quant/ggml_dequant.h"

const char *const aprfs_kernels_isa_names[APRFS_ISA_COUNT] = {"scalar", "avx2", "avx512",
							      "neon"};

/* The 16-bit inputs may sit at any address (a GGUF or safetensors tensor need not be
 * 2-byte aligned in its file): every load is a memcpy. */
static void widen_f16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_f16_to_f32(h);
	}
}

static void widen_bf16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++) {
		uint16_t h;
		memcpy(&h, in + i, sizeof(h));
		out[i] = aprfs_bf16_to_f32(h);
	}
}

_Static_assert(APRFS_K_COUNT == APRFS_CODEC_COUNT, "one kernel slot per codec");

aprfs_kslot aprfs_kslot_of(const aprfs_codec *c)
{
	for (int i = 0; i < APRFS_K_COUNT; i++)
		if (aprfs_codecs[i] == c)
			return (aprfs_kslot)i;
	return APRFS_K_F32;
}

/* GGML's block geometry (ggml-common.h), kept here rather than asked of dtype.c so that
 * the kernels link without it (scripts/test-arm.sh). */
const aprfs_dq_type aprfs_dq_types[APRFS_DQ_COUNT] = {
    {APRFS_SRC_Q8_0, "Q8_0", 32, 34, 1, {0, 0}},
    {APRFS_SRC_Q4_0, "Q4_0", 32, 18, 1, {0, 0}},
    {APRFS_SRC_Q4_1, "Q4_1", 32, 20, 2, {0, 2}},
    {APRFS_SRC_Q5_0, "Q5_0", 32, 22, 1, {0, 0}},
    {APRFS_SRC_Q5_1, "Q5_1", 32, 24, 2, {0, 2}},
    {APRFS_SRC_Q2_K, "Q2_K", 256, 84, 2, {80, 82}},
    {APRFS_SRC_Q3_K, "Q3_K", 256, 110, 1, {108, 0}},
    {APRFS_SRC_Q4_K, "Q4_K", 256, 144, 2, {0, 2}},
    {APRFS_SRC_Q5_K, "Q5_K", 256, 176, 2, {0, 2}},
    {APRFS_SRC_Q6_K, "Q6_K", 256, 210, 1, {208, 0}},
};
_Static_assert(APRFS_SRC_Q6_K - APRFS_SRC_Q8_0 == APRFS_DQ_Q6_K - APRFS_DQ_Q8_0 &&
		   APRFS_SRC_Q2_K - APRFS_SRC_Q8_0 == APRFS_DQ_Q2_K,
	       "dequant slots follow aprfs_src_dtype's order");

int aprfs_dqslot_of(aprfs_src_dtype d)
{
	return d >= APRFS_SRC_Q8_0 && d <= APRFS_SRC_Q6_K ? (int)(d - APRFS_SRC_Q8_0) : -1;
}

/* The codecs' Q4_K and Q6_K decoders are GGML's dequantize_row_q4_K / _q6_K. */
static void dequant_q4_k_ref(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_codec_q4k.decode(in, nblocks * 256, NULL, y);
}

static void dequant_q6_k_ref(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_codec_q6k.decode(in, nblocks * 256, NULL, y);
}

static const aprfs_dequant_fn dequant_refs[APRFS_DQ_COUNT] = {
    aprfs_ggml_dequant_q8_0, aprfs_ggml_dequant_q4_0, aprfs_ggml_dequant_q4_1,
    aprfs_ggml_dequant_q5_0, aprfs_ggml_dequant_q5_1, aprfs_ggml_dequant_q2_k,
    aprfs_ggml_dequant_q3_k, dequant_q4_k_ref,	      aprfs_ggml_dequant_q5_k,
    dequant_q6_k_ref,
};

void kernels_fill_scalar(aprfs_kernels *t)
{
	memset(t, 0, sizeof(*t));
	t->isa = "scalar";
	t->widen_f16 = widen_f16_ref;
	t->widen_bf16 = widen_bf16_ref;
	t->maxabs = aprfs_stat_maxabs_ref;
	t->sumabs = aprfs_stat_sumabs_ref;
	for (int i = 0; i < APRFS_K_COUNT; i++) {
		t->encode[i] = aprfs_codecs[i]->encode;
		t->decode[i] = aprfs_codecs[i]->decode;
	}
	for (int i = 0; i < APRFS_DQ_COUNT; i++)
		t->dequant[i] = dequant_refs[i];
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++)
		t->kisa[kn] = "scalar";
}

/* ---- kernels by number ---------------------------------------------------------------- */

kernel_ptr kernels_fn(const aprfs_kernels *t, int kn)
{
	switch (kn) {
	case APRFS_KN_WIDEN_F16: return (kernel_ptr)t->widen_f16;
	case APRFS_KN_WIDEN_BF16: return (kernel_ptr)t->widen_bf16;
	case APRFS_KN_MAXABS: return (kernel_ptr)t->maxabs;
	case APRFS_KN_SUMABS: return (kernel_ptr)t->sumabs;
	default:
		return kn < APRFS_KN_DECODE    ? (kernel_ptr)t->encode[kn - APRFS_KN_ENCODE]
		       : kn < APRFS_KN_DEQUANT ? (kernel_ptr)t->decode[kn - APRFS_KN_DECODE]
					       : (kernel_ptr)t->dequant[kn - APRFS_KN_DEQUANT];
	}
}

/* dst takes kernel kn (and its ISA name) from src. */
void kernels_copy(aprfs_kernels *dst, const aprfs_kernels *src, int kn)
{
	switch (kn) {
	case APRFS_KN_WIDEN_F16: dst->widen_f16 = src->widen_f16; break;
	case APRFS_KN_WIDEN_BF16: dst->widen_bf16 = src->widen_bf16; break;
	case APRFS_KN_MAXABS: dst->maxabs = src->maxabs; break;
	case APRFS_KN_SUMABS: dst->sumabs = src->sumabs; break;
	default:
		if (kn < APRFS_KN_DECODE)
			dst->encode[kn - APRFS_KN_ENCODE] = src->encode[kn - APRFS_KN_ENCODE];
		else if (kn < APRFS_KN_DEQUANT)
			dst->decode[kn - APRFS_KN_DECODE] = src->decode[kn - APRFS_KN_DECODE];
		else
			dst->dequant[kn - APRFS_KN_DEQUANT] =
			    src->dequant[kn - APRFS_KN_DEQUANT];
	}
	dst->kisa[kn] = src->kisa[kn];
}

int aprfs_kernels_same(const aprfs_kernels *a, const aprfs_kernels *b, int kn)
{
	return kn >= 0 && kn < APRFS_KN_COUNT && kernels_fn(a, kn) == kernels_fn(b, kn);
}

/* In kernel number order (aprfs_kslot, then aprfs_dqslot order). */
static const char *const kernel_names[] = {
    "widen f16",    "widen bf16",     "maxabs",		"sumabs",	"encode f32",
    "encode f16",   "encode bf16",    "encode q8",	"encode q4",	"encode q4k",
    "encode q6k",   "encode nf4",     "encode ternary", "decode f32",	"decode f16",
    "decode bf16",  "decode q8",      "decode q4",	"decode q4k",	"decode q6k",
    "decode nf4",   "decode ternary", "dequant q8_0",	"dequant q4_0", "dequant q4_1",
    "dequant q5_0", "dequant q5_1",   "dequant q2_k",	"dequant q3_k", "dequant q4_k",
    "dequant q5_k", "dequant q6_k"};
_Static_assert(sizeof(kernel_names) / sizeof(kernel_names[0]) == APRFS_KN_COUNT,
	       "one name per kernel");

const char *aprfs_kernel_name(int kn)
{
	return kn >= 0 && kn < APRFS_KN_COUNT ? kernel_names[kn] : NULL;
}

/* ---- the tables ----------------------------------------------------------------------- */

/* Built once each under the lock, then read-only: a resolved function-pointer table. */
static aprfs_kernels tables[APRFS_ISA_COUNT];
static atomic_int table_ready[APRFS_ISA_COUNT];
static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;

static void fill_isa(int isa, aprfs_kernels *t)
{
	kernels_fill_scalar(t);
#if defined(__x86_64__)
	if (isa == ISA_AVX2)
		aprfs_kernels_fill_avx2(t);
	if (isa == ISA_AVX512)
		aprfs_kernels_fill_avx512(t);
#endif
#if defined(__aarch64__)
	if (isa == ISA_NEON)
		aprfs_kernels_fill_neon(t);
#endif
	aprfs_kernels ref;
	kernels_fill_scalar(&ref);
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++)
		t->kisa[kn] = kernels_fn(t, kn) == kernels_fn(&ref, kn) ? "scalar" : t->isa;
}

const aprfs_kernels *kernels_table_of(int isa)
{
	if (!atomic_load(&table_ready[isa])) {
		pthread_mutex_lock(&table_lock);
		if (!atomic_load(&table_ready[isa])) {
			fill_isa(isa, &tables[isa]);
			atomic_store(&table_ready[isa], 1);
		}
		pthread_mutex_unlock(&table_lock);
	}
	return &tables[isa];
}

const aprfs_kernels *aprfs_kernels_scalar(void)
{
	return kernels_table_of(ISA_SCALAR);
}

const aprfs_kernels *aprfs_kernels_for_isa(const char *isa)
{
	int i = isa ? kernels_isa_index(isa) : -1;
	if (i < 0 || !kernels_isa_supported(i))
		return NULL;
	return kernels_table_of(i);
}
