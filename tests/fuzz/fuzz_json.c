/*
 * fuzz_json: JSON body validation as the handlers do it. The input is a
 * request body: parsed with json_loadb(JSON_REJECT_DUPLICATES) as http.c
 * does, then checked with json_fields_check() against the field specs of
 * the handlers (copied here: they are static in api_*.c), compared with a
 * plain reference implementation of the documented rules. What a handler
 * does next with accepted fields is run too: email_normalize, user codes,
 * tokens, base64, data type names, kdf serialisation.
 *
 * Properties checked (abort on violation):
 *   - json_fields_check agrees with the reference on every spec;
 *   - a refusal leaves a non-empty NUL-terminated message within msglen,
 *     for large and tiny message buffers alike;
 *   - email_normalize agrees with a reference and its output is the input
 *     lower-cased (ASCII), within STORE_EMAIL_MAX.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "common/b64.h"
#include "common/datatype.h"
#include "common/token.h"
#include "server/api.h"

#define FUZZ_NAME "fuzz_json"
#include "fuzz.h"

/* The handlers' specs (api_auth.c, api_device_flow.c, api_data.c,
 * api_key.c, api_config.c), with their bounds. */
static const struct jfield signup[] = {
	{ "email", JF_STRING, true, 3, 254 },
	{ "password", JF_STRING, true, 8, 1024 },
	{ "turnstile_token", JF_STRING, false, 1, 2048 },
};
static const struct jfield login[] = {
	{ "email", JF_STRING, true, 1, 1024 },
	{ "password", JF_STRING, true, 1, 1024 },
};
static const struct jfield password[] = {
	{ "current_password", JF_STRING, true, 1, 1024 },
	{ "new_password", JF_STRING, true, 8, 1024 },
};
static const struct jfield init[] = {
	{ "device_name", JF_STRING, false, 0, STORE_NAME_MAX },
	{ "platform", JF_STRING, false, 0, STORE_NAME_MAX },
	{ "app_version", JF_STRING, false, 0, STORE_NAME_MAX },
};
static const struct jfield claim[] = {
	{ "user_code", JF_STRING, false, 1, 32 },
	{ "temp_token", JF_STRING, false, 1, TOKEN_MAX_LEN },
};
static const struct jfield token[] = {
	{ "temp_token", JF_STRING, true, 1, TOKEN_MAX_LEN },
};
static const struct jfield data[] = {
	{ "encrypted_data", JF_STRING, true, 1, 0 },
	{ "key_version", JF_INT, false, 0, 1000000000 },
	{ "base_version", JF_INT, false, 0, 1LL << 53 },
};
static const struct jfield key[] = {
	{ "wrapped_key", JF_STRING, true, 1, (4096 + 2) / 3 * 4 },
	{ "kdf", JF_OBJECT, true, 0, 1024 },
	{ "expected_version", JF_INT, false, 0, 1000000000 },
};
static const struct jfield rotate[] = {
	{ "wrapped_key", JF_STRING, true, 1, (4096 + 2) / 3 * 4 },
	{ "kdf", JF_OBJECT, true, 0, 1024 },
	{ "expected_version", JF_INT, true, 0, 1000000000 },
	{ "items", JF_ARRAY, true, 0, DT_COUNT },
};
static const struct jfield config[] = {
	{ "history", JF_BOOL, false, 0, 0 },
	{ "environment", JF_BOOL, false, 0, 0 },
	{ "secret", JF_BOOL, false, 0, 0 },
	{ "collection", JF_BOOL, false, 0, 0 },
	{ "setting", JF_BOOL, false, 0, 0 },
};
static const struct jfield type_enabled[] = {
	{ "enabled", JF_BOOL, true, 0, 0 },
};
/* A synthetic spec with every kind and both bounds at small values. */
static const struct jfield mixed[] = {
	{ "s", JF_STRING, false, 2, 4 },
	{ "i", JF_INT, false, -3, 3 },
	{ "b", JF_BOOL, false, 0, 0 },
	{ "o", JF_OBJECT, false, 0, 16 },
	{ "a", JF_ARRAY, false, 0, 2 },
	{ "r", JF_STRING, true, 0, 0 },
};

