/*
 * Expiry and CRL alerts (expiry.h, expiry_store.h).
 */
#include "expiry.h"

#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/log.h"
#include "dispatch.h"
#include "expiry_store.h"
#include "queue.h"

/* The longest the timer sleeps: the wall clock may move under a monotonic timer. */
#define EXPIRY_MAX_SLEEP_MS (3600LL * 1000)
/* How often the wall clock is compared with the monotonic one, and by how much they may drift
 * apart before the schedules are looked at again. */
#define EXPIRY_JUMP_CHECK_MS 60000
#define EXPIRY_JUMP_MS       5000

/* ---- The loop half ---- */

struct crs_expiry {
    struct crs_queue_op op; /* the tick in the queue, when busy */
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    struct crs_dispatcher *disp;
    uv_timer_t timer; /* the next due schedule */
    uv_timer_t watch; /* wall clock jumps */
    int open;         /* handles not yet closed */
    int busy;         /* op is in the queue */
    int again;        /* a tick was asked for while one ran (a clock jump, a reload) */
    int replan;       /* the next tick plans every active schedule again */
    int tick_replan;  /* the tick in flight does */
    int stopping;
    int64_t now_ms;
    int64_t armed_ms; /* wall time the timer is set for, INT64_MAX when idle */
    int64_t skew_ms;  /* wall minus monotonic at the last watch */
    struct crs_expiry_tick res;
    uint64_t created;
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static void expiry_submit(struct crs_expiry *x);

static void expiry_check_stopped(struct crs_expiry *x)
{
    void (*cb)(void *);

    if (!x->stopping || x->busy || x->open > 0 || x->stop_cb == NULL)
        return;
    cb = x->stop_cb;
    x->stop_cb = NULL;
    cb(x->stop_arg);
}

static int64_t expiry_skew(const struct crs_expiry *x)
{
    return crs_now_ms() - (int64_t)uv_now(x->loop);
}

static void expiry_timer_cb(uv_timer_t *t)
{
    struct crs_expiry *x = t->data;

    x->armed_ms = INT64_MAX;
    expiry_submit(x);
}

/* Sleeps until due_ms (wall time), at most EXPIRY_MAX_SLEEP_MS. */
static void expiry_arm(struct crs_expiry *x, int64_t due_ms)
{
    int64_t now = crs_now_ms(), delay;

    if (x->stopping)
        return;
    delay = due_ms == INT64_MAX ? EXPIRY_MAX_SLEEP_MS : due_ms - now;
    if (delay < 0)
        delay = 0;
    if (delay > EXPIRY_MAX_SLEEP_MS)
        delay = EXPIRY_MAX_SLEEP_MS;
    x->armed_ms = now + delay;
    uv_timer_start(&x->timer, expiry_timer_cb, (uint64_t)delay, 0);
}

static int tick_op_run(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct crs_expiry *x = (struct crs_expiry *)op;
    struct crs_expiry_db *xdb = crs_queue_expiry_db(x->q);

    (void)db;
    if (xdb == NULL)
        return CRS_EINVAL;
    return crs_expiry_db_tick(xdb, cfg, x->now_ms, x->tick_replan, &x->res);
}

static void tick_op_done(struct crs_queue_op *op, int status)
{
    struct crs_expiry *x = (struct crs_expiry *)op;

    x->busy = 0;
    if (status != 0 && status != CRS_ECANCELED) {
        crs_warn("expiry: tick failed: %s; trying again in a minute", crs_strerror(status));
        x->replan |= x->tick_replan;
        if (!x->stopping) {
            x->armed_ms = crs_now_ms() + 60000;
            uv_timer_start(&x->timer, expiry_timer_cb, 60000, 0);
        }
        expiry_check_stopped(x);
        return;
    }
    if (status == 0)
        crs_debug("expiry: tick looked at %u schedules, raised %u alerts", x->res.processed,
                  x->res.created);
    if (status == 0 && x->res.created > 0) {
        x->created += x->res.created;
        crs_info("expiry: %u alert%s raised", x->res.created, x->res.created == 1 ? "" : "s");
        crs_dispatcher_wake(x->disp);
    }
    if (x->stopping) {
        expiry_check_stopped(x);
        return;
    }
    /* A full batch: more rows may be due. The next tick queues behind the commits that arrived
     * meanwhile, so a CA whose certificates all expire on one day does not stall the acks. */
    if (x->again || x->replan ||
        (status == 0 && x->res.processed >= (x->cfg->alerts.batch ? x->cfg->alerts.batch : 500))) {
        x->again = 0;
        expiry_submit(x);
        return;
    }
    expiry_arm(x, status == 0 ? x->res.next_due_ms : INT64_MAX);
}

static void expiry_submit(struct crs_expiry *x)
{
    if (x->stopping)
        return;
    if (x->busy) {
        x->again = 1;
        return;
    }
    uv_timer_stop(&x->timer);
    x->armed_ms = INT64_MAX;
    memset(&x->op, 0, sizeof(x->op));
    x->op.run = tick_op_run;
    x->op.done = tick_op_done;
    x->busy = 1;
    x->now_ms = crs_now_ms();
    x->tick_replan = x->replan;
    x->replan = 0;
    crs_queue_submit(x->q, &x->op);
}

/* A wall clock that moved (NTP step, a VM resumed, an administrator) makes the monotonic timer
 * wrong by as much: look at the schedules again. */
static void expiry_watch_cb(uv_timer_t *t)
{
    struct crs_expiry *x = t->data;
    int64_t skew;

    uv_update_time(x->loop);
    skew = expiry_skew(x);
    if (skew - x->skew_ms > EXPIRY_JUMP_MS || x->skew_ms - skew > EXPIRY_JUMP_MS) {
        crs_info("expiry: the wall clock moved by %lld ms; looking at the schedules again",
                 (long long)(skew - x->skew_ms));
        expiry_submit(x);
    }
    x->skew_ms = skew;
}

static void expiry_hook_due(void *arg, int64_t due_ms)
{
    crs_expiry_due(arg, due_ms);
}

int crs_expiry_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                   struct crs_dispatcher *disp, struct crs_expiry **out)
{
    struct crs_expiry *x;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || q == NULL)
        return CRS_EINVAL;
    x = crs_calloc(1, sizeof(*x));
    if (x == NULL)
        return CRS_ENOMEM;
    x->loop = loop;
    x->cfg = cfg;
    x->q = q;
    x->disp = disp;
    x->armed_ms = INT64_MAX;
    rc = uv_timer_init(loop, &x->timer);
    if (rc != 0) {
        crs_free(x);
        return crs_translate_sys_error(-rc);
    }
    x->timer.data = x;
    x->open = 1;
    rc = uv_timer_init(loop, &x->watch);
    if (rc != 0) {
        /* The first timer is in the loop already: the caller stops (closes) and frees. */
        *out = x;
        return crs_translate_sys_error(-rc);
    }
    x->open = 2;
    x->watch.data = x;
    *out = x;
    return 0;
}

