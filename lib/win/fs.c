/*
 * Durable file operations for Windows (include/certrelay/fs.h). Paths arrive as UTF-8 and are
 * converted to UTF-16 once here. Durability: FlushFileBuffers on the temporary file, then
 * MoveFileExW with MOVEFILE_WRITE_THROUGH, which does not return until the rename is on disk
 * (NTFS journals it), so there is no directory handle to flush.
 *
 * Writes never follow reparse points: a spool or drop directory (or any directory above it) that
 * is a junction or a symbolic link is refused with CRS_EACCES, so whoever could plant one cannot
 * redirect a SYSTEM service's writes elsewhere. The temporary file is created new (CREATE_NEW,
 * FILE_FLAG_OPEN_REPARSE_POINT) and renamed over the final name, which replaces a link there
 * rather than writing through it.
 */
#include <windows.h>
#include <fcntl.h>
#include <io.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "certrelay/alloc.h"
#include "certrelay/error.h"
#include "certrelay/fs.h"
#include "../fs_int.h"
#include "certrelay/random.h"
#include "certrelay/win/wstr.h"

/* A path to a fresh UTF-16 string, or NULL (invalid UTF-8, or out of memory). */
static WCHAR *to_wide(const char *s)
{
    WCHAR *w;

    return crs_win_wide(s, CRS_WSTR_STRICT, &w) == 0 ? w : NULL;
}

/* A file name from FindNextFileW (at most MAX_PATH units) to a fresh UTF-8 string, or NULL. */
static char *to_utf8(const WCHAR *w)
{
    char *s;

    return crs_win_utf8(w, -1, (size_t)MAX_PATH * 3, &s, NULL) == 0 ? s : NULL;
}

char *crs_path_join(const char *dir, const char *name)
{
    size_t dl;

    if (dir == NULL || name == NULL)
        return NULL;
    dl = strlen(dir);
    if (dl > 0 && (dir[dl - 1] == '\\' || dir[dl - 1] == '/'))
        return crs_asprintf("%s%s", dir, name);
    return crs_asprintf("%s\\%s", dir, name);
}

static int write_all(HANDLE h, const void *data, size_t len)
{
    const char *p = data;

    while (len > 0) {
        DWORD chunk = len > 0x40000000u ? 0x40000000u : (DWORD)len;
        DWORD n = 0;
        if (!WriteFile(h, p, chunk, &n, NULL))
            return crs_translate_sys_error((int)GetLastError());
        p += n;
        len -= n;
    }
    return 0;
}

int crs_fs_sync_dir(const char *dir)
{
    return dir == NULL ? CRS_EINVAL : 0;
}

/*
 * CRS_EACCES when dir or a directory above it is a reparse point (the drive root excepted), 0
 * otherwise; a component that cannot be inspected is left to the CreateFileW that follows.
 */
static int no_reparse_points(const WCHAR *dir)
{
    size_t n = wcslen(dir), i, start = 0;
    WCHAR *p;
    int rc = 0;

    p = crs_malloc((n + 1) * sizeof(WCHAR));
    if (p == NULL)
        return CRS_ENOMEM;
    memcpy(p, dir, (n + 1) * sizeof(WCHAR));
    /* Skip the root: "C:\", "\\?\C:\" or "\\server\share\". */
    if (n >= 2 && p[1] == L':')
        start = 3;
    else if (n >= 4 && wcsncmp(p, L"\\\\?\\", 4) == 0)
        start = 7;
    else if (n >= 2 && p[0] == L'\\' && p[1] == L'\\') {
        int seps = 0;
        for (start = 2; start < n && seps < 2; start++)
            seps += p[start] == L'\\';
    }
    for (i = start; i <= n && rc == 0; i++) {
        DWORD attr;
        WCHAR c = p[i];

        if (c != L'\\' && c != L'/' && c != L'\0')
            continue;
        if (i == start)
            continue;
        p[i] = L'\0';
        attr = GetFileAttributesW(p);
        if (attr != INVALID_FILE_ATTRIBUTES && (attr & FILE_ATTRIBUTE_REPARSE_POINT))
            rc = CRS_EACCES;
        p[i] = c;
    }
    crs_free(p);
    return rc;
}

