/* stats_json.c - the text of MOUNTPOINT/.aprfs/stats.json: the cache's counters per
 * variant, read-ahead counters and the checkpoint table's size, as one JSON object. */
#include <cjson/cJSON.h>

#include "tree.h"

/* ---- statistics ------------------------------------------------------------------- */

static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v);
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
		cJSON *o = cJSON_AddObjectToObject(vars, aprfs_variant_names[v]);

		if (!o)
			break;
		add_u64(o, "chunks_computed", cs->chunks_computed[v]);
		add_u64(o, "cache_hits", cs->cache_hits[v]);
		add_u64(o, "bytes_quantized", cs->bytes_quantized[v]);
		add_u64(o, "bytes_served", cs->bytes_served[v]);
	}
	if ((cache = cJSON_AddObjectToObject(root, "cache"))) {
		add_u64(cache, "evictions", cs->evictions);
		add_u64(cache, "bytes_cached", cs->bytes_cached);
		add_u64(cache, "budget", cs->budget);
	}
	if (rs && (ra = cJSON_AddObjectToObject(root, "readahead"))) {
		add_u64(ra, "queued", rs->queued);
		add_u64(ra, "warmed", rs->warmed);
		add_u64(ra, "failed", rs->failed);
		add_u64(ra, "dropped", rs->dropped);
		add_u64(ra, "pending", rs->pending);
	}
	aprfs_tree_counts(t, &ok, &bad);
	if ((src = cJSON_AddObjectToObject(root, "checkpoints"))) {
		add_u64(src, "open", ok);
		add_u64(src, "broken", bad);
	}
	out = cJSON_Print(root);
	cJSON_Delete(root);
	return out;
}
