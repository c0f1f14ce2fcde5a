/*
 * flamingo-sync: the command-line client on libflamingosync.
 * `flamingo-sync --help` lists the commands and the exit codes.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>
#include <unistr.h>

#include "flamingosync.h"

#include "client/cli_state.h"

extern char **environ;

/* Exit codes (also in usage()). */
enum {
	EX_OK = 0,
	EX_ERROR = 1,
	EX_USAGE = 2,
	EX_AUTH = 3,
	EX_CONFLICT = 4,
	EX_CRYPTO = 5,
	EX_NETWORK = 6,
	EX_NOTFOUND = 7,
	EX_LOGIN = 8,
	EX_DISABLED = 9
};

#define PASS_CAP (FLS_PASSPHRASE_MAX + 2)

struct opts {
	bool json;
	bool force;
	bool no_browser;
	bool insecure_http;
	bool once;
	bool poll;
	const char *server;
	const char *device_name;
	int64_t base_version;   /* -1: not given */
	const char *args[4];
	int nargs;
};

struct ctx {
	struct opts o;
	struct cli_state st;
	fls_client *c;
};

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
	(void)sig;
	interrupted = 1;
}

static void
usage(FILE *f)
{
	fputs(
"usage: flamingo-sync [--json] COMMAND [ARGS]\n"
"\n"
"End-to-end encrypted sync of Flamingo data (history, environment, secret,\n"
"collection, setting) with a flamingo-syncd server.\n"
"\n"
"Commands:\n"
"  login --server URL [--device-name NAME] [--no-browser]\n"
"                          authorize this device (shows a code to check in\n"
"                          the browser)\n"
"  status                  server, device, key version, stored types\n"
"  push TYPE FILE|- [--base-version N | --force]\n"
"                          encrypt and upload; refuses to overwrite a\n"
"                          version this device has not seen unless --force\n"
"  pull TYPE [FILE]        download and decrypt (to stdout without FILE;\n"
"                          with --json give FILE: stdout carries the JSON)\n"
"  list                    stored types with versions and sizes\n"
"  delete TYPE [--force]   delete the stored data of TYPE\n"
"  watch [--once] [--poll] print sync events as they happen (the server's\n"
"                          event stream; --poll: long-polling; --once:\n"
"                          what is there now, then exit)\n"
"  key init                create the master key, wrapped under a new sync\n"
"                          passphrase\n"
"  key rotate              new master key; every type re-encrypted at once\n"
"  key change-passphrase   re-wrap the same master key under a new\n"
"                          passphrase\n"
"  config show             which types sync\n"
"  config set TYPE on|off\n"
"  devices                 list this account's devices\n"
"  devices revoke ID       end another device's session\n"
"  logout                  end this device's session\n"
"\n"
"Options: --json (machine-readable output on stdout), --insecure-http\n"
"(allow http:// to a non-loopback server), --help, --version.\n"
"\n"
"The sync passphrase is read from the terminal without echo, or from\n"
"FLAMINGO_SYNC_PASSPHRASE (and FLAMINGO_SYNC_NEW_PASSPHRASE for a new one)\n"
"in scripts. It is never stored. State lives in\n"
"$XDG_CONFIG_HOME/flamingo-sync/state.json (default ~/.config).\n"
"\n"
"Exit codes:\n"
"  0  success\n"
"  1  other error (server error, malformed answer, local I/O)\n"
"  2  usage error\n"
"  3  not logged in, or this device's session was revoked or expired\n"
"     (run flamingo-sync login)\n"
"  4  conflict: the server holds a version this device has not seen, or\n"
"     the key changed meanwhile (pull and merge, or push --force)\n"
"  5  wrong passphrase, data that does not authenticate, or key-derivation\n"
"     parameters refused as too weak or too costly\n"
"  6  the server cannot be reached\n"
"  7  not found (nothing stored for that type, no key yet, no such device)\n"
"  8  login denied or expired\n"
"  9  sync of that type is disabled\n", f);
}

/* ---- output ------------------------------------------------------------ */

/* Prints obj (stolen) as one JSON line on stdout. */
static void
emit(json_t *obj)
{
	char *s;

	if (obj == NULL) {
		/* json_pack refused a value (not UTF-8): say so, in JSON */
		puts("{\"ok\":false,\"error\":\"output\",\"message\":"
		    "\"a value could not be encoded as JSON\"}");
		fflush(stdout);
		return;
	}
	s = json_dumps(obj, JSON_COMPACT);
	if (s != NULL) {
		puts(s);
		free(s);
	}
	json_decref(obj);
	fflush(stdout);
}

static int
exit_for(fls_status s)
{
	switch (s) {
	case FLS_OK:
		return EX_OK;
	case FLS_ERR_ARG:
		return EX_USAGE;
	case FLS_ERR_UNAUTHORIZED:
	case FLS_ERR_REVOKED:
		return EX_AUTH;
	case FLS_ERR_CONFLICT:
	case FLS_ERR_KEY_CHANGED:
		return EX_CONFLICT;
	case FLS_ERR_DECRYPT:
	case FLS_ERR_FORMAT:
	case FLS_ERR_KDF_WEAK:
	case FLS_ERR_KDF_LIMIT:
		return EX_CRYPTO;
	case FLS_ERR_NETWORK:
		return EX_NETWORK;
	case FLS_ERR_NOT_FOUND:
	case FLS_ERR_NO_KEY:
		return EX_NOTFOUND;
	case FLS_ERR_DENIED:
	case FLS_ERR_EXPIRED:
		return EX_LOGIN;
	case FLS_ERR_DISABLED:
		return EX_DISABLED;
	default:
		return EX_ERROR;
	}
}

