/* diskcache_write.c - writing: the queue put() fills (bounded in bytes: the memory budget
 * that absorbs bursts), the writer thread that drains it in batches into its pack (one
 * large sequential write per batch) and seals the pack (size limit, idle, flush, close),
 * and the states that stop writing: a full or read-only disk, a disk too slow to keep up.
 *
 * Why a writer thread: a cold read must not pay for writing what it just computed. When the
 * queue is full, the mount does not wait: the chunk is not persisted, counted and said once
 * in the log (convert waits instead, as long as the writer makes progress). While another
 * process waits for records (it touched DIR/wanted, diskcache.c), the pack is sealed once
 * it is DC_PUBLISH_NS old, so that the other sees its records soon (processes load sealed
 * packs only); otherwise packs grow to their size limit. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/log.h"
#include "cache/diskcache_impl.h"

#define NOSPACE_RETRY_NS (60 * 1000000000ll) /* a full disk may get space back */
#define DC_PUBLISH_NS	 (100000000ll)	     /* seal this often while others wait */
#define WANTED_FOR_NS	 (2000000000ll)	     /* DIR/wanted this young: someone waits */
#define WANTED_CHECK_NS	 (50000000ll)	     /* how often DIR/wanted is looked at */
#define BATCH_MAX	 (8u << 20)	     /* bytes per write */
#define STUCK_NS	 (10 * 1000000000ll) /* convert's put() gives up on a stuck writer */

/* ---- the states that stop writing -------------------------------------------------------- */

int dc_writes_off_locked(const aprfs_diskcache *dc)
{
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
	return dc->degraded_until > now || dc->stalled_until > now;
}

void dc_not_persisted_locked(aprfs_diskcache *dc, uint64_t n, const char *why)
{
	char key[600];

	dc->st.not_persisted += n;
	snprintf(key, sizeof(key), "diskcache %s: not persisted: %s", dc->dir, why);
	aprfs_log_once(APRFS_LOG_WARN, key,
		       "disk cache %s: %s: computed chunks are not persisted (see the "
		       "not_persisted metric)",
		       dc->dir, why);
}

void dc_write_failed(aprfs_diskcache *dc, const char *what, int e)
{
	int full = e == ENOSPC || e == EDQUOT;
	int ro = e == EROFS || e == EACCES || e == EPERM;
	char key[600];

	pthread_mutex_lock(&dc->lock);
	dc->st.write_errors++;
	if (full || ro) {
		dc->degraded_until =
		    ro ? INT64_MAX : aprfs_now_ns(CLOCK_MONOTONIC) + NOSPACE_RETRY_NS;
		dc->st.degraded_errno = (uint64_t)e;
	}
	pthread_mutex_unlock(&dc->lock);
	snprintf(key, sizeof(key), "diskcache %s: %d", dc->dir, e);
	if (full || ro)
		aprfs_log_once(APRFS_LOG_WARN, key,
			       "disk cache %s: %s: %s; not writing to it (%s), serving from "
			       "memory",
			       dc->dir, what, strerror(e),
			       full ? "retrying every minute" : "until restarted");
	else
		aprfs_log_once(APRFS_LOG_WARN, key,
			       "disk cache %s: %s: %s; records not written", dc->dir, what,
			       strerror(e));
}

/* ---- the writer ----------------------------------------------------------------------------
 */

static void free_jobs(dc_job *j)
{
	while (j) {
		dc_job *next = j->next;
		free(j);
		j = next;
	}
}

static void seal(aprfs_diskcache *dc);
static int wanted(aprfs_diskcache *dc, int64_t now);

