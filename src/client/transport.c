#include "transport.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

struct body_buf {
	unsigned char *p;
	size_t len;
	size_t alloc;
	size_t cap;
	int over;
};

void
transport_copy_text(char *out, size_t cap, const char *s)
{
	size_t i;

	if (cap == 0)
		return;
	for (i = 0; s != NULL && s[i] != '\0' && i + 1 < cap; i++) {
		unsigned char ch = (unsigned char)s[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? '?' : (char)ch;
	}
	/* Cut inside a UTF-8 sequence: drop its first bytes too, so the copy
	 * stays valid UTF-8 (jansson refuses anything else). */
	if (s != NULL && ((unsigned char)s[i] & 0xC0) == 0x80) {
		while (i > 0 && ((unsigned char)out[i - 1] & 0xC0) == 0x80)
			i--;
		if (i > 0 && ((unsigned char)out[i - 1] & 0xC0) == 0xC0)
			i--;
	}
	out[i] = '\0';
}

void
transport_error(fls_error *err, fls_status st, const char *fmt, ...)
{
	va_list ap;

	err->status = st;
	va_start(ap, fmt);
	if (vsnprintf(err->message, sizeof(err->message), fmt, ap) < 0)
		err->message[0] = '\0';
	va_end(ap);
}

static int
is_loopback(const char *host, size_t len)
{
	return (len == 9 && strncmp(host, "127.0.0.1", 9) == 0) ||
	    (len == 9 && strncasecmp(host, "localhost", 9) == 0) ||
	    (len == 5 && strncmp(host, "[::1]", 5) == 0);
}

fls_status
transport_init(struct transport *t, const char *base, bool allow_http)
{
	size_t len, i, hostlen;
	const char *host;
	int https;

	memset(t, 0, sizeof(*t));
	if (base == NULL)
		return FLS_ERR_ARG;
	len = strlen(base);
	while (len > 0 && base[len - 1] == '/')
		len--;
	if (len == 0 || len >= sizeof(t->base))
		return FLS_ERR_ARG;
	if (strncmp(base, "https://", 8) == 0) {
		https = 1;
		host = base + 8;
	} else if (strncmp(base, "http://", 7) == 0) {
		https = 0;
		host = base + 7;
	} else {
		return FLS_ERR_ARG;
	}
	hostlen = len - (size_t)(host - base);
	if (hostlen == 0)
		return FLS_ERR_ARG;
	for (i = 0; i < hostlen; i++) {
		unsigned char ch = (unsigned char)host[i];

		if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == ':' ||
		    ch == '[' || ch == ']'))
			return FLS_ERR_ARG;
	}
	if (!https && !allow_http) {
		const char *colon = NULL;
		size_t hl = hostlen;

		/* host part without :port */
		if (host[0] == '[') {
			const char *rb = memchr(host, ']', hostlen);

			if (rb == NULL)
				return FLS_ERR_ARG;
			hl = (size_t)(rb - host) + 1;
		} else {
			colon = memchr(host, ':', hostlen);
			if (colon != NULL)
				hl = (size_t)(colon - host);
		}
		if (!is_loopback(host, hl))
			return FLS_ERR_ARG;
	}
	memcpy(t->base, base, len);
	t->base[len] = '\0';
	t->token = sodium_malloc(TRANSPORT_TOKEN_CAP);
	if (t->token == NULL)
		return FLS_ERR_NOMEM;
	t->token[0] = '\0';
	t->curl = curl_easy_init();
	if (t->curl == NULL) {
		sodium_free(t->token);
		t->token = NULL;
		return FLS_ERR_NOMEM;
	}
	t->connect_s = 10;
	t->total_s = 120;
	snprintf(t->user_agent, sizeof(t->user_agent), "flamingo-sync/%s",
	    FLS_VERSION_STRING);
	return FLS_OK;
}

void
transport_fini(struct transport *t)
{
	if (t->curl != NULL)
		curl_easy_cleanup(t->curl);
	if (t->token != NULL)
		sodium_free(t->token);
	t->curl = NULL;
	t->token = NULL;
}

static size_t
on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct body_buf *b = ud;
	size_t n = size * nmemb;

	if (n > b->cap - b->len) {
		b->over = 1;
		return 0;
	}
	if (b->len + n > b->alloc) {
		size_t want = b->alloc ? b->alloc : 4096;
		unsigned char *np;

		while (want < b->len + n)
			want = want > b->cap / 2 ? b->cap : want * 2;
		np = realloc(b->p, want);
		if (np == NULL)
			return 0;
		b->p = np;
		b->alloc = want;
	}
	memcpy(b->p + b->len, ptr, n);
	b->len += n;
	return n;
}

