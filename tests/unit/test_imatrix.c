/* test_imatrix.c - importance matrices: SHA-256 vectors, imatrix.gguf and legacy
 * imatrix.dat read into in_sum2 / counts, GGUF <-> Hugging Face names, and hostile files
 * (NaN, negative, zero counts, wrong column counts, truncation, FIFOs, garbage) logged by
 * file and tensor without failing the other entries. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../gen/imatrix_write.h"
#include "base/log.h"
#include "base/sha256.h"
#include "check.h"
#include "source/imatrix.h"

enum { NC = 512 };

static char dir[256];
static float good[NC], nan_sum[NC], neg_sum[NC];

static void test_sha256(void)
{
	static const struct {
		const char *in, *hex;
	} v[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		uint8_t d[32];
		char hex[65];
		aprfs_sha256(v[i].in, strlen(v[i].in), d);
		aprfs_sha256_hex(d, hex);
		CHECK(strcmp(hex, v[i].hex) == 0, "sha256(%s) = %s", v[i].in, hex);
	}
}

static void test_names(void)
{
	char out[128];
	CHECK(aprfs_tensor_name_to_gguf("model.layers.12.mlp.down_proj.weight", out,
					sizeof(out)) &&
	      strcmp(out, "blk.12.ffn_down.weight") == 0);
	CHECK(aprfs_tensor_name_to_gguf("lm_head.weight", out, sizeof(out)) &&
	      strcmp(out, "output.weight") == 0);
	CHECK(aprfs_tensor_name_to_hf("blk.3.attn_v.weight", out, sizeof(out)) &&
	      strcmp(out, "model.layers.3.self_attn.v_proj.weight") == 0);
	CHECK(aprfs_tensor_name_to_hf("token_embd.weight", out, sizeof(out)) &&
	      strcmp(out, "model.embed_tokens.weight") == 0);
	CHECK(!aprfs_tensor_name_to_gguf("model.layers.x.mlp.down_proj.weight", out,
					 sizeof(out)));
	CHECK(!aprfs_tensor_name_to_gguf("blk.3.attn_v.weight", out, sizeof(out)));
	CHECK(!aprfs_tensor_name_to_hf("blk.3.attn_v.weight", out, 8), "too small");
}

/* The file's log output so far (the reader logs unusable entries). */
static FILE *logf_;
static int logged(const char *a, const char *b)
{
	char buf[8192];
	fflush(logf_);
	rewind(logf_);
	size_t n = fread(buf, 1, sizeof(buf) - 1, logf_);
	buf[n] = 0;
	for (char *line = strtok(buf, "\n"); line; line = strtok(NULL, "\n"))
		if (strstr(line, a) && strstr(line, b))
			return 1;
	return 0;
}

static void write_set(const char *path, int gguf)
{
	const imw_entry e[] = {
	    {"blk.0.attn_v.weight", NC, good, 10.0f},
	    {"blk.0.ffn_down.weight", NC, nan_sum, 10.0f},
	    {"blk.1.attn_q.weight", NC, neg_sum, 10.0f},
	    {"blk.1.attn_k.weight", NC, good, 0.0f},
	    {"blk.1.ffn_up.weight", 256, good, 4.0f},
	};
	CHECK((gguf ? imw_write_gguf : imw_write_dat)(path, e, 5) == 0, "%s", path);
}

static void check_set(const char *path, int gguf)
{
	aprfs_imatrix *m = NULL;
	aprfs_err err = {0};
	logf_ = tmpfile();
	aprfs_log_set_stream(logf_);
	int rc = aprfs_imatrix_load(path, &m, &err);
	CHECK(rc == 0, "%s", err.msg);
	if (rc) {
		aprfs_log_set_stream(NULL);
		fclose(logf_);
		return;
	}
	CHECK(aprfs_imatrix_count(m) == 5);
	const float *w = aprfs_imatrix_weights(m, "blk.0.attn_v.weight", NC);
	int ok = w != NULL;
	for (int i = 0; ok && i < NC; i++)
		ok = w[i] == good[i] / 10.0f;
	CHECK(ok, "%s: in_sum2 / counts", path);
	CHECK(aprfs_imatrix_weights(m, "model.layers.0.self_attn.v_proj.weight", NC) == w,
	      "Hugging Face name");
	CHECK(aprfs_imatrix_weights(m, "blk.1.ffn_up.weight", 256) != NULL);
	CHECK(aprfs_imatrix_weights(m, "blk.0.attn_v.weight", 1024) == NULL, "wrong columns");
	CHECK(logged(path, "blk.0.attn_v.weight") && logged("blk.0.attn_v.weight", "columns"));
	CHECK(aprfs_imatrix_weights(m, "blk.0.ffn_down.weight", NC) == NULL, "NaN");
	CHECK(aprfs_imatrix_weights(m, "blk.1.attn_q.weight", NC) == NULL, "negative");
	CHECK(aprfs_imatrix_weights(m, "blk.1.attn_k.weight", NC) == NULL, "zero count");
	CHECK(aprfs_imatrix_weights(m, "blk.7.attn_k.weight", NC) == NULL, "missing");
	CHECK(logged(path, "blk.0.ffn_down.weight") && logged(path, "blk.1.attn_q.weight") &&
	      logged(path, "blk.1.attn_k.weight"));
	/* the identity is the file's bytes' SHA-256 */
	FILE *f = fopen(path, "rb");
	static uint8_t bytes[1 << 16];
	size_t n = f ? fread(bytes, 1, sizeof(bytes), f) : 0;
	uint8_t d[32];
	char hex[65];
	if (f)
		fclose(f);
	aprfs_sha256(bytes, n, d);
	aprfs_sha256_hex(d, hex);
	CHECK(strcmp(hex, aprfs_imatrix_sha256(m)) == 0);
	CHECK(strcmp(aprfs_imatrix_path(m), path) == 0);
	(void)gguf;
	aprfs_imatrix_free(m);
	aprfs_log_set_stream(NULL);
	fclose(logf_);
}

