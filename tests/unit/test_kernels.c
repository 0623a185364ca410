/* test_kernels.c - every kernel of every ISA table this CPU can run, compared bit for bit
 * with the scalar reference on random data, edge cases and odd lengths; the GGML block
 * dequantizers on random, every-code and special-scale blocks in odd counts; the fused
 * bf16/f16 encoders; the dispatcher's APRFS_ISA override, refusal and self-check. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/half.h"
#include "check.h"
#include "kernels/kernels.h"
#include "quant/ggml_dequant.h"

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static float f32_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

static float gauss(void)
{
	double a = ((double)(rnd() >> 11) + 1.0) * 0x1p-53, b = (double)(rnd() >> 11) * 0x1p-53;
	return (float)(sqrt(-2.0 * log(a)) * cos(2.0 * M_PI * b));
}

static const uint32_t edge_bits[] = {
    0x7fc00000, 0xffc00000, 0x7f800001, 0xffbfffff, 0x7fffffff, 0x7f800000, 0xff800000,
    0x00000000, 0x80000000, 0x00000001, 0x80000001, 0x007fffff, 0x00800000, 0x7f7fffff,
    0xff7fffff, 0x3f000000, 0xbf000000, 0x3fc00000, 0xbfc00000, 0x40200000, 0x477ff000,
    0x477fefff, 0x477fe000, 0x33000000, 0x33000001, 0x387fc000, 0x38800000, 0x3effffff,
    0x3f7fffff, 0x4b000000, 0x4b400001, 0xcb400000, 0x1f800000, 0x20000000, 0x477fe000,
    0x477fe001, 0xc77fe001, 0x7149f2ca, 0xf149f2ca};
#define NEDGE (sizeof(edge_bits) / sizeof(edge_bits[0]))

/* Specials the block codecs sanitise (NaN, +-inf, beyond +-65504) and q8/ternary skip. */
static const uint32_t special_bits[] = {0x7fc00000, 0xffc00001, 0x7f800000, 0xff800000,
					0x7149f2ca, 0xf149f2ca, 0x477fe001, 0xc77fe001,
					0x477ff000, 0x7f7fffff, 0x7f800001, 0xff7fffff};
#define NSPECIAL (sizeof(special_bits) / sizeof(special_bits[0]))

enum { NDATA = 8 };

/* Data set kinds: gaussian at 3 scales, random bits, ties, edge-laden, ordinary blocks
 * with a special value in every third 32-element block, zeros. */
static void fill(float *x, size_t n, int kind)
{
	static const float scale[] = {1.0f, 1e-38f, 3e30f};
	for (size_t i = 0; i < n; i++) {
		switch (kind) {
		case 0:
		case 1:
		case 2: x[i] = gauss() * scale[kind]; break;
		case 3: x[i] = f32_of((uint32_t)rnd()); break;
		case 4: /* halves and quarters: exact .5 ties for scales 0.5, 1 and block ones
			 */
			x[i] = (float)((int)(rnd() % 33) - 16) / (float)(1 << (rnd() % 3));
			break;
		case 5: x[i] = rnd() % 4 ? gauss() : f32_of(edge_bits[rnd() % NEDGE]); break;
		case 6:
			x[i] = i % 96 == 40 ? f32_of(special_bits[rnd() % NSPECIAL]) : gauss();
			break;
		default: x[i] = 0.0f;
		}
	}
	if (kind == 4 && n > 40)
		memset(x + 32, 0, 8 * sizeof(float));
}

static const size_t lens[] = {1,   2,	3,   4,	  15,	16,	  17,	31,  32,
			      33,  63,	64,  65,  127,	255,	  256,	257, 511,
			      512, 513, 767, 768, 1024, 4096 + 3, 20000};
#define NLENS (sizeof(lens) / sizeof(lens[0]))
#define MAXN  20000

static float *X;
static uint8_t *EA, *EB;
static float *DA, *DB;

static size_t first_diff(const void *a, const void *b, size_t len)
{
	const uint8_t *p = a, *q = b;
	for (size_t i = 0; i < len; i++)
		if (p[i] != q[i])
			return i;
	return (size_t)-1;
}

static void test_widen(const aprfs_kernels *k, const aprfs_kernels *r)
{
	uint16_t *h = malloc(65536 * 2 + 64);
	for (int i = 0; i < 65536; i++)
		h[i] = (uint16_t)i;
	static const size_t wl[] = {0, 1, 7, 15, 16, 17, 33, 65535};
	for (size_t off = 0; off < 3; off++) {
		for (size_t j = 0; j < sizeof(wl) / sizeof(wl[0]); j++) {
			size_t n = wl[j] > 65536 - off ? 65536 - off : wl[j];
			k->widen_f16(h + off, n, DA);
			r->widen_f16(h + off, n, DB);
			CHECK(first_diff(DA, DB, n * 4) == (size_t)-1, "%s widen_f16 n=%zu",
			      k->isa, n);
			k->widen_bf16(h + off, n, DA);
			r->widen_bf16(h + off, n, DB);
			CHECK(first_diff(DA, DB, n * 4) == (size_t)-1, "%s widen_bf16 n=%zu",
			      k->isa, n);
		}
	}
	free(h);
}

