/*
 * Expiry and CRL alerts, the worker half (expiry_store.h): the schedules in the queue database, what
 * a stored event changes in them, and the tick that turns due stages into alert events.
 *
 * ---- Schema (part of the queue's, PRAGMA user_version = 4) ----
 *
 *   CREATE TABLE expiry_schedules (
 *       rowid           INTEGER PRIMARY KEY,
 *       kind            INTEGER NOT NULL,   -- 1 certificate, 2 CRL
 *       ident           TEXT NOT NULL,      -- "CA config|serial hex", or "CA config|CA cert index"
 *       subject         TEXT,               -- certificate subject DN (renewals), else NULL
 *       template        TEXT,               -- certificate template name or OID, else NULL
 *       deadline_ms     INTEGER NOT NULL,   -- notAfter, or the CRL's nextUpdate
 *       issued_ms       INTEGER NOT NULL,   -- notBefore, or the CRL's thisUpdate
 *       sent_lead_ms    INTEGER NOT NULL,   -- lead time of the last alert sent (0: expired);
 *                                           -- 9223372036854775807 before the first
 *       next_due_ms     INTEGER NOT NULL,   -- when the tick looks at it again
 *       state           INTEGER NOT NULL,   -- 0 active, 1 finished, 2 revoked, 3 renewed
 *       source_event_id TEXT NOT NULL,      -- the issued, imported or crl_issued event
 *       body            BLOB NOT NULL,      -- that event packed again without CRL bytes, raw
 *                                           -- request, certificate DER and extensions: the
 *                                           -- content of its alerts
 *       UNIQUE (kind, ident));
 *
 * A sample: a WebServer certificate whose 30d alert went out, its renewal, and a CA key's CRL:
 *
 *   1 | 1 | ca01\Contoso CA|61000012ab | CN=www | WebServer | 1767225600000 | ... | 2592000000 |
 *       1767139200000 | 3 | 0193a1c2-... | x'0a24...'      (renewed: no 7d, 1d or expired alert)
 *   2 | 1 | ca01\Contoso CA|61000013cd | CN=www | WebServer | 1798761600000 | ... | 9223372036854775807 |
 *       1796169600000 | 0 | 0193b7aa-... | x'0a24...'
 *   3 | 2 | ca01\Contoso CA|0 | NULL | NULL | 1765238400000 | ... | 9223372036854775807 |
 *       1765152000000 | 0 | 0193c001-... | x'0a24...'
 *
 * Rows in states 1 to 3 are deleted `retention` (the events' retention, 30d by default) after
 * their deadline, a batch per tick.
 *
 * next_due_ms is a hint computed with the configuration of the moment: the tick plans each row it
 * reads again (crs_expiry_plan), so a row that is looked at too early just gets a new time, and a
 * reload sets every active row due so that new lead times apply. The schedule outlives its source
 * event (retention prunes events after 30 days; a certificate lives for years), which is why it
 * keeps the event's content itself.
 */
#include "expiry_store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "certrelay/uuid.h"
#include "route.h"
#include "x509.h"

#define MS_DAY (86400LL * 1000)
/* Longest CA configuration string kept in an ident (certsrv's are far shorter). */
#define EXPIRY_IDENT_MAX 1024

enum { SCHED_CERT = 1, SCHED_CRL = 2 };
enum { STATE_ACTIVE = 0, STATE_FINISHED = 1, STATE_REVOKED = 2, STATE_RENEWED = 3 };

const char crs_expiry_schema_sql[] =
    /* Version 4. */
    "CREATE TABLE IF NOT EXISTS expiry_schedules ("
    " rowid INTEGER PRIMARY KEY,"
    " kind INTEGER NOT NULL,"
    " ident TEXT NOT NULL,"
    " subject TEXT,"
    " template TEXT,"
    " deadline_ms INTEGER NOT NULL,"
    " issued_ms INTEGER NOT NULL,"
    " sent_lead_ms INTEGER NOT NULL,"
    " next_due_ms INTEGER NOT NULL,"
    " state INTEGER NOT NULL,"
    " source_event_id TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " UNIQUE (kind, ident));"
    "CREATE INDEX IF NOT EXISTS expiry_due ON expiry_schedules (state, next_due_ms);"
    /* Renewals look for the other certificates of one subject and template. */
    "CREATE INDEX IF NOT EXISTS expiry_subject ON expiry_schedules (subject, template) "
    "WHERE kind = 1;";

