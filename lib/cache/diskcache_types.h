/* diskcache_types.h - the disk tier's types (diskcache.h has its functions): the handle, the
 * key that determines an entry's bytes, the counters. Apart from the API so that the tier's
 * own parts (diskcache_shared.h) have them without it. */
#ifndef APRFS_DISKCACHE_TYPES_H
#define APRFS_DISKCACHE_TYPES_H

#include <stdint.h>

#include "plan/variant.h"

typedef struct aprfs_diskcache aprfs_diskcache;

typedef enum {
	APRFS_DC_CHUNK = 1,  /* one chunk of a variant (its bytes; its CRC32 in the header) */
	APRFS_DC_STAT = 2,   /* one tensor's statistic: the f32 q8 scale or ternary alpha */
	APRFS_DC_FOOTER = 3, /* one file's footer CRC32 */
} aprfs_dc_kind;

/* Everything that determines an entry's bytes. The entry's name is the XXH3-128 of this key
 * (serialized with APRFS_CODEC_FORMAT_VERSION, codec.h), and the whole key is stored in the
 * entry and compared on read, so a hash collision or a misfiled entry is a miss.
 *
 * `source` is aprfs_source_fingerprint(): the format, every file's size and mtime (ns), every
 * header and small file. It is deliberately not the device or inode: a copy of a model, or
 * the same file seen from another host over NFS, is the same bytes and shares the entries;
 * a rewritten or touched file gets a new fingerprint, so it can never be served an old
 * entry (old entries just stop being found and age out). */
typedef struct aprfs_dc_key {
	uint8_t kind;	      /* aprfs_dc_kind */
	uint8_t variant;      /* CHUNK, FOOTER: variant index; STAT: the aprfs_stat_kind */
	uint32_t nf4_block;   /* CHUNK, FOOTER: NF4 block size; STAT: 0 */
	uint32_t chunk_elems; /* CHUNK: the chunking (aprfs_opts); STAT, FOOTER: 0 */
	uint64_t index;	      /* CHUNK: global chunk number; STAT: tensor number; FOOTER: 0 */
	uint8_t source[16];   /* aprfs_source_fingerprint() */
	uint8_t extra[16];    /* FOOTER: XXH3-128 of the file's header and metadata bytes (the
			       * metadata names the source path and config values, which the
			       * fingerprint does not cover); CHUNK: the first 16 bytes of an
			       * importance matrix's SHA-256 (weighted views) XOR a named view's
			       * hash (plan/view.h), else zero */
} aprfs_dc_key;

/* The counters of /.aprfs/stats.json's "disk_cache" (one struct, meant to be exported
 * as they are). Totals count every kind of entry; the per-variant arrays chunks only. */
typedef struct aprfs_diskcache_stats {
	uint64_t hits;		  /* records served from disk (or a CRC from the index) */
	uint64_t misses;	  /* lookups that found nothing usable: computed here */
	uint64_t claim_waits;	  /* lookups that waited for another process's records */
	uint64_t bytes_read;	  /* record bytes read on hits */
	uint64_t bytes_written;	  /* record bytes written */
	uint64_t entries_written; /* records written by this process */
	uint64_t not_persisted;	  /* computed but not written: queue full, degraded, stalled,
				   * error */
	uint64_t write_errors;	  /* failed writes */
	uint64_t corrupt;      /* corrupt, truncated or misfiled records or packs (deleted) */
	uint64_t evictions;    /* packs this process deleted to stay in the budget */
	uint64_t stalls;       /* times the cache was set aside (a read past its deadline or
				* failing) */
	uint64_t stalled;      /* 1 while set aside */
	uint64_t packs;	       /* packs in the directory (as of the last scan + ours) */
	uint64_t packs_sealed; /* packs this process sealed */
	uint64_t packs_recovered; /* unsealed packs of dead writers recovered */
	uint64_t bytes_on_disk;	  /* the packs' bytes (as of the last scan + ours) */
	uint64_t budget;
	uint64_t queued_bytes;	 /* content bytes waiting for the writer */
	uint64_t degraded;	 /* 1 while writes are off (full or read-only disk) */
	uint64_t degraded_errno; /* the errno that last turned writes off (ENOSPC, EROFS...) */
	uint64_t peers; /* other processes using the directory now (claims are made then) */
	uint64_t chunk_hits[APRFS_VARIANT_COUNT];
	uint64_t chunk_misses[APRFS_VARIANT_COUNT];
	uint64_t content_bytes[APRFS_VARIANT_COUNT]; /* chunk bytes written, uncompressed */
	uint64_t stored_bytes[APRFS_VARIANT_COUNT];  /* their entry files' bytes */
} aprfs_diskcache_stats;

#endif
