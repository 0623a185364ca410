/* test_ggml.c - the GGUF tensor dequantizers (lib/quant/ggml_dequant.c) and the test
 * encoders (tests/gen/ggml_encode.h): hand-worked blocks, every code value, NaN/inf/subnormal
 * f16 scales, random blocks against a per-element restatement of GGML's layouts (through the
 * reference and through every kernel table's dequantizers), the entry point's dispatch,
 * and encoder -> dequantizer round trips on Gaussian data. */
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../gen/ggml_encode.h"
#include "../gen/synth.h"
#include "base/half.h"
#include "check.h"
#include "format/dtype.h"
#include "kernels/kernels.h"
#include "quant/codec.h"
#include "quant/ggml_dequant.h"

enum { MAXB = 210 };

static float h16(const uint8_t *p)
{
	return aprfs_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static int same_bits(float a, float b)
{
	return memcmp(&a, &b, 4) == 0;
}

static uint32_t bits(float f)
{
	uint32_t u;
	memcpy(&u, &f, 4);
	return u;
}

/* ---- GGML's layouts restated per element (independent of the library's loops) ---- */

/* 32-element blocks: element e's nibble is byte e (low half) or e-16 (high half). */
static int nib32(const uint8_t *qs, int e)
{
	return e < 16 ? qs[e] & 15 : qs[e - 16] >> 4;
}

static void set_nib32(uint8_t *qs, int e, int v)
{
	uint8_t *b = qs + e % 16;
	int sh = e < 16 ? 0 : 4;
	*b = (uint8_t)((*b & ~(15 << sh)) | (v & 15) << sh);
}

/* Bit n of a little-endian bit string. */
static int bit_at(const uint8_t *p, int n)
{
	return p[n / 8] >> (n % 8) & 1;
}

static void set_bit(uint8_t *p, int n, int v)
{
	p[n / 8] = (uint8_t)((p[n / 8] & ~(1 << n % 8)) | (v & 1) << n % 8);
}

/* Q2_K/Q3_K: element e's two low bits are in byte 32*(e/128) + e%32 at bit 2*((e%128)/32). */
static int low2(const uint8_t *qs, int e)
{
	return qs[32 * (e / 128) + e % 32] >> (2 * ((e % 128) / 32)) & 3;
}

static void set_low2(uint8_t *qs, int e, int v)
{
	uint8_t *b = qs + 32 * (e / 128) + e % 32;
	int sh = 2 * ((e % 128) / 32);
	*b = (uint8_t)((*b & ~(3 << sh)) | (v & 3) << sh);
}

/* Q3_K's hmask: element e's high bit is bit e/32 of byte e%32. */
static int q3k_hbit(const uint8_t *hm, int e)
{
	return hm[e % 32] >> (e / 32) & 1;
}

/* Q3_K's 6-bit scale j: low nibble in byte j%8 (high half for j >= 8), top two bits in
 * byte 8 + j%4 at bit 2*(j/4). */
static int q3k_scale6(const uint8_t *s12, int j)
{
	return (s12[j % 8] >> (4 * (j / 8)) & 15) | (s12[8 + j % 4] >> (2 * (j / 4)) & 3) << 4;
}

static void set_q3k_scale6(uint8_t *s12, int j, int v)
{
	int sh = 4 * (j / 8), hs = 2 * (j / 4);
	s12[j % 8] = (uint8_t)((s12[j % 8] & ~(15 << sh)) | (v & 15) << sh);
	s12[8 + j % 4] = (uint8_t)((s12[8 + j % 4] & ~(3 << hs)) | (v >> 4 & 3) << hs);
}

/* Q4_K/Q5_K's 6-bit scale and min of sub-block j: for j < 4 the low six bits of bytes j
 * and j+4; for j >= 4 the nibbles of byte j+4 (scale low, min high) below the top two
 * bits of bytes j-4 (scale) and j (min). */
static void k4_get(const uint8_t *s, int j, int *sc, int *m)
{
	if (j < 4) {
		*sc = s[j] & 63;
		*m = s[j + 4] & 63;
	} else {
		*sc = (s[j + 4] & 15) | (s[j - 4] >> 6) << 4;
		*m = (s[j + 4] >> 4) | (s[j] >> 6) << 4;
	}
}

static void k4_set(uint8_t *s, int j, int sc, int m)
{
	if (j < 4) {
		s[j] = (uint8_t)((s[j] & 0xc0) | sc);
		s[j + 4] = (uint8_t)((s[j + 4] & 0xc0) | m);
	} else {
		s[j + 4] = (uint8_t)((sc & 15) | (m & 15) << 4);
		s[j - 4] = (uint8_t)((s[j - 4] & 63) | (sc >> 4) << 6);
		s[j] = (uint8_t)((s[j] & 63) | (m >> 4) << 6);
	}
}

/* Q5_K: element e = 64c + 32h + l has its nibble in byte 48 + 32c + l (half h) and its
 * fifth bit in qh byte 16 + l at bit 2c + h. */
static int q5k_code(const uint8_t *b, int e)
{
	int c = e / 64, h = e % 64 / 32, l = e % 32;
	return (b[48 + 32 * c + l] >> (4 * h) & 15) + 16 * (b[16 + l] >> (2 * c + h) & 1);
}

static void set_q5k_code(uint8_t *b, int e, int v)
{
	int c = e / 64, h = e % 64 / 32, l = e % 32;
	uint8_t *q = b + 48 + 32 * c + l;
	*q = (uint8_t)((*q & ~(15 << 4 * h)) | (v & 15) << 4 * h);
	set_bit(b + 16 + l, 2 * c + h, v >> 4);
}

/* p + m as GGML's builds compute it: when both are NaN the result is p's NaN (x86 returns
 * the first operand's payload, and GCC makes the product the first operand of GGML's
 * x0*d + m, at -O0 to -O3). Written out so that this expectation does not itself depend on
 * the operand order the compiler picks for the test. */
static float add_pm(float p, float m)
{
	return isnan(p) && isnan(m) ? p : p + m;
}

/* Element e of one block as GGML computes it: the scale products first, each rounded to
 * float, then the element's product and at most one addition. */
static float naive_elem(aprfs_src_dtype d, const uint8_t *b, int e)
{
	int sc, m, q;
	switch (d) {
	case APRFS_SRC_Q8_0: return (float)(int8_t)b[2 + e] * h16(b);
	case APRFS_SRC_Q4_0: return (float)(nib32(b + 2, e) - 8) * h16(b);
	case APRFS_SRC_Q4_1: return add_pm((float)nib32(b + 4, e) * h16(b), h16(b + 2));
	case APRFS_SRC_Q5_0:
		return (float)((nib32(b + 6, e) | bit_at(b + 2, e) << 4) - 16) * h16(b);
	case APRFS_SRC_Q5_1:
		return add_pm((float)(nib32(b + 8, e) | bit_at(b + 4, e) << 4) * h16(b),
			      h16(b + 2));
	case APRFS_SRC_Q2_K:
		sc = b[e / 16] & 15;
		m = b[e / 16] >> 4;
		return h16(b + 80) * (float)sc * (float)low2(b + 16, e) -
		       h16(b + 82) * (float)m;
	case APRFS_SRC_Q3_K:
		sc = q3k_scale6(b + 96, e / 16) - 32;
		q = low2(b + 32, e) - (q3k_hbit(b, e) ? 0 : 4);
		return h16(b + 108) * (float)sc * (float)q;
	case APRFS_SRC_Q4_K:
		k4_get(b + 4, e / 32, &sc, &m);
		q = b[16 + 32 * (e / 64) + e % 32] >> (4 * (e / 32 % 2)) & 15;
		return h16(b) * (float)sc * (float)q - h16(b + 2) * (float)m;
	case APRFS_SRC_Q5_K:
		k4_get(b + 4, e / 32, &sc, &m);
		return h16(b) * (float)sc * (float)q5k_code(b, e) - h16(b + 2) * (float)m;
	case APRFS_SRC_Q6_K: {
		int h = e / 128, k = e % 128 / 32, l = e % 32;
		int lo = b[64 * h + l + 32 * (k & 1)] >> (k >= 2 ? 4 : 0) & 15;
		int hi = b[128 + 32 * h + l] >> (2 * k) & 3;
		return h16(b + 208) * (float)(int8_t)b[192 + e / 16] *
		       (float)((lo | hi << 4) - 32);
	}
	default: return NAN;
	}
}

typedef void (*dq_fn)(const uint8_t *, size_t, float *);

static const struct qtype {
	aprfs_src_dtype d;
	dq_fn fn;	    /* the per-type entry point, NULL for Q4_K/Q6_K */
	int nscale, off[2]; /* f16 scale fields */
} qtypes[] = {
    {APRFS_SRC_Q8_0, aprfs_ggml_dequant_q8_0, 1, {0, 0}},
    {APRFS_SRC_Q4_0, aprfs_ggml_dequant_q4_0, 1, {0, 0}},
    {APRFS_SRC_Q4_1, aprfs_ggml_dequant_q4_1, 2, {0, 2}},
    {APRFS_SRC_Q5_0, aprfs_ggml_dequant_q5_0, 1, {0, 0}},
    {APRFS_SRC_Q5_1, aprfs_ggml_dequant_q5_1, 2, {0, 2}},
    {APRFS_SRC_Q2_K, aprfs_ggml_dequant_q2_k, 2, {80, 82}},
    {APRFS_SRC_Q3_K, aprfs_ggml_dequant_q3_k, 1, {108, 0}},
    {APRFS_SRC_Q4_K, NULL, 2, {0, 2}},
    {APRFS_SRC_Q5_K, aprfs_ggml_dequant_q5_k, 2, {0, 2}},
    {APRFS_SRC_Q6_K, NULL, 1, {208, 0}},
};
enum { NQ = sizeof(qtypes) / sizeof(qtypes[0]) };

/* Decode nb blocks through the entry point and (where there is one) the per-type
 * function; 1 if both gave the same bits. */
static int decode(const struct qtype *t, const uint8_t *in, size_t nb, float *y)
{
	size_t ne = nb * aprfs_src_dtype_block_elems(t->d);
	aprfs_ggml_dequant_ref(t->d, in, nb, y);
	if (!t->fn)
		return 1;
	float *z = malloc(ne * sizeof(float));
	t->fn(in, nb, z);
	int same = memcmp(y, z, ne * sizeof(float)) == 0;
	free(z);
	return same;
}

/* ---- geometry and dispatch ---- */

static void test_geometry(void)
{
	static const struct {
		aprfs_src_dtype d;
		uint32_t elems, bytes;
		int ggml_id;
	} g[] = {{APRFS_SRC_Q8_0, 32, 34, 8},	 {APRFS_SRC_Q4_0, 32, 18, 2},
		 {APRFS_SRC_Q4_1, 32, 20, 3},	 {APRFS_SRC_Q5_0, 32, 22, 6},
		 {APRFS_SRC_Q5_1, 32, 24, 7},	 {APRFS_SRC_Q2_K, 256, 84, 10},
		 {APRFS_SRC_Q3_K, 256, 110, 11}, {APRFS_SRC_Q4_K, 256, 144, 12},
		 {APRFS_SRC_Q5_K, 256, 176, 13}, {APRFS_SRC_Q6_K, 256, 210, 14},
		 {APRFS_SRC_F32, 1, 4, 0},	 {APRFS_SRC_F16, 1, 2, 1},
		 {APRFS_SRC_BF16, 1, 2, 30}};
	for (size_t i = 0; i < sizeof(g) / sizeof(g[0]); i++) {
		CHECK(aprfs_src_dtype_block_elems(g[i].d) == g[i].elems &&
			  aprfs_src_dtype_block_bytes(g[i].d) == g[i].bytes &&
			  aprfs_src_dtype_ggml_id(g[i].d) == g[i].ggml_id,
		      "%s geometry", aprfs_src_dtype_name(g[i].d));
		CHECK(aprfs_ggml_dequant_supported(g[i].d), "%s supported",
		      aprfs_src_dtype_name(g[i].d));
	}
	static const aprfs_src_dtype no[] = {APRFS_SRC_F64,  APRFS_SRC_I64, APRFS_SRC_I32,
					     APRFS_SRC_I8,   APRFS_SRC_U8,  APRFS_SRC_BOOL,
					     APRFS_SRC_COUNT};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++)
		CHECK(!aprfs_ggml_dequant_supported(no[i]), "dtype %d not supported",
		      (int)no[i]);
	/* the dequantizer's own list is dtype.c's float types */
	for (int d = 0; d < APRFS_SRC_COUNT; d++)
		CHECK(aprfs_ggml_dequant_supported((aprfs_src_dtype)d) ==
			  aprfs_src_dtype_is_float((aprfs_src_dtype)d),
		      "%s", aprfs_src_dtype_name((aprfs_src_dtype)d));
}

