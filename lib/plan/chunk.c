/* chunk.c - chunk descriptors: a tensor's place in the plan and one chunk's output and
 * source ranges, derived from its geometry once per read (chunk.h). Chunks are whole blocks
 * after the statistic prefix; the last chunk of a tensor may be shorter. */
#include "plan/chunk.h"

#include <string.h>

void plan_tensor_get(const layout *L, const layout_detail *d, size_t i, plan_tensor *pt)
{
	pt->i = i;
	pt->t = aprfs_source_tensor(L->src, i);
	layout_geom(L, pt->t, &pt->g);
	pt->offset = d->offset[i];
	pt->first_chunk = d->first_chunk[i];
}

uint64_t plan_chunk_span(const plan_tensor *pt)
{
	return pt->g.chunk_blocks * pt->g.block_bytes;
}

uint64_t plan_chunk_at(const plan_tensor *pt, uint64_t rel)
{
	return (rel - pt->g.prefix) / plan_chunk_span(pt);
}

void plan_chunk_get(const plan_tensor *pt, uint64_t k, plan_chunk *c)
{
	const tensor_geom *g = &pt->g;
	uint64_t b0 = k * g->chunk_blocks;
	uint64_t blocks = g->nblocks - b0 < g->chunk_blocks ? g->nblocks - b0 : g->chunk_blocks;
	uint64_t e1 = (b0 + blocks) * g->block_elems;

	memset(c, 0, sizeof(*c));
	c->tensor = pt;
	c->local = k;
	c->global = pt->first_chunk + k;
	c->out_off = g->prefix + b0 * g->block_bytes;
	c->len = blocks * g->block_bytes;
	c->elem0 = b0 * g->block_elems;
	c->nelem = (size_t)((e1 < pt->t->nelem ? e1 : pt->t->nelem) - c->elem0);
	c->src_off = b0 * g->block_bytes;
	c->dtype = g->dtype;
}

void plan_chunk_of(const layout *L, const layout_detail *d, uint64_t c, plan_tensor *pt,
		   plan_chunk *ch)
{
	plan_tensor_get(L, d, layout_tensor_of_chunk(L, d, c), pt);
	plan_chunk_get(pt, c - pt->first_chunk, ch);
}
