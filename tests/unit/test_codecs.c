/* test_codecs.c - unit tests of the scalar reference codecs (f32, f16, bf16, q8, q4, nf4,
 * ternary), half.c's conversions (exhaustively against F16C when the CPU has it) and
 * codec.c's registry, sizes and statistics. Expected bytes are worked out by hand. */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/half.h"
#include "check.h"
#include "plan/variant.h"
#include "quant/codec.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#endif

static uint32_t bits_of(float f)
{
	uint32_t u;
	memcpy(&u, &f, sizeof(u));
	return u;
}

static float float_of(uint32_t u)
{
	float f;
	memcpy(&f, &u, sizeof(f));
	return f;
}

/* splitmix64 + Box-Muller: deterministic Gaussian data without libc's rand(). */
typedef struct {
	uint64_t s;
} prng;

static uint64_t prng_next(prng *r)
{
	uint64_t z = (r->s += 0x9e3779b97f4a7c15ull);
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static double prng_unit(prng *r) /* (0, 1] */
{
	return ((double)(prng_next(r) >> 11) + 1.0) * 0x1p-53;
}

static void fill_gauss(float *x, size_t n, uint64_t seed)
{
	prng r = {seed};
	for (size_t i = 0; i < n; i += 2) {
		double rad = sqrt(-2.0 * log(prng_unit(&r)));
		double th = 2.0 * M_PI * prng_unit(&r);
		x[i] = (float)(rad * cos(th));
		if (i + 1 < n)
			x[i + 1] = (float)(rad * sin(th));
	}
}

static int bytes_eq(const uint8_t *got, const uint8_t *want, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (got[i] != want[i]) {
			fprintf(stderr, "  byte %zu: got %02x want %02x\n", i, got[i], want[i]);
			return 0;
		}
	return 1;
}

/* ---- half.c ---- */

static void test_f32_to_f16_vectors(void)
{
	static const struct {
		uint32_t in;
		uint16_t out;
	} v[] = {
	    {0x3f800000, 0x3c00}, /* 1.0 */
	    {0xc0000000, 0xc000}, /* -2.0 */
	    {0x477fe000, 0x7bff}, /* 65504, largest finite */
	    {0x477fefff, 0x7bff}, /* just under 65520 */
	    {0x477ff000, 0x7c00}, /* 65520: tie rounds to even = inf */
	    {0x7f7fffff, 0x7c00}, /* FLT_MAX overflows */
	    {0x7f800000, 0x7c00}, /* inf */
	    {0xff800000, 0xfc00}, /* -inf */
	    {0x80000000, 0x8000}, /* -0 kept */
	    {0x00000001, 0x0000}, /* f32 denormal -> 0 */
	    {0x80000001, 0x8000}, /* ... keeping the sign */
	    {0x33800000, 0x0001}, /* 2^-24, smallest f16 subnormal */
	    {0x33000000, 0x0000}, /* 2^-25: tie between 0 and 1 -> even 0 */
	    {0x33000001, 0x0001}, /* just above the tie */
	    {0x33c00000, 0x0002}, /* 3 * 2^-25: tie between 1 and 2 -> 2 */
	    {0x34400000, 0x0003}, /* 3 * 2^-24, exact */
	    {0x387fe000, 0x0400}, /* 2^-14 - 2^-25: tie 0x3ff/0x400 -> 0x400 */
	    {0x38800000, 0x0400}, /* 2^-14, smallest normal */
	    {0x3f801000, 0x3c00}, /* 1 + 2^-11: tie -> even 0x3c00 */
	    {0x3f803000, 0x3c02}, /* 1 + 3*2^-11: tie -> even 0x3c02 */
	    {0x3f801001, 0x3c01}, /* above the tie */
	    {0x7fc00000, 0x7e00}, /* qNaN */
	    {0x7f800001, 0x7e00}, /* sNaN is quieted */
	    {0xff812345, 0xfe09}, /* sign and top payload bits kept */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint16_t h = aprfs_f32_to_f16(float_of(v[i].in));
		CHECK(h == v[i].out, "f32 %08x -> f16 %04x, want %04x", v[i].in, h, v[i].out);
	}
}

static void test_f16_to_f32_vectors(void)
{
	static const struct {
		uint16_t in;
		uint32_t out;
	} v[] = {
	    {0x0001, 0x33800000}, /* 2^-24 */
	    {0x03ff, 0x387fc000}, /* largest subnormal 1023 * 2^-24 */
	    {0x0200, 0x38000000}, /* 2^-15 */
	    {0x0400, 0x38800000}, {0x3c00, 0x3f800000}, {0x7bff, 0x477fe000},
	    {0x8000, 0x80000000}, {0x7c00, 0x7f800000}, {0xfc00, 0xff800000},
	    {0x7e00, 0x7fc00000}, {0x3555, 0x3eaaa000}, /* 0.333251953125 */
	    {0x7c01, 0x7fc02000},			/* sNaN quieted as vcvtph2ps does */
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint32_t f = bits_of(aprfs_f16_to_f32(v[i].in));
		CHECK(f == v[i].out, "f16 %04x -> f32 %08x, want %08x", v[i].in, f, v[i].out);
	}
}

static void test_bf16_vectors(void)
{
	static const struct {
		uint32_t in;
		uint16_t out;
	} v[] = {
	    {0x3f800000, 0x3f80}, {0x3f808000, 0x3f80}, /* tie -> even */
	    {0x3f818000, 0x3f82},			/* tie -> even, up */
	    {0x3f808001, 0x3f81}, {0x7f7fffff, 0x7f80}, /* overflow to inf */
	    {0xff800000, 0xff80}, {0x80000000, 0x8000}, {0x7f800001, 0x7fc0}, /* NaN quieted */
	    {0xff812345, 0xffc1},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint16_t h = aprfs_f32_to_bf16(float_of(v[i].in));
		CHECK(h == v[i].out, "f32 %08x -> bf16 %04x, want %04x", v[i].in, h, v[i].out);
	}
	CHECK(aprfs_bf16_to_f32(0x4049) == 3.140625f, "in %s", __func__);
	CHECK(bits_of(aprfs_bf16_to_f32(0x8001)) == 0x80010000, "in %s", __func__);
}

/* Every f16 / bf16 value survives a trip through f32; NaN stays NaN. */
static void test_half_roundtrip_all(void)
{
	unsigned bad16 = 0, badbf = 0;
	for (uint32_t h = 0; h < 65536; h++) {
		int nan16 = (h & 0x7c00) == 0x7c00 && (h & 0x3ff);
		uint16_t r = aprfs_f32_to_f16(aprfs_f16_to_f32((uint16_t)h));
		if (nan16 ? (r & 0x7e00) != 0x7e00 : r != h)
			bad16++;
		int nanbf = (h & 0x7f80) == 0x7f80 && (h & 0x7f);
		uint16_t b = aprfs_f32_to_bf16(aprfs_bf16_to_f32((uint16_t)h));
		if (nanbf ? (b & 0x7fc0) != 0x7fc0 : b != h)
			badbf++;
	}
	CHECK(bad16 == 0, "%u f16 values did not round-trip", bad16);
	CHECK(badbf == 0, "%u bf16 values did not round-trip", badbf);
}

#if defined(__x86_64__) || defined(__i386__)
__attribute__((target("f16c"))) static void test_f16c_all(void)
{
	uint64_t bad = 0;
	for (uint64_t b = 0; b < (1ull << 32); b += 8) {
		float in[8];
		uint16_t hw[8];
		for (int j = 0; j < 8; j++)
			in[j] = float_of((uint32_t)(b + j));
		__m256 v = _mm256_loadu_ps(in);
		_mm_storeu_si128((__m128i *)hw, _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT));
		for (int j = 0; j < 8; j++) {
			uint16_t ref = aprfs_f32_to_f16(in[j]);
			if (ref != hw[j] && bad++ < 5)
				fprintf(stderr, "  f32 %08x: ref %04x f16c %04x\n",
					bits_of(in[j]), ref, hw[j]);
		}
	}
	CHECK(bad == 0, "%llu of 2^32 f32->f16 differ from F16C", (unsigned long long)bad);
	printf("f32->f16 matches F16C on all 2^32 inputs: %s\n", bad ? "no" : "yes");

	bad = 0;
	for (uint32_t h = 0; h < 65536; h += 4) {
		uint16_t in[8] = {(uint16_t)h, (uint16_t)(h + 1), (uint16_t)(h + 2),
				  (uint16_t)(h + 3)};
		float hw[4];
		_mm_storeu_ps(hw, _mm_cvtph_ps(_mm_loadu_si128((const __m128i *)in)));
		for (int j = 0; j < 4; j++)
			if (bits_of(aprfs_f16_to_f32(in[j])) != bits_of(hw[j]) && bad++ < 5)
				fprintf(stderr, "  f16 %04x: ref %08x f16c %08x\n", in[j],
					bits_of(aprfs_f16_to_f32(in[j])), bits_of(hw[j]));
	}
	CHECK(bad == 0, "%llu of 65536 f16->f32 differ from F16C", (unsigned long long)bad);
	printf("f16->f32 matches F16C on all 65536 inputs: %s\n", bad ? "no" : "yes");
}
#endif

