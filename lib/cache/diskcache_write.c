/* diskcache_write.c - the writer thread: it drains the queue (diskcache_queue.c) in batches
 * into its pack (diskcache_pack.c), seals the pack (size limit, idle, flush, close), merges
 * at close the small packs it sealed, and writes CACHEDIR.TAG when it starts.
 *
 * Why a writer thread: a cold read must not pay for writing what it just computed, and a
 * storage node that stops answering a write must stall this thread alone, never a reader
 * nor the mount (so nothing is written to DIR before the mount is up). While another
 * process waits for records (it touched DIR/wanted, diskcache.c), the pack is sealed once it
 * is DC_PUBLISH_NS old, so that the other sees its records soon (processes load sealed packs
 * only); otherwise packs grow to their size limit. */
#include "cache/diskcache_write.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "cache/diskcache_pack.h"
#include "cache/diskcache_queue.h"

#define DC_PUBLISH_NS	(100000000ll)  /* seal this often while others wait */
#define WANTED_FOR_NS	(2000000000ll) /* DIR/wanted this young: someone waits */
#define WANTED_CHECK_NS (50000000ll)   /* how often DIR/wanted is looked at */
#define BATCH_MAX	(8u << 20)     /* bytes per write */

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

/* A batch the disk had no room for, again one record at a time: the records that fit are
 * kept (and sealed with the pack). 0, or the error that stopped it with *left the records
 * not written. */
static int append_each(aprfs_diskcache *dc, dc_job *jobs, const char **what, size_t *left)
{
	for (dc_job *j = jobs; j; j = j->next, --*left) {
		dc_job *next = j->next;
		j->next = NULL;
		int rc = dc_pack_append(dc, j, what);
		j->next = next;
		if (rc)
			return rc;
	}
	return 0;
}

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
	rc = dc_pack_append(dc, jobs, &what);
	if ((rc == -ENOSPC || rc == -EDQUOT) && n > 1)
		rc = append_each(dc, jobs, &what, &n);
	if (rc != 0) {
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

/* The standard tag (bford.info/cachedir) that tells backup tools to skip the directory. */
static void write_cachedir_tag(int dirfd)
{
	static const char tag[] = "Signature: 8a477f597d28d172789f06886806bc55\n"
				  "# This file is a cache directory tag created by aprfs.\n"
				  "# Entries are recomputed when missing; see aprfs' README.\n";
	int fd = openat(dirfd, "CACHEDIR.TAG", O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd >= 0) {
		if (aprfs_pwrite_full(fd, tag, sizeof(tag) - 1, 0) != 0)
			unlinkat(dirfd, "CACHEDIR.TAG", 0);
		close(fd);
	}
}

void *dc_writer_main(void *arg)
{
	aprfs_diskcache *dc = arg;
	size_t n, bytes;

	write_cachedir_tag(dc->dirfd);
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
