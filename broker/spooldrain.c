/*
 * The spool drain (see spooldrain.h).
 *
 * Work proceeds in rounds, one at a time, so a file is never picked up twice:
 *   1. read (threadpool): list *.crev, read and decode up to a batch of them; a file that does not
 *      decode is moved to <spool>/bad/ and logged, so it neither blocks the others nor is lost;
 *   2. commit (the queue's group commit, shared with the pipe);
 *   3. delete (threadpool): remove each file whose event is committed.
 * A change noticed during a round (file system event, rescan timer) starts another round after it.
 * A failed commit leaves the files in place and waits for the rescan timer instead of spinning.
 * Temporary files (names beginning with '.') are the stub's writes in progress and are ignored.
 */
#include "spooldrain.h"

#include "certrelay/msgid.h"
#include "metrics.h"

#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "certrelay/log.h"
#include "certrelay/spool.h"
#include "server.h"

struct spool_file {
    struct spool_file *next;
    char *name;
    struct crs_ingest_item *item; /* read by the worker; NULL when the file was skipped */
    int committed;
};

struct crs_spooldrain {
    uv_loop_t *loop;
    const struct crs_config *cfg;
    struct crs_queue *q;
    uv_fs_event_t watch;
    int watch_open;
    uv_timer_t timer;
    int timer_open;
    uv_work_t work;
    int round;  /* a round is in progress (reading, committing or deleting) */
    int rescan; /* something changed while the round ran */
    int more;   /* the round's listing held more files than it took */
    int failed; /* the round's commit failed */
    size_t outstanding;
    size_t bad; /* files moved aside by the round */
    struct spool_file *files;
    int stopping;
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static void sd_round_start(struct crs_spooldrain *sd);

static void sd_files_free(struct spool_file *f)
{
    while (f != NULL) {
        struct spool_file *next = f->next;
        crs_ingest_item_free(f->item);
        crs_free(f->name);
        crs_free(f);
        f = next;
    }
}

static void sd_check_stopped(struct crs_spooldrain *sd)
{
    if (!sd->stopping || sd->watch_open || sd->timer_open || sd->round || sd->stop_cb == NULL)
        return;
    {
        void (*cb)(void *) = sd->stop_cb;
        sd->stop_cb = NULL;
        cb(sd->stop_arg);
    }
}

/* ---- Worker side ---- */

/* Moves a file that cannot be decoded to <spool>/bad/, keeping its name. */
static void sd_move_aside(struct crs_spooldrain *sd, const char *path, const char *name, int why)
{
    char *bad = crs_path_join(sd->cfg->spool_dir, CRS_SPOOLDRAIN_BAD_DIR);
    char *dest = bad ? crs_path_join(bad, name) : NULL;

    if (dest == NULL || crs_fs_mkdirs(bad) != 0 || rename(path, dest) != 0)
        crs_error("spool file %s is corrupt (%s) and could not be moved to %s; it is left in "
                  "place",
                  path, crs_strerror(why), bad ? bad : CRS_SPOOLDRAIN_BAD_DIR);
    else
        crs_error("spool file %s is corrupt (%s); moved to %s", path, crs_strerror(why), dest);
    crs_free(dest);
    crs_free(bad);
}

static int sd_read_one(struct crs_spooldrain *sd, const char *name, struct spool_file *f,
                       size_t *bytes)
{
    Certrelay__V1__Event *ev = NULL;
    uint8_t *body = NULL;
    size_t len = 0;
    char *path;
    int rc;

    path = crs_path_join(sd->cfg->spool_dir, name);
    if (path == NULL)
        return CRS_ENOMEM;
    rc = crs_spool_read(path, &body, &len);
    if (rc == 0)
        rc = crs_event_unpack(body, len, &ev);
    if (rc == 0)
        rc = crs_ingest_item_new(sd->cfg, ev, body, len, &f->item);
    if (rc == 0) {
        *bytes += len;
    } else if (rc == CRS_EPROTO || rc == CRS_ETOOBIG || rc == CRS_EINVAL) {
        sd_move_aside(sd, path, name, rc);
        sd->bad++;
        rc = 0;
    } else if (rc == CRS_ENOENT) {
        rc = 0; /* gone meanwhile (another round's delete, or an administrator) */
    } else {
        crs_warn("cannot read spool file %s: %s; will retry", path, crs_strerror(rc));
        rc = 0;
    }
    crs_event_free(ev);
    crs_free(body);
    crs_free(path);
    return rc;
}

static void sd_read_work(uv_work_t *req)
{
    struct crs_spooldrain *sd = req->data;
    struct spool_file **tail = &sd->files;
    char **names = NULL;
    size_t count = 0, i, taken = 0, bytes = 0;
    int rc;

    rc = crs_fs_list(sd->cfg->spool_dir, CRS_SPOOL_SUFFIX, &names, &count);
    if (rc != 0) {
        if (rc != CRS_ENOENT)
            crs_warn("cannot list spool directory %s: %s", sd->cfg->spool_dir, crs_strerror(rc));
        return;
    }
    for (i = 0; i < count; i++) {
        struct spool_file *f;

        if (names[i][0] == '.')
            continue;
        if (taken >= CRS_SPOOLDRAIN_BATCH || bytes >= CRS_SPOOLDRAIN_BATCH_BYTES) {
            sd->more = 1;
            break;
        }
        f = crs_calloc(1, sizeof(*f));
        if (f == NULL || (f->name = crs_strdup(names[i])) == NULL) {
            crs_free(f);
            sd->more = 1;
            break;
        }
        *tail = f;
        tail = &f->next;
        taken++;
        if (sd_read_one(sd, names[i], f, &bytes) != 0) {
            sd->more = 1;
            break;
        }
    }
    crs_fs_list_free(names);
}

static void sd_delete_work(uv_work_t *req)
{
    struct crs_spooldrain *sd = req->data;
    struct spool_file *f;
    int rc;

    for (f = sd->files; f != NULL; f = f->next) {
        if (!f->committed)
            continue;
        rc = crs_fs_unlink_durable(sd->cfg->spool_dir, f->name);
        if (rc != 0 && rc != CRS_ENOENT)
            crs_warn("cannot delete drained spool file %s: %s (its event is committed; a "
                     "second import is ignored)",
                     f->name, crs_strerror(rc));
    }
}

/* ---- Loop side ---- */

static void sd_round_end(struct crs_spooldrain *sd)
{
    struct spool_file *f;
    size_t n = 0;

    for (f = sd->files; f != NULL; f = f->next)
        n += f->committed;
    if (n > 0) {
        char count[24];
        const char *ins[2] = {count, sd->cfg->spool_dir};
        snprintf(count, sizeof(count), "%zu", n);
        crs_log_event(CRS_LOG_WARN, CRS_MSGID_EVENTS_SPOOLED, ins, 2,
                      "spool: %zu events spooled while the broker was away were received", n);
    }
    if (n > 0 || sd->bad > 0)
        crs_info("spool: drained %zu events from %s%s", n, sd->cfg->spool_dir,
                 sd->bad ? " (corrupt files moved to bad/)" : "");
    sd_files_free(sd->files);
    sd->files = NULL;
    sd->round = 0;
    if (sd->stopping) {
        sd_check_stopped(sd);
        return;
    }
    /* After a failure the files are still there: let the rescan timer retry later. */
    if (!sd->failed && (sd->more || sd->rescan))
        sd_round_start(sd);
}

static void sd_delete_after(uv_work_t *req, int status)
{
    sd_round_end(req->data);
}

static void sd_item_done(struct crs_ingest_item *item, int status, const char *reason)
{
    struct crs_spooldrain *sd = item->owner;
    struct spool_file *f = item->data;

    f->item = NULL;
    f->committed = status == 0;
    if (status == 0)
        crs_metrics_add(CRS_M_SPOOL_DRAINED, 1);
    if (status != 0 && !sd->failed) {
        sd->failed = 1;
        crs_error("spool: events could not be committed (%s); the files stay and are retried",
                  reason ? reason : crs_strerror(status));
    }
    crs_ingest_item_free(item);
    if (--sd->outstanding > 0)
        return;
    if (uv_queue_work(sd->loop, &sd->work, sd_delete_work, sd_delete_after) != 0)
        sd_round_end(sd);
}

static void sd_read_after(uv_work_t *req, int status)
{
    struct crs_spooldrain *sd = req->data;
    struct spool_file *f;

    if (sd->stopping) {
        /* Nothing was committed yet: the files stay for the next start. */
        sd_round_end(sd);
        return;
    }
    sd->outstanding = 0;
    for (f = sd->files; f != NULL; f = f->next)
        sd->outstanding += f->item != NULL;
    if (sd->outstanding == 0) {
        sd_round_end(sd);
        return;
    }
    /* Counted first: the queue may answer an item synchronously (when it is closed). */
    for (f = sd->files; f != NULL; f = f->next) {
        struct crs_ingest_item *item = f->item;
        if (item == NULL)
            continue;
        item->owner = sd;
        item->data = f;
        item->done = sd_item_done;
        crs_queue_ingest(sd->q, item);
    }
}

static void sd_round_start(struct crs_spooldrain *sd)
{
    int rc;

    if (sd->stopping)
        return;
    if (sd->round) {
        sd->rescan = 1;
        return;
    }
    sd->round = 1;
    sd->rescan = sd->more = sd->failed = 0;
    sd->bad = 0;
    sd->work.data = sd;
    rc = uv_queue_work(sd->loop, &sd->work, sd_read_work, sd_read_after);
    if (rc != 0) {
        crs_error("spool: cannot start a drain round: %s", uv_strerror(rc));
        sd->round = 0;
    }
}

static void sd_watch_cb(uv_fs_event_t *h, const char *filename, int events, int status)
{
    struct crs_spooldrain *sd = h->data;

    if (status != 0)
        return;
    /* The stub's temporary files and our own bad/ directory are not work. */
    if (filename != NULL && (filename[0] == '.' || strcmp(filename, CRS_SPOOLDRAIN_BAD_DIR) == 0))
        return;
    sd_round_start(sd);
}

static void sd_timer_cb(uv_timer_t *t)
{
    sd_round_start(t->data);
}

int crs_spooldrain_new(uv_loop_t *loop, const struct crs_config *cfg, struct crs_queue *q,
                       struct crs_spooldrain **out)
{
    struct crs_spooldrain *sd;
    int rc;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (loop == NULL || cfg == NULL || cfg->spool_dir == NULL || q == NULL)
        return CRS_EINVAL;
    sd = crs_calloc(1, sizeof(*sd));
    if (sd == NULL)
        return CRS_ENOMEM;
    sd->loop = loop;
    sd->cfg = cfg;
    sd->q = q;
    rc = uv_timer_init(loop, &sd->timer);
    if (rc != 0) {
        crs_free(sd);
        return crs_from_uv_error(rc);
    }
    sd->timer.data = sd;
    sd->timer_open = 1;
    rc = uv_fs_event_init(loop, &sd->watch);
    if (rc == 0) {
        sd->watch.data = sd;
        sd->watch_open = 1;
    }
    *out = sd;
    return 0;
}

int crs_spooldrain_start(struct crs_spooldrain *sd)
{
    int rc;

    if (sd == NULL || sd->stopping)
        return CRS_EINVAL;
    rc = crs_fs_mkdirs(sd->cfg->spool_dir);
    if (rc != 0) {
        crs_error("cannot create spool directory %s: %s", sd->cfg->spool_dir, crs_strerror(rc));
        return rc;
    }
    if (sd->watch_open) {
        rc = uv_fs_event_start(&sd->watch, sd_watch_cb, sd->cfg->spool_dir, 0);
        if (rc != 0)
            crs_warn("cannot watch spool directory %s (%s); rescanning every %u ms instead",
                     sd->cfg->spool_dir, uv_strerror(rc), CRS_SPOOLDRAIN_RESCAN_MS);
    }
    uv_timer_start(&sd->timer, sd_timer_cb, CRS_SPOOLDRAIN_RESCAN_MS, CRS_SPOOLDRAIN_RESCAN_MS);
    crs_info("spool directory %s", sd->cfg->spool_dir);
    sd_round_start(sd);
    return 0;
}

static void sd_timer_closed(uv_handle_t *h)
{
    struct crs_spooldrain *sd = h->data;

    sd->timer_open = 0;
    sd_check_stopped(sd);
}

static void sd_watch_closed(uv_handle_t *h)
{
    struct crs_spooldrain *sd = h->data;

    sd->watch_open = 0;
    sd_check_stopped(sd);
}

void crs_spooldrain_stop(struct crs_spooldrain *sd, void (*cb)(void *arg), void *arg)
{
    if (sd == NULL || sd->stopping)
        return;
    sd->stopping = 1;
    sd->stop_cb = cb;
    sd->stop_arg = arg;
    if (sd->timer_open)
        uv_close((uv_handle_t *)&sd->timer, sd_timer_closed);
    if (sd->watch_open)
        uv_close((uv_handle_t *)&sd->watch, sd_watch_closed);
    sd_check_stopped(sd);
}

void crs_spooldrain_free(struct crs_spooldrain *sd)
{
    if (sd == NULL)
        return;
    sd_files_free(sd->files);
    crs_free(sd);
}

void crs_spooldrain_set_config(struct crs_spooldrain *sd, const struct crs_config *cfg)
{
    if (sd != NULL && cfg != NULL)
        sd->cfg = cfg;
}