/* Reports a failure: a sentence on stderr (and JSON on stdout with
 * --json); returns the exit code. */
static int
report(struct ctx *x, int code, const char *errcode, const char *msg)
{
	fprintf(stderr, "flamingo-sync: %s\n", msg);
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:s,s:i}", "ok", 0, "error", errcode,
		    "message", msg, "exit", code));
	return code;
}

/* The library's last failure, in words a person understands. */
static int
report_client(struct ctx *x, fls_status s, const char *doing)
{
	const fls_error *e = fls_client_error(x->c);
	char msg[768];

	switch (s) {
	case FLS_ERR_UNAUTHORIZED:
	case FLS_ERR_REVOKED:
		snprintf(msg, sizeof(msg), "this device was revoked or its "
		    "session has ended; run flamingo-sync login --server %s",
		    x->st.server);
		break;
	case FLS_ERR_NETWORK:
		snprintf(msg, sizeof(msg), "%s: %s", doing, e->message);
		break;
	case FLS_ERR_DISABLED:
		snprintf(msg, sizeof(msg), "%s: sync of this type is disabled "
		    "(flamingo-sync config set TYPE on)", doing);
		break;
	case FLS_ERR_RATE_LIMITED:
		snprintf(msg, sizeof(msg), "%s: the server asks to slow down; "
		    "try again in %ld s", doing, e->retry_after > 0 ?
		    e->retry_after : 1L);
		break;
	default:
		snprintf(msg, sizeof(msg), "%s: %s", doing, e->message[0] ?
		    e->message : fls_status_name(s));
	}
	return report(x, exit_for(s), e->code[0] ? e->code :
	    fls_status_name(s), msg);
}

/* ---- passphrases --------------------------------------------------------- */

/*
 * Reads a passphrase from env var `var` or, failing that, from the
 * terminal without echo. *out is sodium_malloc'd (free with
 * sodium_free). Returns 0 or -1.
 */
static int
read_pass(const char *var, const char *prompt, char **out, size_t *len)
{
	const char *env = getenv(var);
	struct termios old, quiet;
	struct sigaction sa, old_int, old_term, old_hup;
	char *buf = sodium_malloc(PASS_CAP);
	size_t n = 0;
	int fd = -1, rc = -1, restored = 1, handlers = 0;

	*out = NULL;
	if (buf == NULL)
		return -1;
	if (env != NULL) {
		n = strlen(env);
		if (n > FLS_PASSPHRASE_MAX)
			goto done;
		memcpy(buf, env, n);
		buf[n] = '\0';
		rc = 0;
		goto done;
	}
	fd = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		fprintf(stderr, "flamingo-sync: no terminal to ask for the "
		    "passphrase; set %s\n", var);
		goto done;
	}
	if (tcgetattr(fd, &old) != 0)
		goto done;
	/* Ctrl-C while echo is off must not leave the terminal silent: the
	 * read is interrupted (no SA_RESTART) and echo restored below. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);
	sigaction(SIGHUP, &sa, &old_hup);
	handlers = 1;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHONL);
	quiet.c_lflag |= ICANON;
	/* echo off before the prompt shows, so nothing typed ahead echoes */
	if (tcsetattr(fd, TCSAFLUSH, &quiet) != 0)
		goto done;
	restored = 0;
	if (write(fd, prompt, strlen(prompt)) < 0)
		goto done;
	for (;;) {
		struct pollfd pfd = { fd, POLLIN, 0 };
		char ch;
		ssize_t r;

		/* A signal may land before read() blocks: poll in short steps
		 * and look at the flag each time. */
		if (interrupted)
			goto done;
		if (poll(&pfd, 1, 200) == 0 || (pfd.revents == 0))
			continue;
		r = read(fd, &ch, 1);
		if ((r < 0 && errno == EINTR) || interrupted)
			goto done;
		if (r <= 0 || ch == '\n')
			break;
		if (n >= FLS_PASSPHRASE_MAX)
			goto done;
		buf[n++] = ch;
	}
	buf[n] = '\0';
	rc = 0;
done:
	if (fd >= 0) {
		if (!restored) {
			tcsetattr(fd, TCSAFLUSH, &old);
			if (write(fd, "\n", 1) < 0)
				rc = -1;
		}
		close(fd);
	}
	if (handlers) {
		sigaction(SIGINT, &old_int, NULL);
		sigaction(SIGTERM, &old_term, NULL);
		sigaction(SIGHUP, &old_hup, NULL);
	}
	if (rc != 0) {
		sodium_free(buf);
		if (interrupted)
			fprintf(stderr, "flamingo-sync: interrupted\n");
		return -1;
	}
	*out = buf;
	*len = n;
	return 0;
}

/* Passphrases are text (hashed in NFC, docs/CRYPTO.md): valid UTF-8. */
static int
pass_is_text(struct ctx *x, char **pass, size_t len)
{
	if (u8_check((const uint8_t *)*pass, len) == NULL)
		return 0;
	sodium_free(*pass);
	*pass = NULL;
	return report(x, EX_USAGE, "passphrase_not_text",
	    "the sync passphrase must be UTF-8 text");
}

