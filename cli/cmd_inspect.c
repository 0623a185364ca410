/* cmd_inspect.c - `aprfs inspect`: print an APR file's header, metadata and tensor table,
 * verify every structural rule (aprread.c), and with --stats decode every tensor and
 * measure its error against the source checkpoint. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "cmd.h"
#include "format/aprfmt.h"
#include "format/aprread.h"
#include "format/dtype.h"
#include "kernels/kernels.h"
#include "plan/tensor_read.h"
#include "quant/codec.h"
#include "source/source.h"

typedef struct tensor_stats {
	int measured; /* 0: not a float tensor or not in the source */
	double mse, rel_rmse, sparsity;
	int exact; /* pass-through bytes equal */
} tensor_stats;

static const aprfs_codec *codec_of_dtype(uint8_t d)
{
	switch (d) {
	case APR_DT_F32: return &aprfs_codec_f32;
	case APR_DT_F16: return &aprfs_codec_f16;
	case APR_DT_BF16: return &aprfs_codec_bf16;
	case APR_DT_APR_Q8:
	case 9: return &aprfs_codec_q8;
	case APR_DT_APR_Q4:
	case 8: return &aprfs_codec_q4;
	case APR_DT_Q4_K: return &aprfs_codec_q4k;
	case APR_DT_Q6_K: return &aprfs_codec_q6k;
	case APR_DT_NF4: return &aprfs_codec_nf4;
	case APR_DT_TERNARY: return &aprfs_codec_ternary;
	default: return NULL;
	}
}

static const aprfs_tensor *find_source_tensor(aprfs_source *s, const char *name)
{
	for (size_t i = 0; i < aprfs_source_count(s); i++)
		if (!strcmp(aprfs_source_tensor(s, i)->name, name))
			return aprfs_source_tensor(s, i);
	return NULL;
}

/* Decode e's payload span by span and compare with the source's f32 values. */
static int measure_float(const apr_file *f, const apr_entry *e, const aprfs_codec *c,
			 aprfs_source *s, const aprfs_tensor *t, tensor_stats *st,
			 aprfs_err *err)
{
	const aprfs_kernels *k = aprfs_kernels_get();
	const uint8_t *p = f->map + f->data_offset + e->offset;
	aprfs_qparams q = {.scale = 1.0f, .nf4_block = 64};
	const cJSON *qm = cJSON_GetObjectItemCaseSensitive(f->meta, "quantization");
	const cJSON *bs = qm ? cJSON_GetObjectItemCaseSensitive(qm, "block_size") : NULL;
	if (c == &aprfs_codec_nf4 && cJSON_IsNumber(bs))
		q.nf4_block = (uint32_t)bs->valuedouble;
	if (c->prefix_bytes && e->size >= 4)
		memcpy(&q.scale, p, 4);
	uint64_t be = aprfs_codec_block_elems(c, &q), bb = aprfs_codec_block_bytes(c, &q);
	uint64_t span = (65536 / be ? 65536 / be : 1) * be;
	float *x = malloc(span * sizeof(float)), *y = malloc(span * sizeof(float));
	double se = 0, sx = 0, zeros = 0;
	int rc = x && y ? 0 : aprfs_fail(err, ENOMEM, "out of memory");

	for (uint64_t e0 = 0; !rc && e0 < e->nelem; e0 += span) {
		size_t n = e->nelem - e0 < span ? (size_t)(e->nelem - e0) : (size_t)span;
		k->decode[aprfs_kslot_of(c)](p + c->prefix_bytes + e0 / be * bb, n, &q, y);
		rc = aprfs_source_read_f32(s, t, e0, n, x, err);
		for (size_t i = 0; !rc && i < n; i++) {
			if (!isfinite(x[i]))
				continue; /* NaN/inf sources have no meaningful error */
			double d = (double)y[i] - x[i];
			se += d * d;
			sx += (double)x[i] * x[i];
			zeros += y[i] == 0.0f;
		}
	}
	free(x);
	free(y);
	st->measured = 1;
	st->mse = e->nelem ? se / e->nelem : 0;
	st->rel_rmse = sx > 0 ? sqrt(se / sx) : 0;
	st->sparsity = e->nelem ? zeros / e->nelem : 0;
	return rc;
}

