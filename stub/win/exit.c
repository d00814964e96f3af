/*
 * CertRelay.Exit: the exit module object certsrv creates, in C the way Wine writes COM objects.
 *
 * certsrv calls Initialize once with the CA's configuration name, then Notify for every event the
 * returned mask selects, from several threads at once, and waits for each call. Notify therefore
 * never fails and never waits longer than the configured timeout: the stub core sends the event
 * to the broker or, when the broker does not answer in time, writes it to the spool directory.
 * What goes wrong is reported to the Event Log (source "CertRelay"), never to certsrv, which would
 * only log a misleading error of its own, and once per episode (broker away, an impostor on the
 * pipe, a failing spool), never once per event.
 *
 * Real certsrv, as opposed to its documentation: EXITEVENT_STARTUP (0x80) is never fired, so the
 * startup event is raised from Initialize (as Microsoft's default exit module sends its startup
 * mail); a release from hold arrives as EXITEVENT_CERTREVOKED (0x8), told apart by the stub core
 * from the request's Disposition; the settings key is the CA property ModuleRegistryLocation.
 */
#include <stdio.h>
#include <string.h>

#include "dll.h"
#include "certrelay/msgid.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/svcacct.h"
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
    /* Episodes, each reported when it starts (and some when they end), not once per event: 1
     * while the broker is known not to answer, while the pipe is served by a process that is
     * not the broker service, while spool writes fail. */
    LONG broker_down;
    LONG impostor;
    LONG spool_failing;
    LONG64 lost; /* events neither acknowledged nor spooled since the module was created */
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
 * A fresh CCertServerExit set to context (0: the CA's own properties), created on the calling
 * thread as certsrv's objects must be. NULL on failure, with the HRESULT in *hr.
 */
static ICertServerExit *open_server(LONG context, HRESULT *hr)
{
    ICertServerExit *server = NULL;

    *hr = CoCreateInstance(&CLSID_CCertServerExit, NULL, CLSCTX_INPROC_SERVER, &IID_ICertServerExit,
                           (void **)&server);
    if (FAILED(*hr))
        return NULL;
    *hr = ICertServerExit_SetContext(server, context);
    if (FAILED(*hr)) {
        ICertServerExit_Release(server);
        return NULL;
    }
    return server;
}

/* Reads a CA string property (context 0) as UTF-16; NULL when certsrv has none. */
static WCHAR *ca_string(const struct crs_prop_reader *rd, const char *name)
{
    struct crs_prop_value v;
    WCHAR *w = NULL;

    memset(&v, 0, sizeof(v));
    if (rd->get_ca == NULL || rd->get_ca(rd->ctx, name, CRS_PROP_STRING, &v) != 0 ||
        v.type != CRS_PROP_STRING || v.str == NULL || v.str[0] == '\0' ||
        crs_win_wide(v.str, 0, &w) != 0)
        w = NULL;
    crs_prop_value_clear(&v);
    return w;
}

/*
 * Where this CA keeps the module's settings: the ModuleRegistryLocation certsrv gives each module
 * (as Microsoft's exit sample reads it), else the key of the CA's sanitized name, else of the
 * name Initialize was given (strConfig is the CA name; "COMPUTER\CA" is accepted too). NULL in
 * *out when none is known (all defaults).
 */
static int settings_location(const struct crs_prop_reader *rd, const WCHAR *config, WCHAR **out)
{
    WCHAR *name;
    const WCHAR *slash;
    int rc;

    *out = ca_string(rd, "ModuleRegistryLocation");
    if (*out != NULL)
        return 0;
    name = ca_string(rd, "SanitizedCAName");
    if (name != NULL) {
        rc = crs_exit_settings_key(name, out);
        crs_free(name);
        return rc == CRS_EINVAL ? 0 : rc;
    }
    if (config == NULL || config[0] == L'\0')
        return 0;
    slash = wcsrchr(config, L'\\');
    rc = crs_exit_settings_key(slash != NULL ? slash + 1 : config, out);
    return rc == CRS_EINVAL ? 0 : rc;
}

static void note_outcome(struct exit_module *This, int rc, const struct crs_stub_result *res,
                         const char *event_name);

/*
 * Reads the CA's settings, prepares the spool directory and creates the stub core, then raises
 * the startup event (certsrv never fires 0x80). An absent settings key is the normal case
 * (defaults); a spool directory that cannot be created is reported but not fatal, since the
 * broker may still answer every event. Returns the mask of events certsrv should notify us of:
 * the configured EventMask without STARTUP, which is ours to raise.
 */
static HRESULT WINAPI exit_Initialize(ICertExit2 *iface, const BSTR config, LONG *mask)
{
    struct exit_module *This = impl_from_ICertExit2(iface);
    struct crs_exit_settings settings;
    struct crs_stub_options opts;
    struct crs_stub_result res;
    struct crs_prop_reader reader;
    struct crs_win_reader wr;
    struct crs_stub *stub = NULL, *old;
    ICertServerExit *server = NULL;
    WCHAR *location = NULL;
    char *ca_config = NULL;
    HRESULT hr, hr_com;
    int rc, mk, send_startup = 0;

    if (mask == NULL)
        return E_POINTER;
    *mask = 0;

    /* Messages of the stub core go to the Event Log: certsrv's stderr goes nowhere. Only
     * warnings and errors, so a busy CA does not flood the log. */
    crs_log_set_stderr(0);
    crs_log_set_output(crs_eventlog_log_output, (void *)CRS_EVENTLOG_SOURCE_EXIT);
    crs_log_set_level(CRS_LOG_WARN);

    memset(&settings, 0, sizeof(settings));
    memset(&reader, 0, sizeof(reader));
    hr_com = CoInitializeEx(NULL, COINIT_MULTITHREADED);
    server = open_server(0, &hr);
    if (server != NULL)
        crs_win_reader_init(&wr, server, 0, &reader);
    rc = crs_win_utf8(config != NULL ? config : L"", -1, 1024, &ca_config, NULL);
    if (rc != 0)
        goto cleanup;
    rc = settings_location(&reader, config, &location);
    if (rc != 0)
        goto cleanup;
    rc = crs_exit_settings_read(location, &settings);
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
    opts.broker_service = settings.service;
    opts.breaker_ms = CRS_STUB_DEFAULT_BREAKER_MS;
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
    *mask = (LONG)(This->settings.event_mask & ~CRS_EVENT_STARTUP);
    send_startup = (This->settings.event_mask & CRS_EVENT_STARTUP) != 0;
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_INFO,
                        "CertRelay %s initialized for CA \"%s\": pipe %s (service %s), spool %s, "
                        "timeout %u ms, event mask 0x%x, raw request %s, settings from %s%s.",
                        CRS_VERSION, This->ca_config, This->settings.pipe, This->settings.service,
                        This->settings.spool_dir, (unsigned)This->settings.timeout_ms,
                        (unsigned)This->settings.event_mask,
                        This->settings.capture_raw_request ? "captured" : "not captured",
                        This->settings.location != NULL ? This->settings.location : "(no key)",
                        This->settings.from_registry ? "" : " (absent: all defaults)");
    ReleaseSRWLockExclusive(&This->lock);
    crs_stub_free(old);
    stub = NULL;
    ca_config = NULL;
    memset(&settings, 0, sizeof(settings));

    /* The startup event, with the CA's identity from context 0 when certsrv's object is there. */
    if (send_startup) {
        struct crs_prop_reader empty;

        memset(&empty, 0, sizeof(empty));
        AcquireSRWLockShared(&This->lock);
        rc =
            crs_stub_notify(This->stub, CRS_EVENT_STARTUP, server != NULL ? &reader : &empty, &res);
        note_outcome(This, rc, &res, "startup");
        ReleaseSRWLockShared(&This->lock);
        rc = 0;
    }

cleanup:
    if (rc != 0)
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                            "CertRelay: the exit module cannot start: %s. No events will be "
                            "forwarded.",
                            crs_strerror(rc));
    if (server != NULL)
        ICertServerExit_Release(server);
    if (SUCCEEDED(hr_com))
        CoUninitialize();
    crs_stub_free(stub);
    crs_exit_settings_clear(&settings);
    crs_free(location);
    crs_free(ca_config);
    return hresult_from_crs(rc);
}

