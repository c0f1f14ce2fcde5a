/* Encrypted data: one opaque blob per data type, versioned, with
 * preconditions, tombstones and kept revisions. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/b64.h"
#include "../common/timeutil.h"
#include "api.h"
#include "server.h"

static json_t *
json_item_meta(const struct store_item *it)
{
	return json_pack("{s:s,s:I,s:i,s:I,s:o,s:o}",
	    "type", datatype_name(it->type),
	    "version", (json_int_t)it->version,
	    "key_version", it->key_version,
	    "size", (json_int_t)it->size,
	    "updated_at", json_time(it->updated_at),
	    "updated_by_device", json_str_or_null(it->updated_by_device));
}

/* Adds encrypted_data (base64 of the blob) to an item object. */
static bool
add_blob(struct req *r, json_t *o, const struct store_item *it)
{
	char *b64;

	b64 = malloc(b64_encoded_len((size_t)it->size) + 1);
	if (b64 == NULL)
		return false;
	b64_encode_public(b64, it->blob, (size_t)it->size);
	json_object_set_new(o, "encrypted_data", json_string_nocheck(b64));
	free(b64);
	return true;
}

/* Answers an item's metadata with its encrypted_data. */
static void
reply_item(struct req *r, const struct store_item *it)
{
	reply_json_blob(r, 200, json_item_meta(it), "encrypted_data", it->blob,
	    (size_t)it->size);
}

/*
 * Parses a non-negative integer from a query parameter or an If-Match
 * header value ("\"12\"" or "12"). -1 when absent; replies 400 and returns
 * -2 when malformed.
 */
static int64_t
parse_version(struct req *r, const char *s, const char *what)
{
	char *end;
	long long v;
	size_t len;

	if (s == NULL)
		return -1;
	len = strlen(s);
	if (len >= 2 && s[0] == '"' && s[len - 1] == '"') {
		char *tmp = arena_strndup(r->arena, s + 1, len - 2);

		s = tmp ? tmp : "";
	}
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 ||
	    v > (1LL << 53)) {
		reply_error(r, 400, "invalid_request",
		    "%s must be a non-negative integer.", what);
		return -2;
	}
	return v;
}

/* base_version from If-Match or the query/body; -1 none, -2 replied. */
static int64_t
precondition(struct req *r, int64_t from_body)
{
	int64_t a, b;

	a = parse_version(r, req_header(r, "If-Match"), "If-Match");
	if (a == -2)
		return -2;
	b = from_body >= 0 ? from_body : parse_version(r,
	    req_query(r, "base_version"), "Query parameter 'base_version'");
	if (b == -2)
		return -2;
	if (a >= 0 && b >= 0 && a != b) {
		reply_error(r, 400, "invalid_request",
		    "If-Match and base_version disagree.");
		return -2;
	}
	return a >= 0 ? a : b;
}

