/*
 * Private directories on Windows. See include/certrelay/win/secdir.h.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>
#include <string.h>
#include <wchar.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/svcacct.h"
#include "certrelay/win/wstr.h"

/* Modify (read, write, execute, delete; no WRITE_DAC or WRITE_OWNER) for the service SID. */
#define MODIFY_ACCESS      L"0x1301bf"
#define TOKEN_USER_BUFSIZE CRS_TOKEN_USER_BUFSIZE
/* The rights that let an account change a file or directory, or what it holds. */
#define WRITE_RIGHTS                                                                               \
    (FILE_WRITE_DATA | FILE_APPEND_DATA | FILE_WRITE_EA | FILE_WRITE_ATTRIBUTES |                  \
     FILE_DELETE_CHILD | DELETE | WRITE_DAC | WRITE_OWNER | GENERIC_WRITE | GENERIC_ALL)

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

int crs_win_private_sddl(const WCHAR *service, WCHAR *buf, size_t cap)
{
    WCHAR svc[CRS_SID_STRING_MAX], own[CRS_SID_STRING_MAX];
    int rc, n;

    if (buf == NULL || cap == 0)
        return CRS_EINVAL;
    buf[0] = L'\0';
    rc = crs_win_trusted_sid_strings(service, svc, own);
    if (rc != 0)
        return rc;
    n = _snwprintf(
        buf, cap,
        L"D:P(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)(A;OICI;FA;;;%ls)(A;OICI;" MODIFY_ACCESS L";;;%ls)",
        own, svc);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = L'\0';
        return CRS_ETOOBIG;
    }
    return 0;
}

/* Whether sid may own or write CertRelay's files: SYSTEM, Administrators, TrustedInstaller (owns
 * system folders), the service SID or our own account. */
static int sid_trusted(PSID sid, PSID svcsid, PSID own)
{
    BYTE ti[SECURITY_MAX_SID_SIZE];

    if (IsWellKnownSid(sid, WinLocalSystemSid) || IsWellKnownSid(sid, WinBuiltinAdministratorsSid))
        return 1;
    if ((svcsid != NULL && EqualSid(sid, svcsid)) || (own != NULL && EqualSid(sid, own)))
        return 1;
    return crs_win_service_sid(L"TrustedInstaller", (PSID)ti, sizeof(ti)) == 0 &&
           EqualSid(sid, (PSID)ti);
}

int crs_win_sd_check(PSECURITY_DESCRIPTOR sd, const WCHAR *service, const char **why)
{
    BYTE svcsid[SECURITY_MAX_SID_SIZE], userbuf[TOKEN_USER_BUFSIZE];
    PSID owner = NULL, own, svc = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    PACL dacl = NULL;
    DWORD i;

    *why = NULL;
    if (sd == NULL)
        return CRS_EINVAL;
    if (crs_win_service_sid(service != NULL ? service : CRS_SERVICE_NAMEW, (PSID)svcsid,
                            sizeof(svcsid)) == 0)
        svc = (PSID)svcsid;
    own = crs_win_own_account(userbuf);
    if (!GetSecurityDescriptorOwner(sd, &owner, &defaulted) || owner == NULL ||
        !sid_trusted(owner, svc, own)) {
        *why = "it is owned by an account other than SYSTEM, Administrators or the service";
        return CRS_EACCES;
    }
    if (!GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted))
        return crs_translate_sys_error((int)GetLastError());
    if (!present || dacl == NULL) {
        *why = "it has no access control list: everyone may write to it";
        return CRS_EACCES;
    }
    for (i = 0; i < dacl->AceCount; i++) {
        ACE_HEADER *h = NULL;
        ACCESS_ALLOWED_ACE *a;

        if (!GetAce(dacl, i, (void **)&h) || h->AceType != ACCESS_ALLOWED_ACE_TYPE ||
            (h->AceFlags & INHERIT_ONLY_ACE))
            continue;
        a = (ACCESS_ALLOWED_ACE *)h;
        if ((a->Mask & WRITE_RIGHTS) != 0 && !sid_trusted((PSID)&a->SidStart, svc, own)) {
            *why = "an account other than SYSTEM, Administrators or the service may write to it";
            return CRS_EACCES;
        }
    }
    return 0;
}

