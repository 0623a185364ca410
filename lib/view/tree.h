/* tree.h - the mount's virtual tree, without FUSE: which names exist under a relative
 * path (mirrored directories, read-only pass-through files, one X.<variant>.apr per
 * checkpoint and variant, /.aprfs/stats.json), their attributes, and opening them. It
 * keeps the opened checkpoints and their planned files, re-opening stale ones.
 *
 * lib/view/ (above file/): the virtual tree over a directory of checkpoints, the open
 * checkpoints (ckpt.c) and the mount options (conf.h). */
#ifndef APRFS_TREE_H
#define APRFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "base/err.h"
#include "cache/cache.h"
#include "file/aprfile.h"
#include "file/readahead.h"

typedef struct aprfs_tree aprfs_tree;

typedef struct aprfs_tree_conf {
	uint32_t variants;    /* bit i = aprfs_variant_name(i) is listed */
	uint32_t nf4_block;   /* aprfs_opts.nf4_block */
	uint32_t chunk_elems; /* aprfs_opts.chunk_elems, 0 = library default */
	size_t max_sources;   /* checkpoints kept open at once, 0 = 512 */
	aprfs_cache *cache;   /* chunks of replaced snapshots are dropped from it; may be
			       * NULL; must outlive the tree */
	const char *hide;     /* a directory never shown, e.g. the mountpoint when it lies
			       * inside the root; may be NULL */
	const char *imatrix;  /* aprfs_source_ctx.imatrix_name for every checkpoint, or NULL */
	const struct aprfs_view *views; /* named views, listed as X.NAME.apr; must outlive */
	size_t nviews;			/* the tree; at most APRFS_VIEW_MAX */
} aprfs_tree_conf;

/* root must be a directory. -errno with a message otherwise. */
int aprfs_tree_new(const char *root, const aprfs_tree_conf *conf, aprfs_tree **out,
		   aprfs_err *err);
void aprfs_tree_free(aprfs_tree *t);
const char *aprfs_tree_root(const aprfs_tree *t); /* canonical (realpath) root */

typedef enum aprfs_node_kind {
	APRFS_NODE_DIR = 1, /* a mirrored directory, or the virtual /.aprfs */
	APRFS_NODE_FILE,    /* a source file passed through read-only */
	APRFS_NODE_APR,	    /* a virtual X.<variant>.apr */
	APRFS_NODE_STATS,   /* /.aprfs/stats.json */
	APRFS_NODE_METRICS, /* /.aprfs/metrics (Prometheus text format) */
	APRFS_NODE_LINK,    /* a symlink to a directory inside the root, shown as a link */
} aprfs_node_kind;

/* Paths are relative to the root; a leading '/' is ignored, "" or "/" is the root.
 * Attributes of path, never writable. 0 and *kind (may be NULL), or -ENOENT (also for
 * anything hidden: symlinks leaving the root, dangling or looping, FIFOs, sockets,
 * devices, broken checkpoints' virtual names; each hidden entry is logged once) or
 * another -errno. A symlink to a regular file inside the root is followed (a Hugging
 * Face hub snapshot is made of them); one to a directory is shown as a symlink, so that
 * walking the mount ends as walking the source does. */
int aprfs_tree_stat(aprfs_tree *t, const char *path, struct stat *st, aprfs_node_kind *kind);

/* The target of an APRFS_NODE_LINK, relative to the link's directory (so it resolves
 * inside the mount), NUL-terminated in buf. 0, -EINVAL (not such a link), -ENOENT. */
int aprfs_tree_readlink(aprfs_tree *t, const char *path, char *buf, size_t size);

/* Call fill(name, st, ctx) for each entry of directory path (not "." or ".."); a
 * non-zero return from fill stops the listing. 0, -ENOTDIR, -ENOENT, ... */
typedef int (*aprfs_tree_fill)(const char *name, const struct stat *st, void *ctx);
int aprfs_tree_list(aprfs_tree *t, const char *path, aprfs_tree_fill fill, void *ctx);

/* How the kernel may cache the pages of an opened file. Its page cache is per path, shared
 * by every handle, so when a handle on an older snapshot is still open, a new snapshot
 * must not go through it (either would see the other's bytes). */
typedef enum aprfs_pages {
	APRFS_PAGES_KEEP = 1, /* same snapshot as the cached pages: keep them */
	APRFS_PAGES_DROP,     /* a new snapshot, no older handle open: drop them */
	APRFS_PAGES_BYPASS,   /* older handles still read the cache: direct I/O */
} aprfs_pages;

typedef struct aprfs_tree_open_result {
	aprfs_node_kind kind;
	int fd;		   /* APRFS_NODE_FILE: an O_RDONLY descriptor of the source file */
	aprfs_file *file;  /* APRFS_NODE_APR: the snapshot this handle reads */
	aprfs_pages pages; /* FILE and APR */
	char *source_path; /* APR: the checkpoint file relative to the root (for logs) */
	struct stat st;	   /* attributes at open: a handle keeps them, whatever happens to
			    * the source after (getattr on an open file answers from here) */
	char *path;	   /* the normalized path opened (for aprfs_tree_close) */
	uint64_t snapshot; /* identity of what was opened (for aprfs_tree_close) */
} aprfs_tree_open_result;

/* Open path for reading. Directories give -EISDIR. A new open of a checkpoint that
 * changed on disk gets a new snapshot; handles opened earlier keep theirs. Every
 * successful open is ended by aprfs_tree_close. */
int aprfs_tree_open(aprfs_tree *t, const char *path, aprfs_tree_open_result *out,
		    aprfs_err *err);
/* Release what the open returned (descriptor, file reference, strings). */
void aprfs_tree_close(aprfs_tree *t, aprfs_tree_open_result *r);

/* The /.aprfs/stats.json document (malloc'd, NUL-terminated): cache counters per
 * variant, cache totals, read-ahead counters (ra may be NULL) and checkpoint counts. */
char *aprfs_tree_stats_json(aprfs_tree *t, const aprfs_cache_stats *cs,
			    const aprfs_ra_stats *rs);

/* What a walk of the whole tree found: for the start-up summary a person reads. */
typedef struct aprfs_tree_survey {
	uint64_t dirs, checkpoints, served, broken;
	int complete; /* 0: stopped at the directory limit */
} aprfs_tree_survey;
/* Walk every directory (links are not followed, as on the mount), opening each checkpoint
 * as a lookup would; broken(rel, why, ctx) is called for each checkpoint refused. At most
 * max_dirs directories; stops early when stop(ctx) says so (NULL: never). */
void aprfs_tree_survey_run(aprfs_tree *t, uint64_t max_dirs,
			   void (*broken)(const char *rel, const char *why, void *ctx),
			   int (*stop)(void *ctx), void *ctx, aprfs_tree_survey *out);

/* Number of checkpoints currently open and valid, and known broken (tests, stats). */
void aprfs_tree_counts(aprfs_tree *t, size_t *open, size_t *broken);

#endif
