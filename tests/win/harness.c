/*
 * A certsrv stand-in for certrelay_exit.dll, run under Wine by tests/win/run_wine_tests.py.
 *
 * It does what certsrv does with an exit module, through the same COM calls:
 *
 *   1. serves its own CCertServerExit: CoRegisterClassObject(CLSID_CCertServerExit, ...) in the
 *      multithreaded apartment, so the module's ordinary CoCreateInstance in Notify gets the fake
 *      (nothing test-only lives in the DLL);
 *   2. finds the module by ProgID (CLSIDFromProgID(L"CertRelay.Exit"), as registered by
 *      regsvr32), checks GetDescription and the ICertManageModule properties;
 *   3. writes the module's settings for a test CA below
 *      HKLM\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration\<key>\ExitModules\CertRelay.Exit
 *      where <key> is the CA's sanitized name (--registry-key), which may differ from the name
 *      Initialize gets (--ca), and serves that path as the CA property ModuleRegistryLocation, as
 *      certsrv does; then calls Initialize, which must raise the startup event itself;
 *   4. calls Notify for every event kind from several threads at once, each call with its own
 *      context, sending what real certsrv sends: revocation and release from hold both as
 *      EXITEVENT_CERTREVOKED (0x8, told apart by Disposition 21 or 20), never 0x80 or 0x100;
 *      the fake server maps SetContext(context) to a property table holding a real DER
 *      certificate (tests/fixtures/gen-fixtures.sh), or at context 0 the CA's properties with
 *      the real base and delta CRLs;
 *   5. checks that every Notify returned S_OK within the timeout (with a generous guard: this is
 *      a shared machine), that the module released every server object it created, and that
 *      it never asked for what it must not read (RawArchivedKey) or called what certsrv's object
 *      does not offer through the vtable (IDispatch).
 *
 * It writes the events it sent to --expect as tab-separated lines
 *
 *   request_id  event  fixture
 *
 * (fixture: the leaf's DER file, "crl" for crl_issued, "-" otherwise) for the driver, which
 * checks where they land. Ends with "harness: N passed, N failed"; exit status 0 only when
 * nothing failed.
 *
 *   harness --fixtures DIR --ca NAME --pipe PIPE --spool DIR --expect FILE
 *           [--registry-key NAME] [--broker-service NAME] [--threads 8] [--rounds 2]
 *           [--first-request 1000] [--timeout-ms 2000] [--guard-ms 10000] [--skip-identity]
 *   harness ... --rows FILE
 *   harness --paramchange SERVICE
 *   harness --set-binpath SERVICE COMMANDLINE
 *   harness --set-account SERVICE ACCOUNT
 *
 * With --rows the harness notifies, one call at a time, the events of the rows of a CA database
 * table (tests/win/catchup_test.py writes it; tests/win/catchup_view.c serves the same table as
 * the CA database) whose last column is 1: issued (20), pending (9) and denied (31) rows one event
 * each at their disposition time, revoked rows (21) issued and then revoked, as certsrv raised
 * them. One row per line, tab-separated, "-" for an empty value:
 *
 *   request_id disposition submitted_ms resolved_ms revoked_ms revoked_reason leaf_file serial
 *   sha1 not_before_ms not_after_ms dn cn template live
 *
 * The certificate's properties come from the leaf fixture of that name.
 *
 * The --paramchange form sends SERVICE_CONTROL_PARAMCHANGE through the Service Control Manager (Wine's
 * sc.exe has no "control" command) and exits 0 when the service took it; the third changes a
 * service's binPath, the fourth its account (with the service SID type unrestricted), with
 * ChangeServiceConfigW (Wine's "sc config" does nothing).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guids.h"
#include <wincrypt.h>

#define MAX_LEAVES          64
#define MAX_PROPS           32
#define MAX_EXTS            32
#define MAX_FILE_BYTES      (16u * 1024u * 1024u)
#define OLE_DATE_UNIX_EPOCH 25569.0
#define CA_CONTEXT          0

/* ------------------------------------------------------------------------------------------ */
/* Checks                                                                                       */
/* ------------------------------------------------------------------------------------------ */

static LONG passes, failures;

static void check_impl(int ok, int line, const char *fmt, ...)
{
    va_list ap;

    if (ok) {
        InterlockedIncrement(&passes);
        return;
    }
    InterlockedIncrement(&failures);
    fprintf(stderr, "harness.c:%d: FAIL: ", line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

/* CHECK is an assertion of the test; TRAP guards the fake server's protocol (called thousands of
 * times), so it counts only when violated. */
#define CHECK(cond, ...) check_impl((cond) ? 1 : 0, __LINE__, __VA_ARGS__)
#define TRAP(cond, ...)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            check_impl(0, __LINE__, __VA_ARGS__);                                                  \
    } while (0)

static void die(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "harness: fatal: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
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

/* ------------------------------------------------------------------------------------------ */
/* Fixtures                                                                                     */
/* ------------------------------------------------------------------------------------------ */

struct blob {
    BYTE *data;
    DWORD len;
};

struct leaf {
    char file[32];
    struct blob der;
    WCHAR *serial, *sha1, *dn, *cn, *email, *upn, *template_name, *pubkey_alg;
    double not_before, not_after; /* OLE dates */
    LONG pubkey_bits;
    struct {
        WCHAR oid[64];
        LONG flags;
        struct blob value;
    } ext[MAX_EXTS];
    int next;
};

static struct leaf leaves[MAX_LEAVES];
static int nleaves;
static struct blob ca_der, crl_der, delta_der;

static struct blob read_file(const char *dir, const char *name)
{
    char path[MAX_PATH];
    struct blob b = {NULL, 0};
    FILE *f;
    long n;

    snprintf(path, sizeof(path), "%s\\%s", dir, name);
    f = fopen(path, "rb");
    if (f == NULL)
        die("cannot open %s", path);
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) <= 0 || (unsigned long)n > MAX_FILE_BYTES ||
        fseek(f, 0, SEEK_SET) != 0)
        die("cannot size %s", path);
    b.data = malloc((size_t)n);
    if (b.data == NULL || fread(b.data, 1, (size_t)n, f) != (size_t)n)
        die("cannot read %s", path);
    fclose(f);
    b.len = (DWORD)n;
    return b;
}

static double unix_seconds_to_ole(const char *s)
{
    return (double)_strtoi64(s, NULL, 10) / 86400.0 + OLE_DATE_UNIX_EPOCH;
}

/* A manifest field as a wide string, NULL for "-". */
static WCHAR *field(const char *s)
{
    return strcmp(s, "-") == 0 ? NULL : wdup(s);
}

/* The certificate's extensions, as certsrv enumerates them: OID, flags, DER of extnValue. */
static void parse_extensions(struct leaf *lf)
{
    PCCERT_CONTEXT cert;
    DWORD i;

    cert = CertCreateCertificateContext(X509_ASN_ENCODING, lf->der.data, lf->der.len);
    if (cert == NULL)
        die("%s is not a DER certificate (error %lu)", lf->file, (unsigned long)GetLastError());
    for (i = 0; i < cert->pCertInfo->cExtension && lf->next < MAX_EXTS; i++) {
        const CERT_EXTENSION *e = &cert->pCertInfo->rgExtension[i];

        MultiByteToWideChar(CP_ACP, 0, e->pszObjId, -1, lf->ext[lf->next].oid, 64);
        lf->ext[lf->next].flags = e->fCritical ? EXTENSION_CRITICAL_FLAG : 0;
        lf->ext[lf->next].value.len = e->Value.cbData;
        lf->ext[lf->next].value.data = malloc(e->Value.cbData + 1);
        if (lf->ext[lf->next].value.data == NULL)
            die("out of memory");
        memcpy(lf->ext[lf->next].value.data, e->Value.pbData, e->Value.cbData);
        lf->next++;
    }
    CertFreeCertificateContext(cert);
}

