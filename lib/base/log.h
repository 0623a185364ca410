/* log.h - levelled logging for the daemon: stderr in the foreground, syslog once
 * daemonized, plus a log-once helper so a broken file is reported a single time however
 * often the kernel asks about it. */
#ifndef APRFS_LOG_H
#define APRFS_LOG_H

#include <stdio.h>

enum { APRFS_LOG_ERROR, APRFS_LOG_WARN, APRFS_LOG_INFO, APRFS_LOG_DEBUG };

/* Set the threshold and the sink, and forget every key aprfs_log_once() remembered.
 * use_syslog != 0 sends messages to syslog (ident "aprfs"), else to stderr. */
void aprfs_log_setup(int level, int use_syslog);
/* Tests: write to f instead of stderr (NULL restores stderr). */
void aprfs_log_set_stream(FILE *f);
int aprfs_log_enabled(int level);

void aprfs_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Log unless this key was logged before; returns 1 if it logged. Keys are strings such
 * as "<file>: <reason>"; the remembered set is bounded (it is cleared when full, so an
 * endless stream of distinct keys costs memory once, not forever). */
int aprfs_log_once(int level, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* "error" "warn" "info" "debug" (and "warning") -> level, -1 if unknown. */
int aprfs_log_level_parse(const char *s);
const char *aprfs_log_level_name(int level);

#endif
