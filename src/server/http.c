#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../common/b64.h"
#include "../common/timeutil.h"
#include "api.h"
#include "auth.h"
#include "events.h"
#include "log.h"
#include "router.h"
#include "server.h"
#include "web.h"

/* THREADS=0: workers per core on SQLite (at most the max), and on
 * PostgreSQL, where each holds a database connection and commits are not
 * grouped by us (PostgreSQL flushes concurrent commits together itself) */
#define HTTP_THREADS_PER_CORE 8
#define HTTP_THREADS_PER_CORE_PG 1
#define HTTP_THREADS_AUTO_MAX 64
#define JSON_TYPE "application/json; charset=utf-8"
#define API_CSP "default-src 'none'; frame-ancestors 'none'"
/* a chunked body past its cap is dropped up to the cap plus this more */
#define BODY_DROP_MIN 65536
/* the most a streamed reply's writer is asked for at once */
#define STREAM_BLOCK 2048

struct http {
	struct server *srv;
	struct MHD_Daemon *daemon;
};

/* ---- replies ----------------------------------------------------------- */

static void
add_common_headers(struct req *r, struct MHD_Response *resp)
{
	const struct config *cfg = &r->srv->cfg;
	int i;

	MHD_add_response_header(resp, "X-Request-Id", r->id);
	MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	if (cfg->https)
		MHD_add_response_header(resp, "Strict-Transport-Security",
		    "max-age=31536000; includeSubDomains");
	if (r->path != NULL && strncmp(r->path, "/api/", 5) == 0) {
		if (r->route == NULL)
			r->no_store = true;
		MHD_add_response_header(resp, "Access-Control-Allow-Origin",
		    "*");
		MHD_add_response_header(resp, "Access-Control-Expose-Headers",
		    "ETag, X-Sync-Version, X-Key-Version, X-Request-Id, "
		    "Retry-After");
		MHD_add_response_header(resp, "Content-Security-Policy",
		    API_CSP);
	}
	if (r->no_store)
		MHD_add_response_header(resp, "Cache-Control", "no-store");
	for (i = 0; i < r->n_hdr; i++)
		MHD_add_response_header(resp, r->hdr_name[i],
		    r->hdr_value[i]);
}

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if none. */
static size_t
utf8_seq(const unsigned char *s, size_t n)
{
	size_t len, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (len > n)
		return 0;
	for (i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
	    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

/*
 * A copy of a client-supplied header fit for the audit log and JSON: valid
 * UTF-8 (bad bytes and control characters become '?'), at most max bytes,
 * cut at a character boundary. NULL on OOM.
 */
static char *
clean_text(struct arena *a, const char *in, size_t max)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t n = strlen(in), i = 0, o = 0, k;
	char *out = arena_alloc(a, max + 1);

	if (out == NULL)
		return NULL;
	while (i < n) {
		k = utf8_seq(s + i, n - i);
		if (k == 0 || (k == 1 && (s[i] < 0x20 || s[i] == 0x7f))) {
			if (o + 1 > max)
				break;
			out[o++] = '?';
			i += k ? k : 1;
			continue;
		}
		if (o + k > max)
			break;
		memcpy(out + o, s + i, k);
		o += k;
		i += k;
	}
	out[o] = '\0';
	return out;
}

/* Keeps the response; access_handler() queues it when libmicrohttpd is
 * ready for it (see flush_reply). */
static void
queue(struct req *r, int status, struct MHD_Response *resp)
{
	r->status = status;
	r->replied = true;
	if (resp == NULL) {
		log_msg("req=%s: out of memory building a response", r->id);
		r->status = 500;
		return;
	}
	add_common_headers(r, resp);
	r->response = resp;
}

/* Hands a kept response to libmicrohttpd. Returns MHD_NO (close the
 * connection) when there was no memory to build one. */
static enum MHD_Result
flush_reply(struct req *r)
{
	enum MHD_Result ret;

	if (r->response == NULL)
		return MHD_NO;
	ret = MHD_queue_response(r->conn, (unsigned)r->status, r->response);
	MHD_destroy_response(r->response);
	r->response = NULL;
	r->flushed = true;
	return ret;
}

static void
reply_body(struct req *r, int status, json_t *envelope)
{
	char *text;
	struct MHD_Response *resp;

	if (r->replied) {
		json_decref(envelope);
		return;
	}
	text = envelope ? json_dumps(envelope, JSON_COMPACT) : NULL;
	json_decref(envelope);
	if (text == NULL) {
		static const char oom[] = "{\"success\":false,\"error\":"
		    "\"internal_error\",\"message\":\"out of memory\"}";

		status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1,
		    (void *)(uintptr_t)oom, MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer(strlen(text), text,
		    MHD_RESPMEM_MUST_FREE);
		if (resp == NULL)
			free(text);
	}
	if (resp != NULL)
		MHD_add_response_header(resp, "Content-Type", JSON_TYPE);
	queue(r, status, resp);
}

void
reply_json(struct req *r, int status, json_t *data)
{
	if (data == NULL) {
		/* a json_pack() that failed: never a hollow success */
		reply_error(r, 500, "internal_error", "Out of memory.");
		return;
	}
	reply_body(r, status, json_pack("{s:b,s:o}", "success", 1, "data",
	    data));
}

void
reply_json_blob(struct req *r, int status, json_t *data, const char *key,
    const unsigned char *blob, size_t len)
{
	char *text = NULL, *out = NULL;
	size_t tlen, blen, klen = strlen(key), n;
	struct MHD_Response *resp;
	json_t *env;
	bool empty;

	if (r->replied || data == NULL) {
		json_decref(data);
		if (!r->replied)
			reply_error(r, 500, "internal_error", "Out of memory.");
		return;
	}
	empty = json_object_size(data) == 0;
	env = json_pack("{s:b,s:o}", "success", 1, "data", data);
	text = env ? json_dumps(env, JSON_COMPACT) : NULL;
	json_decref(env);
	/* ...}} : the data object closes, then the envelope */
	if (text == NULL || (tlen = strlen(text)) < 2 ||
	    strcmp(text + tlen - 2, "}}") != 0)
		goto oom;
	blen = b64_encoded_len(len);
	n = tlen - 2 + 1 + 1 + klen + 3 + blen + 3;
	if (blen >= SIZE_MAX / 2 || (out = malloc(n + 1)) == NULL)
		goto oom;
	memcpy(out, text, tlen - 2);
	n = tlen - 2;
	if (!empty)
		out[n++] = ',';
	out[n++] = '"';
	memcpy(out + n, key, klen);
	n += klen;
	memcpy(out + n, "\":\"", 3);
	n += 3;
	/* the alphabet needs no JSON escaping */
	b64_encode_public(out + n, blob, len);
	n += blen;
	memcpy(out + n, "\"}}", 4);
	n += 3;
	free(text);
	resp = MHD_create_response_from_buffer(n, out, MHD_RESPMEM_MUST_FREE);
	if (resp == NULL)
		free(out);
	else
		MHD_add_response_header(resp, "Content-Type", JSON_TYPE);
	queue(r, status, resp);
	return;
oom:
	free(text);
	reply_error(r, 500, "internal_error", "Out of memory.");
}

void
reply_error_data(struct req *r, int status, const char *code, json_t *data,
    const char *message)
{
	json_t *env;

	env = json_pack("{s:b,s:s,s:s}", "success", 0, "error", code,
	    "message", message);
	if (env != NULL && data != NULL)
		json_object_set_new(env, "data", data);
	else
		json_decref(data);
	reply_body(r, status, env);
}

void
reply_error(struct req *r, int status, const char *code, const char *fmt,
    ...)
{
	char msg[512];
	va_list ap;

	size_t n, i = 0, k;

	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	/*
	 * The message may quote the client (a method, a field name cut at 64
	 * bytes, a truncated line): bytes that are not valid UTF-8 become '?',
	 * or json_pack would refuse the envelope and a 400 would turn into a
	 * 500. (Found by tests/fuzz/fuzz_request.)
	 */
	n = strlen(msg);
	while (i < n) {
		k = utf8_seq((const unsigned char *)msg + i, n - i);
		if (k == 0)
			msg[i++] = '?';
		else
			i += k;
	}
	reply_error_data(r, status, code, NULL, msg);
}

void
reply_store_error(struct req *r, enum store_status st)
{
	if (st == STORE_UNAVAILABLE || st == STORE_BUSY)
		reply_error(r, 503, "unavailable",
		    "Storage is unavailable; the request had no effect.");
	else
		reply_error(r, 500, "internal_error",
		    "Something went wrong on the server.");
}

void
reply_rate_limited(struct req *r, int64_t retry_after_s)
{
	if (retry_after_s < 1)
		retry_after_s = 1;
	req_add_header(r, "Retry-After",
	    arena_printf(r->arena, "%lld", (long long)retry_after_s));
	reply_error(r, 429, "rate_limited",
	    "Too many requests; try again in %lld seconds.",
	    (long long)retry_after_s);
}

void
reply_raw(struct req *r, int status, const char *content_type,
    const void *buf, size_t len)
{
	struct MHD_Response *resp;

	if (r->replied)
		return;
	resp = MHD_create_response_from_buffer(len, (void *)(uintptr_t)buf,
	    MHD_RESPMEM_MUST_COPY);
	if (resp != NULL && content_type != NULL)
		MHD_add_response_header(resp, "Content-Type", content_type);
	queue(r, status, resp);
}

/* libmicrohttpd's content reader of a streamed reply. */
static ssize_t
stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct req *r = cls;
	ssize_t n;

	if (r->suspended) {
		r->suspended = false;
		atomic_fetch_sub(&r->srv->metrics.suspended, 1);
	}
	n = r->stream(r, buf, max);
	if (n < 0)
		return MHD_CONTENT_READER_END_OF_STREAM;
	return n;
}

