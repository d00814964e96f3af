/*
 * The INI reader (config/ini.h). The rules are those inih applies with the options Debian builds
 * it with (multi-line values, inline ';' comments after a blank, '=' and ':' delimiters), which
 * the configuration has always been read with, plus the checks inih leaves to its caller: line
 * length, UTF-8, NUL bytes, the byte order mark and text after a section header.
 */
#include <stdio.h>
#include <string.h>
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "config/ini.h"

static int ini_error(char *msg, size_t msglen, const char *text)
{
    if (msg != NULL && msglen > 0)
        snprintf(msg, msglen, "%s", text);
    return CRS_ECONFIG;
}

/* Longer lines are refused rather than cut, so a value is never silently shortened. */
static int too_long(char *msg, size_t msglen)
{
    if (msg != NULL && msglen > 0)
        snprintf(msg, msglen, "line too long (at most %u characters)", CRS_INI_LINE_MAX);
    return CRS_ECONFIG;
}

/* The index of an inline comment in s[0..n) (a ';' right after a blank), or n. */
static size_t inline_comment(const char *s, size_t n)
{
    size_t i;

    for (i = 1; i < n; i++)
        if (s[i] == ';' && crs_ascii_isspace((unsigned char)s[i - 1]))
            return i;
    return n;
}

/* The index of the first of `chars` in s[0..n) before an inline comment, or n. */
static size_t find_before_comment(const char *s, size_t n, const char *chars)
{
    size_t i, end = inline_comment(s, n);

    for (i = 0; i < end; i++)
        if (strchr(chars, s[i]) != NULL)
            return i;
    return n;
}

int crs_ini_init(struct crs_ini *ini, const char *text, size_t len, char *msg, size_t msglen)
{
    const unsigned char *u = (const unsigned char *)text;

    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    if (ini == NULL || (text == NULL && len > 0))
        return CRS_EINVAL;
    memset(ini, 0, sizeof(*ini));
    ini->text = text;
    ini->len = len;
    /* Notepad's "Unicode" is UTF-16: say so instead of reporting a syntax error on line 1. */
    if (len >= 2 && ((u[0] == 0xFF && u[1] == 0xFE) || (u[0] == 0xFE && u[1] == 0xFF))) {
        ini->lineno = 1;
        return ini_error(msg, msglen, "the file is UTF-16 encoded; save it as UTF-8");
    }
    if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0)
        ini->pos = 3;
    return 0;
}

/* s[0..n) starts with '['. */
static int section_header(struct crs_ini *ini, const char *s, size_t n, struct crs_ini_item *item,
                          char *msg, size_t msglen)
{
    size_t close, i, len;

    close = find_before_comment(s + 1, n - 1, "]") + 1;
    if (close >= n)
        return ini_error(msg, msglen, "syntax error: missing ']' in section header");
    for (i = close + 1; i < n && crs_ascii_isspace((unsigned char)s[i]); i++)
        ;
    if (i < n && s[i] != ';' && s[i] != '#')
        return ini_error(msg, msglen, "syntax error: unexpected text after ']'");
    len = close - 1;
    item->kind = CRS_INI_SECTION;
    item->name = crs_ascii_trim(s + 1, &len);
    item->namelen = len;
    ini->has_key = 0;
    return 1;
}

/* s[0..n) is a key line without its indentation. */
static int key_line(struct crs_ini *ini, const char *s, size_t n, struct crs_ini_item *item,
                    char *msg, size_t msglen)
{
    size_t eq = find_before_comment(s, n, "=:");
    size_t namelen = eq, valuelen;
    const char *value;

    if (eq == n)
        return ini_error(msg, msglen,
                         "syntax error: expected 'key = value', a [section] header or a comment");
    item->kind = CRS_INI_KEY;
    item->name = crs_ascii_trim(s, &namelen);
    item->namelen = namelen;
    if (namelen == 0)
        return ini_error(msg, msglen, "syntax error: missing key name before '='");
    value = s + eq + 1;
    valuelen = inline_comment(value, n - eq - 1);
    item->value = crs_ascii_trim(value, &valuelen);
    item->valuelen = valuelen;
    ini->has_key = 1;
    return 1;
}

int crs_ini_next(struct crs_ini *ini, struct crs_ini_item *item, char *msg, size_t msglen)
{
    if (msg != NULL && msglen > 0)
        msg[0] = '\0';
    if (ini == NULL || item == NULL)
        return CRS_EINVAL;
    memset(item, 0, sizeof(*item));
    while (ini->pos < ini->len) {
        const char *line = ini->text + ini->pos;
        const char *nl = memchr(line, '\n', ini->len - ini->pos);
        size_t len = nl != NULL ? (size_t)(nl - line) : ini->len - ini->pos;
        size_t i = 0;

        ini->pos += len + (nl != NULL);
        ini->lineno++;
        item->line = ini->lineno;
        /* Notepad writes CRLF; the CR is not part of the value. */
        if (len > 0 && line[len - 1] == '\r')
            len--;
        if (memchr(line, '\0', len) != NULL)
            return ini_error(msg, msglen, "NUL byte in line (is this a text file?)");
        if (!crs_utf8_valid(line, len))
            return ini_error(msg, msglen, "invalid UTF-8 (save the file as UTF-8)");
        while (i < len && crs_ascii_isspace((unsigned char)line[i]))
            i++;
        if (i == len || line[i] == ';' || line[i] == '#')
            continue;
        if (i > 0 && ini->has_key) {
            /* An indented line after a key continues its value, as in Python's configparser. */
            len = inline_comment(line, len);
            while (len > 0 && crs_ascii_isspace((unsigned char)line[len - 1]))
                len--;
            if (len > CRS_INI_LINE_MAX)
                return too_long(msg, msglen);
            item->kind = CRS_INI_CONTINUATION;
            item->value = line + i;
            item->valuelen = len - i;
            return 1;
        }
        if (line[i] == '[')
            return section_header(ini, line + i, len - i, item, msg, msglen);
        if (find_before_comment(line + i, len - i, "=:") == len - i)
            return ini_error(
                msg, msglen,
                "syntax error: expected 'key = value', a [section] header or a comment");
        if (len > CRS_INI_LINE_MAX)
            return too_long(msg, msglen);
        return key_line(ini, line + i, len - i, item, msg, msglen);
    }
    return 0;
}
