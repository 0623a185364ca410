/* diskcache_read.h - reading one record that the index located (diskcache_read.c). */
#ifndef APRFS_DISKCACHE_READ_H
#define APRFS_DISKCACHE_READ_H

#include "cache/diskcache_shared.h"

/* Read and verify the record l says holds key (k: its pack, referenced; the reference is
 * dropped). 1: in buf, its CRC in *crc (crc may be NULL); 0: corrupt (its pack is gone now:
 * look again); -1: a miss (set aside, or no memory). */
int dc_read_record(aprfs_diskcache *dc, const aprfs_dc_key *key, const dc_loc *l, dc_pack *k,
		   void *buf, uint32_t *crc);
/* Free the packs' read windows (close, once the I/O threads are gone). */
void dc_windows_free(aprfs_diskcache *dc);

#endif
