/* Device authorisation (RFC 8628 style): init, request, claim, deny,
 * token polling, rotation and revocation of device sessions. */
#include <sodium.h>
#include <string.h>

#include "../common/timeutil.h"
#include "api.h"
#include "auth.h"
#include "server.h"

#define SLOW_DOWN_STEP_S 5

static const char *const devreq_states[] = {
	[DEVREQ_PENDING] = "pending",
	[DEVREQ_CLAIMED] = "claimed",
	[DEVREQ_DENIED] = "denied",
	[DEVREQ_EXCHANGED] = "claimed",
};

/* Printable UTF-8 only: names end up on the dashboard and in logs. */
static bool
printable(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

static void
copy_str(char *dst, size_t cap, const char *src, const char *dflt)
{
	snprintf(dst, cap, "%s", src != NULL ? src : dflt);
}

/* ---- init --------------------------------------------------------------- */

/* The request's row: a write like any other, through store_tx (on SQLite
 * it joins a group commit). */
static enum store_status
devreq_insert_tx(struct store_conn *c, void *cls)
{
	return store_call(c, devreq_insert, (struct store_devreq *)cls);
}

static const struct jfield init_fields[] = {
	{ "device_name", JF_STRING, false, 0, STORE_NAME_MAX },
	{ "platform", JF_STRING, false, 0, STORE_NAME_MAX },
	{ "app_version", JF_STRING, false, 0, STORE_NAME_MAX },
};

void
api_sync_init(struct req *r)
{
	const struct config *cfg = &r->srv->cfg;
	struct store_devreq d;
	char temp[TOKEN_MAX_LEN + 1], code[USER_CODE_LEN + 2];
	enum store_status st = STORE_EXISTS;
	int tries;
	size_t i;

	r->no_store = true;
	if (!json_fields_or_reply(r, init_fields, 3))
		return;
	for (i = 0; i < 3; i++) {
		const char *v = jstr(r, init_fields[i].name);

		if (v != NULL && !printable(v)) {
			reply_error(r, 400, "invalid_request",
			    "Field '%s' must not contain control characters.",
			    init_fields[i].name);
			return;
		}
	}
	if (!rate_take_or_reply(r, RATE_INIT_IP,
	    arena_printf(r->arena, "init:ip:%s", req_rate_ip(r))))
		return;
	if (db_or_reply(r) == NULL)
		return;
	memset(&d, 0, sizeof(d));
	copy_str(d.device_name, sizeof(d.device_name),
	    jstr(r, "device_name"), "Unnamed device");
	if (d.device_name[0] == '\0')
		copy_str(d.device_name, sizeof(d.device_name), NULL,
		    "Unnamed device");
	copy_str(d.platform, sizeof(d.platform), jstr(r, "platform"), "");
	copy_str(d.app_version, sizeof(d.app_version), jstr(r, "app_version"),
	    "");
	copy_str(d.ip, sizeof(d.ip), r->ip, "");
	d.created_at = time_now_ms();
	d.expires_at = d.created_at +
	    (int64_t)cfg->temp_token_expiry_minutes * 60 * 1000;
	d.state = DEVREQ_PENDING;
	d.interval_s = cfg->poll_interval_s;
	token_generate(temp, TOKEN_TEMP_PREFIX);
	token_hash(d.temp_hash, temp, strlen(temp));
	/* 20^8 codes: a collision among live requests is rare; retry it. */
	for (tries = 0; tries < 5 && st == STORE_EXISTS; tries++) {
		user_code_generate(d.user_code);
		st = store_tx(r->srv->store, true, devreq_insert_tx, &d);
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		goto out;
	}
	user_code_format(code, d.user_code);
	reply_json(r, 201, json_pack("{s:s,s:s,s:s,s:o,s:I,s:i}",
	    "temp_token", temp,
	    "user_code", code,
	    "url", arena_printf(r->arena, "%s/sync/authorize?code=%s",
	    cfg->public_url, code),
	    "expires_at", json_time(d.expires_at),
	    "expires_in", (json_int_t)(cfg->temp_token_expiry_minutes * 60),
	    "interval", d.interval_s));
out:
	sodium_memzero(temp, sizeof(temp));
}

/* ---- looking a request up by user code ---------------------------------- */

static const char *
code_user_key(struct req *r)
{
	return arena_printf(r->arena, "code:user:%s", r->auth.user_id);
}

static const char *
code_ip_key(struct req *r)
{
	return arena_printf(r->arena, "code:ip:%s", req_rate_ip(r));
}

/*
 * Normalises a user code typed by a person and finds its request. Wrong
 * codes count against the user's and the IP's limits. Replies and returns
 * false when there is no such request.
 */
static bool
code_lookup_or_reply(struct req *r, const char *input,
    struct store_devreq *out)
{
	char code[USER_CODE_LEN + 1];
	enum store_status st;

	if (!rate_check_or_reply(r, RATE_CODE_USER, code_user_key(r)) ||
	    !rate_check_or_reply(r, RATE_CODE_IP, code_ip_key(r)))
		return false;
	st = STORE_NOT_FOUND;
	if (user_code_normalize(code, input, strlen(input)))
		st = store_call(r->db, devreq_by_code, code, out);
	/* A request another user answered is theirs: it does not exist here. */
	if (st == STORE_OK && out->state != DEVREQ_PENDING &&
	    strcmp(out->user_id, r->auth.user_id) != 0)
		st = STORE_NOT_FOUND;
	if (st == STORE_NOT_FOUND) {
		rate_count(r, RATE_CODE_USER, code_user_key(r));
		rate_count(r, RATE_CODE_IP, code_ip_key(r));
		reply_error(r, 404, "not_found",
		    "No device is waiting with this code.");
		return false;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	return true;
}

void
api_sync_request(struct req *r)
{
	const char *code = req_query(r, "code");
	struct store_devreq d;
	char shown[USER_CODE_LEN + 2];
	const char *status;

	r->no_store = true;
	if (code == NULL) {
		reply_error(r, 400, "invalid_request",
		    "Query parameter 'code' is required.");
		return;
	}
	if (!code_lookup_or_reply(r, code, &d))
		return;
	status = devreq_states[d.state];
	if (d.state == DEVREQ_PENDING && d.expires_at <= time_now_ms())
		status = "expired";
	user_code_format(shown, d.user_code);
	reply_json(r, 200, json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:s}",
	    "user_code", shown,
	    "device_name", d.device_name,
	    "platform", json_str_or_null(d.platform),
	    "app_version", json_str_or_null(d.app_version),
	    "ip", json_str_or_null(d.ip),
	    "created_at", json_time(d.created_at),
	    "expires_at", json_time(d.expires_at),
	    "status", status));
}