static int measure_raw(const apr_file *f, const apr_entry *e, aprfs_source *s,
		       const aprfs_tensor *t, tensor_stats *st, aprfs_err *err)
{
	uint8_t *buf = malloc(e->size + 1);
	int rc = buf ? aprfs_source_read(s, t, 0, e->size, buf, err)
		     : aprfs_fail(err, ENOMEM, "out of memory");
	st->exact = rc == 0 && memcmp(buf, f->map + f->data_offset + e->offset, e->size) == 0;
	st->measured = 1;
	free(buf);
	return rc;
}

static int measure_all(const apr_file *f, const char *source, tensor_stats *st, aprfs_err *err)
{
	aprfs_source *s = NULL;
	int rc = aprfs_source_open(source, NULL, &s, err);
	for (uint32_t i = 0; !rc && i < f->nentries; i++) {
		const apr_entry *e = &f->entries[i];
		const aprfs_tensor *t = find_source_tensor(s, e->name);
		const aprfs_codec *c = codec_of_dtype(e->dtype);
		if (!t)
			rc = aprfs_fail(err, EINVAL, "%s: tensor '%s' is not in %s", f->path,
					e->name, source);
		else if (t->nelem != e->nelem)
			rc = aprfs_fail(err, EINVAL,
					"%s: tensor '%s' has %llu elements, the source %llu",
					f->path, e->name, (unsigned long long)e->nelem,
					(unsigned long long)t->nelem);
		else if (c && aprfs_src_dtype_is_float(t->dtype))
			rc = measure_float(f, e, c, s, t, &st[i], err);
		else
			rc = measure_raw(f, e, s, t, &st[i], err);
	}
	if (s)
		aprfs_source_unref(s);
	return rc;
}

static void shape_str(const apr_entry *e, char *out, size_t cap)
{
	size_t n = (size_t)snprintf(out, cap, "[");
	for (int d = 0; d < e->ndim && n < cap; d++)
		n += (size_t)snprintf(out + n, cap - n, "%s%llu", d ? ", " : "",
				      (unsigned long long)e->dims[d]);
	if (n < cap)
		snprintf(out + n, cap - n, "]");
}

static void flags_str(uint16_t fl, char *out, size_t cap)
{
	static const char *names[] = {
	    "LZ4_COMPRESSED", "ZSTD",	   "ENCRYPTED",	       "SIGNED",
	    "SHARDED",	      "QUANTIZED", "HAS_FILTERBANK",   "HAS_MODEL_CARD",
	    "STREAMING",      "HAS_VOCAB", "LAYOUT_ROW_MAJOR", "LAYOUT_COLUMN_MAJOR"};
	size_t n = 0;
	out[0] = '\0';
	for (int b = 0; b < 12; b++)
		if (fl & (1u << b) && n < cap)
			n += (size_t)snprintf(out + n, cap - n, "%s%s", n ? "|" : "", names[b]);
}

/* Tensors and payload bytes per APR dtype id. */
typedef struct dtype_mix {
	uint64_t tensors[256], bytes[256];
} dtype_mix;

static void mix_of(const apr_file *f, dtype_mix *m)
{
	memset(m, 0, sizeof(*m));
	for (uint32_t i = 0; i < f->nentries; i++) {
		m->tensors[f->entries[i].dtype]++;
		m->bytes[f->entries[i].dtype] += f->entries[i].size;
	}
}

/* The importance matrix the metadata names (quantization.imatrix), or NULL. */
static const cJSON *imatrix_of(const apr_file *f)
{
	const cJSON *q =
	    f->meta ? cJSON_GetObjectItemCaseSensitive(f->meta, "quantization") : NULL;
	const cJSON *im = q ? cJSON_GetObjectItemCaseSensitive(q, "imatrix") : NULL;
	return cJSON_IsObject(im) ? im : NULL;
}

