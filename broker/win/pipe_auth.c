/*
 * Client check for accepted pipe connections. See pipe_auth.h.
 *
 * The client is identified by its process (GetNamedPipeClientProcessId) rather than by
 * impersonation: ImpersonateNamedPipeClient works only after data has been read from the pipe,
 * and the decision belongs before the first byte is parsed. The process cannot exit and have its
 * id reused while its end of the pipe is still open, so the id names the right process.
 */
#include <windows.h>

#include "pipe_auth.h"
#include "certrelay/log.h"

/* Enough for a TOKEN_USER with the largest SID. */
#define TOKEN_USER_BUFSIZE (sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE)

static int token_user_sid(HANDLE token, BYTE *buf, DWORD size, PSID *sid)
{
    DWORD len = 0;

    if (!GetTokenInformation(token, TokenUser, buf, size, &len))
        return 0;
    *sid = ((TOKEN_USER *)buf)->User.Sid;
    return 1;
}

/* Whether the client's token user is our own (the broker talking to itself, or an operator
 * running the broker and a tool under one account in --console mode). */
static int same_user_as_us(PSID client)
{
    BYTE buf[TOKEN_USER_BUFSIZE];
    HANDLE self = NULL;
    PSID sid;
    int same = 0;

    if (!OpenProcessToken(GetCurrentProcess(), TOKEN_QUERY, &self))
        return 0;
    if (token_user_sid(self, buf, sizeof(buf), &sid))
        same = EqualSid(sid, client) != 0;
    CloseHandle(self);
    return same;
}

/* CheckTokenMembership wants an impersonation token; a process token is a primary one. */
static int token_in_group(HANDLE primary, WELL_KNOWN_SID_TYPE group)
{
    BYTE sidbuf[SECURITY_MAX_SID_SIZE];
    DWORD sidlen = sizeof(sidbuf);
    HANDLE imp = NULL;
    BOOL member = FALSE;

    if (!CreateWellKnownSid(group, NULL, sidbuf, &sidlen))
        return 0;
    if (!DuplicateToken(primary, SecurityIdentification, &imp))
        return 0;
    if (!CheckTokenMembership(imp, sidbuf, &member))
        member = FALSE;
    CloseHandle(imp);
    return member != FALSE;
}

int crs_pipe_client_authorized(uv_pipe_t *conn)
{
    BYTE userbuf[TOKEN_USER_BUFSIZE];
    uv_os_fd_t fd;
    ULONG pid = 0;
    HANDLE process = NULL, token = NULL;
    PSID user;
    const char *why = NULL;
    int ok = 0;

    if (conn == NULL || uv_fileno((uv_handle_t *)conn, &fd) != 0) {
        crs_warn("refusing a connection: its pipe handle is not available");
        return 0;
    }
    if (!GetNamedPipeClientProcessId((HANDLE)fd, &pid)) {
        crs_warn("refusing a connection: the client's process id is unknown (error %lu)",
                 (unsigned long)GetLastError());
        return 0;
    }
    process = OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, FALSE, pid);
    if (process == NULL) {
        why = "its process cannot be inspected";
        goto cleanup;
    }
    if (!OpenProcessToken(process, TOKEN_QUERY | TOKEN_DUPLICATE, &token)) {
        why = "its access token cannot be read";
        goto cleanup;
    }
    if (!token_user_sid(token, userbuf, sizeof(userbuf), &user)) {
        why = "its user cannot be read";
        goto cleanup;
    }
    if (IsWellKnownSid(user, WinLocalSystemSid) || same_user_as_us(user) ||
        token_in_group(token, WinBuiltinAdministratorsSid))
        ok = 1;
    else
        why = "it runs neither as LocalSystem nor as an elevated administrator";

cleanup:
    if (!ok)
        crs_warn("refusing a connection from process %lu: %s", (unsigned long)pid, why);
    if (token != NULL)
        CloseHandle(token);
    if (process != NULL)
        CloseHandle(process);
    return ok;
}
