/* diskcache_claim.c - "I am computing this entry": a claim file beside the entry, created
 * atomically (a written temporary file link(2)ed to the claim's name), so that daemons reading
 * the same file at the same time compute each chunk about once; the others wait briefly for
 * the entry instead (diskcache.c).
 *
 * A claim is only ever a hint. Whatever happens to claims, the bytes stay right: entries
 * are verified on read and every process would write the same bytes under the same name.
 * What claims must never do is block a reader for long, so a claim is alive only while
 *   - it is younger than claim_stale_ms (5 s by default; mtime against this host's clock,
 *     so hosts sharing a directory should keep their clocks in sync, e.g. NTP: a skewed
 *     clock only makes claims expire early, i.e. duplicate work, or late, i.e. a wait that
 *     the caller's own bound still cuts short), and
 *   - when it names this host, its process still runs (a daemon killed here is noticed at
 *     once, not after claim_stale_ms).
 * A dead claim is removed by whoever finds it. The file holds "host pid\n"; its owner removes
 * it once the entry is published or given up. A claim of our own process is never waited
 * for: threads of one process already share work through the memory cache's single flight,
 * and the rare overlap left (a cold footer's CRC pass beside a reader) is cheaper computed
 * twice than polled for. The shared file system must make link(2) to an existing name fail
 * (EEXIST) atomically, as local file systems, every NFS version and CephFS do. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cancel.h"
#include "diskcache_impl.h"

static void claim_name(const char *stem, char *out, size_t size)
{
	snprintf(out, size, "%s.claim", stem);
}

static int token(const aprfs_diskcache *dc, char *out, size_t size)
{
	return snprintf(out, size, "%s %ld\n", dc->host, (long)dc->pid);
}

/* The claim's text, "" if unreadable (a claim whose owner has not written yet). */
static void read_claim(const aprfs_diskcache *dc, const char *name, char *buf, size_t size)
{
	int fd = openat(dc->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
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

/* Its owner is a process of this host that is gone. */
static int owner_dead(const aprfs_diskcache *dc, const char *text)
{
	char host[sizeof(dc->host)];
	long pid;

	if (sscanf(text, "%63s %ld", host, &pid) != 2 || pid <= 0)
		return 0;
	return strcmp(host, dc->host) == 0 && aprfs_pid_gone((pid_t)pid);
}

/* The claim is this process's. */
static int ours(const aprfs_diskcache *dc, const char *name)
{
	char text[128], tok[96];

	token(dc, tok, sizeof(tok));
	read_claim(dc, name, text, sizeof(text));
	return strcmp(text, tok) == 0;
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

/* Publish our claim under name: written in full to a temporary file first, then link(2)ed
 * to the claim's name, which fails with EEXIST if the name exists. So a claim is never seen
 * empty (a bare O_EXCL create is, until its owner writes), and link is atomic on every NFS
 * version. 0 or -errno. */
static int create_claim(aprfs_diskcache *dc, const char *stem, const char *name)
{
	char tmp[DC_NAME_MAX + 128], tok[96];
	int n = token(dc, tok, sizeof(tok)), e = 0;

	snprintf(tmp, sizeof(tmp), "%.2s/.tmp.claim.%s.%ld.%u", stem, dc->host, (long)dc->pid,
		 atomic_fetch_add(&dc->seq, 1));
	int fd = openat(dc->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	if (write(fd, tok, (size_t)n) != n)
		e = errno ? errno : EIO;
	if (close(fd) != 0 && !e)
		e = errno;
	if (!e && linkat(dc->dirfd, tmp, dc->dirfd, name, 0) != 0)
		e = errno;
	unlinkat(dc->dirfd, tmp, 0);
	/* NFS may report a link that happened as failed (a lost reply): look */
	if (e && e != EEXIST && ours(dc, name))
		e = 0;
	return -e;
}

dc_claim_result dc_claim(aprfs_diskcache *dc, const char *stem)
{
	char name[DC_NAME_MAX + 8];

	claim_name(stem, name, sizeof(name));
	for (int attempt = 0; attempt < 3; attempt++) {
		int rc = create_claim(dc, stem, name);
		if (rc == 0)
			return DC_CLAIM_OURS;
		if (rc == -ENOENT) { /* its subdirectory does not exist yet */
			char sub[3] = {stem[0], stem[1], '\0'};
			if (mkdirat(dc->dirfd, sub, 0755) != 0 && errno != EEXIST)
				return DC_CLAIM_NONE;
			continue;
		}
		/* read-only, full, not ours to write: no claims */
		if (rc != -EEXIST)
			return DC_CLAIM_NONE;
		if (ours(dc, name))
			return DC_CLAIM_NONE;
		if (dc_claim_alive(dc, stem))
			return DC_CLAIM_TAKEN;
		/* it was dead and is gone now: try again */
	}
	return DC_CLAIM_NONE;
}

void dc_claim_release(aprfs_diskcache *dc, const char *stem)
{
	char name[DC_NAME_MAX + 8];

	claim_name(stem, name, sizeof(name));
	if (ours(dc, name))
		unlinkat(dc->dirfd, name, 0);
}