/* ---- The plan ---- */

int64_t crs_expiry_days_left(int64_t deadline_ms, int64_t now_ms)
{
    int64_t left = deadline_ms - now_ms;

    if (left > 0)
        return (left + MS_DAY - 1) / MS_DAY;
    return -((-left) / MS_DAY);
}

void crs_expiry_plan(const int64_t *leads, size_t nleads, int is_crl, int with_expired,
                     int64_t deadline_ms, int64_t sent_lead_ms, int64_t now_ms,
                     struct crs_expiry_step *out)
{
    int64_t urgent = -1, longest = -1;
    size_t i;

    memset(out, 0, sizeof(*out));
    /* The stages not sent yet are the lead times shorter than the last one sent. Among those
     * already due (now >= deadline - lead), the shortest is the most urgent. */
    for (i = 0; i < nleads; i++) {
        int64_t l = leads[i];
        if (l >= sent_lead_ms)
            continue;
        if (l > longest)
            longest = l;
        if (now_ms >= deadline_ms - l && (urgent < 0 || l < urgent))
            urgent = l;
    }
    if (now_ms >= deadline_ms) {
        if (is_crl) {
            if (urgent >= 0) {
                out->action = CRS_EXPIRY_SEND;
                out->kind = CRS_EVENT_CRL_EXPIRING;
                out->lead_ms = urgent;
                return;
            }
        } else if (with_expired && sent_lead_ms > 0) {
            out->action = CRS_EXPIRY_SEND;
            out->kind = CRS_EVENT_EXPIRED;
            out->lead_ms = 0;
            return;
        }
        out->action = CRS_EXPIRY_FINISH;
        return;
    }
    if (urgent >= 0) {
        out->action = CRS_EXPIRY_SEND;
        out->kind = is_crl ? CRS_EVENT_CRL_EXPIRING : CRS_EVENT_EXPIRING;
        out->lead_ms = urgent;
        return;
    }
    out->action = CRS_EXPIRY_WAIT;
    /* With every stage sent, the deadline is the last look: `expired`, or the end (a reload may
     * have turned `expired` on meanwhile). */
    out->next_due_ms = longest >= 0 ? deadline_ms - longest : deadline_ms;
}

int crs_expiry_with_expired(const struct crs_config *cfg)
{
    size_t i;

    if (cfg->alerts.expired != CRS_ALERT_AUTO)
        return cfg->alerts.expired != 0;
    for (i = 0; i < cfg->nsinks; i++)
        if (cfg->sinks[i].events & CRS_EVENT_EXPIRED)
            return 1;
    return 0;
}

/* The first due time of a new schedule (the tick decides what it is due for). */
static int64_t expiry_first_due(const struct crs_config *cfg, int kind, int64_t deadline_ms,
                                int64_t now_ms)
{
    struct crs_expiry_step st;

    if (kind == SCHED_CRL)
        crs_expiry_plan(cfg->alerts.crl_warn_ms, cfg->alerts.ncrl_warn, 1, 0, deadline_ms,
                        CRS_EXPIRY_NONE_SENT, now_ms, &st);
    else
        crs_expiry_plan(cfg->alerts.expiry_warn_ms, cfg->alerts.nexpiry_warn, 0,
                        crs_expiry_with_expired(cfg), deadline_ms, CRS_EXPIRY_NONE_SENT, now_ms,
                        &st);
    return st.action == CRS_EXPIRY_WAIT ? st.next_due_ms : now_ms;
}

/* ---- The worker half ---- */

enum expiry_stmt {
    X_INSERT_CERT,
    X_NEWER_EXISTS,
    X_SUPERSEDE,
    X_MARK_RENEWED,
    X_REVOKE,
    X_UNREVOKE,
    X_UPSERT_CRL,
    X_DUE,
    X_ROW,
    X_SET,
    X_NEXT,
    X_REPLAN,
    X_PRUNE,
    X_INSERT_EVENT,
    X_INSERT_DELIVERY,
    X_COUNT_
};

