/* fused.c - widening f16/bf16 source data and fused encoding: a source tensor's elements
 * (plain or GGML blocks) widened tile by tile and encoded by one slot's kernel, never
 * materialised as a whole f32 chunk. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_impl.h"
#include "quant/ggml_dequant.h"

void aprfs_widen(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t n,
		 float *out)
{
	if (d == APRFS_SRC_F16)
		k->widen_f16(raw, n, out);
	else if (d == APRFS_SRC_BF16)
		k->widen_bf16(raw, n, out);
	else if (n)
		memcpy(out, raw, n * sizeof(float));
}

int aprfs_dequant(const aprfs_kernels *k, aprfs_src_dtype d, const void *raw, size_t nblocks,
		  float *out)
{
	const int s = aprfs_dqslot_of(d);
	if (s >= 0) {
		k->dequant[s](raw, nblocks, out);
		return 0;
	}
	switch (d) {
	case APRFS_SRC_F32:
	case APRFS_SRC_F16:
	case APRFS_SRC_BF16: aprfs_widen(k, d, raw, nblocks, out); return 0;
	default: return -ENOTSUP;
	}
}

/* 16 KiB of f32: the tile stays in L1 between the widening store and the encoder's load,
 * so a bf16 chunk is read from memory once, at half the bytes of an f32 one. Every codec
 * with a fixed block size divides it (1, 4, 32, 256); nf4 uses the largest multiple of
 * its block that fits, or one heap block when a block alone is larger. */
#define TILE_ELEMS 4096

int aprfs_encode_src(const aprfs_kernels *k, aprfs_kslot slot, aprfs_src_dtype d,
		     const void *raw, size_t n, const aprfs_qparams *p, uint8_t *out)
{
	const aprfs_codec *c = aprfs_codecs[slot];
	size_t be = (size_t)aprfs_codec_block_elems(c, p);
	size_t bb = (size_t)aprfs_codec_block_bytes(c, p);
	if (d != APRFS_SRC_F16 && d != APRFS_SRC_BF16) {
		k->encode[slot](raw, n, p, out);
		return 0;
	}
	if (be == 0)
		return 0; /* an nf4 without a block size encodes nothing */
	float stack_tile[TILE_ELEMS];
	size_t tile = be <= TILE_ELEMS ? TILE_ELEMS / be * be : be;
	float *x = tile <= TILE_ELEMS ? stack_tile : malloc(tile * sizeof(float));
	const uint16_t *h = raw;
	if (!x)
		return -ENOMEM;
	aprfs_qparams tp = {0}; /* a weighted k-quant tile starts at its own column */
	const int weighted = p && p->qw && p->qw_cols;
	if (weighted)
		tp = *p;
	for (size_t at = 0; at < n; at += tile) {
		size_t len = n - at < tile ? n - at : tile;
		if (weighted)
			tp.qw_col0 = (p->qw_col0 + at) % p->qw_cols;
		aprfs_widen(k, d, h + at, len, x);
		k->encode[slot](x, len, weighted ? &tp : p, out + at / be * bb);
	}
	if (x != stack_tile)
		free(x);
	return 0;
}
