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
 * atomically (temporary file, fsync, link or rename, fsync of the directory) on the threadpool; the
 * JSON comes last, so a consumer that waits for it finds the other files complete.
 *
 * Nothing is overwritten. A name whose file exists with other content belongs to another event
 * (two events rendering one name, or names cut at CRS_FILENAME_MAX bytes that agree up to the
 * cut) or to someone else (a file or directory put there): the whole set is then written as
 * "<name>-<event_id>" (the name cut to leave room), and the collision logged. If that is taken
 * too, the delivery fails permanently, loudly, rather than be marked delivered. A redelivered
 * event finds its own files, byte for byte, and leaves them: one set per event, however often it
 * is attempted. The directory's resolved path is taken at start; an attempt that finds it resolving
 * elsewhere (a symbolic link put in its way) fails instead of following it.
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
    char alt[FILE_NAME_MAX]; /* the same file under "<name>-<event_id>"; "" when no fallback */
    const void *data;
    size_t len;
    int created; /* written by this attempt (removed again if the set collides) */
};

struct file_job {
    uv_work_t req;
    struct crs_sink *sink;
    struct crs_delivery *d;
    struct file_out *outs;
    size_t nouts;
    char *json;
    int json_out; /* the last entry of outs is the JSON document, rendered by the worker */
    char alt_base[CRS_FILENAME_MAX + 1]; /* "<name>-<event_id>", or "" when name has the id */
    /* Set before the work runs when the attempt cannot succeed (a bad name): no file written. */
    enum crs_delivery_outcome preset;
    char error[256];
    /* Filled by the worker. */
    int rc;
    size_t failed;
    int used_alt;   /* the set went to the fallback names */
    int collided;   /* both names taken: nothing written */
    int json_rc;    /* rendering the JSON document failed: nothing written */
    char *real_dir; /* the directory's resolved path as this attempt found it */
    struct file_job *prev, *next;
};

struct file_sink {
    const struct crs_file_sink_config *fc;
    struct file_job *jobs; /* attempts queued or running, for cancel_all */
    char *real_dir;        /* the directory resolved at start (or at the first success) */
};

static void file_job_free(struct file_job *job)
{
    if (job == NULL)
        return;
    crs_free(job->outs);
    crs_free(job->json);
    crs_free(job->real_dir);
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
        if (crs_fs_realpath(fc->directory, &fs->real_dir) != 0)
            fs->real_dir = NULL;
        crs_info("sink %s: dropping files into %s", sink->cfg->name, fc->directory);
    }
    sink->impl = fs;
    return 0;
}

/* ---- Threadpool side ---- */

/* 1 when dir/name is free or holds exactly data (this event's own file), 0 when it holds
 * anything else (other bytes, a directory, a link, a FIFO), or a negative code. */
static int file_target_ours(const char *dir, const char *name, const void *data, size_t len)
{
    char *path = crs_path_join(dir, name);
    uint8_t *have = NULL;
    size_t n = 0;
    int rc;

    if (path == NULL)
        return CRS_ENOMEM;
    rc = crs_fs_read_file(path, len + 1, CRS_FS_NOFOLLOW, &have, &n);
    crs_free(path);
    if (rc == CRS_ENOENT)
        return 1;
    if (rc == CRS_EFTYPE || rc == CRS_ETOOBIG)
        return 0;
    if (rc != 0)
        return rc;
    rc = n == len && (len == 0 || memcmp(have, data, len) == 0);
    crs_free(have);
    return rc;
}

/* Removes the files this attempt created, after its set collided half-way. */
static void file_undo(struct file_job *job, const char *dir, int alt)
{
    size_t i;

    for (i = 0; i < job->nouts; i++) {
        if (job->outs[i].created)
            crs_fs_unlink_durable(dir, alt ? job->outs[i].alt : job->outs[i].name);
        job->outs[i].created = 0;
    }
}

/* Writes the set under its names (or the fallback ones): 0, CRS_EEXIST when a name is taken by
 * something else (nothing of ours left behind), or another error (job->failed says where). */
static int file_write_set(struct file_job *job, const char *dir, int alt)
{
    size_t i;
    int rc;

    for (i = 0; i < job->nouts; i++) {
        rc = file_target_ours(dir, alt ? job->outs[i].alt : job->outs[i].name, job->outs[i].data,
                              job->outs[i].len);
        if (rc <= 0) {
            job->failed = i;
            return rc == 0 ? CRS_EEXIST : rc;
        }
    }
    for (i = 0; i < job->nouts; i++) {
        const char *name = alt ? job->outs[i].alt : job->outs[i].name;

        rc = crs_fs_write_new(dir, name, job->outs[i].data, job->outs[i].len);
        if (rc == CRS_EEXIST) {
            /* Ours already (a redelivery, or an earlier attempt cut short): leave it. */
            rc = file_target_ours(dir, name, job->outs[i].data, job->outs[i].len);
            rc = rc == 1 ? 0 : rc == 0 ? CRS_EEXIST : rc;
        } else if (rc == 0) {
            job->outs[i].created = 1;
        }
        if (rc != 0) {
            job->failed = i;
            file_undo(job, dir, alt);
            return rc;
        }
    }
    return 0;
}

