/*
 * The platform-independent part of include/certrelay/fs.h. The durable operations themselves
 * live in lib/unix/fs.c and lib/win/fs.c.
 */
#include <stdlib.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "fs_int.h"

int crs_fs_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    return crs__fs_write(dir, name, data, len, NULL, 0, 0);
}

int crs_fs_write_atomic2(const char *dir, const char *name, const void *a, size_t alen,
                         const void *b, size_t blen)
{
    return crs__fs_write(dir, name, a, alen, b, blen, 0);
}

int crs_fs_write_new(const char *dir, const char *name, const void *data, size_t len)
{
    return crs__fs_write(dir, name, data, len, NULL, 0, 1);
}

void crs_fs_list_free(char **list)
{
    size_t i;

    if (list == NULL)
        return;
    for (i = 0; list[i] != NULL; i++)
        crs_free(list[i]);
    crs_free(list);
}

int crs_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen)
{
    return crs_fs_read_file(path, max, 0, out, outlen);
}

/* The removal is made durable by syncing the directory (a no-op on Windows, see fs.h). */
int crs_fs_unlink_durable(const char *dir, const char *name)
{
    char *path;
    int rc;

    if (dir == NULL || name == NULL)
        return CRS_EINVAL;
    path = crs_path_join(dir, name);
    if (path == NULL)
        return CRS_ENOMEM;
    rc = crs__fs_unlink(path);
    crs_free(path);
    if (rc == 0)
        rc = crs_fs_sync_dir(dir);
    return rc;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

void crs__fs_sort_names(char **names, size_t n)
{
    if (names != NULL && n > 1)
        qsort(names, n, sizeof(*names), cmp_names);
}
