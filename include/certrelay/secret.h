/*
 * Secret files (webhook secrets, bearer tokens, SMTP passwords). A secret file holds the secret
 * in plain text, readable only by the broker's account, or on Windows a DPAPI blob sealed to the
 * machine (CryptProtectData with CRYPTPROTECT_LOCAL_MACHINE, as `certrelay secret set FILE`
 * writes it, or PowerShell's ProtectedData.Protect with the LocalMachine scope): then a copied
 * file is useless on another machine, and a backup does not carry the secret in clear. Readers
 * accept either form. A secret never appears in a log or an error message.
 */
#ifndef CERTRELAY_SECRET_H
#define CERTRELAY_SECRET_H

#include <stddef.h>
#include <stdint.h>

/*
 * Reads at most max bytes of path and returns the secret in it: the plain bytes, or on Windows
 * the unsealed content of a DPAPI blob (recognised by its header). *out is crs_malloc'd; wipe it
 * with crs_secret_free. 0, CRS_ETOOBIG, CRS_EACCES (a blob that cannot be unsealed here: another
 * machine's) or another negative CRS_E* code.
 */
int crs_secret_read_file(const char *path, size_t max, uint8_t **out, size_t *outlen);

/* Seals plain into a machine-scope DPAPI blob (Windows; CRS_ENOTSUP elsewhere). *out is
 * crs_malloc'd. */
int crs_secret_seal(const uint8_t *plain, size_t len, uint8_t **out, size_t *outlen);

/*
 * Writes plain to path sealed (crs_secret_seal), atomically, and gives the file the private ACL:
 * any process on the machine may unseal a machine-scope blob, so the ACL keeps others from
 * reading the file at all. CRS_ENOTSUP where there is no DPAPI.
 */
int crs_secret_write_file(const char *path, const uint8_t *plain, size_t len);

/* Overwrites len bytes of p with zeros and frees it, so a secret does not linger in memory the
 * allocator hands out again. NULL is a no-op. */
void crs_secret_free(void *p, size_t len);
/* The same for a NUL-terminated string. NULL is a no-op. */
void crs_secret_free_str(char *s);

#endif
