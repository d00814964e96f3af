/*
 * Unit tests of the portable halves of the webhook and email sinks: webhook bodies in every
 * format, Standard Webhooks signatures (against the specification's published test vector),
 * header and Retry-After rules, and mail formatting (addresses, RFC 2047, dates, Message-ID,
 * the requester's address in DER, default templates). Allocation failures are injected into
 * every builder to prove each failure path frees what it built.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "check.h"
#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "render/json.h"
#include "sinks/email/message.h"
#include "sinks/file/settings.h"
#include "sinks/webhook/settings.h"
#include "sinks/email/settings.h"
#include "sinks/sink.h"
#include "render/template.h"
#include "sinks/webhook/formats.h"

#define HOSTILE_CN "<!channel> *bold* [click](http://evil.example)\r\nBcc: x@evil.example"

/* ---- A test event ---- */

struct fixture {
    Certrelay__V1__Event ev;
    Certrelay__V1__CaInfo ca;
    Certrelay__V1__RequestInfo req;
    Certrelay__V1__CertificateInfo cert;
    Certrelay__V1__Attribute attr;
    Certrelay__V1__Attribute *attrs[1];
    Certrelay__V1__Extension ext;
    Certrelay__V1__Extension *exts[1];
    Certrelay__V1__CrlInfo crl;
    Certrelay__V1__CrlInfo *crls[1];
};

/* GeneralNames { rfc822Name "san@example.com", dNSName "host.example.com" } */
static const uint8_t san_der[] = {0x30, 0x23, 0x81, 0x0f, 's', 'a', 'n', '@', 'e', 'x',
                                  'a',  'm',  'p',  'l',  'e', '.', 'c', 'o', 'm', 0x82,
                                  0x10, 'h',  'o',  's',  't', '.', 'e', 'x', 'a', 'm',
                                  'p',  'l',  'e',  '.',  'c', 'o', 'm'};

static const uint8_t fake_der[] = {0x30, 0x03, 0x02, 0x01, 0x01};

static void fixture_init(struct fixture *f, uint32_t kind, const char *cn)
{
    memset(f, 0, sizeof(*f));
    f->ev = (Certrelay__V1__Event)CERTRELAY__V1__EVENT__INIT;
    f->ca = (Certrelay__V1__CaInfo)CERTRELAY__V1__CA_INFO__INIT;
    f->req = (Certrelay__V1__RequestInfo)CERTRELAY__V1__REQUEST_INFO__INIT;
    f->cert = (Certrelay__V1__CertificateInfo)CERTRELAY__V1__CERTIFICATE_INFO__INIT;
    f->attr = (Certrelay__V1__Attribute)CERTRELAY__V1__ATTRIBUTE__INIT;
    f->ext = (Certrelay__V1__Extension)CERTRELAY__V1__EXTENSION__INIT;
    f->crl = (Certrelay__V1__CrlInfo)CERTRELAY__V1__CRL_INFO__INIT;

    f->ev.event_id = "01890a5d-ac96-774b-bcce-b302099a8057";
    f->ev.has_kind = 1;
    f->ev.kind = (Certrelay__V1__EventKind)kind;
    f->ev.has_capture_time_ms = 1;
    f->ev.capture_time_ms = 1751364000123LL;
    f->ev.ca = &f->ca;
    f->ca.config = "ca01.corp.example.com\\Corp Issuing CA";
    f->ca.sanitized_name = "Corp Issuing CA";
    f->ca.host = "ca01.corp.example.com";
    if (kind == CRS_EVENT_CRL_ISSUED) {
        f->crl.has_raw_crl = 1;
        f->crl.raw_crl.data = (uint8_t *)fake_der;
        f->crl.raw_crl.len = sizeof(fake_der);
        f->crls[0] = &f->crl;
        f->ev.crls = f->crls;
        f->ev.n_crls = 1;
        return;
    }
    if (kind == CRS_EVENT_STARTUP || kind == CRS_EVENT_SHUTDOWN)
        return;
    f->ev.request = &f->req;
    f->req.has_request_id = 1;
    f->req.request_id = 4242;
    f->req.requester_name = "CORP\\alice";
    f->req.certificate_template = "WebServer";
    f->req.has_disposition = 1;
    f->req.disposition = 20;
    f->req.has_revoked_reason = 1;
    f->req.revoked_reason = 1;
    f->attr.name = "Email";
    f->attr.value = "attr@example.com";
    f->attrs[0] = &f->attr;
    f->req.attributes = f->attrs;
    f->req.n_attributes = 1;
    f->ev.certificate = &f->cert;
    f->cert.serial_number = "1a2b3c";
    f->cert.common_name = (char *)cn;
    f->cert.distinguished_name = "CN=www.example.com, O=Example";
    f->cert.has_raw_certificate = 1;
    f->cert.raw_certificate.data = (uint8_t *)fake_der;
    f->cert.raw_certificate.len = sizeof(fake_der);
    f->cert.has_not_before_ms = 1;
    f->cert.not_before_ms = 1751364000000LL;
    f->cert.has_not_after_ms = 1;
    f->cert.not_after_ms = 1782900000000LL;
    f->ext.oid = "2.5.29.17";
    f->ext.has_value = 1;
    f->ext.value.data = (uint8_t *)san_der;
    f->ext.value.len = sizeof(san_der);
    f->exts[0] = &f->ext;
    f->cert.extensions = f->exts;
    f->cert.n_extensions = 1;
}

