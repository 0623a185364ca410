/* test_diskcache.c - the disk tier: put/get, every key field, misfiled, corrupt, truncated and
 * extended entries, LZ4 storing incompressible blocks as is, LRU eviction across a reopen,
 * read-only and full disks, claims (dead, stale, live, cancelled), the write queue, processes
 * sharing a directory, the range API served from disk with no quantization, and prefetching
 * turned on by entries read from the disk. Needs root
 * (it mounts small tmpfs file systems for the read-only and full cases). */
#define _GNU_SOURCE /* preadv2 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/crc.h"
#include "base/half.h"
#include "base/log.h"
#include "cache/cache.h"
#include "cache/diskcache.h"
#include "cache/diskcache_impl.h"
#include "check.h"
#include "file/aprfile.h"
#include "quant/codec.h"
#include "testfs.h"

static char root[256];

/* ---- helpers ----------------------------------------------------------------------------- */

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint64_t next_u64(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return rng;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A fresh directory under root. */
static const char *new_dir(const char *name)
{
	static char buf[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", root, name);
	mkdir(buf[k], 0755);
	return buf[k];
}

static aprfs_diskcache *open_dc(const char *dir, uint64_t budget, aprfs_diskcache_opts *extra)
{
	aprfs_diskcache_opts o = {0};
	aprfs_diskcache *dc = NULL;
	aprfs_err err = {0};

	if (extra)
		o = *extra;
	o.dir = dir;
	o.budget = budget;
	int rc = aprfs_diskcache_open(&o, &dc, &err);
	CHECK(rc == 0 && dc, "open %s: %s", dir, err.msg);
	return dc;
}

static aprfs_dc_key key_n(uint64_t i)
{
	aprfs_dc_key k = {.kind = APRFS_DC_CHUNK,
			  .variant = 5,
			  .nf4_block = 64,
			  .chunk_elems = 65536,
			  .index = i};
	for (int b = 0; b < 16; b++)
		k.source[b] = (uint8_t)(0xA0 + b);
	return k;
}

static const char *entry_path(const char *dir, const aprfs_dc_key *k)
{
	char name[64];
	aprfs_diskcache_entry_name(k, name, sizeof(name));
	return test_path(dir, name);
}

static int exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* Deterministic content for key i: half compressible, half not. */
static void content(uint64_t i, uint8_t *p, size_t n)
{
	uint64_t s = i * 0x9E3779B97F4A7C15ull + 1;
	for (size_t j = 0; j < n; j++) {
		s ^= s << 13, s ^= s >> 7, s ^= s << 17;
		p[j] = j < n / 2 ? (uint8_t)(j / 64) : (uint8_t)s;
	}
}

/* path := good (n bytes) with byte at XORed with mask: one corrupted entry. */
static void put_flipped(const char *path, const uint8_t *good, size_t n, size_t at,
			uint8_t mask)
{
	uint8_t *bad = malloc(n);

	if (!bad)
		exit(2);
	memcpy(bad, good, n);
	bad[at] ^= mask;
	put_file(path, bad, n);
	free(bad);
}

static aprfs_diskcache_stats stats(aprfs_diskcache *dc)
{
	aprfs_diskcache_stats st;
	aprfs_diskcache_get_stats(dc, &st);
	return st;
}

static uint8_t *slurp(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf = NULL;
	long sz;

	*n = 0;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	sz = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc(sz > 0 ? (size_t)sz : 1);
	if (buf && fread(buf, 1, (size_t)sz, f) == (size_t)sz)
		*n = (size_t)sz;
	fclose(f);
	return buf;
}

/* Lines in the captured log mentioning s. */
static int log_lines(FILE *log, const char *s)
{
	char line[2048];
	int n = 0;

	fflush(log);
	rewind(log);
	while (fgets(line, sizeof(line), log))
		n += strstr(line, s) != NULL;
	return n;
}

static int mount_tmpfs(const char *dir, const char *opts)
{
	if (geteuid() != 0) {
		CHECK_SKIP("diskcache: a tmpfs of %s for %s needs root", opts, dir);
		return -1;
	}
	mkdir(dir, 0755);
	int rc = mount("tmpfs", dir, "tmpfs", 0, opts);
	CHECK(rc == 0, "mount tmpfs on %s (%s): %s (the test needs root)", dir, opts,
	      strerror(errno));
	return rc;
}

/* ---- put, get and keys --------------------------------------------------------------------
 */

static void test_roundtrip(void)
{
	const char *dir = new_dir("roundtrip");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key k = key_n(1), small = key_n(2);
	uint8_t data[100000], back[100000];
	float scale = 0.125f, sback = 0;
	uint32_t crc = 0;
	int claimed = -1;

	small.kind = APRFS_DC_STAT;
	content(1, data, sizeof(data));
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), &crc, NULL, &claimed) == 0);
	CHECK(claimed == 0, "alone with the directory, a miss claims nothing");
	aprfs_diskcache_put(dc, &k, data, sizeof(data), aprfs_crc32(0, data, sizeof(data)),
			    claimed);
	aprfs_diskcache_put(dc, &small, &scale, 4, aprfs_crc32(0, &scale, 4), 0);
	aprfs_diskcache_flush(dc);
	CHECK(exists(entry_path(dir, &k)), "entry written");
	CHECK(exists(test_path(dir, "CACHEDIR.TAG")), "cache directory tagged");
	char claim[600];
	snprintf(claim, sizeof(claim), "%.*s.claim", (int)(strlen(entry_path(dir, &k)) - 4),
		 entry_path(dir, &k));
	CHECK(!exists(claim), "claim released once published");
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), &crc, NULL, &claimed) == 1);
	CHECK(claimed == 0 && memcmp(back, data, sizeof(data)) == 0, "same bytes");
	CHECK(crc == aprfs_crc32(0, data, sizeof(data)), "the CRC comes back");
	CHECK(aprfs_diskcache_get_crc(dc, &k, sizeof(data), &crc) == 1 &&
	      crc == aprfs_crc32(0, data, sizeof(data)));
	CHECK(aprfs_diskcache_get(dc, &small, &sback, 4, NULL, NULL, NULL) == 1 &&
	      sback == scale);
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.hits == 3 && st.misses == 1 && st.entries_written == 2, "%llu %llu %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses,
	      (unsigned long long)st.entries_written);
	CHECK(st.chunk_hits[5] == 2 && st.chunk_misses[5] == 1 &&
	      st.content_bytes[5] == 100000);
	CHECK(st.bytes_on_disk >= st.bytes_written && st.corrupt == 0 && st.degraded == 0);
	aprfs_diskcache_close(dc);

	/* A later process (here: a reopen) finds them. */
	dc = open_dc(dir, 64 << 20, NULL);
	memset(back, 0, sizeof(back));
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 1 &&
	      memcmp(back, data, sizeof(data)) == 0);
	aprfs_diskcache_close(dc);
}

