/* io.h - a file descriptor read or written until done: the one loop of pread (pwrite) calls
 * that retries EINTR and continues after short reads (writes), for every reader and writer in
 * lib/ and fs/. */
#ifndef APRFS_IO_H
#define APRFS_IO_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Bytes [off, off+len) of fd into buf, stopping early only at end of file: the bytes
 * read, or -errno. */
ssize_t aprfs_pread_upto(int fd, void *buf, size_t len, uint64_t off);
/* All of [off, off+len) of fd: 0, -errno, or -EIO when the file ends first. */
int aprfs_pread_full(int fd, void *buf, size_t len, uint64_t off);
/* All len bytes of buf to fd at off: 0 or -errno. */
int aprfs_pwrite_full(int fd, const void *buf, size_t len, uint64_t off);

/* The directory name under dirfd, opened for readdir (O_CLOEXEC), or NULL and errno. */
DIR *aprfs_opendirat(int dirfd, const char *name);

#endif
