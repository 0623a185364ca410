/* diskcache_claim.c - "I am computing this entry": a claim beside the entry, so that daemons
 * reading the same file at the same time compute each chunk about once; the others wait
 * briefly for the entry instead (diskcache.c). The claim's file later becomes the entry.
 *
 * How a claim is made: our own temporary file ("ab/.tmp.<hash>.<host>.<pid>.claim", holding
 * "host pid\n") is link(2)ed to the claim's name "ab/<hash>.claim"; link fails with EEXIST
 * when someone holds the claim, atomically (local file systems, every NFS version, CephFS),
 * and a claim is never seen empty. When the entry is ready the writer writes it into that
 * same temporary file, renames it to "ab/<hash>.ent" and unlinks the claim's name. So a
 * claimed entry costs one inode like any other, and no inode is freed per entry: ext4
 * searches past recently freed inodes when it allocates one, and a create-and-delete per
 * chunk (a separate claim file) made that search the daemon's hottest code.
 *
 * A claim is only ever a hint. Whatever happens to claims, the bytes stay right: entries are
 * verified on read and every process writes the same bytes under the same name. What claims
 * must never do is block a reader for long, so a claim is alive only while
 *   - it is younger than claim_stale_ms (5 s by default; mtime against this host's clock,
 *     so hosts sharing a directory should keep their clocks in sync, e.g. NTP: a skewed
 *     clock only makes claims expire early, i.e. duplicate work, or late, i.e. a wait that
 *     the caller's own bound still cuts short), and
 *   - when it names this host, its process still runs (a daemon killed here is noticed at
 *     once, not after claim_stale_ms).
 * A dead claim is removed by whoever finds it. A claim of our own process is never waited
 * for: threads of one process already share work through the memory cache's single flight,
 * and the rare overlap left (a cold footer's CRC pass beside a reader) is cheaper computed
 * twice than polled for. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cancel.h"
#include "cache/diskcache_impl.h"

static void claim_name(const char *stem, char *out, size_t size)
{
	snprintf(out, size, "%s.claim", stem);
}

void dc_claim_tmp_name(const aprfs_diskcache *dc, const char *stem, char *out, size_t size)
{
	snprintf(out, size, "%.2s/.tmp.%s.%s.%ld.claim", stem, stem + 3, dc->host,
		 (long)dc->pid);
}

static int same_file(const aprfs_diskcache *dc, const char *a, const char *b)
{
	struct stat x, y;

	return fstatat(dc->dirfd, a, &x, AT_SYMLINK_NOFOLLOW) == 0 &&
	       fstatat(dc->dirfd, b, &y, AT_SYMLINK_NOFOLLOW) == 0 && x.st_ino == y.st_ino &&
	       x.st_dev == y.st_dev;
}

/* The claim's text, "" if unreadable. */
static void read_claim(const aprfs_diskcache *dc, const char *name, char *buf, size_t size)
{
	int fd = openat(dc->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	buf[n > 0 ? n : 0] = '\0';
	if (fd >= 0)
		close(fd);
}

/* Remove name if it is still the file st describes (not a newer claim by someone else). */
static void remove_if_same(const aprfs_diskcache *dc, const char *name, const struct stat *st)
{
	struct stat now;

	if (fstatat(dc->dirfd, name, &now, AT_SYMLINK_NOFOLLOW) == 0 &&
	    now.st_ino == st->st_ino && now.st_dev == st->st_dev)
		unlinkat(dc->dirfd, name, 0);
}

/* Its owner is a process of this host that is gone. (A claim whose owner is writing the
 * entry into it no longer reads "host pid": it is alive until it is old.) */
static int owner_dead(const aprfs_diskcache *dc, const char *text)
{
	char host[sizeof(dc->host)];
	long pid;

	if (sscanf(text, "%63s %ld", host, &pid) != 2 || pid <= 0)
		return 0;
	return strcmp(host, dc->host) == 0 && aprfs_pid_gone((pid_t)pid);
}

int dc_claim_alive(aprfs_diskcache *dc, const char *stem)
{
	char name[DC_NAME_MAX + 8], text[128];
	struct stat st;

	claim_name(stem, name, sizeof(name));
	if (fstatat(dc->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	int64_t age = dc_now_ns(CLOCK_REALTIME) -
		      ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	read_claim(dc, name, text, sizeof(text));
	if (age > (int64_t)dc->claim_stale_ms * 1000000 || owner_dead(dc, text)) {
		remove_if_same(dc, name, &st);
		return 0;
	}
	return 1;
}

/* Our temporary file with the token: 0, or -errno (-EEXIST: another thread of ours holds
 * or is making this claim). */
static int make_tmp(aprfs_diskcache *dc, const char *stem, const char *tmp)
{
	char tok[96];
	int n = snprintf(tok, sizeof(tok), "%s %ld\n", dc->host, (long)dc->pid), e = 0;
	int fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0 && errno == ENOENT) { /* its subdirectory does not exist yet */
		char sub[3] = {stem[0], stem[1], '\0'};
		if (mkdirat(dc->dirfd, sub, 0755) != 0 && errno != EEXIST)
			return -errno;
		fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	}
	if (fd < 0)
		return -errno;
	if (write(fd, tok, (size_t)n) != n)
		e = errno ? errno : EIO;
	if (close(fd) != 0 && !e)
		e = errno;
	if (e)
		unlinkat(dc->dirfd, tmp, 0);
	return -e;
}

dc_claim_result dc_claim(aprfs_diskcache *dc, const char *stem)
{
	char name[DC_NAME_MAX + 8], tmp[DC_NAME_MAX + 128];

	claim_name(stem, name, sizeof(name));
	dc_claim_tmp_name(dc, stem, tmp, sizeof(tmp));
	for (int attempt = 0; attempt < 3; attempt++) {
		if (make_tmp(dc, stem, tmp) != 0)
			return DC_CLAIM_NONE; /* ours already, or read-only, full, ... */
		int e = linkat(dc->dirfd, tmp, dc->dirfd, name, 0) == 0 ? 0 : errno;
		/* NFS may report a link that happened as failed (a lost reply): look */
		if (e == 0 || (e != EEXIST && same_file(dc, tmp, name)))
			return DC_CLAIM_OURS;
		unlinkat(dc->dirfd, tmp, 0);
		if (e != EEXIST)
			return DC_CLAIM_NONE;
		if (dc_claim_alive(dc, stem))
			return DC_CLAIM_TAKEN;
		/* it was dead and is gone now: try again */
	}
	return DC_CLAIM_NONE;
}

void dc_claim_release(aprfs_diskcache *dc, const char *stem, int published)
{
	char name[DC_NAME_MAX + 8], other[DC_NAME_MAX + 128];

	claim_name(stem, name, sizeof(name));
	if (published)
		snprintf(other, sizeof(other), "%s.ent", stem);
	else
		dc_claim_tmp_name(dc, stem, other, sizeof(other));
	if (same_file(dc, name, other))
		unlinkat(dc->dirfd, name, 0);
	if (!published)
		unlinkat(dc->dirfd, other, 0);
}
