/*
 * Tests of the stub core (stub/stub_core.c, stub/unix/transport.c).
 *
 * Building events uses an in-memory property reader that records every name asked for and fails
 * the test if the core ever asks for RawArchivedKey. Sending uses a real AF_UNIX socket server
 * running in threads of this test, playing the broker's side of the protocol: it checks the Hello,
 * then answers each Event with an Ack, a Nack, a wrong Ack, or nothing at all.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/fs.h"
#include "certrelay/spool.h"
#include "certrelay/stub.h"
#include "certrelay/uuid.h"
#include "check.h"

/* ---------------------------------------------------------------------------------------------
 * A property reader over a static table
 * ------------------------------------------------------------------------------------------- */

enum { SC_REQ, SC_CERT, SC_CA };

struct tprop {
    int scope;
    const char *name;
    int type;
    int64_t l;          /* LONG or DATE */
    const char *str;    /* STRING */
    const uint8_t *bin; /* BINARY */
    size_t len;
    int fail; /* return this error instead */
};

struct treader {
    const struct tprop *props;
    size_t n;
    int asked_archived_key;
    int asked_raw_request;
    int ext_fail;
    char asked[64][48];
    size_t nasked;
};

static int tr_get(struct treader *t, int scope, const char *name, enum crs_prop_type type,
                  struct crs_prop_value *out)
{
    if (strcmp(name, "RawArchivedKey") == 0)
        t->asked_archived_key++;
    if (strcmp(name, "RawRequest") == 0)
        t->asked_raw_request++;
    if (t->nasked < 64)
        snprintf(t->asked[t->nasked++], sizeof(t->asked[0]), "%s", name);
    for (size_t i = 0; i < t->n; i++) {
        const struct tprop *p = &t->props[i];
        if (p->scope != scope || strcmp(p->name, name) != 0)
            continue;
        if (p->fail)
            return p->fail;
        out->type = p->type; /* may differ from the asked type: the core must cope */
        if (p->type == CRS_PROP_LONG)
            out->l = p->l;
        else if (p->type == CRS_PROP_DATE)
            out->date_ms = p->l;
        else if (p->type == CRS_PROP_STRING) {
            out->str = crs_strdup(p->str);
            if (out->str == NULL)
                return CRS_ENOMEM;
            out->len = strlen(p->str);
        } else {
            out->bin = crs_malloc(p->len);
            if (out->bin == NULL)
                return CRS_ENOMEM;
            if (p->len > 0)
                memcpy(out->bin, p->bin, p->len);
            out->len = p->len;
        }
        (void)type;
        return 0;
    }
    return CRS_ENOENT;
}

static int tr_req(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *o)
{
    return tr_get(ctx, SC_REQ, name, type, o);
}

static int tr_cert(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *o)
{
    return tr_get(ctx, SC_CERT, name, type, o);
}

static int tr_ca(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *o)
{
    return tr_get(ctx, SC_CA, name, type, o);
}

static const uint8_t ku_der[] = {0x03, 0x02, 0x05, 0xa0};
static const uint8_t bc_der[] = {0x30, 0x00};

static int tr_exts(void *ctx, crs_ext_cb cb, void *arg)
{
    struct treader *t = ctx;
    if (t->ext_fail)
        return CRS_EIO;
    if (cb(arg, "2.5.29.15", 0x20001, 1, ku_der, sizeof(ku_der)) != 0)
        return 0;
    (void)cb(arg, "2.5.29.19", 0x20000, 0, bc_der, sizeof(bc_der));
    return 0;
}

static int tr_attrs(void *ctx, crs_attr_cb cb, void *arg)
{
    if (cb(arg, "CertificateTemplate", "WebServer") != 0)
        return 0;
    (void)cb(arg, "ccm", "host\xff.contoso.test");
    return 0;
}

static void tr_init(struct treader *t, struct crs_prop_reader *rd, const struct tprop *props,
                    size_t n)
{
    memset(t, 0, sizeof(*t));
    t->props = props;
    t->n = n;
    memset(rd, 0, sizeof(*rd));
    rd->ctx = t;
    rd->get_request = tr_req;
    rd->get_certificate = tr_cert;
    rd->get_ca = tr_ca;
    rd->enum_extensions = tr_exts;
    rd->enum_attributes = tr_attrs;
}

static const uint8_t fake_cert[] = {0x30, 0x03, 0x02, 0x01, 0x07};
static const uint8_t fake_req[] = {0x30, 0x02, 0x05, 0x00};
static const uint8_t fake_key[] = "PRIVATE-KEY";
static const uint8_t fake_crl[] = {0x30, 0x01, 0x00};
static const uint8_t fake_delta[] = {0x30, 0x01, 0x01};

/* clang-format off */
#define L(sc, n, v) {sc, n, CRS_PROP_LONG, v, NULL, NULL, 0, 0}
#define D(sc, n, v) {sc, n, CRS_PROP_DATE, v, NULL, NULL, 0, 0}
#define S(sc, n, v) {sc, n, CRS_PROP_STRING, 0, v, NULL, 0, 0}
#define B(sc, n, v) {sc, n, CRS_PROP_BINARY, 0, NULL, v, sizeof(v), 0}
#define F(sc, n, e) {sc, n, CRS_PROP_STRING, 0, NULL, NULL, 0, e}
/* clang-format on */

