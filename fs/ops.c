/* ops.c - the fuse_operations callbacks: map a path to the tree, a read to
 * aprfs_file_read (plus read-ahead) or pread, a snapshot of the statistics to
 * /.aprfs/stats.json, and every modification to EROFS. */
#include "ops.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/log.h"
#include "report/metrics.h"

typedef struct aprfs_handle {
	aprfs_tree_open_result r; /* what is open: fd (FILE) or snapshot (APR) */
	aprfs_ra_stream ra;
	char *text; /* stats.json, metrics: the snapshot taken at open */
	size_t len;
	struct aprfs_handle *prev, *next; /* m->open_handles */
} handle;

static aprfs_mount *mount_of(void)
{
	return fuse_get_context()->private_data;
}

static handle *handle_of(const struct fuse_file_info *fi)
{
	return (handle *)(uintptr_t)fi->fh;
}

/* The text of /.aprfs/stats.json or /.aprfs/metrics: a snapshot of the counters now. */
static char *report_text(aprfs_mount *m, aprfs_node_kind kind)
{
	aprfs_cache_stats cs;
	aprfs_ra_stats rs;
	aprfs_metrics_in in = {&cs, m->ra ? &rs : NULL, 0, 0};

	aprfs_cache_get_stats(m->cache, &cs);
	if (m->ra)
		aprfs_ra_get_stats(m->ra, &rs);
	if (kind == APRFS_NODE_STATS)
		return aprfs_tree_stats_json(m->tree, &cs, m->ra ? &rs : NULL);
	aprfs_tree_counts(m->tree, &in.ckpt_open, &in.ckpt_broken);
	return aprfs_metrics_text(&in);
}

static int is_report(aprfs_node_kind kind)
{
	return kind == APRFS_NODE_STATS || kind == APRFS_NODE_METRICS;
}

/* ---- cancellation ----
 * Work for a read is abandoned when nobody can receive it: the mount is ending (unmount,
 * SIGTERM: the session has exited), the kernel interrupted the request (the reader was
 * signalled while waiting), or the reader is gone. The last matters most: page-cache
 * reads arrive as background requests that the kernel never interrupts, so a killed
 * reader would otherwise leave a statistic pass over a 30 GiB tensor running to the end. */

static int session_ended(void *arg)
{
	aprfs_mount *m = arg;
	struct fuse_session *se = atomic_load(&m->se);

	return se && fuse_session_exited(se);
}

void aprfs_mount_init(aprfs_mount *m)
{
	m->ending = (aprfs_cancel){session_ended, m};
	pthread_mutex_init(&m->open_lock, NULL);
}

typedef struct req_cancel {
	aprfs_mount *m;
	pthread_t thread; /* fuse_interrupted() answers for this thread's request only */
	aprfs_pid_watch reader;
} req_cancel;

static int req_cancelled(void *arg)
{
	req_cancel *r = arg;

	if (aprfs_cancelled(&r->m->ending))
		return 1;
	if (pthread_equal(pthread_self(), r->thread) && fuse_interrupted())
		return 1;
	return aprfs_pid_watch_gone(&r->reader);
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	aprfs_mount *m = mount_of();

	/* Page caching is decided per open (aprfs_tree_open's pages); kernel_cache and
	 * auto_cache stay off unless the user asks for them. A read-only handle has
	 * nothing to flush on close. */
	cfg->no_rofd_flush = 1;
	aprfs_log(APRFS_LOG_INFO, "mounted %s (kernel read-ahead %u KiB, max_write %u KiB)",
		  aprfs_tree_root(m->tree), conn->max_readahead >> 10, conn->max_write >> 10);
	/* The kernel caps this at what it offered; asking for more costs nothing. */
	conn->max_readahead = UINT_MAX;
	return m;
}

/* An open file answers from its handle: the snapshot it reads, whatever happened to the
 * source since (a cp in progress keeps going after the source is removed). */
