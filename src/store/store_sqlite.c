/*
 * store_sqlite: the SQLite backend of the store (see store.h).
 *
 * One sqlite3 handle per connection, and one connection per thread. Handles
 * are opened in multi-thread mode (SQLITE_OPEN_NOMUTEX): a handle is used by
 * one thread at a time, so SQLite's per-handle mutex would be pure cost.
 *
 * Every statement is prepared once per connection, on first use, and reset
 * after each use; the hot path (token_lookup, data_get) is one cached
 * statement each.
 *
 * Errors: busy/locked map to STORE_BUSY, unique violations to STORE_EXISTS,
 * a missing parent row (foreign key) to STORE_NOT_FOUND, I/O and disk-full
 * to STORE_UNAVAILABLE; anything else is STORE_ERROR. Hard errors are logged
 * in one line naming the statement and SQLite's message, never a bound
 * value.
 */
#include "store.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>
#include <sqlite3.h>

/* Generated from the files in migrations/sqlite/ by scripts/embed-sql. */
extern const char *const store_sqlite_migrations[];

#define SQ_BUSY_TIMEOUT_MS 5000
#define SQ_HOUR_MS (3600LL * 1000)
#define SQ_DAY_MS (24 * SQ_HOUR_MS)
#define SQ_LIST_INIT 16

/* The config table has one column per type, in enum order. */
_Static_assert(DT_HISTORY == 0 && DT_ENVIRONMENT == 1 && DT_SECRET == 2 &&
    DT_COLLECTION == 3 && DT_SETTING == 4 && DT_COUNT == 5,
    "sync_config columns follow enum data_type");

struct sq_backend {
	char *path;
};

enum sq_stmt {
	SQ_BEGIN_READ,
	SQ_BEGIN_WRITE,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_SP_BEGIN,
	SQ_SP_RELEASE,
	SQ_SP_ROLLBACK,
	SQ_GRP_BEGIN,
	SQ_GRP_RELEASE,
	SQ_GRP_ROLLBACK,
	SQ_PING,
	SQ_USER_INSERT,
	SQ_USER_BY_EMAIL,
	SQ_USER_BY_ID,
	SQ_USER_SET_PASSWORD,
	SQ_WS_INSERT,
	SQ_WS_GET,
	SQ_WS_TOUCH,
	SQ_WS_DELETE,
	SQ_WS_DELETE_OTHERS,
	SQ_DR_INSERT,
	SQ_DR_BY_TEMP,
	SQ_DR_BY_CODE,
	SQ_DR_UPDATE,
	SQ_DEV_INSERT,
	SQ_DEV_GET,
	SQ_DEV_LIST,
	SQ_DEV_SET_STATUS,
	SQ_DEV_TOUCH,
	SQ_SESS_INSERT,
	SQ_SESS_REVOKE,
	SQ_SESS_REVOKE_DEVICE,
	SQ_TOK_INSERT,
	SQ_TOK_LOOKUP,
	SQ_TOK_UPDATE,
	SQ_TOK_DELETE,
	SQ_CFG_GET,
	SQ_CFG_PUT,
	SQ_KEY_CURRENT,
	SQ_KEY_INSERT,
	SQ_DATA_HEAD,
	SQ_DATA_LIST,
	SQ_DATA_LIST_BLOB,
	SQ_DATA_GET,
	SQ_DATA_UPSERT,
	SQ_REV_INSERT,
	SQ_REV_PRUNE,
	SQ_REV_LIST,
	SQ_REV_GET,
	SQ_AUDIT_INSERT,
	SQ_AUDIT_LIST,
	SQ_EV_INSERT,
	SQ_EV_LIST,
	SQ_EV_LAST,
	SQ_EV_FLOOR,
	SQ_EV_FLOOR_RAISE,
	SQ_EV_PRUNE,
	SQ_AUDIT_PRUNE,
	SQ_RATE_GET,
	SQ_RATE_PUT,
	SQ_RATE_DELETE,
	SQ_PRUNE_DEVREQ,
	SQ_PRUNE_TOKENS,
	SQ_PRUNE_SESSIONS,
	SQ_PRUNE_WEBSESS,
	SQ_PRUNE_RATE,
	SQ__COUNT
};

#define SQ_DR_COLS "id, temp_hash, user_code, device_name, platform, " \
	"app_version, ip, created_at, expires_at, state, user_id, device_id, " \
	"interval_s, last_poll_at"
#define SQ_DEV_COLS "id, user_id, name, platform, app_version, status, " \
	"created_at, last_seen_at, last_ip"
#define SQ_ITEM_COLS "h.type, h.version, h.key_version, h.size, " \
	"h.updated_at, h.updated_by_device, h.deleted"
#define SQ_REV_COLS "type, version, key_version, size, updated_at, " \
	"updated_by_device, 0"
#define SQ_HEAD_REV_JOIN " FROM data_heads h LEFT JOIN data_revisions r " \
	"ON r.user_id = h.user_id AND r.type = h.type " \
	"AND r.version = h.version "
#define SQ_SESS_LIVE_OLD "expires_at < ?1 OR (revoked_at > 0 AND " \
	"revoked_at < ?1)"