/* Every field of the key changes the name, and the codec format version leads the bytes. */
static void test_key_fields(void)
{
	const char *dir = new_dir("keys");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key base = key_n(7), v[8];
	uint8_t data[5000], back[5000], kb[DC_KEY];
	char a[64], b[64];

	content(7, data, sizeof(data));
	aprfs_diskcache_put(dc, &base, data, sizeof(data), 0, 0);
	aprfs_diskcache_flush(dc);
	for (int i = 0; i < 8; i++)
		v[i] = base;
	v[0].kind = APRFS_DC_STAT;
	v[1].variant = 6;
	v[2].nf4_block = 128;
	v[3].chunk_elems = 32768;
	v[4].index = 8;
	v[5].source[15] ^= 1;
	v[6].extra[0] = 1;
	v[7].source[0] ^= 0x80;
	aprfs_diskcache_entry_name(&base, a, sizeof(a));
	for (int i = 0; i < 8; i++) {
		aprfs_diskcache_entry_name(&v[i], b, sizeof(b));
		CHECK(strcmp(a, b) != 0, "field %d is in the name", i);
		CHECK(aprfs_diskcache_get(dc, &v[i], back, sizeof(back), NULL, NULL, NULL) == 0,
		      "field %d is in the key", i);
	}
	aprfs_diskcache_entry_name(&base, b, sizeof(b));
	CHECK(strcmp(a, b) == 0 && strlen(a) == 39 && a[2] == '/', "%s", a);
	dc_key_bytes(&base, kb);
	CHECK(kb[0] == (APRFS_CODEC_FORMAT_VERSION & 0xff) && kb[1] == 0,
	      "APRFS_CODEC_FORMAT_VERSION is part of every key");
	CHECK(stats(dc).corrupt == 0, "misses of other keys are not corruption");
	aprfs_diskcache_close(dc);
}

/* An entry under another key's name (a collision, or a file copied to the wrong name) is a
 * miss, never the wrong bytes, and it is deleted. */
static void test_misfiled(void)
{
	const char *dir = new_dir("misfiled");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key a = key_n(1), b = key_n(2);
	uint8_t data[4096], back[4096];

	content(1, data, sizeof(data));
	aprfs_diskcache_put(dc, &a, data, sizeof(data), 0, 0);
	aprfs_diskcache_flush(dc);
	char pb[600];
	snprintf(pb, sizeof(pb), "%s", entry_path(dir, &b));
	char sub[600];
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(pb, '/') - pb), pb);
	mkdir(sub, 0755);
	CHECK(rename(entry_path(dir, &a), pb) == 0);
	CHECK(aprfs_diskcache_get(dc, &b, back, sizeof(back), NULL, NULL, NULL) == 0);
	CHECK(stats(dc).corrupt == 1 && !exists(pb), "misfiled entry deleted");
	aprfs_diskcache_close(dc);
}

/* A FIFO, or a link, where an entry should be (a shared directory holds whatever others
 * put there): a prompt miss for every kind of lookup, never a reader blocked in open.
 * The alarm turns a hang into a failed run. */
static void test_not_a_file(void)
{
	const char *dir = new_dir("notafile");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key f = key_n(1), l = key_n(2);
	uint8_t back[4096];
	uint32_t crc;
	char pf[600], pl[600], sub[600];

	snprintf(pf, sizeof(pf), "%s", entry_path(dir, &f));
	snprintf(pl, sizeof(pl), "%s", entry_path(dir, &l));
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(pf, '/') - pf), pf);
	mkdir(sub, 0755);
	snprintf(sub, sizeof(sub), "%.*s", (int)(strrchr(pl, '/') - pl), pl);
	mkdir(sub, 0755);
	CHECK(mkfifo(pf, 0644) == 0 && symlink("/etc/passwd", pl) == 0);
	alarm(10);
	CHECK(aprfs_diskcache_get(dc, &f, back, sizeof(back), NULL, NULL, NULL) == 0);
	CHECK(aprfs_diskcache_get_crc(dc, &f, sizeof(back), &crc) == 0);
	aprfs_diskcache_prefetch(dc, &f);
	CHECK(aprfs_diskcache_get(dc, &l, back, sizeof(back), NULL, NULL, NULL) == 0);
	alarm(0);
	aprfs_diskcache_close(dc);
}

/* Flipped bytes anywhere, truncation and extension: each a miss, counted, logged once, and
 * the entry is gone (so it is recomputed and written again). */
