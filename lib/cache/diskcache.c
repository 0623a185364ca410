/* diskcache.c - the disk tier's API (diskcache.h): opening and closing the directory (the
 * handle, its threads), lookups (a probe of the index, the record read by diskcache_read.c),
 * waiting for records another process claimed, put and flush (the queue), the counters. */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "cache/diskcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "cache/diskcache_claim.h"
#include "cache/diskcache_io.h"
#include "cache/diskcache_peers.h"
#include "cache/diskcache_queue.h"
#include "cache/diskcache_read.h"
#include "cache/diskcache_record.h"
#include "cache/diskcache_scan.h"
#include "cache/diskcache_shared.h"
#include "cache/diskcache_table.h"
#include "cache/diskcache_write.h"

#define DEFAULT_QUEUE	   (64u << 20)
#define DEFAULT_STALE_MS   5000
#define DEFAULT_TOUCH_S	   60
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_IDLE_MS	   2000
#define PACK_MAX	   (256ull << 20)
#define CLOSE_PATIENCE_NS  (10 * 1000000000ll) /* close waits while the writer progresses */
#define CLAIM_POLL_NS	   (20 * 1000000ll)
#define WAIT_NS		   (600 * 1000000ll)

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

/* ---- lookups ------------------------------------------------------------------------- */

/* The first scan (what the directory holds) is done, waiting for it at most the read
 * deadline; then 1 (0: the storage is too slow, lookups miss until it is done). */
static int ready(aprfs_diskcache *dc)
{
	if (atomic_load(&dc->scanned))
		return 1;
	int64_t deadline =
	    aprfs_now_ns(CLOCK_MONOTONIC) + (int64_t)dc->read_timeout_ms * 1000000;
	struct timespec ts = {deadline / 1000000000, deadline % 1000000000};

	pthread_mutex_lock(&dc->lock);
	while (!dc->scanned && pthread_cond_timedwait(&dc->found, &dc->lock, &ts) != ETIMEDOUT)
		;
	int ok = dc->scanned;
	pthread_mutex_unlock(&dc->lock);
	return ok;
}

/* Find h: its location, and a reference to its pack (*k, dc_pack_put when done). */
static int find(aprfs_diskcache *dc, const dc_hash *h, dc_loc *l, dc_pack **k)
{
	pthread_mutex_lock(&dc->lock);
	int found = dc_index_find(dc, h, l);
	if (found) {
		*k = dc->packs[l->pack];
		atomic_fetch_add(&(*k)->refs, 1);
		atomic_store(&(*k)->touch, 1);
	}
	pthread_mutex_unlock(&dc->lock);
	return found;
}

/* Tell the writers of other processes that someone waits for their records: touch
 * DIR/wanted (a metadata write; at most every 50 ms). */
static void want(aprfs_diskcache *dc)
{
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);

	if (now - atomic_load(&dc->want_touched) < 50000000ll)
		return;
	atomic_store(&dc->want_touched, now);
	if (utimensat(dc->dirfd, "wanted", NULL, 0) != 0 && errno == ENOENT) {
		int fd = openat(dc->dirfd, "wanted",
				O_WRONLY | O_CREAT | O_CLOEXEC | O_NONBLOCK, 0644);
		if (fd >= 0)
			close(fd);
	}
}

/* Another process claimed the range: wait (bounded, cancellable) until key's record is in
 * the index, or the claim dies. 1 when it came. Bounded by WAIT_NS: the owner publishes
 * every 200 ms, so a longer wait means it is not computing this chunk now (its readers may
 * be waiting for a range we claimed): then the range is adopted, computed here. */
