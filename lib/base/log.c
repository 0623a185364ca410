/* log.c - the daemon's logger: a threshold, a sink (stderr, a test stream or syslog)
 * and the set of keys aprfs_log_once() has already reported. All of it is reset by
 * aprfs_log_setup(), so a test can start from a clean logger. */
#include "base/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* The once-set is small on purpose: it holds one key per broken file, and a tree with
 * more broken files than this simply repeats a message after the set is cleared. */
#define ONCE_SLOTS 1024

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_level = APRFS_LOG_WARN;
static int log_syslog;
static FILE *log_stream;
static char *once_keys[ONCE_SLOTS];
static size_t once_used;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void once_clear(void)
{
	for (size_t i = 0; i < ONCE_SLOTS; i++) {
		free(once_keys[i]);
		once_keys[i] = NULL;
	}
	once_used = 0;
}

void aprfs_log_setup(int level, int use_syslog)
{
	pthread_mutex_lock(&log_lock);
	if (log_syslog && !use_syslog)
		closelog();
	__atomic_store_n(&log_level, level, __ATOMIC_RELAXED);
	log_syslog = use_syslog;
	if (use_syslog)
		openlog("aprfs", LOG_PID, LOG_DAEMON);
	once_clear();
	pthread_mutex_unlock(&log_lock);
}

void aprfs_log_set_stream(FILE *f)
{
	pthread_mutex_lock(&log_lock);
	log_stream = f;
	pthread_mutex_unlock(&log_lock);
}

int aprfs_log_enabled(int level)
{
	return level <= __atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

static void emit(int level, const char *fmt, va_list ap)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	if (log_syslog) {
		syslog(prio[level], "%s", line);
		return;
	}
	/* One fprintf per message keeps lines from two threads from interleaving. */
	fprintf(log_stream ? log_stream : stderr, "aprfs: %s: %s\n", level_names[level], line);
	fflush(log_stream ? log_stream : stderr);
}

void aprfs_log(int level, const char *fmt, ...)
{
	va_list ap;

	if (!aprfs_log_enabled(level))
		return;
	pthread_mutex_lock(&log_lock);
	va_start(ap, fmt);
	emit(level, fmt, ap);
	va_end(ap);
	pthread_mutex_unlock(&log_lock);
}

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull;

	while (*s)
		h = (h ^ (unsigned char)*s++) * 1099511628211ull;
	return h;
}

/* Insert key; 1 if it was new. Linear probing; called with log_lock held. */
static int once_insert(const char *key)
{
	size_t i;

	if (once_used >= ONCE_SLOTS * 3 / 4)
		once_clear();
	for (i = hash_str(key) % ONCE_SLOTS; once_keys[i]; i = (i + 1) % ONCE_SLOTS)
		if (strcmp(once_keys[i], key) == 0)
			return 0;
	once_keys[i] = strdup(key);
	if (once_keys[i])
		once_used++;
	return 1;
}

int aprfs_log_once(int level, const char *key, const char *fmt, ...)
{
	va_list ap;
	int fresh;

	if (!aprfs_log_enabled(level))
		return 0;
	pthread_mutex_lock(&log_lock);
	fresh = once_insert(key);
	if (fresh) {
		va_start(ap, fmt);
		emit(level, fmt, ap);
		va_end(ap);
	}
	pthread_mutex_unlock(&log_lock);
	return fresh;
}

int aprfs_log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, level_names[i]) == 0)
			return i;
	if (strcmp(s, "warning") == 0)
		return APRFS_LOG_WARN;
	return -1;
}

const char *aprfs_log_level_name(int level)
{
	return level >= 0 && level < 4 ? level_names[level] : "?";
}
