/* diskcache_impl.h - internal: the parts of the disk tier share this. diskcache.c owns the
 * handle, lookups and counters; diskcache_record.c the bytes of records, indexes and
 * trailers; diskcache_pack.c the writer's pack and crash recovery; diskcache_table.c the
 * in-memory pack table and index; diskcache_scan.c the scanner thread (rescans, eviction,
 * peers); diskcache_io.c reads with a deadline and the set-aside state; diskcache_queue.c
 * the write queue and the states that stop writing; diskcache_write.c the writer thread;
 * diskcache_claim.c range claims; diskcache_peers.c who else uses the directory. */
#ifndef APRFS_DISKCACHE_IMPL_H
#define APRFS_DISKCACHE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/diskcache.h"

/* ---- bytes (diskcache_record.c) ----
 * A pack file ("packs/<writer>.pack") is a 64-byte pack header, records, the index and a
 * 64-byte trailer. A record is a 128-byte header and its payload:
 *
 *   0   8  magic "APRFSRC1"
 *   8  64  the key (dc_key_bytes: APRFS_CODEC_FORMAT_VERSION first)
 *  72   4  content size (bytes the payload decodes to), u32 LE
 *  76   4  stored size (the payload's bytes)
 *  80   4  content CRC32 (zlib's): a chunk's CRC, which the cold footer needs
 *  84   4  flags: DC_REC_LZ4 (the payload is one LZ4 block) or 0 (stored as is)
 *  88   8  CRC32 of the payload (the content's when stored as is; ISA-L: memory speed)
 *  96  28  zero
 * 124   4  XXH32 of bytes 0..124
 *
 * An index entry (40 bytes) is the key's hash (16), the record's offset (8), content size,
 * stored size, CRC and flags (4 each). The trailer: magic "APRFSPX1", the index's offset,
 * its entry count, the XXH3-64 of its bytes, zero, XXH32 of bytes 0..60 at 60. */
#define DC_KEY	     64
#define DC_REC	     128
#define DC_IDX	     40
#define DC_PACK_HEAD 64
#define DC_TRAILER   64
#define DC_REC_LZ4   1u
#define DC_REC_MAX   (1u << 30) /* a record's content is at most this (a chunk is MiBs) */

typedef struct dc_hash {
	uint8_t b[16];
} dc_hash;

/* Where a record is: its pack (index into the pack table), offset and sizes. */
typedef struct dc_loc {
	dc_hash h;
	uint32_t pack;
	uint32_t clen, slen, crc, flags;
	uint64_t off;
} dc_loc;

void dc_key_bytes(const aprfs_dc_key *k, uint8_t out[DC_KEY]);
dc_hash dc_key_hash(const aprfs_dc_key *k);
/* The key those bytes serialize (-1: another codec format version). */
int dc_key_parse(const uint8_t in[DC_KEY], aprfs_dc_key *k);
/* The record header for a payload; *loc gets sizes, CRC and flags (not pack, offset). */
void dc_rec_header(const aprfs_dc_key *k, const uint8_t *payload, uint32_t slen, uint32_t clen,
		   uint32_t crc, uint32_t flags, uint8_t out[DC_REC]);
/* Compress src into dst (capacity dc_lz4_bound) when it saves 10%: its size, else 0. */
size_t dc_lz4_try(const void *src, size_t len, uint8_t *dst, size_t cap);
size_t dc_lz4_bound(size_t len);
/* Check a record's header and payload against what the index promised and the key. 0,
 * or -1 and *why. */
int dc_rec_verify(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *hdr,
		  const uint8_t *payload, const char **why);
/* Check a record read whole (header + payload) and decode it into buf (exactly clen
 * bytes). 0, or -1 and *why. */
int dc_rec_decode(const aprfs_dc_key *k, const dc_loc *l, const uint8_t *rec, void *buf,
		  const char **why);
/* A record header seen walking an unsealed pack: 0 and *l (sizes, hash) when sane. */
int dc_rec_parse(const uint8_t hdr[DC_REC], dc_loc *l);
/* The payload's checksum matches its (parsed) header. */
int dc_rec_payload_ok(const uint8_t hdr[DC_REC], const uint8_t *p, uint32_t slen);
void dc_pack_header(const char *writer, uint8_t out[DC_PACK_HEAD]);
int dc_pack_header_ok(const uint8_t h[DC_PACK_HEAD]);
void dc_idx_put(const dc_loc *l, uint8_t out[DC_IDX]);
void dc_idx_get(const uint8_t in[DC_IDX], dc_loc *l);
void dc_trailer(uint64_t idx_off, uint64_t count, const uint8_t *idx, uint8_t out[DC_TRAILER]);
/* 0 and the index's offset and count when the trailer is sane for a file of size bytes. */
int dc_trailer_parse(const uint8_t t[DC_TRAILER], uint64_t size, uint64_t *idx_off,
		     uint64_t *count, uint64_t *idx_sum);
