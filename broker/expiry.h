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

struct crs_queue;
struct crs_dispatcher;

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
