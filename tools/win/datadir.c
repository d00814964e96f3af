/*
 * %ProgramData%\CertRelay: the data directories with their ACLs, the configuration file, and
 * on `uninstall --purge` their removal.
 *
 *   %ProgramData%\CertRelay\               D:P SYSTEM, Administrators: full control
 *       certrelay.ini                          (+ NT SERVICE\CertRelay: modify, virtual account)
 *       state\   spool\   logs\            the same, each set explicitly
 *
 * %ProgramData% lets every user create files in new subdirectories; a spool that users can write
 * to would let them forge CA events, so the ACL is protected (nothing inherited from above).
 * The package does not own these files: an upgrade or an uninstall leaves them, and with them
 * the configuration and the queue, unless the administrator purges.
 */
#include "setup.h"

#include <sddl.h>
#include <aclapi.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/win/wstr.h"

#define CONFIG_MAX      (1024 * 1024)
#define SDDL_BASE       L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"
#define SDDL_MAX        512
#define PROGRAMDATA_VAR "%ProgramData%"

static const WCHAR *const subdirs[] = {L"state", L"spool", L"logs"};

/* UTF-8 copy of a UTF-16 path (what lib/ takes), or NULL. Free with crs_free. */
static char *utf8(const WCHAR *w)
{
    char *s = NULL;

    return crs_win_utf8(w, -1, 4 * SETUP_PATH_MAX, &s, NULL) == 0 ? s : NULL;
}

/* ------------------------------------------------------------------------------------------ */
/* Directories and their ACLs                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* The DACL a directory should have, in the canonical form Windows prints it in (the SDDL is
 * parsed and printed once, so comparing with what GetNamedSecurityInfo returns is fair). */
static DWORD wanted_sddl(enum setup_account account, WCHAR **out)
{
    WCHAR sddl[SDDL_MAX], sid[96];
    PSECURITY_DESCRIPTOR sd = NULL;
    DWORD err = 0;

    *out = NULL;
    wcscpy(sddl, SDDL_BASE);
    if (account == SETUP_ACCOUNT_VIRTUAL) {
        err = setup_service_sid(sid, sizeof(sid) / sizeof(sid[0]));
        if (err != 0)
            return err;
        /* Modify: read, write, delete; not change permissions or take ownership. */
        _snwprintf(sddl + wcslen(sddl), SDDL_MAX - wcslen(sddl), L"(A;OICI;0x1301bf;;;%ls)", sid);
        sddl[SDDL_MAX - 1] = L'\0';
    }
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
        return GetLastError();
    if (!ConvertSecurityDescriptorToStringSecurityDescriptorW(sd, SDDL_REVISION_1,
                                                              DACL_SECURITY_INFORMATION, out, NULL))
        err = GetLastError();
    LocalFree(sd);
    return err;
}

/* 1 when path's DACL prints as want. */
static int dacl_is(const WCHAR *path, const WCHAR *want)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    WCHAR *have = NULL;
    int same = 0;

    if (GetNamedSecurityInfoW(path, SE_FILE_OBJECT, DACL_SECURITY_INFORMATION, NULL, NULL, NULL,
                              NULL, &sd) == ERROR_SUCCESS &&
        ConvertSecurityDescriptorToStringSecurityDescriptorW(
            sd, SDDL_REVISION_1, DACL_SECURITY_INFORMATION, &have, NULL))
        same = wcscmp(have, want) == 0;
    LocalFree(have);
    LocalFree(sd);
    return same;
}

static DWORD set_dacl(const WCHAR *path, const WCHAR *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    DWORD err;

    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL))
        return GetLastError();
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
        err = GetLastError();
    else
        err = SetNamedSecurityInfoW((WCHAR *)path, SE_FILE_OBJECT,
                                    DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                    NULL, NULL, dacl, NULL);
    LocalFree(sd);
    return err;
}

static void ensure_dir(struct setup_report *r, const WCHAR *path, const WCHAR *sddl,
                       const char *who)
{
    int created = 0;
    DWORD err;

    if (CreateDirectoryW(path, NULL))
        created = 1;
    else if (GetLastError() != ERROR_ALREADY_EXISTS) {
        setup_failed(r, "%ls: cannot create it: %s", path, setup_strerror(GetLastError()));
        return;
    }
    if (dacl_is(path, sddl)) {
        if (created)
            setup_done(r, "%ls: created (access: %s)", path, who);
        else
            setup_already(r, "%ls: already in place (access: %s)", path, who);
        return;
    }
    err = set_dacl(path, sddl);
    if (err != 0)
        setup_failed(r, "%ls: cannot set its ACL: %s", path, setup_strerror(err));
    else if (!dacl_is(path, sddl) && !created)
        setup_note(r,
                   "%ls: ACL set (access: %s); this system does not report ACLs back, so it "
                   "cannot be verified here",
                   path, who);
    else
        setup_done(r, "%ls: %s (access: %s)", path, created ? "created" : "ACL set", who);
}

