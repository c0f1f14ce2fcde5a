#include "token.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#define TOKEN_RAND_BYTES (TOKEN_HEX_LEN / 2)
#define UUID_BYTES 16

static const char hexdigits[] = "0123456789abcdef";

void
token_generate(char *out, const char *prefix)
{
	unsigned char rnd[TOKEN_RAND_BYTES];
	size_t plen = strlen(prefix);

	/* A longer prefix is a programming error: out is sized for ours. */
	if (plen > TOKEN_MAX_LEN - TOKEN_HEX_LEN)
		abort();
	randombytes_buf(rnd, sizeof(rnd));
	memcpy(out, prefix, plen);
	/* sodium_bin2hex is constant time and writes lower case + NUL. */
	sodium_bin2hex(out + plen, TOKEN_HEX_LEN + 1, rnd, sizeof(rnd));
	sodium_memzero(rnd, sizeof(rnd));
}

/*
 * 0 when c is a lowercase hex digit, 1 otherwise, without a branch or a
 * table lookup on c (the same arithmetic as sodium_hex2bin). c is 0..255,
 * so every difference below stays within 32 bits of unsigned arithmetic.
 */
static unsigned int
hex_bad(unsigned char c)
{
	unsigned int num = (unsigned int)c ^ 48U;          /* '0'..'9' -> 0..9 */
	unsigned int num_ok = (num - 10U) >> 8;             /* 0xffffff or 0 */
	unsigned int alpha = (unsigned int)c - 87U;         /* 'a'..'f' -> 10..15 */
	unsigned int alpha_ok = ((alpha - 10U) ^ (alpha - 16U)) >> 8;

	return ((num_ok | alpha_ok) & 1U) ^ 1U;
}

bool
token_parse(const char *s, size_t len, const char *prefix)
{
	size_t plen, i;
	unsigned int bad = 0;

	if (s == NULL || prefix == NULL)
		return false;
	plen = strlen(prefix);
	/* Length and prefix are not secret: early exits are fine here. */
	if (len != plen + TOKEN_HEX_LEN || memcmp(s, prefix, plen) != 0)
		return false;
	for (i = plen; i < len; i++)
		bad |= hex_bad((unsigned char)s[i]);
	return bad == 0;
}

void
token_hash(uint8_t out[TOKEN_HASH_LEN], const char *s, size_t len)
{
	crypto_hash_sha256(out, (const unsigned char *)s, len);
}

bool
token_equal(const void *a, const void *b, size_t n)
{
	return sodium_memcmp(a, b, n) == 0;
}

void
user_code_generate(char out[USER_CODE_LEN + 1])
{
	static const char alphabet[] = USER_CODE_ALPHABET;
	size_t i;

	/* randombytes_uniform rejects the biased tail: every letter is
	 * equally likely at every position. */
	for (i = 0; i < USER_CODE_LEN; i++)
		out[i] = alphabet[randombytes_uniform(sizeof(alphabet) - 1)];
	out[USER_CODE_LEN] = '\0';
}

bool
user_code_normalize(char out[USER_CODE_LEN + 1], const char *in, size_t len)
{
	static const char alphabet[] = USER_CODE_ALPHABET;
	char code[USER_CODE_LEN + 1];
	size_t i, n = 0;
	unsigned char c;

	out[0] = '\0';
	if (in == NULL)
		return false;
	if (len == USER_CODE_LEN + 1) {
		if (in[USER_CODE_LEN / 2] != '-')
			return false;
	} else if (len != USER_CODE_LEN)
		return false;
	for (i = 0; i < len; i++) {
		if (len == USER_CODE_LEN + 1 && i == USER_CODE_LEN / 2)
			continue;
		c = (unsigned char)in[i];
		if (c >= 'a' && c <= 'z')
			c = (unsigned char)(c - 'a' + 'A');
		/* memchr, not strchr: strchr would find the NUL. */
		if (memchr(alphabet, c, sizeof(alphabet) - 1) == NULL)
			return false;
		code[n++] = (char)c;
	}
	code[n] = '\0';
	memcpy(out, code, sizeof(code));
	return true;
}

void
user_code_format(char out[USER_CODE_LEN + 2], const char *code)
{
	memcpy(out, code, USER_CODE_LEN / 2);
	out[USER_CODE_LEN / 2] = '-';
	memcpy(out + USER_CODE_LEN / 2 + 1, code + USER_CODE_LEN / 2,
	    USER_CODE_LEN / 2);
	out[USER_CODE_LEN + 1] = '\0';
}

void
uuid_generate(char out[UUID_LEN + 1])
{
	unsigned char b[UUID_BYTES];
	size_t i, o = 0;

	randombytes_buf(b, sizeof(b));
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40); /* version 4 */
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	for (i = 0; i < sizeof(b); i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hexdigits[b[i] >> 4];
		out[o++] = hexdigits[b[i] & 0x0f];
	}
	out[o] = '\0';
}

bool
uuid_valid(const char *s)
{
	size_t i;
	char c;

	if (s == NULL)
		return false;
	for (i = 0; i < UUID_LEN; i++) {
		c = s[i];
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
			return false;
	}
	return s[UUID_LEN] == '\0';
}
