/*
 * The ICertView2 reader (catchup/win/view.c) against the fake CCertView, in-process under Wine:
 * the restriction of a --from-request run, the three views of a --since run with each row reaching
 * the callback once, values into the row model (UTF-16 to UTF-8, binary BSTRs, EMPTY columns),
 * the caps (a certificate over 64 KiB, a string over 4 KiB: an error naming the column and the
 * request id, or a reported and skipped row), the callback's stop, and the HRESULTs of a CA that
 * refuses or does not answer; after each read every object the fake handed out is released.
 */
#include <stdlib.h>
#include <string.h>

#include "fake_certview.h"
#include "certrelay/alloc.h"
#include "certrelay/catchup.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/timefmt.h"
#include "check.h"

#define CA     "ca01.contoso.test\\Contoso Issuing CA"
#define T0     1796693400000LL /* 2026-12-08 01:30 UTC */
#define MINUTE 60000LL

static const BYTE der[] = {0x30, 0x06, 0x02, 0x01, 0x05, 0x02, 0x01, 0x07};
static BYTE big[CRS_CATCHUP_BINARY_MAX + 1];
static WCHAR long_name[CRS_CATCHUP_STRING_MAX + 2];

static void add_long(struct fcv_row *r, const WCHAR *name, LONG v)
{
    fcv_add(r, name, PROPTYPE_LONG)->l = v;
}

static void add_date(struct fcv_row *r, const WCHAR *name, int64_t ms)
{
    fcv_add(r, name, PROPTYPE_DATE)->date = crs_time_to_ole_date(ms);
}

static void add_str(struct fcv_row *r, const WCHAR *name, const WCHAR *v)
{
    fcv_add(r, name, PROPTYPE_STRING)->str = v;
}

/* A request: submitted a minute before it was resolved; resolved/revoked -1 for EMPTY. */
static void request(struct fcv_row *r, LONG id, LONG disposition, int64_t submitted,
                    int64_t resolved, int64_t revoked)
{
    memset(r, 0, sizeof(*r));
    add_long(r, L"Request.RequestID", id);
    add_long(r, L"Request.Disposition", disposition);
    add_str(r, L"Request.RequesterName", L"CONTOSO\\alice");
    add_date(r, L"Request.SubmittedWhen", submitted);
    if (resolved >= 0)
        add_date(r, L"Request.ResolvedWhen", resolved);
    if (revoked >= 0) {
        add_date(r, L"Request.RevokedWhen", revoked);
        add_long(r, L"Request.RevokedReason", 1);
    }
    if (disposition == 20 || disposition == 21) {
        struct fcv_cell *c = fcv_add(r, L"RawCertificate", PROPTYPE_BINARY);

        c->bin = der;
        c->binlen = sizeof der;
        add_long(r, L"RequestID", id);
        add_str(r, L"SerialNumber", L"0a1b");
        add_str(r, L"CommonName", L"h\u00f6st.contoso.test");
        add_str(r, L"CertificateTemplate", L"WebServer");
    }
}

/* What the callback saw. */
struct seen {
    int n;
    int64_t ids[64];
    int events;
    int stop_after; /* 0: never */
    int bad;
    uint64_t bad_id;
    char bad_why[256];
    int checked_values;
};

static Certrelay__V1__Event *unpack(const struct crs_catchup_event *e)
{
    return certrelay__v1__event__unpack(&crs_protobuf_allocator, e->packed_len, e->packed);
}

static int on_row(void *ctx, const struct crs_catchup_row *row)
{
    struct seen *s = ctx;
    struct crs_catchup_events evs;
    int64_t id = crs_catchup_row_request_id(row);

    if (s->n < 64)
        s->ids[s->n] = id;
    s->n++;
    CHECK_EQ_INT(crs_catchup_row_events(row, CA, 0, &evs), 0);
    s->events += (int)evs.count;
    /* Request 3 is issued: every value made it through the VARIANTs. */
    if (id == 3 && evs.count == 1) {
        Certrelay__V1__Event *ev = unpack(&evs.ev[0]);

        CHECK(ev != NULL);
        if (ev != NULL) {
            CHECK_EQ_INT(ev->request->resolved_when_ms, T0 + 17345);
            CHECK_EQ_STR(ev->request->requester_name, "CONTOSO\\alice");
            CHECK(ev->certificate != NULL && ev->certificate->raw_certificate.len == sizeof der &&
                  memcmp(ev->certificate->raw_certificate.data, der, sizeof der) == 0);
            CHECK_EQ_STR(ev->certificate->common_name, "h\xc3\xb6st.contoso.test");
            s->checked_values = 1;
            certrelay__v1__event__free_unpacked(ev, &crs_protobuf_allocator);
        }
    }
    crs_catchup_events_free(&evs);
    return s->stop_after > 0 && s->n >= s->stop_after ? 5 : 0;
}

