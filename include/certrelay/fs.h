/*
 * Durable file operations, implemented per platform (lib/unix/fs.c, lib/win/fs.c).
 * Paths are UTF-8 on every platform.
 */
#ifndef CERTRELAY_FS_H
#define CERTRELAY_FS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*
 * Writes data to dir/name atomically and durably: a temporary file in dir (".<name>.<rand>.tmp"),
 * write with short-write and EINTR retries, fsync (FlushFileBuffers), rename over the final name
 * (MoveFileEx REPLACE_EXISTING|WRITE_THROUGH), fsync the directory. On failure the temporary file
 * is removed and the final name is untouched. CRS_ENOSPC on a full disk.
 */
int crs_fs_write_atomic(const char *dir, const char *name, const void *data, size_t len);
/* Multi-part variant (a header and a body) without concatenating them first. */
int crs_fs_write_atomic2(const char *dir, const char *name, const void *a, size_t alen,
                         const void *b, size_t blen);
/* Same, but never replaces anything: CRS_EEXIST when dir/name exists (of whatever type), and
 * nothing is written. The final name appears complete or not at all (link, or MoveFileEx
 * without REPLACE_EXISTING). */
int crs_fs_write_new(const char *dir, const char *name, const void *data, size_t len);
/* Creates dir and its parents (0700 on Unix). 0 if it exists already. */
int crs_fs_mkdirs(const char *dir);
/* Reads a whole file up to max bytes into a fresh buffer (NUL-terminated for convenience).
 * CRS_ETOOBIG above max. The file is opened without blocking (a FIFO or a device never hangs the
 * caller) and must be a regular file: CRS_EFTYPE otherwise. */
int crs_fs_read_all(const char *path, size_t max, uint8_t **out, size_t *outlen);
/* Flags of crs_fs_read_file. NOFOLLOW: the last path component must not be a symbolic link
 * (or, on Windows, any reparse point): CRS_EFTYPE. For files in directories the broker owns. */
#define CRS_FS_NOFOLLOW 1u
int crs_fs_read_file(const char *path, size_t max, unsigned flags, uint8_t **out, size_t *outlen);
/* Opens a log file for appending (created 0640 if absent) without blocking; it must be a
 * regular file (CRS_EFTYPE otherwise: a FIFO as log_file would hang every log line). */
int crs_fs_open_append(const char *path, FILE **out);
/* Opens a file for reading ("rb") without blocking; it must be a regular file (CRS_EFTYPE
 * otherwise) of at most max bytes (CRS_ETOOBIG). For inputs too large to read whole (a CA
 * database export). */
int crs_fs_open_read(const char *path, uint64_t max, FILE **out);
/* Removes a file and makes the removal durable (fsync of the directory). CRS_ENOENT if absent. */
int crs_fs_unlink_durable(const char *dir, const char *name);
/* fsync of a directory (no-op on Windows, where MoveFileEx WRITE_THROUGH is enough). */
int crs_fs_sync_dir(const char *dir);
/* The absolute path of an existing directory with every symbolic link resolved, fresh (Unix:
 * realpath). On Windows, where junctions are not resolved here, the path as given. */
int crs_fs_realpath(const char *path, char **out);
/* Joins dir and name with the platform separator into a fresh string. */
char *crs_path_join(const char *dir, const char *name);

/* Lists the entries of dir whose names end with suffix, sorted by name, as a NULL-terminated
 * array of fresh strings (free with crs_fs_list_free). */
int crs_fs_list(const char *dir, const char *suffix, char ***out, size_t *count);
void crs_fs_list_free(char **list);

#endif
