/*
 * A pipe server that is not the CertRelay broker, for tests/win/run_wine_tests.py.
 *
 *   fake_broker --pipe PIPE --mode impostor|hung --stop-file FILE --report FILE [--service NAME]
 *
 * impostor  acknowledges every Event it receives, as a process squatting on \\.\pipe\CertRelay
 *           would to make the exit module drop events: the module must send it nothing.
 * hung      accepts connections and reads, but never answers: a broker that hangs.
 *
 * It serves until FILE (--stop-file) exists, then writes "connections N bytes N events N" to
 * --report. With --service NAME it runs as that Windows service (started by the SCM), so that it
 * is the process the SCM reports for the service the exit module is told to trust; the service
 * stops on SERVICE_CONTROL_STOP as well.
 */
#include <windows.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/frame.h"

#define BUF_SIZE 65536

static const char *pipe_name, *stop_file, *report_file, *mode;
static WCHAR wpipe[256], wstop[512], wservice[256];
static LONG connections, events;
static LONG64 bytes;
static volatile LONG stopping;
static SERVICE_STATUS_HANDLE status_handle;

static void widen(const char *s, WCHAR *w, int cap)
{
    if (MultiByteToWideChar(CP_UTF8, 0, s, -1, w, cap) <= 0) {
        fprintf(stderr, "fake_broker: bad argument %s\n", s);
        exit(2);
    }
}

static int write_all(HANDLE h, const uint8_t *p, size_t n)
{
    DWORD done;

    while (n > 0) {
        if (!WriteFile(h, p, (DWORD)n, &done, NULL) || done == 0)
            return -1;
        p += done;
        n -= done;
    }
    return 0;
}

/* One client: count what arrives; in impostor mode acknowledge every Event. */
static DWORD WINAPI client_main(void *arg)
{
    HANDLE h = arg;
    struct crs_frame_reader r;
    uint8_t *buf = malloc(BUF_SIZE);
    int impostor = strcmp(mode, "impostor") == 0;
    DWORD got;

    crs_frame_reader_init(&r, CRS_FRAME_MAX);
    while (buf != NULL && ReadFile(h, buf, BUF_SIZE, &got, NULL) && got > 0) {
        const uint8_t *payload;
        size_t len;

        InterlockedAdd64(&bytes, got);
        if (crs_frame_reader_feed(&r, buf, got) != 0)
            break;
        while (crs_frame_reader_next(&r, &payload, &len) == 1) {
            Certrelay__V1__Envelope *env = NULL;
            uint8_t *ack = NULL;
            size_t alen = 0;

            if (crs_envelope_decode(payload, len, &env) != 0)
                goto done;
            if (env->body_case == CERTRELAY__V1__ENVELOPE__BODY_EVENT) {
                InterlockedIncrement(&events);
                if (impostor && crs_frame_ack(env->event->event_id, &ack, &alen) == 0)
                    (void)write_all(h, ack, alen);
                crs_free(ack);
            }
            crs_envelope_free(env);
        }
    }
done:
    crs_frame_reader_free(&r);
    free(buf);
    FlushFileBuffers(h);
    DisconnectNamedPipe(h);
    CloseHandle(h);
    return 0;
}

static int should_stop(void)
{
    return stopping || GetFileAttributesW(wstop) != INVALID_FILE_ATTRIBUTES;
}

