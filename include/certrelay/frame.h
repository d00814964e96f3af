/*
 * Framing: a 4-byte big-endian length followed by one serialized Envelope.
 *
 * CRS_FRAME_MAX caps one frame at 64 MiB. A CRL-issued event carries the base and delta CRL of
 * every valid CA certificate; CRLs of large CAs reach tens of MB, so 64 MiB leaves headroom for a
 * few of them while bounding what a misbehaving client can make the broker allocate. The reader
 * rejects an announced length above its cap before reading the payload.
 */
#ifndef CERTRELAY_FRAME_H
#define CERTRELAY_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay.pb-c.h"

#define CRS_FRAME_HEADER     4u
#define CRS_FRAME_MAX        (64u * 1024u * 1024u)
#define CRS_PROTOCOL_VERSION 1u

/*
 * Protocol versions across upgrades. certsrv keeps the exit module loaded until CertSvc restarts,
 * so after an upgrade the new broker serves the old module until then: the broker accepts the
 * version it speaks (current) and the one before it. A stub two versions behind is refused with
 * a message naming both sides' versions. When CRS_PROTOCOL_VERSION goes up, the server keeps
 * answering the previous version as that version expects (the connection records which).
 * 1 when a Hello announcing version may be served by a broker speaking current.
 */
int crs_protocol_accepts(uint32_t current, uint32_t version);

/* Encodes env as header + payload into a fresh buffer (crs_free it). CRS_ETOOBIG above max. */
int crs_frame_encode(const Certrelay__V1__Envelope *env, uint8_t **out, size_t *outlen);

/* Convenience encoders for the four message kinds. event_bytes is an already packed Event. */
int crs_frame_hello(uint32_t protocol_version, const char *stub_version, const char *ca_config,
                    uint8_t **out, size_t *outlen);
int crs_frame_event_packed(const uint8_t *event_bytes, size_t len, uint8_t **out, size_t *outlen);
int crs_frame_ack(const char *event_id, uint8_t **out, size_t *outlen);
int crs_frame_nack(const char *event_id, const char *reason, uint8_t **out, size_t *outlen);
/* The admin channel (the CLI): a request (params_json may be NULL) and the broker's reply. */
int crs_frame_admin_request(const char *command, const char *params_json, uint8_t **out,
                            size_t *outlen);
int crs_frame_admin_reply(int status, const char *error, const char *result_json, uint8_t **out,
                          size_t *outlen);

/*
 * Incremental reader for a byte stream. Feed bytes as they arrive, then call next() until it
 * reports no complete frame. The buffer grows only as far as the frame being read requires and
 * never beyond max + header.
 */
struct crs_frame_reader {
    uint8_t *buf;
    size_t start; /* offset of the first unread byte */
    size_t len;   /* end of buffered data */
    size_t cap;
    size_t max;
    size_t skip; /* size of the frame last returned by next(), dropped on the next call */
};

/* Buffer size a reader keeps between frames; a larger one is freed when it runs empty. */
#define CRS_FRAME_READER_KEEP (64u * 1024u)
void crs_frame_reader_init(struct crs_frame_reader *r, size_t max);
/* Appends data. CRS_ETOOBIG as soon as a header announces more than max, CRS_EPROTO for a zero
 * length, CRS_ENOMEM. After an error the reader must be freed. */
int crs_frame_reader_feed(struct crs_frame_reader *r, const void *data, size_t len);
/*
 * Extracts the next complete frame's payload. Returns 1 with *payload and *len pointing into the
 * reader's buffer (valid until the next feed/next/free call), 0 when no complete frame is
 * buffered, or a negative error.
 */
int crs_frame_reader_next(struct crs_frame_reader *r, const uint8_t **payload, size_t *len);
/* Frees the buffer; the reader may be re-initialized. */
void crs_frame_reader_free(struct crs_frame_reader *r);
/* Bytes buffered but not yet returned (for tests and truncation diagnostics). */
size_t crs_frame_reader_pending(const struct crs_frame_reader *r);

/*
 * Decoding a message costs more memory than its bytes: protobuf-c allocates a structure for each
 * element of a repeated message field and for each unknown field, so 4 MiB of empty repeated
 * elements (two bytes each) once cost 292 MB. Before anything is allocated, crs_pb_check walks
 * the wire format with the message's descriptor and refuses (CRS_ETOOBIG) a message with more
 * than CRS_PB_MAX_REPEATED elements in one repeated field (or unknown fields in one message), or
 * whose decoded size it estimates above CRS_PB_DECODED_MAX(len); CRS_EPROTO for bytes that are
 * not protobuf or nest deeper than CRS_PB_MAX_DEPTH. Both decoders below call it.
 */
#define CRS_PB_MAX_REPEATED     4096u
#define CRS_PB_MAX_DEPTH        16u
#define CRS_PB_DECODED_MAX(len) ((size_t)(len)*2u + (size_t)1024u * 1024u)
int crs_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len);

/* Decodes one Envelope payload (returned by next()). Free with crs_envelope_free. */
int crs_envelope_decode(const uint8_t *payload, size_t len, Certrelay__V1__Envelope **out);
void crs_envelope_free(Certrelay__V1__Envelope *env);

#endif
