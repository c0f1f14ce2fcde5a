/*
 * api: the endpoint handlers (one file per area, api_*.c) and the helpers
 * they share (api_util.c). A handler validates input, calls the store and
 * shapes the reply; it never sees SQL or libmicrohttpd.
 */
#ifndef FLM_API_H
#define FLM_API_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "http.h"

/* api_auth.c */
void api_auth_signup(struct req *r);
void api_auth_login(struct req *r);
void api_auth_logout(struct req *r);
void api_auth_session(struct req *r);
void api_auth_password(struct req *r);
void api_auth_verify_turnstile(struct req *r);

/* api_device_flow.c */
void api_sync_init(struct req *r);
void api_sync_request(struct req *r);
void api_sync_claim(struct req *r);
void api_sync_deny(struct req *r);
void api_sync_token(struct req *r);
void api_sync_rotate(struct req *r);
void api_sync_revoke(struct req *r);

/* api_config.c */
void api_config_get(struct req *r);
void api_config_put(struct req *r);
void api_config_type_get(struct req *r);
void api_config_type_put(struct req *r);

/* api_key.c */
void api_key_get(struct req *r);
void api_key_put(struct req *r);
void api_key_rotate(struct req *r);

/* api_data.c */
void api_data_list(struct req *r);
void api_data_get(struct req *r);
void api_data_put(struct req *r);
void api_data_delete(struct req *r);
void api_data_revisions(struct req *r);
void api_data_revision(struct req *r);

/* api_devices.c */
void api_devices_list(struct req *r);
void api_devices_delete(struct req *r);
void api_audit_list(struct req *r);

/* api_events.c */
void api_events_poll(struct req *r);
void api_events_stream(struct req *r);

/* api_ops.c */
void api_info(struct req *r);
void api_healthz(struct req *r);
void api_readyz(struct req *r);
void api_metrics(struct req *r);

/* ---- shared helpers (api_util.c) -------------------------------------- */

enum jf_type {
	JF_STRING,
	JF_BOOL,
	JF_INT,
	JF_OBJECT,
	JF_ARRAY
};

/* One allowed field of a JSON body. */
struct jfield {
	const char *name;
	int type;            /* enum jf_type */
	bool required;
	int64_t min;         /* JF_INT: range; JF_STRING: min bytes */
	int64_t max;         /* JF_INT: range; JF_STRING/JF_OBJECT: max bytes;
	                        JF_ARRAY: max elements */
};

/*
 * Checks r->json against the fields: an object with no unknown field, every
 * required one present, each of its type and within its bounds (null is
 * accepted for optional fields and treated as absent). Replies 400
 * invalid_request naming the field and returns false otherwise.
 */
bool json_fields_or_reply(struct req *r, const struct jfield *fields,
    size_t n);

/* The check itself: true, or false with a message naming the field. */
bool json_fields_check(const json_t *obj, const struct jfield *fields,
    size_t n, char *msg, size_t msglen);

/* The string field `name` of r->json, or NULL (absent, null). */
const char *jstr(struct req *r, const char *name);

/* Whether the field is present and not null. */
bool jhas(struct req *r, const char *name);

/* Appends v (stolen) to arr; false when v is NULL or on OOM (a list must
 * then fail with 500 rather than silently miss an element). */
bool json_push(json_t *arr, json_t *v);

/* RFC 3339 string of ms, or JSON null for 0. */
json_t *json_time(int64_t ms);

/* A string, or JSON null for NULL or "". */
json_t *json_str_or_null(const char *s);

/* The :type parameter at index i as an enum data_type, or replies 400
 * invalid_type. */
bool datatype_param_or_reply(struct req *r, int i, int *type);

/* Appends an audit row for user_id, with r's device, IP and user agent.
 * metadata may be NULL; it is not stolen. */
enum store_status audit_add(struct store_conn *c, struct req *r,
    const char *user_id, const char *type, json_t *metadata);

/* Appends an event for user_id (data_type -1 / version 0 when none). */
enum store_status event_add(struct store_conn *c, struct req *r,
    const char *user_id, const char *type, int data_type, int64_t version);

/* Appends the device_revoked event of device_id. */
enum store_status event_add_revoked(struct store_conn *c, struct req *r,
    const char *user_id, const char *device_id);

/* Records one hit of the rule at key and replies 429 if over the limit
 * (the hit that crosses the limit is still allowed). In its own
 * transaction. Returns false after replying. */
bool rate_take_or_reply(struct req *r, int rate_kind, const char *key);

/* Replies 429 when the key is currently limited, without counting. */
bool rate_check_or_reply(struct req *r, int rate_kind, const char *key);

/* Counts a failure against the key (its own transaction). */
void rate_count(struct req *r, int rate_kind, const char *key);

/* After a failed slow check: restarts the key's block (if any) from now. */
void rate_restamp(struct req *r, int rate_kind, const char *key);

/* Takes back one hit counted by rate_take_or_reply (its own transaction). */
void rate_refund(struct req *r, int rate_kind, const char *key);

/* Forgets the key's count. */
void rate_forget(struct req *r, const char *key);

/* The user as the API shows it: {id, email, created_at}. */
json_t *json_user(const struct store_user *u);

/* Normalises an email (lower case) into out and checks its shape:
 * 3..254 bytes, one '@', a local part, a domain with a dot. */
bool email_normalize(char out[STORE_EMAIL_MAX + 1], const char *in);

/* Runs fn(job) on the slow pool with r suspended; fn must call
 * req_resume(r) when done. When the pool is full, sets *rejected and
 * resumes at once. The handler returns right after this call. */
void slow_run(struct req *r, void (*fn)(void *), void *job, bool *rejected);

/* In a transaction: revokes a device of r's user (status, sessions),
 * audits `event` with meta (not stolen, may be NULL) and appends
 * device_revoked. */
enum store_status device_revoke_tx(struct store_conn *c, struct req *r,
    const char *device_id, const char *event, json_t *meta);

/* A bounded integer query parameter (dflt when absent); replies 400 and
 * returns false when malformed or out of range. */
bool query_int_or_reply(struct req *r, const char *name, int64_t min,
    int64_t max, int64_t dflt, int64_t *out);

/* Wakes the long-polls and streams of user_id after a commit. */
void api_publish(struct req *r, const char *user_id);

/* The request's store connection, or replies 503 and returns NULL. */
struct store_conn *db_or_reply(struct req *r);

#endif
