/*
 * The --from script reader (format in script_reader.h). The JSON is parsed with jansson and
 * turned, event by event, into property tables; base64 and dates are decoded at load time so
 * that a malformed script is reported, with the event and the property, before anything is
 * sent. At run time each event is served through the same struct crs_prop_reader as live ones.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <jansson.h>

#include "certrelay/alloc.h"
#include "certrelay/base64.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/fs.h"
#include "certrelay/timefmt.h"
#include "proptable.h"
#include "script_reader.h"

struct script_event {
    uint32_t kind;
    struct proptable pt;
};

struct script {
    struct script_event *events;
    size_t n;
};

/* The types certsrv gives its documented properties. A script that gives another type is
 * wrong (certsrv could never report it), so it is refused at load time. */
struct known_prop {
    int scope;
    const char *name; /* a trailing '.' matches an indexed family such as "CRLState.0" */
    int type;
};

static const struct known_prop known_props[] = {
    {PT_REQUEST, "RequestID", CRS_PROP_LONG},
    {PT_REQUEST, "RequestType", CRS_PROP_LONG},
    {PT_REQUEST, "Disposition", CRS_PROP_LONG},
    {PT_REQUEST, "StatusCode", CRS_PROP_LONG},
    {PT_REQUEST, "RevokedReason", CRS_PROP_LONG},
    {PT_REQUEST, "DispositionMessage", CRS_PROP_STRING},
    {PT_REQUEST, "RequesterName", CRS_PROP_STRING},
    {PT_REQUEST, "CallerName", CRS_PROP_STRING},
    {PT_REQUEST, "RequestAttributes", CRS_PROP_STRING},
    {PT_REQUEST, "CertificateTemplate", CRS_PROP_STRING},
    {PT_REQUEST, "RawRequest", CRS_PROP_BINARY},
    {PT_REQUEST, "RawArchivedKey", CRS_PROP_BINARY},
    {PT_REQUEST, "SubmittedWhen", CRS_PROP_DATE},
    {PT_REQUEST, "ResolvedWhen", CRS_PROP_DATE},
    {PT_REQUEST, "RevokedWhen", CRS_PROP_DATE},
    {PT_REQUEST, "RevokedEffectiveWhen", CRS_PROP_DATE},
    {PT_CERTIFICATE, "SerialNumber", CRS_PROP_STRING},
    {PT_CERTIFICATE, "RawCertificate", CRS_PROP_BINARY},
    {PT_CERTIFICATE, "RawPublicKey", CRS_PROP_BINARY},
    {PT_CERTIFICATE, "NotBefore", CRS_PROP_DATE},
    {PT_CERTIFICATE, "NotAfter", CRS_PROP_DATE},
    {PT_CERTIFICATE, "DistinguishedName", CRS_PROP_STRING},
    {PT_CERTIFICATE, "CommonName", CRS_PROP_STRING},
    {PT_CERTIFICATE, "UPN", CRS_PROP_STRING},
    {PT_CERTIFICATE, "CertificateHash", CRS_PROP_STRING},
    {PT_CERTIFICATE, "CertificateTemplate", CRS_PROP_STRING},
    {PT_CERTIFICATE, "PublicKeyAlgorithm", CRS_PROP_STRING},
    {PT_CERTIFICATE, "PublicKeyLength", CRS_PROP_LONG},
    {PT_CERTIFICATE, "EMail", CRS_PROP_STRING},
    {PT_CERTIFICATE, "RequestID", CRS_PROP_LONG},
    {PT_CA, "CAType", CRS_PROP_LONG},
    {PT_CA, "CertCount", CRS_PROP_LONG},
    {PT_CA, "fDeltaCRLsDisabled", CRS_PROP_LONG},
    {PT_CA, "SanitizedCAName", CRS_PROP_STRING},
    {PT_CA, "MachineDNSName", CRS_PROP_STRING},
    {PT_CA, "ModuleRegistryLocation", CRS_PROP_STRING},
    {PT_CA, "CRLState.", CRS_PROP_LONG},
    {PT_CA, "RawCRL.", CRS_PROP_BINARY},
    {PT_CA, "RawDeltaCRL.", CRS_PROP_BINARY},
    {PT_CA, "RawCACertificate.", CRS_PROP_BINARY},
};

