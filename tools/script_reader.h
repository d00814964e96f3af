/*
 * Scripted events for `certrelay simulate --from FILE`: a JSON array of
 *
 *   {"event": "issued",
 *    "request":     {"RequestID": 42, "RequesterName": "CONTOSO\\alice",
 *                    "SubmittedWhen": {"date": "2026-01-02T03:04:05Z"}},
 *    "certificate": {"SerialNumber": "61..", "RawCertificate": {"base64": "MII.."}},
 *    "ca":          {"SanitizedCAName": "Contoso-CA", "CertCount": 1, "CRLState.0": 3},
 *    "attributes":  {"ccm": "host.contoso.test"},
 *    "extensions":  [{"oid": "2.5.29.15", "critical": true, "flags": 1,
 *                     "value": {"base64": "AwIFoA=="}}],
 *    "comment": "ignored"}
 *
 * Property names are certsrv's; values are numbers (LONG), strings (STRING), {"base64": ..}
 * (BINARY) or {"date": RFC 3339} (DATE); null or a missing key is an empty property. The whole
 * file is validated when loaded, so a bad script fails before any event is sent, with messages
 * such as "FILE: event 3: unknown event name 'x'" (events count from 1).
 */
#ifndef CERTRELAY_TOOLS_SCRIPT_READER_H
#define CERTRELAY_TOOLS_SCRIPT_READER_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay/stub.h"

/* A script holds at most this many events and is read from a file of at most 256 MiB. */
#define SCRIPT_MAX_EVENTS 1000000
#define SCRIPT_MAX_BYTES  (256u * 1024u * 1024u)

struct script;

/* Loads and validates path. On error returns CRS_EINVAL/CRS_ENOENT/CRS_ENOMEM/CRS_ETOOBIG with
 * a one-line message in err. */
int script_load(const char *path, struct script **out, char *err, size_t errlen);
/* The same from a string; name stands for FILE in messages. */
int script_load_string(const char *name, const char *text, size_t len, struct script **out,
                       char *err, size_t errlen);
void script_free(struct script *s);

size_t script_count(const struct script *s);
uint32_t script_kind(const struct script *s, size_t i);
/* A property reader over event i, valid while the script lives. */
void script_reader(struct script *s, size_t i, struct crs_prop_reader *rd);

#endif
