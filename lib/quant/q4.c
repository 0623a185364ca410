/* q4.c - the APR_Q4 codec: 32-element blocks of 18 bytes, an f16 scale s = maxabs/7 then
 * 16 bytes of 4-bit codes q+8 with q = round(x / s) in [-8, 7] (element 2k in the low
 * nibble of byte k). The tensor's short last block keeps its missing nibbles at zero.
 * A block is sanitised first (codec.h's aprfs_block_sanitize: NaN as 0, +-inf and
 * beyond +-65504 as +-65504), so s and every decoded value stay finite. */
#include <math.h>
#include <string.h>

#include "base/half.h"
#include "format/dtype.h"
#include "quant/codec.h"

enum { Q4_BLOCK = 32, Q4_BYTES = 18 };

static float block_maxabs(const float *x, size_t n)
{
	float m = 0.0f;
	for (size_t i = 0; i < n; i++)
		if (fabsf(x[i]) > m)
			m = fabsf(x[i]);
	return m;
}

/* Stored as q+8 so the nibble is unsigned; a NaN quotient (0/0 when a subnormal maxabs
 * makes s = 0) gives q = 0, nibble 8, as Rust's `as i8` makes it. */
static uint8_t q4_nibble(float x, float s)
{
	float q = roundf(x / s);
	if (isnan(q))
		q = 0.0f;
	q = q < -8.0f ? -8.0f : q > 7.0f ? 7.0f : q;
	return (uint8_t)((int)q + 8);
}

/* The scale is quantized with the f32 s, not the f16-rounded one the file stores: that is
 * what the upstream writer does, so it is what byte-identical output requires. */
static void q4_encode_block(const float *raw, size_t n, uint8_t *out)
{
	float x[Q4_BLOCK];
	for (size_t i = 0; i < n; i++)
		x[i] = aprfs_block_sanitize(raw[i]);
	float m = block_maxabs(x, n);
	float s = m == 0.0f ? 1.0f : m / 7.0f;
	uint16_t h = aprfs_f32_to_f16(s);
	out[0] = (uint8_t)h;
	out[1] = (uint8_t)(h >> 8);
	memset(out + 2, 0, Q4_BYTES - 2);
	for (size_t i = 0; i < n; i++)
		out[2 + i / 2] |= (uint8_t)(q4_nibble(x[i], s) << (4 * (i & 1)));
}

static void q4_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	(void)p;
	for (size_t off = 0; off < n; off += Q4_BLOCK, out += Q4_BYTES) {
		size_t len = n - off < Q4_BLOCK ? n - off : Q4_BLOCK;
		q4_encode_block(x + off, len, out);
	}
}

/* Upstream readers zero a block whose scale is NaN, infinite or below 6.1e-5 (below the
 * smallest normal f16); the errors aprfs reports must describe what readers will see. */
static float q4_usable_scale(uint16_t h)
{
	float s = aprfs_f16_to_f32(h);
	if (isinf(s) || !(s >= 6.1e-5f))
		return 0.0f;
	return s;
}

static void q4_decode_block(const uint8_t *in, size_t n, float *y)
{
	float s = q4_usable_scale((uint16_t)(in[0] | in[1] << 8));
	for (size_t i = 0; i < n; i++) {
		int nib = (in[2 + i / 2] >> (4 * (i & 1))) & 0xf;
		y[i] = s == 0.0f ? 0.0f : s * (float)(nib - 8);
	}
}

static void q4_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	(void)p;
	for (size_t off = 0; off < n; off += Q4_BLOCK, in += Q4_BYTES) {
		size_t len = n - off < Q4_BLOCK ? n - off : Q4_BLOCK;
		q4_decode_block(in, len, y + off);
	}
}

const aprfs_codec aprfs_codec_q4 = {
    .name = "q4",
    .dtype = APR_DT_APR_Q4,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = Q4_BLOCK,
    .block_bytes = Q4_BYTES,
    .encode = q4_encode,
    .decode = q4_decode,
};
