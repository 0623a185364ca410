/* conf.h - the mount's options: defaults, the `key = value` config file and the
 * `-o key=value` options, all landing in one aprfs_conf. The file is read first and
 * command-line options override it. */
#ifndef APRFS_CONF_H
#define APRFS_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "plan/view.h"

typedef struct aprfs_conf {
	uint32_t variants;  /* bit i = aprfs_variant_name(i) is served (default all) */
	uint32_t cache_mb;  /* chunk cache budget (default 256) */
	uint32_t threads;   /* read-ahead / quantization workers (default: online cores) */
	uint32_t nf4_block; /* NF4 block size, even, > 0 (default 64) */
	uint32_t
	    readahead_mb;     /* warmed ahead of a sequential reader; 0 disables (default 16) */
	int log_level;	      /* APRFS_LOG_* (default warn) */
	char cache_dir[4096]; /* the disk cache's directory; "" = no disk cache (default) */
	char imatrix[4096];   /* the importance matrix looked for beside each checkpoint (a
			       * name, or an absolute path for all); "" = the default names */
	/* Named views, view.NAME = definition (plan/view.h), kept as written: a bad one is
	 * refused when the mount starts, by itself, naming its key. */
	char view_name[APRFS_VIEW_MAX][40];
	char view_spec[APRFS_VIEW_MAX][1024];
	int nviews;
	uint32_t disk_cache_mb; /* its budget; 0 = not given: APRFS_DISKCACHE_DEFAULT_MB */
	char fuse_opts[1024]; /* "fuse_options" from the config file: handed to libfuse as -o */
	int variants_open;    /* the previous -o item was variants=...: libfuse splits
			       * "-o variants=q8,q4" at the comma, so a bare variant name
			       * that follows continues the list */
} aprfs_conf;

void aprfs_conf_default(aprfs_conf *c);

/* 1 if key is one of ours (variants, cache_mb, threads, nf4_block, readahead_mb,
 * log_level, cache_dir, disk_cache_mb), else 0: such a `-o` option belongs to libfuse. */
int aprfs_conf_is_ours(const char *key);

/* Set one option from its text value. -EINVAL with "key: reason" for a bad value or an
 * unknown key. */
int aprfs_conf_set(aprfs_conf *c, const char *key, const char *value, aprfs_err *err);

/* Apply one `-o` item, "key=value" or a bare "key", in command-line order. Returns 1 if
 * it was ours and is applied, 0 if it is not ours (leave it to libfuse), -EINVAL on a
 * bad value. A bare variant name right after variants=... extends that list. */
int aprfs_conf_apply_opt(aprfs_conf *c, const char *opt, aprfs_err *err);

/* Read a config file: `key = value` lines, `#` starts a comment, blank lines ignored.
 * Keys are ours plus `fuse_options`. -errno with "file:line: reason" on any error. */
int aprfs_conf_load(aprfs_conf *c, const char *path, aprfs_err *err);

/* Checks across options, once all are read: disk_cache_mb needs cache_dir. 0 or -EINVAL. */
int aprfs_conf_check(const aprfs_conf *c, aprfs_err *err);

/* The disk cache budget in bytes (0 when there is no disk cache). */
uint64_t aprfs_conf_disk_budget(const aprfs_conf *c);

/* "q8,q4" for a variant mask, into buf. */
void aprfs_conf_variants_str(uint32_t mask, char *buf, size_t size);

#endif
