/* Unit tests of src/server/config.c. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/version.h"
#include "server/config.h"

/* The environment seen by config_load: NULL-terminated name/value pairs. */
static const char *const *fake_env;

static const char *
fake_getenv(const char *name)
{
	const char *const *p;

	for (p = fake_env; p != NULL && p[0] != NULL; p += 2)
		if (strcmp(p[0], name) == 0)
			return p[1];
	return NULL;
}

static enum config_result
load(struct config *cfg, const char *const *env, int argc, char **argv,
    char *err, size_t errlen)
{
	config_defaults(cfg);
	fake_env = env;
	return config_load(cfg, argc, argv, fake_getenv, stdout, err, errlen);
}

#define NARGS(a) ((int)(sizeof(a) / sizeof((a)[0])))

/* Loads with env and the given flags; asserts success. */
#define LOAD_OK(cfg, env, ...) do {					\
	char *argv_[] = { "flamingo-syncd", __VA_ARGS__ };		\
	char err_[256];							\
	enum config_result r_ = load((cfg), (env), NARGS(argv_), argv_,	\
	    err_, sizeof(err_));					\
	if (r_ != CONFIG_OK)						\
		fail_msg("config_load: %d %s", r_, err_);		\
} while (0)

/* Loads and expects CONFIG_BAD with a message starting "<name>:". */
static void
expect_bad(const char *const *env, int argc, char **argv, const char *name)
{
	struct config cfg;
	char err[512], prefix[64];
	enum config_result r;

	memset(err, 'X', sizeof(err));
	r = load(&cfg, env, argc, argv, err, sizeof(err));
	if (r != CONFIG_BAD)
		fail_msg("expected CONFIG_BAD for %s, got %d", name, r);
	snprintf(prefix, sizeof(prefix), "%s:", name);
	if (strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("message for %s: '%s'", name, err);
	assert_null(strchr(err, '\n'));
}

/* A bad value for env name, both from the environment and as a flag. */
static void
expect_bad_value(const char *name, const char *flag, const char *value)
{
	const char *env[] = { name, value, NULL };
	char *argv[] = { "flamingo-syncd", (char *)(uintptr_t)flag,
	    (char *)(uintptr_t)value };
	char eq[2048];

	expect_bad(env, 1, argv, name);
	expect_bad(NULL, 3, argv, name);
	if ((size_t)snprintf(eq, sizeof(eq), "%s=%s", flag, value) >=
	    sizeof(eq))
		fail_msg("test value too long");
	argv[1] = eq;
	expect_bad(NULL, 2, argv, name);
}

static void
test_defaults(void **state)
{
	struct config c;
	int i;

	config_defaults(&c);
	assert_string_equal(c.listen_host, "127.0.0.1");
	assert_int_equal(c.listen_port, 3000);
	assert_string_equal(c.database_url, "sqlite:./flamingo-sync.db");
	assert_string_equal(c.public_url, "http://127.0.0.1:3000");
	assert_string_equal(c.public_origin, "http://127.0.0.1:3000");
	assert_false(c.https);
	assert_int_equal(c.session_expiry_days, 90);
	assert_int_equal(c.temp_token_expiry_minutes, 5);
	assert_int_equal(c.poll_interval_s, 2);
	assert_int_equal(c.web_session_idle_hours, 168);
	assert_int_equal(c.web_session_max_days, 30);
	assert_string_equal(c.turnstile_site_key, "");
	assert_string_equal(c.turnstile_secret_key, "");
	assert_string_equal(c.turnstile_verify_url,
	    "https://challenges.cloudflare.com/turnstile/v0/siteverify");
	assert_true(c.registration_open);
	assert_int_equal(c.max_blob_bytes, 16 * 1024 * 1024);
	assert_int_equal(c.max_body_bytes, 64 * 1024);
	assert_int_equal(c.data_revisions, 10);
	assert_int_equal(c.json_max_depth, 16);
	assert_int_equal(c.max_url_bytes, 2048);
	assert_int_equal(c.longpoll_max_s, 60);
	assert_int_equal(c.write_batch_max, 64);
	assert_int_equal(c.threads, 0);
	assert_int_equal(c.hash_threads, 1);
	assert_int_equal(c.hash_queue, 32);
	assert_int_equal(c.connection_timeout_s, 30);
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.max_connections_per_ip, 64);
	assert_int_equal(c.connection_memory, 16 * 1024);
	assert_int_equal(c.n_trusted_proxies, 0);
	assert_string_equal(c.metrics_token, "");
	assert_true(c.log_requests);

	assert_int_equal(c.rates[RATE_SIGNUP_IP].limit, 20);
	assert_int_equal(c.rates[RATE_SIGNUP_IP].window_ms, 3600000);
	assert_int_equal(c.rates[RATE_INIT_IP].limit, 30);
	assert_int_equal(c.rates[RATE_INIT_IP].window_ms, 600000);
	assert_int_equal(c.rates[RATE_CODE_USER].limit, 20);
	assert_int_equal(c.rates[RATE_CODE_USER].window_ms, 900000);
	assert_int_equal(c.rates[RATE_CODE_IP].limit, 20);
	assert_int_equal(c.rates[RATE_CODE_IP].window_ms, 900000);
	assert_int_equal(c.rates[RATE_LOGIN_ACCOUNT].limit, 10);
	assert_int_equal(c.rates[RATE_LOGIN_ACCOUNT].window_ms, 900000);
	assert_int_equal(c.rates[RATE_LOGIN_IP].limit, 100);
	assert_int_equal(c.rates[RATE_LOGIN_IP].window_ms, 900000);
	for (i = 0; i < RATE_KIND_COUNT; i++)
		assert_int_equal(c.rates[i].growing,
		    i == RATE_LOGIN_ACCOUNT || i == RATE_LOGIN_IP);
}

