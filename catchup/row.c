/*
 * The row model: what one CA-database row says, keyed by certsrv's schema column names, and the
 * events the exit module would have sent for it.
 *
 * certsrv's database has one row per request. Its Disposition is the request's state now, so one
 * row stands for every notification the request caused: an issued certificate that was later
 * revoked was announced twice (issued, then revoked), and both events are rebuilt here, each with
 * the properties the exit module read at that moment (the issued event does not carry the later
 * revocation). The disposition times are the dedup key's (key.c).
 */
#include <stdio.h>
#include <string.h>

#include "catchup_int.h"
#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "certrelay/uuid.h"

/* certsrv's request dispositions (certsrv.h DB_DISP_*). */
#define DISP_PENDING 9
#define DISP_ISSUED  20
#define DISP_REVOKED 21
#define DISP_ERROR   30
#define DISP_DENIED  31

/* One known column. `request` columns also answer to their name with a "Request." prefix (as
 * ICertServerExit and ICertView accept); the others only to the bare name, because
 * "Request.CommonName" is the request's subject, not the issued certificate's. */
enum col {
    COL_REQUEST_ID,
    COL_REQUEST_TYPE,
    COL_DISPOSITION,
    COL_DISPOSITION_MESSAGE,
    COL_STATUS_CODE,
    COL_REQUESTER_NAME,
    COL_CALLER_NAME,
    COL_SUBMITTED_WHEN,
    COL_RESOLVED_WHEN,
    COL_REVOKED_WHEN,
    COL_REVOKED_EFFECTIVE_WHEN,
    COL_REVOKED_REASON,
    COL_REQUEST_ATTRIBUTES,
    COL_TEMPLATE,
    COL_SERIAL,
    COL_NOT_BEFORE,
    COL_NOT_AFTER,
    COL_RAW_CERTIFICATE,
    COL_DN,
    COL_CN,
    COL_UPN,
    COL_HASH,
    COL_EMAIL,
    COL_PUBKEY_ALG,
    COL_PUBKEY_LEN,
    COL_COUNT_
};

static const struct {
    const char *name;
    int type;
    int request;
} columns[COL_COUNT_] = {
    [COL_REQUEST_ID] = {"RequestID", CATCHUP_LONG, 1},
    [COL_REQUEST_TYPE] = {"RequestType", CATCHUP_LONG, 1},
    [COL_DISPOSITION] = {"Disposition", CATCHUP_LONG, 1},
    [COL_DISPOSITION_MESSAGE] = {"DispositionMessage", CATCHUP_STRING, 1},
    [COL_STATUS_CODE] = {"StatusCode", CATCHUP_LONG, 1},
    [COL_REQUESTER_NAME] = {"RequesterName", CATCHUP_STRING, 1},
    [COL_CALLER_NAME] = {"CallerName", CATCHUP_STRING, 1},
    [COL_SUBMITTED_WHEN] = {"SubmittedWhen", CATCHUP_DATE, 1},
    [COL_RESOLVED_WHEN] = {"ResolvedWhen", CATCHUP_DATE, 1},
    [COL_REVOKED_WHEN] = {"RevokedWhen", CATCHUP_DATE, 1},
    [COL_REVOKED_EFFECTIVE_WHEN] = {"RevokedEffectiveWhen", CATCHUP_DATE, 1},
    [COL_REVOKED_REASON] = {"RevokedReason", CATCHUP_LONG, 1},
    [COL_REQUEST_ATTRIBUTES] = {"RequestAttributes", CATCHUP_STRING, 1},
    [COL_TEMPLATE] = {"CertificateTemplate", CATCHUP_STRING, 0},
    [COL_SERIAL] = {"SerialNumber", CATCHUP_STRING, 0},
    [COL_NOT_BEFORE] = {"NotBefore", CATCHUP_DATE, 0},
    [COL_NOT_AFTER] = {"NotAfter", CATCHUP_DATE, 0},
    [COL_RAW_CERTIFICATE] = {"RawCertificate", CATCHUP_BINARY, 0},
    [COL_DN] = {"DistinguishedName", CATCHUP_STRING, 0},
    [COL_CN] = {"CommonName", CATCHUP_STRING, 0},
    [COL_UPN] = {"UPN", CATCHUP_STRING, 0},
    [COL_HASH] = {"CertificateHash", CATCHUP_STRING, 0},
    [COL_EMAIL] = {"EMail", CATCHUP_STRING, 0},
    [COL_PUBKEY_ALG] = {"PublicKeyAlgorithm", CATCHUP_STRING, 0},
    [COL_PUBKEY_LEN] = {"PublicKeyLength", CATCHUP_LONG, 0},
};

