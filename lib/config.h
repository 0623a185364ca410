/* config.h - the Hugging Face config.json fields APR metadata carries, parsed and
 * validated (wrong JSON types and out-of-range numbers are refused, aliases such as
 * num_hidden_layers are mapped to the canonical APR names). */
#ifndef APRFS_CONFIG_H
#define APRFS_CONFIG_H

#include <stdint.h>

#include "err.h"

enum {
	APRFS_CFG_ARCH = 1u << 0,
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
};

typedef struct aprfs_model_config {
	int present;		/* a config.json was found and parsed */
	uint32_t has;		/* APRFS_CFG_* bits of the fields below that are set */
	char architecture[128]; /* architectures[0], e.g. "LlamaForCausalLM" */
	char model_type[64];	/* "llama" */
	uint64_t hidden_size, num_layers, num_heads, num_kv_heads, vocab_size;
	uint64_t intermediate_size, max_position_embeddings;
	double rope_theta, rms_norm_eps;
} aprfs_model_config;

/* Parse config.json at path into *cfg. A missing file is not an error (cfg->present = 0);
 * a malformed one is (-EINVAL, "path: reason"). */
int aprfs_config_load(const char *path, aprfs_model_config *cfg, aprfs_err *err);

#endif
