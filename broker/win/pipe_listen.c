/*
 * The broker's named-pipe listener on Windows (see broker/platform.h).
 *
 * libuv's pipe server creates its instances itself with flags nobody can change, so it cannot
 * pass PIPE_REJECT_REMOTE_CLIENTS, nor a security descriptor at creation. This listener creates
 * every instance itself:
 *
 *   CreateNamedPipeW(name, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED [| FILE_FLAG_FIRST_PIPE_INSTANCE],
 *                    CRS_LISTEN_PIPE_MODE (byte mode, PIPE_REJECT_REMOTE_CLIENTS), ...,
 *                    the protected descriptor of crs_pipe_sddl)
 *
 * The first instance is created at bind time, so the name is owned from then on. Once started,
 * a dedicated thread keeps LISTEN_PENDING instances waiting in overlapped ConnectNamedPipe and
 * sleeps in WaitForMultipleObjects on their events and a stop event. A connected instance goes
 * on the ready list (at most LISTEN_READY_MAX; beyond that it is closed, which the client sees
 * as a broken pipe and spools) and uv_async wakes the loop, where crs_listen_accept turns it
 * into a libuv stream with uv_pipe_open; the thread creates a fresh instance in its slot.
 *
 * Stopping sets the stop event; the thread cancels its pending connects, waits for each
 * cancellation to complete (the OVERLAPPED must outlive it), closes its instances and returns.
 * The loop joins it, closes the clients nobody accepted, and the name disappears with the last
 * handle. The thread never logs; it reports a failure to create an instance through the loop.
 */
#include <windows.h>
#include <io.h>
#include <sddl.h>
#include <string.h>

#include "pipe_listen.h"
#include "pipe_auth.h"
#include "platform.h"
#include "server.h"
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "certrelay/text.h"
#include "certrelay/win/svcacct.h"
#include "certrelay/win/wstr.h"

#define PIPE_PREFIX "\\\\.\\pipe\\"
/* CreateNamedPipe's limit for the whole name, prefix included. */
#define PIPE_NAME_MAX 256
/* Instances waiting for a client at any time, so that a burst of stubs finds one free. */
#define LISTEN_PENDING 4
/* Connected clients waiting for the loop to accept them. */
#define LISTEN_READY_MAX 64
#define LISTEN_BUFSIZE 65536
/* How long the thread waits before retrying when it could not create an instance. */
#define LISTEN_RETRY_MS 1000

struct crs_listener {
    uv_loop_t *loop;
    uv_async_t async;
    uv_thread_t thread;
    int thread_started;
    HANDLE stop_event;
    WCHAR name[PIPE_NAME_MAX];
    PSECURITY_DESCRIPTOR sd;
    /* Owned by the thread while it runs (slot 0 holds the first instance from bind). */
    HANDLE pending[LISTEN_PENDING];
    OVERLAPPED ov[LISTEN_PENDING];
    int armed[LISTEN_PENDING];
    /* Shared with the thread, under lock. */
    uv_mutex_t lock;
    HANDLE ready[LISTEN_READY_MAX];
    size_t nready;
    int thread_error; /* a CRS_E* code the loop has not reported yet */
    unsigned long dropped; /* connected clients closed because the ready list was full */
    unsigned long accepted; /* loop thread only: clients crs_listen_accept has taken */
    crs_listen_cb cb;
    void *arg;
    void (*closed_cb)(void *arg);
    void *closed_arg;
};

/* Creates one instance of l's pipe; first: the one that must own the name. */
static HANDLE listen_create_instance(struct crs_listener *l, int first)
{
    SECURITY_ATTRIBUTES sa;
    DWORD open_mode = PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED;

    if (first)
        open_mode |= FILE_FLAG_FIRST_PIPE_INSTANCE;
    sa.nLength = sizeof(sa);
    sa.lpSecurityDescriptor = l->sd;
    sa.bInheritHandle = FALSE;
    return CreateNamedPipeW(l->name, open_mode, CRS_LISTEN_PIPE_MODE, PIPE_UNLIMITED_INSTANCES,
                            LISTEN_BUFSIZE, LISTEN_BUFSIZE, 0, &sa);
}

