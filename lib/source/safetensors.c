/* safetensors.c - the safetensors format: an 8-byte header length, a JSON header of
 * tensor entries validated field by field into aprfs_tensor records (data order), then the
 * data. Used alone for X.safetensors and per shard by st_index.c. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "source/source_impl.h"

/* cJSON turns the escape \u0000 into a NUL inside the string and the name silently ends
 * there ("a\u0000b" would read as "a"). Raw NUL bytes are refused too, so after this
 * check strlen() of every decoded string is its true length. */
static int check_nul(const char *path, const char *h, size_t n, aprfs_err *err)
{
	int in_str = 0;

	if (memchr(h, 0, n))
		return aprfs_fail(err, EINVAL, "%s: header contains a NUL byte", path);
	for (size_t i = 0; i < n; i++) {
		if (!in_str) {
			in_str = h[i] == '"';
		} else if (h[i] == '"') {
			in_str = 0;
		} else if (h[i] == '\\') {
			if (n - i >= 6 && h[i + 1] == 'u' && memcmp(h + i + 2, "0000", 4) == 0)
				return aprfs_fail(err, EINVAL,
						  "%s: header string contains \\u0000", path);
			i++; /* the escaped character, so \" does not end the string */
		}
	}
	return 0;
}

/* __metadata__ is a map of strings to strings in the format; anything else is refused
 * rather than guessed at, because the APR writer may copy it. */
static int check_metadata(const char *path, const cJSON *m, aprfs_err *err)
{
	const char *dup;

	if (!cJSON_IsObject(m))
		return aprfs_fail(err, EINVAL, "%s: __metadata__ is not an object", path);
	for (const cJSON *e = m->child; e; e = e->next) {
		size_t bad;

		if (!cJSON_IsString(e) ||
		    !aprfs_utf8_valid(e->string, strlen(e->string), &bad) ||
		    !aprfs_utf8_valid(e->valuestring, strlen(e->valuestring), &bad))
			return aprfs_fail(err, EINVAL,
					  "%s: __metadata__ must map UTF-8 strings to strings",
					  path);
	}
	dup = aprfs_json_dup_key(m);
	if (dup)
		return aprfs_fail(err, EINVAL, "%s: __metadata__: duplicate key '%.64s'", path,
				  dup);
	return 0;
}

static int parse_dtype(const char *path, aprfs_tensor *t, const cJSON *e, aprfs_err *err)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dtype");

	if (!cJSON_IsString(d))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': dtype missing or not a string",
				  path, t->name);
	if (aprfs_src_dtype_parse(d->valuestring, &t->dtype) != 0)
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': unsupported dtype '%.32s'",
				  path, t->name, d->valuestring);
	return 0;
}

static int parse_shape(const char *path, aprfs_tensor *t, const cJSON *e, aprfs_err *err)
{
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "shape");
	int n, i = 0;

	if (!cJSON_IsArray(s))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': shape missing or not an array",
				  path, t->name);
	n = cJSON_GetArraySize(s);
	if (n > APRFS_MAX_NDIM)
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': %d dimensions (at most %d)",
				  path, t->name, n, APRFS_MAX_NDIM);
	t->ndim = (uint8_t)n;
	for (const cJSON *d = s->child; d; d = d->next, i++) {
		int st = aprfs_json_uint(d, &t->dims[i]);

		if (st != APRFS_JSON_UINT_OK)
			return aprfs_fail(err, EINVAL, "%s: tensor '%s': shape[%d] %s", path,
					  t->name, i, aprfs_json_uint_reason(st));
	}
	return src_set_size(path, t, err);
}

static void shape_str(const aprfs_tensor *t, char *buf, size_t cap)
{
	size_t at = (size_t)snprintf(buf, cap, "[");

	for (int i = 0; i < t->ndim && at < cap; i++)
		at += (size_t)snprintf(buf + at, cap - at, "%s%" PRIu64, i ? ", " : "",
				       t->dims[i]);
	if (at < cap)
		snprintf(buf + at, cap - at, "]");
}

