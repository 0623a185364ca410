/* sha256.h - SHA-256 (FIPS 180-4) of a byte buffer, for the identity of an importance
 * matrix in the metadata and the cache key: one call, lowercase hex or raw digest out. */
#ifndef APRFS_SHA256_H
#define APRFS_SHA256_H

#include <stddef.h>
#include <stdint.h>

void aprfs_sha256(const void *data, size_t len, uint8_t digest[32]);
/* The digest as 64 lowercase hex digits and a NUL. */
void aprfs_sha256_hex(const uint8_t digest[32], char hex[65]);

#endif
