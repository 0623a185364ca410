/* test_diskcache.c - the disk tier: put/get through packs, every key field, LZ4 only where it
 * saves, corrupt, truncated and foreign pack files, recovery of a dead writer's unsealed
 * pack, eviction of whole packs least recently used first across a reopen, read-only and
 * full disks, range claims between processes (taken, adopted, dead), and the range API
 * served from disk with no quantization. Needs root for the tmpfs cases. */
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
#include "cache/diskcache_record.h"
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

static aprfs_diskcache_stats stats(aprfs_diskcache *dc)
{
	aprfs_diskcache_stats st;
	aprfs_diskcache_get_stats(dc, &st);
	return st;
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

/* The packs (sealed: ".pack", or ".tmp") in dir/packs: how many; the first's path in path. */
static int packs(const char *dir, const char *suffix, char *path, size_t size)
{
	char cmd[700];
	int n = 0;

	snprintf(cmd, sizeof(cmd), "ls '%s/packs' 2>/dev/null | grep '%s$' | sort", dir,
		 suffix);
	FILE *p = popen(cmd, "r");
	char line[512];
	while (p && fgets(line, sizeof(line), p)) {
		line[strcspn(line, "\n")] = 0;
		if (n++ == 0 && path)
			snprintf(path, size, "%s/packs/%s", dir, line);
	}
	if (p)
		pclose(p);
	return n;
}

static void random_bytes(uint8_t *p, size_t n)
{
	for (size_t j = 0; j < n; j++)
		p[j] = (uint8_t)(next_u64() >> 56);
}

static void flip(const char *path, off_t at)
{
	int fd = open(path, O_RDWR);
	uint8_t b = 0;

	CHECK(fd >= 0 && pread(fd, &b, 1, at) == 1, "%s", path);
	b ^= 0x5A;
	CHECK(pwrite(fd, &b, 1, at) == 1);
	close(fd);
}

/* Poll (up to 10 s: hang protection only) until cond(dc) holds. */
static int eventually(aprfs_diskcache *dc, int (*cond)(aprfs_diskcache *))
{
	for (int i = 0; i < 1000; i++) {
		if (cond(dc))
			return 1;
		usleep(10000);
	}
	return 0;
}

/* ---- put, get and keys --------------------------------------------------------------------
 */

static void test_roundtrip(void)
{
	const char *dir = new_dir("roundtrip");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key k = key_n(1), small = key_n(2), rnd = key_n(3);
	static uint8_t data[100000], back[100000], noise[50000];
	float scale = 0.125f, sback = 0;
	uint32_t crc = 0;
	int claimed = -1;

	small.kind = APRFS_DC_STAT;
	content(1, data, sizeof(data));
	random_bytes(noise, sizeof(noise));
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), &crc, NULL, &claimed) == 0);
	CHECK(claimed == 0, "alone with the directory, a miss claims nothing");
	aprfs_diskcache_put(dc, &k, data, sizeof(data), aprfs_crc32(0, data, sizeof(data)),
			    claimed);
	aprfs_diskcache_put(dc, &small, &scale, 4, aprfs_crc32(0, &scale, 4), 0);
	aprfs_diskcache_put(dc, &rnd, noise, sizeof(noise),
			    aprfs_crc32(0, noise, sizeof(noise)), 0);
	aprfs_diskcache_flush(dc);
	CHECK(packs(dir, ".pack", NULL, 0) == 1 && packs(dir, ".tmp", NULL, 0) == 0,
	      "one sealed pack after a flush");
	CHECK(exists(test_path(dir, "CACHEDIR.TAG")), "cache directory tagged");
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), &crc, NULL, &claimed) == 1);
	CHECK(claimed == 0 && memcmp(back, data, sizeof(data)) == 0, "same bytes");
	CHECK(crc == aprfs_crc32(0, data, sizeof(data)), "the CRC comes back");
	CHECK(aprfs_diskcache_get_crc(dc, &k, sizeof(data), &crc) == 1 &&
	      crc == aprfs_crc32(0, data, sizeof(data)));
	CHECK(aprfs_diskcache_get_crc(dc, &k, sizeof(data) - 1, &crc) == 0, "size is checked");
	CHECK(aprfs_diskcache_get(dc, &small, &sback, 4, NULL, NULL, NULL) == 1 &&
	      sback == scale);
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.hits == 3 && st.misses == 1 && st.entries_written == 3, "%llu %llu %llu",
	      (unsigned long long)st.hits, (unsigned long long)st.misses,
	      (unsigned long long)st.entries_written);
	/* half of data compresses: LZ4; noise does not: stored as is (header + bytes) */
	CHECK(st.chunk_hits[5] == 2 && st.chunk_misses[5] == 1 &&
	      st.content_bytes[5] == sizeof(data) + sizeof(noise));
	CHECK(st.stored_bytes[5] < st.content_bytes[5] / 10 * 9 + 256 &&
		  st.stored_bytes[5] > sizeof(noise) + DC_REC,
	      "stored %llu for %llu", (unsigned long long)st.stored_bytes[5],
	      (unsigned long long)st.content_bytes[5]);
	CHECK(st.bytes_on_disk >= st.bytes_written && st.corrupt == 0 && st.degraded == 0 &&
	      st.packs == 1 && st.packs_sealed == 1 && st.not_persisted == 0);
	aprfs_diskcache_close(dc);

	/* A later process (here: a reopen) finds them, and a flush with nothing new adds no
	 * pack. */
	dc = open_dc(dir, 64 << 20, NULL);
	memset(back, 0, sizeof(back));
	CHECK(aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL) == 1 &&
	      memcmp(back, data, sizeof(data)) == 0);
	CHECK(aprfs_diskcache_get(dc, &rnd, back, sizeof(noise), NULL, NULL, NULL) == 1 &&
	      memcmp(back, noise, sizeof(noise)) == 0);
	aprfs_diskcache_flush(dc);
	aprfs_diskcache_close(dc);
	CHECK(packs(dir, "", NULL, 0) == 1, "still one pack");
}

