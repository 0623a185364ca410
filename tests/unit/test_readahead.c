/* test_readahead.c - the read-ahead pool and detector: sequential reads warm the chunks
 * of the next window (each once), single and random reads warm nothing, every job is
 * accounted for (warmed, failed or dropped), failures are harmless, the pool joins. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "file/readahead.h"

static char path[512];

/* One F32 tensor "w" of rows x cols: rows*cols/65536 q8 chunks of 64 KiB. Big enough
 * that a jump across it exceeds the detector's slack (4 MiB). */
static void put_model(int rows, int cols)
{
	char header[160];
	size_t n = (size_t)rows * cols, hl;
	FILE *f = fopen(path, "wb");
	uint64_t len;

	snprintf(header, sizeof(header),
		 "{\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[0,%zu]}}", rows,
		 cols, n * 4);
	hl = strlen(header);
	len = hl;
	if (!f || fwrite(&len, 8, 1, f) != 1 || fwrite(header, 1, hl, f) != hl)
		exit(2);
	for (size_t i = 0; i < n; i++) {
		float x = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;

		if (fwrite(&x, 4, 1, f) != 1)
			exit(2);
	}
	fclose(f);
}

static aprfs_file *open_file(aprfs_source **src)
{
	aprfs_file *f = NULL;
	aprfs_err err = {0};

	if (aprfs_source_open(path, NULL, src, &err) != 0 ||
	    aprfs_file_open(*src, "q8", NULL, &f, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		exit(2);
	}
	return f;
}

static uint64_t computed(aprfs_cache *c)
{
	aprfs_cache_stats st;

	aprfs_cache_get_stats(c, &st);
	return st.chunks_computed[aprfs_variant_index("q8")];
}

static void test_sequential(void)
{
	aprfs_source *src;
	aprfs_file *f = open_file(&src);
	aprfs_cache *cache = aprfs_cache_new(64u << 20);
	aprfs_ra *ra = aprfs_ra_new(2, 64, cache, NULL);
	aprfs_ra_stream s;
	aprfs_ra_stats st;
	uint64_t d = aprfs_file_data_offset(f), n = aprfs_file_chunk_count(f), first, count;
	const uint64_t chunk = 65536, window = 3 * chunk;

	CHECK(n == 128, "%llu chunks", (unsigned long long)n);
	aprfs_ra_stream_init(&s);
	CHECK(aprfs_ra_note_read(ra, &s, f, d, 4096, window, 0) == 0, "one read is no pattern");
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 4096, 4096, window, 0) > 0, "two make a run");
	aprfs_ra_drain(ra);
	aprfs_file_chunks_in(f, d + 8192, window, &first, &count);
	CHECK(computed(cache) == first + count - 1,
	      "warmed the window after the read's own chunk: %llu",
	      (unsigned long long)computed(cache));
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 8192, 4096, window, 0) == 0,
	      "nothing new to queue inside the same window");
	/* Further along: only the chunks not queued before. */
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 2 * chunk, chunk, window, 0) == 2);
	aprfs_ra_drain(ra);
	CHECK(computed(cache) == 5, "%llu", (unsigned long long)computed(cache));

	/* A jump is not sequential: nothing queued; the reads after it start a new run. */
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 120 * chunk, 100, window, 0) == 0);
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 120 * chunk + 100, 100, window, 0) == 3);
	aprfs_ra_drain(ra);
	CHECK(computed(cache) == 8);
	/* The end of the file bounds the window. */
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 127 * chunk, 100, window, 0) == 0);
	CHECK(aprfs_ra_note_read(ra, &s, f, d + 127 * chunk + 100, 100, window, 0) == 0);

	aprfs_ra_get_stats(ra, &st);
	CHECK(st.queued == 8 && st.warmed == 8 && st.failed == 0 && st.pending == 0);
	CHECK(aprfs_ra_note_read(NULL, &s, f, d, 100, window, 0) == 0);
	CHECK(aprfs_ra_note_read(ra, &s, f, d, 100, 0, 0) == 0, "window 0: off");
	aprfs_ra_stream_destroy(&s);
	aprfs_ra_free(ra);
	aprfs_file_unref(f);
	aprfs_source_unref(src);
	aprfs_cache_free(cache);
}

