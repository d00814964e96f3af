/*
 * Certificate and CRL dates with OpenSSL's libcrypto (d2i_X509, d2i_X509_CRL).
 */
#include <limits.h>
#include <openssl/asn1.h>
#include <openssl/x509.h>
#include "certrelay/error.h"
#include "x509.h"

/*
 * An ASN1_TIME in Unix milliseconds. ASN1_TIME_diff against the epoch avoids timegm(), which is
 * not portable, and handles both UTCTime and GeneralizedTime.
 */
static int x509_time_ms(const ASN1_TIME *t, int64_t *ms)
{
    ASN1_TIME *epoch;
    int days = 0, secs = 0, ok;

    if (t == NULL)
        return CRS_ENOENT;
    epoch = ASN1_TIME_set(NULL, 0);
    if (epoch == NULL)
        return CRS_ENOMEM;
    ok = ASN1_TIME_diff(&days, &secs, epoch, t);
    ASN1_TIME_free(epoch);
    if (!ok)
        return CRS_EPROTO;
    *ms = ((int64_t)days * 86400 + secs) * 1000;
    return 0;
}

int crs_x509_cert_validity(const uint8_t *der, size_t len, int64_t *not_before_ms,
                           int64_t *not_after_ms)
{
    const unsigned char *p = der;
    X509 *x = NULL;
    int rc;

    if (not_before_ms != NULL)
        *not_before_ms = 0;
    if (not_after_ms != NULL)
        *not_after_ms = 0;
    if (der == NULL || len == 0 || len > CRS_X509_MAX || not_before_ms == NULL ||
        not_after_ms == NULL)
        return CRS_EINVAL;
    x = d2i_X509(NULL, &p, (long)len);
    if (x == NULL)
        return CRS_EPROTO;
    rc = x509_time_ms(X509_get0_notBefore(x), not_before_ms);
    if (rc == 0)
        rc = x509_time_ms(X509_get0_notAfter(x), not_after_ms);
    if (rc == CRS_ENOENT)
        rc = CRS_EPROTO;
    if (rc != 0) {
        *not_before_ms = 0;
        *not_after_ms = 0;
    }
    X509_free(x);
    return rc;
}

int crs_x509_crl_dates(const uint8_t *der, size_t len, int64_t *this_update_ms,
                       int64_t *next_update_ms)
{
    const unsigned char *p = der;
    X509_CRL *crl = NULL;
    int rc;

    if (this_update_ms != NULL)
        *this_update_ms = 0;
    if (next_update_ms != NULL)
        *next_update_ms = 0;
    if (der == NULL || len == 0 || len > CRS_X509_MAX || this_update_ms == NULL ||
        next_update_ms == NULL)
        return CRS_EINVAL;
    crl = d2i_X509_CRL(NULL, &p, (long)len);
    if (crl == NULL)
        return CRS_EPROTO;
    rc = x509_time_ms(X509_CRL_get0_lastUpdate(crl), this_update_ms);
    if (rc == CRS_ENOENT)
        rc = CRS_EPROTO;
    if (rc == 0)
        rc = x509_time_ms(X509_CRL_get0_nextUpdate(crl), next_update_ms);
    if (rc != 0 && rc != CRS_ENOENT)
        *this_update_ms = 0;
    X509_CRL_free(crl);
    return rc;
}
