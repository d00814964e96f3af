/*
 * The dates of a DER certificate or CRL, read by the platform's crypto library: OpenSSL's
 * libcrypto on Unix (broker/unix/x509.c), CryptoAPI's crypt32 on Windows (broker/win/x509.c).
 * CertRelay keeps no DER walker of its own for these: the bytes come from the CA, but a parser of
 * untrusted input is best left to the library the platform maintains (tests/fuzz/fuzz_crl.c
 * feeds it arbitrary bytes all the same).
 */
#ifndef CERTRELAY_BROKER_X509_H
#define CERTRELAY_BROKER_X509_H

#include <stddef.h>
#include <stdint.h>

/* Largest certificate or CRL handed to the library (a CRL of a large CA reaches tens of MB). */
#define CRS_X509_MAX (64u * 1024u * 1024u)

/*
 * notBefore and notAfter of a DER certificate, in Unix milliseconds. Returns 0, CRS_EINVAL (NULL
 * or too large), CRS_EPROTO (not a certificate) or CRS_ENOMEM; the outputs are 0 on failure.
 */
int crs_x509_cert_validity(const uint8_t *der, size_t len, int64_t *not_before_ms,
                           int64_t *not_after_ms);

/*
 * thisUpdate and nextUpdate of a DER CRL, in Unix milliseconds. A CRL without nextUpdate (it is
 * optional in RFC 5280) gives CRS_ENOENT with *this_update_ms set. Otherwise as above.
 */
int crs_x509_crl_dates(const uint8_t *der, size_t len, int64_t *this_update_ms,
                       int64_t *next_update_ms);

#endif
