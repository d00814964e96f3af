/*
 * The JSON event document, base64 and RFC 3339 time. Documents are checked by parsing the text
 * back with jansson and comparing member by member, so the tests hold the schema, not jansson's
 * spelling of it.
 */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "render/json.h"

#define R       "\xef\xbf\xbd" /* U+FFFD */
#define HOSTILE "\"},\"x\":\"<\\/script>\\u0000"

/* ------------------------------------------------------------------------------------------ */
/* A complete event built with the protobuf-c initializers                                    */
/* ------------------------------------------------------------------------------------------ */

struct fixture {
    Certrelay__V1__Event ev;
    Certrelay__V1__CaInfo ca;
    Certrelay__V1__RequestInfo req;
    Certrelay__V1__CertificateInfo cert;
    Certrelay__V1__Attribute attr[4];
    Certrelay__V1__Attribute *attrp[4];
    Certrelay__V1__Extension ext[2];
    Certrelay__V1__Extension *extp[2];
    Certrelay__V1__CrlInfo crl[2];
    Certrelay__V1__CrlInfo *crlp[2];
    Certrelay__V1__Value val[5];
    Certrelay__V1__Event__ExtraEntry extra[5];
    Certrelay__V1__Event__ExtraEntry *extrap[5];
};

static uint8_t der_cert[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x00, 0xff};
static uint8_t raw_req[] = {0x30, 0x03, 0x02, 0x01, 0x01};
static uint8_t ku[] = {0x03, 0x02, 0x05, 0xa0};
static uint8_t san[] = {0x30, 0x00};
static uint8_t crl0[] = {0x30, 0x01, 0x00};
static uint8_t delta0[] = {0x30, 0x02, 0x00, 0x00};
static uint8_t crl1[] = {0x30, 0x03};
static uint8_t blob[] = {0x00, 0x01, 0x02, 0xff};

static ProtobufCBinaryData bin(uint8_t *p, size_t n)
{
    ProtobufCBinaryData b = {n, p};
    return b;
}

