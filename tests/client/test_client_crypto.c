/*
 * Unit tests of the client's cryptography: HKDF-SHA256 against RFC 5869,
 * the envelope and the wrapped key against the test vectors of
 * docs/CRYPTO.md (computed independently by gen_vectors.py), tampering
 * (every flipped bit, truncation, wrong type, wrong key version, wrong
 * key), KDF parameter minimums and caps, wrap/unwrap round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "flamingosync.h"

#include "client/envelope.h"
#include "client/hkdf.h"
#include "client/keywrap.h"

static size_t
unhex(unsigned char *out, size_t cap, const char *hex)
{
	size_t n = 0;

	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &n,
	    NULL), 0);
	return n;
}

static void
master_key(unsigned char m[32])
{
	for (int i = 0; i < 32; i++)
		m[i] = (unsigned char)i;
}

/* ---- HKDF --------------------------------------------------------------- */

static void
test_hkdf_rfc5869(void **state)
{
	unsigned char ikm[22], salt[13], info[10], okm[42], want[42];

	(void)state;
	memset(ikm, 0x0b, sizeof(ikm));
	for (int i = 0; i < 13; i++)
		salt[i] = (unsigned char)i;
	for (int i = 0; i < 10; i++)
		info[i] = (unsigned char)(0xf0 + i);
	/* Test case 1 */
	assert_int_equal(hkdf_sha256(okm, sizeof(okm), ikm, sizeof(ikm), salt,
	    sizeof(salt), info, sizeof(info)), 0);
	unhex(want, sizeof(want), "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a"
	    "4c5db02d56ecc4c5bf34007208d5b887185865");
	assert_memory_equal(okm, want, sizeof(want));
	/* Test case 3: no salt, no info */
	assert_int_equal(hkdf_sha256(okm, sizeof(okm), ikm, sizeof(ikm), NULL,
	    0, NULL, 0), 0);
	unhex(want, sizeof(want), "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee187"
	    "9ec3454e5f3c738d2d9d201395faa4b61a96c8");
	assert_memory_equal(okm, want, sizeof(want));
	assert_int_equal(hkdf_sha256(okm, 0, ikm, 1, NULL, 0, NULL, 0), -1);
	assert_int_equal(hkdf_sha256(okm, 255 * 32 + 1, ikm, 1, NULL, 0, NULL,
	    0), -1);
}

/* ---- envelope vectors ---------------------------------------------------- */

static const char *const TYPE_KEYS[FLS_TYPE_COUNT] = {
	"97562ac920086443b43a4b5d595fbc47ee8dfc818202e46438a5960f49bf1393",
	"013ecea71fe8e12cefe9845cdbcf345458edefec281fbf8b061eba2c8ad845ec",
	"5d43b689fd921fad8b1615f2cf3b8829819e50da7c603099946cb7cd0136f69b",
	"f42c4b94c7a4fba5a798179f0abfcea0f1d2c9d7ac79e6f269622ed2930febf1",
	"70d26f0529c0e01ec0a98e868197a6b91e01c42eb02f3863c9537559fa0fdd22",
};

#define V1_PT "{\"api_key\":\"flamingo-test\"}"
#define V1_HEX "4653010200000001404142434445464748494a4b4c4d4e4f505152535455" \
	"56573323876967df2ae6a5cc9b28fd31717a3fe4386c15a7a0f54504bba1202c04837" \
	"5376ad3fad13c2aeb32eb"
#define V2_HEX "4653010201020304808182838485868788898a8b8c8d8e8f909192939495" \
	"969763199b60b7158acba6eb1e4f51026c47"

static void
test_type_keys(void **state)
{
	unsigned char m[32], k[32], want[32];
	fls_key *key = NULL;

	(void)state;
	master_key(m);
	assert_int_equal(fls_key_from_bytes(m, &key), FLS_OK);
	for (int t = 0; t < FLS_TYPE_COUNT; t++) {
		unhex(want, sizeof(want), TYPE_KEYS[t]);
		assert_int_equal(envelope_type_key(k, m, t), FLS_OK);
		assert_memory_equal(k, want, 32);
		memset(k, 0, sizeof(k));
		assert_int_equal(fls_key_derive_type_key(key, t, k), FLS_OK);
		assert_memory_equal(k, want, 32);
	}
	assert_int_equal(envelope_type_key(k, m, FLS_TYPE_COUNT), FLS_ERR_ARG);
	assert_int_equal(envelope_type_key(k, m, -1), FLS_ERR_ARG);
	fls_key_free(key);
}

