#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../common/version.h"
#include "../store/store.h"

#define RATE_MAX_HITS 1000000000LL
#define RATE_MAX_SECONDS 31536000LL /* one year */
#define SHOWN_MAX 64                /* characters of a bad value echoed */

enum setting_type {
	ST_STRING,	/* printable ASCII, no spaces (keys, tokens) */
	ST_DBURL,	/* sqlite:PATH, postgres://..., postgresql://...,
			   host=... dbname=... */
	ST_HTTPURL,	/* http(s):// URL kept as given */
	ST_SCRIPTURL,	/* TURNSTILE_SCRIPT_URL and its origin */
	ST_PUBURL,	/* PUBLIC_URL: normalised, with public_origin, https */
	ST_INT,		/* int in [min, max] */
	ST_I64,		/* int64_t in [min, max] */
	ST_BOOL,
	ST_RATE,	/* struct rate_rule from "N/SECONDS" */
	ST_LISTEN,	/* listen_host + listen_port from HOST:PORT */
	ST_PROXIES	/* trusted_proxies from a comma list of IPs */
};

/*
 * One row per setting: the single source for parsing, defaults and --help.
 * The flag is --<env name in lower kebab case>; `flag` adds a short alias.
 */
struct setting {
	const char *env;
	const char *flag;	/* alias, or NULL */
	enum setting_type type;
	size_t off;		/* offsetof the field in struct config */
	size_t size;		/* capacity of string fields */
	int64_t min, max;	/* ST_INT, ST_I64 */
	bool growing;		/* ST_RATE */
	const char *def;	/* default as text; NULL: derived (PUBLIC_URL) */
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define SZ(f) sizeof(((struct config *)0)->f)
#define STR(e, fl, t, f, d, h) \
	{ e, fl, t, OFF(f), SZ(f), 0, 0, false, d, h }
#define INT(e, f, lo, hi, d, h) \
	{ e, NULL, ST_INT, OFF(f), 0, lo, hi, false, d, h }
#define I64(e, f, lo, hi, d, h) \
	{ e, NULL, ST_I64, OFF(f), 0, lo, hi, false, d, h }
#define BOOL(e, f, d, h) \
	{ e, NULL, ST_BOOL, OFF(f), 0, 0, 0, false, d, h }
#define RATE(e, k, g, d, h) \
	{ e, NULL, ST_RATE, OFF(rates) + (k) * sizeof(struct rate_rule), 0, \
	    0, 0, g, d, h }

static const struct setting settings[] = {
	{ "LISTEN", "--listen", ST_LISTEN, OFF(listen_host), SZ(listen_host),
	    0, 0, false, "127.0.0.1:3000",
	    "address to serve on, HOST:PORT ([::1]:3000 for IPv6; port 0: any)" },
	STR("DATABASE_URL", "--database", ST_DBURL, database_url,
	    "sqlite:./flamingo-sync.db",
	    "storage: sqlite:PATH, postgres://USER:PASS@HOST/DB or libpq "
	    "key=value pairs"),
	STR("PUBLIC_URL", "--public-url", ST_PUBURL, public_url, NULL,
	    "URL that browsers and clients use to reach the server"),
	INT("SESSION_EXPIRY_DAYS", session_expiry_days, 1, 3650, "90",
	    "device session lifetime, days"),
	INT("TEMP_TOKEN_EXPIRY_MINUTES", temp_token_expiry_minutes, 1, 60, "5",
	    "device authorization request lifetime, minutes"),
	INT("DEVICE_POLL_INTERVAL", poll_interval_s, 1, 60, "2",
	    "device token polling interval, seconds"),
	INT("WEB_SESSION_IDLE_HOURS", web_session_idle_hours, 1, 8760, "168",
	    "web session idle timeout, hours"),
	INT("WEB_SESSION_MAX_DAYS", web_session_max_days, 1, 365, "30",
	    "web session absolute lifetime, days"),
	STR("TURNSTILE_SITE_KEY", NULL, ST_STRING, turnstile_site_key, "",
	    "Cloudflare Turnstile site key (empty: off)"),
	STR("TURNSTILE_SECRET_KEY", NULL, ST_STRING, turnstile_secret_key, "",
	    "Turnstile secret key; signups are verified when set"),
	STR("TURNSTILE_VERIFY_URL", NULL, ST_HTTPURL, turnstile_verify_url,
	    "https://challenges.cloudflare.com/turnstile/v0/siteverify",
	    "Turnstile siteverify endpoint"),
	STR("TURNSTILE_SCRIPT_URL", NULL, ST_SCRIPTURL, turnstile_script_url,
	    "https://challenges.cloudflare.com/turnstile/v0/api.js"
	    "?render=explicit",
	    "Turnstile widget script of the sign-up page (its origin is "
	    "allowed by that page's CSP)"),
	BOOL("REGISTRATION_OPEN", registration_open, "true",
	    "whether new accounts may sign up"),
	I64("MAX_BLOB_BYTES", max_blob_bytes, 1024, 1073741824, "16777216",
	    "largest encrypted item, decoded bytes"),
	I64("MAX_BODY_BYTES", max_body_bytes, 1024, 1048576, "65536",
	    "largest JSON body other than data and key uploads, bytes"),
	INT("DATA_REVISIONS", data_revisions, 1, 1000, "10",
	    "versions kept per data type"),
	INT("JSON_MAX_DEPTH", json_max_depth, 2, 64, "16",
	    "deepest JSON nesting accepted"),
	INT("MAX_URL_BYTES", max_url_bytes, 256, 65536, "2048",
	    "longest request URL, bytes"),
	INT("LONGPOLL_MAX_SECONDS", longpoll_max_s, 1, 300, "60",
	    "longest event long-poll wait, seconds"),
	INT("STREAMS_MAX", streams_max, 1, 1000000, "1000",
	    "open event streams at most, in total (then 429)"),
	INT("STREAMS_PER_USER", streams_per_user, 1, 10000, "20",
	    "open event streams per user at most (then 429)"),
	INT("STREAM_HEARTBEAT_SECONDS", stream_heartbeat_s, 1, 300, "15",
	    "seconds between comment heartbeats on an idle event stream"),
	I64("STREAM_BUFFER_BYTES", stream_buffer_bytes, 4096, 16777216,
	    "65536", "socket send buffer of an event stream, bytes"),
	INT("STREAM_MAX_SECONDS", stream_max_s, 0, 604800, "3600",
	    "an event stream ends after this long; the client resumes it "
	    "(0: never)"),
	INT("STREAM_STALL_SECONDS", stream_stall_s, 1, 3600, "30",
	    "an event stream whose client reads nothing this long is closed"),
	INT("EVENT_RETENTION_DAYS", event_retention_days, 1, 3650, "30",
	    "events older than this are pruned, days"),
	INT("AUDIT_RETENTION_DAYS", audit_retention_days, 0, 36500, "365",
	    "audit log rows older than this are pruned, days (0: kept "
	    "forever)"),
	INT("WRITE_BATCH_MAX", write_batch_max, 1, STORE_WRITE_BATCH_LIMIT,
	    "64", "SQLite: most write transactions per durable commit (1: "
	    "each its own)"),
	INT("THREADS", threads, 0, 256, "0",
	    "HTTP worker threads (0: 8 per core on SQLite, at most 64; one "
	    "per core on PostgreSQL)"),
	INT("HASH_THREADS", hash_threads, 1, 64, "1",
	    "password hashing threads"),
	INT("HASH_QUEUE", hash_queue, 1, 10000, "32",
	    "password hashes waiting at most (then 429)"),
	INT("CONNECTION_TIMEOUT", connection_timeout_s, 1, 3600, "30",
	    "idle connection timeout, seconds"),
	INT("MAX_CONNECTIONS", max_connections, 1, 100000, "1024",
	    "open connections at most"),
	INT("MAX_CONNECTIONS_PER_IP", max_connections_per_ip, 1, 100000, "64",
	    "open connections per client IP at most"),
	I64("CONNECTION_MEMORY_BYTES", connection_memory, 8192, 16777216,
	    "16384", "memory for headers and buffers per connection, bytes"),
	RATE("RATE_SIGNUP", RATE_SIGNUP_IP, false, "20/3600",
	    "signups per IP, N/SECONDS (N = 0: off)"),
	RATE("RATE_INIT", RATE_INIT_IP, false, "30/600",
	    "device authorization requests per IP, N/SECONDS"),
	RATE("RATE_USER_CODE_USER", RATE_CODE_USER, false, "20/900",
	    "wrong user codes per user, N/SECONDS"),
	RATE("RATE_USER_CODE_IP", RATE_CODE_IP, false, "20/900",
	    "wrong user codes per IP, N/SECONDS"),
	RATE("RATE_LOGIN_ACCOUNT", RATE_LOGIN_ACCOUNT, true, "10/900",
	    "failed logins per account, N/SECONDS, then growing delays"),
	RATE("RATE_LOGIN_IP", RATE_LOGIN_IP, true, "100/900",
	    "failed logins per IP, N/SECONDS, then growing delays"),
	INT("RATE_IPV6_PREFIX", rate_ipv6_prefix, 32, 128, "64",
	    "per-IP limits count an IPv6 client by this many leading bits "
	    "(its network), not its whole address"),
	{ "TRUSTED_PROXIES", NULL, ST_PROXIES, OFF(trusted_proxies),
	    SZ(trusted_proxies[0]), 0, 0, false, "",
	    "comma-separated proxy IPs whose X-Forwarded-For is believed" },
	STR("METRICS_TOKEN", NULL, ST_STRING, metrics_token, "",
	    "bearer token required by /metrics (empty: open)"),
	BOOL("LOG_REQUESTS", log_requests, "true", "one log line per request"),
};

#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static void seterr(char *, size_t, const char *, ...)
    __attribute__((format(printf, 3, 4)));

/* An error message is for people: truncating it is acceptable. */
static void
seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	if (vsnprintf(err, errlen, fmt, ap) < 0)
		err[0] = '\0';
	va_end(ap);
}