void
reply_stream(struct req *r, const char *content_type, req_stream_fn fn)
{
	struct MHD_Response *resp;

	if (r->replied)
		return;
	r->stream = fn;
	resp = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN,
	    STREAM_BLOCK, stream_reader, r, NULL);
	if (resp != NULL)
		MHD_add_response_header(resp, "Content-Type", content_type);
	queue(r, 200, resp);
}

void
req_stream_limits(struct req *r, unsigned idle_s, int sndbuf)
{
	const union MHD_ConnectionInfo *info;

	MHD_set_connection_option(r->conn, MHD_CONNECTION_OPTION_TIMEOUT,
	    idle_s);
	info = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CONNECTION_FD);
	if (info != NULL && setsockopt(info->connect_fd, SOL_SOCKET,
	    SO_SNDBUF, &sndbuf, sizeof(sndbuf)) != 0)
		log_msg("req=%s: cannot set the stream's send buffer: %s",
		    r->id, strerror(errno));
}

void
reply_not_modified(struct req *r)
{
	struct MHD_Response *resp;

	if (r->replied)
		return;
	resp = MHD_create_response_from_buffer(0, NULL,
	    MHD_RESPMEM_PERSISTENT);
	queue(r, 304, resp);
}

void
reply_redirect(struct req *r, int status, const char *location)
{
	req_add_header(r, "Location", location);
	reply_raw(r, status, "text/plain; charset=utf-8", "", 0);
}

