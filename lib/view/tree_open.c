/* tree_open.c - opening paths of the tree: a handle's snapshot (a pass-through descriptor
 * or a planned APR file), the page-cache bookkeeping per path that decides keep / drop /
 * bypass, and closing, which frees a removed source's last reference. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/openfile.h"
#include "view/tree_impl.h"

/* ---- opening ---------------------------------------------------------------------- */

pages *tree_pages_of(aprfs_tree *t, const char *path, int create)
{
	pages **slot = &t->pages[tree_hash(path) % NBUCKETS];

	for (pages *p = *slot; p; p = p->next)
		if (strcmp(p->path, path) == 0)
			return p;
	if (!create)
		return NULL;
	pages *p = calloc(1, sizeof(*p));
	if (!p || !(p->path = strdup(path))) {
		free(p);
		return NULL;
	}
	p->next = *slot;
	*slot = p;
	return p;
}

/* A path whose source is gone while handles on it are still open: fstat on such a handle
 * reaches us as a getattr by path (the kernel names no handle for it), and must answer
 * from the open snapshot, as a local file system does for an open, unlinked file. */
int tree_open_snapshot_stat(aprfs_tree *t, const char *path, struct stat *st,
			    aprfs_node_kind *kind)
{
	pages *p;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	p = tree_pages_of(t, tree_skip_slashes(path), 0);
	if (p && p->open_cur + p->open_old > 0) {
		*st = p->st;
		if (kind)
			*kind = (aprfs_node_kind)p->kind;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

/* Decide the caching of a new handle on snapshot id of path (attributes st). */
static aprfs_pages pages_open(aprfs_tree *t, const char *path, uint64_t id,
			      const struct stat *st, aprfs_node_kind kind)
{
	aprfs_pages mode;
	pages *p;

	pthread_mutex_lock(&t->lock);
	p = tree_pages_of(t, path, 1);
	if (!p) {
		pthread_mutex_unlock(&t->lock);
		return APRFS_PAGES_BYPASS; /* cannot track it: the safe choice */
	}
	if (p->current != id) {
		p->open_old += p->open_cur;
		p->open_cur = 0;
		p->current = id;
	}
	if (p->open_old) {
		mode = APRFS_PAGES_BYPASS;
	} else if (p->cached == id) {
		mode = APRFS_PAGES_KEEP;
	} else {
		mode = APRFS_PAGES_DROP;
		p->cached = id;
	}
	p->open_cur++;
	p->st = *st;
	p->kind = kind;
	pthread_mutex_unlock(&t->lock);
	return mode;
}

static void pages_close(aprfs_tree *t, const char *path, uint64_t id)
{
	pages *p;

	pthread_mutex_lock(&t->lock);
	p = tree_pages_of(t, path, 0);
	if (p && p->current == id && p->open_cur)
		p->open_cur--;
	else if (p && p->current != id && p->open_old)
		p->open_old--;
	pthread_mutex_unlock(&t->lock);
}

/* The identity of a pass-through file's bytes: a new inode, size or mtime is a new
 * snapshot. Never 0 (0 means "no pages cached"). */
static uint64_t file_snapshot(const struct stat *st)
{
	uint64_t v[5] = {st->st_dev, st->st_ino, (uint64_t)st->st_size,
			 (uint64_t)st->st_mtim.tv_sec, (uint64_t)st->st_mtim.tv_nsec};
	uint64_t h = 1469598103934665603ull;

	for (size_t i = 0; i < 5 * sizeof(uint64_t); i++)
		h = (h ^ ((const uint8_t *)v)[i]) * 1099511628211ull;
	return h ? h : 1;
}

/* n->real is the resolved file: if it is a link now, or no longer a regular file inside
 * the root, something swapped it since the lookup, and it is refused. */
static int open_file(aprfs_tree *t, node *n, const char *path, aprfs_tree_open_result *out,
		     aprfs_err *err)
{
	int fd, rc = aprfs_open_regular(n->real, t->root, O_NOFOLLOW, &fd, &out->st, err);

	if (rc < 0)
		return aprfs_fail(err, ENOENT, "%s: %s", path, err ? err->msg : "not served");
	out->fd = fd;
	out->st.st_mode &= ~(mode_t)0222;
	out->snapshot = file_snapshot(&out->st);
	return 0;
}

int aprfs_tree_open(aprfs_tree *t, const char *path, aprfs_tree_open_result *out,
		    aprfs_err *err)
{
	node *n = malloc(sizeof(*n));
	int rc;

	memset(out, 0, sizeof(*out));
	out->fd = -1;
	if (!n)
		return aprfs_fail(err, ENOMEM, "out of memory");
	rc = tree_lookup(t, path, n);
	if (rc < 0)
		aprfs_fail(err, -rc, "%s: %s", path, strerror(-rc));
	else if (n->kind == APRFS_NODE_DIR)
		rc = aprfs_fail(err, EISDIR, "%s: is a directory", path);
	else if (n->kind == APRFS_NODE_LINK)
		rc = aprfs_fail(err, ELOOP, "%s: is a symbolic link", path);
	else if (n->kind == APRFS_NODE_FILE)
		rc = open_file(t, n, path, out, err);
	if (rc == 0 && n->kind == APRFS_NODE_APR) {
		out->file = n->cp->files[n->variant];
		aprfs_file_ref(out->file);
		out->snapshot = aprfs_file_id(out->file);
		out->source_path = strdup(n->cp->rel);
	}
	if (rc == 0) {
		out->kind = n->kind;
		if (n->kind != APRFS_NODE_FILE)
			out->st = n->st;
		out->path = strdup(tree_skip_slashes(path));
		if (n->kind != APRFS_NODE_STATS && n->kind != APRFS_NODE_METRICS && out->path)
			out->pages = pages_open(t, out->path, out->snapshot, &out->st, n->kind);
		else
			out->pages = APRFS_PAGES_BYPASS;
	}
	ckpt_put(t, n->cp);
	free(n);
	return rc;
}

void aprfs_tree_close(aprfs_tree *t, aprfs_tree_open_result *r)
{
	if (r->path && r->kind != APRFS_NODE_STATS && r->kind != APRFS_NODE_METRICS)
		pages_close(t, r->path, r->snapshot);
	if (r->fd >= 0)
		close(r->fd);
	if (r->file && r->source_path) /* a source removed or replaced: free it now */
		ckpt_drop_if_stale(t, r->source_path, aprfs_file_source(r->file));
	aprfs_file_unref(r->file);
	free(r->source_path);
	free(r->path);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}