void setup_data_dirs(struct setup_report *r, enum setup_account account)
{
    WCHAR base[SETUP_PATH_MAX], sub[SETUP_PATH_MAX];
    const char *who = account == SETUP_ACCOUNT_VIRTUAL
                          ? "SYSTEM, Administrators, NT SERVICE\\CertRelay"
                          : "SYSTEM, Administrators";
    WCHAR *sddl = NULL;
    DWORD err;
    size_t i;

    err = setup_data_dir(base, SETUP_PATH_MAX);
    if (err == 0)
        err = wanted_sddl(account, &sddl);
    if (err != 0) {
        setup_failed(r, "data directory: %s", setup_strerror(err));
        return;
    }
    ensure_dir(r, base, sddl, who);
    for (i = 0; i < sizeof(subdirs) / sizeof(subdirs[0]); i++) {
        if (setup_path_join(sub, SETUP_PATH_MAX, base, subdirs[i]) != 0)
            setup_failed(r, "data directory: path too long");
        else
            ensure_dir(r, sub, sddl, who);
    }
    LocalFree(sddl);
}

/* ------------------------------------------------------------------------------------------ */
/* The configuration                                                                            */
/* ------------------------------------------------------------------------------------------ */

/* Runs certrelayd.exe --check-config path; 0 when the broker accepts the file. */
static DWORD check_config(const WCHAR *path, DWORD *status)
{
    WCHAR exe[SETUP_PATH_MAX], cmd[3 * SETUP_PATH_MAX];
    STARTUPINFOW si;
    PROCESS_INFORMATION pi;
    DWORD err;
    int n;

    *status = 1;
    err = setup_install_file(SETUP_BROKER_EXE, exe, SETUP_PATH_MAX);
    if (err != 0)
        return err;
    n = _snwprintf(cmd, 3 * SETUP_PATH_MAX, L"\"%ls\" --check-config \"%ls\"", exe, path);
    if (n < 0 || n >= 3 * SETUP_PATH_MAX)
        return ERROR_BUFFER_OVERFLOW;
    memset(&si, 0, sizeof(si));
    si.cb = sizeof(si);
    /* The broker prints FILE:LINE: message on its stderr, which is ours. */
    if (!CreateProcessW(exe, cmd, NULL, NULL, TRUE, 0, NULL, NULL, &si, &pi))
        return GetLastError();
    WaitForSingleObject(pi.hProcess, INFINITE);
    if (!GetExitCodeProcess(pi.hProcess, status))
        err = GetLastError();
    CloseHandle(pi.hThread);
    CloseHandle(pi.hProcess);
    return err;
}

/* text with every %ProgramData% replaced by value, in a fresh buffer. */
static char *expand_program_data(const char *text, size_t len, const char *value, size_t *outlen)
{
    size_t vlen = strlen(value), klen = strlen(PROGRAMDATA_VAR), n = 0, cap;
    const char *p, *hit;
    char *out;

    for (p = text; (hit = strstr(p, PROGRAMDATA_VAR)) != NULL; p = hit + klen)
        n++;
    cap = len + n * vlen + 1;
    out = crs_malloc(cap);
    if (out == NULL)
        return NULL;
    *outlen = 0;
    for (p = text; (hit = strstr(p, PROGRAMDATA_VAR)) != NULL; p = hit + klen) {
        memcpy(out + *outlen, p, (size_t)(hit - p));
        *outlen += (size_t)(hit - p);
        memcpy(out + *outlen, value, vlen);
        *outlen += vlen;
    }
    memcpy(out + *outlen, p, len - (size_t)(p - text));
    *outlen += len - (size_t)(p - text);
    out[*outlen] = '\0';
    return out;
}

/*
 * Puts the configuration in place: the administrator's file when given (validated by the broker
 * first), otherwise the commented example, only when there is no configuration yet.
 */
