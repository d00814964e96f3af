/*
 * Service identities on Windows. See include/certrelay/win/svcacct.h.
 *
 * The service SID is defined by the SCM as S-1-5-80 followed by the five little-endian 32-bit
 * words of the SHA-1 digest of the service name, upper-cased, in UTF-16LE. Computing it avoids
 * LookupAccountName("NT SERVICE\..."), which fails while the service is not installed and which
 * Wine does not implement for that domain.
 */
#include <windows.h>
#include <bcrypt.h>
#include <sddl.h>
#include <string.h>
#include <wchar.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/win/svcacct.h"
#include "certrelay/win/wstr.h"

#ifndef NT_SUCCESS
#define NT_SUCCESS(status) (((NTSTATUS)(status)) >= 0)
#endif

#define SERVICE_NAME_MAX   256 /* the SCM's limit for a service name */
#define SHA1_LEN           20
#define TOKEN_USER_BUFSIZE CRS_TOKEN_USER_BUFSIZE

int crs_win_service_sid(const WCHAR *service, PSID sid, DWORD size)
{
    SID_IDENTIFIER_AUTHORITY nt = SECURITY_NT_AUTHORITY;
    BCRYPT_ALG_HANDLE alg = NULL;
    BCRYPT_HASH_HANDLE hash = NULL;
    WCHAR upper[SERVICE_NAME_MAX];
    UCHAR digest[SHA1_LEN];
    DWORD words[5];
    size_t len;
    int rc = CRS_EINTERNAL, i;

    if (service == NULL || sid == NULL || size < GetSidLengthRequired(6))
        return CRS_EINVAL;
    len = wcslen(service);
    if (len == 0 || len >= SERVICE_NAME_MAX)
        return CRS_EINVAL;
    /* The SCM upper-cases with the system's case table, not a C-locale toupper. */
    if (LCMapStringW(LOCALE_INVARIANT, LCMAP_UPPERCASE, service, (int)len, upper,
                     SERVICE_NAME_MAX) != (int)len)
        return CRS_EINVAL;
    if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA1_ALGORITHM, NULL, 0)))
        return CRS_EINTERNAL;
    if (!NT_SUCCESS(BCryptCreateHash(alg, &hash, NULL, 0, NULL, 0, 0)) ||
        !NT_SUCCESS(BCryptHashData(hash, (PUCHAR)upper, (ULONG)(len * sizeof(WCHAR)), 0)) ||
        !NT_SUCCESS(BCryptFinishHash(hash, digest, sizeof(digest), 0)))
        goto cleanup;
    for (i = 0; i < 5; i++)
        words[i] = (DWORD)digest[4 * i] | (DWORD)digest[4 * i + 1] << 8 |
                   (DWORD)digest[4 * i + 2] << 16 | (DWORD)digest[4 * i + 3] << 24;
    if (!InitializeSid(sid, &nt, 6))
        goto cleanup;
    *GetSidSubAuthority(sid, 0) = SECURITY_SERVICE_ID_BASE_RID;
    for (i = 0; i < 5; i++)
        *GetSidSubAuthority(sid, (DWORD)i + 1) = words[i];
    rc = 0;

cleanup:
    if (hash != NULL)
        BCryptDestroyHash(hash);
    BCryptCloseAlgorithmProvider(alg, 0);
    return rc;
}

int crs_win_service_pid(const WCHAR *service, DWORD *pid)
{
    SC_HANDLE scm = NULL, svc = NULL;
    SERVICE_STATUS_PROCESS st;
    DWORD need = 0;
    int rc;

    if (pid == NULL)
        return CRS_EINVAL;
    *pid = 0;
    if (service == NULL || service[0] == L'\0')
        return CRS_EINVAL;
    scm = OpenSCManagerW(NULL, NULL, SC_MANAGER_CONNECT);
    if (scm == NULL) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    svc = OpenServiceW(scm, service, SERVICE_QUERY_STATUS);
    if (svc == NULL) {
        DWORD err = GetLastError();
        rc = err == ERROR_SERVICE_DOES_NOT_EXIST ? CRS_ENOENT : crs_translate_sys_error((int)err);
        goto cleanup;
    }
    if (!QueryServiceStatusEx(svc, SC_STATUS_PROCESS_INFO, (BYTE *)&st, sizeof(st), &need)) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    if (st.dwCurrentState == SERVICE_STOPPED || st.dwProcessId == 0) {
        rc = CRS_ENOENT;
        goto cleanup;
    }
    *pid = st.dwProcessId;
    rc = 0;

cleanup:
    if (svc != NULL)
        CloseServiceHandle(svc);
    if (scm != NULL)
        CloseServiceHandle(scm);
    return rc;
}

static int token_user(HANDLE token, BYTE *buf, DWORD size, PSID *sid)
{
    DWORD len = 0;

    if (!GetTokenInformation(token, TokenUser, buf, size, &len))
        return 0;
    *sid = ((TOKEN_USER *)buf)->User.Sid;
    return 1;
}

