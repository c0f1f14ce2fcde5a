/*
 * flamingosync.h: libflamingosync, the Flamingo Sync client library.
 *
 * Device login, end-to-end encryption (docs/CRYPTO.md), push/pull of the
 * five data types, sync configuration, devices and events (long-poll, or
 * the Server-Sent Events stream with resumption), against a flamingo-syncd
 * server (docs/API.md).
 *
 * Conventions
 *   - Every function returns an fls_status; FLS_OK (0) is success.
 *   - Functions that talk to the server record the failure in the client
 *     object: fls_client_error() gives the status, the HTTP status, and the
 *     server's stable `error` code and human `message` (bounded, control
 *     characters replaced).
 *   - Ownership: whatever a function allocates for the caller is freed with
 *     the matching fls_*_free(); the comment of each function says which.
 *   - Key material (fls_key) lives in libsodium's guarded, mlock()ed memory
 *     and is wiped when freed. Passphrases are borrowed, never copied past
 *     the call (beyond a wiped scratch buffer).
 *   - A client object is not thread-safe: use one per thread.
 *   - Call fls_init() once before anything else.
 */
#ifndef FLAMINGOSYNC_H
#define FLAMINGOSYNC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FLS_API __attribute__((visibility("default")))
#else
#define FLS_API
#endif

#define FLS_VERSION_STRING "0.1.0"

typedef enum fls_status {
	FLS_OK = 0,
	FLS_ERR_ARG,          /* bad argument from the caller */
	FLS_ERR_NOMEM,
	FLS_ERR_NETWORK,      /* could not reach the server, timeout, TLS */
	FLS_ERR_PROTOCOL,     /* the server's answer is malformed */
	FLS_ERR_TOO_LARGE,    /* an answer or blob over the client's caps */
	FLS_ERR_SERVER,       /* any other error envelope (see the code) */
	FLS_ERR_UNAUTHORIZED, /* 401: session revoked, logged out or expired */
	FLS_ERR_NOT_FOUND,    /* 404 */
	FLS_ERR_CONFLICT,     /* 409 conflict: stale base_version */
	FLS_ERR_KEY_CHANGED,  /* 409 key_version_mismatch / stale key version */
	FLS_ERR_DISABLED,     /* 403 sync_disabled */
	FLS_ERR_RATE_LIMITED, /* 429 */
	FLS_ERR_PENDING,      /* device flow: not yet authorized */
	FLS_ERR_DENIED,       /* device flow: the user denied the request */
	FLS_ERR_EXPIRED,      /* device flow: the request expired */
	FLS_ERR_DECRYPT,      /* authentication failed: wrong passphrase,
	                       * wrong key, or tampered data */
	FLS_ERR_FORMAT,       /* not an envelope / wrapped key of a known
	                       * format */
	FLS_ERR_KDF_WEAK,     /* KDF parameters below the minimum */
	FLS_ERR_KDF_LIMIT,    /* KDF parameters above the client's caps */
	FLS_ERR_NO_KEY,       /* no master key stored on the server yet */
	FLS_ERR_IO,           /* local file or terminal error */
	FLS_ERR_REVOKED       /* the event stream said this device was
	                       * revoked (see fls_events_stream) */
} fls_status;

/* A stable English name of s ("conflict", "decrypt", ...). */
FLS_API const char *fls_status_name(fls_status s);

/* The five data types (docs/API.md); the wire names are fls_type_name(). */
typedef enum fls_type {
	FLS_TYPE_HISTORY = 0,
	FLS_TYPE_ENVIRONMENT,
	FLS_TYPE_SECRET,
	FLS_TYPE_COLLECTION,
	FLS_TYPE_SETTING,
	FLS_TYPE_COUNT
} fls_type;

/* "history", ...; NULL when t is out of range. */
FLS_API const char *fls_type_name(int t);
/* The type named s (exact, lower case), or -1. */
FLS_API int fls_type_parse(const char *s);

