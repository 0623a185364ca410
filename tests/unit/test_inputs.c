/* test_inputs.c - the parsers the fuzzers of tests/fuzz/ drive, fed from memory: a sharded
 * index's text, an APR file in a buffer, each agreeing with the file-based path it was
 * factored out of; and every input a fuzzer found that broke something, kept as a test. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "file/aprfile.h"
#include "format/aprread.h"
#include "source/source.h"
#include "source/st_index.h"
#include "testfs.h"

static char tmp[256];

static const char *at(const char *name)
{
	return test_path(tmp, name);
}

/* The message aprfs_source_open gives for an index file holding text (no shard exists,
 * so only refusals of the text itself are comparable). */
static void open_msg(const char *path, const char *text, char *msg, size_t cap)
{
	aprfs_source *s = NULL;
	aprfs_err err = {0};

	put_text(path, text);
	if (aprfs_source_open(path, NULL, &s, &err) == 0) {
		aprfs_source_unref(s);
		snprintf(msg, cap, "(opened)");
		return;
	}
	snprintf(msg, cap, "%s", err.msg);
}

static void test_index_parse(void)
{
	const char *p = at("m.safetensors.index.json");
	aprfs_st_index ix;
	aprfs_err err = {0};
	const char *good = "{\"metadata\":null,\"weight_map\":{\"b\":\"s-2.safetensors\","
			   "\"a\":\"s-1.safetensors\",\"c\":\"s-2.safetensors\"}}";

	CHECK(aprfs_st_index_parse(p, good, strlen(good), &ix, &err) == 0, "%s", err.msg);
	CHECK(ix.nrefs == 3 && ix.nshards == 2, "%zu refs, %zu shards", ix.nrefs, ix.nshards);
	if (ix.nrefs == 3 && ix.nshards == 2) {
		CHECK(strcmp(ix.shards[0], "s-1.safetensors") == 0 &&
		      strcmp(ix.shards[1], "s-2.safetensors") == 0);
		CHECK(strcmp(ix.refs[0].name, "b") == 0 && ix.refs[0].shard == 1,
		      "file order kept");
		CHECK(strcmp(ix.refs[1].name, "a") == 0 && ix.refs[1].shard == 0);
		CHECK(strcmp(ix.refs[2].name, "c") == 0 && ix.refs[2].shard == 1);
	}
	aprfs_st_index_free(&ix);
	CHECK(ix.refs == NULL && ix.json == NULL);
	aprfs_st_index_free(&ix); /* twice is harmless */

	/* Every refusal of the text alone reads exactly as opening the file says it. */
	static const struct {
		const char *text, *want;
	} bad[] = {
	    {"{\"weight_map\":", "not valid JSON"},
	    {"[1]", "not a JSON object"},
	    {"{\"weight_map\":{},\"weight_map\":{}}", "duplicate key 'weight_map'"},
	    {"{\"metadata\":3,\"weight_map\":{}}", "metadata is not an object"},
	    {"{\"metadata\":{}}", "weight_map missing or not an object"},
	    {"{\"weight_map\":{\"x\":\"a.safetensors\",\"x\":\"b.safetensors\"}}",
	     "duplicate tensor name 'x'"},
	    {"{\"weight_map\":{\"\":\"a.safetensors\"}}", "empty"},
	    {"{\"weight_map\":{\"x\":7}}", "weight_map['x'] is not a string"},
	    {"{\"weight_map\":{\"x\":\"../a.safetensors\"}}", "not a plain file name"},
	    {"{\"weight_map\":{\"x\":\"\"}}", "not a plain file name"},
	    {"{\"weight_map\":{\"x\":\"\xff.safetensors\"}}", "not a plain file name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[600];

		memset(&err, 0, sizeof(err));
		CHECK(aprfs_st_index_parse(p, bad[i].text, strlen(bad[i].text), &ix, &err) ==
			  -EINVAL,
		      "%s", bad[i].text);
		CHECK(ix.refs == NULL && ix.shards == NULL && ix.json == NULL && ix.nrefs == 0);
		open_msg(p, bad[i].text, want, sizeof(want));
		CHECK(strcmp(err.msg, want) == 0, "parse: '%s', open: '%s'", err.msg, want);
		CHECK(strstr(err.msg, bad[i].want) != NULL, "%s: %s", bad[i].text, err.msg);
	}
	/* Not NUL-terminated: the length is the end. */
	CHECK(aprfs_st_index_parse(p, "{\"weight_map\":{}}xyz", 17, &ix, &err) == 0, "%s",
	      err.msg);
	CHECK(ix.nrefs == 0 && ix.nshards == 0);
	aprfs_st_index_free(&ix);
}

/* A small valid APR file made by the library itself (q8 of a 3-tensor checkpoint). */
static uint8_t *make_apr(size_t *size)
{
	static const char hdr[] =
	    "{\"w\":{\"dtype\":\"F32\",\"shape\":[16,256],\"data_offsets\":[0,16384]},"
	    "\"n\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[16384,16400]},"
	    "\"i\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[16400,16408]}}";
	size_t hl = sizeof(hdr) - 1, n = 8 + hl + 16408;
	uint8_t *st = calloc(1, n), *out = NULL;
	aprfs_source *s = NULL;
	aprfs_file *f = NULL;
	aprfs_err err = {0};

	for (int i = 0; i < 8; i++)
		st[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(st + 8, hdr, hl);
	for (int i = 0; i < 4100; i++) {
		float v = (float)((i * 37) % 101 - 50) / 16.0f;
		memcpy(st + 8 + hl + 4 * i, &v, 4);
	}
	put_file(at("tiny.safetensors"), st, n);
	free(st);
	CHECK(aprfs_source_open(at("tiny.safetensors"), NULL, &s, &err) == 0, "%s", err.msg);
	if (s && aprfs_file_open(s, "q8", NULL, &f, &err) == 0) {
		*size = aprfs_file_size(f);
		out = malloc(*size);
		CHECK(aprfs_file_read(f, NULL, NULL, 0, *size, out, &err) == (ssize_t)*size,
		      "%s", err.msg);
		aprfs_file_unref(f);
	}
	CHECK(out != NULL, "%s", err.msg);
	if (s)
		aprfs_source_unref(s);
	return out;
}

/* apr_verify_buffer and apr_open_verify on the same bytes: the same verdict, word for
 * word, for the good file and for a flipped byte in each of its sections. */
static void test_verify_buffer(void)
{
	size_t size = 0;
	uint8_t *apr = make_apr(&size);
	const char *p = at("tiny.q8.apr");
	apr_file a, b;
	aprfs_err ea = {0}, eb = {0};

	if (!apr)
		return;
	CHECK(apr_verify_buffer(p, apr, size, &a, &ea) == 0, "%s", ea.msg);
	CHECK(a.nentries == 3 && a.map == apr && a.fd == -1 && !a.mapped);
	apr_close(&a);
	CHECK(apr_verify_buffer(p, apr, 0, &a, &ea) == -EINVAL && strstr(ea.msg, "empty file"),
	      "%s", ea.msg);
	apr_close(&a);
	CHECK(apr_verify_buffer(p, apr, 40, &a, &ea) == -EINVAL && strstr(ea.msg, "too short"),
	      "%s", ea.msg);
	apr_close(&a);
	const size_t flips[] = {0, 5, 30, 44, 64, 70, size / 2, size - 5, size - 1};
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		size_t k = flips[i];

		apr[k] ^= 0x40;
		put_file(p, apr, size);
		int ra = apr_verify_buffer(p, apr, size, &a, &ea);
		int rb = apr_open_verify(p, &b, &eb);
		CHECK(ra == -EINVAL && rb == -EINVAL, "byte %zu: %d %d", k, ra, rb);
		CHECK(strcmp(ea.msg, eb.msg) == 0, "byte %zu: '%s' vs '%s'", k, ea.msg, eb.msg);
		CHECK(a.nentries == b.nentries);
		apr_close(&a);
		apr_close(&b);
		apr[k] ^= 0x40;
	}
	put_file(p, apr, size);
	CHECK(apr_open_verify(p, &b, &eb) == 0 && b.mapped, "%s", eb.msg);
	apr_close(&b);
	free(apr);
}

/* ---- inputs the fuzzers found (tests/fuzz/); each failed under ASan/UBSan before its fix */

/* fuzz_st_header: a header with no tensors ("{}", or only __metadata__) sorted an empty
 * table through qsort(NULL, 0, ...), undefined behaviour (qsort's pointer is nonnull). A
 * checkpoint without tensors is valid: it opens with none. */
static void test_found_empty_header(void)
{
	static const char *const hdrs[] = {"{}", "  {  }  ", "{\"__metadata__\":{}}"};

	for (size_t i = 0; i < sizeof(hdrs) / sizeof(hdrs[0]); i++) {
		size_t hl = strlen(hdrs[i]);
		uint8_t b[64] = {(uint8_t)hl};
		aprfs_source *s = NULL;
		aprfs_err err = {0};

		memcpy(b + 8, hdrs[i], hl);
		put_file(at("empty.safetensors"), b, 8 + hl);
		CHECK(aprfs_source_open(at("empty.safetensors"), NULL, &s, &err) == 0, "%s: %s",
		      hdrs[i], err.msg);
		CHECK(s && aprfs_source_count(s) == 0);
		if (s)
			aprfs_source_unref(s);
	}
}

int main(void)
{
	char cmd[300];

	if (!check_tmpdir(tmp, sizeof(tmp), "test-inputs")) {
		perror("mkdtemp");
		return 2;
	}
	test_index_parse();
	test_verify_buffer();
	test_found_empty_header();
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmp);
	return check_done("inputs");
}
