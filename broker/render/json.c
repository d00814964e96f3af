/*
 * The JSON event document ("certrelay.event/1", docs/json-schema.md).
 *
 *   {"schema":"certrelay.event/1","event":"issued","event_id":"0190...","time":"...Z",
 *    "raw_exit_event":1,"ca":{...},"request":{...},"certificate":{...},"crls":[...],
 *    "extra":{...}}
 *
 * Rules that hold for every member:
 * - Only present values are written. An unset proto2 optional, a NULL string or an empty byte
 *   string produces no member at all, so a consumer can tell "absent" from "zero".
 * - Every string from certsrv is untrusted and passes through crs_utf8_sanitize() first, because
 *   jansson refuses invalid UTF-8 and a refused string must never make a whole event vanish.
 *   Escaping quotes and control characters is jansson's job.
 * - The output is a pure function of the event: keys are written in a fixed order (the order of
 *   this file, `extra` sorted by key), so a redelivered event rewrites byte-identical files.
 *
 * Sub-objects are inserted into their parent as soon as they are created and filled afterwards,
 * so that on any failure one json_decref() of the document frees everything built so far.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "render/json.h"
#include "certrelay/sanitize.h"

/* ------------------------------------------------------------------------------------------ */
/* Names                                                                                       */
/* ------------------------------------------------------------------------------------------ */

const char *crs_disposition_name(int64_t disposition)
{
    switch (disposition) {
    case 9:
        return "pending";
    case 20:
        return "issued";
    case 21:
        return "revoked";
    case 30:
        return "error";
    case 31:
        return "denied";
    default:
        return NULL;
    }
}

const char *crs_revocation_reason_name(int64_t reason)
{
    /* RFC 5280 section 5.3.1; 7 is not used. */
    static const char *const names[] = {
        "unspecified",     "key_compromise",         "ca_compromise",    "affiliation_changed",
        "superseded",      "cessation_of_operation", "certificate_hold", NULL,
        "remove_from_crl", "privilege_withdrawn",    "aa_compromise",
    };

    if (reason < 0 || reason >= (int64_t)(sizeof names / sizeof names[0]))
        return NULL;
    return names[reason];
}

/* ------------------------------------------------------------------------------------------ */
/* Building the document                                                                       */
/* ------------------------------------------------------------------------------------------ */

/* Adds val under a fixed ASCII key. jansson takes the reference even when it fails, and a NULL
 * val (a failed constructor) is reported as the allocation failure it was. */

/* Adds val under a fixed key; jansson takes the reference even on failure, and a NULL val (a
 * failed constructor) is the allocation failure it stands for. */
int crs_json_put(json_t *obj, const char *key, json_t *val)
{
    if (!val)
        return CRS_ENOMEM;
    return json_object_set_new_nocheck(obj, key, val) == 0 ? 0 : CRS_ENOMEM;
}

int crs_json_append(json_t *arr, json_t *val)
{
    if (!val)
        return CRS_ENOMEM;
    return json_array_append_new(arr, val) == 0 ? 0 : CRS_ENOMEM;
}

/* Creates an empty object or array already owned by parent (an object under key, or appended to
 * an array when key is NULL), so one json_decref of the root frees everything on failure. */
json_t *crs_json_child(json_t *parent, const char *key, json_t *fresh)
{
    int rc = key ? crs_json_put(parent, key, fresh) : crs_json_append(parent, fresh);
    return rc == 0 ? fresh : NULL;
}

/* A JSON string from untrusted text: invalid UTF-8 becomes U+FFFD instead of a NULL. */
static json_t *text_new(const char *s)
{
    char *clean = crs_utf8_sanitize(s, strlen(s));
    json_t *v;

    if (!clean)
        return NULL;
    v = json_stringn_nocheck(clean, strlen(clean));
    crs_free(clean);
    return v;
}

static json_t *base64_new(const uint8_t *data, size_t len)
{
    char *b64 = crs_base64_encode(data, len);
    json_t *v;

    if (!b64)
        return NULL;
    v = json_stringn_nocheck(b64, strlen(b64));
    crs_free(b64);
    return v;
}

static json_t *time_new(int64_t ms)
{
    char buf[32];

    crs_time_rfc3339(ms, buf, sizeof buf);
    return json_string_nocheck(buf);
}

