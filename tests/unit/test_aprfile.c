/* test_aprfile.c - the range API: any range read equals the same bytes of one sequential
 * pass, with or without a cache, under eviction and concurrency; laziness (what a read
 * computes) and the footer CRC; source changes give EIO, never other bytes. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/crc.h"
#include "base/half.h"
#include "cache/cache.h"
#include "check.h"
#include "file/aprfile.h"
#include "format/aprfmt.h"

static char dir[256];

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint64_t next_u64(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}
static float next_gauss(void)
{
	float s = 0; /* sum of uniforms: close enough to Gaussian for these tests */
	for (int i = 0; i < 4; i++)
		s += (float)(next_u64() >> 40) / (float)(1 << 24) - 0.5f;
	return s * 0.05f;
}

typedef struct spec {
	const char *name, *dtype;
	int ndim;
	uint64_t dims[3];
} spec;

/* A bf16/f32/i64 checkpoint with shapes that exercise every fallback and short block. */
static const spec specs[] = {
    {"embed.weight", "BF16", 2, {300, 512}}, /* many chunks when chunk_elems is small */
    {"norm.weight", "F32", 1, {512}},
    {"odd.weight", "BF16", 2, {65, 70}}, /* q4 short block, k-quant/nf4 fallback */
    {"big.weight", "F16", 2, {128, 768}},
    {"empty", "F32", 2, {0, 16}},
    {"scalar", "F32", 0, {0}},
    {"ids", "I64", 1, {7}},
    {"proj.weight", "F32", 3, {4, 32, 256}},
};
#define NSPEC (sizeof(specs) / sizeof(specs[0]))

static size_t dsize(const char *d)
{
	return !strcmp(d, "F32") ? 4 : !strcmp(d, "I64") ? 8 : 2;
}
static uint64_t nelem(const spec *s)
{
	uint64_t n = 1;
	for (int d = 0; d < s->ndim; d++)
		n *= s->dims[d];
	return n;
}

static void put_elem(FILE *f, const char *d, uint64_t i)
{
	float x = next_gauss();
	if (!strcmp(d, "F32")) {
		fwrite(&x, 4, 1, f);
	} else if (!strcmp(d, "I64")) {
		int64_t v = (int64_t)i;
		fwrite(&v, 8, 1, f);
	} else {
		uint16_t h = !strcmp(d, "BF16") ? aprfs_f32_to_bf16(x) : aprfs_f32_to_f16(x);
		fwrite(&h, 2, 1, f);
	}
}

static void write_model(const char *path)
{
	char hdr[4096];
	size_t n = (size_t)snprintf(hdr, sizeof(hdr), "{");
	uint64_t off = 0;
	for (size_t i = 0; i < NSPEC; i++) {
		uint64_t bytes = nelem(&specs[i]) * dsize(specs[i].dtype);
		n += (size_t)snprintf(hdr + n, sizeof(hdr) - n,
				      "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", i ? "," : "",
				      specs[i].name, specs[i].dtype);
		for (int d = 0; d < specs[i].ndim; d++)
			n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "%s%llu", d ? "," : "",
					      (unsigned long long)specs[i].dims[d]);
		n += (size_t)snprintf(
		    hdr + n, sizeof(hdr) - n, "],\"data_offsets\":[%llu,%llu]}",
		    (unsigned long long)off, (unsigned long long)(off + bytes));
		off += bytes;
	}
	n += (size_t)snprintf(hdr + n, sizeof(hdr) - n, "}");
	FILE *f = fopen(path, "wb");
	uint64_t len = n;
	fwrite(&len, 8, 1, f);
	fwrite(hdr, 1, n, f);
	for (size_t i = 0; i < NSPEC; i++)
		for (uint64_t e = 0; e < nelem(&specs[i]); e++)
			put_elem(f, specs[i].dtype, e);
	fclose(f);
}

static uint8_t *read_all(aprfs_file *f, aprfs_cache *c, size_t step)
{
	uint64_t size = aprfs_file_size(f);
	uint8_t *buf = malloc(size);
	aprfs_err err;
	for (uint64_t pos = 0; pos < size;) {
		ssize_t n = aprfs_file_read(f, c, NULL, pos, step, buf + pos, &err);
		if (n <= 0) {
			fprintf(stderr, "read failed at %llu: %s\n", (unsigned long long)pos,
				err.msg);
			free(buf);
			return NULL;
		}
		pos += (uint64_t)n;
	}
	return buf;
}

