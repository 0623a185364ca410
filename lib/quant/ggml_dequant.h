/* ggml_dequant.h - GGUF tensors to f32: the scalar reference dequantizers for GGML's block
 * types and for F32/F16/BF16, each giving exactly the f32 bits of GGML's dequantize_row_*
 * (ggml_fp16_to_fp32_row, ggml_bf16_to_fp32_row for the plain types). */
#ifndef APRFS_GGML_DEQUANT_H
#define APRFS_GGML_DEQUANT_H

#include <stddef.h>
#include <stdint.h>

#include "format/dtype.h"

/* 1 if aprfs_ggml_dequant_ref takes d: F32, F16, BF16 and every GGML block type
 * (aprfs_src_dtype_is_float). */
int aprfs_ggml_dequant_supported(aprfs_src_dtype d);

/* Dequantize nblocks whole blocks of type d (aprfs_src_dtype_block_bytes(d) bytes each,
 * no alignment needed) into nblocks * aprfs_src_dtype_block_elems(d) floats. For F32, F16
 * and BF16 a block is one element: F32 is copied bit for bit, F16 and BF16 go through
 * lib/base/half.c's exact conversions. Q4_K and Q6_K are aprfs_codec_q4k/q6k's decoders.
 * Every value, NaN payloads and signed zeros included, is what GGML's row dequantizer
 * gives on the same bytes (built, like aprfs, without FMA contraction).
 * d must be supported (above): any other type is a programming error and aborts. */
void aprfs_ggml_dequant_ref(aprfs_src_dtype d, const void *blocks, size_t nblocks, float *out);

/* The same, one function per block type (in: nblocks blocks, y: nblocks * 32 or 256). */
void aprfs_ggml_dequant_q8_0(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q4_0(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q4_1(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q5_0(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q5_1(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q2_k(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q3_k(const uint8_t *in, size_t nblocks, float *y);
void aprfs_ggml_dequant_q5_k(const uint8_t *in, size_t nblocks, float *y);

#endif
