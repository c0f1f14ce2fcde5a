/* The client-wrapped master key: versions, and atomic rotation with every
 * data type re-encrypted. The server never sees an unwrapped key. */
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/timeutil.h"
#include "api.h"
#include "server.h"

#define WRAPPED_MIN 40
#define WRAPPED_MAX 4096
#define RAW_KEY_LEN 32
#define KDF_MAX 1024

static json_t *
json_key(struct req *r, const struct store_key *k)
{
	char *b64 = arena_alloc(r->arena, b64_encoded_len(k->wrapped_len) + 1);
	json_t *kdf;

	if (b64 == NULL)
		return NULL;
	b64_encode(b64, k->wrapped, k->wrapped_len);
	kdf = json_loads(k->kdf ? k->kdf : "{}", 0, NULL);
	return json_pack("{s:s,s:o,s:i,s:o,s:o}", "wrapped_key", b64,
	    "kdf", kdf ? kdf : json_object(), "version", k->version,
	    "created_at", json_time(k->created_at),
	    "created_by_device", json_str_or_null(k->created_by_device));
}

void
api_key_get(struct req *r)
{
	struct store_key k;
	enum store_status st;

	r->no_store = true;
	st = store_call(r->db, key_current, r->auth.user_id, r->arena, &k);
	if (st == STORE_NOT_FOUND) {
		reply_error(r, 404, "not_found", "No key has been stored yet.");
		return;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_json(r, 200, json_key(r, &k));
}

/*
 * Decodes and checks wrapped_key and kdf of the body into k. Replies 400 and
 * returns false when they are not acceptable.
 */
static bool
key_input_or_reply(struct req *r, struct store_key *k)
{
	const char *b64 = jstr(r, "wrapped_key");
	size_t len = strlen(b64), n;
	unsigned char *buf;

	memset(k, 0, sizeof(*k));
	buf = arena_alloc(r->arena, b64_decoded_max(len) + 1);
	if (buf == NULL || b64_decode(buf, b64_decoded_max(len) + 1, &n, b64,
	    len) != 0) {
		reply_error(r, 400, "invalid_request",
		    "Field 'wrapped_key' must be base64.");
		return false;
	}
	if (n == RAW_KEY_LEN) {
		reply_error(r, 400, "invalid_request", "Field 'wrapped_key' "
		    "looks like an unwrapped key (32 bytes); wrap it first.");
		return false;
	}
	if (n < WRAPPED_MIN || n > WRAPPED_MAX) {
		reply_error(r, 400, "invalid_request", "Field 'wrapped_key' "
		    "must decode to %d to %d bytes.", WRAPPED_MIN, WRAPPED_MAX);
		return false;
	}
	k->wrapped = buf;
	k->wrapped_len = n;
	k->kdf = json_dumps(json_object_get(r->json, "kdf"), JSON_COMPACT |
	    JSON_SORT_KEYS);
	if (k->kdf == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return false;
	}
	{
		char *copy = arena_strdup(r->arena, k->kdf);

		free(k->kdf);
		k->kdf = copy;
	}
	snprintf(k->created_by_device, sizeof(k->created_by_device), "%s",
	    r->auth.device_id);
	return k->kdf != NULL;
}

enum key_outcome {
	KEY_OK,
	KEY_CONFLICT,
	KEY_INCOMPLETE
};

struct blob_in {
	int type;
	unsigned char *data;
	size_t len;
};

struct key_tx {
	struct req *r;
	struct store_key key;
	bool has_expected;
	int expected;
	int current;                  /* version found */
	int outcome;
	/* rotation */
	bool rotate;
	struct blob_in items[DT_COUNT];
	size_t n_items;
	int64_t item_version[DT_COUNT];
	json_t *missing;
};

static enum store_status
key_tx(struct store_conn *c, void *cls)
{
	struct key_tx *t = cls;
	struct req *r = t->r;
	struct store_key cur;
	struct store_item *live, it, head;
	size_t n_live, i, k;
	enum store_status st;
	int64_t now = time_now_ms();
	json_t *meta;

	t->outcome = KEY_OK;
	st = store_call(c, key_current, r->auth.user_id, r->arena, &cur);
	if (st == STORE_NOT_FOUND)
		cur.version = 0;
	else if (st != STORE_OK)
		return st;
	t->current = cur.version;
	if (t->has_expected && t->expected != cur.version) {
		t->outcome = KEY_CONFLICT;
		return STORE_ABORT;
	}
	if (t->rotate) {
		st = store_call(c, data_list, r->auth.user_id, false, r->arena,
		    &live, &n_live);
		if (st != STORE_OK)
			return st;
		json_decref(t->missing);
		t->missing = json_array();
		for (i = 0; i < n_live; i++) {
			for (k = 0; k < t->n_items; k++)
				if (t->items[k].type == live[i].type)
					break;
			if (k == t->n_items)
				json_array_append_new(t->missing,
				    json_string(datatype_name(live[i].type)));
		}
		if (json_array_size(t->missing) > 0) {
			t->outcome = KEY_INCOMPLETE;
			return STORE_ABORT;
		}
	}
	t->key.version = cur.version + 1;
	t->key.created_at = now;
	st = store_call(c, key_insert, r->auth.user_id, &t->key);
	if (st != STORE_OK)
		return st;
	for (k = 0; k < t->n_items; k++) {
		st = store_call(c, data_head, r->auth.user_id,
		    t->items[k].type, &head);
		if (st == STORE_NOT_FOUND)
			head.version = 0;
		else if (st != STORE_OK)
			return st;
		memset(&it, 0, sizeof(it));
		it.type = t->items[k].type;
		it.version = head.version + 1;
		it.key_version = t->key.version;
		it.size = (int64_t)t->items[k].len;
		it.updated_at = now;
		snprintf(it.updated_by_device, sizeof(it.updated_by_device),
		    "%s", r->auth.device_id);
		it.blob = t->items[k].data;
		st = store_call(c, data_write, r->auth.user_id, &it,
		    r->srv->cfg.data_revisions);
		if (st != STORE_OK)
			return st;
		t->item_version[k] = it.version;
		st = event_add(c, r, r->auth.user_id, "data_updated", it.type,
		    it.version);
		if (st != STORE_OK)
			return st;
	}
	meta = json_pack("{s:i,s:b}", "version", t->key.version, "rotation",
	    t->rotate);
	st = audit_add(c, r, r->auth.user_id, "key_stored", meta);
	json_decref(meta);
	if (st != STORE_OK)
		return st;
	return event_add(c, r, r->auth.user_id, "key_rotated", -1,
	    t->key.version);
}

/* Runs the key transaction and answers its failures. */
static bool
key_write_or_reply(struct req *r, struct key_tx *t)
{
	enum store_status st;

	t->r = r;
	st = store_tx(r->srv->store, true, key_tx, t);
	if (st == STORE_ABORT && t->outcome == KEY_CONFLICT) {
		reply_error_data(r, 409, "conflict", json_pack("{s:i}",
		    "version", t->current), "The key has changed since "
		    "'expected_version'; fetch it and retry.");
		return false;
	}
	if (st == STORE_ABORT && t->outcome == KEY_INCOMPLETE) {
		reply_error_data(r, 409, "incomplete_rotation",
		    json_pack("{s:O}", "missing", t->missing),
		    "The rotation must re-encrypt every type that holds "
		    "data.");
		return false;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	api_publish(r, r->auth.user_id);
	return true;
}

static void
key_tx_cleanup(struct req *r)
{
	struct key_tx *t = r->state;

	if (t != NULL)
		json_decref(t->missing);
}

static struct key_tx *
new_key_tx(struct req *r)
{
	struct key_tx *t = arena_calloc(r->arena, 1, sizeof(*t));

	if (t == NULL) {
		reply_error(r, 500, "internal_error", "Out of memory.");
		return NULL;
	}
	r->state = t;
	r->cleanup = key_tx_cleanup;
	return t;
}

static const struct jfield key_fields[] = {
	{ "wrapped_key", JF_STRING, true, 1, (WRAPPED_MAX + 2) / 3 * 4 },
	{ "kdf", JF_OBJECT, true, 0, KDF_MAX },
	{ "expected_version", JF_INT, false, 0, 1000000000 },
};

void
api_key_put(struct req *r)
{
	struct key_tx *t;

	r->no_store = true;
	if (!json_fields_or_reply(r, key_fields, 3))
		return;
	if ((t = new_key_tx(r)) == NULL)
		return;
	if (!key_input_or_reply(r, &t->key))
		return;
	t->has_expected = jhas(r, "expected_version");
	t->expected = (int)json_integer_value(json_object_get(r->json,
	    "expected_version"));
	if (!key_write_or_reply(r, t))
		return;
	reply_json(r, 200, json_pack("{s:i,s:o}", "version", t->key.version,
	    "created_at", json_time(t->key.created_at)));
}

static const struct jfield rotate_fields[] = {
	{ "wrapped_key", JF_STRING, true, 1, (WRAPPED_MAX + 2) / 3 * 4 },
	{ "kdf", JF_OBJECT, true, 0, KDF_MAX },
	{ "expected_version", JF_INT, true, 0, 1000000000 },
	{ "items", JF_ARRAY, true, 0, DT_COUNT },
};

/* Decodes one {type, encrypted_data} element of items. */
static bool
rotate_item_or_reply(struct req *r, json_t *el, size_t idx,
    struct blob_in *out, const struct key_tx *t)
{
	const char *key, *b64 = NULL;
	json_t *v;
	int type = -1;
	size_t k, len, n, cap;

	if (!json_is_object(el)) {
		reply_error(r, 400, "invalid_request",
		    "items[%zu] must be an object.", idx);
		return false;
	}
	json_object_foreach(el, key, v) {
		if (strcmp(key, "type") == 0 && json_is_string(v)) {
			type = datatype_parse(json_string_value(v));
			if (type < 0) {
				reply_error(r, 400, "invalid_type",
				    "items[%zu].type is not a data type.", idx);
				return false;
			}
		} else if (strcmp(key, "encrypted_data") == 0 &&
		    json_is_string(v)) {
			b64 = json_string_value(v);
		} else {
			reply_error(r, 400, "invalid_request",
			    "items[%zu].%.64s is unknown or of the wrong type.",
			    idx, key);
			return false;
		}
	}
	if (type < 0 || b64 == NULL) {
		reply_error(r, 400, "invalid_request",
		    "items[%zu] needs 'type' and 'encrypted_data'.", idx);
		return false;
	}
	for (k = 0; k < idx; k++)
		if (t->items[k].type == type) {
			reply_error(r, 400, "invalid_request",
			    "items[%zu].type repeats '%s'.", idx,
			    datatype_name(type));
			return false;
		}
	len = strlen(b64);
	cap = b64_decoded_max(len);
	if (cap > (size_t)r->srv->cfg.max_blob_bytes + 2) {
		reply_error(r, 413, "payload_too_large",
		    "items[%zu] is larger than MAX_BLOB_BYTES.", idx);
		return false;
	}
	out->data = arena_alloc(r->arena, cap + 1);
	if (out->data == NULL || b64_decode_public(out->data, cap + 1, &n,
	    b64, len) != 0 || n == 0) {
		reply_error(r, 400, "invalid_request",
		    "items[%zu].encrypted_data must be non-empty base64.",
		    idx);
		return false;
	}
	if (n > (size_t)r->srv->cfg.max_blob_bytes) {
		reply_error(r, 413, "payload_too_large",
		    "items[%zu] is larger than MAX_BLOB_BYTES.", idx);
		return false;
	}
	out->type = type;
	out->len = n;
	return true;
}

void
api_key_rotate(struct req *r)
{
	struct key_tx *t;
	json_t *items, *el, *out;
	size_t i;

	r->no_store = true;
	if (!json_fields_or_reply(r, rotate_fields, 4))
		return;
	if ((t = new_key_tx(r)) == NULL)
		return;
	if (!key_input_or_reply(r, &t->key))
		return;
	t->rotate = true;
	t->has_expected = true;
	t->expected = (int)json_integer_value(json_object_get(r->json,
	    "expected_version"));
	items = json_object_get(r->json, "items");
	json_array_foreach(items, i, el) {
		if (!rotate_item_or_reply(r, el, i, &t->items[i], t))
			return;
		t->n_items++;
	}
	if (!key_write_or_reply(r, t))
		return;
	out = json_array();
	for (i = 0; i < t->n_items; i++)
		json_array_append_new(out, json_pack("{s:s,s:I}", "type",
		    datatype_name(t->items[i].type), "version",
		    (json_int_t)t->item_version[i]));
	reply_json(r, 200, json_pack("{s:i,s:o,s:o}", "version",
	    t->key.version, "created_at", json_time(t->key.created_at),
	    "items", out));
}
