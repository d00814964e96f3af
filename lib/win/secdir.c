/*
 * Private directories on Windows. See include/certrelay/win/secdir.h.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/wstr.h"

/* Protected (P), inheritable to subdirectories (CI) and files (OI): SYSTEM and Administrators. */
#define PRIVATE_DIR_SDDL L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)"

static WCHAR *to_wide(const char *s)
{
    WCHAR *w;

    return crs_win_wide(s, 0, &w) == 0 ? w : NULL;
}

static int dir_exists(const char *path)
{
    WCHAR *w = to_wide(path);
    DWORD attr;

    if (w == NULL)
        return 0;
    attr = GetFileAttributesW(w);
    crs_free(w);
    return attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_DIRECTORY);
}

static char *last_separator(char *path)
{
    char *last = NULL, *p;

    for (p = path; *p != '\0'; p++) {
        if (*p == '\\' || *p == '/')
            last = p;
    }
    return last;
}

/*
 * The topmost ancestor of dir (or dir itself) that does not exist yet, as a fresh string; NULL
 * in *out when everything exists.
 */
static int first_missing(const char *dir, char **out)
{
    char *path = crs_strdup(dir);
    char *cut;
    size_t len;

    *out = NULL;
    if (path == NULL)
        return CRS_ENOMEM;
    len = strlen(path);
    while (len > 0 && (path[len - 1] == '\\' || path[len - 1] == '/'))
        path[--len] = '\0';
    if (dir_exists(path)) {
        crs_free(path);
        return 0;
    }
    /* Walk up while the parent is missing too. */
    for (;;) {
        char saved;

        cut = last_separator(path);
        if (cut == NULL || cut == path || (cut == path + 2 && path[1] == ':'))
            break;
        saved = *cut;
        *cut = '\0';
        if (dir_exists(path)) {
            *cut = saved;
            break;
        }
    }
    *out = path;
    return 0;
}

static int protect(const char *path)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    WCHAR *w = NULL;
    DWORD err;
    int rc = 0;

    w = to_wide(path);
    if (w == NULL)
        return CRS_ENOMEM;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(PRIVATE_DIR_SDDL, SDDL_REVISION_1,
                                                              &sd, NULL) ||
        !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted)) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    err = SetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                                NULL, NULL, dacl, NULL);
    if (err != ERROR_SUCCESS)
        rc = crs_translate_sys_error((int)err);

cleanup:
    if (rc != 0)
        crs_warn("cannot restrict %s to SYSTEM and Administrators: %s", path, crs_strerror(rc));
    if (sd != NULL)
        LocalFree(sd);
    crs_free(w);
    return rc != 0 ? CRS_EACCES : 0;
}

int crs_win_mkdirs_private(const char *dir)
{
    char *top = NULL;
    int rc;

    if (dir == NULL || dir[0] == '\0')
        return CRS_EINVAL;
    rc = first_missing(dir, &top);
    if (rc != 0)
        return rc;
    rc = crs_fs_mkdirs(dir);
    if (rc == 0 && top != NULL)
        rc = protect(top);
    crs_free(top);
    return rc;
}
