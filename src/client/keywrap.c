#include "keywrap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>
#include <uninorm.h>
#include <unistr.h>

#include "common/b64.h"

fls_status
keywrap_params_check(const fls_kdf_params *p)
{
	if (p->p != 1)
		return FLS_ERR_FORMAT;
	if (p->t < FLS_KDF_T_MIN || p->m_kib < FLS_KDF_M_KIB_MIN)
		return FLS_ERR_KDF_WEAK;
	if (p->t > FLS_KDF_T_MAX || p->m_kib > FLS_KDF_M_KIB_MAX)
		return FLS_ERR_KDF_LIMIT;
	return FLS_OK;
}

/* A JSON integer in [0, UINT32_MAX], saturated to UINT32_MAX above (so
 * the range check reports "too large", not "malformed"). */
static int
get_u32(json_t *v, uint32_t *out)
{
	json_int_t i;

	if (!json_is_integer(v))
		return -1;
	i = json_integer_value(v);
	if (i < 0)
		return -1;
	*out = i > (json_int_t)UINT32_MAX ? UINT32_MAX : (uint32_t)i;
	return 0;
}

fls_status
keywrap_params_parse(const char *json, size_t len, fls_kdf_params *out)
{
	json_t *root = NULL;
	json_error_t jerr;
	const char *k;
	json_t *v;
	unsigned seen = 0;
	fls_kdf_params p;
	fls_status st = FLS_ERR_FORMAT;

	memset(&p, 0, sizeof(p));
	if (json == NULL || len == 0 || len > KEYWRAP_JSON_MAX)
		goto done;
	root = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
	if (root == NULL || !json_is_object(root) || json_object_size(root) != 6)
		goto done;
	json_object_foreach(root, k, v) {
		if (strcmp(k, "alg") == 0) {
			if (!json_is_string(v) ||
			    strcmp(json_string_value(v), "argon2id") != 0 ||
			    json_string_length(v) != 8)
				goto done;
			seen |= 1;
		} else if (strcmp(k, "version") == 0) {
			if (!json_is_integer(v) || json_integer_value(v) !=
			    KEYWRAP_ARGON2_VERSION)
				goto done;
			seen |= 2;
		} else if (strcmp(k, "t") == 0) {
			if (get_u32(v, &p.t) != 0)
				goto done;
			seen |= 4;
		} else if (strcmp(k, "m") == 0) {
			if (get_u32(v, &p.m_kib) != 0)
				goto done;
			seen |= 8;
		} else if (strcmp(k, "p") == 0) {
			if (get_u32(v, &p.p) != 0)
				goto done;
			seen |= 16;
		} else if (strcmp(k, "salt") == 0) {
			size_t n = 0;

			if (!json_is_string(v) ||
			    b64_decode(p.salt, sizeof(p.salt), &n,
			    json_string_value(v), json_string_length(v)) != 0 ||
			    n != KEYWRAP_SALT_LEN)
				goto done;
			seen |= 32;
		} else {
			goto done;
		}
	}
	if (seen != 63)
		goto done;
	st = keywrap_params_check(&p);
	if (st == FLS_OK)
		*out = p;
done:
	json_decref(root);
	return st;
}

int
keywrap_params_format(const fls_kdf_params *p, char *out, size_t cap)
{
	char salt[32];
	int n;

	b64_encode(salt, p->salt, KEYWRAP_SALT_LEN);
	n = snprintf(out, cap, "{\"alg\":\"argon2id\",\"version\":%d,"
	    "\"t\":%u,\"m\":%u,\"p\":%u,\"salt\":\"%s\"}",
	    KEYWRAP_ARGON2_VERSION, (unsigned)p->t, (unsigned)p->m_kib,
	    (unsigned)p->p, salt);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	return 0;
}

static void
put_u32(unsigned char *b, uint32_t v)
{
	b[0] = (unsigned char)(v >> 24);
	b[1] = (unsigned char)(v >> 16);
	b[2] = (unsigned char)(v >> 8);
	b[3] = (unsigned char)v;
}

