/*
 * The webhook delivery driver: one HTTP POST per attempt, through the loop's shared curl multi
 * handle (broker/curl_uv.c), so connections to the receiver are kept alive and reused.
 *
 * What goes on the wire:
 *
 *   POST /path HTTP/1.1
 *   Content-Type: application/json             (cloudevents: application/cloudevents+json)
 *   User-Agent: CertRelay/0.1.0
 *   webhook-id: 01890a5d-ac96-774b-bcce-b302099a8057   (the event id: same on every retry)
 *   webhook-timestamp: 1751364000                       (this attempt)
 *   webhook-signature: v1,<base64 HMAC-SHA256>          (when secret_file is set)
 *   Authorization: Bearer <token>                       (when bearer_token_file is set)
 *   <configured header lines>
 *
 *   <body built by formats.c>
 *
 * No header ever holds a value from a certificate or request: the only per-event header values
 * are the event id (a UUID, checked again here) and numbers. Secrets (the signing key, the bearer
 * token, a URL whose path or query embeds a token) are read when the sink opens and never logged:
 * logs and the delivery table name the receiver as scheme://host:port only.
 *
 * Outcomes: 2xx delivered; 408, 429, 5xx, timeouts, connection and TLS failures retried (with the
 * receiver's Retry-After when it sends one); any other 4xx permanent.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "certrelay/sanitize.h"
#include "certrelay/secret.h"
#include "sinks/webhook/settings.h"
#include "sinks/sink.h"
#include "certrelay/uuid.h"
#include "sinks/webhook/formats.h"
#include "curl_uv.h"
#include "sinks/curl_attempt.h"

_Static_assert(CRS_DELIVERY_OK == 0 && CRS_DELIVERY_RETRY == 1 && CRS_DELIVERY_PERMANENT == 2,
               "crs_http_status_outcome() returns enum crs_delivery_outcome values");

/* Easy handles kept for reuse between attempts (they keep TLS session and DNS caches). */
#define WEBHOOK_IDLE_MAX 16u
/* Bytes of a response body kept for the error line of a failed attempt. */
#define WEBHOOK_EXCERPT_MAX 100u
/* Secret files are small; anything larger is a mistake (the wrong file). */
#define WEBHOOK_SECRET_FILE_MAX (64u * 1024u)
/*
 * Events packed larger than this (CRLs of a big CA run to tens of MB) get their body built and
 * signed on the threadpool: base64 and JSON of that much data would hold the loop, and with it
 * every ack and every other delivery, for a noticeable time. Certificate events, a few KB, are
 * built on the loop, where the round trip to a worker would cost more than the work.
 */
#define WEBHOOK_BUILD_OFFLOOP (256u * 1024u)

struct webhook_sink {
    struct crs_curl_attempts attempts; /* first: crs_curl_sink_cancel_all finds it there */
    struct crs_sink *sink;
    const struct crs_webhook_sink_config *wc;
    char *url;   /* from url or url_file */
    char *where; /* scheme://host:port, for logs */
    char *ua;    /* User-Agent */
    uint8_t *secret;
    size_t secret_len;
    char *auth_header; /* "Authorization: Bearer ..." or NULL */
    /* The header lines every attempt sends (content type, user agent, authorization, configured
     * lines), built once; each attempt's own lines are chained in front of them. */
    struct curl_slist *fixed_headers;
    CURL *idle[WEBHOOK_IDLE_MAX];
    size_t nidle;
};

struct webhook_attempt {
    struct crs_curl_attempt base; /* first: the shared code's callbacks recover the attempt */
    struct webhook_sink *ws;
    char *body;
    size_t bodylen;
    struct curl_slist *headers; /* own[] followed by the sink's fixed_headers */
    struct curl_slist own[3];   /* webhook-id, -timestamp, -signature: no allocation */
    uv_work_t work;             /* body built on the threadpool (large events) */
    int build_rc;
    char id_line[64];
    char ts_line[48];
    char sig_line[32 + CRS_WEBHOOK_SIGNATURE_LEN];
    char excerpt[WEBHOOK_EXCERPT_MAX + 1];
    size_t excerpt_len;
};

/* ------------------------------------------------------------------------------------------ */
/* Secrets                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* Reads a small secret file (plain, or on Windows a DPAPI blob: certrelay/secret.h) with
 * surrounding whitespace trimmed. Logs its own failure (naming the file, never its content). */
