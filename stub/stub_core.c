/*
 * The stub core: what the exit module does inside certsrv's Notify, in portable C.
 *
 * A notification goes through three steps:
 *
 *   1. build   read the event through the platform's property reader into an Event message;
 *   2. send    hand the packed Event to the broker on a pooled connection and wait for its Ack;
 *   3. spool   when the broker is absent, slow or refuses, write the Event to the spool directory,
 *              where the broker picks it up later.
 *
 * A circuit breaker (optional, on in the exit module) keeps an absent or hung broker from costing
 * certsrv a full timeout per certificate: after the broker failed, calls go straight to the spool
 * for a back-off window, then one call at a time probes it.
 *
 * certsrv waits for Notify and calls it from many threads at once, so every blocking step is
 * bounded by one deadline computed at entry, no lock is held across I/O, and a failure of one
 * property never costs the event: certsrv gives us one chance to see it.
 *
 * On the wire, each connection carries (see proto/certrelay.proto):
 *
 *   stub -> broker   Hello{protocol_version, stub_version, ca_config}    once, when opened
 *   stub -> broker   Event{...}                                          one per call
 *   broker -> stub   Ack{event_id} or Nack{event_id, reason}             in order
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/defaults.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/log.h"
#include "certrelay/spool.h"
#include "certrelay/stub.h"
#include "certrelay/text.h"
#include "certrelay/thread.h"
#include "certrelay/uuid.h"
#include "certrelay/version.h"
#include "transport.h"

#define STUB_DEFAULT_MAX_CONN 8u
/* certsrv's CertCount is the number of CA certificates (renewals); 1024 is far beyond any CA. */
#define STUB_MAX_CA_CERTS 1024
/* Caps on enumerations, so a misbehaving reader cannot grow an event without bound. */
#define STUB_MAX_EXTENSIONS 1024
#define STUB_MAX_ATTRIBUTES 4096
/* Replies are Acks and Nacks: a few hundred bytes. Anything near this cap is a protocol error. */
#define STUB_REPLY_MAX (64u * 1024u)
/* A packed Event must fit in a frame with its Envelope around it; the margin also covers the
 * TruncatedFields note added when payloads had to be dropped. */
#define STUB_EVENT_MAX      (CRS_FRAME_MAX - 64u * 1024u)
#define STUB_TRUNC_NOTE_MAX (16u * 1024u)
/* certsrv's CRLState value for a valid CRL (CA_DISP_VALID). */
#define STUB_CRL_STATE_VALID 3
/* certsrv's request dispositions that tell a revocation from a release from hold under 0x8. */
#define STUB_DISP_ISSUED  20
#define STUB_DISP_REVOKED 21

enum stub_scope { SCOPE_REQUEST, SCOPE_CERTIFICATE, SCOPE_CA };

/* A connection to the broker with its reply reader. Idle ones wait in the stub's pool. */
struct stub_conn {
    struct crs_transport *t;
    struct crs_frame_reader fr;
    struct stub_conn *next;
};

struct crs_stub {
    char *pipe;
    char *spool_dir;
    char *ca_config;
    char *stub_version;
    char *service; /* the broker's Windows service, NULL: unchecked */
    uint32_t timeout_ms;
    uint32_t max_connections;
    int capture_raw_request;
    uint32_t breaker_ms; /* 0: no circuit breaker */

    uint8_t *hello; /* the Hello frame every new connection sends first */
    size_t hello_len;

    /* Guards the idle list and the breaker; never held across I/O. */
    crs_mutex_t lock;
    struct stub_conn *idle;
    uint32_t nidle;

    /* The circuit breaker: open while open_until != 0. */
    uint64_t open_until; /* crs_mono_ms() before which calls skip the broker */
    uint32_t window_ms;  /* the current back-off window */
    int probing;         /* one call is probing the broker */
    int open_error;      /* the failure that opened it, reported for skipped calls */
};

/* ---------------------------------------------------------------------------------------------
 * Property values
 * ------------------------------------------------------------------------------------------- */

void crs_prop_value_clear(struct crs_prop_value *v)
{
    if (v == NULL)
        return;
    crs_free(v->bin);
    crs_free(v->str);
    memset(v, 0, sizeof(*v));
}

/*
 * Makes *s valid UTF-8 (crs_utf8_sanitize: each invalid sequence becomes U+FFFD). Strings travel
 * on to JSON documents, mail and file names; a lone surrogate from a hostile request must not make
 * a sink fail on every attempt. Returns 0 or CRS_ENOMEM (then *s is unchanged).
 */
static int utf8_repair(char **s)
{
    size_t n = strlen(*s);
    char *out;

    if (crs_utf8_valid(*s, n))
        return 0;
    out = crs_utf8_sanitize(*s, n);
    if (out == NULL)
        return CRS_ENOMEM;
    crs_free(*s);
    *s = out;
    return 0;
}

/*
 * Reads one property. Returns 0 with *v filled and of the requested type, or a negative code:
 * CRS_ENOENT when the property is empty (or the reader has no such scope), anything else when the
 * reader failed. A value of the wrong type counts as a failed read.
 */
static int stub_get(const struct crs_prop_reader *rd, enum stub_scope scope, const char *name,
                    enum crs_prop_type type, struct crs_prop_value *v)
{
    int (*get)(void *, const char *, enum crs_prop_type, struct crs_prop_value *);

    memset(v, 0, sizeof(*v));
    switch (scope) {
    case SCOPE_REQUEST:
        get = rd->get_request;
        break;
    case SCOPE_CERTIFICATE:
        get = rd->get_certificate;
        break;
    default:
        get = rd->get_ca;
        break;
    }
    if (get == NULL)
        return CRS_ENOENT;