static size_t
on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	long *retry_after = ud;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";

	if (n > sizeof(name) - 1 && strncasecmp(ptr, name, sizeof(name) - 1)
	    == 0) {
		char tmp[16];
		size_t vl = n - (sizeof(name) - 1);
		char *end;
		long v;

		if (vl >= sizeof(tmp))
			vl = sizeof(tmp) - 1;
		memcpy(tmp, ptr + sizeof(name) - 1, vl);
		tmp[vl] = '\0';
		v = strtol(tmp, &end, 10);
		if (end != tmp && v > 0 && v <= 3600)
			*retry_after = v;
	}
	return n;
}

static fls_status
map_error(long http, const char *code)
{
	if (http == 401)
		return FLS_ERR_UNAUTHORIZED;
	if (strcmp(code, "authorization_pending") == 0 ||
	    strcmp(code, "slow_down") == 0)
		return FLS_ERR_PENDING;
	if (strcmp(code, "access_denied") == 0)
		return FLS_ERR_DENIED;
	if (strcmp(code, "expired_token") == 0)
		return FLS_ERR_EXPIRED;
	if (strcmp(code, "sync_disabled") == 0)
		return FLS_ERR_DISABLED;
	if (strcmp(code, "conflict") == 0)
		return FLS_ERR_CONFLICT;
	if (strcmp(code, "key_version_mismatch") == 0)
		return FLS_ERR_KEY_CHANGED;
	if (http == 404)
		return FLS_ERR_NOT_FOUND;
	if (http == 413)
		return FLS_ERR_TOO_LARGE;
	if (http == 429)
		return FLS_ERR_RATE_LIMITED;
	return FLS_ERR_SERVER;
}

fls_status
transport_decode(const unsigned char *body, size_t len,
    struct transport_resp *r, fls_error *err)
{
	json_error_t jerr;
	json_t *succ;
	fls_status st;

	err->http_status = r->status;
	err->retry_after = r->retry_after;
	r->root = len > 0 ? json_loadb((const char *)body, len,
	    JSON_REJECT_DUPLICATES, &jerr) : NULL;
	succ = r->root != NULL ? json_object_get(r->root, "success") : NULL;
	if (r->root == NULL || !json_is_object(r->root) ||
	    !json_is_boolean(succ)) {
		json_decref(r->root);
		r->root = NULL;
		st = r->status == 401 ? FLS_ERR_UNAUTHORIZED : FLS_ERR_PROTOCOL;
		transport_error(err, st, "unexpected answer from the server "
		    "(HTTP %ld, not a Flamingo Sync JSON envelope)", r->status);
		return st;
	}
	r->data = json_object_get(r->root, "data");
	if (json_is_true(succ)) {
		if (r->data == NULL || r->status < 200 || r->status > 299) {
			/* a 401 means the session is gone, whatever the body */
			st = r->status == 401 ? FLS_ERR_UNAUTHORIZED :
			    FLS_ERR_PROTOCOL;
			transport_error(err, st, "malformed success answer "
			    "(HTTP %ld)", r->status);
			return st;
		}
		err->status = FLS_OK;
		return FLS_OK;
	} else {
		json_t *code = json_object_get(r->root, "error");
		json_t *msg = json_object_get(r->root, "message");

		transport_copy_text(err->code, sizeof(err->code),
		    json_is_string(code) ? json_string_value(code) : "");
		transport_copy_text(err->message, sizeof(err->message),
		    json_is_string(msg) ? json_string_value(msg) : "");
		st = map_error(r->status, err->code);
		if (st == FLS_ERR_PENDING && json_is_object(r->data)) {
			json_t *iv = json_object_get(r->data, "interval");

			if (json_is_integer(iv) && json_integer_value(iv) > 0 &&
			    json_integer_value(iv) <= 300)
				err->retry_after = (long)json_integer_value(iv);
		}
	}
	err->status = st;
	return st;
}

fls_status
transport_call(struct transport *t, const char *method, const char *path,
    const char *body, size_t bodylen, size_t cap, long timeout_s,
    struct transport_resp *r, fls_error *err)
{
	struct body_buf b = { NULL, 0, 0, cap, 0 };
	struct curl_slist *hdr = NULL;
	char url[TRANSPORT_URL_MAX + 1024];
	char *auth = NULL;
	CURLcode cc;
	fls_status st = FLS_ERR_NOMEM;
	int n;