static const struct {
	const char *name; /* for log lines */
	const char *sql;
} sq_sql[SQ__COUNT] = {
	[SQ_BEGIN_READ] = { "begin", "BEGIN" },
	[SQ_BEGIN_WRITE] = { "begin", "BEGIN IMMEDIATE" },
	[SQ_COMMIT] = { "commit", "COMMIT" },
	[SQ_ROLLBACK] = { "rollback", "ROLLBACK" },
	[SQ_SP_BEGIN] = { "savepoint", "SAVEPOINT store_op" },
	[SQ_SP_RELEASE] = { "release", "RELEASE store_op" },
	[SQ_SP_ROLLBACK] = { "rollback_to", "ROLLBACK TO store_op" },
	/* group commit: one per transaction of a group, around the ops' own */
	[SQ_GRP_BEGIN] = { "group_savepoint", "SAVEPOINT store_group" },
	[SQ_GRP_RELEASE] = { "group_release", "RELEASE store_group" },
	[SQ_GRP_ROLLBACK] = { "group_rollback_to",
	    "ROLLBACK TO store_group" },
	/* reads the file header, so it fails when the file is unreachable */
	[SQ_PING] = { "ping", "PRAGMA user_version" },

	[SQ_USER_INSERT] = { "user_insert",
	    "INSERT INTO users (id, email, password_hash, created_at) "
	    "VALUES (?1, ?2, ?3, ?4)" },
	[SQ_USER_BY_EMAIL] = { "user_by_email",
	    "SELECT id, email, password_hash, created_at FROM users "
	    "WHERE email = ?1" },
	[SQ_USER_BY_ID] = { "user_by_id",
	    "SELECT id, email, password_hash, created_at FROM users "
	    "WHERE id = ?1" },
	[SQ_USER_SET_PASSWORD] = { "user_set_password",
	    "UPDATE users SET password_hash = ?2 WHERE id = ?1" },

	[SQ_WS_INSERT] = { "websess_insert",
	    "INSERT INTO web_sessions (hash, user_id, created_at, "
	    "last_used_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)" },
	[SQ_WS_GET] = { "websess_get",
	    "SELECT user_id, created_at, last_used_at, expires_at "
	    "FROM web_sessions WHERE hash = ?1" },
	[SQ_WS_TOUCH] = { "websess_touch",
	    "UPDATE web_sessions SET last_used_at = ?2 WHERE hash = ?1" },
	[SQ_WS_DELETE] = { "websess_delete",
	    "DELETE FROM web_sessions WHERE hash = ?1" },
	[SQ_WS_DELETE_OTHERS] = { "websess_delete_others",
	    "DELETE FROM web_sessions WHERE user_id = ?1 "
	    "AND (?2 IS NULL OR hash <> ?2)" },

	[SQ_DR_INSERT] = { "devreq_insert",
	    "INSERT INTO device_requests (temp_hash, user_code, device_name, "
	    "platform, app_version, ip, created_at, expires_at, state, "
	    "user_id, device_id, interval_s, last_poll_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)" },
	[SQ_DR_BY_TEMP] = { "devreq_by_temp",
	    "SELECT " SQ_DR_COLS " FROM device_requests WHERE temp_hash = ?1" },
	[SQ_DR_BY_CODE] = { "devreq_by_code",
	    "SELECT " SQ_DR_COLS " FROM device_requests WHERE user_code = ?1" },
	[SQ_DR_UPDATE] = { "devreq_update",
	    "UPDATE device_requests SET state = ?2, user_id = ?3, "
	    "device_id = ?4, interval_s = ?5, last_poll_at = ?6 "
	    "WHERE id = ?1" },

	[SQ_DEV_INSERT] = { "device_insert",
	    "INSERT INTO devices (" SQ_DEV_COLS ") "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)" },
	[SQ_DEV_GET] = { "device_get",
	    "SELECT " SQ_DEV_COLS " FROM devices "
	    "WHERE user_id = ?1 AND id = ?2" },
	[SQ_DEV_LIST] = { "device_list",
	    "SELECT " SQ_DEV_COLS " FROM devices WHERE user_id = ?1 "
	    "ORDER BY created_at DESC, rowid DESC" },
	[SQ_DEV_SET_STATUS] = { "device_set_status",
	    "UPDATE devices SET status = ?3 WHERE user_id = ?1 AND id = ?2" },
	[SQ_DEV_TOUCH] = { "device_touch",
	    "UPDATE devices SET last_seen_at = ?2, last_ip = ?3 "
	    "WHERE id = ?1" },

	[SQ_SESS_INSERT] = { "session_insert",
	    "INSERT INTO sessions (user_id, device_id, created_at, "
	    "expires_at, revoked_at) VALUES (?1, ?2, ?3, ?4, ?5)" },
	/* the first revocation time is kept */
	[SQ_SESS_REVOKE] = { "session_revoke",
	    "UPDATE sessions SET revoked_at = CASE WHEN revoked_at = 0 "
	    "THEN ?2 ELSE revoked_at END WHERE id = ?1" },
	[SQ_SESS_REVOKE_DEVICE] = { "session_revoke_device",
	    "UPDATE sessions SET revoked_at = ?2 "
	    "WHERE device_id = ?1 AND revoked_at = 0" },
	[SQ_TOK_INSERT] = { "token_insert",
	    "INSERT INTO tokens (hash, session_id, created_at, used, "
	    "successor, grace_until) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
	[SQ_TOK_LOOKUP] = { "token_lookup",
	    "SELECT t.session_id, t.created_at, t.used, t.successor, "
	    "t.grace_until, "
	    "s.user_id, s.device_id, s.created_at, s.expires_at, s.revoked_at, "
	    "d.id, d.user_id, d.name, d.platform, d.app_version, d.status, "
	    "d.created_at, d.last_seen_at, d.last_ip "
	    "FROM tokens t JOIN sessions s ON s.id = t.session_id "
	    "JOIN devices d ON d.id = s.device_id WHERE t.hash = ?1" },
	[SQ_TOK_UPDATE] = { "token_update",
	    "UPDATE tokens SET used = ?2, successor = ?3, grace_until = ?4 "
	    "WHERE hash = ?1" },
	[SQ_TOK_DELETE] = { "token_delete",
	    "DELETE FROM tokens WHERE hash = ?1" },

	[SQ_CFG_GET] = { "config_get",
	    "SELECT history, environment, secret, collection, setting, "
	    "updated_at FROM sync_config WHERE user_id = ?1" },
	[SQ_CFG_PUT] = { "config_put",
	    "INSERT INTO sync_config (user_id, history, environment, secret, "
	    "collection, setting, updated_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
	    "ON CONFLICT (user_id) DO UPDATE SET history = excluded.history, "
	    "environment = excluded.environment, secret = excluded.secret, "
	    "collection = excluded.collection, setting = excluded.setting, "
	    "updated_at = excluded.updated_at" },

	[SQ_KEY_CURRENT] = { "key_current",
	    "SELECT version, wrapped, kdf, created_at, created_by_device "
	    "FROM keys WHERE user_id = ?1 ORDER BY version DESC LIMIT 1" },
	[SQ_KEY_INSERT] = { "key_insert",
	    "INSERT INTO keys (user_id, version, wrapped, kdf, created_at, "
	    "created_by_device) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },

	[SQ_DATA_HEAD] = { "data_head",
	    "SELECT " SQ_ITEM_COLS " FROM data_heads h "
	    "WHERE h.user_id = ?1 AND h.type = ?2" },
	[SQ_DATA_LIST] = { "data_list",
	    "SELECT " SQ_ITEM_COLS " FROM data_heads h "
	    "WHERE h.user_id = ?1 AND h.deleted = 0" },
	[SQ_DATA_LIST_BLOB] = { "data_list",
	    "SELECT " SQ_ITEM_COLS ", r.blob" SQ_HEAD_REV_JOIN
	    "WHERE h.user_id = ?1 AND h.deleted = 0" },
	[SQ_DATA_GET] = { "data_get",
	    "SELECT " SQ_ITEM_COLS ", r.blob" SQ_HEAD_REV_JOIN
	    "WHERE h.user_id = ?1 AND h.type = ?2 AND h.deleted = 0" },
	[SQ_DATA_UPSERT] = { "data_write",
	    "INSERT INTO data_heads (user_id, type, version, key_version, "
	    "size, updated_at, updated_by_device, deleted) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
	    "ON CONFLICT (user_id, type) DO UPDATE SET "
	    "version = excluded.version, key_version = excluded.key_version, "
	    "size = excluded.size, updated_at = excluded.updated_at, "
	    "updated_by_device = excluded.updated_by_device, "
	    "deleted = excluded.deleted" },
	[SQ_REV_INSERT] = { "data_write",
	    "INSERT INTO data_revisions (user_id, type, version, key_version, "
	    "size, updated_at, updated_by_device, blob) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)" },
	[SQ_REV_PRUNE] = { "data_write",
	    "DELETE FROM data_revisions WHERE user_id = ?1 AND type = ?2 "
	    "AND version NOT IN (SELECT version FROM data_revisions "
	    "WHERE user_id = ?1 AND type = ?2 "
	    "ORDER BY version DESC LIMIT ?3)" },
	[SQ_REV_LIST] = { "revision_list",
	    "SELECT " SQ_REV_COLS " FROM data_revisions "
	    "WHERE user_id = ?1 AND type = ?2 ORDER BY version DESC" },
	[SQ_REV_GET] = { "revision_get",
	    "SELECT " SQ_REV_COLS ", blob FROM data_revisions "
	    "WHERE user_id = ?1 AND type = ?2 AND version = ?3" },

	[SQ_AUDIT_INSERT] = { "audit_insert",
	    "INSERT INTO audit (user_id, event_type, device_id, ip, "
	    "user_agent, metadata, created_at) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	[SQ_AUDIT_LIST] = { "audit_list",
	    "SELECT id, user_id, event_type, device_id, ip, user_agent, "
	    "metadata, created_at FROM audit WHERE user_id = ?1 AND id < ?2 "
	    "ORDER BY id DESC LIMIT ?3" },

	[SQ_EV_INSERT] = { "event_insert",
	    "INSERT INTO events (user_id, type, data_type, version, "
	    "origin_device_id, created_at, device_id) "
	    "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)" },
	[SQ_EV_LIST] = { "event_list",
	    "SELECT id, user_id, type, data_type, version, origin_device_id, "
	    "created_at, device_id FROM events WHERE user_id = ?1 AND id > ?2 "
	    "ORDER BY id LIMIT ?3" },
	[SQ_EV_LAST] = { "event_last_id",
	    "SELECT id FROM events WHERE user_id = ?1 "
	    "ORDER BY id DESC LIMIT 1" },
	[SQ_EV_FLOOR] = { "event_floor",
	    "SELECT pruned_through FROM event_floors WHERE user_id = ?1" },
	/* a batch: the oldest `limit` events created before the cut (the
	 * write lock taken by the first statement keeps the set fixed) */
#define SQ_EV_BATCH "SELECT id FROM events WHERE created_at < ?1 " \
	"ORDER BY created_at, id LIMIT ?2"
	[SQ_EV_FLOOR_RAISE] = { "event_prune",
	    "INSERT INTO event_floors (user_id, pruned_through) "
	    "SELECT user_id, MAX(id) FROM events WHERE id IN (" SQ_EV_BATCH
	    ") GROUP BY user_id ORDER BY user_id "
	    "ON CONFLICT (user_id) DO UPDATE SET pruned_through = "
	    "MAX(pruned_through, excluded.pruned_through)" },
	[SQ_EV_PRUNE] = { "event_prune",
	    "DELETE FROM events WHERE id IN (" SQ_EV_BATCH ")" },
	[SQ_AUDIT_PRUNE] = { "audit_prune",
	    "DELETE FROM audit WHERE id IN (SELECT id FROM audit "
	    "WHERE created_at < ?1 ORDER BY created_at, id LIMIT ?2)" },

	[SQ_RATE_GET] = { "rate_get",
	    "SELECT window_start, count, blocked_until FROM rate_limits "
	    "WHERE key = ?1" },
	[SQ_RATE_PUT] = { "rate_put",
	    "INSERT INTO rate_limits (key, window_start, count, "
	    "blocked_until, expires_at) VALUES (?1, ?2, ?3, ?4, ?5) "
	    "ON CONFLICT (key) DO UPDATE SET "
	    "window_start = excluded.window_start, count = excluded.count, "
	    "blocked_until = excluded.blocked_until, "
	    "expires_at = excluded.expires_at" },
	[SQ_RATE_DELETE] = { "rate_delete",
	    "DELETE FROM rate_limits WHERE key = ?1" },

	[SQ_PRUNE_DEVREQ] = { "prune",
	    "DELETE FROM device_requests WHERE expires_at < ?1" },
	[SQ_PRUNE_TOKENS] = { "prune",
	    "DELETE FROM tokens WHERE session_id IN (SELECT id FROM sessions "
	    "WHERE " SQ_SESS_LIVE_OLD ")" },
	[SQ_PRUNE_SESSIONS] = { "prune",
	    "DELETE FROM sessions WHERE " SQ_SESS_LIVE_OLD },
	[SQ_PRUNE_WEBSESS] = { "prune",
	    "DELETE FROM web_sessions WHERE expires_at < ?1" },
	[SQ_PRUNE_RATE] = { "prune",
	    "DELETE FROM rate_limits WHERE expires_at < ?1" },
};

struct sq_conn {
	struct store_conn base; /* first: store.h casts between the two */
	sqlite3 *db;
	sqlite3_stmt *stmt[SQ__COUNT];
};

static const struct store_ops sq_ops;

static struct sq_conn *
sq(struct store_conn *c)
{
	return (struct sq_conn *)c;
}

static void
sq_log(const char *what, const char *msg, int rc)
{
	fprintf(stderr, "store: sqlite: %s: %s (%d)\n", what, msg, rc);
}

static void __attribute__((format(printf, 3, 4)))
sq_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	/* a truncated message is still one useful line */
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* Maps an SQLite result code of statement `id` to a store status. */
static enum store_status
sq_status(struct sq_conn *q, enum sq_stmt id, int rc)
{
	switch (rc & 0xff) {
	case SQLITE_OK:
	case SQLITE_ROW:
	case SQLITE_DONE:
		return STORE_OK;
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return STORE_BUSY;
	case SQLITE_CONSTRAINT:
		if (rc == SQLITE_CONSTRAINT_UNIQUE ||
		    rc == SQLITE_CONSTRAINT_PRIMARYKEY)
			return STORE_EXISTS;
		if (rc == SQLITE_CONSTRAINT_FOREIGNKEY)
			return STORE_NOT_FOUND; /* the parent row is missing */
		break;
	case SQLITE_IOERR:
	case SQLITE_FULL:
	case SQLITE_CANTOPEN:
		sq_log(sq_sql[id].name, sqlite3_errmsg(q->db), rc);
		return STORE_UNAVAILABLE;
	default:
		break;
	}
	sq_log(sq_sql[id].name, sqlite3_errmsg(q->db), rc);
	return STORE_ERROR;
}

/* The cached statement `id` of q, prepared on first use. */
static enum store_status
sq_prep(struct sq_conn *q, enum sq_stmt id, sqlite3_stmt **out)
{
	int rc;

	*out = q->stmt[id];
	if (*out != NULL)
		return STORE_OK;
	rc = sqlite3_prepare_v3(q->db, sq_sql[id].sql, -1,
	    SQLITE_PREPARE_PERSISTENT, &q->stmt[id], NULL);
	if (rc != SQLITE_OK) {
		sqlite3_finalize(q->stmt[id]);
		q->stmt[id] = NULL;
		return sq_status(q, id, rc);
	}
	*out = q->stmt[id];
	return STORE_OK;
}

/* Makes a used statement ready for its next use. */
static void
sq_done(sqlite3_stmt *st)
{
	/* reset repeats the step's error, which was handled already */
	(void)sqlite3_reset(st);
	(void)sqlite3_clear_bindings(st);
}

/* The result of a run of binds (their codes or'ed together). */
static enum store_status
sq_bound(enum sq_stmt id, int e)
{
	if (e == SQLITE_OK)
		return STORE_OK;
	sq_log(sq_sql[id].name, "cannot bind a parameter (value too long, "
	    "unterminated or out of memory)", e);
	return STORE_ERROR;
}

/* STORE_OK with a row, STORE_NOT_FOUND without, else the error. */
static enum store_status
sq_step(struct sq_conn *q, enum sq_stmt id, sqlite3_stmt *st)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		return STORE_OK;
	if (rc == SQLITE_DONE)
		return STORE_NOT_FOUND;
	return sq_status(q, id, rc);
}

/* Runs a statement for its effect; a row it may return is ignored. */
static enum store_status
sq_exec(struct sq_conn *q, enum sq_stmt id, sqlite3_stmt *st)
{
	int rc;

	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW || rc == SQLITE_DONE)
		return STORE_OK;
	return sq_status(q, id, rc);
}

