/*
 * client: the public libflamingosync API (include/flamingosync.h) on top
 * of transport (HTTP), keywrap (passphrase-wrapped master key) and
 * envelope (data encryption).
 */
#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sodium.h>

#include "flamingosync.h"

#include "client/envelope.h"
#include "client/keywrap.h"
#include "client/sse.h"
#include "client/transport.h"
#include "common/b64.h"
#include "common/datatype.h"
#include "common/token.h"

/* Answer caps for everything but data blobs. */
#define SMALL_ANSWER_CAP (256u * 1024u)
#define DEVICES_MAX 1000u
/* Room for one data answer's metadata around its base64 blob. */
#define META_SLACK (64u * 1024u)

struct fls_client {
	struct transport t;
	fls_error err;
	char app_version[64];
	char device_id[64];     /* "" when unknown */
	bool have_info;
	fls_server_info info;
};

struct fls_key {
	unsigned char raw[FLS_KEY_BYTES];
	uint32_t version;
};

/* ---- small things ------------------------------------------------------ */

const char *
fls_status_name(fls_status s)
{
	static const char *const names[] = {
		"ok", "invalid_argument", "out_of_memory", "network",
		"protocol", "too_large", "server", "unauthorized", "not_found",
		"conflict", "key_changed", "sync_disabled", "rate_limited",
		"pending", "denied", "expired", "decrypt", "format", "kdf_weak",
		"kdf_limit", "no_key", "io", "revoked",
	};

	if ((unsigned)s < sizeof(names) / sizeof(names[0]))
		return names[s];
	return "unknown";
}

const char *
fls_type_name(int t)
{
	return datatype_name(t);
}

int
fls_type_parse(const char *s)
{
	return s == NULL ? -1 : datatype_parse(s);
}

fls_status
fls_init(void)
{
	static int curl_done;

	if (sodium_init() < 0)
		return FLS_ERR_NOMEM;
	if (!curl_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
			return FLS_ERR_NOMEM;
		curl_done = 1;
	}
	return FLS_OK;
}

