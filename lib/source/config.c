/* config.c - config.json beside a safetensors checkpoint, read into aprfs_model_config: the
 * handful of fields APR metadata carries, under their many Hugging Face aliases, each
 * type-checked so that nothing we later write into metadata can make a reader refuse it. */
#include "source/config.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/utf8.h"
#include "source/source_impl.h"

#define CONFIG_MAX_BYTES (1u << 20)

/* Alias lists in priority order: the first key present with a non-null value wins. */
struct field {
	const char *keys[4];
	uint32_t bit;
};

static const struct field int_fields[] = {
    {{"hidden_size", "n_embd", "d_model"}, APRFS_CFG_HIDDEN},
    {{"num_hidden_layers", "n_layer", "num_layers"}, APRFS_CFG_LAYERS},
    {{"num_attention_heads", "n_head"}, APRFS_CFG_HEADS},
    {{"num_key_value_heads"}, APRFS_CFG_KV_HEADS},
    {{"vocab_size"}, APRFS_CFG_VOCAB},
    {{"intermediate_size", "n_inner"}, APRFS_CFG_INTER},
    {{"max_position_embeddings", "n_positions"}, APRFS_CFG_MAXPOS},
};

static const struct field real_fields[] = {
    {{"rope_theta"}, APRFS_CFG_ROPE_THETA},
    {{"rms_norm_eps", "layer_norm_eps", "layer_norm_epsilon"}, APRFS_CFG_RMS_EPS},
};

uint64_t *aprfs_config_int(aprfs_model_config *c, uint32_t bit)
{
	switch (bit) {
	case APRFS_CFG_HIDDEN: return &c->hidden_size;
	case APRFS_CFG_LAYERS: return &c->num_layers;
	case APRFS_CFG_HEADS: return &c->num_heads;
	case APRFS_CFG_KV_HEADS: return &c->num_kv_heads;
	case APRFS_CFG_VOCAB: return &c->vocab_size;
	case APRFS_CFG_INTER: return &c->intermediate_size;
	case APRFS_CFG_MAXPOS: return &c->max_position_embeddings;
	default: return NULL;
	}
}

double *aprfs_config_real(aprfs_model_config *c, uint32_t bit)
{
	switch (bit) {
	case APRFS_CFG_ROPE_THETA: return &c->rope_theta;
	case APRFS_CFG_RMS_EPS: return &c->rms_norm_eps;
	default: return NULL;
	}
}

/* The first alias with a non-null value; *key gets its name for messages. JSON null is
 * how Hugging Face writes "not set", so it counts as absent. */
static const cJSON *lookup(const cJSON *root, const char *const *keys, const char **key)
{
	for (int i = 0; i < 4 && keys[i]; i++) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, keys[i]);

		if (v && !cJSON_IsNull(v)) {
			*key = keys[i];
			return v;
		}
	}
	return NULL;
}

static int read_ints(const char *path, const cJSON *root, aprfs_model_config *cfg,
		     aprfs_err *err)
{
	for (size_t i = 0; i < sizeof(int_fields) / sizeof(int_fields[0]); i++) {
		const struct field *f = &int_fields[i];
		const char *key = NULL;
		const cJSON *v = lookup(root, f->keys, &key);
		uint64_t x;

		if (!v)
			continue;
		if (aprfs_json_uint(v, &x) != APRFS_JSON_UINT_OK)
			return aprfs_fail(err, EINVAL, "%s: %s must be a non-negative integer",
					  path, key);
		*aprfs_config_int(cfg, f->bit) = x;
		cfg->has |= f->bit;
	}
	return 0;
}

/* A value a reader cannot hold as an f32 (1e39, -1e40, or 1e999, which parses as inf)
 * would make the whole file unreadable if written: it is left out, with a warning. */
