/*
 * transport: one HTTP exchange with flamingo-syncd over libcurl, with the
 * answer read under a byte cap and its JSON envelope decoded.
 */
#ifndef FLS_TRANSPORT_H
#define FLS_TRANSPORT_H

#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>

#include "flamingosync.h"

#define TRANSPORT_URL_MAX 512u
#define TRANSPORT_TOKEN_CAP 64u

struct transport {
	CURL *curl;             /* one handle per client, reused */
	char base[TRANSPORT_URL_MAX]; /* scheme://host[:port], no slash */
	char *token;            /* sodium_malloc'd, NUL-terminated; "" = none */
	long connect_s;
	long total_s;
	char user_agent[96];
};

/* An answer: root owns data; both NULL when the body was not JSON. */
struct transport_resp {
	long status;
	json_t *root;
	json_t *data;           /* borrowed from root: "data" member */
	long retry_after;       /* Retry-After seconds, or 0 */
};

/*
 * Prepares t for base (checked: http(s)://host[:port], no path, query or
 * user info; http only for loopback unless allow_http). FLS_ERR_ARG,
 * FLS_ERR_NOMEM.
 */
fls_status transport_init(struct transport *t, const char *base,
    bool allow_http);
/* Releases t (the token is wiped). */
void transport_fini(struct transport *t);

/*
 * Sends method path (already URL-safe, starting with '/') with body (may be
 * NULL; JSON), reads at most cap bytes of answer in timeout_s seconds
 * (0: t->total_s), decodes the envelope. FLS_OK for a success envelope
 * (r->data set); otherwise the mapped status with err filled, r->data
 * holding any error data (e.g. the metadata of a 409). The caller frees r
 * with transport_resp_free either way.
 */
fls_status transport_call(struct transport *t, const char *method,
    const char *path, const char *body, size_t bodylen, size_t cap,
    long timeout_s, struct transport_resp *r, fls_error *err);

/*
 * Decodes an answer body of len bytes with r->status and r->retry_after
 * already set: the JSON envelope into r (r->root owns it), the error code
 * and message (bounded, control bytes replaced) into err. Returns what
 * transport_call returns. Pure: the fuzz target fuzz_answer drives it.
 */
fls_status transport_decode(const unsigned char *body, size_t len,
    struct transport_resp *r, fls_error *err);

void transport_resp_free(struct transport_resp *r);

/* Receives the body of a 200 text/event-stream answer as it arrives;
 * returns non-zero to end the transfer. */
typedef int (*transport_sink_fn)(void *arg, const char *buf, size_t len);

/*
 * GET path as a stream (Accept: text/event-stream, Last-Event-ID
 * last_event_id when not NULL or ""): the body of a 200 answer goes to
 * sink as it arrives, with no whole-request timeout; idle_s seconds
 * without a byte (checked about once a second) end it as
 * FLS_ERR_NETWORK. Any other answer (at most 64
 * KiB) is decoded like transport_call's into r and err. *cancel (may be
 * NULL) is checked while waiting. Returns FLS_OK when the server ended
 * a 200 stream, when the sink stopped it, or when cancelled (the caller
 * tells these apart); FLS_ERR_PROTOCOL for a 200 that is not an event
 * stream. r->status is the HTTP status (0: none). Free r either way.
 */
fls_status transport_stream(struct transport *t, const char *path,
    const char *last_event_id, long idle_s, transport_sink_fn sink,
    void *arg, volatile const int *cancel, struct transport_resp *r,
    fls_error *err);

/* Sets err: status and a local message (printf-style). */
void transport_error(fls_error *err, fls_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Copies a server string to out (cap), control bytes replaced by '?'. */
void transport_copy_text(char *out, size_t cap, const char *s);

#endif
