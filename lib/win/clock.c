/*
 * Clocks on Windows (include/certrelay/clock.h): GetSystemTimePreciseAsFileTime for the wall clock
 * (100 ns ticks since 1601), QueryPerformanceCounter for the monotonic one. The counter frequency
 * is fixed at boot, so reading it on every call only costs a call.
 */
#include <windows.h>
#include "certrelay/clock.h"

/* 100 ns ticks from 1601-01-01 to 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000ULL

int64_t crs_now_ms(void)
{
    FILETIME ft;
    ULARGE_INTEGER t;

    GetSystemTimePreciseAsFileTime(&ft);
    t.LowPart = ft.dwLowDateTime;
    t.HighPart = ft.dwHighDateTime;
    if (t.QuadPart < FILETIME_UNIX_EPOCH)
        return 0;
    return (int64_t)((t.QuadPart - FILETIME_UNIX_EPOCH) / 10000u);
}

uint64_t crs_mono_us(void)
{
    LARGE_INTEGER freq, count;
    uint64_t f, c;

    if (!QueryPerformanceFrequency(&freq) || freq.QuadPart <= 0 || !QueryPerformanceCounter(&count))
        return 0;
    f = (uint64_t)freq.QuadPart;
    c = (uint64_t)count.QuadPart;
    /* Split so that c * 1000000 cannot overflow. */
    return c / f * 1000000u + c % f * 1000000u / f;
}

uint64_t crs_mono_ms(void)
{
    return crs_mono_us() / 1000u;
}
