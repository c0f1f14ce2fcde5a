/*
 * slowpool: a small bounded pool of threads for slow work that must not
 * hold a request worker: Argon2id hashing and outbound HTTPS (Turnstile).
 * The submitting request suspends itself; the job resumes it when done.
 */
#ifndef FLM_SLOWPOOL_H
#define FLM_SLOWPOOL_H

#include <stdbool.h>

struct slowpool;

typedef void (*slowpool_fn)(void *arg);

/* threads workers, at most queue_max jobs waiting; NULL on failure. */
struct slowpool *slowpool_new(int threads, int queue_max);

/* Runs the queued jobs to the end, stops the threads, frees the pool. */
void slowpool_free(struct slowpool *p);

/* Queues fn(arg) to run on a pool thread. False when the queue is full
 * (the caller answers 429). */
bool slowpool_submit(struct slowpool *p, slowpool_fn fn, void *arg);

#endif
