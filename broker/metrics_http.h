/*
 * The optional metrics endpoint (`metrics_listen = 127.0.0.1:9464`): the counters of metrics.h in
 * the Prometheus text exposition format (version 0.0.4) together with the queue's gauges (depth,
 * oldest pending age, dead letters, database size), read from the queue at each scrape.
 */
#ifndef CERTRELAY_BROKER_METRICS_HTTP_H
#define CERTRELAY_BROKER_METRICS_HTTP_H

#include <stdint.h>
#include <uv.h>
#include <jansson.h>
#include "config/config.h"
#include "metrics.h"
#include "queue.h"
#include "sinks/sink.h"

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