static int read_reals(const char *path, const cJSON *root, aprfs_model_config *cfg,
		      aprfs_err *err)
{
	for (size_t i = 0; i < sizeof(real_fields) / sizeof(real_fields[0]); i++) {
		const struct field *f = &real_fields[i];
		const char *key = NULL;
		const cJSON *v = lookup(root, f->keys, &key);

		if (!v)
			continue;
		if (!cJSON_IsNumber(v))
			return aprfs_fail(err, EINVAL, "%s: %s must be a number", path, key);
		if (!aprfs_config_f32_ok(v->valuedouble)) {
			char msg[300];
			snprintf(msg, sizeof(msg), "%s: %s", path, key);
			aprfs_log_once(APRFS_LOG_WARN, msg,
				       "%s: %s %g is outside the f32 range; left out of the "
				       "metadata",
				       path, key, v->valuedouble);
			continue;
		}
		*aprfs_config_real(cfg, f->bit) = v->valuedouble;
		cfg->has |= f->bit;
	}
	return 0;
}

/* A string destined for APR metadata: valid UTF-8 that fits its fixed-size field. */
static int read_string(const char *path, const char *key, const cJSON *v, char *dst, size_t cap,
		       aprfs_err *err)
{
	size_t len, bad;

	if (!cJSON_IsString(v))
		return aprfs_fail(err, EINVAL, "%s: %s must be a string", path, key);
	len = strlen(v->valuestring);
	if (len >= cap || !aprfs_utf8_valid(v->valuestring, len, &bad))
		return aprfs_fail(err, EINVAL, "%s: %s must be UTF-8 of at most %zu bytes",
				  path, key, cap - 1);
	memcpy(dst, v->valuestring, len + 1);
	return 0;
}

static int read_strings(const char *path, const cJSON *root, aprfs_model_config *cfg,
			aprfs_err *err)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(root, "architectures");
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(root, "model_type");
	int rc;

	if (a && !cJSON_IsNull(a)) {
		if (!cJSON_IsArray(a))
			return aprfs_fail(err, EINVAL, "%s: architectures must be an array",
					  path);
		if (a->child) {
			rc = read_string(path, "architectures[0]", a->child,
					 cfg->hf_architecture, sizeof(cfg->hf_architecture),
					 err);
			if (rc)
				return rc;
			cfg->has |= APRFS_CFG_HF_ARCH;
		}
	}
	if (m && !cJSON_IsNull(m)) {
		rc = read_string(path, "model_type", m, cfg->model_type,
				 sizeof(cfg->model_type), err);
		if (rc)
			return rc;
		cfg->has |= APRFS_CFG_MODEL_TYPE | APRFS_CFG_ARCH;
	}
	return 0;
}

int aprfs_config_parse(const char *path, const char *text, size_t len, aprfs_model_config *cfg,
		       aprfs_err *err)
{
	cJSON *root = NULL;
	const char *dup;
	int rc;

	memset(cfg, 0, sizeof(*cfg));
	if (!(root = aprfs_json_parse(text, len)))
		rc = aprfs_fail(err, EINVAL, "%s: not valid JSON", path);
	else if (!cJSON_IsObject(root))
		rc = aprfs_fail(err, EINVAL, "%s: not a JSON object", path);
	else if ((dup = aprfs_json_dup_key(root)))
		rc = aprfs_fail(err, EINVAL, "%s: duplicate key '%.64s'", path, dup);
	else if (!(rc = read_strings(path, root, cfg, err)) &&
		 !(rc = read_ints(path, root, cfg, err)))
		rc = read_reals(path, root, cfg, err);
	cJSON_Delete(root);
	if (rc) {
		memset(cfg, 0, sizeof(*cfg));
		return rc;
	}
	cfg->present = 1;
	return 0;
}

/* config.json is looked up beside the checkpoint's own path, not beside the file a link
 * resolves to: in a Hugging Face hub snapshot, the checkpoint is a link into ../../blobs/
 * and its config.json is a link beside it. Optional; its later appearance makes the
 * source stale. */
int aprfs_config_beside(aprfs_source *s, aprfs_err *err)
{
	char *path = src_sibling(s->path, "config.json"), *text = NULL;
	size_t len = 0;
	int rc;

	if (!path)
		return aprfs_fail(err, ENOMEM, "%s: out of memory", s->path);
	rc = src_read_small(s, path, CONFIG_MAX_BYTES, 1, &text, &len, err);
	if (rc == 0 && text)
		rc = aprfs_config_parse(path, text, len, &s->cfg, err);
	free(text);
	free(path);
	return rc;
}
