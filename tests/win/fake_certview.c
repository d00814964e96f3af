/*
 * The fake CCertView (see fake_certview.h), in C the way Wine writes COM objects: a struct per
 * object with its interface first and an interlocked refcount, impl_from_* with
 * CONTAINING_RECORD, one static vtable per interface, a static class factory. Calls a reader has
 * no business making (IDispatch, the attribute and extension enumerators, a second OpenView, a
 * binary column read without CV_OUT_BINARY) are counted in the record as protocol errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_certview.h"

/* ------------------------------------------------------------------------------------------ */
/* The schema and the table                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* certsrv's Request and Certificate columns (a subset, with some the reader does not need). */
static const struct {
    const WCHAR *name;
    LONG type;
} schema[] = {
    {L"Request.RequestID", PROPTYPE_LONG},
    {L"Request.RawRequest", PROPTYPE_BINARY},
    {L"Request.RequestType", PROPTYPE_LONG},
    {L"Request.StatusCode", PROPTYPE_LONG},
    {L"Request.Disposition", PROPTYPE_LONG},
    {L"Request.DispositionMessage", PROPTYPE_STRING},
    {L"Request.SubmittedWhen", PROPTYPE_DATE},
    {L"Request.ResolvedWhen", PROPTYPE_DATE},
    {L"Request.RevokedWhen", PROPTYPE_DATE},
    {L"Request.RevokedEffectiveWhen", PROPTYPE_DATE},
    {L"Request.RevokedReason", PROPTYPE_LONG},
    {L"Request.RequesterName", PROPTYPE_STRING},
    {L"Request.CallerName", PROPTYPE_STRING},
    {L"RequestID", PROPTYPE_LONG},
    {L"RawCertificate", PROPTYPE_BINARY},
    {L"CertificateHash", PROPTYPE_STRING},
    {L"CertificateTemplate", PROPTYPE_STRING},
    {L"SerialNumber", PROPTYPE_STRING},
    {L"NotBefore", PROPTYPE_DATE},
    {L"NotAfter", PROPTYPE_DATE},
    {L"PublicKeyLength", PROPTYPE_LONG},
    {L"UPN", PROPTYPE_STRING},
    {L"DistinguishedName", PROPTYPE_STRING},
    {L"CommonName", PROPTYPE_STRING},
    {L"EMail", PROPTYPE_STRING},
};
#define NSCHEMA ((LONG)(sizeof(schema) / sizeof(schema[0])))

static const WCHAR *ca_name = L"";
static HRESULT connect_hr = S_OK;
static FILE *trace;
static const struct fcv_row *table;
static int table_rows;
static struct fcv_record rec;
static LONG live;

void fcv_set_trace(const char *path)
{
    trace = fopen(path, "a");
}

/* One line per call worth checking, for a process whose record the test cannot read. */
static void trace_line(const char *fmt, const WCHAR *w, const char *a, const char *b, double v)
{
    if (trace == NULL)
        return;
    fprintf(trace, fmt, w, a, b, v);
    fflush(trace);
}

void fcv_fail_connection(HRESULT hr)
{
    connect_hr = hr;
}

void fcv_set_ca(const WCHAR *name)
{
    ca_name = name;
}

void fcv_set_table(const struct fcv_row *rows, int nrows)
{
    table = rows;
    table_rows = nrows;
}

struct fcv_cell *fcv_add(struct fcv_row *row, const WCHAR *name, LONG type)
{
    struct fcv_cell *c;

    if (row->ncells >= FCV_MAX_CELLS) {
        fprintf(stderr, "fake_certview: row full\n");
        exit(2);
    }
    c = &row->cells[row->ncells++];
    memset(c, 0, sizeof(*c));
    c->name = name;
    c->type = type;
    return c;
}

const struct fcv_record *fcv_record(void)
{
    return &rec;
}

void fcv_reset_record(void)
{
    memset(&rec, 0, sizeof rec);
}

LONG fcv_live_objects(void)
{
    return InterlockedCompareExchange(&live, 0, 0);
}

static void protocol_error(const char *what)
{
    InterlockedIncrement(&rec.protocol_errors);
    fprintf(stderr, "fake_certview: unexpected call: %s\n", what);
}

