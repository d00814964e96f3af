/*
 * Mail formatting for the email sink (message.h): addresses, header
 * encodings, the requester's address, and the default templates.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/base64.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "certrelay/event.h"
#include "render/json.h"
#include "sinks/email/message.h"
#include "certrelay/sanitize.h"
#include "certrelay/timefmt.h"

/* ------------------------------------------------------------------------------------------ */
/* Addresses                                                                                   */
/* ------------------------------------------------------------------------------------------ */

/* RFC 5322 atext: the characters of a dot-atom other than the dot. */
static int is_atext(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

static int is_ldh(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

int crs_mail_addr_valid(const char *addr)
{
    const char *at, *p, *label;
    size_t len;

    if (!addr)
        return 0;
    len = strlen(addr);
    if (len < 3 || len > CRS_MAIL_ADDR_MAX)
        return 0;
    at = strchr(addr, '@');
    if (!at || at == addr || strchr(at + 1, '@') || at - addr > 64)
        return 0;
    /* Local part: dot-atom. */
    if (addr[0] == '.' || at[-1] == '.')
        return 0;
    for (p = addr; p < at; p++) {
        if (*p == '.') {
            if (p[1] == '.')
                return 0;
        } else if (!is_atext((unsigned char)*p)) {
            return 0;
        }
    }
    /* Domain: dot-separated labels of letters, digits and inner hyphens. */
    label = at + 1;
    if (*label == '\0')
        return 0;
    for (p = label;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t n = (size_t)(p - label);
            if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
                return 0;
            if (*p == '\0')
                break;
            label = p + 1;
        } else if (!is_ldh((unsigned char)*p)) {
            return 0;
        }
    }
    return 1;
}

static int err_out(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
    return CRS_EINVAL;
}

int crs_mail_mailbox_parse(const char *s, char **display, char **addr, char *err, size_t errlen)
{
    const char *lt, *gt, *start, *end;
    char *d = NULL, *a = NULL;
    size_t i;

    if (display)
        *display = NULL;
    if (addr)
        *addr = NULL;
    if (err && errlen)
        err[0] = '\0';
    if (!s || !display || !addr)
        return CRS_EINVAL;
    while (*s == ' ' || *s == '\t')
        s++;
    lt = strchr(s, '<');
    if (!lt) {
        end = s + strlen(s);
        while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        a = crs_strndup(s, (size_t)(end - s));
        if (!a)
            return CRS_ENOMEM;
    } else {
        gt = strchr(lt, '>');
        if (!gt || gt[1 + strspn(gt + 1, " \t")] != '\0' || strchr(lt + 1, '<'))
            return err_out(err, errlen, "expected 'Name <user@example.com>' or an address");
        start = s;
        end = lt;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
            end--;
        if (end - start >= 2 && start[0] == '"' && end[-1] == '"') {
            start++;
            end--;
        }
        for (i = 0; start + i < end; i++) {
            unsigned char c = (unsigned char)start[i];
            if (c < 0x20 || c == 0x7f || c == '"' || c == '<' || c == '>' || c == '\\')
                return err_out(err, errlen,
                               "a display name must not hold quotes, backslashes, angle brackets "
                               "or control characters");
        }
        if (end > start && !(d = crs_strndup(start, (size_t)(end - start))))
            return CRS_ENOMEM;
        a = crs_strndup(lt + 1, (size_t)(gt - lt - 1));
        if (!a) {
            crs_free(d);
            return CRS_ENOMEM;
        }
    }
    if (!crs_mail_addr_valid(a)) {
        crs_free(d);
        crs_free(a);
        return err_out(err, errlen,
                       "not a plain ASCII address (user@example.com): no spaces, quotes, commas "
                       "or angle brackets");
    }
    *display = d;
    *addr = a;
    return 0;
}

char *crs_mail_mailbox_format(const char *display, const char *addr)
{
    char *enc = NULL, *out;
    const unsigned char *p;
    int ascii = 1;

    if (!addr)
        return NULL;
    if (!display || !display[0])
        return crs_strdup(addr);
    for (p = (const unsigned char *)display; *p; p++) {
        if (*p >= 0x80 || *p < 0x20 || *p == '"' || *p == '\\')
            ascii = 0;
    }
    if (ascii && !strstr(display, "=?"))
        return crs_asprintf("\"%s\" <%s>", display, addr);
    if (crs_mail_header_text(display, 200, &enc) != 0)
        return NULL;
    out = crs_asprintf("%s <%s>", enc, addr);
    crs_free(enc);
    return out;
}

/* ------------------------------------------------------------------------------------------ */
/* Header text                                                                                 */
/* ------------------------------------------------------------------------------------------ */

/* Bytes of raw UTF-8 per encoded word: 45 bytes make 60 base64 characters, and with the 12 of
 * "=?UTF-8?B?" and "?=" the word stays under RFC 2047's 75. */
#define EW_RAW_MAX 45u

int crs_mail_header_text(const char *text, size_t max_bytes, char **out)
{
    char *clean = NULL, *buf = NULL, *p;
    size_t len, i, words;
    int plain = 1;

    if (out)
        *out = NULL;
    if (!text || !out)
        return CRS_EINVAL;
    clean = crs_utf8_sanitize(text, strlen(text));
    if (!clean)
        return CRS_ENOMEM;
    crs_sanitize_oneline(clean);
    crs_utf8_truncate(clean, max_bytes);
    len = strlen(clean);
    for (i = 0; i < len; i++) {
        if ((unsigned char)clean[i] >= 0x80)
            plain = 0;
    }
    if (strstr(clean, "=?"))
        plain = 0;
    if (plain) {
        *out = clean;
        return 0;
    }
    /* Worst case: one word per EW_RAW_MAX bytes (fewer when characters are cut early), each
     * 12 + 4 * ceil(n / 3) characters plus a separating space. */
    words = len / 16 + 2;
    buf = crs_malloc(words * 76 + 1);
    if (!buf) {
        crs_free(clean);
        return CRS_ENOMEM;
    }
    p = buf;
    for (i = 0; i < len;) {
        size_t n = len - i > EW_RAW_MAX ? EW_RAW_MAX : len - i;
        /* Never split a character between two words (RFC 2047 section 5). */
        if (i + n < len) {
            while (n > 0 && ((unsigned char)clean[i + n] & 0xc0) == 0x80)
                n--;
        }
        if (n == 0)
            n = 1;
        if (p != buf)
            *p++ = ' ';
        memcpy(p, "=?UTF-8?B?", 10);
        p += 10;
        p += crs_base64_encode_to((const uint8_t *)clean + i, n, p);
        memcpy(p, "?=", 3);
        p += 2;
        i += n;
    }
    *p = '\0';
    crs_free(clean);
    *out = buf;
    return 0;
}

void crs_mail_date(int64_t unix_ms, char *out, size_t outlen)
{
    crs_time_rfc5322(unix_ms, out, outlen);
}

/* Keeps letters, digits, '-', '_' and '.' (the id-left/id-right characters we allow), as a
 * dot-atom: no leading, trailing or doubled dots. */
static char *id_part(const char *s, size_t max)
{
    char *out = crs_malloc(max + 1);
    size_t n = 0;

    if (!out)
        return NULL;
    for (; s && *s && n < max; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '.') {
            if (n > 0 && out[n - 1] != '.')
                out[n++] = '.';
        } else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_') {
            out[n++] = (char)c;
        }
    }
    while (n > 0 && out[n - 1] == '.')
        n--;
    out[n] = '\0';
    return out;
}

