/* diskcache_queue.c - the queue that put() fills and the writer thread (diskcache_write.c)
 * drains, bounded in bytes: the memory budget that absorbs bursts; and the states that stop
 * writing: a full or read-only disk, a set-aside cache, a disk too slow to keep up.
 *
 * When the queue is full, the mount does not wait: the chunk is not persisted, counted and
 * said once in the log (convert waits instead, as long as the writer makes progress). */
#include "cache/diskcache_queue.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/log.h"

#define NOSPACE_RETRY_NS (60 * 1000000000ll) /* a full disk may get space back */
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

/* ---- put and flush ------------------------------------------------------------------ */

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

void dc_queue_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data, size_t len,
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

void dc_queue_flush(aprfs_diskcache *dc)
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