static const struct fcv_cell *cell_of(const struct fcv_row *row, LONG column)
{
    for (int i = 0; i < row->ncells; i++)
        if (_wcsicmp(row->cells[i].name, schema[column].name) == 0)
            return &row->cells[i];
    return NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Loading a table (harness.c's --rows format)                                                   */
/* ------------------------------------------------------------------------------------------ */

#define ROW_FIELDS     15
#define MAX_DER_BYTES  (1024u * 1024u)
#define OLE_UNIX_EPOCH 25569.0

static WCHAR *wdup(const char *s)
{
    int n = MultiByteToWideChar(CP_UTF8, 0, s, -1, NULL, 0);
    WCHAR *w = n > 0 ? malloc((size_t)n * sizeof(WCHAR)) : NULL;

    if (w != NULL && MultiByteToWideChar(CP_UTF8, 0, s, -1, w, n) != n) {
        free(w);
        w = NULL;
    }
    return w;
}

static BYTE *read_der(const char *dir, const char *name, UINT *len)
{
    char path[MAX_PATH];
    BYTE *p = NULL;
    long n;
    FILE *f;

    snprintf(path, sizeof path, "%s\\%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && (unsigned long)n <= MAX_DER_BYTES &&
        fseek(f, 0, SEEK_SET) == 0 && (p = malloc((size_t)n)) != NULL &&
        fread(p, 1, (size_t)n, f) == (size_t)n) {
        *len = (UINT)n;
    } else {
        free(p);
        p = NULL;
    }
    fclose(f);
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

static int add_str(struct fcv_row *r, const WCHAR *name, const char *v)
{
    if (empty(v))
        return 0;
    return (fcv_add(r, name, PROPTYPE_STRING)->str = wdup(v)) != NULL ? 0 : -1;
}

/* One CA database row, as certsrv's view shows it: the request's columns always, the
 * certificate's when the request got one, EMPTY columns absent. */
static int build_row(struct fcv_row *r, char **col, const char *fixtures)
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
        return 0;
    c = fcv_add(r, L"RawCertificate", PROPTYPE_BINARY);
    c->bin = read_der(fixtures, col[6], &c->binlen);
    if (c->bin == NULL)
        return -1;
    add_long(r, L"RequestID", col[0]);
    add_date(r, L"NotBefore", col[9]);
    add_date(r, L"NotAfter", col[10]);
    if (add_str(r, L"SerialNumber", col[7]) != 0 || add_str(r, L"CertificateHash", col[8]) != 0 ||
        add_str(r, L"DistinguishedName", col[11]) != 0 || add_str(r, L"CommonName", col[12]) != 0 ||
        add_str(r, L"CertificateTemplate", col[13]) != 0)
        return -1;
    return 0;
}

int fcv_load_rows(const char *path, const char *fixtures, struct fcv_row **out)
{
    char line[8192];
    struct fcv_row *rows = NULL, *grown;
    int n = 0, cap = 0;
    FILE *f = fopen(path, "r");

    *out = NULL;
    if (f == NULL) {
        fprintf(stderr, "fake_certview: cannot open %s\n", path);
        return -1;
    }
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
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            grown = realloc(rows, (size_t)cap * sizeof(*rows));
            if (grown == NULL)
                goto fail;
            rows = grown;
        }
        if (k != ROW_FIELDS || build_row(&rows[n], col, fixtures) != 0) {
            fprintf(stderr, "fake_certview: %s: row %d is not a valid row\n", path, n + 1);
            goto fail;
        }
        n++;
    }
    fclose(f);
    *out = rows;
    return n;

fail:
    fclose(f);
    free(rows); /* the strings and DER of a test's rows are not worth freeing one by one */
    return -1;
}

/* ------------------------------------------------------------------------------------------ */
/* IEnumCERTVIEWCOLUMN: the result columns of one row                                            */
/* ------------------------------------------------------------------------------------------ */

struct fake_columns {
    IEnumCERTVIEWCOLUMN IEnumCERTVIEWCOLUMN_iface;
    LONG refcount;
    const struct fcv_row *row;
    LONG cols[FCV_MAX_RESULTS];
    int ncols;
    int pos; /* -1 before the first Next */
};

static inline struct fake_columns *impl_from_IEnumCERTVIEWCOLUMN(IEnumCERTVIEWCOLUMN *iface)
{
    return CONTAINING_RECORD(iface, struct fake_columns, IEnumCERTVIEWCOLUMN_iface);
}

static HRESULT WINAPI col_QueryInterface(IEnumCERTVIEWCOLUMN *iface, REFIID riid, void **out)
{
    struct fake_columns *This = impl_from_IEnumCERTVIEWCOLUMN(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_IEnumCERTVIEWCOLUMN))
        *out = &This->IEnumCERTVIEWCOLUMN_iface;
    else
        return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*out);
    return S_OK;
}

static ULONG WINAPI col_AddRef(IEnumCERTVIEWCOLUMN *iface)
{
    return (ULONG)InterlockedIncrement(&impl_from_IEnumCERTVIEWCOLUMN(iface)->refcount);
}

