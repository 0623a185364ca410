/* diskcache_io.h - reads from the cache directory with a deadline, on I/O threads, and the
 * set-aside state a missed deadline starts (diskcache_io.c). */
#ifndef APRFS_DISKCACHE_IO_H
#define APRFS_DISKCACHE_IO_H

#include "cache/diskcache_shared.h"

/* pread n bytes at off of pack k (taking over the caller's reference) into a buffer
 * (*out, handed back with dc_io_recycle), waiting at most the read deadline. 0; -1 (short:
 * the pack is truncated, *why; or *why NULL: no memory); -2 (the deadline passed or the
 * read failed: the cache has been set aside). */
int dc_io_read(aprfs_diskcache *dc, dc_pack *k, uint64_t off, size_t n, uint8_t **out,
	       const char **why);
void dc_io_recycle(aprfs_diskcache *dc, uint8_t *buf);
/* Free such a buffer after the I/O threads are gone (a pack's window). */
void dc_io_buf_free(uint8_t *buf);
/* The record of pack k at [off, end) will be read soon: unless the pack is already read
 * ahead well past it, have an I/O thread ask the kernel to read the pack from there to
 * RA_WINDOW past it (the caller never waits; takes over the caller's reference to k). */
void dc_io_prefetch(aprfs_diskcache *dc, dc_pack *k, uint64_t off, uint64_t end);
/* 1 while the cache is set aside (a read stalled): no lookups, no writes. */
int dc_stalled(aprfs_diskcache *dc);
int dc_io_start(aprfs_diskcache *dc);
/* Stop the I/O threads, waiting until deadline (CLOCK_REALTIME ns); 0 when all stopped, -1 when
 * some stay stuck in a read (then the handle must be leaked, not freed). */
int dc_io_stop(aprfs_diskcache *dc, int64_t deadline);

#endif
