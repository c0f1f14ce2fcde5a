/* Unit tests of src/common/token.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "common/token.h"

static void
test_generate_parses(void **state)
{
	static const char *const prefixes[] = {
		TOKEN_SYNC_PREFIX, TOKEN_TEMP_PREFIX, TOKEN_WEB_PREFIX
	};
	char t[TOKEN_MAX_LEN + 1], u[TOKEN_MAX_LEN + 1];
	size_t i, k;

	for (k = 0; k < 3; k++) {
		for (i = 0; i < 100; i++) {
			token_generate(t, prefixes[k]);
			assert_int_equal(strlen(t),
			    strlen(prefixes[k]) + TOKEN_HEX_LEN);
			assert_true(token_parse(t, strlen(t), prefixes[k]));
			assert_false(token_parse(t, strlen(t),
			    prefixes[(k + 1) % 3]));
		}
	}
	token_generate(t, TOKEN_SYNC_PREFIX);
	token_generate(u, TOKEN_SYNC_PREFIX);
	assert_string_not_equal(t, u);
}

static void
test_parse_refuses(void **state)
{
	const char *good = "flm_sync_0123456789abcdef0123456789abcdef";
	char buf[64];

	assert_true(token_parse(good, strlen(good), TOKEN_SYNC_PREFIX));
	/* A len shorter than the string: only len bytes count. */
	assert_false(token_parse(good, strlen(good) - 1, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("flm_temp_0123456789abcdef0123456789abcdef",
	    41, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("flm_sync_0123456789abcdef0123456789abcde",
	    40, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("flm_sync_0123456789abcdef0123456789abcdef0",
	    42, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("flm_sync_0123456789ABCDEF0123456789abcdef",
	    41, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("FLM_SYNC_0123456789abcdef0123456789abcdef",
	    41, TOKEN_SYNC_PREFIX));
	assert_false(token_parse("", 0, TOKEN_SYNC_PREFIX));
	assert_false(token_parse(NULL, 0, TOKEN_SYNC_PREFIX));
	/* Every non-hex byte at every position is refused. */
	for (int c = 0; c < 256; c++) {
		if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))
			continue;
		for (size_t pos = 9; pos < 41; pos += 31) {
			memcpy(buf, good, 42);
			buf[pos] = (char)c;
			assert_false(token_parse(buf, 41, TOKEN_SYNC_PREFIX));
		}
	}
	/* Every hex digit is accepted. */
	for (const char *d = "0123456789abcdef"; *d != '\0'; d++) {
		memcpy(buf, good, 42);
		memset(buf + 9, *d, 32);
		assert_true(token_parse(buf, 41, TOKEN_SYNC_PREFIX));
	}
}

static void
test_hash_equal(void **state)
{
	/* SHA-256("abc"), FIPS 180-2. */
	static const uint8_t abc[TOKEN_HASH_LEN] = {
		0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea,
		0x41, 0x41, 0x40, 0xde, 0x5d, 0xae, 0x22, 0x23,
		0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17, 0x7a, 0x9c,
		0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad
	};
	uint8_t a[TOKEN_HASH_LEN], b[TOKEN_HASH_LEN], c[TOKEN_HASH_LEN];

	token_hash(a, "abc", 3);
	assert_memory_equal(a, abc, sizeof(abc));
	token_hash(a, "flm_sync_00", 11);
	token_hash(b, "flm_sync_00", 11);
	token_hash(c, "flm_sync_01", 11);
	assert_memory_equal(a, b, sizeof(a));
	assert_true(token_equal(a, b, sizeof(a)));
	assert_false(token_equal(a, c, sizeof(a)));
	b[TOKEN_HASH_LEN - 1] ^= 1;
	assert_false(token_equal(a, b, sizeof(a)));
	assert_true(token_equal("x", "y", 0));
}

static void
test_user_code_generate(void **state)
{
	char code[USER_CODE_LEN + 1], norm[USER_CODE_LEN + 1];
	size_t i, k;

	for (k = 0; k < 1000; k++) {
		user_code_generate(code);
		assert_int_equal(strlen(code), USER_CODE_LEN);
		for (i = 0; i < USER_CODE_LEN; i++)
			assert_non_null(strchr(USER_CODE_ALPHABET, code[i]));
		assert_true(user_code_normalize(norm, code, USER_CODE_LEN));
		assert_string_equal(norm, code);
	}
}

static void
test_user_code_distribution(void **state)
{
	enum { N = 40000, A = 20 };
	static unsigned int count[USER_CODE_LEN][A];
	char code[USER_CODE_LEN + 1];
	const char *p;
	size_t i, k, l;
	unsigned long total;

	memset(count, 0, sizeof(count));
	for (k = 0; k < N; k++) {
		user_code_generate(code);
		for (i = 0; i < USER_CODE_LEN; i++) {
			p = strchr(USER_CODE_ALPHABET, code[i]);
			assert_non_null(p);
			count[i][p - USER_CODE_ALPHABET]++;
		}
	}
	/* Every letter at every position: expected 2000, standard deviation
	 * about 44, so 1500..2500 cannot fail by chance. */
	for (i = 0; i < USER_CODE_LEN; i++)
		for (l = 0; l < A; l++) {
			assert_true(count[i][l] > N / A * 3 / 4);
			assert_true(count[i][l] < N / A * 5 / 4);
		}
	/* Over all positions each letter is expected 16000 times (deviation
	 * about 123); +-640 is five deviations. A byte taken modulo 20 would
	 * give four letters 12/13 of the others' share, about 15000: caught. */
	for (l = 0; l < A; l++) {
		total = 0;
		for (i = 0; i < USER_CODE_LEN; i++)
			total += count[i][l];
		assert_in_range(total, 16000 - 640, 16000 + 640);
	}
}

static void
test_user_code_normalize(void **state)
{
	char out[USER_CODE_LEN + 1];

	assert_true(user_code_normalize(out, "bcdf-ghjk", 9));
	assert_string_equal(out, "BCDFGHJK");
	assert_true(user_code_normalize(out, "BCDFGHJK", 8));
	assert_string_equal(out, "BCDFGHJK");
	assert_true(user_code_normalize(out, "xZwV-tsrq", 9));
	assert_string_equal(out, "XZWVTSRQ");
	/* Vowels and Y are not in the alphabet. */
	assert_false(user_code_normalize(out, "ABCD-FGHJ", 9));
	assert_string_equal(out, "");
	assert_false(user_code_normalize(out, "BCDF-GHJE", 9));
	assert_false(user_code_normalize(out, "BCDFGHJI", 8));
	assert_false(user_code_normalize(out, "BCDFGHJO", 8));
	assert_false(user_code_normalize(out, "BCDFGHJU", 8));
	assert_false(user_code_normalize(out, "BCDFGHJY", 8));
	/* Lengths. */
	assert_false(user_code_normalize(out, "BCDFGHJ", 7));
	assert_false(user_code_normalize(out, "BCDFGHJKL", 9));
	assert_false(user_code_normalize(out, "", 0));
	assert_false(user_code_normalize(out, NULL, 0));
	/* Dashes. */
	assert_false(user_code_normalize(out, "BCDF--GHJK", 10));
	assert_false(user_code_normalize(out, "BC-DF-GHJK", 10));
	assert_false(user_code_normalize(out, "BCD-FGHJK", 9));
	assert_false(user_code_normalize(out, "BCDFG-HJK", 9));
	assert_false(user_code_normalize(out, "-BCDFGHJK", 9));
	assert_false(user_code_normalize(out, "BCDFGHJK-", 9));
	/* Spaces and other bytes. */
	assert_false(user_code_normalize(out, "BCDF GHJK", 9));
	assert_false(user_code_normalize(out, " BCDFGHJK", 9));
	assert_false(user_code_normalize(out, "BCDFGHJK ", 9));
	assert_false(user_code_normalize(out, "BCDF_GHJK", 9));
	assert_false(user_code_normalize(out, "BCDF1GHJ", 8));
	assert_false(user_code_normalize(out, "BCDF\0GHJ", 8));
	assert_false(user_code_normalize(out, "BCDF\xc3\x9fGH", 8));
}

static void
test_user_code_format(void **state)
{
	char out[USER_CODE_LEN + 2], back[USER_CODE_LEN + 1];

	user_code_format(out, "BCDFGHJK");
	assert_string_equal(out, "BCDF-GHJK");
	assert_true(user_code_normalize(back, out, strlen(out)));
	assert_string_equal(back, "BCDFGHJK");
}

static void
test_uuid(void **state)
{
	char u[UUID_LEN + 1], v[UUID_LEN + 1];
	size_t i;

	for (i = 0; i < 200; i++) {
		uuid_generate(u);
		assert_int_equal(strlen(u), UUID_LEN);
		assert_true(uuid_valid(u));
		assert_int_equal(u[14], '4');
		assert_non_null(strchr("89ab", u[19]));
	}
	uuid_generate(v);
	assert_string_not_equal(u, v);

	assert_true(uuid_valid("00000000-0000-0000-0000-000000000000"));
	assert_true(uuid_valid("123e4567-e89b-42d3-a456-426614174000"));
	assert_false(uuid_valid("123E4567-E89B-42D3-A456-426614174000"));
	assert_false(uuid_valid("123e4567-e89b-42d3-a456-42661417400"));
	assert_false(uuid_valid("123e4567-e89b-42d3-a456-4266141740000"));
	assert_false(uuid_valid("123e4567e89b-42d3-a456-4266141740000"));
	assert_false(uuid_valid("123e4567-e89b-42d3-a456_426614174000"));
	assert_false(uuid_valid("123e4567-e89b-42d3-a456-42661417400g"));
	assert_false(uuid_valid("{23e4567-e89b-42d3-a456-426614174000"));
	assert_false(uuid_valid(""));
	assert_false(uuid_valid(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_generate_parses),
		cmocka_unit_test(test_parse_refuses),
		cmocka_unit_test(test_hash_equal),
		cmocka_unit_test(test_user_code_generate),
		cmocka_unit_test(test_user_code_distribution),
		cmocka_unit_test(test_user_code_normalize),
		cmocka_unit_test(test_user_code_format),
		cmocka_unit_test(test_uuid),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
