/* flamingo-syncd: start-up, the signal loop, housekeeping and shutdown. */
#include <errno.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/timeutil.h"
#include "../common/version.h"
#include "../store/store.h"
#include "config.h"
#include "events.h"
#include "http.h"
#include "log.h"
#include "server.h"
#include "slowpool.h"
#include "turnstile.h"

#define PRUNE_EVERY_S 300
#define STOP_TIMEOUT_MS 10000

static void
housekeeping(struct server *srv)
{
	struct store_conn *c = store_conn(srv->store);
	enum store_status st;

	if (c == NULL)
		return;
	st = store_call(c, prune, time_now_ms());
	if (st != STORE_OK)
		log_msg("housekeeping: prune failed (%d)", (int)st);
}

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

int
main(int argc, char **argv)
{
	struct server *srv;
	char err[512];
	sigset_t sigs;
	uint16_t port = 0;
	int rc = 1, sig;
	struct timespec tick = { PRUNE_EVERY_S, 0 };

	srv = calloc(1, sizeof(*srv));
	if (srv == NULL) {
		fprintf(stderr, "flamingo-syncd: out of memory\n");
		return 1;
	}
	config_defaults(&srv->cfg);
	switch (config_load(&srv->cfg, argc, argv, NULL, stdout, err,
	    sizeof(err))) {
	case CONFIG_EXIT_OK:
		free(srv);
		return 0;
	case CONFIG_BAD:
		fprintf(stderr, "flamingo-syncd: %s\n", err);
		free(srv);
		return 2;
	default:
		break;
	}
	if (sodium_init() < 0 || turnstile_global_init() != 0) {
		fprintf(stderr, "flamingo-syncd: cannot initialise crypto\n");
		free(srv);
		return 1;
	}
	srv->started_ms = time_now_ms();
	randombytes_buf(err, 4);
	snprintf(srv->instance, sizeof(srv->instance), "%02x%02x%02x%02x",
	    (unsigned char)err[0], (unsigned char)err[1],
	    (unsigned char)err[2], (unsigned char)err[3]);

	/* Every thread inherits this mask; only the main thread takes the
	 * signals, with sigtimedwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	srv->store = store_open(srv->cfg.database_url, err, sizeof(err));
	if (srv->store == NULL) {
		fprintf(stderr, "flamingo-syncd: %s\n", err);
		goto out;
	}
	srv->hub = events_hub_new();
	srv->pool = slowpool_new(srv->cfg.hash_threads, srv->cfg.hash_queue);
	if (srv->hub == NULL || srv->pool == NULL) {
		fprintf(stderr, "flamingo-syncd: cannot start threads\n");
		goto out;
	}
	srv->http = http_start(srv, &port, err, sizeof(err));
	if (srv->http == NULL) {
		fprintf(stderr, "flamingo-syncd: %s\n", err);
		goto out;
	}
	if (srv->cfg.listen_port == 0)
		adopt_bound_port(&srv->cfg, port);
	log_msg("flamingo-syncd %s listening on http://%s%s%s:%u "
	    "(storage: %s, public url: %s)", FLM_VERSION,
	    strchr(srv->cfg.listen_host, ':') ? "[" : "",
	    srv->cfg.listen_host, strchr(srv->cfg.listen_host, ':') ? "]" : "",
	    (unsigned)port, store_backend(srv->store), srv->cfg.public_url);
	housekeeping(srv);

	for (;;) {
		sig = sigtimedwait(&sigs, NULL, &tick);
		if (sig == SIGTERM || sig == SIGINT)
			break;
		if (sig < 0 && errno == EAGAIN)
			housekeeping(srv);
	}
	log_msg("stopping: finishing requests in flight");
	atomic_store(&srv->stopping, 1);
	http_stop(srv->http, STOP_TIMEOUT_MS);
	srv->http = NULL;
	rc = 0;
out:
	slowpool_free(srv->pool);
	events_hub_free(srv->hub);
	if (srv->store != NULL)
		store_close(srv->store);
	turnstile_global_cleanup();
	if (rc == 0)
		log_msg("stopped");
	free(srv);
	return rc;
}
