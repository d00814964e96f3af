/*
 * Webhook bodies and HTTP rules (formats.h); the signatures are in signature.c.
 *
 * The chat formats (Teams, Slack) show a summary of the event: a heading chosen by CertRelay and a
 * list of facts whose values come from the certificate or the request, that is from whoever asked
 * the CA for a certificate. Both chat services interpret markup in some text fields, so untrusted
 * values only ever go into fields that are rendered literally: an Adaptive Card TextRun (which
 * supports no markdown) and a Slack plain_text object. A requester therefore cannot put a link,
 * a mention or formatting into an administrator's channel.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "render/json.h"
#include "render/template.h"
#include "certrelay/sanitize.h"
#include "certrelay/text.h"
#include "sinks/webhook/formats.h"

/* ------------------------------------------------------------------------------------------ */
/* Formats                                                                                     */
/* ------------------------------------------------------------------------------------------ */

static const char *const format_names[] = {"json", "cloudevents", "teams", "slack"};

int crs_webhook_format_parse(const char *s, enum crs_webhook_format *out)
{
    size_t i;

    if (!s || !out)
        return CRS_EINVAL;
    for (i = 0; i < sizeof format_names / sizeof format_names[0]; i++) {
        if (strcmp(s, format_names[i]) == 0) {
            *out = (enum crs_webhook_format)i;
            return 0;
        }
    }
    return CRS_EINVAL;
}

const char *crs_webhook_format_name(enum crs_webhook_format fmt)
{
    if ((unsigned)fmt >= sizeof format_names / sizeof format_names[0])
        return "unknown";
    return format_names[fmt];
}

const char *crs_webhook_content_type(enum crs_webhook_format fmt)
{
    return fmt == CRS_WEBHOOK_CLOUDEVENTS ? "application/cloudevents+json; charset=utf-8"
                                          : "application/json";
}

/* ------------------------------------------------------------------------------------------ */
/* Event summary for the chat formats                                                          */
/* ------------------------------------------------------------------------------------------ */

/* A fact's value is cut here: chat services limit field sizes (Slack: 2000 characters) and a
 * hostile request can hold a very long name. */
#define FACT_VALUE_MAX 1000u
#define MAX_FACTS      20u

struct fact {
    const char *title; /* static, chosen by CertRelay */
    char *value;       /* valid UTF-8, one line, at most FACT_VALUE_MAX bytes */
};

struct summary {
    const char *heading; /* static */
    char *subject;       /* the main name (common name, CA), sanitized; may be NULL */
    struct fact facts[MAX_FACTS];
    size_t nfacts;
};

/* The heading of a chat message: the kind's title (lib/event.c). */
static const char *event_heading(uint32_t kind)
{
    const char *title = crs_event_title(kind);

    return title ? title : "Certificate Services event";
}

/* An untrusted string made safe for display on one line: valid UTF-8, no control characters,
 * bounded. NULL on allocation failure. */
static char *clean_text(const char *s, size_t max)
{
    char *c = crs_utf8_sanitize(s, strlen(s));

    if (!c)
        return NULL;
    crs_sanitize_oneline(c);
    crs_utf8_truncate(c, max);
    return c;
}

/* Adds a fact from untrusted text; absent or empty values add nothing. */
static int fact_text(struct summary *sm, const char *title, const char *value)
{
    char *v;

    if (!value || value[0] == '\0' || sm->nfacts >= MAX_FACTS)
        return 0;
    v = clean_text(value, FACT_VALUE_MAX);
    if (!v)
        return CRS_ENOMEM;
    sm->facts[sm->nfacts].title = title;
    sm->facts[sm->nfacts].value = v;
    sm->nfacts++;
    return 0;
}

static int fact_time(struct summary *sm, const char *title, int has, int64_t ms)
{
    char buf[32];

    if (!has)
        return 0;
    crs_time_rfc3339(ms, buf, sizeof buf);
    return fact_text(sm, title, buf);
}

static void summary_free(struct summary *sm)
{
    size_t i;

    for (i = 0; i < sm->nfacts; i++)
        crs_free(sm->facts[i].value);
    crs_free(sm->subject);
    memset(sm, 0, sizeof *sm);
}

