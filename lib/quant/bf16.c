/* bf16.c - the bf16 codec: the top 16 bits of binary32, rounded to nearest even (NaN
 * stays NaN, quieted), 2 little-endian bytes per element. The bit work is half.c's;
 * this file only walks the buffers. */
#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"

static void bf16_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	(void)p;
	for (size_t i = 0; i < n; i++) {
		uint16_t h = aprfs_f32_to_bf16(x[i]);
		out[2 * i] = (uint8_t)h;
		out[2 * i + 1] = (uint8_t)(h >> 8);
	}
}

static void bf16_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	for (size_t i = 0; i < n; i++)
		y[i] = aprfs_bf16_to_f32((uint16_t)(in[2 * i] | in[2 * i + 1] << 8));
}

const aprfs_codec aprfs_codec_bf16 = {
    .name = "bf16",
    .dtype = APR_DT_BF16,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = 1,
    .block_bytes = 2,
    .encode = bf16_encode,
    .decode = bf16_decode,
};