/* Many jobs through a small queue, some cancelled: every one is accounted for, and a
 * pool freed with jobs still queued joins. */
static void test_queue_and_stop(void)
{
	aprfs_source *src;
	aprfs_file *f = open_file(&src);
	aprfs_cache *cache = aprfs_cache_new(64u << 20);
	aprfs_ra *ra = aprfs_ra_new(2, 4, cache, NULL);
	aprfs_ra_stats st;
	int owner_a, owner_b, accepted = 0, refused = 0;

	for (int i = 0; i < 200; i++) {
		int rc =
		    aprfs_ra_queue(ra, f, (uint64_t)i % 16, i % 2 ? &owner_a : &owner_b, 0);

		rc == 0 ? accepted++ : refused++;
		if (i == 100)
			aprfs_ra_cancel(ra, &owner_a);
	}
	aprfs_ra_drain(ra);
	aprfs_ra_get_stats(ra, &st);
	CHECK(st.queued == (uint64_t)accepted && refused > 0, "a 4-slot queue refuses some");
	CHECK(st.warmed + st.failed + st.dropped == (uint64_t)(accepted + refused),
	      "accounted: %llu+%llu+%llu", (unsigned long long)st.warmed,
	      (unsigned long long)st.failed, (unsigned long long)st.dropped);
	CHECK(st.failed == 0 && st.pending == 0);
	CHECK(aprfs_ra_queue(ra, f, 1000, &owner_a, 0) == 0);
	aprfs_ra_drain(ra);
	aprfs_ra_get_stats(ra, &st);
	CHECK(st.failed == 1, "a chunk out of range fails, harmlessly");
	aprfs_ra_free(ra);

	ra = aprfs_ra_new(1, 1000, cache, NULL);
	for (int i = 0; i < 1000; i++)
		aprfs_ra_queue(ra, f, (uint64_t)i % 16, &owner_a, 0);
	aprfs_ra_free(ra); /* stops with jobs queued, drops their references */
	CHECK(1, "freed with a full queue");
	aprfs_file_unref(f);
	aprfs_source_unref(src);
	aprfs_cache_free(cache);
}

/* The source changes under a queued job: the warm fails, nothing is cached. */
static void test_failure(void)
{
	aprfs_source *src;
	aprfs_file *f = open_file(&src);
	aprfs_cache *cache = aprfs_cache_new(64u << 20);
	aprfs_ra *ra = aprfs_ra_new(1, 16, cache, NULL);
	aprfs_ra_stats st;
	int fd = open(path, O_WRONLY);
	int owner;

	CHECK(fd >= 0 && pwrite(fd, "abcd", 4, 200) == 4);
	close(fd);
	for (int i = 0; i < 4; i++)
		aprfs_ra_queue(ra, f, (uint64_t)i, &owner, 0);
	aprfs_ra_drain(ra);
	aprfs_ra_get_stats(ra, &st);
	CHECK(st.failed == 4 && st.warmed == 0, "failed %llu", (unsigned long long)st.failed);
	CHECK(computed(cache) == 0);
	aprfs_ra_free(ra);
	aprfs_file_unref(f);
	aprfs_source_unref(src);
	aprfs_cache_free(cache);
}

int main(void)
{
	const char *t = getenv("TMPDIR");

	snprintf(path, sizeof(path), "%s/test_ra.%d.safetensors", t && *t ? t : "/tmp",
		 (int)getpid());
	put_model(1024, 8192);
	test_sequential();
	test_queue_and_stop();
	test_failure();
	unlink(path);
	return check_done("readahead");
}
