/*
 * The platform-independent part of include/certrelay/fs.h. The durable operations themselves
 * live in lib/unix/fs.c and lib/win/fs.c.
 */
#include "certrelay/alloc.h"
#include "certrelay/fs.h"

/* The platform's durable write (lib/unix/fs.c, lib/win/fs.c); noclobber: never replace. */
int crs__fs_write(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                  size_t blen, int noclobber);

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
