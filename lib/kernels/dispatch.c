/* dispatch.c - choosing the kernel table. For now only the scalar reference exists;
 * the ISA probe and self-check land with the SIMD variants (issue 5). */
#include <string.h>

#include "../half.h"
#include "kernels.h"

static void widen_f16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = aprfs_f16_to_f32(in[i]);
}

static void widen_bf16_ref(const uint16_t *in, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = aprfs_bf16_to_f32(in[i]);
}

static const aprfs_codec *const slot_codecs[APRFS_K_COUNT] = {
	&aprfs_codec_f32, &aprfs_codec_f16, &aprfs_codec_bf16, &aprfs_codec_q8,	 &aprfs_codec_q4,
	&aprfs_codec_q4k, &aprfs_codec_q6k, &aprfs_codec_nf4,  &aprfs_codec_ternary,
};

aprfs_kslot aprfs_kslot_of(const aprfs_codec *c)
{
	for (int i = 0; i < APRFS_K_COUNT; i++)
		if (slot_codecs[i] == c)
			return (aprfs_kslot)i;
	return APRFS_K_F32;
}

static aprfs_kernels scalar_table;

const aprfs_kernels *aprfs_kernels_scalar(void)
{
	if (!scalar_table.isa) {
		aprfs_kernels t = {.isa = "scalar",
				   .widen_f16 = widen_f16_ref,
				   .widen_bf16 = widen_bf16_ref,
				   .maxabs = aprfs_stat_maxabs_ref,
				   .sumabs = aprfs_stat_sumabs_ref};
		for (int i = 0; i < APRFS_K_COUNT; i++) {
			t.encode[i] = slot_codecs[i]->encode;
			t.decode[i] = slot_codecs[i]->decode;
		}
		scalar_table = t; /* same value from every thread: a benign race */
	}
	return &scalar_table;
}

const aprfs_kernels *aprfs_kernels_get(void) { return aprfs_kernels_scalar(); }

void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
		 float *out)
{
	if (d == APRFS_SRC_F16)
		k->widen_f16(raw, n, out);
	else if (d == APRFS_SRC_BF16)
		k->widen_bf16(raw, n, out);
	else
		memcpy(out, raw, n * sizeof(float));
}
