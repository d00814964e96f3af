/*
 * What a webhook sends, independent of how it is sent: the request body in each format
 * (formats.c), the Standard Webhooks signature (signature.c), and the small HTTP rules (header
 * lines, status classes) that the delivery driver (driver.c) applies. Portable and free of
 * network code, so all of it is unit-tested (tests/unit/test_webhook_format.c).
 */
#ifndef CERTRELAY_SINKS_WEBHOOK_FORMATS_H
#define CERTRELAY_SINKS_WEBHOOK_FORMATS_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "certrelay.pb-c.h"
#include "render/json.h"

enum crs_webhook_format {
    CRS_WEBHOOK_JSON = 0,    /* the JSON event document (docs/json-schema.md) */
    CRS_WEBHOOK_CLOUDEVENTS, /* CloudEvents 1.0, structured mode, data = the JSON document */
    CRS_WEBHOOK_TEAMS,       /* a message with an Adaptive Card (Teams Workflows webhooks) */
    CRS_WEBHOOK_SLACK        /* a Slack incoming-webhook message with blocks */
};

/* Parses "json", "cloudevents", "teams" or "slack". 0 or CRS_EINVAL. */
int crs_webhook_format_parse(const char *s, enum crs_webhook_format *out);
const char *crs_webhook_format_name(enum crs_webhook_format fmt);
/* The Content-Type header value for a format's bodies. */
const char *crs_webhook_content_type(enum crs_webhook_format fmt);

/* Upper bound on a request body: a CRL event may carry tens of MB of DER (base64 in JSON). */
#define CRS_WEBHOOK_BODY_MAX CRS_JSON_TEXT_MAX

/* Builds the request body for ev in fmt into a fresh NUL-terminated buffer. */
int crs_webhook_body(enum crs_webhook_format fmt, const Certrelay__V1__Event *ev, char **out,
                     size_t *outlen);

/* The CloudEvents `type` of an event ("org.certrelay.certificate.issued", ...); NULL if unknown. */
const char *crs_cloudevents_type(uint32_t kind);
/* The CloudEvents `source`: "/certrelay/<host>/<ca>", each part percent-encoded. Fresh string. */
char *crs_cloudevents_source(const Certrelay__V1__Event *ev);

/*
 * Standard Webhooks (standardwebhooks.com) signing. The secret file holds the base64 secret,
 * optionally prefixed "whsec_", with surrounding whitespace ignored; parse gives its raw bytes
 * (1 to CRS_WEBHOOK_SECRET_MAX). sign writes "v1,<base64 of HMAC-SHA256(secret,
 * "<id>.<timestamp>.<body>")>" into out.
 */
#define CRS_WEBHOOK_SECRET_MAX    1024u
#define CRS_WEBHOOK_SIGNATURE_LEN 48u /* "v1," + 44 base64 characters + NUL */
int crs_webhook_secret_parse(const char *text, size_t len, uint8_t **key, size_t *keylen);
int crs_webhook_sign(const uint8_t *key, size_t keylen, const char *msg_id, int64_t timestamp_s,
                     const void *body, size_t bodylen, char out[CRS_WEBHOOK_SIGNATURE_LEN]);

/*
 * Checks one configured extra header line "Name: value": the name must be an HTTP token and not
 * one CertRelay sets itself (Content-Type, Content-Length, Host, Authorization, Transfer-Encoding,
 * Expect, Connection, webhook-*), the value must be printable (no CR, LF or other control
 * characters) and the line at most 4096 bytes. 0 or CRS_EINVAL with a sentence in err.
 */
int crs_http_header_line_check(const char *line, char *err, size_t errlen);

/* The outcome class of an HTTP status: 2xx OK; 408, 429, 5xx (and anything unexpected such as
 * 3xx) RETRY; other 4xx PERMANENT. Values match enum crs_delivery_outcome. */
int crs_http_status_outcome(long status);

/* Percent-encodes everything but RFC 3986 unreserved characters. Fresh string. */
char *crs_percent_encode(const char *s);

#endif
