/*
 * store: picks a backend by URL, hands each thread its own connection and
 * runs transactions with bounded retries (see store.h).
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#define STORE_TX_TRIES 10
#define STORE_SCHEME_MAX 32
#define STORE_BACKOFF_MIN_US 200
#define STORE_BACKOFF_MAX_US 50000

/* One thread's connection; linked so that store_close finds them all. */
struct store_tls {
	struct store *s;
	struct store_conn *c;
	struct store_tls *prev, *next;
};

struct store {
	const struct store_ops *ops;
	void *cls;
	pthread_key_t key;
	pthread_mutex_t lock;           /* guards conns */
	struct store_tls *conns;
};

typedef enum store_status (*store_open_fn)(const char *url,
    const char *rest, const struct store_ops **ops, void **cls, char *err,
    size_t errlen);

static void __attribute__((format(printf, 3, 4)))
store_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	/* a truncated message is still one useful line */
	(void)vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static enum store_status
store_open_sqlite(const char *url, const char *rest,
    const struct store_ops **ops, void **cls, char *err, size_t errlen)
{
	/* "sqlite://x" would silently mean the absolute path "//x" */
	if (strncmp(rest, "//", 2) == 0) {
		store_err(err, errlen, "DATABASE_URL: use sqlite:PATH "
		    "(e.g. sqlite:./flamingo-sync.db), not sqlite://");
		return STORE_ERROR;
	}
	return store_sqlite_open(rest, ops, cls, err, errlen);
}

/* libpq takes the whole URL (postgres:// or postgresql://) itself. */
static enum store_status
store_open_pg(const char *url, const char *rest,
    const struct store_ops **ops, void **cls, char *err, size_t errlen)
{
	return store_pg_open(url, ops, cls, err, errlen);
}

/* The backends, by URL scheme. */
static const struct {
	const char *scheme;
	store_open_fn open;
} store_backends[] = {
	{ "sqlite", store_open_sqlite },
	{ "postgres", store_open_pg },
	{ "postgresql", store_open_pg },
};

/*
 * A libpq key=value string ("host=/run/pg dbname=flamingo"): it starts
 * with a keyword and '=', where a URL has a scheme and ':'.
 */
static bool
store_is_pg_keywords(const char *url)
{
	size_t n;

	url += strspn(url, " \t\n\r");
	n = strspn(url, "abcdefghijklmnopqrstuvwxyz_");
	if (n == 0)
		return false;
	url += n;
	url += strspn(url, " \t");
	return *url == '=';
}

/* Locking a valid default mutex cannot fail; if it does, memory is bad. */
static void
store_lock(struct store *s)
{
	if (pthread_mutex_lock(&s->lock) != 0)
		abort();
}

static void
store_unlock(struct store *s)
{
	if (pthread_mutex_unlock(&s->lock) != 0)
		abort();
}

static void
store_unlink(struct store *s, struct store_tls *t)
{
	if (t->prev != NULL)
		t->prev->next = t->next;
	else
		s->conns = t->next;
	if (t->next != NULL)
		t->next->prev = t->prev;
	t->prev = t->next = NULL;
}

/* A thread that ends closes its connection (the key's destructor). */
static void
store_tls_free(void *p)
{
	struct store_tls *t = p;
	struct store *s = t->s;

	store_lock(s);
	store_unlink(s, t);
	store_unlock(s);
	s->ops->conn_close(t->c);
	free(t);
}

struct store *
store_open(const char *url, char *err, size_t errlen)
{
	struct store *s = NULL;
	const struct store_ops *ops = NULL;
	void *cls = NULL;
	const char *colon;
	size_t i, n;

	if (url == NULL || url[0] == '\0') {
		store_err(err, errlen, "DATABASE_URL: empty (expected "
		    "sqlite:PATH or postgres://...)");
		return NULL;
	}
	if (sodium_init() < 0) {
		store_err(err, errlen, "store: libsodium failed to start");
		return NULL;
	}
	if (store_is_pg_keywords(url)) {
		i = 0;
		if (store_pg_open(url, &ops, &cls, err, errlen) != STORE_OK)
			return NULL;
		goto opened;
	}
	/*
	 * Only the scheme is ever echoed back: the rest of a URL may hold a
	 * password.
	 */
	colon = strchr(url, ':');
	n = colon != NULL ? (size_t)(colon - url) : 0;
	if (n == 0 || n > STORE_SCHEME_MAX ||
	    strspn(url, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+.-") < n) {
		store_err(err, errlen, "DATABASE_URL: malformed (expected "
		    "sqlite:PATH or postgres://...)");
		return NULL;
	}
	for (i = 0; i < sizeof(store_backends) / sizeof(store_backends[0]);
	    i++) {
		if (strlen(store_backends[i].scheme) == n &&
		    strncasecmp(url, store_backends[i].scheme, n) == 0)
			break;
	}
	if (i == sizeof(store_backends) / sizeof(store_backends[0])) {
		store_err(err, errlen, "DATABASE_URL: unsupported scheme "
		    "'%.*s' (expected sqlite:PATH or postgres://...)", (int)n,
		    url);
		return NULL;
	}
	if (store_backends[i].open(url, colon + 1, &ops, &cls, err, errlen) !=
	    STORE_OK)
		return NULL;
opened:
	if (ops == NULL || ops->version != STORE_OPS_VERSION) {
		store_err(err, errlen, "store: backend %s has interface "
		    "version %d, expected %d", ops != NULL ? ops->name : "?",
		    ops != NULL ? ops->version : -1, STORE_OPS_VERSION);
		goto bad;
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		store_err(err, errlen, "store: out of memory");
		goto bad;
	}
	s->ops = ops;
	s->cls = cls;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		store_err(err, errlen, "store: cannot create a mutex");
		goto bad;
	}
	if (pthread_key_create(&s->key, store_tls_free) != 0) {
		store_err(err, errlen, "store: cannot create a thread key");
		pthread_mutex_destroy(&s->lock);
		goto bad;
	}
	return s;
bad:
	free(s);
	if (ops != NULL)
		ops->close(cls);
	return NULL;
}

