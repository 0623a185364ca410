/* f16.c - the f16 codec: IEEE binary16 (round to nearest even, overflow to inf, NaN kept
 * quiet), 2 little-endian bytes per element. The bit work is half.c's; this file only
 * walks the buffers. */
#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"

static void f16_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	(void)p;
	for (size_t i = 0; i < n; i++) {
		uint16_t h = aprfs_f32_to_f16(x[i]);
		out[2 * i] = (uint8_t)h;
		out[2 * i + 1] = (uint8_t)(h >> 8);
	}
}

static void f16_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	for (size_t i = 0; i < n; i++)
		y[i] = aprfs_f16_to_f32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
}

const aprfs_codec aprfs_codec_f16 = {
    .name = "f16",
    .dtype = APR_DT_F16,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = 1,
    .block_bytes = 2,
    .encode = f16_encode,
    .decode = f16_decode,
};
