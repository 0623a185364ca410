/* metrics.c - MOUNTPOINT/.aprfs/metrics: the counters of stats.json in the Prometheus text
 * exposition format (version 0.0.4: HELP and TYPE lines, counters ending in _total, labels
 * for the variant), plus the chunk compute latency histogram. */
#include "report/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/counters.h"

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
		put(t, "aprfs_%s{variant=\"%s\"} %llu\n", name, aprfs_variant_name(i),
		    (unsigned long long)v[i]);
}

static void histogram(text *t, const aprfs_cache_stats *c)
{
	head(t, "chunk_compute_seconds", "histogram",
	     "Time to compute (quantize) one chunk, including waiting for its tensor's "
	     "statistic.");
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		const char *name = aprfs_variant_name(v);
		uint64_t cum = 0;
		for (int b = 0; b <= APRFS_COMPUTE_BUCKETS; b++) {
			char le[32] = "+Inf";
			cum += c->compute_bucket[v][b];
			if (b < APRFS_COMPUTE_BUCKETS)
				snprintf(le, sizeof(le), "%g", aprfs_compute_bucket_le[b]);
			put(t,
			    "aprfs_chunk_compute_seconds_bucket{variant=\"%s\",le=\"%s\"} "
			    "%llu\n",
			    name, le, (unsigned long long)cum);
		}
		put(t, "aprfs_chunk_compute_seconds_sum{variant=\"%s\"} %.9g\n", name,
		    c->compute_seconds[v]);
		put(t, "aprfs_chunk_compute_seconds_count{variant=\"%s\"} %llu\n", name,
		    (unsigned long long)cum);
	}
}

/* The metrics of a counter table (report/counters.h): one sample each. */
static void rows(text *t, const report_counter *c, const void *base)
{
	for (; c->json || c->metric; c++)
		if (c->metric)
			one(t, c->metric, c->type, c->help, report_value(base, c, 0));
}

/* The metrics of a per-variant counter table: one sample per variant each. */
static void variant_rows(text *t, const report_counter *c, const void *base)
{
	for (; c->json || c->metric; c++)
		if (c->metric)
			per_variant(t, c->metric, c->type, c->help,
				    (const uint64_t *)((const char *)base + c->off));
}

static void cache_metrics(text *t, const aprfs_cache_stats *c)
{
	variant_rows(t, report_cache_variant, c);
	histogram(t, c);
	rows(t, report_cache, c);
}

static void disk_metrics(text *t, const aprfs_diskcache_stats *d)
{
	rows(t, report_disk, d);
	variant_rows(t, report_disk_variant, d);
}

char *aprfs_metrics_text(const aprfs_metrics_in *in)
{
	text t = {0};

	cache_metrics(&t, in->cache);
	if (in->cache->has_disk)
		disk_metrics(&t, &in->cache->disk);
	if (in->ra)
		rows(&t, report_ra, in->ra);
	head(&t, "checkpoints", "gauge", "Checkpoints in the table, by state.");
	put(&t, "aprfs_checkpoints{state=\"open\"} %zu\n", in->ckpt_open);
	put(&t, "aprfs_checkpoints{state=\"broken\"} %zu\n", in->ckpt_broken);
	return t.p;
}
