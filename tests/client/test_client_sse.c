/*
 * Unit tests of the client's Server-Sent Events parser (src/client/sse.c):
 * a stream split at every byte boundary gives the same events; CRLF, CR
 * and LF line ends; comments; multi-line data; an id without data; a
 * leading BOM; oversized lines, data and fields refused (and the refusal
 * sticks); retry: only digits, clamped; a callback that stops.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "client/sse.h"

#define MAX_EVENTS 16

struct seen {
	size_t n;
	char type[MAX_EVENTS][SSE_TYPE_MAX];
	char id[MAX_EVENTS][SSE_ID_MAX];
	char data[MAX_EVENTS][256];
	size_t len[MAX_EVENTS];
	size_t stop_after;      /* 0: never stop */
};

static int
record(void *arg, const struct sse_event *ev)
{
	struct seen *s = arg;

	assert_true(s->n < MAX_EVENTS);
	assert_true(ev->len < sizeof(s->data[0]));
	snprintf(s->type[s->n], sizeof(s->type[0]), "%s", ev->type);
	snprintf(s->id[s->n], sizeof(s->id[0]), "%s", ev->id);
	memcpy(s->data[s->n], ev->data, ev->len);
	s->data[s->n][ev->len] = '\0';
	assert_int_equal(ev->data[ev->len], '\0');
	s->len[s->n] = ev->len;
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

static struct sse_parser *
parser_new(void)
{
	struct sse_parser *p = calloc(1, sizeof(*p));

	assert_non_null(p);
	sse_reset(p, false);
	return p;
}

/* Feeds text whole, then split at every boundary (and byte by byte); every
 * way must give the same events. */
static void
feed_all_ways(const char *text, size_t len, struct seen *out)
{
	struct sse_parser *p = parser_new();
	struct seen ref, s;
	size_t cut, i;

	memset(&ref, 0, sizeof(ref));
	assert_int_equal(sse_feed(p, text, len, record, &ref), SSE_OK);
	for (cut = 0; cut <= len; cut++) {
		memset(&s, 0, sizeof(s));
		sse_reset(p, false);
		assert_int_equal(sse_feed(p, text, cut, record, &s), SSE_OK);
		assert_int_equal(sse_feed(p, text + cut, len - cut, record, &s),
		    SSE_OK);
		assert_memory_equal(&s, &ref, sizeof(s));
	}
	memset(&s, 0, sizeof(s));
	sse_reset(p, false);
	for (i = 0; i < len; i++)
		assert_int_equal(sse_feed(p, text + i, 1, record, &s), SSE_OK);
	assert_memory_equal(&s, &ref, sizeof(s));
	*out = ref;
	free(p);
}

static void
test_server_frames_split_anywhere(void **state)
{
	static const char text[] =
	    "retry: 3000\n"
	    ": connected\n\n"
	    "id: 7\nevent: data_updated\n"
	    "data: {\"id\":7,\"type\":\"data_updated\"}\n\n"
	    ": ping\n\n"
	    "id: 8\nevent: device_revoked\n"
	    "data: {\"id\":8,\"device_id\":\"d2\"}\n\n"
	    "event: resync\ndata: {\"next\":42}\n\n";
	struct seen s;

	(void)state;
	feed_all_ways(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.type[0], "data_updated");
	assert_string_equal(s.id[0], "7");
	assert_string_equal(s.data[0], "{\"id\":7,\"type\":\"data_updated\"}");
	assert_string_equal(s.type[1], "device_revoked");
	assert_string_equal(s.id[1], "8");
	assert_string_equal(s.type[2], "resync");
	assert_string_equal(s.id[2], "8");   /* the last event id stays */
	assert_string_equal(s.data[2], "{\"next\":42}");
}

static void
test_line_ends(void **state)
{
	static const char *const texts[] = {
		"id: 1\nevent: a\ndata: x\n\n",
		"id: 1\r\nevent: a\r\ndata: x\r\n\r\n",
		"id: 1\revent: a\rdata: x\r\r",
		"id: 1\r\nevent: a\rdata: x\n\r\n",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		struct seen s;

		feed_all_ways(texts[i], strlen(texts[i]), &s);
		assert_int_equal(s.n, 1);
		assert_string_equal(s.type[0], "a");
		assert_string_equal(s.id[0], "1");
		assert_string_equal(s.data[0], "x");
	}
}

static void
test_cr_then_lf_in_next_feed_is_one_line_end(void **state)
{
	struct sse_parser *p = parser_new();
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	/* "data: x\r" | "\n" | "\r\n": CRLF split across feeds, then blank */
	assert_int_equal(sse_feed(p, "data: x\r", 8, record, &s), SSE_OK);
	assert_int_equal(sse_feed(p, "\n", 1, record, &s), SSE_OK);
	assert_int_equal(s.n, 0);
	assert_int_equal(sse_feed(p, "\r\n", 2, record, &s), SSE_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.data[0], "x");
	free(p);
}

static void
test_comments_and_unknown_fields_ignored(void **state)
{
	static const char text[] = ":\n: ping\n:no space\nfoo: bar\n"
	    "data\n\n"                 /* a field with no colon: empty data */
	    ": only comments\n\n";
	struct sse_parser *p = parser_new();
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sse_feed(p, text, sizeof(text) - 1, record, &s),
	    SSE_OK);
	assert_int_equal(p->comments, 4);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.type[0], "message");
	assert_int_equal(s.len[0], 0);
	free(p);
}

