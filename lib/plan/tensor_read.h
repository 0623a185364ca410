/* tensor_read.h - a source tensor's elements encoded straight into a codec's bytes: the
 * chunk producer's one call. 16-bit sources are widened tile by tile inside the encoder;
 * GGML block sources are decoded to f32 first (aprfs_source_read_f32). */
#ifndef APRFS_TENSOR_READ_H
#define APRFS_TENSOR_READ_H

#include "kernels/kernels.h"
#include "source/source.h"

/* Elements [e0, e0+n) of float tensor t encoded with codec slot into out. n starts at a
 * codec block boundary. 0 or -errno. */
int aprfs_tensor_encode(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			uint64_t e0, size_t n, aprfs_kslot slot, const aprfs_qparams *q,
			uint8_t *out, aprfs_err *err);

#endif
