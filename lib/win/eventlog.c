/*
 * Windows Event Log output. See include/certrelay/win/eventlog.h.
 *
 * A handle is registered and deregistered around every write instead of being kept: we only write
 * on failures, state changes and start/stop, and a kept handle would have to be closed from
 * DllMain at unload, where calling into other DLLs is not allowed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/error.h"
#include "certrelay/msgid.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/win/wstr.h"

/* The event IDs of cmake/messages.mc, with its severity bits. Keep the two in step. */
#define CRS_MSG_ERROR   ((DWORD)0xC0000001L)
#define CRS_MSG_WARNING ((DWORD)0x80000002L)
#define CRS_MSG_INFO    ((DWORD)0x40000003L)

/* ReportEvent accepts up to 31,839 characters per string; a log line never needs that many. */
#define CRS_EVENTLOG_MAX_CHARS 8192

#define CRS_EVENTLOG_KEY L"SYSTEM\\CurrentControlSet\\Services\\EventLog\\Application\\"

static int make_key_path(const WCHAR *source, WCHAR *buf, size_t cap)
{
    int n = _snwprintf(buf, cap, L"%ls%ls", CRS_EVENTLOG_KEY, source);
    if (n < 0 || (size_t)n >= cap)
        return CRS_EINVAL;
    return 0;
}

int crs_eventlog_install(const WCHAR *source, const WCHAR *message_file)
{
    WCHAR path[256];
    HKEY key = NULL;
    DWORD types = EVENTLOG_ERROR_TYPE | EVENTLOG_WARNING_TYPE | EVENTLOG_INFORMATION_TYPE;
    LONG err;
    int rc;

    if (source == NULL || message_file == NULL)
        return CRS_EINVAL;
    rc = make_key_path(source, path, sizeof(path) / sizeof(path[0]));
    if (rc != 0)
        return rc;
    err = RegCreateKeyExW(HKEY_LOCAL_MACHINE, path, 0, NULL, REG_OPTION_NON_VOLATILE, KEY_SET_VALUE,
                          NULL, &key, NULL);
    if (err != ERROR_SUCCESS)
        return crs_translate_sys_error((int)err);
    err = RegSetValueExW(key, L"EventMessageFile", 0, REG_EXPAND_SZ, (const BYTE *)message_file,
                         (DWORD)((wcslen(message_file) + 1) * sizeof(WCHAR)));
    if (err == ERROR_SUCCESS)
        err = RegSetValueExW(key, L"TypesSupported", 0, REG_DWORD, (const BYTE *)&types,
                             sizeof(types));
    RegCloseKey(key);
    return err == ERROR_SUCCESS ? 0 : crs_translate_sys_error((int)err);
}

int crs_eventlog_uninstall(const WCHAR *source)
{
    WCHAR path[256];
    LONG err;
    int rc;

    if (source == NULL)
        return CRS_EINVAL;
    rc = make_key_path(source, path, sizeof(path) / sizeof(path[0]));
    if (rc != 0)
        return rc;
    err = RegDeleteTreeW(HKEY_LOCAL_MACHINE, path);
    if (err == ERROR_SUCCESS || err == ERROR_FILE_NOT_FOUND)
        return 0;
    return crs_translate_sys_error((int)err);
}

void crs_eventlog_write(const WCHAR *source, enum crs_log_level level, const char *line)
{
    WCHAR text[CRS_EVENTLOG_MAX_CHARS];
    const WCHAR *strings[1];
    HANDLE h;
    WORD type;
    DWORD id;
    int n;

    if (source == NULL || line == NULL)
        return;
    /* Decode at most the buffer: cut the input to a length that cannot overflow it (every UTF-8
     * byte yields at most one UTF-16 unit). */
    n = crs_win_wide_buf(line, strnlen(line, CRS_EVENTLOG_MAX_CHARS - 1), 0, text,
                         CRS_EVENTLOG_MAX_CHARS);
    if (n <= 0)
        return;

    switch (level) {
    case CRS_LOG_ERROR:
        type = EVENTLOG_ERROR_TYPE;
        id = CRS_MSG_ERROR;
        break;
    case CRS_LOG_WARN:
        type = EVENTLOG_WARNING_TYPE;
        id = CRS_MSG_WARNING;
        break;
    default:
        type = EVENTLOG_INFORMATION_TYPE;
        id = CRS_MSG_INFO;
        break;
    }
    h = RegisterEventSourceW(NULL, source);
    if (h == NULL)
        return;
    strings[0] = text;
    ReportEventW(h, type, 0, id, NULL, 1, 0, strings, NULL);
    DeregisterEventSource(h);
}

void crs_eventlog_writef(const WCHAR *source, enum crs_log_level level, const char *fmt, ...)
{
    char line[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    crs_eventlog_write(source, level, line);
}

void crs_eventlog_log_output(void *ctx, enum crs_log_level level, const char *line)
{
    crs_eventlog_write((const WCHAR *)ctx, level, line);
}

#define CRS_EVENTLOG_MAX_INSERTS  8
#define CRS_EVENTLOG_INSERT_CHARS 1024

void crs_eventlog_event(const WCHAR *source, enum crs_log_level level, unsigned msgid,
                        const char *const *inserts, unsigned ninserts, const char *line)
{
    static const WORD types[] = {0, EVENTLOG_INFORMATION_TYPE, EVENTLOG_WARNING_TYPE,
                                 EVENTLOG_ERROR_TYPE};
    WCHAR text[CRS_EVENTLOG_MAX_INSERTS][CRS_EVENTLOG_INSERT_CHARS];
    const WCHAR *strings[CRS_EVENTLOG_MAX_INSERTS];
    unsigned sev = crs_msgid_severity(msgid), i;
    HANDLE h;

    if (source == NULL)
        return;
    if (sev == 0 || ninserts > CRS_EVENTLOG_MAX_INSERTS || (ninserts > 0 && inserts == NULL)) {
        crs_eventlog_write(source, level, line != NULL ? line : "");
        return;
    }
    for (i = 0; i < ninserts; i++) {
        const char *s = inserts[i] != NULL ? inserts[i] : "";
        if (crs_win_wide_buf(s, strnlen(s, CRS_EVENTLOG_INSERT_CHARS - 1), 0, text[i],
                             CRS_EVENTLOG_INSERT_CHARS) <= 0)
            text[i][0] = L'\0';
        strings[i] = text[i];
    }
    h = RegisterEventSourceW(NULL, source);
    if (h == NULL)
        return;
    /* The id as windmc numbers it: the severity in the top two bits. */
    ReportEventW(h, types[sev], 0, (DWORD)sev << 30 | (DWORD)msgid, NULL, (WORD)ninserts, 0,
                 ninserts > 0 ? strings : NULL, NULL);
    DeregisterEventSource(h);
}

void crs_eventlog_event_output(void *ctx, enum crs_log_level level, unsigned msgid,
                               const char *const *inserts, unsigned ninserts, const char *line)
{
    crs_eventlog_event((const WCHAR *)ctx, level, msgid, inserts, ninserts, line);
}
