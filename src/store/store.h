/*
 * store: the persistence interface of flamingo-syncd.
 *
 * A backend (store_sqlite.c, store_pg.c) fills a struct store_ops.
 * Callers use the store_*() wrappers below, never the ops directly.
 *
 * Connections: each thread that touches the store owns one connection,
 * opened lazily by store_conn() and closed when the store is closed.
 *
 * Transactions: store_tx() runs a callback inside a transaction and retries
 * it (a bounded number of times) when the backend reports STORE_BUSY
 * (SQLite busy/locked, PostgreSQL serialization failure or deadlock). The
 * callback must therefore do nothing but store calls and computations that
 * are safe to repeat. Single reads outside store_tx() are allowed.
 *
 * Group commit: on a backend that can (SQLite), writing transactions are
 * run by one writer thread of the store, several in one transaction, each
 * callback inside its own savepoint, and committed together; store_tx()
 * returns once the group's commit is durable. A callback may therefore run
 * on another thread than its caller's: it must use only the connection it
 * is given (never the caller's own, store_conn()) and no thread-local
 * state, and it must not call store_tx() itself. Its caller is blocked
 * meanwhile, so the callback may use the caller's memory (an arena, a
 * request) as it would on the caller's thread.
 *
 * Memory: fixed-size fields are copied into the caller's structs; variable
 * sized ones (blobs, JSON text, user agents, lists) are allocated from the
 * arena passed in and live as long as it.
 *
 * Ownership and isolation: every query that takes a user_id is restricted to
 * that user; another user's row is STORE_NOT_FOUND exactly like a missing one.
 *
 * Times are int64 milliseconds since the Unix epoch.
 */
#ifndef FLM_STORE_H
#define FLM_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/arena.h"
#include "../common/datatype.h"
#include "../common/ratelimit.h"
#include "../common/token.h"

#define STORE_OPS_VERSION 2

/* Most writing transactions in one durable commit (store_open). */
#define STORE_WRITE_BATCH_LIMIT 1024

#define STORE_ID_LEN UUID_LEN   /* users and devices: UUID strings */
#define STORE_EMAIL_MAX 254
#define STORE_PWHASH_MAX 128    /* crypto_pwhash_STRBYTES */
#define STORE_NAME_MAX 128      /* device name, platform, app version */
#define STORE_IP_MAX 63
#define STORE_UA_MAX 256        /* user agents are truncated to this */
#define STORE_TYPE_MAX 31       /* audit / event type names */

enum store_status {
	STORE_OK = 0,
	STORE_NOT_FOUND,   /* no such row (or another user's) */
	STORE_EXISTS,      /* unique constraint: e.g. email taken */
	STORE_BUSY,        /* retryable: store_tx() runs the callback again */
	STORE_UNAVAILABLE, /* storage unreachable; nothing was done */
	STORE_ERROR,       /* hard error (logged by the backend) */
	/* Outcomes a transaction callback may return to end it (rolled back)
	 * with a reason its caller turns into an answer: */
	STORE_ABORT
};

/* ---- records ---------------------------------------------------------- */

struct store_user {
	char id[STORE_ID_LEN + 1];
	char email[STORE_EMAIL_MAX + 1];       /* lower case */
	char password_hash[STORE_PWHASH_MAX + 1]; /* crypto_pwhash_str output */
	int64_t created_at;
};

struct store_websess {
	uint8_t hash[TOKEN_HASH_LEN];  /* SHA-256 of the cookie value */
	char user_id[STORE_ID_LEN + 1];
	int64_t created_at;
	int64_t last_used_at;
	int64_t expires_at;            /* absolute expiry */
};

enum devreq_state {
	DEVREQ_PENDING = 0,
	DEVREQ_CLAIMED = 1,
	DEVREQ_DENIED = 2,
	DEVREQ_EXCHANGED = 3           /* session token issued */
};

