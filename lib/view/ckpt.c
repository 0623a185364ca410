/* ckpt.c - the table of opened checkpoints: keyed by path relative to the root, each
 * entry a validated source planned for every enabled variant (or the reason it is broken),
 * reused while the file's identity holds and aprfs_source_stale says no, LRU-bounded. */
#include <cjson/cJSON.h>
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

/* ---- checkpoints ----------------------------------------------------------------- */

uint64_t tree_hash(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

void ckpt_destroy(aprfs_tree *t, ckpt *c)
{
	for (int v = 0; v < TREE_SLOTS; v++) {
		if (!c->files[v])
			continue;
		/* Its chunks can only serve handles still open on this snapshot; new
		 * opens get a new file id, so the cache would carry them as dead weight. */
		if (t->conf.cache)
			aprfs_cache_forget_file(t->conf.cache, aprfs_file_id(c->files[v]));
		aprfs_file_unref(c->files[v]);
	}
	if (c->src)
		aprfs_source_unref(c->src);
	for (size_t i = 0; i < c->nshards; i++)
		free(c->shards[i]);
	free(c->shards);
	free(c->why);
	free(c->rel);
	free(c->real);
	free(c);
}

void ckpt_put(aprfs_tree *t, ckpt *c)
{
	int last;

	if (!c)
		return;
	pthread_mutex_lock(&t->lock);
	last = --c->refs == 0;
	pthread_mutex_unlock(&t->lock);
	if (last)
		ckpt_destroy(t, c);
}

static int same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static int add_shard(ckpt *c, const char *path)
{
	const char *slash = strrchr(path, '/');
	char **grown = realloc(c->shards, (c->nshards + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	c->shards = grown;
	c->shards[c->nshards] = strdup(slash ? slash + 1 : path);
	if (!c->shards[c->nshards])
		return -ENOMEM;
	c->nshards++;
	return 0;
}

/* The shard names of an index that failed to open, best effort, so its shards are
 * still not mistaken for checkpoints of their own. Opened like every source file: never
 * blocking, never outside the root. */
static void peek_index_shards(aprfs_tree *t, ckpt *c)
{
	char *buf = NULL;
	cJSON *root = NULL, *map, *e;
	struct stat st;
	int fd = -1;
	ssize_t n = 0;

	if (aprfs_open_regular(c->real, t->root, 0, &fd, &st, NULL) == 0 &&
	    (uint64_t)st.st_size <= INDEX_PEEK_MAX && (buf = malloc((size_t)st.st_size + 1)))
		n = pread(fd, buf, (size_t)st.st_size, 0);
	if (fd >= 0)
		close(fd);
	if (buf && n > 0) {
		buf[n] = '\0';
		root = cJSON_Parse(buf);
	}
	map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
	cJSON_ArrayForEach(e, map)
	{
		int seen = 0;

		if (!cJSON_IsString(e))
			continue;
		for (size_t i = 0; i < c->nshards && !seen; i++)
			seen = strcmp(c->shards[i], e->valuestring) == 0;
		if (!seen && !strchr(e->valuestring, '/') && add_shard(c, e->valuestring) < 0)
			break;
	}
	cJSON_Delete(root);
	free(buf);
}

/* Its shard names (so they are not listed as checkpoints of their own) and the newest
 * mtime among its files (the .apr files' mtime). The source itself refused any file that
 * leads outside the root. */
static int note_shards(ckpt *c, aprfs_err *err)
{
	for (size_t i = 0; i < aprfs_source_shard_count(c->src); i++) {
		const char *p = aprfs_source_shard_path(c->src, i);
		struct stat st;

		if (stat(p, &st) == 0 && (st.st_mtim.tv_sec > c->st.st_mtim.tv_sec ||
					  (st.st_mtim.tv_sec == c->st.st_mtim.tv_sec &&
					   st.st_mtim.tv_nsec > c->st.st_mtim.tv_nsec)))
			c->st.st_mtim = st.st_mtim;
		if (add_shard(c, p) < 0)
			return aprfs_fail(err, ENOMEM, "out of memory");
	}
	return 0;
}

static void plan_variants(aprfs_tree *t, ckpt *c)
{
	aprfs_opts o;

	aprfs_opts_default(&o);
	o.nf4_block = t->conf.nf4_block ? t->conf.nf4_block : o.nf4_block;
	if (t->conf.chunk_elems)
		o.chunk_elems = t->conf.chunk_elems;
	o.source_rel = c->rel;
	for (int v = 0; v < APRFS_VARIANT_COUNT; v++) {
		aprfs_err err = {0};

		if (!(t->conf.variants & (1u << v)))
			continue;
		if (aprfs_file_open(c->src, aprfs_variant_name(v), &o, &c->files[v], &err) < 0)
			aprfs_log_once(APRFS_LOG_WARN, err.msg, "%s: variant %s not served: %s",
				       c->rel, aprfs_variant_name(v), err.msg);
	}
	for (size_t k = 0; k < t->conf.nviews && k < APRFS_VIEW_MAX; k++) {
		aprfs_err err = {0};
		const aprfs_view *view = &t->conf.views[k];
		o.view = view;
		if (aprfs_file_open(c->src, aprfs_variant_name(view->base), &o,
				    &c->files[APRFS_VARIANT_COUNT + k], &err) < 0)
			aprfs_log_once(APRFS_LOG_ERROR, err.msg, "%s: view %s not served: %s",
				       c->rel, view->name, err.msg);
	}
}

static void dir_mtime(const char *real, struct timespec *out)
{
	char dir[PATH_MAX];
	char *slash;
	struct stat st;

	snprintf(dir, sizeof(dir), "%s", real);
	slash = strrchr(dir, '/');
	if (slash)
		*(slash == dir ? slash + 1 : slash) = '\0';
	memset(out, 0, sizeof(*out));
	if (stat(dir, &st) == 0)
		*out = st.st_mtim;
}

/* Open and plan a checkpoint (outside the tree lock: this parses headers). */
static ckpt *ckpt_build(aprfs_tree *t, const char *rel, const char *real, const struct stat *st,
			int is_index)
{
	ckpt *c = calloc(1, sizeof(*c));
	aprfs_err err = {0};

	if (!c)
		return NULL;
	c->refs = 1;
	c->is_index = is_index;
	c->rel = strdup(rel);
	c->real = strdup(real);
	c->id = *st;
	c->st = *st;
	if (!c->rel || !c->real) {
		ckpt_destroy(t, c);
		return NULL;
	}
	char full[PATH_MAX];
	aprfs_source_ctx ctx = {.root = t->root, .imatrix_name = t->conf.imatrix};

	/* By its path in the tree, not the file a link resolves to: the files beside it
	 * (config.json, shards) are looked up there, as in a Hugging Face hub snapshot. */
	snprintf(full, sizeof(full), "%s/%s", t->root, rel);
	if (aprfs_source_open(full, &ctx, &c->src, &err) == 0 && note_shards(c, &err) < 0) {
		aprfs_source_unref(c->src);
		c->src = NULL;
	}
	if (!c->src) {
		/* Keyed by the reason, which names the file: logged once per file and
		 * problem, however often the kernel looks the name up. */
		aprfs_log_once(APRFS_LOG_WARN, err.msg, "not listing %s: %s", rel, err.msg);
		c->why = strdup(err.msg);
		for (size_t i = 0; i < c->nshards; i++)
			free(c->shards[i]);
		c->nshards = 0;
		if (is_index) {
			peek_index_shards(t, c);
			dir_mtime(real, &c->dir_mtime);
		}
		return c;
	}
	c->st.st_mode = S_IFREG | (st->st_mode & 0444);
	c->st.st_nlink = 1;
	c->st.st_atim = c->st.st_mtim;
	c->st.st_ctim = c->st.st_mtim;
	c->st.st_blksize = 1 << 20;
	plan_variants(t, c);
	return c;
}

/* Still what is on disk? Broken entries are retried when the file changes, or (for an
 * index, whose shards may be what was broken) when its directory changes. */
static int ckpt_current(const ckpt *c, const char *real, const struct stat *st)
{
	struct timespec dm;

	if (strcmp(c->real, real) != 0 || !same_file(&c->id, st))
		return 0;
	if (c->src)
		return 1; /* aprfs_source_stale is checked outside the lock */
	if (c->dir_mtime.tv_sec == 0 && c->dir_mtime.tv_nsec == 0)
		return 1;
	dir_mtime(real, &dm);
	return dm.tv_sec == c->dir_mtime.tv_sec && dm.tv_nsec == c->dir_mtime.tv_nsec;
}

static ckpt **slot_of(aprfs_tree *t, const char *rel)
{
	ckpt **p = &t->buckets[tree_hash(rel) % NBUCKETS];

	while (*p && strcmp((*p)->rel, rel) != 0)
		p = &(*p)->next;
	return p;
}

/* With the lock held: unlink the least recently used entry if over the limit. */
static ckpt *evict_one(aprfs_tree *t)
{
	ckpt **victim = NULL;

	if (t->count <= t->conf.max_sources)
		return NULL;
	for (size_t b = 0; b < NBUCKETS; b++)
		for (ckpt **p = &t->buckets[b]; *p; p = &(*p)->next)
			if (!victim || (*p)->used < (*victim)->used)
				victim = p;
	if (!victim)
		return NULL;
	ckpt *c = *victim;
	*victim = c->next;
	t->count--;
	return --c->refs == 0 ? c : NULL;
}

/* Borrow the table's entry for rel if it is current (a reference the caller puts). An
 * entry found but out of date is reported in *rejected, only to be compared later. */
static ckpt *ckpt_find(aprfs_tree *t, const char *rel, const char *real, const struct stat *st,
		       const ckpt **rejected)
{
	ckpt *c;

	*rejected = NULL;
	pthread_mutex_lock(&t->lock);
	c = *slot_of(t, rel);
	if (c && ckpt_current(c, real, st)) {
		c->refs++;
		c->used = ++t->tick;
	} else {
		*rejected = c;
		c = NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (c && c->src && aprfs_source_stale(c->src)) {
		*rejected = c;
		ckpt_put(t, c);
		return NULL;
	}
	return c;
}

/* Insert a freshly built entry in place of the one found out of date. If another thread
 * replaced that one meanwhile with an entry for the same file, use theirs: two threads
 * listing one directory must not keep swapping snapshots. */
static ckpt *ckpt_insert(aprfs_tree *t, ckpt *fresh, const ckpt *rejected)
{
	ckpt **slot, *old, *evicted;

	pthread_mutex_lock(&t->lock);
	slot = slot_of(t, fresh->rel);
	old = *slot;
	if (old && old != rejected && strcmp(old->real, fresh->real) == 0 &&
	    same_file(&old->id, &fresh->id)) {
		old->refs++;
		old->used = ++t->tick;
		pthread_mutex_unlock(&t->lock);
		ckpt_put(t, fresh);
		return old;
	}
	if (old) {
		*slot = old->next;
		t->count--;
		old = --old->refs == 0 ? old : NULL;
	}
	fresh->next = t->buckets[tree_hash(fresh->rel) % NBUCKETS];
	t->buckets[tree_hash(fresh->rel) % NBUCKETS] = fresh;
	fresh->refs++; /* the table's */
	fresh->used = ++t->tick;
	t->count++;
	evicted = evict_one(t);
	pthread_mutex_unlock(&t->lock);
	if (old)
		ckpt_destroy(t, old);
	if (evicted)
		ckpt_destroy(t, evicted);
	return fresh;
}

/* The checkpoint whose file is rel (a regular file under the root), opened or broken;
 * NULL if there is no such file. */
ckpt *ckpt_get(aprfs_tree *t, const char *rel, int is_index)
{
	char real[PATH_MAX];
	struct stat st;
	ckpt *c;

	if (tree_resolve(t, rel, real, &st) < 0 || !S_ISREG(st.st_mode))
		return NULL;
	const ckpt *rejected;

	c = ckpt_find(t, rel, real, &st, &rejected);
	if (c)
		return c;
	c = ckpt_build(t, rel, real, &st, is_index);
	return c ? ckpt_insert(t, c, rejected) : NULL;
}

int ckpt_has_shard(const ckpt *c, const char *name)
{
	if (!c->is_index)
		return 0;
	for (size_t i = 0; i < c->nshards; i++)
		if (strcmp(c->shards[i], name) == 0)
			return 1;
	return 0;
}

void ckpt_apr_stat(const ckpt *c, int v, struct stat *st)
{
	*st = c->st;
	st->st_size = (off_t)aprfs_file_size(c->files[v]);
	st->st_blocks = (st->st_size + 511) / 512;
}

void ckpt_drop_if_stale(aprfs_tree *t, const char *rel, const aprfs_source *src)
{
	ckpt **slot, *c = NULL;

	if (!aprfs_source_stale(src))
		return;
	pthread_mutex_lock(&t->lock);
	slot = slot_of(t, rel);
	if (*slot && (*slot)->src == src) {
		c = *slot;
		*slot = c->next;
		t->count--;
		c = --c->refs == 0 ? c : NULL;
	}
	pthread_mutex_unlock(&t->lock);
	if (c)
		ckpt_destroy(t, c);
}
