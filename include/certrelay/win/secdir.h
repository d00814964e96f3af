/*
 * Private directories on Windows. CertRelay's spool and state live below %ProgramData%, whose
 * default ACL lets every user create files in new subdirectories. A spool directory users can
 * write to would let any of them inject forged events, so the directories CertRelay creates are
 * restricted to SYSTEM and Administrators.
 */
#ifndef CERTRELAY_WIN_SECDIR_H
#define CERTRELAY_WIN_SECDIR_H

/*
 * Creates dir and its missing parents (crs_fs_mkdirs) and gives the topmost directory it created
 * a protected DACL: full control for SYSTEM and BUILTIN\Administrators, inherited by everything
 * below, nothing for anyone else. Directories that existed already are left as they are: an
 * administrator who points the spool at a directory of their own keeps their ACL. 0 or a negative
 * CRS_E* code; a failure to set the DACL is logged (crs_warn) and returns CRS_EACCES after the
 * directories were created.
 */
int crs_win_mkdirs_private(const char *dir);

#endif
