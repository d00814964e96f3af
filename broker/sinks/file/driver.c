/*
 * The file-drop sink: one set of files per event in a directory.
 *
 *   <dir>/<name>.cer                 certificate events: the DER exactly as certsrv gave it
 *   <dir>/<name>.crl                 crl_issued: base CRL of CA certificate index 0
 *   <dir>/<name>-delta.crl           ... and its delta CRL, when there is one
 *   <dir>/<name>-<i>.crl             ... base (and -<i>-delta.crl) for the other indexes
 *   <dir>/<name>.json                every event: the JSON document (docs/json-schema.md)
 *
 * <name> is the `name` template rendered with file-name escaping, then sanitized as a whole, so
 * whatever a certificate holds, every file lands directly inside <dir>. Events that carry no
 * request (crl_issued, startup, shutdown) get "-<event_id>" appended to <name>: they have no
 * request id to tell them apart, and the default name "{{request_id}}-{{event}}" would otherwise
 * make each CRL overwrite the last. Each file is written
 * atomically (temporary file, fsync, rename, fsync of the directory) on the threadpool; the JSON
 * comes last, so a consumer that waits for it finds the other files complete. A redelivered event
 * rewrites the same names: one set of files per event, however often it is attempted.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "render/json.h"
#include "certrelay/log.h"
#include "certrelay/sanitize.h"
#include "sinks/file/settings.h"
#include "sinks/sink.h"
#include "render/template.h"
#include "certrelay/uuid.h"

/* Longest suffix we append: "-4294967295-delta.crl". */
#define FILE_SUFFIX_MAX 24
#define FILE_NAME_MAX   (CRS_FILENAME_MAX + FILE_SUFFIX_MAX + 1)

struct file_out {
    char name[FILE_NAME_MAX];
    const void *data;
    size_t len;
};

struct file_job {
    uv_work_t req;
    struct crs_sink *sink;
    struct crs_delivery *d;
    struct file_out *outs;
    size_t nouts;
    char *json;
    /* Set before the work runs when the attempt cannot succeed (a bad name): no file written. */
    enum crs_delivery_outcome preset;
    char error[256];
    /* Filled by the worker. */
    int rc;
    size_t failed;
    struct file_job *prev, *next;
};

struct file_sink {
    const struct crs_file_sink_config *fc;
    struct file_job *jobs; /* attempts queued or running, for cancel_all */
};

static void file_job_free(struct file_job *job)
{
    if (job == NULL)
        return;
    crs_free(job->outs);
    crs_free(job->json);
    crs_free(job);
}

/*
 * Removes temporary files a crash left behind (crs_fs_write_atomic names them ".<name>.<r>.tmp").
 * Only at open, before any attempt of ours can be writing one.
 */
static void file_sweep_temps(const struct crs_sink *sink, const char *dir)
{
    uv_fs_t req;
    uv_dirent_t ent;
    size_t removed = 0, n;

    /* A synchronous scandir (no callback): crs_fs_list skips dot files, which these are. */
    if (uv_fs_scandir(sink->loop, &req, dir, 0, NULL) < 0) {
        uv_fs_req_cleanup(&req);
        return;
    }
    while (uv_fs_scandir_next(&req, &ent) != UV_EOF) {
        n = strlen(ent.name);
        if (ent.type != UV_DIRENT_DIR && ent.name[0] == '.' && n > 4 &&
            strcmp(ent.name + n - 4, ".tmp") == 0 && crs_fs_unlink_durable(dir, ent.name) == 0)
            removed++;
    }
    uv_fs_req_cleanup(&req);
    if (removed > 0)
        crs_info("sink %s: removed %zu temporary files left by an interrupted run", sink->cfg->name,
                 removed);
}

static int file_open(struct crs_sink *sink)
{
    const struct crs_file_sink_config *fc = sink->cfg->typed;
    struct file_sink *fs;
    int rc;

    if (fc == NULL || fc->directory == NULL || fc->name == NULL)
        return CRS_EINVAL;
    fs = crs_calloc(1, sizeof(*fs));
    if (fs == NULL)
        return CRS_ENOMEM;
    fs->fc = fc;
    /* A directory that cannot be created now (a share not mounted yet) is not fatal: each
     * attempt creates it again, and failures go through retry and dead-lettering. */
    rc = crs_fs_mkdirs(fc->directory);
    if (rc != 0)
        crs_warn("sink %s: cannot create directory %s: %s; deliveries will be retried",
                 sink->cfg->name, fc->directory, crs_strerror(rc));
    else {
        file_sweep_temps(sink, fc->directory);
        crs_info("sink %s: dropping files into %s", sink->cfg->name, fc->directory);
    }
    sink->impl = fs;
    return 0;
}

