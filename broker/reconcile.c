/*
 * Catch-up in the broker (see reconcile.h): batches of caught-up events into the queue, and the
 * schedule that reads the CA database from the watermark on.
 *
 * A scheduled run, all on the loop thread except the two steps marked:
 *
 *   timer → plan (queue op, worker: the CA and its watermark) → chunk (threadpool: read rows,
 *   skip the ones earlier chunks took, build the events of the next CRS_RECONCILE_CHUNK_ROWS) →
 *   batch (queue commits, dedup) → next chunk ... → mark (queue op: caught_up_ms = the run's
 *   start) → idle until the timer.
 *
 * A run that fails part way does not move caught_up_ms: the next one reads the same rows again
 * and the dedup index drops what the failed run stored.
 */
#include "reconcile.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/catchup.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "queue_dedup.h"

/* Rows that build no event logged one by one per run; the rest are counted. */
#define RECONCILE_BAD_LOGGED_MAX 20

/* ---------------------------------------------------------------------------------------------
 * Batches
 * ------------------------------------------------------------------------------------------- */

const char *crs_reconcile_outcome_name(int outcome)
{
    switch (outcome) {
    case CRS_RECONCILE_STORED:
        return "stored";
    case CRS_RECONCILE_DUPLICATE:
        return "duplicate";
    default:
        return "rejected";
    }
}

int crs_reconcile_batch_new(size_t cap, struct crs_reconcile_batch **out)
{
    struct crs_reconcile_batch *b;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    b = crs_calloc(1, sizeof(*b));
    if (b == NULL)
        return CRS_ENOMEM;
    b->cap = cap;
    b->res = crs_calloc(cap > 0 ? cap : 1, sizeof(*b->res));
    if (b->res == NULL) {
        crs_free(b);
        return CRS_ENOMEM;
    }
    *out = b;
    return 0;
}

static void batch_reject(struct crs_reconcile_result *r, const char *why)
{
    r->outcome = CRS_RECONCILE_REJECTED;
    snprintf(r->reason, sizeof(r->reason), "%s", why);
}

int crs_reconcile_batch_add(struct crs_reconcile_batch *b, const struct crs_config *cfg,
                            const uint8_t *p, size_t n)
{
    Certrelay__V1__Event *ev = NULL;
    struct crs_ingest_item *item = NULL;
    struct crs_reconcile_result *r;
    int rc;

    if (b == NULL || cfg == NULL || (p == NULL && n > 0))
        return CRS_EINVAL;
    if (b->n >= b->cap)
        return CRS_ERANGE;
    r = &b->res[b->n++];
    r->request_id = -1;
    rc = crs_event_unpack(p, n, &ev);
    if (rc == CRS_ENOMEM)
        goto cleanup;
    if (rc != 0) {
        batch_reject(r, "not a valid packed event");
        rc = 0;
        goto cleanup;
    }
    /* Ids are stored in their canonical spelling. `certrelay catchup` writes them so; an id in any
     * other spelling is refused rather than rewritten, which lets the bytes given be stored as
     * they are, with no second pack. */
    if (crs_event_id_canonicalize(ev) != 0) {
        batch_reject(r, "event id is not a UUID");
        goto cleanup;
    }
    snprintf(r->event_id, sizeof(r->event_id), "%s", ev->event_id);
    r->kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    if (ev->request != NULL && ev->request->has_request_id)
        r->request_id = ev->request->request_id;
    rc = crs_ingest_item_new(cfg, ev, p, n, &item);
    if (rc == CRS_ENOMEM)
        goto cleanup;
    if (rc != 0) {
        batch_reject(r, crs_strerror(rc));
        rc = 0;
        goto cleanup;
    }
    if (!item->has_key) {
        batch_reject(r, "no dedup key: a catch-up event needs a CA config, a request id and one "
                        "of the kinds issued, pending, denied or revoked");
        goto cleanup;
    }
    item->data = b;
    item->owner = r;
    item->next = b->items;
    b->items = item;
    item = NULL;

cleanup:
    crs_ingest_item_free(item);
    crs_event_free(ev);
    if (rc == CRS_ENOMEM)
        b->n--;
    else if (r->outcome == CRS_RECONCILE_REJECTED)
        b->rejected++;
    return rc;
}