int crs__fs_write(const char *dir, const char *name, const void *a, size_t alen, const void *b,
                  size_t blen, int noclobber)
{
    char *tmp = NULL, *final = NULL;
    WCHAR *wtmp = NULL, *wfinal = NULL, *wdir = NULL;
    HANDLE h = INVALID_HANDLE_VALUE;
    uint8_t rnd[6];
    int rc;

    if (dir == NULL || name == NULL || name[0] == '\0' || strpbrk(name, "/\\") != NULL ||
        (a == NULL && alen > 0) || (b == NULL && blen > 0))
        return CRS_EINVAL;
    if (crs_random(rnd, sizeof(rnd)) != 0)
        return CRS_EIO;
    tmp = crs_asprintf("%s\\.%s.%02x%02x%02x%02x%02x%02x.tmp", dir, name, rnd[0], rnd[1], rnd[2],
                       rnd[3], rnd[4], rnd[5]);
    final = crs_path_join(dir, name);
    if (tmp == NULL || final == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    wtmp = to_wide(tmp);
    wfinal = to_wide(final);
    wdir = to_wide(dir);
    if (wtmp == NULL || wfinal == NULL || wdir == NULL) {
        rc = CRS_EINVAL;
        goto cleanup;
    }
    rc = no_reparse_points(wdir);
    if (rc != 0)
        goto cleanup;
    h = CreateFileW(wtmp, GENERIC_WRITE, 0, NULL, CREATE_NEW,
                    FILE_ATTRIBUTE_NORMAL | FILE_FLAG_OPEN_REPARSE_POINT, NULL);
    if (h == INVALID_HANDLE_VALUE) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    rc = write_all(h, a, alen);
    if (rc == 0)
        rc = write_all(h, b, blen);
    if (rc == 0 && !FlushFileBuffers(h))
        rc = crs_translate_sys_error((int)GetLastError());
    CloseHandle(h);
    h = INVALID_HANDLE_VALUE;
    if (rc != 0)
        goto cleanup;
    /* Without REPLACE_EXISTING, MoveFileEx fails with ERROR_ALREADY_EXISTS: no clobbering. */
    if (!MoveFileExW(wtmp, wfinal,
                     (noclobber ? 0 : MOVEFILE_REPLACE_EXISTING) | MOVEFILE_WRITE_THROUGH))
        rc = crs_translate_sys_error((int)GetLastError());

cleanup:
    if (h != INVALID_HANDLE_VALUE)
        CloseHandle(h);
    if (rc != 0 && wtmp != NULL)
        DeleteFileW(wtmp);
    crs_free(wtmp);
    crs_free(wfinal);
    crs_free(wdir);
    crs_free(tmp);
    crs_free(final);
    return rc;
}

int crs_fs_realpath(const char *path, char **out)
{
    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    *out = crs_strdup(path);
    return *out != NULL ? 0 : CRS_ENOMEM;
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
    for (i = 1; i <= len && rc == 0; i++) {
        char saved;
        WCHAR *w;
        DWORD attr;

        if (path[i] != '\\' && path[i] != '/' && path[i] != '\0')
            continue;
        if (i == 2 && path[1] == ':')
            continue; /* "C:" is a drive, not a directory to create */
        if (i > 0 &&
            (path[i - 1] == '\\' || path[i - 1] == '/' || path[i - 1] == '.' || path[i - 1] == '?'))
            continue; /* skip "\\" and "\\?\" prefixes and "." components */
        saved = path[i];
        path[i] = '\0';
        w = to_wide(path);
        if (w == NULL) {
            rc = CRS_ENOMEM;
        } else {
            if (!CreateDirectoryW(w, NULL) && GetLastError() != ERROR_ALREADY_EXISTS)
                rc = crs_translate_sys_error((int)GetLastError());
            attr = GetFileAttributesW(w);
            if (rc == 0 && (attr == INVALID_FILE_ATTRIBUTES || !(attr & FILE_ATTRIBUTE_DIRECTORY)))
                rc = CRS_EEXIST;
            crs_free(w);
        }
        path[i] = saved;
    }
    crs_free(path);
    return rc;
}

/* A named pipe (\\.\pipe\...) or a device given as a file would block ReadFile; a reparse
 * point opened with NOFOLLOW is a link. Both are refused before anything is read. */
static int fs_check_regular(HANDLE h, unsigned flags)
{
    BY_HANDLE_FILE_INFORMATION info;

    if (GetFileType(h) != FILE_TYPE_DISK)
        return CRS_EFTYPE;
    if (!GetFileInformationByHandle(h, &info))
        return crs_translate_sys_error((int)GetLastError());
    if (info.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
        return CRS_EFTYPE;
    if ((flags & CRS_FS_NOFOLLOW) && (info.dwFileAttributes & FILE_ATTRIBUTE_REPARSE_POINT))
        return CRS_EFTYPE;
    return 0;
}

/*
 * Wraps an open handle in a stdio stream with the C runtime's flags and mode. The handle is the
 * stream's from here on: on failure it is closed, so the caller never closes it twice.
 */
static int fs_handle_stream(HANDLE h, int oflag, const char *mode, FILE **out)
{
    FILE *f;
    int fd;

    fd = _open_osfhandle((intptr_t)h, oflag);
    if (fd < 0) {
        CloseHandle(h);
        return CRS_EIO;
    }
    f = _fdopen(fd, mode);
    if (f == NULL) {
        _close(fd);
        return CRS_EIO;
    }
    *out = f;
    return 0;
}

/*
 * Opens path with the given access and creation disposition, shared as every opener here shares
 * it, and checks that it is a regular file. On failure nothing stays open.
 */
static int fs_open_regular(const char *path, DWORD access, DWORD disposition, HANDLE *out)
{
    HANDLE h;
    WCHAR *w;
    int rc;

    w = to_wide(path);
    if (w == NULL)
        return CRS_EINVAL;
    h = CreateFileW(w, access, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    disposition, FILE_ATTRIBUTE_NORMAL, NULL);
    crs_free(w);
    if (h == INVALID_HANDLE_VALUE)
        return crs_translate_sys_error((int)GetLastError());
    rc = fs_check_regular(h, 0);
    if (rc != 0) {
        CloseHandle(h);
        return rc;
    }
    *out = h;
    return 0;
}

int crs_fs_open_append(const char *path, FILE **out)
{
    HANDLE h;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    rc = fs_open_regular(path, FILE_APPEND_DATA, OPEN_ALWAYS, &h);
    if (rc != 0)
        return rc;
    return fs_handle_stream(h, _O_APPEND | _O_WRONLY, "a", out);
}

int crs_fs_open_read(const char *path, uint64_t max, FILE **out)
{
    LARGE_INTEGER size;
    HANDLE h;
    int rc;

    if (out != NULL)
        *out = NULL;
    if (path == NULL || out == NULL)
        return CRS_EINVAL;
    rc = fs_open_regular(path, GENERIC_READ, OPEN_EXISTING, &h);
    if (rc != 0)
        return rc;
    if (!GetFileSizeEx(h, &size))
        rc = crs_translate_sys_error((int)GetLastError());
    else if ((uint64_t)size.QuadPart > max)
        rc = CRS_ETOOBIG;
    if (rc != 0) {
        CloseHandle(h);
        return rc;
    }
    return fs_handle_stream(h, _O_RDONLY | _O_BINARY, "rb", out);
}

int crs_fs_read_file(const char *path, size_t max, unsigned flags, uint8_t **out, size_t *outlen)
{
    HANDLE h;
    LARGE_INTEGER size;
    WCHAR *w;
    uint8_t *buf = NULL;
    size_t got = 0;
    int rc = 0;

    if (out != NULL)
        *out = NULL;
    if (outlen != NULL)
        *outlen = 0;
    if (path == NULL || out == NULL || outlen == NULL)
        return CRS_EINVAL;
    w = to_wide(path);
    if (w == NULL)
        return CRS_EINVAL;
    h = CreateFileW(w, GENERIC_READ, FILE_SHARE_READ | FILE_SHARE_WRITE | FILE_SHARE_DELETE, NULL,
                    OPEN_EXISTING,
                    FILE_ATTRIBUTE_NORMAL |
                        ((flags & CRS_FS_NOFOLLOW) ? FILE_FLAG_OPEN_REPARSE_POINT : 0),
                    NULL);
    crs_free(w);
    if (h == INVALID_HANDLE_VALUE)
        return crs_translate_sys_error((int)GetLastError());
    rc = fs_check_regular(h, flags);
    if (rc != 0)
        goto cleanup;
    if (!GetFileSizeEx(h, &size)) {
        rc = crs_translate_sys_error((int)GetLastError());
        goto cleanup;
    }
    if ((uint64_t)size.QuadPart > max) {
        rc = CRS_ETOOBIG;
        goto cleanup;
    }
    buf = crs_malloc((size_t)size.QuadPart + 1);
    if (buf == NULL) {
        rc = CRS_ENOMEM;
        goto cleanup;
    }
    while (got < (size_t)size.QuadPart) {
        DWORD n = 0;
        DWORD want =
            (DWORD)((size_t)size.QuadPart - got > 0x40000000u ? 0x40000000u
                                                              : (size_t)size.QuadPart - got);
        if (!ReadFile(h, buf + got, want, &n, NULL)) {
            rc = crs_translate_sys_error((int)GetLastError());
            goto cleanup;
        }
        if (n == 0)
            break;
        got += n;
    }
    buf[got] = '\0';
    *out = buf;
    *outlen = got;
    buf = NULL;

cleanup:
    crs_free(buf);
    CloseHandle(h);
    return rc;
}

int crs__fs_unlink(const char *path)
{
    WCHAR *w = to_wide(path);
    int rc = 0;

    if (w == NULL)
        return CRS_EINVAL;
    if (!DeleteFileW(w))
        rc = crs_translate_sys_error((int)GetLastError());
    crs_free(w);
    return rc;
}

int crs_fs_list(const char *dir, const char *suffix, char ***out, size_t *count)
{
    WIN32_FIND_DATAW fd;
    HANDLE h;
    char *pattern;
    WCHAR *wpattern;
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
    pattern = crs_path_join(dir, "*");
    if (pattern == NULL)
        return CRS_ENOMEM;
    wpattern = to_wide(pattern);
    crs_free(pattern);
    if (wpattern == NULL)
        return CRS_EINVAL;
    h = FindFirstFileW(wpattern, &fd);
    crs_free(wpattern);
    if (h == INVALID_HANDLE_VALUE) {
        DWORD e = GetLastError();
        if (e != ERROR_FILE_NOT_FOUND)
            return crs_translate_sys_error((int)e);
    } else {
        do {
            char *name;
            size_t nl;

            if (fd.dwFileAttributes & FILE_ATTRIBUTE_DIRECTORY)
                continue;
            name = to_utf8(fd.cFileName);
            if (name == NULL) {
                rc = CRS_ENOMEM;
                break;
            }
            nl = strlen(name);
            if (name[0] == '.' || nl < slen || strcmp(name + nl - slen, suffix) != 0) {
                crs_free(name);
                continue;
            }
            if (n + 2 > cap) {
                size_t ncap = cap ? cap * 2 : 64;
                char **nl2 = crs_realloc(list, ncap * sizeof(*list));
                if (nl2 == NULL) {
                    crs_free(name);
                    rc = CRS_ENOMEM;
                    break;
                }
                list = nl2;
                cap = ncap;
            }
            list[n++] = name;
            list[n] = NULL;
        } while (FindNextFileW(h, &fd));
        FindClose(h);
    }
    if (rc == 0 && list == NULL) {
        list = crs_calloc(1, sizeof(*list));
        if (list == NULL)
            rc = CRS_ENOMEM;
    }
    if (rc != 0) {
        crs_fs_list_free(list);
        return rc;
    }
    crs__fs_sort_names(list, n);
    *out = list;
    *count = n;
    return 0;
}
