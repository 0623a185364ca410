/* view.c - parsing named views (view.h): the name's characters, the base variant, each
 * rule's regex (compiled once) and variant; matching a tensor name, first rule wins. */
#include "plan/view.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/sha256.h"
#include "plan/variant.h"

/* The variants a rule may name: every row but the mixes (APRFS_VARIANT_MIX, q4km). */
static int rule_variant_ok(int v)
{
	return v >= 0 && !(aprfs_variants[v].flags & APRFS_VARIANT_MIX);
}

static void rule_variant_list(char *buf, size_t size)
{
	size_t used = 0;

	buf[0] = '\0';
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++) {
		if (!rule_variant_ok(i))
			continue;
		int n = snprintf(buf + used, size - used, "%s%s", used ? " " : "",
				 aprfs_variant_name(i));
		if (n < 0 || (size_t)n >= size - used)
			return;
		used += (size_t)n;
	}
}

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n >= sizeof(((aprfs_view *)0)->name))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		      s[i] == '_' || s[i] == '-'))
			return 0;
	return aprfs_variant_index(s) < 0;
}

/* One "REGEX=VARIANT" token into rule number v->nrules. */
static int add_rule(const char *name, char *tok, aprfs_view *v, aprfs_err *err)
{
	char *eq = strrchr(tok, '=');
	if (!eq || eq == tok)
		return aprfs_fail(err, EINVAL, "view.%s: rule '%s' is not REGEX=VARIANT", name,
				  tok);
	*eq = '\0';
	const int variant = aprfs_variant_index(eq + 1);
	if (!rule_variant_ok(variant)) {
		char known[256];
		rule_variant_list(known, sizeof(known));
		return aprfs_fail(err, EINVAL,
				  "view.%s: rule '%s=%s': unknown variant (rules take %s)",
				  name, tok, eq + 1, known);
	}
	if (v->nrules == APRFS_VIEW_MAX_RULES)
		return aprfs_fail(err, EINVAL, "view.%s: more than %d rules", name,
				  APRFS_VIEW_MAX_RULES);
	aprfs_view_rule *r = &v->rules[v->nrules];
	int rc = regcomp(&r->re, tok, REG_EXTENDED | REG_NOSUB);
	if (rc) {
		char why[128];
		regerror(rc, &r->re, why, sizeof(why));
		return aprfs_fail(err, EINVAL, "view.%s: rule '%s': invalid regex: %s", name,
				  tok, why);
	}
	r->variant = variant;
	v->nrules++;
	return 0;
}

int aprfs_view_parse(const char *name, const char *spec, aprfs_view *v, aprfs_err *err)
{
	char buf[sizeof(v->spec)], *save = NULL;
	memset(v, 0, sizeof(*v));
	v->base = -1;
	if (!name_ok(name))
		return aprfs_fail(err, EINVAL,
				  "view.%s: a view name is 1-39 of a-z 0-9 _ - and not a "
				  "variant's name",
				  name);
	if (strlen(spec) >= sizeof(buf))
		return aprfs_fail(err, EINVAL, "view.%s: definition too long", name);
	snprintf(v->name, sizeof(v->name), "%s", name);
	snprintf(v->spec, sizeof(v->spec), "%s", spec);
	snprintf(buf, sizeof(buf), "%s", spec);
	char *tok = strtok_r(buf, " \t", &save);
	if (!tok || (v->base = aprfs_variant_index(tok)) < 0) {
		char known[256];
		aprfs_variant_list(known, sizeof(known), " ");
		return aprfs_fail(err, EINVAL,
				  "view.%s: '%s' is not a base variant (one of %s)", name,
				  tok ? tok : "", known);
	}
	while ((tok = strtok_r(NULL, " \t", &save)))
		if (add_rule(name, tok, v, err))
			return -err->code;
	char text[sizeof(v->name) + sizeof(v->spec) + 2];
	uint8_t d[32];
	snprintf(text, sizeof(text), "%s\n%s", v->name, v->spec);
	aprfs_sha256(text, strlen(text), d);
	memcpy(v->hash, d, sizeof(v->hash));
	return 0;
}

void aprfs_view_free(aprfs_view *v)
{
	for (size_t i = 0; i < v->nrules; i++)
		regfree(&v->rules[i].re);
	v->nrules = 0;
}

int aprfs_view_variant(const aprfs_view *v, const char *tensor, int *rule)
{
	for (size_t i = 0; i < v->nrules; i++) {
		if (regexec(&v->rules[i].re, tensor, 0, NULL, 0) == 0) {
			*rule = (int)i;
			return v->rules[i].variant;
		}
	}
	*rule = -1;
	return v->base;
}