/* Keep the first len bytes of src in dst. */
static void truncated_copy(const char *src, const char *dst, long len)
{
	static uint8_t b[1 << 16];
	FILE *f = fopen(src, "rb");
	size_t n = f ? fread(b, 1, sizeof(b), f) : 0;
	if (f)
		fclose(f);
	f = fopen(dst, "wb");
	if (f) {
		fwrite(b, 1, (size_t)len < n ? (size_t)len : n, f);
		fclose(f);
	}
}

static void expect_fail(const char *path, const char *what)
{
	aprfs_imatrix *m = (aprfs_imatrix *)1;
	aprfs_err err = {0};
	int rc = aprfs_imatrix_load(path, &m, &err);
	CHECK(rc < 0 && m == NULL && strstr(err.msg, path), "%s: rc %d msg %s", what, rc,
	      err.msg);
}

static void test_hostile(const char *gguf, const char *dat)
{
	char p[300];
	/* legacy, cut inside the second entry's values: the first stays usable */
	snprintf(p, sizeof(p), "%s/cut.dat", dir);
	truncated_copy(dat, p, 4 + 4 + 19 + 8 + 4 * NC + 4 + 21 + 8 + 100);
	aprfs_imatrix *m = NULL;
	aprfs_err err = {0};
	logf_ = tmpfile();
	aprfs_log_set_stream(logf_);
	CHECK(aprfs_imatrix_load(p, &m, &err) == 0, "%s", err.msg);
	if (m) {
		CHECK(aprfs_imatrix_weights(m, "blk.0.attn_v.weight", NC) != NULL);
		CHECK(aprfs_imatrix_weights(m, "blk.0.ffn_down.weight", NC) == NULL);
		CHECK(logged(p, "blk.0.ffn_down.weight") && logged("truncated", p));
		aprfs_imatrix_free(m);
	}
	aprfs_log_set_stream(NULL);
	fclose(logf_);
	/* a GGUF cut in its data, a header alone, garbage, empty, a FIFO, a directory */
	snprintf(p, sizeof(p), "%s/cut.gguf", dir);
	truncated_copy(gguf, p, 700);
	expect_fail(p, "truncated gguf");
	truncated_copy(gguf, p, 10);
	expect_fail(p, "gguf header");
	snprintf(p, sizeof(p), "%s/garbage.dat", dir);
	FILE *f = fopen(p, "wb");
	if (f) {
		fputs("\xff\xff\xff\x7fhello", f);
		fclose(f);
	}
	expect_fail(p, "garbage");
	truncated_copy(dat, p, 0);
	expect_fail(p, "empty");
	snprintf(p, sizeof(p), "%s/fifo", dir);
	CHECK(mkfifo(p, 0600) == 0, "mkfifo: %s", strerror(errno));
	expect_fail(p, "fifo");
	unlink(p);
	expect_fail(dir, "directory");
	snprintf(p, sizeof(p), "%s/missing", dir);
	expect_fail(p, "missing");
}

int main(void)
{
	char gguf[300], dat[300], p[300];
	for (int i = 0; i < NC; i++) {
		good[i] = 1.0f + (float)(i % 37);
		nan_sum[i] = i == 3 ? NAN : 1.0f;
		neg_sum[i] = i == 100 ? -1.0f : 1.0f;
	}
	if (!check_tmpdir(dir, sizeof(dir), "imatrix")) {
		perror("mkdtemp");
		return 1;
	}
	test_sha256();
	test_names();
	snprintf(gguf, sizeof(gguf), "%s/imatrix.gguf", dir);
	snprintf(dat, sizeof(dat), "%s/imatrix.dat", dir);
	write_set(gguf, 1);
	write_set(dat, 0);
	check_set(gguf, 1);
	check_set(dat, 0);
	test_hostile(gguf, dat);
	const char *files[] = {"imatrix.gguf", "imatrix.dat", "cut.dat", "cut.gguf",
			       "garbage.dat"};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(p, sizeof(p), "%s/%s", dir, files[i]);
		unlink(p);
	}
	rmdir(dir);
	return check_done("imatrix");
}