json_t *crs_reconcile_param_events(json_t *params, char *err, size_t errlen)
{
    json_t *events = json_object_get(params, "events");

    if (!json_is_array(events) || json_array_size(events) > CRS_RECONCILE_BATCH_MAX) {
        snprintf(err, errlen, "params.events must be an array of at most %u base64 events",
                 CRS_RECONCILE_BATCH_MAX);
        return NULL;
    }
    return events;
}

static void batch_item_done(struct crs_ingest_item *item, int status, const char *reason)
{
    struct crs_reconcile_batch *b = item->data;
    struct crs_reconcile_result *r = item->owner;

    if (status != 0) {
        batch_reject(r, reason ? reason : crs_strerror(status));
        b->rejected++;
    } else if (item->duplicate) {
        r->outcome = CRS_RECONCILE_DUPLICATE;
        b->duplicates++;
    } else {
        r->outcome = CRS_RECONCILE_STORED;
        b->stored++;
    }
    crs_ingest_item_free(item);
    if (--b->pending == 0 && b->done != NULL)
        b->done(b, b->arg);
}

void crs_reconcile_batch_submit(struct crs_reconcile_batch *b, struct crs_queue *q,
                                crs_reconcile_batch_cb done, void *arg)
{
    struct crs_ingest_item *list = NULL, *item;

    b->done = done;
    b->arg = arg;
    /* The list was built newest first: restore the order of the batch. */
    while (b->items != NULL) {
        item = b->items;
        b->items = item->next;
        item->next = list;
        list = item;
    }
    for (item = list; item != NULL; item = item->next)
        b->pending++;
    if (b->pending == 0) {
        if (done != NULL)
            done(b, arg);
        return;
    }
    while (list != NULL) {
        item = list;
        list = item->next;
        item->next = NULL;
        item->done = batch_item_done;
        crs_queue_ingest(q, item);
    }
}

void crs_reconcile_batch_free(struct crs_reconcile_batch *b)
{
    if (b == NULL)
        return;
    while (b->items != NULL) {
        struct crs_ingest_item *next = b->items->next;
        crs_ingest_item_free(b->items);
        b->items = next;
    }
    crs_free(b->res);
    crs_free(b);
}

/* ---------------------------------------------------------------------------------------------
 * The schedule
 * ------------------------------------------------------------------------------------------- */

struct crs_reconcile {
    struct crs_queue_op op; /* first: the plan and the mark */
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    uv_timer_t timer;
    uv_work_t work;
    int timer_open;
    int busy;    /* a run is in progress */
    int in_work; /* the chunk read is on the threadpool */
    int stopping;
    int64_t interval_ms;
    void (*stop_cb)(void *arg);
    void *stop_arg;

    /* The run: copies taken at its start, so a reload cannot pull them away. */
    int64_t run_start_ms;
    char ca[CRS_CATCHUP_CA_MAX + 1];     /* the CA config the events carry */
    char ca_key[CRS_CATCHUP_CA_MAX + 1]; /* lowercase, the watermark's key */
    char *csv;                           /* catchup_csv, or NULL */
    const struct crs_config *run_cfg;    /* routes the items; the worker reads only this */
    struct crs_catchup_filter flt;
    uint64_t skip;         /* matched rows earlier chunks took */
    uint64_t rows;         /* rows this chunk took */
    uint64_t bad_rows;     /* rows that built no event (the first few logged) */
    uint64_t bad_line_max; /* the furthest CSV line counted bad: later chunks read lines again */
    int chunk_full;
    int read_status;
    char err[256];
    struct crs_reconcile_batch *batch;
    uint64_t stored, duplicates, rejected, total_rows;
    int marking; /* the op in the queue is the mark */
};

static void reconcile_check_stopped(struct crs_reconcile *r)
{
    void (*cb)(void *);

    if (!r->stopping || r->busy || r->timer_open || r->stop_cb == NULL)
        return;
    cb = r->stop_cb;
    r->stop_cb = NULL;
    cb(r->stop_arg);
}

static void reconcile_end_run(struct crs_reconcile *r)
{
    crs_reconcile_batch_free(r->batch);
    r->batch = NULL;
    crs_free(r->csv);
    r->csv = NULL;
    r->busy = 0;
    reconcile_check_stopped(r);
}