/* "dtype mix: Q4_K 112 tensors 5242880 bytes, ..." and the imatrix line. */
static void print_mix(const apr_file *f)
{
	dtype_mix m;
	mix_of(f, &m);
	printf("dtype mix:");
	for (int d = 0, first = 1; d < 256; d++) {
		if (!m.tensors[d])
			continue;
		const char *dn = aprfs_apr_dtype_name((uint8_t)d);
		printf("%s %s %llu tensors %llu bytes", first ? "" : ",", dn ? dn : "?",
		       (unsigned long long)m.tensors[d], (unsigned long long)m.bytes[d]);
		first = 0;
	}
	const cJSON *im = imatrix_of(f), *file = NULL, *sha = NULL, *used = NULL;
	if (im) {
		file = cJSON_GetObjectItemCaseSensitive(im, "file");
		sha = cJSON_GetObjectItemCaseSensitive(im, "sha256");
		used = cJSON_GetObjectItemCaseSensitive(im, "entries_used");
	}
	if (cJSON_IsString(file) && cJSON_IsString(sha) && cJSON_IsNumber(used))
		printf("\nimatrix:  %s sha256 %s, %.0f entries used\n", file->valuestring,
		       sha->valuestring, used->valuedouble);
	else
		printf("\nimatrix:  none\n");
}

static void print_text(const apr_file *f, const tensor_stats *st, int have_stats)
{
	char flags[256], shape[160];
	flags_str(f->flags, flags, sizeof(flags));
	printf("file:     %s (%llu bytes)\n", f->path, (unsigned long long)f->size);
	printf("header:   APR v%u.%u, flags 0x%04x (%s), %u tensors, checksum 0x%08x\n",
	       f->version_major, f->version_minor, f->flags, flags, f->tensor_count,
	       f->header_crc);
	printf("sections: metadata 64+%u, index %llu, data %llu, footer CRC 0x%08x\n",
	       f->meta_size, (unsigned long long)f->index_offset,
	       (unsigned long long)f->data_offset, f->footer_crc);
	if (f->meta) {
		char *m = cJSON_Print(f->meta);
		printf("metadata: %s\n", m ? m : "?");
		free(m);
	}
	print_mix(f);
	printf("%-48s %-8s %-20s %12s %12s%s\n", "tensor", "dtype", "shape", "offset", "size",
	       have_stats ? "        mse  rel_rmse  sparsity" : "");
	for (uint32_t i = 0; i < f->nentries; i++) {
		const apr_entry *e = &f->entries[i];
		const char *dn = aprfs_apr_dtype_name(e->dtype);
		shape_str(e, shape, sizeof(shape));
		printf("%-48s %-8s %-20s %12llu %12llu", e->name, dn ? dn : "?", shape,
		       (unsigned long long)(f->data_offset + e->offset),
		       (unsigned long long)e->size);
		if (have_stats && st[i].measured && !st[i].exact && codec_of_dtype(e->dtype))
			printf("  %9.3g  %8.5f  %8.4f", st[i].mse, st[i].rel_rmse,
			       st[i].sparsity);
		else if (have_stats && st[i].measured)
			printf("  %s", st[i].exact ? "exact" : "DIFFERS");
		printf("\n");
	}
}

