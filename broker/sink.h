/*
 * The broker's side of a sink: delivery drivers. The dispatcher (broker/dispatch.c) owns retry,
 * backoff, dead-lettering and the delivery table; a driver only attempts one delivery and reports
 * how it went. Drivers run on the broker's libuv loop and must never block it: blocking I/O goes
 * to the threadpool (uv_queue_work), network I/O through the shared curl multi handle.
 *
 * Configuration parsing for each type lives apart, in lib/sinkconf/<type>.c.
 */
#ifndef CERTRELAY_BROKER_SINK_H
#define CERTRELAY_BROKER_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "certrelay/config.h"
#include "certrelay.pb-c.h"

enum crs_delivery_outcome {
    CRS_DELIVERY_OK = 0,        /* delivered; the row becomes 'delivered' */
    CRS_DELIVERY_RETRY = 1,     /* transient: retried with backoff (or Retry-After) */
    CRS_DELIVERY_PERMANENT = 2, /* permanent: dead-lettered at once */
    CRS_DELIVERY_CANCELED = 3   /* the broker is stopping: not counted as an attempt */
};

struct crs_delivery_result {
    enum crs_delivery_outcome outcome;
    int64_t retry_after_ms; /* a receiver's Retry-After, or -1 */
    int status;             /* protocol status (HTTP or SMTP code), 0 if none */
    char error[256];        /* one line for the delivery table and the log; no secrets */
};

struct crs_delivery;
typedef void (*crs_delivery_done_cb)(struct crs_delivery *d, const struct crs_delivery_result *r);

/* One delivery attempt, owned by the dispatcher until done is called. */
struct crs_delivery {
    int64_t event_row;                 /* events.rowid */
    const Certrelay__V1__Event *event; /* decoded event */
    const uint8_t *event_bytes;        /* its packed form */
    size_t event_len;
    uint32_t attempt;          /* 1 for the first attempt */
    crs_delivery_done_cb done; /* called exactly once, never from inside deliver() */
    void *data;                /* the dispatcher's */
};

struct crs_curl_multi; /* broker/curl_uv.h: one CURLM per loop (webhook and email sinks) */

struct crs_sink {
    const struct crs_sink_config *cfg; /* cfg->typed holds the type's settings */
    const struct crs_sink_driver *driver;
    uv_loop_t *loop;
    struct crs_curl_multi *curl; /* NULL until a curl-based sink needs it */
    unsigned index;              /* position in the configuration */
    unsigned inflight;           /* attempts in progress (maintained by the dispatcher) */
    void *impl;                  /* the driver's state */
};

struct crs_sink_driver {
    const char *type; /* matches crs_sink_type.name */
    /* Prepares the sink (create directories, load secrets, ...). 0 or a negative code. */
    int (*open)(struct crs_sink *sink);
    /* Starts one attempt. On 0, d->done is called later exactly once; on error it is never
     * called and the dispatcher treats the error as a transient failure. */
    int (*deliver)(struct crs_sink *sink, struct crs_delivery *d);
    /* Aborts attempts in progress (their done gets CRS_DELIVERY_CANCELED); may be NULL. */
    void (*cancel_all)(struct crs_sink *sink);
    /* Releases the sink once no attempt is in progress. */
    void (*close)(struct crs_sink *sink);
};

const struct crs_sink_driver *crs_sink_driver_find(const char *type);

extern const struct crs_sink_driver crs_sink_driver_file;
extern const struct crs_sink_driver crs_sink_driver_webhook;
extern const struct crs_sink_driver crs_sink_driver_email;

#endif
