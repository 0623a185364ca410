/* diskcache.c - the disk tier's handle and its lookups: opening and closing the directory,
 * reading an entry (verify, refresh its access time, delete it when corrupt), waiting for
 * another process's claimed entry, and the counters. Writing is diskcache_write.c's, the entry
 * format diskcache_entry.c's, claims diskcache_claim.c's, who else uses the directory
 * diskcache_peers.c's, eviction diskcache_evict.c's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/diskcache_impl.h"

#define DEFAULT_QUEUE	  (64u << 20)
#define DEFAULT_STALE_MS  5000
#define DEFAULT_TOUCH_S	  60
#define WAIT_MAX_SLEEP_NS 10000000ll /* polling for another process's entry */

int64_t dc_now_ns(int clock_id)
{
	struct timespec ts;

	clock_gettime(clock_id, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- corrupt entries -------------------------------------------------------------------- */

/* A torn, truncated, corrupt or misfiled entry: never served, logged once, deleted (if it
 * is still the file we read: another process may have replaced it with a good one). */
static void corrupt(aprfs_diskcache *dc, const char *name, const struct stat *st,
		    const char *why)
{
	char key[600];
	struct stat now;

	pthread_mutex_lock(&dc->lock);
	dc->st.corrupt++;
	pthread_mutex_unlock(&dc->lock);
	snprintf(key, sizeof(key), "diskcache %s/%s", dc->dir, name);
	aprfs_log_once(APRFS_LOG_WARN, key, "disk cache %s/%s: %s; deleted, recomputing",
		       dc->dir, name, why);
	if (fstatat(dc->dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == st->st_ino && now.st_dev == st->st_dev)
		unlinkat(dc->dirfd, name, 0);
}

/* ---- lookups ---------------------------------------------------------------------------- */

static int read_all(int fd, uint8_t *buf, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t r = pread(fd, buf + done, n - done, (off_t)done);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		done += (size_t)r;
	}
	return 0;
}

/* A hit is a use: refresh the mtime that eviction orders by, but only when it is older
 * than touch_after_s, so a hot entry costs one metadata write a minute, not one per read.
 * Failing (a read-only directory) is fine: eviction is then merely less precise. */
static void touch(aprfs_diskcache *dc, int fd, const struct stat *st)
{
	int64_t age = dc_now_ns(CLOCK_REALTIME) -
		      ((int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec);

	if (dc->touch_after_s == APRFS_DC_TOUCH_ALWAYS ||
	    age > (int64_t)dc->touch_after_s * 1000000000)
		futimens(fd, NULL);
}

static void count_lookup(aprfs_diskcache *dc, const aprfs_dc_key *key, int hit, uint64_t bytes)
{
	pthread_mutex_lock(&dc->lock);
	if (hit) {
		dc->st.hits++;
		dc->st.bytes_read += bytes;
	} else {
		dc->st.misses++;
	}
	if (key->kind == APRFS_DC_CHUNK && key->variant < APRFS_VARIANT_COUNT) {
		if (hit)
			dc->st.chunk_hits[key->variant]++;
		else
			dc->st.chunk_misses[key->variant]++;
	}
	pthread_mutex_unlock(&dc->lock);
}

/* Open the entry: its fd and stat, or -1 (absent, unreadable, or not a regular file: a
 * miss either way). Non-blocking: a FIFO someone put in a shared directory must not hang
 * a reader in open. */
static int open_entry(aprfs_diskcache *dc, const char *name, struct stat *st)
{
	int fd = openat(dc->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd >= 0 && (fstat(fd, st) != 0 || !S_ISREG(st->st_mode))) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* 1: the verified content is in buf; 0: absent or corrupt (then deleted). *bytes: read. */
static int load(aprfs_diskcache *dc, const aprfs_dc_key *key, const char *stem, void *buf,
		size_t len, uint32_t *crc, uint64_t *bytes)
{
	char name[DC_NAME_MAX + 8];
	struct stat st;
	const char *why = "unreadable";
	int ok = 0;

	snprintf(name, sizeof(name), "%s.ent", stem);
	int fd = open_entry(dc, name, &st);
	if (fd < 0)
		return 0;
	uint64_t size = (uint64_t)st.st_size;
	int sane = size >= DC_HEADER && size <= dc_entry_max(len);
	int cold = 0;
	if (size == dc_stored_size(len) && dc_read_stored(fd, key, buf, len, crc, &cold) == 0) {
		if (cold)
			atomic_store(&dc->prefetch_until,
				     dc_now_ns(CLOCK_MONOTONIC) + DC_PREFETCH_FOR_NS);
		touch(dc, fd, &st);
		close(fd);
		*bytes = size;
		return 1;
	}
	uint8_t *file = sane ? dc_read_buffer(size) : NULL;
	if (!sane)
		why = "file size impossible for its content (truncated or extended)";
	else if (!file)
		why = NULL; /* out of memory: a miss, the entry is fine */
	else if (read_all(fd, file, size) != 0)
		why = "short read (truncated while reading)";
	else
		ok = dc_decode(key, file, size, buf, len, crc, &why) == 0;
	if (ok)
		touch(dc, fd, &st);
	else if (why)
		corrupt(dc, name, &st, why);
	close(fd);
	*bytes = size;
	return ok;
}

/* Another process holds the claim: poll (100 us doubling to 10 ms) until the entry
 * appears or the claim dies; 0 when the deadline passes or cancel says stop. */
static int wait_for(aprfs_diskcache *dc, const char *stem, int64_t deadline,
		    const aprfs_cancel *cancel)
{
	char name[DC_NAME_MAX + 8];
	struct stat st;
	int64_t sleep_ns = 100000;

	snprintf(name, sizeof(name), "%s.ent", stem);
	for (;;) {
		struct timespec ts = {0, sleep_ns};
		nanosleep(&ts, NULL);
		sleep_ns = sleep_ns * 2 < WAIT_MAX_SLEEP_NS ? sleep_ns * 2 : WAIT_MAX_SLEEP_NS;
		if (aprfs_cancelled(cancel) || dc_now_ns(CLOCK_MONOTONIC) > deadline)
			return 0;
		if (fstatat(dc->dirfd, name, &st, 0) == 0 || !dc_claim_alive(dc, stem))
			return 1;
	}
}

int aprfs_diskcache_get(aprfs_diskcache *dc, const aprfs_dc_key *key, void *buf, size_t len,
			uint32_t *crc, const aprfs_cancel *cancel, int *claimed)
{
	char stem[DC_NAME_MAX];
	int64_t deadline = 0;
	uint64_t bytes = 0;
	int waited = 0, hit = 0;

	dc_entry_stem(key, stem);
	if (claimed)
		*claimed = 0;
	for (int round = 0; !hit && round < 8; round++) {
		if ((hit = load(dc, key, stem, buf, len, crc, &bytes)))
			break;
		/* alone with the directory, a claim is only cost */
		if (!claimed || dc_writes_off(dc) || !atomic_load(&dc->peers))
			break;
		dc_claim_result c = dc_claim(dc, stem);
		if (c == DC_CLAIM_OURS) {
			/* Published between our look and our claim? */
			if ((hit = load(dc, key, stem, buf, len, crc, &bytes)))
				dc_claim_release(dc, stem, 0);
			else
				*claimed = 1;
			break;
		}
		if (c == DC_CLAIM_NONE)
			break;
		/* Claims of the dead expire, so the wait is bounded; twice the claim life
		 * also bounds a string of live claims (each daemon computes in the end). */
		if (!deadline)
			deadline = dc_now_ns(CLOCK_MONOTONIC) + 2000000ll * dc->claim_stale_ms;
		if (!wait_for(dc, stem, deadline, cancel))
			break;
		waited = 1;
	}
	if (waited) {
		pthread_mutex_lock(&dc->lock);
		dc->st.claim_waits++;
		pthread_mutex_unlock(&dc->lock);
	}
	count_lookup(dc, key, hit, bytes);
	return hit;
}

int aprfs_diskcache_prefetching(aprfs_diskcache *dc)
{
	return dc_now_ns(CLOCK_MONOTONIC) < atomic_load(&dc->prefetch_until);
}

void aprfs_diskcache_prefetch(aprfs_diskcache *dc, const aprfs_dc_key *key)
{
	char stem[DC_NAME_MAX], name[DC_NAME_MAX + 8];

	dc_entry_stem(key, stem);
	snprintf(name, sizeof(name), "%s.ent", stem);
	int fd = openat(dc->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return;
	posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
	close(fd);
}

int aprfs_diskcache_get_crc(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len,
			    uint32_t *crc)
{
	char stem[DC_NAME_MAX], name[DC_NAME_MAX + 8];
	uint8_t hdr[DC_HEADER];
	struct stat st;
	const char *why = "short read";
	int ok = 0;

	dc_entry_stem(key, stem);
	snprintf(name, sizeof(name), "%s.ent", stem);
	int fd = open_entry(dc, name, &st);
	if (fd < 0)
		return 0;
	if (read_all(fd, hdr, st.st_size < DC_HEADER ? (size_t)st.st_size : DC_HEADER) == 0)
		ok = dc_check_header(key, hdr, (uint64_t)st.st_size, len, crc, &why) == 0;
	if (ok) {
		touch(dc, fd, &st);
		count_lookup(dc, key, 1, DC_HEADER);
	} else {
		corrupt(dc, name, &st, why);
	}
	close(fd);
	return ok;
}

/* ---- open, close, counters -------------------------------------------------------------- */

/* The standard tag (bford.info/cachedir) that tells backup tools to skip the directory. */
static void write_cachedir_tag(int dirfd)
{
	static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
				  "# This file is a cache directory tag created by aprfs.\n"
				  "# Entries are recomputed when missing; see aprfs' README.\n";
	int fd = openat(dirfd, "CACHEDIR.TAG", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0) {
		if (dc_write_all(fd, (const uint8_t *)tag, sizeof(tag) - 1) != 0)
			unlinkat(dirfd, "CACHEDIR.TAG", 0);
		close(fd);
	}
}

static void set_host(aprfs_diskcache *dc)
{
	if (gethostname(dc->host, sizeof(dc->host) - 1) != 0 || !dc->host[0])
		snprintf(dc->host, sizeof(dc->host), "localhost");
	for (char *p = dc->host; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '.' || *p > '~')
			*p = '_';
}

static void set_opts(aprfs_diskcache *dc, const aprfs_diskcache_opts *o)
{
	dc->budget = o->budget;
	dc->queue_cap = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE;
	dc->wait_when_full = o->wait_when_full;
	dc->claim_stale_ms = o->claim_stale_ms ? o->claim_stale_ms : DEFAULT_STALE_MS;
	dc->touch_after_s = o->touch_after_s ? o->touch_after_s : DEFAULT_TOUCH_S;
	dc->st.budget = o->budget;
	dc->next_scan = dc_now_ns(CLOCK_MONOTONIC) + DC_RESCAN_NS;
	dc->pid = getpid();
	set_host(dc);
}

static int init_sync(aprfs_diskcache *dc)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&dc->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dc->work, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&dc->space, NULL);
	pthread_cond_init(&dc->idle, NULL);
	dc->started = pthread_create(&dc->writer, NULL, dc_writer_main, dc) == 0;
	return dc->started ? 0 : -EAGAIN;
}

static void dc_free(aprfs_diskcache *dc)
{
	if (dc->dirfd >= 0)
		close(dc->dirfd);
	free(dc->dir);
	free(dc);
}

int aprfs_diskcache_open(const aprfs_diskcache_opts *o, aprfs_diskcache **out, aprfs_err *err)
{
	aprfs_diskcache *dc;

	*out = NULL;
	if (!o->dir || !o->dir[0] || o->budget == 0)
		return aprfs_fail(err, EINVAL, "disk cache: needs a directory and a budget");
	if (mkdir(o->dir, 0755) != 0 && errno != EEXIST)
		return aprfs_fail(err, errno, "%s: cannot create the cache directory: %s",
				  o->dir, strerror(errno));
	if (!(dc = calloc(1, sizeof(*dc))) || !(dc->dir = strdup(o->dir))) {
		free(dc);
		return aprfs_fail(err, ENOMEM, "out of memory");
	}
	dc->dirfd = open(o->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dc->dirfd < 0) {
		int e = errno;
		dc_free(dc);
		return aprfs_fail(err, e, "%s: %s", o->dir, strerror(e));
	}
	set_opts(dc, o);
	write_cachedir_tag(dc->dirfd);
	dc_peers_join(dc);
	if (init_sync(dc) != 0) {
		dc_free(dc);
		return aprfs_fail(err, EAGAIN, "disk cache: cannot start its writer thread");
	}
	*out = dc;
	return 0;
}

void aprfs_diskcache_close(aprfs_diskcache *dc)
{
	if (!dc)
		return;
	pthread_mutex_lock(&dc->lock);
	dc->stopping = 1;
	pthread_cond_signal(&dc->work);
	pthread_mutex_unlock(&dc->lock);
	if (dc->started)
		pthread_join(dc->writer, NULL);
	dc_peers_leave(dc);
	pthread_cond_destroy(&dc->work);
	pthread_cond_destroy(&dc->space);
	pthread_cond_destroy(&dc->idle);
	pthread_mutex_destroy(&dc->lock);
	dc_free(dc);
}

void aprfs_diskcache_get_stats(aprfs_diskcache *dc, aprfs_diskcache_stats *out)
{
	pthread_mutex_lock(&dc->lock);
	*out = dc->st;
	out->degraded = dc_writes_off_locked(dc);
	out->peers = (uint64_t)atomic_load(&dc->peers);
	pthread_mutex_unlock(&dc->lock);
}

const char *aprfs_diskcache_dir(const aprfs_diskcache *dc)
{
	return dc->dir;
}
