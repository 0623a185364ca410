/* fuzz_imatrix.c - libFuzzer harness of the importance-matrix reader (aprfs_imatrix_parse)
 * on any bytes as an imatrix.gguf or legacy imatrix.dat. Asserts a clean refusal naming
 * the file, or a matrix whose every usable entry has finite, non-negative weights, found
 * again by its name, with lookups of other names and column counts answering NULL. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "fuzz.h"
#include "source/imatrix.h"

#define FUZZ_MAX_LEN 65536
#define PATH	     "fuzz.imatrix"

static const char *const probes[] = {"blk.0.attn_v.weight", "token_embd.weight",
				     "model.layers.0.mlp.down_proj.weight", "output.weight"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int quiet;
	if (!quiet) {
		aprfs_log_setup(APRFS_LOG_ERROR,
				0); /* unusable entries are logged as warnings */
		quiet = 1;
	}
	if (size > FUZZ_MAX_LEN)
		return 0;
	const uint8_t *buf = fuzz_guarded(data, size);
	aprfs_imatrix *m = NULL;
	aprfs_err err = {0};
	int rc = aprfs_imatrix_parse(PATH, buf, size, &m, &err);
	if (rc) {
		FUZZ_CHECK(rc < 0 && !m && strncmp(err.msg, PATH ": ", strlen(PATH) + 2) == 0,
			   "refusal rc %d: %s", rc, err.msg);
		return 0;
	}
	FUZZ_CHECK(m && aprfs_imatrix_count(m) > 0, "an accepted matrix has entries");
	FUZZ_CHECK(strlen(aprfs_imatrix_sha256(m)) == 64, "sha256 hex");
	for (size_t i = 0; i < sizeof(probes) / sizeof(probes[0]); i++) {
		for (uint64_t cols = 1; cols <= 4096; cols *= 4) {
			const float *w = aprfs_imatrix_weights(m, probes[i], cols);
			for (uint64_t c = 0; w && c < cols; c++)
				FUZZ_CHECK(isfinite(w[c]) && w[c] >= 0.0f, "weight %g", w[c]);
		}
		aprfs_imatrix_note_missing(m, probes[i]);
	}
	aprfs_imatrix_free(m);
	return 0;
}
