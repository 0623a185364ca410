/* diskcache_scan.c - the scanner thread, which keeps the table (diskcache_table.c) in step
 * with the directory: it loads the indexes of sealed packs other processes publish, forgets
 * removed ones, recovers crashed writers' packs, evicts whole packs least recently used
 * first (by mtime, which hits refresh, so across restarts and daemons), counts peers,
 * salvages the good records of a pack deleted for a corrupt one (dc_pack_corrupt).
 *
 * Lookups never touch the directory: a miss is a hash-table probe. The scanner rescans
 * every DC_RESCAN_NS, every DC_PEER_RESCAN_NS while other processes write (their packs
 * appear as they seal them), and within DC_WAIT_RESCAN_NS while a lookup waits for records
 * another process claimed. Everything it does runs without the lock held, so a stalled
 * storage stalls only the scanner, never a reader. */
#include "cache/diskcache_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/cancel.h"
#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "cache/diskcache_claim.h"
#include "cache/diskcache_io.h"
#include "cache/diskcache_pack.h"
#include "cache/diskcache_peers.h"
#include "cache/diskcache_record.h"
#include "cache/diskcache_table.h"

#define DC_RESCAN_NS	  (30 * 1000000000ll)
#define DC_PEER_RESCAN_NS (500 * 1000000ll)
#define DC_WAIT_RESCAN_NS (40 * 1000000ll)
#define TMP_FORGOTTEN_NS  (15 * 60 * 1000000000ll) /* another host's unsealed pack: dead */

