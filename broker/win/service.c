/*
 * certrelayd as a Windows service.
 *
 * The SCM starts certrelayd.exe without arguments; main() hands over to crs_platform_main, whose
 * StartServiceCtrlDispatcherW blocks the main thread as the dispatcher until the service stops.
 * The SCM runs service_main on a thread of its own, and that thread is the broker's loop thread:
 *
 *   service_main    START_PENDING -> configuration, private directories -> crs_broker_run, the
 *                   broker's one lifecycle (broker.c), whose hooks report RUNNING once it
 *                   listens and STOP_PENDING checkpoints while the commit in flight finishes
 *                   -> STOPPED
 *   service_ctrl    (dispatcher thread) STOP, PRESHUTDOWN, SHUTDOWN: STOP_PENDING, then
 *                   crs_broker_request (CRS_BROKER_STOP), as SIGTERM on Unix; PARAMCHANGE:
 *                   CRS_BROKER_RELOAD, as SIGHUP, which reopens the log file
 *
 * At shutdown Windows gives the services that take only SHUTDOWN a few seconds in all
 * (WaitToKillServiceTimeout), shared among them, and then ends their processes: a commit in
 * flight on a slow disk could be cut off. A service that takes PRESHUTDOWN is told first and
 * waited for, up to its pre-shutdown timeout (`certrelay install` sets 30 s), while it reports
 * STOP_PENDING checkpoints: the stop commits the batch in flight, acknowledges it, and closes the
 * queue before the machine goes down. Whatever the module sends after that is spooled and
 * drained at the next start.
 *
 * Files (the defaults; certrelay.ini may move each):
 *
 *   %ProgramData%\CertRelay\certrelay.ini          configuration; built-in default when absent
 *   %ProgramData%\CertRelay\state\certrelay.db     the durable queue
 *   %ProgramData%\CertRelay\spool\                 where the exit module spools
 *   %ProgramData%\CertRelay\logs\certrelayd.log    the log
 *
 * A service has no console: it logs to the file and, for warnings and errors and its own start
 * and stop, to the Event Log (source "CertRelayBroker"), never to stdout.
 */
#include <windows.h>
#include <knownfolders.h>
#include <shellapi.h>
#include <shlobj.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "platform.h"
#include "service.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/wstr.h"
#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/version.h"

#define SERVICE_NAME L"CertRelay"
#define CONFIG_NAME  "certrelay.ini"
#define LOG_SUBDIR   "logs"
#define LOG_NAME     "certrelayd.log"

/* How long the SCM should wait before the next checkpoint. */
#define START_WAIT_HINT_MS 30000
#define STOP_WAIT_HINT_MS  15000
#define STOP_CHECKPOINT_MS 1000

/* ------------------------------------------------------------------------------------------ */
/* Shared state                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * The handler runs on the dispatcher thread and service_main (with the broker's loop) on its
 * own, so the status they share is guarded by `lock`.
 */
static struct {
    SERVICE_STATUS_HANDLE handle;
    SERVICE_STATUS status;
    CRITICAL_SECTION lock;
    char *config_path; /* --config FILE from the binPath, NULL: the default file */
} svc;

static void report_status(DWORD state, DWORD exit_code, DWORD specific, DWORD wait_hint)
{
    EnterCriticalSection(&svc.lock);
    svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    svc.status.dwCurrentState = state;
    svc.status.dwWin32ExitCode = exit_code;
    svc.status.dwServiceSpecificExitCode = specific;
    svc.status.dwWaitHint = wait_hint;
    /* Controls are taken only while running: a stop during start would race the start. */
    svc.status.dwControlsAccepted = state == SERVICE_RUNNING
                                        ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_PRESHUTDOWN |
                                              SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
                                        : 0;
    if (state == SERVICE_RUNNING || state == SERVICE_STOPPED)
        svc.status.dwCheckPoint = 0;
    else
        svc.status.dwCheckPoint++;
    if (svc.handle != NULL)
        SetServiceStatus(svc.handle, &svc.status);
    LeaveCriticalSection(&svc.lock);
}

/* Warnings and errors also go to the Event Log, where administrators look first. Informational
 * lines stay in the log file: one per delivery would drown the Event Log. */
