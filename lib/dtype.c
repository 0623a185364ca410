/* dtype.c - tables behind dtype.h. */
#include "dtype.h"

#include <string.h>

static const struct {
	const char *name;
	size_t size;
	uint8_t apr_id;
} src_types[APRFS_SRC_COUNT] = {
    [APRFS_SRC_F32] = {"F32", 4, APR_DT_F32},	 [APRFS_SRC_F16] = {"F16", 2, APR_DT_F16},
    [APRFS_SRC_BF16] = {"BF16", 2, APR_DT_BF16}, [APRFS_SRC_F64] = {"F64", 8, APR_DT_F64},
    [APRFS_SRC_I64] = {"I64", 8, APR_DT_I64},	 [APRFS_SRC_I32] = {"I32", 4, APR_DT_I32},
    [APRFS_SRC_I8] = {"I8", 1, APR_DT_I8},	 [APRFS_SRC_U8] = {"U8", 1, APR_DT_U8},
    [APRFS_SRC_BOOL] = {"BOOL", 1, APR_DT_U8},
};

size_t aprfs_src_dtype_size(aprfs_src_dtype d)
{
	return src_types[d].size;
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
	return d == APRFS_SRC_F32 || d == APRFS_SRC_F16 || d == APRFS_SRC_BF16;
}

int aprfs_src_dtype_parse(const char *s, aprfs_src_dtype *out)
{
	for (int i = 0; i < APRFS_SRC_COUNT; i++) {
		if (strcmp(s, src_types[i].name) == 0) {
			*out = (aprfs_src_dtype)i;
			return 0;
		}
	}
	return -1;
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
