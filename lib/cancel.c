/* cancel.c - the shared parts of cancellation: its error, and watching whether a process
 * is still alive through /proc (a zombie counts as gone: it will never read again). */
#include "cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int aprfs_fail_cancelled(aprfs_err *err)
{
	return aprfs_fail(err, ECANCELED,
			  "cancelled: the reader gave up or the mount is ending");
}

/* /proc/PID/stat is "pid (comm) S ...": the state follows the last ')' (comm may hold
 * anything, parentheses included). */
int aprfs_pid_gone(pid_t pid)
{
	char path[64], buf[512];
	int fd;
	ssize_t n;

	if (pid <= 0)
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH; /* reaped between open and read */
	buf[n] = '\0';
	const char *rp = strrchr(buf, ')');
	return rp && rp[1] == ' ' && (rp[2] == 'Z' || rp[2] == 'X' || rp[2] == 'x');
}

void aprfs_pid_watch_init(aprfs_pid_watch *w, pid_t pid)
{
	w->pid = pid;
	atomic_init(&w->next_ns, 0);
	atomic_init(&w->gone, 0);
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int aprfs_pid_watch_gone(aprfs_pid_watch *w)
{
	int64_t now, due;

	if (w->pid <= 0 || atomic_load(&w->gone))
		return w->pid > 0;
	now = now_ns();
	due = atomic_load(&w->next_ns);
	/* One thread polls per period; the others take the last answer. */
	if (now < due || !atomic_compare_exchange_strong(&w->next_ns, &due,
							 now + APRFS_PID_POLL_MS * 1000000LL))
		return 0;
	if (aprfs_pid_gone(w->pid))
		atomic_store(&w->gone, 1);
	return atomic_load(&w->gone);
}