int crs_win_path_check(const char *path, const WCHAR *service, const char **why)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    WCHAR *w;
    DWORD err, attr;
    int rc;

    *why = NULL;
    w = to_wide(path);
    if (w == NULL)
        return CRS_ENOMEM;
    attr = GetFileAttributesW(w);
    if (attr == INVALID_FILE_ATTRIBUTES) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    if (attr & FILE_ATTRIBUTE_REPARSE_POINT) {
        *why = "it is a reparse point (a link or junction to somewhere else)";
        rc = CRS_EACCES;
        goto cleanup;
    }
    err = GetNamedSecurityInfoW(w, SE_FILE_OBJECT,
                                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION, NULL, NULL,
                                NULL, NULL, &sd);
    if (err != ERROR_SUCCESS) {
        rc = crs_translate_sys_error((int)err);
        goto cleanup;
    }
    rc = crs_win_sd_check(sd, service, why);

cleanup:
    if (sd != NULL)
        LocalFree(sd);
    crs_free(w);
    return rc;
}

/* Gives path the private descriptor (crs_win_private_sddl), protected from inheritance. */
int crs_win_set_dacl(HANDLE handle, const WCHAR *path, const WCHAR *sddl)
{
    PSECURITY_DESCRIPTOR sd = NULL;
    PACL dacl = NULL;
    BOOL present = FALSE, defaulted = FALSE;
    const SECURITY_INFORMATION what =
        DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION;
    DWORD err;
    int rc = 0;

    if ((handle == NULL && path == NULL) || sddl == NULL)
        return CRS_EINVAL;
    if (!ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1, &sd, NULL) ||
        !GetSecurityDescriptorDacl(sd, &present, &dacl, &defaulted) || !present) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    if (handle != NULL)
        err = SetSecurityInfo(handle, SE_KERNEL_OBJECT, what, NULL, NULL, dacl, NULL);
    else
        err = SetNamedSecurityInfoW((WCHAR *)path, SE_FILE_OBJECT, what, NULL, NULL, dacl, NULL);
    if (err != ERROR_SUCCESS)
        rc = crs_translate_sys_error((int)err);

cleanup:
    if (sd != NULL)
        LocalFree(sd);
    return rc;
}

/* Gives path the private descriptor (crs_win_private_sddl), protected from inheritance. */
static int set_private(const WCHAR *w)
{
    WCHAR sddl[512];
    int rc;

    rc = crs_win_private_sddl(NULL, sddl, sizeof(sddl) / sizeof(sddl[0]));
    return rc != 0 ? rc : crs_win_set_dacl(NULL, w, sddl);
}

int crs_win_dir_own(const char *dir, const char **why)
{
    WCHAR *w = NULL;
    DWORD attr;
    int rc;

    *why = NULL;
    if (dir == NULL || dir[0] == '\0')
        return CRS_EINVAL;
    rc = crs_win_mkdirs_private(dir);
    if (rc != 0 && rc != CRS_EACCES)
        return rc;
    w = to_wide(dir);
    if (w == NULL)
        return CRS_ENOMEM;
    attr = GetFileAttributesW(w);
    if (attr == INVALID_FILE_ATTRIBUTES || !(attr & FILE_ATTRIBUTE_DIRECTORY)) {
        *why = "it is not a directory";
        rc = CRS_EACCES;
        goto cleanup;
    }
    if (attr & FILE_ATTRIBUTE_REPARSE_POINT) {
        *why = "it is a reparse point (a link or junction to somewhere else)";
        rc = CRS_EACCES;
        goto cleanup;
    }
    /* A directory that is already safe is left alone: a service running as its virtual account
     * may write into its directories but not rewrite their ACLs. A foreign owner could give
     * itself access again whatever the DACL says: refuse it. A loose DACL is ours to repair. */
    rc = crs_win_path_check(dir, NULL, why);
    if (rc == 0 || (rc == CRS_EACCES && *why != NULL && strstr(*why, "owned by") != NULL))
        goto cleanup;
    *why = NULL;
    rc = set_private(w);
    if (rc != 0) {
        *why = "its access control list cannot be set";
        goto cleanup;
    }
    rc = crs_win_path_check(dir, NULL, why);

cleanup:
    crs_free(w);
    return rc;
}

int crs_win_make_private(const char *path)
{
    WCHAR *w = NULL;
    int rc = 0;

    w = to_wide(path);
    if (w == NULL)
        return CRS_ENOMEM;
    rc = set_private(w);

    if (rc != 0)
        crs_warn("cannot restrict %s to SYSTEM, Administrators and the service: %s", path,
                 crs_strerror(rc));
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
        rc = crs_win_make_private(top);
    crs_free(top);
    return rc;
}