static void fixture_init(struct fixture *f)
{
    size_t i;

    memset(f, 0, sizeof *f);
    f->ev = (Certrelay__V1__Event)CERTRELAY__V1__EVENT__INIT;
    f->ca = (Certrelay__V1__CaInfo)CERTRELAY__V1__CA_INFO__INIT;
    f->req = (Certrelay__V1__RequestInfo)CERTRELAY__V1__REQUEST_INFO__INIT;
    f->cert = (Certrelay__V1__CertificateInfo)CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    for (i = 0; i < 4; i++) {
        f->attr[i] = (Certrelay__V1__Attribute)CERTRELAY__V1__ATTRIBUTE__INIT;
        f->attrp[i] = &f->attr[i];
    }
    for (i = 0; i < 2; i++) {
        f->ext[i] = (Certrelay__V1__Extension)CERTRELAY__V1__EXTENSION__INIT;
        f->extp[i] = &f->ext[i];
        f->crl[i] = (Certrelay__V1__CrlInfo)CERTRELAY__V1__CRL_INFO__INIT;
        f->crlp[i] = &f->crl[i];
    }
    for (i = 0; i < 5; i++) {
        f->val[i] = (Certrelay__V1__Value)CERTRELAY__V1__VALUE__INIT;
        f->extra[i] = (Certrelay__V1__Event__ExtraEntry)CERTRELAY__V1__EVENT__EXTRA_ENTRY__INIT;
        f->extra[i].value = &f->val[i];
        f->extrap[i] = &f->extra[i];
    }

    f->ev.event_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    f->ev.has_kind = 1;
    f->ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_ISSUED;
    f->ev.has_capture_time_ms = 1;
    f->ev.capture_time_ms = 1795284247123LL; /* 2026-11-21T18:04:07.123Z */
    f->ev.has_raw_exit_event = 1;
    f->ev.raw_exit_event = 1;

    f->ca.config = "ca01.example.com\\Example Issuing CA";
    f->ca.sanitized_name = "Example Issuing CA";
    f->ca.host = "ca01.example.com";
    f->ev.ca = &f->ca;

    f->req.has_request_id = 1;
    f->req.request_id = 123;
    f->req.has_request_type = 1;
    f->req.request_type = 0x40100;
    f->req.has_disposition = 1;
    f->req.disposition = 20;
    f->req.disposition_message = "Issued";
    f->req.has_status_code = 1;
    f->req.status_code = 0;
    f->req.requester_name = "EXAMPLE\\alice";
    f->req.caller_name = "EXAMPLE\\svc-enroll";
    f->req.has_submitted_when_ms = 1;
    f->req.submitted_when_ms = 1795283940000LL;
    f->req.has_resolved_when_ms = 1;
    f->req.resolved_when_ms = 1795284000000LL;
    f->req.has_revoked_when_ms = 1;
    f->req.revoked_when_ms = -2208988800000LL; /* 1900-01-01 */
    f->req.has_revoked_effective_when_ms = 1;
    f->req.revoked_effective_when_ms = 951825600000LL; /* 2000-02-29T12:00:00Z */
    f->req.has_revoked_reason = 1;
    f->req.revoked_reason = 1;
    f->req.request_attributes = "CertificateTemplate:WebServer\nsan:dns=web01.example.com";
    f->attr[0].name = "CertificateTemplate";
    f->attr[0].value = "WebServer";
    f->attr[1].name = "san";
    f->attr[1].value = "dns=web01.example.com";
    f->attr[2].name = "ccm";
    f->attr[2].value = HOSTILE;
    f->attr[3].name = "bad\xff";
    f->attr[3].value = NULL;
    f->req.n_attributes = 4;
    f->req.attributes = f->attrp;
    f->req.certificate_template = "WebServerRequest";
    f->req.has_raw_request = 1;
    f->req.raw_request = bin(raw_req, sizeof raw_req);
    f->ev.request = &f->req;

    f->cert.serial_number = "1a 2B 3c 00 ff";
    f->cert.has_raw_certificate = 1;
    f->cert.raw_certificate = bin(der_cert, sizeof der_cert);
    f->cert.has_not_before_ms = 1;
    f->cert.not_before_ms = 1795219200000LL;
    f->cert.has_not_after_ms = 1;
    f->cert.not_after_ms = 1826755200000LL;
    f->cert.distinguished_name = "CN=web01.example.com, O=Example\r\n\t\x01";
    f->cert.common_name = HOSTILE;
    f->cert.upn = "web01\xff\xfe@example.com";
    f->cert.email = "ops@example.com";
    f->cert.certificate_hash = "A1 B2 c3 D4";
    f->cert.certificate_template = "WebServer";
    f->cert.public_key_algorithm = "1.2.840.113549.1.1.1";
    f->cert.has_public_key_length = 1;
    f->cert.public_key_length = 2048;
    f->ext[0].oid = "2.5.29.15";
    f->ext[0].has_critical = 1;
    f->ext[0].critical = 1;
    f->ext[0].has_value = 1;
    f->ext[0].value = bin(ku, sizeof ku);
    f->ext[0].has_flags = 1;
    f->ext[0].flags = 0;
    f->ext[1].oid = "2.5.29.17";
    f->ext[1].has_critical = 1;
    f->ext[1].critical = 0;
    f->ext[1].has_value = 1;
    f->ext[1].value = bin(san, sizeof san);
    f->ext[1].has_flags = 1;
    f->ext[1].flags = 0x20000;
    f->cert.n_extensions = 2;
    f->cert.extensions = f->extp;
    f->ev.certificate = &f->cert;

    f->crl[0].has_ca_cert_index = 1;
    f->crl[0].ca_cert_index = 0;
    f->crl[0].has_raw_crl = 1;
    f->crl[0].raw_crl = bin(crl0, sizeof crl0);
    f->crl[0].has_raw_delta_crl = 1;
    f->crl[0].raw_delta_crl = bin(delta0, sizeof delta0);
    f->crl[1].has_ca_cert_index = 1;
    f->crl[1].ca_cert_index = 1;
    f->crl[1].has_raw_crl = 1;
    f->crl[1].raw_crl = bin(crl1, sizeof crl1);
    f->crl[1].has_raw_delta_crl = 1; /* delta CRLs disabled: present but empty */
    f->crl[1].raw_delta_crl = bin(NULL, 0);
    f->ev.n_crls = 2;
    f->ev.crls = f->crlp;

    /* Deliberately out of key order: the document sorts them. */
    f->extra[0].key = "ZLong";
    f->val[0].v_case = CERTRELAY__V1__VALUE__V_LONG_VALUE;
    f->val[0].long_value = -42;
    f->extra[1].key = "ADate";
    f->val[1].v_case = CERTRELAY__V1__VALUE__V_DATE_UNIX_MS;
    f->val[1].date_unix_ms = 951825600000LL;
    f->extra[2].key = "MBinary";
    f->val[2].v_case = CERTRELAY__V1__VALUE__V_BINARY_VALUE;
    f->val[2].binary_value = bin(blob, sizeof blob);
    f->extra[3].key = "BString";
    f->val[3].v_case = CERTRELAY__V1__VALUE__V_STRING_VALUE;
    f->val[3].string_value = "hello\xff";
    f->extra[4].key = "Unset"; /* no type: skipped */
    f->ev.n_extra = 5;
    f->ev.extra = f->extrap;
}

