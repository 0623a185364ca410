/* kernels_impl.h - internal to lib/kernels/: what the parts of the dispatcher share: ISA
 * numbers, the scalar table and kernels by number (table.c), the CPU probe (cpu.c), the
 * per-kernel ISA preferences (prefs.c); the table each ISA has is built in table.c. */
#ifndef APRFS_KERNELS_IMPL_H
#define APRFS_KERNELS_IMPL_H

#include "kernels/kernels.h"

/* Index into aprfs_kernels_isa_names. */
enum { ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_NEON };

/* A kernel's function as a generic function pointer, only ever compared. */
typedef void (*kernel_ptr)(void);

/* The scalar reference table into t. */
void kernels_fill_scalar(aprfs_kernels *t);
/* Kernel kn of t; dst takes kernel kn (and its ISA name) from src. */
kernel_ptr kernels_fn(const aprfs_kernels *t, int kn);
void kernels_copy(aprfs_kernels *dst, const aprfs_kernels *src, int kn);

/* 1 when this CPU and build can run ISA isa; an ISA's number by name, or -1. */
int kernels_isa_supported(int isa);
int kernels_isa_index(const char *name);

/* The ISA order of kernels without a preference of their own, widest first; kernel kn's
 * ISA at rank r of its order (ISA_* or -1 past the end). */
#define KERNELS_ORDER_LEN 3
extern const int kernels_default_order[KERNELS_ORDER_LEN];
int kernels_pref_isa(int kn, int r);

/* ISA isa's table, built on first use (thread-safe). */
const aprfs_kernels *kernels_table_of(int isa);

#endif
