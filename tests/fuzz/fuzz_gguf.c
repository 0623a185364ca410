/* fuzz_gguf.c - libFuzzer harness of the GGUF header parser (aprfs_gguf_parse) on any
 * bytes as a GGUF file. Asserts a clean refusal naming the file, or a sound table: names,
 * shapes, sizes, aligned offsets inside the file, data order, no overlap, valid facts. */
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "fuzz.h"
#include "source/config.h"
#include "source/gguf.h"

#define FUZZ_MAX_LEN 65536
#define PATH	     "fuzz.gguf"

typedef struct mem {
	const uint8_t *p;
	size_t n;
} mem;

static int read_mem(void *ctx, uint64_t off, void *dst, size_t n)
{
	const mem *m = ctx;

	FUZZ_CHECK(off <= m->n && n <= m->n - off, "read of %zu at %llu past %zu", n,
		   (unsigned long long)off, m->n);
	memcpy(dst, m->p + off, n);
	return 0;
}

static void check_tensor(const aprfs_tensor *t, const aprfs_gguf_info *g, uint64_t size)
{
	size_t bad, len = strlen(t->name);
	uint64_t nelem = 1, be = aprfs_src_dtype_block_elems(t->dtype);

	FUZZ_CHECK(len >= 1 && len <= APRFS_MAX_NAME && len == t->name_len, "name length %zu",
		   len);
	FUZZ_CHECK(aprfs_utf8_valid(t->name, len, &bad), "name not UTF-8");
	FUZZ_CHECK(t->dtype < APRFS_SRC_COUNT && t->ndim >= 1 && t->ndim <= 4,
		   "dtype %d ndim %u", t->dtype, t->ndim);
	for (int d = 0; d < t->ndim; d++) {
		FUZZ_CHECK(t->dims[d] > 0, "'%s': a zero dimension", t->name);
		FUZZ_CHECK(!__builtin_mul_overflow(nelem, t->dims[d], &nelem), "overflow");
	}
	FUZZ_CHECK(nelem == t->nelem, "'%s': nelem", t->name);
	FUZZ_CHECK(t->dims[t->ndim - 1] % be == 0, "'%s': rows not whole blocks", t->name);
	FUZZ_CHECK(t->nbytes == nelem / be * aprfs_src_dtype_block_bytes(t->dtype),
		   "'%s': nbytes", t->name);
	FUZZ_CHECK(t->file_off >= g->data_start &&
		       (t->file_off - g->data_start) % g->alignment == 0,
		   "'%s': offset %llu not aligned in the data section", t->name,
		   (unsigned long long)t->file_off);
	FUZZ_CHECK(t->file_off <= size && t->nbytes <= size - t->file_off, "'%s': past the end",
		   t->name);
}

static void check_facts(const aprfs_model_config *c)
{
	size_t bad;

	if (c->has & APRFS_CFG_MODEL_TYPE)
		FUZZ_CHECK(aprfs_utf8_valid(c->model_type, strlen(c->model_type), &bad),
			   "arch");
	if (c->has & APRFS_CFG_NAME)
		FUZZ_CHECK(aprfs_utf8_valid(c->name, strlen(c->name), &bad), "name");
	if (c->has & APRFS_CFG_ROPE_THETA)
		FUZZ_CHECK(aprfs_config_f32_ok(c->rope_theta), "rope_theta %g", c->rope_theta);
	if (c->has & APRFS_CFG_RMS_EPS)
		FUZZ_CHECK(aprfs_config_f32_ok(c->rms_norm_eps), "rms_norm_eps");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aprfs_gguf_info g;
	aprfs_err err = {0};
	int rc;

	if (size > FUZZ_MAX_LEN)
		return 0;
	mem m = {fuzz_guarded(data, size), size};
	aprfs_gguf_input in = {read_mem, &m, size};
	rc = aprfs_gguf_parse(PATH, &in, &g, &err);
	if (rc) {
		/* Unsupported tensor types are refused with ENOTSUP, the rest with EINVAL. */
		FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM || rc == -ENOTSUP, "rc %d: %s", rc,
			   err.msg);
		FUZZ_CHECK(strncmp(err.msg, PATH ": ", strlen(PATH) + 2) == 0,
			   "message '%s' does not name the file", err.msg);
		FUZZ_CHECK(g.tensors == NULL && g.count == 0, "a refusal returned tensors");
		return 0;
	}
	FUZZ_CHECK(g.alignment && !(g.alignment & (g.alignment - 1)), "alignment %u",
		   g.alignment);
	FUZZ_CHECK(g.data_start <= size && g.data_start % g.alignment == 0, "data start");
	uint64_t end = 0;
	for (size_t i = 0; i < g.count; i++) {
		const aprfs_tensor *t = &g.tensors[i];
		check_tensor(t, &g, size);
		if (i > 0)
			FUZZ_CHECK(g.tensors[i - 1].file_off <= t->file_off, "data order");
		if (t->nbytes) {
			FUZZ_CHECK(t->file_off >= end, "'%s' overlaps", t->name);
			end = t->file_off + t->nbytes;
		}
	}
	check_facts(&g.cfg);
	aprfs_gguf_info_free(&g);
	return 0;
}