static void
test_envelope_vectors(void **state)
{
	unsigned char m[32], nonce[24], out[256], want[256], pt[256];
	size_t n = 0, wn, pn = 0;
	uint32_t kv = 0;

	(void)state;
	master_key(m);
	for (int i = 0; i < 24; i++)
		nonce[i] = (unsigned char)(0x40 + i);
	assert_int_equal(envelope_seal(m, FLS_TYPE_SECRET, 1, nonce,
	    (const unsigned char *)V1_PT, strlen(V1_PT), out, sizeof(out), &n),
	    FLS_OK);
	wn = unhex(want, sizeof(want), V1_HEX);
	assert_int_equal(n, wn);
	assert_int_equal(n, strlen(V1_PT) + FLS_ENVELOPE_OVERHEAD);
	assert_memory_equal(out, want, wn);
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 1, want, wn, pt,
	    sizeof(pt), &pn, &kv), FLS_OK);
	assert_int_equal(pn, strlen(V1_PT));
	assert_memory_equal(pt, V1_PT, pn);
	assert_int_equal(kv, 1);

	for (int i = 0; i < 24; i++)
		nonce[i] = (unsigned char)(0x80 + i);
	assert_int_equal(envelope_seal(m, FLS_TYPE_HISTORY, 0x01020304u, nonce,
	    NULL, 0, out, sizeof(out), &n), FLS_OK);
	wn = unhex(want, sizeof(want), V2_HEX);
	assert_int_equal(n, wn);
	assert_memory_equal(out, want, wn);
	assert_int_equal(envelope_open(m, FLS_TYPE_HISTORY, 0, want, wn, pt,
	    sizeof(pt), &pn, &kv), FLS_OK);
	assert_int_equal(pn, 0);
	assert_int_equal(kv, 0x01020304u);
	/* key version 0 is never written */
	assert_int_equal(envelope_seal(m, FLS_TYPE_HISTORY, 0, nonce, NULL, 0,
	    out, sizeof(out), &n), FLS_ERR_ARG);
	/* output capacity is checked */
	assert_int_equal(envelope_seal(m, FLS_TYPE_HISTORY, 1, nonce,
	    (const unsigned char *)"x", 1, out, FLS_ENVELOPE_OVERHEAD, &n),
	    FLS_ERR_ARG);
}

static void
test_envelope_tampering(void **state)
{
	unsigned char m[32], env[256], bad[256], pt[256], other[32];
	size_t n, pn;
	fls_status st;

	(void)state;
	master_key(m);
	n = unhex(env, sizeof(env), V1_HEX);
	/* every single flipped bit is refused */
	for (size_t bit = 0; bit < n * 8; bit++) {
		memcpy(bad, env, n);
		bad[bit / 8] ^= (unsigned char)(1u << (bit % 8));
		memset(pt, 0xAA, sizeof(pt));
		st = envelope_open(m, FLS_TYPE_SECRET, 0, bad, n, pt, sizeof(pt),
		    &pn, NULL);
		assert_int_not_equal(st, FLS_OK);
		if (bit / 8 >= ENVELOPE_HEADER_LEN || (bit / 8 >= 4 &&
		    bit / 8 < 7))
			assert_int_equal(st, FLS_ERR_DECRYPT);
	}
	/* every truncation and an appended byte are refused */
	for (size_t len = 0; len < n; len++)
		assert_int_not_equal(envelope_open(m, FLS_TYPE_SECRET, 0, env,
		    len, pt, sizeof(pt), &pn, NULL), FLS_OK);
	memcpy(bad, env, n);
	bad[n] = 0;
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 0, bad, n + 1, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_DECRYPT);
	/* the type is authenticated: every other type refuses it */
	for (int t = 0; t < FLS_TYPE_COUNT; t++)
		if (t != FLS_TYPE_SECRET)
			assert_int_equal(envelope_open(m, t, 0, env, n, pt,
			    sizeof(pt), &pn, NULL), FLS_ERR_DECRYPT);
	/* the key version is authenticated and checked */
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 2, env, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_KEY_CHANGED);
	memcpy(bad, env, n);
	bad[7] = 2;
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 2, bad, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_DECRYPT);
	/* header fields: magic, version, the reserved AES-GCM id, version 0 */
	memcpy(bad, env, n);
	bad[3] = ENVELOPE_ALG_AES256GCM;
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 0, bad, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_FORMAT);
	memcpy(bad, env, n);
	bad[2] = 2;
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 0, bad, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_FORMAT);
	memcpy(bad, env, n);
	bad[7] = 0;
	assert_int_equal(envelope_open(m, FLS_TYPE_SECRET, 0, bad, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_FORMAT);
	/* another master key */
	memcpy(other, m, 32);
	other[31] ^= 1;
	assert_int_equal(envelope_open(other, FLS_TYPE_SECRET, 0, env, n, pt,
	    sizeof(pt), &pn, NULL), FLS_ERR_DECRYPT);
}