static int parse_offsets(const char *path, aprfs_tensor *t, const cJSON *e, uint64_t data_base,
			 uint64_t data_len, aprfs_err *err)
{
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
	uint64_t v[2];
	char shape[160];

	if (!cJSON_IsArray(o) || cJSON_GetArraySize(o) != 2)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': data_offsets must be [begin, end]", path,
				  t->name);
	for (int i = 0; i < 2; i++) {
		int st = aprfs_json_uint(cJSON_GetArrayItem(o, i), &v[i]);

		if (st != APRFS_JSON_UINT_OK)
			return aprfs_fail(err, EINVAL, "%s: tensor '%s': data_offsets[%d] %s",
					  path, t->name, i, aprfs_json_uint_reason(st));
	}
	if (v[0] > v[1])
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': data_offsets begin %" PRIu64
				  " > end %" PRIu64,
				  path, t->name, v[0], v[1]);
	if (v[1] > data_len)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': data_offsets end %" PRIu64
				  " beyond data section (%" PRIu64 " bytes)",
				  path, t->name, v[1], data_len);
	if (v[1] - v[0] != t->nbytes) {
		shape_str(t, shape, sizeof(shape));
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': size mismatch: data_offsets span %" PRIu64
				  " bytes, %s %s needs %" PRIu64,
				  path, t->name, v[1] - v[0], aprfs_src_dtype_name(t->dtype),
				  shape, t->nbytes);
	}
	t->file_off = data_base + v[0];
	return 0;
}

static int parse_entry(const char *path, aprfs_tensor *t, const cJSON *e, uint64_t data_base,
		       uint64_t data_len, aprfs_err *err)
{
	const char *dup;
	int rc;

	if (!cJSON_IsObject(e))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': entry is not an object", path,
				  t->name);
	dup = aprfs_json_dup_key(e);
	if (dup)
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': duplicate key '%.32s'", path,
				  t->name, dup);
	rc = parse_dtype(path, t, e, err);
	if (rc == 0)
		rc = parse_shape(path, t, e, err);
	if (rc == 0)
		rc = parse_offsets(path, t, e, data_base, data_len, err);
	return rc;
}

static int cmp_name_ptr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int check_duplicates(const char *path, const aprfs_tensor *t, size_t n, int nmeta,
			    aprfs_err *err)
{
	char **names = malloc((n + 1) * sizeof(*names));
	int rc = 0;

	if (nmeta > 1)
		rc = aprfs_fail(err, EINVAL, "%s: duplicate tensor name '__metadata__'", path);
	else if (!names)
		rc = aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	for (size_t i = 0; i < n && names; i++)
		names[i] = t[i].name;
	if (rc == 0)
		qsort(names, n, sizeof(*names), cmp_name_ptr);
	for (size_t i = 1; i < n && rc == 0; i++)
		if (strcmp(names[i - 1], names[i]) == 0)
			rc = aprfs_fail(err, EINVAL, "%s: duplicate tensor name '%s'", path,
					names[i]);
	free(names);
	return rc;
}

/* ---- walking the header ----
 * A header is one JSON object of entries. Parsing it whole would build about 700 bytes of
 * cJSON nodes per tensor (140 MB for the 200,000 tensors of a large mixture of experts);
 * instead its top level is walked here, and cJSON parses one key and one entry at a time,
 * so only the tensor table is ever held. Only the object's punctuation is handled here;
 * every string, number and nested value is cJSON's. */

typedef struct walk {
	const char *path;
	const char *start, *p, *end;
	aprfs_err *err;
} walk;

static void skip_ws(walk *w)
{
	while (w->p < w->end && (unsigned char)*w->p <= ' ') /* cJSON's whitespace */
		w->p++;
}

static int bad_json(walk *w, const char *at)
{
	return aprfs_fail(w->err, EINVAL, "%s: header is not valid JSON (error at byte %zu)",
			  w->path, (size_t)(at - w->start));
}

