/*
 * The broker's pipe security on Windows. See pipe_auth.h.
 *
 * The client is judged by its token, taken with ImpersonateNamedPipeClient, which works once
 * data has been read from the pipe (the stub opens it with SECURITY_IDENTIFICATION, enough to
 * query the token and nothing more). Impersonation lasts only for the OpenThreadToken call; a
 * failure to revert would leave the loop thread running as the client, so it ends the process.
 */
#include <windows.h>
#include <aclapi.h>
#include <sddl.h>
#include <stdio.h>

#include "pipe_auth.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "certrelay/win/secdir.h"
#include "certrelay/win/svcacct.h"

int crs_pipe_sddl(const WCHAR *service, const char *ca_account, WCHAR *buf, size_t cap)
{
    BYTE casid[SECURITY_MAX_SID_SIZE];
    WCHAR svc[CRS_SID_STRING_MAX], own[CRS_SID_STRING_MAX], ca[CRS_SID_STRING_MAX + 16];
    int rc, n;

    if (service == NULL || buf == NULL || cap == 0)
        return CRS_EINVAL;
    buf[0] = L'\0';
    rc = crs_win_trusted_sid_strings(service, svc, own);
    if (rc != 0)
        return rc;
    ca[0] = L'\0';
    if (ca_account != NULL) {
        WCHAR s[CRS_SID_STRING_MAX];

        rc = crs_win_account_sid(ca_account, (PSID)casid, sizeof(casid));
        if (rc == 0)
            rc = crs_win_sid_string((PSID)casid, s, CRS_SID_STRING_MAX);
        if (rc != 0)
            return rc;
        _snwprintf(ca, CRS_SID_STRING_MAX + 16, L"(A;;GA;;;%ls)", s);
        ca[CRS_SID_STRING_MAX + 15] = L'\0';
    }
    n = _snwprintf(buf, cap,
                   L"D:P(D;;GA;;;NU)(A;;GA;;;SY)(A;;GA;;;BA)(A;;GA;;;%ls)(A;;GA;;;%ls)%ls", svc,
                   own, ca);
    if (n < 0 || (size_t)n >= cap) {
        buf[0] = L'\0';
        return CRS_ETOOBIG;
    }
    return 0;
}

int crs_pipe_lock_down(HANDLE pipe, const WCHAR *service, const char *ca_account)
{
    WCHAR sddl[512];
    int rc;

    rc = crs_pipe_sddl(service, ca_account, sddl, sizeof(sddl) / sizeof(sddl[0]));
    return rc != 0 ? rc : crs_win_set_dacl(pipe, NULL, sddl);
}

/* Whether token's user is the configured CA account. */
static int token_is_account(HANDLE token, const char *account)
{
    BYTE sid[SECURITY_MAX_SID_SIZE], userbuf[CRS_TOKEN_USER_BUFSIZE];
    DWORD len = 0;

    if (account == NULL || crs_win_account_sid(account, (PSID)sid, sizeof(sid)) != 0)
        return 0;
    if (!GetTokenInformation(token, TokenUser, userbuf, sizeof(userbuf), &len))
        return 0;
    return EqualSid(((TOKEN_USER *)userbuf)->User.Sid, (PSID)sid) != 0;
}

int crs_pipe_client_authorized(uv_pipe_t *conn, const char *ca_account)
{
    uv_os_fd_t fd;
    ULONG pid = 0;
    HANDLE token = NULL;
    const char *why = NULL;
    int ok = 0;

    if (conn == NULL || uv_fileno((uv_handle_t *)conn, &fd) != 0) {
        crs_warn("refusing a connection: its pipe handle is not available");
        return 0;
    }
    (void)GetNamedPipeClientProcessId((HANDLE)fd, &pid); /* for the log only */
    if (!ImpersonateNamedPipeClient((HANDLE)fd)) {
        why = "its identity cannot be taken from the pipe";
        goto cleanup;
    }
    if (!OpenThreadToken(GetCurrentThread(), TOKEN_QUERY | TOKEN_DUPLICATE, TRUE, &token))
        token = NULL;
    if (!RevertToSelf()) {
        crs_error("cannot stop impersonating a pipe client (error %lu): exiting",
                  (unsigned long)GetLastError());
        ExitProcess(1);
    }
    if (token == NULL) {
        why = "its access token cannot be read";
        goto cleanup;
    }
    if (crs_win_token_trusted(token, CRS_SERVICE_NAMEW, 1) || token_is_account(token, ca_account))
        ok = 1;
    else
        why = "it runs neither as LocalSystem, nor as an elevated administrator, nor as the "
              "broker's own account or the configured ca_account";

cleanup:
    if (!ok)
        crs_warn("refusing a connection from process %lu: %s", (unsigned long)pid, why);
    if (token != NULL)
        CloseHandle(token);
    return ok;
}