void
req_add_header(struct req *r, const char *name, const char *value)
{
	if (value == NULL || r->n_hdr >= REQ_MAX_HEADERS)
		return;
	r->hdr_name[r->n_hdr] = name;
	r->hdr_value[r->n_hdr] = value;
	r->n_hdr++;
}

/* ---- request data ------------------------------------------------------ */

const char *
req_header(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *
req_query(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND,
	    name);
}

const char *
req_cookie(struct req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_COOKIE_KIND, name);
}

void
req_suspend(struct req *r)
{
	r->suspended = true;
	atomic_fetch_add(&r->srv->metrics.suspended, 1);
	MHD_suspend_connection(r->conn);
}

void
req_resume(struct req *r)
{
	MHD_resume_connection(r->conn);
}

/* ---- the request's life ------------------------------------------------ */

static bool
same_address(const char *a, const char *b)
{
	unsigned char x[16], y[16];

	if (inet_pton(AF_INET, a, x) == 1)
		return inet_pton(AF_INET, b, y) == 1 && memcmp(x, y, 4) == 0;
	if (inet_pton(AF_INET6, a, x) == 1)
		return inet_pton(AF_INET6, b, y) == 1 && memcmp(x, y, 16) == 0;
	return false;
}

static bool
is_trusted_proxy(const struct config *cfg, const char *ip)
{
	int i;

	for (i = 0; i < cfg->n_trusted_proxies; i++)
		if (same_address(cfg->trusted_proxies[i], ip))
			return true;
	return false;
}

struct xff {
	struct arena *a;
	char *all;      /* every X-Forwarded-For line, joined with ',' */
	size_t len;
	bool overflow;
};

#define XFF_MAX 8192

static enum MHD_Result
collect_xff(void *cls, enum MHD_ValueKind kind, const char *key,
    const char *value)
{
	struct xff *x = cls;
	size_t n;
	char *p;

	if (strcasecmp(key, "X-Forwarded-For") != 0 || value == NULL)
		return MHD_YES;
	n = strlen(value);
	if (x->len + n + 2 > XFF_MAX) {
		x->overflow = true;
		return MHD_NO;
	}
	p = arena_alloc(x->a, x->len + n + 2);
	if (p == NULL) {
		x->overflow = true;
		return MHD_NO;
	}
	if (x->len > 0) {
		memcpy(p, x->all, x->len);
		p[x->len++] = ',';
	}
	memcpy(p + x->len, value, n + 1);
	x->len += n;
	x->all = p;
	return MHD_YES;
}

/*
 * The client's address. Behind trusted proxies, X-Forwarded-For (all its
 * lines, in order) is read from the right: each hop a trusted proxy vouches
 * for is taken, up to the first address that is not a trusted proxy. A
 * malformed hop stops the walk at the last good address.
 */
