/* test_tree.c - the virtual tree without FUSE: the naming rule (single files, sharded
 * indexes, enabled variants), pass-through and hidden entries (symlinks out of the root,
 * FIFOs), broken checkpoints logged once, sizes, snapshots across source changes. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "check.h"
#include "testfs.h"
#include "view/tree.h"

static char root[256], outside[256];

static const char *at(const char *name)
{
	return test_path(root, name);
}

/* A safetensors file with one F32 tensor "w" of rows x cols (values from seed) and a
 * 1-D "b" of cols. */
static void put_model(const char *path, int rows, int cols, float seed)
{
	char header[256];
	size_t nw = (size_t)rows * cols, nb = (size_t)cols, hl, n;
	uint8_t *buf;
	float *x;

	snprintf(header, sizeof(header),
		 "{\"b\":{\"dtype\":\"F32\",\"shape\":[%d],\"data_offsets\":[0,%zu]},"
		 "\"w\":{\"dtype\":\"F32\",\"shape\":[%d,%d],\"data_offsets\":[%zu,%zu]}}",
		 cols, nb * 4, rows, cols, nb * 4, (nb + nw) * 4);
	hl = strlen(header);
	n = 8 + hl + (nb + nw) * 4;
	buf = calloc(1, n + 4);
	for (int i = 0; i < 8; i++)
		buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
	memcpy(buf + 8, header, hl);
	x = malloc((nb + nw) * sizeof(float));
	for (size_t i = 0; i < nb + nw; i++)
		x[i] = seed * (float)((i * 37) % 101) / 101.0f - 0.5f;
	memcpy(buf + 8 + hl, x, (nb + nw) * 4);
	put_file(path, buf, n);
	free(x);
	free(buf);
}

static void age(const char *path)
{
	struct timespec ts[2] = {{1600000000, 123}, {1600000000, 123}};

	utimensat(AT_FDCWD, path, ts, 0);
}

/* ---- listing helpers ---- */

typedef struct names {
	char *v[512];
	int n;
} names;

static int collect(const char *name, const struct stat *st, void *ctx)
{
	names *l = ctx;

	(void)st;
	if (l->n < 512)
		l->v[l->n++] = strdup(name);
	return 0;
}

static void names_free(names *l)
{
	for (int i = 0; i < l->n; i++)
		free(l->v[i]);
	l->n = 0;
}

static int has(const names *l, const char *name)
{
	for (int i = 0; i < l->n; i++)
		if (strcmp(l->v[i], name) == 0)
			return 1;
	return 0;
}

static int list(aprfs_tree *t, const char *path, names *l)
{
	names_free(l);
	return aprfs_tree_list(t, path, collect, l);
}

static aprfs_tree *new_tree(uint32_t variants, size_t max_sources)
{
	aprfs_tree_conf tc = {
	    .variants = variants, .nf4_block = 64, .max_sources = max_sources};
	aprfs_tree *t = NULL;
	aprfs_err err = {0};

	if (aprfs_tree_new(root, &tc, &t, &err) != 0) {
		fprintf(stderr, "tree: %s\n", err.msg);
		exit(2);
	}
	return t;
}

static uint32_t mask_of(const char *a, const char *b)
{
	return (1u << aprfs_variant_index(a)) | (b ? 1u << aprfs_variant_index(b) : 0);
}

/* ---- tests ---- */

