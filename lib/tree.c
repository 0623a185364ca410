/* tree.c - the virtual tree: mirrored directories, pass-through files, and the naming
 * rule that turns checkpoints into X.<variant>.apr names; lookups, listings and opens.
 * The opened checkpoints themselves live in ckpt.c. */
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

/* path is dir or below it. */
static int under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

int tree_inside_root(const aprfs_tree *t, const char *real)
{
	return under(real, t->root);
}

/* The mountpoint, when it lies inside the source: never shown, or the tree would
 * contain itself (and a lookup would go through our own mount). */
static int hidden(const aprfs_tree *t, const char *path)
{
	return t->hide && under(path, t->hide);
}

/* The real path behind rel, following symlinks, only if it stays under the root: a link
 * that leaves it is treated as if it did not exist (never followed, never served).
 * Fills real (PATH_MAX bytes) and st (stat of the target). */
int tree_resolve(const aprfs_tree *t, const char *rel, char *real, struct stat *st)
{
	char full[PATH_MAX];

	if ((size_t)snprintf(full, sizeof(full), "%s/%s", t->root, rel) >= sizeof(full))
		return -ENAMETOOLONG;
	if (hidden(t, full)) /* checked before realpath walks into it */
		return -ENOENT;
	if (!realpath(full, real))
		return errno == ENAMETOOLONG ? -ENAMETOOLONG : -ENOENT;
	if (!tree_inside_root(t, real) || hidden(t, real))
		return -ENOENT;
	if (stat(real, st) != 0)
		return -errno;
	return 0;
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
	if (conf->hide && realpath(conf->hide, real) && under(real, t->root) &&
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
 * for FILE nodes real is filled. */
typedef struct node {
	aprfs_node_kind kind;
	struct stat st;
	ckpt *cp;
	int variant;
	char real[PATH_MAX];
} node;

/* The checkpoint that owns the name stem in directory dir: the index if one exists (even
 * broken: it claims the stem), else stem.safetensors unless that is some index's shard. */
static ckpt *ckpt_for_stem(aprfs_tree *t, const char *dir, const char *stem)
{
	char name[NAME_MAX + 1], *rel;
	ckpt *c = NULL;
	int shard = 0;

	if ((size_t)snprintf(name, sizeof(name), "%s%s", stem, INDEX_SUFFIX) < sizeof(name) &&
	    (rel = join(dir, name))) {
		c = ckpt_get(t, rel, 1);
		free(rel);
		if (c)
			return c;
	}
	if ((size_t)snprintf(name, sizeof(name), "%s%s", stem, ST_SUFFIX) >= sizeof(name))
		return NULL;
	/* Is it a shard of some index beside it? */
	char real[PATH_MAX];
	struct stat st;
	DIR *d;
	struct dirent *e;

	if (tree_resolve(t, dir, real, &st) < 0 || !(d = opendir(real)))
		return NULL;
	while (!shard && (e = readdir(d))) {
		if (!ends_with(e->d_name, INDEX_SUFFIX) || !(rel = join(dir, e->d_name)))
			continue;
		ckpt *ix = ckpt_get(t, rel, 1);
		free(rel);
		shard = ix && ckpt_has_shard(ix, name);
		ckpt_put(t, ix);
	}
	closedir(d);
	if (shard || !(rel = join(dir, name)))
		return NULL;
	c = ckpt_get(t, rel, 0);
	free(rel);
	return c;
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
	if (S_ISDIR(n->st.st_mode))
		n->kind = APRFS_NODE_DIR;
	else if (S_ISREG(n->st.st_mode))
		n->kind = APRFS_NODE_FILE;
	else
		return -ENOENT; /* FIFOs, sockets, devices: never served */
	n->st.st_mode &= ~(mode_t)0222;
	return 0;
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

/* Decide the caching of a new handle on snapshot id of path. */
static aprfs_pages pages_open(aprfs_tree *t, const char *path, uint64_t id)
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

static int open_file(const node *n, const char *path, aprfs_tree_open_result *out,
		     aprfs_err *err)
{
	/* O_NONBLOCK: if the file was swapped for a FIFO since the stat, opening it must
	 * not hang a FUSE thread; the fstat below then refuses it. */
	int fd = open(n->real, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	struct stat st;

	if (fd < 0)
		return aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return aprfs_fail(err, ENOENT, "%s: not a regular file", path);
	}
	out->fd = fd;
	out->snapshot = file_snapshot(&st);
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
	else if (n->kind == APRFS_NODE_FILE)
		rc = open_file(n, path, out, err);
	if (rc == 0 && n->kind == APRFS_NODE_APR) {
		out->file = n->cp->files[n->variant];
		aprfs_file_ref(out->file);
		out->snapshot = aprfs_file_id(out->file);
		out->source_path = strdup(n->cp->rel);
	}
	if (rc == 0) {
		out->kind = n->kind;
		out->path = strdup(skip_slashes(path));
		if (n->kind != APRFS_NODE_STATS && out->path)
			out->pages = pages_open(t, out->path, out->snapshot);
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
	if (!stems) {
		return -ENOMEM;
	}
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

/* Find the checkpoints of a directory: indexes first (they claim their stem and shards),
 * then single files that no index claims. */
static int find_ckpts(aprfs_tree *t, const char *dir, listing *l, int is_index)
{
	const char *suffix = is_index ? INDEX_SUFFIX : ST_SUFFIX;

	for (size_t i = 0; i < l->n; i++) {
		const char *name = l->e[i].name;
		size_t stem_len = strlen(name) - strlen(suffix);
		char *rel;
		ckpt *c;

		if (!ends_with(name, suffix) || (!is_index && is_shard(l, name)) ||
		    claimed_stem(l, name, stem_len) || !(rel = join(dir, name)))
			continue;
		c = ckpt_get(t, rel, is_index);
		free(rel);
		if (c && add_ckpt(l, c, name, stem_len) < 0) {
			ckpt_put(t, c);
			return -ENOMEM;
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

/* Type of a real entry as served: DT_REG and DT_DIR are trusted from readdir; symlinks
 * (and file systems that do not report types) are resolved and must stay inside. */
static int real_type(aprfs_tree *t, const char *dir, const entry *e, struct stat *st)
{
	char real[PATH_MAX], *rel;
	int rc;

	memset(st, 0, sizeof(*st));
	if (e->type == DT_REG || e->type == DT_DIR) {
		st->st_mode = e->type == DT_REG ? S_IFREG | 0444 : S_IFDIR | 0555;
		return 0;
	}
	if ((e->type != DT_LNK && e->type != DT_UNKNOWN) || !(rel = join(dir, e->name)))
		return -ENOENT;
	rc = tree_resolve(t, rel, real, st);
	free(rel);
	if (rc < 0 || !(S_ISREG(st->st_mode) || S_ISDIR(st->st_mode)))
		return -ENOENT;
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
	free(n);
	if (rc == 0 && *rel == '\0') {
		meta_dir_stat(t, &st);
		if (fill(META_DIR, &st, ctx))
			goto out;
	}
	if (rc == 0)
		rc = find_ckpts(t, rel, &l, 1);
	if (rc == 0)
		rc = find_ckpts(t, rel, &l, 0);
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