struct store_devreq {
	int64_t id;                    /* set by devreq_insert */
	uint8_t temp_hash[TOKEN_HASH_LEN];
	char user_code[USER_CODE_LEN + 1]; /* normalised, no dash */
	char device_name[STORE_NAME_MAX + 1];
	char platform[STORE_NAME_MAX + 1];
	char app_version[STORE_NAME_MAX + 1];
	char ip[STORE_IP_MAX + 1];     /* of the device that called init */
	int64_t created_at;
	int64_t expires_at;
	int state;                     /* enum devreq_state */
	char user_id[STORE_ID_LEN + 1];   /* who claimed/denied, "" if none */
	char device_id[STORE_ID_LEN + 1]; /* created at claim, "" if none */
	int interval_s;                /* current polling interval */
	int64_t last_poll_at;          /* 0 = never polled */
};

enum device_status {
	DEVICE_ACTIVE = 0,
	DEVICE_REVOKED = 1
};

struct store_device {
	char id[STORE_ID_LEN + 1];
	char user_id[STORE_ID_LEN + 1];
	char name[STORE_NAME_MAX + 1];
	char platform[STORE_NAME_MAX + 1];
	char app_version[STORE_NAME_MAX + 1];
	int status;                    /* enum device_status */
	int64_t created_at;
	int64_t last_seen_at;          /* 0 = never */
	char last_ip[STORE_IP_MAX + 1];
};

/* A device session: what one device flow (or its rotations) authorises. */
struct store_session {
	int64_t id;                    /* set by session_insert */
	char user_id[STORE_ID_LEN + 1];
	char device_id[STORE_ID_LEN + 1];
	int64_t created_at;
	int64_t expires_at;
	int64_t revoked_at;            /* 0 = live */
};

/*
 * One bearer token of a session. Rotation links a token to its successor;
 * the predecessor stays valid until grace_until or until the successor is
 * first used.
 */
struct store_token {
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t session_id;
	int64_t created_at;
	bool used;                     /* presented at least once */
	bool has_successor;
	uint8_t successor[TOKEN_HASH_LEN];
	int64_t grace_until;           /* meaningful when has_successor */
};

struct store_config {
	bool enabled[DT_COUNT];
	int64_t updated_at;
};

struct store_key {
	int version;                   /* 1, 2, ... */
	unsigned char *wrapped;        /* arena */
	size_t wrapped_len;
	char *kdf;                     /* JSON text, arena */
	int64_t created_at;
	char created_by_device[STORE_ID_LEN + 1]; /* "" when by web session */
};

/* The head of a data type, or one of its revisions. */
struct store_item {
	int type;                      /* enum data_type */
	int64_t version;
	int key_version;               /* 0 when no key existed */
	int64_t size;                  /* bytes of ciphertext */
	int64_t updated_at;
	char updated_by_device[STORE_ID_LEN + 1];
	bool deleted;                  /* tombstone (head only) */
	unsigned char *blob;           /* arena; NULL unless asked for */
};

struct store_audit {
	int64_t id;                    /* set by audit_insert */
	char user_id[STORE_ID_LEN + 1];
	char event_type[STORE_TYPE_MAX + 1];
	char device_id[STORE_ID_LEN + 1]; /* "" when none */
	char ip[STORE_IP_MAX + 1];
	char *user_agent;              /* arena or caller's; may be NULL */
	char *metadata;                /* JSON object text; NULL = {} */
	int64_t created_at;
};

struct store_event {
	int64_t id;                    /* set by event_insert; grows */
	char user_id[STORE_ID_LEN + 1];
	char type[STORE_TYPE_MAX + 1];
	int data_type;                 /* -1 when none */
	int64_t version;               /* 0 when none */
	char origin_device_id[STORE_ID_LEN + 1]; /* "" when none */
	char device_id[STORE_ID_LEN + 1]; /* the device it is about
	                                     (device_revoked), "" when none */
	int64_t created_at;
};

/* ---- the backend interface -------------------------------------------- */

/*
 * A backend's per-thread connection. Backends embed this as the first member
 * of their own connection struct and cast.
 */
