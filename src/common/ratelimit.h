/*
 * ratelimit: fixed-window counters with an optional growing lockout. Pure
 * functions over a small state record; the store keeps the records so that
 * every server instance sees the same counts.
 */
#ifndef FLM_RATELIMIT_H
#define FLM_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct rate_rule {
	int64_t limit;     /* hits allowed per window; 0 disables the rule */
	int64_t window_ms; /* length of the window */
	/*
	 * false: once `limit` hits are counted, refuse until the window ends.
	 * true (failed logins): once `limit` is reached, each further hit
	 * blocks for 1 s, 2 s, 4 s, ... doubling, never past the window's end.
	 */
	bool growing;
};

struct rate_state {
	int64_t window_start; /* ms; 0 = no window yet */
	int64_t count;        /* hits in the window */
	int64_t blocked_until; /* ms; 0 = not blocked */
};

/*
 * Whether a request may proceed at `now`. Returns 0 when allowed, else the
 * number of seconds (>= 1, rounded up) the caller should send in
 * Retry-After. Does not change the state.
 */
int64_t rate_check(const struct rate_rule *rule, const struct rate_state *st,
    int64_t now);

/* Counts one hit at `now`, starting a new window when the old one ended,
 * and sets blocked_until as the rule says. */
void rate_record(const struct rate_rule *rule, struct rate_state *st,
    int64_t now);

/* When the record may be forgotten (the end of its window or block). */
int64_t rate_expires(const struct rate_rule *rule,
    const struct rate_state *st);

#endif
