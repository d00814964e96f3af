/*
 * Metrics counters (metrics.h): bumped by the broker's parts on the loop thread, read by the
 * Prometheus endpoint (metrics_http.c). A leaf: it knows nothing of the queue or the sinks.
 */
#include "metrics.h"

#include <stdio.h>
#include <string.h>

/* ---- Counters ---- */

const double crs_metrics_commit_bounds[CRS_METRICS_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5};

static struct crs_metrics_counts metrics;

const struct crs_metrics_counts *crs_metrics_counts(void)
{
    return &metrics;
}

void crs_metrics_add(enum crs_metric m, uint64_t n)
{
    if ((unsigned)m < CRS_M_COUNT_)
        metrics.counters[m] += n;
}

void crs_metrics_delivery(const char *sink, enum crs_delivery_metric outcome)
{
    size_t i;

    if (sink == NULL || (unsigned)outcome >= CRS_DM_COUNT_)
        return;
    for (i = 0; i < metrics.nsinks; i++) {
        if (strcmp(metrics.sinks[i].name, sink) == 0)
            break;
    }
    if (i == metrics.nsinks) {
        if (metrics.nsinks == CRS_METRICS_SINKS_MAX)
            return;
        snprintf(metrics.sinks[i].name, sizeof(metrics.sinks[i].name), "%s", sink);
        metrics.nsinks++;
    }
    metrics.sinks[i].n[outcome]++;
}

void crs_metrics_commit(double seconds)
{
    size_t i;

    metrics.commit_count++;
    metrics.commit_sum += seconds;
    for (i = 0; i < CRS_METRICS_BUCKETS; i++) {
        if (seconds <= crs_metrics_commit_bounds[i]) {
            metrics.commit_buckets[i]++;
            break;
        }
    }
}

void crs_metrics_reset(void)
{
    memset(&metrics, 0, sizeof(metrics));
}
