/*
 * test_store: every operation of the store, through the store API only
 * (store_open, store_conn, store_call, store_tx), so that the same file can
 * run against every backend.
 *
 * By default it opens a fresh SQLite file in a temporary directory. With
 * STORE_TEST_URL set it runs against that store instead (the tests make
 * their own users and never assume an empty database); the SQLite-only
 * cases (open errors, reopening the file, group commit) are then skipped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>
#include <sqlite3.h>

#include "common/arena.h"
#include "common/datatype.h"
#include "common/token.h"
#include "store/store.h"

#define T0 1700000000000LL   /* a fixed "now", in ms */
#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define THREADS 2
#define INCREMENTS 200
#define GROUP_MAX 64            /* WRITE_BATCH_MAX's default */
#define GROUP_THREADS 8
#define GROUP_WRITES 200
#define GROUP_CALLERS 6         /* queued behind a held writer */

struct fx {
	char dir[64];
	char path[128];
	char url[1024];
	bool sqlite;                    /* the default temporary file */
	struct store *s;
	char kept_user[STORE_ID_LEN + 1]; /* for the reopen test */
};

/* ---- helpers ------------------------------------------------------------- */

static struct store_conn *
conn(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c;

	c = store_conn(fx->s);
	assert_non_null(c);
	return c;
}

static void
rand_hash(uint8_t h[TOKEN_HASH_LEN])
{
	randombytes_buf(h, TOKEN_HASH_LEN);
}

static void
copy(char *dst, size_t cap, const char *src)
{
	int n;

	n = snprintf(dst, cap, "%s", src);
	assert_true(n >= 0 && (size_t)n < cap);
}

/* A fresh user with a unique id and email. */
static void
new_user(struct store_conn *c, struct store_user *u)
{
	char hex[17];
	uint8_t rnd[8];

	memset(u, 0, sizeof(*u));
	uuid_generate(u->id);
	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	assert_true(snprintf(u->email, sizeof(u->email), "u-%s@example.com",
	    hex) > 0);
	copy(u->password_hash, sizeof(u->password_hash),
	    "$argon2id$v=19$m=65536,t=2,p=1$c2FsdA$aGFzaA");
	u->created_at = T0;
	assert_int_equal(store_call(c, user_insert, u), STORE_OK);
}

static void
new_device(struct store_conn *c, const char *user_id, int64_t created,
    struct store_device *d)
{
	memset(d, 0, sizeof(*d));
	uuid_generate(d->id);
	copy(d->user_id, sizeof(d->user_id), user_id);
	copy(d->name, sizeof(d->name), "laptop");
	copy(d->platform, sizeof(d->platform), "linux");
	copy(d->app_version, sizeof(d->app_version), "1.2.3");
	d->status = DEVICE_ACTIVE;
	d->created_at = created;
	assert_int_equal(store_call(c, device_insert, d), STORE_OK);
}

static void
new_session(struct store_conn *c, const struct store_device *d,
    int64_t expires, struct store_session *s, uint8_t tok[TOKEN_HASH_LEN])
{
	struct store_token t;

	memset(s, 0, sizeof(*s));
	copy(s->user_id, sizeof(s->user_id), d->user_id);
	copy(s->device_id, sizeof(s->device_id), d->id);
	s->created_at = T0;
	s->expires_at = expires;
	assert_int_equal(store_call(c, session_insert, s), STORE_OK);
	assert_true(s->id > 0);
	memset(&t, 0, sizeof(t));
	rand_hash(t.hash);
	t.session_id = s->id;
	t.created_at = T0;
	assert_int_equal(store_call(c, token_insert, &t), STORE_OK);
	memcpy(tok, t.hash, TOKEN_HASH_LEN);
}

static void
new_devreq(struct store_conn *c, int64_t expires, struct store_devreq *r)
{
	memset(r, 0, sizeof(*r));
	rand_hash(r->temp_hash);
	user_code_generate(r->user_code);
	copy(r->device_name, sizeof(r->device_name), "desk");
	copy(r->platform, sizeof(r->platform), "macos");
	copy(r->app_version, sizeof(r->app_version), "2.0");
	copy(r->ip, sizeof(r->ip), "192.0.2.1");
	r->created_at = T0;
	r->expires_at = expires;
	r->state = DEVREQ_PENDING;
	r->interval_s = 2;
	assert_int_equal(store_call(c, devreq_insert, r), STORE_OK);
	assert_true(r->id > 0);
}

/* Writes version v of a type with a blob made of v's byte. */
static void
write_item(struct store_conn *c, const char *user_id, int type, int64_t v,
    size_t size, int keep)
{
	struct store_item it;
	unsigned char *blob;

	blob = malloc(size > 0 ? size : 1);
	assert_non_null(blob);
	memset(blob, (int)(v & 0xff), size);
	memset(&it, 0, sizeof(it));
	it.type = type;
	it.version = v;
	it.key_version = 1;
	it.size = (int64_t)size;
	it.updated_at = T0 + v;
	copy(it.updated_by_device, sizeof(it.updated_by_device),
	    "00000000-0000-4000-8000-000000000001");
	it.blob = blob;
	assert_int_equal(store_call(c, data_write, user_id, &it, keep),
	    STORE_OK);
	free(blob);
}

static void
assert_blob(const struct store_item *it, int64_t v, size_t size)
{
	size_t i;

	assert_non_null(it->blob);
	assert_int_equal(it->size, (int64_t)size);
	for (i = 0; i < size; i++)
		assert_int_equal(it->blob[i], (unsigned char)(v & 0xff));
}

/* ---- fixture ----------------------------------------------------------- */

static int
group_setup(void **state)
{
	struct fx *fx;
	const char *env;
	char err[512];

	if (sodium_init() < 0)
		return -1;
	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return -1;
	env = getenv("STORE_TEST_URL");
	if (env != NULL && env[0] != '\0') {
		copy(fx->url, sizeof(fx->url), env);
	} else {
		fx->sqlite = true;
		copy(fx->dir, sizeof(fx->dir), "/tmp/test_store.XXXXXX");
		if (mkdtemp(fx->dir) == NULL)
			return -1;
		assert_true(snprintf(fx->path, sizeof(fx->path), "%s/t.db",
		    fx->dir) > 0);
		assert_true(snprintf(fx->url, sizeof(fx->url), "sqlite:%s",
		    fx->path) > 0);
	}
	err[0] = '\0';
	fx->s = store_open(fx->url, GROUP_MAX, err, sizeof(err));
	if (fx->s == NULL) {
		fprintf(stderr, "store_open: %s\n", err);
		return -1;
	}
	*state = fx;
	return 0;
}

static void
rm(const char *dir, const char *name)
{
	char p[256];
	int n;

	n = snprintf(p, sizeof(p), "%s/%s", dir, name);
	if (n >= 0 && (size_t)n < sizeof(p))
		(void)unlink(p);
}

static int
group_teardown(void **state)
{
	struct fx *fx = *state;

	if (fx == NULL)
		return 0;
	store_close(fx->s);
	if (fx->sqlite) {
		rm(fx->dir, "t.db");
		rm(fx->dir, "t.db-wal");
		rm(fx->dir, "t.db-shm");
		rm(fx->dir, "newer.db");
		rm(fx->dir, "newer.db-wal");
		rm(fx->dir, "newer.db-shm");
		(void)rmdir(fx->dir);
	}
	free(fx);
	return 0;
}

/* ---- users and web sessions --------------------------------------------- */

static void
test_users(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, dup, got;
	char longhash[STORE_PWHASH_MAX + 2];

	new_user(c, &u);
	dup = u;
	uuid_generate(dup.id);
	assert_int_equal(store_call(c, user_insert, &dup), STORE_EXISTS);

	assert_int_equal(store_call(c, user_by_email, u.email, &got),
	    STORE_OK);
	assert_string_equal(got.id, u.id);
	assert_string_equal(got.email, u.email);
	assert_string_equal(got.password_hash, u.password_hash);
	assert_int_equal(got.created_at, T0);
	assert_int_equal(store_call(c, user_by_email, "nobody@example.com",
	    &got), STORE_NOT_FOUND);

	assert_int_equal(store_call(c, user_by_id, u.id, &got), STORE_OK);
	assert_string_equal(got.email, u.email);
	assert_int_equal(store_call(c, user_by_id, dup.id, &got),
	    STORE_NOT_FOUND);

	assert_int_equal(store_call(c, user_set_password, u.id, "$new$hash"),
	    STORE_OK);
	assert_int_equal(store_call(c, user_by_id, u.id, &got), STORE_OK);
	assert_string_equal(got.password_hash, "$new$hash");
	assert_int_equal(store_call(c, user_set_password, dup.id, "$x"),
	    STORE_NOT_FOUND);

	/* a value longer than its field is refused, not cut */
	memset(longhash, 'h', sizeof(longhash) - 1);
	longhash[sizeof(longhash) - 1] = '\0';
	assert_int_equal(store_call(c, user_set_password, u.id, longhash),
	    STORE_ERROR);
	assert_int_equal(store_call(c, user_by_id, u.id, &got), STORE_OK);
	assert_string_equal(got.password_hash, "$new$hash");
}

