/* openfile.h - opening a file that someone else's tree holds, the way a daemon serving it
 * must: never blocking (a FIFO, socket or device is refused, not waited on), regular files
 * only, and, given a root, only a file that really lies inside it once links resolve. */
#ifndef APRFS_OPENFILE_H
#define APRFS_OPENFILE_H

#include <sys/stat.h>

#include "base/err.h"

/* path is dir or below it (both canonical, no trailing slash except "/"). */
int aprfs_path_under(const char *path, const char *dir);

/* Open path read-only with O_NONBLOCK (plus extra_flags, e.g. O_NOFOLLOW), fstat it,
 * require a regular file and, when root is not NULL, that the descriptor's file lies under
 * root (checked on the descriptor, so a link swapped meanwhile cannot fool it). 0 with *fd
 * and *st, or -errno with "path: reason". */
int aprfs_open_regular(const char *path, const char *root, int extra_flags, int *fd,
		       struct stat *st, aprfs_err *err);

#endif