static ULONG WINAPI col_Release(IEnumCERTVIEWCOLUMN *iface)
{
    struct fake_columns *This = impl_from_IEnumCERTVIEWCOLUMN(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    if (ref == 0) {
        free(This);
        InterlockedDecrement(&live);
    }
    return (ULONG)ref;
}

static HRESULT WINAPI col_GetTypeInfoCount(IEnumCERTVIEWCOLUMN *iface, UINT *n)
{
    protocol_error("IEnumCERTVIEWCOLUMN::GetTypeInfoCount");
    return E_NOTIMPL;
}

static HRESULT WINAPI col_GetTypeInfo(IEnumCERTVIEWCOLUMN *iface, UINT i, LCID l, ITypeInfo **t)
{
    protocol_error("IEnumCERTVIEWCOLUMN::GetTypeInfo");
    return E_NOTIMPL;
}

static HRESULT WINAPI col_GetIDsOfNames(IEnumCERTVIEWCOLUMN *iface, REFIID riid, LPOLESTR *names,
                                        UINT n, LCID l, DISPID *ids)
{
    protocol_error("IEnumCERTVIEWCOLUMN::GetIDsOfNames");
    return E_NOTIMPL;
}

static HRESULT WINAPI col_Invoke(IEnumCERTVIEWCOLUMN *iface, DISPID id, REFIID riid, LCID l, WORD f,
                                 DISPPARAMS *p, VARIANT *r, EXCEPINFO *e, UINT *a)
{
    protocol_error("IEnumCERTVIEWCOLUMN::Invoke");
    return E_NOTIMPL;
}

static HRESULT WINAPI col_Next(IEnumCERTVIEWCOLUMN *iface, LONG *index)
{
    struct fake_columns *This = impl_from_IEnumCERTVIEWCOLUMN(iface);

    if (index == NULL)
        return E_POINTER;
    if (This->pos + 1 >= This->ncols) {
        This->pos = This->ncols;
        *index = -1;
        return S_FALSE;
    }
    This->pos++;
    *index = This->pos;
    return S_OK;
}

/* The current column's schema index, or -1 (with a protocol error) outside the enumeration. */
static LONG current_column(struct fake_columns *This, const char *what)
{
    if (This->pos < 0 || This->pos >= This->ncols) {
        protocol_error(what);
        return -1;
    }
    return This->cols[This->pos];
}

static HRESULT WINAPI col_GetName(IEnumCERTVIEWCOLUMN *iface, BSTR *out)
{
    LONG c = current_column(impl_from_IEnumCERTVIEWCOLUMN(iface), "GetName outside a column");

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (c < 0)
        return E_UNEXPECTED;
    *out = SysAllocString(schema[c].name);
    return *out != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI col_GetDisplayName(IEnumCERTVIEWCOLUMN *iface, BSTR *out)
{
    return col_GetName(iface, out);
}

static HRESULT WINAPI col_GetType(IEnumCERTVIEWCOLUMN *iface, LONG *type)
{
    LONG c = current_column(impl_from_IEnumCERTVIEWCOLUMN(iface), "GetType outside a column");

    if (type == NULL)
        return E_POINTER;
    if (c < 0)
        return E_UNEXPECTED;
    *type = schema[c].type;
    return S_OK;
}

static HRESULT WINAPI col_IsIndexed(IEnumCERTVIEWCOLUMN *iface, LONG *indexed)
{
    if (indexed == NULL)
        return E_POINTER;
    *indexed = 0;
    return S_OK;
}

static HRESULT WINAPI col_GetMaxLength(IEnumCERTVIEWCOLUMN *iface, LONG *len)
{
    if (len == NULL)
        return E_POINTER;
    *len = 4096;
    return S_OK;
}

static HRESULT WINAPI col_GetValue(IEnumCERTVIEWCOLUMN *iface, LONG flags, VARIANT *v)
{
    struct fake_columns *This = impl_from_IEnumCERTVIEWCOLUMN(iface);
    LONG c = current_column(This, "GetValue outside a column");
    const struct fcv_cell *cell;

    if (v == NULL)
        return E_POINTER;
    VariantInit(v);
    if (c < 0)
        return E_UNEXPECTED;
    cell = cell_of(This->row, c);
    if (cell == NULL || cell->type == 0)
        return S_OK; /* EMPTY: VT_EMPTY, as certsrv answers */
    switch (schema[c].type) {
    case PROPTYPE_LONG:
        V_VT(v) = VT_I4;
        V_I4(v) = cell->l;
        return S_OK;
    case PROPTYPE_DATE:
        V_VT(v) = VT_DATE;
        V_DATE(v) = cell->date;
        return S_OK;
    case PROPTYPE_STRING:
        V_VT(v) = VT_BSTR;
        V_BSTR(v) = SysAllocString(cell->str);
        return V_BSTR(v) != NULL ? S_OK : E_OUTOFMEMORY;
    case PROPTYPE_BINARY:
        /* Without CV_OUT_BINARY certsrv encodes binary columns (base64 with a header): a reader
         * asking for anything else would get text, not DER. */
        if ((flags & CV_OUT_ENCODEMASK) != CV_OUT_BINARY) {
            protocol_error("GetValue of a binary column without CV_OUT_BINARY");
            return E_INVALIDARG;
        }
        InterlockedIncrement(&rec.binary_reads);
        V_VT(v) = VT_BSTR;
        V_BSTR(v) = SysAllocStringByteLen((LPCSTR)cell->bin, cell->binlen);
        return V_BSTR(v) != NULL ? S_OK : E_OUTOFMEMORY;
    }
    return E_UNEXPECTED;
}

static HRESULT WINAPI col_Skip(IEnumCERTVIEWCOLUMN *iface, LONG n)
{
    protocol_error("IEnumCERTVIEWCOLUMN::Skip");
    return E_NOTIMPL;
}

static HRESULT WINAPI col_Reset(IEnumCERTVIEWCOLUMN *iface)
{
    impl_from_IEnumCERTVIEWCOLUMN(iface)->pos = -1;
    return S_OK;
}

static HRESULT WINAPI col_Clone(IEnumCERTVIEWCOLUMN *iface, IEnumCERTVIEWCOLUMN **out)
{
    protocol_error("IEnumCERTVIEWCOLUMN::Clone");
    if (out != NULL)
        *out = NULL;
    return E_NOTIMPL;
}

static const IEnumCERTVIEWCOLUMNVtbl col_vtbl = {
    col_QueryInterface, col_AddRef,    col_Release,      col_GetTypeInfoCount, col_GetTypeInfo,
    col_GetIDsOfNames,  col_Invoke,    col_Next,         col_GetName,          col_GetDisplayName,
    col_GetType,        col_IsIndexed, col_GetMaxLength, col_GetValue,         col_Skip,
    col_Reset,          col_Clone,
};

/* ------------------------------------------------------------------------------------------ */
/* IEnumCERTVIEWROW: the rows of an opened view                                                  */
/* ------------------------------------------------------------------------------------------ */

struct fake_rows {
    IEnumCERTVIEWROW IEnumCERTVIEWROW_iface;
    LONG refcount;
    int *rows; /* indexes into the table, in view order */
    int nrows;
    int pos; /* -1 before the first Next, nrows after the last */
    LONG cols[FCV_MAX_RESULTS];
    int ncols;
};

static inline struct fake_rows *impl_from_IEnumCERTVIEWROW(IEnumCERTVIEWROW *iface)
{
    return CONTAINING_RECORD(iface, struct fake_rows, IEnumCERTVIEWROW_iface);
}

static HRESULT WINAPI row_QueryInterface(IEnumCERTVIEWROW *iface, REFIID riid, void **out)
{
    struct fake_rows *This = impl_from_IEnumCERTVIEWROW(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_IEnumCERTVIEWROW))
        *out = &This->IEnumCERTVIEWROW_iface;
    else
        return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*out);
    return S_OK;
}

