/* aprfmt.c - the APR v2 header checksum and the f32 range rule of metadata numbers (see
 * aprfmt.h), beside the constants they belong to. */
#include "format/aprfmt.h"

#include <float.h>
#include <math.h>

#include "base/crc.h"

uint32_t apr_header_checksum(const uint8_t header[APR_HEADER_SIZE])
{
	uint32_t crc = aprfs_crc32(0, header, APR_OFF_CHECKSUM);
	return aprfs_crc32(crc, header + APR_OFF_CHECKSUM + 4,
			   APR_HEADER_SIZE - APR_OFF_CHECKSUM - 4);
}

int aprfs_config_f32_ok(double v)
{
	return isfinite(v) && fabs(v) <= FLT_MAX;
}
