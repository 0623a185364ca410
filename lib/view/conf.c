/* conf.c - parsing and validating the mount's options, from the config file and from
 * `-o`. Every value is checked completely (no trailing junk, no overflow, ranges) so a
 * typo stops the mount with a message instead of silently using a default. */
#include "view/conf.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "cache/diskcache.h"
#include "file/aprfile.h"

#define ALL_VARIANTS APRFS_VARIANT_MASK_ALL

static const char *const our_keys[] = {"variants",  "cache_mb",	     "threads",
				       "nf4_block", "readahead_mb",  "log_level",
				       "cache_dir", "disk_cache_mb", "imatrix"};

void aprfs_conf_default(aprfs_conf *c)
{
	long cores = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->variants = ALL_VARIANTS;
	c->cache_mb = 256;
	c->threads = cores > 0 ? (uint32_t)(cores > 256 ? 256 : cores) : 1;
	c->nf4_block = 64;
	c->readahead_mb = 16;
	c->log_level = APRFS_LOG_WARN;
}

int aprfs_conf_is_ours(const char *key)
{
	if (strncmp(key, "view.", 5) == 0)
		return 1;
	for (size_t i = 0; i < sizeof(our_keys) / sizeof(our_keys[0]); i++)
		if (strcmp(key, our_keys[i]) == 0)
			return 1;
	return 0;
}

/* A decimal integer in [lo, hi] and nothing else: strtoul alone would accept " 12",
 * "-1" (as a huge number) and "12abc". */
static int parse_u32(const char *key, const char *s, uint32_t lo, uint32_t hi, uint32_t *out,
		     aprfs_err *err)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)s[0]))
		return aprfs_fail(err, EINVAL, "%s: '%s' is not a number", key, s);
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0')
		return aprfs_fail(err, EINVAL, "%s: '%s' is not a number", key, s);
	if (errno == ERANGE || v < lo || v > hi)
		return aprfs_fail(err, EINVAL, "%s: %s is out of range [%u, %u]", key, s, lo,
				  hi);
	*out = (uint32_t)v;
	return 0;
}

/* "q8,q4" (also ':' or '+' between names, since ',' is taken by -o lists) or "all". */
static int parse_variants(const char *s, uint32_t *out, aprfs_err *err)
{
	char buf[256], *save = NULL, *tok;
	uint32_t mask = 0;

	if (strlen(s) >= sizeof(buf))
		return aprfs_fail(err, EINVAL, "variants: list too long");
	strcpy(buf, s);
	for (tok = strtok_r(buf, ",:+ \t", &save); tok; tok = strtok_r(NULL, ",:+ \t", &save)) {
		int v = aprfs_variant_index(tok);

		if (strcmp(tok, "all") == 0) {
			mask = ALL_VARIANTS;
			continue;
		}
		if (v < 0) {
			char known[256];
			aprfs_variant_list(known, sizeof(known), " ");
			return aprfs_fail(err, EINVAL,
					  "variants: unknown variant '%s' (known: %s)", tok,
					  known);
		}
		mask |= 1u << v;
	}
	if (!mask)
		return aprfs_fail(err, EINVAL, "variants: empty list");
	*out = mask;
	return 0;
}

/* view.NAME = definition: stored as written (a later line for NAME replaces it). */
static int set_view(aprfs_conf *c, const char *name, const char *value, aprfs_err *err)
{
	int i = 0;
	if (strlen(name) >= sizeof(c->view_name[0]) || strlen(value) >= sizeof(c->view_spec[0]))
		return aprfs_fail(err, EINVAL, "view.%s: name or definition too long", name);
	while (i < c->nviews && strcmp(c->view_name[i], name) != 0)
		i++;
	if (i == APRFS_VIEW_MAX)
		return aprfs_fail(err, EINVAL, "view.%s: more than %d named views", name,
				  APRFS_VIEW_MAX);
	snprintf(c->view_name[i], sizeof(c->view_name[i]), "%s", name);
	snprintf(c->view_spec[i], sizeof(c->view_spec[i]), "%s", value);
	c->nviews = i == c->nviews ? i + 1 : c->nviews;
	return 0;
}