#if defined(__x86_64__) || defined(__i386__)
/* F16C instructions and the OS saving the YMM registers they use (CPUID leaf 1 ECX bits
 * 29 F16C, 27 OSXSAVE, 28 AVX; XCR0 bits 1 and 2): what both GCC and clang can ask. */
static int cpu_has_f16c(void)
{
	unsigned a, b, c, d;
	if (!__get_cpuid(1, &a, &b, &c, &d) || (c & 0x38000000u) != 0x38000000u)
		return 0;
	uint32_t lo, hi;
	__asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return (lo & 6) == 6;
}
#endif

static void test_f16c(void)
{
#if defined(__x86_64__) || defined(__i386__)
	if (cpu_has_f16c()) {
		test_f16c_all();
		return;
	}
#endif
	printf("F16C exhaustive comparison NOT RUN: this CPU has no F16C\n");
}

/* ---- codec.c ---- */

static void test_maxabs(void)
{
	const float a[] = {1.0f, -3.0f, NAN, 2.0f};
	const float b[] = {NAN, -NAN};
	const float c[] = {-INFINITY, 1.0f};
	const float d[] = {INFINITY, -INFINITY, NAN};
	const float e[] = {-FLT_MAX, INFINITY, 1e30f};
	CHECK(aprfs_stat_maxabs_ref(a, 4) == 3.0f, "in %s", __func__);
	CHECK(aprfs_stat_maxabs_ref(b, 2) == 0.0f, "NaN must be ignored");
	CHECK(aprfs_stat_maxabs_ref(c, 2) == 1.0f, "inf must be ignored: %g",
	      aprfs_stat_maxabs_ref(c, 2));
	CHECK(aprfs_stat_maxabs_ref(d, 3) == 0.0f, "no finite value: 0");
	CHECK(aprfs_stat_maxabs_ref(e, 3) == FLT_MAX, "the largest finite value counts");
	CHECK(aprfs_stat_maxabs_ref(a, 0) == 0.0f, "in %s", __func__);
}

static double sumabs(const float *x, size_t n, uint64_t *count)
{
	*count = 0;
	return aprfs_stat_sumabs_ref(x, n, count);
}

static void test_sumabs(void)
{
	const float a[] = {1.0f, -2.0f, NAN};
	const float b[] = {1.0f, INFINITY, -INFINITY, -0.5f};
	uint64_t cnt;
	CHECK(sumabs(a, 3, &cnt) == 3.0 && cnt == 2, "NaN adds nothing and is not counted");
	CHECK(sumabs(b, 4, &cnt) == 1.5 && cnt == 2, "inf adds nothing and is not counted");
	CHECK(sumabs(a, 0, &cnt) == 0.0 && cnt == 0, "in %s", __func__);
	cnt = 5; /* the count is added to, so per-span calls accumulate */
	CHECK(aprfs_stat_sumabs_ref(a, 3, &cnt) == 3.0 && cnt == 7, "count accumulates: %llu",
	      (unsigned long long)cnt);
	const float big[] = {FLT_MAX, FLT_MAX, FLT_MAX};
	CHECK(sumabs(big, 3, &cnt) == 3.0 * FLT_MAX && cnt == 3, "finite extremes count");

	/* Lane order: 2^53 in lane 0, 1 in lanes 1 and 9. Lane 1 + lane 9 = 2 first, so
	 * the total is 2^53 + 2; summing in element order would lose both ones. */
	float c[10] = {0};
	c[0] = 0x1p53f;
	c[1] = c[9] = 1.0f;
	CHECK(sumabs(c, 10, &cnt) == 0x1p53 + 2.0 && cnt == 10, "%.17g", sumabs(c, 10, &cnt));

	/* Stride within a lane: lane 0 is 2^60 then 255 ones, each lost (ulp 256); lanes
	 * 1..15 hold 256 each and are added exactly: 2^60 + 15 * 256. */
	static float d[16 * 256];
	for (size_t i = 0; i < 16 * 256; i++)
		d[i] = (i & 1) ? -1.0f : 1.0f;
	d[0] = 0x1p60f;
	CHECK(sumabs(d, 16 * 256, &cnt) == 0x1p60 + 3840.0, "%.17g", sumabs(d, 16 * 256, &cnt));
}

