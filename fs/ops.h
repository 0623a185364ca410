/* ops.h - the FUSE side of a mount: the state one mount owns (handed to libfuse as
 * private_data) and the fuse_operations table. Everything here delegates to lib/: the
 * tree decides what exists, the range API produces bytes, the pool reads ahead. */
#ifndef APRFS_FS_OPS_H
#define APRFS_FS_OPS_H

#define FUSE_USE_VERSION 312
#include <fuse.h>
#include <fuse_lowlevel.h> /* fuse_parse_cmdline and its options */
#include <pthread.h>

#include "base/cancel.h"
#include "cache/cache.h"
#include "cache/diskcache.h"
#include "file/readahead.h"
#include "view/conf.h"
#include "view/tree.h"

typedef struct aprfs_mount {
	aprfs_conf conf;
	aprfs_tree *tree;
	aprfs_cache *cache;
	aprfs_diskcache *disk; /* under cache, or NULL; started after daemonizing, as ra */
	aprfs_ra *ra;	       /* started after daemonizing (threads do not survive fork) */
	uint64_t ra_window;    /* bytes warmed ahead of a sequential reader */
	struct fuse_session *_Atomic se;   /* set once serving: its end cancels all work */
	aprfs_cancel ending;		   /* says stop once the session has ended */
	pthread_mutex_t open_lock;	   /* guards open_handles */
	struct aprfs_handle *open_handles; /* open files (ops.c), not yet released */
} aprfs_mount;

extern const struct fuse_operations aprfs_fuse_ops;

/* Set up m->ending and the open-handle list (before any worker or request can use them). */
void aprfs_mount_init(aprfs_mount *m);

/* Release the handles the kernel never released (the mount ended by a signal with files
 * open). Only once the session is over: no request may be running. */
void aprfs_mount_release_all(aprfs_mount *m);

#endif