/* manifest.tsv: index serial sha1 not_before not_after dn cn email upn template alg bits */
static void load_fixtures(const char *dir)
{
    char path[MAX_PATH], line[4096];
    FILE *f;

    ca_der = read_file(dir, "ca.der");
    crl_der = read_file(dir, "crl.der");
    delta_der = read_file(dir, "delta.der");
    snprintf(path, sizeof(path), "%s\\manifest.tsv", dir);
    f = fopen(path, "r");
    if (f == NULL)
        die("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL && nleaves < MAX_LEAVES) {
        char *col[12], *p = line, *tab;
        struct leaf *lf = &leaves[nleaves];
        int n = 0;

        line[strcspn(line, "\r\n")] = '\0';
        while (n < 12) {
            col[n++] = p;
            tab = strchr(p, '\t');
            if (tab == NULL)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (n != 12)
            continue;
        snprintf(lf->file, sizeof(lf->file), "leaf%02d.der", atoi(col[0]));
        lf->der = read_file(dir, lf->file);
        lf->serial = field(col[1]);
        lf->sha1 = field(col[2]);
        lf->not_before = unix_seconds_to_ole(col[3]);
        lf->not_after = unix_seconds_to_ole(col[4]);
        lf->dn = field(col[5]);
        lf->cn = field(col[6]);
        lf->email = field(col[7]);
        lf->upn = field(col[8]);
        lf->template_name = field(col[9]);
        lf->pubkey_alg = field(col[10]);
        lf->pubkey_bits = atol(col[11]);
        parse_extensions(lf);
        nleaves++;
    }
    fclose(f);
    if (nleaves == 0)
        die("no leaf certificates in %s", path);
}

/* ------------------------------------------------------------------------------------------ */
/* Property tables                                                                              */
/* ------------------------------------------------------------------------------------------ */

struct prop {
    const WCHAR *name;
    LONG type; /* PROPTYPE_* */
    LONG l;
    double date;
    const WCHAR *str;
    const struct blob *bin;
};

/* What certsrv holds for one context: the request (and its certificate), or the CA. */
struct table {
    LONG context;
    const struct leaf *leaf; /* NULL when the request produced no certificate */
    struct prop req[MAX_PROPS];
    int nreq;
    struct prop cert[MAX_PROPS];
    int ncert;
};

static struct table ca_table;
static struct table *req_tables;
static LONG first_request, nrequests;

static void add(struct prop *arr, int *n, const WCHAR *name, LONG type)
{
    if (*n >= MAX_PROPS)
        die("property table full");
    memset(&arr[*n], 0, sizeof(arr[*n]));
    arr[*n].name = name;
    arr[*n].type = type;
    (*n)++;
}

#define ADD_LONG(arr, n, name, v)                                                                  \
    do {                                                                                           \
        add(arr, &(n), name, PROPTYPE_LONG);                                                       \
        (arr)[(n)-1].l = (v);                                                                      \
    } while (0)
#define ADD_DATE(arr, n, name, v)                                                                  \
    do {                                                                                           \
        add(arr, &(n), name, PROPTYPE_DATE);                                                       \
        (arr)[(n)-1].date = (v);                                                                   \
    } while (0)
#define ADD_STR(arr, n, name, v)                                                                   \
    do {                                                                                           \
        if ((v) != NULL) {                                                                         \
            add(arr, &(n), name, PROPTYPE_STRING);                                                 \
            (arr)[(n)-1].str = (v);                                                                \
        }                                                                                          \
    } while (0)
#define ADD_BIN(arr, n, name, v)                                                                   \
    do {                                                                                           \
        add(arr, &(n), name, PROPTYPE_BINARY);                                                     \
        (arr)[(n)-1].bin = (v);                                                                    \
    } while (0)

/* Every kind certsrv notifies, with what its request looks like. */
static const struct kind {
    LONG bit;
    const char *name;
    LONG disposition; /* 0: no request (context 0) */
    int has_cert;
    const WCHAR *message;
} kinds[] = {
    {EXITEVENT_CERTISSUED, "issued", 20, 1, L"Issued"},
    {EXITEVENT_CERTPENDING, "pending", 9, 0, L"Taken Under Submission"},
    {EXITEVENT_CERTDENIED, "denied", 31, 0, L"Denied by Policy Module"},
    {EXITEVENT_CERTREVOKED, "revoked", 21, 1, L"Revoked by CONTOSO\\admin"},
    /* A release from hold: certsrv fires 0x8 again, with the request issued (20) once more. */
    {EXITEVENT_CERTREVOKED, "unrevoked", 20, 1, L"Released from hold"},
    {EXITEVENT_CERTRETRIEVEPENDING, "retrieve_pending", 20, 1, L"Issued"},
    {EXITEVENT_CRLISSUED, "crl_issued", 0, 0, NULL},
    {EXITEVENT_SHUTDOWN, "shutdown", 0, 0, NULL},
    {EXITEVENT_CERTIMPORTED, "imported", 20, 1, L"Imported"},
};
#define NKINDS ((int)(sizeof(kinds) / sizeof(kinds[0])))

/* The CA's sanitized name and the module's settings key (ModuleRegistryLocation). */
static WCHAR sanitized_name[128];
static WCHAR module_location[512];

static void build_ca_table(void)
{
    struct table *t = &ca_table;

    t->context = CA_CONTEXT;
    ADD_LONG(t->cert, t->ncert, L"CAType", 0);
    ADD_LONG(t->cert, t->ncert, L"CertCount", 1);
    ADD_LONG(t->cert, t->ncert, L"CRLState.0", 3);
    ADD_BIN(t->cert, t->ncert, L"RawCRL.0", &crl_der);
    ADD_BIN(t->cert, t->ncert, L"RawDeltaCRL.0", &delta_der);
    ADD_BIN(t->cert, t->ncert, L"RawCACertificate.0", &ca_der);
    ADD_LONG(t->cert, t->ncert, L"fDeltaCRLsDisabled", 0);
    ADD_STR(t->cert, t->ncert, L"SanitizedCAName", sanitized_name);
    ADD_STR(t->cert, t->ncert, L"MachineDNSName", L"ca01.contoso.test");
    ADD_STR(t->cert, t->ncert, L"ModuleRegistryLocation", module_location);
}

/*
 * The certificate properties of leaf lf, as certsrv gives them for request id. with_key adds the
 * public key's algorithm and length, which a row of a CA database table does not carry.
 */
static void add_cert_props(struct table *t, const struct leaf *lf, LONG id, int with_key)
{
    t->leaf = lf;
    ADD_BIN(t->cert, t->ncert, L"RawCertificate", &lf->der);
    ADD_STR(t->cert, t->ncert, L"SerialNumber", lf->serial);
    ADD_STR(t->cert, t->ncert, L"CertificateHash", lf->sha1);
    ADD_DATE(t->cert, t->ncert, L"NotBefore", lf->not_before);
    ADD_DATE(t->cert, t->ncert, L"NotAfter", lf->not_after);
    ADD_STR(t->cert, t->ncert, L"DistinguishedName", lf->dn);
    ADD_STR(t->cert, t->ncert, L"CommonName", lf->cn);
    ADD_STR(t->cert, t->ncert, L"EMail", lf->email);
    ADD_STR(t->cert, t->ncert, L"UPN", lf->upn);
    ADD_STR(t->cert, t->ncert, L"CertificateTemplate", lf->template_name);
    if (with_key) {
        ADD_STR(t->cert, t->ncert, L"PublicKeyAlgorithm", lf->pubkey_alg);
        ADD_LONG(t->cert, t->ncert, L"PublicKeyLength", lf->pubkey_bits);
    }
    ADD_LONG(t->cert, t->ncert, L"RequestID", id);
}

static void build_request_table(struct table *t, LONG id, const struct kind *k)
{
    const struct leaf *lf = &leaves[id % nleaves];
    double now = (double)time(NULL) / 86400.0 + OLE_DATE_UNIX_EPOCH;

    t->context = id;
    ADD_LONG(t->req, t->nreq, L"RequestID", id);
    ADD_LONG(t->req, t->nreq, L"RequestType", 0x100); /* CR_IN_PKCS10 */
    ADD_LONG(t->req, t->nreq, L"Disposition", k->disposition);
    ADD_LONG(t->req, t->nreq, L"StatusCode", k->disposition == 31 ? (LONG)0x80094014 : 0);
    ADD_STR(t->req, t->nreq, L"DispositionMessage", k->message);
    ADD_STR(t->req, t->nreq, L"RequesterName", L"CONTOSO\\alice");
    ADD_STR(t->req, t->nreq, L"CallerName", L"CONTOSO\\alice");
    ADD_STR(t->req, t->nreq, L"RequestAttributes", L"CertificateTemplate:WebServer\nccm:ws01");
    ADD_DATE(t->req, t->nreq, L"SubmittedWhen", now - 0.01);
    if (k->disposition != 9)
        ADD_DATE(t->req, t->nreq, L"ResolvedWhen", now);
    if (k->disposition == 21) {
        ADD_DATE(t->req, t->nreq, L"RevokedWhen", now);
        ADD_DATE(t->req, t->nreq, L"RevokedEffectiveWhen", now);
        ADD_LONG(t->req, t->nreq, L"RevokedReason", 1); /* keyCompromise */
    }
    if (!k->has_cert)
        return;
    add_cert_props(t, lf, id, 1);
}

static const struct table *table_for(LONG context)
{
    if (context == CA_CONTEXT)
        return &ca_table;
    if (context >= first_request && context < first_request + nrequests)
        return &req_tables[context - first_request];
    return NULL;
}

/* certsrv accepts "Request."- and "Subject."-prefixed names for some properties. */
static const WCHAR *strip_prefix(const WCHAR *name)
{
    if (_wcsnicmp(name, L"Request.", 8) == 0)
        return name + 8;
    if (_wcsnicmp(name, L"Subject.", 8) == 0)
        return name + 8;
    return name;
}

/* ------------------------------------------------------------------------------------------ */
/* Rows of a CA database (--rows)                                                               */
/* ------------------------------------------------------------------------------------------ */

#define ROW_FIELDS 15

struct db_row {
    LONG request_id, disposition, reason;
    double submitted, resolved, revoked; /* OLE dates, 0 when empty */
    const struct leaf *leaf;
    int live;
};

static double ms_to_ole(const char *s)
{
    return strcmp(s, "-") == 0 ? 0
                               : (double)_strtoi64(s, NULL, 10) / 86400000.0 + OLE_DATE_UNIX_EPOCH;
}

static int load_rows(const char *path, struct db_row **out)
{
    char line[8192];
    struct db_row *rows = NULL;
    int n = 0, cap = 0;
    FILE *f = fopen(path, "r");

    if (f == NULL)
        die("cannot open %s", path);
    while (fgets(line, sizeof(line), f) != NULL) {
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
            die("%s: a row with %d fields, want %d", path, k, ROW_FIELDS);
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            rows = realloc(rows, (size_t)cap * sizeof(*rows));
            if (rows == NULL)
                die("out of memory");
        }
        memset(&rows[n], 0, sizeof(rows[n]));
        rows[n].request_id = atol(col[0]);
        rows[n].disposition = atol(col[1]);
        rows[n].submitted = ms_to_ole(col[2]);
        rows[n].resolved = ms_to_ole(col[3]);
        rows[n].revoked = ms_to_ole(col[4]);
        rows[n].reason = strcmp(col[5], "-") == 0 ? 0 : atol(col[5]);
        if (strcmp(col[6], "-") != 0) {
            for (int i = 0; i < nleaves; i++)
                if (strcmp(leaves[i].file, col[6]) == 0)
                    rows[n].leaf = &leaves[i];
            if (rows[n].leaf == NULL)
                die("%s: no fixture %s", path, col[6]);
        }
        rows[n].live = atoi(col[14]);
        n++;
    }
    fclose(f);
    *out = rows;
    return n;
}

