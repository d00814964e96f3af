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

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/version.h"
#include "dispatch.h"
#include "platform.h"
#include "queue.h"
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
    int started;
    int stopping;
    int stopped;
    unsigned pending; /* parts still stopping */
    /* Called once everything is closed; crs_broker_main closes its own handles here. */
    void (*on_stopped)(void *arg);
    void *on_stopped_arg;
};

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
        struct crs_sink *s = &b->sinks[i];
        s->cfg = &cfg->sinks[i];
        s->driver = crs_sink_driver_find(cfg->sinks[i].type->name);
        s->loop = loop;
        s->index = (unsigned)i;
        if (s->driver == NULL) {
            crs_error("sink %s: type %s has no delivery driver in this broker", cfg->sinks[i].name,
                      cfg->sinks[i].type->name);
            rc = CRS_ECONFIG;
            goto cleanup;
        }
    }
    *out = b;
    b = NULL;

cleanup:
    crs_broker_free(b);
    return rc;
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
    rc = crs_spooldrain_new(b->loop, cfg, b->q, &b->sd);
    if (rc != 0)
        goto cleanup;
    rc = crs_spooldrain_start(b->sd);
    if (rc != 0)
        goto cleanup;
    crs_info("broker ready: %zu sink%s", cfg->nsinks, cfg->nsinks == 1 ? "" : "s");

cleanup:
    if (rc != 0)
        crs_error("broker failed to start: %s", crs_strerror(rc));
    return rc;
}

static void broker_queue_closed(void *arg)
{
    struct crs_broker *b = arg;

    b->stopped = 1;
    crs_info("broker stopped");
    if (b->on_stopped != NULL)
        b->on_stopped(b->on_stopped_arg);
}

static void broker_part_stopped(void *arg)
{
    struct crs_broker *b = arg;
    size_t i;

    if (--b->pending > 0)
        return;
    for (i = 0; i < b->nsinks_open; i++) {
        if (b->sinks[i].driver->close != NULL)
            b->sinks[i].driver->close(&b->sinks[i]);
    }
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
    for (i = 0; i < b->nsinks_open; i++) {
        if (b->sinks[i].driver->close != NULL)
            b->sinks[i].driver->close(&b->sinks[i]);
    }
    crs_free(b->sinks);
    crs_free(b);
}

/* ---- The foreground program ---- */

struct broker_main {
    uv_loop_t loop;
    struct crs_broker *b;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_async_t async;
    int have_sigint, have_sigterm, have_async;
};

static void main_signal_cb(uv_signal_t *h, int signum)
{
    struct broker_main *m = h->data;

    crs_info("received %s", signum == SIGINT ? "SIGINT" : "SIGTERM");
    crs_broker_stop(m->b);
}

static void main_async_cb(uv_async_t *h)
{
    struct broker_main *m = h->data;

    crs_info("stop requested");
    crs_broker_stop(m->b);
}

static void main_close_handles(void *arg)
{
    struct broker_main *m = arg;

    if (m->have_sigint)
        uv_close((uv_handle_t *)&m->sigint, NULL);
    if (m->have_sigterm)
        uv_close((uv_handle_t *)&m->sigterm, NULL);
    if (m->have_async)
        uv_close((uv_handle_t *)&m->async, NULL);
    m->have_sigint = m->have_sigterm = m->have_async = 0;
}

static void main_walk_cb(uv_handle_t *h, void *arg)
{
    crs_error("internal error: handle of type %s still open at exit",
              uv_handle_type_name(uv_handle_get_type(h)));
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/*
 * Sizes the threadpool: one thread for the queue's job, one per concurrent delivery, and a
 * margin for the spool drain, so a burst of slow file writes never delays the commit that acks.
 */
static unsigned main_threads(const struct crs_config *cfg)
{
    unsigned n = 4;
    size_t i;

    for (i = 0; i < cfg->nsinks; i++)
        n += cfg->sinks[i].concurrency;
    return n;
}

int crs_broker_main(const struct crs_config *cfg, uv_async_t **stop_async)
{
    struct broker_main *m = NULL;
    int status = 1, rc, loop_open = 0;

    if (stop_async != NULL)
        *stop_async = NULL;
    if (cfg == NULL)
        return 1;
    crs_log_set_level((enum crs_log_level)cfg->log_level);
    if (cfg->log_file != NULL) {
        rc = crs_log_open_file(cfg->log_file);
        if (rc != 0) {
            crs_error("cannot open log file %s: %s", cfg->log_file, crs_strerror(rc));
            return 1;
        }
    }
    rc = crs_platform_init(main_threads(cfg));
    if (rc != 0)
        crs_warn("platform setup: %s", crs_strerror(rc));

    m = crs_calloc(1, sizeof(*m));
    if (m == NULL) {
        crs_error("out of memory");
        goto cleanup;
    }
    rc = uv_loop_init(&m->loop);
    if (rc != 0) {
        crs_error("cannot create the event loop: %s", uv_strerror(rc));
        goto cleanup;
    }
    loop_open = 1;
    rc = crs_broker_new(cfg, &m->loop, &m->b);
    if (rc != 0) {
        crs_error("cannot create the broker: %s", crs_strerror(rc));
        goto cleanup;
    }
    m->b->on_stopped = main_close_handles;
    m->b->on_stopped_arg = m;

    if (uv_signal_init(&m->loop, &m->sigint) == 0) {
        m->have_sigint = 1;
        m->sigint.data = m;
        uv_signal_start(&m->sigint, main_signal_cb, SIGINT);
    }
    if (uv_signal_init(&m->loop, &m->sigterm) == 0) {
        m->have_sigterm = 1;
        m->sigterm.data = m;
        /* Windows has no SIGTERM delivery; the service stops through stop_async instead. */
        uv_signal_start(&m->sigterm, main_signal_cb, SIGTERM);
    }
    if (stop_async != NULL) {
        rc = uv_async_init(&m->loop, &m->async, main_async_cb);
        if (rc != 0) {
            crs_error("cannot create the stop handle: %s", uv_strerror(rc));
            crs_broker_stop(m->b);
        } else {
            m->have_async = 1;
            m->async.data = m;
            *stop_async = &m->async;
        }
    }

    rc = crs_broker_start(m->b);
    status = rc == 0 ? 0 : 1;
    if (rc != 0)
        crs_broker_stop(m->b);
    uv_run(&m->loop, UV_RUN_DEFAULT);
    if (stop_async != NULL)
        *stop_async = NULL;

cleanup:
    if (m != NULL) {
        crs_broker_free(m->b);
        m->b = NULL;
        if (loop_open) {
            main_close_handles(m);
            if (uv_loop_close(&m->loop) == UV_EBUSY) {
                uv_walk(&m->loop, main_walk_cb, NULL);
                uv_run(&m->loop, UV_RUN_DEFAULT);
                uv_loop_close(&m->loop);
                status = 1;
            }
        }
        crs_free(m);
    }
    if (cfg->log_file != NULL)
        crs_log_open_file(NULL);
    return status;
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
