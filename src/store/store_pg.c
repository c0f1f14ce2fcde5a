/*
 * store_pg: the PostgreSQL backend of the store (see store.h), on libpq.
 *
 * The same semantics as store_sqlite.c (whose comments explain them); what
 * differs is how PostgreSQL gets there:
 *
 * - One PGconn per connection, one connection per thread. Statements are
 *   prepared once per PGconn, on first use, and run with binary results.
 *   A connection that breaks (server restart, network) is reopened by the
 *   next operation outside a transaction (one that the server has said
 *   goodbye on while idle is replaced before it is used); an open
 *   transaction that loses its connection fails with STORE_UNAVAILABLE
 *   (nothing was committed).
 *   While the server is unreachable, reconnects are tried at most every
 *   PG_RECONNECT_MS per thread and everything answers STORE_UNAVAILABLE
 *   at once. As soon as any session (a worker's or the listener's)
 *   connects again, every thread's wait is lifted: once /readyz says the
 *   database is back, no thread still refuses because of an old failure.
 * - Writing transactions are SERIALIZABLE (SQLite's BEGIN IMMEDIATE makes
 *   writers serial; this is the same outcome without the global lock).
 *   Serialization failures and deadlocks (40001, 40P01) are STORE_BUSY,
 *   retried by store_tx(). Writing transactions share an advisory lock
 *   that a retry takes exclusively, so that a hot row still makes
 *   progress under heavy contention (see pg_begin). Reading
 *   transactions are REPEATABLE READ (one snapshot, as on SQLite).
 * - Event ids grow per user in commit order (see the migration), and
 *   event_insert sends pg_notify('flamingo_events', user_id) in the
 *   same statement: PostgreSQL delivers it at commit, to every process
 *   LISTENing (subscribe), so a write on one instance wakes the waiters on
 *   every instance.
 * - Migrations (migrations/pg/) run at open, in one transaction under an
 *   advisory lock: instances that start together apply each exactly once.
 * - Every session sets synchronous_commit=on and statement, lock and
 *   idle-in-transaction timeouts; connections use connect_timeout and TCP
 *   keepalives (the URL may override these), so nothing waits forever.
 *
 * Errors: 40001/40P01 map to STORE_BUSY, unique violations to STORE_EXISTS,
 * foreign key violations to STORE_NOT_FOUND; a lost connection, a server
 * shutting down, timeouts, a read-only server and lack of resources to
 * STORE_UNAVAILABLE; anything else is STORE_ERROR. Hard errors are logged
 * in one line with the statement name and SQLSTATE. The connection string
 * may hold a password: it is never logged.
 */
#include "store.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "../common/timeutil.h"

/* Generated from the files in migrations/pg/ by scripts/embed-sql. */
extern const char *const store_pg_migrations[];

#define PG_HOUR_MS (3600LL * 1000)
#define PG_DAY_MS (24 * PG_HOUR_MS)
#define PG_MAX_PARAMS 16
#define PG_RECONNECT_MS 500
#define PG_LISTEN_BACKOFF_MIN_MS 100
#define PG_LISTEN_BACKOFF_MAX_MS 2000
#define PG_CHANNEL "flamingo_events"
/* advisory lock keys: "flmmigr" and "flmwrit" as numbers */
#define PG_LOCK_MIGRATE "7308620175927653"
#define PG_LOCK_WRITE "7308620176339316"

_Static_assert(DT_HISTORY == 0 && DT_ENVIRONMENT == 1 && DT_SECRET == 2 &&
    DT_COLLECTION == 3 && DT_SETTING == 4 && DT_COUNT == 5,
    "sync_config columns follow enum data_type");

/* Settings of every session (SET, one round trip at connect). */
static const char pg_session_sql[] =
    "SET synchronous_commit = on; "
    "SET statement_timeout = '15s'; "
    "SET lock_timeout = '5s'; "
    "SET idle_in_transaction_session_timeout = '60s'; "
    "SET client_encoding = 'UTF8'; "
    "SET standard_conforming_strings = on";

struct pg_backend {
	char *conninfo;                 /* secret: may hold a password */
	_Atomic int64_t up_since;       /* monotonic ms: a session connected */
	/* the listener (subscribe) */
	pthread_mutex_t lock;           /* guards running */
	bool running;
	pthread_t thread;
	int wake[2];                    /* a pipe: unsubscribe writes */
	store_notify_fn fn;
	void *arg;
};

enum pg_stmt {
	PG_PING,
	PG_USER_INSERT,
	PG_USER_BY_EMAIL,
	PG_USER_BY_ID,
	PG_USER_SET_PASSWORD,
	PG_WS_INSERT,
	PG_WS_GET,
	PG_WS_TOUCH,
	PG_WS_DELETE,
	PG_WS_DELETE_OTHERS,
	PG_DR_INSERT,
	PG_DR_BY_TEMP,
	PG_DR_BY_CODE,
	PG_DR_UPDATE,
	PG_DEV_INSERT,
	PG_DEV_GET,
	PG_DEV_LIST,
	PG_DEV_SET_STATUS,
	PG_DEV_TOUCH,
	PG_SESS_INSERT,
	PG_SESS_REVOKE,
	PG_SESS_REVOKE_DEVICE,
	PG_TOK_INSERT,
	PG_TOK_LOOKUP,
	PG_TOK_UPDATE,
	PG_TOK_DELETE,
	PG_CFG_GET,
	PG_CFG_PUT,
	PG_KEY_CURRENT,
	PG_KEY_INSERT,
	PG_DATA_HEAD,
	PG_DATA_LIST,
	PG_DATA_LIST_BLOB,
	PG_DATA_GET,
	PG_DATA_UPSERT,
	PG_REV_INSERT,
	PG_REV_PRUNE,
	PG_REV_LIST,
	PG_REV_GET,
	PG_AUDIT_INSERT,
	PG_AUDIT_LIST,
	PG_EV_INSERT,
	PG_EV_LIST,
	PG_EV_LAST,
	PG_EV_FLOOR,
	PG_EV_PRUNE,
	PG_AUDIT_PRUNE,
	PG_RATE_GET,
	PG_RATE_PUT,
	PG_RATE_DELETE,
	PG_PRUNE_DEVREQ,
	PG_PRUNE_TOKENS,
	PG_PRUNE_SESSIONS,
	PG_PRUNE_WEBSESS,
	PG_PRUNE_RATE,
	PG__COUNT
};

#define PG_DR_COLS "id, temp_hash, user_code, device_name, platform, " \
	"app_version, ip, created_at, expires_at, state, user_id, device_id, " \
	"interval_s, last_poll_at"
#define PG_DEV_COLS "id, user_id, name, platform, app_version, status, " \
	"created_at, last_seen_at, last_ip"
#define PG_ITEM_COLS "h.type, h.version, h.key_version, h.size, " \
	"h.updated_at, h.updated_by_device, h.deleted"
#define PG_REV_COLS "type, version, key_version, size, updated_at, " \
	"updated_by_device, 0"
#define PG_HEAD_REV_JOIN " FROM data_heads h LEFT JOIN data_revisions r " \
	"ON r.user_id = h.user_id AND r.type = h.type " \
	"AND r.version = h.version "
#define PG_SESS_OLD "expires_at < $1 OR (revoked_at > 0 AND " \
	"revoked_at < $1)"