/* f32 -> f16 / bf16 on every f16 value plus offsets around its rounding points (ties to
 * even both ways, just above and below), and random bit patterns. */
static void test_narrow(const aprfs_kernels *k, const aprfs_kernels *r)
{
	static const int32_t delta[] = {0, 0x1000, 0xfff, 0x1001, -0x1000, 0x8000, 0x7fff, 1};
	size_t n = 0;
	for (uint32_t h = 0; h < 65536 && n + 8 <= MAXN; h += 7) {
		uint32_t u;
		float f = aprfs_f16_to_f32((uint16_t)h);
		memcpy(&u, &f, 4);
		for (int d = 0; d < 8; d++)
			X[n++] = f32_of(u + (uint32_t)delta[d]);
	}
	for (int round = 0; round < 2; round++) {
		for (int s = APRFS_K_F16; s <= APRFS_K_BF16; s++) {
			k->encode[s](X, n, NULL, EA);
			r->encode[s](X, n, NULL, EB);
			size_t at = first_diff(EA, EB, 2 * n);
			CHECK(at == (size_t)-1, "%s narrow slot %d byte %zu (x = %a)", k->isa,
			      s, at, at == (size_t)-1 ? 0.0 : (double)X[at / 2]);
		}
		for (size_t i = 0; i < MAXN; i++)
			X[i] = f32_of((uint32_t)rnd());
		n = MAXN - 5;
	}
}

static void test_stats(const aprfs_kernels *k, const aprfs_kernels *r)
{
	for (int kind = 0; kind < NDATA; kind++) {
		fill(X, MAXN, kind);
		for (size_t j = 0; j < NLENS; j++) {
			size_t n = lens[j] - (lens[j] == MAXN);
			float ma = k->maxabs(X + 1, n), mb = r->maxabs(X + 1, n);
			uint64_t ca = 3, cb = 3; /* sumabs adds to what is there */
			double sa = k->sumabs(X + 1, n, &ca), sb = r->sumabs(X + 1, n, &cb);
			CHECK(memcmp(&ma, &mb, 4) == 0, "%s maxabs kind %d n %zu: %g vs %g",
			      k->isa, kind, n, ma, mb);
			CHECK(memcmp(&sa, &sb, 8) == 0,
			      "%s sumabs kind %d n %zu: %.17g vs %.17g", k->isa, kind, n, sa,
			      sb);
			CHECK(ca == cb, "%s sumabs count kind %d n %zu: %llu vs %llu", k->isa,
			      kind, n, (unsigned long long)ca, (unsigned long long)cb);
			CHECK(isfinite(ma) && isfinite(sa),
			      "%s kind %d n %zu: maxabs %g sumabs %g", k->isa, kind, n, ma, sa);
		}
	}
}

static void one_codec(const aprfs_kernels *k, const aprfs_kernels *r, int slot, const float *x,
		      size_t n, const aprfs_qparams *p, const char *what)
{
	const aprfs_codec *c = aprfs_codecs[slot];
	size_t bytes = (size_t)aprfs_codec_payload_size(c, n, p) - c->prefix_bytes;
	memset(EA, 0xa5, bytes + 16);
	memset(EB, 0xa5, bytes + 16);
	k->encode[slot](x, n, p, EA);
	r->encode[slot](x, n, p, EB);
	size_t at = first_diff(EA, EB, bytes + 16);
	CHECK(at == (size_t)-1, "%s %s encode %s n=%zu scale=%g B=%u: byte %zu of %zu", k->isa,
	      c->name, what, n, p->scale, p->nf4_block, at, bytes);
	k->decode[slot](EB, n, p, DA);
	r->decode[slot](EB, n, p, DB);
	at = first_diff(DA, DB, n * 4);
	CHECK(at == (size_t)-1, "%s %s decode %s n=%zu: byte %zu", k->isa, c->name, what, n,
	      at);
}

