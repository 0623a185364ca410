/* crc.c - CRC32 helpers over ISA-L and zlib (see crc.h); the APR header checksum over
 * them is format/aprfmt.c's.
 * Nothing here is hand-rolled: the libraries are faster and already correct. */
#include "base/crc.h"

#include <isa-l/crc.h>
#include <zlib.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

/* ISA-L's AVX-512 CRC returns with the upper halves of the vector registers dirty (no
 * vzeroupper), and every SSE instruction after it then pays a transition penalty: the
 * scalar codecs ran three times slower. Clean them on the way out, where AVX exists. */
__attribute__((target("avx"))) static void zero_upper(void)
{
	_mm256_zeroupper();
}
static void clean_upper(void)
{
	if (__builtin_cpu_supports("avx"))
		zero_upper();
}
#else
static void clean_upper(void) {}
#endif

uint32_t aprfs_crc32(uint32_t crc, const void *buf, size_t len)
{
	crc = crc32_gzip_refl(crc, buf, len);
	clean_upper();
	return crc;
}

uint32_t aprfs_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b)
{
	return (uint32_t)crc32_combine(crc_a, crc_b, (z_off_t)len_b);
}

uint32_t aprfs_crc32_zeros(uint64_t n)
{
	static const uint8_t zeros[4096];
	uint32_t crc = 0;

	while (n > 0) {
		size_t step = n < sizeof(zeros) ? (size_t)n : sizeof(zeros);
		crc = aprfs_crc32(crc, zeros, step);
		n -= step;
	}
	return crc;
}
