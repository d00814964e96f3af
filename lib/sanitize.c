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
#include "certrelay/text.h"

/* ------------------------------------------------------------------------------------------ */
/* File name components                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Characters that are never allowed in a component: both separators, and what Windows forbids. */
static int filename_forbidden(unsigned char c)
{
    return c < 0x20 || c == 0x7f || c == '/' || c == '\\' || c == '<' || c == '>' || c == ':' ||
           c == '"' || c == '|' || c == '?' || c == '*';
}

/*
 * Unicode format characters (category Cf) that are invisible or reorder text: zero-width
 * spaces and joiners, bidi marks, embeddings, overrides and isolates, the word joiner and
 * invisible operators, the BOM, soft hyphen, Mongolian vowel separator, interlinear
 * annotation marks and tag characters. In a file name they only serve to disguise it
 * ("invoice\u202Efdp.exe" shows as "invoiceexe.pdf"); they are removed.
 */
static int filename_invisible(const unsigned char *p, size_t n)
{
    uint32_t cp;

    if (n == 2)
        cp = (uint32_t)(p[0] & 0x1f) << 6 | (p[1] & 0x3f);
    else if (n == 3)
        cp = (uint32_t)(p[0] & 0x0f) << 12 | (uint32_t)(p[1] & 0x3f) << 6 | (p[2] & 0x3f);
    else if (n == 4)
        cp = (uint32_t)(p[0] & 0x07) << 18 | (uint32_t)(p[1] & 0x3f) << 12 |
             (uint32_t)(p[2] & 0x3f) << 6 | (p[3] & 0x3f);
    else
        return 0;
    return cp == 0x00ad || cp == 0x061c || cp == 0x180e || (cp >= 0x200b && cp <= 0x200f) ||
           (cp >= 0x202a && cp <= 0x202e) || (cp >= 0x2060 && cp <= 0x2064) ||
           (cp >= 0x2066 && cp <= 0x206f) || cp == 0xfeff || (cp >= 0xfff9 && cp <= 0xfffb) ||
           (cp >= 0xe0000 && cp <= 0xe007f);
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
        size_t adv = crs_utf8_scan(p, len - i, &valid);

        /* C1 controls (U+0080..U+009F) are as unwelcome in a name as C0 ones. */
        if (!valid || (adv == 2 && p[0] == 0xc2 && p[1] < 0xa0)) {
            if (n + 1 > cap)
                break;
            out[n++] = '_';
        } else if (adv == 1) {
            if (n + 1 > cap)
                break;
            out[n++] = filename_forbidden(p[0]) ? '_' : (char)p[0];
        } else if (filename_invisible(p, adv)) {
            /* Dropped: see filename_invisible. */
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
/* One-line values                                                                            */
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
