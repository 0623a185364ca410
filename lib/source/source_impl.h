/* source_impl.h - internal to lib/source/ (and its tests): the source object every format
 * fills, what one format implements, and the helpers they share: opening member files
 * without blocking or leaving the root, mapping them, watching files for change. */
#ifndef APRFS_SOURCE_IMPL_H
#define APRFS_SOURCE_IMPL_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/err.h"
#include "base/io.h"
#include "source/source.h"

/* What identifies one version of a file: a change to any field means new contents. */
typedef struct aprfs_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} aprfs_file_id;

void aprfs_file_id_of(const struct stat *st, aprfs_file_id *id);
int aprfs_file_id_equal(const aprfs_file_id *a, const aprfs_file_id *b);

/* A data file: open read-only, its size and identity at open. */
typedef struct src_file {
	char *path;    /* as opened; used in messages */
	int fd;	       /* kept open: reads and fstat see the inode that was validated */
	uint64_t size; /* at open */
	aprfs_file_id id;
} src_file;

/* A file read once at open (an index, config.json), or looked for and absent: a change,
 * appearance or disappearance makes the source stale. */
typedef struct src_watch {
	char *path;
	int exists;
	aprfs_file_id id;
} src_watch;

typedef struct src_format src_format;

struct aprfs_source {
	atomic_uint refs;
	char *path;
	char *root; /* aprfs_source_ctx.root, or NULL */
	const src_format *fmt;
	src_file *files;
	size_t nfiles;
	src_watch *watch;
	size_t nwatch;
	aprfs_tensor *tensors; /* data order (file, then offset); owns the names */
	size_t count;
	uint32_t *by_name; /* see aprfs_source_name_order */
	aprfs_model_config cfg;
	struct XXH3_state_s *fp;       /* while opening: the fingerprint being hashed */
	uint8_t fingerprint[16];       /* see aprfs_source_fingerprint */
	struct aprfs_imatrix *imatrix; /* see aprfs_source_imatrix */
};

/* One checkpoint format. open() fills s->files, s->tensors (data order within each file,
 * files in order) and s->cfg; the caller frees whatever it left on failure. */
struct src_format {
	const char *name;   /* metadata original_format: "safetensors" */
	const char *suffix; /* the file name suffix that selects it */
	aprfs_ckpt_kind kind;
	int (*open)(aprfs_source *s, aprfs_err *err);
};

extern const src_format src_safetensors, src_st_index, src_gguf;

/* ---- helpers for formats (member.c) ---- */

/* "dir/name" for a file beside path (just "name" when path has no directory). */
char *src_sibling(const char *path, const char *name);

/* Open path for reading as a source may: O_NONBLOCK (a FIFO never blocks), a regular file
 * only, and inside s->root once resolved. fd and its stat on success. */
int src_open_member(const aprfs_source *s, const char *path, int *fd, struct stat *st,
		    aprfs_err *err);

/* Open and map a data file, appended to s->files (its index is the tensors' shard). */
int src_add_file(aprfs_source *s, const char *path, src_file **out, aprfs_err *err);

/* Read a whole small file (at most limit bytes) into a NUL-terminated buffer and watch it.
 * With optional set, a missing file is not an error: *buf is NULL, and its appearance
 * later makes the source stale. */
int src_read_small(aprfs_source *s, const char *path, size_t limit, int optional, char **buf,
		   size_t *len, aprfs_err *err);

/* Fold bytes that determine the source's contents into its fingerprint (formats: their
 * header bytes; member.c: every file's size, mtime and small files' text). */
void src_fingerprint_add(aprfs_source *s, const void *data, size_t len);

/* pread of exactly len bytes; 0 or -errno (-EIO at an early end of file). */

/* A tensor name must be 1..256 bytes of valid UTF-8 without NUL. */
int src_check_name(const char *path, const char *name, size_t len, aprfs_err *err);

/* Shape checks shared by formats: nelem and nbytes from dims and dtype, refusing overflow.
 * "what" names the tensor in messages. */
int src_set_size(const char *path, aprfs_tensor *t, aprfs_err *err);

void aprfs_tensors_free(aprfs_tensor *t, size_t n);

/* Sort one file's tensors into data order (offset, then name) and refuse any two whose
 * bytes overlap ("file: tensor 'b': data overlaps tensor 'a'"). */
int src_order_tensors(const char *path, aprfs_tensor *t, size_t n, aprfs_err *err);

/* Watch path as it is now (st NULL: absent): a change later makes the source stale. */
int src_watch_path(aprfs_source *s, const char *path, const struct stat *st, aprfs_err *err);

/* The importance matrix for s into s->imatrix (beside.c): explicit (a path) or looked for
 * beside s->path, whose file name's first stem_len bytes name the checkpoint; every
 * candidate watched; unreadable ones logged, never an error but ENOMEM. */
int src_imatrix_find(aprfs_source *s, const aprfs_source_ctx *ctx, size_t stem_len,
		     aprfs_err *err);

/* The format whose suffix ends name's file name (*stem_len: the length before it), or
 * NULL (source.c). */
const src_format *src_format_of(const char *name, size_t *stem_len);
/* Everything s holds, and s (source.c): for a source whose count of references is 0, or
 * one that failed to open. */
void src_source_free(aprfs_source *s);

/* config.json beside s->path into s->cfg (config.c): optional, watched. */
int aprfs_config_beside(aprfs_source *s, aprfs_err *err);

/* ---- safetensors internals (safetensors.c), also used by the sharded index ---- */

/* Headers larger than this are refused (the reference implementation's limit too). */
#define APRFS_ST_MAX_HEADER 100000000u

/* Open, validate and map one .safetensors file as data file number s->nfiles. */
int aprfs_st_add(aprfs_source *s, const char *path, aprfs_err *err);

/* Validate a header (hdr_len bytes of JSON, not NUL-terminated) describing a data section
 * of data_len bytes that starts at file offset data_base. Tensors come back in data
 * order with shard index `shard`. */
int aprfs_st_parse_header(const char *path, const char *hdr, size_t hdr_len, uint64_t data_base,
			  uint64_t data_len, uint32_t shard, aprfs_tensor **out, size_t *count,
			  aprfs_err *err);

#endif
