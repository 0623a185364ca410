/* variant.h - THE table of variants (variant.c: aprfs_variants[]): per variant its name,
 * codec (dtype, block geometry, encode/decode, statistic), fallback dtype, per-tensor codec
 * rule, flags, nominal bits and help line. Every other list derives from it: the tree's
 * listing, planning, CLI help and errors, the man page section (`aprfs variants --scd`),
 * metrics labels, stats.json, cache counters, and `aprfs variants [--names]`, which tests
 * and scripts read instead of naming variants themselves.
 *
 * Adding a variant:
 *   1. its codec, if it is a new one: lib/quant/NAME.c (an aprfs_codec), its extern in
 *      quant/codec.h and its entry in codec.c's registry (kernels/ may add a fast path);
 *   2. one row at the END of aprfs_variants[] in variant.c (the order is the contract's
 *      and the disk cache keys variants by index) and APRFS_VARIANT_COUNT + 1 below;
 *   3. if some tensors take another codec than the row's (a mixed variant such as
 *      "Q4_K except some tensors in Q6_K"), a rule function beside the row (codec_for),
 *      and the flag APRFS_VARIANT_MIX if the rule reads the layer facts of aprfs_plan_ctx
 *      (named views' rules then refuse the row, as they refuse q4km).
 * Nothing else: help, man page, metrics, tests and scripts follow. Bump
 * APRFS_CODEC_FORMAT_VERSION only when an existing variant's bytes change.
 *
 * lib/plan/ (above source/): the variants (this), plan options (opts.h), the plan of one
 * virtual file (layout.h) and reading a tensor's source bytes (tensor_read.h). */
#ifndef APRFS_VARIANT_H
#define APRFS_VARIANT_H

#include <stddef.h>
#include <stdint.h>

#include "quant/codec.h"
#include "source/source.h"

/* Rows of aprfs_variants[]; variant.c checks the two agree at compile time. Arrays of
 * per-variant counters are sized by it, and variant sets are bit masks (at most 32). */
#define APRFS_VARIANT_COUNT 10

enum {
	APRFS_VARIANT_UPSTREAM = 1u << 0,   /* the upstream APR reader opens it */
	APRFS_VARIANT_EXTENSION = 1u << 1,  /* an aprfs dtype: aprfs-aware readers only */
	APRFS_VARIANT_ALL = 1u << 2,	    /* converts every floating tensor (no size rule) */
	APRFS_VARIANT_BLOCKED = 1u << 3,    /* metadata block_size = the codec's block */
	APRFS_VARIANT_ASYMMETRIC = 1u << 4, /* metadata symmetric = false */
	APRFS_VARIANT_MIX = 1u << 5	    /* a mix: rule reads nlayers, tied_embedding */
};

/* What a per-tensor rule may look at besides the tensor. */
typedef struct aprfs_plan_ctx {
	uint32_t nf4_block;	 /* NF4 block size of the plan */
	const aprfs_source *src; /* the checkpoint: its tensors, config (layer count...) */
	/* Set for rows flagged APRFS_VARIANT_MIX (q4km's mix, plan/kmix.h): the layer
	 * count (config or GGUF keys, else 1 + the largest layer in a name; 0 unknown) and
	 * whether the token embedding serves as output (no output matrix of its own). */
	uint64_t nlayers;
	int tied_embedding;
} aprfs_plan_ctx;

typedef struct aprfs_variant aprfs_variant;

/* The codec a floating tensor t gets in variant v (never NULL). */
typedef const aprfs_codec *(*aprfs_codec_rule)(const aprfs_variant *v, const aprfs_tensor *t,
					       const aprfs_plan_ctx *ctx);

struct aprfs_variant {
	const char *name;	     /* "q4k": the file name's X.<name>.apr */
	const aprfs_codec *codec;    /* what the variant's tensors are written in */
	const aprfs_codec *fallback; /* for tensors the codec cannot take (NULL: none) */
	aprfs_codec_rule codec_for;  /* per-tensor rule (aprfs_rule_default...) */
	unsigned flags;		     /* APRFS_VARIANT_* */
	uint8_t bits;		     /* nominal bits per weight: metadata and display */
	const char *help;	     /* one line: the dtype written and how */
};

extern const aprfs_variant aprfs_variants[APRFS_VARIANT_COUNT];

/* Index of the variant called name, -1 if unknown (or name is NULL). */
int aprfs_variant_index(const char *name);
/* Name of variant i (0 <= i < APRFS_VARIANT_COUNT). */
const char *aprfs_variant_name(int i);
/* The variant names joined by sep ("f32 f16 ..."), in buf (always NUL-terminated). */
void aprfs_variant_list(char *buf, size_t size, const char *sep);
/* Every variant's bit (variant sets: conf, tree). */
#define APRFS_VARIANT_MASK_ALL ((uint32_t)((1ull << APRFS_VARIANT_COUNT) - 1))

/* The rules a row can name. Small tensors (1-D or < 4096 elements) stay F32 in all but
 * APRFS_VARIANT_ALL variants. */
const aprfs_codec *aprfs_rule_default(const aprfs_variant *v, const aprfs_tensor *t,
				      const aprfs_plan_ctx *ctx);
/* Default, and rows must be whole blocks (k-quants), else the fallback. */
const aprfs_codec *aprfs_rule_rows(const aprfs_variant *v, const aprfs_tensor *t,
				   const aprfs_plan_ctx *ctx);
/* Default, and the tensor must be whole blocks (nf4), else the fallback. */
const aprfs_codec *aprfs_rule_whole_blocks(const aprfs_variant *v, const aprfs_tensor *t,
					   const aprfs_plan_ctx *ctx);
/* q4km: rows, then Q6_K for what llama.cpp's Q4_K_M writes in Q6_K (plan/kmix.h) where the
 * row would write its codec (Q4_K); small tensors and the fallback stay as in q4k. */
const aprfs_codec *aprfs_rule_q4km(const aprfs_variant *v, const aprfs_tensor *t,
				   const aprfs_plan_ctx *ctx);

#endif
