/* `{{field}}` templates: every field, each escaping mode, compile errors and the output cap. */
#include <stdint.h>
#include <string.h>
#include "check.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "render/template.h"

#define R "\xef\xbf\xbd" /* U+FFFD */

struct fixture {
    Certrelay__V1__Event ev;
    Certrelay__V1__CaInfo ca;
    Certrelay__V1__RequestInfo req;
    Certrelay__V1__CertificateInfo cert;
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    f->ev = (Certrelay__V1__Event)CERTRELAY__V1__EVENT__INIT;
    f->ca = (Certrelay__V1__CaInfo)CERTRELAY__V1__CA_INFO__INIT;
    f->req = (Certrelay__V1__RequestInfo)CERTRELAY__V1__REQUEST_INFO__INIT;
    f->cert = (Certrelay__V1__CertificateInfo)CERTRELAY__V1__CERTIFICATE_INFO__INIT;

    f->ev.event_id = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b";
    f->ev.has_kind = 1;
    f->ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_ISSUED;
    f->ev.has_capture_time_ms = 1;
    f->ev.capture_time_ms = 1795284247123LL; /* 2026-11-21T18:04:07.123Z */
    f->ca.config = "ca01.example.com\\Example Issuing CA";
    f->ca.sanitized_name = "Example Issuing CA";
    f->ca.host = "ca01.example.com";
    f->ev.ca = &f->ca;
    f->req.has_request_id = 1;
    f->req.request_id = 123;
    f->req.has_disposition = 1;
    f->req.disposition = 20;
    f->req.disposition_message = "Issued";
    f->req.has_status_code = 1;
    f->req.status_code = -2146877422; /* 0x80094012 */
    f->req.requester_name = "EXAMPLE\\alice";
    f->req.caller_name = "EXAMPLE\\svc-enroll";
    f->req.has_revoked_reason = 1;
    f->req.revoked_reason = 1;
    f->req.certificate_template = "WebServerRequest";
    f->ev.request = &f->req;
    f->cert.serial_number = "1a 2B 3c 00 ff";
    f->cert.has_not_before_ms = 1;
    f->cert.not_before_ms = 1795219200000LL;
    f->cert.has_not_after_ms = 1;
    f->cert.not_after_ms = 1826755200000LL;
    f->cert.distinguished_name = "CN=web01.example.com, O=Example";
    f->cert.common_name = "web01.example.com";
    f->cert.upn = "web01$@example.com";
    f->cert.email = "ops@example.com";
    f->cert.certificate_hash = "A1 B2 c3 D4";
    f->cert.certificate_template = "WebServer";
    f->ev.certificate = &f->cert;
}

static char *render(const char *src, const Certrelay__V1__Event *ev, enum crs_escape esc)
{
    struct crs_template *t = NULL;
    char err[128], *out = NULL;

    CHECK_EQ_INT(crs_template_compile(src, &t, err, sizeof err), 0);
    if (!t)
        return NULL;
    CHECK_EQ_INT(crs_template_render(t, ev, esc, &out), 0);
    crs_template_free(t);
    return out;
}

static void check_render(const char *src, const Certrelay__V1__Event *ev, enum crs_escape esc,
                         const char *want)
{
    char *out = render(src, ev, esc);

    CHECK_EQ_STR(out, want);
    crs_free(out);
}

static void check_value(const char *field, const Certrelay__V1__Event *ev, const char *want)
{
    char *out = NULL;

    CHECK_EQ_INT(crs_template_field_value(field, ev, &out), 0);
    if (!out || strcmp(out, want) != 0)
        fprintf(stderr, "field %s\n", field);
    CHECK_EQ_STR(out, want);
    crs_free(out);
}