static const char *const expiry_stmt_sql[X_COUNT_] = {
    [X_INSERT_CERT] = "INSERT OR IGNORE INTO expiry_schedules (kind, ident, subject, template, "
                      "deadline_ms, issued_ms, sent_lead_ms, next_due_ms, state, "
                      "source_event_id, body) "
                      "VALUES (1, ?1, ?2, ?3, ?4, ?5, 9223372036854775807, ?6, ?7, ?8, ?9)",
    [X_NEWER_EXISTS] = "SELECT 1 FROM expiry_schedules WHERE kind = 1 AND subject = ?1 AND "
                       "template = ?2 AND deadline_ms > ?3 AND state IN (0, 1) AND ident <> ?4 "
                       "LIMIT 1",
    [X_SUPERSEDE] = "UPDATE expiry_schedules SET state = 3 WHERE kind = 1 AND subject = ?1 AND "
                    "template = ?2 AND deadline_ms < ?3 AND state = 0 AND ident <> ?4",
    [X_MARK_RENEWED] = "UPDATE expiry_schedules SET state = 3 WHERE kind = 1 AND ident = ?1",
    [X_REVOKE] = "UPDATE expiry_schedules SET state = 2 WHERE kind = 1 AND ident = ?1 AND "
                 "state = 0",
    [X_UNREVOKE] = "UPDATE expiry_schedules SET state = 0, next_due_ms = ?2 WHERE kind = 1 AND "
                   "ident = ?1 AND state = 2",
    [X_UPSERT_CRL] = "INSERT INTO expiry_schedules (kind, ident, subject, template, deadline_ms, "
                     "issued_ms, sent_lead_ms, next_due_ms, state, source_event_id, body) "
                     "VALUES (2, ?1, NULL, NULL, ?2, ?3, 9223372036854775807, ?4, 0, ?5, ?6) "
                     "ON CONFLICT (kind, ident) DO UPDATE SET "
                     "deadline_ms = excluded.deadline_ms, issued_ms = excluded.issued_ms, "
                     "sent_lead_ms = excluded.sent_lead_ms, next_due_ms = excluded.next_due_ms, "
                     "state = 0, source_event_id = excluded.source_event_id, "
                     "body = excluded.body WHERE excluded.issued_ms >= expiry_schedules.issued_ms",
    [X_DUE] = "SELECT rowid FROM expiry_schedules WHERE state = 0 AND next_due_ms <= ?1 "
              "ORDER BY next_due_ms LIMIT ?2",
    [X_ROW] = "SELECT kind, deadline_ms, sent_lead_ms, source_event_id, body "
              "FROM expiry_schedules WHERE rowid = ?1",
    [X_SET] = "UPDATE expiry_schedules SET sent_lead_ms = ?1, next_due_ms = ?2, state = ?3 "
              "WHERE rowid = ?4",
    [X_NEXT] = "SELECT MIN(next_due_ms) FROM expiry_schedules WHERE state = 0",
    [X_REPLAN] = "UPDATE expiry_schedules SET next_due_ms = ?1 WHERE state = 0 AND "
                 "next_due_ms > ?1",
    [X_PRUNE] = "DELETE FROM expiry_schedules WHERE rowid IN (SELECT rowid FROM "
                "expiry_schedules WHERE state IN (1, 2, 3) AND next_due_ms < ?1 AND "
                "deadline_ms < ?1 LIMIT ?2)",
    [X_INSERT_EVENT] = "INSERT OR IGNORE INTO events (event_id, kind, received_ms, body) "
                       "VALUES (?1, ?2, ?3, ?4)",
    [X_INSERT_DELIVERY] = "INSERT OR IGNORE INTO deliveries (event_rowid, sink, state, "
                          "attempts, next_attempt_ms, last_error, last_status, updated_ms) "
                          "VALUES (?1, ?2, 0, 0, ?3, NULL, 0, ?3)",
};

struct crs_expiry_db {
    sqlite3 *db;
    sqlite3_stmt *st[X_COUNT_];
    int64_t due_hint; /* earliest next_due_ms set by the current job's ingests */
};

int crs_expiry_db_new(sqlite3 *db, struct crs_expiry_db **out)
{
    struct crs_expiry_db *x;
    size_t i;

    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (db == NULL)
        return CRS_EINVAL;
    x = crs_calloc(1, sizeof(*x));
    if (x == NULL)
        return CRS_ENOMEM;
    x->db = db;
    x->due_hint = INT64_MAX;
    for (i = 0; i < X_COUNT_; i++) {
        if (sqlite3_prepare_v3(db, expiry_stmt_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &x->st[i],
                               NULL) != SQLITE_OK) {
            crs_error("database: cannot prepare \"%s\": %s", expiry_stmt_sql[i],
                      sqlite3_errmsg(db));
            crs_expiry_db_free(x);
            return CRS_EDB;
        }
    }
    *out = x;
    return 0;
}