static void
test_load_nothing(void **state)
{
	struct config a, b;
	char *argv[] = { "flamingo-syncd" };
	char err[128];

	config_defaults(&a);
	assert_int_equal(load(&b, NULL, 1, argv, err, sizeof(err)), CONFIG_OK);
	assert_memory_equal(&a, &b, sizeof(a));
	assert_string_equal(err, "");
	/* The real getenv is the default. */
	config_defaults(&b);
	assert_int_equal(config_load(&b, 1, argv, NULL, stdout, err,
	    sizeof(err)), CONFIG_OK);
}

static void
test_env_then_flags(void **state)
{
	static const char *const env[] = {
		"MAX_BLOB_BYTES", "2048",
		"SESSION_EXPIRY_DAYS", "7",
		"REGISTRATION_OPEN", "no",
		"LISTEN", "0.0.0.0:8080",
		"DATABASE_URL", "postgres://u:p@db/flamingo",
		"TURNSTILE_SITE_KEY", "0x4AAAAAAA",
		"RATE_LOGIN_IP", "5/60",
		"LOG_REQUESTS", "OFF",
		"THREADS", "8",
		"CONNECTION_MEMORY_BYTES", "8192",
		"SOMETHING_ELSE", "ignored",
		NULL
	};
	struct config c;

	LOAD_OK(&c, env, "--max-blob-bytes", "4096", "--threads=0",
	    "--database", "sqlite:/var/lib/f.db");
	assert_int_equal(c.max_blob_bytes, 4096);     /* flag wins */
	assert_int_equal(c.threads, 0);               /* --flag=value */
	assert_string_equal(c.database_url, "sqlite:/var/lib/f.db");
	assert_int_equal(c.session_expiry_days, 7);   /* env */
	assert_false(c.registration_open);
	assert_false(c.log_requests);
	assert_string_equal(c.listen_host, "0.0.0.0");
	assert_int_equal(c.listen_port, 8080);
	assert_string_equal(c.public_url, "http://localhost:8080");
	assert_string_equal(c.turnstile_site_key, "0x4AAAAAAA");
	assert_int_equal(c.rates[RATE_LOGIN_IP].limit, 5);
	assert_int_equal(c.rates[RATE_LOGIN_IP].window_ms, 60000);
	assert_true(c.rates[RATE_LOGIN_IP].growing);
	assert_int_equal(c.connection_memory, 8192);
	assert_int_equal(c.data_revisions, 10);       /* default */

	/* Every setting has its kebab-case flag; the last flag wins. */
	LOAD_OK(&c, NULL, "--database-url", "sqlite:a.db", "--public-url",
	    "https://sync.example.com/", "--log-requests", "0",
	    "--registration-open=1", "--max-url-bytes", "256",
	    "--max-url-bytes", "65536", "--rate-signup", "0/1",
	    "--trusted-proxies", "10.0.0.1", "--metrics-token", "m3tr1cs",
	    "--turnstile-secret-key=a=b");
	assert_string_equal(c.database_url, "sqlite:a.db");
	assert_string_equal(c.public_url, "https://sync.example.com");
	assert_false(c.log_requests);
	assert_true(c.registration_open);
	assert_int_equal(c.max_url_bytes, 65536);
	assert_int_equal(c.rates[RATE_SIGNUP_IP].limit, 0);
	assert_int_equal(c.rates[RATE_SIGNUP_IP].window_ms, 1000);
	assert_int_equal(c.n_trusted_proxies, 1);
	assert_string_equal(c.metrics_token, "m3tr1cs");
	assert_string_equal(c.turnstile_secret_key, "a=b");
}

static void
test_empty_env_is_unset(void **state)
{
	static const char *const env[] = {
		"MAX_BLOB_BYTES", "",
		"PUBLIC_URL", "",
		"LISTEN", "",
		"TURNSTILE_SITE_KEY", "",
		NULL
	};
	struct config a, c;

	LOAD_OK(&c, env, "--metrics-token", "");
	config_defaults(&a);
	assert_memory_equal(&a, &c, sizeof(a));
}

