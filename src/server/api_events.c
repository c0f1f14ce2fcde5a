/*
 * Events, two ways. The long-poll answers at once when there is news, else
 * waits on a suspended connection until an event is published or the wait
 * ends. The stream (Server-Sent Events) is one long reply whose writer reads
 * the store after the last event it sent whenever the hub wakes it, and
 * suspends its connection when there is nothing to send: no stream holds a
 * worker thread, and a slow reader only falls behind in the store.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "api.h"
#include "auth.h"
#include "events.h"
#include "log.h"
#include "server.h"

#define EVENTS_PAGE 100
/* EventSource reconnects after this many ms */
#define STREAM_RETRY_MS 3000

json_t *json_event(const struct store_event *e);

json_t *
json_event(const struct store_event *e)
{
	json_t *o = json_pack("{s:I,s:s,s:o}", "id", (json_int_t)e->id,
	    "type", e->type, "created_at", json_time(e->created_at));

	if (o == NULL)
		return NULL;
	if (e->data_type >= 0)
		json_object_set_new(o, "data_type",
		    json_string(datatype_name(e->data_type)));
	if (e->version > 0)
		json_object_set_new(o, "version", json_integer(e->version));
	if (e->origin_device_id[0] != '\0')
		json_object_set_new(o, "origin_device_id",
		    json_string(e->origin_device_id));
	if (e->device_id[0] != '\0')
		json_object_set_new(o, "device_id", json_string(e->device_id));
	return o;
}

struct poll_state {
	int64_t after;
	int64_t deadline;
};

/*
 * Whether events after `after` were pruned by retention before the client
 * saw them; then *last is where to continue after a full resynchronisation.
 */
static enum store_status
missed_events(struct req *r, int64_t after, bool *missed, int64_t *last)
{
	enum store_status st;
	int64_t floor;

	*missed = false;
	st = store_call(r->db, event_floor, r->auth.user_id, &floor);
	if (st != STORE_OK || after >= floor)
		return st;
	*missed = true;
	st = store_call(r->db, event_last_id, r->auth.user_id, last);
	/* every event may be gone: the floor is then where to go on from */
	if (st == STORE_OK && *last < floor)
		*last = floor;
	return st;
}

