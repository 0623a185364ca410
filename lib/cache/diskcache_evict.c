/* diskcache_evict.c - keeping the cache directory within its budget: a scan of the 256
 * subdirectories sums the entries, and when they (plus the entry about to be written) would
 * exceed the budget, the least recently used are deleted down to 90% of it.
 *
 * "Recently used" is the entry file's mtime: set when the entry is written and refreshed by
 * a hit (diskcache.c, at most once per touch_after_s, so hits do not each cost a metadata
 * write). mtime and not atime because atime is unreliable (relatime, noatime, and NFS
 * clients cache it); mtime survives restarts, and every daemon sharing the directory sees
 * the others' hits, so eviction is LRU across daemons and restarts alike.
 *
 * Only the writer thread scans, so readers never wait for it. It scans when it starts (to
 * learn the size), whenever its own estimate says the next entry would not fit, and every
 * few minutes (other daemons write too: between scans a shared directory can exceed the
 * budget by what the others wrote since, and each daemon's next scan trims it). The scan
 * also removes what crashed processes left: temporary files older than 15 minutes and
 * claims older than ten times the claim lifetime. Deleting an entry another process is
 * reading is harmless (POSIX keeps an open file; NFS renames it aside until closed). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache/diskcache_impl.h"

#define TMP_FORGOTTEN_NS (15 * 60 * 1000000000ll)

typedef struct scan_ent {
	int64_t mtime;
	uint64_t charge;
	char name[DC_NAME_MAX]; /* "ab/<32 hex>.ent" */
} scan_ent;

typedef struct scan {
	scan_ent *v;
	size_t n, cap;
	uint64_t total;
	int64_t now;
} scan;

uint64_t dc_charge(uint64_t n)
{
	return (n + 4095) & ~(uint64_t)4095;
}

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

static void add_entry(scan *s, const char *sub, const char *name, const struct stat *st)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		scan_ent *v = realloc(s->v, cap * sizeof(*v));
		if (!v)
			return; /* not listed: never evicted by this scan, still counted */
		s->v = v;
		s->cap = cap;
	}
	scan_ent *e = &s->v[s->n++];
	e->mtime = mtime_ns(st);
	e->charge = dc_charge((uint64_t)st->st_size);
	snprintf(e->name, sizeof(e->name), "%s/%s", sub, name);
}

/* One name in subdirectory sub (fd). */
static void scan_name(aprfs_diskcache *dc, scan *s, int fd, const char *sub, const char *name)
{
	struct stat st;

	if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
		return;
	if (strncmp(name, ".tmp.", 5) == 0) {
		if (s->now - mtime_ns(&st) > TMP_FORGOTTEN_NS && unlinkat(fd, name, 0) == 0)
			return;
		s->total += dc_charge((uint64_t)st.st_size); /* being written, or will be */
	} else if (ends_with(name, ".claim")) {
		if (s->now - mtime_ns(&st) > 10ll * dc->claim_stale_ms * 1000000)
			unlinkat(fd, name, 0);
	} else if (ends_with(name, ".ent") && strlen(name) == 36) {
		s->total += dc_charge((uint64_t)st.st_size);
		add_entry(s, sub, name, &st);
	}
}

static void scan_dir(aprfs_diskcache *dc, scan *s)
{
	for (int i = 0; i < 256; i++) {
		char sub[3];
		snprintf(sub, sizeof(sub), "%02x", i);
		int fd = openat(dc->dirfd, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
		if (!d) {
			if (fd >= 0)
				close(fd);
			continue;
		}
		for (struct dirent *de; (de = readdir(d));)
			if (de->d_name[0] != '.' || strncmp(de->d_name, ".tmp.", 5) == 0)
				scan_name(dc, s, dirfd(d), sub, de->d_name);
		closedir(d);
	}
}

static int by_mtime(const void *a, const void *b)
{
	const scan_ent *x = a, *y = b;
	return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Delete the oldest until total + incoming fits 90% of the budget. */
static uint64_t evict(aprfs_diskcache *dc, scan *s, uint64_t incoming)
{
	uint64_t low = dc->budget / 10 * 9, evicted = 0;

	low = incoming < low ? low - incoming : 0;
	qsort(s->v, s->n, sizeof(*s->v), by_mtime);
	for (size_t i = 0; i < s->n && s->total > low; i++) {
		int rc = unlinkat(dc->dirfd, s->v[i].name, 0);
		if (rc == 0 || errno == ENOENT)
			s->total -= s->v[i].charge;
		evicted += rc == 0;
	}
	return evicted;
}

void dc_scan(aprfs_diskcache *dc, uint64_t incoming)
{
	scan s = {.now = dc_now_ns(CLOCK_REALTIME)};
	uint64_t evicted = 0;

	scan_dir(dc, &s);
	if (s.total + incoming > dc->budget)
		evicted = evict(dc, &s, incoming);
	free(s.v);
	pthread_mutex_lock(&dc->lock);
	dc->st.bytes_on_disk = s.total;
	dc->st.evictions += evicted;
	dc->scanned = 1;
	pthread_mutex_unlock(&dc->lock);
}
