/* diskcache_impl.h - internal: the parts of the disk tier share this. diskcache.c owns the
 * handle, lookups and the counters; diskcache_write.c the write queue and its thread;
 * diskcache_entry.c the bytes of an entry file; diskcache_claim.c the claim files;
 * diskcache_peers.c who else uses the directory; diskcache_evict.c scan and eviction. */
#ifndef APRFS_DISKCACHE_IMPL_H
#define APRFS_DISKCACHE_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/types.h>

#include "cache/diskcache.h"

/* ---- entry files (diskcache_entry.c) ----
 * An entry file is a 128-byte header followed by one LZ4 frame:
 *
 *   0   8  magic "APRFSDC1" (the entry layout's version is its last byte)
 *   8  64  the key (dc_key_bytes: APRFS_CODEC_FORMAT_VERSION first)
 *  72   8  content size, u64 LE (bytes the frame decodes to)
 *  80   4  content CRC32 (zlib's): a chunk's CRC, which the cold footer needs
 *  84   4  zero
 *  88   8  frame size, u64 LE: the file is exactly 128 + this
 *  96  28  zero
 * 124   4  XXH32 of bytes 0..124
 *
 * The frame is liblz4's frame format with content size and content checksum (XXH32 of
 * the content); 64 KiB independent blocks, and a block LZ4 cannot shrink is stored as is
 * (the format's uncompressed-block flag: quantized data barely compresses). */
#define DC_HEADER   128
#define DC_KEY	    64
#define DC_NAME_MAX 48 /* "ab/" + 32 hex + ".ent" + NUL, rounded up */

void dc_key_bytes(const aprfs_dc_key *k, uint8_t out[DC_KEY]);
/* "ab/<32 hex>" (no suffix): the entry is that + ".ent", its claim that + ".claim". */
void dc_entry_stem(const aprfs_dc_key *k, char out[DC_NAME_MAX]);
/* The whole entry file for content data[0..len): malloc'd into *out (*out_len bytes). */
int dc_encode(const aprfs_dc_key *k, const void *data, size_t len, uint32_t crc, uint8_t **out,
	      size_t *out_len);
/* The largest valid entry file for len content bytes (files beyond it are corrupt). */
size_t dc_entry_max(size_t len);
/* Check a header (file_len: the file's size). 0 and *crc, or -1 and *why. */
int dc_check_header(const aprfs_dc_key *k, const uint8_t *hdr, uint64_t file_len, size_t len,
		    uint32_t *crc, const char **why);
/* The size of an entry whose blocks are all stored as is (the usual case). */
uint64_t dc_stored_size(size_t len);
/* Read such an entry from fd straight into buf, with every check dc_decode makes. 0, or -1
 * when it is not such an entry or fails a check (then take dc_decode's path, which says
 * why). */
/* *cold = 1 when the entry was not all in the page cache (the read had to wait). */
int dc_read_stored(int fd, const aprfs_dc_key *k, void *buf, size_t len, uint32_t *crc,
		   int *cold);
/* This thread's buffer of at least n bytes to read an entry file into (NULL: no memory). */
uint8_t *dc_read_buffer(size_t n);
/* Check and decode a whole entry file into buf (exactly len bytes). 0, or -1 and *why. */
int dc_decode(const aprfs_dc_key *k, const uint8_t *file, size_t file_len, void *buf,
	      size_t len, uint32_t *crc, const char **why);

/* ---- the handle (diskcache.c) ---- */

typedef struct dc_job {
	struct dc_job *next;
	aprfs_dc_key key;
	uint8_t *data;
	size_t len;
	uint32_t crc;
	int claimed;
} dc_job;

struct aprfs_diskcache {
	char *dir;
	int dirfd;
	char host[64]; /* claims name their owner: "host pid" */
	pid_t pid;
	uint64_t budget;
	size_t queue_cap;
	int wait_when_full;
	unsigned claim_stale_ms, touch_after_s;

