/*
 * Durable file operations for POSIX systems (include/certrelay/fs.h), in the manner of valkey's
 * AOF rewrite: write a temporary file, fsync it, rename it over the final name, fsync the
 * directory. Short writes and EINTR are retried.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "../fs_int.h"
#include "certrelay/random.h"

int crs_fs_realpath(const char *path, char **out)
{
    char *r;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    r = realpath(path, NULL);
    if (r == NULL)
        return crs_translate_sys_error(errno);
    *out = crs_strdup(r);
    free(r);
    return *out != NULL ? 0 : CRS_ENOMEM;
}

char *crs_path_join(const char *dir, const char *name)
{
    size_t dl;

    if (dir == NULL || name == NULL)
        return NULL;
    dl = strlen(dir);
    if (dl > 0 && dir[dl - 1] == '/')
        return crs_asprintf("%s%s", dir, name);
    return crs_asprintf("%s/%s", dir, name);
}

static int write_all(int fd, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return crs_translate_sys_error(errno);
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

int crs_fs_sync_dir(const char *dir)
{
    int fd, rc = 0;

    if (dir == NULL)
        return CRS_EINVAL;
    fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return crs_translate_sys_error(errno);
    while (fsync(fd) != 0) {
        if (errno != EINTR) {
            rc = crs_translate_sys_error(errno);
            break;
        }
    }
    close(fd);
    return rc;
}

int crs__fs_write(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                  size_t blen, int noclobber)
{
    char *tmp = NULL, *final = NULL;
    uint8_t rnd[6];
    int fd = -1, rc;

    if (dir == NULL || name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
        (a == NULL && alen > 0) || (b == NULL && blen > 0))
        return CRS_EINVAL;
    if (crs_random(rnd, sizeof(rnd)) != 0)
        return CRS_EIO;
    tmp = crs_asprintf("%s/.%s.%02x%02x%02x%02x%02x%02x.tmp", dir, name, rnd[0], rnd[1], rnd[2],
                       rnd[3], rnd[4], rnd[5]);
    final = crs_path_join(dir, name);
    if (tmp == NULL || final == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = crs_translate_sys_error(errno);
        goto cleanup;
    }
    rc = write_all(fd, a, alen);
    if (rc == 0)
        rc = write_all(fd, b, blen);
    if (rc == 0) {
        while (fsync(fd) != 0) {
            if (errno != EINTR) {
                rc = crs_translate_sys_error(errno);
                break;
            }
        }
    }
    if (close(fd) != 0 && rc == 0)
        rc = crs_translate_sys_error(errno);
    fd = -1;
    if (rc != 0)
        goto cleanup;
    if (noclobber) {
        /* link() never replaces: EEXIST if anything has the name, even a dangling link. A file
         * system without hard links gets a checked rename (not atomic against a racing writer,
         * but the broker is the only writer of its names). */
        struct stat st;
        if (link(tmp, final) == 0) {
            unlink(tmp);
        } else if (errno == EEXIST) {
            rc = CRS_EEXIST;
            goto cleanup;
        } else if (lstat(final, &st) == 0) {
            rc = CRS_EEXIST;
            goto cleanup;
        } else if (rename(tmp, final) != 0) {
            rc = crs_translate_sys_error(errno);
            goto cleanup;
        }
    } else if (rename(tmp, final) != 0) {
        /* A directory in the way is not an input/output error. */
        rc = errno == EISDIR ? CRS_EFTYPE : crs_translate_sys_error(errno);
        goto cleanup;
    }
    rc = crs_fs_sync_dir(dir);

cleanup:
    if (fd >= 0)
        close(fd);
    if (rc != 0 && tmp != NULL)
        unlink(tmp);
    crs_free(tmp);
    crs_free(final);
    return rc;
}

int crs_fs_mkdirs(const char *dir)
{
    char *path;
    size_t i, len;
    int rc = 0;

    if (dir == NULL || dir[0] == '\0')
        return CRS_EINVAL;
    path = crs_strdup(dir);
    if (path == NULL)
        return CRS_ENOMEM;
    len = strlen(path);
    /* Create each ancestor in turn; EEXIST is fine as long as it is a directory. */
    for (i = 1; i <= len; i++) {
        struct stat st;
        char saved;

        if (path[i] != '/' && path[i] != '\0')
            continue;
        saved = path[i];
        path[i] = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST) {
            rc = crs_translate_sys_error(errno);
            break;
        }
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
            rc = CRS_EEXIST;
            break;
        }
        path[i] = saved;
    }
    crs_free(path);
    return rc;
}

/*
 * Opens path without blocking and checks that it is a regular file. O_NONBLOCK makes the open of
 * a FIFO return at once (a FIFO with no writer would block open() for ever, and with it the
 * broker's start or its spool drain); the type check then refuses it, a device or a directory.
 * The flag is cleared again for the reads or writes that follow.
 */
