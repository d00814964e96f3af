/*
 * The durable queue: the broker's SQLite database and the one serialized lane of database jobs
 * that runs on libuv's threadpool.
 *
 * Exactly one job is in flight at a time. A job is assembled when the previous one finishes, from
 * everything that has piled up meanwhile: received events (group commit, up to commit_batch_max),
 * delivery outcomes from the dispatcher, and a fetch of due deliveries. Events and outcomes are
 * written in one transaction; only when COMMIT has returned are the events' owners told (their
 * done callback), which is when the broker acks them or deletes their spool file.
 */
#ifndef CERTRELAY_BROKER_QUEUE_H
#define CERTRELAY_BROKER_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "certrelay.pb-c.h"
#include "certrelay/catchup.h"

struct crs_queue;
struct crs_ingest_item;

/* Called on the loop thread once the item's batch is committed (status 0) or failed (a negative
 * code, with reason a sentence for the Nack and the log). The callback frees the item. An event
 * whose id is already stored with different content is refused on its own with CRS_EEXIST and
 * CRS_QUEUE_ID_REUSED as the reason (the rest of its batch is committed). */
#define CRS_QUEUE_ID_REUSED "event id already used by a different event; refused"
typedef void (*crs_ingest_done_cb)(struct crs_ingest_item *item, int status, const char *reason);

/*
 * Called on the loop thread after every run of done callbacks: after each group commit has
 * answered all its events, and after the callbacks the queue makes outside a commit (a closed
 * queue refusing an event, crs_queue_free). An owner that buffers its answers (the server: the
 * Acks of one group for one connection go out in one write) writes them here.
 */
typedef void (*crs_ingest_flush_cb)(void *arg);

/* One received event waiting for the group commit. */
struct crs_ingest_item {
    struct crs_ingest_item *next; /* the queue's */
    char event_id[37];
    uint32_t kind;
    int64_t received_ms;
    uint8_t *body; /* the packed Event, in the item's own allocation */
    size_t len;
    crs_ingest_done_cb done;
    int status; /* set by the commit: CRS_EEXIST when the id belongs to a different event */
    /* The dedup key (queue_dedup.h), when the event has one; duplicate is set by the commit when
     * another stored event holds it: the item is acked (status 0) but not stored. */
    int has_key;
    int caught_up; /* Event.origin is "catchup" */
    int duplicate;
    int64_t key_when_ms;
    struct crs_catchup_key key;
    void *owner; /* the connection or the spool drain; may be cleared by the owner */
    void *data;  /* the owner's */
    /* The configuration the routes index: the one current when the event was received, which
     * stays valid for the broker's lifetime even after a reload replaces it. */
    const struct crs_config *cfg;
    size_t nroutes;
    unsigned routes[]; /* indexes into cfg->sinks of the sinks that take this event */
};

/*
 * Builds an item for event (decoded) whose packed bytes are body/len (copied into the item's one
 * allocation): computes the routing (each sink's events mask and templates filter) from cfg, from
 * the decoded event the caller already holds, so nothing is decoded twice.
 */
int crs_ingest_item_new(const struct crs_config *cfg, const Certrelay__V1__Event *ev,
                        const uint8_t *body, size_t len, struct crs_ingest_item **out);
void crs_ingest_item_free(struct crs_ingest_item *item);

/* One pending delivery row read back by a fetch. */
struct crs_due {
    struct crs_due *next;
    unsigned sink;
    int64_t event_row;
    uint32_t attempts;
    int64_t received_ms;
    uint8_t *body; /* crs_malloc */
    size_t len;
};
void crs_due_free_list(struct crs_due *list);

/* What a fetch should read, built by the dispatcher on the loop thread when a job starts. */
struct crs_fetch_sink {
    const char *name; /* the sink's name (the rows' key) */
    uint32_t want;    /* rows to return at most (free slots plus the read-ahead) */
    uint32_t need;    /* rows to return whatever their size (free concurrency slots) */
    size_t budget;    /* beyond need, stop once the bodies read reach this many bytes */
    int64_t *exclude; /* sorted rowids already in memory (in flight or being recorded) */
    size_t nexclude;
};
struct crs_fetch {
    int64_t now_ms;
    size_t nsinks;
    struct crs_fetch_sink *sinks; /* one per sink the dispatcher serves */
    /* Results, filled by the worker. */
    struct crs_due *due;
    int64_t next_due_ms; /* earliest next_attempt_ms > now_ms among pending rows, or -1 */
    int status;
};
void crs_fetch_free(struct crs_fetch *f);

