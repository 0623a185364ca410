/* scratch.h - per-thread scratch buffers for the hot path: a chunk's raw source bytes or
 * widened values, reused from chunk to chunk instead of a malloc and free each time (which
 * glibc serves from fresh mappings above 128 KiB: page faults, and TLB shootdowns across
 * every core once the process has two threads). */
#ifndef APRFS_SCRATCH_H
#define APRFS_SCRATCH_H

#include <stddef.h>

/* Buffer `slot` (0 or 1, two may be in use at once) of this thread, at least n bytes.
 * Valid until the next call with the same slot on this thread; freed when the thread
 * exits. NULL when out of memory. */
void *aprfs_scratch(int slot, size_t n);

/* The process's malloc tuned for many chunk-sized buffers coming and going: served from
 * the heap up to 16 MiB and freed memory kept (up to 256 MiB at the top of the heap), so
 * that neither mappings nor heap trims churn. The daemon and convert call it once. */
void aprfs_tune_malloc(void);

#endif
