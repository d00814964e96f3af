/*
 * The CA's list of active exit modules, and `certrelay activate` / `certrelay deactivate`.
 *
 * certsrv reads which exit modules to load from the registry (certutil -getreg exit shows it):
 *
 *   HKLM\SYSTEM\CurrentControlSet\Services\CertSvc\Configuration
 *       Active          REG_SZ        Contoso Issuing CA        (the CA's key name)
 *   ...\Configuration\Contoso Issuing CA\ExitModules
 *       Active          REG_MULTI_SZ  CertificateAuthority_MicrosoftDefault.Exit
 *                                     CertRelay.Exit
 *
 * Activation appends CertRelay.Exit and deactivation removes it; every other module stays where
 * it is, in its order (`reg add ... /d CertRelay.Exit` would drop Microsoft's default module and
 * with it the CA's own publishing). certsrv reads the list when it starts: the change takes
 * effect when CertSvc is restarted.
 */
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "setup.h"
#include "commands.h"

#define CA_CONFIG_KEY_A "SYSTEM\\CurrentControlSet\\Services\\CertSvc\\Configuration"
#define CA_CONFIG_KEY   L"" CA_CONFIG_KEY_A

/* A CA's key name is short; the list holds a few module ProgIDs. Both are capped. */
#define CA_NAME_MAX     256
#define MODULE_LIST_MAX (32 * 1024) /* UTF-16 units */

/*
 * HKLM\SOFTWARE\CertRelay\ActiveInCA = "1" while CertRelay.Exit is in a CA's list through these
 * commands. The MSI reads it before an upgrade (RegistrySearch WASACTIVE) and passes it back as
 * --was-active, because Wine runs the older package's removal as a plain uninstall (without
 * UPGRADINGPRODUCTCODE), which takes the module out of the list the newer package must keep.
 */
#define MARKER_KEY   L"SOFTWARE\\CertRelay"
#define MARKER_VALUE L"ActiveInCA"

static void remember_active(int active)
{
    HKEY key;

    if (active) {
        if (RegCreateKeyExW(HKEY_LOCAL_MACHINE, MARKER_KEY, 0, NULL, REG_OPTION_NON_VOLATILE,
                            KEY_SET_VALUE | KEY_WOW64_64KEY, NULL, &key, NULL) != ERROR_SUCCESS)
            return;
        RegSetValueExW(key, MARKER_VALUE, 0, REG_SZ, (const BYTE *)L"1", 2 * sizeof(WCHAR));
        RegCloseKey(key);
        return;
    }
    if (RegOpenKeyExW(HKEY_LOCAL_MACHINE, MARKER_KEY, 0, KEY_SET_VALUE | KEY_WOW64_64KEY, &key) !=
        ERROR_SUCCESS)
        return;
    RegDeleteValueW(key, MARKER_VALUE);
    RegCloseKey(key);
    RegDeleteKeyExW(HKEY_LOCAL_MACHINE, MARKER_KEY, KEY_WOW64_64KEY, 0); /* only when empty */
}

/* Reads the machine's active CA's key name into out. ERROR_FILE_NOT_FOUND without a CA. */
static DWORD active_ca(WCHAR *out, DWORD cap)
{
    DWORD type, size = cap * sizeof(WCHAR);
    LONG err;

    err = RegGetValueW(HKEY_LOCAL_MACHINE, CA_CONFIG_KEY, L"Active", RRF_RT_REG_SZ, &type, out,
                       &size);
    if (err == ERROR_SUCCESS && out[0] == L'\0')
        err = ERROR_FILE_NOT_FOUND;
    return (DWORD)err;
}

/*
 * Reads the Active list of key into buf (cap units) as a double-NUL-terminated list; a missing
 * value is an empty list, and a REG_SZ (written by hand) a list of one.
 */
static DWORD read_modules(HKEY key, WCHAR *buf, DWORD cap)
{
    DWORD type = 0, size = (cap - 2) * sizeof(WCHAR);
    LONG err;

    memset(buf, 0, cap * sizeof(WCHAR));
    err = RegQueryValueExW(key, L"Active", NULL, &type, (BYTE *)buf, &size);
    if (err == ERROR_FILE_NOT_FOUND)
        return 0;
    if (err != ERROR_SUCCESS)
        return (DWORD)err;
    if (type != REG_MULTI_SZ && type != REG_SZ)
        return ERROR_INVALID_DATA;
    /* The buffer was zeroed and size keeps two units free, so the list is terminated whatever
     * the value held. */
    return 0;
}

