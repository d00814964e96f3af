/*
 * The broker's platform half, one implementation per OS as libuv arranges it:
 * broker/unix/platform.c and broker/win/platform.c. Everything else in broker/ is portable.
 */
#ifndef CERTRELAY_BROKER_PLATFORM_H
#define CERTRELAY_BROKER_PLATFORM_H

#include <uv.h>

/*
 * Process setup before the loop runs: on Unix, ignore SIGPIPE (a stub that vanishes must not
 * kill the broker) and size libuv's threadpool (UV_THREADPOOL_SIZE, unless the environment
 * already sets it) to `threads`, so that file writes cannot starve the commit job.
 */
int crs_platform_init(unsigned threads);

/*
 * Binds pipe to address so that only the broker's own account can connect (on Windows also
 * SYSTEM, Administrators, the service SID and ca_account when set; NULL: none). If something already
 * answers there, returns CRS_EADDRINUSE without touching it; a stale Unix socket left by a crash
 * (nobody answers) is removed first. Other failures return a CRS_E* code; every failure is logged.
 */
int crs_listen_bind(uv_pipe_t *pipe, const char *address, const char *ca_account);

/*
 * Checks who is at the other end of a connection, as a second line of defence behind the
 * permissions set at bind time. The server asks once the connection's first bytes have been read
 * and before it parses any. On Unix the peer's uid must be the broker's own or root
 * (SO_PEERCRED); on Windows the client's token must be LocalSystem, an elevated Administrator,
 * the broker's service SID or own account (broker/win/pipe_auth.c). Returns 1 to admit, 0 to
 * refuse (logged).
 */
int crs_listen_client_authorized(uv_pipe_t *conn, const char *ca_account);

#endif
