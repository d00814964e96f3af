/*
 * The admin queries on the queue database (queue.h, "Operations outside the delivery path").
 * They run on the worker inside the queue's one lane (crs_queue_submit), so they see committed
 * state and never race the group commit; writes (retry, replay) are one transaction each.
 *
 * Request ids and serial numbers live inside the stored event (the packed protobuf), not in
 * columns, so `events --request-id/--serial` decodes the candidate rows; the other filters are
 * SQL. Every result is bounded: events returns at most CRS_ADMIN_EVENTS_MAX rows.
 */
#include "queue.h"
#include "route.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/base64.h"
#include "certrelay/catchup.h"
#include "certrelay/text.h"
#include "queue_dedup.h"
#include "reconcile.h"
#include "render/json.h"
#include "sinks/sink.h"

#define CRS_ADMIN_EVENTS_DEFAULT 100
#define CRS_ADMIN_EVENTS_MAX     10000
#define CRS_ADMIN_DAY_MS         (24 * 3600 * 1000LL)

static int qa_fail(sqlite3 *db, const char *what, char *err, size_t errlen)
{
    snprintf(err, errlen, "database error (%s): %s", what, sqlite3_errmsg(db));
    return CRS_EDB;
}

/* A JSON string from stored text, which came from receivers: invalid UTF-8 is repaired. */
static json_t *qa_text(const unsigned char *s)
{
    char *clean;
    json_t *v;

    if (s == NULL)
        return json_null();
    clean = crs_utf8_sanitize((const char *)s, strlen((const char *)s));
    if (clean == NULL)
        return NULL;
    v = json_string(clean);
    crs_free(clean);
    return v;
}

static const char *qa_state_name(int state)
{
    switch (state) {
    case CRS_DSTATE_PENDING:
        return "pending";
    case CRS_DSTATE_DELIVERED:
        return "delivered";
    case CRS_DSTATE_DEAD:
        return "dead";
    default:
        return "unknown";
    }
}

static int qa_state_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "pending") == 0)
        return CRS_DSTATE_PENDING;
    if (strcmp(name, "delivered") == 0)
        return CRS_DSTATE_DELIVERED;
    if (strcmp(name, "dead") == 0)
        return CRS_DSTATE_DEAD;
    return -2;
}

static const struct crs_sink_config *qa_sink(const struct crs_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; name != NULL && i < cfg->nsinks; i++) {
        if (strcmp(cfg->sinks[i].name, name) == 0)
            return &cfg->sinks[i];
    }
    return NULL;
}

/* Runs a one-integer query with up to two bound values (text s, integer n). */
static int qa_int(sqlite3 *db, const char *sql, const char *s, int64_t n, int64_t *out)
{
    sqlite3_stmt *st = NULL;
    int rc;

    *out = 0;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    if (s != NULL)
        sqlite3_bind_text(st, 1, s, -1, SQLITE_STATIC);
    if (sqlite3_bind_parameter_count(st) >= 2)
        sqlite3_bind_int64(st, 2, n);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *out = sqlite3_column_type(st, 0) == SQLITE_NULL ? -1 : sqlite3_column_int64(st, 0);
        rc = 0;
    } else {
        rc = CRS_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

/* ---- status ---- */

static int qa_sink_status(sqlite3 *db, const char *name, int64_t now_ms, json_t *row)
{
    sqlite3_stmt *st = NULL;
    int64_t pending, dead, delivered, oldest;
    int rc;

    if (qa_int(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ?1 AND state = 0", name, 0,
               &pending) != 0 ||
        qa_int(db, "SELECT COUNT(*) FROM deliveries WHERE sink = ?1 AND state = 2", name, 0,
               &dead) != 0 ||
        /* A delivered row's next_attempt_ms is the time of its delivery (dispatch.c), which
         * the (sink, state, next_attempt_ms) index answers without a scan. */
        qa_int(db,
               "SELECT COUNT(*) FROM deliveries WHERE sink = ?1 AND state = 1 AND "
               "next_attempt_ms >= ?2",
               name, now_ms - CRS_ADMIN_DAY_MS, &delivered) != 0 ||
        qa_int(db,
               "SELECT MIN(e.received_ms) FROM deliveries d JOIN events e ON "
               "e.rowid = d.event_rowid WHERE d.sink = ?1 AND d.state = 0",
               name, 0, &oldest) != 0)
        return CRS_EDB;
    rc = crs_json_put(row, "pending", json_integer(pending));
    if (rc == 0)
        rc = crs_json_put(row, "dead", json_integer(dead));
    if (rc == 0)
        rc = crs_json_put(row, "delivered_24h", json_integer(delivered));
    if (rc == 0)
        rc = crs_json_put(row, "oldest_pending_age_ms",
                          oldest < 0 ? json_null() : json_integer(now_ms - oldest));
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT last_error, updated_ms, last_status FROM deliveries WHERE "
                           "sink = ?1 AND last_error IS NOT NULL ORDER BY updated_ms DESC LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        rc = crs_json_put(row, "last_error", qa_text(sqlite3_column_text(st, 0)));
        if (rc == 0)
            rc = crs_json_put(row, "last_error_ms", json_integer(sqlite3_column_int64(st, 1)));
        if (rc == 0)
            rc = crs_json_put(row, "last_status", json_integer(sqlite3_column_int64(st, 2)));
    } else if (rc == SQLITE_DONE) {
        rc = crs_json_put(row, "last_error", json_null());
    } else {
        rc = CRS_EDB;
    }
    sqlite3_finalize(st);
    return rc;
}

