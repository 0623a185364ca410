/* source.c - what every source shares, whatever its format: choosing the format by name,
 * reference counting, reads guarded against files that change or shrink under us (raw
 * bytes and f32 elements), and staleness by identity. Opening one is open.c's. */
#include "source/source.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

#include "kernels/kernels.h"
#include "source/imatrix.h"
#include "source/source_impl.h"

/* Priority order: an index claims its stem before a single file does; safetensors before
 * GGUF when both hold the same stem. */
static const src_format *const formats[] = {&src_st_index, &src_safetensors, &src_gguf};
#define NFORMATS (sizeof(formats) / sizeof(formats[0]))

const char *aprfs_ckpt_suffix(size_t i)
{
	return i < NFORMATS ? formats[i]->suffix : NULL;
}

static int ends_with(const char *s, size_t n, const char *suffix)
{
	size_t m = strlen(suffix);

	return n > m && memcmp(s + n - m, suffix, m) == 0;
}

const src_format *src_format_of(const char *name, size_t *stem_len)
{
	const char *base = strrchr(name, '/');
	size_t n;

	base = base ? base + 1 : name;
	n = strlen(base);
	/* an importance matrix beside a checkpoint (source/imatrix.h) is not a model */
	if (strcmp(base, "imatrix.gguf") == 0 || ends_with(base, n, ".imatrix.gguf"))
		return NULL;
	for (size_t i = 0; i < NFORMATS; i++) {
		if (ends_with(base, n, formats[i]->suffix)) {
			if (stem_len)
				*stem_len = n - strlen(formats[i]->suffix);
			return formats[i];
		}
	}
	return NULL;
}

aprfs_ckpt_kind aprfs_ckpt_name(const char *name, size_t *stem_len)
{
	const src_format *f = src_format_of(name, stem_len);

	return f ? f->kind : APRFS_CKPT_NONE;
}

void src_source_free(aprfs_source *s)
{
	for (size_t k = 0; k < s->nfiles; k++) {
		src_file *f = &s->files[k];
		if (f->fd >= 0)
			close(f->fd);
		free(f->path);
	}
	for (size_t k = 0; k < s->nwatch; k++)
		free(s->watch[k].path);
	free(s->files);
	free(s->watch);
	aprfs_tensors_free(s->tensors, s->count);
	free(s->by_name);
	aprfs_imatrix_free(s->imatrix);
	XXH3_freeState(s->fp);
	free(s->root);
	free(s->path);
	free(s);
}

const struct aprfs_imatrix *aprfs_source_imatrix(const aprfs_source *s)
{
	return s->imatrix;
}

const uint8_t *aprfs_source_fingerprint(const aprfs_source *s)
{
	return s->fingerprint;
}

void aprfs_source_ref(aprfs_source *s)
{
	atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
}

void aprfs_source_unref(aprfs_source *s)
{
	/* acq_rel: the thread that frees must see every other holder's last use. */
	if (s && atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1)
		src_source_free(s);
}

const char *aprfs_source_path(const aprfs_source *s)
{
	return s->path;
}
const char *aprfs_source_format(const aprfs_source *s)
{
	return s->fmt->name;
}
size_t aprfs_source_count(const aprfs_source *s)
{
	return s->count;
}
const aprfs_model_config *aprfs_source_config(const aprfs_source *s)
{
	return &s->cfg;
}
const uint32_t *aprfs_source_name_order(const aprfs_source *s)
{
	return s->by_name;
}
size_t aprfs_source_shard_count(const aprfs_source *s)
{
	return s->nfiles;
}
const aprfs_tensor *aprfs_source_tensor(const aprfs_source *s, size_t i)
{
	return i < s->count ? &s->tensors[i] : NULL;
}
const char *aprfs_source_shard_path(const aprfs_source *s, size_t i)
{
	return i < s->nfiles ? s->files[i].path : NULL;
}

/* ---- reading ---- */

static int file_unchanged(const src_file *f)
{
	struct stat st;
	aprfs_file_id now;

	if (fstat(f->fd, &st) != 0)
		return 0;
	aprfs_file_id_of(&st, &now);
	return aprfs_file_id_equal(&now, &f->id);
}

