/*
 * fake_certview.dll: the fake CCertView (fake_certview.c) as an in-process COM server, for a
 * process the test cannot put a class object into: the broker service's scheduled catch-up. The
 * test registers it as CLSID_CCertView's InprocServer32 in the Wine prefix, so the broker's
 * ordinary CoCreateInstance(CLSID_CCertView) on its threadpool thread loads it, as it would load
 * certadm.dll on a CA.
 *
 * What it serves is read once, at the first DllGetClassObject, from REG_SZ values under
 * HKLM\SOFTWARE\CertRelayTest\FakeCertView: Rows (the table, harness.c's --rows format),
 * Fixtures (the leaf DER files), CaName (the CA OpenConnection accepts) and Trace (a file that
 * gets a line per OpenConnection and SetRestriction).
 */
#include <stdio.h>
#include <stdlib.h>

#include "fake_certview.h"

#define SETTINGS_KEY L"SOFTWARE\\CertRelayTest\\FakeCertView"

static INIT_ONCE loaded = INIT_ONCE_STATIC_INIT;
static int load_ok;

/* A REG_SZ setting as UTF-8 (a fresh string), or NULL. */
static char *setting(HKEY key, const WCHAR *name)
{
    WCHAR w[MAX_PATH];
    DWORD type = 0, size = sizeof(w) - sizeof(WCHAR);
    char *s;
    int n;

    if (RegQueryValueExW(key, name, NULL, &type, (BYTE *)w, &size) != ERROR_SUCCESS ||
        type != REG_SZ)
        return NULL;
    w[size / sizeof(WCHAR)] = L'\0';
    n = WideCharToMultiByte(CP_UTF8, 0, w, -1, NULL, 0, NULL, NULL);
    s = n > 0 ? malloc((size_t)n) : NULL;
    if (s != NULL)
        WideCharToMultiByte(CP_UTF8, 0, w, -1, s, n, NULL, NULL);
    return s;
}

static BOOL CALLBACK load_once(INIT_ONCE *once, void *param, void **ctx)
{
    HKEY key;
    char *rows_path, *fixtures, *ca, *trace;
    struct fcv_row *rows = NULL;
    int n;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, SETTINGS_KEY, 0, KEY_READ, &key) != ERROR_SUCCESS)
        return TRUE;
    rows_path = setting(key, L"Rows");
    fixtures = setting(key, L"Fixtures");
    ca = setting(key, L"CaName");
    trace = setting(key, L"Trace");
    RegCloseKey(key);
    if (trace != NULL)
        fcv_set_trace(trace);
    if (rows_path != NULL && fixtures != NULL && ca != NULL &&
        (n = fcv_load_rows(rows_path, fixtures, &rows)) >= 0) {
        int wn = MultiByteToWideChar(CP_UTF8, 0, ca, -1, NULL, 0);
        WCHAR *wca = wn > 0 ? malloc((size_t)wn * sizeof(WCHAR)) : NULL;

        if (wca != NULL && MultiByteToWideChar(CP_UTF8, 0, ca, -1, wca, wn) == wn) {
            fcv_set_ca(wca);
            fcv_set_table(rows, n);
            load_ok = 1;
        }
    }
    /* Kept for the life of the process: the table points into them. */
    free(rows_path);
    free(trace);
    return TRUE;
}

HRESULT WINAPI DllGetClassObject(REFCLSID clsid, REFIID riid, void **out)
{
    if (out == NULL)
        return E_POINTER;
    *out = NULL;
    if (!IsEqualCLSID(clsid, &CLSID_CCertView))
        return CLASS_E_CLASSNOTAVAILABLE;
    InitOnceExecuteOnce(&loaded, load_once, NULL, NULL);
    if (!load_ok)
        return E_UNEXPECTED;
    return IClassFactory_QueryInterface(fcv_factory(), riid, out);
}

HRESULT WINAPI DllCanUnloadNow(void)
{
    /* The table is loaded once per process: stay. */
    return S_FALSE;
}
