/* The dashboard's pages and static files; see web.h. */
#include "web.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "auth.h"
#include "http.h"
#include "log.h"
#include "server.h"

/*
 * Every page: scripts, styles, images and fetches from this origin only, no
 * inline script or style, no plugins, no <base>, never framed. The sign-up
 * page adds the Turnstile script's origin (script and frame) when a site key
 * is configured, and only then.
 */
#define CSP_HEAD "default-src 'none'; script-src 'self'"
#define CSP_TAIL "; style-src 'self'; img-src 'self'; connect-src 'self'; " \
	"form-action 'self'; base-uri 'none'; object-src 'none'; " \
	"frame-ancestors 'none'"

/* Static files are revalidated on every use (their ETag makes that a 304):
 * their names carry no version, and a stale module beside a fresh one
 * would break the page after an upgrade. */
#define STATIC_CACHE "no-cache"

enum page_access {
	PAGE_PUBLIC,    /* anyone */
	PAGE_SESSION,   /* a web session, else 302 to /login?redirect= */
	PAGE_SIGNED_OUT /* no web session, else 302 to /dashboard */
};

static const struct {
	const char *path;
	const char *asset;
	enum page_access access;
	bool turnstile;         /* the page may show the Turnstile widget */
} pages[] = {
	{ "/login", "login.html", PAGE_SIGNED_OUT, true },
	{ "/sync/authorize", "authorize.html", PAGE_SESSION, false },
	{ "/sync/complete", "complete.html", PAGE_PUBLIC, false },
	{ "/dashboard", "dashboard.html", PAGE_SESSION, false },
	{ "/dashboard/sync", "dashboard.html", PAGE_SESSION, false },
	{ "/dashboard/devices", "dashboard.html", PAGE_SESSION, false },
	{ "/dashboard/security", "dashboard.html", PAGE_SESSION, false },
};

const struct web_asset *
web_asset_find(const char *name)
{
	size_t i;

	for (i = 0; i < web_assets_len; i++)
		if (strcmp(web_assets[i].name, name) == 0)
			return &web_assets[i];
	return NULL;
}

bool
web_etag_matches(const char *inm, const char *etag)
{
	size_t n = strlen(etag), k;
	const char *p = inm;

	while (*p != '\0') {
		while (*p == ' ' || *p == '\t' || *p == ',')
			p++;
		if (*p == '*')
			return true;
		if (strncmp(p, "W/", 2) == 0)
			p += 2;
		k = strcspn(p, ", \t");
		if (k == n && strncmp(p, etag, n) == 0)
			return true;
		p += k;
	}
	return false;
}

/* The security headers of a page (and of its redirects and 404). */
static void
page_headers(struct req *r, bool turnstile)
{
	const struct config *cfg = &r->srv->cfg;
	const char *origin = cfg->turnstile_script_origin;

	if (turnstile && cfg->turnstile_site_key[0] != '\0' &&
	    origin[0] != '\0')
		req_add_header(r, "Content-Security-Policy",
		    arena_printf(r->arena, CSP_HEAD " %s; frame-src %s"
		    CSP_TAIL, origin, origin));
	else
		req_add_header(r, "Content-Security-Policy",
		    CSP_HEAD CSP_TAIL);
	req_add_header(r, "Cross-Origin-Opener-Policy", "same-origin");
	/* pages depend on the session (200 or 302): never cached */
	r->no_store = true;
}

static void
reply_asset(struct req *r, int status, const struct web_asset *a)
{
	reply_raw(r, status, a->type, a->data, a->len);
}

/* Why a file that the build embeds is missing: a build bug; say so. */
static void
reply_missing(struct req *r, const char *name)
{
	log_msg("req=%s: web asset %s is not embedded", r->id, name);
	reply_error(r, 500, "internal_error",
	    "Something went wrong on the server.");
}

void
web_root(struct req *r)
{
	page_headers(r, false);
	reply_redirect(r, 302, "/dashboard");
}

/*
 * "/login?redirect=<target>", target percent-encoded except for unreserved
 * characters and '/': the login page sends the visitor back there (after
 * checking that it is a path of this site). NULL when out of memory.
 */