/* Initialises libsodium; returns FLS_OK or FLS_ERR_NOMEM. Idempotent. */
FLS_API fls_status fls_init(void);

/* ---- client object and errors ----------------------------------------- */

typedef struct fls_client fls_client;

typedef struct fls_error {
	fls_status status;
	long http_status;   /* 0 when no HTTP answer was received */
	char code[64];      /* the server's `error` code, "" when none */
	char message[256];  /* the server's message or a local explanation */
	long retry_after;   /* seconds from Retry-After / data.interval, or 0 */
} fls_error;

/*
 * Creates a client for the server at base_url ("https://sync.example.com",
 * no trailing path; http:// only for loopback or with allow_http). Stores
 * it in *out (free with fls_client_free). One libcurl handle per client.
 */
FLS_API fls_status fls_client_new(const char *base_url, bool allow_http,
    fls_client **out);
FLS_API void fls_client_free(fls_client *c);

/* The last failure of c (valid until the next call on c). */
FLS_API const fls_error *fls_client_error(const fls_client *c);

/*
 * Sets (copies) the device session token, "flm_sync_" + 32 hex; NULL
 * clears it. FLS_ERR_ARG when malformed.
 */
FLS_API fls_status fls_client_set_token(fls_client *c, const char *token);

/* Connect and whole-request timeouts in seconds (defaults 10 and 120). */
FLS_API void fls_client_set_timeouts(fls_client *c, long connect_s,
    long total_s);

/*
 * This device's id (copied; NULL clears it), so that fls_events_stream
 * can tell a device_revoked event about this device. fls_device_poll sets
 * it once the device is authorized.
 */
FLS_API void fls_client_set_device_id(fls_client *c, const char *id);

/* Sent as the User-Agent and as the device's app_version (copied). */
FLS_API void fls_client_set_app_version(fls_client *c, const char *v);

/* ---- server information -------------------------------------------------- */

typedef struct fls_server_info {
	char version[32];
	uint64_t max_blob_bytes; /* capped by FLS_MAX_BLOB_BYTES */
	uint64_t max_body_bytes;
} fls_server_info;

/* Largest blob this client accepts whatever the server says (64 MiB). */
#define FLS_MAX_BLOB_BYTES (64u * 1024u * 1024u)

/* GET /api/info. The client also caches it for its own size checks. */
FLS_API fls_status fls_server_info_get(fls_client *c, fls_server_info *out);

/* ---- device login ------------------------------------------------------- */

typedef struct fls_device_auth {
	char temp_token[48];  /* the polling secret: keep it private */
	char user_code[16];   /* "XXXX-XXXX": show it to the user */
	char url[512];        /* where the user authorizes (no secret in it) */
	long interval;        /* seconds between polls; raised by slow_down */
	long expires_in;      /* seconds */
	char device_id[64];   /* set once authorized */
} fls_device_auth;

/*
 * POST /api/sync/init. name/platform may be NULL. Fills *auth (wipe it
 * with fls_device_auth_clear when done).
 */
FLS_API fls_status fls_device_init(fls_client *c, const char *name,
    const char *platform, fls_device_auth *auth);

/*
 * One poll of POST /api/sync/token. FLS_OK: the session token was written
 * to token (capacity >= 42) and set on c. FLS_ERR_PENDING: poll again
 * after auth->interval (raised on slow_down). FLS_ERR_DENIED,
 * FLS_ERR_EXPIRED, or another error.
 */
FLS_API fls_status fls_device_poll(fls_client *c, fls_device_auth *auth,
    char *token, size_t cap);

/*
 * Polls until the device is authorized, denied or the request expires,
 * honouring interval and slow_down and backing off (up to 30 s) on network
 * errors and 429s. cancel (may be NULL) is checked between polls.
 */
FLS_API fls_status fls_device_wait(fls_client *c, fls_device_auth *auth,
    char *token, size_t cap, volatile const int *cancel);

FLS_API void fls_device_auth_clear(fls_device_auth *auth);