static int summary_crls(struct summary *sm, const Certrelay__V1__Event *ev)
{
    size_t i, base = 0, delta = 0;
    char buf[96];

    for (i = 0; i < ev->n_crls; i++) {
        if (ev->crls[i]->has_raw_crl && ev->crls[i]->raw_crl.len > 0)
            base++;
        if (ev->crls[i]->has_raw_delta_crl && ev->crls[i]->raw_delta_crl.len > 0)
            delta++;
    }
    snprintf(buf, sizeof buf, "%zu base, %zu delta", base, delta);
    return fact_text(sm, "CRLs", buf);
}

/* A fact shown as its template field's value, in the order of the table. */
struct fact_field {
    const char *title;
    const char *field;
};

/* What every summary opens with: the certificate and the request. */
static const struct fact_field facts_head[] = {
    {"Common name", "common_name"}, {"Subject", "subject"},       {"UPN", "upn"},
    {"Template", "template"},       {"Requester", "requester"},   {"Request ID", "request_id"},
    {"Serial number", "serial"},    {"Valid from", "not_before"}, {"Valid until", "not_after"},
};

/* What every summary closes with: where and when it happened. */
static const struct fact_field facts_tail[] = {
    {"CA", "ca"},
    {"CA host", "ca_host"},
    {"Time", "time"},
    {"Event ID", "event_id"},
};

