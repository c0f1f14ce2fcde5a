/*
 * fuzz_request: raw HTTP requests against a real flamingo-syncd running in
 * this process (libmicrohttpd, router, auth, handlers, SQLite store), over
 * loopback TCP.
 *
 * LLVMFuzzerInitialize starts the server as main.c does (sodium, libcurl,
 * config_defaults + config_load with a fake argv and environment, then
 * server_start) on 127.0.0.1:0 with a fresh SQLite file (on /dev/shm when
 * there is one: the store fsyncs every commit), every rate limit off (so the
 * fuzzer is not throttled), long-polls and event streams capped at 1 s,
 * trusted proxies and a metrics token set (so that their code is
 * reachable), and sets up state
 * through the API: a user with a web session, a device session (init ->
 * claim -> token), data and a key.
 *
 * An input is one raw HTTP request (or several, pipelined). These
 * placeholders are replaced before it is sent, so that inputs reach the
 * authenticated handlers (the length each expands to is fixed, so seeds can
 * carry exact Content-Lengths; @ORIGIN@ is 22 with a 5-digit port):
 *   @BEARER@    41  the device session token (flm_sync_...)
 *   @COOKIE@    40  the web session cookie value (flm_web_...)
 *   @ORIGIN@        the public origin (http://127.0.0.1:PORT), for CSRF
 *   @EMAIL@     31  the user's email
 *   @PASSWORD@  20  the user's password
 *   @CODE@       9  the user code (XXXX-XXXX) of a fresh pending device
 *                   request, made for this input
 *   @TEMP@      41  its temp token (the same request as @CODE@)
 *   @DEVICE@    36  the id of a fresh second device of the user
 *   @KEYVER@    10  the current key version, space-padded (valid JSON)
 *   @REUSED@    41  a device token that was rotated and whose successor
 *                   was used: presenting it is a reuse (of another device,
 *                   made for this input)
 * The request is written to a new connection, the write side shut down,
 * and the answer read until EOF. FUZZ_VERBOSE=1 prints every answer.
 *
 * Findings (abort, so libFuzzer saves the input):
 *   - any sanitizer report in any server thread (in-process: it kills us),
 *     leaks included (LeakSanitizer, after suspect inputs and at exit);
 *   - a 500 answer: the server says it has a bug (store errors on bad input,
 *     a handler that did not reply, ...);
 *   - a request that gets no byte for FUZZ_STALL_MS, sent again, gets none
 *     for FUZZ_HANG_MS either (a hang), or a server that stops answering
 *     GET /healthz (checked every HEALTH_EVERY inputs and after a stall).
 *
 * If an input ends a session (logout, revoke, rotate) or changes the
 * password, that is undone before the next input: web sessions and the
 * password hash directly in the store (no Argon2id), device sessions
 * through the device flow.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/b64.h"
#include "common/timeutil.h"
#include "common/token.h"
#include "store/store.h"
#include "server/config.h"
#include "server/server.h"
#include "server/turnstile.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_STALL_MS 2000   /* silence that makes us look closer */
#define FUZZ_HANG_MS 10000   /* silence on the retry that is a hang */
#define HEALTH_EVERY 64      /* inputs between two health checks */
#define RESP_KEEP 65536      /* bytes of an answer we keep to look at */
#define SHUT_WAIT_MS 20      /* see exchange() */
#define SETTLE_MS 200        /* see settle() */

#define FAIL(...) do { \
	fprintf(stderr, "fuzz_request: FINDING: " __VA_ARGS__); \
	fputc('\n', stderr); \
	abort(); \
} while (0)

static struct server *srv;
static uint16_t port;
static char dbdir[PATH_MAX];
static char db_url[PATH_MAX + 16];
static char listen_arg[] = "127.0.0.1:0";

/* Credentials of the current user. */
static struct {
	unsigned generation;         /* users set up so far */
	char email[64];
	char password[40];
	char cookie[TOKEN_MAX_LEN + 1];
	char bearer[TOKEN_MAX_LEN + 1];
	char device[UUID_LEN + 1];
	char user_id[UUID_LEN + 1];
	char pw_hash[STORE_PWHASH_MAX + 1];  /* the stored hash of password */
} st;

static bool verbose;             /* FUZZ_VERBOSE=1: print each answer */

