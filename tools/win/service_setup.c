/*
 * The CertRelay service: created (when no package did it), configured for recovery, started,
 * and on removal stopped and deleted. What the MSI's ServiceInstall cannot say is set here:
 *
 *   account            LocalSystem, or the virtual account NT SERVICE\CertRelay
 *   failure actions    restart after 5 s, 30 s and 60 s; the count resets after a day; also
 *                      when the service stops with an error rather than crashing
 *   delayed start      automatic (delayed): the CA, the network and the disks come first
 *   pre-shutdown       30 s for the commit in flight when Windows shuts down (the service
 *                      takes SERVICE_CONTROL_PRESHUTDOWN, broker/win/service.c)
 *   description        what services.msc shows
 *
 * Each setting is read first (QueryServiceConfig / QueryServiceConfig2) and written only when
 * it differs, so running install twice changes nothing the second time.
 */
#include "setup.h"

#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include "certrelay/error.h"
#include "certrelay/win/svcacct.h"

#define SERVICE_DISPLAY     L"CertRelay"
#define SERVICE_DESCRIPTION L"Delivers AD CS exit module events (CertRelay)"
#define SERVICE_WAIT_MS     60000
#define QUERY_BUF_BYTES     8192

/* Restart after 5 s, 30 s, 60 s; reset the failure count after a day without failures. */
static const SC_ACTION failure_actions[] = {
    {SC_ACTION_RESTART, 5000},
    {SC_ACTION_RESTART, 30000},
    {SC_ACTION_RESTART, 60000},
};
#define NACTIONS      (sizeof(failure_actions) / sizeof(failure_actions[0]))
#define RESET_SECONDS (24 * 60 * 60)
/* How long Windows waits at shutdown for the broker to finish the commit in flight after
 * SERVICE_CONTROL_PRESHUTDOWN; a commit takes milliseconds, a slow disk seconds. */
#define PRESHUTDOWN_MS 30000

static const WCHAR *account_name(enum setup_account account)
{
    return account == SETUP_ACCOUNT_VIRTUAL ? SETUP_VIRTUAL_ACCOUNT : L"LocalSystem";
}

/* LocalSystem is spelled several ways in a service's configuration. */
static int same_account(const WCHAR *have, enum setup_account want)
{
    if (want == SETUP_ACCOUNT_VIRTUAL)
        return have != NULL && _wcsicmp(have, SETUP_VIRTUAL_ACCOUNT) == 0;
    return have == NULL || have[0] == L'\0' || _wcsicmp(have, L"LocalSystem") == 0 ||
           _wcsicmp(have, L".\\LocalSystem") == 0 || _wcsicmp(have, L"NT AUTHORITY\\SYSTEM") == 0;
}

