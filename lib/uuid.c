/*
 * UUIDv7 (RFC 9562, method 1 of section 6.2: a 12-bit counter in rand_a).
 *
 *   0                   1                   2                   3
 *   |          unix_ts_ms (48)              |ver|  counter (12) |var| random (62)              |
 *
 * Within one millisecond the counter increments, so ids from one process strictly increase even
 * when many threads mint them at once; if the counter would overflow, we borrow the next
 * millisecond rather than repeat or go backwards. The counter restarts at a random value below
 * 0x800 each millisecond, which keeps ids unguessable while leaving room to increment.
 */
#include <stdio.h>
#include <string.h>
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/random.h"
#include "certrelay/thread.h"
#include "certrelay/uuid.h"

static crs_mutex_t uuid_mutex = CRS_MUTEX_INIT;
static uint64_t last_ms;
static uint32_t counter;

int crs_uuid7(char out[CRS_UUID_STRLEN + 1])
{
    uint8_t rnd[10];
    uint8_t b[16];
    uint64_t now, ms;
    uint32_t ctr;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    out[0] = '\0';
    rc = crs_random(rnd, sizeof(rnd));
    if (rc != 0)
        return CRS_EIO;

    now = (uint64_t)crs_now_ms();
    crs_mutex_lock(&uuid_mutex);
    if (now > last_ms) {
        last_ms = now;
        counter = ((uint32_t)rnd[8] << 8 | rnd[9]) & 0x7ff;
    } else if (++counter > 0xfff) {
        last_ms++;
        counter = ((uint32_t)rnd[8] << 8 | rnd[9]) & 0x7ff;
    }
    ms = last_ms;
    ctr = counter;
    crs_mutex_unlock(&uuid_mutex);

    b[0] = (uint8_t)(ms >> 40);
    b[1] = (uint8_t)(ms >> 32);
    b[2] = (uint8_t)(ms >> 24);
    b[3] = (uint8_t)(ms >> 16);
    b[4] = (uint8_t)(ms >> 8);
    b[5] = (uint8_t)ms;
    b[6] = (uint8_t)(0x70 | ((ctr >> 8) & 0x0f));
    b[7] = (uint8_t)ctr;
    memcpy(b + 8, rnd, 8);
    b[8] = (uint8_t)(0x80 | (b[8] & 0x3f));

    snprintf(out, CRS_UUID_STRLEN + 1,
             "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
             b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
             b[15]);
    return 0;
}

int crs_uuid_valid(const char *s)
{
    size_t i;

    if (s == NULL || strlen(s) != CRS_UUID_STRLEN)
        return 0;
    for (i = 0; i < CRS_UUID_STRLEN; i++) {
        char c = s[i];
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (c != '-')
                return 0;
        } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'))) {
            return 0;
        }
    }
    return 1;
}
