/*
 * certrelayd as a Windows service.
 *
 * The SCM starts certrelayd.exe without arguments; main() hands over to crs_platform_main, whose
 * StartServiceCtrlDispatcherW blocks the main thread as the dispatcher until the service stops.
 * The SCM runs service_main on a thread of its own, and that thread is the broker's loop thread:
 *
 *   service_main    START_PENDING -> configuration, logging, private directories
 *                   -> crs_broker_start (listening) -> RUNNING -> uv_run ... -> STOPPED
 *   service_ctrl    (dispatcher thread) STOP, SHUTDOWN: STOP_PENDING, then wake the loop with
 *                   uv_async_send; PARAMCHANGE: wake the loop to reopen the log file
 *   ctl_cb          (loop thread) crs_broker_stop, and a timer that keeps reporting STOP_PENDING
 *                   checkpoints while the commit in flight finishes
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

#include <uv.h>

#include "broker.h"
#include "platform.h"
#include "service.h"
#include "eventlog.h"
#include "secdir.h"
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

/* Controls the handler passes to the loop thread. */
#define CTL_STOP        0x1
#define CTL_PARAMCHANGE 0x2

/* ------------------------------------------------------------------------------------------ */
/* Shared state                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/*
 * The handler runs on the dispatcher thread and service_main on its own, so what they share is
 * guarded: `lock` covers the status and the async pointer, which is NULL whenever the loop
 * cannot take a wake-up (before it runs, after it stopped).
 */
static struct {
    SERVICE_STATUS_HANDLE handle;
    SERVICE_STATUS status;
    CRITICAL_SECTION lock;
    uv_async_t *ctl;
    LONG controls;
} svc;

/* Loop-thread state of the running service. */
struct service_run {
    uv_loop_t loop;
    uv_async_t ctl;
    uv_timer_t checkpoint;
    struct crs_broker *broker;
    char *log_path;
    int ctl_open, timer_open, timer_running;
};