static void test_scale_helpers(void)
{
	CHECK(aprfs_q8_scale_from_maxabs(0.0f) == 1.0f, "in %s", __func__);
	CHECK(aprfs_q8_scale_from_maxabs(127.0f) == 1.0f, "in %s", __func__);
	CHECK(aprfs_q8_scale_from_maxabs(63.5f) == 0.5f, "in %s", __func__);
	CHECK(aprfs_q8_scale_from_maxabs(1.0f) == 1.0f / 127.0f, "in %s", __func__);
	CHECK(aprfs_ternary_alpha_from_sum(6.0, 4) == 1.5f, "in %s", __func__);
	CHECK(aprfs_ternary_alpha_from_sum(5.0, 0) == 0.0f, "no finite element: alpha 0");
	CHECK(aprfs_ternary_alpha_from_sum(1.0, 3) == (float)(1.0 / 3.0), "in %s", __func__);
}

static void test_find(void)
{
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++) {
		const aprfs_codec *c = aprfs_variants[i].codec;
		CHECK(aprfs_codec_find(c->name) == c, "find %s", c->name);
	}
	for (size_t i = 0; i < APRFS_CODEC_COUNT; i++)
		CHECK(aprfs_codec_find(aprfs_codecs[i]->name) == aprfs_codecs[i], "find %zu",
		      i);
	CHECK(aprfs_codec_find("q5") == NULL, "in %s", __func__);
	CHECK(aprfs_codec_find("Q4") == NULL, "in %s", __func__);
	CHECK(aprfs_codec_find("") == NULL, "in %s", __func__);
	CHECK(aprfs_codec_find(NULL) == NULL, "in %s", __func__);
	CHECK(aprfs_codec_find("q4") == &aprfs_codec_q4, "in %s", __func__);
	CHECK(aprfs_codec_q8.dtype == 129 && aprfs_codec_q4.dtype == 128, "in %s", __func__);
	CHECK(aprfs_codec_nf4.dtype == 130 && aprfs_codec_ternary.dtype == 131, "in %s",
	      __func__);
	CHECK(aprfs_codec_bf16.dtype == 30 && aprfs_codec_f16.dtype == 1, "in %s", __func__);
	CHECK(aprfs_codec_q8.stat == APRFS_STAT_MAXABS, "in %s", __func__);
	CHECK(aprfs_codec_ternary.stat == APRFS_STAT_MEANABS, "in %s", __func__);
	CHECK(aprfs_codec_q4.stat == APRFS_STAT_NONE && aprfs_codec_nf4.stat == APRFS_STAT_NONE,
	      "in %s", __func__);
}

static void test_sizes(void)
{
	aprfs_qparams p = {.scale = 1.0f, .nf4_block = 64};
	CHECK(aprfs_codec_payload_size(&aprfs_codec_f32, 10, &p) == 40, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_f16, 10, &p) == 20, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_bf16, 10, &p) == 20, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q8, 10, &p) == 14, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q8, 0, &p) == 4, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q4, 32, &p) == 18, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q4, 33, &p) == 36, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q4, 0, &p) == 0, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q4k, 512, &p) == 288, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_q6k, 256, &p) == 210, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_nf4, 128, &p) == 72, "in %s", __func__);
	CHECK(aprfs_codec_block_elems(&aprfs_codec_nf4, &p) == 64, "in %s", __func__);
	CHECK(aprfs_codec_block_bytes(&aprfs_codec_nf4, &p) == 36, "in %s", __func__);
	CHECK(aprfs_codec_block_elems(&aprfs_codec_q4, &p) == 32, "in %s", __func__);
	CHECK(aprfs_codec_block_bytes(&aprfs_codec_q4, &p) == 18, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_ternary, 5, &p) == 6, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_ternary, 8, &p) == 6, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_ternary, 0, &p) == 4, "in %s", __func__);
	CHECK(aprfs_codec_payload_size(&aprfs_codec_nf4, 128, NULL) == 0, "no B: no crash");
	/* 5e9 elements: the arithmetic must not wrap at 32 bits. */
	CHECK(aprfs_codec_payload_size(&aprfs_codec_f32, 5000000000ull, &p) == 20000000000ull,
	      "in %s", __func__);
}

/* ---- codecs: hand-worked vectors ---- */

static void test_float_codecs(void)
{
	uint8_t out[16];
	const float a[] = {1.0f, -0.0f};
	const uint8_t wa[] = {0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0x80};
	aprfs_codec_f32.encode(a, 2, NULL, out);
	CHECK(bytes_eq(out, wa, 8), "f32");

	const float b[] = {1.0f, -2.0f, 65520.0f, NAN};
	const uint8_t wb[] = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x7c, 0x00, 0x7e};
	aprfs_codec_f16.encode(b, 4, NULL, out);
	CHECK(bytes_eq(out, wb, 8), "f16");
	float y[4];
	aprfs_codec_f16.decode(wb, 4, NULL, y);
	CHECK(y[0] == 1.0f && y[1] == -2.0f && isinf(y[2]) && isnan(y[3]), "in %s", __func__);

	const float c[] = {1.0f, float_of(0x3f818000), -INFINITY};
	const uint8_t wc[] = {0x80, 0x3f, 0x82, 0x3f, 0x80, 0xff};
	aprfs_codec_bf16.encode(c, 3, NULL, out);
	CHECK(bytes_eq(out, wc, 6), "bf16");
	aprfs_codec_bf16.decode(wc, 3, NULL, y);
	CHECK(y[0] == 1.0f && y[1] == 1.015625f && y[2] == -INFINITY, "in %s", __func__);
}

