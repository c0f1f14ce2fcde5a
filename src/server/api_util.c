#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "slowpool.h"

#include "../common/timeutil.h"
#include "api.h"
#include "events.h"
#include "server.h"

static const char *const jf_names[] = {
	[JF_STRING] = "a string",
	[JF_BOOL] = "a boolean",
	[JF_INT] = "an integer",
	[JF_OBJECT] = "an object",
	[JF_ARRAY] = "an array",
};

static bool
type_ok(const json_t *v, int type)
{
	switch (type) {
	case JF_STRING:
		return json_is_string(v);
	case JF_BOOL:
		return json_is_boolean(v);
	case JF_INT:
		return json_is_integer(v);
	case JF_OBJECT:
		return json_is_object(v);
	case JF_ARRAY:
		return json_is_array(v);
	default:
		return false;
	}
}

bool
json_fields_check(const json_t *obj, const struct jfield *fields, size_t n,
    char *msg, size_t msglen)
{
	const char *key;
	json_t *v;
	size_t i;

	if (!json_is_object(obj)) {
		snprintf(msg, msglen, "The body must be a JSON object.");
		return false;
	}
	json_object_foreach((json_t *)(uintptr_t)obj, key, v) {
		for (i = 0; i < n; i++)
			if (strcmp(key, fields[i].name) == 0)
				break;
		if (i == n) {
			snprintf(msg, msglen, "Unknown field '%.64s'.", key);
			return false;
		}
	}
	for (i = 0; i < n; i++) {
		const struct jfield *f = &fields[i];

		v = json_object_get(obj, f->name);
		if (v == NULL || json_is_null(v)) {
			if (f->required) {
				snprintf(msg, msglen,
				    "Field '%s' is required.", f->name);
				return false;
			}
			continue;
		}
		if (!type_ok(v, f->type)) {
			snprintf(msg, msglen, "Field '%s' must be %s.",
			    f->name, jf_names[f->type]);
			return false;
		}
		if (f->type == JF_STRING) {
			size_t len = json_string_length(v);

			if ((int64_t)len < f->min || (f->max > 0 &&
			    (int64_t)len > f->max)) {
				snprintf(msg, msglen, "Field '%s' must be "
				    "%lld to %lld bytes long.", f->name,
				    (long long)f->min, (long long)f->max);
				return false;
			}
			if (strlen(json_string_value(v)) != len) {
				snprintf(msg, msglen, "Field '%s' must not "
				    "contain NUL characters.", f->name);
				return false;
			}
		} else if (f->type == JF_INT) {
			json_int_t x = json_integer_value(v);

			if (x < f->min || x > f->max) {
				snprintf(msg, msglen, "Field '%s' must be "
				    "between %lld and %lld.", f->name,
				    (long long)f->min, (long long)f->max);
				return false;
			}
		} else if (f->type == JF_ARRAY && f->max > 0) {
			if ((int64_t)json_array_size(v) > f->max) {
				snprintf(msg, msglen, "Field '%s' must have "
				    "at most %lld elements.", f->name,
				    (long long)f->max);
				return false;
			}
		} else if (f->type == JF_OBJECT && f->max > 0) {
			char *text = json_dumps(v, JSON_COMPACT);
			bool ok = text != NULL &&
			    (int64_t)strlen(text) <= f->max;

			free(text);
			if (!ok) {
				snprintf(msg, msglen, "Field '%s' must be at "
				    "most %lld bytes as JSON.", f->name,
				    (long long)f->max);
				return false;
			}
		}
	}
	return true;
}

bool
json_fields_or_reply(struct req *r, const struct jfield *fields, size_t n)
{
	char msg[256];

	if (json_fields_check(r->json, fields, n, msg, sizeof(msg)))
		return true;
	reply_error(r, 400, "invalid_request", "%s", msg);
	return false;
}

const char *
jstr(struct req *r, const char *name)
{
	return json_string_value(json_object_get(r->json, name));
}

bool
jhas(struct req *r, const char *name)
{
	json_t *v = json_object_get(r->json, name);

	return v != NULL && !json_is_null(v);
}

