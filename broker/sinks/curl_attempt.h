/*
 * What the curl-based drivers (webhook, email) share: the list of a sink's attempts in flight,
 * cancel-all, the curl half of open and close, and the completion path of a transfer (status,
 * cancellation, unlinking, freeing, reporting to the dispatcher). A driver embeds struct
 * crs_curl_attempt first in its own attempt and supplies two callbacks: how a finished transfer
 * maps to an outcome, and how its attempt is freed. What differs stays in the driver: the
 * request, its options, and what a reply means.
 */
#ifndef CERTRELAY_BROKER_SINKS_CURL_ATTEMPT_H
#define CERTRELAY_BROKER_SINKS_CURL_ATTEMPT_H

#include <curl/curl.h>
#include <uv.h>

#include "curl_uv.h"
#include "sinks/sink.h"

struct crs_curl_attempt;

struct crs_curl_attempt_ops {
    /* Fills in r for a transfer that ended and was not canceled. r arrives zeroed but for
     * r->status (the protocol's reply code, 0 if none) and r->retry_after_ms (-1); code is the
     * same reply code. */
    void (*outcome)(struct crs_curl_attempt *a, CURLcode result, long code,
                    struct crs_delivery_result *r);
    /* Frees the driver's attempt, including a->xfer.easy when it is not NULL (the driver pools
     * or cleans it up). Also used when deliver() fails before anything was started. */
    void (*release)(struct crs_curl_attempt *a);
};

/* A sink's attempts in flight: the first member of the driver's sink state (sink->impl), zeroed,
 * where crs_curl_sink_cancel_all finds it. */
struct crs_curl_attempts {
    struct crs_curl_attempt *head;
};

/* One attempt. The driver's attempt embeds it as its first member, so a pointer to it is a pointer
 * to the driver's attempt (and xfer, first again, to both). */
struct crs_curl_attempt {
    struct crs_curl_xfer xfer;
    const struct crs_curl_attempt_ops *ops;
    struct crs_curl_attempts *list;
    struct crs_delivery *d;
    struct crs_curl_attempt *prev, *next;
    /* A threadpool request the transfer waits for (a body built off the loop), or NULL: cancel-all
     * uv_cancel()s it instead of the transfer. */
    uv_req_t *pending;
    int canceled;
    char errbuf[CURL_ERROR_SIZE]; /* CURLOPT_ERRORBUFFER */
};

/* Prepares a zeroed attempt for d on list; its transfer reports through ops. */
void crs_curl_attempt_init(struct crs_curl_attempt *a, struct crs_curl_attempts *list,
                           struct crs_delivery *d, const struct crs_curl_attempt_ops *ops);
/* Puts a started attempt (transfer added, deferred or work queued) on its list. From then on it
 * ends only through crs_curl_attempt_finish() (the transfer's completion calls it). */
void crs_curl_attempt_link(struct crs_curl_attempt *a);
/* Unlinks a started attempt, releases it and reports r to the dispatcher (the last thing it does:
 * a is freed). */
void crs_curl_attempt_finish(struct crs_curl_attempt *a, const struct crs_delivery_result *r);
/* Reports a started attempt that will not run its transfer: canceled if cancel-all came, else a
 * transient failure "cannot start delivery: <rc>". */
void crs_curl_attempt_abandon(struct crs_curl_attempt *a, int rc);
/* curl's text for a failed transfer: the error buffer when curl filled it, else the code's. */
const char *crs_curl_attempt_error(const struct crs_curl_attempt *a, CURLcode result);

/* A driver's cancel_all, for a sink whose impl begins with its struct crs_curl_attempts: marks
 * every attempt canceled and aborts its transfer (or its pending threadpool request); each one
 * still completes, reporting CRS_DELIVERY_CANCELED. */
void crs_curl_sink_cancel_all(struct crs_sink *sink);
/* Takes the sink's reference to the loop's curl multi handle (sink->curl), the last step of a
 * driver's open; logs a failure. 0, CRS_ENOMEM or CRS_EINTERNAL. */
int crs_curl_sink_acquire(struct crs_sink *sink);
/* The sink driver's close: frees the driver state with impl_free and drops the sink's reference
 * to the loop's curl multi handle. NULL sink is a no-op. */
void crs_curl_sink_close(struct crs_sink *sink, void (*impl_free)(void *impl));

/* Checks url with curl's parser and returns "scheme://host:port" (the default port filled in),
 * the only form of a receiver's address that logs and the delivery table show: a path or query
 * may embed a token. 0, CRS_ECONFIG (not a URL) or CRS_ENOMEM; *where is NULL on error. */
int crs_curl_url_where(const char *url, char **where);
/* A curl_easy_setopt() failure as a CertRelay code. */
int crs_curl_code_error(CURLcode c);
/* Sets one option unless an earlier one failed: a run of options is checked once, at its end. */
#define CRS_CURL_SET(c, easy, opt, val)                                                            \
    do {                                                                                           \
        if ((c) == CURLE_OK)                                                                       \
            (c) = curl_easy_setopt((easy), (opt), (val));                                          \
    } while (0)

#endif