/* The plan, on the worker: which CA, and from when. */
static int reconcile_plan(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct crs_reconcile *r = (struct crs_reconcile *)op;
    sqlite3_stmt *st = NULL;
    int rc;

    if (r->ca_key[0] != '\0')
        rc = sqlite3_prepare_v2(db,
                                "SELECT ca, caught_up_ms, first_when_ms FROM watermarks "
                                "WHERE ca = ?1",
                                -1, &st, NULL);
    else
        rc = sqlite3_prepare_v2(db,
                                "SELECT ca, caught_up_ms, first_when_ms FROM watermarks "
                                "ORDER BY updated_ms DESC LIMIT 1",
                                -1, &st, NULL);
    if (rc != SQLITE_OK) {
        snprintf(r->err, sizeof(r->err), "database: %s", sqlite3_errmsg(db));
        return CRS_EDB;
    }
    if (r->ca_key[0] != '\0')
        sqlite3_bind_text(st, 1, r->ca_key, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    /* Without a watermark there is no history to close a gap in: the run starts the record
     * (the CA's earlier history is for `certrelay catchup --since`). */
    int64_t from = r->run_start_ms;
    if (rc == SQLITE_ROW) {
        if (r->ca[0] == '\0') {
            snprintf(r->ca, sizeof(r->ca), "%s", (const char *)sqlite3_column_text(st, 0));
            crs_catchup_ca_key(r->ca, r->ca_key, sizeof(r->ca_key));
        }
        if (sqlite3_column_type(st, 1) != SQLITE_NULL)
            from = sqlite3_column_int64(st, 1);
        else if (sqlite3_column_int64(st, 2) >= 0)
            from = sqlite3_column_int64(st, 2);
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        snprintf(r->err, sizeof(r->err), "database: reading the watermark failed");
        return CRS_EDB;
    }
    from -= CRS_RECONCILE_OVERLAP_MS;
    r->flt.since_ms = from > 0 ? from : 1;
    return 0;
}

static void reconcile_chunk_start(struct crs_reconcile *r);

static void reconcile_mark_done(struct crs_queue_op *op, int status)
{
    struct crs_reconcile *r = (struct crs_reconcile *)op;

    r->marking = 0;
    if (status != 0 && status != CRS_ECANCELED)
        crs_warn("catch-up of %s: recording its progress failed: %s", r->ca, crs_strerror(status));
    crs_info("catch-up of %s: %llu rows read, %llu events stored, %llu duplicates, %llu rejected, "
             "%llu bad rows",
             r->ca, (unsigned long long)r->total_rows, (unsigned long long)r->stored,
             (unsigned long long)r->duplicates, (unsigned long long)r->rejected,
             (unsigned long long)r->bad_rows);
    reconcile_end_run(r);
}

static int reconcile_mark(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct crs_reconcile *r = (struct crs_reconcile *)op;

    return crs_dedup_set_caught_up(db, r->ca_key, r->run_start_ms, crs_now_ms());
}

static void reconcile_plan_done(struct crs_queue_op *op, int status)
{
    struct crs_reconcile *r = (struct crs_reconcile *)op;

    if (status != 0 || r->stopping) {
        if (status != 0 && status != CRS_ECANCELED)
            crs_warn("catch-up: %s", r->err[0] ? r->err : crs_strerror(status));
        reconcile_end_run(r);
        return;
    }
    if (r->ca[0] == '\0') {
        crs_debug("catch-up: no CA known yet (no event stored, no catchup_ca)");
        reconcile_end_run(r);
        return;
    }
    {
        char since[40];
        snprintf(since, sizeof(since), "%lld", (long long)r->flt.since_ms);
        crs_info("catch-up of %s: reading %s from %s ms", r->ca,
                 r->csv ? r->csv : "the CA database", since);
    }
    reconcile_chunk_start(r);
}

/* The rows of one chunk (threadpool side). */
struct chunk_read {
    struct crs_reconcile *r;
    uint64_t seen;
};

/*
 * Counts a row that builds no event; 1 when it is still to be logged. A source full of bad rows
 * would otherwise write a log line for each of them: after the first RECONCILE_BAD_LOGGED_MAX of a
 * run they are only counted, in the run's summary line.
 */
static int reconcile_count_bad(struct crs_reconcile *r)
{
    r->bad_rows++;
    if (r->bad_rows == RECONCILE_BAD_LOGGED_MAX + 1)
        crs_warn("catch-up of %s: more rows build no event; they are counted in the run's summary, "
                 "not logged one by one",
                 r->ca);
    return r->bad_rows <= RECONCILE_BAD_LOGGED_MAX;
}

static int reconcile_on_row(void *ctx, const struct crs_catchup_row *row)
{
    struct chunk_read *cr = ctx;
    struct crs_reconcile *r = cr->r;
    struct crs_catchup_events evs;
    int rc;

    if (cr->seen++ < r->skip)
        return 0;
    if (r->rows >= CRS_RECONCILE_CHUNK_ROWS) {
        r->chunk_full = 1;
        return 1;
    }
    r->rows++;
    rc = crs_catchup_row_events(row, r->ca, r->flt.kinds, &evs);
    if (rc == CRS_ENOMEM)
        return rc;
    if (rc != 0) {
        if (reconcile_count_bad(r))
            crs_warn("catch-up of %s: request %lld builds no event: %s", r->ca,
                     (long long)crs_catchup_row_request_id(row), crs_strerror(rc));
        return 0;
    }
    for (size_t i = 0; i < evs.count && rc == 0; i++)
        rc = crs_reconcile_batch_add(r->batch, r->run_cfg, evs.ev[i].packed, evs.ev[i].packed_len);
    crs_catchup_events_free(&evs);
    return rc == CRS_ENOMEM ? rc : 0;
}

static void reconcile_bad_row(void *ctx, uint64_t line, const char *why)
{
    struct chunk_read *cr = ctx;
    struct crs_reconcile *r = cr->r;

    /* Each chunk reads the file from its start: a line is counted the first time it is read. */
    if (line <= r->bad_line_max)
        return;
    r->bad_line_max = line;
    if (reconcile_count_bad(r))
        crs_warn("catch-up: %s line %llu skipped: %s", r->csv, (unsigned long long)line, why);
}

static void reconcile_chunk_work(uv_work_t *req)
{
    struct crs_reconcile *r = req->data;
    struct chunk_read cr = {r, 0};
    int rc;

    r->err[0] = '\0';
    if (r->csv != NULL) {
        FILE *f = NULL;
        rc = crs_fs_open_read(r->csv, CRS_RECONCILE_CSV_MAX, &f);
        if (rc != 0) {
            snprintf(r->err, sizeof(r->err), "catchup_csv %s: %s", r->csv, crs_strerror(rc));
        } else {
            rc = crs_catchup_read_csv2(f, &r->flt, reconcile_on_row, reconcile_bad_row, &cr, NULL,
                                       r->err, sizeof(r->err));
            fclose(f);
        }
    } else {
#ifdef _WIN32
        rc = crs_catchup_read_view(r->ca, &r->flt, reconcile_on_row, &cr, r->err, sizeof(r->err));
#else
        snprintf(r->err, sizeof(r->err),
                 "only catchup_csv can be read on this platform (the CA database is Windows')");
        rc = CRS_ENOTSUP;
#endif
    }
    /* The callback's stop at a full chunk is not an error. */
    r->read_status = (rc == 1 && r->chunk_full) ? 0 : rc;
}

static void reconcile_batch_done(struct crs_reconcile_batch *b, void *arg)
{
    struct crs_reconcile *r = arg;

    r->stored += b->stored;
    r->duplicates += b->duplicates;
    r->rejected += b->rejected;
    for (size_t i = 0; i < b->n; i++)
        if (b->res[i].outcome == CRS_RECONCILE_REJECTED)
            crs_warn("catch-up of %s: event of request %lld rejected: %s", r->ca,
                     (long long)b->res[i].request_id, b->res[i].reason);
    crs_reconcile_batch_free(b);
    r->batch = NULL;
    if (r->stopping) {
        reconcile_end_run(r);
        return;
    }
    if (r->chunk_full) {
        r->skip += r->rows;
        reconcile_chunk_start(r);
        return;
    }
    memset(&r->op, 0, sizeof(r->op));
    r->op.run = reconcile_mark;
    r->op.done = reconcile_mark_done;
    r->marking = 1;
    crs_queue_submit(r->q, &r->op);
}

static void reconcile_chunk_after(uv_work_t *req, int status)
{
    struct crs_reconcile *r = req->data;

    r->in_work = 0;
    r->total_rows += r->rows;
    if (status != 0 || r->read_status != 0) {
        crs_warn("catch-up of %s stopped: %s", r->ca,
                 r->err[0] ? r->err : crs_strerror(status ? CRS_ECANCELED : r->read_status));
        reconcile_end_run(r);
        return;
    }
    crs_reconcile_batch_submit(r->batch, r->q, reconcile_batch_done, r);
}

static void reconcile_chunk_start(struct crs_reconcile *r)
{
    int rc;

    r->rows = 0;
    r->chunk_full = 0;
    /* Each chunk routes with the configuration current when it starts; every configuration
     * stays valid for the broker's lifetime (queue.h). */
    r->run_cfg = r->cfg;
    r->read_status = 0;
    rc = crs_reconcile_batch_new(CRS_RECONCILE_CHUNK_ROWS * CRS_CATCHUP_ROW_EVENTS_MAX, &r->batch);
    if (rc == 0) {
        r->work.data = r;
        r->in_work = 1;
        rc = uv_queue_work(r->loop, &r->work, reconcile_chunk_work, reconcile_chunk_after);
        if (rc != 0) {
            r->in_work = 0;
            rc = crs_translate_sys_error(-rc);
        }
    }
    if (rc != 0) {
        crs_warn("catch-up of %s: %s", r->ca, crs_strerror(rc));
        reconcile_end_run(r);
    }
}

static void reconcile_run(struct crs_reconcile *r)
{
    const struct crs_config *cfg = r->cfg;

    if (r->busy || r->stopping || !cfg->catchup)
        return;
    r->busy = 1;
    r->run_start_ms = crs_now_ms();
    r->ca[0] = r->ca_key[0] = '\0';
    r->err[0] = '\0';
    r->skip = r->rows = r->bad_rows = r->bad_line_max = 0;
    r->stored = r->duplicates = r->rejected = r->total_rows = 0;
    memset(&r->flt, 0, sizeof(r->flt));
    r->flt.kinds = CRS_CATCHUP_KINDS;
    if (cfg->catchup_ca != NULL) {
        snprintf(r->ca, sizeof(r->ca), "%s", cfg->catchup_ca);
        crs_catchup_ca_key(r->ca, r->ca_key, sizeof(r->ca_key));
    }
    if (cfg->catchup_csv != NULL && (r->csv = crs_strdup(cfg->catchup_csv)) == NULL) {
        reconcile_end_run(r);
        return;
    }
    memset(&r->op, 0, sizeof(r->op));
    r->op.run = reconcile_plan;
    r->op.done = reconcile_plan_done;
    crs_queue_submit(r->q, &r->op);
}

static void reconcile_timer_cb(uv_timer_t *t)
{
    reconcile_run(t->data);
}

int crs_reconcile_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                      struct crs_reconcile **out)
{
    struct crs_reconcile *r;
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

static void reconcile_arm(struct crs_reconcile *r, uint64_t first_ms)
{
    uint64_t every = (uint64_t)r->cfg->catchup_interval_ms;

    r->interval_ms = r->cfg->catchup_interval_ms;
    uv_timer_start(&r->timer, reconcile_timer_cb, first_ms, every);
    /* The timer does not keep the loop alive on its own. */
    uv_unref((uv_handle_t *)&r->timer);
}

int crs_reconcile_start(struct crs_reconcile *r)
{
    if (r == NULL)
        return CRS_EINVAL;
    /* Shortly after start: the spool drain goes first, so the module's own late events take
     * their keys before the database's copies of them are read. */
    reconcile_arm(r, 1000);
    return 0;
}

void crs_reconcile_set_config(struct crs_reconcile *r, const struct crs_config *cfg)
{
    int was_on;

    if (r == NULL || cfg == NULL)
        return;
    was_on = r->cfg->catchup;
    r->cfg = cfg;
    if (r->stopping)
        return;
    if ((cfg->catchup && !was_on) || cfg->catchup_interval_ms != r->interval_ms)
        reconcile_arm(r, cfg->catchup && !was_on ? 1000 : (uint64_t)cfg->catchup_interval_ms);
}

static void reconcile_timer_closed(uv_handle_t *h)
{
    struct crs_reconcile *r = h->data;

    r->timer_open = 0;
    reconcile_check_stopped(r);
}

void crs_reconcile_stop(struct crs_reconcile *r, void (*cb)(void *arg), void *arg)
{
    if (r == NULL || r->stopping) {
        if (r == NULL && cb != NULL)
            cb(arg);
        return;
    }
    r->stopping = 1;
    r->stop_cb = cb;
    r->stop_arg = arg;
    uv_timer_stop(&r->timer);
    uv_close((uv_handle_t *)&r->timer, reconcile_timer_closed);
}

void crs_reconcile_free(struct crs_reconcile *r)
{
    if (r == NULL)
        return;
    crs_reconcile_batch_free(r->batch);
    crs_free(r->csv);
    crs_free(r);
}
