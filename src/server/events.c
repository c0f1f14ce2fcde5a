#include "events.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "../common/timeutil.h"
#include "http.h"

#define HUB_BUCKETS 1024
#define HUB_TICK_MS 100

struct waiter {
	struct waiter *prev, *next;
	struct req *r;
	char user_id[STORE_ID_LEN + 1];
	unsigned bucket;
	int64_t deadline;
	bool notified;
	bool suspended;
	bool stream;
	bool replaced;         /* a newer stream of its owner took its place */
	unsigned char owner[EVENTS_OWNER_MAX]; /* the credential (streams) */
	size_t owner_len;
};

struct events_hub {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	pthread_t timer;
	bool stop;
	uint64_t count;
	uint64_t streams;
	struct waiter *buckets[HUB_BUCKETS];
};

static unsigned
bucket_of(const char *user_id)
{
	uint32_t h = 2166136261u;

	for (; *user_id != '\0'; user_id++)
		h = (h ^ (unsigned char)*user_id) * 16777619u;
	return h % HUB_BUCKETS;
}

/* Called with the lock held. */
static void
wake(struct waiter *w)
{
	w->notified = true;
	if (w->suspended) {
		w->suspended = false;
		req_resume(w->r);
	}
}

static void *
timer_main(void *arg)
{
	struct events_hub *hub = arg;
	struct timespec ts;
	unsigned b;
	struct waiter *w;
	int64_t now;

	pthread_mutex_lock(&hub->lock);
	while (!hub->stop) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += HUB_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&hub->cond, &hub->lock, &ts);
		if (hub->count == 0)
			continue;
		now = time_mono_ms();
		for (b = 0; b < HUB_BUCKETS; b++)
			for (w = hub->buckets[b]; w != NULL; w = w->next)
				if (w->suspended && w->deadline <= now)
					wake(w);
	}
	pthread_mutex_unlock(&hub->lock);
	return NULL;
}

struct events_hub *
events_hub_new(void)
{
	struct events_hub *hub;

	hub = calloc(1, sizeof(*hub));
	if (hub == NULL)
		return NULL;
	pthread_mutex_init(&hub->lock, NULL);
	pthread_cond_init(&hub->cond, NULL);
	if (pthread_create(&hub->timer, NULL, timer_main, hub) != 0) {
		pthread_cond_destroy(&hub->cond);
		pthread_mutex_destroy(&hub->lock);
		free(hub);
		return NULL;
	}
	return hub;
}