/* A non-float type is a programming error: the process aborts rather than return. */
static void test_refuses_non_float(void)
{
	static const aprfs_src_dtype no[] = {APRFS_SRC_I32, APRFS_SRC_F64, APRFS_SRC_BOOL};
	for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			uint8_t in[8] = {0};
			float out[2];
			if (!freopen("/dev/null", "w", stderr))
				_exit(3);
			aprfs_ggml_dequant_ref(no[i], in, 1, out);
			_exit(0);
		}
		int st = 0;
		waitpid(pid, &st, 0);
		CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "dtype %d: status %d",
		      (int)no[i], st);
	}
}

/* F32 is copied bit for bit (NaN payloads too); F16 and BF16 are half.c's conversions
 * for every one of the 65536 patterns; nothing is written past nblocks. */
static void test_plain_types(void)
{
	uint8_t in[65536 * 4];
	static float y[65536 + 1];
	for (int i = 0; i < 65536; i++)
		put16(in + 2 * i, (uint16_t)i);
	y[65536] = 42.0f;
	aprfs_ggml_dequant_ref(APRFS_SRC_F16, in, 65536, y);
	int bad = 0;
	for (int i = 0; i < 65536; i++)
		bad += !same_bits(y[i], aprfs_f16_to_f32((uint16_t)i));
	CHECK(bad == 0 && y[65536] == 42.0f, "F16: %d of 65536 differ", bad);
	CHECK(bits(y[0x7c00]) == 0x7f800000 && bits(y[0xfc00]) == 0xff800000 &&
		  bits(y[0x7c01]) == 0x7fc02000 && bits(y[0x0001]) == 0x33800000 &&
		  bits(y[0x8000]) == 0x80000000 && y[0x3c00] == 1.0f && y[0x7bff] == 65504.0f,
	      "F16 edges");
	aprfs_ggml_dequant_ref(APRFS_SRC_BF16, in, 65536, y);
	bad = 0;
	for (int i = 0; i < 65536; i++)
		bad += bits(y[i]) != (uint32_t)i << 16;
	CHECK(bad == 0 && y[65536] == 42.0f, "BF16: %d of 65536 differ", bad);

	static const uint32_t f[] = {0x7f800001, 0xffc12345, 0x80000000, 0x00000001,
				     0x3f800000, 0x7f7fffff, 0xff800000, 0x12345678};
	memcpy(in + 1, f, sizeof(f)); /* unaligned source */
	aprfs_ggml_dequant_ref(APRFS_SRC_F32, in + 1, 8, y);
	CHECK(memcmp(y, f, sizeof(f)) == 0, "F32 copied bit for bit");

	y[0] = 7.0f;
	for (size_t t = 0; t < NQ; t++)
		aprfs_ggml_dequant_ref(qtypes[t].d, in, 0, y);
	CHECK(y[0] == 7.0f, "0 blocks write nothing");
}

