/*
 * Fuzz target for the CRL and certificate date readers (broker/x509.h): arbitrary bytes as a
 * crl_issued event's RawCRL (and as a certificate without NotAfter), read by libcrypto. The bytes
 * come from the CA, but a broker must survive anything on its input: no crash, no leak, and on
 * failure the outputs are zero. Built like fuzz_frame.c: a libFuzzer target with clang, a corpus
 * replayer everywhere.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include "certrelay/error.h"
#include "x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int64_t a = -1, b = -1;
    int rc;

    rc = crs_x509_crl_dates(data, size, &a, &b);
    if (rc != 0 && rc != CRS_ENOENT && (a != 0 || b != 0))
        abort();
    if (rc == CRS_ENOENT && b != 0)
        abort();
    if (rc == 0 && size == 0)
        abort();
    rc = crs_x509_cert_validity(data, size, &a, &b);
    if (rc != 0 && (a != 0 || b != 0))
        abort();
    return 0;
}