static void
client_ip(struct req *r)
{
	const union MHD_ConnectionInfo *ci;
	const struct config *cfg = &r->srv->cfg;
	struct xff x = { r->arena, NULL, 0, false };
	char *end, *start;
	unsigned char tmp[16];

	snprintf(r->ip, sizeof(r->ip), "unknown");
	ci = MHD_get_connection_info(r->conn,
	    MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL)
		return;
	if (ci->client_addr->sa_family == AF_INET) {
		const struct sockaddr_in *in =
		    (const struct sockaddr_in *)(const void *)ci->client_addr;

		inet_ntop(AF_INET, &in->sin_addr, r->ip, sizeof(r->ip));
	} else if (ci->client_addr->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 =
		    (const struct sockaddr_in6 *)(const void *)ci->client_addr;

		inet_ntop(AF_INET6, &in6->sin6_addr, r->ip, sizeof(r->ip));
	}
	if (cfg->n_trusted_proxies == 0 || !is_trusted_proxy(cfg, r->ip))
		return;
	MHD_get_connection_values(r->conn, MHD_HEADER_KIND, collect_xff, &x);
	if (x.all == NULL || x.overflow)
		return;
	end = x.all + x.len;
	while (end > x.all) {
		start = end;
		while (start > x.all && start[-1] != ',')
			start--;
		*end = '\0';
		while (*start == ' ' || *start == '\t')
			start++;
		while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		if (strlen(start) >= sizeof(r->ip) ||
		    (inet_pton(AF_INET, start, tmp) != 1 &&
		    inet_pton(AF_INET6, start, tmp) != 1))
			return;
		snprintf(r->ip, sizeof(r->ip), "%s", start);
		if (!is_trusted_proxy(cfg, start))
			return;
		end = start;
		while (end > x.all && end[-1] != ',')
			end--;
		if (end == x.all)
			break;
		end--;	/* onto the comma */
	}
}

/*
 * What per-IP rate limits count the client under. An IPv6 client gets a
 * whole network (a /64 usually: RATE_IPV6_PREFIX), so counting per
 * address would hand it 2^64 budgets; it counts as its network. An
 * IPv4-mapped IPv6 address counts as the IPv4 address; IPv4 as itself.
 * Worked out on first use: most requests count nothing per IP.
 */
const char *
req_rate_ip(struct req *r)
{
	struct in6_addr in6;
	unsigned char *a = in6.s6_addr;
	char net[INET6_ADDRSTRLEN];
	int bits = r->srv->cfg.rate_ipv6_prefix, i;

	if (r->rate_ip[0] != '\0')
		return r->rate_ip;
	snprintf(r->rate_ip, sizeof(r->rate_ip), "%s", r->ip);
	if (inet_pton(AF_INET6, r->ip, &in6) != 1)
		return r->rate_ip;
	if (IN6_IS_ADDR_V4MAPPED(&in6)) {
		inet_ntop(AF_INET, a + 12, r->rate_ip, sizeof(r->rate_ip));
		return r->rate_ip;
	}
	if (bits >= 128)
		return r->rate_ip;
	for (i = bits / 8; i < 16; i++)
		a[i] &= i == bits / 8 ? (unsigned char)(0xff << (8 - bits % 8)) :
		    0;
	if (inet_ntop(AF_INET6, &in6, net, sizeof(net)) != NULL)
		snprintf(r->rate_ip, sizeof(r->rate_ip), "%s/%d", net, bits);
	return r->rate_ip;
}

/*
 * Per connection: the request libmicrohttpd has announced (uri_logger) and
 * not yet finished (completed). libmicrohttpd calls `completed` only for
 * requests that reached the access handler; one it refuses earlier (say, a
 * query with more parameters than CONNECTION_MEMORY_BYTES holds) is released
 * here when its connection closes.
 */
struct conn_slot {
	struct req *pending;
};

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe);

static void
conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct conn_slot *slot;
	void *pending;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		/* NULL (out of memory) only loses the release below */
		*socket_context = calloc(1, sizeof(struct conn_slot));
		return;
	}
	if ((slot = *socket_context) == NULL)
		return;
	if ((pending = slot->pending) != NULL)
		completed(cls, conn, &pending,
		    MHD_REQUEST_TERMINATED_WITH_ERROR);
	free(slot);
	*socket_context = NULL;
}

static void *
uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct http *h = cls;
	struct req *r;
	struct arena *a;
	uint64_t n;
	const union MHD_ConnectionInfo *info;

	a = arena_new();
	if (a == NULL)
		return NULL;
	r = arena_calloc(a, 1, sizeof(*r));
	if (r == NULL) {
		arena_free(a);
		return NULL;
	}
	r->arena = a;
	r->srv = h->srv;
	r->conn = conn;
	r->started_mono = time_mono_ms();
	n = atomic_fetch_add(&h->srv->next_request, 1);
	snprintf(r->id, sizeof(r->id), "%s-%llu", h->srv->instance,
	    (unsigned long long)n);
	r->uri = arena_strndup(a, uri, (size_t)h->srv->cfg.max_url_bytes + 1);
	r->target = uri;
	r->target_len = strlen(uri);
	info = MHD_get_connection_info(conn,
	    MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (info != NULL && info->socket_context != NULL) {
		r->slot = info->socket_context;
		r->slot->pending = r;
	}
	atomic_fetch_add(&h->srv->metrics.requests, 1);
	return r;
}

