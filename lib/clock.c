/* Clocks through libuv, which already hides the platform differences. */
#include <uv.h>
#include "certrelay/clock.h"

int64_t crs_now_ms(void)
{
    uv_timeval64_t tv;

    if (uv_gettimeofday(&tv) != 0)
        return 0;
    return tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

uint64_t crs_mono_ms(void)
{
    return uv_hrtime() / 1000000u;
}
