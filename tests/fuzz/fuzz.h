/* fuzz.h - what the libFuzzer harnesses of tests/fuzz/ share: FUZZ_CHECK, an assertion that
 * aborts with a message (libFuzzer saves the input as a crash file); inputs copied flush
 * against an unreadable page, so a read past their end faults even in uninstrumented code. */
#ifndef APRFS_FUZZ_H
#define APRFS_FUZZ_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/err.h"

/* Each harness defines FUZZ_MAX_LEN, the -max_len scripts/run-fuzz.sh passes (it reads it
 * from the source), and ignores longer inputs, so a replay sees what the run saw. */

#define FUZZ_CHECK(cond, ...)                                                                  \
	do {                                                                                   \
		if (!(cond)) {                                                                 \
			fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s: ", __FILE__,          \
				__LINE__, #cond);                                              \
			fprintf(stderr, " " __VA_ARGS__);                                      \
			fputc('\n', stderr);                                                   \
			abort();                                                               \
		}                                                                              \
	} while (0)

/* data[0..size) copied so that its last byte is the last one of a page and the next page
 * is PROT_NONE: libcjson is not instrumented, so ASan would not see it read past the end
 * of a length-delimited buffer; a fault will. The copy is writable and valid until the
 * next call. */
static inline uint8_t *fuzz_guarded(const uint8_t *data, size_t size)
{
	static uint8_t *area;
	static size_t cap; /* bytes before the guard page */
	size_t pg = (size_t)sysconf(_SC_PAGESIZE), need = (size + pg - 1) / pg * pg;

	if (need == 0)
		need = pg;
	if (need > cap) {
		if (area)
			munmap(area, cap + pg);
		area = mmap(NULL, need + pg, PROT_READ | PROT_WRITE,
			    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		FUZZ_CHECK(area != MAP_FAILED, "mmap of %zu bytes", need + pg);
		FUZZ_CHECK(mprotect(area + need, pg, PROT_NONE) == 0, "mprotect");
		cap = need;
	}
	if (size)
		memcpy(area + cap - size, data, size);
	return area + cap - size;
}

/* A refusal: -EINVAL (or -ENOMEM) with a message that starts with "path". */
static inline void fuzz_check_refusal(int rc, const aprfs_err *err, const char *path)
{
	FUZZ_CHECK(rc == -EINVAL || rc == -ENOMEM, "rc %d: %s", rc, err->msg);
	FUZZ_CHECK(err->code == -rc, "code %d, rc %d", err->code, rc);
	FUZZ_CHECK(strncmp(err->msg, path, strlen(path)) == 0, "message '%s' does not name %s",
		   err->msg, path);
}

static inline uint64_t fuzz_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

#endif
