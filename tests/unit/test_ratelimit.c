/*
 * Unit tests of src/common/ratelimit.c, and of the clock helpers in
 * src/common/timeutil.c that the limits run on.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>

#include <cmocka.h>

#include "common/ratelimit.h"
#include "common/timeutil.h"

#define T0 1700000000000LL /* an arbitrary "now", ms */

static void
test_fixed_window(void **state)
{
	const struct rate_rule r = { 3, 60000, false };
	struct rate_state st = { 0, 0, 0 };
	int64_t now = T0;
	int i;

	assert_int_equal(rate_check(&r, &st, now), 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(rate_check(&r, &st, now), 0);
		rate_record(&r, &st, now);
		now += 1000;
	}
	assert_int_equal(st.window_start, T0);
	assert_int_equal(st.count, 3);
	assert_int_equal(st.blocked_until, T0 + 60000);
	/* now = T0 + 3000: refused until the window ends, 57 s away. */
	assert_int_equal(rate_check(&r, &st, now), 57);
	/* Rounded up, never 0 while refused. */
	assert_int_equal(rate_check(&r, &st, T0 + 3001), 57);
	assert_int_equal(rate_check(&r, &st, T0 + 58999), 2);
	assert_int_equal(rate_check(&r, &st, T0 + 59000), 1);
	assert_int_equal(rate_check(&r, &st, T0 + 59999), 1);
	/* A refused attempt that is recorded anyway changes nothing. */
	rate_record(&r, &st, T0 + 30000);
	assert_int_equal(rate_check(&r, &st, T0 + 30000), 30);
	assert_int_equal(rate_expires(&r, &st), T0 + 60000);
	/* The window ends: allowed again. */
	assert_int_equal(rate_check(&r, &st, T0 + 60000), 0);
}

static void
test_fixed_window_state_only(void **state)
{
	/* A record with the count at the limit but no block set (as another
	 * instance might store it) is still refused until the window ends. */
	const struct rate_rule r = { 2, 10000, false };
	const struct rate_state st = { T0, 2, 0 };

	assert_int_equal(rate_check(&r, &st, T0 + 2500), 8);
	assert_int_equal(rate_check(&r, &st, T0 + 10000), 0);
}

static void
test_rollover(void **state)
{
	const struct rate_rule r = { 2, 10000, false };
	struct rate_state st = { 0, 0, 0 };

	rate_record(&r, &st, T0);
	assert_int_equal(rate_check(&r, &st, T0 + 9999), 0);
	rate_record(&r, &st, T0 + 9999);
	assert_int_equal(rate_check(&r, &st, T0 + 9999), 1);
	/* A hit after the window starts a new one at that moment. */
	rate_record(&r, &st, T0 + 10000);
	assert_int_equal(st.window_start, T0 + 10000);
	assert_int_equal(st.count, 1);
	assert_int_equal(st.blocked_until, 0);
	assert_int_equal(rate_check(&r, &st, T0 + 10000), 0);
	assert_int_equal(rate_expires(&r, &st), T0 + 20000);
	/* Hits spread over windows never accumulate. */
	rate_record(&r, &st, T0 + 25000);
	rate_record(&r, &st, T0 + 40000);
	assert_int_equal(st.count, 1);
	assert_int_equal(rate_check(&r, &st, T0 + 40000), 0);
}

static void
test_growing(void **state)
{
	const struct rate_rule r = { 3, 900000, true };
	struct rate_state st = { 0, 0, 0 };
	int64_t now = T0, expect = 1;
	int i;

	/* Two failures: nothing blocked. */
	for (i = 0; i < 2; i++) {
		rate_record(&r, &st, now);
		assert_int_equal(rate_check(&r, &st, now), 0);
	}
	/* From the limit on: 1, 2, 4, ... s, each from the latest hit. */
	for (i = 0; i < 9; i++) {
		rate_record(&r, &st, now);
		assert_int_equal(st.blocked_until, now + expect * 1000);
		assert_int_equal(rate_check(&r, &st, now), expect);
		assert_int_equal(rate_check(&r, &st, now + expect * 1000 - 1),
		    1);
		now += expect * 1000;
		/* Once the block has passed, the next attempt may proceed. */
		assert_int_equal(rate_check(&r, &st, now), 0);
		expect *= 2;
	}
	/* now = T0 + 511 s, expect = 512 s: the block ends with the window
	 * at T0 + 900 s instead. */
	assert_int_equal(now, T0 + 511000);
	rate_record(&r, &st, now);
	assert_int_equal(st.blocked_until, T0 + 900000);
	assert_int_equal(rate_check(&r, &st, now), 389);
	assert_int_equal(rate_expires(&r, &st), T0 + 900000);
	/* A new window starts from nothing. */
	assert_int_equal(rate_check(&r, &st, T0 + 900000), 0);
	rate_record(&r, &st, T0 + 900000);
	assert_int_equal(st.count, 1);
	assert_int_equal(st.blocked_until, 0);
	assert_int_equal(rate_check(&r, &st, T0 + 900000), 0);
}

