/*
 * Webhook fan-out rate: the real webhook driver (crs_sink_driver_webhook on broker/curl_uv.c,
 * one libuv loop) against a plain libcurl multi loop posting the same bodies, in one run, both
 * to the same local HTTP/1.1 keep-alive responder that answers 204.
 *
 *   webhook_bench [--requests N] [--concurrency C] [--rounds R]
 *   webhook_bench --serve 1      only the responder, for bench/drain_bench.py: prints "port P",
 *                                answers until its standard input closes, then prints its counts
 *
 * The responder is a small libuv server on its own thread (a Python server would be the
 * bottleneck); it counts connections, which shows that both sides reuse theirs. Rounds alternate
 * between the two sides and the median of each is reported, with the driver's rate as a share of
 * the baseline's (target: at least 70%). Nothing is asserted: it prints figures.
 *
 * The driver side does everything a delivery does in the broker except the database: build the
 * JSON body from the decoded event, build the headers, run the transfer through curl_uv, classify
 * the outcome. The baseline posts bodies rendered beforehand.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <uv.h>

#include "bench_event.h"
#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "certrelay/uuid.h"
#include "sinks/webhook/formats.h"
#include "curl_uv.h"
#include "sinks/sink.h"

#define NEVENTS 64

/* ------------------------------------------------------------------------------------------ */
/* The 204 responder                                                                           */
/* ------------------------------------------------------------------------------------------ */

static const char response[] = "HTTP/1.1 204 No Content\r\nServer: bench\r\n\r\n";

struct responder {
    uv_loop_t loop;
    uv_tcp_t server;
    uv_async_t stop;
    uv_thread_t thread;
    int port;
    unsigned long connections; /* read by the main thread between phases only */
    unsigned long requests;
};

struct rconn {
    uv_tcp_t tcp;
    struct responder *r;
    char hdr[16384]; /* the header being received */
    size_t hlen;
    size_t body_left;
    char rbuf[65536];
};

static void rconn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void rconn_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    struct rconn *c = h->data;

    (void)hint;
    *buf = uv_buf_init(c->rbuf, sizeof(c->rbuf));
}

static void rconn_written(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void rconn_respond(struct rconn *c)
{
    uv_buf_t b = uv_buf_init((char *)response, sizeof(response) - 1);
    int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

    c->r->requests++;
    if (n == (int)b.len)
        return;
    if (n > 0) {
        b.base += n;
        b.len -= (size_t)n;
    }
    {
        uv_write_t *w = malloc(sizeof(*w));
        if (w == NULL || uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, rconn_written) != 0)
            free(w);
    }
}

static size_t content_length(const char *h, size_t n)
{
    size_t i;

    for (i = 0; i + 15 < n; i++) {
        if ((h[i] == '\n') && strncasecmp(h + i + 1, "content-length:", 15) == 0)
            return (size_t)strtoul(h + i + 16, NULL, 10);
    }
    return 0;
}

/* Consumes requests: a header up to the blank line, then Content-Length bytes of body. */
static void rconn_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct rconn *c = s->data;
    const char *p = buf->base;
    size_t left;

    if (nread < 0) {
        uv_close((uv_handle_t *)s, rconn_closed);
        return;
    }
    left = (size_t)nread;
    while (left > 0) {
        if (c->body_left > 0) {
            size_t n = left < c->body_left ? left : c->body_left;
            p += n;
            left -= n;
            c->body_left -= n;
            if (c->body_left == 0)
                rconn_respond(c);
            continue;
        }
        {
            size_t room = sizeof(c->hdr) - 1 - c->hlen, n = left < room ? left : room;
            char *end;

            memcpy(c->hdr + c->hlen, p, n);
            c->hlen += n;
            c->hdr[c->hlen] = '\0';
            end = strstr(c->hdr, "\r\n\r\n");
            if (end == NULL) {
                if (c->hlen == sizeof(c->hdr) - 1) {
                    uv_close((uv_handle_t *)s, rconn_closed);
                    return;
                }
                p += n;
                left -= n;
                continue;
            }
            {
                size_t hsize = (size_t)(end + 4 - c->hdr);
                size_t used = hsize - (c->hlen - n); /* bytes of this chunk in the header */
                c->body_left = content_length(c->hdr, hsize);
                c->hlen = 0;
                p += used;
                left -= used;
                if (c->body_left == 0)
                    rconn_respond(c);
            }
        }
    }
}

