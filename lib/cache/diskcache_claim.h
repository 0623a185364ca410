/* diskcache_claim.h - range claims: which process computes which chunks
 * (diskcache_claim.c). */
#ifndef APRFS_DISKCACHE_CLAIM_H
#define APRFS_DISKCACHE_CLAIM_H

#include "cache/diskcache_shared.h"

#define DC_CLAIM_RANGE 64 /* chunks per claim */

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

#endif