/* A printable, bounded copy of the first n characters of untrusted text,
 * for an error message. */
static const char *
shown_n(char buf[SHOWN_MAX + 4], const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n && s[i] != '\0' && i < SHOWN_MAX; i++)
		buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
	if (i < n && s[i] != '\0') {
		memcpy(buf + i, "...", 3);
		i += 3;
	}
	buf[i] = '\0';
	return buf;
}

static const char *
shown(char buf[SHOWN_MAX + 4], const char *s)
{
	return shown_n(buf, s, strlen(s));
}

static void *
field(struct config *cfg, const struct setting *st)
{
	return (char *)cfg + st->off;
}

/* Strict base-10 integer: optional '-', digits only, no overflow. */
static int
parse_int(const char *s, int64_t min, int64_t max, int64_t *out)
{
	char *end;
	long long v;

	if (!(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')))
		return -1;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0')
		return -1;
	if (v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

static int
parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "1", "yes", "on" };
	static const char *const no[] = { "false", "0", "no", "off" };
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	}
	return -1;
}

/* Port number min..65535 from exactly the n characters at s. */
static int
parse_port(const char *s, size_t n, long min, uint16_t *port)
{
	size_t i;
	long v = 0;

	if (n == 0 || n > 5)
		return -1;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	if (v < min || v > 65535)
		return -1;
	*port = (uint16_t)v;
	return 0;
}

/*
 * Copies the n-character host at s into out (capacity outlen), lower-cased.
 * An IPv6 literal (v6) must pass inet_pton; a name may hold letters, digits,
 * '-' and '.'; a name of only digits and dots must be a valid IPv4 address.
 */
static int
copy_host(const char *s, size_t n, bool v6, char *out, size_t outlen)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	bool numeric = true;
	size_t i;
	char c;

	if (n == 0 || n >= outlen)
		return -1;
	for (i = 0; i < n; i++) {
		c = s[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c - 'A' + 'a');
		if (v6) {
			if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			    c == ':' || c == '.'))
				return -1;
		} else if (c >= 'a' && c <= 'z') {
			numeric = false;
		} else if (c == '-') {
			numeric = false;
		} else if (!((c >= '0' && c <= '9') || c == '.'))
			return -1;
		out[i] = c;
	}
	out[n] = '\0';
	if (!v6 && (out[0] == '-' || out[0] == '.'))
		return -1;
	if (v6 && inet_pton(AF_INET6, out, tmp) != 1)
		return -1;
	if (!v6 && numeric && inet_pton(AF_INET, out, tmp) != 1)
		return -1;
	return 0;
}