/* The request as certsrv holds it when it notifies: issued (disposition 20) also for a row that
 * is revoked by now, whose revocation is a later notification of its own. */
static void build_row_table(struct table *t, LONG context, const struct db_row *row,
                            LONG disposition)
{
    const struct leaf *lf = row->leaf;

    t->context = context;
    ADD_LONG(t->req, t->nreq, L"RequestID", row->request_id);
    ADD_LONG(t->req, t->nreq, L"RequestType", 0x100); /* CR_IN_PKCS10 */
    ADD_LONG(t->req, t->nreq, L"Disposition", disposition);
    ADD_LONG(t->req, t->nreq, L"StatusCode", disposition == 31 ? (LONG)0x80094014 : 0);
    ADD_STR(t->req, t->nreq, L"DispositionMessage",
            disposition == 9    ? L"Taken Under Submission"
            : disposition == 31 ? L"Denied by Policy Module"
            : disposition == 21 ? L"Revoked by CONTOSO\\admin"
                                : L"Issued");
    ADD_STR(t->req, t->nreq, L"RequesterName", L"CONTOSO\\alice");
    ADD_STR(t->req, t->nreq, L"CallerName", L"CONTOSO\\alice");
    ADD_DATE(t->req, t->nreq, L"SubmittedWhen", row->submitted);
    if (disposition != 9)
        ADD_DATE(t->req, t->nreq, L"ResolvedWhen", row->resolved);
    if (disposition == 21) {
        ADD_DATE(t->req, t->nreq, L"RevokedWhen", row->revoked);
        ADD_DATE(t->req, t->nreq, L"RevokedEffectiveWhen", row->revoked);
        ADD_LONG(t->req, t->nreq, L"RevokedReason", row->reason);
    }
    if (lf == NULL || (disposition != 20 && disposition != 21))
        return;
    add_cert_props(t, lf, row->request_id, 0);
}

/* ------------------------------------------------------------------------------------------ */
/* The fake CCertServerExit                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Objects alive: the module must release every server object it creates. */
static LONG live_servers, created_servers;

struct fake_server {
    ICertServerExit ICertServerExit_iface;
    LONG refcount;
    int context_set;
    const struct table *table;
    int ext_pos, attr_pos, ext_open, attr_open;
    int last_ext; /* index of the extension read last, for GetCertificateExtensionFlags */
};