static void service_log_output(void *ctx, enum crs_log_level level, const char *line)
{
    if (level <= CRS_LOG_WARN)
        crs_eventlog_write(CRS_EVENTLOG_SOURCE_BROKER, level, line);
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration and files                                                                      */
/* ------------------------------------------------------------------------------------------ */

static int file_exists(const char *path)
{
    WCHAR w[MAX_PATH + 1];

    if (crs_win_wide_buf(path, strlen(path), 0, w, MAX_PATH + 1) <= 0)
        return 1; /* unknown: let the load error stand */
    return GetFileAttributesW(w) != INVALID_FILE_ATTRIBUTES;
}

/*
 * Loads path, or %ProgramData%\CertRelay\certrelay.ini when path is NULL, falling back to the
 * built-in default configuration when that file does not exist. A file that exists but is wrong
 * is an error, never silently replaced by the default.
 */
static int load_config(const char *path, struct crs_config **cfg, char *err, size_t errlen)
{
    char *base = NULL, *ini = NULL;
    int rc;

    *cfg = NULL;
    err[0] = '\0';
    if (path != NULL)
        return crs_config_load(path, cfg, err, errlen);
    base = crs_default_base_dir();
    ini = base != NULL ? crs_path_join(base, CONFIG_NAME) : NULL;
    if (ini == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    rc = crs_config_load(ini, cfg, err, errlen);
    if (rc == CRS_ENOENT && !file_exists(ini)) {
        crs_info("%s does not exist: using the built-in default configuration", ini);
        rc = crs_broker_default_config(cfg);
        if (rc != 0)
            snprintf(err, errlen, "the built-in default configuration failed: %s",
                     crs_strerror(rc));
    }

cleanup:
    crs_free(ini);
    crs_free(base);
    return rc;
}

/* The service's log file: the configured one, else <base>\logs\certrelayd.log. */
static char *service_log_path(const struct crs_config *cfg)
{
    char *base, *dir, *path;

    if (cfg->log_file != NULL)
        return crs_strdup(cfg->log_file);
    base = crs_default_base_dir();
    dir = base != NULL ? crs_path_join(base, LOG_SUBDIR) : NULL;
    path = dir != NULL ? crs_path_join(dir, LOG_NAME) : NULL;
    crs_free(dir);
    crs_free(base);
    return path;
}

static char *parent_dir(const char *path)
{
    const char *a = strrchr(path, '\\'), *b = strrchr(path, '/');
    const char *cut = a == NULL ? b : (b == NULL || a > b ? a : b);

    return cut != NULL && cut != path ? crs_strndup(path, (size_t)(cut - path)) : NULL;
}

/* Creates the directories the broker writes to, private to SYSTEM and Administrators when we
 * create them (certrelay/win/secdir.h explains why the spool must be). */
static void make_private_dirs(const struct crs_config *cfg, const char *log_path)
{
    char *log_dir = log_path != NULL ? parent_dir(log_path) : NULL;
    const char *dirs[3];
    size_t i;
    int rc;

    dirs[0] = cfg->state_dir;
    dirs[1] = cfg->spool_dir;
    dirs[2] = log_dir;
    for (i = 0; i < 3; i++) {
        if (dirs[i] == NULL)
            continue;
        rc = crs_win_mkdirs_private(dirs[i]);
        if (rc != 0 && rc != CRS_EACCES)
            crs_warn("cannot create %s: %s", dirs[i], crs_strerror(rc));
    }
    crs_free(log_dir);
}

/*
 * The service owns its files. %ProgramData%\CertRelay and its state, spool and logs are created,
 * or repaired to the private ACL when someone made them first with a looser one; a directory
 * owned by another account, or a reparse point, is refused. The configuration file and the
 * configured state and spool directories (which may lie elsewhere, the administrator's choice)
 * must be owned by SYSTEM, Administrators or the service and writable for nobody else: whoever
 * can write certrelay.ini chooses where a SYSTEM service writes, and whoever can write the spool
 * forges CA events. CRS_EACCES (logged with the path, and so in the Event Log) when refused.
 */
static int own_files(const char *ini, const struct crs_config *cfg)
{
    static const char *const subdirs[] = {NULL, "state", "spool", LOG_SUBDIR};
    char *base = crs_default_base_dir(), *dir = NULL;
    const char *why = NULL, *bad = NULL;
    const char *configured[2];
    size_t i;
    int rc = 0;

    if (base == NULL)
        return CRS_ENOMEM;
    /* First call (cfg NULL): the base directories; second: the configured ones. */
    for (i = 0; cfg == NULL && i < sizeof(subdirs) / sizeof(subdirs[0]) && rc == 0; i++) {
        dir = subdirs[i] != NULL ? crs_path_join(base, subdirs[i]) : crs_strdup(base);
        if (dir == NULL) {
            rc = CRS_ENOMEM;
            break;
        }
        rc = crs_win_dir_own(dir, &why);
        if (rc != 0)
            crs_error("refusing to start: %s cannot be made the service's own: %s", dir,
                      why != NULL ? why : crs_strerror(rc));
        crs_free(dir);
    }
    if (rc == 0 && ini != NULL && file_exists(ini) && crs_win_path_check(ini, NULL, &why) != 0)
        bad = ini;
    configured[0] = cfg != NULL ? cfg->state_dir : NULL;
    configured[1] = cfg != NULL ? cfg->spool_dir : NULL;
    for (i = 0; i < 2 && rc == 0 && bad == NULL; i++) {
        if (configured[i] != NULL && crs_win_path_check(configured[i], NULL, &why) != 0)
            bad = configured[i];
    }
    if (bad != NULL) {
        crs_error("refusing to start: %s is not safe: %s", bad,
                  why != NULL ? why : "its security cannot be read");
        rc = CRS_EACCES;
    }
    crs_free(base);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* The running service                                                                          */
/* ------------------------------------------------------------------------------------------ */

/*
 * The SCM's controls become the requests SIGTERM and SIGHUP are on Unix: STOP, PRESHUTDOWN and
 * SHUTDOWN (sent to a service still running after the pre-shutdown phase) the graceful stop,
 * PARAMCHANGE the reload, which reopens the log file.
 */
static DWORD WINAPI service_ctrl(DWORD control, DWORD type, void *data, void *ctx)
{
    switch (control) {
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_PRESHUTDOWN:
    case SERVICE_CONTROL_SHUTDOWN:
        /* The critical section is recursive, so reporting under it is fine; holding it keeps
         * the STOPPED report after the loop returns from overtaking this STOP_PENDING. */
        EnterCriticalSection(&svc.lock);
        if (svc.status.dwCurrentState == SERVICE_RUNNING)
            report_status(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
        crs_broker_request(CRS_BROKER_STOP);
        LeaveCriticalSection(&svc.lock);
        return NO_ERROR;
    case SERVICE_CONTROL_PARAMCHANGE:
        crs_broker_request(CRS_BROKER_RELOAD);
        return NO_ERROR;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
}

/* crs_broker_run's hooks: the SCM hears RUNNING once the broker takes events, and while it winds
 * down, every second, that it is making progress. arg is the log file's path. */
static void service_running(void *arg, const struct crs_config *cfg)
{
    report_status(SERVICE_RUNNING, NO_ERROR, 0, 0);
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_BROKER, CRS_LOG_INFO,
                        "CertRelay broker %s is running: pipe %s, queue %s, spool %s, log %s.",
                        CRS_VERSION, cfg->listen, cfg->state_dir, cfg->spool_dir,
                        (const char *)arg);
}

static void service_stop_tick(void *arg)
{
    report_status(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
}

/*
 * Runs the broker on this thread until it stops. Returns 0 after a clean stop, or a negative
 * CRS_E* code when it could not start (the SCM then shows it as a service-specific exit code).
 */
static int service_run(void)
{
    struct crs_broker_hooks hooks;
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    char *log_path = NULL, *base = NULL, *ini = NULL;
    int rc;

    /* The default file's directory first: it is made the service's own before anything in it
     * is read. */
    if (svc.config_path == NULL) {
        base = crs_default_base_dir();
        ini = base != NULL ? crs_path_join(base, CONFIG_NAME) : NULL;
        if (ini == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
    }
    rc = own_files(svc.config_path != NULL ? svc.config_path : ini, NULL);
    if (rc != 0)
        goto cleanup;
    rc = load_config(svc.config_path, &cfg, err, sizeof(err));
    if (rc != 0) {
        crs_error("configuration: %s", err[0] != '\0' ? err : crs_strerror(rc));
        goto cleanup;
    }
    log_path = service_log_path(cfg);
    if (log_path == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    make_private_dirs(cfg, log_path);
    rc = own_files(NULL, cfg);
    if (rc != 0)
        goto cleanup;
    memset(&hooks, 0, sizeof(hooks));
    hooks.log_path = log_path;
    hooks.log_optional = 1;
    hooks.on_running = service_running;
    hooks.stop_tick = service_stop_tick;
    hooks.stop_tick_ms = STOP_CHECKPOINT_MS;
    hooks.arg = log_path;
    rc = crs_broker_run(cfg, &hooks);

cleanup:
    crs_free(log_path);
    crs_free(ini);
    crs_free(base);
    crs_config_free(cfg);
    return rc;
}

/*
 * Makes %ProgramData% name the known folder. Wine builds a service's environment with
 * ALLUSERSPROFILE set to the Public profile, so %ProgramData% expands to C:\users\Public there,
 * while the exit module (in certsrv, or the test harness) and every service on Windows itself
 * see C:\ProgramData. The defaults (crs_default_base_dir) read the variable; anchoring it to the
 * known folder makes the service and the exit module agree on the spool directory everywhere.
 */
static void anchor_program_data(void)
{
    PWSTR path = NULL;

    if (SUCCEEDED(SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, NULL, &path)) && path != NULL)
        SetEnvironmentVariableW(L"ProgramData", path);
    CoTaskMemFree(path);
}

static void WINAPI service_main(DWORD argc, WCHAR **argv)
{
    WCHAR exe[MAX_PATH + 1];
    DWORD n;
    int rc;

    svc.handle = RegisterServiceCtrlHandlerExW(SERVICE_NAME, service_ctrl, NULL);
    if (svc.handle == NULL)
        return;
    report_status(SERVICE_START_PENDING, NO_ERROR, 0, START_WAIT_HINT_MS);

    anchor_program_data();
    crs_log_set_stderr(0);
    crs_log_set_output(service_log_output, NULL);
    /* The catalogued conditions (certrelay/msgid.h) go to the Event Log under their own ids. */
    crs_log_set_event_output(crs_eventlog_event_output, (void *)CRS_EVENTLOG_SOURCE_BROKER);
    /* Keep the Event Log source pointing at this binary's message table. The service runs as
     * SYSTEM, which may write the key; if it cannot, events still arrive, only less readable. */
    n = GetModuleFileNameW(NULL, exe, MAX_PATH + 1);
    if (n > 0 && n <= MAX_PATH)
        crs_eventlog_install(CRS_EVENTLOG_SOURCE_BROKER, exe);

    rc = service_run();
    if (rc == 0) {
        crs_eventlog_write(CRS_EVENTLOG_SOURCE_BROKER, CRS_LOG_INFO, "CertRelay broker stopped.");
        crs_log_open_file(NULL);
        report_status(SERVICE_STOPPED, NO_ERROR, 0, 0);
    } else {
        crs_eventlog_writef(CRS_EVENTLOG_SOURCE_BROKER, CRS_LOG_ERROR,
                            "CertRelay broker could not start: %s (%s). See the log file.",
                            crs_strerror(rc), crs_err_name(rc));
        crs_log_open_file(NULL);
        report_status(SERVICE_STOPPED, ERROR_SERVICE_SPECIFIC_ERROR, (DWORD)-rc, 0);
    }
}

/*
 * Runs as the service when the SCM started us. Only when there is no SCM to talk to
 * (ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) is it a console start: then -1 when a --config file
 * was given, so that main() runs the broker in the foreground with it, or the hint below.
 */
static int service_dispatch(const char *config_path)
{
    SERVICE_TABLE_ENTRYW table[] = {
        {(WCHAR *)SERVICE_NAME, service_main},
        {NULL, NULL},
    };

    InitializeCriticalSection(&svc.lock);
    svc.config_path = config_path != NULL ? crs_strdup(config_path) : NULL;
    if (config_path != NULL && svc.config_path == NULL)
        return 1;
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD err = GetLastError();

        crs_free(svc.config_path);
        svc.config_path = NULL;
        if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT && config_path != NULL)
            return -1;
        if (err == ERROR_FAILED_SERVICE_CONTROLLER_CONNECT) {
            fprintf(stderr,
                    "certrelayd: not started by the Service Control Manager.\n"
                    "  Install the service:  sc create CertRelay binPath= \"C:\\Program Files"
                    "\\CertRelay\\certrelayd.exe\" start= auto\n"
                    "  Start it:             sc start CertRelay\n"
                    "  Or run in a console:  certrelayd --console [--config FILE]\n");
            return 2;
        }
        fprintf(stderr, "certrelayd: StartServiceCtrlDispatcher failed (error %lu)\n",
                (unsigned long)err);
        return 1;
    }
    crs_free(svc.config_path);
    svc.config_path = NULL;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Console mode and arguments                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int console_main(const char *path)
{
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    char *log_path = NULL;
    int rc, status;

    rc = load_config(path, &cfg, err, sizeof(err));
    if (rc != 0) {
        fprintf(stderr, "%s\n", err[0] != '\0' ? err : crs_strerror(rc));
        return 1;
    }
    log_path = cfg->log_file != NULL ? crs_strdup(cfg->log_file) : NULL;
    make_private_dirs(cfg, log_path);
    crs_free(log_path);
    /* crs_broker_run opens cfg->log_file itself, and stops on Ctrl+C (SIGINT). */
    status = crs_broker_run(cfg, NULL) == 0 ? 0 : 1;
    crs_config_free(cfg);
    return status;
}

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: certrelayd                          (started by the Service Control Manager)\n"
        "       certrelayd --console [--config FILE]\n"
        "       certrelayd --config FILE | --check-config FILE | --version | --help\n"
        "\n"
        "The CertRelay broker. As the Windows service \"CertRelay\" it reads\n"
        "%%ProgramData%%\\CertRelay\\certrelay.ini (a built-in default when absent), keeps its\n"
        "queue in state\\, takes spooled events from spool\\ and logs to logs\\certrelayd.log\n"
        "there, and to the Event Log (source CertRelayBroker).\n"
        "\n"
        "  sc create CertRelay binPath= \"C:\\Program Files\\CertRelay\\certrelayd.exe\" "
        "start= auto\n"
        "  sc start CertRelay | sc stop CertRelay | sc query CertRelay\n"
        "\n"
        "  --console            run in the foreground (Ctrl+C stops), same files as the service\n"
        "  --config FILE        as a service (binPath= \"...certrelayd.exe --config FILE\"): use\n"
        "                       FILE; from a console: run in the foreground with FILE\n"
        "  --check-config FILE  validate FILE and exit (0 when valid)\n");
}

/*
 * The ANSI argv main() receives cannot hold every path; the configuration file name is taken
 * from the UTF-16 command line instead and converted to UTF-8, the encoding of CertRelay's paths.
 */
static char *utf8_arg(int index)
{
    WCHAR **wargv;
    char *out = NULL;
    int wargc = 0;

    wargv = CommandLineToArgvW(GetCommandLineW(), &wargc);
    if (wargv == NULL)
        return NULL;
    /* A command line holds at most 32,767 characters. */
    if (index < wargc && crs_win_utf8(wargv[index], -1, 32767 * 3, &out, NULL) != 0)
        out = NULL;
    LocalFree(wargv);
    return out;
}

int crs_platform_main(int argc, char **argv)
{
    char *path;
    int status;

    if (argc == 1)
        return service_dispatch(NULL);
    /* sc create CertRelay binPath= "...\certrelayd.exe --config D:\pki\cr.ini": the SCM starts
     * us with the file; a console start with --config falls through to main() (-1). */
    if (argc == 3 && strcmp(argv[1], "--config") == 0) {
        path = utf8_arg(2);
        status = service_dispatch(path != NULL ? path : argv[2]);
        crs_free(path);
        return status;
    }
    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (strcmp(argv[1], "--console") != 0)
        return -1;
    if (argc == 2)
        return console_main(NULL);
    if (argc == 4 && strcmp(argv[2], "--config") == 0) {
        path = utf8_arg(3);
        status = console_main(path != NULL ? path : argv[3]);
        crs_free(path);
        return status;
    }
    usage(stderr);
    return 2;
}