int
config_parse_listen(const char *s, char *host, size_t hostlen,
    uint16_t *port)
{
	char h[64];
	const char *hs, *colon, *rb;
	size_t hn;
	uint16_t p;
	bool v6;

	if (s == NULL)
		return -1;
	if (s[0] == '[') {
		rb = strchr(s, ']');
		if (rb == NULL || rb[1] != ':')
			return -1;
		hs = s + 1;
		hn = (size_t)(rb - hs);
		colon = rb + 1;
		v6 = true;
	} else {
		colon = strrchr(s, ':');
		if (colon == NULL)
			return -1;
		hs = s;
		hn = (size_t)(colon - s);
		v6 = false;
	}
	if (copy_host(hs, hn, v6, h, sizeof(h)) != 0)
		return -1;
	/* Port 0: the kernel picks one (main adopts it); for tests. */
	if (parse_port(colon + 1, strlen(colon + 1), 0, &p) != 0)
		return -1;
	if (strlen(h) >= hostlen)
		return -1;
	memcpy(host, h, strlen(h) + 1);
	*port = p;
	return 0;
}

int
config_parse_rate(const char *s, struct rate_rule *rule)
{
	char num[24];
	const char *slash;
	int64_t n, secs;
	size_t len;

	if (s == NULL || (slash = strchr(s, '/')) == NULL)
		return -1;
	len = (size_t)(slash - s);
	if (len == 0 || len >= sizeof(num))
		return -1;
	memcpy(num, s, len);
	num[len] = '\0';
	/* Digits only: no sign on either side. */
	if (num[0] == '-' || slash[1] == '-')
		return -1;
	if (parse_int(num, 0, RATE_MAX_HITS, &n) != 0 ||
	    parse_int(slash + 1, 1, RATE_MAX_SECONDS, &secs) != 0)
		return -1;
	rule->limit = n;
	rule->window_ms = secs * 1000;
	return 0;
}

