/*
 * The broker's INI configuration (read with config/ini.c). Parsing is kept apart from the runtime:
 * this file knows sections and keys, the broker knows what to do with them.
 *
 *   [broker]                 listen, state_dir, spool_dir, log_file, log_level, max_frame,
 *                            commit_batch_max, ca_account, retention, dead_retention,
 *                            metrics_listen, log_max_size, log_keep, max_connections,
 *                            memory_budget, hello_timeout, frame_timeout, idle_timeout, salvage,
 *                            catchup, catchup_interval, catchup_ca, catchup_csv, dedup_retention
 *   [alerts]                 expiry_warn, expired, crl_warn, expiry_skip_renewed, batch
 *                            (expiry and CRL alerts, broker/expiry.c)
 *   [sink.NAME]              type = file | webhook | email, then common keys (events, templates,
 *                            max_attempts, max_age, backoff_initial, backoff_max, concurrency,
 *                            timeout) and the type's own keys (sinks/<type>/settings.c).
 *
 * Every error is reported as "FILE:LINE: message" with FILE exactly as given.
 */
#ifndef CERTRELAY_BROKER_CONFIG_H
#define CERTRELAY_BROKER_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay/defaults.h"

#define CRS_CONFIG_ERRLEN 512

struct crs_sink_type; /* sinks/sink.h: a type's settings functions and driver */

struct crs_sink_config {
    char *name;                       /* the NAME of [sink.NAME] */
    const struct crs_sink_type *type; /* never NULL once loaded */
    int line;                         /* line of the section header, for later messages */
    uint32_t events;                  /* CRS_EVENT_* mask; default CRS_EVENT_ALL */
    char **templates;                 /* certificate template names or OIDs; NULL = all */
    size_t ntemplates;
    uint32_t max_attempts;      /* default 12 */
    int64_t max_age_ms;         /* default 7d */
    int64_t backoff_initial_ms; /* default 1s */
    int64_t backoff_max_ms;     /* default 10m */
    uint32_t concurrency;       /* parallel deliveries, default 4 */
    int64_t timeout_ms;         /* per attempt, default 30s */
    void *typed;                /* the type's own parsed settings */
};

/* At most this many lead times in expiry_warn and in crl_warn. */
#define CRS_ALERT_STAGES_MAX 8

/* [alerts]: when the broker raises expiring, expired and crl_expiring (broker/expiry.c). */
struct crs_alerts_config {
    int64_t expiry_warn_ms[CRS_ALERT_STAGES_MAX]; /* lead times before notAfter, longest first;
                                                     default 30d, 7d, 1d */
    size_t nexpiry_warn;                          /* 0: `expiry_warn = off` */
    int64_t crl_warn_ms[CRS_ALERT_STAGES_MAX];    /* lead times before nextUpdate; default 1d */
    size_t ncrl_warn;
    int expired;      /* CRS_ALERT_AUTO (on when a sink asks for `expired`), 0 off, 1 on */
    int skip_renewed; /* a renewed certificate's older one does not warn; default true */
    uint32_t batch;   /* alerts created per database turn, default 500 */
};
#define CRS_ALERT_AUTO (-1)

struct crs_config {
    char *path;                /* as given */
    char *listen;              /* pipe name or socket path */
    char *state_dir;           /* holds certrelay.db */
    char *spool_dir;           /* where the stub spools */
    char *log_file;            /* NULL: stderr only */
    char *metrics_listen;      /* HOST:PORT of the Prometheus endpoint; NULL: none */
    uint64_t log_max_size;     /* the log file rotates at this size, default 10 MiB; 0: never */
    uint32_t log_keep;         /* rotated log files kept, default 5 */
    int log_level;             /* enum crs_log_level; default info */
    uint32_t max_frame;        /* default CRS_FRAME_MAX; lower only */
    uint32_t commit_batch_max; /* events per group commit, default 1024 */
    int salvage;               /* run on a damaged queue database (see broker/queue.h) */
    /* The server's bounds (broker/server.h); 0 means the default there. */
    uint32_t max_connections;
    uint32_t memory_budget; /* bytes */
    int64_t hello_timeout_ms;
    int64_t frame_timeout_ms;
    int64_t idle_timeout_ms;
    char *ca_account;           /* Windows: one more account whose clients are admitted (the CA's,
                                  when certsrv does not run as SYSTEM): a SID or DOMAIN\user */
    int64_t retention_ms;       /* delivered events are pruned after it, default 30d */
    int64_t dead_retention_ms;  /* dead-lettered ones after it, default 90d */
    int64_t dedup_retention_ms; /* catch-up dedup keys after it (queue_dedup.c), default 400d */
    /* Scheduled catch-up (broker/reconcile.h): off by default. */
    int catchup;                 /* run at start and every catchup_interval */
    int64_t catchup_interval_ms; /* default 1h */
    char *catchup_ca;            /* the CA config; NULL: the CAs the queue has seen events from */
    char *catchup_csv;           /* read this `certutil -view csv` export instead of the CA
                                    database (the offline path; the only source off Windows) */
    struct crs_alerts_config alerts;
    struct crs_sink_config *sinks;
    size_t nsinks;
};

/*
 * Loads and validates path. On error returns CRS_ECONFIG (or CRS_ENOENT/CRS_ENOMEM) and writes
 * "FILE:LINE: message" into err (LINE 0 when the file cannot be read at all).
 */
int crs_config_load(const char *path, struct crs_config **out, char *err, size_t errlen);
/* Same, from a string; `name` stands for FILE in messages. */
int crs_config_load_string(const char *name, const char *text, struct crs_config **out, char *err,
                           size_t errlen);
void crs_config_free(struct crs_config *cfg);

/* Parses "500ms", "1s", "10m", "2h", "7d" (a bare number means seconds). 0 or CRS_EINVAL. */
int crs_parse_duration_ms(const char *s, int64_t *ms);
/* Parses true/false/yes/no/on/off/1/0. */
int crs_parse_bool(const char *s, int *out);
/* Parses a decimal unsigned integer within [min,max]. */
int crs_parse_u32(const char *s, uint32_t min, uint32_t max, uint32_t *out);
/* Splits a comma-separated list, trimming blanks; NULL-terminated array of fresh strings. */
int crs_split_list(const char *s, char ***out, size_t *count);
void crs_strv_free(char **v);

#endif