static inline struct fake_server *impl_from_ICertServerExit(ICertServerExit *iface)
{
    return CONTAINING_RECORD(iface, struct fake_server, ICertServerExit_iface);
}

static HRESULT WINAPI srv_QueryInterface(ICertServerExit *iface, REFIID riid, void **out)
{
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_ICertServerExit)) {
        *out = iface;
        ICertServerExit_AddRef(iface);
        return S_OK;
    }
    return E_NOINTERFACE;
}

static ULONG WINAPI srv_AddRef(ICertServerExit *iface)
{
    return (ULONG)InterlockedIncrement(&impl_from_ICertServerExit(iface)->refcount);
}

static ULONG WINAPI srv_Release(ICertServerExit *iface)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    TRAP(ref >= 0, "server object released more often than referenced");
    if (ref == 0) {
        free(This);
        InterlockedDecrement(&live_servers);
    }
    return (ULONG)ref;
}

/* The module calls certsrv through the vtable; the dispatch half is a trap. */
static HRESULT WINAPI srv_GetTypeInfoCount(ICertServerExit *iface, UINT *n)
{
    TRAP(0, "unexpected IDispatch::GetTypeInfoCount on the server object");
    return E_NOTIMPL;
}

static HRESULT WINAPI srv_GetTypeInfo(ICertServerExit *iface, UINT i, LCID l, ITypeInfo **t)
{
    TRAP(0, "unexpected IDispatch::GetTypeInfo on the server object");
    return E_NOTIMPL;
}

static HRESULT WINAPI srv_GetIDsOfNames(ICertServerExit *iface, REFIID riid, LPOLESTR *names,
                                        UINT n, LCID l, DISPID *ids)
{
    TRAP(0, "unexpected IDispatch::GetIDsOfNames on the server object");
    return E_NOTIMPL;
}

static HRESULT WINAPI srv_Invoke(ICertServerExit *iface, DISPID id, REFIID riid, LCID l, WORD f,
                                 DISPPARAMS *p, VARIANT *r, EXCEPINFO *e, UINT *a)
{
    TRAP(0, "unexpected IDispatch::Invoke on the server object");
    return E_NOTIMPL;
}

static HRESULT WINAPI srv_SetContext(ICertServerExit *iface, LONG context)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    const struct table *t = table_for(context);

    TRAP(t != NULL, "SetContext(%ld): no such request", (long)context);
    if (t == NULL)
        return E_INVALIDARG;
    This->table = t;
    This->context_set = 1;
    This->ext_open = This->attr_open = 0;
    return S_OK;
}

/* Serves one property from arr into v, as certsrv does: binary as a BSTR of raw bytes. */
static HRESULT serve(const struct fake_server *This, const struct prop *arr, int n, const BSTR name,
                     LONG type, VARIANT *v)
{
    const WCHAR *want;
    int i;

    TRAP(v != NULL, "property read without a VARIANT");
    if (v == NULL)
        return E_POINTER;
    VariantInit(v);
    TRAP(This->context_set, "property %ls read before SetContext", name ? name : L"(null)");
    if (name == NULL || !This->context_set)
        return E_INVALIDARG;
    want = strip_prefix(name);
    TRAP(_wcsicmp(want, L"RawArchivedKey") != 0, "the module asked for RawArchivedKey");
    for (i = 0; i < n; i++) {
        if (_wcsicmp(arr[i].name, want) != 0)
            continue;
        TRAP(arr[i].type == type, "%ls read as type %ld, certsrv holds type %ld", want, (long)type,
             (long)arr[i].type);
        if (arr[i].type != type)
            return E_INVALIDARG;
        switch (type) {
        case PROPTYPE_LONG:
            V_VT(v) = VT_I4;
            V_I4(v) = arr[i].l;
            return S_OK;
        case PROPTYPE_DATE:
            V_VT(v) = VT_DATE;
            V_DATE(v) = arr[i].date;
            return S_OK;
        case PROPTYPE_STRING:
            V_BSTR(v) = SysAllocString(arr[i].str);
            if (V_BSTR(v) == NULL)
                return E_OUTOFMEMORY;
            V_VT(v) = VT_BSTR;
            return S_OK;
        case PROPTYPE_BINARY:
            V_BSTR(v) = SysAllocStringByteLen((const char *)arr[i].bin->data, arr[i].bin->len);
            if (V_BSTR(v) == NULL)
                return E_OUTOFMEMORY;
            V_VT(v) = VT_BSTR;
            return S_OK;
        }
        return E_INVALIDARG;
    }
    return CERTSRV_E_PROPERTY_EMPTY;
}

static HRESULT WINAPI srv_GetRequestProperty(ICertServerExit *iface, const BSTR name, LONG type,
                                             VARIANT *v)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    if (This->table == NULL)
        return serve(This, NULL, 0, name, type, v);
    return serve(This, This->table->req, This->table->nreq, name, type, v);
}

static HRESULT WINAPI srv_GetCertificateProperty(ICertServerExit *iface, const BSTR name, LONG type,
                                                 VARIANT *v)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    if (This->table == NULL)
        return serve(This, NULL, 0, name, type, v);
    return serve(This, This->table->cert, This->table->ncert, name, type, v);
}

static const WCHAR *const attr_names[] = {L"CertificateTemplate", L"ccm"};
static const WCHAR *const attr_values[] = {L"WebServer", L"ws01.contoso.test"};

static HRESULT WINAPI srv_GetRequestAttribute(ICertServerExit *iface, const BSTR name, BSTR *out)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    size_t i;

    *out = NULL;
    TRAP(This->context_set, "GetRequestAttribute before SetContext");
    if (This->table == NULL || This->table->context == CA_CONTEXT)
        return CERTSRV_E_PROPERTY_EMPTY;
    for (i = 0; i < sizeof(attr_names) / sizeof(attr_names[0]); i++) {
        if (_wcsicmp(name, attr_names[i]) == 0) {
            *out = SysAllocString(attr_values[i]);
            return *out != NULL ? S_OK : E_OUTOFMEMORY;
        }
    }
    return CERTSRV_E_PROPERTY_EMPTY;
}

static HRESULT WINAPI srv_GetCertificateExtension(ICertServerExit *iface, const BSTR oid, LONG type,
                                                  VARIANT *v)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    const struct leaf *lf = This->table != NULL ? This->table->leaf : NULL;
    int i;

    VariantInit(v);
    TRAP(type == PROPTYPE_BINARY, "extension %ls read as type %ld", oid, (long)type);
    if (lf == NULL)
        return CERTSRV_E_PROPERTY_EMPTY;
    for (i = 0; i < lf->next; i++) {
        if (wcscmp(lf->ext[i].oid, oid) == 0) {
            V_BSTR(v) =
                SysAllocStringByteLen((const char *)lf->ext[i].value.data, lf->ext[i].value.len);
            if (V_BSTR(v) == NULL)
                return E_OUTOFMEMORY;
            V_VT(v) = VT_BSTR;
            This->last_ext = i;
            return S_OK;
        }
    }
    return CERTSRV_E_PROPERTY_EMPTY;
}

