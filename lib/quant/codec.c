/* codec.c - the codec registry (lookup by variant name), payload size arithmetic, and
 * the scalar per-tensor statistics (maxabs, lane-ordered sumabs) with the scale/alpha
 * derivations that q8 and ternary store in their payload prefix. */
#include <float.h>
#include <math.h>
#include <string.h>

#include "quant/codec.h"

static const aprfs_codec *const all_codecs[] = {
    &aprfs_codec_f32, &aprfs_codec_f16, &aprfs_codec_bf16,
    &aprfs_codec_q8,  &aprfs_codec_q4,	&aprfs_codec_q4k,
    &aprfs_codec_q6k, &aprfs_codec_nf4, &aprfs_codec_ternary,
};

const aprfs_codec *aprfs_codec_find(const char *name)
{
	if (!name)
		return NULL;
	for (size_t i = 0; i < sizeof(all_codecs) / sizeof(all_codecs[0]); i++)
		if (strcmp(all_codecs[i]->name, name) == 0)
			return all_codecs[i];
	return NULL;
}

/* nf4 leaves its block size to the config: 0 in the struct means "ask qparams". */
uint64_t aprfs_codec_block_elems(const aprfs_codec *c, const aprfs_qparams *p)
{
	if (c->block_elems)
		return c->block_elems;
	return p ? p->nf4_block : 0;
}

uint64_t aprfs_codec_block_bytes(const aprfs_codec *c, const aprfs_qparams *p)
{
	if (c->block_bytes)
		return c->block_bytes;
	return p ? 4 + (uint64_t)p->nf4_block / 2 : 0;
}

/* A zero block size (nf4 without qparams) yields 0 rather than dividing by zero:
 * the caller validates the config before it ever sizes a tensor. */
uint64_t aprfs_codec_payload_size(const aprfs_codec *c, uint64_t n, const aprfs_qparams *p)
{
	uint64_t be = aprfs_codec_block_elems(c, p);
	if (be == 0)
		return 0;
	uint64_t blocks = n / be + (n % be != 0);
	return c->prefix_bytes + blocks * aprfs_codec_block_bytes(c, p);
}

float aprfs_stat_maxabs_ref(const float *x, size_t n)
{
	float m = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float a = fabsf(x[i]);
		if (a > m && a <= FLT_MAX) /* false for NaN and inf: neither ever wins */
			m = a;
	}
	return m;
}

/* 16 lanes so an AVX-512 (or 2x AVX2, 4x NEON) kernel can keep the same partial sums in
 * registers and combine them in the same pairwise order: the double is then identical
 * whichever ISA computed it. */
double aprfs_stat_sumabs_ref(const float *x, size_t n, uint64_t *nfinite)
{
	double l[16] = {0};
	uint64_t fin = 0;
	for (size_t i = 0; i < n; i++) {
		float a = fabsf(x[i]);
		if (a <= FLT_MAX) { /* finite: NaN and inf add nothing and are not counted */
			l[i % 16] += (double)a;
			fin++;
		}
	}
	for (int w = 8; w >= 1; w /= 2)
		for (int i = 0; i < w; i++)
			l[i] += l[i + w];
	*nfinite += fin;
	return l[0];
}

float aprfs_q8_scale_from_maxabs(float maxabs)
{
	if (maxabs == 0.0f)
		return 1.0f;
	return maxabs / 127.0f;
}

float aprfs_ternary_alpha_from_sum(double sum, uint64_t nfinite)
{
	if (nfinite == 0)
		return 0.0f;
	return (float)(sum / (double)nfinite);
}