static const char *const scope_names[PT_NSCOPES] = {"request", "certificate", "ca"};
static const char *const type_names[] = {"", "a number (LONG)", "{\"date\": ...} (DATE)",
                                         "{\"base64\": ...} (BINARY)", "a string (STRING)"};

/* Error context: the file name and the event being read, prefixed to every message. */
struct loader {
    const char *file;
    size_t event; /* 1-based; 0 before the events */
    char *err;
    size_t errlen;
};

static int fail(struct loader *ld, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(CRS_PRINTF_ARCHETYPE, 3, 4)))
#endif
    ;

static int fail(struct loader *ld, int code, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (ld->err == NULL || ld->errlen == 0)
        return code;
    if (ld->event > 0)
        n = snprintf(ld->err, ld->errlen, "%s: event %zu: ", ld->file, ld->event);
    else
        n = snprintf(ld->err, ld->errlen, "%s: ", ld->file);
    if (n < 0 || (size_t)n >= ld->errlen)
        return code;
    va_start(ap, fmt);
    vsnprintf(ld->err + n, ld->errlen - (size_t)n, fmt, ap);
    va_end(ap);
    return code;
}

static int known_type(int scope, const char *name)
{
    for (size_t i = 0; i < sizeof(known_props) / sizeof(known_props[0]); i++) {
        const struct known_prop *k = &known_props[i];
        size_t len = strlen(k->name);
        if (k->scope != scope)
            continue;
        if (k->name[len - 1] == '.' ? strncmp(name, k->name, len) == 0 : strcmp(name, k->name) == 0)
            return k->type;
    }
    return 0;
}

/* Decodes {"base64": "..."}; *data is a fresh buffer. */
static int load_base64(struct loader *ld, const char *where, json_t *obj, uint8_t **data,
                       size_t *len)
{
    json_t *b = json_object_get(obj, "base64");
    if (json_object_size(obj) != 1 || !json_is_string(b))
        return fail(ld, CRS_EINVAL, "%s: expected {\"base64\": \"...\"}", where);
    int rc = crs_base64_decode(json_string_value(b), data, len);
    if (rc == CRS_ENOMEM)
        return fail(ld, rc, "%s: out of memory", where);
    if (rc != 0)
        return fail(ld, CRS_EINVAL, "%s: bad base64", where);
    return 0;
}

/* Reads one property value and stores it in pt under scope/name. */
static int load_value(struct loader *ld, struct proptable *pt, int scope, const char *name,
                      json_t *v)
{
    char where[192];
    int want = known_type(scope, name);
    int type;
    int rc;

    snprintf(where, sizeof(where), "%s.%.160s", scope_names[scope], name);
    if (name[0] == '\0')
        return fail(ld, CRS_EINVAL, "%s: empty property name", scope_names[scope]);
    if (json_is_null(v))
        return 0; /* an empty property, as if absent */

    if (json_is_integer(v))
        type = CRS_PROP_LONG;
    else if (json_is_string(v))
        type = CRS_PROP_STRING;
    else if (json_is_object(v) && json_object_get(v, "base64") != NULL)
        type = CRS_PROP_BINARY;
    else if (json_is_object(v) && json_object_get(v, "date") != NULL)
        type = CRS_PROP_DATE;
    else
        return fail(ld, CRS_EINVAL,
                    "%s: value must be an integer, a string, {\"base64\": ...} or "
                    "{\"date\": ...}",
                    where);
    if (want != 0 && type != want)
        return fail(ld, CRS_EINVAL, "%s: expected %s", where, type_names[want]);

    switch (type) {
    case CRS_PROP_LONG:
        rc = proptable_add_long(pt, scope, name, json_integer_value(v));
        break;
    case CRS_PROP_STRING:
        rc = proptable_add_string(pt, scope, name, json_string_value(v));
        break;
    case CRS_PROP_BINARY: {
        uint8_t *data = NULL;
        size_t len = 0;
        rc = load_base64(ld, where, v, &data, &len);
        if (rc != 0)
            return rc;
        rc = proptable_add_binary(pt, scope, name, data, len);
        crs_free(data);
        break;
    }
    default: {
        json_t *d = json_object_get(v, "date");
        int64_t ms;
        if (json_object_size(v) != 1 || !json_is_string(d))
            return fail(ld, CRS_EINVAL, "%s: expected {\"date\": \"RFC 3339 time\"}", where);
        if (crs_time_parse_rfc3339(json_string_value(d), &ms) != 0)
            return fail(ld, CRS_EINVAL,
                        "%s: bad date '%.64s' (want RFC 3339, e.g. "
                        "2026-01-02T03:04:05Z)",
                        where, json_string_value(d));
        rc = proptable_add_date(pt, scope, name, ms);
        break;
    }
    }
    return rc == 0 ? 0 : fail(ld, rc, "%s: out of memory", where);
}