    int rc = get(rd->ctx, name, type, v);
    if (rc != 0) {
        crs_prop_value_clear(v);
        return rc;
    }
    if (v->type != (int)type || (type == CRS_PROP_STRING && v->str == NULL) ||
        (type == CRS_PROP_BINARY && v->bin == NULL && v->len > 0)) {
        crs_prop_value_clear(v);
        return CRS_EPROTO;
    }
    if (type == CRS_PROP_BINARY && v->len == 0) {
        crs_prop_value_clear(v);
        return CRS_ENOENT;
    }
    return 0;
}

/* Logs a property read that failed for a reason other than being empty. */
static void stub_prop_failed(const char *name, int rc)
{
    if (rc != CRS_ENOENT)
        crs_debug("stub: property %s not read: %s", name, crs_strerror(rc));
}

/*
 * The typed readers below return 1 when the value was stored, 0 when the property was empty or
 * failed (skipped: one property never costs the event), or CRS_ENOMEM when our own allocation
 * failed and the event cannot be built at all.
 */
static int stub_read_long(const struct crs_prop_reader *rd, enum stub_scope scope, const char *name,
                          protobuf_c_boolean *has, int64_t *dst)
{
    struct crs_prop_value v;
    int rc = stub_get(rd, scope, name, CRS_PROP_LONG, &v);
    if (rc != 0) {
        stub_prop_failed(name, rc);
        return 0;
    }
    *dst = v.l;
    if (has != NULL)
        *has = 1;
    crs_prop_value_clear(&v);
    return 1;
}

static int stub_read_date(const struct crs_prop_reader *rd, enum stub_scope scope, const char *name,
                          protobuf_c_boolean *has, int64_t *dst)
{
    struct crs_prop_value v;
    int rc = stub_get(rd, scope, name, CRS_PROP_DATE, &v);
    if (rc != 0) {
        stub_prop_failed(name, rc);
        return 0;
    }
    *dst = v.date_ms;
    *has = 1;
    crs_prop_value_clear(&v);
    return 1;
}

static int stub_read_string(const struct crs_prop_reader *rd, enum stub_scope scope,
                            const char *name, char **dst)
{
    struct crs_prop_value v;
    int rc = stub_get(rd, scope, name, CRS_PROP_STRING, &v);
    if (rc != 0) {
        stub_prop_failed(name, rc);
        return 0;
    }
    rc = utf8_repair(&v.str);
    if (rc != 0) {
        crs_prop_value_clear(&v);
        return rc;
    }
    crs_free(*dst);
    *dst = v.str; /* ownership moves into the message */
    v.str = NULL;
    crs_prop_value_clear(&v);
    return 1;
}

static int stub_read_binary(const struct crs_prop_reader *rd, enum stub_scope scope,
                            const char *name, protobuf_c_boolean *has, ProtobufCBinaryData *dst)
{
    struct crs_prop_value v;
    int rc = stub_get(rd, scope, name, CRS_PROP_BINARY, &v);
    if (rc != 0) {
        stub_prop_failed(name, rc);
        return 0;
    }
    crs_free(dst->data);
    dst->data = v.bin; /* ownership moves into the message */
    dst->len = v.len;
    *has = 1;
    v.bin = NULL;
    crs_prop_value_clear(&v);
    return 1;
}

/* ---------------------------------------------------------------------------------------------
 * Building the Event
 * ------------------------------------------------------------------------------------------- */

/* Grows a repeated field's pointer array by one slot. */
static int stub_grow(void ***arr, size_t n, size_t *cap)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 8;
    void **p = crs_realloc(*arr, ncap * sizeof(*p));
    if (p == NULL)
        return CRS_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static int stub_build_ca(const struct crs_stub *stub, const struct crs_prop_reader *rd,
                         Certrelay__V1__Event *ev)
{
    Certrelay__V1__CaInfo *ca = crs_malloc(sizeof(*ca));
    if (ca == NULL)
        return CRS_ENOMEM;
    certrelay__v1__ca_info__init(ca);
    ev->ca = ca;

    if (stub->ca_config != NULL) {
        ca->config = crs_strdup(stub->ca_config);
        if (ca->config == NULL)
            return CRS_ENOMEM;
    }
    int rc = stub_read_string(rd, SCOPE_CA, "SanitizedCAName", &ca->sanitized_name);
    if (rc < 0)
        return rc;
    rc = stub_read_string(rd, SCOPE_CA, "MachineDNSName", &ca->host);
    return rc < 0 ? rc : 0;
}

struct attr_walk {
    Certrelay__V1__RequestInfo *req;
    size_t cap;
    int err;
};

static int stub_on_attribute(void *arg, const char *name, const char *value)
{
    struct attr_walk *w = arg;
    Certrelay__V1__RequestInfo *req = w->req;

    if (name == NULL || value == NULL)
        return 0;
    if (req->n_attributes >= STUB_MAX_ATTRIBUTES)
        return 1;
    w->err = stub_grow((void ***)&req->attributes, req->n_attributes, &w->cap);
    if (w->err != 0)
        return 1;
    Certrelay__V1__Attribute *a = crs_malloc(sizeof(*a));
    if (a == NULL) {
        w->err = CRS_ENOMEM;
        return 1;
    }
    certrelay__v1__attribute__init(a);
    req->attributes[req->n_attributes++] = a;
    a->name = crs_strdup(name);
    a->value = crs_strdup(value);
    if (a->name == NULL || a->value == NULL || utf8_repair(&a->name) != 0 ||
        utf8_repair(&a->value) != 0) {
        w->err = CRS_ENOMEM;
        return 1;
    }
    return 0;
}

