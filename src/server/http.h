/*
 * http: the libmicrohttpd glue. It owns the daemon, turns each request into
 * a struct req (arena, body read under the route's cap, parsed JSON,
 * credentials), dispatches it through the route table and sends exactly one
 * reply with the common headers (envelope, CORS, security headers, request
 * id), then logs one line.
 *
 * Handlers answer through the reply_*() functions below; a function whose
 * name ends in _or_reply has already answered when it returns false.
 * A handler may instead suspend its request (req_suspend) and is then called
 * again, with the same struct req, after someone calls req_resume.
 */
#ifndef FLM_HTTP_H
#define FLM_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../common/arena.h"
#include "../common/token.h"
#include "../store/store.h"

struct server;
struct route;
struct MHD_Connection;
struct MHD_Response;
struct req;

/* The writer of a streamed reply (see reply_stream). */
typedef ssize_t (*req_stream_fn)(struct req *r, char *buf, size_t max);

enum auth_kind {
	AUTH_NONE = 0,
	AUTH_COOKIE = 1,    /* web session */
	AUTH_BEARER = 2,    /* device session */
	AUTH_ANY = 3        /* route accepts either */
};

/* Who made the request, once the dispatcher has checked credentials. */
struct auth {
	int kind;                        /* AUTH_NONE, AUTH_COOKIE, AUTH_BEARER */
	char user_id[STORE_ID_LEN + 1];
	char device_id[STORE_ID_LEN + 1]; /* bearer only */
	int64_t session_id;              /* bearer only */
	int64_t expires_at;              /* the credential's absolute expiry */
	uint8_t token_hash[TOKEN_HASH_LEN]; /* bearer token or cookie */
};

#define REQ_MAX_PARAMS 3
#define REQ_MAX_HEADERS 12

struct req {
	struct server *srv;
	struct MHD_Connection *conn;
	const struct route *route;
	struct arena *arena;           /* freed when the request ends */
	struct store_conn *db;         /* this thread's store connection */

	char id[24];                   /* request id, also X-Request-Id */
	const char *method;
	const char *path;              /* without the query string */
	const char *params[REQ_MAX_PARAMS]; /* :captures of the pattern */
	char ip[64];                   /* client, after trusted proxies */
	char rate_ip[72];              /* req_rate_ip()'s, once asked */
	const char *user_agent;        /* capped copy, or NULL */

	unsigned char *body;           /* NUL-terminated; NULL when none */
	size_t body_len;
	size_t body_cap;               /* the route's cap */
	size_t body_alloc;
	int64_t declared_len;          /* Content-Length, 0 when none */
	bool body_raw;                 /* application/octet-stream */
	json_t *json;                  /* parsed JSON body ({} when empty) */

	struct auth auth;

	/* reply state */
	int status;
	bool replied;
	bool suspended;
	bool no_store;                 /* adds Cache-Control: no-store */
	const char *hdr_name[REQ_MAX_HEADERS];
	const char *hdr_value[REQ_MAX_HEADERS];
	int n_hdr;

	/* handler state across suspensions */
	int phase;
	void *state;
	void (*cleanup)(struct req *r); /* called when the request ends */

	/* private to http.c */
	int64_t started_mono;
	bool dispatched;
	bool too_large;
	bool first_call_done;
	bool flushed;                  /* response handed to libmicrohttpd */
	struct MHD_Response *response; /* built, not yet queued */
	char *uri;                     /* full request URI as received */
	const char *target;            /* libmicrohttpd's raw target */
	size_t target_len;             /* its length up to the first NUL */
	bool chunked;                  /* Transfer-Encoding: no length */
	bool close;                    /* malformed: answer, then close */
	size_t dropped;                /* body bytes read past the cap */
	struct conn_slot *slot;        /* its connection's record */
	void *waiter;                  /* events long-poll registration */
	req_stream_fn stream;          /* reply_stream's writer */
};

/* ---- replies (each answers once; later calls are ignored) ------------- */

/* 2xx envelope {"success":true,"data":data}; steals data. NULL (a failed
 * json_pack) answers 500 instead. */
void reply_json(struct req *r, int status, json_t *data);

/* 2xx envelope whose data object (stolen) also gets key: the base64 of
 * blob, encoded straight into the reply (ciphertext needs neither JSON
 * escaping nor a constant-time codec). */
void reply_json_blob(struct req *r, int status, json_t *data,
    const char *key, const unsigned char *blob, size_t len);

/* Error envelope with code and a printf message. */
void reply_error(struct req *r, int status, const char *code,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Error envelope carrying data too (conflict metadata, slow_down interval).
 * Steals data. */
void reply_error_data(struct req *r, int status, const char *code,
    json_t *data, const char *message);

/* 503 unavailable or 500 internal_error for a failed store status. */
void reply_store_error(struct req *r, enum store_status st);

/* 429 rate_limited with Retry-After. */
void reply_rate_limited(struct req *r, int64_t retry_after_s);

/* A non-JSON body; the buffer is copied. */
void reply_raw(struct req *r, int status, const char *content_type,
    const void *buf, size_t len);

/* 304 Not Modified (no body). */
void reply_not_modified(struct req *r);

/*
 * A streamed reply (event streams). After it, fn is called on the
 * connection's thread whenever libmicrohttpd can send more: it writes at
 * most max bytes into buf and returns their number, or returns 0 having
 * suspended r (it is called again once r is resumed), or -1 to end the
 * stream. fn must never return 0 without suspending.
 */
void reply_stream(struct req *r, const char *content_type, req_stream_fn fn);

/* For a long-lived reply: closes the connection when it makes no progress
 * for idle_s seconds (the client reads nothing) and caps its socket's
 * kernel send buffer at sndbuf bytes. */
void req_stream_limits(struct req *r, unsigned idle_s, int sndbuf);

/* 3xx redirect to location. */
void reply_redirect(struct req *r, int status, const char *location);

/* Adds a response header (name and value must live as long as r: string
 * literals or arena memory). At most REQ_MAX_HEADERS. */
void req_add_header(struct req *r, const char *name, const char *value);

/* ---- request data ------------------------------------------------------ */

/* A request header, or NULL. */
const char *req_header(struct req *r, const char *name);
/* What per-IP limits count the client under: its address, or for IPv6
 * its network (RATE_IPV6_PREFIX). */
const char *req_rate_ip(struct req *r);

/* A query argument, or NULL. */
const char *req_query(struct req *r, const char *name);

/* A cookie, or NULL. */
const char *req_cookie(struct req *r, const char *name);

/* ---- suspension -------------------------------------------------------- */

/* Suspends the request: the handler returns without replying and will be
 * called again after req_resume(). */
void req_suspend(struct req *r);

/* Resumes a suspended request; callable from any thread. */
void req_resume(struct req *r);

/* ---- the daemon -------------------------------------------------------- */

/* Starts listening as srv->cfg says. On failure returns NULL with a line in
 * err. The bound port is written to *port (useful with port 0). */
struct http *http_start(struct server *srv, uint16_t *port, char *err,
    size_t errlen);

/* Stops accepting, lets in-flight requests finish (up to timeout_ms),
 * then stops the daemon. */
void http_stop(struct http *h, int64_t timeout_ms);

#endif
