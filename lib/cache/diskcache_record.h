/* diskcache_record.h - the bytes of the disk tier (diskcache_record.c): keys serialized and
 * hashed, record headers and their checks, LZ4, pack headers, index entries, trailers. The
 * layout is in diskcache_shared.h. */
#ifndef APRFS_DISKCACHE_RECORD_H
#define APRFS_DISKCACHE_RECORD_H

#include "cache/diskcache_shared.h"

void dc_key_bytes(const aprfs_dc_key *k, uint8_t out[DC_KEY]);
dc_hash dc_key_hash(const aprfs_dc_key *k);
/* The key those bytes serialize (-1: another codec format version). */
int dc_key_parse(const uint8_t in[DC_KEY], aprfs_dc_key *k);
/* The record header for a payload; *loc gets sizes, CRC and flags (not pack, offset). */
void dc_rec_header(const aprfs_dc_key *k, const uint8_t *payload, uint32_t slen, uint32_t clen,
		   uint32_t crc, uint32_t flags, uint8_t out[DC_REC]);
/* Compress src into dst (capacity dc_lz4_bound) when it saves 10%: its size, else 0. */
size_t dc_lz4_try(const void *src, size_t len, uint8_t *dst, size_t cap);
size_t dc_lz4_bound(size_t len);
/* Check a record's header and payload against what the index promised and the key. 0,
 * or -1 and *why. */
int dc_rec_verify(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *hdr,
		  const uint8_t *payload, const char **why);
/* Check a record read whole (header + payload) and decode it into buf (exactly clen
 * bytes). 0, or -1 and *why. */
int dc_rec_decode(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *rec, void *buf,
		  const char **why);
/* A record header seen walking an unsealed pack: 0 and *l (sizes, hash) when sane. */
int dc_rec_parse(const uint8_t hdr[DC_REC], dc_loc *l);
/* The payload's checksum matches its (parsed) header. */
int dc_rec_payload_ok(const uint8_t hdr[DC_REC], const uint8_t *p, uint32_t slen);
void dc_pack_header(const char *writer, uint8_t out[DC_PACK_HEAD]);
int dc_pack_header_ok(const uint8_t h[DC_PACK_HEAD]);
void dc_idx_put(const dc_loc *l, uint8_t out[DC_IDX]);
void dc_idx_get(const uint8_t in[DC_IDX], dc_loc *l);
void dc_trailer(uint64_t idx_off, uint64_t count, const uint8_t *idx, uint8_t out[DC_TRAILER]);
/* 0 and the index's offset and count when the trailer is sane for a file of size bytes. */
int dc_trailer_parse(const uint8_t t[DC_TRAILER], uint64_t size, uint64_t *idx_off,
		     uint64_t *count, uint64_t *idx_sum);
uint64_t dc_sum64(const void *p, size_t n);

#endif
