/* diskcache_entry.c - the bytes of one disk cache entry: the key serialized and hashed
 * into the entry's name, the 128-byte header and the LZ4 frame (encode), and every check
 * a reader makes before it trusts an entry (decode). Its only I/O: reading a stored entry
 * straight into place. */
#define _GNU_SOURCE /* preadv2 */
#include <errno.h>
#include <lz4frame.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <xxhash.h>

#include "cache/diskcache_impl.h"
#include "quant/codec.h"

static const uint8_t magic[8] = {'A', 'P', 'R', 'F', 'S', 'D', 'C', '1'};

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

/* Fixed little-endian layout, so hosts of any ABI agree on names: the codec format version
 * (codec.h) first, then every field of the key; the rest is zero. */
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

/* XXH3-128 of the magic and the key, in hex; its first byte picks one of 256
 * subdirectories, so no directory grows beyond a few thousand entries per GiB. */
void dc_entry_stem(const aprfs_dc_key *k, char out[DC_NAME_MAX])
{
	uint8_t buf[sizeof(magic) + DC_KEY];
	XXH128_canonical_t c;

	memcpy(buf, magic, sizeof(magic));
	dc_key_bytes(k, buf + sizeof(magic));
	XXH128_canonicalFromHash(&c, XXH3_128bits(buf, sizeof(buf)));
	snprintf(out, DC_NAME_MAX, "%02x/", c.digest[0]);
	for (int i = 0; i < 16; i++)
		snprintf(out + 3 + 2 * i, 3, "%02x", c.digest[i]);
}

void aprfs_diskcache_entry_name(const aprfs_dc_key *key, char *buf, size_t size)
{
	char stem[DC_NAME_MAX];

	dc_entry_stem(key, stem);
	snprintf(buf, size, "%s.ent", stem);
}

static void prefs_for(size_t len, LZ4F_preferences_t *p)
{
	memset(p, 0, sizeof(*p));
	/* 64 KiB blocks: LZ4's window is 64 KiB anyway, and a decoder whose output space is
	 * at least a block decodes straight into it. */
	p->frameInfo.blockSizeID = LZ4F_max64KB;
	p->frameInfo.blockMode = LZ4F_blockIndependent;
	p->frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled;
	p->frameInfo.contentSize = len;
	p->compressionLevel = 0; /* fast: the writer must keep up with the quantizers */
}

size_t dc_entry_max(size_t len)
{
	LZ4F_preferences_t p;

	prefs_for(len, &p);
	return DC_HEADER + LZ4F_compressFrameBound(len, &p);
}

int dc_encode(const aprfs_dc_key *k, const void *data, size_t len, uint32_t crc, uint8_t **out,
	      size_t *out_len)
{
	LZ4F_preferences_t p;
	size_t cap = dc_entry_max(len), n;
	uint8_t *buf = malloc(cap);

	if (!buf)
		return -ENOMEM;
	prefs_for(len, &p);
	/* liblz4 stores a block as is when compressing it would not make it smaller. */
	n = LZ4F_compressFrame(buf + DC_HEADER, cap - DC_HEADER, data, len, &p);
	if (LZ4F_isError(n)) {
		free(buf);
		return -EIO;
	}
	memset(buf, 0, DC_HEADER);
	memcpy(buf, magic, sizeof(magic));
	dc_key_bytes(k, buf + 8);
	put_le(buf + 72, len, 8);
	put_le(buf + 80, crc, 4);
	put_le(buf + 88, n, 8);
	put_le(buf + 124, XXH32(buf, 124, 0), 4);
	*out = buf;
	*out_len = DC_HEADER + n;
	return 0;
}

