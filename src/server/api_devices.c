/* Devices and the audit log. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "server.h"

static const char *const device_status_names[] = {
	[DEVICE_ACTIVE] = "active",
	[DEVICE_REVOKED] = "revoked",
};

void
api_devices_list(struct req *r)
{
	struct store_device *devs;
	size_t n, i;
	enum store_status st;
	json_t *arr;

	st = store_call(r->db, device_list, r->auth.user_id, r->arena, &devs,
	    &n);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		const struct store_device *d = &devs[i];

		if (!json_push(arr, json_pack(
		    "{s:s,s:s,s:o,s:o,s:s,s:o,s:o,s:o,s:b}",
		    "id", d->id,
		    "name", d->name,
		    "platform", json_str_or_null(d->platform),
		    "app_version", json_str_or_null(d->app_version),
		    "status", device_status_names[d->status == DEVICE_ACTIVE ?
		    DEVICE_ACTIVE : DEVICE_REVOKED],
		    "created_at", json_time(d->created_at),
		    "last_seen_at", json_time(d->last_seen_at),
		    "last_ip", json_str_or_null(d->last_ip),
		    "current", r->auth.kind == AUTH_BEARER &&
		    strcmp(d->id, r->auth.device_id) == 0))) {
			json_decref(arr);
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	reply_json(r, 200, json_pack("{s:o}", "devices", arr));
}

struct delete_tx {
	struct req *r;
	const char *id;
};

static enum store_status
delete_tx(struct store_conn *c, void *cls)
{
	struct delete_tx *t = cls;
	struct store_device d;
	enum store_status st;
	json_t *meta;

	st = store_call(c, device_get, t->r->auth.user_id, t->id, &d);
	if (st != STORE_OK)
		return st;
	meta = json_pack("{s:s,s:s}", "device", d.id, "name", d.name);
	st = device_revoke_tx(c, t->r, d.id, "device_revoked", meta);
	json_decref(meta);
	return st;
}

void
api_devices_delete(struct req *r)
{
	struct delete_tx t = { r, r->params[0] };
	enum store_status st;

	if (!uuid_valid(t.id)) {
		reply_error(r, 404, "not_found", "No such device.");
		return;
	}
	st = store_tx(r->srv->store, true, delete_tx, &t);
	if (st == STORE_NOT_FOUND) {
		reply_error(r, 404, "not_found", "No such device.");
		return;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	api_publish(r, r->auth.user_id);
	reply_json(r, 200, json_object());
}

bool
query_int_or_reply(struct req *r, const char *name, int64_t min,
    int64_t max, int64_t dflt, int64_t *out)
{
	const char *s = req_query(r, name);
	char *end;
	long long v;

	*out = dflt;
	if (s == NULL)
		return true;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		reply_error(r, 400, "invalid_request", "Query parameter '%s' "
		    "must be an integer from %lld to %lld.", name,
		    (long long)min, (long long)max);
		return false;
	}
	*out = v;
	return true;
}

void
api_audit_list(struct req *r)
{
	struct store_audit *ev;
	size_t n, i;
	int64_t limit, before;
	enum store_status st;
	json_t *arr;

	if (!query_int_or_reply(r, "limit", 1, 200, 50, &limit) ||
	    !query_int_or_reply(r, "before", 1, INT64_MAX, 0, &before))
		return;
	st = store_call(r->db, audit_list, r->auth.user_id, before,
	    (int)limit, r->arena, &ev, &n);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		json_t *meta = ev[i].metadata ?
		    json_loads(ev[i].metadata, 0, NULL) : NULL;

		if (!json_push(arr, json_pack(
		    "{s:I,s:s,s:o,s:o,s:o,s:o,s:o}",
		    "id", (json_int_t)ev[i].id,
		    "event_type", ev[i].event_type,
		    "device_id", json_str_or_null(ev[i].device_id),
		    "ip", json_str_or_null(ev[i].ip),
		    "user_agent", json_str_or_null(ev[i].user_agent),
		    "metadata", meta ? meta : json_object(),
		    "created_at", json_time(ev[i].created_at)))) {
			json_decref(arr);
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	reply_json(r, 200, json_pack("{s:o}", "events", arr));
}

