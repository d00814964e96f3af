/*
 * Secret files on Unix: plain text only (see include/certrelay/secret.h); the file's mode keeps
 * it private.
 */
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "certrelay/secret.h"

int crs_secret_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    return crs_fs_read_all(path, max, out, outlen);
}

int crs_secret_seal(const uint8_t *plain, size_t len, uint8_t **out, size_t *outlen)
{
    (void)plain;
    (void)len;
    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    return CRS_ENOTSUP;
}

int crs_secret_write_file(const char *path, const uint8_t *plain, size_t len)
{
    (void)path;
    (void)plain;
    (void)len;
    return CRS_ENOTSUP;
}
