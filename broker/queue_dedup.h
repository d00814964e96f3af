/*
 * The dedup index and the per-CA watermarks (schema version 3 of the queue, broker/queue_dedup.c).
 *
 * Every event the queue stores that has a catch-up key (include/certrelay/catchup.h: CA, request
 * id, kind, disposition minute), live or caught up, gets a row in event_keys in the transaction
  * that stores it. An event whose key is held by an event from the other path (a caught-up event
 * after a live one, or a live one after a caught-up one) is acknowledged but neither stored nor
 * delivered again; two live events with one key are both delivered, as before the index. The key
 * rows outlive the events (retention prunes events, not keys), so a catch-up over a period long
 * delivered still finds them; they go dedup_retention after they were stored (crs_dedup_prune).
 */
#ifndef CERTRELAY_BROKER_QUEUE_DEDUP_H
#define CERTRELAY_BROKER_QUEUE_DEDUP_H

#include <stdint.h>
#include <jansson.h>

#include "certrelay/catchup.h"

struct sqlite3;
struct crs_dedup;

/* The version 3 tables, applied with the rest of the schema (CREATE ... IF NOT EXISTS). */
extern const char crs_dedup_schema_sql[];

/* Prepares the statements the commit path uses on db. Logs its own failure. */
int crs_dedup_open(struct sqlite3 *db, struct crs_dedup **out);
void crs_dedup_close(struct crs_dedup *d); /* NULL ok */

/* True when ev was caught up (Event.origin "catchup"). */
int crs_dedup_event_caught_up(const Certrelay__V1__Event *ev);
/* 1 when the event (event_id; caught_up or live) is a duplicate: another event holds the key and
 * it was caught up, or this one is; 0 when not; CRS_EDB. */
int crs_dedup_seen(struct crs_dedup *d, const struct crs_catchup_key *key, const char *event_id,
                   int caught_up);
/* Records the key of a stored event (rowid) and raises the CA's watermark. CRS_EDB. */
int crs_dedup_record(struct crs_dedup *d, const struct crs_catchup_key *key, int caught_up,
                     int64_t when_ms, int64_t rowid, int64_t now_ms);

/* The migration from version 2: keys and watermarks of every stored event. *n: keys written. */
int crs_dedup_backfill(struct sqlite3 *db, int64_t now_ms, int64_t *n);

/* The check of a caught-up event for code outside the commit path (catchup-check), preparing
 * as it goes: 1 held, 0 not, CRS_EDB. */
int crs_dedup_key_held(struct sqlite3 *db, const struct crs_catchup_key *key);

/* The watermarks as {"watermarks": [{ca, max_request_id, max_when_ms, first_when_ms,
 * caught_up_ms, updated_ms, keys}]}. */
int crs_dedup_watermarks(struct sqlite3 *db, json_t **result, char *err, size_t errlen);
/* Records that a catch-up of ca (lowercase) completed through through_ms. */
int crs_dedup_set_caught_up(struct sqlite3 *db, const char *ca, int64_t through_ms, int64_t now_ms);

/* Where the sweep of crs_dedup_prune stands: the last key it looked at (zeroed: the start). done
 * is set when a call reached the end of the table. */
struct crs_dedup_cursor {
    char ca[CRS_CATCHUP_CA_MAX + 1];
    int64_t request_id, kind, minute;
    int done;
};

/* Deletes, among the next `batch` keys after cur, those stored before cut_ms, and moves cur on.
 * *pruned: keys deleted. Runs inside the caller's transaction. CRS_EDB. */
int crs_dedup_prune(struct sqlite3 *db, int64_t cut_ms, unsigned batch,
                    struct crs_dedup_cursor *cur, int64_t *pruned);
#endif