/* A new passphrase: env var, or asked twice. At least 8 bytes. */
static int
read_new_pass(struct ctx *x, const char *var, char **out, size_t *len)
{
	char *again = NULL;
	size_t alen = 0;

	if (read_pass(var, "New sync passphrase: ", out, len) != 0)
		return report(x, EX_USAGE, "no_passphrase",
		    "could not read the new passphrase");
	if (getenv(var) == NULL) {
		if (read_pass(var, "Repeat the new sync passphrase: ", &again,
		    &alen) != 0 || alen != *len ||
		    sodium_memcmp(again, *out, alen) != 0) {
			if (again != NULL)
				sodium_free(again);
			sodium_free(*out);
			*out = NULL;
			return report(x, EX_USAGE, "passphrase_mismatch",
			    "the two passphrases differ");
		}
		sodium_free(again);
	}
	if (*len < FLS_PASSPHRASE_MIN) {
		sodium_free(*out);
		*out = NULL;
		return report(x, EX_USAGE, "passphrase_too_short",
		    "the sync passphrase needs at least 8 characters");
	}
	return pass_is_text(x, out, *len);
}

static int
get_pass(struct ctx *x, char **out, size_t *len)
{
	if (read_pass("FLAMINGO_SYNC_PASSPHRASE", "Sync passphrase: ", out,
	    len) != 0)
		return report(x, EX_USAGE, "no_passphrase",
		    "could not read the sync passphrase");
	return pass_is_text(x, out, *len);
}

/* ---- setup ------------------------------------------------------------ */

static int
save_state(struct ctx *x)
{
	char err[512];

	if (cli_state_save(&x->st, err, sizeof(err)) != 0)
		return report(x, EX_ERROR, "io", err);
	return 0;
}

/* A client for the saved server and token; exit code on failure. */
static int
connect_logged_in(struct ctx *x)
{
	fls_status s;

	if (x->st.server[0] == '\0' || x->st.token[0] == '\0')
		return report(x, EX_AUTH, "not_logged_in", "this device is "
		    "not logged in; run flamingo-sync login --server URL");
	s = fls_client_new(x->st.server, x->o.insecure_http, &x->c);
	if (s != FLS_OK)
		return report(x, EX_USAGE, "bad_server", "the saved server "
		    "URL is not usable; run flamingo-sync login --server URL");
	if (fls_client_set_token(x->c, x->st.token) != FLS_OK)
		return report(x, EX_AUTH, "not_logged_in", "the saved session "
		    "is malformed; run flamingo-sync login --server URL");
	return 0;
}

/* Notes a key version seen on the server; tells when it moved. */
static void
note_key_version(struct ctx *x, uint32_t v)
{
	if (x->st.key_version != 0 && v != 0 && v != x->st.key_version &&
	    !x->o.json)
		fprintf(stderr, "flamingo-sync: note: the encryption key "
		    "changed on the server (version %" PRIu32 " -> %" PRIu32
		    ")\n", x->st.key_version, v);
	x->st.key_version = v;
}

/* Fetches and unwraps the key (asks for the passphrase). */
static int
load_key(struct ctx *x, fls_key **k)
{
	char *pass = NULL;
	size_t plen = 0;
	fls_status s;
	int rc;

	rc = get_pass(x, &pass, &plen);
	if (rc != 0)
		return rc;
	s = fls_key_fetch(x->c, pass, plen, k);
	sodium_free(pass);
	if (s != FLS_OK)
		return report_client(x, s, "cannot unlock the encryption key");
	note_key_version(x, fls_key_version(*k));
	return 0;
}

static int
parse_type(struct ctx *x, const char *s, int *t)
{
	*t = fls_type_parse(s);
	if (*t < 0) {
		char msg[160];

		snprintf(msg, sizeof(msg), "unknown data type \"%.32s\" (one of "
		    "history, environment, secret, collection, setting)", s);
		return report(x, EX_USAGE, "invalid_type", msg);
	}
	return 0;
}

/* Reads a whole file ("-": stdin) of at most FLS_MAX_BLOB_BYTES. */
static int
read_input(struct ctx *x, const char *path, unsigned char **out,
    size_t *len)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	unsigned char *buf;
	size_t n = 0, cap = FLS_MAX_BLOB_BYTES + 1;
	char msg[512];

	if (f == NULL) {
		snprintf(msg, sizeof(msg), "cannot open %s: %s", path,
		    strerror(errno));
		return report(x, EX_ERROR, "io", msg);
	}
	buf = malloc(cap);
	if (buf == NULL) {
		if (f != stdin)
			fclose(f);
		return report(x, EX_ERROR, "io", "out of memory");
	}
	while (n < cap) {
		size_t r = fread(buf + n, 1, cap - n, f);

		if (r == 0)
			break;
		n += r;
	}
	if (ferror(f) || n >= cap) {
		if (f != stdin)
			fclose(f);
		sodium_memzero(buf, n);
		free(buf);
		snprintf(msg, sizeof(msg), "cannot read %s (or it is over "
		    "%u bytes)", path, FLS_MAX_BLOB_BYTES);
		return report(x, EX_ERROR, "io", msg);
	}
	if (f != stdin)
		fclose(f);
	*out = buf;
	*len = n;
	return 0;
}

/* Writes data to path atomically with mode 0600, or to stdout. */
static int
write_output(struct ctx *x, const char *path, const unsigned char *p,
    size_t len)
{
	char tmp[PATH_MAX], msg[PATH_MAX + 64];
	int fd;

	if (path == NULL || strcmp(path, "-") == 0) {
		if (fwrite(p, 1, len, stdout) != len || fflush(stdout) != 0)
			return report(x, EX_ERROR, "io", "cannot write stdout");
		return 0;
	}
	if (snprintf(tmp, sizeof(tmp), "%s.flamingo-sync-tmp", path) >=
	    (int)sizeof(tmp))
		return report(x, EX_USAGE, "io", "output path too long");
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0 || write(fd, p, len) != (ssize_t)len || fsync(fd) != 0 ||
	    close(fd) != 0 || rename(tmp, path) != 0) {
		snprintf(msg, sizeof(msg), "cannot write %s: %s", path,
		    strerror(errno));
		if (fd >= 0)
			unlink(tmp);
		return report(x, EX_ERROR, "io", msg);
	}
	return 0;
}