/* Reads one property in the builders below: a read error ends the build (only allocation
 * failures are errors there); otherwise counts whether the property was present. */
#define STUB_TRY(expr)                                                                             \
    do {                                                                                           \
        rc = (expr);                                                                               \
        if (rc < 0)                                                                                \
            return rc;                                                                             \
        found += rc;                                                                               \
    } while (0)

/* Request properties, for every kind about a request. Absent ones stay unset. */
static int stub_build_request(const struct crs_stub *stub, const struct crs_prop_reader *rd,
                              Certrelay__V1__Event *ev)
{
    Certrelay__V1__RequestInfo *req = crs_malloc(sizeof(*req));
    int found = 0;
    int rc;

    if (req == NULL)
        return CRS_ENOMEM;
    certrelay__v1__request_info__init(req);
    ev->request = req;

    STUB_TRY(
        stub_read_long(rd, SCOPE_REQUEST, "RequestID", &req->has_request_id, &req->request_id));
    STUB_TRY(stub_read_long(rd, SCOPE_REQUEST, "RequestType", &req->has_request_type,
                            &req->request_type));
    STUB_TRY(
        stub_read_long(rd, SCOPE_REQUEST, "Disposition", &req->has_disposition, &req->disposition));
    STUB_TRY(stub_read_string(rd, SCOPE_REQUEST, "DispositionMessage", &req->disposition_message));
    STUB_TRY(
        stub_read_long(rd, SCOPE_REQUEST, "StatusCode", &req->has_status_code, &req->status_code));
    STUB_TRY(stub_read_string(rd, SCOPE_REQUEST, "RequesterName", &req->requester_name));
    STUB_TRY(stub_read_string(rd, SCOPE_REQUEST, "CallerName", &req->caller_name));
    STUB_TRY(stub_read_date(rd, SCOPE_REQUEST, "SubmittedWhen", &req->has_submitted_when_ms,
                            &req->submitted_when_ms));
    STUB_TRY(stub_read_date(rd, SCOPE_REQUEST, "ResolvedWhen", &req->has_resolved_when_ms,
                            &req->resolved_when_ms));
    STUB_TRY(stub_read_date(rd, SCOPE_REQUEST, "RevokedWhen", &req->has_revoked_when_ms,
                            &req->revoked_when_ms));
    STUB_TRY(stub_read_date(rd, SCOPE_REQUEST, "RevokedEffectiveWhen",
                            &req->has_revoked_effective_when_ms, &req->revoked_effective_when_ms));
    STUB_TRY(stub_read_long(rd, SCOPE_REQUEST, "RevokedReason", &req->has_revoked_reason,
                            &req->revoked_reason));
    STUB_TRY(stub_read_string(rd, SCOPE_REQUEST, "RequestAttributes", &req->request_attributes));
    STUB_TRY(
        stub_read_string(rd, SCOPE_REQUEST, "CertificateTemplate", &req->certificate_template));
    /* The request holds the requester's public key and whatever else they put in it; it is
     * large and rarely wanted, so it is captured only on request. RawArchivedKey (the private
     * key of a key-archival request) is never read at all. */
    if (stub->capture_raw_request)
        STUB_TRY(stub_read_binary(rd, SCOPE_REQUEST, "RawRequest", &req->has_raw_request,
                                  &req->raw_request));

    if (rd->enum_attributes != NULL) {
        struct attr_walk w = {.req = req};
        rc = rd->enum_attributes(rd->ctx, stub_on_attribute, &w);
        if (w.err != 0)
            return w.err;
        if (rc != 0 && rc != CRS_ENOENT)
            crs_debug("stub: request attributes not enumerated: %s", crs_strerror(rc));
        found += req->n_attributes > 0;
    }

    if (!found) {
        certrelay__v1__request_info__free_unpacked(req, &crs_protobuf_allocator);
        ev->request = NULL;
    }
    return 0;
}

struct ext_walk {
    Certrelay__V1__CertificateInfo *cert;
    size_t cap;
    int err;
};

static int stub_on_extension(void *arg, const char *oid, uint32_t flags, int critical,
                             const uint8_t *der, size_t len)
{
    struct ext_walk *w = arg;
    Certrelay__V1__CertificateInfo *cert = w->cert;

    if (oid == NULL || (der == NULL && len > 0))
        return 0;
    if (cert->n_extensions >= STUB_MAX_EXTENSIONS)
        return 1;
    w->err = stub_grow((void ***)&cert->extensions, cert->n_extensions, &w->cap);
    if (w->err != 0)
        return 1;
    Certrelay__V1__Extension *x = crs_malloc(sizeof(*x));
    if (x == NULL) {
        w->err = CRS_ENOMEM;
        return 1;
    }
    certrelay__v1__extension__init(x);
    cert->extensions[cert->n_extensions++] = x;
    x->oid = crs_strdup(oid);
    if (x->oid == NULL || utf8_repair(&x->oid) != 0) {
        w->err = CRS_ENOMEM;
        return 1;
    }
    x->has_critical = 1;
    x->critical = critical != 0;
    x->has_flags = 1;
    x->flags = flags;
    if (len > 0) {
        x->value.data = crs_malloc(len);
        if (x->value.data == NULL) {
            w->err = CRS_ENOMEM;
            return 1;
        }
        memcpy(x->value.data, der, len);
        x->value.len = len;
        x->has_value = 1;
    }
    return 0;
}