void crs_expiry_db_free(struct crs_expiry_db *x)
{
    size_t i;

    if (x == NULL)
        return;
    for (i = 0; i < X_COUNT_; i++)
        sqlite3_finalize(x->st[i]);
    crs_free(x);
}

int64_t crs_expiry_db_take_due(struct crs_expiry_db *x)
{
    int64_t due;

    if (x == NULL)
        return INT64_MAX;
    due = x->due_hint;
    x->due_hint = INT64_MAX;
    return due;
}

/* Steps a write statement to its end and resets it: 0, or CRS_EDB after logging. */
static int xstep(struct crs_expiry_db *x, enum expiry_stmt s)
{
    sqlite3_stmt *st = x->st[s];
    int rc = sqlite3_step(st);

    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return 0;
    crs_error("database: expiry schedules: %s", sqlite3_errmsg(x->db));
    return CRS_EDB;
}

static void note_due(struct crs_expiry_db *x, int64_t due)
{
    if (due < x->due_hint)
        x->due_hint = due;
}

/* certsrv gives the template as a name (v1) or an OID (v2+), on the certificate or the request. */
static const char *event_template(const Certrelay__V1__Event *ev)
{
    if (ev->certificate && ev->certificate->certificate_template &&
        ev->certificate->certificate_template[0] != '\0')
        return ev->certificate->certificate_template;
    if (ev->request && ev->request->certificate_template)
        return ev->request->certificate_template;
    return "";
}

/* "CA config|suffix" into buf; 0, or CRS_ETOOBIG for an absurd configuration string. */
static int make_ident(const Certrelay__V1__Event *ev, const char *suffix, char *buf, size_t len)
{
    const char *ca = ev->ca && ev->ca->config ? ev->ca->config : "";
    int n = snprintf(buf, len, "%s|%s", ca, suffix);

    return n < 0 || (size_t)n >= len ? CRS_ETOOBIG : 0;
}

/*
 * Packs ev without what an alert does not carry: CRL bytes, the raw request, and the
 * certificate's DER and extensions (the issued event delivered them; an alert names the
 * certificate by serial, subject, names, template, validity and thumbprint). The schedule row
 * keeps only what its alerts show, a few hundred bytes. ev is restored before returning.
 */
static int pack_trimmed(Certrelay__V1__Event *ev, Certrelay__V1__CrlInfo *only_crl, uint8_t **out,
                        size_t *outlen)
{
    size_t n_crls = ev->n_crls, n_ext = 0;
    Certrelay__V1__CrlInfo **crls = ev->crls;
    protobuf_c_boolean has_raw = 0, has_der = 0;
    int rc;

    ev->n_crls = only_crl != NULL ? 1 : 0;
    ev->crls = only_crl != NULL ? &only_crl : NULL;
    if (ev->request != NULL) {
        has_raw = ev->request->has_raw_request;
        ev->request->has_raw_request = 0;
    }
    if (ev->certificate != NULL) {
        has_der = ev->certificate->has_raw_certificate;
        n_ext = ev->certificate->n_extensions;
        ev->certificate->has_raw_certificate = 0;
        ev->certificate->n_extensions = 0;
    }
    rc = crs_event_pack(ev, out, outlen);
    if (ev->certificate != NULL) {
        ev->certificate->has_raw_certificate = has_der;
        ev->certificate->n_extensions = n_ext;
    }
    if (ev->request != NULL)
        ev->request->has_raw_request = has_raw;
    ev->n_crls = n_crls;
    ev->crls = crls;
    return rc;
}

