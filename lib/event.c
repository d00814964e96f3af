/*
 * Event kinds and the encode/decode steps of the event model (include/certrelay/event.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/event.h"
#include "certrelay/frame.h"
#include "certrelay/uuid.h"

/* The one table of event kinds: bit, short name (configuration, JSON, templates) and title (mail
 * subjects, chat headings, {{kind_title}}). */
static const struct {
    uint32_t kind;
    const char *name;
    const char *title;
} kind_names[] = {
    {CRS_EVENT_ISSUED, "issued", "Certificate issued"},
    {CRS_EVENT_PENDING, "pending", "Request pending"},
    {CRS_EVENT_DENIED, "denied", "Request denied"},
    {CRS_EVENT_REVOKED, "revoked", "Certificate revoked"},
    {CRS_EVENT_RETRIEVE_PENDING, "retrieve_pending", "Pending request retrieved"},
    {CRS_EVENT_CRL_ISSUED, "crl_issued", "CRL published"},
    {CRS_EVENT_SHUTDOWN, "shutdown", "CA service stopping"},
    {CRS_EVENT_STARTUP, "startup", "CA service started"},
    {CRS_EVENT_UNREVOKED, "unrevoked", "Certificate unrevoked"},
    {CRS_EVENT_IMPORTED, "imported", "Certificate imported"},
    {CRS_EVENT_EXPIRING, "expiring", "Certificate expiring"},
    {CRS_EVENT_EXPIRED, "expired", "Certificate expired"},
    {CRS_EVENT_CRL_EXPIRING, "crl_expiring", "CRL expiring"},
};

#define NKINDS (sizeof(kind_names) / sizeof(kind_names[0]))

/* The table's row for exactly one known bit, or -1. */
static int kind_index(uint32_t kind)
{
    size_t i;

    for (i = 0; i < NKINDS; i++)
        if (kind_names[i].kind == kind)
            return (int)i;
    return -1;
}

const char *crs_event_name(uint32_t kind)
{
    int i = kind_index(kind);

    return i < 0 ? NULL : kind_names[i].name;
}

const char *crs_event_title(uint32_t kind)
{
    int i = kind_index(kind);

    return i < 0 ? NULL : kind_names[i].title;
}

int crs_event_from_name(const char *name, uint32_t *kind)
{
    size_t i;

    if (name == NULL || kind == NULL)
        return CRS_EINVAL;
    for (i = 0; i < NKINDS; i++) {
        if (strcmp(kind_names[i].name, name) == 0) {
            *kind = kind_names[i].kind;
            return 0;
        }
    }
    return CRS_EINVAL;
}

int crs_event_mask_parse(const char *list, uint32_t *mask, char *err, size_t errlen)
{
    char word[64];
    const char *p = list;
    uint32_t m = 0;

    if (list == NULL || mask == NULL)
        return CRS_EINVAL;
    *mask = 0;
    while (*p != '\0') {
        size_t n = 0;
        uint32_t k;

        while (*p == ',' || *p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        while (p[n] != '\0' && p[n] != ',' && p[n] != ' ' && p[n] != '\t')
            n++;
        if (n >= sizeof(word)) {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "unknown event name '%.*s...'", 20, p);
            return CRS_EINVAL;
        }
        memcpy(word, p, n);
        word[n] = '\0';
        p += n;
        if (strcmp(word, "all") == 0) {
            m |= CRS_EVENT_ALL;
        } else if (strcmp(word, "alerts") == 0) {
            m |= CRS_EVENT_ALERTS;
        } else if (crs_event_from_name(word, &k) == 0) {
            m |= k;
        } else {
            if (err != NULL && errlen > 0)
                snprintf(err, errlen, "unknown event name '%s'", word);
            return CRS_EINVAL;
        }
    }
    if (m == 0) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "empty event list");
        return CRS_EINVAL;
    }
    *mask = m;
    return 0;
}

