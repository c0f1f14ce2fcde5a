/*
 * fuzz_token: the parsers of secrets and identifiers, and log redaction.
 *
 *   token_parse          with each prefix, against a plain reference
 *   user_code_normalize  accepted output is 8 letters of the alphabet, and
 *                        format -> normalize gives it back; reference
 *   uuid_valid           against a reference
 *   log_redact           into buffers of many capacities: always
 *                        NUL-terminated within cap, no raw control
 *                        character, quote or backslash, and no 32-hex run
 *                        that followed flm_sync_ / flm_temp_ / flm_web_ /
 *                        token= in the input
 *
 * Every input is handed over as a heap copy of exactly its length (plus
 * the NUL where the function takes a C string), so ASan sees over-reads.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/token.h"
#include "server/log.h"

#define FUZZ_NAME "fuzz_token"
#include "fuzz.h"

static const char *const prefixes[] = {
	TOKEN_SYNC_PREFIX, TOKEN_TEMP_PREFIX, TOKEN_WEB_PREFIX,
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	return 0;
}

static bool
is_lower_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static bool
is_any_hex(char c)
{
	return isxdigit((unsigned char)c) != 0;
}

/* ---- token_parse --------------------------------------------------------- */

static bool
ref_token(const char *s, size_t len, const char *prefix)
{
	size_t plen = strlen(prefix), i;

	if (len != plen + TOKEN_HEX_LEN || memcmp(s, prefix, plen) != 0)
		return false;
	for (i = plen; i < len; i++)
		if (!is_lower_hex(s[i]))
			return false;
	return true;
}

static void
check_tokens(const char *s, size_t len)
{
	size_t i;

	for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
		bool got = token_parse(s, len, prefixes[i]);

		if (got != ref_token(s, len, prefixes[i]))
			FAIL("token_parse(len %zu, %s) = %d, reference "
			    "disagrees", len, prefixes[i], got);
	}
	if (token_parse(NULL, len, TOKEN_SYNC_PREFIX) ||
	    token_parse(s, len, NULL))
		FAIL("token_parse accepted NULL");
}

/* ---- user codes ---------------------------------------------------------- */

static bool
ref_code(const char *in, size_t len, char out[USER_CODE_LEN + 1])
{
	static const char alphabet[] = USER_CODE_ALPHABET;
	size_t i, n = 0;

	if (len == USER_CODE_LEN + 1) {
		if (in[USER_CODE_LEN / 2] != '-')
			return false;
	} else if (len != USER_CODE_LEN) {
		return false;
	}
	for (i = 0; i < len; i++) {
		char c = in[i];

		if (len == USER_CODE_LEN + 1 && i == USER_CODE_LEN / 2)
			continue;
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		if (c == '\0' || strchr(alphabet, c) == NULL)
			return false;
		out[n++] = c;
	}
	out[n] = '\0';
	return true;
}

static void
check_user_code(const char *in, size_t len)
{
	char *out = malloc(USER_CODE_LEN + 1), *again, *shown;
	char want[USER_CODE_LEN + 1];
	bool ok, ref;
	size_t i;

	again = malloc(USER_CODE_LEN + 1);
	shown = malloc(USER_CODE_LEN + 2);
	if (out == NULL || again == NULL || shown == NULL)
		FAIL("out of memory");
	ok = user_code_normalize(out, in, len);
	ref = ref_code(in, len, want);
	if (ok != ref)
		FAIL("user_code_normalize(len %zu) = %d, reference disagrees",
		    len, ok);
	if (ok) {
		if (strlen(out) != USER_CODE_LEN)
			FAIL("normalised code has length %zu", strlen(out));
		for (i = 0; i < USER_CODE_LEN; i++)
			if (strchr(USER_CODE_ALPHABET, out[i]) == NULL)
				FAIL("normalised code has '%c'", out[i]);
		if (strcmp(out, want) != 0)
			FAIL("normalised code %s, reference %s", out, want);
		user_code_format(shown, out);
		if (strlen(shown) != USER_CODE_LEN + 1 ||
		    shown[USER_CODE_LEN / 2] != '-')
			FAIL("formatted code '%s'", shown);
		if (!user_code_normalize(again, shown, strlen(shown)) ||
		    strcmp(again, out) != 0)
			FAIL("format/normalize round trip: %s -> %s", out,
			    shown);
	} else if (out[0] != '\0') {
		FAIL("refused code left output '%.8s'", out);
	}
	free(shown);
	free(again);
	free(out);
}

/* ---- UUIDs --------------------------------------------------------------- */

static bool
ref_uuid(const char *s)
{
	size_t i;

	if (strlen(s) != UUID_LEN)
		return false;
	for (i = 0; i < UUID_LEN; i++) {
		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (s[i] != '-')
				return false;
		} else if (!is_lower_hex(s[i])) {
			return false;
		}
	}
	return true;
}

/* ---- log redaction ------------------------------------------------------- */

static const char *const marks[] = {
	"flm_sync_", "flm_temp_", "flm_web_", "token=",
};

#define MAX_SECRETS 64

/* The secrets of an input: 32-hex runs right after a mark. */
struct secrets {
	char hex[MAX_SECRETS][TOKEN_HEX_LEN + 1];
	size_t n;
};

