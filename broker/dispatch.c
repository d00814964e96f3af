/*
 * The dispatcher (see dispatch.h).
 *
 * Life of one attempt: a fetch (a queue job) returns due rows; each becomes an `attempt` in
 * memory and goes to its driver; the driver's done callback turns the result into a delivery
 * update, which the next queue job records; once that is committed the attempt leaves memory.
 * Until then its row is excluded from fetches, so a row is never attempted twice at once, even
 * though the database still shows it pending and due while the update waits for its commit.
 *
 * An outcome the database refuses (a full disk, damaged pages) is not dropped: the attempt stays
 * in memory with its update, its row stays excluded, and the update is offered again every
 * DISPATCH_DB_RETRY_MS. Meanwhile its sink is paused (no new rows fetched for it), which is logged
 * once, as is the resumption. So a sink is never driven faster than its backoff, whatever the
 * database does: an event is delivered once and its outcome written when the disk has room. Only
 * a stop (or a crash) before that leaves the row pending, to be delivered again at the next start.
 *
 * A fetch reads ahead: besides a row for each free slot it takes up to DISPATCH_READY_FACTOR
 * times the sink's concurrency more (at most DISPATCH_READY_BYTES of bodies), kept per sink in a
 * ready list, started the moment a slot frees and refilled once half of it is used. Without it every slot waited for the next
 * database job (a commit with its fsync) between two deliveries, and a drain ran at concurrency
 * deliveries per commit. Ready rows are excluded from fetches like attempts; a pause or a stop
 * drops them (their rows are still pending). So the memory a backlog costs is bounded by the
 * configuration, never by the number of rows.
 *
 * Failed attempts are logged through a per-sink window: the first DISPATCH_LOG_LINES lines of each
 * DISPATCH_LOG_WINDOW_MS, then one summary line, so a receiver that is down for a day costs a few
 * lines a minute rather than one per attempt.
 */
#include "dispatch.h"

#include "certrelay/msgid.h"
#include "metrics.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"

/* How long to wait before fetching again, or offering held outcomes again, after the database
 * failed. */
#define DISPATCH_DB_RETRY_MS 1000
/* Failed-attempt lines per sink and window; the rest are counted and summarized. */
#define DISPATCH_LOG_LINES     32u
#define DISPATCH_LOG_WINDOW_MS 60000
/* Read-ahead per sink: rows (times its concurrency, at most DISPATCH_READY_MAX) and bytes. */
#define DISPATCH_READY_FACTOR 16u
#define DISPATCH_READY_MAX    1024u
#define DISPATCH_READY_BYTES  (4u * 1024u * 1024u)

/* Per-sink state the dispatcher keeps beside the driver's struct crs_sink. */
struct sink_state {
    unsigned held;        /* outcomes the database refused, waiting to be offered again */
    int paused;           /* held > 0: fetch nothing for this sink */
    int64_t log_start;    /* start of the current log window */
    unsigned log_lines;   /* failure lines logged in it */
    unsigned log_skipped; /* failed attempts not logged in it */
    unsigned log_dead;    /* of those, dead-lettered */
    struct crs_due *ready, *ready_tail; /* fetched rows waiting for a free slot, in fetch order */
    unsigned nready;
    size_t ready_bytes;
};

struct attempt {
    struct crs_delivery d;        /* d.data points back here */
    struct crs_delivery_update u; /* the outcome, once known */
    struct crs_dispatcher *disp;
    unsigned sink;
    int64_t received_ms;
    Certrelay__V1__Event *event;
    uint8_t *body;
    size_t len;
    int recording;               /* done: the update waits for its commit */
    struct attempt *prev, *next; /* every attempt in memory */
};

struct crs_dispatcher {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    struct crs_sink *sinks; /* nsinks; each sink's settings are sinks[i].cfg */
    size_t nsinks;
    uv_timer_t timer;
    int timer_open;
    int dirty;    /* a fetch is wanted (timer fired, a slot freed, start) */
    int db_retry; /* the timer waits out a database failure: leave it armed */
    int stopping;
    void (*stop_cb)(void *arg);
    void *stop_arg;
    int paused;   /* crs_dispatcher_pause: no new attempts */
    int fetching; /* a fetch is in the queue's job */
    void (*pause_cb)(void *arg);
    void *pause_arg;
    uint32_t rnd;
    int starting; /* inside dispatch_start_ready (an attempt may finish while it starts) */
    struct attempt *head;
    struct sink_state *state; /* nstate entries, one per sink (see sink_st) */
    size_t nstate;
    struct crs_delivery_update *held; /* refused outcomes, offered again by the timer */
};

