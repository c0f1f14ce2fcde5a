/*
 * store: picks a backend by URL, hands each thread its own connection and
 * runs transactions with bounded retries (see store.h).
 *
 * Group commit: when the backend has savepoints for it (ops->sp_begin) and
 * write_batch_max > 1, writing transactions are queued to one writer thread
 * with a connection of its own. It takes what is queued (at most
 * write_batch_max), runs it in one transaction, each callback inside its
 * own savepoint, commits once and only then answers each caller with its
 * own status. With synchronous=FULL a commit is one fsync however many
 * transactions it carries, so concurrent writers share it instead of
 * queueing for one each.
 */
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
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

/*
 * One writing transaction waiting for the writer; on its caller's stack,
 * which waits on cv until done. The writer never touches it after setting
 * done (under wlock): the caller may return at once.
 */
struct store_wreq {
	store_tx_fn fn;
	void *cls;
	pthread_cond_t cv;
	enum store_status rc;           /* the answer, once answered */
	int attempt;                    /* busy tries so far */
	bool kept;                      /* ran and kept in the open group */
	bool failed;                    /* failed after an earlier member was
	                                   kept: its answer (frc) stands only
	                                   if that work commits */
	enum store_status frc;
	bool answered;                  /* the writer's own mark */
	bool done;                      /* under wlock: the caller may go */
	struct store_wreq *next;
};

struct store {
	const struct store_ops *ops;
	void *cls;
	pthread_key_t key;
	pthread_mutex_t lock;           /* guards conns */
	struct store_tls *conns;

	/* group commit (grouped: the writer runs) */
	bool grouped;
	int batch_max;
	pthread_t writer;
	pthread_mutex_t wlock;          /* guards the queue and stopping */
	pthread_cond_t wcv;             /* work queued, or stopping */
	struct store_wreq *head, **tail;
	struct store_wreq **group;      /* the writer's: batch_max slots */
	bool stopping;