static void test_naming(void)
{
	aprfs_tree *t = new_tree(APRFS_VARIANT_MASK_ALL, 0);
	names l = {0};
	char name[64];
	struct stat st;
	aprfs_node_kind kind;

	CHECK(list(t, "/", &l) == 0);
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		snprintf(name, sizeof(name), "model.%s.apr", aprfs_variant_name(v));
		CHECK(has(&l, name), "%s listed", name);
	}
	CHECK(has(&l, "model.safetensors") && has(&l, "config.json") && has(&l, "README.md"));
	CHECK(has(&l, ".aprfs") && has(&l, "sub") && has(&l, "sharded"));
	CHECK(has(&l, "other.q8.apr"), "a real .apr without a checkpoint passes through");
	CHECK(!has(&l, "empty.q8.apr") && has(&l, ".safetensors"), "no stem, no checkpoint");
	CHECK(has(&l, "dir.safetensors") && !has(&l, "dir.q8.apr"),
	      "a directory is no checkpoint");

	CHECK(list(t, "/sharded", &l) == 0);
	CHECK(has(&l, "model.q4k.apr") && has(&l, "model.safetensors.index.json"));
	CHECK(has(&l, "model-00001-of-00002.safetensors"), "shards pass through");
	CHECK(!has(&l, "model-00001-of-00002.q8.apr") &&
		  !has(&l, "model-00002-of-00002.q8.apr"),
	      "shards are not models");
	CHECK(aprfs_tree_stat(t, "/sharded/model-00001-of-00002.q8.apr", &st, NULL) == -ENOENT);
	CHECK(aprfs_tree_stat(t, "/sharded/model.q8.apr", &st, &kind) == 0 &&
	      kind == APRFS_NODE_APR);

	CHECK(list(t, "sub", &l) == 0);
	CHECK(has(&l, "tiny.q8.apr") && has(&l, "tiny.ternary.apr") &&
		  has(&l, "tiny.q4km.apr") && l.n == 1 + APRFS_VARIANT_COUNT,
	      "sub: %d entries", l.n);
	CHECK(list(t, "/.aprfs", &l) == 0 && l.n == 2 && has(&l, "stats.json") &&
	      has(&l, "metrics"));
	CHECK(aprfs_tree_stat(t, "/.aprfs/stats.json", &st, &kind) == 0 &&
	      kind == APRFS_NODE_STATS && (st.st_mode & 0222) == 0);
	CHECK(aprfs_tree_stat(t, "/.aprfs/other", &st, NULL) == -ENOENT);
	CHECK(list(t, "/config.json", &l) == -ENOTDIR);
	CHECK(list(t, "/nope", &l) == -ENOENT);

	CHECK(aprfs_tree_stat(t, "/", &st, &kind) == 0 && kind == APRFS_NODE_DIR &&
	      (st.st_mode & 0222) == 0);
	CHECK(aprfs_tree_stat(t, "config.json", &st, &kind) == 0 && kind == APRFS_NODE_FILE &&
	      (st.st_mode & 0222) == 0 && st.st_size == 2);
	CHECK(aprfs_tree_stat(t, "/model.q9.apr", &st, NULL) == -ENOENT);
	CHECK(aprfs_tree_stat(t, "/nothing.q8.apr", &st, NULL) == -ENOENT);
	names_free(&l);
	aprfs_tree_free(t);

	/* Only the enabled variants exist. */
	t = new_tree(mask_of("q8", "q4"), 0);
	CHECK(list(t, "/", &l) == 0);
	CHECK(has(&l, "model.q8.apr") && has(&l, "model.q4.apr"));
	CHECK(!has(&l, "model.f16.apr") && !has(&l, "model.q4k.apr"));
	CHECK(aprfs_tree_stat(t, "/model.f16.apr", &st, NULL) == -ENOENT);
	names_free(&l);
	aprfs_tree_free(t);
}

/* Sizes come from the plan, and equal what the range API says for the same options. */
static void test_sizes(void)
{
	aprfs_tree *t = new_tree(APRFS_VARIANT_MASK_ALL, 0);
	aprfs_source *s = NULL;
	aprfs_err err = {0};
	aprfs_opts o;
	char name[64];
	struct stat st;

	CHECK(aprfs_source_open(at("sub/tiny.safetensors"), NULL, &s, &err) == 0, "%s",
	      err.msg);
	aprfs_opts_default(&o);
	o.source_rel = "sub/tiny.safetensors";
	for (int v = 0; s && v < APRFS_VARIANT_COUNT; v++) {
		aprfs_file *f = NULL;

		snprintf(name, sizeof(name), "/sub/tiny.%s.apr", aprfs_variant_name(v));
		CHECK(aprfs_file_open(s, aprfs_variant_name(v), &o, &f, &err) == 0, "%s",
		      err.msg);
		CHECK(aprfs_tree_stat(t, name, &st, NULL) == 0 && f &&
			  (uint64_t)st.st_size == aprfs_file_size(f),
		      "%s: %lld", name, (long long)st.st_size);
		CHECK(S_ISREG(st.st_mode) && (st.st_mode & 0222) == 0);
		aprfs_file_unref(f);
	}
	aprfs_source_unref(s);
	aprfs_tree_free(t);
}