static ULONG WINAPI row_AddRef(IEnumCERTVIEWROW *iface)
{
    return (ULONG)InterlockedIncrement(&impl_from_IEnumCERTVIEWROW(iface)->refcount);
}

static ULONG WINAPI row_Release(IEnumCERTVIEWROW *iface)
{
    struct fake_rows *This = impl_from_IEnumCERTVIEWROW(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    if (ref == 0) {
        free(This->rows);
        free(This);
        InterlockedDecrement(&live);
    }
    return (ULONG)ref;
}

static HRESULT WINAPI row_GetTypeInfoCount(IEnumCERTVIEWROW *iface, UINT *n)
{
    protocol_error("IEnumCERTVIEWROW::GetTypeInfoCount");
    return E_NOTIMPL;
}

static HRESULT WINAPI row_GetTypeInfo(IEnumCERTVIEWROW *iface, UINT i, LCID l, ITypeInfo **t)
{
    protocol_error("IEnumCERTVIEWROW::GetTypeInfo");
    return E_NOTIMPL;
}

static HRESULT WINAPI row_GetIDsOfNames(IEnumCERTVIEWROW *iface, REFIID riid, LPOLESTR *names,
                                        UINT n, LCID l, DISPID *ids)
{
    protocol_error("IEnumCERTVIEWROW::GetIDsOfNames");
    return E_NOTIMPL;
}

static HRESULT WINAPI row_Invoke(IEnumCERTVIEWROW *iface, DISPID id, REFIID riid, LCID l, WORD f,
                                 DISPPARAMS *p, VARIANT *r, EXCEPINFO *e, UINT *a)
{
    protocol_error("IEnumCERTVIEWROW::Invoke");
    return E_NOTIMPL;
}

static HRESULT WINAPI row_Next(IEnumCERTVIEWROW *iface, LONG *index)
{
    struct fake_rows *This = impl_from_IEnumCERTVIEWROW(iface);

    if (index == NULL)
        return E_POINTER;
    if (This->pos + 1 >= This->nrows) {
        This->pos = This->nrows;
        *index = -1;
        return S_FALSE;
    }
    This->pos++;
    *index = This->pos + 1; /* certsrv's row indexes start at 1 */
    InterlockedIncrement(&rec.rows_served);
    return S_OK;
}

static HRESULT WINAPI row_EnumCertViewColumn(IEnumCERTVIEWROW *iface, IEnumCERTVIEWCOLUMN **out)
{
    struct fake_rows *This = impl_from_IEnumCERTVIEWROW(iface);
    struct fake_columns *c;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (This->pos < 0 || This->pos >= This->nrows) {
        protocol_error("EnumCertViewColumn outside a row");
        return E_UNEXPECTED;
    }
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return E_OUTOFMEMORY;
    c->IEnumCERTVIEWCOLUMN_iface.lpVtbl = &col_vtbl;
    c->refcount = 1;
    c->row = &table[This->rows[This->pos]];
    memcpy(c->cols, This->cols, sizeof(LONG) * (size_t)This->ncols);
    c->ncols = This->ncols;
    c->pos = -1;
    InterlockedIncrement(&live);
    *out = &c->IEnumCERTVIEWCOLUMN_iface;
    return S_OK;
}

static HRESULT WINAPI row_EnumCertViewAttribute(IEnumCERTVIEWROW *iface, LONG flags,
                                                IEnumCERTVIEWATTRIBUTE **out)
{
    protocol_error("EnumCertViewAttribute");
    if (out != NULL)
        *out = NULL;
    return E_NOTIMPL;
}

static HRESULT WINAPI row_EnumCertViewExtension(IEnumCERTVIEWROW *iface, LONG flags,
                                                IEnumCERTVIEWEXTENSION **out)
{
    protocol_error("EnumCertViewExtension");
    if (out != NULL)
        *out = NULL;
    return E_NOTIMPL;
}

static HRESULT WINAPI row_Skip(IEnumCERTVIEWROW *iface, LONG n)
{
    protocol_error("IEnumCERTVIEWROW::Skip");
    return E_NOTIMPL;
}

static HRESULT WINAPI row_Reset(IEnumCERTVIEWROW *iface)
{
    impl_from_IEnumCERTVIEWROW(iface)->pos = -1;
    return S_OK;
}

static HRESULT WINAPI row_Clone(IEnumCERTVIEWROW *iface, IEnumCERTVIEWROW **out)
{
    protocol_error("IEnumCERTVIEWROW::Clone");
    if (out != NULL)
        *out = NULL;
    return E_NOTIMPL;
}

static HRESULT WINAPI row_GetMaxIndex(IEnumCERTVIEWROW *iface, LONG *index)
{
    struct fake_rows *This = impl_from_IEnumCERTVIEWROW(iface);

    if (index == NULL)
        return E_POINTER;
    /* certsrv knows the count only once the enumeration has reached the end. */
    if (This->pos < This->nrows)
        return E_UNEXPECTED;
    *index = This->nrows;
    return S_OK;
}

static const IEnumCERTVIEWROWVtbl row_vtbl = {
    row_QueryInterface,
    row_AddRef,
    row_Release,
    row_GetTypeInfoCount,
    row_GetTypeInfo,
    row_GetIDsOfNames,
    row_Invoke,
    row_Next,
    row_EnumCertViewColumn,
    row_EnumCertViewAttribute,
    row_EnumCertViewExtension,
    row_Skip,
    row_Reset,
    row_Clone,
    row_GetMaxIndex,
};

/* ------------------------------------------------------------------------------------------ */
/* ICertView2                                                                                    */
/* ------------------------------------------------------------------------------------------ */

struct restriction {
    LONG column, op, sort;
    VARIANT value;
};

struct fake_view {
    ICertView2 ICertView2_iface;
    LONG refcount;
    int connected, opened;
    LONG result_count; /* -1 until SetResultColumnCount */
    LONG results[FCV_MAX_RESULTS];
    int nresults;
    struct restriction restr[FCV_MAX_RESTRICTIONS];
    int nrestr;
};

static inline struct fake_view *impl_from_ICertView2(ICertView2 *iface)
{
    return CONTAINING_RECORD(iface, struct fake_view, ICertView2_iface);
}

static HRESULT WINAPI view_QueryInterface(ICertView2 *iface, REFIID riid, void **out)
{
    struct fake_view *This = impl_from_ICertView2(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_ICertView) || IsEqualIID(riid, &IID_ICertView2))
        *out = &This->ICertView2_iface;
    else
        return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*out);
    return S_OK;
}

