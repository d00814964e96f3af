/*
 * The metrics endpoint (metrics_http.h): the text exposition of the counters (metrics.c) and the
 * queue's gauges, served by a minimal HTTP/1.0 endpoint.
 *
 * A scrape is one connection: the request head is read (at most METRICS_REQ_MAX bytes), GET
 * /metrics (or /) is answered with the exposition, anything else with 404/405, and the connection
 * is closed after the answer. The gauges come from a queue operation (the same query as
 * `certrelay status`), so a scrape never reads the database on the loop thread.
 *
 *   # TYPE certrelay_deliveries_total counter
 *   certrelay_deliveries_total{sink="soc",outcome="delivered"} 1042
 */
#include "metrics_http.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/spool.h"
#include "certrelay/version.h"
#include "retention.h"

#define METRICS_REQ_MAX   8192u
#define METRICS_TEXT_MAX  (4u * 1024u * 1024u)
#define METRICS_CONNS_MAX 16u

/* ---- Exposition text ---- */

struct text {
    char *p;
    size_t len, cap;
    int failed;
};

static void text_add(struct text *t, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 2, 3)))
#endif
    ;

static void text_add(struct text *t, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (t->failed)
        return;
    for (;;) {
        va_start(ap, fmt);
        n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if (t->p != NULL && (size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        {
            size_t ncap = t->cap ? t->cap * 2 : 4096;
            char *p;
            while (ncap < t->len + (size_t)n + 1)
                ncap *= 2;
            if (ncap > METRICS_TEXT_MAX || (p = crs_realloc(t->p, ncap)) == NULL) {
                t->failed = 1;
                return;
            }
            t->p = p;
            t->cap = ncap;
        }
    }
}

/* A label value: backslash, double quote and newline escaped, as the format requires. */
static void text_label(struct text *t, const char *v)
{
    char buf[256];
    size_t n = 0;

    for (; v != NULL && *v != '\0' && n + 3 < sizeof(buf); v++) {
        if (*v == '\\' || *v == '"') {
            buf[n++] = '\\';
            buf[n++] = *v;
        } else if (*v == '\n') {
            buf[n++] = '\\';
            buf[n++] = 'n';
        } else {
            buf[n++] = *v;
        }
    }
    buf[n] = '\0';
    text_add(t, "%s", buf);
}

static void text_head(struct text *t, const char *name, const char *type, const char *help)
{
    text_add(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void text_counter(struct text *t, const char *name, const char *help, uint64_t v)
{
    text_head(t, name, "counter", help);
    text_add(t, "%s %llu\n", name, (unsigned long long)v);
}

/* One gauge per sink from the status document's field (a JSON integer, null skipped). */
static void text_sink_gauge(struct text *t, json_t *sinks, const char *name, const char *help,
                            const char *field, double scale)
{
    json_t *s;
    size_t i;

    text_head(t, name, "gauge", help);
    json_array_foreach(sinks, i, s)
    {
        json_t *v = json_object_get(s, field);
        if (!json_is_integer(v))
            continue;
        text_add(t, "%s{sink=\"", name);
        text_label(t, json_string_value(json_object_get(s, "name")));
        text_add(t, "\"} %.17g\n", (double)json_integer_value(v) * scale);
    }
}

char *crs_metrics_render(const struct crs_metrics_env *env, json_t *status, int64_t now_ms)
{
    const struct crs_metrics_counts *m = crs_metrics_counts();
    static const char *const outcome_names[CRS_DM_COUNT_] = {"delivered", "retry", "dead"};
    struct text t = {NULL, 0, 0, 0};
    json_t *sinks = json_object_get(status, "sinks"), *db = json_object_get(status, "database");
    char **files = NULL;
    size_t i, nfiles = 0;
    uint64_t cum = 0;
    int o;

    text_head(&t, "certrelay_build_info", "gauge", "The broker's version.");
    text_add(&t, "certrelay_build_info{version=\"%s\"} 1\n", CRS_VERSION);
    text_head(&t, "certrelay_uptime_seconds", "gauge", "Seconds since the broker started.");
    text_add(&t, "certrelay_uptime_seconds %.3f\n", (double)(now_ms - env->started_ms) / 1000.0);
    text_counter(&t, "certrelay_events_received_total", "Events received from stubs.",
                 m->counters[CRS_M_RECEIVED]);
    text_counter(&t, "certrelay_events_acked_total", "Events acknowledged after their commit.",
                 m->counters[CRS_M_ACKED]);
    text_counter(&t, "certrelay_events_nacked_total", "Events refused (Nack).",
                 m->counters[CRS_M_NACKED]);
    text_counter(&t, "certrelay_spool_events_drained_total",
                 "Events committed from the spool directory (spooled by stubs while the broker "
                 "was away).",
                 m->counters[CRS_M_SPOOL_DRAINED]);
    if (crs_fs_list(env->cfg->spool_dir, CRS_SPOOL_SUFFIX, &files, &nfiles) == 0) {
        text_head(&t, "certrelay_spool_files", "gauge", "Spool files waiting to be drained.");
        text_add(&t, "certrelay_spool_files %zu\n", nfiles);
    }
    crs_fs_list_free(files);

    text_head(&t, "certrelay_deliveries_total", "counter",
              "Delivery attempts by sink and outcome (delivered, retry, dead).");
    for (i = 0; i < m->nsinks; i++) {
        for (o = 0; o < CRS_DM_COUNT_; o++) {
            text_add(&t, "certrelay_deliveries_total{sink=\"");
            text_label(&t, m->sinks[i].name);
            text_add(&t, "\",outcome=\"%s\"} %llu\n", outcome_names[o],
                     (unsigned long long)m->sinks[i].n[o]);
        }
    }
    text_sink_gauge(&t, sinks, "certrelay_queue_pending", "Deliveries waiting, per sink.",
                    "pending", 1.0);
    text_sink_gauge(&t, sinks, "certrelay_queue_in_flight", "Deliveries being attempted.",
                    "in_flight", 1.0);
    text_sink_gauge(&t, sinks, "certrelay_queue_dead", "Dead-lettered deliveries in the queue.",
                    "dead", 1.0);
    text_sink_gauge(&t, sinks, "certrelay_queue_oldest_pending_age_seconds",
                    "Age of the oldest pending delivery.", "oldest_pending_age_ms", 0.001);

    text_head(&t, "certrelay_commit_latency_seconds", "histogram",
              "Duration of each group commit (one SQLite transaction, then the Acks).");
    for (i = 0; i < CRS_METRICS_BUCKETS; i++) {
        cum += m->commit_buckets[i];
        text_add(&t, "certrelay_commit_latency_seconds_bucket{le=\"%g\"} %llu\n",
                 crs_metrics_commit_bounds[i], (unsigned long long)cum);
    }
    text_add(&t, "certrelay_commit_latency_seconds_bucket{le=\"+Inf\"} %llu\n",
             (unsigned long long)m->commit_count);
    text_add(&t, "certrelay_commit_latency_seconds_sum %.9f\n", m->commit_sum);
    text_add(&t, "certrelay_commit_latency_seconds_count %llu\n",
             (unsigned long long)m->commit_count);

    text_head(&t, "certrelay_database_bytes", "gauge", "Size of the queue database (pages).");
    text_add(&t, "certrelay_database_bytes %lld\n",
             (long long)json_integer_value(json_object_get(db, "bytes")));
    text_head(&t, "certrelay_database_events", "gauge", "Events held in the queue database.");
    text_add(&t, "certrelay_database_events %lld\n",
             (long long)json_integer_value(json_object_get(db, "events")));
    text_counter(&t, "certrelay_events_pruned_total", "Events deleted by retention.",
                 crs_retention_pruned(env->retention));
    if (t.failed) {
        crs_free(t.p);
        return NULL;
    }
    return t.p;
}

/* ---- The HTTP endpoint ---- */

struct mconn;

struct crs_metrics_server {
    struct crs_metrics_env env;
    uv_tcp_t listener;
    int listener_open;
    int stopping;
    size_t nconns;
    struct mconn *conns;
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

struct mconn {
    struct crs_queue_op op; /* first: the scrape's status query */
    uv_tcp_t tcp;
    struct crs_metrics_server *m;
    struct mconn *prev, *next;
    char req[METRICS_REQ_MAX + 1];
    size_t reqlen;
    int refs; /* the handle, and the query while it runs */
    int closing;
    int64_t now_ms;
    json_t *status;
    char err[256];
    uv_write_t wreq;
    char *out;
};

static void metrics_check_stopped(struct crs_metrics_server *m)
{
    void (*cb)(void *);

    if (!m->stopping || m->listener_open || m->nconns > 0 || m->stop_cb == NULL)
        return;
    cb = m->stop_cb;
    m->stop_cb = NULL;
    cb(m->stop_arg);
}

static void mconn_unref(struct mconn *c)
{
    struct crs_metrics_server *m = c->m;

    if (--c->refs > 0)
        return;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        m->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    m->nconns--;
    json_decref(c->status);
    crs_free(c->out);
    crs_free(c);
    metrics_check_stopped(m);
}

static void mconn_closed(uv_handle_t *h)
{
    mconn_unref(h->data);
}

static void mconn_close(struct mconn *c)
{
    if (c->closing)
        return;
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, mconn_closed);
}

static void mconn_written(uv_write_t *req, int status)
{
    mconn_close(req->data);
}

static void mconn_answer(struct mconn *c, const char *status_line, const char *type,
                         const char *body)
{
    uv_buf_t b;

    if (c->closing)
        return;
    c->out = crs_asprintf("HTTP/1.0 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n%s",
                          status_line, type, strlen(body), body);
    if (c->out == NULL) {
        mconn_close(c);
        return;
    }
    b = uv_buf_init(c->out, (unsigned)strlen(c->out));
    c->wreq.data = c;
    if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &b, 1, mconn_written) != 0)
        mconn_close(c);
}

static int mconn_run(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct mconn *c = (struct mconn *)op;

    return crs_queue_admin_status(db, cfg, c->now_ms, &c->status, c->err, sizeof(c->err));
}

static void mconn_query_done(struct crs_queue_op *op, int status)
{
    struct mconn *c = (struct mconn *)op;
    json_t *sinks = json_object_get(c->status, "sinks");
    char *text = NULL;
    size_t i;

    if (status == 0) {
        /* Attempts in flight are known only in memory. */
        for (i = 0; i < json_array_size(sinks) && i < c->m->env.cfg->nsinks; i++)
            json_object_set_new(json_array_get(sinks, i), "in_flight",
                                json_integer(c->m->env.sinks[i].inflight));
        text = crs_metrics_render(&c->m->env, c->status, crs_now_ms());
    }
    if (text != NULL)
        mconn_answer(c, "200 OK", "text/plain; version=0.0.4; charset=utf-8", text);
    else
        mconn_answer(c, "503 Service Unavailable", "text/plain",
                     status ? (c->err[0] ? c->err : crs_strerror(status)) : "out of memory\n");
    crs_free(text);
    mconn_unref(c);
}

static void mconn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct mconn *c = h->data;

    buf->base = c->req + c->reqlen;
    buf->len = METRICS_REQ_MAX - c->reqlen;
}

static void mconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct mconn *c = s->data;

    if (nread < 0) {
        mconn_close(c);
        return;
    }
    c->reqlen += (size_t)nread;
    c->req[c->reqlen] = '\0';
    if (strstr(c->req, "\r\n\r\n") == NULL && strstr(c->req, "\n\n") == NULL) {
        if (c->reqlen >= METRICS_REQ_MAX)
            mconn_answer(c, "431 Request Header Fields Too Large", "text/plain", "too large\n");
        return;
    }
    uv_read_stop(s);
    if (strncmp(c->req, "GET ", 4) != 0) {
        mconn_answer(c, "405 Method Not Allowed", "text/plain", "GET only\n");
        return;
    }
    if (strncmp(c->req + 4, "/metrics ", 9) != 0 && strncmp(c->req + 4, "/ ", 2) != 0) {
        mconn_answer(c, "404 Not Found", "text/plain", "see /metrics\n");
        return;
    }
    c->now_ms = crs_now_ms();
    c->refs++;
    c->op.run = mconn_run;
    c->op.done = mconn_query_done;
    crs_queue_submit(c->m->env.q, &c->op);
}