/* ---- hand-worked blocks ---- */

static void test_hand_q8_0(void)
{
	uint8_t b[34] = {0x00, 0x3c}; /* d = 1.0 */
	float y[32];
	b[2] = 1;
	b[3] = 0xff; /* -1 */
	b[4] = 127;
	b[5] = 0x80; /* -128 */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, b, 1, y);
	CHECK(y[0] == 1.0f && y[1] == -1.0f && y[2] == 127.0f && y[3] == -128.0f &&
		  y[4] == 0.0f && y[31] == 0.0f,
	      "Q8_0 d=1: %g %g %g %g", y[0], y[1], y[2], y[3]);
	put16(b, 0xb800); /* d = -0.5 */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, b, 1, y);
	CHECK(y[0] == -0.5f && y[1] == 0.5f && y[2] == -63.5f && y[3] == 64.0f &&
		  bits(y[4]) == 0x80000000,
	      "Q8_0 d=-0.5 (0 * -0.5 = -0)");
}

static void test_hand_q4(void)
{
	float y[32];
	/* Q4_0: d = 2; byte 0 = 0x9F: element 0 code 15 -> (15-8)*2 = 14, element 16 code 9
	 * -> 2; byte 1 = 0x08: element 1 -> 0, element 17 -> -16; zero bytes -> -16. */
	uint8_t a[18] = {0x00, 0x40, 0x9f, 0x08};
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_0, a, 1, y);
	CHECK(y[0] == 14.0f && y[16] == 2.0f && y[1] == 0.0f && y[17] == -16.0f &&
		  y[2] == -16.0f && y[31] == -16.0f,
	      "Q4_0: %g %g %g %g", y[0], y[16], y[1], y[17]);
	/* Q4_1: d = 0.5, m = -1; byte 0 = 0xF0: element 0 -> 0*0.5-1 = -1, element 16 ->
	 * 15*0.5-1 = 6.5; byte 15 = 0x37: element 15 -> 2.5, element 31 -> 0.5. */
	uint8_t b[20] = {0x00, 0x38, 0x00, 0xbc, 0xf0};
	b[4 + 15] = 0x37;
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_1, b, 1, y);
	CHECK(y[0] == -1.0f && y[16] == 6.5f && y[15] == 2.5f && y[31] == 0.5f && y[1] == -1.0f,
	      "Q4_1: %g %g %g %g", y[0], y[16], y[15], y[31]);
}

