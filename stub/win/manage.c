/*
 * CertRelay.ExitManage: the ICertManageModule the CA snap-in (certsrv.msc) asks for a module's
 * name, description, copyright and versions, and whose Configure it calls from the exit module's
 * Properties button.
 *
 * Configure runs inside whatever process asks for it. In the snap-in that is an interactive
 * desktop and a message box is the expected answer; in a service (certsrv itself, a test
 * harness, a remote administration tool) a message box would wait forever for a click nobody
 * can give. So the report always goes to the Event Log, and a message box appears only when the
 * process's window station is visible.
 */
#include <stdio.h>
#include <string.h>

#include "dll.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/version.h"

struct manage_module {
    ICertManageModule ICertManageModule_iface;
    LONG refcount;
    /* The parent window the snap-in hands over with SetProperty("HWND"), for Configure's
     * message box. Written and read with interlocked operations. */
    HWND owner;
};

static inline struct manage_module *impl_from_ICertManageModule(ICertManageModule *iface)
{
    return CONTAINING_RECORD(iface, struct manage_module, ICertManageModule_iface);
}

static HRESULT WINAPI manage_QueryInterface(ICertManageModule *iface, REFIID riid, void **out)
{
    struct manage_module *This = impl_from_ICertManageModule(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualIID(riid, &IID_IUnknown) || IsEqualIID(riid, &IID_IDispatch) ||
        IsEqualIID(riid, &IID_ICertManageModule))
        *out = &This->ICertManageModule_iface;
    else
        return E_NOINTERFACE;
    IUnknown_AddRef((IUnknown *)*out);
    return S_OK;
}

static ULONG WINAPI manage_AddRef(ICertManageModule *iface)
{
    struct manage_module *This = impl_from_ICertManageModule(iface);

    return (ULONG)InterlockedIncrement(&This->refcount);
}

static ULONG WINAPI manage_Release(ICertManageModule *iface)
{
    struct manage_module *This = impl_from_ICertManageModule(iface);
    LONG ref = InterlockedDecrement(&This->refcount);

    if (ref == 0) {
        crs_free(This);
        crs_dll_unlock();
    }
    return (ULONG)ref;
}

/* No type library: see the IDispatch note in exit.c. */
static HRESULT WINAPI manage_GetTypeInfoCount(ICertManageModule *iface, UINT *count)
{
    if (count == NULL)
        return E_POINTER;
    *count = 0;
    return S_OK;
}

static HRESULT WINAPI manage_GetTypeInfo(ICertManageModule *iface, UINT index, LCID lcid,
                                         ITypeInfo **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    return DISP_E_BADINDEX;
}

static HRESULT WINAPI manage_GetIDsOfNames(ICertManageModule *iface, REFIID riid, LPOLESTR *names,
                                           UINT count, LCID lcid, DISPID *ids)
{
    UINT i;

    if (ids == NULL)
        return E_POINTER;
    for (i = 0; i < count; i++)
        ids[i] = DISPID_UNKNOWN;
    return DISP_E_UNKNOWNNAME;
}

static HRESULT WINAPI manage_Invoke(ICertManageModule *iface, DISPID id, REFIID riid, LCID lcid,
                                    WORD flags, DISPPARAMS *params, VARIANT *result,
                                    EXCEPINFO *excep, UINT *argerr)
{
    return DISP_E_MEMBERNOTFOUND;
}

static int name_is(const WCHAR *name, const WCHAR *expected)
{
    return CompareStringOrdinal(name, -1, expected, -1, TRUE) == CSTR_EQUAL;
}

/*
 * The snap-in's questions, answered as BSTRs. Names compare without regard to case; a name we do
 * not know answers S_FALSE with an empty VARIANT, as the snap-in expects of optional properties.
 */