/*
 * POST /api/sync/rotate: a new session token into token (cap >= 42), also
 * set on c. Store it before using it: the old one stops working once the
 * new one is used.
 */
FLS_API fls_status fls_session_rotate(fls_client *c, char *token, size_t cap);

/* POST /api/sync/revoke: ends this device's session (logout). */
FLS_API fls_status fls_session_revoke(fls_client *c);

/* ---- keys ------------------------------------------------------------- */

/* The master key: opaque, in guarded memory. */
typedef struct fls_key fls_key;

#define FLS_KEY_BYTES 32u
#define FLS_PASSPHRASE_MAX 1024u
#define FLS_PASSPHRASE_MIN 8u

/* Argon2id parameters (docs/CRYPTO.md). m is in KiB. */
typedef struct fls_kdf_params {
	uint32_t t;
	uint32_t m_kib;
	uint32_t p;
	unsigned char salt[16];
} fls_kdf_params;

/* Minimums (refused below) and caps (refused above); docs/CRYPTO.md. */
#define FLS_KDF_T_MIN 2u
#define FLS_KDF_M_KIB_MIN (64u * 1024u)    /* 64 MiB */
#define FLS_KDF_T_MAX 16u
#define FLS_KDF_M_KIB_MAX (1024u * 1024u)  /* 1 GiB */
/* What the client uses for new wraps: t=3, 64 MiB, p=1. */
#define FLS_KDF_T_DEFAULT 3u
#define FLS_KDF_M_KIB_DEFAULT (64u * 1024u)

/*
 * Parses the server's `kdf` JSON object (len bytes, at most 1 KiB) into
 * *out. FLS_ERR_FORMAT for anything but the exact documented shape,
 * FLS_ERR_KDF_WEAK below the minimums, FLS_ERR_KDF_LIMIT above the caps.
 */
FLS_API fls_status fls_kdf_parse(const char *json, size_t len,
    fls_kdf_params *out);

/* A fresh key of 32 random bytes in *out (free with fls_key_free). */
FLS_API fls_status fls_key_generate(fls_key **out);
/* A key holding the given 32 bytes (for test vectors and key import). */
FLS_API fls_status fls_key_from_bytes(const unsigned char raw[FLS_KEY_BYTES],
    fls_key **out);
/* Copies the raw master key to raw (the caller wipes it). */
FLS_API void fls_key_export(const fls_key *k, unsigned char raw[FLS_KEY_BYTES]);
/* The server key version this key was fetched at (0 when unknown). */
FLS_API uint32_t fls_key_version(const fls_key *k);
/* Wipes and frees k; NULL is fine. */
FLS_API void fls_key_free(fls_key *k);

/* The per-type data key (HKDF-SHA256, docs/CRYPTO.md) into out. */
FLS_API fls_status fls_key_derive_type_key(const fls_key *k, int type,
    unsigned char out[FLS_KEY_BYTES]);

/*
 * Wraps k under Argon2id(passphrase) with fresh salt (params NULL: the
 * defaults; else its t/m/p with a fresh salt). *wrapped_b64 and *kdf_json
 * are malloc'd strings for the caller to free().
 */
FLS_API fls_status fls_key_wrap(const fls_key *k, const char *passphrase,
    size_t passlen, const fls_kdf_params *params, char **wrapped_b64,
    char **kdf_json);

/*
 * Unwraps: kdf_json is checked by fls_kdf_parse first (a server cannot
 * weaken or inflate the KDF), then the key is derived and opened.
 * FLS_ERR_DECRYPT for a wrong passphrase or tampered parameters.
 */
FLS_API fls_status fls_key_unwrap(const char *passphrase, size_t passlen,
    const char *kdf_json, size_t kdf_len, const char *wrapped_b64,
    fls_key **out);