static HRESULT WINAPI srv_GetCertificateExtensionFlags(ICertServerExit *iface, LONG *flags)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    const struct leaf *lf = This->table != NULL ? This->table->leaf : NULL;

    *flags = 0;
    TRAP(lf != NULL && This->last_ext >= 0, "GetCertificateExtensionFlags before an extension");
    if (lf == NULL || This->last_ext < 0)
        return E_UNEXPECTED;
    *flags = lf->ext[This->last_ext].flags;
    return S_OK;
}

static HRESULT WINAPI srv_EnumerateExtensionsSetup(ICertServerExit *iface, LONG flags)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    TRAP(This->context_set, "EnumerateExtensionsSetup before SetContext");
    This->ext_pos = 0;
    This->ext_open = 1;
    return S_OK;
}

static HRESULT WINAPI srv_EnumerateExtensions(ICertServerExit *iface, BSTR *oid)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);
    const struct leaf *lf = This->table != NULL ? This->table->leaf : NULL;

    *oid = NULL;
    TRAP(This->ext_open, "EnumerateExtensions without EnumerateExtensionsSetup");
    if (lf == NULL || This->ext_pos >= lf->next)
        return S_FALSE;
    *oid = SysAllocString(lf->ext[This->ext_pos++].oid);
    return *oid != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI srv_EnumerateExtensionsClose(ICertServerExit *iface)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    TRAP(This->ext_open, "EnumerateExtensionsClose without EnumerateExtensionsSetup");
    This->ext_open = 0;
    return S_OK;
}

static HRESULT WINAPI srv_EnumerateAttributesSetup(ICertServerExit *iface, LONG flags)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    TRAP(This->context_set, "EnumerateAttributesSetup before SetContext");
    This->attr_pos = 0;
    This->attr_open = 1;
    return S_OK;
}

static HRESULT WINAPI srv_EnumerateAttributes(ICertServerExit *iface, BSTR *name)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    *name = NULL;
    TRAP(This->attr_open, "EnumerateAttributes without EnumerateAttributesSetup");
    if (This->table == NULL || This->table->context == CA_CONTEXT ||
        This->attr_pos >= (int)(sizeof(attr_names) / sizeof(attr_names[0])))
        return S_FALSE;
    *name = SysAllocString(attr_names[This->attr_pos++]);
    return *name != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI srv_EnumerateAttributesClose(ICertServerExit *iface)
{
    struct fake_server *This = impl_from_ICertServerExit(iface);

    TRAP(This->attr_open, "EnumerateAttributesClose without EnumerateAttributesSetup");
    This->attr_open = 0;
    return S_OK;
}

static const ICertServerExitVtbl srv_vtbl = {
    srv_QueryInterface,
    srv_AddRef,
    srv_Release,
    srv_GetTypeInfoCount,
    srv_GetTypeInfo,
    srv_GetIDsOfNames,
    srv_Invoke,
    srv_SetContext,
    srv_GetRequestProperty,
    srv_GetRequestAttribute,
    srv_GetCertificateProperty,
    srv_GetCertificateExtension,
    srv_GetCertificateExtensionFlags,
    srv_EnumerateExtensionsSetup,
    srv_EnumerateExtensions,
    srv_EnumerateExtensionsClose,
    srv_EnumerateAttributesSetup,
    srv_EnumerateAttributes,
    srv_EnumerateAttributesClose,
};

/* The class factory is a static object with a static vtable, as in Wine's tests. */
static HRESULT WINAPI cf_QueryInterface(IClassFactory *iface, REFIID riid, void **out)
{
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IClassFactory)) {
        *out = iface;
        return S_OK;
    }
    return E_NOINTERFACE;
}

static ULONG WINAPI cf_AddRef(IClassFactory *iface)
{
    return 2;
}

static ULONG WINAPI cf_Release(IClassFactory *iface)
{
    return 1;
}

static HRESULT WINAPI cf_CreateInstance(IClassFactory *iface, IUnknown *outer, REFIID riid,
                                        void **out)
{
    struct fake_server *obj;
    HRESULT hr;

    *out = NULL;
    if (outer != NULL)
        return CLASS_E_NOAGGREGATION;
    obj = calloc(1, sizeof(*obj));
    if (obj == NULL)
        return E_OUTOFMEMORY;
    obj->ICertServerExit_iface.lpVtbl = &srv_vtbl;
    obj->refcount = 1;
    obj->last_ext = -1;
    InterlockedIncrement(&live_servers);
    InterlockedIncrement(&created_servers);
    hr = srv_QueryInterface(&obj->ICertServerExit_iface, riid, out);
    srv_Release(&obj->ICertServerExit_iface);
    return hr;
}

static HRESULT WINAPI cf_LockServer(IClassFactory *iface, BOOL lock)
{
    return S_OK;
}

static const IClassFactoryVtbl cf_vtbl = {
    cf_QueryInterface, cf_AddRef, cf_Release, cf_CreateInstance, cf_LockServer,
};
static IClassFactory server_factory = {&cf_vtbl};

/* ------------------------------------------------------------------------------------------ */
/* The module's settings                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Writes the settings where certsrv keeps them: at module_location, the key of the CA's sanitized
 * name, as `certutil -setreg exit\CertRelay.Exit\<value>` does. */
static void write_settings(const WCHAR *pipe, const WCHAR *spool, DWORD timeout_ms,
                           const WCHAR *service)
{
    DWORD mask = 0x3ff, zero = 0;
    HKEY key;
    LONG err;

    err = RegCreateKeyExW(HKEY_LOCAL_MACHINE, module_location, 0, NULL, 0, KEY_SET_VALUE, NULL,
                          &key, NULL);
    if (err != ERROR_SUCCESS)
        die("cannot create the settings key (error %ld)", (long)err);
    RegSetValueExW(key, L"PipeName", 0, REG_SZ, (const BYTE *)pipe,
                   (DWORD)((wcslen(pipe) + 1) * sizeof(WCHAR)));
    RegSetValueExW(key, L"SpoolDir", 0, REG_SZ, (const BYTE *)spool,
                   (DWORD)((wcslen(spool) + 1) * sizeof(WCHAR)));
    RegSetValueExW(key, L"TimeoutMs", 0, REG_DWORD, (const BYTE *)&timeout_ms, sizeof(DWORD));
    RegSetValueExW(key, L"EventMask", 0, REG_DWORD, (const BYTE *)&mask, sizeof(DWORD));
    RegSetValueExW(key, L"CaptureRawRequest", 0, REG_DWORD, (const BYTE *)&zero, sizeof(DWORD));
    RegSetValueExW(key, L"BrokerService", 0, REG_SZ, (const BYTE *)service,
                   (DWORD)((wcslen(service) + 1) * sizeof(WCHAR)));
    RegCloseKey(key);
}

/* ------------------------------------------------------------------------------------------ */
/* Identity checks: ProgID, description, manage module                                          */
/* ------------------------------------------------------------------------------------------ */

static void check_manage_property(ICertManageModule *mm, const WCHAR *name)
{
    BSTR bname = SysAllocString(name);
    VARIANT v;
    HRESULT hr;

    VariantInit(&v);
    hr = ICertManageModule_GetProperty(mm, NULL, NULL, bname, 0, &v);
    CHECK(hr == S_OK, "GetProperty(\"%ls\") returned 0x%08lx", name, (unsigned long)hr);
    CHECK(V_VT(&v) == VT_BSTR && V_BSTR(&v) != NULL && SysStringLen(V_BSTR(&v)) > 0,
          "GetProperty(\"%ls\") gave no string", name);
    if (hr == S_OK && V_VT(&v) == VT_BSTR)
        printf("harness: %-16ls = %ls\n", name, V_BSTR(&v));
    VariantClear(&v);
    SysFreeString(bname);
}

