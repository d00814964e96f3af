/*
 * UTF-16 <-> UTF-8 on Windows (lib/win/wstr.c), the one converter of the Windows code. Everything
 * behind the Win32 and COM boundaries (the stub core, the spool, the wire, every path) is UTF-8;
 * everything Windows hands us is UTF-16. Results are crs_malloc'ed.
 */
#ifndef CERTRELAY_WIN_WSTR_H
#define CERTRELAY_WIN_WSTR_H

#include <windows.h>
#include <stddef.h>

/* Flags of crs_win_wide and crs_win_wide_buf. */
#define CRS_WSTR_STRICT                                                                            \
    0x1u /* refuse invalid UTF-8 (file and pipe names) instead of replacing it */

/*
 * UTF-16 to UTF-8. wlen may be -1 for a NUL-terminated string. A result longer than max_bytes (not
 * counting the NUL) gives CRS_ETOOBIG; invalid UTF-16 is replaced, not rejected, because a CA's
 * strings are data to forward, not to judge. outlen may be NULL.
 */
int crs_win_utf8(const WCHAR *w, int wlen, size_t max_bytes, char **out, size_t *outlen);
/* UTF-8 (NUL-terminated) to a fresh UTF-16 string. 0, CRS_EINVAL (invalid input with
 * CRS_WSTR_STRICT), CRS_ETOOBIG or CRS_ENOMEM. */
int crs_win_wide(const char *s, unsigned flags, WCHAR **out);
/*
 * The first len bytes of s to UTF-16 in buf (cap units, NUL included). Returns the number of
 * units written before the NUL, or CRS_ETOOBIG when they do not fit (buf then holds ""), or
 * CRS_EINVAL. Every UTF-8 byte gives at most one UTF-16 unit, so len < cap always fits.
 */
int crs_win_wide_buf(const char *s, size_t len, unsigned flags, WCHAR *buf, size_t cap);

#endif