/*
 * Server key operations.
 * fls_key_fetch: GET /api/sync/key and unwrap (FLS_ERR_NO_KEY when none);
 *   *out carries the server's key version. wrapped/kdf only when asked
 *   (out_version may be NULL).
 * fls_key_status: the current server key version (0 when none), no
 *   passphrase needed.
 * fls_key_create: a new master key, wrapped and stored with
 *   expected_version 0 (FLS_ERR_CONFLICT when a key exists).
 * fls_key_change_passphrase: re-wraps the same master key under a new
 *   passphrase (new salt) with PUT expected_version; data stays readable.
 * fls_key_rotate: a new master key; every stored type is decrypted with
 *   the old key and re-encrypted with the new one, all in one atomic
 *   POST /api/sync/key/rotate. *out (may be NULL) gets the new key.
 */
FLS_API fls_status fls_key_fetch(fls_client *c, const char *passphrase,
    size_t passlen, fls_key **out);
FLS_API fls_status fls_key_status(fls_client *c, uint32_t *version);
FLS_API fls_status fls_key_create(fls_client *c, const char *passphrase,
    size_t passlen, fls_key **out);
FLS_API fls_status fls_key_change_passphrase(fls_client *c,
    const char *old_pass, size_t old_len, const char *new_pass,
    size_t new_len, uint32_t *new_version);
FLS_API fls_status fls_key_rotate(fls_client *c, const char *passphrase,
    size_t passlen, fls_key **out);

/* ---- envelopes (docs/CRYPTO.md) ------------------------------------------ */

#define FLS_ENVELOPE_OVERHEAD 48u /* 32-byte header + 16-byte tag */

/*
 * Encrypts len bytes of pt for type under k with key version kv into a
 * malloc'd *out of *outlen bytes (free with fls_buf_free).
 */
FLS_API fls_status fls_encrypt(const fls_key *k, int type, uint32_t kv,
    const unsigned char *pt, size_t len, unsigned char **out,
    size_t *outlen);
/*
 * Decrypts an envelope of type; expected_kv != 0 also requires that key
 * version. *out is malloc'd (free with fls_buf_free, which wipes it);
 * *kv_out (may be NULL) gets the envelope's key version.
 */
FLS_API fls_status fls_decrypt(const fls_key *k, int type,
    uint32_t expected_kv, const unsigned char *env, size_t len,
    unsigned char **out, size_t *outlen, uint32_t *kv_out);
/* Wipes and frees a buffer from this library; NULL is fine. */
FLS_API void fls_buf_free(unsigned char *p, size_t len);

/* ---- data --------------------------------------------------------------- */

typedef struct fls_item_meta {
	int type;
	int64_t version;      /* server version of the type's data */
	uint32_t key_version;
	uint64_t size;
	char updated_at[40];
	char updated_by_device[64];
} fls_item_meta;

#define FLS_NO_BASE (-1) /* push without precondition: last writer wins */

/*
 * Encrypts and PUTs. base_version: FLS_NO_BASE or the version this device
 * last saw (0: nothing stored yet). FLS_ERR_CONFLICT: *meta holds the
 * server's current metadata (merge, or push again with FLS_NO_BASE).
 * FLS_ERR_KEY_CHANGED: the key was rotated elsewhere; fetch it again.
 */
FLS_API fls_status fls_push(fls_client *c, const fls_key *k, int type,
    const unsigned char *pt, size_t len, int64_t base_version,
    fls_item_meta *meta);

/* GETs and decrypts; *out as fls_decrypt. */
FLS_API fls_status fls_pull(fls_client *c, const fls_key *k, int type,
    unsigned char **out, size_t *outlen, fls_item_meta *meta);

/* GET /api/sync/data: up to FLS_TYPE_COUNT items in items[], *n set. */
FLS_API fls_status fls_list(fls_client *c, fls_item_meta items[FLS_TYPE_COUNT],
    size_t *n);

/* DELETE with optional base_version (FLS_NO_BASE: none). */
FLS_API fls_status fls_delete(fls_client *c, int type, int64_t base_version,
    int64_t *new_version);

/* ---- configuration, devices, events ------------------------------------- */