static void test_corrupt(void)
{
	const char *dir = new_dir("corrupt");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key k = key_n(3);
	static uint8_t data[150000], back[150000]; /* 3 LZ4 blocks */
	FILE *log = tmpfile();

	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	content(3, data, sizeof(data));
	aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, 0);
	aprfs_diskcache_flush(dc);
	char path[600];
	snprintf(path, sizeof(path), "%s", entry_path(dir, &k));
	size_t n;
	uint8_t *good = slurp(path, &n);
	CHECK(good && n > DC_HEADER + 100, "entry of %zu bytes", n);
	if (!good)
		return;
	/* header fields, frame header, a compressed block, a stored block, the checksum */
	size_t flips[] = {
	    0,	   7,	    9,	   60,	 73, 81, 90, 125, 129, 133, DC_HEADER + 40,
	    n / 3, n - 200, n - 5, n - 1};
	int cases = 0;
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++, cases++) {
		put_flipped(path, good, n, flips[i], 0x10);
		CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 0,
		      "byte %zu flipped: a miss", flips[i]);
		CHECK(!exists(path), "byte %zu flipped: deleted", flips[i]);
	}
	size_t cuts[] = {0,	1,     64,   DC_HEADER - 1, DC_HEADER, DC_HEADER + 7,
			 n / 2, n - 4, n - 1};
	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++, cases++) {
		put_file(path, good, cuts[i]);
		CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 0,
		      "cut at %zu: a miss", cuts[i]);
		CHECK(aprfs_diskcache_get_crc(dc, &k, sizeof(back), NULL) == 0);
		CHECK(!exists(path), "cut at %zu: deleted", cuts[i]);
	}
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, good, n);
	longer[n] = 0;
	put_file(path, longer, n + 1);
	free(longer);
	cases++;
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 0 &&
		  !exists(path),
	      "extended: a miss");
	/* The plan's size differs from the entry's: a miss too. */
	put_file(path, good, n);
	cases++;
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back) - 1, NULL, NULL, NULL) == 0);
	CHECK(stats(dc).corrupt == (uint64_t)cases, "%llu corrupt of %d",
	      (unsigned long long)stats(dc).corrupt, cases);
	/* one line per bad entry file, not per lookup: the same name every time here */
	CHECK(log_lines(log, "disk cache") == 1, "%d log lines", log_lines(log, "disk cache"));
	/* and it heals: written again, served again */
	aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, 0);
	aprfs_diskcache_flush(dc);
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 1 &&
	      memcmp(back, data, sizeof(data)) == 0);
	aprfs_log_set_stream(NULL);
	fclose(log);
	free(good);

	/* An entry LZ4 stored as is (random bytes, 3 blocks) is read by preadv straight into
	 * place: the same checks must hold there. */
	aprfs_dc_key r = key_n(4);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(next_u64() >> 56);
	aprfs_diskcache_put(dc, &r, data, sizeof(data), 7, 0);
	aprfs_diskcache_flush(dc);
	snprintf(path, sizeof(path), "%s", entry_path(dir, &r));
	good = slurp(path, &n);
	CHECK(good && n == DC_HEADER + 15 + 3 * 4 + sizeof(data) + 8, "stored: %zu", n);
	uint32_t crc = 0;
	CHECK(aprfs_diskcache_get(dc, &r, back, sizeof(back), &crc, NULL, NULL) == 1 &&
	      memcmp(back, data, sizeof(data)) == 0 && crc == 7);
	uint64_t before = stats(dc).corrupt;
	/* header, frame header, first block word, block data, third block word, end mark,
	 * checksum */
	size_t at[] = {20,
		       DC_HEADER + 5,
		       DC_HEADER + 15,
		       DC_HEADER + 15 + 4 + 1000,
		       DC_HEADER + 15 + 2 * (4 + 65536),
		       n - 6,
		       n - 2};
	for (size_t i = 0; good && i < sizeof(at) / sizeof(at[0]); i++) {
		put_flipped(path, good, n, at[i], 0x01);
		CHECK(aprfs_diskcache_get(dc, &r, back, sizeof(back), NULL, NULL, NULL) == 0,
		      "stored entry, byte %zu flipped: a miss", at[i]);
	}
	CHECK(stats(dc).corrupt - before == sizeof(at) / sizeof(at[0]));
	free(good);
	aprfs_diskcache_close(dc);
}

/* What liblz4's frame encoder does with data it cannot shrink: the block is stored as is
 * (size word's high bit), so an entry of quantized bytes costs only the framing. */
static void test_lz4_stored_blocks(void)
{
	const char *dir = new_dir("lz4");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key r = key_n(1), z = key_n(2);
	static uint8_t rnd[200000], zeros[200000];
	size_t n;

	for (size_t i = 0; i < sizeof(rnd); i++)
		rnd[i] = (uint8_t)(next_u64() >> 56);
	aprfs_diskcache_put(dc, &r, rnd, sizeof(rnd), 0, 0);
	aprfs_diskcache_put(dc, &z, zeros, sizeof(zeros), 0, 0);
	aprfs_diskcache_flush(dc);
	uint8_t *f = slurp(entry_path(dir, &r), &n);
	/* frame: magic 4, FLG, BD, content size 8, HC = 15 bytes; 4 blocks of <= 64 KiB with
	 * a 4-byte size word each; end mark 4; content checksum 4 */
	size_t framing = 15 + 4 * 4 + 4 + 4;
	CHECK(f && n == DC_HEADER + sizeof(rnd) + framing, "random: %zu bytes for %zu", n,
	      sizeof(rnd));
	if (f && n > DC_HEADER + 19) {
		uint32_t w = f[DC_HEADER + 15] | (uint32_t)f[DC_HEADER + 16] << 8 |
			     (uint32_t)f[DC_HEADER + 17] << 16 |
			     (uint32_t)f[DC_HEADER + 18] << 24;
		CHECK((w >> 31) == 1 && (w & 0x7fffffff) == 65536, "stored block: %08x", w);
	}
	free(f);
	f = slurp(entry_path(dir, &z), &n);
	CHECK(f && n < 2000, "zeros: %zu bytes", n);
	printf(
	    "lz4 frame: 200000 random bytes -> %zu-byte entry (stored), 200000 zeros -> %zu\n",
	    DC_HEADER + sizeof(rnd) + framing, n);
	free(f);
	uint8_t *back = malloc(sizeof(rnd));
	CHECK(aprfs_diskcache_get(dc, &r, back, sizeof(rnd), NULL, NULL, NULL) == 1 &&
	      memcmp(back, rnd, sizeof(rnd)) == 0);
	free(back);
	aprfs_diskcache_close(dc);
}