static void
test_bool_values(void **state)
{
	static const char *const yes[] = { "true", "1", "yes", "on", "TRUE",
	    "Yes", "On" };
	static const char *const no[] = { "false", "0", "no", "off", "False",
	    "NO", "oFF" };
	struct config c;
	size_t i;

	for (i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
		LOAD_OK(&c, NULL, "--registration-open", "false",
		    "--registration-open", (char *)(uintptr_t)yes[i]);
		assert_true(c.registration_open);
		LOAD_OK(&c, NULL, "--registration-open",
		    (char *)(uintptr_t)no[i]);
		assert_false(c.registration_open);
	}
	expect_bad_value("REGISTRATION_OPEN", "--registration-open", "2");
	expect_bad_value("LOG_REQUESTS", "--log-requests", "y");
	expect_bad_value("LOG_REQUESTS", "--log-requests", "truee");
	expect_bad_value("LOG_REQUESTS", "--log-requests", " true");
}

/* Every integer setting with its range, from config.h. */
static const struct {
	const char *env;
	int64_t min, max;
} ints[] = {
	{ "SESSION_EXPIRY_DAYS", 1, 3650 },
	{ "TEMP_TOKEN_EXPIRY_MINUTES", 1, 60 },
	{ "DEVICE_POLL_INTERVAL", 1, 60 },
	{ "WEB_SESSION_IDLE_HOURS", 1, 8760 },
	{ "WEB_SESSION_MAX_DAYS", 1, 365 },
	{ "MAX_BLOB_BYTES", 1024, 1073741824 },
	{ "MAX_BODY_BYTES", 1024, 1048576 },
	{ "DATA_REVISIONS", 1, 1000 },
	{ "JSON_MAX_DEPTH", 2, 64 },
	{ "MAX_URL_BYTES", 256, 65536 },
	{ "LONGPOLL_MAX_SECONDS", 1, 300 },
	{ "WRITE_BATCH_MAX", 1, 1024 },
	{ "THREADS", 0, 256 },
	{ "HASH_THREADS", 1, 64 },
	{ "HASH_QUEUE", 1, 10000 },
	{ "CONNECTION_TIMEOUT", 1, 3600 },
	{ "MAX_CONNECTIONS", 1, 100000 },
	{ "MAX_CONNECTIONS_PER_IP", 1, 100000 },
	{ "CONNECTION_MEMORY_BYTES", 8192, 16777216 },
};

static void
kebab(char *out, const char *env)
{
	size_t i;

	out[0] = out[1] = '-';
	for (i = 0; env[i] != '\0'; i++)
		out[i + 2] = env[i] == '_' ? '-' : (char)(env[i] | 0x20);
	out[i + 2] = '\0';
}

static void
test_int_ranges(void **state)
{
	static const char *const bad[] = {
		"x", "", " 5", "5 ", "+5", "5x", "0x10", "1e3", "5.0", "--5",
		"99999999999999999999", "-99999999999999999999",
		"9223372036854775808", "1 000",
	};
	char flag[64], lo[32], hi[32], below[32], above[32], msg[512];
	char *argv[3];
	const char *env[3] = { NULL, NULL, NULL };
	struct config c;
	size_t i, k;

	for (i = 0; i < sizeof(ints) / sizeof(ints[0]); i++) {
		kebab(flag, ints[i].env);
		snprintf(lo, sizeof(lo), "%lld", (long long)ints[i].min);
		snprintf(hi, sizeof(hi), "%lld", (long long)ints[i].max);
		snprintf(below, sizeof(below), "%lld",
		    (long long)ints[i].min - 1);
		snprintf(above, sizeof(above), "%lld",
		    (long long)ints[i].max + 1);
		argv[0] = "flamingo-syncd";
		argv[1] = flag;
		argv[2] = lo;
		assert_int_equal(load(&c, NULL, 3, argv, msg, sizeof(msg)),
		    CONFIG_OK);
		argv[2] = hi;
		assert_int_equal(load(&c, NULL, 3, argv, msg, sizeof(msg)),
		    CONFIG_OK);
		env[0] = ints[i].env;
		env[1] = hi;
		assert_int_equal(load(&c, env, 1, argv, msg, sizeof(msg)),
		    CONFIG_OK);
		expect_bad_value(ints[i].env, flag, below);
		expect_bad_value(ints[i].env, flag, above);
		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
			/* An empty variable is unset, not bad. */
			if (bad[k][0] != '\0') {
				expect_bad_value(ints[i].env, flag, bad[k]);
				continue;
			}
			argv[2] = (char *)(uintptr_t)bad[k];
			expect_bad(NULL, 3, argv, ints[i].env);
		}
	}
	/* The exact message. */
	{
		char *av[] = { "flamingo-syncd", "--max-blob-bytes", "x" };

		assert_int_equal(load(&c, NULL, 3, av, msg, sizeof(msg)),
		    CONFIG_BAD);
		assert_string_equal(msg, "MAX_BLOB_BYTES: expected an integer "
		    "between 1024 and 1073741824, got 'x'");
	}
	/* The values land in the right fields. */
	LOAD_OK(&c, NULL, "--hash-threads", "64", "--hash-queue", "10000",
	    "--connection-timeout", "3600", "--max-connections", "1",
	    "--max-connections-per-ip", "100000", "--json-max-depth", "2",
	    "--longpoll-max-seconds", "300", "--data-revisions", "1000",
	    "--web-session-idle-hours", "1", "--web-session-max-days", "365",
	    "--device-poll-interval", "60", "--temp-token-expiry-minutes", "1",
	    "--session-expiry-days", "3650", "--max-body-bytes", "1048576",
	    "--max-blob-bytes", "1073741824", "--threads", "256",
	    "--connection-memory-bytes", "16777216", "--write-batch-max", "1");
	assert_int_equal(c.hash_threads, 64);
	assert_int_equal(c.hash_queue, 10000);
	assert_int_equal(c.connection_timeout_s, 3600);
	assert_int_equal(c.max_connections, 1);
	assert_int_equal(c.max_connections_per_ip, 100000);
	assert_int_equal(c.json_max_depth, 2);
	assert_int_equal(c.longpoll_max_s, 300);
	assert_int_equal(c.data_revisions, 1000);
	assert_int_equal(c.web_session_idle_hours, 1);
	assert_int_equal(c.web_session_max_days, 365);
	assert_int_equal(c.poll_interval_s, 60);
	assert_int_equal(c.temp_token_expiry_minutes, 1);
	assert_int_equal(c.session_expiry_days, 3650);
	assert_int_equal(c.max_body_bytes, 1048576);
	assert_int_equal(c.max_blob_bytes, 1073741824);
	assert_int_equal(c.threads, 256);
	assert_int_equal(c.connection_memory, 16777216);
	assert_int_equal(c.write_batch_max, 1);
}

