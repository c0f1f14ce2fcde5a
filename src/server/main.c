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
/* Retention deletes in batches, each its own short transaction, so that a
 * large backlog never holds the write lock for long; at most
 * PRUNE_BATCHES a round, the rest at the next one. */
#define PRUNE_BATCH 2000
#define PRUNE_BATCHES 100
#define DAY_MS (24LL * 3600 * 1000)

static void
retention(struct server *srv, struct store_conn *c, bool audit,
    int64_t before)
{
	const char *what = audit ? "audit" : "event";
	enum store_status st;
	int64_t pruned;
	int i;

	for (i = 0; i < PRUNE_BATCHES; i++) {
		st = audit ?
		    store_call(c, audit_prune, before, PRUNE_BATCH, &pruned) :
		    store_call(c, event_prune, before, PRUNE_BATCH, &pruned);
		if (st != STORE_OK) {
			log_msg("housekeeping: %s prune failed (%d)", what,
			    (int)st);
			return;
		}
		atomic_fetch_add(audit ? &srv->metrics.pruned_audit :
		    &srv->metrics.pruned_events, (uint64_t)pruned);
		if (pruned < PRUNE_BATCH)
			return;
	}
}

static void
housekeeping(struct server *srv)
{
	struct store_conn *c = store_conn(srv->store);
	enum store_status st;
	int64_t now;

	if (c == NULL)
		return;
	now = time_now_ms();
	st = store_call(c, prune, now);
	if (st != STORE_OK)
		log_msg("housekeeping: prune failed (%d)", (int)st);
	retention(srv, c, false,
	    now - srv->cfg.event_retention_days * DAY_MS);
	if (srv->cfg.audit_retention_days > 0)
		retention(srv, c, true,
		    now - srv->cfg.audit_retention_days * DAY_MS);
	atomic_fetch_add(&srv->metrics.housekeeping_runs, 1);
}

int
main(int argc, char **argv)
{
	struct server *srv;
	char err[512];
	sigset_t sigs;
	uint16_t port = 0;
	int rc = 1, sig;
	bool turnstile;
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
	/*
	 * libcurl (and the TLS library under it) is started only when
	 * Turnstile is configured: it is the only user, and starting TLS
	 * makes a few megabytes of library pages resident for nothing.
	 */
	turnstile = srv->cfg.turnstile_secret_key[0] != '\0';
	if (sodium_init() < 0 || (turnstile && turnstile_global_init() != 0)) {
		fprintf(stderr, "flamingo-syncd: cannot initialise crypto\n");
		free(srv);
		return 1;
	}
	/* Every thread inherits this mask; only the main thread takes the
	 * signals, with sigtimedwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (server_start(srv, &port, err, sizeof(err)) != 0) {
		fprintf(stderr, "flamingo-syncd: %s\n", err);
		goto out;
	}
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
	rc = 0;
out:
	server_stop(srv, STOP_TIMEOUT_MS);
	if (turnstile)
		turnstile_global_cleanup();
	if (rc == 0)
		log_msg("stopped");
	free(srv);
	return rc;
}