/* ---- eviction ---------------------------------------------------------------------------- */

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	utimensat(AT_FDCWD, path, ts, 0);
}

/* Ten entries of 8 KiB (charged) fit; the oldest by mtime go first, and a hit after a
 * restart counts as a use (the mtime it refreshes is the record that survives restarts). */
static void test_eviction_across_reopen(void)
{
	const char *dir = new_dir("evict");
	uint64_t budget = 10 * 8192;
	aprfs_diskcache_opts o = {.touch_after_s = APRFS_DC_TOUCH_ALWAYS};
	aprfs_diskcache *dc = open_dc(dir, budget, &o);
	uint8_t data[5000], back[5000];
	aprfs_dc_key k[12];
	time_t now = time(NULL);

	for (int i = 0; i < 12; i++)
		k[i] = key_n(100 + (uint64_t)i);
	for (int i = 0; i < 8; i++) {
		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)(next_u64() >> 56);
		aprfs_diskcache_put(dc, &k[i], data, sizeof(data), 0, 0);
	}
	aprfs_diskcache_flush(dc);
	for (int i = 0; i < 8; i++)
		set_mtime(entry_path(dir, &k[i]), now - 1000 + i); /* k0 oldest */
	aprfs_diskcache_close(dc);

	dc = open_dc(dir, budget, &o);
	CHECK(aprfs_diskcache_get(dc, &k[0], back, sizeof(back), NULL, NULL, NULL) == 1,
	      "k0 read after the restart");
	for (int i = 8; i < 12; i++) {
		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)(next_u64() >> 56);
		aprfs_diskcache_put(dc, &k[i], data, sizeof(data), 0, 0);
	}
	aprfs_diskcache_flush(dc);
	CHECK(exists(entry_path(dir, &k[0])), "k0 was used: kept");
	CHECK(!exists(entry_path(dir, &k[1])) && !exists(entry_path(dir, &k[2])),
	      "the two least recently used evicted");
	for (int i = 3; i < 12; i++)
		CHECK(exists(entry_path(dir, &k[i])), "k%d kept", i);
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.evictions == 2 && st.bytes_on_disk <= budget, "%llu evictions, %llu bytes",
	      (unsigned long long)st.evictions, (unsigned long long)st.bytes_on_disk);
	aprfs_diskcache_close(dc);

	/* the directory's real size agrees with the accounting */
	dc = open_dc(dir, budget, &o);
	aprfs_diskcache_flush(dc);
	usleep(100000); /* the first scan runs on the writer thread */
	CHECK(stats(dc).bytes_on_disk == 10 * 8192, "%llu",
	      (unsigned long long)stats(dc).bytes_on_disk);
	aprfs_diskcache_close(dc);
}

/* ---- full and read-only disks ------------------------------------------------------------ */

static void test_readonly(void)
{
	const char *dir = new_dir("ro");
	aprfs_dc_key k = key_n(1), k2 = key_n(2);
	uint8_t data[9000], back[9000];
	FILE *log = tmpfile();
	int claimed = -1;

	if (mount_tmpfs(dir, "size=4m") != 0)
		return;
	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	content(1, data, sizeof(data));
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, 0);
	aprfs_diskcache_close(dc);
	CHECK(mount("tmpfs", dir, "tmpfs", MS_REMOUNT | MS_RDONLY, "size=4m") == 0, "%s",
	      strerror(errno));

	dc = open_dc(dir, 64 << 20, NULL);
	CHECK(dc != NULL, "a read-only directory opens");
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, &claimed) == 1 &&
		  memcmp(back, data, sizeof(data)) == 0,
	      "and serves what it holds");
	for (int i = 0; i < 5; i++) {
		CHECK(aprfs_diskcache_get(dc, &k2, back, sizeof(back), NULL, NULL, &claimed) ==
		      0);
		aprfs_diskcache_put(dc, &k2, data, sizeof(data), 0, claimed);
		aprfs_diskcache_flush(dc);
	}
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.degraded == 1 && st.degraded_errno == EROFS && st.writes_dropped == 5 &&
		  st.write_errors == 1,
	      "degraded %llu errno %llu dropped %llu errors %llu",
	      (unsigned long long)st.degraded, (unsigned long long)st.degraded_errno,
	      (unsigned long long)st.writes_dropped, (unsigned long long)st.write_errors);
	CHECK(log_lines(log, "serving from memory") == 1, "one log line, got %d",
	      log_lines(log, "serving from memory"));
	aprfs_diskcache_close(dc);
	aprfs_log_set_stream(NULL);
	fclose(log);
	umount2(dir, MNT_DETACH);
}