static void file_work(uv_work_t *req)
{
    struct file_job *job = req->data;
    struct file_sink *fs = job->sink->impl;
    const struct crs_file_sink_config *fc = fs->fc;

    if (job->preset != CRS_DELIVERY_OK)
        return;
    /* The dispatcher keeps the decoded event alive until done; nothing else touches it now. */
    if (job->json_out) {
        struct file_out *o = &job->outs[job->nouts - 1];
        size_t len = 0;

        job->json_rc = crs_event_to_json_text(job->d->event, 1, &job->json, &len);
        if (job->json_rc != 0) {
            job->rc = job->json_rc;
            job->failed = job->nouts;
            return;
        }
        o->data = job->json;
        o->len = len;
    }
    job->rc = crs_fs_mkdirs(fc->directory);
    if (job->rc == 0)
        job->rc = crs_fs_realpath(fc->directory, &job->real_dir);
    if (job->rc != 0) {
        job->failed = job->nouts;
        return;
    }
    /* fs->real_dir is only written on the loop thread, before or between attempts. */
    if (fs->real_dir != NULL && strcmp(fs->real_dir, job->real_dir) != 0) {
        job->rc = CRS_EFTYPE;
        job->failed = job->nouts;
        return;
    }
    job->rc = file_write_set(job, job->real_dir, 0);
    if (job->rc == CRS_EEXIST && job->nouts > 0 && job->outs[0].alt[0] != '\0') {
        job->used_alt = 1;
        job->rc = file_write_set(job, job->real_dir, 1);
    }
    if (job->rc == CRS_EEXIST)
        job->collided = 1;
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
        if (fs->real_dir == NULL && job->real_dir != NULL) {
            fs->real_dir = job->real_dir; /* the directory did not exist at start */
            job->real_dir = NULL;
        }
        if (job->used_alt)
            crs_warn("sink %s: event %s: %s is taken by another event or file; written as %s",
                     job->sink->cfg->name, d->event->event_id, job->outs[0].name, job->outs[0].alt);
    } else if (job->json_rc != 0) {
        r.outcome = CRS_DELIVERY_RETRY;
        snprintf(r.error, sizeof(r.error), "cannot render the JSON document: %s",
                 crs_strerror(job->json_rc));
    } else if (job->collided) {
        /* Never marked delivered when its files are not on disk as its own. */
        r.outcome = CRS_DELIVERY_PERMANENT;
        snprintf(r.error, sizeof(r.error),
                 "file name collision: %.90s and %.90s both hold another event's or someone "
                 "else's file",
                 job->outs[job->failed].name, job->outs[job->failed].alt);
    } else if (job->rc == CRS_EFTYPE && job->failed >= job->nouts) {
        r.outcome = CRS_DELIVERY_RETRY;
        snprintf(r.error, sizeof(r.error),
                 "drop directory now resolves to %.70s, not %.70s as at start (a symbolic link "
                 "in its way); not following it",
                 job->real_dir ? job->real_dir : "?", fs->real_dir ? fs->real_dir : "?");
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
    if (job->alt_base[0] != '\0')
        snprintf(o->alt, sizeof(o->alt), "%s%s", job->alt_base, suffix);
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
    /* The JSON document is rendered by the worker (file_render_json): for a CRL of tens of MB
     * that takes longer than the write, and on the loop it would hold up every ack meanwhile. */
    if (fc->write_json)
        file_add(job, base, ".json", NULL, 0);
    job->json_out = fc->write_json;
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
            size_t n;
            crs_sanitize_filename(raw, base, sizeof(base));
            /* The fallback for a taken name: cut to leave room for "-" and the id. */
            n = crs_sanitize_filename(raw, job->alt_base,
                                      sizeof(job->alt_base) - CRS_UUID_STRLEN - 1);
            snprintf(job->alt_base + n, sizeof(job->alt_base) - n, "-%s", ev->event_id);
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
    struct file_sink *fs = sink->impl;

    if (fs != NULL)
        crs_free(fs->real_dir);
    crs_free(fs);
    sink->impl = NULL;
}

const struct crs_sink_driver crs_file_driver = {
    .open = file_open,
    .deliver = file_deliver,
    .cancel_all = file_cancel_all,
    .close = file_close,
};
