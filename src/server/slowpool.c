#include "slowpool.h"

#include <pthread.h>
#include <stdlib.h>

struct job {
	struct job *next;
	slowpool_fn fn;
	void *arg;
};

struct slowpool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job *head, *tail;
	int queued;
	int queue_max;
	int nthreads;
	bool stop;
	pthread_t *threads;
};

static void *
worker(void *cls)
{
	struct slowpool *p = cls;
	struct job *j;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (p->head == NULL && !p->stop)
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->head == NULL)
			break;
		j = p->head;
		p->head = j->next;
		if (p->head == NULL)
			p->tail = NULL;
		p->queued--;
		pthread_mutex_unlock(&p->lock);
		j->fn(j->arg);
		free(j);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

struct slowpool *
slowpool_new(int threads, int queue_max)
{
	struct slowpool *p;
	int i;

	p = calloc(1, sizeof(*p));
	if (p == NULL)
		return NULL;
	p->threads = calloc((size_t)threads, sizeof(pthread_t));
	if (p->threads == NULL) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	p->queue_max = queue_max;
	for (i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0)
			break;
		p->nthreads++;
	}
	if (p->nthreads == 0) {
		slowpool_free(p);
		return NULL;
	}
	return p;
}

void
slowpool_free(struct slowpool *p)
{
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p->threads);
	free(p);
}

bool
slowpool_submit(struct slowpool *p, slowpool_fn fn, void *arg)
{
	struct job *j;

	j = malloc(sizeof(*j));
	if (j == NULL)
		return false;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&p->lock);
	if (p->queued >= p->queue_max || p->stop) {
		pthread_mutex_unlock(&p->lock);
		free(j);
		return false;
	}
	if (p->tail != NULL)
		p->tail->next = j;
	else
		p->head = j;
	p->tail = j;
	p->queued++;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return true;
}