/* EACCES: a directory this (unprivileged) process may not write. In a child, as nobody. */
static void test_no_permission(void)
{
	const char *dir = new_dir("eacces");
	pid_t pid;
	int status = -1;

	if (geteuid() != 0) {
		CHECK_SKIP("diskcache: EACCES is tested as nobody, which needs root to become");
		return;
	}
	chmod(root, 0755);
	chmod(dir, 0755); /* root's: nobody may read, not write */
	fflush(NULL);
	if ((pid = fork()) == 0) {
		aprfs_dc_key k = key_n(1);
		uint8_t data[1000] = {1};
		aprfs_diskcache *dc = NULL;
		aprfs_diskcache_opts o = {.dir = dir, .budget = 1 << 20};
		aprfs_err err;
		if (setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		if (aprfs_diskcache_open(&o, &dc, &err) != 0)
			_exit(11);
		aprfs_log_set_stream(fopen("/dev/null", "w"));
		aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, 0);
		aprfs_diskcache_flush(dc);
		aprfs_diskcache_stats st = stats(dc);
		aprfs_diskcache_close(dc);
		_exit(st.degraded == 1 && st.degraded_errno == EACCES ? 0 : 12);
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
}

static void test_full_disk(void)
{
	const char *dir = new_dir("full");
	static uint8_t data[16384], back[16384];
	FILE *log = tmpfile();
	int ok = 0;

	if (mount_tmpfs(dir, "size=96k") != 0)
		return;
	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	/* another host uses the directory: lookups claim, and a failed write must release */
	mkdir(test_path(dir, "daemons"), 0755);
	put_text(test_path(dir, "daemons/elsewhere.1"), "");
	aprfs_diskcache *dc = open_dc(dir, 100 << 20, NULL);
	int claims = 0;
	for (int i = 0; i < 20; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		int claimed = 0;
		for (size_t j = 0; j < sizeof(data); j++)
			data[j] = (uint8_t)(next_u64() >> 56);
		aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, &claimed);
		claims += claimed;
		aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, claimed);
		aprfs_diskcache_flush(dc);
	}
	char cmd[700];
	snprintf(cmd, sizeof(cmd), "test -z \"$(find '%s' -name '*.claim' -o -name '.tmp.*')\"",
		 dir);
	CHECK(claims > 0 && system(cmd) == 0, "%d claims made, none left behind", claims);
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.degraded == 1 && st.degraded_errno == ENOSPC, "degraded %llu errno %llu",
	      (unsigned long long)st.degraded, (unsigned long long)st.degraded_errno);
	CHECK(st.entries_written > 0 && st.entries_written < 20 &&
		  st.entries_written + st.writes_dropped == 20,
	      "%llu written, %llu dropped", (unsigned long long)st.entries_written,
	      (unsigned long long)st.writes_dropped);
	CHECK(log_lines(log, "No space left") == 1, "one log line, got %d",
	      log_lines(log, "No space left"));
	for (int i = 0; i < 20; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		ok += aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL);
	}
	CHECK((uint64_t)ok == st.entries_written, "what was written is served: %d", ok);
	CHECK(stats(dc).corrupt == 0, "no torn entry left behind by ENOSPC");
	aprfs_diskcache_close(dc);
	aprfs_log_set_stream(NULL);
	fclose(log);
	umount2(dir, MNT_DETACH);
}

/* ---- claims --------------------------------------------------------------------------------
 */

static void write_claim(const char *dir, const aprfs_dc_key *k, const char *text, time_t mtime)
{
	char p[600];
	const char *e = entry_path(dir, k);
	snprintf(p, sizeof(p), "%.*s", (int)(strrchr(e, '/') - e), e);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%.*s.claim", (int)(strlen(e) - 4), e);
	put_text(p, text);
	if (mtime)
		set_mtime(p, mtime);
}

static int cancel_after(void *arg)
{
	return now_s() > *(double *)arg;
}

static void test_claims(void)
{
	const char *dir = new_dir("claims");
	aprfs_diskcache_opts o = {.claim_stale_ms = 400};
	uint8_t back[100];
	char host[64], text[128];
	int claimed;
	double t;

	gethostname(host, sizeof(host));
	for (char *p = host; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '.' || *p > '~')
			*p = '_';
	pid_t dead = fork();
	if (dead == 0)
		_exit(0);
	waitpid(dead, NULL, 0);
	/* claims are made while another process uses the directory: another host's (fresh),
	 * not a process of this host that is gone (its presence file is removed) */
	mkdir(test_path(dir, "daemons"), 0755);
	put_text(test_path(dir, "daemons/elsewhere.1"), "");
	snprintf(text, sizeof(text), "daemons/%s.%ld", host, (long)dead);
	put_text(test_path(dir, text), "");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, &o);
	CHECK(stats(dc).peers == 1, "%llu peers", (unsigned long long)stats(dc).peers);
	CHECK(!exists(test_path(dir, text)), "a dead process's presence removed");
	snprintf(text, sizeof(text), "daemons/%s.%ld", host, (long)getpid());
	CHECK(exists(test_path(dir, text)), "ours announced");
	/* another host's presence counts while fresh; an old one (its host crashed) does not,
	 * and a very old one is removed */
	{
		const char *quiet = new_dir("claims-peers");
		aprfs_diskcache_opts q = {0};
		mkdir(test_path(quiet, "daemons"), 0755);
		put_text(test_path(quiet, "daemons/stale.7"), "");
		set_mtime(test_path(quiet, "daemons/stale.7"), time(NULL) - 60);
		put_text(test_path(quiet, "daemons/gone.8"), "");
		set_mtime(test_path(quiet, "daemons/gone.8"), time(NULL) - 3600);
		aprfs_diskcache *alone = open_dc(quiet, 1 << 20, &q);
		CHECK(stats(alone).peers == 0, "%llu peers",
		      (unsigned long long)stats(alone).peers);
		CHECK(exists(test_path(quiet, "daemons/stale.7")) &&
		      !exists(test_path(quiet, "daemons/gone.8")));
		aprfs_dc_key z = key_n(99);
		int cl = -1;
		CHECK(aprfs_diskcache_get(alone, &z, back, sizeof(back), NULL, NULL, &cl) ==
			      0 &&
			  cl == 0,
		      "no live peer: no claim");
		aprfs_diskcache_close(alone);
	}
	/* a claim of a process of this host that is gone: taken over at once */
	aprfs_dc_key k1 = key_n(1), k2 = key_n(2), k3 = key_n(3), k4 = key_n(4);
	snprintf(text, sizeof(text), "%s %ld\n", host, (long)dead);
	write_claim(dir, &k1, text, 0);
	t = now_s();
	CHECK(aprfs_diskcache_get(dc, &k1, back, sizeof(back), NULL, NULL, &claimed) == 0 &&
	      claimed == 1);
	CHECK(now_s() - t < 0.1, "dead owner: no wait (%.3f s)", now_s() - t);
	aprfs_diskcache_drop(dc, &k1, claimed);

	/* another host's live claim: waited for until it is stale, then taken over */
	write_claim(dir, &k2, "elsewhere 1\n", 0);
	t = now_s();
	CHECK(aprfs_diskcache_get(dc, &k2, back, sizeof(back), NULL, NULL, &claimed) == 0 &&
	      claimed == 1);
	CHECK(now_s() - t > 0.3 && now_s() - t < 2.0, "live claim waited %.3f s", now_s() - t);
	CHECK(stats(dc).claim_waits == 1);
	aprfs_diskcache_drop(dc, &k2, claimed);

	/* an old claim (its host crashed): taken over at once */
	write_claim(dir, &k3, "elsewhere 1\n", time(NULL) - 3600);
	t = now_s();
	CHECK(aprfs_diskcache_get(dc, &k3, back, sizeof(back), NULL, NULL, &claimed) == 0 &&
	      claimed == 1 && now_s() - t < 0.1);
	/* ours: released by put once published; another reader now hits */
	aprfs_diskcache_put(dc, &k3, back, sizeof(back), 0, claimed);
	aprfs_diskcache_flush(dc);
	CHECK(aprfs_diskcache_get(dc, &k3, back, sizeof(back), NULL, NULL, &claimed) == 1);
	aprfs_diskcache_close(dc);

	CHECK(!exists(test_path(dir, text)), "presence removed on close");
	/* a wait ends when the reader is cancelled */
	o.claim_stale_ms = 10000;
	dc = open_dc(dir, 64 << 20, &o);
	write_claim(dir, &k4, "elsewhere 1\n", 0);
	double until = now_s() + 0.1;
	aprfs_cancel c = {cancel_after, &until};
	t = now_s();
	CHECK(aprfs_diskcache_get(dc, &k4, back, sizeof(back), NULL, &c, &claimed) == 0 &&
	      claimed == 0);
	CHECK(now_s() - t < 0.5, "cancelled after %.3f s", now_s() - t);
	/* without claims (the footer) there is no wait at all */
	t = now_s();
	CHECK(aprfs_diskcache_get(dc, &k4, back, sizeof(back), NULL, NULL, NULL) == 0 &&
	      now_s() - t < 0.05);
	aprfs_diskcache_close(dc);
}

