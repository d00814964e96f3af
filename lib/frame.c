/*
 * Framing (include/certrelay/frame.h).
 *
 *   +--------+--------+--------+--------+=================+
 *   |   length N, 32-bit big-endian     | Envelope, N bytes|
 *   +--------+--------+--------+--------+=================+
 *
 * The reader keeps one growable buffer per connection. It learns a frame's size from its header
 * and refuses it at once when it exceeds the cap, so memory per connection is bounded by
 * max + header whatever a peer sends.
 */
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/frame.h"

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static uint32_t get_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int crs_frame_encode(const Certrelay__V1__Envelope *env, uint8_t **out, size_t *outlen)
{
    size_t len;
    uint8_t *buf;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (env == NULL || out == NULL || outlen == NULL)
        return CRS_EINVAL;
    len = certrelay__v1__envelope__get_packed_size(env);
    if (len == 0)
        return CRS_EINVAL;
    if (len > CRS_FRAME_MAX)
        return CRS_ETOOBIG;
    buf = crs_malloc(CRS_FRAME_HEADER + len);
    if (buf == NULL)
        return CRS_ENOMEM;
    put_be32(buf, (uint32_t)len);
    certrelay__v1__envelope__pack(env, buf + CRS_FRAME_HEADER);
    *out = buf;
    *outlen = CRS_FRAME_HEADER + len;
    return 0;
}

int crs_protocol_accepts(uint32_t current, uint32_t version)
{
    return version != 0 && (version == current || version + 1 == current);
}

int crs_frame_hello(uint32_t protocol_version, const char *stub_version, const char *ca_config,
                    uint8_t **out, size_t *outlen)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__Hello hello = CERTRELAY__V1__HELLO__INIT;

    hello.has_protocol_version = 1;
    hello.protocol_version = protocol_version;
    hello.stub_version = (char *)stub_version;
    hello.ca_config = (char *)ca_config;
    env.body_case = CERTRELAY__V1__ENVELOPE__BODY_HELLO;
    env.hello = &hello;
    return crs_frame_encode(&env, out, outlen);
}

/*
 * An Envelope holding an Event is field 2, length-delimited. Rather than unpacking and repacking
 * an already packed Event, write the Envelope's bytes directly: tag 0x12, varint length, payload.
 */
int crs_frame_event_packed(const uint8_t *event_bytes, size_t len, uint8_t **out, size_t *outlen)
{
    uint8_t hdr[16];
    size_t hlen = 0, total;
    size_t v = len;
    uint8_t *buf;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if ((event_bytes == NULL && len > 0) || out == NULL || outlen == NULL)
        return CRS_EINVAL;
    hdr[hlen++] = 0x12;
    do {
        uint8_t b = v & 0x7f;
        v >>= 7;
        hdr[hlen++] = (uint8_t)(b | (v ? 0x80 : 0));
    } while (v);
    if (len > CRS_FRAME_MAX - hlen)
        return CRS_ETOOBIG;
    total = hlen + len;
    buf = crs_malloc(CRS_FRAME_HEADER + total);
    if (buf == NULL)
        return CRS_ENOMEM;
    put_be32(buf, (uint32_t)total);
    memcpy(buf + CRS_FRAME_HEADER, hdr, hlen);
    if (len > 0)
        memcpy(buf + CRS_FRAME_HEADER + hlen, event_bytes, len);
    *out = buf;
    *outlen = CRS_FRAME_HEADER + total;
    return 0;
}

int crs_frame_ack(const char *event_id, uint8_t **out, size_t *outlen)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__Ack ack = CERTRELAY__V1__ACK__INIT;

    ack.event_id = (char *)event_id;
    env.body_case = CERTRELAY__V1__ENVELOPE__BODY_ACK;
    env.ack = &ack;
    return crs_frame_encode(&env, out, outlen);
}

int crs_frame_nack(const char *event_id, const char *reason, uint8_t **out, size_t *outlen)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__Nack nack = CERTRELAY__V1__NACK__INIT;

    nack.event_id = (char *)event_id;
    nack.reason = (char *)reason;
    env.body_case = CERTRELAY__V1__ENVELOPE__BODY_NACK;
    env.nack = &nack;
    return crs_frame_encode(&env, out, outlen);
}

void crs_frame_reader_init(struct crs_frame_reader *r, size_t max)
{
    if (r == NULL)
        return;
    memset(r, 0, sizeof(*r));
    r->max = (max == 0 || max > CRS_FRAME_MAX) ? CRS_FRAME_MAX : max;
}

/* Drops the frame returned by the previous next() call. A buffer grown for a large frame is
 * released once nothing is buffered, so one big frame does not pin its size for the connection's
 * lifetime. */
