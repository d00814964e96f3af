/*
 * `{{field}}` templates for file names, mail subjects and bodies, and webhook texts.
 *
 * Syntax: literal text, and `{{name}}` (spaces or tabs allowed inside the braces:
 * `{{ request_id }}`) replaced by the value of field `name` for the event. There is no escape for
 * a literal "{{"; a single '{' or '}' is ordinary text. A "{{" without a closing "}}" and an
 * unknown name are errors found when the template is compiled, that is when the configuration is
 * loaded.
 *
 * Fields (a field whose value is absent renders as the empty string):
 *
 *   | field               | value                                                              |
 *   |---------------------|--------------------------------------------------------------------|
 *   | event               | short kind name: issued, pending, denied, revoked, unrevoked,      |
 *   |                     | retrieve_pending, imported, crl_issued, startup, shutdown,         |
 *   |                     | expiring, expired, crl_expiring                                    |
 *   | event_id            | the event's UUIDv7                                                 |
 *   | time                | capture time, RFC 3339 UTC with milliseconds                       |
 *   | date                | capture date, YYYY-MM-DD (UTC)                                     |
 *   | kind_title          | "Certificate issued", "CRL published", "Request pending", ...      |
 *   | request_id          | certsrv request ID, decimal                                        |
 *   | serial              | certificate serial number, lowercase hex without separators        |
 *   | ca                  | the CA's sanitized name, else its configuration string             |
 *   | ca_config           | the CA configuration string certsrv passed to Initialize           |
 *   | ca_host             | the CA machine's DNS name                                          |
 *   | template            | certificate template of the certificate, else of the request       |
 *   | common_name         | subject common name                                                |
 *   | subject             | subject distinguished name                                         |
 *   | upn                 | user principal name                                                |
 *   | email               | e-mail name                                                        |
 *   | requester           | requester name (DOMAIN\user)                                       |
 *   | caller              | caller name                                                        |
 *   | disposition         | pending, issued, revoked, error, denied; other values in decimal   |
 *   | disposition_message | certsrv's disposition message                                      |
 *   | status_code         | the request's HRESULT as 0x%08x (e.g. 0x80094012)                  |
 *   | not_before          | certificate validity start, RFC 3339 UTC                           |
 *   | not_after           | certificate validity end, RFC 3339 UTC                             |
 *   | thumbprint          | certificate hash, lowercase hex without spaces                     |
 *   | revocation_reason   | RFC 5280 reason name (key_compromise, ...); other values decimal   |
 *   | origin              | live (from the exit module) or catchup (rebuilt from the CA        |
 *   |                     | database by `certrelay catchup` or the scheduled catch-up)         |
 *   | expires             | alerts: the deadline (notAfter, or the CRL's nextUpdate); other    |
 *   |                     | events: the certificate's notAfter; RFC 3339 UTC                   |
 *   | days_left           | alerts: days from the alert to the deadline, rounded up (0 or      |
 *   |                     | less once passed); empty for other events                          |
 *
 * Escaping applies to field values only, never to the template's own literal text, with one
 * exception: in CRS_ESCAPE_FILENAME mode path separators in literals become '_' too, so that a
 * file name render never holds a '/' or '\' whatever the configuration says. Every value is made
 * valid UTF-8 before it is escaped.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "render/json.h"
#include "certrelay/sanitize.h"
#include "render/template.h"

enum field_id {
    F_EVENT,
    F_EVENT_ID,
    F_TIME,
    F_DATE,
    F_KIND_TITLE,
    F_REQUEST_ID,
    F_SERIAL,
    F_CA,
    F_CA_CONFIG,
    F_CA_HOST,
    F_TEMPLATE,
    F_COMMON_NAME,
    F_SUBJECT,
    F_UPN,
    F_EMAIL,
    F_REQUESTER,
    F_CALLER,
    F_DISPOSITION,
    F_DISPOSITION_MESSAGE,
    F_STATUS_CODE,
    F_NOT_BEFORE,
    F_NOT_AFTER,
    F_THUMBPRINT,
    F_REVOCATION_REASON,
    F_ORIGIN,
    F_EXPIRES,
    F_DAYS_LEFT,
    F_COUNT
};

/* Indexed by enum field_id, NULL-terminated for crs_template_fields(). */
static const char *const field_names[F_COUNT + 1] = {
    "event",
    "event_id",
    "time",
    "date",
    "kind_title",
    "request_id",
    "serial",
    "ca",
    "ca_config",
    "ca_host",
    "template",
    "common_name",
    "subject",
    "upn",
    "email",
    "requester",
    "caller",
    "disposition",
    "disposition_message",
    "status_code",
    "not_before",
    "not_after",
    "thumbprint",
    "revocation_reason",
    "origin",
    "expires",
    "days_left",
    NULL,
};

