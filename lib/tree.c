/* tree.c - the virtual tree: mirrored directories, pass-through files, links, and the
 * naming rule that turns checkpoints into X.<variant>.apr names; lookups, listings and
 * opens. The opened checkpoints themselves live in ckpt.c. */
#include "tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "openfile.h"
#include "tree_impl.h"

/* ---- paths ---------------------------------------------------------------------- */

static const char *skip_slashes(const char *p)
{
	while (*p == '/')
		p++;
	return p;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

/* "a" + "b" -> "a/b", "" + "b" -> "b". NULL when it does not fit PATH_MAX. */
static char *join(const char *dir, const char *name)
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
static int hidden(const aprfs_tree *t, const char *path)
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
	if (hidden(t, full) || !parent_is_real(t, rel)) /* before anything walks into it */
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
	if (!tree_inside_root(t, real) || hidden(t, real))
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

/* The target of link rel (which resolved to directory real) relative to rel's directory:
 * "../b/c" for "a/l" -> ROOT/b/c. */
static int link_target(const aprfs_tree *t, const char *rel, const char *real, char *out,
		       size_t cap)
{
	const char *to = real + strlen(t->root), *from = rel;
	size_t at = 0;

	to = skip_slashes(to);
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

/* "stem.q8.apr" -> stem and variant index, if that variant is served. */
static int parse_apr_name(const aprfs_tree *t, const char *name, char *stem, size_t size,
			  int *variant)
{
	size_t n = strlen(name), sl = strlen(APR_SUFFIX);
	const char *dot;
	char var[16];
	int v;

	if (!ends_with(name, APR_SUFFIX) || n - sl >= size)
		return 0;
	memcpy(stem, name, n - sl);
	stem[n - sl] = '\0';
	dot = strrchr(stem, '.');
	if (!dot || dot == stem || strlen(dot + 1) >= sizeof(var))
		return 0;
	strcpy(var, dot + 1);
	v = aprfs_variant_index(var);
	if (v < 0 || !(t->conf.variants & (1u << v)))
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

/* What a path is. For APR nodes *cp is a borrowed checkpoint (put it) and *variant set;
 * for FILE and DIR nodes real is filled; for LINK nodes, real is the target directory. */
typedef struct node {
	aprfs_node_kind kind;
	struct stat st;
	ckpt *cp;
	int variant;
	char real[PATH_MAX];
} node;

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
		    !(rel = join(dir, e->d_name)))
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
	for (int i = 0; aprfs_ckpt_suffix[i]; i++) {
		char name[NAME_MAX + 1], *rel;
		ckpt *c;

		if ((size_t)snprintf(name, sizeof(name), "%s%s", stem, aprfs_ckpt_suffix[i]) >=
		    sizeof(name))
			continue;
		aprfs_ckpt_kind kind = aprfs_ckpt_name(name, NULL);
		if (kind == APRFS_CKPT_SINGLE && is_shard_in(t, dir, name))
			continue;
		if (!(rel = join(dir, name)))
			continue;
		c = ckpt_get(t, rel, kind == APRFS_CKPT_INDEX);
		free(rel);
		if (c)
			return c;
	}
	return NULL;
}

static void meta_dir_stat(const aprfs_tree *t, struct stat *st)
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
static int lookup_meta(aprfs_tree *t, const char *rel, node *n)
{
	meta_dir_stat(t, &n->st);
	if (strcmp(rel, META_DIR) == 0) {
		n->kind = APRFS_NODE_DIR;
		return 0;
	}
	if (strcmp(rel, META_DIR "/" STATS_NAME) != 0)
		return -ENOENT;
	n->kind = APRFS_NODE_STATS;
	n->st.st_mode = S_IFREG | 0444;
	n->st.st_nlink = 1;
	return 0;
}

static int lookup(aprfs_tree *t, const char *path, node *n)
{
	const char *rel = skip_slashes(path), *slash = strrchr(rel, '/');
	char dir[PATH_MAX], stem[NAME_MAX + 1];
	size_t dlen = slash ? (size_t)(slash - rel) : 0;
	int rc;

	memset(n, 0, sizeof(*n));
	if (strncmp(rel, META_DIR, strlen(META_DIR)) == 0 &&
	    (rel[strlen(META_DIR)] == '\0' || rel[strlen(META_DIR)] == '/'))
		return lookup_meta(t, rel, n);
	if (dlen >= sizeof(dir))
		return -ENAMETOOLONG;
	memcpy(dir, rel, dlen);
	dir[dlen] = '\0';
	if (parse_apr_name(t, slash ? slash + 1 : rel, stem, sizeof(stem), &n->variant)) {
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

static pages *pages_of(aprfs_tree *t, const char *path, int create);

/* A path whose source is gone while handles on it are still open: fstat on such a handle
 * reaches us as a getattr by path (the kernel names no handle for it), and must answer
 * from the open snapshot, as a local file system does for an open, unlinked file. */
static int open_snapshot_stat(aprfs_tree *t, const char *path, struct stat *st,
			      aprfs_node_kind *kind)
{
	pages *p;
	int rc = -ENOENT;

	pthread_mutex_lock(&t->lock);
	p = pages_of(t, skip_slashes(path), 0);
	if (p && p->open_cur + p->open_old > 0) {
		*st = p->st;
		if (kind)
			*kind = (aprfs_node_kind)p->kind;
		rc = 0;
	}
	pthread_mutex_unlock(&t->lock);
	return rc;
}

int aprfs_tree_stat(aprfs_tree *t, const char *path, struct stat *st, aprfs_node_kind *kind)
{
	node *n = malloc(sizeof(*n));
	int rc;

	if (!n)
		return -ENOMEM;
	rc = lookup(t, path, n);
	if (rc == 0) {
		*st = n->st;
		if (kind)
			*kind = n->kind;
	}
	ckpt_put(t, n->cp);
	free(n);
	return rc == -ENOENT ? open_snapshot_stat(t, path, st, kind) : rc;
}

int aprfs_tree_readlink(aprfs_tree *t, const char *path, char *buf, size_t size)
{
	node *n = malloc(sizeof(*n));
	int rc = n ? lookup(t, path, n) : -ENOMEM;

	if (rc == 0 && n->kind != APRFS_NODE_LINK)
		rc = -EINVAL;
	if (rc == 0)
		rc = link_target(t, skip_slashes(path), n->real, buf, size);
	if (n)
		ckpt_put(t, n->cp);
	free(n);
	return rc;
}

/* ---- opening ---------------------------------------------------------------------- */

static pages *pages_of(aprfs_tree *t, const char *path, int create)
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

/* Decide the caching of a new handle on snapshot id of path (attributes st). */
static aprfs_pages pages_open(aprfs_tree *t, const char *path, uint64_t id,
			      const struct stat *st, aprfs_node_kind kind)
{
	aprfs_pages mode;
	pages *p;

	pthread_mutex_lock(&t->lock);
	p = pages_of(t, path, 1);
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
	p = pages_of(t, path, 0);
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
	rc = lookup(t, path, n);
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
		out->path = strdup(skip_slashes(path));
		if (n->kind != APRFS_NODE_STATS && out->path)
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
	if (r->path && r->kind != APRFS_NODE_STATS)
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

/* ---- listing ---------------------------------------------------------------------- */

typedef struct entry {
	char *name;
	unsigned char type;
} entry;

typedef struct listing {
	char dir_real[PATH_MAX];
	entry *e;
	size_t n;
	ckpt **cps; /* the checkpoints found, borrowed */
	char **stems;
	size_t ncps;
} listing;

static void listing_free(aprfs_tree *t, listing *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->e[i].name);
	for (size_t i = 0; i < l->ncps; i++) {
		ckpt_put(t, l->cps[i]);
		free(l->stems[i]);
	}
	free(l->e);
	free(l->cps);
	free(l->stems);
}

static int read_entries(const char *real, listing *l)
{
	DIR *d = opendir(real);
	struct dirent *de;
	size_t cap = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (l->n == cap) {
			entry *grown =
			    realloc(l->e, (cap = cap ? cap * 2 : 64) * sizeof(*grown));

			if (!grown)
				break;
			l->e = grown;
		}
		if (!(l->e[l->n].name = strdup(de->d_name)))
			break;
		l->e[l->n++].type = de->d_type;
	}
	closedir(d);
	return 0;
}

static int add_ckpt(listing *l, ckpt *c, const char *stem, size_t len)
{
	ckpt **cps = realloc(l->cps, (l->ncps + 1) * sizeof(*cps));
	char **stems;

	if (cps)
		l->cps = cps;
	stems = cps ? realloc(l->stems, (l->ncps + 1) * sizeof(*stems)) : NULL;
	if (!stems)
		return -ENOMEM;
	l->stems = stems;
	if (!(l->stems[l->ncps] = strndup(stem, len)))
		return -ENOMEM;
	l->cps[l->ncps++] = c;
	return 0;
}

static int is_shard(const listing *l, const char *name)
{
	for (size_t i = 0; i < l->ncps; i++)
		if (ckpt_has_shard(l->cps[i], name))
			return 1;
	return 0;
}

static int claimed_stem(const listing *l, const char *stem, size_t len)
{
	for (size_t i = 0; i < l->ncps; i++)
		if (strlen(l->stems[i]) == len && strncmp(l->stems[i], stem, len) == 0)
			return 1;
	return 0;
}

/* Find the checkpoints of a directory, suffix by suffix in priority order: indexes first
 * (they claim their stem and shards), then single files no index claims, a stem going to
 * the first suffix that has it. */
static int find_ckpts(aprfs_tree *t, const char *dir, listing *l)
{
	for (int s = 0; aprfs_ckpt_suffix[s]; s++) {
		const char *suffix = aprfs_ckpt_suffix[s];
		for (size_t i = 0; i < l->n; i++) {
			const char *name = l->e[i].name;
			size_t stem_len;
			aprfs_ckpt_kind kind;
			char *rel;
			ckpt *c;

			if (!ends_with(name, suffix) ||
			    (kind = aprfs_ckpt_name(name, &stem_len)) == APRFS_CKPT_NONE ||
			    strlen(name) - stem_len != strlen(suffix) ||
			    (kind == APRFS_CKPT_SINGLE && is_shard(l, name)) ||
			    claimed_stem(l, name, stem_len) || !(rel = join(dir, name)))
				continue;
			c = ckpt_get(t, rel, kind == APRFS_CKPT_INDEX);
			free(rel);
			if (c && add_ckpt(l, c, name, stem_len) < 0) {
				ckpt_put(t, c);
				return -ENOMEM;
			}
		}
	}
	return 0;
}

/* A real entry named like one of our virtual files is hidden behind it. */
static int shadowed(aprfs_tree *t, const listing *l, const char *name)
{
	char stem[NAME_MAX + 1];
	int v;

	if (!parse_apr_name(t, name, stem, sizeof(stem), &v))
		return 0;
	for (size_t i = 0; i < l->ncps; i++)
		if (l->cps[i]->src && l->cps[i]->files[v] && strcmp(l->stems[i], stem) == 0)
			return 1;
	return 0;
}

static int fill_virtual(const listing *l, aprfs_tree_fill fill, void *ctx)
{
	char name[NAME_MAX + 1];
	struct stat st;

	for (size_t i = 0; i < l->ncps; i++) {
		const ckpt *c = l->cps[i];

		for (int v = 0; c->src && v < APRFS_VARIANT_COUNT; v++) {
			if (!c->files[v] ||
			    (size_t)snprintf(name, sizeof(name), "%s.%s%s", l->stems[i],
					     aprfs_variant_names[v],
					     APR_SUFFIX) >= sizeof(name))
				continue;
			ckpt_apr_stat(c, v, &st);
			if (fill(name, &st, ctx))
				return 1;
		}
	}
	return 0;
}

static int is_hidden_entry(const aprfs_tree *t, const listing *l, const char *name)
{
	char full[PATH_MAX];

	return t->hide &&
	       (size_t)snprintf(full, sizeof(full), "%s/%s", l->dir_real, name) <
		   sizeof(full) &&
	       hidden(t, full);
}

/* Type of a real entry as served: DT_REG and DT_DIR are trusted from readdir; anything
 * else (links, special files, file systems that do not report types) is resolved, which
 * hides and logs what is not served. */
static int real_type(aprfs_tree *t, const char *dir, const entry *e, struct stat *st)
{
	char real[PATH_MAX], *rel;
	int rc;

	memset(st, 0, sizeof(*st));
	if (e->type == DT_REG || e->type == DT_DIR) {
		st->st_mode = e->type == DT_REG ? S_IFREG | 0444 : S_IFDIR | 0555;
		return 0;
	}
	if (!(rel = join(dir, e->name)))
		return -ENOENT;
	rc = tree_resolve(t, rel, real, st);
	free(rel);
	if (rc < 0)
		return rc;
	if (!S_ISLNK(st->st_mode))
		st->st_mode &= ~(mode_t)0222;
	return 0;
}

int aprfs_tree_list(aprfs_tree *t, const char *path, aprfs_tree_fill fill, void *ctx)
{
	const char *rel = skip_slashes(path);
	listing l = {0};
	struct stat st;
	node *n = malloc(sizeof(*n));
	int rc = n ? lookup(t, rel, n) : -ENOMEM;

	if (rc == 0 && n->kind != APRFS_NODE_DIR)
		rc = -ENOTDIR;
	if (rc == 0 && strcmp(rel, META_DIR) == 0) {
		lookup_meta(t, META_DIR "/" STATS_NAME, n);
		fill(STATS_NAME, &n->st, ctx);
		free(n);
		return 0;
	}
	if (rc == 0) {
		memcpy(l.dir_real, n->real, sizeof(l.dir_real));
		rc = read_entries(n->real, &l);
	}
	if (n)
		ckpt_put(t, n->cp);
	free(n);
	if (rc == 0 && *rel == '\0') {
		meta_dir_stat(t, &st);
		if (fill(META_DIR, &st, ctx))
			goto out;
	}
	if (rc == 0)
		rc = find_ckpts(t, rel, &l);
	if (rc < 0 || fill_virtual(&l, fill, ctx))
		goto out;
	for (size_t i = 0; i < l.n; i++) {
		if ((*rel == '\0' && strcmp(l.e[i].name, META_DIR) == 0) ||
		    shadowed(t, &l, l.e[i].name) || is_hidden_entry(t, &l, l.e[i].name) ||
		    real_type(t, rel, &l.e[i], &st) < 0)
			continue;
		if (fill(l.e[i].name, &st, ctx))
			break;
	}
out:
	listing_free(t, &l);
	return rc;
}

/* ---- the start-up survey ---------------------------------------------------------- */

typedef struct survey {
	aprfs_tree *t;
	uint64_t max_dirs;
	void (*broken)(const char *rel, const char *why, void *ctx);
	int (*stop)(void *ctx);
	void *ctx;
	aprfs_tree_survey *out;
} survey;

/* Breadth by recursion on directories only: entries are what a listing shows. */
static void survey_dir(survey *sv, const char *rel)
{
	listing l = {0};
	node *n = malloc(sizeof(*n));

	if (!n || sv->out->dirs >= sv->max_dirs || (sv->stop && sv->stop(sv->ctx))) {
		sv->out->complete = 0;
		free(n);
		return;
	}
	sv->out->dirs++;
	if (lookup(sv->t, rel, n) == 0 && n->kind == APRFS_NODE_DIR &&
	    read_entries(n->real, &l) == 0 && find_ckpts(sv->t, rel, &l) == 0) {
		for (size_t i = 0; i < l.ncps; i++) {
			sv->out->checkpoints++;
			if (l.cps[i]->src)
				sv->out->served++;
			else if (++sv->out->broken && sv->broken)
				sv->broken(l.cps[i]->rel, l.cps[i]->why ? l.cps[i]->why : "?",
					   sv->ctx);
		}
		for (size_t i = 0; i < l.n; i++) {
			char *sub;
			if (l.e[i].type != DT_DIR || is_hidden_entry(sv->t, &l, l.e[i].name) ||
			    (!*rel && strcmp(l.e[i].name, META_DIR) == 0) ||
			    !(sub = join(rel, l.e[i].name)))
				continue;
			survey_dir(sv, sub);
			free(sub);
		}
	}
	ckpt_put(sv->t, n->cp);
	free(n);
	listing_free(sv->t, &l);
}

void aprfs_tree_survey_run(aprfs_tree *t, uint64_t max_dirs,
			   void (*broken)(const char *rel, const char *why, void *ctx),
			   int (*stop)(void *ctx), void *ctx, aprfs_tree_survey *out)
{
	survey sv = {t, max_dirs, broken, stop, ctx, out};

	memset(out, 0, sizeof(*out));
	out->complete = 1;
	survey_dir(&sv, "");
}