void
keywrap_ad(unsigned char ad[KEYWRAP_AD_LEN], const fls_kdf_params *p)
{
	memcpy(ad, "FSKW", 4);
	ad[4] = 0x01;
	ad[5] = KEYWRAP_ARGON2_VERSION;
	put_u32(ad + 6, p->t);
	put_u32(ad + 10, p->m_kib);
	put_u32(ad + 14, p->p);
	memcpy(ad + 18, p->salt, KEYWRAP_SALT_LEN);
}

static fls_status
argon2id(unsigned char out[32], const void *pass, size_t passlen,
    const fls_kdf_params *p)
{
	if (crypto_pwhash(out, 32, pass, passlen, p->salt, p->t,
	    (size_t)p->m_kib * 1024u, crypto_pwhash_ALG_ARGON2ID13) != 0)
		return FLS_ERR_NOMEM;
	return FLS_OK;
}

fls_status
keywrap_derive(unsigned char out[32], const char *pass, size_t passlen,
    const fls_kdf_params *p)
{
	fls_status st = keywrap_params_check(p);
	uint8_t *buf, *nfc;
	size_t cap, len, i;

	if (st != FLS_OK)
		return st;
	if (pass == NULL || passlen > FLS_PASSPHRASE_MAX)
		return FLS_ERR_ARG;
	/*
	 * The same passphrase typed on two systems may arrive composed on
	 * one and decomposed on the other: it is hashed in Unicode
	 * Normalization Form C (as RFC 8265's OpaqueString does), so both
	 * give one key. NFC can grow a string; the room for it is guarded
	 * memory, wiped after use. ASCII is its own NFC: it is hashed as it
	 * is, and never passes through libunistring's working buffers
	 * (which are not wiped).
	 */
	for (i = 0; i < passlen && (unsigned char)pass[i] < 0x80; i++)
		;
	if (i == passlen)
		return argon2id(out, pass, passlen, p);
	/* text only: libunistring would put U+FFFD for what is not UTF-8 */
	if (u8_check((const uint8_t *)pass, passlen) != NULL)
		return FLS_ERR_ARG;
	cap = passlen * 3 + 16;
	if ((buf = sodium_malloc(cap)) == NULL)
		return FLS_ERR_NOMEM;
	len = cap;
	nfc = u8_normalize(UNINORM_NFC, (const uint8_t *)pass, passlen, buf,
	    &len);
	if (nfc == NULL)
		st = FLS_ERR_NOMEM;
	else if (len > FLS_PASSPHRASE_MAX)
		st = FLS_ERR_ARG;
	else
		st = argon2id(out, nfc, len, p);
	if (nfc != NULL && nfc != buf) {
		/* it did not fit: libunistring allocated it */
		sodium_memzero(nfc, len);
		free(nfc);
	}
	sodium_free(buf);
	return st;
}

void
keywrap_seal(unsigned char out[KEYWRAP_LEN], const unsigned char master[32],
    const unsigned char wrapkey[32], const fls_kdf_params *p,
    const unsigned char nonce[KEYWRAP_NONCE_LEN])
{
	unsigned char ad[KEYWRAP_AD_LEN];

	keywrap_ad(ad, p);
	memcpy(out, nonce, KEYWRAP_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(out + KEYWRAP_NONCE_LEN,
	    NULL, master, 32, ad, sizeof(ad), NULL, nonce, wrapkey);
}

fls_status
keywrap_open(unsigned char master[32], const unsigned char wrapkey[32],
    const fls_kdf_params *p, const unsigned char *in, size_t len)
{
	unsigned char ad[KEYWRAP_AD_LEN];

	if (len != KEYWRAP_LEN)
		return FLS_ERR_FORMAT;
	keywrap_ad(ad, p);
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(master, NULL, NULL,
	    in + KEYWRAP_NONCE_LEN, len - KEYWRAP_NONCE_LEN, ad, sizeof(ad),
	    in, wrapkey) != 0) {
		sodium_memzero(master, 32);
		return FLS_ERR_DECRYPT;
	}
	return FLS_OK;
}