struct cell {
    int set;
    int64_t l;  /* CATCHUP_LONG and CATCHUP_DATE (Unix ms) */
    char *s;    /* CATCHUP_STRING */
    uint8_t *b; /* CATCHUP_BINARY */
    size_t n;
};

struct crs_catchup_row {
    struct cell cells[COL_COUNT_];
    char err[256];
};

static int column_find(const char *name)
{
    int prefixed = crs_ascii_ncasecmp(name, "Request.", 8) == 0;
    const char *base = prefixed ? name + 8 : name;

    for (int i = 0; i < COL_COUNT_; i++) {
        if (prefixed && !columns[i].request)
            continue;
        if (crs_ascii_casecmp(base, columns[i].name) == 0)
            return i;
    }
    return -1;
}

int catchup_column_type(const char *column)
{
    int c = column != NULL ? column_find(column) : -1;
    return c < 0 ? 0 : columns[c].type;
}

int crs_catchup_row_new(struct crs_catchup_row **out)
{
    if (out == NULL)
        return CRS_EINVAL;
    *out = crs_calloc(1, sizeof(**out));
    return *out == NULL ? CRS_ENOMEM : 0;
}

void crs_catchup_row_reset(struct crs_catchup_row *row)
{
    if (row == NULL)
        return;
    for (int i = 0; i < COL_COUNT_; i++) {
        crs_free(row->cells[i].s);
        crs_free(row->cells[i].b);
    }
    memset(row, 0, sizeof(*row));
}

void crs_catchup_row_free(struct crs_catchup_row *row)
{
    crs_catchup_row_reset(row);
    crs_free(row);
}

int64_t crs_catchup_row_request_id(const struct crs_catchup_row *row)
{
    if (row == NULL || !row->cells[COL_REQUEST_ID].set)
        return -1;
    return row->cells[COL_REQUEST_ID].l;
}

const char *crs_catchup_row_error(const struct crs_catchup_row *row)
{
    return row != NULL ? row->err : "";
}

/* Looks the column up for a setter of `type`: the cell, NULL for an ignored column (not an
 * error), or an error with the row's sentence set. */
static int row_cell(struct crs_catchup_row *row, const char *column, int type, struct cell **out)
{
    *out = NULL;
    if (row == NULL || column == NULL)
        return CRS_EINVAL;
    int c = column_find(column);
    if (c < 0)
        return 0;
    if (columns[c].type != type) {
        snprintf(row->err, sizeof(row->err), "column %s of request %lld: wrong value type", column,
                 (long long)crs_catchup_row_request_id(row));
        return CRS_EINVAL;
    }
    *out = &row->cells[c];
    return 0;
}

int crs_catchup_row_set_long(struct crs_catchup_row *row, const char *column, int64_t v)
{
    struct cell *cl;
    int rc = row_cell(row, column, CATCHUP_LONG, &cl);
    if (rc == 0 && cl != NULL) {
        cl->l = v;
        cl->set = 1;
    }
    return rc;
}

int crs_catchup_row_set_date(struct crs_catchup_row *row, const char *column, int64_t unix_ms)
{
    struct cell *cl;
    int rc = row_cell(row, column, CATCHUP_DATE, &cl);
    if (rc == 0 && cl != NULL) {
        cl->l = unix_ms;
        cl->set = 1;
    }
    return rc;
}

int crs_catchup_row_set_string(struct crs_catchup_row *row, const char *column, const char *utf8)
{
    struct cell *cl;
    int rc = row_cell(row, column, CATCHUP_STRING, &cl);
    if (rc != 0 || cl == NULL)
        return rc;
    if (utf8 == NULL)
        return CRS_EINVAL;
    size_t n = strlen(utf8);
    if (n > CRS_CATCHUP_STRING_MAX) {
        snprintf(row->err, sizeof(row->err),
                 "column %s of request %lld: %zu bytes, more than the %u allowed", column,
                 (long long)crs_catchup_row_request_id(row), n, CRS_CATCHUP_STRING_MAX);
        return CRS_ETOOBIG;
    }
    if (!crs_utf8_valid(utf8, n)) {
        snprintf(row->err, sizeof(row->err), "column %s of request %lld: invalid UTF-8", column,
                 (long long)crs_catchup_row_request_id(row));
        return CRS_EINVAL;
    }
    char *s = crs_strndup(utf8, n);
    if (s == NULL)
        return CRS_ENOMEM;
    crs_free(cl->s);
    cl->s = s;
    cl->set = 1;
    return 0;
}