void
events_hub_free(struct events_hub *hub)
{
	if (hub == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	hub->stop = true;
	pthread_cond_signal(&hub->cond);
	pthread_mutex_unlock(&hub->lock);
	pthread_join(hub->timer, NULL);
	pthread_cond_destroy(&hub->cond);
	pthread_mutex_destroy(&hub->lock);
	free(hub);
}

void
events_publish(struct events_hub *hub, const char *user_id)
{
	struct waiter *w;

	pthread_mutex_lock(&hub->lock);
	for (w = hub->buckets[bucket_of(user_id)]; w != NULL; w = w->next)
		if (strcmp(w->user_id, user_id) == 0)
			wake(w);
	pthread_mutex_unlock(&hub->lock);
}

void
events_wake_all(struct events_hub *hub)
{
	unsigned b;
	struct waiter *w;

	pthread_mutex_lock(&hub->lock);
	for (b = 0; b < HUB_BUCKETS; b++)
		for (w = hub->buckets[b]; w != NULL; w = w->next)
			wake(w);
	pthread_mutex_unlock(&hub->lock);
}

/* Counts the streams of user_id in its bucket: those that keep their
 * place, and all (replaced ones end at their next write); lock held. */
static int
user_streams(struct events_hub *hub, unsigned bucket, const char *user_id,
    int *all)
{
	struct waiter *w;
	int n = 0;

	*all = 0;
	for (w = hub->buckets[bucket]; w != NULL; w = w->next)
		if (w->stream && strcmp(w->user_id, user_id) == 0) {
			(*all)++;
			if (!w->replaced)
				n++;
		}
	return n;
}

/*
 * The oldest stream of nw's user and owner that keeps its place, or NULL
 * (a bucket lists the newest first). Owners are credential digests or
 * device ids: compared as such, in constant time. Lock held.
 */
static struct waiter *
oldest_of_owner(struct events_hub *hub, const struct waiter *nw)
{
	struct waiter *w, *found = NULL;

	for (w = hub->buckets[nw->bucket]; w != NULL; w = w->next)
		if (w->stream && !w->replaced &&
		    w->owner_len == nw->owner_len &&
		    strcmp(w->user_id, nw->user_id) == 0 &&
		    sodium_memcmp(w->owner, nw->owner, nw->owner_len) == 0)
			found = w;
	return found;
}

static enum events_admit
waiter_add(struct events_hub *hub, struct req *r, const char *user_id,
    const void *owner, size_t owner_len, int64_t deadline_mono, bool stream,
    int max_total, int max_user)
{
	struct waiter *w, *old;
	enum events_admit rc = EVENTS_ADMITTED;
	int all;

	w = arena_calloc(r->arena, 1, sizeof(*w));
	if (w == NULL)
		return EVENTS_NOMEM;
	w->r = r;
	snprintf(w->user_id, sizeof(w->user_id), "%s", user_id);
	w->deadline = deadline_mono;
	w->bucket = bucket_of(user_id);
	w->stream = stream;
	if (owner_len > sizeof(w->owner))
		owner_len = sizeof(w->owner);
	if (owner_len > 0)
		memcpy(w->owner, owner, owner_len);
	w->owner_len = owner_len;
	pthread_mutex_lock(&hub->lock);
	if (stream && hub->streams >= (uint64_t)max_total) {
		rc = EVENTS_FULL;
	} else if (stream &&
	    user_streams(hub, w->bucket, user_id, &all) >= max_user) {
		/*
		 * At the account's limit, a new stream of the same credential
		 * takes the place of that credential's oldest: the old one is
		 * most likely a reloaded page or a connection that died
		 * without a goodbye (noticed only at its next write). Other
		 * credentials of the account still get EVENTS_USER_FULL.
		 */
		/* replaced streams still hold a connection until they
		 * end: never more than twice the limit in all */
		if (owner_len > 0 && all < 2 * max_user &&
		    (old = oldest_of_owner(hub, w)) != NULL) {
			old->replaced = true;
			wake(old);
		} else {
			rc = EVENTS_USER_FULL;
		}
	}
	if (rc == EVENTS_ADMITTED) {
		w->next = hub->buckets[w->bucket];
		if (w->next != NULL)
			w->next->prev = w;
		hub->buckets[w->bucket] = w;
		hub->count++;
		if (stream)
			hub->streams++;
	}
	pthread_mutex_unlock(&hub->lock);
	if (rc == EVENTS_ADMITTED)
		r->waiter = w;
	return rc;
}

bool
events_wait_begin(struct events_hub *hub, struct req *r, const char *user_id,
    int64_t deadline_mono)
{
	return waiter_add(hub, r, user_id, NULL, 0, deadline_mono, false, 0,
	    0) == EVENTS_ADMITTED;
}

enum events_admit
events_stream_begin(struct events_hub *hub, struct req *r,
    const char *user_id, const void *owner, size_t owner_len,
    int64_t deadline_mono, int max_total, int max_user)
{
	return waiter_add(hub, r, user_id, owner, owner_len, deadline_mono,
	    true, max_total, max_user);
}

bool
events_stream_replaced(struct events_hub *hub, struct req *r)
{
	struct waiter *w = r->waiter;
	bool replaced;

	pthread_mutex_lock(&hub->lock);
	replaced = w != NULL && w->replaced;
	pthread_mutex_unlock(&hub->lock);
	return replaced;
}

void
events_wait_deadline(struct events_hub *hub, struct req *r,
    int64_t deadline_mono)
{
	struct waiter *w = r->waiter;

	pthread_mutex_lock(&hub->lock);
	w->deadline = deadline_mono;
	pthread_mutex_unlock(&hub->lock);
}

void
events_wait_arm(struct events_hub *hub, struct req *r)
{
	struct waiter *w = r->waiter;

	pthread_mutex_lock(&hub->lock);
	w->notified = false;
	pthread_mutex_unlock(&hub->lock);
}

bool
events_wait_suspend(struct events_hub *hub, struct req *r)
{
	struct waiter *w = r->waiter;
	bool suspended = false;

	pthread_mutex_lock(&hub->lock);
	/* a replaced stream never sleeps again: its wake-up may have come
	 * between its check and its arm */
	if (!w->notified && !w->replaced) {
		/* Suspend under the lock: a wake-up can only come after it. */
		w->suspended = true;
		req_suspend(r);
		suspended = true;
	}
	pthread_mutex_unlock(&hub->lock);
	return suspended;
}

void
events_wait_end(struct events_hub *hub, struct req *r)
{
	struct waiter *w = r->waiter;

	if (w == NULL)
		return;
	pthread_mutex_lock(&hub->lock);
	if (w->prev != NULL)
		w->prev->next = w->next;
	else
		hub->buckets[w->bucket] = w->next;
	if (w->next != NULL)
		w->next->prev = w->prev;
	hub->count--;
	if (w->stream)
		hub->streams--;
	pthread_mutex_unlock(&hub->lock);
	r->waiter = NULL;
}

void
events_counts(struct events_hub *hub, uint64_t *longpolls, uint64_t *streams)
{
	pthread_mutex_lock(&hub->lock);
	*longpolls = hub->count - hub->streams;
	*streams = hub->streams;
	pthread_mutex_unlock(&hub->lock);
}