static char *
login_location(struct req *r, const char *path, const char *query)
{
	static const char hex[] = "0123456789ABCDEF";
	static const char pre[] = "/login?redirect=";
	size_t plen = strlen(path), qlen = query ? strlen(query) : 0, i, o;
	size_t in_len = plen + (query ? 1 + qlen : 0);
	char *out = arena_alloc(r->arena, sizeof(pre) + 3 * in_len);
	unsigned char c;

	if (out == NULL)
		return NULL;
	memcpy(out, pre, sizeof(pre) - 1);
	o = sizeof(pre) - 1;
	for (i = 0; i < in_len; i++) {
		c = (unsigned char)(i < plen ? path[i] :
		    i == plen ? '?' : query[i - plen - 1]);
		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '.' ||
		    c == '_' || c == '~' || c == '/') {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

void
web_page(struct req *r)
{
	const struct web_asset *a;
	const char *query;
	char *loc;
	size_t i;
	enum store_status st;

	for (i = 0; i < sizeof(pages) / sizeof(pages[0]); i++)
		if (strcmp(pages[i].path, r->path) == 0)
			break;
	if (i == sizeof(pages) / sizeof(pages[0])) {
		reply_missing(r, r->path);
		return;
	}
	page_headers(r, pages[i].turnstile);
	if (pages[i].access == PAGE_SESSION) {
		st = auth_web_session(r);
		if (st == STORE_NOT_FOUND) {
			/* the raw query, as received: it goes back whole */
			query = strchr(r->uri, '?');
			loc = login_location(r, pages[i].path,
			    query != NULL && query[1] != '\0' ? query + 1 :
			    NULL);
			if (loc == NULL) {
				reply_error(r, 500, "internal_error",
				    "Out of memory.");
				return;
			}
			reply_redirect(r, 302, loc);
			return;
		}
		if (st != STORE_OK) {
			reply_store_error(r, st);
			return;
		}
	}
	if (pages[i].access == PAGE_SIGNED_OUT &&
	    auth_web_session(r) == STORE_OK) {
		/* signed in already: the login page's own ?redirect= is for
		 * after signing in, and is checked there */
		reply_redirect(r, 302, "/dashboard");
		return;
	}
	if ((a = web_asset_find(pages[i].asset)) == NULL) {
		reply_missing(r, pages[i].asset);
		return;
	}
	reply_asset(r, 200, a);
}

void
web_static(struct req *r)
{
	const struct web_asset *a = NULL;
	const char *file = r->params[0], *inm;
	char *name;

	/* The name is looked up in the embedded table, never opened: no
	 * path can reach outside it ("..", "%2e%2e" and "%2F" are names that
	 * simply are not there). */
	name = arena_printf(r->arena, "static/%s", file);
	if (name != NULL)
		a = web_asset_find(name);
	if (a == NULL) {
		if (!web_not_found(r))
			reply_error(r, 404, "not_found", "No such file.");
		return;
	}
	req_add_header(r, "ETag", a->etag);
	req_add_header(r, "Cache-Control", STATIC_CACHE);
	/* an SVG opened on its own is a document: it may run nothing */
	req_add_header(r, "Content-Security-Policy",
	    "default-src 'none'; frame-ancestors 'none'");
	inm = req_header(r, "If-None-Match");
	if (inm != NULL && web_etag_matches(inm, a->etag)) {
		reply_not_modified(r);
		return;
	}
	reply_asset(r, 200, a);
}

bool
web_not_found(struct req *r)
{
	const char *accept = req_header(r, "Accept");
	const struct web_asset *a;

	if (r->path == NULL || strncmp(r->path, "/api/", 5) == 0 ||
	    strcmp(r->path, "/api") == 0 || accept == NULL ||
	    strcasestr(accept, "text/html") == NULL)
		return false;
	if ((a = web_asset_find("404.html")) == NULL)
		return false;
	page_headers(r, false);
	reply_asset(r, 404, a);
	return true;
}
