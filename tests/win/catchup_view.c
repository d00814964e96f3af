/*
 * A CA database stand-in for `certrelay catchup` under Wine (tests/win/catchup_test.py).
 *
 * It serves a table of rows as the CA database through the fake CCertView (fake_certview.c),
 * registered with CoRegisterClassObject(CLSID_CCertView, ..., CLSCTX_INPROC_SERVER,
 * REGCLS_MULTIPLEUSE), then runs the real command, tool_catchup_main from tools/catchup.c, in this
 * process: its ordinary CoCreateInstance(CLSID_CCertView) gets the fake, and everything after the
 * view (rows to events, the admin pipe, the broker service, its dedup index) is the real thing.
 *
 *   catchup_view --fixtures DIR --rows FILE --ca-name NAME -- catchup --ca CONFIG --from-request N --pipe PIPE
 *
 * The rows file is harness.c's (--rows): request_id disposition submitted_ms resolved_ms
 * revoked_ms revoked_reason leaf_file serial sha1 not_before_ms not_after_ms dn cn template live,
 * tab-separated, "-" for EMPTY; the certificate column holds the leaf fixture's DER.
 *
 * Afterwards it prints what the view was asked, one fact per line, for the driver to check:
 *
 *   config <OpenConnection's string>        views <created> <opened>
 *   result <column>                          (every SetResultColumn, all views)
 *   restriction <column> <op> <sort> <value> (value: a number, or a date as Unix ms)
 *   rows_served <n>  binary_reads <n>  protocol_errors <n>  live_objects <n>
 *   exit <the command's exit code>
 *
 * Exit status: the command's, or 10 when the fake saw a protocol error or was not fully released.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_certview.h"
#include "commands.h"

#define ROW_FIELDS     15
#define MAX_FILE_BYTES (1024u * 1024u)
#define OLE_UNIX_EPOCH 25569.0

static void die(const char *fmt, const char *a)
{
    fprintf(stderr, "catchup_view: fatal: ");
    fprintf(stderr, fmt, a);
    fputc('\n', stderr);
    exit(2);
}

static WCHAR *wdup(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    WCHAR *w = n > 0 ? malloc((size_t)n * sizeof(WCHAR)) : NULL;

    if (w == NULL || MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n)
        die("cannot convert \"%s\" to UTF-16", s);
    return w;
}

static BYTE *read_der(const char *dir, const char *name, UINT *len)
{
    char path[MAX_PATH];
    BYTE *p;
    long n;
    FILE *f;

    snprintf(path, sizeof path, "%s\\%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        die("cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || (unsigned long)n > MAX_FILE_BYTES ||
        fseek(f, 0, SEEK_SET) != 0)
        die("cannot size %s", path);
    p = malloc((size_t)n);
    if (p == NULL || fread(p, 1, (size_t)n, f) != (size_t)n)
        die("cannot read %s", path);
    fclose(f);
    *len = (UINT)n;
    return p;
}

static int empty(const char *s)
{
    return strcmp(s, "-") == 0;
}

static void add_long(struct fcv_row *r, const WCHAR *name, const char *v)
{
    if (!empty(v))
        fcv_add(r, name, PROPTYPE_LONG)->l = atol(v);
}

static void add_date(struct fcv_row *r, const WCHAR *name, const char *ms)
{
    if (!empty(ms))
        fcv_add(r, name, PROPTYPE_DATE)->date =
            (double)_strtoi64(ms, NULL, 10) / 86400000.0 + OLE_UNIX_EPOCH;
}

static void add_str(struct fcv_row *r, const WCHAR *name, const char *v)
{
    if (!empty(v))
        fcv_add(r, name, PROPTYPE_STRING)->str = wdup(v);
}

/* One CA database row, as certsrv's view shows it: the request's columns always, the
 * certificate's when the request got one, EMPTY columns absent. */
static void build_row(struct fcv_row *r, char **col, const char *fixtures)
{
    long disposition = atol(col[1]);
    struct fcv_cell *c;

    memset(r, 0, sizeof(*r));
    add_long(r, L"Request.RequestID", col[0]);
    add_long(r, L"Request.Disposition", col[1]);
    fcv_add(r, L"Request.RequestType", PROPTYPE_LONG)->l = 0x100; /* CR_IN_PKCS10 */
    fcv_add(r, L"Request.StatusCode", PROPTYPE_LONG)->l = disposition == 31 ? (LONG)0x80094014 : 0;
    fcv_add(r, L"Request.DispositionMessage", PROPTYPE_STRING)->str =
        disposition == 9    ? L"Taken Under Submission"
        : disposition == 31 ? L"Denied by Policy Module"
        : disposition == 21 ? L"Revoked by CONTOSO\\admin"
                            : L"Issued";
    fcv_add(r, L"Request.RequesterName", PROPTYPE_STRING)->str = L"CONTOSO\\alice";
    fcv_add(r, L"Request.CallerName", PROPTYPE_STRING)->str = L"CONTOSO\\alice";
    add_date(r, L"Request.SubmittedWhen", col[2]);
    add_date(r, L"Request.ResolvedWhen", col[3]);
    add_date(r, L"Request.RevokedWhen", col[4]);
    add_date(r, L"Request.RevokedEffectiveWhen", col[4]);
    add_long(r, L"Request.RevokedReason", col[5]);
    if (empty(col[6]))
        return;
    c = fcv_add(r, L"RawCertificate", PROPTYPE_BINARY);
    c->bin = read_der(fixtures, col[6], &c->binlen);
    add_long(r, L"RequestID", col[0]);
    add_str(r, L"SerialNumber", col[7]);
    add_str(r, L"CertificateHash", col[8]);
    add_date(r, L"NotBefore", col[9]);
    add_date(r, L"NotAfter", col[10]);
    add_str(r, L"DistinguishedName", col[11]);
    add_str(r, L"CommonName", col[12]);
    add_str(r, L"CertificateTemplate", col[13]);
}