static const struct {
	const char *name; /* for log lines */
	const char *sql;
} pg_sql[PG__COUNT] = {
	[PG_PING] = { "ping", "SELECT 1" },

	[PG_USER_INSERT] = { "user_insert",
	    "INSERT INTO users (id, email, password_hash, created_at) "
	    "VALUES ($1, $2, $3, $4::bigint)" },
	[PG_USER_BY_EMAIL] = { "user_by_email",
	    "SELECT id, email, password_hash, created_at FROM users "
	    "WHERE lower(email COLLATE \"C\") = lower($1::text COLLATE \"C\")" },
	[PG_USER_BY_ID] = { "user_by_id",
	    "SELECT id, email, password_hash, created_at FROM users "
	    "WHERE id = $1" },
	[PG_USER_SET_PASSWORD] = { "user_set_password",
	    "UPDATE users SET password_hash = $2 WHERE id = $1" },

	[PG_WS_INSERT] = { "websess_insert",
	    "INSERT INTO web_sessions (hash, user_id, created_at, "
	    "last_used_at, expires_at) VALUES ($1, $2, $3::bigint, "
	    "$4::bigint, $5::bigint)" },
	[PG_WS_GET] = { "websess_get",
	    "SELECT user_id, created_at, last_used_at, expires_at "
	    "FROM web_sessions WHERE hash = $1" },
	[PG_WS_TOUCH] = { "websess_touch",
	    "UPDATE web_sessions SET last_used_at = $2::bigint "
	    "WHERE hash = $1" },
	[PG_WS_DELETE] = { "websess_delete",
	    "DELETE FROM web_sessions WHERE hash = $1" },
	[PG_WS_DELETE_OTHERS] = { "websess_delete_others",
	    "DELETE FROM web_sessions WHERE user_id = $1 "
	    "AND ($2::bytea IS NULL OR hash <> $2::bytea)" },

	[PG_DR_INSERT] = { "devreq_insert",
	    "INSERT INTO device_requests (temp_hash, user_code, device_name, "
	    "platform, app_version, ip, created_at, expires_at, state, "
	    "user_id, device_id, interval_s, last_poll_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7::bigint, $8::bigint, "
	    "$9::integer, $10, $11, $12::integer, $13::bigint) RETURNING id" },
	[PG_DR_BY_TEMP] = { "devreq_by_temp",
	    "SELECT " PG_DR_COLS " FROM device_requests WHERE temp_hash = $1" },
	[PG_DR_BY_CODE] = { "devreq_by_code",
	    "SELECT " PG_DR_COLS " FROM device_requests WHERE user_code = $1" },
	[PG_DR_UPDATE] = { "devreq_update",
	    "UPDATE device_requests SET state = $2::integer, user_id = $3, "
	    "device_id = $4, interval_s = $5::integer, "
	    "last_poll_at = $6::bigint WHERE id = $1::bigint" },

	[PG_DEV_INSERT] = { "device_insert",
	    "INSERT INTO devices (" PG_DEV_COLS ") "
	    "VALUES ($1, $2, $3, $4, $5, $6::integer, $7::bigint, $8::bigint, "
	    "$9)" },
	[PG_DEV_GET] = { "device_get",
	    "SELECT " PG_DEV_COLS " FROM devices "
	    "WHERE user_id = $1 AND id = $2" },
	[PG_DEV_LIST] = { "device_list",
	    "SELECT " PG_DEV_COLS " FROM devices WHERE user_id = $1 "
	    "ORDER BY created_at DESC, seq DESC" },
	[PG_DEV_SET_STATUS] = { "device_set_status",
	    "UPDATE devices SET status = $3::integer "
	    "WHERE user_id = $1 AND id = $2" },
	[PG_DEV_TOUCH] = { "device_touch",
	    "UPDATE devices SET last_seen_at = $2::bigint, last_ip = $3 "
	    "WHERE id = $1" },

	[PG_SESS_INSERT] = { "session_insert",
	    "INSERT INTO sessions (user_id, device_id, created_at, "
	    "expires_at, revoked_at) VALUES ($1, $2, $3::bigint, $4::bigint, "
	    "$5::bigint) RETURNING id" },
	[PG_SESS_REVOKE] = { "session_revoke",
	    "UPDATE sessions SET revoked_at = CASE WHEN revoked_at = 0 "
	    "THEN $2::bigint ELSE revoked_at END WHERE id = $1::bigint" },
	[PG_SESS_REVOKE_DEVICE] = { "session_revoke_device",
	    "UPDATE sessions SET revoked_at = $2::bigint "
	    "WHERE device_id = $1 AND revoked_at = 0" },
	[PG_TOK_INSERT] = { "token_insert",
	    "INSERT INTO tokens (hash, session_id, created_at, used, "
	    "successor, grace_until) VALUES ($1, $2::bigint, $3::bigint, "
	    "$4::integer, $5::bytea, $6::bigint)" },
	[PG_TOK_LOOKUP] = { "token_lookup",
	    "SELECT t.session_id, t.created_at, t.used, t.successor, "
	    "t.grace_until, "
	    "s.user_id, s.device_id, s.created_at, s.expires_at, s.revoked_at, "
	    "d.id, d.user_id, d.name, d.platform, d.app_version, d.status, "
	    "d.created_at, d.last_seen_at, d.last_ip "
	    "FROM tokens t JOIN sessions s ON s.id = t.session_id "
	    "JOIN devices d ON d.id = s.device_id WHERE t.hash = $1" },
	[PG_TOK_UPDATE] = { "token_update",
	    "UPDATE tokens SET used = $2::integer, successor = $3::bytea, "
	    "grace_until = $4::bigint WHERE hash = $1" },
	[PG_TOK_DELETE] = { "token_delete",
	    "DELETE FROM tokens WHERE hash = $1" },

	[PG_CFG_GET] = { "config_get",
	    "SELECT history, environment, secret, collection, setting, "
	    "updated_at FROM sync_config WHERE user_id = $1" },
	[PG_CFG_PUT] = { "config_put",
	    "INSERT INTO sync_config (user_id, history, environment, secret, "
	    "collection, setting, updated_at) "
	    "VALUES ($1, $2::integer, $3::integer, $4::integer, $5::integer, "
	    "$6::integer, $7::bigint) "
	    "ON CONFLICT (user_id) DO UPDATE SET history = excluded.history, "
	    "environment = excluded.environment, secret = excluded.secret, "
	    "collection = excluded.collection, setting = excluded.setting, "
	    "updated_at = excluded.updated_at" },

	[PG_KEY_CURRENT] = { "key_current",
	    "SELECT version, wrapped, kdf, created_at, created_by_device "
	    "FROM keys WHERE user_id = $1 ORDER BY version DESC LIMIT 1" },
	[PG_KEY_INSERT] = { "key_insert",
	    "INSERT INTO keys (user_id, version, wrapped, kdf, created_at, "
	    "created_by_device) VALUES ($1, $2::integer, $3, $4, $5::bigint, "
	    "$6)" },

	[PG_DATA_HEAD] = { "data_head",
	    "SELECT " PG_ITEM_COLS " FROM data_heads h "
	    "WHERE h.user_id = $1 AND h.type = $2" },
	[PG_DATA_LIST] = { "data_list",
	    "SELECT " PG_ITEM_COLS " FROM data_heads h "
	    "WHERE h.user_id = $1 AND h.deleted = 0" },
	[PG_DATA_LIST_BLOB] = { "data_list",
	    "SELECT " PG_ITEM_COLS ", r.blob" PG_HEAD_REV_JOIN
	    "WHERE h.user_id = $1 AND h.deleted = 0" },
	[PG_DATA_GET] = { "data_get",
	    "SELECT " PG_ITEM_COLS ", r.blob" PG_HEAD_REV_JOIN
	    "WHERE h.user_id = $1 AND h.type = $2 AND h.deleted = 0" },
	[PG_DATA_UPSERT] = { "data_write",
	    "INSERT INTO data_heads (user_id, type, version, key_version, "
	    "size, updated_at, updated_by_device, deleted) "
	    "VALUES ($1, $2, $3::bigint, $4::integer, $5::bigint, $6::bigint, "
	    "$7, $8::integer) "
	    "ON CONFLICT (user_id, type) DO UPDATE SET "
	    "version = excluded.version, key_version = excluded.key_version, "
	    "size = excluded.size, updated_at = excluded.updated_at, "
	    "updated_by_device = excluded.updated_by_device, "
	    "deleted = excluded.deleted" },
	[PG_REV_INSERT] = { "data_write",
	    "INSERT INTO data_revisions (user_id, type, version, key_version, "
	    "size, updated_at, updated_by_device, blob) "
	    "VALUES ($1, $2, $3::bigint, $4::integer, $5::bigint, $6::bigint, "
	    "$7, $8)" },
	[PG_REV_PRUNE] = { "data_write",
	    "DELETE FROM data_revisions WHERE user_id = $1 AND type = $2 "
	    "AND version NOT IN (SELECT version FROM data_revisions "
	    "WHERE user_id = $1 AND type = $2 "
	    "ORDER BY version DESC LIMIT $3::integer)" },
	[PG_REV_LIST] = { "revision_list",
	    "SELECT " PG_REV_COLS " FROM data_revisions "
	    "WHERE user_id = $1 AND type = $2 ORDER BY version DESC" },
	[PG_REV_GET] = { "revision_get",
	    "SELECT " PG_REV_COLS ", blob FROM data_revisions "
	    "WHERE user_id = $1 AND type = $2 AND version = $3::bigint" },

	[PG_AUDIT_INSERT] = { "audit_insert",
	    "INSERT INTO audit (user_id, event_type, device_id, ip, "
	    "user_agent, metadata, created_at) "
	    "VALUES ($1, $2, $3, $4, $5, $6, $7::bigint) RETURNING id" },
	[PG_AUDIT_LIST] = { "audit_list",
	    "SELECT id, user_id, event_type, device_id, ip, user_agent, "
	    "metadata, created_at FROM audit WHERE user_id = $1 "
	    "AND id < $2::bigint ORDER BY id DESC LIMIT $3::integer" },

	/* the user's counter row first (the upsert holds its lock until
	 * commit), then the id, the event and the notification, in one
	 * statement; see migrations/pg/001_init.sql */
	[PG_EV_INSERT] = { "event_insert",
	    "WITH c AS (INSERT INTO event_counters AS ec (user_id, last_id) "
	    "VALUES ($1::text, nextval('event_ids')) ON CONFLICT (user_id) "
	    "DO UPDATE SET last_id = greatest(nextval('event_ids'), "
	    "ec.last_id + 1) RETURNING last_id), "
	    "e AS (INSERT INTO events (user_id, id, type, data_type, version, "
	    "origin_device_id, created_at, device_id) SELECT $1::text, "
	    "c.last_id, $2, $3, $4::bigint, $5, $6::bigint, $7 FROM c "
	    "RETURNING id) "
	    "SELECT e.id, pg_notify('" PG_CHANNEL "', $1::text)::text FROM e" },
	[PG_EV_LIST] = { "event_list",
	    "SELECT id, user_id, type, data_type, version, origin_device_id, "
	    "created_at, device_id FROM events WHERE user_id = $1 "
	    "AND id > $2::bigint ORDER BY id LIMIT $3::integer" },
	[PG_EV_LAST] = { "event_last_id",
	    "SELECT id FROM events WHERE user_id = $1 "
	    "ORDER BY id DESC LIMIT 1" },
	[PG_EV_FLOOR] = { "event_floor",
	    "SELECT pruned_through FROM event_floors WHERE user_id = $1" },
	/* one statement, so the floors are raised for exactly the rows that
	 * go, whatever commits meanwhile; a batch of the oldest, rows another
	 * instance is pruning skipped (so two never deadlock) */
	[PG_EV_PRUNE] = { "event_prune",
	    "WITH d AS (DELETE FROM events WHERE id IN (SELECT id FROM events "
	    "WHERE created_at < $1::bigint ORDER BY created_at "
	    "LIMIT $2::integer FOR UPDATE SKIP LOCKED) RETURNING user_id, id), "
	    "fl AS (INSERT INTO event_floors AS f (user_id, pruned_through) "
	    "SELECT user_id, max(id) FROM d GROUP BY user_id ORDER BY user_id "
	    "ON CONFLICT (user_id) DO UPDATE SET pruned_through = "
	    "greatest(f.pruned_through, excluded.pruned_through)) "
	    "SELECT count(*) FROM d" },
	[PG_AUDIT_PRUNE] = { "audit_prune",
	    "DELETE FROM audit WHERE id IN (SELECT id FROM audit "
	    "WHERE created_at < $1::bigint ORDER BY created_at "
	    "LIMIT $2::integer FOR UPDATE SKIP LOCKED)" },

	[PG_RATE_GET] = { "rate_get",
	    "SELECT window_start, count, blocked_until FROM rate_limits "
	    "WHERE key = $1" },
	[PG_RATE_PUT] = { "rate_put",
	    "INSERT INTO rate_limits (key, window_start, count, "
	    "blocked_until, expires_at) VALUES ($1, $2::bigint, $3::bigint, "
	    "$4::bigint, $5::bigint) "
	    "ON CONFLICT (key) DO UPDATE SET "
	    "window_start = excluded.window_start, count = excluded.count, "
	    "blocked_until = excluded.blocked_until, "
	    "expires_at = excluded.expires_at" },
	[PG_RATE_DELETE] = { "rate_delete",
	    "DELETE FROM rate_limits WHERE key = $1" },

	[PG_PRUNE_DEVREQ] = { "prune",
	    "DELETE FROM device_requests WHERE expires_at < $1::bigint" },
	[PG_PRUNE_TOKENS] = { "prune",
	    "DELETE FROM tokens WHERE session_id IN (SELECT id FROM sessions "
	    "WHERE " PG_SESS_OLD ")" },
	[PG_PRUNE_SESSIONS] = { "prune",
	    "DELETE FROM sessions WHERE " PG_SESS_OLD },
	[PG_PRUNE_WEBSESS] = { "prune",
	    "DELETE FROM web_sessions WHERE expires_at < $1::bigint" },
	[PG_PRUNE_RATE] = { "prune",
	    "DELETE FROM rate_limits WHERE expires_at < $1::bigint" },
};

struct pg_conn {
	struct store_conn base; /* first: store.h casts between the two */
	struct pg_backend *b;
	PGconn *pg;             /* NULL while disconnected */
	bool prepared[PG__COUNT];
	bool in_tx;             /* begin ran; commit/rollback not yet */
	bool busy;              /* this transaction met 40001 or 40P01 */
	bool escalate;          /* the last transaction was retried */
	bool locked;            /* may hold the writers' advisory lock */
	int64_t failed_at;      /* monotonic ms: a failed connect began */
};

/* Parameters of one statement: text unless given as binary (bytea). */
struct pg_params {
	int n;
	bool bad;                       /* a value did not fit: no query */
	const char *v[PG_MAX_PARAMS];
	int len[PG_MAX_PARAMS];
	int fmt[PG_MAX_PARAMS];
	char num[PG_MAX_PARAMS][24];
	char ua[STORE_UA_MAX + 1];      /* the cleaned user agent */
};

static const struct store_ops pg_ops;

static struct pg_conn *
pq(struct store_conn *c)
{
	return (struct pg_conn *)c;
}

static void
pg_log(const char *what, const char *state, const char *msg)
{
	char line[256];
	size_t i;

	/* one line: libpq's messages end in (and may hold) newlines */
	(void)snprintf(line, sizeof(line), "%s", msg != NULL ? msg : "");
	for (i = 0; line[i] != '\0'; i++)
		if (line[i] == '\n' || line[i] == '\r')
			line[i] = ' ';
	while (i > 0 && line[i - 1] == ' ')
		line[--i] = '\0';
	fprintf(stderr, "store: postgres: %s: %s%s%s\n", what,
	    state != NULL ? state : "", state != NULL ? " " : "", line);
}

static void __attribute__((format(printf, 3, 4)))
pg_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	for (i = 0; err[i] != '\0'; i++)
		if (err[i] == '\n' || err[i] == '\r')
			err[i] = ' ';
	while (i > 0 && err[i - 1] == ' ')
		err[--i] = '\0';
}

/* ---- connecting ---------------------------------------------------------- */

/*
 * Opens a session on conninfo with the settings every session needs. The
 * defaults come before the connection string, so that the string may
 * override them. On failure writes one line into err (never the string).
 */
