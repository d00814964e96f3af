/*
 * Standard Webhooks (standardwebhooks.com) signatures of webhook requests (formats.h): the secret
 * file's text and the HMAC-SHA256 signature, with the platform's crypto library (hmac.h).
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/base64.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "hmac.h"
#include "sinks/webhook/formats.h"

int crs_webhook_secret_parse(const char *text, size_t len, uint8_t **key, size_t *keylen)
{
    char *copy = NULL;
    size_t start = 0, end = len;
    int rc;

    if (key)
        *key = NULL;
    if (keylen)
        *keylen = 0;
    if (!text || !key || !keylen)
        return CRS_EINVAL;
    while (start < end && crs_ascii_isspace((unsigned char)text[start]))
        start++;
    while (end > start && crs_ascii_isspace((unsigned char)text[end - 1]))
        end--;
    if (end - start >= 6 && memcmp(text + start, "whsec_", 6) == 0)
        start += 6;
    if (end == start || end - start > 4 * CRS_WEBHOOK_SECRET_MAX)
        return CRS_EINVAL;
    copy = crs_strndup(text + start, end - start);
    if (!copy)
        return CRS_ENOMEM;
    rc = crs_base64_decode(copy, key, keylen);
    /* The copy held the secret: wipe it before it goes back to the allocator. */
    memset(copy, 0, end - start);
    crs_free(copy);
    if (rc == 0 && (*keylen == 0 || *keylen > CRS_WEBHOOK_SECRET_MAX)) {
        memset(*key, 0, *keylen);
        crs_free(*key);
        *key = NULL;
        *keylen = 0;
        rc = CRS_EINVAL;
    }
    return rc;
}

int crs_webhook_sign(const uint8_t *key, size_t keylen, const char *msg_id, int64_t timestamp_s,
                     const void *body, size_t bodylen, char out[CRS_WEBHOOK_SIGNATURE_LEN])
{
    uint8_t mac[CRS_SHA256_LEN];
    char prefix[160];
    char *b64;
    int n, rc;

    if (!out)
        return CRS_EINVAL;
    out[0] = '\0';
    if (!key || keylen == 0 || !msg_id || (!body && bodylen > 0) || strlen(msg_id) > 100)
        return CRS_EINVAL;
    n = snprintf(prefix, sizeof prefix, "%s.%lld.", msg_id, (long long)timestamp_s);
    if (n < 0 || (size_t)n >= sizeof prefix)
        return CRS_EINVAL;
    rc = crs_hmac_sha256(key, keylen, prefix, (size_t)n, body, bodylen, NULL, 0, mac);
    if (rc)
        return rc;
    b64 = crs_base64_encode(mac, sizeof mac);
    if (!b64)
        return CRS_ENOMEM;
    snprintf(out, CRS_WEBHOOK_SIGNATURE_LEN, "v1,%s", b64);
    crs_free(b64);
    return 0;
}
