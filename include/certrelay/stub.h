/*
 * The stub core: what the exit module does in Notify, in portable C with no COM types.
 *
 * The platform shell (stub/win/ for certsrv, tools/ for the simulator) provides a property reader;
 * the core reads the event through it, encodes it, sends it to the broker and waits for the Ack.
 * When the broker is absent, slow past the timeout, or answers Nack, the event goes to the spool
 * instead, so the caller always sees success unless even the spool failed.
 */
#ifndef CERTRELAY_STUB_H
#define CERTRELAY_STUB_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay.pb-c.h"

/* certsrv's property types (certif.h PROPTYPE_*). */
enum crs_prop_type {
    CRS_PROP_LONG = 1,
    CRS_PROP_DATE = 2,
    CRS_PROP_BINARY = 3,
    CRS_PROP_STRING = 4
};

/* One property value. The reader allocates bin/str with crs_malloc; crs_prop_value_clear frees. */
struct crs_prop_value {
    int type;        /* enum crs_prop_type */
    int64_t l;       /* CRS_PROP_LONG */
    int64_t date_ms; /* CRS_PROP_DATE, Unix milliseconds */
    uint8_t *bin;    /* CRS_PROP_BINARY */
    size_t len;      /* bytes in bin, or strlen(str) */
    char *str;       /* CRS_PROP_STRING, UTF-8, NUL-terminated */
};

void crs_prop_value_clear(struct crs_prop_value *v);

/* Callbacks for enumerations; return non-zero to stop early. */
typedef int (*crs_ext_cb)(void *arg, const char *oid, uint32_t flags, int critical,
                          const uint8_t *der, size_t len);
typedef int (*crs_attr_cb)(void *arg, const char *name, const char *value);

/*
 * The property reader. Every get returns 0 with *out filled, CRS_ENOENT when certsrv says the
 * property is empty (not an error), or another negative code. `name` is certsrv's property name
 * ("RequestID", "RawCertificate", "CRLState.0"). Get functions may be NULL in a reader that has
 * no such properties. The core never asks for RawArchivedKey.
 */
struct crs_prop_reader {
    void *ctx;
    int (*get_request)(void *ctx, const char *name, enum crs_prop_type type,
                       struct crs_prop_value *out);
    int (*get_certificate)(void *ctx, const char *name, enum crs_prop_type type,
                           struct crs_prop_value *out);
    /* CA-level properties at context 0 (CAType, CertCount, CRLState.#, RawCRL.#, ...). */
    int (*get_ca)(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *out);
    int (*enum_extensions)(void *ctx, crs_ext_cb cb, void *arg);
    int (*enum_attributes)(void *ctx, crs_attr_cb cb, void *arg);
};

/* The whole-call bound when nothing sets one: the exit module's TimeoutMs default, the
 * simulator's --timeout-ms default. */
#define CRS_STUB_DEFAULT_TIMEOUT_MS 2000u
/* The exit module's circuit breaker: the first back-off window after the broker failed, doubled
 * after each failed probe up to the maximum. */
#define CRS_STUB_DEFAULT_BREAKER_MS 5000u
#define CRS_STUB_MAX_BREAKER_MS     60000u

struct crs_stub_options {
    const char *pipe;         /* broker address; default crs_default_pipe() */
    const char *spool_dir;    /* default crs_default_spool_dir() */
    uint32_t timeout_ms;      /* whole-call bound, default CRS_STUB_DEFAULT_TIMEOUT_MS */
    int capture_raw_request;  /* include RawRequest, default 0 */
    const char *ca_config;    /* strConfig from Initialize (also sent in Hello) */
    const char *stub_version; /* default CRS_VERSION */
    uint32_t max_connections; /* idle connections kept for reuse, default 8 */
    /* Windows: the broker's service name; the pipe's server must be that service's process
     * (see stub/transport.h). NULL: no check (the simulator). Ignored on Unix. */
    const char *broker_service;
    /*
     * The circuit breaker's first back-off window in ms; 0 turns the breaker off. After the
     * broker timed out, refused the connection, closed it or failed authentication, calls go
     * straight to the spool for the window; then one call at a time probes the broker, and a
     * failed probe doubles the window (up to CRS_STUB_MAX_BREAKER_MS). An Ack closes it.
     */
    uint32_t breaker_ms;
};

enum crs_stub_outcome { CRS_STUB_ACKED = 1, CRS_STUB_SPOOLED = 2 };

struct crs_stub_result {
    int outcome;         /* enum crs_stub_outcome; 0 when the event was lost */
    int send_error;      /* why it was spooled (0 when acked) */
    int breaker_open;    /* spooled without trying the broker: the circuit breaker was open */
    uint32_t server_pid; /* with send_error CRS_EPEERAUTH: the process refused as the broker */
    int64_t request_id;  /* the event's request id, 0 when it has none */
    uint32_t kind;       /* the event kind sent (0x8 may become unrevoked: see build_event) */
    char event_id[37];
    uint64_t elapsed_us;
};

struct crs_stub;

int crs_stub_new(const struct crs_stub_options *opts, struct crs_stub **out);
/* Closes pooled connections. NULL is a no-op. No call may be in progress. */
void crs_stub_free(struct crs_stub *stub);

/*
 * Handles one certsrv notification. Thread-safe: many threads may call it at once. Returns within
 * timeout_ms plus the time of a local spool write. Returns 0 when the event was acknowledged or
 * spooled (see res->outcome), or a negative code when it could not even be spooled (the caller
 * logs it; the event is lost). res may be NULL.
 */
int crs_stub_notify(struct crs_stub *stub, uint32_t exit_event, const struct crs_prop_reader *rd,
                    struct crs_stub_result *res);

/*
 * Sends an event that is already built and packed (the bytes of a certrelay.v1.Event whose id is
 * event_id, a UUID) exactly as crs_stub_notify sends the one it builds: to the broker unless the
 * circuit breaker is open, to the spool when no Ack comes. For callers that build events their own
 * way: the simulator's --prebuilt load, which must not spend more CPU per event than the broker.
 * res->kind and res->request_id stay 0.
 */
int crs_stub_send_packed(struct crs_stub *stub, const char *event_id, const uint8_t *bytes,
                         size_t len, struct crs_stub_result *res);

/*
 * Builds the Event for one notification without sending it (tests, --dry-run). Free with
 * crs_stub_event_free. certsrv fires EXITEVENT_CERTREVOKED (0x8) both for a revocation and for a
 * release from hold: with 0x8 the request's Disposition decides the kind, revoked (21) or, when
 * the certificate is issued again (20), unrevoked; raw_exit_event keeps the 0x8.
 */
int crs_stub_build_event(const struct crs_stub *stub, uint32_t exit_event,
                         const struct crs_prop_reader *rd, Certrelay__V1__Event **out);
void crs_stub_event_free(Certrelay__V1__Event *ev);

#endif
