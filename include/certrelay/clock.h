#ifndef CERTRELAY_CLOCK_H
#define CERTRELAY_CLOCK_H

#include <stdint.h>

/* lib/unix/clock.c: clock_gettime; lib/win/clock.c: GetSystemTimePreciseAsFileTime and
 * QueryPerformanceCounter. */

/* Wall clock, Unix milliseconds. */
int64_t crs_now_ms(void);
/* Monotonic clock in milliseconds, for deadlines and timeouts. */
uint64_t crs_mono_ms(void);
/* The same monotonic clock in microseconds, for measuring short durations. */
uint64_t crs_mono_us(void);

#endif
