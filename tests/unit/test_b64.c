/* Unit tests of src/common/b64.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/b64.h"

/* RFC 4648 section 10. */
static const struct {
	const char *plain;
	const char *enc;
} vectors[] = {
	{ "", "" },
	{ "f", "Zg==" },
	{ "fo", "Zm8=" },
	{ "foo", "Zm9v" },
	{ "foob", "Zm9vYg==" },
	{ "fooba", "Zm9vYmE=" },
	{ "foobar", "Zm9vYmFy" },
};

#define NVECTORS (sizeof(vectors) / sizeof(vectors[0]))

static int
decode_str(unsigned char *out, size_t cap, size_t *outlen, const char *s)
{
	return b64_decode(out, cap, outlen, s, strlen(s));
}

static void
test_rfc4648(void **state)
{
	char enc[16];
	unsigned char dec[16];
	size_t i, n, plen;

	for (i = 0; i < NVECTORS; i++) {
		plen = strlen(vectors[i].plain);
		assert_int_equal(b64_encoded_len(plen), strlen(vectors[i].enc));
		assert_ptr_equal(b64_encode(enc,
		    (const unsigned char *)vectors[i].plain, plen), enc);
		assert_string_equal(enc, vectors[i].enc);

		n = 99;
		assert_int_equal(decode_str(dec, sizeof(dec), &n,
		    vectors[i].enc), 0);
		assert_int_equal(n, plen);
		assert_memory_equal(dec, vectors[i].plain, plen);
		assert_true(b64_decoded_max(strlen(vectors[i].enc)) >= plen);
	}
	/* Both extra alphabet characters. */
	assert_int_equal(decode_str(dec, sizeof(dec), &n, "+/+/"), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(dec, "\xfb\xff\xbf", 3);
	b64_encode(enc, (const unsigned char *)"\xfb\xff\xbf", 3);
	assert_string_equal(enc, "+/+/");
	for (i = 0; i < NVECTORS; i++) {
		plen = strlen(vectors[i].plain);
		assert_ptr_equal(b64_encode_public(enc,
		    (const unsigned char *)vectors[i].plain, plen), enc);
		assert_string_equal(enc, vectors[i].enc);
	}
}

static void
test_refused(void **state)
{
	static const char *const bad[] = {
		"Zg",		/* missing padding */
		"Zg=",		/* short padding */
		"Zm8",
		"Zm9vYg",
		"Zm9vYmE",
		"Z",
		"Zg===",	/* too much padding */
		"Zm8==",
		"Zm9v=",
		"====",
		"=",
		"Zg==Zg==",	/* data after padding */
		"Zm9vYmFy=",	/* trailing garbage */
		"Zm9vYmFyx",
		"Zm9vYmFy\n",
		"Zm9v\nYmFy",	/* whitespace */
		"Zm9v YmFy",
		" Zm9vYmFy",
		"Zm9vYmFy\r\n",
		"Zm9v\tYmFy",
		"Zm9v-mFy",	/* url-safe alphabet */
		"Zm9v_mFy",
		"Zm9v*mFy",	/* not base64 */
		"Zm9v.mFy",
		"Zh==",		/* non-zero trailing bits */
		"Zm9=",
	};
	static const char alphabet[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	unsigned char out[32];
	char buf[8];
	size_t i, n, pos;
	int c;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		n = 99;
		if (decode_str(out, sizeof(out), &n, bad[i]) != -1)
			fail_msg("accepted '%s'", bad[i]);
		assert_int_equal(n, 0);
		n = 99;
		if (b64_decode_public(out, sizeof(out), &n, bad[i],
		    strlen(bad[i])) != -1)
			fail_msg("the table decoder accepted '%s'", bad[i]);
		assert_int_equal(n, 0);
	}
	/* An embedded NUL inside len, and a non-ASCII byte. */
	assert_int_equal(b64_decode(out, sizeof(out), &n, "Zm9v\0mFy", 8), -1);
	assert_int_equal(b64_decode(out, sizeof(out), &n, "Zm9vYmFy\0", 9), -1);
	assert_int_equal(b64_decode(out, sizeof(out), &n, "Zm9v\xc3\xa9" "Fy", 8),
	    -1);
	/* Every byte outside the alphabet, at every position (libsodium
	 * 1.0.18 alone would take 0x80..0xff as letters). */
	for (c = 0; c < 256; c++) {
		if (strchr(alphabet, c) != NULL && c != '\0')
			continue;
		for (pos = 0; pos < 8; pos++) {
			memcpy(buf, "Zm9vYmFy", 8);
			buf[pos] = (char)c;
			assert_int_equal(b64_decode(out, sizeof(out), &n, buf, 8),
			    -1);
			assert_int_equal(b64_decode_public(out, sizeof(out), &n,
			    buf, 8), -1);
		}
	}
	/* len is honoured: the bytes after it are not read. */
	assert_int_equal(b64_decode(out, sizeof(out), &n, "Zm9vYmFy!!", 8), 0);
	assert_int_equal(n, 6);
}

static void
test_output_too_small(void **state)
{
	unsigned char out[8];
	size_t n;

	assert_int_equal(decode_str(out, 6, &n, "Zm9vYmFy"), 0);
	assert_int_equal(n, 6);
	n = 99;
	assert_int_equal(decode_str(out, 5, &n, "Zm9vYmFy"), -1);
	assert_int_equal(n, 0);
	assert_int_equal(decode_str(out, 0, &n, "Zg=="), -1);
	assert_int_equal(decode_str(out, 1, &n, "Zg=="), 0);
	assert_int_equal(decode_str(out, 0, &n, ""), 0);
	assert_int_equal(n, 0);
}

static void
test_round_trip(void **state)
{
	unsigned char in[1100], out[1100];
	char enc[1500];
	size_t len, n, elen;
	int rep;

	for (len = 0; len <= 1030; len++) {
		for (rep = 0; rep < (len < 64 ? 8 : 1); rep++) {
			randombytes_buf(in, len);
			elen = b64_encoded_len(len);
			assert_true(elen + 1 <= sizeof(enc));
			memset(enc, 'X', sizeof(enc));
			b64_encode(enc, in, len);
			assert_int_equal(strlen(enc), elen);
			/* the table encoder writes exactly the same bytes */
			{
				char fast[1500];

				memset(fast, 'Y', sizeof(fast));
				b64_encode_public(fast, in, len);
				assert_memory_equal(fast, enc, elen + 1);
			}
			assert_int_equal(elen % 4, 0);
			assert_true(b64_decoded_max(elen) >= len);
			assert_true(b64_decoded_max(elen) < len + 3);
			/* the table decoder agrees, down to the capacity */
			n = 0;
			assert_int_equal(b64_decode_public(out, len, &n, enc,
			    elen), 0);
			assert_int_equal(n, len);
			assert_memory_equal(out, in, len);
			if (len > 0)
				assert_int_equal(b64_decode_public(out, len - 1,
				    &n, enc, elen), -1);
			/* Exactly the needed capacity is enough. */
			assert_int_equal(b64_decode(out, len, &n, enc, elen),
			    0);
			assert_int_equal(n, len);
			assert_memory_equal(out, in, len);
			if (len > 0)
				assert_int_equal(b64_decode(out, len - 1, &n,
				    enc, elen), -1);
		}
	}
}

static void
test_bounds(void **state)
{
	size_t len;

	assert_int_equal(b64_encoded_len(0), 0);
	assert_int_equal(b64_encoded_len(1), 4);
	assert_int_equal(b64_encoded_len(2), 4);
	assert_int_equal(b64_encoded_len(3), 4);
	assert_int_equal(b64_encoded_len(4), 8);
	assert_int_equal(b64_encoded_len(1073741824), 1431655768);
	/* Saturates instead of wrapping, leaving room for the NUL. */
	assert_true(b64_encoded_len(SIZE_MAX) == SIZE_MAX - 1);
	assert_true(b64_encoded_len(SIZE_MAX / 4 * 3) == SIZE_MAX - 3);
	assert_true(b64_encoded_len(SIZE_MAX / 4 * 3 + 1) == SIZE_MAX - 1);

	assert_int_equal(b64_decoded_max(0), 0);
	assert_int_equal(b64_decoded_max(4), 3);
	assert_int_equal(b64_decoded_max(8), 6);
	for (len = 0; len < 64; len++)
		assert_true(b64_decoded_max(len) * 8 <= len * 6);
	assert_true(b64_decoded_max(SIZE_MAX) < SIZE_MAX);
	assert_true(b64_decoded_max(SIZE_MAX) >= SIZE_MAX / 4 * 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648),
		cmocka_unit_test(test_refused),
		cmocka_unit_test(test_output_too_small),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_bounds),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
