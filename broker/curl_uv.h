/*
 * libcurl on the broker's libuv loop: one CURLM per loop, driven by curl_multi_socket_action with
 * a uv_poll_t per socket and one uv_timer_t (the pattern of curl's docs/examples/multi-uv.c).
 * Transfers run side by side and share the multi handle's connection cache, so a webhook or SMTP
 * server sees its connections reused. Nothing here ever blocks the loop.
 *
 * The webhook and email drivers share the loop's multi handle: each sink acquires it when it
 * opens (sink->curl) and releases it when it closes; the last release closes every handle
 * asynchronously, so uv_run() returns only once all of them are closed.
 */
#ifndef CERTRELAY_BROKER_CURL_UV_H
#define CERTRELAY_BROKER_CURL_UV_H

#include <stdint.h>
#include <curl/curl.h>
#include <uv.h>
#include "sinks/tls.h"

struct crs_curl_multi;
struct crs_curl_xfer;

/* Called on the loop thread once a transfer has ended: result is CURLE_OK or curl's error, and
 * CURLE_ABORTED_BY_CALLBACK for a canceled transfer. The easy handle is no longer in the multi
 * handle and belongs to the caller again. */
typedef void (*crs_curl_done_cb)(struct crs_curl_xfer *x, CURLcode result);

/* One transfer, embedded in the caller's attempt (recover it with container_of-style arithmetic).
 * The caller sets easy and done; the rest is curl_uv's. */
struct crs_curl_xfer {
    CURL *easy;
    crs_curl_done_cb done;
    /* private */
    struct crs_curl_multi *m;
    struct crs_curl_xfer *prev, *next;
    int state;
    CURLcode deferred_result;
};

/* Returns the loop's multi handle, creating it on first use; each call takes a reference. Also
 * runs curl_global_init once per process. 0, CRS_ENOMEM or CRS_EINTERNAL. */
int crs_curl_multi_acquire(uv_loop_t *loop, struct crs_curl_multi **out);
/* Drops a reference. The last one requires that no transfer is in progress; it closes every
 * socket poller and the timers and frees the multi handle once they are closed. NULL is a no-op. */
void crs_curl_multi_release(struct crs_curl_multi *m);

/*
 * Starts x->easy (CURLOPT_PRIVATE is curl_uv's: callers must not set it). On 0, x->done is called
 * later, exactly once, and never from inside this call. On error it is never called.
 */
int crs_curl_multi_add(struct crs_curl_multi *m, struct crs_curl_xfer *x);
/* Aborts a transfer that was added and has not finished: x->done is called later (from the loop,
 * not from inside this call) with CURLE_ABORTED_BY_CALLBACK. No effect after done was called. */
void crs_curl_multi_cancel(struct crs_curl_xfer *x);
/* Completes x with result without running a transfer (e.g. a message with no recipient): done is
 * called later from the loop, as if the transfer had ended. x->easy may be NULL. 0 or an error. */
int crs_curl_multi_defer(struct crs_curl_multi *m, struct crs_curl_xfer *x, CURLcode result);

/*
 * Options every CertRelay transfer sets: no signals, the per-attempt timeout, only the given
 * protocols ("http,https" or "smtp,smtps"), no redirects, and the TLS settings of tls
 * (verification on unless insecure; ca_file, client certificate). 0 or CRS_EINTERNAL.
 */
int crs_curl_setup(CURL *easy, int64_t timeout_ms, const char *protocols,
                   const struct crs_tls_config *tls);

#endif
