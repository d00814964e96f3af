/*
 * Expiry and CRL alerts: the broker raises `expiring`, `expired` and `crl_expiring` events from
 * schedules it keeps in the queue database.
 *
 * Two halves. On the queue's worker (crs_expiry_db_*), inside the transaction that commits
 * received events: an issued or imported certificate gets a schedule keyed by CA and serial, a
 * revocation cancels it (a release from hold brings it back), a renewal (same subject and
 * template, later notAfter) cancels the older one's, and a crl_issued event sets the schedule of
 * each CA key's CRL (the newer thisUpdate wins). On the loop (crs_expiry_*): a timer that sleeps
 * until the earliest schedule is due (at most an hour, and it wakes when the wall clock jumps),
 * then submits a tick to the queue's lane that turns due stages into real events, routed and
 * stored like received ones, and marks the stages sent in the same transaction.
 */
#ifndef CERTRELAY_BROKER_EXPIRY_H
#define CERTRELAY_BROKER_EXPIRY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"

struct sqlite3;
struct crs_queue;
struct crs_dispatcher;

/* ---- The plan: pure, unit-tested (tests/unit/test_expiry.c) ---- */

/* A schedule's sent_lead_ms before any alert was sent. */
#define CRS_EXPIRY_NONE_SENT INT64_MAX

enum crs_expiry_action {
    CRS_EXPIRY_WAIT = 0, /* nothing due: look again at next_due_ms */
    CRS_EXPIRY_SEND,     /* raise `kind` for stage lead_ms now */
    CRS_EXPIRY_FINISH    /* nothing will ever be due again */
};

struct crs_expiry_step {
    enum crs_expiry_action action;
    uint32_t kind;       /* CRS_EVENT_EXPIRING, _EXPIRED or _CRL_EXPIRING when SEND */
    int64_t lead_ms;     /* the stage sent (0 for expired) */
    int64_t next_due_ms; /* when WAIT */
};

/*
 * What a schedule whose deadline (notAfter, nextUpdate) is deadline_ms and whose last alert was
 * for stage sent_lead_ms must do at now_ms. leads are the configured lead times, longest first.
 * Only the most urgent stage that is due is sent: after a downtime that covered the 30d and the 7d
 * stage, one alert for 7d. A certificate past its notAfter gets `expired` once (when with_expired)
 * and never a late `expiring`; a CRL past its nextUpdate with a stage unsent gets one
 * `crl_expiring` (the CRL is stale, which is what the alert is about). After a SEND the caller
 * sets sent_lead_ms to the step's lead_ms and asks again for the next due time.
 */
void crs_expiry_plan(const int64_t *leads, size_t nleads, int is_crl, int with_expired,
                     int64_t deadline_ms, int64_t sent_lead_ms, int64_t now_ms,
                     struct crs_expiry_step *out);

/* Days from now to the deadline, rounded up (23 h left is 1 day; 0 or less once it passed). */
int64_t crs_expiry_days_left(int64_t deadline_ms, int64_t now_ms);

/* Whether cfg raises `expired` (on, or auto with a sink whose events name it). */
int crs_expiry_with_expired(const struct crs_config *cfg);

/* ---- The worker half: the queue owns one, used only inside its jobs ---- */

/* The schedules table, applied with the queue's schema (CREATE ... IF NOT EXISTS). */
extern const char crs_expiry_schema_sql[];

struct crs_expiry_db;

int crs_expiry_db_new(struct sqlite3 *db, struct crs_expiry_db **out);
/* Finalizes its statements (before the database closes). NULL is a no-op. */
void crs_expiry_db_free(struct crs_expiry_db *x);

/*
 * Called for each newly stored event inside the commit's transaction: creates, cancels or
 * replaces schedules. body is the packed Event of kind `kind`. Returns 0 or CRS_EDB (the
 * transaction fails as a whole); events it cannot read or that carry no date are skipped.
 */
int crs_expiry_db_ingest(struct crs_expiry_db *x, const struct crs_config *cfg, uint32_t kind,
                         const uint8_t *body, size_t len, int64_t now_ms);

/* The earliest next_due_ms the ingests of the current job set (INT64_MAX when none), then
 * forgotten. Read on the loop once the job committed. */
int64_t crs_expiry_db_take_due(struct crs_expiry_db *x);

/* ---- The loop half ---- */

struct crs_expiry;

int crs_expiry_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                   struct crs_dispatcher *disp, struct crs_expiry **out);
/* Runs a first tick at once (alerts that came due while the broker was down), then on time. */
int crs_expiry_start(struct crs_expiry *x);
/* A reloaded configuration: every active schedule is planned again with its lead times. */
void crs_expiry_set_config(struct crs_expiry *x, const struct crs_config *cfg);
/* A committed event set a schedule due at due_ms: wake earlier if needed. */
void crs_expiry_due(struct crs_expiry *x, int64_t due_ms);
/* Stops; cb runs once the timers are closed and no tick is in the queue. */
void crs_expiry_stop(struct crs_expiry *x, void (*cb)(void *arg), void *arg);
/* Alerts created since the start. */
uint64_t crs_expiry_created(const struct crs_expiry *x);
void crs_expiry_free(struct crs_expiry *x);

#endif
