/*
 * The exit module's registry settings (struct crs_exit_settings in dll.h), read by Initialize
 * (exit.c) and reported by Configure (manage.c).
 *
 * Where they live: certsrv tells each module its settings key through the CA property
 * ModuleRegistryLocation (Initialize reads it, as Microsoft's exit sample does), and the snap-in
 * passes it to Configure as the storage location. Both are paths below HKLM, normally
 *
 *   SYSTEM\CurrentControlSet\Services\CertSvc\Configuration\<sanitized CA name>\ExitModules\CertRelay.Exit
 *
 * which is also where `certutil -setreg exit\CertRelay.Exit\TimeoutMs 1500` writes. When certsrv
 * gives no location, the path is built from the sanitized CA name (crs_exit_settings_key).
 */
#include <stdio.h>
#include <string.h>

#include "dll.h"
#include "certrelay/alloc.h"
#include "certrelay/defaults.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "certrelay/win/eventlog.h"
#include "certrelay/win/svcacct.h"

/* certsrv blocks on every Notify: a longer bound would stall the CA, a shorter one cannot reach a
 * busy broker. Values outside are clamped (and the clamp is logged). */
#define EXIT_MIN_TIMEOUT_MS 100u
#define EXIT_MAX_TIMEOUT_MS 60000u
#define EXIT_MAX_REG_STRING 4096u /* characters, for PipeName and SpoolDir */
#define EXIT_MAX_KEY_PATH   512u  /* characters of a settings key path */

/*
 * Reads a REG_SZ or REG_EXPAND_SZ value (expanded) as UTF-8. CRS_ENOENT when absent, so the
 * caller falls back to the default.
 */
static int reg_read_string(HKEY key, const WCHAR *name, char **out)
{
    WCHAR buf[EXIT_MAX_REG_STRING];
    DWORD size = sizeof(buf);
    LONG err;

    *out = NULL;
    /* RRF_RT_REG_SZ also accepts REG_EXPAND_SZ, expanded; naming RRF_RT_REG_EXPAND_SZ as well
     * would make RegGetValueW fail unless RRF_NOEXPAND is given. */
    err = RegGetValueW(key, NULL, name, RRF_RT_REG_SZ, NULL, buf, &size);
    if (err == ERROR_FILE_NOT_FOUND)
        return CRS_ENOENT;
    if (err == ERROR_MORE_DATA)
        return CRS_ETOOBIG;
    if (err != ERROR_SUCCESS)
        return crs_translate_sys_error((int)err);
    if (buf[0] == L'\0')
        return CRS_ENOENT;
    return crs_win_utf8(buf, -1, EXIT_MAX_REG_STRING * 3, out, NULL);
}

static int reg_read_dword(HKEY key, const WCHAR *name, uint32_t *out)
{
    DWORD value = 0, size = sizeof(value);
    LONG err;

    err = RegGetValueW(key, NULL, name, RRF_RT_REG_DWORD, NULL, &value, &size);
    if (err == ERROR_FILE_NOT_FOUND)
        return CRS_ENOENT;
    if (err != ERROR_SUCCESS)
        return crs_translate_sys_error((int)err);
    *out = value;
    return 0;
}

/* Logs a value that could not be used; the default is used instead. */
static void setting_rejected(const char *name, int rc)
{
    crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_WARN,
                        "CertRelay: the registry value %s cannot be used (%s); using the default.",
                        name, crs_strerror(rc));
}

void crs_exit_settings_clear(struct crs_exit_settings *s)
{
    if (s == NULL)
        return;
    crs_free(s->pipe);
    crs_free(s->spool_dir);
    crs_free(s->service);
    crs_free(s->location);
    memset(s, 0, sizeof(*s));
}

int crs_exit_settings_key(const WCHAR *ca, WCHAR **out)
{
    WCHAR *path;
    int n;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (ca == NULL || ca[0] == L'\0' || wcschr(ca, L'\\') != NULL)
        return CRS_EINVAL;
    path = crs_malloc(EXIT_MAX_KEY_PATH * sizeof(WCHAR));
    if (path == NULL)
        return CRS_ENOMEM;
    n = _snwprintf(path, EXIT_MAX_KEY_PATH, L"%ls%ls%ls", CRS_REG_CONFIGURATION, ca,
                   CRS_REG_EXIT_SUBKEY);
    if (n < 0 || (size_t)n >= EXIT_MAX_KEY_PATH) {
        crs_free(path);
        return CRS_EINVAL;
    }
    *out = path;
    return 0;
}

