/* test_crc.c - aprfs' CRC32 is the zlib/gzip CRC-32 the contract names: the standard check
 * value, zlib's own crc32() on every length up to and past the SIMD block sizes and at
 * every alignment, chaining at any split, combine, and runs of zeros. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <zlib.h>

#include "base/crc.h"
#include "check.h"

static uint32_t zlib_crc(const uint8_t *b, size_t n)
{
	return (uint32_t)crc32(0, b, (uInt)n);
}

int main(void)
{
	enum { N = 70000 };
	uint8_t *b = malloc(N + 64), *z = calloc(1, N);
	uint64_t x = 0x9E3779B97F4A7C15ull;

	if (!b || !z)
		return 2;
	for (size_t i = 0; i < N + 64; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		b[i] = (uint8_t)x;
	}
	CHECK(aprfs_crc32(0, "123456789", 9) == 0xCBF43926u, "check value %08x",
	      aprfs_crc32(0, "123456789", 9));
	CHECK(aprfs_crc32(0, b, 0) == 0, "empty");
	/* every length to 1100, then lengths around the sizes SIMD loops step by */
	for (size_t n = 0; n <= N; n = n < 1100 ? n + 1 : n * 5 / 4 + 61)
		for (size_t a = 0; a < 64; a += n < 1100 ? 63 : 1)
			CHECK(aprfs_crc32(0, b + a, n) == zlib_crc(b + a, n),
			      "length %zu at +%zu", n, a);
	/* chaining and combining at any split give the CRC of the whole */
	uint32_t whole = zlib_crc(b, 4099);
	for (size_t k = 0; k <= 4099; k += 1 + k / 64) {
		uint32_t a = aprfs_crc32(0, b, k);
		CHECK(aprfs_crc32(a, b + k, 4099 - k) == whole, "chained at %zu", k);
		CHECK(aprfs_crc32_combine(a, aprfs_crc32(0, b + k, 4099 - k), 4099 - k) ==
			  whole,
		      "combined at %zu", k);
	}
	uint64_t zn[] = {0, 1, 63, 4096, 4097, N};
	for (size_t i = 0; i < sizeof(zn) / sizeof(zn[0]); i++)
		CHECK(aprfs_crc32_zeros(zn[i]) == zlib_crc(z, (size_t)zn[i]), "%llu zeros",
		      (unsigned long long)zn[i]);
	free(b);
	free(z);
	return check_done("crc");
}
