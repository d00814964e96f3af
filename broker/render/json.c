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
static int put(json_t *obj, const char *key, json_t *val)
{
    if (!val)
        return CRS_ENOMEM;
    return json_object_set_new_nocheck(obj, key, val) == 0 ? 0 : CRS_ENOMEM;
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
    return s ? put(obj, key, text_new(s)) : 0;
}

static int put_int(json_t *obj, const char *key, int has, int64_t v)
{
    return has ? put(obj, key, json_integer((json_int_t)v)) : 0;
}

static int put_time(json_t *obj, const char *key, int has, int64_t ms)
{
    return has ? put(obj, key, time_new(ms)) : 0;
}

static int put_name(json_t *obj, const char *key, int has, const char *name)
{
    return has && name ? put(obj, key, json_string_nocheck(name)) : 0;
}

/* Binary members are written only when they hold bytes: certsrv reports "no delta CRL" and
 * similar absences as an empty value. */
static int put_b64(json_t *obj, const char *key, int has, ProtobufCBinaryData bin)
{
    return has && bin.len > 0 ? put(obj, key, base64_new(bin.data, bin.len)) : 0;
}

/* Creates an empty object or array, already owned by parent under key. */
static json_t *child(json_t *parent, const char *key, json_t *fresh)
{
    return put(parent, key, fresh) == 0 ? fresh : NULL;
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
    if (!(o = child(doc, "ca", json_object())))
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
    if (!(o = child(req, "attributes", json_object())))
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
    if (!(o = child(doc, "request", json_object())))
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
    if (!(arr = child(cert, "extensions", json_array())))
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
        if (x->has_critical && (rc = put(o, "critical", json_boolean(x->critical))))
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
    if (!(o = child(doc, "certificate", json_object())))
        return CRS_ENOMEM;
    crs_event_serial_hex(ev, serial, sizeof serial);
    if (serial[0] != '\0' && (rc = put(o, "serial", json_string_nocheck(serial))))
        return rc;
    if ((rc = put_b64(o, "der_base64", c->has_raw_certificate, c->raw_certificate)) ||
        (rc = put_time(o, "not_before", c->has_not_before_ms, c->not_before_ms)) ||
        (rc = put_time(o, "not_after", c->has_not_after_ms, c->not_after_ms)) ||
        (rc = put_text(o, "subject", c->distinguished_name)) ||
        (rc = put_text(o, "common_name", c->common_name)) || (rc = put_text(o, "upn", c->upn)) ||
        (rc = put_text(o, "email", c->email)))
        return rc;
    if (c->certificate_hash && (rc = put(o, "thumbprint", thumbprint_new(c->certificate_hash))))
        return rc;
    if ((rc = put_text(o, "template", c->certificate_template)))
        return rc;
    if (c->public_key_algorithm || c->has_public_key_length) {
        if (!(pk = child(o, "public_key", json_object())))
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
    if (!(arr = child(doc, "crls", json_array())))
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
        if (o && put(o, "date", time_new(v->date_unix_ms)) != 0) {
            json_decref(o);
            return NULL;
        }
        return o;
    case CERTRELAY__V1__VALUE__V_BINARY_VALUE:
        o = json_object();
        if (o && put(o, "base64", base64_new(v->binary_value.data, v->binary_value.len)) != 0) {
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
    if (!(o = child(doc, "extra", json_object()))) {
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

json_t *crs_event_to_json(const Certrelay__V1__Event *ev)
{
    json_t *doc;
    int rc;

    if (!ev)
        return NULL;
    doc = json_object();
    if (!doc)
        return NULL;
    if ((rc = put(doc, "schema", json_string_nocheck(CRS_JSON_SCHEMA))) ||
        (rc = put_name(doc, "event", ev->has_kind, crs_event_name((uint32_t)ev->kind))) ||
        (rc = put_text(doc, "event_id", ev->event_id)) ||
        (rc = put_time(doc, "time", ev->has_capture_time_ms, ev->capture_time_ms)) ||
        (rc = put_int(doc, "raw_exit_event", ev->has_raw_exit_event, ev->raw_exit_event)) ||
        (rc = add_ca(doc, ev->ca)) || (rc = add_request(doc, ev->request)) ||
        (rc = add_certificate(doc, ev)) || (rc = add_crls(doc, ev)) || (rc = add_extra(doc, ev)))
        goto cleanup;
    return doc;

cleanup:
    json_decref(doc);
    return NULL;
}

/*
 * json_dumpb measures first and then writes into a buffer of the exact size, so the text lands in
 * a crs_malloc allocation (freed with crs_free like everything else) without an extra copy.
 * JSON_PRESERVE_ORDER keeps the insertion order on jansson versions where objects are hashed.
 */
int crs_event_to_json_text(const Certrelay__V1__Event *ev, int pretty, char **out, size_t *outlen)
{
    size_t flags = JSON_PRESERVE_ORDER | (pretty ? JSON_INDENT(2) : JSON_COMPACT);
    json_t *doc = NULL;
    char *buf = NULL;
    size_t n;
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
    /* A document always serializes to at least "{}", so 0 can only mean jansson failed. */
    n = json_dumpb(doc, NULL, 0, flags);
    if (n == 0) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    buf = crs_malloc(n + 1);
    if (!buf) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    if (json_dumpb(doc, buf, n, flags) != n) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    buf[n] = '\0';
    json_decref(doc);
    *out = buf;
    if (outlen)
        *outlen = n;
    return 0;

cleanup:
    crs_free(buf);
    json_decref(doc);
    return rc;
}
