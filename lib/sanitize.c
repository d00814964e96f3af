/*
 * Making untrusted values safe for a destination: one file name component, one header line, or
 * a string that must be valid UTF-8 (JSON, mail bodies).
 *
 * Every value that reaches these functions may come from a certificate request, that is from
 * whoever asked the CA for a certificate. None of them trusts its input to be valid UTF-8, short,
 * or free of control characters.
 */
#include <stdint.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/sanitize.h"

/*
 * Scans one UTF-8 sequence at s (len >= 1 bytes left) and returns how many bytes it covers; *valid
 * says whether they form a Unicode scalar value. An invalid sequence covers its maximal subpart
 * (the WHATWG and Unicode "best practice" rule): a lead byte followed by as many continuation bytes
 * as were acceptable, so that one U+FFFD replaces each broken piece and a following valid
 * character is never swallowed. Overlong forms (C0, C1, E0 80-9F, F0 80-8F), surrogates (ED A0-BF)
 * and values above U+10FFFF (F4 90-BF, F5-FF) are all invalid.
 */
static size_t utf8_scan(const unsigned char *s, size_t len, int *valid)
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

/* ------------------------------------------------------------------------------------------ */
/* File name components                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Characters that are never allowed in a component: both separators, and what Windows forbids. */
static int filename_forbidden(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '<' || c == '>' || c == ':' ||
           c == '"' || c == '|' || c == '?' || c == '*';
}

static int ascii_upper(int c)
{
    return c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c;
}

/* True when s[0..n) equals word (upper case ASCII) case-insensitively. */
static int word_equal(const char *s, size_t n, const char *word)
{
    size_t i;

    if (strlen(word) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (ascii_upper((unsigned char)s[i]) != word[i])
            return 0;
    return 1;
}

/*
 * Whether Windows would open a device instead of a file for this name. Win32 path parsing looks
 * only at the part before the first dot and ignores trailing spaces there, so "con.txt",
 * "NUL .json" and "com1.cer" are devices too. The digit after COM and LPT may also be one of the
 * superscripts 1, 2 and 3 (U+00B9, U+00B2, U+00B3), which Windows treats the same way.
 */
static int filename_reserved(const char *s, size_t n)
{
    static const char *const plain[] = {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"};
    const char *dot = memchr(s, '.', n);
    size_t base = dot ? (size_t)(dot - s) : n, i;

    while (base > 0 && s[base - 1] == ' ')
        base--;
    for (i = 0; i < sizeof plain / sizeof plain[0]; i++)
        if (word_equal(s, base, plain[i]))
            return 1;
    if (base < 4 || !(word_equal(s, 3, "COM") || word_equal(s, 3, "LPT")))
        return 0;
    if (base == 4 && s[3] >= '0' && s[3] <= '9')
        return 1;
    if (base == 5 && (unsigned char)s[3] == 0xc2 &&
        ((unsigned char)s[4] == 0xb9 || (unsigned char)s[4] == 0xb2 || (unsigned char)s[4] == 0xb3))
        return 1;
    return 0;
}

/*
 * The steps run in an order that keeps each guarantee once established: characters are mapped and
 * the length capped first (so later steps see the final bytes), then leading dots, then the device
 * name prefix (which may push out the last character), and trailing dots and spaces last because
 * both the cap and the prefix can expose a new trailing character. Replacing, rather than
 * deleting, dots and spaces means a name made only of them still keeps its length and never
 * becomes "." or "..".
 */
size_t crs_sanitize_filename(const char *in, char *out, size_t outlen)
{
    size_t cap, n = 0, i = 0, len, k;

    if (!out || outlen == 0)
        return 0;
    cap = outlen - 1 < CRS_FILENAME_MAX ? outlen - 1 : CRS_FILENAME_MAX;
    if (!in)
        in = "";
    len = strlen(in);

    while (i < len) {
        const unsigned char *p = (const unsigned char *)in + i;
        int valid;
        size_t adv = utf8_scan(p, len - i, &valid);

        /* C1 controls (U+0080..U+009F) are as unwelcome in a name as C0 ones. */
        if (!valid || (adv == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            if (n + 1 > cap)
                break;
            out[n++] = '_';
        } else if (adv == 1) {
            if (n + 1 > cap)
                break;
            out[n++] = filename_forbidden(p[0]) ? '_' : (char)p[0];
        } else {
            /* A character that does not fit is dropped whole, never split. */
            if (n + adv > cap)
                break;
            memcpy(out + n, p, adv);
            n += adv;
        }
        i += adv;
    }

    for (k = 0; k < n && out[k] == '.'; k++)
        out[k] = '_';

    if (filename_reserved(out, n)) {
        if (n == cap) {
            k = n - 1;
            while (k > 0 && ((unsigned char)out[k] & 0xc0) == 0x80)
                k--;
            n = k;
        }
        memmove(out + 1, out, n);
        out[0] = '_';
        n++;
    }

    for (k = n; k > 0 && (out[k - 1] == '.' || out[k - 1] == ' '); k--)
        out[k - 1] = '_';

    if (n == 0 && cap > 0)
        out[n++] = '_';
    out[n] = '\0';
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* One-line values and UTF-8 repair                                                            */
/* ------------------------------------------------------------------------------------------ */

size_t crs_sanitize_oneline(char *s)
{
    size_t count = 0;

    if (!s)
        return 0;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;

        if (c < 0x20 || c == 0x7f) {
            *s = ' ';
            count++;
        }
    }
    return count;
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
        size_t adv = utf8_scan(s + i, len - i, &valid);

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
        size_t adv = utf8_scan(s + i, len - i, &valid);

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
