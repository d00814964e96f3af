/*
 * Certificate and CRL dates with CryptoAPI (crypt32: CertCreateCertificateContext,
 * CertCreateCRLContext).
 */
#include <windows.h>
#include <wincrypt.h>
#include "certrelay/error.h"
#include "x509.h"

/* 100 ns intervals between 1601-01-01 and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

static int64_t x509_filetime_ms(const FILETIME *ft)
{
    int64_t v = (int64_t)((uint64_t)ft->dwHighDateTime << 32 | ft->dwLowDateTime);

    return (v - FILETIME_UNIX_EPOCH) / 10000;
}

static int x509_filetime_set(const FILETIME *ft)
{
    return ft->dwHighDateTime != 0 || ft->dwLowDateTime != 0;
}

int crs_x509_cert_validity(const uint8_t *der, size_t len, int64_t *not_before_ms,
                           int64_t *not_after_ms)
{
    PCCERT_CONTEXT cert;

    if (not_before_ms != NULL)
        *not_before_ms = 0;
    if (not_after_ms != NULL)
        *not_after_ms = 0;
    if (der == NULL || len == 0 || len > CRS_X509_MAX || not_before_ms == NULL ||
        not_after_ms == NULL)
        return CRS_EINVAL;
    cert = CertCreateCertificateContext(X509_ASN_ENCODING, der, (DWORD)len);
    if (cert == NULL)
        return GetLastError() == ERROR_NOT_ENOUGH_MEMORY ? CRS_ENOMEM : CRS_EPROTO;
    *not_before_ms = x509_filetime_ms(&cert->pCertInfo->NotBefore);
    *not_after_ms = x509_filetime_ms(&cert->pCertInfo->NotAfter);
    CertFreeCertificateContext(cert);
    return 0;
}

int crs_x509_crl_dates(const uint8_t *der, size_t len, int64_t *this_update_ms,
                       int64_t *next_update_ms)
{
    PCCRL_CONTEXT crl;
    int rc = 0;

    if (this_update_ms != NULL)
        *this_update_ms = 0;
    if (next_update_ms != NULL)
        *next_update_ms = 0;
    if (der == NULL || len == 0 || len > CRS_X509_MAX || this_update_ms == NULL ||
        next_update_ms == NULL)
        return CRS_EINVAL;
    crl = CertCreateCRLContext(X509_ASN_ENCODING, der, (DWORD)len);
    if (crl == NULL)
        return GetLastError() == ERROR_NOT_ENOUGH_MEMORY ? CRS_ENOMEM : CRS_EPROTO;
    *this_update_ms = x509_filetime_ms(&crl->pCrlInfo->ThisUpdate);
    /* CRL_INFO.NextUpdate is all zero when the CRL has none. */
    if (x509_filetime_set(&crl->pCrlInfo->NextUpdate))
        *next_update_ms = x509_filetime_ms(&crl->pCrlInfo->NextUpdate);
    else
        rc = CRS_ENOENT;
    CertFreeCRLContext(crl);
    return rc;
}