static int ingest_cert(struct crs_expiry_db *x, const struct crs_config *cfg, uint32_t kind,
                       Certrelay__V1__Event *ev, int64_t now_ms)
{
    const Certrelay__V1__CertificateInfo *c = ev->certificate;
    char serial[129], ident[EXPIRY_IDENT_MAX + 160];
    const char *subject, *tpl;
    int64_t not_before = 0, not_after = 0, due;
    uint8_t *body = NULL;
    size_t blen = 0;
    int rc, state, newer = 0, inserted;
    sqlite3_stmt *st;

    crs_event_serial_hex(ev, serial, sizeof(serial));
    if (c == NULL || serial[0] == '\0')
        return 0;
    if (make_ident(ev, serial, ident, sizeof(ident)) != 0)
        return 0;
    if (kind == CRS_EVENT_UNREVOKED) {
        /* Released from hold: the schedule the revocation stopped runs again, planned anew. */
        st = x->st[X_UNREVOKE];
        sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = xstep(x, X_UNREVOKE);
        if (rc == 0 && sqlite3_changes(x->db) > 0)
            note_due(x, now_ms);
        return rc;
    }
    if (c->has_not_after_ms) {
        not_after = c->not_after_ms;
        not_before = c->has_not_before_ms ? c->not_before_ms : 0;
    } else if (c->has_raw_certificate &&
               crs_x509_cert_validity(c->raw_certificate.data, c->raw_certificate.len, &not_before,
                                      &not_after) != 0) {
        not_after = 0;
    }
    if (not_after == 0 && kind != CRS_EVENT_REVOKED)
        return 0; /* nothing to schedule on */
    subject = c->distinguished_name ? c->distinguished_name : "";
    tpl = event_template(ev);
    state = kind == CRS_EVENT_REVOKED ? STATE_REVOKED : STATE_ACTIVE;

    if (!c->has_not_after_ms && not_after != 0) {
        /* Read from the DER, which the alert leaves out: keep the dates it showed. */
        ev->certificate->has_not_before_ms = 1;
        ev->certificate->not_before_ms = not_before;
        ev->certificate->has_not_after_ms = 1;
        ev->certificate->not_after_ms = not_after;
    }
    rc = pack_trimmed(ev, NULL, &body, &blen);
    if (rc != 0)
        return rc;
    due = expiry_first_due(cfg, SCHED_CERT, not_after, now_ms);
    st = x->st[X_INSERT_CERT];
    sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, subject, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, tpl, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, not_after);
    sqlite3_bind_int64(st, 5, not_before);
    sqlite3_bind_int64(st, 6, due);
    sqlite3_bind_int(st, 7, state);
    sqlite3_bind_text(st, 8, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_blob64(st, 9, body, blen, SQLITE_STATIC);
    rc = xstep(x, X_INSERT_CERT);
    crs_free(body);
    if (rc != 0)
        return rc;
    inserted = sqlite3_changes(x->db) > 0;
    if (kind == CRS_EVENT_REVOKED) {
        if (inserted)
            return 0; /* revoked before we saw it issued: the row stands for the revocation */
        st = x->st[X_REVOKE];
        sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
        return xstep(x, X_REVOKE);
    }
    /* A certificate seen before (a re-sent event, or imported after issued) keeps its row. */
    if (!inserted)
        return 0;
    if (cfg->alerts.skip_renewed && subject[0] != '\0') {
        /* A later certificate of the same subject and template already replaced this one (the
         * events arrived out of order, from the spool): it starts out renewed. */
        st = x->st[X_NEWER_EXISTS];
        sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tpl, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, not_after);
        sqlite3_bind_text(st, 4, ident, -1, SQLITE_STATIC);
        rc = sqlite3_step(st);
        newer = rc == SQLITE_ROW;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
            crs_error("database: expiry schedules: %s", sqlite3_errmsg(x->db));
            return CRS_EDB;
        }
        if (newer) {
            st = x->st[X_MARK_RENEWED];
            sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
            return xstep(x, X_MARK_RENEWED);
        }
        /* A renewal: the older certificates of this subject and template need no warning. */
        st = x->st[X_SUPERSEDE];
        sqlite3_bind_text(st, 1, subject, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tpl, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, not_after);
        sqlite3_bind_text(st, 4, ident, -1, SQLITE_STATIC);
        rc = xstep(x, X_SUPERSEDE);
        if (rc != 0)
            return rc;
        if (sqlite3_changes(x->db) > 0)
            crs_debug("expiry: %d older certificate(s) of %s renewed by %s", sqlite3_changes(x->db),
                      subject, serial);
    }
    note_due(x, due);
    return 0;
}