static void
test_encrypt_decrypt_api(void **state)
{
	fls_key *k = NULL, *k2 = NULL;
	unsigned char *a = NULL, *b = NULL, *pt = NULL;
	size_t an = 0, bn = 0, pn = 0;
	uint32_t kv = 0;
	const unsigned char msg[] = "history entry";

	(void)state;
	assert_int_equal(fls_key_generate(&k), FLS_OK);
	assert_int_equal(fls_key_generate(&k2), FLS_OK);
	assert_int_equal(fls_encrypt(k, FLS_TYPE_HISTORY, 7, msg, sizeof(msg),
	    &a, &an), FLS_OK);
	assert_int_equal(fls_encrypt(k, FLS_TYPE_HISTORY, 7, msg, sizeof(msg),
	    &b, &bn), FLS_OK);
	assert_int_equal(an, sizeof(msg) + FLS_ENVELOPE_OVERHEAD);
	/* fresh nonces: equal plaintexts give different envelopes */
	assert_memory_not_equal(a + 8, b + 8, 24);
	assert_int_equal(fls_decrypt(k, FLS_TYPE_HISTORY, 7, a, an, &pt, &pn,
	    &kv), FLS_OK);
	assert_int_equal(pn, sizeof(msg));
	assert_memory_equal(pt, msg, pn);
	assert_int_equal(kv, 7);
	fls_buf_free(pt, pn);
	pt = NULL;
	assert_int_equal(fls_decrypt(k2, FLS_TYPE_HISTORY, 0, a, an, &pt, &pn,
	    NULL), FLS_ERR_DECRYPT);
	assert_null(pt);
	assert_int_equal(fls_decrypt(k, FLS_TYPE_SETTING, 0, a, an, &pt, &pn,
	    NULL), FLS_ERR_DECRYPT);
	assert_int_equal(fls_decrypt(k, FLS_TYPE_HISTORY, 0, a, 10, &pt, &pn,
	    NULL), FLS_ERR_FORMAT);
	assert_int_equal(fls_encrypt(k, 99, 1, msg, sizeof(msg), &pt, &pn),
	    FLS_ERR_ARG);
	fls_buf_free(a, an);
	fls_buf_free(b, bn);
	fls_key_free(k);
	fls_key_free(k2);
}

/* ---- KDF parameters -------------------------------------------------------- */

#define SALT_B64 "oKGio6SlpqeoqaqrrK2urw=="

static fls_status
parse(const char *json)
{
	fls_kdf_params p;

	return fls_kdf_parse(json, strlen(json), &p);
}

