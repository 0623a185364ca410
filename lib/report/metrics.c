/* metrics.c - MOUNTPOINT/.aprfs/metrics: the counters of stats.json in the Prometheus text
 * exposition format (version 0.0.4: HELP and TYPE lines, counters ending in _total, labels
 * for the variant), plus the chunk compute latency histogram. */
#include "report/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing text buffer; a failed allocation leaves it NULL, which the caller returns. */
typedef struct text {
	char *p;
	size_t len, cap;
} text;

static void put(text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (!t->p && t->cap)
		return; /* an earlier allocation failed */
	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if (t->len + (size_t)n + 1 > t->cap) {
		size_t cap = (t->len + (size_t)n + 1) * 2;
		char *g = realloc(t->p, cap);
		if (!g) {
			free(t->p);
			t->p = NULL;
			t->cap = 1;
			return;
		}
		t->p = g;
		t->cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(t->p + t->len, t->cap - t->len, fmt, ap);
	va_end(ap);
	t->len += (size_t)n;
}

static void head(text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP aprfs_%s %s\n# TYPE aprfs_%s %s\n", name, help, name, type);
}

static void one(text *t, const char *name, const char *type, const char *help, uint64_t v)
{
	head(t, name, type, help);
	put(t, "aprfs_%s %llu\n", name, (unsigned long long)v);
}

/* One sample per variant of a per-variant array. */
static void per_variant(text *t, const char *name, const char *type, const char *help,
			const uint64_t *v)
{
	head(t, name, type, help);
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++)
		put(t, "aprfs_%s{variant=\"%s\"} %llu\n", name, aprfs_variant_names[i],
		    (unsigned long long)v[i]);
}

static void histogram(text *t, const aprfs_cache_stats *c)
{
	head(t, "chunk_compute_seconds", "histogram",
	     "Time to compute (quantize) one chunk, including waiting for its tensor's "
	     "statistic.");
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		const char *name = aprfs_variant_names[v];
		uint64_t cum = 0;
		for (int b = 0; b <= APRFS_COMPUTE_BUCKETS; b++) {
			cum += c->compute_bucket[v][b];
			if (b < APRFS_COMPUTE_BUCKETS)
				put(t,
				    "aprfs_chunk_compute_seconds_bucket{variant=\"%s\",le=\"%"
				    "g\"} "
				    "%llu\n",
				    name, aprfs_compute_bucket_le[b], (unsigned long long)cum);
			else
				put(t,
				    "aprfs_chunk_compute_seconds_bucket{variant=\"%s\",le=\"+"
				    "Inf\"} "
				    "%llu\n",
				    name, (unsigned long long)cum);
		}
		put(t, "aprfs_chunk_compute_seconds_sum{variant=\"%s\"} %.9g\n", name,
		    c->compute_seconds[v]);
		put(t, "aprfs_chunk_compute_seconds_count{variant=\"%s\"} %llu\n", name,
		    (unsigned long long)cum);
	}
}

static void cache_metrics(text *t, const aprfs_cache_stats *c)
{
	per_variant(t, "chunks_computed_total", "counter", "Chunks quantized.",
		    c->chunks_computed);
	per_variant(t, "cache_hits_total", "counter", "Chunk reads served by the memory cache.",
		    c->cache_hits);
	per_variant(t, "bytes_quantized_total", "counter",
		    "Output bytes of the chunks quantized.", c->bytes_quantized);
	per_variant(t, "bytes_served_total", "counter", "Bytes returned by reads of APR files.",
		    c->bytes_served);
	histogram(t, c);
	one(t, "cache_evictions_total", "counter", "Chunks evicted from the memory cache.",
	    c->evictions);
	one(t, "cache_bytes", "gauge", "Bytes held by the memory cache.", c->bytes_cached);
	one(t, "cache_budget_bytes", "gauge", "The memory cache's budget (cache_mb).",
	    c->budget);
}