static aprfs_file *open_variant(aprfs_source *s, const char *v, uint32_t chunk_elems)
{
	aprfs_opts o;
	aprfs_file *f = NULL;
	aprfs_err err;
	aprfs_opts_default(&o);
	o.chunk_elems = chunk_elems;
	int rc = aprfs_file_open(s, v, &o, &f, &err);
	CHECK(rc == 0, "%s: %s", v, err.msg);
	return f;
}

/* The footer is the CRC of all before it; and every range equals the sequential bytes. */
static void test_ranges(aprfs_source *s, const char *v)
{
	aprfs_file *f = open_variant(s, v, 4096);
	uint64_t size = aprfs_file_size(f);
	uint8_t *ref = read_all(f, NULL, 1 << 20);
	CHECK(ref != NULL, "%s", v);
	if (!ref)
		return;
	CHECK(aprfs_crc32(0, ref, size - 4) == apr_get32(ref + size - 4), "%s footer", v);
	CHECK(apr_get32(ref + APR_OFF_CHECKSUM) == apr_header_checksum(ref), "%s header crc",
	      v);

	aprfs_file *g = open_variant(s, v, 4096);  /* cold: footer first, then ranges */
	aprfs_cache *tiny = aprfs_cache_new(8192); /* forces eviction all the time */
	uint8_t foot[4], buf[9000];
	aprfs_err err;
	CHECK(aprfs_file_read(g, NULL, NULL, size - 4, 100, foot, &err) == 4, "%s cold footer",
	      v);
	CHECK(memcmp(foot, ref + size - 4, 4) == 0, "%s cold footer bytes", v);
	int bad = 0;
	for (int i = 0; i < 300; i++) {
		uint64_t off = next_u64() % size, len = next_u64() % sizeof(buf);
		ssize_t n = aprfs_file_read(g, i % 2 ? tiny : NULL, NULL, off, len, buf, &err);
		uint64_t want = off + len > size ? size - off : len;
		bad += n != (ssize_t)want || memcmp(buf, ref + off, want) != 0;
	}
	CHECK(bad == 0, "%s: %d random ranges differ", v, bad);
	CHECK(aprfs_file_read(g, NULL, NULL, size, 10, buf, &err) == 0, "read at EOF");
	CHECK(aprfs_file_read(g, NULL, NULL, size + 5, 10, buf, &err) == 0, "read past EOF");
	aprfs_cache_stats st;
	aprfs_cache_get_stats(tiny, &st);
	CHECK(st.bytes_cached <= 8192 + 64 * 1024, "budget: %llu cached",
	      (unsigned long long)st.bytes_cached);
	CHECK(st.evictions > 0, "tiny cache evicts");
	aprfs_cache_free(tiny);
	aprfs_file_unref(g);
	aprfs_file_unref(f);
	free(ref);
}

/* Reading the head computes nothing; reading one tensor computes only its chunks. */
static void test_laziness(aprfs_source *s)
{
	aprfs_file *f = open_variant(s, "q4", 4096);
	aprfs_cache *c = aprfs_cache_new(64 << 20);
	aprfs_cache_stats st;
	aprfs_err err;
	uint8_t *buf = malloc(aprfs_file_size(f));
	int v = aprfs_variant_index("q4");

	CHECK(aprfs_file_read(f, c, NULL, 0, aprfs_file_data_offset(f), buf, &err) ==
		  (ssize_t)aprfs_file_data_offset(f),
	      "head");
	aprfs_cache_get_stats(c, &st);
	CHECK(st.chunks_computed[v] == 0, "head read computed %llu chunks",
	      (unsigned long long)st.chunks_computed[v]);

	for (size_t i = 0; i < aprfs_file_tensor_count(f); i++) {
		aprfs_file_tensor t;
		aprfs_file_tensor_info(f, i, &t, NULL);
		if (strcmp(t.src->name, "big.weight"))
			continue;
		uint64_t first, count, before = st.chunks_computed[v];
		aprfs_file_chunks_in(f, t.offset, t.size, &first, &count);
		CHECK(count == (128 * 768 / 32 + 127) / 128, "big.weight chunks %llu",
		      (unsigned long long)count);
		CHECK(aprfs_file_read(f, c, NULL, t.offset, t.size, buf, &err) ==
			  (ssize_t)t.size,
		      "tensor");
		aprfs_cache_get_stats(c, &st);
		CHECK(st.chunks_computed[v] - before == count, "computed %llu, expected %llu",
		      (unsigned long long)(st.chunks_computed[v] - before),
		      (unsigned long long)count);
		CHECK(aprfs_file_read(f, c, NULL, t.offset, t.size, buf, &err) ==
			  (ssize_t)t.size,
		      "again");
		aprfs_cache_get_stats(c, &st);
		CHECK(st.cache_hits[v] >= count, "second read hits the cache");
		CHECK(st.bytes_served[v] >= 2 * t.size, "served counted");
	}
	free(buf);
	aprfs_cache_free(c);
	aprfs_file_unref(f);
}