static int read_secret_file(const char *sink, const char *key, const char *path, char **out)
{
    uint8_t *data = NULL;
    size_t len = 0, start = 0;
    int rc;

    *out = NULL;
    rc = crs_secret_read_file(path, WEBHOOK_SECRET_FILE_MAX, &data, &len);
    if (rc != 0) {
        crs_error("sink %s: cannot read %s '%s': %s", sink, key, path, crs_strerror(rc));
        return rc;
    }
    while (start < len && (data[start] == ' ' || data[start] == '\t' || data[start] == '\r' ||
                           data[start] == '\n'))
        start++;
    while (len > start && (data[len - 1] == ' ' || data[len - 1] == '\t' || data[len - 1] == '\r' ||
                           data[len - 1] == '\n'))
        len--;
    if (len == start || memchr(data + start, '\0', len - start) != NULL) {
        crs_error("sink %s: %s '%s' is empty or not text", sink, key, path);
        crs_secret_free(data, len);
        return CRS_ECONFIG;
    }
    *out = crs_strndup((const char *)data + start, len - start);
    crs_secret_free(data, len);
    return *out ? 0 : CRS_ENOMEM;
}

/* RFC 6750 b64token: the only characters a bearer token may hold, so it cannot break the header. */
static int bearer_token_valid(const char *t)
{
    size_t i = 0;

    for (; t[i] != '\0' && t[i] != '='; i++) {
        char c = t[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/'))
            return 0;
    }
    if (i == 0)
        return 0;
    while (t[i] == '=')
        i++;
    return t[i] == '\0';
}

/* Checks the URL with curl's own parser and keeps scheme://host:port for log lines. */
static int url_parse(struct webhook_sink *ws, const char *name)
{
    int rc = crs_curl_url_where(ws->url, &ws->where);

    if (rc == CRS_ECONFIG) {
        crs_error("sink %s: the webhook URL cannot be parsed", name);
    } else if (rc == 0 && strncmp(ws->where, "http://", 7) != 0 &&
               strncmp(ws->where, "https://", 8) != 0) {
        crs_error("sink %s: the webhook URL must be http:// or https://", name);
        rc = CRS_ECONFIG;
    }
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Open and close                                                                              */
/* ------------------------------------------------------------------------------------------ */

static int header_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l = curl_slist_append(*list, line);

    if (l == NULL)
        return CRS_ENOMEM;
    *list = l;
    return 0;
}

/* "Expect:" stops curl from waiting for a 100 Continue before sending a large body. */
static int fixed_headers_build(struct webhook_sink *ws)
{
    const struct crs_webhook_sink_config *wc = ws->wc;
    char line[96];
    size_t i;
    int rc;

    snprintf(line, sizeof(line), "Content-Type: %s", crs_webhook_content_type(wc->format));
    if ((rc = header_add(&ws->fixed_headers, line)) ||
        (rc = header_add(&ws->fixed_headers, "Expect:")) ||
        (rc = header_add(&ws->fixed_headers, ws->ua)))
        return rc;
    if (ws->auth_header != NULL && (rc = header_add(&ws->fixed_headers, ws->auth_header)))
        return rc;
    for (i = 0; i < wc->nheaders; i++) {
        if ((rc = header_add(&ws->fixed_headers, wc->headers[i])))
            return rc;
    }
    return 0;
}

static void webhook_sink_free(void *impl)
{
    struct webhook_sink *ws = impl;
    struct curl_slist *l;
    size_t i;

    if (ws == NULL)
        return;
    for (i = 0; i < ws->nidle; i++)
        curl_easy_cleanup(ws->idle[i]);
    crs_secret_free_str(ws->url);
    crs_free(ws->where);
    crs_free(ws->ua);
    crs_secret_free(ws->secret, ws->secret_len);
    crs_secret_free_str(ws->auth_header);
    for (l = ws->fixed_headers; l != NULL; l = l->next)
        memset(l->data, 0, strlen(l->data)); /* one of them carries the bearer token */
    curl_slist_free_all(ws->fixed_headers);
    crs_free(ws);
}

static int webhook_open(struct crs_sink *sink)
{
    const struct crs_webhook_sink_config *wc;
    const char *name;
    struct webhook_sink *ws;
    char *text = NULL;
    int rc;

    if (sink == NULL || sink->cfg == NULL || sink->cfg->typed == NULL || sink->loop == NULL)
        return CRS_EINVAL;
    wc = sink->cfg->typed;
    name = sink->cfg->name;
    ws = crs_calloc(1, sizeof(*ws));
    if (ws == NULL)
        return CRS_ENOMEM;
    ws->sink = sink;
    ws->wc = wc;

    if (wc->url_file != NULL) {
        rc = read_secret_file(name, "url_file", wc->url_file, &ws->url);
        if (rc != 0)
            goto cleanup;
    } else {
        ws->url = crs_strdup(wc->url);
        if (ws->url == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
    }
    rc = url_parse(ws, name);
    if (rc != 0)
        goto cleanup;

    if (wc->secret_file != NULL) {
        rc = read_secret_file(name, "secret_file", wc->secret_file, &text);
        if (rc != 0)
            goto cleanup;
        rc = crs_webhook_secret_parse(text, strlen(text), &ws->secret, &ws->secret_len);
        crs_secret_free_str(text);
        text = NULL;
        if (rc != 0) {
            crs_error("sink %s: secret_file '%s' does not hold a base64 secret (whsec_... or "
                      "plain base64)",
                      name, wc->secret_file);
            rc = rc == CRS_ENOMEM ? rc : CRS_ECONFIG;
            goto cleanup;
        }
    }
    if (wc->bearer_token_file != NULL) {
        rc = read_secret_file(name, "bearer_token_file", wc->bearer_token_file, &text);
        if (rc != 0)
            goto cleanup;
        if (!bearer_token_valid(text)) {
            crs_error("sink %s: bearer_token_file '%s' must hold one token (letters, digits and "
                      "-._~+/ only)",
                      name, wc->bearer_token_file);
            crs_secret_free_str(text);
            text = NULL;
            rc = CRS_ECONFIG;
            goto cleanup;
        }
        ws->auth_header = crs_asprintf("Authorization: Bearer %s", text);
        crs_secret_free_str(text);
        text = NULL;
        if (ws->auth_header == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
    }
    ws->ua = crs_asprintf("User-Agent: CertRelay/%s", CRS_VERSION);
    if (ws->ua == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    rc = fixed_headers_build(ws);
    if (rc != 0)
        goto cleanup;
    rc = crs_curl_sink_acquire(sink);
    if (rc != 0)
        goto cleanup;
    if (wc->tls.insecure)
        crs_warn("sink %s: insecure = true: the TLS certificate of %s is NOT verified; anyone on "
                 "the path can read and change deliveries",
                 name, ws->where);
    if (strncmp(ws->where, "http:", 5) == 0 && ws->auth_header != NULL)
        crs_warn("sink %s: the bearer token is sent without TLS to %s", name, ws->where);
    crs_info("sink %s: webhook to %s, format %s%s", name, ws->where,
             crs_webhook_format_name(wc->format), ws->secret ? ", signed" : "");
    sink->impl = ws;
    return 0;

cleanup:
    webhook_sink_free(ws);
    return rc;
}

static void webhook_close(struct crs_sink *sink)
{
    crs_curl_sink_close(sink, webhook_sink_free);
}

/* ------------------------------------------------------------------------------------------ */
/* One attempt                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* CURLOPT_WRITEFUNCTION: the response body is discarded but for its start, kept for errors. */
static size_t on_body(char *buf, size_t size, size_t nmemb, void *userdata)
{
    struct webhook_attempt *a = userdata;
    size_t len = size * nmemb, room = WEBHOOK_EXCERPT_MAX - a->excerpt_len;

    if (room > 0) {
        size_t n = len < room ? len : room;
        memcpy(a->excerpt + a->excerpt_len, buf, n);
        a->excerpt_len += n;
        a->excerpt[a->excerpt_len] = '\0';
    }
    return len;
}

/*
 * Easy handles are pooled per sink and keep the options that never change between attempts
 * (URL, TLS, timeout, callbacks), so an attempt sets only its own body, headers and buffers.
 * Back in the pool, a handle drops every pointer into the finished attempt.
 */
static void easy_put(struct webhook_sink *ws, CURL *easy)
{
    if (easy == NULL)
        return;
    if (ws->nidle < WEBHOOK_IDLE_MAX) {
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, NULL);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, NULL);
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, NULL);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, NULL);
        ws->idle[ws->nidle++] = easy;
    } else {
        curl_easy_cleanup(easy);
    }
}

