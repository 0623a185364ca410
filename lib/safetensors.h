/* safetensors.h - internal to the checkpoint reader (source.c, tests): one .safetensors
 * file opened, its header validated into aprfs_tensor records, its bytes mapped; and the
 * SIGBUS-guarded copy that reads a mapping which may be truncated underneath us. */
#ifndef APRFS_SAFETENSORS_H
#define APRFS_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"
#include "source.h"

/* Headers larger than this are refused (the reference implementation's limit too). */
#define APRFS_ST_MAX_HEADER 100000000u

/* What identifies one version of a file: a change to any field means new contents. */
typedef struct aprfs_file_id {
	dev_t dev;
	ino_t ino;
	off_t size;
	struct timespec mtime;
} aprfs_file_id;

void aprfs_file_id_of(const struct stat *st, aprfs_file_id *id);
int aprfs_file_id_equal(const aprfs_file_id *a, const aprfs_file_id *b);

typedef struct aprfs_st_file {
	char *path;	    /* as opened; used in messages */
	int fd;		    /* kept open so fstat sees the mapped inode */
	const uint8_t *map; /* the whole file, PROT_READ, MAP_PRIVATE */
	size_t map_len;
	aprfs_file_id id;      /* at open */
	aprfs_tensor *tensors; /* data order; names owned here until taken */
	size_t count;
} aprfs_st_file;

/* Open, validate and map path. Tensors get shard index `shard`. On failure f is left
 * closed and err reads "path: reason". */
int aprfs_st_open(const char *path, uint32_t shard, aprfs_st_file *f, aprfs_err *err);
void aprfs_st_close(aprfs_st_file *f);
void aprfs_tensors_free(aprfs_tensor *t, size_t n);

/* Validate a header (hdr_len bytes of JSON, not NUL-terminated) describing a data section
 * of data_len bytes that starts at file offset data_base. */
int aprfs_st_parse_header(const char *path, const char *hdr, size_t hdr_len, uint64_t data_base,
			  uint64_t data_len, uint32_t shard, aprfs_tensor **out, size_t *count,
			  aprfs_err *err);

/* A tensor name must be 1..256 bytes of valid UTF-8 (NULs were refused earlier). */
int aprfs_st_check_name(const char *path, const char *name, aprfs_err *err);

/* memcpy that returns -1 instead of dying if reading src raises SIGBUS (a mapped file
 * was truncated). Thread-safe; installs the SIGBUS handler on first use. */
int aprfs_guarded_copy(void *dst, const void *src, size_t len);

#endif