static uint32_t dispatch_slots(const struct crs_dispatcher *d, size_t i);
static void dispatch_start_ready(struct crs_dispatcher *d);

#define ATTEMPT_OF_UPDATE(p) ((struct attempt *)((char *)(p)-offsetof(struct attempt, u)))

/* xorshift32: jitter needs spread, not cryptographic strength. */
static uint32_t dispatch_random(struct crs_dispatcher *d)
{
    uint32_t x = d->rnd;

    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    d->rnd = x;
    return x;
}

int64_t crs_backoff_delay_ms(const struct crs_sink_config *sc, uint32_t attempts,
                             int64_t retry_after_ms, uint32_t rnd)
{
    int64_t max = sc->backoff_max_ms > 0 ? sc->backoff_max_ms : 1;
    int64_t delay = sc->backoff_initial_ms > 0 ? sc->backoff_initial_ms : 1;
    int64_t half;
    uint32_t i;

    /* A receiver that says when to come back knows better than our curve, but it may not push
     * us beyond the longest wait the administrator configured. */
    if (retry_after_ms >= 0)
        return retry_after_ms < max ? retry_after_ms : max;
    for (i = 1; i < attempts && delay < max; i++)
        delay *= 2;
    if (delay > max)
        delay = max;
    /* Equal jitter: never less than half the curve (so backoff still backs off), and clients
     * that failed together do not retry together. */
    half = delay / 2;
    return half + (int64_t)(rnd % (uint64_t)(delay - half + 1));
}

/* ---- Log volume ---- */

/* A sink's state; a reload that could not grow the array gets a scratch entry (no pause). */
static struct sink_state *sink_st(const struct crs_dispatcher *d, size_t sink)
{
    static struct sink_state scratch;

    if (sink < d->nstate)
        return &d->state[sink];
    memset(&scratch, 0, sizeof(scratch));
    return &scratch;
}

/* Reports the attempts of the closing window that were not logged one by one. */
static void sink_log_flush(struct crs_dispatcher *d, unsigned sink, int64_t now)
{
    struct sink_state *st = sink_st(d, sink);

    if (st->log_skipped > 0)
        crs_warn("sink %s: %u more failed attempts (%u of them dead-lettered) in the last %lld s "
                 "were not logged one by one; the queue database has each one's last error",
                 d->sinks[sink].cfg->name, st->log_skipped, st->log_dead,
                 (long long)((now - st->log_start) / 1000));
    st->log_skipped = st->log_dead = 0;
}

/* True when a failed attempt of this sink may be logged on its own line now. */
static int sink_log_allow(struct crs_dispatcher *d, unsigned sink, int64_t now, int dead)
{
    struct sink_state *st = sink_st(d, sink);

    if (st->log_start == 0 || now - st->log_start >= DISPATCH_LOG_WINDOW_MS) {
        sink_log_flush(d, sink, now);
        st->log_start = now;
        st->log_lines = 0;
    }
    if (st->log_lines < DISPATCH_LOG_LINES) {
        st->log_lines++;
        return 1;
    }
    st->log_skipped++;
    st->log_dead += dead != 0;
    return 0;
}

/* ---- Memory set ---- */

static void attempt_link(struct crs_dispatcher *d, struct attempt *a)
{
    a->prev = NULL;
    a->next = d->head;
    if (d->head != NULL)
        d->head->prev = a;
    d->head = a;
}

static void attempt_unlink_free(struct crs_dispatcher *d, struct attempt *a)
{
    if (a->prev != NULL)
        a->prev->next = a->next;
    else
        d->head = a->next;
    if (a->next != NULL)
        a->next->prev = a->prev;
    crs_event_free(a->event);
    crs_free(a->body);
    crs_free(a);
}

