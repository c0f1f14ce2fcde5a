#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "../common/timeutil.h"
#include "http.h"

void
log_msg(const char *fmt, ...)
{
	char line[1024], ts[RFC3339_LEN + 1];
	va_list ap;

	va_start(ap, fmt);
	if (vsnprintf(line, sizeof(line), fmt, ap) < 0)
		line[0] = '\0';
	va_end(ap);
	fprintf(stderr, "flamingo-syncd: %s %s\n",
	    time_rfc3339(ts, time_now_ms()), line);
}

static const char *const secret_marks[] = {
	"flm_sync_", "flm_temp_", "flm_web_", "token=", "temp_token=",
	"session_token=",
};

void
log_redact(char *out, size_t cap, const char *s)
{
	size_t o = 0, i, k;
	static const char red[] = "[redacted]";

	if (cap == 0)
		return;
	for (i = 0; s[i] != '\0' && o + 1 < cap;) {
		bool hit = false;

		for (k = 0; k < sizeof(secret_marks) / sizeof(secret_marks[0]);
		    k++) {
			size_t n = strlen(secret_marks[k]);

			if (strncasecmp(s + i, secret_marks[k], n) != 0)
				continue;
			/* keep a query key, hide its value */
			if (secret_marks[k][n - 1] == '=') {
				if (o + n >= cap)
					break;
				memcpy(out + o, s + i, n);
				o += n;
			}
			i += n;
			while (s[i] != '\0' && s[i] != '&' && s[i] != '/' &&
			    s[i] != ' ' && s[i] != ';')
				i++;
			if (o + sizeof(red) - 1 < cap) {
				memcpy(out + o, red, sizeof(red) - 1);
				o += sizeof(red) - 1;
			}
			hit = true;
			break;
		}
		if (hit)
			continue;
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f ||
		    s[i] == '"' || s[i] == '\\') {
			if (o + 4 >= cap)
				break;
			snprintf(out + o, cap - o, "\\x%02x",
			    (unsigned char)s[i]);
			o += 4;
		} else {
			out[o++] = s[i];
		}
		i++;
	}
	out[o] = '\0';
}

void
log_request(const struct req *r, bool aborted)
{
	char path[512];
	double ms;

	log_redact(path, sizeof(path), r->uri ? r->uri :
	    (r->path ? r->path : "-"));
	ms = (double)(time_mono_ms() - r->started_mono);
	log_msg("req=%s ip=%s \"%s %s\" %d %.0fms user=%s%s", r->id, r->ip,
	    r->method ? r->method : "-", path, r->status, ms,
	    r->auth.user_id[0] ? r->auth.user_id : "-",
	    aborted ? " aborted" : "");
}
