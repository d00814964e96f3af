/*
 * HMAC-SHA256 from the platform's crypto library: OpenSSL's libcrypto on Unix
 * (broker/unix/hmac.c), CNG's BCrypt on Windows (broker/win/hmac.c). CertRelay never implements a
 * cryptographic primitive itself.
 */
#ifndef CERTRELAY_HMAC_H
#define CERTRELAY_HMAC_H

#include <stddef.h>
#include <stdint.h>

#define CRS_SHA256_LEN 32u

/*
 * Computes HMAC-SHA256(key, data) into out. The message may be given in up to three pieces that
 * are hashed as if concatenated, so a caller signing "id.timestamp.body" needs no copy of the
 * body; a NULL piece with length 0 is skipped. Returns 0, CRS_EINVAL or CRS_EINTERNAL (the
 * library failed); out is zeroed on failure.
 */
int crs_hmac_sha256(const uint8_t *key, size_t keylen, const void *p1, size_t len1, const void *p2,
                    size_t len2, const void *p3, size_t len3, uint8_t out[CRS_SHA256_LEN]);

#endif
