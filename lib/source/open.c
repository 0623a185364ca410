/* open.c - opening a checkpoint: its format chosen by name, the format's tables read, the
 * tensors put in name order (the APR index order), its importance matrix looked for
 * (beside.c), the model's name from a hub cache path, and its fingerprint sealed. */
#define _GNU_SOURCE /* qsort_r */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "source/source.h"
#include "source/source_impl.h"

static int cmp_by_name(const void *a, const void *b, void *ctx)
{
	const aprfs_tensor *t = ctx;
	const aprfs_tensor *x = &t[*(const uint32_t *)a], *y = &t[*(const uint32_t *)b];
	size_t n = x->name_len < y->name_len ? x->name_len : y->name_len;
	int c = memcmp(x->name, y->name, n);

	return c ? c : (x->name_len > y->name_len) - (x->name_len < y->name_len);
}

/* The APR index order, and the last word on unique names (formats check their own files;
 * this holds for any format). */
static int order_by_name(aprfs_source *s, aprfs_err *err)
{
	if (s->count > UINT32_MAX)
		return aprfs_fail(err, EINVAL, "%s: %zu tensors (at most 2^32)", s->path,
				  s->count);
	if (!(s->by_name = malloc((s->count + 1) * sizeof(*s->by_name))))
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	for (size_t i = 0; i < s->count; i++)
		s->by_name[i] = (uint32_t)i;
	qsort_r(s->by_name, s->count, sizeof(*s->by_name), cmp_by_name, s->tensors);
	for (size_t i = 1; i < s->count; i++) {
		const aprfs_tensor *a = &s->tensors[s->by_name[i - 1]];
		const aprfs_tensor *b = &s->tensors[s->by_name[i]];
		if (a->name_len == b->name_len && memcmp(a->name, b->name, a->name_len) == 0)
			return aprfs_fail(err, EINVAL, "%s: duplicate tensor name '%s'",
					  s->path, a->name);
	}
	return 0;
}

/* A Hugging Face hub cache keeps repository ORG/NAME as models--ORG--NAME/snapshots/REV/
 * (files, possibly in subfolders): there the model's name is the repository id, not the
 * file stem ("model"). Repository names cannot contain "--", so the first one splits. */
static int hub_repo_id(const char *path, char *out, size_t cap)
{
	const char *snap = NULL, *p = path, *start;

	while ((p = strstr(p, "/snapshots/"))) /* the last one */
		snap = p++;
	if (!snap)
		return 0;
	for (start = snap; start > path && start[-1] != '/'; start--)
		;
	if (strncmp(start, "models--", 8) != 0 || snap - start <= 8)
		return 0;
	start += 8;
	const char *sep = strstr(start, "--");
	size_t len = (size_t)(snap - start);
	if (len >= cap)
		return 0;
	memcpy(out, start, len);
	out[len] = '\0';
	if (sep && sep < snap) {
		out[sep - start] = '/';
		memmove(out + (sep - start) + 1, out + (sep - start) + 2,
			len - (size_t)(sep - start) - 1);
	}
	return out[0] != '\0';
}

int aprfs_source_open(const char *path, const aprfs_source_ctx *ctx, aprfs_source **out,
		      aprfs_err *err)
{
	size_t stem = 0;
	const src_format *fmt = src_format_of(path, &stem);
	aprfs_source *s;
	int rc;

	*out = NULL;
	if (!fmt)
		return aprfs_fail(err, EINVAL,
				  "%s: not a checkpoint (expected X.safetensors, "
				  "X.safetensors.index.json or X.gguf)",
				  path);
	if (!(s = calloc(1, sizeof(*s))) || !(s->path = strdup(path)) ||
	    (ctx && ctx->root && !(s->root = strdup(ctx->root)))) {
		if (s)
			src_source_free(s);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	}
	atomic_init(&s->refs, 1);
	s->fmt = fmt;
	if (!(s->fp = XXH3_createState()) || XXH3_128bits_reset(s->fp) != XXH_OK) {
		src_source_free(s);
		return aprfs_fail(err, ENOMEM, "%s: out of memory", path);
	}
	src_fingerprint_add(s, fmt->name, strlen(fmt->name));
	rc = fmt->open(s, err);
	if (rc == 0)
		rc = order_by_name(s, err);
	if (rc == 0)
		rc = src_imatrix_find(s, ctx, stem, err);
	if (rc == 0 && !(s->cfg.has & APRFS_CFG_NAME) &&
	    hub_repo_id(path, s->cfg.name, sizeof(s->cfg.name)))
		s->cfg.has |= APRFS_CFG_NAME;
	if (rc) {
		src_source_free(s);
		return rc;
	}
	XXH128_canonicalFromHash((XXH128_canonical_t *)s->fingerprint,
				 XXH3_128bits_digest(s->fp));
	XXH3_freeState(s->fp);
	s->fp = NULL;
	*out = s;
	return 0;
}