/*
 * PUBLIC_URL: http(s)://host[:port][/path], no userinfo, query or fragment.
 * The scheme and host are lower-cased and a default port dropped, so that
 * public_origin compares equal to the Origin header browsers send. Port 0
 * is only for a URL derived from "LISTEN HOST:0", which main completes
 * once the kernel has chosen the port.
 */
static int
parse_public_url(const char *s, struct config *cfg, bool derived)
{
	char host[256], origin[sizeof(cfg->public_origin)];
	char url[sizeof(cfg->public_url)];
	const char *rest, *auth_end, *hs, *colon = NULL, *rb;
	size_t i, an, hn, pn;
	uint16_t port = 0;
	bool https, v6 = false;
	int n;

	if (strncasecmp(s, "http://", 7) == 0) {
		https = false;
		rest = s + 7;
	} else if (strncasecmp(s, "https://", 8) == 0) {
		https = true;
		rest = s + 8;
	} else
		return -1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f || s[i] == '?' ||
		    s[i] == '#' || s[i] == '\\')
			return -1;
	auth_end = rest + strcspn(rest, "/");
	an = (size_t)(auth_end - rest);
	if (an == 0 || memchr(rest, '@', an) != NULL)
		return -1;
	if (rest[0] == '[') {
		rb = memchr(rest, ']', an);
		if (rb == NULL)
			return -1;
		hs = rest + 1;
		hn = (size_t)(rb - hs);
		if (rb + 1 != auth_end) {
			if (rb[1] != ':')
				return -1;
			colon = rb + 1;
		}
		v6 = true;
	} else {
		hs = rest;
		colon = memchr(rest, ':', an);
		hn = colon != NULL ? (size_t)(colon - rest) : an;
	}
	if (copy_host(hs, hn, v6, host, sizeof(host)) != 0)
		return -1;
	if (colon != NULL && parse_port(colon + 1,
	    (size_t)(auth_end - colon - 1), derived ? 0 : 1, &port) != 0)
		return -1;
	if (colon != NULL && port != (https ? 443 : 80))
		n = snprintf(origin, sizeof(origin), "%s://%s%s%s:%u",
		    https ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "",
		    (unsigned int)port);
	else
		n = snprintf(origin, sizeof(origin), "%s://%s%s%s",
		    https ? "https" : "http", v6 ? "[" : "", host, v6 ? "]" : "");
	if (n < 0 || (size_t)n >= sizeof(origin))
		return -1;
	pn = strlen(auth_end);
	while (pn > 0 && auth_end[pn - 1] == '/')
		pn--;
	if (pn > INT32_MAX)
		return -1;
	n = snprintf(url, sizeof(url), "%s%.*s", origin, (int)pn, auth_end);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -1;
	memcpy(cfg->public_url, url, (size_t)n + 1);
	memcpy(cfg->public_origin, origin, strlen(origin) + 1);
	cfg->https = https;
	return 0;
}

