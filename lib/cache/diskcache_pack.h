/* diskcache_pack.h - the writer's pack: appending, sealing; recovery of a dead writer's pack,
 * salvage of a corrupt one's good records, compaction (diskcache_pack.c). */
#ifndef APRFS_DISKCACHE_PACK_H
#define APRFS_DISKCACHE_PACK_H

#include "cache/diskcache_shared.h"

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

#endif
