/* dtype.h - element types: what a source checkpoint holds (aprfs_src_dtype: safetensors'
 * plain types and GGUF's GGML block types) and the APR v2 dtype ids written in the tensor
 * index (APR_DT_*), as doc/apr-format.md lists them. */
#ifndef APRFS_DTYPE_H
#define APRFS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

/* Plain types hold one element per "block" of their size; GGML block types hold
 * block_elems elements in block_bytes (aprfs_src_dtype_block). */
typedef enum aprfs_src_dtype {
	APRFS_SRC_F32,
	APRFS_SRC_F16,
	APRFS_SRC_BF16,
	APRFS_SRC_F64,
	APRFS_SRC_I64,
	APRFS_SRC_I32,
	APRFS_SRC_I8,
	APRFS_SRC_U8,
	APRFS_SRC_BOOL,
	/* GGML block types (GGUF sources): 32-element blocks ... */
	APRFS_SRC_Q8_0,
	APRFS_SRC_Q4_0,
	APRFS_SRC_Q4_1,
	APRFS_SRC_Q5_0,
	APRFS_SRC_Q5_1,
	/* ... and 256-element super-blocks (k-quants). */
	APRFS_SRC_Q2_K,
	APRFS_SRC_Q3_K,
	APRFS_SRC_Q4_K,
	APRFS_SRC_Q5_K,
	APRFS_SRC_Q6_K,
	APRFS_SRC_COUNT
} aprfs_src_dtype;

/* APR v2 dtype ids (tensor index byte). */
enum {
	APR_DT_F32 = 0,
	APR_DT_F16 = 1,
	APR_DT_F64 = 3,
	APR_DT_I32 = 4,
	APR_DT_I64 = 5,
	APR_DT_I8 = 6,
	APR_DT_U8 = 7,
	APR_DT_Q4_K = 12,
	APR_DT_Q6_K = 14,
	APR_DT_BF16 = 30,
	APR_DT_APR_Q4 = 128,
	APR_DT_APR_Q8 = 129,
	APR_DT_NF4 = 130,
	APR_DT_TERNARY = 131,
};

/* Elements and bytes of one block (1 and the element size for plain types). */
uint32_t aprfs_src_dtype_block_elems(aprfs_src_dtype d);
uint32_t aprfs_src_dtype_block_bytes(aprfs_src_dtype d);
/* Bytes per element of a plain type; 0 for block types (use the block geometry). */
size_t aprfs_src_dtype_size(aprfs_src_dtype d);
/* "BF16", "Q4_K": safetensors' spelling for plain types, GGML's for block types. */
const char *aprfs_src_dtype_name(aprfs_src_dtype d);
/* Holds real numbers that can be quantized: F32, F16, BF16 and every GGML block type. */
int aprfs_src_dtype_is_float(aprfs_src_dtype d);
/* Parse a safetensors dtype string (plain types only); 0 and *out, or -1 if unknown. */
int aprfs_src_dtype_parse(const char *s, aprfs_src_dtype *out);
/* APR id a non-float source dtype passes through as (BOOL -> U8). For float types: the
 * APR dtype whose bytes are identical to the source's blocks (Q4_K, Q6_K, F32, F16,
 * BF16), or 0xff when there is none. */
uint8_t aprfs_src_dtype_passthrough_id(aprfs_src_dtype d);
/* GGML type id <-> source dtype (GGUF tensor infos). -1 / APRFS_SRC_COUNT if none. */
int aprfs_src_dtype_ggml_id(aprfs_src_dtype d);
aprfs_src_dtype aprfs_src_dtype_from_ggml(uint32_t ggml_type);
/* GGML's name of a GGML type id, known to aprfs or not ("IQ2_XXS"), or NULL. */
const char *aprfs_ggml_type_name(uint32_t ggml_type);

const char *aprfs_apr_dtype_name(uint8_t id); /* "Q4_K", or NULL if unknown */

#endif
