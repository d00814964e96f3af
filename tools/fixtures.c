/*
 * Access to the embedded fixtures (see fixtures.h). The manifest is a tab-separated text file:
 *
 *   index serial sha1 not_before not_after dn cn email upn template pubkey_alg pubkey_bits
 *   0     61c7..  27 97 .. 1735718400 1798790400 CN=web00.., OU=Web.. web00.. - - WebServer ..
 *
 * with dates in Unix seconds and "-" for an empty field. It is copied once and split in place;
 * the certificate records point into that copy and into the embedded DER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "fixtures.h"

#define FIXTURE_MAX_CERTS 64
#define MANIFEST_FIELDS   12

extern const struct crs_embedded_file fixture_files[];

static char *manifest_copy;
static struct fixture_cert certs[FIXTURE_MAX_CERTS];
static size_t ncerts;

const struct crs_embedded_file *fixture_file(const char *name)
{
    for (const struct crs_embedded_file *f = fixture_files; f->name != NULL; f++)
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

/* ---------------------------------------------------------------------------------------------
 * Just enough DER to find a certificate's extensions
 * ------------------------------------------------------------------------------------------- */

/* One TLV at p (n bytes available): tag, contents and the total encoded size. */
static int der_tlv(const uint8_t *p, size_t n, uint8_t *tag, const uint8_t **val, size_t *vlen,
                   size_t *total)
{
    size_t hdr = 2;
    size_t len;

    if (n < 2 || (p[0] & 0x1f) == 0x1f)
        return CRS_EINVAL;
    *tag = p[0];
    if (p[1] < 0x80) {
        len = p[1];
    } else {
        size_t k = p[1] & 0x7f;
        if (k == 0 || k > 4 || n < 2 + k)
            return CRS_EINVAL;
        len = 0;
        for (size_t i = 0; i < k; i++)
            len = (len << 8) | p[2 + i];
        hdr += k;
    }
    if (len > n - hdr)
        return CRS_EINVAL;
    *val = p + hdr;
    *vlen = len;
    *total = hdr + len;
    return 0;
}

/* Dotted text of a DER OID's contents. */
static int der_oid_text(const uint8_t *p, size_t n, char *out, size_t outlen)
{
    size_t o = 0;
    uint64_t v = 0;
    int first = 1;

    if (n == 0)
        return CRS_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (v > (UINT64_MAX >> 7))
            return CRS_EINVAL;
        v = (v << 7) | (p[i] & 0x7f);
        if (p[i] & 0x80)
            continue;
        int w;
        if (first) {
            unsigned arc0 = v < 40 ? 0 : v < 80 ? 1 : 2;
            w = snprintf(out + o, outlen - o, "%u.%llu", arc0,
                         (unsigned long long)(v - 40u * arc0));
            first = 0;
        } else {
            w = snprintf(out + o, outlen - o, ".%llu", (unsigned long long)v);
        }
        if (w < 0 || (size_t)w >= outlen - o)
            return CRS_EINVAL;
        o += (size_t)w;
        v = 0;
    }
    return (p[n - 1] & 0x80) ? CRS_EINVAL : 0;
}

