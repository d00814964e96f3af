/*
 * The simulator's real DER fixtures: a CA, 16 leaf certificates, a base and a delta CRL, made by
 * tests/fixtures/gen-fixtures.sh at build time and embedded by cmake/Embed.cmake. The manifest
 * that comes with them gives each leaf's properties as certsrv reports them; extensions are read
 * from the DER itself, so they always match the certificate.
 */
#ifndef CERTRELAY_TOOLS_FIXTURES_H
#define CERTRELAY_TOOLS_FIXTURES_H

#include <stddef.h>
#include <stdint.h>

/* One embedded file (the generated table ends with a NULL name). */
struct crs_embedded_file {
    const char *name;
    const unsigned char *data;
    size_t len;
};

#define FIXTURE_MAX_EXTENSIONS 24

struct fixture_ext {
    char oid[64];
    int critical;
    const uint8_t *der; /* the extnValue contents, pointing into the certificate */
    size_t len;
};

struct fixture_cert {
    const uint8_t *der;
    size_t len;
    const char *serial; /* lowercase hex, as certsrv's SerialNumber */
    const char *sha1;   /* "aa bb ..", as certsrv's CertificateHash */
    int64_t not_before_ms;
    int64_t not_after_ms;
    const char *dn; /* as certsrv's DistinguishedName */
    const char *cn;
    const char *email;         /* NULL when the certificate has none */
    const char *upn;           /* NULL when the certificate has none */
    const char *template_name; /* a V1 template name or a V2 template OID */
    const char *pubkey_alg;    /* OID */
    int64_t pubkey_bits;
    struct fixture_ext ext[FIXTURE_MAX_EXTENSIONS];
    size_t n_ext;
};

/* Parses the manifest and the certificates' extensions. Call once before threads start. */
int fixtures_init(void);
void fixtures_free(void);

size_t fixture_cert_count(void);
const struct fixture_cert *fixture_cert(size_t i);
/* A named embedded file ("ca.der", "crl.der", "delta.der", "leaf00.der", ...), or NULL. */
const struct crs_embedded_file *fixture_file(const char *name);

/* Parses the extensions of a DER certificate. Exposed for tests. 0 or CRS_EINVAL. */
int fixture_parse_extensions(const uint8_t *der, size_t len, struct fixture_ext *out, size_t max,
                             size_t *n);

#endif
