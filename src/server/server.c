/* server: bringing the parts of flamingo-syncd up and down, in one place
 * for main() and for in-process harnesses (the request fuzzer). */
#include "server.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/timeutil.h"
#include "../common/version.h"
#include "../store/store.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "slowpool.h"

/* With --listen HOST:0 the kernel picks the port; a public URL derived
 * from the listen address (ending in ":0") then takes the real one. */
static void
adopt_bound_port(struct config *cfg, uint16_t port)
{
	size_t n = strlen(cfg->public_url);
	char *colon;

	if (n < 2 || strcmp(cfg->public_url + n - 2, ":0") != 0)
		return;
	cfg->public_url[n - 1] = '\0';
	snprintf(cfg->public_url + n - 1, sizeof(cfg->public_url) - (n - 1),
	    "%u", (unsigned)port);
	colon = strrchr(cfg->public_origin, ':');
	if (colon != NULL && strcmp(colon, ":0") == 0)
		snprintf(colon + 1, sizeof(cfg->public_origin) -
		    (size_t)(colon + 1 - cfg->public_origin), "%u",
		    (unsigned)port);
}

/* Events committed by other instances on the same database (PostgreSQL
 * LISTEN/NOTIFY, see store_subscribe): wake their user's waiters, or every
 * waiter when the store may have missed some. */
static void
on_store_event(void *arg, const char *user_id)
{
	struct events_hub *hub = arg;

	if (user_id != NULL)
		events_publish(hub, user_id);
	else
		events_wake_all(hub);
}

int
server_start(struct server *srv, uint16_t *port, char *err, size_t errlen)
{
	unsigned char rnd[4];

	srv->started_ms = time_now_ms();
	randombytes_buf(rnd, sizeof(rnd));
	snprintf(srv->instance, sizeof(srv->instance), "%02x%02x%02x%02x",
	    rnd[0], rnd[1], rnd[2], rnd[3]);
	srv->store = store_open(srv->cfg.database_url,
	    srv->cfg.write_batch_max, err, errlen);
	if (srv->store == NULL)
		return -1;
	srv->hub = events_hub_new();
	srv->pool = slowpool_new(srv->cfg.hash_threads, srv->cfg.hash_queue);
	if (srv->hub == NULL || srv->pool == NULL ||
	    store_subscribe(srv->store, on_store_event, srv->hub) !=
	    STORE_OK) {
		snprintf(err, errlen, "cannot start threads");
		return -1;
	}
	srv->http = http_start(srv, port, err, errlen);
	if (srv->http == NULL)
		return -1;
	if (srv->cfg.listen_port == 0)
		adopt_bound_port(&srv->cfg, *port);
	return 0;
}

void
server_stop(struct server *srv, int64_t timeout_ms)
{
	atomic_store(&srv->stopping, 1);
	if (srv->http != NULL)
		http_stop(srv->http, timeout_ms);
	srv->http = NULL;
	slowpool_free(srv->pool);
	srv->pool = NULL;
	/* no more wake-ups from the store before the hub goes */
	store_unsubscribe(srv->store);
	events_hub_free(srv->hub);
	srv->hub = NULL;
	if (srv->store != NULL)
		store_close(srv->store);
	srv->store = NULL;
}
