/* counters.h - the one table of the mount's counters that stats.json (stats_json.c) and
 * the Prometheus text (metrics.c) both walk: per counter its stats.json key, its metric
 * name, type and help, and where it lives in its stats struct. */
#ifndef APRFS_COUNTERS_H
#define APRFS_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

typedef struct report_counter {
	const char *json;   /* stats.json key; NULL: not in stats.json */
	const char *metric; /* metric name after "aprfs_"; NULL: not a metric */
	const char *type;   /* "counter" or "gauge" */
	const char *help;
	size_t off; /* of a uint64_t, or (per-variant tables) a uint64_t[APRFS_VARIANT_COUNT] */
} report_counter;

/* Each table ends with a row whose json and metric are both NULL. */
extern const report_counter report_cache_variant[]; /* aprfs_cache_stats, per variant */
extern const report_counter report_cache[];	    /* aprfs_cache_stats */
extern const report_counter report_disk[];	    /* aprfs_diskcache_stats */
extern const report_counter report_disk_variant[];  /* aprfs_diskcache_stats, per variant */
extern const report_counter report_ra[];	    /* aprfs_ra_stats */

/* The counter's value (variant v of a per-variant one) in the stats struct at base. */
static inline uint64_t report_value(const void *base, const report_counter *c, int v)
{
	return ((const uint64_t *)((const char *)base + c->off))[v];
}

#endif
