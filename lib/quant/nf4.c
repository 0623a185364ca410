/* nf4.c - the NF4 codec (aprfs extension, dtype 130): blocks of B elements (B from the
 * config) as an f32 absmax then B/2 bytes of 4-bit indices into the QLoRA NormalFloat4
 * code book, element 2k in the low nibble. "Nearest level" is fixed by f32 midpoints. */
#include <math.h>
#include <string.h>

#include "format/dtype.h"
#include "quant/codec.h"

const float aprfs_nf4_levels[16] = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

enum { NF4_ZERO_CODE = 7 };

/* Midpoints computed in f32 so every implementation compares against the same 15
 * numbers; a value exactly on a midpoint goes to the lower level. */
void aprfs_nf4_midpoints(float mid[15])
{
	for (int i = 0; i < 15; i++)
		mid[i] = (aprfs_nf4_levels[i] + aprfs_nf4_levels[i + 1]) / 2.0f;
}

static uint8_t nf4_code(float v, const float mid[15])
{
	if (isnan(v))
		return NF4_ZERO_CODE;
	uint8_t c = 0;
	for (int i = 0; i < 15; i++)
		c += mid[i] < v;
	return c;
}

static void put_f32le(uint8_t *out, float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	for (int i = 0; i < 4; i++)
		out[i] = (uint8_t)(u >> (8 * i));
}

static float get_f32le(const uint8_t *in)
{
	uint32_t u = (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 |
		     (uint32_t)in[3] << 24;
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* n <= B; n < B only for malformed input (the planner falls back to q8 when B does not
 * divide the tensor), and then the missing nibbles stay zero like q4's. Values are
 * sanitised on the fly (codec.h's aprfs_block_sanitize), for the absmax and the codes
 * alike, so absmax is finite and at most 65504. */
static void nf4_encode_block(const float *x, size_t n, size_t bsize, const float mid[15],
			     uint8_t *out)
{
	float m = 0.0f;
	for (size_t i = 0; i < n; i++) {
		float a = fabsf(aprfs_block_sanitize(x[i]));
		if (a > m)
			m = a;
	}
	put_f32le(out, m);
	memset(out + 4, 0, bsize / 2);
	for (size_t i = 0; i < n; i++) {
		uint8_t c =
		    m == 0.0f ? NF4_ZERO_CODE : nf4_code(aprfs_block_sanitize(x[i]) / m, mid);
		out[4 + i / 2] |= (uint8_t)(c << (4 * (i & 1)));
	}
}

/* An odd or zero B cannot be laid out (and 0 would never advance): write nothing. */
static int nf4_block_ok(const aprfs_qparams *p)
{
	return p && p->nf4_block && !(p->nf4_block & 1);
}

static void nf4_encode(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	if (!nf4_block_ok(p))
		return;
	size_t b = p->nf4_block;
	float mid[15];
	aprfs_nf4_midpoints(mid);
	for (size_t off = 0; off < n; off += b, out += 4 + b / 2) {
		size_t len = n - off < b ? n - off : b;
		nf4_encode_block(x + off, len, b, mid, out);
	}
}

static void nf4_decode(const uint8_t *in, size_t n, const aprfs_qparams *p, float *y)
{
	if (!nf4_block_ok(p))
		return;
	size_t b = p->nf4_block;
	for (size_t off = 0; off < n; off += b, in += 4 + b / 2) {
		float m = get_f32le(in);
		size_t len = n - off < b ? n - off : b;
		for (size_t i = 0; i < len; i++)
			y[off + i] =
			    aprfs_nf4_levels[(in[4 + i / 2] >> (4 * (i & 1))) & 0xf] * m;
	}
}

const aprfs_codec aprfs_codec_nf4 = {
    .name = "nf4",
    .dtype = APR_DT_NF4,
    .stat = APRFS_STAT_NONE,
    .prefix_bytes = 0,
    .block_elems = 0,
    .block_bytes = 0,
    .encode = nf4_encode,
    .decode = nf4_decode,
};