/* PUBLIC_URL when none is given: the listen address, over http. */
static int
derive_public_url(struct config *cfg)
{
	char url[sizeof(cfg->public_url)];
	const char *h = cfg->listen_host;
	bool v6 = strchr(h, ':') != NULL;
	int n;

	if (strcmp(h, "0.0.0.0") == 0 || strcmp(h, "::") == 0) {
		h = "localhost";
		v6 = false;
	}
	n = snprintf(url, sizeof(url), "http://%s%s%s:%u", v6 ? "[" : "", h,
	    v6 ? "]" : "", (unsigned int)cfg->listen_port);
	if (n < 0 || (size_t)n >= sizeof(url))
		return -1;
	return parse_public_url(url, cfg, true);
}

static int
parse_http_url(const char *s)
{
	const char *rest;
	size_t i;

	if (strncasecmp(s, "https://", 8) == 0)
		rest = s + 8;
	else if (strncasecmp(s, "http://", 7) == 0)
		rest = s + 7;
	else
		return -1;
	if (rest[0] == '\0' || rest[0] == '/')
		return -1;
	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return -1;
	return 0;
}

/*
 * TURNSTILE_SCRIPT_URL: an http(s) URL whose origin, normalised like
 * PUBLIC_URL's, goes into the sign-up page's Content-Security-Policy; it
 * may hold no character that could end a CSP source list or an HTML
 * attribute.
 */
static int
parse_script_url(const char *s, struct config *cfg)
{
	struct config scratch;
	char head[sizeof(scratch.public_url)];
	const char *rest;
	size_t n;

	if (parse_http_url(s) != 0 || strpbrk(s, ";,'\"\\<>`") != NULL ||
	    strlen(s) >= sizeof(cfg->turnstile_script_url))
		return -1;
	rest = strstr(s, "://") + 3;
	n = (size_t)(rest - s) + strcspn(rest, "/?#");
	if (n >= sizeof(head))
		return -1;
	memcpy(head, s, n);
	head[n] = '\0';
	memset(&scratch, 0, sizeof(scratch));
	if (parse_public_url(head, &scratch, false) != 0)
		return -1;
	memcpy(cfg->turnstile_script_url, s, strlen(s) + 1);
	memcpy(cfg->turnstile_script_origin, scratch.public_origin,
	    strlen(scratch.public_origin) + 1);
	return 0;
}

static int
parse_db_url(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return -1;
	if (strncmp(s, "sqlite:", 7) == 0)
		return s[7] != '\0' ? 0 : -1;
	if (strncmp(s, "postgres://", 11) == 0 ||
	    strncmp(s, "postgresql://", 13) == 0)
		return 0;
	/* libpq's key=value form: "host=/run/postgresql dbname=flamingo" */
	i = strspn(s, "abcdefghijklmnopqrstuvwxyz_");
	if (i > 0 && s[i + strspn(s + i, " ")] == '=')
		return 0;
	return -1;
}

/* Keys and tokens: printable ASCII without spaces (they travel in
 * headers and JSON). */
