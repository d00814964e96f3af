/*
 * A sink type: its settings (sinks/<type>/settings.c, run when the configuration is loaded) and
 * its delivery driver (sinks/<type>/driver.c), joined by one line of the table in
 * sinks/registry.c under the name that `type =` gives.
 *
 * Drivers: The dispatcher (broker/dispatch.c) owns retry,
 * backoff, dead-lettering and the delivery table; a driver only attempts one delivery and reports
 * how it went. Drivers run on the broker's libuv loop and must never block it: blocking I/O goes
 * to the threadpool (uv_queue_work), network I/O through the shared curl multi handle.
 */
#ifndef CERTRELAY_BROKER_SINK_H
#define CERTRELAY_BROKER_SINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
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
    unsigned failures;           /* failed attempts since the last success (the dispatcher's) */
    void *impl;                  /* the driver's state */
};

struct crs_sink_driver {
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

/*
 * A sink type's settings half. set() is called for every key the common parser does not know; it
 * returns 0, CRS_ENOENT for a key the type does not know either (reported as "unknown key"), or
 * CRS_ECONFIG with a sentence in err. finish() runs at the end of the section to check required
 * keys and compile templates.
 */
struct crs_sink_settings {
    int (*init)(void **typed);
    int (*set)(void *typed, const char *key, const char *value, char *err, size_t errlen);
    int (*finish)(void *typed, struct crs_sink_config *sc, char *err, size_t errlen);
    void (*free)(void *typed);
    /* Keys this type allows more than once in a section (webhook `header`), NULL-terminated;
     * NULL when none. Each occurrence is passed to set() in file order, so set() accumulates. */
    const char *const *repeatable_keys;
};

/* One sink type, as listed in sinks/registry.c. */
struct crs_sink_type {
    const char *name; /* the value of `type =` */
    const struct crs_sink_settings *settings;
    const struct crs_sink_driver *driver;
};

/* Looks up a sink type by name ("file", "webhook", "email"). NULL if unknown. */
const struct crs_sink_type *crs_sink_type_find(const char *name);
/* The driver of a sink type (crs_sink_type_find(name)->driver). NULL if unknown. */
const struct crs_sink_driver *crs_sink_driver_find(const char *name);

extern const struct crs_sink_type crs_sink_type_file;
extern const struct crs_sink_type crs_sink_type_webhook;
extern const struct crs_sink_type crs_sink_type_email;

#endif
