/*
 * router: the one static table of routes (method, pattern, credentials,
 * body kind, handler) and its matcher.
 */
#ifndef FLM_ROUTER_H
#define FLM_ROUTER_H

#include <stdbool.h>
#include <stddef.h>

struct req;
struct config;

typedef void (*handler_fn)(struct req *r);

enum method_bit {
	M_GET = 1 << 0,
	M_HEAD = 1 << 1,
	M_POST = 1 << 2,
	M_PUT = 1 << 3,
	M_PATCH = 1 << 4,
	M_DELETE = 1 << 5,
	M_OPTIONS = 1 << 6
};

enum body_kind {
	BODY_NONE = 0,  /* no body expected: any body is refused (413) */
	BODY_JSON,      /* JSON under MAX_BODY_BYTES */
	BODY_BLOB,      /* one data blob: JSON with base64, or raw bytes */
	BODY_ROTATE,    /* a key rotation: every type re-encrypted */
	BODY_KEY        /* a wrapped key and its KDF parameters */
};

struct route {
	unsigned method;        /* one enum method_bit */
	const char *pattern;    /* "/api/sync/data/:type"; ":x" = one segment */
	int auth;               /* enum auth_kind */
	int body;               /* enum body_kind */
	handler_fn handler;
};

/* The method's bit, or 0 for methods we do not serve. */
unsigned router_method_bit(const char *method);

/*
 * Finds the route for method and path, filling params (REQ_MAX_PARAMS
 * entries, pointers into arena-copied segments of path, hence path must be
 * writable scratch). Returns NULL when none matches; *allowed then holds the
 * methods that the path does accept (0 when the path is unknown).
 */
const struct route *router_match(unsigned method, char *path,
    const char **params, unsigned *allowed);

/* The body cap in bytes of a route (raw: an octet-stream data body). */
size_t router_body_cap(const struct route *rt, const struct config *cfg,
    bool raw);

/* "GET, PUT, OPTIONS" for an Allow header. */
void router_allow_string(unsigned allowed, char *buf, size_t len);

/* Exposed for tests: the table and its size. */
extern const struct route router_table[];
extern const size_t router_table_len;

#endif
