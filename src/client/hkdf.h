/*
 * hkdf: HKDF-SHA256 (RFC 5869) on libsodium's HMAC-SHA256, so that a
 * WebCrypto implementation (crypto.subtle.deriveBits "HKDF") derives the
 * same keys.
 */
#ifndef FLS_HKDF_H
#define FLS_HKDF_H

#include <stddef.h>

#define HKDF_SHA256_LEN 32u
#define HKDF_MAX_OUT (255u * HKDF_SHA256_LEN)

/*
 * out = HKDF-SHA256(ikm, salt, info) of outlen bytes (1..HKDF_MAX_OUT).
 * salt may be NULL/0 (then HashLen zero bytes). Returns 0, or -1 for a bad
 * outlen. Intermediate values are wiped.
 */
int hkdf_sha256(unsigned char *out, size_t outlen,
    const unsigned char *ikm, size_t ikmlen,
    const unsigned char *salt, size_t saltlen,
    const unsigned char *info, size_t infolen);

#endif