char *crs_mail_message_id(const char *event_id, const char *sink, const char *host)
{
    char *e = NULL, *s = NULL, *h = NULL, *out = NULL;

    if (!event_id)
        return NULL;
    e = id_part(event_id, 64);
    s = id_part(sink ? sink : "", 64);
    h = id_part(host ? host : "", 253);
    if (e && s && h)
        out = crs_asprintf("<%s%s%s@%s>", e[0] ? e : "event", s[0] ? "." : "", s,
                           h[0] ? h : "localhost");
    crs_free(e);
    crs_free(s);
    crs_free(h);
    return out;
}

int crs_mail_crlf(const char *text, char **out, size_t *outlen)
{
    size_t n = 0, i;
    char *buf, *p;

    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!text || !out)
        return CRS_EINVAL;
    for (i = 0; text[i]; i++) {
        if (text[i] == '\r' || text[i] == '\n') {
            n += 2;
            if (text[i] == '\r' && text[i + 1] == '\n')
                i++;
        } else {
            n++;
        }
    }
    buf = crs_malloc(n + 1);
    if (!buf)
        return CRS_ENOMEM;
    for (p = buf, i = 0; text[i]; i++) {
        if (text[i] == '\r' || text[i] == '\n') {
            *p++ = '\r';
            *p++ = '\n';
            if (text[i] == '\r' && text[i + 1] == '\n')
                i++;
        } else {
            *p++ = text[i];
        }
    }
    *p = '\0';
    *out = buf;
    if (outlen)
        *outlen = n;
    return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* The requester's address                                                                     */
