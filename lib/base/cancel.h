/* cancel.h - giving up work nobody waits for any more. Long work (a chunk, a per-tensor
 * statistic pass, a cold footer) checks an aprfs_cancel between steps and stops with
 * -ECANCELED; who decides (a FUSE interrupt, a reader that died, an unmount) is the caller's.
 */
#ifndef APRFS_CANCEL_H
#define APRFS_CANCEL_H

#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/err.h"

typedef struct aprfs_cancel {
	/* 1 once the work is no longer wanted. Called often, from any thread doing the work
	 * (parallel passes included): it must be cheap and thread-safe. */
	int (*check)(void *arg);
	void *arg;
} aprfs_cancel;

/* 1 if c says stop (c may be NULL: never). */
static inline int aprfs_cancelled(const aprfs_cancel *c)
{
	return c && c->check && c->check(c->arg);
}

/* -ECANCELED with a message, for work that stopped because aprfs_cancelled said so. */
int aprfs_fail_cancelled(aprfs_err *err);

/* Whether the process (or thread) that asked for the work is still there: what FUSE can
 * tell of a reader killed while its page-cache read-ahead is in flight (the kernel sends
 * no interrupt for those). Reads /proc at most every APRFS_PID_POLL_MS per watch, the first
 * time one period after aprfs_pid_watch_init. */
#define APRFS_PID_POLL_MS 20
typedef struct aprfs_pid_watch {
	pid_t pid; /* 0: no process (kernel-internal requests): never gone */
	_Atomic int64_t next_ns;
	atomic_int gone;
} aprfs_pid_watch;

void aprfs_pid_watch_init(aprfs_pid_watch *w, pid_t pid);
int aprfs_pid_watch_gone(aprfs_pid_watch *w);
/* 1 if pid (a process or thread id) no longer exists or is a zombie. */
int aprfs_pid_gone(pid_t pid);

#endif
