#ifndef CERTRELAY_CLOCK_H
#define CERTRELAY_CLOCK_H

#include <stdint.h>

/* Wall clock, Unix milliseconds. */
int64_t crs_now_ms(void);
/* Monotonic clock in milliseconds, for deadlines and timeouts. */
uint64_t crs_mono_ms(void);

#endif
