/* tree_list.c - listing a directory of the tree (real entries as served, the checkpoints
 * found by the naming rule, their virtual files) and the start-up survey, which walks
 * every directory the same way. */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "view/tree_impl.h"

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
	for (size_t s = 0; aprfs_ckpt_suffix(s); s++) {
		const char *suffix = aprfs_ckpt_suffix(s);
		for (size_t i = 0; i < l->n; i++) {
			const char *name = l->e[i].name;
			size_t stem_len;
			aprfs_ckpt_kind kind;
			char *rel;
			ckpt *c;

			if (!tree_ends_with(name, suffix) ||
			    (kind = aprfs_ckpt_name(name, &stem_len)) == APRFS_CKPT_NONE ||
			    strlen(name) - stem_len != strlen(suffix) ||
			    (kind == APRFS_CKPT_SINGLE && is_shard(l, name)) ||
			    claimed_stem(l, name, stem_len) || !(rel = tree_join(dir, name)))
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

	if (!tree_parse_apr_name(t, name, stem, sizeof(stem), &v))
		return 0;
	for (size_t i = 0; i < l->ncps; i++)
		if (l->cps[i]->src && l->cps[i]->files[v] && strcmp(l->stems[i], stem) == 0)
			return 1;
	return 0;
}

static int fill_virtual(const aprfs_tree *t, const listing *l, aprfs_tree_fill fill, void *ctx)
{
	char name[NAME_MAX + 1];
	struct stat st;

	for (size_t i = 0; i < l->ncps; i++) {
		const ckpt *c = l->cps[i];

		for (int v = 0; c->src && v < TREE_SLOTS; v++) {
			if (!c->files[v] ||
			    (size_t)snprintf(name, sizeof(name), "%s.%s%s", l->stems[i],
					     tree_slot_name(t, v), APR_SUFFIX) >= sizeof(name))
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
	       tree_hidden(t, full);
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
	if (!(rel = tree_join(dir, e->name)))
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
	const char *rel = tree_skip_slashes(path);
	listing l = {0};
	struct stat st;
	node *n = malloc(sizeof(*n));
	int rc = n ? tree_lookup(t, rel, n) : -ENOMEM;

	if (rc == 0 && n->kind != APRFS_NODE_DIR)
		rc = -ENOTDIR;
	if (rc == 0 && strcmp(rel, META_DIR) == 0) {
		tree_lookup_meta(t, META_DIR "/" STATS_NAME, n);
		if (fill(STATS_NAME, &n->st, ctx) == 0)
			fill(METRICS_NAME, &n->st, ctx);
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
		tree_meta_dir_stat(t, &st);
		if (fill(META_DIR, &st, ctx))
			goto out;
	}
	if (rc == 0)
		rc = find_ckpts(t, rel, &l);
	if (rc < 0 || fill_virtual(t, &l, fill, ctx))
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
	if (tree_lookup(sv->t, rel, n) == 0 && n->kind == APRFS_NODE_DIR &&
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
			    !(sub = tree_join(rel, l.e[i].name)))
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
