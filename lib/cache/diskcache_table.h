/* diskcache_table.h - the in-memory pack table and index (diskcache_table.c). */
#ifndef APRFS_DISKCACHE_TABLE_H
#define APRFS_DISKCACHE_TABLE_H

#include "cache/diskcache_shared.h"

/* All under dc->lock. */
int dc_index_find(aprfs_diskcache *dc, const dc_hash *h, dc_loc *out);
int dc_index_add(aprfs_diskcache *dc, const dc_loc *l);
/* Forget the record of hash h in pack (the writer gave it back before sealing). */
void dc_index_remove(aprfs_diskcache *dc, const dc_hash *h, uint32_t pack);
/* A pack in the table: its number, or -1 (no memory). */
int dc_pack_add(aprfs_diskcache *dc, const char *name, int fd, uint64_t size, int64_t mtime,
		int ours);
/* Forget a pack and its records (dead; closed once no read is in flight). */
void dc_pack_forget(aprfs_diskcache *dc, uint32_t p);
/* Drop a reference to a pack (its fd is closed with the last). */
void dc_pack_put(dc_pack *k);
/* Free the table and the index (close: no thread is left). */
void dc_index_free(aprfs_diskcache *dc);
/* Read and check the index of the sealed pack (fd, size bytes): malloc'd, *count entries;
 * NULL and *why when bad (*why NULL: no memory). */
uint8_t *dc_read_index(int fd, uint64_t size, uint64_t *count, const char **why);
/* The bytes a file of n bytes is charged against the budget (whole 4 KiB blocks). */
uint64_t dc_charge(uint64_t n);
/* Count a corrupt record or pack (takes the lock). */
void dc_count_corrupt(aprfs_diskcache *dc);
/* Ask the scanner for a rescan soon (a lookup waits for another process's records, or the
 * writer is over the budget). Under dc->lock. */
void dc_scanner_kick(aprfs_diskcache *dc);

#endif
