/*
 * Catch-up in the broker (reconcile.c): caught-up events enter the queue through the same commit
 * path as live ones (dedup index included), from two places:
 *
 *  - the admin command catchup-submit (`certrelay catchup`): a batch of packed events, each
 *    answered stored, duplicate or rejected (crs_reconcile_batch);
 *  - the schedule (`catchup = on`): at start and every catchup_interval, rows of the CA database
 *    (ICertView2 on Windows, or the `catchup_csv` export) from the CA's watermark on, read on the
 *    threadpool in chunks, turned into events and submitted as batches (crs_reconcile).
 */
#ifndef CERTRELAY_BROKER_RECONCILE_H
#define CERTRELAY_BROKER_RECONCILE_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "config/config.h"
#include "queue.h"

/* One catchup-submit: at most this many events and bytes of packed events. */
#define CRS_RECONCILE_BATCH_MAX   256u
#define CRS_RECONCILE_BATCH_BYTES (8u * 1024u * 1024u)
/* Rows of the CA database one scheduled chunk reads (two events each at most). */
#define CRS_RECONCILE_CHUNK_ROWS 256u
/* How far before the last completed run the next one starts reading: rows resolved while a
 * run was reading, and a CA clock a little off, are still covered (the dedup index drops what
 * was seen). */
#define CRS_RECONCILE_OVERLAP_MS (60 * 60 * 1000)
/* Largest catchup_csv read by the schedule. */
#define CRS_RECONCILE_CSV_MAX ((uint64_t)4 << 30)

enum crs_reconcile_outcome {
    CRS_RECONCILE_STORED = 1,
    CRS_RECONCILE_DUPLICATE = 2,
    CRS_RECONCILE_REJECTED = 3
};

struct crs_reconcile_result {
    char event_id[37];
    int64_t request_id; /* -1 when the event did not decode */
    uint32_t kind;
    int outcome; /* enum crs_reconcile_outcome */
    char reason[160];
};

struct crs_reconcile_batch;
typedef void (*crs_reconcile_batch_cb)(struct crs_reconcile_batch *b, void *arg);

struct crs_reconcile_batch {
    size_t n, cap;
    size_t pending; /* items in the queue */
    struct crs_reconcile_result *res;
    struct crs_ingest_item *items; /* added, not yet submitted */
    crs_reconcile_batch_cb done;
    void *arg;
    uint64_t stored, duplicates, rejected;
};

int crs_reconcile_batch_new(size_t cap, struct crs_reconcile_batch **out);
/* Adds one packed event (copied): decoded and checked here; an event that does not decode or has
 * no dedup key is recorded as rejected. 0, CRS_ERANGE when the batch is full, CRS_ENOMEM. */
int crs_reconcile_batch_add(struct crs_reconcile_batch *b, const struct crs_config *cfg,
                            const uint8_t *p, size_t n);
/* Hands the items to the queue; done runs on the loop once each is committed or failed (at once
 * when there is nothing to commit). */
void crs_reconcile_batch_submit(struct crs_reconcile_batch *b, struct crs_queue *q,
                                crs_reconcile_batch_cb done, void *arg);
void crs_reconcile_batch_free(struct crs_reconcile_batch *b); /* NULL ok; not while pending */

/* The events array of a catchup-submit or catchup-check request (params.events: base64 strings,
 * at most CRS_RECONCILE_BATCH_MAX), or NULL with a sentence in err. */
json_t *crs_reconcile_param_events(json_t *params, char *err, size_t errlen);
const char *crs_reconcile_outcome_name(int outcome);

/* ---- The schedule ---- */

struct crs_reconcile;

int crs_reconcile_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                      struct crs_reconcile **out);
/* Arms the timer: a run shortly after start when catchup is on, then every interval. */
int crs_reconcile_start(struct crs_reconcile *r);
/* A reloaded configuration: catchup turned on runs soon, a new interval re-arms the timer. */
void crs_reconcile_set_config(struct crs_reconcile *r, const struct crs_config *cfg);
/* Stops; cb runs once no read, batch or queue operation is outstanding. */
void crs_reconcile_stop(struct crs_reconcile *r, void (*cb)(void *arg), void *arg);
void crs_reconcile_free(struct crs_reconcile *r);

#endif