static const struct tprop full_props[] = {
    S(SC_CA, "SanitizedCAName", "Contoso-CA"),
    S(SC_CA, "MachineDNSName", "ca01.contoso.test"),
    L(SC_REQ, "RequestID", 42),
    L(SC_REQ, "RequestType", 0x100),
    L(SC_REQ, "Disposition", 20),
    S(SC_REQ, "DispositionMessage", "Issued"),
    L(SC_REQ, "StatusCode", 0),
    S(SC_REQ, "RequesterName", "CONTOSO\\alice"),
    S(SC_REQ, "CallerName", "CONTOSO\\alice"),
    D(SC_REQ, "SubmittedWhen", 1700000000000),
    D(SC_REQ, "ResolvedWhen", 1700000001000),
    D(SC_REQ, "RevokedWhen", 1700000002000),
    D(SC_REQ, "RevokedEffectiveWhen", 1700000003000),
    L(SC_REQ, "RevokedReason", 1),
    S(SC_REQ, "RequestAttributes", "CertificateTemplate:WebServer"),
    S(SC_REQ, "CertificateTemplate", "WebServer"),
    B(SC_REQ, "RawRequest", fake_req),
    B(SC_REQ, "RawArchivedKey", fake_key),
    S(SC_CERT, "SerialNumber", "61000000abcdef"),
    B(SC_CERT, "RawCertificate", fake_cert),
    D(SC_CERT, "NotBefore", 1700000000000),
    D(SC_CERT, "NotAfter", 1800000000000),
    S(SC_CERT, "DistinguishedName", "CN=web, O=Contoso"),
    S(SC_CERT, "CommonName", "web\xc3\x28"), /* invalid UTF-8: repaired */
    S(SC_CERT, "UPN", "alice@contoso.test"),
    S(SC_CERT, "CertificateHash", "aa bb cc"),
    S(SC_CERT, "CertificateTemplate", "1.3.6.1.4.1.311.21.8.1"),
    S(SC_CERT, "PublicKeyAlgorithm", "1.2.840.10045.2.1"),
    L(SC_CERT, "PublicKeyLength", 256),
    S(SC_CERT, "EMail", "alice@contoso.test"),
    L(SC_CA, "CertCount", 3),
    L(SC_CA, "CRLState.0", 3),
    L(SC_CA, "CRLState.1", 4),
    L(SC_CA, "CRLState.2", 3),
    B(SC_CA, "RawCRL.0", fake_crl),
    B(SC_CA, "RawDeltaCRL.0", fake_delta),
    B(SC_CA, "RawCRL.1", fake_crl),
    B(SC_CA, "RawCRL.2", fake_crl),
    F(SC_CA, "RawDeltaCRL.2", CRS_EIO),
};
#define NFULL (sizeof(full_props) / sizeof(full_props[0]))

static struct crs_stub *new_stub_breaker(const char *pipe, const char *spool, uint32_t timeout_ms,
                                         int raw_request, uint32_t breaker_ms)
{
    struct crs_stub_options o;
    struct crs_stub *stub = NULL;
    memset(&o, 0, sizeof(o));
    o.pipe = pipe;
    o.spool_dir = spool;
    o.timeout_ms = timeout_ms;
    o.capture_raw_request = raw_request;
    o.ca_config = "ca01.contoso.test\\Contoso-CA";
    o.breaker_ms = breaker_ms;
    CHECK_EQ_INT(crs_stub_new(&o, &stub), 0);
    return stub;
}

static struct crs_stub *new_stub(const char *pipe, const char *spool, uint32_t timeout_ms,
                                 int raw_request)
{
    return new_stub_breaker(pipe, spool, timeout_ms, raw_request, 0);
}

/* ---------------------------------------------------------------------------------------------
 * Building events
 * ------------------------------------------------------------------------------------------- */

static void test_build_issued(void)
{
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;
    int64_t before = crs_now_ms();

    tr_init(&t, &rd, full_props, NFULL);
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_ISSUED, &rd, &ev), 0);
    CHECK(ev != NULL);
    if (ev == NULL)
        goto out;
    CHECK(crs_uuid_valid(ev->event_id));
    CHECK(ev->has_kind && ev->kind == CRS_EVENT_ISSUED);
    CHECK(ev->has_raw_exit_event && ev->raw_exit_event == CRS_EVENT_ISSUED);
    CHECK(ev->has_capture_time_ms && ev->capture_time_ms >= before);
    CHECK_EQ_INT(crs_event_validate(ev), 0);
    CHECK_EQ_STR(ev->ca->config, "ca01.contoso.test\\Contoso-CA");
    CHECK_EQ_STR(ev->ca->sanitized_name, "Contoso-CA");
    CHECK_EQ_STR(ev->ca->host, "ca01.contoso.test");

    Certrelay__V1__RequestInfo *r = ev->request;
    CHECK(r != NULL);
    if (r != NULL) {
        CHECK(r->has_request_id && r->request_id == 42);
        CHECK(r->has_request_type && r->request_type == 0x100);
        CHECK(r->has_disposition && r->disposition == 20);
        CHECK_EQ_STR(r->disposition_message, "Issued");
        CHECK(r->has_status_code && r->status_code == 0);
        CHECK_EQ_STR(r->requester_name, "CONTOSO\\alice");
        CHECK_EQ_STR(r->caller_name, "CONTOSO\\alice");
        CHECK(r->has_submitted_when_ms && r->submitted_when_ms == 1700000000000);
        CHECK(r->has_resolved_when_ms && r->resolved_when_ms == 1700000001000);
        CHECK(r->has_revoked_when_ms && r->revoked_when_ms == 1700000002000);
        CHECK(r->has_revoked_effective_when_ms && r->revoked_effective_when_ms == 1700000003000);
        CHECK(r->has_revoked_reason && r->revoked_reason == 1);
        CHECK_EQ_STR(r->request_attributes, "CertificateTemplate:WebServer");
        CHECK_EQ_STR(r->certificate_template, "WebServer");
        CHECK(!r->has_raw_request);
        CHECK_EQ_INT(r->n_attributes, 2);
        if (r->n_attributes == 2) {
            CHECK_EQ_STR(r->attributes[0]->name, "CertificateTemplate");
            CHECK_EQ_STR(r->attributes[1]->value, "host\xef\xbf\xbd.contoso.test");
        }
    }
    Certrelay__V1__CertificateInfo *c = ev->certificate;
    CHECK(c != NULL);
    if (c != NULL) {
        CHECK_EQ_STR(c->serial_number, "61000000abcdef");
        CHECK(c->has_raw_certificate && c->raw_certificate.len == sizeof(fake_cert) &&
              memcmp(c->raw_certificate.data, fake_cert, sizeof(fake_cert)) == 0);
        CHECK(c->has_not_before_ms && c->not_before_ms == 1700000000000);
        CHECK(c->has_not_after_ms && c->not_after_ms == 1800000000000);
        CHECK_EQ_STR(c->distinguished_name, "CN=web, O=Contoso");
        CHECK_EQ_STR(c->common_name, "web\xef\xbf\xbd(");
        CHECK_EQ_STR(c->upn, "alice@contoso.test");
        CHECK_EQ_STR(c->certificate_hash, "aa bb cc");
        CHECK_EQ_STR(c->certificate_template, "1.3.6.1.4.1.311.21.8.1");
        CHECK_EQ_STR(c->public_key_algorithm, "1.2.840.10045.2.1");
        CHECK(c->has_public_key_length && c->public_key_length == 256);
        CHECK_EQ_STR(c->email, "alice@contoso.test");
        CHECK_EQ_INT(c->n_extensions, 2);
        if (c->n_extensions == 2) {
            CHECK_EQ_STR(c->extensions[0]->oid, "2.5.29.15");
            CHECK(c->extensions[0]->critical);
            CHECK_EQ_INT(c->extensions[0]->flags, 0x20001);
            CHECK(c->extensions[0]->value.len == sizeof(ku_der) &&
                  memcmp(c->extensions[0]->value.data, ku_der, sizeof(ku_der)) == 0);
            CHECK(!c->extensions[1]->critical);
        }
    }
    CHECK_EQ_INT(ev->n_crls, 0);
    CHECK_EQ_INT(ev->n_extra, 0);
    CHECK_EQ_INT(t.asked_archived_key, 0);
    CHECK_EQ_INT(t.asked_raw_request, 0);

    /* The event survives a pack/unpack round trip. */
    uint8_t *bytes = NULL;
    size_t len = 0;
    Certrelay__V1__Event *back = NULL;
    CHECK_EQ_INT(crs_event_pack(ev, &bytes, &len), 0);
    CHECK_EQ_INT(crs_event_unpack(bytes, len, &back), 0);
    if (back != NULL)
        CHECK_EQ_STR(back->certificate->common_name, "web\xef\xbf\xbd(");
    crs_event_free(back);
    crs_free(bytes);
