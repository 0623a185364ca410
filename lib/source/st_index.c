/* st_index.c - the Hugging Face sharded safetensors checkpoint: X.safetensors.index.json
 * naming, for each tensor, the shard file beside it that holds it. Each shard is opened
 * as a safetensors file; the index and the shards must agree tensor for tensor. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "source/source_impl.h"
#include "source/st_index.h"

#define INDEX_MAX_BYTES (100u << 20)

/* A shard must live beside its index: no directories, no "..", no hidden files. */
static int check_shard_name(const char *index, const char *name, aprfs_err *err)
{
	size_t bad;

	if (!*name || strchr(name, '/') || name[0] == '.' || strlen(name) > 255 ||
	    !aprfs_utf8_valid(name, strlen(name), &bad))
		return aprfs_fail(err, EINVAL,
				  "%s: shard name '%.64s' is not a plain file name", index,
				  name);
	return 0;
}

typedef aprfs_st_index_ref name_ref;

static int cmp_name_ref(const void *a, const void *b)
{
	const name_ref *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x->shard > y->shard) - (x->shard < y->shard);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* weight_map into (tensor, shard name) pairs; the shard name list comes back sorted and
 * unique, and every pair's .shard indexes it. */
static int parse_weight_map(const char *index, const cJSON *root, aprfs_st_index *ix,
			    aprfs_err *err)
{
	const cJSON *wm = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	const cJSON *md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
	const char **names, *dup;
	size_t n = 0, k = 0;
	int rc;

	if (md && !cJSON_IsObject(md) && !cJSON_IsNull(md))
		return aprfs_fail(err, EINVAL, "%s: metadata is not an object", index);
	if (!cJSON_IsObject(wm))
		return aprfs_fail(err, EINVAL, "%s: weight_map missing or not an object",
				  index);
	if ((dup = aprfs_json_dup_key(wm)))
		return aprfs_fail(err, EINVAL, "%s: weight_map: duplicate tensor name '%.256s'",
				  index, dup);
	for (const cJSON *e = wm->child; e; e = e->next, n++) {
		if ((rc = src_check_name(index, e->string, strlen(e->string), err)))
			return rc;
		if (!cJSON_IsString(e))
			return aprfs_fail(err, EINVAL, "%s: weight_map['%s'] is not a string",
					  index, e->string);
		if ((rc = check_shard_name(index, e->valuestring, err)))
			return rc;
	}
	ix->refs = calloc(n + 1, sizeof(*ix->refs));
	ix->shards = names = calloc(n + 1, sizeof(*names));
	if (!ix->refs || !names)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", index);
	n = 0;
	for (const cJSON *e = wm->child; e; e = e->next)
		names[n++] = e->valuestring;
	qsort(names, n, sizeof(*names), cmp_str);
	for (size_t i = 0; i < n; i++)
		if (k == 0 || strcmp(names[k - 1], names[i]) != 0)
			names[k++] = names[i];
	n = 0;
	for (const cJSON *e = wm->child; e; e = e->next, n++) {
		const char **hit = bsearch(&e->valuestring, names, k, sizeof(*names), cmp_str);

		ix->refs[n].name = e->string;
		ix->refs[n].shard = (uint32_t)(hit - names);
	}
	ix->nrefs = n;
	ix->nshards = k;
	return 0;
}

int aprfs_st_index_parse(const char *path, const char *text, size_t len, aprfs_st_index *ix,
			 aprfs_err *err)
{
	const char *dup;
	int rc;

	memset(ix, 0, sizeof(*ix));
	if (!(ix->json = aprfs_json_parse(text, len)))
		rc = aprfs_fail(err, EINVAL, "%s: not valid JSON", path);
	else if (!cJSON_IsObject(ix->json))
		rc = aprfs_fail(err, EINVAL, "%s: not a JSON object", path);
	else if ((dup = aprfs_json_dup_key(ix->json)))
		rc = aprfs_fail(err, EINVAL, "%s: duplicate key '%.64s'", path, dup);
	else
		rc = parse_weight_map(path, ix->json, ix, err);
	if (rc)
		aprfs_st_index_free(ix);
	return rc;
}

