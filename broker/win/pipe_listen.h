/*
 * The Windows named-pipe listener (pipe_listen.c), which implements crs_listen_* of
 * broker/platform.h. Its pipe mode is named here so that a test can check what every instance is
 * created with: Windows offers no call that reads PIPE_REJECT_REMOTE_CLIENTS back.
 */
#ifndef CERTRELAY_BROKER_WIN_PIPE_LISTEN_H
#define CERTRELAY_BROKER_WIN_PIPE_LISTEN_H

#include <windows.h>

#ifndef PIPE_REJECT_REMOTE_CLIENTS
#define PIPE_REJECT_REMOTE_CLIENTS 0x00000008
#endif

/* Byte stream, blocking mode for the client, and no client from another machine: a connection
 * through SMB (\\host\pipe\...) is refused by the system before the broker sees it. */
#define CRS_LISTEN_PIPE_MODE \
    (PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT | PIPE_REJECT_REMOTE_CLIENTS)

#endif