static struct {
	unsigned long inputs, stalls, no_answer, resets, device_resets;
	unsigned long status[6];      /* answers by class: 1xx .. 5xx */
	unsigned long s503;
	unsigned long shut_waits;     /* exchanges that waited SHUT_WAIT_MS */
	unsigned long unsettled;      /* inputs still in flight after SETTLE_MS */
	int64_t ms_inputs, ms_upkeep; /* time in inputs, in set-up checks */
	unsigned long slow, slow_events; /* inputs of 500 ms or more */
	int64_t ms_slow;
} stats;

/* ---- one HTTP exchange --------------------------------------------------- */

struct answer {
	char *buf;          /* first RESP_KEEP bytes, NUL-terminated */
	size_t len;         /* bytes kept */
	size_t total;       /* bytes received */
	bool eof;           /* the server closed: the answer is complete */
	bool stalled;       /* no byte for timeout_ms */
};

static void
answer_free(struct answer *a)
{
	free(a->buf);
	memset(a, 0, sizeof(*a));
}

/*
 * Connects, writes req, shuts the write side, reads until EOF, a read
 * timeout (no byte for timeout_ms) or an error. Returns -1 when the
 * connection or the write fails.
 */
static int
exchange(const char *req, size_t len, int timeout_ms, struct answer *a)
{
	struct sockaddr_in sa;
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	struct linger lg = { 1, 0 };
	struct pollfd pfd;
	uint_fast64_t before;
	size_t off = 0;
	ssize_t n;
	char tmp[16384];
	int fd, one = 1, rc = -1, waited;

	memset(a, 0, sizeof(*a));
	a->buf = malloc(RESP_KEEP + 1);
	if (a->buf == NULL)
		FAIL("harness: out of memory");
	a->buf[0] = '\0';
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons(port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto out;
	before = atomic_load(&srv->metrics.requests);
	while (off < len) {
		n = send(fd, req + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;	/* the server may close early (413, 400) */
		off += (size_t)n;
	}
	/*
	 * libmicrohttpd (epoll, edge-triggered) misses a FIN that arrives
	 * together with a complete keep-alive request: it answers, then
	 * waits for the next request until CONNECTION_TIMEOUT. A FIN sent
	 * after its first read of the request is a new edge and is seen at
	 * once. So shut the write side when the server has parsed a request
	 * line (its counter moved), has answered, or after SHUT_WAIT_MS (an
	 * input without a complete request line: the server keeps reading
	 * and sees the FIN anyway).
	 */
	pfd.fd = fd;
	pfd.events = POLLIN;
	for (waited = 0; waited < SHUT_WAIT_MS; waited++) {
		if (atomic_load(&srv->metrics.requests) != before ||
		    poll(&pfd, 1, 1) != 0)
			break;
	}
	if (waited == SHUT_WAIT_MS)
		stats.shut_waits++;
	shutdown(fd, SHUT_WR);
	for (;;) {
		n = recv(fd, tmp, sizeof(tmp), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			a->eof = true;
			break;
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				a->stalled = true;
			else
				a->eof = true;	/* reset by the server */
			break;
		}
		if (a->len < RESP_KEEP) {
			size_t keep = (size_t)n < RESP_KEEP - a->len ?
			    (size_t)n : RESP_KEEP - a->len;

			memcpy(a->buf + a->len, tmp, keep);
			a->len += keep;
			a->buf[a->len] = '\0';
		}
		a->total += (size_t)n;
	}
	rc = 0;
out:
	/* An abortive close: no TIME_WAIT pile-up on loopback over millions
	 * of connections. */
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
	return rc;
}

/* The status of the first answer, or 0. */
static int
answer_status(const struct answer *a)
{
	if (a->len < 12 || strncmp(a->buf, "HTTP/1.", 7) != 0 ||
	    a->buf[8] != ' ')
		return 0;
	return atoi(a->buf + 9);
}

/* The body of the first answer (after the blank line), or "". */
static const char *
answer_body(const struct answer *a)
{
	const char *p = strstr(a->buf, "\r\n\r\n");

	return p ? p + 4 : "";
}

/* ---- set-up through the API -------------------------------------------- */

/*
 * One API call of the harness itself (must succeed): JSON body (or none),
 * optional bearer / cookie (with Origin). Returns the parsed body; *status
 * gets the status. Aborts when the server does not answer.
 */
static json_t *
api(const char *method, const char *path, const char *bearer,
    const char *cookie, const char *body, int *status, struct answer *keep)
{
	char req[8192], hdr[512] = "";
	struct answer a;
	json_t *j;
	int n;

	if (bearer != NULL)
		snprintf(hdr, sizeof(hdr), "Authorization: Bearer %s\r\n",
		    bearer);
	else if (cookie != NULL)
		snprintf(hdr, sizeof(hdr), "Cookie: flm_session=%s\r\n"
		    "Origin: %s\r\n", cookie, srv->cfg.public_origin);
	n = snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: fuzz\r\n"
	    "Connection: close\r\n%s%s%zu\r\n\r\n%s", method, path, hdr,
	    body ? "Content-Type: application/json\r\nContent-Length: " :
	    "Content-Length: ", body ? strlen(body) : (size_t)0,
	    body ? body : "");
	if (n < 0 || (size_t)n >= sizeof(req))
		FAIL("harness: request too long");
	if (exchange(req, (size_t)n, FUZZ_HANG_MS, &a) != 0 || !a.eof)
		FAIL("set-up: %s %s: no answer from the server", method, path);
	*status = answer_status(&a);
	j = json_loads(answer_body(&a), 0, NULL);
	if (keep != NULL)
		*keep = a;
	else
		answer_free(&a);
	return j;
}

static const char *
jget(json_t *j, const char *a, const char *b)
{
	json_t *v = json_object_get(j, a);

	if (b != NULL)
		v = json_object_get(v, b);
	return json_string_value(v);
}

static void
copy_out(char *dst, size_t cap, const char *src, const char *what)
{
	if (src == NULL || strlen(src) >= cap)
		FAIL("set-up: bad %s in the answer", what);
	memcpy(dst, src, strlen(src) + 1);
}

/* A new pending device request: its user code and temp token. */
static void
device_init(char code[16], char temp[TOKEN_MAX_LEN + 1])
{
	json_t *j;
	int status;

	j = api("POST", "/api/sync/init", NULL, NULL,
	    "{\"device_name\":\"fuzz device\",\"platform\":\"fuzz\","
	    "\"app_version\":\"1.0\"}", &status, NULL);
	if (status != 201)
		FAIL("set-up: init answered %d", status);
	copy_out(code, 16, jget(j, "data", "user_code"), "user_code");
	copy_out(temp, TOKEN_MAX_LEN + 1, jget(j, "data", "temp_token"),
	    "temp_token");
	json_decref(j);
}

/* A new device of the user, claimed (no session): its id. */
static void
device_claimed(char id[UUID_LEN + 1], char temp[TOKEN_MAX_LEN + 1])
{
	char code[16], body[128];
	json_t *j;
	int status;

	device_init(code, temp);
	snprintf(body, sizeof(body), "{\"user_code\":\"%s\"}", code);
	j = api("POST", "/api/sync/claim", NULL, st.cookie, body, &status,
	    NULL);
	if (status != 200)
		FAIL("set-up: claim answered %d", status);
	copy_out(id, UUID_LEN + 1, json_string_value(json_object_get(
	    json_object_get(json_object_get(j, "data"), "device"), "id")),
	    "device id");
	json_decref(j);
}

static void
cookie_from(const struct answer *a)
{
	const char *p = strstr(a->buf, "Set-Cookie: flm_session=");
	size_t n;

	if (p == NULL)
		FAIL("set-up: no session cookie");
	p += strlen("Set-Cookie: flm_session=");
	n = strcspn(p, ";\r\n");
	if (n >= sizeof(st.cookie))
		FAIL("set-up: cookie too long");
	memcpy(st.cookie, p, n);
	st.cookie[n] = '\0';
}

/*
 * Fixtures written straight into the store, so that an input that ends
 * the web session or changes the password does not cost an Argon2id hash
 * to undo: a fresh web session for the user, or the password hash put
 * back. (Everything else is set up through the API.)
 */
struct fixture {
	const struct store_websess *ws;   /* insert this, or */
	const char *hash;                 /* set this password hash */
};

static enum store_status
fixture_tx(struct store_conn *c, void *cls)
{
	const struct fixture *f = cls;

	if (f->ws != NULL)
		return store_call(c, websess_insert, f->ws);
	return store_call(c, user_set_password, st.user_id, f->hash);
}

static void
fixture_read_hash(void)
{
	struct store_conn *c = store_conn(srv->store);
	struct store_user u;

	if (c == NULL || store_call(c, user_by_id, st.user_id, &u) != STORE_OK)
		FAIL("set-up: cannot read the user back");
	memcpy(st.pw_hash, u.password_hash, sizeof(st.pw_hash));
}

static void
fixture_web_session(void)
{
	struct store_websess ws;
	struct fixture f = { &ws, NULL };
	int64_t now = time_now_ms();

	memset(&ws, 0, sizeof(ws));
	token_generate(st.cookie, TOKEN_WEB_PREFIX);
	token_hash(ws.hash, st.cookie, strlen(st.cookie));
	memcpy(ws.user_id, st.user_id, sizeof(ws.user_id));
	ws.created_at = ws.last_used_at = now;
	ws.expires_at = now + 86400LL * 1000;
	if (store_tx(srv->store, true, fixture_tx, &f) != STORE_OK)
		FAIL("set-up: cannot insert a web session");
}

static void
fixture_password(void)
{
	struct fixture f = { NULL, st.pw_hash };

	if (store_tx(srv->store, true, fixture_tx, &f) != STORE_OK)
		FAIL("set-up: cannot restore the password");
}

/* A new device session of the current user (init -> claim -> token):
 * its token and device id. */
static void
device_token(char token[TOKEN_MAX_LEN + 1], char dev[UUID_LEN + 1])
{
	char body[128], temp[TOKEN_MAX_LEN + 1];
	json_t *j;
	int status;

	device_claimed(dev, temp);
	snprintf(body, sizeof(body), "{\"temp_token\":\"%s\"}", temp);
	j = api("POST", "/api/sync/token", NULL, NULL, body, &status, NULL);
	if (status != 200)
		FAIL("set-up: token answered %d", status);
	copy_out(token, TOKEN_MAX_LEN + 1, jget(j, "data", "session_token"),
	    "session_token");
	copy_out(dev, UUID_LEN + 1, jget(j, "data", "device_id"),
	    "device_id");
	json_decref(j);
}

static void
device_session(void)
{
	device_token(st.bearer, st.device);
}

/* The token of a new device session that was rotated, its successor
 * already used: presenting it again is a reuse (auth.c revokes that
 * session). */
static void
device_token_reused(char old[TOKEN_MAX_LEN + 1])
{
	char dev[UUID_LEN + 1], next[TOKEN_MAX_LEN + 1];
	json_t *j;
	int status;

	device_token(old, dev);
	j = api("POST", "/api/sync/rotate", old, NULL, "{}", &status, NULL);
	if (status != 200)
		FAIL("set-up: rotate answered %d", status);
	copy_out(next, sizeof(next), jget(j, "data", "session_token"),
	    "session_token");
	json_decref(j);
	json_decref(api("GET", "/api/sync/config", next, NULL, NULL, &status,
	    NULL));
	if (status != 200)
		FAIL("set-up: the rotated token answered %d", status);
}

/* A user (signup), a device session, two data types and a key. */
static void
provision(void)
{
	char body[512];
	unsigned char blob[48];
	char b64[80];
	struct answer a;
	json_t *j;
	int status;

	st.generation++;
	/* fixed lengths (see the top of the file) */
	snprintf(st.email, sizeof(st.email), "fuzz%06u-%s@example.com",
	    st.generation % 1000000, srv->instance);
	snprintf(st.password, sizeof(st.password), "fuzz-password-%06u",
	    st.generation % 1000000);
	snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"%s\"}",
	    st.email, st.password);
	j = api("POST", "/api/auth/signup", NULL, NULL, body, &status, &a);
	if (status != 201)
		FAIL("set-up: signup answered %d", status);
	cookie_from(&a);
	answer_free(&a);
	copy_out(st.user_id, sizeof(st.user_id), json_string_value(
	    json_object_get(json_object_get(json_object_get(j, "data"),
	    "user"), "id")), "user id");
	json_decref(j);
	fixture_read_hash();

	device_session();

	randombytes_buf(blob, sizeof(blob));
	b64_encode(b64, blob, sizeof(blob));
	snprintf(body, sizeof(body), "{\"wrapped_key\":\"%s\",\"kdf\":"
	    "{\"name\":\"argon2id\",\"t\":3,\"m\":65536,\"p\":1}}", b64);
	json_decref(api("PUT", "/api/sync/key", st.bearer, NULL, body,
	    &status, NULL));
	if (status != 200)
		FAIL("set-up: key answered %d", status);
	snprintf(body, sizeof(body), "{\"encrypted_data\":\"%s\","
	    "\"key_version\":1}", b64);
	json_decref(api("PUT", "/api/sync/data/history", st.bearer, NULL,
	    body, &status, NULL));
	if (status != 200)
		FAIL("set-up: data answered %d", status);
	json_decref(api("PUT", "/api/sync/data/secret", st.bearer, NULL,
	    body, &status, NULL));
	if (status != 200)
		FAIL("set-up: data answered %d", status);
}