static int getattr_open(const handle *h, struct stat *st)
{
	if (h->r.kind == APRFS_NODE_FILE)
		return fstat(h->r.fd, st) == 0 ? (st->st_mode &= ~(mode_t)0222, 0) : -errno;
	*st = h->r.st;
	if (is_report(h->r.kind))
		st->st_size = (off_t)h->len;
	return 0;
}

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	aprfs_mount *m = mount_of();
	aprfs_node_kind kind;
	int rc;

	if (fi && fi->fh)
		return getattr_open(handle_of(fi), st);
	rc = aprfs_tree_stat(m->tree, path, st, &kind);

	if (rc == 0 && is_report(kind)) {
		char *text = report_text(m, kind);

		/* Only a hint (reads use direct_io); the size of a snapshot taken now. */
		st->st_size = text ? (off_t)strlen(text) : 0;
		free(text);
	}
	return rc;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	return aprfs_tree_readlink(mount_of()->tree, path, buf, size);
}

static int op_access(const char *path, int mask)
{
	struct stat st;
	int rc = aprfs_tree_stat(mount_of()->tree, path, &st, NULL);

	if (rc == 0 && (mask & W_OK))
		return -EROFS;
	return rc;
}

typedef struct fill_ctx {
	void *buf;
	fuse_fill_dir_t filler;
} fill_ctx;

static int fill_one(const char *name, const struct stat *st, void *ctx)
{
	fill_ctx *f = ctx;

	return f->filler(f->buf, name, st, 0, 0);
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t filler, off_t off,
		      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	fill_ctx ctx = {buf, filler};

	filler(buf, ".", NULL, 0, 0);
	filler(buf, "..", NULL, 0, 0);
	return aprfs_tree_list(mount_of()->tree, path, fill_one, &ctx);
}

static int open_report(aprfs_mount *m, handle *h, struct fuse_file_info *fi)
{
	h->text = report_text(m, h->r.kind);
	if (!h->text)
		return -ENOMEM;
	h->len = strlen(h->text);
	/* A snapshot per open, its size unknown to the kernel: bypass the page cache. */
	fi->direct_io = 1;
	return 0;
}

/* ---- open handles ----
 * Every handle is on the mount's list until released: a mount ended by a signal while a
 * file is open gets no release from the kernel, and its handles are freed at exit. */

static void handle_link(aprfs_mount *m, handle *h)
{
	pthread_mutex_lock(&m->open_lock);
	h->prev = NULL;
	h->next = m->open_handles;
	if (h->next)
		h->next->prev = h;
	m->open_handles = h;
	pthread_mutex_unlock(&m->open_lock);
}

static void handle_unlink(aprfs_mount *m, handle *h)
{
	pthread_mutex_lock(&m->open_lock);
	if (h->prev)
		h->prev->next = h->next;
	else
		m->open_handles = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&m->open_lock);
}

static void handle_close(aprfs_mount *m, handle *h)
{
	if (m->ra)
		aprfs_ra_cancel(m->ra, &h->ra);
	aprfs_tree_close(m->tree, &h->r);
	aprfs_ra_stream_destroy(&h->ra);
	free(h->text);
	free(h);
}

void aprfs_mount_release_all(aprfs_mount *m)
{
	while (m->open_handles) {
		handle *h = m->open_handles;

		handle_unlink(m, h);
		handle_close(m, h);
	}
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	aprfs_mount *m = mount_of();
	aprfs_err err = {0};
	handle *h;
	int rc;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return -EROFS;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	rc = aprfs_tree_open(m->tree, path, &h->r, &err);
	if (rc < 0) {
		free(h);
		return rc;
	}
	aprfs_ra_stream_init(&h->ra);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->noflush = 1;
	if (is_report(h->r.kind)) {
		rc = open_report(m, h, fi);
		if (rc < 0) { /* no release follows a failed open */
			aprfs_tree_close(m->tree, &h->r);
			aprfs_ra_stream_destroy(&h->ra);
			free(h);
		} else {
			handle_link(m, h);
		}
		return rc;
	}
	/* Same snapshot as the kernel's pages: keep them. A new one: drop them, or, while
	 * handles on an older snapshot still read through them, bypass them. */
	fi->keep_cache = h->r.pages != APRFS_PAGES_DROP;
	fi->direct_io = h->r.pages == APRFS_PAGES_BYPASS;
	handle_link(m, h);
	return 0;
}

