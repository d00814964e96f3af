/*
 * The event model. The in-memory form of an event is the protobuf-c message generated from
 * proto/certrelay.proto (Certrelay__V1__Event): the stub builds it, the wire and the spool carry
 * its bytes, the broker stores those bytes and sinks read the decoded message. These helpers name
 * the kinds and own the encode/decode steps so that no other file calls protobuf-c directly.
 */
#ifndef CERTRELAY_EVENT_H
#define CERTRELAY_EVENT_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay.pb-c.h"

/* Every kind as a bit (the values equal certsrv's EXITEVENT_* bits and the proto enum). */
#define CRS_EVENT_ISSUED           0x001u
#define CRS_EVENT_PENDING          0x002u
#define CRS_EVENT_DENIED           0x004u
#define CRS_EVENT_REVOKED          0x008u
#define CRS_EVENT_RETRIEVE_PENDING 0x010u
#define CRS_EVENT_CRL_ISSUED       0x020u
#define CRS_EVENT_SHUTDOWN         0x040u
#define CRS_EVENT_STARTUP          0x080u
#define CRS_EVENT_UNREVOKED        0x100u
#define CRS_EVENT_IMPORTED         0x200u
/* Every kind certsrv raises: the stub's mask and what `events = all` selects. */
#define CRS_EVENT_ALL 0x3ffu
/* CertRelay's own alert kinds, raised by the broker from its expiry schedules (broker/expiry.c),
 * never by certsrv or a stub: the broker refuses them from a pipe client or a spool file. A sink
 * takes them only when its `events =` names them (or `alerts`), so that an upgrade does not send
 * new kinds to sinks configured with the default `all`. */
#define CRS_EVENT_EXPIRING     0x400u
#define CRS_EVENT_EXPIRED      0x800u
#define CRS_EVENT_CRL_EXPIRING 0x1000u
#define CRS_EVENT_ALERTS       0x1c00u

/*
 * Short lowercase names used in configuration (`events =`), the JSON schema (`event`), templates
 * and the simulator: issued, pending, denied, revoked, unrevoked, retrieve_pending, imported,
 * crl_issued, startup, shutdown, and the broker's alerts expiring, expired, crl_expiring. Returns NULL for a value that is not exactly one known bit.
 */
const char *crs_event_name(uint32_t kind);
/* The kind's title for people ("Certificate issued", "CRL published", ...): {{kind_title}}, mail
 * subjects and chat headings. NULL for a value that is not exactly one known bit. */
const char *crs_event_title(uint32_t kind);
/* Parses a short name; 0 and *kind set, or CRS_EINVAL. */
int crs_event_from_name(const char *name, uint32_t *kind);
/* Parses a comma/space separated list ("issued, revoked"; "all" for every certsrv kind; "alerts"
 * for the three alert kinds) into a mask; err names the bad
 * word. Returns 0 or CRS_EINVAL. */
int crs_event_mask_parse(const char *list, uint32_t *mask, char *err, size_t errlen);
/* True for kinds that carry a certificate (issued, revoked, unrevoked, imported, and pending,
 * denied or retrieve_pending when the request produced one). */
int crs_event_is_certificate_kind(uint32_t kind);

/* Serializes an event into a fresh buffer (crs_free it). */
int crs_event_pack(const Certrelay__V1__Event *ev, uint8_t **out, size_t *outlen);
/* Parses and validates (event_id present and a UUID, kind known); free with crs_event_free. */
int crs_event_unpack(const uint8_t *data, size_t len, Certrelay__V1__Event **out);
/* Frees an event returned by crs_event_unpack. NULL is a no-op. */
void crs_event_free(Certrelay__V1__Event *ev);
/* Checks the invariants a received event must satisfy. 0 or CRS_EPROTO. */
int crs_event_validate(const Certrelay__V1__Event *ev);
/* Event ids are stored in their canonical spelling, lower-case, so that "0193A1..." and
 * "0193a1..." are one event. Lower-cases a valid id in place: 1 when it changed (the packed bytes
 * must then be rebuilt), 0 when it was canonical already, CRS_EPROTO when it is not a UUID. */
int crs_event_id_canonicalize(Certrelay__V1__Event *ev);

/* Serial number normalized for humans and file names: lowercase hex, no separators or spaces.
 * Writes "" when the event has none. out must hold at least 129 bytes (serials are <= 20 octets
 * by RFC 5280, we allow 64). */
void crs_event_serial_hex(const Certrelay__V1__Event *ev, char *out, size_t outlen);
/* A certificate hash as certsrv shows it ("A1 b2 ...") normalized: lowercase, whitespace removed.
 * A fresh string (crs_free), "" for NULL; NULL only on allocation failure. */
char *crs_event_thumbprint(const char *hash);

#endif