/* A pooled handle, or a new one with the sink's fixed options. NULL on failure. */
static CURL *easy_get(struct webhook_sink *ws)
{
    CURLcode c = CURLE_OK;
    CURL *easy;

    if (ws->nidle > 0)
        return ws->idle[--ws->nidle];
    easy = curl_easy_init();
    if (easy == NULL)
        return NULL;
    if (crs_curl_setup(easy, ws->sink->cfg->timeout_ms, "http,https", &ws->wc->tls) != 0) {
        curl_easy_cleanup(easy);
        return NULL;
    }
    CRS_CURL_SET(c, easy, CURLOPT_URL, ws->url);
    CRS_CURL_SET(c, easy, CURLOPT_POST, 1L);
    CRS_CURL_SET(c, easy, CURLOPT_WRITEFUNCTION, on_body);
    if (c != CURLE_OK) {
        curl_easy_cleanup(easy);
        return NULL;
    }
    return easy;
}

/* One line for the delivery table from a response body excerpt: valid UTF-8, no controls. */
static void excerpt_clean(const char *in, char *out, size_t outlen)
{
    char *c = crs_utf8_sanitize(in, strlen(in));

    out[0] = '\0';
    if (c == NULL)
        return;
    crs_sanitize_oneline(c);
    snprintf(out, outlen, "%s", c);
    crs_free(c);
}

