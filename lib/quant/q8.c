/* q8.c - the APR_Q8 codec: one int8 per element, q = round(x / s) clamped to +-127, with
 * one f32 scale s = maxabs/127 for the whole tensor. The planner writes s as the 4-byte
 * payload prefix; encode and decode here only see it through qparams. */
#include <math.h>

#include "format/dtype.h"
#include "quant/codec.h"

/* Division, not multiplication by 1/s: the upstream Rust writer divides, and x * (1/s)
 * rounds differently for some x, which would flip a few codes. A NaN quotient becomes 0,
 * as Rust's saturating `as i8` makes it. */
static int8_t q8_code(float x, float s)
{
	float q = roundf(x / s);
	if (isnan(q))
		return 0;
	if (q > 127.0f)
		return 127;
	if (q < -127.0f)
		return -127;
	return (int8_t)q;
}

static void q8_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	float s = p->scale;
	for (size_t i = 0; i < n; i++)
		out[i] = (uint8_t)q8_code(x[i], s);
}

static void q8_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	float s = p->scale;
	for (size_t i = 0; i < n; i++)
		y[i] = s * (float)(int8_t)in[i];
}

const aprfs_codec aprfs_codec_q8 = {
    .name = "q8",
    .dtype = APR_DT_APR_Q8,
    .stat = APRFS_STAT_MAXABS,
    .prefix_bytes = 4,
    .block_elems = 1,
    .block_bytes = 1,
    .encode = q8_encode,
    .decode = q8_decode,
};