typedef struct worker {
	aprfs_file *f;
	aprfs_cache *c;
	const uint8_t *ref;
	int bad;
	uint64_t seed;
} worker;

static void *reader(void *arg)
{
	worker *w = arg;
	uint64_t size = aprfs_file_size(w->f), x = w->seed;
	uint8_t buf[20000];
	aprfs_err err;
	for (int i = 0; i < 400; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint64_t off = x % size, len = (x >> 20) % sizeof(buf);
		ssize_t n = aprfs_file_read(w->f, w->c, NULL, off, len, buf, &err);
		uint64_t want = off + len > size ? size - off : len;
		w->bad += n != (ssize_t)want || memcmp(buf, w->ref + off, want) != 0;
	}
	return NULL;
}

static void test_concurrency(aprfs_source *s)
{
	const char *vs[] = {"q8", "ternary", "q4k"};
	for (size_t k = 0; k < 3; k++) {
		aprfs_file *ref_f = open_variant(s, vs[k], 4096);
		uint8_t *ref = read_all(ref_f, NULL, 1 << 20);
		aprfs_file *f = open_variant(s, vs[k], 4096);
		aprfs_cache *c = aprfs_cache_new(200000);
		worker w[6];
		pthread_t th[6];
		for (int i = 0; i < 6; i++) {
			w[i] = (worker){f, c, ref, 0, 1234567u * (i + 1)};
			pthread_create(&th[i], NULL, reader, &w[i]);
		}
		int bad = 0;
		for (int i = 0; i < 6; i++) {
			pthread_join(th[i], NULL);
			bad += w[i].bad;
		}
		CHECK(bad == 0, "%s: %d concurrent reads differ", vs[k], bad);
		aprfs_cache_free(c);
		aprfs_file_unref(f);
		aprfs_file_unref(ref_f);
		free(ref);
	}
}

typedef struct same_reader {
	aprfs_file *f;
	aprfs_cache *c;
	uint8_t *buf;
	ssize_t got;
} same_reader;

static void *read_whole(void *arg)
{
	same_reader *r = arg;
	aprfs_err err;
	r->got = aprfs_file_read(r->f, r->c, NULL, 0, aprfs_file_size(r->f), r->buf, &err);
	return NULL;
}

/* Readers racing for the same chunks compute each chunk once (single flight). */
static void test_single_flight(aprfs_source *s)
{
	aprfs_file *f = open_variant(s, "q4k", 4096);
	aprfs_cache *c = aprfs_cache_new(256 << 20);
	int v = aprfs_variant_index("q4k");
	uint64_t size = aprfs_file_size(f);
	same_reader r[6];
	pthread_t th[6];
	for (int i = 0; i < 6; i++) {
		r[i] = (same_reader){f, c, malloc(size), 0};
		pthread_create(&th[i], NULL, read_whole, &r[i]);
	}
	int same = 1;
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		same &= r[i].got == (ssize_t)size && memcmp(r[i].buf, r[0].buf, size) == 0;
	}
	aprfs_cache_stats st;
	aprfs_cache_get_stats(c, &st);
	CHECK(same, "6 readers of one file got the same bytes");
	/* Pass-through tensors are read straight from the source, never cached. */
	uint64_t want = 0;
	for (size_t i = 0; i < aprfs_file_tensor_count(f); i++) {
		aprfs_file_tensor t;
		uint64_t first, count;
		aprfs_file_tensor_info(f, i, &t, NULL);
		aprfs_file_chunks_in(f, t.offset, t.size, &first, &count);
		want += t.copied ? 0 : count;
	}
	CHECK(want > 0 && want < aprfs_file_chunk_count(f), "%llu", (unsigned long long)want);
	CHECK(st.chunks_computed[v] == want, "%llu chunks computed for %llu chunks",
	      (unsigned long long)st.chunks_computed[v], (unsigned long long)want);
	for (int i = 0; i < 6; i++)
		free(r[i].buf);
	aprfs_cache_free(c);
	aprfs_file_unref(f);
}

