/*
 * `certrelay install` and `certrelay uninstall`: everything an installation needs besides
 * copying the three binaries, in order, each step idempotent and reported (setup.h).
 *
 *   install    elevation check; service (create or align, account, description, failure
 *              actions, delayed start); COM classes and Event Log sources; %ProgramData%\
 *              CertRelay with its ACL; certrelay.ini (given, or the example when none exists);
 *              with --add-to-ca the CA's active exit modules; start the service
 *   uninstall  elevation check; the CA's active exit modules; stop and delete the service;
 *              COM classes and Event Log sources; with --purge %ProgramData%\CertRelay
 *
 * The MSI (installer/certrelay.wxs) runs both as deferred custom actions with --msi: the package
 * then creates, starts, stops and deletes the service and writes the COM and Event Log keys
 * through its own tables, and these commands do only what the package cannot.
 */
#include <stdio.h>
#include <string.h>

#include "setup.h"
#include "commands.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/error.h"

#define CLSID_EXIT_KEY L"SOFTWARE\\Classes\\CLSID\\{32091528-FF3F-49CB-B654-3E20ADC7464B}"
#define EVENTLOG_KEY   L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\"

/* 1 when the REG_SZ/REG_EXPAND_SZ value under HKLM names path (ignoring case). */
static int reg_names(const WCHAR *key, const WCHAR *value, const WCHAR *path)
{
    WCHAR have[SETUP_PATH_MAX];
    DWORD size = sizeof(have);

    if (RegGetValueW(HKEY_LOCAL_MACHINE, key, value,
                     RRF_RT_REG_SZ | RRF_RT_REG_EXPAND_SZ | RRF_NOEXPAND, NULL, have,
                     &size) != ERROR_SUCCESS)
        return 0;
    return _wcsicmp(have, path) == 0;
}

static int reg_exists(const WCHAR *key)
{
    HKEY h;

    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, key, 0, KEY_READ | KEY_WOW64_64KEY, &h) != ERROR_SUCCESS)
        return 0;
    RegCloseKey(h);
    return 1;
}

/* Calls the DLL's own DllRegisterServer or DllUnregisterServer (stub/win/dllmain.c), so that
 * a script deployment writes exactly what the package's Registry table writes. */
static HRESULT call_dll(const WCHAR *dll, const char *entry)
{
    HRESULT(WINAPI * fn)(void);
    HMODULE h = LoadLibraryExW(dll, NULL, LOAD_WITH_ALTERED_SEARCH_PATH);
    HRESULT hr;

    if (h == NULL)
        return HRESULT_FROM_WIN32(GetLastError());
    fn = (HRESULT(WINAPI *)(void))(void (*)(void))GetProcAddress(h, entry);
    hr = fn != NULL ? fn() : HRESULT_FROM_WIN32(ERROR_PROC_NOT_FOUND);
    FreeLibrary(h);
    return hr;
}

static void register_classes(struct setup_report *r, int add)
{
    WCHAR dll[SETUP_PATH_MAX], exe[SETUP_PATH_MAX];
    DWORD err = setup_install_file(SETUP_EXIT_DLL, dll, SETUP_PATH_MAX);
    HRESULT hr;
    int rc;

    if (err == 0)
        err = setup_install_file(SETUP_BROKER_EXE, exe, SETUP_PATH_MAX);
    if (err != 0) {
        setup_failed(r, "COM classes: %s", setup_strerror(err));
        return;
    }
    if (add && reg_names(CLSID_EXIT_KEY L"\\InprocServer32", NULL, dll) &&
        reg_exists(L"SOFTWARE\\Classes\\" SETUP_PROGID_EXIT) &&
        reg_names(EVENTLOG_KEY CRS_EVENTLOG_SOURCE_EXIT, L"EventMessageFile", dll)) {
        setup_already(r, "COM classes: CertRelay.Exit already registered (%ls)", dll);
    } else if (!add && !reg_exists(CLSID_EXIT_KEY) &&
               !reg_exists(L"SOFTWARE\\Classes\\" SETUP_PROGID_EXIT)) {
        setup_already(r, "COM classes: CertRelay.Exit already unregistered");
    } else {
        hr = call_dll(dll, add ? "DllRegisterServer" : "DllUnregisterServer");
        if (FAILED(hr))
            setup_failed(r, "COM classes: %s of %ls failed: 0x%08lx",
                         add ? "DllRegisterServer" : "DllUnregisterServer", dll, (unsigned long)hr);
        else
            setup_done(r, "COM classes: CertRelay.Exit %s, with the Event Log source CertRelay",
                       add ? "registered" : "unregistered");
    }

    if (add && reg_names(EVENTLOG_KEY CRS_EVENTLOG_SOURCE_BROKER, L"EventMessageFile", exe)) {
        setup_already(r, "Event Log source CertRelayBroker: already registered");
    } else if (!add && !reg_exists(EVENTLOG_KEY CRS_EVENTLOG_SOURCE_BROKER)) {
        setup_already(r, "Event Log source CertRelayBroker: already removed");
    } else {
        rc = add ? crs_eventlog_install(CRS_EVENTLOG_SOURCE_BROKER, exe)
                 : crs_eventlog_uninstall(CRS_EVENTLOG_SOURCE_BROKER);
        if (rc != 0)
            setup_failed(r, "Event Log source CertRelayBroker: %s", crs_strerror(rc));
        else
            setup_done(r, "Event Log source CertRelayBroker: %s", add ? "registered" : "removed");
    }
}