/* Every field of the key changes its hash, and the codec format version leads the bytes. */
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
		CHECK(strcmp(a, b) != 0, "field %d is in the hash", i);
		CHECK(aprfs_diskcache_get(dc, &v[i], back, sizeof(back), NULL, NULL, NULL) == 0,
		      "field %d is in the key", i);
	}
	CHECK(strlen(a) == 32, "%s", a);
	dc_key_bytes(&base, kb);
	CHECK(kb[0] == (APRFS_CODEC_FORMAT_VERSION & 0xff) && kb[1] == 0,
	      "APRFS_CODEC_FORMAT_VERSION is part of every key");
	CHECK(aprfs_diskcache_get(dc, &base, back, sizeof(back) - 1, NULL, NULL, NULL) == 0,
	      "another size is a miss");
	CHECK(stats(dc).corrupt == 0, "misses of other keys are not corruption");
	aprfs_diskcache_close(dc);
}

/* ---- corrupt, truncated and foreign files -------------------------------------------------
 */

/* A pack of keys 0..n-1 (5000 random bytes each) in dir; data[i] their bytes. */
static void write_pack(const char *dir, int n, uint8_t data[][5000])
{
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	for (int i = 0; i < n; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		random_bytes(data[i], 5000);
		aprfs_diskcache_put(dc, &k, data[i], 5000, aprfs_crc32(0, data[i], 5000), 0);
	}
	aprfs_diskcache_close(dc);
}

/* Reopen: no key is served wrong bytes; 1 if the pack was rejected (the file gone, counted,
 * logged naming why; a pack deleted for one bad record has its good records written again,
 * so they may be hits). */
