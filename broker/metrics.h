/*
 * Metrics: counters the broker's parts bump on the loop thread, and an optional HTTP endpoint
 * (`metrics_listen = 127.0.0.1:9464`) serving them in the Prometheus text exposition format
 * (version 0.0.4) together with the queue's gauges (depth, oldest pending age, dead letters,
 * database size), read from the queue at each scrape.
 *
 * The counters are one process-wide set (one broker per process), touched only on the loop
 * thread, so they need no lock; they count from the broker's start.
 */
#ifndef CERTRELAY_BROKER_METRICS_H
#define CERTRELAY_BROKER_METRICS_H

#include <stdint.h>
#include <uv.h>
#include "config/config.h"
#include "queue.h"
#include "sinks/sink.h"

enum crs_metric {
    CRS_M_RECEIVED,      /* events decoded from connections */
    CRS_M_ACKED,         /* Acks sent (committed) */
    CRS_M_NACKED,        /* Nacks sent */
    CRS_M_SPOOL_DRAINED, /* events committed from the spool directory */
    CRS_M_COUNT_
};
enum crs_delivery_metric { CRS_DM_DELIVERED, CRS_DM_RETRY, CRS_DM_DEAD, CRS_DM_COUNT_ };

void crs_metrics_add(enum crs_metric m, uint64_t n);
/* One attempt's outcome for the sink named sink. */
void crs_metrics_delivery(const char *sink, enum crs_delivery_metric outcome);
/* One group commit of nitems events took seconds (from the job's start to its end). */
void crs_metrics_commit(double seconds);
/* Forgets everything (a broker starting again in the same process: the tests). */
void crs_metrics_reset(void);

struct crs_metrics_server;
struct crs_retention;

/* Where the scrape reads its gauges from; everything outlives the server. */
struct crs_metrics_env {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    struct crs_sink *sinks;
    struct crs_retention *retention;
    int64_t started_ms;
};

/* Starts listening on cfg->metrics_listen ("HOST:PORT", "[V6]:PORT"); NULL *out when unset. */
int crs_metrics_server_start(const struct crs_metrics_env *env, struct crs_metrics_server **out);
void crs_metrics_server_set_config(struct crs_metrics_server *m, const struct crs_config *cfg,
                                   struct crs_sink *sinks);
/* Closes the listener and connections; cb once every handle is closed and no scrape waits. */
void crs_metrics_server_stop(struct crs_metrics_server *m, void (*cb)(void *arg), void *arg);
void crs_metrics_server_free(struct crs_metrics_server *m);

/* Renders the exposition text into a fresh string (crs_free): status is the queue's status
 * document (crs_queue_admin_status). Exposed for the unit test of the format. */
char *crs_metrics_render(const struct crs_metrics_env *env, json_t *status, int64_t now_ms);

#endif