/* ---- commands --------------------------------------------------------- */

static void
open_browser(const char *url)
{
	posix_spawn_file_actions_t fa;
	char *argv[3];
	pid_t pid;

	argv[0] = (char *)(uintptr_t)"xdg-open";
	argv[1] = (char *)(uintptr_t)url;
	argv[2] = NULL;
	if (posix_spawn_file_actions_init(&fa) != 0)
		return;
	posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
	/* Missing xdg-open (or no desktop) is fine: the URL is printed. */
	if (posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ) == 0)
		(void)waitpid(pid, NULL, WNOHANG);
	posix_spawn_file_actions_destroy(&fa);
}

static int
cmd_login(struct ctx *x)
{
	fls_device_auth auth;
	char token[STATE_TOKEN_CAP];
	char host[64];
	struct sigaction sa;
	const char *server = x->o.server ? x->o.server : x->st.server;
	fls_status s;
	int rc, t;

	if (server == NULL || server[0] == '\0')
		return report(x, EX_USAGE, "usage", "login needs --server URL");
	s = fls_client_new(server, x->o.insecure_http, &x->c);
	if (s != FLS_OK)
		return report(x, EX_USAGE, "bad_server", "the server URL must "
		    "be https://HOST[:PORT] (http:// only for loopback or with "
		    "--insecure-http), without a path");
	if (gethostname(host, sizeof(host)) != 0)
		snprintf(host, sizeof(host), "flamingo-sync");
	host[sizeof(host) - 1] = '\0';
	s = fls_device_init(x->c, x->o.device_name ? x->o.device_name : host,
	    "linux", &auth);
	if (s != FLS_OK)
		return report_client(x, s, "cannot start the login");
	if (x->o.json) {
		emit(json_pack("{s:s,s:s,s:i}", "user_code", auth.user_code,
		    "url", auth.url, "expires_in", (int)auth.expires_in));
	} else {
		printf("To authorize this device, open\n\n    %s\n\n"
		    "and check that the page shows the code  %s\n\n"
		    "Waiting for authorization (the request expires in %ld "
		    "minutes)...\n", auth.url, auth.user_code,
		    (auth.expires_in + 59) / 60);
		fflush(stdout);
	}
	if (!x->o.no_browser && getenv("FLAMINGO_SYNC_NO_BROWSER") == NULL)
		open_browser(auth.url);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	s = fls_device_wait(x->c, &auth, token, sizeof(token),
	    (volatile const int *)(uintptr_t)&interrupted);
	if (s != FLS_OK) {
		fls_device_auth_clear(&auth);
		sodium_memzero(token, sizeof(token));
		if (interrupted)
			return report(x, EX_LOGIN, "cancelled", "login cancelled");
		if (s == FLS_ERR_DENIED)
			return report(x, EX_LOGIN, "access_denied", "the login "
			    "was denied in the browser");
		if (s == FLS_ERR_EXPIRED)
			return report(x, EX_LOGIN, "expired_token", "the login "
			    "request expired; run flamingo-sync login again");
		return report_client(x, s, "login failed");
	}
	snprintf(x->st.server, sizeof(x->st.server), "%s", server);
	memcpy(x->st.token, token, strlen(token) + 1);
	snprintf(x->st.device_id, sizeof(x->st.device_id), "%s",
	    auth.device_id);
	x->st.key_version = 0;
	x->st.cursor = 0;
	for (t = 0; t < FLS_TYPE_COUNT; t++)
		x->st.versions[t] = -1;
	fls_device_auth_clear(&auth);
	sodium_memzero(token, sizeof(token));
	rc = save_state(x);
	if (rc != 0)
		return rc;
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:s}", "ok", 1, "server",
		    x->st.server, "device_id", x->st.device_id));
	else
		printf("Logged in to %s.\n", x->st.server);
	return 0;
}

static int
cmd_status(struct ctx *x)
{
	fls_item_meta items[FLS_TYPE_COUNT];
	uint32_t kv = 0;
	size_t n = 0, i;
	fls_status s;
	json_t *arr;
	int rc = connect_logged_in(x);

	if (rc != 0)
		return rc;
	s = fls_key_status(x->c, &kv);
	if (s == FLS_OK)
		s = fls_list(x->c, items, &n);
	if (s != FLS_OK)
		return report_client(x, s, "cannot read the status");
	note_key_version(x, kv);
	if ((rc = save_state(x)) != 0)
		return rc;
	if (x->o.json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s,s:I}", "type",
			    fls_type_name(items[i].type), "version",
			    (json_int_t)items[i].version));
		emit(json_pack("{s:b,s:s,s:s,s:I,s:o}", "ok", 1, "server",
		    x->st.server, "device_id", x->st.device_id, "key_version",
		    (json_int_t)kv, "items", arr));
		return 0;
	}
	printf("server:      %s\ndevice:      %s\nkey version: ", x->st.server,
	    x->st.device_id[0] ? x->st.device_id : "(unknown)");
	if (kv == 0)
		printf("none (run flamingo-sync key init)\n");
	else
		printf("%" PRIu32 "\n", kv);
	printf("stored:      %zu of %d types\n", n, FLS_TYPE_COUNT);
	return 0;
}

