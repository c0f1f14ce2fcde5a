/*
 * auth: credentials of a request. Bearer device tokens (with rotation grace
 * and reuse detection), web-session cookies (idle and absolute timeouts)
 * and the CSRF check of cookie-authenticated writes.
 */
#ifndef FLM_AUTH_H
#define FLM_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "http.h"

/* The grace in ms during which a rotated-away token still works. */
#define AUTH_ROTATE_GRACE_MS (60 * 1000)

/*
 * Checks the request's credentials against its route and fills r->auth.
 * Replies 401 unauthorized / 403 csrf_rejected / 503 and returns false when
 * they do not do.
 */
bool auth_or_reply(struct req *r);

/*
 * Whether the request carries a live web-session cookie, without replying
 * (the dashboard pages redirect instead of answering 401): STORE_OK fills
 * r->auth, STORE_NOT_FOUND means none, other statuses are store errors.
 */
enum store_status auth_web_session(struct req *r);

/* "flm_session" or, under https, "__Host-flm_session". */
const char *auth_cookie_name(const struct req *r);

/* Adds the Set-Cookie header of a new web session (value: the token). */
void auth_set_cookie(struct req *r, const char *value, int64_t max_age_s);

/* Adds the Set-Cookie header that clears the web session cookie. */
void auth_clear_cookie(struct req *r);

/* Whether a state-changing request carries a matching Origin or
 * Sec-Fetch-Site: same-origin. */
bool auth_same_origin(struct req *r);

/*
 * For a long-lived request: whether its credentials still hold (not
 * expired; the device not revoked; the web session not ended). *valid is
 * false on any failure; a store failure is returned.
 */
enum store_status auth_recheck(struct req *r, struct store_conn *c,
    bool *valid);

#endif
