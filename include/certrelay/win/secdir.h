/*
 * Private directories on Windows. CertRelay's spool and state live below %ProgramData%, whose
 * default ACL lets every user create files in new subdirectories. A spool directory users can
 * write to would let any of them inject forged events, and a certrelay.ini they can write would
 * let them point a sink anywhere, so the directories CertRelay creates are restricted to SYSTEM,
 * Administrators and the service, and the service refuses files that others own or may write.
 */
#ifndef CERTRELAY_WIN_SECDIR_H
#define CERTRELAY_WIN_SECDIR_H

#include <windows.h>

/*
 * The private descriptor in SDDL: protected, inherited by everything below; full control for
 * SYSTEM, BUILTIN\Administrators and the calling process's account, modify for the service SID
 * of service (NULL: CertRelay), nothing for anyone else. 0 or a negative CRS_E* code.
 */
int crs_win_private_sddl(const WCHAR *service, WCHAR *buf, size_t cap);

/*
 * Checks a security descriptor: the owner must be SYSTEM, Administrators, TrustedInstaller, the
 * service SID or our own account, and no other account may be granted any right to change the
 * object (write, append, delete, change its ACL or owner). 0, or CRS_EACCES with *why saying
 * what is wrong (a static sentence).
 */
int crs_win_sd_check(PSECURITY_DESCRIPTOR sd, const WCHAR *service, const char **why);

/* crs_win_sd_check for a file or directory, which must not be a reparse point either. */
int crs_win_path_check(const char *path, const WCHAR *service, const char **why);

/* Replaces the DACL of a kernel object (handle, when not NULL) or of a file or directory (path)
 * by the DACL of sddl, protected from inheritance. 0 or a negative CRS_E* code. */
int crs_win_set_dacl(HANDLE handle, const WCHAR *path, const WCHAR *sddl);

/* Gives an existing file or directory the private DACL (crs_win_private_sddl); a failure is
 * logged and returns CRS_EACCES. */
int crs_win_make_private(const char *path);

/*
 * Makes dir the service's own: creates it (and missing parents) when absent, refuses it
 * (CRS_EACCES, *why set) when it is a reparse point or owned by an untrusted account, leaves it
 * alone when it passes crs_win_path_check, and otherwise replaces its DACL with the private one,
 * repairing a directory someone created beforehand with a looser ACL. 0 or a negative CRS_E*
 * code.
 */
int crs_win_dir_own(const char *dir, const char **why);

/*
 * Creates dir and its missing parents (crs_fs_mkdirs) and gives the topmost directory it created
 * the private DACL (crs_win_private_sddl), inherited by everything below. Directories that existed already are left as they are: an
 * administrator who points the spool at a directory of their own keeps their ACL. 0 or a negative
 * CRS_E* code; a failure to set the DACL is logged (crs_warn) and returns CRS_EACCES after the
 * directories were created.
 */
int crs_win_mkdirs_private(const char *dir);

#endif