static PGconn *
pg_connect(const char *conninfo, char *err, size_t errlen)
{
	static const char *const keys[] = {
		"connect_timeout", "keepalives", "keepalives_idle",
		"keepalives_interval", "keepalives_count", "tcp_user_timeout",
		"application_name", "dbname", NULL
	};
	const char *vals[] = {
		"3", "1", "10", "5", "3", "20000", "flamingo-syncd", conninfo,
		NULL
	};
	PGconn *pg;
	PGresult *res;

	pg = PQconnectdbParams(keys, vals, 1);
	if (pg == NULL) {
		pg_err(err, errlen, "postgres: out of memory");
		return NULL;
	}
	if (PQstatus(pg) != CONNECTION_OK) {
		pg_err(err, errlen, "postgres: cannot connect: %s",
		    PQerrorMessage(pg));
		PQfinish(pg);
		return NULL;
	}
	if (PQserverVersion(pg) < 120000) {
		pg_err(err, errlen, "postgres: server version %d is too old "
		    "(12 or newer needed)", PQserverVersion(pg));
		PQfinish(pg);
		return NULL;
	}
	res = PQexec(pg, pg_session_sql);
	if (PQresultStatus(res) != PGRES_COMMAND_OK) {
		pg_err(err, errlen, "postgres: cannot configure the session: "
		    "%s", PQerrorMessage(pg));
		PQclear(res);
		PQfinish(pg);
		return NULL;
	}
	PQclear(res);
	return pg;
}