static int
cmd_list(struct ctx *x)
{
	fls_item_meta items[FLS_TYPE_COUNT];
	size_t n = 0, i;
	fls_status s;
	json_t *arr;
	int rc = connect_logged_in(x);

	if (rc != 0)
		return rc;
	s = fls_list(x->c, items, &n);
	if (s != FLS_OK)
		return report_client(x, s, "cannot list the data");
	if (x->o.json) {
		arr = json_array();
		for (i = 0; i < n; i++)
			json_array_append_new(arr, json_pack(
			    "{s:s,s:I,s:I,s:I,s:s,s:s}", "type",
			    fls_type_name(items[i].type), "version",
			    (json_int_t)items[i].version, "key_version",
			    (json_int_t)items[i].key_version, "size",
			    (json_int_t)items[i].size, "updated_at",
			    items[i].updated_at, "updated_by_device",
			    items[i].updated_by_device));
		emit(json_pack("{s:b,s:o}", "ok", 1, "items", arr));
		return 0;
	}
	printf("%-12s %8s %8s %10s  %s\n", "TYPE", "VERSION", "KEY", "BYTES",
	    "UPDATED");
	for (i = 0; i < n; i++)
		printf("%-12s %8" PRId64 " %8" PRIu32 " %10" PRIu64 "  %s\n",
		    fls_type_name(items[i].type), items[i].version,
		    items[i].key_version, items[i].size, items[i].updated_at);
	return 0;
}

static int
cmd_push(struct ctx *x)
{
	unsigned char *data = NULL;
	size_t len = 0;
	fls_item_meta meta;
	fls_key *k = NULL;
	int64_t base;
	fls_status s;
	int type, rc;
	char msg[512];

	if (x->o.nargs != 2)
		return report(x, EX_USAGE, "usage", "usage: push TYPE FILE|-");
	if ((rc = parse_type(x, x->o.args[0], &type)) != 0 ||
	    (rc = connect_logged_in(x)) != 0 ||
	    (rc = read_input(x, x->o.args[1], &data, &len)) != 0)
		return rc;
	if ((rc = load_key(x, &k)) != 0)
		goto done;
	if (x->o.force)
		base = FLS_NO_BASE;
	else if (x->o.base_version >= 0)
		base = x->o.base_version;
	else
		base = x->st.versions[type] >= 0 ? x->st.versions[type] : 0;
	s = fls_push(x->c, k, type, data, len, base, &meta);
	if (s == FLS_ERR_CONFLICT) {
		snprintf(msg, sizeof(msg), "conflict: the server holds version "
		    "%" PRId64 " of %s (updated %s), but this device last saw "
		    "version %" PRId64 ". Pull and merge, then push again; or "
		    "push --force to overwrite it (last writer wins)",
		    meta.version, fls_type_name(type), meta.updated_at, base);
		rc = EX_CONFLICT;
		fprintf(stderr, "flamingo-sync: %s\n", msg);
		if (x->o.json)
			emit(json_pack("{s:b,s:s,s:s,s:i,s:I,s:I}", "ok", 0,
			    "error", "conflict", "message", msg, "exit", rc,
			    "server_version", (json_int_t)meta.version,
			    "base_version", (json_int_t)base));
		goto done;
	}
	if (s == FLS_ERR_KEY_CHANGED) {
		rc = report(x, EX_CONFLICT, "key_version_mismatch", "the key "
		    "was rotated on another device meanwhile; run the command "
		    "again");
		goto done;
	}
	if (s != FLS_OK) {
		rc = report_client(x, s, "cannot push");
		goto done;
	}
	x->st.versions[type] = meta.version;
	if ((rc = save_state(x)) != 0)
		goto done;
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:I,s:I}", "ok", 1, "type",
		    fls_type_name(type), "version", (json_int_t)meta.version,
		    "key_version", (json_int_t)meta.key_version));
	else
		printf("Pushed %s: version %" PRId64 " (%zu bytes encrypted "
		    "under key version %" PRIu32 ").\n", fls_type_name(type),
		    meta.version, len, meta.key_version);
done:
	fls_key_free(k);
	fls_buf_free(data, len);
	return rc;
}

static int
cmd_pull(struct ctx *x)
{
	unsigned char *data = NULL;
	size_t len = 0;
	fls_item_meta meta;
	fls_key *k = NULL;
	fls_status s;
	int type, rc;

	if (x->o.nargs < 1 || x->o.nargs > 2)
		return report(x, EX_USAGE, "usage", "usage: pull TYPE [FILE]");
	if ((rc = parse_type(x, x->o.args[0], &type)) != 0 ||
	    (rc = connect_logged_in(x)) != 0 || (rc = load_key(x, &k)) != 0)
		goto done;
	s = fls_pull(x->c, k, type, &data, &len, &meta);
	if (s == FLS_ERR_NOT_FOUND) {
		rc = report(x, EX_NOTFOUND, "not_found", "nothing is stored "
		    "for this type");
		goto done;
	}
	if (s != FLS_OK) {
		rc = report_client(x, s, "cannot pull");
		goto done;
	}
	if (x->o.nargs == 2 || !x->o.json) {
		rc = write_output(x, x->o.nargs == 2 ? x->o.args[1] : NULL, data,
		    len);
		if (rc != 0)
			goto done;
	}
	x->st.versions[type] = meta.version;
	if ((rc = save_state(x)) != 0)
		goto done;
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:I,s:I,s:I}", "ok", 1, "type",
		    fls_type_name(type), "version", (json_int_t)meta.version,
		    "key_version", (json_int_t)meta.key_version, "bytes",
		    (json_int_t)len));
	else if (x->o.nargs == 2)
		fprintf(stderr, "Pulled %s: version %" PRId64 ", %zu bytes.\n",
		    fls_type_name(type), meta.version, len);