FLS_API fls_status fls_config_get(fls_client *c, bool enabled[FLS_TYPE_COUNT]);
FLS_API fls_status fls_config_set(fls_client *c, int type, bool enabled);

typedef struct fls_device {
	char id[64];
	char name[160];
	char platform[160];
	char status[32];
	char last_seen_at[40];
	char created_at[40];
	bool current;
} fls_device;

/* GET /api/devices; *out is malloc'd (free()), *n entries (at most 1000). */
FLS_API fls_status fls_devices_list(fls_client *c, fls_device **out,
    size_t *n);
FLS_API fls_status fls_device_revoke(fls_client *c, const char *id);

typedef struct fls_event {
	int64_t id;
	char type[32];        /* data_updated, config_changed, ... */
	int data_type;        /* -1 when none */
	int64_t version;      /* -1 when none */
	char origin_device_id[64];
	char created_at[40];
	char device_id[64];   /* device_revoked: the device revoked, else "" */
} fls_event;

/*
 * Long-poll GET /api/sync/events?after=&wait=: up to cap events into
 * events[], *n set, *next the cursor for the next call. When the server
 * says events after `after` were pruned (`resync`), the answer is one
 * event of type "resync" whose id is the server's `next` (as the stream's
 * FLS_STREAM_RESYNC): pull everything (fls_list / fls_pull), then go on
 * from *next.
 */
FLS_API fls_status fls_events_wait(fls_client *c, int64_t after, int wait_s,
    fls_event *events, size_t cap, size_t *n, int64_t *next);

/* What fls_events_stream hands its callback. */
typedef enum fls_stream_kind {
	FLS_STREAM_EVENT = 0, /* an event; the stream goes on after ev->id */
	FLS_STREAM_RESYNC     /* events after the cursor were pruned: pull
	                       * everything (fls_list / fls_pull); the stream
	                       * goes on after ev->id (the server's `next`),
	                       * ev->type is "resync" */
} fls_stream_kind;

/* Called once per event, in id order, never twice for one id. Return 0 to
 * go on, non-zero to stop the stream. ev is borrowed for the call. */
typedef int (*fls_event_cb)(void *arg, fls_stream_kind kind,
    const fls_event *ev);

/* Longest silence (not even a heartbeat) before a stream counts as dead:
 * about three of the server's 15 s heartbeats. */
#define FLS_STREAM_IDLE_SECONDS 50
/* Longest wait between two reconnections. */
#define FLS_STREAM_BACKOFF_MAX_SECONDS 30

/*
 * Follows GET /api/sync/events/stream (Server-Sent Events) from after
 * (events with a greater id; -1: only what happens from now on), calling
 * cb for each event until cb returns non-zero or *cancel (may be NULL)
 * turns non-zero: then FLS_OK.
 *
 * When the connection drops, goes idle for FLS_STREAM_IDLE_SECONDS, or the
 * server ends the stream (it does so every STREAM_MAX_SECONDS), it
 * reconnects with Last-Event-ID set to the last event handed to cb, after
 * the server's `retry:` delay, growing (with jitter) up to
 * FLS_STREAM_BACKOFF_MAX_SECONDS while reconnecting fails; a 429 waits at
 * least its Retry-After. Nothing is missed and nothing repeated.
 *
 * Returns FLS_ERR_REVOKED after handing cb the device_revoked event that
 * names this device (fls_client_set_device_id); FLS_ERR_NOT_FOUND when the
 * server has no stream endpoint (an older server: use fls_events_wait);
 * FLS_ERR_UNAUTHORIZED, FLS_ERR_PROTOCOL (a malformed stream: a line over
 * 64 KiB, an event that is not the documented JSON) or another error that
 * retrying will not fix, recorded in fls_client_error(). Blocks: run it on
 * its own thread (with its own client) in an application.
 */
FLS_API fls_status fls_events_stream(fls_client *c, int64_t after,
    fls_event_cb cb, void *arg, volatile const int *cancel);

#ifdef __cplusplus
}
#endif

#endif