/* ------------------------------------------------------------------------------------------ */
/* Helpers                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static json_t *render_parse(const Certrelay__V1__Event *ev, int pretty)
{
    char *text = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    json_error_t jerr;

    CHECK_EQ_INT(crs_event_to_json_text(ev, pretty, &text, &len), 0);
    if (!text)
        return NULL;
    CHECK_EQ_INT(len, strlen(text));
    doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!doc)
        fprintf(stderr, "parse error: %s in %s\n", jerr.text, text);
    CHECK(doc != NULL);
    crs_free(text);
    return doc;
}

static const char *str(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static long long num(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    CHECK(json_is_integer(v));
    return (long long)json_integer_value(v);
}

/* The object's keys in document order, comma-joined. */
static const char *keys(json_t *o)
{
    static char buf[1024];
    const char *k;
    json_t *v;

    buf[0] = '\0';
    json_object_foreach(o, k, v)
    {
        if (buf[0])
            strcat(buf, ",");
        strcat(buf, k);
    }
    return buf;
}

static char *text_of(const Certrelay__V1__Event *ev, int pretty)
{
    char *text = NULL;
    size_t len;

    CHECK_EQ_INT(crs_event_to_json_text(ev, pretty, &text, &len), 0);
    return text;
}

/* ------------------------------------------------------------------------------------------ */
/* The document                                                                                */
/* ------------------------------------------------------------------------------------------ */

static void test_full_document(void)
{
    struct fixture f;
    json_t *doc, *o, *a, *x;

    fixture_init(&f);
    doc = render_parse(&f.ev, 0);
    if (!doc)
        return;

    CHECK_EQ_STR(keys(doc), "schema,event,event_id,time,raw_exit_event,ca,request,certificate,"
                            "crls,extra");
    CHECK_EQ_STR(str(doc, "schema"), "certrelay.event/1");
    CHECK_EQ_STR(str(doc, "event"), "issued");
    CHECK_EQ_STR(str(doc, "event_id"), "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b");
    CHECK_EQ_STR(str(doc, "time"), "2026-11-21T18:04:07.123Z");
    CHECK_EQ_INT(num(doc, "raw_exit_event"), 1);

    o = json_object_get(doc, "ca");
    CHECK_EQ_STR(keys(o), "config,name,host");
    CHECK_EQ_STR(str(o, "config"), "ca01.example.com\\Example Issuing CA");
    CHECK_EQ_STR(str(o, "name"), "Example Issuing CA");
    CHECK_EQ_STR(str(o, "host"), "ca01.example.com");

    o = json_object_get(doc, "request");
    CHECK_EQ_STR(keys(o), "id,type,disposition,disposition_name,disposition_message,status_code,"
                          "requester,caller,submitted,resolved,revoked,revoked_effective,"
                          "revocation_reason,revocation_reason_name,template,attributes_text,"
                          "attributes,raw_request_base64");
    CHECK_EQ_INT(num(o, "id"), 123);
    CHECK_EQ_INT(num(o, "type"), 0x40100);
    CHECK_EQ_INT(num(o, "disposition"), 20);
    CHECK_EQ_STR(str(o, "disposition_name"), "issued");
    CHECK_EQ_STR(str(o, "disposition_message"), "Issued");
    CHECK_EQ_INT(num(o, "status_code"), 0);
    CHECK_EQ_STR(str(o, "requester"), "EXAMPLE\\alice");
    CHECK_EQ_STR(str(o, "caller"), "EXAMPLE\\svc-enroll");
    CHECK_EQ_STR(str(o, "submitted"), "2026-11-21T17:59:00.000Z");
    CHECK_EQ_STR(str(o, "resolved"), "2026-11-21T18:00:00.000Z");
    CHECK_EQ_STR(str(o, "revoked"), "1900-01-01T00:00:00.000Z");
    CHECK_EQ_STR(str(o, "revoked_effective"), "2000-02-29T12:00:00.000Z");
    CHECK_EQ_INT(num(o, "revocation_reason"), 1);
    CHECK_EQ_STR(str(o, "revocation_reason_name"), "key_compromise");
    CHECK_EQ_STR(str(o, "template"), "WebServerRequest");
    CHECK_EQ_STR(str(o, "attributes_text"),
                 "CertificateTemplate:WebServer\nsan:dns=web01.example.com");
    CHECK_EQ_STR(str(o, "raw_request_base64"), "MAMCAQE=");
    a = json_object_get(o, "attributes");
    CHECK_EQ_STR(keys(a), "CertificateTemplate,san,ccm,bad" R);
    CHECK_EQ_STR(str(a, "CertificateTemplate"), "WebServer");
    CHECK_EQ_STR(str(a, "san"), "dns=web01.example.com");
    CHECK_EQ_STR(str(a, "ccm"), HOSTILE);
    CHECK_EQ_STR(str(a, "bad" R), "");

    o = json_object_get(doc, "certificate");
    CHECK_EQ_STR(keys(o), "serial,der_base64,not_before,not_after,subject,common_name,upn,email,"
                          "thumbprint,template,public_key,extensions");
    CHECK_EQ_STR(str(o, "serial"), "1a2b3c00ff");
    CHECK_EQ_STR(str(o, "der_base64"), "MIIBCgIBAP8=");
    CHECK_EQ_STR(str(o, "not_before"), "2026-11-21T00:00:00.000Z");
    CHECK_EQ_STR(str(o, "not_after"), "2027-11-21T00:00:00.000Z");
    CHECK_EQ_STR(str(o, "subject"), "CN=web01.example.com, O=Example\r\n\t\x01");
    CHECK_EQ_STR(str(o, "common_name"), HOSTILE);
    CHECK_EQ_STR(str(o, "upn"), "web01" R R "@example.com");
    CHECK_EQ_STR(str(o, "email"), "ops@example.com");
    CHECK_EQ_STR(str(o, "thumbprint"), "a1b2c3d4");
    CHECK_EQ_STR(str(o, "template"), "WebServer");
    x = json_object_get(o, "public_key");
    CHECK_EQ_STR(str(x, "algorithm"), "1.2.840.113549.1.1.1");
    CHECK_EQ_INT(num(x, "length"), 2048);
    a = json_object_get(o, "extensions");
    CHECK(json_is_array(a) && json_array_size(a) == 2);
    x = json_array_get(a, 0);
    CHECK_EQ_STR(keys(x), "oid,critical,flags,der_base64");
    CHECK_EQ_STR(str(x, "oid"), "2.5.29.15");
    CHECK(json_is_true(json_object_get(x, "critical")));
    CHECK_EQ_INT(num(x, "flags"), 0);
    CHECK_EQ_STR(str(x, "der_base64"), "AwIFoA==");
    x = json_array_get(a, 1);
    CHECK_EQ_STR(str(x, "oid"), "2.5.29.17");
    CHECK(json_is_false(json_object_get(x, "critical")));
    CHECK_EQ_INT(num(x, "flags"), 0x20000);
    CHECK_EQ_STR(str(x, "der_base64"), "MAA=");

    a = json_object_get(doc, "crls");
    CHECK(json_is_array(a) && json_array_size(a) == 2);
    x = json_array_get(a, 0);
    CHECK_EQ_STR(keys(x), "ca_cert_index,crl_base64,delta_crl_base64");
    CHECK_EQ_INT(num(x, "ca_cert_index"), 0);
    CHECK_EQ_STR(str(x, "crl_base64"), "MAEA");
    CHECK_EQ_STR(str(x, "delta_crl_base64"), "MAIAAA==");
    x = json_array_get(a, 1);
    CHECK_EQ_STR(keys(x), "ca_cert_index,crl_base64");
    CHECK_EQ_INT(num(x, "ca_cert_index"), 1);
    CHECK_EQ_STR(str(x, "crl_base64"), "MAM=");

    o = json_object_get(doc, "extra");
    CHECK_EQ_STR(keys(o), "ADate,BString,MBinary,ZLong");
    CHECK_EQ_INT(num(o, "ZLong"), -42);
    CHECK_EQ_STR(str(json_object_get(o, "ADate"), "date"), "2000-02-29T12:00:00.000Z");
    CHECK_EQ_STR(str(json_object_get(o, "MBinary"), "base64"), "AAEC/w==");
    CHECK_EQ_STR(str(o, "BString"), "hello" R);

    json_decref(doc);
}