/* A UTF-16 copy of an option's value; "" gives NULL (an MSI property that is not set). */
static int wide_arg(const char *command, const char *name, const char *v, WCHAR *out, size_t cap,
                    const WCHAR **result)
{
    *result = NULL;
    if (v[0] == '\0')
        return 0;
    if (MultiByteToWideChar(CP_ACP, 0, v, -1, out, (int)cap) <= 0) {
        fprintf(stderr, "certrelay %s: %s: value too long\n", command, name);
        return -1;
    }
    *result = out;
    return 0;
}

static int bad_usage(const char *command, const char *arg, int missing)
{
    fprintf(stderr, "certrelay %s: %s '%s' (see certrelay %s --help)\n", command,
            missing ? "missing value for" : "invalid option", arg, command);
    return 2;
}

/* The summary for the Event Log, where an administrator looks after a silent install. */
static void log_summary(const struct setup_report *r, const char *what)
{
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_BROKER, r->failures > 0 ? CRS_LOG_ERROR : CRS_LOG_INFO,
                        "certrelay %s: %s (%d changes, %d failures). Active Directory Certificate "
                        "Services keeps its exit modules loaded: restart CertSvc (net stop "
                        "certsvc && net start certsvc) for CertRelay.Exit to %s.",
                        r->command, r->failures > 0 ? "failed" : "done", r->changes, r->failures,
                        what);
}

/* ------------------------------------------------------------------------------------------ */
/* certrelay install                                                                            */
/* ------------------------------------------------------------------------------------------ */

static void install_usage(FILE *f)
{
    fprintf(f, "usage: certrelay install [--add-to-ca] [--account system|virtual] [--config FILE]\n"
               "                         [--ca NAME] [--no-start]\n\n"
               "Sets CertRelay up from the folder certrelay.exe is in (beside certrelayd.exe and\n"
               "certrelay_exit.dll): the CertRelay service (automatic, delayed start; restarts "
               "after\n5 s, 30 s, 60 s), the COM classes, the Event Log sources, "
               "%%ProgramData%%\\CertRelay\nwith an ACL for SYSTEM and Administrators (and the "
               "virtual account), and\ncertrelay.ini (FILE, checked by certrelayd, or the "
               "commented example when none\nexists). Safe to run again: what is in place is left "
               "alone. Needs an elevated prompt.\n\n"
               "  --add-to-ca     also add CertRelay.Exit to the CA's active exit modules\n"
               "  --account A     system (LocalSystem) or virtual (NT SERVICE\\CertRelay);\n"
               "                  default: the service's current account, LocalSystem when new\n"
               "  --config FILE   install FILE as %%ProgramData%%\\CertRelay\\certrelay.ini\n"
               "  --ca NAME       the CA's key name (default: the machine's active CA)\n"
               "  --no-start      leave the service stopped\n");
}