static void
test_strings(void **state)
{
	char long_key[300], long_db[1100], msg[512];
	struct config c;

	memset(long_key, 'k', 255);
	long_key[255] = '\0';
	LOAD_OK(&c, NULL, "--turnstile-site-key", long_key);
	assert_string_equal(c.turnstile_site_key, long_key);
	long_key[255] = 'k';
	long_key[256] = '\0';
	expect_bad_value("TURNSTILE_SITE_KEY", "--turnstile-site-key",
	    long_key);
	expect_bad_value("TURNSTILE_SECRET_KEY", "--turnstile-secret-key",
	    long_key);
	expect_bad_value("METRICS_TOKEN", "--metrics-token", long_key);
	expect_bad_value("METRICS_TOKEN", "--metrics-token", "has space");
	expect_bad_value("METRICS_TOKEN", "--metrics-token", "tab\there");
	expect_bad_value("TURNSTILE_SECRET_KEY", "--turnstile-secret-key",
	    "caf\xc3\xa9");

	/* Secrets are never echoed in the message. */
	{
		char *av[] = { "flamingo-syncd", "--metrics-token",
		    "hunter2 hunter2" };

		assert_int_equal(load(&c, NULL, 3, av, msg, sizeof(msg)),
		    CONFIG_BAD);
		assert_null(strstr(msg, "hunter2"));
	}

	memcpy(long_db, "sqlite:", 7);
	memset(long_db + 7, 'd', 1016);
	long_db[1023] = '\0';
	LOAD_OK(&c, NULL, "--database", long_db);
	assert_int_equal(strlen(c.database_url), 1023);
	long_db[1023] = 'd';
	long_db[1024] = '\0';
	expect_bad_value("DATABASE_URL", "--database", long_db);
	LOAD_OK(&c, NULL, "--database", "postgresql://localhost/f");
	LOAD_OK(&c, NULL, "--database", "host=/run/postgresql dbname=f");
	expect_bad_value("DATABASE_URL", "--database", "=x");
	expect_bad_value("DATABASE_URL", "--database", "Host=x");
	LOAD_OK(&c, NULL, "--database", "sqlite:/tmp/with space.db");
	expect_bad_value("DATABASE_URL", "--database", "mysql://db/f");
	expect_bad_value("DATABASE_URL", "--database", "sqlite:");
	expect_bad_value("DATABASE_URL", "--database", "./flamingo.db");
	expect_bad_value("DATABASE_URL", "--database", "sqlite:a\nb");
	{
		char *av[] = { "flamingo-syncd", "--database",
		    "mysql://u:s3cret@db/f" };

		assert_int_equal(load(&c, NULL, 3, av, msg, sizeof(msg)),
		    CONFIG_BAD);
		assert_null(strstr(msg, "s3cret"));
	}

	LOAD_OK(&c, NULL, "--turnstile-verify-url", "http://127.0.0.1:9/v");
	assert_string_equal(c.turnstile_verify_url, "http://127.0.0.1:9/v");
	expect_bad_value("TURNSTILE_VERIFY_URL", "--turnstile-verify-url",
	    "ftp://x/");
	expect_bad_value("TURNSTILE_VERIFY_URL", "--turnstile-verify-url",
	    "https://");
	expect_bad_value("TURNSTILE_VERIFY_URL", "--turnstile-verify-url",
	    "https:///path");
	expect_bad_value("TURNSTILE_VERIFY_URL", "--turnstile-verify-url",
	    "https://a b/");
}

