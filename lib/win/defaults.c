/*
 * Default locations on Windows, where the broker runs as a service and the stub inside certsrv,
 * both as SYSTEM.
 *
 *   base   %CERTRELAY_HOME%, else %ProgramData%\CertRelay (C:\ProgramData\CertRelay)
 *   pipe   \\.\pipe\CertRelay
 *   spool  <base>\spool
 *
 * CERTRELAY_HOME exists for tests, which run several brokers side by side under Wine. Named pipes
 * live in one machine-wide namespace rather than in a directory, so when CERTRELAY_HOME is set the
 * pipe becomes \\.\pipe\CertRelay-<8 hex digits>, a hash of the home: each home gets its own pipe,
 * as each home on Unix gets its own socket file. The stub and the broker compute the same name.
 *
 * The environment is read with the wide API and converted to UTF-8, the encoding of every path
 * in CertRelay's portable code; the ANSI code page could not represent every directory name.
 */
#include <windows.h>
#include <stdint.h>
#include "certrelay/alloc.h"
#include "certrelay/defaults.h"
#include "certrelay/win/wstr.h"

#define PIPE_DEFAULT        "\\\\.\\pipe\\CertRelay"
#define PROGRAMDATA_DEFAULT "C:\\ProgramData"

/*
 * Reads an environment variable as UTF-8 into *out. Returns 0 with *out NULL when the variable
 * is unset or empty, or -1 when it is set but could not be read (out of memory, bad UTF-16).
 */
static int env_utf8(const wchar_t *name, char **out)
{
    wchar_t *w;
    DWORD n, got;

    *out = NULL;
    n = GetEnvironmentVariableW(name, NULL, 0);
    if (n <= 1) /* unset (0), or empty: only the terminator */
        return 0;
    w = crs_malloc((size_t)n * sizeof(*w));
    if (w == NULL)
        return -1;
    got = GetEnvironmentVariableW(name, w, n);
    if (got == 0 || got >= n) {
        /* Another thread changed it between the two calls: treat it as unreadable. */
        crs_free(w);
        return -1;
    }
    /* An environment variable holds at most 32,767 characters. */
    if (crs_win_utf8(w, -1, (size_t)n * 3, out, NULL) != 0)
        *out = NULL;
    crs_free(w);
    return *out != NULL ? 0 : -1;
}

char *crs_default_base_dir(void)
{
    char *home, *data, *out;

    if (env_utf8(L"CERTRELAY_HOME", &home) != 0)
        return NULL;
    if (home != NULL)
        return home;
    if (env_utf8(L"ProgramData", &data) != 0)
        return NULL;
    out = crs_asprintf("%s\\CertRelay", data != NULL ? data : PROGRAMDATA_DEFAULT);
    crs_free(data);
    return out;
}

char *crs_default_pipe(void)
{
    uint32_t h = 2166136261u; /* FNV-1a: stable across builds and processes */
    const unsigned char *c;
    char *home, *out;

    if (env_utf8(L"CERTRELAY_HOME", &home) != 0)
        return NULL;
    if (home == NULL)
        return crs_strdup(PIPE_DEFAULT);
    for (c = (const unsigned char *)home; *c != '\0'; c++) {
        h ^= *c;
        h *= 16777619u;
    }
    crs_free(home);
    out = crs_asprintf("%s-%08lx", PIPE_DEFAULT, (unsigned long)h);
    return out;
}

char *crs_default_spool_dir(void)
{
    char *base, *out;

    base = crs_default_base_dir();
    if (base == NULL)
        return NULL;
    out = crs_asprintf("%s\\spool", base);
    crs_free(base);
    return out;
}