static json_t *parse_body(enum crs_webhook_format fmt, const Certrelay__V1__Event *ev)
{
    char *body = NULL;
    size_t len = 0;
    json_t *doc;
    json_error_t e;

    CHECK_EQ_INT(crs_webhook_body(fmt, ev, &body, &len), 0);
    if (!body)
        return NULL;
    CHECK_EQ_INT(strlen(body), len);
    doc = json_loadb(body, len, 0, &e);
    CHECK(doc != NULL);
    crs_free(body);
    return doc;
}

/* True when any string value anywhere in doc under a key named `key` contains needle. */
static int json_any_contains(json_t *doc, const char *key, const char *needle)
{
    const char *k;
    json_t *v;
    size_t i;

    if (json_is_object(doc)) {
        json_object_foreach(doc, k, v)
        {
            if (json_is_string(v) && (!key || strcmp(k, key) == 0) &&
                strstr(json_string_value(v), needle))
                return 1;
            if (json_any_contains(v, key, needle))
                return 1;
        }
    } else if (json_is_array(doc)) {
        json_array_foreach(doc, i, v)
        {
            if (json_any_contains(v, key, needle))
                return 1;
        }
    }
    return 0;
}

/* Checks that every object holding text equal to (or containing) needle is of type typ. */
static int json_text_only_in(json_t *doc, const char *needle, const char *typ)
{
    const char *k;
    json_t *v;
    size_t i;

    if (json_is_object(doc)) {
        json_t *t = json_object_get(doc, "text");
        if (json_is_string(t) && strstr(json_string_value(t), needle)) {
            json_t *ty = json_object_get(doc, "type");
            if (!json_is_string(ty) || strcmp(json_string_value(ty), typ) != 0)
                return 0;
        }
        json_object_foreach(doc, k, v)
        {
            if (!json_text_only_in(v, needle, typ))
                return 0;
        }
    } else if (json_is_array(doc)) {
        json_array_foreach(doc, i, v)
        {
            if (!json_text_only_in(v, needle, typ))
                return 0;
        }
    }
    return 1;
}

/* ---- Formats ---- */

static void test_format_names(void)
{
    enum crs_webhook_format f;

    CHECK_EQ_INT(crs_webhook_format_parse("json", &f), 0);
    CHECK_EQ_INT(f, CRS_WEBHOOK_JSON);
    CHECK_EQ_INT(crs_webhook_format_parse("cloudevents", &f), 0);
    CHECK_EQ_INT(f, CRS_WEBHOOK_CLOUDEVENTS);
    CHECK_EQ_INT(crs_webhook_format_parse("teams", &f), 0);
    CHECK_EQ_INT(crs_webhook_format_parse("slack", &f), 0);
    CHECK_EQ_INT(f, CRS_WEBHOOK_SLACK);
    CHECK_EQ_INT(crs_webhook_format_parse("xml", &f), CRS_EINVAL);
    CHECK_EQ_STR(crs_webhook_format_name(CRS_WEBHOOK_TEAMS), "teams");
    CHECK_EQ_STR(crs_webhook_content_type(CRS_WEBHOOK_CLOUDEVENTS),
                 "application/cloudevents+json; charset=utf-8");
    CHECK_EQ_STR(crs_webhook_content_type(CRS_WEBHOOK_JSON), "application/json");
}

