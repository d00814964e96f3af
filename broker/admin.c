/*
 * The admin request handlers (admin.h). Each request becomes one `admin_op`: a queue operation
 * when it needs the database (status, events, show, retry, replay), answered in the op's done
 * callback; reload is answered at once.
 *
 *   status   {}                                  broker, sinks, spool, database
 *   events   {sink, state, kind, since_ms, request_id, serial, limit}
 *   show     {event_id}
 *   retry    {event_ids: [...]} | {sink, dead: true, since_ms}
 *   replay   {sink, since_ms, kind}
 *   reload   {}                                  validates the file, then reloads
 *   catchup-submit {events: [base64, ...]}       stores caught-up events (dedup), per event
 *                                                stored | duplicate | rejected
 *   catchup-check  {events: [base64, ...]}       the same answer without storing (dry run)
 *   catchup-status {}                            the watermark of each CA
 */
#include "admin.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "broker.h"
#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/spool.h"
#include "certrelay/version.h"
#include "dispatch.h"
#include "reconcile.h"
#include "render/json.h"
#include "certrelay/base64.h"
#include "retention.h"
#include "sendtest.h"

/* The largest parameter document accepted (event ids for a retry included); a catch-up batch
 * carries up to CRS_RECONCILE_BATCH_BYTES of events in base64. */
#define ADMIN_PARAMS_MAX         (1024u * 1024u)
#define ADMIN_CATCHUP_PARAMS_MAX (CRS_RECONCILE_BATCH_BYTES / 3u * 4u + 64u * 1024u)

struct crs_admin {
    struct crs_admin_env env;
};

enum admin_cmd {
    CMD_STATUS,
    CMD_EVENTS,
    CMD_SHOW,
    CMD_RETRY,
    CMD_REPLAY,
    CMD_RELOAD,
    CMD_SENDTEST,
    CMD_CATCHUP_SUBMIT,
    CMD_CATCHUP_CHECK,
    CMD_CATCHUP_STATUS
};

static const struct {
    const char *name;
    enum admin_cmd cmd;
} admin_commands[] = {
    {"status", CMD_STATUS},
    {"events", CMD_EVENTS},
    {"show", CMD_SHOW},
    {"retry", CMD_RETRY},
    {"replay", CMD_REPLAY},
    {"reload", CMD_RELOAD},
    {"send-test", CMD_SENDTEST},
    {"catchup-submit", CMD_CATCHUP_SUBMIT},
    {"catchup-check", CMD_CATCHUP_CHECK},
    {"catchup-status", CMD_CATCHUP_STATUS},
};

struct admin_op {
    struct crs_queue_op op; /* first: the queue hands this pointer back */
    struct crs_admin *admin;
    enum admin_cmd cmd;
    json_t *params;
    json_t *result;
    int64_t now_ms;
    crs_admin_reply_cb reply;
    void *ctx;
    char err[512];
};

int crs_admin_new(const struct crs_admin_env *env, struct crs_admin **out)
{
    struct crs_admin *a;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (env == NULL || env->cfg == NULL || env->q == NULL)
        return CRS_EINVAL;
    a = crs_calloc(1, sizeof(*a));
    if (a == NULL)
        return CRS_ENOMEM;
    a->env = *env;
    *out = a;
    return 0;
}

void crs_admin_set_config(struct crs_admin *a, const struct crs_config *cfg, struct crs_sink *sinks)
{
    if (a == NULL || cfg == NULL)
        return;
    a->env.cfg = cfg;
    a->env.sinks = sinks;
}

void crs_admin_free(struct crs_admin *a)
{
    crs_free(a);
}

/* Answers with result (consumed) or an error, then frees the op. */
static void admin_finish(struct admin_op *op, int status, json_t *result)
{
    char *text = NULL;
    size_t len = 0;

    if (status == 0 && (result == NULL || crs_json_dump_compact(result, &text, &len) != 0)) {
        status = CRS_ENOMEM;
        snprintf(op->err, sizeof(op->err), "out of memory");
    }
    if (status != 0 && op->err[0] == '\0')
        snprintf(op->err, sizeof(op->err), "%s", crs_strerror(status));
    op->reply(op->ctx, status, status ? op->err : NULL, status ? NULL : text);
    crs_free(text);
    json_decref(result);
    json_decref(op->params);
    crs_free(op);
}

/* ---- Database operations (on the worker) ---- */

