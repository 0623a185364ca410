/* fuzz_st_header.c - libFuzzer harness of the safetensors header parser
 * (aprfs_st_parse_header). Input: 8 bytes of data-section length (little-endian), then the
 * JSON header. Asserts every accepted table is sound and agrees with cJSON's whole parse. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "fuzz.h"
#include "source/source_impl.h"

#define FUZZ_MAX_LEN 16384
#define PATH	     "fuzz.safetensors"
#define SHARD	     3u

static int cmp_name(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* What the parser returned must hold whatever the input: names, sizes, extents inside
 * the data section, data order, no two non-empty tensors sharing a byte, unique names. */
static void check_table(const aprfs_tensor *t, size_t n, uint64_t base, uint64_t data_len)
{
	uint64_t max_end = 0;
	char **names = malloc((n + 1) * sizeof(*names));

	FUZZ_CHECK(names != NULL, "out of memory");
	for (size_t i = 0; i < n; i++) {
		size_t bad, len = strlen(t[i].name);
		uint64_t nelem = 1, be = aprfs_src_dtype_block_elems(t[i].dtype);

		FUZZ_CHECK(len >= 1 && len <= APRFS_MAX_NAME && len == t[i].name_len,
			   "name length %zu (name_len %u)", len, t[i].name_len);
		FUZZ_CHECK(aprfs_utf8_valid(t[i].name, len, &bad), "name not UTF-8");
		FUZZ_CHECK(t[i].shard == SHARD, "shard %u", t[i].shard);
		FUZZ_CHECK(t[i].dtype < APRFS_SRC_COUNT && t[i].ndim <= APRFS_MAX_NDIM,
			   "dtype %d ndim %u", t[i].dtype, t[i].ndim);
		for (int d = 0; d < t[i].ndim; d++)
			FUZZ_CHECK(!__builtin_mul_overflow(nelem, t[i].dims[d], &nelem),
				   "'%s': nelem overflows", t[i].name);
		FUZZ_CHECK(nelem == t[i].nelem, "'%s': nelem %llu, dims say %llu", t[i].name,
			   (unsigned long long)t[i].nelem, (unsigned long long)nelem);
		FUZZ_CHECK(nelem % be == 0 &&
			       t[i].nbytes ==
				   nelem / be * aprfs_src_dtype_block_bytes(t[i].dtype),
			   "'%s': nbytes %llu", t[i].name, (unsigned long long)t[i].nbytes);
		FUZZ_CHECK(t[i].file_off >= base && t[i].file_off - base <= data_len &&
			       t[i].nbytes <= data_len - (t[i].file_off - base),
			   "'%s': [%llu, +%llu) outside the data section", t[i].name,
			   (unsigned long long)t[i].file_off, (unsigned long long)t[i].nbytes);
		if (i > 0)
			FUZZ_CHECK(t[i - 1].file_off < t[i].file_off ||
				       (t[i - 1].file_off == t[i].file_off &&
					strcmp(t[i - 1].name, t[i].name) < 0),
				   "'%s' out of data order", t[i].name);
		if (t[i].nbytes) {
			FUZZ_CHECK(t[i].file_off >= max_end, "'%s' overlaps", t[i].name);
			max_end = t[i].file_off + t[i].nbytes;
		}
		names[i] = t[i].name;
	}
	qsort(names, n, sizeof(*names), cmp_name);
	for (size_t i = 1; i < n; i++)
		FUZZ_CHECK(strcmp(names[i - 1], names[i]) != 0, "'%s' twice", names[i]);
	free(names);
}

/* The parser walks the top level itself and hands each value to cJSON; a header it accepts
 * must be one cJSON accepts whole, with the same entries. */
static void check_against_cjson(const char *hdr, size_t len, const aprfs_tensor *t, size_t n,
				uint64_t base)
{
	cJSON *root = aprfs_json_parse(hdr, len);
	size_t members = 0;

	FUZZ_CHECK(cJSON_IsObject(root), "accepted a header cJSON refuses as a whole");
	for (const cJSON *e = root->child; e; e = e->next)
		members += strcmp(e->string, "__metadata__") != 0;
	FUZZ_CHECK(members == n, "%zu tensors, cJSON sees %zu", n, members);
	for (size_t i = 0; i < n; i++) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(root, t[i].name);
		const cJSON *o = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
		const cJSON *s = cJSON_GetObjectItemCaseSensitive(e, "shape");
		aprfs_src_dtype dt;
		uint64_t begin = 0;

		FUZZ_CHECK(e && o && s, "'%s' not found by cJSON", t[i].name);
		FUZZ_CHECK(aprfs_json_uint(cJSON_GetArrayItem(o, 0), &begin) ==
				   APRFS_JSON_UINT_OK &&
			       begin + base == t[i].file_off,
			   "'%s': offset differs", t[i].name);
		FUZZ_CHECK(
		    aprfs_src_dtype_parse(
			cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring, &dt) == 0 &&
			dt == t[i].dtype,
		    "'%s': dtype differs", t[i].name);
		FUZZ_CHECK(cJSON_GetArraySize(s) == t[i].ndim, "'%s': ndim differs", t[i].name);
	}
	cJSON_Delete(root);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	aprfs_tensor *t = NULL;
	aprfs_err err = {0};
	size_t n = 0, hlen;
	uint64_t data_len, base;
	const char *hdr;
	int rc;

	if (size < 8 || size > FUZZ_MAX_LEN)
		return 0;
	data_len = fuzz_le64(data);
	hlen = size - 8;
	base = 8 + hlen;
	hdr = (const char *)fuzz_guarded(data + 8, hlen);
	rc = aprfs_st_parse_header(PATH, hdr, hlen, base, data_len, SHARD, &t, &n, &err);
	if (rc) {
		fuzz_check_refusal(rc, &err, PATH);
		FUZZ_CHECK(t == NULL && n == 0, "refused, yet %zu tensors returned", n);
		return 0;
	}
	check_table(t, n, base, data_len);
	check_against_cjson(hdr, hlen, t, n, base);
	aprfs_tensors_free(t, n);
	return 0;
}
