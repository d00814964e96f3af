/*
 * Who a CertRelay process is on Windows: the broker service's process id as the Service Control
 * Manager reports it, the service's own SID (NT SERVICE\<name>), and whether a process or a token
 * runs under an account CertRelay trusts. The exit module uses them to authenticate the broker
 * before it sends a byte; the broker uses them for its pipe's descriptor and its client check.
 */
#ifndef CERTRELAY_WIN_SVCACCT_H
#define CERTRELAY_WIN_SVCACCT_H

#include <windows.h>

/* The default name of the broker's service. */
#define CRS_SERVICE_NAME  "CertRelay"
#define CRS_SERVICE_NAMEW L"CertRelay"

/*
 * The service SID of `service` (S-1-5-80-<SHA-1 of the upper-cased name>), the account of the
 * virtual account NT SERVICE\<service> and of a service whose SID type is unrestricted. The SID
 * is computed, not looked up, so it works before the service exists. sid must hold
 * SECURITY_MAX_SID_SIZE bytes. 0 or a negative CRS_E* code.
 */
int crs_win_service_sid(const WCHAR *service, PSID sid, DWORD size);

/*
 * The process id of the running (or starting, or stopping) service, as QueryServiceStatusEx
 * reports it; CRS_ENOENT when the service does not exist or has no process (stopped). 0 or a
 * negative CRS_E* code; *pid is 0 on error.
 */
int crs_win_service_pid(const WCHAR *service, DWORD *pid);

/*
 * Whether token's user is one CertRelay trusts as the broker (or, on the broker's side, as a
 * client): LocalSystem, the service SID of `service`, or the account of the calling process
 * itself (a process under our own account can already do whatever we can; in certsrv that is
 * LocalSystem, and under Wine every process shares one account). With `admins`, members of
 * BUILTIN\Administrators (an enabled group) are trusted as well. 1 trusted, 0 not.
 */
int crs_win_token_trusted(HANDLE token, const WCHAR *service, int admins);

/* crs_win_token_trusted for the primary token of process pid. 0 also when it cannot be read. */
int crs_win_process_trusted(DWORD pid, const WCHAR *service, int admins);

/* Room for a TOKEN_USER with the largest SID: the buffer crs_win_own_account fills. */
#define CRS_TOKEN_USER_BUFSIZE (sizeof(TOKEN_USER) + SECURITY_MAX_SID_SIZE)

/* The account of the calling process (its token's user), pointing into buf; NULL on failure. */
PSID crs_win_own_account(BYTE buf[CRS_TOKEN_USER_BUFSIZE]);

/*
 * The SID of account, given as a SID string ("S-1-5-21-...") or an account name
 * ("CONTOSO\svc-ca", looked up with LookupAccountName), into sid (SECURITY_MAX_SID_SIZE bytes).
 * 0, CRS_ENOENT (no such account), or another negative CRS_E* code.
 */
int crs_win_account_sid(const char *account, PSID sid, DWORD size);

/* Room for any SID as a string. */
#define CRS_SID_STRING_MAX 192

/* The service SID of service (NULL: CertRelay) and our own account as strings, for SDDL. */
int crs_win_trusted_sid_strings(const WCHAR *service, WCHAR svc[CRS_SID_STRING_MAX],
                                WCHAR own[CRS_SID_STRING_MAX]);

/* sid as a string ("S-1-5-18") into buf of cap characters. 0 or a negative CRS_E* code. */
int crs_win_sid_string(PSID sid, WCHAR *buf, size_t cap);

#endif
