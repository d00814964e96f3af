/*
 * Text primitives (lib/text.c), one of each for the whole project: UTF-8 and ASCII case folding.
 * UTF-16 conversion is Windows-only and lives in lib/win/wstr.c.
 */
#ifndef CERTRELAY_TEXT_H
#define CERTRELAY_TEXT_H

#include <stddef.h>

/*
 * Scans one UTF-8 sequence at s (len >= 1) and returns how many bytes it covers; *valid says
 * whether they form a Unicode scalar value (no overlong forms, surrogates or values above
 * U+10FFFF). An invalid sequence covers its maximal subpart, so one U+FFFD replaces it.
 */
size_t crs_utf8_scan(const unsigned char *s, size_t len, int *valid);
/* True when s[0..len) is entirely valid UTF-8 (NUL bytes count as valid). */
int crs_utf8_valid(const char *s, size_t len);
/* Replaces invalid UTF-8 sequences (and NUL bytes) with U+FFFD into a fresh string (crs_free);
 * NULL on allocation failure. certsrv strings come from UTF-16, but a scripted event may hold
 * anything. */
char *crs_utf8_sanitize(const char *in, size_t len);
/* Truncates s (valid UTF-8) in place to at most max bytes without splitting a character. */
void crs_utf8_truncate(char *s, size_t max);

/* ASCII case-insensitive comparison, independent of the C locale: <0, 0 or >0 like strcmp. */
int crs_ascii_casecmp(const char *a, const char *b);
int crs_ascii_ncasecmp(const char *a, const char *b, size_t n);

/* True for the C locale's blanks: space, \t, \r, \n, \v, \f (whatever the current locale). */
int crs_ascii_isspace(int c);
/* Trims those blanks around s[0..*n): returns the new start and shortens *n. */
const char *crs_ascii_trim(const char *s, size_t *n);

#endif
