/*
 * certrelay_exit.dll's entry points: DllMain, DllGetClassObject, DllCanUnloadNow and the
 * self-registration regsvr32 calls.
 *
 * Two classes live here, each behind a static class factory (Wine's pattern):
 *
 *   CertRelay.Exit        {32091528-FF3F-49CB-B654-3E20ADC7464B}  ICertExit2 (exit.c)
 *   CertRelay.ExitManage  {4AFD9B02-66FC-48E5-93EF-BA6A471C3E44}  ICertManageModule (manage.c)
 *
 * Registration writes, below HKLM\SOFTWARE\Classes (what HKCR shows to every account, SYSTEM's
 * certsrv included):
 *
 *   CLSID\{...}                        (default) = CertRelay Exit Module
 *   CLSID\{...}\InprocServer32         (default) = C:\...\certrelay_exit.dll, ThreadingModel = Both
 *   CLSID\{...}\ProgID                 (default) = CertRelay.Exit.1
 *   CLSID\{...}\VersionIndependentProgID  (default) = CertRelay.Exit
 *   CertRelay.Exit\CLSID, CertRelay.Exit\CurVer, CertRelay.Exit.1\CLSID
 *
 * the same for CertRelay.ExitManage, and the Event Log source "CertRelay" with this DLL as its
 * message file.
 */
#include <stdio.h>

#include "dll.h"
#include "certrelay/win/eventlog.h"

#include <olectl.h>

HINSTANCE crs_dll_instance;

/* Live objects + LockServer locks + class factory references. */
static LONG module_locks;

void crs_dll_lock(void)
{
    InterlockedIncrement(&module_locks);
}

void crs_dll_unlock(void)
{
    InterlockedDecrement(&module_locks);
}

BOOL WINAPI DllMain(HINSTANCE instance, DWORD reason, void *reserved)
{
    /* Nothing else happens here: DllMain runs under the loader lock, where calling into other
     * DLLs can deadlock. Thread notifications stay on because mingw's runtime frees its
     * thread-local storage in them. */
    if (reason == DLL_PROCESS_ATTACH)
        crs_dll_instance = instance;
    return TRUE;
}

/* ------------------------------------------------------------------------------------------ */
/* Class factories                                                                              */
/* ------------------------------------------------------------------------------------------ */

struct class_factory {
    IClassFactory IClassFactory_iface;
    HRESULT (*create)(REFIID riid, void **out);
};

static inline struct class_factory *impl_from_IClassFactory(IClassFactory *iface)
{
    return CONTAINING_RECORD(iface, struct class_factory, IClassFactory_iface);
}

static HRESULT WINAPI factory_QueryInterface(IClassFactory *iface, REFIID riid, void **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (!IsEqualIID(riid, &IID_IUnknown) && !IsEqualIID(riid, &IID_IClassFactory))
        return E_NOINTERFACE;
    *out = iface;
    IClassFactory_AddRef(iface);
    return S_OK;
}

/* The factories are static and never freed, but a client holding one may still call into the
 * DLL, so each reference counts as a module lock. */
static ULONG WINAPI factory_AddRef(IClassFactory *iface)
{
    crs_dll_lock();
    return 2;
}

static ULONG WINAPI factory_Release(IClassFactory *iface)
{
    crs_dll_unlock();
    return 1;
}

static HRESULT WINAPI factory_CreateInstance(IClassFactory *iface, IUnknown *outer, REFIID riid,
                                             void **out)
{
    struct class_factory *This = impl_from_IClassFactory(iface);

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (outer != NULL)
        return CLASS_E_NOAGGREGATION;
    return This->create(riid, out);
}

static HRESULT WINAPI factory_LockServer(IClassFactory *iface, BOOL lock)
{
    if (lock)
        crs_dll_lock();
    else
        crs_dll_unlock();
    return S_OK;
}

static const IClassFactoryVtbl factory_vtbl = {
    factory_QueryInterface, factory_AddRef,     factory_Release,
    factory_CreateInstance, factory_LockServer,
};

static struct class_factory exit_factory = {{&factory_vtbl}, crs_exit_create};
static struct class_factory manage_factory = {{&factory_vtbl}, crs_manage_create};

HRESULT WINAPI DllGetClassObject(REFCLSID clsid, REFIID riid, void **out)
{
    IClassFactory *factory;

    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (IsEqualCLSID(clsid, &CLSID_CertRelayExit))
        factory = &exit_factory.IClassFactory_iface;
    else if (IsEqualCLSID(clsid, &CLSID_CertRelayExitManage))
        factory = &manage_factory.IClassFactory_iface;
    else
        return CLASS_E_CLASSNOTAVAILABLE;
    return IClassFactory_QueryInterface(factory, riid, out);
}

HRESULT WINAPI DllCanUnloadNow(void)
{
    return InterlockedCompareExchange(&module_locks, 0, 0) == 0 ? S_OK : S_FALSE;
}

/* ------------------------------------------------------------------------------------------ */
/* Registration                                                                                 */
/* ------------------------------------------------------------------------------------------ */

#define CLASSES     L"SOFTWARE\\Classes\\"
#define MODULE_PATH NULL /* stands for this DLL's full path in the table below */

struct reg_value {
    const WCHAR *key;   /* below HKLM\SOFTWARE\Classes */
    const WCHAR *name;  /* NULL for the default value */
    const WCHAR *value; /* MODULE_PATH for the DLL's path */
};

