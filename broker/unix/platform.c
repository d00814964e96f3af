/*
 * POSIX half of the broker (see broker/platform.h): signal dispositions, threadpool sizing and
 * the Unix socket listener with its stale-socket probe and owner-only permissions.
 */
#include "platform.h"

#include <errno.h>
#include <signal.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "server.h"

struct crs_listener {
    uv_pipe_t pipe;
    crs_listen_cb cb;
    void *arg;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

int crs_platform_init(unsigned threads)
{
    struct rlimit nofile;
    char buf[16];

    signal(SIGPIPE, SIG_IGN);
    /* Every connection is a descriptor: make room for the server's connection limit (the soft
     * limit is often 1024) so the limit, not EMFILE, decides who is served. */
    if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max &&
        nofile.rlim_cur < 4096) {
        nofile.rlim_cur = nofile.rlim_max < 4096 ? nofile.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &nofile);
    }
    if (threads > 0 && getenv("UV_THREADPOOL_SIZE") == NULL) {
        if (threads > 128)
            threads = 128;
        snprintf(buf, sizeof(buf), "%u", threads);
        if (setenv("UV_THREADPOOL_SIZE", buf, 0) != 0)
            return crs_translate_sys_error(errno);
    }
    return 0;
}

/* Creates the socket's directory (0700 when we create it) so a fresh default path works. */
static int listen_make_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir;
    int rc;

    if (slash == NULL || slash == path)
        return 0;
    dir = crs_strndup(path, (size_t)(slash - path));
    if (dir == NULL)
        return CRS_ENOMEM;
    rc = crs_fs_mkdirs(dir);
    if (rc != 0)
        crs_error("cannot create the socket directory %s: %s", dir, crs_strerror(rc));
    crs_free(dir);
    return rc;
}

/*
 * Something at path: a broker answering (in use), a socket nobody answers (stale, left by a
 * crash or kill -9: removed), or not a socket at all (refused: we never delete what we did not
 * create).
 */
static int listen_probe(const char *path)
{
    struct sockaddr_un sa;
    struct stat st;
    int fd, rc, err;

    if (lstat(path, &st) != 0)
        return errno == ENOENT ? 0 : crs_translate_sys_error(errno);
    if (!S_ISSOCK(st.st_mode)) {
        crs_error("%s exists and is not a socket; refusing to replace it", path);
        return CRS_EEXIST;
    }
    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return crs_translate_sys_error(errno);
    do {
        rc = connect(fd, (struct sockaddr *)&sa, sizeof(sa));
    } while (rc != 0 && errno == EINTR);
    err = errno;
    close(fd);
    if (rc == 0) {
        crs_error("another broker is listening on %s; not starting", path);
        return CRS_EADDRINUSE;
    }
    if (err == ECONNREFUSED) {
        crs_info("removing stale socket %s left by a previous run", path);
        if (unlink(path) != 0 && errno != ENOENT) {
            crs_error("cannot remove stale socket %s: %s", path, strerror(errno));
            return crs_translate_sys_error(errno);
        }
        return 0;
    }
    if (err == ENOENT)
        return 0;
    crs_error("cannot probe %s: %s", path, strerror(err));
    return crs_translate_sys_error(err);
}

static void listen_closed(uv_handle_t *h)
{
    struct crs_listener *l = h->data;

    if (l->closed_cb != NULL)
        l->closed_cb(l->closed_arg);
    crs_free(l);
}