static void test_fields(void)
{
    static const char *const want[][2] = {
        {"event", "issued"},
        {"event_id", "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"},
        {"time", "2026-11-21T18:04:07.123Z"},
        {"date", "2026-11-21"},
        {"kind_title", "Certificate issued"},
        {"request_id", "123"},
        {"serial", "1a2b3c00ff"},
        {"ca", "Example Issuing CA"},
        {"ca_config", "ca01.example.com\\Example Issuing CA"},
        {"ca_host", "ca01.example.com"},
        {"template", "WebServer"},
        {"common_name", "web01.example.com"},
        {"subject", "CN=web01.example.com, O=Example"},
        {"upn", "web01$@example.com"},
        {"email", "ops@example.com"},
        {"requester", "EXAMPLE\\alice"},
        {"caller", "EXAMPLE\\svc-enroll"},
        {"disposition", "issued"},
        {"disposition_message", "Issued"},
        {"status_code", "0x80094012"},
        {"not_before", "2026-11-21T00:00:00.000Z"},
        {"not_after", "2027-11-21T00:00:00.000Z"},
        {"thumbprint", "a1b2c3d4"},
        {"revocation_reason", "key_compromise"},
        {"origin", "live"},
        {"expires", "2027-11-21T00:00:00.000Z"}, /* an issued event: the certificate's notAfter */
        {"days_left", ""},                       /* only alerts have it */
    };
    const size_t nwant = sizeof want / sizeof want[0];
    const char *const *fields = crs_template_fields();
    Certrelay__V1__Event empty = CERTRELAY__V1__EVENT__INIT;
    struct fixture f;
    size_t i, j, n = 0;
    char *out = (char *)"x", src[64];

    fixture_init(&f);
    /* The list and the table above name the same fields. */
    for (i = 0; fields[i] != NULL; i++) {
        int found = 0;

        for (j = 0; j < nwant; j++)
            found |= strcmp(fields[i], want[j][0]) == 0;
        if (!found)
            fprintf(stderr, "untested field %s\n", fields[i]);
        CHECK(found);
        n++;
    }
    CHECK_EQ_INT(n, nwant);

    for (i = 0; i < nwant; i++) {
        check_value(want[i][0], &f.ev, want[i][1]);
        /* Absent everything: every field is the empty string, but origin, whose absence means
         * the exit module sent the event. */
        check_value(want[i][0], &empty, strcmp(want[i][0], "origin") == 0 ? "live" : "");
        /* And the same through a compiled template, with spaces inside the braces. */
        snprintf(src, sizeof src, "<{{ %s }}>", want[i][0]);
        out = render(src, &f.ev, CRS_ESCAPE_NONE);
        CHECK(out && strlen(out) == strlen(want[i][1]) + 2 &&
              strncmp(out + 1, want[i][1], strlen(want[i][1])) == 0);
        crs_free(out);
    }

    out = (char *)"x";
    CHECK_EQ_INT(crs_template_field_value("nope", &f.ev, &out), CRS_ENOENT);
    CHECK(out == NULL);
    CHECK_EQ_INT(crs_template_field_value(NULL, &f.ev, &out), CRS_EINVAL);
    CHECK_EQ_INT(crs_template_field_value("event", NULL, &out), CRS_EINVAL);
}

