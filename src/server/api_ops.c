/* Operations: info, health, readiness, metrics. */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/version.h"
#include "api.h"
#include "events.h"
#include "server.h"

void
api_info(struct req *r)
{
	const struct config *cfg = &r->srv->cfg;
	json_t *types = json_array();
	int t;

	for (t = 0; t < DT_COUNT; t++)
		json_array_append_new(types, json_string(datatype_name(t)));
	reply_json(r, 200, json_pack(
	    "{s:s,s:o,s:{s:I,s:I,s:i,s:i,s:i,s:i},s:b,s:o,s:o,s:s}",
	    "version", FLM_VERSION,
	    "data_types", types,
	    "limits",
	    "max_blob_bytes", (json_int_t)cfg->max_blob_bytes,
	    "max_body_bytes", (json_int_t)cfg->max_body_bytes,
	    "data_revisions", cfg->data_revisions,
	    "longpoll_max_seconds", cfg->longpoll_max_s,
	    "device_poll_interval", cfg->poll_interval_s,
	    "temp_token_expiry_minutes", cfg->temp_token_expiry_minutes,
	    "registration_open", cfg->registration_open,
	    "turnstile_site_key", json_str_or_null(cfg->turnstile_site_key),
	    /* the widget script the sign-up page loads (and its CSP allows) */
	    "turnstile_script_url", cfg->turnstile_site_key[0] != '\0' ?
	    json_string(cfg->turnstile_script_url) : json_null(),
	    "storage", store_backend(r->srv->store)));
}

void
api_healthz(struct req *r)
{
	reply_json(r, 200, json_pack("{s:s}", "status", "ok"));
}

void
api_readyz(struct req *r)
{
	enum store_status st = STORE_UNAVAILABLE;

	if (r->db != NULL)
		st = r->db->ops->ping(r->db);
	if (st != STORE_OK) {
		reply_error(r, 503, "unavailable", "Storage is not ready.");
		return;
	}
	reply_json(r, 200, json_pack("{s:s}", "status", "ready"));
}

void
api_metrics(struct req *r)
{
	const struct config *cfg = &r->srv->cfg;
	const struct metrics *m = &r->srv->metrics;
	const char *authz;
	char *text;
	uint64_t longpolls, streams;
	struct store_stats ss;

	if (cfg->metrics_token[0] != '\0') {
		char want[300];

		authz = req_header(r, "Authorization");
		snprintf(want, sizeof(want), "Bearer %s", cfg->metrics_token);
		if (authz == NULL || strlen(authz) != strlen(want) ||
		    sodium_memcmp(authz, want, strlen(want)) != 0) {
			reply_error(r, 401, "unauthorized",
			    "Send the metrics token as a bearer token.");
			return;
		}
	}
	events_counts(r->srv->hub, &longpolls, &streams);
	store_stats(r->srv->store, &ss);
	text = arena_printf(r->arena,
	    "# TYPE flamingo_requests_total counter\n"
	    "flamingo_requests_total %llu\n"
	    "# TYPE flamingo_responses_total counter\n"
	    "flamingo_responses_total{class=\"2xx\"} %llu\n"
	    "flamingo_responses_total{class=\"4xx\"} %llu\n"
	    "flamingo_responses_total{class=\"5xx\"} %llu\n"
	    "# TYPE flamingo_requests_in_flight gauge\n"
	    "flamingo_requests_in_flight %llu\n"
	    "# TYPE flamingo_longpoll_waiting gauge\n"
	    "flamingo_longpoll_waiting %llu\n"
	    "# TYPE flamingo_event_streams gauge\n"
	    "flamingo_event_streams %llu\n"
	    "# TYPE flamingo_password_hashes_total counter\n"
	    "flamingo_password_hashes_total %llu\n"
	    "# TYPE flamingo_slow_pool_rejected_total counter\n"
	    "flamingo_slow_pool_rejected_total %llu\n"
	    "# TYPE flamingo_housekeeping_runs_total counter\n"
	    "flamingo_housekeeping_runs_total %llu\n"
	    "# TYPE flamingo_pruned_rows_total counter\n"
	    "flamingo_pruned_rows_total{table=\"events\"} %llu\n"
	    "flamingo_pruned_rows_total{table=\"audit\"} %llu\n"
	    "# TYPE flamingo_store_write_transactions_total counter\n"
	    "flamingo_store_write_transactions_total %llu\n"
	    "# TYPE flamingo_store_commits_total counter\n"
	    "flamingo_store_commits_total %llu\n"
	    "# TYPE flamingo_store_write_queue gauge\n"
	    "flamingo_store_write_queue %llu\n"
	    "# TYPE flamingo_uptime_seconds gauge\n"
	    "flamingo_uptime_seconds %lld\n",
	    (unsigned long long)m->requests,
	    (unsigned long long)m->responses_2xx,
	    (unsigned long long)m->responses_4xx,
	    (unsigned long long)m->responses_5xx,
	    (unsigned long long)m->in_flight,
	    (unsigned long long)longpolls,
	    (unsigned long long)streams,
	    (unsigned long long)m->hashes,
	    (unsigned long long)m->hash_rejected,
	    (unsigned long long)m->housekeeping_runs,
	    (unsigned long long)m->pruned_events,
	    (unsigned long long)m->pruned_audit,
	    (unsigned long long)ss.write_txs,
	    (unsigned long long)ss.write_commits,
	    (unsigned long long)ss.write_queued,
	    (long long)((time_now_ms() - r->srv->started_ms) / 1000));
	r->no_store = true;
	reply_raw(r, 200, "text/plain; version=0.0.4; charset=utf-8", text,
	    text ? strlen(text) : 0);
}