static int
parse_token_string(const char *s)
{
	size_t i;

	for (i = 0; s[i] != '\0'; i++)
		if (s[i] <= 0x20 || s[i] >= 0x7f)
			return -1;
	return 0;
}

/* Each entry must be an IP address; it is stored in inet_ntop's canonical
 * form so that it compares equal to the peer address as text. */
static int
parse_proxies(const char *s, struct config *cfg)
{
	char list[CONFIG_MAX_PROXIES][sizeof(cfg->trusted_proxies[0])];
	char item[64];
	unsigned char addr[sizeof(struct in6_addr)];
	const char *p = s, *e;
	size_t n;
	int count = 0, af;

	while (*p == ' ')
		p++;
	if (*p == '\0')
		goto done;
	for (;;) {
		while (*p == ' ')
			p++;
		e = p + strcspn(p, ",");
		n = (size_t)(e - p);
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n == 0 || n >= sizeof(item) || count == CONFIG_MAX_PROXIES)
			return -1;
		memcpy(item, p, n);
		item[n] = '\0';
		af = strchr(item, ':') != NULL ? AF_INET6 : AF_INET;
		if (inet_pton(af, item, addr) != 1 ||
		    inet_ntop(af, addr, list[count], sizeof(list[0])) == NULL)
			return -1;
		count++;
		if (*e == '\0')
			break;
		p = e + 1;
	}
done:
	memcpy(cfg->trusted_proxies, list, sizeof(list[0]) * (size_t)count);
	cfg->n_trusted_proxies = count;
	return 0;
}

static int
set_string(const struct setting *st, struct config *cfg, const char *v,
    char *err, size_t errlen)
{
	size_t len = strlen(v);

	/* Values of string settings may be secrets: never echoed. */
	if (len >= st->size) {
		seterr(err, errlen, "%s: at most %zu characters, got %zu",
		    st->env, st->size - 1, len);
		return -1;
	}
	memcpy(field(cfg, st), v, len + 1);
	return 0;
}

/* Parses v as setting st into cfg. On error, err names the setting. */
static int
apply(const struct setting *st, struct config *cfg, const char *v,
    char *err, size_t errlen)
{
	char buf[SHOWN_MAX + 4];
	struct rate_rule rule, *rp;
	int64_t i64;
	bool b;

	switch (st->type) {
	case ST_STRING:
		if (parse_token_string(v) != 0) {
			seterr(err, errlen, "%s: expected printable characters "
			    "without spaces", st->env);
			return -1;
		}
		return set_string(st, cfg, v, err, errlen);
	case ST_DBURL:
		if (parse_db_url(v) != 0) {
			seterr(err, errlen, "%s: expected sqlite:PATH, "
			    "postgres://USER:PASS@HOST/DB or libpq key=value "
			    "pairs", st->env);
			return -1;
		}
		return set_string(st, cfg, v, err, errlen);
	case ST_HTTPURL:
		if (parse_http_url(v) != 0) {
			seterr(err, errlen, "%s: expected an http:// or https:// "
			    "URL, got '%s'", st->env, shown(buf, v));
			return -1;
		}
		return set_string(st, cfg, v, err, errlen);
	case ST_SCRIPTURL:
		if (parse_script_url(v, cfg) != 0) {
			seterr(err, errlen, "%s: expected an http:// or https:// "
			    "URL without ; , quotes or angle brackets, got '%s'",
			    st->env, shown(buf, v));
			return -1;
		}
		return 0;
	case ST_PUBURL:
		if (parse_public_url(v, cfg, false) != 0) {
			seterr(err, errlen, "%s: expected an http:// or https:// "
			    "URL with a host and no query or fragment (at most "
			    "%zu characters), got '%s'", st->env, st->size - 1,
			    shown(buf, v));
			return -1;
		}
		return 0;
	case ST_INT:
	case ST_I64:
		if (parse_int(v, st->min, st->max, &i64) != 0) {
			seterr(err, errlen, "%s: expected an integer between "
			    "%lld and %lld, got '%s'", st->env,
			    (long long)st->min, (long long)st->max,
			    shown(buf, v));
			return -1;
		}
		if (st->type == ST_INT)
			*(int *)field(cfg, st) = (int)i64;
		else
			*(int64_t *)field(cfg, st) = i64;
		return 0;
	case ST_BOOL:
		if (parse_bool(v, &b) != 0) {
			seterr(err, errlen, "%s: expected true or false (or "
			    "1/0, yes/no, on/off), got '%s'", st->env,
			    shown(buf, v));
			return -1;
		}
		*(bool *)field(cfg, st) = b;
		return 0;
	case ST_RATE:
		if (config_parse_rate(v, &rule) != 0) {
			seterr(err, errlen, "%s: expected N/SECONDS with N "
			    "between 0 and %lld and SECONDS between 1 and %lld, "
			    "got '%s'", st->env, RATE_MAX_HITS, RATE_MAX_SECONDS,
			    shown(buf, v));
			return -1;
		}
		/* Field by field: the record's padding stays as memset left
		 * it, so whole configs compare with memcmp. */
		rp = field(cfg, st);
		rp->limit = rule.limit;
		rp->window_ms = rule.window_ms;
		rp->growing = st->growing;
		return 0;
	case ST_LISTEN:
		if (config_parse_listen(v, cfg->listen_host,
		    sizeof(cfg->listen_host), &cfg->listen_port) != 0) {
			seterr(err, errlen, "%s: expected HOST:PORT with a port "
			    "between 0 and 65535 ([::1]:3000 for IPv6), "
			    "got '%s'", st->env, shown(buf, v));
			return -1;
		}
		return 0;
	case ST_PROXIES:
		if (parse_proxies(v, cfg) != 0) {
			seterr(err, errlen, "%s: expected a comma-separated "
			    "list of at most %d IP addresses, got '%s'",
			    st->env, CONFIG_MAX_PROXIES, shown(buf, v));
			return -1;
		}
		return 0;
	}
	seterr(err, errlen, "%s: unsupported setting", st->env);
	return -1;
}