/*
 * Records how an event fared, logging only the starts and ends of episodes: the broker away, an
 * impostor serving the pipe (named by its process id), the spool failing (the event is lost:
 * an error with its request id, and the count of lost events).
 */
static void note_outcome(struct exit_module *This, int rc, const struct crs_stub_result *res,
                         const char *event_name)
{
    LONG64 lost;

    if (rc != 0) {
        lost = InterlockedIncrement64(&This->lost);
        if (InterlockedExchange(&This->spool_failing, 1) == 0) {
            char reqid[24], line[160];
            const char *ins[4] = {event_name != NULL ? event_name : "unknown", reqid,
                                  This->settings.spool_dir, crs_strerror(rc)};

            /* One entry per episode under the catalogue's id; the losses that follow are
             * counted and reported when the spool works again. */
            snprintf(reqid, sizeof(reqid), "%lld", (long long)res->request_id);
            snprintf(line, sizeof(line), "EVENT LOST; %lld event(s) lost so far", (long long)lost);
            crs_eventlog_event(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR, CRS_MSGID_SPOOL_FAILED, ins,
                               4, line);
        }
        return;
    }
    if (InterlockedExchange(&This->spool_failing, 0) == 1)
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_WARN,
                            "CertRelay: events are recorded again; %lld event(s) were lost in all.",
                            (long long)InterlockedCompareExchange64(&This->lost, 0, 0));
    if (res->outcome == CRS_STUB_SPOOLED) {
        if (res->send_error == CRS_EPEERAUTH) {
            if (!res->breaker_open && InterlockedExchange(&This->impostor, 1) == 0) {
                char pid[16];
                const char *ins[4] = {pid, This->settings.pipe, This->settings.service,
                                      This->settings.spool_dir};

                snprintf(pid, sizeof(pid), "%lu", (unsigned long)res->server_pid);
                crs_eventlog_event(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_ERROR,
                                   CRS_MSGID_BROKER_IMPOSTOR, ins, 4, NULL);
            }
        } else if (InterlockedExchange(&This->broker_down, 1) == 0) {
            const char *ins[3] = {This->settings.pipe, crs_strerror(res->send_error),
                                  This->settings.spool_dir};
            crs_eventlog_event(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_WARN, CRS_MSGID_BROKER_UNREACHABLE,
                               ins, 3, NULL);
        }
    } else if (res->outcome == CRS_STUB_ACKED) {
        InterlockedExchange(&This->impostor, 0);
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
    server = open_server(context, &hr);
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
    note_outcome(This, rc, &res, event_name);

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