static int rejected(const char *dir, const char *pack, int n, uint8_t data[][5000], FILE *log,
		    const char *why)
{
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	static uint8_t back[5000];
	int hits = 0;

	for (int i = 0; i < n; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		int hit = aprfs_diskcache_get(dc, &k, back, 5000, NULL, NULL, NULL);
		CHECK(!hit || memcmp(back, data[i], 5000) == 0, "never wrong bytes (%s)", why);
		hits += hit;
	}
	aprfs_diskcache_stats st = stats(dc);
	aprfs_diskcache_close(dc);
	CHECK(log_lines(log, why) >= 1, "logged: %s", why);
	return hits < n && st.corrupt >= 1 && !exists(pack);
}

static void test_corrupt(void)
{
	static uint8_t data[4][5000];
	char pack[600];
	FILE *log = tmpfile();

	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	/* a payload byte of the second record: found on read, the pack deleted */
	const char *dir = new_dir("corrupt-payload");
	write_pack(dir, 4, data);
	packs(dir, ".pack", pack, sizeof(pack));
	flip(pack, DC_PACK_HEAD + DC_REC + 5000 + DC_REC + 17);
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	static uint8_t back[5000];
	aprfs_dc_key k1 = key_n(1);
	CHECK(aprfs_diskcache_get(dc, &k1, back, 5000, NULL, NULL, NULL) == 0, "not served");
	CHECK(stats(dc).corrupt == 1 && !exists(pack), "counted, deleted");
	CHECK(log_lines(log, "payload checksum") == 1 && log_lines(log, pack) >= 1,
	      "one line naming the file");
	aprfs_diskcache_put(dc, &k1, data[1], 5000, 0, 0);
	aprfs_diskcache_flush(dc);
	CHECK(aprfs_diskcache_get(dc, &k1, back, 5000, NULL, NULL, NULL) == 1 &&
		  memcmp(back, data[1], 5000) == 0,
	      "computed again, served again");
	aprfs_diskcache_close(dc);

	/* a record header, the index, the trailer, a truncation: rejected */
	static const struct {
		const char *name, *why;
		int how; /* 0: flip at -off from the end (off > 0) or off; 1: truncate to off */
		off_t off;
	} cases[] = {
	    {"corrupt-header", "bad record header", 0, DC_PACK_HEAD + 3},
	    {"corrupt-key", "bad record header", 0, DC_PACK_HEAD + 8 + 20},
	    {"corrupt-index", "index checksum", 0, -(DC_TRAILER + 5)},
	    {"corrupt-trailer", "trailer", 0, -3},
	    {"truncated", "trailer", 1, 12000},
	};
	for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
		dir = new_dir(cases[c].name);
		write_pack(dir, 4, data);
		packs(dir, ".pack", pack, sizeof(pack));
		struct stat st;
		stat(pack, &st);
		if (cases[c].how == 1)
			CHECK(truncate(pack, cases[c].off) == 0);
		else
			flip(pack, cases[c].off < 0 ? st.st_size + cases[c].off : cases[c].off);
		CHECK(rejected(dir, pack, 4, data, log, cases[c].why), "%s", cases[c].name);
	}

	/* Not packs: a FIFO (must not block), a directory, garbage. Never a hang or a hit. */
	dir = new_dir("foreign");
	write_pack(dir, 1, data);
	mkfifo(test_path(dir, "packs/fifo.pack"), 0644);
	mkdir(test_path(dir, "packs/dir.pack"), 0755);
	put_text(test_path(dir, "packs/garbage.pack"), "not a pack at all, but long enough to "
						       "have a trailer's worth of bytes in it");
	dc = open_dc(dir, 64 << 20, NULL);
	aprfs_dc_key k0 = key_n(0);
	CHECK(aprfs_diskcache_get(dc, &k0, back, 5000, NULL, NULL, NULL) == 1 &&
		  memcmp(back, data[0], 5000) == 0,
	      "the real pack still serves");
	CHECK(stats(dc).corrupt >= 2, "foreign files counted");
	aprfs_diskcache_close(dc);
	aprfs_log_set_stream(NULL);
	fclose(log);
}

/* ---- recovery of an unsealed pack ------------------------------------------------------- */

static int all_written(aprfs_diskcache *dc)
{
	return stats(dc).entries_written == 20;
}