out:
    crs_stub_event_free(ev);
    crs_stub_free(stub);
}

static void test_build_all_kinds(void)
{
    static const uint32_t kinds[] = {
        CRS_EVENT_ISSUED,           CRS_EVENT_PENDING,    CRS_EVENT_DENIED,   CRS_EVENT_REVOKED,
        CRS_EVENT_RETRIEVE_PENDING, CRS_EVENT_CRL_ISSUED, CRS_EVENT_SHUTDOWN, CRS_EVENT_STARTUP,
        CRS_EVENT_UNREVOKED,        CRS_EVENT_IMPORTED};
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 1);

    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct treader t;
        struct crs_prop_reader rd;
        Certrelay__V1__Event *ev = NULL;
        uint32_t k = kinds[i];

        tr_init(&t, &rd, full_props, NFULL);
        CHECK_EQ_INT(crs_stub_build_event(stub, k, &rd, &ev), 0);
        if (ev == NULL)
            continue;
        /* full_props holds an issued request (Disposition 20): under 0x8 that is certsrv's
         * release from hold (test_build_revoked_by_disposition). */
        CHECK_EQ_INT(ev->kind, k == CRS_EVENT_REVOKED ? CRS_EVENT_UNREVOKED : k);
        CHECK_EQ_INT(ev->raw_exit_event, k);
        CHECK_EQ_INT(crs_event_validate(ev), 0);
        CHECK(ev->ca != NULL && ev->ca->sanitized_name != NULL);
        /* Key archival material is never read, whatever the kind and options. */
        CHECK_EQ_INT(t.asked_archived_key, 0);
        if (k == CRS_EVENT_STARTUP || k == CRS_EVENT_SHUTDOWN) {
            CHECK(ev->request == NULL && ev->certificate == NULL && ev->n_crls == 0);
        } else if (k == CRS_EVENT_CRL_ISSUED) {
            CHECK(ev->request == NULL && ev->certificate == NULL);
            /* CRLState.1 is 4 (invalid): skipped. Index 2's delta read failed: absent. */
            CHECK_EQ_INT(ev->n_crls, 2);
            if (ev->n_crls == 2) {
                CHECK_EQ_INT(ev->crls[0]->ca_cert_index, 0);
                CHECK(ev->crls[0]->has_raw_crl && ev->crls[0]->has_raw_delta_crl);
                CHECK(ev->crls[0]->raw_delta_crl.len == sizeof(fake_delta));
                CHECK_EQ_INT(ev->crls[1]->ca_cert_index, 2);
                CHECK(ev->crls[1]->has_raw_crl && !ev->crls[1]->has_raw_delta_crl);
            }
            for (size_t a = 0; a < t.nasked; a++)
                CHECK(strcmp(t.asked[a], "RawCRL.1") != 0);
        } else {
            CHECK(ev->request != NULL && ev->certificate != NULL);
            CHECK_EQ_INT(t.asked_raw_request, 1);
            CHECK(ev->request && ev->request->has_raw_request &&
                  ev->request->raw_request.len == sizeof(fake_req));
        }
        crs_stub_event_free(ev);
    }
    crs_stub_free(stub);
}

/* certsrv fires 0x8 for a revocation and for a release from hold: Disposition decides. */
static void test_build_revoked_by_disposition(void)
{
    static const struct {
        uint32_t exit_event;
        int64_t disposition; /* -1: property absent */
        uint32_t want;
    } cases[] = {
        {CRS_EVENT_REVOKED, 21, CRS_EVENT_REVOKED},
        {CRS_EVENT_REVOKED, 20, CRS_EVENT_UNREVOKED},
        {CRS_EVENT_REVOKED, -1, CRS_EVENT_REVOKED},
        {CRS_EVENT_UNREVOKED, 20, CRS_EVENT_UNREVOKED}, /* in case a version fires 0x100 */
        {CRS_EVENT_ISSUED, 20, CRS_EVENT_ISSUED},
    };
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct tprop props[] = {
            L(SC_REQ, "RequestID", 7),
            L(SC_REQ, "Disposition", cases[i].disposition),
            L(SC_REQ, "RevokedReason", 6), /* certificateHold */
            B(SC_CERT, "RawCertificate", fake_cert),
        };
        size_t n = sizeof(props) / sizeof(props[0]);
        struct treader t;
        struct crs_prop_reader rd;
        Certrelay__V1__Event *ev = NULL;

        if (cases[i].disposition < 0)
            props[1].name = "NoSuchProperty";
        tr_init(&t, &rd, props, n);
        CHECK_EQ_INT(crs_stub_build_event(stub, cases[i].exit_event, &rd, &ev), 0);
        if (ev == NULL)
            continue;
        CHECK_EQ_INT(ev->kind, cases[i].want);
        CHECK_EQ_INT(ev->raw_exit_event, cases[i].exit_event);
        CHECK_EQ_INT(crs_event_validate(ev), 0);
        crs_stub_event_free(ev);
    }
    crs_stub_free(stub);
}