static void consume(struct crs_frame_reader *r)
{
    r->start += r->skip;
    r->skip = 0;
    if (r->start == r->len) {
        r->start = r->len = 0;
        if (r->cap > CRS_FRAME_READER_KEEP) {
            crs_free(r->buf);
            r->buf = NULL;
            r->cap = 0;
        }
    }
}

/* Checks the header of the frame at the read position, once it is complete. */
static int check_header(const struct crs_frame_reader *r)
{
    uint32_t n;

    if (r->len - r->start < CRS_FRAME_HEADER)
        return 0;
    n = get_be32(r->buf + r->start);
    if (n == 0)
        return CRS_EPROTO;
    if (n > r->max)
        return CRS_ETOOBIG;
    return 0;
}

int crs_frame_reader_feed(struct crs_frame_reader *r, const void *data, size_t len)
{
    size_t have, limit;

    if (r == NULL || (data == NULL && len > 0))
        return CRS_EINVAL;
    consume(r);
    if (len == 0)
        return 0;
    /* Move unread bytes to the front so the buffer never needs more than one frame's room. */
    if (r->start > 0) {
        memmove(r->buf, r->buf + r->start, r->len - r->start);
        r->len -= r->start;
        r->start = 0;
    }
    have = r->len;
    limit = r->max + CRS_FRAME_HEADER;
    if (len > limit || have > limit - len) {
        /* More than one maximal frame would be buffered: the caller did not drain with next(),
         * or the header being read announces too much. The header check gives the precise
         * error when it can. */
        int rc = check_header(r);
        return rc != 0 ? rc : CRS_ETOOBIG;
    }
    if (have + len > r->cap) {
        size_t cap = r->cap ? r->cap : 4096;
        uint8_t *nb;

        while (cap < have + len)
            cap *= 2;
        if (cap > limit)
            cap = limit;
        nb = crs_realloc(r->buf, cap);
        if (nb == NULL)
            return CRS_ENOMEM;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + have, data, len);
    r->len = have + len;
    return check_header(r);
}

int crs_frame_reader_next(struct crs_frame_reader *r, const uint8_t **payload, size_t *len)
{
    uint32_t n;
    int rc;

    if (payload != NULL)
        *payload = NULL;
    if (len != NULL)
        *len = 0;
    if (r == NULL || payload == NULL || len == NULL)
        return CRS_EINVAL;
    consume(r);
    if (r->len - r->start < CRS_FRAME_HEADER)
        return 0;
    rc = check_header(r);
    if (rc != 0)
        return rc;
    n = get_be32(r->buf + r->start);
    if (r->len - r->start - CRS_FRAME_HEADER < n)
        return 0;
    *payload = r->buf + r->start + CRS_FRAME_HEADER;
    *len = n;
    r->skip = CRS_FRAME_HEADER + n;
    return 1;
}

void crs_frame_reader_free(struct crs_frame_reader *r)
{
    if (r == NULL)
        return;
    crs_free(r->buf);
    r->buf = NULL;
    r->start = r->len = r->cap = r->skip = 0;
}

size_t crs_frame_reader_pending(const struct crs_frame_reader *r)
{
    return r ? r->len - r->start - r->skip : 0;
}

/* ---- Decoding cost, checked before decoding ---- */

/* What one allocation costs beyond its size (malloc's header and rounding), for the estimate. */
#define PB_ALLOC_OVERHEAD 32u

struct pb_scan {
    size_t decoded; /* estimated bytes protobuf-c will allocate */
    size_t limit;
};

static int pb_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    unsigned shift = 0;

    *v = 0;
    while (*i < n && shift < 64) {
        uint8_t b = p[(*i)++];
        *v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0)
            return 0;
        shift += 7;
    }
    return CRS_EPROTO;
}

static int pb_cost(struct pb_scan *sc, size_t bytes)
{
    sc->decoded += bytes + PB_ALLOC_OVERHEAD;
    return sc->decoded > sc->limit ? CRS_ETOOBIG : 0;
}