static bool
pg_readable(int fd)
{
	struct pollfd pfd = { fd, POLLIN, 0 };

	return fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/*
 * Makes q's session usable: reconnects a broken one, unless a transaction
 * was open on it (then that transaction is lost: STORE_UNAVAILABLE).
 */
static enum store_status
pg_ensure(struct pg_conn *q)
{
	char err[512];
	int64_t now;

	/*
	 * Between transactions the server sends nothing unasked on these
	 * sessions (they do not LISTEN): anything readable now is its goodbye
	 * (a restart, a terminated backend) or at worst a notice. Either way
	 * the session is replaced before use, rather than failing the
	 * request that would use it.
	 */
	if (q->pg != NULL && !q->in_tx && PQstatus(q->pg) == CONNECTION_OK &&
	    !pg_readable(PQsocket(q->pg)))
		return STORE_OK;
	if (q->pg != NULL && q->in_tx && PQstatus(q->pg) == CONNECTION_OK)
		return STORE_OK;
	if (q->in_tx)
		return STORE_UNAVAILABLE;
	if (q->pg != NULL) {
		PQfinish(q->pg);
		q->pg = NULL;
	}
	now = time_mono_ms();
	if (q->failed_at != 0 && now < q->failed_at + PG_RECONNECT_MS &&
	    atomic_load(&q->b->up_since) <= q->failed_at)
		return STORE_UNAVAILABLE;
	memset(q->prepared, 0, sizeof(q->prepared));
	q->locked = false;
	q->pg = pg_connect(q->b->conninfo, err, sizeof(err));
	if (q->pg == NULL) {
		/* the attempt's start: a session that connected while
		 * this attempt was failing lifts the wait too */
		q->failed_at = now;
		fprintf(stderr, "store: %s\n", err);
		return STORE_UNAVAILABLE;
	}
	q->failed_at = 0;
	atomic_store(&q->b->up_since, time_mono_ms());
	return STORE_OK;
}

/* ---- running statements --------------------------------------------------- */

/* Maps a failed result (or none) to a store status, logging hard errors. */
static enum store_status
pg_status(struct pg_conn *q, const char *what, PGresult *res)
{
	const char *state = res != NULL ?
	    PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

	if (state == NULL || PQstatus(q->pg) != CONNECTION_OK) {
		/* no answer: the connection is gone */
		pg_log(what, state, PQerrorMessage(q->pg));
		return STORE_UNAVAILABLE;
	}
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0) {
		q->busy = true;
		return STORE_BUSY;
	}
	if (strcmp(state, "23505") == 0)
		return STORE_EXISTS;
	if (strcmp(state, "23503") == 0)
		return STORE_NOT_FOUND; /* the parent row is missing */
	if (strncmp(state, "08", 2) == 0 ||    /* connection exception */
	    strncmp(state, "53", 2) == 0 ||    /* insufficient resources */
	    strncmp(state, "57P", 3) == 0 ||   /* shutting down, crashed */
	    strcmp(state, "57014") == 0 ||     /* statement timeout */
	    strcmp(state, "55P03") == 0 ||     /* lock timeout */
	    strcmp(state, "25006") == 0 ||     /* read-only (a standby) */
	    strcmp(state, "25P03") == 0) {     /* idle-in-tx timeout */
		pg_log(what, state, PQresultErrorField(res,
		    PG_DIAG_MESSAGE_PRIMARY));
		return STORE_UNAVAILABLE;
	}
	/* data exceptions name the value: the code alone is enough */
	pg_log(what, state, strncmp(state, "22", 2) == 0 ? "data exception" :
	    PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
	return STORE_ERROR;
}

/*
 * Runs statement id with params p (NULL: none), binary results. On
 * STORE_OK *out is the result (the caller PQclear()s it); PQntuples tells
 * whether there were rows.
 */
static enum store_status
pg_exec(struct pg_conn *q, enum pg_stmt id, const struct pg_params *p,
    PGresult **out)
{
	char name[16];
	PGresult *res;
	ExecStatusType es;
	enum store_status rc;

	*out = NULL;
	if (p != NULL && p->bad) {
		pg_log(pg_sql[id].name, NULL, "a parameter is too long, "
		    "unterminated or not text");
		return STORE_ERROR;
	}
	if ((rc = pg_ensure(q)) != STORE_OK)
		return rc;
	(void)snprintf(name, sizeof(name), "s%d", (int)id);
	if (!q->prepared[id]) {
		res = PQprepare(q->pg, name, pg_sql[id].sql, 0, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			rc = pg_status(q, pg_sql[id].name, res);
			PQclear(res);
			return rc;
		}
		PQclear(res);
		q->prepared[id] = true;
	}
	res = PQexecPrepared(q->pg, name, p != NULL ? p->n : 0,
	    p != NULL ? p->v : NULL, p != NULL ? p->len : NULL,
	    p != NULL ? p->fmt : NULL, 1);
	es = PQresultStatus(res);
	if (es != PGRES_TUPLES_OK && es != PGRES_COMMAND_OK) {
		rc = pg_status(q, pg_sql[id].name, res);
		PQclear(res);
		return rc;
	}
	*out = res;
	return STORE_OK;
}

/* Runs a statement for its effect. */
static enum store_status
pg_run(struct pg_conn *q, enum pg_stmt id, const struct pg_params *p)
{
	PGresult *res;
	enum store_status rc;

	rc = pg_exec(q, id, p, &res);
	PQclear(res);
	return rc;
}

/* As pg_run, and STORE_NOT_FOUND when no row changed. */
static enum store_status
pg_run_changed(struct pg_conn *q, enum pg_stmt id, const struct pg_params *p)
{
	PGresult *res;
	enum store_status rc;
	const char *n;

	if ((rc = pg_exec(q, id, p, &res)) != STORE_OK)
		return rc;
	n = PQcmdTuples(res);
	if (n == NULL || n[0] == '\0' || strcmp(n, "0") == 0)
		rc = STORE_NOT_FOUND;
	PQclear(res);
	return rc;
}

/* Runs a query for one row: STORE_NOT_FOUND without. */
static enum store_status
pg_row(struct pg_conn *q, enum pg_stmt id, const struct pg_params *p,
    PGresult **out)
{
	enum store_status rc;

	if ((rc = pg_exec(q, id, p, out)) != STORE_OK)
		return rc;
	if (PQntuples(*out) < 1) {
		PQclear(*out);
		*out = NULL;
		return STORE_NOT_FOUND;
	}
	return STORE_OK;
}

/* Runs a plain command (BEGIN, COMMIT, ...) outside the statement cache. */
static enum store_status
pg_command(struct pg_conn *q, const char *what, const char *sql,
    PGresult **keep)
{
	PGresult *res;
	enum store_status rc = STORE_OK;
	ExecStatusType es;

	if (keep != NULL)
		*keep = NULL;
	res = PQexec(q->pg, sql);
	es = PQresultStatus(res);
	if (es != PGRES_COMMAND_OK && es != PGRES_TUPLES_OK)
		rc = pg_status(q, what, res);
	if (rc == STORE_OK && keep != NULL) {
		*keep = res;
		return rc;
	}
	PQclear(res);
	return rc;
}

/* ---- parameters ------------------------------------------------------------ */

static void
p_init(struct pg_params *p)
{
	p->n = 0;
	p->bad = false;
}

static int
p_slot(struct pg_params *p)
{
	if (p->n >= PG_MAX_PARAMS) {
		p->bad = true;
		return -1;
	}
	p->v[p->n] = NULL;
	p->len[p->n] = 0;
	p->fmt[p->n] = 0;
	return p->n++;
}

static void
p_null(struct pg_params *p)
{
	(void)p_slot(p);
}

/* Length of the valid UTF-8 prefix of s[0..n) (PostgreSQL text must be). */
static size_t
utf8_valid_prefix(const unsigned char *s, size_t n)
{
	size_t i = 0, k, need;
	unsigned c;

	while (i < n) {
		c = s[i];
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			need = 1;
		else if (c >= 0xe0 && c <= 0xef)
			need = 2;
		else if (c >= 0xf0 && c <= 0xf4)
			need = 3;
		else
			return i;
		if (need >= n - i)
			return i;       /* cut short */
		for (k = 1; k <= need; k++)
			if ((s[i + k] & 0xc0) != 0x80)
				return i;
		/* overlongs and surrogates */
		if ((c == 0xe0 && s[i + 1] < 0xa0) ||
		    (c == 0xed && s[i + 1] > 0x9f) ||
		    (c == 0xf0 && s[i + 1] < 0x90) ||
		    (c == 0xf4 && s[i + 1] > 0x8f))
			return i;
		i += need + 1;
	}
	return i;
}

/*
 * A string of at most cap - 1 bytes (a field of a record, or a bounded
 * argument); longer, unterminated or not UTF-8 is an error, never a silent
 * cut. NULL binds NULL.
 */
static void
p_str(struct pg_params *p, const char *s, size_t cap)
{
	size_t n;
	int i;

	if ((i = p_slot(p)) < 0 || s == NULL)
		return;
	n = strnlen(s, cap);
	if (n >= cap || utf8_valid_prefix((const unsigned char *)s, n) != n) {
		p->bad = true;
		return;
	}
	p->v[i] = s;
}

/* As p_str, with "" bound as NULL (optional references). */
static void
p_opt(struct pg_params *p, const char *s, size_t cap)
{
	if (s == NULL || s[0] == '\0')
		p_null(p);
	else
		p_str(p, s, cap);
}

/*
 * A lookup key: any length binds, and one that is not UTF-8 (a path
 * segment, say) binds a value no stored key has ("\x01"), so that it
 * matches nothing, as on SQLite.
 */
static void
p_key(struct pg_params *p, const char *s)
{
	int i;

	if ((i = p_slot(p)) < 0 || s == NULL)
		return;
	if (utf8_valid_prefix((const unsigned char *)s, strlen(s)) !=
	    strlen(s))
		s = "\x01";
	p->v[i] = s;
}

static void
p_i64(struct pg_params *p, int64_t v)
{
	int i;

	if ((i = p_slot(p)) < 0)
		return;
	(void)snprintf(p->num[i], sizeof(p->num[i]), "%lld", (long long)v);
	p->v[i] = p->num[i];
}

static void
p_blob(struct pg_params *p, const void *b, size_t n)
{
	int i;

	if ((i = p_slot(p)) < 0)
		return;
	if (n > INT_MAX || (b == NULL && n > 0)) {
		p->bad = true;
		return;
	}
	p->v[i] = n > 0 ? b : "";   /* a NULL value would bind SQL NULL */
	p->len[i] = (int)n;
	p->fmt[i] = 1;
}

static void
p_hash(struct pg_params *p, const uint8_t *h)
{
	p_blob(p, h, TOKEN_HASH_LEN);
}

/* A data type as its stored name. */
static void
p_type(struct pg_params *p, int type)
{
	const char *name;
	int i;

	if ((i = p_slot(p)) < 0)
		return;
	if ((name = datatype_name(type)) == NULL) {
		p->bad = true;
		return;
	}
	p->v[i] = name;
}

/* User agents come from clients: cut at STORE_UA_MAX bytes and at the
 * first byte that is not UTF-8. */
static void
p_agent(struct pg_params *p, const char *ua)
{
	size_t n;
	int i;

	if ((i = p_slot(p)) < 0 || ua == NULL)
		return;
	n = strnlen(ua, STORE_UA_MAX);
	n = utf8_valid_prefix((const unsigned char *)ua, n);
	memcpy(p->ua, ua, n);
	p->ua[n] = '\0';
	p->v[i] = p->ua;
}

/* ---- reading columns (binary format) ------------------------------------- */

/* An integer column (int2, int4 or int8); NULL reads as 0. */
static int
col_i64(const PGresult *res, int row, int col, int64_t *out)
{
	const unsigned char *p;
	int len;
	uint64_t v = 0;
	int i;

	*out = 0;
	if (PQgetisnull(res, row, col))
		return 0;
	p = (const unsigned char *)PQgetvalue(res, row, col);
	len = PQgetlength(res, row, col);
	if (len != 2 && len != 4 && len != 8)
		return -1;
	for (i = 0; i < len; i++)
		v = (v << 8) | p[i];
	if (len == 2)
		*out = (int16_t)(uint16_t)v;
	else if (len == 4)
		*out = (int32_t)(uint32_t)v;
	else
		*out = (int64_t)v;
	return 0;
}

static int
col_int(const PGresult *res, int row, int col, int *out)
{
	int64_t v;

	if (col_i64(res, row, col, &v) != 0 || v < INT_MIN || v > INT_MAX)
		return -1;
	*out = (int)v;
	return 0;
}

/* Copies a text column into dst (capacity cap); NULL reads as "". */
static int
col_str(const PGresult *res, int row, int col, char *dst, size_t cap)
{
	int n;

	dst[0] = '\0';
	if (PQgetisnull(res, row, col))
		return 0;
	n = PQgetlength(res, row, col);
	if (n < 0 || (size_t)n >= cap)
		return -1;
	memcpy(dst, PQgetvalue(res, row, col), (size_t)n);
	dst[n] = '\0';
	return 0;
}

/* A text column copied into the arena; NULL stays NULL. */
static int
col_astr(const PGresult *res, int row, int col, struct arena *a, char **out)
{
	int n;

	*out = NULL;
	if (PQgetisnull(res, row, col))
		return 0;
	n = PQgetlength(res, row, col);
	if (n < 0 || (*out = arena_memdup(a, PQgetvalue(res, row, col),
	    (size_t)n)) == NULL)
		return -1;
	return 0;
}

/* A bytea column copied into the arena (never NULL, even when empty). */
static int
col_ablob(const PGresult *res, int row, int col, struct arena *a,
    unsigned char **out, size_t *len)
{
	int n;

	*out = NULL;
	*len = 0;
	if (PQgetisnull(res, row, col))
		return -1;
	n = PQgetlength(res, row, col);
	if (n < 0)
		return -1;
	if ((*out = arena_memdup(a, PQgetvalue(res, row, col), (size_t)n)) ==
	    NULL)
		return -1;
	*len = (size_t)n;
	return 0;
}

/* A 32-byte hash column; NULL only when present is given. */
static int
col_hash(const PGresult *res, int row, int col, uint8_t *dst, bool *present)
{
	if (PQgetisnull(res, row, col)) {
		memset(dst, 0, TOKEN_HASH_LEN);
		if (present != NULL)
			*present = false;
		return present != NULL ? 0 : -1;
	}
	if (PQgetlength(res, row, col) != TOKEN_HASH_LEN)
		return -1;
	memcpy(dst, PQgetvalue(res, row, col), TOKEN_HASH_LEN);
	if (present != NULL)
		*present = true;
	return 0;
}

/* A data type name column; NULL reads as -1 when allowed. */
static int
col_type(const PGresult *res, int row, int col, int *out, bool nullable)
{
	char name[32];

	if (PQgetisnull(res, row, col)) {
		*out = -1;
		return nullable ? 0 : -1;
	}
	if (col_str(res, row, col, name, sizeof(name)) != 0)
		return -1;
	*out = datatype_parse(name);
	return *out < 0 ? -1 : 0;
}

/* The outcome of a run of column reads (or'ed together). */
static enum store_status
pg_read(enum pg_stmt id, int e)
{
	if (e == 0)
		return STORE_OK;
	pg_log(pg_sql[id].name, NULL, "stored value does not fit its field, "
	    "or out of memory");
	return STORE_ERROR;
}

/* ---- one op's several statements as one unit -------------------------- */

/*
 * Inside a transaction an op's statements are already one unit (an error
 * aborts the transaction, which store_tx rolls back). Outside, the op
 * makes its own transaction; *own tells pg_unit_end which it was.
 */
static enum store_status
pg_unit_begin(struct pg_conn *q, bool *own)
{
	enum store_status rc;

	*own = false;
	if ((rc = pg_ensure(q)) != STORE_OK)
		return rc;
	if (q->in_tx)
		return STORE_OK;
	if ((rc = pg_command(q, "begin", "BEGIN", NULL)) != STORE_OK)
		return rc;
	*own = true;
	return STORE_OK;
}

static enum store_status
pg_unit_end(struct pg_conn *q, bool own, enum store_status rc)
{
	if (!own)
		return rc;
	if (rc == STORE_OK)
		return pg_command(q, "commit", "COMMIT", NULL);
	if (PQstatus(q->pg) == CONNECTION_OK)
		(void)pg_command(q, "rollback", "ROLLBACK", NULL);
	return rc;
}

/* ---- connections and transactions -------------------------------------- */

static enum store_status
pg_conn_open(void *cls, struct store_conn **out)
{
	struct pg_conn *q;

	*out = NULL;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return STORE_ERROR;
	q->base.ops = &pg_ops;
	q->b = cls;
	/* a server that is down now is tried again by the first operation */
	(void)pg_ensure(q);
	*out = &q->base;
	return STORE_OK;
}

static void
pg_conn_close(struct store_conn *c)
{
	struct pg_conn *q;

	if (c == NULL)
		return;
	q = pq(c);
	if (q->pg != NULL)
		PQfinish(q->pg);
	free(q);
}

static enum store_status
pg_ping(struct store_conn *c)
{
	return pg_run(pq(c), PG_PING, NULL);
}

/*
 * Runs the statements of sql in one round trip. STORE_OK when all
 * succeeded; else the status of the first failure (the server skips the
 * rest).
 */
static enum store_status
pg_multi(struct pg_conn *q, const char *what, const char *sql)
{
	PGresult *res;
	ExecStatusType es;
	enum store_status rc = STORE_OK;
	bool got = false;

	if (PQsendQuery(q->pg, sql) == 0)
		return pg_status(q, what, NULL);
	while ((res = PQgetResult(q->pg)) != NULL) {
		es = PQresultStatus(res);
		if (rc == STORE_OK && es != PGRES_COMMAND_OK &&
		    es != PGRES_TUPLES_OK)
			rc = pg_status(q, what, res);
		got = true;
		PQclear(res);
	}
	if (!got && rc == STORE_OK)
		rc = pg_status(q, what, NULL);
	return rc;
}

static enum store_status
pg_begin(struct store_conn *c, bool write)
{
	struct pg_conn *q = pq(c);
	enum store_status rc;

	if (q->in_tx) {
		pg_log("begin", NULL, "a transaction is already open");
		return STORE_ERROR;
	}
	if ((rc = pg_ensure(q)) != STORE_OK)
		return rc;
	q->busy = false;
	/* from here on something may be open: rollback ends it */
	q->in_tx = true;
	if (!write)
		return pg_command(q, "begin",
		    "BEGIN ISOLATION LEVEL REPEATABLE READ", NULL);
	/*
	 * Writers share one advisory lock; a writer whose last attempt met a
	 * serialization failure takes it alone. PostgreSQL queues new shared
	 * requests behind a waiting exclusive one, so a retry runs by itself
	 * as soon as the writers ahead of it finish: it cannot starve. The
	 * lock is a session lock taken before BEGIN (in its own round trip:
	 * BEGIN must come first in a query string), so that the
	 * transaction's snapshot is taken after the wait, not before it.
	 */
	q->locked = true;
	rc = pg_command(q, "begin", q->escalate ?
	    "SELECT pg_advisory_lock(" PG_LOCK_WRITE ")" :
	    "SELECT pg_advisory_lock_shared(" PG_LOCK_WRITE ")", NULL);
	if (rc != STORE_OK)
		return rc;
	return pg_command(q, "begin", "BEGIN ISOLATION LEVEL SERIALIZABLE",
	    NULL);
}

static enum store_status
pg_commit(struct store_conn *c)
{
	struct pg_conn *q = pq(c);
	PGresult *res;
	ExecStatusType es;
	enum store_status rc = STORE_OK;
	int n = 0;

	if (!q->in_tx || q->pg == NULL)
		return STORE_ERROR;
	/* the lock goes in the same round trip; COMMIT's own result alone
	 * decides the outcome (a failed unlock is logged, and the next
	 * rollback or commit releases it) */
	if (PQsendQuery(q->pg, q->locked ?
	    "COMMIT; SELECT pg_advisory_unlock_all()" : "COMMIT") == 0)
		return pg_status(q, "commit", NULL);
	while ((res = PQgetResult(q->pg)) != NULL) {
		es = PQresultStatus(res);
		if (n == 0) {
			if (es != PGRES_COMMAND_OK) {
				rc = pg_status(q, "commit", res);
			} else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
				/* COMMIT of a failed transaction "succeeds"
				 * as a ROLLBACK */
				pg_log("commit", NULL, "the transaction had "
				    "failed");
				rc = STORE_ERROR;
			}
		} else if (es != PGRES_TUPLES_OK) {
			pg_log("commit", PQresultErrorField(res,
			    PG_DIAG_SQLSTATE), "cannot release the write lock");
		} else {
			q->locked = false;
		}
		PQclear(res);
		n++;
	}
	if (n == 0)
		rc = pg_status(q, "commit", NULL);
	if (rc == STORE_OK) {
		q->in_tx = false;
		q->escalate = false;
		if (PQstatus(q->pg) != CONNECTION_OK)
			q->locked = false;      /* went with the session */
	}
	/* else store_tx rolls back, which also releases the lock */
	return rc;
}

static void
pg_rollback(struct store_conn *c)
{
	struct pg_conn *q = pq(c);
	PGTransactionStatusType ts;
	bool open;

	if (!q->in_tx)
		return;
	q->in_tx = false;
	/* a retry after a serialization failure goes alone (see pg_begin) */
	q->escalate = q->busy;
	q->busy = false;
	if (q->pg == NULL || PQstatus(q->pg) != CONNECTION_OK) {
		q->locked = false;      /* went with the session */
		return;
	}
	ts = PQtransactionStatus(q->pg);
	open = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
	if (open && q->locked)
		(void)pg_multi(q, "rollback",
		    "ROLLBACK; SELECT pg_advisory_unlock_all()");
	else if (open)
		(void)pg_command(q, "rollback", "ROLLBACK", NULL);
	else if (q->locked)
		(void)pg_command(q, "rollback",
		    "SELECT pg_advisory_unlock_all()", NULL);
	q->locked = false;
}

