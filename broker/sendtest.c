/*
 * `certrelay send-test --sink S` (admin.h): a clearly marked test event (kind startup, CA
 * "CertRelay test event", extra["certrelay_test"]) delivered once through the sink's real driver,
 * outside the queue (nothing is stored, nothing retried), with the outcome, status, error and
 * time in the reply. The attempt counts as one in flight for the sink, so a reload or a stop
 * waits for it (or cancels it) like any other.
 */
#include "sendtest.h"

#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "certrelay/uuid.h"
#include "dispatch.h"

struct sendtest {
    struct crs_delivery d;
    struct crs_sink *sink;
    struct crs_dispatcher *disp;
    Certrelay__V1__Event ev;
    Certrelay__V1__CaInfo ca;
    Certrelay__V1__Event__ExtraEntry entry;
    Certrelay__V1__Event__ExtraEntry *entries[1];
    Certrelay__V1__Value value;
    char event_id[CRS_UUID_STRLEN + 1];
    uint8_t *body;
    size_t len;
    uint64_t start_ns;
    crs_sendtest_cb cb;
    void *arg;
};

static void sendtest_done(struct crs_delivery *d, const struct crs_delivery_result *r)
{
    struct sendtest *t = d->data;
    static const char *const outcomes[] = {"delivered", "failed (would be retried)",
                                           "failed (permanent)", "canceled"};
    json_t *res;

    t->sink->inflight--;
    res =
        json_pack("{sssssssisssf}", "sink", t->sink->cfg->name, "event_id", t->event_id, "outcome",
                  (unsigned)r->outcome < 4 ? outcomes[r->outcome] : "unknown", "status", r->status,
                  "error", r->error, "seconds", (double)(uv_hrtime() - t->start_ns) / 1e9);
    crs_info("send-test: sink %s: %s%s%s", t->sink->cfg->name,
             (unsigned)r->outcome < 4 ? outcomes[r->outcome] : "unknown", r->error[0] ? ": " : "",
             r->error);
    t->cb(t->arg, r->outcome == CRS_DELIVERY_OK ? 0 : CRS_EIO, res);
    /* A reload or a stop may be waiting for this attempt. */
    crs_dispatcher_wake(t->disp);
    crs_free(t->body);
    crs_free(t);
}

int crs_sendtest_start(struct crs_sink *sink, struct crs_dispatcher *disp, const char *ca_host,
                       crs_sendtest_cb cb, void *arg, char *err, size_t errlen)
{
    Certrelay__V1__Event init = CERTRELAY__V1__EVENT__INIT;
    Certrelay__V1__CaInfo ca_init = CERTRELAY__V1__CA_INFO__INIT;
    Certrelay__V1__Event__ExtraEntry e_init = CERTRELAY__V1__EVENT__EXTRA_ENTRY__INIT;
    Certrelay__V1__Value v_init = CERTRELAY__V1__VALUE__INIT;
    struct sendtest *t;
    int rc;

    if (sink == NULL || cb == NULL)
        return CRS_EINVAL;
    t = crs_calloc(1, sizeof(*t));
    if (t == NULL)
        return CRS_ENOMEM;
    t->sink = sink;
    t->disp = disp;
    t->cb = cb;
    t->arg = arg;
    t->ev = init;
    t->ca = ca_init;
    t->entry = e_init;
    t->value = v_init;
    rc = crs_uuid7(t->event_id);
    if (rc != 0)
        goto cleanup;
    t->ca.config = (char *)"CertRelay test event (certrelay send-test)";
    t->ca.sanitized_name = (char *)"CertRelay test";
    t->ca.host = (char *)(ca_host ? ca_host : "certrelay-send-test");
    t->value.v_case = CERTRELAY__V1__VALUE__V_STRING_VALUE;
    t->value.string_value =
        (char *)"This is a test event sent by certrelay send-test; it does not come from the CA.";
    t->entry.key = (char *)"certrelay_test";
    t->entry.value = &t->value;
    t->entries[0] = &t->entry;
    t->ev.event_id = t->event_id;
    t->ev.has_kind = 1;
    t->ev.kind = CERTRELAY__V1__EVENT_KIND__EVENT_KIND_STARTUP;
    t->ev.has_capture_time_ms = 1;
    t->ev.capture_time_ms = crs_now_ms();
    t->ev.ca = &t->ca;
    t->ev.n_extra = 1;
    t->ev.extra = t->entries;
    rc = crs_event_pack(&t->ev, &t->body, &t->len);
    if (rc != 0)
        goto cleanup;
    t->d.event_row = 0;
    t->d.event = &t->ev;
    t->d.event_bytes = t->body;
    t->d.event_len = t->len;
    t->d.attempt = 1;
    t->d.done = sendtest_done;
    t->d.data = t;
    t->start_ns = uv_hrtime();
    sink->inflight++;
    rc = sink->driver->deliver(sink, &t->d);
    if (rc != 0) {
        sink->inflight--;
        goto cleanup;
    }
    return 0;

cleanup:
    snprintf(err, errlen, "cannot start a delivery to sink %s: %s", sink->cfg->name,
             crs_strerror(rc));
    crs_free(t->body);
    crs_free(t);
    return rc;
}
