/* JSON body validation, email normalisation and log redaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/api.h"
#include "server/log.h"

static const struct jfield fields[] = {
	{ "name", JF_STRING, true, 1, 8 },
	{ "count", JF_INT, false, 0, 10 },
	{ "on", JF_BOOL, false, 0, 0 },
	{ "kdf", JF_OBJECT, false, 0, 20 },
	{ "items", JF_ARRAY, false, 0, 2 },
};
#define NF (sizeof(fields) / sizeof(fields[0]))

static bool
check(const char *text, char *msg, size_t len)
{
	json_t *j = json_loads(text, 0, NULL);
	bool ok;

	assert_non_null(j);
	msg[0] = '\0';
	ok = json_fields_check(j, fields, NF, msg, len);
	json_decref(j);
	return ok;
}

static void
test_valid(void **state)
{
	char msg[256];

	assert_true(check("{\"name\":\"ab\"}", msg, sizeof(msg)));
	assert_true(check("{\"name\":\"ab\",\"count\":10,\"on\":false,"
	    "\"kdf\":{\"a\":1},\"items\":[1,2]}", msg, sizeof(msg)));
	/* null is absent for optional fields */
	assert_true(check("{\"name\":\"ab\",\"count\":null}", msg,
	    sizeof(msg)));
}

static void
test_invalid_names_field(void **state)
{
	static const struct {
		const char *body;
		const char *field;
	} cases[] = {
		{ "{}", "name" },
		{ "{\"name\":null}", "name" },
		{ "{\"name\":\"\"}", "name" },
		{ "{\"name\":\"123456789\"}", "name" },
		{ "{\"name\":1}", "name" },
		{ "{\"name\":\"a\\u0000b\"}", "name" },
		{ "{\"name\":\"a\",\"count\":11}", "count" },
		{ "{\"name\":\"a\",\"count\":-1}", "count" },
		{ "{\"name\":\"a\",\"count\":1.5}", "count" },
		{ "{\"name\":\"a\",\"count\":\"1\"}", "count" },
		{ "{\"name\":\"a\",\"on\":1}", "on" },
		{ "{\"name\":\"a\",\"kdf\":[]}", "kdf" },
		{ "{\"name\":\"a\",\"kdf\":{\"long\":\"xxxxxxxxxxxxxx\"}}", "kdf" },
		{ "{\"name\":\"a\",\"items\":[1,2,3]}", "items" },
		{ "{\"name\":\"a\",\"extra\":1}", "extra" },
	};
	char msg[256];
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = json_loads(cases[i].body, JSON_ALLOW_NUL, NULL);

		assert_non_null(j);
		assert_false(json_fields_check(j, fields, NF, msg,
		    sizeof(msg)));
		assert_non_null(strstr(msg, cases[i].field));
		json_decref(j);
	}
}

static void
test_not_object(void **state)
{
	char msg[256];
	json_t *j = json_loads("[1]", 0, NULL);

	assert_false(json_fields_check(j, fields, NF, msg, sizeof(msg)));
	json_decref(j);
}

static void
test_email(void **state)
{
	char out[STORE_EMAIL_MAX + 1];
	char longmail[300];

	assert_true(email_normalize(out, "Alice@Example.COM"));
	assert_string_equal(out, "alice@example.com");
	assert_false(email_normalize(out, "alice"));
	assert_false(email_normalize(out, "@example.com"));
	assert_false(email_normalize(out, "a@b"));
	assert_false(email_normalize(out, "a@.com"));
	assert_false(email_normalize(out, "a@b."));
	assert_false(email_normalize(out, "a@@b.com"));
	assert_false(email_normalize(out, "a b@c.com"));
	assert_false(email_normalize(out, "a@b@c.com"));
	memset(longmail, 'a', sizeof(longmail));
	memcpy(longmail + 250, "@b.co", 6);
	assert_false(email_normalize(out, longmail));
}

static void
test_redact(void **state)
{
	char out[256];

	log_redact(out, sizeof(out),
	    "/api/x?temp_token=flm_temp_0123456789abcdef0123456789abcdef&a=1");
	assert_null(strstr(out, "0123456789abcdef"));
	assert_non_null(strstr(out, "a=1"));
	log_redact(out, sizeof(out), "/p/flm_sync_00112233445566778899aabbccddeeff/q");
	assert_null(strstr(out, "00112233"));
	assert_non_null(strstr(out, "/q"));
	log_redact(out, sizeof(out), "/a\nb\"c");
	assert_null(strchr(out, '\n'));
	assert_null(strchr(out, '"'));
	log_redact(out, 8, "/abcdefghijklmnop");
	assert_int_equal(strlen(out), 7);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid),
		cmocka_unit_test(test_invalid_names_field),
		cmocka_unit_test(test_not_object),
		cmocka_unit_test(test_email),
		cmocka_unit_test(test_redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