static int admin_op_run(struct crs_queue_op *qop, struct sqlite3 *db, const struct crs_config *cfg)
{
    struct admin_op *op = (struct admin_op *)qop;

    switch (op->cmd) {
    case CMD_CATCHUP_CHECK:
        return crs_queue_admin_catchup_check(db, op->params, &op->result, op->err, sizeof(op->err));
    case CMD_CATCHUP_STATUS:
        return crs_queue_admin_catchup_status(db, &op->result, op->err, sizeof(op->err));
    case CMD_STATUS:
        return crs_queue_admin_status(db, cfg, op->now_ms, &op->result, op->err, sizeof(op->err));
    case CMD_EVENTS:
        return crs_queue_admin_events(db, cfg, op->params, &op->result, op->err, sizeof(op->err));
    case CMD_SHOW:
        return crs_queue_admin_show(db, op->params, &op->result, op->err, sizeof(op->err));
    case CMD_RETRY:
        return crs_queue_admin_retry(db, cfg, op->params, op->now_ms, &op->result, op->err,
                                     sizeof(op->err));
    case CMD_REPLAY:
        return crs_queue_admin_replay(db, cfg, op->params, op->now_ms, &op->result, op->err,
                                      sizeof(op->err));
    default:
        return CRS_EINTERNAL;
    }
}

/* What only the running broker knows, added to the database's part of `status`. */
static int admin_status_live(struct crs_admin *a, json_t *res, int64_t now_ms)
{
    const struct crs_config *cfg = a->env.cfg;
    json_t *broker, *sinks = json_object_get(res, "sinks");
    char **files = NULL;
    size_t i, nfiles = 0;
    int rc;

    broker = crs_json_child(res, "broker", json_object());
    if (broker == NULL || crs_json_put(broker, "version", json_string(CRS_VERSION)) != 0 ||
        crs_json_put(broker, "started_ms", json_integer(a->env.started_ms)) != 0 ||
        crs_json_put(broker, "uptime_ms", json_integer(now_ms - a->env.started_ms)) != 0 ||
        crs_json_put(broker, "config", cfg->path ? json_string(cfg->path) : json_null()) != 0 ||
        crs_json_put(broker, "listen", json_string(cfg->listen)) != 0 ||
        crs_json_put(broker, "state_dir", json_string(cfg->state_dir)) != 0 ||
        crs_json_put(broker, "spool_dir", json_string(cfg->spool_dir)) != 0)
        return CRS_ENOMEM;
    for (i = 0; i < cfg->nsinks && i < json_array_size(sinks); i++) {
        if (crs_json_put(json_array_get(sinks, i), "in_flight",
                         json_integer(a->env.sinks ? a->env.sinks[i].inflight : 0)) != 0)
            return CRS_ENOMEM;
    }
    {
        json_t *db = json_object_get(res, "database");
        if (crs_json_put(db, "retention_ms", json_integer(cfg->retention_ms)) != 0 ||
            crs_json_put(db, "dead_retention_ms", json_integer(cfg->dead_retention_ms)) != 0 ||
            crs_json_put(db, "pruned",
                         json_integer((json_int_t)crs_retention_pruned(a->env.retention))) != 0)
            return CRS_ENOMEM;
    }
    rc = crs_fs_list(cfg->spool_dir, CRS_SPOOL_SUFFIX, &files, &nfiles);
    crs_fs_list_free(files);
    return crs_json_put(res, "spool_files",
                        rc == 0 ? json_integer((json_int_t)nfiles) : json_null());
}

static void admin_op_done(struct crs_queue_op *qop, int status)
{
    struct admin_op *op = (struct admin_op *)qop;
    json_t *result = op->result;

    op->result = NULL;
    if (status == CRS_ECANCELED && op->err[0] == '\0')
        snprintf(op->err, sizeof(op->err), "the broker is stopping");
    if (status == 0 && op->cmd == CMD_STATUS) {
        status = admin_status_live(op->admin, result, crs_now_ms());
        if (status != 0)
            snprintf(op->err, sizeof(op->err), "out of memory");
    }
    /* Rows a retry or replay made due are fetched by the job that ran it only if the dispatcher
     * asked for a fetch then; wake it so they are attempted now either way. */
    if (status == 0 && (op->cmd == CMD_RETRY || op->cmd == CMD_REPLAY)) {
        json_int_t rows = json_integer_value(json_object_get(result, "rows"));
        crs_info("admin: %s made %lld deliveries due", op->cmd == CMD_RETRY ? "retry" : "replay",
                 (long long)rows);
        crs_dispatcher_wake(op->admin->env.disp);
    }
    admin_finish(op, status, status == 0 ? result : NULL);
    if (status != 0)
        json_decref(result);
}

