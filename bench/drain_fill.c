/*
 * Fills a broker's queue with a backlog for bench/drain_bench.py: N certificate-issued events,
 * committed through the broker's own queue code (crs_ingest_item_new routes them to the sinks
 * of the configuration, crs_queue_ingest commits them in groups), so the database holds exactly
 * the rows the broker would have stored had the events arrived while its sinks were away. The
 * broker must not be running on the same state directory.
 *
 *   drain_fill CONFIG EVENTS
 *
 * prints: drain_fill events=N seconds=S rate=R/s body_bytes=B
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "bench_event.h"
#include "certrelay/alloc.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "config/config.h"
#include "queue.h"

/* Items handed to the queue and not committed yet: bounds the filler's memory. */
#define FILL_WINDOW 4096

struct fill {
    struct crs_queue *q;
    const struct crs_config *cfg;
    long total, made, committed, failed;
    size_t body_len;
    int closed;
};

static void fill_more(struct fill *f);

static void fill_done(struct crs_ingest_item *item, int status, const char *reason)
{
    struct fill *f = item->data;

    if (status != 0 && f->failed++ == 0)
        fprintf(stderr, "drain_fill: commit failed: %s\n", reason ? reason : "?");
    f->committed++;
    crs_ingest_item_free(item);
    fill_more(f);
}

static void fill_more(struct fill *f)
{
    while (f->made < f->total && f->made - f->committed < FILL_WINDOW && f->failed == 0) {
        struct bench_event b;
        struct crs_ingest_item *item = NULL;
        uint8_t *body = NULL;
        size_t len = 0;

        bench_event_cert(&b, f->made);
        if (crs_event_pack(&b.ev, &body, &len) != 0 ||
            crs_ingest_item_new(f->cfg, &b.ev, body, len, &item) != 0) {
            crs_free(body);
            f->failed++;
            fprintf(stderr, "drain_fill: cannot build event %ld\n", f->made);
            return;
        }
        crs_free(body);
        f->body_len = len;
        item->done = fill_done;
        item->data = f;
        f->made++;
        crs_queue_ingest(f->q, item);
    }
}

static void fill_closed(void *arg)
{
    ((struct fill *)arg)->closed = 1;
}

int main(int argc, char **argv)
{
    struct crs_config *cfg = NULL;
    struct fill f;
    char err[CRS_CONFIG_ERRLEN];
    uv_loop_t loop;
    uint64_t t0;
    double secs;

    if (argc != 3) {
        fprintf(stderr, "usage: drain_fill CONFIG EVENTS\n");
        return 2;
    }
    memset(&f, 0, sizeof(f));
    f.total = strtol(argv[2], NULL, 10);
    if (f.total <= 0) {
        fprintf(stderr, "drain_fill: bad count\n");
        return 2;
    }
    crs_log_set_level(CRS_LOG_WARN);
    if (crs_config_load(argv[1], &cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    f.cfg = cfg;
    uv_loop_init(&loop);
    if (crs_queue_open(&loop, cfg, &f.q) != 0)
        return 1;
    t0 = uv_hrtime();
    fill_more(&f);
    while (f.committed < f.made)
        uv_run(&loop, UV_RUN_ONCE);
    secs = (double)(uv_hrtime() - t0) / 1e9;
    crs_queue_close(f.q, fill_closed, &f);
    while (!f.closed)
        uv_run(&loop, UV_RUN_ONCE);
    crs_queue_free(f.q);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    crs_config_free(cfg);
    if (f.failed)
        return 1;
    printf("drain_fill events=%ld seconds=%.3f rate=%.1f/s body_bytes=%zu\n", f.made, secs,
           (double)f.made / secs, f.body_len);
    return 0;
}
