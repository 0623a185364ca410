/* safetensors.c - opening one .safetensors file: the 8-byte header length, the JSON
 * header validated field by field into aprfs_tensor records (data order), and the
 * read-only mapping of the file. Nothing the file claims is used before it is checked. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "utf8.h"

void aprfs_file_id_of(const struct stat *st, aprfs_file_id *id)
{
	id->dev = st->st_dev;
	id->ino = st->st_ino;
	id->size = st->st_size;
	id->mtime = st->st_mtim;
}

int aprfs_file_id_equal(const aprfs_file_id *a, const aprfs_file_id *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime.tv_sec == b->mtime.tv_sec && a->mtime.tv_nsec == b->mtime.tv_nsec;
}

void aprfs_tensors_free(aprfs_tensor *t, size_t n)
{
	if (!t)
		return;
	for (size_t i = 0; i < n; i++)
		free(t[i].name);
	free(t);
}

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

int aprfs_st_check_name(const char *path, const char *name, aprfs_err *err)
{
	size_t len = strlen(name), bad = 0;

	if (len == 0)
		return aprfs_fail(err, EINVAL, "%s: empty tensor name", path);
	if (!aprfs_utf8_valid(name, len, &bad))
		return aprfs_fail(err, EINVAL, "%s: tensor name is not valid UTF-8 (byte %zu)",
				  path, bad);
	if (len > APRFS_MAX_NAME)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor name '%.40s...' is %zu bytes (at most %d)", path,
				  name, len, APRFS_MAX_NAME);
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

static int parse_dtype(const char *path, const aprfs_tensor *t, const cJSON *e,
		       aprfs_src_dtype *out, aprfs_err *err)
{
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(e, "dtype");

	if (!cJSON_IsString(d))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': dtype missing or not a string",
				  path, t->name);
	if (aprfs_src_dtype_parse(d->valuestring, out) != 0)
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
	t->nelem = 1;
	for (const cJSON *d = s->child; d; d = d->next, i++) {
		int st = aprfs_json_uint(d, &t->dims[i]);

		if (st != APRFS_JSON_UINT_OK)
			return aprfs_fail(err, EINVAL, "%s: tensor '%s': shape[%d] %s", path,
					  t->name, i, aprfs_json_uint_reason(st));
		if (__builtin_mul_overflow(t->nelem, t->dims[i], &t->nelem))
			return aprfs_fail(err, EINVAL,
					  "%s: tensor '%s': element count overflows 64 bits",
					  path, t->name);
	}
	if (__builtin_mul_overflow(t->nelem, (uint64_t)aprfs_src_dtype_size(t->dtype),
				   &t->nbytes))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': byte size overflows 64 bits",
				  path, t->name);
	return 0;
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
	rc = parse_dtype(path, t, e, &t->dtype, err);
	if (rc == 0)
		rc = parse_shape(path, t, e, err);
	if (rc == 0)
		rc = parse_offsets(path, t, e, data_base, data_len, err);
	return rc;
}

static int cmp_data_order(const void *pa, const void *pb)
{
	const aprfs_tensor *a = pa, *b = pb;

	if (a->file_off != b->file_off)
		return a->file_off < b->file_off ? -1 : 1;
	return strcmp(a->name, b->name);
}

/* After sorting by begin, a non-empty tensor overlaps an earlier one exactly when it
 * starts before the furthest end seen so far. Empty tensors occupy no bytes. */
static int check_overlap(const char *path, const aprfs_tensor *t, size_t n, aprfs_err *err)
{
	uint64_t max_end = 0;
	const aprfs_tensor *owner = NULL;

	for (size_t i = 0; i < n; i++) {
		if (t[i].nbytes == 0)
			continue;
		if (owner && t[i].file_off < max_end)
			return aprfs_fail(err, EINVAL,
					  "%s: tensor '%s': data overlaps tensor '%s'", path,
					  t[i].name, owner->name);
		if (t[i].file_off + t[i].nbytes > max_end) {
			max_end = t[i].file_off + t[i].nbytes;
			owner = &t[i];
		}
	}
	return 0;
}

/* Names first (so messages print only valid names), then duplicates, then entries. */
static int parse_root(const char *path, const cJSON *root, uint64_t data_base,
		      uint64_t data_len, uint32_t shard, aprfs_tensor *t, size_t *count,
		      aprfs_err *err)
{
	const char *dup;
	size_t n = 0;
	int rc;

	for (const cJSON *e = root->child; e; e = e->next) {
		if (strcmp(e->string, "__metadata__") != 0 &&
		    (rc = aprfs_st_check_name(path, e->string, err)))
			return rc;
	}
	dup = aprfs_json_dup_key(root);
	if (dup)
		return aprfs_fail(err, EINVAL, "%s: duplicate tensor name '%s'", path, dup);
	for (const cJSON *e = root->child; e; e = e->next) {
		if (strcmp(e->string, "__metadata__") == 0) {
			if ((rc = check_metadata(path, e, err)))
				return rc;
			continue;
		}
		t[n].name = strdup(e->string);
		if (!t[n].name)
			return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
		t[n].name_len = (uint16_t)strlen(e->string);
		t[n].shard = shard;
		n++;
		*count = n;
		if ((rc = parse_entry(path, &t[n - 1], e, data_base, data_len, err)))
			return rc;
	}
	return 0;
}

