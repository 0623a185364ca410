/* cache.c - the chunk cache: a hash table of (file id, chunk) entries, an LRU list of the
 * ready ones, a byte budget enforced on every insert, and single-flight computation: the
 * first reader of a missing chunk computes it, later readers wait on the condition. */
#include "cache/cache.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache_impl.h"

enum { ENTRY_COMPUTING, ENTRY_READY, ENTRY_FAILED };

struct cache_entry {
	uint64_t file_id, chunk;
	cache_entry *hnext;	  /* hash chain (while in the table) */
	cache_entry *prev, *next; /* LRU list (ready entries only), head = most recent */
	uint8_t *data;
	size_t len;
	int refs; /* pins: readers copying out, the computing thread */
	int state;
	int in_table;
	int variant;
	aprfs_err err;		  /* why it failed, for the waiters */
	pthread_cond_t published; /* a publish wakes only this entry's waiters */
};

#define NBUCKETS (1u << 16)

struct aprfs_cache {
	pthread_mutex_t lock;
	cache_entry **buckets;
	cache_entry *lru_head, *lru_tail;
	size_t bytes, budget;
	aprfs_cache_stats stats;
	aprfs_diskcache *_Atomic disk;
};

/* Per-entry overhead counted against the budget, so many tiny chunks cannot hide memory. */
#define ENTRY_OVERHEAD sizeof(cache_entry)

aprfs_cache *aprfs_cache_new(size_t budget_bytes)
{
	aprfs_cache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->buckets = calloc(NBUCKETS, sizeof(*c->buckets));
	if (!c->buckets) {
		free(c);
		return NULL;
	}
	pthread_mutex_init(&c->lock, NULL);
	c->budget = budget_bytes;
	return c;
}

static void entry_free(cache_entry *e)
{
	pthread_cond_destroy(&e->published);
	free(e->data);
	free(e);
}

