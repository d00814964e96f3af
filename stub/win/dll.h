/*
 * Internal interfaces of certrelay_exit.dll, the COM shell around the stub core.
 *
 *   dllmain.c   DllMain, the class factories, the module lock count, (un)registration
 *   exit.c      CertRelay.Exit: ICertExit2 (Initialize, Notify, GetDescription, GetManageModule)
 *   manage.c    CertRelay.ExitManage: ICertManageModule for the CA snap-in
 *   settings.c  the registry settings both objects read
 *   reader.c    struct crs_prop_reader over a CCertServerExit object
 *
 * Calls go one way: dllmain.c -> exit.c -> manage.c -> settings.c. The Event Log, private
 * directories and UTF-16 conversion are lib's Windows half (include/certrelay/win/).
 */
#ifndef CERTRELAY_STUB_WIN_DLL_H
#define CERTRELAY_STUB_WIN_DLL_H

#include <stddef.h>
#include <stdint.h>

#include "guids.h"
#include "certrelay/stub.h"
#include "certrelay/version.h"
#include "certrelay/win/wstr.h"

/* The module handle, for GetModuleFileNameW. */
extern HINSTANCE crs_dll_instance;

/*
 * The module lock count behind DllCanUnloadNow: every live object holds one lock and every
 * IClassFactory::LockServer(TRUE) another, so the DLL is unloaded only when nothing can call
 * into it any more.
 */
void crs_dll_lock(void);
void crs_dll_unlock(void);

/* Object constructors used by the class factories and GetManageModule. */
HRESULT crs_exit_create(REFIID riid, void **out);
HRESULT crs_manage_create(REFIID riid, void **out);

/* Human strings shared by GetDescription, the manage module and the registry. */
#define CRS_DLL_NAME        L"CertRelay Exit Module"
#define CRS_DLL_DESCRIPTION L"Forwards certificate and CRL events to the CertRelay broker service"
#define CRS_DLL_COPYRIGHT   L"Copyright (c) 2025 The CertRelay authors"

/* CRS_VERSION as a wide string literal (CRS_VERSION comes from CMake as a narrow literal). */
#define CRS_WIDEN_(s) L##s
#define CRS_WIDEN(s)  CRS_WIDEN_(s)
#define CRS_VERSION_W CRS_WIDEN(CRS_VERSION)

/* The exit module's settings key below a CA's configuration key. */
#define CRS_REG_CONFIGURATION L"SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration\\"
#define CRS_REG_EXIT_SUBKEY   L"\\ExitModules\\" CRS_PROGID_EXIT

/*
 * Settings read by Initialize from the key certsrv names (ModuleRegistryLocation), normally
 * HKLM\<CRS_REG_CONFIGURATION><sanitized CA name><CRS_REG_EXIT_SUBKEY>, with the documented
 * defaults for absent values. Strings are UTF-8 (crs_malloc); free with crs_exit_settings_clear.
 */
struct crs_exit_settings {
    char *pipe;              /* PipeName, default \\.\pipe\CertRelay */
    char *service;           /* BrokerService: the service that must own the pipe, CertRelay */
    char *spool_dir;         /* SpoolDir, default %ProgramData%\CertRelay\spool */
    uint32_t timeout_ms;     /* TimeoutMs, default 2000 */
    uint32_t event_mask;     /* EventMask, default every event (0x3ff) */
    int capture_raw_request; /* CaptureRawRequest, default 0 */
    int from_registry;       /* whether the key existed */
    char *location;          /* the key's path below HKLM, NULL when none was known */
};
/* Reads the settings from location, a key path below HKLM (a leading "HKLM\" or
 * "HKEY_LOCAL_MACHINE\" is accepted); NULL or a missing key gives the defaults. */
int crs_exit_settings_read(const WCHAR *location, struct crs_exit_settings *out);
/* The settings key path of the CA whose sanitized name is ca, as a fresh string (crs_free). */
int crs_exit_settings_key(const WCHAR *ca, WCHAR **out);
void crs_exit_settings_clear(struct crs_exit_settings *s);

/*
 * A property reader over one ICertServerExit on which SetContext(context) has been called.
 * The struct must outlive every use of the crs_prop_reader filled by crs_win_reader_init.
 */
struct crs_win_reader {
    ICertServerExit *server;
    LONG context;
};
void crs_win_reader_init(struct crs_win_reader *wr, ICertServerExit *server, LONG context,
                         struct crs_prop_reader *out);
/* Maps a failed HRESULT from certsrv to a CRS_E* code. */
int crs_win_hresult_error(HRESULT hr);

#endif