static int wait_records(aprfs_diskcache *dc, const dc_hash *h, const dc_hash *range,
			const aprfs_cancel *cancel)
{
	int64_t deadline = aprfs_now_ns(CLOCK_MONOTONIC) + WAIT_NS;
	int64_t next_check = aprfs_now_ns(CLOCK_MONOTONIC) + 10 * CLAIM_POLL_NS;
	dc_loc l;
	int found = 0;

	want(dc);
	pthread_mutex_lock(&dc->lock);
	dc->waiters++;
	dc_scanner_kick(dc);
	for (;;) {
		if ((found = dc_index_find(dc, h, &l)))
			break;
		int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
		if (now > deadline || aprfs_cancelled(cancel) || dc->stalled_until > now)
			break;
		if (now > next_check) {
			pthread_mutex_unlock(&dc->lock);
			want(dc);
			int alive = dc_claim_alive(dc, range);
			pthread_mutex_lock(&dc->lock);
			if (!alive && !(found = dc_index_find(dc, h, &l)))
				break;
			next_check = now + 10 * CLAIM_POLL_NS;
		}
		int64_t at = now + CLAIM_POLL_NS;
		struct timespec ts = {at / 1000000000, at % 1000000000};
		pthread_cond_timedwait(&dc->found, &dc->lock, &ts);
	}
	dc->waiters--;
	dc->st.claim_waits++;
	pthread_mutex_unlock(&dc->lock);
	if (!found)
		dc_claim_adopt(dc, range);
	return found;
}

/* Whether a miss should claim: only while others could compute the same. */
static int claiming(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	int off = dc_writes_off_locked(dc);
	pthread_mutex_unlock(&dc->lock);
	return !off && atomic_load(&dc->peers) > 0;
}

int aprfs_diskcache_get(aprfs_diskcache *dc, const aprfs_dc_key *key, void *buf, size_t len,
			uint32_t *crc, const aprfs_cancel *cancel, int *claimed)
{
	dc_hash h = dc_key_hash(key), range;
	int hit = 0, waited = 0;
	dc_pack *k;
	dc_loc l;

	if (claimed)
		*claimed = 0;
	if (dc_stalled(dc) || !ready(dc)) {
		count_lookup(dc, key, 0, 0);
		return 0;
	}
	for (int round = 0; round < 8; round++) {
		if (find(dc, &h, &l, &k)) {
			int r = -1;
			if (l.clen == len)
				r = dc_read_record(dc, key, &l, k, buf, crc);
			else
				dc_pack_put(k);
			if (r == 1)
				hit = 1;
			if (r != 0)
				break;
			continue; /* corrupt: another copy? */
		}
		if (waited || !claimed || !claiming(dc))
			break;
		dc_claim_result c = dc_claim(dc, key, &range);
		if (c == DC_CLAIM_OURS)
			*claimed = 1;
		if (c != DC_CLAIM_TAKEN || !wait_records(dc, &h, &range, cancel))
			break;
		waited = 1;
	}
	count_lookup(dc, key, hit, hit ? DC_REC + l.slen : 0);
	return hit;
}

/* The record of key if it holds len bytes: 1 with its location and a reference to its
 * pack, else 0. wait: wait for the first scan (a read), or miss until it is done (advice). */
static int find_sized(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len, int wait,
		      dc_loc *l, dc_pack **k)
{
	dc_hash h = dc_key_hash(key);

	if (dc_stalled(dc) || !(wait ? ready(dc) : atomic_load(&dc->scanned)) ||
	    !find(dc, &h, l, k))
		return 0;
	if (l->clen != len) {
		dc_pack_put(*k);
		return 0;
	}
	return 1;
}

int aprfs_diskcache_read(aprfs_diskcache *dc, const aprfs_dc_key *key, void *buf, size_t len,
			 uint32_t *crc)
{
	dc_pack *k;
	dc_loc l;

	if (!find_sized(dc, key, len, 1, &l, &k))
		return 0;
	if (dc_read_record(dc, key, &l, k, buf, crc) != 1)
		return 0;
	count_lookup(dc, key, 1, DC_REC + l.slen);
	return 1;
}

int aprfs_diskcache_prefetch(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len)
{
	dc_pack *k;
	dc_loc l;

	if (!find_sized(dc, key, len, 0, &l, &k))
		return 0;
	dc_io_prefetch(dc, k, l.off, l.off + DC_REC + l.slen);
	return 1;
}

int aprfs_diskcache_get_crc(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len,
			    uint32_t *crc)
{
	dc_hash h = dc_key_hash(key);
	dc_pack *k;
	dc_loc l;

	if (dc_stalled(dc) || !ready(dc) || !find(dc, &h, &l, &k))
		return 0;
	dc_pack_put(k);
	if (l.clen != len)
		return 0;
	*crc = l.crc;
	count_lookup(dc, key, 1, 0);
	return 1;
}