	pthread_mutex_t lock; /* everything below */
	pthread_cond_t work;  /* the writer: a job was queued, or stop */
	pthread_cond_t space; /* put(): the queue has room again */
	pthread_cond_t idle;  /* flush(): the queue is empty and nothing is being written */
	dc_job *head, *tail;
	int writing, stopping, started;
	pthread_t writer;
	aprfs_diskcache_stats st;
	int64_t
	    degraded_until; /* ns (CLOCK_MONOTONIC): no writes before; INT64_MAX: for good */
	int64_t next_scan;  /* ns (CLOCK_MONOTONIC): the periodic rescan */
	int scanned;	    /* bytes_on_disk comes from a scan, not 0 */
	/* peers (diskcache_peers.c): the writer thread's, read by lookups */
	char presence[128];	 /* "daemons/host.pid" */
	atomic_int peers;	 /* other live processes using the directory */
	int64_t next_peer_check; /* ns (CLOCK_MONOTONIC) */
	int64_t next_refresh;	 /* ns (CLOCK_MONOTONIC): touch our presence file */
	atomic_uint seq;	 /* temporary names */
	/* ns (CLOCK_MONOTONIC): entries are prefetched until then, set by a read that found
	 * its entry not in the page cache (aprfs_diskcache_prefetch) */
	_Atomic int64_t prefetch_until;
};

#define DC_RESCAN_NS	   (300 * 1000000000ll) /* rescan this often: learn what others wrote */
#define DC_PREFETCH_FOR_NS 1000000000ll		/* prefetch this long after a cold read */

int64_t dc_now_ns(int clock_id);

/* ---- writing (diskcache_write.c) ---- */

/* The writer thread (started by open, stopped by close once the queue is written). */
void *dc_writer_main(void *arg);
/* 1 while writing is off (a full or read-only disk); _locked: the caller holds dc->lock. */
int dc_writes_off(aprfs_diskcache *dc);
int dc_writes_off_locked(const aprfs_diskcache *dc);
/* Count and log (once) a failed write; a full or read-only disk turns writes off. */
void dc_write_failed(aprfs_diskcache *dc, const char *what, int e);
/* write(2) all of p, through EINTR. 0 or -1 (errno set). */
int dc_write_all(int fd, const uint8_t *p, size_t n);

/* ---- claims (diskcache_claim.c) ---- */

typedef enum { DC_CLAIM_OURS, DC_CLAIM_TAKEN, DC_CLAIM_NONE } dc_claim_result;
/* Try to claim stem. OURS: claimed (our temporary file, dc_claim_tmp_name, is linked as
 * stem.claim; the writer writes the entry into it); TAKEN: another process holds a live
 * claim; NONE: go on without a claim: claims cannot be made here (read-only, ...), the
 * claim is this process's own (another thread), or a dead one was removed but re-creating
 * it lost a race. */
dc_claim_result dc_claim(aprfs_diskcache *dc, const char *stem);
/* Our claim's temporary file: "ab/.tmp.<hash>.<host>.<pid>.claim". */
void dc_claim_tmp_name(const aprfs_diskcache *dc, const char *stem, char *out, size_t size);
/* Remove our claim: after the entry was published from its file (published = 1), or
 * giving it up (0: its temporary file goes too). */
void dc_claim_release(aprfs_diskcache *dc, const char *stem, int published);
/* 1 while stem.claim exists and is alive (young, and its process is alive when it is on
 * this host); a dead or stale one is removed and 0 returned. */
int dc_claim_alive(aprfs_diskcache *dc, const char *stem);

/* ---- peers (diskcache_peers.c) ---- */

/* Announce this process in DIR/daemons/ and count the others (before the writer starts). */
void dc_peers_join(aprfs_diskcache *dc);
void dc_peers_leave(aprfs_diskcache *dc);
/* Refresh our presence when due and count the live others into dc->peers (writer thread). */
void dc_peers_check(aprfs_diskcache *dc);

/* ---- scan and eviction (diskcache_evict.c; the writer thread only) ---- */

/* Walk the directory: sum the entries, remove forgotten temporary and claim files, and
 * when the entries plus `incoming` bytes exceed the budget, delete the least recently
 * used down to 90% of it. Updates bytes_on_disk and evictions. */
void dc_scan(aprfs_diskcache *dc, uint64_t incoming);
/* Bytes an entry file of size n is charged (rounded up to 4 KiB, as file systems
 * allocate). */
uint64_t dc_charge(uint64_t n);

#endif
