/* The system's random source on Windows (include/certrelay/random.h): BCryptGenRandom with the
 * system-preferred RNG, which needs no algorithm handle. */
#include <windows.h>
#include <bcrypt.h>
#include "certrelay/error.h"
#include "certrelay/random.h"

int crs_random(void *buf, size_t len)
{
    UCHAR *p = buf;

    if (buf == NULL && len > 0)
        return CRS_EINVAL;
    while (len > 0) {
        ULONG chunk = len > 0x10000000u ? 0x10000000u : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, p, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return CRS_EIO;
        p += chunk;
        len -= chunk;
    }
    return 0;
}