/* ---- users ----------------------------------------------------------------- */

static enum store_status
read_user(const PGresult *res, struct store_user *u)
{
	int e = 0;

	e |= col_str(res, 0, 0, u->id, sizeof(u->id));
	e |= col_str(res, 0, 1, u->email, sizeof(u->email));
	e |= col_str(res, 0, 2, u->password_hash, sizeof(u->password_hash));
	e |= col_i64(res, 0, 3, &u->created_at);
	return pg_read(PG_USER_BY_ID, e);
}

static enum store_status
pg_user_insert(struct store_conn *c, const struct store_user *u)
{
	struct pg_params p;

	p_init(&p);
	p_str(&p, u->id, sizeof(u->id));
	p_str(&p, u->email, sizeof(u->email));
	p_str(&p, u->password_hash, sizeof(u->password_hash));
	p_i64(&p, u->created_at);
	return pg_run(pq(c), PG_USER_INSERT, &p);
}

static enum store_status
pg_user_get(struct pg_conn *q, enum pg_stmt id, const char *key,
    struct store_user *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_key(&p, key);
	if ((rc = pg_row(q, id, &p, &res)) == STORE_OK)
		rc = read_user(res, out);
	PQclear(res);
	return rc;
}

static enum store_status
pg_user_by_email(struct store_conn *c, const char *email,
    struct store_user *out)
{
	return pg_user_get(pq(c), PG_USER_BY_EMAIL, email, out);
}

static enum store_status
pg_user_by_id(struct store_conn *c, const char *id, struct store_user *out)
{
	return pg_user_get(pq(c), PG_USER_BY_ID, id, out);
}

static enum store_status
pg_user_set_password(struct store_conn *c, const char *id,
    const char *password_hash)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, id);
	p_str(&p, password_hash, STORE_PWHASH_MAX + 1);
	return pg_run_changed(pq(c), PG_USER_SET_PASSWORD, &p);
}

/* ---- web sessions ---------------------------------------------------- */

static enum store_status
pg_websess_insert(struct store_conn *c, const struct store_websess *s)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, s->hash);
	p_str(&p, s->user_id, sizeof(s->user_id));
	p_i64(&p, s->created_at);
	p_i64(&p, s->last_used_at);
	p_i64(&p, s->expires_at);
	return pg_run(pq(c), PG_WS_INSERT, &p);
}

static enum store_status
pg_websess_get(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_websess *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	int e = 0;

	p_init(&p);
	p_hash(&p, hash);
	if ((rc = pg_row(pq(c), PG_WS_GET, &p, &res)) == STORE_OK) {
		memcpy(out->hash, hash, TOKEN_HASH_LEN);
		e |= col_str(res, 0, 0, out->user_id, sizeof(out->user_id));
		e |= col_i64(res, 0, 1, &out->created_at);
		e |= col_i64(res, 0, 2, &out->last_used_at);
		e |= col_i64(res, 0, 3, &out->expires_at);
		rc = pg_read(PG_WS_GET, e);
	}
	PQclear(res);
	return rc;
}

static enum store_status
pg_websess_touch(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    int64_t now)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, hash);
	p_i64(&p, now);
	return pg_run_changed(pq(c), PG_WS_TOUCH, &p);
}

static enum store_status
pg_by_hash(struct pg_conn *q, enum pg_stmt id, const uint8_t *hash)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, hash);
	return pg_run_changed(q, id, &p);
}

static enum store_status
pg_websess_delete(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN])
{
	return pg_by_hash(pq(c), PG_WS_DELETE, hash);
}

static enum store_status
pg_websess_delete_others(struct store_conn *c, const char *user_id,
    const uint8_t *keep)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, user_id);
	if (keep != NULL)
		p_hash(&p, keep);
	else
		p_null(&p);
	return pg_run(pq(c), PG_WS_DELETE_OTHERS, &p);
}

/* ---- device requests ------------------------------------------------------ */

static enum store_status
read_devreq(const PGresult *res, struct store_devreq *r)
{
	int e = 0;

	e |= col_i64(res, 0, 0, &r->id);
	e |= col_hash(res, 0, 1, r->temp_hash, NULL);
	e |= col_str(res, 0, 2, r->user_code, sizeof(r->user_code));
	e |= col_str(res, 0, 3, r->device_name, sizeof(r->device_name));
	e |= col_str(res, 0, 4, r->platform, sizeof(r->platform));
	e |= col_str(res, 0, 5, r->app_version, sizeof(r->app_version));
	e |= col_str(res, 0, 6, r->ip, sizeof(r->ip));
	e |= col_i64(res, 0, 7, &r->created_at);
	e |= col_i64(res, 0, 8, &r->expires_at);
	e |= col_int(res, 0, 9, &r->state);
	e |= col_str(res, 0, 10, r->user_id, sizeof(r->user_id));
	e |= col_str(res, 0, 11, r->device_id, sizeof(r->device_id));
	e |= col_int(res, 0, 12, &r->interval_s);
	e |= col_i64(res, 0, 13, &r->last_poll_at);
	return pg_read(PG_DR_BY_TEMP, e);
}

static enum store_status
pg_devreq_insert(struct store_conn *c, struct store_devreq *r)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_hash(&p, r->temp_hash);
	p_str(&p, r->user_code, sizeof(r->user_code));
	p_str(&p, r->device_name, sizeof(r->device_name));
	p_str(&p, r->platform, sizeof(r->platform));
	p_str(&p, r->app_version, sizeof(r->app_version));
	p_str(&p, r->ip, sizeof(r->ip));
	p_i64(&p, r->created_at);
	p_i64(&p, r->expires_at);
	p_i64(&p, r->state);
	p_opt(&p, r->user_id, sizeof(r->user_id));
	p_opt(&p, r->device_id, sizeof(r->device_id));
	p_i64(&p, r->interval_s);
	p_i64(&p, r->last_poll_at);
	if ((rc = pg_row(pq(c), PG_DR_INSERT, &p, &res)) == STORE_OK)
		rc = pg_read(PG_DR_INSERT, col_i64(res, 0, 0, &r->id));
	PQclear(res);
	return rc;
}

static enum store_status
pg_devreq_get(struct pg_conn *q, enum pg_stmt id, struct pg_params *p,
    struct store_devreq *out)
{
	PGresult *res;
	enum store_status rc;

	if ((rc = pg_row(q, id, p, &res)) == STORE_OK)
		rc = read_devreq(res, out);
	PQclear(res);
	return rc;
}

static enum store_status
pg_devreq_by_temp(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_devreq *out)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, hash);
	return pg_devreq_get(pq(c), PG_DR_BY_TEMP, &p, out);
}

static enum store_status
pg_devreq_by_code(struct store_conn *c, const char *user_code,
    struct store_devreq *out)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, user_code);
	return pg_devreq_get(pq(c), PG_DR_BY_CODE, &p, out);
}

static enum store_status
pg_devreq_update(struct store_conn *c, const struct store_devreq *r)
{
	struct pg_params p;

	p_init(&p);
	p_i64(&p, r->id);
	p_i64(&p, r->state);
	p_opt(&p, r->user_id, sizeof(r->user_id));
	p_opt(&p, r->device_id, sizeof(r->device_id));
	p_i64(&p, r->interval_s);
	p_i64(&p, r->last_poll_at);
	return pg_run_changed(pq(c), PG_DR_UPDATE, &p);
}

/* ---- devices ---------------------------------------------------------------- */

/* Reads the PG_DEV_COLS of a row starting at column i. */
static int
read_device(const PGresult *res, int row, int i, struct store_device *d)
{
	int e = 0;

	e |= col_str(res, row, i, d->id, sizeof(d->id));
	e |= col_str(res, row, i + 1, d->user_id, sizeof(d->user_id));
	e |= col_str(res, row, i + 2, d->name, sizeof(d->name));
	e |= col_str(res, row, i + 3, d->platform, sizeof(d->platform));
	e |= col_str(res, row, i + 4, d->app_version, sizeof(d->app_version));
	e |= col_int(res, row, i + 5, &d->status);
	e |= col_i64(res, row, i + 6, &d->created_at);
	e |= col_i64(res, row, i + 7, &d->last_seen_at);
	e |= col_str(res, row, i + 8, d->last_ip, sizeof(d->last_ip));
	return e;
}

static enum store_status
pg_device_insert(struct store_conn *c, const struct store_device *d)
{
	struct pg_params p;

	p_init(&p);
	p_str(&p, d->id, sizeof(d->id));
	p_str(&p, d->user_id, sizeof(d->user_id));
	p_str(&p, d->name, sizeof(d->name));
	p_str(&p, d->platform, sizeof(d->platform));
	p_str(&p, d->app_version, sizeof(d->app_version));
	p_i64(&p, d->status);
	p_i64(&p, d->created_at);
	p_i64(&p, d->last_seen_at);
	p_str(&p, d->last_ip, sizeof(d->last_ip));
	return pg_run(pq(c), PG_DEV_INSERT, &p);
}

static enum store_status
pg_device_get(struct store_conn *c, const char *user_id, const char *id,
    struct store_device *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_key(&p, user_id);
	p_key(&p, id);
	if ((rc = pg_row(pq(c), PG_DEV_GET, &p, &res)) == STORE_OK)
		rc = pg_read(PG_DEV_GET, read_device(res, 0, 0, out));
	PQclear(res);
	return rc;
}

static enum store_status
pg_device_list(struct store_conn *c, const char *user_id, struct arena *a,
    struct store_device **out, size_t *n)
{
	struct pg_params p;
	PGresult *res;
	struct store_device *v;
	enum store_status rc;
	int rows, i;

	*out = NULL;
	*n = 0;
	p_init(&p);
	p_key(&p, user_id);
	if ((rc = pg_exec(pq(c), PG_DEV_LIST, &p, &res)) != STORE_OK)
		return rc;
	rows = PQntuples(res);
	if (rows > 0) {
		if ((v = arena_calloc(a, (size_t)rows, sizeof(*v))) == NULL) {
			rc = pg_read(PG_DEV_LIST, -1);
			goto done;
		}
		for (i = 0; i < rows; i++)
			if ((rc = pg_read(PG_DEV_LIST, read_device(res, i, 0,
			    &v[i]))) != STORE_OK)
				goto done;
		*out = v;
		*n = (size_t)rows;
	}
done:
	PQclear(res);
	return rc;
}

static enum store_status
pg_device_set_status(struct store_conn *c, const char *user_id,
    const char *id, int status)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, user_id);
	p_key(&p, id);
	p_i64(&p, status);
	return pg_run_changed(pq(c), PG_DEV_SET_STATUS, &p);
}

static enum store_status
pg_device_touch(struct store_conn *c, const char *id, int64_t now,
    const char *ip)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, id);
	p_i64(&p, now);
	p_str(&p, ip != NULL ? ip : "", STORE_IP_MAX + 1);
	return pg_run_changed(pq(c), PG_DEV_TOUCH, &p);
}

/* ---- sessions and tokens ------------------------------------------------- */

static enum store_status
pg_session_insert(struct store_conn *c, struct store_session *s)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_str(&p, s->user_id, sizeof(s->user_id));
	p_str(&p, s->device_id, sizeof(s->device_id));
	p_i64(&p, s->created_at);
	p_i64(&p, s->expires_at);
	p_i64(&p, s->revoked_at);
	if ((rc = pg_row(pq(c), PG_SESS_INSERT, &p, &res)) == STORE_OK)
		rc = pg_read(PG_SESS_INSERT, col_i64(res, 0, 0, &s->id));
	PQclear(res);
	return rc;
}

