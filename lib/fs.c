/*
 * The platform-independent part of include/certrelay/fs.h. The durable operations themselves
 * live in lib/unix/fs.c and lib/win/fs.c.
 */
#include "certrelay/alloc.h"
#include "certrelay/fs.h"

int crs_fs_write_atomic(const char *dir, const char *name, const void *data, size_t len)
{
    return crs_fs_write_atomic2(dir, name, data, len, NULL, 0);
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
