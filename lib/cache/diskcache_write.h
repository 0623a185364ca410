/* diskcache_write.h - the writer thread (diskcache_write.c). */
#ifndef APRFS_DISKCACHE_WRITE_H
#define APRFS_DISKCACHE_WRITE_H

#include "cache/diskcache_shared.h"

/* The writer thread (arg: the handle): drains the queue into our pack, seals it when due,
 * compacts at close. */
void *dc_writer_main(void *arg);

#endif