static void metrics_on_connection(uv_stream_t *listener, int status)
{
    struct crs_metrics_server *m = listener->data;
    struct mconn *c;

    if (status != 0 || m->stopping)
        return;
    c = crs_calloc(1, sizeof(*c));
    if (c == NULL || uv_tcp_init(m->env.loop, &c->tcp) != 0) {
        crs_free(c);
        return;
    }
    c->m = m;
    c->refs = 1;
    c->tcp.data = c;
    c->next = m->conns;
    if (m->conns != NULL)
        m->conns->prev = c;
    m->conns = c;
    m->nconns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0 || m->nconns > METRICS_CONNS_MAX ||
        uv_read_start((uv_stream_t *)&c->tcp, mconn_alloc, mconn_read) != 0)
        mconn_close(c);
}

/* "127.0.0.1:9464", "[::1]:9464" or ":9464" (all addresses). */
static int metrics_parse_addr(const char *s, struct sockaddr_storage *sa, int *loopback)
{
    const char *colon = strrchr(s, ':');
    char host[64];
    size_t hlen;
    long port;
    char *end;

    if (colon == NULL)
        return CRS_EINVAL;
    port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535)
        return CRS_EINVAL;
    hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']') {
        s++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return CRS_EINVAL;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    if (hlen == 0)
        snprintf(host, sizeof(host), "0.0.0.0");
    *loopback = strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0;
    if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)sa) == 0)
        return 0;
    if (uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)sa) == 0)
        return 0;
    return CRS_EINVAL;
}

