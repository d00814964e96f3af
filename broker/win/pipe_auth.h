/*
 * Who may talk to the broker on Windows. Two locks: the pipe's own descriptor, set when it is
 * created (crs_pipe_lock_down), and a check of every client's token (crs_pipe_client_authorized).
 */
#ifndef CERTRELAY_BROKER_WIN_PIPE_AUTH_H
#define CERTRELAY_BROKER_WIN_PIPE_AUTH_H

#include <windows.h>
#include <uv.h>

/*
 * The pipe's descriptor in SDDL, into buf (cap characters): protected, full control for SYSTEM,
 * BUILTIN\Administrators, the service SID of `service`, the broker's own account and ca_account
 * (the configured CA account, a SID or name; NULL: none), nothing for Everyone or Anonymous, and
 * NETWORK denied outright, a second lock behind the PIPE_REJECT_REMOTE_CLIENTS the listener
 * creates every instance with (pipe_listen.c). 0 or a negative CRS_E* code.
 */
int crs_pipe_sddl(const WCHAR *service, const char *ca_account, WCHAR *buf, size_t cap);

/* Gives the pipe (any instance's handle: instances share one descriptor) the descriptor of
 * crs_pipe_sddl. 0 or a negative CRS_E* code. */
int crs_pipe_lock_down(HANDLE pipe, const WCHAR *service, const char *ca_account);

/*
 * Returns 1 when the client at the other end of the pipe, judged by its token (the server
 * impersonates it for a moment after its first bytes were read), runs as LocalSystem, as an
 * enabled member of BUILTIN\Administrators, under the broker's service SID, the broker's own
 * account or ca_account (when set); 0 otherwise, after logging the client's process id and the reason. Its process id is
 * only logged, never trusted: a process id can be reused, a token cannot be borrowed.
 */
int crs_pipe_client_authorized(uv_pipe_t *conn, const char *ca_account);

#endif