static enum store_status
pg_session_revoke(struct store_conn *c, int64_t id, int64_t now)
{
	struct pg_params p;

	p_init(&p);
	p_i64(&p, id);
	p_i64(&p, now);
	return pg_run_changed(pq(c), PG_SESS_REVOKE, &p);
}

static enum store_status
pg_session_revoke_device(struct store_conn *c, const char *device_id,
    int64_t now)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, device_id);
	p_i64(&p, now);
	return pg_run(pq(c), PG_SESS_REVOKE_DEVICE, &p);
}

static enum store_status
pg_token_insert(struct store_conn *c, const struct store_token *t)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, t->hash);
	p_i64(&p, t->session_id);
	p_i64(&p, t->created_at);
	p_i64(&p, t->used ? 1 : 0);
	if (t->has_successor)
		p_hash(&p, t->successor);
	else
		p_null(&p);
	p_i64(&p, t->grace_until);
	return pg_run(pq(c), PG_TOK_INSERT, &p);
}

static enum store_status
pg_token_lookup(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN],
    struct store_token *tok, struct store_session *sess,
    struct store_device *dev)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	int64_t used = 0;
	int e = 0;

	p_init(&p);
	p_hash(&p, hash);
	if ((rc = pg_row(pq(c), PG_TOK_LOOKUP, &p, &res)) != STORE_OK)
		return rc;
	if (tok != NULL) {
		memcpy(tok->hash, hash, TOKEN_HASH_LEN);
		e |= col_i64(res, 0, 0, &tok->session_id);
		e |= col_i64(res, 0, 1, &tok->created_at);
		e |= col_i64(res, 0, 2, &used);
		tok->used = used != 0;
		e |= col_hash(res, 0, 3, tok->successor, &tok->has_successor);
		e |= col_i64(res, 0, 4, &tok->grace_until);
	}
	if (sess != NULL) {
		e |= col_i64(res, 0, 0, &sess->id);
		e |= col_str(res, 0, 5, sess->user_id, sizeof(sess->user_id));
		e |= col_str(res, 0, 6, sess->device_id,
		    sizeof(sess->device_id));
		e |= col_i64(res, 0, 7, &sess->created_at);
		e |= col_i64(res, 0, 8, &sess->expires_at);
		e |= col_i64(res, 0, 9, &sess->revoked_at);
	}
	if (dev != NULL)
		e |= read_device(res, 0, 10, dev);
	rc = pg_read(PG_TOK_LOOKUP, e);
	PQclear(res);
	return rc;
}

static enum store_status
pg_token_update(struct store_conn *c, const struct store_token *t)
{
	struct pg_params p;

	p_init(&p);
	p_hash(&p, t->hash);
	p_i64(&p, t->used ? 1 : 0);
	if (t->has_successor)
		p_hash(&p, t->successor);
	else
		p_null(&p);
	p_i64(&p, t->grace_until);
	return pg_run_changed(pq(c), PG_TOK_UPDATE, &p);
}

static enum store_status
pg_token_delete(struct store_conn *c, const uint8_t hash[TOKEN_HASH_LEN])
{
	return pg_by_hash(pq(c), PG_TOK_DELETE, hash);
}

/* ---- sync configuration ------------------------------------------------------ */

static enum store_status
pg_config_get(struct store_conn *c, const char *user_id,
    struct store_config *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	int64_t v;
	int t, e = 0;

	for (t = 0; t < DT_COUNT; t++)
		out->enabled[t] = true;
	out->updated_at = 0;
	p_init(&p);
	p_key(&p, user_id);
	rc = pg_row(pq(c), PG_CFG_GET, &p, &res);
	if (rc == STORE_NOT_FOUND)
		return STORE_OK;        /* never set: the defaults */
	if (rc != STORE_OK)
		return rc;
	for (t = 0; t < DT_COUNT; t++) {
		e |= col_i64(res, 0, t, &v);
		out->enabled[t] = v != 0;
	}
	e |= col_i64(res, 0, DT_COUNT, &out->updated_at);
	PQclear(res);
	return pg_read(PG_CFG_GET, e);
}

static enum store_status
pg_config_put(struct store_conn *c, const char *user_id,
    const struct store_config *cfg)
{
	struct pg_params p;
	int t;

	p_init(&p);
	p_str(&p, user_id, STORE_ID_LEN + 1);
	for (t = 0; t < DT_COUNT; t++)
		p_i64(&p, cfg->enabled[t] ? 1 : 0);
	p_i64(&p, cfg->updated_at);
	return pg_run(pq(c), PG_CFG_PUT, &p);
}

/* ---- wrapped keys ------------------------------------------------------------ */

static enum store_status
pg_key_current(struct store_conn *c, const char *user_id, struct arena *a,
    struct store_key *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	int e = 0;

	p_init(&p);
	p_key(&p, user_id);
	if ((rc = pg_row(pq(c), PG_KEY_CURRENT, &p, &res)) != STORE_OK)
		return rc;
	e |= col_int(res, 0, 0, &out->version);
	e |= col_ablob(res, 0, 1, a, &out->wrapped, &out->wrapped_len);
	e |= col_astr(res, 0, 2, a, &out->kdf);
	e |= col_i64(res, 0, 3, &out->created_at);
	e |= col_str(res, 0, 4, out->created_by_device,
	    sizeof(out->created_by_device));
	if (out->kdf == NULL)
		e = -1;
	PQclear(res);
	return pg_read(PG_KEY_CURRENT, e);
}

static enum store_status
pg_key_insert(struct store_conn *c, const char *user_id,
    const struct store_key *k)
{
	struct pg_params p;

	p_init(&p);
	p_str(&p, user_id, STORE_ID_LEN + 1);
	p_i64(&p, k->version);
	p_blob(&p, k->wrapped, k->wrapped_len);
	if (k->kdf != NULL)
		p_str(&p, k->kdf, (size_t)INT_MAX);
	else
		p.bad = true;
	p_i64(&p, k->created_at);
	p_opt(&p, k->created_by_device, sizeof(k->created_by_device));
	return pg_run(pq(c), PG_KEY_INSERT, &p);
}

/* ---- encrypted data ------------------------------------------------------------ */

/*
 * Reads an item from the item columns (type, version, key_version, size,
 * updated_at, updated_by_device, deleted) of a row and, when a != NULL,
 * its blob from column 7 (every live head and every revision has one).
 */
static int
read_item(const PGresult *res, int row, struct arena *a,
    struct store_item *it)
{
	size_t len;
	int64_t del = 0;
	int e = 0;

	e |= col_type(res, row, 0, &it->type, false);
	e |= col_i64(res, row, 1, &it->version);
	e |= col_int(res, row, 2, &it->key_version);
	e |= col_i64(res, row, 3, &it->size);
	e |= col_i64(res, row, 4, &it->updated_at);
	e |= col_str(res, row, 5, it->updated_by_device,
	    sizeof(it->updated_by_device));
	e |= col_i64(res, row, 6, &del);
	it->deleted = del != 0;
	it->blob = NULL;
	if (a != NULL) {
		e |= col_ablob(res, row, 7, a, &it->blob, &len);
		if (e == 0 && (it->size < 0 || (uint64_t)it->size != len))
			e = -1;
	}
	return e;
}

static enum store_status
pg_data_head(struct store_conn *c, const char *user_id, int type,
    struct store_item *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_key(&p, user_id);
	p_type(&p, type);
	if ((rc = pg_row(pq(c), PG_DATA_HEAD, &p, &res)) == STORE_OK)
		rc = pg_read(PG_DATA_HEAD, read_item(res, 0, NULL, out));
	PQclear(res);
	return rc;
}

static enum store_status
pg_data_list(struct store_conn *c, const char *user_id, bool with_blob,
    struct arena *a, struct store_item **out, size_t *n)
{
	enum pg_stmt id = with_blob ? PG_DATA_LIST_BLOB : PG_DATA_LIST;
	struct pg_params p;
	PGresult *res;
	struct store_item row, *v;
	bool seen[DT_COUNT] = { false };
	size_t len = 0;
	enum store_status rc;
	int rows, i, t;

	*out = NULL;
	*n = 0;
	p_init(&p);
	p_key(&p, user_id);
	if ((rc = pg_exec(pq(c), id, &p, &res)) != STORE_OK)
		return rc;
	/* at most one head per type: slot them by type, then compact */
	if ((v = arena_calloc(a, DT_COUNT, sizeof(*v))) == NULL) {
		rc = pg_read(id, -1);
		goto done;
	}
	rows = PQntuples(res);
	for (i = 0; i < rows; i++) {
		if ((rc = pg_read(id, read_item(res, i, with_blob ? a : NULL,
		    &row))) != STORE_OK)
			goto done;
		if (seen[row.type]) {
			rc = pg_read(id, -1);
			goto done;
		}
		seen[row.type] = true;
		v[row.type] = row;
	}
	for (t = 0; t < DT_COUNT; t++)
		if (seen[t])
			v[len++] = v[t];
	*out = len > 0 ? v : NULL;
	*n = len;
done:
	PQclear(res);
	return rc;
}

static enum store_status
pg_data_get(struct store_conn *c, const char *user_id, int type,
    struct arena *a, struct store_item *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_key(&p, user_id);
	p_type(&p, type);
	if ((rc = pg_row(pq(c), PG_DATA_GET, &p, &res)) == STORE_OK)
		rc = pg_read(PG_DATA_GET, read_item(res, 0, a, out));
	PQclear(res);
	return rc;
}

/* Binds user_id, type and the metadata of it as $1..$7. */
static void
p_item(struct pg_params *p, const char *user_id, const struct store_item *it)
{
	p_str(p, user_id, STORE_ID_LEN + 1);
	p_type(p, it->type);
	p_i64(p, it->version);
	p_i64(p, it->key_version);
	p_i64(p, it->size);
	p_i64(p, it->updated_at);
	p_opt(p, it->updated_by_device, sizeof(it->updated_by_device));
}

static enum store_status
pg_data_write(struct store_conn *c, const char *user_id,
    const struct store_item *it, int keep)
{
	struct pg_conn *q = pq(c);
	struct pg_params p;
	enum store_status rc;
	bool own;

	if (it->size < 0 || (!it->deleted && it->size > 0 &&
	    it->blob == NULL)) {
		pg_log("data_write", NULL, "an item without its blob");
		return STORE_ERROR;
	}
	if (keep < 1)
		keep = 1;               /* the head's own revision stays */
	if ((rc = pg_unit_begin(q, &own)) != STORE_OK)
		return rc;

	p_init(&p);
	p_item(&p, user_id, it);
	p_i64(&p, it->deleted ? 1 : 0);
	if ((rc = pg_run(q, PG_DATA_UPSERT, &p)) != STORE_OK)
		goto end;

	if (!it->deleted) {
		p_init(&p);
		p_item(&p, user_id, it);
		p_blob(&p, it->blob, (size_t)it->size);
		if ((rc = pg_run(q, PG_REV_INSERT, &p)) != STORE_OK)
			goto end;
	}

	p_init(&p);
	p_key(&p, user_id);
	p_type(&p, it->type);
	p_i64(&p, keep);
	rc = pg_run(q, PG_REV_PRUNE, &p);
end:
	return pg_unit_end(q, own, rc);
}

static enum store_status
pg_items(struct pg_conn *q, enum pg_stmt id, struct pg_params *p,
    struct arena *a, struct store_item **out, size_t *n)
{
	PGresult *res;
	struct store_item *v;
	enum store_status rc;
	int rows, i;

	*out = NULL;
	*n = 0;
	if ((rc = pg_exec(q, id, p, &res)) != STORE_OK)
		return rc;
	rows = PQntuples(res);
	if (rows > 0) {
		if ((v = arena_calloc(a, (size_t)rows, sizeof(*v))) == NULL) {
			rc = pg_read(id, -1);
			goto done;
		}
		for (i = 0; i < rows; i++)
			if ((rc = pg_read(id, read_item(res, i, NULL,
			    &v[i]))) != STORE_OK)
				goto done;
		*out = v;
		*n = (size_t)rows;
	}
done:
	PQclear(res);
	return rc;
}

