/*
 * fuzz_answer: the client's decoder of server answers (transport_decode in
 * src/client/transport.c): the JSON envelope, error code and message, the
 * device-flow interval, as a malicious server could send them.
 *
 * One input: bytes 0-1 pick the HTTP status (100..599), byte 2 a
 * Retry-After value; the rest is the body.
 *
 * Properties checked (abort on violation):
 *   - FLS_OK only for a 2xx answer whose envelope is {"success": true,
 *     "data": ...}, with r.data set;
 *   - err.code and err.message are NUL-terminated in their buffers, free
 *     of control bytes, and valid UTF-8 (jansson accepts them again), even
 *     when the server's text was cut to fit;
 *   - err.retry_after stays within 0..3600 s;
 *   - a 401 never maps to anything but FLS_ERR_UNAUTHORIZED.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "client/transport.h"

#define FUZZ_NAME "fuzz_answer"
#include "fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	return 0;
}

static void
check_text(const char *what, const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);
	json_t *j;

	if (n >= cap)
		FAIL("%s not terminated", what);
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			FAIL("%s holds control byte 0x%02x", what,
			    (unsigned char)s[i]);
	j = json_string(s);
	if (j == NULL)
		FAIL("%s is not valid UTF-8", what);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct transport_resp r;
	fls_error err;
	unsigned char *body;
	fls_status st;

	if (size < 3)
		return 0;
	memset(&r, 0, sizeof(r));
	memset(&err, 0, sizeof(err));
	r.status = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 500);
	r.retry_after = data[2];
	body = malloc(size - 3 + 1);
	if (body == NULL)
		FAIL("out of memory");
	memcpy(body, data + 3, size - 3);
	st = transport_decode(body, size - 3, &r, &err);
	if (st == FLS_OK) {
		if (r.data == NULL || r.status < 200 || r.status > 299)
			FAIL("OK without data or on HTTP %ld", r.status);
		if (!json_is_true(json_object_get(r.root, "success")))
			FAIL("OK without success:true");
	}
	if (r.status == 401 && st != FLS_ERR_UNAUTHORIZED)
		FAIL("401 mapped to %d", (int)st);
	if (err.status != st)
		FAIL("err.status %d != %d", (int)err.status, (int)st);
	check_text("code", err.code, sizeof(err.code));
	check_text("message", err.message, sizeof(err.message));
	if (err.retry_after < 0 || err.retry_after > 3600)
		FAIL("retry_after %ld", err.retry_after);
	transport_resp_free(&r);
	free(body);
	return 0;
}