static void test_build_rejects_unknown_kind(void)
{
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = (Certrelay__V1__Event *)&t;
    struct crs_stub_result res;

    tr_init(&t, &rd, full_props, NFULL);
    CHECK_EQ_INT(crs_stub_build_event(stub, 0, &rd, &ev), CRS_EINVAL);
    CHECK(ev == NULL);
    CHECK_EQ_INT(crs_stub_build_event(stub, 0x400, &rd, &ev), CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_ISSUED | CRS_EVENT_REVOKED, &rd, &ev),
                 CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_notify(stub, 0x800, &rd, &res), CRS_EINVAL);
    CHECK_EQ_INT(res.outcome, 0);
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_ISSUED, NULL, &ev), CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_build_event(NULL, CRS_EVENT_ISSUED, &rd, &ev), CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_new(NULL, NULL), CRS_EINVAL);
    crs_stub_free(NULL);
    crs_stub_event_free(NULL);
    crs_prop_value_clear(NULL);
    crs_stub_free(stub);
}

/* Empty properties are left out; failed and mistyped ones are skipped without costing the event. */
static void test_build_sparse_and_failing(void)
{
    static const struct tprop props[] = {
        L(SC_REQ, "RequestID", 7),
        F(SC_REQ, "RequesterName", CRS_EIO),
        S(SC_REQ, "Disposition", "twenty"), /* wrong type */
        F(SC_CERT, "SerialNumber", CRS_EACCES),
        {SC_CERT, "RawCertificate", CRS_PROP_BINARY, 0, NULL, NULL, 0, 0}, /* empty */
        F(SC_CA, "SanitizedCAName", CRS_ENOMEM),
    };
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;

    tr_init(&t, &rd, props, sizeof(props) / sizeof(props[0]));
    t.ext_fail = 1;
    rd.enum_attributes = NULL;
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_PENDING, &rd, &ev), 0);
    if (ev != NULL) {
        CHECK(ev->request != NULL && ev->request->has_request_id && ev->request->request_id == 7);
        CHECK(ev->request && ev->request->requester_name == NULL);
        CHECK(ev->request && !ev->request->has_disposition);
        CHECK(ev->request && !ev->request->has_submitted_when_ms);
        CHECK(ev->request && ev->request->n_attributes == 0);
        CHECK(ev->certificate == NULL); /* nothing certificate-related was present */
        CHECK(ev->ca != NULL && ev->ca->sanitized_name == NULL);
    }
    crs_stub_event_free(ev);

    /* A reader with no functions at all still yields a valid event. */
    struct crs_prop_reader empty;
    memset(&empty, 0, sizeof(empty));
    ev = NULL;
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_ISSUED, &empty, &ev), 0);
    if (ev != NULL) {
        CHECK(ev->request == NULL && ev->certificate == NULL);
        CHECK_EQ_INT(crs_event_validate(ev), 0);
    }
    crs_stub_event_free(ev);
    crs_stub_free(stub);
}

/* A CertCount far beyond reason is capped, and the walk ends. */
static void test_build_crl_count_capped(void)
{
    static const struct tprop props[] = {
        L(SC_CA, "CertCount", 1000000000), L(SC_CA, "CRLState.5", 3),
        B(SC_CA, "RawCRL.5", fake_crl),    L(SC_CA, "CRLState.2000", 3),
        B(SC_CA, "RawCRL.2000", fake_crl),
    };
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;

    tr_init(&t, &rd, props, sizeof(props) / sizeof(props[0]));
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_CRL_ISSUED, &rd, &ev), 0);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->n_crls, 1);
        if (ev->n_crls == 1)
            CHECK_EQ_INT(ev->crls[0]->ca_cert_index, 5);
    }
    crs_stub_event_free(ev);
    crs_stub_free(stub);
}

/* CRLs too large for one frame: the largest payloads are dropped and named, the event still
 * packs into a frame. */
static void test_build_oversized_crl(void)
{
    size_t big = 36u * 1024u * 1024u;
    uint8_t *crl = malloc(big);
    uint8_t *delta = malloc(big / 2);
    CHECK(crl != NULL && delta != NULL);
    if (crl == NULL || delta == NULL) {
        free(crl);
        free(delta);
        return;
    }
    memset(crl, 0xa5, big);
    memset(delta, 0x5a, big / 2);
    struct tprop props[] = {
        L(SC_CA, "CertCount", 2),
        L(SC_CA, "CRLState.0", 3),
        L(SC_CA, "CRLState.1", 3),
        {SC_CA, "RawCRL.0", CRS_PROP_BINARY, 0, NULL, crl, big, 0},
        {SC_CA, "RawDeltaCRL.0", CRS_PROP_BINARY, 0, NULL, delta, big / 2, 0},
        {SC_CA, "RawCRL.1", CRS_PROP_BINARY, 0, NULL, delta, big / 2, 0},
    };
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 0);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;

    tr_init(&t, &rd, props, sizeof(props) / sizeof(props[0]));
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_CRL_ISSUED, &rd, &ev), 0);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->n_crls, 2);
        CHECK(!ev->crls[0]->has_raw_crl);      /* the largest went first */
        CHECK(ev->crls[0]->has_raw_delta_crl); /* and that was enough */
        CHECK(ev->crls[1]->has_raw_crl);
        CHECK_EQ_INT(ev->n_extra, 1);
        if (ev->n_extra == 1) {
            CHECK_EQ_STR(ev->extra[0]->key, "TruncatedFields");
            CHECK_EQ_STR(ev->extra[0]->value->string_value, "RawCRL.0");
        }
        uint8_t *bytes = NULL;
        size_t len = 0;
        CHECK_EQ_INT(crs_event_pack(ev, &bytes, &len), 0);
        CHECK(len < CRS_FRAME_MAX);
        uint8_t *frame = NULL;
        size_t flen = 0;
        CHECK_EQ_INT(crs_frame_event_packed(bytes, len, &frame, &flen), 0);
        crs_free(frame);
        crs_free(bytes);
    }
    crs_stub_event_free(ev);
    crs_stub_free(stub);
    free(crl);
    free(delta);
}

