/*
 * Configuration of the webhook sink ([sink.NAME] type = webhook). Delivery lives apart, in
 * driver.c; this file only turns keys into struct crs_webhook_sink_config.
 *
 *   [sink.siem]
 *   type              = webhook
 *   url               = https://siem.example.com/hooks/adcs   ; or url_file = C:\...\url.txt
 *   format            = cloudevents        ; json (default) | cloudevents | teams | slack
 *   secret_file       = C:\...\whsec.txt   ; Standard Webhooks signature
 *   bearer_token_file = C:\...\token.txt   ; Authorization: Bearer
 *   header            = X-Tenant: pki      ; repeatable
 *   ca_file           = C:\...\ca.pem      ; client_cert, client_key, insecure
 *
 * Secret files are read when the broker starts, not here, so `certrelayd --check-config` works
 * without access to them and no secret sits in the parsed configuration.
 */
#include <stdio.h>
#include <string.h>

#include "certrelay/alloc.h"
#include "config/config.h"
#include "certrelay/error.h"
#include "certrelay/text.h"
#include "sinks/webhook/settings.h"
#include "sinks/sink.h"
#include "sinks/webhook/formats.h"
#include "sinks/tls.h"

/* A webhook sends at most this many extra headers. */
#define WEBHOOK_HEADERS_MAX 32u

static const char *const webhook_schemes[] = {"http://", "https://", NULL};
static const char *const webhook_repeatable[] = {"header", NULL};

static int webhook_error(char *err, size_t errlen, const char *msg)
{
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "%s", msg);
    return CRS_ECONFIG;
}

static int webhook_init(void **typed)
{
    struct crs_webhook_sink_config *wc;

    if (typed == NULL)
        return CRS_EINVAL;
    *typed = NULL;
    wc = crs_calloc(1, sizeof(*wc));
    if (wc == NULL)
        return CRS_ENOMEM;
    wc->format = CRS_WEBHOOK_JSON;
    *typed = wc;
    return 0;
}

/* `header = Name: value` may repeat: each line is checked and appended. */
static int webhook_add_header(struct crs_webhook_sink_config *wc, const char *value, char *err,
                              size_t errlen)
{
    char **v;
    char *line;
    size_t len;

    if (strchr(value, '\n') != NULL)
        return webhook_error(err, errlen, "takes one line");
    if (wc->nheaders >= WEBHOOK_HEADERS_MAX)
        return webhook_error(err, errlen, "too many header lines (at most 32)");
    if (crs_http_header_line_check(value, err, errlen) != 0)
        return CRS_ECONFIG;
    line = crs_strdup(value);
    if (line == NULL)
        return CRS_ENOMEM;
    /* Trailing blanks are not part of a field value. */
    len = strlen(line);
    while (len > 0 && (line[len - 1] == ' ' || line[len - 1] == '\t'))
        line[--len] = '\0';
    v = crs_realloc(wc->headers, (wc->nheaders + 2) * sizeof(*v));
    if (v == NULL) {
        crs_free(line);
        return CRS_ENOMEM;
    }
    wc->headers = v;
    v[wc->nheaders++] = line;
    v[wc->nheaders] = NULL;
    return 0;
}

static int webhook_set(void *typed, const char *key, const char *value, char *err, size_t errlen)
{
    struct crs_webhook_sink_config *wc = typed;
    int rc;

    if (wc == NULL || key == NULL || value == NULL)
        return CRS_EINVAL;
    if (strcmp(key, "url") == 0) {
        rc = crs__conf_url_check(value, webhook_schemes, err, errlen);
        return rc < 0 ? rc : crs__conf_string(&wc->url, value, err, errlen);
    }
    if (strcmp(key, "url_file") == 0)
        return crs__conf_string(&wc->url_file, value, err, errlen);
    if (strcmp(key, "format") == 0) {
        if (crs_webhook_format_parse(value, &wc->format) != 0)
            return webhook_error(err, errlen, "expected json, cloudevents, teams or slack");
        return 0;
    }
    if (strcmp(key, "secret_file") == 0)
        return crs__conf_string(&wc->secret_file, value, err, errlen);
    if (strcmp(key, "bearer_token_file") == 0)
        return crs__conf_string(&wc->bearer_token_file, value, err, errlen);
    if (strcmp(key, "header") == 0)
        return webhook_add_header(wc, value, err, errlen);
    return crs__tls_config_set(&wc->tls, key, value, err, errlen);
}

static int webhook_finish(void *typed, struct crs_sink_config *sc, char *err, size_t errlen)
{
    struct crs_webhook_sink_config *wc = typed;
    size_t i;

    if (wc == NULL || sc == NULL)
        return CRS_EINVAL;
    if (wc->url == NULL && wc->url_file == NULL)
        return webhook_error(err, errlen, "missing required key 'url' (or 'url_file')");
    if (wc->url != NULL && wc->url_file != NULL)
        return webhook_error(err, errlen, "set either 'url' or 'url_file', not both");
    for (i = 0; i < wc->nheaders; i++) {
        if (wc->bearer_token_file != NULL &&
            (crs_ascii_ncasecmp(wc->headers[i], "authorization", 13) == 0 &&
             wc->headers[i][13] == ':'))
            return webhook_error(err, errlen,
                                 "an Authorization header and bearer_token_file both set "
                                 "Authorization: keep one");
    }
    return crs__tls_config_finish(&wc->tls, err, errlen);
}

static void webhook_free(void *typed)
{
    struct crs_webhook_sink_config *wc = typed;
    size_t i;

    if (wc == NULL)
        return;
    crs_free(wc->url);
    crs_free(wc->url_file);
    crs_free(wc->secret_file);
    crs_free(wc->bearer_token_file);
    crs__tls_config_free(&wc->tls);
    for (i = 0; i < wc->nheaders; i++)
        crs_free(wc->headers[i]);
    crs_free(wc->headers);
    crs_free(wc);
}

const struct crs_sink_settings crs_webhook_settings = {
    .init = webhook_init,
    .set = webhook_set,
    .finish = webhook_finish,
    .free = webhook_free,
    .repeatable_keys = webhook_repeatable,
};
