/*
 * The dedup index and the per-CA watermarks (see queue_dedup.h).
 *
 * ---- Schema (added in PRAGMA user_version = 3) ----
 *
 *   CREATE TABLE event_keys (
 *       ca          TEXT NOT NULL,      -- the CA config string, ASCII-lowercased
 *       request_id  INTEGER NOT NULL,
 *       kind        INTEGER NOT NULL,   -- CRS_EVENT_* bit (issued, pending, denied, revoked)
 *       minute      INTEGER NOT NULL,   -- disposition time in whole minutes since 1970, -1 if none
  *       event_rowid INTEGER NOT NULL,   -- events.rowid of the event that holds it (may be pruned)
 *       caught_up   INTEGER NOT NULL,   -- 1 when that event was caught up (Event.origin)
 *       stored_ms   INTEGER NOT NULL,   -- when the key was stored: dedup_retention counts from it
 *       PRIMARY KEY (ca, request_id, kind, minute)) WITHOUT ROWID;
 *   CREATE TABLE watermarks (
 *       ca             TEXT PRIMARY KEY, -- as in event_keys
 *       max_request_id INTEGER NOT NULL, -- highest request id stored, live or caught up
 *       max_when_ms    INTEGER NOT NULL, -- latest disposition time stored
 *       first_when_ms  INTEGER NOT NULL, -- earliest disposition time stored
 *       caught_up_ms   INTEGER,          -- a scheduled catch-up completed through this time
 *       updated_ms     INTEGER NOT NULL);
 *
 * A sample: request 41 issued live, then revoked while the module was away and caught up:
 *
  *   event_keys: ca\ca01 | 41 | 1 | 29446330 | 7 | 0
 *               ca\ca01 | 41 | 8 | 29447771 | 9 | 1
 *   watermarks: ca\ca01 | 41 | 1766866260000 | 1766779800000 | NULL | 1766866300123
 */
#include "queue_dedup.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"

const char crs_dedup_schema_sql[] = "CREATE TABLE IF NOT EXISTS event_keys ("
                                    " ca TEXT NOT NULL,"
                                    " request_id INTEGER NOT NULL,"
                                    " kind INTEGER NOT NULL,"
                                    " minute INTEGER NOT NULL,"
                                    " event_rowid INTEGER NOT NULL,"
                                    " caught_up INTEGER NOT NULL,"
                                    " stored_ms INTEGER NOT NULL DEFAULT 0,"
                                    " PRIMARY KEY (ca, request_id, kind, minute)) WITHOUT ROWID;"
                                    "CREATE TABLE IF NOT EXISTS watermarks ("
                                    " ca TEXT PRIMARY KEY,"
                                    " max_request_id INTEGER NOT NULL,"
                                    " max_when_ms INTEGER NOT NULL,"
                                    " first_when_ms INTEGER NOT NULL,"
                                    " caught_up_ms INTEGER,"
                                    " updated_ms INTEGER NOT NULL);";

enum { DEDUP_SEEN, DEDUP_INSERT, DEDUP_WATERMARK, DEDUP_COUNT_ };

static const char *const dedup_sql[DEDUP_COUNT_] = {
    [DEDUP_SEEN] = "SELECT e.event_id, k.caught_up FROM event_keys k LEFT JOIN events e "
                   "ON e.rowid = k.event_rowid "
                   "WHERE k.ca = ?1 AND k.request_id = ?2 AND k.kind = ?3 AND k.minute = ?4",
    [DEDUP_INSERT] = "INSERT OR IGNORE INTO event_keys (ca, request_id, kind, minute, event_rowid, "
                     "caught_up, stored_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    /* A time of -1 (the event had none) moves neither time. */
    [DEDUP_WATERMARK] =
        "INSERT INTO watermarks (ca, max_request_id, max_when_ms, first_when_ms, caught_up_ms, "
        "updated_ms) VALUES (?1, ?2, ?3, ?3, NULL, ?4) "
        "ON CONFLICT (ca) DO UPDATE SET "
        "max_request_id = max(max_request_id, excluded.max_request_id), "
        "max_when_ms = max(max_when_ms, excluded.max_when_ms), "
        "first_when_ms = CASE WHEN first_when_ms < 0 THEN excluded.first_when_ms "
        "WHEN excluded.first_when_ms < 0 THEN first_when_ms "
        "ELSE min(first_when_ms, excluded.first_when_ms) END, "
        "updated_ms = excluded.updated_ms",
};

