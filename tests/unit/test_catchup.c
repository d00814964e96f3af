/*
 * The portable half of catch-up (catchup/): the row model, the events built from a row, the
 * dedup key, and the `certutil -view csv` reader over real files (tmpfile), including malformed
 * records and allocation failures.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/catchup.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/uuid.h"
#include "check.h"

#define CA "CA01.example.com\\Example Issuing CA"
/* 2026-12-03T10:15:00Z */
#define T0 1796292900000LL

static const uint8_t fake_der[] = {0x30, 0x82, 0x01, 0x0a, 0x02, 0x01, 0x01, 0x30, 0x00};

static struct crs_catchup_row *issued_row(int64_t id, int64_t disposition)
{
    struct crs_catchup_row *row = NULL;

    CHECK_EQ_INT(crs_catchup_row_new(&row), 0);
    CHECK_EQ_INT(crs_catchup_row_set_long(row, "RequestID", id), 0);
    CHECK_EQ_INT(crs_catchup_row_set_long(row, "Request.Disposition", disposition), 0);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "Request.RequesterName", "EXAMPLE\\alice"), 0);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "Request.SubmittedWhen", T0 - 5000), 0);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "Request.ResolvedWhen", T0 + 17345), 0);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "CertificateTemplate", "WebServer"), 0);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "SerialNumber", "61000000050a"), 0);
    CHECK_EQ_INT(crs_catchup_row_set_binary(row, "RawCertificate", fake_der, sizeof(fake_der)), 0);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "CommonName", "web01.example.com"), 0);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "NotBefore", T0), 0);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "NotAfter", T0 + 365LL * 86400000), 0);
    return row;
}

static Certrelay__V1__Event *unpack(const struct crs_catchup_event *e)
{
    Certrelay__V1__Event *ev = NULL;
    CHECK_EQ_INT(crs_event_unpack(e->packed, e->packed_len, &ev), 0);
    return ev;
}

static void test_row_setters(void)
{
    struct crs_catchup_row *row = NULL;
    char *big = malloc(CRS_CATCHUP_BINARY_MAX + 2);

    CHECK_EQ_INT(crs_catchup_row_new(&row), 0);
    CHECK_EQ_INT(crs_catchup_row_request_id(row), -1);
    CHECK_EQ_INT(crs_catchup_row_set_long(row, "request.requestid", 42), 0);
    CHECK_EQ_INT(crs_catchup_row_request_id(row), 42);
    /* Unknown columns are ignored; a known one with the wrong type is refused. */
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "Request.Bogus", "x"), 0);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "Disposition", "x"), CRS_EINVAL);
    /* The request's subject is not the certificate's. */
    CHECK_EQ_INT(crs_catchup_row_set_long(row, "Request.CommonName", 1), 0);
    memset(big, 'a', CRS_CATCHUP_STRING_MAX + 1);
    big[CRS_CATCHUP_STRING_MAX + 1] = '\0';
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "CommonName", big), CRS_ETOOBIG);
    CHECK(strstr(crs_catchup_row_error(row), "CommonName") != NULL);
    CHECK(strstr(crs_catchup_row_error(row), "42") != NULL);
    big[CRS_CATCHUP_STRING_MAX] = '\0';
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "CommonName", big), 0);
    CHECK_EQ_INT(crs_catchup_row_set_binary(row, "RawCertificate", (uint8_t *)big,
                                            CRS_CATCHUP_BINARY_MAX + 1),
                 CRS_ETOOBIG);
    CHECK(strstr(crs_catchup_row_error(row), "RawCertificate") != NULL);
    CHECK_EQ_INT(crs_catchup_row_set_string(row, "UPN", "\xff\xfe"), CRS_EINVAL);
    crs_catchup_row_reset(row);
    CHECK_EQ_INT(crs_catchup_row_request_id(row), -1);
    crs_catchup_row_free(row);
    crs_catchup_row_free(NULL);
    free(big);
}