static enum store_status
pg_revision_list(struct store_conn *c, const char *user_id, int type,
    struct arena *a, struct store_item **out, size_t *n)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, user_id);
	p_type(&p, type);
	return pg_items(pq(c), PG_REV_LIST, &p, a, out, n);
}

static enum store_status
pg_revision_get(struct store_conn *c, const char *user_id, int type,
    int64_t version, struct arena *a, struct store_item *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_key(&p, user_id);
	p_type(&p, type);
	p_i64(&p, version);
	if ((rc = pg_row(pq(c), PG_REV_GET, &p, &res)) == STORE_OK)
		rc = pg_read(PG_REV_GET, read_item(res, 0, a, out));
	PQclear(res);
	return rc;
}

/* ---- audit --------------------------------------------------------------------- */

static enum store_status
pg_audit_insert(struct store_conn *c, struct store_audit *ev)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_str(&p, ev->user_id, sizeof(ev->user_id));
	p_str(&p, ev->event_type, sizeof(ev->event_type));
	p_opt(&p, ev->device_id, sizeof(ev->device_id));
	p_str(&p, ev->ip, sizeof(ev->ip));
	p_agent(&p, ev->user_agent);
	if (ev->metadata != NULL)
		p_str(&p, ev->metadata, (size_t)INT_MAX);
	else
		p_null(&p);
	p_i64(&p, ev->created_at);
	if ((rc = pg_row(pq(c), PG_AUDIT_INSERT, &p, &res)) == STORE_OK)
		rc = pg_read(PG_AUDIT_INSERT, col_i64(res, 0, 0, &ev->id));
	PQclear(res);
	return rc;
}

static enum store_status
pg_audit_list(struct store_conn *c, const char *user_id, int64_t before_id,
    int limit, struct arena *a, struct store_audit **out, size_t *n)
{
	struct pg_params p;
	PGresult *res;
	struct store_audit *v, *ev;
	enum store_status rc;
	int rows, i, e;

	*out = NULL;
	*n = 0;
	if (limit < 1)
		limit = 1;
	if (before_id <= 0)
		before_id = INT64_MAX;
	p_init(&p);
	p_key(&p, user_id);
	p_i64(&p, before_id);
	p_i64(&p, limit);
	if ((rc = pg_exec(pq(c), PG_AUDIT_LIST, &p, &res)) != STORE_OK)
		return rc;
	rows = PQntuples(res);
	if (rows > 0) {
		if ((v = arena_calloc(a, (size_t)rows, sizeof(*v))) == NULL) {
			rc = pg_read(PG_AUDIT_LIST, -1);
			goto done;
		}
		for (i = 0; i < rows; i++) {
			ev = &v[i];
			e = 0;
			e |= col_i64(res, i, 0, &ev->id);
			e |= col_str(res, i, 1, ev->user_id,
			    sizeof(ev->user_id));
			e |= col_str(res, i, 2, ev->event_type,
			    sizeof(ev->event_type));
			e |= col_str(res, i, 3, ev->device_id,
			    sizeof(ev->device_id));
			e |= col_str(res, i, 4, ev->ip, sizeof(ev->ip));
			e |= col_astr(res, i, 5, a, &ev->user_agent);
			e |= col_astr(res, i, 6, a, &ev->metadata);
			e |= col_i64(res, i, 7, &ev->created_at);
			if ((rc = pg_read(PG_AUDIT_LIST, e)) != STORE_OK)
				goto done;
		}
		*out = v;
		*n = (size_t)rows;
	}
done:
	PQclear(res);
	return rc;
}

/* ---- events ---------------------------------------------------------------- */

static enum store_status
pg_event_insert(struct store_conn *c, struct store_event *ev)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	p_init(&p);
	p_str(&p, ev->user_id, sizeof(ev->user_id));
	p_str(&p, ev->type, sizeof(ev->type));
	if (ev->data_type < 0)
		p_null(&p);
	else
		p_type(&p, ev->data_type);
	p_i64(&p, ev->version);
	p_opt(&p, ev->origin_device_id, sizeof(ev->origin_device_id));
	p_i64(&p, ev->created_at);
	p_opt(&p, ev->device_id, sizeof(ev->device_id));
	if ((rc = pg_row(pq(c), PG_EV_INSERT, &p, &res)) == STORE_OK)
		rc = pg_read(PG_EV_INSERT, col_i64(res, 0, 0, &ev->id));
	PQclear(res);
	return rc;
}

static enum store_status
pg_event_list(struct store_conn *c, const char *user_id, int64_t after,
    int limit, struct arena *a, struct store_event **out, size_t *n)
{
	struct pg_params p;
	PGresult *res;
	struct store_event *v, *ev;
	enum store_status rc;
	int rows, i, e;

	*out = NULL;
	*n = 0;
	if (limit < 1)
		limit = 1;
	p_init(&p);
	p_key(&p, user_id);
	p_i64(&p, after);
	p_i64(&p, limit);
	if ((rc = pg_exec(pq(c), PG_EV_LIST, &p, &res)) != STORE_OK)
		return rc;
	rows = PQntuples(res);
	if (rows > 0) {
		if ((v = arena_calloc(a, (size_t)rows, sizeof(*v))) == NULL) {
			rc = pg_read(PG_EV_LIST, -1);
			goto done;
		}
		for (i = 0; i < rows; i++) {
			ev = &v[i];
			e = 0;
			e |= col_i64(res, i, 0, &ev->id);
			e |= col_str(res, i, 1, ev->user_id,
			    sizeof(ev->user_id));
			e |= col_str(res, i, 2, ev->type, sizeof(ev->type));
			e |= col_type(res, i, 3, &ev->data_type, true);
			e |= col_i64(res, i, 4, &ev->version);
			e |= col_str(res, i, 5, ev->origin_device_id,
			    sizeof(ev->origin_device_id));
			e |= col_i64(res, i, 6, &ev->created_at);
			e |= col_str(res, i, 7, ev->device_id,
			    sizeof(ev->device_id));
			if ((rc = pg_read(PG_EV_LIST, e)) != STORE_OK)
				goto done;
		}
		*out = v;
		*n = (size_t)rows;
	}
done:
	PQclear(res);
	return rc;
}

/* The first column of the one row `id` finds for user_id; 0 when none. */
static enum store_status
pg_user_i64(struct store_conn *c, enum pg_stmt id, const char *user_id,
    int64_t *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	*out = 0;
	p_init(&p);
	p_key(&p, user_id);
	rc = pg_row(pq(c), id, &p, &res);
	if (rc == STORE_NOT_FOUND)
		return STORE_OK;
	if (rc == STORE_OK)
		rc = pg_read(id, col_i64(res, 0, 0, out));
	PQclear(res);
	return rc;
}

static enum store_status
pg_event_last_id(struct store_conn *c, const char *user_id, int64_t *out)
{
	return pg_user_i64(c, PG_EV_LAST, user_id, out);
}

/* ---- rate limits ------------------------------------------------------------ */

static enum store_status
pg_rate_get(struct store_conn *c, const char *key, struct rate_state *out)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	int e = 0;

	memset(out, 0, sizeof(*out));
	p_init(&p);
	p_key(&p, key);
	rc = pg_row(pq(c), PG_RATE_GET, &p, &res);
	if (rc == STORE_NOT_FOUND)
		return STORE_OK;        /* absent: a fresh, zeroed record */
	if (rc != STORE_OK)
		return rc;
	e |= col_i64(res, 0, 0, &out->window_start);
	e |= col_i64(res, 0, 1, &out->count);
	e |= col_i64(res, 0, 2, &out->blocked_until);
	PQclear(res);
	return pg_read(PG_RATE_GET, e);
}

static enum store_status
pg_rate_put(struct store_conn *c, const char *key,
    const struct rate_state *rs, int64_t expires_at)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, key);
	p_i64(&p, rs->window_start);
	p_i64(&p, rs->count);
	p_i64(&p, rs->blocked_until);
	p_i64(&p, expires_at);
	return pg_run(pq(c), PG_RATE_PUT, &p);
}

static enum store_status
pg_rate_delete(struct store_conn *c, const char *key)
{
	struct pg_params p;

	p_init(&p);
	p_key(&p, key);
	return pg_run(pq(c), PG_RATE_DELETE, &p);
}

/* ---- housekeeping ------------------------------------------------------------ */

static enum store_status
pg_prune_one(struct pg_conn *q, enum pg_stmt id, int64_t before)
{
	struct pg_params p;

	p_init(&p);
	p_i64(&p, before);
	return pg_run(q, id, &p);
}

static enum store_status
pg_prune(struct store_conn *c, int64_t now)
{
	struct pg_conn *q = pq(c);
	enum store_status rc;
	bool own;

	if ((rc = pg_unit_begin(q, &own)) != STORE_OK)
		return rc;
	/* a late poll can still learn that its request expired (410) */
	if ((rc = pg_prune_one(q, PG_PRUNE_DEVREQ, now - PG_HOUR_MS)) !=
	    STORE_OK)
		goto end;
	if ((rc = pg_prune_one(q, PG_PRUNE_TOKENS, now - PG_DAY_MS)) !=
	    STORE_OK)
		goto end;
	if ((rc = pg_prune_one(q, PG_PRUNE_SESSIONS, now - PG_DAY_MS)) !=
	    STORE_OK)
		goto end;
	if ((rc = pg_prune_one(q, PG_PRUNE_WEBSESS, now)) != STORE_OK)
		goto end;
	rc = pg_prune_one(q, PG_PRUNE_RATE, now);
end:
	return pg_unit_end(q, own, rc);
}

static enum store_status
pg_event_floor(struct store_conn *c, const char *user_id, int64_t *out)
{
	return pg_user_i64(c, PG_EV_FLOOR, user_id, out);
}

/* Drops a batch of the events created before `before` and raises each
 * user's floor to the newest one that went, in one statement: a reader
 * never sees the gap without the floor. */
static enum store_status
pg_event_prune(struct store_conn *c, int64_t before, int limit,
    int64_t *pruned)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;

	*pruned = 0;
	p_init(&p);
	p_i64(&p, before);
	p_i64(&p, limit);
	if ((rc = pg_row(pq(c), PG_EV_PRUNE, &p, &res)) != STORE_OK)
		return rc;
	rc = pg_read(PG_EV_PRUNE, col_i64(res, 0, 0, pruned));
	PQclear(res);
	return rc;
}

static enum store_status
pg_audit_prune(struct store_conn *c, int64_t before, int limit,
    int64_t *pruned)
{
	struct pg_params p;
	PGresult *res;
	enum store_status rc;
	const char *n;

	*pruned = 0;
	p_init(&p);
	p_i64(&p, before);
	p_i64(&p, limit);
	if ((rc = pg_exec(pq(c), PG_AUDIT_PRUNE, &p, &res)) != STORE_OK)
		return rc;
	n = PQcmdTuples(res);
	*pruned = n != NULL ? strtoll(n, NULL, 10) : 0;
	PQclear(res);
	return STORE_OK;
}

/* ---- cross-process events: the listener -------------------------------- */

/* Waits up to ms for the stop pipe; true when stopping. */
static bool
pg_listen_pause(struct pg_backend *b, int ms)
{
	struct pollfd pfd = { b->wake[0], POLLIN, 0 };

	return poll(&pfd, 1, ms) > 0;
}

/* Hands every pending notification to the subscriber. */
static void
pg_listen_drain(struct pg_backend *b, PGconn *pg)
{
	PGnotify *n;

	while ((n = PQnotifies(pg)) != NULL) {
		/* only our channel, and only what can be a user id */
		if (strcmp(n->relname, PG_CHANNEL) == 0 &&
		    n->extra != NULL && strlen(n->extra) <= STORE_ID_LEN &&
		    n->extra[0] != '\0')
			b->fn(b->arg, n->extra);
		PQfreemem(n);
	}
}

