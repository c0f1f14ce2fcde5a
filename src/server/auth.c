#include "auth.h"

#include <string.h>
#include <strings.h>

#include "../common/timeutil.h"
#include "api.h"
#include "events.h"
#include "log.h"
#include "router.h"
#include "server.h"

/* last_seen / last_used are written at most this often per credential */
#define TOUCH_EVERY_MS (60 * 1000)

const char *
auth_cookie_name(const struct req *r)
{
	return r->srv->cfg.https ? "__Host-flm_session" : "flm_session";
}

void
auth_set_cookie(struct req *r, const char *value, int64_t max_age_s)
{
	req_add_header(r, "Set-Cookie", arena_printf(r->arena,
	    "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Lax%s",
	    auth_cookie_name(r), value, (long long)max_age_s,
	    r->srv->cfg.https ? "; Secure" : ""));
}

void
auth_clear_cookie(struct req *r)
{
	req_add_header(r, "Set-Cookie", arena_printf(r->arena,
	    "%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax%s",
	    auth_cookie_name(r), r->srv->cfg.https ? "; Secure" : ""));
}

bool
auth_same_origin(struct req *r)
{
	const char *origin = req_header(r, "Origin");
	const char *site = req_header(r, "Sec-Fetch-Site");

	if (origin != NULL)
		return strcmp(origin, r->srv->cfg.public_origin) == 0;
	return site != NULL && strcmp(site, "same-origin") == 0;
}

static bool
unauthorized(struct req *r, const char *why)
{
	reply_error(r, 401, "unauthorized", "%s", why);
	return false;
}

struct reuse_tx {
	struct req *r;
	const struct store_session *sess;
};

/* An old token came back after its successor was used: someone holds a
 * copy. End the whole device session and say so. */
static enum store_status
reuse_tx(struct store_conn *c, void *cls)
{
	struct reuse_tx *t = cls;
	int64_t now = time_now_ms();
	enum store_status st;
	json_t *meta;

	st = store_call(c, session_revoke, t->sess->id, now);
	if (st != STORE_OK)
		return st;
	st = store_call(c, device_set_status, t->sess->user_id,
	    t->sess->device_id, DEVICE_REVOKED);
	if (st != STORE_OK && st != STORE_NOT_FOUND)
		return st;
	meta = json_pack("{s:s}", "reason", "rotated token presented again");
	st = audit_add(c, t->r, t->sess->user_id, "token_reuse_detected",
	    meta);
	json_decref(meta);
	if (st != STORE_OK)
		return st;
	return event_add_revoked(c, t->r, t->sess->user_id,
	    t->sess->device_id);
}

struct touch_tx {
	const uint8_t *hash;
	const char *device_id;
	const char *ip;
	bool mark_used;
	bool touch_device;
};

static enum store_status
touch_tx(struct store_conn *c, void *cls)
{
	struct touch_tx *t = cls;
	struct store_token tok;
	struct store_session sess;
	struct store_device dev;
	enum store_status st;

	if (t->mark_used) {
		/* re-read: a rotation may have linked a successor meanwhile */
		st = store_call(c, token_lookup, t->hash, &tok, &sess, &dev);
		if (st != STORE_OK)
			return st;
		tok.used = true;
		st = store_call(c, token_update, &tok);
		if (st != STORE_OK)
			return st;
	}
	if (t->touch_device)
		return store_call(c, device_touch, t->device_id,
		    time_now_ms(), t->ip);
	return STORE_OK;
}

static bool
bearer_or_reply(struct req *r, const char *header)
{
	struct store_conn *c;
	struct store_token tok, succ;
	struct store_session sess, ssess;
	struct store_device dev, sdev;
	enum store_status st;
	const char *tokstr;
	int64_t now = time_now_ms();

	if (strncasecmp(header, "Bearer ", 7) != 0)
		return unauthorized(r, "Use 'Authorization: Bearer <token>'.");
	tokstr = header + 7;
	if (!token_parse(tokstr, strlen(tokstr), TOKEN_SYNC_PREFIX))
		return unauthorized(r, "The session token is malformed.");
	if ((c = db_or_reply(r)) == NULL)
		return false;
	token_hash(r->auth.token_hash, tokstr, strlen(tokstr));
	st = store_call(c, token_lookup, r->auth.token_hash, &tok, &sess,
	    &dev);
	if (st == STORE_NOT_FOUND)
		return unauthorized(r, "Unknown session token.");
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	if (sess.revoked_at != 0 || dev.status != DEVICE_ACTIVE)
		return unauthorized(r, "This device session was revoked.");
	if (sess.expires_at <= now)
		return unauthorized(r, "This device session has expired.");
	if (tok.has_successor) {
		st = store_call(c, token_lookup, tok.successor, &succ, &ssess,
		    &sdev);
		if (st == STORE_OK && succ.used) {
			struct reuse_tx t = { r, &sess };

			st = store_tx(r->srv->store, true, reuse_tx, &t);
			if (st == STORE_OK)
				api_publish(r, sess.user_id);
			log_msg("req=%s: rotated token reused; device session "
			    "%lld revoked", r->id, (long long)sess.id);
			return unauthorized(r, "This token was replaced; the "
			    "device session has been revoked.");
		}
		if (st != STORE_OK && st != STORE_NOT_FOUND) {
			reply_store_error(r, st);
			return false;
		}
		if (now >= tok.grace_until)
			return unauthorized(r, "This token was replaced.");
	}
	if (!tok.used || now - dev.last_seen_at >= TOUCH_EVERY_MS ||
	    strcmp(dev.last_ip, r->ip) != 0) {
		struct touch_tx t = { r->auth.token_hash, dev.id, r->ip,
		    !tok.used && !tok.has_successor, true };

		st = store_tx(r->srv->store, true, touch_tx, &t);
		if (st != STORE_OK) {
			reply_store_error(r, st);
			return false;
		}
	}
	r->auth.kind = AUTH_BEARER;
	memcpy(r->auth.user_id, sess.user_id, sizeof(r->auth.user_id));
	memcpy(r->auth.device_id, sess.device_id, sizeof(r->auth.device_id));
	r->auth.session_id = sess.id;
	r->auth.expires_at = sess.expires_at;
	return true;
}

