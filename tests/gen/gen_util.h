/* gen_util.h - what the test generators (genmodel, gengguf) share besides their values:
 * dying with a message that names the tool, parsing a non-negative number argument, and
 * joining a directory and a file name. A tool defines GEN_TOOL before including it. */
#ifndef APRFS_GEN_UTIL_H
#define APRFS_GEN_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fputs(GEN_TOOL ": ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* A command-line count or size: decimal, no sign, no trailing text. */
static uint64_t num(const char *s, const char *what)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		die("%s: '%s' is not a non-negative integer", what, s);
	return v;
}

static char *join(const char *dir, const char *name)
{
	char *p = malloc(strlen(dir) + strlen(name) + 2);

	if (!p)
		die("out of memory");
	sprintf(p, "%s/%s", dir, name);
	return p;
}

#endif
