/*
 * Windows half of the broker (see broker/platform.h): threadpool sizing and the check of each
 * client's token. The named-pipe listener is pipe_listen.c.
 *
 * Pipe security, in three locks. (1) The broker creates every pipe instance itself
 * (pipe_listen.c) with PIPE_REJECT_REMOTE_CLIENTS, so a client on another machine is refused by
 * the system; libuv's own pipe server could not pass that flag. (2) Each instance is created with
 * an explicit, protected descriptor (pipe_auth.c: SYSTEM, Administrators, the service SID, the
 * broker's own account and the configured CA account; nothing for Everyone or Anonymous, and
 * NETWORK denied as well), so there is no moment with a default descriptor. (3) Each client's
 * token is checked once its first bytes are read (pipe_auth.c). The first instance is created
 * with FILE_FLAG_FIRST_PIPE_INSTANCE and the name is probed before, because Wine ignores that
 * flag. A named pipe disappears with the last handle to it, so unlike a Unix socket there is
 * never a stale name to clean up after a crash.
 */
#include <windows.h>
#include <wchar.h>

#include "platform.h"
#include "pipe_auth.h"
#include "certrelay/error.h"
#include "certrelay/log.h"

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

int crs_listen_client_authorized(uv_pipe_t *conn, const char *ca_account)
{
    return crs_pipe_client_authorized(conn, ca_account);
}
