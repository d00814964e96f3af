/*
 * Metrics counters the broker's parts bump on the loop thread; metrics_http.h serves them with
 * the queue's gauges in the Prometheus text format.
 *
 * The counters are one process-wide set (one broker per process), touched only on the loop
 * thread, so they need no lock; they count from the broker's start.
 */
#ifndef CERTRELAY_BROKER_METRICS_H
#define CERTRELAY_BROKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

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
#define CRS_METRICS_SINKS_MAX 256u
#define CRS_METRICS_BUCKETS   12u

/* The upper bounds (seconds) of the commit-latency histogram's buckets. */
extern const double crs_metrics_commit_bounds[CRS_METRICS_BUCKETS];

struct crs_metrics_sink {
    char name[128];
    uint64_t n[CRS_DM_COUNT_];
};

struct crs_metrics_counts {
    uint64_t counters[CRS_M_COUNT_];
    struct crs_metrics_sink sinks[CRS_METRICS_SINKS_MAX];
    size_t nsinks;
    uint64_t commit_buckets[CRS_METRICS_BUCKETS]; /* per bucket; cumulative when rendered */
    uint64_t commit_count;
    double commit_sum;
};

/* The counters, read-only, for the exposition. */
const struct crs_metrics_counts *crs_metrics_counts(void);
/* Forgets everything (a broker starting again in the same process: the tests). */
void crs_metrics_reset(void);

#endif
