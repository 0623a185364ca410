/* diskcache_peers.h - who else uses the cache directory: presence files
 * (diskcache_peers.c). */
#ifndef APRFS_DISKCACHE_PEERS_H
#define APRFS_DISKCACHE_PEERS_H

#include "cache/diskcache_shared.h"

/* Our presence file (open), then count the others. */
void dc_peers_join(aprfs_diskcache *dc);
/* Remove our presence file (close). */
void dc_peers_leave(aprfs_diskcache *dc);
/* Refresh our presence when due and count the others alive into dc->peers (the scanner). */
void dc_peers_check(aprfs_diskcache *dc);

#endif