static void metrics_free_on_close(uv_handle_t *h)
{
    crs_free(h->data);
}

int crs_metrics_server_start(const struct crs_metrics_env *env, struct crs_metrics_server **out)
{
    struct crs_metrics_server *m;
    struct sockaddr_storage sa;
    int loopback = 0, rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (env == NULL || env->cfg == NULL)
        return CRS_EINVAL;
    if (env->cfg->metrics_listen == NULL)
        return 0;
    if (metrics_parse_addr(env->cfg->metrics_listen, &sa, &loopback) != 0) {
        crs_error("metrics_listen %s: expected HOST:PORT", env->cfg->metrics_listen);
        return CRS_ECONFIG;
    }
    m = crs_calloc(1, sizeof(*m));
    if (m == NULL)
        return CRS_ENOMEM;
    m->env = *env;
    rc = uv_tcp_init(env->loop, &m->listener);
    if (rc != 0) {
        crs_free(m);
        return crs_translate_sys_error(-rc);
    }
    m->listener.data = m;
    rc = uv_tcp_bind(&m->listener, (const struct sockaddr *)&sa, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&m->listener, 16, metrics_on_connection);
    if (rc != 0) {
        crs_error("metrics: cannot listen on %s: %s", env->cfg->metrics_listen, uv_strerror(rc));
        uv_close((uv_handle_t *)&m->listener, metrics_free_on_close);
        return crs_translate_sys_error(-rc);
    }
    m->listener_open = 1;
    if (!loopback)
        crs_warn("metrics: %s is not a loopback address; the metrics are readable from the "
                 "network",
                 env->cfg->metrics_listen);
    crs_info("metrics on http://%s/metrics", env->cfg->metrics_listen);
    *out = m;
    return 0;
}

void crs_metrics_server_set_config(struct crs_metrics_server *m, const struct crs_config *cfg,
                                   struct crs_sink *sinks)
{
    if (m == NULL || cfg == NULL)
        return;
    m->env.cfg = cfg;
    m->env.sinks = sinks;
}

static void metrics_listener_closed(uv_handle_t *h)
{
    struct crs_metrics_server *m = h->data;

    m->listener_open = 0;
    metrics_check_stopped(m);
}

void crs_metrics_server_stop(struct crs_metrics_server *m, void (*cb)(void *arg), void *arg)
{
    struct mconn *c;

    if (m == NULL || m->stopping)
        return;
    m->stopping = 1;
    m->stop_cb = cb;
    m->stop_arg = arg;
    if (m->listener_open)
        uv_close((uv_handle_t *)&m->listener, metrics_listener_closed);
    for (c = m->conns; c != NULL; c = c->next)
        mconn_close(c);
    metrics_check_stopped(m);
}

void crs_metrics_server_free(struct crs_metrics_server *m)
{
    crs_free(m);
}
