/* selfcheck.c - the self-check every SIMD table passes before use: each kernel against
 * the scalar reference on probe data with odd tails, specials (NaN, inf, subnormals,
 * beyond +-65504) and every GGML block type, byte for byte. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/half.h"
#include "kernels/kernels_impl.h"
#include "quant/ggml_dequant.h"

enum { PROBE_N = 1024 + 37 }; /* odd tails for every vector width and block size */

static uint32_t probe_rand(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

static float f32_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* Values that have tripped SIMD code before: NaNs of both signs with payloads, infinities,
 * denormals, signed zeros, exact .5 ties against the probe scales (0.5 and, for q4, the
 * block scale 1 of a block whose maximum is 7), an all-zero q4/q4k block, huge values
 * (+-1e30, the f16 limit 65504 and the floats just beyond it, which the block codecs
 * clamp), an inf, a 1e30 and a NaN inside an otherwise ordinary q4k/q6k super-block,
 * then random magnitudes over the whole exponent range. */
static void probe_fill(float *x, size_t n)
{
	static const uint32_t special[] = {
	    0x7fc00000, 0xffc00001, 0x7f800001, 0xff800000, 0x7f800000, 0x00000001,
	    0x80000001, 0x007fffff, 0x00800000, 0x80000000, 0x00000000, 0x7f7fffff,
	    0xff7fffff, 0x3e800000, 0xbe800000, 0x3f400000, 0xbf400000, 0x3ec00000,
	    0x477ff000, 0x477fefff, 0x33000000, 0x33000001, 0x387fc000, 0x38800000,
	    0x477fe000, 0x477fe001, 0xc77fe001, 0x7149f2ca, 0xf149f2ca};
	uint32_t s = 0x12345678u;
	for (size_t i = 0; i < n; i++)
		x[i] = f32_of(probe_rand(&s)); /* random bits: every exponent, some NaNs */
	for (size_t i = 0; i < n / 3; i++)     /* a third of ordinary-sized values */
		x[i] = (float)((int)(probe_rand(&s) % 2001) - 1000) / 256.0f;
	memcpy(x + 64, special, sizeof(special));
	for (int i = 0; i < 32; i++) { /* q4 block 4: max 7, ties k + 0.5 */
		x[128 + i] = (float)(i % 15 - 7) + (i & 1 ? 0.5f : 0.0f);
		x[160 + i] = 0.0f; /* q4 block 5 all zero */
	}
	x[128] = 7.0f;
	memset(x + 256, 0, 256 * sizeof(float)); /* an all-zero q4k/q6k super-block */
	for (int i = 0; i < 16; i++)
		x[256 + 40 + i] = (float)i * 1e-30f; /* a nearly-zero q4k sub-block */
	x[230] = f32_of(0x7f800000); /* specials in the ordinary super-block 0 */
	x[231] = f32_of(0xf149f2ca);
	x[240] = f32_of(0xffc00000);
}

static int differ(const void *a, const void *b, size_t len, const char *what, char *why,
		  size_t whylen)
{
	const uint8_t *p = a, *q = b;
	for (size_t i = 0; i < len; i++) {
		if (p[i] != q[i]) {
			snprintf(why, whylen, "%s differs from scalar at byte %zu", what, i);
			return -1;
		}
	}
	return 0;
}

static int check_widen(const aprfs_kernels *k, const aprfs_kernels *r, char *why, size_t wl)
{
	enum { N = 65536 };
	uint16_t *h = malloc(N * sizeof(*h));
	float *a = malloc(N * sizeof(*a)), *b = malloc(N * sizeof(*b));
	int rc = h && a && b ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	for (int i = 0; !rc && i < N; i++)
		h[i] = (uint16_t)i;
	if (!rc) { /* every 16-bit pattern, at an odd offset and length */
		k->widen_f16(h + 1, N - 1, a);
		r->widen_f16(h + 1, N - 1, b);
		rc = differ(a, b, (N - 1) * sizeof(float), "widen_f16", why, wl);
	}
	if (!rc) {
		k->widen_bf16(h + 1, N - 1, a);
		r->widen_bf16(h + 1, N - 1, b);
		rc = differ(a, b, (N - 1) * sizeof(float), "widen_bf16", why, wl);
	}
	free(h);
	free(a);
	free(b);
	return rc;
}

static int check_stats(const aprfs_kernels *k, const aprfs_kernels *r, const float *x,
		       char *why, size_t wl)
{
	static const size_t lens[] = {0, 1, 15, 17, 100, PROBE_N - 1, PROBE_N};
	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		float ma =
		    k->maxabs(x + 200, lens[i] > PROBE_N - 200 ? PROBE_N - 200 : lens[i]);
		float mb =
		    r->maxabs(x + 200, lens[i] > PROBE_N - 200 ? PROBE_N - 200 : lens[i]);
		uint64_t ca = 1, cb = 1; /* sumabs adds to the count */
		double sa = k->sumabs(x + 1, lens[i] - (lens[i] == PROBE_N), &ca);
		double sb = r->sumabs(x + 1, lens[i] - (lens[i] == PROBE_N), &cb);
		if (differ(&ma, &mb, sizeof(ma), "maxabs", why, wl) ||
		    differ(&sa, &sb, sizeof(sa), "sumabs", why, wl) ||
		    differ(&ca, &cb, sizeof(ca), "sumabs count", why, wl))
			return -1;
	}
	return 0;
}

