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
 * The listener: where stubs connect. Unix binds a socket with uv_pipe_bind and listens with
 * uv_listen; Windows creates each named-pipe instance itself (broker/win/pipe_listen.c) so that
 * it can pass PIPE_REJECT_REMOTE_CLIENTS and its security descriptor at creation, which libuv's
 * own pipe server cannot. The server sees the same shape on both: a callback per waiting client
 * and crs_listen_accept, as uv_listen and uv_accept.
 */
struct crs_listener;

/* Called on the loop thread when a client waits (status 0: take it with crs_listen_accept) or
 * when the listener failed (a negative CRS_E* code; it keeps trying). */
typedef void (*crs_listen_cb)(struct crs_listener *l, int status, void *arg);

/*
 * Creates a listener on loop bound to address so that only the broker's own account can connect
 * (on Windows also SYSTEM, Administrators, the service SID and ca_account when set; NULL: none),
 * into *out. If something already answers there, returns CRS_EADDRINUSE without touching it; a
 * stale Unix socket left by a crash (nobody answers) is removed first. Other failures return a
 * CRS_E* code; every failure is logged, and *out is NULL on failure.
 */
int crs_listen_bind(uv_loop_t *loop, const char *address, const char *ca_account,
                    struct crs_listener **out);

/* Starts accepting: cb(l, 0, arg) for each waiting client. 0 or a negative CRS_E* code. */
int crs_listen_start(struct crs_listener *l, crs_listen_cb cb, void *arg);

/*
 * Hands the waiting client to conn, which the caller has set up with uv_pipe_init on the
 * listener's loop: conn becomes a connected stream that the caller reads, writes and closes.
 * 0, CRS_EAGAIN when no client waits, or another negative CRS_E* code.
 */
int crs_listen_accept(struct crs_listener *l, uv_pipe_t *conn);

/*
 * Stops listening and frees l: closing its handles, and the clients not yet accepted. The name
 * is gone when closed_cb(arg) runs on the loop (a Unix socket file is removed). l NULL: no-op.
 */
void crs_listen_close(struct crs_listener *l, void (*closed_cb)(void *arg), void *arg);

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