static void
test_bad_args(void **state)
{
	struct config c;
	char msg[256];

	{
		char *av[] = { "flamingo-syncd", "--max-blob-bytes" };

		expect_bad(NULL, 2, av, "MAX_BLOB_BYTES");
	}
	{
		char *av[] = { "flamingo-syncd", "--database" };

		expect_bad(NULL, 2, av, "DATABASE_URL");
	}
	{
		char *av[] = { "flamingo-syncd", "--no-such-thing", "1" };

		expect_bad(NULL, 3, av, "--no-such-thing");
	}
	{
		char *av[] = { "flamingo-syncd", "--metrics-tokn=s3cret" };

		assert_int_equal(load(&c, NULL, 2, av, msg, sizeof(msg)),
		    CONFIG_BAD);
		assert_string_equal(msg,
		    "--metrics-tokn: unknown option (see --help)");
	}
	{
		char *av[] = { "flamingo-syncd", "stray" };

		expect_bad(NULL, 2, av, "stray");
	}
	{
		/* Environment names are not flags, nor are single dashes. */
		char *av[] = { "flamingo-syncd", "--MAX_BLOB_BYTES", "2048" };

		expect_bad(NULL, 3, av, "--MAX_BLOB_BYTES");
	}
	{
		char *av[] = { "flamingo-syncd", "-listen", "1.2.3.4:5" };

		expect_bad(NULL, 3, av, "-listen");
	}
	{
		char *av[] = { "flamingo-syncd", "--" };

		expect_bad(NULL, 2, av, "--");
	}
	{
		/* A bad environment fails even when flags are fine. */
		static const char *const env[] = { "THREADS", "many", NULL };
		char *av[] = { "flamingo-syncd", "--threads", "2" };

		expect_bad(env, 3, av, "THREADS");
	}
	{
		/* A tiny error buffer is truncated, not overrun. */
		char small[8];
		char *av[] = { "flamingo-syncd", "--threads", "x" };

		memset(small, 'Z', sizeof(small));
		assert_int_equal(load(&c, NULL, 3, av, small, sizeof(small)),
		    CONFIG_BAD);
		assert_string_equal(small, "THREADS");
		assert_int_equal(load(&c, NULL, 3, av, NULL, 0), CONFIG_BAD);
	}
}

/* Runs config_load with output to a memory stream; returns the output. */
static char *
run_output(const char *const *env, int argc, char **argv,
    enum config_result *r)
{
	struct config c;
	char *buf = NULL;
	size_t len = 0;
	char err[256];
	FILE *f;

	f = open_memstream(&buf, &len);
	assert_non_null(f);
	config_defaults(&c);
	fake_env = env;
	*r = config_load(&c, argc, argv, fake_getenv, f, err, sizeof(err));
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void
test_help_version(void **state)
{
	static const char *const names[] = {
		"LISTEN", "DATABASE_URL", "PUBLIC_URL", "SESSION_EXPIRY_DAYS",
		"TEMP_TOKEN_EXPIRY_MINUTES", "DEVICE_POLL_INTERVAL",
		"WEB_SESSION_IDLE_HOURS", "WEB_SESSION_MAX_DAYS",
		"TURNSTILE_SITE_KEY", "TURNSTILE_SECRET_KEY",
		"TURNSTILE_VERIFY_URL", "REGISTRATION_OPEN", "MAX_BLOB_BYTES",
		"MAX_BODY_BYTES", "DATA_REVISIONS", "JSON_MAX_DEPTH",
		"MAX_URL_BYTES", "LONGPOLL_MAX_SECONDS", "WRITE_BATCH_MAX",
		"THREADS",
		"HASH_THREADS", "HASH_QUEUE", "CONNECTION_TIMEOUT",
		"MAX_CONNECTIONS", "MAX_CONNECTIONS_PER_IP",
		"CONNECTION_MEMORY_BYTES", "RATE_SIGNUP", "RATE_INIT",
		"RATE_USER_CODE_USER", "RATE_USER_CODE_IP",
		"RATE_LOGIN_ACCOUNT", "RATE_LOGIN_IP", "TRUSTED_PROXIES",
		"METRICS_TOKEN", "LOG_REQUESTS",
	};
	static const char *const bad_env[] = { "THREADS", "many", NULL };
	enum config_result r;
	char needle[128], flag[64];
	char *out;
	size_t i;

	{
		char *av[] = { "flamingo-syncd", "--help" };

		/* A bad environment does not stop --help. */
		out = run_output(bad_env, 2, av, &r);
	}
	assert_int_equal(r, CONFIG_EXIT_OK);
	assert_non_null(strstr(out, "Usage: flamingo-syncd"));
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		/* One line per setting, with its flag. */
		snprintf(needle, sizeof(needle), "\n  %s ", names[i]);
		if (strstr(out, needle) == NULL)
			fail_msg("--help lacks %s", names[i]);
		kebab(flag, names[i]);
		assert_non_null(strstr(strstr(out, needle), flag));
	}
	assert_non_null(strstr(out, "--database, --database-url"));
	assert_non_null(strstr(out, "[16777216]"));
	assert_non_null(strstr(out, "[sqlite:./flamingo-sync.db]"));
	assert_non_null(strstr(out, "[10/900]"));
	assert_non_null(strstr(out, "0 ok, 1 runtime failure, 2 bad "
	    "configuration"));
	free(out);