/* Several processes on one directory, all wanting the same 64 entries at once (in different
 * orders): each entry computed about once, every process gets the right bytes, nothing
 * corrupt is left. */
#define SHARED_KEYS  64
#define SHARED_PROCS 4

static size_t shared_len(uint64_t i)
{
	return 20000 + (size_t)i * 13;
}

static void shared_child(const char *dir, int id, int fd, int ready, int go)
{
	aprfs_diskcache *dc = NULL;
	aprfs_diskcache_opts o = {.dir = dir, .budget = 64 << 20};
	static uint8_t want[30000], got[30000];
	aprfs_err err;
	int computed = 0, wrong = 0;

	if (aprfs_diskcache_open(&o, &dc, &err) != 0)
		_exit(3);
	/* start once everyone knows everyone (each process counts the others every second) */
	for (int i = 0; i < 300 && stats(dc).peers < SHARED_PROCS - 1; i++)
		usleep(10000);
	char b = 0;
	if (stats(dc).peers != SHARED_PROCS - 1 || write(ready, &b, 1) != 1 ||
	    read(go, &b, 1) != 1)
		_exit(6);
	for (int n = 0; n < SHARED_KEYS; n++) {
		uint64_t i = (uint64_t)((n + id * SHARED_KEYS / SHARED_PROCS) % SHARED_KEYS);
		aprfs_dc_key k = key_n(i);
		size_t len = shared_len(i);
		int claimed;
		content(i, want, len);
		if (aprfs_diskcache_get(dc, &k, got, len, NULL, NULL, &claimed)) {
			wrong += memcmp(got, want, len) != 0;
			continue;
		}
		computed++;
		struct timespec ts = {0, 3000000}; /* "quantizing" */
		nanosleep(&ts, NULL);
		aprfs_diskcache_put(dc, &k, want, len, aprfs_crc32(0, want, len), claimed);
	}
	aprfs_diskcache_close(dc);
	if (write(fd, &computed, sizeof(computed)) != sizeof(computed))
		_exit(4);
	_exit(wrong ? 5 : 0);
}

static void test_processes_share(void)
{
	const char *dir = new_dir("shared");
	pid_t pids[SHARED_PROCS];
	int p[2], ready[2], go[2], total = 0;
	char b[SHARED_PROCS] = {0};

	CHECK(pipe(p) == 0 && pipe(ready) == 0 && pipe(go) == 0);
	fflush(NULL);
	for (int c = 0; c < SHARED_PROCS; c++)
		if ((pids[c] = fork()) == 0)
			shared_child(dir, c, p[1], ready[1], go[0]);
	close(p[1]);
	/* all start together, once each knows the others */
	for (int c = 0; c < SHARED_PROCS; c++)
		CHECK(read(ready[0], b, 1) == 1, "process %d ready", c);
	CHECK(write(go[1], b, SHARED_PROCS) == SHARED_PROCS);
	for (int c = 0; c < SHARED_PROCS; c++) {
		int st = -1, n = 0;
		waitpid(pids[c], &st, 0);
		CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0, "process %d: status %d", c, st);
		if (read(p[0], &n, sizeof(n)) == sizeof(n))
			total += n;
	}
	close(p[0]);
	printf("%d processes, %d shared entries: %d computations\n", SHARED_PROCS, SHARED_KEYS,
	       total);
	CHECK(total >= SHARED_KEYS && total <= SHARED_KEYS + SHARED_KEYS / 8,
	      "each entry computed about once: %d computations of %d", total, SHARED_KEYS);
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	static uint8_t want[30000], got[30000];
	int good = 0;
	for (uint64_t i = 0; i < SHARED_KEYS; i++) {
		aprfs_dc_key k = key_n(i);
		content(i, want, shared_len(i));
		good +=
		    aprfs_diskcache_get(dc, &k, got, shared_len(i), NULL, NULL, NULL) == 1 &&
		    memcmp(got, want, shared_len(i)) == 0;
	}
	CHECK(good == SHARED_KEYS && stats(dc).corrupt == 0, "%d good entries", good);
	aprfs_diskcache_close(dc);
}

