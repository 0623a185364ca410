/* tree_path.c - paths of the tree: joining and trimming them, and resolving a relative
 * path safely inside the root (links followed only within it, the mountpoint and anything
 * not a regular file or directory hidden, each refusal logged once). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/log.h"
#include "base/openfile.h"
#include "view/tree_impl.h"

const char *tree_skip_slashes(const char *p)
{
	while (*p == '/')
		p++;
	return p;
}

int tree_ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* "a" + "b" -> "a/b", "" + "b" -> "b". NULL when it does not fit PATH_MAX. */
char *tree_join(const char *dir, const char *name)
{
	size_t dl = strlen(dir), nl = strlen(name);
	char *p;

	if (dl + nl + 2 > PATH_MAX)
		return NULL;
	p = malloc(dl + nl + 2);
	if (!p)
		return NULL;
	memcpy(p, dir, dl);
	if (dl)
		p[dl++] = '/';
	memcpy(p + dl, name, nl + 1);
	return p;
}

int tree_inside_root(const aprfs_tree *t, const char *real)
{
	return aprfs_path_under(real, t->root);
}

/* The mountpoint, when it lies inside the source: never shown, or the tree would
 * contain itself (and a lookup would go through our own mount). */
int tree_hidden(const aprfs_tree *t, const char *path)
{
	return t->hide && aprfs_path_under(path, t->hide);
}

/* An entry that exists but is not served: said once per entry and reason. */
static int hide_entry(const char *rel, const char *why)
{
	char key[PATH_MAX + 64];

	snprintf(key, sizeof(key), "%s: %s", rel, why);
	aprfs_log_once(APRFS_LOG_WARN, key, "not listing %s: %s", rel, why);
	return -ENOENT;
}

/* The directory part of rel must be a real directory under the root, reached through
 * no link: directory links are shown as links, so no path below one is ever ours. */
static int parent_is_real(const aprfs_tree *t, const char *rel)
{
	const char *slash = strrchr(rel, '/');
	char dir[PATH_MAX], real[PATH_MAX];

	if (!slash)
		return 1;
	if ((size_t)snprintf(dir, sizeof(dir), "%s/%.*s", t->root, (int)(slash - rel), rel) >=
	    sizeof(dir))
		return 0;
	return realpath(dir, real) && strcmp(real, dir) == 0;
}

static const char *kind_word(mode_t m)
{
	return S_ISFIFO(m)		  ? "a FIFO is never served"
	       : S_ISSOCK(m)		  ? "a socket is never served"
	       : S_ISCHR(m) || S_ISBLK(m) ? "a device is never served"
					  : "not a regular file or directory";
}

/* What rel is on disk. Fills real (PATH_MAX bytes: the file or directory it names, links
 * followed) and st (its attributes; S_IFLNK for a link to a directory, which is shown as
 * a link). Anything that leaves the root, loops, dangles or is not a regular file or
 * directory is -ENOENT, logged once. */
int tree_resolve(const aprfs_tree *t, const char *rel, char *real, struct stat *st)
{
	char full[PATH_MAX];
	struct stat lst;

	if ((size_t)snprintf(full, sizeof(full), "%s%s%s", t->root, *rel ? "/" : "", rel) >=
	    sizeof(full))
		return -ENAMETOOLONG;
	if (tree_hidden(t, full) || !parent_is_real(t, rel)) /* before anything walks into it */
		return -ENOENT;
	if (lstat(full, &lst) != 0)
		return -errno;
	if (!S_ISLNK(lst.st_mode)) {
		if (!S_ISREG(lst.st_mode) && !S_ISDIR(lst.st_mode))
			return hide_entry(rel, kind_word(lst.st_mode));
		memcpy(real, full, strlen(full) + 1);
		*st = lst;
		return 0;
	}
	if (!realpath(full, real))
		return hide_entry(rel, errno == ELOOP ? "symbolic link loop"
						      : "dangling symbolic link");
	if (!tree_inside_root(t, real) || tree_hidden(t, real))
		return hide_entry(rel, "symbolic link leads outside the source directory");
	if (stat(real, st) != 0)
		return -errno;
	if (S_ISDIR(st->st_mode)) {
		*st = lst; /* the link itself: its target is written by link_target */
		return 0;
	}
	if (!S_ISREG(st->st_mode))
		return hide_entry(rel, kind_word(st->st_mode));
	return 0;
}
