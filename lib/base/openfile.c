/* openfile.c - aprfs_open_regular(): the one way aprfs opens files it did not create (see
 * openfile.h). /proc/self/fd names the file a descriptor really is, which is what makes
 * the root check race-free. */
#include "base/openfile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int aprfs_path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	if (n == 1 && dir[0] == '/')
		return path[0] == '/';
	return strncmp(path, dir, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

static int fd_real_path(int fd, const char *path, char *out)
{
	char proc[64];
	ssize_t n;

	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, out, PATH_MAX - 1);
	if (n > 0) {
		out[n] = '\0';
		return 0;
	}
	return realpath(path, out) ? 0 : -1; /* no /proc: the best we can do */
}

static int refuse(int *fd, aprfs_err *err, int code, const char *path, const char *why)
{
	close(*fd);
	*fd = -1;
	return aprfs_fail(err, code, "%s: %s", path, why);
}

int aprfs_open_regular(const char *path, const char *root, int extra_flags, int *fd,
		       struct stat *st, aprfs_err *err)
{
	char real[PATH_MAX];

	*fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC | extra_flags);
	if (*fd < 0) {
		int e = errno == ELOOP && (extra_flags & O_NOFOLLOW) ? EPERM : errno;
		return aprfs_fail(err, e, "%s: %s", path,
				  e == EPERM ? "is a symbolic link" : strerror(e));
	}
	if (fstat(*fd, st) != 0)
		return refuse(fd, err, errno, path, strerror(errno));
	if (!S_ISREG(st->st_mode))
		return refuse(fd, err, EINVAL, path, "not a regular file");
	if (root && (fd_real_path(*fd, path, real) != 0 || !aprfs_path_under(real, root)))
		return refuse(fd, err, EPERM, path, "leads outside the source directory");
	return 0;
}