	_Atomic uint64_t write_txs, write_commits, write_queued;
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
store_lock(pthread_mutex_t *m)
{
	if (pthread_mutex_lock(m) != 0)
		abort();
}

static void
store_unlock(pthread_mutex_t *m)
{
	if (pthread_mutex_unlock(m) != 0)
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

	store_lock(&s->lock);
	store_unlink(s, t);
	store_unlock(&s->lock);
	s->ops->conn_close(t->c);
	free(t);
}

static void *store_writer_run(void *arg);

/* Starts the writer thread of group commit; false when it cannot. */
static bool
store_writer_start(struct store *s)
{
	if ((s->group = calloc((size_t)s->batch_max, sizeof(*s->group))) ==
	    NULL)
		return false;
	if (pthread_mutex_init(&s->wlock, NULL) != 0)
		goto bad;
	if (pthread_cond_init(&s->wcv, NULL) != 0) {
		(void)pthread_mutex_destroy(&s->wlock);
		goto bad;
	}
	s->tail = &s->head;
	if (pthread_create(&s->writer, NULL, store_writer_run, s) != 0) {
		(void)pthread_cond_destroy(&s->wcv);
		(void)pthread_mutex_destroy(&s->wlock);
		goto bad;
	}
	s->grouped = true;
	return true;
bad:
	free(s->group);
	s->group = NULL;
	return false;
}

/* Lets the writer answer what is queued, then ends it. */
static void
store_writer_stop(struct store *s)
{
	if (!s->grouped)
		return;
	store_lock(&s->wlock);
	s->stopping = true;
	(void)pthread_cond_signal(&s->wcv);
	store_unlock(&s->wlock);
	(void)pthread_join(s->writer, NULL);
	(void)pthread_cond_destroy(&s->wcv);
	(void)pthread_mutex_destroy(&s->wlock);
	free(s->group);
	s->group = NULL;
	s->grouped = false;
}

struct store *
store_open(const char *url, int write_batch_max, char *err, size_t errlen)
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
	if (write_batch_max < 1 || write_batch_max > STORE_WRITE_BATCH_LIMIT) {
		store_err(err, errlen, "store: write batch of %d (expected "
		    "1..%d)", write_batch_max, STORE_WRITE_BATCH_LIMIT);
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
	s->batch_max = write_batch_max;
	if (pthread_mutex_init(&s->lock, NULL) != 0) {
		store_err(err, errlen, "store: cannot create a mutex");
		goto bad;
	}
	if (pthread_key_create(&s->key, store_tls_free) != 0) {
		store_err(err, errlen, "store: cannot create a thread key");
		pthread_mutex_destroy(&s->lock);
		goto bad;
	}
	if (ops->sp_begin != NULL && ops->sp_end != NULL &&
	    write_batch_max > 1 && !store_writer_start(s)) {
		store_err(err, errlen, "store: cannot start the writer thread");
		(void)pthread_key_delete(s->key);
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
	/* the writer's connection goes with its thread (store_tls_free) */
	store_writer_stop(s);
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
	store_lock(&s->lock);
	t->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = t;
	s->conns = t;
	store_unlock(&s->lock);
	return c;
}

void
store_stats(struct store *s, struct store_stats *out)
{
	out->write_txs = atomic_load(&s->write_txs);
	out->write_commits = atomic_load(&s->write_commits);
	out->write_queued = atomic_load(&s->write_queued);
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

/* One transaction on the calling thread's connection (no grouping). */
static enum store_status
store_tx_here(struct store *s, bool write, store_tx_fn fn, void *cls)
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
		if (rc == STORE_OK) {
			if (write) {
				atomic_fetch_add(&s->write_txs, 1);
				atomic_fetch_add(&s->write_commits, 1);
			}
			return STORE_OK;
		}
		/* also after a failed begin or commit: whatever is open ends */
		c->ops->rollback(c);
		if (rc != STORE_BUSY || attempt + 1 >= STORE_TX_TRIES)
			return rc;
		store_backoff(attempt);
	}
}

/* ---- group commit: the writer thread ------------------------------------ */

/*
 * The group g[0..n) as the writer works on it. Answered members leave the
 * group; the others are run again until each has its answer.
 */
struct store_group {
	struct store_wreq **g;
	size_t n;
	size_t left;                    /* members not answered yet */
	bool backoff;                   /* the last round hit a busy store */
	int round;
};

static void
store_group_answer(struct store_group *gr, struct store_wreq *w,
    enum store_status rc)
{
	w->rc = rc;
	w->answered = true;
	w->kept = false;
	w->failed = false;
	gr->left--;
}

/*
 * Member w failed with a retryable status: it runs again in the next
 * round, or, its tries spent, is answered STORE_BUSY.
 */
static void
store_group_busy(struct store_group *gr, struct store_wreq *w)
{
	w->kept = false;
	if (++w->attempt >= STORE_TX_TRIES)
		store_group_answer(gr, w, STORE_BUSY);
}

/*
 * The transaction ended before its commit: what the members kept so far is
 * gone, so they run again in the next round (their callbacks are safe to
 * repeat), and so do the members that failed after one of them was kept:
 * their failure may have come from work that never committed (a conflict
 * with a write that is gone). Every round that ends so answers or counts a
 * try of at least one member, so the group ends.
 */
static void
store_group_lost(struct store_group *gr, size_t upto)
{
	size_t i;

	for (i = 0; i < upto; i++) {
		gr->g[i]->kept = false;
		gr->g[i]->failed = false;
	}
}

/*
 * One round: BEGIN, each unanswered member in its own savepoint, COMMIT.
 * A member's failure undoes its savepoint only; a failed BEGIN or COMMIT
 * fails (or, when busy, retries) every member that had kept its work.
 */
static void
store_group_round(struct store *s, struct store_conn *c,
    struct store_group *gr)
{
	const struct store_ops *ops = c->ops;
	struct store_wreq *w;
	enum store_status rc, end;
	size_t i, kept = 0;