int crs_event_is_certificate_kind(uint32_t kind)
{
    return (kind &
            (CRS_EVENT_ISSUED | CRS_EVENT_REVOKED | CRS_EVENT_UNREVOKED | CRS_EVENT_IMPORTED |
             CRS_EVENT_PENDING | CRS_EVENT_DENIED | CRS_EVENT_RETRIEVE_PENDING)) != 0;
}

int crs_event_pack(const Certrelay__V1__Event *ev, uint8_t **out, size_t *outlen)
{
    size_t len;
    uint8_t *buf;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (ev == NULL || out == NULL || outlen == NULL)
        return CRS_EINVAL;
    len = certrelay__v1__event__get_packed_size(ev);
    buf = crs_malloc(len);
    if (buf == NULL)
        return CRS_ENOMEM;
    certrelay__v1__event__pack(ev, buf);
    *out = buf;
    *outlen = len;
    return 0;
}

int crs_event_validate(const Certrelay__V1__Event *ev)
{
    if (ev == NULL)
        return CRS_EINVAL;
    if (ev->event_id == NULL || !crs_uuid_valid(ev->event_id))
        return CRS_EPROTO;
    if (!ev->has_kind || crs_event_name((uint32_t)ev->kind) == NULL)
        return CRS_EPROTO;
    return 0;
}

int crs_event_id_canonicalize(Certrelay__V1__Event *ev)
{
    char *p;
    int changed = 0;

    if (ev == NULL || ev->event_id == NULL || !crs_uuid_valid(ev->event_id))
        return CRS_EPROTO;
    for (p = ev->event_id; *p != '\0'; p++) {
        if (*p >= 'A' && *p <= 'F') {
            *p = (char)(*p - 'A' + 'a');
            changed = 1;
        }
    }
    return changed;
}

int crs_event_unpack(const uint8_t *data, size_t len, Certrelay__V1__Event **out)
{
    Certrelay__V1__Event *ev;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (data == NULL || out == NULL)
        return CRS_EINVAL;
    rc = crs_pb_check(&certrelay__v1__event__descriptor, data, len);
    if (rc != 0)
        return rc;
    ev = certrelay__v1__event__unpack(&crs_protobuf_allocator, len, data);
    if (ev == NULL)
        return CRS_EPROTO; /* protobuf-c does not distinguish allocation failure from bad input */
    if (crs_event_validate(ev) != 0) {
        certrelay__v1__event__free_unpacked(ev, &crs_protobuf_allocator);
        return CRS_EPROTO;
    }
    *out = ev;
    return 0;
}

void crs_event_free(Certrelay__V1__Event *ev)
{
    if (ev != NULL)
        certrelay__v1__event__free_unpacked(ev, &crs_protobuf_allocator);
}

void crs_event_serial_hex(const Certrelay__V1__Event *ev, char *out, size_t outlen)
{
    const char *s;
    size_t n = 0;

    if (out == NULL || outlen == 0)
        return;
    out[0] = '\0';
    if (ev == NULL || ev->certificate == NULL || ev->certificate->serial_number == NULL)
        return;
    /* certsrv gives hex, sometimes with spaces; keep only hex digits, lowercased. */
    for (s = ev->certificate->serial_number; *s != '\0' && n + 1 < outlen && n < 128; s++) {
        if (isxdigit((unsigned char)*s))
            out[n++] = (char)tolower((unsigned char)*s);
    }
    out[n] = '\0';
}

char *crs_event_thumbprint(const char *hash)
{
    char *buf;
    size_t i, n = 0;

    if (hash == NULL)
        return crs_strdup("");
    buf = crs_malloc(strlen(hash) + 1);
    if (buf == NULL)
        return NULL;
    for (i = 0; hash[i] != '\0'; i++) {
        char c = hash[i];

        if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
            continue;
        buf[n++] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    buf[n] = '\0';
    return buf;
}
