/*
 * The stub's transport on Windows: a named-pipe client opened for overlapped I/O so that every
 * read and write can be abandoned at the caller's deadline. certsrv waits for Notify to return,
 * so a broker that stops reading must never hold the CA: a timed-out operation is cancelled with
 * CancelIoEx and its completion collected before the buffer is given back.
 *
 * The pipe is opened with SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION: certsrv runs as
 * SYSTEM, and without it whoever created the pipe first could impersonate SYSTEM.
 *
 * Any local process can create a pipe of any free name, so before a byte is sent the server end
 * is authenticated (transport_verify_server): its process must be the one the Service Control
 * Manager runs the broker service in, under a trusted account. Otherwise an impostor holding
 * \\.\pipe\CertRelay while the service is stopped would receive every certificate and
 * acknowledge it, and the events would never be spooled.
 */
#include <windows.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/win/svcacct.h"
#include "certrelay/win/wstr.h"
#include "../transport.h"

/* One overlapped operation moves at most this much, well inside a DWORD. */
#define TRANSPORT_CHUNK (1u << 20)

struct crs_transport {
    HANDLE pipe;
    HANDLE event; /* manual-reset, signalled when the operation in flight completes */
};

/* Maps the Win32 errors a pipe client can see to the codes the core acts on. */
static int transport_error(DWORD err)
{
    switch (err) {
    case ERROR_FILE_NOT_FOUND:
    case ERROR_PATH_NOT_FOUND:
        return CRS_ECONNREFUSED;
    case ERROR_BROKEN_PIPE:
    case ERROR_NO_DATA:
    case ERROR_PIPE_NOT_CONNECTED:
    case ERROR_NETNAME_DELETED:
        return CRS_ECLOSED;
    case ERROR_SEM_TIMEOUT:
    case WAIT_TIMEOUT:
        return CRS_ETIMEDOUT;
    case ERROR_NOT_ENOUGH_MEMORY:
    case ERROR_OUTOFMEMORY:
        return CRS_ENOMEM;
    case ERROR_ACCESS_DENIED:
        return CRS_EACCES;
    case ERROR_INVALID_NAME:
    case ERROR_BAD_PATHNAME:
        return CRS_EINVAL;
    default:
        return CRS_EIO;
    }
}

/* Milliseconds left before the deadline, or 0 when it has passed. */
static DWORD transport_left(uint64_t deadline_ms)
{
    uint64_t now = crs_mono_ms();
    if (now >= deadline_ms)
        return 0;
    uint64_t left = deadline_ms - now;
    return left > 0x7fffffffu ? 0x7fffffffu : (DWORD)left;
}

/*
 * Whether the server end of pipe is the broker service: GetNamedPipeServerProcessId must equal
 * the process id the SCM reports for the service (a pid cannot be reused while the server's end,
 * and so its process, is alive), and that process must run as LocalSystem, the service SID or our
 * own account. 0, or CRS_EPEERAUTH with *server_pid naming the refused process.
 */
static int transport_verify_server(HANDLE pipe, const char *service, uint32_t *server_pid)
{
    WCHAR wservice[257];
    ULONG pid = 0;
    DWORD spid = 0;

    if (crs_win_wide_buf(service, strlen(service), 0, wservice, 257) <= 0)
        return CRS_EINVAL;
    if (!GetNamedPipeServerProcessId(pipe, &pid))
        return CRS_EPEERAUTH;
    *server_pid = (uint32_t)pid;
    if (crs_win_service_pid(wservice, &spid) != 0 || spid != pid)
        return CRS_EPEERAUTH;
    if (!crs_win_process_trusted(pid, wservice, 0))
        return CRS_EPEERAUTH;
    return 0;
}

/*
 * Opens the pipe. ERROR_PIPE_BUSY means the broker exists but every instance is taken: wait for
 * one with WaitNamedPipeW for the time left (never 0, which would mean "the default wait") and
 * try again. ERROR_FILE_NOT_FOUND means no broker.
 */
int crs__transport_open(const char *address, const char *service, uint64_t deadline_ms,
                        struct crs_transport **out, uint32_t *server_pid)
{
    struct crs_transport *t = NULL;
    WCHAR *wname = NULL;
    HANDLE pipe = INVALID_HANDLE_VALUE;
    uint32_t pid = 0;
    int rc;

    if (server_pid != NULL)
        *server_pid = 0;
    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (address == NULL || address[0] == '\0')
        return CRS_EINVAL;

    rc = crs_win_wide(address, CRS_WSTR_STRICT, &wname);
    if (rc != 0)
        goto cleanup;

