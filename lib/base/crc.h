/* crc.h - the one CRC32 aprfs uses (zlib/gzip CRC-32): ISA-L's crc32_gzip_refl for bytes
 * (PCLMUL, or AVX-512 VPCLMUL where the CPU has it: 67 GB/s here, libdeflate 1.14 gave 17),
 * zlib's crc32_combine to join per-chunk CRCs, so a footer never needs a second pass. */
#ifndef APRFS_CRC_H
#define APRFS_CRC_H

#include <stddef.h>
#include <stdint.h>

/* CRC32 of buf continuing from crc (0 to start). */
uint32_t aprfs_crc32(uint32_t crc, const void *buf, size_t len);
/* CRC of A||B from crc(A), crc(B) and len(B). */
uint32_t aprfs_crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);
/* CRC32 of n zero bytes (n < 64 is the usual case: alignment padding). */
uint32_t aprfs_crc32_zeros(uint64_t n);

#endif