#define SPEC(x) { #x, x, sizeof(x) / sizeof(x[0]) }
static const struct {
	const char *name;
	const struct jfield *f;
	size_t n;
} specs[] = {
	SPEC(signup), SPEC(login), SPEC(password), SPEC(init), SPEC(claim),
	SPEC(token), SPEC(data), SPEC(key), SPEC(rotate), SPEC(config),
	SPEC(type_enabled), SPEC(mixed),
	{ "empty", NULL, 0 },   /* logout, rotate, revoke: no field at all */
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_sodium_init();
	return 0;
}

/* ---- the reference ------------------------------------------------------- */

static bool
ref_type(const json_t *v, int type)
{
	switch (type) {
	case JF_STRING: return json_typeof(v) == JSON_STRING;
	case JF_BOOL: return json_typeof(v) == JSON_TRUE ||
	    json_typeof(v) == JSON_FALSE;
	case JF_INT: return json_typeof(v) == JSON_INTEGER;
	case JF_OBJECT: return json_typeof(v) == JSON_OBJECT;
	case JF_ARRAY: return json_typeof(v) == JSON_ARRAY;
	default: return false;
	}
}

static bool
ref_check(const json_t *obj, const struct jfield *f, size_t n)
{
	const char *k;
	json_t *v;
	size_t i;

	if (json_typeof(obj) != JSON_OBJECT)
		return false;
	json_object_foreach((json_t *)(uintptr_t)obj, k, v) {
		bool known = false;

		for (i = 0; i < n; i++)
			known = known || strcmp(k, f[i].name) == 0;
		if (!known)
			return false;
	}
	for (i = 0; i < n; i++) {
		v = json_object_get(obj, f[i].name);
		if (v == NULL || json_typeof(v) == JSON_NULL) {
			if (f[i].required)
				return false;
			continue;
		}
		if (!ref_type(v, f[i].type))
			return false;
		if (f[i].type == JF_STRING) {
			size_t len = json_string_length(v);

			if (memchr(json_string_value(v), '\0', len) != NULL)
				return false;
			if ((int64_t)len < f[i].min)
				return false;
			if (f[i].max > 0 && (int64_t)len > f[i].max)
				return false;
		} else if (f[i].type == JF_INT) {
			json_int_t x = json_integer_value(v);

			if (x < f[i].min || x > f[i].max)
				return false;
		} else if (f[i].type == JF_ARRAY) {
			if (f[i].max > 0 &&
			    (int64_t)json_array_size(v) > f[i].max)
				return false;
		} else if (f[i].type == JF_OBJECT && f[i].max > 0) {
			char *t = json_dumps(v, JSON_COMPACT);
			bool ok = t != NULL && (int64_t)strlen(t) <= f[i].max;

			free(t);
			if (!ok)
				return false;
		}
	}
	return true;
}

static bool
ref_email(const char *in, char *want)
{
	size_t len = strlen(in), i, ats = 0;
	const char *at, *dot;

	if (len < 3 || len > STORE_EMAIL_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c <= ' ' || c == 0x7f)
			return false;
		want[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') :
		    (char)c;
		ats += c == '@';
	}
	want[len] = '\0';
	if (ats != 1 || want[0] == '@')
		return false;
	at = strchr(want, '@');
	dot = strchr(at + 1, '.');
	return dot != NULL && dot != at + 1 && dot[1] != '\0';
}

/* ---- what the handlers do with accepted fields ------------------------- */

static void
check_email(const char *in)
{
	char *out = malloc(STORE_EMAIL_MAX + 1);  /* exactly the API's size */
	char want[STORE_EMAIL_MAX + 1];
	bool ok, ref;

	if (out == NULL)
		FAIL("out of memory");
	ok = email_normalize(out, in);
	ref = ref_email(in, want);
	if (ok != ref)
		FAIL("email_normalize(len %zu) = %d, reference disagrees",
		    strlen(in), ok);
	if (ok && strcmp(out, want) != 0)
		FAIL("email_normalize gave '%s', reference '%s'", out, want);
	free(out);
}

static void
check_b64_field(const char *s)
{
	size_t len = strlen(s), cap = b64_decoded_max(len), n;
	unsigned char *buf = malloc(cap + 1);

	if (buf == NULL)
		FAIL("out of memory");
	if (b64_decode(buf, cap + 1, &n, s, len) == 0 && n > cap)
		FAIL("b64_decode: %zu bytes from %zu characters", n, len);
	free(buf);
}

