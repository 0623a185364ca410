/* test_stream.c - aprfs_file_stream(), what `convert --threads N` runs: for every thread
 * count the sink sees each piece once, in file order, with the range API's bytes; a failing
 * sink or a source that breaks mid-way stops every thread, and nothing reaches the sink after.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "file/stream.h"
#include "testfs.h"

static char dir[256];

/* One F32 tensor of 2048 x 2304: its f32 view is 18 MiB, five pieces with a short last. */
enum { ROWS = 2048, COLS = 2304 };

static const char *write_model(void)
{
	char header[128];
	int hl =
	    snprintf(header, sizeof(header),
		     "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]}}",
		     ROWS, COLS, (size_t)ROWS * COLS * 4);
	size_t n = (size_t)ROWS * COLS, size = 8 + (size_t)hl + 4 * n;
	uint8_t *buf = malloc(size);
	uint64_t len = (uint64_t)hl;
	const char *path = test_path(dir, "model.safetensors");

	if (!buf)
		exit(2);
	memcpy(buf, &len, 8);
	memcpy(buf + 8, header, (size_t)hl);
	for (size_t i = 0; i < n; i++) {
		float x = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
		memcpy(buf + 8 + hl + 4 * i, &x, 4);
	}
	put_file(path, buf, size);
	free(buf);
	return path;
}

/* What the sink saw: the bytes in order, and when to fail. */
typedef struct seen {
	uint8_t *bytes;
	uint64_t size, next_off;
	unsigned calls, fail_at; /* fail on call number fail_at (1-based); 0: never */
	int out_of_order;
} seen;

static int sink(void *ctx, const uint8_t *data, size_t len, uint64_t off, aprfs_err *err)
{
	seen *s = ctx;

	s->calls++;
	if (off != s->next_off || off + len > s->size)
		s->out_of_order = 1;
	else
		memcpy(s->bytes + off, data, len);
	s->next_off = off + len;
	if (s->calls == s->fail_at)
		return aprfs_fail(err, ENOSPC, "disk full at call %u", s->calls);
	return 0;
}

static uint8_t *read_whole(aprfs_file *f, uint64_t size)
{
	aprfs_cache *c = aprfs_cache_new(32u << 20);
	uint8_t *b = malloc(size);
	aprfs_err err = {0};

	if (!c || !b || aprfs_file_read(f, c, NULL, 0, size, b, &err) != (ssize_t)size) {
		fprintf(stderr, "reference read: %s\n", err.msg);
		exit(2);
	}
	aprfs_cache_free(c);
	return b;
}

static aprfs_file *open_f32(const char *path, aprfs_source **src)
{
	aprfs_file *f = NULL;
	aprfs_err err = {0};

	if (aprfs_source_open(path, NULL, src, &err) != 0 ||
	    aprfs_file_open(*src, "f32", NULL, &f, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(2);
	}
	return f;
}

static int stream(aprfs_file *f, unsigned threads, seen *s, aprfs_err *err)
{
	aprfs_cache *c = aprfs_cache_new(16u << 20);
	int rc = aprfs_file_stream(f, c, threads, sink, s, err);

	aprfs_cache_free(c);
	return rc;
}

static void test_every_thread_count(const char *path)
{
	aprfs_source *src;
	aprfs_file *f = open_f32(path, &src);
	uint64_t size = aprfs_file_size(f);
	uint8_t *ref = read_whole(f, size);
	unsigned pieces = (unsigned)((size + APRFS_STREAM_PIECE - 1) / APRFS_STREAM_PIECE);

	CHECK(pieces == 5, "%u pieces", pieces);
	for (unsigned t = 1; t <= 8; t++) {
		seen s = {.bytes = calloc(1, size), .size = size};
		aprfs_err err = {0};

		CHECK(stream(f, t, &s, &err) == 0, "threads %u: %s", t, err.msg);
		CHECK(s.calls == pieces && !s.out_of_order && s.next_off == size,
		      "threads %u: %u calls, order %d, end %llu", t, s.calls, !s.out_of_order,
		      (unsigned long long)s.next_off);
		CHECK(memcmp(s.bytes, ref, size) == 0, "threads %u: bytes differ", t);
		free(s.bytes);
	}
	free(ref);
	aprfs_file_unref(f);
	aprfs_source_unref(src);
}

/* The sink fails on its 2nd call: the error comes back, and no piece is written after. */
static void test_sink_fails(const char *path)
{
	aprfs_source *src;
	aprfs_file *f = open_f32(path, &src);

	for (unsigned t = 1; t <= 4; t++) {
		seen s = {.bytes = calloc(1, aprfs_file_size(f)),
			  .size = aprfs_file_size(f),
			  .fail_at = 2};
		aprfs_err err = {0};
		int rc = stream(f, t, &s, &err);

		CHECK(rc == -ENOSPC && strstr(err.msg, "disk full at call 2"),
		      "threads %u: rc %d, '%s'", t, rc, err.msg);
		CHECK(s.calls == 2, "threads %u: %u sink calls after the failure", t, s.calls);
		free(s.bytes);
	}
	aprfs_file_unref(f);
	aprfs_source_unref(src);
}

/* The source loses its second half after the file is planned: an error naming the cause,
 * only whole pieces before the break reach the sink, and every thread returns. */
static void test_source_breaks(const char *path)
{
	for (unsigned t = 1; t <= 4; t++) {
		aprfs_source *src;
		write_model(); /* whole again */
		aprfs_file *f = open_f32(path, &src);
		uint64_t size = aprfs_file_size(f);
		seen s = {.bytes = calloc(1, size), .size = size};
		aprfs_err err = {0};

		CHECK(truncate(path, 8 + 128 + (off_t)ROWS * COLS * 2) == 0, "truncate");
		int rc = stream(f, t, &s, &err);
		CHECK(rc < 0 && err.msg[0], "threads %u: rc %d after truncation", t, rc);
		CHECK(s.calls < 3 && !s.out_of_order, "threads %u: %u pieces written", t,
		      s.calls);
		free(s.bytes);
		aprfs_file_unref(f);
		aprfs_source_unref(src);
	}
}

int main(void)
{
	if (!check_tmpdir(dir, sizeof(dir), "test-stream"))
		return 2;
	const char *path = write_model();

	test_every_thread_count(path);
	test_sink_fails(path);
	test_source_breaks(path);
	unlink(path);
	rmdir(dir);
	return check_done("stream");
}
