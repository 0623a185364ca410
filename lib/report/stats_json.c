/* stats_json.c - the text of MOUNTPOINT/.aprfs/stats.json: the cache's counters per
 * variant, the disk cache's, read-ahead counters and the checkpoint table's size, as one
 * JSON object. */
#include <cjson/cJSON.h>

#include "report/counters.h"
#include "view/tree.h"

/* ---- statistics ------------------------------------------------------------------- */

static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v);
}

/* The stats.json rows of a counter table (report/counters.h), of variant v if per variant. */
static void add_rows(cJSON *o, const report_counter *c, const void *base, int v)
{
	for (; c->json || c->metric; c++)
		if (c->json)
			add_u64(o, c->json, report_value(base, c, v));
}

/* "disk_cache": aprfs_diskcache_stats as it is, names and all, plus per variant the
 * chunk entries' hits, misses and compression (content bytes / stored bytes). */
static void add_disk(cJSON *root, const aprfs_diskcache_stats *d)
{
	cJSON *o = cJSON_AddObjectToObject(root, "disk_cache"), *vars;

	if (!o)
		return;
	add_rows(o, report_disk, d, 0);
	vars = cJSON_AddObjectToObject(o, "variants");
	for (int v = 0; vars && v < APRFS_VARIANT_COUNT; v++) {
		cJSON *x = cJSON_AddObjectToObject(vars, aprfs_variant_name(v));
		if (!x)
			break;
		add_rows(x, report_disk_variant, d, v);
		cJSON_AddNumberToObject(x, "compression_ratio",
					d->stored_bytes[v] ? (double)d->content_bytes[v] /
								 (double)d->stored_bytes[v]
							   : 0.0);
	}
}

char *aprfs_tree_stats_json(aprfs_tree *t, const aprfs_cache_stats *cs,
			    const aprfs_ra_stats *rs)
{
	cJSON *root = cJSON_CreateObject(), *vars, *cache, *ra, *src;
	size_t ok, bad;
	char *out;

	if (!root)
		return NULL;
	vars = cJSON_AddObjectToObject(root, "variants");
	for (int v = 0; vars && v < APRFS_VARIANT_COUNT; v++) {
		cJSON *o = cJSON_AddObjectToObject(vars, aprfs_variant_name(v));

		if (!o)
			break;
		add_rows(o, report_cache_variant, cs, v);
	}
	if ((cache = cJSON_AddObjectToObject(root, "cache")))
		add_rows(cache, report_cache, cs, 0);
	if (cs->has_disk)
		add_disk(root, &cs->disk);
	if (rs && (ra = cJSON_AddObjectToObject(root, "readahead")))
		add_rows(ra, report_ra, rs, 0);
	aprfs_tree_counts(t, &ok, &bad);
	if ((src = cJSON_AddObjectToObject(root, "checkpoints"))) {
		add_u64(src, "open", ok);
		add_u64(src, "broken", bad);
	}
	out = cJSON_Print(root);
	cJSON_Delete(root);
	return out;
}
