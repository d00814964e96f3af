/*
 * The in-memory property table behind the simulator and the script reader (see proptable.h).
 * Lookups are linear: a table holds a few dozen properties, and certsrv itself matches names
 * without regard to case, as done here.
 */
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "proptable.h"

void proptable_init(struct proptable *pt)
{
    memset(pt, 0, sizeof(*pt));
}

void proptable_clear(struct proptable *pt)
{
    if (pt == NULL)
        return;
    for (int s = 0; s < PT_NSCOPES; s++) {
        for (size_t i = 0; i < pt->nprops[s]; i++) {
            crs_free(pt->props[s][i].name);
            crs_prop_value_clear(&pt->props[s][i].v);
        }
        crs_free(pt->props[s]);
    }
    for (size_t i = 0; i < pt->nexts; i++) {
        crs_free(pt->exts[i].oid);
        crs_free(pt->exts[i].der);
    }
    crs_free(pt->exts);
    for (size_t i = 0; i < pt->nattrs; i++) {
        crs_free(pt->attrs[i].name);
        crs_free(pt->attrs[i].value);
    }
    crs_free(pt->attrs);
    memset(pt, 0, sizeof(*pt));
}

static struct proptable_prop *proptable_find(const struct proptable *pt, enum proptable_scope s,
                                             const char *name)
{
    for (size_t i = 0; i < pt->nprops[s]; i++)
        if (crs_ascii_casecmp(pt->props[s][i].name, name) == 0)
            return &pt->props[s][i];
    return NULL;
}

