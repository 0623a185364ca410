/* metadata.c - the APR metadata JSON of a planned file: the keys the contract lists, in a
 * fixed order, typed as upstream readers demand (u64 printed exactly, no timestamps), so
 * the same source always gives the same bytes. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/utf8.h"
#include "plan/layout.h"
#include "plan/view.h"
#include "source/imatrix.h"

/* cJSON prints large numbers through a double; u64 sizes go in as raw text instead. */
static void add_u64(cJSON *o, const char *key, uint64_t v)
{
	char buf[32];
	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	cJSON_AddRawToObject(o, key, buf);
}

static void add_f32(cJSON *o, const char *key, double v)
{
	/* Readers parse these as f32: print the f32 value's shortest round-trip form. */
	char buf[48];
	float f = (float)v;
	for (int prec = 6; prec <= 9; prec++) {
		snprintf(buf, sizeof(buf), "%.*g", prec, (double)f);
		if (strtof(buf, NULL) == f)
			break;
	}
	cJSON_AddRawToObject(o, key, buf);
}

/* The quantization object, from the variant's row; f32 has none. */
static void add_quantization(cJSON *root, const layout *L)
{
	const aprfs_variant *v = L->var;
	aprfs_qparams p = {.scale = 1.0f, .nf4_block = L->opts.nf4_block};

	if (v->codec == &aprfs_codec_f32)
		return;
	cJSON *q = cJSON_AddObjectToObject(root, "quantization");
	cJSON_AddStringToObject(q, "quant_type", v->name);
	add_u64(q, "bits", v->bits);
	if (v->flags & APRFS_VARIANT_BLOCKED)
		add_u64(q, "block_size", aprfs_codec_block_elems(v->codec, &p));
	else
		cJSON_AddNullToObject(q, "block_size");
	cJSON_AddBoolToObject(q, "symmetric", !(v->flags & APRFS_VARIANT_ASYMMETRIC));
	if (L->imatrix) { /* the importance matrix the encoders were weighted by */
		cJSON *im = cJSON_AddObjectToObject(q, "imatrix");
		const char *path = aprfs_imatrix_path(L->imatrix), *base = strrchr(path, '/');
		aprfs_json_add_text(im, "file", base ? base + 1 : path);
		cJSON_AddStringToObject(im, "sha256", aprfs_imatrix_sha256(L->imatrix));
		add_u64(im, "entries_used", L->imatrix_used);
	}
}

static void add_config(cJSON *root, const aprfs_model_config *c)
{
	if (!c || !c->present)
		return;
	/* architecture is the model family ("llama"), as upstream readers expect; the class
	 * name ("LlamaForCausalLM") goes to hf_architecture. */
	if (c->has & APRFS_CFG_ARCH)
		cJSON_AddStringToObject(root, "architecture", c->model_type);
	if (c->has & APRFS_CFG_HF_ARCH)
		cJSON_AddStringToObject(root, "hf_architecture", c->hf_architecture);
	static const struct {
		uint32_t bit;
		const char *key;
		size_t off;
	} ints[] = {
	    {APRFS_CFG_HIDDEN, "hidden_size", offsetof(aprfs_model_config, hidden_size)},
	    {APRFS_CFG_LAYERS, "num_layers", offsetof(aprfs_model_config, num_layers)},
	    {APRFS_CFG_HEADS, "num_heads", offsetof(aprfs_model_config, num_heads)},
	    {APRFS_CFG_KV_HEADS, "num_kv_heads", offsetof(aprfs_model_config, num_kv_heads)},
	    {APRFS_CFG_VOCAB, "vocab_size", offsetof(aprfs_model_config, vocab_size)},
	    {APRFS_CFG_INTER, "intermediate_size",
	     offsetof(aprfs_model_config, intermediate_size)},
	    {APRFS_CFG_MAXPOS, "max_position_embeddings",
	     offsetof(aprfs_model_config, max_position_embeddings)},
	};
	for (size_t i = 0; i < sizeof(ints) / sizeof(ints[0]); i++)
		if (c->has & ints[i].bit)
			add_u64(root, ints[i].key,
				*(const uint64_t *)((const char *)c + ints[i].off));
	if (c->has & APRFS_CFG_ROPE_THETA)
		add_f32(root, "rope_theta", c->rope_theta);
	if (c->has & APRFS_CFG_RMS_EPS)
		add_f32(root, "rms_norm_eps", c->rms_norm_eps);
}

/* "X.safetensors" / "X.safetensors.index.json" / "X.gguf" -> "X" (the model's name when
 * the source does not say). */
static void model_stem(const char *path, char *out, size_t cap)
{
	const char *base = strrchr(path, '/');
	size_t stem;
	base = base ? base + 1 : path;
	snprintf(out, cap, "%s", base);
	if (aprfs_ckpt_name(out, &stem) != APRFS_CKPT_NONE && stem > 0)
		out[stem] = '\0';
}

char *layout_metadata_json(const layout *L, uint64_t total, uint64_t params, aprfs_err *err)
{
	const aprfs_model_config *cfg = aprfs_source_config(L->src);
	const char *path = aprfs_source_path(L->src);
	const char *rel = L->opts.source_rel;
	char name[512];

	if (!rel) {
		rel = strrchr(path, '/');
		rel = rel ? rel + 1 : path;
	}
	model_stem(rel, name, sizeof(name));

	cJSON *root = cJSON_CreateObject();
	cJSON_AddStringToObject(root, "model_type",
				cfg && (cfg->has & APRFS_CFG_MODEL_TYPE) ? cfg->model_type
									 : "unknown");
	/* Names and paths: valid UTF-8 always (U+FFFD for invalid bytes), so that no reader
	 * refuses the file. */
	aprfs_json_add_text(root, "name",
			    cfg && (cfg->has & APRFS_CFG_NAME) ? cfg->name : name);
	cJSON_AddStringToObject(root, "original_format", aprfs_source_format(L->src));
	aprfs_json_add_text(root, "source", rel);
	add_u64(root, "total_size", total);
	add_u64(root, "param_count", params);
	cJSON_AddNullToObject(root, "license");
	cJSON_AddNullToObject(root, "data_source");
	cJSON_AddNullToObject(root, "data_license");
	add_quantization(root, L);
	if (L->opts.view) { /* a named view: its name and definition */
		cJSON *v = cJSON_AddObjectToObject(root, "aprfs_view");
		aprfs_json_add_text(v, "name", L->opts.view->name);
		aprfs_json_add_text(v, "definition", L->opts.view->spec);
	}
	add_config(root, cfg);
	char *json = cJSON_PrintUnformatted(root);
	cJSON_Delete(root);
	if (!json)
		aprfs_fail(err, ENOMEM, "%s: cannot build metadata", path);
	return json;
}