static void
test_multiline_data(void **state)
{
	static const char text[] = "data: one\ndata:two\ndata:  three\n"
	    "data\ndata: \n\n";
	struct seen s;

	(void)state;
	feed_all_ways(text, sizeof(text) - 1, &s);
	assert_int_equal(s.n, 1);
	/* one space after the colon is dropped, not two */
	assert_string_equal(s.data[0], "one\ntwo\n three\n\n");
}

static void
test_id_without_data(void **state)
{
	static const char text[] = "id: 5\nevent: x\n\n" "data: y\n\n"
	    "id\n\n" "data: z\n\n" "id: a\0b\ndata: w\n\n";
	struct seen s;

	(void)state;
	feed_all_ways(text, sizeof(text) - 1, &s);
	/* the id-only block dispatches nothing but sets the last id; its
	 * event type does not leak into the next event */
	assert_int_equal(s.n, 3);
	assert_string_equal(s.type[0], "message");
	assert_string_equal(s.id[0], "5");
	assert_string_equal(s.data[0], "y");
	/* "id" with no value resets it */
	assert_string_equal(s.id[1], "");
	assert_string_equal(s.data[1], "z");
	/* an id holding NUL is ignored */
	assert_string_equal(s.id[2], "");
}

static void
test_bom_skipped_once(void **state)
{
	static const char text[] = "\xEF\xBB\xBF" "data: a\n\n"
	    "\xEF\xBB\xBF" "data: b\n\n";
	struct seen s;

	(void)state;
	feed_all_ways(text, sizeof(text) - 1, &s);
	/* the second BOM is part of a field name: an unknown field */
	assert_int_equal(s.n, 1);
	assert_string_equal(s.data[0], "a");
}

static void
test_unterminated_event_not_dispatched(void **state)
{
	struct sse_parser *p = parser_new();
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	assert_int_equal(sse_feed(p, "data: x\n", 8, record, &s), SSE_OK);
	assert_int_equal(s.n, 0);
	/* a new connection starts clean */
	sse_reset(p, false);
	assert_int_equal(sse_feed(p, "data: y\n\n", 9, record, &s), SSE_OK);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.data[0], "y");
	free(p);
}

static void
test_oversized_line_refused(void **state)
{
	struct sse_parser *p = parser_new();
	char *big = malloc(SSE_LINE_MAX + 16);
	struct seen s;
	size_t i;

	(void)state;
	assert_non_null(big);
	memset(&s, 0, sizeof(s));
	/* exactly SSE_LINE_MAX bytes of line: accepted */
	memcpy(big, ": ", 2);
	memset(big + 2, 'a', SSE_LINE_MAX - 2);
	big[SSE_LINE_MAX] = '\n';
	assert_int_equal(sse_feed(p, big, SSE_LINE_MAX + 1, record, &s),
	    SSE_OK);
	/* one more byte, fed in small pieces: refused, and it sticks */
	sse_reset(p, false);
	for (i = 0; i < SSE_LINE_MAX; i += 1000)
		assert_int_equal(sse_feed(p, big, SSE_LINE_MAX - i < 1000 ?
		    SSE_LINE_MAX - i : 1000, record, &s), SSE_OK);
	assert_int_equal(sse_feed(p, "b", 1, record, &s), SSE_ERR_LINE);
	assert_int_equal(sse_feed(p, "\n\ndata: x\n\n", 11, record, &s),
	    SSE_ERR_LINE);
	assert_int_equal(s.n, 0);
	free(big);
	free(p);
}