done:
	fls_key_free(k);
	fls_buf_free(data, len);
	return rc;
}

static int
cmd_delete(struct ctx *x)
{
	int64_t base, nv = 0;
	fls_status s;
	int type, rc;

	if (x->o.nargs != 1)
		return report(x, EX_USAGE, "usage", "usage: delete TYPE");
	if ((rc = parse_type(x, x->o.args[0], &type)) != 0 ||
	    (rc = connect_logged_in(x)) != 0)
		return rc;
	base = x->o.force ? FLS_NO_BASE : x->o.base_version >= 0 ?
	    x->o.base_version : x->st.versions[type];
	s = fls_delete(x->c, type, base < 0 ? FLS_NO_BASE : base, &nv);
	if (s == FLS_ERR_CONFLICT)
		return report(x, EX_CONFLICT, "conflict", "conflict: the "
		    "server holds a version this device has not seen; pull "
		    "first, or delete --force");
	if (s == FLS_ERR_NOT_FOUND)
		return report(x, EX_NOTFOUND, "not_found", "nothing is stored "
		    "for this type");
	if (s != FLS_OK)
		return report_client(x, s, "cannot delete");
	x->st.versions[type] = nv;
	if ((rc = save_state(x)) != 0)
		return rc;
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:I}", "ok", 1, "type",
		    fls_type_name(type), "version", (json_int_t)nv));
	else
		printf("Deleted %s (version %" PRId64 ").\n",
		    fls_type_name(type), nv);
	return 0;
}

/* One event as `watch` prints it (a JSON line with --json). */
static void
print_event(struct ctx *x, const fls_event *e)
{
	bool own = x->st.device_id[0] != '\0' &&
	    strcmp(e->origin_device_id, x->st.device_id) == 0;

	if (x->o.json)
		emit(json_pack("{s:I,s:s,s:s?,s:I,s:b,s:s}", "id",
		    (json_int_t)e->id, "type", e->type, "data_type",
		    e->data_type >= 0 ? fls_type_name(e->data_type) : NULL,
		    "version", (json_int_t)e->version, "own", own,
		    "created_at", e->created_at));
	else {
		char ver[24] = "-";

		if (e->version >= 0)
			snprintf(ver, sizeof(ver), "%" PRId64, e->version);
		printf("%s  %-15s %-12s %8s%s\n", e->created_at, e->type,
		    e->data_type >= 0 ? fls_type_name(e->data_type) : "-", ver,
		    own ? "  (this device)" : "");
	}
	fflush(stdout);
}

/* The server pruned events this device had not seen (stream or poll). */
static void
report_resync(struct ctx *x, const fls_event *e)
{
	if (x->o.json)
		emit(json_pack("{s:s,s:I}", "type", "resync", "next",
		    (json_int_t)e->id));
	fprintf(stderr, "flamingo-sync: older events were pruned on the "
	    "server; pull every type to catch up\n");
}

/* watch by long-polling: --poll, --once, or a server without a stream. */
static int
watch_poll(struct ctx *x)
{
	fls_event ev[100];
	size_t n, i;
	long backoff = 0;
	fls_status s;
	int rc;

	while (!interrupted) {
		int64_t next = x->st.cursor;

		s = fls_events_wait(x->c, x->st.cursor, x->o.once ? 0 : 25, ev,
		    sizeof(ev) / sizeof(ev[0]), &n, &next);
		if (s == FLS_ERR_NETWORK || s == FLS_ERR_RATE_LIMITED ||
		    (s == FLS_ERR_SERVER &&
		    fls_client_error(x->c)->http_status >= 500)) {
			if (x->o.once)
				return report_client(x, s, "cannot watch");
			backoff = backoff == 0 ? 1 : backoff * 2 > 30 ? 30 :
			    backoff * 2;
			fprintf(stderr, "flamingo-sync: %s; retrying in %ld s\n",
			    fls_client_error(x->c)->message, backoff);
			sleep((unsigned)backoff);
			continue;
		}
		if (s != FLS_OK)
			return report_client(x, s, "cannot watch");
		backoff = 0;
		for (i = 0; i < n; i++) {
			if (strcmp(ev[i].type, "resync") == 0)
				report_resync(x, &ev[i]);
			else
				print_event(x, &ev[i]);
		}
		x->st.cursor = next;
		if ((rc = save_state(x)) != 0)
			return rc;
		if (x->o.once)
			break;
	}
	return 0;
}

struct watch_stream {
	struct ctx *x;
	int rc;                 /* a local failure (saving the cursor) */
};

static int
on_stream_event(void *arg, fls_stream_kind kind, const fls_event *e)
{
	struct watch_stream *w = arg;
	struct ctx *x = w->x;

	if (kind == FLS_STREAM_RESYNC) {
		report_resync(x, e);
	} else {
		print_event(x, e);
	}
	x->st.cursor = e->id;
	w->rc = save_state(x);
	return w->rc != 0 || interrupted;
}

/* watch on the server's event stream; long-polls when it has none. */
static int
cmd_watch(struct ctx *x)
{
	struct watch_stream w = { x, 0 };
	struct sigaction sa;
	fls_status s;
	int rc = connect_logged_in(x);

	if (rc != 0)
		return rc;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigint;
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	if (x->o.once || x->o.poll)
		return watch_poll(x);
	fls_client_set_device_id(x->c, x->st.device_id);
	s = fls_events_stream(x->c, x->st.cursor, on_stream_event, &w,
	    (volatile const int *)(uintptr_t)&interrupted);
	if (w.rc != 0)
		return w.rc;
	if (s == FLS_ERR_NOT_FOUND) {
		/* an older server, without the stream endpoint */
		return watch_poll(x);
	}
	if (s != FLS_OK)
		return report_client(x, s, "cannot watch");
	return 0;
}

