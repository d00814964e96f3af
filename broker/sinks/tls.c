/*
 * Shared key parsing for the webhook and email sink configurations (tls.h).
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "sinks/tls.h"

static int conf_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return CRS_ECONFIG;
}

int crs__conf_string(char **dst, const char *value, char *err, size_t errlen)
{
    char *copy;

    if (value == NULL || value[0] == '\0')
        return conf_error(err, errlen, "must not be empty");
    if (strchr(value, '\n') != NULL || strchr(value, '\r') != NULL)
        return conf_error(err, errlen, "takes one line");
    copy = crs_strdup(value);
    if (copy == NULL)
        return CRS_ENOMEM;
    crs_free(*dst);
    *dst = copy;
    return 0;
}

int crs__conf_bool(int *dst, const char *value, char *err, size_t errlen)
{
    if (crs_parse_bool(value, dst) != 0)
        return conf_error(err, errlen, "expected true or false");
    return 0;
}

int crs__tls_config_set(struct crs_tls_config *t, const char *key, const char *value, char *err,
                        size_t errlen)
{
    if (strcmp(key, "ca_file") == 0)
        return crs__conf_string(&t->ca_file, value, err, errlen);
    if (strcmp(key, "client_cert") == 0)
        return crs__conf_string(&t->client_cert, value, err, errlen);
    if (strcmp(key, "client_key") == 0)
        return crs__conf_string(&t->client_key, value, err, errlen);
    if (strcmp(key, "insecure") == 0)
        return crs__conf_bool(&t->insecure, value, err, errlen);
    return CRS_ENOENT;
}

int crs__tls_config_finish(const struct crs_tls_config *t, char *err, size_t errlen)
{
    if (t->client_key != NULL && t->client_cert == NULL)
        return conf_error(err, errlen, "client_key is set but client_cert is not");
    if (t->insecure && t->ca_file != NULL)
        return conf_error(err, errlen,
                          "insecure = true turns verification off, so ca_file would be ignored");
    return 0;
}

void crs__tls_config_free(struct crs_tls_config *t)
{
    if (t == NULL)
        return;
    crs_free(t->ca_file);
    crs_free(t->client_cert);
    crs_free(t->client_key);
    memset(t, 0, sizeof(*t));
}

int crs__conf_url_check(const char *url, const char *const *schemes, char *err, size_t errlen)
{
    const char *host, *end, *p;
    size_t i, n;

    if (url == NULL || url[0] == '\0')
        return conf_error(err, errlen, "must not be empty");
    for (p = url; *p != '\0'; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return conf_error(err, errlen, "a URL must not hold spaces or control characters");
    }
    for (i = 0; schemes[i] != NULL; i++) {
        n = strlen(schemes[i]);
        if (crs_ascii_ncasecmp(url, schemes[i], n) == 0)
            break;
    }
    if (schemes[i] == NULL) {
        char msg[160];
        size_t k, off = 0;

        off += (size_t)snprintf(msg, sizeof(msg), "the URL must start with ");
        for (k = 0; schemes[k] != NULL && off < sizeof(msg); k++)
            off += (size_t)snprintf(msg + off, sizeof(msg) - off, "%s%s",
                                    k == 0 ? "" : (schemes[k + 1] == NULL ? " or " : ", "),
                                    schemes[k]);
        return conf_error(err, errlen, msg);
    }
    host = url + n;
    end = host + strcspn(host, "/?#");
    if (end == host)
        return conf_error(err, errlen, "the URL names no host");
    for (p = host; p < end; p++) {
        if (*p == '@')
            return conf_error(err, errlen,
                              "the URL must not hold user:password@ (put secrets in files: "
                              "password_file, bearer_token_file, url_file)");
    }
    return (int)i;
}