static void check_identity(ICertExit2 *ex)
{
    ICertManageModule *mm = NULL;
    ICertExit *ex1 = NULL;
    IDispatch *disp = NULL;
    BSTR desc = NULL, unknown, config;
    VARIANT v;
    UINT count = 99;
    CLSID clsid;
    HRESULT hr;

    hr = ICertExit2_GetDescription(ex, &desc);
    CHECK(hr == S_OK && desc != NULL && SysStringLen(desc) > 0, "GetDescription: 0x%08lx",
          (unsigned long)hr);
    if (desc != NULL)
        printf("harness: description      = %ls\n", desc);
    SysFreeString(desc);

    hr = ICertExit2_QueryInterface(ex, &IID_ICertExit, (void **)&ex1);
    CHECK(hr == S_OK && ex1 != NULL, "QueryInterface(ICertExit): 0x%08lx", (unsigned long)hr);
    if (ex1 != NULL)
        ICertExit_Release(ex1);
    hr = ICertExit2_QueryInterface(ex, &IID_IDispatch, (void **)&disp);
    CHECK(hr == S_OK && disp != NULL, "QueryInterface(IDispatch): 0x%08lx", (unsigned long)hr);
    if (disp != NULL) {
        hr = IDispatch_GetTypeInfoCount(disp, &count);
        CHECK(hr == S_OK && count == 0, "GetTypeInfoCount: 0x%08lx, %u", (unsigned long)hr, count);
        IDispatch_Release(disp);
    }
    hr = ICertExit2_QueryInterface(ex, &IID_ICertServerExit, (void **)&disp);
    CHECK(hr == E_NOINTERFACE && disp == NULL, "QueryInterface(unrelated) must fail");

    hr = ICertExit2_GetManageModule(ex, &mm);
    CHECK(hr == S_OK && mm != NULL, "GetManageModule: 0x%08lx", (unsigned long)hr);
    if (mm != NULL) {
        /* The snap-in's names, in varying case: the comparison must ignore it. */
        check_manage_property(mm, L"Name");
        check_manage_property(mm, L"description");
        check_manage_property(mm, L"COPYRIGHT");
        check_manage_property(mm, L"File Version");
        check_manage_property(mm, L"product version");
        unknown = SysAllocString(L"NoSuchProperty");
        VariantInit(&v);
        hr = ICertManageModule_GetProperty(mm, NULL, NULL, unknown, 0, &v);
        CHECK(hr == S_FALSE && V_VT(&v) == VT_EMPTY,
              "GetProperty(unknown) returned 0x%08lx, vt %u (want S_FALSE, VT_EMPTY)",
              (unsigned long)hr, V_VT(&v));
        VariantClear(&v);
        V_VT(&v) = VT_I4;
        V_I4(&v) = 0;
        hr = ICertManageModule_SetProperty(mm, NULL, NULL, unknown, 0, &v);
        CHECK(hr == S_OK, "SetProperty: 0x%08lx", (unsigned long)hr);
        SysFreeString(unknown);
        /* Configure reports to the Event Log, plus a message box on a visible desktop; under
         * Wine without a display the box returns at once, so this cannot hang the test. */
        config = SysAllocString(L"CA01\\CertRelay-Wine-CA");
        hr = ICertManageModule_Configure(mm, config, NULL, 0);
        CHECK(hr == S_OK, "Configure: 0x%08lx", (unsigned long)hr);
        /* The snap-in passes the storage location (ModuleRegistryLocation); refresh-only asks for
         * no user interface at all. */
        {
            BSTR storage = SysAllocString(module_location);
            hr = ICertManageModule_Configure(mm, config, storage, CMM_REFRESHONLY);
            CHECK(hr == S_OK, "Configure(storage, CMM_REFRESHONLY): 0x%08lx", (unsigned long)hr);
            SysFreeString(storage);
        }
        SysFreeString(config);
        ICertManageModule_Release(mm);
    }

    /* The manage class is registered under its own ProgID too, for the CA snap-in. */
    hr = CLSIDFromProgID(L"CertRelay.ExitManage", &clsid);
    CHECK(hr == S_OK && IsEqualCLSID(&clsid, &CLSID_CertRelayExitManage),
          "CLSIDFromProgID(CertRelay.ExitManage): 0x%08lx", (unsigned long)hr);
    mm = NULL;
    hr = CoCreateInstance(&clsid, NULL, CLSCTX_INPROC_SERVER, &IID_ICertManageModule, (void **)&mm);
    CHECK(hr == S_OK && mm != NULL, "CoCreateInstance(CertRelay.ExitManage): 0x%08lx",
          (unsigned long)hr);
    if (mm != NULL)
        ICertManageModule_Release(mm);
}

/* ------------------------------------------------------------------------------------------ */
/* Concurrent Notify                                                                            */
/* ------------------------------------------------------------------------------------------ */

struct call {
    LONG kind; /* index into kinds[] */
    LONG context;
    HRESULT hr;
    double ms;
};

struct worker {
    ICertExit2 *ex;
    struct call *calls;
    int ncalls;
    HANDLE go;
};

static double qpc_ms(void)
{
    static LARGE_INTEGER freq;
    LARGE_INTEGER now;

    if (freq.QuadPart == 0)
        QueryPerformanceFrequency(&freq);
    QueryPerformanceCounter(&now);
    return (double)now.QuadPart * 1000.0 / (double)freq.QuadPart;
}

/* The worker threads never call CoInitializeEx: certsrv's threads may or may not have joined an
 * apartment, and the module must cope with both. */
