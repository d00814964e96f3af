/*
 * UTF-16 <-> UTF-8 conversions at the COM boundary. Everything behind the boundary (the stub
 * core, the spool, the wire) is UTF-8; everything certsrv hands us is UTF-16.
 */
#include <limits.h>
#include <string.h>

#include "dll.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"

int crs_win_utf8(const WCHAR *w, int wlen, size_t max_bytes, char **out, size_t *outlen)
{
    char *buf = NULL;
    int n, m;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (w == NULL || max_bytes > INT_MAX - 1)
        return CRS_EINVAL;
    if (wlen < 0)
        wlen = (int)wcsnlen(w, INT_MAX / 4);
    if (wlen == 0) {
        buf = crs_strdup("");
        if (buf == NULL)
            return CRS_ENOMEM;
        *out = buf;
        return 0;
    }
    /* Every UTF-16 unit yields at least one UTF-8 byte, so oversized input is rejected before
     * the conversion is even sized. */
    if ((size_t)wlen > max_bytes)
        return CRS_ETOOBIG;
    n = WideCharToMultiByte(CP_UTF8, 0, w, wlen, NULL, 0, NULL, NULL);
    if (n <= 0)
        return CRS_EINVAL;
    if ((size_t)n > max_bytes)
        return CRS_ETOOBIG;
    buf = crs_malloc((size_t)n + 1);
    if (buf == NULL)
        return CRS_ENOMEM;
    m = WideCharToMultiByte(CP_UTF8, 0, w, wlen, buf, n, NULL, NULL);
    if (m != n) {
        crs_free(buf);
        return CRS_EINVAL;
    }
    buf[n] = '\0';
    *out = buf;
    if (outlen != NULL)
        *outlen = (size_t)n;
    return 0;
}

int crs_win_wide(const char *s, WCHAR **out)
{
    WCHAR *buf;
    size_t len;
    int n;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (s == NULL)
        return CRS_EINVAL;
    len = strlen(s);
    if (len >= INT_MAX / 2)
        return CRS_ETOOBIG;
    n = MultiByteToWideChar(CP_UTF8, 0, s, (int)len + 1, NULL, 0);
    if (n <= 0)
        return CRS_EINVAL;
    buf = crs_malloc((size_t)n * sizeof(WCHAR));
    if (buf == NULL)
        return CRS_ENOMEM;
    if (MultiByteToWideChar(CP_UTF8, 0, s, (int)len + 1, buf, n) != n) {
        crs_free(buf);
        return CRS_EINVAL;
    }
    *out = buf;
    return 0;
}
