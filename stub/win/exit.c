/*
 * CertRelay.Exit: the exit module object certsrv creates, in C the way Wine writes COM objects.
 *
 * certsrv calls Initialize once with the CA's configuration name, then Notify for every event the
 * returned mask selects, from several threads at once, and waits for each call. Notify therefore
 * never fails and never waits longer than the configured timeout: the stub core sends the event
 * to the broker or, when the broker does not answer in time, writes it to the spool directory.
 * What goes wrong is reported to the Event Log (source "CertRelay"), never to certsrv, which would
 * only log a misleading error of its own.
 */
#include <stdio.h>
#include <string.h>

#include "dll.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/win/secdir.h"
#include "certrelay/alloc.h"
#include "certrelay/defaults.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "certrelay/version.h"

/* ------------------------------------------------------------------------------------------ */
/* The object                                                                                   */
/* ------------------------------------------------------------------------------------------ */

struct exit_module {
    ICertExit2 ICertExit2_iface;
    LONG refcount;
    /* Notify holds it shared for the whole call, Initialize exclusive while it replaces the
     * stub, so a Notify never sees a stub being freed. */
    SRWLOCK lock;
    struct crs_stub *stub;
    struct crs_exit_settings settings;
    char *ca_config;
    /* 1 while the broker is known not to answer: the Event Log gets one warning when that
     * starts and one note when it ends, not one per event. */
    LONG broker_down;
};

static inline struct exit_module *impl_from_ICertExit2(ICertExit2 *iface)
{
    return CONTAINING_RECORD(iface, struct exit_module, ICertExit2_iface);
}

static HRESULT WINAPI exit_QueryInterface(ICertExit2 *iface, REFIID riid, void **out)
{
    struct exit_module *This = impl_from_ICertExit2(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_ICertExit) || IsEqualIID(riid, &IID_ICertExit2))
        *out = &This->ICertExit2_iface;
    else
        return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*out);
    return S_OK;
}

static ULONG WINAPI exit_AddRef(ICertExit2 *iface)
{
    struct exit_module *This = impl_from_ICertExit2(iface);

    return (ULONG)InterlockedIncrement(&This->refcount);
}