static DWORD WINAPI worker_main(void *arg)
{
    struct worker *w = arg;
    int i;

    WaitForSingleObject(w->go, INFINITE);
    for (i = 0; i < w->ncalls; i++) {
        struct call *c = &w->calls[i];
        double t0 = qpc_ms();

        c->hr = ICertExit2_Notify(w->ex, kinds[c->kind].bit, c->context);
        c->ms = qpc_ms() - t0;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

/* Opens service name with the given access; *scm must be closed too (both NULL on failure). */
static SC_HANDLE open_service(const char *name, DWORD access, SC_HANDLE *scm)
{
    WCHAR *wname = wdup(name);
    SC_HANDLE svc = NULL;

    *scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (*scm != NULL)
        svc = OpenServiceW(*scm, wname, access);
    free(wname);
    return svc;
}

static void close_service(SC_HANDLE svc, SC_HANDLE scm)
{
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
}

/* Sends PARAMCHANGE to a running service, as an administrator's tool would. */
static int send_paramchange(const char *name)
{
    SC_HANDLE scm, svc = open_service(name, SERVICE_PAUSE_CONTINUE | SERVICE_QUERY_STATUS, &scm);
    SERVICE_STATUS st;
    BOOL ok = svc != NULL && ControlService(svc, SERVICE_CONTROL_PARAMCHANGE, &st);

    printf("harness: PARAMCHANGE to %s: %s (error %lu)\n", name, ok ? "accepted" : "refused",
           ok ? 0ul : (unsigned long)GetLastError());
    close_service(svc, scm);
    return ok ? 0 : 1;
}

/* Changes a service's command line, as "sc config SERVICE binPath= ..." would. */
static int set_binpath(const char *name, const char *cmdline)
{
    SC_HANDLE scm, svc = open_service(name, SERVICE_CHANGE_CONFIG, &scm);
    WCHAR *wcmd = wdup(cmdline);
    BOOL ok = svc != NULL &&
              ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE,
                                   wcmd, NULL, NULL, NULL, NULL, NULL, NULL);

    printf("harness: binPath of %s: %s (error %lu)\n", name, ok ? "changed" : "unchanged",
           ok ? 0ul : (unsigned long)GetLastError());
    close_service(svc, scm);
    free(wcmd);
    return ok ? 0 : 1;
}

/* Runs a service under another account, as "sc config SERVICE obj= ACCOUNT" and "sc sidtype
 * SERVICE unrestricted" would; a virtual account (NT SERVICE\\...) has no password. */
static int set_account(const char *name, const char *account)
{
    SC_HANDLE scm, svc = open_service(name, SERVICE_CHANGE_CONFIG, &scm);
    SERVICE_SID_INFO sid = {SERVICE_SID_TYPE_UNRESTRICTED};
    WCHAR *wacct = wdup(account);
    BOOL ok = svc != NULL &&
              ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE, SERVICE_NO_CHANGE,
                                   NULL, NULL, NULL, NULL, wacct, L"", NULL);
    BOOL sid_ok = ok && ChangeServiceConfig2W(svc, SERVICE_CONFIG_SERVICE_SID_INFO, &sid);

    printf("harness: account of %s: %s, SID type: %s (error %lu)\n", name,
           ok ? "changed" : "unchanged", sid_ok ? "unrestricted" : "unchanged",
           ok && sid_ok ? 0ul : (unsigned long)GetLastError());
    close_service(svc, scm);
    free(wacct);
    return ok ? 0 : 1;
}

/* ------------------------------------------------------------------------------------------ */
/* main                                                                                         */
/* ------------------------------------------------------------------------------------------ */