	memset(r, 0, sizeof(*r));
	memset(err, 0, sizeof(*err));
	n = snprintf(url, sizeof(url), "%s%s", t->base, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		transport_error(err, FLS_ERR_ARG, "request URL too long");
		return FLS_ERR_ARG;
	}
	curl_easy_reset(t->curl);
	hdr = curl_slist_append(hdr, "Accept: application/json");
	if (hdr == NULL)
		goto done;
	if (body != NULL) {
		struct curl_slist *h2 = curl_slist_append(hdr,
		    "Content-Type: application/json");

		if (h2 == NULL)
			goto done;
		hdr = h2;
	}
	if (t->token[0] != '\0') {
		struct curl_slist *h2;

		auth = sodium_malloc(TRANSPORT_TOKEN_CAP + 32);
		if (auth == NULL)
			goto done;
		n = snprintf(auth, TRANSPORT_TOKEN_CAP + 32,
		    "Authorization: Bearer %s", t->token);
		if (n < 0 || (size_t)n >= TRANSPORT_TOKEN_CAP + 32)
			goto done;
		h2 = curl_slist_append(hdr, auth);
		if (h2 == NULL)
			goto done;
		hdr = h2;
	}
	/* Expect: 100-continue would add a round trip per upload. */
	{
		struct curl_slist *h2 = curl_slist_append(hdr, "Expect:");

		if (h2 == NULL)
			goto done;
		hdr = h2;
	}
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(t->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT, t->connect_s);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT,
	    timeout_s > 0 ? timeout_s : t->total_s);
	curl_easy_setopt(t->curl, CURLOPT_USERAGENT, t->user_agent);
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(t->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(t->curl, CURLOPT_MAXFILESIZE_LARGE,
	    (curl_off_t)cap);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, &r->retry_after);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(t->curl, CURLOPT_NOBODY, 1L);
	if (body != NULL) {
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)bodylen);
	}
	cc = curl_easy_perform(t->curl);
	if (cc == CURLE_FILESIZE_EXCEEDED || b.over) {
		st = FLS_ERR_TOO_LARGE;
		transport_error(err, st, "the server's answer is larger than "
		    "this client accepts (%zu bytes)", cap);
		goto done;
	}
	if (cc != CURLE_OK) {
		st = FLS_ERR_NETWORK;
		transport_error(err, st, "cannot reach %s: %s", t->base,
		    curl_easy_strerror(cc));
		goto done;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &r->status);
	st = transport_decode(b.p, b.len, r, err);
done:
	if (st == FLS_ERR_NOMEM && err->message[0] == '\0')
		transport_error(err, st, "out of memory");
	if (b.p != NULL) {
		sodium_memzero(b.p, b.len);
		free(b.p);
	}
	curl_slist_free_all(hdr);
	if (auth != NULL)
		sodium_free(auth);
	return st;
}

void
transport_resp_free(struct transport_resp *r)
{
	json_decref(r->root);
	r->root = NULL;
	r->data = NULL;
}

/* ---- streams ------------------------------------------------------------ */

#define STREAM_ERROR_CAP (64u * 1024u)

struct stream_xfer {
	CURL *curl;
	transport_sink_fn sink;
	void *arg;
	volatile const int *cancel;
	long status;            /* 0 until the first body byte */
	long retry_after;
	bool event_stream;      /* Content-Type: text/event-stream */
	bool sink_stopped;
	bool idle;              /* ended: nothing received for idle_ms */
	long long idle_ms;
	long long last_ms;      /* when the last byte arrived (monotonic) */
	struct body_buf err_body;
};

static long long
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t
stream_on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct stream_xfer *x = ud;
	size_t n = size * nmemb;
	static const char ct[] = "content-type:";

	x->last_ms = mono_ms();
	static const char es[] = "text/event-stream";

	/* a new status line (e.g. after 100 Continue): start again */
	if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
		x->event_stream = false;
		x->retry_after = 0;
		return n;
	}
	if (n > sizeof(ct) - 1 && strncasecmp(ptr, ct, sizeof(ct) - 1) == 0) {
		size_t i = sizeof(ct) - 1;

		while (i < n && (ptr[i] == ' ' || ptr[i] == '\t'))
			i++;
		x->event_stream = n - i >= sizeof(es) - 1 &&
		    strncasecmp(ptr + i, es, sizeof(es) - 1) == 0;
		return n;
	}
	return on_header(ptr, size, nmemb, &x->retry_after);
}

static size_t
stream_on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct stream_xfer *x = ud;
	size_t n = size * nmemb;

	x->last_ms = mono_ms();
	if (x->status == 0)
		curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &x->status);
	if (x->status != 200)
		return on_body(ptr, size, nmemb, &x->err_body);
	if (!x->event_stream)
		return 0;
	if (x->sink(x->arg, ptr, n) != 0) {
		x->sink_stopped = true;
		return 0;
	}
	return n;
}

static int
stream_on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	struct stream_xfer *x = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	if (x->cancel != NULL && *x->cancel)
		return 1;
	/* libcurl calls this about once a second even when nothing comes:
	 * a stream silent for idle_ms (heartbeats included) is dead */
	if (mono_ms() - x->last_ms >= x->idle_ms) {
		x->idle = true;
		return 1;
	}
	return 0;
}