static void test_codecs(const aprfs_kernels *k, const aprfs_kernels *r)
{
	static const uint32_t blocks[] = {2, 6, 16, 32, 64, 66, 4096};
	for (int kind = 0; kind < NDATA; kind++) {
		fill(X, MAXN, kind);
		char what[32];
		snprintf(what, sizeof(what), "data %d", kind);
		for (size_t j = 0; j < NLENS; j++) {
			size_t n = lens[j];
			aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(r->maxabs(X, n)),
					   .nf4_block = 64};
			for (int s = 0; s < APRFS_K_COUNT; s++) {
				if (s == APRFS_K_TERNARY) {
					uint64_t nf = 0;
					double sum = r->sumabs(X, n, &nf);
					p.scale = aprfs_ternary_alpha_from_sum(sum, nf);
				}
				one_codec(k, r, s, X, n, &p, what);
			}
			for (size_t b = 0; b < sizeof(blocks) / sizeof(blocks[0]); b++) {
				p.nf4_block = blocks[b];
				one_codec(k, r, APRFS_K_NF4, X, n, &p, what);
			}
			static const float fixed[] = {0.5f,	0.0f,	   1.0f,  1e-30f,
						      INFINITY, NAN,	   -0.0f, -INFINITY,
						      -NAN,	0x1p-149f, -0.75f};
			for (size_t f = 0; f < sizeof(fixed) / sizeof(fixed[0]); f++) {
				p.scale = fixed[f];
				one_codec(k, r, APRFS_K_Q8, X, n, &p, what);
				one_codec(k, r, APRFS_K_TERNARY, X, n, &p, what);
			}
		}
	}
	/* Decoders on arbitrary bytes: NaN scales, denormal scales, code 3 trits. */
	for (size_t i = 0; i < MAXN * 4; i++)
		EB[i] = (uint8_t)rnd();
	aprfs_qparams p = {.scale = 0.75f, .nf4_block = 32};
	for (int s = 0; s < APRFS_K_COUNT; s++) {
		k->decode[s](EB, MAXN, &p, DA);
		r->decode[s](EB, MAXN, &p, DB);
		CHECK(first_diff(DA, DB, MAXN * 4) == (size_t)-1,
		      "%s decode slot %d random bytes", k->isa, s);
	}
}

/* Specials never spread, on this ISA's table: in a tensor of Gaussian values with special
 * values at a few places, every block codec's blocks without a special are byte for byte
 * the clean tensor's, and everything decodes to finite values; q8's maxabs and ternary's
 * sum ignore NaN/inf (the same float, the same double as the clean tensor's, the finite
 * count short by the specials) and +-inf encode as +-127, NaN as 0. */
static void test_specials(const aprfs_kernels *k)
{
	enum { N = 8192, NPOS = 10 };
	float *clean = malloc(N * sizeof(float)), *x = malloc(N * sizeof(float));
	uint8_t *ec = malloc(N * 4), *ed = malloc(N * 4);
	size_t pos[NPOS];
	for (size_t i = 0; i < N; i++)
		clean[i] = gauss();
	memcpy(x, clean, N * sizeof(float));
	for (size_t j = 0; j < NPOS; j++) {
		pos[j] = 800 * j + j * 37 % 256;
		x[pos[j]] = f32_of(special_bits[j % NSPECIAL]);
	}
	static const int slots[] = {APRFS_K_Q4, APRFS_K_Q4K, APRFS_K_Q6K, APRFS_K_NF4};
	for (size_t si = 0; si < 4; si++) {
		const aprfs_codec *c = aprfs_codecs[slots[si]];
		for (uint32_t bsz = 6; bsz <= 64; bsz += 58) { /* nf4 B = 6 and 64 */
			aprfs_qparams p = {.scale = 1.0f, .nf4_block = bsz};
			size_t be = (size_t)aprfs_codec_block_elems(c, &p),
			       bb = (size_t)aprfs_codec_block_bytes(c, &p), n = N / be * be;
			k->encode[slots[si]](clean, n, &p, ec);
			k->encode[slots[si]](x, n, &p, ed);
			size_t other = 0;
			for (size_t b = 0; b < n / be; b++) {
				int touched = 0;
				for (size_t j = 0; j < NPOS; j++)
					touched |= pos[j] / be == b;
				other += !touched && memcmp(ec + b * bb, ed + b * bb, bb) != 0;
			}
			k->decode[slots[si]](ed, n, &p, DA);
			size_t nonfinite = 0;
			for (size_t i = 0; i < n; i++)
				nonfinite += !isfinite(DA[i]);
			CHECK(other == 0 && nonfinite == 0,
			      "%s %s B=%u: %zu clean blocks changed, %zu non-finite values",
			      k->isa, c->name, bsz, other, nonfinite);
			if (slots[si] != APRFS_K_NF4)
				break;
		}
	}
	/* q8 and ternary: NaN/inf only (a finite 1e30 rightly counts in both). */
	memcpy(x, clean, N * sizeof(float));
	for (size_t j = 0; j < NPOS; j++) {
		clean[pos[j]] = 0.0f;
		x[pos[j]] = f32_of(special_bits[j % 4]);
	}
	float md = k->maxabs(x, N), mc = k->maxabs(clean, N);
	uint64_t nd = 0, nc = 0;
	double sd = k->sumabs(x, N, &nd), sc = k->sumabs(clean, N, &nc);
	CHECK(md == mc && isfinite(md) && md > 1.0f, "%s maxabs %g with specials, %g without",
	      k->isa, md, mc);
	CHECK(sd == sc && nd == N - NPOS && nc == N, "%s sumabs %.17g/%llu vs %.17g/%llu",
	      k->isa, sd, (unsigned long long)nd, sc, (unsigned long long)nc);
	aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(md), .nf4_block = 64};
	k->encode[APRFS_K_Q8](clean, N, &p, ec);
	k->encode[APRFS_K_Q8](x, N, &p, ed);
	size_t other = 0, wrong = 0;
	for (size_t i = 0; i < N; i++) {
		int sp = 0;
		for (size_t j = 0; j < NPOS; j++)
			sp |= pos[j] == i;
		if (!sp) {
			other += ec[i] != ed[i];
			continue;
		}
		uint8_t want = isnan(x[i]) ? 0 : x[i] > 0 ? 127 : 0x81;
		wrong += ed[i] != want;
	}
	CHECK(isfinite(p.scale) && other == 0 && wrong == 0,
	      "%s q8 with NaN/inf: scale %g, %zu other codes changed, %zu specials wrong",
	      k->isa, p.scale, other, wrong);
	free(clean);
	free(x);
	free(ec);
	free(ed);
}

