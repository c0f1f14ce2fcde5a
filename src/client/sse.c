#include "sse.h"

#include <string.h>

void
sse_reset(struct sse_parser *p, bool keep_id)
{
	p->err = SSE_OK;
	p->after_cr = false;
	p->started = false;
	p->retry_ms = -1;
	p->comments = 0;
	p->line_len = 0;
	p->data_len = 0;
	p->type[0] = '\0';
	p->data[0] = '\0';
	if (keep_id)
		p->id[sizeof(p->id) - 1] = '\0';
	else
		p->id[0] = '\0';
}

const char *
sse_status_name(enum sse_status st)
{
	switch (st) {
	case SSE_OK:
		return "ok";
	case SSE_STOPPED:
		return "stopped";
	case SSE_ERR_LINE:
		return "a line longer than 64 KiB";
	case SSE_ERR_DATA:
		return "event data longer than 64 KiB";
	case SSE_ERR_FIELD:
		return "an event type or id too long";
	}
	return "unknown";
}

/* retry: ASCII digits only (else ignored), clamped to SSE_RETRY_MAX_MS. */
static void
set_retry(struct sse_parser *p, const char *v, size_t n)
{
	long ms = 0;
	size_t i;

	if (n == 0)
		return;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return;
		if (ms <= SSE_RETRY_MAX_MS)
			ms = ms * 10 + (v[i] - '0');
	}
	p->retry_ms = ms > SSE_RETRY_MAX_MS ? SSE_RETRY_MAX_MS : ms;
}

static enum sse_status
dispatch(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	struct sse_event ev;
	int stop;

	if (p->data_len == 0) {
		/* no data: nothing to dispatch (an id alone still counts) */
		p->type[0] = '\0';
		return SSE_OK;
	}
	/* the data buffer ends with the LF of its last line: drop it */
	p->data_len--;
	p->data[p->data_len] = '\0';
	ev.type = p->type[0] != '\0' ? p->type : "message";
	ev.data = p->data;
	ev.len = p->data_len;
	ev.id = p->id;
	stop = fn != NULL ? fn(arg, &ev) : 0;
	p->data_len = 0;
	p->data[0] = '\0';
	p->type[0] = '\0';
	return stop ? SSE_STOPPED : SSE_OK;
}

/* One complete line (without its end) in p->line[0..line_len). */
static enum sse_status
process_line(struct sse_parser *p, sse_event_fn fn, void *arg)
{
	const char *line = p->line, *colon, *v;
	size_t n = p->line_len, namelen, vlen;

	if (!p->started) {
		p->started = true;
		if (n >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
			line += 3;
			n -= 3;
		}
	}
	if (n == 0)
		return dispatch(p, fn, arg);
	if (line[0] == ':') {
		p->comments++;
		return SSE_OK;
	}
	colon = memchr(line, ':', n);
	if (colon != NULL) {
		namelen = (size_t)(colon - line);
		v = colon + 1;
		vlen = n - namelen - 1;
		if (vlen > 0 && v[0] == ' ') {
			v++;
			vlen--;
		}
	} else {
		namelen = n;
		v = line + n;
		vlen = 0;
	}
	if (namelen == 4 && memcmp(line, "data", 4) == 0) {
		if (vlen + 1 > SSE_DATA_MAX - p->data_len)
			return SSE_ERR_DATA;
		memcpy(p->data + p->data_len, v, vlen);
		p->data_len += vlen;
		p->data[p->data_len++] = '\n';
		p->data[p->data_len] = '\0';
	} else if (namelen == 5 && memcmp(line, "event", 5) == 0) {
		if (vlen >= sizeof(p->type))
			return SSE_ERR_FIELD;
		memcpy(p->type, v, vlen);
		p->type[vlen] = '\0';
	} else if (namelen == 2 && memcmp(line, "id", 2) == 0) {
		/* an id holding NUL is ignored (the spec) */
		if (memchr(v, '\0', vlen) != NULL)
			return SSE_OK;
		if (vlen >= sizeof(p->id))
			return SSE_ERR_FIELD;
		memcpy(p->id, v, vlen);
		p->id[vlen] = '\0';
	} else if (namelen == 5 && memcmp(line, "retry", 5) == 0) {
		set_retry(p, v, vlen);
	}
	/* any other field is ignored */
	return SSE_OK;
}

enum sse_status
sse_feed(struct sse_parser *p, const char *buf, size_t len, sse_event_fn fn,
    void *arg)
{
	size_t i;

	for (i = 0; i < len && p->err == SSE_OK; i++) {
		char ch = buf[i];

		if (p->after_cr) {
			p->after_cr = false;
			if (ch == '\n')
				continue;
		}
		if (ch == '\r' || ch == '\n') {
			p->after_cr = ch == '\r';
			p->err = process_line(p, fn, arg);
			p->line_len = 0;
			continue;
		}
		if (p->line_len >= sizeof(p->line)) {
			p->err = SSE_ERR_LINE;
			break;
		}
		p->line[p->line_len++] = ch;
	}
	return p->err;
}
