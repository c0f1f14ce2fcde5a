/* Unit tests of src/common/datatype.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "common/datatype.h"

static void
test_names(void **state)
{
	static const char *const names[DT_COUNT] = {
		"history", "environment", "secret", "collection", "setting"
	};
	int t;

	for (t = 0; t < DT_COUNT; t++) {
		assert_string_equal(datatype_name(t), names[t]);
		assert_int_equal(datatype_parse(names[t]), t);
	}
	assert_null(datatype_name(-1));
	assert_null(datatype_name(DT_COUNT));
}

static void
test_parse_refuses(void **state)
{
	assert_int_equal(datatype_parse("History"), -1);
	assert_int_equal(datatype_parse("histories"), -1);
	assert_int_equal(datatype_parse("histor"), -1);
	assert_int_equal(datatype_parse("secrets"), -1);
	assert_int_equal(datatype_parse(" secret"), -1);
	assert_int_equal(datatype_parse(""), -1);
	assert_int_equal(datatype_parse(NULL), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_parse_refuses),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