static void test_q8_vectors(void)
{
	aprfs_qparams p = {.scale = 0.5f};
	const float x[] = {1.25f,   -1.25f, 0.0f,  63.5f,    100.0f,
			   -100.0f, NAN,    0.75f, INFINITY, -INFINITY};
	const uint8_t want[] = {0x03, 0xfd, 0x00, 0x7f, 0x7f, 0x81, 0x00, 0x02, 0x7f, 0x81};
	const float back[] = {1.5f,   -1.5f, 0.0f, 63.5f, 63.5f,
			      -63.5f, 0.0f,  1.0f, 63.5f, -63.5f};
	uint8_t out[10];
	float y[10];
	aprfs_codec_q8.encode(x, 10, &p, out);
	CHECK(bytes_eq(out, want, 10), "q8 codes");
	aprfs_codec_q8.decode(want, 10, &p, y);
	for (int i = 0; i < 10; i++)
		CHECK(y[i] == back[i], "q8 decode %d: %g", i, y[i]);
}

/* Find x where round(x / s) and round(x * (1/s)) disagree, then check q8 divides. */
static void test_q8_division(void)
{
	float s = aprfs_q8_scale_from_maxabs(1.0f), inv = 1.0f / s;
	int found = 0, agree = 0;
	for (int k = 0; k < 127; k++) {
		float x = ((float)k + 0.5f) * s;
		uint32_t b0 = bits_of(x);
		for (uint32_t d = 0; d < 16; d++) {
			float t = float_of(b0 - 8 + d);
			if (roundf(t / s) == roundf(t * inv))
				continue;
			aprfs_qparams p = {.scale = s};
			uint8_t q;
			aprfs_codec_q8.encode(&t, 1, &p, &q);
			found++;
			agree += (int8_t)q == (int)roundf(t / s);
		}
	}
	printf("q8: %d inputs where x/s and x*(1/s) round apart\n", found);
	CHECK(found > 0, "no distinguishing input found for s = 1/127");
	CHECK(agree == found, "q8 multiplied instead of dividing (%d/%d)", agree, found);
}

static void test_q4_vectors(void)
{
	float x[33] = {2.5f, -2.5f, 7.0f, -7.0f, NAN, 0.49f, -0.5f, 0.5f};
	x[32] = -3.0f;
	uint8_t want[36] = {0x00, 0x3c, 0x5b, 0x1f, 0x88, 0x97};
	memset(want + 6, 0x88, 12);
	want[18] = 0xdb; /* f16(3/7) = 0x36db, then one code: -7 + 8 = 1, rest zero */
	want[19] = 0x36;
	want[20] = 0x01;
	uint8_t out[36];
	memset(out, 0xaa, sizeof(out));
	aprfs_codec_q4.encode(x, 33, NULL, out);
	CHECK(bytes_eq(out, want, 36), "q4 n=33");

	float y[33];
	const float back[8] = {3, -3, 7, -7, 0, 0, -1, 1};
	aprfs_codec_q4.decode(want, 33, NULL, y);
	for (int i = 0; i < 8; i++)
		CHECK(y[i] == back[i], "q4 decode %d: %g", i, y[i]);
	CHECK(y[31] == 0.0f, "in %s", __func__);
	CHECK(y[32] == -7.0f * aprfs_f16_to_f32(0x36db), "%g", y[32]);

	/* s = 1/7 in f32 gives 0.5/s = 3.4999998 -> 3; the f16 scale (0x3092) would give
	 * 3.5009 -> 4: quantization must use the f32 s. */
	float z[32] = {1.0f, -1.0f, 0.5f, -0.2f};
	uint8_t wz[18] = {0x92, 0x30, 0x1f, 0x7b};
	memset(wz + 4, 0x88, 14);
	aprfs_codec_q4.encode(z, 32, NULL, out);
	CHECK(bytes_eq(out, wz, 18), "q4 f32 scale");

	float zero[32] = {0};
	zero[3] = -0.0f;
	uint8_t wzero[18] = {0x00, 0x3c};
	memset(wzero + 2, 0x88, 16);
	aprfs_codec_q4.encode(zero, 32, NULL, out);
	CHECK(bytes_eq(out, wzero, 18), "q4 zeros: s = 1");
}

/* A block whose f16 scale is NaN, inf, subnormal or negative decodes to zeros. */
static void test_q4_decode_scales(void)
{
	static const struct {
		uint16_t h;
		float one;
	} v[] = {
	    {0x3c00, 1.0f}, {0x0400, 0x1p-14f}, {0x03ff, 0.0f}, {0x0001, 0.0f},
	    {0x0000, 0.0f}, {0x7c00, 0.0f},	{0x7e00, 0.0f}, {0xfc00, 0.0f},
	    {0xbc00, 0.0f}, {0x7bff, 65504.0f},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t blk[18];
		blk[0] = (uint8_t)v[i].h;
		blk[1] = (uint8_t)(v[i].h >> 8);
		memset(blk + 2, 0x99, 16); /* every code +1 */
		float y[32];
		aprfs_codec_q4.decode(blk, 32, NULL, y);
		CHECK(y[0] == v[i].one && y[31] == v[i].one && !signbit(y[5]),
		      "scale %04x decodes to %g, want %g", v[i].h, y[0], v[i].one);
	}
}

static const float nf4_l7 = 0.0f, nf4_l8 = 0.07958029955625534f;