/* As sq_exec, and STORE_NOT_FOUND when no row changed. */
static enum store_status
sq_exec_changed(struct sq_conn *q, enum sq_stmt id, sqlite3_stmt *st)
{
	enum store_status rc;

	rc = sq_exec(q, id, st);
	if (rc == STORE_OK && sqlite3_changes(q->db) == 0)
		rc = STORE_NOT_FOUND;
	return rc;
}

/* Prepares, runs and resets a statement without parameters. */
static enum store_status
sq_run(struct sq_conn *q, enum sq_stmt id)
{
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	rc = sq_exec(q, id, st);
	sq_done(st);
	return rc;
}

/* ---- binding ------------------------------------------------------------ */

/*
 * A string of at most cap - 1 bytes (a field of a record, or a bounded
 * argument); longer or unterminated is an error, never a silent cut.
 * NULL binds NULL.
 */
static int
bind_str(sqlite3_stmt *st, int i, const char *s, size_t cap)
{
	size_t n;

	if (s == NULL)
		return sqlite3_bind_null(st, i);
	n = strnlen(s, cap);
	if (n >= cap)
		return SQLITE_TOOBIG;
	return sqlite3_bind_text(st, i, s, (int)n, SQLITE_STATIC);
}

/* As bind_str, with "" bound as NULL (optional references). */
static int
bind_opt(sqlite3_stmt *st, int i, const char *s, size_t cap)
{
	if (s == NULL || s[0] == '\0')
		return sqlite3_bind_null(st, i);
	return bind_str(st, i, s, cap);
}

/* A lookup key: any length binds, a too-long one just matches nothing. */
static int
bind_key(sqlite3_stmt *st, int i, const char *s)
{
	if (s == NULL)
		return sqlite3_bind_null(st, i);
	return sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
}

static int
bind_blob(sqlite3_stmt *st, int i, const void *p, size_t n)
{
	/* a NULL pointer would bind SQL NULL, not an empty blob */
	if (n == 0)
		return sqlite3_bind_zeroblob(st, i, 0);
	if (p == NULL)
		return SQLITE_MISUSE;
	if (n > INT_MAX)
		return SQLITE_TOOBIG;
	return sqlite3_bind_blob(st, i, p, (int)n, SQLITE_STATIC);
}

static int
bind_hash(sqlite3_stmt *st, int i, const uint8_t *h)
{
	return bind_blob(st, i, h, TOKEN_HASH_LEN);
}

/* A data type as its stored name. */
static int
bind_type(sqlite3_stmt *st, int i, int type)
{
	const char *name;

	if ((name = datatype_name(type)) == NULL)
		return SQLITE_RANGE;
	return sqlite3_bind_text(st, i, name, -1, SQLITE_STATIC);
}

/* ---- reading columns ------------------------------------------------------ */

/* Copies a text column into dst (capacity cap); NULL reads as "". */
static int
col_str(sqlite3_stmt *st, int i, char *dst, size_t cap)
{
	const unsigned char *p;
	int n;

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		dst[0] = '\0';
		return 0;
	}
	if ((p = sqlite3_column_text(st, i)) == NULL)
		return -1;              /* out of memory */
	n = sqlite3_column_bytes(st, i);
	if (n < 0 || (size_t)n >= cap)
		return -1;              /* stored value longer than the field */
	memcpy(dst, p, (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* A text column copied into the arena; NULL stays NULL. */
static int
col_astr(sqlite3_stmt *st, int i, struct arena *a, char **out)
{
	const unsigned char *p;
	int n;

	*out = NULL;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return 0;
	if ((p = sqlite3_column_text(st, i)) == NULL)
		return -1;
	n = sqlite3_column_bytes(st, i);
	if (n < 0 || (*out = arena_memdup(a, p, (size_t)n)) == NULL)
		return -1;
	return 0;
}

/* A blob column copied into the arena (never NULL, even when empty). */
static int
col_ablob(sqlite3_stmt *st, int i, struct arena *a, unsigned char **out,
    size_t *len)
{
	const void *p;
	int n;

	*out = NULL;
	*len = 0;
	if (sqlite3_column_type(st, i) == SQLITE_NULL)
		return -1;
	p = sqlite3_column_blob(st, i);
	n = sqlite3_column_bytes(st, i);
	if (n < 0 || (p == NULL && n > 0))
		return -1;
	/* arena_memdup adds a NUL, so an empty blob is a valid pointer */
	if ((*out = arena_memdup(a, n > 0 ? p : "", (size_t)n)) == NULL)
		return -1;
	*len = (size_t)n;
	return 0;
}

/* A 32-byte hash column; false for NULL. */
static int
col_hash(sqlite3_stmt *st, int i, uint8_t *dst, bool *present)
{
	const void *p;

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		memset(dst, 0, TOKEN_HASH_LEN);
		if (present != NULL)
			*present = false;
		return present != NULL ? 0 : -1;
	}
	p = sqlite3_column_blob(st, i);
	if (p == NULL || sqlite3_column_bytes(st, i) != TOKEN_HASH_LEN)
		return -1;
	memcpy(dst, p, TOKEN_HASH_LEN);
	if (present != NULL)
		*present = true;
	return 0;
}

static int
col_int(sqlite3_stmt *st, int i, int *out)
{
	sqlite3_int64 v;

	v = sqlite3_column_int64(st, i);
	if (v < INT_MIN || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/* A data type name column; NULL reads as -1 when allowed. */
static int
col_type(sqlite3_stmt *st, int i, int *out, bool nullable)
{
	const unsigned char *p;

	if (sqlite3_column_type(st, i) == SQLITE_NULL) {
		*out = -1;
		return nullable ? 0 : -1;
	}
	if ((p = sqlite3_column_text(st, i)) == NULL)
		return -1;
	*out = datatype_parse((const char *)p);
	return *out < 0 ? -1 : 0;
}

/* The outcome of a run of column reads (or'ed together). */
static enum store_status
sq_read(enum sq_stmt id, int e)
{
	if (e == 0)
		return STORE_OK;
	sq_log(sq_sql[id].name, "stored value does not fit its field, or out "
	    "of memory", 0);
	return STORE_ERROR;
}

/* Room for one more element of a list growing in the arena. */
static void *
sq_grow(struct arena *a, void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	void *p;

	if (n < *cap)
		return arr;
	ncap = *cap > 0 ? *cap * 2 : SQ_LIST_INIT;
	if (ncap < *cap || ncap > SIZE_MAX / size)
		return NULL;
	if ((p = arena_alloc(a, ncap * size)) == NULL)
		return NULL;
	if (n > 0)
		memcpy(p, arr, n * size);
	*cap = ncap;
	return p;
}

/*
 * Length of the longest prefix of s of at most max bytes that does not end
 * inside a UTF-8 sequence (a cut sequence would make the text invalid).
 */
static size_t
utf8_prefix(const char *s, size_t max)
{
	size_t n;

	n = strnlen(s, max + 1);
	if (n <= max)
		return n;
	n = max;
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/* ---- savepoints: one op's several statements as one unit --------------- */

/*
 * Starts a savepoint; inside a transaction it nests, outside it is the
 * transaction. *outer tells sq_sp_end which of the two it was.
 */
static enum store_status
sq_sp_begin(struct sq_conn *q, bool *outer)
{
	*outer = sqlite3_get_autocommit(q->db) != 0;
	return sq_run(q, SQ_SP_BEGIN);
}

static enum store_status
sq_sp_end(struct sq_conn *q, bool outer, enum store_status rc)
{
	if (rc == STORE_OK) {
		rc = sq_run(q, SQ_SP_RELEASE);
		if (rc == STORE_OK)
			return rc;
	}
	/* an error may already have rolled the whole transaction back */
	if (sqlite3_get_autocommit(q->db))
		return rc;
	if (outer) {
		(void)sq_run(q, SQ_ROLLBACK);
	} else {
		(void)sq_run(q, SQ_SP_ROLLBACK);
		(void)sq_run(q, SQ_SP_RELEASE);
	}
	return rc;
}

/* ---- connections ------------------------------------------------------- */

/* The first column of the first row of a PRAGMA, as text. */
static int
sq_pragma(sqlite3 *db, const char *sql, char *out, size_t cap)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *p;
	int rc;

	out[0] = '\0';
	rc = sqlite3_prepare_v2(db, sql, -1, &st, NULL);
	if (rc != SQLITE_OK)
		goto done;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		rc = SQLITE_OK;
		p = sqlite3_column_text(st, 0);
		if (p != NULL && strlen((const char *)p) < cap)
			memcpy(out, p, strlen((const char *)p) + 1);
	} else if (rc == SQLITE_DONE) {
		rc = SQLITE_OK;
	}
done:
	sqlite3_finalize(st);
	return rc;
}

static void
sq_conn_free(struct sq_conn *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < SQ__COUNT; i++)
		sqlite3_finalize(q->stmt[i]);
	/* every statement is finalized, so close cannot be deferred */
	if (sqlite3_close(q->db) != SQLITE_OK)
		sq_log("close", sqlite3_errmsg(q->db), 0);
	free(q);
}

/*
 * Opens a connection on the file and sets what every connection needs:
 * busy timeout, WAL, synchronous=FULL (a commit is durable before it is
 * acknowledged), foreign keys, and SQLite's hardening switches.
 */
static enum store_status
sq_connect(const struct sq_backend *b, struct sq_conn **out, char *err,
    size_t errlen)
{
	static const struct {
		const char *set;
		const char *get;
		const char *want;
	} pragmas[] = {
		{ "PRAGMA journal_mode = WAL", NULL, "wal" },
		{ "PRAGMA synchronous = FULL", "PRAGMA synchronous", "2" },
		{ "PRAGMA foreign_keys = ON", "PRAGMA foreign_keys", "1" },
		{ "PRAGMA trusted_schema = OFF", NULL, NULL },
	};
	struct sq_conn *q;
	char val[16];
	size_t i;
	int rc;
	enum store_status st = STORE_ERROR;

	*out = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		sq_err(err, errlen, "sqlite: out of memory");
		return STORE_ERROR;
	}
	q->base.ops = &sq_ops;
	rc = sqlite3_open_v2(b->path, &q->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		sq_err(err, errlen, "sqlite: cannot open %s: %s", b->path,
		    q->db != NULL ? sqlite3_errmsg(q->db) : sqlite3_errstr(rc));
		st = STORE_UNAVAILABLE;
		goto bad;
	}
	/* the busy timeout first: the pragmas below may wait for a lock */
	if ((rc = sqlite3_extended_result_codes(q->db, 1)) != SQLITE_OK ||
	    (rc = sqlite3_busy_timeout(q->db, SQ_BUSY_TIMEOUT_MS)) !=
	    SQLITE_OK ||
	    (rc = sqlite3_db_config(q->db, SQLITE_DBCONFIG_DEFENSIVE, 1,
	    (int *)NULL)) != SQLITE_OK) {
		sq_err(err, errlen, "sqlite: %s: cannot configure: %s",
		    b->path, sqlite3_errmsg(q->db));
		goto bad;
	}
	for (i = 0; i < sizeof(pragmas) / sizeof(pragmas[0]); i++) {
		rc = sq_pragma(q->db, pragmas[i].set, val, sizeof(val));
		if (rc == SQLITE_OK && pragmas[i].get != NULL)
			rc = sq_pragma(q->db, pragmas[i].get, val,
			    sizeof(val));
		if (rc != SQLITE_OK) {
			sq_err(err, errlen, "sqlite: %s: %s: %s", b->path,
			    pragmas[i].set, sqlite3_errmsg(q->db));
			if ((rc & 0xff) == SQLITE_BUSY ||
			    (rc & 0xff) == SQLITE_LOCKED)
				st = STORE_BUSY;
			goto bad;
		}
		if (pragmas[i].want != NULL &&
		    strcmp(val, pragmas[i].want) != 0) {
			sq_err(err, errlen, "sqlite: %s: %s did not take "
			    "effect (got '%s')", b->path, pragmas[i].set, val);
			goto bad;
		}
	}
	*out = q;
	return STORE_OK;
bad:
	sq_conn_free(q);
	return st;
}

