/*
 * Making untrusted values (certificate and request fields) safe for a destination.
 */
#ifndef CERTRELAY_SANITIZE_H
#define CERTRELAY_SANITIZE_H

#include <stddef.h>
#include "certrelay/text.h"

/* Longest file name component we produce (bytes, before the extension); NTFS allows 255 UTF-16
 * units, and we leave room for ".json" and temp suffixes. */
#define CRS_FILENAME_MAX 200u

/*
 * Makes `in` safe as ONE file name component on both Windows and Unix: path separators (/ \),
 * control characters, and the characters Windows forbids (<>:"|?*) become '_'; leading dots and
 * trailing dots or spaces are replaced; "." and ".." can never result; reserved Windows device
 * names (CON, PRN, AUX, NUL, COM1-9, LPT1-9, also with an extension) get a leading '_'; Unicode
 * format characters that hide or reorder text (zero-width, bidi controls, BOM, tags) are removed; the result
 * is truncated to CRS_FILENAME_MAX bytes without splitting a UTF-8 sequence; an empty result
 * becomes "_". out must have room for CRS_FILENAME_MAX + 1 bytes; returns strlen(out).
 */
size_t crs_sanitize_filename(const char *in, char *out, size_t outlen);

/* Replaces CR, LF and all other C0/DEL control characters by a space, in place. For one-line
 * destinations such as mail headers and log lines. Returns the number of replacements. */
size_t crs_sanitize_oneline(char *s);

#endif