void
config_defaults(struct config *cfg)
{
	size_t i;

	memset(cfg, 0, sizeof(*cfg));
	for (i = 0; i < NSETTINGS; i++)
		/* The table's defaults are constants that must parse;
		 * test_config checks every one. */
		if (settings[i].def != NULL &&
		    apply(&settings[i], cfg, settings[i].def, NULL, 0) != 0)
			abort();
	if (derive_public_url(cfg) != 0)
		abort();
}

/* "--max-blob-bytes" for "MAX_BLOB_BYTES", into buf. */
static const char *
kebab(char *buf, size_t len, const char *env)
{
	size_t i;

	buf[0] = '-';
	buf[1] = '-';
	for (i = 0; env[i] != '\0' && i + 3 < len; i++)
		buf[i + 2] = env[i] == '_' ? '-' :
		    (env[i] >= 'A' && env[i] <= 'Z') ? (char)(env[i] + 32) :
		    env[i];
	buf[i + 2] = '\0';
	return buf;
}

/* Whether the n characters at name ("--max-blob-bytes") name setting st. */
static bool
flag_matches(const struct setting *st, const char *name, size_t n)
{
	char buf[64];

	if (st->flag != NULL && strlen(st->flag) == n &&
	    memcmp(st->flag, name, n) == 0)
		return true;
	kebab(buf, sizeof(buf), st->env);
	return strlen(buf) == n && memcmp(buf, name, n) == 0;
}

static const struct setting *
find_flag(const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < NSETTINGS; i++)
		if (flag_matches(&settings[i], name, n))
			return &settings[i];
	return NULL;
}

