/* diskcache_peers.c - who else uses the cache directory: one presence file per process in
 * DIR/daemons/ ("host.pid"), kept fresh by its writer thread, so that claims are made only
 * while another process could be computing the same entries.
 *
 * Why: a claim costs a few metadata operations per computed entry (create, link, unlink: a
 * round trip each on NFS), which buys nothing to a daemon alone with its directory, the
 * usual case. A process learns of a newcomer within PEER_CHECK_NS (the newcomer sees the
 * others at once), so two daemons started together may both compute a few entries in
 * their first second; never wrong bytes, only work.
 *
 * A presence file of this host whose process is gone is removed at once; another host's
 * counts while its mtime is younger than PEER_STALE_NS (its writer refreshes it every
 * PEER_REFRESH_NS), and is removed when it is very old (its host crashed). */
#include "cache/diskcache_peers.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cancel.h"
#include "base/clock.h"

#define PEER_CHECK_NS	(500000000ll)	     /* how often the others are counted */
#define PEER_REFRESH_NS (2 * 1000000000ll)   /* how often our presence is touched */
#define PEER_STALE_NS	(10 * 1000000000ll)  /* another host's presence counts this long */
#define PEER_FORGET_NS	(600 * 1000000000ll) /* ... and is removed when this old */

void dc_peers_join(aprfs_diskcache *dc)
{
	snprintf(dc->presence, sizeof(dc->presence), "daemons/%s.%ld", dc->host, (long)dc->pid);
	if (mkdirat(dc->dirfd, "daemons", 0755) != 0 && errno != EEXIST)
		return;
	int fd = openat(dc->dirfd, dc->presence,
			O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK, 0644);
	if (fd >= 0)
		close(fd);
	dc->next_refresh = aprfs_now_ns(CLOCK_MONOTONIC) + PEER_REFRESH_NS;
	dc_peers_check(dc);
}

void dc_peers_leave(aprfs_diskcache *dc)
{
	if (dc->presence[0])
		unlinkat(dc->dirfd, dc->presence, 0);
}

/* One presence file other than ours: 1 if its process counts as alive; a dead one is
 * removed. */
static int alive(aprfs_diskcache *dc, int fd, const char *name, int64_t now)
{
	const char *dot = strrchr(name, '.');
	struct stat st;
	long pid;

	if (!dot || sscanf(dot + 1, "%ld", &pid) != 1 ||
	    fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
		return 0;
	int64_t age = now - ((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec);
	int here = (size_t)(dot - name) == strlen(dc->host) &&
		   strncmp(name, dc->host, (size_t)(dot - name)) == 0;
	if (here ? aprfs_pid_gone((pid_t)pid) : age > PEER_FORGET_NS) {
		unlinkat(fd, name, 0);
		return 0;
	}
	return here || age < PEER_STALE_NS;
}

void dc_peers_check(aprfs_diskcache *dc)
{
	int64_t mono = aprfs_now_ns(CLOCK_MONOTONIC), now = aprfs_now_ns(CLOCK_REALTIME);
	int n = 0;

	if (mono >= dc->next_refresh) {
		utimensat(dc->dirfd, dc->presence, NULL, 0);
		dc->next_refresh = mono + PEER_REFRESH_NS;
	}
	dc->next_peer_check = mono + PEER_CHECK_NS;
	int fd = openat(dc->dirfd, "daemons", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		if (fd >= 0)
			close(fd);
		atomic_store(&dc->peers, 0);
		return;
	}
	const char *ours = dc->presence + strlen("daemons/");
	for (struct dirent *de; (de = readdir(d));)
		if (de->d_name[0] != '.' && strcmp(de->d_name, ours) != 0)
			n += alive(dc, dirfd(d), de->d_name, now);
	closedir(d);
	atomic_store(&dc->peers, n);
}