uint64_t dc_sum64(const void *p, size_t n);

/* ---- the pack table and index (diskcache_table.c; the scanner: diskcache_scan.c) ---- */

typedef struct dc_pack {
	char name[128];	  /* "packs/<writer>.pack" (or ".tmp" while ours is being written) */
	int fd;		  /* -1 once closed */
	atomic_int refs;  /* readers in flight (and 1 for the table while listed) */
	int dead;	  /* gone from the directory or evicted: no new lookups */
	int ours;	  /* the writer's open pack (never evicted, never reloaded) */
	int seen;	  /* the last rescan listed it */
	int mine;	  /* sealed by this process (compaction merges the small ones) */
	uint64_t size;	  /* bytes */
	int64_t mtime;	  /* ns, the last use: eviction orders by it */
	atomic_int touch; /* a hit wants the mtime refreshed */
	_Atomic uint64_t ra_end; /* read ahead (posix_fadvise WILLNEED) up to here */
	/* the last window read from it through the I/O threads (a file system without
	 * RWF_NOWAIT, e.g. FUSE: one large read serves the records after it too) */
	pthread_mutex_t wlock;
	uint8_t *wbuf; /* (an I/O buffer: dc_io_recycle, dc_io_buf_free) */
	uint64_t woff, wlen;
} dc_pack;

/* All under dc->lock. */
int dc_index_find(aprfs_diskcache *dc, const dc_hash *h, dc_loc *out);
int dc_index_add(aprfs_diskcache *dc, const dc_loc *l);
/* A pack in the table: its number, or -1 (no memory). */
int dc_pack_add(aprfs_diskcache *dc, const char *name, int fd, uint64_t size, int64_t mtime,
		int ours);
/* Forget a pack and its records (dead; closed once no read is in flight). */
void dc_pack_forget(aprfs_diskcache *dc, uint32_t p);
/* Read and check the index of the sealed pack (fd, size bytes): malloc'd, *count entries;
 * NULL and *why when bad (*why NULL: no memory). */
uint8_t *dc_read_index(int fd, uint64_t size, uint64_t *count, const char **why);
/* Drop a reference to a pack (its fd is closed with the last). */
void dc_pack_put(dc_pack *k);
void dc_index_free(aprfs_diskcache *dc);
/* A record of pack p was corrupt: log once (naming the file and why), forget the pack and
 * delete its file when it still is that file. Not under the lock. */
void dc_pack_corrupt(aprfs_diskcache *dc, uint32_t p, uint64_t off, const char *why);

/* The scanner thread: the first scan, then rescans (load new sealed packs, forget removed
 * ones, recover crashed writers' packs), eviction, peers, refreshing used packs' mtimes. */
void *dc_scanner_main(void *arg);
/* Ask for a rescan soon (a lookup waits for another process's records). */
void dc_scanner_kick(aprfs_diskcache *dc);

typedef struct dc_job {
	struct dc_job *next;
	aprfs_dc_key key;
	uint8_t *data;
	size_t len;
	uint32_t crc;
} dc_job;

/* ---- the writer's pack and recovery (diskcache_pack.c; the writer thread) ---- */

/* Append the queued jobs as records to our pack (created when needed) with one write;
 * index them. 0 or -errno (*what names the step). */
int dc_pack_append(aprfs_diskcache *dc, dc_job *jobs, const char **what);
/* Write the index and trailer of our pack and rename it to .pack (nothing when empty). */
int dc_pack_seal(aprfs_diskcache *dc, const char **what);
/* An unsealed pack of a dead writer: take it (rename), keep its good records, seal it as
 * out (its name as a sealed pack). 0, or -1 (taken by another, or nothing good: deleted). */
int dc_pack_recover(aprfs_diskcache *dc, const char *name, char *out, size_t size);
/* A pack deleted for a corrupt record (fd still open): queue its good records again, so
 * that one bad record does not cost the others (the scanner thread). */