static ULONG WINAPI view_AddRef(ICertView2 *iface)
{
    return (ULONG)InterlockedIncrement(&impl_from_ICertView2(iface)->refcount);
}

static ULONG WINAPI view_Release(ICertView2 *iface)
{
    struct fake_view *This = impl_from_ICertView2(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    if (ref == 0) {
        free(This);
        InterlockedDecrement(&live);
    }
    return (ULONG)ref;
}

static HRESULT WINAPI view_GetTypeInfoCount(ICertView2 *iface, UINT *n)
{
    protocol_error("ICertView2::GetTypeInfoCount");
    return E_NOTIMPL;
}

static HRESULT WINAPI view_GetTypeInfo(ICertView2 *iface, UINT i, LCID l, ITypeInfo **t)
{
    protocol_error("ICertView2::GetTypeInfo");
    return E_NOTIMPL;
}

static HRESULT WINAPI view_GetIDsOfNames(ICertView2 *iface, REFIID riid, LPOLESTR *names, UINT n,
                                         LCID l, DISPID *ids)
{
    protocol_error("ICertView2::GetIDsOfNames");
    return E_NOTIMPL;
}

static HRESULT WINAPI view_Invoke(ICertView2 *iface, DISPID id, REFIID riid, LCID l, WORD f,
                                  DISPPARAMS *p, VARIANT *r, EXCEPINFO *e, UINT *a)
{
    protocol_error("ICertView2::Invoke");
    return E_NOTIMPL;
}

static HRESULT WINAPI view_OpenConnection(ICertView2 *iface, const BSTR config)
{
    struct fake_view *This = impl_from_ICertView2(iface);

    if (config == NULL || SysStringLen(config) == 0)
        return E_INVALIDARG;
    if (This->connected) {
        protocol_error("a second OpenConnection");
        return E_UNEXPECTED;
    }
    _snwprintf(rec.config, 256, L"%ls", config);
    trace_line("config %ls%s%s\n", config, "", "", 0);
    rec.config[255] = L'\0';
    InterlockedIncrement(&rec.connections);
    if (FAILED(connect_hr))
        return connect_hr;
    /* certsrv's config strings are HOST\CA Name; anything else names no CA it knows. */
    {
        const WCHAR *bs = wcsrchr(config, L'\\');

        if (bs == NULL || bs == config || _wcsicmp(bs + 1, ca_name) != 0)
            return HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND);
    }
    This->connected = 1;
    return S_OK;
}

