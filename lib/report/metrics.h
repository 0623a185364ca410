/* metrics.h - the mount's counters in the Prometheus text exposition format, for
 * MOUNTPOINT/.aprfs/metrics (a node_exporter textfile collector or a scraper sidecar reads
 * it): what stats.json says, plus a histogram of chunk compute latency.
 *
 * lib/report/ (the top of lib/): the Prometheus metrics (this) and stats.json (stats_json.c).
 */
#ifndef APRFS_METRICS_H
#define APRFS_METRICS_H

#include <stddef.h>

#include "cache/cache.h"
#include "file/readahead.h"

typedef struct aprfs_metrics_in {
	const aprfs_cache_stats *cache; /* with the disk cache's, when has_disk */
	const aprfs_ra_stats *ra;	/* may be NULL */
	size_t ckpt_open, ckpt_broken;
} aprfs_metrics_in;

/* The exposition text (malloc'd, NUL-terminated), or NULL when out of memory. */
char *aprfs_metrics_text(const aprfs_metrics_in *in);

#endif