/* Drops every sink's read-ahead: the rows are still pending in the database. */
static void dispatch_drop_ready(struct crs_dispatcher *d)
{
    size_t i;

    for (i = 0; i < d->nstate; i++) {
        crs_due_free_list(d->state[i].ready);
        d->state[i].ready = d->state[i].ready_tail = NULL;
        d->state[i].nready = 0;
        d->state[i].ready_bytes = 0;
    }
}

static void dispatch_check_stopped(struct crs_dispatcher *d)
{
    size_t i;

    if (!d->stopping || d->stop_cb == NULL || d->timer_open)
        return;
    for (i = 0; i < d->nsinks; i++) {
        if (d->sinks[i].inflight > 0)
            return;
    }
    {
        void (*cb)(void *) = d->stop_cb;
        d->stop_cb = NULL;
        cb(d->stop_arg);
    }
}

/* A pause is complete once no attempt is in memory and no fetch can still start one. */
static void dispatch_check_paused(struct crs_dispatcher *d)
{
    void (*cb)(void *);

    size_t i;

    if (!d->paused || d->pause_cb == NULL || d->head != NULL || d->fetching)
        return;
    for (i = 0; i < d->nsinks; i++) {
        if (d->sinks[i].inflight > 0)
            return;
    }
    cb = d->pause_cb;
    d->pause_cb = NULL;
    cb(d->pause_arg);
}

/* ---- Outcomes ---- */

static const char *attempt_event_id(const struct attempt *a)
{
    return a->event != NULL && a->event->event_id != NULL ? a->event->event_id : "?";
}

/* Logs a dead letter as the catalogued condition (certrelay/msgid.h): sink, event, request,
 * error as the Event Log's inserts, line as the log's text. */
static void attempt_dead_event(const struct attempt *a, const char *sink, const char *error,
                               const char *line)
{
    char rid[24] = "-";
    const char *ins[4];

    if (a->event != NULL && a->event->request != NULL && a->event->request->has_request_id)
        snprintf(rid, sizeof(rid), "%lld", (long long)a->event->request->request_id);
    ins[0] = sink;
    ins[1] = attempt_event_id(a);
    ins[2] = rid;
    ins[3] = error;
    crs_log_event(CRS_LOG_WARN, CRS_MSGID_DEAD_LETTERED, ins, 4, "%s", line);
}

/*
 * Turns a driver's result into the row's next state and hands it to the queue. Called on the
 * loop thread, exactly once per attempt.
 */
