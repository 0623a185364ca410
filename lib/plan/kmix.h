/* kmix.h - the q4km mix: which tensors llama.cpp's Q4_K_M writes in Q6_K rather than Q4_K
 * (output, a tied token embedding, attn_v and ffn_down in use_more_bits layers), as pure
 * functions of a tensor's name and the model's layer count, GGUF and Hugging Face names. */
#ifndef APRFS_KMIX_H
#define APRFS_KMIX_H

#include <stddef.h>
#include <stdint.h>

/* What a tensor is, as far as the mix cares. */
typedef enum {
	APRFS_ROLE_OTHER,
	APRFS_ROLE_OUTPUT,     /* output.weight, lm_head.weight */
	APRFS_ROLE_TOKEN_EMBD, /* token_embd.weight, *embed_tokens.weight */
	APRFS_ROLE_ATTN_V,     /* blk.N.attn_v.weight, *layers.N.self_attn.v_proj.weight */
	APRFS_ROLE_FFN_DOWN,   /* blk.N.ffn_down.weight, *layers.N.mlp.down_proj.weight */
} aprfs_tensor_role;

/* Role of a tensor by name; *layer is its layer number (blk.N / layers.N, whatever the
 * role), or -1. A layer count read from names alone is 1 + the largest such number. */
aprfs_tensor_role aprfs_tensor_role_of(const char *name, long *layer);

/* llama.cpp's use_more_bits(i, n) in integer arithmetic: i < n/8, i >= 7n/8, or
 * (i - n/8) % 3 == 2 (C's remainder, which for i < n/8 is never reached). */
int aprfs_use_more_bits(long i, long n);

/* 1 when q4km writes this tensor (one that q4k would write as Q4_K) in Q6_K: the output
 * matrix; the token embedding when tied (the checkpoint has no output matrix of its own,
 * so the embedding serves as output); attn_v and ffn_down in layers where
 * aprfs_use_more_bits(layer, nlayers) holds. nlayers 0 (unknown) gives no layer Q6_K. */
int aprfs_q4km_wants_q6k(const char *name, uint64_t nlayers, int tied_embedding);

#endif
