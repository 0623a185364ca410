/* genimatrix.c - a synthetic llama.cpp importance matrix for a checkpoint, for the tests and
 * `make bench`: one entry per 2-D float tensor (GGUF names), per-column mean squared
 * activations spread over two decades with every 50th column 30x stronger (genmodel
 * --outliers' columns), as imatrix.gguf or legacy imatrix.dat, optionally broken one way. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "imatrix_write.h"
#include "source/imatrix.h"
#include "source/source.h"
#include "synth.h"

static void usage(FILE *f)
{
	fputs("usage: genimatrix [options] CHECKPOINT OUT\n"
	      "  --dat                  legacy imatrix.dat (default: imatrix.gguf)\n"
	      "  --seed S               PRNG seed (default 1)\n"
	      "  --hf-names             keep the checkpoint's names (default: GGUF spellings)\n"
	      "  --break KIND           nan | negative | zero-count | columns | missing | "
	      "truncate:\n"
	      "                         the first entry broken that way (truncate: the file)\n",
	      f);
}

typedef struct opts {
	int dat, hf_names;
	uint64_t seed;
	const char *brk, *ckpt, *out;
} opts;

static void parse(int argc, char **argv, opts *o)
{
	*o = (opts){0, 0, 1, NULL, NULL, NULL};
	int i = 1;
	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		if (strcmp(argv[i], "--dat") == 0)
			o->dat = 1;
		else if (strcmp(argv[i], "--hf-names") == 0)
			o->hf_names = 1;
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			o->seed = strtoull(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--break") == 0 && i + 1 < argc)
			o->brk = argv[++i];
		else {
			usage(strcmp(argv[i], "--help") ? stderr : stdout);
			exit(strcmp(argv[i], "--help") ? 2 : 0);
		}
	}
	if (argc - i != 2) {
		usage(stderr);
		exit(2);
	}
	o->ckpt = argv[i];
	o->out = argv[i + 1];
}

/* One entry's sums (count 100 tokens: sum = mean * 100). */
static float *sums(rng *r, uint64_t ncols)
{
	float *s = malloc(ncols * sizeof(float));
	for (uint64_t c = 0; s && c < ncols; c++) {
		float u = (float)(rng_next(r) >> 40) / 16777216.0f;
		s[c] = 100.0f * powf(10.0f, 2.0f * u - 1.0f) * (c % 50 == 7 ? 30.0f : 1.0f);
	}
	return s;
}

static void apply_break(const char *k, imw_entry *e, size_t *n)
{
	float *s = (float *)e[0].sum2;
	if (strcmp(k, "nan") == 0)
		s[3] = NAN;
	else if (strcmp(k, "negative") == 0)
		s[5] = -1.0f;
	else if (strcmp(k, "zero-count") == 0)
		e[0].count = 0.0f;
	else if (strcmp(k, "columns") == 0)
		e[0].ncols /= 2;
	else if (strcmp(k, "missing") == 0)
		memmove(e, e + 1, --*n * sizeof(*e));
	else if (strcmp(k, "truncate") != 0) {
		fprintf(stderr, "genimatrix: unknown --break %s\n", k);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	opts o;
	aprfs_source *s;
	aprfs_err err = {0};
	parse(argc, argv, &o);
	if (aprfs_source_open(o.ckpt, NULL, &s, &err)) {
		fprintf(stderr, "genimatrix: %s\n", err.msg);
		return 1;
	}
	size_t n = 0, count = aprfs_source_count(s);
	imw_entry *e = calloc(count + 1, sizeof(*e));
	char(*names)[300] = calloc(count + 1, sizeof(*names));
	float **sum2 = calloc(count + 1, sizeof(*sum2)); /* to free, whatever --break does */
	rng r;
	rng_seed(&r, o.seed, "imatrix");
	for (size_t i = 0; i < count; i++) {
		const aprfs_tensor *t = aprfs_source_tensor(s, i);
		if (t->ndim != 2 || !aprfs_src_dtype_is_float(t->dtype))
			continue;
		if (o.hf_names ||
		    !aprfs_tensor_name_to_gguf(t->name, names[n], sizeof(names[n])))
			snprintf(names[n], sizeof(names[n]), "%s", t->name);
		sum2[n] = sums(&r, t->dims[1]);
		e[n] = (imw_entry){names[n], t->dims[1], sum2[n], 100.0f};
		n++;
	}
	if (o.brk && n)
		apply_break(o.brk, e, &n);
	int rc = (o.dat ? imw_write_dat : imw_write_gguf)(o.out, e, n);
	if (rc == 0 && o.brk && strcmp(o.brk, "truncate") == 0) {
		FILE *f = fopen(o.out, "r+b");
		fseek(f, 0, SEEK_END);
		long len = ftell(f);
		fclose(f);
		rc = truncate(o.out, len - len / 3);
	}
	if (rc)
		fprintf(stderr, "genimatrix: cannot write %s\n", o.out);
	else
		printf("%s: %zu entries\n", o.out, n);
	for (size_t i = 0; i < count; i++)
		free(sum2[i]);
	free(sum2);
	free(names);
	free(e);
	aprfs_source_unref(s);
	return rc ? 1 : 0;
}
