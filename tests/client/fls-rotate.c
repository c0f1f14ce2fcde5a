/*
 * fls-rotate: a test-only helper (never installed) that exercises
 * fls_session_rotate() the way an application embedding libflamingosync
 * would: given the server URL and a session token (FLAMINGO_SYNC_TOKEN),
 * it rotates the token and prints the new one on stdout.
 * Exit 0, or 3 when the server refuses the token, 1 otherwise.
 */
#include <stdio.h>
#include <stdlib.h>

#include "flamingosync.h"

int
main(int argc, char **argv)
{
	const char *tok = getenv("FLAMINGO_SYNC_TOKEN");
	char fresh[64];
	fls_client *c = NULL;
	fls_status st;
	int rc = 1;

	if (argc != 2 || tok == NULL) {
		fprintf(stderr, "usage: FLAMINGO_SYNC_TOKEN=... fls-rotate URL\n");
		return 2;
	}
	if (fls_client_new(argv[1], false, &c) != FLS_OK ||
	    fls_client_set_token(c, tok) != FLS_OK)
		goto done;
	st = fls_session_rotate(c, fresh, sizeof(fresh));
	if (st != FLS_OK) {
		fprintf(stderr, "fls-rotate: %s: %s\n", fls_status_name(st),
		    fls_client_error(c)->message);
		rc = st == FLS_ERR_UNAUTHORIZED ? 3 : 1;
		goto done;
	}
	printf("%s\n", fresh);
	rc = 0;
done:
	fls_client_free(c);
	return rc;
}
