/*
 * envelope: the versioned ciphertext format of one data type's blob
 * (docs/CRYPTO.md, "Data envelope"):
 *
 *   0  2  magic "FS" (0x46 0x53)
 *   2  1  format version, 0x01
 *   3  1  algorithm, 0x02 = XChaCha20-Poly1305 (IETF); 0x01 is reserved
 *         for AES-256-GCM and refused by this version
 *   4  4  key version, unsigned big-endian, >= 1
 *   8  24 nonce
 *   32 n  ciphertext, then the 16-byte Poly1305 tag
 *
 * associated data = bytes 0..7 || the type's wire name (ASCII);
 * key = HKDF-SHA256(ikm = master key, salt = "flamingo-sync/v1",
 *                   info = "data:" || type name, L = 32).
 */
#ifndef FLS_ENVELOPE_H
#define FLS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "flamingosync.h"

#define ENVELOPE_MAGIC0 0x46u
#define ENVELOPE_MAGIC1 0x53u
#define ENVELOPE_FORMAT_V1 0x01u
#define ENVELOPE_ALG_AES256GCM 0x01u      /* reserved, never written */
#define ENVELOPE_ALG_XCHACHA20POLY1305 0x02u
#define ENVELOPE_NONCE_LEN 24u
#define ENVELOPE_TAG_LEN 16u
#define ENVELOPE_HEADER_LEN 32u
#define ENVELOPE_OVERHEAD (ENVELOPE_HEADER_LEN + ENVELOPE_TAG_LEN)
#define ENVELOPE_KDF_SALT "flamingo-sync/v1"
#define ENVELOPE_KDF_INFO_PREFIX "data:"

/* A parsed (not yet authenticated) envelope; pointers into the input. */
struct envelope_view {
	unsigned version;
	unsigned alg;
	uint32_t key_version;
	const unsigned char *nonce;
	const unsigned char *ct; /* ciphertext || tag */
	size_t ctlen;            /* >= ENVELOPE_TAG_LEN */
};

/*
 * Checks the header of len bytes at buf and fills *v. FLS_ERR_FORMAT for a
 * short input, a wrong magic, an unknown version or algorithm, or key
 * version 0. Never reads past len.
 */
fls_status envelope_parse(const unsigned char *buf, size_t len,
    struct envelope_view *v);

/* The per-type key of master into out; FLS_ERR_ARG for a bad type. */
fls_status envelope_type_key(unsigned char out[32],
    const unsigned char master[32], int type);

/*
 * Seals len bytes of pt with the given nonce (tests and test vectors; the
 * library passes a fresh random one) into out (cap >= len +
 * ENVELOPE_OVERHEAD). *outlen = len + ENVELOPE_OVERHEAD.
 */
fls_status envelope_seal(const unsigned char master[32], int type,
    uint32_t key_version, const unsigned char nonce[ENVELOPE_NONCE_LEN],
    const unsigned char *pt, size_t len, unsigned char *out, size_t cap,
    size_t *outlen);

/*
 * Opens an envelope of type: parse, then authenticate and decrypt into out
 * (cap >= len - ENVELOPE_OVERHEAD). expected_kv != 0 must equal the
 * envelope's key version (else FLS_ERR_KEY_CHANGED). FLS_ERR_DECRYPT when
 * authentication fails (out is then wiped). *kv (may be NULL) gets the
 * key version.
 */
fls_status envelope_open(const unsigned char master[32], int type,
    uint32_t expected_kv, const unsigned char *in, size_t len,
    unsigned char *out, size_t cap, size_t *outlen, uint32_t *kv);

#endif