	{
		char *av[] = { "flamingo-syncd", "--threads", "x", "--version" };

		out = run_output(NULL, 4, av, &r);
	}
	assert_int_equal(r, CONFIG_EXIT_OK);
	assert_string_equal(out, "flamingo-syncd " FLM_VERSION "\n");
	assert_string_equal(FLM_VERSION, "0.1.0");
	free(out);

	{
		char *av[] = { "flamingo-syncd", "-h" };

		out = run_output(NULL, 2, av, &r);
	}
	assert_int_equal(r, CONFIG_EXIT_OK);
	free(out);

	{
		/* "--help" as the value of a flag is a value, not a request
		 * for help. */
		char *av[] = { "flamingo-syncd", "--metrics-token", "--help" };

		out = run_output(NULL, 3, av, &r);
	}
	assert_int_equal(r, CONFIG_OK);
	assert_string_equal(out, "");
	free(out);
}

static void
test_listen(void **state)
{
	static const struct {
		const char *in, *host;
		unsigned int port;
	} good[] = {
		{ "127.0.0.1:3000", "127.0.0.1", 3000 },
		{ "0.0.0.0:1", "0.0.0.0", 1 },
		{ "127.0.0.1:0", "127.0.0.1", 0 },	/* kernel's choice */
		{ "localhost:65535", "localhost", 65535 },
		{ "Sync-1.Example.com:80", "sync-1.example.com", 80 },
		{ "[::1]:3000", "::1", 3000 },
		{ "[::]:443", "::", 443 },
		{ "[2001:DB8::1]:8443", "2001:db8::1", 8443 },
		{ "[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80 },
	};
	static const char *const bad[] = {
		"127.0.0.1", "127.0.0.1:", ":3000",
		"127.0.0.1:65536", "127.0.0.1:99999", "127.0.0.1:-1",
		"127.0.0.1:+80", "127.0.0.1:80 ", " 127.0.0.1:80",
		"127.0.0.1:8o", "127.0.0.1:000080", "256.0.0.1:80", "1.2.3:80",
		"::1:3000", "[::1]", "[::1]3000", "[::1:3000", "::1]:3000",
		"[]:80", "[::g]:80", "[fe80::1%eth0]:80", "[127.0.0.1]:80",
		"host_name:80", "-host:80", "a b:80", "http://x:80", "",
		"[::1]:80:80",
	};
	char host[64], small[4];
	uint16_t port;
	struct config c;
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		port = 0;
		if (config_parse_listen(good[i].in, host, sizeof(host),
		    &port) != 0)
			fail_msg("refused %s", good[i].in);
		assert_string_equal(host, good[i].host);
		assert_int_equal(port, good[i].port);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		strcpy(host, "unchanged");
		port = 7;
		if (config_parse_listen(bad[i], host, sizeof(host), &port) == 0)
			fail_msg("accepted '%s'", bad[i]);
		assert_string_equal(host, "unchanged");
		assert_int_equal(port, 7);
		if (bad[i][0] != '\0')
			expect_bad_value("LISTEN", "--listen", bad[i]);
	}
	assert_int_equal(config_parse_listen("127.0.0.1:80", small,
	    sizeof(small), &port), -1);
	assert_int_equal(config_parse_listen("[::1]:80", small, sizeof(small),
	    &port), 0);
	assert_int_equal(config_parse_listen(NULL, host, sizeof(host), &port),
	    -1);

	/* PUBLIC_URL follows LISTEN unless given. */
	LOAD_OK(&c, NULL, "--listen", "[::1]:4000");
	assert_string_equal(c.listen_host, "::1");
	assert_int_equal(c.listen_port, 4000);
	assert_string_equal(c.public_url, "http://[::1]:4000");
	LOAD_OK(&c, NULL, "--listen", "[::]:4000");
	assert_string_equal(c.public_url, "http://localhost:4000");
	LOAD_OK(&c, NULL, "--listen", "localhost:80");
	assert_string_equal(c.public_url, "http://localhost");
	assert_string_equal(c.public_origin, "http://localhost");
	/* Port 0 stays in the derived URL for main to fill in. */
	LOAD_OK(&c, NULL, "--listen", "127.0.0.1:0");
	assert_int_equal(c.listen_port, 0);
	assert_string_equal(c.public_url, "http://127.0.0.1:0");
	assert_string_equal(c.public_origin, "http://127.0.0.1:0");
	LOAD_OK(&c, NULL, "--listen", "[::1]:0");
	assert_string_equal(c.public_origin, "http://[::1]:0");
	LOAD_OK(&c, NULL, "--public-url", "https://x.example", "--listen",
	    "0.0.0.0:9000");
	assert_string_equal(c.public_url, "https://x.example");
}

