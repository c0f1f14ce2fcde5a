#include "ratelimit.h"

/* a + b, saturating at INT64_MAX (b >= 0): keeps absurd configurations and
 * clock values from overflowing into the past. */
static int64_t
sat_add(int64_t a, int64_t b)
{
	if (b > 0 && a > INT64_MAX - b)
		return INT64_MAX;
	return a + b;
}

static int64_t
window_end(const struct rate_rule *rule, const struct rate_state *st)
{
	return sat_add(st->window_start, rule->window_ms);
}

static bool
window_over(const struct rate_rule *rule, const struct rate_state *st,
    int64_t now)
{
	return st->window_start == 0 || now >= window_end(rule, st);
}

/* Seconds until `until`, rounded up, at least 1 (until > now). */
static int64_t
retry_after(int64_t until, int64_t now)
{
	int64_t ms = until - now;
	int64_t s = ms / 1000 + (ms % 1000 != 0);

	return s < 1 ? 1 : s;
}

int64_t
rate_check(const struct rate_rule *rule, const struct rate_state *st,
    int64_t now)
{
	if (rule->limit <= 0)
		return 0;
	if (st->blocked_until > now)
		return retry_after(st->blocked_until, now);
	if (window_over(rule, st, now))
		return 0;
	if (!rule->growing && st->count >= rule->limit)
		return retry_after(window_end(rule, st), now);
	return 0;
}

void
rate_record(const struct rate_rule *rule, struct rate_state *st, int64_t now)
{
	int64_t over, shift, delay, left;

	/* A disabled rule counts nothing, so its record expires at once. */
	if (rule->limit <= 0)
		return;
	if (window_over(rule, st, now)) {
		st->window_start = now;
		st->count = 0;
		st->blocked_until = 0;
	}
	if (st->count < INT64_MAX)
		st->count++;
	if (st->count < rule->limit)
		return;
	if (!rule->growing) {
		st->blocked_until = window_end(rule, st);
		return;
	}
	/* 1 s at the limit, then 2 s, 4 s, ...; the shift is capped so the
	 * delay cannot overflow, and the block never outlives the window, so
	 * an attacker cannot lock a victim out for long. */
	over = st->count - rule->limit;
	shift = over < 20 ? over : 20;
	delay = (int64_t)1000 << shift;
	left = window_end(rule, st) - now;
	st->blocked_until = sat_add(now, delay < left ? delay : left);
}

int64_t
rate_expires(const struct rate_rule *rule, const struct rate_state *st)
{
	int64_t end = window_end(rule, st);

	return st->blocked_until > end ? st->blocked_until : end;
}