static void
test_oversized_data_and_fields_refused(void **state)
{
	struct sse_parser *p = parser_new();
	char line[1024 + 8];
	char field[SSE_ID_MAX + 16];
	struct seen s;
	size_t i;
	enum sse_status st = SSE_OK;

	(void)state;
	memset(&s, 0, sizeof(s));
	memcpy(line, "data: ", 6);
	memset(line + 6, 'x', 1023 - 6);
	line[1023] = '\n';
	/* 64 lines of 1018 bytes (+1 LF each) fit; data beyond 64 KiB not */
	for (i = 0; i < 80 && st == SSE_OK; i++)
		st = sse_feed(p, line, 1024, record, &s);
	assert_int_equal(st, SSE_ERR_DATA);
	assert_true(i > 60);
	assert_int_equal(s.n, 0);

	sse_reset(p, false);
	memcpy(field, "id: ", 4);
	memset(field + 4, '1', SSE_ID_MAX);
	field[SSE_ID_MAX + 4] = '\n';
	assert_int_equal(sse_feed(p, field, SSE_ID_MAX + 5, record, &s),
	    SSE_ERR_FIELD);
	sse_reset(p, false);
	memcpy(field, "id: ", 4);
	field[SSE_ID_MAX - 1 + 4] = '\n';
	assert_int_equal(sse_feed(p, field, SSE_ID_MAX + 4, record, &s),
	    SSE_OK);
	assert_int_equal(strlen(p->id), SSE_ID_MAX - 1);
	sse_reset(p, false);
	memcpy(field, "event: ", 7);
	memset(field + 7, 'e', SSE_TYPE_MAX);
	field[SSE_TYPE_MAX + 7] = '\n';
	assert_int_equal(sse_feed(p, field, SSE_TYPE_MAX + 8, record, &s),
	    SSE_ERR_FIELD);
	free(p);
}

static long
retry_of(const char *line)
{
	struct sse_parser *p = parser_new();
	long v;

	assert_int_equal(sse_feed(p, line, strlen(line), NULL, NULL), SSE_OK);
	v = p->retry_ms;
	free(p);
	return v;
}

static void
test_retry_bounds(void **state)
{
	(void)state;
	assert_int_equal(retry_of("retry: 3000\n"), 3000);
	assert_int_equal(retry_of("retry:0\n"), 0);
	assert_int_equal(retry_of("retry: 60000\n"), SSE_RETRY_MAX_MS);
	assert_int_equal(retry_of("retry: 60001\n"), SSE_RETRY_MAX_MS);
	assert_int_equal(retry_of("retry: 99999999999999999999999999\n"),
	    SSE_RETRY_MAX_MS);
	assert_int_equal(retry_of("retry: -1\n"), -1);
	assert_int_equal(retry_of("retry: 30s\n"), -1);
	assert_int_equal(retry_of("retry: 1e3\n"), -1);
	assert_int_equal(retry_of("retry: \n"), -1);
	assert_int_equal(retry_of("retry\n"), -1);
	assert_int_equal(retry_of("retry:  5\n"), -1);   /* two spaces */
	assert_int_equal(retry_of("retry: 10\nretry: x\n"), 10);
	/* a retry line with no newline yet has not happened */
	assert_int_equal(retry_of("retry: 10"), -1);
}

static void
test_callback_stops(void **state)
{
	static const char text[] = "data: 1\n\ndata: 2\n\ndata: 3\n\n";
	struct sse_parser *p = parser_new();
	struct seen s;

	(void)state;
	memset(&s, 0, sizeof(s));
	s.stop_after = 2;
	assert_int_equal(sse_feed(p, text, sizeof(text) - 1, record, &s),
	    SSE_STOPPED);
	assert_int_equal(s.n, 2);
	assert_int_equal(sse_feed(p, "data: 4\n\n", 9, record, &s),
	    SSE_STOPPED);
	assert_int_equal(s.n, 2);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_frames_split_anywhere),
		cmocka_unit_test(test_line_ends),
		cmocka_unit_test(test_cr_then_lf_in_next_feed_is_one_line_end),
		cmocka_unit_test(test_comments_and_unknown_fields_ignored),
		cmocka_unit_test(test_multiline_data),
		cmocka_unit_test(test_id_without_data),
		cmocka_unit_test(test_bom_skipped_once),
		cmocka_unit_test(test_unterminated_event_not_dispatched),
		cmocka_unit_test(test_oversized_line_refused),
		cmocka_unit_test(test_oversized_data_and_fields_refused),
		cmocka_unit_test(test_retry_bounds),
		cmocka_unit_test(test_callback_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
