#include "router.h"

#include <stdio.h>
#include <string.h>

#include "api.h"
#include "config.h"
#include "http.h"
#include "web.h"

#define ANY AUTH_ANY
#define COOKIE AUTH_COOKIE
#define BEARER AUTH_BEARER
#define NONE AUTH_NONE

const struct route router_table[] = {
	/* accounts */
	{ M_POST, "/api/auth/signup", NONE, BODY_JSON, api_auth_signup },
	{ M_POST, "/api/auth/login", NONE, BODY_JSON, api_auth_login },
	{ M_POST, "/api/auth/logout", COOKIE, BODY_JSON, api_auth_logout },
	{ M_GET, "/api/auth/session", COOKIE, BODY_NONE, api_auth_session },
	{ M_PUT, "/api/auth/password", COOKIE, BODY_JSON, api_auth_password },
	{ M_POST, "/api/auth/verify-turnstile", NONE, BODY_JSON,
	    api_auth_verify_turnstile },

	/* device authorisation */
	{ M_POST, "/api/sync/init", NONE, BODY_JSON, api_sync_init },
	{ M_GET, "/api/sync/request", COOKIE, BODY_NONE, api_sync_request },
	{ M_POST, "/api/sync/claim", ANY, BODY_JSON, api_sync_claim },
	{ M_POST, "/api/sync/deny", COOKIE, BODY_JSON, api_sync_deny },
	{ M_POST, "/api/sync/token", NONE, BODY_JSON, api_sync_token },
	{ M_POST, "/api/sync/rotate", BEARER, BODY_JSON, api_sync_rotate },
	{ M_POST, "/api/sync/revoke", BEARER, BODY_JSON, api_sync_revoke },

	/* configuration */
	{ M_GET, "/api/sync/config", ANY, BODY_NONE, api_config_get },
	{ M_PUT, "/api/sync/config", ANY, BODY_JSON, api_config_put },
	{ M_GET, "/api/sync/config/data-type/:type", ANY, BODY_NONE,
	    api_config_type_get },
	{ M_PUT, "/api/sync/config/data-type/:type", ANY, BODY_JSON,
	    api_config_type_put },

	/* master key */
	{ M_GET, "/api/sync/key", ANY, BODY_NONE, api_key_get },
	{ M_PUT, "/api/sync/key", ANY, BODY_KEY, api_key_put },
	{ M_POST, "/api/sync/key/rotate", ANY, BODY_ROTATE, api_key_rotate },

	/* encrypted data */
	{ M_GET, "/api/sync/data", ANY, BODY_NONE, api_data_list },
	{ M_GET, "/api/sync/data/:type", ANY, BODY_NONE, api_data_get },
	{ M_PUT, "/api/sync/data/:type", ANY, BODY_BLOB, api_data_put },
	{ M_DELETE, "/api/sync/data/:type", ANY, BODY_NONE, api_data_delete },
	{ M_GET, "/api/sync/data/:type/revisions", ANY, BODY_NONE,
	    api_data_revisions },
	{ M_GET, "/api/sync/data/:type/revisions/:version", ANY, BODY_NONE,
	    api_data_revision },

	/* events */
	{ M_GET, "/api/sync/events", ANY, BODY_NONE, api_events_poll },
	{ M_GET, "/api/sync/events/stream", ANY, BODY_NONE,
	    api_events_stream },

	/* devices and audit */
	{ M_GET, "/api/devices", ANY, BODY_NONE, api_devices_list },
	{ M_DELETE, "/api/devices/:id", ANY, BODY_NONE, api_devices_delete },
	{ M_GET, "/api/audit", ANY, BODY_NONE, api_audit_list },

	/* operations */
	{ M_GET, "/api/info", NONE, BODY_NONE, api_info },
	{ M_GET, "/healthz", NONE, BODY_NONE, api_healthz },
	{ M_GET, "/readyz", NONE, BODY_NONE, api_readyz },
	{ M_GET, "/metrics", NONE, BODY_NONE, api_metrics },

	/* dashboard pages (web.c checks their session itself: no 401) */
	{ M_GET, "/", NONE, BODY_NONE, web_root },
	{ M_GET, "/login", NONE, BODY_NONE, web_page },
	{ M_GET, "/sync/authorize", NONE, BODY_NONE, web_page },
	{ M_GET, "/sync/complete", NONE, BODY_NONE, web_page },
	{ M_GET, "/dashboard", NONE, BODY_NONE, web_page },
	{ M_GET, "/dashboard/sync", NONE, BODY_NONE, web_page },
	{ M_GET, "/dashboard/devices", NONE, BODY_NONE, web_page },
	{ M_GET, "/dashboard/security", NONE, BODY_NONE, web_page },
	{ M_GET, "/static/:file", NONE, BODY_NONE, web_static },
};