static fls_status fail(fls_client *c, fls_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Records a local failure (no HTTP answer involved) and returns st. */
static fls_status
fail(fls_client *c, fls_status st, const char *fmt, ...)
{
	va_list ap;

	memset(&c->err, 0, sizeof(c->err));
	c->err.status = st;
	va_start(ap, fmt);
	if (vsnprintf(c->err.message, sizeof(c->err.message), fmt, ap) < 0)
		c->err.message[0] = '\0';
	va_end(ap);
	return st;
}

/* Server strings: bounded copies with control bytes replaced. */
static int
jstr(json_t *obj, const char *k, char *out, size_t cap, bool required)
{
	json_t *v = json_object_get(obj, k);

	if (v == NULL || json_is_null(v)) {
		if (cap > 0)
			out[0] = '\0';
		return required ? -1 : 0;
	}
	if (!json_is_string(v))
		return -1;
	transport_copy_text(out, cap, json_string_value(v));
	return 0;
}

static int
jint(json_t *obj, const char *k, int64_t min, int64_t max, int64_t *out)
{
	json_t *v = json_object_get(obj, k);

	if (!json_is_integer(v))
		return -1;
	if (json_integer_value(v) < min || json_integer_value(v) > max)
		return -1;
	*out = (int64_t)json_integer_value(v);
	return 0;
}

static fls_status
protocol(fls_client *c, const char *what)
{
	return fail(c, FLS_ERR_PROTOCOL,
	    "malformed answer from the server (%s)", what);
}

/* One request; the answer lands in *r (freed by the caller). */
static fls_status
call(fls_client *c, const char *method, const char *path, const char *body,
    size_t bodylen, size_t cap, long timeout_s, struct transport_resp *r)
{
	return transport_call(&c->t, method, path, body, bodylen, cap,
	    timeout_s, r, &c->err);
}

/* Like call() with a jansson body (serialised, then wiped). */
static fls_status
call_json(fls_client *c, const char *method, const char *path, json_t *body,
    size_t cap, struct transport_resp *r)
{
	char *s = NULL;
	size_t n = 0;
	fls_status st;

	if (body != NULL) {
		s = json_dumps(body, JSON_COMPACT);
		if (s == NULL) {
			memset(r, 0, sizeof(*r));
			return fail(c, FLS_ERR_NOMEM, "out of memory");
		}
		n = strlen(s);
	}
	st = call(c, method, path, s != NULL ? s : "{}", s != NULL ? n : 2,
	    cap, 0, r);
	if (s != NULL) {
		sodium_memzero(s, n);
		free(s);
	}
	return st;
}

/* ---- the client object ------------------------------------------------- */

fls_status
fls_client_new(const char *base_url, bool allow_http, fls_client **out)
{
	fls_client *c;
	fls_status st;

	*out = NULL;
	if (fls_init() != FLS_OK)
		return FLS_ERR_NOMEM;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return FLS_ERR_NOMEM;
	st = transport_init(&c->t, base_url, allow_http);
	if (st != FLS_OK) {
		free(c);
		return st;
	}
	snprintf(c->app_version, sizeof(c->app_version), "%s",
	    FLS_VERSION_STRING);
	*out = c;
	return FLS_OK;
}

void
fls_client_free(fls_client *c)
{
	if (c == NULL)
		return;
	transport_fini(&c->t);
	sodium_memzero(c, sizeof(*c));
	free(c);
}

const fls_error *
fls_client_error(const fls_client *c)
{
	return &c->err;
}

fls_status
fls_client_set_token(fls_client *c, const char *token)
{
	size_t n;

	if (token == NULL) {
		sodium_memzero(c->t.token, TRANSPORT_TOKEN_CAP);
		return FLS_OK;
	}
	n = strnlen(token, TRANSPORT_TOKEN_CAP);
	if (n >= TRANSPORT_TOKEN_CAP || !token_parse(token, n,
	    TOKEN_SYNC_PREFIX))
		return FLS_ERR_ARG;
	memcpy(c->t.token, token, n);
	c->t.token[n] = '\0';
	return FLS_OK;
}

void
fls_client_set_timeouts(fls_client *c, long connect_s, long total_s)
{
	if (connect_s > 0)
		c->t.connect_s = connect_s;
	if (total_s > 0)
		c->t.total_s = total_s;
}

void
fls_client_set_device_id(fls_client *c, const char *id)
{
	transport_copy_text(c->device_id, sizeof(c->device_id), id);
}

void
fls_client_set_app_version(fls_client *c, const char *v)
{
	if (v == NULL)
		return;
	transport_copy_text(c->app_version, sizeof(c->app_version), v);
	snprintf(c->t.user_agent, sizeof(c->t.user_agent), "flamingo-sync/%s",
	    c->app_version);
}

/* ---- server information ------------------------------------------------ */

fls_status
fls_server_info_get(fls_client *c, fls_server_info *out)
{
	struct transport_resp r;
	json_t *lim;
	int64_t blob, body;
	fls_status st;

	st = call(c, "GET", "/api/info", NULL, 0, SMALL_ANSWER_CAP, 0, &r);
	if (st != FLS_OK)
		goto done;
	lim = json_object_get(r.data, "limits");
	if (jstr(r.data, "version", out->version, sizeof(out->version),
	    false) != 0 || !json_is_object(lim) ||
	    jint(lim, "max_blob_bytes", 1, INT64_MAX, &blob) != 0 ||
	    jint(lim, "max_body_bytes", 1, INT64_MAX, &body) != 0) {
		st = protocol(c, "/api/info limits");
		goto done;
	}
	/* A server cannot make this client allocate more than its cap. */
	out->max_blob_bytes = (uint64_t)blob > FLS_MAX_BLOB_BYTES ?
	    FLS_MAX_BLOB_BYTES : (uint64_t)blob;
	out->max_body_bytes = (uint64_t)body;
	c->info = *out;
	c->have_info = true;
done:
	transport_resp_free(&r);
	return st;
}

static fls_status
ensure_info(fls_client *c)
{
	fls_server_info tmp;

	if (c->have_info)
		return FLS_OK;
	return fls_server_info_get(c, &tmp);
}

/* The answer cap for n blobs of at most max_blob_bytes each. */
static size_t
blob_answer_cap(const fls_client *c, size_t n)
{
	return n * (b64_encoded_len((size_t)c->info.max_blob_bytes) +
	    META_SLACK);
}

/* ---- device login ------------------------------------------------------ */

void
fls_device_auth_clear(fls_device_auth *auth)
{
	sodium_memzero(auth, sizeof(*auth));
}

fls_status
fls_device_init(fls_client *c, const char *name, const char *platform,
    fls_device_auth *auth)
{
	struct transport_resp r;
	json_t *body = NULL;
	char code[USER_CODE_LEN + 1];
	int64_t iv, exp;
	fls_status st;

	memset(&r, 0, sizeof(r));
	memset(auth, 0, sizeof(*auth));
	body = json_object();
	if (body == NULL ||
	    (name != NULL && json_object_set_new(body, "device_name",
	    json_string(name)) != 0) ||
	    (platform != NULL && json_object_set_new(body, "platform",
	    json_string(platform)) != 0) ||
	    json_object_set_new(body, "app_version",
	    json_string(c->app_version)) != 0) {
		st = fail(c, FLS_ERR_ARG, "device name or platform is not "
		    "valid UTF-8");
		goto done;
	}
	st = call_json(c, "POST", "/api/sync/init", body, SMALL_ANSWER_CAP,
	    &r);
	if (st != FLS_OK)
		goto done;
	if (jstr(r.data, "temp_token", auth->temp_token,
	    sizeof(auth->temp_token), true) != 0 ||
	    !token_parse(auth->temp_token, strlen(auth->temp_token),
	    TOKEN_TEMP_PREFIX) ||
	    jstr(r.data, "user_code", auth->user_code,
	    sizeof(auth->user_code), true) != 0 ||
	    !user_code_normalize(code, auth->user_code,
	    strlen(auth->user_code)) ||
	    jstr(r.data, "url", auth->url, sizeof(auth->url), true) != 0 ||
	    (strncmp(auth->url, "https://", 8) != 0 &&
	    strncmp(auth->url, "http://", 7) != 0) ||
	    jint(r.data, "interval", 1, 3600, &iv) != 0 ||
	    jint(r.data, "expires_in", 1, 24 * 3600, &exp) != 0) {
		fls_device_auth_clear(auth);
		st = protocol(c, "/api/sync/init");
		goto done;
	}
	user_code_format(auth->user_code, code);
	auth->interval = (long)iv;
	auth->expires_in = (long)exp;
done:
	json_decref(body);
	transport_resp_free(&r);
	return st;
}

/*
 * The session_token of an answer (token, rotate): a well-formed bearer
 * token into tok (TRANSPORT_TOKEN_CAP) and a copy into the caller's token
 * (capacity cap), or a protocol error.
 */
static fls_status
session_token(fls_client *c, json_t *data, char *tok, char *token,
    size_t cap)
{
	if (jstr(data, "session_token", tok, TRANSPORT_TOKEN_CAP, true) != 0 ||
	    !token_parse(tok, strlen(tok), TOKEN_SYNC_PREFIX) ||
	    strlen(tok) >= cap)
		return protocol(c, "session token");
	memcpy(token, tok, strlen(tok) + 1);
	return FLS_OK;
}

fls_status
fls_device_poll(fls_client *c, fls_device_auth *auth, char *token,
    size_t cap)
{
	struct transport_resp r;
	json_t *body = NULL;
	char tok[TRANSPORT_TOKEN_CAP];
	fls_status st;

	memset(&r, 0, sizeof(r));
	body = json_pack("{s:s}", "temp_token", auth->temp_token);
	if (body == NULL) {
		st = fail(c, FLS_ERR_NOMEM, "out of memory");
		goto done;
	}
	st = call_json(c, "POST", "/api/sync/token", body, SMALL_ANSWER_CAP,
	    &r);
	if (st == FLS_ERR_PENDING) {
		if (strcmp(c->err.code, "slow_down") == 0)
			auth->interval = c->err.retry_after > 0 ?
			    c->err.retry_after : auth->interval + 5;
		goto done;
	}
	if (st != FLS_OK)
		goto done;
	if ((st = session_token(c, r.data, tok, token, cap)) != FLS_OK)
		goto done;
	if (json_is_integer(json_object_get(r.data, "device_id")))
		snprintf(auth->device_id, sizeof(auth->device_id),
		    "%" JSON_INTEGER_FORMAT,
		    json_integer_value(json_object_get(r.data, "device_id")));
	else if (jstr(r.data, "device_id", auth->device_id,
	    sizeof(auth->device_id), false) != 0)
		auth->device_id[0] = '\0';
	fls_client_set_device_id(c, auth->device_id);
	st = fls_client_set_token(c, tok);
done:
	sodium_memzero(tok, sizeof(tok));
	json_decref(body);
	transport_resp_free(&r);
	return st;
}

static void
sleep_s(long s, volatile const int *cancel)
{
	long i;

	for (i = 0; i < s * 10; i++) {
		struct timespec ts = { 0, 100 * 1000 * 1000 };

		if (cancel != NULL && *cancel)
			return;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			if (cancel != NULL && *cancel)
				return;
	}
}

static time_t
now_mono(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec;
}

fls_status
fls_device_wait(fls_client *c, fls_device_auth *auth, char *token,
    size_t cap, volatile const int *cancel)
{
	time_t deadline = now_mono() + auth->expires_in;
	long backoff = 0;
	fls_status st;

	for (;;) {
		sleep_s(backoff > 0 ? backoff : auth->interval, cancel);
		if (cancel != NULL && *cancel)
			return fail(c, FLS_ERR_ARG, "cancelled");
		st = fls_device_poll(c, auth, token, cap);
		if (st == FLS_OK)
			return st;
		if (st == FLS_ERR_PENDING) {
			backoff = 0;
		} else if (st == FLS_ERR_NETWORK ||
		    st == FLS_ERR_RATE_LIMITED ||
		    ((st == FLS_ERR_SERVER || st == FLS_ERR_PROTOCOL) &&
		    c->err.http_status >= 500)) {
			/* Double up to 30 s; honour Retry-After. */
			backoff = backoff == 0 ? auth->interval : backoff * 2;
			if (backoff > 30)
				backoff = 30;
			if (c->err.retry_after > backoff)
				backoff = c->err.retry_after > 300 ? 300 :
				    c->err.retry_after;
		} else {
			return st;
		}
		if (now_mono() > deadline)
			return fail(c, FLS_ERR_EXPIRED, "the login request "
			    "expired before it was authorized");
	}
}

fls_status
fls_session_rotate(fls_client *c, char *token, size_t cap)
{
	struct transport_resp r;
	char tok[TRANSPORT_TOKEN_CAP];
	fls_status st;

	st = call(c, "POST", "/api/sync/rotate", NULL, 0, SMALL_ANSWER_CAP,
	    0, &r);
	if (st != FLS_OK)
		goto done;
	if ((st = session_token(c, r.data, tok, token, cap)) != FLS_OK)
		goto done;
	st = fls_client_set_token(c, tok);
done:
	sodium_memzero(tok, sizeof(tok));
	transport_resp_free(&r);
	return st;
}

fls_status
fls_session_revoke(fls_client *c)
{
	struct transport_resp r;
	fls_status st;

	st = call(c, "POST", "/api/sync/revoke", NULL, 0, SMALL_ANSWER_CAP,
	    0, &r);
	transport_resp_free(&r);
	if (st == FLS_OK)
		fls_client_set_token(c, NULL);
	return st;
}

/* ---- keys ------------------------------------------------------------ */

fls_status
fls_kdf_parse(const char *json, size_t len, fls_kdf_params *out)
{
	return keywrap_params_parse(json, len, out);
}

fls_status
fls_key_generate(fls_key **out)
{
	fls_key *k = sodium_malloc(sizeof(*k));

	*out = NULL;
	if (k == NULL)
		return FLS_ERR_NOMEM;
	randombytes_buf(k->raw, sizeof(k->raw));
	k->version = 0;
	*out = k;
	return FLS_OK;
}

fls_status
fls_key_from_bytes(const unsigned char raw[FLS_KEY_BYTES], fls_key **out)
{
	fls_key *k = sodium_malloc(sizeof(*k));

	*out = NULL;
	if (k == NULL)
		return FLS_ERR_NOMEM;
	memcpy(k->raw, raw, sizeof(k->raw));
	k->version = 0;
	*out = k;
	return FLS_OK;
}

void
fls_key_export(const fls_key *k, unsigned char raw[FLS_KEY_BYTES])
{
	memcpy(raw, k->raw, FLS_KEY_BYTES);
}

uint32_t
fls_key_version(const fls_key *k)
{
	return k->version;
}

void
fls_key_free(fls_key *k)
{
	if (k != NULL)
		sodium_free(k); /* wipes */
}

fls_status
fls_key_derive_type_key(const fls_key *k, int type,
    unsigned char out[FLS_KEY_BYTES])
{
	return envelope_type_key(out, k->raw, type);
}

fls_status
fls_key_wrap(const fls_key *k, const char *passphrase, size_t passlen,
    const fls_kdf_params *params, char **wrapped_b64, char **kdf_json)
{
	unsigned char *wrapkey = NULL;
	unsigned char wrapped[KEYWRAP_LEN];
	unsigned char nonce[KEYWRAP_NONCE_LEN];
	fls_kdf_params p;
	char *w = NULL, *j = NULL;
	fls_status st;

	*wrapped_b64 = NULL;
	*kdf_json = NULL;
	if (passphrase == NULL || passlen > FLS_PASSPHRASE_MAX)
		return FLS_ERR_ARG;
	if (params != NULL) {
		p = *params;
	} else {
		p.t = FLS_KDF_T_DEFAULT;
		p.m_kib = FLS_KDF_M_KIB_DEFAULT;
		p.p = 1;
	}
	randombytes_buf(p.salt, sizeof(p.salt));
	randombytes_buf(nonce, sizeof(nonce));
	st = keywrap_params_check(&p);
	if (st != FLS_OK)
		return st;
	wrapkey = sodium_malloc(32);
	w = malloc(b64_encoded_len(KEYWRAP_LEN) + 1);
	j = malloc(KEYWRAP_JSON_CAP);
	st = FLS_ERR_NOMEM;
	if (wrapkey == NULL || w == NULL || j == NULL)
		goto done;
	st = keywrap_derive(wrapkey, passphrase, passlen, &p);
	if (st != FLS_OK)
		goto done;
	keywrap_seal(wrapped, k->raw, wrapkey, &p, nonce);
	b64_encode(w, wrapped, sizeof(wrapped));
	if (keywrap_params_format(&p, j, KEYWRAP_JSON_CAP) != 0) {
		st = FLS_ERR_ARG;
		goto done;
	}
	*wrapped_b64 = w;
	*kdf_json = j;
	w = j = NULL;
	st = FLS_OK;
done:
	if (wrapkey != NULL)
		sodium_free(wrapkey);
	free(w);
	free(j);
	return st;
}

fls_status
fls_key_unwrap(const char *passphrase, size_t passlen, const char *kdf_json,
    size_t kdf_len, const char *wrapped_b64, fls_key **out)
{
	unsigned char wrapped[KEYWRAP_LEN + 1];
	unsigned char *wrapkey = NULL;
	fls_kdf_params p;
	fls_key *k = NULL;
	size_t n = 0, wlen;
	fls_status st;

	*out = NULL;
	if (passphrase == NULL || passlen > FLS_PASSPHRASE_MAX ||
	    wrapped_b64 == NULL)
		return FLS_ERR_ARG;
	/* Parameters first: a weak or huge KDF is refused before any work. */
	st = keywrap_params_parse(kdf_json, kdf_len, &p);
	if (st != FLS_OK)
		return st;
	wlen = strnlen(wrapped_b64, 4 * 4096);
	if (b64_decode(wrapped, sizeof(wrapped), &n, wrapped_b64, wlen) != 0 ||
	    n != KEYWRAP_LEN)
		return FLS_ERR_FORMAT;
	wrapkey = sodium_malloc(32);
	st = FLS_ERR_NOMEM;
	if (wrapkey == NULL || fls_key_generate(&k) != FLS_OK)
		goto done;
	st = keywrap_derive(wrapkey, passphrase, passlen, &p);
	if (st != FLS_OK)
		goto done;
	st = keywrap_open(k->raw, wrapkey, &p, wrapped, n);
	if (st != FLS_OK)
		goto done;
	*out = k;
	k = NULL;
done:
	if (wrapkey != NULL)
		sodium_free(wrapkey);
	fls_key_free(k);
	return st;
}

/* GET /api/sync/key: the wrapped key, kdf JSON (malloc'd) and version. */
static fls_status
key_get(fls_client *c, char **wrapped, char **kdf, uint32_t *version)
{
	struct transport_resp r;
	json_t *w, *kdfobj;
	int64_t v;
	fls_status st;

	*wrapped = *kdf = NULL;
	st = call(c, "GET", "/api/sync/key", NULL, 0, SMALL_ANSWER_CAP, 0,
	    &r);
	if (st == FLS_ERR_NOT_FOUND) {
		st = fail(c, FLS_ERR_NO_KEY, "no encryption key is stored on "
		    "the server yet (run: flamingo-sync key init)");
		goto done;
	}
	if (st != FLS_OK)
		goto done;
	w = json_object_get(r.data, "wrapped_key");
	kdfobj = json_object_get(r.data, "kdf");
	if (!json_is_string(w) || json_string_length(w) > 8192 ||
	    !json_is_object(kdfobj) ||
	    jint(r.data, "version", 1, UINT32_MAX, &v) != 0) {
		st = protocol(c, "/api/sync/key");
		goto done;
	}
	*wrapped = strdup(json_string_value(w));
	*kdf = json_dumps(kdfobj, JSON_COMPACT);
	if (*wrapped == NULL || *kdf == NULL) {
		free(*wrapped);
		free(*kdf);
		*wrapped = *kdf = NULL;
		st = fail(c, FLS_ERR_NOMEM, "out of memory");
		goto done;
	}
	*version = (uint32_t)v;
done:
	transport_resp_free(&r);
	return st;
}

static fls_status
key_fail(fls_client *c, fls_status st)
{
	switch (st) {
	case FLS_ERR_DECRYPT:
		return fail(c, st, "wrong sync passphrase (or the stored key "
		    "was tampered with)");
	case FLS_ERR_KDF_WEAK:
		return fail(c, st, "the server sent key-derivation parameters "
		    "weaker than this client's minimum (Argon2id t>=2, "
		    "m>=64 MiB); refusing to use them");
	case FLS_ERR_KDF_LIMIT:
		return fail(c, st, "the server sent key-derivation parameters "
		    "above this client's caps (t<=16, m<=1 GiB); refusing to "
		    "use them");
	case FLS_ERR_FORMAT:
		return fail(c, st, "the stored key is not in a format this "
		    "client knows");
	case FLS_ERR_ARG:
		return fail(c, st, "passphrase too long (at most 1024 "
		    "bytes)");
	default:
		return fail(c, st, "cannot unwrap the key (%s)",
		    fls_status_name(st));
	}
}

fls_status
fls_key_fetch(fls_client *c, const char *passphrase, size_t passlen,
    fls_key **out)
{
	char *wrapped = NULL, *kdf = NULL;
	uint32_t version = 0;
	fls_status st;

	*out = NULL;
	st = key_get(c, &wrapped, &kdf, &version);
	if (st != FLS_OK)
		return st;
	st = fls_key_unwrap(passphrase, passlen, kdf, strlen(kdf), wrapped,
	    out);
	if (st != FLS_OK)
		key_fail(c, st);
	else
		(*out)->version = version;
	free(wrapped);
	free(kdf);
	return st;
}

fls_status
fls_key_status(fls_client *c, uint32_t *version)
{
	char *wrapped = NULL, *kdf = NULL;
	fls_status st;

	*version = 0;
	st = key_get(c, &wrapped, &kdf, version);
	free(wrapped);
	free(kdf);
	return st == FLS_ERR_NO_KEY ? FLS_OK : st;
}

/* PUT /api/sync/key {wrapped_key, kdf, expected_version}. */
static fls_status
key_put(fls_client *c, const char *wrapped, const char *kdf,
    uint32_t expected, uint32_t *version)
{
	struct transport_resp r;
	json_t *body = NULL, *kdfobj = NULL;
	json_error_t jerr;
	int64_t v;
	fls_status st;

	memset(&r, 0, sizeof(r));
	kdfobj = json_loads(kdf, 0, &jerr);
	body = kdfobj == NULL ? NULL : json_pack("{s:s,s:O,s:I}",
	    "wrapped_key", wrapped, "kdf", kdfobj, "expected_version",
	    (json_int_t)expected);
	if (body == NULL) {
		st = fail(c, FLS_ERR_NOMEM, "out of memory");
		goto done;
	}
	st = call_json(c, "PUT", "/api/sync/key", body, SMALL_ANSWER_CAP, &r);
	if (st != FLS_OK)
		goto done;
	if (jint(r.data, "version", 1, UINT32_MAX, &v) != 0) {
		st = protocol(c, "key version");
		goto done;
	}
	*version = (uint32_t)v;
done:
	json_decref(kdfobj);
	json_decref(body);
	transport_resp_free(&r);
	return st;
}

fls_status
fls_key_create(fls_client *c, const char *passphrase, size_t passlen,
    fls_key **out)
{
	fls_key *k = NULL;
	char *wrapped = NULL, *kdf = NULL;
	uint32_t version = 0;
	fls_status st;

	if (out != NULL)
		*out = NULL;
	st = fls_key_generate(&k);
	if (st != FLS_OK)
		return fail(c, st, "out of memory");
	st = fls_key_wrap(k, passphrase, passlen, NULL, &wrapped, &kdf);
	if (st != FLS_OK) {
		key_fail(c, st);
		goto done;
	}
	st = key_put(c, wrapped, kdf, 0, &version);
	if (st == FLS_ERR_CONFLICT) {
		fail(c, st, "a key already exists on the server (use key "
		    "change-passphrase or key rotate)");
		goto done;
	}
	if (st != FLS_OK)
		goto done;
	k->version = version;
	if (out != NULL) {
		*out = k;
		k = NULL;
	}
done:
	fls_key_free(k);
	free(wrapped);
	free(kdf);
	return st;
}

fls_status
fls_key_change_passphrase(fls_client *c, const char *old_pass,
    size_t old_len, const char *new_pass, size_t new_len,
    uint32_t *new_version)
{
	fls_key *k = NULL;
	char *wrapped = NULL, *kdf = NULL;
	fls_status st;

	st = fls_key_fetch(c, old_pass, old_len, &k);
	if (st != FLS_OK)
		return st;
	st = fls_key_wrap(k, new_pass, new_len, NULL, &wrapped, &kdf);
	if (st != FLS_OK) {
		key_fail(c, st);
		goto done;
	}
	st = key_put(c, wrapped, kdf, k->version, new_version);
	if (st == FLS_ERR_CONFLICT)
		fail(c, st, "the key changed on the server meanwhile; try "
		    "again");
done:
	fls_key_free(k);
	free(wrapped);
	free(kdf);
	return st;
}

/* ---- envelopes ---------------------------------------------------------- */

void
fls_buf_free(unsigned char *p, size_t len)
{
	if (p == NULL)
		return;
	sodium_memzero(p, len);
	free(p);
}

fls_status
fls_encrypt(const fls_key *k, int type, uint32_t kv, const unsigned char *pt,
    size_t len, unsigned char **out, size_t *outlen)
{
	unsigned char nonce[ENVELOPE_NONCE_LEN];
	unsigned char *buf;
	fls_status st;

	*out = NULL;
	*outlen = 0;
	if (len > FLS_MAX_BLOB_BYTES - ENVELOPE_OVERHEAD)
		return FLS_ERR_TOO_LARGE;
	buf = malloc(len + ENVELOPE_OVERHEAD);
	if (buf == NULL)
		return FLS_ERR_NOMEM;
	randombytes_buf(nonce, sizeof(nonce));
	st = envelope_seal(k->raw, type, kv, nonce, pt, len, buf,
	    len + ENVELOPE_OVERHEAD, outlen);
	if (st != FLS_OK) {
		free(buf);
		return st;
	}
	*out = buf;
	return FLS_OK;
}

fls_status
fls_decrypt(const fls_key *k, int type, uint32_t expected_kv,
    const unsigned char *env, size_t len, unsigned char **out,
    size_t *outlen, uint32_t *kv_out)
{
	unsigned char *buf;
	size_t cap;
	fls_status st;

	*out = NULL;
	*outlen = 0;
	if (len < ENVELOPE_OVERHEAD)
		return FLS_ERR_FORMAT;
	if (len > FLS_MAX_BLOB_BYTES)
		return FLS_ERR_TOO_LARGE;
	cap = len - ENVELOPE_OVERHEAD;
	buf = malloc(cap > 0 ? cap : 1);
	if (buf == NULL)
		return FLS_ERR_NOMEM;
	st = envelope_open(k->raw, type, expected_kv, env, len, buf, cap,
	    outlen, kv_out);
	if (st != FLS_OK) {
		fls_buf_free(buf, cap);
		*outlen = 0;
		return st;
	}
	*out = buf;
	return FLS_OK;
}

/* ---- data ----------------------------------------------------------- */

static int
parse_meta(json_t *o, fls_item_meta *m)
{
	char type[32];
	int64_t v, kv, size;

	memset(m, 0, sizeof(*m));
	if (!json_is_object(o) || jstr(o, "type", type, sizeof(type), true) ||
	    (m->type = fls_type_parse(type)) < 0 ||
	    jint(o, "version", 0, INT64_MAX, &v) != 0)
		return -1;
	m->version = v;
	if (json_object_get(o, "key_version") != NULL &&
	    !json_is_null(json_object_get(o, "key_version"))) {
		if (jint(o, "key_version", 0, UINT32_MAX, &kv) != 0)
			return -1;
		m->key_version = (uint32_t)kv;
	}
	if (json_object_get(o, "size") != NULL) {
		if (jint(o, "size", 0, INT64_MAX, &size) != 0)
			return -1;
		m->size = (uint64_t)size;
	}
	if (jstr(o, "updated_at", m->updated_at, sizeof(m->updated_at),
	    false) != 0 || jstr(o, "updated_by_device", m->updated_by_device,
	    sizeof(m->updated_by_device), false) != 0)
		return -1;
	return 0;
}

static fls_status
bad_type(fls_client *c)
{
	return fail(c, FLS_ERR_ARG, "unknown data type (one of history, "
	    "environment, secret, collection, setting)");
}

fls_status
fls_push(fls_client *c, const fls_key *k, int type, const unsigned char *pt,
    size_t len, int64_t base_version, fls_item_meta *meta)
{
	struct transport_resp r;
	unsigned char *env = NULL;
	size_t envlen = 0, b64len, bodycap, off;
	char *body = NULL;
	char path[96], tail[96];
	fls_status st;
	int n;

	memset(&r, 0, sizeof(r));
	memset(meta, 0, sizeof(*meta));
	if (fls_type_name(type) == NULL)
		return bad_type(c);
	if (k->version == 0)
		return fail(c, FLS_ERR_ARG, "the key has no server version");
	st = ensure_info(c);
	if (st != FLS_OK)
		return st;
	if (len > c->info.max_blob_bytes - ENVELOPE_OVERHEAD ||
	    c->info.max_blob_bytes < ENVELOPE_OVERHEAD) {
		char lim[32];

		snprintf(lim, sizeof(lim), "%" PRIu64,
		    c->info.max_blob_bytes - ENVELOPE_OVERHEAD);
		return fail(c, FLS_ERR_TOO_LARGE, "the data is larger than "
		    "the server accepts (at most %s bytes)", lim);
	}
	st = fls_encrypt(k, type, k->version, pt, len, &env, &envlen);
	if (st != FLS_OK)
		return fail(c, st, "cannot encrypt (%s)", fls_status_name(st));
	/* {"encrypted_data":"<b64>","key_version":N[,"base_version":M]} */
	if (base_version >= 0)
		n = snprintf(tail, sizeof(tail), "\",\"key_version\":%" PRIu32
		    ",\"base_version\":%" PRId64 "}", k->version, base_version);
	else
		n = snprintf(tail, sizeof(tail), "\",\"key_version\":%" PRIu32
		    "}", k->version);
	if (n < 0 || (size_t)n >= sizeof(tail)) {
		st = fail(c, FLS_ERR_ARG, "bad version");
		goto done;
	}
	b64len = b64_encoded_len(envlen);
	bodycap = sizeof("{\"encrypted_data\":\"") + b64len + (size_t)n + 1;
	body = malloc(bodycap);
	if (body == NULL) {
		st = fail(c, FLS_ERR_NOMEM, "out of memory");
		goto done;
	}
	off = sizeof("{\"encrypted_data\":\"") - 1;
	memcpy(body, "{\"encrypted_data\":\"", off);
	b64_encode(body + off, env, envlen);
	off += b64len;
	memcpy(body + off, tail, (size_t)n + 1);
	off += (size_t)n;
	snprintf(path, sizeof(path), "/api/sync/data/%s", fls_type_name(type));
	st = call(c, "PUT", path, body, off, SMALL_ANSWER_CAP, 0, &r);
	if (st == FLS_ERR_CONFLICT) {
		/* data: the server's current metadata, to merge or override */
		if (parse_meta(r.data, meta) != 0)
			st = protocol(c, "conflict metadata");
		goto done;
	}
	if (st != FLS_OK)
		goto done;
	if (parse_meta(r.data, meta) != 0) {
		st = protocol(c, "push answer");
		goto done;
	}
	meta->key_version = k->version;
	meta->size = envlen;
done:
	free(body);
	free(env);
	transport_resp_free(&r);
	return st;
}

/* Decodes a base64 blob from the server under the blob cap (malloc'd). */
static fls_status
decode_blob(fls_client *c, json_t *s, unsigned char **out, size_t *outlen)
{
	size_t max, n = 0;
	unsigned char *buf;

	*out = NULL;
	if (!json_is_string(s))
		return protocol(c, "encrypted_data");
	max = b64_decoded_max(json_string_length(s));
	if (max > c->info.max_blob_bytes)
		max = (size_t)c->info.max_blob_bytes;
	buf = malloc(max > 0 ? max : 1);
	if (buf == NULL)
		return fail(c, FLS_ERR_NOMEM, "out of memory");
	if (b64_decode(buf, max, &n, json_string_value(s),
	    json_string_length(s)) != 0) {
		free(buf);
		return fail(c, FLS_ERR_TOO_LARGE, "the stored data is not "
		    "base64 or larger than the server's own limit");
	}
	*out = buf;
	*outlen = n;
	return FLS_OK;
}

static fls_status
decrypt_fail(fls_client *c, fls_status st, int type)
{
	if (st == FLS_ERR_DECRYPT)
		return fail(c, st, "the %s data does not authenticate: it was "
		    "written under another key or tampered with",
		    fls_type_name(type));
	if (st == FLS_ERR_FORMAT)
		return fail(c, st, "the %s data is not in a format this client "
		    "knows", fls_type_name(type));
	return fail(c, st, "cannot decrypt the %s data", fls_type_name(type));
}

fls_status
fls_pull(fls_client *c, const fls_key *k, int type, unsigned char **out,
    size_t *outlen, fls_item_meta *meta)
{
	struct transport_resp r;
	unsigned char *env = NULL;
	size_t envlen = 0;
	char path[96];
	fls_status st;

	memset(&r, 0, sizeof(r));
	*out = NULL;
	*outlen = 0;
	if (fls_type_name(type) == NULL)
		return bad_type(c);
	st = ensure_info(c);
	if (st != FLS_OK)
		return st;
	snprintf(path, sizeof(path), "/api/sync/data/%s", fls_type_name(type));
	st = call(c, "GET", path, NULL, 0, blob_answer_cap(c, 1), 0, &r);
	if (st != FLS_OK)
		goto done;
	if (parse_meta(r.data, meta) != 0 || meta->type != type) {
		st = protocol(c, "data answer");
		goto done;
	}
	st = decode_blob(c, json_object_get(r.data, "encrypted_data"), &env,
	    &envlen);
	if (st != FLS_OK)
		goto done;
	st = fls_decrypt(k, type, 0, env, envlen, out, outlen, NULL);
	if (st != FLS_OK)
		decrypt_fail(c, st, type);
done:
	free(env);
	transport_resp_free(&r);
	return st;
}

fls_status
fls_list(fls_client *c, fls_item_meta items[FLS_TYPE_COUNT], size_t *n)
{
	struct transport_resp r;
	json_t *arr, *it;
	size_t i;
	fls_status st;

	*n = 0;
	st = call(c, "GET", "/api/sync/data", NULL, 0, SMALL_ANSWER_CAP, 0,
	    &r);
	if (st != FLS_OK)
		goto done;
	arr = json_object_get(r.data, "items");
	if (!json_is_array(arr) || json_array_size(arr) > FLS_TYPE_COUNT) {
		st = protocol(c, "item list");
		goto done;
	}
	json_array_foreach(arr, i, it) {
		if (parse_meta(it, &items[*n]) != 0) {
			st = protocol(c, "item metadata");
			goto done;
		}
		(*n)++;
	}
done:
	transport_resp_free(&r);
	return st;
}

fls_status
fls_delete(fls_client *c, int type, int64_t base_version,
    int64_t *new_version)
{
	struct transport_resp r;
	char path[128];
	int64_t v;
	fls_status st;

	if (fls_type_name(type) == NULL)
		return bad_type(c);
	if (base_version >= 0)
		snprintf(path, sizeof(path), "/api/sync/data/%s?base_version=%"
		    PRId64, fls_type_name(type), base_version);
	else
		snprintf(path, sizeof(path), "/api/sync/data/%s",
		    fls_type_name(type));
	st = call(c, "DELETE", path, NULL, 0, SMALL_ANSWER_CAP, 0, &r);
	if (st == FLS_OK) {
		if (jint(r.data, "version", 0, INT64_MAX, &v) != 0)
			st = protocol(c, "delete answer");
		else if (new_version != NULL)
			*new_version = v;
	}
	transport_resp_free(&r);
	return st;
}

/* One decrypted item held during a rotation. */
struct rot_item {
	int type;
	unsigned char *pt;
	size_t len;
};

fls_status
fls_key_rotate(fls_client *c, const char *passphrase, size_t passlen,
    fls_key **out)
{
	struct transport_resp r;
	struct rot_item items[FLS_TYPE_COUNT];
	size_t nitems = 0, i;
	fls_key *old = NULL, *nk = NULL;
	char *wrapped = NULL, *kdf = NULL;
	json_t *body = NULL, *arr, *it, *kdfobj = NULL;
	json_error_t jerr;
	int64_t v;
	fls_status st;

	memset(&r, 0, sizeof(r));
	memset(items, 0, sizeof(items));
	if (out != NULL)
		*out = NULL;
	st = ensure_info(c);
	if (st != FLS_OK)
		return st;
	st = fls_key_fetch(c, passphrase, passlen, &old);
	if (st != FLS_OK)
		return st;
	/* Every stored item, decrypted under the old key. */
	st = call(c, "GET", "/api/sync/data?include=data", NULL, 0,
	    blob_answer_cap(c, FLS_TYPE_COUNT), 0, &r);
	if (st != FLS_OK)
		goto done;
	arr = json_object_get(r.data, "items");
	if (!json_is_array(arr) || json_array_size(arr) > FLS_TYPE_COUNT) {
		st = protocol(c, "item list");
		goto done;
	}
	json_array_foreach(arr, i, it) {
		fls_item_meta m;
		unsigned char *env = NULL;
		size_t envlen = 0;
		size_t j;

		if (parse_meta(it, &m) != 0) {
			st = protocol(c, "item metadata");
			goto done;
		}
		for (j = 0; j < nitems; j++)
			if (items[j].type == m.type) {
				st = protocol(c, "duplicate type");
				goto done;
			}
		st = decode_blob(c, json_object_get(it, "encrypted_data"), &env,
		    &envlen);
		if (st != FLS_OK)
			goto done;
		st = fls_decrypt(old, m.type, 0, env, envlen, &items[nitems].pt,
		    &items[nitems].len, NULL);
		free(env);
		if (st != FLS_OK) {
			decrypt_fail(c, st, m.type);
			goto done;
		}
		items[nitems++].type = m.type;
	}
	transport_resp_free(&r);
	/* The new key, version old + 1, wrapped under the same passphrase. */
	st = fls_key_generate(&nk);
	if (st != FLS_OK)
		goto nomem;
	nk->version = old->version + 1;
	st = fls_key_wrap(nk, passphrase, passlen, NULL, &wrapped, &kdf);
	if (st != FLS_OK) {
		key_fail(c, st);
		goto done;
	}
	kdfobj = json_loads(kdf, 0, &jerr);
	body = kdfobj == NULL ? NULL : json_pack("{s:s,s:O,s:I,s:[]}",
	    "wrapped_key", wrapped, "kdf", kdfobj, "expected_version",
	    (json_int_t)old->version, "items");
	if (body == NULL)
		goto nomem;
	arr = json_object_get(body, "items");
	for (i = 0; i < nitems; i++) {
		unsigned char *env = NULL;
		size_t envlen = 0;
		char *b = NULL;

		st = fls_encrypt(nk, items[i].type, nk->version, items[i].pt,
		    items[i].len, &env, &envlen);
		if (st != FLS_OK)
			goto nomem;
		b = malloc(b64_encoded_len(envlen) + 1);
		if (b != NULL)
			b64_encode(b, env, envlen);
		free(env);
		if (b == NULL || json_array_append_new(arr, json_pack("{s:s,s:s}",
		    "type", fls_type_name(items[i].type), "encrypted_data", b))
		    != 0) {
			free(b);
			goto nomem;
		}
		free(b);
	}
	st = call_json(c, "POST", "/api/sync/key/rotate", body,
	    SMALL_ANSWER_CAP, &r);
	if (st == FLS_ERR_CONFLICT) {
		fail(c, st, "the key or the data changed on the server during "
		    "the rotation; nothing was changed, try again");
		goto done;
	}
	if (st == FLS_ERR_SERVER && strcmp(c->err.code,
	    "incomplete_rotation") == 0) {
		st = fail(c, FLS_ERR_CONFLICT, "data was added on the server "
		    "during the rotation; nothing was changed, try again");
		goto done;
	}
	if (st != FLS_OK)
		goto done;
	if (jint(r.data, "version", 1, UINT32_MAX, &v) != 0 ||
	    (uint32_t)v != nk->version) {
		st = protocol(c, "rotation answer: unexpected key version");
		goto done;
	}
	if (out != NULL) {
		*out = nk;
		nk = NULL;
	}
	st = FLS_OK;
	goto done;
nomem:
	st = fail(c, FLS_ERR_NOMEM, "out of memory");
done:
	for (i = 0; i < nitems; i++)
		fls_buf_free(items[i].pt, items[i].len);
	json_decref(body);
	json_decref(kdfobj);
	transport_resp_free(&r);
	fls_key_free(old);
	fls_key_free(nk);
	free(wrapped);
	free(kdf);
	return st;
}

/* ---- configuration, devices, events ------------------------------------- */

fls_status
fls_config_get(fls_client *c, bool enabled[FLS_TYPE_COUNT])
{
	struct transport_resp r;
	int t;
	fls_status st;

	st = call(c, "GET", "/api/sync/config", NULL, 0, SMALL_ANSWER_CAP, 0,
	    &r);
	for (t = 0; st == FLS_OK && t < FLS_TYPE_COUNT; t++) {
		json_t *v = json_object_get(r.data, fls_type_name(t));

		if (!json_is_boolean(v))
			st = protocol(c, "config");
		else
			enabled[t] = json_is_true(v);
	}
	transport_resp_free(&r);
	return st;
}

fls_status
fls_config_set(fls_client *c, int type, bool enabled)
{
	struct transport_resp r;
	char path[96];
	const char *body = enabled ? "{\"enabled\":true}" :
	    "{\"enabled\":false}";
	fls_status st;

	if (fls_type_name(type) == NULL)
		return bad_type(c);
	snprintf(path, sizeof(path), "/api/sync/config/data-type/%s",
	    fls_type_name(type));
	st = call(c, "PUT", path, body, strlen(body), SMALL_ANSWER_CAP, 0, &r);
	transport_resp_free(&r);
	return st;
}

fls_status
fls_devices_list(fls_client *c, fls_device **out, size_t *n)
{
	struct transport_resp r;
	json_t *arr, *it;
	fls_device *d = NULL;
	size_t i;
	fls_status st;

	*out = NULL;
	*n = 0;
	st = call(c, "GET", "/api/devices", NULL, 0, 4u * 1024u * 1024u, 0,
	    &r);
	if (st != FLS_OK)
		goto done;
	arr = json_object_get(r.data, "devices");
	if (!json_is_array(arr) || json_array_size(arr) > DEVICES_MAX) {
		st = protocol(c, "device list");
		goto done;
	}
	d = calloc(json_array_size(arr) + 1, sizeof(*d));
	if (d == NULL) {
		st = fail(c, FLS_ERR_NOMEM, "out of memory");
		goto done;
	}
	json_array_foreach(arr, i, it) {
		json_t *cur = json_object_get(it, "current");
		json_t *id = json_object_get(it, "id");

		if (json_is_integer(id))
			snprintf(d[i].id, sizeof(d[i].id), "%" JSON_INTEGER_FORMAT,
			    json_integer_value(id));
		else if (jstr(it, "id", d[i].id, sizeof(d[i].id), true) != 0) {
			st = protocol(c, "device id");
			goto done;
		}
		if (jstr(it, "name", d[i].name, sizeof(d[i].name), false) ||
		    jstr(it, "platform", d[i].platform, sizeof(d[i].platform),
		    false) || jstr(it, "status", d[i].status,
		    sizeof(d[i].status), false) || jstr(it, "last_seen_at",
		    d[i].last_seen_at, sizeof(d[i].last_seen_at), false) ||
		    jstr(it, "created_at", d[i].created_at,
		    sizeof(d[i].created_at), false)) {
			st = protocol(c, "device");
			goto done;
		}
		d[i].current = json_is_true(cur);
	}
	*out = d;
	*n = json_array_size(arr);
	d = NULL;
done:
	free(d);
	transport_resp_free(&r);
	return st;
}

fls_status
fls_device_revoke(fls_client *c, const char *id)
{
	struct transport_resp r;
	char path[128];
	size_t i, len;
	fls_status st;

	len = id == NULL ? 0 : strnlen(id, 64);
	if (len == 0 || len >= 64)
		return fail(c, FLS_ERR_ARG, "bad device id");
	for (i = 0; i < len; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_'))
			return fail(c, FLS_ERR_ARG, "bad device id");
	}
	snprintf(path, sizeof(path), "/api/devices/%s", id);
	st = call(c, "DELETE", path, NULL, 0, SMALL_ANSWER_CAP, 0, &r);
	transport_resp_free(&r);
	return st;
}

/* An event object (the long-poll's and the stream's) into *e; -1 when it
 * is not the documented shape. */
static int
event_from_json(json_t *it, fls_event *e)
{
	char dt[32];
	int64_t v;

	memset(e, 0, sizeof(*e));
	if (!json_is_object(it) ||
	    jint(it, "id", 0, INT64_MAX, &e->id) != 0 ||
	    jstr(it, "type", e->type, sizeof(e->type), true) != 0 ||
	    jstr(it, "data_type", dt, sizeof(dt), false) != 0 ||
	    jstr(it, "origin_device_id", e->origin_device_id,
	    sizeof(e->origin_device_id), false) != 0 ||
	    jstr(it, "device_id", e->device_id, sizeof(e->device_id),
	    false) != 0 ||
	    jstr(it, "created_at", e->created_at,
	    sizeof(e->created_at), false) != 0)
		return -1;
	e->data_type = dt[0] != '\0' ? fls_type_parse(dt) : -1;
	e->version = jint(it, "version", 0, INT64_MAX, &v) == 0 ? v : -1;
	return 0;
}

/* What the long-poll and the stream hand on when events were pruned: a
 * "resync" event whose id is the server's `next`. */
static void
resync_event(fls_event *e, int64_t next)
{
	memset(e, 0, sizeof(*e));
	e->id = next;
	snprintf(e->type, sizeof(e->type), "resync");
	e->data_type = -1;
	e->version = -1;
}

fls_status
fls_events_wait(fls_client *c, int64_t after, int wait_s, fls_event *events,
    size_t cap, size_t *n, int64_t *next)
{
	struct transport_resp r;
	char path[128];
	json_t *arr, *it;
	size_t i;
	int64_t nx;
	fls_status st;

	*n = 0;
	if (wait_s < 0 || wait_s > 60 || after < 0)
		return fail(c, FLS_ERR_ARG, "bad wait or cursor");
	snprintf(path, sizeof(path), "/api/sync/events?after=%" PRId64
	    "&wait=%d", after, wait_s);
	st = call(c, "GET", path, NULL, 0, 4u * 1024u * 1024u, wait_s + 30L,
	    &r);
	if (st != FLS_OK)
		goto done;
	arr = json_object_get(r.data, "events");
	if (!json_is_array(arr) || jint(r.data, "next", 0, INT64_MAX, &nx)) {
		st = protocol(c, "events");
		goto done;
	}
	if (json_is_true(json_object_get(r.data, "resync"))) {
		/* missed events: never pass that off as "nothing new" */
		if (cap == 0) {
			st = fail(c, FLS_ERR_ARG, "no room for the resync event");
			goto done;
		}
		resync_event(&events[0], nx);
		*n = 1;
		*next = nx;
		goto done;
	}
	json_array_foreach(arr, i, it) {
		if (*n >= cap)
			break;
		if (event_from_json(it, &events[*n]) != 0) {
			st = protocol(c, "event");
			goto done;
		}
		(*n)++;
	}
	/* Fewer slots than events: resume after the last one delivered. */
	*next = *n < json_array_size(arr) && *n > 0 ? events[*n - 1].id : nx;
done:
	transport_resp_free(&r);
	return st;
}

/* ---- the event stream ---------------------------------------------------- */

#define STREAM_PATH "/api/sync/events/stream"
#define STREAM_RETRY_DEFAULT_MS 3000L
#define STREAM_RETRY_MIN_MS 250L

struct stream_ctx {
	fls_client *c;
	struct sse_parser *p;
	fls_event_cb cb;
	void *arg;
	int64_t cursor;         /* the last event handed to cb; -1: none */
	fls_status st;          /* why the stream was stopped, if it failed */
	bool stopped;           /* cb asked to stop */
	bool revoked;           /* this device's device_revoked was handed */
	bool opened;            /* a 200 event stream sent bytes */
};

static void
sleep_ms(long ms, volatile const int *cancel)
{
	while (ms > 0) {
		long step = ms > 100 ? 100 : ms;
		struct timespec ts = { 0, step * 1000L * 1000L };

		if (cancel != NULL && *cancel)
			return;
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			if (cancel != NULL && *cancel)
				return;
		ms -= step;
	}
}

/* One SSE event: the documented JSON, handed to the caller once. */
static int
stream_on_event(void *arg, const struct sse_event *ev)
{
	struct stream_ctx *s = arg;
	json_error_t jerr;
	json_t *root;
	fls_event e;
	int64_t next;
	int stop = 0;

	root = json_loadb(ev->data, ev->len, JSON_REJECT_DUPLICATES, &jerr);
	if (strcmp(ev->type, "resync") == 0) {
		if (root == NULL || jint(root, "next", 0, INT64_MAX, &next)) {
			s->st = protocol(s->c, "resync event");
			goto done;
		}
		resync_event(&e, next);
		s->cursor = next;
		stop = s->cb(s->arg, FLS_STREAM_RESYNC, &e);
	} else {
		if (root == NULL || event_from_json(root, &e) != 0) {
			s->st = protocol(s->c, "event");
			goto done;
		}
		if (s->cursor >= 0 && e.id <= s->cursor) {
			/* already handed over (a server replaying): never twice */
			json_decref(root);
			return 0;
		}
		s->cursor = e.id;
		stop = s->cb(s->arg, FLS_STREAM_EVENT, &e);
		if (strcmp(e.type, "device_revoked") == 0 &&
		    s->c->device_id[0] != '\0' &&
		    strcmp(e.device_id, s->c->device_id) == 0) {
			s->revoked = true;
			stop = 1;
		}
	}
	if (stop)
		s->stopped = true;
done:
	json_decref(root);
	return s->st != FLS_OK || stop ? 1 : 0;
}

static int
stream_sink(void *arg, const char *buf, size_t len)
{
	struct stream_ctx *s = arg;
	enum sse_status ss;

	s->opened = true;
	ss = sse_feed(s->p, buf, len, stream_on_event, s);
	if (ss == SSE_OK || ss == SSE_STOPPED)
		return ss == SSE_STOPPED;
	s->st = fail(s->c, FLS_ERR_PROTOCOL, "malformed event stream: %s",
	    sse_status_name(ss));
	return 1;
}

/* Whether another connection may fix what ended this one. */
static bool
stream_retryable(fls_status st, const fls_error *e)
{
	return st == FLS_OK || st == FLS_ERR_NETWORK ||
	    st == FLS_ERR_RATE_LIMITED ||
	    (st == FLS_ERR_SERVER && e->http_status >= 500) ||
	    (st == FLS_ERR_PROTOCOL && e->http_status >= 500);
}

fls_status
fls_events_stream(fls_client *c, int64_t after, fls_event_cb cb, void *arg,
    volatile const int *cancel)
{
	struct stream_ctx s;
	struct transport_resp r;
	long retry_ms = STREAM_RETRY_DEFAULT_MS, delay;
	unsigned fails = 0;
	fls_status st;

	if (cb == NULL || after < -1)
		return fail(c, FLS_ERR_ARG, "bad callback or cursor");
	memset(&s, 0, sizeof(s));
	s.c = c;
	s.cb = cb;
	s.arg = arg;
	s.cursor = after;
	s.p = calloc(1, sizeof(*s.p));
	if (s.p == NULL)
		return fail(c, FLS_ERR_NOMEM, "out of memory");
	for (;;) {
		char lei[24] = "";

		if (cancel != NULL && *cancel) {
			st = FLS_OK;
			break;
		}
		if (s.cursor >= 0)
			snprintf(lei, sizeof(lei), "%" PRId64, s.cursor);
		sse_reset(s.p, false);
		s.opened = false;
		s.st = FLS_OK;
		st = transport_stream(&c->t, STREAM_PATH, lei,
		    FLS_STREAM_IDLE_SECONDS, stream_sink, &s, cancel, &r,
		    &c->err);
		transport_resp_free(&r);
		if (s.st != FLS_OK) {
			st = s.st;
			break;
		}
		if (s.revoked) {
			st = fail(c, FLS_ERR_REVOKED, "this device was revoked");
			break;
		}
		if (s.stopped || (cancel != NULL && *cancel)) {
			st = FLS_OK;
			break;
		}
		if (!stream_retryable(st, &c->err))
			break;
		if (s.p->retry_ms >= 0)
			retry_ms = s.p->retry_ms < STREAM_RETRY_MIN_MS ?
			    STREAM_RETRY_MIN_MS : s.p->retry_ms;
		/* after an open stream or a first failure: the server's
		 * delay; each further failure doubles it, up to the cap */
		fails = s.opened ? 0 : fails + 1;
		delay = retry_ms;
		for (unsigned i = 1; i < fails && i < 8; i++)
			delay *= 2;
		if (delay > FLS_STREAM_BACKOFF_MAX_SECONDS * 1000L)
			delay = FLS_STREAM_BACKOFF_MAX_SECONDS * 1000L;
		/* jitter (up to a fifth more) spreads reconnecting clients */
		delay += (long)randombytes_uniform((uint32_t)(delay / 5 + 1));
		if (st == FLS_ERR_RATE_LIMITED &&
		    delay < c->err.retry_after * 1000L)
			delay = c->err.retry_after * 1000L;
		sleep_ms(delay, cancel);
	}
	free(s.p);
	return st;
}