static void test_hand_q5(void)
{
	float y[32];
	/* Q5_0: d = 1, qh = bits 0 and 16; byte 0 = 0x21: element 0 -> (1|16)-16 = 1,
	 * element 16 -> (2|16)-16 = 2; element 1: code 0 -> -16; element 17 -> -16. */
	uint8_t a[22] = {0x00, 0x3c, 0x01, 0x00, 0x01, 0x00, 0x21};
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_0, a, 1, y);
	CHECK(y[0] == 1.0f && y[16] == 2.0f && y[1] == -16.0f && y[17] == -16.0f,
	      "Q5_0: %g %g %g %g", y[0], y[16], y[1], y[17]);
	/* Q5_1: d = 2, m = 1, qh = bit 31 (element 31); byte 15 = 0xF0: element 31 ->
	 * (15|16)*2+1 = 63, element 15 -> 0*2+1 = 1; byte 0 = 0x0A: element 0 -> 21. */
	uint8_t b[24] = {0x00, 0x40, 0x00, 0x3c, 0x00, 0x00, 0x00, 0x80, 0x0a};
	b[8 + 15] = 0xf0;
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_1, b, 1, y);
	CHECK(y[31] == 63.0f && y[15] == 1.0f && y[0] == 21.0f && y[16] == 1.0f,
	      "Q5_1: %g %g %g %g", y[31], y[15], y[0], y[16]);
}

static void test_hand_q2_k(void)
{
	uint8_t b[84] = {0};
	float y[256];
	b[0] = 0x21;	       /* sub-block 0: sc 1, m 2 */
	b[2] = 0x03;	       /* sub-block 2: sc 3, m 0 */
	b[4] = 0x15;	       /* sub-block 4: sc 5, m 1 */
	b[6] = 0xf0;	       /* sub-block 6: sc 0, m 15 */
	b[14] = 0x4f;	       /* sub-block 14: sc 15, m 4 */
	b[16] = 0xe4;	       /* elements 0, 32, 64, 96: codes 0, 1, 2, 3 */
	b[16 + 32 + 1] = 0xc0; /* element 128 + 96 + 1 = 225: code 3 */
	put16(b + 80, 0x4000); /* d = 2 */
	put16(b + 82, 0x3800); /* dmin = 0.5 */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q2_K, b, 1, y);
	CHECK(y[0] == -1.0f && y[1] == -1.0f, "Q2_K e0: (2*1)*0 - 0.5*2 = %g", y[0]);
	CHECK(y[32] == 6.0f, "Q2_K e32: (2*3)*1 - 0 = %g", y[32]);
	CHECK(y[64] == 19.5f, "Q2_K e64: (2*5)*2 - 0.5*1 = %g", y[64]);
	CHECK(y[96] == -7.5f, "Q2_K e96: 0*3 - 0.5*15 = %g", y[96]);
	CHECK(y[225] == 88.0f && y[224] == -2.0f, "Q2_K e225: (2*15)*3 - 0.5*4 = %g", y[225]);
	CHECK(y[16] == 0.0f && y[255] == 0.0f, "Q2_K zero sub-blocks");
}

static void test_hand_q3_k(void)
{
	uint8_t b[110] = {0};
	float y[256];
	/* Sub-block 0's scale is 33 (+1): low nibble 1 in byte 96, top bits 2 in byte 104.
	 * Every other scale is 0 (-32). */
	b[96] = 0x01;
	b[104] = 0x02;
	b[32] = 0x03 | 0x04;	/* element 0: low bits 3; element 32: low bits 1 */
	b[0] = 0x01 | 0x02;	/* high bits of elements 0 (bit 0) and 32 (bit 1) */
	b[32 + 32 + 5] = 0x80;	/* element 128 + 96 + 5 = 229: low bits 2, high bit 0 */
	put16(b + 108, 0x3c00); /* d = 1 */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q3_K, b, 1, y);
	CHECK(y[0] == 3.0f, "Q3_K e0: (1*1)*(3-0) = %g", y[0]);
	CHECK(y[1] == -4.0f, "Q3_K e1: (1*1)*(0-4) = %g", y[1]);
	CHECK(y[16] == 128.0f, "Q3_K e16: (1*-32)*(0-4) = %g", y[16]);
	CHECK(y[32] == -32.0f, "Q3_K e32: (1*-32)*(1-0) = %g", y[32]);
	CHECK(y[229] == 64.0f, "Q3_K e229: (1*-32)*(2-4) = %g", y[229]);
}