int dc_check_header(const aprfs_dc_key *k, const uint8_t *hdr, uint64_t file_len, size_t len,
		    uint32_t *crc, const char **why)
{
	uint8_t kb[DC_KEY];

	if (file_len < DC_HEADER) {
		*why = "truncated header";
		return -1;
	}
	if (memcmp(hdr, magic, sizeof(magic)) != 0) {
		*why = "bad magic";
		return -1;
	}
	if (get_le(hdr + 124, 4) != XXH32(hdr, 124, 0)) {
		*why = "header checksum mismatch";
		return -1;
	}
	dc_key_bytes(k, kb);
	if (memcmp(hdr + 8, kb, DC_KEY) != 0) {
		*why = "key mismatch (misfiled entry)";
		return -1;
	}
	if (get_le(hdr + 72, 8) != len) {
		*why = "content size differs from the plan";
		return -1;
	}
	if (get_le(hdr + 88, 8) != file_len - DC_HEADER || file_len > dc_entry_max(len)) {
		*why = "file size differs from the header (truncated or extended)";
		return -1;
	}
	if (crc)
		*crc = (uint32_t)get_le(hdr + 80, 4);
	return 0;
}

/* Per thread, kept for the thread's life: a decompression context (creating one per entry
 * would allocate its block buffers on every hit) and the buffer entry files are read into
 * (a fresh malloc per hit would fault its pages in every time). */
typedef struct dc_thread {
	LZ4F_dctx *dctx;
	uint8_t *buf;
	size_t cap;
} dc_thread;

static pthread_key_t thread_key;
static pthread_once_t thread_once = PTHREAD_ONCE_INIT;

static void thread_free(void *p)
{
	dc_thread *t = p;

	LZ4F_freeDecompressionContext(t->dctx);
	free(t->buf);
	free(t);
}

static void thread_key_make(void)
{
	pthread_key_create(&thread_key, thread_free);
}

static dc_thread *thread_state(void)
{
	dc_thread *t;

	pthread_once(&thread_once, thread_key_make);
	t = pthread_getspecific(thread_key);
	if (!t && (t = calloc(1, sizeof(*t)))) {
		if (LZ4F_isError(LZ4F_createDecompressionContext(&t->dctx, LZ4F_VERSION))) {
			free(t);
			return NULL;
		}
		pthread_setspecific(thread_key, t);
	}
	return t;
}

uint8_t *dc_read_buffer(size_t n)
{
	dc_thread *t = thread_state();

	if (t && t->cap < n) {
		uint8_t *b = realloc(t->buf, n);
		if (!b)
			return NULL;
		t->buf = b;
		t->cap = n;
	}
	return t ? t->buf : NULL;
}

/* The frame: its declared content size and checksum flag, every block, nothing after its
 * end, and the content checksum. The checksum is verified here with libxxhash's XXH32
 * (the frame format's: seed 0 over the content, the frame's last 4 bytes) rather than by
 * liblz4, whose own XXH32 runs at a third of the speed and was the hit path's hottest code. */
static int decode_frame(const uint8_t *src, size_t n, void *buf, size_t len, const char **why)
{
	dc_thread *t = thread_state();
	LZ4F_decompressOptions_t opt = {.skipChecksums = 1};
	LZ4F_frameInfo_t fi;
	size_t used = n, out = len, r;

	if (!t) {
		*why = "out of memory";
		return -1;
	}
	LZ4F_resetDecompressionContext(t->dctx);
	r = LZ4F_getFrameInfo(t->dctx, &fi, src, &used);
	if (LZ4F_isError(r) || fi.contentSize != len ||
	    fi.contentChecksumFlag != LZ4F_contentChecksumEnabled || n < used + 8) {
		*why = "bad LZ4 frame header";
		return -1;
	}
	size_t rest = n - used;
	r = LZ4F_decompress(t->dctx, buf, &out, src + used, &rest, &opt);
	if (LZ4F_isError(r)) {
		*why = LZ4F_getErrorName(r);
		return -1;
	}
	if (r != 0 || out != len || used + rest != n) {
		*why = r != 0 ? "truncated LZ4 frame" : "bytes beyond the LZ4 frame";
		return -1;
	}
	if (XXH32(buf, len, 0) != (uint32_t)get_le(src + n - 4, 4)) {
		*why = "LZ4 content checksum mismatch";
		return -1;
	}
	return 0;
}

int dc_decode(const aprfs_dc_key *k, const uint8_t *file, size_t file_len, void *buf,
	      size_t len, uint32_t *crc, const char **why)
{
	if (dc_check_header(k, file, file_len, len, crc, why) != 0)
		return -1;
	return decode_frame(file + DC_HEADER, file_len - DC_HEADER, buf, len, why);
}

