/*
 * Who may talk to the broker on Windows. The pipe's default DACL already limits write access to
 * SYSTEM, Administrators and the broker's own account (see platform.c); this is the second
 * check, made on every accepted connection, so that a pipe created with a looser descriptor in
 * some future libuv, or a client holding a handle opened for reading only, still cannot submit
 * events.
 */
#ifndef CERTRELAY_BROKER_WIN_PIPE_AUTH_H
#define CERTRELAY_BROKER_WIN_PIPE_AUTH_H

#include <uv.h>

/*
 * Returns 1 when the process at the other end of the accepted pipe runs as LocalSystem, as a
 * member of BUILTIN\Administrators (an elevated token: the group must be enabled), or under the
 * broker's own account; 0 otherwise, after logging the client's process id and the reason. The
 * caller closes a connection for which it returns 0 without reading from it.
 */
int crs_pipe_client_authorized(uv_pipe_t *conn);

#endif
