/* The dashboard's embedded files and ETag matching. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/web.h"

static void
test_etag_matches(void **state)
{
	const char *e = "\"0123456789abcdef0123456789abcdef\"";

	assert_true(web_etag_matches(e, e));
	assert_true(web_etag_matches("W/\"0123456789abcdef0123456789abcdef\"",
	    e));
	assert_true(web_etag_matches("\"x\", "
	    "\"0123456789abcdef0123456789abcdef\"", e));
	assert_true(web_etag_matches("\"x\",W/"
	    "\"0123456789abcdef0123456789abcdef\"", e));
	assert_true(web_etag_matches("*", e));
	assert_true(web_etag_matches(" , *", e));
	assert_false(web_etag_matches("", e));
	assert_false(web_etag_matches("\"x\"", e));
	assert_false(web_etag_matches("0123456789abcdef0123456789abcdef", e));
	assert_false(web_etag_matches("\"0123456789abcdef0123456789abcde\"",
	    e));
	assert_false(web_etag_matches("\"0123456789abcdef0123456789abcdef0\"",
	    e));
	assert_false(web_etag_matches("W/", e));
	assert_false(web_etag_matches(",,,", e));
}

/* Every page the server routes to, and the 404 page, is embedded; every
 * file has a type, a strong 128-bit ETag and its bytes. */
static void
test_assets(void **state)
{
	static const char *const needed[] = {
		"login.html", "authorize.html", "complete.html",
		"dashboard.html", "404.html", "static/app.css",
	};
	size_t i, k;

	for (i = 0; i < sizeof(needed) / sizeof(needed[0]); i++)
		assert_non_null(web_asset_find(needed[i]));
	assert_null(web_asset_find("static/../login.html"));
	assert_null(web_asset_find("../web/login.html"));
	assert_null(web_asset_find(""));
	assert_true(web_assets_len >= 10);
	for (i = 0; i < web_assets_len; i++) {
		const struct web_asset *a = &web_assets[i];

		assert_non_null(a->data);
		assert_true(a->len > 0);
		assert_non_null(a->type);
		assert_int_equal(strlen(a->etag), 34);
		assert_int_equal(a->etag[0], '"');
		assert_int_equal(a->etag[33], '"');
		for (k = 1; k < 33; k++)
			assert_non_null(strchr("0123456789abcdef", a->etag[k]));
		assert_ptr_equal(web_asset_find(a->name), a);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_etag_matches),
		cmocka_unit_test(test_assets),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