/* Write a batch (the writer thread, without the lock). */
static void write_batch(aprfs_diskcache *dc, dc_job *jobs, size_t n)
{
	const char *what = "write";
	int rc;

	pthread_mutex_lock(&dc->lock);
	int off = dc_writes_off_locked(dc);
	if (off)
		dc_not_persisted_locked(dc, n, "writing is off (full, read-only or stalled)");
	pthread_mutex_unlock(&dc->lock);
	if (off)
		return;
	if ((rc = dc_pack_append(dc, jobs, &what)) != 0) {
		dc_write_failed(dc, what, -rc);
		pthread_mutex_lock(&dc->lock);
		dc_not_persisted_locked(dc, n, "a write failed");
		pthread_mutex_unlock(&dc->lock);
		seal(dc); /* what the pack holds so far (a full disk: the index is small) */
	} else {
		pthread_mutex_lock(&dc->lock);
		int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
		int due = dc->cur_off >= dc->pack_max ||
			  (atomic_load(&dc->peers) && now - dc->cur_opened >= DC_PUBLISH_NS &&
			   wanted(dc, now));
		pthread_mutex_unlock(&dc->lock);
		if (due)
			seal(dc);
	}
}

/* Whether another process waits for records (DIR/wanted touched recently); looked at every
 * WANTED_CHECK_NS at most (a metadata round trip on a shared file system). Holds the lock
 * (the writer thread's fields only). */
static int wanted(aprfs_diskcache *dc, int64_t now)
{
	struct stat st;

	if (now - dc->wanted_checked >= WANTED_CHECK_NS) {
		dc->wanted_checked = now;
		dc->wanted =
		    fstatat(dc->dirfd, "wanted", &st, 0) == 0 &&
		    aprfs_now_ns(CLOCK_REALTIME) -
			    ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec) <
			WANTED_FOR_NS;
	}
	return dc->wanted;
}

/* Whether our pack should be sealed now: stop, flush, idle long enough, or others are
 * waiting to see it. Holds the lock. */
static int seal_due(aprfs_diskcache *dc, int64_t now)
{
	if (dc->cur < 0)
		return 0;
	if (dc->stopping || dc->flushing)
		return 1;
	if (atomic_load(&dc->peers) && now - dc->cur_opened >= DC_PUBLISH_NS && wanted(dc, now))
		return 1;
	return now - dc->last_append >= (int64_t)dc->seal_idle_ms * 1000000;
}

static void seal(aprfs_diskcache *dc)
{
	const char *what = "seal";
	int rc = dc_pack_seal(dc, &what);

	if (rc != 0)
		dc_write_failed(dc, what, -rc);
}

/* Take up to BATCH_MAX bytes of jobs off the queue. Holds the lock. */
static dc_job *take(aprfs_diskcache *dc, size_t *count, size_t *bytes)
{
	dc_job *first = dc->head, *last = NULL;

	*count = *bytes = 0;
	for (dc_job *j = first; j && (*bytes == 0 || *bytes + j->len <= BATCH_MAX);
	     j = j->next) {
		last = j;
		*bytes += j->len;
		(*count)++;
	}
	if (!last)
		return NULL;
	dc->head = last->next;
	dc->tail = dc->head ? dc->tail : NULL;
	last->next = NULL;
	return first;
}

/* Sleep (holding the lock) until jobs come, stop or a flush is asked, or sealing is due. */
static void wait_for_work(aprfs_diskcache *dc)
{
	while (!dc->head && !dc->stopping && !dc->flushing) {
		int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
		if (seal_due(dc, now))
			return;
		int64_t wake = now + (dc->cur >= 0 ? 100000000ll : 1000000000ll);
		struct timespec ts = {wake / 1000000000, wake % 1000000000};
		pthread_cond_timedwait(&dc->work, &dc->lock, &ts);
	}
}

