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

typedef void (*aprfs_encode_fn)(const float *x, size_t n, const aprfs_qparams *p,
				uint8_t *out);
typedef void (*aprfs_decode_fn)(const uint8_t *in, size_t n, const aprfs_qparams *p,
				float *y);

typedef struct aprfs_kernels {
	const char *isa; /* "scalar", "avx2", "avx512", "neon" */
	void (*widen_f16)(const uint16_t *in, size_t n, float *out);
	void (*widen_bf16)(const uint16_t *in, size_t n, float *out);
	float (*maxabs)(const float *x, size_t n);
	double (*sumabs)(const float *x, size_t n);
	aprfs_encode_fn encode[APRFS_K_COUNT];
	aprfs_decode_fn decode[APRFS_K_COUNT];
} aprfs_kernels;

/* The table in use: resolved on first call (honours APRFS_ISA), then constant. */
const aprfs_kernels *aprfs_kernels_get(void);
/* The scalar reference table (always available). */
const aprfs_kernels *aprfs_kernels_scalar(void);
/* Slot of a codec. */
aprfs_kslot aprfs_kslot_of(const aprfs_codec *c);

/* Convert n source elements of type d at raw into f32 (F32 is a copy). */
void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
		 float *out);

#endif
