/*
 * cli_state: what the flamingo-sync CLI remembers between runs, in
 * $XDG_CONFIG_HOME/flamingo-sync/state.json (fallback ~/.config): the
 * server URL, the device session token, the device id, the server key
 * version last seen, the data version last seen per type and the events
 * cursor. Never the passphrase or any key. The directory is 0700, the file
 * 0600, written to a temporary file and renamed over the old one.
 */
#ifndef FLS_CLI_STATE_H
#define FLS_CLI_STATE_H

#include <limits.h>
#include <stdint.h>

#include "flamingosync.h"

#define STATE_TOKEN_CAP 64u

struct cli_state {
	char dir[PATH_MAX];
	char path[PATH_MAX];
	char server[512];
	char *token;              /* sodium_malloc'd; "" when logged out */
	char device_id[64];
	uint32_t key_version;     /* 0: none seen */
	int64_t versions[FLS_TYPE_COUNT]; /* -1: never seen */
	int64_t cursor;           /* events: the next `after` */
};

/*
 * Finds the directory, creates it (0700) when missing, and loads the state
 * file when it exists (tightening its mode to 0600 when it was looser).
 * Returns 0, or -1 with a message in err (cap bytes).
 */
int cli_state_load(struct cli_state *s, char *err, size_t cap);

/* Writes the state atomically; 0 or -1 with a message in err. */
int cli_state_save(const struct cli_state *s, char *err, size_t cap);

/* Wipes and releases the token buffer. */
void cli_state_free(struct cli_state *s);

#endif