/*
 * The listener thread: one session LISTENing on PG_CHANNEL, reopened with
 * a growing pause whenever it breaks. After each (re)connect everyone is
 * woken, since notifications sent meanwhile were lost: every waiter
 * re-reads the store, so nothing is missed, at worst read twice.
 */
static void *
pg_listen_main(void *arg)
{
	struct pg_backend *b = arg;
	PGconn *pg = NULL;
	PGresult *res;
	struct pollfd pfd[2];
	char err[512];
	int backoff = PG_LISTEN_BACKOFF_MIN_MS;
	bool logged = false;

	for (;;) {
		if (pg == NULL) {
			pg = pg_connect(b->conninfo, err, sizeof(err));
			if (pg != NULL) {
				res = PQexec(pg, "LISTEN " PG_CHANNEL);
				if (PQresultStatus(res) != PGRES_COMMAND_OK) {
					pg_err(err, sizeof(err), "postgres: "
					    "LISTEN failed: %s",
					    PQerrorMessage(pg));
					PQfinish(pg);
					pg = NULL;
				}
				PQclear(res);
			}
			if (pg == NULL) {
				if (!logged)
					fprintf(stderr, "store: listener: %s "
					    "(retrying)\n", err);
				logged = true;
				if (pg_listen_pause(b, backoff))
					break;
				backoff = backoff * 2 >
				    PG_LISTEN_BACKOFF_MAX_MS ?
				    PG_LISTEN_BACKOFF_MAX_MS : backoff * 2;
				continue;
			}
			if (logged)
				fprintf(stderr, "store: listener: "
				    "reconnected\n");
			logged = false;
			backoff = PG_LISTEN_BACKOFF_MIN_MS;
			atomic_store(&b->up_since, time_mono_ms());
			b->fn(b->arg, NULL);
		}
		pfd[0].fd = b->wake[0];
		pfd[0].events = POLLIN;
		pfd[0].revents = 0;
		pfd[1].fd = PQsocket(pg);
		pfd[1].events = POLLIN;
		pfd[1].revents = 0;
		if (poll(pfd, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (pfd[0].revents != 0)
			break;
		if (pfd[1].revents == 0)
			continue;
		if (PQconsumeInput(pg) == 0 || PQstatus(pg) != CONNECTION_OK) {
			fprintf(stderr, "store: listener: connection lost; "
			    "reconnecting\n");
			PQfinish(pg);
			pg = NULL;
			continue;
		}
		pg_listen_drain(b, pg);
	}
	if (pg != NULL)
		PQfinish(pg);
	return NULL;
}

static enum store_status
pg_subscribe(void *cls, store_notify_fn fn, void *arg)
{
	struct pg_backend *b = cls;
	enum store_status rc = STORE_OK;

	if (pthread_mutex_lock(&b->lock) != 0)
		abort();
	if (b->running) {
		rc = STORE_ERROR;       /* one subscriber */
		goto out;
	}
	b->fn = fn;
	b->arg = arg;
	if (pipe(b->wake) != 0) {
		rc = STORE_ERROR;
		goto out;
	}
	if (pthread_create(&b->thread, NULL, pg_listen_main, b) != 0) {
		close(b->wake[0]);
		close(b->wake[1]);
		rc = STORE_ERROR;
		goto out;
	}
	b->running = true;
out:
	if (pthread_mutex_unlock(&b->lock) != 0)
		abort();
	return rc;
}

static void
pg_unsubscribe(void *cls)
{
	struct pg_backend *b = cls;
	ssize_t w;

	if (pthread_mutex_lock(&b->lock) != 0)
		abort();
	if (b->running) {
		do
			w = write(b->wake[1], "x", 1);
		while (w < 0 && errno == EINTR);
		(void)pthread_join(b->thread, NULL);
		close(b->wake[0]);
		close(b->wake[1]);
		b->running = false;
	}
	if (pthread_mutex_unlock(&b->lock) != 0)
		abort();
}

/* ---- the backend ------------------------------------------------------------ */

static void
pg_close(void *cls)
{
	struct pg_backend *b = cls;

	if (b == NULL)
		return;
	pg_unsubscribe(b);
	(void)pthread_mutex_destroy(&b->lock);
	if (b->conninfo != NULL) {
		explicit_bzero(b->conninfo, strlen(b->conninfo));
		free(b->conninfo);
	}
	free(b);
}

static const struct store_ops pg_ops = {
	.version = STORE_OPS_VERSION,
	.name = "postgres",
	.conn_open = pg_conn_open,
	.conn_close = pg_conn_close,
	.close = pg_close,
	.ping = pg_ping,
	.begin = pg_begin,
	.commit = pg_commit,
	.rollback = pg_rollback,
	/* no group commit: writers do not queue for one lock here, and the
	 * server flushes concurrent commits together by itself */
	.sp_begin = NULL,
	.sp_end = NULL,
	.user_insert = pg_user_insert,
	.user_by_email = pg_user_by_email,
	.user_by_id = pg_user_by_id,
	.user_set_password = pg_user_set_password,
	.websess_insert = pg_websess_insert,
	.websess_get = pg_websess_get,
	.websess_touch = pg_websess_touch,
	.websess_delete = pg_websess_delete,
	.websess_delete_others = pg_websess_delete_others,
	.devreq_insert = pg_devreq_insert,
	.devreq_by_temp = pg_devreq_by_temp,
	.devreq_by_code = pg_devreq_by_code,
	.devreq_update = pg_devreq_update,
	.device_insert = pg_device_insert,
	.device_get = pg_device_get,
	.device_list = pg_device_list,
	.device_set_status = pg_device_set_status,
	.device_touch = pg_device_touch,
	.session_insert = pg_session_insert,
	.session_revoke = pg_session_revoke,
	.session_revoke_device = pg_session_revoke_device,
	.token_insert = pg_token_insert,
	.token_lookup = pg_token_lookup,
	.token_update = pg_token_update,
	.token_delete = pg_token_delete,
	.config_get = pg_config_get,
	.config_put = pg_config_put,
	.key_current = pg_key_current,
	.key_insert = pg_key_insert,
	.data_head = pg_data_head,
	.data_list = pg_data_list,
	.data_get = pg_data_get,
	.data_write = pg_data_write,
	.revision_list = pg_revision_list,
	.revision_get = pg_revision_get,
	.audit_insert = pg_audit_insert,
	.audit_list = pg_audit_list,
	.event_insert = pg_event_insert,
	.event_list = pg_event_list,
	.event_last_id = pg_event_last_id,
	.event_floor = pg_event_floor,
	.event_prune = pg_event_prune,
	.audit_prune = pg_audit_prune,
	.rate_get = pg_rate_get,
	.rate_put = pg_rate_put,
	.rate_delete = pg_rate_delete,
	.prune = pg_prune,
	.subscribe = pg_subscribe,
	.unsubscribe = pg_unsubscribe,
};

/*
 * Applies the migrations this database lacks, all in one transaction under
 * an advisory lock: a second instance starting at the same moment waits,
 * then finds them applied.
 */
static enum store_status
pg_migrate(PGconn *pg, char *err, size_t errlen)
{
	struct pg_conn q;
	PGresult *res = NULL;
	char sql[160];
	int64_t have = 0;
	size_t n;
	int i, rc;

	memset(&q, 0, sizeof(q));
	q.pg = pg;
	for (n = 0; store_pg_migrations[n] != NULL; n++)
		;
	if (n > INT_MAX / 2) {
		pg_err(err, errlen, "postgres: too many migrations");
		return STORE_ERROR;
	}
	if (pg_command(&q, "migrate", "BEGIN", NULL) != STORE_OK ||
	    pg_command(&q, "migrate", "SELECT pg_advisory_xact_lock("
	    PG_LOCK_MIGRATE ")", NULL) != STORE_OK ||
	    pg_command(&q, "migrate", "CREATE TABLE IF NOT EXISTS "
	    "schema_migrations (version integer PRIMARY KEY, "
	    "applied_at bigint NOT NULL)", NULL) != STORE_OK ||
	    pg_command(&q, "migrate", "SELECT coalesce(max(version), 0)::text "
	    "FROM schema_migrations", &res) != STORE_OK) {
		pg_err(err, errlen, "postgres: cannot read the schema version: "
		    "%s", PQerrorMessage(pg));
		goto bad;
	}
	have = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
	PQclear(res);
	res = NULL;
	if (have < 0 || have > (int64_t)n) {
		pg_err(err, errlen, "postgres: schema version %lld is newer "
		    "than this program knows (%zu)", (long long)have, n);
		goto bad;
	}
	for (i = (int)have; i < (int)n; i++) {
		rc = snprintf(sql, sizeof(sql), "INSERT INTO schema_migrations "
		    "(version, applied_at) VALUES (%d, %lld)", i + 1,
		    (long long)time_now_ms());
		if (rc < 0 || (size_t)rc >= sizeof(sql)) {
			pg_err(err, errlen, "postgres: migration %d: bad "
			    "version", i + 1);
			goto bad;
		}
		if (pg_command(&q, "migrate", store_pg_migrations[i], NULL) !=
		    STORE_OK ||
		    pg_command(&q, "migrate", sql, NULL) != STORE_OK) {
			pg_err(err, errlen, "postgres: migration %d failed: %s",
			    i + 1, PQerrorMessage(pg));
			goto bad;
		}
	}
	if (pg_command(&q, "migrate", "COMMIT", NULL) != STORE_OK) {
		pg_err(err, errlen, "postgres: migrations did not commit: %s",
		    PQerrorMessage(pg));
		goto bad;
	}
	return STORE_OK;
bad:
	PQclear(res);
	if (PQstatus(pg) == CONNECTION_OK &&
	    PQtransactionStatus(pg) != PQTRANS_IDLE)
		(void)pg_command(&q, "migrate", "ROLLBACK", NULL);
	return STORE_ERROR;
}

enum store_status
store_pg_open(const char *conninfo, const struct store_ops **ops, void **cls,
    char *err, size_t errlen)
{
	struct pg_backend *b = NULL;
	PQconninfoOption *opts;
	PGconn *pg = NULL;
	enum store_status rc = STORE_ERROR;
	char *perr = NULL;

	*ops = NULL;
	*cls = NULL;
	/* checked first, and reported without libpq's words, which may quote
	 * the string (and so a password) */
	if (conninfo == NULL ||
	    (opts = PQconninfoParse(conninfo, &perr)) == NULL) {
		PQfreemem(perr);
		pg_err(err, errlen, "DATABASE_URL: not a valid PostgreSQL "
		    "connection URL or key=value string");
		return STORE_ERROR;
	}
	PQconninfoFree(opts);
	if (PQisthreadsafe() == 0) {
		pg_err(err, errlen, "postgres: libpq was built without thread "
		    "support");
		return STORE_ERROR;
	}
	if ((b = calloc(1, sizeof(*b))) == NULL ||
	    (b->conninfo = strdup(conninfo)) == NULL) {
		pg_err(err, errlen, "postgres: out of memory");
		free(b);
		return STORE_ERROR;
	}
	if (pthread_mutex_init(&b->lock, NULL) != 0) {
		pg_err(err, errlen, "postgres: cannot create a mutex");
		free(b->conninfo);
		free(b);
		return STORE_ERROR;
	}
	if ((pg = pg_connect(conninfo, err, errlen)) == NULL) {
		rc = STORE_UNAVAILABLE;
		goto bad;
	}
	if ((rc = pg_migrate(pg, err, errlen)) != STORE_OK)
		goto bad;
	PQfinish(pg);
	*ops = &pg_ops;
	*cls = b;
	return STORE_OK;
bad:
	if (pg != NULL)
		PQfinish(pg);
	pg_close(b);
	return rc;
}
