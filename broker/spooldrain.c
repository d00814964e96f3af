/*
 * The spool drain (see spooldrain.h).
 *
 * Work proceeds in rounds, one at a time, so a file is never picked up twice:
 *   1. read (threadpool): list *.crev, read and decode up to a batch of them; an entry that does
 *      not decode, or cannot be read as a regular file (a FIFO, a device, a directory, a symbolic
 *      link: spool files are never links), is moved to <spool>/bad/ and logged, so it neither
 *      blocks the others nor is lost. Files are opened without blocking. Such entries do not count
 *      towards the batch; one that cannot even be moved is remembered and skipped afterwards, so
 *      hostile entries can neither stall the drain nor make it spin;
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
#include <stdlib.h>
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
    int conflict; /* its event id belongs to a different stored event: moved aside */
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
    size_t bad;   /* entries moved aside by the round */
    size_t stuck; /* entries the round could neither read nor move aside */
    char **skip;  /* sorted names of such entries (worker side only) */
    size_t nskip;
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

static int sd_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int sd_skipped(const struct crs_spooldrain *sd, const char *name)
{
    return sd->nskip > 0 &&
           bsearch(&name, sd->skip, sd->nskip, sizeof(char *), sd_cmp_names) != NULL;
}

/* Remembers an entry that can be neither read nor moved, so later rounds step over it. */
static void sd_skip_add(struct crs_spooldrain *sd, const char *name)
{
    char **grown, *copy;

    if (sd->nskip >= CRS_SPOOLDRAIN_SKIP_MAX || sd_skipped(sd, name))
        return;
    copy = crs_strdup(name);
    grown = crs_realloc(sd->skip, (sd->nskip + 1) * sizeof(char *));
    if (copy == NULL || grown == NULL) {
        crs_free(copy);
        if (grown != NULL)
            sd->skip = grown;
        return;
    }
    sd->skip = grown;
    sd->skip[sd->nskip++] = copy;
    qsort(sd->skip, sd->nskip, sizeof(char *), sd_cmp_names);
}

/* Forgets remembered entries that are gone from the listing (names, sorted). */
static void sd_skip_prune(struct crs_spooldrain *sd, char **names, size_t count)
{
    size_t i, kept = 0;

    for (i = 0; i < sd->nskip; i++) {
        if (bsearch(&sd->skip[i], names, count, sizeof(char *), sd_cmp_names) != NULL)
            sd->skip[kept++] = sd->skip[i];
        else
            crs_free(sd->skip[i]);
    }
    sd->nskip = kept;
}

/* Moves an entry that cannot be used to <spool>/bad/, keeping its name (a link is moved as a
 * link, never followed). The first few per round are logged one by one, the rest summarized. */
static void sd_move_aside(struct crs_spooldrain *sd, const char *path, const char *name, int why)
{
    char *bad = crs_path_join(sd->cfg->spool_dir, CRS_SPOOLDRAIN_BAD_DIR);
    char *dest = bad ? crs_path_join(bad, name) : NULL;
    int loud = sd->bad + sd->stuck < CRS_SPOOLDRAIN_LOG_LINES;
    const char *what = why == CRS_EPROTO || why == CRS_ETOOBIG || why == CRS_EINVAL
                           ? "is corrupt"
                           : "cannot be used";

    if (dest == NULL || crs_fs_mkdirs(bad) != 0 || rename(path, dest) != 0) {
        if (loud)
            crs_error("spool entry %s %s (%s) and could not be moved to %s; it is left in place "
                      "and skipped from now on",
                      path, what, crs_strerror(why), bad ? bad : CRS_SPOOLDRAIN_BAD_DIR);
        sd_skip_add(sd, name);
        sd->stuck++;
    } else {
        if (loud)
            crs_error("spool entry %s %s (%s); moved to %s", path, what, crs_strerror(why), dest);
        sd->bad++;
    }
    crs_free(dest);
    crs_free(bad);
}

