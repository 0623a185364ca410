/* tree.c - the virtual tree: what a path is (mirrored directory, pass-through file, link
 * shown as a link, X.<variant>.apr by the naming rule, /.aprfs), resolved safely inside the
 * root. Paths are tree_path.c, opening (and stat of a removed open path) tree_open.c,
 * listing tree_list.c, the checkpoint table ckpt.c. */
#include "view/tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/openfile.h"
#include "view/tree_impl.h"

/* The target of link rel (which resolved to directory real) relative to rel's directory:
 * "../b/c" for "a/l" -> ROOT/b/c. */
static int link_target(const aprfs_tree *t, const char *rel, const char *real, char *out,
		       size_t cap)
{
	const char *to = real + strlen(t->root), *from = rel;
	size_t at = 0;

	to = tree_skip_slashes(to);
	/* Drop the directory components both paths share. */
	for (;;) {
		const char *fs = strchr(from, '/'), *ts = strchr(to, '/');
		if (!fs)
			break;
		size_t fl = (size_t)(fs - from), tl = ts ? (size_t)(ts - to) : strlen(to);
		if (fl != tl || strncmp(from, to, fl) != 0)
			break;
		from = fs + 1;
		to = ts ? ts + 1 : to + tl;
	}
	for (const char *p = from; (p = strchr(p, '/')); p++) {
		if (at + 4 > cap)
			return -ENAMETOOLONG;
		memcpy(out + at, "../", 4);
		at += 3;
	}
	if (*to)
		at += (size_t)snprintf(out + at, cap - at, "%s", to);
	else if (at)
		out[--at] = '\0'; /* "../../" -> "../.." */
	else
		at = (size_t)snprintf(out, cap, ".");
	return at >= cap ? -ENAMETOOLONG : 0;
}

const char *tree_slot_name(const aprfs_tree *t, int slot)
{
	return slot < APRFS_VARIANT_COUNT ? aprfs_variant_name(slot)
					  : t->conf.views[slot - APRFS_VARIANT_COUNT].name;
}

/* The slot of a variant or named view served by this tree, or -1. */
static int slot_of(const aprfs_tree *t, const char *var)
{
	int v = aprfs_variant_index(var);
	if (v >= 0)
		return t->conf.variants & (1u << v) ? v : -1;
	for (size_t k = 0; k < t->conf.nviews && k < APRFS_VIEW_MAX; k++)
		if (strcmp(t->conf.views[k].name, var) == 0)
			return APRFS_VARIANT_COUNT + (int)k;
	return -1;
}

/* "stem.q8.apr" -> stem and slot (variant index, or a named view's), if served. */
int tree_parse_apr_name(const aprfs_tree *t, const char *name, char *stem, size_t size,
			int *variant)
{
	size_t n = strlen(name), sl = strlen(APR_SUFFIX);
	const char *dot;
	char var[48];
	int v;

	if (!tree_ends_with(name, APR_SUFFIX) || n - sl >= size)
		return 0;
	memcpy(stem, name, n - sl);
	stem[n - sl] = '\0';
	dot = strrchr(stem, '.');
	if (!dot || dot == stem || strlen(dot + 1) >= sizeof(var))
		return 0;
	strcpy(var, dot + 1);
	v = slot_of(t, var);
	if (v < 0)
		return 0;
	stem[dot - stem] = '\0';
	*variant = v;
	return 1;
}

/* ---- the tree --------------------------------------------------------------------- */

int aprfs_tree_new(const char *root, const aprfs_tree_conf *conf, aprfs_tree **out,
		   aprfs_err *err)
{
	char real[PATH_MAX];
	struct stat st;
	aprfs_tree *t;

	if (!realpath(root, real) || stat(real, &st) != 0)
		return aprfs_fail(err, errno, "%s: %s", root, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return aprfs_fail(err, ENOTDIR, "%s: not a directory", root);
	t = calloc(1, sizeof(*t));
	if (!t || !(t->root = strdup(real))) {
		free(t);
		return aprfs_fail(err, ENOMEM, "out of memory");
	}
	t->conf = *conf;
	if (conf->hide && realpath(conf->hide, real) && aprfs_path_under(real, t->root) &&
	    !(t->hide = strdup(real))) {
		free(t->root);
		free(t);
		return aprfs_fail(err, ENOMEM, "out of memory");
	}
	if (!t->conf.max_sources)
		t->conf.max_sources = 512;
	pthread_mutex_init(&t->lock, NULL);
	*out = t;
	return 0;
}

void aprfs_tree_free(aprfs_tree *t)
{
	if (!t)
		return;
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (t->buckets[b]) {
			ckpt *c = t->buckets[b];

			t->buckets[b] = c->next;
			if (--c->refs == 0)
				ckpt_destroy(t, c);
		}
	}
	for (size_t b = 0; b < NBUCKETS; b++) {
		while (t->pages[b]) {
			pages *p = t->pages[b];

			t->pages[b] = p->next;
			free(p->path);
			free(p);
		}
	}
	pthread_mutex_destroy(&t->lock);
	free(t->hide);
	free(t->root);
	free(t);
}

const char *aprfs_tree_root(const aprfs_tree *t)
{
	return t->root;
}

void aprfs_tree_counts(aprfs_tree *t, size_t *open, size_t *broken)
{
	size_t ok = 0, bad = 0;

	pthread_mutex_lock(&t->lock);
	for (size_t b = 0; b < NBUCKETS; b++)
		for (ckpt *c = t->buckets[b]; c; c = c->next)
			c->src ? ok++ : bad++;
	pthread_mutex_unlock(&t->lock);
	if (open)
		*open = ok;
	if (broken)
		*broken = bad;
}