static const uint16_t f16_edges[] = {0x7c00, 0xfc00, 0x7e01, 0xfd55, 0x7c01, 0x0000,
				     0x8000, 0x0001, 0x8001, 0x03ff, 0x0400, 0x8400,
				     0x7bff, 0xfbff, 0x3c00, 0xbc00, 0x3555};
#define NF16E (sizeof(f16_edges) / sizeof(f16_edges[0]))

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void decode_both(const aprfs_kernels *k, const aprfs_kernels *r, int slot, size_t n,
			const aprfs_qparams *p, const char *what)
{
	memset(DA, 0x5a, (n + 16) * 4);
	memset(DB, 0x5a, (n + 16) * 4);
	k->decode[slot](EB, n, p, DA);
	r->decode[slot](EB, n, p, DB);
	size_t at = first_diff(DA, DB, (n + 16) * 4);
	CHECK(at == (size_t)-1, "%s decode slot %d %s n=%zu B=%u: byte %zu", k->isa, slot, what,
	      n, p->nf4_block, at);
}

/* Decoders on random codes whose scales are forced through every f16 / f32 class: NaNs
 * of both signs with payloads (quiet and signalling), infinities, signed zeros,
 * subnormals, q4's 6.1e-5 usability edge (0x03ff is below it, 0x0400 above), the largest
 * finite values; q4k's d and dmin are set independently, so both can be NaN at once. */
static void test_decode_edges(const aprfs_kernels *k, const aprfs_kernels *r)
{
	static const uint32_t f32_edges[] = {
	    0x7fc00000, 0xffc00001, 0x7f800001, 0xff800000, 0x7f800000, 0x00000000, 0x80000000,
	    0x00000001, 0x80000001, 0x7f7fffff, 0x3f800000, 0xbf800000, 0x00800000, 0x7fa00005};
	static const size_t ns[] = {MAXN, MAXN - 7, 256 * 3 + 40, 33};
	aprfs_qparams p = {.scale = 0.75f, .nf4_block = 32};
	for (size_t t = 0; t < sizeof(ns) / sizeof(ns[0]); t++) {
		size_t n = ns[t];
		for (size_t i = 0; i < MAXN * 4; i++)
			EB[i] = (uint8_t)rnd();
		for (size_t b = 0; b * 18 < MAXN * 4; b++)
			put16(EB + 18 * b, f16_edges[b % NF16E]);
		decode_both(k, r, APRFS_K_Q4, n, &p, "forced q4 scales");
		for (size_t b = 0; b * 144 + 4 < MAXN * 4; b++) {
			put16(EB + 144 * b, f16_edges[b % NF16E]);
			put16(EB + 144 * b + 2, f16_edges[(b * 7 + 3) % NF16E]);
		}
		decode_both(k, r, APRFS_K_Q4K, n, &p, "forced q4k d/dmin");
		for (size_t b = 0; b * 210 + 210 <= MAXN * 4; b++)
			put16(EB + 210 * b + 208, f16_edges[b % NF16E]);
		decode_both(k, r, APRFS_K_Q6K, n, &p, "forced q6k d");
		static const uint32_t blocks[] = {2, 6, 32, 64, 66, 4096};
		for (size_t bi = 0; bi < sizeof(blocks) / sizeof(blocks[0]); bi++) {
			p.nf4_block = blocks[bi];
			size_t bb = 4 + blocks[bi] / 2;
			for (size_t b = 0; b * bb + 4 <= MAXN * 4; b++) {
				uint32_t u = f32_edges[b % (sizeof(f32_edges) / 4)];
				memcpy(EB + bb * b, &u, 4);
			}
			decode_both(k, r, APRFS_K_NF4, n, &p, "forced nf4 absmax");
		}
		p.nf4_block = 32;
		for (size_t e = 0; e < sizeof(f32_edges) / 4; e++) {
			p.scale = f32_of(f32_edges[e]);
			decode_both(k, r, APRFS_K_Q8, n, &p, "q8 edge scale");
		}
		p.scale = 0.75f;
	}
}

/* ---- GGML block dequantizers ---- */

