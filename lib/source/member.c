/* member.c - the files a checkpoint is made of, opened as a source must: without ever
 * blocking (FIFOs, sockets and devices are refused, not waited on), never outside the
 * source root, mapped read-only, and watched so that a later change makes it stale. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "base/openfile.h"
#include "base/utf8.h"
#include "source/source_impl.h"

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

char *src_sibling(const char *path, const char *name)
{
	const char *slash = strrchr(path, '/');
	size_t dlen = slash ? (size_t)(slash - path) + 1 : 0;
	char *s = malloc(dlen + strlen(name) + 1);

	if (s) {
		memcpy(s, path, dlen);
		strcpy(s + dlen, name);
	}
	return s;
}

int src_open_member(const aprfs_source *s, const char *path, int *fd, struct stat *st,
		    aprfs_err *err)
{
	return aprfs_open_regular(path, s->root, 0, fd, st, err);
}

/* What of a file's identity goes into the fingerprint: size and mtime, not dev/ino. */
static void fingerprint_id(aprfs_source *s, const aprfs_file_id *id)
{
	int64_t v[3] = {(int64_t)id->size, (int64_t)id->mtime.tv_sec,
			(int64_t)id->mtime.tv_nsec};

	src_fingerprint_add(s, v, sizeof(v));
}

int src_add_file(aprfs_source *s, const char *path, src_file **out, aprfs_err *err)
{
	src_file *grown = realloc(s->files, (s->nfiles + 1) * sizeof(*grown));
	struct stat st;
	src_file *f;
	int rc;

	if (!grown)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	s->files = grown;
	f = &s->files[s->nfiles];
	memset(f, 0, sizeof(*f));
	f->fd = -1;
	if (!(f->path = strdup(path)))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	s->nfiles++; /* from here on source_free closes it */
	if ((rc = src_open_member(s, path, &f->fd, &st, err)))
		return rc;
	/* Identity first: a change during validation then shows up at the first read. */
	aprfs_file_id_of(&st, &f->id);
	fingerprint_id(s, &f->id);
	f->size = (uint64_t)st.st_size;
	/* Quantizing walks each tensor front to back: let the kernel read ahead. */
	posix_fadvise(f->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	*out = f;
	return 0;
}

/* id NULL: the file was looked for and is absent. */
static int add_watch(aprfs_source *s, const char *path, const aprfs_file_id *id, aprfs_err *err)
{
	src_watch *grown = realloc(s->watch, (s->nwatch + 1) * sizeof(*grown));

	if (!grown)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	s->watch = grown;
	memset(&s->watch[s->nwatch], 0, sizeof(*s->watch));
	if (!(s->watch[s->nwatch].path = strdup(path)))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	s->watch[s->nwatch].exists = id != NULL;
	if (id)
		s->watch[s->nwatch].id = *id;
	s->nwatch++;
	return 0;
}

int src_watch_path(aprfs_source *s, const char *path, const struct stat *st, aprfs_err *err)
{
	aprfs_file_id id;
	if (st)
		aprfs_file_id_of(st, &id);
	return add_watch(s, path, st ? &id : NULL, err);
}

/* The identity recorded is the one read before the contents: a change during the read
 * shows up as stale later, never the reverse. */
int src_read_small(aprfs_source *s, const char *path, size_t limit, int optional, char **buf,
		   size_t *len, aprfs_err *err)
{
	struct stat st;
	int fd, rc;

	*buf = NULL;
	*len = 0;
	rc = src_open_member(s, path, &fd, &st, err);
	if (rc == -ENOENT && optional) {
		src_fingerprint_add(s, "absent", 6);
		return add_watch(s, path, NULL, err);
	}
	if (rc)
		return rc;
	if ((uint64_t)st.st_size > limit)
		rc = aprfs_fail(err, EINVAL, "%s: larger than %zu bytes (%lld)", path, limit,
				(long long)st.st_size);
	else if (!(*buf = malloc((size_t)st.st_size + 1)))
		rc = aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	else if ((rc = aprfs_pread_full(fd, *buf, (size_t)st.st_size, 0)))
		rc = aprfs_fail(err, -rc, "%s: %s", path, strerror(-rc));
	close(fd);
	if (rc == 0) {
		aprfs_file_id id;
		aprfs_file_id_of(&st, &id);
		fingerprint_id(s, &id);
		src_fingerprint_add(s, *buf, (size_t)st.st_size);
		rc = add_watch(s, path, &id, err);
	}
	if (rc) {
		free(*buf);
		*buf = NULL;
		return rc;
	}
	*len = (size_t)st.st_size;
	(*buf)[*len] = '\0';
	return 0;
}

int src_check_name(const char *path, const char *name, size_t len, aprfs_err *err)
{
	size_t bad = 0;

	if (len == 0)
		return aprfs_fail(err, EINVAL, "%s: empty tensor name", path);
	if (memchr(name, 0, len))
		return aprfs_fail(err, EINVAL, "%s: tensor name contains a NUL byte", path);
	if (!aprfs_utf8_valid(name, len, &bad))
		return aprfs_fail(err, EINVAL, "%s: tensor name is not valid UTF-8 (byte %zu)",
				  path, bad);
	if (len > APRFS_MAX_NAME)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor name '%.40s...' is %zu bytes (at most %d)", path,
				  name, len, APRFS_MAX_NAME);
	return 0;
}

int src_set_size(const char *path, aprfs_tensor *t, aprfs_err *err)
{
	uint64_t be = aprfs_src_dtype_block_elems(t->dtype), blocks;

	t->nelem = 1;
	for (int i = 0; i < t->ndim; i++)
		if (__builtin_mul_overflow(t->nelem, t->dims[i], &t->nelem))
			return aprfs_fail(err, EINVAL,
					  "%s: tensor '%s': element count overflows 64 bits",
					  path, t->name);
	if (t->nelem % be)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': %llu elements are not whole %s blocks of "
				  "%llu",
				  path, t->name, (unsigned long long)t->nelem,
				  aprfs_src_dtype_name(t->dtype), (unsigned long long)be);
	blocks = t->nelem / be;
	if (__builtin_mul_overflow(blocks, (uint64_t)aprfs_src_dtype_block_bytes(t->dtype),
				   &t->nbytes))
		return aprfs_fail(err, EINVAL, "%s: tensor '%s': byte size overflows 64 bits",
				  path, t->name);
	return 0;
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
int src_order_tensors(const char *path, aprfs_tensor *t, size_t n, aprfs_err *err)
{
	uint64_t max_end = 0;
	const aprfs_tensor *owner = NULL;

	if (n > 1)
		qsort(t, n, sizeof(*t), cmp_data_order);
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

void src_fingerprint_add(aprfs_source *s, const void *data, size_t len)
{
	if (s->fp)
		XXH3_128bits_update(s->fp, data, len);
}