static HRESULT WINAPI manage_GetProperty(ICertManageModule *iface, const BSTR config, BSTR storage,
                                         BSTR name, LONG flags, VARIANT *value)
{
    const WCHAR *text = NULL;

    if (value == NULL)
        return E_POINTER;
    VariantInit(value);
    if (name == NULL)
        return E_INVALIDARG;
    if (name_is(name, wszCMM_PROP_NAME))
        text = CRS_DLL_NAME;
    else if (name_is(name, wszCMM_PROP_DESCRIPTION))
        text = CRS_DLL_DESCRIPTION;
    else if (name_is(name, wszCMM_PROP_COPYRIGHT))
        text = CRS_DLL_COPYRIGHT;
    else if (name_is(name, wszCMM_PROP_FILEVER) || name_is(name, wszCMM_PROP_PRODUCTVER))
        text = CRS_VERSION_W;
    else
        return S_FALSE;
    V_BSTR(value) = SysAllocString(text);
    if (V_BSTR(value) == NULL)
        return E_OUTOFMEMORY;
    V_VT(value) = VT_BSTR;
    return S_OK;
}

/*
 * SetProperty is documented as reserved for future use with a minimal implementation required.
 * The one property a caller hands us is the snap-in's window ("HWND"), kept as the owner of
 * Configure's message box; anything else is accepted and ignored, since every CertRelay setting
 * lives in the registry and in certrelay.ini, where administrators and scripts edit it.
 */
static HRESULT WINAPI manage_SetProperty(ICertManageModule *iface, const BSTR config, BSTR storage,
                                         BSTR name, LONG flags, const VARIANT *value)
{
    struct manage_module *This = impl_from_ICertManageModule(iface);
    HWND owner = NULL;

    if (name == NULL || value == NULL)
        return S_OK;
    if (name_is(name, wszCMM_PROP_DISPLAY_HWND)) {
        if (V_VT(value) == VT_I4 || V_VT(value) == VT_INT)
            owner = (HWND)(LONG_PTR)V_I4(value);
        else if (V_VT(value) == VT_I8)
            owner = (HWND)(LONG_PTR)V_I8(value);
        else if (V_VT(value) == VT_BSTR && V_BSTR(value) != NULL &&
                 SysStringByteLen(V_BSTR(value)) == sizeof(HWND))
            memcpy(&owner, V_BSTR(value), sizeof(HWND));
        InterlockedExchangePointer((void **)&This->owner, owner);
    }
    return S_OK;
}

/* Whether a message box could be seen and answered: the window station must be visible. */
static int desktop_is_interactive(void)
{
    USEROBJECTFLAGS uof;
    HWINSTA ws = GetProcessWindowStation();

    if (ws == NULL)
        return 0;
    if (!GetUserObjectInformationW(ws, UOI_FLAGS, &uof, sizeof(uof), NULL))
        return 0;
    return (uof.dwFlags & WSF_VISIBLE) != 0;
}

/*
 * Whether the broker's pipe exists. WaitNamedPipe answers without opening a connection the
 * broker would then see vanish: it succeeds when an instance is free and fails with
 * ERROR_SEM_TIMEOUT when the pipe exists but all instances are busy.
 */
static const char *broker_state(const char *pipe)
{
    WCHAR *wpipe = NULL;
    const char *state;

    if (crs_win_wide(pipe, 0, &wpipe) != 0)
        return "unknown (out of memory)";
    if (WaitNamedPipeW(wpipe, 50))
        state = "listening";
    else if (GetLastError() == ERROR_SEM_TIMEOUT)
        state = "listening (busy)";
    else
        state = "NOT listening: events are being spooled";
    crs_free(wpipe);
    return state;
}

/*
 * Shows where the configuration lives and whether the broker answers. strConfig is
 * "COMPUTER\CA" here. strStorageLocation is the module's settings key below HKLM (certsrv's
 * ModuleRegistryLocation); when the caller gives none, the key is built from the CA's name, the
 * part after the backslash. Flags: CMM_REFRESHONLY asks for no user interface (the report goes
 * to the Event Log only; there is no cache to refresh, the module reads its settings at
 * Initialize); CMM_READONLY asks that nothing be changed, which Configure never does. The
 * settings and the pipe are looked up on this machine, which is the CA's own when the snap-in
 * runs on the CA (the usual case for a module's Properties page).
 */