static void print_json(const apr_file *f, const tensor_stats *st, int have_stats, int valid,
		       const char *why)
{
	cJSON *o = cJSON_CreateObject(), *h = cJSON_AddObjectToObject(o, "header");
	aprfs_json_add_text(o, "file", f->path);
	cJSON_AddNumberToObject(o, "size", (double)f->size);
	cJSON_AddBoolToObject(o, "valid", valid);
	if (!valid)
		aprfs_json_add_text(o, "error", why);
	cJSON_AddNumberToObject(h, "version_major", f->version_major);
	cJSON_AddNumberToObject(h, "version_minor", f->version_minor);
	cJSON_AddNumberToObject(h, "flags", f->flags);
	cJSON_AddNumberToObject(h, "tensor_count", f->tensor_count);
	cJSON_AddNumberToObject(h, "metadata_size", f->meta_size);
	cJSON_AddNumberToObject(h, "tensor_index_offset", (double)f->index_offset);
	cJSON_AddNumberToObject(h, "data_offset", (double)f->data_offset);
	cJSON_AddNumberToObject(h, "checksum", f->header_crc);
	cJSON_AddNumberToObject(h, "footer_crc", f->footer_crc);
	if (f->meta)
		cJSON_AddItemToObject(o, "metadata", cJSON_Duplicate(f->meta, 1));
	dtype_mix mix;
	mix_of(f, &mix);
	cJSON *ma = cJSON_AddArrayToObject(o, "dtype_mix");
	for (int d = 0; d < 256; d++) {
		if (!mix.tensors[d])
			continue;
		cJSON *e = cJSON_CreateObject();
		const char *dn = aprfs_apr_dtype_name((uint8_t)d);
		cJSON_AddStringToObject(e, "dtype", dn ? dn : "?");
		cJSON_AddNumberToObject(e, "tensors", (double)mix.tensors[d]);
		cJSON_AddNumberToObject(e, "bytes", (double)mix.bytes[d]);
		cJSON_AddItemToArray(ma, e);
	}
	const cJSON *im = imatrix_of(f);
	cJSON_AddItemToObject(o, "imatrix", im ? cJSON_Duplicate(im, 1) : cJSON_CreateNull());
	cJSON *ts = cJSON_AddArrayToObject(o, "tensors");
	for (uint32_t i = 0; i < f->nentries; i++) {
		const apr_entry *e = &f->entries[i];
		cJSON *t = cJSON_CreateObject(), *shape = cJSON_AddArrayToObject(t, "shape");
		cJSON_AddStringToObject(t, "name", e->name);
		cJSON_AddStringToObject(
		    t, "dtype",
		    aprfs_apr_dtype_name(e->dtype) ? aprfs_apr_dtype_name(e->dtype) : "?");
		cJSON_AddNumberToObject(t, "dtype_id", e->dtype);
		for (int d = 0; d < e->ndim; d++)
			cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)e->dims[d]));
		cJSON_AddNumberToObject(t, "offset", (double)(f->data_offset + e->offset));
		cJSON_AddNumberToObject(t, "size", (double)e->size);
		if (have_stats && st[i].measured) {
			if (codec_of_dtype(e->dtype) && !st[i].exact) {
				cJSON_AddNumberToObject(t, "mse", st[i].mse);
				cJSON_AddNumberToObject(t, "rel_rmse", st[i].rel_rmse);
				cJSON_AddNumberToObject(t, "sparsity", st[i].sparsity);
			} else {
				cJSON_AddBoolToObject(t, "exact", st[i].exact);
			}
		}
		cJSON_AddItemToArray(ts, t);
	}
	char *s = cJSON_Print(o);
	puts(s ? s : "{}");
	free(s);
	cJSON_Delete(o);
}

int aprfs_cmd_inspect(int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
						 {"stats", required_argument, NULL, 's'},
						 {"help", no_argument, NULL, 'h'},
						 {NULL, 0, NULL, 0}};
	const char *stats_src = NULL;
	int json = 0, c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "js:h", longopts, NULL)) != -1) {
		if (c == 'j')
			json = 1;
		else if (c == 's')
			stats_src = optarg;
		else {
			fprintf(c == 'h' ? stdout : stderr,
				"usage: aprfs inspect [--json] [--stats SOURCE] FILE.apr\n");
			return c == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "usage: aprfs inspect [--json] [--stats SOURCE] FILE.apr\n");
		return 2;
	}
	apr_file f;
	aprfs_err err = {0};
	int rc = apr_open_verify(argv[optind], &f, &err);
	tensor_stats *st = calloc(f.nentries + 1, sizeof(*st));
	if (!rc && stats_src)
		rc = measure_all(&f, stats_src, st, &err);
	if (json)
		print_json(&f, st, stats_src && !rc, rc == 0, err.msg);
	else if (f.map && (!rc || f.nentries))
		print_text(&f, st, stats_src && !rc);
	if (rc)
		fprintf(stderr, "aprfs inspect: %s\n", err.msg);
	else if (!json)
		printf(
		    "verified: magic, version, header checksum, metadata types, sorted index, "
		    "alignment, extents, sizes, padding, footer CRC\n");
	free(st);
	apr_close(&f);
	return rc ? 1 : 0;
}