bool
json_push(json_t *arr, json_t *v)
{
	return v != NULL && json_array_append_new(arr, v) == 0;
}

json_t *
json_time(int64_t ms)
{
	char buf[RFC3339_LEN + 1];

	if (ms == 0)
		return json_null();
	return json_string(time_rfc3339(buf, ms));
}

json_t *
json_str_or_null(const char *s)
{
	if (s == NULL || *s == '\0')
		return json_null();
	return json_string(s);
}

bool
datatype_param_or_reply(struct req *r, int i, int *type)
{
	*type = datatype_parse(r->params[i]);
	if (*type < 0) {
		reply_error(r, 400, "invalid_type", "Unknown data type; use "
		    "history, environment, secret, collection or setting.");
		return false;
	}
	return true;
}

static void
copy_field(char *dst, size_t cap, const char *src)
{
	size_t n;

	if (src == NULL) {
		dst[0] = '\0';
		return;
	}
	n = strnlen(src, cap - 1);
	memcpy(dst, src, n);
	dst[n] = '\0';
}

enum store_status
audit_add(struct store_conn *c, struct req *r, const char *user_id,
    const char *type, json_t *metadata)
{
	struct store_audit a;
	enum store_status st;
	char *meta = NULL;

	memset(&a, 0, sizeof(a));
	copy_field(a.user_id, sizeof(a.user_id), user_id);
	copy_field(a.event_type, sizeof(a.event_type), type);
	copy_field(a.device_id, sizeof(a.device_id), r->auth.device_id);
	copy_field(a.ip, sizeof(a.ip), r->ip);
	a.user_agent = (char *)(uintptr_t)r->user_agent;
	if (metadata != NULL) {
		meta = json_dumps(metadata, JSON_COMPACT);
		if (meta == NULL)
			return STORE_ERROR;
	}
	a.metadata = meta;
	a.created_at = time_now_ms();
	st = store_call(c, audit_insert, &a);
	free(meta);
	return st;
}

static enum store_status
event_put(struct store_conn *c, struct req *r, const char *user_id,
    const char *type, int data_type, int64_t version, const char *device_id)
{
	struct store_event e;

	memset(&e, 0, sizeof(e));
	copy_field(e.user_id, sizeof(e.user_id), user_id);
	copy_field(e.type, sizeof(e.type), type);
	e.data_type = data_type;
	e.version = version;
	copy_field(e.origin_device_id, sizeof(e.origin_device_id),
	    r->auth.device_id);
	if (device_id != NULL)
		copy_field(e.device_id, sizeof(e.device_id), device_id);
	e.created_at = time_now_ms();
	return store_call(c, event_insert, &e);
}

enum store_status
event_add(struct store_conn *c, struct req *r, const char *user_id,
    const char *type, int data_type, int64_t version)
{
	return event_put(c, r, user_id, type, data_type, version, NULL);
}

enum store_status
event_add_revoked(struct store_conn *c, struct req *r, const char *user_id,
    const char *device_id)
{
	return event_put(c, r, user_id, "device_revoked", -1, 0, device_id);
}

struct rate_tx {
	const struct rate_rule *rule;
	const char *key;
	bool record;
	bool check_first;
	int64_t retry;
	bool refund;            /* take one hit back instead */
	bool restamp;           /* restart the current block from now */
};

static enum store_status
rate_tx(struct store_conn *c, void *cls)
{
	struct rate_tx *t = cls;
	struct rate_state st;
	enum store_status s;
	int64_t now = time_now_ms();

	t->retry = 0;
	s = store_call(c, rate_get, t->key, &st);
	if (s != STORE_OK)
		return s;
	if (t->restamp) {
		/* the hit is already counted: recount it at `now`, so a block
		 * runs from the end of the slow check, not its start */
		if (st.count == 0)
			return STORE_OK;
		st.count--;
		rate_record(t->rule, &st, now);
		return store_call(c, rate_put, t->key, &st,
		    rate_expires(t->rule, &st));
	}
	if (t->refund) {
		if (st.count == 0)
			return STORE_OK;
		st.count--;
		return store_call(c, rate_put, t->key, &st,
		    rate_expires(t->rule, &st));
	}
	if (t->check_first) {
		t->retry = rate_check(t->rule, &st, now);
		if (t->retry > 0)
			return STORE_OK;
	}
	if (!t->record)
		return STORE_OK;
	rate_record(t->rule, &st, now);
	return store_call(c, rate_put, t->key, &st,
	    rate_expires(t->rule, &st));
}

