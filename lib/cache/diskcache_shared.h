/* diskcache_shared.h - internal: what the parts of the disk tier share: the format's sizes,
 * the types of a record's place, a pack, a queued job, and the handle itself. No functions:
 * each part declares its own in its header. The parts, low to high (each calls only parts
 * below it):
 *   diskcache_record.c  the bytes of records, pack headers, indexes and trailers (no I/O)
 *   diskcache_table.c   the in-memory pack table and index; a sealed pack's index read
 *   diskcache_io.c      reads on the I/O threads with a deadline; the set-aside state
 *   diskcache_claim.c   range claims between processes
 *   diskcache_peers.c   who else uses the directory
 *   diskcache_queue.c   the write queue; the states that stop writing
 *   diskcache_pack.c    the writer's pack (append, seal), recovery, salvage, compaction
 *   diskcache_write.c   the writer thread
 *   diskcache_scan.c    the scanner thread: rescans, eviction, a corrupt record's pack
 *   diskcache_read.c    reading one record: page cache, read windows, I/O threads
 *   diskcache.c         the API (diskcache.h): open, close, lookups, put, counters */
#ifndef APRFS_DISKCACHE_SHARED_H
#define APRFS_DISKCACHE_SHARED_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/diskcache_types.h"

/* ---- the format (diskcache_record.c has its bytes) ----
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

/* ---- packs, queued jobs (the table lists packs; the queue holds jobs) ---- */

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

typedef struct dc_job {
	struct dc_job *next;
	aprfs_dc_key key;
	uint8_t *data;
	size_t len;
	uint32_t crc;
} dc_job;

/* ---- the handle ---- */

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

#endif
