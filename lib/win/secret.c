/*
 * Secret files on Windows: plain text or a machine-scope DPAPI blob. See
 * include/certrelay/secret.h.
 *
 * A DPAPI blob (DPAPI_BLOB) starts with two 32-bit little-endian version fields, both 1, around
 * the 16-byte provider GUID ({df9d8cd0-1501-11d1-8c7a-00c04fc297eb} on Windows; Wine writes its
 * own). A secret kept as text never starts with the bytes 01 00 00 00, so the header tells the two
 * forms apart without a format of our own, and blobs made by other tools (PowerShell's
 * ProtectedData with the LocalMachine scope and no entropy) are read as well.
 */
#include <windows.h>
#include <wincrypt.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/secret.h"
#include "certrelay/win/secdir.h"

static const uint8_t dpapi_version[4] = {0x01, 0x00, 0x00, 0x00};
#define DPAPI_PROVIDER_LEN 16

/* Whether data looks like a DPAPI blob: version 1, a provider GUID, master key version 1. */
static int is_dpapi_blob(const uint8_t *data, size_t len)
{
    return len > 2 * sizeof(dpapi_version) + DPAPI_PROVIDER_LEN &&
           memcmp(data, dpapi_version, sizeof(dpapi_version)) == 0 &&
           memcmp(data + sizeof(dpapi_version) + DPAPI_PROVIDER_LEN, dpapi_version,
                  sizeof(dpapi_version)) == 0;
}

/* Copies a DATA_BLOB CryptoAPI allocated into crs_malloc'd memory and wipes the original. */
static int take_blob(DATA_BLOB *b, uint8_t **out, size_t *outlen)
{
    int rc = 0;

    *out = crs_malloc(b->cbData > 0 ? b->cbData : 1);
    if (*out == NULL)
        rc = CRS_ENOMEM;
    else {
        memcpy(*out, b->pbData, b->cbData);
        *outlen = b->cbData;
    }
    SecureZeroMemory(b->pbData, b->cbData);
    LocalFree(b->pbData);
    return rc;
}

int crs_secret_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    DATA_BLOB in, plain;
    uint8_t *data = NULL;
    size_t len = 0;
    int rc;

    if (out == NULL || outlen == NULL)
        return CRS_EINVAL;
    *out = NULL;
    *outlen = 0;
    rc = crs_fs_read_all(path, max, &data, &len);
    if (rc != 0)
        return rc;
    if (!is_dpapi_blob(data, len)) {
        *out = data;
        *outlen = len;
        return 0;
    }
    in.pbData = data;
    in.cbData = (DWORD)len;
    memset(&plain, 0, sizeof(plain));
    if (!CryptUnprotectData(&in, NULL, NULL, NULL, NULL, CRYPTPROTECT_UI_FORBIDDEN, &plain)) {
        DWORD err = GetLastError();
        rc = err == ERROR_OUTOFMEMORY ? CRS_ENOMEM : CRS_EACCES;
    } else {
        rc = take_blob(&plain, out, outlen);
    }
    crs_secret_free(data, len);
    return rc;
}

int crs_secret_seal(const uint8_t *plain, size_t len, uint8_t **out, size_t *outlen)
{
    DATA_BLOB in, sealed;

    if (out == NULL || outlen == NULL)
        return CRS_EINVAL;
    *out = NULL;
    *outlen = 0;
    if ((plain == NULL && len > 0) || len > 0x7fffffffu)
        return CRS_EINVAL;
    in.pbData = (BYTE *)plain;
    in.cbData = (DWORD)len;
    memset(&sealed, 0, sizeof(sealed));
    if (!CryptProtectData(&in, L"CertRelay secret", NULL, NULL, NULL,
                          CRYPTPROTECT_LOCAL_MACHINE | CRYPTPROTECT_UI_FORBIDDEN, &sealed))
        return crs_translate_sys_error((int)GetLastError());
    return take_blob(&sealed, out, outlen);
}

int crs_secret_write_file(const char *path, const uint8_t *plain, size_t len)
{
    const char *a, *b, *cut;
    uint8_t *sealed = NULL;
    size_t sealed_len = 0;
    char *dir = NULL;
    int rc;

    if (path == NULL || path[0] == '\0')
        return CRS_EINVAL;
    a = strrchr(path, '\\');
    b = strrchr(path, '/');
    cut = a == NULL ? b : (b == NULL || a > b ? a : b);
    if (cut != NULL && cut[1] == '\0')
        return CRS_EINVAL;
    rc = crs_secret_seal(plain, len, &sealed, &sealed_len);
    if (rc != 0)
        return rc;
    dir = cut != NULL ? crs_strndup(path, (size_t)(cut - path + (cut == path))) : crs_strdup(".");
    if (dir == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    rc = crs_fs_write_atomic(dir, cut != NULL ? cut + 1 : path, sealed, sealed_len);
    if (rc == 0)
        rc = crs_win_make_private(path);

cleanup:
    crs_free(dir);
    crs_free(sealed);
    return rc;
}