static void attempt_finish(struct attempt *a, const struct crs_delivery_result *r)
{
    struct crs_dispatcher *d = a->disp;
    const struct crs_sink_config *sc = d->sinks[a->sink].cfg;
    struct crs_delivery_update *u = &a->u;
    int64_t now = crs_now_ms();
    const char *name = sc->name;
    char line[640];

    d->sinks[a->sink].inflight--;
    if (r->outcome == CRS_DELIVERY_CANCELED) {
        /* Not an attempt: the row stays as it was and is resumed at the next start. */
        crs_debug("sink %s: event %s: attempt canceled", name, attempt_event_id(a));
        attempt_unlink_free(d, a);
        d->dirty = 1;
        crs_queue_kick(d->q);
        dispatch_check_stopped(d);
        dispatch_check_paused(d);
        return;
    }

    u->event_row = a->d.event_row;
    u->sink = a->sink;
    u->sink_name = sc->name;
    u->attempts = a->d.attempt;
    u->updated_ms = now;
    u->next_attempt_ms = now;
    u->last_status = r->status;
    snprintf(u->last_error, sizeof(u->last_error), "%s", r->error);

    if (r->outcome == CRS_DELIVERY_OK && d->sinks[a->sink].failures > 0) {
        char n[24];
        const char *ins[2] = {name, n};
        snprintf(n, sizeof(n), "%u", d->sinks[a->sink].failures);
        crs_log_event(CRS_LOG_INFO, CRS_MSGID_SINK_RECOVERED, ins, 2,
                      "sink %s delivers again after %u failed attempts", name,
                      d->sinks[a->sink].failures);
        d->sinks[a->sink].failures = 0;
    } else if (r->outcome != CRS_DELIVERY_OK) {
        d->sinks[a->sink].failures++;
    }
    if (r->outcome == CRS_DELIVERY_OK) {
        crs_metrics_delivery(name, CRS_DM_DELIVERED);
        u->state = CRS_DSTATE_DELIVERED;
        u->last_error[0] = '\0';
        crs_debug("sink %s: event %s delivered (attempt %u)", name, attempt_event_id(a),
                  (unsigned)u->attempts);
        /* The receiver is back: say now how many failures the window held back. */
        sink_log_flush(d, a->sink, now);
    } else if (r->outcome == CRS_DELIVERY_PERMANENT) {
        crs_metrics_delivery(name, CRS_DM_DEAD);
        u->state = CRS_DSTATE_DEAD;
        snprintf(line, sizeof(line),
                 "sink %s: event %s dead-lettered after attempt %u: permanent failure: %s", name,
                 attempt_event_id(a), (unsigned)u->attempts, r->error);
        if (sink_log_allow(d, a->sink, now, 1))
            attempt_dead_event(a, name, r->error, line);
    } else if (u->attempts >= sc->max_attempts ||
               (sc->max_age_ms > 0 && now - a->received_ms >= sc->max_age_ms)) {
        crs_metrics_delivery(name, CRS_DM_DEAD);
        u->state = CRS_DSTATE_DEAD;
        snprintf(line, sizeof(line),
                 "sink %s: event %s dead-lettered after %u attempts (max_attempts %u, age %lld "
                 "ms): %s",
                 name, attempt_event_id(a), (unsigned)u->attempts, (unsigned)sc->max_attempts,
                 (long long)(now - a->received_ms), r->error);
        if (sink_log_allow(d, a->sink, now, 1))
            attempt_dead_event(a, name, r->error, line);
    } else {
        int64_t delay =
            crs_backoff_delay_ms(sc, u->attempts, r->retry_after_ms, dispatch_random(d));
        crs_metrics_delivery(name, CRS_DM_RETRY);
        u->state = CRS_DSTATE_PENDING;
        u->next_attempt_ms = now + delay;
        if (sink_log_allow(d, a->sink, now, 0))
            crs_warn("sink %s: event %s attempt %u failed: %s; retrying in %lld ms", name,
                     attempt_event_id(a), (unsigned)u->attempts, r->error, (long long)delay);
    }

    /* The decoded event is not needed any more; the row stays excluded until committed. */
    crs_event_free(a->event);
    a->event = NULL;
    crs_free(a->body);
    a->body = NULL;
    a->recording = 1;
    d->dirty = 1;
    crs_queue_update(d->q, u);
    /* The slot is free: the next row read ahead goes at once, not after the next commit. */
    dispatch_start_ready(d);
    dispatch_check_stopped(d);
}

static void attempt_done_cb(struct crs_delivery *del, const struct crs_delivery_result *r)
{
    attempt_finish(del->data, r);
}

static void dispatch_result(struct crs_delivery_result *r, enum crs_delivery_outcome outcome,
                            const char *fmt, const char *arg)
{
    memset(r, 0, sizeof(*r));
    r->outcome = outcome;
    r->retry_after_ms = -1;
    snprintf(r->error, sizeof(r->error), fmt, arg);
}

static void attempt_start(struct crs_dispatcher *d, struct crs_due *due)
{
    struct crs_sink *sink = &d->sinks[due->sink];
    struct crs_delivery_result r;
    struct attempt *a;
    int rc;

    a = crs_calloc(1, sizeof(*a));
    if (a == NULL) {
        /* The row stays pending; the next fetch tries again. */
        crs_error("sink %s: out of memory starting a delivery", sink->cfg->name);
        return;
    }
    a->disp = d;
    a->sink = due->sink;
    a->received_ms = due->received_ms;
    a->body = due->body;
    a->len = due->len;
    due->body = NULL;
    a->d.event_row = due->event_row;
    a->d.event_bytes = a->body;
    a->d.event_len = a->len;
    a->d.attempt = due->attempts + 1;
    a->u.started_ms = crs_now_ms(); /* for the attempts history; the rest is filled at the end */
    a->d.done = attempt_done_cb;
    a->d.data = a;
    attempt_link(d, a);
    sink->inflight++;

    rc = crs_event_unpack(a->body, a->len, &a->event);
    if (rc != 0) {
        /* Stored bytes were validated when received; failing now means the database holds
         * something no attempt could ever deliver. */
        dispatch_result(&r, CRS_DELIVERY_PERMANENT, "stored event cannot be decoded: %s",
                        crs_strerror(rc));
        attempt_finish(a, &r);
        return;
    }
    a->d.event = a->event;
    rc = sink->driver->deliver(sink, &a->d);
    if (rc != 0) {
        dispatch_result(&r, CRS_DELIVERY_RETRY, "cannot start delivery: %s", crs_strerror(rc));
        attempt_finish(a, &r);
    }
}

