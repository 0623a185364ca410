/* st_index.h - the text of a sharded checkpoint's X.safetensors.index.json parsed on its own,
 * before any shard is opened: weight_map's (tensor, shard) pairs. st_index.c opens and
 * cross-checks the shards; the unit tests and tests/fuzz/ call the parser directly. */
#ifndef APRFS_ST_INDEX_H
#define APRFS_ST_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

struct cJSON;

/* One weight_map entry: a tensor and the shard that holds it (an index into .shards). */
typedef struct aprfs_st_index_ref {
	const char *name;
	uint32_t shard;
} aprfs_st_index_ref;

/* An X.safetensors.index.json as text alone, before any shard is opened: weight_map's
 * pairs in file order and the shard file names, sorted and unique. The strings belong to
 * json (a cJSON tree). */
typedef struct aprfs_st_index {
	aprfs_st_index_ref *refs;
	size_t nrefs;
	const char **shards;
	size_t nshards;
	struct cJSON *json;
} aprfs_st_index;

/* Parse index text (len bytes, not NUL-terminated): one JSON object, no duplicate keys,
 * metadata an object or null, weight_map mapping valid tensor names to plain file names
 * beside the index. -EINVAL with "path: reason" otherwise; *ix is then empty. Free with
 * aprfs_st_index_free (also safe on an empty one). */
int aprfs_st_index_parse(const char *path, const char *text, size_t len, aprfs_st_index *ix,
			 aprfs_err *err);
void aprfs_st_index_free(aprfs_st_index *ix);

#endif
