/*
 * The portable half of the stub's transport: argument checks and the write loop, written once.
 * Each platform supplies one bounded step in each direction (stub/unix/transport.c,
 * stub/win/transport.c): crs__transport_send_some and crs__transport_recv_some.
 */
#include <stdint.h>

#include "certrelay/error.h"
#include "transport.h"

int crs__transport_write_all(struct crs_transport *t, const void *data, size_t len,
                             uint64_t deadline_ms)
{
    const uint8_t *p = data;

    if (t == NULL || (data == NULL && len > 0))
        return CRS_EINVAL;
    while (len > 0) {
        size_t done = 0;
        int rc = crs__transport_send_some(t, p, len, &done, deadline_ms);

        if (rc != 0)
            return rc;
        p += done;
        len -= done;
    }
    return 0;
}

int crs__transport_read(struct crs_transport *t, void *buf, size_t cap, size_t *got,
                        uint64_t deadline_ms)
{
    if (got != NULL)
        *got = 0;
    if (t == NULL || buf == NULL || cap == 0 || got == NULL)
        return CRS_EINVAL;
    return crs__transport_recv_some(t, buf, cap, got, deadline_ms);
}