/* ---- Queue hooks ---- */

static int dispatch_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/*
 * Rows a fetch may read ahead for sink i beyond its free slots, and the bytes of bodies it may
 * read for them (into *budget when not NULL).
 */
static uint32_t dispatch_read_ahead(const struct crs_dispatcher *d, size_t i, size_t *budget)
{
    uint32_t conc = d->sinks[i].cfg->concurrency ? d->sinks[i].cfg->concurrency : 1;
    uint32_t target = conc * DISPATCH_READY_FACTOR;
    const struct sink_state *st;

    if (budget != NULL)
        *budget = 0;
    if (i >= d->nstate || d->paused)
        return 0;
    st = &d->state[i];
    if (target > DISPATCH_READY_MAX)
        target = DISPATCH_READY_MAX;
    /* Refilled once half used, not after every attempt: each fetch steps over the rows held in
     * memory, so fetching for one or two rows at a time would cost more than the rows. */
    if (st->paused || st->nready > target / 2 || st->ready_bytes >= DISPATCH_READY_BYTES / 2)
        return 0;
    if (budget != NULL)
        *budget = DISPATCH_READY_BYTES - st->ready_bytes;
    return target - st->nready;
}

static uint32_t dispatch_slots(const struct crs_dispatcher *d, size_t i)
{
    uint32_t conc = d->sinks[i].cfg->concurrency ? d->sinks[i].cfg->concurrency : 1;

    if (sink_st(d, i)->paused)
        return 0;
    return d->sinks[i].inflight >= conc ? 0 : conc - d->sinks[i].inflight;
}

/*
 * Starts read-ahead rows while their sinks have free slots. An attempt that fails at once frees
 * its slot inside attempt_start and calls back here: the flag turns that into another turn of
 * the loop below rather than a recursion as deep as the ready list.
 */
static void dispatch_start_ready(struct crs_dispatcher *d)
{
    int progress = 1;
    size_t i;

    if (d->starting)
        return;
    d->starting = 1;
    while (progress && !d->stopping && !d->paused) {
        progress = 0;
        for (i = 0; i < d->nsinks && i < d->nstate; i++) {
            struct sink_state *st = &d->state[i];

            while (st->ready != NULL && dispatch_slots(d, i) > 0 && !d->stopping && !d->paused) {
                struct crs_due *due = st->ready;

                st->ready = due->next;
                if (st->ready == NULL)
                    st->ready_tail = NULL;
                st->nready--;
                st->ready_bytes -= due->len;
                due->next = NULL;
                attempt_start(d, due);
                crs_due_free_list(due);
                progress = 1;
            }
        }
    }
    d->starting = 0;
}

static struct crs_fetch *hook_fetch_prepare(void *arg, int have_events)
{
    struct crs_dispatcher *d = arg;
    struct crs_fetch *f = NULL;
    struct attempt *a;
    size_t i, nsinks = d->nsinks;
    uint32_t total = 0;

    if (d->stopping || d->paused || nsinks == 0 || (!d->dirty && !have_events))
        return NULL;
    /* After a database failure only the retry timer fetches (it sets dirty again). */
    if (d->db_retry) {
        d->dirty = 1;
        return NULL;
    }
    for (i = 0; i < nsinks; i++)
        total += dispatch_slots(d, i) + dispatch_read_ahead(d, i, NULL);
    d->dirty = 0;
    if (total == 0)
        return NULL; /* every slot is busy and read ahead; a finishing attempt sets dirty again */
    d->fetching = 1;