static int pb_scan_message(struct pb_scan *sc, const ProtobufCMessageDescriptor *desc,
                           const uint8_t *p, size_t n, unsigned depth)
{
    unsigned counts[64];
    unsigned unknown = 0;
    size_t i = 0;
    int rc;

    if (depth > CRS_PB_MAX_DEPTH)
        return CRS_EPROTO;
    if (desc->n_fields > sizeof(counts) / sizeof(counts[0]))
        return CRS_EINTERNAL;
    memset(counts, 0, sizeof(counts));
    rc = pb_cost(sc, desc->sizeof_message);
    while (rc == 0 && i < n) {
        const ProtobufCFieldDescriptor *f;
        uint64_t tag, v = 0;
        size_t start, flen = 0;

        if (pb_varint(p, n, &i, &tag) != 0 || (tag >> 3) == 0 || (tag >> 3) > 0x1fffffff)
            return CRS_EPROTO;
        start = i;
        switch (tag & 7) {
        case 0:
            if (pb_varint(p, n, &i, &v) != 0)
                return CRS_EPROTO;
            break;
        case 1:
            if (n - i < 8)
                return CRS_EPROTO;
            i += 8;
            break;
        case 2:
            if (pb_varint(p, n, &i, &v) != 0 || v > n - i)
                return CRS_EPROTO;
            start = i;
            flen = (size_t)v;
            i += flen;
            break;
        case 5:
            if (n - i < 4)
                return CRS_EPROTO;
            i += 4;
            break;
        default:
            return CRS_EPROTO; /* groups are not used by certrelay.v1 */
        }
        f = protobuf_c_message_descriptor_get_field(desc, (unsigned)(tag >> 3));
        if (f == NULL) {
            /* Kept by protobuf-c as an unknown field: a record and a copy of its bytes. */
            if (++unknown > CRS_PB_MAX_REPEATED)
                return CRS_ETOOBIG;
            rc = pb_cost(sc, sizeof(ProtobufCMessageUnknownField) + (i - start));
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            unsigned *c = &counts[f - desc->fields];
            /* A packed run of scalars may hold up to one element per byte. */
            size_t elems = (tag & 7) == 2 && f->type != PROTOBUF_C_TYPE_MESSAGE &&
                                   f->type != PROTOBUF_C_TYPE_STRING &&
                                   f->type != PROTOBUF_C_TYPE_BYTES
                               ? flen
                               : 1;
            if (elems > CRS_PB_MAX_REPEATED - *c)
                return CRS_ETOOBIG;
            *c += (unsigned)elems;
            rc = pb_cost(sc, elems * 8u);
            if (rc != 0)
                break;
        }
        if ((tag & 7) != 2)
            continue;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE)
            rc = pb_scan_message(sc, f->descriptor, p + start, flen, depth + 1);
        else if (f->type == PROTOBUF_C_TYPE_STRING || f->type == PROTOBUF_C_TYPE_BYTES)
            rc = pb_cost(sc, flen + 1);
    }
    return rc;
}

int crs_pb_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len)
{
    struct pb_scan sc;

    if (desc == NULL || (data == NULL && len > 0))
        return CRS_EINVAL;
    sc.decoded = 0;
    sc.limit = CRS_PB_DECODED_MAX(len);
    return pb_scan_message(&sc, desc, data, len, 0);
}

int crs_envelope_decode(const uint8_t *payload, size_t len, Certrelay__V1__Envelope **out)
{
    Certrelay__V1__Envelope *env;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (payload == NULL || out == NULL)
        return CRS_EINVAL;
    rc = crs_pb_check(&certrelay__v1__envelope__descriptor, payload, len);
    if (rc != 0)
        return rc;
    env = certrelay__v1__envelope__unpack(&crs_protobuf_allocator, len, payload);
    if (env == NULL)
        return CRS_EPROTO;
    if (env->body_case == CERTRELAY__V1__ENVELOPE__BODY__NOT_SET) {
        certrelay__v1__envelope__free_unpacked(env, &crs_protobuf_allocator);
        return CRS_EPROTO;
    }
    *out = env;
    return 0;
}

void crs_envelope_free(Certrelay__V1__Envelope *env)
{
    if (env != NULL)
        certrelay__v1__envelope__free_unpacked(env, &crs_protobuf_allocator);
}

int crs_frame_admin_request(const char *command, const char *params_json, uint8_t **out,
                            size_t *outlen)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__AdminRequest req = CERTRELAY__V1__ADMIN_REQUEST__INIT;

    if (command == NULL)
        return CRS_EINVAL;
    req.command = (char *)command;
    req.params_json = (char *)params_json;
    env.body_case = CERTRELAY__V1__ENVELOPE__BODY_ADMIN_REQUEST;
    env.admin_request = &req;
    return crs_frame_encode(&env, out, outlen);
}

int crs_frame_admin_reply(int status, const char *error, const char *result_json, uint8_t **out,
                          size_t *outlen)
{
    Certrelay__V1__Envelope env = CERTRELAY__V1__ENVELOPE__INIT;
    Certrelay__V1__AdminReply rep = CERTRELAY__V1__ADMIN_REPLY__INIT;

    rep.has_status = 1;
    rep.status = status;
    rep.error = (char *)error;
    rep.result_json = (char *)result_json;
    env.body_case = CERTRELAY__V1__ENVELOPE__BODY_ADMIN_REPLY;
    env.admin_reply = &rep;
    return crs_frame_encode(&env, out, outlen);
}
