/*
 * b64: standard base64 (RFC 4648 section 4, '+/' with '=' padding) on
 * libsodium's constant-time codec.
 */
#ifndef FLM_B64_H
#define FLM_B64_H

#include <stddef.h>

/* Length of the encoding of n bytes, without the NUL. */
size_t b64_encoded_len(size_t n);

/* Upper bound of the decoded size of an encoding of len characters. */
size_t b64_decoded_max(size_t len);

/*
 * Encodes n bytes into out (capacity b64_encoded_len(n) + 1), NUL-terminated.
 * Returns out.
 */
char *b64_encode(char *out, const unsigned char *in, size_t n);

/*
 * The same encoding by table lookups, about five times faster but with
 * memory accesses that depend on the data: only for what is not secret
 * (ciphertext the server hands back), never for keys or tokens.
 */
char *b64_encode_public(char *out, const unsigned char *in, size_t n);

/*
 * Decodes the len characters of s into out (capacity cap). Padding is
 * required, no whitespace or other characters are allowed.
 * Returns 0 and sets *outlen, or -1 on any malformed input or when the
 * result does not fit in cap.
 */
int b64_decode(unsigned char *out, size_t cap, size_t *outlen,
    const char *s, size_t len);

/* The same decoding by table lookups (see b64_encode_public): for
 * ciphertext only, never for keys or tokens. */
int b64_decode_public(unsigned char *out, size_t cap, size_t *outlen,
    const char *s, size_t len);

#endif