/* Grows an array of elem-sized items so that one more fits. */
static int grow(void **arr, size_t n, size_t *cap, size_t elem)
{
    if (n < *cap)
        return 0;
    size_t ncap = *cap ? *cap * 2 : 16;
    void *p = crs_realloc(*arr, ncap * elem);
    if (p == NULL)
        return CRS_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

/* Stores v (taking ownership of its buffers) under name; on failure v is cleared. */
static int proptable_put(struct proptable *pt, enum proptable_scope s, const char *name,
                         struct crs_prop_value *v)
{
    struct proptable_prop *p = proptable_find(pt, s, name);
    if (p != NULL) {
        crs_prop_value_clear(&p->v);
        p->v = *v;
        return 0;
    }
    char *copy = crs_strdup(name);
    if (copy == NULL ||
        grow((void **)&pt->props[s], pt->nprops[s], &pt->capprops[s], sizeof(*p)) != 0) {
        crs_free(copy);
        crs_prop_value_clear(v);
        return CRS_ENOMEM;
    }
    p = &pt->props[s][pt->nprops[s]++];
    p->name = copy;
    p->v = *v;
    return 0;
}

int proptable_add_long(struct proptable *pt, enum proptable_scope s, const char *name, int64_t v)
{
    struct crs_prop_value pv = {.type = CRS_PROP_LONG, .l = v};
    return proptable_put(pt, s, name, &pv);
}

int proptable_add_date(struct proptable *pt, enum proptable_scope s, const char *name,
                       int64_t unix_ms)
{
    struct crs_prop_value pv = {.type = CRS_PROP_DATE, .date_ms = unix_ms};
    return proptable_put(pt, s, name, &pv);
}

int proptable_add_string(struct proptable *pt, enum proptable_scope s, const char *name,
                         const char *v)
{
    struct crs_prop_value pv = {.type = CRS_PROP_STRING};
    pv.str = crs_strdup(v);
    if (pv.str == NULL)
        return CRS_ENOMEM;
    pv.len = strlen(pv.str);
    return proptable_put(pt, s, name, &pv);
}

int proptable_add_binary(struct proptable *pt, enum proptable_scope s, const char *name,
                         const uint8_t *data, size_t len)
{
    struct crs_prop_value pv = {.type = CRS_PROP_BINARY, .len = len};
    pv.bin = crs_malloc(len);
    if (pv.bin == NULL)
        return CRS_ENOMEM;
    if (len > 0)
        memcpy(pv.bin, data, len);
    return proptable_put(pt, s, name, &pv);
}

int proptable_add_ext(struct proptable *pt, const char *oid, int critical, uint32_t flags,
                      const uint8_t *der, size_t len)
{
    char *o = crs_strdup(oid);
    uint8_t *d = crs_malloc(len);
    if (o == NULL || d == NULL ||
        grow((void **)&pt->exts, pt->nexts, &pt->capexts, sizeof(*pt->exts)) != 0) {
        crs_free(o);
        crs_free(d);
        return CRS_ENOMEM;
    }
    if (len > 0)
        memcpy(d, der, len);
    pt->exts[pt->nexts++] = (struct proptable_ext){o, flags, critical, d, len};
    return 0;
}

int proptable_add_attr(struct proptable *pt, const char *name, const char *value)
{
    char *n = crs_strdup(name);
    char *v = crs_strdup(value);
    if (n == NULL || v == NULL ||
        grow((void **)&pt->attrs, pt->nattrs, &pt->capattrs, sizeof(*pt->attrs)) != 0) {
        crs_free(n);
        crs_free(v);
        return CRS_ENOMEM;
    }
    pt->attrs[pt->nattrs++] = (struct proptable_attr){n, v};
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The reader: every get hands out a fresh copy, as the contract in stub.h asks.
 * ------------------------------------------------------------------------------------------- */

static int proptable_get(struct proptable *pt, enum proptable_scope s, const char *name,
                         enum crs_prop_type type, struct crs_prop_value *out)
{
    memset(out, 0, sizeof(*out));
    const struct proptable_prop *p = proptable_find(pt, s, name);
    if (p == NULL)
        return CRS_ENOENT;
    /* certsrv refuses a property read with the wrong type (E_INVALIDARG). */
    if (p->v.type != (int)type)
        return CRS_EINVAL;
    *out = p->v;
    out->bin = NULL;
    out->str = NULL;
    if (type == CRS_PROP_BINARY) {
        out->bin = crs_malloc(p->v.len);
        if (out->bin == NULL)
            return CRS_ENOMEM;
        if (p->v.len > 0)
            memcpy(out->bin, p->v.bin, p->v.len);
    } else if (type == CRS_PROP_STRING) {
        out->str = crs_strdup(p->v.str);
        if (out->str == NULL)
            return CRS_ENOMEM;
    }
    return 0;
}

static int get_request(void *ctx, const char *name, enum crs_prop_type type,
                       struct crs_prop_value *out)
{
    return proptable_get(ctx, PT_REQUEST, name, type, out);
}

static int get_certificate(void *ctx, const char *name, enum crs_prop_type type,
                           struct crs_prop_value *out)
{
    return proptable_get(ctx, PT_CERTIFICATE, name, type, out);
}

static int get_ca(void *ctx, const char *name, enum crs_prop_type type, struct crs_prop_value *out)
{
    return proptable_get(ctx, PT_CA, name, type, out);
}

static int enum_extensions(void *ctx, crs_ext_cb cb, void *arg)
{
    struct proptable *pt = ctx;
    for (size_t i = 0; i < pt->nexts; i++) {
        const struct proptable_ext *x = &pt->exts[i];
        if (cb(arg, x->oid, x->flags, x->critical, x->der, x->len) != 0)
            break;
    }
    return 0;
}

static int enum_attributes(void *ctx, crs_attr_cb cb, void *arg)
{
    struct proptable *pt = ctx;
    for (size_t i = 0; i < pt->nattrs; i++)
        if (cb(arg, pt->attrs[i].name, pt->attrs[i].value) != 0)
            break;
    return 0;
}

void proptable_reader(struct proptable *pt, struct crs_prop_reader *rd)
{
    rd->ctx = pt;
    rd->get_request = get_request;
    rd->get_certificate = get_certificate;
    rd->get_ca = get_ca;
    rd->enum_extensions = enum_extensions;
    rd->enum_attributes = enum_attributes;
}
