/* dckey.c - the disk-cache keys of a file's chunks, per-tensor statistics and footer:
 * everything that determines their bytes (source fingerprint, variant and its parameters,
 * which chunk or tensor, a hash of the head for the footer). */
#include <string.h>
#include <xxhash.h>

#include "file/aprfile_impl.h"
#include "plan/view.h"
#include "source/imatrix.h"

/* What was computed once is kept by the disk cache under the memory cache (diskcache.h):
 * chunks, statistics and footers, keyed by everything that determines their bytes: the
 * source's fingerprint, the variant and its parameters, which chunk or tensor (and the codec
 * format version, which diskcache adds). Raw chunks (the source's own bytes, copied) are
 * not kept: reading them from the source again costs what reading an entry would. */

static void key_base(const aprfs_file *f, aprfs_dc_kind kind, aprfs_dc_key *k)
{
	memset(k, 0, sizeof(*k));
	k->kind = (uint8_t)kind;
	memcpy(k->source, aprfs_source_fingerprint(f->L.src), sizeof(k->source));
}

void file_key_chunk(const aprfs_file *f, const plan_chunk *c, aprfs_dc_key *k)
{
	key_base(f, APRFS_DC_CHUNK, k);
	k->variant = (uint8_t)f->L.variant;
	k->nf4_block = f->L.opts.nf4_block;
	k->chunk_elems = f->L.opts.chunk_elems;
	k->index = c->global;
	if (f->L.imatrix) /* a weighted view's chunks depend on the matrix too */
		memcpy(k->extra, aprfs_imatrix_digest(f->L.imatrix), sizeof(k->extra));
	for (size_t i = 0; f->L.opts.view && i < sizeof(k->extra); i++)
		k->extra[i] ^= f->L.opts.view->hash[i]; /* and a named view's on its rules */
}

/* A statistic depends on the tensor and its kind only: q8's scale is the same in the q8
 * view and wherever another view falls back to q8, so they share one entry. */
void file_key_stat(const aprfs_file *f, const plan_tensor *r, aprfs_dc_key *k)
{
	key_base(f, APRFS_DC_STAT, k);
	k->variant = (uint8_t)r->g.codec->stat;
	k->index = r->i;
}

/* The footer covers the head too, and the metadata there names the source's path under
 * the root and config values, which the fingerprint does not cover: hash them in. 0, or
 * -1 without memory (then no footer entry). */
int file_key_footer(const aprfs_file *f, aprfs_dc_key *k)
{
	XXH3_state_t *h = XXH3_createState();

	if (!h)
		return -1;
	key_base(f, APRFS_DC_FOOTER, k);
	k->variant = (uint8_t)f->L.variant;
	k->nf4_block = f->L.opts.nf4_block;
	XXH3_128bits_reset(h);
	XXH3_128bits_update(h, f->L.header, sizeof(f->L.header));
	XXH3_128bits_update(h, f->L.meta, f->L.meta_size);
	XXH128_canonicalFromHash((XXH128_canonical_t *)k->extra, XXH3_128bits_digest(h));
	XXH3_freeState(h);
	return 0;
}