/* The fast writer's output equals jansson's for the same text, in every format. */
static void check_same_as_jansson(enum crs_webhook_format fmt, const Certrelay__V1__Event *ev)
{
    char *body = NULL, *ref = NULL;
    size_t len = 0, n;
    json_error_t e;
    json_t *doc;

    CHECK_EQ_INT(crs_webhook_body(fmt, ev, &body, &len), 0);
    doc = body ? json_loadb(body, len, 0, &e) : NULL;
    CHECK(doc != NULL);
    if (doc) {
        n = json_dumpb(doc, NULL, 0, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ref = crs_malloc(n + 1);
        json_dumpb(doc, ref, n, JSON_COMPACT | JSON_PRESERVE_ORDER);
        ref[n] = '\0';
        CHECK_EQ_INT(n, len);
        CHECK(memcmp(ref, body, n) == 0);
        crs_free(ref);
        json_decref(doc);
    }
    crs_free(body);
}

static void test_body_json(void)
{
    struct fixture f;
    char *ref = NULL, *body = NULL;
    size_t reflen = 0, len = 0;
    json_t *doc;
    int fmt;

    /* Control characters of every kind, quotes, backslashes and non-ASCII in values. */
    fixture_init(&f, CRS_EVENT_ISSUED, "a\"b\\c\x01\x1f\b\f\n\r\t\x7f é 漢 \xf0\x9f\x94\x91 /");
    f.req.requester_name = "CORP\\al\x02ice";
    CHECK_EQ_INT(crs_event_to_json_text(&f.ev, 0, &ref, &reflen), 0);
    CHECK_EQ_INT(crs_webhook_body(CRS_WEBHOOK_JSON, &f.ev, &body, &len), 0);
    CHECK_EQ_INT(len, reflen);
    CHECK(ref && body && strcmp(ref, body) == 0);
    crs_free(ref);
    crs_free(body);
    for (fmt = CRS_WEBHOOK_JSON; fmt <= CRS_WEBHOOK_SLACK; fmt++)
        check_same_as_jansson((enum crs_webhook_format)fmt, &f.ev);

    fixture_init(&f, CRS_EVENT_ISSUED, "www.example.com");
    doc = parse_body(CRS_WEBHOOK_JSON, &f.ev);
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "schema")), CRS_JSON_SCHEMA);
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "event")), "issued");
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "event_id")), f.ev.event_id);
    json_decref(doc);
}

/* The word-at-a-time escape scan: an escape at every position of strings of every length. */
static void test_json_escapes(void)
{
    static const char specials[] = {'"', '\\', '\x01', '\n', '\x1f', '\x7f', '/'};
    char text[40];
    size_t len, pos, k;
    int bad = 0;

    for (len = 1; len < sizeof(text); len++) {
        for (pos = 0; pos < len; pos++) {
            for (k = 0; k < sizeof(specials); k++) {
                json_t *arr = json_array();
                char *mine = NULL, ref[128];
                size_t n = 0, rn;

                memset(text, 'a' + (int)(len % 26), len);
                text[pos] = specials[k];
                json_array_append_new(arr, json_stringn(text, len));
                if (crs_json_dump_compact(arr, &mine, &n) != 0) {
                    bad++;
                } else {
                    rn = json_dumpb(arr, ref, sizeof(ref), JSON_COMPACT);
                    if (rn != n || memcmp(ref, mine, n) != 0)
                        bad++;
                }
                crs_free(mine);
                json_decref(arr);
            }
        }
    }
    CHECK_EQ_INT(bad, 0);
}

static void test_body_cloudevents(void)
{
    static const struct {
        uint32_t kind;
        const char *type;
    } kinds[] = {
        {CRS_EVENT_ISSUED, "org.certrelay.certificate.issued"},
        {CRS_EVENT_REVOKED, "org.certrelay.certificate.revoked"},
        {CRS_EVENT_RETRIEVE_PENDING, "org.certrelay.certificate.retrieve_pending"},
        {CRS_EVENT_CRL_ISSUED, "org.certrelay.crl.issued"},
        {CRS_EVENT_STARTUP, "org.certrelay.ca.startup"},
        {CRS_EVENT_SHUTDOWN, "org.certrelay.ca.shutdown"},
    };
    struct fixture f;
    json_t *doc, *data;
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        fixture_init(&f, kinds[i].kind, "www.example.com");
        doc = parse_body(CRS_WEBHOOK_CLOUDEVENTS, &f.ev);
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "specversion")), "1.0");
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "id")), f.ev.event_id);
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "type")), kinds[i].type);
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "source")),
                     "/certrelay/ca01.corp.example.com/Corp%20Issuing%20CA");
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "time")), "2025-07-01T10:00:00.123Z");
        CHECK_EQ_STR(json_string_value(json_object_get(doc, "datacontenttype")),
                     "application/json");
        data = json_object_get(doc, "data");
        CHECK(json_is_object(data));
        CHECK_EQ_STR(json_string_value(json_object_get(data, "event_id")), f.ev.event_id);
        if (kinds[i].kind == CRS_EVENT_ISSUED)
            CHECK_EQ_STR(json_string_value(json_object_get(doc, "subject")), "request/4242");
        json_decref(doc);
    }
}

static void test_body_teams(void)
{
    struct fixture f;
    json_t *doc, *att, *card, *body;

    fixture_init(&f, CRS_EVENT_REVOKED, HOSTILE_CN);
    doc = parse_body(CRS_WEBHOOK_TEAMS, &f.ev);
    CHECK_EQ_STR(json_string_value(json_object_get(doc, "type")), "message");
    att = json_array_get(json_object_get(doc, "attachments"), 0);
    CHECK_EQ_STR(json_string_value(json_object_get(att, "contentType")),
                 "application/vnd.microsoft.card.adaptive");
    card = json_object_get(att, "content");
    CHECK_EQ_STR(json_string_value(json_object_get(card, "type")), "AdaptiveCard");
    CHECK_EQ_STR(json_string_value(json_object_get(card, "$schema")),
                 "http://adaptivecards.io/schemas/adaptive-card.json");
    CHECK_EQ_STR(json_string_value(json_object_get(card, "version")), "1.4");
    body = json_object_get(card, "body");
    CHECK(json_array_size(body) > 3);
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(body, 0), "text")),
                 "Certificate revoked");
    /* The hostile name appears, but only in TextRuns (no markdown), and on one line. */
    CHECK(json_any_contains(doc, "text", "[click](http://evil.example)"));
    CHECK(json_text_only_in(doc, "[click]", "TextRun"));
    CHECK(!json_any_contains(doc, NULL, "\n"));
    CHECK(json_any_contains(doc, "text", "key_compromise"));
    json_decref(doc);
}

