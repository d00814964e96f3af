/*
 * The email delivery driver: one SMTP transaction per attempt through the loop's shared curl
 * multi handle, with the message built by curl's MIME API:
 *
 *   Date: Tue, 01 Jul 2025 10:00:00 +0000
 *   From: "CertRelay" <certrelay@example.com>
 *   To: pki-team@example.com, requester@example.com
 *   Cc: ...                                   (Bcc recipients get the message, not a header)
 *   Subject: [Corp CA] Certificate issued: www.example.com (request 4242)
 *   Message-ID: <EVENT_ID.SINK@HOST>          (the same on every retry of this event and sink)
 *   Auto-Submitted: auto-generated
 *   X-CertRelay-Event: issued
 *   X-CertRelay-Event-Id: EVENT_ID
 *   Mime-Version: 1.0
 *   Content-Type: multipart/mixed; boundary=...
 *     text/plain; charset=utf-8 (quoted-printable)   or multipart/alternative with text/html
 *     application/pkix-cert; <serial>.cer (base64)   when attach_certificate = true
 *
 * Injection: the subject is the only header whose text comes from a certificate; it is rendered
 * with CRS_ESCAPE_HEADER, made one line again and RFC 2047 encoded when not plain ASCII, so no CR
 * or LF ever reaches the header block. The requester's address is the only SMTP command argument
 * from a certificate; it must pass crs_mail_addr_valid (a plain addr-spec: no CR, LF, spaces,
 * commas or angle brackets) or it is skipped with a log line. Everything else comes from the
 * configuration, where it was checked the same way.
 */
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

#include "certrelay/alloc.h"
#include "certrelay/clock.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "certrelay/event.h"
#include "certrelay/log.h"
#include "sinks/email/message.h"
#include "certrelay/sanitize.h"
#include "certrelay/secret.h"
#include "sinks/email/settings.h"
#include "sinks/sink.h"
#include "render/template.h"
#include "certrelay/uuid.h"
#include "curl_uv.h"
#include "sinks/curl_attempt.h"

#define EMAIL_PASSWORD_FILE_MAX (64u * 1024u)
/* A subject is cut here (bytes of UTF-8) before encoding: a header line stays under 998. */
#define EMAIL_SUBJECT_MAX 250u
/* Event kinds are bits 0..12: certsrv's ten and the broker's three alerts (expiry.c). */
#define EMAIL_KINDS 13u

struct email_sink {
    struct crs_curl_attempts attempts; /* first: crs_curl_sink_cancel_all finds it there */
    struct crs_sink *sink;
    const struct crs_email_sink_config *ec;
    char *password;
    char *where; /* smtp(s)://host:port for logs */
    char host[256];
    char *from_header; /* "From: ..." */
    char *mail_from;   /* "<addr>" */
    struct crs_template *def_subject[EMAIL_KINDS];
    struct crs_template *def_body[EMAIL_KINDS];
};

struct email_attempt {
    struct crs_curl_attempt base; /* first: the shared code's callbacks recover the attempt */
    struct email_sink *es;
    struct curl_slist *headers;
    struct curl_slist *rcpt;
    curl_mime *mime;
    size_t nrcpt;
    int skipped; /* nothing to send (no recipient) */
};

/* ------------------------------------------------------------------------------------------ */
/* Open and close                                                                              */
/* ------------------------------------------------------------------------------------------ */

static unsigned kind_index(uint32_t kind)
{
    unsigned i;

    for (i = 0; i < EMAIL_KINDS; i++) {
        if (kind == (1u << i))
            return i;
    }
    return EMAIL_KINDS;
}

static void email_sink_free(void *impl)
{
    struct email_sink *es = impl;
    unsigned i;

    if (es == NULL)
        return;
    crs_secret_free_str(es->password);
    crs_free(es->where);
    crs_free(es->from_header);
    crs_free(es->mail_from);
    for (i = 0; i < EMAIL_KINDS; i++) {
        crs_template_free(es->def_subject[i]);
        crs_template_free(es->def_body[i]);
    }
    crs_free(es);
}