void aprfs_st_index_free(aprfs_st_index *ix)
{
	free(ix->refs);
	free(ix->shards);
	cJSON_Delete(ix->json);
	memset(ix, 0, sizeof(*ix));
}

/* Shards are looked up beside the index as it was named (in a Hugging Face hub snapshot
 * that is the snapshot directory, whose entries link to ../../blobs/). */
static int open_shards(aprfs_source *s, const char **names, size_t n, aprfs_err *err)
{
	for (size_t i = 0; i < n; i++) {
		char *p = src_sibling(s->path, names[i]);
		int rc;

		if (!p)
			return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
		rc = aprfs_st_add(s, p, err);
		free(p);
		if (rc) {
			/* A missing shard is the index's fault: say which index. */
			if (err && err->code != EINVAL)
				aprfs_err_prefix(err, s->path);
			return rc;
		}
	}
	return 0;
}

static const char *shard_name(const aprfs_source *s, uint32_t i)
{
	const char *p = s->files[i].path, *slash = strrchr(p, '/');

	return slash ? slash + 1 : p;
}

/* One sorted walk over both lists: weight_map says tensor -> shard, the shards say what
 * they hold. Any disagreement is reported with the tensor and both sides' view. */
static int cross_check(const aprfs_source *s, name_ref *wm, size_t nwm, aprfs_err *err)
{
	size_t nt = s->count, i = 0, j = 0;
	name_ref *held = calloc(nt + 1, sizeof(*held));
	int rc = 0;

	if (!held)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	for (size_t t = 0; t < nt; t++)
		held[t] = (name_ref){s->tensors[t].name, s->tensors[t].shard};
	qsort(held, nt, sizeof(*held), cmp_name_ref);
	qsort(wm, nwm, sizeof(*wm), cmp_name_ref);
	for (size_t k = 1; k < nt && !rc; k++)
		if (strcmp(held[k - 1].name, held[k].name) == 0)
			rc = aprfs_fail(err, EINVAL,
					"%s: tensor '%s' appears in shards '%s' and '%s'",
					s->path, held[k].name, shard_name(s, held[k - 1].shard),
					shard_name(s, held[k].shard));
	while (!rc && (i < nwm || j < nt)) {
		int c = i == nwm ? 1 : j == nt ? -1 : strcmp(wm[i].name, held[j].name);

		if (c < 0)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: tensor '%s' listed in weight_map is not in shard '%s'",
			    s->path, wm[i].name, shard_name(s, wm[i].shard));
		else if (c > 0)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: shard '%s' holds tensor '%s', which weight_map does not list",
			    s->path, shard_name(s, held[j].shard), held[j].name);
		else if (wm[i].shard != held[j].shard)
			rc = aprfs_fail(
			    err, EINVAL,
			    "%s: tensor '%s' is in shard '%s' but weight_map maps it to '%s'",
			    s->path, wm[i].name, shard_name(s, held[j].shard),
			    shard_name(s, wm[i].shard));
		i++;
		j++;
	}
	free(held);
	return rc;
}

static int open_index(aprfs_source *s, aprfs_err *err)
{
	char *text;
	size_t len = 0;
	aprfs_st_index ix;
	int rc = src_read_small(s, s->path, INDEX_MAX_BYTES, 0, &text, &len, err);

	if (rc)
		return rc;
	rc = aprfs_st_index_parse(s->path, text, len, &ix, err);
	free(text); /* the parsed index keeps its own copies of the strings */
	if (rc)
		return rc;
	rc = open_shards(s, ix.shards, ix.nshards, err);
	if (rc == 0)
		rc = cross_check(s, ix.refs, ix.nrefs, err);
	if (rc == 0)
		rc = aprfs_config_beside(s, err);
	aprfs_st_index_free(&ix);
	return rc;
}

const src_format src_st_index = {
    .name = "safetensors",
    .suffix = ".safetensors.index.json",
    .kind = APRFS_CKPT_INDEX,
    .open = open_index,
};
