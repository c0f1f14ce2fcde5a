#include "hkdf.h"

#include <string.h>

#include <sodium.h>

int
hkdf_sha256(unsigned char *out, size_t outlen,
    const unsigned char *ikm, size_t ikmlen,
    const unsigned char *salt, size_t saltlen,
    const unsigned char *info, size_t infolen)
{
	static const unsigned char zeros[HKDF_SHA256_LEN];
	unsigned char prk[HKDF_SHA256_LEN];
	unsigned char t[HKDF_SHA256_LEN];
	crypto_auth_hmacsha256_state st;
	size_t done = 0, tlen = 0;
	unsigned char ctr = 1;

	if (outlen == 0 || outlen > HKDF_MAX_OUT)
		return -1;
	if (salt == NULL || saltlen == 0) {
		salt = zeros;
		saltlen = sizeof(zeros);
	}
	/* Extract: PRK = HMAC(salt, IKM). */
	crypto_auth_hmacsha256_init(&st, salt, saltlen);
	crypto_auth_hmacsha256_update(&st, ikm, ikmlen);
	crypto_auth_hmacsha256_final(&st, prk);
	/* Expand: T(i) = HMAC(PRK, T(i-1) | info | i). */
	while (done < outlen) {
		size_t n;

		crypto_auth_hmacsha256_init(&st, prk, sizeof(prk));
		crypto_auth_hmacsha256_update(&st, t, tlen);
		if (infolen > 0)
			crypto_auth_hmacsha256_update(&st, info, infolen);
		crypto_auth_hmacsha256_update(&st, &ctr, 1);
		crypto_auth_hmacsha256_final(&st, t);
		tlen = sizeof(t);
		n = outlen - done < tlen ? outlen - done : tlen;
		memcpy(out + done, t, n);
		done += n;
		ctr++;
	}
	sodium_memzero(prk, sizeof(prk));
	sodium_memzero(t, sizeof(t));
	sodium_memzero(&st, sizeof(st));
	return 0;
}
