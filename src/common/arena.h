/*
 * arena: per-request bump allocator. Everything allocated from an arena is
 * released at once by arena_free(); nothing is freed individually.
 */
#ifndef FLM_ARENA_H
#define FLM_ARENA_H

#include <stddef.h>

struct arena;

/* A new, empty arena. NULL when out of memory. */
struct arena *arena_new(void);

/* Releases every allocation and the arena itself. NULL is a no-op. */
void arena_free(struct arena *a);

/* n bytes aligned for any type, uninitialised; NULL on overflow or OOM. */
void *arena_alloc(struct arena *a, size_t n);

/* As arena_alloc, zero-filled; count * size is checked for overflow. */
void *arena_calloc(struct arena *a, size_t count, size_t size);

/* Copies of strings / byte ranges, NUL-terminated. NULL on OOM. */
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
void *arena_memdup(struct arena *a, const void *p, size_t n);

/* printf into the arena. NULL on OOM or encoding error. */
char *arena_printf(struct arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Bytes currently held by the arena (for limits and metrics). */
size_t arena_used(const struct arena *a);

#endif