static void test_open(void)
{
	aprfs_tree *t = new_tree(APRFS_VARIANT_MASK_ALL, 0);
	aprfs_tree_open_result r, r2;
	aprfs_err err = {0};
	char buf[8];

	CHECK(aprfs_tree_open(t, "/config.json", &r, &err) == 0 && r.kind == APRFS_NODE_FILE &&
	      r.fd >= 0 && r.pages == APRFS_PAGES_DROP);
	CHECK(pread(r.fd, buf, sizeof(buf), 0) == 2 && memcmp(buf, "{}", 2) == 0);
	aprfs_tree_close(t, &r);
	CHECK(r.fd == -1 && r.file == NULL);
	CHECK(aprfs_tree_open(t, "/config.json", &r, &err) == 0 && r.pages == APRFS_PAGES_KEEP,
	      "unchanged pass-through file: pages kept");
	aprfs_tree_close(t, &r);
	CHECK(aprfs_tree_open(t, "/sub", &r, &err) == -EISDIR);
	CHECK(aprfs_tree_open(t, "/nope.q8.apr", &r, &err) == -ENOENT);
	CHECK(aprfs_tree_open(t, "/fifo", &r, &err) == -ENOENT);
	CHECK(aprfs_tree_open(t, "/.aprfs/stats.json", &r, &err) == 0 &&
	      r.kind == APRFS_NODE_STATS && r.pages == APRFS_PAGES_BYPASS);
	aprfs_tree_close(t, &r);

	CHECK(aprfs_tree_open(t, "/sub/tiny.q8.apr", &r, &err) == 0 &&
	      r.kind == APRFS_NODE_APR && r.file && r.pages == APRFS_PAGES_DROP);
	CHECK(r.source_path && strcmp(r.source_path, "sub/tiny.safetensors") == 0);
	CHECK(aprfs_tree_open(t, "/sub/tiny.q8.apr", &r2, &err) == 0 && r2.file == r.file &&
		  r2.pages == APRFS_PAGES_KEEP,
	      "same snapshot: same file, kernel pages kept");
	aprfs_tree_close(t, &r);
	aprfs_tree_close(t, &r2);
	aprfs_tree_free(t);
}

/* Open an .apr through the tree and read it whole (cache NULL: computed now). */
static uint8_t *read_all(aprfs_file *f, size_t *len, ssize_t *rc)
{
	aprfs_err err = {0};
	uint8_t *buf;

	*len = aprfs_file_size(f);
	buf = malloc(*len);
	*rc = aprfs_file_read(f, NULL, NULL, 0, *len, buf, &err);
	return buf;
}

/* Replaced by rename: new opens see the new source; the old handle keeps the old
 * snapshot, and while it is open new handles bypass the kernel's pages. Modified in
 * place: the old handle gets EIO, never a mix. */