/* Chunking is an implementation detail: any chunk size gives the same bytes. */
static void test_chunk_size_invariance(aprfs_source *s)
{
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		aprfs_file *a = open_variant(s, aprfs_variant_names[v], 1024);
		aprfs_file *b = open_variant(s, aprfs_variant_names[v], 1 << 20);
		uint8_t *x = read_all(a, NULL, 777777), *y = read_all(b, NULL, 1 << 20);
		CHECK(x && y && aprfs_file_size(a) == aprfs_file_size(b) &&
			  memcmp(x, y, aprfs_file_size(a)) == 0,
		      "%s differs between chunk sizes", aprfs_variant_names[v]);
		free(x), free(y);
		aprfs_file_unref(a), aprfs_file_unref(b);
	}
}

static void test_bad_opts(aprfs_source *s)
{
	aprfs_opts o;
	aprfs_file *f = NULL;
	aprfs_err err;
	aprfs_opts_default(&o);
	CHECK(aprfs_file_open(s, "q5", &o, &f, &err) == -EINVAL && strstr(err.msg, "q5"),
	      "variant");
	o.nf4_block = 7;
	CHECK(aprfs_file_open(s, "nf4", &o, &f, &err) == -EINVAL && strstr(err.msg, "even"),
	      "nf4");
}

/* An open file whose source changes in place fails with EIO instead of mixing bytes. */
static void test_source_change(const char *path)
{
	aprfs_source *s;
	aprfs_err err;
	CHECK(aprfs_source_open(path, NULL, &s, &err) == 0, "%s", err.msg);
	aprfs_file *f = open_variant(s, "q8", 4096);
	uint8_t *buf = malloc(aprfs_file_size(f));
	FILE *fp = fopen(path, "r+b");
	fseek(fp, -3, SEEK_END);
	fputc('x', fp);
	fclose(fp);
	usleep(10000);
	ssize_t n =
	    aprfs_file_read(f, NULL, NULL, aprfs_file_data_offset(f), 100000, buf, &err);
	CHECK(n == -EIO, "read after change: %zd (%s)", n, err.msg);
	CHECK(aprfs_source_stale(s) == 1, "stale");
	free(buf);
	aprfs_file_unref(f);
	aprfs_source_unref(s);
}

/* A cancel that says stop from its n-th check on (n 0: at once), optionally after a
 * delay, so another reader can start waiting meanwhile. */
typedef struct countdown {
	atomic_int left;
	useconds_t delay;
} countdown;

static int countdown_check(void *arg)
{
	countdown *c = arg;
	if (atomic_fetch_sub(&c->left, 1) > 0)
		return 0;
	if (c->delay)
		usleep(c->delay);
	return 1;
}

typedef struct cancel_reader {
	aprfs_file *f;
	aprfs_cache *c;
	const aprfs_cancel *cancel;
	uint64_t off;
	size_t len;
	uint8_t *buf;
	ssize_t got;
	aprfs_err err;
} cancel_reader;

static void *cancel_read(void *arg)
{
	cancel_reader *r = arg;
	r->got = aprfs_file_read(r->f, r->c, r->cancel, r->off, r->len, r->buf, &r->err);
	return NULL;
}

/* Cancelled work stops with -ECANCELED and leaves nothing half done: the statistic, the
 * chunk and the footer are computed right by the next reader; a reader waiting for a
 * chunk that another reader gave up on computes it itself. */