static HRESULT WINAPI manage_Configure(ICertManageModule *iface, const BSTR config, BSTR storage,
                                       LONG flags)
{
    struct manage_module *This = impl_from_ICertManageModule(iface);
    struct crs_exit_settings settings;
    const WCHAR *ca = config != NULL ? config : L"";
    const WCHAR *slash = wcschr(ca, L'\\');
    WCHAR *key = NULL;
    char *ca8 = NULL, *text = NULL;
    WCHAR *wtext = NULL;
    HWND owner;
    int rc;

    if (slash != NULL)
        ca = slash + 1;
    if (storage == NULL || storage[0] == L'\0') {
        rc = crs_exit_settings_key(ca, &key);
        if (rc == CRS_ENOMEM)
            return E_OUTOFMEMORY;
    }
    rc = crs_exit_settings_read(key != NULL ? key : storage, &settings);
    crs_free(key);
    if (rc != 0)
        return E_OUTOFMEMORY;
    rc = crs_win_utf8(ca, -1, 1024, &ca8, NULL);
    if (rc == 0) {
        text = crs_asprintf(
            "CertRelay %s exit module for CA \"%s\".\r\n\r\n"
            "Settings: HKLM\\%s (%s)\r\n"
            "  PipeName = %s\r\n  BrokerService = %s\r\n  SpoolDir = %s\r\n  TimeoutMs = %u\r\n"
            "  EventMask = 0x%x\r\n  CaptureRawRequest = %d\r\n\r\n"
            "Broker: %s.\r\nThe broker's settings are in %%ProgramData%%\\CertRelay\\certrelay.ini."
            "\r\nChanges take effect when the CA service restarts.",
            CRS_VERSION, ca8, settings.location != NULL ? settings.location : "(unknown)",
            settings.from_registry ? "present" : "absent: all defaults", settings.pipe,
            settings.service, settings.spool_dir, (unsigned)settings.timeout_ms,
            (unsigned)settings.event_mask, settings.capture_raw_request,
            broker_state(settings.pipe));
    }
    if (text == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    crs_eventlog_write(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_INFO, text);
    if (!(flags & CMM_REFRESHONLY) && desktop_is_interactive() &&
        crs_win_wide(text, 0, &wtext) == 0) {
        owner = InterlockedCompareExchangePointer((void **)&This->owner, NULL, NULL);
        MessageBoxW(owner, wtext, CRS_DLL_NAME, MB_OK | MB_ICONINFORMATION);
    }

cleanup:
    crs_free(wtext);
    crs_free(text);
    crs_free(ca8);
    crs_exit_settings_clear(&settings);
    return rc == 0 ? S_OK : E_OUTOFMEMORY;
}

static const ICertManageModuleVtbl manage_vtbl = {
    manage_QueryInterface, manage_AddRef,        manage_Release, manage_GetTypeInfoCount,
    manage_GetTypeInfo,    manage_GetIDsOfNames, manage_Invoke,  manage_GetProperty,
    manage_SetProperty,    manage_Configure,
};

HRESULT crs_manage_create(REFIID riid, void **out)
{
    struct manage_module *obj;
    HRESULT hr;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    obj = crs_calloc(1, sizeof(*obj));
    if (obj == NULL)
        return E_OUTOFMEMORY;
    obj->ICertManageModule_iface.lpVtbl = &manage_vtbl;
    obj->refcount = 1;
    crs_dll_lock();
    hr = manage_QueryInterface(&obj->ICertManageModule_iface, riid, out);
    manage_Release(&obj->ICertManageModule_iface);
    return hr;
}
