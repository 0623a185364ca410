/* source.h - THE SOURCE INTERFACE: a checkpoint on disk, validated and mapped, whatever its
 * format (safetensors single or sharded, GGUF): its tensor table, the model facts its
 * metadata needs, and any tensor's elements as f32 or its raw bytes. Formats live in
 * lib/source/ (one file each); nothing outside this folder knows which format it reads.
 *
 * lib/source/ (above kernels/): checkpoints read as tensors: safetensors (single and
 * sharded), GGUF, their config facts. */
#ifndef APRFS_SOURCE_H
#define APRFS_SOURCE_H

#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"
#include "format/dtype.h"
#include "source/config.h"

#define APRFS_MAX_NDIM 8
#define APRFS_MAX_NAME 256

typedef struct aprfs_tensor {
	char *name; /* NUL-terminated, valid UTF-8, 1..256 bytes */
	uint16_t name_len;
	aprfs_src_dtype dtype;
	uint8_t ndim;		       /* 0..8; 0 is a scalar (nelem 1) */
	uint64_t dims[APRFS_MAX_NDIM]; /* row-major: dims[ndim-1] varies fastest */
	uint64_t nelem;		       /* product of dims (1 for ndim 0); may be 0 */
	uint64_t nbytes;	       /* bytes in the file: whole blocks of dtype */
	uint32_t shard;		       /* which data file holds it (0 for a single file) */
	uint64_t file_off;	       /* absolute byte offset of its data in that file */
} aprfs_tensor;

typedef struct aprfs_source aprfs_source;

/* Where a source may read from. Every file a checkpoint uses (data files, a sharded
 * index, config.json) is looked up beside the path it was opened by, followed through
 * links, and opened without blocking: a FIFO, socket or device is refused, never waited
 * on. With root set, a file that resolves outside root is refused too. */
typedef struct aprfs_source_ctx {
	const char *root; /* a canonical directory (realpath), or NULL: anywhere */
	/* An importance matrix to use, or NULL: the first of X.imatrix.gguf, X.imatrix.dat,
	 * imatrix.gguf, imatrix.dat beside checkpoint X (source/imatrix.h). Either way a
	 * matrix that cannot be read is logged and the views stay unweighted. */
	const char *imatrix;
	/* Without imatrix: a file name looked for beside the checkpoint instead of those four
	 * (an absolute path: that file for every checkpoint); NULL: the four. */
	const char *imatrix_name;
} aprfs_source_ctx;

/* Open and validate a checkpoint: X.safetensors, X.safetensors.index.json or X.gguf.
 * Everything the files claim is checked before it is trusted. ctx may be NULL. On failure
 * returns -errno and err->msg reads "<file>: <reason>". The source holds one reference. */
int aprfs_source_open(const char *path, const aprfs_source_ctx *ctx, aprfs_source **out,
		      aprfs_err *err);

void aprfs_source_ref(aprfs_source *s);	  /* thread-safe */
void aprfs_source_unref(aprfs_source *s); /* closes on the last reference */

/* How a file name names a checkpoint, by its name alone (no I/O). */
typedef enum aprfs_ckpt_kind {
	APRFS_CKPT_NONE,   /* not a checkpoint */
	APRFS_CKPT_SINGLE, /* X.safetensors, X.gguf: one file */
	APRFS_CKPT_INDEX,  /* X.safetensors.index.json: names data files beside it (its shards,
			    * which are then not checkpoints of their own) */
} aprfs_ckpt_kind;
/* Kind of name, and the length of its stem X (the X of X.<variant>.apr). Indexes are
 * found first; among single files, the order of aprfs_ckpt_suffix() decides who owns a
 * stem two files share. */
aprfs_ckpt_kind aprfs_ckpt_name(const char *name, size_t *stem_len);
/* Suffix i in priority order (".safetensors.index.json", ...), NULL past the last: the
 * formats' own suffixes (source.c), the one list. */
const char *aprfs_ckpt_suffix(size_t i);

const char *aprfs_source_path(const aprfs_source *s);	/* path given to open */
const char *aprfs_source_format(const aprfs_source *s); /* "safetensors", "gguf" */
size_t aprfs_source_count(const aprfs_source *s);
const aprfs_tensor *aprfs_source_tensor(const aprfs_source *s, size_t i); /* data order */
/* Tensor numbers (indexes into data order) sorted by name, byte-wise: the APR index
 * order. Computed at open; unique names are guaranteed. */
const uint32_t *aprfs_source_name_order(const aprfs_source *s);
/* Model facts for the metadata: from config.json beside a safetensors checkpoint, or from
 * a GGUF file's keys. */
const aprfs_model_config *aprfs_source_config(const aprfs_source *s);
/* The importance matrix found for the checkpoint (aprfs_source_ctx.imatrix), or NULL. Its
 * file is watched: a change, appearance or removal makes the source stale. */
const struct aprfs_imatrix *aprfs_source_imatrix(const aprfs_source *s);
/* The data files (shards; 1 for a single file), as opened. */
size_t aprfs_source_shard_count(const aprfs_source *s);
const char *aprfs_source_shard_path(const aprfs_source *s, size_t i);

/* Raw bytes [off, off+len) of tensor t's data (off relative to the tensor start), exactly
 * as the file holds them (blocks of t->dtype). Fails with -EIO and a message if the file
 * changed since open (size, mtime, inode checked before and after the read) or comes up
 * short (truncated): a caller never gets a mix of old and new bytes as success.
 * Thread-safe. */
int aprfs_source_read(aprfs_source *s, const aprfs_tensor *t, uint64_t off, size_t len,
		      void *dst, aprfs_err *err);

/* Elements [e0, e0+n) of float tensor t as f32 (widened or dequantized by the kernel
 * table; any e0 and n, block types included). Same guarantees as aprfs_source_read. */
int aprfs_source_read_f32(aprfs_source *s, const aprfs_tensor *t, uint64_t e0, size_t n,
			  float *x, aprfs_err *err);

/* 16 bytes that change whenever the bytes the source serves may change: a hash of the
 * format, every file's size and mtime (ns), every header and every small file read
 * (index, config.json). Not the device or inode: a copy of a model, or the same model seen
 * from another host over a shared file system, has the same fingerprint (the disk cache
 * shares entries by it). */
const uint8_t *aprfs_source_fingerprint(const aprfs_source *s);

/* 1 if a file the source was opened from now differs on disk (by path: replaced,
 * modified, removed, appeared) from what was opened, else 0. New opens then need a new
 * snapshot. */
int aprfs_source_stale(const aprfs_source *s);

#endif