static HRESULT WINAPI view_EnumCertViewColumn(ICertView2 *iface, LONG result,
                                              IEnumCERTVIEWCOLUMN **out)
{
    protocol_error("ICertView2::EnumCertViewColumn");
    if (out != NULL)
        *out = NULL;
    return E_NOTIMPL;
}

static HRESULT WINAPI view_GetColumnCount(ICertView2 *iface, LONG result, LONG *count)
{
    if (count == NULL)
        return E_POINTER;
    *count = result == CVRC_COLUMN_SCHEMA ? NSCHEMA : impl_from_ICertView2(iface)->nresults;
    return S_OK;
}

static HRESULT WINAPI view_GetColumnIndex(ICertView2 *iface, LONG result, const BSTR name,
                                          LONG *index)
{
    struct fake_view *This = impl_from_ICertView2(iface);

    if (index == NULL || name == NULL)
        return E_POINTER;
    if (!This->connected) {
        protocol_error("GetColumnIndex before OpenConnection");
        return E_UNEXPECTED;
    }
    if (result != CVRC_COLUMN_SCHEMA) {
        protocol_error("GetColumnIndex of a result column");
        return E_INVALIDARG;
    }
    for (LONG i = 0; i < NSCHEMA; i++) {
        if (_wcsicmp(name, schema[i].name) == 0) {
            *index = i;
            return S_OK;
        }
    }
    return E_INVALIDARG;
}

static HRESULT WINAPI view_SetResultColumnCount(ICertView2 *iface, LONG count)
{
    struct fake_view *This = impl_from_ICertView2(iface);

    if (!This->connected || This->opened || This->result_count >= 0) {
        protocol_error("SetResultColumnCount out of order");
        return E_UNEXPECTED;
    }
    if (count <= 0 || count > FCV_MAX_RESULTS)
        return E_INVALIDARG;
    This->result_count = count;
    rec.result_count = count;
    return S_OK;
}