/*
 * Checks a web-session cookie value. STORE_OK fills r->auth; STORE_NOT_FOUND
 * means no live session (*why says why); anything else is a store error.
 */
static enum store_status
cookie_check(struct req *r, const char *value, const char **why)
{
	const struct config *cfg = &r->srv->cfg;
	struct store_conn *c;
	struct store_websess ws;
	enum store_status st;
	int64_t now = time_now_ms();
	int64_t idle = (int64_t)cfg->web_session_idle_hours * 3600 * 1000;

	*why = "Sign in first.";
	if (!token_parse(value, strlen(value), TOKEN_WEB_PREFIX))
		return STORE_NOT_FOUND;
	if (r->db == NULL)
		r->db = store_conn(r->srv->store);
	if ((c = r->db) == NULL)
		return STORE_UNAVAILABLE;
	token_hash(r->auth.token_hash, value, strlen(value));
	st = store_call(c, websess_get, r->auth.token_hash, &ws);
	if (st == STORE_NOT_FOUND)
		*why = "Your session has ended; sign in again.";
	if (st != STORE_OK)
		return st;
	if (ws.expires_at <= now || ws.last_used_at + idle <= now) {
		*why = "Your session has expired; sign in again.";
		return STORE_NOT_FOUND;
	}
	if (now - ws.last_used_at >= TOUCH_EVERY_MS) {
		st = store_call(c, websess_touch, r->auth.token_hash, now);
		if (st != STORE_OK && st != STORE_BUSY)
			return st;
	}
	r->auth.kind = AUTH_COOKIE;
	memcpy(r->auth.user_id, ws.user_id, sizeof(r->auth.user_id));
	r->auth.expires_at = ws.expires_at;
	return STORE_OK;
}

static bool
cookie_or_reply(struct req *r, const char *value)
{
	const char *why;
	enum store_status st = cookie_check(r, value, &why);

	if (st == STORE_NOT_FOUND)
		return unauthorized(r, why);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	return true;
}

enum store_status
auth_web_session(struct req *r)
{
	const char *cookie = req_cookie(r, auth_cookie_name(r)), *why;

	if (cookie == NULL)
		return STORE_NOT_FOUND;
	return cookie_check(r, cookie, &why);
}

bool
auth_or_reply(struct req *r)
{
	int want = r->route->auth;
	const char *authz, *cookie, *site;
	unsigned m;

	if (want == AUTH_NONE)
		return true;
	authz = req_header(r, "Authorization");
	if (authz != NULL && (want & AUTH_BEARER))
		return bearer_or_reply(r, authz);
	if (!(want & AUTH_COOKIE))
		return unauthorized(r, "A device session token is required.");
	cookie = req_cookie(r, auth_cookie_name(r));
	if (cookie == NULL)
		return unauthorized(r, want == AUTH_COOKIE ?
		    "Sign in first." : "Sign in or send a session token.");
	/*
	 * The cookie is SameSite=Lax, so another site can still send it on a
	 * top-level navigation (a GET). No API answer is meant to be opened
	 * that way, and some reads count against a budget (wrong user codes):
	 * a browser that says the request comes from another site is refused
	 * before anything is looked up or counted. "none" (an address typed
	 * or bookmarked) and clients that send no Sec-Fetch-Site pass.
	 */
	site = req_header(r, "Sec-Fetch-Site");
	if (site != NULL && (strcmp(site, "cross-site") == 0 ||
	    strcmp(site, "same-site") == 0)) {
		reply_error(r, 403, "csrf_rejected", "The dashboard's session "
		    "cannot be used from another site.");
		return false;
	}
	if (!cookie_or_reply(r, cookie))
		return false;
	m = router_method_bit(r->method);
	if ((m & (M_POST | M_PUT | M_PATCH | M_DELETE)) &&
	    !auth_same_origin(r)) {
		reply_error(r, 403, "csrf_rejected", "This request must come "
		    "from the dashboard's own origin.");
		return false;
	}
	return true;
}

enum store_status
auth_recheck(struct req *r, struct store_conn *c, bool *valid)
{
	struct store_device dev;
	struct store_websess ws;
	enum store_status st;
	int64_t now = time_now_ms();
	int64_t idle = (int64_t)r->srv->cfg.web_session_idle_hours * 3600 *
	    1000;

	*valid = false;
	if (r->auth.expires_at <= now)
		return STORE_OK;
	if (r->auth.kind == AUTH_BEARER) {
		/* every revocation marks the device: a rotation does not */
		st = store_call(c, device_get, r->auth.user_id,
		    r->auth.device_id, &dev);
		if (st == STORE_OK)
			*valid = dev.status == DEVICE_ACTIVE;
	} else {
		st = store_call(c, websess_get, r->auth.token_hash, &ws);
		if (st == STORE_OK)
			*valid = ws.last_used_at + idle > now;
	}
	return st == STORE_NOT_FOUND ? STORE_OK : st;
}
