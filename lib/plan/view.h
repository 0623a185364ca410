/* view.h - named views from the configuration: a base variant and an ordered list of
 * (tensor-name regex -> variant) rules, the first match winning, as llama-quantize's
 * --tensor-type; each appears beside a checkpoint X as X.NAME.apr. */
#ifndef APRFS_VIEW_H
#define APRFS_VIEW_H

#include <regex.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define APRFS_VIEW_MAX	     8	/* named views per mount */
#define APRFS_VIEW_MAX_RULES 32 /* rules per view */

typedef struct aprfs_view_rule {
	regex_t re; /* POSIX extended, searched anywhere in the name */
	int variant;
} aprfs_view_rule;

typedef struct aprfs_view {
	char name[40];	 /* [a-z0-9_-], not a built-in variant's name */
	char spec[1024]; /* the definition as written: "q4k attn_v=q6k ..." */
	int base;	 /* variant index (q4km included) */
	size_t nrules;
	aprfs_view_rule rules[APRFS_VIEW_MAX_RULES];
	uint8_t hash[16]; /* of name and definition: joins the view's cache keys */
} aprfs_view;

/* Parse the value of config key view.NAME: "BASE [REGEX=VARIANT]...", whitespace
 * separated, each rule split at its last '='; rule variants are the codec variants (f32
 * ... ternary). Every error message names the key ("view.NAME: ..."). Free with
 * aprfs_view_free, also after a failure. */
int aprfs_view_parse(const char *name, const char *spec, aprfs_view *v, aprfs_err *err);
void aprfs_view_free(aprfs_view *v);

/* The variant tensor `tensor` gets: the first matching rule's, else the base; *rule is
 * the rule's number or -1. */
int aprfs_view_variant(const aprfs_view *v, const char *tensor, int *rule);

#endif