/* Case-insensitive prefix test (ASCII), kept out of libFuzzer's
 * strncasecmp hook: this checker runs it at every position. */
static bool
has_mark_at(const char *s, const char *mark)
{
	for (; *mark != '\0'; s++, mark++)
		if (tolower((unsigned char)*s) != *mark)
			return false;
	return true;
}

static bool
after_mark(const char *s, const char *p)
{
	size_t k, n;

	for (k = 0; k < sizeof(marks) / sizeof(marks[0]); k++) {
		n = strlen(marks[k]);
		if ((size_t)(p - s) >= n && has_mark_at(p - n, marks[k]))
			return true;
	}
	return false;
}

/* Whether the 32 hex digits at h occur in s somewhere other than right
 * after a secret mark (then their presence in the output proves
 * nothing). */
static bool
hex_elsewhere(const char *s, const char *h)
{
	const char *p;

	for (p = strstr(s, h); p != NULL; p = strstr(p + 1, h))
		if (!after_mark(s, p))
			return true;
	return false;
}

static void
find_secrets(const char *in, struct secrets *sec)
{
	size_t i, j, k;

	sec->n = 0;
	for (i = 0; in[i] != '\0' && sec->n < MAX_SECRETS; i++) {
		for (k = 0; k < sizeof(marks) / sizeof(marks[0]); k++) {
			const char *h;

			if (!has_mark_at(in + i, marks[k]))
				continue;
			h = in + i + strlen(marks[k]);
			for (j = 0; j < TOKEN_HEX_LEN; j++)
				if (!is_any_hex(h[j]))
					break;
			if (j < TOKEN_HEX_LEN)
				continue;
			memcpy(sec->hex[sec->n], h, TOKEN_HEX_LEN);
			sec->hex[sec->n][TOKEN_HEX_LEN] = '\0';
			if (!hex_elsewhere(in, sec->hex[sec->n]))
				sec->n++;
		}
	}
}

/* Whether the 32 hex digits at h occur in out other than starting inside
 * a \xNN escape (whose digits could join input hex into a run). */
static bool
hex_in_output(const char *out, const char *h)
{
	const char *p;

	for (p = strstr(out, h); p != NULL; p = strstr(p + 1, h)) {
		size_t off = (size_t)(p - out);

		if (off >= 2 && p[-1] == 'x' && p[-2] == '\\')
			continue;
		if (off >= 3 && p[-2] == 'x' && p[-3] == '\\')
			continue;
		return true;
	}
	return false;
}

static void
check_redacted(const struct secrets *sec, const char *out, size_t cap)
{
	size_t i;

	for (i = 0; out[i] != '\0'; i++) {
		unsigned char c = (unsigned char)out[i];

		if (c < 0x20 || c == 0x7f || c == '"')
			FAIL("cap %zu: raw byte 0x%02x in the output", cap, c);
		if (c == '\\' && (out[i + 1] != 'x' ||
		    !is_lower_hex(out[i + 2]) || !is_lower_hex(out[i + 3])))
			FAIL("cap %zu: stray backslash in the output", cap);
	}
	for (i = 0; i < sec->n; i++)
		if (hex_in_output(out, sec->hex[i]))
			FAIL("cap %zu: the secret %s is in the log line", cap,
			    sec->hex[i]);
}

static void
check_log_redact(const char *s, size_t len)
{
	static const size_t caps[] = {
		1, 2, 3, 5, 8, 11, 12, 16, 33, 64, 512,
	};
	static struct secrets sec;
	size_t i, cap;
	char *out;

	/* cap 0: nothing may be written. */
	out = malloc(1);
	if (out == NULL)
		FAIL("out of memory");
	out[0] = 'Z';
	log_redact(out, 0, s);
	if (out[0] != 'Z')
		FAIL("cap 0: the buffer was written");
	free(out);

	find_secrets(s, &sec);
	for (i = 0; i <= sizeof(caps) / sizeof(caps[0]); i++) {
		/* the last round: room for every byte escaped */
		cap = i < sizeof(caps) / sizeof(caps[0]) ? caps[i] :
		    4 * len + 16;
		out = malloc(cap);
		if (out == NULL)
			FAIL("out of memory");
		memset(out, 'Z', cap);
		log_redact(out, cap, s);
		/* a NUL within cap, or strnlen says cap */
		if (strnlen(out, cap) >= cap)
			FAIL("cap %zu: output not NUL-terminated", cap);
		check_redacted(&sec, out, cap);
		free(out);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *exact = malloc(size ? size : 1);
	char *cstr = malloc(size + 1);

	if (exact == NULL || cstr == NULL)
		FAIL("out of memory");
	if (size > 0)
		memcpy(exact, data, size);
	memcpy(cstr, data, size);
	cstr[size] = '\0';

	check_tokens(exact, size);
	check_user_code(exact, size);
	if (uuid_valid(cstr) != ref_uuid(cstr))
		FAIL("uuid_valid disagrees with the reference");
	if (uuid_valid(NULL))
		FAIL("uuid_valid(NULL)");
	check_log_redact(cstr, size);

	free(cstr);
	free(exact);
	return 0;
}