static void
test_kdf_parse(void **state)
{
	fls_kdf_params p;
	char buf[2048], canon[KEYWRAP_JSON_CAP];
	const char *v = "{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\"}";

	(void)state;
	assert_int_equal(fls_kdf_parse(v, strlen(v), &p), FLS_OK);
	assert_int_equal(p.t, 2);
	assert_int_equal(p.m_kib, 65536);
	assert_int_equal(p.p, 1);
	assert_int_equal(p.salt[0], 0xa0);
	assert_int_equal(p.salt[15], 0xaf);
	assert_int_equal(keywrap_params_format(&p, canon, sizeof(canon)), 0);
	assert_string_equal(canon, v);
	/* member order does not matter */
	assert_int_equal(parse("{\"salt\":\"" SALT_B64 "\",\"p\":1,\"m\":65536,"
	    "\"t\":3,\"version\":19,\"alg\":\"argon2id\"}"), FLS_OK);

#define KDF(t, m) "{\"alg\":\"argon2id\",\"version\":19,\"t\":" t \
	",\"m\":" m ",\"p\":1,\"salt\":\"" SALT_B64 "\"}"
	/* below the minimum: a server cannot downgrade */
	assert_int_equal(parse(KDF("1", "65536")), FLS_ERR_KDF_WEAK);
	assert_int_equal(parse(KDF("0", "65536")), FLS_ERR_KDF_WEAK);
	assert_int_equal(parse(KDF("2", "65535")), FLS_ERR_KDF_WEAK);
	assert_int_equal(parse(KDF("2", "8")), FLS_ERR_KDF_WEAK);
	/* above the caps: a server cannot make the client allocate 100 GiB */
	assert_int_equal(parse(KDF("17", "65536")), FLS_ERR_KDF_LIMIT);
	assert_int_equal(parse(KDF("2", "1048577")), FLS_ERR_KDF_LIMIT);
	assert_int_equal(parse(KDF("2", "104857600")), FLS_ERR_KDF_LIMIT);
	assert_int_equal(parse(KDF("2", "9223372036854775807")),
	    FLS_ERR_KDF_LIMIT);
	assert_int_equal(parse(KDF("4294967296", "65536")), FLS_ERR_KDF_LIMIT);
	assert_int_equal(parse(KDF("16", "1048576")), FLS_OK);
	/* malformed */
	assert_int_equal(parse(KDF("-1", "65536")), FLS_ERR_FORMAT);
	assert_int_equal(parse(KDF("2.0", "65536")), FLS_ERR_FORMAT);
	assert_int_equal(parse(KDF("\"2\"", "65536")), FLS_ERR_FORMAT);
	assert_int_equal(parse(KDF("2", "65536.5")), FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2i\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\"}"), FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"version\":16,\"t\":2,"
	    "\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\"}"), FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":4,\"salt\":\"" SALT_B64 "\"}"), FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":1,\"salt\":\"oKGio6SlpqeoqaqrrK2u\"}"),
	    FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":1}"), FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\",\"x\":1}"),
	    FLS_ERR_FORMAT);
	assert_int_equal(parse("{\"alg\":\"argon2id\",\"alg\":\"argon2id\","
	    "\"t\":2,\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\"}"),
	    FLS_ERR_FORMAT);
	assert_int_equal(parse("[]"), FLS_ERR_FORMAT);
	assert_int_equal(parse(""), FLS_ERR_FORMAT);
	assert_int_equal(fls_kdf_parse(NULL, 0, &p), FLS_ERR_FORMAT);
	/* over 1 KiB (padding with spaces) */
	memset(buf, ' ', sizeof(buf));
	memcpy(buf, v, strlen(v));
	buf[1100] = '\0';
	assert_int_equal(parse(buf), FLS_ERR_FORMAT);
	buf[1000] = '\0';
	assert_int_equal(parse(buf), FLS_OK);
#undef KDF
}

/* ---- wrapped key ----------------------------------------------------------- */

#define PASS "correct horse battery staple"
#define WRAPKEY_HEX \
	"26995e5466d39be7d873e16782c02b073c718664e4dab83edaa7ef6d93fbc61b"
#define WRAPPED_HEX "000102030405060708090a0b0c0d0e0f1011121314151617bf7b290" \
	"88c95da45977d1f588c1fae8e402d2eb7a957e712dcb916c421a17e4e127805642eb29e" \
	"59325cd5122352e81d"
#define WRAPPED_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXv3spCIyV2kWXfR9YjB+ujkAt" \
	"LrepV+cS3LkWxCGhfk4SeAVkLrKeWTJc1RIjUugd"
#define KDF_JSON "{\"alg\":\"argon2id\",\"version\":19,\"t\":2,\"m\":65536," \
	"\"p\":1,\"salt\":\"" SALT_B64 "\"}"

