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
 * The rows file is harness.c's (--rows), read by fcv_load_rows.
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

    nrows = fcv_load_rows(rows_path, fixtures, &rows);
    if (nrows < 0)
        die("cannot load the rows of %s", rows_path);
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
