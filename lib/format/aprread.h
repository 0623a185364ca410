/* aprread.h - reading and verifying an APR v2 file the way `aprfs inspect` does: stricter
 * than the upstream readers (version, padding, extents, sizes, footer CRC are all checked),
 * so a single flipped byte anywhere is reported with where and why. */
#ifndef APRFS_APRREAD_H
#define APRFS_APRREAD_H

#include <stdint.h>

#include <cjson/cJSON.h>

#include "base/err.h"

typedef struct apr_entry {
	char name[257];
	uint16_t name_len;
	uint8_t dtype;
	uint8_t ndim;
	uint64_t dims[8];
	uint64_t nelem;
	uint64_t offset; /* relative to data_offset */
	uint64_t size;
} apr_entry;

typedef struct apr_file {
	const char *path;
	int fd;
	const uint8_t *map;
	uint64_t size;
	int mapped; /* map is ours to unmap (apr_open_verify) */
	uint8_t version_major, version_minor;
	uint16_t flags;
	uint32_t tensor_count;
	uint64_t meta_offset, index_offset, data_offset;
	uint32_t meta_size;
	uint32_t header_crc, footer_crc; /* as stored */
	cJSON *meta;			 /* parsed metadata (NULL if it did not parse) */
	apr_entry *entries;		 /* in index order */
	uint32_t nentries;
} apr_file;

/* Map path and check everything. Returns 0 if the file is valid; otherwise -EINVAL with
 * the first problem in err ("path: reason"). `f` is filled as far as parsing got, so the
 * caller can still print what was readable; release it with apr_close in both cases.
 * -errno (not EINVAL) means the file could not be read at all. */
int apr_open_verify(const char *path, apr_file *f, aprfs_err *err);
/* The same checks on size bytes in memory (path only names them in messages). f->map
 * points into buf, which must outlive f; apr_close frees what parsing allocated. */
int apr_verify_buffer(const char *path, const uint8_t *buf, uint64_t size, apr_file *f,
		      aprfs_err *err);
void apr_close(apr_file *f);

/* Expected payload bytes of a tensor of dtype with n elements (nf4_block for NF4);
 * UINT64_MAX if the dtype is unknown or the shape does not fit the dtype. */
uint64_t apr_dtype_payload(uint8_t dtype, uint64_t n, uint64_t nf4_block);

#endif
