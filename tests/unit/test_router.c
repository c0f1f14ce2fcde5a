/* Router matching, Allow strings, body caps. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "server/config.h"
#include "server/http.h"
#include "server/router.h"

static const struct route *
match(unsigned m, const char *path, const char **params, unsigned *allowed)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s", path);
	memset(params, 0, sizeof(const char *) * REQ_MAX_PARAMS);
	return router_match(m, buf, params, allowed);
}

static void
test_static_routes(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	const struct route *rt;

	rt = match(M_POST, "/api/sync/init", p, &allowed);
	assert_non_null(rt);
	assert_string_equal(rt->pattern, "/api/sync/init");
	assert_int_equal(rt->auth, AUTH_NONE);
	rt = match(M_GET, "/api/sync/config", p, &allowed);
	assert_non_null(rt);
	assert_int_equal(rt->method, M_GET);
	rt = match(M_PUT, "/api/sync/config", p, &allowed);
	assert_non_null(rt);
	assert_int_equal(rt->method, M_PUT);
	assert_int_equal(rt->auth, AUTH_ANY);
}

static void
test_params(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	const struct route *rt;

	rt = match(M_GET, "/api/sync/data/history", p, &allowed);
	assert_non_null(rt);
	assert_string_equal(rt->pattern, "/api/sync/data/:type");
	assert_string_equal(p[0], "history");
	rt = match(M_GET, "/api/sync/data/secret/revisions/12", p, &allowed);
	assert_non_null(rt);
	assert_string_equal(rt->pattern,
	    "/api/sync/data/:type/revisions/:version");
	assert_string_equal(p[0], "secret");
	assert_string_equal(p[1], "12");
	rt = match(M_GET, "/api/sync/data/secret/revisions", p, &allowed);
	assert_non_null(rt);
	assert_string_equal(p[0], "secret");
	rt = match(M_DELETE, "/api/devices/abc", p, &allowed);
	assert_non_null(rt);
	assert_string_equal(p[0], "abc");
}

static void
test_not_found(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;

	assert_null(match(M_GET, "/api/nothing", p, &allowed));
	assert_int_equal(allowed, 0);
	assert_null(match(M_GET, "/api/sync/data/", p, &allowed));
	assert_int_equal(allowed, 0);
	assert_null(match(M_GET, "/api/sync/data//revisions", p, &allowed));
	assert_int_equal(allowed, 0);
	assert_null(match(M_GET, "/api/sync/config/", p, &allowed));
	assert_null(match(M_GET, "/api/sync/configx", p, &allowed));
	assert_null(match(M_GET, "api/sync/config", p, &allowed));
	assert_null(match(M_GET, "/api/sync/data/a/b/c/d", p, &allowed));
	assert_null(match(M_GET, "", p, &allowed));
}

static void
test_method_not_allowed(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	char allow[128];

	assert_null(match(M_DELETE, "/api/sync/config", p, &allowed));
	assert_int_equal(allowed, M_GET | M_HEAD | M_PUT | M_OPTIONS);
	router_allow_string(allowed, allow, sizeof(allow));
	assert_string_equal(allow, "GET, HEAD, PUT, OPTIONS");
	assert_null(match(M_GET, "/api/sync/init", p, &allowed));
	router_allow_string(allowed, allow, sizeof(allow));
	assert_string_equal(allow, "POST, OPTIONS");
	assert_int_equal(router_method_bit("BREW"), 0);
	assert_int_equal(router_method_bit("get"), 0);
}

static void
test_head_matches_get(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	const struct route *rt;

	rt = match(M_HEAD, "/healthz", p, &allowed);
	assert_non_null(rt);
	assert_int_equal(rt->method, M_GET);
}

static void
test_every_route_reachable(void **state)
{
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	size_t i;
	char path[256], *o;
	const char *s;

	for (i = 0; i < router_table_len; i++) {
		const struct route *rt = &router_table[i];

		/* instantiate the pattern */
		for (s = rt->pattern, o = path; *s != '\0';) {
			if (*s == ':') {
				memcpy(o, "x1", 2);
				o += 2;
				while (*s != '\0' && *s != '/')
					s++;
			} else {
				*o++ = *s++;
			}
		}
		*o = '\0';
		assert_ptr_equal(match(rt->method, path, p, &allowed), rt);
	}
}

static void
test_body_caps(void **state)
{
	struct config cfg;
	const char *p[REQ_MAX_PARAMS];
	unsigned allowed;
	const struct route *rt;

	memset(&cfg, 0, sizeof(cfg));
	cfg.max_blob_bytes = 3000;
	cfg.max_body_bytes = 1000;
	rt = match(M_PUT, "/api/sync/data/history", p, &allowed);
	assert_int_equal(router_body_cap(rt, &cfg, true), 3000);
	assert_true(router_body_cap(rt, &cfg, false) >= 4000);
	rt = match(M_GET, "/api/sync/config", p, &allowed);
	assert_int_equal(router_body_cap(rt, &cfg, false), 0);
	rt = match(M_POST, "/api/sync/init", p, &allowed);
	assert_int_equal(router_body_cap(rt, &cfg, false), 1000);
	rt = match(M_POST, "/api/sync/key/rotate", p, &allowed);
	assert_true(router_body_cap(rt, &cfg, false) >= 5 * 4000);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_static_routes),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_method_not_allowed),
		cmocka_unit_test(test_head_matches_get),
		cmocka_unit_test(test_every_route_reachable),
		cmocka_unit_test(test_body_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