/* ---- Requests answered on the loop thread ---- */

/* The reload has been applied (status 0) or abandoned: answer the administrator. */
static void admin_reload_done(void *ctx, int status, const char *error)
{
    struct admin_op *op = ctx;

    if (status != 0) {
        snprintf(op->err, sizeof(op->err), "%s", error ? error : crs_strerror(status));
        admin_finish(op, status, NULL);
        return;
    }
    admin_finish(
        op, 0,
        json_pack("{ss}", "config", op->admin->env.cfg->path ? op->admin->env.cfg->path : ""));
}

/*
 * reload: what SIGHUP does, answered once the new configuration is in effect, or with the
 * file's "FILE:LINE: message" when it has an error (the running configuration is kept).
 */
static void admin_reload(struct admin_op *op)
{
    int rc;

    if (op->admin->env.reload == NULL) {
        admin_finish(op, CRS_ENOTSUP, NULL);
        return;
    }
    rc = op->admin->env.reload(op->admin->env.reload_arg, admin_reload_done, op, op->err,
                               sizeof(op->err));
    if (rc != 0)
        admin_finish(op, rc, NULL);
}

static void admin_sendtest_done(void *ctx, int status, json_t *result)
{
    struct admin_op *op = ctx;

    /* The outcome is the answer either way; a failed delivery is exit code 1 in the CLI, with
     * the result still printed, so it goes back as a result with "ok": false. */
    if (result != NULL)
        json_object_set_new(result, "ok", json_boolean(status == 0));
    admin_finish(op, result != NULL ? 0 : CRS_ENOMEM, result);
}

/* send-test: one marked test event through the sink's real path (sendtest.c). */
static void admin_sendtest(struct admin_op *op)
{
    const char *name = json_string_value(json_object_get(op->params, "sink"));
    const struct crs_config *cfg = op->admin->env.cfg;
    size_t i;
    int rc;

    for (i = 0; name != NULL && i < cfg->nsinks; i++) {
        if (strcmp(cfg->sinks[i].name, name) == 0)
            break;
    }
    if (name == NULL || i == cfg->nsinks) {
        snprintf(op->err, sizeof(op->err), "no sink '%s' in the running configuration",
                 name ? name : "(none given)");
        admin_finish(op, CRS_ENOENT, NULL);
        return;
    }
    rc = crs_sendtest_start(&op->admin->env.sinks[i], op->admin->env.disp, NULL,
                            admin_sendtest_done, op, op->err, sizeof(op->err));
    if (rc != 0)
        admin_finish(op, rc, NULL);
}

static void admin_catchup_done(struct crs_reconcile_batch *b, void *arg)
{
    struct admin_op *op = arg;
    json_t *arr = json_array(), *res = NULL;
    size_t i;

    for (i = 0; arr != NULL && i < b->n; i++) {
        const struct crs_reconcile_result *r = &b->res[i];
        json_t *o = json_pack("{s:s, s:I, s:s?, s:s, s:s?}", "event_id", r->event_id, "request_id",
                              (json_int_t)r->request_id, "kind", crs_event_name(r->kind), "outcome",
                              crs_reconcile_outcome_name(r->outcome), "reason",
                              r->outcome == CRS_RECONCILE_REJECTED ? r->reason : NULL);
        if (o == NULL || json_array_append_new(arr, o) != 0) {
            json_decref(arr);
            arr = NULL;
        }
    }
    if (arr != NULL)
        res =
            json_pack("{s:o, s:I, s:I, s:I}", "results", arr, "stored", (json_int_t)b->stored,
                      "duplicates", (json_int_t)b->duplicates, "rejected", (json_int_t)b->rejected);
    if (b->stored > 0)
        crs_info("admin: catch-up stored %llu events (%llu duplicates, %llu rejected)",
                 (unsigned long long)b->stored, (unsigned long long)b->duplicates,
                 (unsigned long long)b->rejected);
    crs_reconcile_batch_free(b);
    admin_finish(op, res != NULL ? 0 : CRS_ENOMEM, res);
}