static void
completed(void *cls, struct MHD_Connection *conn, void **con_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct http *h = cls;
	struct req *r = *con_cls;
	struct metrics *m = &h->srv->metrics;

	if (r == NULL)
		return;
	if (r->slot != NULL)
		r->slot->pending = NULL;
	if (r->waiter != NULL)
		events_wait_end(h->srv->hub, r);
	/* resumed, but the client left before the handler ran again */
	if (r->suspended)
		atomic_fetch_sub(&m->suspended, 1);
	if (r->cleanup != NULL)
		r->cleanup(r);
	if (r->response != NULL)
		MHD_destroy_response(r->response);
	if (r->status >= 500)
		atomic_fetch_add(&m->responses_5xx, 1);
	else if (r->status >= 400)
		atomic_fetch_add(&m->responses_4xx, 1);
	else if (r->status > 0)
		atomic_fetch_add(&m->responses_2xx, 1);
	if (h->srv->cfg.log_requests)
		log_request(r, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
	json_decref(r->json);
	free(r->body);
	/* counted from the access handler on: shutdown waits for those */
	if (r->first_call_done)
		atomic_fetch_sub(&m->in_flight, 1);
	arena_free(r->arena);
	*con_cls = NULL;
}

static bool
content_type_is(const char *ct, const char *want)
{
	size_t n = strlen(want);

	if (ct == NULL || strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* Nesting depth of a JSON text, counting brackets outside strings. */
static int
json_depth(const unsigned char *s, size_t len)
{
	int depth = 0, max = 0;
	bool in_str = false;
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char ch = s[i];

		if (in_str) {
			if (ch == '\\')
				i++;
			else if (ch == '"')
				in_str = false;
		} else if (ch == '"') {
			in_str = true;
		} else if (ch == '{' || ch == '[') {
			if (++depth > max)
				max = depth;
		} else if (ch == '}' || ch == ']') {
			depth--;
		}
	}
	return max;
}

static void
preflight(struct req *r)
{
	r->path = r->path ? r->path : "/";
	req_add_header(r, "Access-Control-Allow-Methods",
	    "GET, POST, PUT, PATCH, DELETE, OPTIONS");
	req_add_header(r, "Access-Control-Allow-Headers",
	    "Content-Type, Authorization, If-Match, If-None-Match, "
	    "Last-Event-ID");
	req_add_header(r, "Access-Control-Max-Age", "86400");
	reply_raw(r, 204, NULL, "", 0);
}

/* Parses the body as the route wants it; replies and returns false when it
 * cannot. */
static bool
body_or_reply(struct req *r)
{
	const char *ct = req_header(r, "Content-Type");
	json_error_t jerr;

	r->body_raw = false;
	if (r->body_len == 0) {
		r->json = json_object();
		return true;
	}
	if (r->route->body == BODY_BLOB &&
	    content_type_is(ct, "application/octet-stream")) {
		r->body_raw = true;
		return true;
	}
	if (!content_type_is(ct, "application/json")) {
		reply_error(r, 415, "unsupported_media_type",
		    "Send the body as application/json%s.",
		    r->route->body == BODY_BLOB ?
		    " or application/octet-stream" : "");
		return false;
	}
	if (json_depth(r->body, r->body_len) > r->srv->cfg.json_max_depth) {
		reply_error(r, 400, "invalid_request",
		    "The JSON body is nested too deeply.");
		return false;
	}
	r->json = json_loadb((const char *)r->body, r->body_len,
	    JSON_REJECT_DUPLICATES, &jerr);
	if (r->json == NULL) {
		reply_error(r, 400, "invalid_request",
		    "The body is not valid JSON (%s).", jerr.text);
		return false;
	}
	if (!json_is_object(r->json)) {
		reply_error(r, 400, "invalid_request",
		    "The body must be a JSON object.");
		return false;
	}
	return true;
}

static void
dispatch(struct req *r)
{
	if (!r->dispatched) {
		r->dispatched = true;
		if (r->too_large && r->body_cap == 0) {
			reply_error(r, 413, "payload_too_large",
			    "This endpoint takes no body.");
			return;
		}
		if (r->too_large) {
			reply_error(r, 413, "payload_too_large",
			    "The body is larger than this endpoint accepts "
			    "(%zu bytes).", r->body_cap);
			return;
		}
		if (!body_or_reply(r))
			return;
		if (r->db == NULL)
			r->db = store_conn(r->srv->store);
	}
	if (r->suspended) {
		r->suspended = false;
		atomic_fetch_sub(&r->srv->metrics.suspended, 1);
	}
	r->route->handler(r);
	if (!r->replied && !r->suspended) {
		log_msg("req=%s: handler for %s returned without replying",
		    r->id, r->route->pattern);
		reply_error(r, 500, "internal_error",
		    "Something went wrong on the server.");
	}
}

/* ---- the request target and framing ------------------------------------ */

static int
hex_digit(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/*
 * The path the router sees: the raw target up to '?', every %XX decoded
 * except %00 and %2F, which stay as written. A NUL therefore cannot cut a
 * segment short and an encoded slash cannot split one: "history%2Frevisions"
 * is one (invalid) type, never the revisions route. A raw NUL byte in the
 * target (hidden_nul) ends it like libmicrohttpd does, marked by "%00" so
 * that the segment it cut stays invalid. NULL when out of memory.
 */
static char *
route_path(struct arena *a, const char *raw, bool hidden_nul)
{
	size_t len = strcspn(raw, "?"), i, o = 0;
	char *p;
	int hi, lo, ch;

	if ((p = arena_alloc(a, len + 4)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		ch = (unsigned char)raw[i];
		if (ch == '%' && i + 2 < len &&
		    (hi = hex_digit(raw[i + 1])) >= 0 &&
		    (lo = hex_digit(raw[i + 2])) >= 0 &&
		    hi * 16 + lo != 0 && hi * 16 + lo != '/') {
			ch = hi * 16 + lo;
			i += 2;
		}
		p[o++] = (char)ch;
	}
	if (hidden_nul)
		memcpy(p + o, "%00", 3), o += 3;
	p[o] = '\0';
	return p;
}

struct framing {
	int n_length;                  /* Content-Length headers */
	bool lengths_differ;
	const char *length;
	bool transfer_encoding;
};

static enum MHD_Result
framing_header(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	struct framing *f = cls;

	if (value == NULL)
		return MHD_YES;
	if (strcasecmp(key, "Content-Length") == 0) {
		if (f->n_length++ > 0 && strcmp(f->length, value) != 0)
			f->lengths_differ = true;
		f->length = value;
	} else if (strcasecmp(key, "Transfer-Encoding") == 0) {
		f->transfer_encoding = true;
	}
	return MHD_YES;
}

static enum MHD_Result
query_nul(void *cls, enum MHD_ValueKind kind, const char *key,
    size_t key_size, const char *value, size_t value_size)
{
	bool *nul = cls;

	if (strlen(key) != key_size ||
	    (value != NULL && strlen(value) != value_size)) {
		*nul = true;
		return MHD_NO;
	}
	return MHD_YES;
}

/*
 * What libmicrohttpd lets through and HTTP forbids: NUL bytes in the target
 * or a query parameter (RFC 9110 5.5: reject the message; libmicrohttpd
 * itself ends a header value at a NUL, so what follows never counts), and
 * conflicting framing (RFC 9112 6.3: two lengths, or a length beside a
 * transfer coding, is how requests are smuggled past a proxy). Replies and
 * returns false for those; sets *hidden_nul for a raw NUL in the path.
 */
static bool
framing_or_reply(struct req *r, const char *url, const char *version,
    bool *hidden_nul)
{
	struct framing f;
	bool nul = false;

	memset(&f, 0, sizeof(f));
	/* a malformed message is answered at once and its connection closed:
	 * what follows it on the wire cannot be trusted to be a request */
	r->close = true;
	/*
	 * libmicrohttpd hands the target over as a C string cut at a raw NUL;
	 * the version follows the target in the same buffer, so a target that
	 * ends before the byte ahead of the version held a NUL.
	 */
	*hidden_nul = url == r->target && version != NULL &&
	    (uintptr_t)version > (uintptr_t)url + r->target_len + 1;
	if (*hidden_nul && strchr(r->uri, '?') != NULL) {
		reply_error(r, 400, "invalid_request",
		    "The query string contains a NUL byte.");
		return false;
	}
	(void)MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND,
	    framing_header, &f);
	if (f.lengths_differ || (f.n_length > 0 && f.transfer_encoding)) {
		reply_error(r, 400, "invalid_request",
		    "The request has conflicting Content-Length or "
		    "Transfer-Encoding headers.");
		return false;
	}
	r->chunked = f.transfer_encoding;
	(void)MHD_get_connection_values_n(r->conn, MHD_GET_ARGUMENT_KIND,
	    query_nul, &nul);
	if (nul) {
		reply_error(r, 400, "invalid_request",
		    "A query parameter contains a NUL byte.");
		return false;
	}
	r->close = false;
	return true;
}

/* First call: route, check the declared length against the cap. */
static bool
begin_request(struct req *r, const char *url, const char *method,
    const char *version)
{
	const char *cl, *params[REQ_MAX_PARAMS] = { NULL, NULL, NULL };
	char *path;
	unsigned bit, allowed;
	char allow[128];
	bool hidden_nul;

	r->method = method;
	client_ip(r);
	r->user_agent = req_header(r, "User-Agent");
	if (r->user_agent != NULL)
		r->user_agent = clean_text(r->arena, r->user_agent,
		    STORE_UA_MAX);
	if (r->uri == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return false;
	}
	/* until routed: enough for the headers an /api/ answer carries */
	r->path = r->uri;
	if (strlen(r->uri) > (size_t)r->srv->cfg.max_url_bytes) {
		reply_error(r, 414, "invalid_request", "The URL is too long.");
		return false;
	}
	if (!framing_or_reply(r, url, version, &hidden_nul))
		return false;
	if ((r->path = route_path(r->arena, r->uri, hidden_nul)) == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return false;
	}
	bit = router_method_bit(method);
	if (bit == M_OPTIONS && strncmp(r->path, "/api/", 5) == 0) {
		preflight(r);
		return false;
	}
	path = arena_strdup(r->arena, r->path);
	r->route = path ? router_match(bit, path, params, &allowed) : NULL;
	if (r->route == NULL) {
		if (allowed != 0) {
			router_allow_string(allowed, allow, sizeof(allow));
			req_add_header(r, "Allow", arena_strdup(r->arena,
			    allow));
			reply_error(r, 405, "method_not_allowed",
			    "%s is not allowed here; use %s.", method, allow);
		} else if (!web_not_found(r)) {
			reply_error(r, 404, "not_found", "No such endpoint.");
		}
		return false;
	}
	memcpy(r->params, params, sizeof(params));
	/* API answers are not cached unless a handler says otherwise. */
	r->no_store = strncmp(r->path, "/api/", 5) == 0;
	r->body_cap = router_body_cap(r->route, &r->srv->cfg,
	    content_type_is(req_header(r, "Content-Type"),
	    "application/octet-stream"));
	cl = req_header(r, "Content-Length");
	if (cl != NULL) {
		char *end;
		unsigned long long v;

		errno = 0;
		v = strtoull(cl, &end, 10);
		r->declared_len = (errno == 0 && end != cl && *end == '\0') ?
		    (int64_t)(v > INT64_MAX ? INT64_MAX : v) : -1;
		if (r->declared_len < 0 || v > r->body_cap) {
			reply_error(r, 413, "payload_too_large",
			    "The body is larger than this endpoint accepts "
			    "(%zu bytes).", r->body_cap);
			return false;
		}
	}
	/* dropped, then refused once it ends (see access_handler) */
	if (r->chunked && r->body_cap == 0)
		r->too_large = true;
	/* Credentials before the body: nobody unauthenticated makes the
	 * server read, hold or parse a large body. */
	return auth_or_reply(r);
}

/* Appends an upload chunk under the route's cap; past the cap the body is
 * dropped and the request marked too large. False when out of memory. */
static bool
append_body(struct req *r, const char *data, size_t n)
{
	size_t want, alloc;
	unsigned char *nb;

	if (r->too_large)
		return true;
	if (n > r->body_cap || r->body_len > r->body_cap - n) {
		r->too_large = true;
		free(r->body);
		r->body = NULL;
		r->body_len = r->body_alloc = 0;
		return true;
	}
	want = r->body_len + n + 1;
	if (want > r->body_alloc) {
		alloc = r->body_alloc ? r->body_alloc : 1024;
		if (r->body_len == 0 && r->declared_len > 0)
			alloc = (size_t)r->declared_len + 1;
		while (alloc < want)
			alloc = alloc > SIZE_MAX / 2 ? want : alloc * 2;
		if (alloc > r->body_cap + 1)
			alloc = r->body_cap + 1;
		nb = realloc(r->body, alloc);
		if (nb == NULL)
			return false;
		r->body = nb;
		r->body_alloc = alloc;
	}
	memcpy(r->body + r->body_len, data, n);
	r->body_len += n;
	r->body[r->body_len] = '\0';
	return true;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *conn, const char *url,
    const char *method, const char *version, const char *upload_data,
    size_t *upload_data_size, void **con_cls)
{
	struct req *r = *con_cls;

	if (r == NULL)
		return MHD_NO;
	if (r->flushed) {
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!r->first_call_done) {
		r->first_call_done = true;
		atomic_fetch_add(&r->srv->metrics.in_flight, 1);
		(void)begin_request(r, url, method, version);
		/*
		 * An answer queued on the first call makes libmicrohttpd close
		 * the connection, which is right when a body will not be read
		 * (413, or an error for a request that has one); other early
		 * answers wait for the final call to keep the connection.
		 */
		if (r->replied && (r->status == 413 || r->declared_len != 0 ||
		    r->chunked || r->close))
			return flush_reply(r);
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		if (r->replied) {
			*upload_data_size = 0;
			return MHD_YES;
		}
		if (r->too_large) {
			/*
			 * Only a declared length is refused before the body;
			 * a chunked one past the cap is read and dropped so
			 * that the 413 can be sent once it ends (libmicrohttpd
			 * cannot answer mid-upload), up to the cap once more,
			 * then the connection is closed without an answer.
			 */
			r->dropped += *upload_data_size;
			*upload_data_size = 0;
			return r->dropped > r->body_cap + BODY_DROP_MIN ?
			    MHD_NO : MHD_YES;
		}
		if (!append_body(r, upload_data, *upload_data_size))
			return MHD_NO;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (!r->replied)
		dispatch(r);
	if (r->replied)
		return flush_reply(r);
	return MHD_YES;	/* suspended */
}

static void __attribute__((format(printf, 2, 0)))
mhd_logger(void *cls, const char *fmt, va_list ap)
{
	char buf[512];

	if (vsnprintf(buf, sizeof(buf), fmt, ap) < 0)
		return;
	buf[strcspn(buf, "\n")] = '\0';
	log_msg("http: %s", buf);
}

struct http *
http_start(struct server *srv, uint16_t *port, char *err, size_t errlen)
{
	const struct config *cfg = &srv->cfg;
	struct http *h;
	struct addrinfo hints, *ai = NULL;
	char portstr[8];
	unsigned flags;
	int rc, threads = cfg->threads;
	const union MHD_DaemonInfo *info;

	if (threads <= 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);
		bool pg = strcmp(store_backend(srv->store), "postgres") == 0;

		/*
		 * A worker waits for its request's durable commit, and all the
		 * connections it serves wait with it: the default is several
		 * workers per core, so that many writes share one commit
		 * (group commit, docs/OPERATIONS.md) while the others go on.
		 * On PostgreSQL one per core, as more bought nothing there and
		 * each holds a database connection.
		 */
		if (n < 1)
			n = 1;
		threads = (int)(pg ? n * HTTP_THREADS_PER_CORE_PG :
		    n * HTTP_THREADS_PER_CORE);
		if (threads > HTTP_THREADS_AUTO_MAX)
			threads = HTTP_THREADS_AUTO_MAX;
	}
	h = calloc(1, sizeof(*h));
	if (h == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	h->srv = srv;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	snprintf(portstr, sizeof(portstr), "%u", (unsigned)cfg->listen_port);
	rc = getaddrinfo(cfg->listen_host, portstr, &hints, &ai);
	if (rc != 0 || ai == NULL) {
		snprintf(err, errlen, "LISTEN: cannot resolve '%s': %s",
		    cfg->listen_host, gai_strerror(rc));
		free(h);
		return NULL;
	}
	flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL |
	    MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
	if (ai->ai_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	h->daemon = MHD_start_daemon(flags, 0, NULL, NULL,
	    access_handler, h,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
	    MHD_OPTION_SOCK_ADDR, ai->ai_addr,
	    MHD_OPTION_THREAD_POOL_SIZE, (unsigned)threads,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)cfg->connection_timeout_s,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->max_connections,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT,
	    (unsigned)cfg->max_connections_per_ip,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->connection_memory,
	    MHD_OPTION_NOTIFY_COMPLETED, completed, h,
	    MHD_OPTION_URI_LOG_CALLBACK, uri_logger, h,
	    MHD_OPTION_NOTIFY_CONNECTION, conn_notify, h,
	    MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1,
	    MHD_OPTION_END);
	freeaddrinfo(ai);
	if (h->daemon == NULL) {
		snprintf(err, errlen, "LISTEN: cannot listen on %s:%u",
		    cfg->listen_host, (unsigned)cfg->listen_port);
		free(h);
		return NULL;
	}
	info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
	*port = info ? info->port : cfg->listen_port;
	return h;
}

void
http_stop(struct http *h, int64_t timeout_ms)
{
	int64_t deadline = time_mono_ms() + timeout_ms;
	struct timespec ts = { 0, 20 * 1000 * 1000 };

	if (h == NULL)
		return;
	MHD_quiesce_daemon(h->daemon);
	/*
	 * Let requests in flight finish. libmicrohttpd must not be stopped
	 * while a connection is suspended, so suspended ones (long-polls,
	 * queued hashes: both answer promptly once `stopping` is set) are
	 * waited for even past the deadline.
	 */
	for (;;) {
		bool late = time_mono_ms() >= deadline;

		if (late)
			atomic_store(&h->srv->abandon, 1);
		if ((atomic_load(&h->srv->metrics.in_flight) == 0 || late) &&
		    atomic_load(&h->srv->metrics.suspended) == 0)
			break;
		events_wake_all(h->srv->hub);
		nanosleep(&ts, NULL);
	}
	MHD_stop_daemon(h->daemon);
	free(h);
}