static void on_bad(void *ctx, uint64_t request_id, const char *why)
{
    struct seen *s = ctx;

    s->bad++;
    s->bad_id = request_id;
    snprintf(s->bad_why, sizeof s->bad_why, "%s", why);
}

static int count_of(const struct seen *s, int64_t id)
{
    int c = 0;

    for (int i = 0; i < s->n && i < 64; i++)
        c += s->ids[i] == id;
    return c;
}

static void check_released(void)
{
    CHECK_EQ_INT(fcv_live_objects(), 0);
    CHECK_EQ_INT(fcv_record()->protocol_errors, 0);
}

int main(void)
{
    static struct fcv_row rows[16];
    struct crs_catchup_filter flt;
    struct crs_catchup_csv_stats st;
    struct seen s;
    DWORD cookie = 0;
    char err[512];
    int rc, n = 0;

    CHECK(SUCCEEDED(CoInitializeEx(NULL, COINIT_MULTITHREADED)));
    CHECK(SUCCEEDED(fcv_register(&cookie)));
    fcv_set_ca(L"Contoso Issuing CA");

    request(&rows[n++], 2, 20, T0 - 10 * MINUTE, T0 - 9 * MINUTE, -1);
    request(&rows[n++], 3, 20, T0 - MINUTE, T0 + 17345, -1);
    request(&rows[n++], 4, 21, T0, T0 + MINUTE, T0 + 5 * MINUTE);
    request(&rows[n++], 5, 31, T0, T0 + MINUTE, -1);
    request(&rows[n++], 6, 9, T0 + 2 * MINUTE, -1, -1);
    /* Issued long ago, revoked in the window: found by its revocation date only. */
    request(&rows[n++], 7, 21, T0 - 90 * MINUTE, T0 - 89 * MINUTE, T0 + 7 * MINUTE);
    /* Pending since before the window. */
    request(&rows[n++], 8, 9, T0 - 30 * MINUTE, -1, -1);
    fcv_set_table(rows, n);

    /* --from-request 3: one view, RequestID >= 3 ascending; request 2 stays out. */
    memset(&s, 0, sizeof s);
    memset(&flt, 0, sizeof flt);
    flt.from_request = 3;
    fcv_reset_record();
    rc = crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(s.n, 6);
    CHECK(s.n == 6 && s.ids[0] == 3 && s.ids[5] == 8);
    CHECK_EQ_INT(count_of(&s, 2), 0);
    CHECK_EQ_INT(s.events, 8); /* 3, 4 (issued and revoked), 5, 6, 7 (two), 8 */
    CHECK(s.checked_values);
    CHECK_EQ_INT(fcv_record()->views_opened, 1);
    CHECK_EQ_INT(fcv_record()->nrestrictions, 1);
    CHECK(wcscmp(fcv_record()->restrictions[0].column, L"Request.RequestID") == 0 &&
          fcv_record()->restrictions[0].op == CVR_SEEK_GE && fcv_record()->restrictions[0].l == 3);
    CHECK(wcscmp(fcv_record()->config, L"ca01.contoso.test\\Contoso Issuing CA") == 0);
    check_released();

    /* --since T0 - 1 minute: three views, each row of the window once. */
    memset(&s, 0, sizeof s);
    memset(&flt, 0, sizeof flt);
    flt.since_ms = T0 - MINUTE;
    fcv_reset_record();
    rc = crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(fcv_record()->views_opened, 3);
    CHECK_EQ_INT(count_of(&s, 3), 1);
    CHECK_EQ_INT(count_of(&s, 4), 1); /* resolved and revoked in the window: the first view */
    CHECK_EQ_INT(count_of(&s, 5), 1);
    CHECK_EQ_INT(count_of(&s, 6), 1); /* pending: the third view */
    CHECK_EQ_INT(count_of(&s, 7), 1); /* revoked in the window: the second view */
    CHECK_EQ_INT(count_of(&s, 2), 0);
    CHECK_EQ_INT(count_of(&s, 8), 0);
    CHECK_EQ_INT(s.n, 5);
    check_released();

    /* --since with pending only: the pending view alone. */
    memset(&s, 0, sizeof s);
    flt.kinds = CRS_EVENT_PENDING;
    fcv_reset_record();
    CHECK_EQ_INT(crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err), 0);
    CHECK_EQ_INT(fcv_record()->views_opened, 1);
    CHECK_EQ_INT(s.n, 1);
    check_released();

    /* The callback's stop is the read's result. */
    memset(&s, 0, sizeof s);
    memset(&flt, 0, sizeof flt);
    flt.from_request = 1;
    s.stop_after = 2;
    CHECK_EQ_INT(crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err), 5);
    CHECK_EQ_INT(s.n, 2);
    check_released();

    /* A CA name alone is the CA on this machine. */
    memset(&s, 0, sizeof s);
    fcv_reset_record();
    CHECK_EQ_INT(crs_catchup_read_view("Contoso Issuing CA", &flt, on_row, &s, err, sizeof err), 0);
    CHECK(wcslen(fcv_record()->config) > 19 &&
          wcscmp(wcschr(fcv_record()->config, L'\\'), L"\\Contoso Issuing CA") == 0);
    check_released();

    /* A CA that refuses, one that does not answer, one that does not exist. */
    memset(&s, 0, sizeof s);
    fcv_fail_connection(E_ACCESSDENIED);
    CHECK_EQ_INT(crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err), CRS_EACCES);
    CHECK(strstr(err, "access denied") != NULL && strstr(err, "OpenConnection") != NULL);
    fcv_fail_connection((HRESULT)0x800706BAL);
    CHECK_EQ_INT(crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err), CRS_ECONNREFUSED);
    CHECK(strstr(err, "not reachable") != NULL);
    fcv_fail_connection(S_OK);
    CHECK_EQ_INT(crs_catchup_read_view("ca01\\Other CA", &flt, on_row, &s, err, sizeof err),
                 CRS_ENOENT);
    CHECK_EQ_INT(s.n, 0);
    CHECK_EQ_INT(crs_catchup_read_view("", &flt, on_row, &s, err, sizeof err), CRS_EINVAL);
    check_released();

    /* A certificate over 64 KiB: an error naming the column and the request, or with bad_cb a
     * reported and skipped row. */
    request(&rows[n], 9, 20, T0, T0 + MINUTE, -1);
    for (int i = 0; i < rows[n].ncells; i++)
        if (wcscmp(rows[n].cells[i].name, L"RawCertificate") == 0) {
            rows[n].cells[i].bin = big;
            rows[n].cells[i].binlen = sizeof big;
        }
    n++;
    /* A common name over 4 KiB. */
    for (size_t i = 0; i + 1 < sizeof long_name / sizeof long_name[0]; i++)
        long_name[i] = L'a';
    request(&rows[n], 10, 20, T0, T0 + MINUTE, -1);
    for (int i = 0; i < rows[n].ncells; i++)
        if (wcscmp(rows[n].cells[i].name, L"CommonName") == 0)
            rows[n].cells[i].str = long_name;
    n++;
    fcv_set_table(rows, n);
    memset(&s, 0, sizeof s);
    flt.from_request = 9;
    rc = crs_catchup_read_view(CA, &flt, on_row, &s, err, sizeof err);
    CHECK_EQ_INT(rc, CRS_ETOOBIG);
    CHECK(strstr(err, "request 9") != NULL && strstr(err, "RawCertificate") != NULL);
    CHECK_EQ_INT(s.n, 0);
    check_released();
    memset(&s, 0, sizeof s);
    flt.from_request = 1;
    rc = crs_catchup_read_view2(CA, &flt, on_row, on_bad, &s, &st, err, sizeof err);
    CHECK_EQ_INT(rc, 0);
    CHECK_EQ_INT(s.bad, 2);
    CHECK_EQ_INT(s.bad_id, 10);
    CHECK(strstr(s.bad_why, "request 10") != NULL && strstr(s.bad_why, "CommonName") != NULL);
    CHECK_EQ_INT(s.n, 7); /* the seven good rows */
    CHECK_EQ_INT(st.rows, 9);
    CHECK_EQ_INT(st.matched, 7);
    CHECK_EQ_INT(st.bad, 2);
    check_released();

    CoRevokeClassObject(cookie);
    CoUninitialize();
    return CHECK_DONE();
}