/* One slot: encode the probe with both tables, then decode the scalar bytes and some
 * arbitrary bytes with both. */
static int check_slot(const aprfs_kernels *k, const aprfs_kernels *r, int slot,
		      const aprfs_qparams *p, const float *x, char *why, size_t wl)
{
	const aprfs_codec *c = aprfs_codecs[slot];
	size_t bytes = (size_t)aprfs_codec_payload_size(c, PROBE_N, p) + 64;
	uint8_t *ea = calloc(1, bytes), *eb = calloc(1, bytes);
	float *da = calloc(PROBE_N, sizeof(float)), *db = calloc(PROBE_N, sizeof(float));
	char what[64];
	int rc = ea && eb && da && db ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	if (!rc) {
		k->encode[slot](x, PROBE_N, p, ea);
		r->encode[slot](x, PROBE_N, p, eb);
		snprintf(what, sizeof(what), "%s encode", c->name);
		rc = differ(ea, eb, bytes, what, why, wl);
	}
	for (int pass = 0; !rc && pass < 2; pass++) {
		if (pass == 1) { /* arbitrary bytes: NaN scales, odd codes */
			uint32_t s = 0x9e3779b9u;
			for (size_t i = 0; i < bytes; i++)
				eb[i] = (uint8_t)probe_rand(&s);
		}
		k->decode[slot](eb, PROBE_N, p, da);
		r->decode[slot](eb, PROBE_N, p, db);
		snprintf(what, sizeof(what), "%s decode", c->name);
		rc = differ(da, db, PROBE_N * sizeof(float), what, why, wl);
	}
	free(ea);
	free(eb);
	free(da);
	free(db);
	return rc;
}

/* f16 scale bits a dequantizer must treat exactly as the reference does: NaNs of both
 * signs, quiet and signalling, with payloads; infinities; signed zeros; subnormals; the
 * largest finite values; ordinary ones. */
static const uint16_t probe_f16[] = {0x7e00, 0xfe00, 0x7c01, 0xfd55, 0x7fff, 0xffff, 0x7c00,
				     0xfc00, 0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff,
				     0x0400, 0x7bff, 0xfbff, 0x3c00, 0xb555, 0x2e66};
enum { PROBE_NF16 = sizeof(probe_f16) / sizeof(probe_f16[0]) };

static void put_f16(uint8_t *p, uint16_t h)
{
	p[0] = (uint8_t)h;
	p[1] = (uint8_t)(h >> 8);
}