static void
test_growing_shift_capped(void **state)
{
	/* Very many failures in a huge window: the delay stops doubling at
	 * 2^20 s instead of overflowing. */
	const struct rate_rule r = { 1, (int64_t)1 << 50, true };
	struct rate_state st = { T0, 100, 0 };

	rate_record(&r, &st, T0 + 1);
	assert_int_equal(st.blocked_until, T0 + 1 + ((int64_t)1000 << 20));
	assert_int_equal(rate_check(&r, &st, T0 + 1), (int64_t)1 << 20);
}

static void
test_limit_zero(void **state)
{
	const struct rate_rule r = { 0, 60000, false };
	const struct rate_rule g = { 0, 60000, true };
	struct rate_state st = { 0, 0, 0 };
	int i;

	for (i = 0; i < 100; i++) {
		rate_record(&r, &st, T0 + i);
		rate_record(&g, &st, T0 + i);
		assert_int_equal(rate_check(&r, &st, T0 + i), 0);
		assert_int_equal(rate_check(&g, &st, T0 + i), 0);
	}
	/* Disabled: a stale record that says "blocked" is ignored too. */
	st.window_start = T0;
	st.count = 1000;
	st.blocked_until = T0 + 60000;
	assert_int_equal(rate_check(&r, &st, T0), 0);
}

static void
test_limit_one(void **state)
{
	const struct rate_rule r = { 1, 5000, false };
	struct rate_state st = { 0, 0, 0 };

	assert_int_equal(rate_check(&r, &st, T0), 0);
	rate_record(&r, &st, T0);
	assert_int_equal(rate_check(&r, &st, T0), 5);
	assert_int_equal(rate_check(&r, &st, T0 + 4001), 1);
	assert_int_equal(rate_check(&r, &st, T0 + 5000), 0);
}

static void
test_expires(void **state)
{
	const struct rate_rule r = { 5, 60000, false };
	const struct rate_rule g = { 5, 60000, true };
	struct rate_state st = { T0, 1, 0 };

	assert_int_equal(rate_expires(&r, &st), T0 + 60000);
	st.blocked_until = T0 + 10000;
	assert_int_equal(rate_expires(&g, &st), T0 + 60000);
	/* A block set under a longer window outlives the current one. */
	st.blocked_until = T0 + 90000;
	assert_int_equal(rate_expires(&g, &st), T0 + 90000);
	/* No window yet: expires at once. */
	st.window_start = 0;
	st.blocked_until = 0;
	assert_true(rate_expires(&r, &st) <= 60000);
}

static void
test_time(void **state)
{
	char buf[RFC3339_LEN + 1];
	int64_t a, b;

	a = time_now_ms();
	assert_true(a > 1600000000000LL); /* after 2020 */
	a = time_mono_ms();
	b = time_mono_ms();
	assert_true(b >= a);

	assert_string_equal(time_rfc3339(buf, 0), "1970-01-01T00:00:00Z");
	assert_string_equal(time_rfc3339(buf, 1795600800999LL),
	    "2026-11-25T10:00:00Z");
	assert_string_equal(time_rfc3339(buf, 951782400000LL),
	    "2000-02-29T00:00:00Z");
	assert_string_equal(time_rfc3339(buf, -1), "1969-12-31T23:59:59Z");
	assert_string_equal(time_rfc3339(buf, -1000), "1969-12-31T23:59:59Z");
	assert_string_equal(time_rfc3339(buf, -1001), "1969-12-31T23:59:58Z");
	/* Clamped to what four digits of year can say. */
	assert_string_equal(time_rfc3339(buf, INT64_MAX),
	    "9999-12-31T23:59:59Z");
	assert_string_equal(time_rfc3339(buf, INT64_MIN),
	    "0000-01-01T00:00:00Z");
	assert_int_equal(strlen(time_rfc3339(buf, time_now_ms())),
	    RFC3339_LEN);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixed_window),
		cmocka_unit_test(test_fixed_window_state_only),
		cmocka_unit_test(test_rollover),
		cmocka_unit_test(test_growing),
		cmocka_unit_test(test_growing_shift_capped),
		cmocka_unit_test(test_limit_zero),
		cmocka_unit_test(test_limit_one),
		cmocka_unit_test(test_expires),
		cmocka_unit_test(test_time),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
