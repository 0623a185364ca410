/* fuzz_apr_reader.c - libFuzzer harness of the strict APR reader behind `aprfs inspect`
 * (apr_verify_buffer): any bytes as an APR file, then again with both checksums made right
 * so the checks behind them are reached. Asserts clean refusals and sound accepted files. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "base/crc.h"
#include "format/aprfmt.h"
#include "format/aprread.h"
#include "fuzz.h"

#define FUZZ_MAX_LEN 20480
#define PATH	     "fuzz.apr"

/* What inspect prints from an accepted file must describe bytes inside the file, in the
 * contract's order. */
static void check_accepted(const apr_file *f)
{
	uint64_t data_len = f->size - APR_FOOTER_SIZE - f->data_offset;

	FUZZ_CHECK(cJSON_IsObject(f->meta), "metadata not an object");
	FUZZ_CHECK(f->nentries == f->tensor_count, "%u entries of %u", f->nentries,
		   f->tensor_count);
	FUZZ_CHECK(f->meta_offset == APR_HEADER_SIZE && f->index_offset <= f->data_offset &&
		       f->data_offset % APR_ALIGN == 0 && f->data_offset <= f->size - 4,
		   "sections out of place");
	for (uint32_t i = 0; i < f->nentries; i++) {
		const apr_entry *e = &f->entries[i];

		FUZZ_CHECK(e->name_len >= 1 && e->name_len <= APR_MAX_NAME && e->ndim <= 8,
			   "entry %u", i);
		FUZZ_CHECK(e->offset % APR_ALIGN == 0 && e->offset <= data_len &&
			       e->size <= data_len - e->offset,
			   "'%s' outside the data section", e->name);
		FUZZ_CHECK(apr_dtype_payload(e->dtype, e->nelem, 0) == UINT64_MAX ||
			       apr_dtype_payload(e->dtype, e->nelem, 0) == e->size,
			   "'%s': size does not match its dtype", e->name);
		if (i > 0)
			FUZZ_CHECK(memcmp(f->entries[i - 1].name, e->name,
					  (f->entries[i - 1].name_len < e->name_len
					       ? f->entries[i - 1].name_len
					       : e->name_len) +
					      1u) < 0,
				   "index not sorted at '%s'", e->name);
	}
}

static void verify(const uint8_t *p, size_t size)
{
	apr_file f;
	aprfs_err err = {0};
	int rc = apr_verify_buffer(PATH, p, size, &f, &err);

	if (rc)
		fuzz_check_refusal(rc, &err, PATH);
	else
		check_accepted(&f);
	FUZZ_CHECK(f.nentries <= f.tensor_count, "%u entries of %u", f.nentries,
		   f.tensor_count);
	apr_close(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *p;

	if (size > FUZZ_MAX_LEN)
		return 0;
	p = fuzz_guarded(data, size);
	verify(p, size);
	if (size < APR_HEADER_SIZE + APR_FOOTER_SIZE)
		return 0;
	apr_put32(p + APR_OFF_CHECKSUM, apr_header_checksum(p));
	apr_put32(p + size - APR_FOOTER_SIZE, aprfs_crc32(0, p, size - APR_FOOTER_SIZE));
	verify(p, size);
	return 0;
}
