/* diskcache_write.c - writing entries: the bounded queue put() fills, the writer thread that
 * drains it (encode, make room, temporary file, rename, release the claim), its periodic
 * work (peers, rescans), and the degraded state a full or read-only disk puts writing in.
 *
 * Why a writer thread: a cold read must not pay for compressing and writing what it just
 * computed. put() copies the bytes into a queue bounded in bytes; when the queue is full the
 * mount drops the write (the entry is simply computed again next time) and convert waits.
 * Entries are not fsync'ed: a crash or power loss can leave a torn entry, which the next
 * reader detects (sizes, checksums) and deletes, so syncing would buy nothing but latency. */
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

#define NOSPACE_RETRY_NS (60 * 1000000000ll) /* a full disk may get space back */

/* ---- the degraded state -------------------------------------------------------------- */

int dc_writes_off_locked(const aprfs_diskcache *dc)
{
	return dc->degraded_until > dc_now_ns(CLOCK_MONOTONIC);
}

int dc_writes_off(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	int off = dc_writes_off_locked(dc);
	pthread_mutex_unlock(&dc->lock);
	return off;
}

void dc_write_failed(aprfs_diskcache *dc, const char *what, int e)
{
	int full = e == ENOSPC || e == EDQUOT;
	int ro = e == EROFS || e == EACCES || e == EPERM;
	char key[600];

	pthread_mutex_lock(&dc->lock);
	dc->st.write_errors++;
	dc->st.writes_dropped++;
	if (full || ro) {
		dc->degraded_until =
		    ro ? INT64_MAX : dc_now_ns(CLOCK_MONOTONIC) + NOSPACE_RETRY_NS;
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
		aprfs_log_once(APRFS_LOG_WARN, key, "disk cache %s: %s: %s; entry not written",
			       dc->dir, what, strerror(e));
}

/* ---- the writer ----------------------------------------------------------------------- */

/* Give a claim up: nobody should wait for an entry that will not come. */
static void release(aprfs_diskcache *dc, const aprfs_dc_key *key, int claimed)
{
	char stem[DC_NAME_MAX];

	if (!claimed)
		return;
	dc_entry_stem(key, stem);
	dc_claim_release(dc, stem, 0);
}

int dc_write_all(int fd, const uint8_t *p, size_t n)
{
	for (size_t done = 0; done < n;) {
		ssize_t w = write(fd, p + done, n - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -1;
		done += (size_t)w;
	}
	return 0;
}

/* A file of our own to write the entry into: the claim's (it holds our token and is linked
 * as the claim's name, see diskcache_claim.c), else a new temporary name. fd, or -errno. */
static int open_tmp(aprfs_diskcache *dc, const char *stem, int claimed, char *tmp, size_t size)
{
	char sub[3] = {stem[0], stem[1], 0};
	int fd;

	if (claimed) {
		dc_claim_tmp_name(dc, stem, tmp, size);
		fd = openat(dc->dirfd, tmp,
			    O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd >= 0 || errno != ENOENT)
			return fd >= 0 ? fd : -errno;
		/* removed as stale meanwhile: write it as if unclaimed */
	}
	snprintf(tmp, size, "%s/.tmp.%s.%s.%ld.%u", sub, stem + 3, dc->host, (long)dc->pid,
		 atomic_fetch_add(&dc->seq, 1));
	fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0 && errno == ENOENT) {
		if (mkdirat(dc->dirfd, sub, 0755) != 0 && errno != EEXIST)
			return -errno;
		fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	return fd >= 0 ? fd : -errno;
}

/* Write the file under a temporary name in its subdirectory, then rename it into place:
 * readers see no entry or the whole entry, on every host (rename is atomic, and NFS's
 * close-to-open consistency makes the bytes visible to whoever opens the name after).
 * Releases the claim, whatever happens. 0, or -errno with *what naming the step. */
static int publish(aprfs_diskcache *dc, const char *stem, int claimed, const uint8_t *buf,
		   size_t n, const char **what)
{
	char tmp[DC_NAME_MAX + 128], name[DC_NAME_MAX + 8];
	int fd, e;

	snprintf(name, sizeof(name), "%s.ent", stem);
	*what = "create";
	fd = open_tmp(dc, stem, claimed, tmp, sizeof(tmp));
	if (fd < 0) {
		if (claimed)
			dc_claim_release(dc, stem, 0);
		return fd;
	}
	*what = "write";
	e = dc_write_all(fd, buf, n) == 0 ? 0 : errno;
	if (close(fd) != 0 && !e)
		e = errno;
	*what = e ? *what : "rename";
	if (!e && renameat(dc->dirfd, tmp, dc->dirfd, name) != 0)
		e = errno;
	/* (a failed claim's release removes its file too: release before unlinking tmp, or
	 * the claim's name would stay, naming a file that is not ours any more) */
	if (claimed)
		dc_claim_release(dc, stem, !e);
	if (e)
		unlinkat(dc->dirfd, tmp, 0);
	return -e;
}

/* Scan (and evict) when the entry would not fit our estimate, or when due. */
static void make_room(aprfs_diskcache *dc, uint64_t charge)
{
	int64_t now = dc_now_ns(CLOCK_MONOTONIC);

	pthread_mutex_lock(&dc->lock);
	int due =
	    !dc->scanned || dc->st.bytes_on_disk + charge > dc->budget || now >= dc->next_scan;
	pthread_mutex_unlock(&dc->lock);
	if (due) {
		dc_scan(dc, charge);
		dc->next_scan = now + DC_RESCAN_NS;
	}
}

static void count_written(aprfs_diskcache *dc, const dc_job *j, size_t n)
{
	pthread_mutex_lock(&dc->lock);
	dc->st.entries_written++;
	dc->st.bytes_written += n;
	dc->st.bytes_on_disk += dc_charge(n);
	if (j->key.kind == APRFS_DC_CHUNK && j->key.variant < APRFS_VARIANT_COUNT) {
		dc->st.content_bytes[j->key.variant] += j->len;
		dc->st.stored_bytes[j->key.variant] += n;
	}
	pthread_mutex_unlock(&dc->lock);
}

static void count_dropped(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	dc->st.writes_dropped++;
	pthread_mutex_unlock(&dc->lock);
}

/* The entry file for a job, or NULL (counted) when it is not to be written. */
static uint8_t *encode_job(aprfs_diskcache *dc, const dc_job *j, const char *stem, size_t *n)
{
	char name[DC_NAME_MAX + 8];
	struct stat st;
	uint8_t *buf = NULL;
	int rc;

	snprintf(name, sizeof(name), "%s.ent", stem);
	if (dc_writes_off(dc))
		count_dropped(dc);
	else if (fstatat(dc->dirfd, name, &st, 0) == 0)
		; /* another process published it meanwhile: the same bytes */
	else if ((rc = dc_encode(&j->key, j->data, j->len, j->crc, &buf, n)) != 0)
		dc_write_failed(dc, "encode", -rc);
	return buf;
}

/* One queued job, on the writer thread. */
static void write_job(aprfs_diskcache *dc, const dc_job *j)
{
	char stem[DC_NAME_MAX];
	const char *what;
	size_t n = 0;
	int rc;

	dc_entry_stem(&j->key, stem);
	uint8_t *buf = encode_job(dc, j, stem, &n);
	if (buf)
		make_room(dc, dc_charge(n));
	if (!buf || dc_charge(n) > dc->budget) { /* (or bigger than the whole budget) */
		if (buf)
			count_dropped(dc);
		release(dc, &j->key, j->claimed);
	} else if ((rc = publish(dc, stem, j->claimed, buf, n, &what)) == 0) {
		count_written(dc, j, n);
	} else {
		dc_write_failed(dc, what, -rc);
	}
	free(buf);
}

/* What the writer does between jobs: count the other processes, rescan when due. */
static void periodic(aprfs_diskcache *dc)
{
	int64_t now = dc_now_ns(CLOCK_MONOTONIC);

	if (now >= dc->next_peer_check)
		dc_peers_check(dc);
	if (now >= dc->next_scan)
		make_room(dc, 0);
}

/* Sleep (holding dc->lock) until a job comes, stop is asked, or periodic work is due. */
static void wait_for_work(aprfs_diskcache *dc)
{
	while (!dc->head && !dc->stopping) {
		int64_t wake =
		    dc->next_scan < dc->next_peer_check ? dc->next_scan : dc->next_peer_check;
		struct timespec ts = {wake / 1000000000, wake % 1000000000};
		if (pthread_cond_timedwait(&dc->work, &dc->lock, &ts) == ETIMEDOUT) {
			pthread_mutex_unlock(&dc->lock);
			periodic(dc);
			pthread_mutex_lock(&dc->lock);
		}
	}
}

void *dc_writer_main(void *arg)
{
	aprfs_diskcache *dc = arg;

	make_room(dc, 0); /* the first scan: how much the directory holds */
	pthread_mutex_lock(&dc->lock);
	for (;;) {
		wait_for_work(dc);
		dc_job *j = dc->head;
		if (!j)
			break; /* stopping, and everything is written */
		dc->head = j->next;
		dc->tail = dc->head ? dc->tail : NULL;
		dc->writing = 1;
		pthread_mutex_unlock(&dc->lock);
		write_job(dc, j);
		periodic(dc);
		pthread_mutex_lock(&dc->lock);
		dc->st.queued_bytes -= j->len;
		dc->writing = 0;
		pthread_cond_broadcast(&dc->space);
		if (!dc->head)
			pthread_cond_broadcast(&dc->idle);
		free(j);
	}
	pthread_mutex_unlock(&dc->lock);
	return NULL;
}

/* 1 if the job may join the queue now; waits for room or gives up (0). Holds dc->lock. */
static int queue_room(aprfs_diskcache *dc, size_t len)
{
	for (;;) {
		if (dc_writes_off_locked(dc) || dc->stopping)
			return 0;
		/* one job larger than the whole queue still goes when the queue is empty */
		if (dc->st.queued_bytes + len <= dc->queue_cap || !dc->st.queued_bytes)
			return 1;
		if (!dc->wait_when_full)
			return 0;
		pthread_cond_wait(&dc->space, &dc->lock);
	}
}

void aprfs_diskcache_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data,
			 size_t len, uint32_t crc, int claimed)
{
	dc_job *j = malloc(sizeof(*j) + len);

	pthread_mutex_lock(&dc->lock);
	if (!j || !queue_room(dc, len)) {
		dc->st.writes_dropped++;
		pthread_mutex_unlock(&dc->lock);
		free(j);
		release(dc, key,
			claimed); /* nobody should wait for an entry that will not come */
		return;
	}
	j->next = NULL;
	j->key = *key;
	j->data = (uint8_t *)(j + 1);
	memcpy(j->data, data, len);
	j->len = len;
	j->crc = crc;
	j->claimed = claimed;
	if (dc->tail)
		dc->tail->next = j;
	else
		dc->head = j;
	dc->tail = j;
	dc->st.queued_bytes += len;
	pthread_cond_signal(&dc->work);
	pthread_mutex_unlock(&dc->lock);
}

void aprfs_diskcache_drop(aprfs_diskcache *dc, const aprfs_dc_key *key, int claimed)
{
	release(dc, key, claimed);
}

void aprfs_diskcache_flush(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	while (dc->head || dc->writing)
		pthread_cond_wait(&dc->idle, &dc->lock);
	pthread_mutex_unlock(&dc->lock);
}
