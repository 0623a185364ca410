/* kernels.h - the kernel table: every hot loop of aprfs behind one function pointer,
 * resolved once from the CPU's features (scalar reference always present; x86/ and arm/
 * hold the SIMD variants). Every variant is byte-identical to the scalar reference. */
#ifndef APRFS_KERNELS_H
#define APRFS_KERNELS_H

#include <stddef.h>
#include <stdint.h>

#include "../codec.h"
#include "../dtype.h"

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

typedef struct aprfs_kernels {
	const char *isa; /* "scalar", "avx2", "avx512", "neon" */
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
} aprfs_kernels;

/* The ISA names a table can have, best last; aprfs_kernels_isa_names[i] for
 * i < APRFS_ISA_COUNT. */
enum { APRFS_ISA_COUNT = 4 };
extern const char *const aprfs_kernels_isa_names[APRFS_ISA_COUNT];

/* The table in use: resolved on first call, then constant. The best variant the CPU
 * supports that passes its self-check wins; APRFS_ISA=scalar|avx2|avx512|neon forces one,
 * and a forced ISA the CPU lacks (or that fails its self-check) ends the process with a
 * message on stderr rather than run something other than what was asked for. */
const aprfs_kernels *aprfs_kernels_get(void);
/* Name of the ISA aprfs_kernels_get() uses ("avx512"), for `aprfs --version`. */
const char *aprfs_kernels_isa(void);
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

/* Convert n source elements of type d at raw into f32 (F32 is a copy). */
void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
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