static int expect(walk *w, char c)
{
	skip_ws(w);
	if (w->p >= w->end || *w->p != c)
		return bad_json(w, w->p);
	w->p++;
	return 0;
}

/* One JSON value at the cursor, parsed alone; the cursor moves past it. */
static cJSON *next_value(walk *w)
{
	const char *after = NULL;
	cJSON *v;

	skip_ws(w);
	v = cJSON_ParseWithLengthOpts(w->p, (size_t)(w->end - w->p), &after, 0);
	if (!v) {
		bad_json(w, after && after >= w->p && after <= w->end ? after : w->p);
		return NULL;
	}
	w->p = after;
	return v;
}

/* The entry's key: a JSON string, decoded (escapes and all) by cJSON. */
static char *next_key(walk *w)
{
	cJSON *k;
	char *s;

	skip_ws(w);
	if (w->p >= w->end || *w->p != '"') {
		bad_json(w, w->p);
		return NULL;
	}
	if (!(k = next_value(w)))
		return NULL;
	s = cJSON_IsString(k) ? strdup(k->valuestring) : NULL;
	cJSON_Delete(k);
	if (!s)
		aprfs_fail(w->err, ENOMEM, "%s: out of memory", w->path);
	return s;
}

typedef struct table {
	aprfs_tensor *t;
	size_t n, cap;
	int nmeta;
} table;

static aprfs_tensor *table_add(table *tb)
{
	if (tb->n == tb->cap) {
		size_t cap = tb->cap ? tb->cap * 2 : 64;
		aprfs_tensor *g = realloc(tb->t, cap * sizeof(*g));
		if (!g)
			return NULL;
		tb->t = g;
		tb->cap = cap;
	}
	memset(&tb->t[tb->n], 0, sizeof(*tb->t));
	return &tb->t[tb->n++];
}

/* One "key": value member: __metadata__ or a tensor entry. key is consumed. */
static int walk_member(walk *w, table *tb, char *key, uint64_t data_base, uint64_t data_len,
		       uint32_t shard)
{
	cJSON *v = NULL;
	int rc = expect(w, ':');

	if (rc == 0 && !(v = next_value(w)))
		rc = -w->err->code;
	if (rc == 0 && strcmp(key, "__metadata__") == 0) {
		tb->nmeta++;
		rc = check_metadata(w->path, v, w->err);
	} else if (rc == 0 && (rc = src_check_name(w->path, key, strlen(key), w->err)) == 0) {
		aprfs_tensor *t = table_add(tb);
		if (!t) {
			rc = aprfs_fail(w->err, ENOMEM, "%s: out of memory", w->path);
		} else {
			t->name = key;
			t->name_len = (uint16_t)strlen(key);
			t->shard = shard;
			key = NULL;
			rc = parse_entry(w->path, t, v, data_base, data_len, w->err);
		}
	}
	cJSON_Delete(v);
	free(key);
	return rc;
}

static int walk_header(walk *w, table *tb, uint64_t data_base, uint64_t data_len,
		       uint32_t shard)
{
	int rc;

	skip_ws(w);
	if (w->p < w->end && *w->p != '{')
		return aprfs_fail(w->err, EINVAL, "%s: header is not a JSON object", w->path);
	if ((rc = expect(w, '{')))
		return rc;
	skip_ws(w);
	if (w->p < w->end && *w->p == '}') {
		w->p++;
	} else {
		for (;;) {
			char *key = next_key(w);
			if (!key)
				return -w->err->code;
			if ((rc = walk_member(w, tb, key, data_base, data_len, shard)))
				return rc;
			skip_ws(w);
			if (w->p < w->end && *w->p == ',') {
				w->p++;
				continue;
			}
			if ((rc = expect(w, '}')))
				return rc;
			break;
		}
	}
	skip_ws(w); /* only whitespace (the usual alignment padding) may follow */
	return w->p == w->end ? 0 : bad_json(w, w->p);
}

