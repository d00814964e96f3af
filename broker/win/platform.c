/*
 * Windows half of the broker (see broker/platform.h): threadpool sizing and the named-pipe
 * listener.
 *
 * Pipe security. libuv (src/win/pipe.c, pipe_alloc_accept) creates every instance with
 * CreateNamedPipeW(..., lpSecurityAttributes = NULL), which gives the pipe the default
 * descriptor (read access for Everyone and Anonymous among others), but opens it with WRITE_DAC.
 * Right after the bind the descriptor is replaced by an explicit, protected one (pipe_auth.c:
 * SYSTEM, Administrators, the service SID and the broker's own account; NETWORK denied); later
 * instances share it. Each client's token is checked once more (pipe_auth.c). The first instance is created with FILE_FLAG_FIRST_PIPE_INSTANCE, which
 * fails with ERROR_ACCESS_DENIED when the name exists already; libuv reports that as
 * UV_EADDRINUSE. Wine ignores that flag (its CreateNamedPipeW opens the existing pipe and
 * reports ERROR_ALREADY_EXISTS only through GetLastError, which libuv does not look at), so the
 * name is also probed before binding. A named pipe disappears with the last handle to it, so
 * unlike a Unix socket there is never a stale name to clean up after a crash.
 */
#include <windows.h>
#include <string.h>
#include <wchar.h>

#include "platform.h"
#include "pipe_auth.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "certrelay/text.h"
#include "certrelay/win/svcacct.h"
#include "certrelay/win/wstr.h"

#define PIPE_PREFIX "\\\\.\\pipe\\"
/* CreateNamedPipe's limit for the whole name, prefix included. */
#define PIPE_NAME_MAX 256

int crs_platform_init(unsigned threads)
{
    WCHAR buf[16];

    /* libuv reads UV_THREADPOOL_SIZE with GetEnvironmentVariableW when the pool first starts. */
    if (threads > 0 && GetEnvironmentVariableW(L"UV_THREADPOOL_SIZE", NULL, 0) == 0) {
        if (threads > 128)
            threads = 128;
        _snwprintf(buf, sizeof(buf) / sizeof(buf[0]), L"%u", threads);
        buf[sizeof(buf) / sizeof(buf[0]) - 1] = L'\0';
        if (!SetEnvironmentVariableW(L"UV_THREADPOOL_SIZE", buf))
            return crs_translate_sys_error((int)GetLastError());
    }
    return 0;
}

/*
 * Whether some process already serves the pipe name. WaitNamedPipe answers without connecting,
 * so the broker that owns the name sees nothing: it succeeds when an instance is free, fails
 * with ERROR_SEM_TIMEOUT when all are busy and ERROR_FILE_NOT_FOUND when there is no such pipe.
 * The timeout is 1 ms because 0 means "the pipe's default timeout".
 */
static int pipe_in_use(const char *address)
{
    WCHAR name[PIPE_NAME_MAX];

    if (crs_win_wide_buf(address, strlen(address), 0, name, PIPE_NAME_MAX) <= 0)
        return 0;
    if (WaitNamedPipeW(name, 1))
        return 1;
    return GetLastError() == ERROR_SEM_TIMEOUT || GetLastError() == ERROR_PIPE_BUSY;
}

int crs_listen_bind(uv_pipe_t *pipe, const char *address, const char *ca_account)
{
    uv_os_fd_t fd;
    int rc;

    if (pipe == NULL || address == NULL || address[0] == '\0')
        return CRS_EINVAL;
    if (crs_ascii_ncasecmp(address, PIPE_PREFIX, strlen(PIPE_PREFIX)) != 0 ||
        address[strlen(PIPE_PREFIX)] == '\0' || strlen(address) >= PIPE_NAME_MAX) {
        crs_error("listen = %s is not a pipe name such as \\\\.\\pipe\\CertRelay", address);
        return CRS_EINVAL;
    }
    rc = pipe_in_use(address) ? UV_EADDRINUSE : uv_pipe_bind(pipe, address);
    if (rc == UV_EADDRINUSE) {
        crs_error("another process already owns the pipe %s (another broker?); not starting",
                  address);
        return CRS_EADDRINUSE;
    }
    if (rc != 0) {
        crs_error("cannot create the pipe %s: %s", address, uv_strerror(rc));
        return rc == UV_EACCES ? CRS_EACCES : CRS_EIO;
    }
    /* The handle libuv keeps after the bind is the first instance's. */
    if (uv_fileno((uv_handle_t *)pipe, &fd) != 0 ||
        (rc = crs_pipe_lock_down((HANDLE)fd, CRS_SERVICE_NAMEW, ca_account)) != 0) {
        crs_error("cannot give the pipe %s its security descriptor: %s; not starting", address,
                  crs_strerror(rc != 0 ? rc : CRS_EIO));
        return rc != 0 ? rc : CRS_EIO;
    }
    return 0;
}

int crs_listen_client_authorized(uv_pipe_t *conn, const char *ca_account)
{
    return crs_pipe_client_authorized(conn, ca_account);
}
