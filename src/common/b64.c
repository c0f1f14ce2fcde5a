#include "b64.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include <sodium.h>

size_t
b64_encoded_len(size_t n)
{
	size_t groups = n / 3 + (n % 3 != 0);

	/* Saturate below SIZE_MAX so that the caller's "+ 1" for the NUL
	 * cannot wrap; an allocation of that size simply fails. */
	if (groups > (SIZE_MAX - 1) / 4)
		return SIZE_MAX - 1;
	return groups * 4;
}

size_t
b64_decoded_max(size_t len)
{
	/* Every character carries 6 bits: floor(6 * len / 8) bytes at most,
	 * computed without overflow. Exact for padded input (len % 4 == 0)
	 * minus the padding. */
	return len / 4 * 3 + len % 4 * 3 / 4;
}

char *
b64_encode(char *out, const unsigned char *in, size_t n)
{
	/* sodium_base64_ENCODED_LEN counts the NUL. */
	return sodium_bin2base64(out, b64_encoded_len(n) + 1, in, n,
	    sodium_base64_VARIANT_ORIGINAL);
}

char *
b64_encode_public(char *out, const unsigned char *in, size_t n)
{
	static const char abc[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i + 3 <= n; i += 3) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = abc[v & 63];
	}
	if (n - i == 1) {
		v = (uint32_t)in[i] << 16;
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = '=';
		out[o++] = '=';
	} else if (n - i == 2) {
		v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
		out[o++] = abc[v >> 18];
		out[o++] = abc[(v >> 12) & 63];
		out[o++] = abc[(v >> 6) & 63];
		out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

int
b64_decode(unsigned char *out, size_t cap, size_t *outlen, const char *s,
    size_t len)
{
	const char *end = NULL;
	size_t i, n = 0;
	unsigned int high = 0;

	*outlen = 0;
	if (len == 0)
		return 0;
	/* libsodium 1.0.18 reads the input through a signed char, so bytes
	 * 0x80..0xff decode as if they were alphabet letters. Refuse them
	 * first, without a branch on the data. */
	for (i = 0; i < len; i++)
		high |= (unsigned char)s[i];
	if (high & 0x80)
		return -1;
	/* No `ignore` set: whitespace and every other non-alphabet byte
	 * (NUL included) stop the decoder, which is then caught by the end
	 * check. The decoder itself refuses missing padding, non-zero
	 * trailing bits and output longer than cap. */
	if (sodium_base642bin(out, cap, s, len, NULL, &n, &end,
	    sodium_base64_VARIANT_ORIGINAL) != 0)
		return -1;
	if (end != s + len)
		return -1;
	*outlen = n;
	return 0;
}

/* 0..63 for the alphabet, 64 for '=', 255 for everything else. */
static const unsigned char b64_value[256] = {
	['A'] = 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17,
	18, 19, 20, 21, 22, 23, 24, 25,
	['a'] = 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41,
	42, 43, 44, 45, 46, 47, 48, 49, 50, 51,
	['0'] = 52, 53, 54, 55, 56, 57, 58, 59, 60, 61,
	['+'] = 62, ['/'] = 63, ['='] = 64,
};

/* The table above leaves unlisted bytes 0, which is 'A': mark them. */
static bool
b64_valid(unsigned char c)
{
	return c == 'A' || b64_value[c] != 0;
}

int
b64_decode_public(unsigned char *out, size_t cap, size_t *outlen,
    const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i, o = 0, pad = 0;
	unsigned a, b, c, d;

	*outlen = 0;
	if (len == 0)
		return 0;
	if (len % 4 != 0)
		return -1;
	if (p[len - 1] == '=')
		pad = p[len - 2] == '=' ? 2 : 1;
	if (len / 4 * 3 - pad > cap)
		return -1;
	for (i = 0; i < len; i += 4) {
		if (!b64_valid(p[i]) || !b64_valid(p[i + 1]) ||
		    !b64_valid(p[i + 2]) || !b64_valid(p[i + 3]))
			return -1;
		a = b64_value[p[i]];
		b = b64_value[p[i + 1]];
		c = b64_value[p[i + 2]];
		d = b64_value[p[i + 3]];
		if (i + 4 < len || pad == 0) {
			if ((a | b | c | d) > 63)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			out[o++] = (unsigned char)(b << 4 | c >> 2);
			out[o++] = (unsigned char)(c << 6 | d);
		} else if (pad == 1) {
			/* xyz= : the last 2 bits of z must be zero */
			if ((a | b | c) > 63 || (c & 3) != 0)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
			out[o++] = (unsigned char)(b << 4 | c >> 2);
		} else {
			/* xy== : the last 4 bits of y must be zero */
			if ((a | b) > 63 || (b & 15) != 0)
				return -1;
			out[o++] = (unsigned char)(a << 2 | b >> 4);
		}
	}
	*outlen = o;
	return 0;
}
