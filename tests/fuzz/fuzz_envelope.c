/*
 * fuzz_envelope: the client's envelope decoder (src/client/envelope.c) on
 * hostile bytes, as a malicious server could send them.
 *
 * One input: byte 0 picks the data type (low 3 bits, 5..7 are invalid
 * types) and whether to demand key version 1 (bit 3); the rest is the
 * envelope, opened under a fixed master key into a heap buffer of exactly
 * the announced plaintext size (ASan sees any write past it).
 *
 * Properties checked (abort on violation):
 *   - envelope_parse accepts exactly: length >= 48, magic "FS", format 1,
 *     algorithm 2, key version != 0; never reads past the input;
 *   - envelope_open succeeds only where parse does, returns exactly
 *     len - 48 bytes, and the key version it reports is the header's;
 *   - a failed open leaves the output buffer zeroed;
 *   - the rest of the input sealed under the same key and type, then
 *     opened, round-trips; with any one bit flipped it is refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/envelope.h"

#define FUZZ_NAME "fuzz_envelope"
#include "fuzz.h"

static unsigned char master[32];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	for (int i = 0; i < 32; i++)
		master[i] = (unsigned char)i;
	return 0;
}

static int
header_ok(const uint8_t *p, size_t n)
{
	return n >= ENVELOPE_OVERHEAD && p[0] == 'F' && p[1] == 'S' &&
	    p[2] == 1 && p[3] == 2 && (p[4] | p[5] | p[6] | p[7]) != 0;
}

static void
roundtrip(int type, const uint8_t *pt, size_t n, size_t flip)
{
	unsigned char nonce[ENVELOPE_NONCE_LEN] = { 0 };
	unsigned char *env, *back;
	size_t elen = 0, blen = 0;

	env = malloc(n + ENVELOPE_OVERHEAD);
	back = malloc(n + 1);
	if (env == NULL || back == NULL)
		FAIL("out of memory");
	memcpy(nonce, pt, n < sizeof(nonce) ? n : sizeof(nonce));
	if (envelope_seal(master, type, 7, nonce, pt, n, env,
	    n + ENVELOPE_OVERHEAD, &elen) != FLS_OK)
		FAIL("seal failed");
	if (elen != n + ENVELOPE_OVERHEAD)
		FAIL("sealed length %zu for %zu bytes", elen, n);
	if (envelope_open(master, type, 7, env, elen, back, n, &blen, NULL) !=
	    FLS_OK || blen != n || (n > 0 && memcmp(back, pt, n) != 0))
		FAIL("round trip failed");
	flip %= elen * 8;
	env[flip / 8] ^= (unsigned char)(1u << (flip % 8));
	if (envelope_open(master, type, 0, env, elen, back, n, &blen, NULL) ==
	    FLS_OK)
		FAIL("a flipped bit %zu was accepted", flip);
	free(env);
	free(back);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct envelope_view v;
	const uint8_t *env;
	unsigned char *out;
	size_t n, cap, outlen = 0;
	uint32_t kv = 0;
	int type, want1;
	fls_status pst, ost;

	if (size < 1)
		return 0;
	type = data[0] & 7;
	want1 = (data[0] >> 3) & 1;
	/* a copy of exactly the envelope's size, so reads past it are seen */
	n = size - 1;
	env = n > 0 ? malloc(n) : NULL;
	if (n > 0 && env == NULL)
		FAIL("out of memory");
	if (n > 0)
		memcpy((void *)(uintptr_t)env, data + 1, n);

	pst = envelope_parse(env, n, &v);
	if ((pst == FLS_OK) != header_ok(env, n))
		FAIL("parse %d disagrees with the header rules", (int)pst);
	if (pst == FLS_OK && (v.ctlen != n - ENVELOPE_HEADER_LEN ||
	    v.key_version != ((uint32_t)env[4] << 24 | (uint32_t)env[5] << 16 |
	    (uint32_t)env[6] << 8 | env[7])))
		FAIL("parse fields wrong");

	cap = n >= ENVELOPE_OVERHEAD ? n - ENVELOPE_OVERHEAD : 0;
	out = malloc(cap + 1);
	if (out == NULL)
		FAIL("out of memory");
	memset(out, 0x5a, cap + 1);
	ost = envelope_open(master, type, want1 ? 1 : 0, env, n, out, cap,
	    &outlen, &kv);
	if (ost == FLS_OK) {
		if (pst != FLS_OK || type >= 5)
			FAIL("open accepted what parse refused");
		if (outlen != cap || kv != v.key_version)
			FAIL("open length %zu / key version %u wrong", outlen, kv);
		if (want1 && kv != 1)
			FAIL("open ignored the expected key version");
	} else if (ost == FLS_ERR_DECRYPT) {
		for (size_t i = 0; i < cap; i++)
			if (out[i] != 0)
				FAIL("output not wiped after a refusal");
	}
	free(out);
	free((void *)(uintptr_t)env);

	if (type < 5 && size <= 4096)
		roundtrip(type, data + 1, n, size > 1 ? data[1] * 131u + size :
		    0);
	return 0;
}
