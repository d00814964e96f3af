/*
 * The durable queue (see queue.h): SQLite in WAL mode with synchronous=FULL, driven from libuv's
 * threadpool with exactly one database job in flight.
 *
 * ---- Schema (PRAGMA user_version = 4; version 3 added the dedup index, queue_dedup.c; version 4
 *      the expiry schedules, expiry.c) ----
 *
 *   CREATE TABLE events (
 *       rowid       INTEGER PRIMARY KEY,
 *       event_id    TEXT UNIQUE NOT NULL,   -- the UUIDv7 minted by the stub at capture
 *       kind        INTEGER NOT NULL,       -- CRS_EVENT_* bit
 *       received_ms INTEGER NOT NULL,       -- when the broker received it (max_age counts from here)
 *       body        BLOB NOT NULL);         -- the packed certrelay.v1.Event, as received
 *   CREATE TABLE deliveries (
 *       event_rowid     INTEGER NOT NULL,   -- events.rowid
 *       sink            TEXT NOT NULL,      -- the NAME of [sink.NAME]
 *       state           INTEGER NOT NULL,   -- 0 pending, 1 delivered, 2 dead
 *       attempts        INTEGER NOT NULL,
 *       next_attempt_ms INTEGER NOT NULL,
 *       last_error      TEXT,
 *       last_status     INTEGER,            -- HTTP/SMTP status of the last attempt, 0 if none
 *       updated_ms      INTEGER NOT NULL,
 *       PRIMARY KEY (event_rowid, sink));
 *   CREATE INDEX deliveries_due ON deliveries (state, next_attempt_ms);
 *   CREATE INDEX deliveries_sink_due ON deliveries (sink, state, next_attempt_ms);
 *   CREATE TABLE attempts (                 -- version 2: every finished attempt of a delivery
 *       event_rowid INTEGER NOT NULL,       -- events.rowid
 *       sink        TEXT NOT NULL,          -- deliveries.sink
 *       attempt     INTEGER NOT NULL,       -- 1, 2, ... (deliveries.attempts when it finished)
 *       started_ms  INTEGER NOT NULL,
 *       finished_ms INTEGER NOT NULL,
 *       outcome     INTEGER NOT NULL,       -- the row's state after it: 0 retry, 1 delivered, 2 dead
 *       status      INTEGER NOT NULL,       -- HTTP/SMTP status, 0 if none
 *       error       TEXT,                   -- NULL when delivered; at most 255 bytes
 *       PRIMARY KEY (event_rowid, sink, attempt)) WITHOUT ROWID;
 *
 * A sample, one event routed to two sinks, one delivered, one waiting for its fourth attempt:
 *
 *   events:     7 | 0193a1c2-5e4f-7a10-8b2c-3d4e5f607182 | 1 | 1732212247123 | x'0a24...'
 *   deliveries: 7 | archive | 1 | 1 | 1732212247123 | NULL              | 0   | 1732212247140
 *               7 | hook    | 0 | 3 | 1732212259000 | HTTP 503 from ... | 503 | 1732212251000
 *   attempts:   7 | archive | 1 | 1732212247125 | 1732212247140 | 1 | 0   | NULL
 *               7 | hook    | 1 | 1732212247125 | 1732212247390 | 0 | 503 | HTTP 503 from ...
 *               7 | hook    | 2 | 1732212248400 | 1732212248650 | 0 | 503 | HTTP 503 from ...
 *               7 | hook    | 3 | 1732212250700 | 1732212251000 | 0 | 503 | HTTP 503 from ...
 *
 * An attempt's row is written by the same statement batch, in the same transaction, as the
 * deliveries row it updates: the history costs no commit of its own. It is bounded per delivery:
 * attempt numbers run from 1 to max_attempts (the dispatcher dead-letters at max_attempts), and
 * recording attempt N first drops that delivery's rows numbered N and above, so after an
 * administrator's retry or replay (which restart attempts at 0) the new attempts replace the old
 * ones instead of piling up. Retention deletes an event's attempts with the event.
 *
 * Version 1 databases (no attempts table) are migrated at start: the schema below is applied with
 * CREATE ... IF NOT EXISTS in the same transaction that raises user_version. Version 2 databases
 * get the dedup index and the watermarks of queue_dedup.c the same way, backfilled from their
 * stored events in that transaction.
 * Version 4 adds the expiry schedules, whose table and statements live in expiry.c (its schema
 * sample is there), applied the same way.
 *
 * Routing happens once, when an event is committed: it gets one deliveries row per sink whose
 * events mask and templates filter take it. Therefore a sink removed from the configuration leaves
 * its rows untouched (they are simply never fetched again, and reappear if the sink comes back
 * under the same name), and a sink added later does not receive events committed before it
 * existed. A re-sent or re-spooled event (same event_id) is ignored by INSERT OR IGNORE and gets
 * no second set of deliveries: that is what makes the stub's retries idempotent.
 */
#include "queue.h"
#include "route.h"

#include "certrelay/msgid.h"
#include "expiry_store.h"
#include "metrics.h"
#include "queue_dedup.h"

#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "certrelay/text.h"
#include "certrelay/log.h"

#define QUEUE_SCHEMA_VERSION     4
#define QUEUE_SCHEMA_VERSION_SQL "PRAGMA user_version = 4" /* keep equal to the line above */
#define QUEUE_DB_NAME            "certrelay.db"
#define QUEUE_BUSY_TIMEOUT       5000
/*
 * Checkpoints are taken off the ack path: SQLite's automatic checkpoint would run inside the
 * COMMIT of whichever batch crosses the threshold and delay its acks. Instead a checkpoint runs as
 * its own job once the queue is idle and the WAL holds QUEUE_CKPT_IDLE frames, or inside a job
 * when the WAL reaches QUEUE_CKPT_FORCE frames (a broker that is never idle still bounds it).
 */
/* A database that keeps failing is reported at most this often. */
#define QUEUE_FAIL_LOG_MS 60000
#define QUEUE_CKPT_IDLE   1000
#define QUEUE_CKPT_FORCE  16000
/*
 * PRAGMA quick_check reads every page: about a second per gigabyte here. A database up to this
 * size is checked before the broker accepts events; a larger one (a backlog of a million
 * deliveries is over 2 GB) is checked on its own read-only connection on the threadpool while the
 * broker already runs, so that a large queue does not keep the CA waiting at start.
 */
#define QUEUE_CHECK_SYNC_MAX (64 * 1024 * 1024)

static const char queue_schema_sql[] =
    "CREATE TABLE IF NOT EXISTS events ("
    " rowid INTEGER PRIMARY KEY,"
    " event_id TEXT UNIQUE NOT NULL,"
    " kind INTEGER NOT NULL,"
    " received_ms INTEGER NOT NULL,"
    " body BLOB NOT NULL);"
    "CREATE TABLE IF NOT EXISTS deliveries ("
    " event_rowid INTEGER NOT NULL,"
    " sink TEXT NOT NULL,"
    " state INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL,"
    " next_attempt_ms INTEGER NOT NULL,"
    " last_error TEXT,"
    " last_status INTEGER,"
    " updated_ms INTEGER NOT NULL,"
    " PRIMARY KEY (event_rowid, sink));"
    "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (state, next_attempt_ms);"
    /* Per sink, so that one sink's backlog of due rows (a receiver down for a day) does not
     * have to be stepped over by every fetch for another sink. */
    "CREATE INDEX IF NOT EXISTS deliveries_sink_due ON deliveries (sink, state, next_attempt_ms);"
    /* Version 2. */
    "CREATE TABLE IF NOT EXISTS attempts ("
    " event_rowid INTEGER NOT NULL,"
    " sink TEXT NOT NULL,"
    " attempt INTEGER NOT NULL,"
    " started_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL,"
    " outcome INTEGER NOT NULL,"
    " status INTEGER NOT NULL,"
    " error TEXT,"
    " PRIMARY KEY (event_rowid, sink, attempt)) WITHOUT ROWID;";

