/* Sync configuration: which data types sync. */
#include <string.h>

#include "../common/timeutil.h"
#include "api.h"
#include "server.h"

static json_t *
json_config(const struct store_config *cfg)
{
	json_t *o = json_object();
	int t;

	for (t = 0; t < DT_COUNT; t++)
		json_object_set_new(o, datatype_name(t),
		    json_boolean(cfg->enabled[t]));
	json_object_set_new(o, "updated_at", json_time(cfg->updated_at));
	return o;
}

void
api_config_get(struct req *r)
{
	struct store_config cfg;
	enum store_status st;

	st = store_call(r->db, config_get, r->auth.user_id, &cfg);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_json(r, 200, json_config(&cfg));
}

struct config_tx {
	struct req *r;
	int set[DT_COUNT];            /* -1 keep, 0 off, 1 on */
	struct store_config result;
};

static enum store_status
config_tx(struct store_conn *c, void *cls)
{
	struct config_tx *t = cls;
	struct store_config cfg;
	enum store_status st;
	json_t *meta;
	int i;

	st = store_call(c, config_get, t->r->auth.user_id, &cfg);
	if (st != STORE_OK)
		return st;
	meta = json_object();
	for (i = 0; i < DT_COUNT; i++) {
		if (t->set[i] < 0)
			continue;
		cfg.enabled[i] = t->set[i] != 0;
		json_object_set_new(meta, datatype_name(i),
		    json_boolean(cfg.enabled[i]));
	}
	cfg.updated_at = time_now_ms();
	st = store_call(c, config_put, t->r->auth.user_id, &cfg);
	if (st == STORE_OK)
		st = audit_add(c, t->r, t->r->auth.user_id, "config_updated",
		    meta);
	json_decref(meta);
	if (st == STORE_OK)
		st = event_add(c, t->r, t->r->auth.user_id, "config_changed",
		    -1, 0);
	t->result = cfg;
	return st;
}

static bool
config_write_or_reply(struct req *r, struct config_tx *t)
{
	enum store_status st;

	t->r = r;
	st = store_tx(r->srv->store, true, config_tx, t);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	api_publish(r, r->auth.user_id);
	return true;
}

static const struct jfield config_fields[] = {
	{ "history", JF_BOOL, false, 0, 0 },
	{ "environment", JF_BOOL, false, 0, 0 },
	{ "secret", JF_BOOL, false, 0, 0 },
	{ "collection", JF_BOOL, false, 0, 0 },
	{ "setting", JF_BOOL, false, 0, 0 },
};

void
api_config_put(struct req *r)
{
	struct config_tx t;
	bool any = false;
	int i;

	if (!json_fields_or_reply(r, config_fields, DT_COUNT))
		return;
	memset(&t, 0, sizeof(t));
	for (i = 0; i < DT_COUNT; i++) {
		json_t *v = json_object_get(r->json, datatype_name(i));

		t.set[i] = json_is_boolean(v) ? json_is_true(v) : -1;
		any = any || t.set[i] >= 0;
	}
	if (!any) {
		reply_error(r, 400, "invalid_request", "Send at least one of "
		    "history, environment, secret, collection, setting.");
		return;
	}
	if (!config_write_or_reply(r, &t))
		return;
	reply_json(r, 200, json_config(&t.result));
}

void
api_config_type_get(struct req *r)
{
	struct store_config cfg;
	enum store_status st;
	int type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	st = store_call(r->db, config_get, r->auth.user_id, &cfg);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_json(r, 200, json_pack("{s:s,s:b}", "type", datatype_name(type),
	    "enabled", cfg.enabled[type]));
}

static const struct jfield type_fields[] = {
	{ "enabled", JF_BOOL, true, 0, 0 },
};

void
api_config_type_put(struct req *r)
{
	struct config_tx t;
	int i, type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	if (!json_fields_or_reply(r, type_fields, 1))
		return;
	for (i = 0; i < DT_COUNT; i++)
		t.set[i] = -1;
	t.set[type] = json_is_true(json_object_get(r->json, "enabled"));
	if (!config_write_or_reply(r, &t))
		return;
	reply_json(r, 200, json_pack("{s:s,s:b}", "type", datatype_name(type),
	    "enabled", t.result.enabled[type]));
}
