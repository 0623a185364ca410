/* imatrix_write.h - test-only writers of llama.cpp importance matrices: imatrix.gguf as
 * current llama-imatrix writes it (general.type "imatrix", imatrix.chunk_count,
 * imatrix.datasets, per tensor <name>.in_sum2 [ncols] and <name>.counts [1], F32) and the
 * legacy imatrix.dat (per entry: name, ncall, nval, sums). Header-only, stdio only. */
#ifndef APRFS_IMATRIX_WRITE_H
#define APRFS_IMATRIX_WRITE_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct imw_entry {
	const char *name;
	uint64_t ncols;
	const float *sum2; /* ncols sums of squared activations */
	float count;	   /* tokens seen (GGUF counts; legacy ncall) */
} imw_entry;

static inline void imw_u32(FILE *f, uint32_t v)
{
	fwrite(&v, 4, 1, f);
}

static inline void imw_u64(FILE *f, uint64_t v)
{
	fwrite(&v, 8, 1, f);
}

static inline void imw_str(FILE *f, const char *s)
{
	imw_u64(f, strlen(s));
	fwrite(s, 1, strlen(s), f);
}

static inline void imw_tinfo(FILE *f, const char *name, const char *suffix, uint64_t ne0,
			     uint64_t off)
{
	char n[1100];
	snprintf(n, sizeof(n), "%s%s", name, suffix);
	imw_str(f, n);
	imw_u32(f, 2);
	imw_u64(f, ne0);
	imw_u64(f, 1);
	imw_u32(f, 0); /* F32 */
	imw_u64(f, off);
}

static inline uint64_t imw_align(uint64_t v)
{
	return (v + 31) / 32 * 32;
}

static inline void imw_pad(FILE *f)
{
	static const char z[32];
	long at = ftell(f);
	fwrite(z, 1, (size_t)(imw_align((uint64_t)at) - (uint64_t)at), f);
}

/* imatrix.gguf; 0 or -1 on a write error. */
static inline int imw_write_gguf(const char *path, const imw_entry *e, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	fwrite("GGUF", 1, 4, f);
	imw_u32(f, 3);
	imw_u64(f, 2 * n);
	imw_u64(f, 3);
	imw_str(f, "general.type");
	imw_u32(f, 8);
	imw_str(f, "imatrix");
	imw_str(f, "imatrix.chunk_count");
	imw_u32(f, 4);
	imw_u32(f, 100);
	imw_str(f, "imatrix.datasets");
	imw_u32(f, 9);
	imw_u32(f, 8);
	imw_u64(f, 1);
	imw_str(f, "aprfs-test.txt");
	uint64_t off = 0;
	for (size_t i = 0; i < n; i++) {
		imw_tinfo(f, e[i].name, ".in_sum2", e[i].ncols, off);
		off = imw_align(off + 4 * e[i].ncols);
		imw_tinfo(f, e[i].name, ".counts", 1, off);
		off = imw_align(off + 4);
	}
	imw_pad(f);
	for (size_t i = 0; i < n; i++) {
		fwrite(e[i].sum2, 4, e[i].ncols, f);
		imw_pad(f);
		fwrite(&e[i].count, 4, 1, f);
		imw_pad(f);
	}
	return fclose(f) ? -1 : 0;
}

/* Legacy imatrix.dat: sums are stored as llama-imatrix did, mean * ncall. */
static inline int imw_write_dat(const char *path, const imw_entry *e, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	imw_u32(f, (uint32_t)n);
	for (size_t i = 0; i < n; i++) {
		imw_u32(f, (uint32_t)strlen(e[i].name));
		fwrite(e[i].name, 1, strlen(e[i].name), f);
		imw_u32(f, (uint32_t)(int32_t)e[i].count);
		imw_u32(f, (uint32_t)e[i].ncols);
		fwrite(e[i].sum2, 4, e[i].ncols, f);
	}
	imw_u32(f, 100); /* last call, then the dataset name */
	imw_u32(f, 14);
	fwrite("aprfs-test.txt", 1, 14, f);
	return fclose(f) ? -1 : 0;
}

#endif