/* ---- the write queue ----------------------------------------------------------------------
 */

static void test_queue(void)
{
	static uint8_t data[32768];
	for (int wait = 0; wait <= 1; wait++) {
		const char *dir = new_dir(wait ? "queue-wait" : "queue-drop");
		aprfs_diskcache_opts o = {.queue_bytes = 65536, .wait_when_full = wait};
		aprfs_diskcache *dc = open_dc(dir, 256 << 20, &o);
		for (int i = 0; i < 200; i++) {
			aprfs_dc_key k = key_n((uint64_t)i);
			content((uint64_t)i, data, sizeof(data));
			aprfs_diskcache_put(dc, &k, data, sizeof(data), 0, 0);
		}
		aprfs_diskcache_flush(dc);
		aprfs_diskcache_stats st = stats(dc);
		CHECK(st.entries_written + st.writes_dropped == 200 && st.queued_bytes == 0);
		if (wait)
			CHECK(st.entries_written == 200, "waiting: all written");
		else
			CHECK(st.writes_dropped > 0, "dropping: %llu dropped",
			      (unsigned long long)st.writes_dropped);
		aprfs_diskcache_close(dc);
	}
}

/* ---- through the range API ----------------------------------------------------------------
 */

/* A bf16 checkpoint: a 256x1024 matrix, a norm, a 96x300 matrix (k-quant fallback to q8). */
static void write_model(const char *path, float seed)
{
	const char *h = "{\"w\":{\"dtype\":\"BF16\",\"shape\":[256,1024],\"data_offsets\":[0,"
			"524288]},\"n\":{\"dtype\":\"F32\",\"shape\":[1024],\"data_offsets\":["
			"524288,528384]},\"o\":{\"dtype\":\"BF16\",\"shape\":[96,300],"
			"\"data_offsets\":[528384,585984]}}";
	FILE *f = fopen(path, "wb");
	uint64_t len = strlen(h);
	fwrite(&len, 8, 1, f);
	fwrite(h, 1, len, f);
	for (int i = 0; i < 256 * 1024; i++) {
		uint16_t b =
		    aprfs_f32_to_bf16(((float)(next_u64() >> 40) / 16777216.0f - 0.5f) * seed);
		fwrite(&b, 2, 1, f);
	}
	for (int i = 0; i < 1024; i++) {
		float x = 1.0f + (float)i / 1024.0f;
		fwrite(&x, 4, 1, f);
	}
	for (int i = 0; i < 96 * 300; i++) {
		uint16_t b = aprfs_f32_to_bf16((float)((int)(next_u64() >> 60) - 8) * seed);
		fwrite(&b, 2, 1, f);
	}
	fclose(f);
}

static uint8_t *read_file(aprfs_file *f, aprfs_cache *c)
{
	uint64_t size = aprfs_file_size(f);
	uint8_t *buf = malloc(size);
	aprfs_err err;
	for (uint64_t pos = 0; buf && pos < size;) {
		ssize_t n = aprfs_file_read(f, c, NULL, pos, 100000, buf + pos, &err);
		if (n <= 0) {
			free(buf);
			return NULL;
		}
		pos += (uint64_t)n;
	}
	return buf;
}

static aprfs_file *open_file(aprfs_source *s, const char *v, const char *rel)
{
	aprfs_opts o;
	aprfs_file *f = NULL;
	aprfs_err err;
	aprfs_opts_default(&o);
	o.chunk_elems = 16384;
	o.source_rel = rel;
	CHECK(aprfs_file_open(s, v, &o, &f, &err) == 0, "%s", err.msg);
	return f;
}

static uint64_t computed(aprfs_cache *c)
{
	aprfs_cache_stats st;
	uint64_t n = 0;
	aprfs_cache_get_stats(c, &st);
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++)
		n += st.chunks_computed[v];
	return n;
}

/* Read every variant with a disk tier; "restart" (new cache, new disk cache, new source
 * handle) and read again: the same bytes, nothing computed. Then the footer alone; then a
 * changed source, which must never be served the old entries. */
