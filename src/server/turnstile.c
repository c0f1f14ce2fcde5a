#include "turnstile.h"

#include <curl/curl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

#define TS_MAX_ANSWER 16384

struct buf {
	char data[TS_MAX_ANSWER];
	size_t len;
	bool overflow;
};

static size_t
on_data(char *p, size_t size, size_t n, void *cls)
{
	struct buf *b = cls;
	size_t len = size * n;

	if (len > sizeof(b->data) - 1 - b->len) {
		b->overflow = true;
		return 0;
	}
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/* Gives up at once when the server abandons slow work (shutdown). */
static int
on_progress(void *cls, curl_off_t dltotal, curl_off_t dlnow,
    curl_off_t ultotal, curl_off_t ulnow)
{
	const atomic_int *stopping = cls;

	return atomic_load(stopping) ? 1 : 0;
}

bool
turnstile_verify(const struct config *cfg, const char *token, const char *ip,
    const atomic_int *stopping)
{
	CURL *curl = NULL;
	char *esecret = NULL, *etoken = NULL, *eip = NULL, *form = NULL;
	struct buf *b = NULL;
	json_t *answer = NULL;
	long code = 0;
	bool ok = false;
	size_t flen;

	b = calloc(1, sizeof(*b));
	curl = curl_easy_init();
	if (b == NULL || curl == NULL)
		goto done;
	esecret = curl_easy_escape(curl, cfg->turnstile_secret_key, 0);
	etoken = curl_easy_escape(curl, token, 0);
	eip = curl_easy_escape(curl, ip, 0);
	if (esecret == NULL || etoken == NULL || eip == NULL)
		goto done;
	flen = strlen(esecret) + strlen(etoken) + strlen(eip) + 64;
	form = malloc(flen);
	if (form == NULL || snprintf(form, flen,
	    "secret=%s&response=%s&remoteip=%s", esecret, etoken, eip) < 0)
		goto done;
	curl_easy_setopt(curl, CURLOPT_URL, cfg->turnstile_verify_url);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, form);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
	curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, 3000L);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)(uintptr_t)stopping);
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L);
	if (curl_easy_perform(curl) != CURLE_OK) {
		log_msg("turnstile: siteverify unreachable");
		goto done;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200 || b->overflow) {
		log_msg("turnstile: siteverify answered %ld", code);
		goto done;
	}
	answer = json_loadb(b->data, b->len, 0, NULL);
	ok = answer != NULL &&
	    json_is_true(json_object_get(answer, "success"));
done:
	json_decref(answer);
	free(form);
	curl_free(esecret);
	curl_free(etoken);
	curl_free(eip);
	if (curl != NULL)
		curl_easy_cleanup(curl);
	free(b);
	return ok;
}

int
turnstile_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void
turnstile_global_cleanup(void)
{
	curl_global_cleanup();
}
