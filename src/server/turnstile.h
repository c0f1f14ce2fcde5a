/* turnstile: server-side verification of a Cloudflare Turnstile token. */
#ifndef FLM_TURNSTILE_H
#define FLM_TURNSTILE_H

#include <stdatomic.h>
#include <stdbool.h>

struct config;

/*
 * POSTs secret, token and the client's IP to the configured siteverify URL
 * and returns its "success". Any failure (network, timeout, bad answer) is
 * false. Blocking: run it on the slow pool.
 */
bool turnstile_verify(const struct config *cfg, const char *token,
    const char *ip, const atomic_int *abandon);

/* Process-wide libcurl set-up and tear-down. */
int turnstile_global_init(void);
void turnstile_global_cleanup(void);

#endif
