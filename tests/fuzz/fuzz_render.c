/*
 * Fuzz target for the event renderers: every way an event's bytes, which come from whoever asked
 * the CA for a certificate, turn into text for a destination. The input is a packed Event (decoded
 * as the dispatcher does, with crs_pb_check first); then:
 *   - the JSON event document, compact and pretty (render/json.c);
 *   - every webhook format's body, and the CloudEvents source (sinks/webhook/formats.c);
 *   - a template using every field, rendered with every escaping (render/template.c), and the
 *     default mail subject and body of the event's kind;
 *   - the mail helpers: header text, CRLF conversion, requester candidates, subjectAltName
 *     e-mail addresses from the certificate DER, Message-ID (sinks/email/message.c).
 * The raw input, as a string, also goes through the mailbox and header helpers. Checked: what
 * each destination relies on (no CR or LF in a header, no separator in a file name, lengths as
 * reported). Built like fuzz_frame.c: a libFuzzer target with clang, a corpus replayer everywhere.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "config/config.h"
#include "render/json.h"
#include "render/template.h"
#include "sinks/email/message.h"
#include "sinks/webhook/formats.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_MAX (256u * 1024u)

static struct crs_template *all_fields;

static void check_len(const char *s, size_t len)
{
    if (s == NULL || strlen(s) != len)
        abort();
}

/* One template holding every field, compiled once. */
static struct crs_template *template_all(void)
{
    const char *const *f;
    char src[4096];
    size_t n = 0;
    char err[128];

    if (all_fields != NULL)
        return all_fields;
    for (f = crs_template_fields(); *f != NULL && n + 64 < sizeof(src); f++)
        n += (size_t)snprintf(src + n, sizeof(src) - n, "{{%s}}-", *f);
    if (crs_template_compile(src, &all_fields, err, sizeof(err)) != 0)
        abort();
    return all_fields;
}

static void render_templates(const Certrelay__V1__Event *ev)
{
    static const enum crs_escape escapes[] = {CRS_ESCAPE_NONE, CRS_ESCAPE_FILENAME, CRS_ESCAPE_HTML,
                                              CRS_ESCAPE_HEADER};
    uint32_t kind = ev->has_kind ? (uint32_t)ev->kind : 0;
    struct crs_template *t;
    char err[128];
    size_t i;

    for (i = 0; i < sizeof(escapes) / sizeof(escapes[0]); i++) {
        char *out = NULL;
        if (crs_template_render(template_all(), ev, escapes[i], &out) == 0) {
            if (escapes[i] == CRS_ESCAPE_FILENAME && (strchr(out, '/') || strchr(out, '\\')))
                abort();
            if (escapes[i] == CRS_ESCAPE_HEADER && (strchr(out, '\r') || strchr(out, '\n')))
                abort();
            if (escapes[i] == CRS_ESCAPE_HTML && strchr(out, '<'))
                abort();
        }
        crs_free(out);
    }
    if (crs_template_compile(crs_mail_default_subject(kind), &t, err, sizeof(err)) == 0) {
        char *subject = NULL, *header = NULL;
        if (crs_template_render(t, ev, CRS_ESCAPE_HEADER, &subject) == 0 &&
            crs_mail_header_text(subject, 998, &header) == 0 &&
            (strchr(header, '\r') || strchr(header, '\n')))
            abort();
        crs_free(subject);
        crs_free(header);
        crs_template_free(t);
    }
    if (crs_template_compile(crs_mail_default_body(kind), &t, err, sizeof(err)) == 0) {
        char *body = NULL, *crlf = NULL;
        size_t len = 0;
        if (crs_template_render(t, ev, CRS_ESCAPE_NONE, &body) == 0 &&
            crs_mail_crlf(body, &crlf, &len) == 0)
            check_len(crlf, len);
        crs_free(body);
        crs_free(crlf);
        crs_template_free(t);
    }
}

static void render_mail(const Certrelay__V1__Event *ev)
{
    char **cands = NULL, **sans = NULL, *mid;
    size_t n = 0, nsans = 0;

    if (crs_mail_requester_candidates(ev, &cands, &n) == 0 && n > 8)
        abort();
    crs_strv_free(cands);
    if (ev->certificate != NULL && ev->certificate->has_raw_certificate)
        crs_der_san_emails(ev->certificate->raw_certificate.data,
                           ev->certificate->raw_certificate.len, 1, &sans, &nsans, 8);
    while (nsans > 0)
        crs_free(sans[--nsans]);
    crs_free(sans);
    mid = crs_mail_message_id(ev->event_id, "sink", ev->ca ? ev->ca->host : NULL);
    if (mid != NULL && (strchr(mid, '\r') || strchr(mid, '\n') || strchr(mid, ' ')))
        abort();
    crs_free(mid);
}

static void render_event(const uint8_t *data, size_t size)
{
    static const enum crs_webhook_format formats[] = {CRS_WEBHOOK_JSON, CRS_WEBHOOK_CLOUDEVENTS,
                                                      CRS_WEBHOOK_TEAMS, CRS_WEBHOOK_SLACK};
    Certrelay__V1__Event *ev = NULL;
    char *out = NULL;
    size_t len = 0, i;

    if (crs_event_unpack(data, size, &ev) != 0)
        return;
    if (crs_event_to_json_text(ev, 0, &out, &len) == 0)
        check_len(out, len);
    crs_free(out);
    out = NULL;
    if (crs_event_to_json_text(ev, 1, &out, &len) == 0)
        check_len(out, len);
    crs_free(out);
    for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        out = NULL;
        if (crs_webhook_body(formats[i], ev, &out, &len) == 0)
            check_len(out, len);
        crs_free(out);
    }
    crs_free(crs_cloudevents_source(ev));
    render_templates(ev);
    render_mail(ev);
    crs_event_free(ev);
}

static void render_text(const char *text)
{
    char *display = NULL, *addr = NULL, *header = NULL, err[128];

    if (crs_mail_mailbox_parse(text, &display, &addr, err, sizeof(err)) == 0) {
        char *mb = crs_mail_mailbox_format(display, addr);
        if (!crs_mail_addr_valid(addr) || mb == NULL || strchr(mb, '\n') || strchr(mb, '\r'))
            abort();
        crs_free(mb);
    }
    crs_free(display);
    crs_free(addr);
    if (crs_mail_header_text(text, 200, &header) == 0 &&
        (strchr(header, '\r') || strchr(header, '\n')))
        abort();
    crs_free(header);
    crs_free(crs_percent_encode(text));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text;

    if (size > FUZZ_MAX)
        return 0;
    render_event(data, size);
    text = crs_malloc(size + 1);
    if (text == NULL)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    render_text(text);
    crs_free(text);
    return 0;
}
