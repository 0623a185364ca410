/* err.c - filling aprfs_err records. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int aprfs_fail(aprfs_err *err, int code, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
		err->code = code;
	}
	return -code;
}

void aprfs_err_prefix(aprfs_err *err, const char *what)
{
	char tmp[2 * sizeof(err->msg)];

	if (!err || !what)
		return;
	snprintf(tmp, sizeof(tmp), "%s: %s", what, err->msg);
	tmp[sizeof(err->msg) - 1] = '\0'; /* truncate to fit */
	memcpy(err->msg, tmp, sizeof(err->msg));
}