static void
test_public_url(void **state)
{
	static const struct {
		const char *in, *url, *origin;
		bool https;
	} good[] = {
		{ "http://127.0.0.1:3000", "http://127.0.0.1:3000",
		    "http://127.0.0.1:3000", false },
		{ "https://sync.example.com/", "https://sync.example.com",
		    "https://sync.example.com", true },
		{ "HTTPS://Sync.Example.COM:443//", "https://sync.example.com",
		    "https://sync.example.com", true },
		{ "http://example.com:80/flamingo/", "http://example.com/flamingo",
		    "http://example.com", false },
		{ "https://example.com:8443/a/B/c", "https://example.com:8443/a/B/c",
		    "https://example.com:8443", true },
		{ "http://example.com:443", "http://example.com:443",
		    "http://example.com:443", false },
		{ "https://[2001:DB8::1]:8443/x/", "https://[2001:db8::1]:8443/x",
		    "https://[2001:db8::1]:8443", true },
		{ "http://[::1]", "http://[::1]", "http://[::1]", false },
		{ "http://localhost/", "http://localhost", "http://localhost",
		    false },
	};
	static const char *const bad[] = {
		"example.com", "ftp://example.com", "http://", "https:///x",
		"http://:80/", "http://example.com:0", "http://example.com:",
		"http://example.com:65536", "http://example.com:8o",
		"http://example.com/?q=1", "http://example.com/#frag",
		"http://example.com?x", "http://user:pw@example.com/",
		"http://exa mple.com/", "http://example.com/a b",
		"http://example.com/\n", "http://[::1/", "http://[::1]x/",
		"http://[::g]/", "http://ex_ample.com/", "http://-x.com/",
		"http://example.com\\@evil.com/", "http://caf\xc3\xa9.com/",
		"http://256.1.1.1/", "//example.com",
	};
	char *av[3] = { "flamingo-syncd", "--public-url", NULL };
	char long_url[600];
	struct config c;
	char err[256];
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		av[2] = (char *)(uintptr_t)good[i].in;
		if (load(&c, NULL, 3, av, err, sizeof(err)) != CONFIG_OK)
			fail_msg("refused %s: %s", good[i].in, err);
		assert_string_equal(c.public_url, good[i].url);
		assert_string_equal(c.public_origin, good[i].origin);
		assert_int_equal(c.https, good[i].https);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_value("PUBLIC_URL", "--public-url", bad[i]);

	/* Fits exactly, then one too long. */
	memcpy(long_url, "https://e.com/", 14);
	memset(long_url + 14, 'p', 497);
	long_url[511] = '\0';
	LOAD_OK(&c, NULL, "--public-url", long_url);
	assert_int_equal(strlen(c.public_url), 511);
	long_url[511] = 'p';
	long_url[512] = '\0';
	expect_bad_value("PUBLIC_URL", "--public-url", long_url);

	{
		static const char *const env[] = { "PUBLIC_URL",
		    "https://env.example/", NULL };

		LOAD_OK(&c, env, "--listen", "127.0.0.1:1234");
		assert_string_equal(c.public_url, "https://env.example");
		assert_true(c.https);
		LOAD_OK(&c, env, "--public-url", "http://flag.example");
		assert_string_equal(c.public_url, "http://flag.example");
		assert_false(c.https);
	}
}