PSID crs_win_own_account(BYTE buf[CRS_TOKEN_USER_BUFSIZE])
{
    HANDLE self = NULL;
    PSID own = NULL;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &self))
        return NULL;
    if (!token_user(self, buf, CRS_TOKEN_USER_BUFSIZE, &own))
        own = NULL;
    CloseHandle(self);
    return own;
}

int crs_win_account_sid(const char *account, PSID sid, DWORD size)
{
    WCHAR *w = NULL, domain[256];
    DWORD sidlen = size, domlen = 256;
    SID_NAME_USE use;
    PSID parsed = NULL;
    int rc = 0;

    if (account == NULL || account[0] == '\0' || sid == NULL)
        return CRS_EINVAL;
    rc = crs_win_wide(account, CRS_WSTR_STRICT, &w);
    if (rc != 0)
        return rc;
    if (_wcsnicmp(w, L"S-1-", 4) == 0) {
        if (!ConvertStringSidToSidW(w, &parsed) || !IsValidSid(parsed))
            rc = CRS_EINVAL;
        else if (!CopySid(size, sid, parsed))
            rc = CRS_ETOOBIG;
        if (parsed != NULL)
            LocalFree(parsed);
    } else if (!LookupAccountNameW(NULL, w, sid, &sidlen, domain, &domlen, &use)) {
        DWORD err = GetLastError();
        rc = err == ERROR_NONE_MAPPED ? CRS_ENOENT : crs_translate_sys_error((int)err);
    }
    crs_free(w);
    return rc;
}

int crs_win_sid_string(PSID sid, WCHAR *buf, size_t cap)
{
    WCHAR *s = NULL;
    int rc = 0;

    if (sid == NULL || buf == NULL || cap == 0)
        return CRS_EINVAL;
    if (!ConvertSidToStringSidW(sid, &s))
        return crs_translate_sys_error((int)GetLastError());
    if (wcslen(s) >= cap)
        rc = CRS_ETOOBIG;
    else
        memcpy(buf, s, (wcslen(s) + 1) * sizeof(WCHAR));
    LocalFree(s);
    return rc;
}

int crs_win_trusted_sid_strings(const WCHAR *service, WCHAR svc[CRS_SID_STRING_MAX],
                                WCHAR own[CRS_SID_STRING_MAX])
{
    BYTE svcsid[SECURITY_MAX_SID_SIZE], userbuf[TOKEN_USER_BUFSIZE];
    PSID user;
    int rc;

    rc = crs_win_service_sid(service != NULL ? service : CRS_SERVICE_NAMEW, (PSID)svcsid,
                             sizeof(svcsid));
    if (rc == 0)
        rc = crs_win_sid_string((PSID)svcsid, svc, CRS_SID_STRING_MAX);
    if (rc != 0)
        return rc;
    user = crs_win_own_account(userbuf);
    if (user == NULL)
        return crs_translate_sys_error((int)GetLastError());
    return crs_win_sid_string(user, own, CRS_SID_STRING_MAX);
}

/* Whether sid is the user of the calling process's own token. */
static int is_own_account(PSID sid)
{
    BYTE buf[TOKEN_USER_BUFSIZE];
    PSID own = crs_win_own_account(buf);

    return own != NULL && EqualSid(own, sid);
}

/* CheckTokenMembership wants an impersonation token; a process token is a primary one. */
static int token_in_admins(HANDLE token)
{
    BYTE sidbuf[SECURITY_MAX_SID_SIZE];
    DWORD sidlen = sizeof(sidbuf);
    HANDLE imp = NULL;
    BOOL member = FALSE;
    TOKEN_TYPE type;
    DWORD len = 0;

    if (!CreateWellKnownSid(WinBuiltinAdministratorsSid, NULL, sidbuf, &sidlen))
        return 0;
    if (GetTokenInformation(token, TokenType, &type, sizeof(type), &len) &&
        type == TokenImpersonation)
        return CheckTokenMembership(token, sidbuf, &member) && member;
    if (!DuplicateToken(token, SecurityIdentification, &imp))
        return 0;
    if (!CheckTokenMembership(imp, sidbuf, &member))
        member = FALSE;
    CloseHandle(imp);
    return member != FALSE;
}

int crs_win_token_trusted(HANDLE token, const WCHAR *service, int admins)
{
    BYTE userbuf[TOKEN_USER_BUFSIZE];
    BYTE svcsid[SECURITY_MAX_SID_SIZE];
    PSID user;

    if (token == NULL || !token_user(token, userbuf, sizeof(userbuf), &user))
        return 0;
    if (IsWellKnownSid(user, WinLocalSystemSid) || is_own_account(user))
        return 1;
    if (service != NULL && crs_win_service_sid(service, (PSID)svcsid, sizeof(svcsid)) == 0 &&
        EqualSid(user, (PSID)svcsid))
        return 1;
    return admins && token_in_admins(token);
}

int crs_win_process_trusted(DWORD pid, const WCHAR *service, int admins)
{
    HANDLE process, token = NULL;
    int ok = 0;

    process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (process == NULL)
        return 0;
    if (OpenProcessToken(process, TOKEN_QUERY | TOKEN_DUPLICATE, &token)) {
        ok = crs_win_token_trusted(token, service, admins);
        CloseHandle(token);
    }
    CloseHandle(process);
    return ok;
}
