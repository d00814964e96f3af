/*
 * The INI reader of the broker's configuration file: the project's own, the same on every
 * platform. It knows the syntax (docs/configuration.md, "File format") and nothing of what the
 * sections and keys mean; config.c does.
 *
 *   [section]          a header; blanks inside the brackets are trimmed
 *   key = value        or key: value; blanks around key and value are trimmed
 *     more             an indented line after a key continues that key's value
 *   ; comment          also # comment; inline: " ; comment" (a ';' after a blank)
 *
 * It reads a whole file held in memory and hands out one item at a time, pointing into the text
 * (nothing is allocated). Lines end in LF or CRLF; a UTF-8 byte order mark is skipped, a UTF-16
 * file is refused, and every line must be valid UTF-8 without NUL bytes. Key and continuation
 * lines hold at most CRS_INI_LINE_MAX characters: a longer one is refused, never cut.
 */
#ifndef CERTRELAY_BROKER_INI_H
#define CERTRELAY_BROKER_INI_H

#include <stddef.h>

#define CRS_INI_LINE_MAX 198

enum crs_ini_kind {
    CRS_INI_SECTION = 1, /* name: the section name */
    CRS_INI_KEY,         /* name: the key, value: its value (may be empty) */
    CRS_INI_CONTINUATION /* value: the next line of the last key's value (never empty) */
};

struct crs_ini_item {
    enum crs_ini_kind kind;
    int line; /* 1-based line number */
    const char *name;
    size_t namelen;
    const char *value;
    size_t valuelen;
};

struct crs_ini {
    const char *text;
    size_t len;
    size_t pos;
    int lineno;  /* line last read */
    int has_key; /* a key was read since the last section header */
};

/*
 * Starts reading text[0..len). 0, or CRS_ECONFIG with a sentence in msg when the text cannot be
 * an INI file at all (UTF-16); the error is then on line 1.
 */
int crs_ini_init(struct crs_ini *ini, const char *text, size_t len, char *msg, size_t msglen);
/*
 * Reads the next item: 1 with *item filled, 0 at the end of the text, or CRS_ECONFIG with a
 * sentence in msg (the error is on line ini->lineno). Blank and comment lines are skipped.
 */
int crs_ini_next(struct crs_ini *ini, struct crs_ini_item *item, char *msg, size_t msglen);

#endif