static void test_range_api(void)
{
	const char *dir = new_dir("api"), *src = test_path(root, "model.safetensors");
	aprfs_source *s = NULL;
	aprfs_err err;
	uint8_t *ref[APRFS_VARIANT_COUNT] = {0};

	write_model(src, 0.1f);
	CHECK(aprfs_source_open(src, NULL, &s, &err) == 0, "%s", err.msg);
	for (int pass = 0; pass < 2 && s; pass++) {
		aprfs_cache *c = aprfs_cache_new(1 << 20); /* smaller than some views */
		aprfs_diskcache *dc = open_dc(dir, 256 << 20, NULL);
		aprfs_cache_set_disk(c, dc);
		for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
			aprfs_file *f = open_file(s, aprfs_variant_names[v], NULL);
			uint8_t *got = read_file(f, c);
			if (pass == 0)
				ref[v] = read_file(f, NULL);
			CHECK(got && ref[v] && memcmp(got, ref[v], aprfs_file_size(f)) == 0,
			      "%s pass %d: same bytes", aprfs_variant_names[v], pass);
			free(got);
			aprfs_file_unref(f);
		}
		aprfs_diskcache_flush(dc);
		aprfs_diskcache_stats st = stats(dc);
		if (pass == 0)
			/* (the hits: q8 scales the k-quant and nf4 fallbacks share) */
			CHECK(st.entries_written > 0 && st.entries_written <= st.misses,
			      "first pass fills: %llu misses %llu written",
			      (unsigned long long)st.misses,
			      (unsigned long long)st.entries_written);
		else
			CHECK(st.misses == 0 && st.hits > 0 && computed(c) == 0,
			      "second pass: %llu misses, %llu computed",
			      (unsigned long long)st.misses, (unsigned long long)computed(c));
		aprfs_cache_set_disk(c, NULL);
		aprfs_diskcache_close(dc);
		aprfs_cache_free(c);
		aprfs_source_unref(s);
		s = NULL;
		CHECK(aprfs_source_open(src, NULL, &s, &err) == 0, "%s", err.msg);
	}

	/* The footer alone, cold: from its entry. With other metadata (another path under the
	 * root) its entry is not found, and the pass takes the CRCs from the chunk entries. */
	int q4k = aprfs_variant_index("q4k");
	for (int other = 0; other < 2 && s; other++) {
		aprfs_cache *c = aprfs_cache_new(1 << 20);
		aprfs_diskcache *dc = open_dc(dir, 256 << 20, NULL);
		aprfs_cache_set_disk(c, dc);
		aprfs_file *f =
		    open_file(s, "q4k", other ? "elsewhere/model.safetensors" : NULL);
		aprfs_file *plain =
		    open_file(s, "q4k", other ? "elsewhere/model.safetensors" : NULL);
		uint64_t size = aprfs_file_size(f);
		uint8_t foot[4], want[4];
		CHECK(aprfs_file_read(f, c, NULL, size - 4, 4, foot, &err) == 4, "%s", err.msg);
		CHECK(aprfs_file_read(plain, NULL, NULL, size - 4, 4, want, &err) == 4);
		CHECK(memcmp(foot, want, 4) == 0, "footer %d", other);
		if (!other)
			CHECK(memcmp(foot, ref[q4k] + size - 4, 4) == 0);
		aprfs_diskcache_stats st = stats(dc);
		CHECK(st.misses == (uint64_t)other && computed(c) == 0,
		      "footer %d: %llu misses, %llu hits", other, (unsigned long long)st.misses,
		      (unsigned long long)st.hits);
		aprfs_file_unref(f);
		aprfs_file_unref(plain);
		aprfs_cache_set_disk(c, NULL);
		aprfs_diskcache_close(dc);
		aprfs_cache_free(c);
	}
	if (s)
		aprfs_source_unref(s);

	/* The source rewritten with other values (same shapes, same size): new bytes, never
	 * the old entries. */
	sleep(1); /* a different mtime even on coarse clocks */
	write_model(src, 0.3f);
	CHECK(aprfs_source_open(src, NULL, &s, &err) == 0, "%s", err.msg);
	if (s) {
		aprfs_cache *c = aprfs_cache_new(1 << 20);
		aprfs_diskcache *dc = open_dc(dir, 256 << 20, NULL);
		aprfs_cache_set_disk(c, dc);
		aprfs_file *f = open_file(s, "q8", NULL);
		uint8_t *got = read_file(f, c), *want = read_file(f, NULL);
		int q8 = aprfs_variant_index("q8");
		CHECK(got && want && memcmp(got, want, aprfs_file_size(f)) == 0,
		      "changed source: its own bytes");
		CHECK(got && memcmp(got, ref[q8], aprfs_file_size(f)) != 0, "not the old ones");
		CHECK(stats(dc).hits == 0, "no old entry found: %llu hits",
		      (unsigned long long)stats(dc).hits);
		free(got);
		free(want);
		aprfs_file_unref(f);
		aprfs_cache_set_disk(c, NULL);
		aprfs_diskcache_close(dc);
		aprfs_cache_free(c);
		aprfs_source_unref(s);
	}
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++)
		free(ref[v]);
}

/* Prefetching never changes what a lookup returns: a prefetch of a present or an absent
 * entry, prefetching on or off, and the entry's bytes stay the same. Whether prefetching
 * turns on depends on what the kernel's page cache happened to keep, so that is not asserted
 * here (a test must not depend on the host's memory pressure). */
static void test_prefetch(void)
{
	char dir[600];
	static uint8_t data[40000], back[40000];
	aprfs_dc_key k = key_n(1), absent = key_n(2);
	uint64_t x = 7;

	snprintf(dir, sizeof(dir), "%s/prefetch", root);
	for (size_t i = 0; i < sizeof(data); i++) /* incompressible: stored blocks */
		x ^= x << 13, x ^= x >> 7, x ^= x << 17, data[i] = (uint8_t)x;
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_diskcache_put(dc, &k, data, sizeof(data), aprfs_crc32(0, data, sizeof(data)), 0);
	aprfs_diskcache_flush(dc);
	CHECK(!aprfs_diskcache_prefetching(dc), "off at first");
	aprfs_diskcache_prefetch(dc, &absent);
	aprfs_diskcache_prefetch(dc, &k);
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 1 &&
	      memcmp(back, data, sizeof(data)) == 0);
	CHECK(aprfs_diskcache_get(dc, &absent, back, sizeof(back), NULL, NULL, NULL) == 0);
	aprfs_diskcache_close(dc);
}

int main(void)
{
	if (!check_tmpdir(root, sizeof(root), "test-diskcache")) {
		perror("mkdtemp");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	test_roundtrip();
	test_key_fields();
	test_misfiled();
	test_not_a_file();
	test_corrupt();
	test_lz4_stored_blocks();
	test_eviction_across_reopen();
	test_readonly();
	test_no_permission();
	test_full_disk();
	test_claims();
	test_processes_share();
	test_queue();
	test_range_api();
	test_prefetch();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return check_done("diskcache");
}
