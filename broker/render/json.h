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
#include "certrelay/base64.h"
#include "certrelay/timefmt.h"

#define CRS_JSON_SCHEMA "certrelay.event/1"

/* Builds the document as a jansson object (json_decref it). NULL on allocation failure. */
json_t *crs_event_to_json(const Certrelay__V1__Event *ev);
/* Serializes the document (compact unless pretty) into a fresh NUL-terminated buffer. */
int crs_event_to_json_text(const Certrelay__V1__Event *ev, int pretty, char **out, size_t *outlen);
/* The snake_case name of certsrv's request disposition (9 pending, 20 issued, 21 revoked,
 * 30 error, 31 denied); NULL for any other value. */
const char *crs_disposition_name(int64_t disposition);
/* The snake_case name of an RFC 5280 CRLReason (0 unspecified, 1 key_compromise, ...,
 * 10 aa_compromise); NULL for any other value, including the unused 7. */
const char *crs_revocation_reason_name(int64_t reason);
#endif