enum queue_stmt {
    STMT_BEGIN,
    STMT_COMMIT,
    STMT_ROLLBACK,
    STMT_INSERT_EVENT,
    STMT_INSERT_DELIVERY,
    STMT_UPDATE_DELIVERY,
    STMT_TRIM_ATTEMPTS,
    STMT_INSERT_ATTEMPT,
    STMT_FETCH_DUE,
    STMT_FETCH_FRESH,
    STMT_NEXT_DUE,
    STMT_EVENT_BODY,
    STMT_COUNT_
};

static const char *const queue_stmt_sql[STMT_COUNT_] = {
    [STMT_BEGIN] = "BEGIN IMMEDIATE",
    [STMT_COMMIT] = "COMMIT",
    [STMT_ROLLBACK] = "ROLLBACK",
    [STMT_INSERT_EVENT] = "INSERT OR IGNORE INTO events (event_id, kind, received_ms, body) "
                          "VALUES (?1, ?2, ?3, ?4)",
    [STMT_INSERT_DELIVERY] = "INSERT OR IGNORE INTO deliveries (event_rowid, sink, state, "
                             "attempts, next_attempt_ms, last_error, last_status, updated_ms) "
                             "VALUES (?1, ?2, 0, 0, ?3, NULL, 0, ?3)",
    [STMT_UPDATE_DELIVERY] = "UPDATE deliveries SET state = ?1, attempts = ?2, "
                             "next_attempt_ms = ?3, last_error = ?4, last_status = ?5, "
                             "updated_ms = ?6 WHERE event_rowid = ?7 AND sink = ?8",
    [STMT_TRIM_ATTEMPTS] = "DELETE FROM attempts WHERE event_rowid = ?1 AND sink = ?2 "
                           "AND attempt >= ?3",
    [STMT_INSERT_ATTEMPT] = "INSERT INTO attempts (event_rowid, sink, attempt, started_ms, "
                            "finished_ms, outcome, status, error) "
                            "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    [STMT_FETCH_DUE] = "SELECT d.event_rowid, d.attempts, e.received_ms, e.body "
                       "FROM deliveries d JOIN events e ON e.rowid = d.event_rowid "
                       "WHERE d.state = 0 AND d.next_attempt_ms <= ?1 AND d.sink = ?2 "
                       "ORDER BY d.next_attempt_ms",
    /* The same rows, latest due first: the fresh lane (see job_fetch). */
    [STMT_FETCH_FRESH] = "SELECT d.event_rowid, d.attempts, e.received_ms, e.body "
                         "FROM deliveries d JOIN events e ON e.rowid = d.event_rowid "
                         "WHERE d.state = 0 AND d.next_attempt_ms <= ?1 AND d.sink = ?2 "
                         "ORDER BY d.next_attempt_ms DESC",
    [STMT_NEXT_DUE] = "SELECT MIN(next_attempt_ms) FROM deliveries "
                      "WHERE state = 0 AND next_attempt_ms > ?1",
    [STMT_EVENT_BODY] = "SELECT body FROM events WHERE event_id = ?1",
};

/* The one job in flight. Everything in it belongs to the worker until the after-callback. */
struct queue_job {
    uv_work_t req;
    struct crs_ingest_item *items;
    size_t nitems;
    struct crs_delivery_update *updates;
    struct crs_fetch *fetch;
    struct crs_queue_op *ops;     /* admin operations, run after the commit */
    const struct crs_config *cfg; /* q->cfg when the job started (the worker's copy) */
    uint64_t start_ns;            /* uv_hrtime() when the job started (commit latency) */
    int full;                     /* the failure was SQLITE_FULL */
    int checkpoint;               /* run a passive checkpoint after the rest */
    int64_t now_ms;
    int status;
    char reason[256];
};

/* The quick_check of a large database, run in the background (crs_queue_check_start). */
struct queue_check {
    uv_work_t req;
    struct crs_queue *q;
    sqlite3 *db; /* its own read-only connection; sqlite3_interrupt stops it at close */
    uv_mutex_t lock;
    int interrupted;
    int rc; /* 0 ok, 1 damaged (why), CRS_ECANCELED interrupted */
    char why[320];
    void (*cb)(void *arg, int rc);
    void *arg;
};

struct crs_queue {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    char *path;                /* the database file, for the background check */
    int check_deferred;        /* quick_check left for crs_queue_check_start */
    struct queue_check *check; /* running */
    sqlite3 *db;
    sqlite3_stmt *stmt[STMT_COUNT_];
    struct crs_dedup *dedup; /* the dedup index's statements (queue_dedup.c) */
    struct crs_queue_hooks hooks;
    crs_ingest_flush_cb flush; /* after every run of done callbacks */
    void *flush_arg;
    struct crs_expiry_db *xdb; /* expiry schedules (expiry.c), used by the worker */
    void (*expiry_due)(void *arg, int64_t due_ms);
    void *expiry_arg;

    struct crs_ingest_item *in_head, *in_tail;
    size_t in_count;
    struct crs_delivery_update *up_head, *up_tail;
    struct crs_queue_op *op_head, *op_tail;

    struct queue_job job;
    int wal_frames;         /* frames in the WAL after the last commit (sqlite3_wal_hook) */
    int64_t fail_logged_ms; /* last failed job reported; 0 while jobs succeed */
    unsigned fail_quiet;    /* failed jobs since, not reported */
    int busy;               /* a job is in flight */
    int in_after;           /* inside the after-callback: defer pumping to its end */
    unsigned hold;          /* crs_queue_hold: the next job waits for the release */
    int closing;
    int closed;
    void (*close_cb)(void *arg);
    void *close_arg;
};

/* ---- Items, fetches and routing ---- */

/* The event's dedup key and disposition time (queue_dedup.c), when it has one. */
static void item_set_key(struct crs_ingest_item *item, const Certrelay__V1__Event *ev)
{
    if (crs_catchup_event_key(ev, &item->key) != 0)
        return;
    item->has_key = 1;
    item->caught_up = crs_dedup_event_caught_up(ev);
    item->key_when_ms = item->key.minute < 0                  ? -1
                        : item->key.kind == CRS_EVENT_PENDING ? ev->request->submitted_when_ms
                        : item->key.kind == CRS_EVENT_REVOKED ? ev->request->revoked_when_ms
                                                              : ev->request->resolved_when_ms;
}

int crs_ingest_item_new(const struct crs_config *cfg, const Certrelay__V1__Event *ev,
                        const uint8_t *body, size_t len, struct crs_ingest_item **out)
{
    struct crs_ingest_item *item = NULL;
    size_t i, head;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (cfg == NULL || ev == NULL || ev->event_id == NULL || body == NULL || len == 0)
        return CRS_EINVAL;

    /* One allocation: the item, its routes, then the body. */
    head = sizeof(*item) + cfg->nsinks * sizeof(item->routes[0]);
    if (len > SIZE_MAX - head)
        return CRS_ETOOBIG;
    item = crs_malloc(head + len);
    if (item == NULL)
        return CRS_ENOMEM;
    memset(item, 0, head);
    item->body = (uint8_t *)item + head;
    memcpy(item->body, body, len);
    item->len = len;
    snprintf(item->event_id, sizeof(item->event_id), "%s", ev->event_id);
    item->kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    item->received_ms = crs_now_ms();
    item->cfg = cfg;
    item_set_key(item, ev);
    for (i = 0; i < cfg->nsinks; i++) {
        if (crs_sink_matches(&cfg->sinks[i], ev))
            item->routes[item->nroutes++] = (unsigned)i;
    }
    *out = item;
    return 0;
}

