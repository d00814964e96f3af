/*
 * The ICertView2 row source: the CA database read the way `certutil -view` reads it.
 *
 *   CoCreateInstance(CLSID_CCertView) -> OpenConnection("HOST\CA Name")
 *   GetColumnIndex(schema name) for each column of the row model
 *   SetResultColumnCount(n), SetResultColumn(index) x n
 *   SetRestriction(column, CVR_SEEK_GE, CVR_SORT_ASCEND, value) ...    (ANDed by certsrv)
 *   OpenView -> IEnumCERTVIEWROW: Next (S_FALSE at the end) -> EnumCertViewColumn ->
 *   IEnumCERTVIEWCOLUMN: Next, GetName, GetValue(CV_OUT_BINARY)
 *
 * Values arrive as VARIANTs: VT_I4 for LONG columns, VT_DATE for DATE, VT_BSTR for STRING and,
 * with CV_OUT_BINARY, VT_BSTR holding the raw bytes for BINARY (sized with SysStringByteLen); an
 * EMPTY column is VT_EMPTY and is left unset in the row.
 *
 * Restrictions. certsrv ANDs every restriction of a view, but a row belongs to a "since" window
 * through any of three dates: issued and denied rows by Request.ResolvedWhen, revocations by
 * Request.RevokedWhen (a certificate issued years ago can be revoked today), pending rows by
 * Request.SubmittedWhen. So a --since run opens one view per date (only those the kinds need),
 * each restricted on its date with the database's index, plus Request.RequestID >= from_request
 * when given; a row the earlier view already produced (its resolved date is in the window, for
 * the revoked view; resolved or revoked, for the pending view) is skipped by the later ones, so
 * each row reaches the callback once. Reading everything and filtering here instead would walk
 * the whole database of a CA with years of history for every scheduled run. A --from-request run
 * is one view restricted on Request.RequestID, in ascending order. Every row then still goes
 * through crs_catchup_filter_match, the one definition of what a filter lets through.
 *
 * Bounds: at most CRS_CATCHUP_VIEW_ROWS_MAX rows per run (then CRS_ETOOBIG with the request id
 * to continue from), the row model's caps on every value (checked before anything is copied), a
 * bound on the columns of a row. Every COM pointer, BSTR and VARIANT is released on every path.
 * COM is initialised on the calling thread for the duration of the call (multithreaded
 * apartment, or the apartment the thread already has), so the CLI's main thread and a broker
 * worker thread can both call it.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "certview_guids.h"
#include "certrelay/alloc.h"
#include "certrelay/catchup.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/printf.h"
#include "certrelay/text.h"
#include "certrelay/timefmt.h"
#include "certrelay/win/wstr.h"

/* Longest column name we compare (GetName); schema names are short ASCII. */
#define VIEW_NAME_MAX 128
/* certsrv's enumerations end with S_FALSE; this bounds a misbehaving server anyway. */
#define VIEW_COLUMNS_PER_ROW_MAX 64

/* The facilities and codes a CA connection fails with that deserve their own sentence. */
#define VIEW_E_RPC_UNAVAILABLE ((HRESULT)0x800706BAL) /* RPC_S_SERVER_UNAVAILABLE */
#define VIEW_E_EPT_NOT_REG     ((HRESULT)0x800706D9L) /* EPT_S_NOT_REGISTERED */
#define VIEW_E_CA_NOT_FOUND    ((HRESULT)0x80070002L) /* ERROR_FILE_NOT_FOUND */
#define VIEW_E_PROPERTY_EMPTY  ((HRESULT)0x80094004L) /* CERTSRV_E_PROPERTY_EMPTY */

#define DISPOSITION_PENDING 9

/* ------------------------------------------------------------------------------------------ */
/* The columns                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * What the row model needs, by the schema names ICertView knows. The request's own id is
 * "Request.RequestID": the certificate table's "RequestID" is EMPTY for a request that never got
 * a certificate (denied, pending). The row model calls it RequestID.
 */
struct view_column {
    const char *schema; /* for GetColumnIndex and GetName */
    const char *row;    /* for the crs_catchup_row setters */
    LONG type;          /* PROPTYPE_* */
    int required;
};