static void test_row_events(void)
{
    struct crs_catchup_row *row = issued_row(5, 20);
    struct crs_catchup_events evs;
    Certrelay__V1__Event *ev;

    CHECK_EQ_INT(crs_catchup_row_events(row, CA, 0, &evs), 0);
    CHECK_EQ_INT(evs.count, 1);
    CHECK_EQ_INT(evs.ev[0].kind, CRS_EVENT_ISSUED);
    CHECK_EQ_INT(evs.ev[0].request_id, 5);
    CHECK_EQ_INT(evs.ev[0].when_ms, T0 + 17345);
    CHECK_EQ_STR(evs.ev[0].subject, "web01.example.com");
    CHECK(crs_uuid_valid(evs.ev[0].event_id));
    ev = unpack(&evs.ev[0]);
    if (ev != NULL) {
        CHECK_EQ_STR(ev->origin, "catchup");
        CHECK_EQ_STR(ev->event_id, evs.ev[0].event_id);
        CHECK_EQ_STR(ev->ca->config, CA);
        CHECK_EQ_STR(ev->ca->host, "CA01.example.com");
        CHECK_EQ_INT(ev->raw_exit_event, 1);
        CHECK_EQ_INT(ev->request->request_id, 5);
        CHECK_EQ_INT(ev->request->disposition, 20);
        CHECK_EQ_STR(ev->request->requester_name, "EXAMPLE\\alice");
        CHECK_EQ_STR(ev->request->certificate_template, "WebServer");
        CHECK(!ev->request->has_revoked_when_ms);
        CHECK(ev->certificate != NULL && ev->certificate->raw_certificate.len == sizeof(fake_der));
        CHECK_EQ_STR(ev->certificate->serial_number, "61000000050a");
        CHECK_EQ_INT(ev->certificate->not_after_ms, T0 + 365LL * 86400000);
        crs_event_free(ev);
    }
    crs_catchup_events_free(&evs);

    /* Revoked: the issue and the revocation, each as the module saw it then. */
    crs_catchup_row_free(row);
    row = issued_row(9, 21);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "Request.RevokedWhen", T0 + 3600000), 0);
    CHECK_EQ_INT(crs_catchup_row_set_date(row, "Request.RevokedEffectiveWhen", T0 + 3600000), 0);
    CHECK_EQ_INT(crs_catchup_row_set_long(row, "Request.RevokedReason", 1), 0);
    CHECK_EQ_INT(crs_catchup_row_events(row, CA, CRS_CATCHUP_KINDS, &evs), 0);
    CHECK_EQ_INT(evs.count, 2);
    CHECK_EQ_INT(evs.ev[0].kind, CRS_EVENT_ISSUED);
    CHECK_EQ_INT(evs.ev[1].kind, CRS_EVENT_REVOKED);
    CHECK_EQ_INT(evs.ev[1].when_ms, T0 + 3600000);
    CHECK(strcmp(evs.ev[0].event_id, evs.ev[1].event_id) != 0);
    ev = unpack(&evs.ev[0]);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->request->disposition, 20);
        CHECK(!ev->request->has_revoked_reason);
        crs_event_free(ev);
    }
    ev = unpack(&evs.ev[1]);
    if (ev != NULL) {
        CHECK_EQ_INT(ev->kind, CRS_EVENT_REVOKED);
        CHECK_EQ_INT(ev->raw_exit_event, 8);
        CHECK_EQ_INT(ev->request->disposition, 21);
        CHECK_EQ_INT(ev->request->revoked_reason, 1);
        crs_event_free(ev);
    }
    crs_catchup_events_free(&evs);
    /* Restricted to revoked. */
    CHECK_EQ_INT(crs_catchup_row_events(row, CA, CRS_EVENT_REVOKED, &evs), 0);
    CHECK_EQ_INT(evs.count, 1);
    CHECK_EQ_INT(evs.ev[0].kind, CRS_EVENT_REVOKED);
    crs_catchup_events_free(&evs);
    crs_catchup_row_free(row);

    /* Pending, denied, error, and a disposition no notification announces. */
    static const struct {
        int64_t disp;
        uint32_t kind;
    } cases[] = {
        {9, CRS_EVENT_PENDING}, {31, CRS_EVENT_DENIED}, {30, CRS_EVENT_DENIED}, {12, 0}, {15, 0}};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        CHECK_EQ_INT(crs_catchup_row_new(&row), 0);
        crs_catchup_row_set_long(row, "RequestID", 100 + (int64_t)i);
        crs_catchup_row_set_long(row, "Disposition", cases[i].disp);
        crs_catchup_row_set_date(row, "SubmittedWhen", T0);
        CHECK_EQ_INT(crs_catchup_row_events(row, CA, 0, &evs), 0);
        CHECK_EQ_INT(evs.count, cases[i].kind ? 1 : 0);
        if (evs.count == 1) {
            CHECK_EQ_INT(evs.ev[0].kind, cases[i].kind);
            ev = unpack(&evs.ev[0]);
            /* No certificate columns: no CertificateInfo, as the stub's would have none. */
            CHECK(ev != NULL && ev->certificate == NULL);
            crs_event_free(ev);
        }
        crs_catchup_events_free(&evs);
        crs_catchup_row_free(row);
    }

    /* Without a disposition or a request id there is nothing to rebuild. */
    CHECK_EQ_INT(crs_catchup_row_new(&row), 0);
    crs_catchup_row_set_long(row, "RequestID", 1);
    CHECK_EQ_INT(crs_catchup_row_events(row, CA, 0, &evs), CRS_EINVAL);
    CHECK_EQ_INT(evs.count, 0);
    CHECK_EQ_INT(crs_catchup_row_events(row, "", 0, &evs), CRS_EINVAL);
    crs_catchup_row_free(row);
    crs_catchup_events_free(NULL);
}

