/* diskcache_read.c - reading one record that the index located: from the page cache
 * without waiting (RWF_NOWAIT), else from its pack's read window, else through the I/O
 * threads with the deadline (diskcache_io.c), whose read may become the pack's window (on
 * a file system without RWF_NOWAIT, e.g. FUSE, one large read serves the records after it);
 * every record verified, and its pack deleted when corrupt (dc_pack_corrupt). */
#define _GNU_SOURCE /* preadv2, RWF_NOWAIT */
#include "cache/diskcache_read.h"

#include <errno.h>
#include <sys/uio.h>

#include "cache/diskcache_io.h"
#include "cache/diskcache_record.h"
#include "cache/diskcache_scan.h"
#include "cache/diskcache_table.h"

#define WINDOW	(4u << 20) /* bytes a read through the I/O threads asks for */
#define WINDOWS 4	   /* packs holding such a window at most */

/* A stored (not compressed) record already in the page cache: read without waiting
 * (RWF_NOWAIT), the payload straight into buf. 1 done (verified), 0 corrupt (*why), -1 not
 * possible now (not all in memory, or a file system without RWF_NOWAIT: take the I/O
 * threads' path). */
static int read_now(aprfs_diskcache *dc, const aprfs_dc_key *key, const dc_loc *l, int fd,
		    void *buf, const char **why)
{
	uint8_t hdr[DC_REC];
	struct iovec iov[2] = {{hdr, DC_REC}, {buf, l->clen}};

	if ((l->flags & DC_REC_LZ4) || atomic_load(&dc->nowait) < 0)
		return -1;
	ssize_t r = preadv2(fd, iov, 2, (off_t)l->off, RWF_NOWAIT);
	if (r < 0 && (errno == EOPNOTSUPP || errno == EINVAL))
		atomic_store(&dc->nowait, -1); /* (never will: FUSE file systems) */
	else if (!atomic_load(&dc->nowait))
		atomic_store(&dc->nowait, 1);
	if (r != (ssize_t)(DC_REC + l->clen))
		return -1;
	return dc_rec_verify(key, l, hdr, buf, why) == 0;
}

/* The record from the pack's window, if it holds it: 1 (decoded and verified into buf), 0
 * (corrupt: *why), -1 (not there). */
static int from_window(const aprfs_dc_key *key, const dc_loc *l, dc_pack *k, void *buf,
		       const char **why)
{
	int rc = -1;

	pthread_mutex_lock(&k->wlock);
	if (k->wbuf && l->off >= k->woff && l->off + DC_REC + l->slen <= k->woff + k->wlen)
		rc = dc_rec_decode(key, l, k->wbuf + (l->off - k->woff), buf, why) == 0;
	pthread_mutex_unlock(&k->wlock);
	return rc;
}

/* At most WINDOWS packs hold a window: k gets a slot, the oldest other loses its own. */
static void window_slot(aprfs_diskcache *dc, dc_pack *k)
{
	dc_pack *old = NULL;

	pthread_mutex_lock(&dc->lock);
	int have = 0;
	for (int i = 0; i < WINDOWS; i++)
		have |= dc->windows[i] == k;
	if (!have) {
		old = dc->windows[dc->next_window];
		dc->windows[dc->next_window] = k;
		dc->next_window = (dc->next_window + 1) % WINDOWS;
	}
	pthread_mutex_unlock(&dc->lock);
	if (old) {
		pthread_mutex_lock(&old->wlock);
		uint8_t *b = old->wbuf;
		old->wbuf = NULL;
		old->wlen = 0;
		pthread_mutex_unlock(&old->wlock);
		if (b)
			dc_io_recycle(dc, b);
	}
}

/* The window's bytes (n, read at off into *p, an I/O buffer) become the pack's window: the
 * buffers are swapped (no copy), *p is the old window's buffer now, or NULL. */
static void set_window(aprfs_diskcache *dc, dc_pack *k, uint8_t **p, uint64_t off, size_t n)
{
	window_slot(dc, k);
	pthread_mutex_lock(&k->wlock);
	uint8_t *old = k->wbuf;
	k->wbuf = *p;
	k->woff = off;
	k->wlen = n;
	*p = old;
	pthread_mutex_unlock(&k->wlock);
}

/* Through the I/O threads (with the deadline): the record, or a window of `window` bytes
 * from the record on (within the pack), which later records are served from. 1, 0
 * (corrupt), -1 (a miss). */
static int read_window(aprfs_diskcache *dc, const aprfs_dc_key *key, const dc_loc *l,
		       dc_pack *k, void *buf, uint64_t window, const char **why)
{
	uint64_t need = DC_REC + l->slen, size = k->size;
	size_t n = (size_t)(size > l->off + window ? window : size - l->off);
	uint8_t *rec = NULL;

	n = n < need ? (size_t)need : n;
	atomic_fetch_add(&k->refs, 1); /* (dc_io_read takes one over) */
	int rc = dc_io_read(dc, k, l->off, n, &rec, why);
	if (rc == 0 && (rc = dc_rec_decode(key, l, rec, buf, why) == 0) == 1 && n > need)
		set_window(dc, k, &rec, l->off, n);
	else if (rc == -1 || rc == -2)
		rc = rc == -1 && *why ? 0 : -1;
	if (rec)
		dc_io_recycle(dc, rec);
	return rc;
}

int dc_read_record(aprfs_diskcache *dc, const aprfs_dc_key *key, const dc_loc *l, dc_pack *k,
		   void *buf, uint32_t *crc)
{
	const char *why = NULL;
	int rc = read_now(dc, key, l, k->fd, buf, &why);

	/* Where RWF_NOWAIT works, a record not in memory yet is read alone (the pack is being
	 * read ahead: aprfs_diskcache_prefetch, and the reads after it find it in memory);
	 * where it does not (FUSE file systems), a window serves the records after it. */
	if (rc < 0)
		rc = from_window(key, l, k, buf, &why);
	if (rc < 0)
		rc = read_window(dc, key, l, k, buf, atomic_load(&dc->nowait) > 0 ? 0 : WINDOW,
				 &why);
	dc_pack_put(k);
	if (rc == 1 && crc)
		*crc = l->crc;
	if (rc == 0)
		dc_pack_corrupt(dc, l->pack, l->off, why);
	return rc;
}

void dc_windows_free(aprfs_diskcache *dc)
{
	for (uint32_t i = 0; i < dc->npacks; i++)
		dc_io_buf_free(dc->packs[i]->wbuf);
}