	gr->backoff = false;
	if ((rc = ops->begin(c, true)) != STORE_OK) {
		ops->rollback(c);
		for (i = 0; i < gr->n; i++) {
			if (gr->g[i]->answered)
				continue;
			if (rc == STORE_BUSY)
				store_group_busy(gr, gr->g[i]);
			else
				store_group_answer(gr, gr->g[i], rc);
		}
		gr->backoff = rc == STORE_BUSY;
		return;
	}
	for (i = 0; i < gr->n; i++) {
		w = gr->g[i];
		if (w->answered)
			continue;
		rc = ops->sp_begin(c);
		if (rc == STORE_OK)
			rc = w->fn(c, w->cls);
		end = ops->sp_end(c, rc == STORE_OK);
		if (end == STORE_OK) {
			if (rc == STORE_OK) {
				w->kept = true;
				kept++;
			} else if (rc == STORE_BUSY) {
				store_group_busy(gr, w);
				gr->backoff = true;
			} else if (kept > 0) {
				/* it saw earlier members' work: its answer
				 * waits for the commit */
				w->failed = true;
				w->frc = rc;
			} else {
				/* it saw committed data only */
				store_group_answer(gr, w, rc);
			}
			continue;
		}
		/* the transaction is gone: w gets the reason, the rest rerun */
		ops->rollback(c);
		store_group_lost(gr, i);
		if (rc == STORE_OK)
			rc = end;
		if (rc == STORE_BUSY)
			store_group_busy(gr, w);
		else
			store_group_answer(gr, w, rc);
		gr->backoff = gr->backoff || rc == STORE_BUSY;
		return;
	}
	if (kept == 0) {
		/* nothing to make durable: end the transaction without one */
		ops->rollback(c);
		return;
	}
	if ((rc = ops->commit(c)) != STORE_OK)
		ops->rollback(c);
	else
		atomic_fetch_add(&s->write_commits, 1);
	for (i = 0; i < gr->n; i++) {
		w = gr->g[i];
		if (w->failed) {
			/* final once what it saw committed; else it runs
			 * again */
			w->failed = false;
			if (rc == STORE_OK)
				store_group_answer(gr, w, w->frc);
			continue;
		}
		if (!w->kept)
			continue;
		if (rc == STORE_OK) {
			atomic_fetch_add(&s->write_txs, 1);
			store_group_answer(gr, w, STORE_OK);
		} else if (rc == STORE_BUSY) {
			store_group_busy(gr, w);
		} else {
			store_group_answer(gr, w, rc);
		}
	}
	gr->backoff = gr->backoff || rc == STORE_BUSY;
}

/* Runs group g[0..n) to its end and wakes each of its callers. */
static void
store_group_run(struct store *s, struct store_wreq **g, size_t n)
{
	struct store_group gr = { g, n, n, false, 0 };
	struct store_conn *c;
	size_t i;

	/* a failed open is tried again by the next group */
	if ((c = store_conn(s)) == NULL) {
		for (i = 0; i < n; i++)
			store_group_answer(&gr, g[i], STORE_UNAVAILABLE);
	}
	while (gr.left > 0) {
		if (gr.backoff)
			store_backoff(gr.round++);
		store_group_round(s, c, &gr);
	}
	/*
	 * done is set, and signalled, under the lock only: a caller may
	 * return (and its request go) as soon as it sees it.
	 */
	store_lock(&s->wlock);
	for (i = 0; i < n; i++) {
		g[i]->done = true;
		(void)pthread_cond_signal(&g[i]->cv);
	}
	store_unlock(&s->wlock);
}

static void *
store_writer_run(void *arg)
{
	struct store *s = arg;
	struct store_wreq *w;
	size_t n;

	for (;;) {
		store_lock(&s->wlock);
		while (s->head == NULL && !s->stopping)
			(void)pthread_cond_wait(&s->wcv, &s->wlock);
		if (s->head == NULL) {
			/* stopping, and every caller has its answer */
			store_unlock(&s->wlock);
			break;
		}
		for (n = 0; s->head != NULL && n < (size_t)s->batch_max; n++) {
			w = s->head;
			if ((s->head = w->next) == NULL)
				s->tail = &s->head;
			atomic_fetch_sub(&s->write_queued, 1);
			s->group[n] = w;
		}
		store_unlock(&s->wlock);
		store_group_run(s, s->group, n);
	}
	return NULL;
}

/*
 * Queues a writing transaction for the writer and waits for its answer,
 * which comes once the commit that carries it is durable.
 */
static enum store_status
store_tx_grouped(struct store *s, store_tx_fn fn, void *cls)
{
	struct store_wreq w;

	memset(&w, 0, sizeof(w));
	w.fn = fn;
	w.cls = cls;
	if (pthread_cond_init(&w.cv, NULL) != 0)
		return STORE_ERROR;
	store_lock(&s->wlock);
	if (s->stopping) {
		/* the contract says no caller comes now; refuse, never hang */
		store_unlock(&s->wlock);
		(void)pthread_cond_destroy(&w.cv);
		return STORE_UNAVAILABLE;
	}
	*s->tail = &w;
	s->tail = &w.next;
	atomic_fetch_add(&s->write_queued, 1);
	(void)pthread_cond_signal(&s->wcv);
	while (!w.done)
		(void)pthread_cond_wait(&w.cv, &s->wlock);
	store_unlock(&s->wlock);
	(void)pthread_cond_destroy(&w.cv);
	return w.rc;
}

enum store_status
store_tx(struct store *s, bool write, store_tx_fn fn, void *cls)
{
	if (s->grouped) {
		/*
		 * On the writer itself, only a callback can call store_tx: it
		 * runs inside that callback's savepoint, part of its work (a
		 * BEGIN here would fail, and its rollback would end the whole
		 * group's transaction).
		 */
		if (pthread_equal(pthread_self(), s->writer))
			return fn(store_conn(s), cls);
		if (write)
			return store_tx_grouped(s, fn, cls);
	}
	return store_tx_here(s, write, fn, cls);
}