/* Reads one entry: 1 when it gave an event (f->item), 0 when it was skipped or moved aside, or a
 * negative code that ends the round (out of memory). */
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
    /* Only the broker raises alert kinds (expiry.c): a spool file claiming one is forged. */
    if (rc == 0 && ((uint32_t)ev->kind & CRS_EVENT_ALERTS) != 0)
        rc = CRS_EPROTO;
    if (rc == 0)
        rc = crs_ingest_item_new(sd->cfg, ev, body, len, &f->item);
    if (rc == 0) {
        *bytes += len;
        rc = 1;
    } else if (rc == CRS_ENOENT) {
        rc = 0; /* gone meanwhile (another round's delete, or an administrator) */
    } else if (rc != CRS_ENOMEM) {
        /* Corrupt, not a regular file, unreadable (permissions, I/O error): retrying every
         * round would only repeat the failure and its log line. Aside, it is kept for a human. */
        sd_move_aside(sd, path, name, rc);
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
    struct spool_file *f = NULL;
    char **names = NULL;
    size_t count = 0, i, taken = 0, scanned = 0, bytes = 0;
    int rc;

    rc = crs_fs_list(sd->cfg->spool_dir, CRS_SPOOL_SUFFIX, &names, &count);
    if (rc != 0) {
        if (rc != CRS_ENOENT)
            crs_warn("cannot list spool directory %s: %s", sd->cfg->spool_dir, crs_strerror(rc));
        return;
    }
    sd_skip_prune(sd, names, count);
    for (i = 0; i < count; i++) {
        if (names[i][0] == '.' || sd_skipped(sd, names[i]))
            continue;
        if (taken >= CRS_SPOOLDRAIN_BATCH || bytes >= CRS_SPOOLDRAIN_BATCH_BYTES ||
            scanned >= CRS_SPOOLDRAIN_BATCH + CRS_SPOOLDRAIN_SCAN_MAX) {
            sd->more = 1;
            break;
        }
        if (f == NULL) {
            f = crs_calloc(1, sizeof(*f));
            if (f == NULL) {
                sd->more = 1;
                break;
            }
        }
        scanned++;
        rc = sd_read_one(sd, names[i], f, &bytes);
        if (rc < 0) {
            sd->more = 1;
            break;
        }
        if (rc == 0)
            continue; /* f is reused for the next entry */
        f->name = crs_strdup(names[i]);
        if (f->name == NULL) {
            sd->more = 1;
            break;
        }
        *tail = f;
        tail = &f->next;
        f = NULL;
        taken++;
    }
    sd_files_free(f);
    crs_fs_list_free(names);
}

static void sd_delete_work(uv_work_t *req)
{
    struct crs_spooldrain *sd = req->data;
    struct spool_file *f;
    int rc;

    for (f = sd->files; f != NULL; f = f->next) {
        if (f->conflict) {
            char *path = crs_path_join(sd->cfg->spool_dir, f->name);
            if (path != NULL)
                sd_move_aside(sd, path, f->name, CRS_EEXIST);
            crs_free(path);
            continue;
        }
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
    if (n > 0 || sd->bad > 0 || sd->stuck > 0)
        crs_info("spool: drained %zu events from %s; %zu unusable entries moved to %s/, %zu left "
                 "in place and skipped",
                 n, sd->cfg->spool_dir, sd->bad, CRS_SPOOLDRAIN_BAD_DIR, sd->stuck);
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
    /* Refused on its own (its id is another event's): kept aside for a human, not retried. */
    f->conflict = status == CRS_EEXIST;
    if (status != 0 && !f->conflict && !sd->failed) {
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
    sd->bad = sd->stuck = 0;
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
    while (sd->nskip > 0)
        crs_free(sd->skip[--sd->nskip]);
    crs_free(sd->skip);
    crs_free(sd);
}

void crs_spooldrain_set_config(struct crs_spooldrain *sd, const struct crs_config *cfg)
{
    if (sd != NULL && cfg != NULL)
        sd->cfg = cfg;
}