static const struct reg_value registration[] = {
    {L"CLSID\\" CRS_CLSID_EXIT_STR, NULL, CRS_DLL_NAME},
    {L"CLSID\\" CRS_CLSID_EXIT_STR L"\\InprocServer32", NULL, MODULE_PATH},
    {L"CLSID\\" CRS_CLSID_EXIT_STR L"\\InprocServer32", L"ThreadingModel", L"Both"},
    {L"CLSID\\" CRS_CLSID_EXIT_STR L"\\ProgID", NULL, CRS_PROGID_EXIT_1},
    {L"CLSID\\" CRS_CLSID_EXIT_STR L"\\VersionIndependentProgID", NULL, CRS_PROGID_EXIT},
    {CRS_PROGID_EXIT, NULL, CRS_DLL_NAME},
    {CRS_PROGID_EXIT L"\\CLSID", NULL, CRS_CLSID_EXIT_STR},
    {CRS_PROGID_EXIT L"\\CurVer", NULL, CRS_PROGID_EXIT_1},
    {CRS_PROGID_EXIT_1, NULL, CRS_DLL_NAME},
    {CRS_PROGID_EXIT_1 L"\\CLSID", NULL, CRS_CLSID_EXIT_STR},

    {L"CLSID\\" CRS_CLSID_MANAGE_STR, NULL, CRS_DLL_NAME L" Manager"},
    {L"CLSID\\" CRS_CLSID_MANAGE_STR L"\\InprocServer32", NULL, MODULE_PATH},
    {L"CLSID\\" CRS_CLSID_MANAGE_STR L"\\InprocServer32", L"ThreadingModel", L"Both"},
    {L"CLSID\\" CRS_CLSID_MANAGE_STR L"\\ProgID", NULL, CRS_PROGID_MANAGE_1},
    {L"CLSID\\" CRS_CLSID_MANAGE_STR L"\\VersionIndependentProgID", NULL, CRS_PROGID_MANAGE},
    {CRS_PROGID_MANAGE, NULL, CRS_DLL_NAME L" Manager"},
    {CRS_PROGID_MANAGE L"\\CLSID", NULL, CRS_CLSID_MANAGE_STR},
    {CRS_PROGID_MANAGE L"\\CurVer", NULL, CRS_PROGID_MANAGE_1},
    {CRS_PROGID_MANAGE_1, NULL, CRS_DLL_NAME L" Manager"},
    {CRS_PROGID_MANAGE_1 L"\\CLSID", NULL, CRS_CLSID_MANAGE_STR},
};

/* The keys unregistration removes, each with everything below it. */
static const WCHAR *const registration_roots[] = {
    L"CLSID\\" CRS_CLSID_EXIT_STR,   CRS_PROGID_EXIT,   CRS_PROGID_EXIT_1,
    L"CLSID\\" CRS_CLSID_MANAGE_STR, CRS_PROGID_MANAGE, CRS_PROGID_MANAGE_1,
};

static LONG set_value(const struct reg_value *rv, const WCHAR *module_path)
{
    WCHAR path[256];
    const WCHAR *value = rv->value != MODULE_PATH ? rv->value : module_path;
    HKEY key;
    LONG err;
    int n;

    n = _snwprintf(path, sizeof(path) / sizeof(path[0]), L"%ls%ls", CLASSES, rv->key);
    if (n < 0 || (size_t)n >= sizeof(path) / sizeof(path[0]))
        return ERROR_BUFFER_OVERFLOW;
    err = RegCreateKeyExW(HKEY_LOCAL_MACHINE, path, 0, NULL, REG_OPTION_NON_VOLATILE,
                          KEY_SET_VALUE | KEY_WOW64_64KEY, NULL, &key, NULL);
    if (err != ERROR_SUCCESS)
        return err;
    err = RegSetValueExW(key, rv->name, 0, REG_SZ, (const BYTE *)value,
                         (DWORD)((wcslen(value) + 1) * sizeof(WCHAR)));
    RegCloseKey(key);
    return err;
}

/* Removes everything registration writes. Missing keys are fine: unregistering twice, or after
 * a half-finished registration, must succeed. */
static HRESULT unregister_all(void)
{
    WCHAR path[256];
    HRESULT hr = S_OK;
    LONG err;
    size_t i;

    for (i = 0; i < sizeof(registration_roots) / sizeof(registration_roots[0]); i++) {
        _snwprintf(path, sizeof(path) / sizeof(path[0]), L"%ls%ls", CLASSES, registration_roots[i]);
        path[sizeof(path) / sizeof(path[0]) - 1] = L'\0';
        err = RegDeleteTreeW(HKEY_LOCAL_MACHINE, path);
        if (err != ERROR_SUCCESS && err != ERROR_FILE_NOT_FOUND)
            hr = SELFREG_E_CLASS;
    }
    if (crs_eventlog_uninstall(CRS_EVENTLOG_SOURCE_EXIT) != 0)
        hr = SELFREG_E_CLASS;
    return hr;
}

HRESULT WINAPI DllRegisterServer(void)
{
    WCHAR module_path[MAX_PATH + 1];
    DWORD n;
    LONG err = ERROR_SUCCESS;
    size_t i;

    /* A path that does not fit is refused rather than registered truncated. */
    n = GetModuleFileNameW(crs_dll_instance, module_path, MAX_PATH + 1);
    if (n == 0 || n > MAX_PATH)
        return SELFREG_E_CLASS;

    for (i = 0; i < sizeof(registration) / sizeof(registration[0]) && err == ERROR_SUCCESS; i++)
        err = set_value(&registration[i], module_path);
    if (err == ERROR_SUCCESS && crs_eventlog_install(CRS_EVENTLOG_SOURCE_EXIT, module_path) != 0)
        err = ERROR_ACCESS_DENIED;
    if (err != ERROR_SUCCESS) {
        unregister_all();
        return SELFREG_E_CLASS;
    }
    return S_OK;
}

HRESULT WINAPI DllUnregisterServer(void)
{
    return unregister_all();
}