/* A location may be written with the hive in front ("HKEY_LOCAL_MACHINE\..." or "HKLM\..."):
 * every settings key is below HKLM, so the prefix is dropped. */
static const WCHAR *below_hklm(const WCHAR *path)
{
    static const WCHAR *const hives[] = {L"HKEY_LOCAL_MACHINE\\", L"HKLM\\"};
    size_t i;

    for (i = 0; i < sizeof(hives) / sizeof(hives[0]); i++) {
        size_t n = wcslen(hives[i]);
        if (_wcsnicmp(path, hives[i], n) == 0)
            return path + n;
    }
    return path;
}

int crs_exit_settings_read(const WCHAR *location, struct crs_exit_settings *out)
{
    HKEY key = NULL;
    uint32_t value;
    int rc = 0;

    if (out == NULL)
        return CRS_EINVAL;
    memset(out, 0, sizeof(*out));
    out->timeout_ms = CRS_STUB_DEFAULT_TIMEOUT_MS;
    out->event_mask = CRS_EVENT_ALL;

    /* Without a location there is no key to read: every setting takes its default. */
    if (location != NULL && location[0] != L'\0') {
        location = below_hklm(location);
        rc = crs_win_utf8(location, -1, EXIT_MAX_KEY_PATH * 3, &out->location, NULL);
        if (rc != 0)
            return rc;
        if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, location, 0, KEY_QUERY_VALUE | KEY_WOW64_64KEY,
                          &key) != ERROR_SUCCESS)
            key = NULL;
    }
    if (key != NULL) {
        out->from_registry = 1;
        rc = reg_read_string(key, L"PipeName", &out->pipe);
        if (rc != 0 && rc != CRS_ENOENT)
            setting_rejected("PipeName", rc);
        rc = reg_read_string(key, L"BrokerService", &out->service);
        if (rc != 0 && rc != CRS_ENOENT)
            setting_rejected("BrokerService", rc);
        rc = reg_read_string(key, L"SpoolDir", &out->spool_dir);
        if (rc != 0 && rc != CRS_ENOENT)
            setting_rejected("SpoolDir", rc);
        rc = reg_read_dword(key, L"TimeoutMs", &value);
        if (rc == 0 && value != 0) {
            if (value < EXIT_MIN_TIMEOUT_MS || value > EXIT_MAX_TIMEOUT_MS) {
                value = value < EXIT_MIN_TIMEOUT_MS ? EXIT_MIN_TIMEOUT_MS : EXIT_MAX_TIMEOUT_MS;
                crs_eventlog_writef(CRS_EVENTLOG_SOURCE_EXIT, CRS_LOG_WARN,
                                    "CertRelay: TimeoutMs is outside %u..%u ms; using %u ms.",
                                    EXIT_MIN_TIMEOUT_MS, EXIT_MAX_TIMEOUT_MS, (unsigned)value);
            }
            out->timeout_ms = value;
        } else if (rc != 0 && rc != CRS_ENOENT) {
            setting_rejected("TimeoutMs", rc);
        }
        rc = reg_read_dword(key, L"EventMask", &value);
        if (rc == 0)
            out->event_mask = value & CRS_EVENT_ALL;
        else if (rc != CRS_ENOENT)
            setting_rejected("EventMask", rc);
        rc = reg_read_dword(key, L"CaptureRawRequest", &value);
        if (rc == 0)
            out->capture_raw_request = value != 0;
        else if (rc != CRS_ENOENT)
            setting_rejected("CaptureRawRequest", rc);
        RegCloseKey(key);
        rc = 0;
    }

    if (out->pipe == NULL && (out->pipe = crs_default_pipe()) == NULL)
        rc = CRS_ENOMEM;
    if (out->spool_dir == NULL && (out->spool_dir = crs_default_spool_dir()) == NULL)
        rc = CRS_ENOMEM;
    if (out->service == NULL && (out->service = crs_strdup(CRS_SERVICE_NAME)) == NULL)
        rc = CRS_ENOMEM;
    if (rc != 0)
        crs_exit_settings_clear(out);
    return rc;
}