int crs_catchup_row_set_binary(struct crs_catchup_row *row, const char *column, const uint8_t *p,
                               size_t n)
{
    struct cell *cl;
    int rc = row_cell(row, column, CATCHUP_BINARY, &cl);
    if (rc != 0 || cl == NULL)
        return rc;
    if (p == NULL && n > 0)
        return CRS_EINVAL;
    if (n > CRS_CATCHUP_BINARY_MAX) {
        snprintf(row->err, sizeof(row->err),
                 "column %s of request %lld: %zu bytes, more than the %u allowed", column,
                 (long long)crs_catchup_row_request_id(row), n, CRS_CATCHUP_BINARY_MAX);
        return CRS_ETOOBIG;
    }
    uint8_t *b = crs_malloc(n > 0 ? n : 1);
    if (b == NULL)
        return CRS_ENOMEM;
    if (n > 0)
        memcpy(b, p, n);
    crs_free(cl->b);
    cl->b = b;
    cl->n = n;
    cl->set = 1;
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Row → events
 * ------------------------------------------------------------------------------------------- */

static int copy_string(const struct crs_catchup_row *row, enum col c, char **dst)
{
    if (!row->cells[c].set)
        return 0;
    *dst = crs_strdup(row->cells[c].s);
    return *dst == NULL ? CRS_ENOMEM : 0;
}

static void copy_long(const struct crs_catchup_row *row, enum col c, protobuf_c_boolean *has,
                      int64_t *dst)
{
    if (row->cells[c].set) {
        *has = 1;
        *dst = row->cells[c].l;
    }
}

static int build_request(const struct crs_catchup_row *row, uint32_t kind, Certrelay__V1__Event *ev)
{
    Certrelay__V1__RequestInfo *req = crs_malloc(sizeof(*req));
    int rc;

    if (req == NULL)
        return CRS_ENOMEM;
    certrelay__v1__request_info__init(req);
    ev->request = req;

    copy_long(row, COL_REQUEST_ID, &req->has_request_id, &req->request_id);
    copy_long(row, COL_REQUEST_TYPE, &req->has_request_type, &req->request_type);
    copy_long(row, COL_DISPOSITION, &req->has_disposition, &req->disposition);
    copy_long(row, COL_STATUS_CODE, &req->has_status_code, &req->status_code);
    copy_long(row, COL_SUBMITTED_WHEN, &req->has_submitted_when_ms, &req->submitted_when_ms);
    copy_long(row, COL_RESOLVED_WHEN, &req->has_resolved_when_ms, &req->resolved_when_ms);
    if (kind == CRS_EVENT_REVOKED) {
        copy_long(row, COL_REVOKED_WHEN, &req->has_revoked_when_ms, &req->revoked_when_ms);
        copy_long(row, COL_REVOKED_EFFECTIVE_WHEN, &req->has_revoked_effective_when_ms,
                  &req->revoked_effective_when_ms);
        copy_long(row, COL_REVOKED_REASON, &req->has_revoked_reason, &req->revoked_reason);
    } else if (kind == CRS_EVENT_ISSUED) {
        /* When it was issued the request was not yet revoked: the exit module saw 20. */
        req->has_disposition = 1;
        req->disposition = DISP_ISSUED;
    }
    if ((rc = copy_string(row, COL_DISPOSITION_MESSAGE, &req->disposition_message)) != 0 ||
        (rc = copy_string(row, COL_REQUESTER_NAME, &req->requester_name)) != 0 ||
        (rc = copy_string(row, COL_CALLER_NAME, &req->caller_name)) != 0 ||
        (rc = copy_string(row, COL_REQUEST_ATTRIBUTES, &req->request_attributes)) != 0 ||
        (rc = copy_string(row, COL_TEMPLATE, &req->certificate_template)) != 0)
        return rc;
    return 0;
}

static int build_certificate(const struct crs_catchup_row *row, Certrelay__V1__Event *ev)
{
    static const enum col any[] = {COL_SERIAL,     COL_RAW_CERTIFICATE,
                                   COL_NOT_BEFORE, COL_NOT_AFTER,
                                   COL_DN,         COL_CN,
                                   COL_UPN,        COL_HASH,
                                   COL_EMAIL};
    int found = 0;
    int rc;

    for (size_t i = 0; i < sizeof(any) / sizeof(any[0]); i++)
        found |= row->cells[any[i]].set;
    /* A pending or denied request has no certificate: then the event carries no
     * CertificateInfo, as the stub's would not. */
    if (!found)
        return 0;

    Certrelay__V1__CertificateInfo *c = crs_malloc(sizeof(*c));
    if (c == NULL)
        return CRS_ENOMEM;
    certrelay__v1__certificate_info__init(c);
    ev->certificate = c;

    copy_long(row, COL_NOT_BEFORE, &c->has_not_before_ms, &c->not_before_ms);
    copy_long(row, COL_NOT_AFTER, &c->has_not_after_ms, &c->not_after_ms);
    copy_long(row, COL_PUBKEY_LEN, &c->has_public_key_length, &c->public_key_length);
    if (row->cells[COL_RAW_CERTIFICATE].set && row->cells[COL_RAW_CERTIFICATE].n > 0) {
        const struct cell *cl = &row->cells[COL_RAW_CERTIFICATE];
        c->raw_certificate.data = crs_malloc(cl->n);
        if (c->raw_certificate.data == NULL)
            return CRS_ENOMEM;
        memcpy(c->raw_certificate.data, cl->b, cl->n);
        c->raw_certificate.len = cl->n;
        c->has_raw_certificate = 1;
    }
    if ((rc = copy_string(row, COL_SERIAL, &c->serial_number)) != 0 ||
        (rc = copy_string(row, COL_DN, &c->distinguished_name)) != 0 ||
        (rc = copy_string(row, COL_CN, &c->common_name)) != 0 ||
        (rc = copy_string(row, COL_UPN, &c->upn)) != 0 ||
        (rc = copy_string(row, COL_HASH, &c->certificate_hash)) != 0 ||
        (rc = copy_string(row, COL_TEMPLATE, &c->certificate_template)) != 0 ||
        (rc = copy_string(row, COL_EMAIL, &c->email)) != 0 ||
        (rc = copy_string(row, COL_PUBKEY_ALG, &c->public_key_algorithm)) != 0)
        return rc;
    return 0;
}

/* CaInfo from the config string "HOST\CA name": the host is the part before the backslash. */
static int build_ca(const char *ca_config, Certrelay__V1__Event *ev)
{
    Certrelay__V1__CaInfo *ca = crs_malloc(sizeof(*ca));
    if (ca == NULL)
        return CRS_ENOMEM;
    certrelay__v1__ca_info__init(ca);
    ev->ca = ca;
    ca->config = crs_strdup(ca_config);
    if (ca->config == NULL)
        return CRS_ENOMEM;
    const char *bs = strchr(ca_config, '\\');
    if (bs != NULL && bs > ca_config) {
        ca->host = crs_strndup(ca_config, (size_t)(bs - ca_config));
        if (ca->host == NULL)
            return CRS_ENOMEM;
    }
    return 0;
}

static int build_one(const struct crs_catchup_row *row, const char *ca_config, uint32_t kind,
                     struct crs_catchup_event *out)
{
    Certrelay__V1__Event *ev = crs_malloc(sizeof(*ev));
    int rc;

    if (ev == NULL)
        return CRS_ENOMEM;
    certrelay__v1__event__init(ev);

    rc = crs_uuid7(out->event_id);
    if (rc != 0)
        goto cleanup;
    ev->event_id = crs_strdup(out->event_id);
    ev->origin = crs_strdup(CRS_CATCHUP_ORIGIN);
    if (ev->event_id == NULL || ev->origin == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    ev->has_kind = 1;
    ev->kind = (Certrelay__V1__EventKind)kind;
    ev->has_raw_exit_event = 1;
    ev->raw_exit_event = kind;
    ev->has_capture_time_ms = 1;
    ev->capture_time_ms = crs_now_ms();
    if ((rc = build_ca(ca_config, ev)) != 0 || (rc = build_request(row, kind, ev)) != 0 ||
        (rc = build_certificate(row, ev)) != 0)
        goto cleanup;

    struct crs_catchup_key key;
    out->kind = kind;
    out->request_id = row->cells[COL_REQUEST_ID].l;
    out->when_ms = -1;
    if (crs_catchup_event_key(ev, &key) == 0 && key.minute >= 0) {
        enum col wc = kind == CRS_EVENT_PENDING   ? COL_SUBMITTED_WHEN
                      : kind == CRS_EVENT_REVOKED ? COL_REVOKED_WHEN
                                                  : COL_RESOLVED_WHEN;
        out->when_ms = row->cells[wc].l;
    }
    const char *subject = row->cells[COL_CN].set               ? row->cells[COL_CN].s
                          : row->cells[COL_DN].set             ? row->cells[COL_DN].s
                          : row->cells[COL_REQUESTER_NAME].set ? row->cells[COL_REQUESTER_NAME].s
                                                               : "";
    snprintf(out->subject, sizeof(out->subject), "%s", subject);
    crs_utf8_truncate(out->subject, sizeof(out->subject) - 1);
    rc = crs_event_pack(ev, &out->packed, &out->packed_len);

cleanup:
    certrelay__v1__event__free_unpacked(ev, &crs_protobuf_allocator);
    return rc;
}

int crs_catchup_row_events(const struct crs_catchup_row *row, const char *ca_config,
                           uint32_t kind_mask, struct crs_catchup_events *out)
{
    uint32_t kinds[CRS_CATCHUP_ROW_EVENTS_MAX];
    size_t nk = 0;
    int rc = 0;

    if (out == NULL)
        return CRS_EINVAL;
    memset(out, 0, sizeof(*out));
    if (row == NULL || ca_config == NULL || ca_config[0] == '\0' ||
        strlen(ca_config) > CRS_CATCHUP_CA_MAX)
        return CRS_EINVAL;
    if (!row->cells[COL_REQUEST_ID].set || !row->cells[COL_DISPOSITION].set)
        return CRS_EINVAL;
    if (kind_mask == 0)
        kind_mask = CRS_CATCHUP_KINDS;

    switch (row->cells[COL_DISPOSITION].l) {
    case DISP_PENDING:
        kinds[nk++] = CRS_EVENT_PENDING;
        break;
    case DISP_ISSUED:
        kinds[nk++] = CRS_EVENT_ISSUED;
        break;
    case DISP_REVOKED:
        /* A certificate revoked straight from the database without ever being issued does not
         * exist: a revoked row was announced as issued first. */
        kinds[nk++] = CRS_EVENT_ISSUED;
        kinds[nk++] = CRS_EVENT_REVOKED;
        break;
    case DISP_ERROR:
    case DISP_DENIED:
        kinds[nk++] = CRS_EVENT_DENIED;
        break;
    default:
        /* Active (8), foreign (12), CA certificates (15, 16) and KRA certificates (17) raise no
         * exit-module notification. */
        break;
    }
    for (size_t i = 0; i < nk; i++) {
        if (!(kinds[i] & kind_mask))
            continue;
        rc = build_one(row, ca_config, kinds[i], &out->ev[out->count]);
        if (rc != 0)
            goto cleanup;
        out->count++;
    }

cleanup:
    if (rc != 0)
        crs_catchup_events_free(out);
    return rc;
}

void crs_catchup_events_free(struct crs_catchup_events *evs)
{
    if (evs == NULL)
        return;
    for (size_t i = 0; i < CRS_CATCHUP_ROW_EVENTS_MAX; i++)
        crs_free(evs->ev[i].packed);
    memset(evs, 0, sizeof(*evs));
}

/* The time a filter's `since` compares with: when the request reached its current state. */
int crs_catchup_filter_match(const struct crs_catchup_filter *flt,
                             const struct crs_catchup_row *row)
{
    if (flt == NULL)
        return 1;
    if (row == NULL || !row->cells[COL_REQUEST_ID].set)
        return 0;
    if (flt->from_request > 0 && row->cells[COL_REQUEST_ID].l < flt->from_request)
        return 0;
    if (flt->since_ms > 0) {
        int64_t t = -1;
        static const enum col order[] = {COL_REVOKED_WHEN, COL_RESOLVED_WHEN, COL_SUBMITTED_WHEN};
        for (size_t i = 0; i < 3 && t < 0; i++)
            if (row->cells[order[i]].set)
                t = row->cells[order[i]].l;
        if (t < flt->since_ms)
            return 0;
    }
    return 1;
}
