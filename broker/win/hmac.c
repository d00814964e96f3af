/*
 * HMAC-SHA256 with Windows CNG (bcrypt.dll). The algorithm provider is opened per call: signing
 * happens once per webhook attempt, and a cached handle would need process-wide teardown.
 */
#include <windows.h>
#include <bcrypt.h>
#include <string.h>
#include "certrelay/error.h"
#include "hmac.h"

#ifndef NT_SUCCESS
#define NT_SUCCESS(status) (((NTSTATUS)(status)) >= 0)
#endif

static int hmac_update(BCRYPT_HASH_HANDLE hash, const void *p, size_t len)
{
    /* BCryptHashData takes a ULONG length; split larger pieces (bodies are capped far below). */
    const uint8_t *b = p;
    while (len > 0) {
        ULONG n = len > 0x40000000u ? 0x40000000u : (ULONG)len;
        if (!NT_SUCCESS(BCryptHashData(hash, (PUCHAR)b, n, 0)))
            return CRS_EINTERNAL;
        b += n;
        len -= n;
    }
    return 0;
}

int crs_hmac_sha256(const uint8_t *key, size_t keylen, const void *p1, size_t len1, const void *p2,
                    size_t len2, const void *p3, size_t len3, uint8_t out[CRS_SHA256_LEN])
{
    BCRYPT_ALG_HANDLE alg = NULL;
    BCRYPT_HASH_HANDLE hash = NULL;
    static const uint8_t empty[1];
    int rc = CRS_EINTERNAL;

    if (out == NULL)
        return CRS_EINVAL;
    memset(out, 0, CRS_SHA256_LEN);
    if ((key == NULL && keylen > 0) || (p1 == NULL && len1 > 0) || (p2 == NULL && len2 > 0) ||
        (p3 == NULL && len3 > 0) || keylen > 0x7fffffffu)
        return CRS_EINVAL;

    if (!NT_SUCCESS(BCryptOpenAlgorithmProvider(&alg, BCRYPT_SHA256_ALGORITHM, NULL,
                                                BCRYPT_ALG_HANDLE_HMAC_FLAG)))
        goto cleanup;
    /* With a NULL hash object buffer CNG allocates the object itself (Windows 7 and later). */
    if (!NT_SUCCESS(BCryptCreateHash(alg, &hash, NULL, 0, (PUCHAR)(keylen > 0 ? key : empty),
                                     (ULONG)keylen, 0)))
        goto cleanup;
    if ((len1 > 0 && hmac_update(hash, p1, len1) != 0) ||
        (len2 > 0 && hmac_update(hash, p2, len2) != 0) ||
        (len3 > 0 && hmac_update(hash, p3, len3) != 0))
        goto cleanup;
    if (!NT_SUCCESS(BCryptFinishHash(hash, out, CRS_SHA256_LEN, 0)))
        goto cleanup;
    rc = 0;

cleanup:
    if (rc != 0)
        memset(out, 0, CRS_SHA256_LEN);
    if (hash != NULL)
        BCryptDestroyHash(hash);
    if (alg != NULL)
        BCryptCloseAlgorithmProvider(alg, 0);
    return rc;
}