/* f16 scales of every class: NaNs of both signs, quiet and signalling, payloads; inf;
 * signed zeros; subnormals; the largest finite; ordinary. */
static const uint16_t dq_special[] = {0x7e00, 0xfe00, 0x7c01, 0xfc01, 0x7e5a, 0xffff, 0x7c00,
				      0xfc00, 0x0000, 0x8000, 0x0001, 0x8001, 0x03ff, 0x83ff,
				      0x0400, 0x7bff, 0xfbff, 0x3c00, 0xb800, 0x1e66};
#define NDQS (sizeof(dq_special) / sizeof(dq_special[0]))

static int f16_is_nan(uint16_t h)
{
	return (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
}

/* A finite, normal f16 of either sign. */
static uint16_t f16_ordinary(void)
{
	return (uint16_t)(0x0400 + rnd() % 0x7800) | (uint16_t)(rnd() & 0x8000);
}

/* nb blocks of type t at p. kind 0: random bytes, scales through dq_special (d and the
 * second scale drawn independently); 1: block b has every byte b % 256 (every element
 * takes every code, every packed scale/min every value) under ordinary scales; 2: random
 * bytes under ordinary scales (GGUF's usual case). Returns the blocks whose d and second
 * scale are both NaN. */
static size_t dq_fill(const aprfs_dq_type *t, uint8_t *p, size_t nb, int kind)
{
	size_t both_nan = 0;
	for (size_t b = 0; b < nb; b++, p += t->bytes) {
		for (size_t i = 0; i < t->bytes; i++)
			p[i] = kind == 1 ? (uint8_t)b : (uint8_t)rnd();
		uint16_t h[2] = {0, 0};
		for (int f = 0; f < t->nscale; f++) {
			h[f] = kind ? f16_ordinary() : dq_special[rnd() % NDQS];
			put16(p + t->scale_off[f], h[f]);
		}
		both_nan += t->nscale == 2 && f16_is_nan(h[0]) && f16_is_nan(h[1]);
	}
	return both_nan;
}

/* Each dequantizer against the scalar one on every kind of block, in counts 0 .. many
 * from aligned and unaligned addresses; not one float written past the last block. */
static void test_dequant(const aprfs_kernels *k, const aprfs_kernels *r)
{
	enum { ELEMS = 131072, SLACK = 16 };
	static const size_t counts[] = {0,  1,	2,  3,	4,  5,	7,   8,
					15, 16, 17, 31, 33, 64, 100, 257};
	uint8_t *in = malloc(ELEMS / 32 * 34 + 4096);
	float *a = malloc((ELEMS + 256 * 4 + SLACK) * sizeof(float));
	float *b = malloc((ELEMS + 256 * 4 + SLACK) * sizeof(float));
	for (int s = 0; s < APRFS_DQ_COUNT; s++) {
		const aprfs_dq_type *t = &aprfs_dq_types[s];
		const size_t many = ELEMS / t->elems + 3;
		size_t both_nan = 0, runs = 0, bad = 0;
		for (int kind = 0; kind < 3; kind++) {
			for (size_t c = 0; c <= sizeof(counts) / sizeof(counts[0]); c++) {
				const size_t nb =
				    c < sizeof(counts) / sizeof(counts[0]) ? counts[c] : many;
				const size_t off = c % 4, len = (nb * t->elems + SLACK) * 4;
				if (nb * t->bytes + off > ELEMS / 32 * 34 + 4096)
					continue;
				both_nan += dq_fill(t, in + off, nb, kind);
				memset(a, 0x5a, len);
				memset(b, 0x5a, len);
				k->dequant[s](in + off, nb, a);
				r->dequant[s](in + off, nb, b);
				size_t at = first_diff(a, b, len);
				bad += at != (size_t)-1;
				CHECK(at == (size_t)-1,
				      "%s dequant %s kind %d, %zu blocks at +%zu: byte %zu "
				      "(block %zu)",
				      k->isa, t->name, kind, nb, off, at, at / 4 / t->elems);
				uint32_t tail;
				memcpy(&tail, a + nb * t->elems + SLACK - 1, 4);
				CHECK(tail == 0x5a5a5a5a, "%s dequant %s wrote past %zu blocks",
				      k->isa, t->name, nb);
				runs++;
			}
		}
		/* Q4_1/Q5_1's q*d + m with both NaN: the case whose payload is the compiler's
		 * choice; it must have been among the blocks compared. */
		CHECK((s != APRFS_DQ_Q4_1 && s != APRFS_DQ_Q5_1) || both_nan > 0,
		      "%s: no block with d and m both NaN", t->name);
		CHECK(runs >= 3 * 16 && bad == 0, "%s dequant %s: %zu of %zu runs differ",
		      k->isa, t->name, bad, runs);
	}
	free(in);
	free(a);
	free(b);
}

/* The scalar table's dequantizers are lib/quant's reference ones, and aprfs_dequant gives
 * aprfs_ggml_dequant_ref's floats for every float dtype through any table (F16/BF16 by
 * its widening kernels); a non-float dtype is -ENOTSUP and writes nothing. */
static void test_dequant_entry(const aprfs_kernels *k)
{
	enum { NB = 37 };
	uint8_t *in = malloc(NB * 256 * 4 + 1);
	float *a = malloc(NB * 256 * sizeof(float)), *b = malloc(NB * 256 * sizeof(float));
	for (int d = 0; d < APRFS_SRC_COUNT; d++) {
		const aprfs_src_dtype dt = (aprfs_src_dtype)d;
		const int s = aprfs_dqslot_of(dt);
		const size_t nb = s >= 0 ? NB : NB * 256;
		if (s >= 0) {
			CHECK(aprfs_dq_types[s].dtype == dt, "dequant slot %d is dtype %d", s,
			      d);
			dq_fill(&aprfs_dq_types[s], in + 1, nb, 0);
		} else {
			for (size_t i = 0; i < NB * 256 * 4; i++)
				in[1 + i] = (uint8_t)rnd();
		}
		a[0] = 1234.5f;
		int rc = aprfs_dequant(k, dt, in + 1, nb, a);
		if (!aprfs_ggml_dequant_supported(dt)) {
			CHECK(rc == -ENOTSUP && a[0] == 1234.5f,
			      "%s: dtype %d is not a float type, rc %d", k->isa, d, rc);
			continue;
		}
		const size_t ne = s >= 0 ? nb * aprfs_dq_types[s].elems : nb;
		aprfs_ggml_dequant_ref(dt, in + 1, nb, b);
		CHECK(rc == 0 && memcmp(a, b, ne * 4) == 0,
		      "%s: aprfs_dequant dtype %d differs from aprfs_ggml_dequant_ref", k->isa,
		      d);
	}
	free(in);
	free(a);
	free(b);
}

/* The scalar table's dequantizers are lib/quant's reference functions (Q4_K/Q6_K: the
 * codecs' decoders, checked through aprfs_dequant above), named after their ISA. */
static void test_scalar_dequant(void)
{
	const aprfs_kernels *sc = aprfs_kernels_scalar();
	static const aprfs_dequant_fn want[APRFS_DQ_COUNT] = {
	    aprfs_ggml_dequant_q8_0, aprfs_ggml_dequant_q4_0,
	    aprfs_ggml_dequant_q4_1, aprfs_ggml_dequant_q5_0,
	    aprfs_ggml_dequant_q5_1, aprfs_ggml_dequant_q2_k,
	    aprfs_ggml_dequant_q3_k, NULL,
	    aprfs_ggml_dequant_q5_k, NULL};
	for (int s = 0; s < APRFS_DQ_COUNT; s++) {
		CHECK(sc->dequant[s] && (!want[s] || sc->dequant[s] == want[s]) &&
			  strcmp(sc->kisa[APRFS_KN_DEQUANT + s], "scalar") == 0,
		      "scalar dequant %s", aprfs_dq_types[s].name);
		CHECK(aprfs_dqslot_of(aprfs_dq_types[s].dtype) == s, "%s's slot",
		      aprfs_dq_types[s].name);
	}
	CHECK(aprfs_dqslot_of(APRFS_SRC_F16) < 0 && aprfs_dqslot_of(APRFS_SRC_I8) < 0 &&
		  aprfs_dqslot_of(APRFS_SRC_COUNT) < 0,
	      "non-block dtypes have no dequant slot");
}

/* aprfs_encode_src from raw bf16/f16 equals widen-then-encode with the scalar table. */
static void test_fused(const aprfs_kernels *k, const aprfs_kernels *r)
{
	uint16_t *h = malloc(MAXN * 2);
	float *w = malloc(MAXN * 4);
	for (int d = 0; d < 2; d++) {
		aprfs_src_dtype dt = d ? APRFS_SRC_BF16 : APRFS_SRC_F16;
		for (size_t i = 0; i < MAXN; i++)
			h[i] = d ? aprfs_f32_to_bf16(gauss()) : (uint16_t)rnd();
		static const size_t fl[] = {3, 256, 4096, 4096 + 256, 12288 + 17};
		for (size_t j = 0; j < sizeof(fl) / sizeof(fl[0]); j++) {
			size_t n = fl[j];
			aprfs_widen(r, dt, h, n, w);
			aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(r->maxabs(w, n)),
					   .nf4_block = 6000};
			for (int s = 0; s < APRFS_K_COUNT; s++) {
				p.nf4_block = s == APRFS_K_NF4 && j % 2 ? 6000 : 64;
				const aprfs_codec *c = aprfs_codecs[s];
				size_t bytes = (size_t)aprfs_codec_payload_size(c, n, &p);
				memset(EA, 0, bytes);
				memset(EB, 0, bytes);
				int rc = aprfs_encode_src(k, (aprfs_kslot)s, dt, h, n, &p, EA);
				r->encode[s](w, n, &p, EB);
				CHECK(rc == 0 && memcmp(EA, EB, bytes) == 0,
				      "%s fused %s from %s n=%zu", k->isa, c->name,
				      d ? "bf16" : "f16", n);
			}
		}
	}
	free(h);
	free(w);
}