/*
 * Certificate properties. Pending, denied and retrieve-pending events may have no certificate:
 * then every read comes back empty and the event carries no CertificateInfo.
 */
static int stub_build_certificate(const struct crs_prop_reader *rd, Certrelay__V1__Event *ev)
{
    Certrelay__V1__CertificateInfo *c = crs_malloc(sizeof(*c));
    int found = 0;
    int rc;

    if (c == NULL)
        return CRS_ENOMEM;
    certrelay__v1__certificate_info__init(c);
    ev->certificate = c;

    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "SerialNumber", &c->serial_number));
    STUB_TRY(stub_read_binary(rd, SCOPE_CERTIFICATE, "RawCertificate", &c->has_raw_certificate,
                              &c->raw_certificate));
    STUB_TRY(stub_read_date(rd, SCOPE_CERTIFICATE, "NotBefore", &c->has_not_before_ms,
                            &c->not_before_ms));
    STUB_TRY(
        stub_read_date(rd, SCOPE_CERTIFICATE, "NotAfter", &c->has_not_after_ms, &c->not_after_ms));
    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "DistinguishedName", &c->distinguished_name));
    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "CommonName", &c->common_name));
    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "UPN", &c->upn));
    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "CertificateHash", &c->certificate_hash));
    STUB_TRY(
        stub_read_string(rd, SCOPE_CERTIFICATE, "CertificateTemplate", &c->certificate_template));
    STUB_TRY(
        stub_read_string(rd, SCOPE_CERTIFICATE, "PublicKeyAlgorithm", &c->public_key_algorithm));
    STUB_TRY(stub_read_long(rd, SCOPE_CERTIFICATE, "PublicKeyLength", &c->has_public_key_length,
                            &c->public_key_length));
    STUB_TRY(stub_read_string(rd, SCOPE_CERTIFICATE, "EMail", &c->email));

    if (rd->enum_extensions != NULL) {
        struct ext_walk w = {.cert = c};
        rc = rd->enum_extensions(rd->ctx, stub_on_extension, &w);
        if (w.err != 0)
            return w.err;
        if (rc != 0 && rc != CRS_ENOENT)
            crs_debug("stub: extensions not enumerated: %s", crs_strerror(rc));
        found += c->n_extensions > 0;
    }

    if (!found) {
        certrelay__v1__certificate_info__free_unpacked(c, &crs_protobuf_allocator);
        ev->certificate = NULL;
    }
    return 0;
}

/*
 * For crl_issued: the base and delta CRL of every CA certificate index whose CRL is valid
 * (CRLState.i == 3). A missing delta is normal: delta CRLs may be disabled.
 */
static int stub_build_crls(const struct crs_prop_reader *rd, Certrelay__V1__Event *ev)
{
    int64_t count = 0;
    size_t cap = 0;
    char name[48];

    if (stub_read_long(rd, SCOPE_CA, "CertCount", NULL, &count) <= 0 || count <= 0)
        return 0;
    if (count > STUB_MAX_CA_CERTS)
        count = STUB_MAX_CA_CERTS;

    for (int64_t i = 0; i < count; i++) {
        int64_t state = 0;
        snprintf(name, sizeof(name), "CRLState.%d", (int)i);
        if (stub_read_long(rd, SCOPE_CA, name, NULL, &state) <= 0 || state != STUB_CRL_STATE_VALID)
            continue;

        int rc = stub_grow((void ***)&ev->crls, ev->n_crls, &cap);
        if (rc != 0)
            return rc;
        Certrelay__V1__CrlInfo *crl = crs_malloc(sizeof(*crl));
        if (crl == NULL)
            return CRS_ENOMEM;
        certrelay__v1__crl_info__init(crl);
        ev->crls[ev->n_crls++] = crl;
        crl->has_ca_cert_index = 1;
        crl->ca_cert_index = (uint32_t)i;

        snprintf(name, sizeof(name), "RawCRL.%d", (int)i);
        rc = stub_read_binary(rd, SCOPE_CA, name, &crl->has_raw_crl, &crl->raw_crl);
        if (rc < 0)
            return rc;
        snprintf(name, sizeof(name), "RawDeltaCRL.%d", (int)i);
        rc = stub_read_binary(rd, SCOPE_CA, name, &crl->has_raw_delta_crl, &crl->raw_delta_crl);
        if (rc < 0)
            return rc;
        if (!crl->has_raw_crl && !crl->has_raw_delta_crl) {
            /* A valid state but no CRL to show for it: nothing worth sending. */
            certrelay__v1__crl_info__free_unpacked(crl, &crs_protobuf_allocator);
            ev->n_crls--;
        }
    }
    return 0;
}

/* Adds extra[key] = string value (both copied). */
static int stub_extra_string(Certrelay__V1__Event *ev, const char *key, const char *value)
{
    Certrelay__V1__Event__ExtraEntry **arr;
    Certrelay__V1__Event__ExtraEntry *e;

    arr = crs_realloc(ev->extra, (ev->n_extra + 1) * sizeof(*arr));
    if (arr == NULL)
        return CRS_ENOMEM;
    ev->extra = arr;
    e = crs_malloc(sizeof(*e));
    if (e == NULL)
        return CRS_ENOMEM;
    certrelay__v1__event__extra_entry__init(e);
    ev->extra[ev->n_extra++] = e;
    e->key = crs_strdup(key);
    e->value = crs_malloc(sizeof(*e->value));
    if (e->key == NULL || e->value == NULL)
        return CRS_ENOMEM;
    certrelay__v1__value__init(e->value);
    e->value->v_case = CERTRELAY__V1__VALUE__V_STRING_VALUE;
    e->value->string_value = crs_strdup(value);
    if (e->value->string_value == NULL) {
        e->value->v_case = CERTRELAY__V1__VALUE__V__NOT_SET;
        return CRS_ENOMEM;
    }
    return 0;
}

