/* utf8.c - strict UTF-8 validation and the JSON number and duplicate-key checks used on
 * every untrusted JSON document (safetensors headers, shard indexes, config.json). Pure
 * functions over their arguments; no state. */
#include "base/utf8.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Length of the sequence lead byte c starts, with the allowed range of the second byte
 * (narrowed for E0/ED/F0/F4 so overlongs, surrogates and > U+10FFFF are refused). */
static int utf8_lead(unsigned char c, unsigned char *lo, unsigned char *hi)
{
	*lo = 0x80;
	*hi = 0xBF;
	if (c >= 0xC2 && c <= 0xDF)
		return 2;
	if (c >= 0xE0 && c <= 0xEF) {
		if (c == 0xE0)
			*lo = 0xA0; /* below is an overlong 3-byte form */
		if (c == 0xED)
			*hi = 0x9F; /* above is a UTF-16 surrogate */
		return 3;
	}
	if (c >= 0xF0 && c <= 0xF4) {
		if (c == 0xF0)
			*lo = 0x90; /* below is an overlong 4-byte form */
		if (c == 0xF4)
			*hi = 0x8F; /* above is past U+10FFFF */
		return 4;
	}
	return 0; /* 80..C1 (continuation or overlong lead) and F5..FF never start a char */
}

int aprfs_utf8_valid(const char *s, size_t n, size_t *bad)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;

	while (i < n) {
		unsigned char lo, hi;
		int len;

		if (p[i] < 0x80) {
			i++;
			continue;
		}
		len = utf8_lead(p[i], &lo, &hi);
		if (len == 0 || n - i < (size_t)len || p[i + 1] < lo || p[i + 1] > hi)
			goto fail;
		for (int k = 2; k < len; k++)
			if ((p[i + k] & 0xC0) != 0x80)
				goto fail;
		i += (size_t)len;
	}
	return 1;
fail:
	if (bad)
		*bad = i;
	return 0;
}

char *aprfs_utf8_sanitize(const char *s)
{
	size_t n = strlen(s), at = 0, o = 0;
	char *out = malloc(3 * n + 1); /* each bad byte becomes at most 3 */

	if (!out)
		return NULL;
	while (at < n) {
		size_t bad = n - at;
		if (aprfs_utf8_valid(s + at, n - at, &bad)) {
			bad = n - at;
		}
		memcpy(out + o, s + at, bad);
		o += bad;
		at += bad;
		if (at == n)
			break;
		/* One U+FFFD for the longest prefix of a valid sequence (or one byte). */
		unsigned char lo, hi;
		int len = utf8_lead((unsigned char)s[at], &lo, &hi), k = 1;
		if (len && at + 1 < n && (unsigned char)s[at + 1] >= lo &&
		    (unsigned char)s[at + 1] <= hi) {
			k = 2;
			while (k < len && at + (size_t)k < n &&
			       ((unsigned char)s[at + (size_t)k] & 0xC0) == 0x80)
				k++;
		}
		memcpy(out + o, "\xEF\xBF\xBD", 3);
		o += 3;
		at += (size_t)k;
	}
	out[o] = '\0';
	return out;
}

void aprfs_json_add_text(cJSON *o, const char *key, const char *text)
{
	char *clean = aprfs_utf8_sanitize(text);

	cJSON_AddStringToObject(o, key, clean ? clean : "");
	free(clean);
}

cJSON *aprfs_json_parse(const char *text, size_t len)
{
	const char *end = NULL;
	cJSON *v;

	if (memchr(text, 0, len) || !(v = cJSON_ParseWithLengthOpts(text, len, &end, 0)))
		return NULL;
	while (end < text + len && (unsigned char)*end <= ' ')
		end++;
	if (end != text + len) {
		cJSON_Delete(v);
		return NULL;
	}
	return v;
}

int aprfs_json_uint(const struct cJSON *v, uint64_t *out)
{
	double d;

	if (!cJSON_IsNumber(v))
		return APRFS_JSON_UINT_NOT_NUMBER;
	d = v->valuedouble;
	if (isnan(d))
		return APRFS_JSON_UINT_NOT_NUMBER;
	if (d < 0)
		return APRFS_JSON_UINT_NEGATIVE;
	/* Compare as doubles before converting: casting a value past UINT64_MAX is UB. */
	if (d > (double)APRFS_JSON_INT_MAX)
		return APRFS_JSON_UINT_TOO_BIG;
	if (d != floor(d))
		return APRFS_JSON_UINT_FRACTION;
	*out = (uint64_t)d;
	return APRFS_JSON_UINT_OK;
}

const char *aprfs_json_uint_reason(int status)
{
	switch (status) {
	case APRFS_JSON_UINT_OK: return "is fine";
	case APRFS_JSON_UINT_NOT_NUMBER: return "is not a number";
	case APRFS_JSON_UINT_NEGATIVE: return "is negative";
	case APRFS_JSON_UINT_FRACTION: return "is not an integer";
	default: return "exceeds 2^53";
	}
}

static int cmp_str_ptr(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

const char *aprfs_json_dup_key(const struct cJSON *obj)
{
	const char **keys;
	const char *dup = NULL;
	size_t n = 0, i = 0;
	const cJSON *m;

	for (m = obj->child; m; m = m->next)
		n++;
	if (n < 2)
		return NULL;
	/* Sorting makes this O(n log n): a 100 MB header can hold a million keys. */
	keys = malloc(n * sizeof(*keys));
	if (!keys)
		return NULL;
	for (m = obj->child; m; m = m->next)
		keys[i++] = m->string ? m->string : "";
	qsort(keys, n, sizeof(*keys), cmp_str_ptr);
	for (i = 1; i < n && !dup; i++)
		if (strcmp(keys[i - 1], keys[i]) == 0)
			dup = keys[i];
	free(keys);
	return dup;
}