void crs_ingest_item_free(struct crs_ingest_item *item)
{
    if (item == NULL)
        return;
    crs_free(item);
}

void crs_due_free_list(struct crs_due *list)
{
    while (list != NULL) {
        struct crs_due *next = list->next;
        crs_free(list->body);
        crs_free(list);
        list = next;
    }
}

void crs_fetch_free(struct crs_fetch *f)
{
    size_t i;

    if (f == NULL)
        return;
    for (i = 0; i < f->nsinks; i++)
        crs_free(f->sinks[i].exclude);
    crs_free(f->sinks);
    crs_due_free_list(f->due);
    crs_free(f);
}

/* ---- Checking the database before use ----
 *
 * The WAL file (https://sqlite.org/fileformat2.html#walformat):
 *
 *   header, 32 bytes:  magic 0x377f0682|3 | version | page size | checkpoint seq |
 *                      salt-1 | salt-2 | checksum-1 | checksum-2        (big-endian u32 each)
 *   frame, 24 bytes + one page:
 *                      page number | db size after commit (0 unless a commit frame) |
 *                      salt-1 | salt-2 | checksum-1 | checksum-2 | page data
 *
 * Checksums are cumulative from the header on. SQLite replays frames up to the last commit frame
 * before the first invalid one and ignores the rest. A frame failing its checksum is normal as
 * the very end (a write torn by a crash, never acknowledged); but a commit frame carrying the
 * current salts after it means committed transactions, acknowledged events among them, would be
 * dropped without a word. That is what queue_check_wal reports.
 */

#define WAL_HEADER       32u
#define WAL_FRAME_HEADER 24u
/* Largest WAL read into memory for the check (the broker checkpoints far below this). */
#define WAL_CHECK_MAX (1024u * 1024u * 1024u)

static uint32_t wal_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void wal_checksum(int big, const uint8_t *p, size_t n, uint32_t *s1, uint32_t *s2)
{
    size_t i;

    for (i = 0; i + 8 <= n; i += 8) {
        uint32_t x0, x1;
        if (big) {
            x0 = wal_be32(p + i);
            x1 = wal_be32(p + i + 4);
        } else {
            x0 = (uint32_t)p[i] | (uint32_t)p[i + 1] << 8 | (uint32_t)p[i + 2] << 16 |
                 (uint32_t)p[i + 3] << 24;
            x1 = (uint32_t)p[i + 4] | (uint32_t)p[i + 5] << 8 | (uint32_t)p[i + 6] << 16 |
                 (uint32_t)p[i + 7] << 24;
        }
        *s1 += x0 + *s2;
        *s2 += x1 + *s1;
    }
}

/*
 * Reads the WAL beside the database: 0 when it is absent or consistent, 1 when committed
 * transactions would be lost (what is written into why), or a negative code.
 */
static int queue_check_wal(const char *wal, char *why, size_t whylen)
{
    uint8_t *buf = NULL;
    size_t len = 0, off, psize, fsize, nframes, bad_at = 0, valid = 0, later_commits = 0;
    uint32_t magic, s1 = 0, s2 = 0, salt1, salt2;
    int big, rc, broken = 0;

    rc = crs_fs_read_file(wal, WAL_CHECK_MAX, CRS_FS_NOFOLLOW, &buf, &len);
    if (rc == CRS_ENOENT)
        return 0;
    if (rc != 0) {
        snprintf(why, whylen, "cannot read the write-ahead log %s: %s", wal, crs_strerror(rc));
        return 1;
    }
    rc = 0;
    if (len < WAL_HEADER)
        goto cleanup; /* empty or never written: nothing to replay */
    magic = wal_be32(buf);
    psize = wal_be32(buf + 8);
    big = magic & 1;
    if ((magic & ~1u) == 0x377f0682u && psize >= 512 && psize <= 65536 &&
        (psize & (psize - 1)) == 0) {
        wal_checksum(big, buf, 24, &s1, &s2);
    }
    if ((magic & ~1u) != 0x377f0682u || psize < 512 || psize > 65536 ||
        (psize & (psize - 1)) != 0 || s1 != wal_be32(buf + 24) || s2 != wal_be32(buf + 28)) {
        /* SQLite ignores a WAL whose header is invalid. Harmless only if it holds no frames. */
        if (len > WAL_HEADER + WAL_FRAME_HEADER + 512) {
            snprintf(why, whylen,
                     "the write-ahead log's header is damaged: SQLite would ignore all %zu bytes "
                     "of it",
                     len);
            rc = 1;
        }
        goto cleanup;
    }
    salt1 = wal_be32(buf + 16);
    salt2 = wal_be32(buf + 20);
    fsize = WAL_FRAME_HEADER + psize;
    nframes = (len - WAL_HEADER) / fsize;
    for (off = WAL_HEADER; off + fsize <= len; off += fsize) {
        const uint8_t *f = buf + off;
        int mine = wal_be32(f + 8) == salt1 && wal_be32(f + 12) == salt2;

        if (broken) {
            /* Past the break: count commits of this same WAL generation SQLite will drop. */
            if (mine && wal_be32(f + 4) != 0)
                later_commits++;
            continue;
        }
        if (mine) {
            wal_checksum(big, f, 8, &s1, &s2);
            wal_checksum(big, f + WAL_FRAME_HEADER, psize, &s1, &s2);
        }
        if (!mine || wal_be32(f) == 0 || s1 != wal_be32(f + 16) || s2 != wal_be32(f + 20)) {
            broken = 1;
            bad_at = (off - WAL_HEADER) / fsize;
            continue;
        }
        valid++;
    }
    if (later_commits > 0) {
        snprintf(why, whylen,
                 "the write-ahead log is damaged at frame %zu of %zu: SQLite would silently drop "
                 "%zu committed transactions after it",
                 bad_at + 1, nframes, later_commits);
        rc = 1;
    }

cleanup:
    crs_free(buf);
    return rc;
}

/* Keeps a copy of the damaged WAL beside it for whoever investigates, before SQLite rewrites it. */
static void queue_keep_wal(const struct crs_config *cfg)
{
    char name[96];
    uint8_t *buf = NULL;
    size_t len = 0;
    char *wal = crs_path_join(cfg->state_dir, QUEUE_DB_NAME "-wal");
    int rc = wal ? crs_fs_read_file(wal, WAL_CHECK_MAX, CRS_FS_NOFOLLOW, &buf, &len) : CRS_ENOMEM;

    snprintf(name, sizeof(name), "%s-wal.damaged-%lld", QUEUE_DB_NAME, (long long)crs_now_ms());
    if (rc == 0)
        rc = crs_fs_write_atomic(cfg->state_dir, name, buf, len);
    if (rc == 0)
        crs_warn("database: a copy of the damaged write-ahead log is kept as %s", name);
    else if (rc != CRS_ENOENT)
        crs_error("database: cannot keep a copy of the damaged write-ahead log: %s",
                  crs_strerror(rc));
    crs_free(buf);
    crs_free(wal);
}

/* PRAGMA quick_check: 0 when "ok", 1 with its first finding in why, or CRS_EDB. */
static int queue_quick_check(sqlite3 *db, char *why, size_t whylen)
{
    sqlite3_stmt *st = NULL;
    int rc = CRS_EDB, step;

    if (sqlite3_prepare_v2(db, "PRAGMA quick_check(5)", -1, &st, NULL) != SQLITE_OK) {
        snprintf(why, whylen, "quick_check cannot run: %s", sqlite3_errmsg(db));
        return 1;
    }
    step = sqlite3_step(st);
    if (step == SQLITE_ROW) {
        const char *r = (const char *)sqlite3_column_text(st, 0);
        if (r != NULL && strcmp(r, "ok") == 0) {
            rc = 0;
        } else {
            snprintf(why, whylen, "quick_check reports: %s", r ? r : "(null)");
            rc = 1;
        }
    } else {
        snprintf(why, whylen, "quick_check fails: %s", sqlite3_errmsg(db));
        rc = 1;
    }
    sqlite3_finalize(st);
    return rc;
}