int fixture_parse_extensions(const uint8_t *der, size_t len, struct fixture_ext *out, size_t max,
                             size_t *n)
{
    const uint8_t *cert, *tbs, *v;
    size_t certlen, tbslen, vlen, total;
    uint8_t tag;

    *n = 0;
    if (der_tlv(der, len, &tag, &cert, &certlen, &total) != 0 || tag != 0x30)
        return CRS_EINVAL;
    if (der_tlv(cert, certlen, &tag, &tbs, &tbslen, &total) != 0 || tag != 0x30)
        return CRS_EINVAL;

    /* Walk TBSCertificate's fields up to [3] EXPLICIT Extensions. */
    while (tbslen > 0) {
        if (der_tlv(tbs, tbslen, &tag, &v, &vlen, &total) != 0)
            return CRS_EINVAL;
        tbs += total;
        tbslen -= total;
        if (tag != 0xa3)
            continue;

        const uint8_t *seq;
        size_t seqlen;
        if (der_tlv(v, vlen, &tag, &seq, &seqlen, &total) != 0 || tag != 0x30)
            return CRS_EINVAL;
        while (seqlen > 0) {
            const uint8_t *ext, *f;
            size_t extlen, flen;
            if (der_tlv(seq, seqlen, &tag, &ext, &extlen, &total) != 0 || tag != 0x30)
                return CRS_EINVAL;
            seq += total;
            seqlen -= total;
            if (*n >= max)
                return 0;

            struct fixture_ext *x = &out[*n];
            memset(x, 0, sizeof(*x));
            if (der_tlv(ext, extlen, &tag, &f, &flen, &total) != 0 || tag != 0x06 ||
                der_oid_text(f, flen, x->oid, sizeof(x->oid)) != 0)
                return CRS_EINVAL;
            ext += total;
            extlen -= total;
            if (der_tlv(ext, extlen, &tag, &f, &flen, &total) != 0)
                return CRS_EINVAL;
            if (tag == 0x01) {
                x->critical = flen == 1 && f[0] != 0;
                ext += total;
                extlen -= total;
                if (der_tlv(ext, extlen, &tag, &f, &flen, &total) != 0)
                    return CRS_EINVAL;
            }
            if (tag != 0x04)
                return CRS_EINVAL;
            x->der = f;
            x->len = flen;
            (*n)++;
        }
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * The manifest
 * ------------------------------------------------------------------------------------------- */

static const char *field_or_null(char *s)
{
    return strcmp(s, "-") == 0 ? NULL : s;
}

int fixtures_init(void)
{
    const struct crs_embedded_file *mf = fixture_file("manifest.tsv");
    char name[32];
    int rc = CRS_EINVAL;

    if (manifest_copy != NULL)
        return 0;
    if (mf == NULL)
        return CRS_ENOENT;
    manifest_copy = crs_strndup((const char *)mf->data, mf->len);
    if (manifest_copy == NULL)
        return CRS_ENOMEM;

    ncerts = 0;
    for (char *line = manifest_copy; line != NULL && *line != '\0';) {
        char *nl = strchr(line, '\n');
        if (nl != NULL)
            *nl = '\0';
        char *f[MANIFEST_FIELDS];
        size_t nf = 0;
        for (char *p = line; nf < MANIFEST_FIELDS;) {
            f[nf++] = p;
            char *tab = strchr(p, '\t');
            if (tab == NULL)
                break;
            *tab = '\0';
            p = tab + 1;
        }
        if (nf != MANIFEST_FIELDS || ncerts >= FIXTURE_MAX_CERTS)
            goto cleanup;

        struct fixture_cert *c = &certs[ncerts];
        memset(c, 0, sizeof(*c));
        snprintf(name, sizeof(name), "leaf%02d.der", atoi(f[0]));
        const struct crs_embedded_file *der = fixture_file(name);
        if (der == NULL)
            goto cleanup;
        c->der = der->data;
        c->len = der->len;
        c->serial = f[1];
        c->sha1 = f[2];
        c->not_before_ms = strtoll(f[3], NULL, 10) * 1000;
        c->not_after_ms = strtoll(f[4], NULL, 10) * 1000;
        c->dn = f[5];
        c->cn = f[6];
        c->email = field_or_null(f[7]);
        c->upn = field_or_null(f[8]);
        c->template_name = f[9];
        c->pubkey_alg = f[10];
        c->pubkey_bits = strtoll(f[11], NULL, 10);
        if (fixture_parse_extensions(c->der, c->len, c->ext, FIXTURE_MAX_EXTENSIONS, &c->n_ext) !=
            0)
            goto cleanup;
        ncerts++;
        line = nl ? nl + 1 : NULL;
    }
    rc = ncerts > 0 ? 0 : CRS_EINVAL;

cleanup:
    if (rc != 0)
        fixtures_free();
    return rc;
}

void fixtures_free(void)
{
    crs_free(manifest_copy);
    manifest_copy = NULL;
    ncerts = 0;
}

size_t fixture_cert_count(void)
{
    return ncerts;
}

const struct fixture_cert *fixture_cert(size_t i)
{
    return i < ncerts ? &certs[i] : NULL;
}