static void test_key(void)
{
    struct crs_catchup_row *row = issued_row(7, 20);
    struct crs_catchup_events evs;
    struct crs_catchup_key k1, k2;
    Certrelay__V1__Event *ev;

    CHECK_EQ_INT(crs_catchup_minute(119999), 1);
    CHECK_EQ_INT(crs_catchup_minute(120000), 2);
    CHECK_EQ_INT(crs_catchup_minute(-1), -1);
    CHECK_EQ_INT(crs_catchup_row_events(row, CA, 0, &evs), 0);
    ev = unpack(&evs.ev[0]);
    if (ev != NULL) {
        CHECK_EQ_INT(crs_catchup_event_key(ev, &k1), 0);
        /* The CA is its name: certsrv gives the exit module the name alone. */
        CHECK_EQ_STR(k1.ca, "example issuing ca");
        CHECK_EQ_INT(k1.request_id, 7);
        CHECK_EQ_INT(k1.kind, CRS_EVENT_ISSUED);
        CHECK_EQ_INT(k1.minute, (T0 + 17345) / 60000);
        /* The live event, a few seconds later in the same minute, upper-case CA: same key. */
        ev->request->resolved_when_ms = T0 + 59999;
        free(ev->ca->config);
        ev->ca->config = NULL;
        crs_event_free(ev);
    }
    crs_catchup_events_free(&evs);
    CHECK_EQ_INT(crs_catchup_row_events(row, "CA01.EXAMPLE.COM\\EXAMPLE ISSUING CA", 0, &evs), 0);
    ev = unpack(&evs.ev[0]);
    if (ev != NULL) {
        CHECK_EQ_INT(crs_catchup_event_key(ev, &k2), 0);
        CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0);
        /* The live event's CA is the name Initialize got: the same key. */
        free(ev->ca->config);
        ev->ca->config = strdup("Example Issuing CA");
        CHECK(ev->ca->config != NULL);
        CHECK_EQ_INT(crs_catchup_event_key(ev, &k2), 0);
        CHECK(memcmp(&k1, &k2, sizeof(k1)) == 0);
        /* A config ending in a backslash names no CA. */
        free(ev->ca->config);
        ev->ca->config = strdup("ca01.example.com\\");
        CHECK_EQ_INT(crs_catchup_event_key(ev, &k2), CRS_ENOENT);
        /* A CRL event has no key. */
        ev->kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_CRL_ISSUED;
        CHECK_EQ_INT(crs_catchup_event_key(ev, &k2), CRS_ENOENT);
        crs_event_free(ev);
    }
    crs_catchup_events_free(&evs);
    crs_catchup_row_free(row);
}

/* ---- CSV ---- */

struct collect {
    int n;
    int64_t ids[32];
    int64_t disp[32];
    int64_t status[32];
    int64_t resolved[32];
    size_t certlen[32];
    int bad;
    uint64_t bad_lines[32];
    int stop_after;
};

