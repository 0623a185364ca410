/* f32.c - the f32 codec: IEEE binary32, 4 little-endian bytes per element, one element
 * per block. Encoding is a copy; it exists so every variant goes through one interface.
 * The copy relies on a little-endian host (x86-64, AArch64), checked at compile time. */
#include <string.h>

#include "format/dtype.h"
#include "quant/codec.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "aprfs assumes a little-endian host: APR payloads are little-endian"
#endif

static void f32_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	(void)p;
	if (n)
		memcpy(out, x, n * sizeof(float));
}

static void f32_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	if (n)
		memcpy(y, in, n * sizeof(float));
}

const aprfs_codec aprfs_codec_f32 = {
    .name = "f32",
    .dtype = APR_DT_F32,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = 1,
    .block_bytes = 4,
    .encode = f32_encode,
    .decode = f32_decode,
};
