/*
 * server: the context every part of flamingo-syncd receives. There are no
 * mutable globals: tests may run several servers in one process.
 */
#ifndef FLM_SERVER_H
#define FLM_SERVER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"

struct store;
struct events_hub;
struct slowpool;
struct http;

struct metrics {
	atomic_uint_fast64_t requests;
	atomic_uint_fast64_t responses_2xx;
	atomic_uint_fast64_t responses_4xx;
	atomic_uint_fast64_t responses_5xx;
	atomic_uint_fast64_t in_flight;
	atomic_uint_fast64_t suspended;
	atomic_uint_fast64_t hashes;
	atomic_uint_fast64_t hash_rejected;
	atomic_uint_fast64_t housekeeping_runs; /* finished rounds */
	atomic_uint_fast64_t pruned_events;     /* by retention */
	atomic_uint_fast64_t pruned_audit;
};

struct server {
	struct config cfg;
	struct store *store;
	struct events_hub *hub;
	struct slowpool *pool;   /* password hashing, outbound HTTP */
	struct http *http;
	struct metrics metrics;
	int64_t started_ms;
	atomic_int stopping;     /* set at SIGTERM: long-polls answer now */
	atomic_int abandon;      /* the stop deadline passed: slow work that
	                            has not finished is given up (503) */
	atomic_uint_fast64_t next_request;
	char instance[9];        /* random prefix of request ids */
};

/*
 * Opens the store, starts the events hub, the slow pool and the HTTP
 * daemon as srv->cfg says (filled by config_load, sodium initialised).
 * The bound port goes to *port. On failure returns -1 with one line in err;
 * call server_stop() to release what was started.
 */
int server_start(struct server *srv, uint16_t *port, char *err,
    size_t errlen);

/* Lets in-flight requests finish (up to timeout_ms), then stops and frees
 * every part; the struct itself stays the caller's. */
void server_stop(struct server *srv, int64_t timeout_ms);

#endif
