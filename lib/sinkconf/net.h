/*
 * Helpers shared by the configuration parsers of the network sinks (webhook.c, email.c): string
 * keys, TLS keys and URL checks. Internal to lib/sinkconf (crs__ prefix, as libuv's uv__).
 */
#ifndef CERTRELAY_SINKCONF_NET_H
#define CERTRELAY_SINKCONF_NET_H

#include <stddef.h>
#include "certrelay/sinkconf.h"

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