/* ---- Threadpool side ---- */

static void file_work(uv_work_t *req)
{
    struct file_job *job = req->data;
    const struct crs_file_sink_config *fc = ((struct file_sink *)job->sink->impl)->fc;
    size_t i;

    if (job->preset != CRS_DELIVERY_OK)
        return;
    job->rc = crs_fs_mkdirs(fc->directory);
    if (job->rc != 0) {
        job->failed = job->nouts;
        return;
    }
    for (i = 0; i < job->nouts; i++) {
        job->rc = crs_fs_write_atomic(fc->directory, job->outs[i].name, job->outs[i].data,
                                      job->outs[i].len);
        if (job->rc != 0) {
            job->failed = i;
            return;
        }
    }
}

/* ---- Loop side ---- */

static void file_after(uv_work_t *req, int status)
{
    struct file_job *job = req->data;
    struct file_sink *fs = job->sink->impl;
    const char *dir = fs->fc->directory;
    struct crs_delivery *d = job->d;
    struct crs_delivery_result r;

    if (job->prev != NULL)
        job->prev->next = job->next;
    else
        fs->jobs = job->next;
    if (job->next != NULL)
        job->next->prev = job->prev;

    memset(&r, 0, sizeof(r));
    r.retry_after_ms = -1;
    if (status == UV_ECANCELED) {
        r.outcome = CRS_DELIVERY_CANCELED;
        snprintf(r.error, sizeof(r.error), "canceled");
    } else if (job->preset != CRS_DELIVERY_OK) {
        r.outcome = job->preset;
        snprintf(r.error, sizeof(r.error), "%s", job->error);
    } else if (job->rc == 0) {
        r.outcome = CRS_DELIVERY_OK;
    } else {
        /* Every write failure is worth retrying: a full disk frees up, a share comes back, a
         * directory replaced by a file gets fixed. Dead-lettering bounds the retries. */
        const char *what = job->failed < job->nouts ? job->outs[job->failed].name : "";
        r.outcome = CRS_DELIVERY_RETRY;
        if (job->rc == CRS_ENOSPC)
            snprintf(r.error, sizeof(r.error), "no space left on device writing %.100s in %.100s",
                     what, dir);
        else if (job->failed >= job->nouts)
            snprintf(r.error, sizeof(r.error), "cannot create directory %.160s: %.60s", dir,
                     crs_strerror(job->rc));
        else
            snprintf(r.error, sizeof(r.error), "cannot write %.80s in %.80s: %.60s", what, dir,
                     crs_strerror(job->rc));
    }
    file_job_free(job);
    d->done(d, &r);
}

static struct file_out *file_add(struct file_job *job, const char *base, const char *suffix,
                                 const void *data, size_t len)
{
    struct file_out *o = &job->outs[job->nouts++];

    snprintf(o->name, sizeof(o->name), "%s%s", base, suffix);
    o->data = data;
    o->len = len;
    return o;
}

/*
 * Works out the file set of one event. The names are decided here, on the loop thread, so the
 * worker only writes bytes that the dispatcher keeps alive until done.
 */
