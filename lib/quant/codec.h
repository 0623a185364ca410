/* codec.h - one quantization scheme = one aprfs_codec: how many bytes a tensor takes,
 * how f32 elements become those bytes (encode) and back (decode). Byte layouts and
 * rounding rules are doc/apr-format.md's. The functions here are the scalar references;
 * lib/kernels/ may swap faster ones in, byte-identical.
 *
 * lib/quant/ (above base/ and format/): the codecs, each variant's scalar reference
 * encoder, and the GGUF block decoders (ggml_dequant.h). */
#ifndef APRFS_CODEC_H
#define APRFS_CODEC_H

#include <stddef.h>
#include <stdint.h>

/* The version of the bytes aprfs' codecs produce. BUMP IT whenever any codec, statistic,
 * fallback rule or chunking changes a single output byte (an encoder's rounding, q8's
 * scale, ternary's alpha, how a tensor splits into chunks): the disk cache
 * (lib/cache/diskcache.h) keys every entry by it, so entries written by an older aprfs then
 * simply stop being found and age out, instead of being served as the new bytes. Forgetting
 * the bump makes a cache shared with an older aprfs serve that aprfs' bytes. */
#define APRFS_CODEC_FORMAT_VERSION 2

/* Per-tensor statistic a codec needs before it can encode any chunk. */
typedef enum { APRFS_STAT_NONE, APRFS_STAT_MAXABS, APRFS_STAT_MEANABS } aprfs_stat_kind;

typedef struct aprfs_qparams {
	float scale;	    /* q8: maxabs/127 (1.0 if maxabs is 0); ternary: alpha = mean|x| */
	uint32_t nf4_block; /* nf4 block size B (even); unused by the others */
	/* Q4_K / Q6_K only: an importance weight per column (an imatrix entry, qw_cols
	 * values, all finite and >= 0) or NULL for the unweighted search. The tensor's rows
	 * are qw_cols elements (a multiple of 256); x[0] of an encode call is in column
	 * qw_col0. */
	const float *qw;
	uint64_t qw_cols, qw_col0;
} aprfs_qparams;

/* A tensor's payload is prefix_bytes (the statistic, f32 LE; q8 and ternary only) followed
 * by ceil(n / block_elems) blocks of block_bytes each. Chunks are whole blocks, so any
 * run of blocks can be encoded independently once the statistic is known. */
typedef struct aprfs_codec {
	const char *name; /* variant name: "q4k" */
	uint8_t dtype;	  /* APR dtype id */
	aprfs_stat_kind stat;
	uint32_t prefix_bytes;
	uint32_t block_elems; /* 0: the nf4 block size from qparams */
	uint32_t block_bytes; /* 0: derived from block_elems (nf4: 4 + B/2) */
	/* Encode n elements starting at a block boundary into ceil(n/block_elems) blocks.
	 * n is a multiple of block_elems except at the tensor's end, where the codec
	 * handles the short last block as the contract says. */
	void (*encode)(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out);
	/* Decode the blocks holding n elements (n as for encode) into y[0..n). */
	void (*decode)(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y);
} aprfs_codec;

extern const aprfs_codec aprfs_codec_f32, aprfs_codec_f16, aprfs_codec_bf16, aprfs_codec_q8,
    aprfs_codec_q4, aprfs_codec_q4k, aprfs_codec_q6k, aprfs_codec_nf4, aprfs_codec_ternary;

/* The NF4 code book (doc/apr-format.md's 16 levels) and the 15 midpoints between neighbours,
 * computed in f32: code = how many midpoints lie strictly below x / absmax. Every
 * implementation compares against these same numbers. */
extern const float aprfs_nf4_levels[16];
void aprfs_nf4_midpoints(float mid[15]);

/* Every codec, in the order of the kernels' slots (kernels.h aprfs_kslot). A variant names
 * its codec(s) in plan/variant.c; several variants may share one. */
#define APRFS_CODEC_COUNT 9
extern const aprfs_codec *const aprfs_codecs[APRFS_CODEC_COUNT];
/* Codec by its name ("q4k"), or NULL. */
const aprfs_codec *aprfs_codec_find(const char *name);
/* Blocks and bytes for n elements (nf4 uses p->nf4_block). */
uint64_t aprfs_codec_block_elems(const aprfs_codec *c, const aprfs_qparams *p);
uint64_t aprfs_codec_block_bytes(const aprfs_codec *c, const aprfs_qparams *p);
uint64_t aprfs_codec_payload_size(const aprfs_codec *c, uint64_t n, const aprfs_qparams *p);

/* Per-tensor statistics over n elements, scalar reference. Both look at finite values
 * only (doc/apr-format.md: non-finite values never spread beyond their own block): maxabs
 * ignores NaN and +-inf; sumabs accumulates the finite |x| in double in 16 interleaved lanes
 * (lane i takes elements i, i+16, ...) summed pairwise at the end, so SIMD versions can
 * reproduce the exact same double, and ADDS the number of finite elements to *nfinite;
 * callers sum per-chunk results in chunk order. */
float aprfs_stat_maxabs_ref(const float *x, size_t n);
double aprfs_stat_sumabs_ref(const float *x, size_t n, uint64_t *nfinite);
/* The qparams.scale a codec stores, from the finished statistic: q8's maxabs/127 (1.0 if
 * 0), ternary's sum / nfinite (0 if no element is finite). */
float aprfs_q8_scale_from_maxabs(float maxabs);
float aprfs_ternary_alpha_from_sum(double sum, uint64_t nfinite);

/* The input rule of the block codecs (q4, nf4, Q4_K, Q6_K): before a block's scales are
 * chosen, NaN reads as 0 and +-inf and anything beyond +-65504 (the largest f16) as
 * +-65504, so every decoded value of the block stays finite. -0.0 stays -0.0; finite
 * data within +-65504 passes unchanged. */
#define APRFS_BLOCK_LIMIT 65504.0f
static inline float aprfs_block_sanitize(float v)
{
	if (v != v)
		return 0.0f;
	return v < -APRFS_BLOCK_LIMIT  ? -APRFS_BLOCK_LIMIT
	       : v > APRFS_BLOCK_LIMIT ? APRFS_BLOCK_LIMIT
				       : v;
}

#endif