static int put_text(json_t *obj, const char *key, const char *s)
{
    return s ? crs_json_put(obj, key, text_new(s)) : 0;
}

static int put_int(json_t *obj, const char *key, int has, int64_t v)
{
    return has ? crs_json_put(obj, key, json_integer((json_int_t)v)) : 0;
}

static int put_time(json_t *obj, const char *key, int has, int64_t ms)
{
    return has ? crs_json_put(obj, key, time_new(ms)) : 0;
}

static int put_name(json_t *obj, const char *key, int has, const char *name)
{
    return has && name ? crs_json_put(obj, key, json_string_nocheck(name)) : 0;
}

/* Binary members are written only when they hold bytes: certsrv reports "no delta CRL" and
 * similar absences as an empty value. */
static int put_b64(json_t *obj, const char *key, int has, ProtobufCBinaryData bin)
{
    return has && bin.len > 0 ? crs_json_put(obj, key, base64_new(bin.data, bin.len)) : 0;
}

/* Adds an untrusted key; when two keys repeat (or sanitize to the same text) the last wins. */
static int put_untrusted_key(json_t *obj, const char *key, json_t *val)
{
    char *clean;
    int rc;

    if (!val)
        return CRS_ENOMEM;
    clean = crs_utf8_sanitize(key, strlen(key));
    if (!clean) {
        json_decref(val);
        return CRS_ENOMEM;
    }
    rc = json_object_set_new_nocheck(obj, clean, val) == 0 ? 0 : CRS_ENOMEM;
    crs_free(clean);
    return rc;
}

/* The thumbprint as certsrv shows it ("a1 b2 ...") becomes lowercase hex without whitespace. */
static json_t *thumbprint_new(const char *hash)
{
    char *buf = crs_event_thumbprint(hash);
    json_t *v;

    if (!buf)
        return NULL;
    v = text_new(buf);
    crs_free(buf);
    return v;
}

static int add_ca(json_t *doc, const Certrelay__V1__CaInfo *ca)
{
    json_t *o;
    int rc;

    if (!ca)
        return 0;
    if (!(o = crs_json_child(doc, "ca", json_object())))
        return CRS_ENOMEM;
    if ((rc = put_text(o, "config", ca->config)) ||
        (rc = put_text(o, "name", ca->sanitized_name)) || (rc = put_text(o, "host", ca->host)))
        return rc;
    return 0;
}

static int add_attributes(json_t *req, const Certrelay__V1__RequestInfo *r)
{
    json_t *o;
    size_t i;
    int rc;

    if (r->n_attributes == 0)
        return 0;
    if (!(o = crs_json_child(req, "attributes", json_object())))
        return CRS_ENOMEM;
    for (i = 0; i < r->n_attributes; i++) {
        const Certrelay__V1__Attribute *a = r->attributes[i];

        if (!a || !a->name)
            continue;
        if ((rc = put_untrusted_key(o, a->name, text_new(a->value ? a->value : ""))))
            return rc;
    }
    return 0;
}

static int add_request(json_t *doc, const Certrelay__V1__RequestInfo *r)
{
    json_t *o;
    int rc;

    if (!r)
        return 0;
    if (!(o = crs_json_child(doc, "request", json_object())))
        return CRS_ENOMEM;
    if ((rc = put_int(o, "id", r->has_request_id, r->request_id)) ||
        (rc = put_int(o, "type", r->has_request_type, r->request_type)) ||
        (rc = put_int(o, "disposition", r->has_disposition, r->disposition)) ||
        (rc = put_name(o, "disposition_name", r->has_disposition,
                       crs_disposition_name(r->disposition))) ||
        (rc = put_text(o, "disposition_message", r->disposition_message)) ||
        (rc = put_int(o, "status_code", r->has_status_code, r->status_code)) ||
        (rc = put_text(o, "requester", r->requester_name)) ||
        (rc = put_text(o, "caller", r->caller_name)) ||
        (rc = put_time(o, "submitted", r->has_submitted_when_ms, r->submitted_when_ms)) ||
        (rc = put_time(o, "resolved", r->has_resolved_when_ms, r->resolved_when_ms)) ||
        (rc = put_time(o, "revoked", r->has_revoked_when_ms, r->revoked_when_ms)) ||
        (rc = put_time(o, "revoked_effective", r->has_revoked_effective_when_ms,
                       r->revoked_effective_when_ms)) ||
        (rc = put_int(o, "revocation_reason", r->has_revoked_reason, r->revoked_reason)) ||
        (rc = put_name(o, "revocation_reason_name", r->has_revoked_reason,
                       crs_revocation_reason_name(r->revoked_reason))) ||
        (rc = put_text(o, "template", r->certificate_template)) ||
        (rc = put_text(o, "attributes_text", r->request_attributes)) ||
        (rc = add_attributes(o, r)) ||
        (rc = put_b64(o, "raw_request_base64", r->has_raw_request, r->raw_request)))
        return rc;
    return 0;
}

