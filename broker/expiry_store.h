/*
 * Expiry and CRL alerts, the worker half (see expiry.h for the whole): the plan of a schedule,
 * the schedules table the queue owns, what a stored event changes in it, and the tick that turns
 * due stages into alert events. The queue calls it inside its jobs; the loop half (expiry.c)
 * submits the ticks.
 */
#ifndef CERTRELAY_BROKER_EXPIRY_STORE_H
#define CERTRELAY_BROKER_EXPIRY_STORE_H

#include <stddef.h>
#include <stdint.h>
#include "config/config.h"

struct sqlite3;

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

/* What one tick did, reported to the loop. */
struct crs_expiry_tick {
    uint32_t processed;  /* schedule rows looked at */
    uint32_t created;    /* alert events stored */
    int64_t next_due_ms; /* earliest active next_due_ms afterwards, or INT64_MAX */
};

/*
 * Runs on the queue's worker, outside a job's transaction: one transaction of its own, so the
 * alerts stored and the stages marked sent commit together. At most cfg->alerts.batch rows;
 * replan plans every active schedule again (a reload).
 */
int crs_expiry_db_tick(struct crs_expiry_db *x, const struct crs_config *cfg, int64_t now_ms,
                       int replan, struct crs_expiry_tick *res);

#endif
