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
/* Frees a stopped broker (after uv_run returned). NULL is a no-op. */
void crs_broker_free(struct crs_broker *b);

/* The whole foreground program: load cfg, run until SIGINT/SIGTERM (or stop_async), return the
 * process exit status. Used by main() and, on Windows, by the service's worker thread.
 * stop_async, when non-NULL, receives a uv_async_t the caller may uv_async_send() from another
 * thread to stop the broker. */
int crs_broker_main(const struct crs_config *cfg, uv_async_t **stop_async);

/*
 * The built-in default configuration (the demo): listen on crs_default_pipe(), state and spool
 * below crs_default_base_dir(), one file sink "archive" writing to <base>/out (and, on Windows, a
 * log file in <base>\logs). Built as INI text and parsed by crs_config_load_string, so the one
 * parser applies. Free with crs_config_free.
 */
int crs_broker_default_config(struct crs_config **out);

#endif