static const char *arg_value(int argc, char **argv, const char *name, const char *def)
{
    int i;

    for (i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return def;
}

static int arg_flag(int argc, char **argv, const char *name)
{
    int i;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *fixtures = arg_value(argc, argv, "--fixtures", NULL);
    const char *ca = arg_value(argc, argv, "--ca", "CertRelay-Wine-CA");
    const char *regkey = arg_value(argc, argv, "--registry-key", ca);
    const char *service = arg_value(argc, argv, "--broker-service", "CertRelay");
    const char *pipe = arg_value(argc, argv, "--pipe", NULL);
    const char *spool = arg_value(argc, argv, "--spool", NULL);
    const char *expect = arg_value(argc, argv, "--expect", NULL);
    const char *rows_path = arg_value(argc, argv, "--rows", NULL);
    int nthreads = atoi(arg_value(argc, argv, "--threads", "8"));
    int rounds = atoi(arg_value(argc, argv, "--rounds", "2"));
    DWORD timeout_ms = (DWORD)atol(arg_value(argc, argv, "--timeout-ms", "2000"));
    double guard_ms = atof(arg_value(argc, argv, "--guard-ms", "10000"));
    HRESULT (*can_unload)(void) = NULL;
    struct worker *workers;
    struct call *calls;
    HANDLE *threads, go;
    ICertExit2 *ex = NULL;
    HMODULE dll;
    double *lat, worst = 0;
    DWORD cookie = 0;
    UINT error_mode;
    CLSID clsid;
    BSTR bca;
    LONG mask = 0;
    HRESULT hr;
    FILE *ef;
    int total, i, t, r, k, ncalls = 0, slow = 0, failed_calls = 0;

    if (arg_value(argc, argv, "--paramchange", NULL) != NULL)
        return send_paramchange(arg_value(argc, argv, "--paramchange", NULL));
    if (argc == 4 && strcmp(argv[1], "--set-binpath") == 0)
        return set_binpath(argv[2], argv[3]);
    if (argc == 4 && strcmp(argv[1], "--set-account") == 0)
        return set_account(argv[2], argv[3]);
    first_request = atol(arg_value(argc, argv, "--first-request", "1000"));
    if (fixtures == NULL || pipe == NULL || spool == NULL || expect == NULL || nthreads < 1 ||
        nthreads > 64 || rounds < 1 || rounds > 100 || first_request < 1)
        die("usage: harness --fixtures DIR --ca NAME --pipe PIPE --spool DIR --expect FILE "
            "[--threads N] [--rounds N] [--first-request ID] [--timeout-ms MS] [--guard-ms MS]");
    setvbuf(stdout, NULL, _IONBF, 0);

    load_fixtures(fixtures);
    {
        WCHAR *w = wdup(regkey);

        _snwprintf(sanitized_name, 128, L"%ls", w);
        sanitized_name[127] = L'\0';
        _snwprintf(module_location, 512,
                   L"SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration\\%ls"
                   L"\\ExitModules\\CertRelay.Exit",
                   w);
        module_location[511] = L'\0';
        free(w);
    }
    build_ca_table();

    hr = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    if (FAILED(hr))
        die("CoInitializeEx: 0x%08lx", (unsigned long)hr);
    hr = CoRegisterClassObject(&CLSID_CCertServerExit, (IUnknown *)&server_factory,
                               CLSCTX_INPROC_SERVER, REGCLS_MULTIPLEUSE, &cookie);
    if (FAILED(hr))
        die("CoRegisterClassObject(CCertServerExit): 0x%08lx", (unsigned long)hr);

    /* Found by ProgID, as certsrv finds it from the Active list. */
    hr = CLSIDFromProgID(L"CertRelay.Exit", &clsid);
    CHECK(hr == S_OK, "CLSIDFromProgID(CertRelay.Exit): 0x%08lx (not registered?)",
          (unsigned long)hr);
    if (FAILED(hr))
        goto done;
    CHECK(IsEqualCLSID(&clsid, &CLSID_CertRelayExit), "CertRelay.Exit maps to another CLSID");
    hr = CoCreateInstance(&clsid, NULL, CLSCTX_INPROC_SERVER, &IID_ICertExit2, (void **)&ex);
    CHECK(hr == S_OK && ex != NULL, "CoCreateInstance(CertRelay.Exit): 0x%08lx", (unsigned long)hr);
    if (FAILED(hr))
        goto done;
    dll = GetModuleHandleW(L"certrelay_exit.dll");
    if (dll != NULL)
        can_unload = (HRESULT(*)(void))(void *)GetProcAddress(dll, "DllCanUnloadNow");
    CHECK(can_unload != NULL, "certrelay_exit.dll does not export DllCanUnloadNow");
    if (can_unload != NULL)
        CHECK(can_unload() == S_FALSE, "DllCanUnloadNow says S_OK while an object is alive");

    if (!arg_flag(argc, argv, "--skip-identity"))
        check_identity(ex);

    {
        WCHAR *wca = wdup(ca), *wpipe = wdup(pipe), *wspool = wdup(spool);
        WCHAR *wservice = wdup(service);

        write_settings(wpipe, wspool, timeout_ms, wservice);
        bca = SysAllocString(wca);
        free(wca);
        free(wpipe);
        free(wspool);
        free(wservice);
    }
    /* certsrv's error mode must survive the module (libuv's setup would replace it). */
    SetErrorMode(SEM_FAILCRITICALERRORS);
    error_mode = GetErrorMode();
    hr = ICertExit2_Initialize(ex, bca, &mask);
    SysFreeString(bca);
    CHECK(hr == S_OK, "Initialize: 0x%08lx", (unsigned long)hr);
    /* Every event but STARTUP, which certsrv never fires: the module raised it in Initialize. */
    CHECK(mask == 0x37f, "Initialize returned mask 0x%lx, want 0x37f", (unsigned long)mask);
    if (FAILED(hr))
        goto done;

    if (rows_path != NULL) {
        struct db_row *rows = NULL;
        int nrows = load_rows(rows_path, &rows), sent = 0;

        /* At most two notifications per row; contexts are 1, 2, ... as certsrv's are per call. */
        first_request = 1;
        req_tables = calloc((size_t)nrows * 2 + 1, sizeof(*req_tables));
        if (req_tables == NULL)
            die("out of memory");
        for (i = 0; i < nrows; i++) {
            const struct db_row *row = &rows[i];
            LONG stages[2][2] = {{0, 0}, {0, 0}}; /* {event, disposition} */
            int nstages = 0;

            if (!row->live)
                continue;
            if (row->disposition == 9)
                stages[nstages][0] = EXITEVENT_CERTPENDING, stages[nstages++][1] = 9;
            else if (row->disposition == 31)
                stages[nstages][0] = EXITEVENT_CERTDENIED, stages[nstages++][1] = 31;
            else
                stages[nstages][0] = EXITEVENT_CERTISSUED, stages[nstages++][1] = 20;
            if (row->disposition == 21)
                stages[nstages][0] = EXITEVENT_CERTREVOKED, stages[nstages++][1] = 21;
            /* live 2: the module saw the first event only (issued, not the revocation). */
            if (row->live == 2)
                nstages = 1;
            for (k = 0; k < nstages; k++) {
                LONG context = (LONG)(sent + 1);

                build_row_table(&req_tables[sent], context, row, stages[k][1]);
                nrequests = sent + 1;
                hr = ICertExit2_Notify(ex, stages[k][0], context);
                CHECK(hr == S_OK, "Notify(0x%lx) for request %ld: 0x%08lx", (long)stages[k][0],
                      (long)row->request_id, (unsigned long)hr);
                sent++;
            }
        }
        printf("harness: %d notifications for the live rows of %s\n", sent, rows_path);
        ICertExit2_Release(ex);
        ex = NULL;
        CHECK(InterlockedCompareExchange(&live_servers, 0, 0) == 0,
              "%ld server objects were never released", (long)live_servers);
        free(rows);
        goto done;
    }

    /* Every thread notifies every kind once per round, in a different order per thread. */
    total = nthreads * rounds * NKINDS;
    calls = calloc((size_t)total, sizeof(*calls));
    workers = calloc((size_t)nthreads, sizeof(*workers));
    threads = calloc((size_t)nthreads, sizeof(*threads));
    req_tables = calloc((size_t)total, sizeof(*req_tables));
    lat = calloc((size_t)total, sizeof(*lat));
    if (calls == NULL || workers == NULL || threads == NULL || req_tables == NULL || lat == NULL)
        die("out of memory");
    ef = fopen(expect, "w");
    if (ef == NULL)
        die("cannot write %s", expect);
    fprintf(ef, "0\tstartup\t-\n"); /* raised by Initialize */
    for (t = 0; t < nthreads; t++) {
        workers[t].calls = &calls[ncalls];
        for (r = 0; r < rounds; r++) {
            for (k = 0; k < NKINDS; k++) {
                struct call *c = &calls[ncalls];
                int kind = (k + t) % NKINDS;
                LONG id = first_request + ncalls;

                c->kind = kind;
                if (kinds[kind].disposition == 0) {
                    c->context = CA_CONTEXT;
                } else {
                    c->context = id;
                    build_request_table(&req_tables[ncalls], id, &kinds[kind]);
                }
                fprintf(ef, "%ld\t%s\t%s\n", (long)c->context, kinds[kind].name,
                        req_tables[ncalls].leaf != NULL          ? req_tables[ncalls].leaf->file
                        : kinds[kind].bit == EXITEVENT_CRLISSUED ? "crl"
                                                                 : "-");
                ncalls++;
                workers[t].ncalls++;
            }
        }
    }
    nrequests = ncalls;
    fclose(ef);

    go = CreateEventW(NULL, TRUE, FALSE, NULL);
    for (t = 0; t < nthreads; t++) {
        workers[t].ex = ex;
        workers[t].go = go;
        threads[t] = CreateThread(NULL, 0, worker_main, &workers[t], 0, NULL);
        if (threads[t] == NULL)
            die("CreateThread failed");
    }
    SetEvent(go);
    WaitForMultipleObjects((DWORD)nthreads, threads, TRUE, INFINITE);
    for (t = 0; t < nthreads; t++)
        CloseHandle(threads[t]);
    CloseHandle(go);

    for (i = 0; i < ncalls; i++) {
        lat[i] = calls[i].ms;
        if (calls[i].ms > worst)
            worst = calls[i].ms;
        if (calls[i].hr != S_OK) {
            failed_calls++;
            fprintf(stderr, "harness: Notify(%s, %ld) returned 0x%08lx\n",
                    kinds[calls[i].kind].name, (long)calls[i].context, (unsigned long)calls[i].hr);
        }
        if (calls[i].ms > (double)timeout_ms + guard_ms)
            slow++;
    }
    CHECK(GetErrorMode() == error_mode,
          "the module changed the process error mode from 0x%x to "
          "0x%x",
          error_mode, GetErrorMode());
    qsort(lat, (size_t)ncalls, sizeof(lat[0]), cmp_double);
    CHECK(failed_calls == 0, "%d of %d Notify calls did not return S_OK", failed_calls, ncalls);
    CHECK(slow == 0,
          "%d Notify calls took longer than the timeout (%lu ms) plus the guard "
          "(%.0f ms)",
          slow, (unsigned long)timeout_ms, guard_ms);
    printf("harness: %d Notify calls from %d threads: all S_OK: %s; latency p50 %.1f ms, "
           "p99 %.1f ms, max %.1f ms (timeout %lu ms)\n",
           ncalls, nthreads, failed_calls == 0 ? "yes" : "NO", lat[ncalls / 2],
           lat[(ncalls * 99) / 100 < ncalls ? (ncalls * 99) / 100 : ncalls - 1], worst,
           (unsigned long)timeout_ms);

    ICertExit2_Release(ex);
    ex = NULL;
    CHECK(InterlockedCompareExchange(&live_servers, 0, 0) == 0,
          "%ld server objects were never released", (long)live_servers);
    CHECK(created_servers >= ncalls, "only %ld server objects for %d Notify calls",
          (long)created_servers, ncalls);
    if (can_unload != NULL)
        CHECK(can_unload() == S_OK, "DllCanUnloadNow says S_FALSE after every object was "
                                    "released (a module lock leaked)");
    free(calls);
    free(workers);
    free(threads);
    free(lat);

done:
    if (ex != NULL)
        ICertExit2_Release(ex);
    if (cookie != 0)
        CoRevokeClassObject(cookie);
    CoUninitialize();
    printf("harness: %ld passed, %ld failed\n", (long)passes, (long)failures);
    return failures == 0 ? 0 : 1;
}
