/* imatrix.h - llama.cpp importance matrices (llama-imatrix's imatrix.gguf, per tensor
 * <name>.in_sum2 and <name>.counts, and the legacy imatrix.dat) read into one weight per
 * column, in_sum2 / counts, looked up by GGUF or Hugging Face tensor name. */
#ifndef APRFS_IMATRIX_H
#define APRFS_IMATRIX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

typedef struct aprfs_imatrix aprfs_imatrix;

/* Read the matrix at path (regular files only; no FIFO is waited on). A file that is not
 * an importance matrix at all (bad magic, truncated header, no entry) fails with -errno
 * and "path: reason". An entry that is unusable (NaN, inf or negative values, a zero
 * count, per-expert matrices, a truncated legacy entry) is kept as unusable with one log
 * line naming the file and the tensor: that tensor is then quantized unweighted. */
int aprfs_imatrix_load(const char *path, aprfs_imatrix **out, aprfs_err *err);
/* The same from an open file (read with pread from offset 0; fd stays open). */
int aprfs_imatrix_load_fd(const char *path, int fd, aprfs_imatrix **out, aprfs_err *err);
/* The same from the file's len bytes in memory (path names it in messages). */
int aprfs_imatrix_parse(const char *path, const uint8_t *buf, size_t len, aprfs_imatrix **out,
			aprfs_err *err);
void aprfs_imatrix_free(aprfs_imatrix *m);

const char *aprfs_imatrix_path(const aprfs_imatrix *m);
const char *aprfs_imatrix_sha256(const aprfs_imatrix *m);    /* 64 hex digits */
const uint8_t *aprfs_imatrix_digest(const aprfs_imatrix *m); /* the 32 raw bytes */
size_t aprfs_imatrix_count(const aprfs_imatrix *m);	     /* entries, usable or not */

/* The ncols column weights for tensor `name` (its own spelling first, then the other
 * convention's: model.layers.N.self_attn.v_proj.weight <-> blk.N.attn_v.weight), or
 * NULL: no entry (silently), or an entry that is unusable or has another column count
 * (logged once, naming file and tensor). Every returned weight is finite and >= 0. */
const float *aprfs_imatrix_weights(const aprfs_imatrix *m, const char *name, uint64_t ncols);

/* Log once that `name` is encoded unweighted because the matrix has no entry for it
 * (an entry that exists but is unusable was logged already). */
void aprfs_imatrix_note_missing(const aprfs_imatrix *m, const char *name);

/* The GGUF spelling of a Hugging Face llama tensor name ("model.layers.3.mlp.down_proj.weight"
 * -> "blk.3.ffn_down.weight"), or the Hugging Face one of a GGUF name, into out; 0 when
 * the name has no counterpart (or out is too small). */
int aprfs_tensor_name_to_gguf(const char *hf, char *out, size_t cap);
int aprfs_tensor_name_to_hf(const char *gguf, char *out, size_t cap);

#endif