static HRESULT WINAPI view_SetResultColumn(ICertView2 *iface, LONG index)
{
    struct fake_view *This = impl_from_ICertView2(iface);

    if (This->result_count < 0 || This->nresults >= This->result_count || This->opened) {
        protocol_error("SetResultColumn out of order or beyond SetResultColumnCount");
        return E_UNEXPECTED;
    }
    if (index < 0 || index >= NSCHEMA)
        return E_INVALIDARG;
    This->results[This->nresults++] = index;
    if (rec.nresults < FCV_MAX_RESULTS)
        _snwprintf(rec.results[rec.nresults++], 64, L"%ls", schema[index].name);
    return S_OK;
}

static HRESULT WINAPI view_SetRestriction(ICertView2 *iface, LONG column, LONG op, LONG sort,
                                          const VARIANT *value)
{
    struct fake_view *This = impl_from_ICertView2(iface);
    struct restriction *r;
    struct fcv_restriction *fr;

    if (!This->connected || This->opened) {
        protocol_error("SetRestriction out of order");
        return E_UNEXPECTED;
    }
    if (column < 0 || column >= NSCHEMA || value == NULL || This->nrestr >= FCV_MAX_RESTRICTIONS)
        return E_INVALIDARG;
    if (op != CVR_SEEK_EQ && op != CVR_SEEK_LT && op != CVR_SEEK_LE && op != CVR_SEEK_GE &&
        op != CVR_SEEK_GT)
        return E_INVALIDARG;
    /* The value's type must be the column's (certsrv converts nothing). */
    if ((schema[column].type == PROPTYPE_LONG && V_VT(value) != VT_I4) ||
        (schema[column].type == PROPTYPE_DATE && V_VT(value) != VT_DATE) ||
        schema[column].type == PROPTYPE_BINARY || schema[column].type == PROPTYPE_STRING) {
        protocol_error("SetRestriction with a value of the wrong type");
        return E_INVALIDARG;
    }
    trace_line("restriction %ls %s %s %.0f\n", schema[column].name,
               op == CVR_SEEK_EQ   ? "eq"
               : op == CVR_SEEK_GE ? "ge"
                                   : "other",
               sort == CVR_SORT_ASCEND ? "ascend" : "none",
               V_VT(value) == VT_I4 ? (double)V_I4(value)
                                    : (V_DATE(value) - OLE_UNIX_EPOCH) * 86400000.0);
    r = &This->restr[This->nrestr++];
    r->column = column;
    r->op = op;
    r->sort = sort;
    r->value = *value;
    if (rec.nrestrictions < FCV_MAX_RESTRICTIONS) {
        fr = &rec.restrictions[rec.nrestrictions++];
        _snwprintf(fr->column, 64, L"%ls", schema[column].name);
        fr->op = op;
        fr->sort = sort;
        fr->vt = V_VT(value);
        if (V_VT(value) == VT_I4)
            fr->l = V_I4(value);
        else
            fr->date = V_DATE(value);
    }
    return S_OK;
}

/* -1, 0, 1 comparing a cell with a restriction value; 2 when the cell is EMPTY. */
static int compare(const struct fcv_cell *cell, const VARIANT *v)
{
    if (cell == NULL || cell->type == 0)
        return 2;
    if (V_VT(v) == VT_I4)
        return cell->l < V_I4(v) ? -1 : cell->l > V_I4(v);
    return cell->date < V_DATE(v) ? -1 : cell->date > V_DATE(v);
}

static int matches(const struct fake_view *This, const struct fcv_row *row)
{
    for (int i = 0; i < This->nrestr; i++) {
        const struct restriction *r = &This->restr[i];
        int c = compare(cell_of(row, r->column), &r->value);

        if (c == 2)
            return 0; /* an EMPTY value passes no restriction */
        if ((r->op == CVR_SEEK_EQ && c != 0) || (r->op == CVR_SEEK_LT && c >= 0) ||
            (r->op == CVR_SEEK_LE && c > 0) || (r->op == CVR_SEEK_GE && c < 0) ||
            (r->op == CVR_SEEK_GT && c <= 0))
            return 0;
    }
    return 1;
}

/* The sort key: the first sorted restriction's column, else the request id. */
static double sort_key(const struct fake_view *This, const struct fcv_row *row, LONG *dir)
{
    const struct fcv_cell *c;
    LONG column = 0;

    *dir = CVR_SORT_ASCEND;
    for (int i = 0; i < This->nrestr; i++) {
        if (This->restr[i].sort != CVR_SORT_NONE) {
            column = This->restr[i].column;
            *dir = This->restr[i].sort;
            break;
        }
    }
    c = cell_of(row, column);
    if (c == NULL)
        return 0;
    return schema[column].type == PROPTYPE_DATE ? c->date : (double)c->l;
}