/* Binds l's socket: created with mode 0600, after the stale-socket probe. */
static int listen_bind_socket(struct crs_listener *l, const char *address)
{
    struct sockaddr_un sa;
    mode_t old;
    int rc;

    if (strlen(address) >= sizeof(sa.sun_path)) {
        crs_error("socket path %s is too long (at most %zu bytes)", address,
                  sizeof(sa.sun_path) - 1);
        return CRS_EINVAL;
    }
    rc = listen_make_parent(address);
    if (rc != 0)
        return rc;
    rc = listen_probe(address);
    if (rc != 0)
        return rc;
    /* The socket is created with mode 0600 from the start, not chmod-ed after bind, so there is
     * no moment in which another account could connect. The broker binds before any threadpool
     * work creates files, so the brief process-wide umask change affects nothing else. */
    old = umask(0177);
    rc = uv_pipe_bind(&l->pipe, address);
    umask(old);
    if (rc == UV_EADDRINUSE) {
        crs_error("another broker is listening on %s; not starting", address);
        return CRS_EADDRINUSE;
    }
    if (rc != 0) {
        crs_error("cannot bind %s: %s", address, uv_strerror(rc));
        return crs_translate_sys_error(-rc);
    }
    if (chmod(address, 0600) != 0)
        crs_warn("cannot restrict %s to mode 0600: %s", address, strerror(errno));
    return 0;
}

int crs_listen_bind(uv_loop_t *loop, const char *address, const char *ca_account,
                    struct crs_listener **out)
{
    struct crs_listener *l;
    int rc;

    (void)ca_account;
    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || address == NULL || address[0] == '\0')
        return CRS_EINVAL;
    l = crs_calloc(1, sizeof(*l));
    if (l == NULL)
        return CRS_ENOMEM;
    rc = uv_pipe_init(loop, &l->pipe, 0);
    if (rc != 0) {
        crs_free(l);
        return crs_from_uv_error(rc);
    }
    l->pipe.data = l;
    rc = listen_bind_socket(l, address);
    if (rc != 0) {
        uv_close((uv_handle_t *)&l->pipe, listen_closed);
        return rc;
    }
    *out = l;
    return 0;
}

static void listen_on_connection(uv_stream_t *stream, int status)
{
    struct crs_listener *l = stream->data;

    l->cb(l, status == 0 ? 0 : crs_from_uv_error(status), l->arg);
}

int crs_listen_start(struct crs_listener *l, crs_listen_cb cb, void *arg)
{
    int rc;

    if (l == NULL || cb == NULL)
        return CRS_EINVAL;
    l->cb = cb;
    l->arg = arg;
    rc = uv_listen((uv_stream_t *)&l->pipe, 128, listen_on_connection);
    if (rc != 0) {
        crs_error("cannot listen: %s", uv_strerror(rc));
        return crs_from_uv_error(rc);
    }
    return 0;
}

int crs_listen_accept(struct crs_listener *l, uv_pipe_t *conn)
{
    int rc;

    if (l == NULL || conn == NULL)
        return CRS_EINVAL;
    rc = uv_accept((uv_stream_t *)&l->pipe, (uv_stream_t *)conn);
    return rc == 0 ? 0 : crs_from_uv_error(rc);
}

/* Closing a bound Unix listener also removes its socket file (libuv does it), so stubs see
 * "no broker" at once and spool instead of waiting for their timeout. */
void crs_listen_close(struct crs_listener *l, void (*closed_cb)(void *arg), void *arg)
{
    if (l == NULL)
        return;
    l->closed_cb = closed_cb;
    l->closed_arg = arg;
    uv_close((uv_handle_t *)&l->pipe, listen_closed);
}

/* ca_account is a Windows setting: here the socket's mode and the uid check decide. */
int crs_listen_client_authorized(uv_pipe_t *conn, const char *ca_account)
{
    struct ucred cred;
    socklen_t len = sizeof(cred);
    uv_os_fd_t fd;

    if (uv_fileno((uv_handle_t *)conn, &fd) != 0 ||
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
        crs_warn("cannot identify a connecting client: %s", strerror(errno));
        return 0;
    }
    if (cred.uid == geteuid() || cred.uid == 0)
        return 1;
    crs_warn("refused a client running as uid %lu (pid %ld): only the broker's own account and "
             "root may submit events",
             (unsigned long)cred.uid, (long)cred.pid);
    return 0;
}