static void test_snapshots(void)
{
	aprfs_tree *t = new_tree(mask_of("q8", "f16"), 0);
	aprfs_tree_open_result a, b, c, d;
	aprfs_err err = {0};
	struct stat st1, st2;
	size_t la, la2, lb;
	ssize_t rc;
	uint8_t *old, *again, *fresh;
	int fd;

	put_model(at("snap.safetensors"), 64, 128, 1.0f);
	age(at("snap.safetensors"));
	CHECK(aprfs_tree_stat(t, "/snap.q8.apr", &st1, NULL) == 0);
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &a, &err) == 0 && a.pages == APRFS_PAGES_DROP);
	old = read_all(a.file, &la, &rc);
	CHECK(rc == (ssize_t)la, "read %zd", rc);

	put_model(at("snap.tmp"), 64, 256, 2.0f);
	CHECK(rename(at("snap.tmp"), at("snap.safetensors")) == 0);
	CHECK(aprfs_tree_stat(t, "/snap.q8.apr", &st2, NULL) == 0 && st2.st_size > st1.st_size,
	      "new size %lld > %lld", (long long)st2.st_size, (long long)st1.st_size);
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &b, &err) == 0 && b.file != a.file &&
		  b.pages == APRFS_PAGES_BYPASS,
	      "a new snapshot while the old one is open");
	fresh = read_all(b.file, &lb, &rc);
	CHECK(rc == (ssize_t)lb && (off_t)lb == st2.st_size);
	again = read_all(a.file, &la2, &rc);
	CHECK(rc == (ssize_t)la && memcmp(again, old, la) == 0, "old handle: old bytes");
	free(again);
	aprfs_tree_close(t, &a);
	aprfs_tree_close(t, &b);
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &b, &err) == 0 && b.pages == APRFS_PAGES_DROP,
	      "old handles gone: cache the new snapshot, dropping old pages");
	aprfs_tree_close(t, &b);
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &b, &err) == 0 && b.pages == APRFS_PAGES_KEEP);

	/* In place: same inode, new bytes and mtime. */
	age(at("snap.safetensors"));
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &c, &err) == 0 && c.file != b.file);
	fd = open(at("snap.safetensors"), O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, "\x7f\x7f\x7f\x7f", 4, lb / 2) == 4);
	close(fd);
	again = read_all(c.file, &la2, &rc);
	CHECK(rc == -EIO, "in-place change under an open handle: %zd", rc);
	free(again);
	aprfs_tree_close(t, &c);
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &c, &err) == 0 && c.file != b.file &&
		  c.pages == APRFS_PAGES_BYPASS,
	      "b is still open");
	again = read_all(c.file, &la2, &rc);
	CHECK(rc == (ssize_t)la2, "a new open reads the modified source");
	free(again);

	/* A touch alone makes a new snapshot too (the identity includes mtime). */
	age(at("snap.safetensors"));
	CHECK(aprfs_tree_open(t, "/snap.q8.apr", &d, &err) == 0 && d.file != c.file);
	aprfs_tree_close(t, &d);
	free(old);
	free(fresh);
	aprfs_tree_close(t, &b);
	aprfs_tree_close(t, &c);
	unlink(at("snap.safetensors"));
	aprfs_tree_free(t);
}

static int count_lines_with(FILE *f, const char *needle)
{
	char line[2048];
	int n = 0;

	fflush(f);
	rewind(f);
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	return n;
}

static void test_broken_and_hidden(void)
{
	aprfs_tree *t = new_tree(APRFS_VARIANT_MASK_ALL, 0);
	FILE *log = tmpfile();
	names l = {0};
	struct stat st;
	size_t ok, bad;

	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	CHECK(list(t, "/", &l) == 0);
	CHECK(list(t, "/", &l) == 0);
	CHECK(aprfs_tree_stat(t, "/broken.q8.apr", &st, NULL) == -ENOENT);
	CHECK(!has(&l, "broken.q8.apr") && has(&l, "broken.safetensors"),
	      "broken: no virtual file, the file itself passes through");
	CHECK(count_lines_with(log, "broken.safetensors") == 1, "reason logged once: %d",
	      count_lines_with(log, "broken.safetensors"));
	aprfs_tree_counts(t, &ok, &bad);
	CHECK(bad >= 1 && ok >= 1, "ok %zu bad %zu", ok, bad);

	CHECK(has(&l, "inside.safetensors") && has(&l, "inside.q8.apr"), "link inside: served");
	CHECK(!has(&l, "escape.safetensors") && !has(&l, "escape.q8.apr"), "link out: hidden");
	CHECK(aprfs_tree_stat(t, "/escape.safetensors", &st, NULL) == -ENOENT);
	CHECK(aprfs_tree_stat(t, "/escape.q8.apr", &st, NULL) == -ENOENT);
	CHECK(!has(&l, "outdir") && aprfs_tree_stat(t, "/outdir/x", &st, NULL) == -ENOENT);
	CHECK(!has(&l, "dangling") && aprfs_tree_stat(t, "/dangling", &st, NULL) == -ENOENT);
	CHECK(!has(&l, "fifo") && aprfs_tree_stat(t, "/fifo", &st, NULL) == -ENOENT);
	{
		int shadow = 0;

		for (int i = 0; i < l.n; i++)
			shadow += strcmp(l.v[i], "model.q8.apr") == 0;
		CHECK(shadow == 1, "a real model.q8.apr is hidden behind the virtual one");
	}
	aprfs_log_set_stream(NULL);
	fclose(log);
	names_free(&l);
	aprfs_tree_free(t);
}