/* The attempt's header nodes are its own (own[]) or the sink's: nothing to free but the body;
 * its easy handle goes back to the pool. */
static void attempt_release(struct crs_curl_attempt *base)
{
    struct webhook_attempt *a = (struct webhook_attempt *)base;

    easy_put(a->ws, base->xfer.easy);
    crs_free(a->body);
    crs_free(a);
}

/*
 * The final response's Retry-After, as libcurl parsed it (delay-seconds or an HTTP-date, counted
 * from now), capped at a year; -1 when there was none (libcurl reports 0 for none and for "now").
 */
static int64_t retry_after_ms(CURL *easy)
{
    curl_off_t s = 0;

    if (curl_easy_getinfo(easy, CURLINFO_RETRY_AFTER, &s) != CURLE_OK || s <= 0)
        return -1;
    if (s > (curl_off_t)366 * 86400)
        s = (curl_off_t)366 * 86400;
    return (int64_t)s * 1000;
}

/* A transfer that ended and was not canceled: what the receiver's HTTP status (or curl) says. */
static void attempt_outcome(struct crs_curl_attempt *base, CURLcode result, long code,
                            struct crs_delivery_result *r)
{
    struct webhook_attempt *a = (struct webhook_attempt *)base;

    if (result == CURLE_OK) {
        r->outcome = (enum crs_delivery_outcome)crs_http_status_outcome(code);
        if (r->outcome != CRS_DELIVERY_OK) {
            char ex[WEBHOOK_EXCERPT_MAX + 1];

            excerpt_clean(a->excerpt, ex, sizeof(ex));
            snprintf(r->error, sizeof(r->error), "HTTP %ld from %s%s%s", code, a->ws->where,
                     ex[0] ? ": " : "", ex);
            if (r->outcome == CRS_DELIVERY_RETRY)
                r->retry_after_ms = retry_after_ms(base->xfer.easy);
        }
    } else {
        /* Timeouts, refused or reset connections, DNS and TLS failures: all transient. */
        r->outcome = CRS_DELIVERY_RETRY;
        snprintf(r->error, sizeof(r->error), "curl %d: %.200s", (int)result,
                 crs_curl_attempt_error(base, result));
        crs_sanitize_oneline(r->error);
    }
}

static const struct crs_curl_attempt_ops webhook_attempt_ops = {
    .outcome = attempt_outcome,
    .release = attempt_release,
};

/* Chains one line (kept in the attempt) into the attempt's own header nodes. */
static void own_header(struct webhook_attempt *a, size_t *n, char *line)
{
    a->own[*n].data = line;
    a->own[*n].next = NULL;
    if (*n > 0)
        a->own[*n - 1].next = &a->own[*n];
    (*n)++;
}

