/*
 * fls-keytool: a test-only helper (never installed) for the zero-knowledge
 * test. Given the sync passphrase (FLAMINGO_SYNC_PASSPHRASE), a `kdf`
 * JSON object and a `wrapped_key` as the server stores them, it prints as
 * JSON the hex of every key the client derives from them: the Argon2id
 * wrapping key, the master key and the five per-type data keys. The test
 * then checks that none of them reached the server's database or log.
 * It uses only what any holder of the passphrase can compute; production
 * builds carry no key-dumping hook.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "flamingosync.h"

#include "client/keywrap.h"

static void
hex(const char *name, const unsigned char *p, size_t n, int comma)
{
	char h[2 * 64 + 1];

	sodium_bin2hex(h, sizeof(h), p, n);
	printf("  \"%s\": \"%s\"%s\n", name, h, comma ? "," : "");
}

int
main(int argc, char **argv)
{
	const char *pass = getenv("FLAMINGO_SYNC_PASSPHRASE");
	unsigned char wrapkey[32], master[32], tk[32];
	fls_kdf_params p;
	fls_key *k = NULL;
	fls_status st;
	char name[64];
	int t;

	if (argc != 3 || pass == NULL) {
		fprintf(stderr, "usage: FLAMINGO_SYNC_PASSPHRASE=... "
		    "fls-keytool KDF_JSON WRAPPED_KEY_B64\n");
		return 2;
	}
	if (fls_init() != FLS_OK)
		return 1;
	st = fls_kdf_parse(argv[1], strlen(argv[1]), &p);
	if (st == FLS_OK)
		st = keywrap_derive(wrapkey, pass, strlen(pass), &p);
	if (st == FLS_OK)
		st = fls_key_unwrap(pass, strlen(pass), argv[1], strlen(argv[1]),
		    argv[2], &k);
	if (st != FLS_OK) {
		fprintf(stderr, "fls-keytool: %s\n", fls_status_name(st));
		return 1;
	}
	fls_key_export(k, master);
	printf("{\n");
	hex("wrapping_key", wrapkey, 32, 1);
	hex("master_key", master, 32, 1);
	for (t = 0; t < FLS_TYPE_COUNT; t++) {
		if (fls_key_derive_type_key(k, t, tk) != FLS_OK)
			return 1;
		snprintf(name, sizeof(name), "type_key_%s", fls_type_name(t));
		hex(name, tk, 32, t + 1 < FLS_TYPE_COUNT);
	}
	printf("}\n");
	fls_key_free(k);
	return 0;
}