static void test_hand_q5_k(void)
{
	uint8_t b[176] = {0};
	float y[256];
	put16(b, 0x3c00);     /* d = 1 */
	put16(b + 2, 0x3c00); /* dmin = 1 */
	/* sub-block 0: sc 2, m 1; sub-block 4: sc 35, m 18 (low nibbles in byte 4+8, top
	 * bits in bits 6-7 of bytes 4+0 and 4+4) */
	b[4 + 0] = 0x02 | 0x80;
	b[4 + 4] = 0x01 | 0x40;
	b[4 + 8] = 0x23;
	b[48] = 0x35;	     /* element 0 nibble 5, element 32 nibble 3 */
	b[48 + 64] = 0x07;   /* element 128 nibble 7 */
	b[16] = 0x01 | 0x10; /* fifth bits of elements 0 (bit 0) and 128 (bit 4) */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_K, b, 1, y);
	CHECK(y[0] == 41.0f, "Q5_K e0: (1*2)*21 - 1*1 = %g", y[0]);
	CHECK(y[1] == -1.0f, "Q5_K e1: (1*2)*0 - 1 = %g", y[1]);
	CHECK(y[32] == 0.0f, "Q5_K e32: (1*0)*3 - 0 = %g", y[32]);
	CHECK(y[128] == 787.0f, "Q5_K e128: (1*35)*23 - 18 = %g", y[128]);
	CHECK(y[129] == -18.0f, "Q5_K e129: 0 - 18 = %g", y[129]);
}

/* ---- every code value, against the formula with known scales ---- */

static void test_codes_32(void)
{
	float y[8 * 32];
	uint8_t b[8 * 34];
	int bad = 0;
	/* Q8_0: 8 blocks hold the 256 int8 codes; d = 0.5. */
	for (int k = 0; k < 8; k++) {
		put16(b + 34 * k, 0x3800);
		for (int e = 0; e < 32; e++)
			b[34 * k + 2 + e] = (uint8_t)(32 * k + e - 128);
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, b, 8, y);
	for (int i = 0; i < 256; i++)
		bad += y[i] != (float)(i - 128) * 0.5f;
	CHECK(bad == 0, "Q8_0 codes: %d wrong", bad);

	/* Q4_0 and Q4_1: element e has code e%16 (every code twice). */
	uint8_t q40[18] = {0x00, 0xc0}, q41[20] = {0x00, 0x34, 0x00, 0xc2}; /* -2; .25, -3 */
	for (int e = 0; e < 32; e++) {
		set_nib32(q40 + 2, e, e % 16);
		set_nib32(q41 + 4, e, e % 16);
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_0, q40, 1, y);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_1, q41, 1, y + 32);
	bad = 0;
	for (int e = 0; e < 32; e++)
		bad += y[e] != (float)(e % 16 - 8) * -2.0f ||
		       y[32 + e] != (float)(e % 16) * 0.25f - 3.0f;
	CHECK(bad == 0, "Q4_0/Q4_1 codes: %d wrong", bad);

	/* Q5_0: element e has code e; Q5_1: code 31 - e (every code once). */
	uint8_t q50[22] = {0x00, 0x3e}, q51[24] = {0x00, 0x30, 0x40, 0x56}; /* 1.5; .125, 100 */
	for (int e = 0; e < 32; e++) {
		set_nib32(q50 + 6, e, e);
		set_bit(q50 + 2, e, e >> 4);
		set_nib32(q51 + 8, e, 31 - e);
		set_bit(q51 + 4, e, (31 - e) >> 4);
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_0, q50, 1, y);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_1, q51, 1, y + 32);
	bad = 0;
	for (int e = 0; e < 32; e++)
		bad += y[e] != (float)(e - 16) * 1.5f ||
		       y[32 + e] != (float)(31 - e) * 0.125f + 100.0f;
	CHECK(bad == 0, "Q5_0/Q5_1 codes: %d wrong", bad);
}

/* Q2_K: 16 blocks give every (scale, min) pair of 4-bit codes, each with all four codes. */
static void test_codes_q2_k(void)
{
	enum { NB = 16 };
	static uint8_t b[NB * 84];
	static float y[NB * 256];
	memset(b, 0, sizeof(b));
	for (int k = 0; k < NB; k++) {
		uint8_t *p = b + 84 * k;
		put16(p + 80, 0x3c00); /* d = 1 */
		put16(p + 82, 0x3800); /* dmin = 0.5 */
		for (int j = 0; j < 16; j++)
			p[j] = (uint8_t)(j | ((j + k) % 16) << 4);
		for (int e = 0; e < 256; e++)
			set_low2(p + 16, e, (e + e / 16) % 4);
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q2_K, b, NB, y);
	int bad = 0;
	for (int k = 0; k < NB; k++)
		for (int e = 0; e < 256; e++) {
			int j = e / 16, sc = j, m = (j + k) % 16, q = (e + j) % 4;
			bad += y[256 * k + e] != 1.0f * (float)sc * (float)q - 0.5f * (float)m;
		}
	CHECK(bad == 0, "Q2_K codes: %d wrong", bad);
}