/* catchup-submit: the CLI's batch of caught-up events through the commit path (reconcile.c). */
static void admin_catchup_submit(struct admin_op *op)
{
    json_t *events = crs_reconcile_param_events(op->params, op->err, sizeof(op->err)), *v;
    struct crs_reconcile_batch *b = NULL;
    size_t i, bytes = 0;
    int rc;

    if (events == NULL) {
        admin_finish(op, CRS_EINVAL, NULL);
        return;
    }
    rc = crs_reconcile_batch_new(json_array_size(events), &b);
    json_array_foreach(events, i, v)
    {
        uint8_t *raw = NULL;
        size_t rawlen = 0;
        if (rc != 0)
            break;
        if (!json_is_string(v) || crs_base64_decode(json_string_value(v), &raw, &rawlen) != 0) {
            /* Recorded as rejected like any event that does not decode. */
            rc = crs_reconcile_batch_add(b, op->admin->env.cfg, (const uint8_t *)"", 0);
            continue;
        }
        bytes += rawlen;
        if (bytes > CRS_RECONCILE_BATCH_BYTES) {
            crs_free(raw);
            snprintf(op->err, sizeof(op->err), "the batch exceeds %u bytes of events",
                     CRS_RECONCILE_BATCH_BYTES);
            rc = CRS_ETOOBIG;
            break;
        }
        rc = crs_reconcile_batch_add(b, op->admin->env.cfg, raw, rawlen);
        crs_free(raw);
    }
    if (rc != 0) {
        crs_reconcile_batch_free(b);
        admin_finish(op, rc, NULL);
        return;
    }
    crs_reconcile_batch_submit(b, op->admin->env.q, admin_catchup_done, op);
}

void crs_admin_request(struct crs_admin *a, const char *command, const char *params_json,
                       crs_admin_reply_cb reply, void *ctx)
{
    struct admin_op *op;
    json_error_t jerr;
    size_t i;

    if (reply == NULL)
        return;
    if (a == NULL || command == NULL) {
        reply(ctx, CRS_EINVAL, "invalid admin request", NULL);
        return;
    }
    op = crs_calloc(1, sizeof(*op));
    if (op == NULL) {
        reply(ctx, CRS_ENOMEM, "out of memory", NULL);
        return;
    }
    op->admin = a;
    op->reply = reply;
    op->ctx = ctx;
    op->now_ms = crs_now_ms();
    for (i = 0; i < sizeof(admin_commands) / sizeof(admin_commands[0]); i++) {
        if (strcmp(admin_commands[i].name, command) == 0)
            break;
    }
    if (i == sizeof(admin_commands) / sizeof(admin_commands[0])) {
        snprintf(op->err, sizeof(op->err), "unknown admin command '%.64s'", command);
        admin_finish(op, CRS_ENOTSUP, NULL);
        return;
    }
    op->cmd = admin_commands[i].cmd;
    if (params_json != NULL && params_json[0] != '\0') {
        size_t max = (op->cmd == CMD_CATCHUP_SUBMIT || op->cmd == CMD_CATCHUP_CHECK)
                         ? ADMIN_CATCHUP_PARAMS_MAX
                         : ADMIN_PARAMS_MAX;
        if (strlen(params_json) > max) {
            snprintf(op->err, sizeof(op->err), "parameters exceed %zu bytes", max);
            admin_finish(op, CRS_ETOOBIG, NULL);
            return;
        }
        op->params = json_loads(params_json, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(op->params)) {
            snprintf(op->err, sizeof(op->err), "parameters are not a JSON object: %s", jerr.text);
            admin_finish(op, CRS_EINVAL, NULL);
            return;
        }
    } else {
        op->params = json_object();
        if (op->params == NULL) {
            admin_finish(op, CRS_ENOMEM, NULL);
            return;
        }
    }
    crs_debug("admin: %s", command);
    if (op->cmd == CMD_RELOAD) {
        admin_reload(op);
        return;
    }
    if (op->cmd == CMD_SENDTEST) {
        admin_sendtest(op);
        return;
    }
    if (op->cmd == CMD_CATCHUP_SUBMIT) {
        admin_catchup_submit(op);
        return;
    }
    op->op.run = admin_op_run;
    op->op.done = admin_op_done;
    crs_queue_submit(a->env.q, &op->op);
}