/* Waits until the service reaches state; 1 when it did. */
static int wait_state(SC_HANDLE svc, DWORD state)
{
    SERVICE_STATUS st;
    DWORD waited = 0;

    while (QueryServiceStatus(svc, &st)) {
        if (st.dwCurrentState == state)
            return 1;
        if (waited >= SERVICE_WAIT_MS)
            return 0;
        Sleep(250);
        waited += 250;
    }
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Settings read back with QueryServiceConfig2                                                  */
/* ------------------------------------------------------------------------------------------ */

static int query2(SC_HANDLE svc, DWORD level, BYTE *buf)
{
    DWORD need = 0;

    memset(buf, 0, QUERY_BUF_BYTES);
    return QueryServiceConfig2W(svc, level, buf, QUERY_BUF_BYTES, &need) ? 1 : 0;
}

static int description_is_set(SC_HANDLE svc, BYTE *buf)
{
    SERVICE_DESCRIPTIONW *d = (SERVICE_DESCRIPTIONW *)buf;

    return query2(svc, SERVICE_CONFIG_DESCRIPTION, buf) && d->lpDescription != NULL &&
           wcscmp(d->lpDescription, SERVICE_DESCRIPTION) == 0;
}

static int failure_actions_are_set(SC_HANDLE svc, BYTE *buf)
{
    SERVICE_FAILURE_ACTIONSW *fa = (SERVICE_FAILURE_ACTIONSW *)buf;
    SERVICE_FAILURE_ACTIONS_FLAG *flag = (SERVICE_FAILURE_ACTIONS_FLAG *)buf;
    size_t i;

    if (!query2(svc, SERVICE_CONFIG_FAILURE_ACTIONS, buf) || fa->dwResetPeriod != RESET_SECONDS ||
        fa->cActions != NACTIONS || fa->lpsaActions == NULL)
        return 0;
    for (i = 0; i < NACTIONS; i++)
        if (fa->lpsaActions[i].Type != failure_actions[i].Type ||
            fa->lpsaActions[i].Delay != failure_actions[i].Delay)
            return 0;
    return query2(svc, SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, buf) &&
           flag->fFailureActionsOnNonCrashFailures;
}

static int preshutdown_is_set(SC_HANDLE svc, BYTE *buf)
{
    SERVICE_PRESHUTDOWN_INFO *p = (SERVICE_PRESHUTDOWN_INFO *)buf;

    return query2(svc, SERVICE_CONFIG_PRESHUTDOWN_INFO, buf) &&
           p->dwPreshutdownTimeout == PRESHUTDOWN_MS;
}

static int delayed_start_is_set(SC_HANDLE svc, BYTE *buf)
{
    SERVICE_DELAYED_AUTO_START_INFO *d = (SERVICE_DELAYED_AUTO_START_INFO *)buf;

    return query2(svc, SERVICE_CONFIG_DELAYED_AUTO_START_INFO, buf) && d->fDelayedAutostart;
}

/*
 * Sets one QueryServiceConfig2 setting when is_set says it differs, and reports. A system that
 * takes the setting but does not report it back (Wine) gets a note, not a change: the next run
 * cannot tell either, and "changed" every time would be a lie about idempotence.
 */
static void ensure_config2(struct setup_report *r, SC_HANDLE svc, BYTE *buf, const char *what,
                           int (*is_set)(SC_HANDLE, BYTE *), DWORD level, void *info, DWORD level2,
                           void *info2)
{
    if (is_set(svc, buf)) {
        setup_already(r, "service CertRelay: %s already set", what);
        return;
    }
    if (!ChangeServiceConfig2W(svc, level, info) ||
        (info2 != NULL && !ChangeServiceConfig2W(svc, level2, info2))) {
        /* Every Windows since Vista takes these levels; Wine's service manager does not. */
        if (GetLastError() == ERROR_INVALID_LEVEL)
            setup_note(r,
                       "service CertRelay: %s not supported by this system's service "
                       "manager, skipped",
                       what);
        else
            setup_failed(r, "service CertRelay: cannot set %s: %s", what,
                         setup_strerror(GetLastError()));
        return;
    }
    if (is_set(svc, buf))
        setup_done(r, "service CertRelay: %s set", what);
    else
        setup_note(r,
                   "service CertRelay: %s set; this system does not report it back, so it "
                   "cannot be verified here",
                   what);
}

/* ------------------------------------------------------------------------------------------ */
/* Steps                                                                                        */
/* ------------------------------------------------------------------------------------------ */

/* Creates the service, or brings its binary, start type and account in line. */
static SC_HANDLE ensure_service(struct setup_report *r, SC_HANDLE scm, enum setup_account *accountp,
                                int account_given, int create, BYTE *buf)
{
    WCHAR exe[SETUP_PATH_MAX], bin[SETUP_PATH_MAX + 2];
    QUERY_SERVICE_CONFIGW *qc = (QUERY_SERVICE_CONFIGW *)buf;
    const WCHAR *want_bin = NULL, *start_name = NULL, *password = NULL;
    enum setup_account account = *accountp;
    SC_HANDLE svc;
    DWORD err, need, start = SERVICE_NO_CHANGE;
    int change = 0;

    err = setup_install_file(SETUP_BROKER_EXE, exe, SETUP_PATH_MAX);
    if (err == 0 && _snwprintf(bin, SETUP_PATH_MAX + 2, L"\"%ls\"", exe) >= SETUP_PATH_MAX + 2)
        err = ERROR_BUFFER_OVERFLOW;
    if (err != 0) {
        setup_failed(r, "service CertRelay: cannot locate certrelayd.exe: %s", setup_strerror(err));
        return NULL;
    }
    svc = OpenServiceW(scm, SETUP_SERVICE_NAME, SERVICE_ALL_ACCESS);
    if (svc == NULL && GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST) {
        if (!create) {
            setup_failed(r, "service CertRelay: does not exist (the package should have created "
                            "it)");
            return NULL;
        }
        svc = CreateServiceW(scm, SETUP_SERVICE_NAME, SERVICE_DISPLAY, SERVICE_ALL_ACCESS,
                             SERVICE_WIN32_OWN_PROCESS, SERVICE_AUTO_START, SERVICE_ERROR_NORMAL,
                             bin, NULL, NULL, NULL,
                             account == SETUP_ACCOUNT_VIRTUAL ? SETUP_VIRTUAL_ACCOUNT : NULL, NULL);
        if (svc == NULL) {
            setup_failed(r, "service CertRelay: cannot create it: %s",
                         setup_strerror(GetLastError()));
            return NULL;
        }
        setup_done(r, "service CertRelay: created (%ls, %ls, automatic start)", bin,
                   account_name(account));
        return svc;
    }
    if (svc == NULL) {
        setup_failed(r, "service CertRelay: cannot open it: %s", setup_strerror(GetLastError()));
        return NULL;
    }
    if (!QueryServiceConfigW(svc, qc, QUERY_BUF_BYTES, &need)) {
        setup_failed(r, "service CertRelay: cannot read its configuration: %s",
                     setup_strerror(GetLastError()));
        return svc;
    }
    /* The binary in this folder, quoted: an unquoted path with a space ("C:\Program Files\...")
     * lets whoever can write C:\Program.exe run as the service. */
    if (qc->lpBinaryPathName == NULL || _wcsicmp(qc->lpBinaryPathName, bin) != 0) {
        want_bin = bin;
        change = 1;
    }
    if (qc->dwStartType != SERVICE_AUTO_START) {
        start = SERVICE_AUTO_START;
        change = 1;
    }
    /* Without --account, an existing service keeps the account it runs as. */
    if (!account_given) {
        account = same_account(qc->lpServiceStartName, SETUP_ACCOUNT_VIRTUAL)
                      ? SETUP_ACCOUNT_VIRTUAL
                      : SETUP_ACCOUNT_SYSTEM;
        *accountp = account;
    }
    if (!same_account(qc->lpServiceStartName, account)) {
        /* Neither account has a password; LocalSystem is named ".\LocalSystem" here. */
        start_name = account == SETUP_ACCOUNT_VIRTUAL ? SETUP_VIRTUAL_ACCOUNT : L".\\LocalSystem";
        password = L"";
        change = 1;
    }
    if (!change) {
        setup_already(r, "service CertRelay: already installed (%ls, automatic start)",
                      account_name(account));
        return svc;
    }
    if (!ChangeServiceConfigW(svc, SERVICE_NO_CHANGE, start, SERVICE_NO_CHANGE, want_bin, NULL,
                              NULL, NULL, start_name, password, NULL)) {
        setup_failed(r, "service CertRelay: cannot change its configuration: %s",
                     setup_strerror(GetLastError()));
        return svc;
    }
    setup_done(r, "service CertRelay: configured (%ls%ls, automatic start)",
               want_bin != NULL ? L"binary path set (quoted), " : L"", account_name(account));
    return svc;
}

enum setup_account setup_service_install(struct setup_report *r, enum setup_account account,
                                         int account_given, int create)
{
    SERVICE_DESCRIPTIONW desc = {(WCHAR *)SERVICE_DESCRIPTION};
    SERVICE_FAILURE_ACTIONSW fa = {RESET_SECONDS, NULL, NULL, NACTIONS,
                                   (SC_ACTION *)failure_actions};
    SERVICE_FAILURE_ACTIONS_FLAG flag = {TRUE};
    SERVICE_DELAYED_AUTO_START_INFO delayed = {TRUE};
    SERVICE_PRESHUTDOWN_INFO preshutdown = {PRESHUTDOWN_MS};
    SC_HANDLE scm, svc = NULL;
    BYTE *buf = crs_malloc(QUERY_BUF_BYTES);

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_ALL_ACCESS);
    if (buf == NULL || scm == NULL) {
        setup_failed(r, "service CertRelay: cannot open the Service Control Manager: %s",
                     buf == NULL ? "out of memory" : setup_strerror(GetLastError()));
        goto cleanup;
    }
    svc = ensure_service(r, scm, &account, account_given, create, buf);
    if (svc == NULL)
        goto cleanup;
    ensure_config2(r, svc, buf, "description", description_is_set, SERVICE_CONFIG_DESCRIPTION,
                   &desc, 0, NULL);
    ensure_config2(r, svc, buf,
                   "failure actions (restart after 5 s, 30 s, 60 s; reset after 1 day)",
                   failure_actions_are_set, SERVICE_CONFIG_FAILURE_ACTIONS, &fa,
                   SERVICE_CONFIG_FAILURE_ACTIONS_FLAG, &flag);
    ensure_config2(r, svc, buf, "delayed automatic start", delayed_start_is_set,
                   SERVICE_CONFIG_DELAYED_AUTO_START_INFO, &delayed, 0, NULL);
    ensure_config2(r, svc, buf, "pre-shutdown timeout (30 s)", preshutdown_is_set,
                   SERVICE_CONFIG_PRESHUTDOWN_INFO, &preshutdown, 0, NULL);

cleanup:
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    crs_free(buf);
    return account;
}

