/* neon.c - the AArch64 NEON kernel table: vec_tmpl.h's kernels compiled for AArch64,
 * where GCC maps the 16-lane vectors onto four 128-bit registers, with FCVT supplying
 * the half-precision conversions. Compiles to nothing on other architectures. */
#if defined(__aarch64__)
#include <arm_neon.h>
#include <stdint.h>
#include <string.h>

/* FCVTL/FCVTN round to nearest even under the default FPCR, keep subnormals (FZ16 is
 * clear under Linux) and quiet NaNs keeping the top payload bits: half.c's rules. */
static inline void kv_f16_widenw(const uint16_t *in, float *out)
{
	uint16x4_t h;
	memcpy(&h, in, sizeof(h));
	vst1q_f32(out, vcvt_f32_f16(vreinterpret_f16_u16(h)));
}

static inline void kv_f16_narroww(const float *in, uint8_t *out)
{
	uint16x4_t h = vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(in)));
	memcpy(out, &h, sizeof(h));
}

/* t[idx] for a 16-float table, idx in [0, 15]: one tbl over the table's 64 bytes, lane j
 * picking bytes 4 idx[j] .. 4 idx[j] + 3. */
typedef float kv_f4 __attribute__((vector_size(16)));
typedef int32_t kv_i4 __attribute__((vector_size(16)));
static inline kv_f4 kv_lut16(const float *t, kv_i4 idx)
{
	uint8x16x4_t tab;
	tab.val[0] = vld1q_u8((const uint8_t *)t);
	tab.val[1] = vld1q_u8((const uint8_t *)(t + 4));
	tab.val[2] = vld1q_u8((const uint8_t *)(t + 8));
	tab.val[3] = vld1q_u8((const uint8_t *)(t + 12));
	const kv_i4 bytes = idx * 0x04040404 + 0x03020100;
	return (kv_f4)vqtbl4q_u8(tab, (uint8x16_t)bytes);
}
#define KV_HAVE_LUT16

/* Four int8 to int32 lanes with two sign-extending moves (GCC lowers the generic
 * conversion lane by lane); a 4-byte load, never past p + 4. */
static inline kv_i4 kv_widen_s8(const int8_t *p)
{
	int32_t w;
	memcpy(&w, p, sizeof(w));
	const int16x8_t h = vmovl_s8(vreinterpret_s8_s32(vdup_n_s32(w)));
	return (kv_i4)vmovl_s16(vget_low_s16(h));
}
#define KV_HAVE_WIDEN_S8

/* One f16 scale: FCVTL on one lane, the instruction kv_f16_widenw uses. */
static inline float kv_f16_1(uint16_t h)
{
	return vgetq_lane_f32(vcvt_f32_f16(vreinterpret_f16_u16(vdup_n_u16(h))), 0);
}
#define KV_HAVE_F16_1

#define KV_W	4
#define KV_FILL aprfs_kernels_fill_neon_impl
#include "kernels/vec_tmpl.h"

void aprfs_kernels_fill_neon(aprfs_kernels *t)
{
	aprfs_kernels_fill_neon_impl(t);
	t->isa = "neon";
}
#endif