/* ---- writing --------------------------------------------------------------------------- */

void aprfs_diskcache_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data,
			 size_t len, uint32_t crc, int claimed)
{
	(void)claimed; /* a range claim lives until it goes stale or we close */
	dc_queue_put(dc, key, data, len, crc, dc->wait_when_full);
}

void aprfs_diskcache_drop(aprfs_diskcache *dc, const aprfs_dc_key *key, int claimed)
{
	(void)dc;
	(void)key;
	(void)claimed;
}

void aprfs_diskcache_flush(aprfs_diskcache *dc)
{
	dc_queue_flush(dc);
}

/* ---- open, close, counters -------------------------------------------------------------- */

static void set_names(aprfs_diskcache *dc)
{
	uint32_t r = 0;

	if (gethostname(dc->host, sizeof(dc->host) - 1) != 0 || !dc->host[0])
		snprintf(dc->host, sizeof(dc->host), "localhost");
	for (char *p = dc->host; *p; p++)
		if (*p <= ' ' || *p == '/' || *p == '.' || *p > '~')
			*p = '_';
	if (getrandom(&r, sizeof(r), 0) != (ssize_t)sizeof(r))
		r = (uint32_t)aprfs_now_ns(CLOCK_REALTIME);
	snprintf(dc->wid, sizeof(dc->wid), "%s.%ld.%08x", dc->host, (long)dc->pid, r);
}

static void set_opts(aprfs_diskcache *dc, const aprfs_diskcache_opts *o)
{
	dc->budget = o->budget;
	dc->pack_max = o->budget / 4 < PACK_MAX ? o->budget / 4 : PACK_MAX;
	dc->pack_max = dc->pack_max < (1u << 20) ? (1u << 20) : dc->pack_max;
	dc->queue_cap = o->queue_bytes ? o->queue_bytes : DEFAULT_QUEUE;
	dc->wait_when_full = o->wait_when_full;
	dc->claim_stale_ms = o->claim_stale_ms ? o->claim_stale_ms : DEFAULT_STALE_MS;
	dc->touch_after_s = o->touch_after_s ? o->touch_after_s : DEFAULT_TOUCH_S;
	dc->touch_after_s = dc->touch_after_s == APRFS_DC_TOUCH_ALWAYS ? 0 : dc->touch_after_s;
	dc->read_timeout_ms = o->read_timeout_ms ? o->read_timeout_ms : DEFAULT_TIMEOUT_MS;
	dc->seal_idle_ms = o->seal_idle_ms ? o->seal_idle_ms : DEFAULT_IDLE_MS;
	dc->st.budget = o->budget;
	dc->pid = getpid();
	dc->cur = -1;
	set_names(dc);
}

static int start_threads(aprfs_diskcache *dc)
{
	pthread_condattr_t ca;

	pthread_mutex_init(&dc->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&dc->work, &ca);
	pthread_cond_init(&dc->found, &ca);
	pthread_cond_init(&dc->scan, &ca);
	pthread_cond_init(&dc->space, &ca);
	pthread_cond_init(&dc->idle, &ca);
	pthread_condattr_destroy(&ca);
	if (dc_io_start(dc) != 0)
		return -EAGAIN;
	dc->scanner_started = pthread_create(&dc->scanner, NULL, dc_scanner_main, dc) == 0;
	dc->started = pthread_create(&dc->writer, NULL, dc_writer_main, dc) == 0;
	return dc->started && dc->scanner_started ? 0 : -EAGAIN;
}

