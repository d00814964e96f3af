/*
 * The broker's own named-pipe listener (broker/win/pipe_listen.c) under Wine, driven through the
 * platform interface the server uses: a real loop, real pipe instances and real clients on
 * another thread. It checks that instances are created with PIPE_REJECT_REMOTE_CLIENTS (through
 * the mode the listener passes: Windows has no call that reads the flag back), that a second
 * listener on the same name is refused, that a burst of clients (more than the instances kept
 * waiting) are each handed over as a libuv stream that reads and writes, that a client using the remote syntax (\\localhost\pipe\...)
 * does not get in, and that closing frees everything (uv_loop_close succeeds) and removes the name.
 *
 * What Wine cannot show: it has no SMB redirector for pipes, so the \\localhost client fails
 * before any pipe server could refuse it; on Windows it is PIPE_REJECT_REMOTE_CLIENTS that refuses
 * it (ERROR_ACCESS_DENIED or ERROR_PIPE_BUSY). The assertion holds on both, for different reasons.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "check.h"
#include "certrelay/error.h"
#include "platform.h"
#include "win/pipe_listen.h"

/* More clients at once than the listener keeps instances waiting (four), so some find every
 * instance taken for a moment and wait for the next, as the stub does. */
#define NCLIENTS 10

struct fixture {
    uv_loop_t loop;
    struct crs_listener *l;
    char address[96];
    WCHAR wname[96];
    WCHAR wremote[96];
    uv_pipe_t conns[NCLIENTS];
    int naccepted;
    int nanswered;
    int nclosed;
    int listener_closed;
    /* Client thread results. */
    int client_ok[NCLIENTS];
    DWORD remote_error;
    HANDLE remote_handle;
};

static void on_conn_closed(uv_handle_t *h)
{
    struct fixture *f = h->loop->data;

    f->nclosed++;
}

static void on_listener_closed(void *arg)
{
    struct fixture *f = arg;

    f->listener_closed = 1;
}

static void on_alloc(uv_handle_t *h, size_t size, uv_buf_t *buf)
{
    static char mem[64];

    (void)h;
    (void)size;
    *buf = uv_buf_init(mem, sizeof(mem));
}

static void on_written(uv_write_t *req, int status)
{
    struct fixture *f = req->handle->loop->data;

    CHECK_EQ_INT(status, 0);
    free(req);
    if (++f->nanswered == NCLIENTS) {
        int i;

        for (i = 0; i < NCLIENTS; i++)
            uv_close((uv_handle_t *)&f->conns[i], on_conn_closed);
        crs_listen_close(f->l, on_listener_closed, f);
        f->l = NULL;
    }
}

/* Each client writes "ping"; the broker side answers "pong". */
static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    uv_write_t *req;
    uv_buf_t answer = uv_buf_init((char *)"pong", 4);

    if (n <= 0)
        return;
    CHECK(n == 4 && memcmp(buf->base, "ping", 4) == 0);
    uv_read_stop(s);
    req = malloc(sizeof(*req));
    CHECK(req != NULL);
    if (req != NULL)
        CHECK_EQ_INT(uv_write(req, s, &answer, 1, on_written), 0);
}

static void on_connection(struct crs_listener *l, int status, void *arg)
{
    struct fixture *f = arg;
    uv_pipe_t *conn;

    CHECK_EQ_INT(status, 0);
    CHECK(f->naccepted < NCLIENTS);
    if (status != 0 || f->naccepted >= NCLIENTS)
        return;
    conn = &f->conns[f->naccepted++];
    CHECK_EQ_INT(uv_pipe_init(&f->loop, conn, 0), 0);
    CHECK_EQ_INT(crs_listen_accept(l, conn), 0);
    CHECK_EQ_INT(uv_read_start((uv_stream_t *)conn, on_alloc, on_read), 0);
}

static void client_thread(void *arg)
{
    struct fixture *f = arg;
    HANDLE h[NCLIENTS];
    char answer[8];
    DWORD n;
    int i;

    /* The remote syntax first: refused (see the top of the file for what Wine shows). */
    f->remote_handle = CreateFileW(f->wremote, GENERIC_READ | GENERIC_WRITE, 0, NULL,
                                   OPEN_EXISTING, 0, NULL);
    f->remote_error = GetLastError();
    /* All clients connect before any speaks. */
    for (i = 0; i < NCLIENTS; i++) {
        int tries;

        h[i] = INVALID_HANDLE_VALUE;
        for (tries = 0; tries < 100 && h[i] == INVALID_HANDLE_VALUE; tries++) {
            WaitNamedPipeW(f->wname, 100);
            h[i] = CreateFileW(f->wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                               SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, NULL);
        }
    }
    for (i = 0; i < NCLIENTS; i++) {
        if (h[i] == INVALID_HANDLE_VALUE)
            continue;
        if (WriteFile(h[i], "ping", 4, &n, NULL) && n == 4 &&
            ReadFile(h[i], answer, 4, &n, NULL) && n == 4 && memcmp(answer, "pong", 4) == 0)
            f->client_ok[i] = 1;
        CloseHandle(h[i]);
    }
}

