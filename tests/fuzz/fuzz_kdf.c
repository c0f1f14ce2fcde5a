/*
 * fuzz_kdf: the client's parser of the server-supplied `kdf` JSON
 * (keywrap_params_parse in src/client/keywrap.c).
 *
 * Properties checked (abort on violation):
 *   - an accepted input has t in [2, 16], m in [64 MiB, 1 GiB] (KiB
 *     units), p == 1, and is at most 1 KiB;
 *   - refusals are only FORMAT, KDF_WEAK or KDF_LIMIT, and never fill
 *     the output;
 *   - the canonical form of accepted parameters parses back to the same
 *     parameters (salt included) and fits KEYWRAP_JSON_CAP.
 * No key is derived (that is the point: refusal comes before any work).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "client/keywrap.h"

#define FUZZ_NAME "fuzz_kdf"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	fls_kdf_params p, q, untouched;
	char canon[KEYWRAP_JSON_CAP];
	char *json;
	fls_status st;

	json = malloc(size + 1);
	if (json == NULL)
		FAIL("out of memory");
	memcpy(json, data, size);
	memset(&p, 0xee, sizeof(p));
	untouched = p;
	st = keywrap_params_parse(json, size, &p);
	if (st != FLS_OK) {
		if (st != FLS_ERR_FORMAT && st != FLS_ERR_KDF_WEAK &&
		    st != FLS_ERR_KDF_LIMIT)
			FAIL("unexpected status %d", (int)st);
		if (memcmp(&p, &untouched, sizeof(p)) != 0)
			FAIL("refused input filled the output");
		free(json);
		return 0;
	}
	if (size > KEYWRAP_JSON_MAX)
		FAIL("accepted %zu bytes", size);
	if (p.t < FLS_KDF_T_MIN || p.t > FLS_KDF_T_MAX ||
	    p.m_kib < FLS_KDF_M_KIB_MIN || p.m_kib > FLS_KDF_M_KIB_MAX ||
	    p.p != 1)
		FAIL("accepted t=%u m=%u p=%u", p.t, p.m_kib, p.p);
	if (keywrap_params_format(&p, canon, sizeof(canon)) != 0)
		FAIL("canonical form does not fit");
	if (keywrap_params_parse(canon, strlen(canon), &q) != FLS_OK ||
	    memcmp(&p, &q, sizeof(p)) != 0)
		FAIL("canonical form does not round-trip: %s", canon);
	free(json);
	return 0;
}
