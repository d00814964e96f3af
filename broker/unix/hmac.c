/*
 * HMAC-SHA256 with OpenSSL's libcrypto (EVP_MAC, the OpenSSL 3 interface).
 */
#include <string.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include "certrelay/error.h"
#include "hmac.h"

int crs_hmac_sha256(const uint8_t *key, size_t keylen, const void *p1, size_t len1, const void *p2,
                    size_t len2, const void *p3, size_t len3, uint8_t out[CRS_SHA256_LEN])
{
    EVP_MAC *mac = NULL;
    EVP_MAC_CTX *ctx = NULL;
    OSSL_PARAM params[2];
    size_t outlen = 0;
    int rc = CRS_EINTERNAL;

    if (out == NULL)
        return CRS_EINVAL;
    memset(out, 0, CRS_SHA256_LEN);
    if ((key == NULL && keylen > 0) || (p1 == NULL && len1 > 0) || (p2 == NULL && len2 > 0) ||
        (p3 == NULL && len3 > 0))
        return CRS_EINVAL;

    mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    if (mac == NULL)
        goto cleanup;
    ctx = EVP_MAC_CTX_new(mac);
    if (ctx == NULL)
        goto cleanup;
    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[1] = OSSL_PARAM_construct_end();
    /* OpenSSL refuses a NULL key even when its length is 0; an empty key is a valid HMAC key. */
    if (!EVP_MAC_init(ctx, keylen > 0 ? key : (const uint8_t *)"", keylen, params))
        goto cleanup;
    if ((len1 > 0 && !EVP_MAC_update(ctx, p1, len1)) ||
        (len2 > 0 && !EVP_MAC_update(ctx, p2, len2)) ||
        (len3 > 0 && !EVP_MAC_update(ctx, p3, len3)))
        goto cleanup;
    if (!EVP_MAC_final(ctx, out, &outlen, CRS_SHA256_LEN) || outlen != CRS_SHA256_LEN)
        goto cleanup;
    rc = 0;

cleanup:
    if (rc != 0)
        memset(out, 0, CRS_SHA256_LEN);
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    return rc;
}
