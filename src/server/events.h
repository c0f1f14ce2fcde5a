/*
 * events: the in-process hub that wakes suspended long-polls and event
 * streams when their user has new events. Writers call events_publish()
 * after their transaction commits; a waiting request is resumed and re-reads
 * the store. A timer thread resumes waiters whose deadline has passed (the
 * end of a long-poll, the next heartbeat of a stream).
 */
#ifndef FLM_EVENTS_H
#define FLM_EVENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct events_hub;
struct req;

/* A hub with its timer thread running; NULL on failure. */
struct events_hub *events_hub_new(void);

/* Stops the timer thread and frees the hub (no waiter may remain). */
void events_hub_free(struct events_hub *hub);

/* Wakes every waiter of user_id. */
void events_publish(struct events_hub *hub, const char *user_id);

/* Wakes every waiter (shutdown). */
void events_wake_all(struct events_hub *hub);

/* Registers r (memory from r's arena) as a waiter for user_id until the
 * monotonic deadline. False when out of memory. */
bool events_wait_begin(struct events_hub *hub, struct req *r,
    const char *user_id, int64_t deadline_mono);

enum events_admit {
	EVENTS_ADMITTED = 0,
	EVENTS_FULL,       /* STREAMS_MAX streams are open */
	EVENTS_USER_FULL,  /* the user has STREAMS_PER_USER streams open */
	EVENTS_NOMEM
};

#define EVENTS_OWNER_MAX 40

/*
 * Registers r as an event stream of user_id, unless that would make more
 * than max_total streams in all or max_user for the user. owner (at most
 * EVENTS_OWNER_MAX bytes) names the credential: when the user is at
 * max_user, a stream of the same owner takes the place of that owner's
 * oldest, which is woken and must end (events_stream_replaced).
 */
enum events_admit events_stream_begin(struct events_hub *hub, struct req *r,
    const char *user_id, const void *owner, size_t owner_len,
    int64_t deadline_mono, int max_total, int max_user);

/* Whether a newer stream of r's owner took r's place: end it. */
bool events_stream_replaced(struct events_hub *hub, struct req *r);

/* Moves r's wake-up deadline (a stream's next heartbeat). */
void events_wait_deadline(struct events_hub *hub, struct req *r,
    int64_t deadline_mono);

/* Forgets earlier wake-ups: call before each read of the store. */
void events_wait_arm(struct events_hub *hub, struct req *r);

/* Suspends r unless it was woken since the last arm; true when suspended
 * (the handler then returns and is called again on wake-up). */
bool events_wait_suspend(struct events_hub *hub, struct req *r);

/* Unregisters r; idempotent. */
void events_wait_end(struct events_hub *hub, struct req *r);

/* Waiting long-polls and open streams, counted together (for metrics). */
void events_counts(struct events_hub *hub, uint64_t *longpolls,
    uint64_t *streams);

#endif