static enum store_status
sq_conn_open(void *cls, struct store_conn **out)
{
	struct sq_conn *q;
	char err[512];
	enum store_status rc;

	*out = NULL;
	rc = sq_connect(cls, &q, err, sizeof(err));
	if (rc != STORE_OK) {
		fprintf(stderr, "store: %s\n", err);
		return rc;
	}
	*out = &q->base;
	return STORE_OK;
}

static void
sq_conn_close(struct store_conn *c)
{
	if (c != NULL)
		sq_conn_free(sq(c));
}

static void
sq_close(void *cls)
{
	struct sq_backend *b = cls;

	if (b == NULL)
		return;
	free(b->path);
	free(b);
}

static enum store_status
sq_ping(struct store_conn *c)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, SQ_PING, &st)) != STORE_OK)
		return rc;
	rc = sq_exec(q, SQ_PING, st);
	sq_done(st);
	return rc;
}

/* ---- transactions --------------------------------------------------------- */

static enum store_status
sq_begin(struct store_conn *c, bool write)
{
	struct sq_conn *q = sq(c);

	if (!sqlite3_get_autocommit(q->db)) {
		sq_log("begin", "a transaction is already open", 0);
		return STORE_ERROR;
	}
	return sq_run(q, write ? SQ_BEGIN_WRITE : SQ_BEGIN_READ);
}

static enum store_status
sq_commit(struct store_conn *c)
{
	return sq_run(sq(c), SQ_COMMIT);
}

static void
sq_rollback(struct store_conn *c)
{
	struct sq_conn *q = sq(c);

	/* some errors end the transaction by themselves */
	if (sqlite3_get_autocommit(q->db))
		return;
	(void)sq_run(q, SQ_ROLLBACK);
}

/*
 * Group commit (see store.c): one caller's transaction inside the writer's,
 * as the savepoint store_group. Ops nest their own store_op savepoints
 * inside it.
 */
static enum store_status
sq_group_sp_begin(struct store_conn *c)
{
	struct sq_conn *q = sq(c);

	/* outside a transaction the savepoint would be one, committed alone */
	if (sqlite3_get_autocommit(q->db)) {
		sq_log("group_savepoint", "no transaction is open", 0);
		return STORE_ERROR;
	}
	return sq_run(q, SQ_GRP_BEGIN);
}

static enum store_status
sq_group_sp_end(struct store_conn *c, bool keep)
{
	struct sq_conn *q = sq(c);
	enum store_status rc;

	/* some errors (I/O, disk full) roll the whole transaction back */
	if (sqlite3_get_autocommit(q->db)) {
		sq_log("group_release", "the transaction ended under a "
		    "callback", 0);
		return STORE_ERROR;
	}
	if (keep) {
		rc = sq_run(q, SQ_GRP_RELEASE);
	} else {
		rc = sq_run(q, SQ_GRP_ROLLBACK);
		if (rc == STORE_OK)
			rc = sq_run(q, SQ_GRP_RELEASE);
	}
	/* a savepoint that cannot end leaves the group in doubt: end it all */
	if (rc != STORE_OK)
		sq_rollback(c);
	return rc;
}

/* ---- users ------------------------------------------------------------------ */

static enum store_status
read_user(enum sq_stmt id, sqlite3_stmt *st, struct store_user *u)
{
	int e = 0;

	e |= col_str(st, 0, u->id, sizeof(u->id));
	e |= col_str(st, 1, u->email, sizeof(u->email));
	e |= col_str(st, 2, u->password_hash, sizeof(u->password_hash));
	u->created_at = sqlite3_column_int64(st, 3);
	return sq_read(id, e);
}

static enum store_status
sq_user_insert(struct store_conn *c, const struct store_user *u)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_USER_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, u->id, sizeof(u->id));
	e |= bind_str(st, 2, u->email, sizeof(u->email));
	e |= bind_str(st, 3, u->password_hash, sizeof(u->password_hash));
	e |= sqlite3_bind_int64(st, 4, u->created_at);
	if ((rc = sq_bound(SQ_USER_INSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_USER_INSERT, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_user_get(struct sq_conn *q, enum sq_stmt id, const char *key,
    struct store_user *out)
{
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(id, bind_key(st, 1, key))) == STORE_OK &&
	    (rc = sq_step(q, id, st)) == STORE_OK)
		rc = read_user(id, st, out);
	sq_done(st);
	return rc;
}

static enum store_status
sq_user_by_email(struct store_conn *c, const char *email,
    struct store_user *out)
{
	return sq_user_get(sq(c), SQ_USER_BY_EMAIL, email, out);
}

static enum store_status
sq_user_by_id(struct store_conn *c, const char *id, struct store_user *out)
{
	return sq_user_get(sq(c), SQ_USER_BY_ID, id, out);
}

static enum store_status
sq_user_set_password(struct store_conn *c, const char *id,
    const char *password_hash)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_USER_SET_PASSWORD, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, id);
	e |= bind_str(st, 2, password_hash, STORE_PWHASH_MAX + 1);
	if ((rc = sq_bound(SQ_USER_SET_PASSWORD, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_USER_SET_PASSWORD, st);
	sq_done(st);
	return rc;
}

/* ---- web sessions ------------------------------------------------------- */

static enum store_status
sq_websess_insert(struct store_conn *c, const struct store_websess *s)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_WS_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_hash(st, 1, s->hash);
	e |= bind_str(st, 2, s->user_id, sizeof(s->user_id));
	e |= sqlite3_bind_int64(st, 3, s->created_at);
	e |= sqlite3_bind_int64(st, 4, s->last_used_at);
	e |= sqlite3_bind_int64(st, 5, s->expires_at);
	if ((rc = sq_bound(SQ_WS_INSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_WS_INSERT, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_websess_get(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_websess *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, SQ_WS_GET, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_WS_GET, bind_hash(st, 1, hash))) == STORE_OK &&
	    (rc = sq_step(q, SQ_WS_GET, st)) == STORE_OK) {
		memcpy(out->hash, hash, TOKEN_HASH_LEN);
		rc = sq_read(SQ_WS_GET, col_str(st, 0, out->user_id,
		    sizeof(out->user_id)));
		out->created_at = sqlite3_column_int64(st, 1);
		out->last_used_at = sqlite3_column_int64(st, 2);
		out->expires_at = sqlite3_column_int64(st, 3);
	}
	sq_done(st);
	return rc;
}

static enum store_status
sq_websess_touch(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    int64_t now)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_WS_TOUCH, &st)) != STORE_OK)
		return rc;
	e |= bind_hash(st, 1, hash);
	e |= sqlite3_bind_int64(st, 2, now);
	if ((rc = sq_bound(SQ_WS_TOUCH, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_WS_TOUCH, st);
	sq_done(st);
	return rc;
}

/* Runs a statement keyed by one hash; STORE_NOT_FOUND when nothing changed. */
static enum store_status
sq_by_hash(struct sq_conn *q, enum sq_stmt id, const uint8_t *hash)
{
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(id, bind_hash(st, 1, hash))) == STORE_OK)
		rc = sq_exec_changed(q, id, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_websess_delete(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN])
{
	return sq_by_hash(sq(c), SQ_WS_DELETE, hash);
}

static enum store_status
sq_websess_delete_others(struct store_conn *c, const char *user_id,
    const uint8_t *keep)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_WS_DELETE_OTHERS, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= keep != NULL ? bind_hash(st, 2, keep) : sqlite3_bind_null(st, 2);
	if ((rc = sq_bound(SQ_WS_DELETE_OTHERS, e)) == STORE_OK)
		rc = sq_exec(q, SQ_WS_DELETE_OTHERS, st);
	sq_done(st);
	return rc;
}

/* ---- device requests -------------------------------------------------------- */