static void
after_accept(const char *spec, const json_t *obj)
{
	const char *s;
	json_t *v;
	size_t i;
	char code[USER_CODE_LEN + 1];

	if (strcmp(spec, "signup") == 0 || strcmp(spec, "login") == 0) {
		check_email(json_string_value(json_object_get(obj, "email")));
	} else if (strcmp(spec, "claim") == 0 || strcmp(spec, "token") == 0) {
		if ((s = json_string_value(json_object_get(obj,
		    "user_code"))) != NULL)
			(void)user_code_normalize(code, s, strlen(s));
		if ((s = json_string_value(json_object_get(obj,
		    "temp_token"))) != NULL)
			(void)token_parse(s, strlen(s), TOKEN_TEMP_PREFIX);
	} else if (strcmp(spec, "data") == 0) {
		check_b64_field(json_string_value(json_object_get(obj,
		    "encrypted_data")));
	} else if (strcmp(spec, "key") == 0 || strcmp(spec, "rotate") == 0) {
		char *kdf;

		check_b64_field(json_string_value(json_object_get(obj,
		    "wrapped_key")));
		kdf = json_dumps(json_object_get(obj, "kdf"), JSON_COMPACT |
		    JSON_SORT_KEYS);
		if (kdf == NULL)
			FAIL("kdf does not serialise");
		free(kdf);
		json_array_foreach(json_object_get(obj, "items"), i, v) {
			if ((s = json_string_value(json_object_get(v,
			    "type"))) != NULL)
				(void)datatype_parse(s);
			if ((s = json_string_value(json_object_get(v,
			    "encrypted_data"))) != NULL)
				check_b64_field(s);
		}
	}
}

/* Every string of the document (keys too) through email_normalize: the
 * handlers pass it whatever a client sends as "email". */
static void
strings_through_email(const json_t *v, int depth)
{
	const char *k;
	json_t *x;
	size_t i;

	if (depth > 4)
		return;
	switch (json_typeof(v)) {
	case JSON_STRING:
		if (memchr(json_string_value(v), '\0',
		    json_string_length(v)) == NULL)
			check_email(json_string_value(v));
		break;
	case JSON_OBJECT:
		json_object_foreach((json_t *)(uintptr_t)v, k, x) {
			check_email(k);
			strings_through_email(x, depth + 1);
		}
		break;
	case JSON_ARRAY:
		json_array_foreach(v, i, x)
			strings_through_email(x, depth + 1);
		break;
	default:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *bytes, size_t size)
{
	json_error_t jerr;
	json_t *j;
	size_t i;

	j = json_loadb((const char *)bytes, size, JSON_REJECT_DUPLICATES,
	    &jerr);
	if (j == NULL) {
		/* http.c puts jerr.text in the reply */
		if (strnlen(jerr.text, sizeof(jerr.text)) >= sizeof(jerr.text))
			FAIL("json error text not terminated");
		return 0;
	}
	for (i = 0; i < sizeof(specs) / sizeof(specs[0]); i++) {
		char msg[256], tiny[6];
		bool ok, ref;

		memset(msg, 'Z', sizeof(msg));
		memset(tiny, 'Z', sizeof(tiny));
		ok = json_fields_check(j, specs[i].f, specs[i].n, msg,
		    sizeof(msg));
		ref = ref_check(j, specs[i].f, specs[i].n);
		if (ok != ref)
			FAIL("spec %s: json_fields_check = %d, reference "
			    "disagrees", specs[i].name, ok);
		if (json_fields_check(j, specs[i].f, specs[i].n, tiny,
		    sizeof(tiny)) != ok)
			FAIL("spec %s: the answer depends on msglen",
			    specs[i].name);
		if (!ok) {
			if (strnlen(msg, sizeof(msg)) == 0 ||
			    strnlen(msg, sizeof(msg)) >= sizeof(msg))
				FAIL("spec %s: bad message", specs[i].name);
			if (strnlen(tiny, sizeof(tiny)) >= sizeof(tiny))
				FAIL("spec %s: tiny message not terminated",
				    specs[i].name);
		} else {
			after_accept(specs[i].name, j);
		}
	}
	strings_through_email(j, 0);
	json_decref(j);
	return 0;
}