/* ---- claim and deny ------------------------------------------------------ */

enum decide_outcome {
	DECIDE_OK,
	DECIDE_GONE,      /* vanished, 404 */
	DECIDE_EXPIRED,   /* 410 */
	DECIDE_TAKEN      /* already claimed or denied, 409 */
};

struct decide_tx {
	struct req *r;
	int64_t devreq_id;
	const uint8_t *temp_hash;     /* identifies the request ... */
	const char *user_code;        /* ... by one of these */
	bool approve;
	struct store_device dev;      /* created on approval */
	int outcome;
};

static enum store_status
decide_tx(struct store_conn *c, void *cls)
{
	struct decide_tx *t = cls;
	struct req *r = t->r;
	struct store_devreq d;
	enum store_status st;
	int64_t now = time_now_ms();
	json_t *meta;
	char shown[USER_CODE_LEN + 2];

	if (t->temp_hash != NULL)
		st = store_call(c, devreq_by_temp, t->temp_hash, &d);
	else
		st = store_call(c, devreq_by_code, t->user_code, &d);
	if (st == STORE_NOT_FOUND) {
		t->outcome = DECIDE_GONE;
		return STORE_OK;
	}
	if (st != STORE_OK)
		return st;
	if (d.state != DEVREQ_PENDING) {
		/* answered by someone else: not this user's business */
		t->outcome = strcmp(d.user_id, r->auth.user_id) == 0 ?
		    DECIDE_TAKEN : DECIDE_GONE;
		return STORE_OK;
	}
	if (d.expires_at <= now) {
		t->outcome = DECIDE_EXPIRED;
		return STORE_OK;
	}
	snprintf(d.user_id, sizeof(d.user_id), "%s", r->auth.user_id);
	if (t->approve) {
		memcpy(t->dev.user_id, r->auth.user_id, sizeof(t->dev.user_id));
		memcpy(t->dev.name, d.device_name, sizeof(t->dev.name));
		memcpy(t->dev.platform, d.platform, sizeof(t->dev.platform));
		memcpy(t->dev.app_version, d.app_version,
		    sizeof(t->dev.app_version));
		memcpy(t->dev.last_ip, d.ip, sizeof(t->dev.last_ip));
		t->dev.status = DEVICE_ACTIVE;
		t->dev.created_at = now;
		st = store_call(c, device_insert, &t->dev);
		if (st != STORE_OK)
			return st;
		memcpy(d.device_id, t->dev.id, sizeof(d.device_id));
		d.state = DEVREQ_CLAIMED;
	} else {
		d.state = DEVREQ_DENIED;
	}
	st = store_call(c, devreq_update, &d);
	if (st != STORE_OK)
		return st;
	user_code_format(shown, d.user_code);
	meta = json_pack("{s:s,s:s,s:o,s:o}", "device_name", d.device_name,
	    "user_code", shown, "platform", json_str_or_null(d.platform),
	    "device_ip", json_str_or_null(d.ip));
	if (t->approve && meta != NULL)
		json_object_set_new(meta, "device", json_string(t->dev.id));
	st = audit_add(c, r, r->auth.user_id,
	    t->approve ? "token_claimed" : "device_denied", meta);
	json_decref(meta);
	t->outcome = DECIDE_OK;
	return st;
}

