/*
 * Retention (retention.h): a timer starts a round; a round is a chain of prune batches run as
 * queue operations (crs_queue_submit), one at a time, until a batch comes back short.
 */
#include "retention.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "queue_dedup.h"

struct crs_retention {
    struct crs_queue_op op; /* the batch in the queue, when busy */
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    uv_timer_t timer;
    int timer_open;
    int busy; /* op is in the queue */
    int stopping;
    int64_t now_ms;
    int64_t batch_pruned;
    int64_t keys_pruned; /* dedup keys of the batch */
    uint64_t pruned;
    struct crs_dedup_cursor keys; /* where the sweep of dedup keys stands */
    char err[256];
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static uint64_t retention_period(const struct crs_config *cfg)
{
    int64_t shortest =
        cfg->retention_ms < cfg->dead_retention_ms ? cfg->retention_ms : cfg->dead_retention_ms;
    int64_t p;

    if (cfg->dedup_retention_ms > 0 && cfg->dedup_retention_ms < shortest)
        shortest = cfg->dedup_retention_ms;
    p = shortest / 4;

    if (p < CRS_RETENTION_MIN_PERIOD_MS)
        p = CRS_RETENTION_MIN_PERIOD_MS;
    if (p > CRS_RETENTION_MAX_PERIOD_MS)
        p = CRS_RETENTION_MAX_PERIOD_MS;
    return (uint64_t)p;
}

static void retention_check_stopped(struct crs_retention *r)
{
    void (*cb)(void *);

    if (!r->stopping || r->busy || r->timer_open || r->stop_cb == NULL)
        return;
    cb = r->stop_cb;
    r->stop_cb = NULL;
    cb(r->stop_arg);
}

/* On the worker, in the queue's lane. */
static int retention_run(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct crs_retention *r = (struct crs_retention *)op;
    int rc;

    rc = crs_queue_prune(db, cfg, r->now_ms, CRS_RETENTION_BATCH, &r->batch_pruned, r->err,
                         sizeof(r->err));
    r->keys.done = 1; /* unless the sweep below stops short of the end */
    if (rc != 0 || cfg->dedup_retention_ms <= 0)
        return rc;
    /* The dedup keys outlive their events (a later catch-up must still find them), so they have
     * their own period; one batch of the sweep rides along with each batch of events. */
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        goto fail;
    if (crs_dedup_prune(db, r->now_ms - cfg->dedup_retention_ms, CRS_RETENTION_BATCH, &r->keys,
                        &r->keys_pruned) != 0) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
        goto fail;
    }
    return 0;

fail:
    snprintf(r->err, sizeof(r->err), "pruning dedup keys: %s", sqlite3_errmsg(db));
    return CRS_EDB;
}

static void retention_done(struct crs_queue_op *op, int status);

static void retention_submit(struct crs_retention *r)
{
    memset(&r->op, 0, sizeof(r->op));
    r->op.run = retention_run;
    r->op.done = retention_done;
    r->busy = 1;
    r->now_ms = crs_now_ms();
    r->batch_pruned = 0;
    r->keys_pruned = 0;
    r->err[0] = '\0';
    crs_queue_submit(r->q, &r->op);
}

static void retention_done(struct crs_queue_op *op, int status)
{
    struct crs_retention *r = (struct crs_retention *)op;

    r->busy = 0;
    if (status != 0 && status != CRS_ECANCELED)
        crs_warn("retention: %s", r->err[0] ? r->err : crs_strerror(status));
    if (status == 0 && r->batch_pruned > 0) {
        r->pruned += (uint64_t)r->batch_pruned;
        crs_debug("retention: pruned %lld events", (long long)r->batch_pruned);
    }
    if (status == 0 && r->keys_pruned > 0)
        crs_info("retention: %lld catch-up dedup keys older than dedup_retention removed",
                 (long long)r->keys_pruned);
    /* A full batch means more may be waiting: the next batch queues behind the commits that
     * arrived meanwhile, so pruning a large backlog interleaves with ingest. */
    if (status == 0 && !r->stopping &&
        (r->batch_pruned >= (int64_t)CRS_RETENTION_BATCH || !r->keys.done))
        retention_submit(r);
    retention_check_stopped(r);
}

static void retention_timer_cb(uv_timer_t *t)
{
    struct crs_retention *r = t->data;

    if (!r->busy && !r->stopping)
        retention_submit(r);
}

int crs_retention_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                      struct crs_retention **out)
{
    struct crs_retention *r;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || q == NULL)
        return CRS_EINVAL;
    r = crs_calloc(1, sizeof(*r));
    if (r == NULL)
        return CRS_ENOMEM;
    r->loop = loop;
    r->cfg = cfg;
    r->q = q;
    rc = uv_timer_init(loop, &r->timer);
    if (rc != 0) {
        crs_free(r);
        return crs_translate_sys_error(-rc);
    }
    r->timer.data = r;
    r->timer_open = 1;
    *out = r;
    return 0;
}

int crs_retention_start(struct crs_retention *r)
{
    uint64_t period;

    if (r == NULL)
        return CRS_EINVAL;
    period = retention_period(r->cfg);
    /* The timer does not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&r->timer);
    return uv_timer_start(&r->timer, retention_timer_cb, period, period) == 0 ? 0 : CRS_EIO;
}

void crs_retention_set_config(struct crs_retention *r, const struct crs_config *cfg)
{
    uint64_t period;

    if (r == NULL || cfg == NULL)
        return;
    r->cfg = cfg;
    period = retention_period(cfg);
    if (r->timer_open && !r->stopping && uv_timer_get_repeat(&r->timer) != period)
        uv_timer_start(&r->timer, retention_timer_cb, period, period);
}

static void retention_timer_closed(uv_handle_t *h)
{
    struct crs_retention *r = h->data;

    r->timer_open = 0;
    retention_check_stopped(r);
}

void crs_retention_stop(struct crs_retention *r, void (*cb)(void *arg), void *arg)
{
    if (r == NULL || r->stopping)
        return;
    r->stopping = 1;
    r->stop_cb = cb;
    r->stop_arg = arg;
    if (r->timer_open && !uv_is_closing((uv_handle_t *)&r->timer))
        uv_close((uv_handle_t *)&r->timer, retention_timer_closed);
    else
        retention_check_stopped(r);
}

uint64_t crs_retention_pruned(const struct crs_retention *r)
{
    return r != NULL ? r->pruned : 0;
}

void crs_retention_free(struct crs_retention *r)
{
    crs_free(r);
}
