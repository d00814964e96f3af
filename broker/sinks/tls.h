/*
 * Settings shared by the network sinks (webhook, email): TLS keys, string keys and URL checks.
 * Internal to broker/sinks (crs__ prefix, as libuv's uv__).
 */
#ifndef CERTRELAY_SINKS_TLS_H
#define CERTRELAY_SINKS_TLS_H

#include <stddef.h>

/* TLS settings shared by the webhook and email sinks (keys ca_file, client_cert, client_key,
 * insecure). Verification is on unless insecure is set. */
struct crs_tls_config {
    char *ca_file;     /* trust anchors (PEM bundle); NULL: the system's store */
    char *client_cert; /* client certificate (PEM; a .pfx/.p12 file with Schannel) */
    char *client_key;  /* its private key (PEM) when not inside client_cert */
    int insecure;      /* insecure = true: no peer or host name verification */
};

/* Sets *dst to a copy of value, which must be one non-empty line. 0, CRS_ECONFIG or CRS_ENOMEM. */
int crs__conf_string(char **dst, const char *value, char *err, size_t errlen);
/* Parses a boolean key into *dst. */
int crs__conf_bool(int *dst, const char *value, char *err, size_t errlen);

/* Handles ca_file, client_cert, client_key and insecure; CRS_ENOENT for any other key. */
int crs__tls_config_set(struct crs_tls_config *t, const char *key, const char *value, char *err,
                        size_t errlen);
int crs__tls_config_finish(const struct crs_tls_config *t, char *err, size_t errlen);
void crs__tls_config_free(struct crs_tls_config *t);

/*
 * Checks that url starts with one of the schemes (lower case, e.g. "https://"; compared
 * case-insensitively), names a host, holds no user:password@ part (secrets belong in files) and
 * no space or control character. Returns the index of the scheme that matched, or CRS_ECONFIG.
 */
int crs__conf_url_check(const char *url, const char *const *schemes, char *err, size_t errlen);

#endif