static void test_fallbacks(void)
{
    static const struct {
        uint32_t kind;
        const char *title;
    } titles[] = {
        {CRS_EVENT_ISSUED, "Certificate issued"},
        {CRS_EVENT_PENDING, "Request pending"},
        {CRS_EVENT_DENIED, "Request denied"},
        {CRS_EVENT_REVOKED, "Certificate revoked"},
        {CRS_EVENT_RETRIEVE_PENDING, "Pending request retrieved"},
        {CRS_EVENT_CRL_ISSUED, "CRL published"},
        {CRS_EVENT_SHUTDOWN, "CA service stopping"},
        {CRS_EVENT_STARTUP, "CA service started"},
        {CRS_EVENT_UNREVOKED, "Certificate unrevoked"},
        {CRS_EVENT_IMPORTED, "Certificate imported"},
    };
    struct fixture f;
    size_t i;

    fixture_init(&f);
    for (i = 0; i < sizeof titles / sizeof titles[0]; i++) {
        f.ev.kind = (Certrelay__V1__EventKind)titles[i].kind;
        check_value("kind_title", &f.ev, titles[i].title);
        check_value("event", &f.ev, crs_event_name(titles[i].kind));
    }
    f.ev.kind = (Certrelay__V1__EventKind)3;
    check_value("kind_title", &f.ev, "");
    check_value("event", &f.ev, "");

    /* ca: sanitized name, else the configuration string. */
    f.ca.sanitized_name = "";
    check_value("ca", &f.ev, "ca01.example.com\\Example Issuing CA");
    f.ca.sanitized_name = NULL;
    check_value("ca", &f.ev, "ca01.example.com\\Example Issuing CA");
    /* template: the certificate's, else the request's. */
    f.cert.certificate_template = NULL;
    check_value("template", &f.ev, "WebServerRequest");
    f.ev.certificate = NULL;
    check_value("template", &f.ev, "WebServerRequest");
    /* Values without a name are shown as numbers. */
    f.req.disposition = 8;
    check_value("disposition", &f.ev, "8");
    f.req.disposition = 31;
    check_value("disposition", &f.ev, "denied");
    f.req.revoked_reason = 7;
    check_value("revocation_reason", &f.ev, "7");
    f.req.revoked_reason = 6;
    check_value("revocation_reason", &f.ev, "certificate_hold");
    f.req.status_code = 0;
    check_value("status_code", &f.ev, "0x00000000");
    f.req.status_code = 5000000000LL;
    check_value("status_code", &f.ev, "5000000000");
    f.ev.capture_time_ms = -1;
    check_value("date", &f.ev, "1969-12-31");
}