static void test_exact_text(void)
{
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__CaInfo ca = CERTRELAY__V1__CA_INFO__INIT;
    char *text;

    ev.event_id = "id";
    ev.has_kind = 1;
    ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_STARTUP;
    ev.has_capture_time_ms = 1;
    ev.capture_time_ms = 0;
    ca.sanitized_name = "Q\"\n\xc3\xa9";
    ev.ca = &ca;

    text = text_of(&ev, 0);
    CHECK_EQ_STR(text,
                 "{\"schema\":\"certrelay.event/1\",\"event\":\"startup\",\"event_id\":\"id\","
                 "\"time\":\"1970-01-01T00:00:00.000Z\",\"ca\":{\"name\":\"Q\\\"\\n\xc3\xa9\"}}");
    crs_free(text);

    text = text_of(&ev, 1);
    CHECK_EQ_STR(text, "{\n  \"schema\": \"certrelay.event/1\",\n  \"event\": \"startup\",\n"
                       "  \"event_id\": \"id\",\n  \"time\": \"1970-01-01T00:00:00.000Z\",\n"
                       "  \"ca\": {\n    \"name\": \"Q\\\"\\n\xc3\xa9\"\n  }\n}");
    crs_free(text);
}

/* The indented text (the file sink's .json) is byte for byte what jansson's JSON_INDENT(2) writes
 * for the same tree, arrays, nested objects and escapes included. */
