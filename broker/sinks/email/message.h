/*
 * What the email sink writes, independent of SMTP: address checks, header encodings (RFC 2047,
 * RFC 5322 dates, Message-ID), line endings, the requester's address found in an event, and the
 * built-in default templates. Portable and unit-tested; driver.c sends the result
 * with libcurl.
 *
 * The rule behind every function here: a value taken from a certificate or request may hold
 * anything (CR, LF, NUL, commas, angle brackets, invalid UTF-8), and none of it may ever change
 * the structure of a message header or an SMTP command.
 */
#ifndef CERTRELAY_MAIL_FORMAT_H
#define CERTRELAY_MAIL_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay.pb-c.h"

/* Longest address we accept (RFC 5321 path limit less the angle brackets). */
#define CRS_MAIL_ADDR_MAX 254u

/*
 * True for a plain ASCII addr-spec "local@domain": dot-atom local part (at most 64 bytes), a
 * host name domain (letters, digits, hyphens, dots). No quoted local parts, domain literals,
 * spaces, commas, angle brackets or control characters, so an accepted address is safe in both a
 * header and an SMTP command.
 */
int crs_mail_addr_valid(const char *addr);

/*
 * Parses a configured mailbox: "user@example.com" or "Display Name <user@example.com>" (the
 * display name may be quoted; it must not hold control characters, quotes or angle brackets).
 * *display is NULL when there is none. 0 or CRS_EINVAL with a sentence in err.
 */
int crs_mail_mailbox_parse(const char *s, char **display, char **addr, char *err, size_t errlen);
/* Formats a mailbox for a header: addr, or "Display" <addr> (RFC 2047 encoded when not ASCII). */
char *crs_mail_mailbox_format(const char *display, const char *addr);

/*
 * Makes text one header value: control characters become spaces, invalid UTF-8 becomes U+FFFD,
 * the result is cut at max_bytes (a whole character at a time) and, when it holds non-ASCII
 * bytes or a "=?" that a reader could take for an encoded word, it is written as RFC 2047
 * encoded words (=?UTF-8?B?...?=, at most 75 characters each, separated by spaces).
 */
int crs_mail_header_text(const char *text, size_t max_bytes, char **out);

/* RFC 5322 date in UTC: "Tue, 01 Jul 2025 10:00:00 +0000". out must hold 32 bytes. */
void crs_mail_date(int64_t unix_ms, char *out, size_t outlen);

/*
 * The Message-ID "<EVENT_ID.SINK@HOST>": the same for every attempt of one event to one sink, so
 * a receiver can tell a retry from a new message, and different for two sinks. sink and host are
 * reduced to letters, digits, '-', '_' and '.' (host "localhost" when nothing is left).
 */
char *crs_mail_message_id(const char *event_id, const char *sink, const char *host);

/* Converts any mix of LF, CRLF and lone CR to CRLF line endings (what SMTP requires). */
int crs_mail_crlf(const char *text, char **out, size_t *outlen);

/*
 * The addresses that may belong to the requester, best first and without duplicates: the
 * certificate's EMail name property, rfc822Name entries of the subjectAltName extension (from the
 * event's extension list, else from the DER certificate), then request attributes named email,
 * mail, e-mail or emailaddress. Values are returned as found (the caller validates them with
 * crs_mail_addr_valid and skips bad ones); at most 8. *out is NULL-terminated (crs_strv_free).
 */
int crs_mail_requester_candidates(const Certrelay__V1__Event *ev, char ***out, size_t *count);

/* The rfc822Name values of a DER GeneralNames (with or without its OCTET STRING wrapper), or of
 * the subjectAltName extension of a DER certificate. Appends to v (at most max entries). */
int crs_der_san_emails(const uint8_t *der, size_t len, int is_certificate, char ***v, size_t *n,
                       size_t max);

/* Built-in default templates for an event kind (`{{field}}` text, see render/template.c). */
const char *crs_mail_default_subject(uint32_t kind);
const char *crs_mail_default_body(uint32_t kind);

#endif