/* When dropping CRLs and the raw request is not enough, the raw certificate goes too. */
static void test_build_oversized_certificate(void)
{
    size_t big = CRS_FRAME_MAX;
    uint8_t *der = malloc(big);
    CHECK(der != NULL);
    if (der == NULL)
        return;
    memset(der, 0x30, big);
    struct tprop props[] = {
        L(SC_REQ, "RequestID", 9),
        B(SC_REQ, "RawRequest", fake_req),
        {SC_CERT, "RawCertificate", CRS_PROP_BINARY, 0, NULL, der, big, 0},
        S(SC_CERT, "SerialNumber", "0a"),
    };
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 1);
    struct treader t;
    struct crs_prop_reader rd;
    Certrelay__V1__Event *ev = NULL;

    tr_init(&t, &rd, props, sizeof(props) / sizeof(props[0]));
    CHECK_EQ_INT(crs_stub_build_event(stub, CRS_EVENT_ISSUED, &rd, &ev), 0);
    if (ev != NULL) {
        CHECK(ev->certificate != NULL && !ev->certificate->has_raw_certificate);
        CHECK_EQ_STR(ev->certificate ? ev->certificate->serial_number : NULL, "0a");
        CHECK(ev->request != NULL && !ev->request->has_raw_request);
        CHECK_EQ_INT(ev->n_extra, 1);
        if (ev->n_extra == 1)
            CHECK_EQ_STR(ev->extra[0]->value->string_value, "RawRequest,RawCertificate");
    }
    crs_stub_event_free(ev);
    crs_stub_free(stub);
    free(der);
}

/* Every allocation failure along the build path returns CRS_ENOMEM or still succeeds; ASan's
 * leak check proves nothing is left behind. */
static void test_build_alloc_failures(void)
{
    struct crs_stub *stub = new_stub("/nonexistent/sock", "/tmp/unused-spool", 0, 1);
    int completed = 0;

    for (long n = 0; n < 2000 && !completed; n++) {
        for (int kind = 0; kind < 2; kind++) {
            struct treader t;
            struct crs_prop_reader rd;
            Certrelay__V1__Event *ev = NULL;
            uint32_t k = kind ? CRS_EVENT_CRL_ISSUED : CRS_EVENT_ISSUED;

            tr_init(&t, &rd, full_props, NFULL);
            crs_alloc_fail_after(n);
            int rc = crs_stub_build_event(stub, k, &rd, &ev);
            crs_alloc_fail_after(-1);
            if (rc != 0 && rc != CRS_ENOMEM) {
                CHECK_EQ_INT(rc, CRS_ENOMEM);
                n = 2000;
            }
            if (rc == 0 && kind == 0) {
                /* Succeeded without hitting the limit: every failure point was covered. */
                completed = ev->certificate != NULL && ev->certificate->n_extensions == 2 &&
                            ev->request != NULL && ev->request->n_attributes == 2;
            }
            if (rc != 0)
                CHECK(ev == NULL);
            crs_stub_event_free(ev);
        }
    }
    CHECK(completed);
    crs_stub_free(stub);
}

/* ---------------------------------------------------------------------------------------------
 * A broker-side socket server
 * ------------------------------------------------------------------------------------------- */

/* FB_ACK_ONCE acks the first event of each connection and drops the connection at the second
 * without answering, like a broker that restarts while the stub holds a pooled connection. */
enum fb_mode { FB_ACK, FB_NACK, FB_SILENT, FB_STRAY, FB_CLOSE, FB_ACK_ONCE };

#define FB_MAX_CONNS 64

struct fake_broker {
    char path[108];
    int lfd;
    int mode;
    int stop;
    uv_thread_t accept_thread;
    uv_thread_t conn_threads[FB_MAX_CONNS];
    int conn_fds[FB_MAX_CONNS];
    int nconns;
    int events;
    int hello_ok;
    int hello_bad;
    uv_mutex_t lock;
};

struct fb_conn {
    struct fake_broker *fb;
    int fd;
};

static int fb_stopped(struct fake_broker *fb)
{
    return __atomic_load_n(&fb->stop, __ATOMIC_SEQ_CST);
}