static void test_indented_same_as_jansson(void)
{
    struct fixture f;
    json_t *doc, *empty;
    char *text = NULL, *ref;
    size_t len = 0, n;

    fixture_init(&f);
    CHECK_EQ_INT(crs_event_to_json_text(&f.ev, 1, &text, &len), 0);
    doc = crs_event_to_json(&f.ev);
    CHECK(doc != NULL && text != NULL);
    if (doc == NULL || text == NULL) {
        json_decref(doc);
        crs_free(text);
        return;
    }
    /* Empty containers too, which jansson writes as {} and [] without a line break. */
    empty = json_object();
    json_object_set_new(empty, "none", json_array());
    json_object_set_new(empty, "nothing", json_object());
    json_object_set_new(doc, "zz_empty", empty);
    crs_free(text);
    text = NULL;
    CHECK_EQ_INT(crs_json_dump_indented(doc, 2, &text, &len), 0);
    n = json_dumpb(doc, NULL, 0, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    ref = crs_malloc(n + 1);
    if (ref != NULL && text != NULL) {
        json_dumpb(doc, ref, n, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        ref[n] = '\0';
        CHECK_EQ_INT(len, n);
        CHECK_EQ_STR(text, ref);
    }
    crs_free(ref);
    crs_free(text);
    json_decref(doc);
}

static void test_absent_fields(void)
{
    Certrelay__V1__Event ev = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__RequestInfo req = CERTRELAY__V1__REQUEST_INFO__INIT;
    Certrelay__V1__CertificateInfo cert = CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    Certrelay__V1__Extension ext = CERTRELAY__V1__EXTENSION__INIT, *extp = &ext;
    Certrelay__V1__CrlInfo crl = CERTRELAY__V1__CRL_INFO__INIT, *crlp = &crl;
    json_t *doc, *o;

    /* Nothing set at all: only the schema. */
    doc = render_parse(&ev, 0);
    CHECK_EQ_STR(keys(doc), "schema");
    json_decref(doc);

    /* A kind with no name, an unknown disposition and an unused reason have no names. */
    ev.has_kind = 1;
    ev.kind = (Certrelay__V1__EventKind)3;
    req.has_request_id = 1;
    req.request_id = 0;
    req.has_disposition = 1;
    req.disposition = 8;
    req.has_revoked_reason = 1;
    req.revoked_reason = 7;
    req.has_raw_request = 1; /* present but empty */
    ev.request = &req;
    cert.has_raw_certificate = 1;
    cert.serial_number = " :";
    cert.n_extensions = 1;
    cert.extensions = &extp;
    ev.certificate = &cert;
    crl.has_raw_crl = 0;
    ev.n_crls = 1;
    ev.crls = &crlp;
    doc = render_parse(&ev, 0);
    CHECK_EQ_STR(keys(doc), "schema,request,certificate,crls");
    o = json_object_get(doc, "request");
    CHECK_EQ_STR(keys(o), "id,disposition,revocation_reason");
    CHECK_EQ_INT(num(o, "id"), 0);
    CHECK_EQ_INT(num(o, "disposition"), 8);
    CHECK_EQ_INT(num(o, "revocation_reason"), 7);
    o = json_object_get(doc, "certificate");
    CHECK_EQ_STR(keys(o), "extensions");
    CHECK_EQ_STR(keys(json_array_get(json_object_get(o, "extensions"), 0)), "");
    CHECK_EQ_STR(keys(json_array_get(json_object_get(doc, "crls"), 0)), "");
    json_decref(doc);

    /* Every named disposition and reason. */
    {
        static const struct {
            int64_t v;
            const char *name;
        } disp[] = {{9, "pending"}, {20, "issued"}, {21, "revoked"}, {30, "error"}, {31, "denied"}};
        static const char *const reasons[] = {
            "unspecified",     "key_compromise",         "ca_compromise",    "affiliation_changed",
            "superseded",      "cessation_of_operation", "certificate_hold", NULL,
            "remove_from_crl", "privilege_withdrawn",    "aa_compromise"};
        size_t i;

        for (i = 0; i < sizeof disp / sizeof disp[0]; i++)
            CHECK_EQ_STR(crs_disposition_name(disp[i].v), disp[i].name);
        CHECK(crs_disposition_name(0) == NULL && crs_disposition_name(-1) == NULL);
        for (i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
            if (reasons[i])
                CHECK_EQ_STR(crs_revocation_reason_name((int64_t)i), reasons[i]);
            else
                CHECK(crs_revocation_reason_name((int64_t)i) == NULL);
        }
        CHECK(crs_revocation_reason_name(11) == NULL && crs_revocation_reason_name(-1) == NULL);
    }
}

static void test_determinism(void)
{
    struct fixture f, g;
    Certrelay__V1__Event__ExtraEntry *tmp;
    char *a, *b, *c, *p1, *p2;
    json_t *ja, *jp;

    fixture_init(&f);
    a = text_of(&f.ev, 0);
    b = text_of(&f.ev, 0);
    CHECK(a && b && strcmp(a, b) == 0);

    /* The same map listed in another order gives the same bytes. */
    fixture_init(&g);
    tmp = g.extrap[0];
    g.extrap[0] = g.extrap[3];
    g.extrap[3] = tmp;
    c = text_of(&g.ev, 0);
    CHECK(a && c && strcmp(a, c) == 0);

    /* Pretty and compact are the same document. */
    p1 = text_of(&f.ev, 1);
    p2 = text_of(&f.ev, 1);
    CHECK(p1 && p2 && strcmp(p1, p2) == 0);
    CHECK(p1 && strchr(p1, '\n') != NULL && a && strchr(a, '\n') == NULL);
    ja = a ? json_loads(a, 0, NULL) : NULL;
    jp = p1 ? json_loads(p1, 0, NULL) : NULL;
    CHECK(ja && jp && json_equal(ja, jp));
    json_decref(ja);
    json_decref(jp);
    crs_free(a);
    crs_free(b);
    crs_free(c);
    crs_free(p1);
    crs_free(p2);
}

static void test_duplicates(void)
{
    struct fixture f;
    json_t *doc;

    /* Repeated names: the last one wins and the document has no duplicate keys. */
    fixture_init(&f);
    f.attr[1].name = "CertificateTemplate";
    f.extra[2].key = "ZLong";
    doc = render_parse(&f.ev, 0); /* loaded with JSON_REJECT_DUPLICATES */
    CHECK_EQ_STR(
        str(json_object_get(json_object_get(doc, "request"), "attributes"), "CertificateTemplate"),
        "dns=web01.example.com");
    CHECK_EQ_STR(str(json_object_get(json_object_get(doc, "extra"), "ZLong"), "base64"),
                 "AAEC/w==");
    json_decref(doc);
}

static void test_args(void)
{
    char *text = (char *)"x";
    size_t len = 7;

    CHECK(crs_event_to_json(NULL) == NULL);
    CHECK_EQ_INT(crs_event_to_json_text(NULL, 0, &text, &len), CRS_EINVAL);
    CHECK(text == NULL);
    CHECK_EQ_INT(len, 0);
}

/*
 * Every allocation on the way (jansson's included, routed through crs_malloc) is made to fail in
 * turn: each failure must come back as CRS_ENOMEM with nothing leaked, until one run succeeds.
 */
static void test_alloc_failures(void)
{
    struct fixture f;
    char *want, *text;
    size_t len;
    long n;
    int rc = CRS_ENOMEM, failures = 0;

    fixture_init(&f);
    want = text_of(&f.ev, 0);
    for (n = 0; n < 100000 && rc != 0; n++) {
        text = NULL;
        crs_alloc_fail_after(n);
        rc = crs_event_to_json_text(&f.ev, n % 2, &text, &len);
        crs_alloc_fail_after(-1);
        if (rc != 0) {
            failures++;
            if (rc != CRS_ENOMEM || text != NULL)
                CHECK(rc == CRS_ENOMEM && text == NULL);
        } else {
            CHECK(want && text && (n % 2 || strcmp(want, text) == 0));
        }
        crs_free(text);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK(failures > 50);
    crs_free(want);
}

/* ------------------------------------------------------------------------------------------ */
/* Base64                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static void check_b64(const char *plain, const char *want)
{
    char *enc = crs_base64_encode((const uint8_t *)plain, strlen(plain));
    uint8_t *dec = NULL;
    size_t n = 99;

    CHECK_EQ_STR(enc, want);
    CHECK_EQ_INT(crs_base64_decode(want, &dec, &n), 0);
    CHECK(dec != NULL);
    CHECK_EQ_INT(n, strlen(plain));
    CHECK(dec && memcmp(dec, plain, n) == 0);
    crs_free(enc);
    crs_free(dec);
}

static void check_b64_bad(const char *text)
{
    uint8_t *dec = (uint8_t *)"x";
    size_t n = 5;

    CHECK_EQ_INT(crs_base64_decode(text, &dec, &n), CRS_EINVAL);
    CHECK(dec == NULL);
    CHECK_EQ_INT(n, 0);
}

static void test_base64(void)
{
    uint8_t all[256], *dec;
    size_t len, n;
    char *enc;

    /* RFC 4648 section 10: empty and 1-, 2-, 3-byte tails. */
    check_b64("", "");
    check_b64("f", "Zg==");
    check_b64("fo", "Zm8=");
    check_b64("foo", "Zm9v");
    check_b64("foob", "Zm9vYg==");
    check_b64("fooba", "Zm9vYmE=");
    check_b64("foobar", "Zm9vYmFy");

    for (n = 0; n < 256; n++)
        all[n] = (uint8_t)(255 - n);
    for (len = 0; len <= 256; len++) {
        enc = crs_base64_encode(all, len);
        CHECK(enc && strlen(enc) == (len + 2) / 3 * 4);
        dec = NULL;
        CHECK_EQ_INT(enc ? crs_base64_decode(enc, &dec, &n) : -1, 0);
        CHECK(n == len && (len == 0 || memcmp(dec, all, len) == 0));
        crs_free(enc);
        crs_free(dec);
    }
    enc = crs_base64_encode(NULL, 0);
    CHECK_EQ_STR(enc, "");
    crs_free(enc);
    CHECK(crs_base64_encode(NULL, 1) == NULL);

    /* Whitespace is ignored and padding may be left out. */
    CHECK_EQ_INT(crs_base64_decode(" Zm9v\r\nYmFy\t", &dec, &n), 0);
    CHECK(n == 6 && memcmp(dec, "foobar", 6) == 0);
    crs_free(dec);
    CHECK_EQ_INT(crs_base64_decode("Zm9vYg", &dec, &n), 0);
    CHECK(n == 4 && memcmp(dec, "foob", 4) == 0);
    crs_free(dec);
    CHECK_EQ_INT(crs_base64_decode("Zg = =", &dec, &n), 0);
    CHECK(n == 1 && dec[0] == 'f');
    crs_free(dec);
    CHECK_EQ_INT(crs_base64_decode("+/+/", &dec, &n), 0);
    CHECK(n == 3 && dec[0] == 0xfb && dec[1] == 0xff && dec[2] == 0xbf);
    crs_free(dec);

    check_b64_bad("Zm9v!");
    check_b64_bad("Zm9v-_"); /* the URL alphabet is not accepted */
    check_b64_bad("Z");      /* a lone sextet cannot hold a byte */
    check_b64_bad("Zm9vY");
    check_b64_bad("Zg="); /* incomplete padding */
    check_b64_bad("Zg===");
    check_b64_bad("Zm9v=");
    check_b64_bad("=Zg=");
    check_b64_bad("Zg==Zg=="); /* data after padding */
    check_b64_bad("Zh==");     /* non-zero pad bits */
    check_b64_bad("Zm9=");
    check_b64_bad("Zm\xc3\xa9");
    CHECK_EQ_INT(crs_base64_decode(NULL, &dec, &n), CRS_EINVAL);
    CHECK_EQ_INT(crs_base64_decode("Zg==", NULL, &n), CRS_EINVAL);

    crs_alloc_fail_after(0);
    enc = crs_base64_encode((const uint8_t *)"abc", 3);
    CHECK(enc == NULL);
    CHECK_EQ_INT(crs_base64_decode("Zg==", &dec, &n), CRS_ENOMEM);
    crs_alloc_fail_after(-1);
    CHECK(dec == NULL);
}

/* ------------------------------------------------------------------------------------------ */
/* RFC 3339                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void check_fmt(int64_t ms, const char *want)
{
    char buf[32];
    int64_t back = 12345;

    crs_time_rfc3339(ms, buf, sizeof buf);
    CHECK_EQ_STR(buf, want);
    CHECK_EQ_INT(crs_time_parse_rfc3339(buf, &back), 0);
    CHECK_EQ_INT(back, ms);
}

static void check_parse(const char *s, int64_t want)
{
    int64_t got = 12345;

    CHECK_EQ_INT(crs_time_parse_rfc3339(s, &got), 0);
    CHECK_EQ_INT(got, want);
}

static void check_parse_bad(const char *s)
{
    int64_t got = 12345;

    CHECK_EQ_INT(crs_time_parse_rfc3339(s, &got), CRS_EINVAL);
    CHECK_EQ_INT(got, 0);
}

/* OLE automation dates (VT_DATE) as certsrv's COM interfaces hand them out. */
static void test_ole_date(void)
{
    int64_t ms = 0;

    CHECK_EQ_INT(crs_time_from_ole_date(25569.0, &ms), 0);
    CHECK_EQ_INT(ms, 0);
    /* 2026-12-08 01:30:00 UTC is day 46364 and 0.0625 of the next. */
    CHECK_EQ_INT(crs_time_from_ole_date(46364.0625, &ms), 0);
    CHECK_EQ_INT(ms, 1796693400000LL);
    /* Before 1899-12-30 the fraction still counts forward from midnight. */
    CHECK_EQ_INT(crs_time_from_ole_date(-1.25, &ms), 0);
    CHECK_EQ_INT(ms, (int64_t)(-25570) * 86400000 + 6 * 3600000);
    CHECK_EQ_INT(crs_time_from_ole_date(-700000.0, &ms), CRS_ERANGE);
    CHECK_EQ_INT(crs_time_from_ole_date(3.0e6, &ms), CRS_ERANGE);
    CHECK_EQ_INT(crs_time_from_ole_date(0.0 / 0.0, &ms), CRS_ERANGE);
    CHECK(crs_time_to_ole_date(0) == 25569.0);
    CHECK(crs_time_to_ole_date((int64_t)(-25570) * 86400000 + 6 * 3600000) == -1.25);
    /* Millisecond times survive the round trip, also before 1970 and before 1899. */
    static const int64_t samples[] = {1796700600123LL, 1LL, -1LL, -2209161600000LL - 1,
                                      -5000000000000LL, 253402300799999LL};
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        CHECK_EQ_INT(crs_time_from_ole_date(crs_time_to_ole_date(samples[i]), &ms), 0);
        CHECK_EQ_INT(ms, samples[i]);
    }
}

static void test_time(void)
{
    char buf[32], small[8];
    int64_t ms;

    check_fmt(0, "1970-01-01T00:00:00.000Z");
    check_fmt(-1, "1969-12-31T23:59:59.999Z");
    check_fmt(1795284247123LL, "2026-11-21T18:04:07.123Z");
    check_fmt(951825600000LL, "2000-02-29T12:00:00.000Z");
    check_fmt(-2208988800000LL, "1900-01-01T00:00:00.000Z");
    check_fmt(253402300799999LL, "9999-12-31T23:59:59.999Z");
    check_fmt(-62167219200000LL, "0000-01-01T00:00:00.000Z");
    check_fmt(4107542399000LL, "2100-02-28T23:59:59.000Z");
    check_fmt(4107542400000LL, "2100-03-01T00:00:00.000Z");

    /* Outside four-digit years: clamped. */
    crs_time_rfc3339(INT64_MAX, buf, sizeof buf);
    CHECK_EQ_STR(buf, "9999-12-31T23:59:59.999Z");
    crs_time_rfc3339(INT64_MIN, buf, sizeof buf);
    CHECK_EQ_STR(buf, "0000-01-01T00:00:00.000Z");
    crs_time_rfc3339(0, small, sizeof small);
    CHECK_EQ_STR(small, "1970-01");
    crs_time_rfc3339(0, NULL, 0);

    /* Round trips over a spread of values. */
    for (ms = -62167219200000LL; ms < 253402300799999LL; ms += 987654321987LL) {
        int64_t back;

        crs_time_rfc3339(ms, buf, sizeof buf);
        CHECK(crs_time_parse_rfc3339(buf, &back) == 0 && back == ms);
    }

    check_parse("2026-11-21T18:04:07.123Z", 1795284247123LL);
    check_parse("2026-11-21t18:04:07.123z", 1795284247123LL);
    check_parse("2026-11-21 18:04:07.123Z", 1795284247123LL);
    check_parse("2026-11-21T19:04:07.123+01:00", 1795284247123LL);
    check_parse("2026-11-21T13:34:07.123-04:30", 1795284247123LL);
    check_parse("2026-11-22T03:04:07.123+09:00", 1795284247123LL);
    check_parse("2026-11-21T18:04:07.123-00:00", 1795284247123LL);
    check_parse("2026-11-21T18:04:07.123987654Z", 1795284247123LL);
    check_parse("2026-11-21T18:04:07.1Z", 1795284247100LL);
    check_parse("2026-11-21T18:04:07Z", 1795284247000LL);
    check_parse("2024-02-29T00:00:00Z", 1709164800000LL);
    check_parse("2016-12-31T23:59:60Z", 1483228800000LL); /* leap second: the next second */
    check_parse("1969-12-31T23:59:59.999Z", -1);

    check_parse_bad("");
    check_parse_bad(NULL);
    check_parse_bad("2026-11-21");
    check_parse_bad("2026-11-21T18:04:07");
    check_parse_bad("2026-11-21T18:04:07.Z");
    check_parse_bad("2026-11-21T18:04:07+0100");
    check_parse_bad("2026-11-21T18:04:07+01");
    check_parse_bad("2026-11-21T18:04:07+24:00");
    check_parse_bad("2026-11-21T18:04:07Zjunk");
    check_parse_bad("2026-11-21T18:04:07.123Z ");
    check_parse_bad("2026-13-01T00:00:00Z");
    check_parse_bad("2026-00-01T00:00:00Z");
    check_parse_bad("2026-11-00T00:00:00Z");
    check_parse_bad("2026-11-31T00:00:00Z");
    check_parse_bad("2023-02-29T00:00:00Z");
    check_parse_bad("2100-02-29T00:00:00Z");
    check_parse_bad("2026-11-21T24:00:00Z");
    check_parse_bad("2026-11-21T18:60:00Z");
    check_parse_bad("2026-11-21T18:04:61Z");
    check_parse_bad("26-11-21T18:04:07Z");
    check_parse_bad("2026/11/21T18:04:07Z");
    check_parse_bad("2026-11-21X18:04:07Z");
    check_parse_bad("+2026-11-21T18:04:07Z");
    check_parse_bad("2026-1a-21T18:04:07Z");
    CHECK_EQ_INT(crs_time_parse_rfc3339("2026-11-21T18:04:07Z", NULL), CRS_EINVAL);
}

int main(void)
{
    /* jansson's allocations go through crs_malloc too, so the fault test reaches them. */
    json_set_alloc_funcs(crs_malloc, crs_free);
    test_full_document();
    test_exact_text();
    test_indented_same_as_jansson();
    test_absent_fields();
    test_determinism();
    test_duplicates();
    test_args();
    test_alloc_failures();
    test_base64();
    test_time();
    test_ole_date();
    return CHECK_DONE();
}
