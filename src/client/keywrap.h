/*
 * keywrap: the master key wrapped under a passphrase (docs/CRYPTO.md,
 * "Wrapped master key"): Argon2id parameters as JSON, the key derivation,
 * and XChaCha20-Poly1305 sealing of the 32-byte master key:
 *
 *   wrapped_key = nonce (24) || ciphertext (32) || tag (16)   (72 bytes)
 *   associated data = "FSKW" 0x01 0x13 || t || m_kib || p (u32 BE each)
 *                     || salt (16)                             (34 bytes)
 *
 * kdf JSON, exactly these six members, any order:
 *   {"alg":"argon2id","version":19,"t":3,"m":65536,"p":1,"salt":"<b64>"}
 */
#ifndef FLS_KEYWRAP_H
#define FLS_KEYWRAP_H

#include <stddef.h>
#include <stdint.h>

#include "flamingosync.h"

#define KEYWRAP_SALT_LEN 16u
#define KEYWRAP_NONCE_LEN 24u
#define KEYWRAP_LEN (KEYWRAP_NONCE_LEN + 32u + 16u)
#define KEYWRAP_AD_LEN 34u
#define KEYWRAP_ARGON2_VERSION 19 /* 0x13 */
#define KEYWRAP_JSON_MAX 1024u
/* room for the canonical JSON of any accepted parameters */
#define KEYWRAP_JSON_CAP 160u

/*
 * Parses and checks the kdf JSON (len bytes). FLS_ERR_FORMAT for any
 * other shape (unknown or missing member, wrong type, other alg or
 * version, p != 1, salt not base64 of 16 bytes, over KEYWRAP_JSON_MAX),
 * FLS_ERR_KDF_WEAK below the minimums, FLS_ERR_KDF_LIMIT above the caps.
 */
fls_status keywrap_params_parse(const char *json, size_t len,
    fls_kdf_params *out);

/* FLS_OK, FLS_ERR_KDF_WEAK or FLS_ERR_KDF_LIMIT (and p must be 1). */
fls_status keywrap_params_check(const fls_kdf_params *p);

/* The canonical JSON of p into out (cap >= KEYWRAP_JSON_CAP); 0 or -1. */
int keywrap_params_format(const fls_kdf_params *p, char *out, size_t cap);

/* The 34 bytes of associated data that bind p to the wrapped key. */
void keywrap_ad(unsigned char ad[KEYWRAP_AD_LEN], const fls_kdf_params *p);

/* Argon2id(pass, salt, t, m) into out (32 bytes); checks p first. */
fls_status keywrap_derive(unsigned char out[32], const char *pass,
    size_t passlen, const fls_kdf_params *p);

/* Seals master under wrapkey with the given nonce into out. */
void keywrap_seal(unsigned char out[KEYWRAP_LEN],
    const unsigned char master[32], const unsigned char wrapkey[32],
    const fls_kdf_params *p, const unsigned char nonce[KEYWRAP_NONCE_LEN]);

/* Opens len bytes at in into master; FLS_ERR_FORMAT for a wrong length,
 * FLS_ERR_DECRYPT when authentication fails. */
fls_status keywrap_open(unsigned char master[32],
    const unsigned char wrapkey[32], const fls_kdf_params *p,
    const unsigned char *in, size_t len);

#endif
