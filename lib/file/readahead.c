/* readahead.c - the read-ahead worker pool and the sequential-read detector. Workers only
 * call aprfs_file_warm(), so a job can never produce wrong bytes: at worst it computes a
 * chunk nobody reads, or fails and the reader computes (and reports) it itself. */
#include "file/readahead.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"

/* Reads that land within this distance of where the previous one ended still count as
 * sequential: the kernel sends read-ahead requests in parallel, so a FUSE thread may
 * see 256K before 128K. */
#define SEQ_SLACK (4u << 20)

typedef struct ra_job {
	aprfs_file *file;
	uint64_t chunk;
	const void *owner; /* NULL once cancelled: the worker just drops the reference */
	pid_t pid;	   /* the reader whose sequential reads queued it */
} ra_job;

/* A worker and the job it runs: what aprfs_ra_cancel and the job's cancel check see. */
typedef struct ra_worker {
	aprfs_ra *ra;
	pthread_t thread;
	const void *owner; /* of the running job, under ra->lock */
	atomic_int cancelled;
	aprfs_pid_watch reader;
	aprfs_cancel cancel; /* {job_cancelled, this} */
} ra_worker;

struct aprfs_ra {
	pthread_mutex_t lock;
	pthread_cond_t work; /* a job arrived or stop was set */
	pthread_cond_t idle; /* the queue emptied and no job runs */
	ra_job *ring;
	size_t cap, head, len;
	unsigned running;
	int stop;
	aprfs_cache *cache;
	const aprfs_cancel *pool_cancel;
	atomic_int stopping;
	aprfs_ra_stats stats;
	unsigned nthreads;
	ra_worker *workers;
};

/* A job is abandoned when the pool stops (or its owner says the whole mount is ending),
 * when its handle closes, and when the reader that queued it is gone: a killed reader's
 * page-cache reads never close its handle while they are in flight. */
static int job_cancelled(void *arg)
{
	ra_worker *w = arg;

	return atomic_load(&w->ra->stopping) || atomic_load(&w->cancelled) ||
	       aprfs_cancelled(w->ra->pool_cancel) || aprfs_pid_watch_gone(&w->reader);
}

static void run_job(aprfs_ra *ra, ra_worker *w, ra_job *job)
{
	aprfs_err err = {0};
	int rc = 0;

	if (job->owner) {
		aprfs_pid_watch_init(&w->reader, job->pid);
		rc = aprfs_file_warm(job->file, ra->cache, &w->cancel, job->chunk, &err);
	}
	if (rc < 0)
		aprfs_log(APRFS_LOG_DEBUG, "read-ahead of chunk %llu: %s",
			  (unsigned long long)job->chunk, err.msg);
	aprfs_file_unref(job->file);
	pthread_mutex_lock(&ra->lock);
	if (!job->owner)
		ra->stats.dropped++;
	else if (rc < 0)
		ra->stats.failed++;
	else
		ra->stats.warmed++;
	ra->running--;
	w->owner = NULL;
	atomic_store(&w->cancelled, 0);
	if (ra->len == 0 && ra->running == 0)
		pthread_cond_broadcast(&ra->idle);
	pthread_mutex_unlock(&ra->lock);
}

static void *worker(void *arg)
{
	ra_worker *w = arg;
	aprfs_ra *ra = w->ra;

	pthread_mutex_lock(&ra->lock);
	for (;;) {
		ra_job job;

		while (!ra->stop && ra->len == 0)
			pthread_cond_wait(&ra->work, &ra->lock);
		if (ra->stop)
			break;
		job = ra->ring[ra->head];
		ra->head = (ra->head + 1) % ra->cap;
		ra->len--;
		ra->running++;
		w->owner = job.owner;
		pthread_mutex_unlock(&ra->lock);
		run_job(ra, w, &job);
		pthread_mutex_lock(&ra->lock);
	}
	pthread_mutex_unlock(&ra->lock);
	return NULL;
}

aprfs_ra *aprfs_ra_new(unsigned threads, size_t queue_cap, aprfs_cache *cache,
		       const aprfs_cancel *pool_cancel)
{
	aprfs_ra *ra = calloc(1, sizeof(*ra));

	if (!ra)
		return NULL;
	ra->cap = queue_cap ? queue_cap : 1;
	ra->ring = calloc(ra->cap, sizeof(*ra->ring));
	ra->workers = calloc(threads ? threads : 1, sizeof(*ra->workers));
	ra->cache = cache;
	ra->pool_cancel = pool_cancel;
	pthread_mutex_init(&ra->lock, NULL);
	pthread_cond_init(&ra->work, NULL);
	pthread_cond_init(&ra->idle, NULL);
	if (!ra->ring || !ra->workers) {
		aprfs_ra_free(ra);
		return NULL;
	}
	for (unsigned i = 0; i < (threads ? threads : 1); i++) {
		ra_worker *w = &ra->workers[i];
		w->ra = ra;
		w->cancel = (aprfs_cancel){job_cancelled, w};
		if (pthread_create(&w->thread, NULL, worker, w) != 0)
			break;
		ra->nthreads++;
	}
	if (ra->nthreads == 0) {
		aprfs_ra_free(ra);
		return NULL;
	}
	return ra;
}