static bool
decide_or_reply(struct req *r, struct decide_tx *t)
{
	enum store_status st;

	t->r = r;
	uuid_generate(t->dev.id);
	st = store_tx(r->srv->store, true, decide_tx, t);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	switch (t->outcome) {
	case DECIDE_GONE:
		reply_error(r, 404, "not_found",
		    "No device is waiting with this code.");
		return false;
	case DECIDE_EXPIRED:
		reply_error(r, 410, "expired_token",
		    "This request has expired; start again on the device.");
		return false;
	case DECIDE_TAKEN:
		reply_error(r, 409, "already_claimed",
		    "This request was already answered.");
		return false;
	default:
		return true;
	}
}

static const struct jfield claim_fields[] = {
	{ "user_code", JF_STRING, false, 1, 32 },
	{ "temp_token", JF_STRING, false, 1, TOKEN_MAX_LEN },
};

void
api_sync_claim(struct req *r)
{
	struct decide_tx t;
	struct store_devreq d;
	const char *code, *temp;
	uint8_t hash[TOKEN_HASH_LEN];

	if (!json_fields_or_reply(r, claim_fields, 2))
		return;
	code = jstr(r, "user_code");
	temp = jstr(r, "temp_token");
	if ((code == NULL) == (temp == NULL)) {
		reply_error(r, 400, "invalid_request",
		    "Send exactly one of 'user_code' and 'temp_token'.");
		return;
	}
	memset(&t, 0, sizeof(t));
	t.approve = true;
	if (code != NULL) {
		if (!code_lookup_or_reply(r, code, &d))
			return;
		t.user_code = d.user_code;
	} else {
		if (!token_parse(temp, strlen(temp), TOKEN_TEMP_PREFIX)) {
			reply_error(r, 400, "invalid_request",
			    "Field 'temp_token' is malformed.");
			return;
		}
		token_hash(hash, temp, strlen(temp));
		t.temp_hash = hash;
	}
	if (!decide_or_reply(r, &t))
		return;
	reply_json(r, 200, json_pack("{s:{s:s,s:s}}", "device", "id",
	    t.dev.id, "name", t.dev.name));
}

static const struct jfield deny_fields[] = {
	{ "user_code", JF_STRING, true, 1, 32 },
};

void
api_sync_deny(struct req *r)
{
	struct decide_tx t;
	struct store_devreq d;

	if (!json_fields_or_reply(r, deny_fields, 1))
		return;
	if (!code_lookup_or_reply(r, jstr(r, "user_code"), &d))
		return;
	memset(&t, 0, sizeof(t));
	t.user_code = d.user_code;
	t.approve = false;
	if (!decide_or_reply(r, &t))
		return;
	reply_json(r, 200, json_object());
}

/* ---- token polling -------------------------------------------------------- */

enum poll_outcome {
	POLL_UNKNOWN,
	POLL_EXPIRED,
	POLL_DENIED,
	POLL_SLOW_DOWN,
	POLL_ISSUED,
	POLL_PENDING
};

struct poll_tx {
	struct req *r;
	uint8_t temp_hash[TOKEN_HASH_LEN];
	uint8_t session_hash[TOKEN_HASH_LEN];
	int outcome;
	int interval;
	struct store_session sess;
	struct store_user user;
};

