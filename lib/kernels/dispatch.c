/* dispatch.c - choosing the kernel table on the first call: the APRFS_ISA override, or
 * the default table assembled from the ISA tables (table.c), the per-kernel preferences
 * (prefs.c) and the self-checks (selfcheck.c). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels_impl.h"

/* ---- resolution ----------------------------------------------------------------------- */

static const aprfs_kernels *_Atomic chosen;
static pthread_mutex_t chosen_lock = PTHREAD_MUTEX_INITIALIZER;

static void refuse(const char *fmt, const char *isa, const char *why)
{
	fprintf(stderr, "aprfs: APRFS_ISA=%s: ", isa);
	fprintf(stderr, fmt, why);
	fputc('\n', stderr);
	exit(2);
}

static const aprfs_kernels *resolve_forced(const char *env)
{
	char why[160];
	int i = kernels_isa_index(env);
	if (i < 0)
		refuse("unknown ISA%s (one of scalar, avx2, avx512, neon)", env, "");
	if (!kernels_isa_supported(i))
		refuse("this CPU or build cannot run %s kernels", env, env);
	const aprfs_kernels *t = kernels_table_of(i);
	if (i != ISA_SCALAR && aprfs_kernels_selfcheck(t, why, sizeof(why)))
		refuse("kernels failed their self-check: %s", env, why);
	return t;
}

/* snprintf at *len into buf, never past cap (a long name is cut, not overrun). */
static void append(char *buf, size_t cap, size_t *len, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (*len < cap) {
		int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
		*len = n < 0 ? cap : *len + (size_t)n;
	}
	va_end(ap);
}

/* The default table, assembled once (it depends on the CPU only): every kernel from the
 * first ISA of its preference order that the CPU has and whose whole table agrees with
 * the scalar reference, else the scalar one. Named after the main ISA (the first usable
 * one of kernels_default_order) and its exceptions. If no kernel differs from the main ISA's,
 * that whole table is used; if the assembled one failed its own self-check (it cannot,
 * being made of checked kernels, but it is checked like every table used), too. */
static aprfs_kernels mixed;
static char mixed_name[512];

static const aprfs_kernels *assemble(void)
{
	char why[160];
	int ok[APRFS_ISA_COUNT] = {0}, main_isa = ISA_SCALAR;
	ok[ISA_SCALAR] = 1;
	for (size_t i = 0; i < sizeof(kernels_default_order) / sizeof(kernels_default_order[0]);
	     i++) {
		int isa = kernels_default_order[i];
		if (!kernels_isa_supported(isa))
			continue;
		const aprfs_kernels *t = kernels_table_of(isa);
		if (aprfs_kernels_selfcheck(t, why, sizeof(why)) == 0) {
			ok[isa] = 1;
			main_isa = main_isa == ISA_SCALAR ? isa : main_isa;
		} else {
			fprintf(stderr, "aprfs: %s kernels disabled, self-check failed: %s\n",
				t->isa, why);
		}
	}
	const aprfs_kernels *base = kernels_table_of(main_isa);
	kernels_fill_scalar(&mixed);
	int exceptions = 0;
	for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
		int r = 0, isa;
		while ((isa = kernels_pref_isa(kn, r)) >= 0 && !ok[isa])
			r++;
		kernels_copy(&mixed, isa >= 0 ? kernels_table_of(isa) : aprfs_kernels_scalar(),
			     kn);
		exceptions += !aprfs_kernels_same(&mixed, base, kn);
	}
	if (!exceptions)
		return base;

	/* "avx512 (avx2 for encode bf16, maxabs; neon for ...)" */
	size_t len = 0;
	append(mixed_name, sizeof(mixed_name), &len, "%s (", base->isa);
	int groups = 0;
	for (int isa = 0; isa < APRFS_ISA_COUNT; isa++) {
		const char *name = aprfs_kernels_isa_names[isa];
		int in_group = 0;
		for (int kn = 0; kn < APRFS_KN_COUNT; kn++) {
			if (aprfs_kernels_same(&mixed, base, kn) ||
			    strcmp(mixed.kisa[kn], name))
				continue;
			if (in_group)
				append(mixed_name, sizeof(mixed_name), &len, ", %s",
				       aprfs_kernel_name(kn));
			else
				append(mixed_name, sizeof(mixed_name), &len, "%s%s for %s",
				       groups++ ? "; " : "", name, aprfs_kernel_name(kn));
			in_group = 1;
		}
	}
	append(mixed_name, sizeof(mixed_name), &len, ")");
	mixed.isa = mixed_name;
	if (aprfs_kernels_selfcheck(&mixed, why, sizeof(why))) {
		fprintf(stderr, "aprfs: per-kernel table disabled, self-check failed: %s\n",
			why);
		return base;
	}
	return &mixed;
}

/* Built once: the CPU does not change, and a table handed out stays valid. */
static const aprfs_kernels *assembled;

static const aprfs_kernels *default_table(void)
{
	if (!assembled)
		assembled = assemble();
	return assembled;
}

static const aprfs_kernels *resolve(void)
{
	const char *env = getenv("APRFS_ISA");
	if (env && *env)
		return resolve_forced(env);
	return default_table();
}

const aprfs_kernels *aprfs_kernels_get(void)
{
	const aprfs_kernels *k = atomic_load_explicit(&chosen, memory_order_acquire);
	if (k)
		return k;
	pthread_mutex_lock(&chosen_lock);
	k = atomic_load(&chosen);
	if (!k) {
		k = resolve();
		atomic_store_explicit(&chosen, k, memory_order_release);
	}
	pthread_mutex_unlock(&chosen_lock);
	return k;
}

const char *aprfs_kernels_isa(void)
{
	return aprfs_kernels_get()->isa;
}

void aprfs_kernels_reset(void)
{
	pthread_mutex_lock(&chosen_lock);
	atomic_store(&chosen, NULL);
	pthread_mutex_unlock(&chosen_lock);
}
