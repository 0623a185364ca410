/* config.h - the model facts APR metadata carries (architecture, sizes, rope, norm eps),
 * whatever the source: a Hugging Face config.json beside a safetensors checkpoint (parsed
 * here, aliases mapped to canonical names) or a GGUF file's keys (gguf.c). */
#ifndef APRFS_CONFIG_H
#define APRFS_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "format/aprfmt.h"

enum {
	APRFS_CFG_ARCH = 1u << 0, /* architecture: the model family */
	APRFS_CFG_HIDDEN = 1u << 1,
	APRFS_CFG_LAYERS = 1u << 2,
	APRFS_CFG_HEADS = 1u << 3,
	APRFS_CFG_KV_HEADS = 1u << 4,
	APRFS_CFG_VOCAB = 1u << 5,
	APRFS_CFG_INTER = 1u << 6,
	APRFS_CFG_MAXPOS = 1u << 7,
	APRFS_CFG_ROPE_THETA = 1u << 8,
	APRFS_CFG_RMS_EPS = 1u << 9,
	APRFS_CFG_MODEL_TYPE = 1u << 10,
	APRFS_CFG_HF_ARCH = 1u << 11,
	APRFS_CFG_NAME = 1u << 12,
};

typedef struct aprfs_model_config {
	int present;		   /* facts were found (config.json, GGUF keys) */
	uint32_t has;		   /* APRFS_CFG_* bits of the fields below that are set */
	char model_type[64];	   /* "llama": also the metadata's architecture */
	char hf_architecture[128]; /* config.json's architectures[0]: "LlamaForCausalLM" */
	char name[256];		   /* the model's name when the source says (GGUF, hub) */
	uint64_t hidden_size, num_layers, num_heads, num_kv_heads, vocab_size;
	uint64_t intermediate_size, max_position_embeddings;
	double rope_theta, rms_norm_eps; /* finite and within f32 range when set */
} aprfs_model_config;

/* Parse config.json text (len bytes) into *cfg. Wrong JSON types and malformed JSON are
 * errors (-EINVAL, "path: reason"); a number outside f32 range where the metadata wants an
 * f32 is left out with a warning (logged once). cfg->present is set on success. */
int aprfs_config_parse(const char *path, const char *text, size_t len, aprfs_model_config *cfg,
		       aprfs_err *err);

/* The field behind an integer (real) APRFS_CFG_* bit, or NULL for another bit. */
uint64_t *aprfs_config_int(aprfs_model_config *c, uint32_t bit);
double *aprfs_config_real(aprfs_model_config *c, uint32_t bit);

/* aprfs_config_f32_ok(), the f32 range check every source of facts uses: format/aprfmt.h. */

#endif