static int
cmd_key(struct ctx *x)
{
	const char *sub = x->o.nargs > 0 ? x->o.args[0] : "";
	char *pass = NULL, *npass = NULL;
	size_t plen = 0, nlen = 0;
	fls_key *k = NULL;
	uint32_t v = 0;
	fls_status s;
	int rc;

	if (x->o.nargs != 1 || (strcmp(sub, "init") != 0 &&
	    strcmp(sub, "rotate") != 0 && strcmp(sub, "change-passphrase")))
		return report(x, EX_USAGE, "usage",
		    "usage: key init|rotate|change-passphrase");
	if ((rc = connect_logged_in(x)) != 0)
		return rc;
	if (strcmp(sub, "init") == 0) {
		if ((rc = read_new_pass(x, "FLAMINGO_SYNC_PASSPHRASE", &pass,
		    &plen)) != 0)
			return rc;
		s = fls_key_create(x->c, pass, plen, &k);
		if (s != FLS_OK) {
			rc = report_client(x, s, "cannot create the key");
			goto done;
		}
		v = fls_key_version(k);
	} else if (strcmp(sub, "rotate") == 0) {
		if ((rc = get_pass(x, &pass, &plen)) != 0)
			return rc;
		s = fls_key_rotate(x->c, pass, plen, &k);
		if (s != FLS_OK) {
			rc = report_client(x, s, "cannot rotate the key");
			goto done;
		}
		v = fls_key_version(k);
	} else {
		if ((rc = read_pass("FLAMINGO_SYNC_PASSPHRASE",
		    "Current sync passphrase: ", &pass, &plen)) != 0) {
			rc = report(x, EX_USAGE, "no_passphrase",
			    "could not read the current passphrase");
			goto done;
		}
		if ((rc = read_new_pass(x, "FLAMINGO_SYNC_NEW_PASSPHRASE",
		    &npass, &nlen)) != 0)
			goto done;
		s = fls_key_change_passphrase(x->c, pass, plen, npass, nlen, &v);
		if (s != FLS_OK) {
			rc = report_client(x, s, "cannot change the passphrase");
			goto done;
		}
	}
	x->st.key_version = v;
	if (strcmp(sub, "rotate") == 0) {
		/* Every stored type got a new version: refresh them. */
		fls_item_meta items[FLS_TYPE_COUNT];
		size_t n = 0, i;

		if (fls_list(x->c, items, &n) == FLS_OK)
			for (i = 0; i < n; i++)
				x->st.versions[items[i].type] = items[i].version;
	}
	if ((rc = save_state(x)) != 0)
		goto done;
	if (x->o.json)
		emit(json_pack("{s:b,s:s,s:I}", "ok", 1, "key", sub,
		    "key_version", (json_int_t)v));
	else if (strcmp(sub, "init") == 0)
		printf("Created the encryption key (version %" PRIu32 "). Keep "
		    "the passphrase safe: without it the data cannot be "
		    "read.\n", v);
	else if (strcmp(sub, "rotate") == 0)
		printf("Rotated the encryption key (now version %" PRIu32 "); "
		    "every stored type was re-encrypted.\n", v);
	else
		printf("Changed the sync passphrase (key version %" PRIu32 "). "
		    "Other devices need the new passphrase.\n", v);
done:
	fls_key_free(k);
	if (pass != NULL)
		sodium_free(pass);
	if (npass != NULL)
		sodium_free(npass);
	return rc;
}

static int
cmd_config(struct ctx *x)
{
	bool en[FLS_TYPE_COUNT];
	fls_status s;
	json_t *obj;
	int t, rc;

	if ((rc = connect_logged_in(x)) != 0)
		return rc;
	if (x->o.nargs == 3 && strcmp(x->o.args[0], "set") == 0) {
		bool on = strcmp(x->o.args[2], "on") == 0;

		if (!on && strcmp(x->o.args[2], "off") != 0)
			return report(x, EX_USAGE, "usage",
			    "usage: config set TYPE on|off");
		if ((rc = parse_type(x, x->o.args[1], &t)) != 0)
			return rc;
		s = fls_config_set(x->c, t, on);
		if (s != FLS_OK)
			return report_client(x, s, "cannot change the config");
	} else if (!(x->o.nargs == 1 && strcmp(x->o.args[0], "show") == 0)) {
		return report(x, EX_USAGE, "usage",
		    "usage: config show | config set TYPE on|off");
	}
	s = fls_config_get(x->c, en);
	if (s != FLS_OK)
		return report_client(x, s, "cannot read the config");
	obj = json_object();
	for (t = 0; t < FLS_TYPE_COUNT; t++) {
		if (x->o.json)
			json_object_set_new(obj, fls_type_name(t),
			    json_boolean(en[t]));
		else
			printf("%-12s %s\n", fls_type_name(t), en[t] ? "on" :
			    "off");
	}
	if (x->o.json)
		emit(obj);
	else
		json_decref(obj);
	return 0;
}