static void test_nf4_vectors(void)
{
	aprfs_qparams p = {.nf4_block = 4};
	float mid7 = (nf4_l7 + nf4_l8) / 2.0f;
	float mid0 = (-1.0f + -0.6961928009986877f) / 2.0f;
	const float x[20] = {
	    1.0f,
	    -1.0f,
	    0.0f,
	    0.5f, /* absmax 1 */
	    0.0f,
	    -0.0f,
	    0.0f,
	    0.0f, /* absmax 0: code 7 */
	    1.0f,
	    mid7,
	    mid0,
	    NAN, /* ties go low, NaN -> 7 */
	    NAN,
	    -0.5f,
	    0.25f,
	    0.0f, /* absmax 0.5, NaN ignored */
	    -1.0f,
	    nextafterf(mid7, 1.0f),
	    nextafterf(mid0, 0.0f),
	    -INFINITY, /* -inf reads as -65504: absmax 65504 */
	};
	const uint8_t want[30] = {
	    0x00, 0x00, 0x80, 0x3f, 0x0f, 0xc7, 0x00, 0x00, 0x00, 0x00,
	    0x77, 0x77, 0x00, 0x00, 0x80, 0x3f, 0x7f, 0x70, 0x00, 0x00,
	    0x00, 0x3f, 0x07, 0x7c, 0x00, 0xe0, 0x7f, 0x47, 0x77, 0x07,
	};
	uint8_t out[30];
	memset(out, 0xaa, sizeof(out));
	aprfs_codec_nf4.encode(x, 20, &p, out);
	CHECK(bytes_eq(out, want, 30), "nf4 vectors");

	/* Just past each midpoint flips to the upper level. */
	const float x2[4] = {1.0f, nextafterf(mid7, 1.0f), nextafterf(mid0, 0.0f), 0.0f};
	const uint8_t w2[6] = {0x00, 0x00, 0x80, 0x3f, 0x8f, 0x71};
	aprfs_codec_nf4.encode(x2, 4, &p, out);
	CHECK(bytes_eq(out, w2, 6), "nf4 above midpoints");

	float y[8];
	aprfs_codec_nf4.decode(want, 8, &p, y);
	CHECK(y[0] == 1.0f && y[1] == -1.0f && y[2] == 0.0f && y[3] == 0.44070982933044434f,
	      "in %s", __func__);
	CHECK(y[4] == 0.0f && y[7] == 0.0f, "in %s", __func__);
}

static void test_ternary_vectors(void)
{
	aprfs_qparams p = {.scale = 2.0f};
	const float x[5] = {2.0f, -2.0f, 0.9f, 1.0f, -1.0f};
	uint8_t out[2] = {0xaa, 0xaa};
	aprfs_codec_ternary.encode(x, 5, &p, out);
	CHECK(out[0] == 0x49 && out[1] == 0x02, "%02x %02x", out[0], out[1]);

	const float x2[4] = {10.0f, -10.0f, NAN, 0.99f};
	aprfs_codec_ternary.encode(x2, 4, &p, out);
	CHECK(out[0] == 0x09, "clamp and NaN: %02x", out[0]);

	aprfs_qparams zero = {.scale = 0.0f};
	const float x3[4] = {5.0f, -5.0f, 1.0f, INFINITY};
	aprfs_codec_ternary.encode(x3, 4, &zero, out);
	CHECK(out[0] == 0x00, "alpha 0: %02x", out[0]);

	const uint8_t in[2] = {0x49, 0x02};
	float y[5];
	aprfs_codec_ternary.decode(in, 5, &p, y);
	CHECK(y[0] == 2.0f && y[1] == -2.0f && y[2] == 0.0f && y[3] == 2.0f && y[4] == -2.0f,
	      "in %s", __func__);
	const uint8_t bad = 0xff; /* code 3 is never written; reads as 0 */
	aprfs_codec_ternary.decode(&bad, 4, &p, y);
	CHECK(y[0] == 0.0f && y[3] == 0.0f, "in %s", __func__);
}

/* ---- non-finite and out-of-range values: they never spread (doc/apr-format.md) ---- */

/* The contract's input rule of the block codecs, written out here independently of
 * codec.h: NaN reads as 0, +-inf and anything beyond +-65504 as +-65504. */
static float contract_sanitize(float v)
{
	if (isnan(v))
		return 0.0f;
	return v > 65504.0f ? 65504.0f : v < -65504.0f ? -65504.0f : v;
}

enum {
	SP_NAN,	    /* NaNs of both signs */
	SP_PINF,    /* one +inf */
	SP_NINF,    /* one -inf */
	SP_BIG,	    /* +-1e30 */
	SP_ABOVE,   /* the floats just beyond +-65504, and 65520 (f16's overflow tie) */
	SP_ALL_NAN, /* a block of NaN only */
	SP_ALL_INF, /* a block of +-inf only */
	SP_MIX,	    /* all of it at once, FLT_MAX too */
	SP_COUNT
};
static const char *const sp_names[SP_COUNT] = {"NaN",	 "+inf",    "-inf",    "+-1e30",
					       ">65504", "all NaN", "all inf", "mixed"};

/* Put special values of one kind into the len (>= 4) elements at b. */
static void sp_inject(float *b, size_t len, int kind)
{
	const float above = nextafterf(65504.0f, INFINITY);
	switch (kind) {
	case SP_NAN:
		b[1] = NAN;
		b[len - 1] = -NAN;
		break;
	case SP_PINF: b[len / 2] = INFINITY; break;
	case SP_NINF: b[0] = -INFINITY; break;
	case SP_BIG:
		b[2] = 1e30f;
		b[3] = -1e30f;
		break;
	case SP_ABOVE:
		b[0] = above;
		b[1] = -above;
		b[len - 1] = 65520.0f;
		break;
	case SP_ALL_NAN:
		for (size_t i = 0; i < len; i++)
			b[i] = i & 1 ? -NAN : NAN;
		break;
	case SP_ALL_INF:
		for (size_t i = 0; i < len; i++)
			b[i] = i & 1 ? -INFINITY : INFINITY;
		break;
	default:
		b[0] = NAN;
		b[1] = INFINITY;
		b[2] = -1e30f;
		b[3] = -65505.0f;
		b[len - 1] = -FLT_MAX;
		break;
	}
}

static int all_finite(const float *y, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isfinite(y[i]))
			return 0;
	return 1;
}

/* One block codec (q4, nf4): a Gaussian tensor of whole blocks (plus, for q4, a short last
 * block), once clean and once with block sb holding specials. Every decoded value is
 * finite; every other block's bytes and decoded values are exactly the clean tensor's;
 * and the special tensor encodes exactly as its sanitised copy, i.e. the rule is applied
 * before the scale is chosen and to the codes alike. */