/* Q3_K: 4 blocks give the 64 six-bit scales, each sub-block all eight codes -4..3. */
static void test_codes_q3_k(void)
{
	enum { NB = 4 };
	uint8_t b[NB * 110] = {0};
	float y[NB * 256];
	for (int k = 0; k < NB; k++) {
		uint8_t *p = b + 110 * k;
		put16(p + 108, 0x3400); /* d = 0.25 */
		for (int j = 0; j < 16; j++)
			set_q3k_scale6(p + 96, j, 16 * k + j);
		for (int e = 0; e < 256; e++) {
			int code = (e + e / 16) % 8; /* stored q + 4 */
			set_low2(p + 32, e, code & 3);
			set_bit(p + e % 32, e / 32, code >> 2);
		}
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q3_K, b, NB, y);
	int bad = 0;
	for (int k = 0; k < NB; k++)
		for (int e = 0; e < 256; e++) {
			int s = 16 * k + e / 16 - 32, q = (e + e / 16) % 8 - 4;
			bad += y[256 * k + e] != 0.25f * (float)s * (float)q;
		}
	CHECK(bad == 0, "Q3_K codes: %d wrong", bad);
}

/* Q5_K: 512 blocks give every (scale, min) pair of 6-bit codes, each sub-block all 32
 * codes. */
static void test_codes_q5_k(void)
{
	enum { NB = 512 };
	uint8_t *b = calloc(NB, 176);
	float *y = malloc(NB * 256 * sizeof(float));
	for (int k = 0; k < NB; k++) {
		uint8_t *p = b + 176 * k;
		put16(p, 0x3800);     /* d = 0.5 */
		put16(p + 2, 0x3400); /* dmin = 0.25 */
		for (int j = 0; j < 8; j++) {
			int pair = 8 * k + j;
			k4_set(p + 4, j, pair % 64, pair / 64);
		}
		for (int e = 0; e < 256; e++)
			set_q5k_code(p, e, (e + k) % 32);
	}
	aprfs_ggml_dequant_ref(APRFS_SRC_Q5_K, b, NB, y);
	int bad = 0;
	for (int k = 0; k < NB; k++)
		for (int e = 0; e < 256; e++) {
			int pair = 8 * k + e / 32, q = (e + k) % 32;
			bad += y[256 * k + e] != 0.5f * (float)(pair % 64) * (float)q -
						     0.25f * (float)(pair / 64);
		}
	CHECK(bad == 0, "Q5_K codes: %d wrong", bad);
	free(b);
	free(y);
}

/* ---- special f16 scales ---- */

static void test_special_scales(void)
{
	float y[256];
	/* Q8_0 with d = +inf: +-inf by the code's sign, 0 * inf = NaN. */
	uint8_t a[34] = {0x00, 0x7c, 5, 0xfb, 0};
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, a, 1, y);
	CHECK(y[0] == INFINITY && y[1] == -INFINITY && isnan(y[2]), "Q8_0 inf scale");
	/* a signalling NaN scale comes out quiet, payload kept, for every code */
	put16(a, 0x7c01);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, a, 1, y);
	int bad = 0;
	for (int e = 0; e < 32; e++)
		bad += bits(y[e]) != 0x7fc02000;
	CHECK(bad == 0, "Q8_0 sNaN scale: %08x", (unsigned)bits(y[0]));
	/* subnormal scales are exact: q * 2^-24 */
	put16(a, 0x0001);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, a, 1, y);
	CHECK(y[0] == ldexpf(5.0f, -24) && y[1] == ldexpf(-5.0f, -24), "Q8_0 subnormal d");
	put16(a, 0x83ff); /* largest negative subnormal: -1023 * 2^-24 */
	aprfs_ggml_dequant_ref(APRFS_SRC_Q8_0, a, 1, y);
	CHECK(y[0] == ldexpf(-5115.0f, -24), "Q8_0 subnormal d 0x83ff: %g", y[0]);

	/* Q4_1: d = 0 and a subnormal min: every element is the min; m = -inf with d = inf:
	 * inf - inf = NaN for codes > 0 and 0*inf = NaN for code 0. */
	uint8_t b[20] = {0x00, 0x00, 0x01, 0x80, 0x12};
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_1, b, 1, y);
	CHECK(y[0] == -ldexpf(1.0f, -24) && y[31] == -ldexpf(1.0f, -24), "Q4_1 subnormal min");
	put16(b, 0x7c00);
	put16(b + 2, 0xfc00);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_1, b, 1, y);
	CHECK(isnan(y[0]) && isnan(y[16]) && isnan(y[31]), "Q4_1 inf - inf");
	put16(b, 0x3c00);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_1, b, 1, y);
	CHECK(y[0] == -INFINITY && y[16] == -INFINITY, "Q4_1 m = -inf");

	/* Every type: a NaN in its first f16 scale makes every element NaN... */
	for (size_t t = 0; t < NQ; t++) {
		const struct qtype *q = &qtypes[t];
		uint32_t bb = aprfs_src_dtype_block_bytes(q->d),
			 be = aprfs_src_dtype_block_elems(q->d);
		uint8_t blk[MAXB];
		for (uint32_t i = 0; i < bb; i++)
			blk[i] = (uint8_t)(i * 37 + 11);
		for (int s = 0; s < q->nscale; s++)
			put16(blk + q->off[s], 0x3c00);
		put16(blk + q->off[0], 0x7e00);
		decode(q, blk, 1, y);
		int nn = 0;
		for (uint32_t e = 0; e < be; e++)
			nn += !isnan(y[e]);
		CHECK(nn == 0, "%s NaN scale: %d elements not NaN", aprfs_src_dtype_name(q->d),
		      nn);
		/* ... and -0.0 scales give zeros (signed as the products make them). */
		for (int s = 0; s < q->nscale; s++)
			put16(blk + q->off[s], 0x8000);
		decode(q, blk, 1, y);
		nn = 0;
		for (uint32_t e = 0; e < be; e++)
			nn += y[e] != 0.0f || !same_bits(y[e], naive_elem(q->d, blk, (int)e));
		CHECK(nn == 0, "%s -0 scales: %d elements not the right zero",
		      aprfs_src_dtype_name(q->d), nn);
	}
}