/*
 * Both sessions still work, or are made again: a lost web session (logout)
 * in the store, a lost device session (revoke, rotation, reuse detection)
 * through the device flow.
 */
static void
ensure_sessions(void)
{
	int s1, s2;

	json_decref(api("GET", "/api/auth/session", NULL, st.cookie, NULL,
	    &s2, NULL));
	if (s2 != 200) {
		stats.resets++;
		fixture_web_session();
	}
	json_decref(api("GET", "/api/sync/config", st.bearer, NULL, NULL,
	    &s1, NULL));
	if (s1 != 200) {
		stats.device_resets++;
		device_session();
	}
}

static void
health_or_die(const char *why)
{
	struct answer a;
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: fuzz\r\n"
	    "Connection: close\r\n\r\n";

	if (exchange(req, sizeof(req) - 1, FUZZ_HANG_MS, &a) != 0)
		FAIL("the server no longer accepts connections (%s)", why);
	if (!a.eof || answer_status(&a) != 200)
		FAIL("GET /healthz answered %d%s (%s)", answer_status(&a),
		    a.eof ? "" : " and then hung", why);
	answer_free(&a);
}

/*
 * Waits (briefly, on the server's own gauge) until no request is in
 * flight: the server frees a request's memory when it completes, which may
 * be just after the client saw EOF. Returning before that would make
 * libFuzzer suspect a leak after nearly every input and run LeakSanitizer
 * each time; it also keeps one input's work out of the next one's
 * coverage.
 */
