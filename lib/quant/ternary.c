/* ternary.c - the TERNARY codec (aprfs extension, dtype 131): 2-bit trits, four per byte
 * (element i at bits 2(i mod 4) of byte i/4; 0 = 0, 1 = +1, 2 = -1), trit =
 * clamp(round(x / alpha), -1, 1) with one f32 alpha = mean|x| stored by the planner. */
#include <math.h>

#include "format/dtype.h"
#include "quant/codec.h"

static uint8_t trit_code(float x, float alpha)
{
	if (alpha == 0.0f)
		return 0;
	float q = roundf(x / alpha); /* NaN compares false both ways: code 0 */
	if (q >= 1.0f)
		return 1;
	if (q <= -1.0f)
		return 2;
	return 0;
}

/* Code 3 never gets written; a corrupt one decodes as 0 rather than as garbage. */
static float trit_value(unsigned code)
{
	return code == 1 ? 1.0f : code == 2 ? -1.0f : 0.0f;
}

static void ternary_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	float alpha = p->scale;
	for (size_t i = 0; i < n; i += 4) {
		uint8_t b = 0;
		for (size_t j = 0; j < 4 && i + j < n; j++) /* short last byte: zero trits */
			b |= (uint8_t)(trit_code(x[i + j], alpha) << (2 * j));
		out[i / 4] = b;
	}
}

static void ternary_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	float alpha = p->scale;
	for (size_t i = 0; i < n; i++)
		y[i] = alpha * trit_value((in[i / 4] >> (2 * (i % 4))) & 3u);
}

const aprfs_codec aprfs_codec_ternary = {
    .name = "ternary",
    .dtype = APR_DT_TERNARY,
    .stat = APRFS_STAT_MEANABS,
    .prefix_bytes = 4,
    .block_elems = 4,
    .block_bytes = 1,
    .encode = ternary_encode,
    .decode = ternary_decode,
};
