/* The events long-poll: answers at once when there is news, else waits on
 * a suspended connection until an event is published or the wait ends. */
#include <string.h>

#include "../common/timeutil.h"
#include "api.h"
#include "events.h"
#include "server.h"

#define EVENTS_PAGE 100

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
	return o;
}

struct poll_state {
	int64_t after;
	int64_t deadline;
};

void
api_events_poll(struct req *r)
{
	struct poll_state *ps = r->state;
	struct store_event *ev;
	size_t n, i;
	int64_t wait;
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
