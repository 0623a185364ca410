/* gguf.h - the GGUF header parser on its own, for the source (gguf.c), the tests and the
 * fuzz harness: bytes in through a read callback, a validated tensor table (data order,
 * absolute offsets) and the model facts out, or "file: reason". */
#ifndef APRFS_GGUF_H
#define APRFS_GGUF_H

#include <stddef.h>
#include <stdint.h>

#include "source/source.h"

typedef struct aprfs_gguf_input {
	/* Copy bytes [off, off+n) of the input into dst; 0, or non-zero on an I/O error.
	 * Never asked for bytes past size. */
	int (*read)(void *ctx, uint64_t off, void *dst, size_t n);
	void *ctx;
	uint64_t size;
} aprfs_gguf_input;

typedef struct aprfs_gguf_info {
	aprfs_tensor *tensors; /* data order; file_off absolute; owns the names */
	size_t count;
	uint32_t alignment;  /* general.alignment, or 32 */
	uint64_t data_start; /* where the data section begins */
	aprfs_model_config cfg;
} aprfs_gguf_info;

int aprfs_gguf_parse(const char *path, const aprfs_gguf_input *in, aprfs_gguf_info *out,
		     aprfs_err *err);
void aprfs_gguf_info_free(aprfs_gguf_info *g);

#endif
