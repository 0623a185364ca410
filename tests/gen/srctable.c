/* srctable.c - aprfs' own view of a checkpoint's tensor table, as JSON, for the tests to
 * compare with independent readers (gguf_ref.py, @huggingface/gguf): name, type, GGML-order
 * dims (fastest first) and absolute data offset of every tensor, sorted by name. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "source/source.h"

int main(int argc, char **argv)
{
	aprfs_source *s = NULL;
	aprfs_err err = {0};

	if (argc != 2) {
		fprintf(stderr, "usage: srctable CHECKPOINT\n");
		return 2;
	}
	if (aprfs_source_open(argv[1], NULL, &s, &err) != 0) {
		fprintf(stderr, "srctable: %s\n", err.msg);
		return 1;
	}
	const uint32_t *order = aprfs_source_name_order(s);
	cJSON *all = cJSON_CreateArray();
	for (size_t j = 0; j < aprfs_source_count(s); j++) {
		const aprfs_tensor *t = aprfs_source_tensor(s, order[j]);
		cJSON *o = cJSON_CreateObject(), *ne = cJSON_CreateArray();
		aprfs_json_add_text(o, "name", t->name);
		cJSON_AddStringToObject(o, "type", aprfs_src_dtype_name(t->dtype));
		for (int d = t->ndim - 1; d >= 0; d--)
			cJSON_AddItemToArray(ne, cJSON_CreateNumber((double)t->dims[d]));
		cJSON_AddItemToObject(o, "ne", ne);
		cJSON_AddNumberToObject(o, "abs_offset", (double)t->file_off);
		cJSON_AddItemToArray(all, o);
	}
	char *text = cJSON_PrintUnformatted(all);
	puts(text ? text : "null");
	free(text);
	cJSON_Delete(all);
	aprfs_source_unref(s);
	return 0;
}