/* Appends "name: prefixvalue" to *hdr; the value may be a secret, so
 * the scratch copy is wiped. Returns 0 or -1 (out of memory, too long). */
static int
append_header(struct curl_slist **hdr, const char *name, const char *prefix,
    const char *value)
{
	char *line = sodium_malloc(TRANSPORT_TOKEN_CAP + 64);
	struct curl_slist *h2 = NULL;
	int n;

	if (line == NULL)
		return -1;
	n = snprintf(line, TRANSPORT_TOKEN_CAP + 64, "%s: %s%s", name, prefix,
	    value);
	if (n > 0 && (size_t)n < TRANSPORT_TOKEN_CAP + 64)
		h2 = curl_slist_append(*hdr, line);
	sodium_free(line);
	if (h2 == NULL)
		return -1;
	*hdr = h2;
	return 0;
}

fls_status
transport_stream(struct transport *t, const char *path,
    const char *last_event_id, long idle_s, transport_sink_fn sink,
    void *arg, volatile const int *cancel, struct transport_resp *r,
    fls_error *err)
{
	struct stream_xfer x;
	struct curl_slist *hdr = NULL;
	char url[TRANSPORT_URL_MAX + 1024];
	CURLcode cc;
	fls_status st = FLS_ERR_NOMEM;
	int n;

	memset(r, 0, sizeof(*r));
	memset(err, 0, sizeof(*err));
	memset(&x, 0, sizeof(x));
	x.curl = t->curl;
	x.sink = sink;
	x.arg = arg;
	x.cancel = cancel;
	x.err_body.cap = STREAM_ERROR_CAP;
	x.idle_ms = (long long)idle_s * 1000;
	n = snprintf(url, sizeof(url), "%s%s", t->base, path);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		transport_error(err, FLS_ERR_ARG, "request URL too long");
		return FLS_ERR_ARG;
	}
	curl_easy_reset(t->curl);
	if (append_header(&hdr, "Accept", "", "text/event-stream") != 0 ||
	    append_header(&hdr, "Cache-Control", "", "no-store") != 0)
		goto done;
	if (t->token[0] != '\0' &&
	    append_header(&hdr, "Authorization", "Bearer ", t->token) != 0)
		goto done;
	if (last_event_id != NULL && last_event_id[0] != '\0' &&
	    append_header(&hdr, "Last-Event-ID", "", last_event_id) != 0)
		goto done;
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(t->curl, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT, t->connect_s);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT, 0L);
	curl_easy_setopt(t->curl, CURLOPT_USERAGENT, t->user_agent);
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, hdr);
	curl_easy_setopt(t->curl, CURLOPT_HTTPGET, 1L);
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, stream_on_body);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(t->curl, CURLOPT_HEADERFUNCTION, stream_on_header);
	curl_easy_setopt(t->curl, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(t->curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(t->curl, CURLOPT_XFERINFOFUNCTION, stream_on_progress);
	curl_easy_setopt(t->curl, CURLOPT_XFERINFODATA, &x);
	x.last_ms = mono_ms();
	cc = curl_easy_perform(t->curl);
	if (x.status == 0)
		curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &x.status);
	r->status = x.status;
	r->retry_after = x.retry_after;
	err->http_status = x.status;
	if (x.idle && !x.sink_stopped) {
		st = FLS_ERR_NETWORK;
		transport_error(err, st, "%s sent nothing for %ld s", t->base,
		    idle_s);
		goto done;
	}
	if (x.sink_stopped || cc == CURLE_ABORTED_BY_CALLBACK) {
		st = FLS_OK;
		goto done;
	}
	if (x.status == 200 && !x.event_stream) {
		st = FLS_ERR_PROTOCOL;
		transport_error(err, st, "the server's event stream is not "
		    "text/event-stream");
		goto done;
	}
	if (x.err_body.over) {
		st = FLS_ERR_TOO_LARGE;
		transport_error(err, st, "the server's answer is larger than "
		    "this client accepts (%u bytes)", STREAM_ERROR_CAP);
		goto done;
	}
	if (cc != CURLE_OK) {
		st = FLS_ERR_NETWORK;
		transport_error(err, st, "cannot reach %s: %s", t->base,
		    curl_easy_strerror(cc));
		goto done;
	}
	if (x.status == 200) {
		st = FLS_OK;
		goto done;
	}
	st = transport_decode(x.err_body.p, x.err_body.len, r, err);
	if (st == FLS_OK) {
		st = FLS_ERR_PROTOCOL;
		transport_error(err, st, "unexpected answer to an event stream "
		    "(HTTP %ld)", x.status);
	}
done:
	if (st == FLS_ERR_NOMEM && err->message[0] == '\0')
		transport_error(err, st, "out of memory");
	free(x.err_body.p);
	curl_slist_free_all(hdr);
	return st;
}