static int64_t mtime_ns(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* ---- a corrupt record ---------------------------------------------------------------- */

void dc_pack_corrupt(aprfs_diskcache *dc, uint32_t p, uint64_t off, const char *why)
{
	char name[128], key[700];
	struct stat a, b;
	int fd = -1;

	dc_count_corrupt(dc);
	pthread_mutex_lock(&dc->lock);
	dc_pack *k = dc->packs[p];
	snprintf(name, sizeof(name), "%s", k->name);
	int ours = k->ours;
	if (!k->dead && k->fd >= 0)
		fd = dup(k->fd);
	if (!ours)
		dc_pack_forget(dc, p);
	pthread_mutex_unlock(&dc->lock);
	snprintf(key, sizeof(key), "diskcache %s/%s", dc->dir, name);
	aprfs_log_once(APRFS_LOG_WARN, key,
		       "disk cache %s/%s: record at %llu: %s; pack deleted (its good records "
		       "rewritten), recomputing",
		       dc->dir, name, (unsigned long long)off, why);
	/* delete it if the name still is the file we read (not a newer one), and let the
	 * scanner write its good records again */
	int gone = !ours && fd >= 0 && fstat(fd, &a) == 0 &&
		   fstatat(dc->dirfd, name, &b, AT_SYMLINK_NOFOLLOW) == 0 &&
		   a.st_ino == b.st_ino && a.st_dev == b.st_dev &&
		   unlinkat(dc->dirfd, name, 0) == 0;
	pthread_mutex_lock(&dc->lock);
	if (gone && dc->nsalvage < 8) {
		dc->salvage[dc->nsalvage++] = fd;
		fd = -1;
		dc_scanner_kick(dc);
	}
	pthread_mutex_unlock(&dc->lock);
	if (fd >= 0)
		close(fd);
}

/* ---- loading a sealed pack ------------------------------------------------------------ */

static void bad_pack(aprfs_diskcache *dc, const char *name, const char *why)
{
	char key[700];

	dc_count_corrupt(dc);
	snprintf(key, sizeof(key), "diskcache %s/%s", dc->dir, name);
	aprfs_log_once(APRFS_LOG_WARN, key, "disk cache %s/%s: %s; deleted", dc->dir, name,
		       why);
	unlinkat(dc->dirfd, name, 0);
}

/* A sealed pack the table does not know: open it, check it, index its records. */
static void load_pack(aprfs_diskcache *dc, const char *name)
{
	const char *why = NULL;
	struct stat st;
	uint64_t count = 0;
	int fd = openat(dc->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);

	if (fd < 0)
		return;
	uint8_t *idx = NULL;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
		why = "not a regular file";
	else
		idx = dc_read_index(fd, (uint64_t)st.st_size, &count, &why);
	if (!idx) {
		close(fd);
		if (why)
			bad_pack(dc, name, why);
		return;
	}
	pthread_mutex_lock(&dc->lock);
	int p = dc_pack_add(dc, name, fd, (uint64_t)st.st_size, mtime_ns(&st), 0);
	for (uint64_t i = 0; p >= 0 && i < count; i++) {
		dc_loc l;
		dc_idx_get(idx + i * DC_IDX, &l);
		l.pack = (uint32_t)p;
		if (l.off < DC_PACK_HEAD || l.off + DC_REC + l.slen > (uint64_t)st.st_size)
			continue; /* (a read would say so; never trusted) */
		dc_index_add(dc, &l);
	}
	if (p >= 0) {
		dc->st.packs++;
		dc->st.bytes_on_disk += dc_charge((uint64_t)st.st_size);
		pthread_cond_broadcast(&dc->found);
	} else {
		close(fd);
	}
	pthread_mutex_unlock(&dc->lock);
	free(idx);
}

/* ---- rescans ------------------------------------------------------------------------- */

static int ends_with(const char *s, const char *suffix)
{
	size_t a = strlen(s), b = strlen(suffix);
	return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Whether the table lists name (and mark it seen). */
static int known(aprfs_diskcache *dc, const char *name)
{
	int found = 0;

	pthread_mutex_lock(&dc->lock);
	for (uint32_t i = 0; i < dc->npacks && !found; i++)
		if (!dc->packs[i]->dead && strcmp(dc->packs[i]->name, name) == 0)
			found = dc->packs[i]->seen = 1;
	pthread_mutex_unlock(&dc->lock);
	return found;
}

/* An unsealed pack "<host>.<pid>.<rand>.<seq>.tmp": its writer is dead (a process of this
 * host that is gone, or silent for TMP_FORGOTTEN_NS), so it is recovered. */
static int writer_dead(aprfs_diskcache *dc, const char *name, const struct stat *st)
{
	char host[64];
	long pid;

	if (sscanf(name, "packs/%63[^.].%ld.", host, &pid) == 2 && strcmp(host, dc->host) == 0)
		return pid != (long)dc->pid && aprfs_pid_gone((pid_t)pid);
	return aprfs_now_ns(CLOCK_REALTIME) - mtime_ns(st) > TMP_FORGOTTEN_NS;
}

static void scan_name(aprfs_diskcache *dc, const char *d_name)
{
	char name[128], sealed[128];
	struct stat st;

	snprintf(name, sizeof(name), "packs/%s", d_name);
	if (d_name[0] == '.' || known(dc, name))
		return;
	if (ends_with(name, ".pack"))
		load_pack(dc, name);
	else if (ends_with(name, ".tmp") && fstatat(dc->dirfd, name, &st, 0) == 0 &&
		 writer_dead(dc, name, &st) &&
		 dc_pack_recover(dc, name, sealed, sizeof(sealed)) == 0)
		load_pack(dc, sealed);
	else if (strstr(name, ".tmp.rec.") && fstatat(dc->dirfd, name, &st, 0) == 0 &&
		 aprfs_now_ns(CLOCK_REALTIME) - mtime_ns(&st) > TMP_FORGOTTEN_NS)
		unlinkat(dc->dirfd, name, 0); /* its recoverer died too */
}

/* Forget packs the listing no longer shows (evicted or deleted by another process). */
static void forget_unseen(aprfs_diskcache *dc)
{
	pthread_mutex_lock(&dc->lock);
	for (uint32_t i = 0; i < dc->npacks; i++) {
		dc_pack *k = dc->packs[i];
		if (!k->dead && !k->seen && !k->ours)
			dc_pack_forget(dc, i);
		k->seen = 0;
	}
	pthread_mutex_unlock(&dc->lock);
}

static void rescan(aprfs_diskcache *dc)
{
	DIR *d = aprfs_opendirat(dc->dirfd, "packs");
	if (!d)
		return;
	for (struct dirent *de; (de = readdir(d));)
		scan_name(dc, de->d_name);
	closedir(d);
	forget_unseen(dc);
}

/* ---- eviction and use -------------------------------------------------------------- */

/* A hit marked its pack: refresh the mtime eviction orders by (at most once a
 * touch_after_s per pack), outside the lock (a metadata write may be slow). */
static void touch_used(aprfs_diskcache *dc)
{
	int64_t now = aprfs_now_ns(CLOCK_REALTIME);
	dc_pack *due[32];
	int n = 0;

	pthread_mutex_lock(&dc->lock);
	for (uint32_t i = 0; i < dc->npacks && n < 32; i++) {
		dc_pack *k = dc->packs[i];
		if (k->dead || k->fd < 0 || !atomic_exchange(&k->touch, 0) ||
		    now - k->mtime < (int64_t)dc->touch_after_s * 1000000000)
			continue;
		k->mtime = now;
		atomic_fetch_add(&k->refs, 1);
		due[n++] = k;
	}
	pthread_mutex_unlock(&dc->lock);
	for (int i = 0; i < n; i++) {
		futimens(due[i]->fd, NULL); /* (read-only: eviction is merely less precise) */
		dc_pack_put(due[i]);
	}
}

/* The oldest sealed pack that is not ours: its number, or -1. */
static int oldest(aprfs_diskcache *dc)
{
	int best = -1;

	for (uint32_t i = 0; i < dc->npacks; i++) {
		dc_pack *k = dc->packs[i];
		if (!k->dead && !k->ours && (best < 0 || k->mtime < dc->packs[best]->mtime))
			best = (int)i;
	}
	return best;
}

void dc_evict(aprfs_diskcache *dc)
{
	char name[128];

	pthread_mutex_lock(&dc->lock);
	while (dc->st.bytes_on_disk > dc->budget / 10 * 9) {
		int p = oldest(dc);
		if (p < 0)
			break;
		snprintf(name, sizeof(name), "%s", dc->packs[p]->name);
		dc_pack_forget(dc, (uint32_t)p);
		dc->st.evictions++;
		pthread_mutex_unlock(&dc->lock);
		unlinkat(dc->dirfd, name, 0);
		pthread_mutex_lock(&dc->lock);
	}
	pthread_mutex_unlock(&dc->lock);
}

/* ---- the scanner thread ----------------------------------------------------------------- */

/* One pass: peers when due, the listing when due (or asked), hits' mtimes, old claims,
 * eviction. asked: a lookup waits for records, or the writer is over the budget. */
static void scanner_pass(aprfs_diskcache *dc, int asked)
{
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);

	if (!dc_stalled(dc)) {
		if (now >= dc->next_peer_check)
			dc_peers_check(dc);
		if (asked || now >= dc->next_rescan) {
			rescan(dc);
			dc->next_rescan =
			    now + (atomic_load(&dc->peers) ? DC_PEER_RESCAN_NS : DC_RESCAN_NS);
		}
		touch_used(dc);
		dc_claims_sweep(dc);
	}
	for (;;) {
		pthread_mutex_lock(&dc->lock);
		int fd = dc->nsalvage ? dc->salvage[--dc->nsalvage] : -1;
		pthread_mutex_unlock(&dc->lock);
		if (fd < 0)
			break;
		dc_pack_salvage(dc, fd);
		close(fd);
	}
	pthread_mutex_lock(&dc->lock);
	int over = dc->st.bytes_on_disk > dc->budget;
	atomic_store(&dc->scanned, 1);
	pthread_cond_broadcast(&dc->found);
	pthread_mutex_unlock(&dc->lock);
	if (over)
		dc_evict(dc);
}

/* When to wake (holding the lock): soon while someone waits, else at the next due work. */
static int64_t next_wake(aprfs_diskcache *dc)
{
	int64_t now = aprfs_now_ns(CLOCK_MONOTONIC);
	int64_t at =
	    dc->next_rescan < dc->next_peer_check ? dc->next_rescan : dc->next_peer_check;

	if (dc->waiters && at > now + DC_WAIT_RESCAN_NS)
		at = now + DC_WAIT_RESCAN_NS;
	return at > now + 10000000 ? at : now + 10000000;
}

void *dc_scanner_main(void *arg)
{
	aprfs_diskcache *dc = arg;

	int asked = 1;

	for (;;) {
		scanner_pass(dc, asked);
		pthread_mutex_lock(&dc->lock);
		int64_t wake = next_wake(dc);
		struct timespec ts = {wake / 1000000000, wake % 1000000000};
		while (!dc->kicked && !dc->stopping &&
		       pthread_cond_timedwait(&dc->scan, &dc->lock, &ts) != ETIMEDOUT)
			;
		asked = dc->kicked || dc->waiters;
		dc->kicked = 0;
		int stop = dc->stopping;
		pthread_mutex_unlock(&dc->lock);
		if (stop)
			break;
	}
	return NULL;
}