static ULONG WINAPI exit_Release(ICertExit2 *iface)
{
    struct exit_module *This = impl_from_ICertExit2(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    if (ref == 0) {
        /* The last reference is gone, so no Notify can be running. */
        crs_stub_free(This->stub);
        crs_exit_settings_clear(&This->settings);
        crs_free(This->ca_config);
        crs_free(This);
        crs_dll_unlock();
    }
    return (ULONG)ref;
}

/*
 * IDispatch. certsrv calls exit modules through the vtable, and CertRelay ships no type library,
 * so the dispatch half honestly describes an object without type information: zero type infos,
 * no names, nothing to invoke.
 */
static HRESULT WINAPI exit_GetTypeInfoCount(ICertExit2 *iface, UINT *count)
{
    if (count == NULL)
        return E_POINTER;
    *count = 0;
    return S_OK;
}

static HRESULT WINAPI exit_GetTypeInfo(ICertExit2 *iface, UINT index, LCID lcid, ITypeInfo **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    return DISP_E_BADINDEX;
}

static HRESULT WINAPI exit_GetIDsOfNames(ICertExit2 *iface, REFIID riid, LPOLESTR *names,
                                         UINT count, LCID lcid, DISPID *ids)
{
    UINT i;

    if (ids == NULL)
        return E_POINTER;
    for (i = 0; i < count; i++)
        ids[i] = DISPID_UNKNOWN;
    return DISP_E_UNKNOWNNAME;
}

static HRESULT WINAPI exit_Invoke(ICertExit2 *iface, DISPID id, REFIID riid, LCID lcid, WORD flags,
                                  DISPPARAMS *params, VARIANT *result, EXCEPINFO *excep,
                                  UINT *argerr)
{
    return DISP_E_MEMBERNOTFOUND;
}

/* Maps a core error to the HRESULT Initialize reports to certsrv. */
static HRESULT hresult_from_crs(int rc)
{
    switch (rc) {
    case 0:
        return S_OK;
    case CRS_ENOMEM:
        return E_OUTOFMEMORY;
    case CRS_EINVAL:
        return E_INVALIDARG;
    case CRS_EACCES:
        return E_ACCESSDENIED;
    default:
        return E_FAIL;
    }
}

/*
 * Reads the CA's settings, prepares the spool directory and creates the stub core. An absent
 * settings key is the normal case (defaults); a spool directory that cannot be created is
 * reported but not fatal, since the broker may still answer every event. Returns the mask of
 * events certsrv should notify us of.
 */
static HRESULT WINAPI exit_Initialize(ICertExit2 *iface, const BSTR config, LONG *mask)
{
    struct exit_module *This = impl_from_ICertExit2(iface);
    struct crs_exit_settings settings;
    struct crs_stub_options opts;
    struct crs_stub *stub = NULL, *old;
    char *ca_config = NULL;
    int rc, mk;

    if (mask == NULL)
        return E_POINTER;
    *mask = 0;

    /* Messages of the stub core go to the Event Log: certsrv's stderr goes nowhere. Only
     * warnings and errors, so a busy CA does not flood the log. */
    crs_log_set_stderr(0);
    crs_log_set_output(crs_eventlog_log_output, (void *)CRS_EVENTLOG_SOURCE_EXIT);
    crs_log_set_level(CRS_LOG_WARN);

    memset(&settings, 0, sizeof(settings));
    rc = crs_win_utf8(config != NULL ? config : L"", -1, 1024, &ca_config, NULL);
    if (rc != 0)
        goto cleanup;
    rc = crs_exit_settings_read(config, &settings);
    if (rc != 0)
        goto cleanup;

    /* Created private (SYSTEM and Administrators only) when we create it: a spool others can
     * write to would let them inject events. A DACL that cannot be set is logged inside. */
    mk = crs_win_mkdirs_private(settings.spool_dir);
    if (mk != 0 && mk != CRS_EACCES)
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: cannot create the spool directory %s (%s); events the "
                            "broker does not acknowledge will be lost.",
                            settings.spool_dir, crs_strerror(mk));

    memset(&opts, 0, sizeof(opts));
    opts.pipe = settings.pipe;
    opts.spool_dir = settings.spool_dir;
    opts.timeout_ms = settings.timeout_ms;
    opts.capture_raw_request = settings.capture_raw_request;
    opts.ca_config = ca_config;
    opts.stub_version = CRS_VERSION;
    rc = crs_stub_new(&opts, &stub);
    if (rc != 0)
        goto cleanup;

    /* certsrv initializes once, but a second Initialize must not pull the stub from under a
     * running Notify: swap under the exclusive lock, free the old one outside it. */
    AcquireSRWLockExclusive(&This->lock);
    old = This->stub;
    This->stub = stub;
    crs_exit_settings_clear(&This->settings);
    This->settings = settings;
    crs_free(This->ca_config);
    This->ca_config = ca_config;
    *mask = (LONG)This->settings.event_mask;
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_INFO,
                        "CertRelay %s initialized for CA \"%s\": pipe %s, spool %s, timeout %u ms, "
                        "event mask 0x%x, raw request %s, settings from %s.",
                        CRS_VERSION, This->ca_config, This->settings.pipe, This->settings.spool_dir,
                        (unsigned)This->settings.timeout_ms, (unsigned)This->settings.event_mask,
                        This->settings.capture_raw_request ? "captured" : "not captured",
                        This->settings.from_registry ? "the registry" : "the defaults");
    ReleaseSRWLockExclusive(&This->lock);
    crs_stub_free(old);
    stub = NULL;
    ca_config = NULL;
    memset(&settings, 0, sizeof(settings));

cleanup:
    if (rc != 0)
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: the exit module cannot start: %s. No events will be "
                            "forwarded.",
                            crs_strerror(rc));
    crs_stub_free(stub);
    crs_exit_settings_clear(&settings);
    crs_free(ca_config);
    return hresult_from_crs(rc);
}

/* Records whether the broker answered, logging only the transitions. */
static void note_outcome(struct exit_module *This, const struct crs_stub_result *res)
{
    if (res->outcome == CRS_STUB_SPOOLED) {
        if (InterlockedExchange(&This->broker_down, 1) == 0)
            crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_WARN,
                                "CertRelay: the broker at %s did not acknowledge an event (%s). "
                                "Events are kept in %s until it does; this is reported once.",
                                This->settings.pipe, crs_strerror(res->send_error),
                                This->settings.spool_dir);
    } else if (res->outcome == CRS_STUB_ACKED) {
        if (InterlockedExchange(&This->broker_down, 0) == 1)
            crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_INFO,
                                "CertRelay: the broker at %s acknowledges events again.",
                                This->settings.pipe);
    }
}

