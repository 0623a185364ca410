/* diskcache_io.c - reads from the cache directory that a reader can abandon: each pread runs
 * on a small pool of I/O threads and the reader waits at most read_timeout_ms for it. Past
 * that the cache is set aside: lookups and writes stop for DC_ASIDE_NS (one log line, the
 * "stalls" metric), the reader computes from the source instead, and the thread stuck in
 * the storage stays stuck alone: nothing else waits for it, close included (dc_io_stop gives
 * up at its deadline and the handle is then leaked rather than freed under that thread). */
#define _GNU_SOURCE /* pthread_timedjoin_np */
#include "cache/diskcache_io.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "cache/diskcache_table.h"

#define IO_THREADS  4
#define RA_WINDOW   (16ull << 20) /* a read from the disk asks for this much ahead */
#define SPARE_BUFS  16
#define MAPPED_BUF  (256u << 10)	/* buffers this large are mapped, populated */
#define DC_ASIDE_NS (30 * 1000000000ll) /* a stalled cache is retried after this */

typedef struct io_req {
	struct io_req *next;
	int fd;
	dc_pack *pack;
	uint64_t off;
	size_t n;
	uint8_t *buf;
	int advise; /* a read-ahead hint (posix_fadvise), not a read: nobody waits for it */
	int done, err, refs; /* refs: the waiter and the I/O thread, whoever is last frees */
} io_req;

struct dc_io {
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	io_req *head, *tail;
	int stop, nthreads;
	pthread_t th[IO_THREADS];
	aprfs_diskcache *dc;
	uint8_t *spare[SPARE_BUFS];
	int nspare;
};

/* ---- buffers: kept for reuse (a fresh buffer per read would fault its pages in) ---- */

/* A buffer of n bytes; its capacity is stored just before it. A large one (a window) is
 * mapped with its pages populated at once: faulting them in one by one as the read fills it
 * costs more than the read (each fault is an exit on a VM). */
