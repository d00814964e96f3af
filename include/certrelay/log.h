/*
 * Logging. One process-wide logger with pluggable outputs (stderr, a file, the Windows Event
 * Log). Secrets (passwords, tokens, webhook secrets) are never passed to it: callers log the name
 * of a secret file, never its content.
 */
#ifndef CERTRELAY_LOG_H
#define CERTRELAY_LOG_H

#include <stdarg.h>

#include "certrelay/printf.h"

enum crs_log_level { CRS_LOG_ERROR = 0, CRS_LOG_WARN, CRS_LOG_INFO, CRS_LOG_DEBUG };

/* An output receives each formatted line (no trailing newline). */
typedef void (*crs_log_output_fn)(void *ctx, enum crs_log_level level, const char *line);

void crs_log_set_level(enum crs_log_level level);
enum crs_log_level crs_log_get_level(void);
int crs_log_level_parse(const char *s, enum crs_log_level *out);
/* Replaces the outputs: stderr on (1) or off (0); an optional extra output (Event Log, tests). */
void crs_log_set_stderr(int on);
void crs_log_set_output(crs_log_output_fn fn, void *ctx);
/* Opens (appending) a log file as an output in addition to the others; NULL closes it. */
int crs_log_open_file(const char *path);
/*
 * Rotation by size: once the log file reaches max_bytes it is renamed PATH.1 (PATH.1 becomes
 * PATH.2, and so on; PATH.keep is deleted) and a new PATH is opened, so at most `keep` old files
 * remain. max_bytes 0 turns rotation off. Takes effect at the next line.
 */
void crs_log_set_rotation(unsigned long long max_bytes, unsigned keep);

void crs_log(enum crs_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;
void crs_vlog(enum crs_log_level level, const char *fmt, va_list ap);

/*
 * A line that is also one of the catalogued conditions (certrelay/msgid.h): written like any
 * other line, and handed to the event output (when one is set) with its id and its inserts
 * instead of to the plain extra output, so the Windows Event Log records it under its own id.
 */
typedef void (*crs_log_event_fn)(void *ctx, enum crs_log_level level, unsigned msgid,
                                 const char *const *inserts, unsigned ninserts, const char *line);
void crs_log_set_event_output(crs_log_event_fn fn, void *ctx);
void crs_log_event(enum crs_log_level level, unsigned msgid, const char *const *inserts,
                   unsigned ninserts, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 5, 6)))
#endif
    ;

#define crs_error(...) crs_log(CRS_LOG_ERROR, __VA_ARGS__)
#define crs_warn(...)  crs_log(CRS_LOG_WARN, __VA_ARGS__)
#define crs_info(...)  crs_log(CRS_LOG_INFO, __VA_ARGS__)
#define crs_debug(...)                                                                             \
    do {                                                                                           \
        if (crs_log_get_level() >= CRS_LOG_DEBUG)                                                  \
            crs_log(CRS_LOG_DEBUG, __VA_ARGS__);                                                   \
    } while (0)

#endif
