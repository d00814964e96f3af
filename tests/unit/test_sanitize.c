/* File name components, one-line values and UTF-8 repair, fed hostile input. */
#include <string.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/sanitize.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

/* An independent strict UTF-8 check (RFC 3629), so the tests do not trust the code under test. */
static int utf8_valid(const char *str)
{
    const unsigned char *s = (const unsigned char *)str;

    while (*s) {
        unsigned c = *s, n, cp, i;

        if (c < 0x80) {
            s++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07;
        } else {
            return 0;
        }
        for (i = 1; i <= n; i++) {
            if ((s[i] & 0xc0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i] & 0x3f);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            return 0;
        s += n + 1;
    }
    return 1;
}

/* Properties every sanitized component has, whatever the input. */
static void check_component(const char *name)
{
    size_t n = strlen(name);

    CHECK(n >= 1 && n <= CRS_FILENAME_MAX);
    CHECK(strchr(name, '/') == NULL && strchr(name, '\\') == NULL);
    CHECK(strpbrk(name, "<>:\"|?*\r\n\t\x7f") == NULL);
    CHECK(name[0] != '.');
    CHECK(name[n - 1] != '.' && name[n - 1] != ' ');
    CHECK(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
    CHECK(utf8_valid(name));
}

static const char *fname(const char *in)
{
    static char out[CRS_FILENAME_MAX + 1];
    size_t n = crs_sanitize_filename(in, out, sizeof out);

    CHECK_EQ_INT(n, strlen(out));
    check_component(out);
    return out;
}

static void test_filename_basic(void)
{
    CHECK_EQ_STR(fname("web01.example.com"), "web01.example.com");
    CHECK_EQ_STR(fname("Jos\xc3\xa9 \xe2\x82\xac"), "Jos\xc3\xa9 \xe2\x82\xac");
    CHECK_EQ_STR(fname("../../etc/x"), "___.._etc_x");
    CHECK_EQ_STR(fname(".."), "__");
    /* Format characters that hide or reorder text are removed: RLO, ZWSP, LRI, BOM, soft
     * hyphen, a tag character. */
    CHECK_EQ_STR(fname("invoice\xe2\x80\xae"
                       "fdp.exe"),
                 "invoicefdp.exe");
    CHECK_EQ_STR(fname("a\xe2\x80\x8b"
                       "b\xe2\x81\xa6"
                       "c\xef\xbb\xbf"),
                 "abc");
    CHECK_EQ_STR(fname("x\xc2\xad"
                       "y\xf3\xa0\x80\x81"
                       "z"),
                 "xyz");
    CHECK_EQ_STR(fname("."), "_");
    CHECK_EQ_STR(fname("..."), "___");
    CHECK_EQ_STR(fname("   "), "___");
    CHECK_EQ_STR(fname(". . "), "____");
    CHECK_EQ_STR(fname(".bashrc"), "_bashrc");
    CHECK_EQ_STR(fname("name. "), "name__");
    CHECK_EQ_STR(fname(" lead"), " lead");
    CHECK_EQ_STR(fname(""), "_");
    CHECK_EQ_STR(fname(NULL), "_");
    CHECK_EQ_STR(fname("a\r\nb"), "a__b");
    CHECK_EQ_STR(fname("a/b\\c"), "a_b_c");
    CHECK_EQ_STR(fname("x<>:\"|?*y"), "x_______y");
    CHECK_EQ_STR(fname("tab\there\x7f"), "tab_here_");
    CHECK_EQ_STR(fname("c1\xc2\x85z"), "c1_z");
    CHECK_EQ_STR(fname("nbsp\xc2\xa0ok"), "nbsp\xc2\xa0ok");
}

static void test_filename_reserved(void)
{
    CHECK_EQ_STR(fname("CON"), "_CON");
    CHECK_EQ_STR(fname("con"), "_con");
    CHECK_EQ_STR(fname("con.txt"), "_con.txt");
    CHECK_EQ_STR(fname("PRN"), "_PRN");
    CHECK_EQ_STR(fname("aux.tar.gz"), "_aux.tar.gz");
    CHECK_EQ_STR(fname("Nul"), "_Nul");
    CHECK_EQ_STR(fname("NUL .json"), "_NUL .json");
    CHECK_EQ_STR(fname("LPT9"), "_LPT9");
    CHECK_EQ_STR(fname("lpt0"), "_lpt0");
    CHECK_EQ_STR(fname("COM1.cer"), "_COM1.cer");
    CHECK_EQ_STR(fname("COM\xc2\xb9"), "_COM\xc2\xb9");
    CHECK_EQ_STR(fname("conin$"), "_conin$");
    CHECK_EQ_STR(fname("CON."), "_CON_");
    CHECK_EQ_STR(fname("CON "), "_CON_");
    /* Only the exact device names are reserved. */
    CHECK_EQ_STR(fname("COM10"), "COM10");
    CHECK_EQ_STR(fname("CONSOLE"), "CONSOLE");
    CHECK_EQ_STR(fname("LPT"), "LPT");
    CHECK_EQ_STR(fname("xCON"), "xCON");
    CHECK_EQ_STR(fname("COMa"), "COMa");
}

static void test_filename_length(void)
{
    static char in[4097];
    char out[CRS_FILENAME_MAX + 1], small[4];
    size_t i, n;

    memset(in, 'a', 4096);
    in[4096] = '\0';
    n = crs_sanitize_filename(in, out, sizeof out);
    CHECK_EQ_INT(n, CRS_FILENAME_MAX);
    check_component(out);

    /* 3-byte characters: 200 is not a multiple of 3, so the cut must fall at 198. */
    for (i = 0; i + 3 <= 4096; i += 3)
        memcpy(in + i, "\xe2\x82\xac", 3);
    in[i] = '\0';
    n = crs_sanitize_filename(in, out, sizeof out);
    CHECK_EQ_INT(n, 198);
    check_component(out);

    /* 4-byte characters: the cut falls at 200 exactly. */
    for (i = 0; i + 4 <= 4096; i += 4)
        memcpy(in + i, "\xf0\x9f\x98\x80", 4);
    in[i] = '\0';
    n = crs_sanitize_filename(in, out, sizeof out);
    CHECK_EQ_INT(n, 200);
    check_component(out);

    /* A cut that leaves a trailing space must not leave it. */
    memset(in, 'b', 199);
    memcpy(in + 199, " tail", 6);
    n = crs_sanitize_filename(in, out, sizeof out);
    CHECK_EQ_INT(n, 200);
    CHECK_EQ_INT(out[199], '_');
    check_component(out);

    /* A device name at full length loses its last character to make room for the '_'. */
    memcpy(in, "CON.", 4);
    memset(in + 4, 'x', 196);
    memcpy(in + 198, "\xc3\xa9", 2);
    in[200] = '\0';
    n = crs_sanitize_filename(in, out, sizeof out);
    CHECK_EQ_INT(n, 199);
    CHECK(strncmp(out, "_CON.x", 6) == 0);
    CHECK_EQ_INT(out[198], 'x');
    check_component(out);

    /* A smaller buffer caps the result at outlen - 1. */
    n = crs_sanitize_filename("abcdef", small, sizeof small);
    CHECK_EQ_INT(n, 3);
    CHECK_EQ_STR(small, "abc");
    n = crs_sanitize_filename("\xe2\x82\xac\xe2\x82\xac", small, sizeof small);
    CHECK_EQ_STR(small, "\xe2\x82\xac");
    n = crs_sanitize_filename("abc", small, 1);
    CHECK_EQ_INT(n, 0);
    CHECK_EQ_STR(small, "");
    CHECK_EQ_INT(crs_sanitize_filename("abc", NULL, 10), 0);
}

static void test_filename_invalid_utf8(void)
{
    CHECK_EQ_STR(fname("a\xff\xfe"
                       "b"),
                 "a__b");
    CHECK_EQ_STR(fname("\xc3"), "_");
    CHECK_EQ_STR(fname("x\xc0\xaf"), "x__");
    CHECK_EQ_STR(fname("\xed\xa0\x80z"), "___z");
    CHECK_EQ_STR(fname("\xe2\x82"), "_");
    /* A lone continuation byte before a separator cannot hide the separator. */
    CHECK_EQ_STR(fname("\x80/"), "__");
}

static void test_oneline(void)
{
    char s[] = "a\r\nb\tc\x7f\x01z\xc3\xa9";

    CHECK_EQ_INT(crs_sanitize_oneline(s), 5);
    CHECK_EQ_STR(s, "a  b c  z\xc3\xa9");
    CHECK_EQ_INT(crs_sanitize_oneline(s), 0);
    CHECK_EQ_INT(crs_sanitize_oneline(NULL), 0);
}

static void check_utf8(const char *in, size_t len, const char *want)
{
    char *got = crs_utf8_sanitize(in, len);

    CHECK_EQ_STR(got, want);
    CHECK(got && utf8_valid(got));
    crs_free(got);
}

static void test_utf8(void)
{
    check_utf8("plain", 5, "plain");
    check_utf8("", 0, "");
    check_utf8(NULL, 0, "");
    check_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    check_utf8("\xf4\x8f\xbf\xbf", 4, "\xf4\x8f\xbf\xbf");
    check_utf8("\xef\xbf\xbd", 3, R);
    /* Only len bytes are read. */
    check_utf8("abcdef", 3, "abc");
    /* An embedded NUL would cut the C string, so it is replaced. */
    check_utf8("a\0b", 3, "a" R "b");
    /* Overlong forms. */
    check_utf8("\xc0\x80", 2, R R);
    check_utf8("\xc1\xbf", 2, R R);
    check_utf8("\xe0\x80\xaf", 3, R R R);
    check_utf8("\xf0\x80\x80\xaf", 4, R R R R);
    /* Surrogates and values above U+10FFFF. */
    check_utf8("\xed\xa0\x80", 3, R R R);
    check_utf8("\xed\xbf\xbf", 3, R R R);
    check_utf8("\xf4\x90\x80\x80", 4, R R R R);
    check_utf8("\xf5\x80", 2, R R);
    check_utf8("\xff", 1, R);
    /* Truncated sequences: one U+FFFD for the maximal subpart, and the next character survives. */
    check_utf8("\xe2\x82", 2, R);
    check_utf8("\xe2\x82"
               "a",
               3, R "a");
    check_utf8("\xf0\x9f\x98", 3, R);
    check_utf8("\xc3", 1, R);
    /* The examples of Unicode 15, section 3.9, tables 3-8 to 3-11. */
    check_utf8("\x61\xf1\x80\x80\xe1\x80\xc2\x62\x80\x63\x80\xbf\x64", 13,
               "a" R R R "b" R "c" R R "d");
    check_utf8("\x61\xc0\xaf\xe0\x80\xbf\xf0\x81\x82\x41", 10, "a" R R R R R R R R "A");
    check_utf8("\x61\xed\xa0\x80\xed\xbf\xbf\xed\xaf\x41", 10, "a" R R R R R R R R "A");
    check_utf8("\x61\xf4\x91\x92\x93\xff\x41\x80\xbf\x42", 10, "a" R R R R R "A" R R "B");
}

static void test_alloc_failure(void)
{
    char *s;

    crs_alloc_fail_after(0);
    s = crs_utf8_sanitize("abc", 3);
    crs_alloc_fail_after(-1);
    CHECK(s == NULL);
    crs_free(s);
}

int main(void)
{
    test_filename_basic();
    test_filename_reserved();
    test_filename_length();
    test_filename_invalid_utf8();
    test_oneline();
    test_utf8();
    test_alloc_failure();
    return CHECK_DONE();
}