int aprfs_st_parse_header(const char *path, const char *hdr, size_t hdr_len, uint64_t data_base,
			  uint64_t data_len, uint32_t shard, aprfs_tensor **out, size_t *count,
			  aprfs_err *err)
{
	aprfs_err local = {0};
	walk w = {path, hdr, hdr, hdr + hdr_len, err ? err : &local};
	table tb = {0};
	int rc;

	err = w.err;

	*out = NULL;
	*count = 0;
	if ((rc = check_nul(path, hdr, hdr_len, err)))
		return rc;
	rc = walk_header(&w, &tb, data_base, data_len, shard);
	if (rc == 0)
		rc = check_duplicates(path, tb.t, tb.n, tb.nmeta, err);
	if (rc == 0)
		rc = src_order_tensors(path, tb.t, tb.n, err);
	if (rc) {
		aprfs_tensors_free(tb.t, tb.n);
		return rc;
	}
	*out = tb.t;
	*count = tb.n;
	return 0;
}

/* The 8-byte length, checked against the limit and the file size before any allocation. */
static int read_header_len(const src_file *f, uint64_t *hlen, aprfs_err *err)
{
	uint64_t size = f->size;
	uint8_t b[8];
	int rc;

	if (size < 8)
		return aprfs_fail(err, EINVAL,
				  "%s: file too short (%" PRIu64
				  " bytes) for a safetensors header",
				  f->path, size);
	if ((rc = src_pread_full(f->fd, b, 8, 0)))
		return aprfs_fail(err, -rc, "%s: reading header length: %s", f->path,
				  strerror(-rc));
	*hlen = 0;
	for (int i = 7; i >= 0; i--)
		*hlen = *hlen << 8 | b[i];
	if (*hlen > APRFS_ST_MAX_HEADER)
		return aprfs_fail(err, EINVAL,
				  "%s: header length %" PRIu64 " too large (limit %u bytes)",
				  f->path, *hlen, APRFS_ST_MAX_HEADER);
	if (*hlen > size - 8)
		return aprfs_fail(err, EINVAL,
				  "%s: header length %" PRIu64 " exceeds file size (%" PRIu64
				  " bytes)",
				  f->path, *hlen, size);
	return 0;
}

/* Append tensors to the source's table (which takes the names). */
static int add_tensors(aprfs_source *s, aprfs_tensor *t, size_t n, aprfs_err *err)
{
	aprfs_tensor *g = realloc(s->tensors, (s->count + n + 1) * sizeof(*g));

	if (!g)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	s->tensors = g;
	if (n)
		memcpy(s->tensors + s->count, t, n * sizeof(*t));
	s->count += n;
	free(t);
	return 0;
}

/* The header is read with pread, not through the mapping: a file truncated meanwhile then
 * fails here with an error instead of faulting. */
int aprfs_st_add(aprfs_source *s, const char *path, aprfs_err *err)
{
	uint32_t shard = (uint32_t)s->nfiles;
	uint64_t hlen = 0;
	aprfs_tensor *t = NULL;
	size_t n = 0;
	src_file *f;
	char *hdr;
	int rc;

	if ((rc = src_add_file(s, path, &f, err)) || (rc = read_header_len(f, &hlen, err)))
		return rc;
	if (!(hdr = malloc(hlen ? hlen : 1)))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	if ((rc = src_pread_full(f->fd, hdr, hlen, 8)))
		rc = aprfs_fail(err, -rc, "%s: reading header: %s", path, strerror(-rc));
	if (rc == 0)
		src_fingerprint_add(s, hdr, hlen);
	if (rc == 0)
		rc = aprfs_st_parse_header(path, hdr, hlen, 8 + hlen, f->size - 8 - hlen, shard,
					   &t, &n, err);
	free(hdr);
	return rc ? rc : add_tensors(s, t, n, err);
}

static int open_single(aprfs_source *s, aprfs_err *err)
{
	int rc = aprfs_st_add(s, s->path, err);

	return rc ? rc : aprfs_config_beside(s, err);
}

const src_format src_safetensors = {
    .name = "safetensors",
    .suffix = ".safetensors",
    .kind = APRFS_CKPT_SINGLE,
    .open = open_single,
};
