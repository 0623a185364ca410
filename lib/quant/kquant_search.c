/* kquant_search.c - the non-inline helpers of kquant_search.h: the NaN/inf input rule
 * of the k-quant encoders, the block absmax that picks each sub-block's power-of-two
 * frame, and the block loops both k-quant codecs run. */
#include <math.h>

#include "quant/codec.h"
#include "quant/kquant_search.h"

void kq_sanitize(const float *x, size_t n, float *out)
{
	for (size_t i = 0; i < n; i++)
		out[i] = aprfs_block_sanitize(x[i]);
}

float kq_absmax(const float *x, int n)
{
	float m = 0.0f;
	for (int i = 0; i < n; i++)
		m = fabsf(x[i]) > m ? fabsf(x[i]) : m;
	return m;
}

void kq_encode_blocks(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out,
		      size_t block_bytes, kq_encode_block_fn encode_block)
{
	float buf[256];
	for (size_t at = 0; at < n; at += 256, out += block_bytes) {
		size_t len = n - at < 256 ? n - at : 256;
		kq_sanitize(x + at, len, buf);
		memset(buf + len, 0, (256 - len) * sizeof(float));
		encode_block(buf, len == 256 ? kq_block_weights(p, at) : NULL, out);
	}
}

void kq_decode_blocks(const uint8_t *in, size_t n, float *y, size_t block_bytes,
		      kq_decode_block_fn decode_block)
{
	float buf[256];
	for (size_t at = 0; at < n; at += 256, in += block_bytes) {
		if (n - at >= 256) {
			decode_block(in, y + at);
		} else {
			decode_block(in, buf);
			memcpy(y + at, buf, (n - at) * sizeof(float));
		}
	}
}