/* ------------------------------------------------------------------------------------------ */

/*
 * A bounded DER reader: enough to walk a certificate to its subjectAltName. Every length is
 * checked against what remains, so truncated or hostile input ends the walk, never overruns.
 */
struct der {
    const uint8_t *p;
    size_t len;
};

/* Reads one TLV from d: its tag byte and its contents. 0, or -1 on malformed input. */
static int der_next(struct der *d, unsigned *tag, struct der *content)
{
    size_t len, hdr = 2;

    if (d->len < 2)
        return -1;
    *tag = d->p[0];
    if ((*tag & 0x1f) == 0x1f)
        return -1; /* high tag numbers appear nowhere on our path */
    len = d->p[1];
    if (len & 0x80) {
        size_t nb = len & 0x7f, i;
        if (nb == 0 || nb > 4 || d->len < 2 + nb)
            return -1;
        len = 0;
        for (i = 0; i < nb; i++)
            len = (len << 8) | d->p[2 + i];
        hdr += nb;
    }
    if (len > d->len - hdr)
        return -1;
    content->p = d->p + hdr;
    content->len = len;
    d->p += hdr + len;
    d->len -= hdr + len;
    return 0;
}

static int strv_add_unique(char ***v, size_t *n, size_t max, const char *s, size_t len)
{
    char **nv;
    size_t i;

    if (*n >= max || len == 0)
        return 0;
    for (i = 0; i < *n; i++) {
        if (strlen((*v)[i]) == len && memcmp((*v)[i], s, len) == 0)
            return 0;
    }
    nv = crs_realloc(*v, (*n + 2) * sizeof *nv);
    if (!nv)
        return CRS_ENOMEM;
    *v = nv;
    nv[*n] = crs_strndup(s, len);
    if (!nv[*n])
        return CRS_ENOMEM;
    (*n)++;
    nv[*n] = NULL;
    return 0;
}

/* rfc822Name ([1] IMPLICIT IA5String) entries of a GeneralNames SEQUENCE. */
static int san_general_names(struct der names, char ***v, size_t *n, size_t max)
{
    struct der seq, item;
    unsigned tag;
    int rc;

    if (names.len > 0 && names.p[0] == 0x04) {
        struct der wrapped;
        if (der_next(&names, &tag, &wrapped) != 0)
            return 0;
        names = wrapped;
    }
    if (der_next(&names, &tag, &seq) != 0 || tag != 0x30)
        return 0;
    while (seq.len > 0) {
        if (der_next(&seq, &tag, &item) != 0)
            return 0;
        /* An embedded NUL would cut the address short in C: such a name is ignored. */
        if (tag == 0x81 && !memchr(item.p, 0, item.len) &&
            (rc = strv_add_unique(v, n, max, (const char *)item.p, item.len)))
            return rc;
    }
    return 0;
}

static const uint8_t oid_san[] = {0x55, 0x1d, 0x11}; /* 2.5.29.17 */

/* Certificate -> tbsCertificate -> [3] extensions -> Extension with extnID subjectAltName. */
static int san_from_certificate(struct der cert, char ***v, size_t *n, size_t max)
{
    struct der c, tbs, el, exts, ext, field;
    unsigned tag;

    if (der_next(&cert, &tag, &c) != 0 || tag != 0x30)
        return 0;
    if (der_next(&c, &tag, &tbs) != 0 || tag != 0x30)
        return 0;
    while (tbs.len > 0) {
        if (der_next(&tbs, &tag, &el) != 0)
            return 0;
        if (tag != 0xa3)
            continue;
        if (der_next(&el, &tag, &exts) != 0 || tag != 0x30)
            return 0;
        while (exts.len > 0) {
            if (der_next(&exts, &tag, &ext) != 0 || tag != 0x30)
                return 0;
            if (der_next(&ext, &tag, &field) != 0 || tag != 0x06)
                return 0;
            if (field.len != sizeof oid_san || memcmp(field.p, oid_san, sizeof oid_san) != 0)
                continue;
            if (der_next(&ext, &tag, &field) != 0)
                return 0;
            if (tag == 0x01 && der_next(&ext, &tag, &field) != 0)
                return 0;
            if (tag != 0x04)
                return 0;
            return san_general_names(field, v, n, max);
        }
        return 0;
    }
    return 0;
}