static void test_body_slack(void)
{
    struct fixture f;
    json_t *doc, *blocks;

    fixture_init(&f, CRS_EVENT_ISSUED, HOSTILE_CN);
    doc = parse_body(CRS_WEBHOOK_SLACK, &f.ev);
    CHECK(json_is_false(json_object_get(doc, "mrkdwn")));
    /* The fallback text is escaped: no raw <!channel>. */
    CHECK(strstr(json_string_value(json_object_get(doc, "text")), "&lt;!channel&gt;") != NULL);
    CHECK(strstr(json_string_value(json_object_get(doc, "text")), "<!channel>") == NULL);
    blocks = json_object_get(doc, "blocks");
    CHECK_EQ_STR(json_string_value(json_object_get(json_array_get(blocks, 0), "type")), "header");
    CHECK(json_array_size(blocks) >= 2);
    /* Untrusted values only ever sit in plain_text objects. */
    CHECK(json_text_only_in(blocks, "[click]", "plain_text"));
    CHECK(json_text_only_in(blocks, "www.example.com", "plain_text"));
    CHECK(!json_any_contains(doc, NULL, "\r"));
    json_decref(doc);
}

static void test_body_alloc_failures(void)
{
    enum crs_webhook_format fmts[] = {CRS_WEBHOOK_JSON, CRS_WEBHOOK_CLOUDEVENTS, CRS_WEBHOOK_TEAMS,
                                      CRS_WEBHOOK_SLACK};
    struct fixture f;
    size_t i;
    long n;

    fixture_init(&f, CRS_EVENT_REVOKED, "www.example.com");
    for (i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
        for (n = 0; n < 1000; n++) {
            char *body = NULL;
            size_t len = 0;
            int rc;

            crs_alloc_fail_after(n);
            rc = crs_webhook_body(fmts[i], &f.ev, &body, &len);
            crs_alloc_fail_after(-1);
            if (rc == 0) {
                crs_free(body);
                break;
            }
            CHECK(body == NULL);
            CHECK(rc == CRS_ENOMEM);
        }
        CHECK(n < 1000);
    }
}

/* ---- Signatures ---- */