static void check_block_isolation(const aprfs_codec *c, const aprfs_qparams *p, size_t n)
{
	size_t be = aprfs_codec_block_elems(c, p), bb = aprfs_codec_block_bytes(c, p);
	size_t nb = (n + be - 1) / be, sz = nb * bb;
	float *clean = malloc(n * sizeof(float)), *dirty = malloc(n * sizeof(float));
	float *san = malloc(n * sizeof(float));
	float *yc = malloc(n * sizeof(float)), *yd = malloc(n * sizeof(float));
	uint8_t *ec = malloc(sz), *ed = malloc(sz), *es = malloc(sz);
	fill_gauss(clean, n, 99 + n);
	c->encode(clean, n, p, ec);
	c->decode(ec, n, p, yc);
	const size_t sbs[] = {0, nb / 2, nb - 1};
	for (int kind = 0; kind < SP_COUNT; kind++) {
		for (size_t k = 0; k < 3; k++) {
			size_t sb = sbs[k], at = sb * be, len = n - at < be ? n - at : be;
			memcpy(dirty, clean, n * sizeof(float));
			sp_inject(dirty + at, len, kind);
			memset(ed, 0xa5, sz);
			c->encode(dirty, n, p, ed);
			c->decode(ed, n, p, yd);
			size_t other = 0, othery = 0;
			for (size_t b = 0; b < nb; b++)
				other += b != sb && memcmp(ec + b * bb, ed + b * bb, bb) != 0;
			for (size_t i = 0; i < n; i++)
				othery += (i < at || i >= at + len) &&
					  bits_of(yc[i]) != bits_of(yd[i]);
			CHECK(all_finite(yd, n), "%s B=%u %s in block %zu: non-finite decode",
			      c->name, p->nf4_block, sp_names[kind], sb);
			CHECK(other == 0 && othery == 0,
			      "%s %s in block %zu changed %zu other blocks, %zu other values",
			      c->name, sp_names[kind], sb, other, othery);
			for (size_t i = 0; i < n; i++)
				san[i] = contract_sanitize(dirty[i]);
			c->encode(san, n, p, es);
			CHECK(memcmp(es, ed, sz) == 0,
			      "%s B=%u %s in block %zu: not encoded as its sanitised copy",
			      c->name, p->nf4_block, sp_names[kind], sb);
			/* The special block itself: NaN decodes to 0, +-inf to the block's
			 * extreme with its sign. */
			if (kind == SP_NAN)
				CHECK(yd[at + 1] == 0.0f && yd[at + len - 1] == 0.0f,
				      "%s NaN decodes to %g, %g", c->name, yd[at + 1],
				      yd[at + len - 1]);
			if (kind == SP_PINF || kind == SP_NINF) {
				size_t pos = kind == SP_PINF ? at + len / 2 : at;
				float big = 0.0f;
				for (size_t i = at; i < at + len; i++)
					big = fmaxf(big, fabsf(yd[i]));
				CHECK(fabsf(yd[pos]) == big && big > 60000.0f &&
					  (yd[pos] > 0) == (kind == SP_PINF),
				      "%s %s decodes to %g (block max %g)", c->name,
				      sp_names[kind], yd[pos], big);
			}
			if (kind == SP_ALL_NAN)
				for (size_t i = at; i < at + len; i++)
					CHECK(yd[i] == 0.0f, "%s all-NaN block decodes to %g",
					      c->name, yd[i]);
		}
	}
	free(clean);
	free(dirty);
	free(san);
	free(yc);
	free(yd);
	free(ec);
	free(ed);
	free(es);
}

/* Hand-worked: a q4 block with +inf and -1e30 next to small values has the scale of a
 * block whose maximum is 65504 (f16(65504/7) = 0x7092 = 9360): +inf is code 7 + 8 = 15,
 * -1e30 code -7 + 8 = 1 (they read as +-65504, so never -8), and they decode to +-65520;
 * 1.0 and NaN are code 8; a NaN-only block is the all-zero block (scale 1, nibbles 8). */
static void test_q4_specials_vectors(void)
{
	float x[64] = {INFINITY, 1.0f, -1e30f, NAN};
	for (int i = 32; i < 64; i++)
		x[i] = NAN;
	uint8_t out[36];
	aprfs_codec_q4.encode(x, 64, NULL, out);
	CHECK(out[0] == 0x92 && out[1] == 0x70, "q4 inf block scale %02x%02x", out[1], out[0]);
	CHECK(out[2] == 0x8f && out[3] == 0x81, "q4 inf block codes %02x %02x", out[2], out[3]);
	CHECK(out[18] == 0x00 && out[19] == 0x3c && out[20] == 0x88 && out[35] == 0x88,
	      "q4 NaN block %02x%02x %02x", out[19], out[18], out[20]);
	float y[64];
	aprfs_codec_q4.decode(out, 64, NULL, y);
	CHECK(y[0] == 65520.0f && y[2] == -65520.0f && y[1] == 0.0f && y[3] == 0.0f,
	      "q4 inf block decodes to %g %g %g %g", y[0], y[1], y[2], y[3]);
}

/* q8: the scale is maxabs of the finite values / 127, +-inf encode as +-127, NaN as 0,
 * and every other element's code is what it is without the specials. */
static void test_q8_specials(void)
{
	enum { N = 1000 };
	float clean[N], x[N], y[N];
	uint8_t ec[N], ed[N];
	fill_gauss(clean, N, 4242);
	clean[10] = clean[500] = clean[900] = clean[901] = 0.0f;
	memcpy(x, clean, sizeof(x));
	x[10] = INFINITY;
	x[500] = -INFINITY;
	x[900] = NAN;
	x[901] = -NAN;
	float m = aprfs_stat_maxabs_ref(x, N);
	CHECK(m == aprfs_stat_maxabs_ref(clean, N) && isfinite(m) && m > 2.0f,
	      "q8 maxabs with specials %g", m);
	aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(m)};
	CHECK(isfinite(p.scale) && p.scale == m / 127.0f, "q8 scale %g", p.scale);
	aprfs_codec_q8.encode(clean, N, &p, ec);
	aprfs_codec_q8.encode(x, N, &p, ed);
	CHECK(ed[10] == 127 && ed[500] == 0x81 && ed[900] == 0 && ed[901] == 0,
	      "q8 specials code %02x %02x %02x %02x", ed[10], ed[500], ed[900], ed[901]);
	size_t other = 0;
	for (size_t i = 0; i < N; i++)
		other += i != 10 && i != 500 && ed[i] != ec[i];
	CHECK(other == 0, "q8: %zu other codes changed", other);
	aprfs_codec_q8.decode(ed, N, &p, y);
	CHECK(all_finite(y, N) && y[10] == 127.0f * p.scale && y[900] == 0.0f,
	      "q8 decode of specials %g %g", y[10], y[900]);

	/* No finite value but 0: scale 1, so +-inf still saturate and NaN is 0. */
	const float z[4] = {INFINITY, -INFINITY, NAN, 0.0f};
	p.scale = aprfs_q8_scale_from_maxabs(aprfs_stat_maxabs_ref(z, 4));
	aprfs_codec_q8.encode(z, 4, &p, ed);
	CHECK(p.scale == 1.0f && ed[0] == 127 && ed[1] == 0x81 && ed[2] == 0 && ed[3] == 0,
	      "q8 all-special tensor: scale %g codes %02x %02x %02x", p.scale, ed[0], ed[1],
	      ed[2]);
}