void
store_close(struct store *s)
{
	struct store_tls *t;

	if (s == NULL)
		return;
	/*
	 * Every other thread has stopped (the contract); this one's pointer
	 * is cleared so that no destructor ever sees a freed store.
	 */
	(void)pthread_setspecific(s->key, NULL);
	(void)pthread_key_delete(s->key);
	while ((t = s->conns) != NULL) {
		s->conns = t->next;
		s->ops->conn_close(t->c);
		free(t);
	}
	s->ops->close(s->cls);
	(void)pthread_mutex_destroy(&s->lock);
	free(s);
}

struct store_conn *
store_conn(struct store *s)
{
	struct store_tls *t;
	struct store_conn *c = NULL;

	if ((t = pthread_getspecific(s->key)) != NULL)
		return t->c;
	/* a failed open is tried again by the next call */
	if (s->ops->conn_open(s->cls, &c) != STORE_OK || c == NULL)
		return NULL;
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		s->ops->conn_close(c);
		return NULL;
	}
	t->s = s;
	t->c = c;
	if (pthread_setspecific(s->key, t) != 0) {
		s->ops->conn_close(c);
		free(t);
		return NULL;
	}
	store_lock(s);
	t->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = t;
	s->conns = t;
	store_unlock(s);
	return c;
}

const struct store_ops *
store_ops(const struct store *s)
{
	return s->ops;
}

const char *
store_backend(const struct store *s)
{
	return s->ops->name;
}

enum store_status
store_subscribe(struct store *s, store_notify_fn fn, void *arg)
{
	if (s->ops->subscribe == NULL)
		return STORE_OK;
	return s->ops->subscribe(s->cls, fn, arg);
}

void
store_unsubscribe(struct store *s)
{
	if (s != NULL && s->ops->unsubscribe != NULL)
		s->ops->unsubscribe(s->cls);
}

/*
 * Sleeps a random time up to a cap that doubles with each attempt ("full
 * jitter"), so that two colliding writers do not collide again in step.
 */
static void
store_backoff(int attempt)
{
	struct timespec ts, rem;
	uint32_t cap, us;

	cap = STORE_BACKOFF_MIN_US << (attempt < 8 ? attempt : 8);
	if (cap > STORE_BACKOFF_MAX_US)
		cap = STORE_BACKOFF_MAX_US;
	us = STORE_BACKOFF_MIN_US / 2 + randombytes_uniform(cap);
	ts.tv_sec = us / 1000000;
	ts.tv_nsec = (long)(us % 1000000) * 1000;
	while (nanosleep(&ts, &rem) == -1 && errno == EINTR)
		ts = rem;
}

enum store_status
store_tx(struct store *s, bool write, store_tx_fn fn, void *cls)
{
	struct store_conn *c;
	enum store_status rc;
	int attempt;

	if ((c = store_conn(s)) == NULL)
		return STORE_UNAVAILABLE;
	for (attempt = 0;; attempt++) {
		rc = c->ops->begin(c, write);
		if (rc == STORE_OK)
			rc = fn(c, cls);
		if (rc == STORE_OK)
			rc = c->ops->commit(c);
		if (rc == STORE_OK)
			return STORE_OK;
		/* also after a failed begin or commit: whatever is open ends */
		c->ops->rollback(c);
		if (rc != STORE_BUSY || attempt + 1 >= STORE_TX_TRIES)
			return rc;
		store_backoff(attempt);
	}
}