int aprfs_conf_set(aprfs_conf *c, const char *key, const char *value, aprfs_err *err)
{
	if (strncmp(key, "view.", 5) == 0)
		return set_view(c, key + 5, value, err);
	if (strcmp(key, "variants") == 0)
		return parse_variants(value, &c->variants, err);
	if (strcmp(key, "cache_mb") == 0)
		return parse_u32(key, value, 1, 1u << 20, &c->cache_mb, err);
	if (strcmp(key, "threads") == 0)
		return parse_u32(key, value, 1, 256, &c->threads, err);
	if (strcmp(key, "readahead_mb") == 0)
		return parse_u32(key, value, 0, 4096, &c->readahead_mb, err);
	if (strcmp(key, "nf4_block") == 0) {
		uint32_t b;
		int rc = parse_u32(key, value, 2, 1u << 20, &b, err);

		if (rc < 0)
			return rc;
		if (b % 2)
			return aprfs_fail(err, EINVAL, "nf4_block: %u is odd (must be even)",
					  b);
		c->nf4_block = b;
		return 0;
	}
	if (strcmp(key, "disk_cache_mb") == 0) /* up to 16 TiB */
		return parse_u32(key, value, 1, 1u << 24, &c->disk_cache_mb, err);
	if (strcmp(key, "cache_dir") == 0) {
		if (!value[0] || strlen(value) >= sizeof(c->cache_dir))
			return aprfs_fail(err, EINVAL, "cache_dir: '%s' is not a usable path",
					  value);
		snprintf(c->cache_dir, sizeof(c->cache_dir), "%s", value);
		return 0;
	}
	if (strcmp(key, "imatrix") == 0) {
		if (!value[0] || strlen(value) >= sizeof(c->imatrix))
			return aprfs_fail(err, EINVAL,
					  "imatrix: '%s' is not a usable file name", value);
		snprintf(c->imatrix, sizeof(c->imatrix), "%s", value);
		return 0;
	}
	if (strcmp(key, "log_level") == 0) {
		int l = aprfs_log_level_parse(value);

		if (l < 0)
			return aprfs_fail(err, EINVAL,
					  "log_level: '%s' (use error, warn, info or debug)",
					  value);
		c->log_level = l;
		return 0;
	}
	return aprfs_fail(err, EINVAL, "unknown option '%s'", key);
}

int aprfs_conf_apply_opt(aprfs_conf *c, const char *opt, aprfs_err *err)
{
	const char *eq = strchr(opt, '=');
	char key[64];
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	int rc;

	if (!eq && c->variants_open && aprfs_variant_index(opt) >= 0) {
		c->variants |= 1u << aprfs_variant_index(opt);
		return 1;
	}
	c->variants_open = 0;
	if (klen >= sizeof(key))
		return 0;
	memcpy(key, opt, klen);
	key[klen] = '\0';
	if (!aprfs_conf_is_ours(key))
		return 0;
	if (!eq)
		return aprfs_fail(err, EINVAL, "%s: needs a value (%s=...)", key, key);
	rc = aprfs_conf_set(c, key, eq + 1, err);
	if (rc < 0)
		return rc;
	c->variants_open = strcmp(key, "variants") == 0;
	return 1;
}

static char *trim(char *s)
{
	char *e;

	while (isspace((unsigned char)*s))
		s++;
	e = s + strlen(s);
	while (e > s && isspace((unsigned char)e[-1]))
		*--e = '\0';
	return s;
}

/* One non-blank line of the file. */
static int load_line(aprfs_conf *c, char *line, aprfs_err *err)
{
	char *eq = strchr(line, '='), *key, *value;

	if (!eq)
		return aprfs_fail(err, EINVAL, "expected 'key = value'");
	*eq = '\0';
	key = trim(line);
	value = trim(eq + 1);
	if (!*value)
		return aprfs_fail(err, EINVAL, "%s: empty value", key);
	if (strcmp(key, "fuse_options") == 0) {
		size_t used = strlen(c->fuse_opts);

		if (used + strlen(value) + 2 > sizeof(c->fuse_opts))
			return aprfs_fail(err, EINVAL, "fuse_options: too long");
		snprintf(c->fuse_opts + used, sizeof(c->fuse_opts) - used, "%s%s",
			 used ? "," : "", value);
		return 0;
	}
	return aprfs_conf_set(c, key, value, err);
}

int aprfs_conf_load(aprfs_conf *c, const char *path, aprfs_err *err)
{
	char line[1024];
	unsigned lineno = 0;
	int rc = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return aprfs_fail(err, errno, "%s: %s", path, strerror(errno));
	while (rc == 0 && fgets(line, sizeof(line), f)) {
		char *hash = strchr(line, '#'), *s;

		lineno++;
		if (!strchr(line, '\n') && !feof(f)) {
			rc = aprfs_fail(err, EINVAL, "%s:%u: line too long", path, lineno);
			break;
		}
		if (hash)
			*hash = '\0';
		s = trim(line);
		if (!*s)
			continue;
		rc = load_line(c, s, err);
		if (rc < 0) {
			char where[300];

			snprintf(where, sizeof(where), "%s:%u", path, lineno);
			aprfs_err_prefix(err, where);
		}
	}
	if (rc == 0 && ferror(f))
		rc = aprfs_fail(err, EIO, "%s: read error", path);
	fclose(f);
	return rc;
}

int aprfs_conf_check(const aprfs_conf *c, aprfs_err *err)
{
	if (c->disk_cache_mb && !c->cache_dir[0])
		return aprfs_fail(
		    err, EINVAL,
		    "disk_cache_mb: needs cache_dir (the disk cache is off without "
		    "a directory)");
	return 0;
}

uint64_t aprfs_conf_disk_budget(const aprfs_conf *c)
{
	if (!c->cache_dir[0])
		return 0;
	return (uint64_t)(c->disk_cache_mb ? c->disk_cache_mb : APRFS_DISKCACHE_DEFAULT_MB)
	       << 20;
}

void aprfs_conf_variants_str(uint32_t mask, char *buf, size_t size)
{
	size_t used = 0;

	if (size)
		buf[0] = '\0';
	for (int i = 0; i < APRFS_VARIANT_COUNT; i++) {
		if (!(mask & (1u << i)) || used >= size)
			continue;
		used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? "," : "",
					 aprfs_variant_name(i));
	}
}
