/* tree.h - the mount's virtual tree, without FUSE: which names exist under a relative
 * path (mirrored directories, read-only pass-through files, one X.<variant>.apr per
 * checkpoint and variant, /.aprfs/stats.json), their attributes, and opening them. It
 * keeps the opened checkpoints and their planned files, re-opening stale ones. */
#ifndef APRFS_TREE_H
#define APRFS_TREE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "aprfile.h"
#include "cache.h"
#include "err.h"
#include "readahead.h"

typedef struct aprfs_tree aprfs_tree;

typedef struct aprfs_tree_conf {
	uint32_t variants;    /* bit i = aprfs_variant_names[i] is listed */
	uint32_t nf4_block;   /* aprfs_opts.nf4_block */
	uint32_t chunk_elems; /* aprfs_opts.chunk_elems, 0 = library default */
	size_t max_sources;   /* checkpoints kept open at once, 0 = 512 */
	aprfs_cache *cache;   /* chunks of replaced snapshots are dropped from it; may be
			       * NULL; must outlive the tree */
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
} aprfs_node_kind;

/* Paths are relative to the root; a leading '/' is ignored, "" or "/" is the root.
 * Attributes of path, never writable. 0 and *kind (may be NULL), or -ENOENT (also for
 * anything hidden: symlinks leaving the root, FIFOs, sockets, devices, broken
 * checkpoints' virtual names) or another -errno. */
int aprfs_tree_stat(aprfs_tree *t, const char *path, struct stat *st, aprfs_node_kind *kind);

/* Call fill(name, st, ctx) for each entry of directory path (not "." or ".."); a
 * non-zero return from fill stops the listing. 0, -ENOTDIR, -ENOENT, ... */
typedef int (*aprfs_tree_fill)(const char *name, const struct stat *st, void *ctx);
int aprfs_tree_list(aprfs_tree *t, const char *path, aprfs_tree_fill fill, void *ctx);

typedef struct aprfs_tree_open_result {
	aprfs_node_kind kind;
	int fd;		   /* APRFS_NODE_FILE: an O_RDONLY descriptor of the source file */
	aprfs_file *file;  /* APRFS_NODE_APR: a reference the caller must drop */
	int fresh;	   /* APRFS_NODE_APR: first open of this snapshot, so pages the
			    * kernel cached from an older one must go */
	char *source_path; /* APRFS_NODE_APR: the checkpoint file (malloc'd; for logs) */
} aprfs_tree_open_result;

/* Open path for reading. Directories give -EISDIR. A new open of a checkpoint that
 * changed on disk gets a new snapshot; handles opened earlier keep theirs. */
int aprfs_tree_open(aprfs_tree *t, const char *path, aprfs_tree_open_result *out,
		    aprfs_err *err);

/* The /.aprfs/stats.json document (malloc'd, NUL-terminated): cache counters per
 * variant, cache totals, read-ahead counters (ra may be NULL) and checkpoint counts. */
char *aprfs_tree_stats_json(aprfs_tree *t, const aprfs_cache_stats *cs,
			    const aprfs_ra_stats *rs);

/* Number of checkpoints currently open and valid, and known broken (tests, stats). */
void aprfs_tree_counts(aprfs_tree *t, size_t *open, size_t *broken);

#endif