static void report_status(DWORD state, DWORD exit_code, DWORD specific, DWORD wait_hint)
{
    EnterCriticalSection(&svc.lock);
    svc.status.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    svc.status.dwCurrentState = state;
    svc.status.dwWin32ExitCode = exit_code;
    svc.status.dwServiceSpecificExitCode = specific;
    svc.status.dwWaitHint = wait_hint;
    /* Controls are taken only while running: a stop during start would race the start. */
    svc.status.dwControlsAccepted =
        state == SERVICE_RUNNING
            ? SERVICE_ACCEPT_STOP | SERVICE_ACCEPT_SHUTDOWN | SERVICE_ACCEPT_PARAMCHANGE
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

    if (MultiByteToWideChar(CP_UTF8, 0, path, -1, w, MAX_PATH + 1) <= 0)
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
 * create them (secdir.h explains why the spool must be). */
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

/* The same sizing as crs_broker_main: the queue's job, one thread per concurrent delivery and a
 * margin for the spool drain, so slow sinks never delay the commit that acks. */
static unsigned service_threads(const struct crs_config *cfg)
{
    unsigned n = 4;
    size_t i;

    for (i = 0; i < cfg->nsinks; i++)
        n += cfg->sinks[i].concurrency;
    return n;
}

/* ------------------------------------------------------------------------------------------ */
/* The running service                                                                          */
/* ------------------------------------------------------------------------------------------ */

static DWORD WINAPI service_ctrl(DWORD control, DWORD type, void *data, void *ctx)
{
    LONG bit;

    switch (control) {
    case SERVICE_CONTROL_INTERROGATE:
        return NO_ERROR;
    case SERVICE_CONTROL_STOP:
    case SERVICE_CONTROL_SHUTDOWN:
        bit = CTL_STOP;
        break;
    case SERVICE_CONTROL_PARAMCHANGE:
        bit = CTL_PARAMCHANGE;
        break;
    default:
        return ERROR_CALL_NOT_IMPLEMENTED;
    }
    /* The critical section is recursive, so reporting under it is fine; holding it keeps the
     * loop from dropping svc.ctl between the check and the send. */
    EnterCriticalSection(&svc.lock);
    if (svc.ctl != NULL) {
        InterlockedOr(&svc.controls, bit);
        if (bit == CTL_STOP && svc.status.dwCurrentState == SERVICE_RUNNING)
            report_status(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
        uv_async_send(svc.ctl);
    }
    LeaveCriticalSection(&svc.lock);
    return NO_ERROR;
}

/* While the broker winds down, tell the SCM every second that it is making progress. The timer
 * is unreferenced, so it does not keep the loop alive once the broker has stopped. */
static void checkpoint_cb(uv_timer_t *t)
{
    report_status(SERVICE_STOP_PENDING, NO_ERROR, 0, STOP_WAIT_HINT_MS);
}

static void ctl_cb(uv_async_t *h)
{
    struct service_run *run = h->data;
    LONG controls = InterlockedExchange(&svc.controls, 0);
    int rc;

    if (controls & CTL_PARAMCHANGE) {
        /* The broker cannot change its configuration while running; what a parameter change
         * can do safely is reopen the log file, which is what log rotation needs. */
        crs_log_open_file(NULL);
        rc = crs_log_open_file(run->log_path);
        if (rc != 0)
            crs_warn("cannot reopen the log file %s: %s", run->log_path, crs_strerror(rc));
        crs_info("parameter change: log file reopened; other settings apply at the next start");
    }
    if ((controls & CTL_STOP) && !run->timer_running) {
        crs_info("stop requested by the Service Control Manager");
        if (run->timer_open && uv_timer_start(&run->checkpoint, checkpoint_cb, STOP_CHECKPOINT_MS,
                                              STOP_CHECKPOINT_MS) == 0)
            run->timer_running = 1;
        crs_broker_stop(run->broker);
    }
}

/*
 * Runs the broker on this thread until it stops. Returns 0 after a clean stop, or a negative
 * CRS_E* code when it could not start (the SCM then shows it as a service-specific exit code).
 */
static int service_run(void)
{
    struct service_run *run = NULL;
    struct crs_config *cfg = NULL;
    char err[CRS_CONFIG_ERRLEN];
    int rc, loop_open = 0;

    rc = load_config(NULL, &cfg, err, sizeof(err));
    if (rc != 0) {
        crs_error("configuration: %s", err[0] != '\0' ? err : crs_strerror(rc));
        return rc;
    }
    run = crs_calloc(1, sizeof(*run));
    if (run == NULL || (run->log_path = service_log_path(cfg)) == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    make_private_dirs(cfg, run->log_path);
    crs_log_set_level((enum crs_log_level)cfg->log_level);
    rc = crs_log_open_file(run->log_path);
    if (rc != 0)
        crs_warn("cannot open the log file %s: %s", run->log_path, crs_strerror(rc));
    rc = crs_platform_init(service_threads(cfg));
    if (rc != 0)
        crs_warn("platform setup: %s", crs_strerror(rc));

    rc = uv_loop_init(&run->loop);
    if (rc != 0) {
        crs_error("cannot create the event loop: %s", uv_strerror(rc));
        rc = CRS_EIO;
        goto cleanup;
    }
    loop_open = 1;
    rc = crs_broker_new(cfg, &run->loop, &run->broker);
    if (rc != 0) {
        crs_error("cannot create the broker: %s", crs_strerror(rc));
        goto cleanup;
    }
    if (uv_async_init(&run->loop, &run->ctl, ctl_cb) == 0) {
        run->ctl_open = 1;
        run->ctl.data = run;
        uv_unref((uv_handle_t *)&run->ctl);
    }
    if (uv_timer_init(&run->loop, &run->checkpoint) == 0) {
        run->timer_open = 1;
        uv_unref((uv_handle_t *)&run->checkpoint);
    }
    if (!run->ctl_open) {
        crs_error("cannot create the stop handle");
        rc = CRS_EIO;
        crs_broker_stop(run->broker);
        uv_run(&run->loop, UV_RUN_DEFAULT);
        goto cleanup;
    }

    rc = crs_broker_start(run->broker);
    if (rc != 0) {
        /* The parts already started close their handles through the ordinary stop. */
        crs_broker_stop(run->broker);
        uv_run(&run->loop, UV_RUN_DEFAULT);
        goto cleanup;
    }
    EnterCriticalSection(&svc.lock);
    svc.ctl = &run->ctl;
    LeaveCriticalSection(&svc.lock);
    report_status(SERVICE_RUNNING, NO_ERROR, 0, 0);
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_BROKER, CRS_LOG_INFO,
                        "CertRelay broker %s is running: pipe %s, queue %s, spool %s, log %s.",
                        CRS_VERSION, cfg->listen, cfg->state_dir, cfg->spool_dir, run->log_path);

    uv_run(&run->loop, UV_RUN_DEFAULT);

    EnterCriticalSection(&svc.lock);
    svc.ctl = NULL;
    LeaveCriticalSection(&svc.lock);

cleanup:
    if (run != NULL) {
        crs_broker_free(run->broker);
        if (run->ctl_open)
            uv_close((uv_handle_t *)&run->ctl, NULL);
        if (run->timer_open)
            uv_close((uv_handle_t *)&run->checkpoint, NULL);
        if (loop_open) {
            uv_run(&run->loop, UV_RUN_DEFAULT);
            if (uv_loop_close(&run->loop) != 0)
                crs_error("internal error: handles still open when the service stopped");
        }
        crs_free(run->log_path);
        crs_free(run);
    }
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

static int service_dispatch(void)
{
    SERVICE_TABLE_ENTRYW table[] = {
        {(WCHAR *)SERVICE_NAME, service_main},
        {NULL, NULL},
    };

    InitializeCriticalSection(&svc.lock);
    if (!StartServiceCtrlDispatcherW(table)) {
        DWORD err = GetLastError();

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
    /* crs_broker_main opens cfg->log_file itself, and stops on Ctrl+C (SIGINT). */
    status = crs_broker_main(cfg, NULL);
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
        "  --config FILE        run in the foreground with FILE\n"
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
    int wargc = 0, n;

    wargv = CommandLineToArgvW(GetCommandLineW(), &wargc);
    if (wargv == NULL)
        return NULL;
    if (index < wargc) {
        n = WideCharToMultiByte(CP_UTF8, 0, wargv[index], -1, NULL, 0, NULL, NULL);
        if (n > 0 && (out = crs_malloc((size_t)n)) != NULL &&
            WideCharToMultiByte(CP_UTF8, 0, wargv[index], -1, out, n, NULL, NULL) != n) {
            crs_free(out);
            out = NULL;
        }
    }
    LocalFree(wargv);
    return out;
}

int crs_platform_main(int argc, char **argv)
{
    char *path;
    int status;

    if (argc == 1)
        return service_dispatch();
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