static void corrupt_q4(const float *x, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	aprfs_codec_q4.encode(x, n, p, out);
	if (n > 40)
		out[20] ^= 1;
}

/* Q5_K off by one bit in one float of the 200th block. */
static void corrupt_q5_k(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_ggml_dequant_q5_k(in, nblocks, y);
	uint32_t u;
	if (nblocks > 200) {
		memcpy(&u, y + 200 * 256 + 7, 4);
		u ^= 1;
		memcpy(y + 200 * 256 + 7, &u, 4);
	}
}

/* Q8_0 right except that every NaN comes out as the default NaN: only NaN scales show it. */
static void corrupt_q8_0(const uint8_t *in, size_t nblocks, float *y)
{
	aprfs_ggml_dequant_q8_0(in, nblocks, y);
	for (size_t i = 0; i < nblocks * 32; i++)
		if (isnan(y[i]))
			y[i] = f32_of(0x7fc00000);
}

/* The default table takes every kernel from the first ISA of that kernel's preference
 * order this CPU has (the scalar reference past the end), passes the self-check, and is
 * named after its main ISA with the exceptions listed; a forced ISA is that whole table. */
static void test_per_kernel(void)
{
	const aprfs_kernels *k = aprfs_kernels_get(), *sc = aprfs_kernels_scalar();
	char why[160] = "", main_isa[16] = "";
	CHECK(aprfs_kernels_selfcheck(k, why, sizeof(why)) == 0, "default table: %s", why);
	sscanf(k->isa, "%15s", main_isa);
	const aprfs_kernels *main_t = aprfs_kernels_for_isa(main_isa);
	CHECK(main_t != NULL, "default table named after '%s', not an ISA of this CPU", k->isa);
	if (!main_t)
		return;
	int exceptions = 0;
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
		const aprfs_kernels *want = NULL;
		const char *isa;
		for (int r = 0; !want && (isa = aprfs_kernels_preferred(kn, r)) != NULL; r++)
			want = aprfs_kernels_for_isa(isa);
		want = want ? want : sc;
		CHECK(aprfs_kernels_same(k, want, kn) &&
			  strcmp(k->kisa[kn], want->kisa[kn]) == 0,
		      "%s: from %s, its preference order gives %s", aprfs_kernel_name(kn),
		      k->kisa[kn], want->isa);
		if (!aprfs_kernels_same(k, main_t, kn)) {
			exceptions++;
			CHECK(strstr(k->isa, aprfs_kernel_name(kn)) &&
				  strstr(k->isa, k->kisa[kn]),
			      "'%s' does not name %s from %s", k->isa, aprfs_kernel_name(kn),
			      k->kisa[kn]);
		}
	}
	CHECK(exceptions ? strchr(k->isa, '(') != NULL : strcmp(k->isa, main_t->isa) == 0,
	      "'%s' with %d exceptions", k->isa, exceptions);
	/* Both x86 ISAs here: the preference table has AVX2-first kernels, so the default
	 * table must mix (it is what makes `aprfs --version` say so). */
	if (aprfs_kernels_for_isa("avx2") && aprfs_kernels_for_isa("avx512"))
		CHECK(exceptions > 0 && strncmp(k->isa, "avx512 (avx2 for ", 17) == 0,
		      "AVX2 and AVX-512 both here, yet the default table is '%s'", k->isa);
	printf("per-kernel table: %s, %d kernels from another ISA than %s\n", k->isa,
	       exceptions, main_isa);

	/* Names: one per kernel, distinct, NULL outside. */
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
		CHECK(aprfs_kernel_name(kn) != NULL, "kernel %d has no name", kn);
		for (int j = 0; j < kn && aprfs_kernel_name(kn); j++)
			CHECK(strcmp(aprfs_kernel_name(kn), aprfs_kernel_name(j)) != 0,
			      "two kernels named %s", aprfs_kernel_name(j));
	}
	CHECK(!aprfs_kernel_name(-1) && !aprfs_kernel_name(APRFS_KN_COUNT) &&
		  !aprfs_kernels_preferred(APRFS_KN_COUNT, 0) && !aprfs_kernels_preferred(0, 3),
	      "out-of-range kernel numbers");

	/* A forced ISA is that ISA's whole table, whatever the preferences say. */
	for (int i = 0; i < APRFS_ISA_COUNT; i++) {
		const char *isa = aprfs_kernels_isa_names[i];
		const aprfs_kernels *t = aprfs_kernels_for_isa(isa);
		if (!t)
			continue;
		setenv("APRFS_ISA", isa, 1);
		aprfs_kernels_reset();
		const aprfs_kernels *f = aprfs_kernels_get();
		int diff = 0;
		for (int kn = 0; kn < APRFS_KN_COUNT; kn++)
			diff += !aprfs_kernels_same(f, t, kn);
		CHECK(diff == 0 && strcmp(f->isa, isa) == 0,
		      "APRFS_ISA=%s: '%s', %d kernels differ", isa, f->isa, diff);
	}
	unsetenv("APRFS_ISA");
	aprfs_kernels_reset();
	CHECK(aprfs_kernels_get() == k, "the default table is built once");
}

