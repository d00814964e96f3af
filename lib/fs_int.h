/*
 * What lib/fs.c (the portable half of certrelay/fs.h) needs from the platform halves
 * lib/unix/fs.c and lib/win/fs.c, and what it gives them. Internal to lib/.
 */
#ifndef CERTRELAY_LIB_FS_INT_H
#define CERTRELAY_LIB_FS_INT_H

#include <stddef.h>

/* The platform's durable write of dir/name (temp, flush, rename); noclobber: never replace. */
int crs__fs_write(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                  size_t blen, int noclobber);
/* Removes one file (path in UTF-8). */
int crs__fs_unlink(const char *path);
/* Sorts n names by their bytes (crs_fs_list's order on every platform). */
void crs__fs_sort_names(char **names, size_t n);

#endif
