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

/* Upper bound on a serialized document: a CRL event may carry tens of MB of DER (base64). */
#define CRS_JSON_TEXT_MAX (96u * 1024u * 1024u)

/* The jansson helpers every renderer uses. put and append take the reference even on failure, and
 * a NULL val (a failed constructor) is the allocation failure it stands for: CRS_ENOMEM. child
 * creates an empty object or array already owned by parent (under key, or appended when key is
 * NULL), so one json_decref of the root frees everything on failure. */
int crs_json_put(json_t *obj, const char *key, json_t *val);
int crs_json_append(json_t *arr, json_t *val);
json_t *crs_json_child(json_t *parent, const char *key, json_t *fresh);

/*
 * Serializes a jansson tree as compact JSON into a fresh crs_malloc buffer, byte for byte as
 * json_dumpb(JSON_COMPACT) would, but several times faster. CRS_ETOOBIG beyond CRS_JSON_TEXT_MAX.
 */
int crs_json_dump_compact(json_t *doc, char **out, size_t *outlen);
/* The same, indented by indent (1..31) spaces per level as json_dumpb(JSON_INDENT(indent)). */
int crs_json_dump_indented(json_t *doc, int indent, char **out, size_t *outlen);

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