static void
settle(void)
{
	int64_t until = time_mono_ms() + SETTLE_MS;

	while (atomic_load(&srv->metrics.in_flight) != 0) {
		if (time_mono_ms() >= until) {
			stats.unsettled++;
			return;
		}
		sched_yield();
	}
}

/* ---- placeholders ---------------------------------------------------------- */

struct expand {
	char *buf;
	size_t len, cap;
	char code[16], temp[TOKEN_MAX_LEN + 1];   /* made on first use */
	char device[UUID_LEN + 1];
	char keyver[16];
	char reused[TOKEN_MAX_LEN + 1];
};

static void
put(struct expand *e, const void *p, size_t n)
{
	if (e->len + n + 1 > e->cap) {
		size_t cap = (e->len + n + 1) * 2;
		char *nb = realloc(e->buf, cap);

		if (nb == NULL)
			FAIL("harness: out of memory");
		e->buf = nb;
		e->cap = cap;
	}
	memcpy(e->buf + e->len, p, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static const char *
placeholder(struct expand *e, const char *name, size_t n)
{
#define IS(s) (n == sizeof(s) - 1 && memcmp(name, s, n) == 0)
	if (IS("BEARER"))
		return st.bearer;
	if (IS("COOKIE"))
		return st.cookie;
	if (IS("ORIGIN"))
		return srv->cfg.public_origin;
	if (IS("EMAIL"))
		return st.email;
	if (IS("PASSWORD"))
		return st.password;
	if (IS("CODE") || IS("TEMP")) {
		if (e->code[0] == '\0')
			device_init(e->code, e->temp);
		return IS("CODE") ? e->code : e->temp;
	}
	if (IS("REUSED")) {
		if (e->reused[0] == '\0')
			device_token_reused(e->reused);
		return e->reused;
	}
	if (IS("KEYVER")) {
		/* JSON allows the padding: a fixed length */
		json_t *j;
		int status;

		j = api("GET", "/api/sync/key", st.bearer, NULL, NULL, &status,
		    NULL);
		snprintf(e->keyver, sizeof(e->keyver), "%-10lld",
		    (long long)json_integer_value(json_object_get(
		    json_object_get(j, "data"), "version")));
		json_decref(j);
		return e->keyver;
	}
	if (IS("DEVICE")) {
		char temp[TOKEN_MAX_LEN + 1];

		if (e->device[0] == '\0')
			device_claimed(e->device, temp);
		return e->device;
	}
	return NULL;
#undef IS
}

static void
expand(struct expand *e, const uint8_t *data, size_t size)
{
	size_t i = 0;

	memset(e, 0, sizeof(*e));
	put(e, "", 0);
	while (i < size) {
		const uint8_t *end;
		const char *v;

		if (data[i] == '@' && (end = memchr(data + i + 1, '@',
		    size - i - 1 < 10 ? size - i - 1 : 10)) != NULL &&
		    (v = placeholder(e, (const char *)data + i + 1,
		    (size_t)(end - data) - i - 1)) != NULL) {
			put(e, v, strlen(v));
			i = (size_t)(end - data) + 1;
			continue;
		}
		put(e, data + i, 1);
		i++;
	}
}

/* Whether the request may have ended one of our sessions or changed the
 * password: then both are checked before the next input. */
static bool
may_end_sessions(const char *req)
{
	static const char *const words[] = {
		"revoke", "rotate", "logout", "password", "devices", "%",
	};
	size_t i;

	for (i = 0; i < sizeof(words) / sizeof(words[0]); i++)
		if (strstr(req, words[i]) != NULL)
			return true;
	return false;
}

/* ---- libFuzzer ------------------------------------------------------------ */

static const char *
fake_env(const char *name)
{
	static const char *const env[][2] = {
		{ "LOG_REQUESTS", "false" },
		{ "THREADS", "2" },
		{ "CONNECTION_TIMEOUT", "2" },
		/* the events long-poll waits at most this long */
		{ "LONGPOLL_MAX_SECONDS", "1" },
		{ "STREAM_MAX_SECONDS", "1" },
		{ "RATE_SIGNUP", "0/60" },
		{ "RATE_INIT", "0/60" },
		{ "RATE_USER_CODE_USER", "0/60" },
		{ "RATE_USER_CODE_IP", "0/60" },
		{ "RATE_LOGIN_ACCOUNT", "0/60" },
		{ "RATE_LOGIN_IP", "0/60" },
		/* reach the X-Forwarded-For parser and the metrics check */
		{ "TRUSTED_PROXIES", "127.0.0.1,::1" },
		{ "METRICS_TOKEN", "fuzz-metrics-token" },
	};
	size_t i;

	for (i = 0; i < sizeof(env) / sizeof(env[0]); i++)
		if (strcmp(name, env[i][0]) == 0)
			return env[i][1];
	return NULL;
}

static void
rm_dbdir(void)
{
	static const char *const files[] = {
		"fuzz.db", "fuzz.db-wal", "fuzz.db-shm", "fuzz.db-journal",
	};
	char path[PATH_MAX + 32];
	size_t i;

	for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dbdir, files[i]);
		unlink(path);
	}
	rmdir(dbdir);
}