/* A mountpoint inside the root is not part of the tree. */
static void test_hide(void)
{
	aprfs_tree_conf tc = {
	    .variants = mask_of("q8", NULL), .nf4_block = 64, .hide = at("sub")};
	aprfs_tree *t = NULL;
	aprfs_err err = {0};
	names l = {0};
	struct stat st;

	CHECK(aprfs_tree_new(root, &tc, &t, &err) == 0);
	CHECK(list(t, "/", &l) == 0 && !has(&l, "sub") && has(&l, "sharded"));
	CHECK(aprfs_tree_stat(t, "/sub", &st, NULL) == -ENOENT);
	CHECK(aprfs_tree_stat(t, "/sub/tiny.q8.apr", &st, NULL) == -ENOENT);
	CHECK(list(t, "/sub", &l) == -ENOENT);
	names_free(&l);
	aprfs_tree_free(t);
}

/* More checkpoints than max_sources: listings stay complete, few stay open. */
static void test_many(void)
{
	char path[64];
	aprfs_tree *t;
	names l = {0};
	struct timespec t0, t1, t2;
	size_t ok, bad;
	int all = 1;

	mkdir(at("many"), 0755);
	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "many/m%03d.safetensors", i);
		put_model(at(path), 16, 64, 1.0f);
	}
	t = new_tree(mask_of("q8", "q4"), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK(list(t, "/many", &l) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	CHECK(list(t, "/many", &l) == 0 && l.n == 300, "%d entries", l.n);
	clock_gettime(CLOCK_MONOTONIC, &t2);
	printf("listing 100 checkpoints: %.2f ms cold, %.2f ms warm\n",
	       (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6,
	       (t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) / 1e6);
	CHECK((t2.tv_sec - t1.tv_sec) * 1e3 + (t2.tv_nsec - t1.tv_nsec) / 1e6 < 500);
	aprfs_tree_free(t);

	t = new_tree(mask_of("q8", NULL), 8);
	CHECK(list(t, "/many", &l) == 0 && l.n == 200);
	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof(path), "m%03d.q8.apr", i);
		all &= has(&l, path);
	}
	CHECK(all, "every checkpoint listed despite the limit");
	aprfs_tree_counts(t, &ok, &bad);
	CHECK(ok <= 8 && bad == 0, "open %zu", ok);
	names_free(&l);
	aprfs_tree_free(t);
}

static void test_stats_json(void)
{
	aprfs_tree *t = new_tree(mask_of("q8", NULL), 0);
	aprfs_cache_stats cs = {0};
	aprfs_ra_stats rs = {.queued = 5, .warmed = 4};
	char *text;
	cJSON *j, *q8;

	cs.chunks_computed[aprfs_variant_index("q8")] = 7;
	cs.bytes_served[aprfs_variant_index("q4k")] = 1234567890123ull;
	cs.budget = 256u << 20;
	text = aprfs_tree_stats_json(t, &cs, &rs);
	j = cJSON_Parse(text);
	CHECK(j != NULL, "stats parse: %s", text);
	q8 = cJSON_GetObjectItem(cJSON_GetObjectItem(j, "variants"), "q8");
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(q8, "chunks_computed")) == 7);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(
		  cJSON_GetObjectItem(cJSON_GetObjectItem(j, "variants"), "q4k"),
		  "bytes_served")) == 1234567890123.0);
	CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(cJSON_GetObjectItem(j, "cache"),
						       "budget")) == 256.0 * 1048576);
	CHECK(cJSON_GetNumberValue(
		  cJSON_GetObjectItem(cJSON_GetObjectItem(j, "readahead"), "warmed")) == 4);
	cJSON_Delete(j);
	free(text);
	aprfs_tree_free(t);
}