static void responder_accept(uv_stream_t *server, int status)
{
    struct responder *r = server->data;
    struct rconn *c;

    if (status < 0)
        return;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return;
    c->r = r;
    uv_tcp_init(&r->loop, &c->tcp);
    c->tcp.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        uv_close((uv_handle_t *)&c->tcp, rconn_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    r->connections++;
    uv_read_start((uv_stream_t *)&c->tcp, rconn_alloc, rconn_read);
}

static void responder_close_walk(uv_handle_t *h, void *arg)
{
    struct responder *r = arg;

    if (uv_is_closing(h))
        return;
    if (h == (uv_handle_t *)&r->server || h == (uv_handle_t *)&r->stop)
        uv_close(h, NULL);
    else
        uv_close(h, rconn_closed);
}

static void responder_stop_cb(uv_async_t *a)
{
    struct responder *r = a->data;

    uv_walk(&r->loop, responder_close_walk, r);
}

static void responder_thread(void *arg)
{
    struct responder *r = arg;

    uv_run(&r->loop, UV_RUN_DEFAULT);
}

static int responder_start(struct responder *r)
{
    struct sockaddr_in addr;
    struct sockaddr_storage bound;
    int len = sizeof(bound);

    memset(r, 0, sizeof(*r));
    uv_loop_init(&r->loop);
    uv_tcp_init(&r->loop, &r->server);
    r->server.data = r;
    uv_async_init(&r->loop, &r->stop, responder_stop_cb);
    r->stop.data = r;
    uv_ip4_addr("127.0.0.1", 0, &addr);
    if (uv_tcp_bind(&r->server, (const struct sockaddr *)&addr, 0) != 0 ||
        uv_listen((uv_stream_t *)&r->server, 1024, responder_accept) != 0)
        return -1;
    uv_tcp_getsockname(&r->server, (struct sockaddr *)&bound, &len);
    r->port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
    return uv_thread_create(&r->thread, responder_thread, r);
}

static void responder_stop(struct responder *r)
{
    uv_async_send(&r->stop);
    uv_thread_join(&r->thread);
    uv_loop_close(&r->loop);
}

/* ------------------------------------------------------------------------------------------ */
/* Events                                                                                      */
/* ------------------------------------------------------------------------------------------ */

static struct bench_event events[NEVENTS];
static char *bodies[NEVENTS];
static size_t body_lens[NEVENTS];

/* ------------------------------------------------------------------------------------------ */
/* Baseline: a plain libcurl multi loop                                                        */
/* ------------------------------------------------------------------------------------------ */

static double run_baseline(const char *url, unsigned long n, unsigned conc)
{
    CURLM *m = curl_multi_init();
    CURL **easies = calloc(conc, sizeof(*easies));
    struct curl_slist *headers = NULL;
    unsigned long started = 0, done = 0, failed = 0;
    uint64_t t0;
    unsigned i;
    int running;

    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    t0 = uv_hrtime();
    for (i = 0; i < conc && started < n; i++, started++) {
        easies[i] = curl_easy_init();
        curl_easy_setopt(easies[i], CURLOPT_URL, url);
        curl_easy_setopt(easies[i], CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(easies[i], CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easies[i], CURLOPT_POSTFIELDS, bodies[started % NEVENTS]);
        curl_easy_setopt(easies[i], CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)body_lens[started % NEVENTS]);
        curl_multi_add_handle(m, easies[i]);
    }
    while (done < n) {
        CURLMsg *msg;
        int q;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &q)) != NULL) {
            CURL *e = msg->easy_handle;
            long code = 0;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
            if (msg->data.result != CURLE_OK || code != 204)
                failed++;
            done++;
            curl_multi_remove_handle(m, e);
            if (started < n) {
                curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[started % NEVENTS]);
                curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)body_lens[started % NEVENTS]);
                started++;
                curl_multi_add_handle(m, e);
            }
        }
        if (done < n)
            curl_multi_poll(m, NULL, 0, 1000, NULL);
    }
    {
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        for (i = 0; i < conc; i++)
            curl_easy_cleanup(easies[i]);
        free(easies);
        curl_slist_free_all(headers);
        curl_multi_cleanup(m);
        if (failed)
            fprintf(stderr, "baseline: %lu failed requests\n", failed);
        return (double)n / secs;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* The webhook driver                                                                          */
/* ------------------------------------------------------------------------------------------ */

struct driver_run {
    struct crs_sink *sink;
    unsigned long n, started, done, failed;
    struct crs_delivery *slots;
};

static void driver_done(struct crs_delivery *d, const struct crs_delivery_result *r)
{
    struct driver_run *run = d->data;

    if (r->outcome != CRS_DELIVERY_OK) {
        if (run->failed++ == 0)
            fprintf(stderr, "driver: %s\n", r->error);
    }
    run->done++;
    if (run->started < run->n) {
        d->event = &events[run->started % NEVENTS].ev;
        run->started++;
        if (run->sink->driver->deliver(run->sink, d) != 0) {
            run->failed++;
            run->done++;
        }
    }
}

static double run_driver(uv_loop_t *loop, struct crs_sink *sink, unsigned long n, unsigned conc)
{
    struct driver_run run;
    uint64_t t0;
    unsigned i;

    memset(&run, 0, sizeof(run));
    run.sink = sink;
    run.n = n;
    run.slots = calloc(conc, sizeof(*run.slots));
    t0 = uv_hrtime();
    for (i = 0; i < conc && run.started < n; i++, run.started++) {
        struct crs_delivery *d = &run.slots[i];
        d->event = &events[run.started % NEVENTS].ev;
        d->attempt = 1;
        d->done = driver_done;
        d->data = &run;
        if (sink->driver->deliver(sink, d) != 0) {
            run.failed++;
            run.done++;
        }
    }
    while (run.done < n)
        uv_run(loop, UV_RUN_ONCE);
    {
        double secs = (double)(uv_hrtime() - t0) / 1e9;
        free(run.slots);
        if (run.failed)
            fprintf(stderr, "driver: %lu failed deliveries\n", run.failed);
        return (double)n / secs;
    }
}

/* ------------------------------------------------------------------------------------------ */

/* The responder alone, as the receiver of a broker's webhook sink (bench/drain_bench.py). */
static int serve_only(void)
{
    struct responder resp;
    char line[64];

    if (responder_start(&resp) != 0) {
        fprintf(stderr, "cannot start the responder\n");
        return 1;
    }
    printf("port %d\n", resp.port);
    fflush(stdout);
    while (fgets(line, sizeof(line), stdin) != NULL)
        ;
    responder_stop(&resp);
    printf("requests %lu connections %lu\n", resp.requests, resp.connections);
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    unsigned long n = 20000;
    unsigned conc = 16, rounds = 3, i;
    int only = 0; /* 1: baseline only, 2: driver only (for profiling) */
    struct responder resp;
    struct crs_config *cfg = NULL;
    struct crs_sink sink;
    char url[64], ini[512];
    double base[16], drv[16];
    unsigned long conn_base, conn_drv;
    uv_loop_t loop;
    size_t avg = 0;

    for (i = 1; i + 1 < (unsigned)argc; i += 2) {
        if (strcmp(argv[i], "--requests") == 0)
            n = strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--concurrency") == 0)
            conc = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--rounds") == 0)
            rounds = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--only") == 0)
            only = strcmp(argv[i + 1], "driver") == 0 ? 2 : 1;
        else if (strcmp(argv[i], "--serve") == 0)
            return serve_only();
    }
    if (n == 0 || conc == 0 || conc > 256 || rounds == 0 || rounds > 16) {
        fprintf(stderr, "usage: webhook_bench [--requests N] [--concurrency C] [--rounds R<=16] "
                        "[--only baseline|driver]\n");
        return 2;
    }
    crs_log_set_level(CRS_LOG_WARN);
    for (i = 0; i < NEVENTS; i++) {
        bench_event_cert(&events[i], (long)i);
        if (crs_webhook_body(CRS_WEBHOOK_JSON, &events[i].ev, &bodies[i], &body_lens[i]) != 0) {
            fprintf(stderr, "cannot build bodies\n");
            return 1;
        }
        avg += body_lens[i];
    }
    if (responder_start(&resp) != 0) {
        fprintf(stderr, "cannot start the responder\n");
        return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/hook", resp.port);
    snprintf(ini, sizeof(ini),
             "[broker]\nlisten = /tmp/unused.sock\nstate_dir = /tmp\nspool_dir = /tmp\n"
             "[sink.bench]\ntype = webhook\nurl = %s\nformat = json\nconcurrency = %u\n",
             url, conc);
    if (bench_sink_open(ini, "webhook", &loop, &cfg, &sink) != 0)
        return 1;

    /* Warm-up: connections and caches on both sides. */
    run_baseline(url, 500, conc);
    run_driver(&loop, &sink, 500, conc);
    conn_base = conn_drv = 0;
    for (i = 0; i < rounds; i++) {
        unsigned long c0 = resp.connections;
        base[i] = only == 2 ? 1 : run_baseline(url, n, conc);
        conn_base += resp.connections - c0;
        c0 = resp.connections;
        drv[i] = only == 1 ? 1 : run_driver(&loop, &sink, n, conc);
        conn_drv += resp.connections - c0;
    }
    qsort(base, rounds, sizeof(double), cmp_double);
    qsort(drv, rounds, sizeof(double), cmp_double);

    printf("webhook fan-out: %lu POSTs of %zu-byte JSON per round, concurrency %u, %u rounds, "
           "local keep-alive 204 responder\n",
           n, avg / NEVENTS, conc, rounds);
    printf("  plain libcurl multi loop:         %10.0f req/s (median; %lu new connections)\n",
           base[rounds / 2], conn_base);
    printf("  CertRelay webhook driver+curl_uv: %10.0f req/s (median; %lu new connections)\n",
           drv[rounds / 2], conn_drv);
    printf("  ratio: %.0f%% of the baseline (target >= 70%%)\n",
           100.0 * drv[rounds / 2] / base[rounds / 2]);

    sink.driver->close(&sink);
    uv_run(&loop, UV_RUN_DEFAULT); /* lets curl_uv close its handles */
    uv_loop_close(&loop);
    responder_stop(&resp);
    crs_config_free(cfg);
    for (i = 0; i < NEVENTS; i++)
        crs_free(bodies[i]);
    return 0;
}
