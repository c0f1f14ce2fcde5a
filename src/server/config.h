/*
 * config: every setting of flamingo-syncd, from command-line flags and
 * environment variables (a flag wins over the environment, which wins over
 * the default). Each setting is a row of one table in config.c, which also
 * gives --help its text.
 */
#ifndef FLM_CONFIG_H
#define FLM_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/ratelimit.h"

#define CONFIG_MAX_PROXIES 16

enum rate_kind {
	RATE_SIGNUP_IP = 0,    /* signups per IP */
	RATE_INIT_IP,          /* device-flow inits per IP */
	RATE_CODE_USER,        /* wrong user codes per user */
	RATE_CODE_IP,          /* wrong user codes per IP */
	RATE_LOGIN_ACCOUNT,    /* failed logins per account (growing) */
	RATE_LOGIN_IP,         /* failed logins per IP (growing) */
	RATE_KIND_COUNT
};

struct config {
	char listen_host[64];       /* LISTEN / --listen HOST:PORT */
	uint16_t listen_port;
	char database_url[1024];    /* DATABASE_URL / --database */
	char public_url[512];       /* PUBLIC_URL / --public-url, no trailing / */
	char public_origin[512];    /* scheme://host[:port] of public_url */
	bool https;                 /* public_url is https */

	int session_expiry_days;    /* SESSION_EXPIRY_DAYS (1..3650, 90) */
	int temp_token_expiry_minutes; /* TEMP_TOKEN_EXPIRY_MINUTES (1..60, 5) */
	int poll_interval_s;        /* DEVICE_POLL_INTERVAL (1..60, 2) */
	int web_session_idle_hours; /* WEB_SESSION_IDLE_HOURS (1..8760, 168) */
	int web_session_max_days;   /* WEB_SESSION_MAX_DAYS (1..365, 30) */

	char turnstile_site_key[256];   /* TURNSTILE_SITE_KEY ("" = off) */
	char turnstile_secret_key[256]; /* TURNSTILE_SECRET_KEY ("" = off) */
	char turnstile_verify_url[512]; /* TURNSTILE_VERIFY_URL */
	char turnstile_script_url[512]; /* TURNSTILE_SCRIPT_URL: the widget
	                                   script the sign-up page loads */
	char turnstile_script_origin[512]; /* its origin, for the page CSP */
	bool registration_open;     /* REGISTRATION_OPEN (true) */

	int64_t max_blob_bytes;     /* MAX_BLOB_BYTES (1 KiB..1 GiB, 16 MiB) */
	int64_t max_body_bytes;     /* MAX_BODY_BYTES: JSON bodies other than
	                               data and key uploads (1 KiB..1 MiB, 64 KiB) */
	int data_revisions;         /* DATA_REVISIONS (1..1000, 10) */
	int json_max_depth;         /* JSON_MAX_DEPTH (2..64, 16) */
	int max_url_bytes;          /* MAX_URL_BYTES (256..65536, 2048) */
	int longpoll_max_s;         /* LONGPOLL_MAX_SECONDS (1..300, 60) */
	int streams_max;            /* STREAMS_MAX (1..1000000, 1000) */
	int streams_per_user;       /* STREAMS_PER_USER (1..10000, 20) */
	int stream_heartbeat_s;     /* STREAM_HEARTBEAT_SECONDS (1..300, 15) */
	int64_t stream_buffer_bytes; /* STREAM_BUFFER_BYTES (4 KiB..16 MiB,
	                               64 KiB): kernel send buffer per stream */
	int stream_stall_s;         /* STREAM_STALL_SECONDS (1..3600, 30) */
	int stream_max_s;           /* STREAM_MAX_SECONDS (0..604800, 3600;
	                               0 = no limit) */
	int event_retention_days;   /* EVENT_RETENTION_DAYS (1..3650, 30) */
	int audit_retention_days;   /* AUDIT_RETENTION_DAYS (0..36500, 365;
	                               0 = kept forever) */

	int write_batch_max;        /* WRITE_BATCH_MAX (1..1024, 64): SQLite
	                               write transactions per commit */
	int threads;                /* THREADS (0 = automatic, http.c) */
	int hash_threads;           /* HASH_THREADS (1..64, 1) */
	int hash_queue;             /* HASH_QUEUE (1..10000, 32) */
	int connection_timeout_s;   /* CONNECTION_TIMEOUT (1..3600, 30) */
	int max_connections;        /* MAX_CONNECTIONS (1..100000, 1024) */
	int max_connections_per_ip; /* MAX_CONNECTIONS_PER_IP (1..100000, 64) */
	int64_t connection_memory;  /* CONNECTION_MEMORY_BYTES (8 KiB..16 MiB,
	                               64 KiB): headers and buffers per conn */

	struct rate_rule rates[RATE_KIND_COUNT]; /* RATE_* "N/SECONDS" */
	int rate_ipv6_prefix;       /* RATE_IPV6_PREFIX (32..128, 64) */

	char trusted_proxies[CONFIG_MAX_PROXIES][64]; /* TRUSTED_PROXIES */
	int n_trusted_proxies;
	char metrics_token[256];    /* METRICS_TOKEN ("" = open) */
	bool log_requests;          /* LOG_REQUESTS (true) */
};

enum config_result {
	CONFIG_OK = 0,
	CONFIG_EXIT_OK,    /* --help or --version printed; exit 0 */
	CONFIG_BAD         /* err holds one line naming the setting; exit 2 */
};

/* Fills cfg with the defaults. */
void config_defaults(struct config *cfg);

/*
 * Applies environment variables (through getenv_fn, so tests can pass their
 * own; NULL = getenv) and then argv. --help and --version print to `out`.
 * On CONFIG_BAD, err (capacity errlen) holds e.g.
 *   "MAX_BLOB_BYTES: expected an integer between 1024 and 1073741824, got 'x'"
 */
enum config_result config_load(struct config *cfg, int argc, char **argv,
    const char *(*getenv_fn)(const char *), void *out, char *err,
    size_t errlen);

/* Parses "N/SECONDS" (N >= 0, 0 disables) into rule (growing left as is).
 * Returns 0 or -1. */
int config_parse_rate(const char *s, struct rate_rule *rule);

/* Parses "HOST:PORT" ("[::1]:3000" for IPv6). Returns 0 or -1. */
int config_parse_listen(const char *s, char *host, size_t hostlen,
    uint16_t *port);

#endif
