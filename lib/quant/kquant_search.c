/* kquant_search.c - the non-inline helpers of kquant_search.h: the NaN/inf input rule
 * of the k-quant encoders and the block absmax that picks each sub-block's power-of-two
 * frame. */
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
