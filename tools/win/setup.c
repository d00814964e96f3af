/*
 * Helpers of the Windows setup commands: step reporting, the elevation check, paths and
 * options. See setup.h.
 */
#include "setup.h"

#include <knownfolders.h>
#include <shlobj.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ------------------------------------------------------------------------------------------ */
/* Reporting                                                                                    */
/* ------------------------------------------------------------------------------------------ */

static void step_line(FILE *f, const char *fmt, va_list ap)
{
    fputs("  ", f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    fflush(f);
}

void setup_done(struct setup_report *r, const char *fmt, ...)
{
    va_list ap;

    r->changes++;
    va_start(ap, fmt);
    step_line(stdout, fmt, ap);
    va_end(ap);
}

void setup_already(struct setup_report *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    step_line(stdout, fmt, ap);
    va_end(ap);
}

void setup_note(struct setup_report *r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    step_line(stdout, fmt, ap);
    va_end(ap);
}

void setup_failed(struct setup_report *r, const char *fmt, ...)
{
    va_list ap;

    r->failures++;
    fflush(stdout);
    fputs("  FAILED: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
}

int setup_finish(struct setup_report *r)
{
    if (r->failures > 0)
        printf("certrelay %s: %d step%s failed, %d change%s made\n", r->command, r->failures,
               r->failures == 1 ? "" : "s", r->changes, r->changes == 1 ? "" : "s");
    else if (r->changes == 0)
        printf("certrelay %s: nothing to change, everything was already in place\n", r->command);
    else
        printf("certrelay %s: done, %d change%s\n", r->command, r->changes,
               r->changes == 1 ? "" : "s");
    fflush(stdout);
    return r->failures > 0 ? 1 : 0;
}

const char *setup_strerror(DWORD err)
{
    static char buf[512];
    DWORD n;

    n = FormatMessageA(FORMAT_MESSAGE_FROM_SYSTEM | FORMAT_MESSAGE_IGNORE_INSERTS, NULL, err, 0,
                       buf, sizeof(buf), NULL);
    while (n > 0 &&
           (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' || buf[n - 1] == '.'))
        buf[--n] = '\0';
    if (n == 0)
        snprintf(buf, sizeof(buf), "error %lu", (unsigned long)err);
    return buf;
}

/* ------------------------------------------------------------------------------------------ */
/* Elevation                                                                                    */
/* ------------------------------------------------------------------------------------------ */

int setup_require_admin(const char *command)
{
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    PSID admins = NULL;
    BOOL member = FALSE;

    /* With UAC, an administrator's unelevated token holds the Administrators group as
     * deny-only, and CheckTokenMembership says no: exactly the case to catch. */
    if (AllocateAndInitializeSid(&nt, 2, SECURITY_BUILTIN_DOMAIN_RID, DOMAIN_ALIAS_RID_ADMINS, 0, 0,
                                 0, 0, 0, 0, &admins)) {
        if (!CheckTokenMembership(NULL, admins, &member))
            member = FALSE;
        FreeSid(admins);
    }
    if (!member) {
        fprintf(stderr,
                "certrelay %s: this needs administrator rights (it changes services, the\n"
                "registry and %%ProgramData%%). Run it from an elevated prompt: right-click\n"
                "Command Prompt or PowerShell, \"Run as administrator\".\n",
                command);
        return 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Paths and options                                                                            */
/* ------------------------------------------------------------------------------------------ */

DWORD setup_path_join(WCHAR *out, size_t cap, const WCHAR *dir, const WCHAR *name)
{
    int n = _snwprintf(out, cap, L"%ls\\%ls", dir, name);

    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            out[0] = L'\0';
        return ERROR_BUFFER_OVERFLOW;
    }
    return 0;
}

DWORD setup_install_dir(WCHAR *out, size_t cap)
{
    WCHAR *slash;
    DWORD n;

    n = GetModuleFileNameW(NULL, out, (DWORD)cap);
    if (n == 0)
        return GetLastError();
    if (n >= cap)
        return ERROR_BUFFER_OVERFLOW;
    slash = wcsrchr(out, L'\\');
    if (slash == NULL)
        return ERROR_BAD_PATHNAME;
    *slash = L'\0';
    return 0;
}

DWORD setup_install_file(const WCHAR *name, WCHAR *out, size_t cap)
{
    WCHAR dir[SETUP_PATH_MAX];
    DWORD err = setup_install_dir(dir, SETUP_PATH_MAX);

    return err != 0 ? err : setup_path_join(out, cap, dir, name);
}

DWORD setup_data_dir(WCHAR *out, size_t cap)
{
    PWSTR base = NULL;
    DWORD err;

    /* The known folder, not %ProgramData%: the service anchors itself to it the same way
     * (broker/win/service.c), whatever this process's environment says. */
    if (FAILED(SHGetKnownFolderPath(&FOLDERID_ProgramData, 0, NULL, &base)) || base == NULL) {
        CoTaskMemFree(base);
        return ERROR_PATH_NOT_FOUND;
    }
    err = setup_path_join(out, cap, base, L"CertRelay");
    CoTaskMemFree(base);
    return err;
}

const char *setup_option(int argc, char **argv, int *i, const char *name, int *missing)
{
    const char *arg = argv[*i];
    size_t n = strlen(name);

    if (strncmp(arg, name, n) != 0)
        return NULL;
    if (arg[n] == '=')
        return arg + n + 1;
    if (arg[n] != '\0')
        return NULL;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    *i += 1;
    return argv[*i];
}

int setup_bool(const char *v)
{
    if (v[0] == '\0' || strcmp(v, "0") == 0 || _stricmp(v, "no") == 0 || _stricmp(v, "false") == 0)
        return 0;
    if (strcmp(v, "1") == 0 || _stricmp(v, "yes") == 0 || _stricmp(v, "true") == 0)
        return 1;
    return -1;
}