struct store_conn {
	const struct store_ops *ops;
};

/*
 * Called by a backend for every event committed by any process on the same
 * database (PostgreSQL: LISTEN/NOTIFY), from a thread of the backend's own.
 * user_id NULL means "anything may have happened" (the backend may have
 * missed notifications, e.g. while reconnecting): wake everyone.
 */
typedef void (*store_notify_fn)(void *arg, const char *user_id);

/* Calls operation `op` of connection c: store_call(c, user_by_id, id, &u). */
#define store_call(c, op, ...) ((c)->ops->op((c), ##__VA_ARGS__))

struct store_ops {
	int version; /* STORE_OPS_VERSION */
	const char *name; /* "sqlite", "postgres" */

	/* lifecycle: open applies migrations; conn_open makes a connection */
	enum store_status (*conn_open)(void *cls, struct store_conn **out);
	void (*conn_close)(struct store_conn *c);
	void (*close)(void *cls);
	enum store_status (*ping)(struct store_conn *c);

	/* transactions; write=true takes the write lock up front */
	enum store_status (*begin)(struct store_conn *c, bool write);
	enum store_status (*commit)(struct store_conn *c);
	/* a no-op when no transaction is open (store_tx calls it after any
	 * failure, including a failed begin or commit) */
	void (*rollback)(struct store_conn *c);

	/*
	 * Group commit; both NULL when the backend does not group writes.
	 * Inside a writing transaction, sp_begin opens a savepoint for one
	 * callback and sp_end closes it, keeping (keep) or undoing its work.
	 * sp_end answers STORE_OK when the transaction is still open; any
	 * other status means it has ended (rolled back, with every earlier
	 * savepoint's work), e.g. after an error that rolls back by itself.
	 */
	enum store_status (*sp_begin)(struct store_conn *c);
	enum store_status (*sp_end)(struct store_conn *c, bool keep);

	/* users */
	enum store_status (*user_insert)(struct store_conn *c,
	    const struct store_user *u);          /* STORE_EXISTS: email */
	enum store_status (*user_by_email)(struct store_conn *c,
	    const char *email, struct store_user *out);
	enum store_status (*user_by_id)(struct store_conn *c, const char *id,
	    struct store_user *out);
	enum store_status (*user_set_password)(struct store_conn *c,
	    const char *id, const char *password_hash);