/* ternary: alpha = sum of the finite |x| / their count (exact here: quarter integers);
 * +inf is +1, -inf -1, NaN 0, and the other trits are the clean tensor's. */
static void test_ternary_specials(void)
{
	enum { N = 999 };
	float x[N], clean[N];
	double sum = 0;
	uint64_t want_n = 0;
	for (int i = 0; i < N; i++)
		clean[i] = x[i] = (float)(i % 17 - 8) / 4.0f;
	x[3] = INFINITY;
	x[400] = -INFINITY;
	x[401] = NAN;
	x[998] = -NAN;
	for (int i = 0; i < N; i++)
		if (isfinite(x[i])) {
			sum += fabs(x[i]);
			want_n++;
		}
	uint64_t cnt = 0;
	double got = aprfs_stat_sumabs_ref(x, N, &cnt);
	float alpha = aprfs_ternary_alpha_from_sum(got, cnt);
	CHECK(cnt == want_n && cnt == N - 4 && got == sum, "ternary finite sum %g count %llu",
	      got, (unsigned long long)cnt);
	CHECK(alpha == (float)(sum / (double)want_n) && isfinite(alpha) && alpha > 0.0f,
	      "ternary alpha %g over the finite values", alpha);
	aprfs_qparams p = {.scale = alpha};
	uint8_t ec[250], ed[250];
	aprfs_codec_ternary.encode(clean, N, &p, ec);
	aprfs_codec_ternary.encode(x, N, &p, ed);
	unsigned t3 = (ed[0] >> 6) & 3, t400 = ed[100] & 3, t401 = (ed[100] >> 2) & 3,
		 t998 = (ed[249] >> 4) & 3;
	CHECK(t3 == 1 && t400 == 2 && t401 == 0 && t998 == 0,
	      "ternary specials trits %u %u %u %u", t3, t400, t401, t998);
	size_t other = 0;
	for (size_t i = 0; i < N; i++) {
		unsigned a = (ec[i / 4] >> (2 * (i % 4))) & 3,
			 b = (ed[i / 4] >> (2 * (i % 4))) & 3;
		other += i != 3 && i != 400 && i != 401 && i != 998 && a != b;
	}
	CHECK(other == 0, "ternary: %zu other trits changed", other);

	/* No finite element: alpha 0, every trit 0. */
	const float z[5] = {NAN, INFINITY, -INFINITY, -NAN, INFINITY};
	cnt = 0;
	got = aprfs_stat_sumabs_ref(z, 5, &cnt);
	p.scale = aprfs_ternary_alpha_from_sum(got, cnt);
	aprfs_codec_ternary.encode(z, 5, &p, ed);
	CHECK(cnt == 0 && p.scale == 0.0f && ed[0] == 0 && ed[1] == 0,
	      "ternary all-special: count %llu alpha %g", (unsigned long long)cnt, p.scale);
}

static void test_specials(void)
{
	test_q4_specials_vectors();
	test_q8_specials();
	test_ternary_specials();
	const aprfs_qparams nb64 = {.nf4_block = 64}, nb6 = {.nf4_block = 6};
	check_block_isolation(&aprfs_codec_q4, &nb64, 7 * 32);
	check_block_isolation(&aprfs_codec_q4, &nb64, 7 * 32 - 5); /* short last block */
	check_block_isolation(&aprfs_codec_nf4, &nb64, 7 * 64);
	check_block_isolation(&aprfs_codec_nf4, &nb6, 9 * 6);
}

/* ---- codecs: bounds, chunking, accuracy ---- */

typedef struct {
	const aprfs_codec *c;
	aprfs_qparams p;
} codec_case;

static size_t body_size(const codec_case *k, size_t n)
{
	return aprfs_codec_payload_size(k->c, n, &k->p) - k->c->prefix_bytes;
}

/* Input placed flush against a PROT_NONE page: reading past n faults. Output checked for
 * exactly body_size bytes written: two sentinel fills must give the same bytes, and the
 * byte after must be untouched. */
static void check_bounds(const codec_case *k, size_t n, uint8_t *page, size_t psz)
{
	void *at = page + psz - n * sizeof(float);
	float *x = at;
	fill_gauss(x, n, 7 + n);
	size_t sz = body_size(k, n);
	uint8_t *o1 = malloc(sz + 8), *o2 = malloc(sz + 8);
	memset(o1, 0xaa, sz + 8);
	memset(o2, 0x55, sz + 8);
	k->c->encode(x, n, &k->p, o1);
	k->c->encode(x, n, &k->p, o2);
	CHECK(memcmp(o1, o2, sz) == 0 && o1[sz] == 0xaa && o2[sz] == 0x55,
	      "%s n=%zu wrote other than %zu bytes", k->c->name, n, sz);

	uint8_t *in = page + psz - sz;
	memcpy(in, o1, sz);
	float *y = malloc((n + 1) * sizeof(float));
	y[n] = 42.0f;
	k->c->decode(in, n, &k->p, y);
	CHECK(y[n] == 42.0f, "%s n=%zu decode overran", k->c->name, n);
	free(y);
	free(o1);
	free(o2);
}

