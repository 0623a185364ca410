/* dtype.h - element types: what a source checkpoint holds (aprfs_src_dtype) and the
 * APR v2 dtype ids written in the tensor index (APR_DT_*), as fixed by shared/apr-v2.md. */
#ifndef APRFS_DTYPE_H
#define APRFS_DTYPE_H

#include <stddef.h>
#include <stdint.h>

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

size_t aprfs_src_dtype_size(aprfs_src_dtype d);	     /* bytes per element */
const char *aprfs_src_dtype_name(aprfs_src_dtype d); /* safetensors spelling, "BF16" */
int aprfs_src_dtype_is_float(aprfs_src_dtype d);     /* F32/F16/BF16 (quantizable) */
/* Parse a safetensors dtype string; returns 0 and sets *out, or -1 if unknown. */
int aprfs_src_dtype_parse(const char *s, aprfs_src_dtype *out);
/* APR id a non-float source dtype passes through as (BOOL -> U8). */
uint8_t aprfs_src_dtype_passthrough_id(aprfs_src_dtype d);

const char *aprfs_apr_dtype_name(uint8_t id); /* "Q4_K", or NULL if unknown */

#endif
