/* Clocks on Unix (include/certrelay/clock.h): CLOCK_REALTIME and CLOCK_MONOTONIC. */
#include <time.h>
#include "certrelay/clock.h"

int64_t crs_now_ms(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0)
        return 0;
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

uint64_t crs_mono_us(void)
{
    struct timespec ts;

    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0;
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t crs_mono_ms(void)
{
    return crs_mono_us() / 1000u;
}
