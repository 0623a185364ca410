/* dtype.c - tables behind dtype.h: names, block geometry, the APR id each source type
 * passes through as, and GGML's type ids (ggml.h's enum ggml_type). */
#include "format/dtype.h"

#include <string.h>

#define NO_APR 0xff

static const struct {
	const char *name;
	uint32_t block_elems, block_bytes;
	uint8_t apr_id;
	int ggml_id; /* -1: not a GGML type */
	int is_float;
} src_types[APRFS_SRC_COUNT] = {
    [APRFS_SRC_F32] = {"F32", 1, 4, APR_DT_F32, 0, 1},
    [APRFS_SRC_F16] = {"F16", 1, 2, APR_DT_F16, 1, 1},
    [APRFS_SRC_BF16] = {"BF16", 1, 2, APR_DT_BF16, 30, 1},
    [APRFS_SRC_F64] = {"F64", 1, 8, APR_DT_F64, 28, 0},
    [APRFS_SRC_I64] = {"I64", 1, 8, APR_DT_I64, 27, 0},
    [APRFS_SRC_I32] = {"I32", 1, 4, APR_DT_I32, 26, 0},
    [APRFS_SRC_I8] = {"I8", 1, 1, APR_DT_I8, 24, 0},
    [APRFS_SRC_U8] = {"U8", 1, 1, APR_DT_U8, -1, 0},
    [APRFS_SRC_BOOL] = {"BOOL", 1, 1, APR_DT_U8, -1, 0},
    [APRFS_SRC_Q8_0] = {"Q8_0", 32, 34, NO_APR, 8, 1},
    [APRFS_SRC_Q4_0] = {"Q4_0", 32, 18, NO_APR, 2, 1},
    [APRFS_SRC_Q4_1] = {"Q4_1", 32, 20, NO_APR, 3, 1},
    [APRFS_SRC_Q5_0] = {"Q5_0", 32, 22, NO_APR, 6, 1},
    [APRFS_SRC_Q5_1] = {"Q5_1", 32, 24, NO_APR, 7, 1},
    [APRFS_SRC_Q2_K] = {"Q2_K", 256, 84, NO_APR, 10, 1},
    [APRFS_SRC_Q3_K] = {"Q3_K", 256, 110, NO_APR, 11, 1},
    [APRFS_SRC_Q4_K] = {"Q4_K", 256, 144, APR_DT_Q4_K, 12, 1},
    [APRFS_SRC_Q5_K] = {"Q5_K", 256, 176, NO_APR, 13, 1},
    [APRFS_SRC_Q6_K] = {"Q6_K", 256, 210, APR_DT_Q6_K, 14, 1},
};

uint32_t aprfs_src_dtype_block_elems(aprfs_src_dtype d)
{
	return src_types[d].block_elems;
}
uint32_t aprfs_src_dtype_block_bytes(aprfs_src_dtype d)
{
	return src_types[d].block_bytes;
}
size_t aprfs_src_dtype_size(aprfs_src_dtype d)
{
	return src_types[d].block_elems == 1 ? src_types[d].block_bytes : 0;
}
const char *aprfs_src_dtype_name(aprfs_src_dtype d)
{
	return src_types[d].name;
}
uint8_t aprfs_src_dtype_passthrough_id(aprfs_src_dtype d)
{
	return src_types[d].apr_id;
}
int aprfs_src_dtype_is_float(aprfs_src_dtype d)
{
	return src_types[d].is_float;
}
int aprfs_src_dtype_ggml_id(aprfs_src_dtype d)
{
	return src_types[d].ggml_id;
}

aprfs_src_dtype aprfs_src_dtype_from_ggml(uint32_t ggml_type)
{
	for (int i = 0; i < APRFS_SRC_COUNT; i++)
		if (src_types[i].ggml_id >= 0 && (uint32_t)src_types[i].ggml_id == ggml_type)
			return (aprfs_src_dtype)i;
	return APRFS_SRC_COUNT;
}

/* Only safetensors' plain types have a safetensors spelling. */
int aprfs_src_dtype_parse(const char *s, aprfs_src_dtype *out)
{
	for (int i = 0; i <= APRFS_SRC_BOOL; i++) {
		if (strcmp(s, src_types[i].name) == 0) {
			*out = (aprfs_src_dtype)i;
			return 0;
		}
	}
	return -1;
}

/* Every id GGML has assigned, so an unsupported one is named in the message. Ids 4, 5
 * (Q4_2, Q4_3) and 31-33 (Q4_0_4_4 ...) were removed from GGML and are refused as such. */
const char *aprfs_ggml_type_name(uint32_t t)
{
	static const char *const names[] = {
	    "F32",   "F16",	   "Q4_0",	 "Q4_1",       "Q4_2",	   "Q4_3",     "Q5_0",
	    "Q5_1",  "Q8_0",	   "Q8_1",	 "Q2_K",       "Q3_K",	   "Q4_K",     "Q5_K",
	    "Q6_K",  "Q8_K",	   "IQ2_XXS",	 "IQ2_XS",     "IQ3_XXS",  "IQ1_S",    "IQ4_NL",
	    "IQ3_S", "IQ2_S",	   "IQ4_XS",	 "I8",	       "I16",	   "I32",      "I64",
	    "F64",   "IQ1_M",	   "BF16",	 "Q4_0_4_4",   "Q4_0_4_8", "Q4_0_8_8", "TQ1_0",
	    "TQ2_0", "IQ4_NL_4_4", "IQ4_NL_4_8", "IQ4_NL_8_8", "MXFP4"};
	return t < sizeof(names) / sizeof(names[0]) ? names[t] : NULL;
}

const char *aprfs_apr_dtype_name(uint8_t id)
{
	switch (id) {
	case APR_DT_F32: return "F32";
	case APR_DT_F16: return "F16";
	case APR_DT_F64: return "F64";
	case APR_DT_I32: return "I32";
	case APR_DT_I64: return "I64";
	case APR_DT_I8: return "I8";
	case APR_DT_U8: return "U8";
	case APR_DT_Q4_K: return "Q4_K";
	case APR_DT_Q6_K: return "Q6_K";
	case APR_DT_BF16: return "BF16";
	case APR_DT_APR_Q4: return "APR_Q4";
	case APR_DT_APR_Q8: return "APR_Q8";
	case APR_DT_NF4: return "NF4";
	case APR_DT_TERNARY: return "TERNARY";
	default: return NULL;
	}
}