/* The attempt's headers: webhook-id (and the signature pair), then the sink's fixed lines. */
static int attempt_headers(struct webhook_sink *ws, struct webhook_attempt *a, const char *id)
{
    char sig[CRS_WEBHOOK_SIGNATURE_LEN];
    size_t n = 0;
    int rc;

    snprintf(a->id_line, sizeof(a->id_line), "webhook-id: %s", id);
    own_header(a, &n, a->id_line);
    if (ws->secret != NULL) {
        int64_t ts = crs_now_ms() / 1000;

        rc = crs_webhook_sign(ws->secret, ws->secret_len, id, ts, a->body, a->bodylen, sig);
        if (rc)
            return rc;
        snprintf(a->ts_line, sizeof(a->ts_line), "webhook-timestamp: %lld", (long long)ts);
        snprintf(a->sig_line, sizeof(a->sig_line), "webhook-signature: %s", sig);
        own_header(a, &n, a->ts_line);
        own_header(a, &n, a->sig_line);
    }
    a->own[n - 1].next = ws->fixed_headers;
    a->headers = &a->own[0];
    return 0;
}

/* Builds the body and the attempt's header lines (on the loop or on a worker thread). */
static int attempt_build(struct webhook_attempt *a)
{
    const Certrelay__V1__Event *ev = a->base.d->event;
    int rc = crs_webhook_body(a->ws->wc->format, ev, &a->body, &a->bodylen);

    return rc != 0 ? rc : attempt_headers(a->ws, a, ev->event_id);
}

/* Hands a built attempt to curl. On error nothing was started and the caller still owns a. */
static int attempt_start(struct webhook_attempt *a)
{
    struct webhook_sink *ws = a->ws;
    CURLcode c = CURLE_OK;
    CURL *easy;
    int rc;

    easy = easy_get(ws);
    if (easy == NULL)
        return CRS_ENOMEM;
    CRS_CURL_SET(c, easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->bodylen);
    CRS_CURL_SET(c, easy, CURLOPT_POSTFIELDS, a->body);
    CRS_CURL_SET(c, easy, CURLOPT_HTTPHEADER, a->headers);
    CRS_CURL_SET(c, easy, CURLOPT_ERRORBUFFER, a->base.errbuf);
    CRS_CURL_SET(c, easy, CURLOPT_WRITEDATA, a);
    if (c != CURLE_OK) {
        easy_put(ws, easy);
        return crs_curl_code_error(c);
    }
    a->base.xfer.easy = easy;
    rc = crs_curl_multi_add(ws->sink->curl, &a->base.xfer);
    if (rc != 0) {
        a->base.xfer.easy = NULL;
        easy_put(ws, easy);
    }
    return rc;
}

static void build_work(uv_work_t *w)
{
    struct webhook_attempt *a = w->data;

    a->build_rc = attempt_build(a);
}

/* Back on the loop after a threadpool build: start the transfer, or report why not. */
static void build_done(uv_work_t *w, int status)
{
    struct webhook_attempt *a = w->data;
    int rc = 0;

    a->base.pending = NULL;
    if (status == UV_ECANCELED)
        a->base.canceled = 1;
    if (a->base.canceled || (rc = a->build_rc) != 0 || (rc = attempt_start(a)) != 0)
        crs_curl_attempt_abandon(&a->base, rc);
    /* else the transfer's completion reports it */
}

static int webhook_deliver(struct crs_sink *sink, struct crs_delivery *d)
{
    struct webhook_sink *ws = sink ? sink->impl : NULL;
    struct webhook_attempt *a;
    const char *id;
    int rc;

    if (ws == NULL || d == NULL || d->event == NULL || d->done == NULL)
        return CRS_EINVAL;
    /* The id goes into a header: it must be exactly what the broker validated, a UUID. */
    id = d->event->event_id;
    if (id == NULL || !crs_uuid_valid(id))
        return CRS_EPROTO;
    a = crs_calloc(1, sizeof(*a));
    if (a == NULL)
        return CRS_ENOMEM;
    crs_curl_attempt_init(&a->base, &ws->attempts, d, &webhook_attempt_ops);
    a->ws = ws;
    if (d->event_len > WEBHOOK_BUILD_OFFLOOP) {
        a->work.data = a;
        rc = uv_queue_work(sink->loop, &a->work, build_work, build_done);
        if (rc != 0) {
            rc = CRS_EINTERNAL;
            goto cleanup;
        }
        a->base.pending = (uv_req_t *)&a->work;
    } else {
        rc = attempt_build(a);
        if (rc == 0)
            rc = attempt_start(a);
        if (rc != 0)
            goto cleanup;
    }
    crs_curl_attempt_link(&a->base);
    return 0;

cleanup:
    attempt_release(&a->base);
    return rc;
}

const struct crs_sink_driver crs_webhook_driver = {
    .open = webhook_open,
    .deliver = webhook_deliver,
    .cancel_all = crs_curl_sink_cancel_all,
    .close = webhook_close,
};