int crs_der_san_emails(const uint8_t *der, size_t len, int is_certificate, char ***v, size_t *n,
                       size_t max)
{
    struct der d;

    if (!der || !v || !n)
        return CRS_EINVAL;
    d.p = der;
    d.len = len;
    return is_certificate ? san_from_certificate(d, v, n, max) : san_general_names(d, v, n, max);
}

#define REQUESTER_MAX 8u

int crs_mail_requester_candidates(const Certrelay__V1__Event *ev, char ***out, size_t *count)
{
    const Certrelay__V1__CertificateInfo *c;
    char **v = NULL;
    size_t n = 0, i;
    int found_ext = 0, rc = 0;

    if (out)
        *out = NULL;
    if (count)
        *count = 0;
    if (!ev || !out)
        return CRS_EINVAL;
    v = crs_calloc(1, sizeof *v);
    if (!v)
        return CRS_ENOMEM;
    c = ev->certificate;
    if (c && c->email && (rc = strv_add_unique(&v, &n, REQUESTER_MAX, c->email, strlen(c->email))))
        goto cleanup;
    for (i = 0; c && i < c->n_extensions; i++) {
        const Certrelay__V1__Extension *x = c->extensions[i];
        if (x->oid && strcmp(x->oid, "2.5.29.17") == 0 && x->has_value) {
            found_ext = 1;
            if ((rc = crs_der_san_emails(x->value.data, x->value.len, 0, &v, &n, REQUESTER_MAX)))
                goto cleanup;
        }
    }
    if (c && !found_ext && c->has_raw_certificate &&
        (rc = crs_der_san_emails(c->raw_certificate.data, c->raw_certificate.len, 1, &v, &n,
                                 REQUESTER_MAX)))
        goto cleanup;
    for (i = 0; ev->request && i < ev->request->n_attributes; i++) {
        const Certrelay__V1__Attribute *a = ev->request->attributes[i];
        if (!a->name || !a->value)
            continue;
        if (crs_ascii_casecmp(a->name, "email") == 0 || crs_ascii_casecmp(a->name, "mail") == 0 ||
            crs_ascii_casecmp(a->name, "e-mail") == 0 ||
            crs_ascii_casecmp(a->name, "emailaddress") == 0) {
            if ((rc = strv_add_unique(&v, &n, REQUESTER_MAX, a->value, strlen(a->value))))
                goto cleanup;
        }
    }
    *out = v;
    if (count)
        *count = n;
    return 0;

cleanup:
    crs_strv_free(v);
    return rc;
}

/* ------------------------------------------------------------------------------------------ */
/* Default templates                                                                           */
/* ------------------------------------------------------------------------------------------ */

/*
 * One subject and one plain text body per event kind, written for the person who reads the
 * mailbox rather than for a parser. Field names are those of render/template.c; an absent value
 * renders empty, so each body lists only what its kind normally carries.
 */
#define FOOTER                                                                                     \
    "\n"                                                                                           \
    "Certification authority: {{ca}} ({{ca_config}}) on {{ca_host}}\n"                             \
    "Event {{event_id}}, captured {{time}}.\n"                                                     \
    "\n"                                                                                           \
    "-- \n"                                                                                        \
    "Sent by CertRelay, the exit module of this certification authority.\n"

#define CERT_FACTS                                                                                 \
    "  Common name:    {{common_name}}\n"                                                          \
    "  Subject:        {{subject}}\n"                                                              \
    "  Template:       {{template}}\n"                                                             \
    "  Requester:      {{requester}}\n"                                                            \
    "  Request ID:     {{request_id}}\n"                                                           \
    "  Serial number:  {{serial}}\n"                                                               \
    "  Valid from:     {{not_before}}\n"                                                           \
    "  Valid until:    {{not_after}}\n"                                                            \
    "  Thumbprint:     {{thumbprint}}\n"

#define REQUEST_FACTS                                                                              \
    "  Request ID:     {{request_id}}\n"                                                           \
    "  Requester:      {{requester}}\n"                                                            \
    "  Template:       {{template}}\n"                                                             \
    "  Common name:    {{common_name}}\n"                                                          \
    "  Subject:        {{subject}}\n"                                                              \
    "  Disposition:    {{disposition}}\n"                                                          \
    "  Message:        {{disposition_message}}\n"                                                  \
    "  Status code:    {{status_code}}\n"

struct mail_default {
    uint32_t kind;
    const char *subject;
    const char *body;
};