static void disk_metrics(text *t, const aprfs_diskcache_stats *d)
{
	one(t, "disk_cache_hits_total", "counter", "Entries served from the disk cache.",
	    d->hits);
	one(t, "disk_cache_misses_total", "counter",
	    "Disk cache lookups that found nothing usable (computed here).", d->misses);
	one(t, "disk_cache_claim_waits_total", "counter",
	    "Lookups that waited for another process computing the same entry.",
	    d->claim_waits);
	one(t, "disk_cache_read_bytes_total", "counter", "Entry bytes read on hits.",
	    d->bytes_read);
	one(t, "disk_cache_written_bytes_total", "counter", "Entry bytes written.",
	    d->bytes_written);
	one(t, "disk_cache_entries_written_total", "counter", "Records written.",
	    d->entries_written);
	one(t, "disk_cache_not_persisted_total", "counter",
	    "Computed entries not written (queue full, degraded, set aside, error).",
	    d->not_persisted);
	one(t, "disk_cache_write_errors_total", "counter", "Failed pack writes.",
	    d->write_errors);
	one(t, "disk_cache_stalls_total", "counter",
	    "Times the disk cache was set aside (a read past its deadline or failing).",
	    d->stalls);
	one(t, "disk_cache_stalled", "gauge", "1 while the disk cache is set aside.",
	    d->stalled);
	one(t, "disk_cache_packs", "gauge", "Pack files in the cache directory.", d->packs);
	one(t, "disk_cache_packs_sealed_total", "counter", "Packs this process sealed.",
	    d->packs_sealed);
	one(t, "disk_cache_packs_recovered_total", "counter",
	    "Unsealed packs of dead writers recovered.", d->packs_recovered);
	one(t, "disk_cache_corrupt_total", "counter",
	    "Corrupt, truncated or misfiled records or packs found (packs deleted).",
	    d->corrupt);
	one(t, "disk_cache_evictions_total", "counter", "Packs deleted to stay in the budget.",
	    d->evictions);
	one(t, "disk_cache_bytes", "gauge", "Bytes of packs in the cache directory.",
	    d->bytes_on_disk);
	one(t, "disk_cache_budget_bytes", "gauge", "The disk cache's budget (disk_cache_mb).",
	    d->budget);
	one(t, "disk_cache_queued_bytes", "gauge", "Bytes waiting for the writer.",
	    d->queued_bytes);
	one(t, "disk_cache_degraded", "gauge",
	    "1 while writes are off (a full or read-only disk).", d->degraded);
	one(t, "disk_cache_peers", "gauge", "Other processes using the cache directory.",
	    d->peers);
	per_variant(t, "disk_cache_chunk_hits_total", "counter",
		    "Chunk lookups the disk cache answered (bytes, or a CRC for a footer).",
		    d->chunk_hits);
	per_variant(t, "disk_cache_content_bytes_total", "counter",
		    "Chunk bytes written to the disk cache, uncompressed.", d->content_bytes);
	per_variant(t, "disk_cache_stored_bytes_total", "counter",
		    "Record bytes of those chunks (headers, LZ4 where it saves 10%).",
		    d->stored_bytes);
}

static void ra_metrics(text *t, const aprfs_ra_stats *r)
{
	one(t, "readahead_queued_total", "counter", "Read-ahead jobs accepted.", r->queued);
	one(t, "readahead_warmed_total", "counter", "Read-ahead jobs run to success.",
	    r->warmed);
	one(t, "readahead_failed_total", "counter", "Read-ahead jobs that failed.", r->failed);
	one(t, "readahead_dropped_total", "counter",
	    "Read-ahead jobs refused (queue full) or cancelled.", r->dropped);
	one(t, "readahead_pending", "gauge", "Read-ahead jobs waiting.", r->pending);
}

char *aprfs_metrics_text(const aprfs_metrics_in *in)
{
	text t = {0};

	cache_metrics(&t, in->cache);
	if (in->cache->has_disk)
		disk_metrics(&t, &in->cache->disk);
	if (in->ra)
		ra_metrics(&t, in->ra);
	head(&t, "checkpoints", "gauge", "Checkpoints in the table, by state.");
	put(&t, "aprfs_checkpoints{state=\"open\"} %zu\n", in->ckpt_open);
	put(&t, "aprfs_checkpoints{state=\"broken\"} %zu\n", in->ckpt_broken);
	return t.p;
}
