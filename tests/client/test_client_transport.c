/*
 * Unit tests of the client's transport helpers and small public functions
 * that need no server: base URL checks (https anywhere, http only for
 * loopback unless allowed, no path, query or user info), bounded copies
 * of server text (control bytes replaced, UTF-8 never cut in the middle),
 * token checks, type names, status names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "flamingosync.h"

#include "client/transport.h"

static fls_status
url_ok(const char *u, bool allow_http)
{
	fls_client *c = NULL;
	fls_status st = fls_client_new(u, allow_http, &c);

	if (st == FLS_OK)
		assert_non_null(c);
	else
		assert_null(c);
	fls_client_free(c);
	return st;
}

static void
test_base_urls(void **state)
{
	(void)state;
	assert_int_equal(url_ok("https://sync.example.com", false), FLS_OK);
	assert_int_equal(url_ok("https://sync.example.com:8443/", false), FLS_OK);
	assert_int_equal(url_ok("http://127.0.0.1:3000", false), FLS_OK);
	assert_int_equal(url_ok("http://localhost:3000", false), FLS_OK);
	assert_int_equal(url_ok("http://[::1]:3000", false), FLS_OK);
	assert_int_equal(url_ok("http://sync.example.com", false), FLS_ERR_ARG);
	assert_int_equal(url_ok("http://127.0.0.1.evil.com", false),
	    FLS_ERR_ARG);
	assert_int_equal(url_ok("http://localhost.evil.com:80", false),
	    FLS_ERR_ARG);
	assert_int_equal(url_ok("http://sync.example.com", true), FLS_OK);
	assert_int_equal(url_ok("https://sync.example.com/api", false),
	    FLS_ERR_ARG);
	assert_int_equal(url_ok("https://user:pw@sync.example.com", false),
	    FLS_ERR_ARG);
	assert_int_equal(url_ok("https://sync.example.com?x=1", false),
	    FLS_ERR_ARG);
	assert_int_equal(url_ok("ftp://sync.example.com", true), FLS_ERR_ARG);
	assert_int_equal(url_ok("https://", false), FLS_ERR_ARG);
	assert_int_equal(url_ok("", false), FLS_ERR_ARG);
	assert_int_equal(url_ok(NULL, false), FLS_ERR_ARG);
}

static void
test_copy_text(void **state)
{
	char out[8];

	(void)state;
	transport_copy_text(out, sizeof(out), "a\x1b[31m\n");
	assert_string_equal(out, "a?[31m?");
	transport_copy_text(out, sizeof(out), "abcdefghij");
	assert_string_equal(out, "abcdefg");
	/* "abcde" + U+00E9 (2 bytes) fits exactly: kept */
	transport_copy_text(out, sizeof(out), "abcde\xc3\xa9x");
	assert_string_equal(out, "abcde\xc3\xa9");
	/* "abcdef" + U+00E9 would be cut after its first byte: dropped */
	transport_copy_text(out, sizeof(out), "abcdef\xc3\xa9");
	assert_string_equal(out, "abcdef");
	/* a 4-byte sequence cut after 2 bytes: dropped whole */
	transport_copy_text(out, sizeof(out), "abcde\xf0\x9f\x90\xa6");
	assert_string_equal(out, "abcde");
	transport_copy_text(out, sizeof(out), NULL);
	assert_string_equal(out, "");
}

static void
test_tokens_types_names(void **state)
{
	fls_client *c = NULL;

	(void)state;
	assert_int_equal(fls_client_new("https://x.example", false, &c),
	    FLS_OK);
	assert_int_equal(fls_client_set_token(c,
	    "flm_sync_0123456789abcdef0123456789abcdef"), FLS_OK);
	assert_int_equal(fls_client_set_token(c,
	    "flm_temp_0123456789abcdef0123456789abcdef"), FLS_ERR_ARG);
	assert_int_equal(fls_client_set_token(c,
	    "flm_sync_0123456789ABCDEF0123456789abcdef"), FLS_ERR_ARG);
	assert_int_equal(fls_client_set_token(c, "flm_sync_\r\nX-Evil: 1"),
	    FLS_ERR_ARG);
	assert_int_equal(fls_client_set_token(c, NULL), FLS_OK);
	fls_client_free(c);

	for (int t = 0; t < FLS_TYPE_COUNT; t++)
		assert_int_equal(fls_type_parse(fls_type_name(t)), t);
	assert_int_equal(fls_type_parse("History"), -1);
	assert_int_equal(fls_type_parse("passwords"), -1);
	assert_int_equal(fls_type_parse(NULL), -1);
	assert_null(fls_type_name(FLS_TYPE_COUNT));
	assert_string_equal(fls_status_name(FLS_OK), "ok");
	assert_string_equal(fls_status_name(FLS_ERR_CONFLICT), "conflict");
	assert_string_equal(fls_status_name(FLS_ERR_IO), "io");
	assert_string_equal(fls_status_name((fls_status)999), "unknown");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base_urls),
		cmocka_unit_test(test_copy_text),
		cmocka_unit_test(test_tokens_types_names),
	};

	if (fls_init() != FLS_OK)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