/* ---- random blocks against the per-element restatement ---- */

static void test_random_blocks(void)
{
	static const uint16_t special[] = {0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfe00, 0xffff,
					   0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff};
	enum { NB = 4000 };
	rng r;
	rng_seed(&r, 1, "random blocks");
	uint8_t *in = malloc((size_t)NB * MAXB + 1);
	float *y = malloc((size_t)NB * 256 * sizeof(float));
	for (size_t t = 0; t < NQ; t++) {
		const struct qtype *q = &qtypes[t];
		uint32_t bb = aprfs_src_dtype_block_bytes(q->d),
			 be = aprfs_src_dtype_block_elems(q->d);
		uint8_t *p = in + 1; /* unaligned */
		for (size_t i = 0; i < (size_t)NB * bb; i++)
			p[i] = (uint8_t)rng_next(&r);
		for (int k = 0; k < NB; k++)
			for (int s = 0; s < q->nscale; s++) {
				uint64_t v = rng_next(&r);
				if (v % 4 == 0)
					put16(p + (size_t)k * bb + q->off[s],
					      special[(v >> 8) % (sizeof(special) / 2)]);
			}
		int same = decode(q, p, NB, y);
		long bad = 0, nan = 0;
		for (int k = 0; k < NB; k++)
			for (uint32_t e = 0; e < be; e++) {
				float want = naive_elem(q->d, p + (size_t)k * bb, (int)e);
				bad += !same_bits(y[(size_t)k * be + e], want);
				nan += isnan(want);
			}
		CHECK(same && bad == 0 && nan > 0, "%s random blocks: %ld of %ld differ",
		      aprfs_src_dtype_name(q->d), bad, (long)NB * be);
	}
	/* Q4_K and Q6_K go to the codecs' decoders, whose bytes are GGML's too. */
	uint8_t *p = in + 1;
	float *z = malloc(256 * sizeof(float) * 64);
	for (int i = 0; i < 64 * 210; i++)
		p[i] = (uint8_t)rng_next(&r);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q4_K, p, 64, y);
	aprfs_codec_q4k.decode(p, 64 * 256, NULL, z);
	CHECK(memcmp(y, z, 64 * 256 * sizeof(float)) == 0, "Q4_K is aprfs_codec_q4k.decode");
	aprfs_ggml_dequant_ref(APRFS_SRC_Q6_K, p, 64, y);
	aprfs_codec_q6k.decode(p, 64 * 256, NULL, z);
	CHECK(memcmp(y, z, 64 * 256 * sizeof(float)) == 0, "Q6_K is aprfs_codec_q6k.decode");
	free(z);
	free(in);
	free(y);
}

/* Every kernel table this CPU runs (each ISA's and the default per-kernel one) through
 * aprfs_dequant, the one entry point, on random blocks with special scales and on blocks of
 * every code: each element is the per-element restatement's, bit for bit. */
static void test_kernel_tables(void)
{
	static const uint16_t special[] = {0x7c00, 0xfc00, 0x7c01, 0x7e00, 0xfe00, 0xffff,
					   0x0000, 0x8000, 0x0001, 0x83ff, 0x0400, 0x7bff};
	enum { NB = 600 };
	const aprfs_kernels *tabs[APRFS_ISA_COUNT + 1];
	int nt = 0;
	for (int i = 0; i < APRFS_ISA_COUNT; i++)
		if ((tabs[nt] = aprfs_kernels_for_isa(aprfs_kernels_isa_names[i])) != NULL)
			nt++;
	tabs[nt++] = aprfs_kernels_get();
	CHECK(nt >= 2, "at least the scalar and the default table");
	rng r;
	rng_seed(&r, 5, "kernel tables");
	uint8_t *in = malloc((size_t)NB * MAXB + 3);
	float *y = malloc((size_t)NB * 256 * sizeof(float));
	for (size_t t = 0; t < NQ; t++) {
		const struct qtype *q = &qtypes[t];
		uint32_t bb = aprfs_src_dtype_block_bytes(q->d),
			 be = aprfs_src_dtype_block_elems(q->d);
		uint8_t *p = in + 3; /* unaligned */
		for (int k = 0; k < NB; k++) {
			for (uint32_t i = 0; i < bb; i++) /* blocks 0..255: every byte k */
				p[(size_t)k * bb + i] =
				    k < 256 ? (uint8_t)k : (uint8_t)rng_next(&r);
			for (int s = 0; s < q->nscale; s++) {
				uint64_t v = rng_next(&r);
				put16(p + (size_t)k * bb + q->off[s],
				      k < 256 || v % 3
					  ? (uint16_t)(0x0400 + v % 0x7800)
					  : special[(v >> 8) % (sizeof(special) / 2)]);
			}
		}
		for (int k = 0; k < nt; k++) {
			long bad = 0;
			memset(y, 0, (size_t)NB * be * sizeof(float));
			int rc = aprfs_dequant(tabs[k], q->d, p, NB, y);
			for (int b = 0; b < NB; b++)
				for (uint32_t e = 0; e < be; e++)
					bad += !same_bits(
					    y[(size_t)b * be + e],
					    naive_elem(q->d, p + (size_t)b * bb, (int)e));
			CHECK(rc == 0 && bad == 0, "%s through %s: %ld of %ld differ",
			      aprfs_src_dtype_name(q->d), tabs[k]->isa, bad, (long)NB * be);
		}
	}
	free(in);
	free(y);
}