/* Creates instance after instance of the pipe and hands each connected client to a thread. */
static int serve(void)
{
    OVERLAPPED ov;
    HANDLE ev = CreateEventW(NULL, TRUE, FALSE, NULL);
    FILE *f;

    while (!should_stop()) {
        HANDLE h = CreateNamedPipeW(wpipe, PIPE_ACCESS_DUPLEX | FILE_FLAG_OVERLAPPED,
                                    PIPE_TYPE_BYTE | PIPE_READMODE_BYTE | PIPE_WAIT,
                                    PIPE_UNLIMITED_INSTANCES, BUF_SIZE, BUF_SIZE, 0, NULL);
        BOOL connected;

        if (h == INVALID_HANDLE_VALUE) {
            fprintf(stderr, "fake_broker: CreateNamedPipe failed (error %lu)\n",
                    (unsigned long)GetLastError());
            Sleep(100);
            continue;
        }
        memset(&ov, 0, sizeof(ov));
        ov.hEvent = ev;
        ResetEvent(ev);
        connected = ConnectNamedPipe(h, &ov);
        if (!connected && GetLastError() == ERROR_IO_PENDING) {
            while (!should_stop() && WaitForSingleObject(ev, 100) == WAIT_TIMEOUT)
                ;
            DWORD n;
            connected = !should_stop() && GetOverlappedResult(h, &ov, &n, FALSE);
            if (!connected) {
                CancelIoEx(h, &ov);
                GetOverlappedResult(h, &ov, &n, TRUE);
            }
        } else if (!connected && GetLastError() == ERROR_PIPE_CONNECTED) {
            connected = TRUE;
        }
        if (!connected) {
            CloseHandle(h);
            continue;
        }
        InterlockedIncrement(&connections);
        HANDLE t = CreateThread(NULL, 0, client_main, h, 0, NULL);
        if (t == NULL)
            CloseHandle(h);
        else
            CloseHandle(t);
    }
    CloseHandle(ev);
    f = fopen(report_file, "w");
    if (f == NULL)
        return 1;
    fprintf(f, "connections %ld bytes %lld events %ld\n", (long)connections, (long long)bytes,
            (long)events);
    fclose(f);
    return 0;
}

static void set_state(DWORD state)
{
    SERVICE_STATUS st;

    memset(&st, 0, sizeof(st));
    st.dwServiceType = SERVICE_WIN32_OWN_PROCESS;
    st.dwCurrentState = state;
    st.dwControlsAccepted = state == SERVICE_RUNNING ? SERVICE_ACCEPT_STOP : 0;
    SetServiceStatus(status_handle, &st);
}

static DWORD WINAPI service_ctrl(DWORD control, DWORD type, void *data, void *ctx)
{
    if (control == SERVICE_CONTROL_STOP) {
        InterlockedExchange(&stopping, 1);
        set_state(SERVICE_STOP_PENDING);
    }
    return NO_ERROR;
}

static void WINAPI service_main(DWORD argc, WCHAR **argv)
{
    status_handle = RegisterServiceCtrlHandlerExW(wservice, service_ctrl, NULL);
    if (status_handle == NULL)
        return;
    set_state(SERVICE_RUNNING);
    serve();
    set_state(SERVICE_STOPPED);
}

static const char *arg(int argc, char **argv, const char *name)
{
    for (int i = 1; i + 1 < argc; i++) {
        if (strcmp(argv[i], name) == 0)
            return argv[i + 1];
    }
    return NULL;
}

int main(int argc, char **argv)
{
    const char *service = arg(argc, argv, "--service");

    pipe_name = arg(argc, argv, "--pipe");
    mode = arg(argc, argv, "--mode");
    stop_file = arg(argc, argv, "--stop-file");
    report_file = arg(argc, argv, "--report");
    if (pipe_name == NULL || mode == NULL || stop_file == NULL || report_file == NULL ||
        (strcmp(mode, "impostor") != 0 && strcmp(mode, "hung") != 0)) {
        fprintf(stderr, "usage: fake_broker --pipe PIPE --mode impostor|hung --stop-file FILE "
                        "--report FILE [--service NAME]\n");
        return 2;
    }
    widen(pipe_name, wpipe, 256);
    widen(stop_file, wstop, 512);
    if (service != NULL) {
        SERVICE_TABLE_ENTRYW table[] = {{wservice, service_main}, {NULL, NULL}};

        widen(service, wservice, 256);
        return StartServiceCtrlDispatcherW(table) ? 0 : 1;
    }
    printf("fake_broker: serving %s as %s (pid %lu)\n", pipe_name, mode,
           (unsigned long)GetCurrentProcessId());
    fflush(stdout);
    return serve();
}
