/* timeutil: clocks and RFC 3339 timestamps. Times are int64 ms since epoch. */
#ifndef FLM_TIMEUTIL_H
#define FLM_TIMEUTIL_H

#include <stdint.h>

#define RFC3339_LEN 20 /* "2026-11-25T10:00:00Z" */

/* Wall clock, milliseconds since the Unix epoch. */
int64_t time_now_ms(void);

/* Monotonic clock in milliseconds (for durations and deadlines). */
int64_t time_mono_ms(void);

/* Formats ms (truncated to the second) as "YYYY-MM-DDTHH:MM:SSZ".
 * Returns out. */
char *time_rfc3339(char out[RFC3339_LEN + 1], int64_t ms);

#endif