static int ingest_crls(struct crs_expiry_db *x, const struct crs_config *cfg,
                       Certrelay__V1__Event *ev, int64_t now_ms)
{
    size_t i;
    int rc = 0;

    for (i = 0; i < ev->n_crls && rc == 0; i++) {
        const Certrelay__V1__CrlInfo *crl = ev->crls[i];
        Certrelay__V1__CrlInfo slim = CERTRELAY__V1__CRL_INFO__INIT;
        char idx[16], ident[EXPIRY_IDENT_MAX + 32];
        int64_t this_update = 0, next_update = 0, due;
        uint8_t *body = NULL;
        size_t blen = 0;
        sqlite3_stmt *st;
        uint32_t index;

        if (crl == NULL || !crl->has_raw_crl || crl->raw_crl.len == 0)
            continue;
        index = crl->has_ca_cert_index ? crl->ca_cert_index : (uint32_t)i;
        /* Only the base CRL: it is what relying parties must fetch again by nextUpdate. */
        rc = crs_x509_crl_dates(crl->raw_crl.data, crl->raw_crl.len, &this_update, &next_update);
        if (rc != 0) {
            crs_warn("expiry: event %s: CRL of CA certificate %u: %s; not scheduled", ev->event_id,
                     (unsigned)index,
                     rc == CRS_ENOENT ? "it has no nextUpdate" : "cannot be parsed");
            rc = 0;
            continue;
        }
        snprintf(idx, sizeof(idx), "%u", (unsigned)index);
        if (make_ident(ev, idx, ident, sizeof(ident)) != 0)
            continue;
        slim.has_ca_cert_index = 1;
        slim.ca_cert_index = index;
        rc = pack_trimmed(ev, &slim, &body, &blen);
        if (rc != 0)
            break;
        due = expiry_first_due(cfg, SCHED_CRL, next_update, now_ms);
        st = x->st[X_UPSERT_CRL];
        sqlite3_bind_text(st, 1, ident, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, next_update);
        sqlite3_bind_int64(st, 3, this_update);
        sqlite3_bind_int64(st, 4, due);
        sqlite3_bind_text(st, 5, ev->event_id, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 6, body, blen, SQLITE_STATIC);
        rc = xstep(x, X_UPSERT_CRL);
        crs_free(body);
        if (rc == 0)
            note_due(x, due);
    }
    return rc;
}

int crs_expiry_db_ingest(struct crs_expiry_db *x, const struct crs_config *cfg, uint32_t kind,
                         const uint8_t *body, size_t len, int64_t now_ms)
{
    Certrelay__V1__Event *ev = NULL;
    int rc = 0;

    if (x == NULL || cfg == NULL)
        return 0;
    if ((kind & (CRS_EVENT_ISSUED | CRS_EVENT_IMPORTED | CRS_EVENT_REVOKED | CRS_EVENT_UNREVOKED |
                 CRS_EVENT_CRL_ISSUED)) == 0)
        return 0;
    /* The event was decoded and validated when it was received; a failure here is memory. */
    if (crs_event_unpack(body, len, &ev) != 0)
        return 0;
    if (kind == CRS_EVENT_CRL_ISSUED)
        rc = ingest_crls(x, cfg, ev, now_ms);
    else
        rc = ingest_cert(x, cfg, kind, ev, now_ms);
    crs_event_free(ev);
    return rc == CRS_EDB ? CRS_EDB : 0;
}

/* ---- The tick: due schedules become events, in the queue's lane ---- */

/*
 * Builds the alert of kind for schedule body (the source event) and stores it with one delivery
 * per sink that takes it, as a received event would be. *stored is 0 when no sink's events name
 * the kind: the stage counts as sent, but nothing is kept for nobody.
 */