struct crs_dedup {
    sqlite3 *db;
    sqlite3_stmt *st[DEDUP_COUNT_];
};

static int dedup_prepare(sqlite3 *db, sqlite3_stmt **st)
{
    for (int i = 0; i < DEDUP_COUNT_; i++) {
        if (sqlite3_prepare_v3(db, dedup_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &st[i], NULL) !=
            SQLITE_OK) {
            crs_error("database: cannot prepare \"%s\": %s", dedup_sql[i], sqlite3_errmsg(db));
            return CRS_EDB;
        }
    }
    return 0;
}

static void dedup_finalize(sqlite3_stmt **st)
{
    for (int i = 0; i < DEDUP_COUNT_; i++) {
        sqlite3_finalize(st[i]);
        st[i] = NULL;
    }
}

int crs_dedup_open(sqlite3 *db, struct crs_dedup **out)
{
    struct crs_dedup *d;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (db == NULL)
        return CRS_EINVAL;
    d = crs_calloc(1, sizeof(*d));
    if (d == NULL)
        return CRS_ENOMEM;
    d->db = db;
    rc = dedup_prepare(db, d->st);
    if (rc != 0) {
        crs_dedup_close(d);
        return rc;
    }
    *out = d;
    return 0;
}

void crs_dedup_close(struct crs_dedup *d)
{
    if (d == NULL)
        return;
    dedup_finalize(d->st);
    crs_free(d);
}

int crs_dedup_event_caught_up(const Certrelay__V1__Event *ev)
{
    return ev != NULL && ev->origin != NULL && strcmp(ev->origin, CRS_CATCHUP_ORIGIN) == 0;
}

static void bind_key(sqlite3_stmt *st, const struct crs_catchup_key *key)
{
    sqlite3_bind_text(st, 1, key->ca, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, key->request_id);
    sqlite3_bind_int64(st, 3, key->kind);
    sqlite3_bind_int64(st, 4, key->minute);
}

static int dedup_seen_stmt(sqlite3_stmt *st, const struct crs_catchup_key *key,
                           const char *event_id, int caught_up)
{
    int rc, held = 0;

    bind_key(st, key);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *holder = (const char *)sqlite3_column_text(st, 0);
        /* The holder itself (a resend after a lost Ack) is not a duplicate: the event_id path
         * of the queue answers it. A pruned holder (NULL) still holds the key. */
        held = !(event_id != NULL && holder != NULL && strcmp(holder, event_id) == 0);
        /* Two live events with one key are two notifications certsrv sent (or a simulator
         * replaying request ids): both are delivered, as before the index existed. What the
         * index drops is a copy on the other path: caught up after live, or live after caught
         * up (the stub's late spool). */
        if (held && !caught_up && sqlite3_column_int(st, 1) == 0)
            held = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return CRS_EDB;
    return held;
}

int crs_dedup_seen(struct crs_dedup *d, const struct crs_catchup_key *key, const char *event_id,
                   int caught_up)
{
    if (d == NULL || key == NULL)
        return CRS_EINVAL;
    return dedup_seen_stmt(d->st[DEDUP_SEEN], key, event_id, caught_up);
}

static int dedup_record_stmts(sqlite3_stmt **st, const struct crs_catchup_key *key, int caught_up,
                              int64_t when_ms, int64_t rowid, int64_t now_ms)
{
    int rc;

    bind_key(st[DEDUP_INSERT], key);
    sqlite3_bind_int64(st[DEDUP_INSERT], 5, rowid);
    sqlite3_bind_int(st[DEDUP_INSERT], 6, caught_up != 0);
    sqlite3_bind_int64(st[DEDUP_INSERT], 7, now_ms);
    rc = sqlite3_step(st[DEDUP_INSERT]);
    sqlite3_reset(st[DEDUP_INSERT]);
    sqlite3_clear_bindings(st[DEDUP_INSERT]);
    if (rc != SQLITE_DONE)
        return CRS_EDB;
    sqlite3_bind_text(st[DEDUP_WATERMARK], 1, key->ca, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st[DEDUP_WATERMARK], 2, key->request_id);
    sqlite3_bind_int64(st[DEDUP_WATERMARK], 3, when_ms);
    sqlite3_bind_int64(st[DEDUP_WATERMARK], 4, now_ms);
    rc = sqlite3_step(st[DEDUP_WATERMARK]);
    sqlite3_reset(st[DEDUP_WATERMARK]);
    sqlite3_clear_bindings(st[DEDUP_WATERMARK]);
    return rc == SQLITE_DONE ? 0 : CRS_EDB;
}

