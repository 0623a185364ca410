/* check.h - the unit tests' whole framework: CHECK() records a failure with its line and
 * goes on; CHECK_SKIP() says why a check cannot run here; check_tmpdir() makes the test's
 * scratch directory under $TMPDIR; check_done() prints "N passed, N failed, N skipped". */
#ifndef APRFS_CHECK_H
#define APRFS_CHECK_H

#include <stdio.h>
#include <stdlib.h>

static int check_passed, check_failed, check_skipped;

#define CHECK(cond, ...)                                                                       \
	do {                                                                                   \
		if (cond) {                                                                    \
			check_passed++;                                                        \
		} else {                                                                       \
			check_failed++;                                                        \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);        \
			fprintf(stderr, " " __VA_ARGS__);                                      \
			fputc('\n', stderr);                                                   \
		}                                                                              \
	} while (0)

/* A check that cannot run on this machine (an ISA the CPU lacks): one "SKIP: why" line on
 * stdout, which scripts/run-tests.sh counts, never a silent pass. */
#define CHECK_SKIP(...)                                                                        \
	do {                                                                                   \
		check_skipped++;                                                               \
		printf("SKIP: " __VA_ARGS__);                                                  \
		putchar('\n');                                                                 \
	} while (0)

/* check_tmpdir(buf, size, name): a new directory $TMPDIR/aprfs-NAME-XXXXXX (TMPDIR unset:
 * /tmp) in buf, or NULL. The test suite points TMPDIR at a per-run directory that it removes,
 * so nothing a test writes outlives the run, even when the test crashes. */
static inline char *check_tmpdir(char *buf, size_t size, const char *name)
{
	const char *t = getenv("TMPDIR");

	snprintf(buf, size, "%s/aprfs-%s-XXXXXX", t && *t ? t : "/tmp", name);
	return mkdtemp(buf);
}

static inline int check_done(const char *suite)
{
	printf("%s: %d passed, %d failed, %d skipped\n", suite, check_passed, check_failed,
	       check_skipped);
	return check_failed ? 1 : 0;
}

#endif
