/* log: one line per event on stderr; secrets never reach it. */
#ifndef FLM_LOG_H
#define FLM_LOG_H

#include <stdbool.h>
#include <stddef.h>

struct req;

/* A line "flamingo-syncd: <time> <message>". */
void log_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The request's line: id, client, method, redacted path, status, duration,
 * user. aborted: the connection ended before a full answer. */
void log_request(const struct req *r, bool aborted);

/*
 * Copies s into out (capacity cap) with every token-like run (flm_sync_...,
 * flm_temp_..., flm_web_..., and anything after "token=" in a query) replaced
 * by "[redacted]", and control characters escaped. Always NUL-terminates.
 */
void log_redact(char *out, size_t cap, const char *s);

#endif