/*
 * Whether some process already serves the pipe name. WaitNamedPipe answers without connecting,
 * so the broker that owns the name sees nothing: it succeeds when an instance is free, fails
 * with ERROR_SEM_TIMEOUT when all are busy and ERROR_FILE_NOT_FOUND when there is no such pipe.
 * The timeout is 1 ms because 0 means "the pipe's default timeout".
 */
static int listen_name_in_use(const WCHAR *name)
{
    if (WaitNamedPipeW(name, 1))
        return 1;
    return GetLastError() == ERROR_SEM_TIMEOUT || GetLastError() == ERROR_PIPE_BUSY;
}

/* ---- The connect thread ---- */

/* Moves slot i's connected instance to the ready list and wakes the loop. */
static void listen_deliver(struct crs_listener *l, int i)
{
    HANDLE h = l->pending[i];

    l->pending[i] = NULL;
    l->armed[i] = 0;
    uv_mutex_lock(&l->lock);
    if (l->nready < LISTEN_READY_MAX) {
        l->ready[l->nready++] = h;
        h = NULL;
    } else {
        l->dropped++;
    }
    uv_mutex_unlock(&l->lock);
    if (h != NULL)
        CloseHandle(h);
    uv_async_send(&l->async);
}

static void listen_report(struct crs_listener *l, int err)
{
    uv_mutex_lock(&l->lock);
    if (l->thread_error == 0)
        l->thread_error = err;
    uv_mutex_unlock(&l->lock);
    uv_async_send(&l->async);
}

/* Fills empty slots and starts a connect on each idle instance. 1 when a slot stays empty. */
static int listen_arm(struct crs_listener *l)
{
    int i, short_of_instances = 0;

    for (i = 0; i < LISTEN_PENDING; i++) {
        if (l->pending[i] == NULL) {
            HANDLE h = listen_create_instance(l, 0);

            if (h == INVALID_HANDLE_VALUE) {
                listen_report(l, crs_translate_sys_error((int)GetLastError()));
                short_of_instances = 1;
                continue;
            }
            l->pending[i] = h;
        }
        if (l->armed[i])
            continue;
        ResetEvent(l->ov[i].hEvent);
        if (ConnectNamedPipe(l->pending[i], &l->ov[i])) {
            listen_deliver(l, i);
            i--; /* refill this slot */
            continue;
        }
        switch (GetLastError()) {
        case ERROR_IO_PENDING:
            l->armed[i] = 1;
            break;
        case ERROR_PIPE_CONNECTED: /* the client came between create and connect */
            listen_deliver(l, i);
            i--;
            break;
        default: /* e.g. ERROR_NO_DATA: the client came and went; start afresh */
            CloseHandle(l->pending[i]);
            l->pending[i] = NULL;
            short_of_instances = 1;
            break;
        }
    }
    return short_of_instances;
}

static void listen_thread(void *arg)
{
    struct crs_listener *l = arg;
    HANDLE events[LISTEN_PENDING + 1];
    int slot[LISTEN_PENDING + 1];
    DWORD n, w, bytes;
    int i, retry;

    for (;;) {
        retry = listen_arm(l);
        events[0] = l->stop_event;
        n = 1;
        for (i = 0; i < LISTEN_PENDING; i++) {
            if (l->armed[i]) {
                slot[n] = i;
                events[n++] = l->ov[i].hEvent;
            }
        }
        w = WaitForMultipleObjects(n, events, FALSE, retry ? LISTEN_RETRY_MS : INFINITE);
        if (w == WAIT_OBJECT_0)
            break;
        if (w == WAIT_TIMEOUT)
            continue;
        if (w == WAIT_FAILED || w >= WAIT_OBJECT_0 + n) {
            listen_report(l, crs_translate_sys_error((int)GetLastError()));
            if (WaitForSingleObject(l->stop_event, LISTEN_RETRY_MS) == WAIT_OBJECT_0)
                break;
            continue;
        }
        i = slot[w - WAIT_OBJECT_0];
        if (GetOverlappedResult(l->pending[i], &l->ov[i], &bytes, FALSE)) {
            listen_deliver(l, i);
        } else {
            /* The client vanished before it was served: this instance is spent. */
            CloseHandle(l->pending[i]);
            l->pending[i] = NULL;
            l->armed[i] = 0;
        }
    }
    /* Stopping: the pending connects were started by this thread, so CancelIo reaches them. */
    for (i = 0; i < LISTEN_PENDING; i++) {
        if (l->pending[i] == NULL)
            continue;
        if (l->armed[i]) {
            CancelIo(l->pending[i]);
            GetOverlappedResult(l->pending[i], &l->ov[i], &bytes, TRUE);
            l->armed[i] = 0;
        }
        CloseHandle(l->pending[i]);
        l->pending[i] = NULL;
    }
}

