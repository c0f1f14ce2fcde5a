/*
 * fuzz_b64: b64_decode() of arbitrary bytes into buffers of several
 * capacities (each exactly that size on the heap, so ASan sees any write
 * past cap), and b64_encode() of arbitrary bytes.
 *
 * Properties checked (abort on violation):
 *   - a successful decode fits in cap and in b64_decoded_max(len);
 *   - whether a decode succeeds does not depend on cap once cap is large
 *     enough, and every large-enough cap gives the same bytes;
 *   - padding is required: an accepted non-empty input has len % 4 == 0;
 *   - the encoding is canonical: re-encoding what was decoded gives back
 *     exactly the input;
 *   - encode then decode is the identity, and b64_encoded_len() is the
 *     length of what b64_encode() writes;
 *   - the table-driven b64_encode_public() / b64_decode_public() agree
 *     with the constant-time pair on every input and capacity.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/b64.h"

#define FUZZ_NAME "fuzz_b64"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	return 0;
}

/* Decodes s into a heap buffer of exactly cap bytes; returns the result and
 * copies the output to keep (capacity >= cap) when it succeeded. */
static int
decode_into(size_t cap, const char *s, size_t len, unsigned char *keep,
    size_t *n)
{
	/* malloc(0) may return NULL; one byte keeps the pointer valid while
	 * cap (what the decoder may use) stays 0. */
	unsigned char *out = malloc(cap ? cap : 1);
	unsigned char *fast = malloc(cap ? cap : 1);
	size_t nf = (size_t)-1;
	int rc, rcf;

	if (out == NULL || fast == NULL)
		FAIL("out of memory");
	*n = (size_t)-1;
	rc = b64_decode(out, cap, n, s, len);
	rcf = b64_decode_public(fast, cap, &nf, s, len);
	if (rcf != rc || nf != *n || (rc == 0 && *n > 0 &&
	    memcmp(fast, out, *n) != 0))
		FAIL("b64_decode_public disagrees (cap %zu: %d/%zu vs %d/%zu)",
		    cap, rcf, nf, rc, *n);
	free(fast);
	if (rc == 0) {
		if (*n > cap)
			FAIL("decoded %zu bytes into a %zu-byte buffer", *n, cap);
		if (keep != NULL && *n > 0)
			memcpy(keep, out, *n);
	} else if (rc != -1) {
		FAIL("b64_decode returned %d", rc);
	} else if (*n != 0) {
		FAIL("failed decode left *outlen = %zu", *n);
	}
	free(out);
	return rc;
}

static void
check_decode(const uint8_t *data, size_t size)
{
	/* The input as the server holds it: a copy of exactly size bytes,
	 * not NUL-terminated, so a read past len is an ASan report. */
	char *s = malloc(size ? size : 1);
	size_t max = b64_decoded_max(size), n_full, n, i;
	unsigned char *full, *tmp;
	char *enc;
	int rc_full, rc;
	const size_t small[] = { 0, 1, 2, 3, 16, 32 };

	if (s == NULL)
		FAIL("out of memory");
	if (size > 0)
		memcpy(s, data, size);
	full = malloc(max + 1);
	tmp = malloc(max + 1);
	if (full == NULL || tmp == NULL)
		FAIL("out of memory");

	/* The capacity the handlers use: b64_decoded_max(len) + 1. */
	rc_full = decode_into(max + 1, s, size, full, &n_full);
	if (rc_full == 0) {
		if (n_full > max)
			FAIL("decoded %zu bytes, b64_decoded_max said %zu",
			    n_full, max);
		if (size > 0 && size % 4 != 0)
			FAIL("accepted unpadded input of length %zu", size);
		enc = malloc(b64_encoded_len(n_full) + 1);
		if (enc == NULL)
			FAIL("out of memory");
		b64_encode(enc, full, n_full);
		if (strlen(enc) != size || memcmp(enc, s, size) != 0)
			FAIL("round trip changed the input (len %zu -> %zu)",
			    size, strlen(enc));
		free(enc);
	}

	/* Exactly b64_decoded_max(len): still enough. */
	rc = decode_into(max, s, size, tmp, &n);
	if (rc != rc_full)
		FAIL("cap %zu gives %d, cap %zu gives %d", max, rc, max + 1,
		    rc_full);
	if (rc == 0 && (n != n_full || (n > 0 && memcmp(tmp, full, n) != 0)))
		FAIL("cap %zu decodes differently from cap %zu", max, max + 1);

	/* Small capacities: succeed only when the whole result fits. */
	for (i = 0; i < sizeof(small) / sizeof(small[0]); i++) {
		size_t cap = small[i];

		if (cap >= max)
			continue;
		rc = decode_into(cap, s, size, tmp, &n);
		if (rc == 0 && rc_full != 0)
			FAIL("cap %zu accepts what cap %zu refuses", cap,
			    max + 1);
		if (rc == 0 && (n != n_full ||
		    (n > 0 && memcmp(tmp, full, n) != 0)))
			FAIL("cap %zu decodes differently", cap);
		if (rc != 0 && rc_full == 0 && n_full <= cap)
			FAIL("cap %zu refuses a %zu-byte result", cap, n_full);
	}
	/* Exactly the decoded size, and one less. */
	if (rc_full == 0) {
		rc = decode_into(n_full, s, size, tmp, &n);
		if (rc != 0 || n != n_full)
			FAIL("exact cap %zu refused", n_full);
		if (n_full > 0 && decode_into(n_full - 1, s, size, NULL,
		    &n) == 0)
			FAIL("cap %zu accepted a %zu-byte result", n_full - 1,
			    n_full);
	}
	free(full);
	free(tmp);
	free(s);
}

static void
check_encode(const uint8_t *data, size_t size)
{
	size_t elen = b64_encoded_len(size), n;
	char *enc = malloc(elen + 1);
	char *fast = malloc(elen + 1);
	unsigned char *back;

	if (enc == NULL || fast == NULL)
		FAIL("out of memory");
	if (b64_encode(enc, data, size) != enc)
		FAIL("b64_encode did not return out");
	if (b64_encode_public(fast, data, size) != fast ||
	    strcmp(fast, enc) != 0)
		FAIL("b64_encode_public disagrees on %zu bytes", size);
	free(fast);
	if (strlen(enc) != elen || elen % 4 != 0)
		FAIL("encoded length %zu, b64_encoded_len said %zu",
		    strlen(enc), elen);
	back = malloc(size ? size : 1);
	if (back == NULL)
		FAIL("out of memory");
	if (b64_decode(back, size, &n, enc, elen) != 0)
		FAIL("decode of our own %zu-byte encoding failed", elen);
	if (n != size || (size > 0 && memcmp(back, data, size) != 0))
		FAIL("encode/decode round trip changed %zu bytes", size);
	free(back);
	free(enc);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_decode(data, size);
	check_encode(data, size);
	return 0;
}
