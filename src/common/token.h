/*
 * token: secrets and identifiers: session and temp tokens, user codes,
 * UUIDs, SHA-256 of tokens, constant-time comparison.
 */
#ifndef FLM_TOKEN_H
#define FLM_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOKEN_SYNC_PREFIX "flm_sync_"
#define TOKEN_TEMP_PREFIX "flm_temp_"
#define TOKEN_WEB_PREFIX "flm_web_"
/* prefix + 32 lowercase hex digits (128 random bits) */
#define TOKEN_HEX_LEN 32
#define TOKEN_MAX_LEN 41 /* longest prefix (9) + 32 */
#define TOKEN_HASH_LEN 32 /* SHA-256 */

/* 8 characters from this 20-letter alphabet, shown as XXXX-XXXX. */
#define USER_CODE_ALPHABET "BCDFGHJKLMNPQRSTVWXZ"
#define USER_CODE_LEN 8

#define UUID_LEN 36

/*
 * Writes prefix followed by 32 lowercase hex digits of fresh CSPRNG output
 * into out (capacity >= TOKEN_MAX_LEN + 1), NUL-terminated.
 */
void token_generate(char *out, const char *prefix);

/*
 * True when s (of length len) is exactly prefix followed by 32 lowercase hex
 * digits. Runs in time independent of the digits' values.
 */
bool token_parse(const char *s, size_t len, const char *prefix);

/* SHA-256 of the len bytes at s. */
void token_hash(uint8_t out[TOKEN_HASH_LEN], const char *s, size_t len);

/* Constant-time equality of two n-byte buffers. */
bool token_equal(const void *a, const void *b, size_t n);

/* A fresh user code: USER_CODE_LEN letters of the alphabet, NUL-terminated,
 * without the dash, uniformly distributed (rejection sampling). */
void user_code_generate(char out[USER_CODE_LEN + 1]);

/*
 * Normalises user input: case-insensitive, with or without one dash in the
 * middle ("bcdf-ghjk", "BCDFGHJK"), no other characters, every letter from
 * the alphabet. Writes the 8 upper-case letters to out and returns true, or
 * returns false.
 */
bool user_code_normalize(char out[USER_CODE_LEN + 1], const char *in,
    size_t len);

/* "XXXX-XXXX" form of a normalised code; out has room for 10 bytes. */
void user_code_format(char out[USER_CODE_LEN + 2], const char *code);

/* A random (version 4) UUID, lower case, NUL-terminated. */
void uuid_generate(char out[UUID_LEN + 1]);

/* True when s is a lower-case canonical UUID (36 characters). */
bool uuid_valid(const char *s);

#endif