static enum store_status
read_devreq(sqlite3_stmt *st, struct store_devreq *r)
{
	int e = 0;

	r->id = sqlite3_column_int64(st, 0);
	e |= col_hash(st, 1, r->temp_hash, NULL);
	e |= col_str(st, 2, r->user_code, sizeof(r->user_code));
	e |= col_str(st, 3, r->device_name, sizeof(r->device_name));
	e |= col_str(st, 4, r->platform, sizeof(r->platform));
	e |= col_str(st, 5, r->app_version, sizeof(r->app_version));
	e |= col_str(st, 6, r->ip, sizeof(r->ip));
	r->created_at = sqlite3_column_int64(st, 7);
	r->expires_at = sqlite3_column_int64(st, 8);
	e |= col_int(st, 9, &r->state);
	e |= col_str(st, 10, r->user_id, sizeof(r->user_id));
	e |= col_str(st, 11, r->device_id, sizeof(r->device_id));
	e |= col_int(st, 12, &r->interval_s);
	r->last_poll_at = sqlite3_column_int64(st, 13);
	return sq_read(SQ_DR_BY_TEMP, e);
}

static enum store_status
sq_devreq_insert(struct store_conn *c, struct store_devreq *r)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DR_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_hash(st, 1, r->temp_hash);
	e |= bind_str(st, 2, r->user_code, sizeof(r->user_code));
	e |= bind_str(st, 3, r->device_name, sizeof(r->device_name));
	e |= bind_str(st, 4, r->platform, sizeof(r->platform));
	e |= bind_str(st, 5, r->app_version, sizeof(r->app_version));
	e |= bind_str(st, 6, r->ip, sizeof(r->ip));
	e |= sqlite3_bind_int64(st, 7, r->created_at);
	e |= sqlite3_bind_int64(st, 8, r->expires_at);
	e |= sqlite3_bind_int(st, 9, r->state);
	e |= bind_opt(st, 10, r->user_id, sizeof(r->user_id));
	e |= bind_opt(st, 11, r->device_id, sizeof(r->device_id));
	e |= sqlite3_bind_int(st, 12, r->interval_s);
	e |= sqlite3_bind_int64(st, 13, r->last_poll_at);
	if ((rc = sq_bound(SQ_DR_INSERT, e)) == STORE_OK &&
	    (rc = sq_exec(q, SQ_DR_INSERT, st)) == STORE_OK)
		r->id = sqlite3_last_insert_rowid(q->db);
	sq_done(st);
	return rc;
}

static enum store_status
sq_devreq_get(struct sq_conn *q, enum sq_stmt id, int e, sqlite3_stmt *st,
    struct store_devreq *out)
{
	enum store_status rc;

	if ((rc = sq_bound(id, e)) == STORE_OK &&
	    (rc = sq_step(q, id, st)) == STORE_OK)
		rc = read_devreq(st, out);
	sq_done(st);
	return rc;
}

static enum store_status
sq_devreq_by_temp(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_devreq *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, SQ_DR_BY_TEMP, &st)) != STORE_OK)
		return rc;
	return sq_devreq_get(q, SQ_DR_BY_TEMP, bind_hash(st, 1, hash), st,
	    out);
}

static enum store_status
sq_devreq_by_code(struct store_conn *c, const char *user_code,
    struct store_devreq *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, SQ_DR_BY_CODE, &st)) != STORE_OK)
		return rc;
	return sq_devreq_get(q, SQ_DR_BY_CODE, bind_key(st, 1, user_code),
	    st, out);
}

static enum store_status
sq_devreq_update(struct store_conn *c, const struct store_devreq *r)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DR_UPDATE, &st)) != STORE_OK)
		return rc;
	e |= sqlite3_bind_int64(st, 1, r->id);
	e |= sqlite3_bind_int(st, 2, r->state);
	e |= bind_opt(st, 3, r->user_id, sizeof(r->user_id));
	e |= bind_opt(st, 4, r->device_id, sizeof(r->device_id));
	e |= sqlite3_bind_int(st, 5, r->interval_s);
	e |= sqlite3_bind_int64(st, 6, r->last_poll_at);
	if ((rc = sq_bound(SQ_DR_UPDATE, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_DR_UPDATE, st);
	sq_done(st);
	return rc;
}

/* ---- devices ------------------------------------------------------------ */

/* Reads the SQ_DEV_COLS starting at column i. */
static int
read_device(sqlite3_stmt *st, int i, struct store_device *d)
{
	int e = 0;

	e |= col_str(st, i, d->id, sizeof(d->id));
	e |= col_str(st, i + 1, d->user_id, sizeof(d->user_id));
	e |= col_str(st, i + 2, d->name, sizeof(d->name));
	e |= col_str(st, i + 3, d->platform, sizeof(d->platform));
	e |= col_str(st, i + 4, d->app_version, sizeof(d->app_version));
	e |= col_int(st, i + 5, &d->status);
	d->created_at = sqlite3_column_int64(st, i + 6);
	d->last_seen_at = sqlite3_column_int64(st, i + 7);
	e |= col_str(st, i + 8, d->last_ip, sizeof(d->last_ip));
	return e;
}

static enum store_status
sq_device_insert(struct store_conn *c, const struct store_device *d)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DEV_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, d->id, sizeof(d->id));
	e |= bind_str(st, 2, d->user_id, sizeof(d->user_id));
	e |= bind_str(st, 3, d->name, sizeof(d->name));
	e |= bind_str(st, 4, d->platform, sizeof(d->platform));
	e |= bind_str(st, 5, d->app_version, sizeof(d->app_version));
	e |= sqlite3_bind_int(st, 6, d->status);
	e |= sqlite3_bind_int64(st, 7, d->created_at);
	e |= sqlite3_bind_int64(st, 8, d->last_seen_at);
	e |= bind_str(st, 9, d->last_ip, sizeof(d->last_ip));
	if ((rc = sq_bound(SQ_DEV_INSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_DEV_INSERT, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_device_get(struct store_conn *c, const char *user_id, const char *id,
    struct store_device *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DEV_GET, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_key(st, 2, id);
	if ((rc = sq_bound(SQ_DEV_GET, e)) == STORE_OK &&
	    (rc = sq_step(q, SQ_DEV_GET, st)) == STORE_OK)
		rc = sq_read(SQ_DEV_GET, read_device(st, 0, out));
	sq_done(st);
	return rc;
}

static enum store_status
sq_device_list(struct store_conn *c, const char *user_id, struct arena *a,
    struct store_device **out, size_t *n)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	struct store_device *v = NULL;
	size_t cap = 0, len = 0;
	enum store_status rc;

	*out = NULL;
	*n = 0;
	if ((rc = sq_prep(q, SQ_DEV_LIST, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_DEV_LIST, bind_key(st, 1, user_id))) !=
	    STORE_OK)
		goto done;
	while ((rc = sq_step(q, SQ_DEV_LIST, st)) == STORE_OK) {
		if ((v = sq_grow(a, v, &cap, len, sizeof(*v))) == NULL) {
			rc = sq_read(SQ_DEV_LIST, -1);
			goto done;
		}
		if ((rc = sq_read(SQ_DEV_LIST, read_device(st, 0,
		    &v[len]))) != STORE_OK)
			goto done;
		len++;
	}
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;
		*out = v;
		*n = len;
	}
done:
	sq_done(st);
	return rc;
}

static enum store_status
sq_device_set_status(struct store_conn *c, const char *user_id,
    const char *id, int status)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DEV_SET_STATUS, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_key(st, 2, id);
	e |= sqlite3_bind_int(st, 3, status);
	if ((rc = sq_bound(SQ_DEV_SET_STATUS, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_DEV_SET_STATUS, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_device_touch(struct store_conn *c, const char *id, int64_t now,
    const char *ip)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DEV_TOUCH, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, id);
	e |= sqlite3_bind_int64(st, 2, now);
	e |= bind_str(st, 3, ip != NULL ? ip : "", STORE_IP_MAX + 1);
	if ((rc = sq_bound(SQ_DEV_TOUCH, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_DEV_TOUCH, st);
	sq_done(st);
	return rc;
}

/* ---- sessions and tokens -------------------------------------------------- */

static enum store_status
sq_session_insert(struct store_conn *c, struct store_session *s)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_SESS_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, s->user_id, sizeof(s->user_id));
	e |= bind_str(st, 2, s->device_id, sizeof(s->device_id));
	e |= sqlite3_bind_int64(st, 3, s->created_at);
	e |= sqlite3_bind_int64(st, 4, s->expires_at);
	e |= sqlite3_bind_int64(st, 5, s->revoked_at);
	if ((rc = sq_bound(SQ_SESS_INSERT, e)) == STORE_OK &&
	    (rc = sq_exec(q, SQ_SESS_INSERT, st)) == STORE_OK)
		s->id = sqlite3_last_insert_rowid(q->db);
	sq_done(st);
	return rc;
}

static enum store_status
sq_session_revoke(struct store_conn *c, int64_t id, int64_t now)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_SESS_REVOKE, &st)) != STORE_OK)
		return rc;
	e |= sqlite3_bind_int64(st, 1, id);
	e |= sqlite3_bind_int64(st, 2, now);
	if ((rc = sq_bound(SQ_SESS_REVOKE, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_SESS_REVOKE, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_session_revoke_device(struct store_conn *c, const char *device_id,
    int64_t now)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_SESS_REVOKE_DEVICE, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, device_id);
	e |= sqlite3_bind_int64(st, 2, now);
	if ((rc = sq_bound(SQ_SESS_REVOKE_DEVICE, e)) == STORE_OK)
		rc = sq_exec(q, SQ_SESS_REVOKE_DEVICE, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_token_insert(struct store_conn *c, const struct store_token *t)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_TOK_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_hash(st, 1, t->hash);
	e |= sqlite3_bind_int64(st, 2, t->session_id);
	e |= sqlite3_bind_int64(st, 3, t->created_at);
	e |= sqlite3_bind_int(st, 4, t->used ? 1 : 0);
	e |= t->has_successor ? bind_hash(st, 5, t->successor) :
	    sqlite3_bind_null(st, 5);
	e |= sqlite3_bind_int64(st, 6, t->grace_until);
	if ((rc = sq_bound(SQ_TOK_INSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_TOK_INSERT, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_token_lookup(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_token *tok, struct store_session *sess,
    struct store_device *dev)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_TOK_LOOKUP, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_TOK_LOOKUP, bind_hash(st, 1, hash))) !=
	    STORE_OK || (rc = sq_step(q, SQ_TOK_LOOKUP, st)) != STORE_OK)
		goto done;
	if (tok != NULL) {
		memcpy(tok->hash, hash, TOKEN_HASH_LEN);
		tok->session_id = sqlite3_column_int64(st, 0);
		tok->created_at = sqlite3_column_int64(st, 1);
		tok->used = sqlite3_column_int(st, 2) != 0;
		e |= col_hash(st, 3, tok->successor, &tok->has_successor);
		tok->grace_until = sqlite3_column_int64(st, 4);
	}
	if (sess != NULL) {
		sess->id = sqlite3_column_int64(st, 0);
		e |= col_str(st, 5, sess->user_id, sizeof(sess->user_id));
		e |= col_str(st, 6, sess->device_id, sizeof(sess->device_id));
		sess->created_at = sqlite3_column_int64(st, 7);
		sess->expires_at = sqlite3_column_int64(st, 8);
		sess->revoked_at = sqlite3_column_int64(st, 9);
	}
	if (dev != NULL)
		e |= read_device(st, 10, dev);
	rc = sq_read(SQ_TOK_LOOKUP, e);
done:
	sq_done(st);
	return rc;
}

static enum store_status
sq_token_update(struct store_conn *c, const struct store_token *t)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_TOK_UPDATE, &st)) != STORE_OK)
		return rc;
	e |= bind_hash(st, 1, t->hash);
	e |= sqlite3_bind_int(st, 2, t->used ? 1 : 0);
	e |= t->has_successor ? bind_hash(st, 3, t->successor) :
	    sqlite3_bind_null(st, 3);
	e |= sqlite3_bind_int64(st, 4, t->grace_until);
	if ((rc = sq_bound(SQ_TOK_UPDATE, e)) == STORE_OK)
		rc = sq_exec_changed(q, SQ_TOK_UPDATE, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_token_delete(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN])
{
	return sq_by_hash(sq(c), SQ_TOK_DELETE, hash);
}