    f = crs_calloc(1, sizeof(*f));
    if (f == NULL)
        goto nomem;
    f->sinks = crs_calloc(nsinks, sizeof(f->sinks[0]));
    if (f->sinks == NULL)
        goto nomem;
    f->nsinks = nsinks;
    f->now_ms = crs_now_ms();
    for (a = d->head; a != NULL; a = a->next)
        f->sinks[a->sink].nexclude++;
    for (i = 0; i < nsinks && i < d->nstate; i++)
        f->sinks[i].nexclude += d->state[i].nready;
    for (i = 0; i < nsinks; i++) {
        f->sinks[i].need = d->paused ? 0 : dispatch_slots(d, i);
        f->sinks[i].want = f->sinks[i].need + dispatch_read_ahead(d, i, &f->sinks[i].budget);
        f->sinks[i].name = d->sinks[i].cfg->name;
        if (f->sinks[i].nexclude > 0) {
            f->sinks[i].exclude = crs_calloc(f->sinks[i].nexclude, sizeof(int64_t));
            if (f->sinks[i].exclude == NULL)
                goto nomem;
            f->sinks[i].nexclude = 0;
        }
    }
    for (a = d->head; a != NULL; a = a->next) {
        struct crs_fetch_sink *fs = &f->sinks[a->sink];
        fs->exclude[fs->nexclude++] = a->d.event_row;
    }
    for (i = 0; i < nsinks && i < d->nstate; i++) {
        struct crs_due *due;
        for (due = d->state[i].ready; due != NULL; due = due->next)
            f->sinks[i].exclude[f->sinks[i].nexclude++] = due->event_row;
    }
    for (i = 0; i < nsinks; i++)
        if (f->sinks[i].nexclude > 1)
            qsort(f->sinks[i].exclude, f->sinks[i].nexclude, sizeof(int64_t), dispatch_cmp_i64);
    return f;

nomem:
    crs_error("dispatcher: out of memory preparing a fetch");
    crs_fetch_free(f);
    d->dirty = 1;
    return NULL;
}

/* Hands the held outcomes to the queue again (in one job). */
static void dispatch_offer_held(struct crs_dispatcher *d)
{
    struct crs_delivery_update *list = d->held;

    d->held = NULL;
    while (list != NULL) {
        struct crs_delivery_update *next = list->next;
        sink_st(d, list->sink)->held--;
        crs_queue_update(d->q, list);
        list = next;
    }
}

static void dispatch_timer_cb(uv_timer_t *t)
{
    struct crs_dispatcher *d = t->data;

    d->db_retry = 0;
    d->dirty = 1;
    dispatch_offer_held(d);
    crs_queue_kick(d->q);
}

static void dispatch_arm_timer(struct crs_dispatcher *d, int64_t delay_ms)
{
    if (!d->timer_open || d->stopping)
        return;
    if (delay_ms < 0)
        delay_ms = 0;
    uv_timer_start(&d->timer, dispatch_timer_cb, (uint64_t)delay_ms, 0);
}

static void hook_fetch_done(void *arg, struct crs_fetch *f)
{
    struct crs_dispatcher *d = arg;
    struct crs_due *due;

    d->fetching = 0;
    if (d->paused) {
        /* A reload is waiting for the attempts in memory: these rows stay pending and are
         * fetched again, under the new configuration, when it resumes. */
        crs_fetch_free(f);
        dispatch_check_paused(d);
        return;
    }
    if (f->status != 0) {
        d->db_retry = 1;
        dispatch_arm_timer(d, DISPATCH_DB_RETRY_MS);
        crs_fetch_free(f);
        return;
    }
    /* Into the sinks' ready lists in fetch order (the fresh lane first), then into free slots. */
    due = f->due;
    f->due = NULL;
    while (due != NULL) {
        struct crs_due *next = due->next;

        due->next = NULL;
        if (d->stopping) {
            crs_due_free_list(due);
        } else if (due->sink >= d->nstate) {
            attempt_start(d, due); /* a reload that could not grow the state: no read-ahead */
            crs_due_free_list(due);
        } else {
            struct sink_state *st = &d->state[due->sink];
            if (st->ready_tail != NULL)
                st->ready_tail->next = due;
            else
                st->ready = due;
            st->ready_tail = due;
            st->nready++;
            st->ready_bytes += due->len;
        }
        due = next;
    }
    dispatch_start_ready(d);
    /* After a database failure the timer is already set to fetch again soon, and that fetch
     * sets it properly; otherwise it wakes us for the earliest retry still to come. */
    if (!d->db_retry && f->next_due_ms >= 0)
        dispatch_arm_timer(d, f->next_due_ms - crs_now_ms());
    else if (!d->db_retry && d->timer_open)
        uv_timer_stop(&d->timer);
    crs_fetch_free(f);
}

