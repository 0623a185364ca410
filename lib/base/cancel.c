/* cancel.c - the shared parts of cancellation: its error, and watching whether a process
 * is still alive through /proc (a zombie counts as gone: it will never read again). */
#include "base/cancel.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int aprfs_fail_cancelled(aprfs_err *err)
{
	return aprfs_fail(err, ECANCELED,
			  "cancelled: the reader gave up or the mount is ending");
}

/* /proc/PID/status of a process or thread: 0 and the text, or -1 once it is gone. */
static int read_status(pid_t pid, char *buf, size_t cap)
{
	char path[64];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ESRCH ? -1 : 1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0)
		return n == 0 || errno == ESRCH ? -1 : 1; /* reaped between open and read */
	buf[n] = '\0';
	return 0;
}

/* A hexadecimal signal mask line ("ShdPnd:\t0000000000000100") holding SIGKILL. */
static int kill_pending(const char *status, const char *field)
{
	const char *p = strstr(status, field);
	unsigned long long mask;

	return p && sscanf(p + strlen(field), " %llx", &mask) == 1 &&
	       (mask >> (SIGKILL - 1) & 1);
}

/* Gone: no longer there, a zombie, or killed (SIGKILL pending: a reader killed while the
 * kernel waits for our reply to its read cannot die before we answer). */
int aprfs_pid_gone(pid_t pid)
{
	char buf[4096];
	const char *state;
	int rc;

	if (pid <= 0)
		return 0;
	rc = read_status(pid, buf, sizeof(buf));
	if (rc)
		return rc < 0;
	state = strstr(buf, "\nState:");
	if (state) {
		char c = 0;
		if (sscanf(state + 7, " %c", &c) == 1 && (c == 'Z' || c == 'X' || c == 'x'))
			return 1;
	}
	return kill_pending(buf, "\nShdPnd:") || kill_pending(buf, "\nSigPnd:");
}

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The first look is one period away: a request that ends sooner (nearly all: a 1 MiB read
 * takes a fraction of a millisecond) never reads /proc, which would cost it more than
 * its copy (an open, a 4 KiB read and a close per request). */
void aprfs_pid_watch_init(aprfs_pid_watch *w, pid_t pid)
{
	w->pid = pid;
	atomic_init(&w->next_ns, now_ns() + APRFS_PID_POLL_MS * 1000000LL);
	atomic_init(&w->gone, 0);
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