/* ---- sync configuration ----------------------------------------------------- */

static enum store_status
sq_config_get(struct store_conn *c, const char *user_id,
    struct store_config *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int t;

	for (t = 0; t < DT_COUNT; t++)
		out->enabled[t] = true;
	out->updated_at = 0;
	if ((rc = sq_prep(q, SQ_CFG_GET, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_CFG_GET, bind_key(st, 1, user_id))) != STORE_OK)
		goto done;
	rc = sq_step(q, SQ_CFG_GET, st);
	if (rc == STORE_OK) {
		for (t = 0; t < DT_COUNT; t++)
			out->enabled[t] = sqlite3_column_int(st, t) != 0;
		out->updated_at = sqlite3_column_int64(st, DT_COUNT);
	} else if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;          /* never set: the defaults */
	}
done:
	sq_done(st);
	return rc;
}

static enum store_status
sq_config_put(struct store_conn *c, const char *user_id,
    const struct store_config *cfg)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0, t;

	if ((rc = sq_prep(q, SQ_CFG_PUT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, user_id, STORE_ID_LEN + 1);
	for (t = 0; t < DT_COUNT; t++)
		e |= sqlite3_bind_int(st, 2 + t, cfg->enabled[t] ? 1 : 0);
	e |= sqlite3_bind_int64(st, 2 + DT_COUNT, cfg->updated_at);
	if ((rc = sq_bound(SQ_CFG_PUT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_CFG_PUT, st);
	sq_done(st);
	return rc;
}

/* ---- wrapped keys ---------------------------------------------------------- */

static enum store_status
sq_key_current(struct store_conn *c, const char *user_id, struct arena *a,
    struct store_key *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_KEY_CURRENT, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_KEY_CURRENT, bind_key(st, 1, user_id))) ==
	    STORE_OK && (rc = sq_step(q, SQ_KEY_CURRENT, st)) == STORE_OK) {
		e |= col_int(st, 0, &out->version);
		e |= col_ablob(st, 1, a, &out->wrapped, &out->wrapped_len);
		e |= col_astr(st, 2, a, &out->kdf);
		out->created_at = sqlite3_column_int64(st, 3);
		e |= col_str(st, 4, out->created_by_device,
		    sizeof(out->created_by_device));
		if (out->kdf == NULL)
			e = -1;
		rc = sq_read(SQ_KEY_CURRENT, e);
	}
	sq_done(st);
	return rc;
}

static enum store_status
sq_key_insert(struct store_conn *c, const char *user_id,
    const struct store_key *k)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_KEY_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, user_id, STORE_ID_LEN + 1);
	e |= sqlite3_bind_int(st, 2, k->version);
	e |= bind_blob(st, 3, k->wrapped, k->wrapped_len);
	e |= k->kdf != NULL ? bind_key(st, 4, k->kdf) : SQLITE_MISUSE;
	e |= sqlite3_bind_int64(st, 5, k->created_at);
	e |= bind_opt(st, 6, k->created_by_device,
	    sizeof(k->created_by_device));
	if ((rc = sq_bound(SQ_KEY_INSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_KEY_INSERT, st);
	sq_done(st);
	return rc;
}

/* ---- encrypted data ----------------------------------------------------------- */

/*
 * Reads an item from the item columns (type, version, key_version, size,
 * updated_at, updated_by_device, deleted) and, when a != NULL, its blob
 * from column 7. A missing blob is an error: every live head and every
 * revision has one.
 */
static int
read_item(sqlite3_stmt *st, struct arena *a, struct store_item *it)
{
	size_t len;
	int e = 0, del = 0;

	e |= col_type(st, 0, &it->type, false);
	it->version = sqlite3_column_int64(st, 1);
	e |= col_int(st, 2, &it->key_version);
	it->size = sqlite3_column_int64(st, 3);
	it->updated_at = sqlite3_column_int64(st, 4);
	e |= col_str(st, 5, it->updated_by_device,
	    sizeof(it->updated_by_device));
	e |= col_int(st, 6, &del);
	it->deleted = del != 0;
	it->blob = NULL;
	if (a != NULL) {
		e |= col_ablob(st, 7, a, &it->blob, &len);
		if (e == 0 && (it->size < 0 || (uint64_t)it->size != len))
			e = -1;
	}
	return e;
}

static enum store_status
sq_data_head(struct store_conn *c, const char *user_id, int type,
    struct store_item *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DATA_HEAD, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_type(st, 2, type);
	if ((rc = sq_bound(SQ_DATA_HEAD, e)) == STORE_OK &&
	    (rc = sq_step(q, SQ_DATA_HEAD, st)) == STORE_OK)
		rc = sq_read(SQ_DATA_HEAD, read_item(st, NULL, out));
	sq_done(st);
	return rc;
}

static enum store_status
sq_data_list(struct store_conn *c, const char *user_id, bool with_blob,
    struct arena *a, struct store_item **out, size_t *n)
{
	struct sq_conn *q = sq(c);
	enum sq_stmt id = with_blob ? SQ_DATA_LIST_BLOB : SQ_DATA_LIST;
	sqlite3_stmt *st;
	struct store_item row, *v = NULL;
	bool seen[DT_COUNT] = { false };
	size_t len = 0;
	enum store_status rc;
	int t;

	*out = NULL;
	*n = 0;
	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(id, bind_key(st, 1, user_id))) != STORE_OK)
		goto done;
	/* at most one head per type: slot them by type, then compact */
	if ((v = arena_calloc(a, DT_COUNT, sizeof(*v))) == NULL) {
		rc = sq_read(id, -1);
		goto done;
	}
	while ((rc = sq_step(q, id, st)) == STORE_OK) {
		if ((rc = sq_read(id, read_item(st, with_blob ? a : NULL,
		    &row))) != STORE_OK)
			goto done;
		if (seen[row.type]) {
			rc = sq_read(id, -1);
			goto done;
		}
		seen[row.type] = true;
		v[row.type] = row;
	}
	if (rc != STORE_NOT_FOUND)
		goto done;
	for (t = 0; t < DT_COUNT; t++)
		if (seen[t])
			v[len++] = v[t];
	rc = STORE_OK;
	*out = len > 0 ? v : NULL;
	*n = len;
done:
	sq_done(st);
	return rc;
}

static enum store_status
sq_data_get(struct store_conn *c, const char *user_id, int type,
    struct arena *a, struct store_item *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_DATA_GET, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_type(st, 2, type);
	if ((rc = sq_bound(SQ_DATA_GET, e)) == STORE_OK &&
	    (rc = sq_step(q, SQ_DATA_GET, st)) == STORE_OK)
		rc = sq_read(SQ_DATA_GET, read_item(st, a, out));
	sq_done(st);
	return rc;
}

/* Binds user_id, type and the metadata of it as ?1..?7. */
static int
bind_item(sqlite3_stmt *st, const char *user_id, const struct store_item *it)
{
	int e = 0;

	e |= bind_str(st, 1, user_id, STORE_ID_LEN + 1);
	e |= bind_type(st, 2, it->type);
	e |= sqlite3_bind_int64(st, 3, it->version);
	e |= sqlite3_bind_int(st, 4, it->key_version);
	e |= sqlite3_bind_int64(st, 5, it->size);
	e |= sqlite3_bind_int64(st, 6, it->updated_at);
	e |= bind_opt(st, 7, it->updated_by_device,
	    sizeof(it->updated_by_device));
	return e;
}