static void dc_free(aprfs_diskcache *dc)
{
	if (dc->leaked)
		return;	   /* a thread is stuck in the storage and may still use it */
	while (dc->head) { /* (queued after the writer stopped: a salvage racing close) */
		dc_job *j = dc->head;
		dc->head = j->next;
		free(j);
	}
	while (dc->nsalvage)
		close(dc->salvage[--dc->nsalvage]);
	dc_windows_free(dc);
	dc_index_free(dc);
	free(dc->cur_idx);
	free(dc->claims);
	if (dc->dirfd >= 0)
		close(dc->dirfd);
	pthread_cond_destroy(&dc->work);
	pthread_cond_destroy(&dc->found);
	pthread_cond_destroy(&dc->scan);
	pthread_cond_destroy(&dc->space);
	pthread_cond_destroy(&dc->idle);
	pthread_mutex_destroy(&dc->lock);
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
		free(dc->dir);
		free(dc);
		return aprfs_fail(err, e, "%s: %s", o->dir, strerror(e));
	}
	set_opts(dc, o);
	/* Only metadata here (a distributed file system's master answers it); data (packs,
	 * CACHEDIR.TAG) is written by the writer thread, which a storage node that does not
	 * answer stalls alone, not the mount. */
	mkdirat(dc->dirfd, "packs", 0755); /* (read-only: serves what it holds) */
	dc_peers_join(dc);
	if (start_threads(dc) != 0) {
		aprfs_diskcache_close(dc);
		return aprfs_fail(err, EAGAIN, "disk cache: cannot start its threads");
	}
	*out = dc;
	return 0;
}

/* Join t, waiting while *progress moves (the writer drains a queue) but no longer than
 * patience_ns past its last move; 0 joined, -1 given up (detached). */
static int join_patiently(aprfs_diskcache *dc, pthread_t t, const int64_t *progress,
			  int64_t patience_ns)
{
	for (;;) {
		int64_t at = aprfs_now_ns(CLOCK_REALTIME) + 200000000ll;
		struct timespec ts = {at / 1000000000, at % 1000000000};
		if (pthread_timedjoin_np(t, NULL, &ts) == 0)
			return 0;
		pthread_mutex_lock(&dc->lock);
		int64_t last = progress ? *progress : 0;
		pthread_mutex_unlock(&dc->lock);
		if (aprfs_now_ns(CLOCK_MONOTONIC) - last > patience_ns) {
			pthread_detach(t);
			return -1;
		}
	}
}

void aprfs_diskcache_close(aprfs_diskcache *dc)
{
	if (!dc)
		return;
	pthread_mutex_lock(&dc->lock);
	dc->stopping = 1;
	dc->progress = aprfs_now_ns(CLOCK_MONOTONIC);
	pthread_cond_signal(&dc->work);
	pthread_cond_signal(&dc->scan);
	pthread_mutex_unlock(&dc->lock);
	if (dc->started && join_patiently(dc, dc->writer, &dc->progress, CLOSE_PATIENCE_NS))
		dc->leaked = 1;
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
	if (dc->scanner_started && join_patiently(dc, dc->scanner, &now, CLOSE_PATIENCE_NS / 2))
		dc->leaked = 1;
	if (dc_io_stop(dc, aprfs_now_ns(CLOCK_REALTIME) + 2000000000ll) != 0)
		dc->leaked = 1;
	if (dc->leaked)
		aprfs_log(APRFS_LOG_WARN,
			  "disk cache %s: the storage does not answer; closed without it",
			  dc->dir);
	else
		dc_claims_release(dc);
	if (!dc->leaked && dc->st.bytes_on_disk > dc->budget)
		dc_evict(dc); /* (what the last pack added) */
	dc_peers_leave(dc);
	dc_free(dc);
}

void aprfs_diskcache_get_stats(aprfs_diskcache *dc, aprfs_diskcache_stats *out)
{
	pthread_mutex_lock(&dc->lock);
	*out = dc->st;
	out->degraded = dc->degraded_until > aprfs_now_ns(CLOCK_MONOTONIC);
	out->stalled = dc->stalled_until > aprfs_now_ns(CLOCK_MONOTONIC);
	out->peers = (uint64_t)atomic_load(&dc->peers);
	pthread_mutex_unlock(&dc->lock);
}

const char *aprfs_diskcache_dir(const aprfs_diskcache *dc)
{
	return dc->dir;
}

void aprfs_diskcache_entry_name(const aprfs_dc_key *key, char *buf, size_t size)
{
	dc_hash h = dc_key_hash(key);
	int n = 0;

	for (int i = 0; i < 16 && n >= 0 && (size_t)n < size; i++)
		n += snprintf(buf + n, size - (size_t)n, "%02x", h.b[i]);
}