/* nb blocks of type t: block b < 256 has every byte b (so every element takes every code,
 * every packed scale every value) under finite normal f16 scales; the blocks after it are
 * random bytes whose scales cycle through probe_f16 (d and the second scale
 * independently, so both are NaN at once in some). */
static void probe_dq_fill(const aprfs_dq_type *t, uint8_t *p, size_t nb)
{
	uint32_t s = 0x2545f491u;
	for (size_t b = 0; b < nb; b++, p += t->bytes) {
		for (size_t i = 0; i < t->bytes; i++)
			p[i] = b < 256 ? (uint8_t)b : (uint8_t)probe_rand(&s);
		for (int f = 0; f < t->nscale; f++) {
			const size_t j = f ? b * 7 + 3 : b;
			const uint16_t ordinary =
			    (uint16_t)(0x0400 + j * 0x1d3 % 0x7800) | (j & 2 ? 0x8000 : 0);
			put_f16(p + t->scale_off[f],
				b < 256 ? ordinary
					: probe_f16[(f ? b * 5 + 2 : b) % PROBE_NF16]);
		}
	}
}

/* Every dequantizer on the probe blocks, whole and in odd counts from an unaligned
 * address; nothing may be written past the last block. */
static int check_dequant(const aprfs_kernels *k, const aprfs_kernels *r, char *why, size_t wl)
{
	enum { NB = 256 + 3 * PROBE_NF16 + 1, MAXBB = 210, SLACK = 16 };
	static const size_t counts[] = {0, 1, 2, 3, 5, 17, NB};
	uint8_t *in = malloc(NB * MAXBB + 1);
	float *a = malloc((NB * 256 + SLACK) * sizeof(float));
	float *b = malloc((NB * 256 + SLACK) * sizeof(float));
	int rc = in && a && b ? 0 : -1;
	if (rc)
		snprintf(why, wl, "out of memory");
	for (int s = 0; !rc && s < APRFS_DQ_COUNT; s++) {
		const aprfs_dq_type *t = &aprfs_dq_types[s];
		probe_dq_fill(t, in + 1, NB);
		for (size_t c = 0; !rc && c < sizeof(counts) / sizeof(counts[0]); c++) {
			const size_t nb = counts[c],
				     len = (nb * t->elems + SLACK) * sizeof(float);
			const uint8_t *p = in + 1 + (NB - nb) * t->bytes; /* the last nb */
			memset(a, 0x5a, len);
			memset(b, 0x5a, len);
			k->dequant[s](p, nb, a);
			r->dequant[s](p, nb, b);
			rc =
			    differ(a, b, len, aprfs_kernel_name(APRFS_KN_DEQUANT + s), why, wl);
		}
	}
	free(in);
	free(a);
	free(b);
	return rc;
}

int aprfs_kernels_selfcheck(const aprfs_kernels *k, char *why, size_t whylen)
{
	const aprfs_kernels *r = aprfs_kernels_scalar();
	static const aprfs_qparams params[] = {{.scale = 0.5f, .nf4_block = 64},
					       {.scale = 0.0f, .nf4_block = 6},
					       {.scale = 3.0e-3f, .nf4_block = 32}};
	float *x = malloc(PROBE_N * sizeof(float));
	int rc = x ? 0 : -1;
	if (rc)
		snprintf(why, whylen, "out of memory");
	if (!rc) {
		probe_fill(x, PROBE_N);
		rc = check_widen(k, r, why, whylen);
	}
	if (!rc)
		rc = check_stats(k, r, x, why, whylen);
	for (int s = 0; !rc && s < APRFS_K_COUNT; s++)
		for (size_t i = 0; !rc && i < sizeof(params) / sizeof(params[0]); i++)
			rc = check_slot(k, r, s, &params[i], x, why, whylen);
	if (!rc)
		rc = check_dequant(k, r, why, whylen);
	free(x);
	return rc;
}
