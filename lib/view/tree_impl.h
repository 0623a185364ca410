/* tree_impl.h - internal to the tree: the checkpoint table's entries, the page-cache
 * bookkeeping per path, the tree itself, and the helpers tree.c and ckpt.c share.
 * Nothing outside lib/view/ (tree*.c, ckpt.c) includes this. */
#ifndef APRFS_TREE_IMPL_H
#define APRFS_TREE_IMPL_H

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/stat.h>

#include "plan/view.h"
#include "view/tree.h"

#define APR_SUFFIX   ".apr"
#define META_DIR     ".aprfs"
#define STATS_NAME   "stats.json"
#define METRICS_NAME "metrics"
#define NBUCKETS     1024
/* A broken index is read only to learn which files are its shards; a bigger one is not
 * worth the memory (its shards then list as checkpoints of their own). */
#define INDEX_PEEK_MAX (16u << 20)

/* One checkpoint as last seen: opened and planned per variant, or broken with a reason.
 * Immutable once in the table. */
/* File slots of a checkpoint: the variants, then the mount's named views (plan/view.h). */
#define TREE_SLOTS (APRFS_VARIANT_COUNT + APRFS_VIEW_MAX)

typedef struct ckpt {
	struct ckpt *next;	   /* hash chain */
	int refs;		   /* under the tree lock: the table's plus borrowers' */
	char *rel;		   /* the checkpoint file relative to the root: the key */
	char *real;		   /* the path it resolved to */
	struct stat id;		   /* stat of real when opened: identity */
	struct timespec dir_mtime; /* broken index only: its shards may be fixed */
	int is_index;		   /* an index (APRFS_CKPT_INDEX): its shards are not models */
	aprfs_source *src;	   /* NULL when broken ... */
	char *why;		   /* ... and then the reason, "file: reason" */
	aprfs_file *files[TREE_SLOTS]; /* by variant index, then the named views' */
	char **shards;		       /* base names of its shard files */
	size_t nshards;
	struct stat st; /* attributes of its .apr files, size aside */
	uint64_t used;	/* LRU tick */
} ckpt;

/* What the kernel's page cache of one path may hold, and which snapshots are open on
 * it. Kept per path (not per checkpoint) because the kernel's cache is per path and
 * outlives our checkpoint entries. */
typedef struct pages {
	struct pages *next;
	char *path;
	uint64_t cached;   /* snapshot whose pages the kernel may hold (0: none) */
	uint64_t current;  /* snapshot of the latest open */
	unsigned open_cur; /* handles open on current */
	unsigned open_old; /* handles open on older snapshots */
	struct stat st;	   /* attributes of the latest snapshot opened ... */
	int kind;	   /* ... and its aprfs_node_kind */
} pages;

struct aprfs_tree {
	char *root; /* realpath */
	char *hide; /* realpath of aprfs_tree_conf.hide, or NULL */
	aprfs_tree_conf conf;
	pthread_mutex_t lock;
	ckpt *buckets[NBUCKETS];
	size_t count;
	uint64_t tick;
	pages *pages[NBUCKETS];
};

/* FNV-1a of a path: the bucket of both tables (ckpt.c). */
uint64_t tree_hash(const char *s);

/* What a path is. For APR nodes cp is a borrowed checkpoint (put it) and variant set; for
 * FILE and DIR nodes real is filled; for LINK nodes, real is the target directory. */
typedef struct node {
	aprfs_node_kind kind;
	struct stat st;
	struct ckpt *cp;
	int variant;
	char real[PATH_MAX];
} node;

/* Paths (tree_path.c) and lookups (tree.c). */
const char *tree_skip_slashes(const char *p);
int tree_ends_with(const char *s, const char *suffix);
char *tree_join(const char *dir, const char *name); /* "a" + "b" -> "a/b"; NULL if too long */
int tree_inside_root(const aprfs_tree *t, const char *real);
int tree_hidden(const aprfs_tree *t, const char *path); /* the mountpoint, inside the root */
int tree_resolve(const aprfs_tree *t, const char *rel, char *real, struct stat *st);
/* The name of file slot v in X.<name>.apr: a variant's, or a named view's. */
const char *tree_slot_name(const aprfs_tree *t, int slot);
int tree_parse_apr_name(const aprfs_tree *t, const char *name, char *stem, size_t size,
			int *variant);
int tree_lookup(aprfs_tree *t, const char *path, node *n);
void tree_meta_dir_stat(const aprfs_tree *t, struct stat *st);
int tree_lookup_meta(aprfs_tree *t, const char *rel, node *n);

/* Page-cache bookkeeping (tree_open.c), under t->lock for tree_pages_of. */
struct pages *tree_pages_of(aprfs_tree *t, const char *path, int create);
/* Attributes of a path that no longer resolves but still has open handles. */
int tree_open_snapshot_stat(aprfs_tree *t, const char *path, struct stat *st,
			    aprfs_node_kind *kind);

/* The checkpoint table (ckpt.c), all under t->lock. ckpt_get returns a borrowed entry
 * (NULL if rel is not a file); ckpt_put returns it. */
ckpt *ckpt_get(aprfs_tree *t, const char *rel, int is_index);
void ckpt_put(aprfs_tree *t, ckpt *c);
void ckpt_destroy(aprfs_tree *t, ckpt *c);
int ckpt_has_shard(const ckpt *c, const char *name);
void ckpt_apr_stat(const ckpt *c, int v, struct stat *st);
/* If the table's entry for rel holds source src and src changed on disk (removed,
 * replaced), take it out of the table, so the source's descriptors go as soon
 * as its last handle closes. */
void ckpt_drop_if_stale(aprfs_tree *t, const char *rel, const aprfs_source *src);

#endif
