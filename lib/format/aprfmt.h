/* aprfmt.h - APR v2 container constants shared by the writer (layout.c) and the reader
 * (aprread.c): section sizes, header field offsets, flags; the two functions are in
 * aprfmt.c. doc/apr-format.md describes them.
 *
 * lib/format/ (above base/): the APR v2 container (these constants), dtype ids (dtype.h) and
 * the strict reader `inspect` uses (aprread.h). */
#ifndef APRFS_APRFMT_H
#define APRFS_APRFMT_H

#include <stdint.h>
#include <string.h>

#define APR_HEADER_SIZE 64
#define APR_ALIGN	64
#define APR_FOOTER_SIZE 4
#define APR_MAX_NAME	256
#define APR_MAX_NDIM	8

#define APR_FLAG_LZ4		0x0001
#define APR_FLAG_ZSTD		0x0002
#define APR_FLAG_ENCRYPTED	0x0004
#define APR_FLAG_SIGNED		0x0008
#define APR_FLAG_SHARDED	0x0010
#define APR_FLAG_QUANTIZED	0x0020
#define APR_FLAG_HAS_FILTERBANK 0x0040
#define APR_FLAG_HAS_MODEL_CARD 0x0080
#define APR_FLAG_STREAMING	0x0100
#define APR_FLAG_HAS_VOCAB	0x0200
#define APR_FLAG_ROW_MAJOR	0x0400
#define APR_FLAG_COLUMN_MAJOR	0x0800

/* Header field offsets. */
#define APR_OFF_FLAGS	     6
#define APR_OFF_TENSOR_COUNT 8
#define APR_OFF_META_OFFSET  12
#define APR_OFF_META_SIZE    20
#define APR_OFF_INDEX_OFFSET 24
#define APR_OFF_DATA_OFFSET  32
#define APR_OFF_CHECKSUM     40

static inline uint64_t apr_align64(uint64_t n)
{
	return (n + (APR_ALIGN - 1)) & ~(uint64_t)(APR_ALIGN - 1);
}

static inline void apr_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v, p[1] = (uint8_t)(v >> 8);
}
static inline void apr_put32(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline void apr_put64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t apr_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}
static inline uint32_t apr_get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}
static inline uint64_t apr_get64(const uint8_t *p)
{
	return (uint64_t)apr_get32(p) | (uint64_t)apr_get32(p + 4) << 32;
}

/* Header checksum: CRC32 of bytes 0..40 followed by bytes 44..64. */
uint32_t apr_header_checksum(const uint8_t header[APR_HEADER_SIZE]);

/* A real number destined for an f32 metadata field: finite and within f32 range (what a
 * reader parsing it as f32 accepts). Used by every source of facts and by aprread.c. */
int aprfs_config_f32_ok(double v);

#endif