/* A compiled template: literal runs point into a private copy of the source. */
struct tpl_segment {
    int field; /* an enum field_id, or -1 for literal text */
    size_t off;
    size_t len;
};

struct crs_template {
    char *src;
    struct tpl_segment *segs;
    size_t nsegs;
};

const char *const *crs_template_fields(void)
{
    return field_names;
}

/* ------------------------------------------------------------------------------------------ */
/* Field values                                                                                */
/* ------------------------------------------------------------------------------------------ */

static int field_lookup(const char *name, size_t len)
{
    int i;

    for (i = 0; i < F_COUNT; i++)
        if (strlen(field_names[i]) == len && memcmp(field_names[i], name, len) == 0)
            return i;
    return -1;
}

static const char *nonempty(const char *s)
{
    return s && s[0] != '\0' ? s : NULL;
}

static char *strdup_or_empty(const char *s)
{
    return crs_strdup(s ? s : "");
}

/* The value of one field as a fresh string, NULL only on allocation failure. */
static char *field_value(int field, const Certrelay__V1__Event *ev)
{
    const Certrelay__V1__CaInfo *ca = ev->ca;
    const Certrelay__V1__RequestInfo *req = ev->request;
    const Certrelay__V1__CertificateInfo *cert = ev->certificate;
    char buf[160];
    const char *name;

    buf[0] = '\0';
    switch ((enum field_id)field) {
    case F_EVENT:
        return strdup_or_empty(ev->has_kind ? crs_event_name((uint32_t)ev->kind) : NULL);
    case F_EVENT_ID:
        return strdup_or_empty(ev->event_id);
    case F_ORIGIN:
        return strdup_or_empty(ev->origin != NULL ? ev->origin : "live");
    case F_TIME:
        if (ev->has_capture_time_ms)
            crs_time_rfc3339(ev->capture_time_ms, buf, sizeof buf);
        return crs_strdup(buf);
    case F_DATE:
        /* The first ten characters of the RFC 3339 form are the date. */
        if (ev->has_capture_time_ms) {
            crs_time_rfc3339(ev->capture_time_ms, buf, sizeof buf);
            buf[10] = '\0';
        }
        return crs_strdup(buf);
    case F_KIND_TITLE:
        return strdup_or_empty(ev->has_kind ? crs_event_title((uint32_t)ev->kind) : NULL);
    case F_REQUEST_ID:
        if (req && req->has_request_id)
            snprintf(buf, sizeof buf, "%" PRId64, req->request_id);
        return crs_strdup(buf);
    case F_SERIAL:
        crs_event_serial_hex(ev, buf, sizeof buf);
        return crs_strdup(buf);
    case F_CA:
        if (!ca)
            return crs_strdup("");
        return strdup_or_empty(nonempty(ca->sanitized_name) ? ca->sanitized_name : ca->config);
    case F_CA_CONFIG:
        return strdup_or_empty(ca ? ca->config : NULL);
    case F_CA_HOST:
        return strdup_or_empty(ca ? ca->host : NULL);
    case F_TEMPLATE:
        if (cert && nonempty(cert->certificate_template))
            return crs_strdup(cert->certificate_template);
        return strdup_or_empty(req ? req->certificate_template : NULL);
    case F_COMMON_NAME:
        return strdup_or_empty(cert ? cert->common_name : NULL);
    case F_SUBJECT:
        return strdup_or_empty(cert ? cert->distinguished_name : NULL);
    case F_UPN:
        return strdup_or_empty(cert ? cert->upn : NULL);
    case F_EMAIL:
        return strdup_or_empty(cert ? cert->email : NULL);
    case F_REQUESTER:
        return strdup_or_empty(req ? req->requester_name : NULL);
    case F_CALLER:
        return strdup_or_empty(req ? req->caller_name : NULL);
    case F_DISPOSITION:
        if (!req || !req->has_disposition)
            return crs_strdup("");
        if ((name = crs_disposition_name(req->disposition)))
            return crs_strdup(name);
        snprintf(buf, sizeof buf, "%" PRId64, req->disposition);
        return crs_strdup(buf);
    case F_DISPOSITION_MESSAGE:
        return strdup_or_empty(req ? req->disposition_message : NULL);
    case F_STATUS_CODE:
        /* An HRESULT is a 32-bit LONG and reads best in hex; anything wider stays decimal. */
        if (req && req->has_status_code) {
            if (req->status_code >= INT32_MIN && req->status_code <= (int64_t)UINT32_MAX)
                snprintf(buf, sizeof buf, "0x%08" PRIx32, (uint32_t)req->status_code);
            else
                snprintf(buf, sizeof buf, "%" PRId64, req->status_code);
        }
        return crs_strdup(buf);
    case F_NOT_BEFORE:
        if (cert && cert->has_not_before_ms)
            crs_time_rfc3339(cert->not_before_ms, buf, sizeof buf);
        return crs_strdup(buf);
    case F_NOT_AFTER:
        if (cert && cert->has_not_after_ms)
            crs_time_rfc3339(cert->not_after_ms, buf, sizeof buf);
        return crs_strdup(buf);
    case F_THUMBPRINT:
        return crs_event_thumbprint(cert ? cert->certificate_hash : NULL);
    case F_REVOCATION_REASON:
        if (!req || !req->has_revoked_reason)
            return crs_strdup("");
        if ((name = crs_revocation_reason_name(req->revoked_reason)))
            return crs_strdup(name);
        snprintf(buf, sizeof buf, "%" PRId64, req->revoked_reason);
        return crs_strdup(buf);
    case F_EXPIRES:
        if (ev->expiry && ev->expiry->has_not_after_ms)
            crs_time_rfc3339(ev->expiry->not_after_ms, buf, sizeof buf);
        else if (ev->expiry && ev->expiry->has_next_update_ms)
            crs_time_rfc3339(ev->expiry->next_update_ms, buf, sizeof buf);
        else if (cert && cert->has_not_after_ms)
            crs_time_rfc3339(cert->not_after_ms, buf, sizeof buf);
        return crs_strdup(buf);
    case F_DAYS_LEFT:
        if (ev->expiry && ev->expiry->has_days_left)
            snprintf(buf, sizeof buf, "%" PRId64, ev->expiry->days_left);
        return crs_strdup(buf);
    case F_COUNT:
        break;
    }
    return crs_strdup("");
}