/* ---- the test encoders ---- */

static double rel_rmse(const float *x, const float *y, size_t n)
{
	double e = 0.0, s = 0.0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)y[i] - x[i];
		e += d * d;
		s += (double)x[i] * x[i];
	}
	return sqrt(e / s);
}

/* Every encoder, decoded by the dequantizer, stays within its type's error on Gaussian
 * data at three magnitudes, on positive data, and with an outlier; zeros stay zeros. */
static void test_encoders(void)
{
	static const struct {
		aprfs_src_dtype d;
		double max_rmse;
	} enc[] = {{APRFS_SRC_F32, 0.0},     {APRFS_SRC_F16, 0.0003}, {APRFS_SRC_BF16, 0.0022},
		   {APRFS_SRC_Q8_0, 0.0065}, {APRFS_SRC_Q4_0, 0.10},  {APRFS_SRC_Q4_1, 0.095},
		   {APRFS_SRC_Q5_0, 0.05},   {APRFS_SRC_Q5_1, 0.046}, {APRFS_SRC_Q2_K, 0.40},
		   {APRFS_SRC_Q3_K, 0.19},   {APRFS_SRC_Q4_K, 0.086}, {APRFS_SRC_Q5_K, 0.046},
		   {APRFS_SRC_Q6_K, 0.021}};
	enum { N = 256 * 256 };
	float *x = malloc(N * sizeof(float)), *y = malloc(N * sizeof(float));
	uint8_t *q = malloc(N * 4);
	for (size_t t = 0; t < sizeof(enc) / sizeof(enc[0]); t++) {
		aprfs_src_dtype d = enc[t].d;
		size_t nb = N / aprfs_src_dtype_block_elems(d);
		const char *name = aprfs_src_dtype_name(d);
		for (int pass = 0; pass < 5; pass++) {
			rng r;
			rng_seed(&r, (uint64_t)pass, "encoders");
			static const float stdv[] = {1.0f, 0.02f, 300.0f, 1.0f, 1.0f};
			for (int i = 0; i < N; i++)
				x[i] = gauss(&r, stdv[pass]);
			if (pass == 3) /* positive data: the min is 0 */
				for (int i = 0; i < N; i++)
					x[i] = fabsf(x[i]) + 0.5f;
			if (pass == 4) /* one large outlier per 4096 */
				for (int i = 0; i < N; i += 4096)
					x[i] = 40.0f;
			CHECK(ggml_encode(d, x, nb, q) == 0, "%s encodes", name);
			aprfs_ggml_dequant_ref(d, q, nb, y);
			double e = rel_rmse(x, y, N);
			/* an outlier costs the blocks holding it their resolution */
			double bound = pass == 4 ? enc[t].max_rmse * 1.6 : enc[t].max_rmse;
			CHECK(e <= bound, "%s pass %d: relative RMSE %.4f > %.4f", name, pass,
			      e, bound);
		}
		memset(x, 0, N * sizeof(float));
		ggml_encode(d, x, nb, q);
		aprfs_ggml_dequant_ref(d, q, nb, y);
		int nz = 0;
		for (int i = 0; i < N; i++)
			nz += y[i] != 0.0f;
		CHECK(nz == 0, "%s: zeros decode to %d non-zeros", name, nz);
	}
	CHECK(ggml_encode(APRFS_SRC_I32, x, 1, q) == -1, "non-float type refused");
	free(x);
	free(y);
	free(q);
}

/* The encoders' blocks are in range: every Q3_K code and scale is one the decoder reads
 * back (re-decoding through the restatement agrees), and Q8_0's d is amax / 127. */
static void test_encoder_details(void)
{
	float x[256];
	uint8_t q[256];
	float y[256];
	rng r;
	rng_seed(&r, 9, "details");
	for (int i = 0; i < 256; i++)
		x[i] = gauss(&r, 1.0f);
	x[7] = -5.0f;
	ggml_encode_q8_0(x, 1, q);
	CHECK(h16(q) == aprfs_f16_to_f32(aprfs_f32_to_f16(5.0f / 127.0f)) &&
		  (int8_t)q[9] == -127,
	      "Q8_0 scale amax/127 and the extreme code");
	ggml_encode_q4_0(x, 1, q);
	CHECK(h16(q) == aprfs_f16_to_f32(aprfs_f32_to_f16(5.0f / 8.0f)) && nib32(q + 2, 7) == 0,
	      "Q4_0: the largest magnitude maps to code 0 (d = max / -8)");
	ggml_encode_q3_k(x, 1, q);
	aprfs_ggml_dequant_ref(APRFS_SRC_Q3_K, q, 1, y);
	int bad = 0;
	for (int e = 0; e < 256; e++)
		bad += !same_bits(y[e], naive_elem(APRFS_SRC_Q3_K, q, e));
	CHECK(bad == 0 && fabsf(y[7] + 5.0f) < 0.05f, "Q3_K block decodes: y[7] = %g", y[7]);
}

int main(void)
{
	test_geometry();
	test_refuses_non_float();
	test_plain_types();
	test_hand_q8_0();
	test_hand_q4();
	test_hand_q5();
	test_hand_q2_k();
	test_hand_q3_k();
	test_hand_q5_k();
	test_codes_32();
	test_codes_q2_k();
	test_codes_q3_k();
	test_codes_q5_k();
	test_special_scales();
	test_random_blocks();
	test_kernel_tables();
	test_encoders();
	test_encoder_details();
	return check_done("test_ggml");
}