void setup_config(struct setup_report *r, const WCHAR *config)
{
    WCHAR base[SETUP_PATH_MAX], ini[SETUP_PATH_MAX], example[SETUP_PATH_MAX];
    char *base8 = NULL, *ini8 = NULL, *src8 = NULL, *pd8 = NULL, *text = NULL;
    uint8_t *data = NULL, *have = NULL;
    size_t len = 0, havelen = 0, textlen = 0;
    DWORD err, status;
    int rc;

    err = setup_data_dir(base, SETUP_PATH_MAX);
    if (err == 0)
        err = setup_path_join(ini, SETUP_PATH_MAX, base, SETUP_CONFIG_INI);
    if (err == 0)
        err = setup_install_file(SETUP_EXAMPLE_INI, example, SETUP_PATH_MAX);
    if (err != 0) {
        setup_failed(r, "configuration: %s", setup_strerror(err));
        return;
    }
    base8 = utf8(base);
    ini8 = utf8(ini);
    src8 = utf8(config != NULL ? config : example);
    if (base8 == NULL || ini8 == NULL || src8 == NULL) {
        setup_failed(r, "configuration: out of memory");
        goto cleanup;
    }
    if (config == NULL && GetFileAttributesW(ini) != INVALID_FILE_ATTRIBUTES) {
        setup_already(r, "%ls: already exists, kept", ini);
        goto cleanup;
    }
    if (config != NULL) {
        err = check_config(config, &status);
        if (err != 0 || status != 0) {
            setup_failed(r, "configuration: %ls was not accepted by certrelayd --check-config%s%s",
                         config, err != 0 ? ": " : "", err != 0 ? setup_strerror(err) : "");
            goto cleanup;
        }
    }
    rc = crs_fs_read_all(src8, CONFIG_MAX, &data, &len);
    if (rc == CRS_ENOENT && config == NULL) {
        setup_note(r,
                   "%ls: none, and no example beside certrelay.exe: the broker runs its "
                   "built-in default",
                   ini);
        goto cleanup;
    }
    if (rc != 0) {
        setup_failed(r, "configuration: cannot read %s: %s", src8, crs_strerror(rc));
        goto cleanup;
    }
    if (config == NULL) {
        /* The example names its directories below %ProgramData%, which the broker does not
         * expand: write the folder this machine has. */
        pd8 = crs_strndup(base8, strlen(base8) - strlen("\\CertRelay"));
        text = pd8 != NULL ? expand_program_data((const char *)data, len, pd8, &textlen) : NULL;
        if (text == NULL) {
            setup_failed(r, "configuration: out of memory");
            goto cleanup;
        }
    } else if (crs_fs_read_all(ini8, CONFIG_MAX, &have, &havelen) == 0 && havelen == len &&
               memcmp(have, data, len) == 0) {
        setup_already(r, "%ls: already holds %ls", ini, config);
        goto cleanup;
    }
    rc = crs_fs_write_atomic2(base8, SETUP_CONFIG_INI_A, text != NULL ? text : (char *)data,
                              text != NULL ? textlen : len, NULL, 0);
    if (rc != 0) {
        setup_failed(r, "configuration: cannot write %s: %s", ini8, crs_strerror(rc));
        goto cleanup;
    }
    if (config != NULL)
        setup_done(r, "%ls: replaced by %ls (restart the service to apply it)", ini, config);
    else
        setup_done(r,
                   "%ls: written from the commented example (edit it, then restart the "
                   "service)",
                   ini);

cleanup:
    crs_free(have);
    crs_free(data);
    crs_free(text);
    crs_free(pd8);
    crs_free(src8);
    crs_free(ini8);
    crs_free(base8);
}

/* ------------------------------------------------------------------------------------------ */
/* Removal                                                                                      */
/* ------------------------------------------------------------------------------------------ */

/* Deletes path and everything below it. 0 or the first Win32 error. */
static DWORD remove_tree(const WCHAR *path)
{
    WCHAR pattern[SETUP_PATH_MAX], child[SETUP_PATH_MAX];
    WIN32_FIND_DATAW fd;
    HANDLE h;
    DWORD err = 0, e;

    if (setup_path_join(pattern, SETUP_PATH_MAX, path, L"*") != 0)
        return ERROR_BUFFER_OVERFLOW;
    h = FindFirstFileW(pattern, &fd);
    if (h != INVALID_HANDLE_VALUE) {
        do {
            if (wcscmp(fd.cFileName, L".") == 0 || wcscmp(fd.cFileName, L"..") == 0)
                continue;
            if (setup_path_join(child, SETUP_PATH_MAX, path, fd.cFileName) != 0) {
                e = ERROR_BUFFER_OVERFLOW;
            } else if ((fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY) &&
                       !(fd.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT)) {
                e = remove_tree(child);
            } else {
                SetFileAttributesW(child, FILE_ATTRIBUTE_NORMAL);
                e = DeleteFileW(child) ? 0 : GetLastError();
            }
            if (err == 0)
                err = e;
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    if (!RemoveDirectoryW(path) && err == 0)
        err = GetLastError();
    return err;
}

void setup_data_remove(struct setup_report *r, int purge)
{
    WCHAR base[SETUP_PATH_MAX];
    DWORD err = setup_data_dir(base, SETUP_PATH_MAX);

    if (err != 0) {
        setup_failed(r, "data directory: %s", setup_strerror(err));
        return;
    }
    if (GetFileAttributesW(base) == INVALID_FILE_ATTRIBUTES) {
        setup_already(r, "%ls: already removed", base);
        return;
    }
    if (!purge) {
        setup_already(r,
                      "%ls: kept (configuration, queue, spool, logs); "
                      "`certrelay uninstall --purge` removes it",
                      base);
        return;
    }
    err = remove_tree(base);
    if (err != 0)
        setup_failed(r, "%ls: cannot remove it: %s", base, setup_strerror(err));
    else
        setup_done(r, "%ls: removed with everything in it (--purge)", base);
}