static int load_rows(const char *path, const char *fixtures, struct fcv_row **out)
{
    char line[8192];
    struct fcv_row *rows = NULL;
    int n = 0, cap = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        die("cannot open %s", path);
    while (fgets(line, sizeof line, f) != NULL) {
        char *col[ROW_FIELDS], *p = line, *tab;
        int k = 0;

        line[strcspn(line, "\r\n")] = '\0';
        while (k < ROW_FIELDS) {
            col[k++] = p;
            tab = strchr(p, '\t');
            if (tab == NULL)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (k != ROW_FIELDS)
            die("%s: a row with the wrong number of fields", path);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = realloc(rows, (size_t)cap * sizeof(*rows));
            if (rows == NULL)
                die("out of memory%s", "");
        }
        build_row(&rows[n++], col, fixtures);
    }
    fclose(f);
    *out = rows;
    return n;
}

static const char *op_name(LONG op)
{
    switch (op) {
    case CVR_SEEK_EQ:
        return "eq";
    case CVR_SEEK_LT:
        return "lt";
    case CVR_SEEK_LE:
        return "le";
    case CVR_SEEK_GE:
        return "ge";
    case CVR_SEEK_GT:
        return "gt";
    }
    return "?";
}

static const char *sort_name(LONG sort)
{
    return sort == CVR_SORT_ASCEND ? "ascend" : sort == CVR_SORT_DESCEND ? "descend" : "none";
}

int main(int argc, char **argv)
{
    const char *fixtures = NULL, *rows_path = NULL, *ca_name = NULL;
    struct fcv_row *rows = NULL;
    const struct fcv_record *rec;
    DWORD cookie = 0;
    HRESULT hr;
    int i, nrows, code;

    setvbuf(stdout, NULL, _IONBF, 0);
    for (i = 1; i + 1 < argc && strcmp(argv[i], "--") != 0; i += 2) {
        if (strcmp(argv[i], "--fixtures") == 0)
            fixtures = argv[i + 1];
        else if (strcmp(argv[i], "--rows") == 0)
            rows_path = argv[i + 1];
        else if (strcmp(argv[i], "--ca-name") == 0)
            ca_name = argv[i + 1];
    }
    if (fixtures == NULL || rows_path == NULL || ca_name == NULL || i >= argc ||
        strcmp(argv[i], "--") != 0 || i + 1 >= argc || strcmp(argv[i + 1], "catchup") != 0)
        die("usage: catchup_view --fixtures DIR --rows FILE --ca-name NAME -- catchup ARGS...%s",
            "");

    nrows = load_rows(rows_path, fixtures, &rows);
    fcv_set_table(rows, nrows);
    fcv_set_ca(wdup(ca_name));
    /* The class object lives in the multithreaded apartment; the reader joins it too. */
    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr))
        die("CoInitializeEx failed%s", "");
    hr = fcv_register(&cookie);
    if (FAILED(hr))
        die("CoRegisterClassObject(CCertView) failed%s", "");

    code = tool_catchup_main(argc - i - 1, argv + i + 1);
    fflush(stdout);
    fflush(stderr);

    rec = fcv_record();
    printf("config %ls\n", rec->config);
    printf("views %ld %ld\n", (long)rec->views_created, (long)rec->views_opened);
    for (int k = 0; k < rec->nresults; k++)
        printf("result %ls\n", rec->results[k]);
    for (int k = 0; k < rec->nrestrictions; k++) {
        const struct fcv_restriction *r = &rec->restrictions[k];

        if (r->vt == VT_DATE)
            printf("restriction %ls %s %s %lld\n", r->column, op_name(r->op), sort_name(r->sort),
                   (long long)((r->date - OLE_UNIX_EPOCH) * 86400000.0 + 0.5));
        else
            printf("restriction %ls %s %s %ld\n", r->column, op_name(r->op), sort_name(r->sort),
                   (long)r->l);
    }
    printf("rows_served %ld\n", (long)rec->rows_served);
    printf("binary_reads %ld\n", (long)rec->binary_reads);
    printf("protocol_errors %ld\n", (long)rec->protocol_errors);
    printf("live_objects %ld\n", (long)fcv_live_objects());
    printf("exit %d\n", code);

    CoRevokeClassObject(cookie);
    CoUninitialize();
    if (rec->protocol_errors != 0 || fcv_live_objects() != 0)
        return 10;
    return code;
}