static void test_signature(void)
{
    /* The Standard Webhooks specification's test vector. */
    static const char body[] = "{\"test\": 2432232314}";
    uint8_t *key = NULL;
    size_t keylen = 0;
    char sig[CRS_WEBHOOK_SIGNATURE_LEN];

    CHECK_EQ_INT(
        crs_webhook_secret_parse("  whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw\n", 42, &key, &keylen),
        0);
    CHECK_EQ_INT(keylen, 24);
    CHECK_EQ_INT(crs_webhook_sign(key, keylen, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body,
                                  strlen(body), sig),
                 0);
    CHECK_EQ_STR(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    crs_free(key);

    /* Without the prefix, and with inner whitespace (base64 ignores it). */
    CHECK_EQ_INT(crs_webhook_secret_parse("MfKQ9r8GKYqr TwjUPD8ILPZIo2LaLaSw", 33, &key, &keylen),
                 0);
    CHECK_EQ_INT(keylen, 24);
    crs_free(key);
    CHECK_EQ_INT(crs_webhook_secret_parse("whsec_", 6, &key, &keylen), CRS_EINVAL);
    CHECK(key == NULL);
    CHECK_EQ_INT(crs_webhook_secret_parse("   \n", 4, &key, &keylen), CRS_EINVAL);
    CHECK_EQ_INT(crs_webhook_secret_parse("not base64!", 11, &key, &keylen), CRS_EINVAL);
    CHECK_EQ_INT(crs_webhook_sign(NULL, 0, "id", 1, "", 0, sig), CRS_EINVAL);
    CHECK_EQ_STR(sig, "");
}

/* ---- HTTP rules ---- */

static void test_header_lines(void)
{
    char err[200];

    CHECK_EQ_INT(crs_http_header_line_check("X-Tenant: pki", err, sizeof(err)), 0);
    CHECK_EQ_INT(crs_http_header_line_check("Authorization: Basic abc=", err, sizeof(err)), 0);
    CHECK_EQ_INT(crs_http_header_line_check("X-Tenant pki", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check(": pki", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("X Tenant: pki", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("X-Tenant:", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("X-A: b\r\nX-B: c", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("content-type: text/plain", err, sizeof(err)),
                 CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("Host: evil", err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_http_header_line_check("Webhook-Signature: v1,x", err, sizeof(err)),
                 CRS_EINVAL);
    CHECK(strstr(err, "reserved") != NULL);
}

static void test_status_outcome(void)
{
    CHECK_EQ_INT(crs_http_status_outcome(200), 0);
    CHECK_EQ_INT(crs_http_status_outcome(204), 0);
    CHECK_EQ_INT(crs_http_status_outcome(408), 1);
    CHECK_EQ_INT(crs_http_status_outcome(429), 1);
    CHECK_EQ_INT(crs_http_status_outcome(500), 1);
    CHECK_EQ_INT(crs_http_status_outcome(503), 1);
    CHECK_EQ_INT(crs_http_status_outcome(400), 2);
    CHECK_EQ_INT(crs_http_status_outcome(401), 2);
    CHECK_EQ_INT(crs_http_status_outcome(404), 2);
    CHECK_EQ_INT(crs_http_status_outcome(302), 1);
}

static void test_percent_encode(void)
{
    char *s = crs_percent_encode("a b/c\\d~é");

    CHECK_EQ_STR(s, "a%20b%2Fc%5Cd~%C3%A9");
    crs_free(s);
}

/* ---- Mail ---- */

static void test_addresses(void)
{
    char *d = NULL, *a = NULL, *s;
    char err[200];

    CHECK(crs_mail_addr_valid("user@example.com"));
    CHECK(crs_mail_addr_valid("first.last+tag@sub.example-1.org"));
    CHECK(!crs_mail_addr_valid("user@@example.com"));
    CHECK(!crs_mail_addr_valid("user@example.com\r\nRCPT TO:<x@evil>"));
    CHECK(!crs_mail_addr_valid("a@b.c, x@evil.example"));
    CHECK(!crs_mail_addr_valid("<x@evil.example>"));
    CHECK(!crs_mail_addr_valid(".user@example.com"));
    CHECK(!crs_mail_addr_valid("us..er@example.com"));
    CHECK(!crs_mail_addr_valid("user@-example.com"));
    CHECK(!crs_mail_addr_valid("user@example..com"));
    CHECK(!crs_mail_addr_valid("us er@example.com"));
    CHECK(!crs_mail_addr_valid("\"quoted\"@example.com"));
    CHECK(!crs_mail_addr_valid("user@[127.0.0.1]"));
    CHECK(!crs_mail_addr_valid("usér@example.com"));
    CHECK(!crs_mail_addr_valid(""));

    CHECK_EQ_INT(crs_mail_mailbox_parse(" pki@example.com ", &d, &a, err, sizeof(err)), 0);
    CHECK(d == NULL);
    CHECK_EQ_STR(a, "pki@example.com");
    crs_free(a);
    CHECK_EQ_INT(
        crs_mail_mailbox_parse("CertRelay Bot <bot@example.com>", &d, &a, err, sizeof(err)), 0);
    CHECK_EQ_STR(d, "CertRelay Bot");
    CHECK_EQ_STR(a, "bot@example.com");
    s = crs_mail_mailbox_format(d, a);
    CHECK_EQ_STR(s, "\"CertRelay Bot\" <bot@example.com>");
    crs_free(s);
    crs_free(d);
    crs_free(a);
    CHECK_EQ_INT(crs_mail_mailbox_parse("\"Zoë\" <z@example.com>", &d, &a, err, sizeof(err)), 0);
    s = crs_mail_mailbox_format(d, a);
    CHECK_EQ_STR(s, "=?UTF-8?B?Wm/Dqw==?= <z@example.com>");
    crs_free(s);
    crs_free(d);
    crs_free(a);
    CHECK_EQ_INT(crs_mail_mailbox_parse("Bad <a@b.c> <x@y.z>", &d, &a, err, sizeof(err)),
                 CRS_EINVAL);
    CHECK_EQ_INT(crs_mail_mailbox_parse("a\"b <x@y.z>", &d, &a, err, sizeof(err)), CRS_EINVAL);
    CHECK_EQ_INT(crs_mail_mailbox_parse("not an address", &d, &a, err, sizeof(err)), CRS_EINVAL);
    CHECK(d == NULL && a == NULL);
}

/* Decodes a header produced by crs_mail_header_text back to UTF-8 (encoded words only). */
static char *decode_words(const char *h)
{
    char *out = crs_calloc(1, strlen(h) + 1);
    const char *p = h;

    while (out && *p) {
        const char *start = strstr(p, "=?UTF-8?B?"), *end;
        char *b64;
        uint8_t *raw;
        size_t rawlen;

        if (!start)
            break;
        start += 10;
        end = strstr(start, "?=");
        if (!end)
            break;
        b64 = crs_strndup(start, (size_t)(end - start));
        if (b64 && crs_base64_decode(b64, &raw, &rawlen) == 0) {
            strncat(out, (const char *)raw, rawlen);
            crs_free(raw);
        }
        crs_free(b64);
        p = end + 2;
    }
    return out;
}

static void test_header_text(void)
{
    char *h = NULL, *dec;
    const char *p;
    char longtext[600];

    CHECK_EQ_INT(crs_mail_header_text("Certificate issued: www.example.com", 250, &h), 0);
    CHECK_EQ_STR(h, "Certificate issued: www.example.com");
    crs_free(h);
    CHECK_EQ_INT(crs_mail_header_text("a\r\nBcc: x@evil\r\n", 250, &h), 0);
    CHECK_EQ_STR(h, "a  Bcc: x@evil  ");
    crs_free(h);
    /* Non-ASCII: encoded words of at most 75 characters that decode to the (cleaned) text. */
    CHECK_EQ_INT(crs_mail_header_text("Zertifikat für Jürgen Müller – ÄÖÜ äöü ß € 漢字テスト "
                                      "Zertifikat für Jürgen Müller\nBcc: x@evil",
                                      250, &h),
                 0);
    CHECK(strchr(h, '\n') == NULL && strchr(h, '\r') == NULL);
    for (p = h; *p;) {
        size_t n = strcspn(p, " ");
        CHECK(n <= 75);
        CHECK(strncmp(p, "=?UTF-8?B?", 10) == 0);
        p += n;
        while (*p == ' ')
            p++;
    }
    dec = decode_words(h);
    CHECK_EQ_STR(dec, "Zertifikat für Jürgen Müller – ÄÖÜ äöü ß € 漢字テスト "
                      "Zertifikat für Jürgen Müller Bcc: x@evil");
    crs_free(dec);
    crs_free(h);
    /* A literal "=?" is encoded too, so it cannot be read as an encoded word. */
    CHECK_EQ_INT(crs_mail_header_text("=?UTF-8?B?QmNjOiB4QGV2aWw=?=", 250, &h), 0);
    CHECK(strncmp(h, "=?UTF-8?B?", 10) == 0);
    dec = decode_words(h);
    CHECK_EQ_STR(dec, "=?UTF-8?B?QmNjOiB4QGV2aWw=?=");
    crs_free(dec);
    crs_free(h);
    /* Truncation never splits a character. */
    memset(longtext, 0, sizeof(longtext));
    for (p = NULL; strlen(longtext) + 2 < sizeof(longtext);)
        strcat(longtext, "é");
    CHECK_EQ_INT(crs_mail_header_text(longtext, 101, &h), 0);
    dec = decode_words(h);
    CHECK_EQ_INT(strlen(dec), 100);
    crs_free(dec);
    crs_free(h);
}

static void test_date_and_ids(void)
{
    char buf[40];
    char *id, *crlf = NULL;
    size_t len = 0;

    crs_mail_date(0, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "Thu, 01 Jan 1970 00:00:00 +0000");
    crs_mail_date(784111777000LL, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "Sun, 06 Nov 1994 08:49:37 +0000");
    crs_mail_date(1751364000123LL, buf, sizeof(buf));
    CHECK_EQ_STR(buf, "Tue, 01 Jul 2025 10:00:00 +0000");

    id = crs_mail_message_id("01890a5d-ac96-774b-bcce-b302099a8057", "pki team", "ca01.corp");
    CHECK_EQ_STR(id, "<01890a5d-ac96-774b-bcce-b302099a8057.pkiteam@ca01.corp>");
    crs_free(id);
    id = crs_mail_message_id("e", "..", "..\r\n>");
    CHECK_EQ_STR(id, "<e@localhost>");
    crs_free(id);

    CHECK_EQ_INT(crs_mail_crlf("a\nb\r\nc\rd\n", &crlf, &len), 0);
    CHECK_EQ_STR(crlf, "a\r\nb\r\nc\r\nd\r\n");
    CHECK_EQ_INT(len, 12);
    crs_free(crlf);
}

/* Appends a DER TLV to buf. */
static size_t tlv(uint8_t *buf, size_t off, uint8_t tag, const uint8_t *content, size_t len)
{
    buf[off++] = tag;
    if (len < 128) {
        buf[off++] = (uint8_t)len;
    } else {
        buf[off++] = 0x82;
        buf[off++] = (uint8_t)(len >> 8);
        buf[off++] = (uint8_t)len;
    }
    if (len > 0)
        memmove(buf + off, content, len);
    return off + len;
}

static void test_der_san(void)
{
    static const uint8_t oid[] = {0x55, 0x1d, 0x11};
    static const uint8_t version[] = {0x02, 0x01, 0x02};
    uint8_t a[512], b[512], c[512];
    size_t na, nb, nc, cut, n = 0;
    char **v = NULL;

    /* Extension ::= SEQUENCE { OID, OCTET STRING { GeneralNames } } */
    na = tlv(a, 0, 0x06, oid, sizeof(oid));
    na = tlv(a, na, 0x04, san_der, sizeof(san_der));
    nb = tlv(b, 0, 0x30, a, na); /* Extension */
    nc = tlv(c, 0, 0x30, b, nb); /* Extensions */
    na = tlv(a, 0, 0xa3, c, nc); /* [3] */
    /* tbsCertificate: [0] version, serial, sigalg, issuer, validity, subject, spki, [3] */
    nb = tlv(b, 0, 0xa0, version, sizeof(version));
    nb = tlv(b, nb, 0x02, (const uint8_t *)"\x01", 1);
    nb = tlv(b, nb, 0x30, NULL, 0);
    nb = tlv(b, nb, 0x30, NULL, 0);
    nb = tlv(b, nb, 0x30, NULL, 0);
    nb = tlv(b, nb, 0x30, NULL, 0);
    nb = tlv(b, nb, 0x30, NULL, 0);
    memcpy(b + nb, a, na);
    nb += na;
    nc = tlv(c, 0, 0x30, b, nb); /* tbsCertificate */
    nc = tlv(c, nc, 0x30, NULL, 0);
    nc = tlv(c, nc, 0x03, (const uint8_t *)"\x00", 1);
    na = tlv(a, 0, 0x30, c, nc); /* Certificate */

    CHECK_EQ_INT(crs_der_san_emails(a, na, 1, &v, &n, 8), 0);
    CHECK_EQ_INT(n, 1);
    if (n == 1)
        CHECK_EQ_STR(v[0], "san@example.com");
    crs_strv_free(v);

    /* Every truncation and a few corruptions end the walk quietly (ASan watches the reads). */
    for (cut = 0; cut < na; cut++) {
        uint8_t *copy = crs_malloc(cut ? cut : 1);
        v = NULL;
        n = 0;
        memcpy(copy, a, cut);
        CHECK_EQ_INT(crs_der_san_emails(copy, cut, 1, &v, &n, 8), 0);
        CHECK(n == 0);
        crs_strv_free(v);
        crs_free(copy);
    }
    for (cut = 0; cut < na; cut++) {
        uint8_t saved = a[cut];
        a[cut] = 0xff;
        v = NULL;
        n = 0;
        CHECK_EQ_INT(crs_der_san_emails(a, na, 1, &v, &n, 8), 0);
        crs_strv_free(v);
        a[cut] = saved;
    }
}

static void test_requester(void)
{
    struct fixture f;
    char **v = NULL;
    size_t n = 0;

    fixture_init(&f, CRS_EVENT_ISSUED, "www.example.com");
    f.cert.email = "cert@example.com";
    CHECK_EQ_INT(crs_mail_requester_candidates(&f.ev, &v, &n), 0);
    CHECK_EQ_INT(n, 3);
    if (n == 3) {
        CHECK_EQ_STR(v[0], "cert@example.com");
        CHECK_EQ_STR(v[1], "san@example.com");
        CHECK_EQ_STR(v[2], "attr@example.com");
    }
    crs_strv_free(v);

    fixture_init(&f, CRS_EVENT_STARTUP, NULL);
    CHECK_EQ_INT(crs_mail_requester_candidates(&f.ev, &v, &n), 0);
    CHECK_EQ_INT(n, 0);
    CHECK(v != NULL && v[0] == NULL);
    crs_strv_free(v);
}

static void test_default_templates(void)
{
    static const uint32_t kinds[] = {
        CRS_EVENT_ISSUED,    CRS_EVENT_PENDING,          CRS_EVENT_DENIED,   CRS_EVENT_REVOKED,
        CRS_EVENT_UNREVOKED, CRS_EVENT_RETRIEVE_PENDING, CRS_EVENT_IMPORTED, CRS_EVENT_CRL_ISSUED,
        CRS_EVENT_STARTUP,   CRS_EVENT_SHUTDOWN,
    };
    struct fixture f;
    size_t i;

    for (i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        struct crs_template *s = NULL, *b = NULL;
        char err[200] = "", *subject = NULL, *body = NULL;

        CHECK_EQ_INT(crs_template_compile(crs_mail_default_subject(kinds[i]), &s, err, sizeof(err)),
                     0);
        CHECK_EQ_INT(crs_template_compile(crs_mail_default_body(kinds[i]), &b, err, sizeof(err)),
                     0);
        if (err[0])
            fprintf(stderr, "default template: %s\n", err);
        fixture_init(&f, kinds[i], HOSTILE_CN);
        CHECK_EQ_INT(crs_template_render(s, &f.ev, CRS_ESCAPE_HEADER, &subject), 0);
        CHECK_EQ_INT(crs_template_render(b, &f.ev, CRS_ESCAPE_NONE, &body), 0);
        CHECK(subject && strchr(subject, '\n') == NULL && strchr(subject, '\r') == NULL);
        CHECK(subject && strstr(subject, "Corp Issuing CA") != NULL);
        CHECK(body && strstr(body, "CertRelay") != NULL);
        crs_free(subject);
        crs_free(body);
        crs_template_free(s);
        crs_template_free(b);
    }
}

/* ---- Sink configuration parsing ---- */

static void test_config(void)
{
    static const char good[] = "[broker]\n"
                               "listen = /tmp/x.sock\n"
                               "state_dir = /tmp/x\n"
                               "spool_dir = /tmp/y\n"
                               "[sink.hook]\n"
                               "type = webhook\n"
                               "url = https://hooks.example.com/x?sig=1\n"
                               "format = cloudevents\n"
                               "secret_file = /etc/secret\n"
                               "header = X-One: 1\n"
                               "header = X-Two: 2\n"
                               "events = issued, revoked\n"
                               "templates = WebServer\n"
                               "[sink.mail]\n"
                               "type = email\n"
                               "url = smtps://mail.example.com\n"
                               "from = CertRelay <ca@example.com>\n"
                               "to = a@example.com, Bob <b@example.com>\n"
                               "bcc = audit@example.com\n"
                               "subject = {{kind_title}}: {{common_name}}\n"
                               "attach_certificate = true\n";
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN] = "";
    int rc;

    rc = crs_config_load_string("t.ini", good, &cfg, err, sizeof(err));
    if (rc != 0)
        fprintf(stderr, "config: %s\n", err);
    CHECK_EQ_INT(rc, 0);
    if (rc == 0 && cfg->nsinks == 2) {
        const struct crs_webhook_sink_config *wc = cfg->sinks[0].typed;
        const struct crs_email_sink_config *ec = cfg->sinks[1].typed;

        CHECK_EQ_INT(wc->format, CRS_WEBHOOK_CLOUDEVENTS);
        CHECK_EQ_INT(wc->nheaders, 2);
        CHECK_EQ_STR(wc->headers[1], "X-Two: 2");
        CHECK_EQ_INT(cfg->sinks[0].events, CRS_EVENT_ISSUED | CRS_EVENT_REVOKED);
        CHECK_EQ_INT(cfg->sinks[0].ntemplates, 1);
        CHECK(ec->implicit_tls);
        CHECK_EQ_STR(ec->from.addr, "ca@example.com");
        CHECK_EQ_INT(ec->nto, 2);
        CHECK_EQ_STR(ec->to[1].display, "Bob");
        CHECK_EQ_INT(ec->nbcc, 1);
        CHECK(ec->subject != NULL);
        CHECK(ec->attach_certificate);
    }
    crs_config_free(cfg);
    cfg = NULL;

    /* Each error names the file and the line of the key. */
    rc = crs_config_load_string("t.ini", "[sink.h]\ntype = webhook\nurl = ftp://x\n", &cfg, err,
                                sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, "t.ini:3:", 8) == 0);
    rc = crs_config_load_string("t.ini", "[sink.h]\ntype = webhook\nurl = https://u:p@x/\n", &cfg,
                                err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strstr(err, "user:password") != NULL);
    rc = crs_config_load_string("t.ini",
                                "[sink.h]\ntype = webhook\nurl = https://x/\nheader = Host: y\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, "t.ini:4:", 8) == 0);
    rc = crs_config_load_string("t.ini", "[sink.h]\ntype = webhook\nformat = json\n", &cfg, err,
                                sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strstr(err, "url") != NULL);
    rc = crs_config_load_string("t.ini",
                                "[sink.m]\ntype = email\nurl = smtp://x\nfrom = a@b.c\n"
                                "to = x@y.z, bad address\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, "t.ini:5:", 8) == 0);
    rc = crs_config_load_string("t.ini", "[sink.m]\ntype = email\nurl = smtp://x\nfrom = a@b.c\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strstr(err, "no recipient") != NULL);
    rc = crs_config_load_string("t.ini",
                                "[sink.m]\ntype = email\nurl = smtp://x\nfrom = a@b.c\nto = "
                                "c@d.e\nsubject = {{nope}}\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, "t.ini:6:", 8) == 0);
    rc = crs_config_load_string("t.ini",
                                "[sink.m]\ntype = email\nurl = smtps://x\nstarttls = off\nfrom = "
                                "a@b.c\nto = c@d.e\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    rc = crs_config_load_string("t.ini",
                                "[sink.m]\ntype = email\nurl = smtp://x\nfrom = a@b.c\nto = "
                                "c@d.e\nbody_file = /nonexistent/body.txt\n",
                                &cfg, err, sizeof(err));
    CHECK_EQ_INT(rc, CRS_ECONFIG);
    CHECK(strncmp(err, "t.ini:6:", 8) == 0);
}

int main(void)
{
    test_format_names();
    test_body_json();
    test_json_escapes();
    test_body_cloudevents();
    test_body_teams();
    test_body_slack();
    test_body_alloc_failures();
    test_signature();
    test_header_lines();
    test_status_outcome();
    test_percent_encode();
    test_addresses();
    test_header_text();
    test_date_and_ids();
    test_der_san();
    test_requester();
    test_default_templates();
    test_config();
    return CHECK_DONE();
}