static int file_plan(struct file_job *job, const struct crs_file_sink_config *fc,
                     const Certrelay__V1__Event *ev, const char *base)
{
    uint32_t kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    size_t max = 2 + 2 * ev->n_crls, i;
    char suffix[FILE_SUFFIX_MAX + 1];
    size_t jsonlen = 0;
    int rc;

    job->outs = crs_calloc(max, sizeof(job->outs[0]));
    if (job->outs == NULL)
        return CRS_ENOMEM;
    if (fc->write_der && kind == CRS_EVENT_CRL_ISSUED) {
        for (i = 0; i < ev->n_crls; i++) {
            const Certrelay__V1__CrlInfo *crl = ev->crls[i];
            unsigned idx = crl->has_ca_cert_index ? crl->ca_cert_index : (unsigned)i;

            if (crl->has_raw_crl && crl->raw_crl.len > 0) {
                if (idx == 0)
                    snprintf(suffix, sizeof(suffix), ".crl");
                else
                    snprintf(suffix, sizeof(suffix), "-%u.crl", idx);
                file_add(job, base, suffix, crl->raw_crl.data, crl->raw_crl.len);
            }
            if (crl->has_raw_delta_crl && crl->raw_delta_crl.len > 0) {
                if (idx == 0)
                    snprintf(suffix, sizeof(suffix), "-delta.crl");
                else
                    snprintf(suffix, sizeof(suffix), "-%u-delta.crl", idx);
                file_add(job, base, suffix, crl->raw_delta_crl.data, crl->raw_delta_crl.len);
            }
        }
    } else if (fc->write_der && ev->certificate != NULL && ev->certificate->has_raw_certificate &&
               ev->certificate->raw_certificate.len > 0) {
        file_add(job, base, ".cer", ev->certificate->raw_certificate.data,
                 ev->certificate->raw_certificate.len);
    }
    if (fc->write_json) {
        rc = crs_event_to_json_text(ev, 1, &job->json, &jsonlen);
        if (rc != 0)
            return rc;
        file_add(job, base, ".json", job->json, jsonlen);
    }
    return 0;
}

/* The final, whole-name check: whatever the template and the sanitizer did, the name must be
 * one component. */
static int file_name_safe(const char *name)
{
    if (name[0] == '\0' || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    return strchr(name, '/') == NULL && strchr(name, '\\') == NULL;
}

static int file_deliver(struct crs_sink *sink, struct crs_delivery *d)
{
    struct file_sink *fs = sink->impl;
    struct file_job *job;
    char base[CRS_FILENAME_MAX + 1];
    char *raw = NULL;
    int rc;

    if (fs == NULL || d == NULL || d->event == NULL)
        return CRS_EINVAL;
    job = crs_calloc(1, sizeof(*job));
    if (job == NULL)
        return CRS_ENOMEM;
    job->sink = sink;
    job->d = d;
    job->req.data = job;
    job->preset = CRS_DELIVERY_OK;

    rc = crs_template_render(fs->fc->name, d->event, CRS_ESCAPE_FILENAME, &raw);
    if (rc != 0) {
        job->preset = CRS_DELIVERY_PERMANENT;
        snprintf(job->error, sizeof(job->error), "cannot render the file name template: %s",
                 crs_strerror(rc));
    } else {
        const Certrelay__V1__Event *ev = d->event;

        if (ev->request != NULL && ev->request->has_request_id) {
            crs_sanitize_filename(raw, base, sizeof(base));
        } else {
            /* Room for "-" and the id, which is a validated UUID and so safe as it is. */
            size_t n = crs_sanitize_filename(raw, base, sizeof(base) - CRS_UUID_STRLEN - 1);
            snprintf(base + n, sizeof(base) - n, "-%s", ev->event_id);
        }
        if (!file_name_safe(base)) {
            job->preset = CRS_DELIVERY_PERMANENT;
            snprintf(job->error, sizeof(job->error), "unsafe file name refused");
        } else {
            rc = file_plan(job, fs->fc, d->event, base);
            if (rc != 0) {
                crs_free(raw);
                file_job_free(job);
                return rc;
            }
        }
    }
    crs_free(raw);

    /* Even an attempt decided already goes through the threadpool, so done is never called
     * from inside deliver(). */
    rc = uv_queue_work(sink->loop, &job->req, file_work, file_after);
    if (rc != 0) {
        file_job_free(job);
        return CRS_EINTERNAL;
    }
    job->next = fs->jobs;
    if (fs->jobs != NULL)
        fs->jobs->prev = job;
    fs->jobs = job;
    return 0;
}

static void file_cancel_all(struct crs_sink *sink)
{
    struct file_sink *fs = sink->impl;
    struct file_job *job;

    if (fs == NULL)
        return;
    /* Queued writes are dropped (their done reports CANCELED); a write already running is short
     * and finishes normally. */
    for (job = fs->jobs; job != NULL; job = job->next)
        uv_cancel((uv_req_t *)&job->req);
}

static void file_close(struct crs_sink *sink)
{
    crs_free(sink->impl);
    sink->impl = NULL;
}

const struct crs_sink_driver crs_file_driver = {
    .open = file_open,
    .deliver = file_deliver,
    .cancel_all = file_cancel_all,
    .close = file_close,
};