static int read_password(const char *sink, const char *path, char **out)
{
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    *out = NULL;
    rc = crs_secret_read_file(path, EMAIL_PASSWORD_FILE_MAX, &data, &len);
    if (rc != 0) {
        crs_error("sink %s: cannot read password_file '%s': %s", sink, path, crs_strerror(rc));
        return rc;
    }
    /* The password is the first line; a trailing newline from an editor is not part of it. */
    while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
        len--;
    if (len == 0 || memchr(data, '\0', len) || memchr(data, '\n', len) || memchr(data, '\r', len)) {
        crs_error("sink %s: password_file '%s' must hold one line", sink, path);
        rc = CRS_ECONFIG;
    } else {
        *out = crs_strndup((const char *)data, len);
        rc = *out ? 0 : CRS_ENOMEM;
    }
    crs_secret_free(data, len);
    return rc;
}

/*
 * Compiles the built-in template text(kind) of every event kind into v. They are compiled once
 * per sink; a failure here is a bug, not a configuration error, and unit tests compile every one
 * of them.
 */
static int defaults_compile(const char *(*text)(uint32_t kind), struct crs_template **v)
{
    char err[200];
    unsigned i;
    int rc;

    for (i = 0; i < EMAIL_KINDS; i++) {
        rc = crs_template_compile(text(1u << i), &v[i], err, sizeof(err));
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int email_open(struct crs_sink *sink)
{
    const struct crs_email_sink_config *ec;
    struct email_sink *es;
    const char *name;
    size_t hostlen;
    int rc;

    if (sink == NULL || sink->cfg == NULL || sink->cfg->typed == NULL || sink->loop == NULL)
        return CRS_EINVAL;
    ec = sink->cfg->typed;
    name = sink->cfg->name;
    es = crs_calloc(1, sizeof(*es));
    if (es == NULL)
        return CRS_ENOMEM;
    es->sink = sink;
    es->ec = ec;
    rc = crs_curl_url_where(ec->url, &es->where);
    if (rc != 0) {
        if (rc == CRS_ECONFIG)
            crs_error("sink %s: the SMTP URL cannot be parsed", name);
        goto cleanup;
    }
    if (ec->password_file != NULL) {
        rc = read_password(name, ec->password_file, &es->password);
        if (rc != 0)
            goto cleanup;
    }
    hostlen = sizeof(es->host);
    if (uv_os_gethostname(es->host, &hostlen) != 0)
        snprintf(es->host, sizeof(es->host), "localhost");
    {
        char *mb = crs_mail_mailbox_format(ec->from.display, ec->from.addr);
        es->from_header = mb ? crs_asprintf("From: %s", mb) : NULL;
        crs_free(mb);
    }
    es->mail_from = crs_asprintf("<%s>", ec->from.addr);
    if (es->from_header == NULL || es->mail_from == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    if ((ec->subject == NULL &&
         (rc = defaults_compile(crs_mail_default_subject, es->def_subject)) != 0) ||
        (ec->body == NULL && (rc = defaults_compile(crs_mail_default_body, es->def_body)) != 0))
        goto cleanup;
    rc = crs_curl_sink_acquire(sink);
    if (rc != 0)
        goto cleanup;
    if (ec->tls.insecure)
        crs_warn("sink %s: insecure = true: the TLS certificate of %s is NOT verified", name,
                 es->where);
    if (!ec->implicit_tls && ec->starttls != CRS_STARTTLS_REQUIRED && es->password != NULL)
        crs_warn("sink %s: starttls = %s: the SMTP password may be sent without TLS to %s", name,
                 ec->starttls == CRS_STARTTLS_OFF ? "off" : "opportunistic", es->where);
    crs_info("sink %s: email through %s (%s)", name, es->where,
             ec->implicit_tls                             ? "implicit TLS"
             : ec->starttls == CRS_STARTTLS_REQUIRED      ? "STARTTLS required"
             : ec->starttls == CRS_STARTTLS_OPPORTUNISTIC ? "STARTTLS opportunistic"
                                                          : "no TLS");
    sink->impl = es;
    return 0;

cleanup:
    email_sink_free(es);
    return rc;
}

static void email_close(struct crs_sink *sink)
{
    crs_curl_sink_close(sink, email_sink_free);
}

/* ------------------------------------------------------------------------------------------ */
/* Building one message                                                                        */
/* ------------------------------------------------------------------------------------------ */

static int list_add(struct curl_slist **list, const char *line)
{
    struct curl_slist *l;

    if (line == NULL)
        return CRS_ENOMEM;
    l = curl_slist_append(*list, line);
    if (l == NULL)
        return CRS_ENOMEM;
    *list = l;
    return 0;
}

/* Appends a line made for the purpose and frees it; NULL (its allocation failed) is CRS_ENOMEM. */
static int header_take(struct email_attempt *a, char *line)
{
    int rc = list_add(&a->headers, line);

    crs_free(line);
    return rc;
}

/* Adds "<addr>" to the envelope once, however often it is configured. */
static int rcpt_add(struct email_attempt *a, const char *addr)
{
    struct curl_slist *l;
    size_t len = strlen(addr);
    char *line;
    int rc;

    for (l = a->rcpt; l != NULL; l = l->next) {
        if (strlen(l->data) == len + 2 && crs_ascii_ncasecmp(l->data + 1, addr, len) == 0)
            return 0;
    }
    line = crs_asprintf("<%s>", addr);
    rc = list_add(&a->rcpt, line);
    crs_free(line);
    if (rc == 0)
        a->nrcpt++;
    return rc;
}

/* Joins mailboxes (and an extra address) into "Name: a, b"; NULL line when there are none. */
static int header_mailboxes(const char *name, const struct crs_mailbox *v, size_t n,
                            const char *extra, char **out)
{
    size_t i, len = strlen(name) + 2;
    char **parts;
    char *line = NULL, *p;
    int rc = CRS_ENOMEM;

    *out = NULL;
    if (n == 0 && extra == NULL)
        return 0;
    parts = crs_calloc(n + 1, sizeof(*parts));
    if (parts == NULL)
        return CRS_ENOMEM;
    for (i = 0; i < n; i++) {
        parts[i] = crs_mail_mailbox_format(v[i].display, v[i].addr);
        if (parts[i] == NULL)
            goto cleanup;
        len += strlen(parts[i]) + 2;
    }
    if (extra != NULL)
        len += strlen(extra) + 2;
    line = crs_malloc(len + 1);
    if (line == NULL)
        goto cleanup;
    p = line + snprintf(line, len + 1, "%s: ", name);
    for (i = 0; i < n; i++)
        p += snprintf(p, (size_t)(line + len + 1 - p), "%s%s", i ? ", " : "", parts[i]);
    if (extra != NULL)
        snprintf(p, (size_t)(line + len + 1 - p), "%s%s", n ? ", " : "", extra);
    *out = line;
    line = NULL;
    rc = 0;

cleanup:
    for (i = 0; i < n; i++)
        crs_free(parts[i]);
    crs_free(parts);
    crs_free(line);
    return rc;
}

/* The requester's address when to_requester is on: the first candidate that is a plain
 * addr-spec; bad ones are logged (sanitized) and skipped. NULL when there is none. */
static int requester_address(struct email_sink *es, const Certrelay__V1__Event *ev, char **out)
{
    char **cands = NULL;
    size_t n = 0, i;
    int rc;

    *out = NULL;
    rc = crs_mail_requester_candidates(ev, &cands, &n);
    if (rc != 0)
        return rc;
    for (i = 0; i < n; i++) {
        if (crs_mail_addr_valid(cands[i])) {
            *out = crs_strdup(cands[i]);
            rc = *out ? 0 : CRS_ENOMEM;
            break;
        } else {
            char *shown = crs_utf8_sanitize(cands[i], strlen(cands[i]));
            if (shown != NULL) {
                crs_sanitize_oneline(shown);
                if (strlen(shown) > 120)
                    shown[120] = '\0';
            }
            crs_warn("sink %s: event %s: requester address '%s' is not a plain address; skipped",
                     es->sink->cfg->name, ev->event_id, shown ? shown : "?");
            crs_free(shown);
        }
    }
    crs_strv_free(cands);
    return rc;
}

/*
 * Renders a body template to CRLF text and adds it as a quoted-printable part. Plain text bodies
 * are rendered with CRS_ESCAPE_HEADER: escaping applies to values only, so the template keeps its
 * lines while a value with line breaks stays on its own line and cannot fake a line of facts
 * ("Template: Administrator") below it.
 */
static int add_text_part(curl_mime *mime, const struct crs_template *t, const struct crs_fields *f,
                         enum crs_escape esc, const char *type)
{
    char *text = NULL, *crlf = NULL;
    size_t len = 0;
    curl_mimepart *part;
    int rc;

    rc = crs_template_render_fields(t, f, esc, &text);
    if (rc != 0)
        return rc;
    rc = crs_mail_crlf(text, &crlf, &len);
    crs_free(text);
    if (rc != 0)
        return rc;
    part = curl_mime_addpart(mime);
    if (part == NULL || curl_mime_data(part, crlf, len) != CURLE_OK ||
        curl_mime_type(part, type) != CURLE_OK ||
        curl_mime_encoder(part, "quoted-printable") != CURLE_OK)
        rc = CRS_ENOMEM;
    crs_free(crlf);
    return rc;
}

static int build_mime(struct email_sink *es, struct email_attempt *a, CURL *easy,
                      const Certrelay__V1__Event *ev, const struct crs_fields *f)
{
    const struct crs_email_sink_config *ec = es->ec;
    unsigned k = kind_index(ev->has_kind ? (uint32_t)ev->kind : 0);
    const struct crs_template *body;
    curl_mimepart *part;
    int rc;

    if (k >= EMAIL_KINDS)
        return CRS_EPROTO;
    body = ec->body ? ec->body : es->def_body[k];
    a->mime = curl_mime_init(easy);
    if (a->mime == NULL)
        return CRS_ENOMEM;
    if (ec->html_body != NULL) {
        curl_mime *alt = curl_mime_init(easy);

        if (alt == NULL)
            return CRS_ENOMEM;
        if ((rc = add_text_part(alt, body, f, CRS_ESCAPE_HEADER, "text/plain; charset=utf-8")) ||
            (rc = add_text_part(alt, ec->html_body, f, CRS_ESCAPE_HTML,
                                "text/html; charset=utf-8"))) {
            curl_mime_free(alt);
            return rc;
        }
        part = curl_mime_addpart(a->mime);
        if (part == NULL || curl_mime_subparts(part, alt) != CURLE_OK) {
            curl_mime_free(alt);
            return CRS_ENOMEM;
        }
        /* The part owns alt from here on. */
        if (curl_mime_type(part, "multipart/alternative") != CURLE_OK)
            return CRS_ENOMEM;
    } else if ((rc = add_text_part(a->mime, body, f, CRS_ESCAPE_HEADER,
                                   "text/plain; charset=utf-8"))) {
        return rc;
    }
    if (ec->attach_certificate && ev->certificate && ev->certificate->has_raw_certificate &&
        ev->certificate->raw_certificate.len > 0) {
        char serial[129], fname[160];

        crs_event_serial_hex(ev, serial, sizeof(serial));
        /* Only hex digits reach the file name. */
        snprintf(fname, sizeof(fname), "%s.cer", serial[0] ? serial : "certificate");
        part = curl_mime_addpart(a->mime);
        if (part == NULL ||
            curl_mime_data(part, (const char *)ev->certificate->raw_certificate.data,
                           ev->certificate->raw_certificate.len) != CURLE_OK ||
            curl_mime_type(part, "application/pkix-cert") != CURLE_OK ||
            curl_mime_encoder(part, "base64") != CURLE_OK ||
            curl_mime_filename(part, fname) != CURLE_OK)
            return CRS_ENOMEM;
    }
    return 0;
}

static int build_headers(struct email_sink *es, struct email_attempt *a,
                         const Certrelay__V1__Event *ev, const struct crs_fields *f,
                         const char *requester)
{
    const struct crs_email_sink_config *ec = es->ec;
    unsigned k = kind_index(ev->has_kind ? (uint32_t)ev->kind : 0);
    const struct crs_template *st = ec->subject ? ec->subject : es->def_subject[k];
    char date[40], *line = NULL, *subject = NULL, *enc = NULL, *msgid;
    const char *kname = crs_event_name((uint32_t)ev->kind);
    int rc;

    crs_mail_date(crs_now_ms(), date, sizeof(date));
    if ((rc = header_take(a, crs_asprintf("Date: %s", date))) ||
        (rc = list_add(&a->headers, es->from_header)))
        return rc;
    rc = header_mailboxes("To", ec->to, ec->nto, requester, &line);
    if (rc)
        return rc;
    /* A message with only Bcc recipients still says who it is for, without naming them. */
    if (line == NULL && ec->ncc == 0)
        line = crs_strdup("To: undisclosed-recipients:;");
    if ((rc = header_take(a, line)))
        return rc;
    rc = header_mailboxes("Cc", ec->cc, ec->ncc, NULL, &line);
    if (rc || (line != NULL && (rc = header_take(a, line))))
        return rc;
    rc = crs_template_render_fields(st, f, CRS_ESCAPE_HEADER, &subject);
    if (rc)
        return rc;
    rc = crs_mail_header_text(subject, EMAIL_SUBJECT_MAX, &enc);
    crs_free(subject);
    if (rc)
        return rc;
    line = crs_asprintf("Subject: %s", enc);
    crs_free(enc);
    if ((rc = header_take(a, line)))
        return rc;
    msgid = crs_mail_message_id(ev->event_id, es->sink->cfg->name, es->host);
    line = msgid ? crs_asprintf("Message-ID: %s", msgid) : NULL;
    crs_free(msgid);
    if ((rc = header_take(a, line)) ||
        (rc = list_add(&a->headers, "Auto-Submitted: auto-generated")) ||
        (rc = header_take(a, crs_asprintf("X-CertRelay-Event: %s", kname ? kname : "unknown"))))
        return rc;
    return header_take(a, crs_asprintf("X-CertRelay-Event-Id: %s", ev->event_id));
}

/* ------------------------------------------------------------------------------------------ */
/* Outcome                                                                                     */
/* ------------------------------------------------------------------------------------------ */

/* The MIME tree belongs to the easy handle's lifetime: it is freed before the handle. */
static void attempt_release(struct crs_curl_attempt *base)
{
    struct email_attempt *a = (struct email_attempt *)base;

    curl_mime_free(a->mime);
    if (base->xfer.easy != NULL)
        curl_easy_cleanup(base->xfer.easy);
    curl_slist_free_all(a->headers);
    curl_slist_free_all(a->rcpt);
    crs_free(a);
}

/*
 * SMTP replies: 2xx delivered; 4xx transient; 5xx permanent (the server refused the sender, the
 * recipients or the message), except the authentication replies 530, 534, 535 and 538, which an
 * administrator fixes in the configuration and which are therefore retried. Failures without a
 * reply (connection, TLS, timeout, STARTTLS refused) are transient.
 */
static void attempt_outcome(struct crs_curl_attempt *base, CURLcode result, long code,
                            struct crs_delivery_result *r)
{
    struct email_attempt *a = (struct email_attempt *)base;
    struct email_sink *es = a->es;

    if (a->skipped) {
        r->outcome = CRS_DELIVERY_OK;
        crs_info("sink %s: event %s: no recipient (no usable requester address): nothing sent",
                 es->sink->cfg->name, base->d->event->event_id);
    } else if (result == CURLE_OK) {
        r->outcome = CRS_DELIVERY_OK;
    } else {
        int auth = code == 530 || code == 534 || code == 535 || code == 538 ||
                   result == CURLE_LOGIN_DENIED;

        r->outcome =
            code >= 500 && code <= 599 && !auth ? CRS_DELIVERY_PERMANENT : CRS_DELIVERY_RETRY;
        snprintf(r->error, sizeof(r->error), "SMTP %ld, curl %d from %.60s: %s%.120s", code,
                 (int)result, es->where, auth ? "authentication failed: " : "",
                 crs_curl_attempt_error(base, result));
        crs_sanitize_oneline(r->error);
    }
}

static const struct crs_curl_attempt_ops email_attempt_ops = {
    .outcome = attempt_outcome,
    .release = attempt_release,
};

/* ------------------------------------------------------------------------------------------ */
/* One attempt                                                                                 */
/* ------------------------------------------------------------------------------------------ */

static int email_deliver(struct crs_sink *sink, struct crs_delivery *d)
{
    struct email_sink *es = sink ? sink->impl : NULL;
    const struct crs_email_sink_config *ec;
    const Certrelay__V1__Event *ev;
    struct email_attempt *a;
    char *requester = NULL;
    struct crs_fields *fields = NULL;
    CURL *easy;
    CURLcode c = CURLE_OK;
    size_t i;
    int rc;

    if (es == NULL || d == NULL || d->event == NULL || d->done == NULL)
        return CRS_EINVAL;
    ev = d->event;
    ec = es->ec;
    /* The id lands in Message-ID and an X- header: it must be the UUID the broker checked. */
    if (ev->event_id == NULL || !crs_uuid_valid(ev->event_id) || !ev->has_kind ||
        kind_index((uint32_t)ev->kind) >= EMAIL_KINDS)
        return CRS_EPROTO;
    a = crs_calloc(1, sizeof(*a));
    if (a == NULL)
        return CRS_ENOMEM;
    crs_curl_attempt_init(&a->base, &es->attempts, d, &email_attempt_ops);
    a->es = es;

    for (i = 0; i < ec->nto; i++)
        if ((rc = rcpt_add(a, ec->to[i].addr)))
            goto cleanup;
    for (i = 0; i < ec->ncc; i++)
        if ((rc = rcpt_add(a, ec->cc[i].addr)))
            goto cleanup;
    for (i = 0; i < ec->nbcc; i++)
        if ((rc = rcpt_add(a, ec->bcc[i].addr)))
            goto cleanup;
    if (ec->to_requester) {
        rc = requester_address(es, ev, &requester);
        if (rc != 0)
            goto cleanup;
        if (requester != NULL && (rc = rcpt_add(a, requester)))
            goto cleanup;
    }
    if (a->nrcpt == 0) {
        /* Only to_requester was configured and this event has no usable address. */
        a->skipped = 1;
        rc = crs_curl_multi_defer(sink->curl, &a->base.xfer, CURLE_OK);
        if (rc != 0)
            goto cleanup;
        goto started;
    }

    /* The attempt owns the handle from here on: attempt_release() cleans it up. */
    easy = a->base.xfer.easy = curl_easy_init();
    if (easy == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    /* The template fields are computed once for the subject and every body part. */
    if ((rc = crs_fields_new(ev, &fields)) || (rc = build_headers(es, a, ev, fields, requester)) ||
        (rc = build_mime(es, a, easy, ev, fields)))
        goto cleanup;
    rc = crs_curl_setup(easy, sink->cfg->timeout_ms, "smtp,smtps", &ec->tls);
    if (rc != 0)
        goto cleanup;
#define SET(opt, val) CRS_CURL_SET(c, easy, opt, val)
    SET(CURLOPT_URL, ec->url);
    /*
     * A fresh connection per message, closed afterwards. libcurl matches a cached smtp://
     * connection by host, port and credentials but not by STARTTLS policy, so a cleartext
     * connection left by an `opportunistic` or `off` sink could carry the message of a `required`
     * one. Mail volume is low; a handshake per message is the price of never sending in clear.
     */
    SET(CURLOPT_FRESH_CONNECT, 1L);
    SET(CURLOPT_FORBID_REUSE, 1L);
    SET(CURLOPT_ERRORBUFFER, a->base.errbuf);
    SET(CURLOPT_MAIL_FROM, es->mail_from);
    SET(CURLOPT_MAIL_RCPT, a->rcpt);
    /* One refused recipient (a stale requester address) must not cost the others the message. */
#if LIBCURL_VERSION_NUM >= 0x080200
    SET(CURLOPT_MAIL_RCPT_ALLOWFAILS, 1L);
#else
    SET(CURLOPT_MAIL_RCPT_ALLLOWFAILS, 1L);
#endif
    SET(CURLOPT_HTTPHEADER, a->headers);
    SET(CURLOPT_MIMEPOST, a->mime);
    if (ec->implicit_tls || ec->starttls == CRS_STARTTLS_REQUIRED)
        SET(CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    else if (ec->starttls == CRS_STARTTLS_OPPORTUNISTIC)
        SET(CURLOPT_USE_SSL, (long)CURLUSESSL_TRY);
    else
        SET(CURLOPT_USE_SSL, (long)CURLUSESSL_NONE);
    if (ec->username != NULL) {
        SET(CURLOPT_USERNAME, ec->username);
        SET(CURLOPT_PASSWORD, es->password);
    }
#undef SET
    if (c != CURLE_OK) {
        rc = crs_curl_code_error(c);
        goto cleanup;
    }
    rc = crs_curl_multi_add(sink->curl, &a->base.xfer);
    if (rc != 0)
        goto cleanup;

started:
    crs_fields_free(fields);
    crs_free(requester);
    crs_curl_attempt_link(&a->base);
    return 0;

cleanup:
    crs_fields_free(fields);
    crs_free(requester);
    attempt_release(&a->base);
    return rc;
}

const struct crs_sink_driver crs_email_driver = {
    .open = email_open,
    .deliver = email_deliver,
    .cancel_all = crs_curl_sink_cancel_all,
    .close = email_close,
};