void
api_data_list(struct req *r)
{
	const char *include = req_query(r, "include");
	struct store_item *items;
	size_t n, i;
	enum store_status st;
	json_t *arr;
	bool with_data = false;

	if (include != NULL) {
		if (strcmp(include, "data") != 0) {
			reply_error(r, 400, "invalid_request",
			    "Query parameter 'include' accepts only 'data'.");
			return;
		}
		with_data = true;
	}
	st = store_call(r->db, data_list, r->auth.user_id, with_data,
	    r->arena, &items, &n);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		json_t *o = json_item_meta(&items[i]);

		if (o != NULL && with_data && !add_blob(r, o, &items[i])) {
			json_decref(o);
			o = NULL;
		}
		if (!json_push(arr, o)) {
			json_decref(arr);
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	reply_json(r, 200, json_pack("{s:o}", "items", arr));
}

static bool
etag_matches(const char *inm, int64_t version)
{
	char tag[32];

	if (inm == NULL)
		return false;
	if (strcmp(inm, "*") == 0)
		return true;
	snprintf(tag, sizeof(tag), "\"%lld\"", (long long)version);
	return strstr(inm, tag) != NULL;
}

static bool
wants_raw(struct req *r)
{
	const char *accept = req_header(r, "Accept");

	return accept != NULL &&
	    strstr(accept, "application/octet-stream") != NULL;
}

void
api_data_get(struct req *r)
{
	struct store_item it;
	enum store_status st;
	const char *inm;
	int type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	r->no_store = false;
	req_add_header(r, "Cache-Control", "private, no-cache");
	inm = req_header(r, "If-None-Match");
	if (inm != NULL) {
		st = store_call(r->db, data_head, r->auth.user_id, type, &it);
		if (st == STORE_OK && !it.deleted &&
		    etag_matches(inm, it.version)) {
			req_add_header(r, "ETag", arena_printf(r->arena,
			    "\"%lld\"", (long long)it.version));
			reply_not_modified(r);
			return;
		}
	}
	st = store_call(r->db, data_get, r->auth.user_id, type, r->arena,
	    &it);
	if (st == STORE_NOT_FOUND) {
		reply_error(r, 404, "not_found", "Nothing is stored for '%s'.",
		    datatype_name(type));
		return;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	req_add_header(r, "ETag", arena_printf(r->arena, "\"%lld\"",
	    (long long)it.version));
	if (wants_raw(r)) {
		req_add_header(r, "X-Sync-Version", arena_printf(r->arena,
		    "%lld", (long long)it.version));
		req_add_header(r, "X-Key-Version", arena_printf(r->arena,
		    "%d", it.key_version));
		reply_raw(r, 200, "application/octet-stream", it.blob,
		    (size_t)it.size);
		return;
	}
	reply_item(r, &it);
}

enum write_outcome {
	WRITE_OK,
	WRITE_DISABLED,
	WRITE_KEY_MISMATCH,
	WRITE_CONFLICT,
	WRITE_GONE
};

struct write_tx {
	struct req *r;
	int type;
	const unsigned char *blob;    /* NULL: delete */
	size_t len;
	int64_t base_version;         /* -1: none */
	int key_version;              /* -1: not given */
	int outcome;
	int current_key;
	struct store_item head;       /* current head on conflict */
	struct store_item written;
};

static enum store_status
write_tx(struct store_conn *c, void *cls)
{
	struct write_tx *t = cls;
	struct req *r = t->r;
	struct store_config cfg;
	struct store_key key;
	struct store_item *it = &t->written;
	enum store_status st;
	bool exists;

	st = store_call(c, config_get, r->auth.user_id, &cfg);
	if (st != STORE_OK)
		return st;
	if (!cfg.enabled[t->type]) {
		t->outcome = WRITE_DISABLED;
		return STORE_ABORT;
	}
	st = store_call(c, data_head, r->auth.user_id, t->type, &t->head);
	if (st != STORE_OK && st != STORE_NOT_FOUND)
		return st;
	exists = st == STORE_OK;
	if (!exists) {
		memset(&t->head, 0, sizeof(t->head));
		t->head.type = t->type;
	}
	if (t->blob == NULL && (!exists || t->head.deleted)) {
		t->outcome = WRITE_GONE;
		return STORE_ABORT;
	}
	if (t->base_version >= 0 && t->base_version != t->head.version) {
		t->outcome = WRITE_CONFLICT;
		return STORE_ABORT;
	}
	memset(it, 0, sizeof(*it));
	if (t->blob != NULL) {
		st = store_call(c, key_current, r->auth.user_id, r->arena,
		    &key);
		if (st == STORE_NOT_FOUND)
			key.version = 0;
		else if (st != STORE_OK)
			return st;
		t->current_key = key.version;
		if (t->key_version >= 0 && key.version > 0 &&
		    t->key_version != key.version) {
			t->outcome = WRITE_KEY_MISMATCH;
			return STORE_ABORT;
		}
		it->key_version = t->key_version >= 0 && key.version == 0 ?
		    t->key_version : key.version;
		it->blob = (unsigned char *)(uintptr_t)t->blob;
		it->size = (int64_t)t->len;
	} else {
		it->deleted = true;
		it->key_version = t->head.key_version;
	}
	it->type = t->type;
	it->version = t->head.version + 1;
	it->updated_at = time_now_ms();
	snprintf(it->updated_by_device, sizeof(it->updated_by_device), "%s",
	    r->auth.device_id);
	st = store_call(c, data_write, r->auth.user_id, it,
	    r->srv->cfg.data_revisions);
	if (st != STORE_OK)
		return st;
	if (it->deleted) {
		json_t *meta = json_pack("{s:s,s:I}", "type",
		    datatype_name(t->type), "version", (json_int_t)it->version);

		st = audit_add(c, r, r->auth.user_id, "data_cleared", meta);
		json_decref(meta);
		if (st != STORE_OK)
			return st;
	}
	t->outcome = WRITE_OK;
	return event_add(c, r, r->auth.user_id, "data_updated", t->type,
	    it->version);
}

static bool
write_or_reply(struct req *r, struct write_tx *t)
{
	enum store_status st;

	t->r = r;
	st = store_tx(r->srv->store, true, write_tx, t);
	if (st == STORE_ABORT) {
		switch (t->outcome) {
		case WRITE_DISABLED:
			reply_error(r, 403, "sync_disabled", "Sync of '%s' is "
			    "turned off for this account.",
			    datatype_name(t->type));
			return false;
		case WRITE_KEY_MISMATCH:
			reply_error_data(r, 409, "key_version_mismatch",
			    json_pack("{s:i}", "key_version", t->current_key),
			    "The data was encrypted under another key version; "
			    "fetch the current key.");
			return false;
		case WRITE_GONE:
			reply_error(r, 404, "not_found",
			    "Nothing is stored for '%s'.",
			    datatype_name(t->type));
			return false;
		case WRITE_CONFLICT:
			reply_error_data(r, 409, "conflict",
			    json_item_meta(&t->head), "The data changed since "
			    "base_version; merge with the current version or "
			    "overwrite it.");
			return false;
		default:
			break;
		}
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return false;
	}
	api_publish(r, r->auth.user_id);
	return true;
}

static const struct jfield data_fields[] = {
	{ "encrypted_data", JF_STRING, true, 1, 0 },
	{ "key_version", JF_INT, false, 0, 1000000000 },
	{ "base_version", JF_INT, false, 0, 1LL << 53 },
};

void
api_data_put(struct req *r)
{
	struct write_tx t;
	int64_t kv, body_base = -1;
	int type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	memset(&t, 0, sizeof(t));
	t.type = type;
	if (r->body_raw) {
		t.blob = r->body;
		t.len = r->body_len;
		kv = parse_version(r, req_query(r, "key_version"),
		    "Query parameter 'key_version'");
		if (kv == -2)
			return;
		if (kv > 1000000000) {
			reply_error(r, 400, "invalid_request",
			    "Query parameter 'key_version' is too large.");
			return;
		}
		t.key_version = (int)kv;
	} else {
		const char *b64;
		size_t len, cap, n;
		unsigned char *buf;

		if (!json_fields_or_reply(r, data_fields, 3))
			return;
		b64 = jstr(r, "encrypted_data");
		len = strlen(b64);
		cap = b64_decoded_max(len);
		buf = arena_alloc(r->arena, cap + 1);
		if (buf == NULL ||
		    b64_decode_public(buf, cap + 1, &n, b64, len) != 0) {
			reply_error(r, 400, "invalid_request",
			    "Field 'encrypted_data' must be base64.");
			return;
		}
		if (n > (size_t)r->srv->cfg.max_blob_bytes) {
			reply_error(r, 413, "payload_too_large",
			    "The blob is larger than MAX_BLOB_BYTES (%lld).",
			    (long long)r->srv->cfg.max_blob_bytes);
			return;
		}
		t.blob = buf;
		t.len = n;
		t.key_version = jhas(r, "key_version") ?
		    (int)json_integer_value(json_object_get(r->json,
		    "key_version")) : -1;
		body_base = jhas(r, "base_version") ?
		    (int64_t)json_integer_value(json_object_get(r->json,
		    "base_version")) : -1;
	}
	if (t.len == 0) {
		reply_error(r, 400, "invalid_request",
		    "The encrypted data is empty.");
		return;
	}
	t.base_version = precondition(r, body_base);
	if (t.base_version == -2)
		return;
	if (!write_or_reply(r, &t))
		return;
	req_add_header(r, "ETag", arena_printf(r->arena, "\"%lld\"",
	    (long long)t.written.version));
	reply_json(r, 200, json_pack("{s:s,s:I,s:I,s:o}",
	    "type", datatype_name(type),
	    "version", (json_int_t)t.written.version,
	    "size", (json_int_t)t.written.size,
	    "updated_at", json_time(t.written.updated_at)));
}

void
api_data_delete(struct req *r)
{
	struct write_tx t;
	int type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	memset(&t, 0, sizeof(t));
	t.type = type;
	t.key_version = -1;
	t.base_version = precondition(r, -1);
	if (t.base_version == -2)
		return;
	if (!write_or_reply(r, &t))
		return;
	reply_json(r, 200, json_pack("{s:s,s:I}", "type", datatype_name(type),
	    "version", (json_int_t)t.written.version));
}

void
api_data_revisions(struct req *r)
{
	struct store_item *items;
	size_t n, i;
	enum store_status st;
	json_t *arr;
	int type;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	st = store_call(r->db, revision_list, r->auth.user_id, type, r->arena,
	    &items, &n);
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	arr = json_array();
	for (i = 0; i < n; i++) {
		json_t *o = json_item_meta(&items[i]);

		if (o != NULL)
			json_object_del(o, "type");
		if (!json_push(arr, o)) {
			json_decref(arr);
			reply_error(r, 500, "internal_error", "Out of memory.");
			return;
		}
	}
	reply_json(r, 200, json_pack("{s:s,s:o}", "type", datatype_name(type),
	    "revisions", arr));
}

void
api_data_revision(struct req *r)
{
	struct store_item it;
	enum store_status st;
	int64_t version;
	int type;
	char *end;

	if (!datatype_param_or_reply(r, 0, &type))
		return;
	errno = 0;
	version = strtoll(r->params[1], &end, 10);
	if (errno != 0 || *end != '\0' || version < 1) {
		reply_error(r, 404, "not_found", "No such revision.");
		return;
	}
	st = store_call(r->db, revision_get, r->auth.user_id, type, version,
	    r->arena, &it);
	if (st == STORE_NOT_FOUND) {
		reply_error(r, 404, "not_found", "No such revision.");
		return;
	}
	if (st != STORE_OK) {
		reply_store_error(r, st);
		return;
	}
	reply_item(r, &it);
}
