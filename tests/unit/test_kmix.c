/* test_kmix.c - the q4km mix rule: tensor roles from GGUF and Hugging Face names,
 * use_more_bits and the layer tables for 16, 32 and 80 layers (the ones the README
 * prints), output and tied embeddings. */
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "plan/kmix.h"

static void test_roles(void)
{
	static const struct {
		const char *name;
		aprfs_tensor_role role;
		long layer;
	} cases[] = {
	    {"output.weight", APRFS_ROLE_OUTPUT, -1},
	    {"lm_head.weight", APRFS_ROLE_OUTPUT, -1},
	    {"model.lm_head.weight", APRFS_ROLE_OUTPUT, -1},
	    {"xlm_head.weight", APRFS_ROLE_OTHER, -1},
	    {"token_embd.weight", APRFS_ROLE_TOKEN_EMBD, -1},
	    {"model.embed_tokens.weight", APRFS_ROLE_TOKEN_EMBD, -1},
	    {"blk.0.attn_v.weight", APRFS_ROLE_ATTN_V, 0},
	    {"blk.31.ffn_down.weight", APRFS_ROLE_FFN_DOWN, 31},
	    {"blk.3.attn_k.weight", APRFS_ROLE_OTHER, 3},
	    {"blk.3.attn_v.bias", APRFS_ROLE_OTHER, 3},
	    {"model.layers.7.self_attn.v_proj.weight", APRFS_ROLE_ATTN_V, 7},
	    {"model.layers.12.mlp.down_proj.weight", APRFS_ROLE_FFN_DOWN, 12},
	    {"model.layers.12.mlp.up_proj.weight", APRFS_ROLE_OTHER, 12},
	    {"layers.2.mlp.down_proj.weight", APRFS_ROLE_FFN_DOWN, 2},
	    {"model.layers.x.mlp.down_proj.weight", APRFS_ROLE_OTHER, -1},
	    {"blk.99999999999.attn_v.weight", APRFS_ROLE_OTHER, -1},
	    {"output_norm.weight", APRFS_ROLE_OTHER, -1},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		long layer = -2;
		aprfs_tensor_role r = aprfs_tensor_role_of(cases[i].name, &layer);
		CHECK(r == cases[i].role, "%s: role %d", cases[i].name, (int)r);
		CHECK(layer == cases[i].layer, "%s: layer %ld", cases[i].name, layer);
	}
}

/* The use_more_bits layers as a list "0 1 4 ...". */
static void table(long n, char *out, size_t cap)
{
	size_t at = 0;
	out[0] = 0;
	for (long i = 0; i < n && at < cap; i++)
		if (aprfs_use_more_bits(i, n))
			at += (size_t)snprintf(out + at, cap - at, at ? " %ld" : "%ld", i);
}

static void test_tables(void)
{
	char t[512];
	table(16, t, sizeof(t));
	CHECK(strcmp(t, "0 1 4 7 10 13 14 15") == 0, "16: %s", t);
	table(32, t, sizeof(t));
	CHECK(strcmp(t, "0 1 2 3 6 9 12 15 18 21 24 27 28 29 30 31") == 0, "32: %s", t);
	table(80, t, sizeof(t));
	CHECK(strcmp(t, "0 1 2 3 4 5 6 7 8 9 12 15 18 21 24 27 30 33 36 39 42 45 48 51 54 57 "
			"60 63 66 69 70 71 72 73 74 75 76 77 78 79") == 0,
	      "80: %s", t);
}

static void test_choice(void)
{
	CHECK(aprfs_q4km_wants_q6k("output.weight", 16, 0));
	CHECK(aprfs_q4km_wants_q6k("lm_head.weight", 0, 0));
	CHECK(!aprfs_q4km_wants_q6k("token_embd.weight", 16, 0));
	CHECK(aprfs_q4km_wants_q6k("token_embd.weight", 16, 1));
	CHECK(aprfs_q4km_wants_q6k("model.embed_tokens.weight", 16, 1));
	CHECK(aprfs_q4km_wants_q6k("blk.4.attn_v.weight", 16, 0));
	CHECK(!aprfs_q4km_wants_q6k("blk.5.attn_v.weight", 16, 0));
	CHECK(aprfs_q4km_wants_q6k("model.layers.13.mlp.down_proj.weight", 16, 0));
	CHECK(!aprfs_q4km_wants_q6k("model.layers.12.mlp.down_proj.weight", 16, 0));
	CHECK(!aprfs_q4km_wants_q6k("blk.4.attn_q.weight", 16, 0));
	CHECK(!aprfs_q4km_wants_q6k("blk.4.ffn_up.weight", 16, 0));
	/* unknown layer count, or a layer past it: no layer gets Q6_K */
	CHECK(!aprfs_q4km_wants_q6k("blk.0.attn_v.weight", 0, 0));
	CHECK(!aprfs_q4km_wants_q6k("blk.16.attn_v.weight", 16, 0));
	/* 1 layer: n/8 = 0, 7n/8 = 0, so layer 0 gets Q6_K (i >= 0) */
	CHECK(aprfs_q4km_wants_q6k("blk.0.ffn_down.weight", 1, 0));
}

int main(void)
{
	test_roles();
	test_tables();
	test_choice();
	return check_done("kmix");
}
