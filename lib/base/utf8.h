/* utf8.h - checks on text and numbers that arrive as JSON from untrusted files:
 * strict UTF-8 (no overlongs, surrogates or code points past U+10FFFF) and JSON numbers
 * that must be exact non-negative integers. Shared by safetensors.c and config.c. */
#ifndef APRFS_UTF8_H
#define APRFS_UTF8_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* 1 if s[0..n) is well-formed UTF-8 (RFC 3629), else 0; *bad gets the offending offset. */
int aprfs_utf8_valid(const char *s, size_t n, size_t *bad);

/* s (NUL-terminated) as valid UTF-8: each maximal ill-formed subsequence replaced by
 * U+FFFD (the Unicode "best practice" of W3C/WHATWG decoders). malloc'd, or NULL. */
char *aprfs_utf8_sanitize(const char *s);

/* Add text to JSON object o under key as valid UTF-8 (aprfs_utf8_sanitize): names and paths
 * come from the file system, where any bytes go, and JSON must never carry them raw. */
void aprfs_json_add_text(struct cJSON *o, const char *key, const char *text);

/* Parse text[0..len) as exactly one JSON value: no NUL byte inside (it would end cJSON's
 * parse early and hide what follows), nothing but whitespace after it. NULL if not. */
struct cJSON *aprfs_json_parse(const char *text, size_t len);

/* Largest integer a JSON number (an IEEE double) holds exactly. */
#define APRFS_JSON_INT_MAX (UINT64_C(1) << 53)

enum aprfs_json_uint_status {
	APRFS_JSON_UINT_OK,
	APRFS_JSON_UINT_NOT_NUMBER,
	APRFS_JSON_UINT_NEGATIVE,
	APRFS_JSON_UINT_FRACTION,
	APRFS_JSON_UINT_TOO_BIG,
};

/* Read v as a non-negative integer <= 2^53; returns an aprfs_json_uint_status. */
int aprfs_json_uint(const struct cJSON *v, uint64_t *out);

/* Why aprfs_json_uint refused, as words for a message ("is negative", ...). */
const char *aprfs_json_uint_reason(int status);

/* The first key that occurs twice in JSON object obj, or NULL. cJSON keeps duplicate
 * keys as separate members and lookups return the first, so a checkpoint could show one
 * value to us and another to a different reader; we refuse such objects instead. */
const char *aprfs_json_dup_key(const struct cJSON *obj);

#endif
