/* test_view.c - named views: parsing (base, rules, names, every error naming its key),
 * first-match-wins lookups by GGUF and Hugging Face names, the definition's hash. */
#include <string.h>

#include "check.h"
#include "plan/variant.h"
#include "plan/view.h"

static void test_parse_and_match(void)
{
	aprfs_view v;
	aprfs_err err = {0};
	int rule;
	CHECK(aprfs_view_parse("mix", "q4k attn_v=q6k (ffn_down|down_proj)=q6k output=q8", &v,
			       &err) == 0,
	      "%s", err.msg);
	CHECK(v.base == aprfs_variant_index("q4k") && v.nrules == 3);
	CHECK(aprfs_view_variant(&v, "blk.3.attn_v.weight", &rule) ==
		  aprfs_variant_index("q6k") &&
	      rule == 0);
	CHECK(aprfs_view_variant(&v, "model.layers.3.mlp.down_proj.weight", &rule) ==
		  aprfs_variant_index("q6k") &&
	      rule == 1);
	CHECK(aprfs_view_variant(&v, "output.weight", &rule) == aprfs_variant_index("q8") &&
	      rule == 2);
	CHECK(aprfs_view_variant(&v, "blk.3.attn_q.weight", &rule) == v.base && rule == -1);
	aprfs_view w;
	CHECK(aprfs_view_parse("mix2", "q4k attn_v=q6k", &w, &err) == 0);
	CHECK(memcmp(v.hash, w.hash, sizeof(v.hash)) != 0, "the definition is in the hash");
	aprfs_view_free(&v);
	aprfs_view_free(&w);
	/* first match wins: a later rule for the same tensor is not reached */
	CHECK(aprfs_view_parse("fm", "q8 attn=q4 attn_v=q6k", &v, &err) == 0);
	CHECK(aprfs_view_variant(&v, "blk.0.attn_v.weight", &rule) ==
	      aprfs_variant_index("q4"));
	aprfs_view_free(&v);
	CHECK(aprfs_view_parse("m", "q4km", &v, &err) == 0 && v.nrules == 0, "a mix as base");
	aprfs_view_free(&v);
}

static void test_errors(void)
{
	static const struct {
		const char *name, *spec, *want;
	} bad[] = {
	    {"mix", "q5k", "view.mix: 'q5k' is not a base variant"},
	    {"mix", "", "view.mix: '' is not a base variant"},
	    {"mix", "q4k attn_v=q5k", "view.mix: rule 'attn_v=q5k': unknown variant"},
	    {"mix", "q4k attn_v=q4km", "view.mix: rule 'attn_v=q4km': unknown variant"},
	    {"mix", "q4k attn_v", "view.mix: rule 'attn_v' is not REGEX=VARIANT"},
	    {"mix", "q4k =q6k", "view.mix: rule '=q6k' is not REGEX=VARIANT"},
	    {"mix", "q4k attn[=q6k", "view.mix: rule 'attn[': invalid regex"},
	    {"q4k", "q8", "view.q4k: a view name"},
	    {"Mix", "q8", "view.Mix: a view name"},
	    {"a/b", "q8", "view.a/b: a view name"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		aprfs_view v;
		aprfs_err err = {0};
		CHECK(aprfs_view_parse(bad[i].name, bad[i].spec, &v, &err) < 0 &&
			  strncmp(err.msg, bad[i].want, strlen(bad[i].want)) == 0,
		      "%s = %s: %s", bad[i].name, bad[i].spec, err.msg);
		aprfs_view_free(&v);
	}
}

int main(void)
{
	test_parse_and_match();
	test_errors();
	return check_done("view");
}
