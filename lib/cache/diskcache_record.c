/* diskcache_record.c - the bytes of the disk tier: the key serialized and hashed, record
 * headers (every check a reader makes before it trusts a record), LZ4 only where it saves
 * 10 %, pack headers, index entries and trailers. No I/O. */
#include "cache/diskcache_record.h"

#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/crc.h"
#include "quant/codec.h"

static const uint8_t rec_magic[8] = {'A', 'P', 'R', 'F', 'S', 'R', 'C', '1'};
static const uint8_t pack_magic[8] = {'A', 'P', 'R', 'F', 'S', 'P', 'K', '1'};
static const uint8_t tail_magic[8] = {'A', 'P', 'R', 'F', 'S', 'P', 'X', '1'};

static void put_le(uint8_t *p, uint64_t v, int n)
{
	for (int i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, int n)
{
	uint64_t v = 0;
	for (int i = n - 1; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

uint64_t dc_sum64(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

/* Fixed little-endian layout, so hosts of any ABI agree: the codec format version (codec.h)
 * first, then every field of the key; the rest is zero. */
void dc_key_bytes(const aprfs_dc_key *k, uint8_t out[DC_KEY])
{
	memset(out, 0, DC_KEY);
	put_le(out, APRFS_CODEC_FORMAT_VERSION, 4);
	out[4] = k->kind;
	out[5] = k->variant;
	put_le(out + 8, k->nf4_block, 4);
	put_le(out + 12, k->chunk_elems, 4);
	put_le(out + 16, k->index, 8);
	memcpy(out + 24, k->source, 16);
	memcpy(out + 40, k->extra, 16);
}

int dc_key_parse(const uint8_t in[DC_KEY], aprfs_dc_key *k)
{
	if (get_le(in, 4) != APRFS_CODEC_FORMAT_VERSION)
		return -1;
	memset(k, 0, sizeof(*k));
	k->kind = in[4];
	k->variant = in[5];
	k->nf4_block = (uint32_t)get_le(in + 8, 4);
	k->chunk_elems = (uint32_t)get_le(in + 12, 4);
	k->index = get_le(in + 16, 8);
	memcpy(k->source, in + 24, 16);
	memcpy(k->extra, in + 40, 16);
	return 0;
}

dc_hash dc_key_hash(const aprfs_dc_key *k)
{
	uint8_t buf[sizeof(rec_magic) + DC_KEY];
	XXH128_canonical_t c;
	dc_hash h;

	memcpy(buf, rec_magic, sizeof(rec_magic));
	dc_key_bytes(k, buf + sizeof(rec_magic));
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof(buf)));
	memcpy(h.b, c.digest, sizeof(h.b));
	return h;
}

void dc_rec_header(const aprfs_dc_key *k, const uint8_t *payload, uint32_t slen, uint32_t clen,
		   uint32_t crc, uint32_t flags, uint8_t out[DC_REC])
{
	memset(out, 0, DC_REC);
	memcpy(out, rec_magic, sizeof(rec_magic));
	dc_key_bytes(k, out + 8);
	put_le(out + 72, clen, 4);
	put_le(out + 76, slen, 4);
	put_le(out + 80, crc, 4);
	put_le(out + 84, flags, 4);
	put_le(out + 88, aprfs_crc32(0, payload, slen), 8);
	put_le(out + 124, XXH32(out, 124, 0), 4);
}

size_t dc_lz4_bound(size_t len)
{
	return (size_t)LZ4_compressBound((int)len);
}

size_t dc_lz4_try(const void *src, size_t len, uint8_t *dst, size_t cap)
{
	if (len < 64 || len > DC_REC_MAX)
		return 0;
	int n = LZ4_compress_default(src, (char *)dst, (int)len, (int)cap);
	return n > 0 && (size_t)n <= len / 10 * 9 ? (size_t)n : 0;
}

int dc_rec_parse(const uint8_t hdr[DC_REC], dc_loc *l)
{
	uint8_t buf[sizeof(rec_magic) + DC_KEY];
	XXH128_canonical_t c;

	if (memcmp(hdr, rec_magic, sizeof(rec_magic)) != 0 ||
	    get_le(hdr + 124, 4) != XXH32(hdr, 124, 0))
		return -1;
	l->clen = (uint32_t)get_le(hdr + 72, 4);
	l->slen = (uint32_t)get_le(hdr + 76, 4);
	l->crc = (uint32_t)get_le(hdr + 80, 4);
	l->flags = (uint32_t)get_le(hdr + 84, 4);
	if (l->clen > DC_REC_MAX || l->slen > DC_REC_MAX || (l->flags & ~DC_REC_LZ4) ||
	    (!(l->flags & DC_REC_LZ4) && l->slen != l->clen))
		return -1;
	memcpy(buf, rec_magic, sizeof(rec_magic));
	memcpy(buf + sizeof(rec_magic), hdr + 8, DC_KEY);
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof(buf)));
	memcpy(l->h.b, c.digest, sizeof(l->h.b));
	return 0;
}