static int on_row(void *ctx, const struct crs_catchup_row *row)
{
    struct collect *c = ctx;
    struct crs_catchup_events evs;

    if (c->n < 32) {
        c->ids[c->n] = crs_catchup_row_request_id(row);
        if (crs_catchup_row_events(row, CA, 0, &evs) == 0 && evs.count > 0) {
            /* Not unpack(): under allocation failures protobuf-c's own unpack fails too. */
            Certrelay__V1__Event *ev = NULL;
            crs_event_unpack(evs.ev[0].packed, evs.ev[0].packed_len, &ev);
            if (ev != NULL) {
                c->disp[c->n] = ev->request->disposition;
                c->status[c->n] = ev->request->has_status_code ? ev->request->status_code : -1;
                c->resolved[c->n] =
                    ev->request->has_resolved_when_ms ? ev->request->resolved_when_ms : -1;
                c->certlen[c->n] = ev->certificate ? ev->certificate->raw_certificate.len : 0;
                crs_event_free(ev);
            }
        }
        crs_catchup_events_free(&evs);
    }
    c->n++;
    return c->stop_after > 0 && c->n >= c->stop_after ? 7 : 0;
}

static void on_bad(void *ctx, uint64_t line, const char *why)
{
    struct collect *c = ctx;
    if (c->bad < 32)
        c->bad_lines[c->bad] = line;
    c->bad++;
}

static FILE *text_file(const char *s, size_t n)
{
    FILE *f = tmpfile();
    CHECK(f != NULL);
    if (f == NULL)
        return NULL;
    CHECK_EQ_INT(fwrite(s, 1, n, f), n);
    rewind(f);
    return f;
}

static int read_text(const char *s, const struct crs_catchup_filter *flt, struct collect *c,
                     struct crs_catchup_csv_stats *st, char *err, size_t errlen)
{
    FILE *f = text_file(s, strlen(s));
    int rc;
    if (f == NULL)
        return CRS_EIO;
    rc = crs_catchup_read_csv2(f, flt, on_row, on_bad, c, st, err, errlen);
    fclose(f);
    return rc;
}

/* What certutil -view csv writes (display names, a BOM from Out-File, CRLF). */
static const char certutil_csv[] =
    "\xef\xbb\xbf"
    "\"Request ID\",\"Request Disposition\",\"Request Status Code\",\"Requester Name\","
    "\"Request Resolution Date\",\"Binary Certificate\",\"Certificate Template\",\"Serial "
    "Number\",\"Issued Common Name\",\"Some Column We Do Not Know\"\r\n"
    "\"0x5\",\"20 -- Issued\",\"0x0 (WIN32: 0)\",\"EXAMPLE\\alice\",\"12/3/2026 10:15 AM\","
    "\"-----BEGIN CERTIFICATE-----\r\nMIIBCgIBATAA\r\n-----END CERTIFICATE-----\r\n\","
    "\"WebServer\",\"6100000005\",\"web05\",\"x\"\r\n"
    "\"6\",\"31 -- Denied\",\"0x80094012 (-2146877422 CERTSRV_E_TEMPLATE_DENIED)\","
    "\"EXAMPLE\\\"\"bob\"\"\",\"12/3/2026 12:05:30 PM\",EMPTY,\"User\",EMPTY,EMPTY,\"\"\r\n"
    "\r\n"
    "\"7\",\"9 -- Taken Under Submission\",\"0x0\",\"EXAMPLE\\carol\",EMPTY,EMPTY,"
    "\"User\",EMPTY,EMPTY,\r\n"
    "\"8\",\"20 -- Issued\",\"0x0\",\"x\",\"2026-12-03 00:01\",\"MIIBCgIBATAA\",\"User\","
    "\"61\",\"w8\",\r\n";

