/*
 * The broker's lifecycle (broker.h): it wires the parts together on one loop.
 *
 *   server (pipe) ----\
 *                      +--> queue (group commit, SQLite) --> Ack/Nack, spool file deletion
 *   spool drain ------/          |   ^
 *                                v   | outcomes
 *                            dispatcher --> sink drivers (file, webhook, email)
 *
 * Stopping runs in the reverse order of the data: the server and the spool drain stop taking
 * work and the dispatcher cancels attempts; once all three are quiet the sinks are closed and the
 * queue commits what is left (the batch in flight is acked if its connection is still there),
 * closes the database, and the last handles close so that uv_run() returns.
 */
#include "broker.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "admin.h"
#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/msgid.h"
#include "certrelay/thread.h"
#include "certrelay/version.h"
#include "dispatch.h"
#include "platform.h"
#include "metrics_http.h"
#include "queue.h"
#include "reconcile.h"
#include "retention.h"
#include "expiry.h"
#include "server.h"
#include "sinks/sink.h"
#include "spooldrain.h"

struct crs_broker {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_sink *sinks;
    size_t nsinks_open;
    struct crs_queue *q;
    struct crs_server *srv;
    struct crs_dispatcher *disp;
    struct crs_spooldrain *sd;
    struct crs_admin *admin;
    struct crs_retention *ret;
    struct crs_reconcile *rec; /* scheduled catch-up */
    struct crs_expiry *exp;    /* expiry and CRL alerts */
    struct crs_metrics_server *metrics;
    /* Configurations loaded by reloads. Kept until the broker is freed: events received under
     * one are routed by index into it, and delivery rows are keyed by its sink names. */
    struct crs_config **configs;
    size_t nconfigs;
    struct broker_reload *reload; /* waiting for the dispatcher's pause */
    int started;
    int stopping;
    int stopped;
    int failed;       /* the background database check found damage: the run's exit status */
    unsigned pending; /* parts still stopping */
    /* Called once everything is closed; crs_broker_run closes its own handles here. */
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
};

struct broker_reload {
    struct crs_broker *b;
    const struct crs_config *cfg;
    struct crs_sink *sinks; /* cfg's sinks, then the removed ones still finishing */
    size_t nsinks;
    size_t nopen;
    size_t nretiring;
    crs_broker_reload_cb done;
    void *arg;
};

static int broker_reload_admin(void *arg, crs_broker_reload_cb done, void *ctx, char *err,
                               size_t errlen);

static int broker_sink_init(struct crs_sink *s, const struct crs_sink_config *sc, uv_loop_t *loop,
                            size_t index)
{
    memset(s, 0, sizeof(*s));
    s->cfg = sc;
    s->driver = crs_sink_driver_find(sc->type->name);
    s->loop = loop;
    s->index = (unsigned)index;
    if (s->driver == NULL) {
        crs_error("sink %s: type %s has no delivery driver in this broker", sc->name,
                  sc->type->name);
        return CRS_ECONFIG;
    }
    return 0;
}

static void broker_sinks_close(struct crs_sink *sinks, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        if (sinks[i].driver->close != NULL)
            sinks[i].driver->close(&sinks[i]);
    }
}