static enum store_status
sq_data_write(struct store_conn *c, const char *user_id,
    const struct store_item *it, int keep)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	bool outer;
	int e;

	if (it->size < 0 || (!it->deleted && it->size > 0 && it->blob == NULL))
		return sq_bound(SQ_REV_INSERT, SQLITE_MISUSE);
	if (keep < 1)
		keep = 1;               /* the head's own revision stays */
	if ((rc = sq_sp_begin(q, &outer)) != STORE_OK)
		return rc;

	if ((rc = sq_prep(q, SQ_DATA_UPSERT, &st)) != STORE_OK)
		goto end;
	e = bind_item(st, user_id, it);
	e |= sqlite3_bind_int(st, 8, it->deleted ? 1 : 0);
	if ((rc = sq_bound(SQ_DATA_UPSERT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_DATA_UPSERT, st);
	sq_done(st);
	if (rc != STORE_OK)
		goto end;

	if (!it->deleted) {
		if ((rc = sq_prep(q, SQ_REV_INSERT, &st)) != STORE_OK)
			goto end;
		e = bind_item(st, user_id, it);
		e |= it->size > INT_MAX ? SQLITE_TOOBIG :
		    bind_blob(st, 8, it->blob, (size_t)it->size);
		if ((rc = sq_bound(SQ_REV_INSERT, e)) == STORE_OK)
			rc = sq_exec(q, SQ_REV_INSERT, st);
		sq_done(st);
		if (rc != STORE_OK)
			goto end;
	}

	if ((rc = sq_prep(q, SQ_REV_PRUNE, &st)) != STORE_OK)
		goto end;
	e = bind_key(st, 1, user_id);
	e |= bind_type(st, 2, it->type);
	e |= sqlite3_bind_int(st, 3, keep);
	if ((rc = sq_bound(SQ_REV_PRUNE, e)) == STORE_OK)
		rc = sq_exec(q, SQ_REV_PRUNE, st);
	sq_done(st);
end:
	return sq_sp_end(q, outer, rc);
}

static enum store_status
sq_revision_list(struct store_conn *c, const char *user_id, int type,
    struct arena *a, struct store_item **out, size_t *n)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	struct store_item *v = NULL;
	size_t cap = 0, len = 0;
	enum store_status rc;
	int e = 0;

	*out = NULL;
	*n = 0;
	if ((rc = sq_prep(q, SQ_REV_LIST, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_type(st, 2, type);
	if ((rc = sq_bound(SQ_REV_LIST, e)) != STORE_OK)
		goto done;
	while ((rc = sq_step(q, SQ_REV_LIST, st)) == STORE_OK) {
		if ((v = sq_grow(a, v, &cap, len, sizeof(*v))) == NULL) {
			rc = sq_read(SQ_REV_LIST, -1);
			goto done;
		}
		if ((rc = sq_read(SQ_REV_LIST, read_item(st, NULL,
		    &v[len]))) != STORE_OK)
			goto done;
		len++;
	}
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;
		*out = v;
		*n = len;
	}
done:
	sq_done(st);
	return rc;
}

static enum store_status
sq_revision_get(struct store_conn *c, const char *user_id, int type,
    int64_t version, struct arena *a, struct store_item *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_REV_GET, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= bind_type(st, 2, type);
	e |= sqlite3_bind_int64(st, 3, version);
	if ((rc = sq_bound(SQ_REV_GET, e)) == STORE_OK &&
	    (rc = sq_step(q, SQ_REV_GET, st)) == STORE_OK)
		rc = sq_read(SQ_REV_GET, read_item(st, a, out));
	sq_done(st);
	return rc;
}

/* ---- audit ---------------------------------------------------------------- */

static enum store_status
sq_audit_insert(struct store_conn *c, struct store_audit *ev)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_AUDIT_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, ev->user_id, sizeof(ev->user_id));
	e |= bind_str(st, 2, ev->event_type, sizeof(ev->event_type));
	e |= bind_opt(st, 3, ev->device_id, sizeof(ev->device_id));
	e |= bind_str(st, 4, ev->ip, sizeof(ev->ip));
	/* user agents come from clients: cut, at a character boundary */
	e |= ev->user_agent == NULL ? sqlite3_bind_null(st, 5) :
	    sqlite3_bind_text(st, 5, ev->user_agent,
	    (int)utf8_prefix(ev->user_agent, STORE_UA_MAX), SQLITE_STATIC);
	e |= bind_key(st, 6, ev->metadata);
	e |= sqlite3_bind_int64(st, 7, ev->created_at);
	if ((rc = sq_bound(SQ_AUDIT_INSERT, e)) == STORE_OK &&
	    (rc = sq_exec(q, SQ_AUDIT_INSERT, st)) == STORE_OK)
		ev->id = sqlite3_last_insert_rowid(q->db);
	sq_done(st);
	return rc;
}

static enum store_status
sq_audit_list(struct store_conn *c, const char *user_id, int64_t before_id,
    int limit, struct arena *a, struct store_audit **out, size_t *n)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	struct store_audit *v = NULL, *ev;
	size_t cap = 0, len = 0;
	enum store_status rc;
	int e = 0;

	*out = NULL;
	*n = 0;
	if (limit < 1)
		limit = 1;
	if (before_id <= 0)
		before_id = INT64_MAX;
	if ((rc = sq_prep(q, SQ_AUDIT_LIST, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= sqlite3_bind_int64(st, 2, before_id);
	e |= sqlite3_bind_int(st, 3, limit);
	if ((rc = sq_bound(SQ_AUDIT_LIST, e)) != STORE_OK)
		goto done;
	while ((rc = sq_step(q, SQ_AUDIT_LIST, st)) == STORE_OK) {
		if ((v = sq_grow(a, v, &cap, len, sizeof(*v))) == NULL) {
			rc = sq_read(SQ_AUDIT_LIST, -1);
			goto done;
		}
		ev = &v[len];
		e = 0;
		ev->id = sqlite3_column_int64(st, 0);
		e |= col_str(st, 1, ev->user_id, sizeof(ev->user_id));
		e |= col_str(st, 2, ev->event_type, sizeof(ev->event_type));
		e |= col_str(st, 3, ev->device_id, sizeof(ev->device_id));
		e |= col_str(st, 4, ev->ip, sizeof(ev->ip));
		e |= col_astr(st, 5, a, &ev->user_agent);
		e |= col_astr(st, 6, a, &ev->metadata);
		ev->created_at = sqlite3_column_int64(st, 7);
		if ((rc = sq_read(SQ_AUDIT_LIST, e)) != STORE_OK)
			goto done;
		len++;
	}
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;
		*out = v;
		*n = len;
	}
done:
	sq_done(st);
	return rc;
}

/* ---- events ------------------------------------------------------------- */

static enum store_status
sq_event_insert(struct store_conn *c, struct store_event *ev)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_EV_INSERT, &st)) != STORE_OK)
		return rc;
	e |= bind_str(st, 1, ev->user_id, sizeof(ev->user_id));
	e |= bind_str(st, 2, ev->type, sizeof(ev->type));
	e |= ev->data_type < 0 ? sqlite3_bind_null(st, 3) :
	    bind_type(st, 3, ev->data_type);
	e |= sqlite3_bind_int64(st, 4, ev->version);
	e |= bind_opt(st, 5, ev->origin_device_id,
	    sizeof(ev->origin_device_id));
	e |= sqlite3_bind_int64(st, 6, ev->created_at);
	e |= bind_opt(st, 7, ev->device_id, sizeof(ev->device_id));
	if ((rc = sq_bound(SQ_EV_INSERT, e)) == STORE_OK &&
	    (rc = sq_exec(q, SQ_EV_INSERT, st)) == STORE_OK)
		ev->id = sqlite3_last_insert_rowid(q->db);
	sq_done(st);
	return rc;
}

static enum store_status
sq_event_list(struct store_conn *c, const char *user_id, int64_t after,
    int limit, struct arena *a, struct store_event **out, size_t *n)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	struct store_event *v = NULL, *ev;
	size_t cap = 0, len = 0;
	enum store_status rc;
	int e = 0;

	*out = NULL;
	*n = 0;
	if (limit < 1)
		limit = 1;
	if ((rc = sq_prep(q, SQ_EV_LIST, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, user_id);
	e |= sqlite3_bind_int64(st, 2, after);
	e |= sqlite3_bind_int(st, 3, limit);
	if ((rc = sq_bound(SQ_EV_LIST, e)) != STORE_OK)
		goto done;
	while ((rc = sq_step(q, SQ_EV_LIST, st)) == STORE_OK) {
		if ((v = sq_grow(a, v, &cap, len, sizeof(*v))) == NULL) {
			rc = sq_read(SQ_EV_LIST, -1);
			goto done;
		}
		ev = &v[len];
		e = 0;
		ev->id = sqlite3_column_int64(st, 0);
		e |= col_str(st, 1, ev->user_id, sizeof(ev->user_id));
		e |= col_str(st, 2, ev->type, sizeof(ev->type));
		e |= col_type(st, 3, &ev->data_type, true);
		ev->version = sqlite3_column_int64(st, 4);
		e |= col_str(st, 5, ev->origin_device_id,
		    sizeof(ev->origin_device_id));
		ev->created_at = sqlite3_column_int64(st, 6);
		e |= col_str(st, 7, ev->device_id, sizeof(ev->device_id));
		if ((rc = sq_read(SQ_EV_LIST, e)) != STORE_OK)
			goto done;
		len++;
	}
	if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;
		*out = v;
		*n = len;
	}
done:
	sq_done(st);
	return rc;
}

/* The first column of the one row `id` finds for user_id; 0 when none. */
static enum store_status
sq_user_i64(struct store_conn *c, enum sq_stmt id, const char *user_id,
    int64_t *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	*out = 0;
	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(id, bind_key(st, 1, user_id))) == STORE_OK)
		rc = sq_step(q, id, st);
	if (rc == STORE_OK)
		*out = sqlite3_column_int64(st, 0);
	else if (rc == STORE_NOT_FOUND)
		rc = STORE_OK;
	sq_done(st);
	return rc;
}

static enum store_status
sq_event_last_id(struct store_conn *c, const char *user_id, int64_t *out)
{
	return sq_user_i64(c, SQ_EV_LAST, user_id, out);
}

static enum store_status sq_prune_one(struct sq_conn *q, enum sq_stmt id,
    int64_t before);

static enum store_status
sq_event_floor(struct store_conn *c, const char *user_id, int64_t *out)
{
	return sq_user_i64(c, SQ_EV_FLOOR, user_id, out);
}

/* Runs one batch statement of retention (?1 the cut, ?2 the limit);
 * *changed: the rows it changed. */
static enum store_status
sq_prune_batch(struct sq_conn *q, enum sq_stmt id, int64_t before, int limit,
    int64_t *changed)
{
	sqlite3_stmt *st;
	enum store_status rc;
	int e;

	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	e = sqlite3_bind_int64(st, 1, before);
	e |= sqlite3_bind_int(st, 2, limit);
	if ((rc = sq_bound(id, e)) == STORE_OK)
		rc = sq_exec(q, id, st);
	if (rc == STORE_OK && changed != NULL)
		*changed = sqlite3_changes(q->db);
	sq_done(st);
	return rc;
}

/* Raises each user's floor to the newest event of the batch, then drops
 * the batch: together, so that a reader never sees the gap without the
 * floor. One batch per call keeps the write lock short. */
static enum store_status
sq_event_prune(struct store_conn *c, int64_t before, int limit,
    int64_t *pruned)
{
	struct sq_conn *q = sq(c);
	enum store_status rc;
	bool outer;

	*pruned = 0;
	if ((rc = sq_sp_begin(q, &outer)) != STORE_OK)
		return rc;
	if ((rc = sq_prune_batch(q, SQ_EV_FLOOR_RAISE, before, limit,
	    NULL)) == STORE_OK)
		rc = sq_prune_batch(q, SQ_EV_PRUNE, before, limit, pruned);
	return sq_sp_end(q, outer, rc);
}

static enum store_status
sq_audit_prune(struct store_conn *c, int64_t before, int limit,
    int64_t *pruned)
{
	*pruned = 0;
	return sq_prune_batch(sq(c), SQ_AUDIT_PRUNE, before, limit, pruned);
}

/* ---- rate limits ----------------------------------------------------------- */