static void
test_websess(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_websess s1, s2, s3, sv, got;

	new_user(c, &u);
	new_user(c, &v);
	memset(&s1, 0, sizeof(s1));
	rand_hash(s1.hash);
	copy(s1.user_id, sizeof(s1.user_id), u.id);
	s1.created_at = s1.last_used_at = T0;
	s1.expires_at = T0 + DAY;
	s2 = s1;
	rand_hash(s2.hash);
	s3 = s1;
	rand_hash(s3.hash);
	sv = s1;
	rand_hash(sv.hash);
	copy(sv.user_id, sizeof(sv.user_id), v.id);
	assert_int_equal(store_call(c, websess_insert, &s1), STORE_OK);
	assert_int_equal(store_call(c, websess_insert, &s2), STORE_OK);
	assert_int_equal(store_call(c, websess_insert, &sv), STORE_OK);
	assert_int_equal(store_call(c, websess_insert, &s1), STORE_EXISTS);

	assert_int_equal(store_call(c, websess_get, s1.hash, &got), STORE_OK);
	assert_memory_equal(got.hash, s1.hash, TOKEN_HASH_LEN);
	assert_string_equal(got.user_id, u.id);
	assert_int_equal(got.created_at, T0);
	assert_int_equal(got.last_used_at, T0);
	assert_int_equal(got.expires_at, T0 + DAY);

	assert_int_equal(store_call(c, websess_touch, s1.hash, T0 + 5),
	    STORE_OK);
	assert_int_equal(store_call(c, websess_get, s1.hash, &got), STORE_OK);
	assert_int_equal(got.last_used_at, T0 + 5);
	assert_int_equal(store_call(c, websess_touch, s3.hash, T0),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_get, s3.hash, &got),
	    STORE_NOT_FOUND);

	/* all but s1; the other user's session stays */
	assert_int_equal(store_call(c, websess_delete_others, u.id, s1.hash),
	    STORE_OK);
	assert_int_equal(store_call(c, websess_get, s1.hash, &got), STORE_OK);
	assert_int_equal(store_call(c, websess_get, s2.hash, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_get, sv.hash, &got), STORE_OK);

	assert_int_equal(store_call(c, websess_insert, &s3), STORE_OK);
	assert_int_equal(store_call(c, websess_delete_others, u.id, NULL),
	    STORE_OK);
	assert_int_equal(store_call(c, websess_get, s1.hash, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_get, s3.hash, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_get, sv.hash, &got), STORE_OK);

	assert_int_equal(store_call(c, websess_delete, sv.hash), STORE_OK);
	assert_int_equal(store_call(c, websess_get, sv.hash, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_delete, sv.hash),
	    STORE_NOT_FOUND);
}

/* ---- device flow, devices, sessions -------------------------------------- */

static void
test_devreq(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_device d;
	struct store_devreq r, r2, got;

	new_user(c, &u);
	new_device(c, u.id, T0, &d);
	new_devreq(c, T0 + 5 * 60 * 1000, &r);

	assert_int_equal(store_call(c, devreq_by_temp, r.temp_hash, &got),
	    STORE_OK);
	assert_int_equal(got.id, r.id);
	assert_memory_equal(got.temp_hash, r.temp_hash, TOKEN_HASH_LEN);
	assert_string_equal(got.user_code, r.user_code);
	assert_string_equal(got.device_name, "desk");
	assert_string_equal(got.platform, "macos");
	assert_string_equal(got.app_version, "2.0");
	assert_string_equal(got.ip, "192.0.2.1");
	assert_int_equal(got.created_at, T0);
	assert_int_equal(got.expires_at, T0 + 5 * 60 * 1000);
	assert_int_equal(got.state, DEVREQ_PENDING);
	assert_string_equal(got.user_id, "");
	assert_string_equal(got.device_id, "");
	assert_int_equal(got.interval_s, 2);
	assert_int_equal(got.last_poll_at, 0);

	memset(&got, 0, sizeof(got));
	assert_int_equal(store_call(c, devreq_by_code, r.user_code, &got),
	    STORE_OK);
	assert_int_equal(got.id, r.id);
	assert_int_equal(store_call(c, devreq_by_code, "BBBBBBBB!", &got),
	    STORE_NOT_FOUND);

	/* a second request with the same user code collides */
	r2 = r;
	rand_hash(r2.temp_hash);
	assert_int_equal(store_call(c, devreq_insert, &r2), STORE_EXISTS);

	r.state = DEVREQ_CLAIMED;
	copy(r.user_id, sizeof(r.user_id), u.id);
	copy(r.device_id, sizeof(r.device_id), d.id);
	r.interval_s = 7;
	r.last_poll_at = T0 + 1000;
	assert_int_equal(store_call(c, devreq_update, &r), STORE_OK);
	assert_int_equal(store_call(c, devreq_by_temp, r.temp_hash, &got),
	    STORE_OK);
	assert_int_equal(got.state, DEVREQ_CLAIMED);
	assert_string_equal(got.user_id, u.id);
	assert_string_equal(got.device_id, d.id);
	assert_int_equal(got.interval_s, 7);
	assert_int_equal(got.last_poll_at, T0 + 1000);

	r.state = DEVREQ_DENIED;
	r.device_id[0] = '\0';
	assert_int_equal(store_call(c, devreq_update, &r), STORE_OK);
	assert_int_equal(store_call(c, devreq_by_code, r.user_code, &got),
	    STORE_OK);
	assert_int_equal(got.state, DEVREQ_DENIED);
	assert_string_equal(got.device_id, "");

	r2.id = r.id + 1000000;
	assert_int_equal(store_call(c, devreq_update, &r2), STORE_NOT_FOUND);
}

