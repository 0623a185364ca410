/* kernels.h - the kernel table: every hot loop of aprfs behind one function pointer,
 * resolved once from the CPU's features, kernel by kernel (scalar reference always
 * present; x86/ and arm/ hold the SIMD variants). Every variant is byte-identical to the
 * scalar reference.
 *
 * lib/kernels/ (above quant/, whose codecs it vectorizes): the per-ISA kernel tables. */
#ifndef APRFS_KERNELS_H
#define APRFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"
#include "quant/codec.h"

/* Codecs by table slot. */
typedef enum {
	APRFS_K_F32,
	APRFS_K_F16,
	APRFS_K_BF16,
	APRFS_K_Q8,
	APRFS_K_Q4,
	APRFS_K_Q4K,
	APRFS_K_Q6K,
	APRFS_K_NF4,
	APRFS_K_TERNARY,
	APRFS_K_COUNT
} aprfs_kslot;

typedef void (*aprfs_encode_fn)(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out);
typedef void (*aprfs_decode_fn)(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y);

/* GGML block types (GGUF sources) by dequantizer slot: aprfs_src_dtype's order, from
 * APRFS_SRC_Q8_0 on (aprfs_dqslot_of). */
typedef enum {
	APRFS_DQ_Q8_0,
	APRFS_DQ_Q4_0,
	APRFS_DQ_Q4_1,
	APRFS_DQ_Q5_0,
	APRFS_DQ_Q5_1,
	APRFS_DQ_Q2_K,
	APRFS_DQ_Q3_K,
	APRFS_DQ_Q4_K,
	APRFS_DQ_Q5_K,
	APRFS_DQ_Q6_K,
	APRFS_DQ_COUNT
} aprfs_dqslot;

/* Dequantize nblocks whole blocks (no alignment needed) into nblocks * elems floats:
 * exactly the f32 bits of GGML's dequantize_row_* (lib/quant/ggml_dequant.c). */
typedef void (*aprfs_dequant_fn)(const uint8_t *in, size_t nblocks, float *y);

/* A dequant slot's block: its source dtype, "Q8_0", elements and bytes, and the byte
 * offsets of its f16 scale fields (d first; Q4_1/Q5_1's m, the k-quants' dmin second). */
typedef struct aprfs_dq_type {
	aprfs_src_dtype dtype;
	const char *name;
	uint16_t elems, bytes;
	uint8_t nscale, scale_off[2];
} aprfs_dq_type;
extern const aprfs_dq_type aprfs_dq_types[APRFS_DQ_COUNT];

/* Every kernel of a table by number: the four statistics/widening kernels, then
 * encode[slot], decode[slot] and dequant[dqslot]. Names: "widen f16", "maxabs",
 * "encode q4k", "dequant q8_0", ... */
enum {
	APRFS_KN_WIDEN_F16,
	APRFS_KN_WIDEN_BF16,
	APRFS_KN_MAXABS,
	APRFS_KN_SUMABS,
	APRFS_KN_ENCODE,				    /* + slot */
	APRFS_KN_DECODE = APRFS_KN_ENCODE + APRFS_K_COUNT,  /* + slot */
	APRFS_KN_DEQUANT = APRFS_KN_DECODE + APRFS_K_COUNT, /* + dqslot */
	APRFS_KN_COUNT = APRFS_KN_DEQUANT + APRFS_DQ_COUNT
};

typedef struct aprfs_kernels {
	/* "scalar", "avx2", "avx512", "neon"; for the default table, which takes each
	 * kernel from the ISA measured fastest for it, the main ISA and the exceptions:
	 * "avx512 (avx2 for encode bf16, maxabs)". */
	const char *isa;
	/* The ISA each kernel's function comes from ("scalar" where an ISA has no variant
	 * of its own, e.g. encode f32). */
	const char *kisa[APRFS_KN_COUNT];
	void (*widen_f16)(const uint16_t *in, size_t n, float *out);
	void (*widen_bf16)(const uint16_t *in, size_t n, float *out);
	/* codec.h's statistics: maxabs over the finite values; sumabs the lane-ordered
	 * double sum of the finite |x|, adding the count of finite elements to *nfinite. */
	float (*maxabs)(const float *x, size_t n);
	double (*sumabs)(const float *x, size_t n, uint64_t *nfinite);
	/* encode[APRFS_K_F16] / [APRFS_K_BF16] are the f32 -> f16 / bf16 narrowing kernels
	 * (round to nearest even, NaN kept quiet), writing little-endian 16-bit values. */
	aprfs_encode_fn encode[APRFS_K_COUNT];
	aprfs_decode_fn decode[APRFS_K_COUNT];
	/* GGUF's block types to f32 (dequant[APRFS_DQ_Q4_K] / [APRFS_DQ_Q6_K] are the q4k /
	 * q6k decoders by block). */
	aprfs_dequant_fn dequant[APRFS_DQ_COUNT];
} aprfs_kernels;