static int tick_store_alert(struct crs_expiry_db *x, const struct crs_config *cfg,
                            const uint8_t *src, size_t srclen, const char *source_id,
                            const struct crs_expiry_step *step, int is_crl, int64_t deadline_ms,
                            int64_t now_ms, int *stored)
{
    Certrelay__V1__Event *ev = NULL;
    Certrelay__V1__Expiry info = CERTRELAY__V1__EXPIRY__INIT;
    Certrelay__V1__Expiry *saved_expiry;
    char id[CRS_UUID_STRLEN + 1], *saved_id;
    uint8_t *body = NULL;
    size_t blen = 0, i;
    sqlite3_int64 rowid;
    int rc, wanted = 0;
    sqlite3_stmt *st;

    *stored = 0;
    for (i = 0; i < cfg->nsinks; i++)
        if (cfg->sinks[i].events & step->kind)
            wanted = 1;
    if (!wanted)
        return 0;
    if (crs_event_unpack(src, srclen, &ev) != 0) {
        crs_warn("expiry: the schedule of event %s cannot be read; no alert", source_id);
        return 0;
    }
    rc = crs_uuid7(id);
    if (rc != 0)
        goto cleanup;
    if (is_crl) {
        info.has_next_update_ms = 1;
        info.next_update_ms = deadline_ms;
        if (ev->n_crls > 0 && ev->crls[0] != NULL && ev->crls[0]->has_ca_cert_index) {
            info.has_ca_cert_index = 1;
            info.ca_cert_index = ev->crls[0]->ca_cert_index;
        }
    } else {
        info.has_not_after_ms = 1;
        info.not_after_ms = deadline_ms;
    }
    info.has_lead_ms = 1;
    info.lead_ms = step->lead_ms;
    info.has_days_left = 1;
    info.days_left = crs_expiry_days_left(deadline_ms, now_ms);
    info.source_event_id = (char *)source_id;
    saved_id = ev->event_id;
    saved_expiry = ev->expiry;
    ev->event_id = id;
    ev->has_kind = 1;
    ev->kind = (Certrelay__V1__EventKind)step->kind;
    ev->has_capture_time_ms = 1;
    ev->capture_time_ms = now_ms;
    ev->has_raw_exit_event = 0;
    ev->expiry = &info;
    rc = crs_event_pack(ev, &body, &blen);
    if (rc == 0) {
        st = x->st[X_INSERT_EVENT];
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, step->kind);
        sqlite3_bind_int64(st, 3, now_ms);
        sqlite3_bind_blob64(st, 4, body, blen, SQLITE_STATIC);
        rc = xstep(x, X_INSERT_EVENT);
    }
    if (rc == 0) {
        rowid = sqlite3_last_insert_rowid(x->db);
        /* Routing as for a received event (queue.c): events mask and templates filter. */
        for (i = 0; i < cfg->nsinks && rc == 0; i++) {
            if (!crs_sink_matches(&cfg->sinks[i], ev))
                continue;
            st = x->st[X_INSERT_DELIVERY];
            sqlite3_bind_int64(st, 1, rowid);
            sqlite3_bind_text(st, 2, cfg->sinks[i].name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(st, 3, now_ms);
            rc = xstep(x, X_INSERT_DELIVERY);
        }
        if (rc == 0)
            *stored = 1;
    }
    ev->event_id = saved_id;
    ev->expiry = saved_expiry;

cleanup:
    crs_free(body);
    crs_event_free(ev);
    return rc;
}

/* One row: send what is due (at most one alert), then store its next look. */
static int tick_row(struct crs_expiry_db *x, const struct crs_config *cfg, int64_t rowid,
                    int64_t now_ms, struct crs_expiry_tick *res)
{
    sqlite3_stmt *row = x->st[X_ROW], *st;
    struct crs_expiry_step step;
    int64_t deadline, sent, next = 0;
    const int64_t *leads;
    size_t nleads;
    int is_crl, with_expired, state = STATE_ACTIVE, stored = 0, rc;

    sqlite3_bind_int64(row, 1, rowid);
    rc = sqlite3_step(row);
    if (rc != SQLITE_ROW) {
        sqlite3_reset(row);
        sqlite3_clear_bindings(row);
        if (rc == SQLITE_DONE)
            return 0;
        crs_error("database: expiry tick: %s", sqlite3_errmsg(x->db));
        return CRS_EDB;
    }
    is_crl = sqlite3_column_int(row, 0) == SCHED_CRL;
    deadline = sqlite3_column_int64(row, 1);
    sent = sqlite3_column_int64(row, 2);
    leads = is_crl ? cfg->alerts.crl_warn_ms : cfg->alerts.expiry_warn_ms;
    nleads = is_crl ? cfg->alerts.ncrl_warn : cfg->alerts.nexpiry_warn;
    with_expired = !is_crl && crs_expiry_with_expired(cfg);
    crs_expiry_plan(leads, nleads, is_crl, with_expired, deadline, sent, now_ms, &step);
    rc = 0;
    if (step.action == CRS_EXPIRY_SEND) {
        const char *source = (const char *)sqlite3_column_text(row, 3);
        const uint8_t *src = sqlite3_column_blob(row, 4);
        size_t srclen = (size_t)sqlite3_column_bytes(row, 4);

        rc = tick_store_alert(x, cfg, src, srclen, source ? source : "?", &step, is_crl, deadline,
                              now_ms, &stored);
        if (rc == 0 && stored)
            res->created++;
        sent = step.lead_ms;
        crs_expiry_plan(leads, nleads, is_crl, with_expired, deadline, sent, now_ms, &step);
    }
    /* The row's text and blob are not used past this point. */
    sqlite3_reset(row);
    sqlite3_clear_bindings(row);
    if (rc != 0)
        return rc;
    if (step.action == CRS_EXPIRY_WAIT) {
        next = step.next_due_ms;
    } else {
        state = STATE_FINISHED;
        next = deadline; /* retention counts from here (tick_run's prune) */
    }
    st = x->st[X_SET];
    sqlite3_bind_int64(st, 1, sent);
    sqlite3_bind_int64(st, 2, next);
    sqlite3_bind_int(st, 3, state);
    sqlite3_bind_int64(st, 4, rowid);
    return xstep(x, X_SET);
}