/*
 * Handles one event. A fresh CCertServerExit is created on the calling thread for this call
 * (certsrv's objects must not be shared between threads), after joining the multithreaded
 * apartment when the thread has none; the apartment is left again before returning. When
 * certsrv's object cannot be had at all, the event is still recorded with what Notify itself
 * knows (kind, CA, time) rather than dropped. Always S_OK: see the top of the file.
 */
static HRESULT WINAPI exit_Notify(ICertExit2 *iface, LONG event, LONG context)
{
    struct exit_module *This = impl_from_ICertExit2(iface);
    struct crs_prop_reader reader, empty_reader;
    struct crs_win_reader wr;
    struct crs_stub_result res;
    ICertServerExit *server = NULL;
    HRESULT hr, hr_com;
    const char *event_name = crs_event_name((uint32_t)event);
    int rc;

    memset(&empty_reader, 0, sizeof(empty_reader));
    memset(&res, 0, sizeof(res));
    AcquireSRWLockShared(&This->lock);
    if (This->stub == NULL) {
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: event 0x%lx arrived before a successful Initialize; it "
                            "is lost.",
                            (unsigned long)event);
        goto done;
    }

    /* S_OK and S_FALSE both must be balanced; RPC_E_CHANGED_MODE means the thread lives in
     * a single-threaded apartment already, which serves us as well and is not ours to leave. */
    hr_com = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    hr = CoCreateInstance(&CLSID_CCertServerExit, NULL, CLSCTX_INPROC_SERVER, &IID_ICertServerExit,
                          (void **)&server);
    if (SUCCEEDED(hr)) {
        hr = ICertServerExit_SetContext(server, context);
        if (FAILED(hr)) {
            ICertServerExit_Release(server);
            server = NULL;
        }
    }
    if (server != NULL) {
        crs_win_reader_init(&wr, server, context, &reader);
        rc = crs_stub_notify(This->stub, (uint32_t)event, &reader, &res);
    } else {
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: cannot read %s event (context %ld) from certsrv "
                            "(HRESULT 0x%08lx); it is forwarded without its properties.",
                            event_name != NULL ? event_name : "an unknown", (long)context,
                            (unsigned long)hr);
        rc = crs_stub_notify(This->stub, (uint32_t)event, &empty_reader, &res);
    }
    if (rc != 0)
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: %s event (context %ld) was neither acknowledged by the "
                            "broker nor written to %s: %s. The event is lost.",
                            event_name != NULL ? event_name : "an unknown", (long)context,
                            This->settings.spool_dir, crs_strerror(rc));
    else
        note_outcome(This, &res);

    if (server != NULL)
        ICertServerExit_Release(server);
    if (SUCCEEDED(hr_com))
        CoUninitialize();
done:
    ReleaseSRWLockShared(&This->lock);
    return S_OK;
}

static HRESULT WINAPI exit_GetDescription(ICertExit2 *iface, BSTR *out)
{
    if (out == NULL)
        return E_POINTER;
    *out = SysAllocString(CRS_DLL_DESCRIPTION);
    return *out != NULL ? S_OK : E_OUTOFMEMORY;
}

static HRESULT WINAPI exit_GetManageModule(ICertExit2 *iface, ICertManageModule **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    return crs_manage_create(&IID_ICertManageModule, (void **)out);
}

static const ICertExit2Vtbl exit_vtbl = {
    exit_QueryInterface, exit_AddRef,         exit_Release,         exit_GetTypeInfoCount,
    exit_GetTypeInfo,    exit_GetIDsOfNames,  exit_Invoke,          exit_Initialize,
    exit_Notify,         exit_GetDescription, exit_GetManageModule,
};

HRESULT crs_exit_create(REFIID riid, void **out)
{
    struct exit_module *obj;
    HRESULT hr;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    obj = crs_calloc(1, sizeof(*obj));
    if (obj == NULL)
        return E_OUTOFMEMORY;
    obj->ICertExit2_iface.lpVtbl = &exit_vtbl;
    obj->refcount = 1;
    InitializeSRWLock(&obj->lock);
    crs_dll_lock();
    hr = exit_QueryInterface(&obj->ICertExit2_iface, riid, out);
    exit_Release(&obj->ICertExit2_iface);
    return hr;
}