int crs_broker_new(const struct crs_config *cfg, uv_loop_t *loop, struct crs_broker **out)
{
    struct crs_broker *b = NULL;
    size_t i;
    int rc = 0;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (cfg == NULL || loop == NULL || cfg->listen == NULL || cfg->state_dir == NULL ||
        cfg->spool_dir == NULL)
        return CRS_EINVAL;
    b = crs_calloc(1, sizeof(*b));
    if (b == NULL)
        return CRS_ENOMEM;
    crs_metrics_reset();
    b->loop = loop;
    b->cfg = cfg;
    if (cfg->nsinks > 0) {
        b->sinks = crs_calloc(cfg->nsinks, sizeof(b->sinks[0]));
        if (b->sinks == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
    }
    for (i = 0; i < cfg->nsinks; i++) {
        rc = broker_sink_init(&b->sinks[i], &cfg->sinks[i], loop, i);
        if (rc != 0)
            goto cleanup;
    }
    *out = b;
    b = NULL;

cleanup:
    crs_broker_free(b);
    return rc;
}

/* The background check of a large queue database found it damaged (and salvage is off): stop
 * as a start-up check would have refused to start. */
static void broker_check_done(void *arg, int rc)
{
    struct crs_broker *b = arg;

    if (rc == 0)
        return;
    crs_error("stopping: the queue database is damaged (see above)");
    b->failed = rc;
    crs_broker_stop(b);
}

/*
 * Order matters: the listener is bound first (so a second broker is refused before it touches
 * the database, and binding happens before any threadpool work creates files, see
 * crs_listen_bind), then the database (nothing can be acked without it) and accepting, then the
 * sinks, the dispatcher (resuming every pending delivery) and the spool drain. Connections are
 * accepted only once the loop runs, after all of this. On failure the caller still calls
 * crs_broker_stop(), runs the loop until it returns, and frees: the parts already started close
 * their handles that way.
 */
int crs_broker_start(struct crs_broker *b)
{
    const struct crs_config *cfg;
    size_t i;
    int rc;

    if (b == NULL || b->started || b->stopping)
        return CRS_EINVAL;
    b->started = 1;
    cfg = b->cfg;
    crs_info("certrelayd %s starting (configuration %s)", CRS_VERSION,
             cfg->path ? cfg->path : "(none)");

    rc = crs_server_new(b->loop, cfg, &b->srv);
    if (rc != 0)
        goto cleanup;
    rc = crs_server_bind(b->srv);
    if (rc != 0)
        goto cleanup;
    rc = crs_queue_open(b->loop, cfg, &b->q);
    if (rc != 0)
        goto cleanup;
    rc = crs_server_start(b->srv, b->q);
    if (rc != 0)
        goto cleanup;
    for (i = 0; i < cfg->nsinks; i++) {
        rc = b->sinks[i].driver->open(&b->sinks[i]);
        if (rc != 0) {
            crs_error("sink %s: cannot open: %s", cfg->sinks[i].name, crs_strerror(rc));
            goto cleanup;
        }
        b->nsinks_open++;
    }
    rc = crs_dispatcher_new(b->loop, cfg, b->q, b->sinks, &b->disp);
    if (rc != 0)
        goto cleanup;
    rc = crs_dispatcher_start(b->disp);
    if (rc != 0)
        goto cleanup;
    rc = crs_retention_new(b->loop, cfg, b->q, &b->ret);
    if (rc == 0)
        rc = crs_retention_start(b->ret);
    if (rc != 0)
        goto cleanup;
    rc = crs_expiry_new(b->loop, cfg, b->q, b->disp, &b->exp);
    if (rc == 0)
        rc = crs_expiry_start(b->exp);
    if (rc != 0)
        goto cleanup;
    {
        /* The admin channel (the CLI) is served once there is something to report on. */
        struct crs_admin_env env;
        memset(&env, 0, sizeof(env));
        env.loop = b->loop;
        env.cfg = cfg;
        env.q = b->q;
        env.sinks = b->sinks;
        env.disp = b->disp;
        env.retention = b->ret;
        env.started_ms = crs_now_ms();
        env.reload = broker_reload_admin;
        env.reload_arg = b;
        rc = crs_admin_new(&env, &b->admin);
        if (rc != 0)
            goto cleanup;
        crs_server_set_admin(b->srv, b->admin);
    }
    {
        struct crs_metrics_env menv = {b->loop, cfg, b->q, b->sinks, b->ret, crs_now_ms()};
        rc = crs_metrics_server_start(&menv, &b->metrics);
        if (rc != 0)
            goto cleanup;
    }
    rc = crs_spooldrain_new(b->loop, cfg, b->q, &b->sd);
    if (rc != 0)
        goto cleanup;
    rc = crs_spooldrain_start(b->sd);
    if (rc != 0)
        goto cleanup;
    rc = crs_reconcile_new(b->loop, cfg, b->q, &b->rec);
    if (rc == 0)
        rc = crs_reconcile_start(b->rec);
    if (rc != 0)
        goto cleanup;
    {
        const char *ins[2] = {CRS_VERSION, cfg->path ? cfg->path : "(built-in default)"};
        crs_log_event(CRS_LOG_INFO, CRS_MSGID_STARTED, ins, 2, "certrelayd %s started (%s)", ins[0],
                      ins[1]);
    }
    crs_info("broker ready: %zu sink%s", cfg->nsinks, cfg->nsinks == 1 ? "" : "s");
    /* Last, once events are accepted: the check of a large database takes seconds. */
    rc = crs_queue_check_start(b->q, broker_check_done, b);
    if (rc == CRS_ENOENT)
        rc = 0;

cleanup:
    if (rc != 0)
        crs_error("broker failed to start: %s", crs_strerror(rc));
    return rc;
}

static void broker_queue_closed(void *arg)
{
    struct crs_broker *b = arg;

    b->stopped = 1;
    crs_log_event(CRS_LOG_INFO, CRS_MSGID_STOPPED, NULL, 0, "broker stopped");
    if (b->on_stopped != NULL)
        b->on_stopped(b->on_stopped_arg);
}

static void broker_part_stopped(void *arg)
{
    struct crs_broker *b = arg;

    if (--b->pending > 0)
        return;
    broker_sinks_close(b->sinks, b->nsinks_open);
    b->nsinks_open = 0;
    if (b->q != NULL)
        crs_queue_close(b->q, broker_queue_closed, b);
    else
        broker_queue_closed(b);
}

void crs_broker_stop(struct crs_broker *b)
{
    if (b == NULL || b->stopping)
        return;
    b->stopping = 1;
    crs_info("stopping: closing the listener and connections, finishing the commit in flight");
    if (b->reload != NULL) {
        /* The reload waiting for the pause is abandoned: its sinks were never used. */
        struct broker_reload *rs = b->reload;
        broker_sinks_close(rs->sinks, rs->nopen);
        rs->nopen = 0;
        if (rs->done != NULL)
            rs->done(rs->arg, CRS_ECANCELED, "the broker is stopping");
        rs->done = NULL;
    }
    /* One count for ourselves, so a part that stops synchronously cannot finish the sequence
     * before the others have been told. */
    b->pending = 1;
    if (b->srv != NULL) {
        b->pending++;
        crs_server_stop(b->srv, broker_part_stopped, b);
    }
    if (b->sd != NULL) {
        b->pending++;
        crs_spooldrain_stop(b->sd, broker_part_stopped, b);
    }
    if (b->disp != NULL) {
        b->pending++;
        crs_dispatcher_stop(b->disp, broker_part_stopped, b);
    }
    if (b->ret != NULL) {
        b->pending++;
        crs_retention_stop(b->ret, broker_part_stopped, b);
    }
    if (b->exp != NULL) {
        b->pending++;
        crs_expiry_stop(b->exp, broker_part_stopped, b);
    }
    if (b->metrics != NULL) {
        b->pending++;
        crs_metrics_server_stop(b->metrics, broker_part_stopped, b);
    }
    if (b->rec != NULL) {
        b->pending++;
        crs_reconcile_stop(b->rec, broker_part_stopped, b);
    }
    broker_part_stopped(b);
}

void crs_broker_free(struct crs_broker *b)
{
    size_t i;

    if (b == NULL)
        return;
    /* The queue goes first: anything it still holds is answered (and released) by its owner. */
    crs_queue_free(b->q);
    crs_spooldrain_free(b->sd);
    crs_dispatcher_free(b->disp);
    crs_server_free(b->srv);
    crs_admin_free(b->admin);
    crs_retention_free(b->ret);
    crs_reconcile_free(b->rec);
    crs_expiry_free(b->exp);
    crs_metrics_server_free(b->metrics);
    broker_sinks_close(b->sinks, b->nsinks_open);
    crs_free(b->sinks);
    if (b->reload != NULL) {
        broker_sinks_close(b->reload->sinks, b->reload->nopen);
        crs_free(b->reload->sinks);
        crs_free(b->reload);
    }
    for (i = 0; i < b->nconfigs; i++)
        crs_config_free(b->configs[i]);
    crs_free(b->configs);
    crs_free(b);
}

/* ---- Live reconfiguration ---- */

/*
 * The dispatcher has no attempt left in memory: switch every part to the new configuration and
 * sinks, then close the old sinks. Events received until now were routed under the old
 * configuration (and keep those routes); events received from now on use the new one.
 */
static void broker_reload_paused(void *arg)
{
    struct broker_reload *rs = arg;
    struct crs_broker *b = rs->b;
    struct crs_sink *old = b->sinks;
    size_t nold = b->nsinks_open;

    char err[CRS_CONFIG_ERRLEN];
    size_t i;
    int rc = 0;

    b->reload = NULL;
    /* The sinks are opened only now that the old ones are idle: opening a file sink sweeps its
     * directory's temporary files, which must not be the old instance's writes in progress. */
    for (i = 0; i < rs->nsinks && !b->stopping; i++) {
        rc = rs->sinks[i].driver->open(&rs->sinks[i]);
        if (rc != 0) {
            snprintf(err, sizeof(err), "sink %s: cannot open: %s", rs->sinks[i].cfg->name,
                     crs_strerror(rc));
            break;
        }
        rs->nopen++;
    }
    if (b->stopping || rc != 0) {
        broker_sinks_close(rs->sinks, rs->nopen);
        crs_free(rs->sinks);
        if (!b->stopping) {
            const char *ins[1] = {err};
            crs_log_event(CRS_LOG_ERROR, CRS_MSGID_CONFIG_INVALID, ins, 1,
                          "reload: %s; keeping the running configuration", err);
            crs_dispatcher_resume(b->disp, b->sinks, b->nsinks_open);
            if (rs->done != NULL)
                rs->done(rs->arg, rc, err);
        }
        crs_free(rs);
        return;
    }
    b->cfg = rs->cfg;
    b->sinks = rs->sinks;
    b->nsinks_open = rs->nsinks;
    crs_queue_set_config(b->q, b->cfg);
    crs_server_set_config(b->srv, b->cfg);
    crs_spooldrain_set_config(b->sd, b->cfg);
    crs_admin_set_config(b->admin, b->cfg, b->sinks);
    crs_retention_set_config(b->ret, b->cfg);
    crs_reconcile_set_config(b->rec, b->cfg);
    crs_expiry_set_config(b->exp, b->cfg);
    crs_metrics_server_set_config(b->metrics, b->cfg, b->sinks);
    crs_dispatcher_resume(b->disp, b->sinks, b->nsinks_open);
    broker_sinks_close(old, nold);
    crs_free(old);
    crs_log_set_level((enum crs_log_level)b->cfg->log_level);
    crs_log_set_rotation(b->cfg->log_max_size, b->cfg->log_keep);
    {
        char n[24];
        const char *ins[2] = {b->cfg->path, n};
        snprintf(n, sizeof(n), "%zu", b->cfg->nsinks);
        crs_log_event(CRS_LOG_INFO, CRS_MSGID_RELOADED, ins, 2,
                      "configuration reloaded from %s: %zu sink%s%s", b->cfg->path, b->cfg->nsinks,
                      b->cfg->nsinks == 1 ? "" : "s",
                      rs->nretiring ? " (and removed ones finishing their deliveries)" : "");
    }
    if (rs->done != NULL)
        rs->done(rs->arg, 0, NULL);
    crs_free(rs);
}

static int broker_has_sink(const struct crs_config *cfg, const char *name)
{
    size_t i;

    for (i = 0; i < cfg->nsinks; i++) {
        if (strcmp(cfg->sinks[i].name, name) == 0)
            return 1;
    }
    return 0;
}

/* A setting read only at start: a changed value is reported and the running one kept. */
static int broker_keep_setting(const char *what, char **fresh, const char *running)
{
    char *copy;

    if (strcmp(*fresh, running) == 0)
        return 0;
    crs_warn("reload: %s changed from %s to %s; that takes effect only after a restart", what,
             running, *fresh);
    copy = crs_strdup(running);
    if (copy == NULL)
        return CRS_ENOMEM;
    crs_free(*fresh);
    *fresh = copy;
    return 0;
}

/*
 * Builds and opens the sinks of fresh (plus the sinks it removes, which finish the deliveries
 * they already have but get no new events), then pauses the dispatcher; broker_reload_paused
 * switches over once the attempts in flight have finished.
 */
static int broker_reload_start(struct crs_broker *b, struct crs_config *fresh,
                               crs_broker_reload_cb done, void *arg, char *err, size_t errlen)
{
    struct broker_reload *rs = NULL;
    struct crs_config **configs;
    size_t i, n;
    int rc = CRS_ENOMEM;

    if ((fresh->metrics_listen == NULL) != (b->cfg->metrics_listen == NULL) ||
        (fresh->metrics_listen != NULL &&
         strcmp(fresh->metrics_listen, b->cfg->metrics_listen) != 0))
        crs_warn("reload: metrics_listen changed; that takes effect only after a restart");
    if (broker_keep_setting("listen", &fresh->listen, b->cfg->listen) != 0 ||
        broker_keep_setting("state_dir", &fresh->state_dir, b->cfg->state_dir) != 0 ||
        broker_keep_setting("spool_dir", &fresh->spool_dir, b->cfg->spool_dir) != 0)
        goto cleanup;
    rs = crs_calloc(1, sizeof(*rs));
    n = fresh->nsinks;
    for (i = 0; i < b->nsinks_open; i++)
        n += !broker_has_sink(fresh, b->sinks[i].cfg->name);
    if (rs == NULL || (n > 0 && (rs->sinks = crs_calloc(n, sizeof(rs->sinks[0]))) == NULL))
        goto cleanup;
    rs->b = b;
    rs->cfg = fresh;
    rs->done = done;
    rs->arg = arg;
    for (i = 0; i < fresh->nsinks; i++) {
        rc = broker_sink_init(&rs->sinks[i], &fresh->sinks[i], b->loop, i);
        if (rc != 0) {
            snprintf(err, errlen, "sink %s: no delivery driver", fresh->sinks[i].name);
            goto cleanup;
        }
        rs->nsinks++;
    }
    for (i = 0; i < b->nsinks_open; i++) {
        const struct crs_sink_config *sc = b->sinks[i].cfg;
        if (broker_has_sink(fresh, sc->name))
            continue;
        if (i < b->cfg->nsinks)
            crs_info("reload: sink %s removed: it gets no new events and finishes the deliveries "
                     "it already has",
                     sc->name);
        rc = broker_sink_init(&rs->sinks[rs->nsinks], sc, b->loop, rs->nsinks);
        if (rc != 0)
            goto cleanup;
        rs->nsinks++;
        rs->nretiring++;
    }
    rc = CRS_ENOMEM;
    configs = crs_realloc(b->configs, (b->nconfigs + 1) * sizeof(*configs));
    if (configs == NULL)
        goto cleanup;
    b->configs = configs;
    b->configs[b->nconfigs++] = fresh;
    fresh = NULL;
    b->reload = rs;
    rs = NULL;
    crs_dispatcher_pause(b->disp, broker_reload_paused, b->reload);
    rc = 0;

cleanup:
    if (rc == CRS_ENOMEM)
        snprintf(err, errlen, "out of memory");
    if (rs != NULL) {
        broker_sinks_close(rs->sinks, rs->nopen);
        crs_free(rs->sinks);
        crs_free(rs);
    }
    crs_config_free(fresh);
    return rc;
}

int crs_broker_reload(struct crs_broker *b, crs_broker_reload_cb done, void *arg, char *err,
                      size_t errlen)
{
    struct crs_config *fresh = NULL;
    int rc;

    if (err == NULL || errlen == 0)
        return CRS_EINVAL;
    err[0] = '\0';
    if (b == NULL || !b->started || b->stopping || b->disp == NULL) {
        snprintf(err, errlen, "the broker is not running");
        return CRS_EAGAIN;
    }
    if (b->reload != NULL) {
        snprintf(err, errlen, "a reload is already waiting for deliveries in flight to finish");
        return CRS_EAGAIN;
    }
    if (b->cfg->path == NULL || b->cfg->path[0] == '(') {
        snprintf(err, errlen,
                 "the broker runs on its built-in default configuration; there is "
                 "no file to reload");
        return CRS_ENOENT;
    }
    rc = crs_config_load(b->cfg->path, &fresh, err, errlen);
    if (rc == 0)
        rc = broker_reload_start(b, fresh, done, arg, err, errlen);
    if (rc != 0) {
        const char *ins[1] = {err};
        crs_log_event(CRS_LOG_ERROR, CRS_MSGID_CONFIG_INVALID, ins, 1,
                      "reload: %s; keeping the running configuration", err);
    }
    return rc;
}

static int broker_reload_admin(void *arg, crs_broker_reload_cb done, void *ctx, char *err,
                               size_t errlen)
{
    return crs_broker_reload(arg, done, ctx, err, errlen);
}

/* ---- The lifecycle: one run, for the console and the Windows service ---- */

/* Requests another thread sends (crs_broker_request); bits in run->requests. */
#define REQ_STOP   0x1u
#define REQ_RELOAD 0x2u

struct broker_run {
    uv_loop_t loop;
    struct crs_broker *b;
    const struct crs_broker_hooks *hooks;
    const char *log_path; /* reopened on reload; NULL when there is no log file */
    uv_signal_t sigint;
    uv_signal_t sigterm;
#ifndef _WIN32
    uv_signal_t sighup;
#endif
    uv_async_t async;
    uv_timer_t tick;
    unsigned requests;
    int have_sigint, have_sigterm, have_sighup, have_async, have_tick, stopping;
};

/* The running broker crs_broker_request wakes, NULL whenever its loop cannot take a wake-up
 * (before the async handle exists, after it is closed). */
static crs_mutex_t run_lock = CRS_MUTEX_INIT;
static struct broker_run *run_current;

static void run_tick_cb(uv_timer_t *t)
{
    struct broker_run *r = t->data;

    r->hooks->stop_tick(r->hooks->arg);
}

/* Begins the graceful stop once, starting the hooks' progress timer. The timer is unreferenced,
 * so it does not keep the loop alive once the broker has stopped. */
static void run_stop(struct broker_run *r)
{
    if (r->stopping)
        return;
    r->stopping = 1;
    if (r->hooks != NULL && r->hooks->stop_tick != NULL && r->hooks->stop_tick_ms > 0 &&
        uv_timer_init(&r->loop, &r->tick) == 0) {
        r->have_tick = 1;
        r->tick.data = r;
        uv_unref((uv_handle_t *)&r->tick);
        uv_timer_start(&r->tick, run_tick_cb, r->hooks->stop_tick_ms, r->hooks->stop_tick_ms);
    }
    crs_broker_stop(r->b);
}

/* A reload: the log file is reopened (what log rotation by another tool needs), then the
 * configuration file is read again and applied (crs_broker_reload). */
static void run_reload(struct broker_run *r, const char *cause)
{
    char err[CRS_CONFIG_ERRLEN];
    int rc;

    if (r->log_path == NULL) {
        crs_info("%s: no log file to reopen", cause);
    } else {
        crs_log_open_file(NULL);
        rc = crs_log_open_file(r->log_path);
        if (rc != 0)
            crs_warn("cannot reopen the log file %s: %s", r->log_path, crs_strerror(rc));
        crs_info("%s: log file reopened", cause);
    }
    crs_broker_reload(r->b, NULL, NULL, err, sizeof(err));
}

static void run_signal_cb(uv_signal_t *h, int signum)
{
    struct broker_run *r = h->data;

#ifndef _WIN32
    if (signum == SIGHUP) {
        run_reload(r, "SIGHUP");
        return;
    }
#endif
    crs_info("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    run_stop(r);
}

static void run_async_cb(uv_async_t *h)
{
    struct broker_run *r = h->data;
    unsigned req;

    crs_mutex_lock(&run_lock);
    req = r->requests;
    r->requests = 0;
    crs_mutex_unlock(&run_lock);
    if (req & REQ_RELOAD)
        run_reload(r, "parameter change");
    if ((req & REQ_STOP) && !r->stopping) {
        crs_info("stop requested");
        run_stop(r);
    }
}

int crs_broker_request(enum crs_broker_request what)
{
    int rc = CRS_ENOENT;

    if (what != CRS_BROKER_STOP && what != CRS_BROKER_RELOAD)
        return CRS_EINVAL;
    crs_mutex_lock(&run_lock);
    if (run_current != NULL) {
        run_current->requests |= what == CRS_BROKER_STOP ? REQ_STOP : REQ_RELOAD;
        uv_async_send(&run_current->async);
        rc = 0;
    }
    crs_mutex_unlock(&run_lock);
    return rc;
}

/* on_stopped: everything of the broker is closed, so the run's own handles close too and
 * uv_run() returns. */
static void run_close_handles(void *arg)
{
    struct broker_run *r = arg;

    crs_mutex_lock(&run_lock);
    if (run_current == r)
        run_current = NULL;
    crs_mutex_unlock(&run_lock);
    if (r->have_sigint)
        uv_close((uv_handle_t *)&r->sigint, NULL);
    if (r->have_sigterm)
        uv_close((uv_handle_t *)&r->sigterm, NULL);
#ifndef _WIN32
    if (r->have_sighup)
        uv_close((uv_handle_t *)&r->sighup, NULL);
#endif
    if (r->have_async)
        uv_close((uv_handle_t *)&r->async, NULL);
    if (r->have_tick)
        uv_close((uv_handle_t *)&r->tick, NULL);
    r->have_sigint = r->have_sigterm = r->have_sighup = r->have_async = r->have_tick = 0;
}

static void run_walk_cb(uv_handle_t *h, void *arg)
{
    crs_error("internal error: handle of type %s still open at exit",
              uv_handle_type_name(uv_handle_get_type(h)));
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static int run_signal(struct broker_run *r, uv_signal_t *h, int signum)
{
    if (uv_signal_init(&r->loop, h) != 0)
        return 0;
    h->data = r;
    /* Windows has no SIGTERM delivery; the service stops through crs_broker_request instead. */
    uv_signal_start(h, run_signal_cb, signum);
    return 1;
}

/*
 * Sizes the threadpool: one thread for the queue's job, one per concurrent delivery, and a
 * margin for the spool drain, so a burst of slow file writes never delays the commit that acks.
 */
static unsigned run_threads(const struct crs_config *cfg)
{
    unsigned n = 4;
    size_t i;

    for (i = 0; i < cfg->nsinks; i++)
        n += cfg->sinks[i].concurrency;
    return n;
}

int crs_broker_run(const struct crs_config *cfg, const struct crs_broker_hooks *hooks)
{
    struct broker_run *r = NULL;
    const char *log_path;
    int rc, loop_open = 0, log_open = 0;

    if (cfg == NULL)
        return CRS_EINVAL;
    log_path = hooks != NULL && hooks->log_path != NULL ? hooks->log_path : cfg->log_file;
    crs_log_set_level((enum crs_log_level)cfg->log_level);
    crs_log_set_rotation(cfg->log_max_size, cfg->log_keep);
    if (log_path != NULL) {
        rc = crs_log_open_file(log_path);
        if (rc == 0) {
            log_open = 1;
        } else if (hooks == NULL || !hooks->log_optional) {
            crs_error("cannot open log file %s: %s", log_path, crs_strerror(rc));
            return rc;
        } else {
            crs_warn("cannot open the log file %s: %s", log_path, crs_strerror(rc));
        }
    }
    rc = crs_platform_init(run_threads(cfg));
    if (rc != 0)
        crs_warn("platform setup: %s", crs_strerror(rc));

    r = crs_calloc(1, sizeof(*r));
    if (r == NULL) {
        crs_error("out of memory");
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    r->hooks = hooks;
    r->log_path = log_path;
    rc = uv_loop_init(&r->loop);
    if (rc != 0) {
        crs_error("cannot create the event loop: %s", uv_strerror(rc));
        rc = CRS_EIO;
        goto cleanup;
    }
    loop_open = 1;
    rc = crs_broker_new(cfg, &r->loop, &r->b);
    if (rc != 0) {
        crs_error("cannot create the broker: %s", crs_strerror(rc));
        goto cleanup;
    }
    r->b->on_stopped = run_close_handles;
    r->b->on_stopped_arg = r;

    r->have_sigint = run_signal(r, &r->sigint, SIGINT);
    r->have_sigterm = run_signal(r, &r->sigterm, SIGTERM);
#ifndef _WIN32
    r->have_sighup = run_signal(r, &r->sighup, SIGHUP);
#endif
    rc = uv_async_init(&r->loop, &r->async, run_async_cb);
    if (rc != 0) {
        crs_error("cannot create the stop handle: %s", uv_strerror(rc));
        rc = CRS_EIO;
    } else {
        r->have_async = 1;
        r->async.data = r;
        rc = crs_broker_start(r->b);
    }
    if (rc == 0) {
        crs_mutex_lock(&run_lock);
        run_current = r;
        crs_mutex_unlock(&run_lock);
        if (hooks != NULL && hooks->on_running != NULL)
            hooks->on_running(hooks->arg, cfg);
    } else {
        /* The parts already started close their handles through the ordinary stop. */
        r->stopping = 1;
        crs_broker_stop(r->b);
    }
    uv_run(&r->loop, UV_RUN_DEFAULT);
    if (rc == 0 && r->b->failed != 0)
        rc = r->b->failed;

cleanup:
    if (r != NULL) {
        crs_broker_free(r->b);
        r->b = NULL;
        if (loop_open) {
            run_close_handles(r);
            if (uv_loop_close(&r->loop) == UV_EBUSY) {
                uv_walk(&r->loop, run_walk_cb, NULL);
                uv_run(&r->loop, UV_RUN_DEFAULT);
                uv_loop_close(&r->loop);
                if (rc == 0)
                    rc = CRS_EIO;
            }
        }
        crs_free(r);
    }
    if (log_open && (hooks == NULL || hooks->log_path == NULL))
        crs_log_open_file(NULL);
    return rc;
}

int crs_broker_default_config(struct crs_config **out)
{
    char *pipe = NULL, *base = NULL, *spool = NULL, *state = NULL, *drop = NULL, *text = NULL;
    char *log_line = NULL;
    char err[CRS_CONFIG_ERRLEN];
    int rc = CRS_ENOMEM;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    pipe = crs_default_pipe();
    base = crs_default_base_dir();
    spool = crs_default_spool_dir();
    if (pipe == NULL || base == NULL || spool == NULL)
        goto cleanup;
    state = crs_path_join(base, "state");
    drop = crs_path_join(base, "out");
    if (state == NULL || drop == NULL)
        goto cleanup;
#ifdef _WIN32
    {
        /* A service's stderr goes nowhere: the default configuration logs to a file. */
        char *logs = crs_path_join(base, "logs");
        char *file = logs ? crs_path_join(logs, "certrelayd.log") : NULL;
        log_line = file ? crs_asprintf("log_file = %s\n", file) : NULL;
        crs_free(file);
        crs_free(logs);
        if (log_line == NULL)
            goto cleanup;
    }
#else
    log_line = crs_strdup("");
    if (log_line == NULL)
        goto cleanup;
#endif
    text = crs_asprintf("[broker]\n"
                        "listen = %s\n"
                        "state_dir = %s\n"
                        "spool_dir = %s\n"
                        "%s"
                        "\n"
                        "[sink.archive]\n"
                        "type = file\n"
                        "directory = %s\n",
                        pipe, state, spool, log_line, drop);
    if (text == NULL)
        goto cleanup;
    rc = crs_config_load_string("(built-in default configuration)", text, out, err, sizeof(err));
    if (rc != 0)
        crs_error("%s", err);

cleanup:
    crs_free(pipe);
    crs_free(base);
    crs_free(spool);
    crs_free(state);
    crs_free(drop);
    crs_free(log_line);
    crs_free(text);
    return rc;
}