void aprfs_cache_free(aprfs_cache *c)
{
	if (!c)
		return;
	for (size_t b = 0; b < NBUCKETS; b++) {
		for (cache_entry *e = c->buckets[b], *n; e; e = n) {
			n = e->hnext;
			entry_free(e);
		}
	}
	free(c->buckets);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static size_t bucket_of(uint64_t file_id, uint64_t chunk)
{
	uint64_t h = file_id * 0x9E3779B97F4A7C15ull ^
		     (chunk + 0x632BE59BD9B4E019ull) * 0xBF58476D1CE4E5B9ull;
	return (size_t)(h >> 40) & (NBUCKETS - 1);
}

static void table_remove(aprfs_cache *c, cache_entry *e)
{
	cache_entry **pp = &c->buckets[bucket_of(e->file_id, e->chunk)];
	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	e->in_table = 0;
}

static void lru_unlink(aprfs_cache *c, cache_entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->lru_head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->lru_tail = e->prev;
	e->prev = e->next = NULL;
}

static void lru_push_front(aprfs_cache *c, cache_entry *e)
{
	e->prev = NULL;
	e->next = c->lru_head;
	if (c->lru_head)
		c->lru_head->prev = e;
	c->lru_head = e;
	if (!c->lru_tail)
		c->lru_tail = e;
}

static void evict_one(aprfs_cache *c, cache_entry *e)
{
	lru_unlink(c, e);
	table_remove(c, e);
	c->bytes -= e->len + ENTRY_OVERHEAD;
	c->stats.evictions++;
	entry_free(e);
}

/* Evict unpinned entries from the cold end until the budget holds. Pinned entries are
 * in use by a reader right now; at most one per reading thread, hence "a small constant"
 * over budget in the worst case. */
static void enforce_budget(aprfs_cache *c)
{
	cache_entry *e = c->lru_tail;
	while (c->bytes > c->budget && e) {
		cache_entry *prev = e->prev;
		if (e->refs == 0)
			evict_one(c, e);
		e = prev;
	}
}

static cache_entry *table_find(aprfs_cache *c, uint64_t file_id, uint64_t chunk)
{
	for (cache_entry *e = c->buckets[bucket_of(file_id, chunk)]; e; e = e->hnext)
		if (e->file_id == file_id && e->chunk == chunk)
			return e;
	return NULL;
}

static cache_entry *entry_insert(aprfs_cache *c, uint64_t file_id, uint64_t chunk, int variant)
{
	cache_entry *e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->file_id = file_id;
	e->chunk = chunk;
	e->variant = variant;
	e->refs = 1;
	e->state = ENTRY_COMPUTING;
	pthread_cond_init(&e->published, NULL);
	size_t b = bucket_of(file_id, chunk);
	e->hnext = c->buckets[b];
	c->buckets[b] = e;
	e->in_table = 1;
	return e;
}

cache_entry *cache_acquire(aprfs_cache *c, uint64_t file_id, uint64_t chunk, int variant,
			   int *must_compute, aprfs_err *err)
{
	pthread_mutex_lock(&c->lock);
	cache_entry *e = table_find(c, file_id, chunk);
	if (!e) {
		e = entry_insert(c, file_id, chunk, variant);
		*must_compute = 1;
		pthread_mutex_unlock(&c->lock);
		if (!e)
			aprfs_fail(err, ENOMEM, "out of memory for the chunk cache");
		return e;
	}
	e->refs++;
	while (e->state == ENTRY_COMPUTING)
		pthread_cond_wait(&e->published, &c->lock);
	if (e->state == ENTRY_FAILED) {
		if (err)
			*err = e->err;
		if (--e->refs == 0)
			entry_free(e);
		pthread_mutex_unlock(&c->lock);
		return NULL;
	}
	c->stats.cache_hits[variant]++;
	lru_unlink(c, e);
	lru_push_front(c, e);
	*must_compute = 0;
	pthread_mutex_unlock(&c->lock);
	return e;
}

cache_entry *cache_find_ready(aprfs_cache *c, uint64_t file_id, uint64_t chunk, int variant)
{
	pthread_mutex_lock(&c->lock);
	cache_entry *e = table_find(c, file_id, chunk);
	if (e && e->state == ENTRY_READY) {
		e->refs++;
		c->stats.cache_hits[variant]++;
		lru_unlink(c, e);
		lru_push_front(c, e);
	} else {
		e = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	return e;
}

const double aprfs_compute_bucket_le[APRFS_COMPUTE_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.5, 2.5, 10};

static void count_compute(aprfs_cache_stats *st, int v, size_t len, double seconds)
{
	int b = 0;

	st->chunks_computed[v]++;
	st->bytes_quantized[v] += len;
	while (b < APRFS_COMPUTE_BUCKETS && seconds > aprfs_compute_bucket_le[b])
		b++;
	st->compute_bucket[v][b]++;
	st->compute_seconds[v] += seconds;
}

void cache_count_computed(aprfs_cache *c, int variant, size_t len, double seconds)
{
	if (!c || variant < 0 || variant >= APRFS_VARIANT_COUNT)
		return;
	pthread_mutex_lock(&c->lock);
	count_compute(&c->stats, variant, len, seconds);
	pthread_mutex_unlock(&c->lock);
}

void cache_publish(aprfs_cache *c, cache_entry *e, uint8_t *data, size_t len, int rc,
		   const aprfs_err *err, int computed, double seconds)
{
	pthread_mutex_lock(&c->lock);
	if (rc == 0) {
		e->data = data;
		e->len = len;
		e->state = ENTRY_READY;
		c->bytes += len + ENTRY_OVERHEAD;
		if (computed)
			count_compute(&c->stats, e->variant, len, seconds);
		lru_push_front(c, e);
		enforce_budget(c);
	} else {
		free(data);
		e->state = ENTRY_FAILED;
		if (err)
			e->err = *err;
		table_remove(c, e); /* the next reader tries again */
	}
	pthread_cond_broadcast(&e->published);
	pthread_mutex_unlock(&c->lock);
}

const uint8_t *cache_entry_data(const cache_entry *e, size_t *len)
{
	*len = e->len;
	return e->data;
}

void cache_release(aprfs_cache *c, cache_entry *e)
{
	pthread_mutex_lock(&c->lock);
	if (--e->refs == 0) {
		if (e->state == ENTRY_FAILED)
			entry_free(e);
		else
			enforce_budget(c);
	}
	pthread_mutex_unlock(&c->lock);
}

void cache_count_served(aprfs_cache *c, int variant, uint64_t bytes)
{
	pthread_mutex_lock(&c->lock);
	c->stats.bytes_served[variant] += bytes;
	pthread_mutex_unlock(&c->lock);
}

void aprfs_cache_get_stats(aprfs_cache *c, aprfs_cache_stats *out)
{
	pthread_mutex_lock(&c->lock);
	*out = c->stats;
	out->bytes_cached = c->bytes;
	out->budget = c->budget;
	pthread_mutex_unlock(&c->lock);
	aprfs_diskcache *d = atomic_load(&c->disk);
	out->has_disk = d != NULL;
	if (d)
		aprfs_diskcache_get_stats(d, &out->disk);
}

void aprfs_cache_set_disk(aprfs_cache *c, aprfs_diskcache *disk)
{
	atomic_store(&c->disk, disk);
}

aprfs_diskcache *cache_disk(aprfs_cache *c)
{
	return c ? atomic_load(&c->disk) : NULL;
}

void aprfs_cache_forget_file(aprfs_cache *c, uint64_t file_id)
{
	pthread_mutex_lock(&c->lock);
	for (cache_entry *e = c->lru_tail, *prev; e; e = prev) {
		prev = e->prev;
		if (e->file_id == file_id && e->refs == 0)
			evict_one(c, e);
	}
	pthread_mutex_unlock(&c->lock);
}
