/* tensor_read.c - encoding source elements (see tensor_read.h). Raw 16-bit and f32 bytes
 * go to the fused encoder as they are: a bf16 chunk is never materialised as f32, which
 * halves the buffer and keeps the widened tile in L1. Block types decode first. */
#include "plan/tensor_read.h"

#include <errno.h>

#include "base/scratch.h"

int aprfs_tensor_encode(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			uint64_t e0, size_t n, aprfs_kslot slot, const aprfs_qparams *q,
			uint8_t *out, aprfs_err *err)
{
	size_t es = aprfs_src_dtype_size(t->dtype);
	int plain = es != 0;
	void *buf = aprfs_scratch(0, plain ? n * es + 1 : n * sizeof(float) + 1);
	int rc;

	if (!buf)
		return aprfs_fail(err, ENOMEM, "out of memory");
	if (plain)
		rc = aprfs_source_read(s, t, e0 * es, n * es, buf, err);
	else
		rc = aprfs_source_read_f32(s, t, e0, n, buf, err);
	if (rc == 0 &&
	    aprfs_encode_src(k, slot, plain ? t->dtype : APRFS_SRC_F32, buf, n, q, out) != 0)
		rc = aprfs_fail(err, ENOMEM, "out of memory");
	return rc;
}