static enum store_status
poll_tx(struct store_conn *c, void *cls)
{
	struct poll_tx *t = cls;
	const struct config *cfg = &t->r->srv->cfg;
	struct store_devreq d;
	struct store_token tok;
	enum store_status st;
	int64_t now = time_now_ms();

	st = store_call(c, devreq_by_temp, t->temp_hash, &d);
	if (st == STORE_NOT_FOUND) {
		t->outcome = POLL_UNKNOWN;
		return STORE_OK;
	}
	if (st != STORE_OK)
		return st;
	if (d.state == DEVREQ_EXCHANGED || d.expires_at <= now) {
		t->outcome = POLL_EXPIRED;
		return STORE_OK;
	}
	if (d.state == DEVREQ_DENIED) {
		t->outcome = POLL_DENIED;
		return STORE_OK;
	}
	if (d.last_poll_at != 0 &&
	    now - d.last_poll_at < (int64_t)d.interval_s * 1000) {
		d.interval_s += SLOW_DOWN_STEP_S;
		d.last_poll_at = now;
		t->outcome = POLL_SLOW_DOWN;
		t->interval = d.interval_s;
		return store_call(c, devreq_update, &d);
	}
	d.last_poll_at = now;
	t->interval = d.interval_s;
	if (d.state != DEVREQ_CLAIMED) {
		t->outcome = POLL_PENDING;
		return store_call(c, devreq_update, &d);
	}
	st = store_call(c, user_by_id, d.user_id, &t->user);
	if (st != STORE_OK)
		return st;
	memset(&t->sess, 0, sizeof(t->sess));
	memcpy(t->sess.user_id, d.user_id, sizeof(t->sess.user_id));
	memcpy(t->sess.device_id, d.device_id, sizeof(t->sess.device_id));
	t->sess.created_at = now;
	t->sess.expires_at = now +
	    (int64_t)cfg->session_expiry_days * 86400 * 1000;
	st = store_call(c, session_insert, &t->sess);
	if (st != STORE_OK)
		return st;
	memset(&tok, 0, sizeof(tok));
	memcpy(tok.hash, t->session_hash, sizeof(tok.hash));
	tok.session_id = t->sess.id;
	tok.created_at = now;
	st = store_call(c, token_insert, &tok);
	if (st != STORE_OK)
		return st;
	d.state = DEVREQ_EXCHANGED;
	st = store_call(c, devreq_update, &d);
	if (st != STORE_OK)
		return st;
	memcpy(t->r->auth.device_id, d.device_id, sizeof(t->r->auth.device_id));
	st = audit_add(c, t->r, d.user_id, "device_connected", NULL);
	t->outcome = POLL_ISSUED;
	return st;
}

static const struct jfield token_fields[] = {
	{ "temp_token", JF_STRING, true, 1, TOKEN_MAX_LEN },
};

void
api_sync_token(struct req *r)
{
	struct poll_tx t;
	const char *temp;
	char session[TOKEN_MAX_LEN + 1];
	enum store_status st;

	r->no_store = true;
	if (!json_fields_or_reply(r, token_fields, 1))
		return;
	temp = jstr(r, "temp_token");
	if (!token_parse(temp, strlen(temp), TOKEN_TEMP_PREFIX)) {
		reply_error(r, 400, "invalid_request",
		    "Field 'temp_token' is malformed.");
		return;
	}
	memset(&t, 0, sizeof(t));
	t.r = r;
	token_hash(t.temp_hash, temp, strlen(temp));
	token_generate(session, TOKEN_SYNC_PREFIX);
	token_hash(t.session_hash, session, strlen(session));
	st = store_tx(r->srv->store, true, poll_tx, &t);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		goto out;
	}
	switch (t.outcome) {
	case POLL_UNKNOWN:
		reply_error(r, 404, "not_found", "Unknown temp token.");
		break;
	case POLL_EXPIRED:
		reply_error(r, 410, "expired_token", "This request has "
		    "expired or was already used; start again.");
		break;
	case POLL_DENIED:
		reply_error(r, 403, "access_denied",
		    "The request was denied in the browser.");
		break;
	case POLL_SLOW_DOWN:
		reply_error_data(r, 400, "slow_down",
		    json_pack("{s:i}", "interval", t.interval),
		    "Polling too fast; wait 'interval' seconds between polls.");
		break;
	case POLL_PENDING:
		reply_error_data(r, 400, "authorization_pending",
		    json_pack("{s:i}", "interval", t.interval),
		    "Waiting for approval in the browser.");
		break;
	default:
		memcpy(r->auth.user_id, t.user.id, sizeof(r->auth.user_id));
		reply_json(r, 200, json_pack("{s:s,s:s,s:o,s:s,s:o}",
		    "session_token", session,
		    "token_type", "Bearer",
		    "expires_at", json_time(t.sess.expires_at),
		    "device_id", t.sess.device_id,
		    "user", json_user(&t.user)));
		api_publish(r, t.user.id);
	}
out:
	sodium_memzero(session, sizeof(session));
}

/* ---- rotation and revocation ---------------------------------------------- */

struct rotate_tx {
	struct req *r;
	uint8_t new_hash[TOKEN_HASH_LEN];
	int64_t expires_at;
};

