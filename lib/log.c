/*
 * The process-wide logger (include/certrelay/log.h). Lines are formatted once, with a UTC
 * timestamp and level, into a bounded stack buffer (a hostile value cannot make a log line
 * unbounded), stripped of control characters so an injected CR/LF cannot forge a line, and handed
 * to each output under one mutex so lines from threads never interleave.
 */
#include <stdio.h>
#include <string.h>
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/timefmt.h"
#include "certrelay/log.h"
#include "certrelay/sanitize.h"
#include "certrelay/thread.h"

#define CRS_LOG_LINE_MAX 2048

static crs_mutex_t log_mutex = CRS_MUTEX_INIT;
static int log_level = CRS_LOG_INFO;
static int log_stderr = 1;
static crs_log_output_fn log_fn;
static void *log_ctx;
static crs_log_event_fn log_event_fn;
static void *log_event_ctx;
static FILE *log_file;
static char log_path[1024];
static unsigned long long log_size;     /* bytes in log_file */
static unsigned long long log_max_size; /* rotate at this size; 0: never */
static unsigned log_keep;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void crs_log_set_level(enum crs_log_level level)
{
    __atomic_store_n(&log_level, (int)level, __ATOMIC_RELAXED);
}

enum crs_log_level crs_log_get_level(void)
{
    return (enum crs_log_level)__atomic_load_n(&log_level, __ATOMIC_RELAXED);
}

int crs_log_level_parse(const char *s, enum crs_log_level *out)
{
    size_t i;

    if (s == NULL || out == NULL)
        return CRS_EINVAL;
    for (i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum crs_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = CRS_LOG_WARN;
        return 0;
    }
    return CRS_EINVAL;
}

void crs_log_set_stderr(int on)
{
    crs_mutex_lock(&log_mutex);
    log_stderr = on;
    crs_mutex_unlock(&log_mutex);
}

void crs_log_set_output(crs_log_output_fn fn, void *ctx)
{
    crs_mutex_lock(&log_mutex);
    log_fn = fn;
    log_ctx = ctx;
    crs_mutex_unlock(&log_mutex);
}

int crs_log_open_file(const char *path)
{
    FILE *f = NULL;
    long size = 0;

    if (path != NULL) {
        /* Never a FIFO or a device: opening one for writing could block for ever. */
        int rc;
        if (strlen(path) >= sizeof(log_path))
            return CRS_EINVAL;
        rc = crs_fs_open_append(path, &f);
        if (rc != 0)
            return rc;
        if (fseek(f, 0, SEEK_END) == 0)
            size = ftell(f);
    }
    crs_mutex_lock(&log_mutex);
    if (log_file != NULL)
        fclose(log_file);
    log_file = f;
    log_size = size > 0 ? (unsigned long long)size : 0;
    snprintf(log_path, sizeof(log_path), "%s", path != NULL ? path : "");
    crs_mutex_unlock(&log_mutex);
    return 0;
}

void crs_log_set_rotation(unsigned long long max_bytes, unsigned keep)
{
    crs_mutex_lock(&log_mutex);
    log_max_size = max_bytes;
    log_keep = keep;
    crs_mutex_unlock(&log_mutex);
}

/*
 * Called with the mutex held once the file has reached its size: PATH.(keep-1) -> PATH.keep, ...,
 * PATH -> PATH.1, then a fresh PATH. remove() first, because rename() does not replace an
 * existing file on Windows. If the new file cannot be opened, logging to the file stops (the
 * other outputs carry on) until the next reopen.
 */
static void log_rotate_locked(void)
{
    char from[sizeof(log_path) + 16], to[sizeof(log_path) + 16];
    unsigned i;

    fclose(log_file);
    log_file = NULL;
    if (log_keep == 0) {
        remove(log_path);
    } else {
        snprintf(to, sizeof(to), "%s.%u", log_path, log_keep);
        remove(to);
        for (i = log_keep; i > 1; i--) {
            snprintf(from, sizeof(from), "%s.%u", log_path, i - 1);
            snprintf(to, sizeof(to), "%s.%u", log_path, i);
            rename(from, to);
        }
        snprintf(to, sizeof(to), "%s.1", log_path);
        rename(log_path, to);
    }
    log_file = fopen(log_path, "a");
    log_size = 0;
}

void crs_log_set_event_output(crs_log_event_fn fn, void *ctx)
{
    crs_mutex_lock(&log_mutex);
    log_event_fn = fn;
    log_event_ctx = ctx;
    crs_mutex_unlock(&log_mutex);
}

static void log_vwrite(enum crs_log_level level, unsigned msgid, const char *const *inserts,
                       unsigned ninserts, const char *fmt, va_list ap);

void crs_vlog(enum crs_log_level level, const char *fmt, va_list ap)
{
    log_vwrite(level, 0, NULL, 0, fmt, ap);
}

void crs_log_event(enum crs_log_level level, unsigned msgid, const char *const *inserts,
                   unsigned ninserts, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    log_vwrite(level, msgid, inserts, ninserts, fmt, ap);
    va_end(ap);
}

/* A catalogued condition is always recorded, whatever the level filter says. */
static void log_vwrite(enum crs_log_level level, unsigned msgid, const char *const *inserts,
                       unsigned ninserts, const char *fmt, va_list ap)
{
    char line[CRS_LOG_LINE_MAX];
    char ts[32];
    int n;

    if ((int)level > (int)crs_log_get_level() && msgid == 0)
        return;
    crs_time_rfc3339(crs_now_ms(), ts, sizeof(ts));
    n = snprintf(line, sizeof(line), "%s %-5s ", ts, level_names[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        return;
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    crs_sanitize_oneline(line + n);

    crs_mutex_lock(&log_mutex);
    if (log_stderr) {
        fputs(line, stderr);
        fputc('\n', stderr);
        fflush(stderr);
    }
    if (log_file != NULL) {
        fputs(line, log_file);
        fputc('\n', log_file);
        fflush(log_file);
        log_size += strlen(line) + 1;
        if (log_max_size > 0 && log_size >= log_max_size)
            log_rotate_locked();
    }
    if (msgid != 0 && log_event_fn != NULL)
        log_event_fn(log_event_ctx, level, msgid, inserts, ninserts, line);
    else if (log_fn != NULL)
        log_fn(log_ctx, level, line);
    crs_mutex_unlock(&log_mutex);
}

void crs_log(enum crs_log_level level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    crs_vlog(level, fmt, ap);
    va_end(ap);
}
