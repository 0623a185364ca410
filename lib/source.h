/* source.h - a checkpoint on disk, validated and mapped: one X.safetensors file or a
 * Hugging Face sharded checkpoint given by its *.safetensors.index.json, plus the
 * config.json beside it. Tensors are listed in data order; their bytes are read on demand. */
#ifndef APRFS_SOURCE_H
#define APRFS_SOURCE_H

#include <stdint.h>
#include <sys/types.h>

#include "config.h"
#include "dtype.h"
#include "err.h"

#define APRFS_MAX_NDIM 8
#define APRFS_MAX_NAME 256

typedef struct aprfs_tensor {
	char *name; /* NUL-terminated, valid UTF-8, 1..256 bytes */
	uint16_t name_len;
	aprfs_src_dtype dtype;
	uint8_t ndim; /* 0..8; 0 is a scalar (nelem 1) */
	uint64_t dims[APRFS_MAX_NDIM];
	uint64_t nelem;	   /* product of dims (1 for ndim 0); may be 0 */
	uint64_t nbytes;   /* nelem * dtype size, checked against the file */
	uint32_t shard;	   /* which shard file holds it (0 for a single file) */
	uint64_t file_off; /* absolute byte offset of its data in that shard file */
} aprfs_tensor;

typedef struct aprfs_source aprfs_source;

/* Open and validate a checkpoint. path is X.safetensors or X.safetensors.index.json.
 * Everything the files claim is checked before it is trusted (header length vs file size,
 * JSON shape, dtype names, shapes, overflow, offsets inside the data and not overlapping,
 * UTF-8 names, duplicate names across shards). A config.json in the same directory, if
 * present, is parsed into aprfs_source_config(). On failure returns -errno and err->msg
 * reads "<file>: <reason>". The returned source holds one reference. */
int aprfs_source_open(const char *path, aprfs_source **out, aprfs_err *err);

void aprfs_source_ref(aprfs_source *s);	  /* thread-safe */
void aprfs_source_unref(aprfs_source *s); /* closes on the last reference */

const char *aprfs_source_path(const aprfs_source *s);	/* path given to open */
const char *aprfs_source_format(const aprfs_source *s); /* "safetensors" */
size_t aprfs_source_count(const aprfs_source *s);
const aprfs_tensor *aprfs_source_tensor(const aprfs_source *s, size_t i); /* data order */
const aprfs_model_config *aprfs_source_config(const aprfs_source *s);
/* The shard files (1 for a single file), e.g. for listing which files a checkpoint owns. */
size_t aprfs_source_shard_count(const aprfs_source *s);
const char *aprfs_source_shard_path(const aprfs_source *s, size_t i);

/* Copy bytes [off, off+len) of tensor t's data (off relative to the tensor start) into dst.
 * Fails with -EIO and a message if any shard file changed since open (size, mtime, inode
 * checked before and after the copy) or the mapping became unreadable (a truncated file
 * raises SIGBUS, which is caught): a caller never gets a mix of old and new bytes.
 * Thread-safe. */
int aprfs_source_read(aprfs_source *s, const aprfs_tensor *t, uint64_t off, size_t len,
		      void *dst, aprfs_err *err);

/* 1 if a file the source was opened from now differs on disk (by path: replaced,
 * modified, removed) from what was opened, else 0. Used to decide that new opens must
 * see a new snapshot. */
int aprfs_source_stale(const aprfs_source *s);

#endif