/* A writer killed before sealing leaves its .tmp; the next process recovers its whole
 * records (here the last one is torn) and seals it. */
/* The warm read path: a record straight into the reader's buffer (from the page cache, and
 * read alone when it is not there), counted as a hit; anything else a 0 with nothing counted
 * (the caller goes on with aprfs_diskcache_get); a corrupt record never served. */
static void test_read_direct(void)
{
	static uint8_t data[4][5000], back[5000];
	const char *dir = new_dir("direct");
	aprfs_dc_key k1 = key_n(1), k2 = key_n(2), none = key_n(9);
	char pack[600];
	uint32_t crc = 0;
	FILE *log = tmpfile();

	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	write_pack(dir, 4, data);
	packs(dir, ".pack", pack, sizeof(pack));
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	CHECK(aprfs_diskcache_read(dc, &k1, back, 5000, &crc) == 1 &&
		  memcmp(back, data[1], 5000) == 0 && crc == aprfs_crc32(0, data[1], 5000),
	      "a held record, from the page cache");
	int fd = open(pack, O_RDONLY);
	CHECK(fd >= 0 && posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED) == 0);
	CHECK(aprfs_diskcache_read(dc, &k2, back, 5000, NULL) == 1 &&
		  memcmp(back, data[2], 5000) == 0,
	      "a held record not in memory: read alone");
	CHECK(aprfs_diskcache_read(dc, &none, back, 5000, &crc) == 0, "not held");
	CHECK(aprfs_diskcache_read(dc, &k1, back, 4999, &crc) == 0, "size is checked");
	CHECK(aprfs_diskcache_prefetch(dc, &k2, 5000) == 1 &&
		  aprfs_diskcache_prefetch(dc, &none, 5000) == 0 &&
		  aprfs_diskcache_prefetch(dc, &k2, 4999) == 0,
	      "prefetch says what is held");
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.hits == 2 && st.misses == 0 && st.corrupt == 0, "%llu hits, %llu misses",
	      (unsigned long long)st.hits, (unsigned long long)st.misses);
	aprfs_diskcache_close(dc);
	close(fd);

	/* A payload byte of record 3 flipped: never served, its pack deleted, counted once. */
	flip(pack, DC_PACK_HEAD + 3 * (DC_REC + 5000) + DC_REC + 99);
	dc = open_dc(dir, 64 << 20, NULL);
	memset(back, 0, sizeof(back));
	aprfs_dc_key k3 = key_n(3);
	CHECK(aprfs_diskcache_read(dc, &k3, back, 5000, NULL) == 0, "corrupt: not served");
	CHECK(stats(dc).corrupt == 1 && !exists(pack) && stats(dc).hits == 0,
	      "counted, deleted");
	CHECK(aprfs_diskcache_get(dc, &k3, back, 5000, NULL, NULL, NULL) == 0 &&
		  stats(dc).misses == 1,
	      "then a miss");
	aprfs_diskcache_close(dc);
	CHECK(log_lines(log, "payload checksum") == 1);
	aprfs_log_set_stream(NULL);
	fclose(log);
}

static void test_recovery(void)
{
	const char *dir = new_dir("recovery");
	static uint8_t data[20][5000], back[5000];
	char tmp[600];
	int status = -1;

	for (int i = 0; i < 20; i++)
		random_bytes(data[i], 5000);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		aprfs_diskcache_opts o = {.seal_idle_ms = 600000};
		aprfs_diskcache *dc = open_dc(dir, 64 << 20, &o);
		for (int i = 0; i < 20; i++) {
			aprfs_dc_key k = key_n((uint64_t)i);
			aprfs_diskcache_put(dc, &k, data[i], 5000,
					    aprfs_crc32(0, data[i], 5000), 0);
		}
		_exit(eventually(dc, all_written) ? 0 : 1); /* killed: no seal */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d", status);
	CHECK(packs(dir, ".tmp", tmp, sizeof(tmp)) == 1, "an unsealed pack left");
	struct stat st;
	stat(tmp, &st);
	CHECK(truncate(tmp, st.st_size - 100) == 0, "torn last record");
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	int hits = 0;
	for (int i = 0; i < 20; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		int hit = aprfs_diskcache_get(dc, &k, back, 5000, NULL, NULL, NULL);
		CHECK(!hit || memcmp(back, data[i], 5000) == 0, "record %d", i);
		hits += hit;
	}
	aprfs_diskcache_stats s = stats(dc);
	CHECK(hits == 19 && s.packs_recovered == 1 && s.corrupt == 0, "%d hits, %llu recovered",
	      hits, (unsigned long long)s.packs_recovered);
	CHECK(packs(dir, ".tmp", NULL, 0) == 0 && packs(dir, ".pack", NULL, 0) == 1,
	      "sealed as a pack");
	aprfs_diskcache_close(dc);
}