static int fb_write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Serves one client: Hello first, then an answer per Event according to the mode. */
static void fb_conn_main(void *arg)
{
    struct fb_conn *c = arg;
    struct fake_broker *fb = c->fb;
    struct crs_frame_reader r;
    int seen_hello = 0;
    int conn_events = 0;
    uint8_t buf[65536];

    crs_frame_reader_init(&r, CRS_FRAME_MAX);
    while (!fb_stopped(fb)) {
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        ssize_t n = recv(c->fd, buf, sizeof(buf), 0);
        if (n <= 0)
            break;
        if (crs_frame_reader_feed(&r, buf, (size_t)n) != 0)
            break;
        const uint8_t *payload;
        size_t len;
        int more;
        while ((more = crs_frame_reader_next(&r, &payload, &len)) == 1) {
            Certrelay__V1__Envelope *env = NULL;
            if (crs_envelope_decode(payload, len, &env) != 0)
                goto done;
            if (!seen_hello) {
                int ok = env->body_case == CERTRELAY__V1__ENVELOPE__BODY_HELLO &&
                         env->hello->has_protocol_version &&
                         env->hello->protocol_version == CRS_PROTOCOL_VERSION &&
                         env->hello->ca_config != NULL &&
                         strcmp(env->hello->ca_config, "ca01.contoso.test\\Contoso-CA") == 0;
                uv_mutex_lock(&fb->lock);
                if (ok)
                    fb->hello_ok++;
                else
                    fb->hello_bad++;
                uv_mutex_unlock(&fb->lock);
                seen_hello = 1;
                crs_envelope_free(env);
                continue;
            }
            if (env->body_case != CERTRELAY__V1__ENVELOPE__BODY_EVENT) {
                crs_envelope_free(env);
                goto done;
            }
            uv_mutex_lock(&fb->lock);
            fb->events++;
            uv_mutex_unlock(&fb->lock);
            conn_events++;
            uint8_t *reply = NULL;
            size_t rlen = 0;
            int rc = 0;
            switch (fb->mode) {
            case FB_ACK:
                rc = crs_frame_ack(env->event->event_id, &reply, &rlen);
                break;
            case FB_NACK:
                rc = crs_frame_nack(env->event->event_id, "test says no", &reply, &rlen);
                break;
            case FB_STRAY:
                rc = crs_frame_ack("01890000-0000-7000-8000-000000000000", &reply, &rlen);
                break;
            case FB_ACK_ONCE:
                if (conn_events == 1) {
                    rc = crs_frame_ack(env->event->event_id, &reply, &rlen);
                    break;
                }
                crs_envelope_free(env);
                goto done;
            case FB_CLOSE:
                crs_envelope_free(env);
                goto done;
            default:
                break;
            }
            crs_envelope_free(env);
            if (rc != 0 || (reply != NULL && fb_write_all(c->fd, reply, rlen) != 0)) {
                crs_free(reply);
                goto done;
            }
            crs_free(reply);
        }
        if (more < 0)
            break;
    }
done:
    crs_frame_reader_free(&r);
    shutdown(c->fd, SHUT_RDWR);
    free(c);
}

static void fb_accept_main(void *arg)
{
    struct fake_broker *fb = arg;
    while (!fb_stopped(fb)) {
        struct pollfd pfd = {.fd = fb->lfd, .events = POLLIN};
        if (poll(&pfd, 1, 20) <= 0)
            continue;
        int fd = accept(fb->lfd, NULL, NULL);
        if (fd < 0)
            continue;
        /* The connection is counted before its thread starts: that thread may answer the stub
         * at once, and a test that reads nconns right after its call must see the connection. */
        uv_mutex_lock(&fb->lock);
        int slot = fb->nconns < FB_MAX_CONNS ? fb->nconns : -1;
        uv_mutex_unlock(&fb->lock);
        struct fb_conn *c = slot >= 0 ? malloc(sizeof(*c)) : NULL;
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fb = fb;
        c->fd = fd;
        fb->conn_fds[slot] = fd;
        uv_mutex_lock(&fb->lock);
        fb->nconns++;
        uv_mutex_unlock(&fb->lock);
        if (uv_thread_create(&fb->conn_threads[slot], fb_conn_main, c) != 0) {
            uv_mutex_lock(&fb->lock);
            fb->nconns--;
            uv_mutex_unlock(&fb->lock);
            close(fd);
            free(c);
            continue;
        }
    }
}

static int fb_start(struct fake_broker *fb, const char *path, int mode)
{
    struct sockaddr_un sa;

    memset(fb, 0, sizeof(*fb));
    snprintf(fb->path, sizeof(fb->path), "%s", path);
    fb->mode = mode;
    uv_mutex_init(&fb->lock);
    unlink(path);
    fb->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
    if (fb->lfd < 0 || bind(fb->lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        listen(fb->lfd, 128) != 0)
        return -1;
    return uv_thread_create(&fb->accept_thread, fb_accept_main, fb);
}

/* Stops like a broker going away: every connection is closed and the socket file removed. */
static void fb_stop(struct fake_broker *fb)
{
    __atomic_store_n(&fb->stop, 1, __ATOMIC_SEQ_CST);
    uv_thread_join(&fb->accept_thread);
    for (int i = 0; i < fb->nconns; i++) {
        uv_thread_join(&fb->conn_threads[i]);
        close(fb->conn_fds[i]);
    }
    close(fb->lfd);
    unlink(fb->path);
    uv_mutex_destroy(&fb->lock);
}

/* ---------------------------------------------------------------------------------------------
 * Sending and spooling
 * ------------------------------------------------------------------------------------------- */

static char tmpdir[256];

static size_t count_spooled(const char *dir)
{
    char **list = NULL;
    size_t n = 0;
    if (crs_fs_list(dir, CRS_SPOOL_SUFFIX, &list, &n) != 0)
        return 0;
    crs_fs_list_free(list);
    return n;
}

static void clear_spool(const char *dir)
{
    char **list = NULL;
    size_t n = 0;
    if (crs_fs_list(dir, CRS_SPOOL_SUFFIX, &list, &n) != 0)
        return;
    for (size_t i = 0; i < n; i++)
        crs_fs_unlink_durable(dir, list[i]);
    crs_fs_list_free(list);
}

static int notify_issued(struct crs_stub *stub, struct crs_stub_result *res)
{
    struct treader t;
    struct crs_prop_reader rd;
    tr_init(&t, &rd, full_props, NFULL);
    return crs_stub_notify(stub, CRS_EVENT_ISSUED, &rd, res);
}

static void test_notify_no_broker(void)
{
    char spool[300], sock[300];
    snprintf(spool, sizeof(spool), "%s/spool-absent/sub", tmpdir);
    snprintf(sock, sizeof(sock), "%s/absent.sock", tmpdir);
    struct crs_stub *stub = new_stub(sock, spool, 1000, 0);
    struct crs_stub_result res;
    uint64_t t0 = crs_mono_ms();

    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK(crs_mono_ms() - t0 < 10000);
    CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
    CHECK_EQ_INT(res.send_error, CRS_ECONNREFUSED);
    CHECK(crs_uuid_valid(res.event_id));

    /* Exactly one spool file, named after the event, holding that event. */
    char **list = NULL;
    size_t n = 0;
    CHECK_EQ_INT(crs_fs_list(spool, CRS_SPOOL_SUFFIX, &list, &n), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1) {
        char want[64];
        snprintf(want, sizeof(want), "%s%s", res.event_id, CRS_SPOOL_SUFFIX);
        CHECK_EQ_STR(list[0], want);
        char *path = crs_path_join(spool, list[0]);
        uint8_t *bytes = NULL;
        size_t len = 0;
        Certrelay__V1__Event *ev = NULL;
        CHECK_EQ_INT(crs_spool_read(path, &bytes, &len), 0);
        CHECK_EQ_INT(crs_event_unpack(bytes, len, &ev), 0);
        if (ev != NULL) {
            CHECK_EQ_STR(ev->event_id, res.event_id);
            CHECK(ev->request != NULL && ev->request->request_id == 42);
        }
        crs_event_free(ev);
        crs_free(bytes);
        crs_free(path);
    }
    crs_fs_list_free(list);
    clear_spool(spool);
    crs_stub_free(stub);
}

static void test_notify_ack_and_reuse(void)
{
    char spool[300], sock[300];
    struct fake_broker fb;
    snprintf(spool, sizeof(spool), "%s/spool-ack", tmpdir);
    snprintf(sock, sizeof(sock), "%s/ack.sock", tmpdir);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK), 0);
    struct crs_stub *stub = new_stub(sock, spool, 5000, 0);
    struct crs_stub_result res;

    for (int i = 0; i < 3; i++) {
        CHECK_EQ_INT(notify_issued(stub, &res), 0);
        CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
        CHECK_EQ_INT(res.send_error, 0);
    }
    CHECK_EQ_INT(count_spooled(spool), 0);
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.nconns, 1); /* one connection, reused */
    CHECK_EQ_INT(fb.hello_ok, 1);
    CHECK_EQ_INT(fb.hello_bad, 0);
    CHECK_EQ_INT(fb.events, 3);
    uv_mutex_unlock(&fb.lock);

    /* The broker restarts: the pooled connection is dead, the next call reconnects. */
    fb_stop(&fb);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK), 0);
    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.hello_ok, 1);
    CHECK_EQ_INT(fb.events, 1);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    crs_stub_free(stub);
}