static void setup(void)
{
	char cmd[600];

	if (!check_tmpdir(root, sizeof(root), "test-tree") ||
	    !check_tmpdir(outside, sizeof(outside), "test-tree-out"))
		exit(2);
	put_model(at("model.safetensors"), 64, 128, 1.0f);
	put_text(at("config.json"), "{}");
	put_text(at("README.md"), "hello\n");
	put_text(at("other.q8.apr"), "not ours\n");
	put_text(at("model.q8.apr"), "shadowed\n");
	put_text(at(".safetensors"), "no stem\n");
	put_text(at("broken.safetensors"), "\x10\0\0\0\0\0\0\0{not json at all");
	mkdir(at("dir.safetensors"), 0755);
	mkdir(at("sub"), 0755);
	put_model(at("sub/tiny.safetensors"), 16, 64, 0.5f);
	mkdir(at("sharded"), 0755);
	put_model(at("sharded/model-00001-of-00002.safetensors"), 8, 64, 1.0f);
	put_model(at("sharded/model-00002-of-00002.safetensors"), 8, 64, 1.0f);
	/* Shard 2 renames its tensors so the names are unique across shards. */
	{
		char header[256];
		size_t hl;
		uint8_t buf[8 + 256 + 8 * 64 * 4 + 64 * 4];

		snprintf(
		    header, sizeof(header),
		    "{\"b2\":{\"dtype\":\"F32\",\"shape\":[64],\"data_offsets\":[0,256]},"
		    "\"w2\":{\"dtype\":\"F32\",\"shape\":[8,64],\"data_offsets\":[256,%d]}}",
		    256 + 8 * 64 * 4);
		hl = strlen(header);
		memset(buf, 0, sizeof(buf));
		for (int i = 0; i < 8; i++)
			buf[i] = (uint8_t)((uint64_t)hl >> (8 * i));
		memcpy(buf + 8, header, hl);
		put_file(at("sharded/model-00002-of-00002.safetensors"), buf,
			 8 + hl + 256 + 8 * 64 * 4);
	}
	put_text(at("sharded/model.safetensors.index.json"),
		 "{\"metadata\":{},\"weight_map\":{\"b\":\"model-00001-of-00002.safetensors\","
		 "\"w\":\"model-00001-of-00002.safetensors\","
		 "\"b2\":\"model-00002-of-00002.safetensors\","
		 "\"w2\":\"model-00002-of-00002.safetensors\"}}");
	/* Links: one inside, one out of the root (a checkpoint!), a directory out of the
	 * root, a dangling one; and a FIFO. */
	snprintf(cmd, sizeof(cmd), "%s/model.safetensors", outside);
	put_model(cmd, 16, 64, 1.0f);
	mkdir(strcat(strcpy(cmd, outside), "/d"), 0755);
	if (symlink("model.safetensors", at("inside.safetensors")) ||
	    symlink(strcat(strcpy(cmd, outside), "/model.safetensors"),
		    at("escape.safetensors")) ||
	    symlink(strcat(strcpy(cmd, outside), "/d"), at("outdir")) ||
	    symlink("/nonexistent/x", at("dangling")) || mkfifo(at("fifo"), 0644))
		exit(2);
}

static void cleanup(void)
{
	char cmd[600];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s' '%s'", root, outside);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
}

int main(void)
{
	aprfs_log_setup(APRFS_LOG_ERROR, 0);
	setup();
	test_naming();
	test_sizes();
	test_open();
	test_snapshots();
	test_broken_and_hidden();
	test_hide();
	test_many();
	test_stats_json();
	cleanup();
	return check_done("tree");
}