static HRESULT WINAPI view_OpenView(ICertView2 *iface, IEnumCERTVIEWROW **out)
{
    struct fake_view *This = impl_from_ICertView2(iface);
    struct fake_rows *rows;
    LONG dir;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (!This->connected || This->opened || This->nresults != This->result_count) {
        protocol_error("OpenView out of order (or fewer SetResultColumn than announced)");
        return E_UNEXPECTED;
    }
    rows = calloc(1, sizeof(*rows));
    if (rows == NULL || (rows->rows = calloc((size_t)table_rows + 1, sizeof(int))) == NULL) {
        free(rows);
        return E_OUTOFMEMORY;
    }
    for (int i = 0; i < table_rows; i++)
        if (matches(This, &table[i]))
            rows->rows[rows->nrows++] = i;
    /* Insertion sort by the key; the table is small. */
    for (int i = 1; i < rows->nrows; i++) {
        int x = rows->rows[i], j = i;
        double kx = sort_key(This, &table[x], &dir);

        while (j > 0) {
            double kp = sort_key(This, &table[rows->rows[j - 1]], &dir);

            if (dir == CVR_SORT_DESCEND ? kp >= kx : kp <= kx)
                break;
            rows->rows[j] = rows->rows[j - 1];
            j--;
        }
        rows->rows[j] = x;
    }
    rows->IEnumCERTVIEWROW_iface.lpVtbl = &row_vtbl;
    rows->refcount = 1;
    rows->pos = -1;
    memcpy(rows->cols, This->results, sizeof(LONG) * (size_t)This->nresults);
    rows->ncols = This->nresults;
    This->opened = 1;
    InterlockedIncrement(&rec.views_opened);
    InterlockedIncrement(&live);
    *out = &rows->IEnumCERTVIEWROW_iface;
    return S_OK;
}

static HRESULT WINAPI view_SetTable(ICertView2 *iface, LONG t)
{
    return t == CVRC_TABLE_REQCERT ? S_OK : E_INVALIDARG;
}

static const ICertView2Vtbl view_vtbl = {
    view_QueryInterface,     view_AddRef,         view_Release,        view_GetTypeInfoCount,
    view_GetTypeInfo,        view_GetIDsOfNames,  view_Invoke,         view_OpenConnection,
    view_EnumCertViewColumn, view_GetColumnCount, view_GetColumnIndex, view_SetResultColumnCount,
    view_SetResultColumn,    view_SetRestriction, view_OpenView,       view_SetTable,
};

/* ------------------------------------------------------------------------------------------ */
/* The class factory                                                                             */
/* ------------------------------------------------------------------------------------------ */

static HRESULT WINAPI cf_QueryInterface(IClassFactory *iface, REFIID riid, void **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (!IsEqualIID(riid, &IID_IUnknown) && !IsEqualIID(riid, &IID_IClassFactory))
        return E_NOINTERFACE;
    *out = iface;
    return S_OK;
}

static ULONG WINAPI cf_AddRef(IClassFactory *iface)
{
    return 2; /* static */
}

static ULONG WINAPI cf_Release(IClassFactory *iface)
{
    return 1;
}

static HRESULT WINAPI cf_CreateInstance(IClassFactory *iface, IUnknown *outer, REFIID riid,
                                        void **out)
{
    struct fake_view *v;
    HRESULT hr;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (outer != NULL)
        return CLASS_E_NOAGGREGATION;
    v = calloc(1, sizeof(*v));
    if (v == NULL)
        return E_OUTOFMEMORY;
    v->ICertView2_iface.lpVtbl = &view_vtbl;
    v->refcount = 1;
    v->result_count = -1;
    InterlockedIncrement(&live);
    InterlockedIncrement(&rec.views_created);
    hr = view_QueryInterface(&v->ICertView2_iface, riid, out);
    view_Release(&v->ICertView2_iface);
    return hr;
}

static HRESULT WINAPI cf_LockServer(IClassFactory *iface, BOOL lock)
{
    return S_OK;
}

static const IClassFactoryVtbl cf_vtbl = {cf_QueryInterface, cf_AddRef, cf_Release,
                                          cf_CreateInstance, cf_LockServer};
static IClassFactory view_factory = {&cf_vtbl};

IClassFactory *fcv_factory(void)
{
    return &view_factory;
}

HRESULT fcv_register(DWORD *cookie)
{
    return CoRegisterClassObject(&CLSID_CCertView, (IUnknown *)&view_factory, CLSCTX_INPROC_SERVER,
                                 REGCLS_MULTIPLEUSE, cookie);
}
