/* fuzz_st_index.c - libFuzzer harness of the sharded index parser (aprfs_st_index_parse):
 * the input is the text of an X.safetensors.index.json. Asserts that an accepted index maps
 * every weight_map entry, once, to a plain, sorted, unique shard name that some entry uses. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "fuzz.h"
#include "source/source.h"
#include "source/st_index.h"

#define FUZZ_MAX_LEN 8192
#define PATH	     "fuzz.safetensors.index.json"

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void check_index(const aprfs_st_index *ix)
{
	const cJSON *wm = cJSON_GetObjectItemCaseSensitive(ix->json, "weight_map");
	const char **names = malloc((ix->nrefs + 1) * sizeof(*names));
	unsigned char *used = calloc(ix->nshards + 1, 1);
	size_t bad;

	FUZZ_CHECK(names && used, "out of memory");
	FUZZ_CHECK(cJSON_IsObject(wm) && (size_t)cJSON_GetArraySize(wm) == ix->nrefs,
		   "%zu pairs for weight_map's %d entries", ix->nrefs, cJSON_GetArraySize(wm));
	FUZZ_CHECK(ix->nshards <= ix->nrefs, "%zu shards for %zu tensors", ix->nshards,
		   ix->nrefs);
	for (size_t i = 0; i < ix->nshards; i++) {
		const char *s = ix->shards[i];
		size_t len = strlen(s);

		FUZZ_CHECK(len >= 1 && len <= 255 && s[0] != '.' && !strchr(s, '/') &&
			       aprfs_utf8_valid(s, len, &bad),
			   "shard name '%s' is not a plain file name", s);
		if (i > 0)
			FUZZ_CHECK(strcmp(ix->shards[i - 1], s) < 0,
				   "shards not sorted/unique");
	}
	for (size_t i = 0; i < ix->nrefs; i++) {
		const char *t = ix->refs[i].name;
		size_t len = strlen(t);

		FUZZ_CHECK(ix->refs[i].shard < ix->nshards, "'%s': shard %u of %zu", t,
			   ix->refs[i].shard, ix->nshards);
		FUZZ_CHECK(len >= 1 && len <= APRFS_MAX_NAME && aprfs_utf8_valid(t, len, &bad),
			   "tensor name '%s'", t);
		used[ix->refs[i].shard] = 1;
		names[i] = t;
	}
	for (size_t i = 0; i < ix->nshards; i++)
		FUZZ_CHECK(used[i], "shard '%s' named by no tensor", ix->shards[i]);
	qsort(names, ix->nrefs, sizeof(*names), cmp_str);
	for (size_t i = 1; i < ix->nrefs; i++)
		FUZZ_CHECK(strcmp(names[i - 1], names[i]) != 0, "'%s' twice", names[i]);
	free(names);
	free(used);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aprfs_st_index ix;
	aprfs_err err = {0};
	int rc;

	if (size > FUZZ_MAX_LEN)
		return 0;
	rc =
	    aprfs_st_index_parse(PATH, (const char *)fuzz_guarded(data, size), size, &ix, &err);
	if (rc) {
		fuzz_check_refusal(rc, &err, PATH);
		FUZZ_CHECK(!ix.refs && !ix.shards && !ix.json && !ix.nrefs && !ix.nshards,
			   "refused, yet not empty");
		return 0;
	}
	check_index(&ix);
	aprfs_st_index_free(&ix);
	return 0;
}