static enum store_status
rotate_tx(struct store_conn *c, void *cls)
{
	struct rotate_tx *t = cls;
	struct req *r = t->r;
	struct store_token cur, tok;
	struct store_session sess;
	struct store_device dev;
	enum store_status st;
	int64_t now = time_now_ms(), grace;

	st = store_call(c, token_lookup, r->auth.token_hash, &cur, &sess,
	    &dev);
	if (st != STORE_OK)
		return st == STORE_NOT_FOUND ? STORE_ABORT : st;
	/* what auth checked may have changed since: check again, here */
	if (sess.revoked_at != 0 || dev.status != DEVICE_ACTIVE ||
	    sess.expires_at <= now)
		return STORE_ABORT;
	grace = now + AUTH_ROTATE_GRACE_MS;
	/* Rotating again from a token still in its grace (the answer to the
	 * first rotation was lost): the unused successor is dropped, and the
	 * grace is not extended. A used successor means reuse: refused (the
	 * next plain request with this token revokes the session). */
	if (cur.has_successor) {
		struct store_token succ;
		struct store_session s2;
		struct store_device d2;

		if (cur.grace_until <= now)
			return STORE_ABORT;
		st = store_call(c, token_lookup, cur.successor, &succ, &s2,
		    &d2);
		if (st == STORE_OK && succ.used)
			return STORE_ABORT;
		if (st != STORE_OK && st != STORE_NOT_FOUND)
			return st;
		st = store_call(c, token_delete, cur.successor);
		if (st != STORE_OK && st != STORE_NOT_FOUND)
			return st;
		grace = cur.grace_until;
	}
	memset(&tok, 0, sizeof(tok));
	memcpy(tok.hash, t->new_hash, sizeof(tok.hash));
	tok.session_id = sess.id;
	tok.created_at = now;
	st = store_call(c, token_insert, &tok);
	if (st != STORE_OK)
		return st;
	cur.used = true;
	cur.has_successor = true;
	memcpy(cur.successor, t->new_hash, sizeof(cur.successor));
	cur.grace_until = grace;
	st = store_call(c, token_update, &cur);
	if (st != STORE_OK)
		return st;
	t->expires_at = sess.expires_at;
	return audit_add(c, r, r->auth.user_id, "token_rotated", NULL);
}

void
api_sync_rotate(struct req *r)
{
	struct rotate_tx t;
	char token[TOKEN_MAX_LEN + 1];
	enum store_status st;

	r->no_store = true;
	if (!json_fields_or_reply(r, NULL, 0))
		return;
	memset(&t, 0, sizeof(t));
	t.r = r;
	token_generate(token, TOKEN_SYNC_PREFIX);
	token_hash(t.new_hash, token, strlen(token));
	st = store_tx(r->srv->store, true, rotate_tx, &t);
	if (st == STORE_ABORT)
		reply_error(r, 401, "unauthorized", "Unknown session token.");
	else if (st != STORE_OK)
		reply_store_error(r, st);
	else
		reply_json(r, 200, json_pack("{s:s,s:o}", "session_token",
		    token, "expires_at", json_time(t.expires_at)));
	sodium_memzero(token, sizeof(token));
}

/* Ends a device's sessions, marks it revoked, audits `event` and appends
 * device_revoked. Shared by /api/sync/revoke and DELETE /api/devices/:id. */
enum store_status
device_revoke_tx(struct store_conn *c, struct req *r, const char *device_id,
    const char *event, json_t *meta)
{
	enum store_status st;
	int64_t now = time_now_ms();

	st = store_call(c, device_set_status, r->auth.user_id, device_id,
	    DEVICE_REVOKED);
	if (st != STORE_OK)
		return st;
	st = store_call(c, session_revoke_device, device_id, now);
	if (st != STORE_OK && st != STORE_NOT_FOUND)
		return st;
	st = audit_add(c, r, r->auth.user_id, event, meta);
	if (st != STORE_OK)
		return st;
	return event_add_revoked(c, r, r->auth.user_id, device_id);
}

static enum store_status
revoke_tx(struct store_conn *c, void *cls)
{
	struct req *r = cls;

	return device_revoke_tx(c, r, r->auth.device_id, "token_revoked",
	    NULL);
}

void
api_sync_revoke(struct req *r)
{
	enum store_status st;

	r->no_store = true;
	if (!json_fields_or_reply(r, NULL, 0))
		return;
	st = store_tx(r->srv->store, true, revoke_tx, r);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	api_publish(r, r->auth.user_id);
	reply_json(r, 200, json_object());
}