/* ---- The loop side ---- */

static void listen_free(struct crs_listener *l)
{
    int i;

    for (i = 0; i < LISTEN_PENDING; i++) {
        if (l->pending[i] != NULL)
            CloseHandle(l->pending[i]);
        if (l->ov[i].hEvent != NULL)
            CloseHandle(l->ov[i].hEvent);
    }
    while (l->nready > 0)
        CloseHandle(l->ready[--l->nready]);
    if (l->stop_event != NULL)
        CloseHandle(l->stop_event);
    if (l->sd != NULL)
        LocalFree(l->sd);
    uv_mutex_destroy(&l->lock);
    crs_free(l);
}

static void listen_closed(uv_handle_t *h)
{
    struct crs_listener *l = h->data;
    void (*cb)(void *) = l->closed_cb;
    void *arg = l->closed_arg;

    listen_free(l);
    if (cb != NULL)
        cb(arg);
}

static void listen_async_cb(uv_async_t *async)
{
    struct crs_listener *l = async->data;
    unsigned long dropped, accepted;
    size_t waiting;
    int err;

    uv_mutex_lock(&l->lock);
    err = l->thread_error;
    l->thread_error = 0;
    dropped = l->dropped;
    l->dropped = 0;
    uv_mutex_unlock(&l->lock);
    if (dropped > 0)
        crs_warn("%lu clients were turned away: %u already wait to be accepted", dropped,
                 (unsigned)LISTEN_READY_MAX);
    if (err != 0 && l->cb != NULL)
        l->cb(l, err, l->arg);
    for (;;) {
        uv_mutex_lock(&l->lock);
        waiting = l->nready;
        uv_mutex_unlock(&l->lock);
        if (waiting == 0 || l->cb == NULL)
            break;
        /* Counted here, not by the ready list's length, which the thread may grow meanwhile. */
        accepted = l->accepted;
        l->cb(l, 0, l->arg);
        if (l->accepted == accepted) {
            /* The server did not take it (out of memory, or stopping): turn it away. */
            HANDLE h = NULL;

            uv_mutex_lock(&l->lock);
            if (l->nready > 0) {
                h = l->ready[0];
                memmove(&l->ready[0], &l->ready[1], (l->nready - 1) * sizeof(l->ready[0]));
                l->nready--;
            }
            uv_mutex_unlock(&l->lock);
            if (h != NULL)
                CloseHandle(h);
        }
    }
}