int crs_dedup_record(struct crs_dedup *d, const struct crs_catchup_key *key, int caught_up,
                     int64_t when_ms, int64_t rowid, int64_t now_ms)
{
    if (d == NULL || key == NULL)
        return CRS_EINVAL;
    return dedup_record_stmts(d->st, key, caught_up, when_ms, rowid, now_ms);
}

/* The disposition time of a keyed event in ms (-1 when it has none). */
static int64_t event_when_ms(const Certrelay__V1__Event *ev, const struct crs_catchup_key *key)
{
    return key->minute < 0                  ? -1
           : key->kind == CRS_EVENT_PENDING ? ev->request->submitted_when_ms
           : key->kind == CRS_EVENT_REVOKED ? ev->request->revoked_when_ms
                                            : ev->request->resolved_when_ms;
}

int crs_dedup_backfill(sqlite3 *db, int64_t now_ms, int64_t *n)
{
    sqlite3_stmt *sel = NULL;
    sqlite3_stmt *st[DEDUP_COUNT_] = {0};
    int rc;

    *n = 0;
    rc = dedup_prepare(db, st);
    if (rc != 0)
        goto cleanup;
    if (sqlite3_prepare_v2(db, "SELECT rowid, body FROM events ORDER BY rowid", -1, &sel, NULL) !=
        SQLITE_OK) {
        rc = CRS_EDB;
        goto cleanup;
    }
    while ((rc = sqlite3_step(sel)) == SQLITE_ROW) {
        Certrelay__V1__Event *ev = NULL;
        struct crs_catchup_key key;
        const void *body = sqlite3_column_blob(sel, 1);
        int len = sqlite3_column_bytes(sel, 1);

        /* A body that no longer decodes was accepted by an older broker: it simply gets no
         * key, as it could not be delivered either. */
        if (len <= 0 || crs_event_unpack(body, (size_t)len, &ev) != 0)
            continue;
        if (crs_catchup_event_key(ev, &key) == 0) {
            rc = dedup_record_stmts(st, &key, crs_dedup_event_caught_up(ev),
                                    event_when_ms(ev, &key), sqlite3_column_int64(sel, 0), now_ms);
            if (rc != 0) {
                crs_event_free(ev);
                goto cleanup;
            }
            (*n)++;
        }
        crs_event_free(ev);
    }
    rc = rc == SQLITE_DONE ? 0 : CRS_EDB;

cleanup:
    if (rc != 0)
        crs_error("database: backfilling the dedup index failed: %s", sqlite3_errmsg(db));
    sqlite3_finalize(sel);
    dedup_finalize(st);
    return rc;
}

int crs_dedup_key_held(sqlite3 *db, const struct crs_catchup_key *key)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(db, dedup_sql[DEDUP_SEEN], -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    rc = dedup_seen_stmt(st, key, NULL, 1);
    sqlite3_finalize(st);
    return rc;
}

int crs_dedup_watermarks(sqlite3 *db, json_t **result, char *err, size_t errlen)
{
    sqlite3_stmt *st = NULL;
    json_t *arr = json_array();
    int rc;

    *result = NULL;
    if (arr == NULL)
        return CRS_ENOMEM;
    if (sqlite3_prepare_v2(db,
                           "SELECT w.ca, w.max_request_id, w.max_when_ms, w.first_when_ms, "
                           "w.caught_up_ms, w.updated_ms, "
                           "(SELECT count(*) FROM event_keys k WHERE k.ca = w.ca) "
                           "FROM watermarks w ORDER BY w.ca",
                           -1, &st, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "database: %s", sqlite3_errmsg(db));
        json_decref(arr);
        return CRS_EDB;
    }
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        json_t *o = json_pack("{s:s, s:I, s:I, s:I, s:o, s:I, s:I}", "ca",
                              (const char *)sqlite3_column_text(st, 0), "max_request_id",
                              (json_int_t)sqlite3_column_int64(st, 1), "max_when_ms",
                              (json_int_t)sqlite3_column_int64(st, 2), "first_when_ms",
                              (json_int_t)sqlite3_column_int64(st, 3), "caught_up_ms",
                              sqlite3_column_type(st, 4) == SQLITE_NULL
                                  ? json_null()
                                  : json_integer((json_int_t)sqlite3_column_int64(st, 4)),
                              "updated_ms", (json_int_t)sqlite3_column_int64(st, 5), "keys",
                              (json_int_t)sqlite3_column_int64(st, 6));
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            rc = CRS_ENOMEM;
            break;
        }
    }
    sqlite3_finalize(st);
    if (rc != SQLITE_DONE) {
        json_decref(arr);
        snprintf(err, errlen, "database: reading the watermarks failed");
        return rc == CRS_ENOMEM ? CRS_ENOMEM : CRS_EDB;
    }
    *result = json_pack("{s:o}", "watermarks", arr);
    return *result == NULL ? CRS_ENOMEM : 0;
}