void aprfs_ra_free(aprfs_ra *ra)
{
	if (!ra)
		return;
	pthread_mutex_lock(&ra->lock);
	ra->stop = 1;
	atomic_store(&ra->stopping, 1); /* running jobs give up at their next check */
	pthread_cond_broadcast(&ra->work);
	pthread_mutex_unlock(&ra->lock);
	for (unsigned i = 0; i < ra->nthreads; i++)
		pthread_join(ra->workers[i].thread, NULL);
	/* The workers are gone: what is left in the ring was never run. */
	for (; ra->len; ra->len--, ra->head = (ra->head + 1) % ra->cap)
		aprfs_file_unref(ra->ring[ra->head].file);
	pthread_cond_destroy(&ra->idle);
	pthread_cond_destroy(&ra->work);
	pthread_mutex_destroy(&ra->lock);
	free(ra->workers);
	free(ra->ring);
	free(ra);
}

void aprfs_ra_get_stats(aprfs_ra *ra, aprfs_ra_stats *out)
{
	pthread_mutex_lock(&ra->lock);
	*out = ra->stats;
	out->pending = ra->len;
	pthread_mutex_unlock(&ra->lock);
}

void aprfs_ra_drain(aprfs_ra *ra)
{
	pthread_mutex_lock(&ra->lock);
	while (ra->len || ra->running)
		pthread_cond_wait(&ra->idle, &ra->lock);
	pthread_mutex_unlock(&ra->lock);
}

int aprfs_ra_queue(aprfs_ra *ra, aprfs_file *f, uint64_t c, const void *owner, pid_t pid)
{
	pthread_mutex_lock(&ra->lock);
	if (ra->stop || ra->len == ra->cap) {
		ra->stats.dropped++;
		pthread_mutex_unlock(&ra->lock);
		return -EAGAIN;
	}
	aprfs_file_ref(f);
	ra->ring[(ra->head + ra->len) % ra->cap] = (ra_job){f, c, owner, pid};
	ra->len++;
	ra->stats.queued++;
	pthread_cond_signal(&ra->work);
	pthread_mutex_unlock(&ra->lock);
	return 0;
}

void aprfs_ra_cancel(aprfs_ra *ra, const void *owner)
{
	pthread_mutex_lock(&ra->lock);
	for (size_t i = 0; i < ra->len; i++) {
		ra_job *job = &ra->ring[(ra->head + i) % ra->cap];

		if (job->owner == owner)
			job->owner = NULL;
	}
	for (unsigned i = 0; i < ra->nthreads; i++)
		if (ra->workers[i].owner == owner)
			atomic_store(&ra->workers[i].cancelled, 1);
	pthread_mutex_unlock(&ra->lock);
}

void aprfs_ra_stream_init(aprfs_ra_stream *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
}

void aprfs_ra_stream_destroy(aprfs_ra_stream *s)
{
	pthread_mutex_destroy(&s->lock);
}

/* Update the detector; 1 when this read continues a sequential run. */
static int note_sequential(aprfs_ra_stream *s, uint64_t off, uint64_t end)
{
	int near = off <= s->next_off + SEQ_SLACK && end + SEQ_SLACK >= s->next_off;

	if (near) {
		s->seq_reads++;
		if (end > s->next_off)
			s->next_off = end;
	} else {
		/* A jump: forget what was queued, the new run starts from here. */
		s->seq_reads = 1;
		s->next_off = end;
		s->warm_next = 0;
	}
	/* One read is not a pattern: a single dd of one tensor must not warm its
	 * neighbours. */
	return s->seq_reads >= 2;
}

unsigned aprfs_ra_note_read(aprfs_ra *ra, aprfs_ra_stream *s, aprfs_file *f, uint64_t off,
			    size_t len, uint64_t window, pid_t pid)
{
	uint64_t first, count, cur_first, cur_count, c;
	unsigned queued = 0;

	if (!ra || window == 0 || len == 0)
		return 0;
	pthread_mutex_lock(&s->lock);
	if (!note_sequential(s, off, off + len)) {
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	aprfs_file_chunks_in(f, s->next_off, window, &first, &count);
	/* The chunks under this read are being computed by the reader itself. */
	aprfs_file_chunks_in(f, off, len, &cur_first, &cur_count);
	c = first > s->warm_next ? first : s->warm_next;
	if (cur_count && c < cur_first + cur_count)
		c = cur_first + cur_count;
	for (; c < first + count; c++) {
		/* A worker woken for a chunk copied as it is, or one the disk tier holds
		 * (read ahead by it now, asynchronously), would have nothing to do. */
		if (aprfs_file_chunk_held(f, ra->cache, c))
			continue;
		if (aprfs_ra_queue(ra, f, c, s, pid) < 0)
			break;
		queued++;
	}
	if (c > s->warm_next)
		s->warm_next = c;
	pthread_mutex_unlock(&s->lock);
	return queued;
}