void *dc_writer_main(void *arg)
{
	aprfs_diskcache *dc = arg;
	size_t n, bytes;

	pthread_mutex_lock(&dc->lock);
	for (;;) {
		wait_for_work(dc);
		dc_job *jobs = take(dc, &n, &bytes);
		int stop = !jobs && dc->stopping,
		    due = !jobs && seal_due(dc, aprfs_now_ns(CLOCK_MONOTONIC));
		dc->writing = 1;
		pthread_mutex_unlock(&dc->lock);
		if (jobs)
			write_batch(dc, jobs, n);
		else if (due)
			seal(dc);
		if (stop)
			dc_pack_compact(dc);
		free_jobs(jobs);
		pthread_mutex_lock(&dc->lock);
		dc->st.queued_bytes -= bytes;
		dc->writing = 0;
		dc->progress = aprfs_now_ns(CLOCK_MONOTONIC);
		if (!jobs && dc->cur < 0)
			dc->flushing = 0;
		pthread_cond_broadcast(&dc->space);
		pthread_cond_broadcast(&dc->idle);
		if (stop)
			break;
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* ---- put, drop, flush ------------------------------------------------------------------ */

/* 1 if a job of len bytes may join the queue now; convert waits for room while the writer
 * makes progress; the mount does not. Holds the lock. */
static int queue_room(aprfs_diskcache *dc, size_t len, int wait)
{
	for (;;) {
		if (dc_writes_off_locked(dc) || dc->stopping)
			return 0;
		/* one job larger than the whole queue still goes when the queue is empty */
		if (dc->st.queued_bytes + len <= dc->queue_cap || !dc->st.queued_bytes)
			return 1;
		int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
		if (!wait || now - dc->progress > STUCK_NS)
			return 0;
		int64_t at = now + 100000000ll;
		struct timespec ts = {at / 1000000000, at % 1000000000};
		pthread_cond_timedwait(&dc->space, &dc->lock, &ts);
	}
}

static void put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data, size_t len,
		uint32_t crc, int wait)
{
	dc_job *j = len <= DC_REC_MAX ? malloc(sizeof(*j) + len) : NULL;

	pthread_mutex_lock(&dc->lock);
	if (!dc->head && !dc->writing)
		dc->progress = aprfs_now_ns(CLOCK_MONOTONIC);
	if (!j || !queue_room(dc, len, wait)) {
		dc_not_persisted_locked(dc, 1,
					dc_writes_off_locked(dc)
					    ? "writing is off (full, read-only or stalled)"
					    : "the disk is too slow (the write queue is full)");
		pthread_mutex_unlock(&dc->lock);
		free(j);
		return;
	}
	*j = (dc_job){.key = *key, .data = (uint8_t *)(j + 1), .len = len, .crc = crc};
	memcpy(j->data, data, len);
	if (dc->tail)
		dc->tail->next = j;
	else
		dc->head = j;
	dc->tail = j;
	dc->st.queued_bytes += len;
	pthread_cond_signal(&dc->work);
	pthread_mutex_unlock(&dc->lock);
}

void aprfs_diskcache_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data,
			 size_t len, uint32_t crc, int claimed)
{
	(void)claimed; /* a range claim lives until it goes stale or we close */
	put(dc, key, data, len, crc, dc->wait_when_full);
}

void dc_put_wait(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data, size_t len,
		 uint32_t crc)
{
	put(dc, key, data, len, crc, 1);
}

void aprfs_diskcache_drop(aprfs_diskcache *dc, const aprfs_dc_key *key, int claimed)
{
	(void)dc;
	(void)key;
	(void)claimed;
}

/* Everything queued written and sealed (visible to every process), unless the writer stops
 * making progress (a stalled disk) for STUCK_NS. */
void aprfs_diskcache_flush(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	dc->flushing = 1;
	dc->progress = aprfs_now_ns(CLOCK_MONOTONIC);
	pthread_cond_signal(&dc->work);
	while ((dc->head || dc->writing || dc->flushing) && dc->started &&
	       aprfs_now_ns(CLOCK_MONOTONIC) - dc->progress < STUCK_NS) {
		int64_t at = aprfs_now_ns(CLOCK_MONOTONIC) + 100000000ll;
		struct timespec ts = {at / 1000000000, at % 1000000000};
		pthread_cond_timedwait(&dc->idle, &dc->lock, &ts);
	}
	pthread_mutex_unlock(&dc->lock);
}