void setup_service_start(struct setup_report *r)
{
    SC_HANDLE scm, svc = NULL;

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm != NULL)
        svc = OpenServiceW(scm, SETUP_SERVICE_NAME, SERVICE_START | SERVICE_QUERY_STATUS);
    if (svc == NULL) {
        setup_failed(r, "service CertRelay: cannot open it: %s", setup_strerror(GetLastError()));
    } else if (!StartServiceW(svc, 0, NULL)) {
        if (GetLastError() == ERROR_SERVICE_ALREADY_RUNNING)
            setup_already(r, "service CertRelay: already running (restart it to apply a "
                             "changed configuration)");
        else
            setup_failed(r, "service CertRelay: cannot start it: %s",
                         setup_strerror(GetLastError()));
    } else if (wait_state(svc, SERVICE_RUNNING)) {
        setup_done(r, "service CertRelay: started");
    } else {
        setup_failed(r, "service CertRelay: did not reach RUNNING; see "
                        "%%ProgramData%%\\CertRelay\\logs\\certrelayd.log and the Event Log");
    }
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
}

/*
 * Stops the service and waits until its process has exited, not only until the SCM says STOPPED:
 * the process still maps certrelayd.exe for a moment after that, and Windows Installer would then
 * find the file in use and leave it for a reboot. 1 when the service is stopped.
 */