    for (;;) {
        pipe = CreateFileW(wname, GENERIC_READ | GENERIC_WRITE, 0, NULL, OPEN_EXISTING,
                           FILE_FLAG_OVERLAPPED | SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION,
                           NULL);
        if (pipe != INVALID_HANDLE_VALUE)
            break;
        DWORD err = GetLastError();
        if (err != ERROR_PIPE_BUSY) {
            rc = transport_error(err);
            goto cleanup;
        }
        DWORD left = transport_left(deadline_ms);
        if (left == 0) {
            rc = CRS_ETIMEDOUT;
            goto cleanup;
        }
        /* A failed wait (timeout, or the pipe vanished) is judged by the next CreateFileW or
         * by the deadline check above. */
        (void)WaitNamedPipeW(wname, left);
    }
    if (service != NULL && service[0] != '\0') {
        rc = transport_verify_server(pipe, service, &pid);
        if (rc != 0) {
            if (server_pid != NULL)
                *server_pid = pid;
            goto cleanup;
        }
    }

    t = crs_calloc(1, sizeof(*t));
    if (t == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    t->event = CreateEventW(NULL, TRUE, FALSE, NULL);
    if (t->event == NULL) {
        rc = transport_error(GetLastError());
        goto cleanup;
    }
    t->pipe = pipe;
    pipe = INVALID_HANDLE_VALUE;
    *out = t;
    t = NULL;
    rc = 0;

cleanup:
    if (pipe != INVALID_HANDLE_VALUE)
        CloseHandle(pipe);
    if (t != NULL) {
        if (t->event != NULL)
            CloseHandle(t->event);
        crs_free(t);
    }
    crs_free(wname);
    return rc;
}

/*
 * Waits for the overlapped operation started on t to finish before the deadline. On timeout the
 * operation is cancelled and its completion awaited, because the kernel may still be writing into
 * the caller's buffer until then.
 */
static int transport_finish(struct crs_transport *t, OVERLAPPED *ov, DWORD *done,
                            uint64_t deadline_ms)
{
    DWORD w = WaitForSingleObject(t->event, transport_left(deadline_ms));
    if (w == WAIT_OBJECT_0) {
        if (!GetOverlappedResult(t->pipe, ov, done, FALSE))
            return transport_error(GetLastError());
        return 0;
    }
    /* Even when the operation completed in the race with the cancel, the caller has no time
     * left for the rest and the connection is abandoned either way. */
    (void)CancelIoEx(t->pipe, ov);
    (void)GetOverlappedResult(t->pipe, ov, done, TRUE);
    return w == WAIT_TIMEOUT ? CRS_ETIMEDOUT : CRS_EIO;
}

/* Starts one overlapped operation (read or write) and waits for it within the deadline. */
static int transport_io(struct crs_transport *t, int writing, void *buf, DWORD len, DWORD *done,
                        uint64_t deadline_ms)
{
    OVERLAPPED ov;
    BOOL ok;

    *done = 0;
    memset(&ov, 0, sizeof(ov));
    ov.hEvent = t->event;
    ResetEvent(t->event);
    if (writing)
        ok = WriteFile(t->pipe, buf, len, NULL, &ov);
    else
        ok = ReadFile(t->pipe, buf, len, NULL, &ov);
    if (!ok) {
        DWORD err = GetLastError();
        if (err != ERROR_IO_PENDING && !(err == ERROR_MORE_DATA && !writing))
            return transport_error(err);
    }
    /* Even a synchronous success signals the event and sets the OVERLAPPED's byte count. */
    return transport_finish(t, &ov, done, deadline_ms);
}

int crs__transport_write_all(struct crs_transport *t, const void *data, size_t len,
                             uint64_t deadline_ms)
{
    const uint8_t *p = data;

    if (t == NULL || (data == NULL && len > 0))
        return CRS_EINVAL;
    while (len > 0) {
        DWORD chunk = len > TRANSPORT_CHUNK ? TRANSPORT_CHUNK : (DWORD)len;
        DWORD done = 0;
        int rc = transport_io(t, 1, (void *)p, chunk, &done, deadline_ms);
        if (rc != 0)
            return rc;
        if (done == 0)
            return CRS_ECLOSED;
        p += done;
        len -= done;
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
    DWORD want = cap > TRANSPORT_CHUNK ? TRANSPORT_CHUNK : (DWORD)cap;
    DWORD done = 0;
    int rc = transport_io(t, 0, buf, want, &done, deadline_ms);
    if (rc != 0)
        return rc;
    if (done == 0)
        return CRS_ECLOSED;
    *got = done;
    return 0;
}

/* PeekNamedPipe never blocks: it fails once the broker closed its end, and reports any bytes the
 * broker sent unasked; both make an idle connection unusable. */
int crs__transport_idle_ok(struct crs_transport *t)
{
    DWORD avail = 0;

    if (t == NULL)
        return 0;
    if (!PeekNamedPipe(t->pipe, NULL, 0, NULL, &avail, NULL))
        return 0;
    return avail == 0;
}

void crs__transport_close(struct crs_transport *t)
{
    if (t == NULL)
        return;
    CloseHandle(t->pipe);
    CloseHandle(t->event);
    crs_free(t);
}