static void test_mode_rejects_remote(void)
{
    CHECK((CRS_LISTEN_PIPE_MODE & PIPE_REJECT_REMOTE_CLIENTS) != 0);
    CHECK((CRS_LISTEN_PIPE_MODE & PIPE_TYPE_MESSAGE) == 0);
}

static void fixture_names(struct fixture *f, const char *tag)
{
    snprintf(f->address, sizeof(f->address), "\\\\.\\pipe\\CertRelayListen-%s-%lu", tag,
             (unsigned long)GetCurrentProcessId());
    _snwprintf(f->wname, 96, L"\\\\.\\pipe\\CertRelayListen-%hs-%lu", tag,
               (unsigned long)GetCurrentProcessId());
    _snwprintf(f->wremote, 96, L"\\\\localhost\\pipe\\CertRelayListen-%hs-%lu", tag,
               (unsigned long)GetCurrentProcessId());
}

static void test_accept_and_close(void)
{
    static struct fixture f;
    struct crs_listener *second = (struct crs_listener *)1;
    uv_thread_t client;
    uv_pipe_t extra;
    int i;

    memset(&f, 0, sizeof(f));
    fixture_names(&f, "accept");
    CHECK_EQ_INT(uv_loop_init(&f.loop), 0);
    f.loop.data = &f;
    CHECK_EQ_INT(crs_listen_bind(&f.loop, f.address, NULL, &f.l), 0);
    if (f.l == NULL)
        return;
    /* The name is owned from the bind on: a second listener is refused. */
    CHECK_EQ_INT(crs_listen_bind(&f.loop, f.address, NULL, &second), CRS_EADDRINUSE);
    CHECK(second == NULL);
    CHECK_EQ_INT(crs_listen_start(f.l, on_connection, &f), 0);
    /* No client yet: nothing to accept. */
    CHECK_EQ_INT(uv_pipe_init(&f.loop, &extra, 0), 0);
    CHECK_EQ_INT(crs_listen_accept(f.l, &extra), CRS_EAGAIN);
    uv_close((uv_handle_t *)&extra, NULL);
    CHECK_EQ_INT(uv_thread_create(&client, client_thread, &f), 0);
    CHECK_EQ_INT(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    uv_thread_join(&client);
    CHECK_EQ_INT(f.naccepted, NCLIENTS);
    CHECK_EQ_INT(f.nanswered, NCLIENTS);
    CHECK_EQ_INT(f.nclosed, NCLIENTS);
    CHECK(f.listener_closed);
    for (i = 0; i < NCLIENTS; i++)
        CHECK(f.client_ok[i]);
    CHECK(f.remote_handle == INVALID_HANDLE_VALUE);
    printf("# a client using \\\\localhost\\pipe\\... was refused with error %lu\n",
           (unsigned long)f.remote_error);
    if (f.remote_handle != INVALID_HANDLE_VALUE)
        CloseHandle(f.remote_handle);
    /* Everything closed: no handle left on the loop, and the name is gone. */
    CHECK_EQ_INT(uv_loop_close(&f.loop), 0);
    CHECK(!WaitNamedPipeW(f.wname, 1) && GetLastError() == ERROR_FILE_NOT_FOUND);
}

/* A listener bound but never started (the broker failed to open its queue) closes cleanly. */
static void test_close_unstarted(void)
{
    static struct fixture f;

    memset(&f, 0, sizeof(f));
    fixture_names(&f, "unstarted");
    CHECK_EQ_INT(uv_loop_init(&f.loop), 0);
    f.loop.data = &f;
    CHECK_EQ_INT(crs_listen_bind(&f.loop, f.address, NULL, &f.l), 0);
    CHECK(WaitNamedPipeW(f.wname, 1));
    crs_listen_close(f.l, on_listener_closed, &f);
    crs_listen_close(NULL, on_listener_closed, &f);
    CHECK_EQ_INT(uv_run(&f.loop, UV_RUN_DEFAULT), 0);
    CHECK(f.listener_closed);
    CHECK_EQ_INT(uv_loop_close(&f.loop), 0);
    CHECK(!WaitNamedPipeW(f.wname, 1) && GetLastError() == ERROR_FILE_NOT_FOUND);
}

static void test_bad_arguments(void)
{
    uv_loop_t loop;
    struct crs_listener *l = (struct crs_listener *)1;

    CHECK_EQ_INT(uv_loop_init(&loop), 0);
    CHECK_EQ_INT(crs_listen_bind(&loop, "not-a-pipe", NULL, &l), CRS_EINVAL);
    CHECK(l == NULL);
    CHECK_EQ_INT(crs_listen_bind(NULL, "\\\\.\\pipe\\x", NULL, &l), CRS_EINVAL);
    CHECK_EQ_INT(crs_listen_bind(&loop, "\\\\.\\pipe\\x", NULL, NULL), CRS_EINVAL);
    CHECK_EQ_INT(crs_listen_start(NULL, on_connection, NULL), CRS_EINVAL);
    CHECK_EQ_INT(crs_listen_accept(NULL, NULL), CRS_EINVAL);
    CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void)
{
    test_mode_rejects_remote();
    test_bad_arguments();
    test_close_unstarted();
    test_accept_and_close();
    return CHECK_DONE();
}
