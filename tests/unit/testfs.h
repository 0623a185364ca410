/* testfs.h - small file helpers the unit tests share: a path inside a test directory and
 * writing whole files (exiting the test on I/O failure: the test could not mean anything). */
#ifndef APRFS_TESTFS_H
#define APRFS_TESTFS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* dir/name in one of 8 rotating buffers, so a few can be live in one call. */
static inline const char *test_path(const char *dir, const char *name)
{
	static char buf[8][512];
	static int k;

	k = (k + 1) % 8;
	snprintf(buf[k], sizeof(buf[k]), "%s/%s", dir, name);
	return buf[k];
}

static inline void put_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static inline void put_text(const char *path, const char *text)
{
	put_file(path, text, strlen(text));
}

#endif