static int read_apr(aprfs_mount *m, handle *h, char *buf, size_t size, off_t off)
{
	aprfs_err err = {0};
	pid_t pid = fuse_get_context()->pid;
	req_cancel rc = {m, pthread_self(), {0}};
	aprfs_cancel cancel = {req_cancelled, &rc};

	aprfs_pid_watch_init(&rc.reader, pid);
	ssize_t n =
	    aprfs_file_read(h->r.file, m->cache, &cancel, (uint64_t)off, size, buf, &err);
	if (n == -ECANCELED)
		return -EINTR; /* nobody is waiting for this answer */
	if (n < 0) {
		/* Never wrong bytes: a changed or unreadable source is an I/O error. */
		aprfs_log_once(APRFS_LOG_ERROR, err.msg, "read of %s (%s) failed: %s",
			       h->r.source_path ? h->r.source_path : "?",
			       aprfs_file_variant(h->r.file), err.msg);
		return -EIO;
	}
	aprfs_ra_note_read(m->ra, &h->ra, h->r.file, (uint64_t)off, (size_t)n, m->ra_window,
			   pid);
	return (int)n;
}

static int read_fd(int fd, char *buf, size_t size, off_t off)
{
	size_t done = 0;

	while (done < size) {
		ssize_t n = pread(fd, buf + done, size - done, off + (off_t)done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		done += (size_t)n;
	}
	return (int)done;
}

static int op_read(const char *path, char *buf, size_t size, off_t off,
		   struct fuse_file_info *fi)
{
	handle *h = handle_of(fi);

	if (off < 0)
		return -EINVAL;
	switch (h->r.kind) {
	case APRFS_NODE_APR: return read_apr(mount_of(), h, buf, size, off);
	case APRFS_NODE_FILE: return read_fd(h->r.fd, buf, size, off);
	case APRFS_NODE_STATS:
	case APRFS_NODE_METRICS:
		if ((size_t)off >= h->len)
			return 0;
		if (size > h->len - (size_t)off)
			size = h->len - (size_t)off;
		memcpy(buf, h->text + off, size);
		return (int)size;
	default: return -EIO;
	}
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	aprfs_mount *m = mount_of();
	handle *h = handle_of(fi);

	handle_unlink(m, h);
	handle_close(m, h);
	return 0;
}

static int op_statfs(const char *path, struct statvfs *sv)
{
	if (statvfs(aprfs_tree_root(mount_of()->tree), sv) != 0)
		return -errno;
	sv->f_flag |= ST_RDONLY;
	sv->f_bfree = sv->f_bavail = 0;
	sv->f_ffree = sv->f_favail = 0;
	return 0;
}

/* Every modification: the mount is a read-only view. */
static int ro_path(const char *path)
{
	return -EROFS;
}
static int ro_mode(const char *path, mode_t mode)
{
	return -EROFS;
}
static int ro_two(const char *from, const char *to)
{
	return -EROFS;
}
static int ro_rename(const char *from, const char *to, unsigned int flags)
{
	return -EROFS;
}
static int ro_mknod(const char *path, mode_t mode, dev_t dev)
{
	return -EROFS;
}
static int ro_chmod(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_chown(const char *path, uid_t uid, gid_t gid, struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_truncate(const char *path, off_t size, struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_write(const char *path, const char *buf, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_create(const char *path, mode_t mode, struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_utimens(const char *path, const struct timespec tv[2], struct fuse_file_info *fi)
{
	return -EROFS;
}
static int ro_setxattr(const char *path, const char *name, const char *value, size_t size,
		       int flags)
{
	return -EROFS;
}
static int ro_removexattr(const char *path, const char *name)
{
	return -EROFS;
}
static int ro_fallocate(const char *path, int mode, off_t off, off_t len,
			struct fuse_file_info *fi)
{
	return -EROFS;
}

const struct fuse_operations aprfs_fuse_ops = {
    .init = op_init,
    .getattr = op_getattr,
    .readlink = op_readlink,
    .access = op_access,
    .readdir = op_readdir,
    .open = op_open,
    .read = op_read,
    .release = op_release,
    .statfs = op_statfs,
    .mknod = ro_mknod,
    .mkdir = ro_mode,
    .unlink = ro_path,
    .rmdir = ro_path,
    .symlink = ro_two,
    .rename = ro_rename,
    .link = ro_two,
    .chmod = ro_chmod,
    .chown = ro_chown,
    .truncate = ro_truncate,
    .write = ro_write,
    .create = ro_create,
    .utimens = ro_utimens,
    .setxattr = ro_setxattr,
    .removexattr = ro_removexattr,
    .fallocate = ro_fallocate,
};
