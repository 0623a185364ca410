/* tensor_read.c - reading source tensor elements as f32, or straight into a codec's bytes
 * (see tensor_read.h). 16-bit sources go through a separate raw buffer rather than
 * widening in place: the kernels may assume their input and output do not overlap. */
#include "tensor_read.h"

#include <errno.h>
#include <stdlib.h>

int aprfs_tensor_read_f32(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			  uint64_t e0, size_t n, float *x, aprfs_err *err)
{
	size_t es = aprfs_src_dtype_size(t->dtype);
	if (t->dtype == APRFS_SRC_F32)
		return aprfs_source_read(s, t, e0 * es, n * es, x, err);
	uint16_t *raw = malloc(n * es + 1);
	if (!raw)
		return aprfs_fail(err, ENOMEM, "out of memory");
	int rc = aprfs_source_read(s, t, e0 * es, n * es, raw, err);
	if (rc == 0)
		aprfs_widen(k, t->dtype, raw, n, x);
	free(raw);
	return rc;
}

/* The raw source bytes go to the fused encoder as they are: a bf16 chunk is never
 * materialised as f32, which halves the buffer and keeps the widened tile in L1. */
int aprfs_tensor_encode(aprfs_source *s, const aprfs_kernels *k, const aprfs_tensor *t,
			uint64_t e0, size_t n, aprfs_kslot slot, const aprfs_qparams *q,
			uint8_t *out, aprfs_err *err)
{
	size_t es = aprfs_src_dtype_size(t->dtype);
	void *raw = malloc(n * es + 1);
	if (!raw)
		return aprfs_fail(err, ENOMEM, "out of memory");
	int rc = aprfs_source_read(s, t, e0 * es, n * es, raw, err);
	if (rc == 0 && aprfs_encode_src(k, slot, t->dtype, raw, n, q, out) != 0)
		rc = aprfs_fail(err, ENOMEM, "out of memory");
	free(raw);
	return rc;
}
