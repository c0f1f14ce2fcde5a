#include "timeutil.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

/* 0000-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the years that fit the
 * four-digit RFC 3339 form. */
#define RFC3339_MIN_S (-62167219200LL)
#define RFC3339_MAX_S 253402300799LL

static int64_t
clock_ms(clockid_t id)
{
	struct timespec ts;

	/* Cannot fail for these clocks on Linux; 0 keeps callers defined. */
	if (clock_gettime(id, &ts) != 0)
		return 0;
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
time_now_ms(void)
{
	return clock_ms(CLOCK_REALTIME);
}

int64_t
time_mono_ms(void)
{
	return clock_ms(CLOCK_MONOTONIC);
}

char *
time_rfc3339(char out[RFC3339_LEN + 1], int64_t ms)
{
	int64_t s;
	time_t t;
	struct tm tm;
	int n;

	/* Floor division: -1 ms is 1969-12-31T23:59:59Z. */
	s = ms / 1000 - (ms % 1000 < 0);
	if (s < RFC3339_MIN_S)
		s = RFC3339_MIN_S;
	if (s > RFC3339_MAX_S)
		s = RFC3339_MAX_S;
	t = (time_t)s;
	if (gmtime_r(&t, &tm) == NULL)
		goto bad;
	n = snprintf(out, RFC3339_LEN + 1, "%04d-%02d-%02dT%02d:%02d:%02dZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec);
	if (n != RFC3339_LEN)
		goto bad;
	return out;
bad:
	memcpy(out, "1970-01-01T00:00:00Z", RFC3339_LEN + 1);
	return out;
}