/* The length in units of a double-NUL-terminated list, the final NUL included. */
static size_t list_units(const WCHAR *list)
{
    const WCHAR *p = list;

    while (*p != L'\0')
        p += wcslen(p) + 1;
    return (size_t)(p - list) + 1;
}

static int list_has(const WCHAR *list, const WCHAR *name)
{
    const WCHAR *p;

    for (p = list; *p != L'\0'; p += wcslen(p) + 1)
        if (_wcsicmp(p, name) == 0)
            return 1;
    return 0;
}

/* Copies list into out without the entries equal to name (ignoring case), keeping the order. */
static void list_without(const WCHAR *list, const WCHAR *name, WCHAR *out)
{
    const WCHAR *p;
    size_t n;

    for (p = list; *p != L'\0'; p += n + 1) {
        n = wcslen(p);
        if (_wcsicmp(p, name) != 0) {
            memcpy(out, p, (n + 1) * sizeof(WCHAR));
            out += n + 1;
        }
    }
    *out = L'\0';
}

/* The list for messages: "A, B" (or "(none)"), cut to fit. */
static const char *list_text(const WCHAR *list, char *buf, size_t cap)
{
    const WCHAR *p;
    size_t used = 0;
    int n;

    buf[0] = '\0';
    for (p = list; *p != L'\0' && used < cap; p += wcslen(p) + 1) {
        n = snprintf(buf + used, cap - used, "%s%ls", used > 0 ? ", " : "", p);
        if (n < 0)
            break;
        used += (size_t)n;
    }
    return buf[0] != '\0' ? buf : "(none)";
}

/*
 * Adds (add = 1) or removes CertRelay.Exit in ca's list, or in the machine's active CA's when ca
 * is NULL. Without a CA the step says so; it fails only when required.
 */
static void edit_modules(struct setup_report *r, const WCHAR *ca, int add, int required)
{
    WCHAR name[CA_NAME_MAX], path[CA_NAME_MAX + 128];
    WCHAR *list = NULL, *out = NULL;
    char text[512];
    HKEY key = NULL;
    size_t units;
    DWORD err;
    int n;

    if (ca == NULL) {
        err = active_ca(name, CA_NAME_MAX);
        if (err == ERROR_FILE_NOT_FOUND) {
            if (required)
                setup_failed(r, "CA exit modules: no Certification Authority is configured on "
                                "this machine (no Active value under HKLM\\" CA_CONFIG_KEY_A ")");
            else
                setup_already(r,
                              "CA exit modules: no Certification Authority on this machine, "
                              "nothing to %s (run `certrelay activate` once AD CS is set up)",
                              add ? "add" : "remove");
            return;
        }
        if (err != 0) {
            setup_failed(r, "CA exit modules: cannot read the active CA: %s", setup_strerror(err));
            return;
        }
        ca = name;
    }
    n = _snwprintf(path, CA_NAME_MAX + 128, L"%ls\\%ls\\ExitModules", CA_CONFIG_KEY, ca);
    if (n < 0 || n >= CA_NAME_MAX + 128) {
        setup_failed(r, "CA exit modules: the CA name is too long");
        return;
    }
    list = crs_calloc(MODULE_LIST_MAX, sizeof(WCHAR));
    out = crs_calloc(MODULE_LIST_MAX + CA_NAME_MAX, sizeof(WCHAR));
    if (list == NULL || out == NULL) {
        setup_failed(r, "CA exit modules: out of memory");
        goto cleanup;
    }
    if (add)
        err = (DWORD)RegCreateKeyExW(HKEY_LOCAL_MACHINE, path, 0, NULL, REG_OPTION_NON_VOLATILE,
                                     KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_WOW64_64KEY, NULL, &key,
                                     NULL);
    else
        err = (DWORD)RegOpenKeyExW(HKEY_LOCAL_MACHINE, path, 0,
                                   KEY_QUERY_VALUE | KEY_SET_VALUE | KEY_WOW64_64KEY, &key);
    if (!add && err == ERROR_FILE_NOT_FOUND) {
        remember_active(0);
        setup_already(r, "CA exit modules of \"%ls\": %ls is already not active", ca,
                      SETUP_PROGID_EXIT);
        goto cleanup;
    }
    if (err == 0)
        err = read_modules(key, list, MODULE_LIST_MAX);
    if (err != 0) {
        setup_failed(r, "CA exit modules of \"%ls\": cannot read HKLM\\%ls: %s", ca, path,
                     setup_strerror(err));
        goto cleanup;
    }
    if (list_has(list, SETUP_PROGID_EXIT) == add) {
        remember_active(add);
        setup_already(r, "CA exit modules of \"%ls\": %ls is already %s (list: %s)", ca,
                      SETUP_PROGID_EXIT, add ? "active" : "not active",
                      list_text(list, text, sizeof(text)));
        goto cleanup;
    }
    if (add) {
        units = list_units(list) - 1; /* drop the final NUL, append, terminate again */
        memcpy(out, list, units * sizeof(WCHAR));
        wcscpy(out + units, SETUP_PROGID_EXIT);
        out[units + wcslen(SETUP_PROGID_EXIT) + 1] = L'\0';
    } else {
        list_without(list, SETUP_PROGID_EXIT, out);
    }
    units = list_units(out);
    /* An empty REG_MULTI_SZ is a single NUL pair; certsrv reads it as "no exit modules". */
    err = (DWORD)RegSetValueExW(key, L"Active", 0, REG_MULTI_SZ, (const BYTE *)out,
                                (DWORD)((units < 2 ? 2 : units) * sizeof(WCHAR)));
    if (err != 0) {
        setup_failed(r, "CA exit modules of \"%ls\": cannot write the list: %s", ca,
                     setup_strerror(err));
        goto cleanup;
    }
    remember_active(add);
    setup_done(r, "CA exit modules of \"%ls\": %ls %s (list: %s)", ca, SETUP_PROGID_EXIT,
               add ? "added" : "removed", list_text(out, text, sizeof(text)));

cleanup:
    if (key != NULL)
        RegCloseKey(key);
    crs_free(out);
    crs_free(list);
}