static int load_scope(struct loader *ld, struct proptable *pt, int scope, json_t *obj)
{
    const char *key;
    json_t *v;

    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return fail(ld, CRS_EINVAL, "\"%s\" must be an object of certsrv properties",
                    scope_names[scope]);
    json_object_foreach(obj, key, v)
    {
        int rc = load_value(ld, pt, scope, key, v);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int load_attributes(struct loader *ld, struct proptable *pt, json_t *obj)
{
    const char *key;
    json_t *v;

    if (obj == NULL || json_is_null(obj))
        return 0;
    if (!json_is_object(obj))
        return fail(ld, CRS_EINVAL, "\"attributes\" must be an object of strings");
    json_object_foreach(obj, key, v)
    {
        if (!json_is_string(v))
            return fail(ld, CRS_EINVAL, "attributes.%.160s: value must be a string", key);
        if (proptable_add_attr(pt, key, json_string_value(v)) != 0)
            return fail(ld, CRS_ENOMEM, "out of memory");
    }
    return 0;
}

static int load_extensions(struct loader *ld, struct proptable *pt, json_t *arr)
{
    size_t i;
    json_t *x;

    if (arr == NULL || json_is_null(arr))
        return 0;
    if (!json_is_array(arr))
        return fail(ld, CRS_EINVAL, "\"extensions\" must be an array");
    json_array_foreach(arr, i, x)
    {
        char where[48];
        const char *key;
        json_t *v;
        uint8_t *der = NULL;
        size_t len = 0;
        uint32_t flags = 0;
        int critical = 0;

        snprintf(where, sizeof(where), "extensions[%zu]", i);
        if (!json_is_object(x))
            return fail(ld, CRS_EINVAL, "%s: must be an object", where);
        json_object_foreach(x, key, v)
        {
            if (strcmp(key, "oid") != 0 && strcmp(key, "critical") != 0 &&
                strcmp(key, "flags") != 0 && strcmp(key, "value") != 0)
                return fail(ld, CRS_EINVAL, "%s: unknown key '%.64s'", where, key);
        }
        json_t *oid = json_object_get(x, "oid");
        json_t *crit = json_object_get(x, "critical");
        json_t *fl = json_object_get(x, "flags");
        json_t *val = json_object_get(x, "value");
        if (!json_is_string(oid) || json_string_length(oid) == 0)
            return fail(ld, CRS_EINVAL, "%s: \"oid\" must be a non-empty string", where);
        if (crit != NULL && !json_is_boolean(crit))
            return fail(ld, CRS_EINVAL, "%s: \"critical\" must be true or false", where);
        critical = crit != NULL && json_is_true(crit);
        if (fl != NULL) {
            if (!json_is_integer(fl) || json_integer_value(fl) < 0 ||
                json_integer_value(fl) > (json_int_t)UINT32_MAX)
                return fail(ld, CRS_EINVAL, "%s: \"flags\" must be an integer in 0..4294967295",
                            where);
            flags = (uint32_t)json_integer_value(fl);
        } else {
            flags = critical ? 1u : 0u; /* EXTENSION_CRITICAL_FLAG */
        }
        if (!json_is_object(val))
            return fail(ld, CRS_EINVAL, "%s: \"value\" must be {\"base64\": ...}", where);
        int rc = load_base64(ld, where, val, &der, &len);
        if (rc != 0)
            return rc;
        rc = proptable_add_ext(pt, json_string_value(oid), critical, flags, der, len);
        crs_free(der);
        if (rc != 0)
            return fail(ld, rc, "out of memory");
    }
    return 0;
}

static int load_event(struct loader *ld, json_t *obj, struct script_event *ev)
{
    static const char *const keys[] = {"event",      "request",    "certificate", "ca",
                                       "attributes", "extensions", "comment"};
    const char *key;
    json_t *v;
    int rc;

    if (!json_is_object(obj))
        return fail(ld, CRS_EINVAL, "must be an object");
    json_object_foreach(obj, key, v)
    {
        size_t k = 0;
        while (k < sizeof(keys) / sizeof(keys[0]) && strcmp(keys[k], key) != 0)
            k++;
        if (k == sizeof(keys) / sizeof(keys[0]))
            return fail(ld, CRS_EINVAL,
                        "unknown key '%.64s' (expected event, request, "
                        "certificate, ca, attributes, extensions or comment)",
                        key);
    }
    json_t *name = json_object_get(obj, "event");
    if (name == NULL)
        return fail(ld, CRS_EINVAL, "missing \"event\"");
    if (!json_is_string(name))
        return fail(ld, CRS_EINVAL, "\"event\" must be a string");
    if (crs_event_from_name(json_string_value(name), &ev->kind) != 0)
        return fail(ld, CRS_EINVAL, "unknown event name '%.64s'", json_string_value(name));

    rc = load_scope(ld, &ev->pt, PT_REQUEST, json_object_get(obj, "request"));
    if (rc == 0)
        rc = load_scope(ld, &ev->pt, PT_CERTIFICATE, json_object_get(obj, "certificate"));
    if (rc == 0)
        rc = load_scope(ld, &ev->pt, PT_CA, json_object_get(obj, "ca"));
    if (rc == 0)
        rc = load_attributes(ld, &ev->pt, json_object_get(obj, "attributes"));
    if (rc == 0)
        rc = load_extensions(ld, &ev->pt, json_object_get(obj, "extensions"));
    return rc;
}

int script_load_string(const char *name, const char *text, size_t len, struct script **out,
                       char *err, size_t errlen)
{
    struct loader ld = {.file = name, .err = err, .errlen = errlen};
    struct script *s = NULL;
    json_error_t jerr;
    json_t *root = NULL;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (name == NULL || text == NULL)
        return CRS_EINVAL;

    root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL) {
        rc = CRS_EINVAL;
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s:%d: %s", name, jerr.line, jerr.text);
        goto cleanup;
    }
    if (!json_is_array(root)) {
        rc = fail(&ld, CRS_EINVAL, "expected a JSON array of events");
        goto cleanup;
    }
    if (json_array_size(root) > SCRIPT_MAX_EVENTS) {
        rc = fail(&ld, CRS_ETOOBIG, "more than %d events", SCRIPT_MAX_EVENTS);
        goto cleanup;
    }

    s = crs_calloc(1, sizeof(*s));
    if (s == NULL ||
        (s->events = crs_calloc(json_array_size(root) + 1, sizeof(*s->events))) == NULL) {
        rc = fail(&ld, CRS_ENOMEM, "out of memory");
        goto cleanup;
    }
    for (size_t i = 0; i < json_array_size(root); i++) {
        ld.event = i + 1;
        proptable_init(&s->events[i].pt);
        s->n = i + 1; /* counted before loading, so that a failure frees what was loaded */
        rc = load_event(&ld, json_array_get(root, i), &s->events[i]);
        if (rc != 0)
            goto cleanup;
    }

    *out = s;
    s = NULL;
    rc = 0;

cleanup:
    script_free(s);
    json_decref(root);
    return rc;
}

int script_load(const char *path, struct script **out, char *err, size_t errlen)
{
    uint8_t *text = NULL;
    size_t len = 0;
    int rc;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    if (out == NULL)
        return CRS_EINVAL;
    *out = NULL;
    if (path == NULL)
        return CRS_EINVAL;
    rc = crs_fs_read_all(path, SCRIPT_MAX_BYTES, &text, &len);
    if (rc != 0) {
        if (err != NULL)
            snprintf(err, errlen, "%s: cannot read: %s", path, crs_strerror(rc));
        return rc;
    }
    rc = script_load_string(path, (const char *)text, len, out, err, errlen);
    crs_free(text);
    return rc;
}

void script_free(struct script *s)
{
    if (s == NULL)
        return;
    for (size_t i = 0; i < s->n; i++)
        proptable_clear(&s->events[i].pt);
    crs_free(s->events);
    crs_free(s);
}

size_t script_count(const struct script *s)
{
    return s ? s->n : 0;
}

uint32_t script_kind(const struct script *s, size_t i)
{
    return s && i < s->n ? s->events[i].kind : 0;
}

void script_reader(struct script *s, size_t i, struct crs_prop_reader *rd)
{
    proptable_reader(&s->events[i].pt, rd);
}