void dc_pack_salvage(aprfs_diskcache *dc, int fd);
/* Closing: merge the small packs this process sealed (a fleet whose daemons waited for
 * each other makes one every 100 ms) into one, and delete them (the writer thread). */
void dc_pack_compact(aprfs_diskcache *dc);

/* ---- reads with a deadline (diskcache_io.c) ---- */

/* pread n bytes at off of pack k (taking over the caller's reference) into a buffer
 * (*out, handed back with dc_io_recycle), waiting at most the read deadline. 0; -1 (short:
 * the pack is truncated, *why; or *why NULL: no memory); -2 (the deadline passed or the
 * read failed: the cache has been set aside). */
int dc_io_read(aprfs_diskcache *dc, dc_pack *k, uint64_t off, size_t n, uint8_t **out,
	       const char **why);
void dc_io_recycle(aprfs_diskcache *dc, uint8_t *buf);
/* Free such a buffer after the I/O threads are gone (a pack's window). */
void dc_io_buf_free(uint8_t *buf);
/* The record of pack k at [off, end) will be read soon: unless the pack is already read
 * ahead well past it, have an I/O thread ask the kernel to read the pack from there to
 * RA_WINDOW past it (the caller never waits; takes over the caller's reference to k). */
void dc_io_prefetch(aprfs_diskcache *dc, dc_pack *k, uint64_t off, uint64_t end);
/* 1 while the cache is set aside (a read stalled): no lookups, no writes. */
int dc_stalled(aprfs_diskcache *dc);
/* Set the cache aside for the back-off period, one log line, a metric. */
void dc_set_aside(aprfs_diskcache *dc, const char *why);
int dc_io_start(aprfs_diskcache *dc);
/* Stop the I/O threads, waiting until deadline (CLOCK_REALTIME ns); 0 when all stopped, -1 when
 * some stay stuck in a read (then the handle must be leaked, not freed). */
int dc_io_stop(aprfs_diskcache *dc, int64_t deadline);

/* ---- the handle (diskcache.c) ---- */

typedef struct dc_io dc_io;

struct aprfs_diskcache {
	char *dir;
	int dirfd;
	char host[64]; /* writer names and claims: "host pid" */
	char wid[96];  /* "host.pid.random": this process's packs are wid.N */
	pid_t pid;
	uint64_t budget, pack_max;
	size_t queue_cap;
	int wait_when_full;
	unsigned claim_stale_ms, touch_after_s, read_timeout_ms, seal_idle_ms;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t work;  /* the writer: a job was queued, or stop */
	pthread_cond_t space; /* put(): the queue has room again */
	pthread_cond_t idle;  /* flush(): the queue is empty and nothing is being written */
	pthread_cond_t found; /* the index changed (waiters for another process's records) */
	pthread_cond_t scan;  /* the scanner: a kick, or stop */
	dc_job *head, *tail;
	int writing, stopping, flushing, started, scanner_started;
	pthread_t writer, scanner;
	aprfs_diskcache_stats st;
	int64_t
	    degraded_until; /* ns (CLOCK_MONOTONIC): no writes before; INT64_MAX: for good */
	_Atomic int64_t stalled_until; /* ns (CLOCK_MONOTONIC): set aside until then */
	int64_t progress;    /* ns: the writer last finished something (close's deadline) */
	atomic_int scanned;  /* the first scan is done */
	int waiters, kicked; /* lookups waiting for others' records; a rescan is asked */
	/* the index: open addressing on dc_loc.h; pack UINT32_MAX marks a free slot */
	dc_loc *slots;
	size_t nslots, nused;
	dc_pack **packs;
	uint32_t npacks, cap_packs;
	/* our pack (the writer thread's): its number in the table, or -1 */
	int cur;
	dc_pack *curp;		/* ... the pack itself */
	uint64_t cur_off;	/* where the next record goes */
	int64_t cur_opened;	/* ns: when it got its first record */
	int64_t last_append;	/* ns: the last append (idle sealing) */
	int64_t wanted_checked; /* ns: DIR/wanted last looked at */
	int wanted;		/* ... and someone waited then */
	uint8_t *cur_idx;	/* its index entries so far */
	size_t cur_n, cur_cap;
	unsigned seq;			       /* our packs' sequence */
	int lz4_skip[APRFS_VARIANT_COUNT + 1]; /* records left before trying LZ4 again */
	/* claims (diskcache_claim.c): ranges this process holds */
	dc_hash *claims;
	size_t nclaims, cap_claims;
	/* peers (diskcache_peers.c): the scanner's, read by lookups */
	char presence[128];	      /* "daemons/host.pid" */
	atomic_int peers;	      /* other live processes using the directory */
	_Atomic int64_t want_touched; /* ns (MONOTONIC): we last touched DIR/wanted */
	int64_t next_peer_check;      /* ns (CLOCK_MONOTONIC) */
	int64_t next_refresh;	      /* ns (CLOCK_MONOTONIC): touch our presence file */
	int64_t next_sweep;	      /* ns (CLOCK_MONOTONIC): remove long-dead claims */
	int64_t next_rescan;	      /* ns (CLOCK_MONOTONIC): the scanner's next listing */
	int salvage[8], nsalvage;     /* fds of packs deleted for a corrupt record */
	dc_io *io;
	int leaked;	     /* threads stuck in the storage: the handle is not freed */
	dc_pack *windows[4]; /* the packs holding a read window (diskcache_read.c) */
	atomic_int nowait;   /* RWF_NOWAIT reads: 1 work, -1 unsupported, 0 not known yet */
	int next_window;
};