int crs_template_field_value(const char *field, const Certrelay__V1__Event *ev, char **out)
{
    int id;

    if (out)
        *out = NULL;
    if (!field || !ev || !out)
        return CRS_EINVAL;
    id = field_lookup(field, strlen(field));
    if (id < 0)
        return CRS_ENOENT;
    *out = field_value(id, ev);
    return *out ? 0 : CRS_ENOMEM;
}

/* ------------------------------------------------------------------------------------------ */
/* Compiling                                                                                   */
/* ------------------------------------------------------------------------------------------ */

static int add_segment(struct crs_template *t, size_t *cap, int field, size_t off, size_t len)
{
    if (field < 0 && len == 0)
        return 0;
    if (t->nsegs == *cap) {
        size_t ncap = *cap ? *cap * 2 : 8;
        struct tpl_segment *segs = crs_realloc(t->segs, ncap * sizeof *segs);

        if (!segs)
            return CRS_ENOMEM;
        t->segs = segs;
        *cap = ncap;
    }
    t->segs[t->nsegs].field = field;
    t->segs[t->nsegs].off = off;
    t->segs[t->nsegs].len = len;
    t->nsegs++;
    return 0;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

int crs_template_compile(const char *src, struct crs_template **out, char *err, size_t errlen)
{
    struct crs_template *t = NULL;
    size_t cap = 0, pos = 0, lit = 0, len;
    int rc;

    if (out)
        *out = NULL;
    if (err && errlen > 0)
        err[0] = '\0';
    if (!src || !out) {
        rc = CRS_EINVAL;
        goto cleanup;
    }
    len = strlen(src);
    /* A literal longer than the output cap could never render. */
    if (len > CRS_TEMPLATE_MAX_OUTPUT) {
        if (err && errlen > 0)
            snprintf(err, errlen, "template longer than %u bytes", CRS_TEMPLATE_MAX_OUTPUT);
        rc = CRS_ETEMPLATE;
        goto cleanup;
    }
    t = crs_calloc(1, sizeof *t);
    if (!t || !(t->src = crs_strdup(src))) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }

    while (pos < len) {
        const char *open = strstr(t->src + pos, "{{");
        const char *close;
        size_t a, b;
        int id;

        if (!open)
            break;
        close = strstr(open + 2, "}}");
        if (!close) {
            if (err && errlen > 0)
                snprintf(err, errlen, "unterminated '{{' at offset %zu", (size_t)(open - t->src));
            rc = CRS_ETEMPLATE;
            goto cleanup;
        }
        a = (size_t)(open - t->src) + 2;
        b = (size_t)(close - t->src);
        while (a < b && is_blank(t->src[a]))
            a++;
        while (b > a && is_blank(t->src[b - 1]))
            b--;
        id = field_lookup(t->src + a, b - a);
        if (id < 0) {
            if (err && errlen > 0) {
                if (a == b)
                    snprintf(err, errlen, "empty field name at offset %zu",
                             (size_t)(open - t->src));
                else
                    snprintf(err, errlen, "unknown field '%.*s'", (int)(b - a < 64 ? b - a : 64),
                             t->src + a);
            }
            rc = CRS_ETEMPLATE;
            goto cleanup;
        }
        if ((rc = add_segment(t, &cap, -1, lit, (size_t)(open - t->src) - lit)) ||
            (rc = add_segment(t, &cap, id, 0, 0)))
            goto cleanup;
        pos = lit = (size_t)(close - t->src) + 2;
    }
    if ((rc = add_segment(t, &cap, -1, lit, len - lit)))
        goto cleanup;
    *out = t;
    return 0;

cleanup:
    if (rc == CRS_ENOMEM && err && errlen > 0)
        snprintf(err, errlen, "out of memory");
    crs_template_free(t);
    return rc;
}