void
api_events_poll(struct req *r)
{
	struct poll_state *ps = r->state;
	struct store_event *ev;
	size_t n, i;
	int64_t wait, last;
	bool missed;
	enum store_status st;
	json_t *arr;

	if (ps == NULL) {
		ps = arena_calloc(r->arena, 1, sizeof(*ps));
		if (ps == NULL) {
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
		if (!query_int_or_reply(r, "after", 0, INT64_MAX, 0,
		    &ps->after) ||
		    !query_int_or_reply(r, "wait", 0,
		    r->srv->cfg.longpoll_max_s, 25 >
		    r->srv->cfg.longpoll_max_s ? r->srv->cfg.longpoll_max_s :
		    25, &wait))
			return;
		st = missed_events(r, ps->after, &missed, &last);
		if (st != STORE_OK) {
			reply_store_error(r, st);
			return;
		}
		if (missed) {
			reply_json(r, 200, json_pack("{s:[],s:I,s:b}", "events",
			    "next", (json_int_t)last, "resync", 1));
			return;
		}
		ps->deadline = time_mono_ms() + wait * 1000;
		r->state = ps;
		if (wait > 0 && !events_wait_begin(r->srv->hub, r,
		    r->auth.user_id, ps->deadline)) {
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	for (;;) {
		if (r->waiter != NULL)
			events_wait_arm(r->srv->hub, r);
		st = store_call(r->db, event_list, r->auth.user_id, ps->after,
		    EVENTS_PAGE, r->arena, &ev, &n);
		if (st != STORE_OK) {
			reply_store_error(r, st);
			return;
		}
		if (n > 0 || r->waiter == NULL ||
		    time_mono_ms() >= ps->deadline ||
		    atomic_load(&r->srv->stopping))
			break;
		if (events_wait_suspend(r->srv->hub, r))
			return;
	}
	events_wait_end(r->srv->hub, r);
	arr = json_array();
	for (i = 0; i < n; i++) {
		if (!json_push(arr, json_event(&ev[i]))) {
			json_decref(arr);
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	reply_json(r, 200, json_pack("{s:o,s:I}", "events", arr, "next",
	    (json_int_t)(n > 0 ? ev[n - 1].id : ps->after)));
}

/* ---- the stream ---------------------------------------------------------- */

struct stream {
	int64_t last;          /* newest event id written */
	int64_t next_beat;     /* monotonic ms of the next heartbeat */
	int64_t end;           /* monotonic ms when it ends, 0 = never */
	char *out;             /* written, not yet sent (malloc) */
	size_t out_len, out_off;
	bool ending;           /* send what is left, then end */
};

/* When the hub must wake the stream without news: heartbeat or end. */
static int64_t
stream_wake_at(const struct stream *s)
{
	return s->end != 0 && s->end < s->next_beat ? s->end : s->next_beat;
}

static void
stream_cleanup(struct req *r)
{
	struct stream *s = r->state;

	if (s != NULL) {
		free(s->out);
		s->out = NULL;
	}
}

/* Appends text to the stream's pending output. */
static bool
stream_put(struct stream *s, const char *text, size_t n)
{
	char *p;

	p = realloc(s->out, s->out_len + n);
	if (p == NULL)
		return false;
	memcpy(p + s->out_len, text, n);
	s->out = p;
	s->out_len += n;
	return true;
}

static bool
stream_put_event(struct stream *s, const struct store_event *e)
{
	json_t *o = json_event(e);
	char *data = o ? json_dumps(o, JSON_COMPACT) : NULL;
	char head[96];
	int n;
	bool ok = false;

	json_decref(o);
	if (data == NULL)
		return false;
	n = snprintf(head, sizeof(head), "id: %lld\nevent: %s\ndata: ",
	    (long long)e->id, e->type);
	if (n > 0 && (size_t)n < sizeof(head) &&
	    stream_put(s, head, (size_t)n) &&
	    stream_put(s, data, strlen(data)) && stream_put(s, "\n\n", 2))
		ok = true;
	free(data);
	return ok;
}

/* The resync notice: events after the client's id were pruned. Its id
 * moves the client's Last-Event-ID on, so a reconnect resumes from there. */
static bool
stream_put_resync(struct stream *s, int64_t last)
{
	char text[160];
	int n;

	n = snprintf(text, sizeof(text), "id: %lld\nevent: resync\ndata: "
	    "{\"next\":%lld}\n\n", (long long)last, (long long)last);
	return n > 0 && (size_t)n < sizeof(text) &&
	    stream_put(s, text, (size_t)n);
}

/*
 * Reads the next page of events into the output. A device_revoked event
 * makes the stream check its credentials: when they no longer hold, that
 * event is the last one the stream sends.
 */
static enum store_status
stream_read_events(struct req *r, struct stream *s, size_t *got)
{
	struct arena *a;
	struct store_event *ev;
	size_t n, i;
	enum store_status st;
	bool valid = true;

	*got = 0;
	if ((a = arena_new()) == NULL)
		return STORE_ERROR;
	st = store_call(r->db, event_list, r->auth.user_id, s->last,
	    EVENTS_PAGE, a, &ev, &n);
	for (i = 0; st == STORE_OK && i < n; i++) {
		if (!stream_put_event(s, &ev[i])) {
			st = STORE_ERROR;
			break;
		}
		s->last = ev[i].id;
		(*got)++;
		if (strcmp(ev[i].type, "device_revoked") == 0) {
			st = auth_recheck(r, r->db, &valid);
			if (st == STORE_OK && !valid) {
				s->ending = true;
				break;
			}
		}
	}
	arena_free(a);
	return st;
}

static ssize_t
stream_write(struct req *r, char *buf, size_t max)
{
	struct server *srv = r->srv;
	struct stream *s = r->state;
	enum store_status st;
	size_t n, got;
	int64_t now;
	bool valid;

	for (;;) {
		if (s->out_off < s->out_len) {
			n = s->out_len - s->out_off;
			if (n > max)
				n = max;
			memcpy(buf, s->out + s->out_off, n);
			s->out_off += n;
			if (s->out_off == s->out_len) {
				free(s->out);
				s->out = NULL;
				s->out_off = s->out_len = 0;
			}
			return (ssize_t)n;
		}
		if (s->ending || atomic_load(&srv->stopping) ||
		    events_stream_replaced(srv->hub, r))
			return -1;
		events_wait_arm(srv->hub, r);
		st = stream_read_events(r, s, &got);
		if (st != STORE_OK) {
			log_msg("req=%s: event stream ends: storage failed (%d)",
			    r->id, (int)st);
			return -1;
		}
		if (got > 0)
			continue;
		now = time_mono_ms();
		if (s->end != 0 && now >= s->end)
			return -1;
		if (now >= s->next_beat) {
			/* a comment keeps proxies from timing the stream out;
			 * the credentials are checked at each one */
			st = auth_recheck(r, r->db, &valid);
			if (st != STORE_OK)
				return -1;
			if (!valid) {
				/* a revocation may have committed since the read
				 * above: its event goes out before the end */
				s->ending = true;
				events_wait_arm(srv->hub, r);
				if (stream_read_events(r, s, &got) != STORE_OK)
					return -1;
				continue;
			}
			if (!stream_put(s, ": ping\n\n", 8))
				return -1;
			s->next_beat = now +
			    (int64_t)srv->cfg.stream_heartbeat_s * 1000;
			events_wait_deadline(srv->hub, r, stream_wake_at(s));
			continue;
		}
		if (events_wait_suspend(srv->hub, r))
			return 0;
	}
}

/* Last-Event-ID (as sent by EventSource on reconnect): an event id of 1
 * to 18 digits. */
static bool
last_event_id_or_reply(struct req *r, int64_t *out)
{
	const char *h = req_header(r, "Last-Event-ID");
	size_t i, n;
	int64_t v = 0;

	if (h == NULL)
		return true;
	n = strlen(h);
	for (i = 0; i < n && n <= 18 && h[i] >= '0' && h[i] <= '9'; i++)
		v = v * 10 + (h[i] - '0');
	if (n == 0 || i != n) {
		reply_error(r, 400, "invalid_request", "Last-Event-ID must be "
		    "the id of an event.");
		return false;
	}
	*out = v;
	return true;
}

void
api_events_stream(struct req *r)
{
	struct server *srv = r->srv;
	struct stream *s;
	enum store_status st;
	enum events_admit adm;
	int64_t after = -1, last;
	bool missed = false, bearer;
	char hello[64];
	int n;

	r->no_store = true;
	if (!last_event_id_or_reply(r, &after))
		return;
	if (after < 0 && req_query(r, "after") != NULL &&
	    !query_int_or_reply(r, "after", 0, INT64_MAX, 0, &after))
		return;
	s = arena_calloc(r->arena, 1, sizeof(*s));
	if (s == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return;
	}
	/* without a starting point, the stream carries what happens next */
	st = after < 0 ? store_call(r->db, event_last_id, r->auth.user_id,
	    &last) : missed_events(r, after, &missed, &last);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	s->last = after < 0 || missed ? last : after;
	s->next_beat = time_mono_ms() + (int64_t)srv->cfg.stream_heartbeat_s *
	    1000;
	if (srv->cfg.stream_max_s > 0)
		s->end = time_mono_ms() + (int64_t)srv->cfg.stream_max_s * 1000;
	/* the owner: the device (whatever its current token) or the browser
	 * session; both fit whole */
	_Static_assert(TOKEN_HASH_LEN <= EVENTS_OWNER_MAX &&
	    STORE_ID_LEN <= EVENTS_OWNER_MAX, "stream owners fit");
	bearer = r->auth.kind == AUTH_BEARER;
	adm = events_stream_begin(srv->hub, r, r->auth.user_id,
	    bearer ? (const void *)r->auth.device_id : r->auth.token_hash,
	    bearer ? strlen(r->auth.device_id) : sizeof(r->auth.token_hash),
	    stream_wake_at(s), srv->cfg.streams_max, srv->cfg.streams_per_user);
	if (adm == EVENTS_FULL || adm == EVENTS_USER_FULL) {
		req_add_header(r, "Retry-After", "30");
		reply_error(r, 429, "rate_limited", adm == EVENTS_FULL ?
		    "The server has as many event streams open as it allows." :
		    "This account has as many event streams open as it "
		    "allows; close one first.");
		return;
	}
	if (adm != EVENTS_ADMITTED) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return;
	}
	r->state = s;
	r->cleanup = stream_cleanup;
	/* the first bytes go out at once: the client sees the stream open */
	n = snprintf(hello, sizeof(hello), "retry: %d\n: connected\n\n",
	    STREAM_RETRY_MS);
	if (n <= 0 || (size_t)n >= sizeof(hello) ||
	    !stream_put(s, hello, (size_t)n) ||
	    (missed && !stream_put_resync(s, last))) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return;
	}
	req_stream_limits(r, (unsigned)srv->cfg.stream_stall_s,
	    (int)srv->cfg.stream_buffer_bytes);
	req_add_header(r, "X-Accel-Buffering", "no");
	/* its timeout and small send buffer must not outlive it */
	req_add_header(r, "Connection", "close");
	reply_stream(r, "text/event-stream; charset=utf-8", stream_write);
}