/* A payload the size cap may drop, largest first. */
struct stub_droppable {
    ProtobufCBinaryData *data;
    protobuf_c_boolean *has;
    char name[32];
};

static int stub_droppable_cmp(const void *a, const void *b)
{
    const struct stub_droppable *x = a, *y = b;
    if (x->data->len != y->data->len)
        return x->data->len < y->data->len ? 1 : -1;
    return strcmp(x->name, y->name);
}

/*
 * Keeps the packed event under the frame cap. The event must still reach the broker (certsrv
 * will not tell us again), so the bulkiest payloads go first, largest first: CRLs and the raw
 * request, then the raw certificate. What was dropped is listed in extra["TruncatedFields"].
 */
static int stub_fit(Certrelay__V1__Event *ev)
{
    struct stub_droppable *d = NULL;
    size_t nd = 0;
    char *note = NULL;
    size_t notelen = 0;
    int rc;

    if (certrelay__v1__event__get_packed_size(ev) <= STUB_EVENT_MAX)
        return 0;

    d = crs_calloc(ev->n_crls * 2 + 2, sizeof(*d));
    note = crs_malloc(STUB_TRUNC_NOTE_MAX + 1);
    if (d == NULL || note == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    note[0] = '\0';

    for (int tier = 0; tier < 2; tier++) {
        nd = 0;
        if (tier == 0) {
            for (size_t i = 0; i < ev->n_crls; i++) {
                Certrelay__V1__CrlInfo *c = ev->crls[i];
                if (c->has_raw_crl) {
                    d[nd] = (struct stub_droppable){&c->raw_crl, &c->has_raw_crl, ""};
                    snprintf(d[nd++].name, sizeof(d[0].name), "RawCRL.%u", c->ca_cert_index);
                }
                if (c->has_raw_delta_crl) {
                    d[nd] = (struct stub_droppable){&c->raw_delta_crl, &c->has_raw_delta_crl, ""};
                    snprintf(d[nd++].name, sizeof(d[0].name), "RawDeltaCRL.%u", c->ca_cert_index);
                }
            }
            if (ev->request != NULL && ev->request->has_raw_request)
                d[nd++] = (struct stub_droppable){&ev->request->raw_request,
                                                  &ev->request->has_raw_request, "RawRequest"};
        } else if (ev->certificate != NULL && ev->certificate->has_raw_certificate) {
            d[nd++] =
                (struct stub_droppable){&ev->certificate->raw_certificate,
                                        &ev->certificate->has_raw_certificate, "RawCertificate"};
        }
        qsort(d, nd, sizeof(*d), stub_droppable_cmp);
        for (size_t i = 0; i < nd; i++) {
            crs_free(d[i].data->data);
            d[i].data->data = NULL;
            d[i].data->len = 0;
            *d[i].has = 0;
            size_t add = strlen(d[i].name) + 1;
            if (notelen + add + 4 <= STUB_TRUNC_NOTE_MAX) {
                notelen += (size_t)snprintf(note + notelen, STUB_TRUNC_NOTE_MAX + 1 - notelen,
                                            "%s%s", notelen ? "," : "", d[i].name);
            } else if (notelen + 4 <= STUB_TRUNC_NOTE_MAX && !strstr(note, ",...")) {
                memcpy(note + notelen, ",...", 5);
                notelen += 4;
            }
            if (certrelay__v1__event__get_packed_size(ev) <= STUB_EVENT_MAX) {
                crs_warn("stub: event %s exceeds the frame limit; dropped %s", ev->event_id, note);
                rc = stub_extra_string(ev, "TruncatedFields", note);
                goto cleanup;
            }
        }
    }
    rc = CRS_ETOOBIG;

cleanup:
    crs_free(d);
    crs_free(note);
    return rc;
}

void crs_stub_event_free(Certrelay__V1__Event *ev)
{
    if (ev == NULL)
        return;
    certrelay__v1__event__free_unpacked(ev, &crs_protobuf_allocator);
}

int crs_stub_build_event(const struct crs_stub *stub, uint32_t exit_event,
                         const struct crs_prop_reader *rd, Certrelay__V1__Event **out)
{
    Certrelay__V1__Event *ev = NULL;
    char id[CRS_UUID_STRLEN + 1];
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (stub == NULL || rd == NULL)
        return CRS_EINVAL;
    /* Only the ten kinds certsrv documents, one bit at a time. An unknown value is refused so
     * the caller can log it; inventing a kind would hand sinks an event they cannot classify.
     * The alert kinds are the broker's own (it refuses them from a stub). */
    if (crs_event_name(exit_event) == NULL || (exit_event & CRS_EVENT_ALL) == 0)
        return CRS_EINVAL;

    ev = crs_malloc(sizeof(*ev));
    if (ev == NULL)
        return CRS_ENOMEM;
    certrelay__v1__event__init(ev);

    rc = crs_uuid7(id);
    if (rc != 0)
        goto cleanup;
    ev->event_id = crs_strdup(id);
    if (ev->event_id == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    ev->has_kind = 1;
    ev->kind = (Certrelay__V1__EventKind)exit_event;
    ev->has_raw_exit_event = 1;
    ev->raw_exit_event = exit_event;
    ev->has_capture_time_ms = 1;
    ev->capture_time_ms = crs_now_ms();

    rc = stub_build_ca(stub, rd, ev);
    if (rc != 0)
        goto cleanup;

    switch (exit_event) {
    case CRS_EVENT_STARTUP:
    case CRS_EVENT_SHUTDOWN:
        break;
    case CRS_EVENT_CRL_ISSUED:
        rc = stub_build_crls(rd, ev);
        break;
    default:
        rc = stub_build_request(stub, rd, ev);
        if (rc == 0)
            rc = stub_build_certificate(rd, ev);
        break;
    }
    if (rc != 0)
        goto cleanup;
    /* certsrv raises 0x8 for a revocation and for a release from hold alike (it never fires
     * 0x100): a request issued again after 0x8 was released. Without a Disposition the event
     * stays "revoked", which is what certsrv's 0x8 names. */
    if (exit_event == CRS_EVENT_REVOKED && ev->request != NULL && ev->request->has_disposition &&
        ev->request->disposition == STUB_DISP_ISSUED)
        ev->kind = (Certrelay__V1__EventKind)CRS_EVENT_UNREVOKED;

    rc = stub_fit(ev);
    if (rc != 0)
        goto cleanup;

    *out = ev;
    ev = NULL;

cleanup:
    crs_stub_event_free(ev);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * Connections
 * ------------------------------------------------------------------------------------------- */

static void conn_close(struct stub_conn *c)
{
    if (c == NULL)
        return;
    crs__transport_close(c->t);
    crs_frame_reader_free(&c->fr);
    crs_free(c);
}

/* Opens a connection and sends the Hello that must precede its first Event. *server_pid names a
 * server refused with CRS_EPEERAUTH. */
static int conn_open(struct crs_stub *stub, uint64_t deadline, struct stub_conn **out,
                     uint32_t *server_pid)
{
    struct stub_conn *c;
    int rc;

    *out = NULL;
    c = crs_calloc(1, sizeof(*c));
    if (c == NULL)
        return CRS_ENOMEM;
    crs_frame_reader_init(&c->fr, STUB_REPLY_MAX);
    rc = crs__transport_open(stub->pipe, stub->service, deadline, &c->t, server_pid);
    if (rc == 0)
        rc = crs__transport_write_all(c->t, stub->hello, stub->hello_len, deadline);
    if (rc != 0) {
        conn_close(c);
        return rc;
    }
    *out = c;
    return 0;
}

/* Takes an idle connection from the pool, dropping any the broker has closed meanwhile. The lock
 * covers only the list; the liveness check and closing happen outside it. */
static struct stub_conn *pool_pop(struct crs_stub *stub)
{
    for (;;) {
        crs_mutex_lock(&stub->lock);
        struct stub_conn *c = stub->idle;
        if (c != NULL) {
            stub->idle = c->next;
            stub->nidle--;
        }
        crs_mutex_unlock(&stub->lock);
        if (c == NULL)
            return NULL;
        c->next = NULL;
        if (crs__transport_idle_ok(c->t))
            return c;
        conn_close(c);
    }
}

/* Returns a connection in a known state (no request outstanding, no buffered bytes) to the pool,
 * or closes it when the pool is full. */
static void pool_push(struct crs_stub *stub, struct stub_conn *c)
{
    int keep = 0;

    crs_mutex_lock(&stub->lock);
    if (stub->nidle < stub->max_connections) {
        c->next = stub->idle;
        stub->idle = c;
        stub->nidle++;
        keep = 1;
    }
    crs_mutex_unlock(&stub->lock);
    if (!keep)
        conn_close(c);
}

/* Reads until one complete reply frame is buffered and decodes it. */
static int conn_read_reply(struct stub_conn *c, uint64_t deadline, Certrelay__V1__Envelope **env)
{
    uint8_t buf[4096];

    *env = NULL;
    for (;;) {
        const uint8_t *payload;
        size_t len;
        int rc = crs_frame_reader_next(&c->fr, &payload, &len);
        if (rc < 0)
            return rc;
        if (rc == 1)
            return crs_envelope_decode(payload, len, env);

        size_t got = 0;
        rc = crs__transport_read(c->t, buf, sizeof(buf), &got, deadline);
        if (rc != 0)
            return rc;
        rc = crs_frame_reader_feed(&c->fr, buf, got);
        if (rc != 0)
            return rc;
    }
}

/*
 * Sends one Event frame and waits for its Ack. The broker answers in order on a connection and
 * we have exactly one event outstanding, so the next reply must name our event: anything else
 * means the two ends disagree about the stream, and the connection is dropped. *reusable tells
 * whether the connection is in a clean state afterwards.
 */
static int conn_exchange(struct stub_conn *c, const uint8_t *frame, size_t flen,
                         const char *event_id, uint64_t deadline, int *reusable)
{
    Certrelay__V1__Envelope *env = NULL;
    int rc;

    *reusable = 0;
    rc = crs__transport_write_all(c->t, frame, flen, deadline);
    if (rc != 0)
        return rc;
    rc = conn_read_reply(c, deadline, &env);
    if (rc != 0)
        return rc;

    if (env->body_case == CERTRELAY__V1__ENVELOPE__BODY_ACK && env->ack != NULL &&
        env->ack->event_id != NULL && strcmp(env->ack->event_id, event_id) == 0) {
        rc = 0;
        *reusable = crs_frame_reader_pending(&c->fr) == 0;
    } else if (env->body_case == CERTRELAY__V1__ENVELOPE__BODY_NACK && env->nack != NULL &&
               env->nack->event_id != NULL && strcmp(env->nack->event_id, event_id) == 0) {
        crs_warn("stub: broker refused event %s: %s", event_id,
                 env->nack->reason ? env->nack->reason : "(no reason)");
        rc = CRS_ENACK;
    } else {
        rc = CRS_EPROTO;
    }
    crs_envelope_free(env);
    return rc;
}

/*
 * Delivers one framed event. A pooled connection may have died since its last use (the broker
 * restarted): if it fails that way, the event is tried once more on a fresh connection, as long
 * as time remains. Retrying is safe because the broker deduplicates by event id.
 */
static int stub_send(struct crs_stub *stub, const uint8_t *frame, size_t flen, const char *event_id,
                     uint64_t deadline, uint32_t *server_pid)
{
    for (int attempt = 0;; attempt++) {
        struct stub_conn *c = attempt == 0 ? pool_pop(stub) : NULL;
        int pooled = c != NULL;
        int reusable = 0;
        int rc = 0;

        if (c == NULL)
            rc = conn_open(stub, deadline, &c, server_pid);
        if (rc == 0)
            rc = conn_exchange(c, frame, flen, event_id, deadline, &reusable);
        if (rc == 0 && reusable) {
            pool_push(stub, c);
            return 0;
        }
        conn_close(c);
        if (rc == 0)
            return 0;
        if (!pooled || rc != CRS_ECLOSED || crs_mono_ms() >= deadline)
            return rc;
    }
}

/* ---------------------------------------------------------------------------------------------
 * Circuit breaker
 *
 *   closed --(broker away)--> open for window_ms --(window over)--> one probe at a time
 *     ^                                                  | Ack: closed, window reset
 *     +--------------------------------------------------+ away again: open, window doubled
 * ------------------------------------------------------------------------------------------- */

enum breaker_pass { BREAKER_SEND, BREAKER_PROBE, BREAKER_SKIP };

/* The failures that say the broker is not there to answer, as opposed to one event refused. */
static int broker_away(int rc)
{
    return rc == CRS_ETIMEDOUT || rc == CRS_ECONNREFUSED || rc == CRS_ECLOSED ||
           rc == CRS_EPEERAUTH || rc == CRS_EACCES;
}

/* Decides whether this call may try the broker. *open_error is the failure that opened the
 * breaker, for a call that skips. */
static enum breaker_pass breaker_admit(struct crs_stub *stub, int *open_error)
{
    enum breaker_pass pass = BREAKER_SEND;

    if (stub->breaker_ms == 0)
        return BREAKER_SEND;
    crs_mutex_lock(&stub->lock);
    if (stub->open_until != 0) {
        if (!stub->probing && crs_mono_ms() >= stub->open_until) {
            stub->probing = 1;
            pass = BREAKER_PROBE;
        } else {
            pass = BREAKER_SKIP;
            *open_error = stub->open_error;
        }
    }
    crs_mutex_unlock(&stub->lock);
    return pass;
}

/* Records how a call that tried the broker fared. */
static void breaker_record(struct crs_stub *stub, enum breaker_pass pass, int send_rc)
{
    if (stub->breaker_ms == 0 || pass == BREAKER_SKIP)
        return;
    crs_mutex_lock(&stub->lock);
    if (pass == BREAKER_PROBE)
        stub->probing = 0;
    if (broker_away(send_rc)) {
        /* Calls that set out while the breaker was closed and fail together open it once; only
         * a failed probe (or the first failure) widens the window. */
        if (pass == BREAKER_PROBE || stub->open_until == 0) {
            if (stub->window_ms == 0)
                stub->window_ms = stub->breaker_ms;
            else if (pass == BREAKER_PROBE)
                stub->window_ms = stub->window_ms >= CRS_STUB_MAX_BREAKER_MS / 2
                                      ? CRS_STUB_MAX_BREAKER_MS
                                      : stub->window_ms * 2;
            stub->open_until = crs_mono_ms() + stub->window_ms;
            stub->open_error = send_rc;
        }
    } else if (send_rc == 0 || send_rc == CRS_ENACK) {
        /* The broker answered: it is there. */
        stub->open_until = 0;
        stub->window_ms = 0;
        stub->open_error = 0;
    }
    crs_mutex_unlock(&stub->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Spool
 * ------------------------------------------------------------------------------------------- */

/* Writes the packed event to the spool. crs_spool_write creates the directory when it is missing
 * (on first use, or after someone removed it), so nothing is created before an event needs it. */
static int stub_spool(struct crs_stub *stub, const char *event_id, const uint8_t *bytes, size_t len)
{
    return crs_spool_write(stub->spool_dir, event_id, bytes, len);
}

/* ---------------------------------------------------------------------------------------------
 * Public API
 * ------------------------------------------------------------------------------------------- */

int crs_stub_new(const struct crs_stub_options *opts, struct crs_stub **out)
{
    struct crs_stub *stub = NULL;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (opts == NULL)
        return CRS_EINVAL;

    stub = crs_calloc(1, sizeof(*stub));
    if (stub == NULL)
        return CRS_ENOMEM;
    if (crs_mutex_init(&stub->lock) != 0) {
        crs_free(stub);
        return CRS_ENOMEM;
    }

    stub->pipe = opts->pipe ? crs_strdup(opts->pipe) : crs_default_pipe();
    stub->spool_dir = opts->spool_dir ? crs_strdup(opts->spool_dir) : crs_default_spool_dir();
    stub->stub_version = crs_strdup(opts->stub_version ? opts->stub_version : CRS_VERSION);
    stub->ca_config = opts->ca_config ? crs_strdup(opts->ca_config) : NULL;
    stub->service = opts->broker_service ? crs_strdup(opts->broker_service) : NULL;
    if (stub->pipe == NULL || stub->spool_dir == NULL || stub->stub_version == NULL ||
        (opts->ca_config != NULL && stub->ca_config == NULL) ||
        (opts->broker_service != NULL && stub->service == NULL)) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    stub->timeout_ms = opts->timeout_ms ? opts->timeout_ms : CRS_STUB_DEFAULT_TIMEOUT_MS;
    stub->max_connections = opts->max_connections ? opts->max_connections : STUB_DEFAULT_MAX_CONN;
    stub->capture_raw_request = opts->capture_raw_request != 0;
    stub->breaker_ms =
        opts->breaker_ms > CRS_STUB_MAX_BREAKER_MS ? CRS_STUB_MAX_BREAKER_MS : opts->breaker_ms;

    rc = crs_frame_hello(CRS_PROTOCOL_VERSION, stub->stub_version, stub->ca_config, &stub->hello,
                         &stub->hello_len);
    if (rc != 0)
        goto cleanup;

    *out = stub;
    stub = NULL;

cleanup:
    crs_stub_free(stub);
    return rc;
}

void crs_stub_free(struct crs_stub *stub)
{
    if (stub == NULL)
        return;
    while (stub->idle != NULL) {
        struct stub_conn *c = stub->idle;
        stub->idle = c->next;
        conn_close(c);
    }
    crs_mutex_destroy(&stub->lock);
    crs_free(stub->pipe);
    crs_free(stub->spool_dir);
    crs_free(stub->ca_config);
    crs_free(stub->service);
    crs_free(stub->stub_version);
    crs_free(stub->hello);
    crs_free(stub);
}

/*
 * The second half of a call, shared by crs_stub_notify and crs_stub_send_packed: sends the packed
 * event to the broker (unless the circuit breaker is open) and spools it when no Ack came.
 */
static int stub_deliver(struct crs_stub *stub, const char *event_id, const uint8_t *bytes,
                        size_t len, uint64_t deadline, struct crs_stub_result *res)
{
    uint8_t *frame = NULL;
    size_t flen = 0;
    uint32_t server_pid = 0;
    enum breaker_pass pass;
    int send_rc = 0;
    int rc = 0;

    pass = breaker_admit(stub, &send_rc);
    if (pass != BREAKER_SKIP) {
        send_rc = crs_frame_event_packed(bytes, len, &frame, &flen);
        if (send_rc == 0)
            send_rc = stub_send(stub, frame, flen, event_id, deadline, &server_pid);
        breaker_record(stub, pass, send_rc);
    }
    if (pass != BREAKER_SKIP && send_rc == 0) {
        if (res != NULL)
            res->outcome = CRS_STUB_ACKED;
        goto cleanup;
    }

    crs_debug("stub: event %s not acknowledged (%s); spooling", event_id,
              pass == BREAKER_SKIP ? "broker away: circuit breaker open" : crs_strerror(send_rc));
    rc = stub_spool(stub, event_id, bytes, len);
    if (rc == 0 && res != NULL) {
        res->outcome = CRS_STUB_SPOOLED;
        res->send_error = send_rc;
        res->breaker_open = pass == BREAKER_SKIP;
        res->server_pid = server_pid;
    }

cleanup:
    crs_free(frame);
    return rc;
}

int crs_stub_notify(struct crs_stub *stub, uint32_t exit_event, const struct crs_prop_reader *rd,
                    struct crs_stub_result *res)
{
    uint64_t t0 = crs_mono_us();
    Certrelay__V1__Event *ev = NULL;
    uint8_t *bytes = NULL;
    size_t len = 0;
    int rc;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (stub == NULL || rd == NULL)
        return CRS_EINVAL;
    uint64_t deadline = crs_mono_ms() + stub->timeout_ms;

    rc = crs_stub_build_event(stub, exit_event, rd, &ev);
    if (rc != 0)
        goto cleanup;
    if (res != NULL) {
        snprintf(res->event_id, sizeof(res->event_id), "%s", ev->event_id);
        res->kind = (uint32_t)ev->kind;
        if (ev->request != NULL && ev->request->has_request_id)
            res->request_id = ev->request->request_id;
    }
    rc = crs_event_pack(ev, &bytes, &len);
    if (rc == 0)
        rc = stub_deliver(stub, ev->event_id, bytes, len, deadline, res);

cleanup:
    if (res != NULL)
        res->elapsed_us = crs_mono_us() - t0;
    crs_free(bytes);
    crs_stub_event_free(ev);
    return rc;
}

int crs_stub_send_packed(struct crs_stub *stub, const char *event_id, const uint8_t *bytes,
                         size_t len, struct crs_stub_result *res)
{
    uint64_t t0 = crs_mono_us();
    int rc;

    if (res != NULL)
        memset(res, 0, sizeof(*res));
    if (stub == NULL || event_id == NULL || !crs_uuid_valid(event_id) || bytes == NULL || len == 0)
        return CRS_EINVAL;
    if (res != NULL)
        snprintf(res->event_id, sizeof(res->event_id), "%s", event_id);
    rc = stub_deliver(stub, event_id, bytes, len, crs_mono_ms() + stub->timeout_ms, res);
    if (res != NULL)
        res->elapsed_us = crs_mono_us() - t0;
    return rc;
}