static void test_bounds(const codec_case *cases, size_t ncases)
{
	size_t psz = (size_t)sysconf(_SC_PAGESIZE), len = 4 * psz;
	uint8_t *m =
	    mmap(NULL, len + psz, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	CHECK(m != MAP_FAILED, "in %s", __func__);
	if (m == MAP_FAILED)
		return;
	CHECK(mprotect(m + len, psz, PROT_NONE) == 0, "in %s", __func__);
	const size_t ns[] = {0, 1, 3, 4, 5, 31, 32, 33, 64, 100, 256};
	for (size_t i = 0; i < ncases; i++)
		for (size_t j = 0; j < sizeof(ns) / sizeof(ns[0]); j++)
			if (ns[j] % aprfs_codec_block_elems(cases[i].c, &cases[i].p) == 0 ||
			    cases[i].c != &aprfs_codec_nf4)
				check_bounds(&cases[i], ns[j], m, len);
	munmap(m, len + psz);
}

/* Any run of whole blocks encodes on its own: chunked output equals the whole. */
static void test_chunking(const codec_case *k, const float *x, size_t n)
{
	size_t be = aprfs_codec_block_elems(k->c, &k->p),
	       bb = aprfs_codec_block_bytes(k->c, &k->p);
	size_t sz = body_size(k, n), chunk = 3 * be;
	uint8_t *whole = malloc(sz), *parts = malloc(sz);
	k->c->encode(x, n, &k->p, whole);
	for (size_t off = 0; off < n; off += chunk) {
		size_t len = n - off < chunk ? n - off : chunk;
		k->c->encode(x + off, len, &k->p, parts + off / be * bb);
	}
	CHECK(memcmp(whole, parts, sz) == 0, "%s chunked encode differs", k->c->name);
	free(whole);
	free(parts);
}

static double rel_rmse(const float *x, const float *y, size_t n)
{
	double e = 0, s = 0;
	for (size_t i = 0; i < n; i++) {
		double d = (double)y[i] - (double)x[i];
		e += d * d;
		s += (double)x[i] * (double)x[i];
	}
	return sqrt(e / s);
}

static double roundtrip_rmse(const codec_case *k, const float *x, size_t n, float *y)
{
	uint8_t *buf = malloc(body_size(k, n));
	k->c->encode(x, n, &k->p, buf);
	k->c->decode(buf, n, &k->p, y);
	free(buf);
	return rel_rmse(x, y, n);
}

/* Per-element error bounds from each codec's step size. */
static void test_elementwise(const float *x, size_t n, float *y)
{
	aprfs_qparams p = {.scale = aprfs_q8_scale_from_maxabs(aprfs_stat_maxabs_ref(x, n))};
	codec_case q8 = {&aprfs_codec_q8, p};
	roundtrip_rmse(&q8, x, n, y);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += fabsf(y[i] - x[i]) > p.scale * 0.5001f;
	CHECK(bad == 0, "q8: %zu elements beyond s/2", bad);

	codec_case q4 = {&aprfs_codec_q4, p};
	roundtrip_rmse(&q4, x, n, y);
	bad = 0;
	for (size_t b = 0; b < n; b += 32) {
		size_t len = n - b < 32 ? n - b : 32;
		float s = aprfs_stat_maxabs_ref(x + b, len) / 7.0f;
		for (size_t i = b; i < b + len; i++)
			bad += fabsf(y[i] - x[i]) > s * 0.51f;
	}
	CHECK(bad == 0, "q4: %zu elements beyond s/2", bad);

	codec_case f16 = {&aprfs_codec_f16, p};
	roundtrip_rmse(&f16, x, n, y);
	bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += bits_of(y[i]) != bits_of(aprfs_f16_to_f32(aprfs_f32_to_f16(x[i])));
	CHECK(bad == 0, "f16 codec disagrees with half.c on %zu", bad);

	codec_case f32 = {&aprfs_codec_f32, p};
	roundtrip_rmse(&f32, x, n, y);
	CHECK(memcmp(x, y, n * sizeof(float)) == 0, "f32 not exact");
}

static void test_accuracy(void)
{
	size_t n = 1u << 20;
	float *x = malloc(n * sizeof(float)), *y = malloc(n * sizeof(float));
	fill_gauss(x, n, 12345);
	float maxabs = aprfs_stat_maxabs_ref(x, n);
	uint64_t nfin = 0;
	double sum = aprfs_stat_sumabs_ref(x, n, &nfin); /* before nfin is read */
	float alpha = aprfs_ternary_alpha_from_sum(sum, nfin);
	CHECK(nfin == n, "every Gaussian value is finite");
	CHECK(alpha > 0.75f && alpha < 0.85f, "mean|x| of N(0,1) is ~0.798: %g", alpha);
	const struct {
		codec_case k;
		double bound;
	} v[] = {
	    {{&aprfs_codec_f16, {.scale = 0}}, 0.001},
	    {{&aprfs_codec_bf16, {.scale = 0}}, 0.005},
	    {{&aprfs_codec_q8, {.scale = aprfs_q8_scale_from_maxabs(maxabs)}}, 0.02},
	    {{&aprfs_codec_q4, {.scale = 0}}, 0.15},
	    {{&aprfs_codec_nf4, {.nf4_block = 64}}, 0.12},
	    {{&aprfs_codec_ternary, {.scale = alpha}}, 0.7},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		double r = roundtrip_rmse(&v[i].k, x, n, y);
		printf("relative RMSE %-8s %.6f (bound %g)\n", v[i].k.c->name, r, v[i].bound);
		CHECK(r < v[i].bound, "%s rmse %g", v[i].k.c->name, r);
		test_chunking(&v[i].k, x, v[i].k.c == &aprfs_codec_nf4 ? n : n - 5);
	}
	test_elementwise(x, 4096 + 17, y);
	free(x);
	free(y);
}

int main(void)
{
	test_f32_to_f16_vectors();
	test_f16_to_f32_vectors();
	test_bf16_vectors();
	test_half_roundtrip_all();
	test_f16c();
	test_maxabs();
	test_sumabs();
	test_scale_helpers();
	test_find();
	test_sizes();
	test_float_codecs();
	test_q8_vectors();
	test_q8_division();
	test_q4_vectors();
	test_q4_decode_scales();
	test_nf4_vectors();
	test_ternary_vectors();
	test_specials();
	const codec_case cases[] = {
	    {&aprfs_codec_f32, {.scale = 0}},	     {&aprfs_codec_f16, {.scale = 0}},
	    {&aprfs_codec_bf16, {.scale = 0}},	     {&aprfs_codec_q8, {.scale = 0.02f}},
	    {&aprfs_codec_q4, {.scale = 0}},	     {&aprfs_codec_nf4, {.nf4_block = 4}},
	    {&aprfs_codec_ternary, {.scale = 0.8f}},
	};
	test_bounds(cases, sizeof(cases) / sizeof(cases[0]));
	test_accuracy();
	return check_done("codecs");
}