/*
 * Runs on the worker, outside the job's transaction: one transaction of its own, so the alerts
 * stored and the stages marked sent commit together (a crash between them sends nothing twice
 * and loses nothing). At most cfg->alerts.batch rows per tick.
 */
int crs_expiry_db_tick(struct crs_expiry_db *x, const struct crs_config *cfg, int64_t now_ms,
                       int replan, struct crs_expiry_tick *res)
{
    sqlite3_stmt *st = x->st[X_DUE];
    int64_t *ids = NULL;
    uint32_t batch = 0, n = 0, i;
    int rc = 0, step = SQLITE_DONE;

    memset(res, 0, sizeof(*res));
    res->next_due_ms = INT64_MAX;
    if (sqlite3_exec(x->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK) {
        crs_error("database: expiry tick: begin: %s", sqlite3_errmsg(x->db));
        return CRS_EDB;
    }
    if (replan) {
        /* A reload: every active schedule is looked at with the new lead times. */
        sqlite3_bind_int64(x->st[X_REPLAN], 1, now_ms);
        rc = xstep(x, X_REPLAN);
    }
    /* The due rows' ids are read first: the rows change as they are handled, and a scan of the
     * index being updated would be on undefined ground. */
    if (rc == 0) {
        batch = cfg->alerts.batch ? cfg->alerts.batch : 500;
        ids = crs_malloc(batch * sizeof(*ids));
        if (ids == NULL)
            rc = CRS_ENOMEM;
    }
    if (rc == 0) {
        sqlite3_bind_int64(st, 1, now_ms);
        sqlite3_bind_int64(st, 2, batch);
        while (n < batch && (step = sqlite3_step(st)) == SQLITE_ROW)
            ids[n++] = sqlite3_column_int64(st, 0);
        if (n < batch && step != SQLITE_DONE) {
            crs_error("database: expiry tick: %s", sqlite3_errmsg(x->db));
            rc = CRS_EDB;
        }
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
    }
    for (i = 0; i < n && rc == 0; i++) {
        rc = tick_row(x, cfg, ids[i], now_ms, res);
        if (rc == 0)
            res->processed++;
    }
    crs_free(ids);
    if (rc == 0 && cfg->retention_ms > 0) {
        /* Schedules that will never raise anything again go `retention` after their deadline,
         * a batch per tick, so the table holds the certificates still valid and a margin. Until
         * then a revoked one still stops a late `issued` of its serial (from a spool). */
        sqlite3_bind_int64(x->st[X_PRUNE], 1, now_ms - cfg->retention_ms);
        sqlite3_bind_int64(x->st[X_PRUNE], 2, batch ? batch : 500);
        rc = xstep(x, X_PRUNE);
    }
    if (rc == 0) {
        st = x->st[X_NEXT];
        step = sqlite3_step(st);
        if (step == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
            res->next_due_ms = sqlite3_column_int64(st, 0);
        else if (step != SQLITE_ROW)
            rc = CRS_EDB;
        sqlite3_reset(st);
    }
    if (rc == 0 && sqlite3_exec(x->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK) {
        crs_error("database: expiry tick: commit: %s", sqlite3_errmsg(x->db));
        rc = CRS_EDB;
    }
    if (rc != 0 && !sqlite3_get_autocommit(x->db))
        sqlite3_exec(x->db, "ROLLBACK", NULL, NULL, NULL);
    if (rc != 0)
        memset(res, 0, sizeof(*res));
    return rc;
}