static void test_cancel(aprfs_source *s)
{
	for (size_t k = 0; k < 3; k++) {
		const char *v = (const char *[]){"q8", "ternary", "q4k"}[k];
		aprfs_file *ref = open_variant(s, v, 4096), *f = open_variant(s, v, 4096);
		aprfs_cache *c = aprfs_cache_new(64 << 20);
		uint64_t size = aprfs_file_size(f);
		uint8_t *want = read_all(ref, NULL, 1 << 20), *got = malloc(size);
		aprfs_err err = {0};
		for (int n = 0; n < 4; n++) {
			countdown cd = {n, 0};
			aprfs_cancel cancel = {countdown_check, &cd};
			ssize_t r =
			    aprfs_file_read(f, n % 2 ? c : NULL, &cancel, 0, size, got, &err);
			CHECK(r == -ECANCELED && err.code == ECANCELED,
			      "%s: cancelled read: %zd", v, r);
		}
		countdown never = {1 << 30, 0};
		aprfs_cancel fine = {countdown_check, &never};
		CHECK(aprfs_file_read(f, c, &fine, 0, size, got, &err) == (ssize_t)size &&
			  memcmp(got, want, size) == 0,
		      "%s: after cancelled reads, the bytes are right", v);
		free(want), free(got);
		aprfs_cache_free(c);
		aprfs_file_unref(f), aprfs_file_unref(ref);
	}

	aprfs_file *f = open_variant(s, "q4k", 4096), *ref = open_variant(s, "q4k", 4096);
	aprfs_cache *c = aprfs_cache_new(64 << 20);
	uint64_t off = aprfs_file_data_offset(f);
	countdown slow = {0, 200000};
	aprfs_cancel gives_up = {countdown_check, &slow};
	cancel_reader a = {f, c, &gives_up, off, 4096, malloc(4096), 0, {0}};
	cancel_reader b = {f, c, NULL, off, 4096, malloc(4096), 0, {0}};
	uint8_t want[4096];
	pthread_t ta, tb;
	aprfs_err err;
	pthread_create(&ta, NULL, cancel_read, &a);
	usleep(50000); /* a is computing the chunk (and about to give up) */
	pthread_create(&tb, NULL, cancel_read, &b);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
	CHECK(aprfs_file_read(ref, NULL, NULL, off, 4096, want, &err) == 4096);
	CHECK(a.got == -ECANCELED, "the reader that gave up: %zd", a.got);
	CHECK(b.got == 4096 && memcmp(b.buf, want, 4096) == 0,
	      "the reader that waited computed the chunk itself: %zd %s", b.got, b.err.msg);
	free(a.buf), free(b.buf);
	aprfs_cache_free(c);
	aprfs_file_unref(f), aprfs_file_unref(ref);
}

/* What the daemon watches to tell a reader that is gone. */
static void test_pid_gone(void)
{
	pid_t child = fork();
	if (child == 0) {
		pause();
		_exit(0);
	}
	aprfs_pid_watch w;
	aprfs_pid_watch_init(&w, child);
	CHECK(aprfs_pid_gone(child) == 0 && aprfs_pid_watch_gone(&w) == 0, "alive");
	kill(child, SIGKILL);
	usleep(100000); /* a zombie now: it will never read again */
	CHECK(aprfs_pid_gone(child) == 1, "a zombie is gone");
	usleep((APRFS_PID_POLL_MS + 5) * 1000);
	CHECK(aprfs_pid_watch_gone(&w) == 1, "the watch sees it");
	waitpid(child, NULL, 0);
	CHECK(aprfs_pid_gone(child) == 1 && aprfs_pid_watch_gone(&w) == 1, "reaped");
	CHECK(aprfs_pid_gone(0) == 0 && aprfs_pid_gone(getpid()) == 0, "kernel and self");
	/* A new watch first looks one period later: a short request never reads /proc. */
	aprfs_pid_watch_init(&w, child);
	CHECK(aprfs_pid_watch_gone(&w) == 0, "not looked at yet");
	usleep((APRFS_PID_POLL_MS + 5) * 1000);
	CHECK(aprfs_pid_watch_gone(&w) == 1, "looked at after one period");
}

int main(void)
{
	char path[300];
	aprfs_source *s;
	aprfs_err err;

	if (!check_tmpdir(dir, sizeof(dir), "test-aprfile")) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(path, sizeof(path), "%s/model.safetensors", dir);
	write_model(path);
	CHECK(aprfs_source_open(path, NULL, &s, &err) == 0, "%s", err.msg);
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++)
		test_ranges(s, aprfs_variant_names[v]);
	test_laziness(s);
	test_concurrency(s);
	test_single_flight(s);
	test_chunk_size_invariance(s);
	test_bad_opts(s);
	test_cancel(s);
	aprfs_source_unref(s);
	test_pid_gone();
	test_source_change(path);
	unlink(path);
	rmdir(dir);
	return check_done("aprfile");
}
