/*
 * The JSON event document: the one schema that the file drop writes and webhooks send
 * (documented in docs/json-schema.md). Built with jansson.
 */
#ifndef CERTRELAY_JSON_H
#define CERTRELAY_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "certrelay.pb-c.h"

#define CRS_JSON_SCHEMA "certrelay.event/1"

/* Builds the document as a jansson object (json_decref it). NULL on allocation failure. */
json_t *crs_event_to_json(const Certrelay__V1__Event *ev);
/* Serializes the document (compact unless pretty) into a fresh NUL-terminated buffer. */
int crs_event_to_json_text(const Certrelay__V1__Event *ev, int pretty, char **out, size_t *outlen);
/* Formats Unix milliseconds as RFC 3339 UTC with milliseconds ("2026-11-21T18:04:07.123Z").
 * out must hold 32 bytes. */
void crs_time_rfc3339(int64_t unix_ms, char *out, size_t outlen);
/* Parses RFC 3339 (Z or numeric offset, optional fraction) into Unix ms. 0 or CRS_EINVAL. */
int crs_time_parse_rfc3339(const char *s, int64_t *unix_ms);
/* The snake_case name of certsrv's request disposition (9 pending, 20 issued, 21 revoked,
 * 30 error, 31 denied); NULL for any other value. */
const char *crs_disposition_name(int64_t disposition);
/* The snake_case name of an RFC 5280 CRLReason (0 unspecified, 1 key_compromise, ...,
 * 10 aa_compromise); NULL for any other value, including the unused 7. */
const char *crs_revocation_reason_name(int64_t reason);
/* Base64 (RFC 4648, padded) of data into a fresh string. */
char *crs_base64_encode(const uint8_t *data, size_t len);
/* Decodes standard base64 (whitespace ignored). 0, CRS_EINVAL or CRS_ENOMEM. */
int crs_base64_decode(const char *text, uint8_t **out, size_t *outlen);

#endif
