/*
 * The spool (include/certrelay/spool.h): a directory of "<event_id>.crev" files, each one frame.
 *
 *   <spool_dir>/0193a1f2-7c4e-7b1a-9d3e-5f6a7b8c9d0e.crev
 *       00 00 01 2c | 12 a9 02 0a 24 30 31 39 33 ...   (length | Envelope{event})
 *
 * The event id is validated as a UUID before it becomes a file name, so a hostile id can never
 * escape the directory.
 */
#include <stdio.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/fs.h"
#include "certrelay/spool.h"
#include "certrelay/uuid.h"

int crs_spool_write(const char *dir, const char *event_id, const uint8_t *event_bytes, size_t len)
{
    char name[CRS_UUID_STRLEN + sizeof(CRS_SPOOL_SUFFIX)];
    uint8_t *frame = NULL;
    size_t flen = 0;
    int rc;

    if (dir == NULL || event_bytes == NULL || len == 0 || !crs_uuid_valid(event_id))
        return CRS_EINVAL;
    snprintf(name, sizeof(name), "%s%s", event_id, CRS_SPOOL_SUFFIX);
    rc = crs_frame_event_packed(event_bytes, len, &frame, &flen);
    if (rc != 0)
        goto cleanup;
    rc = crs_fs_mkdirs(dir);
    if (rc != 0)
        goto cleanup;
    rc = crs_fs_write_atomic(dir, name, frame, flen);

cleanup:
    crs_free(frame);
    return rc;
}

int crs_spool_read(const char *path, uint8_t **event_bytes, size_t *len)
{
    struct crs_frame_reader reader;
    Certrelay__V1__Envelope *env = NULL;
    const uint8_t *payload;
    uint8_t *data = NULL;
    size_t dlen = 0, plen;
    int rc;

    if (event_bytes != NULL)
        *event_bytes = NULL;
    if (len != NULL)
        *len = 0;
    if (path == NULL || event_bytes == NULL || len == NULL)
        return CRS_EINVAL;
    crs_frame_reader_init(&reader, CRS_FRAME_MAX);
    /* Spool files are regular files the stub wrote: a link, FIFO or device is refused. */
    rc = crs_fs_read_file(path, CRS_FRAME_MAX + CRS_FRAME_HEADER, CRS_FS_NOFOLLOW, &data, &dlen);
    if (rc != 0)
        goto cleanup;
    rc = crs_frame_reader_feed(&reader, data, dlen);
    if (rc != 0)
        goto cleanup;
    rc = crs_frame_reader_next(&reader, &payload, &plen);
    if (rc <= 0) {
        rc = rc == 0 ? CRS_EPROTO : rc; /* a truncated file is corrupt */
        goto cleanup;
    }
    if (crs_frame_reader_pending(&reader) != 0) {
        rc = CRS_EPROTO; /* trailing bytes after the one frame */
        goto cleanup;
    }
    rc = crs_envelope_decode(payload, plen, &env);
    if (rc != 0)
        goto cleanup;
    if (env->body_case != CERTRELAY__V1__ENVELOPE__BODY_EVENT ||
        crs_event_validate(env->event) != 0 || crs_event_id_canonicalize(env->event) < 0) {
        rc = CRS_EPROTO;
        goto cleanup;
    }
    rc = crs_event_pack(env->event, event_bytes, len);

cleanup:
    crs_envelope_free(env);
    crs_frame_reader_free(&reader);
    crs_free(data);
    return rc;
}