	/* web sessions */
	enum store_status (*websess_insert)(struct store_conn *c,
	    const struct store_websess *s);
	enum store_status (*websess_get)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN], struct store_websess *out);
	enum store_status (*websess_touch)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN], int64_t now);
	enum store_status (*websess_delete)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN]);
	/* deletes every web session of the user except `keep` (may be NULL) */
	enum store_status (*websess_delete_others)(struct store_conn *c,
	    const char *user_id, const uint8_t *keep);

	/* device authorisation requests */
	enum store_status (*devreq_insert)(struct store_conn *c,
	    struct store_devreq *r);   /* STORE_EXISTS: user code collision */
	enum store_status (*devreq_by_temp)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN], struct store_devreq *out);
	enum store_status (*devreq_by_code)(struct store_conn *c,
	    const char *user_code, struct store_devreq *out);
	/* writes state, user_id, device_id, interval_s, last_poll_at by id */
	enum store_status (*devreq_update)(struct store_conn *c,
	    const struct store_devreq *r);

	/* devices */
	enum store_status (*device_insert)(struct store_conn *c,
	    const struct store_device *d);
	enum store_status (*device_get)(struct store_conn *c,
	    const char *user_id, const char *id, struct store_device *out);
	/* all devices of the user, newest first */
	enum store_status (*device_list)(struct store_conn *c,
	    const char *user_id, struct arena *a, struct store_device **out,
	    size_t *n);
	enum store_status (*device_set_status)(struct store_conn *c,
	    const char *user_id, const char *id, int status);
	enum store_status (*device_touch)(struct store_conn *c, const char *id,
	    int64_t now, const char *ip);

	/* device sessions and their tokens */
	enum store_status (*session_insert)(struct store_conn *c,
	    struct store_session *s);
	/* sets revoked_at on one session / every live session of a device */
	enum store_status (*session_revoke)(struct store_conn *c, int64_t id,
	    int64_t now);
	enum store_status (*session_revoke_device)(struct store_conn *c,
	    const char *device_id, int64_t now);
	enum store_status (*token_insert)(struct store_conn *c,
	    const struct store_token *t);
	/* the token, its session and its device, in one lookup */
	enum store_status (*token_lookup)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN], struct store_token *tok,
	    struct store_session *sess, struct store_device *dev);
	/* writes used, has_successor, successor, grace_until by hash */
	enum store_status (*token_update)(struct store_conn *c,
	    const struct store_token *t);
	enum store_status (*token_delete)(struct store_conn *c,
	    const uint8_t hash[TOKEN_HASH_LEN]);

	/* sync configuration (all enabled, updated_at 0 when never set) */
	enum store_status (*config_get)(struct store_conn *c,
	    const char *user_id, struct store_config *out);
	enum store_status (*config_put)(struct store_conn *c,
	    const char *user_id, const struct store_config *cfg);

	/* wrapped master keys */
	enum store_status (*key_current)(struct store_conn *c,
	    const char *user_id, struct arena *a, struct store_key *out);
	/* STORE_EXISTS: the user has that version already */
	enum store_status (*key_insert)(struct store_conn *c,
	    const char *user_id, const struct store_key *k);

	/* encrypted data */
	/* head of a type including tombstones; blob NULL */
	enum store_status (*data_head)(struct store_conn *c,
	    const char *user_id, int type, struct store_item *out);
	/* live (non-deleted) heads, in type order; blobs when with_blob */
	enum store_status (*data_list)(struct store_conn *c,
	    const char *user_id, bool with_blob, struct arena *a,
	    struct store_item **out, size_t *n);
	/* head and its blob; STORE_NOT_FOUND for tombstones */
	enum store_status (*data_get)(struct store_conn *c,
	    const char *user_id, int type, struct arena *a,
	    struct store_item *out);
	/*
	 * Makes `it` the head of its type. Unless it is a tombstone, also adds
	 * it as a revision, then keeps only the newest `keep` revisions.
	 */
	enum store_status (*data_write)(struct store_conn *c,
	    const char *user_id, const struct store_item *it, int keep);
	/* revisions, newest first, without blobs */
	enum store_status (*revision_list)(struct store_conn *c,
	    const char *user_id, int type, struct arena *a,
	    struct store_item **out, size_t *n);
	enum store_status (*revision_get)(struct store_conn *c,
	    const char *user_id, int type, int64_t version, struct arena *a,
	    struct store_item *out);

	/* audit log */
	enum store_status (*audit_insert)(struct store_conn *c,
	    struct store_audit *e);
	/* newest first; before_id 0 = from the newest */
	enum store_status (*audit_list)(struct store_conn *c,
	    const char *user_id, int64_t before_id, int limit,
	    struct arena *a, struct store_audit **out, size_t *n);
	/* drops at most `limit` of the audit rows created before `before`,
	 * the oldest first; *pruned as for event_prune */
	enum store_status (*audit_prune)(struct store_conn *c, int64_t before,
	    int limit, int64_t *pruned);

	/* events */
	enum store_status (*event_insert)(struct store_conn *c,
	    struct store_event *e);
	/* oldest first, ids > after */
	enum store_status (*event_list)(struct store_conn *c,
	    const char *user_id, int64_t after, int limit, struct arena *a,
	    struct store_event **out, size_t *n);
	/* newest event id of the user, 0 when none */
	enum store_status (*event_last_id)(struct store_conn *c,
	    const char *user_id, int64_t *out);
	/* the newest event id of the user that retention pruned, 0 when none:
	 * a reader that asks for ids after an older one has missed events */
	enum store_status (*event_floor)(struct store_conn *c,
	    const char *user_id, int64_t *out);
	/* drops at most `limit` of the events created before `before`, the
	 * oldest first, raising their users' floors in the same transaction;
	 * *pruned: how many went (fewer than limit: none older is left) */
	enum store_status (*event_prune)(struct store_conn *c, int64_t before,
	    int limit, int64_t *pruned);

	/* rate-limit records (zeroed state when absent) */
	enum store_status (*rate_get)(struct store_conn *c, const char *key,
	    struct rate_state *out);
	enum store_status (*rate_put)(struct store_conn *c, const char *key,
	    const struct rate_state *st, int64_t expires_at);
	enum store_status (*rate_delete)(struct store_conn *c,
	    const char *key);

	/* housekeeping: drops expired requests, sessions, rate records */
	enum store_status (*prune)(struct store_conn *c, int64_t now);

	/*
	 * Cross-process events; both NULL when every writer is in this
	 * process (SQLite). subscribe starts delivering to fn until
	 * unsubscribe, which returns once fn can no longer be running.
	 */
	enum store_status (*subscribe)(void *cls, store_notify_fn fn,
	    void *arg);
	void (*unsubscribe)(void *cls);
};

