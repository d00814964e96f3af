/*
 * Retention: delivered events (and their delivery rows) are deleted after `retention`,
 * dead-lettered ones after `dead_retention`, in small batches that each take one turn in the
 * queue's lane between group commits, so pruning never holds an Ack up for long. Pages freed are
 * reused and, past a threshold, given back (incremental vacuum; see queue.c).
 */
#ifndef CERTRELAY_BROKER_RETENTION_H
#define CERTRELAY_BROKER_RETENTION_H

#include <uv.h>
#include "config/config.h"
#include "queue.h"

/* Events deleted per batch; a full batch is followed at once by the next one. */
#define CRS_RETENTION_BATCH 1000u
/* How often a round starts: a quarter of the shorter retention, between 1 s and 1 min. */
#define CRS_RETENTION_MIN_PERIOD_MS 1000
#define CRS_RETENTION_MAX_PERIOD_MS 60000

struct crs_retention;

int crs_retention_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                      struct crs_retention **out);
int crs_retention_start(struct crs_retention *r);
/* A reloaded configuration (retention periods) for the next rounds. */
void crs_retention_set_config(struct crs_retention *r, const struct crs_config *cfg);
/* Stops; cb runs once the timer is closed and no batch is in the queue. */
void crs_retention_stop(struct crs_retention *r, void (*cb)(void *arg), void *arg);
/* Events deleted since the start (for status and the metrics). */
uint64_t crs_retention_pruned(const struct crs_retention *r);
void crs_retention_free(struct crs_retention *r);

#endif