static void
at_exit(void)
{
	if (srv == NULL)
		return;
	fprintf(stderr, "fuzz_request: %lu inputs: %lu stalls, %lu without "
	    "an answer, first answers 1xx %lu 2xx %lu 3xx %lu 4xx %lu "
	    "5xx %lu (503 %lu, other legitimate %lu); set up again: %lu "
	    "device sessions, %lu web sessions or passwords; Argon2id runs %llu; %lld ms in "
	    "inputs (%lu waited %d ms to shut down, %lu still in flight "
	    "after %d ms; %lu took 500 ms or more, %lld ms in all, %lu of "
	    "them events long-polls), %lld ms in upkeep\n",
	    stats.inputs, stats.stalls,
	    stats.no_answer, stats.status[1], stats.status[2],
	    stats.status[3], stats.status[4], stats.status[5], stats.s503,
	    stats.status[5] - stats.s503, stats.device_resets, stats.resets,
	    (unsigned long long)atomic_load(&srv->metrics.hashes),
	    (long long)stats.ms_inputs, stats.shut_waits, SHUT_WAIT_MS,
	    stats.unsettled, SETTLE_MS, stats.slow, (long long)stats.ms_slow,
	    stats.slow_events, (long long)stats.ms_upkeep);
	server_stop(srv, 2000);
	turnstile_global_cleanup();
	free(srv);
	srv = NULL;
	rm_dbdir();
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	struct stat sb;
	char err[512];
	char *args[] = { (char *)"fuzz_request", (char *)"--listen",
	    listen_arg, (char *)"--database", db_url, NULL };

	(void)argc;
	(void)argv;
	signal(SIGPIPE, SIG_IGN);
	verbose = getenv("FUZZ_VERBOSE") != NULL &&
	    strcmp(getenv("FUZZ_VERBOSE"), "1") == 0;
	/* tmpfs when there is one: SQLite runs with synchronous=FULL. */
	if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) &&
	    access("/dev/shm", W_OK) == 0)
		tmp = "/dev/shm";
	snprintf(dbdir, sizeof(dbdir), "%s/flamingo-fuzz.XXXXXX",
	    tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(dbdir) == NULL)
		FAIL("harness: mkdtemp: %s", strerror(errno));
	snprintf(db_url, sizeof(db_url), "sqlite:%s/fuzz.db", dbdir);

	if (sodium_init() < 0 || turnstile_global_init() != 0)
		FAIL("harness: cannot initialise crypto");
	srv = calloc(1, sizeof(*srv));
	if (srv == NULL)
		FAIL("harness: out of memory");
	config_defaults(&srv->cfg);
	if (config_load(&srv->cfg, 5, args, fake_env, stdout, err,
	    sizeof(err)) != CONFIG_OK)
		FAIL("harness: config: %s", err);
	if (server_start(srv, &port, err, sizeof(err)) != 0)
		FAIL("harness: server_start: %s", err);
	atexit(at_exit);
	fprintf(stderr, "fuzz_request: server on %s, database %s\n",
	    srv->cfg.public_origin, db_url);
	provision();
	health_or_die("after set-up");
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct expand e;
	struct answer a;
	int64_t t0, t1;
	int status;

	stats.inputs++;
	t0 = time_mono_ms();
	expand(&e, data, size);
	if (exchange(e.buf, e.len, FUZZ_STALL_MS, &a) != 0)
		FAIL("cannot connect to or write to the server");
	if (a.stalled) {
		/* No byte for FUZZ_STALL_MS: is the whole server stuck, or
		 * this request? Ask both, the request with more patience. */
		stats.stalls++;
		health_or_die("after a request stalled");
		answer_free(&a);
		if (exchange(e.buf, e.len, FUZZ_HANG_MS, &a) != 0)
			FAIL("cannot connect to or write to the server");
		if (a.stalled)
			FAIL("the request got no answer for %d ms, twice "
			    "(a hang); it had sent %zu bytes:\n%.2000s",
			    FUZZ_HANG_MS, a.total, a.buf);
	}
	status = answer_status(&a);
	if (verbose)
		fprintf(stderr, "fuzz_request: %.*s -> %d %.300s\n",
		    (int)strcspn(e.buf, "\r\n"), e.buf, status,
		    answer_body(&a));
	if (a.total == 0)
		stats.no_answer++;
	if (status >= 100 && status < 600)
		stats.status[status / 100]++;
	if (status == 503)
		stats.s503++;
	if (status >= 500) {
		/* 500 is the server's "something went wrong"; the others are
		 * legitimate: 503 storage busy, libmicrohttpd's 505 and 501. */
		if (status == 500)
			FAIL("answer %d to the request:\n%.2000s\n"
			    "----- answer -----\n%.2000s", status, e.buf,
			    a.buf);
	}
	answer_free(&a);
	settle();
	t1 = time_mono_ms();
	stats.ms_inputs += t1 - t0;
	if (t1 - t0 >= 500) {
		stats.slow++;
		stats.ms_slow += t1 - t0;
		if (strstr(e.buf, "/events") != NULL)
			stats.slow_events++;
	}
	if (status == 200 && strstr(e.buf, "/api/auth/password") != NULL) {
		/* make @PASSWORD@ the password again */
		stats.resets++;
		fixture_password();
	}
	if (may_end_sessions(e.buf) || stats.inputs % HEALTH_EVERY == 0) {
		health_or_die("periodic check");
		ensure_sessions();
	}
	stats.ms_upkeep += time_mono_ms() - t1;
	free(e.buf);
	return 0;
}