static void test_csv_certutil(void)
{
    struct collect c = {0};
    struct crs_catchup_csv_stats st;
    char err[256] = "";

    CHECK_EQ_INT(read_text(certutil_csv, NULL, &c, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 4);
    CHECK_EQ_INT(c.bad, 0);
    CHECK_EQ_INT(st.rows, 4);
    CHECK_EQ_INT(st.matched, 4);
    CHECK_EQ_INT(c.ids[0], 5);
    CHECK_EQ_INT(c.disp[0], 20);
    CHECK_EQ_INT(c.status[0], 0);
    CHECK_EQ_INT(c.resolved[0], T0);
    CHECK_EQ_INT(c.certlen[0], sizeof(fake_der));
    CHECK_EQ_INT(c.ids[1], 6);
    CHECK_EQ_INT(c.disp[1], 31);
    CHECK_EQ_INT(c.status[1], (int32_t)0x80094012u);
    CHECK_EQ_INT(c.resolved[1], T0 - 10 * 60000 + 2 * 3600000 + 30000);
    CHECK_EQ_INT(c.certlen[1], 0);
    CHECK_EQ_INT(c.ids[2], 7);
    CHECK_EQ_INT(c.disp[2], 9);
    CHECK_EQ_INT(c.ids[3], 8);
    CHECK_EQ_INT(c.resolved[3], T0 - (10 * 60 + 14) * 60000LL);

    /* The filter: from request 6, then resolved since noon. */
    struct crs_catchup_filter flt = {6, 0, 0};
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(read_text(certutil_csv, &flt, &c, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(st.rows, 4);
    flt.from_request = 0;
    flt.since_ms = T0 + 3600000;
    memset(&c, 0, sizeof(c));
    CHECK_EQ_INT(read_text(certutil_csv, &flt, &c, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(c.ids[0], 6);

    /* A callback's nonzero return stops the read and is returned. */
    memset(&c, 0, sizeof(c));
    c.stop_after = 2;
    CHECK_EQ_INT(read_text(certutil_csv, NULL, &c, NULL, err, sizeof(err)), 7);
    CHECK_EQ_INT(c.n, 2);
}

static void test_csv_schema_names_and_12h(void)
{
    static const char csv[] =
        "RequestID,Request.Disposition,Request.ResolvedWhen,Request.RevokedWhen,"
        "Request.RevokedReason,RawCertificate\n"
        "10,21 -- Revoked,12/3/2026 12:00 AM,12/3/2026 12:59 PM,0x1 -- Key Compromise,"
        "MIIBCgIBATAA\n";
    struct collect c = {0};
    char err[256];
    struct crs_catchup_row *row = NULL;

    CHECK_EQ_INT(read_text(csv, NULL, &c, NULL, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 1);
    /* 12 AM is midnight. */
    CHECK_EQ_INT(c.resolved[0], T0 - (10 * 60 + 15) * 60000LL);
    (void)row;
}

static void test_csv_malformed(void)
{
    static const char csv[] =
        "\"Request ID\",\"Request Disposition\",\"Request Resolution Date\"\n" /* line 1 */
        "1,20 -- Issued,12/3/2026 10:15 AM\n"                                  /* 2 good */
        "2,20 -- Issued\n"                                                     /* 3 too few */
        "3,20 -- Issued,13/45/2026 10:15 AM\n"                                 /* 4 bad date */
        "4,20 -- \"Issued\",12/3/2026 10:15 AM\n"                              /* 5 stray quote */
        "x5,20,12/3/2026 10:15 AM\n"                                           /* 6 bad id */
        "\"6\",\"20\",\"12/3/2026\n"                                           /* 7 quoted */
        "10:15 AM\"\n"                                                         /* 8 newline */
        "7,20,12/3/2026 10:15 AM,extra\n"                                      /* 9 too many */
        ",20,12/3/2026 10:15 AM\n"                                             /* 10 no id */
        "8,20,12/3/2026 10:15 AM\n"                                            /* 11 good */
        "9,20,\"unterminated\n";                                               /* 12 eof */
    struct collect c = {0};
    struct crs_catchup_csv_stats st;
    char err[256];

    CHECK_EQ_INT(read_text(csv, NULL, &c, &st, err, sizeof(err)), 0);
    CHECK_EQ_INT(c.n, 3);
    CHECK_EQ_INT(c.ids[0], 1);
    CHECK_EQ_INT(c.ids[1], 6); /* a quoted newline is part of the cell, not a record end */
    CHECK_EQ_INT(c.ids[2], 8);
    CHECK_EQ_INT(st.bad, 7);
    CHECK_EQ_INT(c.bad, 7);
    static const uint64_t lines[] = {3, 4, 5, 6, 9, 10, 12};
    for (size_t i = 0; i < 7; i++)
        CHECK_EQ_INT(c.bad_lines[i], lines[i]);
}

static void test_csv_refused(void)
{
    struct collect c = {0};
    char err[256] = "";

    CHECK_EQ_INT(read_text("", NULL, &c, NULL, err, sizeof(err)), CRS_EINVAL);
    CHECK(strstr(err, "header") != NULL);
    CHECK_EQ_INT(
        read_text("Serial Number,Issued Common Name\n61,x\n", NULL, &c, NULL, err, sizeof(err)),
        CRS_EINVAL);
    CHECK(strstr(err, "Request ID") != NULL);
    CHECK_EQ_INT(c.n, 0);
    CHECK_EQ_INT(crs_catchup_read_csv(NULL, NULL, on_row, &c, err, sizeof(err)), CRS_EINVAL);
}

/* A record past the cap is skipped whole, and the next record is read. */
static void test_csv_long_record(void)
{
    size_t n = CRS_CATCHUP_CSV_LINE_MAX + 100;
    const char *head = "RequestID,Request.Disposition,CommonName\n1,20,\"";
    const char *tail = "\"\n2,20,ok\n";
    char *buf = malloc(strlen(head) + n + strlen(tail) + 1);
    struct collect c = {0};
    struct crs_catchup_csv_stats st;
    char err[256];
    FILE *f;

    strcpy(buf, head);
    memset(buf + strlen(head), 'a', n);
    /* Quoted commas and newlines inside the long cell must not resynchronize early. */
    buf[strlen(head) + 10] = ',';
    buf[strlen(head) + 20] = '\n';
    strcpy(buf + strlen(head) + n, tail);
    f = text_file(buf, strlen(buf));
    if (f != NULL) {
        CHECK_EQ_INT(crs_catchup_read_csv2(f, NULL, on_row, on_bad, &c, &st, err, sizeof(err)), 0);
        fclose(f);
    }
    CHECK_EQ_INT(c.n, 1);
    CHECK_EQ_INT(c.ids[0], 2);
    CHECK_EQ_INT(st.bad, 1);
    CHECK_EQ_INT(c.bad_lines[0], 2);
    free(buf);
}

/* Every allocation failure is handled: no crash, no leak (the sanitize build checks), and the
 * run succeeds once allocations do. */
static void test_alloc_failures(void)
{
    int ok_events = 0, ok_csv = 0;

    for (long n = 0; n < 200 && !(ok_events && ok_csv); n++) {
        struct crs_catchup_row *row = NULL;
        struct crs_catchup_events evs;
        struct collect c = {0};
        char err[256];

        if (!ok_events) {
            row = issued_row(9, 21);
            crs_catchup_row_set_date(row, "Request.RevokedWhen", T0 + 1);
            crs_alloc_fail_after(n);
            int rc = crs_catchup_row_events(row, CA, 0, &evs);
            crs_alloc_fail_after(-1);
            CHECK(rc == 0 || rc == CRS_ENOMEM);
            if (rc == 0) {
                ok_events = 1;
                CHECK_EQ_INT(evs.count, 2);
                crs_catchup_events_free(&evs);
            } else {
                CHECK_EQ_INT(evs.count, 0);
            }
            crs_catchup_row_free(row);
        }
        if (!ok_csv) {
            FILE *f = text_file(certutil_csv, strlen(certutil_csv));
            crs_alloc_fail_after(n);
            int rc = crs_catchup_read_csv(f, NULL, on_row, &c, err, sizeof(err));
            crs_alloc_fail_after(-1);
            fclose(f);
            CHECK(rc == 0 || rc == CRS_ENOMEM);
            ok_csv = rc == 0 && c.n == 4;
        }
    }
    CHECK(ok_events);
    CHECK(ok_csv);
}

int main(void)
{
    test_row_setters();
    test_row_events();
    test_key();
    test_csv_certutil();
    test_csv_schema_names_and_12h();
    test_csv_malformed();
    test_csv_refused();
    test_csv_long_record();
    test_alloc_failures();
    return CHECK_DONE();
}
