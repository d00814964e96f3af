/*
 * The stub core's property reader (struct crs_prop_reader) backed by certsrv's ICertServerExit.
 *
 * certsrv hands every value as a VARIANT: VT_I4 for LONG, VT_DATE for DATE, and VT_BSTR for both
 * STRING and BINARY (a binary value is a BSTR holding raw bytes, sized with SysStringByteLen,
 * never with SysStringLen or a terminator). A missing value is CERTSRV_E_PROPERTY_EMPTY, which the
 * core expects as CRS_ENOENT. Every VARIANT is cleared and every BSTR freed on every path, and
 * every size is capped before anything is allocated for it.
 */
#include <string.h>

#include "dll.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/frame.h"
#include "certrelay/timefmt.h"

/* A binary value can be at most a whole frame (a large CRL); a string is a name or a message. */
#define READER_MAX_BINARY CRS_FRAME_MAX
#define READER_MAX_STRING (1024u * 1024u)
/* certsrv's enumerations end with S_FALSE; these bound a misbehaving server anyway. */
#define READER_MAX_EXTENSIONS 1024
#define READER_MAX_ATTRIBUTES 1024
#define READER_MAX_NAME       1024

enum prop_source { SOURCE_REQUEST, SOURCE_CERTIFICATE };

int crs_win_hresult_error(HRESULT hr)
{
    if (hr == CERTSRV_E_PROPERTY_EMPTY)
        return CRS_ENOENT;
    if (hr == E_OUTOFMEMORY)
        return CRS_ENOMEM;
    if (hr == E_INVALIDARG || hr == E_POINTER)
        return CRS_EINVAL;
    if (HRESULT_FACILITY(hr) == FACILITY_WIN32)
        return crs_translate_sys_error((int)HRESULT_CODE(hr));
    return CRS_EIO;
}

/* Property names come from the core in ASCII; certsrv wants a BSTR. */
static int name_to_bstr(const char *name, BSTR *out)
{
    WCHAR *w = NULL;
    int rc;

    *out = NULL;
    if (name == NULL || strnlen(name, READER_MAX_NAME + 1) > READER_MAX_NAME)
        return CRS_EINVAL;
    rc = crs_win_wide(name, 0, &w);
    if (rc != 0)
        return rc;
    *out = SysAllocString(w);
    crs_free(w);
    return *out != NULL ? 0 : CRS_ENOMEM;
}

/* Copies a BSTR holding raw bytes into a fresh buffer. */
static int bstr_to_binary(BSTR b, struct crs_prop_value *out)
{
    UINT len = SysStringByteLen(b);

    if (len > READER_MAX_BINARY)
        return CRS_ETOOBIG;
    /* One byte more so an empty value still gets a valid pointer. */
    out->bin = crs_malloc((size_t)len + 1);
    if (out->bin == NULL)
        return CRS_ENOMEM;
    if (len > 0)
        memcpy(out->bin, b, len);
    out->len = len;
    return 0;
}

/* Fills out from a VARIANT of the requested type; a type certsrv should not have sent for it is
 * a protocol error rather than something to guess about. */
static int variant_to_value(const VARIANT *v, enum crs_prop_type type, struct crs_prop_value *out)
{
    out->type = (int)type;
    switch (type) {
    case CRS_PROP_LONG:
        if (V_VT(v) == VT_I4)
            out->l = V_I4(v);
        else if (V_VT(v) == VT_INT)
            out->l = V_INT(v);
        else if (V_VT(v) == VT_I2)
            out->l = V_I2(v);
        else if (V_VT(v) == VT_UI4)
            out->l = V_UI4(v);
        else
            return CRS_EPROTO;
        return 0;
    case CRS_PROP_DATE:
        if (V_VT(v) != VT_DATE)
            return CRS_EPROTO;
        return crs_time_from_ole_date(V_DATE(v), &out->date_ms);
    case CRS_PROP_BINARY:
        if (V_VT(v) != VT_BSTR)
            return CRS_EPROTO;
        return bstr_to_binary(V_BSTR(v), out);
    case CRS_PROP_STRING:
        if (V_VT(v) != VT_BSTR)
            return CRS_EPROTO;
        if (V_BSTR(v) == NULL) {
            out->str = crs_strdup("");
            return out->str != NULL ? 0 : CRS_ENOMEM;
        }
        return crs_win_utf8(V_BSTR(v), (int)SysStringLen(V_BSTR(v)), READER_MAX_STRING, &out->str,
                            &out->len);
    }
    return CRS_EINVAL;
}

