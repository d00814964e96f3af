/*
 * The Windows Event Log as a destination for CertRelay's messages, shared by the exit module
 * (source "CertRelay") and the broker service (source "CertRelayBroker").
 *
 * Each binary carries the message table of cmake/messages.mc: three messages whose text is just
 * "%1", one per severity, so Event Viewer shows our sentence as written instead of "the
 * description for Event ID 1 cannot be found".
 */
#ifndef CERTRELAY_WIN_EVENTLOG_H
#define CERTRELAY_WIN_EVENTLOG_H

#include <windows.h>
#include "certrelay/log.h"

#define CRS_EVENTLOG_SOURCE_EXIT   L"CertRelay"
#define CRS_EVENTLOG_SOURCE_BROKER L"CertRelayBroker"

/* Registers source under HKLM\SYSTEM\CurrentControlSet\Services\EventLog\Application with
 * message_file (a full path to a binary that holds the message table). Needs administrator
 * rights. 0 or a negative CRS_E* code. */
int crs_eventlog_install(const WCHAR *source, const WCHAR *message_file);
/* Removes that key. 0 when it is gone (or was never there). */
int crs_eventlog_uninstall(const WCHAR *source);

/* Writes one UTF-8 line (cut at a few thousand characters). Failures are ignored: the Event Log
 * is where failures are reported, there is nowhere further to report its own. */
void crs_eventlog_write(const WCHAR *source, enum crs_log_level level, const char *line);
void crs_eventlog_writef(const WCHAR *source, enum crs_log_level level, const char *fmt, ...)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 3, 4)));

/* A crs_log output (crs_log_set_output) whose ctx is the source name (const WCHAR *). */
void crs_eventlog_log_output(void *ctx, enum crs_log_level level, const char *line);

/*
 * Records a catalogued condition (certrelay/msgid.h) under its own id, with inserts as the
 * message's %1, %2, ... (at most 8). An id outside the catalogue is written as line with the
 * generic id of its level.
 */
void crs_eventlog_event(const WCHAR *source, enum crs_log_level level, unsigned msgid,
                        const char *const *inserts, unsigned ninserts, const char *line);
/* A crs_log_event_fn whose ctx is the source name. */
void crs_eventlog_event_output(void *ctx, enum crs_log_level level, unsigned msgid,
                               const char *const *inserts, unsigned ninserts, const char *line);

#endif