static void
test_rates(void **state)
{
	static const char *const rates[] = {
		"RATE_SIGNUP", "RATE_INIT", "RATE_USER_CODE_USER",
		"RATE_USER_CODE_IP", "RATE_LOGIN_ACCOUNT", "RATE_LOGIN_IP",
	};
	static const char *const bad[] = {
		"10", "10/", "/60", "10/0", "-1/60", "10/-60", "+1/60",
		"10/+60", "x/60", "10/x", "10/60/1", "10 /60", "10/ 60",
		"10/60s", "1000000001/60", "10/31536001",
		"99999999999999999999/60", "1.5/60",
	};
	struct rate_rule r = { 7, 7, true };
	char flag[64];
	size_t i, k;

	assert_int_equal(config_parse_rate("20/3600", &r), 0);
	assert_int_equal(r.limit, 20);
	assert_int_equal(r.window_ms, 3600000);
	assert_true(r.growing); /* left as it was */
	assert_int_equal(config_parse_rate("0/1", &r), 0);
	assert_int_equal(r.limit, 0);
	assert_int_equal(r.window_ms, 1000);
	assert_int_equal(config_parse_rate("1000000000/31536000", &r), 0);
	assert_int_equal(r.limit, 1000000000);
	assert_int_equal(r.window_ms, 31536000000LL);
	assert_int_equal(config_parse_rate(NULL, &r), -1);
	for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		r.limit = 5;
		r.window_ms = 5;
		if (config_parse_rate(bad[k], &r) == 0)
			fail_msg("accepted '%s'", bad[k]);
		assert_int_equal(r.limit, 5);
		assert_int_equal(r.window_ms, 5);
	}
	for (i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		kebab(flag, rates[i]);
		for (k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
			expect_bad_value(rates[i], flag, bad[k]);
	}
	{
		struct config c;

		LOAD_OK(&c, NULL, "--rate-signup", "1/2", "--rate-init", "3/4",
		    "--rate-user-code-user", "5/6", "--rate-user-code-ip",
		    "7/8", "--rate-login-account", "9/10", "--rate-login-ip",
		    "11/12");
		for (i = 0; i < RATE_KIND_COUNT; i++) {
			assert_int_equal(c.rates[i].limit, 2 * i + 1);
			assert_int_equal(c.rates[i].window_ms,
			    (2 * i + 2) * 1000);
			assert_int_equal(c.rates[i].growing,
			    i == RATE_LOGIN_ACCOUNT || i == RATE_LOGIN_IP);
		}
	}
}

static void
test_trusted_proxies(void **state)
{
	static const char *const bad[] = {
		"10.0.0.1,", ",10.0.0.1", "10.0.0.1,,10.0.0.2", "10.0.0.256",
		"10.0.0.0/8", "proxy.local", "::g", "10.0.0.1;10.0.0.2",
		"10.0.0.1 10.0.0.2", "fe80::1%eth0", ",", " , ",
		"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17",
	};
	char many[512];
	struct config c;
	size_t i;
	int n, k;

	LOAD_OK(&c, NULL, "--trusted-proxies", "10.0.0.1");
	assert_int_equal(c.n_trusted_proxies, 1);
	assert_string_equal(c.trusted_proxies[0], "10.0.0.1");

	LOAD_OK(&c, NULL, "--trusted-proxies",
	    "192.168.1.2, ::1 ,2001:DB8:0:0:0:0:0:1,::ffff:10.1.2.3");
	assert_int_equal(c.n_trusted_proxies, 4);
	assert_string_equal(c.trusted_proxies[0], "192.168.1.2");
	assert_string_equal(c.trusted_proxies[1], "::1");
	/* Canonical text, as inet_ntop prints a peer address. */
	assert_string_equal(c.trusted_proxies[2], "2001:db8::1");
	assert_string_equal(c.trusted_proxies[3], "::ffff:10.1.2.3");

	for (n = 0, k = 0; k < CONFIG_MAX_PROXIES; k++)
		n += snprintf(many + n, sizeof(many) - (size_t)n, "%s10.0.0.%d",
		    k ? "," : "", k + 1);
	LOAD_OK(&c, NULL, "--trusted-proxies", many);
	assert_int_equal(c.n_trusted_proxies, CONFIG_MAX_PROXIES);
	assert_string_equal(c.trusted_proxies[15], "10.0.0.16");

	/* Empty clears the list. */
	LOAD_OK(&c, NULL, "--trusted-proxies", "10.0.0.1",
	    "--trusted-proxies", "");
	assert_int_equal(c.n_trusted_proxies, 0);

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_bad_value("TRUSTED_PROXIES", "--trusted-proxies",
		    bad[i]);
	/* A refused list leaves the previous one alone. */
	{
		char *av[] = { "flamingo-syncd", "--trusted-proxies", "10.9.9.9",
		    "--trusted-proxies", "10.0.0.1,bad" };
		char err[256];

		assert_int_equal(load(&c, NULL, 5, av, err, sizeof(err)),
		    CONFIG_BAD);
		assert_int_equal(c.n_trusted_proxies, 1);
		assert_string_equal(c.trusted_proxies[0], "10.9.9.9");
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_load_nothing),
		cmocka_unit_test(test_env_then_flags),
		cmocka_unit_test(test_empty_env_is_unset),
		cmocka_unit_test(test_bool_values),
		cmocka_unit_test(test_int_ranges),
		cmocka_unit_test(test_strings),
		cmocka_unit_test(test_bad_args),
		cmocka_unit_test(test_help_version),
		cmocka_unit_test(test_listen),
		cmocka_unit_test(test_public_url),
		cmocka_unit_test(test_rates),
		cmocka_unit_test(test_trusted_proxies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
