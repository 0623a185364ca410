/* stream.c - aprfs_file_stream(): N threads (the caller and N - 1 more) claim pieces in
 * order into a ring of 2N slots, and whichever finds the oldest piece ready hands it to the
 * sink, one at a time, in order. At most 2N pieces exist at once. */
#include "file/stream.h"

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
	aprfs_sink_fn sink;
	void *ctx;
	uint64_t next;	   /* next piece a thread computes */
	uint64_t written;  /* pieces handed to the sink */
	int writing;	   /* a thread is in the sink (the write token) */
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

/* What a thread does next, decided under the lock. Writing comes first, since it frees a
 * slot; only one thread writes at a time (the token), so the sink sees pieces in order. */
enum step { STEP_WRITE, STEP_COMPUTE, STEP_WAIT, STEP_DONE };

static enum step next_step(stream *s)
{
	const slot *w = &s->slots[s->written % s->nslots];

	if (atomic_load(&s->failed) || s->written == s->npieces)
		return STEP_DONE;
	if (!s->writing && w->state == SLOT_READY && w->piece == s->written)
		return STEP_WRITE;
	/* piece next reuses the slot of piece next - nslots, written (and freed) already */
	if (s->next < s->npieces && s->next < s->written + s->nslots)
		return STEP_COMPUTE;
	return STEP_WAIT;
}

/* Piece p into its slot, through the range API; called without the lock. */
static int compute(stream *s, uint64_t p, aprfs_err *e)
{
	slot *sl = &s->slots[p % s->nslots];
	uint64_t off = p * APRFS_STREAM_PIECE;
	ssize_t n =
	    aprfs_file_read(s->f, s->cache, &s->cancel, off, APRFS_STREAM_PIECE, sl->buf, e);
	if (n == 0)
		aprfs_fail(e, EIO, "short read at %llu", (unsigned long long)off);
	sl->len = n > 0 ? (size_t)n : 0;
	return n > 0 ? 0 : -1;
}

/* Every thread, the caller's included, runs this loop: write the next piece if it is ready
 * and nobody is writing, else compute the next piece if the window has room, else wait.
 * With --threads 1 that is compute, write, compute, ... on one thread; with N, the write
 * is done by whichever thread finds the piece ready, so no thread sits idle waiting to
 * write while the cores have work. */
static void run(stream *s)
{
	pthread_mutex_lock(&s->lock);
	for (;;) {
		enum step st = next_step(s);
		aprfs_err e = {0};
		int rc;

		if (st == STEP_DONE)
			break;
		if (st == STEP_WAIT) {
			pthread_cond_wait(&s->changed, &s->lock);
			continue;
		}
		uint64_t p = st == STEP_WRITE ? s->written : s->next++;
		slot *sl = &s->slots[p % s->nslots];
		if (st == STEP_WRITE)
			s->writing = 1;
		else
			*sl = (slot){.buf = sl->buf, .piece = p, .state = SLOT_BUSY};
		pthread_mutex_unlock(&s->lock);
		rc = st == STEP_WRITE
			 ? s->sink(s->ctx, sl->buf, sl->len, p * APRFS_STREAM_PIECE, &e)
			 : compute(s, p, &e);
		if (rc != 0)
			fail(s, &e);
		pthread_mutex_lock(&s->lock);
		if (st == STEP_WRITE) {
			s->writing = 0;
			sl->state = SLOT_FREE;
			s->written = p + 1;
		} else {
			sl->state = SLOT_READY;
		}
		pthread_cond_broadcast(&s->changed);
	}
	pthread_mutex_unlock(&s->lock);
}

static void *worker(void *arg)
{
	run(arg);
	return NULL;
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
	stream s = {
	    .f = f, .cache = cache, .size = aprfs_file_size(f), .sink = sink, .ctx = ctx};
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
	for (unsigned i = 0; i + 1 < threads; i++)
		started += pthread_create(&th[started], NULL, worker, &s) == 0;
	run(&s); /* the caller is a thread too: alone, it computes and writes every piece */
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