enum crs_delivery_state { CRS_DSTATE_PENDING = 0, CRS_DSTATE_DELIVERED = 1, CRS_DSTATE_DEAD = 2 };

/* One delivery outcome to record. */
struct crs_delivery_update {
    struct crs_delivery_update *next; /* the queue's */
    int64_t event_row;
    unsigned sink;
    const char *sink_name; /* the row's key; valid for the broker's lifetime */
    int state;             /* enum crs_delivery_state */
    uint32_t attempts;
    int64_t next_attempt_ms;
    int64_t started_ms; /* when the attempt started (the attempts row) */
    int64_t updated_ms; /* when it finished */
    int last_status;
    char last_error[256]; /* capped: the attempts row keeps at most 255 bytes of error text */
};

/* How the queue talks back to the dispatcher, on the loop thread. */
struct crs_queue_hooks {
    /* At the start of each job: a fetch to run after the commit, or NULL for none.
     * have_events tells whether the job commits new events. */
    struct crs_fetch *(*fetch_prepare)(void *arg, int have_events);
    /* The fetch's result; the hook owns f. */
    void (*fetch_done)(void *arg, struct crs_fetch *f);
    /* The updates were committed (status 0) or not; the hook owns the list. */
    void (*updates_done)(void *arg, struct crs_delivery_update *list, int status);
    void *arg;
};

/*
 * Opens (creating) the database state_dir/certrelay.db synchronously: the broker calls it at start,
 * before anything else runs. Logs its own failures.
 *
 * It checks the database first and says what it found: the write-ahead log is read frame by
 * frame before SQLite sees it (SQLite silently ignores everything from the first frame whose
 * checksum fails, so 32 damaged bytes lost acked events with no warning), then PRAGMA
 * quick_check runs on the database. On damage it refuses (CRS_EDB) unless cfg->salvage is set
 * (`certrelayd --salvage`, or `salvage = true`): then a copy of the damaged WAL is kept as
 * certrelay.db-wal.damaged-<unix ms>, the loss is logged and the broker runs on what is intact.
 */
int crs_queue_open(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue **out);
void crs_queue_set_hooks(struct crs_queue *q, const struct crs_queue_hooks *hooks);
/* The configuration for jobs started from now on (a reload); it must stay valid until the queue
 * is freed. */
void crs_queue_set_config(struct crs_queue *q, const struct crs_config *cfg);
/* Sets the flush callback (NULL for none); arg must stay valid until the queue is freed. */
void crs_queue_set_ingest_flush(struct crs_queue *q, crs_ingest_flush_cb flush, void *arg);
/* Adds an event to the next group commit. The queue owns the item until its done callback. */
void crs_queue_ingest(struct crs_queue *q, struct crs_ingest_item *item);
/*
 * Holds the start of the next job until the matching release: a caller about to ingest several
 * events at once (the frames of one read) puts them all in one group instead of committing the
 * first alone. Holds nest; release starts the job when nothing holds it any more.
 */
void crs_queue_hold(struct crs_queue *q);
void crs_queue_release(struct crs_queue *q);
/* Adds a delivery outcome to the next job. */
void crs_queue_update(struct crs_queue *q, struct crs_delivery_update *u);
/* Asks for a job even if nothing is pending (the dispatcher wants a fetch). */
void crs_queue_kick(struct crs_queue *q);
/*
 * Finishes: runs jobs until nothing is pending, then closes the database and calls cb. Items
 * ingested after this are still committed. Call once.
 */
void crs_queue_close(struct crs_queue *q, void (*cb)(void *arg), void *arg);
/*
 * Runs the quick_check crs_queue_open left for later (a database larger than it checks before
 * accepting) on its own read-only connection on the threadpool. cb gets 0 when the database is
 * sound, or CRS_EDB when it is damaged and salvage is off (the broker then stops); it is not
 * called when a close interrupts the check. CRS_ENOENT when no check was left for later (cb is
 * never called then), or another code.
 */
