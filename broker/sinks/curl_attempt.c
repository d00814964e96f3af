/*
 * The attempt bookkeeping shared by the curl-based drivers (see curl_attempt.h). Each attempt is
 * on its sink's list from the moment its transfer (or the work before it) has started until its
 * completion reports to the dispatcher, so that cancel-all reaches every one of them.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "sinks/curl_attempt.h"

/* The transfer ended: canceled, or whatever the driver makes of result and the reply code. */
static void attempt_done(struct crs_curl_xfer *x, CURLcode result)
{
    struct crs_curl_attempt *a = (struct crs_curl_attempt *)x;
    struct crs_delivery_result r;
    long code = 0;

    memset(&r, 0, sizeof(r));
    r.retry_after_ms = -1;
    if (x->easy != NULL)
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &code);
    r.status = (int)code;
    if (a->canceled || result == CURLE_ABORTED_BY_CALLBACK) {
        r.outcome = CRS_DELIVERY_CANCELED;
        snprintf(r.error, sizeof(r.error), "canceled");
    } else {
        a->ops->outcome(a, result, code, &r);
    }
    crs_curl_attempt_finish(a, &r);
}

void crs_curl_attempt_init(struct crs_curl_attempt *a, struct crs_curl_attempts *list,
                           struct crs_delivery *d, const struct crs_curl_attempt_ops *ops)
{
    a->xfer.done = attempt_done;
    a->ops = ops;
    a->list = list;
    a->d = d;
}

void crs_curl_attempt_link(struct crs_curl_attempt *a)
{
    a->prev = NULL;
    a->next = a->list->head;
    if (a->list->head)
        a->list->head->prev = a;
    a->list->head = a;
}

void crs_curl_attempt_finish(struct crs_curl_attempt *a, const struct crs_delivery_result *r)
{
    struct crs_delivery *d = a->d;

    if (a->prev)
        a->prev->next = a->next;
    else
        a->list->head = a->next;
    if (a->next)
        a->next->prev = a->prev;
    a->ops->release(a);
    d->done(d, r);
}

void crs_curl_attempt_abandon(struct crs_curl_attempt *a, int rc)
{
    struct crs_delivery_result r;

    memset(&r, 0, sizeof(r));
    r.retry_after_ms = -1;
    if (a->canceled) {
        r.outcome = CRS_DELIVERY_CANCELED;
        snprintf(r.error, sizeof(r.error), "canceled");
    } else {
        r.outcome = CRS_DELIVERY_RETRY;
        snprintf(r.error, sizeof(r.error), "cannot start delivery: %s", crs_strerror(rc));
    }
    crs_curl_attempt_finish(a, &r);
}

const char *crs_curl_attempt_error(const struct crs_curl_attempt *a, CURLcode result)
{
    return a->errbuf[0] ? a->errbuf : curl_easy_strerror(result);
}

void crs_curl_sink_cancel_all(struct crs_sink *sink)
{
    struct crs_curl_attempts *list = sink ? sink->impl : NULL;
    struct crs_curl_attempt *a;

    if (list == NULL)
        return;
    for (a = list->head; a != NULL; a = a->next) {
        a->canceled = 1;
        if (a->pending != NULL)
            uv_cancel(a->pending); /* else its completion sees `canceled` */
        else
            crs_curl_multi_cancel(&a->xfer);
    }
}

int crs_curl_sink_acquire(struct crs_sink *sink)
{
    int rc = crs_curl_multi_acquire(sink->loop, &sink->curl);

    if (rc != 0)
        crs_error("sink %s: cannot set up libcurl: %s", sink->cfg->name, crs_strerror(rc));
    return rc;
}

void crs_curl_sink_close(struct crs_sink *sink, void (*impl_free)(void *impl))
{
    if (sink == NULL)
        return;
    impl_free(sink->impl);
    sink->impl = NULL;
    crs_curl_multi_release(sink->curl);
    sink->curl = NULL;
}

int crs_curl_url_where(const char *url, char **where)
{
    CURLU *u;
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = CRS_ECONFIG;

    *where = NULL;
    if (url == NULL)
        return CRS_EINVAL;
    u = curl_url();
    if (u == NULL)
        return CRS_ENOMEM;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
        goto cleanup;
    *where = crs_asprintf("%s://%s:%s", scheme, host, port);
    rc = *where ? 0 : CRS_ENOMEM;

cleanup:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

int crs_curl_code_error(CURLcode c)
{
    return c == CURLE_OUT_OF_MEMORY ? CRS_ENOMEM : CRS_EINTERNAL;
}