const size_t router_table_len = sizeof(router_table) / sizeof(router_table[0]);

static const struct {
	const char *name;
	unsigned bit;
} methods[] = {
	{ "GET", M_GET }, { "HEAD", M_HEAD }, { "POST", M_POST },
	{ "PUT", M_PUT }, { "PATCH", M_PATCH }, { "DELETE", M_DELETE },
	{ "OPTIONS", M_OPTIONS },
};

unsigned
router_method_bit(const char *method)
{
	size_t i;

	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++)
		if (strcmp(method, methods[i].name) == 0)
			return methods[i].bit;
	return 0;
}

/*
 * Matches path against one pattern. Segments of the path are NUL-split in
 * place by the caller; here both are walked segment by segment.
 */
static bool
match_pattern(const char *pattern, const char *path, const char **params)
{
	const char *p = pattern, *s = path;
	int np = 0;

	while (*p != '\0' && *s != '\0') {
		if (*p != '/' || *s != '/')
			return false;
		p++;
		s++;
		if (*p == ':') {
			const char *end = strchr(s, '/');
			size_t len = end ? (size_t)(end - s) : strlen(s);

			if (len == 0 || np >= REQ_MAX_PARAMS)
				return false;
			params[np++] = s;
			s += len;
			p = strchr(p, '/');
			if (p == NULL)
				p = "";
		} else {
			while (*p != '\0' && *p != '/') {
				if (*p != *s)
					return false;
				p++;
				s++;
			}
			if (*s != '\0' && *s != '/')
				return false;
		}
	}
	return *p == '\0' && *s == '\0';
}

const struct route *
router_match(unsigned method, char *path, const char **params,
    unsigned *allowed)
{
	const struct route *found = NULL;
	const char *tmp[REQ_MAX_PARAMS];
	size_t i;
	int k;

	*allowed = 0;
	for (i = 0; i < router_table_len; i++) {
		const struct route *rt = &router_table[i];

		memset(tmp, 0, sizeof(tmp));
		if (!match_pattern(rt->pattern, path, tmp))
			continue;
		*allowed |= rt->method;
		if (rt->method == method ||
		    (method == M_HEAD && rt->method == M_GET)) {
			if (found == NULL) {
				found = rt;
				for (k = 0; k < REQ_MAX_PARAMS; k++)
					params[k] = tmp[k];
			}
		}
	}
	if (*allowed != 0) {
		*allowed |= M_OPTIONS;
		if (*allowed & M_GET)
			*allowed |= M_HEAD;
	}
	if (found == NULL)
		return NULL;
	/* Captured segments end at the next '/': cut them in place. */
	for (k = 0; k < REQ_MAX_PARAMS; k++) {
		char *slash;

		if (params[k] == NULL)
			continue;
		slash = strchr(params[k], '/');
		if (slash != NULL)
			*slash = '\0';
	}
	return found;
}

size_t
router_body_cap(const struct route *rt, const struct config *cfg, bool raw)
{
	size_t blob = (size_t)cfg->max_blob_bytes;
	size_t b64 = (blob + 2) / 3 * 4;

	switch (rt->body) {
	case BODY_NONE:
		return 0;
	case BODY_BLOB:
		return raw ? blob : b64 + 4096;
	case BODY_ROTATE:
		/* every type's blob, plus the key */
		return (size_t)DT_COUNT * (b64 + 1024) + 16384;
	case BODY_KEY:
		return 16384;
	default:
		return (size_t)cfg->max_body_bytes;
	}
}

void
router_allow_string(unsigned allowed, char *buf, size_t len)
{
	size_t i, used = 0;
	int n;

	buf[0] = '\0';
	for (i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
		if (!(allowed & methods[i].bit))
			continue;
		n = snprintf(buf + used, len - used, "%s%s",
		    used ? ", " : "", methods[i].name);
		if (n < 0 || (size_t)n >= len - used)
			return;
		used += (size_t)n;
	}
}
