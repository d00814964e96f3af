/*
 * The dispatcher: reads due deliveries from the queue, hands each to its sink's driver, and
 * records the outcome: delivered, retried later with exponential backoff and jitter, or
 * dead-lettered. Which rows are being attempted is known only in memory, so after a crash every
 * interrupted attempt is simply pending again.
 */
#ifndef CERTRELAY_BROKER_DISPATCH_H
#define CERTRELAY_BROKER_DISPATCH_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "queue.h"
#include "sinks/sink.h"

struct crs_dispatcher;

/* sinks: cfg->nsinks opened sinks, owned by the caller and outliving the dispatcher. */
int crs_dispatcher_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                       struct crs_sink *sinks, struct crs_dispatcher **out);
/* Installs the queue hooks and fetches every pending delivery that is due. */
int crs_dispatcher_start(struct crs_dispatcher *d);
/*
 * Stops fetching, cancels attempts in progress and calls cb once none is left (their outcomes
 * are still handed to the queue, which records them before it closes). Call once.
 */
void crs_dispatcher_stop(struct crs_dispatcher *d, void (*cb)(void *arg), void *arg);
/*
 * Live reconfiguration (broker.c): pause stops starting attempts and calls cb once every attempt
 * in memory has finished and its outcome is recorded (none is canceled, so none is sent twice);
 * resume continues with another set of sinks, whose settings are sinks[i].cfg (the rows are
 * matched to sinks by name). cb is called even if the dispatcher is stopped meanwhile.
 */
void crs_dispatcher_pause(struct crs_dispatcher *d, void (*cb)(void *arg), void *arg);
void crs_dispatcher_resume(struct crs_dispatcher *d, struct crs_sink *sinks, size_t nsinks);
/* Fetches due rows again now: rows an administrator made due (retry, replay); while stopping
 * or pausing, re-checks whether that is complete (send-test's attempt ended). NULL: no-op. */
void crs_dispatcher_wake(struct crs_dispatcher *d);
/* Frees the dispatcher after the queue is closed. NULL is a no-op. */
void crs_dispatcher_free(struct crs_dispatcher *d);

/*
 * The retry delay before attempt `attempts + 1`, given that `attempts` attempts have failed:
 * min(backoff_max, backoff_initial * 2^(attempts-1)) with "equal jitter" (half fixed, half
 * random), or the receiver's retry_after_ms (>= 0) capped by backoff_max. rnd is a random
 * 32-bit value. Exposed for unit tests.
 */
int64_t crs_backoff_delay_ms(const struct crs_sink_config *sc, uint32_t attempts,
                             int64_t retry_after_ms, uint32_t rnd);

#endif
