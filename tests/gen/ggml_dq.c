/* ggml_dq.c - test tool: dequantizes one tensor of a GGUF (or any) file with aprfs'
 * scalar reference, aprfs_ggml_dequant_ref, and writes its f32 values little-endian to
 * stdout, so the tests can compare them byte for byte with tests/tools/gguf_ref.py. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/dtype.h"
#include "quant/ggml_dequant.h"

static int usage(void)
{
	fputs("usage: ggml_dq FILE ABS_OFFSET TYPE NELEM   (TYPE: GGML's name, e.g. Q4_K)\n",
	      stderr);
	return 2;
}

static int num(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	*v = strtoull(s, &end, 10);
	return errno || end == s || *end || s[0] == '-' ? -1 : 0;
}

int main(int argc, char **argv)
{
	uint64_t off, nelem;
	aprfs_src_dtype d = APRFS_SRC_COUNT;

	if (argc != 5 || num(argv[2], &off) || num(argv[4], &nelem))
		return usage();
	for (uint32_t id = 0; aprfs_ggml_type_name(id); id++)
		if (strcmp(aprfs_ggml_type_name(id), argv[3]) == 0)
			d = aprfs_src_dtype_from_ggml(id);
	if (d == APRFS_SRC_COUNT || !aprfs_ggml_dequant_supported(d)) {
		fprintf(stderr, "ggml_dq: %s: not a type aprfs dequantizes\n", argv[3]);
		return 2;
	}
	const uint64_t be = aprfs_src_dtype_block_elems(d), bb = aprfs_src_dtype_block_bytes(d);
	if (nelem % be) {
		fprintf(stderr, "ggml_dq: %" PRIu64 " elements are not whole %s blocks\n",
			nelem, argv[3]);
		return 2;
	}
	FILE *f = fopen(argv[1], "rb");
	if (!f || fseeko(f, (off_t)off, SEEK_SET) != 0) {
		fprintf(stderr, "ggml_dq: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	enum { CH = 4096 }; /* blocks at a time */
	uint8_t *in = malloc(CH * bb);
	float *y = malloc(CH * be * sizeof(float));
	for (uint64_t left = nelem / be; left;) {
		size_t n = left < CH ? (size_t)left : CH;
		if (!in || !y || fread(in, bb, n, f) != n) {
			fprintf(stderr, "ggml_dq: %s: short read\n", argv[1]);
			return 1;
		}
		aprfs_ggml_dequant_ref(d, in, n, y);
		if (fwrite(y, sizeof(float), n * be, stdout) != n * be) /* x86/ARM: LE */
			return 1;
		left -= n;
	}
	free(in);
	free(y);
	fclose(f);
	return fflush(stdout) == 0 ? 0 : 1;
}