/* ---- stored entries, read straight into place ----
 * An entry whose blocks liblz4 stored as is (quantized bytes: nearly all of them) is laid
 * out as: header, the 15-byte frame header, then per 64 KiB block a size word and the bytes
 * themselves, then the end mark and the content checksum. Such a file is read with one
 * preadv whose iovecs put every block's bytes where they belong in the caller's buffer,
 * saving the decoder's copy of every byte; it gets every check the decoder path makes. */

#define STORED_BLOCK  65536u
#define STORED_MAX_IO 64 /* blocks (4 MiB): larger entries take the decoder's path */
#define FRAME_HEAD    15 /* magic, FLG, BD, content size, HC */

static size_t stored_blocks(size_t len)
{
	return (len + STORED_BLOCK - 1) / STORED_BLOCK;
}

uint64_t dc_stored_size(size_t len)
{
	return DC_HEADER + FRAME_HEAD + 4 * (uint64_t)stored_blocks(len) + len + 8;
}

/* The frame header says: this content size, a content checksum, 64 KiB blocks, nothing
 * else (no block checksums, no dictionary), and its own checksum byte is right. */
static int stored_frame_head(const uint8_t *h, size_t len)
{
	LZ4F_dctx *d = thread_state() ? thread_state()->dctx : NULL;
	LZ4F_frameInfo_t fi;
	size_t used = FRAME_HEAD;

	if (!d)
		return -1;
	LZ4F_resetDecompressionContext(d);
	size_t r = LZ4F_getFrameInfo(d, &fi, h, &used);
	return LZ4F_isError(r) || used != FRAME_HEAD || fi.contentSize != len ||
		       fi.contentChecksumFlag != LZ4F_contentChecksumEnabled ||
		       fi.blockChecksumFlag != LZ4F_noBlockChecksum ||
		       fi.blockSizeID != LZ4F_max64KB || fi.dictID != 0
		   ? -1
		   : 0;
}

/* The iovecs filled from offset 0: first without waiting (RWF_NOWAIT: the page cache
 * only), and only if that comes up short, again with waiting, saying the entry was cold. */
static ssize_t read_iov(int fd, const struct iovec *iov, int n, uint64_t size, int *cold)
{
	ssize_t r = preadv2(fd, iov, n, 0, RWF_NOWAIT);

	if (r >= 0 && (uint64_t)r == size)
		return r;
	*cold = 1;
	return preadv(fd, iov, n, 0);
}

int dc_read_stored(int fd, const aprfs_dc_key *k, void *buf, size_t len, uint32_t *crc,
		   int *cold)
{
	size_t nb = stored_blocks(len), n = 0;
	uint8_t head[DC_HEADER + FRAME_HEAD], words[STORED_MAX_IO][4], tail[8];
	struct iovec iov[2 * STORED_MAX_IO + 2];
	const char *why;

	if (nb == 0 || nb > STORED_MAX_IO)
		return -1;
	iov[n++] = (struct iovec){head, sizeof(head)};
	for (size_t b = 0; b < nb; b++) {
		size_t at = b * STORED_BLOCK,
		       bl = len - at < STORED_BLOCK ? len - at : STORED_BLOCK;
		iov[n++] = (struct iovec){words[b], 4};
		iov[n++] = (struct iovec){(uint8_t *)buf + at, bl};
	}
	iov[n++] = (struct iovec){tail, sizeof(tail)};
	uint64_t size = dc_stored_size(len);
	if ((uint64_t)read_iov(fd, iov, (int)n, size, cold) != size ||
	    dc_check_header(k, head, size, len, crc, &why) != 0 ||
	    stored_frame_head(head + DC_HEADER, len) != 0)
		return -1;
	for (size_t b = 0; b < nb; b++) {
		size_t at = b * STORED_BLOCK,
		       bl = len - at < STORED_BLOCK ? len - at : STORED_BLOCK;
		if (get_le(words[b], 4) != (0x80000000u | bl))
			return -1;
	}
	if (get_le(tail, 4) != 0 || get_le(tail + 4, 4) != XXH32(buf, len, 0))
		return -1;
	return 0;
}
