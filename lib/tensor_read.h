/* tensor_read.h - source tensor elements as f32: the raw bytes from aprfs_source_read,
 * widened by the kernel table. Shared by the chunk producer, the statistic pass and
 * `inspect --stats`. */
#ifndef APRFS_TENSOR_READ_H
#define APRFS_TENSOR_READ_H

#include "kernels/kernels.h"
#include "source.h"

/* Elements [e0, e0+n) of float tensor t into x. 0 or -errno. */
int aprfs_tensor_read_f32(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			  uint64_t e0, size_t n, float *x, aprfs_err *err);
/* Elements [e0, e0+n) of float tensor t (F32, F16 or BF16) encoded with codec slot into
 * out, widening on the fly (aprfs_encode_src). n starts at a block boundary. 0 or -errno. */
int aprfs_tensor_encode(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			uint64_t e0, size_t n, aprfs_kslot slot, const aprfs_qparams *q,
			uint8_t *out, aprfs_err *err);

#endif
