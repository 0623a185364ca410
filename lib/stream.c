/* stream.c - aprfs_file_stream(): worker threads claim pieces in order and fill a ring of
 * slots; the calling thread hands finished pieces to the sink in order and frees their
 * slots. A piece waits for its slot, so at most `slots` pieces exist at once. */
#include "stream.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

enum { SLOT_FREE, SLOT_BUSY, SLOT_READY };

typedef struct slot {
	uint8_t *buf;
	size_t len;
	uint64_t piece;
	int state;
} slot;

typedef struct stream {
	aprfs_file *f;
	aprfs_cache *cache;
	uint64_t size, npieces;
	slot *slots;
	unsigned nslots;
	pthread_mutex_t lock;
	pthread_cond_t changed;
	uint64_t next;	   /* next piece a worker takes */
	uint64_t written;  /* pieces handed to the sink */
	atomic_int failed; /* stop everything: the first error is in err */
	aprfs_err err;
	aprfs_cancel cancel; /* long passes give up once failed is set */
} stream;

static int stream_failed(void *arg)
{
	return atomic_load(&((stream *)arg)->failed);
}

static void fail(stream *s, const aprfs_err *e)
{
	pthread_mutex_lock(&s->lock);
	if (!atomic_exchange(&s->failed, 1))
		s->err = *e;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
}

/* Claim the next piece and wait until its slot is free: 0 and *p, or -1 when done. */
static int claim(stream *s, uint64_t *p)
{
	pthread_mutex_lock(&s->lock);
	*p = s->next;
	if (*p >= s->npieces || atomic_load(&s->failed)) {
		pthread_mutex_unlock(&s->lock);
		return -1;
	}
	s->next++;
	slot *sl = &s->slots[*p % s->nslots];
	while (!atomic_load(&s->failed) &&
	       (sl->state != SLOT_FREE || *p >= s->written + s->nslots))
		pthread_cond_wait(&s->changed, &s->lock);
	sl->state = SLOT_BUSY;
	sl->piece = *p;
	pthread_mutex_unlock(&s->lock);
	return atomic_load(&s->failed) ? -1 : 0;
}

static void *worker(void *arg)
{
	stream *s = arg;
	uint64_t p;

	while (claim(s, &p) == 0) {
		slot *sl = &s->slots[p % s->nslots];
		aprfs_err e = {0};
		uint64_t off = p * APRFS_STREAM_PIECE;
		ssize_t n = aprfs_file_read(s->f, s->cache, &s->cancel, off, APRFS_STREAM_PIECE,
					    sl->buf, &e);
		if (n <= 0) {
			if (n == 0)
				aprfs_fail(&e, EIO, "short read at %llu",
					   (unsigned long long)off);
			fail(s, &e);
			break;
		}
		pthread_mutex_lock(&s->lock);
		sl->len = (size_t)n;
		sl->state = SLOT_READY;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
	return NULL;
}

/* The calling thread: each piece, in order, to the sink. */
static void drain(stream *s, aprfs_sink_fn sink, void *ctx)
{
	for (uint64_t p = 0; p < s->npieces; p++) {
		slot *sl = &s->slots[p % s->nslots];
		aprfs_err e = {0};

		pthread_mutex_lock(&s->lock);
		while (!atomic_load(&s->failed) && !(sl->state == SLOT_READY && sl->piece == p))
			pthread_cond_wait(&s->changed, &s->lock);
		pthread_mutex_unlock(&s->lock);
		if (atomic_load(&s->failed))
			return;
		if (sink(ctx, sl->buf, sl->len, p * APRFS_STREAM_PIECE, &e) != 0) {
			fail(s, &e);
			return;
		}
		pthread_mutex_lock(&s->lock);
		sl->state = SLOT_FREE;
		s->written = p + 1;
		pthread_cond_broadcast(&s->changed);
		pthread_mutex_unlock(&s->lock);
	}
}

static void stream_free(stream *s)
{
	for (unsigned i = 0; s->slots && i < s->nslots; i++)
		free(s->slots[i].buf);
	free(s->slots);
	pthread_cond_destroy(&s->changed);
	pthread_mutex_destroy(&s->lock);
}

int aprfs_file_stream(aprfs_file *f, aprfs_cache *cache, unsigned threads, aprfs_sink_fn sink,
		      void *ctx, aprfs_err *err)
{
	stream s = {.f = f, .cache = cache, .size = aprfs_file_size(f)};
	pthread_t *th;
	unsigned started = 0;
	int rc = 0;

	threads = threads ? threads : 1;
	s.npieces = (s.size + APRFS_STREAM_PIECE - 1) / APRFS_STREAM_PIECE;
	s.nslots = 2 * threads;
	s.cancel = (aprfs_cancel){stream_failed, &s};
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.changed, NULL);
	s.slots = calloc(s.nslots, sizeof(*s.slots));
	th = calloc(threads, sizeof(*th));
	for (unsigned i = 0; s.slots && i < s.nslots; i++)
		if (!(s.slots[i].buf = malloc(APRFS_STREAM_PIECE)))
			break;
	if (!s.slots || !th || !s.slots[s.nslots - 1].buf) {
		free(th);
		stream_free(&s);
		return aprfs_fail(err, ENOMEM, "out of memory for %u pieces of %u bytes",
				  2 * threads, APRFS_STREAM_PIECE);
	}
	for (unsigned i = 0; i < threads; i++)
		started += pthread_create(&th[started], NULL, worker, &s) == 0;
	if (started == 0) {
		aprfs_err e;
		aprfs_fail(&e, EAGAIN, "cannot start a worker thread");
		fail(&s, &e);
	}
	drain(&s, sink, ctx);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (atomic_load(&s.failed)) {
		if (err)
			*err = s.err;
		rc = -(s.err.code ? s.err.code : EIO);
	}
	free(th);
	stream_free(&s);
	return rc;
}
