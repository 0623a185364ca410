/* err.h - the error record every fallible aprfs call fills in.
 * A failing call returns a negative errno and leaves "file: reason" in err->msg,
 * so the CLI and the daemon can print it unchanged.
 *
 * lib/base/, the lowest layer: generic utilities (errors, logging, cancellation, CRC32,
 * half floats, UTF-8, opening files, a thread pool, scratch buffers); nothing of aprfs above.
 */
#ifndef APRFS_ERR_H
#define APRFS_ERR_H

#include <stddef.h>

typedef struct aprfs_err {
	int code;      /* positive errno (EINVAL for bad input, EIO, ENOMEM, ...) */
	char msg[512]; /* "path: reason", NUL-terminated */
} aprfs_err;

/* Record an error (err may be NULL) and return -code. */
int aprfs_fail(aprfs_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefix err->msg with "what: " (used when a lower layer did not know the file name). */
void aprfs_err_prefix(aprfs_err *err, const char *what);

#endif
