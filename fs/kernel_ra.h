/* kernel_ra.h - raising the kernel's read-ahead on a fresh mount (a helper thread that
 * waits for FUSE INIT, then writes the mount's bdi read_ahead_kb). Join it after the
 * session ends: its stat returns once the connection is gone. */
#ifndef APRFS_FS_KERNEL_RA_H
#define APRFS_FS_KERNEL_RA_H

#include <pthread.h>

/* 0 or an errno from pthread_create. mountpoint must outlive the thread. */
int aprfs_kernel_ra_start(pthread_t *thread, const char *mountpoint);

#endif