/* ---- the store object --------------------------------------------------- */

struct store;

/*
 * Opens the store named by url ("sqlite:PATH", "postgres://...",
 * "postgresql://..." or a libpq "key=value ..." string) and
 * applies pending migrations. write_batch_max (1..STORE_WRITE_BATCH_LIMIT)
 * is the most writing transactions one commit may carry on a backend that
 * groups them (1: none are grouped, each commits on its caller's thread).
 * On failure returns NULL and writes one line into err (capacity errlen)
 * that names the problem.
 */
struct store *store_open(const char *url, int write_batch_max, char *err,
    size_t errlen);

/*
 * Closes every connection and the backend, after the writer thread (group
 * commit) has answered every transaction queued. No other thread may use
 * the store any more.
 */
void store_close(struct store *s);

/* Counters of writing transactions since store_open. */
struct store_stats {
	uint64_t write_txs;     /* committed: their work is durable */
	uint64_t write_commits; /* commits that made them so (fewer when
	                           grouped) */
	uint64_t write_queued;  /* now waiting for the writer thread */
};

void store_stats(struct store *s, struct store_stats *out);

/* The calling thread's connection, opened on first use; NULL when the
 * backend cannot connect. */
struct store_conn *store_conn(struct store *s);

/* The backend's operations (for the wrappers below). */
const struct store_ops *store_ops(const struct store *s);

/* Backend name ("sqlite", "postgres"). */
const char *store_backend(const struct store *s);

/*
 * Has fn called for events committed by other processes on the same
 * database (see store_notify_fn); a no-op for backends without them.
 * Call store_unsubscribe before freeing what arg points to.
 */
enum store_status store_subscribe(struct store *s, store_notify_fn fn,
    void *arg);
void store_unsubscribe(struct store *s);

typedef enum store_status (*store_tx_fn)(struct store_conn *c, void *cls);

/*
 * Runs fn inside a transaction (write=true: a writing one), commits when fn
 * returns STORE_OK, rolls back otherwise and returns fn's status. STORE_BUSY
 * from fn or from commit is retried up to a bounded number of times with a
 * short randomised backoff. With group commit, a writing fn runs on the
 * store's writer thread (see the top of this file); what fn did is kept
 * or undone exactly as if it had had a transaction of its own, and
 * store_tx returns only once it is durable.
 */
enum store_status store_tx(struct store *s, bool write, store_tx_fn fn,
    void *cls);

/* Backend constructors (store.c picks one by URL). */
enum store_status store_sqlite_open(const char *path, const struct store_ops
    **ops, void **cls, char *err, size_t errlen);
/* conninfo: a postgres:// or postgresql:// URL or a key=value string; it
 * may hold a password, so it is never logged or echoed in err. */
enum store_status store_pg_open(const char *conninfo, const struct store_ops
    **ops, void **cls, char *err, size_t errlen);

#endif