int crs_queue_admin_status(sqlite3 *db, const struct crs_config *cfg, int64_t now_ms,
                           json_t **result, char *err, size_t errlen)
{
    json_t *res = NULL, *sinks, *dbj;
    int64_t pages, page_size, free_pages, events, deliveries;
    size_t i;
    int rc = CRS_ENOMEM;

    *result = NULL;
    res = json_object();
    sinks = res ? crs_json_child(res, "sinks", json_array()) : NULL;
    if (sinks == NULL)
        goto cleanup;
    for (i = 0; i < cfg->nsinks; i++) {
        json_t *row = crs_json_child(sinks, NULL, json_object());
        if (row == NULL || crs_json_put(row, "name", json_string(cfg->sinks[i].name)) != 0 ||
            crs_json_put(row, "type", json_string(cfg->sinks[i].type->name)) != 0)
            goto cleanup;
        rc = qa_sink_status(db, cfg->sinks[i].name, now_ms, row);
        if (rc != 0) {
            if (rc == CRS_EDB)
                qa_fail(db, "sink status", err, errlen);
            goto cleanup;
        }
    }
    rc = CRS_EDB;
    if (qa_int(db, "PRAGMA page_count", NULL, 0, &pages) != 0 ||
        qa_int(db, "PRAGMA page_size", NULL, 0, &page_size) != 0 ||
        qa_int(db, "PRAGMA freelist_count", NULL, 0, &free_pages) != 0 ||
        qa_int(db, "SELECT COUNT(*) FROM events", NULL, 0, &events) != 0 ||
        qa_int(db, "SELECT COUNT(*) FROM deliveries", NULL, 0, &deliveries) != 0) {
        qa_fail(db, "database size", err, errlen);
        goto cleanup;
    }
    rc = CRS_ENOMEM;
    dbj = crs_json_child(res, "database", json_object());
    if (dbj == NULL || crs_json_put(dbj, "bytes", json_integer(pages * page_size)) != 0 ||
        crs_json_put(dbj, "free_bytes", json_integer(free_pages * page_size)) != 0 ||
        crs_json_put(dbj, "events", json_integer(events)) != 0 ||
        crs_json_put(dbj, "deliveries", json_integer(deliveries)) != 0)
        goto cleanup;
    *result = res;
    res = NULL;
    rc = 0;

cleanup:
    if (rc == CRS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    json_decref(res);
    return rc;
}

/* ---- events and show ---- */

/*
 * Appends the attempts history of one delivery (event_row, sink) to arr, oldest first: attempt,
 * started_ms, finished_ms, outcome ("retry": failed and rescheduled, "delivered", "dead"), status
 * (HTTP/SMTP, 0 if none) and error (null when delivered).
 */
static int qa_attempts(sqlite3 *db, int64_t event_row, const unsigned char *sink, json_t *arr)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db,
                           "SELECT attempt, started_ms, finished_ms, outcome, status, error "
                           "FROM attempts WHERE event_rowid = ?1 AND sink = ?2 ORDER BY attempt",
                           -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    sqlite3_bind_int64(st, 1, event_row);
    sqlite3_bind_text(st, 2, (const char *)sink, -1, SQLITE_TRANSIENT);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int outcome = sqlite3_column_int(st, 3);
        json_t *a = crs_json_child(arr, NULL, json_object());

        if (a == NULL ||
            crs_json_put(a, "attempt", json_integer(sqlite3_column_int64(st, 0))) != 0 ||
            crs_json_put(a, "started_ms", json_integer(sqlite3_column_int64(st, 1))) != 0 ||
            crs_json_put(a, "finished_ms", json_integer(sqlite3_column_int64(st, 2))) != 0 ||
            crs_json_put(
                a, "outcome",
                json_string(outcome == CRS_DSTATE_PENDING ? "retry" : qa_state_name(outcome))) !=
                0 ||
            crs_json_put(a, "status", json_integer(sqlite3_column_int64(st, 4))) != 0 ||
            crs_json_put(a, "error", qa_text(sqlite3_column_text(st, 5))) != 0) {
            sqlite3_finalize(st);
            return CRS_ENOMEM;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : CRS_EDB;
}

/* Appends one delivery row per sink of event_row to arr (full: attempts, errors and the
 * attempts history too). */
static int qa_deliveries(sqlite3 *db, int64_t event_row, int full, json_t *arr)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db,
                           "SELECT sink, state, attempts, last_status, last_error, updated_ms, "
                           "next_attempt_ms FROM deliveries WHERE event_rowid = ?1 ORDER BY sink",
                           -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    sqlite3_bind_int64(st, 1, event_row);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        int state = sqlite3_column_int(st, 1);
        json_t *d = crs_json_child(arr, NULL, json_object()), *hist;

        if (d == NULL || crs_json_put(d, "sink", qa_text(sqlite3_column_text(st, 0))) != 0 ||
            crs_json_put(d, "state", json_string(qa_state_name(state))) != 0 ||
            crs_json_put(d, "attempts", json_integer(sqlite3_column_int64(st, 2))) != 0)
            goto nomem;
        if (!full)
            continue;
        if (crs_json_put(d, "last_status", json_integer(sqlite3_column_int64(st, 3))) != 0 ||
            crs_json_put(d, "last_error", qa_text(sqlite3_column_text(st, 4))) != 0 ||
            crs_json_put(d, "updated_ms", json_integer(sqlite3_column_int64(st, 5))) != 0 ||
            crs_json_put(d, "next_attempt_ms",
                         state == CRS_DSTATE_PENDING ? json_integer(sqlite3_column_int64(st, 6))
                                                     : json_null()) != 0)
            goto nomem;
        hist = crs_json_child(d, "history", json_array());
        if (hist == NULL)
            goto nomem;
        rc = qa_attempts(db, event_row, sqlite3_column_text(st, 0), hist);
        if (rc != 0) {
            sqlite3_finalize(st);
            return rc;
        }
    }
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : CRS_EDB;

