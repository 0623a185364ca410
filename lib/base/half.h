/* half.h - scalar IEEE binary16 and bfloat16 conversions (round to nearest even, NaN
 * kept quiet, overflow to inf). These are the references the SIMD kernels must match. */
#ifndef APRFS_HALF_H
#define APRFS_HALF_H

#include <stdint.h>

uint16_t aprfs_f32_to_f16(float f);
float aprfs_f16_to_f32(uint16_t h);
uint16_t aprfs_f32_to_bf16(float f);
float aprfs_bf16_to_f32(uint16_t h);

#endif