static cJSON *parse_json(const char *path, const char *hdr, size_t len, aprfs_err *err)
{
	char *buf = malloc(len + 1);
	const char *end = NULL;
	cJSON *root;

	if (!buf) {
		aprfs_fail(err, ENOMEM, "%s: out of memory for a %zu-byte header", path, len);
		return NULL;
	}
	memcpy(buf, hdr, len);
	buf[len] = 0;
	/* require_null_terminated: trailing garbage after the object is an error, only
	 * whitespace (the usual alignment padding) may follow it. */
	root = cJSON_ParseWithLengthOpts(buf, len + 1, &end, 1);
	if (!root)
		aprfs_fail(err, EINVAL, "%s: header is not valid JSON (error at byte %zu)",
			   path, end ? (size_t)(end - buf) : (size_t)0);
	free(buf);
	return root;
}

int aprfs_st_parse_header(const char *path, const char *hdr, size_t hdr_len, uint64_t data_base,
			  uint64_t data_len, uint32_t shard, aprfs_tensor **out, size_t *count,
			  aprfs_err *err)
{
	cJSON *root;
	aprfs_tensor *t = NULL;
	size_t n = 0;
	int rc;

	*out = NULL;
	*count = 0;
	if ((rc = check_nul(path, hdr, hdr_len, err)))
		return rc;
	if (!(root = parse_json(path, hdr, hdr_len, err)))
		return -err->code;
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return aprfs_fail(err, EINVAL, "%s: header is not a JSON object", path);
	}
	t = calloc((size_t)cJSON_GetArraySize(root) + 1, sizeof(*t));
	if (!t) {
		cJSON_Delete(root);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	}
	rc = parse_root(path, root, data_base, data_len, shard, t, &n, err);
	cJSON_Delete(root);
	if (rc == 0) {
		qsort(t, n, sizeof(*t), cmp_data_order);
		rc = check_overlap(path, t, n, err);
	}
	if (rc) {
		aprfs_tensors_free(t, n);
		return rc;
	}
	*out = t;
	*count = n;
	return 0;
}

static int read_full(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t r = pread(fd, p, len, off);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		p += r;
		len -= (size_t)r;
		off += r;
	}
	return 0;
}

static uint64_t le64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | b[i];
	return v;
}

/* The 8-byte length, checked against the limit and the file size before any allocation. */
static int read_header_len(const char *path, int fd, uint64_t size, uint64_t *hlen,
			   aprfs_err *err)
{
	uint8_t b[8];
	int rc;

	if (size < 8)
		return aprfs_fail(err, EINVAL,
				  "%s: file too short (%" PRIu64
				  " bytes) for a safetensors header",
				  path, size);
	if ((rc = read_full(fd, b, 8, 0)))
		return aprfs_fail(err, -rc, "%s: reading header length: %s", path,
				  strerror(-rc));
	*hlen = le64(b);
	if (*hlen > APRFS_ST_MAX_HEADER)
		return aprfs_fail(err, EINVAL,
				  "%s: header length %" PRIu64 " too large (limit %u bytes)",
				  path, *hlen, APRFS_ST_MAX_HEADER);
	if (*hlen > size - 8)
		return aprfs_fail(err, EINVAL,
				  "%s: header length %" PRIu64 " exceeds file size (%" PRIu64
				  " bytes)",
				  path, *hlen, size);
	return 0;
}

static int load_header(aprfs_st_file *f, uint64_t size, uint32_t shard, aprfs_err *err)
{
	uint64_t hlen = 0;
	char *hdr;
	int rc = read_header_len(f->path, f->fd, size, &hlen, err);

	if (rc)
		return rc;
	hdr = malloc(hlen ? hlen : 1);
	if (!hdr)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", f->path);
	rc = read_full(f->fd, hdr, hlen, 8);
	if (rc)
		rc = aprfs_fail(err, -rc, "%s: reading header: %s", f->path, strerror(-rc));
	else
		rc = aprfs_st_parse_header(f->path, hdr, hlen, 8 + hlen, size - 8 - hlen, shard,
					   &f->tensors, &f->count, err);
	free(hdr);
	return rc;
}

static int map_file(aprfs_st_file *f, aprfs_err *err)
{
	void *m = mmap(NULL, f->map_len, PROT_READ, MAP_PRIVATE, f->fd, 0);

	if (m == MAP_FAILED)
		return aprfs_fail(err, errno, "%s: mmap: %s", f->path, strerror(errno));
	/* Quantizing walks each tensor front to back: let the kernel read ahead hard. */
	madvise(m, f->map_len, MADV_SEQUENTIAL);
	f->map = m;
	return 0;
}

/* strerror() is thread-safe in glibc >= 2.32 for every errno value it knows. */
int aprfs_st_open(const char *path, uint32_t shard, aprfs_st_file *f, aprfs_err *err)
{
	struct stat st;
	int rc;

	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (!(f->path = strdup(path)))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	f->fd = open(path, O_RDONLY | O_CLOEXEC);
	if (f->fd < 0 || fstat(f->fd, &st) != 0) {
		rc = aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = aprfs_fail(err, EINVAL, "%s: not a regular file", path);
		goto fail;
	}
	/* Identity first: a change during validation then shows up at the first read. */
	aprfs_file_id_of(&st, &f->id);
	f->map_len = (size_t)st.st_size;
	if ((rc = load_header(f, (uint64_t)st.st_size, shard, err)) || (rc = map_file(f, err)))
		goto fail;
	return 0;
fail:
	aprfs_st_close(f);
	return rc;
}

void aprfs_st_close(aprfs_st_file *f)
{
	if (f->map)
		munmap((void *)f->map, f->map_len);
	if (f->fd >= 0)
		close(f->fd);
	aprfs_tensors_free(f->tensors, f->count);
	free(f->path);
	memset(f, 0, sizeof(*f));
	f->fd = -1;
}