int dc_rec_payload_ok(const uint8_t hdr[DC_REC], const uint8_t *p, uint32_t slen)
{
	return get_le(hdr + 88, 8) == aprfs_crc32(0, p, slen);
}

int dc_rec_verify(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *rec, const uint8_t *p,
		  const char **why)
{
	uint8_t kb[DC_KEY];
	dc_loc got;

	if (dc_rec_parse(rec, &got) != 0) {
		*why = "bad record header (magic or checksum)";
		return -1;
	}
	dc_key_bytes(k, kb);
	if (memcmp(rec + 8, kb, DC_KEY) != 0) {
		*why = "key differs from the index's (misfiled record)";
		return -1;
	}
	if (got.clen != l->clen || got.slen != l->slen || got.crc != l->crc ||
	    got.flags != l->flags) {
		*why = "record header differs from the index";
		return -1;
	}
	if (get_le(rec + 88, 8) != aprfs_crc32(0, p, l->slen)) {
		*why = "payload checksum mismatch";
		return -1;
	}
	return 0;
}

int dc_rec_decode(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *rec, void *buf,
		  const char **why)
{
	const uint8_t *p = rec + DC_REC;

	if (dc_rec_verify(k, l, rec, p, why) != 0)
		return -1;
	if (!(l->flags & DC_REC_LZ4)) {
		memcpy(buf, p, l->clen);
		return 0;
	}
	int n = LZ4_decompress_safe((const char *)p, buf, (int)l->slen, (int)l->clen);
	if (n < 0 || (uint32_t)n != l->clen) {
		*why = "LZ4 block does not decode to its size";
		return -1;
	}
	return 0;
}

void dc_pack_header(const char *writer, uint8_t out[DC_PACK_HEAD])
{
	memset(out, 0, DC_PACK_HEAD);
	memcpy(out, pack_magic, sizeof(pack_magic));
	snprintf((char *)out + 8, 52, "%s", writer);
	put_le(out + 60, XXH32(out, 60, 0), 4);
}

int dc_pack_header_ok(const uint8_t h[DC_PACK_HEAD])
{
	return memcmp(h, pack_magic, sizeof(pack_magic)) == 0 &&
	       get_le(h + 60, 4) == XXH32(h, 60, 0);
}

void dc_idx_put(const dc_loc *l, uint8_t out[DC_IDX])
{
	memcpy(out, l->h.b, 16);
	put_le(out + 16, l->off, 8);
	put_le(out + 24, l->clen, 4);
	put_le(out + 28, l->slen, 4);
	put_le(out + 32, l->crc, 4);
	put_le(out + 36, l->flags, 4);
}

void dc_idx_get(const uint8_t in[DC_IDX], dc_loc *l)
{
	memcpy(l->h.b, in, 16);
	l->off = get_le(in + 16, 8);
	l->clen = (uint32_t)get_le(in + 24, 4);
	l->slen = (uint32_t)get_le(in + 28, 4);
	l->crc = (uint32_t)get_le(in + 32, 4);
	l->flags = (uint32_t)get_le(in + 36, 4);
}

void dc_trailer(uint64_t idx_off, uint64_t count, const uint8_t *idx, uint8_t out[DC_TRAILER])
{
	memset(out, 0, DC_TRAILER);
	memcpy(out, tail_magic, sizeof(tail_magic));
	put_le(out + 8, idx_off, 8);
	put_le(out + 16, count, 8);
	put_le(out + 24, XXH3_64bits(idx, count * DC_IDX), 8);
	put_le(out + 60, XXH32(out, 60, 0), 4);
}

int dc_trailer_parse(const uint8_t t[DC_TRAILER], uint64_t size, uint64_t *idx_off,
		     uint64_t *count, uint64_t *idx_sum)
{
	if (memcmp(t, tail_magic, sizeof(tail_magic)) != 0 ||
	    get_le(t + 60, 4) != XXH32(t, 60, 0))
		return -1;
	*idx_off = get_le(t + 8, 8);
	*count = get_le(t + 16, 8);
	*idx_sum = get_le(t + 24, 8);
	if (size < DC_PACK_HEAD + DC_TRAILER || *idx_off < DC_PACK_HEAD ||
	    *count > (size - DC_TRAILER) / DC_IDX ||
	    *idx_off + *count * DC_IDX != size - DC_TRAILER)
		return -1;
	return 0;
}
