/* tensor_stat.c - the per-tensor statistic a q8 or ternary tensor needs before any chunk
 * (the q8 scale, the ternary alpha): one pass over the source, once per tensor, shared
 * through the disk tier. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "base/crc.h"
#include "file/aprfile_impl.h"

/* Elements per pass of the statistic. Fixed (not the chunk size) so the double sum of
 * the ternary alpha is the same whatever the variant's chunking. */
#define STAT_SPAN 65536

/* One pass over the tensor in STAT_SPAN spans, giving up between spans when cancelled.
 * (Splitting the spans over cores was tried: the pass is bound by faulting the source
 * pages in, and two cores gained nothing.) */
static int compute_stat(aprfs_file *f, const plan_tensor *r, const aprfs_cancel *cancel,
			float *out, aprfs_err *err)
{
	const aprfs_tensor *s = r->t;
	float *x = malloc(STAT_SPAN * sizeof(float));
	float maxabs = 0;
	double sum = 0;
	uint64_t nfinite = 0;
	int rc = x ? 0 : aprfs_fail(err, ENOMEM, "out of memory");

	for (uint64_t e = 0; rc == 0 && e < s->nelem; e += STAT_SPAN) {
		size_t n = s->nelem - e < STAT_SPAN ? (size_t)(s->nelem - e) : STAT_SPAN;
		if (aprfs_cancelled(cancel))
			rc = aprfs_fail_cancelled(err);
		else
			rc = aprfs_source_read_f32(f->L.src, s, e, n, x, err);
		if (rc == 0 && r->g.codec->stat == APRFS_STAT_MAXABS) {
			float m = f->k->maxabs(x, n);
			maxabs = m > maxabs ? m : maxabs;
		} else if (rc == 0) {
			sum += f->k->sumabs(x, n, &nfinite);
		}
	}
	free(x);
	if (rc == 0)
		*out = r->g.codec->stat == APRFS_STAT_MAXABS
			   ? aprfs_q8_scale_from_maxabs(maxabs)
			   : aprfs_ternary_alpha_from_sum(sum, nfinite);
	return rc;
}

/* The statistic from the disk tier (dc may be NULL), or computed and offered to it. */
static int stat_produce(aprfs_file *f, aprfs_diskcache *dc, const plan_tensor *r,
			const aprfs_cancel *cancel, float *out, aprfs_err *err)
{
	aprfs_dc_key key;
	int claimed = 0, rc;

	if (!dc)
		return compute_stat(f, r, cancel, out, err);
	file_key_stat(f, r, &key);
	if (aprfs_diskcache_get(dc, &key, out, sizeof(*out), NULL, cancel, &claimed))
		return 0;
	rc = compute_stat(f, r, cancel, out, err);
	if (rc == 0)
		aprfs_diskcache_put(dc, &key, out, sizeof(*out),
				    aprfs_crc32(0, out, sizeof(*out)), claimed);
	else
		aprfs_diskcache_drop(dc, &key, claimed);
	return rc;
}

/* The tensor's statistic (q8 scale / ternary alpha), computed once, by one thread; a pass
 * that was cancelled leaves it unknown for the next reader to compute. */
int file_tensor_stat(aprfs_file *f, aprfs_diskcache *dc, const plan_tensor *r,
		     const aprfs_cancel *cancel, float *out, aprfs_err *err)
{
	layout_detail *d = atomic_load(&f->L.detail);
	int rc = 0;

	if (!atomic_load_explicit(&d->stat_done[r->i], memory_order_acquire)) {
		pthread_mutex_t *lock = &f->L.stat_lock[r->i % LAYOUT_STAT_LOCKS];
		pthread_mutex_lock(lock);
		if (!atomic_load(&d->stat_done[r->i])) {
			rc = stat_produce(f, dc, r, cancel, &d->stat[r->i], err);
			if (rc == 0)
				atomic_store_explicit(&d->stat_done[r->i], 1,
						      memory_order_release);
		}
		pthread_mutex_unlock(lock);
	}
	*out = d->stat[r->i];
	return rc;
}