static enum store_status
sq_rate_get(struct store_conn *c, const char *key, struct rate_state *out)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	memset(out, 0, sizeof(*out));
	if ((rc = sq_prep(q, SQ_RATE_GET, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(SQ_RATE_GET, bind_key(st, 1, key))) == STORE_OK)
		rc = sq_step(q, SQ_RATE_GET, st);
	if (rc == STORE_OK) {
		out->window_start = sqlite3_column_int64(st, 0);
		out->count = sqlite3_column_int64(st, 1);
		out->blocked_until = sqlite3_column_int64(st, 2);
	} else if (rc == STORE_NOT_FOUND) {
		rc = STORE_OK;          /* absent: a fresh, zeroed record */
	}
	sq_done(st);
	return rc;
}

static enum store_status
sq_rate_put(struct store_conn *c, const char *key,
    const struct rate_state *rs, int64_t expires_at)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;
	int e = 0;

	if ((rc = sq_prep(q, SQ_RATE_PUT, &st)) != STORE_OK)
		return rc;
	e |= bind_key(st, 1, key);
	e |= sqlite3_bind_int64(st, 2, rs->window_start);
	e |= sqlite3_bind_int64(st, 3, rs->count);
	e |= sqlite3_bind_int64(st, 4, rs->blocked_until);
	e |= sqlite3_bind_int64(st, 5, expires_at);
	if ((rc = sq_bound(SQ_RATE_PUT, e)) == STORE_OK)
		rc = sq_exec(q, SQ_RATE_PUT, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_rate_delete(struct store_conn *c, const char *key)
{
	struct sq_conn *q = sq(c);
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, SQ_RATE_DELETE, &st)) != STORE_OK)
		return rc;
	/* deleting an absent record is fine: absent reads as zero */
	if ((rc = sq_bound(SQ_RATE_DELETE, bind_key(st, 1, key))) == STORE_OK)
		rc = sq_exec(q, SQ_RATE_DELETE, st);
	sq_done(st);
	return rc;
}

/* ---- housekeeping ------------------------------------------------------------ */

static enum store_status
sq_prune_one(struct sq_conn *q, enum sq_stmt id, int64_t before)
{
	sqlite3_stmt *st;
	enum store_status rc;

	if ((rc = sq_prep(q, id, &st)) != STORE_OK)
		return rc;
	if ((rc = sq_bound(id, sqlite3_bind_int64(st, 1, before))) ==
	    STORE_OK)
		rc = sq_exec(q, id, st);
	sq_done(st);
	return rc;
}

static enum store_status
sq_prune(struct store_conn *c, int64_t now)
{
	struct sq_conn *q = sq(c);
	enum store_status rc;
	bool outer;

	if ((rc = sq_sp_begin(q, &outer)) != STORE_OK)
		return rc;
	/* a late poll can still learn that its request expired (410) */
	if ((rc = sq_prune_one(q, SQ_PRUNE_DEVREQ, now - SQ_HOUR_MS)) !=
	    STORE_OK)
		goto end;
	/* tokens first: they belong to the sessions that go */
	if ((rc = sq_prune_one(q, SQ_PRUNE_TOKENS, now - SQ_DAY_MS)) !=
	    STORE_OK)
		goto end;
	if ((rc = sq_prune_one(q, SQ_PRUNE_SESSIONS, now - SQ_DAY_MS)) !=
	    STORE_OK)
		goto end;
	if ((rc = sq_prune_one(q, SQ_PRUNE_WEBSESS, now)) != STORE_OK)
		goto end;
	rc = sq_prune_one(q, SQ_PRUNE_RATE, now);
end:
	return sq_sp_end(q, outer, rc);
}

/* ---- the backend ------------------------------------------------------------ */

static const struct store_ops sq_ops = {
	.version = STORE_OPS_VERSION,
	.name = "sqlite",
	.conn_open = sq_conn_open,
	.conn_close = sq_conn_close,
	.close = sq_close,
	.ping = sq_ping,
	.begin = sq_begin,
	.commit = sq_commit,
	.rollback = sq_rollback,
	.sp_begin = sq_group_sp_begin,
	.sp_end = sq_group_sp_end,
	.user_insert = sq_user_insert,
	.user_by_email = sq_user_by_email,
	.user_by_id = sq_user_by_id,
	.user_set_password = sq_user_set_password,
	.websess_insert = sq_websess_insert,
	.websess_get = sq_websess_get,
	.websess_touch = sq_websess_touch,
	.websess_delete = sq_websess_delete,
	.websess_delete_others = sq_websess_delete_others,
	.devreq_insert = sq_devreq_insert,
	.devreq_by_temp = sq_devreq_by_temp,
	.devreq_by_code = sq_devreq_by_code,
	.devreq_update = sq_devreq_update,
	.device_insert = sq_device_insert,
	.device_get = sq_device_get,
	.device_list = sq_device_list,
	.device_set_status = sq_device_set_status,
	.device_touch = sq_device_touch,
	.session_insert = sq_session_insert,
	.session_revoke = sq_session_revoke,
	.session_revoke_device = sq_session_revoke_device,
	.token_insert = sq_token_insert,
	.token_lookup = sq_token_lookup,
	.token_update = sq_token_update,
	.token_delete = sq_token_delete,
	.config_get = sq_config_get,
	.config_put = sq_config_put,
	.key_current = sq_key_current,
	.key_insert = sq_key_insert,
	.data_head = sq_data_head,
	.data_list = sq_data_list,
	.data_get = sq_data_get,
	.data_write = sq_data_write,
	.revision_list = sq_revision_list,
	.revision_get = sq_revision_get,
	.audit_insert = sq_audit_insert,
	.audit_list = sq_audit_list,
	.event_insert = sq_event_insert,
	.event_list = sq_event_list,
	.event_last_id = sq_event_last_id,
	.event_floor = sq_event_floor,
	.event_prune = sq_event_prune,
	.audit_prune = sq_audit_prune,
	.rate_get = sq_rate_get,
	.rate_put = sq_rate_put,
	.rate_delete = sq_rate_delete,
	.prune = sq_prune,
};

/* The schema version stored in the file's header. */
static int
sq_user_version(struct sq_conn *q, int *out)
{
	char val[32];
	char *end;
	long v;
	int rc;

	rc = sq_pragma(q->db, "PRAGMA user_version", val, sizeof(val));
	if (rc != SQLITE_OK)
		return rc;
	v = strtol(val, &end, 10);
	if (end == val || *end != '\0' || v < 0 || v > INT_MAX)
		return SQLITE_CORRUPT;
	*out = (int)v;
	return SQLITE_OK;
}

/*
 * Applies the migrations newer than the file's user_version, each in its own
 * BEGIN IMMEDIATE transaction with its version bump, so that two processes
 * starting at once apply each migration exactly once.
 */
static enum store_status
sq_migrate(struct sq_conn *q, const char *path, char *err, size_t errlen)
{
	char sql[64], *msg = NULL;
	size_t n;
	int i, have, rc;

	for (n = 0; store_sqlite_migrations[n] != NULL; n++)
		;
	if (n > INT_MAX / 2) {
		sq_err(err, errlen, "sqlite: too many migrations");
		return STORE_ERROR;
	}
	for (i = 0; i < (int)n; i++) {
		if ((rc = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL,
		    NULL)) != SQLITE_OK) {
			sq_err(err, errlen, "sqlite: %s: cannot lock for "
			    "migration: %s", path, sqlite3_errmsg(q->db));
			return STORE_UNAVAILABLE;
		}
		if ((rc = sq_user_version(q, &have)) != SQLITE_OK) {
			sq_err(err, errlen, "sqlite: %s: cannot read the schema "
			    "version: %s", path, sqlite3_errmsg(q->db));
			goto bad;
		}
		if (have > (int)n) {
			sq_err(err, errlen, "sqlite: %s: schema version %d is "
			    "newer than this program knows (%zu)", path, have,
			    n);
			goto bad;
		}
		if (have > i) {
			/* applied already, perhaps by another process */
			(void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
			continue;
		}
		rc = snprintf(sql, sizeof(sql), "PRAGMA user_version = %d",
		    i + 1);
		if (rc < 0 || (size_t)rc >= sizeof(sql)) {
			sq_err(err, errlen, "sqlite: migration %d: bad version",
			    i + 1);
			goto bad;
		}
		if (sqlite3_exec(q->db, store_sqlite_migrations[i], NULL, NULL,
		    &msg) != SQLITE_OK ||
		    sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK ||
		    sqlite3_exec(q->db, "COMMIT", NULL, NULL, &msg) !=
		    SQLITE_OK) {
			sq_err(err, errlen, "sqlite: %s: migration %d failed: "
			    "%s", path, i + 1, msg != NULL ? msg :
			    sqlite3_errmsg(q->db));
			sqlite3_free(msg);
			goto bad;
		}
	}
	return STORE_OK;
bad:
	if (!sqlite3_get_autocommit(q->db))
		(void)sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
	return STORE_ERROR;
}

/*
 * Process-wide settings, before SQLite initialises itself. Allocation
 * statistics take one global mutex on every allocation of every connection:
 * with a connection per worker thread they were the busiest lock of the
 * server, and nothing reads them.
 */
static pthread_once_t sq_config_once = PTHREAD_ONCE_INIT;

static void
sq_config(void)
{
	/* SQLITE_MISUSE when SQLite is already initialised: then it stays */
	(void)sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

enum store_status
store_sqlite_open(const char *path, const struct store_ops **ops, void **cls,
    char *err, size_t errlen)
{
	struct sq_backend *b = NULL;
	struct sq_conn *q = NULL;
	enum store_status rc = STORE_ERROR;

	*ops = NULL;
	*cls = NULL;
	if (path == NULL || path[0] == '\0') {
		sq_err(err, errlen, "DATABASE_URL: sqlite:PATH needs a path");
		return STORE_ERROR;
	}
	/* each connection would get its own private database */
	if (strcmp(path, ":memory:") == 0 || strncmp(path, "file:", 5) == 0) {
		sq_err(err, errlen, "DATABASE_URL: sqlite:PATH needs a plain "
		    "file path (no :memory:, no file: URI)");
		return STORE_ERROR;
	}
	if (sqlite3_threadsafe() == 0) {
		sq_err(err, errlen, "sqlite: the library was built without "
		    "thread support");
		return STORE_ERROR;
	}
	pthread_once(&sq_config_once, sq_config);
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->path = strdup(path)) == NULL) {
		sq_err(err, errlen, "sqlite: out of memory");
		goto bad;
	}
	if ((rc = sq_connect(b, &q, err, errlen)) != STORE_OK)
		goto bad;
	if ((rc = sq_migrate(q, path, err, errlen)) != STORE_OK)
		goto bad;
	sq_conn_free(q);
	*ops = &sq_ops;
	*cls = b;
	return STORE_OK;
bad:
	sq_conn_free(q);
	sq_close(b);
	return rc;
}