static void
test_wrap_vector(void **state)
{
	fls_kdf_params p;
	unsigned char wk[32], want[32], nonce[24], m[32], out[KEYWRAP_LEN];
	unsigned char wantw[KEYWRAP_LEN], raw[32];
	fls_key *k = NULL;

	(void)state;
	assert_int_equal(fls_kdf_parse(KDF_JSON, strlen(KDF_JSON), &p), FLS_OK);
	assert_int_equal(keywrap_derive(wk, PASS, strlen(PASS), &p), FLS_OK);
	unhex(want, sizeof(want), WRAPKEY_HEX);
	assert_memory_equal(wk, want, 32);
	master_key(m);
	for (int i = 0; i < 24; i++)
		nonce[i] = (unsigned char)i;
	keywrap_seal(out, m, wk, &p, nonce);
	assert_int_equal(unhex(wantw, sizeof(wantw), WRAPPED_HEX), KEYWRAP_LEN);
	assert_memory_equal(out, wantw, KEYWRAP_LEN);

	assert_int_equal(fls_key_unwrap(PASS, strlen(PASS), KDF_JSON,
	    strlen(KDF_JSON), WRAPPED_B64, &k), FLS_OK);
	fls_key_export(k, raw);
	assert_memory_equal(raw, m, 32);
	fls_key_free(k);
	k = NULL;
	/* wrong passphrase */
	assert_int_equal(fls_key_unwrap("correct horse battery stapler", 29,
	    KDF_JSON, strlen(KDF_JSON), WRAPPED_B64, &k), FLS_ERR_DECRYPT);
	assert_null(k);
	/* the parameters are bound to the wrapped key (associated data) */
	p.t = 3;
	assert_int_equal(keywrap_derive(wk, PASS, strlen(PASS), &p), FLS_OK);
	assert_int_equal(keywrap_open(raw, wk, &p, wantw, KEYWRAP_LEN),
	    FLS_ERR_DECRYPT);
	p.t = 2;
	assert_int_equal(keywrap_derive(wk, PASS, strlen(PASS), &p), FLS_OK);
	for (size_t i = 0; i < KEYWRAP_LEN; i++) {
		unsigned char bad[KEYWRAP_LEN];

		memcpy(bad, wantw, KEYWRAP_LEN);
		bad[i] ^= 0x80;
		assert_int_equal(keywrap_open(raw, wk, &p, bad, KEYWRAP_LEN),
		    FLS_ERR_DECRYPT);
	}
	assert_int_equal(keywrap_open(raw, wk, &p, wantw, KEYWRAP_LEN - 1),
	    FLS_ERR_FORMAT);
	assert_int_equal(keywrap_open(raw, wk, &p, wantw, KEYWRAP_LEN), FLS_OK);
	assert_memory_equal(raw, m, 32);
	/* a bare 32-byte key or garbage is not a wrapped key */
	assert_int_equal(fls_key_unwrap(PASS, strlen(PASS), KDF_JSON,
	    strlen(KDF_JSON), "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &k),
	    FLS_ERR_FORMAT);
	assert_int_equal(fls_key_unwrap(PASS, strlen(PASS), KDF_JSON,
	    strlen(KDF_JSON), "not base64!", &k), FLS_ERR_FORMAT);
}

static void
test_unwrap_refuses_bad_kdf_first(void **state)
{
	fls_key *k = NULL;
	const char *weak = "{\"alg\":\"argon2id\",\"version\":19,\"t\":1,"
	    "\"m\":65536,\"p\":1,\"salt\":\"" SALT_B64 "\"}";
	const char *huge = "{\"alg\":\"argon2id\",\"version\":19,\"t\":2,"
	    "\"m\":104857600,\"p\":1,\"salt\":\"" SALT_B64 "\"}";

	(void)state;
	assert_int_equal(fls_key_unwrap(PASS, strlen(PASS), weak, strlen(weak),
	    WRAPPED_B64, &k), FLS_ERR_KDF_WEAK);
	assert_int_equal(fls_key_unwrap(PASS, strlen(PASS), huge, strlen(huge),
	    WRAPPED_B64, &k), FLS_ERR_KDF_LIMIT);
	assert_null(k);
}

/*
 * The passphrase is hashed in NFC: composed, decomposed and with a
 * compatibility-equal sign (U+212B ANGSTROM SIGN) it gives the key of its
 * NFC bytes (gen_vectors.py); what is not UTF-8 is refused.
 */
#define NFC_WRAPKEY_HEX \
	"9b93a1e887dab96e52be567b33bf348b5c7dd393689fb0bbaeee39b69d4d5573"

static void
test_passphrase_nfc(void **state)
{
	static const char *const forms[] = {
		"P\xc3\xa4ssw\xc3\xb6rd caf\xc3\xa9 \xc3\x85ngstr\xc3\xb6m",
		"Pa\xcc\x88sswo\xcc\x88rd cafe\xcc\x81 \xc3\x85ngstro\xcc\x88m",
		"P\xc3\xa4ssw\xc3\xb6rd caf\xc3\xa9 \xe2\x84\xabngstr\xc3\xb6m",
	};
	fls_kdf_params p;
	unsigned char wk[32], want[32];
	size_t i;

	(void)state;
	assert_int_equal(fls_kdf_parse(KDF_JSON, strlen(KDF_JSON), &p), FLS_OK);
	unhex(want, sizeof(want), NFC_WRAPKEY_HEX);
	for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++) {
		memset(wk, 0, sizeof(wk));
		assert_int_equal(keywrap_derive(wk, forms[i], strlen(forms[i]),
		    &p), FLS_OK);
		assert_memory_equal(wk, want, 32);
	}
	/* not UTF-8: a lone continuation byte, an overlong form */
	assert_int_equal(keywrap_derive(wk, "caf\xa9", 4, &p), FLS_ERR_ARG);
	assert_int_equal(keywrap_derive(wk, "\xc0\xafpass", 6, &p),
	    FLS_ERR_ARG);
}