static const struct view_column view_columns[] = {
    {"Request.RequestID", "RequestID", PROPTYPE_LONG, 1},
    {"Request.Disposition", "Request.Disposition", PROPTYPE_LONG, 1},
    {"Request.DispositionMessage", "Request.DispositionMessage", PROPTYPE_STRING, 0},
    {"Request.StatusCode", "Request.StatusCode", PROPTYPE_LONG, 0},
    {"Request.RequesterName", "Request.RequesterName", PROPTYPE_STRING, 0},
    {"Request.CallerName", "Request.CallerName", PROPTYPE_STRING, 0},
    {"Request.SubmittedWhen", "Request.SubmittedWhen", PROPTYPE_DATE, 0},
    {"Request.ResolvedWhen", "Request.ResolvedWhen", PROPTYPE_DATE, 0},
    {"Request.RevokedWhen", "Request.RevokedWhen", PROPTYPE_DATE, 0},
    {"Request.RevokedEffectiveWhen", "Request.RevokedEffectiveWhen", PROPTYPE_DATE, 0},
    {"Request.RevokedReason", "Request.RevokedReason", PROPTYPE_LONG, 0},
    {"Request.RequestType", "Request.RequestType", PROPTYPE_LONG, 0},
    {"CertificateTemplate", "CertificateTemplate", PROPTYPE_STRING, 0},
    {"SerialNumber", "SerialNumber", PROPTYPE_STRING, 0},
    {"NotBefore", "NotBefore", PROPTYPE_DATE, 0},
    {"NotAfter", "NotAfter", PROPTYPE_DATE, 0},
    {"RawCertificate", "RawCertificate", PROPTYPE_BINARY, 0},
    {"DistinguishedName", "DistinguishedName", PROPTYPE_STRING, 0},
    {"CommonName", "CommonName", PROPTYPE_STRING, 0},
    {"UPN", "UPN", PROPTYPE_STRING, 0},
    {"CertificateHash", "CertificateHash", PROPTYPE_STRING, 0},
    {"EMail", "EMail", PROPTYPE_STRING, 0},
};

#define VIEW_NCOLUMNS (sizeof(view_columns) / sizeof(view_columns[0]))

/* The passes of one run (see the banner). */
enum view_pass { PASS_REQUEST_ID, PASS_RESOLVED, PASS_REVOKED, PASS_PENDING };

static const char *const pass_date_column[] = {NULL, "Request.ResolvedWhen", "Request.RevokedWhen",
                                               "Request.SubmittedWhen"};

/* One run's state across its passes. */
struct view_run {
    const char *ca_config;
    char config[CRS_CATCHUP_CA_MAX + 320]; /* HOST\CA Name, for OpenConnection */
    const struct crs_catchup_filter *flt;
    crs_catchup_row_cb cb;
    crs_catchup_bad_cb bad_cb;
    void *ctx;
    struct crs_catchup_csv_stats *stats;
    struct crs_catchup_row *row;
    int ran_resolved; /* the passes that ran before, for skipping what they produced */
    int ran_revoked;
    uint64_t rows; /* across passes, against CRS_CATCHUP_VIEW_ROWS_MAX */
    int64_t last_request_id;
    char *err;
    size_t errlen;
};

/* What one row said about itself, for the skip rules and the messages. */
struct view_row_info {
    int64_t request_id;
    int64_t resolved_ms, revoked_ms; /* -1 when EMPTY */
};

static void set_err(struct view_run *run, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)));