int crs_dedup_set_caught_up(sqlite3 *db, const char *ca, int64_t through_ms, int64_t now_ms)
{
    sqlite3_stmt *st = NULL;
    int rc;

    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO watermarks (ca, max_request_id, max_when_ms, first_when_ms, "
            "caught_up_ms, updated_ms) VALUES (?1, 0, -1, -1, ?2, ?3) "
            "ON CONFLICT (ca) DO UPDATE SET caught_up_ms = "
            "max(coalesce(caught_up_ms, 0), excluded.caught_up_ms), "
            "updated_ms = excluded.updated_ms",
            -1, &st, NULL) != SQLITE_OK)
        return CRS_EDB;
    sqlite3_bind_text(st, 1, ca, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, through_ms);
    sqlite3_bind_int64(st, 3, now_ms);
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    return rc == SQLITE_DONE ? 0 : CRS_EDB;
}

/*
 * Keys are swept in primary-key order, a batch per call, from where the last call stopped: each
 * call costs one batch of reads however large the table is (an index on stored_ms would cost
 * every commit one more page of log), and the sweep wraps around at the end of the table.
 */
int crs_dedup_prune(struct sqlite3 *db, int64_t cut_ms, unsigned batch,
                    struct crs_dedup_cursor *cur, int64_t *pruned)
{
    sqlite3_stmt *sel = NULL, *del = NULL;
    unsigned seen = 0;
    int rc = CRS_EDB, step;

    if (db == NULL || cur == NULL || pruned == NULL || batch == 0)
        return CRS_EINVAL;
    *pruned = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT ca, request_id, kind, minute, stored_ms FROM event_keys "
                           "WHERE (ca, request_id, kind, minute) > (?1, ?2, ?3, ?4) "
                           "ORDER BY ca, request_id, kind, minute LIMIT ?5",
                           -1, &sel, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db,
                           "DELETE FROM event_keys WHERE ca = ?1 AND request_id = ?2 AND "
                           "kind = ?3 AND minute = ?4",
                           -1, &del, NULL) != SQLITE_OK)
        goto cleanup;
    sqlite3_bind_text(sel, 1, cur->ca, -1, SQLITE_STATIC);
    sqlite3_bind_int64(sel, 2, cur->request_id);
    sqlite3_bind_int64(sel, 3, cur->kind);
    sqlite3_bind_int64(sel, 4, cur->minute);
    sqlite3_bind_int64(sel, 5, batch);
    while ((step = sqlite3_step(sel)) == SQLITE_ROW) {
        const char *ca = (const char *)sqlite3_column_text(sel, 0);

        seen++;
        snprintf(cur->ca, sizeof(cur->ca), "%s", ca != NULL ? ca : "");
        cur->request_id = sqlite3_column_int64(sel, 1);
        cur->kind = sqlite3_column_int64(sel, 2);
        cur->minute = sqlite3_column_int64(sel, 3);
        if (sqlite3_column_int64(sel, 4) >= cut_ms)
            continue;
        sqlite3_bind_text(del, 1, cur->ca, -1, SQLITE_STATIC);
        sqlite3_bind_int64(del, 2, cur->request_id);
        sqlite3_bind_int64(del, 3, cur->kind);
        sqlite3_bind_int64(del, 4, cur->minute);
        if (sqlite3_step(del) != SQLITE_DONE)
            goto cleanup;
        sqlite3_reset(del);
        (*pruned)++;
    }
    if (step != SQLITE_DONE)
        goto cleanup;
    /* A short batch reached the end of the table: the next sweep starts again at its beginning. */
    if (seen < batch) {
        memset(cur, 0, sizeof(*cur));
        cur->done = 1;
    } else {
        cur->done = 0;
    }
    rc = 0;

cleanup:
    sqlite3_finalize(sel);
    sqlite3_finalize(del);
    return rc;
}
