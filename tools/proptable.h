/*
 * A certsrv "server object" in memory: request, certificate and CA properties by name, plus the
 * extensions and attributes certsrv would enumerate, served through struct crs_prop_reader. The
 * simulator fills a fresh table per call (as certsrv gives a fresh context per Notify); the
 * script reader fills one per scripted event. Either way the stub core reads it through exactly
 * the path the Windows shell serves from ICertServerExit.
 */
#ifndef CERTRELAY_TOOLS_PROPTABLE_H
#define CERTRELAY_TOOLS_PROPTABLE_H

#include <stddef.h>
#include <stdint.h>
#include "certrelay/stub.h"

enum proptable_scope { PT_REQUEST = 0, PT_CERTIFICATE, PT_CA, PT_NSCOPES };

struct proptable_prop {
    char *name;
    struct crs_prop_value v; /* owned */
};

struct proptable_ext {
    char *oid;
    uint32_t flags;
    int critical;
    uint8_t *der;
    size_t len;
};

struct proptable_attr {
    char *name;
    char *value;
};

struct proptable {
    struct proptable_prop *props[PT_NSCOPES];
    size_t nprops[PT_NSCOPES];
    size_t capprops[PT_NSCOPES];
    struct proptable_ext *exts;
    size_t nexts, capexts;
    struct proptable_attr *attrs;
    size_t nattrs, capattrs;
};

void proptable_init(struct proptable *pt);
/* Frees everything the table holds; the table may be reused after proptable_init. */
void proptable_clear(struct proptable *pt);

/* Each add copies its arguments. A name added twice in one scope replaces the earlier value.
 * 0 or CRS_ENOMEM. */
int proptable_add_long(struct proptable *pt, enum proptable_scope s, const char *name, int64_t v);
int proptable_add_date(struct proptable *pt, enum proptable_scope s, const char *name,
                       int64_t unix_ms);
int proptable_add_string(struct proptable *pt, enum proptable_scope s, const char *name,
                         const char *v);
int proptable_add_binary(struct proptable *pt, enum proptable_scope s, const char *name,
                         const uint8_t *data, size_t len);
int proptable_add_ext(struct proptable *pt, const char *oid, int critical, uint32_t flags,
                      const uint8_t *der, size_t len);
int proptable_add_attr(struct proptable *pt, const char *name, const char *value);

/* A reader over pt (which must outlive it). */
void proptable_reader(struct proptable *pt, struct crs_prop_reader *rd);

#endif