static void
test_devices(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_device d1, d2, got, *list;
	struct arena *a;
	size_t n;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	new_device(c, u.id, T0, &d1);
	new_device(c, u.id, T0 + 1, &d2);
	assert_int_equal(store_call(c, device_insert, &d1), STORE_EXISTS);

	assert_int_equal(store_call(c, device_get, u.id, d1.id, &got),
	    STORE_OK);
	assert_string_equal(got.id, d1.id);
	assert_string_equal(got.user_id, u.id);
	assert_string_equal(got.name, "laptop");
	assert_string_equal(got.platform, "linux");
	assert_string_equal(got.app_version, "1.2.3");
	assert_int_equal(got.status, DEVICE_ACTIVE);
	assert_int_equal(got.created_at, T0);
	assert_int_equal(got.last_seen_at, 0);
	assert_string_equal(got.last_ip, "");
	/* another user's device looks missing */
	assert_int_equal(store_call(c, device_get, v.id, d1.id, &got),
	    STORE_NOT_FOUND);

	assert_int_equal(store_call(c, device_list, u.id, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_string_equal(list[0].id, d2.id);   /* newest first */
	assert_string_equal(list[1].id, d1.id);
	assert_int_equal(store_call(c, device_list, v.id, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 0);

	assert_int_equal(store_call(c, device_set_status, u.id, d1.id,
	    DEVICE_REVOKED), STORE_OK);
	assert_int_equal(store_call(c, device_get, u.id, d1.id, &got),
	    STORE_OK);
	assert_int_equal(got.status, DEVICE_REVOKED);
	assert_int_equal(store_call(c, device_set_status, v.id, d2.id,
	    DEVICE_REVOKED), STORE_NOT_FOUND);
	assert_int_equal(store_call(c, device_get, u.id, d2.id, &got),
	    STORE_OK);
	assert_int_equal(got.status, DEVICE_ACTIVE);

	assert_int_equal(store_call(c, device_touch, d2.id, T0 + 77,
	    "2001:db8::1"), STORE_OK);
	assert_int_equal(store_call(c, device_get, u.id, d2.id, &got),
	    STORE_OK);
	assert_int_equal(got.last_seen_at, T0 + 77);
	assert_string_equal(got.last_ip, "2001:db8::1");
	assert_int_equal(store_call(c, device_touch, v.id, T0, "x"),
	    STORE_NOT_FOUND);
	arena_free(a);
}

static void
test_sessions_tokens(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_device d, d2, dev;
	struct store_session s, s2, s3, sess;
	struct store_token tok, t2;
	uint8_t h1[TOKEN_HASH_LEN], h2[TOKEN_HASH_LEN], h3[TOKEN_HASH_LEN];
	uint8_t unknown[TOKEN_HASH_LEN];

	new_user(c, &u);
	new_device(c, u.id, T0, &d);
	new_device(c, u.id, T0, &d2);
	new_session(c, &d, T0 + 90 * DAY, &s, h1);

	assert_int_equal(store_call(c, token_lookup, h1, &tok, &sess, &dev),
	    STORE_OK);
	assert_memory_equal(tok.hash, h1, TOKEN_HASH_LEN);
	assert_int_equal(tok.session_id, s.id);
	assert_int_equal(tok.created_at, T0);
	assert_false(tok.used);
	assert_false(tok.has_successor);
	assert_int_equal(sess.id, s.id);
	assert_string_equal(sess.user_id, u.id);
	assert_string_equal(sess.device_id, d.id);
	assert_int_equal(sess.expires_at, T0 + 90 * DAY);
	assert_int_equal(sess.revoked_at, 0);
	assert_string_equal(dev.id, d.id);
	assert_string_equal(dev.user_id, u.id);
	assert_string_equal(dev.name, "laptop");
	assert_int_equal(dev.status, DEVICE_ACTIVE);
	rand_hash(unknown);
	assert_int_equal(store_call(c, token_lookup, unknown, &tok, &sess,
	    &dev), STORE_NOT_FOUND);

	/* rotation: h1 -> h2 */
	memset(&t2, 0, sizeof(t2));
	rand_hash(t2.hash);
	memcpy(h2, t2.hash, TOKEN_HASH_LEN);
	t2.session_id = s.id;
	t2.created_at = T0 + 10;
	assert_int_equal(store_call(c, token_insert, &t2), STORE_OK);
	assert_int_equal(store_call(c, token_insert, &t2), STORE_EXISTS);
	tok.used = true;
	tok.has_successor = true;
	memcpy(tok.successor, h2, TOKEN_HASH_LEN);
	tok.grace_until = T0 + 60000;
	assert_int_equal(store_call(c, token_update, &tok), STORE_OK);
	memset(&tok, 0, sizeof(tok));
	assert_int_equal(store_call(c, token_lookup, h1, &tok, NULL, NULL),
	    STORE_OK);
	assert_true(tok.used);
	assert_true(tok.has_successor);
	assert_memory_equal(tok.successor, h2, TOKEN_HASH_LEN);
	assert_int_equal(tok.grace_until, T0 + 60000);
	memcpy(tok.hash, unknown, TOKEN_HASH_LEN);
	assert_int_equal(store_call(c, token_update, &tok), STORE_NOT_FOUND);

	assert_int_equal(store_call(c, token_delete, h1), STORE_OK);
	assert_int_equal(store_call(c, token_lookup, h1, &tok, &sess, &dev),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, token_delete, h1), STORE_NOT_FOUND);
	assert_int_equal(store_call(c, token_lookup, h2, &tok, &sess, &dev),
	    STORE_OK);
	assert_int_equal(tok.session_id, s.id);

	/* a token of a session that does not exist */
	t2.session_id = s.id + 1000000;
	rand_hash(t2.hash);
	assert_int_equal(store_call(c, token_insert, &t2), STORE_NOT_FOUND);

	/* revocation keeps the first time */
	assert_int_equal(store_call(c, session_revoke, s.id, T0 + 100),
	    STORE_OK);
	assert_int_equal(store_call(c, session_revoke, s.id, T0 + 200),
	    STORE_OK);
	assert_int_equal(store_call(c, token_lookup, h2, NULL, &sess, NULL),
	    STORE_OK);
	assert_int_equal(sess.revoked_at, T0 + 100);
	assert_int_equal(store_call(c, session_revoke, s.id + 1000000, T0),
	    STORE_NOT_FOUND);

	/* revoking a device ends its live sessions, and only those */
	new_session(c, &d, T0 + DAY, &s2, h2);
	new_session(c, &d2, T0 + DAY, &s3, h3);
	assert_int_equal(store_call(c, session_revoke_device, d.id, T0 + 300),
	    STORE_OK);
	assert_int_equal(store_call(c, token_lookup, h2, NULL, &sess, NULL),
	    STORE_OK);
	assert_int_equal(sess.id, s2.id);
	assert_int_equal(sess.revoked_at, T0 + 300);
	assert_int_equal(store_call(c, token_lookup, h3, NULL, &sess, NULL),
	    STORE_OK);
	assert_int_equal(sess.revoked_at, 0);
}

/* ---- configuration and keys ------------------------------------------------ */

static void
test_config(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_config cfg, got;
	int t;

	new_user(c, &u);
	assert_int_equal(store_call(c, config_get, u.id, &got), STORE_OK);
	for (t = 0; t < DT_COUNT; t++)
		assert_true(got.enabled[t]);
	assert_int_equal(got.updated_at, 0);

	for (t = 0; t < DT_COUNT; t++)
		cfg.enabled[t] = true;
	cfg.enabled[DT_SECRET] = false;
	cfg.updated_at = T0;
	assert_int_equal(store_call(c, config_put, u.id, &cfg), STORE_OK);
	assert_int_equal(store_call(c, config_get, u.id, &got), STORE_OK);
	for (t = 0; t < DT_COUNT; t++)
		assert_int_equal(got.enabled[t], t != DT_SECRET);
	assert_int_equal(got.updated_at, T0);

	cfg.enabled[DT_SECRET] = true;
	cfg.enabled[DT_HISTORY] = false;
	cfg.updated_at = T0 + 1;
	assert_int_equal(store_call(c, config_put, u.id, &cfg), STORE_OK);
	assert_int_equal(store_call(c, config_get, u.id, &got), STORE_OK);
	for (t = 0; t < DT_COUNT; t++)
		assert_int_equal(got.enabled[t], t != DT_HISTORY);
	assert_int_equal(got.updated_at, T0 + 1);
}

static void
test_keys(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_key k, got;
	struct arena *a;
	unsigned char wrapped[60];

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	assert_int_equal(store_call(c, key_current, u.id, a, &got),
	    STORE_NOT_FOUND);

	randombytes_buf(wrapped, sizeof(wrapped));
	memset(&k, 0, sizeof(k));
	k.version = 1;
	k.wrapped = wrapped;
	k.wrapped_len = sizeof(wrapped);
	k.kdf = "{\"name\":\"argon2id\",\"t\":3}";
	k.created_at = T0;
	assert_int_equal(store_call(c, key_insert, u.id, &k), STORE_OK);
	assert_int_equal(store_call(c, key_current, u.id, a, &got), STORE_OK);
	assert_int_equal(got.version, 1);
	assert_int_equal(got.wrapped_len, sizeof(wrapped));
	assert_memory_equal(got.wrapped, wrapped, sizeof(wrapped));
	assert_string_equal(got.kdf, k.kdf);
	assert_int_equal(got.created_at, T0);
	assert_string_equal(got.created_by_device, "");

	k.version = 2;
	wrapped[0] ^= 0xff;
	k.kdf = "{\"name\":\"argon2id\",\"t\":4}";
	k.created_at = T0 + 1;
	copy(k.created_by_device, sizeof(k.created_by_device),
	    "00000000-0000-4000-8000-000000000002");
	assert_int_equal(store_call(c, key_insert, u.id, &k), STORE_OK);
	assert_int_equal(store_call(c, key_insert, u.id, &k), STORE_EXISTS);
	assert_int_equal(store_call(c, key_current, u.id, a, &got), STORE_OK);
	assert_int_equal(got.version, 2);
	assert_memory_equal(got.wrapped, wrapped, sizeof(wrapped));
	assert_string_equal(got.kdf, k.kdf);
	assert_string_equal(got.created_by_device, k.created_by_device);

	assert_int_equal(store_call(c, key_current, v.id, a, &got),
	    STORE_NOT_FOUND);
	arena_free(a);
}

/* ---- encrypted data ---------------------------------------------------------- */

static void
test_data(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_item got, tomb, *list;
	struct arena *a;
	size_t n;
	int64_t ver;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	assert_int_equal(store_call(c, data_head, u.id, DT_HISTORY, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, data_get, u.id, DT_HISTORY, a, &got),
	    STORE_NOT_FOUND);

	write_item(c, u.id, DT_HISTORY, 1, 100, 3);
	assert_int_equal(store_call(c, data_head, u.id, DT_HISTORY, &got),
	    STORE_OK);
	assert_int_equal(got.type, DT_HISTORY);
	assert_int_equal(got.version, 1);
	assert_int_equal(got.key_version, 1);
	assert_int_equal(got.size, 100);
	assert_int_equal(got.updated_at, T0 + 1);
	assert_string_equal(got.updated_by_device,
	    "00000000-0000-4000-8000-000000000001");
	assert_false(got.deleted);
	assert_null(got.blob);
	assert_int_equal(store_call(c, data_get, u.id, DT_HISTORY, a, &got),
	    STORE_OK);
	assert_int_equal(got.version, 1);
	assert_blob(&got, 1, 100);

	/* five writes, three revisions kept */
	for (ver = 2; ver <= 5; ver++)
		write_item(c, u.id, DT_HISTORY, ver, 100 + (size_t)ver, 3);
	assert_int_equal(store_call(c, data_get, u.id, DT_HISTORY, a, &got),
	    STORE_OK);
	assert_int_equal(got.version, 5);
	assert_blob(&got, 5, 105);
	assert_int_equal(store_call(c, revision_list, u.id, DT_HISTORY, a,
	    &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].version, 5);
	assert_int_equal(list[1].version, 4);
	assert_int_equal(list[2].version, 3);
	assert_int_equal(list[1].size, 104);
	assert_null(list[0].blob);
	assert_int_equal(store_call(c, revision_get, u.id, DT_HISTORY, 2, a,
	    &got), STORE_NOT_FOUND);
	assert_int_equal(store_call(c, revision_get, u.id, DT_HISTORY, 4, a,
	    &got), STORE_OK);
	assert_int_equal(got.version, 4);
	assert_blob(&got, 4, 104);

	/* a second type; the list comes in type order, blobs on request */
	write_item(c, u.id, DT_SECRET, 1, 0, 3);
	assert_int_equal(store_call(c, data_list, u.id, false, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].type, DT_HISTORY);
	assert_int_equal(list[1].type, DT_SECRET);
	assert_null(list[0].blob);
	assert_null(list[1].blob);
	assert_int_equal(store_call(c, data_list, u.id, true, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_blob(&list[0], 5, 105);
	assert_blob(&list[1], 1, 0);    /* empty, but not NULL */

	/* a tombstone: head only; the revisions stay for recovery */
	memset(&tomb, 0, sizeof(tomb));
	tomb.type = DT_HISTORY;
	tomb.version = 6;
	tomb.key_version = 1;
	tomb.updated_at = T0 + 6;
	tomb.deleted = true;
	assert_int_equal(store_call(c, data_write, u.id, &tomb, 3), STORE_OK);
	assert_int_equal(store_call(c, data_head, u.id, DT_HISTORY, &got),
	    STORE_OK);
	assert_true(got.deleted);
	assert_int_equal(got.version, 6);
	assert_int_equal(store_call(c, data_get, u.id, DT_HISTORY, a, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, data_list, u.id, true, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].type, DT_SECRET);
	assert_int_equal(store_call(c, revision_list, u.id, DT_HISTORY, a,
	    &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].version, 5);

	/* the count goes on after a tombstone */
	write_item(c, u.id, DT_HISTORY, 7, 64 * 1024, 3);
	assert_int_equal(store_call(c, data_get, u.id, DT_HISTORY, a, &got),
	    STORE_OK);
	assert_int_equal(got.version, 7);
	assert_false(got.deleted);
	assert_blob(&got, 7, 64 * 1024);
	assert_int_equal(store_call(c, revision_list, u.id, DT_HISTORY, a,
	    &list, &n), STORE_OK);
	assert_int_equal(n, 3);
	assert_int_equal(list[0].version, 7);
	assert_int_equal(list[2].version, 4);

	/* another user sees nothing of it */
	assert_int_equal(store_call(c, data_head, v.id, DT_HISTORY, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, data_get, v.id, DT_HISTORY, a, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, data_list, v.id, true, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_call(c, revision_list, v.id, DT_HISTORY, a,
	    &list, &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_call(c, revision_get, v.id, DT_HISTORY, 7, a,
	    &got), STORE_NOT_FOUND);
	arena_free(a);
}

/* ---- audit and events ----------------------------------------------------------- */

static void
test_audit(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_audit e, *list;
	struct arena *a;
	int64_t ids[5];
	char ua[300];
	size_t n;
	int i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	for (i = 0; i < 5; i++) {
		memset(&e, 0, sizeof(e));
		copy(e.user_id, sizeof(e.user_id), u.id);
		assert_true(snprintf(e.event_type, sizeof(e.event_type),
		    "type_%d", i) > 0);
		copy(e.ip, sizeof(e.ip), "198.51.100.7");
		if (i == 1) {
			copy(e.device_id, sizeof(e.device_id),
			    "00000000-0000-4000-8000-000000000003");
			e.user_agent = "Flamingo/1.0";
			e.metadata = "{\"k\":1}";
		}
		e.created_at = T0 + i;
		assert_int_equal(store_call(c, audit_insert, &e), STORE_OK);
		ids[i] = e.id;
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}
	/* an over-long user agent is cut at a character boundary */
	memset(ua, 'a', STORE_UA_MAX - 1);
	memcpy(ua + STORE_UA_MAX - 1, "\xc3\xa9tail", 7);
	memset(&e, 0, sizeof(e));
	copy(e.user_id, sizeof(e.user_id), v.id);
	copy(e.event_type, sizeof(e.event_type), "login");
	e.user_agent = ua;
	assert_int_equal(store_call(c, audit_insert, &e), STORE_OK);
	assert_int_equal(store_call(c, audit_list, v.id, 0, 10, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	assert_non_null(list[0].user_agent);
	assert_int_equal(strlen(list[0].user_agent), STORE_UA_MAX - 1);
	assert_null(list[0].metadata);

	assert_int_equal(store_call(c, audit_list, u.id, 0, 50, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 5);
	assert_int_equal(list[0].id, ids[4]);   /* newest first */
	assert_int_equal(list[4].id, ids[0]);
	assert_string_equal(list[4].event_type, "type_0");
	assert_string_equal(list[3].device_id,
	    "00000000-0000-4000-8000-000000000003");
	assert_string_equal(list[3].user_agent, "Flamingo/1.0");
	assert_string_equal(list[3].metadata, "{\"k\":1}");
	assert_string_equal(list[3].ip, "198.51.100.7");
	assert_int_equal(list[3].created_at, T0 + 1);
	assert_string_equal(list[4].device_id, "");
	assert_null(list[4].user_agent);

	/* paging back */
	assert_int_equal(store_call(c, audit_list, u.id, 0, 2, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[1].id, ids[3]);
	assert_int_equal(store_call(c, audit_list, u.id, list[1].id, 2, a,
	    &list, &n), STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, ids[2]);
	assert_int_equal(list[1].id, ids[1]);
	assert_int_equal(store_call(c, audit_list, u.id, ids[1], 2, a, &list,
	    &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ids[0]);
	assert_int_equal(store_call(c, audit_list, u.id, ids[0], 2, a, &list,
	    &n), STORE_OK);
	assert_int_equal(n, 0);
	/* a limit below one means one */
	assert_int_equal(store_call(c, audit_list, u.id, 0, 0, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	arena_free(a);
}

static void
test_events(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_event e, *list;
	struct arena *a;
	int64_t ids[3], last;
	size_t n;
	int i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	assert_int_equal(store_call(c, event_last_id, u.id, &last), STORE_OK);
	assert_int_equal(last, 0);
	for (i = 0; i < 3; i++) {
		memset(&e, 0, sizeof(e));
		copy(e.user_id, sizeof(e.user_id), i == 1 ? v.id : u.id);
		copy(e.type, sizeof(e.type), i == 2 ? "device_revoked" :
		    "data_updated");
		e.data_type = i == 2 ? -1 : DT_COLLECTION;
		e.version = i == 2 ? 0 : 10 + i;
		if (i == 0)
			copy(e.origin_device_id, sizeof(e.origin_device_id),
			    "00000000-0000-4000-8000-000000000004");
		if (i == 2)
			copy(e.device_id, sizeof(e.device_id),
			    "00000000-0000-4000-8000-000000000005");
		e.created_at = T0 + i;
		assert_int_equal(store_call(c, event_insert, &e), STORE_OK);
		ids[i] = e.id;
		if (i > 0)
			assert_true(ids[i] > ids[i - 1]);
	}
	assert_int_equal(store_call(c, event_last_id, u.id, &last), STORE_OK);
	assert_int_equal(last, ids[2]);
	assert_int_equal(store_call(c, event_last_id, v.id, &last), STORE_OK);
	assert_int_equal(last, ids[1]);

	assert_int_equal(store_call(c, event_list, u.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);                 /* v's event is not there */
	assert_int_equal(list[0].id, ids[0]);   /* oldest first */
	assert_string_equal(list[0].user_id, u.id);
	assert_string_equal(list[0].type, "data_updated");
	assert_int_equal(list[0].data_type, DT_COLLECTION);
	assert_int_equal(list[0].version, 10);
	assert_string_equal(list[0].origin_device_id,
	    "00000000-0000-4000-8000-000000000004");
	assert_int_equal(list[0].created_at, T0);
	assert_int_equal(list[1].id, ids[2]);
	assert_string_equal(list[1].type, "device_revoked");
	assert_int_equal(list[1].data_type, -1);
	assert_int_equal(list[1].version, 0);
	assert_string_equal(list[1].origin_device_id, "");
	assert_string_equal(list[1].device_id,
	    "00000000-0000-4000-8000-000000000005");
	assert_string_equal(list[0].device_id, "");

	assert_int_equal(store_call(c, event_list, u.id, ids[0], 100, a, &list,
	    &n), STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ids[2]);
	assert_int_equal(store_call(c, event_list, u.id, ids[2], 100, a, &list,
	    &n), STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_call(c, event_list, u.id, 0, 1, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ids[0]);
	assert_int_equal(store_call(c, event_list, u.id, 0, -5, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	arena_free(a);
}

/* Retention: pruning drops old events of every user and raises each
 * user's floor to the newest id it dropped; floors never go down. */
static void
test_event_prune(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v, w;
	struct store_event e, *list;
	struct arena *a;
	int64_t ids[6], floor, pruned;
	size_t n;
	int i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	new_user(c, &w);
	for (i = 0; i < 6; i++) {
		memset(&e, 0, sizeof(e));
		copy(e.user_id, sizeof(e.user_id), i % 2 ? v.id : u.id);
		copy(e.type, sizeof(e.type), "config_changed");
		e.data_type = -1;
		e.created_at = T0 + i * 1000;   /* u: 0 2 4, v: 1 3 5 */
		assert_int_equal(store_call(c, event_insert, &e), STORE_OK);
		ids[i] = e.id;
	}
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, 0);
	/* before T0 + 3000: u's first two and v's first one go (and any
	 * older event of other tests) */
	assert_int_equal(store_call(c, event_prune, T0 + 3000, 100, &pruned),
	    STORE_OK);
	assert_true(pruned >= 3);
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[2]);
	assert_int_equal(store_call(c, event_floor, v.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[1]);
	assert_int_equal(store_call(c, event_floor, w.id, &floor), STORE_OK);
	assert_int_equal(floor, 0);
	assert_int_equal(store_call(c, event_list, u.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ids[4]);
	assert_int_equal(store_call(c, event_list, v.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	/* nothing older left: floors stay */
	assert_int_equal(store_call(c, event_prune, T0 + 3000, 100, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 0);
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[2]);
	/* everything goes */
	assert_int_equal(store_call(c, event_prune, T0 + 10000, 100, &pruned),
	    STORE_OK);
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[4]);
	assert_int_equal(store_call(c, event_floor, v.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[5]);
	assert_int_equal(store_call(c, event_list, v.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 0);
	arena_free(a);
}

/* Retention in batches: the oldest go first, at most `limit` a call, and
 * each batch raises the floor to exactly what it dropped. (Times before
 * 1970 keep these rows apart from the other tests'.) */
static void
test_event_prune_batches(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_event e, *list;
	struct arena *a;
	int64_t ids[5], floor, pruned;
	size_t n;
	int i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	for (i = 0; i < 5; i++) {
		memset(&e, 0, sizeof(e));
		copy(e.user_id, sizeof(e.user_id), u.id);
		copy(e.type, sizeof(e.type), "config_changed");
		e.data_type = -1;
		e.created_at = -100000 + i;
		assert_int_equal(store_call(c, event_insert, &e), STORE_OK);
		ids[i] = e.id;
	}
	/* four are older than the cut: 3, then 1, then none */
	assert_int_equal(store_call(c, event_prune, -99996, 3, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 3);
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[2]);
	assert_int_equal(store_call(c, event_list, u.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 2);
	assert_int_equal(list[0].id, ids[3]);
	assert_int_equal(store_call(c, event_prune, -99996, 3, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 1);
	assert_int_equal(store_call(c, event_floor, u.id, &floor), STORE_OK);
	assert_int_equal(floor, ids[3]);
	assert_int_equal(store_call(c, event_prune, -99996, 3, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 0);
	assert_int_equal(store_call(c, event_list, u.id, 0, 100, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 1);
	assert_int_equal(list[0].id, ids[4]);
	arena_free(a);
}

/* Audit retention: rows of every user older than the cut go, oldest
 * first, at most `limit` a call; newer ones stay. */
static void
test_audit_prune(void **state)
{
	struct store_conn *c = conn(state);
	struct store_user u, v;
	struct store_audit e, *list;
	struct arena *a;
	int64_t pruned;
	size_t n;
	int i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	new_user(c, &v);
	for (i = 0; i < 6; i++) {
		memset(&e, 0, sizeof(e));
		copy(e.user_id, sizeof(e.user_id), i == 0 ? v.id : u.id);
		copy(e.event_type, sizeof(e.event_type), "login");
		e.created_at = -100000 + i;     /* v: 0; u: 1..5 */
		assert_int_equal(store_call(c, audit_insert, &e), STORE_OK);
	}
	/* three are older than the cut (v's and u's first two) */
	assert_int_equal(store_call(c, audit_prune, -99997, 2, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 2);
	assert_int_equal(store_call(c, audit_list, v.id, 0, 10, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 0);
	assert_int_equal(store_call(c, audit_prune, -99997, 2, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 1);
	assert_int_equal(store_call(c, audit_prune, -99997, 2, &pruned),
	    STORE_OK);
	assert_int_equal(pruned, 0);
	assert_int_equal(store_call(c, audit_list, u.id, 0, 10, a, &list, &n),
	    STORE_OK);
	assert_int_equal(n, 3);
	for (i = 0; i < 3; i++)
		assert_true(list[i].created_at >= -99997);
	arena_free(a);
}

/* ---- rate limits and housekeeping ----------------------------------------------- */

static void
test_rate(void **state)
{
	struct store_conn *c = conn(state);
	struct rate_state st, got;
	char key[64];
	uint8_t rnd[8];
	char hex[17];

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	assert_true(snprintf(key, sizeof(key), "login:ip:%s", hex) > 0);

	memset(&got, 0xff, sizeof(got));
	assert_int_equal(store_call(c, rate_get, key, &got), STORE_OK);
	assert_int_equal(got.window_start, 0);
	assert_int_equal(got.count, 0);
	assert_int_equal(got.blocked_until, 0);

	st.window_start = T0;
	st.count = 3;
	st.blocked_until = 0;
	assert_int_equal(store_call(c, rate_put, key, &st, T0 + HOUR),
	    STORE_OK);
	assert_int_equal(store_call(c, rate_get, key, &got), STORE_OK);
	assert_int_equal(got.window_start, T0);
	assert_int_equal(got.count, 3);
	assert_int_equal(got.blocked_until, 0);

	st.count = 11;
	st.blocked_until = T0 + 2000;
	assert_int_equal(store_call(c, rate_put, key, &st, T0 + HOUR),
	    STORE_OK);
	assert_int_equal(store_call(c, rate_get, key, &got), STORE_OK);
	assert_int_equal(got.count, 11);
	assert_int_equal(got.blocked_until, T0 + 2000);

	assert_int_equal(store_call(c, rate_delete, key), STORE_OK);
	assert_int_equal(store_call(c, rate_get, key, &got), STORE_OK);
	assert_int_equal(got.count, 0);
	assert_int_equal(store_call(c, rate_delete, key), STORE_OK);
}

static void
test_prune(void **state)
{
	struct store_conn *c = conn(state);
	const int64_t now = T0 + 1000 * DAY;   /* later than every other test */
	struct store_user u;
	struct store_device d;
	struct store_devreq old, recent, got;
	struct store_session s_exp, s_rev_old, s_rev_new, s_live, sess;
	struct store_websess w_exp, w_live, wgot;
	struct rate_state rs, rgot;
	uint8_t h_exp[TOKEN_HASH_LEN], h_rev_old[TOKEN_HASH_LEN];
	uint8_t h_rev_new[TOKEN_HASH_LEN], h_live[TOKEN_HASH_LEN];

	new_user(c, &u);
	new_device(c, u.id, T0, &d);
	new_devreq(c, now - 2 * HOUR, &old);
	new_devreq(c, now - HOUR / 2, &recent);

	new_session(c, &d, now - 2 * DAY, &s_exp, h_exp);
	new_session(c, &d, now + DAY, &s_rev_old, h_rev_old);
	new_session(c, &d, now + DAY, &s_rev_new, h_rev_new);
	new_session(c, &d, now + DAY, &s_live, h_live);
	assert_int_equal(store_call(c, session_revoke, s_rev_old.id,
	    now - 2 * DAY), STORE_OK);
	assert_int_equal(store_call(c, session_revoke, s_rev_new.id,
	    now - HOUR), STORE_OK);

	memset(&w_exp, 0, sizeof(w_exp));
	rand_hash(w_exp.hash);
	copy(w_exp.user_id, sizeof(w_exp.user_id), u.id);
	w_exp.expires_at = now - 1;
	w_live = w_exp;
	rand_hash(w_live.hash);
	w_live.expires_at = now + HOUR;
	assert_int_equal(store_call(c, websess_insert, &w_exp), STORE_OK);
	assert_int_equal(store_call(c, websess_insert, &w_live), STORE_OK);

	rs.window_start = now - HOUR;
	rs.count = 5;
	rs.blocked_until = 0;
	assert_int_equal(store_call(c, rate_put, "prune:old", &rs, now - 1),
	    STORE_OK);
	assert_int_equal(store_call(c, rate_put, "prune:live", &rs, now + 1),
	    STORE_OK);

	assert_int_equal(store_call(c, prune, now), STORE_OK);

	assert_int_equal(store_call(c, devreq_by_temp, old.temp_hash, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, devreq_by_temp, recent.temp_hash, &got),
	    STORE_OK);
	assert_int_equal(store_call(c, token_lookup, h_exp, NULL, &sess, NULL),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, token_lookup, h_rev_old, NULL, &sess,
	    NULL), STORE_NOT_FOUND);
	assert_int_equal(store_call(c, session_revoke, s_exp.id, now),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, session_revoke, s_rev_old.id, now),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, token_lookup, h_rev_new, NULL, &sess,
	    NULL), STORE_OK);
	assert_int_equal(sess.revoked_at, now - HOUR);
	assert_int_equal(store_call(c, token_lookup, h_live, NULL, &sess,
	    NULL), STORE_OK);
	assert_int_equal(sess.revoked_at, 0);
	assert_int_equal(store_call(c, websess_get, w_exp.hash, &wgot),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, websess_get, w_live.hash, &wgot),
	    STORE_OK);
	assert_int_equal(store_call(c, rate_get, "prune:old", &rgot),
	    STORE_OK);
	assert_int_equal(rgot.count, 0);
	assert_int_equal(store_call(c, rate_get, "prune:live", &rgot),
	    STORE_OK);
	assert_int_equal(rgot.count, 5);
	assert_int_equal(store_call(c, rate_delete, "prune:live"), STORE_OK);
}

/* ---- transactions ------------------------------------------------------------ */

struct tx_dev {
	struct store_device d;
	enum store_status result;
	int calls;
	int busy_first;                 /* calls that answer STORE_BUSY */
};

static enum store_status
tx_insert_device(struct store_conn *c, void *cls)
{
	struct tx_dev *t = cls;
	enum store_status rc;

	t->calls++;
	if ((rc = store_call(c, device_insert, &t->d)) != STORE_OK)
		return rc;
	if (t->calls <= t->busy_first)
		return STORE_BUSY;
	return t->result;
}

static void
test_tx(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_device got;
	struct tx_dev t;

	new_user(c, &u);
	memset(&t, 0, sizeof(t));
	new_device(c, u.id, T0, &t.d);  /* then a fresh id for each case */

	uuid_generate(t.d.id);
	t.result = STORE_OK;
	assert_int_equal(store_tx(fx->s, true, tx_insert_device, &t),
	    STORE_OK);
	assert_int_equal(t.calls, 1);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_OK);

	/* an abort leaves nothing behind */
	uuid_generate(t.d.id);
	t.calls = 0;
	t.result = STORE_ABORT;
	assert_int_equal(store_tx(fx->s, true, tx_insert_device, &t),
	    STORE_ABORT);
	assert_int_equal(t.calls, 1);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_NOT_FOUND);

	/* so does a hard error, which is not retried */
	t.calls = 0;
	t.result = STORE_NOT_FOUND;
	assert_int_equal(store_tx(fx->s, true, tx_insert_device, &t),
	    STORE_NOT_FOUND);
	assert_int_equal(t.calls, 1);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_NOT_FOUND);

	/* busy is retried, each try starting from scratch */
	t.calls = 0;
	t.busy_first = 3;
	t.result = STORE_OK;
	assert_int_equal(store_tx(fx->s, true, tx_insert_device, &t),
	    STORE_OK);
	assert_int_equal(t.calls, 4);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_OK);

	/* ... a bounded number of times */
	uuid_generate(t.d.id);
	t.calls = 0;
	t.busy_first = 1000;
	assert_int_equal(store_tx(fx->s, true, tx_insert_device, &t),
	    STORE_BUSY);
	assert_true(t.calls > 1 && t.calls < 100);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_NOT_FOUND);

	/* a read transaction */
	uuid_generate(t.d.id);
	t.calls = 0;
	t.busy_first = 0;
	assert_int_equal(store_tx(fx->s, false, tx_insert_device, &t),
	    STORE_OK);
	assert_int_equal(store_call(c, device_get, u.id, t.d.id, &got),
	    STORE_OK);

	assert_int_equal(store_call(c, ping), STORE_OK);
	assert_string_equal(store_backend(fx->s), store_ops(fx->s)->name);
}

/* ---- concurrency ------------------------------------------------------------- */

struct worker {
	struct store *s;
	const char *user_id;
	struct store_conn *main_conn;
	int failures;                   /* store_tx that did not commit */
	int shared_conn;                /* got the main thread's connection */
};

/*
 * A counter: the head of `type` one version up (keeping `keep` revisions);
 * *version is the new one.
 */
static enum store_status
counter_bump(struct store_conn *c, const char *user_id, int type, int keep,
    int64_t *version)
{
	struct store_item it;
	enum store_status rc;
	unsigned char blob[8] = "counter";

	rc = store_call(c, data_head, user_id, type, &it);
	if (rc == STORE_NOT_FOUND) {
		memset(&it, 0, sizeof(it));
		it.type = type;
	} else if (rc != STORE_OK) {
		return rc;
	}
	it.version++;
	it.size = sizeof(blob);
	it.blob = blob;
	it.deleted = false;
	if ((rc = store_call(c, data_write, user_id, &it, keep)) != STORE_OK)
		return rc;
	*version = it.version;
	return STORE_OK;
}

/* A data_updated event of the setting type carrying `version`. */
static enum store_status
counter_event(struct store_conn *c, const char *user_id, int64_t version)
{
	struct store_event ev;

	memset(&ev, 0, sizeof(ev));
	copy(ev.user_id, sizeof(ev.user_id), user_id);
	copy(ev.type, sizeof(ev.type), "data_updated");
	ev.data_type = DT_SETTING;
	ev.version = version;
	return store_call(c, event_insert, &ev);
}

/* One increment: the head's version + 1, and its event, in one commit. */
static enum store_status
tx_increment(struct store_conn *c, void *cls)
{
	const struct worker *w = cls;
	enum store_status rc;
	int64_t v;

	rc = counter_bump(c, w->user_id, DT_SETTING, 2, &v);
	if (rc != STORE_OK)
		return rc;
	return counter_event(c, w->user_id, v);
}

static void *
worker_run(void *p)
{
	struct worker *w = p;
	int i;

	if (store_conn(w->s) == w->main_conn)
		w->shared_conn = 1;
	for (i = 0; i < INCREMENTS; i++)
		if (store_tx(w->s, true, tx_increment, w) != STORE_OK)
			w->failures++;
	return NULL;
}

static void
test_concurrent(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct worker w[THREADS];
	pthread_t th[THREADS];
	struct store_item got, *revs;
	struct store_event *evs;
	struct arena *a;
	size_t n, i;

	assert_ptr_equal(store_conn(fx->s), c);  /* one per thread */
	assert_non_null(a = arena_new());
	new_user(c, &u);
	for (i = 0; i < THREADS; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = fx->s;
		w[i].user_id = u.id;
		w[i].main_conn = c;
		assert_int_equal(pthread_create(&th[i], NULL, worker_run,
		    &w[i]), 0);
	}
	for (i = 0; i < THREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
		assert_int_equal(w[i].shared_conn, 0);
	}

	assert_int_equal(store_call(c, data_head, u.id, DT_SETTING, &got),
	    STORE_OK);
	assert_int_equal(got.version, THREADS * INCREMENTS);
	assert_int_equal(store_call(c, revision_list, u.id, DT_SETTING, a,
	    &revs, &n), STORE_OK);
	assert_int_equal(n, 2);
	/* event ids follow commit order: versions come out 1, 2, 3, ... */
	assert_int_equal(store_call(c, event_list, u.id, 0, 10000, a, &evs,
	    &n), STORE_OK);
	assert_int_equal(n, THREADS * INCREMENTS);
	for (i = 0; i < n; i++) {
		assert_int_equal(evs[i].version, (int64_t)i + 1);
		if (i > 0)
			assert_true(evs[i].id > evs[i - 1].id);
	}
	arena_free(a);
	copy(fx->kept_user, sizeof(fx->kept_user), u.id);
}

/*
 * Event ids follow commit order per user, also when an id is handed out
 * while an earlier transaction of the same user is still open: a reader
 * that polls "ids > the last one I saw" in between must not miss the
 * earlier event when it commits. (A plain sequence fails this: the second
 * writer commits id N+1 while N is uncommitted, the reader moves past N.)
 */
struct order {
	struct store *s;
	const char *user_id;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stage;      /* 1: first event inserted, 2: first may commit */
	bool second_done;
	int64_t first_id, second_id;
	enum store_status first_rc, second_rc;
};

static enum store_status
order_insert(struct store_conn *c, const char *user_id, int64_t *id)
{
	struct store_event ev;
	enum store_status rc;

	memset(&ev, 0, sizeof(ev));
	copy(ev.user_id, sizeof(ev.user_id), user_id);
	copy(ev.type, sizeof(ev.type), "data_updated");
	ev.data_type = DT_HISTORY;
	ev.version = 1;
	ev.created_at = T0;
	rc = store_call(c, event_insert, &ev);
	*id = ev.id;
	return rc;
}

/* Inserts an event, then holds the transaction open until stage 2. */
static enum store_status
tx_order_first(struct store_conn *c, void *cls)
{
	struct order *o = cls;
	enum store_status rc;

	if ((rc = order_insert(c, o->user_id, &o->first_id)) != STORE_OK)
		return rc;
	pthread_mutex_lock(&o->mu);
	if (o->stage < 1)
		o->stage = 1;
	pthread_cond_broadcast(&o->cv);
	while (o->stage < 2)
		pthread_cond_wait(&o->cv, &o->mu);
	pthread_mutex_unlock(&o->mu);
	return STORE_OK;
}

static enum store_status
tx_order_second(struct store_conn *c, void *cls)
{
	struct order *o = cls;

	return order_insert(c, o->user_id, &o->second_id);
}

static void *
order_first_run(void *p)
{
	struct order *o = p;

	o->first_rc = store_tx(o->s, true, tx_order_first, o);
	return NULL;
}

static void *
order_second_run(void *p)
{
	struct order *o = p;

	o->second_rc = store_tx(o->s, true, tx_order_second, o);
	pthread_mutex_lock(&o->mu);
	o->second_done = true;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->mu);
	return NULL;
}

static void
test_event_commit_order(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_event *evs;
	struct order o;
	struct arena *a;
	pthread_t t1, t2;
	struct timespec until;
	int64_t cursor = 0;
	bool seen_first = false, seen_second = false;
	size_t n, i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	memset(&o, 0, sizeof(o));
	o.s = fx->s;
	o.user_id = u.id;
	assert_int_equal(pthread_mutex_init(&o.mu, NULL), 0);
	assert_int_equal(pthread_cond_init(&o.cv, NULL), 0);

	assert_int_equal(pthread_create(&t1, NULL, order_first_run, &o), 0);
	pthread_mutex_lock(&o.mu);
	while (o.stage < 1)
		pthread_cond_wait(&o.cv, &o.mu);
	pthread_mutex_unlock(&o.mu);
	assert_int_equal(pthread_create(&t2, NULL, order_second_run, &o), 0);

	/*
	 * Give the second writer the chance to commit ahead of the first (a
	 * correct store makes it wait for the first, so this bound is only
	 * reached when the store is right), then poll as a client would.
	 */
	assert_int_equal(clock_gettime(CLOCK_REALTIME, &until), 0);
	until.tv_nsec += 300 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&o.mu);
	while (!o.second_done &&
	    pthread_cond_timedwait(&o.cv, &o.mu, &until) == 0)
		;
	pthread_mutex_unlock(&o.mu);
	assert_int_equal(store_call(c, event_list, u.id, cursor, 100, a, &evs,
	    &n), STORE_OK);
	for (i = 0; i < n; i++) {
		seen_second |= evs[i].id == o.second_id && o.second_done;
		cursor = evs[i].id;
	}

	pthread_mutex_lock(&o.mu);
	o.stage = 2;
	pthread_cond_broadcast(&o.cv);
	pthread_mutex_unlock(&o.mu);
	assert_int_equal(pthread_join(t1, NULL), 0);
	assert_int_equal(pthread_join(t2, NULL), 0);
	assert_int_equal(o.first_rc, STORE_OK);
	assert_int_equal(o.second_rc, STORE_OK);
	assert_true(o.second_id > o.first_id);

	/* the poll after both commits finds whatever it had not seen */
	assert_int_equal(store_call(c, event_list, u.id, cursor, 100, a, &evs,
	    &n), STORE_OK);
	for (i = 0; i < n; i++) {
		seen_first |= evs[i].id == o.first_id;
		seen_second |= evs[i].id == o.second_id;
	}
	assert_true(seen_first);
	assert_true(seen_second);
	pthread_cond_destroy(&o.cv);
	pthread_mutex_destroy(&o.mu);
	arena_free(a);
}

/* ---- group commit ---------------------------------------------------------- */

/* Whether writes of this store are grouped (SQLite with GROUP_MAX > 1). */
static bool
grouping(struct fx *fx)
{
	return strcmp(store_backend(fx->s), "sqlite") == 0;
}

struct gwriter {
	struct store *s;
	const char *user_id;
	int thread;
	int i;                          /* the write in progress */
	int failures;
};

/*
 * One write: the shared counter (data head) + 1, and an event tagged with
 * this thread and write, so that each write's effect can be found once.
 */
static enum store_status
tx_group_write(struct store_conn *c, void *cls)
{
	const struct gwriter *w = cls;
	enum store_status rc;
	int64_t v;

	rc = counter_bump(c, w->user_id, DT_HISTORY, 1, &v);
	if (rc != STORE_OK)
		return rc;
	return counter_event(c, w->user_id,
	    (int64_t)w->thread * GROUP_WRITES + w->i + 1);
}

static void *
gwriter_run(void *p)
{
	struct gwriter *w = p;

	for (w->i = 0; w->i < GROUP_WRITES; w->i++)
		if (store_tx(w->s, true, tx_group_write, w) != STORE_OK)
			w->failures++;
	return NULL;
}

/* n writers on s at once, each GROUP_WRITES writes; none may fail. */
static void
gwriters(struct store *s, const char *user_id, size_t n)
{
	struct gwriter w[GROUP_THREADS];
	pthread_t th[GROUP_THREADS];
	size_t i;

	assert_true(n <= GROUP_THREADS);
	for (i = 0; i < n; i++) {
		memset(&w[i], 0, sizeof(w[i]));
		w[i].s = s;
		w[i].user_id = user_id;
		w[i].thread = (int)i;
		assert_int_equal(pthread_create(&th[i], NULL, gwriter_run,
		    &w[i]), 0);
	}
	for (i = 0; i < n; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(w[i].failures, 0);
	}
}

/*
 * Many threads writing at once: every write lands exactly once, the
 * read-modify-write of each sees every earlier one, and (grouped) fewer
 * commits than transactions carried them.
 */
static void
test_group_many(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct store_stats before, after;
	struct store_item head;
	struct store_event *evs;
	struct arena *a;
	int seen[GROUP_THREADS * GROUP_WRITES];
	size_t n, i;

	assert_non_null(a = arena_new());
	new_user(c, &u);
	store_stats(fx->s, &before);
	gwriters(fx->s, u.id, GROUP_THREADS);
	store_stats(fx->s, &after);

	assert_int_equal(store_call(c, data_head, u.id, DT_HISTORY, &head),
	    STORE_OK);
	assert_int_equal(head.version, GROUP_THREADS * GROUP_WRITES);
	assert_int_equal(store_call(c, event_list, u.id, 0, 100000, a, &evs,
	    &n), STORE_OK);
	assert_int_equal(n, GROUP_THREADS * GROUP_WRITES);
	memset(seen, 0, sizeof(seen));
	for (i = 0; i < n; i++) {
		assert_true(evs[i].version >= 1 &&
		    evs[i].version <= GROUP_THREADS * GROUP_WRITES);
		seen[evs[i].version - 1]++;
	}
	for (i = 0; i < GROUP_THREADS * GROUP_WRITES; i++)
		assert_int_equal(seen[i], 1);

	assert_int_equal(after.write_txs - before.write_txs,
	    GROUP_THREADS * GROUP_WRITES);
	assert_int_equal(after.write_queued, 0);
	if (grouping(fx))
		assert_true(after.write_commits - before.write_commits <
		    after.write_txs - before.write_txs);
	else
		assert_int_equal(after.write_commits - before.write_commits,
		    after.write_txs - before.write_txs);
	arena_free(a);
}

/*
 * One group with mixed outcomes. The writer is held inside a first
 * transaction until GROUP_CALLERS more are queued, so that those make one
 * group: a failing member leaves no trace and changes nothing for the
 * others, a busy one is run again, each caller gets its own answer.
 */
struct gmember {
	struct store *s;
	struct store_device d;
	enum store_status result;       /* what the callback answers */
	int busy_first;                 /* calls that answer STORE_BUSY */
	int calls;
	enum store_status got;          /* what store_tx answered */
	/* the holder only */
	pthread_mutex_t *mu;
	pthread_cond_t *cv;
	bool *held, *go;
};

static enum store_status
tx_group_member(struct store_conn *c, void *cls)
{
	struct gmember *m = cls;
	enum store_status rc;

	m->calls++;
	if ((rc = store_call(c, device_insert, &m->d)) != STORE_OK)
		return rc;
	if (m->mu != NULL) {
		pthread_mutex_lock(m->mu);
		*m->held = true;
		pthread_cond_broadcast(m->cv);
		while (!*m->go)
			pthread_cond_wait(m->cv, m->mu);
		pthread_mutex_unlock(m->mu);
	}
	if (m->calls <= m->busy_first)
		return STORE_BUSY;
	return m->result;
}

static void *
gmember_run(void *p)
{
	struct gmember *m = p;

	m->got = store_tx(m->s, true, tx_group_member, m);
	return NULL;
}

/* A first writing transaction (a device of user_id) that holds the writer
 * inside its callback until release_writer(). */
struct holder {
	struct gmember m;
	pthread_t th;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool held, go;
};

static void
hold_writer(struct holder *h, struct store *s, struct store_conn *c,
    const char *user_id)
{
	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->mu, NULL);
	pthread_cond_init(&h->cv, NULL);
	h->m.s = s;
	new_device(c, user_id, T0, &h->m.d);
	uuid_generate(h->m.d.id);
	h->m.result = STORE_OK;
	h->m.mu = &h->mu;
	h->m.cv = &h->cv;
	h->m.held = &h->held;
	h->m.go = &h->go;
	assert_int_equal(pthread_create(&h->th, NULL, gmember_run, &h->m), 0);
	pthread_mutex_lock(&h->mu);
	while (!h->held)
		pthread_cond_wait(&h->cv, &h->mu);
	pthread_mutex_unlock(&h->mu);
}

/* Lets the held transaction go and waits for its caller. */
static void
release_writer(struct holder *h)
{
	pthread_mutex_lock(&h->mu);
	h->go = true;
	pthread_cond_broadcast(&h->cv);
	pthread_mutex_unlock(&h->mu);
	assert_int_equal(pthread_join(h->th, NULL), 0);
	pthread_cond_destroy(&h->cv);
	pthread_mutex_destroy(&h->mu);
}

/* Readiness, not time: waits until n writing transactions are queued. */
static void
wait_queued(struct store *s, uint64_t n)
{
	const struct timespec tick = { 0, 1000000 };
	struct store_stats st;

	for (;;) {
		store_stats(s, &st);
		if (st.write_queued >= n)
			return;
		(void)nanosleep(&tick, NULL);
	}
}

static void
test_group_mixed(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct holder h;
	struct gmember m[GROUP_CALLERS];
	pthread_t th[GROUP_CALLERS];
	struct store_stats before, st;
	struct store_device got;
	static const enum store_status results[GROUP_CALLERS] = {
		STORE_OK, STORE_ABORT, STORE_OK, STORE_NOT_FOUND, STORE_OK,
		STORE_OK
	};
	size_t i;

	if (!grouping(fx))
		skip();
	new_user(c, &u);
	store_stats(fx->s, &before);
	hold_writer(&h, fx->s, c, u.id);
	for (i = 0; i < GROUP_CALLERS; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].s = fx->s;
		m[i].d = h.m.d;
		uuid_generate(m[i].d.id);
		m[i].result = results[i];
		/* the last one is busy once: it runs again, alone */
		m[i].busy_first = i == GROUP_CALLERS - 1 ? 1 : 0;
		assert_int_equal(pthread_create(&th[i], NULL, gmember_run,
		    &m[i]), 0);
	}
	/* every caller is queued behind the held one */
	wait_queued(fx->s, GROUP_CALLERS);
	release_writer(&h);
	for (i = 0; i < GROUP_CALLERS; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);

	assert_int_equal(h.m.got, STORE_OK);
	assert_int_equal(h.m.calls, 1);
	assert_int_equal(store_call(c, device_get, u.id, h.m.d.id, &got),
	    STORE_OK);
	for (i = 0; i < GROUP_CALLERS; i++) {
		assert_int_equal(m[i].got, results[i]);
		assert_int_equal(m[i].calls, 1 + m[i].busy_first);
		assert_int_equal(store_call(c, device_get, u.id, m[i].d.id,
		    &got), results[i] == STORE_OK ? STORE_OK :
		    STORE_NOT_FOUND);
	}
	/*
	 * Commits: the held one alone; the group of GROUP_CALLERS less the
	 * busy member; that member's second round. Failures commit nothing.
	 */
	store_stats(fx->s, &st);
	assert_int_equal(st.write_commits - before.write_commits, 3);
	assert_int_equal(st.write_txs - before.write_txs, 1 + 4);
	assert_int_equal(st.write_queued, 0);
}

/*
 * A failure that saw an earlier member's work is not final until that work
 * commits. In one group: A inserts a device; B refuses (STORE_EXISTS) when
 * A's device is there, else inserts its own; C ends the whole transaction
 * (as an I/O error would) and fails. A and B run again without C; A now
 * refuses (as a client whose precondition no longer holds would), so B
 * finds no device of A's and succeeds: its first refusal was about work
 * that never committed and must not have been its answer.
 */
struct dirty {
	struct store *s;
	const char *user_id;
	struct store_device a, b;
	int role;                       /* 'A', 'B' or 'C' */
	int calls;
	enum store_status got;
};

static enum store_status
tx_dirty(struct store_conn *c, void *cls)
{
	struct dirty *d = cls;
	struct store_device dev;
	enum store_status st;

	d->calls++;
	switch (d->role) {
	case 'A':
		if (d->calls > 1)
			return STORE_ABORT;
		return store_call(c, device_insert, &d->a);
	case 'B':
		st = store_call(c, device_get, d->user_id, d->a.id, &dev);
		if (st == STORE_OK)
			return STORE_EXISTS;
		if (st != STORE_NOT_FOUND)
			return st;
		return store_call(c, device_insert, &d->b);
	default:
		c->ops->rollback(c);
		return STORE_ERROR;
	}
}

static void *
dirty_run(void *p)
{
	struct dirty *d = p;

	d->got = store_tx(d->s, true, tx_dirty, d);
	return NULL;
}

static void
test_group_no_dirty_failure(void **state)
{
	struct fx *fx = *state;
	struct store_conn *c = conn(state);
	struct store_user u;
	struct holder h;
	struct dirty m[3];
	pthread_t th[3];
	struct store_device got, da, db;
	size_t i;

	if (!grouping(fx))
		skip();
	new_user(c, &u);
	hold_writer(&h, fx->s, c, u.id);
	/* A's device and B's, both of the held one's user */
	da = h.m.d;
	uuid_generate(da.id);
	db = h.m.d;
	uuid_generate(db.id);
	/* queued one after the other: the group runs A, B, C in order */
	for (i = 0; i < 3; i++) {
		memset(&m[i], 0, sizeof(m[i]));
		m[i].s = fx->s;
		m[i].user_id = u.id;
		m[i].a = da;
		m[i].b = db;
		m[i].role = "ABC"[i];
		assert_int_equal(pthread_create(&th[i], NULL, dirty_run,
		    &m[i]), 0);
		wait_queued(fx->s, i + 1);
	}
	release_writer(&h);
	for (i = 0; i < 3; i++)
		assert_int_equal(pthread_join(th[i], NULL), 0);

	assert_int_equal(m[2].got, STORE_ERROR);
	assert_int_equal(m[2].calls, 1);
	assert_int_equal(m[0].got, STORE_ABORT);
	assert_int_equal(m[0].calls, 2);
	assert_int_equal(m[1].got, STORE_OK);
	assert_int_equal(m[1].calls, 2);
	assert_int_equal(store_call(c, device_get, u.id, m[0].a.id, &got),
	    STORE_NOT_FOUND);
	assert_int_equal(store_call(c, device_get, u.id, m[1].b.id, &got),
	    STORE_OK);
}

/* WRITE_BATCH_MAX=1: no grouping, one commit per write. */
static void
test_group_off(void **state)
{
	struct fx *fx = *state;
	struct store *s;
	struct store_conn *c;
	struct store_user u;
	struct store_stats st;
	struct store_item head;
	char err[512];

	assert_non_null(s = store_open(fx->url, 1, err, sizeof(err)));
	assert_non_null(c = store_conn(s));
	new_user(c, &u);
	gwriters(s, u.id, 2);
	assert_int_equal(store_call(c, data_head, u.id, DT_HISTORY, &head),
	    STORE_OK);
	assert_int_equal(head.version, 2 * GROUP_WRITES);
	store_stats(s, &st);
	assert_int_equal(st.write_txs, 2 * GROUP_WRITES);
	assert_int_equal(st.write_commits, 2 * GROUP_WRITES);
	store_close(s);

	/* out of range */
	assert_null(store_open(fx->url, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "write batch"));
	assert_null(store_open(fx->url, STORE_WRITE_BATCH_LIMIT + 1, err,
	    sizeof(err)));
}

/* ---- SQLite only: opening ---------------------------------------------------- */

static void
expect_open_error(const char *url, const char *want, const char *never)
{
	struct store *s;
	char err[512];

	err[0] = '\0';
	s = store_open(url, GROUP_MAX, err, sizeof(err));
	assert_null(s);
	if (strstr(err, want) == NULL)
		fail_msg("store_open(%s): '%s' lacks '%s'", url, err, want);
	assert_null(strchr(err, '\n'));
	if (never != NULL)
		assert_null(strstr(err, never));
}

static void
test_open_errors(void **state)
{
	struct fx *fx = *state;
	char url[256], path[200];
	sqlite3 *db;

	if (!fx->sqlite)
		skip();
	expect_open_error("", "DATABASE_URL", NULL);
	expect_open_error("flamingo.db", "DATABASE_URL", NULL);
	expect_open_error("mysql://u:pw@host/db", "unsupported scheme 'mysql'",
	    "pw@");
	/* PostgreSQL URLs and key=value strings reach libpq; a password in
	 * them is never echoed, whether the string is malformed or the server
	 * is unreachable */
	expect_open_error("postgres://admin:hunter2@127.0.0.1:1/x",
	    "postgres: cannot connect", "hunter2");
	expect_open_error("postgresql://admin:hunter2@[::1/x",
	    "not a valid PostgreSQL", "hunter2");
	expect_open_error("host=/nonexistent-dir password=hunter2",
	    "postgres: cannot connect", "hunter2");
	expect_open_error("dbname='x password=hunter2",
	    "not a valid PostgreSQL", "hunter2");
	expect_open_error("sqlite://x.db", "sqlite:PATH", NULL);
	expect_open_error("sqlite:", "needs a path", NULL);
	expect_open_error("sqlite::memory:", "plain file path", NULL);
	expect_open_error("sqlite:/nonexistent-dir/x/y.db", "cannot open",
	    NULL);

	/* a file from a newer program is refused, not "migrated" */
	assert_true(snprintf(path, sizeof(path), "%s/newer.db", fx->dir) > 0);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 999", NULL,
	    NULL, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_close(db), SQLITE_OK);
	assert_true(snprintf(url, sizeof(url), "sqlite:%s", path) > 0);
	expect_open_error(url, "newer", NULL);
}

static void
test_reopen(void **state)
{
	struct fx *fx = *state;
	struct store *second;
	struct store_conn *c;
	struct store_user got;
	char err[512];

	if (!fx->sqlite)
		skip();
	assert_true(fx->kept_user[0] != '\0');
	/* a second opener (another process, say) while the first runs */
	second = store_open(fx->url, GROUP_MAX, err, sizeof(err));
	assert_non_null(second);
	c = store_conn(second);
	assert_non_null(c);
	assert_int_equal(store_call(c, user_by_id, fx->kept_user, &got),
	    STORE_OK);
	store_close(second);

	store_close(fx->s);
	fx->s = store_open(fx->url, GROUP_MAX, err, sizeof(err));
	assert_non_null(fx->s);
	assert_string_equal(store_backend(fx->s), "sqlite");
	c = store_conn(fx->s);
	assert_non_null(c);
	assert_int_equal(store_call(c, user_by_id, fx->kept_user, &got),
	    STORE_OK);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_websess),
		cmocka_unit_test(test_devreq),
		cmocka_unit_test(test_devices),
		cmocka_unit_test(test_sessions_tokens),
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_data),
		cmocka_unit_test(test_audit),
		cmocka_unit_test(test_events),
		cmocka_unit_test(test_rate),
		cmocka_unit_test(test_event_prune),
		cmocka_unit_test(test_event_prune_batches),
		cmocka_unit_test(test_audit_prune),
		cmocka_unit_test(test_prune),
		cmocka_unit_test(test_tx),
		cmocka_unit_test(test_concurrent),
		cmocka_unit_test(test_event_commit_order),
		cmocka_unit_test(test_group_many),
		cmocka_unit_test(test_group_mixed),
		cmocka_unit_test(test_group_no_dirty_failure),
		cmocka_unit_test(test_group_off),
		cmocka_unit_test(test_open_errors),
		cmocka_unit_test(test_reopen),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