int crs_queue_check_start(struct crs_queue *q, void (*cb)(void *arg, int rc), void *arg);
/* Frees a closed queue. NULL is a no-op. */
void crs_queue_free(struct crs_queue *q);

/*
 * Expiry schedules (expiry.h): the queue owns the worker half and runs its ingest inside each
 * commit. The hook, on the loop, hears of the earliest schedule a committed job set due.
 */
struct crs_expiry_db *crs_queue_expiry_db(struct crs_queue *q);
void crs_queue_set_expiry_hook(struct crs_queue *q, void (*due)(void *arg, int64_t due_ms),
                               void *arg);

/* ---- Operations outside the delivery path (the admin commands, broker/admin.c) ---- */

struct sqlite3;

/*
 * A read or write of the database on behalf of an administrator. It joins the next job of the
 * queue's one lane: run() executes on the worker after that job's commit and before its fetch
 * (so rows a retry makes due are fetched by the same job), done() on the loop thread afterwards,
 * with status CRS_ECANCELED (and run() never called) when the queue has already closed.
 */
struct crs_queue_op {
    struct crs_queue_op *next; /* the queue's */
    int (*run)(struct crs_queue_op *op, struct sqlite3 *db, const struct crs_config *cfg);
    void (*done)(struct crs_queue_op *op, int status);
    int status; /* run()'s result, the queue's */
};
void crs_queue_submit(struct crs_queue *q, struct crs_queue_op *op);

#include <jansson.h>

/*
 * The admin queries (broker/queue_admin.c), called from a crs_queue_op's run() on the worker.
 * Each fills *result with a fresh JSON object (the shapes below; `certrelay ... --json` prints
 * them) or returns
 * a negative CRS_E* code with a sentence in err. now_ms is the current time.
 *
 *   status:  {"sinks": [{name, pending, dead, delivered_24h, oldest_pending_ms, last_error,
 *             last_error_ms, last_status}], "database": {bytes, free_bytes, events, deliveries}}
 *   events:  params {sink, state, kind, since_ms, request_id, serial, limit} -> {"events": [...]}
 *   show:    params {event_id} -> {"event": document, "received_ms", "deliveries": [{sink,
 *             state, attempts, last_status, last_error, updated_ms, next_attempt_ms, "history":
 *             [{attempt, started_ms, finished_ms, outcome, status, error}]}]}
 *   retry:   params {event_ids: [...]} or {sink, dead: true, since_ms} -> {"rows": N, ...}
 *   replay:  params {sink, since_ms, kind} -> {"rows": N}
 */
int crs_queue_admin_status(struct sqlite3 *db, const struct crs_config *cfg, int64_t now_ms,
                           json_t **result, char *err, size_t errlen);
int crs_queue_admin_events(struct sqlite3 *db, const struct crs_config *cfg, json_t *params,
                           json_t **result, char *err, size_t errlen);
int crs_queue_admin_show(struct sqlite3 *db, json_t *params, json_t **result, char *err,
                         size_t errlen);
int crs_queue_admin_retry(struct sqlite3 *db, const struct crs_config *cfg, json_t *params,
                          int64_t now_ms, json_t **result, char *err, size_t errlen);
/* Retention: deletes at most batch events (with their deliveries) whose deliveries are all
 * finished and past cfg's retention (see queue_admin.c); *pruned tells how many. */
int crs_queue_prune(struct sqlite3 *db, const struct crs_config *cfg, int64_t now_ms,
                    unsigned batch, int64_t *pruned, char *err, size_t errlen);
/* catchup-check: params {events: [base64 packed Event, ...]} -> {"results": [{event_id,
 * request_id, kind, outcome: new|duplicate|rejected, reason}], new, duplicates, rejected};
 * catchup-status: {"watermarks": [...]} (queue_dedup.h). */
int crs_queue_admin_catchup_check(struct sqlite3 *db, json_t *params, json_t **result, char *err,
                                  size_t errlen);
int crs_queue_admin_catchup_status(struct sqlite3 *db, json_t **result, char *err, size_t errlen);
int crs_queue_admin_replay(struct sqlite3 *db, const struct crs_config *cfg, json_t *params,
                           int64_t now_ms, json_t **result, char *err, size_t errlen);

#endif
