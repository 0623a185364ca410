/* diskcache_scan.h - the scanner thread, eviction, a corrupt record's pack
 * (diskcache_scan.c). */
#ifndef APRFS_DISKCACHE_SCAN_H
#define APRFS_DISKCACHE_SCAN_H

#include "cache/diskcache_shared.h"

/* The scanner thread (arg: the handle): the first scan, then rescans (load new sealed packs,
 * forget removed ones, recover crashed writers' packs), eviction, peers, refreshing used
 * packs' mtimes, salvage. */
void *dc_scanner_main(void *arg);
/* Over the budget: delete the least recently used packs (not ours) down to 90% of it. */
void dc_evict(aprfs_diskcache *dc);
/* A record of pack p was corrupt: log once (naming the file and why), forget the pack and
 * delete its file when it still is that file (the scanner salvages its good records). Not
 * under the lock. */
void dc_pack_corrupt(aprfs_diskcache *dc, uint32_t p, uint64_t off, const char *why);

#endif