static int read_property(ICertServerExit *server, enum prop_source source, const char *name,
                         enum crs_prop_type type, struct crs_prop_value *out)
{
    BSTR bname = NULL;
    VARIANT v;
    HRESULT hr;
    int rc;

    memset(out, 0, sizeof(*out));
    VariantInit(&v);
    if (type < CRS_PROP_LONG || type > CRS_PROP_STRING)
        return CRS_EINVAL;
    rc = name_to_bstr(name, &bname);
    if (rc != 0)
        goto cleanup;
    if (source == SOURCE_REQUEST)
        hr = ICertServerExit_GetRequestProperty(server, bname, (LONG)type, &v);
    else
        hr = ICertServerExit_GetCertificateProperty(server, bname, (LONG)type, &v);
    if (FAILED(hr)) {
        rc = crs_win_hresult_error(hr);
        goto cleanup;
    }
    /* Some servers answer "empty" with success and VT_EMPTY/VT_NULL. */
    if (V_VT(&v) == VT_EMPTY || V_VT(&v) == VT_NULL) {
        rc = CRS_ENOENT;
        goto cleanup;
    }
    rc = variant_to_value(&v, type, out);

cleanup:
    VariantClear(&v);
    SysFreeString(bname);
    if (rc != 0)
        crs_prop_value_clear(out);
    return rc;
}

static int get_request(void *ctx, const char *name, enum crs_prop_type type,
                       struct crs_prop_value *out)
{
    struct crs_win_reader *wr = ctx;

    return read_property(wr->server, SOURCE_REQUEST, name, type, out);
}

static int get_certificate(void *ctx, const char *name, enum crs_prop_type type,
                           struct crs_prop_value *out)
{
    struct crs_win_reader *wr = ctx;

    return read_property(wr->server, SOURCE_CERTIFICATE, name, type, out);
}

/*
 * CA-level properties (CertCount, CRLState.#, RawCRL.#, ...) are certificate properties read at
 * context 0. The notification's context is restored afterwards, whatever happened, so the next
 * request property read sees the request again.
 */
static int get_ca(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *out)
{
    struct crs_win_reader *wr = ctx;
    HRESULT hr;
    int rc;

    memset(out, 0, sizeof(*out));
    if (wr->context != 0) {
        hr = ICertServerExit_SetContext(wr->server, 0);
        if (FAILED(hr))
            return crs_win_hresult_error(hr);
    }
    rc = read_property(wr->server, SOURCE_CERTIFICATE, name, type, out);
    if (wr->context != 0) {
        hr = ICertServerExit_SetContext(wr->server, wr->context);
        if (FAILED(hr) && rc == 0) {
            crs_prop_value_clear(out);
            rc = crs_win_hresult_error(hr);
        }
    }
    return rc;
}

/* Reads one extension found by the enumeration and hands it to the callback. Returns the
 * callback's verdict (non-zero: stop), 0 for an extension that could not be read (skipped, so
 * one odd extension does not hide the others), or a negative code for a fatal error. */
static int read_extension(ICertServerExit *server, BSTR oid, crs_ext_cb cb, void *arg)
{
    char *oid8 = NULL;
    VARIANT v;
    LONG flags = 0;
    HRESULT hr;
    int rc;

    VariantInit(&v);
    rc = crs_win_utf8(oid, (int)SysStringLen(oid), READER_MAX_NAME, &oid8, NULL);
    if (rc != 0) {
        rc = rc == CRS_ENOMEM ? rc : 0;
        goto cleanup;
    }
    hr = ICertServerExit_GetCertificateExtension(server, oid, PROPTYPE_BINARY, &v);
    if (FAILED(hr) || V_VT(&v) != VT_BSTR) {
        rc = hr == E_OUTOFMEMORY ? CRS_ENOMEM : 0;
        goto cleanup;
    }
    if (SysStringByteLen(V_BSTR(&v)) > READER_MAX_BINARY)
        goto cleanup;
    /* The flags belong to the extension read last, so they are asked for right after it. */
    hr = ICertServerExit_GetCertificateExtensionFlags(server, &flags);
    if (FAILED(hr))
        flags = 0;
    rc = cb(arg, oid8, (uint32_t)flags, (flags & EXTENSION_CRITICAL_FLAG) != 0,
            (const uint8_t *)V_BSTR(&v), SysStringByteLen(V_BSTR(&v)));
    if (rc < 0)
        rc = 1;

cleanup:
    VariantClear(&v);
    crs_free(oid8);
    return rc;
}

