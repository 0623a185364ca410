/* variant.h - the variants an APR view can be planned as: their number, names and
 * order (layout.c defines them). Below the cache and the file layer, which count per
 * variant; the next phase turns this into the single variant table. */
#ifndef APRFS_VARIANT_H
#define APRFS_VARIANT_H

#define APRFS_VARIANT_COUNT 9
/* Variant names in the contract's order: f32 f16 bf16 q8 q4 q4k q6k nf4 ternary. */
extern const char *const aprfs_variant_names[APRFS_VARIANT_COUNT];
int aprfs_variant_index(const char *name); /* -1 if unknown */

#endif
