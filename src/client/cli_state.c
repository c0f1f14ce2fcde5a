#include "client/cli_state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#define STATE_FILE_MAX (64 * 1024)

static int
errf(char *err, size_t cap, const char *what, const char *path)
{
	snprintf(err, cap, "%s %s: %s", what, path, strerror(errno));
	return -1;
}

static int
mkdir_p(char *path, mode_t mode)
{
	char *p;

	for (p = path + 1; *p != '\0'; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(path, 0700) != 0 && errno != EEXIST) {
			*p = '/';
			return -1;
		}
		*p = '/';
	}
	if (mkdir(path, mode) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

static void
copy(char *out, size_t cap, json_t *v)
{
	if (json_is_string(v) && json_string_length(v) < cap)
		memcpy(out, json_string_value(v), json_string_length(v) + 1);
	else
		out[0] = '\0';
}

int
cli_state_load(struct cli_state *s, char *err, size_t cap)
{
	const char *xdg = getenv("XDG_CONFIG_HOME");
	const char *home = getenv("HOME");
	struct stat st;
	json_t *root = NULL, *v, *vers;
	json_error_t jerr;
	char *buf = NULL;
	ssize_t got;
	int fd = -1, n, rc = -1, t;

	memset(s, 0, sizeof(*s));
	for (t = 0; t < FLS_TYPE_COUNT; t++)
		s->versions[t] = -1;
	s->token = sodium_malloc(STATE_TOKEN_CAP);
	if (s->token == NULL) {
		snprintf(err, cap, "out of memory");
		return -1;
	}
	s->token[0] = '\0';
	if (xdg != NULL && xdg[0] == '/')
		n = snprintf(s->dir, sizeof(s->dir), "%s/flamingo-sync", xdg);
	else if (home != NULL && home[0] == '/')
		n = snprintf(s->dir, sizeof(s->dir), "%s/.config/flamingo-sync",
		    home);
	else {
		snprintf(err, cap, "neither XDG_CONFIG_HOME nor HOME is an "
		    "absolute path");
		return -1;
	}
	if (n < 0 || (size_t)n >= sizeof(s->dir) ||
	    snprintf(s->path, sizeof(s->path), "%s/state.json", s->dir) >=
	    (int)sizeof(s->path)) {
		snprintf(err, cap, "configuration path too long");
		return -1;
	}
	if (mkdir_p(s->dir, 0700) != 0)
		return errf(err, cap, "cannot create", s->dir);
	if (stat(s->dir, &st) != 0)
		return errf(err, cap, "cannot read", s->dir);
	if ((st.st_mode & 077) != 0 && chmod(s->dir, 0700) != 0)
		return errf(err, cap, "cannot restrict", s->dir);
	fd = open(s->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 0;
		return errf(err, cap, "cannot open", s->path);
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) ||
	    st.st_size > STATE_FILE_MAX) {
		snprintf(err, cap, "%s is not a small regular file", s->path);
		goto done;
	}
	if ((st.st_mode & 077) != 0 && fchmod(fd, 0600) != 0) {
		errf(err, cap, "cannot restrict", s->path);
		goto done;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		snprintf(err, cap, "out of memory");
		goto done;
	}
	got = read(fd, buf, (size_t)st.st_size);
	if (got != st.st_size) {
		errf(err, cap, "cannot read", s->path);
		goto done;
	}
	root = json_loadb(buf, (size_t)got, JSON_REJECT_DUPLICATES, &jerr);
	if (!json_is_object(root)) {
		snprintf(err, cap, "%s is not valid JSON; remove it and run "
		    "flamingo-sync login", s->path);
		goto done;
	}
	copy(s->server, sizeof(s->server), json_object_get(root, "server"));
	copy(s->token, STATE_TOKEN_CAP, json_object_get(root, "token"));
	copy(s->device_id, sizeof(s->device_id),
	    json_object_get(root, "device_id"));
	v = json_object_get(root, "key_version");
	if (json_is_integer(v) && json_integer_value(v) > 0 &&
	    json_integer_value(v) <= UINT32_MAX)
		s->key_version = (uint32_t)json_integer_value(v);
	v = json_object_get(root, "event_cursor");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		s->cursor = json_integer_value(v);
	vers = json_object_get(root, "versions");
	for (t = 0; json_is_object(vers) && t < FLS_TYPE_COUNT; t++) {
		v = json_object_get(vers, fls_type_name(t));
		if (json_is_integer(v) && json_integer_value(v) >= 0)
			s->versions[t] = json_integer_value(v);
	}
	rc = 0;
done:
	if (buf != NULL) {
		sodium_memzero(buf, (size_t)st.st_size);
		free(buf);
	}
	json_decref(root);
	close(fd);
	return rc;
}

int
cli_state_save(const struct cli_state *s, char *err, size_t cap)
{
	char tmp[PATH_MAX + 16];
	json_t *root = NULL, *vers = NULL;
	char *text = NULL;
	size_t len = 0;
	int fd = -1, dfd = -1, rc = -1, t;

	if (snprintf(tmp, sizeof(tmp), "%s.tmp", s->path) >= (int)sizeof(tmp)) {
		snprintf(err, cap, "configuration path too long");
		return -1;
	}
	vers = json_object();
	root = json_pack("{s:s,s:s,s:s,s:I,s:I}", "server", s->server,
	    "token", s->token, "device_id", s->device_id, "key_version",
	    (json_int_t)s->key_version, "event_cursor", (json_int_t)s->cursor);
	if (root == NULL || vers == NULL)
		goto nomem;
	for (t = 0; t < FLS_TYPE_COUNT; t++)
		if (s->versions[t] >= 0 && json_object_set_new(vers,
		    fls_type_name(t), json_integer(s->versions[t])) != 0)
			goto nomem;
	if (json_object_set(root, "versions", vers) != 0)
		goto nomem;
	text = json_dumps(root, JSON_INDENT(2));
	if (text == NULL)
		goto nomem;
	len = strlen(text);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		errf(err, cap, "cannot write", tmp);
		goto done;
	}
	if (write(fd, text, len) != (ssize_t)len || write(fd, "\n", 1) != 1 ||
	    fsync(fd) != 0) {
		errf(err, cap, "cannot write", tmp);
		unlink(tmp);
		goto done;
	}
	if (rename(tmp, s->path) != 0) {
		errf(err, cap, "cannot replace", s->path);
		unlink(tmp);
		goto done;
	}
	dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd >= 0)
		(void)fsync(dfd);
	rc = 0;
	goto done;
nomem:
	snprintf(err, cap, "out of memory");
done:
	if (text != NULL) {
		sodium_memzero(text, len);
		free(text);
	}
	if (fd >= 0)
		close(fd);
	if (dfd >= 0)
		close(dfd);
	json_decref(vers);
	json_decref(root);
	return rc;
}

void
cli_state_free(struct cli_state *s)
{
	if (s->token != NULL)
		sodium_free(s->token);
	s->token = NULL;
}