void dc_count_corrupt(aprfs_diskcache *dc);

/* ---- reading a record (diskcache_read.c) ---- */

/* Read and verify the record l says holds key (k: its pack, referenced; the reference is
 * dropped). 1: in buf, its CRC in *crc (crc may be NULL); 0: corrupt (its pack is gone now:
 * look again); -1: a miss (set aside, or no memory). */
int dc_read_record(aprfs_diskcache *dc, const aprfs_dc_key *key, const dc_loc *l, dc_pack *k,
		   void *buf, uint32_t *crc);
/* Free the packs' read windows (close, once the I/O threads are gone). */
void dc_windows_free(aprfs_diskcache *dc);

/* ---- writing (diskcache_queue.c; the writer thread: diskcache_write.c) ---- */

void *dc_writer_main(void *arg);
int dc_writes_off_locked(const aprfs_diskcache *dc);
void dc_write_failed(aprfs_diskcache *dc, const char *what, int e);
/* Queue a record (copied) for the writer; wait: wait for room while the writer makes
 * progress (convert, salvage), else a full queue drops it (not persisted). */
void dc_queue_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data, size_t len,
		  uint32_t crc, int wait);
/* Everything queued written and sealed (visible to every process), unless the writer stops
 * making progress (a stalled disk) for 10 s. */
void dc_queue_flush(aprfs_diskcache *dc);
/* Chunks computed but not written: count and say so once (the disk is too slow or gone). */
void dc_not_persisted_locked(aprfs_diskcache *dc, uint64_t n, const char *why);

/* ---- claims (diskcache_claim.c) ---- */

typedef enum { DC_CLAIM_OURS, DC_CLAIM_TAKEN, DC_CLAIM_NONE } dc_claim_result;
/* Claim key's range (DC_CLAIM_RANGE consecutive chunks): OURS (this process holds it),
 * TAKEN (another live process does: wait for its records), NONE (go on without). */
dc_claim_result dc_claim(aprfs_diskcache *dc, const aprfs_dc_key *key, dc_hash *range);
/* 1 while the range's claim file exists and is alive (a dead one is removed). */
int dc_claim_alive(aprfs_diskcache *dc, const dc_hash *range);
/* Treat the range as ours without a claim file: its owner produced nothing we waited for
 * in time (it may itself be waiting for ours), so we compute the rest of it. */
void dc_claim_adopt(aprfs_diskcache *dc, const dc_hash *range);
/* Remove the claims we hold (close). */
void dc_claims_release(aprfs_diskcache *dc);
/* The scanner: remove claim files long dead. */
void dc_claims_sweep(aprfs_diskcache *dc);
#define DC_CLAIM_RANGE 64

/* ---- peers (diskcache_peers.c) ---- */

void dc_peers_join(aprfs_diskcache *dc);
void dc_peers_leave(aprfs_diskcache *dc);
void dc_peers_check(aprfs_diskcache *dc);

/* ---- eviction (diskcache_table.c charges, diskcache_scan.c evicts) ---- */
uint64_t dc_charge(uint64_t n);
/* Over the budget: delete the least recently used packs (not ours) down to 90% of it. */
void dc_evict(aprfs_diskcache *dc);

#endif