/* ---- eviction by pack ---------------------------------------------------------------------
 */

static void set_mtime(const char *path, time_t t)
{
	struct timespec ts[2] = {{t, 0}, {t, 0}};
	utimensat(AT_FDCWD, path, ts, 0);
}

#define EV_KEYS 10
#define EV_LEN	(105 << 10)

/* Pack number p: keys 100p .. 100p + EV_KEYS - 1, sealed. */
static void ev_pack(aprfs_diskcache *dc, int p)
{
	static uint8_t buf[EV_LEN];
	for (int i = 0; i < EV_KEYS; i++) {
		aprfs_dc_key k = key_n((uint64_t)(100 * p + i));
		content((uint64_t)(100 * p + i), buf, EV_LEN);
		random_bytes(buf, EV_LEN / 2 + 1000); /* (not compressible enough for LZ4) */
		aprfs_diskcache_put(dc, &k, buf, EV_LEN, 0, 0);
	}
	aprfs_diskcache_flush(dc);
}

static int ev_has(aprfs_diskcache *dc, int p)
{
	static uint8_t back[EV_LEN];
	aprfs_dc_key k = key_n((uint64_t)(100 * p));
	return aprfs_diskcache_get(dc, &k, back, EV_LEN, NULL, NULL, NULL);
}

static int evicted_two(aprfs_diskcache *dc)
{
	return stats(dc).evictions >= 2;
}

/* Budget 4 MiB, packs of ~1 MiB: the least recently used go, and a hit (after a restart)
 * makes a pack recent. */
