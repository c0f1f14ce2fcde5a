/* Accounts: signup, login, logout, session, password change, Turnstile. */
#include <pthread.h>
#include <sodium.h>
#include <string.h>

#include "../common/timeutil.h"
#include "api.h"
#include "auth.h"
#include "server.h"
#include "turnstile.h"

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024
#define TURNSTILE_TOKEN_MAX 2048

/*
 * Work done on the slow pool while the request is suspended: an optional
 * Turnstile check, then hashing a password or verifying one.
 */
struct pw_job {
	struct req *r;
	const char *turnstile_token;  /* verify first when set */
	const char *password;         /* points into r->json */
	const char *verify_against;   /* a stored hash: verify mode */
	const char *new_password;     /* hash this after a good verify */
	char hash[crypto_pwhash_STRBYTES];
	bool turnstile_ok;
	bool verified;
	bool hashed;
	bool rejected;                /* the pool was full */
	bool cancelled;               /* the server is stopping */
};

/* A hash to verify against when the email is unknown, so that both cases
 * cost the same. Made once, on the pool. */
static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[crypto_pwhash_STRBYTES];

static void
make_dummy_hash(void)
{
	char pw[32];

	randombytes_buf(pw, sizeof(pw));
	if (crypto_pwhash_str(dummy_hash, pw, sizeof(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
		dummy_hash[0] = '\0';
	sodium_memzero(pw, sizeof(pw));
}

static bool
hash_password(char out[crypto_pwhash_STRBYTES], const char *pw)
{
	return crypto_pwhash_str(out, pw, strlen(pw),
	    crypto_pwhash_OPSLIMIT_INTERACTIVE,
	    crypto_pwhash_MEMLIMIT_INTERACTIVE) == 0;
}

static void
pw_job_run(void *arg)
{
	struct pw_job *j = arg;
	struct req *r = j->r;

	if (atomic_load(&r->srv->abandon)) {
		/* queued work is dropped so that shutdown is prompt */
		j->cancelled = true;
		goto done;
	}
	atomic_fetch_add(&r->srv->metrics.hashes, 1);
	j->turnstile_ok = true;
	if (j->turnstile_token != NULL)
		j->turnstile_ok = turnstile_verify(&r->srv->cfg,
		    j->turnstile_token, r->ip, &r->srv->abandon);
	if (!j->turnstile_ok)
		goto done;
	if (j->verify_against != NULL) {
		const char *h = j->verify_against;

		if (h[0] == '\0') {
			pthread_once(&dummy_once, make_dummy_hash);
			h = dummy_hash;
		}
		j->verified = crypto_pwhash_str_verify(h, j->password,
		    strlen(j->password)) == 0 && j->verify_against[0] != '\0';
		if (j->verified && j->new_password != NULL)
			j->hashed = hash_password(j->hash, j->new_password);
	} else if (j->password != NULL) {
		j->hashed = hash_password(j->hash, j->password);
	}
done:
	req_resume(r);
}

/* Wipes the passwords of the JSON body when the request ends. */
static void
wipe_passwords(struct req *r)
{
	static const char *const fields[] = {
		"password", "current_password", "new_password",
	};
	size_t i;

	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		json_t *v = json_object_get(r->json, fields[i]);

		if (json_is_string(v))
			sodium_memzero((char *)(uintptr_t)json_string_value(v),
			    json_string_length(v));
	}
	if (r->body != NULL)
		sodium_memzero(r->body, r->body_len);
	if (r->state != NULL)
		sodium_memzero(((struct pw_job *)r->state)->hash,
		    crypto_pwhash_STRBYTES);
}

static struct pw_job *
new_job(struct req *r)
{
	struct pw_job *j = arena_calloc(r->arena, 1, sizeof(*j));

	if (j == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return NULL;
	}
	j->r = r;
	r->state = j;
	r->cleanup = wipe_passwords;
	return j;
}

static bool
pool_ok_or_reply(struct req *r, struct pw_job *j)
{
	if (j->rejected) {
		reply_rate_limited(r, 1);
		return false;
	}
	if (j->cancelled) {
		reply_error(r, 503, "unavailable",
		    "The server is restarting; try again.");
		return false;
	}
	return true;
}

/* Creates a web session for user_id, audited as `event`. */
struct websess_tx {
	struct req *r;
	struct store_user *user;      /* inserted first when insert_user */
	bool insert_user;
	const char *event;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t now;
};

static enum store_status
websess_tx(struct store_conn *c, void *cls)
{
	struct websess_tx *t = cls;
	const struct config *cfg = &t->r->srv->cfg;
	struct store_websess ws;
	enum store_status st;

	if (t->insert_user) {
		st = store_call(c, user_insert, t->user);
		if (st != STORE_OK)
			return st;
	}
	memset(&ws, 0, sizeof(ws));
	memcpy(ws.hash, t->hash, sizeof(ws.hash));
	memcpy(ws.user_id, t->user->id, sizeof(ws.user_id));
	ws.created_at = ws.last_used_at = t->now;
	ws.expires_at = t->now +
	    (int64_t)cfg->web_session_max_days * 86400 * 1000;
	st = store_call(c, websess_insert, &ws);
	if (st != STORE_OK)
		return st;
	return audit_add(c, t->r, t->user->id, t->event, NULL);
}

static void
start_web_session(struct req *r, struct store_user *u, bool insert_user,
    const char *event, int status)
{
	const struct config *cfg = &r->srv->cfg;
	struct websess_tx t;
	char token[TOKEN_MAX_LEN + 1];
	enum store_status st;

	memset(&t, 0, sizeof(t));
	t.r = r;
	t.user = u;
	t.insert_user = insert_user;
	t.event = event;
	t.now = time_now_ms();
	token_generate(token, TOKEN_WEB_PREFIX);
	token_hash(t.hash, token, strlen(token));
	memcpy(r->auth.user_id, u->id, sizeof(r->auth.user_id));
	st = store_tx(r->srv->store, true, websess_tx, &t);
	if (st == STORE_EXISTS) {
		reply_error(r, 409, "email_taken",
		    "An account with this email already exists.");
		goto out;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		goto out;
	}
	auth_set_cookie(r, arena_strdup(r->arena, token),
	    (int64_t)cfg->web_session_max_days * 86400);
	reply_json(r, status, json_pack("{s:o}", "user", json_user(u)));
out:
	sodium_memzero(token, sizeof(token));
}

/* ---- signup ------------------------------------------------------------ */

static const struct jfield signup_fields[] = {
	{ "email", JF_STRING, true, 3, 254 },
	{ "password", JF_STRING, true, PASSWORD_MIN, PASSWORD_MAX },
	{ "turnstile_token", JF_STRING, false, 1, TURNSTILE_TOKEN_MAX },
};

void
api_auth_signup(struct req *r)
{
	const struct config *cfg = &r->srv->cfg;
	struct pw_job *j = r->state;
	struct store_user u;
	struct store_conn *c;
	enum store_status st;
	char email[STORE_EMAIL_MAX + 1];

	r->no_store = true;
	if (r->phase == 0) {
		if (!json_fields_or_reply(r, signup_fields, 3))
			return;
		if (!cfg->registration_open) {
			reply_error(r, 403, "registration_closed",
			    "This server does not accept new accounts.");
			return;
		}
		if (!email_normalize(email, jstr(r, "email"))) {
			reply_error(r, 400, "invalid_request",
			    "Field 'email' is not a valid email address.");
			return;
		}
		if (cfg->turnstile_secret_key[0] != '\0' &&
		    !jhas(r, "turnstile_token")) {
			reply_error(r, 403, "turnstile_failed",
			    "Complete the bot check first.");
			return;
		}
		if (!rate_take_or_reply(r, RATE_SIGNUP_IP,
		    arena_printf(r->arena, "signup:ip:%s", req_rate_ip(r))))
			return;
		if ((c = db_or_reply(r)) == NULL)
			return;
		st = store_call(c, user_by_email, email, &u);
		if (st == STORE_OK) {
			reply_error(r, 409, "email_taken",
			    "An account with this email already exists.");
			return;
		}
		if (st != STORE_NOT_FOUND) {
			reply_store_error(r, st);
			return;
		}
		if ((j = new_job(r)) == NULL)
			return;
		if (cfg->turnstile_secret_key[0] != '\0')
			j->turnstile_token = jstr(r, "turnstile_token");
		j->password = jstr(r, "password");
		r->phase = 1;
		slow_run(r, pw_job_run, j, &j->rejected);
		return;
	}
	if (!pool_ok_or_reply(r, j))
		return;
	if (!j->turnstile_ok) {
		reply_error(r, 403, "turnstile_failed",
		    "The bot check failed; try again.");
		return;
	}
	if (!j->hashed) {
		reply_error(r, 500, "internal_error",
		    "Could not hash the password.");
		return;
	}
	memset(&u, 0, sizeof(u));
	uuid_generate(u.id);
	if (!email_normalize(u.email, jstr(r, "email")))
		return;
	memcpy(u.password_hash, j->hash, sizeof(u.password_hash));
	u.created_at = time_now_ms();
	start_web_session(r, &u, true, "signup", 201);
	sodium_memzero(u.password_hash, sizeof(u.password_hash));
}

/* ---- login ------------------------------------------------------------- */

static const struct jfield login_fields[] = {
	{ "email", JF_STRING, true, 1, 1024 },
	{ "password", JF_STRING, true, 1, PASSWORD_MAX },
};

struct login_state {
	struct pw_job job;
	struct store_user user;
	bool known;
	char email[STORE_EMAIL_MAX + 1];
	char *acct_key, *ip_key;
};

static struct login_state *
new_login_state(struct req *r)
{
	struct login_state *ls = arena_calloc(r->arena, 1, sizeof(*ls));

	if (ls == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return NULL;
	}
	ls->job.r = r;
	r->state = ls;
	r->cleanup = wipe_passwords;
	return ls;
}

static void
invalid_credentials(struct req *r)
{
	reply_error(r, 401, "invalid_credentials",
	    "Wrong email or password.");
}

void
api_auth_login(struct req *r)
{
	struct login_state *ls = r->state;
	struct store_conn *c;
	enum store_status st;

	r->no_store = true;
	if (r->phase == 0) {
		if (!json_fields_or_reply(r, login_fields, 2))
			return;
		if ((ls = new_login_state(r)) == NULL)
			return;
		if (!email_normalize(ls->email, jstr(r, "email"))) {
			/* cannot exist; answer like a wrong password */
			ls->email[0] = '\0';
		}
		ls->acct_key = arena_printf(r->arena, "login:acct:%s",
		    ls->email);
		ls->ip_key = arena_printf(r->arena, "login:ip:%s", req_rate_ip(r));
		/* Every attempt counts before the slow check, so parallel
		 * guesses cannot slip past the limit; success gives it back. */
		if (!rate_take_or_reply(r, RATE_LOGIN_IP, ls->ip_key) ||
		    !rate_take_or_reply(r, RATE_LOGIN_ACCOUNT, ls->acct_key))
			return;
		if ((c = db_or_reply(r)) == NULL)
			return;
		st = ls->email[0] ? store_call(c, user_by_email, ls->email,
		    &ls->user) : STORE_NOT_FOUND;
		if (st != STORE_OK && st != STORE_NOT_FOUND) {
			reply_store_error(r, st);
			return;
		}
		ls->known = st == STORE_OK;
		ls->job.password = jstr(r, "password");
		ls->job.verify_against = ls->known ?
		    ls->user.password_hash : "";
		r->phase = 1;
		slow_run(r, pw_job_run, &ls->job, &ls->job.rejected);
		return;
	}
	if (!pool_ok_or_reply(r, &ls->job))
		return;
	if (!ls->job.verified) {
		rate_restamp(r, RATE_LOGIN_IP, ls->ip_key);
		rate_restamp(r, RATE_LOGIN_ACCOUNT, ls->acct_key);
		if (ls->known && (c = db_or_reply(r)) != NULL)
			(void)audit_add(c, r, ls->user.id, "login_failed",
			    NULL);
		invalid_credentials(r);
		return;
	}
	rate_forget(r, ls->acct_key);
	rate_refund(r, RATE_LOGIN_IP, ls->ip_key);
	start_web_session(r, &ls->user, false, "login", 200);
}

/* ---- logout, session ---------------------------------------------------- */

struct logout_tx {
	struct req *r;
};

static enum store_status
logout_tx(struct store_conn *c, void *cls)
{
	struct logout_tx *t = cls;
	enum store_status st;

	st = store_call(c, websess_delete, t->r->auth.token_hash);
	if (st != STORE_OK && st != STORE_NOT_FOUND)
		return st;
	return audit_add(c, t->r, t->r->auth.user_id, "logout", NULL);
}

void
api_auth_logout(struct req *r)
{
	struct logout_tx t = { r };
	enum store_status st;

	r->no_store = true;
	if (!json_fields_or_reply(r, NULL, 0))
		return;
	st = store_tx(r->srv->store, true, logout_tx, &t);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	auth_clear_cookie(r);
	reply_json(r, 200, json_object());
}

void
api_auth_session(struct req *r)
{
	struct store_user u;
	enum store_status st;

	r->no_store = true;
	st = store_call(r->db, user_by_id, r->auth.user_id, &u);
	if (st == STORE_NOT_FOUND) {
		reply_error(r, 401, "unauthorized", "Sign in first.");
		return;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_json(r, 200, json_pack("{s:o}", "user", json_user(&u)));
}

/* ---- password change ---------------------------------------------------- */

static const struct jfield password_fields[] = {
	{ "current_password", JF_STRING, true, 1, PASSWORD_MAX },
	{ "new_password", JF_STRING, true, PASSWORD_MIN, PASSWORD_MAX },
};

struct password_tx {
	struct req *r;
	const char *hash;
};

static enum store_status
password_tx(struct store_conn *c, void *cls)
{
	struct password_tx *t = cls;
	struct req *r = t->r;
	enum store_status st;

	st = store_call(c, user_set_password, r->auth.user_id, t->hash);
	if (st != STORE_OK)
		return st;
	st = store_call(c, websess_delete_others, r->auth.user_id,
	    r->auth.token_hash);
	if (st != STORE_OK)
		return st;
	return audit_add(c, r, r->auth.user_id, "password_changed", NULL);
}

void
api_auth_password(struct req *r)
{
	struct login_state *ls = r->state;
	struct password_tx t;
	enum store_status st;

	r->no_store = true;
	if (r->phase == 0) {
		if (!json_fields_or_reply(r, password_fields, 2))
			return;
		if ((ls = new_login_state(r)) == NULL)
			return;
		st = store_call(r->db, user_by_id, r->auth.user_id, &ls->user);
		if (st != STORE_OK) {
			reply_store_error(r, st);
			return;
		}
		ls->acct_key = arena_printf(r->arena, "login:acct:%s",
		    ls->user.email);
		if (!rate_take_or_reply(r, RATE_LOGIN_ACCOUNT, ls->acct_key))
			return;
		ls->job.password = jstr(r, "current_password");
		ls->job.verify_against = ls->user.password_hash;
		ls->job.new_password = jstr(r, "new_password");
		r->phase = 1;
		slow_run(r, pw_job_run, &ls->job, &ls->job.rejected);
		return;
	}
	if (!pool_ok_or_reply(r, &ls->job))
		return;
	if (!ls->job.verified) {
		rate_restamp(r, RATE_LOGIN_ACCOUNT, ls->acct_key);
		reply_error(r, 401, "invalid_credentials",
		    "The current password is wrong.");
		return;
	}
	rate_forget(r, ls->acct_key);
	if (!ls->job.hashed) {
		reply_error(r, 500, "internal_error",
		    "Could not hash the password.");
		return;
	}
	t.r = r;
	t.hash = ls->job.hash;
	st = store_tx(r->srv->store, true, password_tx, &t);
	sodium_memzero(ls->job.hash, sizeof(ls->job.hash));
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_json(r, 200, json_object());
}

/* ---- Turnstile ---------------------------------------------------------- */

static const struct jfield turnstile_fields[] = {
	{ "token", JF_STRING, true, 1, TURNSTILE_TOKEN_MAX },
};

void
api_auth_verify_turnstile(struct req *r)
{
	struct pw_job *j = r->state;

	r->no_store = true;
	if (r->phase == 0) {
		if (!json_fields_or_reply(r, turnstile_fields, 1))
			return;
		if (r->srv->cfg.turnstile_secret_key[0] == '\0') {
			/* nothing configured, nothing to check */
			reply_json(r, 200, json_pack("{s:b}", "verified", 1));
			return;
		}
		/* each check is an outbound call: limited like signups */
		if (!rate_take_or_reply(r, RATE_SIGNUP_IP, arena_printf(
		    r->arena, "turnstile:ip:%s", req_rate_ip(r))))
			return;
		if ((j = new_job(r)) == NULL)
			return;
		j->turnstile_token = jstr(r, "token");
		r->phase = 1;
		slow_run(r, pw_job_run, j, &j->rejected);
		return;
	}
	if (!pool_ok_or_reply(r, j))
		return;
	if (!j->turnstile_ok) {
		reply_error(r, 403, "turnstile_failed",
		    "The bot check failed; try again.");
		return;
	}
	reply_json(r, 200, json_pack("{s:b}", "verified", 1));
}