int crs_expiry_start(struct crs_expiry *x)
{
    if (x == NULL || x->open != 2)
        return CRS_EINVAL;
    crs_queue_set_expiry_hook(x->q, expiry_hook_due, x);
    /* Neither timer keeps the loop alive on its own. */
    uv_unref((uv_handle_t *)&x->timer);
    uv_unref((uv_handle_t *)&x->watch);
    x->skew_ms = expiry_skew(x);
    if (uv_timer_start(&x->watch, expiry_watch_cb, EXPIRY_JUMP_CHECK_MS, EXPIRY_JUMP_CHECK_MS) != 0)
        return CRS_EIO;
    /* The first tick plans every active schedule with this configuration (the lead times may
     * have changed while the broker was down) and sends what came due meanwhile. */
    x->replan = 1;
    expiry_submit(x);
    return 0;
}

void crs_expiry_set_config(struct crs_expiry *x, const struct crs_config *cfg)
{
    if (x == NULL || cfg == NULL)
        return;
    x->cfg = cfg;
    x->replan = 1;
    expiry_submit(x);
}

void crs_expiry_due(struct crs_expiry *x, int64_t due_ms)
{
    if (x == NULL || x->stopping || due_ms == INT64_MAX)
        return;
    /* A tick in the queue runs after this commit (the lane is serial) and arms the timer for the
     * earliest schedule it finds, this one included. */
    if (x->busy)
        return;
    if (due_ms < x->armed_ms)
        expiry_arm(x, due_ms);
}

static void expiry_closed(uv_handle_t *h)
{
    struct crs_expiry *x = h->data;

    x->open--;
    expiry_check_stopped(x);
}

void crs_expiry_stop(struct crs_expiry *x, void (*cb)(void *arg), void *arg)
{
    if (x == NULL || x->stopping)
        return;
    x->stopping = 1;
    x->stop_cb = cb;
    x->stop_arg = arg;
    crs_queue_set_expiry_hook(x->q, NULL, NULL);
    if (x->open == 0) {
        expiry_check_stopped(x);
        return;
    }
    if (!uv_is_closing((uv_handle_t *)&x->timer))
        uv_close((uv_handle_t *)&x->timer, expiry_closed);
    if (x->open > 1 && !uv_is_closing((uv_handle_t *)&x->watch))
        uv_close((uv_handle_t *)&x->watch, expiry_closed);
}

uint64_t crs_expiry_created(const struct crs_expiry *x)
{
    return x != NULL ? x->created : 0;
}

void crs_expiry_free(struct crs_expiry *x)
{
    crs_free(x);
}