/* crs_stub_send_packed: an event packed by the caller goes the same way as a built one (acked by
 * the broker, spooled under its own id without one); a bad id or empty bytes are refused. */
static void test_send_packed(void)
{
    char spool[300], sock[300], id[CRS_UUID_STRLEN + 1];
    struct fake_broker fb;
    struct crs_stub_result res;
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    uint8_t *bytes = NULL;
    size_t len = 0;

    snprintf(spool, sizeof(spool), "%s/spool-packed", tmpdir);
    snprintf(sock, sizeof(sock), "%s/packed.sock", tmpdir);
    CHECK_EQ_INT(crs_uuid7(id), 0);
    ev.event_id = id;
    ev.has_kind = 1;
    ev.kind = CRS_EVENT_STARTUP;
    CHECK_EQ_INT(crs_event_pack(&ev, &bytes, &len), 0);

    struct crs_stub *stub = new_stub(sock, spool, 1000, 0);
    CHECK_EQ_INT(crs_stub_send_packed(stub, "not-a-uuid", bytes, len, &res), CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_send_packed(stub, id, bytes, 0, &res), CRS_EINVAL);
    CHECK_EQ_INT(crs_stub_send_packed(NULL, id, bytes, len, &res), CRS_EINVAL);
    /* No broker: spooled under the caller's id. */
    CHECK_EQ_INT(crs_stub_send_packed(stub, id, bytes, len, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
    CHECK_EQ_STR(res.event_id, id);
    CHECK_EQ_INT(count_spooled(spool), 1);
    clear_spool(spool);
    crs_stub_free(stub);

    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK), 0);
    stub = new_stub(sock, spool, 5000, 0);
    CHECK_EQ_INT(crs_stub_send_packed(stub, id, bytes, len, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
    CHECK_EQ_INT(count_spooled(spool), 0);
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.events, 1);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    crs_stub_free(stub);
    crs_free(bytes);
}

/* A pooled connection that looks alive but dies under the next event: the event is sent again on
 * a fresh connection within the same call, and acknowledged. */
static void test_notify_retry_on_dead_pooled(void)
{
    char spool[300], sock[300];
    struct fake_broker fb;
    snprintf(spool, sizeof(spool), "%s/spool-retry", tmpdir);
    snprintf(sock, sizeof(sock), "%s/retry.sock", tmpdir);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK_ONCE), 0);
    struct crs_stub *stub = new_stub(sock, spool, 5000, 0);
    struct crs_stub_result res;

    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
    CHECK_EQ_INT(count_spooled(spool), 0);
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.nconns, 2);
    CHECK_EQ_INT(fb.events, 3); /* the second event arrived twice, once on each connection */
    CHECK_EQ_INT(fb.hello_ok, 2);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    crs_stub_free(stub);
}

static void test_notify_failures_spool(void)
{
    static const struct {
        int mode;
        int err;
    } cases[] = {
        {FB_NACK, CRS_ENACK},
        {FB_STRAY, CRS_EPROTO},
        {FB_CLOSE, CRS_ECLOSED},
        {FB_SILENT, CRS_ETIMEDOUT},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char spool[300], sock[300];
        struct fake_broker fb;
        snprintf(spool, sizeof(spool), "%s/spool-fail-%zu", tmpdir, i);
        snprintf(sock, sizeof(sock), "%s/fail-%zu.sock", tmpdir, i);
        CHECK_EQ_INT(fb_start(&fb, sock, cases[i].mode), 0);
        struct crs_stub *stub = new_stub(sock, spool, 300, 0);
        struct crs_stub_result res;
        uint64_t t0 = crs_mono_ms();

        CHECK_EQ_INT(notify_issued(stub, &res), 0);
        /* A generous guard: the call is bounded by its 300 ms timeout plus a spool write. */
        CHECK(crs_mono_ms() - t0 < 10000);
        CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
        CHECK_EQ_INT(res.send_error, cases[i].err);
        CHECK_EQ_INT(count_spooled(spool), 1);

        /* The failed connection was not pooled: a second call opens a new one. */
        CHECK_EQ_INT(notify_issued(stub, &res), 0);
        CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
        CHECK_EQ_INT(count_spooled(spool), 2);
        uv_mutex_lock(&fb.lock);
        CHECK_EQ_INT(fb.nconns, 2);
        uv_mutex_unlock(&fb.lock);

        fb_stop(&fb);
        clear_spool(spool);
        crs_stub_free(stub);
    }
}

