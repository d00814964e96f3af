/* The system's random source on Unix (include/certrelay/random.h). */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>
#if defined(__linux__)
#include <sys/random.h>
#endif
#include "certrelay/error.h"
#include "certrelay/random.h"

int crs_random(void *buf, size_t len)
{
    uint8_t *p = buf;

    if (buf == NULL && len > 0)
        return CRS_EINVAL;
    while (len > 0) {
#if defined(__linux__)
        /* Blocks only until the pool is first initialized, early in boot. */
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return CRS_EIO;
        }
        p += n;
        len -= (size_t)n;
#else
        size_t chunk = len > 256 ? 256 : len; /* getentropy's limit */
        if (getentropy(p, chunk) != 0)
            return CRS_EIO;
        p += chunk;
        len -= chunk;
#endif
    }
    return 0;
}