static bool
rate_run_or_reply(struct req *r, int kind, const char *key, bool record,
    bool check)
{
	const struct rate_rule *rule = &r->srv->cfg.rates[kind];
	struct rate_tx t = { rule, key, record, check, 0, false, false };
	enum store_status st;

	if (rule->limit == 0)
		return true;
	if (key == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return false;
	}
	st = store_tx(r->srv->store, record, rate_tx, &t);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	if (t.retry > 0) {
		reply_rate_limited(r, t.retry);
		return false;
	}
	return true;
}

bool
rate_take_or_reply(struct req *r, int kind, const char *key)
{
	return rate_run_or_reply(r, kind, key, true, true);
}

bool
rate_check_or_reply(struct req *r, int kind, const char *key)
{
	return rate_run_or_reply(r, kind, key, false, true);
}

/* Runs one quiet update of a rate record (no answer on failure: these
 * follow an answer already decided). */
static void
rate_apply(struct req *r, int kind, const char *key, bool record,
    bool refund, bool restamp)
{
	const struct rate_rule *rule = &r->srv->cfg.rates[kind];
	struct rate_tx t = { rule, key, record, false, 0, refund, restamp };

	if (rule->limit != 0 && key != NULL)
		(void)store_tx(r->srv->store, true, rate_tx, &t);
}

void
rate_count(struct req *r, int kind, const char *key)
{
	rate_apply(r, kind, key, true, false, false);
}

void
rate_restamp(struct req *r, int kind, const char *key)
{
	rate_apply(r, kind, key, false, false, true);
}

void
rate_refund(struct req *r, int kind, const char *key)
{
	rate_apply(r, kind, key, false, true, false);
}

static enum store_status
rate_forget_tx(struct store_conn *c, void *cls)
{
	return store_call(c, rate_delete, (const char *)cls);
}

/* A write like any other: through store_tx, so that on SQLite it joins a
 * group commit instead of contending for the write lock on its own. */
void
rate_forget(struct req *r, const char *key)
{
	if (key != NULL)
		(void)store_tx(r->srv->store, true, rate_forget_tx,
		    (void *)(uintptr_t)key);
}

json_t *
json_user(const struct store_user *u)
{
	return json_pack("{s:s,s:s,s:o}", "id", u->id, "email", u->email,
	    "created_at", json_time(u->created_at));
}

void
api_publish(struct req *r, const char *user_id)
{
	events_publish(r->srv->hub, user_id);
}

struct store_conn *
db_or_reply(struct req *r)
{
	if (r->db == NULL)
		r->db = store_conn(r->srv->store);
	if (r->db == NULL)
		reply_store_error(r, STORE_UNAVAILABLE);
	return r->db;
}

bool
email_normalize(char out[STORE_EMAIL_MAX + 1], const char *in)
{
	size_t len = strlen(in), i;
	const char *at, *dot;

	if (len < 3 || len > STORE_EMAIL_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)in[i];

		if (ch <= 0x20 || ch == 0x7f)
			return false;
		out[i] = (char)tolower(ch);
	}
	out[len] = '\0';
	at = strchr(out, '@');
	if (at == NULL || at == out || strchr(at + 1, '@') != NULL)
		return false;
	dot = strchr(at + 1, '.');
	return dot != NULL && dot != at + 1 && dot[1] != '\0';
}

void
slow_run(struct req *r, void (*fn)(void *), void *job, bool *rejected)
{
	*rejected = false;
	req_suspend(r);
	if (!slowpool_submit(r->srv->pool, fn, job)) {
		*rejected = true;
		atomic_fetch_add(&r->srv->metrics.hash_rejected, 1);
		req_resume(r);
	}
}
