/* kmix.c - the q4km mix rule (kmix.h): tensor roles from GGUF and Hugging Face names,
 * llama.cpp's use_more_bits, and the choice of Q6_K per tensor. */
#include "plan/kmix.h"

#include <stdlib.h>
#include <string.h>

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The name whole, or its last component(s) after a '.': "lm_head.weight" matches
 * "lm_head.weight" and "x.lm_head.weight", not "xlm_head.weight". */
static int is_or_ends(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);
	return strcmp(s, tail) == 0 || (n > k && s[n - k - 1] == '.' && ends_with(s, tail));
}

/* After "blk." at the start or "layers." at the start or after a '.': the layer number
 * and the rest of the name past "N.". NULL when the name has no layer. */
static const char *layer_part(const char *name, long *layer)
{
	const char *p = NULL;
	if (strncmp(name, "blk.", 4) == 0)
		p = name + 4;
	else if (strncmp(name, "layers.", 7) == 0)
		p = name + 7;
	else if ((p = strstr(name, ".layers.")))
		p += 8;
	if (!p || *p < '0' || *p > '9')
		return NULL;
	char *end;
	long v = strtol(p, &end, 10);
	if (*end != '.' || end - p > 9)
		return NULL;
	*layer = v;
	return end + 1;
}

aprfs_tensor_role aprfs_tensor_role_of(const char *name, long *layer)
{
	long l = -1;
	const char *rest = layer_part(name, &l);
	*layer = l;
	if (!rest) {
		if (strcmp(name, "output.weight") == 0 || is_or_ends(name, "lm_head.weight"))
			return APRFS_ROLE_OUTPUT;
		if (strcmp(name, "token_embd.weight") == 0 ||
		    is_or_ends(name, "embed_tokens.weight"))
			return APRFS_ROLE_TOKEN_EMBD;
		return APRFS_ROLE_OTHER;
	}
	if (strcmp(rest, "attn_v.weight") == 0 || strcmp(rest, "self_attn.v_proj.weight") == 0)
		return APRFS_ROLE_ATTN_V;
	if (strcmp(rest, "ffn_down.weight") == 0 || strcmp(rest, "mlp.down_proj.weight") == 0)
		return APRFS_ROLE_FFN_DOWN;
	return APRFS_ROLE_OTHER;
}

int aprfs_use_more_bits(long i, long n)
{
	return i < n / 8 || i >= 7 * n / 8 || (i - n / 8) % 3 == 2;
}

int aprfs_q4km_wants_q6k(const char *name, uint64_t nlayers, int tied_embedding)
{
	long layer;
	switch (aprfs_tensor_role_of(name, &layer)) {
	case APRFS_ROLE_OUTPUT: return 1;
	case APRFS_ROLE_TOKEN_EMBD: return tied_embedding;
	case APRFS_ROLE_ATTN_V:
	case APRFS_ROLE_FFN_DOWN:
		return nlayers > 0 && nlayers < (1u << 30) && (uint64_t)layer < nlayers &&
		       aprfs_use_more_bits(layer, (long)nlayers);
	default: return 0;
	}
}