static int fs_open_regular(const char *path, int oflags, unsigned flags, int *out)
{
    struct stat st;
    int fd, fl;

    *out = -1;
    if (flags & CRS_FS_NOFOLLOW)
        oflags |= O_NOFOLLOW;
    fd = open(path, oflags | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640);
    if (fd < 0) {
        /* With O_NOFOLLOW a symbolic link (dangling, looping or not) fails with ELOOP. */
        if (errno == ELOOP && (flags & CRS_FS_NOFOLLOW))
            return CRS_EFTYPE;
        /* A FIFO opened for writing without a reader (O_NONBLOCK), or a device with no unit. */
        if (errno == ENXIO)
            return CRS_EFTYPE;
        return crs_translate_sys_error(errno);
    }
    if (fstat(fd, &st) != 0) {
        int rc = crs_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return CRS_EFTYPE;
    }
    fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) != 0) {
        int rc = crs_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

int crs_fs_open_append(const char *path, FILE **out)
{
    FILE *f;
    int fd, rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    rc = fs_open_regular(path, O_WRONLY | O_APPEND | O_CREAT, 0, &fd);
    if (rc != 0)
        return rc;
    f = fdopen(fd, "a");
    if (f == NULL) {
        rc = crs_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    *out = f;
    return 0;
}

int crs_fs_open_read(const char *path, uint64_t max, FILE **out)
{
    struct stat st;
    FILE *f;
    int fd, rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    rc = fs_open_regular(path, O_RDONLY, 0, &fd);
    if (rc != 0)
        return rc;
    if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > max) {
        rc = (uint64_t)st.st_size > max ? CRS_ETOOBIG : crs_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    f = fdopen(fd, "rb");
    if (f == NULL) {
        rc = crs_translate_sys_error(errno);
        close(fd);
        return rc;
    }
    *out = f;
    return 0;
}

int crs_fs_read_file(const char *path, size_t max, unsigned flags, uint8_t **out, size_t *outlen)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    int fd, rc = 0;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (path == NULL || out == NULL || outlen == NULL)
        return CRS_EINVAL;
    rc = fs_open_regular(path, O_RDONLY, flags, &fd);
    if (rc != 0)
        return rc;
    if (fstat(fd, &st) != 0) {
        rc = crs_translate_sys_error(errno);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max) {
        rc = CRS_ETOOBIG;
        goto cleanup;
    }
    buf = crs_malloc((size_t)st.st_size + 1);
    if (buf == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    while (got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            rc = crs_translate_sys_error(errno);
            goto cleanup;
        }
        if (n == 0)
            break; /* the file shrank while we read it: return what is there */
        got += (size_t)n;
    }
    buf[got] = '\0';
    *out = buf;
    *outlen = got;
    buf = NULL;

cleanup:
    crs_free(buf);
    close(fd);
    return rc;
}

int crs__fs_unlink(const char *path)
{
    return unlink(path) == 0 ? 0 : crs_translate_sys_error(errno);
}

int crs_fs_list(const char *dir, const char *suffix, char ***out, size_t *count)
{
    DIR *d;
    struct dirent *de;
    char **list = NULL;
    size_t n = 0, cap = 0, slen;
    int rc = 0;

    if (out != NULL)
        *out = NULL;
    if (count != NULL)
        *count = 0;
    if (dir == NULL || suffix == NULL || out == NULL || count == NULL)
        return CRS_EINVAL;
    slen = strlen(suffix);
    d = opendir(dir);
    if (d == NULL)
        return crs_translate_sys_error(errno);
    while ((de = readdir(d)) != NULL) {
        size_t nl = strlen(de->d_name);

        if (de->d_name[0] == '.' || nl < slen || strcmp(de->d_name + nl - slen, suffix) != 0)
            continue;
        if (n + 2 > cap) {
            size_t ncap = cap ? cap * 2 : 64;
            char **nl2 = crs_realloc(list, ncap * sizeof(*list));
            if (nl2 == NULL) {
                rc = CRS_ENOMEM;
                goto cleanup;
            }
            list = nl2;
            cap = ncap;
        }
        list[n] = crs_strdup(de->d_name);
        if (list[n] == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
        n++;
        list[n] = NULL;
    }
    if (list == NULL) {
        list = crs_calloc(1, sizeof(*list));
        if (list == NULL) {
            rc = CRS_ENOMEM;
            goto cleanup;
        }
    }
    crs__fs_sort_names(list, n);
    *out = list;
    *count = n;
    list = NULL;

cleanup:
    closedir(d);
    if (list != NULL) {
        list[n] = NULL;
        crs_fs_list_free(list);
    }
    return rc;
}