static int add_extensions(json_t *cert, const Certrelay__V1__CertificateInfo *c)
{
    json_t *arr;
    size_t i;
    int rc;

    if (c->n_extensions == 0)
        return 0;
    if (!(arr = crs_json_child(cert, "extensions", json_array())))
        return CRS_ENOMEM;
    for (i = 0; i < c->n_extensions; i++) {
        const Certrelay__V1__Extension *x = c->extensions[i];
        json_t *o;

        if (!x)
            continue;
        o = json_object();
        /* json_array_append_new also takes the reference on failure, and fails on NULL. */
        if (json_array_append_new(arr, o) != 0)
            return CRS_ENOMEM;
        if ((rc = put_text(o, "oid", x->oid)))
            return rc;
        if (x->has_critical && (rc = crs_json_put(o, "critical", json_boolean(x->critical))))
            return rc;
        if ((rc = put_int(o, "flags", x->has_flags, x->flags)) ||
            (rc = put_b64(o, "der_base64", x->has_value, x->value)))
            return rc;
    }
    return 0;
}

static int add_certificate(json_t *doc, const Certrelay__V1__Event *ev)
{
    const Certrelay__V1__CertificateInfo *c = ev->certificate;
    char serial[129];
    json_t *o, *pk;
    int rc;

    if (!c)
        return 0;
    if (!(o = crs_json_child(doc, "certificate", json_object())))
        return CRS_ENOMEM;
    crs_event_serial_hex(ev, serial, sizeof serial);
    if (serial[0] != '\0' && (rc = crs_json_put(o, "serial", json_string_nocheck(serial))))
        return rc;
    if ((rc = put_b64(o, "der_base64", c->has_raw_certificate, c->raw_certificate)) ||
        (rc = put_time(o, "not_before", c->has_not_before_ms, c->not_before_ms)) ||
        (rc = put_time(o, "not_after", c->has_not_after_ms, c->not_after_ms)) ||
        (rc = put_text(o, "subject", c->distinguished_name)) ||
        (rc = put_text(o, "common_name", c->common_name)) || (rc = put_text(o, "upn", c->upn)) ||
        (rc = put_text(o, "email", c->email)))
        return rc;
    if (c->certificate_hash &&
        (rc = crs_json_put(o, "thumbprint", thumbprint_new(c->certificate_hash))))
        return rc;
    if ((rc = put_text(o, "template", c->certificate_template)))
        return rc;
    if (c->public_key_algorithm || c->has_public_key_length) {
        if (!(pk = crs_json_child(o, "public_key", json_object())))
            return CRS_ENOMEM;
        if ((rc = put_text(pk, "algorithm", c->public_key_algorithm)) ||
            (rc = put_int(pk, "length", c->has_public_key_length, c->public_key_length)))
            return rc;
    }
    return add_extensions(o, c);
}

static int add_crls(json_t *doc, const Certrelay__V1__Event *ev)
{
    json_t *arr;
    size_t i;
    int rc;

    if (ev->n_crls == 0)
        return 0;
    if (!(arr = crs_json_child(doc, "crls", json_array())))
        return CRS_ENOMEM;
    for (i = 0; i < ev->n_crls; i++) {
        const Certrelay__V1__CrlInfo *crl = ev->crls[i];
        json_t *o;

        if (!crl)
            continue;
        o = json_object();
        if (json_array_append_new(arr, o) != 0)
            return CRS_ENOMEM;
        if ((rc = put_int(o, "ca_cert_index", crl->has_ca_cert_index, crl->ca_cert_index)) ||
            (rc = put_b64(o, "crl_base64", crl->has_raw_crl, crl->raw_crl)) ||
            (rc = put_b64(o, "delta_crl_base64", crl->has_raw_delta_crl, crl->raw_delta_crl)))
            return rc;
    }
    return 0;
}