/* Says what the check found: refused (CRS_EDB) unless the operator asked to salvage (0). */
static int queue_damaged(const struct crs_config *cfg, const char *path, const char *why,
                         const char *salvaged)
{
    if (!cfg->salvage) {
        crs_error("database %s is damaged: %s. Refusing to run on a damaged queue: restore it "
                  "from a backup, or start once with --salvage (salvage = true) to run on what "
                  "is intact",
                  path, why);
        return CRS_EDB;
    }
    crs_warn("database %s is damaged: %s; salvaging as asked: %s", path, why, salvaged);
    return 0;
}

/* ---- Opening ---- */

static int queue_exec(struct crs_queue *q, const char *sql)
{
    char *msg = NULL;

    if (sqlite3_exec(q->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        crs_error("database: %s: %s", sql, msg ? msg : sqlite3_errmsg(q->db));
        sqlite3_free(msg);
        return CRS_EDB;
    }
    return 0;
}

/* Reads a one-integer pragma or query. */
static int queue_query_int(struct crs_queue *q, const char *sql, int64_t *value)
{
    sqlite3_stmt *st = NULL;
    int rc = CRS_EDB;

    *value = 0;
    if (sqlite3_prepare_v2(q->db, sql, -1, &st, NULL) != SQLITE_OK)
        goto cleanup;
    if (sqlite3_step(st) != SQLITE_ROW)
        goto cleanup;
    *value = sqlite3_column_int64(st, 0);
    rc = 0;

cleanup:
    if (rc != 0)
        crs_error("database: %s: %s", sql, sqlite3_errmsg(q->db));
    sqlite3_finalize(st);
    return rc;
}

/* Runs in the worker right after each COMMIT. */
static int queue_wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    struct crs_queue *q = arg;

    q->wal_frames = frames;
    return SQLITE_OK;
}

/*
 * Retention (broker/retention.c) deletes old rows; with auto_vacuum=INCREMENTAL the pages freed
 * can be handed back (PRAGMA incremental_vacuum), so the file stays bounded. The mode must be
 * set before the first table exists: a database made by an older broker is converted once with a
 * VACUUM. journal_size_limit truncates the WAL after checkpoints.
 */
static int queue_setup_vacuum(struct crs_queue *q)
{
    int64_t mode = 0, tables = 0;

    if (queue_query_int(q, "PRAGMA auto_vacuum", &mode) != 0 ||
        queue_exec(q, "PRAGMA journal_size_limit = 67108864") != 0)
        return CRS_EDB;
    if (mode == 2)
        return 0;
    if (queue_query_int(q, "SELECT COUNT(*) FROM sqlite_master", &tables) != 0 ||
        queue_exec(q, "PRAGMA auto_vacuum = INCREMENTAL") != 0)
        return CRS_EDB;
    if (tables > 0) {
        crs_info("database: converting to incremental vacuum (a one-time VACUUM)");
        if (queue_exec(q, "VACUUM") != 0)
            return CRS_EDB;
    }
    return 0;
}

/*
 * WAL lets readers (an administrator's sqlite3 shell, the tests) look at the queue while the
 * broker writes; synchronous=FULL makes every COMMIT durable before it returns, which is the
 * promise behind each Ack. The busy timeout covers a reader holding a checkpoint back briefly.
 */
/* Version 3: an existing database's events get their dedup keys, in the migration's
 * transaction (a crash in between leaves version 2 and the migration runs again). */
static int queue_migrate_dedup(struct crs_queue *q, int64_t version)
{
    int64_t n = 0;

    if (version == 0 || version >= 3)
        return 0;
    if (crs_dedup_backfill(q->db, crs_now_ms(), &n) != 0)
        return CRS_EDB;
    crs_info("database: schema version %lld upgraded to %d, dedup keys of %lld stored events "
             "backfilled",
             (long long)version, QUEUE_SCHEMA_VERSION, (long long)n);
    return 0;
}