static void test_eviction(void)
{
	const char *dir = new_dir("evict");
	aprfs_diskcache_opts o = {.touch_after_s = APRFS_DC_TOUCH_ALWAYS};
	aprfs_diskcache *dc = open_dc(dir, 4 << 20, &o);
	char cmd[700];

	for (int p = 1; p <= 3; p++)
		ev_pack(dc, p);
	aprfs_diskcache_close(dc);
	CHECK(packs(dir, ".pack", NULL, 0) == 3, "three packs");
	/* their ages: pack 1 oldest */
	time_t now = time(NULL);
	snprintf(cmd, sizeof(cmd), "ls %s/packs/*.pack", dir);
	FILE *ls = popen(cmd, "r");
	char line[600], names[3][600];
	int n = 0;
	while (ls && n < 3 && fgets(line, sizeof(line), ls)) {
		line[strcspn(line, "\n")] = 0;
		snprintf(names[n++], sizeof(names[0]), "%s", line);
	}
	if (ls)
		pclose(ls);
	/* (names sort by writer then sequence: pack 1 first) */
	for (int i = 0; i < n; i++)
		set_mtime(names[i], now - 300 + 100 * i);
	dc = open_dc(dir, 4 << 20, &o);
	CHECK(ev_has(dc, 1), "pack 1 used after the restart");
	/* its mtime refreshed (by the scanner, soon) */
	struct stat st;
	for (int i = 0; i < 1000 && stat(names[0], &st) == 0 && st.st_mtime < now - 100; i++)
		usleep(10000);
	CHECK(st.st_mtime >= now - 100, "a hit refreshes its pack's mtime");
	ev_pack(dc, 4);
	ev_pack(dc, 5);
	CHECK(eventually(dc, evicted_two), "two packs evicted: %llu",
	      (unsigned long long)stats(dc).evictions);
	CHECK(ev_has(dc, 1) && !ev_has(dc, 2) && !ev_has(dc, 3) && ev_has(dc, 4) &&
		  ev_has(dc, 5),
	      "least recently used first: 2 and 3 went");
	CHECK(stats(dc).bytes_on_disk <= 4 << 20, "within the budget: %llu",
	      (unsigned long long)stats(dc).bytes_on_disk);
	aprfs_diskcache_close(dc);
	CHECK(packs(dir, ".pack", NULL, 0) == 3, "three packs on disk");
	dc = open_dc(dir, 4 << 20, &o);
	CHECK(ev_has(dc, 1) && ev_has(dc, 4) && ev_has(dc, 5) && !ev_has(dc, 2),
	      "the same after a reopen");
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
	CHECK(st.degraded == 1 && st.degraded_errno == EROFS && st.not_persisted == 5 &&
		  st.write_errors == 1,
	      "degraded %llu errno %llu not persisted %llu errors %llu",
	      (unsigned long long)st.degraded, (unsigned long long)st.degraded_errno,
	      (unsigned long long)st.not_persisted, (unsigned long long)st.write_errors);
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
	static uint8_t data[20][16384], back[16384];
	FILE *log = tmpfile();

	if (mount_tmpfs(dir, "size=96k") != 0)
		return;
	aprfs_log_setup(APRFS_LOG_WARN, 0);
	aprfs_log_set_stream(log);
	aprfs_diskcache *dc = open_dc(dir, 100 << 20, NULL);
	for (int i = 0; i < 20; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		random_bytes(data[i], sizeof(data[i]));
		aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL);
		aprfs_diskcache_put(dc, &k, data[i], sizeof(data[i]), 0, 0);
		aprfs_diskcache_flush(dc);
	}
	aprfs_diskcache_stats st = stats(dc);
	CHECK(st.degraded == 1 && st.degraded_errno == ENOSPC, "degraded %llu errno %llu",
	      (unsigned long long)st.degraded, (unsigned long long)st.degraded_errno);
	CHECK(st.entries_written > 0 && st.not_persisted > 0,
	      "%llu written, %llu not persisted", (unsigned long long)st.entries_written,
	      (unsigned long long)st.not_persisted);
	CHECK(log_lines(log, "No space left") == 1, "one log line, got %d",
	      log_lines(log, "No space left"));
	int ok = 0;
	for (int i = 0; i < 20; i++) {
		aprfs_dc_key k = key_n((uint64_t)i);
		int hit = aprfs_diskcache_get(dc, &k, back, sizeof(back), NULL, NULL, NULL);
		CHECK(!hit || memcmp(back, data[i], sizeof(back)) == 0, "key %d", i);
		ok += hit;
	}
	CHECK(ok > 0 && stats(dc).corrupt == 0, "what was sealed is served: %d", ok);
	aprfs_diskcache_close(dc);
	CHECK(packs(dir, ".tmp", NULL, 0) == 0, "no unsealed pack left behind");
	aprfs_log_set_stream(NULL);
	fclose(log);
	umount2(dir, MNT_DETACH);
}

/* ---- range claims between processes -------------------------------------------------------
 */

static int has_peer(aprfs_diskcache *dc)
{
	return stats(dc).peers >= 1;
}

/* A child claims range 0 (a miss of key 0), computes key 0 only, publishes it and holds on.
 * The parent waits for key 0 and gets it; waits for key 1 in vain (bounded), then adopts
 * the range: key 2 is computed without a wait. */