static const struct mail_default defaults[] = {
    {CRS_EVENT_ISSUED, "[{{ca}}] Certificate issued: {{common_name}} (request {{request_id}})",
     "The certification authority {{ca}} issued a certificate.\n"
     "\n" CERT_FACTS FOOTER},
    {CRS_EVENT_PENDING, "[{{ca}}] Request {{request_id}} is waiting for approval",
     "Certificate request {{request_id}} was submitted to {{ca}} and is pending: a certificate\n"
     "manager must issue or deny it.\n"
     "\n" REQUEST_FACTS FOOTER},
    {CRS_EVENT_DENIED, "[{{ca}}] Request {{request_id}} was denied",
     "The certification authority {{ca}} denied certificate request {{request_id}}.\n"
     "\n" REQUEST_FACTS FOOTER},
    {CRS_EVENT_REVOKED, "[{{ca}}] Certificate revoked: {{common_name}} (serial {{serial}})",
     "The certification authority {{ca}} revoked a certificate. Relying parties will see the\n"
     "revocation in the next CRL.\n"
     "\n"
     "  Reason:         {{revocation_reason}}\n" CERT_FACTS FOOTER},
    {CRS_EVENT_UNREVOKED,
     "[{{ca}}] Certificate released from hold: {{common_name}} (serial {{serial}})",
     "The certification authority {{ca}} released a certificate from hold: it is valid again.\n"
     "\n" CERT_FACTS FOOTER},
    {CRS_EVENT_RETRIEVE_PENDING, "[{{ca}}] Pending request {{request_id}} was retrieved",
     "The requester retrieved the result of pending request {{request_id}} from {{ca}}.\n"
     "\n" REQUEST_FACTS FOOTER},
    {CRS_EVENT_IMPORTED, "[{{ca}}] Certificate imported: {{common_name}} (request {{request_id}})",
     "A certificate was imported into the database of the certification authority {{ca}}.\n"
     "\n" CERT_FACTS FOOTER},
    {CRS_EVENT_CRL_ISSUED, "[{{ca}}] CRL published",
     "The certification authority {{ca}} published a new certificate revocation list.\n" FOOTER},
    {CRS_EVENT_STARTUP, "[{{ca}}] Certificate Services started on {{ca_host}}",
     "Active Directory Certificate Services started on {{ca_host}}; the certification\n"
     "authority {{ca}} is accepting requests.\n" FOOTER},
    {CRS_EVENT_EXPIRING,
     "[{{ca}}] Certificate expires in {{days_left}} days: {{common_name}} (serial {{serial}})",
     "A certificate issued by {{ca}} expires on {{expires}}, in {{days_left}} days. Renew it\n"
     "before then, or the services that present it stop working.\n"
     "\n" CERT_FACTS FOOTER},
    {CRS_EVENT_EXPIRED, "[{{ca}}] Certificate expired: {{common_name}} (serial {{serial}})",
     "A certificate issued by {{ca}} expired on {{expires}} and was not renewed or revoked\n"
     "before then. Services still presenting it fail their clients' checks.\n"
     "\n" CERT_FACTS FOOTER},
    {CRS_EVENT_CRL_EXPIRING, "[{{ca}}] CRL expires in {{days_left}} days (next update {{expires}})",
     "The latest CRL of the certification authority {{ca}} reaches its next update on\n"
     "{{expires}} ({{days_left}} days) and no newer CRL has been published. Relying parties\n"
     "reject every certificate of this CA once it has passed: publish a CRL (certutil "
     "-crl).\n" FOOTER},
    {CRS_EVENT_SHUTDOWN, "[{{ca}}] Certificate Services stopping on {{ca_host}}",
     "Active Directory Certificate Services is stopping on {{ca_host}}; the certification\n"
     "authority {{ca}} will not accept requests until it starts again.\n" FOOTER},
};

static const struct mail_default *find_default(uint32_t kind)
{
    size_t i;

    for (i = 0; i < sizeof defaults / sizeof defaults[0]; i++) {
        if (defaults[i].kind == kind)
            return &defaults[i];
    }
    return NULL;
}

const char *crs_mail_default_subject(uint32_t kind)
{
    const struct mail_default *d = find_default(kind);
    return d ? d->subject : "[{{ca}}] {{kind_title}}";
}

const char *crs_mail_default_body(uint32_t kind)
{
    const struct mail_default *d = find_default(kind);
    return d ? d->body : "{{kind_title}}\n" FOOTER;
}
