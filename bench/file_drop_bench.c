/*
 * File-drop rate: the real file sink driver (broker/sinks/file) writing events into a directory
 * with T attempts in flight on a threadpool of T threads, as the broker runs it (the broker sizes
 * its threadpool with one thread per concurrent delivery). Compare with bench/raw_file_drop, the
 * yardstick, run with the same threads and the sizes printed here.
 *
 *   file_drop_bench DIR THREADS EVENTS cert|crl [CRL_BYTES]
 *
 * prints: file_drop_bench kind=K threads=T events=N seconds=S rate=R/s sizes=A,B
 * ("sizes" are the bytes of each file the sink wrote for one event: DER or CRL, then JSON).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench_event.h"
#include "certrelay/alloc.h"
#include "certrelay/log.h"
#include "config/config.h"
#include "render/json.h"
#include "sinks/sink.h"

struct slot {
    struct crs_delivery d;
    struct bench_event ev;
};

struct run {
    struct crs_sink *sink;
    long n, started, done, failed;
    int crl;
    const uint8_t *crl_data;
    size_t crl_len;
};

static void slot_start(struct run *run, struct slot *s)
{
    if (run->crl)
        bench_event_crl(&s->ev, run->started, run->crl_data, run->crl_len);
    else
        bench_event_cert(&s->ev, run->started);
    run->started++;
    s->d.event = &s->ev.ev;
    s->d.attempt = 1;
    if (run->sink->driver->deliver(run->sink, &s->d) != 0) {
        run->failed++;
        run->done++;
    }
}

static void slot_done(struct crs_delivery *d, const struct crs_delivery_result *r)
{
    struct slot *s = (struct slot *)d;
    struct run *run = d->data;

    if (r->outcome != CRS_DELIVERY_OK && run->failed++ == 0)
        fprintf(stderr, "file_drop_bench: %s\n", r->error);
    run->done++;
    if (run->started < run->n)
        slot_start(run, s);
}

int main(int argc, char **argv)
{
    struct crs_config *cfg = NULL;
    struct crs_sink sink;
    struct run run;
    struct slot *slots;
    struct bench_event probe;
    char ini[1024], env[32], *json = NULL;
    size_t jsonlen = 0, first;
    unsigned threads, i;
    uv_loop_t loop;
    uint8_t *crl = NULL;
    uint64_t t0;
    double secs;

    if (argc < 5) {
        fprintf(stderr, "usage: file_drop_bench DIR THREADS EVENTS cert|crl [CRL_BYTES]\n");
        return 2;
    }
    memset(&run, 0, sizeof(run));
    threads = (unsigned)strtoul(argv[2], NULL, 10);
    run.n = strtol(argv[3], NULL, 10);
    run.crl = strcmp(argv[4], "crl") == 0;
    run.crl_len = argc > 5 ? (size_t)strtoul(argv[5], NULL, 10) : 10u * 1024 * 1024;
    if (threads == 0 || threads > 256 || run.n <= 0 || run.crl_len > (256u << 20)) {
        fprintf(stderr, "file_drop_bench: bad arguments\n");
        return 2;
    }
    /* Before the first uv_queue_work: the broker sizes its pool the same way (one thread per
     * concurrent delivery; its margin threads serve the queue and the spool). */
    snprintf(env, sizeof(env), "%u", threads);
    setenv("UV_THREADPOOL_SIZE", env, 1);
    crs_log_set_level(CRS_LOG_WARN);
    if (run.crl) {
        crl = malloc(run.crl_len);
        if (crl == NULL)
            return 1;
        for (first = 0; first < run.crl_len; first++)
            crl[first] = (uint8_t)(first * 13);
        run.crl_data = crl;
    }

    snprintf(ini, sizeof(ini),
             "[broker]\nlisten = /tmp/unused.sock\nstate_dir = /tmp\nspool_dir = /tmp\n"
             "[sink.drop]\ntype = file\ndirectory = %s\nconcurrency = %u\n",
             argv[1], threads);
    if (bench_sink_open(ini, "file", &loop, &cfg, &sink) != 0)
        return 1;
    /* The sizes of the files one event becomes, for the yardstick. */
    if (run.crl)
        bench_event_crl(&probe, 0, crl, run.crl_len);
    else
        bench_event_cert(&probe, 0);
    if (crs_event_to_json_text(&probe.ev, 1, &json, &jsonlen) != 0)
        return 1;
    first = run.crl ? run.crl_len : probe.cert.raw_certificate.len;
    crs_free(json);

    slots = calloc(threads, sizeof(*slots));
    if (slots == NULL)
        return 1;
    run.sink = &sink;
    t0 = uv_hrtime();
    for (i = 0; i < threads && run.started < run.n; i++) {
        slots[i].d.done = slot_done;
        slots[i].d.data = &run;
        slot_start(&run, &slots[i]);
    }
    while (run.done < run.n)
        uv_run(&loop, UV_RUN_ONCE);
    secs = (double)(uv_hrtime() - t0) / 1e9;
    printf("file_drop_bench kind=%s threads=%u events=%ld seconds=%.3f rate=%.1f/s sizes=%zu,%zu\n",
           run.crl ? "crl" : "cert", threads, run.n, secs, (double)run.n / secs, first, jsonlen);
    if (run.failed)
        fprintf(stderr, "file_drop_bench: %ld failed deliveries\n", run.failed);
    sink.driver->close(&sink);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    crs_config_free(cfg);
    free(slots);
    free(crl);
    return run.failed ? 1 : 0;
}