static int facts_add(struct summary *sm, const struct crs_fields *f, const struct fact_field *v,
                     size_t n)
{
    size_t i;
    int rc;

    for (i = 0; i < n; i++) {
        rc = fact_text(sm, v[i].title, crs_fields_get(f, v[i].field));
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*
 * Collects what a person wants to see first. Which facts appear depends on the kind: a revocation
 * shows its reason, a denial its message, a CRL how many CRLs were published.
 */
static int summary_build(const Certrelay__V1__Event *ev, struct summary *sm)
{
    const Certrelay__V1__CertificateInfo *c = ev->certificate;
    const Certrelay__V1__RequestInfo *r = ev->request;
    uint32_t kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    struct crs_fields *f = NULL;
    const char *main_name = NULL;
    int rc;

    memset(sm, 0, sizeof *sm);
    /* The values are the template fields (render/template.c), computed once for the event. */
    if ((rc = crs_fields_new(ev, &f)))
        return rc;
#define FIELD(name) crs_fields_get(f, name)
    sm->heading = event_heading(kind);
    if (FIELD("common_name")[0])
        main_name = FIELD("common_name");
    else if (FIELD("requester")[0])
        main_name = FIELD("requester");
    else if (!c && !r && FIELD("ca")[0])
        main_name = FIELD("ca");
    if (main_name && !(sm->subject = clean_text(main_name, 140))) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }

    if ((rc = facts_add(sm, f, facts_head, sizeof(facts_head) / sizeof(facts_head[0]))))
        goto cleanup;
    if (r && (kind == CRS_EVENT_REVOKED || kind == CRS_EVENT_UNREVOKED)) {
        if ((rc = fact_text(sm, "Revocation reason", FIELD("revocation_reason"))))
            goto cleanup;
        if (r->has_revoked_effective_when_ms)
            rc = fact_time(sm, "Revoked as of", 1, r->revoked_effective_when_ms);
        else
            rc = fact_time(sm, "Revoked as of", r->has_revoked_when_ms, r->revoked_when_ms);
        if (rc)
            goto cleanup;
    }
    if (r && (kind == CRS_EVENT_DENIED || kind == CRS_EVENT_PENDING ||
              kind == CRS_EVENT_RETRIEVE_PENDING)) {
        if ((rc = fact_text(sm, "Message", FIELD("disposition_message"))))
            goto cleanup;
        if (r->has_status_code && r->status_code != 0 &&
            (rc = fact_text(sm, "Status", FIELD("status_code"))))
            goto cleanup;
    }
    if (kind == CRS_EVENT_CRL_ISSUED && (rc = summary_crls(sm, ev)))
        goto cleanup;
    if ((kind & CRS_EVENT_ALERTS) != 0) {
        if ((rc = fact_text(sm, kind == CRS_EVENT_CRL_EXPIRING ? "Next update" : "Expires",
                            FIELD("expires"))) ||
            (rc = fact_text(sm, "Days left", FIELD("days_left"))))
            goto cleanup;
    }
    if ((rc = facts_add(sm, f, facts_tail, sizeof(facts_tail) / sizeof(facts_tail[0]))))
        goto cleanup;
#undef FIELD
    crs_fields_free(f);
    return 0;

cleanup:
    crs_fields_free(f);
    summary_free(sm);
    return rc;
}

/* "Certificate issued: www.example.com" (the heading alone when there is no main name). */
static char *summary_title(const struct summary *sm)
{
    if (sm->subject && sm->subject[0])
        return crs_asprintf("%s: %s", sm->heading, sm->subject);
    return crs_strdup(sm->heading);
}

/* ------------------------------------------------------------------------------------------ */
/* Microsoft Teams: a message with one Adaptive Card                                           */
/* ------------------------------------------------------------------------------------------ */

/* A RichTextBlock holding one TextRun: the only Adaptive Card text element without markdown. */
static json_t *literal_block(const char *text, const char *size, int bold)
{
    json_t *block = json_object(), *inlines, *run;

    if (!block)
        return NULL;
    if (crs_json_put(block, "type", json_string_nocheck("RichTextBlock")) ||
        !(inlines = crs_json_child(block, "inlines", json_array())) ||
        !(run = crs_json_child(inlines, NULL, json_object())) ||
        crs_json_put(run, "type", json_string_nocheck("TextRun")) ||
        crs_json_put(run, "text", json_string(text)) ||
        (size && crs_json_put(run, "size", json_string_nocheck(size))) ||
        (bold && crs_json_put(run, "weight", json_string_nocheck("Bolder")))) {
        json_decref(block);
        return NULL;
    }
    return block;
}

/* Appends a Column of the given width to cols; returns its (empty) items array, NULL on failure. */
static json_t *teams_column(json_t *cols, int width)
{
    json_t *col = crs_json_child(cols, NULL, json_object());

    if (!col || crs_json_put(col, "type", json_string_nocheck("Column")) ||
        crs_json_put(col, "width", json_integer(width)))
        return NULL;
    return crs_json_child(col, "items", json_array());
}

/* One row of the fact table: the title (CertRelay's, in bold) and the literal value. */
static json_t *teams_fact_row(const struct fact *f)
{
    json_t *row = json_object(), *cols, *items, *title;

    if (!row)
        return NULL;
    if (crs_json_put(row, "type", json_string_nocheck("ColumnSet")) ||
        crs_json_put(row, "spacing", json_string_nocheck("Small")) ||
        !(cols = crs_json_child(row, "columns", json_array())))
        goto fail;
    /* Title column, weight 1. */
    if (!(items = teams_column(cols, 1)) || !(title = crs_json_child(items, NULL, json_object())) ||
        crs_json_put(title, "type", json_string_nocheck("TextBlock")) ||
        crs_json_put(title, "text", json_string(f->title)) ||
        crs_json_put(title, "weight", json_string_nocheck("Bolder")) ||
        crs_json_put(title, "wrap", json_true()))
        goto fail;
    /* Value column, weight 2. */
    if (!(items = teams_column(cols, 2)) ||
        crs_json_append(items, literal_block(f->value, NULL, 0)))
        goto fail;
    return row;

fail:
    json_decref(row);
    return NULL;
}

static int body_teams(const Certrelay__V1__Event *ev, char **out, size_t *outlen)
{
    struct summary sm;
    json_t *doc = NULL, *atts, *att, *card, *body, *heading, *msteams;
    size_t i;
    int rc;

    if ((rc = summary_build(ev, &sm)))
        return rc;
    rc = CRS_ENOMEM;
    if (!(doc = json_object()))
        goto cleanup;
    if (crs_json_put(doc, "type", json_string_nocheck("message")) ||
        !(atts = crs_json_child(doc, "attachments", json_array())) ||
        !(att = crs_json_child(atts, NULL, json_object())) ||
        crs_json_put(att, "contentType",
                     json_string_nocheck("application/vnd.microsoft.card.adaptive")) ||
        crs_json_put(att, "contentUrl", json_null()) ||
        !(card = crs_json_child(att, "content", json_object())) ||
        crs_json_put(card, "$schema",
                     json_string_nocheck("http://adaptivecards.io/schemas/adaptive-card.json")) ||
        crs_json_put(card, "type", json_string_nocheck("AdaptiveCard")) ||
        crs_json_put(card, "version", json_string_nocheck("1.4")) ||
        !(msteams = crs_json_child(card, "msteams", json_object())) ||
        crs_json_put(msteams, "width", json_string_nocheck("Full")) ||
        !(body = crs_json_child(card, "body", json_array())) ||
        !(heading = crs_json_child(body, NULL, json_object())) ||
        crs_json_put(heading, "type", json_string_nocheck("TextBlock")) ||
        crs_json_put(heading, "text", json_string(sm.heading)) ||
        crs_json_put(heading, "weight", json_string_nocheck("Bolder")) ||
        crs_json_put(heading, "size", json_string_nocheck("Large")) ||
        crs_json_put(heading, "wrap", json_true()))
        goto cleanup;
    if (sm.subject && crs_json_append(body, literal_block(sm.subject, "Medium", 0)))
        goto cleanup;
    for (i = 0; i < sm.nfacts; i++) {
        if (crs_json_append(body, teams_fact_row(&sm.facts[i])))
            goto cleanup;
    }
    rc = crs_json_dump_compact(doc, out, outlen);

cleanup:
    json_decref(doc);
    summary_free(&sm);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Slack: an incoming-webhook message with blocks                                              */
/* ------------------------------------------------------------------------------------------ */

/* Slack's required escaping for text that it parses: & < > (which also defuses <!channel>). */
static char *slack_escape(const char *s)
{
    size_t n = 0, i;
    char *out, *p;

    for (i = 0; s[i]; i++)
        n += s[i] == '&' ? 5 : (s[i] == '<' || s[i] == '>') ? 4 : 1;
    out = crs_malloc(n + 1);
    if (!out)
        return NULL;
    for (p = out, i = 0; s[i]; i++) {
        const char *rep = s[i] == '&'   ? "&amp;"
                          : s[i] == '<' ? "&lt;"
                          : s[i] == '>' ? "&gt;"
                                        : NULL;
        if (rep) {
            memcpy(p, rep, strlen(rep));
            p += strlen(rep);
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return out;
}

static json_t *slack_text(const char *type, const char *text)
{
    json_t *o = json_object();

    if (!o)
        return NULL;
    if (crs_json_put(o, "type", json_string_nocheck(type)) ||
        crs_json_put(o, "text", json_string(text)) ||
        (strcmp(type, "plain_text") == 0 && crs_json_put(o, "emoji", json_false()))) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int body_slack(const Certrelay__V1__Event *ev, char **out, size_t *outlen)
{
    struct summary sm;
    json_t *doc = NULL, *blocks, *header, *section = NULL, *fields = NULL;
    char *title = NULL, *fallback = NULL, *header_text = NULL, *label = NULL;
    size_t i;
    int rc;

    if ((rc = summary_build(ev, &sm)))
        return rc;
    rc = CRS_ENOMEM;
    if (!(title = summary_title(&sm)) || !(fallback = slack_escape(title)) ||
        !(header_text = crs_strdup(title)))
        goto cleanup;
    /* A header block holds at most 150 characters. */
    crs_utf8_truncate(header_text, 150);
    if (!(doc = json_object()))
        goto cleanup;
    /* The top-level text is the notification fallback; mrkdwn=false keeps it literal. */
    if (crs_json_put(doc, "text", json_string(fallback)) ||
        crs_json_put(doc, "mrkdwn", json_false()) ||
        !(blocks = crs_json_child(doc, "blocks", json_array())) ||
        !(header = crs_json_child(blocks, NULL, json_object())) ||
        crs_json_put(header, "type", json_string_nocheck("header")) ||
        crs_json_put(header, "text", slack_text("plain_text", header_text)))
        goto cleanup;
    /*
     * A section shows its fields in two columns, so alternating title and value fields make a
     * table. Titles are CertRelay's own (mrkdwn for bold); values are plain_text, which Slack
     * never parses. A section takes at most 10 fields: a new one starts every 5 facts.
     */
    for (i = 0; i < sm.nfacts; i++) {
        if (i % 5 == 0) {
            if (!(section = crs_json_child(blocks, NULL, json_object())) ||
                crs_json_put(section, "type", json_string_nocheck("section")) ||
                !(fields = crs_json_child(section, "fields", json_array())))
                goto cleanup;
        }
        crs_free(label);
        if (!(label = crs_asprintf("*%s*", sm.facts[i].title)) ||
            crs_json_append(fields, slack_text("mrkdwn", label)) ||
            crs_json_append(fields, slack_text("plain_text", sm.facts[i].value)))
            goto cleanup;
    }
    rc = crs_json_dump_compact(doc, out, outlen);

cleanup:
    json_decref(doc);
    crs_free(label);
    crs_free(header_text);
    crs_free(fallback);
    crs_free(title);
    summary_free(&sm);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* CloudEvents 1.0, structured content mode                                                    */
/* ------------------------------------------------------------------------------------------ */

const char *crs_cloudevents_type(uint32_t kind)
{
    switch (kind) {
    case CRS_EVENT_ISSUED:
        return "org.certrelay.certificate.issued";
    case CRS_EVENT_PENDING:
        return "org.certrelay.certificate.pending";
    case CRS_EVENT_DENIED:
        return "org.certrelay.certificate.denied";
    case CRS_EVENT_REVOKED:
        return "org.certrelay.certificate.revoked";
    case CRS_EVENT_UNREVOKED:
        return "org.certrelay.certificate.unrevoked";
    case CRS_EVENT_RETRIEVE_PENDING:
        return "org.certrelay.certificate.retrieve_pending";
    case CRS_EVENT_IMPORTED:
        return "org.certrelay.certificate.imported";
    case CRS_EVENT_CRL_ISSUED:
        return "org.certrelay.crl.issued";
    case CRS_EVENT_STARTUP:
        return "org.certrelay.ca.startup";
    case CRS_EVENT_SHUTDOWN:
        return "org.certrelay.ca.shutdown";
    case CRS_EVENT_EXPIRING:
        return "org.certrelay.certificate.expiring";
    case CRS_EVENT_EXPIRED:
        return "org.certrelay.certificate.expired";
    case CRS_EVENT_CRL_EXPIRING:
        return "org.certrelay.crl.expiring";
    default:
        return NULL;
    }
}

char *crs_percent_encode(const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = 0, i;
    char *out, *p;

    if (!s)
        return NULL;
    for (i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        n += keep ? 1 : 3;
    }
    out = crs_malloc(n + 1);
    if (!out)
        return NULL;
    for (p = out, i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '.' || c == '_' || c == '~';
        if (keep) {
            *p++ = (char)c;
        } else {
            *p++ = '%';
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    *p = '\0';
    return out;
}

char *crs_cloudevents_source(const Certrelay__V1__Event *ev)
{
    const Certrelay__V1__CaInfo *ca = ev ? ev->ca : NULL;
    const char *host = ca && ca->host && ca->host[0] ? ca->host : "unknown";
    const char *name = "unknown";
    char *h = NULL, *n = NULL, *out = NULL;

    if (!ev)
        return NULL;
    if (ca && ca->sanitized_name && ca->sanitized_name[0])
        name = ca->sanitized_name;
    else if (ca && ca->config && ca->config[0])
        name = ca->config;
    h = crs_percent_encode(host);
    n = crs_percent_encode(name);
    if (h && n)
        out = crs_asprintf("/certrelay/%s/%s", h, n);
    crs_free(h);
    crs_free(n);
    return out;
}

static int body_cloudevents(const Certrelay__V1__Event *ev, char **out, size_t *outlen)
{
    uint32_t kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    const char *type = crs_cloudevents_type(kind);
    json_t *doc = NULL, *data = NULL;
    char *source = NULL, *subject = NULL;
    char when[32];
    int rc = CRS_ENOMEM;

    if (!type || !ev->event_id)
        return CRS_EINVAL;
    if (!(source = crs_cloudevents_source(ev)) || !(doc = json_object()))
        goto cleanup;
    if (ev->request && ev->request->has_request_id &&
        !(subject = crs_asprintf("request/%lld", (long long)ev->request->request_id)))
        goto cleanup;
    if (crs_json_put(doc, "specversion", json_string_nocheck("1.0")) ||
        crs_json_put(doc, "id", json_string(ev->event_id)) ||
        crs_json_put(doc, "source", json_string(source)) ||
        crs_json_put(doc, "type", json_string_nocheck(type)) ||
        (subject && crs_json_put(doc, "subject", json_string_nocheck(subject))))
        goto cleanup;
    if (ev->has_capture_time_ms) {
        crs_time_rfc3339(ev->capture_time_ms, when, sizeof when);
        if (crs_json_put(doc, "time", json_string_nocheck(when)))
            goto cleanup;
    }
    if (crs_json_put(doc, "datacontenttype", json_string_nocheck("application/json")))
        goto cleanup;
    data = crs_event_to_json(ev);
    if (crs_json_put(doc, "data", data))
        goto cleanup;
    rc = crs_json_dump_compact(doc, out, outlen);

cleanup:
    json_decref(doc);
    crs_free(source);
    crs_free(subject);
    return rc;
}

int crs_webhook_body(enum crs_webhook_format fmt, const Certrelay__V1__Event *ev, char **out,
                     size_t *outlen)
{
    int rc;

    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!ev || !out)
        return CRS_EINVAL;
    switch (fmt) {
    case CRS_WEBHOOK_JSON: {
        /* The same document as crs_event_to_json_text(ev, 0, ...), serialized faster. */
        json_t *doc = crs_event_to_json(ev);

        if (!doc)
            return CRS_ENOMEM;
        rc = crs_json_dump_compact(doc, out, outlen);
        json_decref(doc);
        return rc;
    }
    case CRS_WEBHOOK_CLOUDEVENTS:
        return body_cloudevents(ev, out, outlen);
    case CRS_WEBHOOK_TEAMS:
        return body_teams(ev, out, outlen);
    case CRS_WEBHOOK_SLACK:
        return body_slack(ev, out, outlen);
    default:
        return CRS_EINVAL;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* HTTP rules                                                                                  */
/* ------------------------------------------------------------------------------------------ */

static int is_tchar(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int crs_http_header_line_check(const char *line, char *err, size_t errlen)
{
    static const char *const reserved[] = {
        "content-type", "content-length", "host",       "transfer-encoding",
        "expect",       "connection",     "keep-alive", "upgrade",
        "te",           "trailer"};
    const char *colon;
    size_t namelen, i;
    const unsigned char *v;

    if (err && errlen)
        err[0] = '\0';
    if (!line)
        return CRS_EINVAL;
    if (strlen(line) > 4096) {
        snprintf(err, errlen, "header line longer than 4096 bytes");
        return CRS_EINVAL;
    }
    colon = strchr(line, ':');
    if (!colon || colon == line) {
        snprintf(err, errlen, "header must have the form 'Name: value'");
        return CRS_EINVAL;
    }
    namelen = (size_t)(colon - line);
    for (i = 0; i < namelen; i++) {
        if (!is_tchar((unsigned char)line[i])) {
            snprintf(err, errlen, "the header name is not a valid HTTP token");
            return CRS_EINVAL;
        }
    }
    for (i = 0; i < sizeof reserved / sizeof reserved[0]; i++) {
        if (strlen(reserved[i]) == namelen && crs_ascii_ncasecmp(line, reserved[i], namelen) == 0) {
            snprintf(err, errlen, "the %s header is set by CertRelay and cannot be configured",
                     reserved[i]);
            return CRS_EINVAL;
        }
    }
    if (namelen >= 8 && crs_ascii_ncasecmp(line, "webhook-", 8) == 0) {
        snprintf(err, errlen, "webhook-* headers are reserved for Standard Webhooks signatures");
        return CRS_EINVAL;
    }
    v = (const unsigned char *)colon + 1;
    while (*v == ' ' || *v == '\t')
        v++;
    if (*v == '\0') {
        snprintf(err, errlen, "the header has an empty value");
        return CRS_EINVAL;
    }
    for (; *v; v++) {
        if ((*v < 0x20 && *v != '\t') || *v == 0x7f) {
            snprintf(err, errlen, "the header value holds a control character");
            return CRS_EINVAL;
        }
    }
    return 0;
}

int crs_http_status_outcome(long status)
{
    if (status >= 200 && status <= 299)
        return 0;
    if (status == 408 || status == 429 || (status >= 500 && status <= 599))
        return 1;
    if (status >= 400 && status <= 499)
        return 2;
    /* 1xx at the end, 3xx (redirects are not followed) or nonsense: the receiver may be in a
     * transient state, and the attempt limit bounds the cost. */
    return 1;
}