int tool_install_main(int argc, char **argv)
{
    struct setup_report r = {"install", 0, 0};
    WCHAR config_buf[SETUP_PATH_MAX], ca_buf[256];
    const WCHAR *config = NULL, *ca = NULL;
    enum setup_account account = SETUP_ACCOUNT_SYSTEM;
    int i, missing = 0, add_to_ca = 0, msi = 0, start = 1, account_given = 0;
    int previous_virtual = 0;
    const char *v;

    for (i = 1; i < argc; i++) {
        missing = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            install_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--add-to-ca") == 0) {
            add_to_ca = 1;
        } else if (strncmp(argv[i], "--add-to-ca=", 12) == 0) {
            if ((add_to_ca = setup_bool(argv[i] + 12)) < 0)
                return bad_usage(r.command, argv[i], 0);
        } else if (strncmp(argv[i], "--was-active=", 13) == 0) {
            /* The package's record that the module was active before an upgrade. */
            if (setup_bool(argv[i] + 13) == 1)
                add_to_ca = 1;
        } else if ((v = setup_option(argc, argv, &i, "--account", &missing)) != NULL) {
            if (v[0] == '\0')
                continue; /* SERVICEACCOUNT not given: keep the previous account */
            if (_stricmp(v, "system") == 0)
                account = SETUP_ACCOUNT_SYSTEM;
            else if (_stricmp(v, "virtual") == 0)
                account = SETUP_ACCOUNT_VIRTUAL;
            else
                return bad_usage(r.command, argv[i], 0);
            account_given = 1;
        } else if (strncmp(argv[i], "--previous-account=", 19) == 0) {
            /* The package's reading of the service's account before an upgrade recreated it. */
            previous_virtual = _stricmp(argv[i] + 19, "NT SERVICE\\CertRelay") == 0;
        } else if ((v = setup_option(argc, argv, &i, "--config", &missing)) != NULL) {
            if (wide_arg(r.command, "--config", v, config_buf, SETUP_PATH_MAX, &config) != 0)
                return 2;
        } else if ((v = setup_option(argc, argv, &i, "--ca", &missing)) != NULL) {
            if (wide_arg(r.command, "--ca", v, ca_buf, 256, &ca) != 0)
                return 2;
        } else if (strcmp(argv[i], "--no-start") == 0) {
            start = 0;
        } else if (strcmp(argv[i], "--msi") == 0) {
            msi = 1; /* the package creates, registers and starts; see the file comment */
        } else {
            return bad_usage(r.command, argv[i], missing);
        }
    }
    if (!account_given && previous_virtual) {
        account = SETUP_ACCOUNT_VIRTUAL;
        account_given = 1;
    }
    if (!setup_require_admin(r.command))
        return 1;

    printf("certrelay install\n");
    account = setup_service_install(&r, account, account_given, !msi);
    if (!msi)
        register_classes(&r, 1);
    setup_data_dirs(&r, account);
    setup_config(&r, config);
    if (add_to_ca)
        setup_ca_activate(&r, ca, 0);
    if (start && !msi && r.failures == 0)
        setup_service_start(&r);
    setup_ca_restart_note(&r, 1);
    log_summary(&r, "load");
    return setup_finish(&r);
}

/* ------------------------------------------------------------------------------------------ */
/* certrelay uninstall                                                                          */
/* ------------------------------------------------------------------------------------------ */

static void uninstall_usage(FILE *f)
{
    fprintf(f, "usage: certrelay uninstall [--keep-data | --purge] [--ca NAME]\n\n"
               "Removes CertRelay.Exit from the CA's active exit modules (the others stay), stops\n"
               "and deletes the CertRelay service, and removes the COM classes and Event Log\n"
               "sources. %%ProgramData%%\\CertRelay (configuration, queue, spool, logs) is kept\n"
               "unless --purge. The binaries stay: delete their folder afterwards. Safe to run\n"
               "again. Needs an elevated prompt.\n");
}

int tool_uninstall_main(int argc, char **argv)
{
    struct setup_report r = {"uninstall", 0, 0};
    WCHAR ca_buf[256];
    const WCHAR *ca = NULL;
    int i, missing = 0, purge = 0, msi = 0, upgrading = 0;
    const char *v;

    for (i = 1; i < argc; i++) {
        missing = 0;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            uninstall_usage(stdout);
            return 0;
        } else if (strcmp(argv[i], "--purge") == 0) {
            purge = 1;
        } else if (strncmp(argv[i], "--purge=", 8) == 0) {
            if ((purge = setup_bool(argv[i] + 8)) < 0)
                return bad_usage(r.command, argv[i], 0);
        } else if (strncmp(argv[i], "--upgrading=", 12) == 0) {
            upgrading = argv[i][12] != '\0'; /* the package's UPGRADINGPRODUCTCODE */
        } else if (strcmp(argv[i], "--keep-data") == 0) {
            purge = 0;
        } else if ((v = setup_option(argc, argv, &i, "--ca", &missing)) != NULL) {
            if (wide_arg(r.command, "--ca", v, ca_buf, 256, &ca) != 0)
                return 2;
        } else if (strcmp(argv[i], "--msi") == 0) {
            msi = 1;
        } else {
            return bad_usage(r.command, argv[i], missing);
        }
    }
    if (!setup_require_admin(r.command))
        return 1;

    printf("certrelay uninstall\n");
    if (upgrading) {
        /* The older package's removal during an upgrade: only make sure the broker's process
         * is gone before its files are replaced; the module and the data stay. */
        setup_service_remove(&r, 0);
        return setup_finish(&r);
    }
    setup_ca_deactivate(&r, ca, 0);
    setup_service_remove(&r, !msi); /* the package deletes the service itself */
    if (!msi)
        register_classes(&r, 0);
    setup_data_remove(&r, purge);
    setup_ca_restart_note(&r, 0);
    log_summary(&r, "unload");
    return setup_finish(&r);
}
