/*
 * The stub's client end of the broker pipe: a blocking byte stream whose every step is bounded
 * by an absolute deadline on the monotonic clock (crs_mono_ms). One implementation per platform,
 * as libuv does it: stub/unix/transport.c (AF_UNIX stream socket) and stub/win/transport.c
 * (named pipe with overlapped I/O).
 *
 * The stub core owns framing and the protocol; a transport only moves bytes. A connection is used
 * by one thread at a time (the core's pool hands it out), so no function here locks.
 *
 * Errors are translated here, at the platform boundary, into the few codes the core acts on:
 *   CRS_ECONNREFUSED  nobody listens at the address (broker absent or not started yet)
 *   CRS_ETIMEDOUT     the deadline passed before the step completed
 *   CRS_ECLOSED       the broker closed the connection (or reset it)
 *   CRS_EINVAL        the address cannot be used (too long, not valid UTF-8)
 *   CRS_EPEERAUTH     the server end is not the broker service (Windows: see crs__transport_open)
 *   CRS_EIO, CRS_ENOMEM and others as they come.
 */
#ifndef CERTRELAY_STUB_TRANSPORT_H
#define CERTRELAY_STUB_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct crs_transport;

/*
 * Connects to address (a socket path, or a pipe name such as \\.\pipe\CertRelay), waiting at most
 * until deadline_ms for the broker to accept.
 *
 * service names the broker's Windows service. When it is set, the Windows transport accepts the
 * pipe only when its server process is the process the Service Control Manager reports for that
 * service and runs under a trusted account (LocalSystem, the service SID, or our own); anything
 * else fails with CRS_EPEERAUTH before a byte is written, and *server_pid (when not NULL) names
 * the process that was refused. NULL skips the check (the simulator). On Unix the socket's
 * directory permissions decide who can listen, and service is ignored.
 */
int crs__transport_open(const char *address, const char *service, uint64_t deadline_ms,
                        struct crs_transport **out, uint32_t *server_pid);

/* Writes all len bytes, or fails. After a failure the connection's state is unknown: close it. */
int crs__transport_write_all(struct crs_transport *t, const void *data, size_t len,
                             uint64_t deadline_ms);

/* Reads at least one byte and at most cap into buf (*got set). CRS_ECLOSED at end of stream. */
int crs__transport_read(struct crs_transport *t, void *buf, size_t cap, size_t *got,
                        uint64_t deadline_ms);

/*
 * Tells, without blocking, whether an idle pooled connection still looks usable: 1 when the
 * broker has neither closed it nor sent anything unasked, 0 otherwise. A broker that restarted
 * while the connection sat in the pool is caught here before the event is written to it.
 */
int crs__transport_idle_ok(struct crs_transport *t);

/* Closes and frees. NULL is a no-op. */
void crs__transport_close(struct crs_transport *t);

#endif