/* One certsrv property value: a number stays a number, the other types are tagged objects so a
 * consumer never has to guess whether a string is a date or base64. NULL on allocation failure;
 * *skip is set for a value with no type. */
static json_t *value_new(const Certrelay__V1__Value *v, int *skip)
{
    json_t *o;

    *skip = 0;
    switch (v->v_case) {
    case CERTRELAY__V1__VALUE__V_LONG_VALUE:
        return json_integer((json_int_t)v->long_value);
    case CERTRELAY__V1__VALUE__V_STRING_VALUE:
        return text_new(v->string_value ? v->string_value : "");
    case CERTRELAY__V1__VALUE__V_DATE_UNIX_MS:
        o = json_object();
        if (o && crs_json_put(o, "date", time_new(v->date_unix_ms)) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    case CERTRELAY__V1__VALUE__V_BINARY_VALUE:
        o = json_object();
        if (o &&
            crs_json_put(o, "base64", base64_new(v->binary_value.data, v->binary_value.len)) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    default:
        *skip = 1;
        return NULL;
    }
}

struct extra_ref {
    const Certrelay__V1__Event__ExtraEntry *entry;
    size_t index;
};

/* By key bytes, then by position, so equal keys keep their order and the last one wins. */
static int extra_cmp(const void *a, const void *b)
{
    const struct extra_ref *x = a, *y = b;
    int c = strcmp(x->entry->key, y->entry->key);

    if (c != 0)
        return c;
    return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * A protobuf map has no order, and two encoders may list the same map differently; sorting by key
 * keeps the document identical however the event was serialized.
 */
static int add_extra(json_t *doc, const Certrelay__V1__Event *ev)
{
    struct extra_ref *refs = NULL;
    size_t i, n = 0;
    json_t *o;
    int rc = 0;

    if (ev->n_extra == 0)
        return 0;
    refs = crs_calloc(ev->n_extra, sizeof *refs);
    if (!refs)
        return CRS_ENOMEM;
    for (i = 0; i < ev->n_extra; i++) {
        const Certrelay__V1__Event__ExtraEntry *e = ev->extra[i];

        if (e && e->key && e->value && e->value->v_case != CERTRELAY__V1__VALUE__V__NOT_SET) {
            refs[n].entry = e;
            refs[n].index = i;
            n++;
        }
    }
    if (n == 0)
        goto cleanup;
    qsort(refs, n, sizeof *refs, extra_cmp);
    if (!(o = crs_json_child(doc, "extra", json_object()))) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    for (i = 0; i < n; i++) {
        int skip;
        json_t *v = value_new(refs[i].entry->value, &skip);

        if (skip)
            continue;
        if ((rc = put_untrusted_key(o, refs[i].entry->key, v)))
            goto cleanup;
    }

cleanup:
    crs_free(refs);
    return rc;
}

/* The alert kinds' "expiry" object (expiring, expired, crl_expiring). */
static int add_expiry(json_t *doc, const Certrelay__V1__Expiry *x)
{
    json_t *o;
    int rc;

    if (!x)
        return 0;
    if (!(o = crs_json_child(doc, "expiry", json_object())))
        return CRS_ENOMEM;
    if ((rc = put_time(o, "not_after", x->has_not_after_ms, x->not_after_ms)) ||
        (rc = put_time(o, "next_update", x->has_next_update_ms, x->next_update_ms)) ||
        (rc = put_time(o, "this_update", x->has_this_update_ms, x->this_update_ms)) ||
        (rc = put_int(o, "ca_cert_index", x->has_ca_cert_index, x->ca_cert_index)) ||
        (rc = put_int(o, "lead_ms", x->has_lead_ms, x->lead_ms)) ||
        (rc = put_int(o, "days_left", x->has_days_left, x->days_left)) ||
        (rc = put_text(o, "source_event_id", x->source_event_id)))
        return rc;
    return 0;
}

json_t *crs_event_to_json(const Certrelay__V1__Event *ev)
{
    json_t *doc;
    int rc;

    if (!ev)
        return NULL;
    doc = json_object();
    if (!doc)
        return NULL;
    if ((rc = crs_json_put(doc, "schema", json_string_nocheck(CRS_JSON_SCHEMA))) ||
        (rc = put_name(doc, "event", ev->has_kind, crs_event_name((uint32_t)ev->kind))) ||
        (rc = put_text(doc, "event_id", ev->event_id)) ||
        (rc = put_time(doc, "time", ev->has_capture_time_ms, ev->capture_time_ms)) ||
        (rc = put_int(doc, "raw_exit_event", ev->has_raw_exit_event, ev->raw_exit_event)) ||
        (rc = put_text(doc, "origin", ev->origin)) || (rc = add_ca(doc, ev->ca)) ||
        (rc = add_request(doc, ev->request)) || (rc = add_certificate(doc, ev)) ||
        (rc = add_crls(doc, ev)) || (rc = add_extra(doc, ev)) || (rc = add_expiry(doc, ev->expiry)))
        goto cleanup;
    return doc;

cleanup:
    json_decref(doc);
    return NULL;
}

/*
 * Compact JSON serialization of a jansson tree, written here rather than with json_dumpb: jansson
 * decodes every string one code point at a time and keeps a loop-detection table keyed by
 * snprintf'd pointers, which made serialization most of the cost of a webhook delivery (a
 * certificate's base64 is the bulk of a body). This writer scans strings for the few bytes JSON
 * must escape and copies the runs between them. Its output is byte for byte what
 * json_dumpb(JSON_COMPACT) gives for the same tree (tests/unit/test_webhook_format.c checks it):
 * insertion order, the same escapes (\" \\ \b \f \n \r \t, \u00XX uppercase for other controls),
 * non-ASCII passed through. Reals never occur in our documents; a tree holding one is handed to
 * jansson instead.
 */
struct jbuf {
    char *p;
    size_t len, cap;
    int err;    /* CRS_ENOMEM, CRS_ETOOBIG or CRS_EINVAL (a real) */
    int indent; /* 0: compact; else spaces per level, laid out as jansson's JSON_INDENT */
};

static void jb_reserve(struct jbuf *b, size_t n)
{
    size_t cap;
    char *p;

    if (b->err)
        return;
    if (n > CRS_JSON_TEXT_MAX || b->len > CRS_JSON_TEXT_MAX - n) {
        b->err = CRS_ETOOBIG;
        return;
    }
    if (b->len + n + 1 <= b->cap)
        return;
    cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n + 1)
        cap *= 2;
    p = crs_realloc(b->p, cap);
    if (!p) {
        b->err = CRS_ENOMEM;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
    jb_reserve(b, n);
    if (b->err)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

/*
 * True when one of the 8 bytes of x is below 0x20, '"' or '\\' (the classic bit tricks "has a
 * byte less than n" and "has a zero byte", exact as a yes/no answer). Strings are mostly long
 * runs of base64 that need no escape, and this skips them 8 bytes at a time.
 */
static int word_needs_escape(uint64_t x)
{
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');

    return (((x - ones * 0x20) & ~x) | ((q - ones) & ~q) | ((bs - ones) & ~bs)) & highs ? 1 : 0;
}

static void jb_string(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t i, run = 0;

    jb_put(b, "\"", 1);
    for (i = 0; i < n; i++) {
        unsigned char c;
        char esc[7];
        size_t elen = 2;

        while (i + 8 <= n) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (word_needs_escape(w))
                break;
            i += 8;
        }
        if (i >= n)
            break;
        c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        jb_put(b, s + run, i - run);
        run = i + 1;
        esc[0] = '\\';
        switch (c) {
        case '"':
            esc[1] = '"';
            break;
        case '\\':
            esc[1] = '\\';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        default:
            memcpy(esc + 1, "u00", 3);
            esc[4] = hex[c >> 4];
            esc[5] = hex[c & 15];
            elen = 6;
            break;
        }
        jb_put(b, esc, elen);
    }
    jb_put(b, s + run, n - run);
    jb_put(b, "\"", 1);
}

/* In indented output, a new line and the indentation of the given depth. */
static void jb_newline(struct jbuf *b, int depth)
{
    size_t n = (size_t)b->indent * (size_t)depth;

    if (b->indent == 0)
        return;
    jb_reserve(b, n + 1);
    if (b->err)
        return;
    b->p[b->len++] = '\n';
    memset(b->p + b->len, ' ', n);
    b->len += n;
}

static void jb_value(struct jbuf *b, json_t *v, int depth)
{
    char num[32];
    const char *key;
    json_t *item;
    size_t i;
    int first = 1, n;

    if (b->err)
        return;
    if (depth > 64) {
        b->err = CRS_EINVAL;
        return;
    }
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        jb_put(b, "{", 1);
        json_object_foreach(v, key, item)
        {
            if (!first)
                jb_put(b, ",", 1);
            first = 0;
            jb_newline(b, depth + 1);
            jb_string(b, key, strlen(key));
            jb_put(b, ": ", b->indent ? 2 : 1);
            jb_value(b, item, depth + 1);
        }
        if (!first)
            jb_newline(b, depth);
        jb_put(b, "}", 1);
        break;
    case JSON_ARRAY:
        jb_put(b, "[", 1);
        json_array_foreach(v, i, item)
        {
            if (i > 0)
                jb_put(b, ",", 1);
            jb_newline(b, depth + 1);
            jb_value(b, item, depth + 1);
        }
        if (json_array_size(v) > 0)
            jb_newline(b, depth);
        jb_put(b, "]", 1);
        break;
    case JSON_STRING:
        jb_string(b, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        n = snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v));
        jb_put(b, num, (size_t)n);
        break;
    case JSON_TRUE:
        jb_put(b, "true", 4);
        break;
    case JSON_FALSE:
        jb_put(b, "false", 5);
        break;
    case JSON_NULL:
        jb_put(b, "null", 4);
        break;
    default:
        b->err = CRS_EINVAL;
        break;
    }
}

/*
 * jansson's own writer: json_dumpb measures first and then writes into a buffer of the exact
 * size, so the text lands in a crs_malloc allocation without an extra copy. JSON_PRESERVE_ORDER
 * keeps the insertion order on jansson versions where objects are hashed.
 */
static int dump_jansson(json_t *doc, size_t flags, char **out, size_t *outlen)
{
    size_t n = json_dumpb(doc, NULL, 0, flags | JSON_PRESERVE_ORDER);
    char *buf;

    if (n == 0)
        return CRS_ENOMEM;
    if (n > CRS_JSON_TEXT_MAX)
        return CRS_ETOOBIG;
    buf = crs_malloc(n + 1);
    if (!buf)
        return CRS_ENOMEM;
    if (json_dumpb(doc, buf, n, flags | JSON_PRESERVE_ORDER) != n) {
        crs_free(buf);
        return CRS_ENOMEM;
    }
    buf[n] = '\0';
    *out = buf;
    if (outlen)
        *outlen = n;
    return 0;
}

/*
 * Our writer, compact or indented (indent spaces per level, byte for byte what jansson writes with
 * JSON_INDENT(indent)): it skips runs that need no escaping 8 bytes at a time, where jansson looks
 * at every byte, and the base64 of a CRL of tens of MB is such a run. Falls back to jansson for
 * what it does not write itself (reals).
 */
static int dump_fast(json_t *doc, int indent, char **out, size_t *outlen)
{
    struct jbuf b = {NULL, 0, 0, 0, 0};

    b.indent = indent;
    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!doc || !out)
        return CRS_EINVAL;
    jb_value(&b, doc, 0);
    if (b.err == CRS_EINVAL) {
        crs_free(b.p);
        return dump_jansson(doc, indent ? JSON_INDENT(indent) : JSON_COMPACT, out, outlen);
    }
    if (b.err) {
        crs_free(b.p);
        return b.err;
    }
    b.p[b.len] = '\0';
    *out = b.p;
    if (outlen)
        *outlen = b.len;
    return 0;
}

int crs_json_dump_compact(json_t *doc, char **out, size_t *outlen)
{
    return dump_fast(doc, 0, out, outlen);
}

int crs_json_dump_indented(json_t *doc, int indent, char **out, size_t *outlen)
{
    if (indent < 1 || indent > 31)
        return CRS_EINVAL;
    return dump_fast(doc, indent, out, outlen);
}

int crs_event_to_json_text(const Certrelay__V1__Event *ev, int pretty, char **out, size_t *outlen)
{
    json_t *doc = NULL;
    int rc;

    if (out)
        *out = NULL;
    if (outlen)
        *outlen = 0;
    if (!ev || !out)
        return CRS_EINVAL;

    doc = crs_event_to_json(ev);
    if (!doc) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    rc = dump_fast(doc, pretty ? 2 : 0, out, outlen);

cleanup:
    json_decref(doc);
    return rc;
}
