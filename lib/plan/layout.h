/* layout.h - internal: the plan of one virtual APR file (which codec each tensor gets,
 * where every byte goes, how tensors split into chunks), built from shapes alone.
 * aprfile.c reads through it; layout.c and metadata.c build it.
 *
 * Memory is the design constraint: a checkpoint may hold 10^5 tensors and is planned for
 * ten variants as soon as it is listed. So opening a plan keeps O(1) state per variant
 * (sizes, header, metadata); each tensor's codec and geometry are derived again when
 * needed (layout_geom: a few branches), and the per-tensor arrays a reader needs (offsets,
 * chunk numbers, index entry positions, statistics) are built on the first read only. The
 * index bytes are never stored: layout_head_read() writes any range of them from the
 * plan.
 *
 * lib/plan/ (above source/): the variants (variant.h), plan options (opts.h), the plan of one
 * virtual file (this) and reading a tensor's source bytes (tensor_read.h). */
#ifndef APRFS_LAYOUT_H
#define APRFS_LAYOUT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "base/err.h"
#include "kernels/kernels.h"
#include "plan/opts.h"
#include "plan/variant.h"
#include "quant/codec.h"
#include "source/source.h"

/* One tensor in one variant. */
typedef struct tensor_geom {
	const aprfs_codec *codec; /* NULL: non-float bytes passed through unchanged */
	aprfs_kslot slot;
	int raw;	       /* payload = the source's own bytes (no codec runs) */
	uint8_t dtype;	       /* APR dtype id written in the index */
	uint64_t prefix;       /* statistic bytes before the first block (q8, ternary) */
	uint64_t block_elems;  /* elements per block (1 for pass-through) */
	uint64_t block_bytes;  /* bytes per block */
	uint64_t nblocks;      /* blocks of the tensor */
	uint64_t chunk_blocks; /* blocks per chunk (the last chunk may be shorter) */
	uint64_t nchunks;
	uint64_t size; /* unpadded payload bytes */
} tensor_geom;

/* What a reader needs per tensor, built on first use (layout_detail). Tensor i is in data
 * order; entry j of the index is tensor by_name[j] of the source. */
typedef struct layout_detail {
	uint64_t *offset;	 /* [n+1]: absolute payload offset; [n] is the footer's */
	uint64_t *first_chunk;	 /* [n+1]: global number of tensor i's chunk 0; [n] total */
	uint64_t *entry_end;	 /* [n]: index bytes up to the end of entry j */
	float *stat;		 /* [n]: q8 scale / ternary alpha once known */
	atomic_uchar *stat_done; /* [n]: 1 once stat[i] is known */
} layout_detail;

#define LAYOUT_STAT_LOCKS 16

typedef struct layout {
	aprfs_source *src;
	int variant; /* index into aprfs_variants */
	const aprfs_variant *var;
	/* The facts a row's rule may need beyond the tensor (aprfs_plan_ctx): for q4km the
	 * layer count (config or GGUF keys, else the names) and whether the token embedding
	 * serves as output (the checkpoint has no output matrix). Set once at build. */
	aprfs_plan_ctx ctx;
	/* k-quant views (q4k, q6k, q4km) of a source with an importance matrix: the matrix and
	 * how many encoded tensors it weights (0 entries used: NULL, the view is unweighted).
	 */
	const struct aprfs_imatrix *imatrix;
	uint64_t imatrix_used;
	aprfs_opts opts;
	size_t ntensors;
	uint8_t header[64];
	char *meta; /* metadata JSON, meta_size bytes */
	uint32_t meta_size;
	uint64_t index_offset, index_size, data_offset, file_size, nchunks;
	pthread_mutex_t detail_lock;
	layout_detail *_Atomic detail;
	/* A statistic pass runs once per tensor; striped locks keep that without a mutex
	 * per tensor (which alone would be 40 bytes x 10^5 tensors x 10 variants). */
	pthread_mutex_t stat_lock[LAYOUT_STAT_LOCKS];
} layout;

/* Plan s as `variant` (sizes, header, metadata): fills L; free with layout_free. */
int layout_build(layout *L, aprfs_source *s, int variant, const aprfs_opts *o, aprfs_err *err);
void layout_free(layout *L);

/* Codec and geometry of tensor t in this plan. */
void layout_geom(const layout *L, const aprfs_tensor *t, tensor_geom *g);

/* The importance weights of tensor t with geometry g (one per column), or NULL when the
 * plan is unweighted or has none for t (or t is not encoded by a k-quant). */
const float *layout_weights(const layout *L, const aprfs_tensor *t, const tensor_geom *g);

/* The per-tensor arrays, built on first call (thread-safe). NULL only on ENOMEM. */
const layout_detail *layout_detail_get(layout *L, aprfs_err *err);

/* Bytes [off, off+len) of the head: header, metadata, index and their padding, for
 * off + len <= data_offset. The index part needs the detail (d). */
void layout_head_read(const layout *L, const layout_detail *d, uint64_t off, size_t len,
		      uint8_t *dst);

/* Metadata JSON for the plan (malloc'd, NUL-terminated, compact) given its totals. */
char *layout_metadata_json(const layout *L, uint64_t total_size, uint64_t param_count,
			   aprfs_err *err);

/* Chunks: plan/chunk.h describes each once per read. */
/* The tensor (data order) holding global chunk c / whose padded span holds offset off. */
size_t layout_tensor_of_chunk(const layout *L, const layout_detail *d, uint64_t c);
size_t layout_tensor_at(const layout *L, const layout_detail *d, uint64_t off);

#endif
