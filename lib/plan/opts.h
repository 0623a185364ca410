/* opts.h - the options a plan is built with (layout.c: aprfs_opts_default), the same
 * for every variant of a checkpoint. */
#ifndef APRFS_OPTS_H
#define APRFS_OPTS_H

#include <stdint.h>

typedef struct aprfs_opts {
	uint32_t nf4_block;	/* NF4 block size B, even, > 0 (default 64) */
	uint32_t chunk_elems;	/* target elements per chunk (default 65536); chunks are
				 * max(1, chunk_elems / block_elems) whole blocks */
	const char *source_rel; /* metadata "source": path relative to the source root;
				 * NULL means the source file's base name */
	/* A named view (plan/view.h): planned as its base variant with its rules applied
	 * first; NULL for a plain variant. Must outlive the plans. */
	const struct aprfs_view *view;
} aprfs_opts;

void aprfs_opts_default(aprfs_opts *o);

#endif
