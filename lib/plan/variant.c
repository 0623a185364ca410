/* variant.c - the variant table (see variant.h for what adding a row takes) and the
 * per-tensor codec rules its rows name: the contract's "Which tensors a variant
 * quantizes". */
#include "plan/variant.h"

#include <string.h>

#include "plan/kmix.h"

/* The contract's order; new rows go at the end (disk-cache keys hold the index). */
const aprfs_variant aprfs_variants[APRFS_VARIANT_COUNT] = {
    {"f32", &aprfs_codec_f32, NULL, aprfs_rule_default,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_ALL, 32, "F32"},
    {"f16", &aprfs_codec_f16, NULL, aprfs_rule_default,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_ALL, 16, "F16 (round to nearest even)"},
    {"bf16", &aprfs_codec_bf16, NULL, aprfs_rule_default,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_ALL, 16, "BF16"},
    {"q8", &aprfs_codec_q8, NULL, aprfs_rule_default, APRFS_VARIANT_UPSTREAM, 8,
     "APR_Q8: one f32 scale per tensor, int8 values"},
    {"q4", &aprfs_codec_q4, NULL, aprfs_rule_default,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_BLOCKED, 4,
     "APR_Q4: 32-element blocks, f16 scale, 4-bit values"},
    {"q4k", &aprfs_codec_q4k, &aprfs_codec_q8, aprfs_rule_rows,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_BLOCKED | APRFS_VARIANT_ASYMMETRIC, 4,
     "Q4_K (GGML's block_q4_K)"},
    {"q6k", &aprfs_codec_q6k, &aprfs_codec_q8, aprfs_rule_rows,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_BLOCKED, 6, "Q6_K (GGML's block_q6_K)"},
    {"nf4", &aprfs_codec_nf4, &aprfs_codec_q8, aprfs_rule_whole_blocks,
     APRFS_VARIANT_EXTENSION | APRFS_VARIANT_BLOCKED, 4,
     "NF4 (aprfs extension, dtype 130), blocks of nf4_block elements"},
    {"ternary", &aprfs_codec_ternary, NULL, aprfs_rule_default, APRFS_VARIANT_EXTENSION, 2,
     "TERNARY (aprfs extension, dtype 131): one f32 alpha, 2-bit trits"},
    {"q4km", &aprfs_codec_q4k, &aprfs_codec_q8, aprfs_rule_q4km,
     APRFS_VARIANT_UPSTREAM | APRFS_VARIANT_BLOCKED | APRFS_VARIANT_ASYMMETRIC |
	 APRFS_VARIANT_MIX,
     4, "Q4_K, and Q6_K where llama.cpp's Q4_K_M puts it"},
};

_Static_assert(sizeof(aprfs_variants) / sizeof(aprfs_variants[0]) == APRFS_VARIANT_COUNT,
	       "APRFS_VARIANT_COUNT is the number of rows");
_Static_assert(APRFS_VARIANT_COUNT <= 32, "variant sets are 32-bit masks");

int aprfs_variant_index(const char *name)
{
	for (int i = 0; name && i < APRFS_VARIANT_COUNT; i++)
		if (strcmp(name, aprfs_variants[i].name) == 0)
			return i;
	return -1;
}

const char *aprfs_variant_name(int i)
{
	return aprfs_variants[i].name;
}

void aprfs_variant_list(char *buf, size_t size, const char *sep)
{
	size_t used = 0;

	if (!size)
		return;
	buf[0] = '\0';
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++) {
		const char *parts[2] = {i ? sep : "", aprfs_variants[i].name};
		for (int k = 0; k < 2; k++) {
			size_t n = strlen(parts[k]);
			if (used + n >= size)
				return;
			memcpy(buf + used, parts[k], n + 1);
			used += n;
		}
	}
}

const aprfs_codec *aprfs_rule_default(const aprfs_variant *v, const aprfs_tensor *t,
				      const aprfs_plan_ctx *ctx)
{
	(void)ctx;
	if (v->flags & APRFS_VARIANT_ALL)
		return v->codec;
	if (t->ndim < 2 || t->nelem < 4096)
		return &aprfs_codec_f32; /* norms, biases and small tensors stay exact */
	return v->codec;
}

/* Q4_K and Q6_K work along rows of 256. */
const aprfs_codec *aprfs_rule_rows(const aprfs_variant *v, const aprfs_tensor *t,
				   const aprfs_plan_ctx *ctx)
{
	const aprfs_codec *c = aprfs_rule_default(v, t, ctx);

	if (c == v->codec && t->dims[t->ndim - 1] % v->codec->block_elems != 0)
		return v->fallback;
	return c;
}

const aprfs_codec *aprfs_rule_whole_blocks(const aprfs_variant *v, const aprfs_tensor *t,
					   const aprfs_plan_ctx *ctx)
{
	const aprfs_codec *c = aprfs_rule_default(v, t, ctx);
	aprfs_qparams q = {.scale = 1.0f, .nf4_block = ctx->nf4_block};

	if (c == v->codec && t->nelem % aprfs_codec_block_elems(v->codec, &q) != 0)
		return v->fallback;
	return c;
}

const aprfs_codec *aprfs_rule_q4km(const aprfs_variant *v, const aprfs_tensor *t,
				   const aprfs_plan_ctx *ctx)
{
	const aprfs_codec *c = aprfs_rule_rows(v, t, ctx);

	if (c == v->codec && aprfs_q4km_wants_q6k(t->name, ctx->nlayers, ctx->tied_embedding))
		return &aprfs_codec_q6k;
	return c;
}