nomem:
    sqlite3_finalize(st);
    return CRS_ENOMEM;
}

/* The summary of one event for `events`: id, kind, times, request id and serial. */
static int qa_event_summary(json_t *row, const char *event_id, uint32_t kind, int64_t received_ms,
                            const Certrelay__V1__Event *ev)
{
    char serial[130];

    crs_event_serial_hex(ev, serial, sizeof(serial));
    if (crs_json_put(row, "event_id", json_string(event_id)) != 0 ||
        crs_json_put(row, "kind", json_string(crs_event_name(kind))) != 0 ||
        crs_json_put(row, "received_ms", json_integer(received_ms)) != 0 ||
        crs_json_put(row, "request_id",
                     ev->request != NULL && ev->request->has_request_id
                         ? json_integer(ev->request->request_id)
                         : json_null()) != 0 ||
        crs_json_put(row, "serial", serial[0] ? json_string(serial) : json_null()) != 0)
        return CRS_ENOMEM;
    return 0;
}

/* Whether ev passes the --request-id and --serial filters (decoded-body filters). */
static int qa_event_wanted(const Certrelay__V1__Event *ev, json_t *params)
{
    json_t *rid = json_object_get(params, "request_id");
    const char *want_serial = json_string_value(json_object_get(params, "serial"));

    if (json_is_integer(rid) && (ev->request == NULL || !ev->request->has_request_id ||
                                 ev->request->request_id != json_integer_value(rid)))
        return 0;
    if (want_serial != NULL) {
        char serial[130];
        crs_event_serial_hex(ev, serial, sizeof(serial));
        if (crs_ascii_casecmp(serial, want_serial) != 0)
            return 0;
    }
    return 1;
}