static int enum_extensions(void *ctx, crs_ext_cb cb, void *arg)
{
    struct crs_win_reader *wr = ctx;
    BSTR oid = NULL;
    HRESULT hr;
    int rc = 0, i;

    if (cb == NULL)
        return CRS_EINVAL;
    hr = ICertServerExit_EnumerateExtensionsSetup(wr->server, 0);
    if (FAILED(hr))
        return crs_win_hresult_error(hr);
    for (i = 0; i < READER_MAX_EXTENSIONS; i++) {
        hr = ICertServerExit_EnumerateExtensions(wr->server, &oid);
        if (hr != S_OK) {
            /* S_FALSE is the end; a failure ends the list as well. */
            if (FAILED(hr) && hr != CERTSRV_E_PROPERTY_EMPTY)
                rc = crs_win_hresult_error(hr);
            break;
        }
        if (oid == NULL)
            continue;
        rc = read_extension(wr->server, oid, cb, arg);
        SysFreeString(oid);
        oid = NULL;
        if (rc != 0)
            break;
    }
    SysFreeString(oid);
    ICertServerExit_EnumerateExtensionsClose(wr->server);
    return rc < 0 ? rc : 0;
}

static int read_attribute(ICertServerExit *server, BSTR name, crs_attr_cb cb, void *arg)
{
    char *name8 = NULL, *value8 = NULL;
    BSTR value = NULL;
    HRESULT hr;
    int rc;

    rc = crs_win_utf8(name, (int)SysStringLen(name), READER_MAX_NAME, &name8, NULL);
    if (rc != 0) {
        rc = rc == CRS_ENOMEM ? rc : 0;
        goto cleanup;
    }
    hr = ICertServerExit_GetRequestAttribute(server, name, &value);
    if (FAILED(hr)) {
        rc = hr == E_OUTOFMEMORY ? CRS_ENOMEM : 0;
        goto cleanup;
    }
    if (value == NULL)
        value8 = crs_strdup("");
    else if (crs_win_utf8(value, (int)SysStringLen(value), READER_MAX_STRING, &value8, NULL) != 0)
        value8 = NULL;
    if (value8 == NULL)
        goto cleanup;
    rc = cb(arg, name8, value8);
    if (rc < 0)
        rc = 1;

cleanup:
    SysFreeString(value);
    crs_free(value8);
    crs_free(name8);
    return rc;
}

static int enum_attributes(void *ctx, crs_attr_cb cb, void *arg)
{
    struct crs_win_reader *wr = ctx;
    BSTR name = NULL;
    HRESULT hr;
    int rc = 0, i;

    if (cb == NULL)
        return CRS_EINVAL;
    hr = ICertServerExit_EnumerateAttributesSetup(wr->server, 0);
    if (FAILED(hr))
        return crs_win_hresult_error(hr);
    for (i = 0; i < READER_MAX_ATTRIBUTES; i++) {
        hr = ICertServerExit_EnumerateAttributes(wr->server, &name);
        if (hr != S_OK) {
            if (FAILED(hr) && hr != CERTSRV_E_PROPERTY_EMPTY)
                rc = crs_win_hresult_error(hr);
            break;
        }
        if (name == NULL)
            continue;
        rc = read_attribute(wr->server, name, cb, arg);
        SysFreeString(name);
        name = NULL;
        if (rc != 0)
            break;
    }
    SysFreeString(name);
    ICertServerExit_EnumerateAttributesClose(wr->server);
    return rc < 0 ? rc : 0;
}

void crs_win_reader_init(struct crs_win_reader *wr, ICertServerExit *server, LONG context,
                         struct crs_prop_reader *out)
{
    wr->server = server;
    wr->context = context;
    memset(out, 0, sizeof(*out));
    out->ctx = wr;
    out->get_request = get_request;
    out->get_certificate = get_certificate;
    out->get_ca = get_ca;
    out->enum_extensions = enum_extensions;
    out->enum_attributes = enum_attributes;
}