/* Is single-file checkpoint `name` a shard of some index in directory dir? */
static int is_shard_in(aprfs_tree *t, const char *dir, const char *name)
{
	char real[PATH_MAX], *rel;
	struct stat st;
	struct dirent *e;
	DIR *d;
	int shard = 0;

	if (tree_resolve(t, dir, real, &st) < 0 || !S_ISDIR(st.st_mode) || !(d = opendir(real)))
		return 0;
	while (!shard && (e = readdir(d))) {
		if (aprfs_ckpt_name(e->d_name, NULL) != APRFS_CKPT_INDEX ||
		    !(rel = tree_join(dir, e->d_name)))
			continue;
		ckpt *ix = ckpt_get(t, rel, 1);
		free(rel);
		shard = ix && ckpt_has_shard(ix, name);
		ckpt_put(t, ix);
	}
	closedir(d);
	return shard;
}

/* The checkpoint that owns the name stem in directory dir: the first name in suffix
 * priority order that exists (an index claims its stem even broken), skipping single
 * files that are some index's shards. */
static ckpt *ckpt_for_stem(aprfs_tree *t, const char *dir, const char *stem)
{
	for (size_t i = 0; aprfs_ckpt_suffix(i); i++) {
		char name[NAME_MAX + 1], *rel;
		ckpt *c;

		if ((size_t)snprintf(name, sizeof(name), "%s%s", stem, aprfs_ckpt_suffix(i)) >=
		    sizeof(name))
			continue;
		aprfs_ckpt_kind kind = aprfs_ckpt_name(name, NULL);
		if (kind == APRFS_CKPT_SINGLE && is_shard_in(t, dir, name))
			continue;
		if (!(rel = tree_join(dir, name)))
			continue;
		c = ckpt_get(t, rel, kind == APRFS_CKPT_INDEX);
		free(rel);
		if (c)
			return c;
	}
	return NULL;
}

void tree_meta_dir_stat(const aprfs_tree *t, struct stat *st)
{
	struct stat rs;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	if (stat(t->root, &rs) == 0) {
		st->st_uid = rs.st_uid;
		st->st_gid = rs.st_gid;
		st->st_mtim = st->st_atim = st->st_ctim = rs.st_mtim;
	}
}

/* The virtual files under /.aprfs. */
int tree_lookup_meta(aprfs_tree *t, const char *rel, node *n)
{
	tree_meta_dir_stat(t, &n->st);
	if (strcmp(rel, META_DIR) == 0) {
		n->kind = APRFS_NODE_DIR;
		return 0;
	}
	if (strcmp(rel, META_DIR "/" STATS_NAME) == 0)
		n->kind = APRFS_NODE_STATS;
	else if (strcmp(rel, META_DIR "/" METRICS_NAME) == 0)
		n->kind = APRFS_NODE_METRICS;
	else
		return -ENOENT;
	n->st.st_mode = S_IFREG | 0444;
	n->st.st_nlink = 1;
	return 0;
}

int tree_lookup(aprfs_tree *t, const char *path, node *n)
{
	const char *rel = tree_skip_slashes(path), *slash = strrchr(rel, '/');
	char dir[PATH_MAX], stem[NAME_MAX + 1];
	size_t dlen = slash ? (size_t)(slash - rel) : 0;
	int rc;

	memset(n, 0, sizeof(*n));
	if (strncmp(rel, META_DIR, strlen(META_DIR)) == 0 &&
	    (rel[strlen(META_DIR)] == '\0' || rel[strlen(META_DIR)] == '/'))
		return tree_lookup_meta(t, rel, n);
	if (dlen >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, dlen);
	dir[dlen] = '\0';
	if (tree_parse_apr_name(t, slash ? slash + 1 : rel, stem, sizeof(stem), &n->variant)) {
		ckpt *c = ckpt_for_stem(t, dir, stem);

		if (c && c->src && c->files[n->variant]) {
			n->kind = APRFS_NODE_APR;
			n->cp = c;
			ckpt_apr_stat(c, n->variant, &n->st);
			return 0;
		}
		ckpt_put(t, c); /* not a virtual name after all: maybe a real file */
	}
	rc = tree_resolve(t, rel, n->real, &n->st);
	if (rc < 0)
		return rc;
	if (S_ISLNK(n->st.st_mode)) {
		char target[PATH_MAX];
		n->kind = APRFS_NODE_LINK;
		if ((rc = link_target(t, rel, n->real, target, sizeof(target))) < 0)
			return rc;
		n->st.st_size = (off_t)strlen(target);
		return 0;
	}
	n->kind = S_ISDIR(n->st.st_mode) ? APRFS_NODE_DIR : APRFS_NODE_FILE;
	n->st.st_mode &= ~(mode_t)0222;
	return 0;
}

int aprfs_tree_readlink(aprfs_tree *t, const char *path, char *buf, size_t size)
{
	node *n = malloc(sizeof(*n));
	int rc = n ? tree_lookup(t, path, n) : -ENOMEM;

	if (rc == 0 && n->kind != APRFS_NODE_LINK)
		rc = -EINVAL;
	if (rc == 0)
		rc = link_target(t, tree_skip_slashes(path), n->real, buf, size);
	if (n)
		ckpt_put(t, n->cp);
	free(n);
	return rc;
}
