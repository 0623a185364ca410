/* stats_json.c - the text of MOUNTPOINT/.aprfs/stats.json: the cache's counters per
 * variant, the disk cache's, read-ahead counters and the checkpoint table's size, as one
 * JSON object. */
#include <cjson/cJSON.h>

#include "view/tree.h"

/* ---- statistics ------------------------------------------------------------------- */

static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	cJSON_AddNumberToObject(o, key, (double)v);
}

/* "disk_cache": aprfs_diskcache_stats as it is, names and all, plus per variant the
 * chunk entries' hits, misses and compression (content bytes / stored bytes). */
static void add_disk(cJSON *root, const aprfs_diskcache_stats *d)
{
	cJSON *o = cJSON_AddObjectToObject(root, "disk_cache"), *vars;

	if (!o)
		return;
	add_u64(o, "hits", d->hits);
	add_u64(o, "misses", d->misses);
	add_u64(o, "claim_waits", d->claim_waits);
	add_u64(o, "bytes_read", d->bytes_read);
	add_u64(o, "bytes_written", d->bytes_written);
	add_u64(o, "entries_written", d->entries_written);
	add_u64(o, "not_persisted", d->not_persisted);
	add_u64(o, "write_errors", d->write_errors);
	add_u64(o, "corrupt", d->corrupt);
	add_u64(o, "evictions", d->evictions);
	add_u64(o, "stalls", d->stalls);
	add_u64(o, "stalled", d->stalled);
	add_u64(o, "packs", d->packs);
	add_u64(o, "packs_sealed", d->packs_sealed);
	add_u64(o, "packs_recovered", d->packs_recovered);
	add_u64(o, "bytes_on_disk", d->bytes_on_disk);
	add_u64(o, "budget", d->budget);
	add_u64(o, "queued_bytes", d->queued_bytes);
	add_u64(o, "degraded", d->degraded);
	add_u64(o, "degraded_errno", d->degraded_errno);
	add_u64(o, "peers", d->peers);
	vars = cJSON_AddObjectToObject(o, "variants");
	for (int v = 0; vars && v < APRFS_VARIANT_COUNT; v++) {
		cJSON *x = cJSON_AddObjectToObject(vars, aprfs_variant_names[v]);
		if (!x)
			break;
		add_u64(x, "chunk_hits", d->chunk_hits[v]);
		add_u64(x, "chunk_misses", d->chunk_misses[v]);
		add_u64(x, "content_bytes", d->content_bytes[v]);
		add_u64(x, "stored_bytes", d->stored_bytes[v]);
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
	if (cs->has_disk)
		add_disk(root, &cs->disk);
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