static int
cmd_devices(struct ctx *x)
{
	fls_device *d = NULL;
	size_t n = 0, i;
	fls_status s;
	json_t *arr;
	int rc;

	if ((rc = connect_logged_in(x)) != 0)
		return rc;
	if (x->o.nargs == 2 && strcmp(x->o.args[0], "revoke") == 0) {
		s = fls_device_revoke(x->c, x->o.args[1]);
		if (s == FLS_ERR_NOT_FOUND)
			return report(x, EX_NOTFOUND, "not_found",
			    "no such device");
		if (s != FLS_OK)
			return report_client(x, s, "cannot revoke the device");
		if (x->o.json)
			emit(json_pack("{s:b,s:s}", "ok", 1, "revoked",
			    x->o.args[1]));
		else
			printf("Revoked device %s.\n", x->o.args[1]);
		return 0;
	}
	if (x->o.nargs != 0)
		return report(x, EX_USAGE, "usage",
		    "usage: devices [revoke ID]");
	s = fls_devices_list(x->c, &d, &n);
	if (s != FLS_OK)
		return report_client(x, s, "cannot list the devices");
	arr = json_array();
	for (i = 0; i < n; i++) {
		if (x->o.json)
			json_array_append_new(arr, json_pack(
			    "{s:s,s:s,s:s,s:s,s:s,s:b}", "id", d[i].id, "name",
			    d[i].name, "platform", d[i].platform, "status",
			    d[i].status, "last_seen_at", d[i].last_seen_at,
			    "current", d[i].current));
		else
			printf("%-36s %-10s %-20s %s%s\n", d[i].id, d[i].status,
			    d[i].name, d[i].last_seen_at,
			    d[i].current ? "  (this device)" : "");
	}
	if (x->o.json)
		emit(json_pack("{s:b,s:o}", "ok", 1, "devices", arr));
	else
		json_decref(arr);
	free(d);
	return 0;
}

static int
cmd_logout(struct ctx *x)
{
	fls_status s;
	int rc;

	if ((rc = connect_logged_in(x)) != 0)
		return rc;
	s = fls_session_revoke(x->c);
	/* Already revoked or expired: forgetting the token is all that's left. */
	if (s != FLS_OK && s != FLS_ERR_UNAUTHORIZED)
		return report_client(x, s, "cannot log out");
	sodium_memzero(x->st.token, STATE_TOKEN_CAP);
	if ((rc = save_state(x)) != 0)
		return rc;
	if (x->o.json)
		emit(json_pack("{s:b}", "ok", 1));
	else
		printf("Logged out; this device's session has ended.\n");
	return 0;
}

/* ---- main --------------------------------------------------------------- */

static int
parse_args(struct ctx *x, int argc, char **argv, const char **cmd)
{
	int i;

	*cmd = NULL;
	x->o.base_version = -1;
	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--json") == 0)
			x->o.json = true;
		else if (strcmp(a, "--force") == 0)
			x->o.force = true;
		else if (strcmp(a, "--no-browser") == 0)
			x->o.no_browser = true;
		else if (strcmp(a, "--insecure-http") == 0)
			x->o.insecure_http = true;
		else if (strcmp(a, "--once") == 0)
			x->o.once = true;
		else if (strcmp(a, "--poll") == 0)
			x->o.poll = true;
		else if (strcmp(a, "--server") == 0 && i + 1 < argc)
			x->o.server = argv[++i];
		else if (strcmp(a, "--device-name") == 0 && i + 1 < argc)
			x->o.device_name = argv[++i];
		else if (strcmp(a, "--base-version") == 0 && i + 1 < argc) {
			char *end;

			errno = 0;
			x->o.base_version = strtoll(argv[++i], &end, 10);
			if (errno != 0 || *end != '\0' || x->o.base_version < 0)
				return -1;
		} else if (strcmp(a, "-") != 0 && a[0] == '-')
			return -1;
		else if (*cmd == NULL)
			*cmd = a;
		else if (x->o.nargs < 4)
			x->o.args[x->o.nargs++] = a;
		else
			return -1;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct ctx *);
	} cmds[] = {
		{ "login", cmd_login }, { "status", cmd_status },
		{ "push", cmd_push }, { "pull", cmd_pull },
		{ "list", cmd_list }, { "delete", cmd_delete },
		{ "watch", cmd_watch }, { "key", cmd_key },
		{ "config", cmd_config }, { "devices", cmd_devices },
		{ "logout", cmd_logout },
	};
	struct ctx x;
	const char *cmd = NULL;
	char err[512];
	size_t i;
	int rc = EX_USAGE, a;

	memset(&x, 0, sizeof(x));
	for (a = 1; a < argc; a++) {
		if (strcmp(argv[a], "--help") == 0 || strcmp(argv[a], "-h") == 0) {
			usage(stdout);
			return EX_OK;
		}
		if (strcmp(argv[a], "--version") == 0) {
			printf("flamingo-sync %s\n", FLS_VERSION_STRING);
			return EX_OK;
		}
	}
	if (parse_args(&x, argc, argv, &cmd) != 0 || cmd == NULL) {
		usage(stderr);
		return EX_USAGE;
	}
	umask(077);
	if (fls_init() != FLS_OK) {
		fprintf(stderr, "flamingo-sync: cannot initialise libsodium\n");
		return EX_ERROR;
	}
	if (cli_state_load(&x.st, err, sizeof(err)) != 0) {
		rc = report(&x, EX_ERROR, "io", err);
		goto done;
	}
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(cmd, cmds[i].name) == 0)
			break;
	if (i == sizeof(cmds) / sizeof(cmds[0])) {
		usage(stderr);
		goto done;
	}
	rc = cmds[i].fn(&x);
done:
	fls_client_free(x.c);
	cli_state_free(&x.st);
	return rc;
}