int crs_queue_admin_events(sqlite3 *db, const struct crs_config *cfg, json_t *params,
                           json_t **result, char *err, size_t errlen)
{
    const char *sink = json_string_value(json_object_get(params, "sink"));
    const char *state_name = json_string_value(json_object_get(params, "state"));
    const char *kind_name = json_string_value(json_object_get(params, "kind"));
    json_t *since = json_object_get(params, "since_ms");
    json_t *limit_j = json_object_get(params, "limit");
    int64_t limit = CRS_ADMIN_EVENTS_DEFAULT;
    uint32_t kind = 0;
    int state;
    json_t *res = NULL, *arr;
    sqlite3_stmt *st = NULL;
    char sql[640];
    int rc = CRS_EINVAL, src;
    int64_t n = 0;

    (void)cfg;
    *result = NULL;
    state = qa_state_parse(state_name);
    if (state == -2) {
        snprintf(err, errlen, "unknown state '%s' (pending, dead or delivered)", state_name);
        goto cleanup;
    }
    if (kind_name != NULL && crs_event_from_name(kind_name, &kind) != 0) {
        snprintf(err, errlen, "unknown event kind '%s'", kind_name);
        goto cleanup;
    }
    if (json_is_integer(limit_j))
        limit = json_integer_value(limit_j);
    if (limit < 1 || limit > CRS_ADMIN_EVENTS_MAX) {
        snprintf(err, errlen, "limit must be between 1 and %d", CRS_ADMIN_EVENTS_MAX);
        goto cleanup;
    }
    /* Newest first. The delivery conditions go through EXISTS so an event is listed once. */
    snprintf(sql, sizeof(sql),
             "SELECT e.rowid, e.event_id, e.kind, e.received_ms, e.body FROM events e WHERE "
             "(?1 IS NULL OR e.received_ms >= ?1) AND (?2 = 0 OR (e.kind & ?2) != 0)%s "
             "ORDER BY e.rowid DESC",
             sink != NULL || state >= 0
                 ? " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.event_rowid = e.rowid AND "
                   "(?3 IS NULL OR d.sink = ?3) AND (?4 < 0 OR d.state = ?4))"
                 : "");
    rc = CRS_EDB;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK) {
        qa_fail(db, "events", err, errlen);
        goto cleanup;
    }
    if (json_is_integer(since))
        sqlite3_bind_int64(st, 1, json_integer_value(since));
    sqlite3_bind_int64(st, 2, kind);
    if (sink != NULL || state >= 0) {
        if (sink != NULL)
            sqlite3_bind_text(st, 3, sink, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 4, state);
    }
    rc = CRS_ENOMEM;
    res = json_object();
    arr = res ? crs_json_child(res, "events", json_array()) : NULL;
    if (arr == NULL)
        goto cleanup;
    while (n < limit && (src = sqlite3_step(st)) == SQLITE_ROW) {
        Certrelay__V1__Event *ev = NULL;
        json_t *row, *dels;

        if (crs_event_unpack(sqlite3_column_blob(st, 4), (size_t)sqlite3_column_bytes(st, 4),
                             &ev) != 0)
            continue; /* validated when received; skip rather than fail the listing */
        if (!qa_event_wanted(ev, params)) {
            crs_event_free(ev);
            continue;
        }
        row = crs_json_child(arr, NULL, json_object());
        rc = row ? qa_event_summary(row, (const char *)sqlite3_column_text(st, 1),
                                    (uint32_t)sqlite3_column_int64(st, 2),
                                    sqlite3_column_int64(st, 3), ev)
                 : CRS_ENOMEM;
        crs_event_free(ev);
        dels = rc == 0 ? crs_json_child(row, "deliveries", json_array()) : NULL;
        if (dels == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
        rc = qa_deliveries(db, sqlite3_column_int64(st, 0), 0, dels);
        if (rc != 0)
            goto cleanup;
        n++;
    }
    if (n < limit && src != SQLITE_DONE) {
        rc = qa_fail(db, "events", err, errlen);
        goto cleanup;
    }
    *result = res;
    res = NULL;
    rc = 0;

cleanup:
    if (rc == CRS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    else if (rc == CRS_EDB && err[0] == '\0')
        qa_fail(db, "events", err, errlen);
    sqlite3_finalize(st);
    json_decref(res);
    return rc;
}

int crs_queue_admin_show(sqlite3 *db, json_t *params, json_t **result, char *err, size_t errlen)
{
    const char *event_id = json_string_value(json_object_get(params, "event_id"));
    Certrelay__V1__Event *ev = NULL;
    json_t *res = NULL, *dels;
    sqlite3_stmt *st = NULL;
    int rc = CRS_EINVAL;

    *result = NULL;
    if (event_id == NULL) {
        snprintf(err, errlen, "no event id given");
        goto cleanup;
    }
    if (sqlite3_prepare_v2(db, "SELECT rowid, received_ms, body FROM events WHERE event_id = ?1",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = qa_fail(db, "show", err, errlen);
        goto cleanup;
    }
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        snprintf(err, errlen, "no event %s in the queue", event_id);
        rc = CRS_ENOENT;
        goto cleanup;
    }
    if (rc != SQLITE_ROW) {
        rc = qa_fail(db, "show", err, errlen);
        goto cleanup;
    }
    rc = crs_event_unpack(sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2), &ev);
    if (rc != 0) {
        snprintf(err, errlen, "the stored event cannot be decoded: %s", crs_strerror(rc));
        goto cleanup;
    }
    rc = CRS_ENOMEM;
    res = json_object();
    if (res == NULL || crs_json_put(res, "event", crs_event_to_json(ev)) != 0 ||
        crs_json_put(res, "received_ms", json_integer(sqlite3_column_int64(st, 1))) != 0)
        goto cleanup;
    dels = crs_json_child(res, "deliveries", json_array());
    if (dels == NULL)
        goto cleanup;
    rc = qa_deliveries(db, sqlite3_column_int64(st, 0), 1, dels);
    if (rc == CRS_EDB)
        qa_fail(db, "show", err, errlen);
    if (rc != 0)
        goto cleanup;
    *result = res;
    res = NULL;

cleanup:
    if (rc == CRS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    crs_event_free(ev);
    sqlite3_finalize(st);
    json_decref(res);
    return rc;
}

/* ---- retry and replay (writes) ---- */

static int qa_begin(sqlite3 *db, char *err, size_t errlen)
{
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return qa_fail(db, "begin", err, errlen);
    return 0;
}

static int qa_end(sqlite3 *db, int rc, char *err, size_t errlen)
{
    if (rc == 0 && sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        rc = qa_fail(db, "commit", err, errlen);
    if (rc != 0 && !sqlite3_get_autocommit(db))
        sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

/*
 * A retried row is due now with a fresh budget of attempts: a row dead after max_attempts would
 * otherwise be dead-lettered again by its first failure.
 */
#define QA_RETRY_SET                                                                               \
    "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_ms = ?1, "                        \
    "updated_ms = ?1 WHERE state IN (0, 2) "

int crs_queue_admin_retry(sqlite3 *db, const struct crs_config *cfg, json_t *params, int64_t now_ms,
                          json_t **result, char *err, size_t errlen)
{
    json_t *ids = json_object_get(params, "event_ids");
    const char *sink = json_string_value(json_object_get(params, "sink"));
    json_t *since = json_object_get(params, "since_ms");
    json_t *res = NULL, *missing = NULL;
    sqlite3_stmt *st = NULL;
    int64_t rows = 0;
    size_t i;
    int rc = CRS_EINVAL;

    *result = NULL;
    if (sink != NULL && qa_sink(cfg, sink) == NULL) {
        snprintf(err, errlen, "no sink '%s' in the running configuration", sink);
        return CRS_ENOENT;
    }
    if (json_array_size(ids) == 0 && sink == NULL) {
        snprintf(err, errlen, "give event ids, or a sink with --dead");
        return CRS_EINVAL;
    }
    res = json_object();
    missing = res ? crs_json_child(res, "not_found", json_array()) : NULL;
    if (missing == NULL) {
        snprintf(err, errlen, "out of memory");
        json_decref(res);
        return CRS_ENOMEM;
    }
    rc = qa_begin(db, err, errlen);
    if (rc != 0)
        goto cleanup;
    if (json_array_size(ids) > 0) {
        rc = sqlite3_prepare_v2(db,
                                QA_RETRY_SET "AND event_rowid = (SELECT rowid FROM events WHERE "
                                             "event_id = ?2) AND (?3 IS NULL OR sink = ?3)",
                                -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : CRS_EDB;
        for (i = 0; rc == 0 && i < json_array_size(ids); i++) {
            const char *id = json_string_value(json_array_get(ids, i));
            int64_t known = 0;
            if (id == NULL)
                continue;
            sqlite3_bind_int64(st, 1, now_ms);
            sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
            if (sink != NULL)
                sqlite3_bind_text(st, 3, sink, -1, SQLITE_STATIC);
            if (sqlite3_step(st) != SQLITE_DONE) {
                rc = CRS_EDB;
                break;
            }
            rows += sqlite3_changes(db);
            sqlite3_reset(st);
            if (qa_int(db, "SELECT COUNT(*) FROM events WHERE event_id = ?1", id, 0, &known) != 0)
                rc = CRS_EDB;
            else if (known == 0 && crs_json_append(missing, json_string(id)) != 0)
                rc = CRS_ENOMEM;
        }
    } else {
        /* --sink S --dead [--since T]: the dead rows of one sink, received since T. */
        rc = sqlite3_prepare_v2(db,
                                QA_RETRY_SET "AND state = 2 AND sink = ?2 AND (?3 IS NULL OR "
                                             "event_rowid IN (SELECT rowid FROM events WHERE "
                                             "received_ms >= ?3))",
                                -1, &st, NULL) == SQLITE_OK
                 ? 0
                 : CRS_EDB;
        if (rc == 0) {
            sqlite3_bind_int64(st, 1, now_ms);
            sqlite3_bind_text(st, 2, sink, -1, SQLITE_STATIC);
            if (json_is_integer(since))
                sqlite3_bind_int64(st, 3, json_integer_value(since));
            if (sqlite3_step(st) != SQLITE_DONE)
                rc = CRS_EDB;
            else
                rows = sqlite3_changes(db);
        }
    }
    if (rc == CRS_EDB)
        qa_fail(db, "retry", err, errlen);
    else if (rc == CRS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    sqlite3_finalize(st);
    st = NULL;
    rc = qa_end(db, rc, err, errlen);
    if (rc == 0 && crs_json_put(res, "rows", json_integer(rows)) != 0) {
        snprintf(err, errlen, "out of memory");
        rc = CRS_ENOMEM;
    }
    if (rc == 0) {
        *result = res;
        res = NULL;
    }

cleanup:
    sqlite3_finalize(st);
    json_decref(res);
    return rc;
}

/*
 * replay: every event received since T (and of kind K) that sink S takes under its current
 * filters is delivered to it again: a delivered row becomes pending, an event the sink never had
 * a row for (it was added later) gets one. Pending and dead rows are left as they are (retry is
 * for those), so nothing is queued twice.
 */
int crs_queue_admin_replay(sqlite3 *db, const struct crs_config *cfg, json_t *params,
                           int64_t now_ms, json_t **result, char *err, size_t errlen)
{
    const char *sink = json_string_value(json_object_get(params, "sink"));
    const char *kind_name = json_string_value(json_object_get(params, "kind"));
    json_t *since = json_object_get(params, "since_ms");
    const struct crs_sink_config *sc = qa_sink(cfg, sink);
    sqlite3_stmt *sel = NULL, *up = NULL, *ins = NULL;
    uint32_t kind = 0;
    int64_t rows = 0;
    int rc, src;

    *result = NULL;
    if (sc == NULL) {
        snprintf(err, errlen, "no sink '%s' in the running configuration",
                 sink ? sink : "(none given)");
        return CRS_ENOENT;
    }
    if (!json_is_integer(since)) {
        snprintf(err, errlen, "replay needs --since");
        return CRS_EINVAL;
    }
    if (kind_name != NULL && crs_event_from_name(kind_name, &kind) != 0) {
        snprintf(err, errlen, "unknown event kind '%s'", kind_name);
        return CRS_EINVAL;
    }
    rc = qa_begin(db, err, errlen);
    if (rc != 0)
        return rc;
    if (sqlite3_prepare_v2(db,
                           "SELECT rowid, body FROM events WHERE received_ms >= ?1 AND "
                           "(?2 = 0 OR (kind & ?2) != 0) ORDER BY rowid",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "UPDATE deliveries SET state = 0, attempts = 0, next_attempt_ms = ?1, "
                           "updated_ms = ?1, last_error = NULL, last_status = 0 WHERE "
                           "event_rowid = ?2 AND sink = ?3 AND state = 1",
                           -1, &up, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT OR IGNORE INTO deliveries (event_rowid, sink, state, attempts, "
                           "next_attempt_ms, last_error, last_status, updated_ms) "
                           "VALUES (?2, ?3, 0, 0, ?1, NULL, 0, ?1)",
                           -1, &ins, NULL) != SQLITE_OK) {
        rc = CRS_EDB;
        goto cleanup;
    }
    sqlite3_bind_int64(sel, 1, json_integer_value(since));
    sqlite3_bind_int64(sel, 2, kind);
    while ((src = sqlite3_step(sel)) == SQLITE_ROW) {
        Certrelay__V1__Event *ev = NULL;
        int64_t row = sqlite3_column_int64(sel, 0);
        int match;

        if (crs_event_unpack(sqlite3_column_blob(sel, 1), (size_t)sqlite3_column_bytes(sel, 1),
                             &ev) != 0)
            continue;
        match = crs_sink_matches(sc, ev);
        crs_event_free(ev);
        if (!match)
            continue;
        sqlite3_bind_int64(up, 1, now_ms);
        sqlite3_bind_int64(up, 2, row);
        sqlite3_bind_text(up, 3, sc->name, -1, SQLITE_STATIC);
        sqlite3_bind_int64(ins, 1, now_ms);
        sqlite3_bind_int64(ins, 2, row);
        sqlite3_bind_text(ins, 3, sc->name, -1, SQLITE_STATIC);
        if (sqlite3_step(up) != SQLITE_DONE) {
            rc = CRS_EDB;
            break;
        }
        rows += sqlite3_changes(db);
        sqlite3_reset(up);
        if (sqlite3_step(ins) != SQLITE_DONE) {
            rc = CRS_EDB;
            break;
        }
        rows += sqlite3_changes(db);
        sqlite3_reset(ins);
    }
    if (rc == 0 && src != SQLITE_DONE)
        rc = CRS_EDB;

cleanup:
    if (rc == CRS_EDB)
        qa_fail(db, "replay", err, errlen);
    sqlite3_finalize(sel);
    sqlite3_finalize(up);
    sqlite3_finalize(ins);
    rc = qa_end(db, rc, err, errlen);
    if (rc == 0) {
        *result = json_pack("{sI}", "rows", (json_int_t)rows);
        if (*result == NULL) {
            snprintf(err, errlen, "out of memory");
            rc = CRS_ENOMEM;
        }
    }
    return rc;
}

/* ---- Retention (broker/retention.c) ---- */

/*
 * An event goes (with its deliveries and their attempts history) once every delivery of it is
 * finished and old enough: delivered ones after
 * retention, dead ones after dead_retention (an event no sink took, after retention). Pending
 * deliveries are never pruned. The oldest events go first, at most `batch` per call; the pages
 * freed are given back once more than CRS_PRUNE_FREE_PAGES of them are free.
 */
#define CRS_PRUNE_FREE_PAGES 1024

int crs_queue_prune(sqlite3 *db, const struct crs_config *cfg, int64_t now_ms, unsigned batch,
                    int64_t *pruned, char *err, size_t errlen)
{
    int64_t cut_del = now_ms - cfg->retention_ms, cut_dead = now_ms - cfg->dead_retention_ms;
    /* An event older than neither cut has no delivery that could be old enough. */
    int64_t cut_max = cut_del > cut_dead ? cut_del : cut_dead;
    int64_t free_pages = 0;
    sqlite3_stmt *st = NULL;
    int rc;

    *pruned = 0;
    if (sqlite3_exec(db, "CREATE TEMP TABLE IF NOT EXISTS prune (r INTEGER PRIMARY KEY)", NULL,
                     NULL, NULL) != SQLITE_OK)
        return qa_fail(db, "prune", err, errlen);
    rc = qa_begin(db, err, errlen);
    if (rc != 0)
        return rc;
    if (sqlite3_exec(db, "DELETE FROM temp.prune", NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "INSERT INTO temp.prune SELECT e.rowid FROM events e WHERE "
                           "e.received_ms < ?1 AND NOT EXISTS (SELECT 1 FROM deliveries d "
                           "WHERE d.event_rowid = e.rowid AND NOT ((d.state = 1 AND "
                           "d.updated_ms < ?2) OR (d.state = 2 AND d.updated_ms < ?3))) AND "
                           "(e.received_ms < ?2 OR EXISTS (SELECT 1 FROM deliveries d WHERE "
                           "d.event_rowid = e.rowid)) ORDER BY e.rowid LIMIT ?4",
                           -1, &st, NULL) != SQLITE_OK) {
        rc = CRS_EDB;
        goto cleanup;
    }
    sqlite3_bind_int64(st, 1, cut_max);
    sqlite3_bind_int64(st, 2, cut_del);
    sqlite3_bind_int64(st, 3, cut_dead);
    sqlite3_bind_int64(st, 4, batch);
    if (sqlite3_step(st) != SQLITE_DONE) {
        rc = CRS_EDB;
        goto cleanup;
    }
    *pruned = sqlite3_changes(db);
    if (*pruned > 0 && (sqlite3_exec(db, "DELETE FROM attempts WHERE event_rowid IN temp.prune",
                                     NULL, NULL, NULL) != SQLITE_OK ||
                        sqlite3_exec(db, "DELETE FROM deliveries WHERE event_rowid IN temp.prune",
                                     NULL, NULL, NULL) != SQLITE_OK ||
                        sqlite3_exec(db, "DELETE FROM events WHERE rowid IN temp.prune", NULL, NULL,
                                     NULL) != SQLITE_OK))
        rc = CRS_EDB;

cleanup:
    if (rc == CRS_EDB)
        qa_fail(db, "prune", err, errlen);
    sqlite3_finalize(st);
    rc = qa_end(db, rc, err, errlen);
    if (rc == 0 && qa_int(db, "PRAGMA freelist_count", NULL, 0, &free_pages) == 0 &&
        free_pages > CRS_PRUNE_FREE_PAGES)
        sqlite3_exec(db, "PRAGMA incremental_vacuum", NULL, NULL, NULL);
    return rc;
}

/* ---- Catch-up (queue_dedup.c) ---- */

/*
 * catchup-check: which of the packed events (base64 in params.events) would be stored, without
 * storing anything. Each answer is {event_id, request_id, kind, outcome: new | duplicate |
 * rejected, reason}. Two events of one check with the same key are both "new": the dry run
 * answers for the database as it is.
 */
int crs_queue_admin_catchup_check(struct sqlite3 *db, json_t *params, json_t **result, char *err,
                                  size_t errlen)
{
    json_t *events = crs_reconcile_param_events(params, err, errlen), *v, *arr = NULL;
    size_t i;
    json_int_t nnew = 0, ndup = 0, nbad = 0;
    int rc = 0;

    *result = NULL;
    if (events == NULL)
        return CRS_EINVAL;
    arr = json_array();
    if (arr == NULL)
        return CRS_ENOMEM;
    json_array_foreach(events, i, v)
    {
        Certrelay__V1__Event *ev = NULL;
        struct crs_catchup_key key;
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        const char *outcome = "rejected", *reason = NULL;

        if (!json_is_string(v) || crs_base64_decode(json_string_value(v), &raw, &rawlen) != 0)
            reason = "not base64";
        else if (crs_event_unpack(raw, rawlen, &ev) != 0)
            reason = "not a valid packed event";
        else if (crs_catchup_event_key(ev, &key) != 0)
            reason = "no dedup key";
        if (reason == NULL) {
            rc = crs_dedup_key_held(db, &key);
            if (rc < 0) {
                crs_free(raw);
                crs_event_free(ev);
                json_decref(arr);
                return qa_fail(db, "read dedup index", err, errlen);
            }
            outcome = rc ? "duplicate" : "new";
            rc = 0;
        }
        *(reason ? &nbad : strcmp(outcome, "new") == 0 ? &nnew : &ndup) += 1;
        json_t *o = json_pack(
            "{s:s?, s:I, s:s?, s:s, s:s?}", "event_id", ev ? ev->event_id : NULL, "request_id",
            (json_int_t)(ev && ev->request && ev->request->has_request_id ? ev->request->request_id
                                                                          : -1),
            "kind", ev && ev->has_kind ? crs_event_name((uint32_t)ev->kind) : NULL, "outcome",
            outcome, "reason", reason);
        crs_free(raw);
        crs_event_free(ev);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            return CRS_ENOMEM;
        }
    }
    *result = json_pack("{s:o, s:I, s:I, s:I}", "results", arr, "new", nnew, "duplicates", ndup,
                        "rejected", nbad);
    return *result == NULL ? CRS_ENOMEM : rc;
}

int crs_queue_admin_catchup_status(struct sqlite3 *db, json_t **result, char *err, size_t errlen)
{
    return crs_dedup_watermarks(db, result, err, errlen);
}