/* APRFS_ISA forces a table, an ISA the CPU lacks is refused (exit 2, message), and the
 * self-check catches a single wrong bit. */
static void test_dispatch(void)
{
	char why[160];
	CHECK(aprfs_kernels_selfcheck(aprfs_kernels_scalar(), why, sizeof(why)) == 0, "scalar");
	aprfs_kernels bad = *aprfs_kernels_scalar();
	bad.encode[APRFS_K_Q4] = corrupt_q4;
	CHECK(aprfs_kernels_selfcheck(&bad, why, sizeof(why)) != 0 && strstr(why, "q4 encode"),
	      "self-check catches a flipped bit: '%s'", why);
	bad = *aprfs_kernels_scalar();
	bad.dequant[APRFS_DQ_Q5_K] = corrupt_q5_k;
	CHECK(aprfs_kernels_selfcheck(&bad, why, sizeof(why)) != 0 &&
		  strstr(why, "dequant q5_k"),
	      "self-check catches a dequantizer's flipped bit: '%s'", why);
	bad = *aprfs_kernels_scalar();
	bad.dequant[APRFS_DQ_Q8_0] = corrupt_q8_0;
	CHECK(aprfs_kernels_selfcheck(&bad, why, sizeof(why)) != 0 &&
		  strstr(why, "dequant q8_0"),
	      "self-check catches a NaN payload: '%s'", why);

	for (int i = 0; i < APRFS_ISA_COUNT; i++) {
		const char *isa = aprfs_kernels_isa_names[i];
		setenv("APRFS_ISA", isa, 1);
		aprfs_kernels_reset();
		if (aprfs_kernels_for_isa(isa)) {
			CHECK(strcmp(aprfs_kernels_isa(), isa) == 0, "APRFS_ISA=%s gave %s",
			      isa, aprfs_kernels_isa());
			continue;
		}
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			if (!freopen("/dev/null", "w", stderr))
				_exit(3);
			aprfs_kernels_get();
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 2, "APRFS_ISA=%s must be refused",
		      isa);
	}
	unsetenv("APRFS_ISA");
	aprfs_kernels_reset();
	printf("default ISA: %s\n", aprfs_kernels_isa());
	test_per_kernel();
	CHECK(strcmp(aprfs_kernels_isa(), "scalar") != 0 ||
		  (!aprfs_kernels_for_isa("avx2") && !aprfs_kernels_for_isa("neon")),
	      "a SIMD ISA is available but the default is scalar");
}

