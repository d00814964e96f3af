/*
 * The spool drain: moves events the stub left in the spool directory (because the broker was
 * away, slow or refused them) into the queue, through the same group commit as the pipe, and
 * deletes each file only after its event is committed. It drains at start, whenever the
 * directory changes, and on a periodic rescan (file system notifications can be missed).
 */
#ifndef CERTRELAY_BROKER_SPOOLDRAIN_H
#define CERTRELAY_BROKER_SPOOLDRAIN_H

#include <uv.h>
#include "config/config.h"
#include "queue.h"

/* Files read per round, and bytes; the rest waits for the next round. */
#define CRS_SPOOLDRAIN_BATCH       512u
#define CRS_SPOOLDRAIN_BATCH_BYTES (64u * 1024u * 1024u)
/* The safety-net rescan period. */
#define CRS_SPOOLDRAIN_RESCAN_MS 5000u
/* Where corrupt or unreadable spool entries are moved (below spool_dir); never deleted. */
#define CRS_SPOOLDRAIN_BAD_DIR "bad"
/* Entries examined per round beyond the batch (unreadable ones are quarantined as they are met,
 * so they never fill a batch), entries that could not even be moved aside and are skipped from
 * then on (their names are remembered), and quarantine lines logged per round before a
 * summary line. */
#define CRS_SPOOLDRAIN_SCAN_MAX  4096u
#define CRS_SPOOLDRAIN_SKIP_MAX  4096u
#define CRS_SPOOLDRAIN_LOG_LINES 16u

struct crs_spooldrain;

int crs_spooldrain_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                       struct crs_spooldrain **out);
/* Creates the spool directory if needed, starts watching it and drains what is there. */
int crs_spooldrain_start(struct crs_spooldrain *sd);
/* Stops watching; cb runs once the round in progress has finished (its events committed and
 * their files deleted) and every handle is closed. */
void crs_spooldrain_stop(struct crs_spooldrain *sd, void (*cb)(void *arg), void *arg);
/* A reloaded configuration for the events of later rounds (spool_dir is not re-read). */
void crs_spooldrain_set_config(struct crs_spooldrain *sd, const struct crs_config *cfg);
/* NULL is a no-op. */
void crs_spooldrain_free(struct crs_spooldrain *sd);

#endif
