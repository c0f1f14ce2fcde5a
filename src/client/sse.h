/*
 * sse: an incremental parser of a Server-Sent Events stream (the WHATWG
 * "event stream interpretation"), fed whatever bytes the network gives.
 *
 * Lines end with CRLF, CR or LF, in any mix, split anywhere between two
 * feeds. Comments (":...") are skipped; "data:" lines accumulate (joined
 * with LF); "event:", "id:" and "retry:" set their fields; a blank line
 * dispatches the event when it has data. A leading UTF-8 BOM is skipped.
 *
 * Every size is capped: a line over SSE_LINE_MAX bytes, an event whose
 * data exceeds SSE_DATA_MAX, an event type or id longer than their fields
 * make the parser fail (sticky) instead of growing. No allocation: the
 * caller provides the struct (it is large: allocate it, not on a small
 * stack).
 */
#ifndef FLS_SSE_H
#define FLS_SSE_H

#include <stdbool.h>
#include <stddef.h>

#define SSE_LINE_MAX (64u * 1024u)  /* a longer line is a protocol error */
#define SSE_DATA_MAX (64u * 1024u)  /* data of one event, joined */
#define SSE_TYPE_MAX 64u            /* event type, with its NUL */
#define SSE_ID_MAX 64u              /* last event id, with its NUL */
#define SSE_RETRY_MAX_MS 60000L     /* a larger retry: is clamped to this */

enum sse_status {
	SSE_OK = 0,
	SSE_STOPPED,        /* the callback returned non-zero */
	SSE_ERR_LINE,       /* a line longer than SSE_LINE_MAX */
	SSE_ERR_DATA,       /* an event's data longer than SSE_DATA_MAX */
	SSE_ERR_FIELD       /* an event type or id longer than its field */
};

/* One dispatched event; every pointer is borrowed until the callback
 * returns. data is NUL-terminated (it may also hold NULs: use len). */
struct sse_event {
	const char *type;       /* "message" when the stream named none */
	const char *data;
	size_t len;
	const char *id;         /* the last event id so far ("" when none) */
};

/* Return non-zero to stop: sse_feed then returns SSE_STOPPED. */
typedef int (*sse_event_fn)(void *arg, const struct sse_event *ev);

struct sse_parser {
	enum sse_status err;    /* sticky once not SSE_OK */
	bool after_cr;          /* the last byte was a CR: skip one LF */
	bool started;           /* past the first line (BOM handling) */
	long retry_ms;          /* the last valid retry: value, -1 when none */
	unsigned long comments; /* comment lines seen (heartbeats) */
	size_t line_len;
	size_t data_len;
	char type[SSE_TYPE_MAX];
	char id[SSE_ID_MAX];
	char line[SSE_LINE_MAX];
	char data[SSE_DATA_MAX + 1];
};

/* Resets p to the start of a stream (a new connection). The last event id
 * is kept only when keep_id is true. */
void sse_reset(struct sse_parser *p, bool keep_id);

/*
 * Parses len bytes of buf, calling fn for each complete event. Returns
 * SSE_OK (wants more), SSE_STOPPED or an error; once not SSE_OK, every
 * later call returns the same status without reading anything.
 */
enum sse_status sse_feed(struct sse_parser *p, const char *buf, size_t len,
    sse_event_fn fn, void *arg);

/* A stable English name of st. */
const char *sse_status_name(enum sse_status st);

#endif