int main(void)
{
	const aprfs_kernels *r = aprfs_kernels_scalar();
	X = malloc(MAXN * sizeof(float));
	DA = malloc(65536 * sizeof(float));
	DB = malloc(65536 * sizeof(float));
	EA = malloc(MAXN * 4 + 64);
	EB = malloc(MAXN * 4 + 64);
	for (int i = 0; i < APRFS_ISA_COUNT; i++) {
		const char *isa = aprfs_kernels_isa_names[i];
		const aprfs_kernels *k = aprfs_kernels_for_isa(isa);
		if (!k) {
			CHECK_SKIP("ISA %s: not available on this CPU, its kernels not tested",
				   isa);
			continue;
		}
		int before = check_failed;
		char why[160] = "";
		rng_state = 42;
		CHECK(aprfs_kernels_selfcheck(k, why, sizeof(why)) == 0, "%s self-check: %s",
		      isa, why);
		test_widen(k, r);
		test_narrow(k, r);
		test_stats(k, r);
		test_codecs(k, r);
		test_decode_edges(k, r);
		test_fused(k, r);
		test_specials(k);
		test_dequant(k, r);
		test_dequant_entry(k);
		printf("ISA %s: run, %s\n", isa,
		       check_failed == before ? "identical" : "DIFFERS");
	}
	test_scalar_dequant();
	test_dispatch();
	/* The default (per-kernel) table through the whole battery as well. */
	const aprfs_kernels *d = aprfs_kernels_get();
	int before = check_failed;
	rng_state = 43;
	test_widen(d, r);
	test_narrow(d, r);
	test_stats(d, r);
	test_codecs(d, r);
	test_decode_edges(d, r);
	test_fused(d, r);
	test_specials(d);
	test_dequant(d, r);
	test_dequant_entry(d);
	printf("default table %s: run, %s\n", d->isa,
	       check_failed == before ? "identical" : "DIFFERS");
	free(X);
	free(DA);
	free(DB);
	free(EA);
	free(EB);
	return check_done("kernels");
}