static void test_claims(void)
{
	const char *dir = new_dir("claims");
	static uint8_t data[5000], back[5000];
	int to_parent[2], to_child[2], status = -1;
	char c = 0;

	random_bytes(data, sizeof(data));
	CHECK(pipe(to_parent) == 0 && pipe(to_child) == 0);
	aprfs_diskcache *dc = open_dc(dir, 64 << 20, NULL);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		aprfs_diskcache *mine = open_dc(dir, 64 << 20, NULL);
		aprfs_dc_key k = key_n(0);
		int claimed = 0, ok = eventually(mine, has_peer);
		ok = ok &&
		     aprfs_diskcache_get(mine, &k, back, 5000, NULL, NULL, &claimed) == 0 &&
		     claimed == 1;
		ok = ok && write(to_parent[1], "c", 1) == 1;
		usleep(100000);
		aprfs_diskcache_put(mine, &k, data, 5000, 0, claimed);
		aprfs_diskcache_flush(mine);
		ok = ok && read(to_child[0], &c, 1) == 1; /* hold the claim until told */
		aprfs_diskcache_close(mine);
		_exit(ok ? 0 : 1);
	}
	CHECK(eventually(dc, has_peer), "the child is a peer");
	CHECK(read(to_parent[0], &c, 1) == 1, "the child claimed");
	aprfs_dc_key k0 = key_n(0), k1 = key_n(1), k2 = key_n(2);
	int claimed = -1;
	CHECK(aprfs_diskcache_get(dc, &k0, back, 5000, NULL, NULL, &claimed) == 1 &&
		  memcmp(back, data, 5000) == 0 && claimed == 0,
	      "waited for the claimed key, got it");
	CHECK(stats(dc).claim_waits == 1);
	CHECK(aprfs_diskcache_get(dc, &k1, back, 5000, NULL, NULL, &claimed) == 0,
	      "the owner never computes key 1: a miss after a bounded wait");
	CHECK(stats(dc).claim_waits == 2);
	CHECK(aprfs_diskcache_get(dc, &k2, back, 5000, NULL, NULL, &claimed) == 0 &&
		  claimed == 1,
	      "the range adopted: ours");
	CHECK(stats(dc).claim_waits == 2, "no third wait");
	CHECK(write(to_child[1], "x", 1) == 1);
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d", status);
	aprfs_diskcache_close(dc);

	/* a claim of a process that died: removed, claimed anew (no wait) */
	dir = new_dir("claims-dead");
	mkdir(test_path(dir, "daemons"), 0755);
	put_text(test_path(dir, "daemons/elsewhere.1"), ""); /* a peer: claims are made */
	fflush(NULL);
	if ((pid = fork()) == 0) {
		aprfs_diskcache *mine = open_dc(dir, 64 << 20, NULL);
		int cl = 0;
		aprfs_diskcache_get(mine, &k0, back, 5000, NULL, NULL, &cl);
		_exit(cl == 1 ? 0 : 1); /* dies holding the claim */
	}
	waitpid(pid, &status, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child %d", status);
	dc = open_dc(dir, 64 << 20, NULL);
	CHECK(aprfs_diskcache_get(dc, &k1, back, 5000, NULL, NULL, &claimed) == 0 &&
		  claimed == 1 && stats(dc).claim_waits == 0,
	      "a dead process's claim is taken over at once");
	aprfs_diskcache_close(dc);
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
			aprfs_file *f = open_file(s, aprfs_variant_name(v), NULL);
			uint8_t *got = read_file(f, c);
			if (pass == 0)
				ref[v] = read_file(f, NULL);
			CHECK(got && ref[v] && memcmp(got, ref[v], aprfs_file_size(f)) == 0,
			      "%s pass %d: same bytes", aprfs_variant_name(v), pass);
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

int main(void)
{
	if (!check_tmpdir(root, sizeof(root), "test-diskcache")) {
		perror("mkdtemp");
		return 2;
	}
	signal(SIGPIPE, SIG_IGN);
	test_roundtrip();
	test_key_fields();
	test_corrupt();
	test_read_direct();
	test_recovery();
	test_eviction();
	test_readonly();
	test_no_permission();
	test_full_disk();
	test_claims();
	test_range_api();
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return check_done("diskcache");
}