int crs_listen_bind(uv_loop_t *loop, const char *address, const char *ca_account,
                    struct crs_listener **out)
{
    struct crs_listener *l = NULL;
    WCHAR sddl[512];
    HANDLE first;
    DWORD err;
    int rc, i, mutex_ok = 0;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || address == NULL || address[0] == '\0')
        return CRS_EINVAL;
    if (crs_ascii_ncasecmp(address, PIPE_PREFIX, strlen(PIPE_PREFIX)) != 0 ||
        address[strlen(PIPE_PREFIX)] == '\0' || strlen(address) >= PIPE_NAME_MAX) {
        crs_error("listen = %s is not a pipe name such as \\\\.\\pipe\\CertRelay", address);
        return CRS_EINVAL;
    }
    l = crs_calloc(1, sizeof(*l));
    if (l == NULL)
        return CRS_ENOMEM;
    l->loop = loop;
    if (crs_win_wide_buf(address, strlen(address), 0, l->name, PIPE_NAME_MAX) <= 0) {
        crs_error("listen = %s is not a valid pipe name", address);
        rc = CRS_EINVAL;
        goto cleanup;
    }
    if (uv_mutex_init(&l->lock) != 0) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    mutex_ok = 1;
    rc = crs_pipe_sddl(CRS_SERVICE_NAMEW, ca_account, sddl, sizeof(sddl) / sizeof(sddl[0]));
    if (rc == 0 && !ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, SDDL_REVISION_1,
                                                                         &l->sd, NULL))
        rc = crs_translate_sys_error((int)GetLastError());
    if (rc != 0) {
        crs_error("cannot build the security descriptor of the pipe %s: %s; not starting",
                  address, crs_strerror(rc));
        goto cleanup;
    }
    l->stop_event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (l->stop_event == NULL) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    for (i = 0; i < LISTEN_PENDING; i++) {
        l->ov[i].hEvent = CreateEventW(NULL, TRUE, FALSE, NULL);
        if (l->ov[i].hEvent == NULL) {
            rc = crs_translate_sys_error((int)GetLastError());
            goto cleanup;
        }
    }
    /* Wine ignores FILE_FLAG_FIRST_PIPE_INSTANCE (it opens the existing pipe and says so only
     * through ERROR_ALREADY_EXISTS), so the name is probed first and that code checked too. On
     * Windows the flag makes the creation fail with ERROR_ACCESS_DENIED. */
    first = INVALID_HANDLE_VALUE;
    err = ERROR_ACCESS_DENIED;
    if (!listen_name_in_use(l->name)) {
        SetLastError(ERROR_SUCCESS);
        first = listen_create_instance(l, 1);
        err = GetLastError();
        if (first != INVALID_HANDLE_VALUE && err == ERROR_ALREADY_EXISTS) {
            CloseHandle(first);
            first = INVALID_HANDLE_VALUE;
            err = ERROR_ACCESS_DENIED;
        }
    }
    if (first == INVALID_HANDLE_VALUE) {
        if (err == ERROR_ACCESS_DENIED || err == ERROR_PIPE_BUSY) {
            crs_error("another process already owns the pipe %s (another broker?); not starting",
                      address);
            rc = CRS_EADDRINUSE;
        } else {
            rc = crs_translate_sys_error((int)err);
            crs_error("cannot create the pipe %s: %s", address, crs_strerror(rc));
        }
        goto cleanup;
    }
    l->pending[0] = first;
    rc = uv_async_init(loop, &l->async, listen_async_cb);
    if (rc != 0) {
        rc = crs_from_uv_error(rc);
        goto cleanup;
    }
    l->async.data = l;
    *out = l;
    return 0;

cleanup:
    if (!mutex_ok) {
        crs_free(l);
        return rc;
    }
    listen_free(l);
    return rc;
}

int crs_listen_start(struct crs_listener *l, crs_listen_cb cb, void *arg)
{
    int rc;

    if (l == NULL || cb == NULL || l->thread_started)
        return CRS_EINVAL;
    l->cb = cb;
    l->arg = arg;
    rc = uv_thread_create(&l->thread, listen_thread, l);
    if (rc != 0) {
        l->cb = NULL;
        return crs_from_uv_error(rc);
    }
    l->thread_started = 1;
    return 0;
}

int crs_listen_accept(struct crs_listener *l, uv_pipe_t *conn)
{
    HANDLE h;
    int fd, rc;

    if (l == NULL || conn == NULL)
        return CRS_EINVAL;
    uv_mutex_lock(&l->lock);
    if (l->nready == 0) {
        uv_mutex_unlock(&l->lock);
        return CRS_EAGAIN;
    }
    h = l->ready[0];
    memmove(&l->ready[0], &l->ready[1], (l->nready - 1) * sizeof(l->ready[0]));
    l->nready--;
    uv_mutex_unlock(&l->lock);
    l->accepted++;
    /* libuv 1.44's uv_pipe_open takes a C runtime descriptor and closes it with the stream. */
    fd = _open_osfhandle((intptr_t)h, 0);
    if (fd < 0) {
        CloseHandle(h);
        return CRS_EIO;
    }
    rc = uv_pipe_open(conn, fd);
    if (rc != 0) {
        _close(fd);
        return crs_from_uv_error(rc);
    }
    /* For descriptors 0 to 2 libuv keeps a duplicate of the handle and forgets the descriptor
     * (a service may have no standard streams, so ours can be one of those): close ours. */
    if (fd <= 2)
        _close(fd);
    return 0;
}

void crs_listen_close(struct crs_listener *l, void (*closed_cb)(void *arg), void *arg)
{
    if (l == NULL)
        return;
    l->closed_cb = closed_cb;
    l->closed_arg = arg;
    l->cb = NULL;
    if (l->thread_started) {
        SetEvent(l->stop_event);
        uv_thread_join(&l->thread);
        l->thread_started = 0;
    }
    uv_close((uv_handle_t *)&l->async, listen_closed);
}