static void
print_help(FILE *f)
{
	char kb[64], flags[96];
	const struct setting *st;
	size_t i;
	int n;

	fprintf(f,
	    "Usage: flamingo-syncd [--SETTING VALUE | --SETTING=VALUE]...\n"
	    "       flamingo-syncd --help | --version\n"
	    "\n"
	    "Flamingo Sync server. Each setting comes from its environment\n"
	    "variable; a flag overrides the variable, which overrides the\n"
	    "default. An empty variable counts as unset.\n"
	    "\n"
	    "  %-26s %-36s %s\n", "VARIABLE", "FLAG", "MEANING [DEFAULT]");
	for (i = 0; i < NSETTINGS; i++) {
		st = &settings[i];
		kebab(kb, sizeof(kb), st->env);
		if (st->flag != NULL && strcmp(st->flag, kb) != 0)
			n = snprintf(flags, sizeof(flags), "%s, %s", st->flag,
			    kb);
		else
			n = snprintf(flags, sizeof(flags), "%s", kb);
		if (n < 0 || (size_t)n >= sizeof(flags))
			flags[0] = '\0';
		fprintf(f, "  %-26s %-36s %s [%s]\n", st->env, flags, st->help,
		    st->def == NULL ? "http://LISTEN" :
		    st->def[0] == '\0' ? "empty" : st->def);
	}
	fprintf(f,
	    "\n"
	    "Exit status: 0 ok, 1 runtime failure, 2 bad configuration.\n");
}

/*
 * Finds the flag argv[*i] and its value (from "--flag=value" or the next
 * argument, advancing *i). Returns the setting, or NULL with err set.
 */
static const struct setting *
flag_value(int argc, char **argv, int *i, const char **value, char *err,
    size_t errlen)
{
	char buf[SHOWN_MAX + 4];
	const char *arg = argv[*i], *eq;
	const struct setting *st;
	size_t n;

	eq = strchr(arg, '=');
	n = eq != NULL ? (size_t)(eq - arg) : strlen(arg);
	if (n < 3 || strncmp(arg, "--", 2) != 0 ||
	    (st = find_flag(arg, n)) == NULL) {
		/* Up to the '=' only: the value may be a secret. */
		seterr(err, errlen, "%s: unknown option (see --help)",
		    shown_n(buf, arg, n));
		return NULL;
	}
	if (eq != NULL) {
		*value = eq + 1;
		return st;
	}
	if (*i + 1 >= argc) {
		seterr(err, errlen, "%s: %s needs a value", st->env, arg);
		return NULL;
	}
	*i += 1;
	*value = argv[*i];
	return st;
}

static bool
is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

static bool
is_version(const char *a)
{
	return strcmp(a, "--version") == 0 || strcmp(a, "-V") == 0;
}

enum config_result
config_load(struct config *cfg, int argc, char **argv,
    const char *(*getenv_fn)(const char *), void *out, char *err,
    size_t errlen)
{
	FILE *f = out != NULL ? out : stdout;
	const struct setting *st;
	const char *v;
	bool public_url_given = false;
	size_t k;
	int i;

	if (err != NULL && errlen > 0)
		err[0] = '\0';
	/* --help and --version first, so that they work whatever else is
	 * wrong; values of other flags are skipped, not mistaken for them. */
	for (i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			print_help(f);
			return CONFIG_EXIT_OK;
		}
		if (is_version(argv[i])) {
			fprintf(f, "flamingo-syncd %s\n", FLM_VERSION);
			return CONFIG_EXIT_OK;
		}
		if (strncmp(argv[i], "--", 2) == 0 &&
		    strchr(argv[i], '=') == NULL &&
		    find_flag(argv[i], strlen(argv[i])) != NULL)
			i++;
	}

	for (k = 0; k < NSETTINGS; k++) {
		st = &settings[k];
		v = getenv_fn != NULL ? getenv_fn(st->env) : getenv(st->env);
		if (v == NULL || v[0] == '\0')
			continue;
		if (apply(st, cfg, v, err, errlen) != 0)
			return CONFIG_BAD;
		if (st->type == ST_PUBURL)
			public_url_given = true;
	}
	for (i = 1; i < argc; i++) {
		if ((st = flag_value(argc, argv, &i, &v, err, errlen)) == NULL)
			return CONFIG_BAD;
		if (apply(st, cfg, v, err, errlen) != 0)
			return CONFIG_BAD;
		if (st->type == ST_PUBURL)
			public_url_given = true;
	}
	if (!public_url_given && derive_public_url(cfg) != 0) {
		seterr(err, errlen, "PUBLIC_URL: cannot derive it from LISTEN; "
		    "set it");
		return CONFIG_BAD;
	}
	return CONFIG_OK;
}