static int stop_and_wait(struct setup_report *r, SC_HANDLE svc)
{
    SERVICE_STATUS_PROCESS sp;
    SERVICE_STATUS st;
    HANDLE proc = NULL;
    DWORD need;
    int ok = 1;

    if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&sp, sizeof(sp), &need) ||
        sp.dwCurrentState == SERVICE_STOPPED)
        return 1;
    if (sp.dwProcessId != 0)
        proc = OpenProcess(SYNCHRONIZE, FALSE, sp.dwProcessId);
    if (!ControlService(svc, SERVICE_CONTROL_STOP, &st) &&
        GetLastError() != ERROR_SERVICE_NOT_ACTIVE) {
        setup_failed(r, "service CertRelay: cannot stop it: %s", setup_strerror(GetLastError()));
        ok = 0;
    } else if (!wait_state(svc, SERVICE_STOPPED) ||
               (proc != NULL && WaitForSingleObject(proc, SERVICE_WAIT_MS) != WAIT_OBJECT_0)) {
        setup_failed(r, "service CertRelay: did not stop in time");
        ok = 0;
    } else {
        setup_done(r, "service CertRelay: stopped (the commit in flight finished)");
    }
    if (proc != NULL)
        CloseHandle(proc);
    return ok;
}

void setup_service_remove(struct setup_report *r, int delete)
{
    SC_HANDLE scm, svc = NULL;

    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm == NULL) {
        setup_failed(r, "service CertRelay: cannot open the Service Control Manager: %s",
                     setup_strerror(GetLastError()));
        return;
    }
    svc = OpenServiceW(scm, SETUP_SERVICE_NAME, SERVICE_STOP | SERVICE_QUERY_STATUS | DELETE);
    if (svc == NULL) {
        if (GetLastError() == ERROR_SERVICE_DOES_NOT_EXIST)
            setup_already(r, "service CertRelay: already removed");
        else
            setup_failed(r, "service CertRelay: cannot open it: %s",
                         setup_strerror(GetLastError()));
        goto cleanup;
    }
    /* Stop first, so that the queue's last commit finishes before the binaries go. */
    if (!stop_and_wait(r, svc) || !delete)
        goto cleanup;
    if (!DeleteService(svc)) {
        if (GetLastError() == ERROR_SERVICE_MARKED_FOR_DELETE)
            setup_already(r, "service CertRelay: already marked for deletion");
        else
            setup_failed(r, "service CertRelay: cannot delete it: %s",
                         setup_strerror(GetLastError()));
    } else {
        setup_done(r, "service CertRelay: deleted");
    }

cleanup:
    if (svc != NULL)
        CloseServiceHandle(svc);
    CloseServiceHandle(scm);
}

/*
 * The service SID Windows gives a service for its virtual account (S-1-5-80-...), computed by
 * crs_win_service_sid (lib/win/svcacct.c, which the exit module and the broker use as well), so
 * it works before the service exists and where the account cannot be resolved by name.
 */
DWORD setup_service_sid(WCHAR *out, size_t cap)
{
    BYTE sid[SECURITY_MAX_SID_SIZE];
    int rc;

    rc = crs_win_service_sid(SETUP_SERVICE_NAME, (PSID)sid, sizeof(sid));
    if (rc == 0)
        rc = crs_win_sid_string((PSID)sid, out, cap);
    if (rc == CRS_ETOOBIG)
        return ERROR_BUFFER_OVERFLOW;
    return rc == 0 ? 0 : ERROR_INTERNAL_ERROR;
}
