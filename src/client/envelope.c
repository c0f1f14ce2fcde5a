#include "envelope.h"

#include <string.h>

#include <sodium.h>

#include "client/hkdf.h"
#include "common/datatype.h"

/* "data:" + the longest type name ("environment") */
#define INFO_MAX 32
/* header bytes 0..7 + the longest type name */
#define AD_MAX 32

fls_status
envelope_parse(const unsigned char *buf, size_t len, struct envelope_view *v)
{
	if (buf == NULL || len < ENVELOPE_OVERHEAD)
		return FLS_ERR_FORMAT;
	if (buf[0] != ENVELOPE_MAGIC0 || buf[1] != ENVELOPE_MAGIC1)
		return FLS_ERR_FORMAT;
	if (buf[2] != ENVELOPE_FORMAT_V1)
		return FLS_ERR_FORMAT;
	if (buf[3] != ENVELOPE_ALG_XCHACHA20POLY1305)
		return FLS_ERR_FORMAT;
	v->version = buf[2];
	v->alg = buf[3];
	v->key_version = (uint32_t)buf[4] << 24 | (uint32_t)buf[5] << 16 |
	    (uint32_t)buf[6] << 8 | (uint32_t)buf[7];
	if (v->key_version == 0)
		return FLS_ERR_FORMAT;
	v->nonce = buf + 8;
	v->ct = buf + ENVELOPE_HEADER_LEN;
	v->ctlen = len - ENVELOPE_HEADER_LEN;
	return FLS_OK;
}

fls_status
envelope_type_key(unsigned char out[32], const unsigned char master[32],
    int type)
{
	const char *name = datatype_name(type);
	unsigned char info[INFO_MAX];
	size_t plen = sizeof(ENVELOPE_KDF_INFO_PREFIX) - 1, nlen;

	if (name == NULL)
		return FLS_ERR_ARG;
	nlen = strlen(name);
	if (plen + nlen > sizeof(info))
		return FLS_ERR_ARG;
	memcpy(info, ENVELOPE_KDF_INFO_PREFIX, plen);
	memcpy(info + plen, name, nlen);
	if (hkdf_sha256(out, 32, master, 32,
	    (const unsigned char *)ENVELOPE_KDF_SALT,
	    sizeof(ENVELOPE_KDF_SALT) - 1, info, plen + nlen) != 0)
		return FLS_ERR_ARG;
	return FLS_OK;
}

/* ad = header[0..8) || type name; returns its length, 0 on a bad type. */
static size_t
build_ad(unsigned char ad[AD_MAX], const unsigned char header[8], int type)
{
	const char *name = datatype_name(type);
	size_t nlen;

	if (name == NULL)
		return 0;
	nlen = strlen(name);
	if (8 + nlen > AD_MAX)
		return 0;
	memcpy(ad, header, 8);
	memcpy(ad + 8, name, nlen);
	return 8 + nlen;
}

fls_status
envelope_seal(const unsigned char master[32], int type,
    uint32_t key_version, const unsigned char nonce[ENVELOPE_NONCE_LEN],
    const unsigned char *pt, size_t len, unsigned char *out, size_t cap,
    size_t *outlen)
{
	unsigned char key[32];
	unsigned char ad[AD_MAX];
	size_t adlen;
	unsigned long long clen = 0;
	fls_status st = FLS_ERR_ARG;

	if (key_version == 0 || len > SIZE_MAX - ENVELOPE_OVERHEAD ||
	    cap < len + ENVELOPE_OVERHEAD || (pt == NULL && len > 0))
		return FLS_ERR_ARG;
	out[0] = ENVELOPE_MAGIC0;
	out[1] = ENVELOPE_MAGIC1;
	out[2] = ENVELOPE_FORMAT_V1;
	out[3] = ENVELOPE_ALG_XCHACHA20POLY1305;
	out[4] = (unsigned char)(key_version >> 24);
	out[5] = (unsigned char)(key_version >> 16);
	out[6] = (unsigned char)(key_version >> 8);
	out[7] = (unsigned char)key_version;
	memcpy(out + 8, nonce, ENVELOPE_NONCE_LEN);
	adlen = build_ad(ad, out, type);
	if (adlen == 0)
		goto done;
	st = envelope_type_key(key, master, type);
	if (st != FLS_OK)
		goto done;
	if (crypto_aead_xchacha20poly1305_ietf_encrypt(out +
	    ENVELOPE_HEADER_LEN, &clen, pt, len, ad, adlen, NULL, nonce,
	    key) != 0) {
		st = FLS_ERR_ARG;
		goto done;
	}
	*outlen = ENVELOPE_HEADER_LEN + (size_t)clen;
	st = FLS_OK;
done:
	sodium_memzero(key, sizeof(key));
	return st;
}

fls_status
envelope_open(const unsigned char master[32], int type,
    uint32_t expected_kv, const unsigned char *in, size_t len,
    unsigned char *out, size_t cap, size_t *outlen, uint32_t *kv)
{
	struct envelope_view v;
	unsigned char key[32];
	unsigned char ad[AD_MAX];
	size_t adlen;
	unsigned long long mlen = 0;
	fls_status st;

	st = envelope_parse(in, len, &v);
	if (st != FLS_OK)
		return st;
	if (expected_kv != 0 && v.key_version != expected_kv)
		return FLS_ERR_KEY_CHANGED;
	if (cap < v.ctlen - ENVELOPE_TAG_LEN)
		return FLS_ERR_ARG;
	adlen = build_ad(ad, in, type);
	if (adlen == 0)
		return FLS_ERR_ARG;
	st = envelope_type_key(key, master, type);
	if (st != FLS_OK)
		goto done;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(out, &mlen, NULL,
	    v.ct, v.ctlen, ad, adlen, v.nonce, key) != 0) {
		sodium_memzero(out, v.ctlen - ENVELOPE_TAG_LEN);
		st = FLS_ERR_DECRYPT;
		goto done;
	}
	*outlen = (size_t)mlen;
	if (kv != NULL)
		*kv = v.key_version;
	st = FLS_OK;
done:
	sodium_memzero(key, sizeof(key));
	return st;
}