void crs_template_free(struct crs_template *t)
{
    if (!t)
        return;
    crs_free(t->segs);
    crs_free(t->src);
    crs_free(t);
}

/* ------------------------------------------------------------------------------------------ */
/* Rendering                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* A growable output with the hard cap (curl's dynbuf "toobig"). */
struct outbuf {
    char *p;
    size_t len;
    size_t cap;
};

static int ob_append(struct outbuf *b, const char *s, size_t n)
{
    if (n > CRS_TEMPLATE_MAX_OUTPUT - b->len)
        return CRS_ETOOBIG;
    if (b->len + n + 1 > b->cap) {
        size_t ncap = b->cap ? b->cap : 256;
        char *p;

        while (ncap < b->len + n + 1)
            ncap *= 2;
        if (ncap > CRS_TEMPLATE_MAX_OUTPUT + 1)
            ncap = CRS_TEMPLATE_MAX_OUTPUT + 1;
        p = crs_realloc(b->p, ncap);
        if (!p)
            return CRS_ENOMEM;
        b->p = p;
        b->cap = ncap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

/* Appends v, replacing each byte for which repl() gives a string (or "" to drop it). Runs of
 * untouched bytes are copied in one piece. */
static int ob_append_mapped(struct outbuf *b, const char *v, size_t n,
                            const char *(*repl)(unsigned char))
{
    size_t start = 0, i;
    int rc;

    for (i = 0; i < n; i++) {
        const char *r = repl((unsigned char)v[i]);

        if (!r)
            continue;
        if ((rc = ob_append(b, v + start, i - start)) || (rc = ob_append(b, r, strlen(r))))
            return rc;
        start = i + 1;
    }
    return ob_append(b, v + start, i - start);
}

static int is_control(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static const char *repl_text(unsigned char c)
{
    return is_control(c) && c != '\n' && c != '\t' ? "" : NULL;
}

static const char *repl_html(unsigned char c)
{
    switch (c) {
    case '&':
        return "&amp;";
    case '<':
        return "&lt;";
    case '>':
        return "&gt;";
    case '"':
        return "&quot;";
    case '\'':
        return "&#39;";
    default:
        return repl_text(c);
    }
}

static const char *repl_header(unsigned char c)
{
    return is_control(c) ? " " : NULL;
}

static const char *repl_separator(unsigned char c)
{
    return c == '/' || c == '\\' ? "_" : NULL;
}

static int render_value(struct outbuf *b, const char *value, enum crs_escape esc)
{
    char name[CRS_FILENAME_MAX + 1];

    switch (esc) {
    case CRS_ESCAPE_FILENAME:
        /* An absent value stays empty instead of becoming "_"; the caller sanitizes the whole
         * name again, which turns an entirely empty result into "_". */
        if (value[0] == '\0')
            return 0;
        crs_sanitize_filename(value, name, sizeof name);
        return ob_append(b, name, strlen(name));
    case CRS_ESCAPE_HTML:
        return ob_append_mapped(b, value, strlen(value), repl_html);
    case CRS_ESCAPE_HEADER:
        return ob_append_mapped(b, value, strlen(value), repl_header);
    case CRS_ESCAPE_NONE:
    default:
        return ob_append_mapped(b, value, strlen(value), repl_text);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Field values of one event, computed once                                                    */
/* ------------------------------------------------------------------------------------------ */

struct crs_fields {
    char *v[F_COUNT]; /* valid UTF-8, "" when absent */
};

void crs_fields_free(struct crs_fields *f)
{
    int i;

    if (!f)
        return;
    for (i = 0; i < F_COUNT; i++)
        crs_free(f->v[i]);
    crs_free(f);
}

int crs_fields_new(const Certrelay__V1__Event *ev, struct crs_fields **out)
{
    struct crs_fields *f;
    int i;

    if (out)
        *out = NULL;
    if (!ev || !out)
        return CRS_EINVAL;
    f = crs_calloc(1, sizeof *f);
    if (!f)
        return CRS_ENOMEM;
    for (i = 0; i < F_COUNT; i++) {
        char *raw = field_value(i, ev);

        f->v[i] = raw ? crs_utf8_sanitize(raw, strlen(raw)) : NULL;
        crs_free(raw);
        if (!f->v[i]) {
            crs_fields_free(f);
            return CRS_ENOMEM;
        }
    }
    *out = f;
    return 0;
}

const char *crs_fields_get(const struct crs_fields *f, const char *name)
{
    int id;

    if (!f || !name)
        return "";
    id = field_lookup(name, strlen(name));
    return id < 0 ? "" : f->v[id];
}

int crs_template_render_fields(const struct crs_template *t, const struct crs_fields *f,
                               enum crs_escape esc, char **out)
{
    struct outbuf b = {NULL, 0, 0};
    size_t i;
    int rc;

    if (out)
        *out = NULL;
    if (!t || !f || !out)
        return CRS_EINVAL;
    if ((rc = ob_append(&b, "", 0)))
        goto cleanup;

    for (i = 0; i < t->nsegs; i++) {
        const struct tpl_segment *s = &t->segs[i];

        if (s->field < 0) {
            /* Literal text in a file name keeps its dots and spaces but loses separators. */
            if (esc == CRS_ESCAPE_FILENAME)
                rc = ob_append_mapped(&b, t->src + s->off, s->len, repl_separator);
            else
                rc = ob_append(&b, t->src + s->off, s->len);
        } else {
            rc = render_value(&b, f->v[s->field], esc);
        }
        if (rc)
            goto cleanup;
    }
    *out = b.p;
    return 0;

cleanup:
    crs_free(b.p);
    return rc;
}

int crs_template_render(const struct crs_template *t, const Certrelay__V1__Event *ev,
                        enum crs_escape esc, char **out)
{
    struct crs_fields *f = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (!t || !ev || !out)
        return CRS_EINVAL;
    if ((rc = crs_fields_new(ev, &f)))
        return rc;
    rc = crs_template_render_fields(t, f, esc, out);
    crs_fields_free(f);
    return rc;
}
