/*
 * The broker as a component: what broker/main.c (console) and broker/win/service.c (Service
 * Control Manager) both drive. Everything runs on one libuv loop; blocking work (SQLite commits,
 * file writes) goes to libuv's threadpool.
 */
#ifndef CERTRELAY_BROKER_H
#define CERTRELAY_BROKER_H

#include <uv.h>
#include "config/config.h"

struct crs_broker;

/* Creates a broker for cfg on loop (cfg must outlive the broker). Opens nothing yet. */
int crs_broker_new(const struct crs_config *cfg, uv_loop_t *loop, struct crs_broker **out);
/*
 * Opens the queue database (creating it), resumes unfinished deliveries, starts listening
 * (CRS_EADDRINUSE when another broker listens there; a stale socket is replaced), drains the
 * spool directory and starts watching it. Logs its own failures.
 */
int crs_broker_start(struct crs_broker *b);
/*
 * Begins a graceful stop: closes the listener and connections, lets the commit in flight finish
 * and ack, cancels delivery attempts, closes every handle. uv_run() returns once it is done.
 * Must be called on the loop's thread (a signal handler or service control handler wakes the loop
 * with uv_async_send and calls this from the async callback). Idempotent.
 */
void crs_broker_stop(struct crs_broker *b);
/*
 * Live reconfiguration: reads the broker's file again and applies it. Sinks added, removed or
 * changed take effect once the deliveries in flight have finished (none is canceled or sent
 * twice); events received until the switch keep the routes they got, a removed sink finishes the
 * deliveries it already has and gets no new events. listen, state_dir and spool_dir are read
 * only at start: a change is logged as needing a restart. Returns 0 and calls done (may be NULL)
 * once applied, or a negative CRS_E* code with "FILE:LINE: message" (or another sentence) in err,
 * logged, with the running configuration kept and done never called.
 */
typedef void (*crs_broker_reload_cb)(void *arg, int status, const char *error);
int crs_broker_reload(struct crs_broker *b, crs_broker_reload_cb done, void *arg, char *err,
                      size_t errlen);
/* Frees a stopped broker (after uv_run returned). NULL is a no-op. */
void crs_broker_free(struct crs_broker *b);

/*
 * What a shell adds to crs_broker_run. Every member may be 0/NULL (the console needs none).
 */
struct crs_broker_hooks {
    /* The log file to open and to reopen on reload, instead of cfg->log_file. The caller closes
     * it (crs_log_open_file(NULL)) after crs_broker_run returns; cfg->log_file is closed by
     * crs_broker_run itself. */
    const char *log_path;
    /* Whether the broker runs on when the log file cannot be opened (the service still has the
     * Event Log); otherwise that is a failure to start. */
    int log_optional;
    /* Called on the loop thread once the broker has started and takes events. */
    void (*on_running)(void *arg, const struct crs_config *cfg);
    /* Called on the loop thread every stop_tick_ms while a stop winds down. */
    void (*stop_tick)(void *arg);
    unsigned stop_tick_ms;
    void *arg;
};

/*
 * The broker's one lifecycle, for the console (broker/main.c, Unix and Windows) and the Windows
 * service (broker/win/service.c): opens the log file, sizes the threadpool, runs a loop with the
 * broker until it stops, tears down and returns 0 after a clean stop or a negative CRS_E* code
 * when it could not start. SIGINT and SIGTERM stop it and, on Unix, SIGHUP reloads it;
 * crs_broker_request does the same from any thread. hooks may be NULL.
 */
int crs_broker_run(const struct crs_config *cfg, const struct crs_broker_hooks *hooks);

enum crs_broker_request {
    CRS_BROKER_STOP,   /* the graceful stop SIGTERM starts */
    CRS_BROKER_RELOAD, /* what SIGHUP does: reopen the log file, re-read the configuration */
};
/* Sends a request to the broker crs_broker_run is running, from any thread (the Windows service
 * control handler). 0, or CRS_ENOENT when no broker runs or it has finished. */
int crs_broker_request(enum crs_broker_request what);

/*
 * The built-in default configuration (the demo): listen on crs_default_pipe(), state and spool
 * below crs_default_base_dir(), one file sink "archive" writing to <base>/out (and, on Windows, a
 * log file in <base>\logs). Built as INI text and parsed by crs_config_load_string, so the one
 * parser applies. Free with crs_config_free.
 */
int crs_broker_default_config(struct crs_config **out);

#endif