struct conc_arg {
    struct crs_stub *stub;
    int acked;
    int other;
};

static void conc_worker(void *arg)
{
    struct conc_arg *a = arg;
    for (int i = 0; i < 50; i++) {
        struct crs_stub_result res;
        int rc = notify_issued(a->stub, &res);
        if (rc == 0 && res.outcome == CRS_STUB_ACKED)
            a->acked++;
        else
            a->other++;
    }
}

static void test_notify_concurrent(void)
{
    char spool[300], sock[300];
    struct fake_broker fb;
    struct conc_arg args[16];
    uv_thread_t threads[16];

    snprintf(spool, sizeof(spool), "%s/spool-conc", tmpdir);
    snprintf(sock, sizeof(sock), "%s/conc.sock", tmpdir);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK), 0);
    struct crs_stub *stub = new_stub(sock, spool, 10000, 0);

    for (int i = 0; i < 16; i++) {
        args[i] = (struct conc_arg){stub, 0, 0};
        CHECK_EQ_INT(uv_thread_create(&threads[i], conc_worker, &args[i]), 0);
    }
    int acked = 0, other = 0;
    for (int i = 0; i < 16; i++) {
        uv_thread_join(&threads[i]);
        acked += args[i].acked;
        other += args[i].other;
    }
    CHECK_EQ_INT(acked, 16 * 50);
    CHECK_EQ_INT(other, 0);
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.events, 16 * 50);
    CHECK(fb.nconns <= 16 + 8); /* connections are reused, not opened per call */
    CHECK_EQ_INT(fb.hello_bad, 0);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    crs_stub_free(stub);
}

/*
 * The circuit breaker: a broker that accepts and never answers costs one timeout; the calls after
 * it go straight to the spool without touching the broker (it sees one event), until the window
 * is over.
 */
static void test_notify_breaker_hung(void)
{
    char spool[300], sock[300];
    struct fake_broker fb;
    struct crs_stub_result res;

    snprintf(spool, sizeof(spool), "%s/spool-breaker", tmpdir);
    snprintf(sock, sizeof(sock), "%s/breaker.sock", tmpdir);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_SILENT), 0);
    /* A window far longer than the test: no probe happens during it. */
    struct crs_stub *stub = new_stub_breaker(sock, spool, 200, 0, CRS_STUB_MAX_BREAKER_MS);

    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
    CHECK_EQ_INT(res.send_error, CRS_ETIMEDOUT);
    CHECK_EQ_INT(res.breaker_open, 0);
    CHECK_EQ_INT(res.request_id, 42);
    for (int i = 0; i < 49; i++) {
        CHECK_EQ_INT(notify_issued(stub, &res), 0);
        CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
        CHECK_EQ_INT(res.breaker_open, 1);
        CHECK_EQ_INT(res.send_error, CRS_ETIMEDOUT);
    }
    CHECK_EQ_INT(count_spooled(spool), 50);
    /* The broker saw at most the first event (its threads may not have counted it yet: the
     * bound, not the count, is the point). */
    uv_mutex_lock(&fb.lock);
    CHECK(fb.events <= 1);
    CHECK(fb.nconns <= 1);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    clear_spool(spool);
    crs_stub_free(stub);
}

/* After the window one call probes; when the broker is back it is acknowledged, which closes the
 * breaker for every call after it. */
static void test_notify_breaker_probe(void)
{
    char spool[300], sock[300];
    struct fake_broker fb;
    struct crs_stub_result res;

    snprintf(spool, sizeof(spool), "%s/spool-probe", tmpdir);
    snprintf(sock, sizeof(sock), "%s/probe.sock", tmpdir);
    struct crs_stub *stub = new_stub_breaker(sock, spool, 1000, 0, 1);

    CHECK_EQ_INT(notify_issued(stub, &res), 0);
    CHECK_EQ_INT(res.outcome, CRS_STUB_SPOOLED);
    CHECK_EQ_INT(res.send_error, CRS_ECONNREFUSED);
    CHECK_EQ_INT(fb_start(&fb, sock, FB_ACK), 0);
    uv_sleep(20); /* past the 1 ms window */
    for (int i = 0; i < 5; i++) {
        CHECK_EQ_INT(notify_issued(stub, &res), 0);
        CHECK_EQ_INT(res.outcome, CRS_STUB_ACKED);
    }
    uv_mutex_lock(&fb.lock);
    CHECK_EQ_INT(fb.events, 5);
    uv_mutex_unlock(&fb.lock);
    fb_stop(&fb);
    clear_spool(spool);
    crs_stub_free(stub);
}

/* A failing spool directory is the one case where the event is lost: the caller is told. */
static void test_notify_spool_unwritable(void)
{
    char spool[400], sock[300], file[300];
    snprintf(file, sizeof(file), "%s/not-a-dir", tmpdir);
    FILE *f = fopen(file, "w");
    CHECK(f != NULL);
    if (f != NULL)
        fclose(f);
    snprintf(spool, sizeof(spool), "%s/sub", file);
    snprintf(sock, sizeof(sock), "%s/absent2.sock", tmpdir);
    struct crs_stub *stub = new_stub(sock, spool, 200, 0);
    struct crs_stub_result res;
    CHECK(notify_issued(stub, &res) < 0);
    CHECK_EQ_INT(res.outcome, 0);
    crs_stub_free(stub);
    unlink(file);
}

int main(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/crs-stubtest.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }

    test_build_issued();
    test_build_all_kinds();
    test_build_revoked_by_disposition();
    test_build_rejects_unknown_kind();
    test_build_sparse_and_failing();
    test_build_crl_count_capped();
    test_build_oversized_crl();
    test_build_oversized_certificate();
    test_build_alloc_failures();
    test_notify_no_broker();
    test_notify_ack_and_reuse();
    test_send_packed();
    test_notify_retry_on_dead_pooled();
    test_notify_failures_spool();
    test_notify_concurrent();
    test_notify_spool_unwritable();
    test_notify_breaker_hung();
    test_notify_breaker_probe();

    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", tmpdir);
    return CHECK_DONE();
}