/* Source bytes are read with pread, not copied out of a mapping: a mapping's pages
 * would count in the daemon's resident set (and releasing them costs TLB shootdowns on
 * the other cores), and a file truncated under a mapping raises SIGBUS where pread simply
 * comes up short. Short means the file changed: -1, and the caller says so. */
static int read_at(int fd, void *dst, size_t len, uint64_t off)
{
	return aprfs_pread_full(fd, dst, len, off) ? -1 : 0;
}

int aprfs_source_read(aprfs_source *s, const aprfs_tensor *t, uint64_t off, size_t len,
		      void *dst, aprfs_err *err)
{
	const src_file *f;

	if (t < s->tensors || t >= s->tensors + s->count)
		return aprfs_fail(err, EINVAL, "%s: tensor does not belong to this source",
				  s->path);
	if (off > t->nbytes || len > t->nbytes - off)
		return aprfs_fail(err, EINVAL,
				  "%s: tensor '%s': read of %zu bytes at %llu beyond %llu",
				  s->path, t->name, len, (unsigned long long)off,
				  (unsigned long long)t->nbytes);
	if (len == 0)
		return 0;
	f = &s->files[t->shard];
	/* Checked after the copy: a change made before it or during it shows then (size,
	 * mtime), so a caller never gets new bytes, or a mix, as success. */
	if (read_at(f->fd, dst, len, t->file_off + off) != 0 || !file_unchanged(f))
		return aprfs_fail(err, EIO, "%s: changed since it was opened", f->path);
	return 0;
}

/* Whole blocks covering [e0, e0+n) are read and decoded; the elements asked for are
 * copied out of them (block types only: plain types decode in place). */
int aprfs_source_read_f32(aprfs_source *s, const aprfs_tensor *t, uint64_t e0, size_t n,
			  float *x, aprfs_err *err)
{
	const aprfs_kernels *k = aprfs_kernels_get();
	uint64_t be = aprfs_src_dtype_block_elems(t->dtype);
	uint64_t bb = aprfs_src_dtype_block_bytes(t->dtype);
	uint64_t b0 = e0 / be, b1 = (e0 + n + be - 1) / be;
	size_t nb = (size_t)(b1 - b0);
	int direct = be == 1 && t->dtype == APRFS_SRC_F32;
	void *raw = direct ? x : malloc(nb * bb + 1);
	/* Whole blocks only (plain types; every chunk of a conversion): decoded into x. */
	float *y = e0 % be == 0 && n % be == 0 ? x : malloc(nb * be * sizeof(float) + 1);
	int rc;

	if (!aprfs_src_dtype_is_float(t->dtype))
		rc = aprfs_fail(err, EINVAL, "%s: tensor '%s' is not a float tensor", s->path,
				t->name);
	else if (!raw || !y)
		rc = aprfs_fail(err, ENOMEM, "out of memory");
	else
		rc = aprfs_source_read(s, t, b0 * bb, nb * bb, raw, err);
	if (rc == 0 && !direct && aprfs_dequant(k, t->dtype, raw, nb, y) != 0)
		rc = aprfs_fail(err, ENOTSUP, "%s: tensor '%s': no decoder for %s", s->path,
				t->name, aprfs_src_dtype_name(t->dtype));
	if (rc == 0 && y != x)
		memcpy(x, y + (e0 - b0 * be), n * sizeof(float));
	if (raw != x)
		free(raw);
	if (y != x)
		free(y);
	return rc;
}

/* ---- staleness ---- */

static int path_changed(const char *path, int existed, const aprfs_file_id *id)
{
	struct stat st;
	aprfs_file_id now;

	if (stat(path, &st) != 0)
		return existed;
	if (!existed)
		return 1;
	aprfs_file_id_of(&st, &now);
	return !aprfs_file_id_equal(&now, id);
}

int aprfs_source_stale(const aprfs_source *s)
{
	for (size_t k = 0; k < s->nwatch; k++)
		if (path_changed(s->watch[k].path, s->watch[k].exists, &s->watch[k].id))
			return 1;
	for (size_t k = 0; k < s->nfiles; k++)
		if (path_changed(s->files[k].path, 1, &s->files[k].id))
			return 1;
	return 0;
}