/* The ISA names a table can have, best last; aprfs_kernels_isa_names[i] for
 * i < APRFS_ISA_COUNT. */
enum { APRFS_ISA_COUNT = 4 };
extern const char *const aprfs_kernels_isa_names[APRFS_ISA_COUNT];

/* The table in use: resolved on first call, then constant. Each kernel comes from the
 * first ISA of its preference order (dispatch.c's table, measured with `make bench`;
 * by default avx512, avx2, neon) that the CPU supports and whose whole table passes its
 * self-check, else from the scalar reference; the table so assembled passes the
 * self-check too. APRFS_ISA=scalar|avx2|avx512|neon forces one whole ISA instead, and a
 * forced ISA the CPU lacks (or that fails its self-check) ends the process with a message
 * on stderr rather than run something other than what was asked for. */
const aprfs_kernels *aprfs_kernels_get(void);
/* The table's isa string ("avx512", "avx512 (avx2 for maxabs)"), for `aprfs --version`. */
const char *aprfs_kernels_isa(void);
/* Kernel kn's name ("encode q4k"), or NULL past the last. */
const char *aprfs_kernel_name(int kn);
/* The ISA at rank r (0 = most preferred) of kernel kn's preference order, or NULL past
 * its end (the scalar reference is the implicit last resort). */
const char *aprfs_kernels_preferred(int kn, int r);
/* Whether tables a and b use the very same function for kernel kn. */
int aprfs_kernels_same(const aprfs_kernels *a, const aprfs_kernels *b, int kn);
/* The scalar reference table (always available). */
const aprfs_kernels *aprfs_kernels_scalar(void);
/* The table of one ISA by name, or NULL when the name is unknown or this CPU (or this
 * build) cannot run it. Not self-checked: the tests compare it themselves. */
const aprfs_kernels *aprfs_kernels_for_isa(const char *isa);
/* Run every kernel of k against the scalar reference on a fixed vector of edge cases.
 * 0 if all bytes agree; otherwise -1 and a description in why. */
int aprfs_kernels_selfcheck(const aprfs_kernels *k, char *why, size_t whylen);
/* Tests only: forget the resolved table so the next aprfs_kernels_get() resolves again
 * (re-reading APRFS_ISA). Not safe while other threads use the kernels. */
void aprfs_kernels_reset(void);
/* Slot of a codec. */
aprfs_kslot aprfs_kslot_of(const aprfs_codec *c);
/* Dequant slot of a GGML block type, or -1 for any other dtype. */
int aprfs_dqslot_of(aprfs_src_dtype d);

/* Convert n source elements of type d at raw into f32 (F32 is a copy). */
void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
		 float *out);

/* Decode nblocks blocks of float source dtype d (plain types: one element per block)
 * into nblocks * block_elems floats at out: F16/BF16 by k's widening kernels, F32 copied,
 * the GGML block types by k->dequant[]. 0, or -ENOTSUP for a dtype with no decoder. The
 * one entry point for GGUF tensors' values. */
int aprfs_dequant(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t nblocks,
		  float *out);

/* Encode n source elements of type d (F32, F16 or BF16) at raw with codec slot, exactly as
 * widening them all and calling k->encode[slot] would, but widening a few KiB at a time
 * into a cache-resident tile instead of materialising the f32 chunk. Like encode, n
 * starts at a block boundary. 0, or -ENOMEM when an nf4 block larger than the tile cannot
 * be allocated. */
int aprfs_encode_src(const aprfs_kernels *k, aprfs_kslot slot, aprfs_src_dtype d,
		     const void *raw, size_t n, const aprfs_qparams *p, uint8_t *out);

/* Internal: the SIMD files fill a table (pre-set to the scalar one) with what they have. */
void aprfs_kernels_fill_avx2(aprfs_kernels *t);
void aprfs_kernels_fill_avx512(aprfs_kernels *t);
void aprfs_kernels_fill_neon(aprfs_kernels *t);

#endif
