/*
 * fuzz_sse: the client's Server-Sent Events parser (src/client/sse.c), fed
 * an event stream as a malicious or broken server could send it.
 *
 * One input: bytes 0-1 pick a split point; the rest is the stream. It is
 * parsed three ways: whole, in two feeds cut at the split point, and (for
 * inputs up to 4 KiB) one byte per feed.
 *
 * Properties checked (abort on violation):
 *   - the three ways give the same events (type, id, data), the same final
 *     status, retry and comment count: where the network cuts a stream
 *     never matters;
 *   - every event's data is NUL-terminated at its length, at most
 *     SSE_DATA_MAX bytes; its type and id are terminated within their
 *     fields; retry stays within -1..SSE_RETRY_MAX_MS;
 *   - once the parser fails, it reads nothing more and stays failed.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/sse.h"

#define FUZZ_NAME "fuzz_sse"
#include "fuzz.h"

struct digest {
	size_t events;
	uint64_t h;
};

static uint64_t
mix(uint64_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= b[i];
		h *= 0x100000001b3ULL;
	}
	/* a separator, so that "ab"+"c" differs from "a"+"bc" */
	h ^= 0xff;
	h *= 0x100000001b3ULL;
	return h;
}

static int
on_event(void *arg, const struct sse_event *ev)
{
	struct digest *d = arg;

	if (ev->len > SSE_DATA_MAX)
		FAIL("data of %zu bytes", ev->len);
	if (ev->data[ev->len] != '\0')
		FAIL("data not terminated at its length");
	if (strnlen(ev->type, SSE_TYPE_MAX) >= SSE_TYPE_MAX)
		FAIL("type not terminated");
	if (strnlen(ev->id, SSE_ID_MAX) >= SSE_ID_MAX)
		FAIL("id not terminated");
	d->events++;
	d->h = mix(d->h, ev->type, strlen(ev->type));
	d->h = mix(d->h, ev->id, strlen(ev->id));
	d->h = mix(d->h, ev->data, ev->len);
	return 0;
}

static void
check_end(const char *how, const struct sse_parser *p,
    const struct sse_parser *ref, const struct digest *d,
    const struct digest *dref)
{
	if (p->err != ref->err)
		FAIL("%s: status %d, whole: %d", how, (int)p->err,
		    (int)ref->err);
	if (d->events != dref->events || d->h != dref->h)
		FAIL("%s: %zu events, whole: %zu (or different content)", how,
		    d->events, dref->events);
	if (p->retry_ms != ref->retry_ms || p->comments != ref->comments)
		FAIL("%s: retry %ld / comments %lu, whole: %ld / %lu", how,
		    p->retry_ms, p->comments, ref->retry_ms, ref->comments);
	if (strcmp(p->id, ref->id) != 0)
		FAIL("%s: last id differs", how);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sse_parser whole, split, bytes;
	struct digest dw = { 0, 0xcbf29ce484222325ULL }, ds = dw, db = dw;
	const char *s;
	size_t len, cut, i;
	enum sse_status st;

	if (size < 2)
		return 0;
	s = (const char *)data + 2;
	len = size - 2;
	cut = len == 0 ? 0 : ((size_t)data[0] << 8 | data[1]) % (len + 1);

	sse_reset(&whole, false);
	st = sse_feed(&whole, s, len, on_event, &dw);
	if (st == SSE_STOPPED)
		FAIL("stopped without a callback asking");
	if (whole.retry_ms < -1 || whole.retry_ms > SSE_RETRY_MAX_MS)
		FAIL("retry %ld", whole.retry_ms);
	if (whole.line_len > SSE_LINE_MAX || whole.data_len > SSE_DATA_MAX)
		FAIL("buffers over their caps");
	if (st != SSE_OK) {
		/* failed: sticky, and nothing more is read */
		size_t before = dw.events;

		if (sse_feed(&whole, "data: x\n\n", 9, on_event, &dw) != st ||
		    dw.events != before)
			FAIL("a failed parser went on");
		dw.events = before;
	}

	sse_reset(&split, false);
	if (sse_feed(&split, s, cut, on_event, &ds) == SSE_OK)
		sse_feed(&split, s + cut, len - cut, on_event, &ds);
	check_end("split", &split, &whole, &ds, &dw);

	if (len <= 4096) {
		sse_reset(&bytes, false);
		for (i = 0; i < len; i++)
			if (sse_feed(&bytes, s + i, 1, on_event, &db) != SSE_OK)
				break;
		check_end("byte by byte", &bytes, &whole, &db, &dw);
	}
	return 0;
}