void setup_ca_activate(struct setup_report *r, const WCHAR *ca, int required)
{
    edit_modules(r, ca, 1, required);
}

void setup_ca_deactivate(struct setup_report *r, const WCHAR *ca, int required)
{
    edit_modules(r, ca, 0, required);
}

void setup_ca_restart_note(struct setup_report *r, int loading)
{
    setup_note(r,
               "NOTE: certsrv keeps its exit modules loaded; restart Active Directory "
               "Certificate Services for CertRelay to %s:",
               loading ? "load" : "unload");
    setup_note(r, "      net stop certsvc && net start certsvc");
}

/* ------------------------------------------------------------------------------------------ */
/* certrelay activate | deactivate                                                              */
/* ------------------------------------------------------------------------------------------ */

static int ca_command(int argc, char **argv, int add)
{
    struct setup_report r = {argv[0], 0, 0};
    WCHAR ca[CA_NAME_MAX];
    const char *v;
    int i, missing = 0, have_ca = 0;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: certrelay %s [--ca NAME]\n\n"
                   "%s CertRelay.Exit %s the active exit modules of the CA (NAME: its key under\n"
                   "HKLM\\" CA_CONFIG_KEY_A ",\n"
                   "by default the machine's active CA), keeping the other modules in their "
                   "order.\nRestart CertSvc afterwards.\n",
                   argv[0], add ? "Adds" : "Removes", add ? "to" : "from");
            return 0;
        }
        if ((v = setup_option(argc, argv, &i, "--ca", &missing)) != NULL) {
            if (MultiByteToWideChar(CP_ACP, 0, v, -1, ca, CA_NAME_MAX) <= 0) {
                fprintf(stderr, "certrelay %s: --ca: name too long\n", argv[0]);
                return 2;
            }
            have_ca = 1;
            continue;
        }
        fprintf(stderr, "certrelay %s: %s '%s' (see certrelay %s --help)\n", argv[0],
                missing ? "missing value for" : "unknown option", argv[i], argv[0]);
        return 2;
    }
    if (!setup_require_admin(argv[0]))
        return 1;
    printf("certrelay %s\n", argv[0]);
    edit_modules(&r, have_ca ? ca : NULL, add, 1);
    if (r.changes > 0)
        setup_ca_restart_note(&r, add);
    return setup_finish(&r);
}

int tool_activate_main(int argc, char **argv)
{
    return ca_command(argc, argv, 1);
}

int tool_deactivate_main(int argc, char **argv)
{
    return ca_command(argc, argv, 0);
}