/* The sentence of a failure, for the caller's err buffer. */
static void set_err(struct view_run *run, const char *fmt, ...)
{
    va_list ap;

    if (run->err == NULL || run->errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(run->err, run->errlen, fmt, ap);
    va_end(ap);
}

/*
 * The HRESULT of a CA connection or view call as a CRS_E* code and a sentence an administrator
 * can act on. `what` names the call.
 */
static int view_error(struct view_run *run, HRESULT hr, const char *what)
{
    const char *why;
    int rc;

    switch (hr) {
    case E_ACCESSDENIED:
        why = "access denied: the account needs read access to the CA database (a CA "
              "administrator, a certificate manager (Officer) or an Auditor, run elevated)";
        rc = CRS_EACCES;
        break;
    case VIEW_E_RPC_UNAVAILABLE:
    case VIEW_E_EPT_NOT_REG:
        why = "the CA is not reachable (is the Certificate Services service running, and is "
              "the configuration string HOST\\CA Name right?)";
        rc = CRS_ECONNREFUSED;
        break;
    case VIEW_E_CA_NOT_FOUND:
        why = "no such CA (the configuration string is HOST\\CA Name, as certutil -dump shows it)";
        rc = CRS_ENOENT;
        break;
    case REGDB_E_CLASSNOTREG:
        why = "CCertView is not registered on this machine (certadm.dll comes with the CA role "
              "and with the Certification Authority Tools of RSAT)";
        rc = CRS_ENOTSUP;
        break;
    case E_OUTOFMEMORY:
        why = "out of memory";
        rc = CRS_ENOMEM;
        break;
    case E_INVALIDARG:
        why = "invalid argument";
        rc = CRS_EINVAL;
        break;
    default:
        why = "failed";
        rc = HRESULT_FACILITY(hr) == FACILITY_WIN32 ? crs_translate_sys_error((int)HRESULT_CODE(hr))
                                                    : CRS_EIO;
        if (rc == 0 || rc == CRS_EINVAL)
            rc = CRS_EIO;
        break;
    }
    set_err(run, "%s: %s (0x%08lx)", what, why, (unsigned long)hr);
    return rc;
}

/* A fresh BSTR of an ASCII/UTF-8 name. */
static int name_bstr(const char *name, BSTR *out)
{
    WCHAR *w = NULL;
    int rc;

    *out = NULL;
    rc = crs_win_wide(name, CRS_WSTR_STRICT, &w);
    if (rc != 0)
        return rc;
    *out = SysAllocString(w);
    crs_free(w);
    return *out != NULL ? 0 : CRS_ENOMEM;
}

static const struct view_column *column_by_name(BSTR name)
{
    char *utf8 = NULL;
    const struct view_column *found = NULL;

    if (name == NULL ||
        crs_win_utf8(name, (int)SysStringLen(name), VIEW_NAME_MAX, &utf8, NULL) != 0)
        return NULL;
    for (size_t i = 0; i < VIEW_NCOLUMNS; i++) {
        if (crs_ascii_casecmp(utf8, view_columns[i].schema) == 0) {
            found = &view_columns[i];
            break;
        }
    }
    crs_free(utf8);
    return found;
}

/*
 * The configuration string OpenConnection needs, "HOST\CA Name". A name alone (what certsrv
 * gives the exit module, so what the broker knows from live events) means the CA on this
 * machine, whose host is this computer's DNS name.
 */
static int full_config(struct view_run *run)
{
    WCHAR host[256];
    DWORD n = sizeof host / sizeof host[0];
    char *utf8 = NULL;
    int rc;

    if (strchr(run->ca_config, '\\') != NULL) {
        snprintf(run->config, sizeof run->config, "%s", run->ca_config);
        return 0;
    }
    if (!GetComputerNameExW(ComputerNameDnsFullyQualified, host, &n) || n == 0) {
        set_err(run,
                "the CA \"%s\" is taken to be on this machine, whose DNS name is not known "
                "(error %lu): give HOST\\CA Name",
                run->ca_config, (unsigned long)GetLastError());
        return CRS_ENOENT;
    }
    rc = crs_win_utf8(host, (int)n, 255, &utf8, NULL);
    if (rc != 0)
        return rc;
    snprintf(run->config, sizeof run->config, "%s\\%s", utf8, run->ca_config);
    crs_free(utf8);
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Opening a view                                                                              */
/* ------------------------------------------------------------------------------------------ */

/* SetRestriction(column, op, sort, value) with the column found by its schema name. */
static int restrict_column(struct view_run *run, ICertView2 *view, const char *column, LONG op,
                           LONG sort, const VARIANT *value)
{
    BSTR bname = NULL;
    LONG index = 0;
    HRESULT hr;
    int rc;
    char what[128];

    rc = name_bstr(column, &bname);
    if (rc != 0)
        return rc;
    hr = ICertView2_GetColumnIndex(view, CVRC_COLUMN_SCHEMA, bname, &index);
    SysFreeString(bname);
    snprintf(what, sizeof what, "GetColumnIndex(%s)", column);
    if (FAILED(hr))
        return view_error(run, hr, what);
    hr = ICertView2_SetRestriction(view, index, op, sort, value);
    snprintf(what, sizeof what, "SetRestriction(%s)", column);
    if (FAILED(hr))
        return view_error(run, hr, what);
    return 0;
}

/*
 * A connected view of the pass's rows with exactly the row model's columns, opened. A column this
 * CA's schema lacks is left out unless the row model cannot do without it.
 */
static int open_view(struct view_run *run, enum view_pass pass, IEnumCERTVIEWROW **out)
{
    ICertView2 *view = NULL;
    BSTR bconfig = NULL, bname = NULL;
    LONG index[VIEW_NCOLUMNS];
    size_t n = 0;
    VARIANT value;
    HRESULT hr;
    int rc;
    char what[160];

    *out = NULL;
    VariantInit(&value);
    hr = CoCreateInstance(&CLSID_CCertView, NULL, CLSCTX_INPROC_SERVER, &IID_ICertView2,
                          (void **)&view);
    if (FAILED(hr)) {
        rc = view_error(run, hr, "CoCreateInstance(CCertView)");
        goto cleanup;
    }
    rc = name_bstr(run->config, &bconfig);
    if (rc != 0) {
        set_err(run, "the CA configuration string is not valid UTF-8");
        goto cleanup;
    }
    hr = ICertView2_OpenConnection(view, bconfig);
    if (FAILED(hr)) {
        snprintf(what, sizeof what, "OpenConnection(\"%.120s\")", run->config);
        rc = view_error(run, hr, what);
        goto cleanup;
    }

    for (size_t i = 0; i < VIEW_NCOLUMNS; i++) {
        rc = name_bstr(view_columns[i].schema, &bname);
        if (rc != 0)
            goto cleanup;
        hr = ICertView2_GetColumnIndex(view, CVRC_COLUMN_SCHEMA, bname, &index[n]);
        SysFreeString(bname);
        bname = NULL;
        if (SUCCEEDED(hr)) {
            n++;
        } else if (view_columns[i].required) {
            snprintf(what, sizeof what, "GetColumnIndex(%s)", view_columns[i].schema);
            rc = view_error(run, hr, what);
            goto cleanup;
        }
    }
    hr = ICertView2_SetResultColumnCount(view, (LONG)n);
    if (FAILED(hr)) {
        rc = view_error(run, hr, "SetResultColumnCount");
        goto cleanup;
    }
    for (size_t i = 0; i < n; i++) {
        hr = ICertView2_SetResultColumn(view, index[i]);
        if (FAILED(hr)) {
            rc = view_error(run, hr, "SetResultColumn");
            goto cleanup;
        }
    }

    /* The pass's date first (it orders the view), then the request id bound. */
    if (pass != PASS_REQUEST_ID) {
        V_VT(&value) = VT_DATE;
        V_DATE(&value) = crs_time_to_ole_date(run->flt->since_ms);
        rc = restrict_column(run, view, pass_date_column[pass], CVR_SEEK_GE, CVR_SORT_ASCEND,
                             &value);
        if (rc != 0)
            goto cleanup;
    }
    if (pass == PASS_PENDING) {
        V_VT(&value) = VT_I4;
        V_I4(&value) = DISPOSITION_PENDING;
        rc = restrict_column(run, view, "Request.Disposition", CVR_SEEK_EQ, CVR_SORT_NONE, &value);
        if (rc != 0)
            goto cleanup;
    }
    if (pass == PASS_REQUEST_ID || run->flt->from_request > 0) {
        int64_t from = run->flt->from_request > 0 ? run->flt->from_request : 1;

        if (from > LONG_MAX) {
            rc = CRS_ERANGE;
            set_err(run, "--from-request %lld is beyond certsrv's request ids (at most %ld)",
                    (long long)from, (long)LONG_MAX);
            goto cleanup;
        }
        V_VT(&value) = VT_I4;
        V_I4(&value) = (LONG)from;
        rc = restrict_column(run, view, "Request.RequestID", CVR_SEEK_GE,
                             pass == PASS_REQUEST_ID ? CVR_SORT_ASCEND : CVR_SORT_NONE, &value);
        if (rc != 0)
            goto cleanup;
    }

    hr = ICertView2_OpenView(view, out);
    if (FAILED(hr)) {
        *out = NULL;
        rc = view_error(run, hr, "OpenView");
        goto cleanup;
    }
    rc = 0;

cleanup:
    /* The row enumerator keeps its own reference to what it needs of the view. */
    if (view != NULL)
        ICertView2_Release(view);
    SysFreeString(bconfig);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading a row                                                                               */
/* ------------------------------------------------------------------------------------------ */

/*
 * Puts one VARIANT into the row under the column's row-model name. Sizes are checked before
 * anything is copied. *why gets a sentence on failure (without the request id, added by the
 * caller).
 */
static int set_value(struct view_run *run, struct view_row_info *info,
                     const struct view_column *col, const VARIANT *v, const char **why)
{
    int64_t ms;
    char *utf8 = NULL;
    int rc;

    *why = NULL;
    if (V_VT(v) == VT_EMPTY || V_VT(v) == VT_NULL)
        return 0;
    switch (col->type) {
    case PROPTYPE_LONG: {
        /* VT_I4 as a rule; Microsoft's own sample reader accepts VT_I2 as well. */
        LONG l;

        if (V_VT(v) == VT_I4)
            l = V_I4(v);
        else if (V_VT(v) == VT_I2)
            l = V_I2(v);
        else if (V_VT(v) == VT_INT)
            l = V_INT(v);
        else {
            *why = "is not a LONG (VT_I4)";
            return CRS_EPROTO;
        }
        if (strcmp(col->row, "RequestID") == 0)
            info->request_id = l;
        return crs_catchup_row_set_long(run->row, col->row, l);
    }
    case PROPTYPE_DATE:
        if (V_VT(v) != VT_DATE) {
            *why = "is not a DATE (VT_DATE)";
            return CRS_EPROTO;
        }
        rc = crs_time_from_ole_date(V_DATE(v), &ms);
        if (rc != 0) {
            *why = "is a date outside the years 100 to 9999";
            return rc;
        }
        if (strcmp(col->schema, "Request.ResolvedWhen") == 0)
            info->resolved_ms = ms;
        else if (strcmp(col->schema, "Request.RevokedWhen") == 0)
            info->revoked_ms = ms;
        return crs_catchup_row_set_date(run->row, col->row, ms);
    case PROPTYPE_BINARY:
        if (V_VT(v) != VT_BSTR) {
            *why = "is not binary (VT_BSTR with CV_OUT_BINARY)";
            return CRS_EPROTO;
        }
        if (SysStringByteLen(V_BSTR(v)) > CRS_CATCHUP_BINARY_MAX) {
            *why = "is larger than 64 KiB";
            return CRS_ETOOBIG;
        }
        return crs_catchup_row_set_binary(run->row, col->row, (const uint8_t *)V_BSTR(v),
                                          SysStringByteLen(V_BSTR(v)));
    case PROPTYPE_STRING:
        if (V_VT(v) != VT_BSTR) {
            *why = "is not a string (VT_BSTR)";
            return CRS_EPROTO;
        }
        rc = crs_win_utf8(V_BSTR(v), (int)SysStringLen(V_BSTR(v)), CRS_CATCHUP_STRING_MAX, &utf8,
                          NULL);
        if (rc == CRS_ETOOBIG) {
            *why = "is longer than 4 KiB";
            return rc;
        }
        if (rc != 0)
            return rc;
        rc = crs_catchup_row_set_string(run->row, col->row, utf8);
        crs_free(utf8);
        return rc;
    }
    return CRS_EINVAL;
}

/*
 * Fills run->row from the row enumerator's current row. A value that breaks a bound or has the
 * wrong type gives an error with *bad set and the reason in run->err (naming the column and the
 * request id); a failing COM call gives an error with *bad clear.
 */
static int read_row(struct view_run *run, IEnumCERTVIEWROW *rows, struct view_row_info *info,
                    int *bad)
{
    IEnumCERTVIEWCOLUMN *cols = NULL;
    BSTR name = NULL;
    VARIANT v;
    LONG ci;
    HRESULT hr;
    int rc = 0;
    const char *why = NULL;
    const struct view_column *col = NULL;

    *bad = 0;
    VariantInit(&v);
    info->request_id = -1;
    info->resolved_ms = info->revoked_ms = -1;
    crs_catchup_row_reset(run->row);
    hr = IEnumCERTVIEWROW_EnumCertViewColumn(rows, &cols);
    if (FAILED(hr)) {
        cols = NULL;
        return view_error(run, hr, "EnumCertViewColumn");
    }
    for (int i = 0;; i++) {
        if (i > VIEW_COLUMNS_PER_ROW_MAX) {
            set_err(run, "the view's rows have more than %d columns", VIEW_COLUMNS_PER_ROW_MAX);
            rc = CRS_EPROTO;
            goto cleanup;
        }
        hr = IEnumCERTVIEWCOLUMN_Next(cols, &ci);
        if (hr == S_FALSE)
            break;
        if (FAILED(hr)) {
            rc = view_error(run, hr, "IEnumCERTVIEWCOLUMN::Next");
            goto cleanup;
        }
        hr = IEnumCERTVIEWCOLUMN_GetName(cols, &name);
        if (FAILED(hr)) {
            name = NULL;
            rc = view_error(run, hr, "IEnumCERTVIEWCOLUMN::GetName");
            goto cleanup;
        }
        col = column_by_name(name);
        SysFreeString(name);
        name = NULL;
        if (col == NULL)
            continue; /* not ours: ignored, as the row model ignores unknown columns */
        hr = IEnumCERTVIEWCOLUMN_GetValue(cols, CV_OUT_BINARY, &v);
        if (hr == VIEW_E_PROPERTY_EMPTY) {
            /* As ICertServerExit says it: an EMPTY value, left unset like VT_EMPTY. */
            VariantClear(&v);
            continue;
        }
        if (FAILED(hr)) {
            rc = view_error(run, hr, "IEnumCERTVIEWCOLUMN::GetValue");
            goto cleanup;
        }
        rc = set_value(run, info, col, &v, &why);
        VariantClear(&v);
        if (rc != 0) {
            *bad = 1;
            if (why == NULL)
                why = crs_catchup_row_error(run->row)[0] != '\0' ? crs_catchup_row_error(run->row)
                                                                 : crs_strerror(rc);
            if (info->request_id >= 0)
                set_err(run, "request %lld: column %s %s", (long long)info->request_id, col->schema,
                        why);
            else
                set_err(run, "a request without a RequestID: column %s %s", col->schema, why);
            goto cleanup;
        }
    }
    if (info->request_id < 0) {
        *bad = 1;
        set_err(run, "a row of the view has no Request.RequestID");
        rc = CRS_EPROTO;
    }

cleanup:
    VariantClear(&v);
    SysFreeString(name);
    IEnumCERTVIEWCOLUMN_Release(cols);
    return rc;
}

/* True when an earlier pass of this run already produced the row. */
static int seen_before(const struct view_run *run, enum view_pass pass,
                       const struct view_row_info *info)
{
    int64_t since = run->flt->since_ms;

    if (pass == PASS_REVOKED)
        return run->ran_resolved && info->resolved_ms >= since;
    if (pass == PASS_PENDING)
        return (run->ran_resolved && info->resolved_ms >= since) ||
               (run->ran_revoked && info->revoked_ms >= since);
    return 0;
}

static int run_pass(struct view_run *run, enum view_pass pass)
{
    IEnumCERTVIEWROW *rows = NULL;
    struct view_row_info info;
    LONG index;
    HRESULT hr;
    int rc, bad;

    rc = open_view(run, pass, &rows);
    if (rc != 0)
        return rc;
    for (;;) {
        hr = IEnumCERTVIEWROW_Next(rows, &index);
        if (hr == S_FALSE)
            break;
        if (FAILED(hr)) {
            rc = view_error(run, hr, "IEnumCERTVIEWROW::Next");
            goto cleanup;
        }
        if (run->rows >= CRS_CATCHUP_VIEW_ROWS_MAX) {
            rc = CRS_ETOOBIG;
            if (pass == PASS_REQUEST_ID)
                set_err(run,
                        "stopped after %llu rows, the most one run reads; run again with "
                        "--from-request %lld",
                        (unsigned long long)run->rows, (long long)run->last_request_id + 1);
            else
                set_err(run,
                        "stopped after %llu rows, the most one run reads; catch up in "
                        "--from-request ranges instead of one --since window",
                        (unsigned long long)run->rows);
            goto cleanup;
        }
        run->rows++;
        if (run->stats != NULL)
            run->stats->rows++;
        rc = read_row(run, rows, &info, &bad);
        if (rc != 0 && bad && run->bad_cb != NULL) {
            /* Reported and skipped: one broken row must not stop every later catch-up. */
            if (run->stats != NULL)
                run->stats->bad++;
            run->bad_cb(run->ctx, info.request_id >= 0 ? (uint64_t)info.request_id : 0, run->err);
            continue;
        }
        if (rc != 0)
            goto cleanup;
        if (info.request_id > run->last_request_id)
            run->last_request_id = info.request_id;
        if (seen_before(run, pass, &info) || !crs_catchup_filter_match(run->flt, run->row))
            continue;
        if (run->stats != NULL)
            run->stats->matched++;
        rc = run->cb(run->ctx, run->row);
        if (rc != 0)
            goto cleanup;
    }
    rc = 0;

cleanup:
    IEnumCERTVIEWROW_Release(rows);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Entry points                                                                                */
/* ------------------------------------------------------------------------------------------ */

int crs_catchup_read_view2(const char *ca_config, const struct crs_catchup_filter *flt,
                           crs_catchup_row_cb cb, crs_catchup_bad_cb bad_cb, void *ctx,
                           struct crs_catchup_csv_stats *stats, char *err, size_t errlen)
{
    struct view_run run;
    struct crs_catchup_filter f;
    HRESULT hr;
    int co_init = 0, rc;
    char own_err[512];

    /* The sentence of a skipped row goes to bad_cb even when the caller wants no err. */
    if (err == NULL || errlen == 0) {
        err = own_err;
        errlen = sizeof own_err;
    }
    err[0] = '\0';
    if (stats != NULL)
        memset(stats, 0, sizeof(*stats));
    if (ca_config == NULL || ca_config[0] == '\0' || flt == NULL || cb == NULL) {
        snprintf(err, errlen, "a CA configuration string (HOST\\CA Name) is required");
        return CRS_EINVAL;
    }
    if (strlen(ca_config) > CRS_CATCHUP_CA_MAX) {
        snprintf(err, errlen, "the CA configuration string is longer than %u bytes",
                 CRS_CATCHUP_CA_MAX);
        return CRS_ETOOBIG;
    }
    f = *flt;
    if (f.kinds == 0)
        f.kinds = CRS_CATCHUP_KINDS;
    memset(&run, 0, sizeof run);
    run.ca_config = ca_config;
    run.flt = &f;
    run.cb = cb;
    run.bad_cb = bad_cb;
    run.ctx = ctx;
    run.stats = stats;
    run.err = err;
    run.errlen = errlen;
    run.last_request_id = f.from_request > 0 ? f.from_request - 1 : 0;

    /* A thread that has no apartment yet gets the multithreaded one for this call; a thread in
     * a single-threaded apartment (RPC_E_CHANGED_MODE) is used as it is. */
    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (SUCCEEDED(hr))
        co_init = 1;
    else if (hr != RPC_E_CHANGED_MODE) {
        rc = view_error(&run, hr, "CoInitializeEx");
        goto cleanup;
    }
    rc = full_config(&run);
    if (rc != 0)
        goto cleanup;
    rc = crs_catchup_row_new(&run.row);
    if (rc != 0) {
        set_err(&run, "out of memory");
        goto cleanup;
    }

    if (f.since_ms <= 0) {
        rc = run_pass(&run, PASS_REQUEST_ID);
        goto cleanup;
    }
    if (f.kinds & (CRS_EVENT_ISSUED | CRS_EVENT_DENIED | CRS_EVENT_REVOKED)) {
        rc = run_pass(&run, PASS_RESOLVED);
        if (rc != 0)
            goto cleanup;
        run.ran_resolved = 1;
    }
    if (f.kinds & CRS_EVENT_REVOKED) {
        rc = run_pass(&run, PASS_REVOKED);
        if (rc != 0)
            goto cleanup;
        run.ran_revoked = 1;
    }
    if (f.kinds & CRS_EVENT_PENDING)
        rc = run_pass(&run, PASS_PENDING);

cleanup:
    crs_catchup_row_free(run.row);
    if (co_init)
        CoUninitialize();
    return rc;
}

int crs_catchup_read_view(const char *ca_config, const struct crs_catchup_filter *flt,
                          crs_catchup_row_cb cb, void *ctx, char *err, size_t errlen)
{
    return crs_catchup_read_view2(ca_config, flt, cb, NULL, ctx, NULL, err, errlen);
}