static uint8_t *buf_get(dc_io *io, size_t n)
{
	uint8_t *base;

	for (int i = 0; i < io->nspare; i++) {
		size_t cap;
		memcpy(&cap, io->spare[i] - 16, sizeof(cap));
		if (cap >= n) {
			uint8_t *b = io->spare[i];
			io->spare[i] = io->spare[--io->nspare];
			return b;
		}
	}
	if (n + 16 >= MAPPED_BUF) {
		base = mmap(NULL, n + 16, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		base = base == MAP_FAILED ? NULL : base;
	} else {
		base = malloc(n + 16);
	}
	if (!base)
		return NULL;
	memcpy(base, &n, sizeof(n));
	return base + 16;
}

void dc_io_buf_free(uint8_t *buf)
{
	size_t cap;

	if (!buf)
		return;
	memcpy(&cap, buf - 16, sizeof(cap));
	if (cap + 16 >= MAPPED_BUF)
		munmap(buf - 16, cap + 16);
	else
		free(buf - 16);
}

static void buf_put(dc_io *io, uint8_t *b)
{
	if (!b)
		return;
	if (io->nspare < SPARE_BUFS)
		io->spare[io->nspare++] = b;
	else
		dc_io_buf_free(b);
}

static void req_unref(dc_io *io, io_req *r)
{
	if (--r->refs == 0) {
		buf_put(io, r->buf);
		free(r);
	}
}

/* Read the request's bytes: 0, an errno, or ENODATA when the file ends first (truncated). */
static int read_all(const io_req *r)
{
	ssize_t n = aprfs_pread_upto(r->fd, r->buf, r->n, r->off);

	if (n < 0)
		return (int)-n;
	return (size_t)n < r->n ? ENODATA : 0;
}

/* A read that went to the storage: the records after it are likely next (a view is read
 * in order, and its records were appended in order), so ask the kernel to read the pack
 * ahead, asynchronously, when this read is past the middle of the last window. */
static void read_ahead(dc_pack *k, int fd, uint64_t end)
{
	uint64_t ra = atomic_load(&k->ra_end);

	if (end + RA_WINDOW / 2 < ra || end > ra + RA_WINDOW)
		return;
	atomic_store(&k->ra_end, end + RA_WINDOW);
	posix_fadvise(fd, (off_t)end, (off_t)RA_WINDOW, POSIX_FADV_WILLNEED);
}

static void *io_main(void *arg)
{
	dc_io *io = arg;

	pthread_mutex_lock(&io->lock);
	for (;;) {
		while (!io->head && !io->stop)
			pthread_cond_wait(&io->work, &io->lock);
		io_req *r = io->head;
		if (!r)
			break;
		io->head = r->next;
		io->tail = io->head ? io->tail : NULL;
		pthread_mutex_unlock(&io->lock);
		if (r->advise) {
			if (!io->stop)
				posix_fadvise(r->fd, (off_t)r->off, (off_t)r->n,
					      POSIX_FADV_WILLNEED);
			dc_pack_put(r->pack);
			pthread_mutex_lock(&io->lock);
			req_unref(io, r);
			continue;
		}
		int err = io->stop ? ECANCELED : read_all(r);
		if (!err)
			read_ahead(r->pack, r->fd, r->off + r->n);
		dc_pack_put(r->pack);
		pthread_mutex_lock(&io->lock);
		r->err = err;
		r->done = 1;
		req_unref(io, r);
		pthread_cond_broadcast(&io->done);
	}
	pthread_mutex_unlock(&io->lock);
	return NULL;
}

int dc_io_start(aprfs_diskcache *dc)
{
	dc_io *io = calloc(1, sizeof(*io));
	pthread_condattr_t ca;

	if (!io)
		return -ENOMEM;
	io->dc = dc;
	pthread_mutex_init(&io->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&io->done, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&io->work, NULL);
	for (int i = 0; i < IO_THREADS; i++)
		if (pthread_create(&io->th[io->nthreads], NULL, io_main, io) == 0)
			io->nthreads++;
	dc->io = io;
	return io->nthreads ? 0 : -EAGAIN;
}

int dc_io_stop(aprfs_diskcache *dc, int64_t deadline)
{
	dc_io *io = dc->io;
	int stuck = 0;

	if (!io)
		return 0;
	pthread_mutex_lock(&io->lock);
	io->stop = 1;
	pthread_cond_broadcast(&io->work);
	pthread_mutex_unlock(&io->lock);
	for (int i = 0; i < io->nthreads; i++) {
		struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
		if (pthread_timedjoin_np(io->th[i], NULL, &ts) != 0) {
			pthread_detach(io->th[i]);
			stuck = 1;
		}
	}
	if (stuck)
		return -1;
	while (io->nspare)
		dc_io_buf_free(io->spare[--io->nspare]);
	pthread_cond_destroy(&io->work);
	pthread_cond_destroy(&io->done);
	pthread_mutex_destroy(&io->lock);
	free(io);
	dc->io = NULL;
	return 0;
}

/* ---- the set-aside state ------------------------------------------------------------- */

int dc_stalled(aprfs_diskcache *dc)
{
	return atomic_load(&dc->stalled_until) > aprfs_now_ns(CLOCK_MONOTONIC);
}

/* Set the cache aside for DC_ASIDE_NS: one log line, a metric. */
static void set_aside(aprfs_diskcache *dc, const char *why)
{
	char key[600];

	pthread_mutex_lock(&dc->lock);
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
	int fresh = atomic_load(&dc->stalled_until) <= now;
	if (fresh) {
		atomic_store(&dc->stalled_until, now + DC_ASIDE_NS);
		dc->st.stalls++;
	}
	pthread_mutex_unlock(&dc->lock);
	snprintf(key, sizeof(key), "diskcache stalled %s", dc->dir);
	if (fresh)
		aprfs_log_once(APRFS_LOG_WARN, key,
			       "disk cache %s: %s; set aside for %lld s (computing from the "
			       "source, not writing), then retried",
			       dc->dir, why, DC_ASIDE_NS / 1000000000);
}

/* ---- a read ---------------------------------------------------------------------------- */

/* Queue the read, or with advise the read-ahead hint (the pack's reference is the
 * request's now). */
static io_req *submit(dc_io *io, dc_pack *k, uint64_t off, size_t n, int advise)
{
	io_req *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	pthread_mutex_lock(&io->lock);
	*r = (io_req){.fd = k->fd,
		      .pack = k,
		      .off = off,
		      .n = n,
		      .buf = advise ? NULL : buf_get(io, n),
		      .advise = advise,
		      .refs = advise ? 1 : 2};
	if (!r->buf && !advise) {
		pthread_mutex_unlock(&io->lock);
		free(r);
		return NULL;
	}
	if (io->tail)
		io->tail->next = r;
	else
		io->head = r;
	io->tail = r;
	pthread_cond_signal(&io->work);
	pthread_mutex_unlock(&io->lock);
	return r;
}

void dc_io_prefetch(aprfs_diskcache *dc, dc_pack *k, uint64_t off, uint64_t end)
{
	uint64_t ra = atomic_load(&k->ra_end), to = end + RA_WINDOW, from;

	to = to < k->size ? to : k->size;
	from = ra > off ? ra : off; /* (what lies before ra was asked for already) */
	/* (far enough ahead already, or another reader just moved it) */
	if (end + RA_WINDOW / 2 <= ra || from >= to ||
	    !atomic_compare_exchange_strong(&k->ra_end, &ra, to) ||
	    !submit(dc->io, k, from, (size_t)(to - from), 1))
		dc_pack_put(k);
}

void dc_io_recycle(aprfs_diskcache *dc, uint8_t *buf)
{
	pthread_mutex_lock(&dc->io->lock);
	buf_put(dc->io, buf);
	pthread_mutex_unlock(&dc->io->lock);
}

int dc_io_read(aprfs_diskcache *dc, dc_pack *k, uint64_t off, size_t n, uint8_t **out,
	       const char **why)
{
	dc_io *io = dc->io;
	int64_t deadline =
	    aprfs_now_ns(CLOCK_MONOTONIC) + (int64_t)dc->read_timeout_ms * 1000000;
	struct timespec ts = {deadline / 1000000000, deadline % 1000000000};
	io_req *r = submit(io, k, off, n, 0);

	*why = NULL;
	if (!r) {
		dc_pack_put(k);
		return -1; /* (out of memory: a miss, nothing wrong with the pack) */
	}
	pthread_mutex_lock(&io->lock);
	while (!r->done && pthread_cond_timedwait(&io->done, &io->lock, &ts) != ETIMEDOUT)
		;
	int done = r->done, err = r->err;
	if (done && !err) {
		*out = r->buf;
		r->buf = NULL;
	}
	req_unref(io, r);
	pthread_mutex_unlock(&io->lock);
	if (!done) {
		set_aside(dc, "a read took longer than the deadline (stalled storage?)");
		return -2;
	}
	if (err == ENODATA) {
		*why = "short read (truncated pack)";
		return -1;
	}
	if (err) {
		char msg[128];
		snprintf(msg, sizeof(msg), "a read failed: %s", strerror(err));
		set_aside(dc, msg);
		return -2;
	}
	return 0;
}