/* Keeps refused outcomes for the retry timer and pauses their sinks (logged once per pause). */
static void dispatch_hold(struct crs_dispatcher *d, struct crs_delivery_update *list, int status)
{
    while (list != NULL) {
        struct crs_delivery_update *next = list->next;
        struct sink_state *st = sink_st(d, list->sink);

        if (!st->paused)
            crs_error("sink %s: paused: delivery outcomes cannot be recorded in the queue "
                      "database (%s); they are kept in memory and written when it takes writes "
                      "again, and no further deliveries start until then",
                      d->sinks[list->sink].cfg->name, crs_strerror(status));
        st->paused = 1;
        st->held++;
        list->next = d->held;
        d->held = list;
        list = next;
    }
    d->db_retry = 1;
    dispatch_arm_timer(d, DISPATCH_DB_RETRY_MS);
}

/* Resumes every paused sink with nothing left to write: the database took writes again. */
static void dispatch_resume(struct crs_dispatcher *d)
{
    size_t i;

    for (i = 0; i < d->nsinks; i++) {
        struct sink_state *st = sink_st(d, i);
        if (st->paused && st->held == 0) {
            st->paused = 0;
            d->dirty = 1;
            crs_info("sink %s: resumed: delivery outcomes are recorded again",
                     d->sinks[i].cfg->name);
        }
    }
}

static void hook_updates_done(void *arg, struct crs_delivery_update *list, int status)
{
    struct crs_dispatcher *d = arg;

    if (status != 0 && !d->stopping) {
        /* The deliveries happened: keep their outcomes rather than let the rows, still pending
         * and due, be fetched and delivered again at once (a storm of re-deliveries). */
        dispatch_hold(d, list, status);
        return;
    }
    if (status != 0) {
        size_t n = 0;
        struct crs_delivery_update *u;
        for (u = list; u != NULL; u = u->next)
            n++;
        crs_error("dispatcher: %zu delivery outcomes could not be recorded before stopping (%s); "
                  "those events will be delivered again at the next start",
                  n, crs_strerror(status));
    }
    if (status == 0)
        dispatch_resume(d);
    while (list != NULL) {
        struct crs_delivery_update *next = list->next;
        /* A row put back to pending may already be due again (a Retry-After of 0): it was
         * excluded from the fetch of the job that recorded it, so fetch once more. */
        if (status == 0 && list->state == CRS_DSTATE_PENDING && !d->stopping)
            d->dirty = 1;
        attempt_unlink_free(d, ATTEMPT_OF_UPDATE(list));
        list = next;
    }
    if (d->dirty && !d->stopping && !d->paused)
        crs_queue_kick(d->q);
    dispatch_check_paused(d);
}

/* ---- Lifecycle ---- */

int crs_dispatcher_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                       struct crs_sink *sinks, struct crs_dispatcher **out)
{
    struct crs_dispatcher *d;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || q == NULL || (cfg->nsinks > 0 && sinks == NULL))
        return CRS_EINVAL;
    d = crs_calloc(1, sizeof(*d));
    if (d == NULL)
        return CRS_ENOMEM;
    d->state = crs_calloc(cfg->nsinks ? cfg->nsinks : 1, sizeof(d->state[0]));
    d->nstate = cfg->nsinks;
    if (d->state == NULL) {
        crs_free(d);
        return CRS_ENOMEM;
    }
    d->loop = loop;
    d->cfg = cfg;
    d->nsinks = cfg->nsinks;
    d->q = q;
    d->sinks = sinks;
    d->rnd = (uint32_t)uv_hrtime() | 1u;
    rc = uv_timer_init(loop, &d->timer);
    if (rc != 0) {
        crs_free(d->state);
        crs_free(d);
        return crs_translate_sys_error(-rc);
    }
    d->timer.data = d;
    d->timer_open = 1;
    *out = d;
    return 0;
}

