/*
 * The stub's transport on Unix: an AF_UNIX stream socket in non-blocking mode, every wait done
 * with poll() for the time left before the caller's deadline. The stub runs inside its host's
 * process, so it must neither block past the deadline nor let a vanished broker raise SIGPIPE.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "../transport.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* Platforms without it get SO_NOSIGPIPE below. */
#endif

struct crs_transport {
    int fd;
};

/* Maps the errno values a client socket can see to the codes the core acts on. */
static int transport_error(int err)
{
    switch (err) {
    case ECONNREFUSED:
    case ENOENT:
    case ENOTDIR:
        return CRS_ECONNREFUSED;
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN:
        return CRS_ECLOSED;
    case ETIMEDOUT:
        return CRS_ETIMEDOUT;
    case ENOMEM:
    case ENOBUFS:
        return CRS_ENOMEM;
    case EACCES:
    case EPERM:
        return CRS_EACCES;
    default:
        return CRS_EIO;
    }
}

/*
 * Waits for events on fd until the deadline. Returns 0 when poll reported something (the caller
 * retries its operation, which then reports any error), CRS_ETIMEDOUT when the time is up.
 */
static int transport_wait(int fd, short events, uint64_t deadline_ms)
{
    for (;;) {
        uint64_t now = crs_mono_ms();
        if (now >= deadline_ms)
            return CRS_ETIMEDOUT;
        uint64_t left = deadline_ms - now;
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, left > 60000 ? 60000 : (int)left);
        if (n > 0)
            return 0;
        if (n < 0 && errno != EINTR)
            return transport_error(errno);
    }
}

static int transport_socket(void)
{
    int fd;
#if defined(SOCK_CLOEXEC) && defined(SOCK_NONBLOCK)
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0)
        return -1;
#else
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (fcntl(fd, F_SETFD, FD_CLOEXEC) < 0 ||
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
#endif
#ifdef SO_NOSIGPIPE
    int one = 1;
    (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
    return fd;
}

/*
 * A non-blocking connect on an AF_UNIX socket either completes at once, fails at once, or (on
 * Linux, when the listener's backlog is full) fails with EAGAIN: then the broker is busy, not
 * absent, so we retry with short pauses until the deadline. EINPROGRESS is handled too for
 * systems that report it.
 */
int crs__transport_open(const char *address, const char *service, uint64_t deadline_ms,
                        struct crs_transport **out, uint32_t *server_pid)
{
    struct crs_transport *t = NULL;
    struct sockaddr_un sa;
    int fd = -1;
    int rc;

    (void)service;
    if (server_pid != NULL)
        *server_pid = 0;
    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (address == NULL || address[0] == '\0' || strlen(address) >= sizeof(sa.sun_path))
        return CRS_EINVAL;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, address, strlen(address) + 1);

    for (;;) {
        fd = transport_socket();
        if (fd < 0) {
            rc = transport_error(errno);
            goto cleanup;
        }
        if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
            break;
        if (errno == EINPROGRESS) {
            rc = transport_wait(fd, POLLOUT, deadline_ms);
            if (rc != 0)
                goto cleanup;
            int soerr = 0;
            socklen_t slen = sizeof(soerr);
            if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) < 0)
                soerr = errno;
            if (soerr == 0)
                break;
            rc = transport_error(soerr);
            goto cleanup;
        }
        if (errno != EAGAIN && errno != EINTR) {
            rc = transport_error(errno);
            goto cleanup;
        }
        /* Backlog full: pause a little (bounded by the deadline) and try a fresh socket. */
        close(fd);
        fd = -1;
        uint64_t now = crs_mono_ms();
        if (now >= deadline_ms) {
            rc = CRS_ETIMEDOUT;
            goto cleanup;
        }
        uint64_t left = deadline_ms - now;
        (void)poll(NULL, 0, left < 5 ? (int)left : 5);
    }

    t = crs_malloc(sizeof(*t));
    if (t == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    t->fd = fd;
    fd = -1;
    *out = t;
    rc = 0;

cleanup:
    if (fd >= 0)
        close(fd);
    return rc;
}

int crs__transport_write_all(struct crs_transport *t, const void *data, size_t len,
                             uint64_t deadline_ms)
{
    const uint8_t *p = data;

    if (t == NULL || (data == NULL && len > 0))
        return CRS_EINVAL;
    while (len > 0) {
        ssize_t n = send(t->fd, p, len, MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int rc = transport_wait(t->fd, POLLOUT, deadline_ms);
            if (rc != 0)
                return rc;
            continue;
        }
        return n == 0 ? CRS_ECLOSED : transport_error(errno);
    }
    return 0;
}

int crs__transport_read(struct crs_transport *t, void *buf, size_t cap, size_t *got,
                        uint64_t deadline_ms)
{
    if (got != NULL)
        *got = 0;
    if (t == NULL || buf == NULL || cap == 0 || got == NULL)
        return CRS_EINVAL;
    for (;;) {
        ssize_t n = recv(t->fd, buf, cap, 0);
        if (n > 0) {
            *got = (size_t)n;
            return 0;
        }
        if (n == 0)
            return CRS_ECLOSED;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            int rc = transport_wait(t->fd, POLLIN, deadline_ms);
            if (rc != 0)
                return rc;
            continue;
        }
        return transport_error(errno);
    }
}

/* An idle connection must have nothing to read: readable means either end of stream (the broker
 * went away) or bytes nobody asked for, and both make the connection unusable. */
int crs__transport_idle_ok(struct crs_transport *t)
{
    if (t == NULL)
        return 0;
    struct pollfd pfd = {.fd = t->fd, .events = POLLIN};
    int n;
    do {
        n = poll(&pfd, 1, 0);
    } while (n < 0 && errno == EINTR);
    if (n < 0)
        return 0;
    return n == 0;
}

void crs__transport_close(struct crs_transport *t)
{
    if (t == NULL)
        return;
    close(t->fd);
    crs_free(t);
}
