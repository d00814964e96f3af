/*
 * UTF-16 <-> UTF-8 (include/certrelay/win/wstr.h), over WideCharToMultiByte and
 * MultiByteToWideChar with CP_UTF8.
 */
#include <limits.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/win/wstr.h"

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

static DWORD mb_flags(unsigned flags)
{
    return (flags & CRS_WSTR_STRICT) != 0 ? MB_ERR_INVALID_CHARS : 0;
}

int crs_win_wide(const char *s, unsigned flags, WCHAR **out)
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
    n = MultiByteToWideChar(CP_UTF8, mb_flags(flags), s, (int)len + 1, NULL, 0);
    if (n <= 0)
        return CRS_EINVAL;
    buf = crs_malloc((size_t)n * sizeof(WCHAR));
    if (buf == NULL)
        return CRS_ENOMEM;
    if (MultiByteToWideChar(CP_UTF8, mb_flags(flags), s, (int)len + 1, buf, n) != n) {
        crs_free(buf);
        return CRS_EINVAL;
    }
    *out = buf;
    return 0;
}

int crs_win_wide_buf(const char *s, size_t len, unsigned flags, WCHAR *buf, size_t cap)
{
    int n;

    if (buf == NULL || cap == 0 || cap > INT_MAX)
        return CRS_EINVAL;
    buf[0] = L'\0';
    if (s == NULL || len >= INT_MAX)
        return CRS_EINVAL;
    if (len == 0)
        return 0;
    n = MultiByteToWideChar(CP_UTF8, mb_flags(flags), s, (int)len, buf, (int)(cap - 1));
    if (n <= 0) {
        buf[0] = L'\0';
        return GetLastError() == ERROR_INSUFFICIENT_BUFFER ? CRS_ETOOBIG : CRS_EINVAL;
    }
    buf[n] = L'\0';
    return n;
}
