/* diskcache_pack.c - the writer's pack: created as "packs/<writer>.<seq>.tmp", records
 * appended in batches (one write per batch), sealed by appending its index and trailer and
 * renaming it to ".pack" (atomic publish: other processes only ever load sealed packs, whose
 * bytes are immutable). Also what is made of other packs: the recovery of a dead writer's
 * unsealed pack, the salvage of a corrupt pack's good records (queued again), and at close
 * the compaction of the small packs this process sealed into one.
 *
 * A crash leaves at most one unsealed pack per writer. Whoever finds it with its writer dead
 * takes it (rename to a private name: only one process wins), keeps the records whose
 * header and payload checksums hold, up to the first that does not, and seals it; a pack
 * with nothing good is deleted. Records are not fsync'ed: a torn record fails its checksum
 * on recovery or on read, and is recomputed, never served. */
#include "cache/diskcache_pack.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "cache/diskcache_queue.h"
#include "cache/diskcache_record.h"
#include "cache/diskcache_table.h"

/* ---- appending ------------------------------------------------------------------------- */

static int open_pack(aprfs_diskcache *dc)
{
	char name[128];
	uint8_t h[DC_PACK_HEAD];

	snprintf(name, sizeof(name), "packs/%s.%u.tmp", dc->wid, dc->seq++);
	if (mkdirat(dc->dirfd, "packs", 0755) != 0 && errno != EEXIST)
		return -errno;
	int fd = openat(dc->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
	if (fd < 0)
		return -errno;
	dc_pack_header(dc->wid, h);
	int rc = aprfs_pwrite_full(fd, h, sizeof(h), 0);
	if (rc != 0) {
		close(fd);
		unlinkat(dc->dirfd, name, 0);
		return rc;
	}
	pthread_mutex_lock(&dc->lock);
	int p = dc_pack_add(dc, name, fd, DC_PACK_HEAD, aprfs_now_ns(CLOCK_REALTIME), 1);
	if (p >= 0) {
		dc->st.packs++;
		dc->st.bytes_on_disk += dc_charge(DC_PACK_HEAD);
	}
	pthread_mutex_unlock(&dc->lock);
	if (p < 0) {
		close(fd);
		unlinkat(dc->dirfd, name, 0);
		return -ENOMEM;
	}
	pthread_mutex_lock(&dc->lock);
	dc->curp = dc->packs[p];
	pthread_mutex_unlock(&dc->lock);
	dc->cur = p;
	dc->cur_off = DC_PACK_HEAD;
	dc->cur_n = 0;
	dc->cur_opened = aprfs_now_ns(CLOCK_MONOTONIC);
	return 0;
}

/* The payload to store for a job: an LZ4 block in tmp when that saves 10%, else the data.
 * A variant whose records stopped shrinking is tried again only every 64 records. */
static const uint8_t *payload(aprfs_diskcache *dc, const dc_job *j, uint8_t *tmp, size_t cap,
			      uint32_t *slen, uint32_t *flags)
{
	int v = j->key.kind == APRFS_DC_CHUNK && j->key.variant < APRFS_VARIANT_COUNT
		    ? j->key.variant
		    : APRFS_VARIANT_COUNT;
	size_t n = 0;

	if (dc->lz4_skip[v] > 0)
		dc->lz4_skip[v]--;
	else if (!(n = dc_lz4_try(j->data, j->len, tmp, cap)))
		dc->lz4_skip[v] = 64;
	*slen = n ? (uint32_t)n : (uint32_t)j->len;
	*flags = n ? DC_REC_LZ4 : 0;
	return n ? tmp : j->data;
}

static size_t batch_bytes(const dc_job *jobs)
{
	size_t n = 0;
	for (const dc_job *j = jobs; j; j = j->next)
		n += DC_REC + j->len;
	return n;
}

static size_t batch_max_len(const dc_job *jobs)
{
	size_t n = 0;
	for (const dc_job *j = jobs; j; j = j->next)
		n = j->len > n ? j->len : n;
	return n;
}

/* Index the batch's records (now on disk) and remember them for the seal. */
static void index_batch(aprfs_diskcache *dc, const dc_loc *locs, size_t n, const dc_job *jobs,
			uint64_t bytes)
{
	if (dc->cur_n + n > dc->cur_cap) {
		size_t cap = (dc->cur_n + n) * 2;
		uint8_t *v = realloc(dc->cur_idx, cap * DC_IDX);
		if (v) {
			dc->cur_idx = v;
			dc->cur_cap = cap;
		}
	}
	pthread_mutex_lock(&dc->lock);
	const dc_job *j = jobs;
	for (size_t i = 0; i < n; i++, j = j->next) {
		if (dc->cur_n < dc->cur_cap)
			dc_idx_put(&locs[i], dc->cur_idx + DC_IDX * dc->cur_n++);
		dc_index_add(dc, &locs[i]);
		dc->st.entries_written++;
		if (j->key.kind == APRFS_DC_CHUNK && j->key.variant < APRFS_VARIANT_COUNT) {
			dc->st.content_bytes[j->key.variant] += j->len;
			dc->st.stored_bytes[j->key.variant] += DC_REC + locs[i].slen;
		}
	}
	dc->st.bytes_written += bytes;
	dc->st.bytes_on_disk += dc_charge(dc->cur_off + bytes) - dc_charge(dc->cur_off);
	dc->packs[dc->cur]->size = dc->cur_off + bytes;
	if (dc->st.bytes_on_disk > dc->budget)
		dc_scanner_kick(dc);
	pthread_cond_broadcast(&dc->found);
	pthread_mutex_unlock(&dc->lock);
}

/* Lay the jobs out as records in buf (cap bytes); their locations in locs. Bytes used. */
static size_t lay_out(aprfs_diskcache *dc, const dc_job *jobs, uint8_t *buf, dc_loc *locs,
		      uint8_t *tmp, size_t tmp_cap)
{
	size_t at = 0, i = 0;

	for (const dc_job *j = jobs; j; j = j->next, i++) {
		uint32_t slen, flags;
		const uint8_t *p = payload(dc, j, tmp, tmp_cap, &slen, &flags);
		dc_rec_header(&j->key, p, slen, (uint32_t)j->len, j->crc, flags, buf + at);
		memcpy(buf + at + DC_REC, p, slen);
		locs[i] = (dc_loc){.h = dc_key_hash(&j->key),
				   .pack = (uint32_t)dc->cur,
				   .clen = (uint32_t)j->len,
				   .slen = slen,
				   .crc = j->crc,
				   .flags = flags,
				   .off = dc->cur_off + at};
		at += DC_REC + slen;
	}
	return at;
}

int dc_pack_append(aprfs_diskcache *dc, dc_job *jobs, const char **what)
{
	size_t n = 0, cap = batch_bytes(jobs), tcap = dc_lz4_bound(batch_max_len(jobs));
	int rc;

	for (const dc_job *j = jobs; j; j = j->next)
		n++;
	*what = "create pack";
	if (dc->cur < 0 && (rc = open_pack(dc)) != 0)
		return rc;
	uint8_t *buf = malloc(cap), *tmp = malloc(tcap);
	dc_loc *locs = malloc(n * sizeof(*locs));
	*what = "write";
	rc = buf && tmp && locs ? 0 : -ENOMEM;
	if (rc == 0) {
		size_t used = lay_out(dc, jobs, buf, locs, tmp, tcap);
		if ((rc = aprfs_pwrite_full(dc->curp->fd, buf, used, dc->cur_off)) != 0) {
			/* (the batch's partial bytes go: the pack can still be sealed) */
			if (ftruncate(dc->curp->fd, (off_t)dc->cur_off) != 0)
				rc = rc ? rc : -EIO;
		} else {
			index_batch(dc, locs, n, jobs, used);
			dc->cur_off += used;
			dc->last_append = aprfs_now_ns(CLOCK_MONOTONIC);
		}
	}
	free(buf);
	free(tmp);
	free(locs);
	return rc;
}

/* ---- sealing ------------------------------------------------------------------------------
 */

static void drop_cur(aprfs_diskcache *dc, const char *name)
{
	pthread_mutex_lock(&dc->lock);
	dc->packs[dc->cur]->ours = 0;
	dc_pack_forget(dc, (uint32_t)dc->cur);
	pthread_mutex_unlock(&dc->lock);
	unlinkat(dc->dirfd, name, 0);
	dc->cur = -1;
}

/* The index and trailer after the records, the file cut right after them. On a full disk
 * the last records are given back one at a time, the index written over them (their blocks
 * are allocated already), so that what was written stays usable: 0 or an errno. */
static int write_index(aprfs_diskcache *dc, dc_pack *k)
{
	for (;;) {
		uint8_t t[DC_TRAILER];
		uint64_t end = dc->cur_off + dc->cur_n * DC_IDX + DC_TRAILER;
		dc_trailer(dc->cur_off, dc->cur_n, dc->cur_idx, t);
		int e = -aprfs_pwrite_full(k->fd, dc->cur_idx, dc->cur_n * DC_IDX, dc->cur_off);
		e = e ? e : -aprfs_pwrite_full(k->fd, t, sizeof(t), end - DC_TRAILER);
		if (!e)
			return ftruncate(k->fd, (off_t)end) == 0 ? 0 : errno;
		if ((e != ENOSPC && e != EDQUOT) || dc->cur_n <= 1)
			return e;
		dc_loc last;
		dc_idx_get(dc->cur_idx + (dc->cur_n - 1) * DC_IDX, &last);
		pthread_mutex_lock(&dc->lock);
		dc_index_remove(dc, &last.h, (uint32_t)dc->cur);
		dc_not_persisted_locked(dc, 1, "the disk is full");
		pthread_mutex_unlock(&dc->lock);
		dc->cur_n--;
		dc->cur_off = last.off;
	}
}

int dc_pack_seal(aprfs_diskcache *dc, const char **what)
{
	char tmp[128], name[128];

	if (dc->cur < 0)
		return 0;
	dc_pack *k = dc->curp; /* (the table may be moved by the scanner: not packs[cur]) */
	snprintf(tmp, sizeof(tmp), "%s", k->name);
	snprintf(name, sizeof(name), "%.*s.pack", (int)(strlen(tmp) - 4), tmp);
	if (!dc->cur_n) {
		drop_cur(dc, tmp); /* nothing in it */
		return 0;
	}
	*what = "write the index";
	int e = write_index(dc, k);
	pthread_mutex_lock(&dc->lock);
	snprintf(k->name, sizeof(k->name), "%s", name); /* before: a rescan must not load it */
	pthread_mutex_unlock(&dc->lock);
	*what = e ? *what : "rename";
	if (!e && renameat(dc->dirfd, tmp, dc->dirfd, name) != 0)
		e = errno;
	if (e) {
		pthread_mutex_lock(&dc->lock);
		dc_not_persisted_locked(dc, dc->cur_n, "the pack could not be sealed");
		pthread_mutex_unlock(&dc->lock);
		drop_cur(dc, tmp);
		return -e;
	}
	pthread_mutex_lock(&dc->lock);
	uint64_t size = dc->cur_off + dc->cur_n * DC_IDX + DC_TRAILER;
	dc->st.bytes_on_disk += dc_charge(size) - dc_charge(k->size);
	k->size = size;
	k->ours = 0;
	k->seen = 1; /* (a rescan that listed the directory before the rename keeps it) */
	k->mine = 1;
	dc->st.packs_sealed++;
	pthread_mutex_unlock(&dc->lock);
	dc->cur = -1;
	dc->cur_n = 0;
	return 0;
}

/* ---- recovery ---------------------------------------------------------------------------- */

/* Walk the records from the pack header on: the good ones' index entries into *idx, the
 * offset where the good records end. */
static uint64_t walk(int fd, uint64_t size, uint8_t **idx, size_t *count)
{
	uint8_t h[DC_REC];
	uint64_t off = DC_PACK_HEAD;
	size_t cap = 0;
	dc_loc l;

	*idx = NULL;
	*count = 0;
	if (aprfs_pread_full(fd, h, DC_PACK_HEAD, 0) != 0 || !dc_pack_header_ok(h))
		return 0;
	while (off + DC_REC <= size && aprfs_pread_full(fd, h, DC_REC, off) == 0 &&
	       dc_rec_parse(h, &l) == 0 && off + DC_REC + l.slen <= size) {
		uint8_t *p = malloc(l.slen + 1);
		int ok = p && aprfs_pread_full(fd, p, l.slen, off + DC_REC) == 0 &&
			 dc_rec_payload_ok(h, p, l.slen);
		free(p);
		if (!ok)
			break;
		if (*count == cap) {
			cap = cap ? 2 * cap : 256;
			uint8_t *v = realloc(*idx, cap * DC_IDX);
			if (!v)
				break;
			*idx = v;
		}
		l.off = off;
		dc_idx_put(&l, *idx + DC_IDX * (*count)++);
		off += DC_REC + l.slen;
	}
	return off;
}

/* Seal the taken pack (fd) with its good records; 0, or -1 (nothing good, or an error). */
static int reseal(int fd, uint64_t size, size_t *count)
{
	uint8_t *idx, t[DC_TRAILER];
	uint64_t end = walk(fd, size, &idx, count);
	int rc = -1;

	if (*count && ftruncate(fd, (off_t)end) == 0) {
		dc_trailer(end, *count, idx, t);
		if (aprfs_pwrite_full(fd, idx, *count * DC_IDX, end) == 0 &&
		    aprfs_pwrite_full(fd, t, sizeof(t), end + *count * DC_IDX) == 0)
			rc = 0;
	}
	free(idx);
	return rc;
}

int dc_pack_recover(aprfs_diskcache *dc, const char *name, char *out, size_t size)
{
	char taken[256], key[600];
	struct stat st;
	size_t count = 0;

	snprintf(taken, sizeof(taken), "%s.rec.%s.%ld", name, dc->host, (long)dc->pid);
	snprintf(out, size, "%.*s.pack", (int)(strlen(name) - 4), name);
	if (renameat(dc->dirfd, name, dc->dirfd, taken) != 0)
		return -1; /* another process took it first */
	int fd = openat(dc->dirfd, taken, O_RDWR | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	int rc = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode)
		     ? reseal(fd, (uint64_t)st.st_size, &count)
		     : -1;
	if (fd >= 0)
		close(fd);
	if (rc == 0 && renameat(dc->dirfd, taken, dc->dirfd, out) != 0)
		rc = -1;
	if (rc != 0)
		unlinkat(dc->dirfd, taken, 0);
	pthread_mutex_lock(&dc->lock);
	dc->st.packs_recovered += rc == 0;
	pthread_mutex_unlock(&dc->lock);
	snprintf(key, sizeof(key), "diskcache recover %s/%s", dc->dir, name);
	aprfs_log_once(
	    APRFS_LOG_WARN, key,
	    "disk cache %s/%s: unsealed pack of a dead writer: %zu records recovered%s",
	    dc->dir, name, count, rc == 0 ? ", sealed" : ", deleted");
	return rc;
}

/* ---- salvage ------------------------------------------------------------------------------
 */

/* One record, queued again if it is good. */
static void salvage_one(aprfs_diskcache *dc, int fd, const dc_loc *l)
{
	if (l->slen > DC_REC_MAX || l->clen > DC_REC_MAX)
		return;
	uint8_t *rec = malloc(DC_REC + (size_t)l->slen), *out = malloc(l->clen + 1);
	aprfs_dc_key k;
	const char *why;

	if (rec && out && aprfs_pread_full(fd, rec, DC_REC + l->slen, l->off) == 0 &&
	    dc_key_parse(rec + 8, &k) == 0 && dc_rec_decode(&k, l, rec, out, &why) == 0)
		dc_queue_put(dc, &k, out, l->clen, l->crc, 1);
	free(rec);
	free(out);
}

void dc_pack_salvage(aprfs_diskcache *dc, int fd)
{
	struct stat st;
	uint8_t *idx = NULL;
	uint64_t count = 0;
	const char *why;

	/* by its index: every record on its own (walking would stop at the bad one) */
	if (fstat(fd, &st) == 0)
		idx = dc_read_index(fd, (uint64_t)st.st_size, &count, &why);
	for (size_t i = 0; i < count && !dc->stopping; i++) {
		dc_loc l;
		dc_idx_get(idx + i * DC_IDX, &l);
		salvage_one(dc, fd, &l);
	}
	free(idx);
}

/* ---- compaction ----------------------------------------------------------------------------
 */

#define COMPACT_MAX 256 /* packs merged at a time */

/* The small packs this process sealed: their numbers (referenced), how many. */
static int small_mine(aprfs_diskcache *dc, uint32_t *v)
{
	int n = 0;

	pthread_mutex_lock(&dc->lock);
	for (uint32_t i = 0; i < dc->npacks && n < COMPACT_MAX; i++) {
		dc_pack *k = dc->packs[i];
		if (k->mine && !k->dead && k->fd >= 0 && k->size < dc->pack_max / 4) {
			atomic_fetch_add(&k->refs, 1);
			v[n++] = i;
		}
	}
	pthread_mutex_unlock(&dc->lock);
	return n;
}

/* Pack p's good records appended to our new pack (jobs of up to 8 MiB). 0 or -1. */
static int copy_pack(aprfs_diskcache *dc, dc_pack *k)
{
	const char *why, *what;
	uint64_t count = 0;
	uint8_t *idx = dc_read_index(k->fd, k->size, &count, &why);
	dc_job *head = NULL, **tail = &head;
	size_t bytes = 0;
	int rc = idx ? 0 : -1;

	for (uint64_t i = 0; idx && i <= count && rc == 0; i++) {
		dc_loc l = {0};
		if (i < count)
			dc_idx_get(idx + i * DC_IDX, &l);
		if (head && (i == count || bytes + l.clen > (8u << 20))) {
			rc = dc_pack_append(dc, head, &what) == 0 ? 0 : -1;
			while (head) {
				dc_job *j = head;
				head = j->next;
				free(j);
			}
			tail = &head;
			bytes = 0;
			pthread_mutex_lock(&dc->lock);
			dc->progress = aprfs_now_ns(CLOCK_MONOTONIC);
			pthread_mutex_unlock(&dc->lock);
		}
		if (i == count || l.clen > DC_REC_MAX || l.slen > DC_REC_MAX)
			continue;
		dc_job *j = malloc(sizeof(*j) + l.clen);
		uint8_t *rec = malloc(DC_REC + (size_t)l.slen);
		if (j && rec && aprfs_pread_full(k->fd, rec, DC_REC + l.slen, l.off) == 0 &&
		    dc_key_parse(rec + 8, &j->key) == 0 &&
		    dc_rec_decode(&j->key, &l, rec, (uint8_t *)(j + 1), &why) == 0) {
			j->next = NULL;
			j->data = (uint8_t *)(j + 1);
			j->len = l.clen;
			j->crc = l.crc;
			*tail = j;
			tail = &j->next;
			bytes += l.clen;
			j = NULL;
		}
		free(j);
		free(rec);
	}
	while (head) {
		dc_job *j = head;
		head = j->next;
		free(j);
	}
	free(idx);
	return rc;
}

void dc_pack_compact(aprfs_diskcache *dc)
{
	uint32_t v[COMPACT_MAX];
	const char *what;
	int n = small_mine(dc, v), ok = n >= 3 && dc->cur < 0;
	char name[128];

	pthread_mutex_lock(&dc->lock);
	ok = ok && !dc_writes_off_locked(dc);
	pthread_mutex_unlock(&dc->lock);
	dc_pack *kv[COMPACT_MAX];

	pthread_mutex_lock(&dc->lock);
	for (int i = 0; i < n; i++)
		kv[i] = dc->packs[v[i]];
	pthread_mutex_unlock(&dc->lock);
	for (int i = 0; i < n && ok; i++)
		ok = copy_pack(dc, kv[i]) == 0;
	ok = ok && dc_pack_seal(dc, &what) == 0;
	for (int i = 0; i < n; i++) {
		pthread_mutex_lock(&dc->lock);
		dc_pack *k = kv[i];
		snprintf(name, sizeof(name), "%s", k->name);
		if (ok)
			dc_pack_forget(dc, v[i]);
		pthread_mutex_unlock(&dc->lock);
		if (ok)
			unlinkat(dc->dirfd, name, 0);
		dc_pack_put(k);
	}
	if (!ok && dc->cur >= 0)
		dc_pack_seal(dc, &what); /* (what was copied: duplicates, harmless) */
}
