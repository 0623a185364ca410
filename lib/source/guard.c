/* guard.c - aprfs_guarded_copy(): memcpy out of a mapping that another process may
 * truncate underneath us, turning the SIGBUS that would kill the daemon into an error
 * return for the one copy that faulted. */
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>

#include "source_impl.h"

/* A file mapped with mmap can be truncated by another process at any time; touching a
 * page past the new end raises SIGBUS, whose default action kills the whole daemon. The
 * fstat checks around a copy catch most changes but cannot close the window between the
 * check and the copy, so the copy itself is guarded: the handler jumps back to the copy's
 * caller, which reports -EIO. The jump target is thread-local because any thread may be
 * copying, and a SIGBUS from a memory fault is delivered to the thread that faulted. A
 * fault outside a guarded copy is someone else's bug: the handler puts back the action
 * that was there before and returns, so the faulting instruction runs again and the
 * fault is delivered as if we had never been installed (normally: a core dump). */

static __thread sigjmp_buf *volatile bus_jump;
static struct sigaction bus_previous;
static pthread_once_t bus_once = PTHREAD_ONCE_INIT;

static void on_sigbus(int sig, siginfo_t *info, void *ctx)
{
	sigjmp_buf *jb = bus_jump;

	(void)info;
	(void)ctx;
	if (jb)
		siglongjmp(*jb, 1);
	sigaction(sig, &bus_previous, NULL);
}

static void install_sigbus(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGBUS, &sa, &bus_previous);
}

int aprfs_guarded_copy(void *dst, const void *src, size_t len)
{
	sigjmp_buf jb;

	pthread_once(&bus_once, install_sigbus);
	/* savemask 1: SIGBUS is blocked while its handler runs; jumping out must unblock
	 * it, or the next fault in this thread would kill the process outright. */
	if (sigsetjmp(jb, 1)) {
		bus_jump = NULL;
		return -1;
	}
	bus_jump = &jb;
	/* Keep the compiler from moving the copy outside the guarded region. */
	atomic_signal_fence(memory_order_seq_cst);
	memcpy(dst, src, len);
	atomic_signal_fence(memory_order_seq_cst);
	bus_jump = NULL;
	return 0;
}
