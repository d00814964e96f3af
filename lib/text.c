/*
 * Text primitives every part of CertRelay uses, written once: UTF-8 scanning, validation, repair
 * and truncation, and ASCII case-insensitive comparison (locale-independent, unlike strcasecmp,
 * which is also not spelled the same on every platform we build for).
 */
#include <stdint.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/text.h"

/* ------------------------------------------------------------------------------------------ */
/* UTF-8                                                                                       */
/* ------------------------------------------------------------------------------------------ */

/*
 * Scans one UTF-8 sequence at s (len >= 1 bytes left) and returns how many bytes it covers; *valid
 * says whether they form a Unicode scalar value. An invalid sequence covers its maximal subpart
 * (the WHATWG and Unicode "best practice" rule): a lead byte followed by as many continuation bytes
 * as were acceptable, so that one U+FFFD replaces each broken piece and a following valid
 * character is never swallowed. Overlong forms (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF)
 * and values above U+10FFFF (F4 90-BF, F5-FF) are all invalid.
 */
size_t crs_utf8_scan(const unsigned char *s, size_t len, int *valid)
{
    unsigned char c = s[0];
    unsigned char lo = 0x80, hi = 0xbf;
    size_t need, i;

    *valid = 0;
    if (c < 0x80) {
        *valid = 1;
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2;
        if (c == 0xe0)
            lo = 0xa0;
        else if (c == 0xed)
            hi = 0x9f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3;
        if (c == 0xf0)
            lo = 0x90;
        else if (c == 0xf4)
            hi = 0x8f;
    } else {
        return 1;
    }
    for (i = 1; i <= need; i++) {
        if (i >= len || s[i] < lo || s[i] > hi)
            return i;
        lo = 0x80;
        hi = 0xbf;
    }
    *valid = 1;
    return need + 1;
}

int crs_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;

    if (!s)
        return len == 0;
    while (i < len) {
        int valid;
        size_t adv = crs_utf8_scan(p + i, len - i, &valid);

        if (!valid)
            return 0;
        i += adv;
    }
    return 1;
}

/*
 * Two passes (measure, then copy) so the result is allocated at its exact size. A NUL byte inside
 * the input is valid UTF-8 but would silently cut the C string we return, so it is replaced too:
 * the output always represents every input byte.
 */
char *crs_utf8_sanitize(const char *in, size_t len)
{
    static const char replacement[] = "\xef\xbf\xbd";
    const unsigned char *s = (const unsigned char *)in;
    size_t i, need = 0, n = 0;
    char *out;

    if (!in)
        len = 0;
    for (i = 0; i < len;) {
        int valid;
        size_t adv = crs_utf8_scan(s + i, len - i, &valid);

        /* Each step adds at most 3 bytes for at least 1 consumed; guard the sum anyway. */
        if (need > SIZE_MAX - 4)
            return NULL;
        need += valid && s[i] != 0 ? adv : 3;
        i += adv;
    }

    out = crs_malloc(need + 1);
    if (!out)
        return NULL;
    for (i = 0; i < len;) {
        int valid;
        size_t adv = crs_utf8_scan(s + i, len - i, &valid);

        if (valid && s[i] != 0) {
            memcpy(out + n, s + i, adv);
            n += adv;
        } else {
            memcpy(out + n, replacement, 3);
            n += 3;
        }
        i += adv;
    }
    out[n] = '\0';
    return out;
}

void crs_utf8_truncate(char *s, size_t max)
{
    size_t n;

    if (!s)
        return;
    n = strlen(s);
    if (n <= max)
        return;
    n = max;
    while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
        n--;
    s[n] = '\0';
}

/* ------------------------------------------------------------------------------------------ */
/* ASCII case-insensitive comparison                                                          */
/* ------------------------------------------------------------------------------------------ */

static int ascii_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? c - 'A' + 'a' : c;
}

int crs_ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int x = ascii_lower((unsigned char)*a), y = ascii_lower((unsigned char)*b);

        if (x != y || x == 0)
            return x - y;
    }
}

int crs_ascii_ncasecmp(const char *a, const char *b, size_t n)
{
    for (; n > 0; a++, b++, n--) {
        int x = ascii_lower((unsigned char)*a), y = ascii_lower((unsigned char)*b);

        if (x != y || x == 0)
            return x - y;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* ASCII blanks                                                                                */
/* ------------------------------------------------------------------------------------------ */

int crs_ascii_isspace(int c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f';
}

const char *crs_ascii_trim(const char *s, size_t *n)
{
    while (*n > 0 && crs_ascii_isspace((unsigned char)*s)) {
        s++;
        (*n)--;
    }
    while (*n > 0 && crs_ascii_isspace((unsigned char)s[*n - 1]))
        (*n)--;
    return s;
}