static void test_compile_errors(void)
{
    struct crs_template *t = (struct crs_template *)&t;
    char err[128];

    CHECK_EQ_INT(crs_template_compile("a {{ nope }} b", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK(t == NULL);
    CHECK_EQ_STR(err, "unknown field 'nope'");
    CHECK_EQ_INT(crs_template_compile("x {{serial", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK(strstr(err, "unterminated '{{'") != NULL);
    CHECK_EQ_INT(crs_template_compile("{{serial}} {{", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK(strstr(err, "unterminated") != NULL);
    CHECK_EQ_INT(crs_template_compile("{{ }}", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK(strstr(err, "empty field name") != NULL);
    CHECK_EQ_INT(crs_template_compile("{{{serial}}", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK_EQ_STR(err, "unknown field '{serial'");
    CHECK_EQ_INT(crs_template_compile("{{Serial}}", &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK_EQ_INT(crs_template_compile("{{re quest_id}}", &t, err, sizeof err), CRS_ETEMPLATE);
    /* The error sentence is cut to the buffer, and a NULL buffer is fine. */
    CHECK_EQ_INT(crs_template_compile("{{nope}}", &t, err, 8), CRS_ETEMPLATE);
    CHECK_EQ_STR(err, "unknown");
    CHECK_EQ_INT(crs_template_compile("{{nope}}", &t, NULL, 0), CRS_ETEMPLATE);
    CHECK_EQ_INT(crs_template_compile(NULL, &t, err, sizeof err), CRS_EINVAL);
    CHECK_EQ_INT(crs_template_compile("x", NULL, err, sizeof err), CRS_EINVAL);
    crs_template_free(NULL);
}

static void test_syntax(void)
{
    struct fixture f;

    fixture_init(&f);
    check_render("", &f.ev, CRS_ESCAPE_NONE, "");
    check_render("plain text", &f.ev, CRS_ESCAPE_NONE, "plain text");
    check_render("{{request_id}}", &f.ev, CRS_ESCAPE_NONE, "123");
    check_render("{{ request_id }}", &f.ev, CRS_ESCAPE_NONE, "123");
    check_render("{{\t request_id\t}}", &f.ev, CRS_ESCAPE_NONE, "123");
    check_render("#{{request_id}}{{event}}!", &f.ev, CRS_ESCAPE_NONE, "#123issued!");
    check_render("{ x } }} {", &f.ev, CRS_ESCAPE_NONE, "{ x } }} {");
    check_render("{{event}}}", &f.ev, CRS_ESCAPE_NONE, "issued}");
    check_render("[{{kind_title}}] {{common_name}} ({{template}}) by {{requester}}", &f.ev,
                 CRS_ESCAPE_NONE,
                 "[Certificate issued] web01.example.com (WebServer) by EXAMPLE\\alice");
}

static void test_escaping(void)
{
    struct fixture f;

    fixture_init(&f);

    /* NONE: control characters other than LF and TAB are removed. */
    f.cert.common_name = "a\r\nb\tc\x01\x7f"
                         "d";
    check_render("{{common_name}}", &f.ev, CRS_ESCAPE_NONE, "a\nb\tcd");
    /* HEADER: every control character becomes a space, so no header can be injected. */
    f.cert.common_name = "x\r\nBcc: evil@example.com\x7f";
    check_render("Subject: {{common_name}}", &f.ev, CRS_ESCAPE_HEADER,
                 "Subject: x  Bcc: evil@example.com ");
    /* HTML: markup characters escaped in values, literals left alone. */
    f.cert.common_name = "<b>&\"'\x01";
    check_render("<p>{{common_name}}</p>", &f.ev, CRS_ESCAPE_HTML,
                 "<p>&lt;b&gt;&amp;&quot;&#39;</p>");
    /* Invalid UTF-8 is repaired in every mode. */
    f.cert.common_name = "bad\xff";
    check_render("{{common_name}}", &f.ev, CRS_ESCAPE_NONE, "bad" R);
    check_render("{{common_name}}", &f.ev, CRS_ESCAPE_HTML, "bad" R);
    check_render("{{common_name}}", &f.ev, CRS_ESCAPE_HEADER, "bad" R);
}

static void test_filename_mode(void)
{
    static const char *const hostile[] = {
        "../../etc/passwd", "..",           ".",      "a/b\\c",
        "C:\\Windows\\x",   "CON",          "x\r\ny", "<>:\"|?*",
        "\xc0\xaf\xc0\xaf", "\xef\xbc\x8f", "/",      "\\\\server\\share",
    };
    struct fixture f;
    size_t i;
    char *out;

    fixture_init(&f);
    check_render("{{ca}}-{{request_id}}-{{serial}}.json", &f.ev, CRS_ESCAPE_FILENAME,
                 "Example Issuing CA-123-1a2b3c00ff.json");
    f.cert.common_name = "../../etc/passwd";
    check_render("{{common_name}}", &f.ev, CRS_ESCAPE_FILENAME, "___.._etc_passwd");
    f.cert.common_name = "CON";
    check_render("{{common_name}}.cer", &f.ev, CRS_ESCAPE_FILENAME, "_CON.cer");
    /* An absent value stays empty instead of becoming "_". */
    f.cert.upn = NULL;
    check_render("a{{upn}}b", &f.ev, CRS_ESCAPE_FILENAME, "ab");
    /* Separators in literal text are neutralized too; dots in literals are kept. */
    check_render("dir/{{request_id}}\\x..json", &f.ev, CRS_ESCAPE_FILENAME, "dir_123_x..json");
    /* The ca_config value holds a backslash. */
    check_render("{{ca_config}}", &f.ev, CRS_ESCAPE_FILENAME,
                 "ca01.example.com_Example Issuing CA");

    for (i = 0; i < sizeof hostile / sizeof hostile[0]; i++) {
        f.cert.common_name = (char *)hostile[i];
        f.cert.upn = (char *)hostile[i];
        out = render("{{common_name}}/{{upn}}\\{{subject}}", &f.ev, CRS_ESCAPE_FILENAME);
        CHECK(out && strchr(out, '/') == NULL && strchr(out, '\\') == NULL);
        CHECK(out && strpbrk(out, "\r\n:<>\"|?*") == NULL);
        crs_free(out);
    }
}

static void test_cap(void)
{
    const size_t half = CRS_TEMPLATE_MAX_OUTPUT / 2 + 1;
    struct crs_template *t = NULL;
    struct fixture f;
    char *big, *out = (char *)"x", err[128];

    fixture_init(&f);
    big = crs_malloc(CRS_TEMPLATE_MAX_OUTPUT + 2);
    CHECK(big != NULL);
    if (!big)
        return;
    memset(big, 'a', half);
    big[half] = '\0';
    f.cert.common_name = big;

    out = render("{{common_name}}", &f.ev, CRS_ESCAPE_NONE);
    CHECK(out && strlen(out) == half);
    crs_free(out);

    CHECK_EQ_INT(crs_template_compile("{{common_name}}{{common_name}}", &t, err, sizeof err), 0);
    out = (char *)"x";
    CHECK_EQ_INT(crs_template_render(t, &f.ev, CRS_ESCAPE_NONE, &out), CRS_ETOOBIG);
    CHECK(out == NULL);
    crs_template_free(t);

    /* Exactly the cap is allowed; one byte more is not. */
    memset(big, 'a', CRS_TEMPLATE_MAX_OUTPUT);
    big[CRS_TEMPLATE_MAX_OUTPUT] = '\0';
    out = render("{{common_name}}", &f.ev, CRS_ESCAPE_NONE);
    CHECK(out && strlen(out) == CRS_TEMPLATE_MAX_OUTPUT);
    crs_free(out);
    CHECK_EQ_INT(crs_template_compile("x{{common_name}}", &t, err, sizeof err), 0);
    CHECK_EQ_INT(crs_template_render(t, &f.ev, CRS_ESCAPE_NONE, &out), CRS_ETOOBIG);
    crs_template_free(t);

    /* Escaping that grows the value counts against the cap. */
    memset(big, '&', half);
    big[half] = '\0';
    CHECK_EQ_INT(crs_template_compile("{{common_name}}", &t, err, sizeof err), 0);
    CHECK_EQ_INT(crs_template_render(t, &f.ev, CRS_ESCAPE_HTML, &out), CRS_ETOOBIG);
    crs_template_free(t);

    /* A template whose literal text alone exceeds the cap is refused when compiled. */
    memset(big, 'b', CRS_TEMPLATE_MAX_OUTPUT + 1);
    big[CRS_TEMPLATE_MAX_OUTPUT + 1] = '\0';
    t = NULL;
    CHECK_EQ_INT(crs_template_compile(big, &t, err, sizeof err), CRS_ETEMPLATE);
    CHECK(t == NULL);
    crs_free(big);

    CHECK_EQ_INT(crs_template_render(NULL, &f.ev, CRS_ESCAPE_NONE, &out), CRS_EINVAL);
}

/* Each allocation in compile and render fails in turn; nothing leaks and the error is ENOMEM. */
static void test_alloc_failures(void)
{
    const char *src = "[{{kind_title}}] {{ common_name }} {{serial}} {{time}} {{ca}} tail";
    struct crs_template *t;
    struct fixture f;
    char err[128], *out;
    long n;
    int rc = CRS_ENOMEM, failures = 0;

    fixture_init(&f);
    for (n = 0; n < 10000 && rc != 0; n++) {
        t = NULL;
        out = NULL;
        crs_alloc_fail_after(n);
        rc = crs_template_compile(src, &t, err, sizeof err);
        if (rc == 0)
            rc = crs_template_render(t, &f.ev, (enum crs_escape)(n % 4), &out);
        crs_alloc_fail_after(-1);
        if (rc != 0) {
            failures++;
            CHECK_EQ_INT(rc, CRS_ENOMEM);
            CHECK(out == NULL);
        }
        crs_free(out);
        crs_template_free(t);
    }
    CHECK_EQ_INT(rc, 0);
    CHECK(failures > 10);
}

int main(void)
{
    test_fields();
    test_fallbacks();
    test_compile_errors();
    test_syntax();
    test_escaping();
    test_filename_mode();
    test_cap();
    test_alloc_failures();
    return CHECK_DONE();
}
