/* beside.c - the importance matrix of a checkpoint: a file named by the caller (a path, or
 * a name looked for beside it), or the first of X.imatrix.gguf, X.imatrix.dat,
 * imatrix.gguf, imatrix.dat beside checkpoint X;
 * opened as every member is (inside the root, never blocking), watched for changes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "source/imatrix.h"
#include "source/source_impl.h"

/* Try one candidate: 1 when it is now s->imatrix, 0 when absent or unusable (logged), or
 * -ENOMEM. */
static int try_candidate(aprfs_source *s, const char *path, aprfs_err *err)
{
	aprfs_err why = {0};
	struct stat st;
	int fd, rc = src_open_member(s, path, &fd, &st, &why);
	if (rc == -ENOENT)
		return src_watch_path(s, path, NULL, err);
	if (rc) {
		aprfs_log_once(APRFS_LOG_WARN, why.msg, "%s; the views of %s stay unweighted",
			       why.msg, s->path);
		return src_watch_path(s, path, NULL, err);
	}
	rc = aprfs_imatrix_load_fd(path, fd, &s->imatrix, &why);
	close(fd);
	if (rc == -ENOMEM)
		return aprfs_fail(err, ENOMEM, "%s", why.msg);
	if (rc)
		aprfs_log_once(APRFS_LOG_WARN, why.msg, "%s; the views of %s stay unweighted",
			       why.msg, s->path);
	rc = src_watch_path(s, path, &st, err);
	return rc ? rc : s->imatrix != NULL;
}

int src_imatrix_find(aprfs_source *s, const aprfs_source_ctx *ctx, size_t stem_len,
		     aprfs_err *err)
{
	const char *named = ctx ? ctx->imatrix_name : NULL;
	if (ctx && ctx->imatrix)
		return try_candidate(s, ctx->imatrix, err) < 0 ? -err->code : 0;
	if (named && named[0] == '/')
		return try_candidate(s, named, err) < 0 ? -err->code : 0;
	if (named) {
		char *path = src_sibling(s->path, named);
		int rc = path ? try_candidate(s, path, err)
			      : aprfs_fail(err, ENOMEM, "out of memory");
		free(path);
		return rc < 0 ? rc : 0;
	}
	const char *base = strrchr(s->path, '/');
	char stem[512], name[600];
	base = base ? base + 1 : s->path;
	snprintf(stem, sizeof(stem), "%.*s", (int)stem_len, base);
	static const char *const suffix[] = {".imatrix.gguf", ".imatrix.dat", "imatrix.gguf",
					     "imatrix.dat"};
	for (size_t i = 0; i < sizeof(suffix) / sizeof(suffix[0]); i++) {
		snprintf(name, sizeof(name), "%s%s", i < 2 ? stem : "", suffix[i]);
		char *path = src_sibling(s->path, name);
		if (!path)
			return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
		int rc = try_candidate(s, path, err);
		free(path);
		if (rc)
			return rc < 0 ? rc : 0;
	}
	return 0;
}