static void
test_wrap_roundtrip(void **state)
{
	fls_key *k = NULL, *back = NULL;
	char *w = NULL, *j = NULL, *w2 = NULL, *j2 = NULL;
	unsigned char a[32], b[32];
	fls_kdf_params p, weak = { 1, 65536, 1, { 0 } };

	(void)state;
	assert_int_equal(fls_key_generate(&k), FLS_OK);
	assert_int_equal(fls_key_wrap(k, "pass phrase 1", 13, NULL, &w, &j),
	    FLS_OK);
	assert_int_equal(fls_kdf_parse(j, strlen(j), &p), FLS_OK);
	assert_int_equal(p.t, FLS_KDF_T_DEFAULT);
	assert_int_equal(p.m_kib, FLS_KDF_M_KIB_DEFAULT);
	assert_int_equal(fls_key_unwrap("pass phrase 1", 13, j, strlen(j), w,
	    &back), FLS_OK);
	fls_key_export(k, a);
	fls_key_export(back, b);
	assert_memory_equal(a, b, 32);
	/* a second wrap of the same key: fresh salt and nonce */
	assert_int_equal(fls_key_wrap(k, "pass phrase 1", 13, NULL, &w2, &j2),
	    FLS_OK);
	assert_string_not_equal(w, w2);
	assert_string_not_equal(j, j2);
	/* the client refuses to wrap with weak parameters too */
	free(w2);
	free(j2);
	w2 = j2 = NULL;
	assert_int_equal(fls_key_wrap(k, "pass phrase 1", 13, &weak, &w2, &j2),
	    FLS_ERR_KDF_WEAK);
	assert_null(w2);
	free(w);
	free(j);
	fls_key_free(k);
	fls_key_free(back);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hkdf_rfc5869),
		cmocka_unit_test(test_type_keys),
		cmocka_unit_test(test_envelope_vectors),
		cmocka_unit_test(test_envelope_tampering),
		cmocka_unit_test(test_encrypt_decrypt_api),
		cmocka_unit_test(test_kdf_parse),
		cmocka_unit_test(test_wrap_vector),
		cmocka_unit_test(test_passphrase_nfc),
		cmocka_unit_test(test_unwrap_refuses_bad_kdf_first),
		cmocka_unit_test(test_wrap_roundtrip),
	};

	if (fls_init() != FLS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