int crs_dispatcher_start(struct crs_dispatcher *d)
{
    struct crs_queue_hooks hooks;

    if (d == NULL)
        return CRS_EINVAL;
    memset(&hooks, 0, sizeof(hooks));
    hooks.fetch_prepare = hook_fetch_prepare;
    hooks.fetch_done = hook_fetch_done;
    hooks.updates_done = hook_updates_done;
    hooks.arg = d;
    crs_queue_set_hooks(d->q, &hooks);
    /* Everything pending and due is resumed: attempts in progress when the broker last stopped
     * (or crashed) were never recorded, so their rows are simply pending. */
    d->dirty = 1;
    crs_queue_kick(d->q);
    return 0;
}

static void dispatch_timer_closed(uv_handle_t *h)
{
    struct crs_dispatcher *d = h->data;

    d->timer_open = 0;
    dispatch_check_stopped(d);
}

void crs_dispatcher_stop(struct crs_dispatcher *d, void (*cb)(void *arg), void *arg)
{
    size_t i;

    if (d == NULL || d->stopping)
        return;
    d->stopping = 1;
    d->stop_cb = cb;
    d->stop_arg = arg;
    dispatch_drop_ready(d);
    for (i = 0; i < d->nsinks; i++) {
        struct crs_sink *s = &d->sinks[i];
        if (s->inflight > 0 && s->driver->cancel_all != NULL)
            s->driver->cancel_all(s);
        sink_log_flush(d, (unsigned)i, crs_now_ms());
    }
    /* One last chance for outcomes the database refused: the queue writes them before it
     * closes, or they are dropped (hook_updates_done) and delivered again at the next start. */
    dispatch_offer_held(d);
    if (d->timer_open && !uv_is_closing((uv_handle_t *)&d->timer))
        uv_close((uv_handle_t *)&d->timer, dispatch_timer_closed);
    else
        dispatch_check_stopped(d);
}

void crs_dispatcher_pause(struct crs_dispatcher *d, void (*cb)(void *arg), void *arg)
{
    if (d == NULL || cb == NULL)
        return;
    d->paused = 1;
    d->pause_cb = cb;
    d->pause_arg = arg;
    /* Read-ahead rows are not attempts: they are fetched again, under the new configuration. */
    dispatch_drop_ready(d);
    dispatch_check_paused(d);
}

void crs_dispatcher_resume(struct crs_dispatcher *d, struct crs_sink *sinks, size_t nsinks)
{
    if (d == NULL)
        return;
    /* Per-sink state follows the new set: the pause let every outcome be recorded, so nothing
     * is held; the old log windows are closed under their old names first. */
    {
        struct sink_state *state = crs_calloc(nsinks ? nsinks : 1, sizeof(*state));
        size_t i;
        for (i = 0; i < d->nsinks; i++)
            sink_log_flush(d, (unsigned)i, crs_now_ms());
        dispatch_drop_ready(d);
        if (state != NULL) {
            crs_free(d->state);
            d->state = state;
            d->nstate = nsinks;
        } else {
            crs_error("dispatcher: out of memory for the reloaded sinks' state");
            memset(d->state, 0, d->nstate * sizeof(*d->state));
        }
    }
    d->sinks = sinks;
    d->nsinks = nsinks;
    d->paused = 0;
    d->pause_cb = NULL;
    if (d->stopping)
        return;
    d->dirty = 1;
    crs_queue_kick(d->q);
}

void crs_dispatcher_wake(struct crs_dispatcher *d)
{
    if (d == NULL)
        return;
    /* Also how an attempt made outside the dispatcher (send-test) tells a stop or a pause
     * waiting for the sink's attempts in flight that it has finished. */
    if (d->stopping) {
        dispatch_check_stopped(d);
        return;
    }
    if (d->paused) {
        dispatch_check_paused(d);
        return;
    }
    d->dirty = 1;
    crs_queue_kick(d->q);
}

void crs_dispatcher_free(struct crs_dispatcher *d)
{
    if (d == NULL)
        return;
    while (d->head != NULL)
        attempt_unlink_free(d, d->head);
    dispatch_drop_ready(d);
    crs_free(d->state);
    crs_free(d);
}
