/* diskcache_queue.h - the write queue and the states that stop writing
 * (diskcache_queue.c). */
#ifndef APRFS_DISKCACHE_QUEUE_H
#define APRFS_DISKCACHE_QUEUE_H

#include "cache/diskcache_shared.h"

/* Queue a record (copied) for the writer; wait: wait for room while the writer makes
 * progress (convert, salvage), else a full queue drops it (not persisted). */
void dc_queue_put(aprfs_diskcache *dc, const aprfs_dc_key *key, const void *data, size_t len,
		  uint32_t crc, int wait);
/* Everything queued written and sealed (visible to every process), unless the writer stops
 * making progress (a stalled disk) for 10 s. */
void dc_queue_flush(aprfs_diskcache *dc);
/* 1 while writing is off: a full or read-only disk, or the cache set aside. Holds the lock. */
int dc_writes_off_locked(const aprfs_diskcache *dc);
/* Chunks computed but not written: count and say so once (the disk is too slow or gone).
 * Holds the lock. */
void dc_not_persisted_locked(aprfs_diskcache *dc, uint64_t n, const char *why);
/* A write failed with errno e (what: the step): count it, say it once; a full disk turns
 * writing off for a minute, a read-only one for good. */
void dc_write_failed(aprfs_diskcache *dc, const char *what, int e);

#endif
