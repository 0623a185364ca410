/* diskcache.h - the disk tier: what aprfs computed (quantized chunks, per-tensor statistics,
 * footer CRCs) kept as records in a few large pack files in a directory, keyed by what
 * determines their bytes, so that no daemon, later daemon or `aprfs convert` computes them
 * again (doc/diskcache.md has the design).
 *
 * How it fits: the in-memory chunk cache (cache.h) sits on top; aprfile.c asks this tier
 * before computing anything and offers it what it computed. Readers never wait for a write:
 * one writer thread appends records to this process's pack in large batches from a queue
 * bounded in bytes, and seals the pack (index + trailer, rename to .pack) at 256 MiB, when
 * idle, on flush and close. Lookups are a probe of an in-memory index of the sealed packs;
 * a hit is one pread, verified (header checksum, full key, payload checksum), with a
 * deadline: a storage that does not answer is set aside and the chunk computed instead.
 *
 * The directory may be shared by several processes on one host or on many hosts (NFS,
 * CephFS, MooseFS: close-to-open consistency and an atomic rename and O_EXCL create are
 * enough). Sealed packs are immutable; a pack whose writer died is recovered record by record
 * or deleted; a corrupt record is never served (its pack is deleted, logged once). Daemons
 * reading the same view at once claim ranges of chunks (claims/) and wait for each other's
 * sealed packs rather than computing twice. The directory is bounded: whole packs are
 * evicted, least recently used first (by mtime, which hits refresh). */
#ifndef APRFS_DISKCACHE_H
#define APRFS_DISKCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "base/cancel.h"
#include "base/err.h"
#include "cache/diskcache_types.h"

/* Budget when only a directory is given: the quantized views of a few 7B models. */
#define APRFS_DISKCACHE_DEFAULT_MB 10240u

typedef struct aprfs_diskcache_opts {
	const char *dir;    /* created (one level) if missing */
	uint64_t budget;    /* bytes the directory may hold (entries rounded up to 4 KiB) */
	size_t queue_bytes; /* content bytes waiting to be written (0: 64 MiB) */
	int wait_when_full; /* a full queue: 1 = put() waits (convert), 0 = drop (mount) */
	unsigned claim_stale_ms;  /* a claim this old is abandoned (0: 5000) */
	unsigned touch_after_s;	  /* a hit refreshes its pack's mtime when older than this
				   * (default 0 means 60; APRFS_DC_TOUCH_ALWAYS: every hit) */
	unsigned read_timeout_ms; /* a read slower than this sets the cache aside (0: 1000) */
	unsigned seal_idle_ms;	  /* seal our pack after this long without a write (0: 2000) */
} aprfs_diskcache_opts;

#define APRFS_DC_TOUCH_ALWAYS (~0u)

/* Open (creating the directory if missing) and start the writer thread (so call it after
 * any fork). -errno with "dir: reason" when the directory cannot be made or opened; a
 * directory that is merely read-only opens fine and serves what it holds. */
int aprfs_diskcache_open(const aprfs_diskcache_opts *o, aprfs_diskcache **out, aprfs_err *err);
/* Write what is queued, seal, stop the threads and free (dc may be NULL). Never hangs on a
 * stalled disk: past a deadline it gives up (and leaks the handle to the stuck threads). */
void aprfs_diskcache_close(aprfs_diskcache *dc);
/* Wait until every queued write is done and sealed (tests, convert); gives up when the
 * writer makes no progress for 10 s (a stalled disk). */
void aprfs_diskcache_flush(aprfs_diskcache *dc);

/* Look key up. 1: a verified entry of exactly len bytes is in buf, its CRC32 in *crc (crc
 * may be NULL). 0: a miss; the caller computes the bytes and hands them to
 * aprfs_diskcache_put(), or calls aprfs_diskcache_drop() if it could not, passing *claimed
 * back either way. claimed may be NULL: no claim is made, nor waited on (the footer). With
 * claims, a miss may first wait (bounded, cancellable) for another process computing the
 * same entry. Never fails: any error is a miss. */
int aprfs_diskcache_get(aprfs_diskcache *dc, const aprfs_dc_key *key, void *buf, size_t len,
			uint32_t *crc, const aprfs_cancel *cancel, int *claimed);
/* The entry's bytes straight into buf (a reader's own buffer: nothing is allocated), when
 * this tier holds a verified record of exactly len bytes: 1 (its CRC32 in *crc, which may be
 * NULL; counted as a hit). 0 otherwise, with nothing counted, claimed or waited for (but,
 * as for any lookup, the directory's first listing): not held, corrupt (its pack is deleted),
 * or the storage too slow (set aside); the caller goes on with aprfs_diskcache_get(), which
 * counts the miss. */
int aprfs_diskcache_read(aprfs_diskcache *dc, const aprfs_dc_key *key, void *buf, size_t len,
			 uint32_t *crc);
/* Whether this tier holds key's record (len bytes), and if so have it read ahead into the
 * page cache, asynchronously, on an I/O thread (nothing waits for it): a reader coming
 * soon then finds it in memory. 1 held, 0 not. No I/O on the caller's thread. */
int aprfs_diskcache_prefetch(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len);
/* The CRC32 of a chunk's record, from the index (the cold footer needs only the CRCs):
 * no I/O. 1 found, 0 not. */
int aprfs_diskcache_get_crc(aprfs_diskcache *dc, const aprfs_dc_key *key, size_t len,
			    uint32_t *crc);
/* Queue the computed bytes (copied) for writing; crc is their CRC32. A full queue, a full
 * or read-only disk or a set-aside cache: not persisted (counted, said once). */
void aprfs_diskcache_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data,
			 size_t len, uint32_t crc, int claimed);
/* The computation failed or was cancelled (claims are per range and expire: nothing to
 * do; kept so that callers say what happened). */
void aprfs_diskcache_drop(aprfs_diskcache *dc, const aprfs_dc_key *key, int claimed);

void aprfs_diskcache_get_stats(aprfs_diskcache *dc, aprfs_diskcache_stats *out);
const char *aprfs_diskcache_dir(const aprfs_diskcache *dc);
/* The key's hash in hex (the index's key), for tests and logs. */
void aprfs_diskcache_entry_name(const aprfs_dc_key *key, char *buf, size_t size);

#endif