static int queue_setup(struct crs_queue *q)
{
    sqlite3_stmt *st = NULL;
    int64_t version = 0;
    int rc = CRS_EDB;
    size_t i;

    sqlite3_busy_timeout(q->db, QUEUE_BUSY_TIMEOUT);
    if (queue_setup_vacuum(q) != 0)
        goto cleanup;
    if (sqlite3_prepare_v2(q->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW) {
        crs_error("database: cannot switch to WAL mode: %s", sqlite3_errmsg(q->db));
        goto cleanup;
    }
    if (strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        crs_error("database: journal mode is %s, WAL is required",
                  (const char *)sqlite3_column_text(st, 0));
        goto cleanup;
    }
    sqlite3_finalize(st);
    st = NULL;
    if (queue_exec(q, "PRAGMA synchronous=FULL") != 0 ||
        queue_exec(q, "PRAGMA wal_autocheckpoint=0") != 0)
        goto cleanup;
    sqlite3_wal_hook(q->db, queue_wal_hook, q);
    if (queue_query_int(q, "PRAGMA user_version", &version) != 0)
        goto cleanup;
    if (version > QUEUE_SCHEMA_VERSION) {
        crs_error("database: schema version %lld is newer than this broker's (%d); refusing to "
                  "touch it",
                  (long long)version, QUEUE_SCHEMA_VERSION);
        goto cleanup;
    }
    if (queue_exec(q, "BEGIN IMMEDIATE") != 0)
        goto cleanup;
    if (queue_exec(q, queue_schema_sql) != 0 || queue_exec(q, crs_dedup_schema_sql) != 0 ||
        queue_exec(q, crs_expiry_schema_sql) != 0 || queue_migrate_dedup(q, version) != 0 ||
        queue_exec(q, QUEUE_SCHEMA_VERSION_SQL) != 0) {
        queue_exec(q, "ROLLBACK");
        goto cleanup;
    }
    if (queue_exec(q, "COMMIT") != 0)
        goto cleanup;
    for (i = 0; i < STMT_COUNT_; i++) {
        if (sqlite3_prepare_v3(q->db, queue_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->stmt[i],
                               NULL) != SQLITE_OK) {
            crs_error("database: cannot prepare \"%s\": %s", queue_stmt_sql[i],
                      sqlite3_errmsg(q->db));
            goto cleanup;
        }
    }
    if (crs_dedup_open(q->db, &q->dedup) != 0 || crs_expiry_db_new(q->db, &q->xdb) != 0)
        goto cleanup;
    rc = 0;

cleanup:
    sqlite3_finalize(st);
    return rc;
}

static void queue_close_db(struct crs_queue *q)
{
    size_t i;

    crs_expiry_db_free(q->xdb);
    q->xdb = NULL;
    for (i = 0; i < STMT_COUNT_; i++) {
        sqlite3_finalize(q->stmt[i]);
        q->stmt[i] = NULL;
    }
    crs_dedup_close(q->dedup);
    q->dedup = NULL;
    if (q->db != NULL) {
        if (sqlite3_close(q->db) != SQLITE_OK)
            crs_warn("database: close: %s", sqlite3_errmsg(q->db));
        q->db = NULL;
    }
}

int crs_queue_open(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue **out)
{
    struct crs_queue *q = NULL;
    char *path = NULL, *wal = NULL;
    char why[320];
    int64_t dbsize = 0;
    int rc, damaged;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || cfg->state_dir == NULL)
        return CRS_EINVAL;

    rc = crs_fs_mkdirs(cfg->state_dir);
    if (rc != 0) {
        crs_error("cannot create state directory %s: %s", cfg->state_dir, crs_strerror(rc));
        goto cleanup;
    }
    path = crs_path_join(cfg->state_dir, QUEUE_DB_NAME);
    q = crs_calloc(1, sizeof(*q));
    if (path == NULL || q == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    q->loop = loop;
    q->cfg = cfg;
    /* Before SQLite opens it: its recovery would drop a damaged tail without a word. */
    wal = crs_asprintf("%s-wal", path);
    if (wal == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    damaged = queue_check_wal(wal, why, sizeof(why));
    if (damaged == 1) {
        rc = queue_damaged(cfg, path, why, "those transactions are lost");
        if (rc != 0)
            goto cleanup;
        queue_keep_wal(cfg);
    }
    if (sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
        SQLITE_OK) {
        crs_error("cannot open database %s: %s", path,
                  q->db ? sqlite3_errmsg(q->db) : "out of memory");
        rc = CRS_EDB;
        goto cleanup;
    }
    if (queue_query_int(q,
                        "SELECT page_count * page_size FROM pragma_page_count, "
                        "pragma_page_size",
                        &dbsize) != 0)
        dbsize = 0;
    if (dbsize > QUEUE_CHECK_SYNC_MAX) {
        q->check_deferred = 1;
        crs_info("database %s: write-ahead log %s; quick_check of its %lld MB runs in the "
                 "background",
                 path, damaged == 1 ? "salvaged" : "consistent", (long long)(dbsize >> 20));
    } else if (queue_quick_check(q->db, why, sizeof(why)) != 0) {
        rc = queue_damaged(cfg, path, why, "running on what is readable");
        if (rc != 0)
            goto cleanup;
    } else {
        crs_info("database %s checked: write-ahead log %s, quick_check ok", path,
                 damaged == 1 ? "salvaged" : "consistent");
    }
    rc = queue_setup(q);
    if (rc != 0) {
        crs_error("cannot use database %s", path);
        goto cleanup;
    }
    crs_info("queue database %s", path);
    q->path = path;
    path = NULL;
    *out = q;
    q = NULL;

cleanup:
    if (q != NULL) {
        queue_close_db(q);
        crs_free(q);
    }
    crs_free(wal);
    crs_free(path);
    return rc;
}

/* ---- The background check ---- */

static void check_work(uv_work_t *req)
{
    struct queue_check *c = req->data;
    int rc;

    uv_mutex_lock(&c->lock);
    rc = c->interrupted ? SQLITE_INTERRUPT
                        : sqlite3_open_v2(c->q->path, &c->db, SQLITE_OPEN_READONLY, NULL);
    uv_mutex_unlock(&c->lock);
    if (rc != SQLITE_OK) {
        c->rc = rc == SQLITE_INTERRUPT ? CRS_ECANCELED : 1;
        snprintf(c->why, sizeof(c->why), "quick_check cannot open the database");
    } else {
        sqlite3_busy_timeout(c->db, QUEUE_BUSY_TIMEOUT);
        c->rc = queue_quick_check(c->db, c->why, sizeof(c->why));
        if (c->rc != 0 && sqlite3_errcode(c->db) == SQLITE_INTERRUPT)
            c->rc = CRS_ECANCELED;
    }
    uv_mutex_lock(&c->lock);
    if (c->db != NULL)
        sqlite3_close(c->db);
    c->db = NULL;
    uv_mutex_unlock(&c->lock);
}

static void queue_pump(struct crs_queue *q);

static void check_after(uv_work_t *req, int status)
{
    struct queue_check *c = req->data;
    struct crs_queue *q = c->q;
    int rc = 0;

    q->check = NULL;
    if (status != 0 || c->rc == CRS_ECANCELED || c->interrupted) {
        crs_info("database %s: quick_check interrupted by the stop", q->path);
    } else if (c->rc == 0) {
        crs_info("database %s checked: quick_check ok", q->path);
    } else {
        rc = queue_damaged(q->cfg, q->path, c->why, "running on what is readable");
    }
    if (!q->closing)
        c->cb(c->arg, rc);
    uv_mutex_destroy(&c->lock);
    crs_free(c);
    /* A close waiting for the check goes on. */
    queue_pump(q);
}

int crs_queue_check_start(struct crs_queue *q, void (*cb)(void *arg, int rc), void *arg)
{
    struct queue_check *c;

    if (q == NULL || cb == NULL)
        return CRS_EINVAL;
    if (!q->check_deferred || q->check != NULL || q->closing)
        return CRS_ENOENT;
    c = crs_calloc(1, sizeof(*c));
    if (c == NULL)
        return CRS_ENOMEM;
    if (uv_mutex_init(&c->lock) != 0) {
        crs_free(c);
        return CRS_ENOMEM;
    }
    c->q = q;
    c->cb = cb;
    c->arg = arg;
    c->req.data = c;
    if (uv_queue_work(q->loop, &c->req, check_work, check_after) != 0) {
        uv_mutex_destroy(&c->lock);
        crs_free(c);
        return CRS_EINTERNAL;
    }
    q->check_deferred = 0;
    q->check = c;
    return 0;
}

/* At close: a check still reading stops at its next page. */
static void check_interrupt(struct crs_queue *q)
{
    struct queue_check *c = q->check;

    if (c == NULL)
        return;
    uv_mutex_lock(&c->lock);
    c->interrupted = 1;
    if (c->db != NULL)
        sqlite3_interrupt(c->db);
    uv_mutex_unlock(&c->lock);
}

void crs_queue_set_hooks(struct crs_queue *q, const struct crs_queue_hooks *hooks)
{
    if (q != NULL && hooks != NULL)
        q->hooks = *hooks;
}

/* ---- The worker side: runs on the threadpool, touches only the job and the database ---- */

static int job_fail(struct queue_job *job, sqlite3 *db, const char *what)
{
    snprintf(job->reason, sizeof(job->reason), "database error (%s): %s", what, sqlite3_errmsg(db));
    job->status = CRS_EDB;
    job->full = sqlite3_errcode(db) == SQLITE_FULL;
    return CRS_EDB;
}

static int job_step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : rc;
}

/*
 * Packs the decoded form of body again, so that two encodings of one event compare equal. The
 * capture time is left out: a client that rebuilds an event to resend it keeps its id and its
 * content but may stamp a new capture time; what must match is what the sinks deliver.
 */
static int job_canonical(const uint8_t *body, size_t len, uint8_t **out, size_t *outlen)
{
    Certrelay__V1__Event *ev = NULL;
    int rc = crs_event_unpack(body, len, &ev);

    if (rc == 0) {
        ev->has_capture_time_ms = 0;
        ev->capture_time_ms = 0;
        rc = crs_event_pack(ev, out, outlen);
    }
    crs_event_free(ev);
    return rc;
}

/* The item's id is stored already: same event (0), or a different one (item->status set). */
static int job_check_same(struct crs_queue *q, struct queue_job *job, struct crs_ingest_item *item)
{
    sqlite3_stmt *st = q->stmt[STMT_EVENT_BODY];
    uint8_t *a = NULL, *b = NULL;
    size_t alen = 0, blen = 0;
    int rc, same = 0;

    sqlite3_bind_text(st, 1, item->event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const void *stored = sqlite3_column_blob(st, 0);
        size_t n = (size_t)sqlite3_column_bytes(st, 0);
        same = n == item->len && (n == 0 || memcmp(stored, item->body, n) == 0);
        if (!same && job_canonical(stored, n, &a, &alen) == 0 &&
            job_canonical(item->body, item->len, &b, &blen) == 0)
            same = alen == blen && memcmp(a, b, alen) == 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    crs_free(a);
    crs_free(b);
    if (rc != SQLITE_ROW)
        return job_fail(job, q->db, "read stored event");
    if (!same)
        item->status = CRS_EEXIST;
    return 0;
}

/*
 * The dedup index, before an item's insert: an event whose key a stored event from the other path
 * holds (the stub's late spool after a catch-up delivered the request, or a catch-up over a
 * period already seen) is marked duplicate and neither stored nor routed; its owner acks it all
 * the same.
 */
static int job_dedup_check(struct crs_queue *q, struct queue_job *job, struct crs_ingest_item *item)
{
    int rc;

    if (!item->has_key)
        return 0;
    rc = crs_dedup_seen(q->dedup, &item->key, item->event_id, item->caught_up);
    if (rc < 0)
        return job_fail(job, q->db, "read dedup index");
    item->duplicate = rc;
    return 0;
}

/* After a new event's insert: its key and the CA's watermark, in the same transaction. */
static int job_dedup_record(struct crs_queue *q, struct queue_job *job,
                            const struct crs_ingest_item *item, int64_t rowid)
{
    if (!item->has_key)
        return 0;
    if (crs_dedup_record(q->dedup, &item->key, item->caught_up, item->key_when_ms, rowid,
                         job->now_ms) != 0)
        return job_fail(job, q->db, "record dedup key");
    return 0;
}

static int job_insert_item(struct crs_queue *q, struct queue_job *job, struct crs_ingest_item *item)
{
    sqlite3_stmt *ins = q->stmt[STMT_INSERT_EVENT];
    sqlite3_stmt *del = q->stmt[STMT_INSERT_DELIVERY];
    sqlite3_int64 rowid;
    size_t i;

    if (job_dedup_check(q, job, item) != 0)
        return CRS_EDB;
    if (item->duplicate)
        return 0;

    sqlite3_bind_text(ins, 1, item->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 2, item->kind);
    sqlite3_bind_int64(ins, 3, item->received_ms);
    sqlite3_bind_blob64(ins, 4, item->body, item->len, SQLITE_STATIC);
    if (job_step_done(ins) != 0) {
        sqlite3_clear_bindings(ins);
        return job_fail(job, q->db, "insert event");
    }
    sqlite3_clear_bindings(ins);
    /* An event already in the table (a resend after a lost Ack, or a re-spooled copy) keeps its
     * original deliveries; acknowledging it again is correct because it is durable. But the same
     * id on different content is another event that would be silently lost: refuse it. */
    if (sqlite3_changes(q->db) == 0)
        return job_check_same(q, job, item);
    rowid = sqlite3_last_insert_rowid(q->db);
    if (job_dedup_record(q, job, item, rowid) != 0)
        return CRS_EDB;
    for (i = 0; i < item->nroutes; i++) {
        sqlite3_bind_int64(del, 1, rowid);
        sqlite3_bind_text(del, 2, item->cfg->sinks[item->routes[i]].name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(del, 3, job->now_ms);
        if (job_step_done(del) != 0) {
            sqlite3_clear_bindings(del);
            return job_fail(job, q->db, "insert delivery");
        }
    }
    sqlite3_clear_bindings(del);
    /* Expiry schedules change with the event, in its transaction (expiry.c). */
    if (crs_expiry_db_ingest(q->xdb, job->cfg, item->kind, item->body, item->len, job->now_ms) != 0)
        return job_fail(job, q->db, "expiry schedule");
    return 0;
}

/*
 * Appends the attempt u finished to the delivery's history, inside the job's transaction. Rows
 * numbered u->attempts and above are left over from before a retry or replay restarted the
 * count: they go first, which keeps the history at most max_attempts rows per delivery.
 */
static int job_record_attempt(struct crs_queue *q, struct queue_job *job,
                              const struct crs_delivery_update *u)
{
    sqlite3_stmt *trim = q->stmt[STMT_TRIM_ATTEMPTS];
    sqlite3_stmt *ins = q->stmt[STMT_INSERT_ATTEMPT];
    int rc;

    sqlite3_bind_int64(trim, 1, u->event_row);
    sqlite3_bind_text(trim, 2, u->sink_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(trim, 3, u->attempts);
    rc = job_step_done(trim);
    sqlite3_clear_bindings(trim);
    if (rc != 0)
        return job_fail(job, q->db, "trim attempts");
    sqlite3_bind_int64(ins, 1, u->event_row);
    sqlite3_bind_text(ins, 2, u->sink_name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 3, u->attempts);
    sqlite3_bind_int64(ins, 4, u->started_ms);
    sqlite3_bind_int64(ins, 5, u->updated_ms);
    sqlite3_bind_int(ins, 6, u->state);
    sqlite3_bind_int(ins, 7, u->last_status);
    if (u->last_error[0] != '\0')
        sqlite3_bind_text(ins, 8, u->last_error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(ins, 8);
    rc = job_step_done(ins);
    sqlite3_clear_bindings(ins);
    return rc == 0 ? 0 : job_fail(job, q->db, "record attempt");
}

static int job_apply_update(struct crs_queue *q, struct queue_job *job,
                            const struct crs_delivery_update *u)
{
    sqlite3_stmt *st = q->stmt[STMT_UPDATE_DELIVERY];
    int rc;

    sqlite3_bind_int(st, 1, u->state);
    sqlite3_bind_int64(st, 2, u->attempts);
    sqlite3_bind_int64(st, 3, u->next_attempt_ms);
    if (u->last_error[0] != '\0')
        sqlite3_bind_text(st, 4, u->last_error, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 4);
    sqlite3_bind_int(st, 5, u->last_status);
    sqlite3_bind_int64(st, 6, u->updated_ms);
    sqlite3_bind_int64(st, 7, u->event_row);
    sqlite3_bind_text(st, 8, u->sink_name, -1, SQLITE_STATIC);
    rc = job_step_done(st);
    sqlite3_clear_bindings(st);
    if (rc != 0)
        return job_fail(job, q->db, "update delivery");
    return job_record_attempt(q, job, u);
}

static void job_write(struct crs_queue *q, struct queue_job *job)
{
    struct crs_ingest_item *item;
    const struct crs_delivery_update *u;
    int rc = 0;

    if (job_step_done(q->stmt[STMT_BEGIN]) != 0) {
        job_fail(job, q->db, "begin");
        return;
    }
    for (item = job->items; item != NULL && rc == 0; item = item->next)
        rc = job_insert_item(q, job, item);
    for (u = job->updates; u != NULL && rc == 0; u = u->next)
        rc = job_apply_update(q, job, u);
    if (rc == 0 && job_step_done(q->stmt[STMT_COMMIT]) != 0)
        rc = job_fail(job, q->db, "commit");
    /* A failed COMMIT (SQLITE_FULL, SQLITE_IOERR) may leave the transaction open. */
    if (rc != 0 && !sqlite3_get_autocommit(q->db))
        job_step_done(q->stmt[STMT_ROLLBACK]);
}

static int64_t *fetch_bsearch(int64_t key, int64_t *v, size_t n)
{
    size_t lo = 0, hi = n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] == key)
            return &v[mid];
        if (v[mid] < key)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Rows the fresh lane took in this fetch, which the oldest-first pass must not take again. */
static int fetch_taken(int64_t row, const int64_t *taken, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (taken[i] == row)
            return 1;
    }
    return 0;
}

/*
 * One pass over a sink's due rows in the statement's order: appends rows to the fetch until
 * fs->want rows are taken (or, past fs->need, the bodies reach fs->budget bytes), skipping the
 * rows the dispatcher holds and those already taken. Returns 0, CRS_ENOMEM or CRS_EDB.
 */
static int fetch_pass(sqlite3_stmt *st, struct crs_fetch *f, size_t s, uint32_t limit,
                      int64_t *taken, size_t *ntaken, int record, struct crs_due ***tail,
                      uint32_t *got, size_t *bytes)
{
    struct crs_fetch_sink *fs = &f->sinks[s];
    int rc = SQLITE_DONE, status = 0;

    sqlite3_bind_int64(st, 1, f->now_ms);
    sqlite3_bind_text(st, 2, fs->name, -1, SQLITE_STATIC);
    while (*got < limit && (*got < fs->need || *bytes < fs->budget) &&
           (rc = sqlite3_step(st)) == SQLITE_ROW) {
        int64_t row = sqlite3_column_int64(st, 0);
        const void *blob;
        struct crs_due *d;
        int n;

        if (fetch_bsearch(row, fs->exclude, fs->nexclude) != NULL ||
            fetch_taken(row, taken, *ntaken))
            continue;
        blob = sqlite3_column_blob(st, 3);
        n = sqlite3_column_bytes(st, 3);
        d = crs_calloc(1, sizeof(*d));
        if (d == NULL || (n > 0 && (d->body = crs_malloc((size_t)n)) == NULL)) {
            crs_free(d);
            status = CRS_ENOMEM;
            break;
        }
        d->sink = (unsigned)s;
        d->event_row = row;
        d->attempts = (uint32_t)sqlite3_column_int64(st, 1);
        d->received_ms = sqlite3_column_int64(st, 2);
        if (n > 0)
            memcpy(d->body, blob, (size_t)n);
        d->len = (size_t)n;
        **tail = d;
        *tail = &d->next;
        (*got)++;
        *bytes += (size_t)n;
        if (record)
            taken[(*ntaken)++] = row;
    }
    if (status == 0 && rc != SQLITE_ROW && rc != SQLITE_DONE)
        status = CRS_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return status;
}

/*
 * Reads due rows per sink, skipping the ones the dispatcher already holds in memory, in two
 * lanes: up to half of the rows latest due first, the rest oldest due first. With a backlog of a
 * million rows (a receiver that was down for a day), oldest-first alone would make an event
 * committed now wait for the whole backlog; the fresh lane delivers it within a fetch or two while
 * the backlog still drains in order at half the rate or more. Retries that come due join either
 * lane by their due time. What is read is bounded: fs->want rows, and past fs->need rows (the free
 * slots) fs->budget bytes, so a backlog of CRLs is not read ahead by the hundred megabytes.
 */
static void job_fetch(struct crs_queue *q, struct crs_fetch *f)
{
    struct crs_due **tail = &f->due;
    sqlite3_stmt *st;
    size_t s;
    int rc;

    f->next_due_ms = -1;
    for (s = 0; s < f->nsinks && f->status == 0; s++) {
        struct crs_fetch_sink *fs = &f->sinks[s];
        uint32_t got = 0, fresh = fs->want / 2;
        size_t bytes = 0, ntaken = 0;
        int64_t *taken = NULL;

        if (fs->want == 0)
            continue;
        if (fresh > 0) {
            taken = crs_calloc(fresh, sizeof(*taken));
            if (taken == NULL) {
                f->status = CRS_ENOMEM;
                break;
            }
            f->status = fetch_pass(q->stmt[STMT_FETCH_FRESH], f, s, fresh, taken, &ntaken, 1, &tail,
                                   &got, &bytes);
        }
        /* The oldest-first pass skips what the fresh lane took. */
        if (f->status == 0)
            f->status = fetch_pass(q->stmt[STMT_FETCH_DUE], f, s, fs->want, taken, &ntaken, 0,
                                   &tail, &got, &bytes);
        crs_free(taken);
    }
    if (f->status != 0)
        return;
    st = q->stmt[STMT_NEXT_DUE];
    sqlite3_bind_int64(st, 1, f->now_ms);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
        f->next_due_ms = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_ROW)
        f->status = CRS_EDB;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
}

static void job_work(uv_work_t *req)
{
    struct crs_queue *q = req->data;
    struct queue_job *job = &q->job;

    struct crs_queue_op *op;

    if (job->items != NULL || job->updates != NULL)
        job_write(q, job);
    for (op = job->ops; op != NULL; op = op->next)
        op->status = op->run(op, q->db, job->cfg);
    if (job->fetch != NULL)
        job_fetch(q, job->fetch);
    if (job->checkpoint || q->wal_frames >= QUEUE_CKPT_FORCE) {
        int log = 0, done = 0;
        /* PASSIVE never waits for readers; what it cannot copy now is copied next time. */
        if (sqlite3_wal_checkpoint_v2(q->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done) ==
                SQLITE_OK &&
            log == done)
            q->wal_frames = 0;
    }
}

/* ---- The loop side ---- */

/*
 * Tells every event of a finished group how it went: all of them fail together when the
 * transaction did not commit, so none is acked that is not on disk. Then the owners write the
 * answers they buffered (one write per connection for the whole group).
 */
static void job_answer_items(struct crs_queue *q, struct queue_job *job)
{
    struct crs_ingest_item *item = job->items;

    while (item != NULL) {
        struct crs_ingest_item *next = item->next;
        item->next = NULL;
        if (job->status != 0) {
            item->done(item, job->status, job->reason);
        } else if (item->status != 0) {
            crs_warn("event %s refused: its id is already stored with different content",
                     item->event_id);
            item->done(item, item->status, CRS_QUEUE_ID_REUSED);
        } else if (item->duplicate) {
            crs_info("event %s (%s of request %lld) is already stored under another id (live or "
                     "caught up): acknowledged, not delivered again",
                     item->event_id, crs_event_name(item->kind) ? crs_event_name(item->kind) : "?",
                     (long long)item->key.request_id);
            item->done(item, 0, NULL);
        } else {
            item->done(item, 0, NULL);
        }
        item = next;
    }
    job->items = NULL;
    if (q->flush != NULL)
        q->flush(q->flush_arg);
}

static void job_after(uv_work_t *req, int status)
{
    struct crs_queue *q = req->data;
    struct queue_job job = q->job;

    memset(&q->job, 0, sizeof(q->job));
    if (status != 0 && job.status == 0) {
        /* Never seen in practice: libuv cancels only work that has not started, and we never
         * cancel. Treat it as a failed commit so that nothing is acked by mistake. */
        job.status = CRS_EINTERNAL;
        snprintf(job.reason, sizeof(job.reason), "database job canceled");
    }
    if (job.status != 0) {
        /* A database that keeps failing (a full disk for hours) is reported once a minute. */
        int64_t now = crs_now_ms();
        if (q->fail_logged_ms == 0 || now - q->fail_logged_ms >= QUEUE_FAIL_LOG_MS) {
            const char *more =
                q->fail_quiet > 0 ? " (and more failures since the last report)" : "";
            if (job.full) {
                const char *ins[1] = {job.reason};
                crs_log_event(CRS_LOG_ERROR, CRS_MSGID_DISK_FULL, ins, 1,
                              "group commit of %zu events and %s delivery updates failed: %s "
                              "(disk full)%s",
                              job.nitems, job.updates ? "some" : "no", job.reason, more);
            } else {
                crs_error("group commit of %zu events and %s delivery updates failed: %s%s",
                          job.nitems, job.updates ? "some" : "no", job.reason, more);
            }
            q->fail_logged_ms = now;
            q->fail_quiet = 0;
        } else {
            q->fail_quiet++;
        }
    } else if (q->fail_logged_ms != 0) {
        crs_info("database writes succeed again (%u failed jobs not reported one by one)",
                 q->fail_quiet);
        q->fail_logged_ms = 0;
        q->fail_quiet = 0;
    } else if (job.nitems > 0) {
        crs_debug("committed %zu events", job.nitems);
    }
    if (job.status == 0 && job.nitems > 0)
        crs_metrics_commit((double)(uv_hrtime() - job.start_ns) / 1e9);
    {
        /* Taken in any case, so a failed job's hint does not linger into the next one. */
        int64_t due = crs_expiry_db_take_due(q->xdb);
        if (job.status == 0 && due != INT64_MAX && q->expiry_due != NULL)
            q->expiry_due(q->expiry_arg, due);
    }

    q->in_after = 1;
    job_answer_items(q, &job);
    if (job.updates != NULL) {
        if (q->hooks.updates_done != NULL)
            q->hooks.updates_done(q->hooks.arg, job.updates, job.status);
    }
    while (job.ops != NULL) {
        struct crs_queue_op *op = job.ops;
        job.ops = op->next;
        op->next = NULL;
        op->done(op, status != 0 ? CRS_ECANCELED : op->status);
    }
    if (job.fetch != NULL) {
        if (job.fetch->status != 0)
            crs_error("database: fetching due deliveries failed: %s",
                      crs_strerror(job.fetch->status));
        if (q->hooks.fetch_done != NULL)
            q->hooks.fetch_done(q->hooks.arg, job.fetch);
        else
            crs_fetch_free(job.fetch);
    }
    q->in_after = 0;
    q->busy = 0;
    queue_pump(q);
}

/*
 * Starts the next job if none is in flight: the first event after a quiet spell is committed at
 * once, and everything arriving while that commit runs waits for the next one. That is the group
 * commit, with no timer and no added latency.
 */
static void queue_pump(struct crs_queue *q)
{
    struct queue_job *job = &q->job;
    struct crs_fetch *fetch = NULL;
    struct crs_ingest_item **tail;
    size_t max;
    int rc;

    if (q->busy || q->in_after || q->hold > 0 || q->closed)
        return;
    if (q->hooks.fetch_prepare != NULL)
        fetch = q->hooks.fetch_prepare(q->hooks.arg, q->in_head != NULL);
    if (q->in_head == NULL && q->up_head == NULL && q->op_head == NULL && fetch == NULL &&
        (q->closing || q->wal_frames < QUEUE_CKPT_IDLE)) {
        if (q->closing && q->check == NULL) {
            q->closed = 1;
            queue_close_db(q);
            if (q->close_cb != NULL)
                q->close_cb(q->close_arg);
        }
        return;
    }

    memset(job, 0, sizeof(*job));
    job->now_ms = crs_now_ms();
    max = q->cfg->commit_batch_max ? q->cfg->commit_batch_max : 1024;
    job->items = q->in_head;
    tail = &job->items;
    while (*tail != NULL && job->nitems < max) {
        tail = &(*tail)->next;
        job->nitems++;
    }
    q->in_head = *tail;
    *tail = NULL;
    if (q->in_head == NULL)
        q->in_tail = NULL;
    q->in_count -= job->nitems;
    job->updates = q->up_head;
    q->up_head = q->up_tail = NULL;
    job->fetch = fetch;
    job->cfg = q->cfg;
    job->start_ns = uv_hrtime();
    job->ops = q->op_head;
    q->op_head = q->op_tail = NULL;
    job->checkpoint = job->nitems == 0 && job->updates == NULL && job->ops == NULL &&
                      q->wal_frames >= QUEUE_CKPT_IDLE;
    job->req.data = q;

    q->busy = 1;
    rc = uv_queue_work(q->loop, &job->req, job_work, job_after);
    if (rc != 0) {
        /* uv_queue_work fails only for a NULL callback; report it like a failed commit. */
        job->status = CRS_EINTERNAL;
        snprintf(job->reason, sizeof(job->reason), "cannot queue database job: %s",
                 uv_strerror(rc));
        job_after(&job->req, 0);
    }
}

void crs_queue_ingest(struct crs_queue *q, struct crs_ingest_item *item)
{
    if (q == NULL || item == NULL)
        return;
    item->next = NULL;
    if (q->closed) {
        item->done(item, CRS_ECANCELED, "broker is stopping");
        if (q->flush != NULL)
            q->flush(q->flush_arg);
        return;
    }
    if (q->in_tail != NULL)
        q->in_tail->next = item;
    else
        q->in_head = item;
    q->in_tail = item;
    q->in_count++;
    queue_pump(q);
}

void crs_queue_set_ingest_flush(struct crs_queue *q, crs_ingest_flush_cb flush, void *arg)
{
    if (q == NULL)
        return;
    q->flush = flush;
    q->flush_arg = arg;
}

void crs_queue_hold(struct crs_queue *q)
{
    if (q != NULL)
        q->hold++;
}

void crs_queue_release(struct crs_queue *q)
{
    if (q == NULL || q->hold == 0)
        return;
    if (--q->hold == 0)
        queue_pump(q);
}

void crs_queue_update(struct crs_queue *q, struct crs_delivery_update *u)
{
    if (q == NULL || u == NULL)
        return;
    u->next = NULL;
    if (q->closed) {
        if (q->hooks.updates_done != NULL)
            q->hooks.updates_done(q->hooks.arg, u, CRS_ECANCELED);
        return;
    }
    if (q->up_tail != NULL)
        q->up_tail->next = u;
    else
        q->up_head = u;
    q->up_tail = u;
    queue_pump(q);
}

void crs_queue_set_config(struct crs_queue *q, const struct crs_config *cfg)
{
    if (q != NULL && cfg != NULL)
        q->cfg = cfg;
}

void crs_queue_submit(struct crs_queue *q, struct crs_queue_op *op)
{
    if (q == NULL || op == NULL)
        return;
    op->next = NULL;
    if (q->closed) {
        op->done(op, CRS_ECANCELED);
        return;
    }
    if (q->op_tail != NULL)
        q->op_tail->next = op;
    else
        q->op_head = op;
    q->op_tail = op;
    queue_pump(q);
}

struct crs_expiry_db *crs_queue_expiry_db(struct crs_queue *q)
{
    return q != NULL ? q->xdb : NULL;
}

void crs_queue_set_expiry_hook(struct crs_queue *q, void (*due)(void *arg, int64_t due_ms),
                               void *arg)
{
    if (q == NULL)
        return;
    q->expiry_due = due;
    q->expiry_arg = arg;
}

void crs_queue_kick(struct crs_queue *q)
{
    if (q != NULL)
        queue_pump(q);
}

void crs_queue_close(struct crs_queue *q, void (*cb)(void *arg), void *arg)
{
    if (q == NULL || q->closing)
        return;
    q->closing = 1;
    q->close_cb = cb;
    q->close_arg = arg;
    check_interrupt(q);
    queue_pump(q);
}

void crs_queue_free(struct crs_queue *q)
{
    if (q == NULL)
        return;
    /* Only a queue that never reached close() can still hold work: fail it, nothing is acked. */
    while (q->in_head != NULL) {
        struct crs_ingest_item *item = q->in_head;
        q->in_head = item->next;
        item->next = NULL;
        item->done(item, CRS_ECANCELED, "broker is stopping");
    }
    if (q->flush != NULL)
        q->flush(q->flush_arg);
    while (q->up_head != NULL) {
        struct crs_delivery_update *u = q->up_head;
        q->up_head = u->next;
        u->next = NULL;
        if (q->hooks.updates_done != NULL)
            q->hooks.updates_done(q->hooks.arg, u, CRS_ECANCELED);
    }
    while (q->op_head != NULL) {
        struct crs_queue_op *op = q->op_head;
        q->op_head = op->next;
        op->next = NULL;
        op->done(op, CRS_ECANCELED);
    }
    queue_close_db(q);
    crs_free(q->path);
    crs_free(q);
}
